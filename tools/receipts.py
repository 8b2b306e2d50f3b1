"""`zksidecar receipt` and `zksidecar verify-receipt` (docs/ZK.md, section 8):
thin calls to the receipt machinery, nothing of their own.

    receipt          a receipt from a zk proof store, as the daemon's admin
                     socket makes it (daemon/zk_store.ZkStore.receipt: the
                     stored proof, the batch's private file, the store key),
                     or from an archive `zksidecar store archive` wrote
                     (daemon/zk_archive.ZkArchive: the archived proof, its
                     private file and its batch key): the same receipt
    verify-receipt   the trader's side: the receipt decoded, the batch proof
                     verified (and with --chain, its whole chain), the
                     receipt checked against the proof's statement
                     (receipt.check_receipt) and what was proven printed
                     (receipt.render)

Exit status: 0 done, 1 the receipt or the proof refused (the message says
which check), 2 a usage or input error (a file or a --chain directory that
cannot be read, a store that is not a zk store).
"""
from __future__ import annotations

import contextlib
import errno
import glob
import io
import os
import sys

from zksidecar.daemon.store import ProofStore, StoreError
from zksidecar.daemon.zk_archive import ZkArchive
from zksidecar.daemon.zk_store import ZkStoreError, is_zk_store, open_for_receipts
from zksidecar.prover import input_file
from zksidecar.prover.orderbook import proof_file
from zksidecar.prover.orderbook.batch import verify_batch
from zksidecar.prover.orderbook.batch_receipts import statement_of
from zksidecar.prover.orderbook.params import MAX_TRACE_LENGTH
from zksidecar.prover.orderbook.receipt_format import MAX_FILE_BYTES as MAX_RECEIPT_BYTES
from zksidecar.prover.orderbook.receipt import (ReceiptError, ReceiptFormatError, check_receipt, decode_receipt,
                                                render)
from zksidecar.prover.proof import ProofFormatError
from zksidecar.prover.verify import VerificationError

from .proofs import verify_exported


def receipt_main(store_dir: str, symbol: int, out_path: str, seqs: list[int] | None = None,
                 account: int | None = None, batch: int | None = None, out=None) -> int:
    """`zksidecar receipt`: write a receipt of `seqs` (one batch) or of
    `account` in `batch` to `out_path` ("-": standard output)."""
    if bool(seqs) == (account is not None) or (account is None) != (batch is None):
        print("zksidecar receipt: give --seq N (one or more), or --account A with --batch B", file=sys.stderr)
        return 2
    try:
        if is_zk_store(store_dir):
            zk = open_for_receipts(store_dir)
            with ProofStore(store_dir, fsync=False, readonly=True) as store:
                for line in store.damage:
                    print(f"zksidecar receipt: {line}", file=sys.stderr)
                data = zk.receipt(store, symbol, seqs=seqs, account=account, batch_id=batch)
        else:
            data = ZkArchive(store_dir, symbol).receipt(symbol, seqs=seqs, account=account, batch_id=batch)
    except (ZkStoreError, StoreError, OSError) as exc:
        print(f"zksidecar receipt: {exc}", file=sys.stderr)
        return 2
    except ReceiptError as exc:
        print(f"zksidecar receipt: {exc}", file=sys.stderr)
        return 1
    if out_path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    try:
        with open(out_path, "xb") as f:
            f.write(data)
    except OSError as exc:
        print(f"zksidecar receipt: {out_path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{out_path}: a receipt of symbol {symbol} "
          + (f"seq {', '.join(map(str, seqs))}" if seqs else f"account {account} in batch {batch}")
          + f", {len(data):,} bytes", file=out)
    return 0


def verify_receipt_main(receipt_path: str, proof_path: str, chain_dir: str | None = None,
                        min_security: int = 100, out=None, max_trace_length: int = MAX_TRACE_LENGTH) -> int:
    """`zksidecar verify-receipt RECEIPT PROOF [--chain DIR]`: the proof,
    and each of the chain's, refused past `max_trace_length` rows as
    `verify` refuses them."""
    def refuse(why: str) -> int:
        print(f"zksidecar verify-receipt: REFUSED: {why}", file=out)
        return 1

    try:
        raw_receipt = input_file.read(receipt_path, MAX_RECEIPT_BYTES, "receipt")
        raw_proof = input_file.read(proof_path, proof_file.max_file_bytes(max_trace_length), "batch proof file")
        if chain_dir is not None:
            _chain_dir_readable(chain_dir)
    except OSError as exc:
        print(f"zksidecar verify-receipt: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        receipt = decode_receipt(raw_receipt)
    except ReceiptFormatError as exc:
        return refuse(f"{receipt_path}: {exc}")
    try:
        bp, air = proof_file.decode_with_air(raw_proof)
    except ProofFormatError as exc:
        return refuse(f"{proof_path}: not a batch proof file: {exc}")
    if bp.public.zk is None:
        return refuse(f"{proof_path} is a transparent proof: receipts are of zk batches")
    try:
        verify_batch(bp, min_security=min_security, air=air, max_trace_length=max_trace_length)
    except VerificationError as exc:
        return refuse(f"{proof_path}: the batch proof does not verify: {exc}")
    if chain_dir is not None:
        report = io.StringIO()
        # its verdict and its reasons (which it writes to stderr) together in the refusal
        with contextlib.redirect_stderr(report):
            code = verify_exported(chain_dir, min_security, out=report, max_trace_length=max_trace_length)
        if code != 0:
            return refuse(f"the chain {chain_dir} does not verify:\n{report.getvalue().rstrip()}")
        if not any(_same_bytes(p, raw_proof) for p in glob.glob(os.path.join(chain_dir, "*.zkb"))):
            return refuse(f"{proof_path} is not one of the chain {chain_dir}'s proofs")
    statement = statement_of(bp)
    n = bp.public.zk.n_ops
    try:
        report = check_receipt(receipt, statement, bp.public.zk.leaves[:n], bp.public.zk.leaves[n:])
    except ReceiptError as exc:
        return refuse(str(exc))
    print(render(report, proof_verified=True), file=out)
    print(f"OK: the receipt checks against {proof_path}, whose proof verifies"
          + (f" in the chain {chain_dir}, verified from the empty book" if chain_dir else ""), file=out)
    return 0


def _chain_dir_readable(path: str) -> None:
    """OSError (naming `path`) unless it is a directory this process can list."""
    if not os.path.isdir(path):
        err = errno.ENOTDIR if os.path.exists(path) else errno.ENOENT
        raise OSError(err, os.strerror(err), path)
    os.listdir(path)


def _same_bytes(path: str, data: bytes) -> bool:
    try:
        if os.path.getsize(path) != len(data):
            return False
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False
