"""A zk store's archive: the private data of archived batches moved with
their proofs, and receipts made from it (docs/STORE.md, "Archives of a zk
store"; docs/ZK.md section 9).

`zksidecar store archive --to DIR` (tools/retention.py) writes each symbol's
archived proofs as an exported chain, and in zk mode their private data
beside them:

    DIR/symbol-S/manifest.json, batch-NNNNNN.zkb   the chain (manifest.py), 0600
                                         (0640 for the store's group: tools/proofs.copy_chain)
    DIR/symbol-S/private/                0700 whatever the umask
    DIR/symbol-S/private/S{s}-B{b}.zkp   the batch's private file, the
                                         store's bytes (daemon/private_file.py), 0600
    DIR/symbol-S/private/S{s}-B{b}.key   its batch key kappa_b, 32 bytes in the
                                         store key file's format, 0600

An archive keeps each batch's kappa_b, never the store key K: kappa_b is a
function of K and the batch's content, gives the batch's record salts and
trade order and nothing else, and is as secret as the private file beside
it (docs/ZK_KEYS.md); K would let whoever holds the archive test guesses of
every batch the store still proves and will prove.  A receipt from the
archive (`zksidecar receipt --store DIR ...`, ZkArchive) is the one the store would
have made: the same proof, records and kappa_b (batch_receipts.receipt_with_key).

Crash safety is the archive command's: every private file and key is
written (a temporary name, fsync, rename, the directory fsynced) before the
proofs' manifest, the manifest before the store's index marks the batches
archived, and the store's private files go last (zk_store.prune_private),
so a run stopped anywhere loses nothing and a second run completes it.
"""
from __future__ import annotations

import os

from ..prover import zk_keys
from ..prover.orderbook import manifest, proof_file
from ..prover.orderbook.batch_receipts import batch_key_of, receipt_with_key
from ..prover.orderbook.receipt import ReceiptError
from ..prover.proof import ProofFormatError
from . import formats as fm
from . import private_file as pf
from .store import ProofStore, StoreError, StoreFull
from .zk_store import (PRIVATE_DIR, NotProven, ReceiptUnavailable, ZkStore, ZkStoreError, make_private_dir,
                       check_private_dir, one_batch, private_name, read_private_file)


def key_name(symbol: int, batch_id: int) -> str:
    return f"S{symbol}-B{batch_id}.key"


def symbol_dir(directory: str, symbol: int) -> str:
    """Where an archive keeps `symbol`'s chain: DIR/symbol-S."""
    return os.path.join(directory, f"symbol-{symbol}")


def archive_private(zs: ZkStore, store: ProofStore, symbol: int, ids: list[int], dest: str) -> list[str]:
    """Batches `ids` of `symbol`: each one's private file copied from the
    zk store `zs` (its bytes as they are) and its batch key written, into
    `dest`/private (made 0700; files 0600), every file synced.  Returns a
    line per batch that cannot have receipts from the archive, as it could
    not from the store (no private file, or one that cannot be read as the
    batch's): archived all the same, its proof and the chain unaffected.
    StoreError / StoreFull for a file that cannot be written (OSError)."""
    private = os.path.join(dest, PRIVATE_DIR)
    make_private_dir(private)
    check_private_dir(private, "archived batches' private files and keys")
    notes = []
    chain = zs.chain(symbol)
    for bid in ids:
        src = zs.private_path(symbol, bid)
        try:
            with open(src, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            notes.append(f"symbol {symbol} batch {bid}: no private file ({src}): archived without, its "
                         "receipts could not be made before either")
            continue
        fm.write_whole(os.path.join(private, private_name(symbol, bid)), data, True, StoreFull, StoreError,
                       "a private file")
        try:
            p = pf.decode(data, src)
            if (p.symbol, p.batch_id) != (symbol, bid):
                raise pf.PrivateFileError(f"{src} says it is symbol {p.symbol} batch {p.batch_id}'s")
            key = batch_key_of(chain, proof_file.decode_public(store.get(symbol, bid)), p.pre_state, p.ops,
                               p.trades)
        except (pf.PrivateFileError, ProofFormatError, ReceiptError, StoreError) as exc:
            notes.append(f"symbol {symbol} batch {bid}: its private file was copied as it is, without a batch "
                         f"key: {exc}")
            continue
        fm.write_whole(os.path.join(private, key_name(symbol, bid)), key, True, StoreFull, StoreError,
                       "a batch key")
    return notes


class ZkArchive:
    """One symbol's chain in an archive `zksidecar store archive` wrote,
    for receipts: `directory` is the archive (DIR, holding symbol-S/) or
    the symbol's own directory.  ZkStoreError if it is neither."""

    def __init__(self, directory: str, symbol: int):
        d = directory if os.path.exists(os.path.join(directory, manifest.NAME)) else symbol_dir(directory, symbol)
        try:
            m = manifest.read(d)
        except FileNotFoundError:
            raise ZkStoreError(f"{directory} is neither a zk store (no zk-chain.json) nor an archive `zksidecar "
                               f"store archive` wrote (no {manifest.NAME} there or in "
                               f"{symbol_dir(directory, symbol)})") from None
        except OSError as exc:
            raise ZkStoreError(f"{d}: {exc.strerror or exc}") from None
        except manifest.ManifestError as exc:
            raise ZkStoreError(str(exc)) from None
        if m.symbol != symbol:
            raise ZkStoreError(f"{d} is the archive of symbol {m.symbol}, not of symbol {symbol}")
        self.directory, self.manifest = d, m
        self.private_dir = os.path.join(d, PRIVATE_DIR)

    def batch_of(self, symbol: int, seq: int) -> int:
        """The archived batch holding operation `seq` (the manifest's ranges)."""
        for e in self.manifest.batches:
            if e.first_seq <= seq <= e.last_seq:
                return e.batch_id
        b = self.manifest.batches
        raise NotProven(f"seq {seq} of symbol {symbol} is in no batch of the archive {self.directory} (batches "
                        f"{b[0].batch_id}..{b[-1].batch_id}, seq {b[0].first_seq}..{b[-1].last_seq})")

    def receipt(self, symbol: int, *, seqs: list[int] | None = None, account: int | None = None,
                batch_id: int | None = None) -> bytes:
        """As ZkStore.receipt, from the archive: the proof checked against
        the manifest (SHA-256 and stated range), the batch's private file
        and its batch key.  ReceiptUnavailable (or the receipt API's
        ReceiptError) naming what is wrong."""
        if seqs:
            batch_id = one_batch(symbol, seqs, lambda seq: self.batch_of(symbol, seq))
        entry = next((e for e in self.manifest.batches if e.batch_id == batch_id), None)
        if entry is None:
            raise NotProven(f"the archive {self.directory} holds no batch {batch_id} of symbol {symbol}")
        try:
            path = manifest.check_file(self.directory, symbol, entry)
            with open(path, "rb") as f:
                bp = proof_file.decode(f.read())
        except (manifest.ManifestError, ProofFormatError, OSError) as exc:
            raise ReceiptUnavailable(f"symbol {symbol} batch {batch_id}: its archived proof cannot be used: "
                                     f"{getattr(exc, 'strerror', None) or exc}") from None
        p = read_private_file(self.private_dir, symbol, batch_id)
        key_path = os.path.join(self.private_dir, key_name(symbol, batch_id))
        try:
            key = zk_keys.read_key_file(key_path, "batch key")
        except zk_keys.KeyFileError as exc:
            raise ReceiptUnavailable(f"symbol {symbol} batch {batch_id}'s batch key: {exc} (without it the "
                                     "archive cannot make that batch's receipts)") from None
        return receipt_with_key(bp, key, p.ops, p.trades, seqs=seqs or None, account=account)
