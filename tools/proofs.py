"""`zksidecar prove FILE`, `zksidecar verify PROOF...|DIR`, `zksidecar verify
--store DIR` and `zksidecar export`.

prove: reads operations in the engine's file forms (engine/replay.py: the CSV
form or LOBSTER messages), cuts them into batches with the daemon's
sequencer, proves each batch as the daemon's workers do (one chain from the
empty book), writes one batch proof file per batch
(docs/PROOF_FORMAT.md, "Batch proof file") and prints a line per batch.

verify: reads batch proof files and verifies them as a chain from the empty
book, in the order given; exit status 0 only if every one verifies.

verify --store: every symbol's chain in a daemon's proof store
(docs/STORE.md).

verify DIR / export: a symbol's chain copied out of a store with its manifest
(prover/orderbook/manifest.py, docs/FORMATS.md "Chain manifest"), and its
check.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterable

import numpy as np

from zksidecar.daemon import formats as fm
from zksidecar.daemon import perms
from zksidecar.daemon.batches import BatchPolicy, CloseReason
from zksidecar.daemon.config import BOOK_MAX_CAPACITY, BOOK_MIN_CAPACITY
from zksidecar.daemon.jobs import ProofJob, prove_job
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.sequencer import Sequencer
from zksidecar.daemon.store import ProofStore, StoreCorrupt, StoreError, not_a_store
from zksidecar.daemon.zk_store import every_proof, mixed_problem, proofs_by_mode
from zksidecar.engine import replay
from zksidecar.engine.book import Book
from zksidecar.prover.orderbook import json_file, manifest, proof_file, verify_report
from zksidecar.prover import input_file, zk_keys
from zksidecar.prover.orderbook.batch import ChainCheck, ChainPoint, ChainSegment, Checked
from zksidecar.prover.orderbook.verify_report import SymbolRecord
from zksidecar.prover.orderbook.air import book_length
from zksidecar.prover.orderbook.params import (MAX_TRACE_LENGTH, check_zk_batch_size, conjectured_security,
                                               proof_options, zk_proof_options, zk_security)
from zksidecar.prover.orderbook.zk_air import shape_statement
from zksidecar.prover.orderbook.zk_chain import ZkChain
from zksidecar.prover.orderbook.witness import trace_length_for
from zksidecar.prover.proof import ProofFormatError
from zksidecar.prover.verify import VerificationError

from .verify_jobs import Checker, Unreadable, WorkerDied, check_path, default_jobs


def read_ops(path: str, fmt: str, capacity: int) -> np.ndarray:
    """The file's operations as records, file ids resolved to the engine's
    handles (a scratch engine run, as `zksidecar replay` does).  Raises
    replay.FileError naming every malformed line: the file is refused whole."""
    chunks: list[np.ndarray] = []
    with input_file.open_regular(path) as f:
        replay.run(replay.read(f, fmt), Book(capacity), on_ops=lambda ops: chunks.append(ops.copy()))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=replay.records.OP_DTYPE)


def prove_main(path: str, fmt: str, capacity: int, batch_size: int, out_dir: str,
               security: int, trace_length: int | None = None, out=None, zk: bool = False,
               key: str | None = None, new_key: bool = False) -> int:
    """`zksidecar prove`; with `zk`, in zk mode under the store key in the
    file `key` (made first when `new_key`: docs/ZK_KEYS.md, "Key file")."""
    problem = replay.check_capacity(capacity, BOOK_MIN_CAPACITY, BOOK_MAX_CAPACITY)
    if problem:
        print(f"zksidecar prove: {problem}", file=sys.stderr)
        return 2
    if batch_size < 1:
        print("zksidecar prove: batch size must be at least 1", file=sys.stderr)
        return 2
    problem = _out_dir_problem(out_dir, zk, make=False)     # before a key is made or a line read
    if problem:
        print(f"zksidecar prove: {problem}", file=sys.stderr)
        return 2
    if zk != (key is not None) or (new_key and not zk):
        print("zksidecar prove: " + ("--zk needs its store key: --key FILE (--new-key makes one)" if zk else
                                     "--key and --new-key are zk mode's: give --zk"), file=sys.stderr)
        return 2
    store_key = None
    if zk:
        try:        # the parameters first: no key is made for a chain that cannot be proven
            zk_proof_options(security, capacity.bit_length() - 1, trace_length or trace_length_for(capacity, batch_size))
        except ValueError as exc:
            print(f"zksidecar prove: {exc}", file=sys.stderr)
            return 2
        try:
            store_key = zk_keys.write_key_file(key) if new_key else zk_keys.read_key_file(key)
        except zk_keys.KeyFileError as exc:
            print(f"zksidecar prove: {exc}", file=sys.stderr)
            return 2
        if new_key:
            print(f"a new store key in {key} (mode 0600): the chain's next batch cannot be proven without "
                  "it; keep it as secret as the operations, and back it up with the proofs", file=out)
    try:
        ops = read_ops(path, fmt, capacity)
    except replay.FileError as exc:
        for line in exc.report(path):
            print(f"zksidecar prove: {line}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"zksidecar prove: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not len(ops):
        print(f"zksidecar prove: {path}: no operations", file=sys.stderr)
        return 2
    return prove_ops(ops, capacity, batch_size, out_dir, security, trace_length, out,
                     where=path, zk_key=store_key)


def _out_dir_problem(out_dir: str, zk: bool, make: bool = True) -> str | None:
    """Why `out_dir` cannot take a chain's proofs (it is a file, it holds
    batch files already; with `make`, it cannot be made), or None: it is a
    directory holding none (made if `make`)."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        return f"--out {out_dir} exists and is not a directory: name a directory for the proofs"
    try:
        if make:
            os.makedirs(out_dir, exist_ok=True)
        existing = sorted(f for f in os.listdir(out_dir) if f.startswith("batch-") and f.endswith(".zkb")) \
            if os.path.isdir(out_dir) else []
    except OSError as exc:
        return f"--out {out_dir}: {exc.strerror or exc}"
    if existing:
        why = ("zk mode never proves a batch twice (two proofs would open its state's mask twice, "
               "docs/ZK.md section 6)" if zk else
               "its proofs would be written over it, leaving two chains' files mixed")
        return f"{os.path.join(out_dir, existing[0])} exists: {why}; give an empty --out directory"
    return None


def prove_ops(ops: np.ndarray, capacity: int, batch_size: int, out_dir: str, security: int,
              trace_length: int | None = None, out=None, where: str = "operations",
              zk_key: bytes | None = None) -> int:
    """prove_main's work on operation records already read (OP_DTYPE, file
    ids resolved, the stream from the empty book): batch-NNNNNN.zkb files in
    `out_dir`, a line per batch on `out`.  `zksidecar bench verify` builds
    its chain with it.  `zk_key`: prove in zk mode under this store key,
    every batch at the one ops height of the chain, never over a batch file
    already in `out_dir` (two proofs of a batch would open its state's mask
    twice: docs/ZK.md section 6).

    The daemon's machinery cuts and proves, in either mode: its sequencer
    (daemon/sequencer.py; in zk mode its record lane's cut too, and a
    stream that resumes past a gap starts a batch marked `resumed`), its
    jobs (ProofJob.of, in zk mode deriving the batch's keys from the store
    key as the daemon's store does) and its workers' prove_job, so a file's
    proofs are byte for byte those the daemon makes of the same stream cut
    at the same sizes."""
    # one cap on the ops rows of a batch for the whole chain (each batch is
    # proven at the rows it takes, up to it; zk mode: at the cap); the
    # daemon's sequencer cuts the batches: at batch_size operations, or
    # where the next operation's steps (zk mode: or its trades, in the
    # record lane) would not fit the cap (a file has no clock, so no batch
    # times out)
    zk = zk_key is not None
    log2_capacity = capacity.bit_length() - 1
    try:
        if zk and not trace_length:     # a trace sized for batches zk mode never holds
            check_zk_batch_size(batch_size, capacity)
        trace_length = trace_length or trace_length_for(capacity, batch_size)
        sequencer = Sequencer(capacity, trace_length, BatchPolicy(batch_size, 1.0), Metrics(), zk=zk)
        if zk:
            options = zk_proof_options(security, log2_capacity, trace_length)
        else:
            options = proof_options(security, book_length(capacity), trace_length)
    except ValueError as exc:
        print(f"zksidecar prove: {exc}", file=sys.stderr)
        return 2
    problem = _out_dir_problem(out_dir, zk)
    if problem:
        print(f"zksidecar prove: {problem}", file=sys.stderr)
        return 2
    chains = None
    if zk:
        bits = zk_security(options, shape_statement(log2_capacity, trace_length))
        held: dict[int, ZkChain] = {}

        def chains(symbol: int) -> ZkChain:      # as daemon/zk_store.ZkStore.chain gives them
            if symbol not in held:
                held[symbol] = ZkChain(zk_key, symbol, log2_capacity, trace_length, options)
            return held[symbol]
    else:
        bits = conjectured_security(options, book_length(capacity), trace_length)
    print(f"{len(ops):,} operations in batches of up to {batch_size}, capacity {capacity}, "
          + (f"zk mode, ops traces of {trace_length} rows" if zk else
             f"ops traces of up to {trace_length} rows") + f", {bits} bits", file=out)
    print(f"{'batch':>6} {'ops':>6} {'trades':>7} {'prove s':>8} {'KiB':>7}  post root", file=out)
    seen = np.zeros(batch_size, np.int64)
    for start in range(0, len(ops) + batch_size, batch_size):
        chunk = ops[start:start + batch_size]
        closed = sequencer.feed(chunk, seen[:len(chunk)], 0.0) if len(chunk) else \
            sequencer.close_all(CloseReason.FLUSH)
        if sequencer.refused:
            print(f"zksidecar prove: {where}: {sequencer.refused} operations do not continue the "
                  "stream (see the log)", file=sys.stderr)
            return 1
        for batch in closed:
            t0 = time.perf_counter()
            try:
                proof = prove_job(ProofJob.of(batch, security, chains))
            except ValueError as exc:     # zk mode: records outside the lane's encoding
                print(f"zksidecar prove: {where}: batch {batch.batch_id}: {exc}", file=sys.stderr)
                return 2
            raw = proof_file.encode(proof)
            name = os.path.join(out_dir, manifest.batch_file_name(batch.batch_id))
            with open(name, "wb" if not zk else "xb") as f:       # zk: never over a file
                f.write(raw)
            print(f"{batch.batch_id:>6} {len(batch.ops):>6} {len(batch.trades):>7} "
                  f"{time.perf_counter() - t0:>8.2f} {len(raw) / 1024:>7.1f}  "
                  f"{proof.post_root.hex()[:16]}…  "
                  + ("(resumed) " if batch.resumed else "") + name, file=out)
    stranded = {s: b.held for s, b in sequencer.shadows.items() if b.held}
    if stranded:
        print(f"zksidecar prove: {where}: " + "; ".join(
            f"symbol {s}: {n} operations past a gap at seq {sequencer.shadows[s].book.next_seq} are not proven "
            "(fewer than a stream needs to resume there)" for s, n in sorted(stranded.items())), file=sys.stderr)
        return 1
    return 0


def _describe(segment: ChainSegment, first: bool) -> str:
    ids = f"batches {segment.first_batch}..{segment.last_batch}"
    if first:
        return f"{ids} from the empty book"
    lost = f"operations {segment.expected}..{segment.first_seq - 1} never reached the sidecar" \
        if segment.first_seq > segment.expected else "its time went back"
    return f"{ids} from where the stream resumed at {segment.first_seq} ({lost})"


def _stated(c: Checked, symbol: int) -> ChainPoint:
    """Where batch `c` says its chain stood before it: its stated pre-state,
    the start of an unanchored segment (a store whose earlier batches
    retention archived)."""
    return ChainPoint(c.config(symbol), c.pre_root, c.pre_link, c.first_seq, c.first_ts, c.batch_id,
                      c.mode, c.chain_ops_length, c.chain_options)


def _report(symbol: int, segments: list[ChainSegment], prior: SymbolRecord | None = None,
            archived: int = 0) -> str:
    """One line for a symbol whose chain verified, whole or across breaks;
    with `prior`, continuing the chain a verification report covers; with
    `archived` batches before it (and no report), from the first kept
    batch's stated pre-state."""
    if prior is None:
        ops = sum(s.ops for s in segments)
        n = sum(s.batches for s in segments)
        done = segments[-1].verified
        if archived:
            return (f"symbol {symbol}: {n} batches, {ops:,} operations verified from batch "
                    f"{archived}'s stated pre-state, UNANCHORED: batches 0..{archived - 1} are "
                    f"archived (--since a report of their archive, `verify ARCHIVE/symbol-{symbol} "
                    f"--report R`, or one from before, anchors it)"
                    + (f", in {len(segments)} segments (the stream resumed past a gap)"
                       if len(segments) > 1 else "")
                    + f" ({done.security_bits} bits); final state root {done.roots['book.post'].hex()}")
        if len(segments) == 1:
            return (f"symbol {symbol}: {n} batches, {ops:,} operations verified from the empty "
                    f"book ({done.security_bits} bits); final state root {done.roots['book.post'].hex()}")
        parts = "; ".join(_describe(seg, k == 0) for k, seg in enumerate(segments))
        return (f"symbol {symbol}: BROKEN: {n} batches, {ops:,} operations verified root to root "
                f"in {len(segments)} segments (the book is proven the same across each break; the "
                f"stream is not): {parts}")
    n = prior.batches + sum(s.batches for s in segments)
    ops = prior.operations + sum(s.ops for s in segments)
    breaks = [seg for seg in segments if seg.expected is not None]
    by_report = (f"batches {prior.first_batch}..{prior.last_batch} by the report (their proofs "
                 "unchanged)")
    new = (f", batches {segments[0].first_batch}..{segments[-1].last_batch} continuing batch "
           f"{prior.last_batch}" if segments else f", nothing after batch {prior.last_batch}")
    root = (segments[-1].verified.roots["book.post"] if segments else prior.point.root).hex()
    if prior.segments > 1 or breaks:
        total = prior.segments + len(breaks)
        return (f"symbol {symbol}: BROKEN: {n} batches, {ops:,} operations verified root to root "
                f"in {total} segments ({by_report}{new}"
                + "".join(f"; {_describe(seg, False)}" for seg in breaks)
                + f"); final state root {root}")
    return (f"symbol {symbol}: {n} batches, {ops:,} operations verified from the empty book: "
            f"{by_report}{new}; final state root {root}")


class _Refused(Exception):
    """A report this run does not continue (its message says why): exit 2."""


def _prior(since: str, min_security: int, store: bool) -> verify_report.Report:
    """The report `since`, read, of the right kind and at this run's
    threshold.  A store's verification (`store`) continues a report of
    either kind: one of proof files is how the archive of what retention
    removed (`verify ARCHIVE/symbol-S --report R`) anchors the batches the
    store kept; proof files do not continue a store's report."""
    try:
        rep = verify_report.read(since)
    except OSError as exc:
        raise _Refused(f"{since}: {exc.strerror or exc}") from None
    except verify_report.ReportError as exc:
        raise _Refused(str(exc)) from None
    if rep.store is not None and not store:
        raise _Refused(f"{since} is a report on a proof store: give --store DIR")
    if rep.min_security != min_security:
        why = ("its proofs were verified at fewer bits than this run demands: verify from the "
               "start (without --since)" if min_security > rep.min_security else
               f"a report records one threshold for every batch it covers: give --min-security "
               f"{rep.min_security}, or verify from the start")
        raise _Refused(f"{since} was written at --min-security {rep.min_security}, this run "
                       f"asks {min_security}: {why}")
    return rep


def _same_mode(since: str, rec: SymbolRecord, mode: str, where: str) -> None:
    """_Refused unless proofs of `mode` (the first at `where`) may continue
    the report's chain `rec`: a chain is all one mode."""
    if mode != rec.point.mode:
        raise _Refused(f"{since}: symbol {rec.symbol} is a {rec.point.mode} chain in the report, and "
                       f"{where} is a {mode} proof: a chain is all one mode, so a report is continued "
                       f"only by proofs of its mode; give the report of this {mode} chain, or verify from "
                       "the start (without --since)")


def _stored_mode(store: ProofStore, symbol: int) -> str | None:
    """The mode of `symbol`'s proofs in `store`, read from its newest (which
    retention never archives); None if it cannot be read (the verification
    that follows says why)."""
    ids = store.batches(symbol)
    try:
        pub = proof_file.decode_public(store.get(symbol, ids[-1]))
    except (StoreError, ProofFormatError, IndexError):
        return None
    return "zk" if pub.zk is not None else "transparent"


def _unchanged(since: str, rec: SymbolRecord, digests) -> None:
    """_Refused unless the SHA-256 chain over `digests` ((where, each
    proof's SHA-256 or why it cannot be read), in chain order) is the
    report's."""
    digest = verify_report.NO_PROOFS
    for where, sha in digests:
        if isinstance(sha, str):
            raise _Refused(f"{since}: symbol {rec.symbol}: {where}, which the report covers, "
                           f"cannot be read ({sha}): verify from the start (without --since)")
        digest = verify_report.chain_digest(digest, sha)
    if digest != rec.proofs_sha256:
        raise _Refused(f"{since}: symbol {rec.symbol}: the proofs of batches {rec.first_batch}.."
                       f"{rec.last_batch} are not the ones the report covers (their SHA-256 chain "
                       f"is {digest.hex()}, the report's {rec.proofs_sha256.hex()}): verify from "
                       "the start (without --since)")


def _record(symbol: int, chain: ChainCheck, digest: bytes, prior: SymbolRecord | None,
            files: list[str] | None) -> SymbolRecord:
    """The report's record of `symbol` after this run: `prior`'s extended by
    the chain's segments, or the chain's alone."""
    segs = chain.segments
    bits = [s.verified.security_bits for s in segs] + ([prior.security_bits] if prior else [])
    if prior is None:
        first, n, ops, count = segs[0].first_batch, 0, 0, len(segs)
        old_files: tuple[str, ...] = ()
    else:
        first, n, ops = prior.first_batch, prior.batches, prior.operations
        count = prior.segments + sum(s.expected is not None for s in segs)
        old_files = prior.files or ()
    return SymbolRecord(symbol, first, n + sum(s.batches for s in segs),
                        ops + sum(s.ops for s in segs), count, min(bits),
                        chain.point if segs else prior.point, digest,
                        None if files is None else old_files + tuple(files))


def _report_overwrites_input(report: str | None, inputs: Iterable[str | None]) -> bool:
    """Whether `report` is one of `inputs` (by device and inode: a link or
    another spelling of the path is the same file), said on stderr.  Checked
    before anything is verified: the report, written over a proof or a
    manifest, would lose it.  (The report it continues, --since, is not
    among them: continuing a report in place is what a nightly run does.)"""
    if report is None:
        return False
    try:
        st = os.stat(report)
    except OSError:
        return False                      # not there yet: no input is it
    for path in inputs:
        try:
            same = path is not None and os.path.samestat(st, os.stat(path))
        except OSError:
            continue
        if same:
            print(f"zksidecar verify: --report {report} is {path}, an input of this run: the "
                  "report would be written over it; name another file", file=sys.stderr)
            return True
    return False


def _inside(path: str, directory: str) -> bool:
    """Whether `path` is in `directory` or below it, links resolved: the
    file a link there leads to, or the link itself (a rename over `path`,
    json_file.write, replaces the link where it is)."""
    top = os.path.realpath(directory)
    where = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))),
                         os.path.basename(path))
    return any(os.path.commonpath([p, top]) == top for p in (os.path.realpath(path), where))


def _report_unwritable(report: str | None) -> bool:
    """Whether `report` names what no report can be written to (a device, a
    FIFO, a directory: json_file.check_target), said on stderr.  Asked before
    anything is verified: a store's verification may take hours."""
    if report is None:
        return False
    try:
        json_file.check_target(report)
    except OSError as exc:
        _report_failed(report, exc)
        return True
    return False


def _report_failed(path: str, exc: OSError) -> None:
    print(f"zksidecar verify: report {path}: {exc.strerror or exc}", file=sys.stderr)


def _write_report(path: str, rep: verify_report.Report, out) -> int:
    try:
        verify_report.write(path, rep)
    except OSError as exc:
        _report_failed(path, exc)
        return 2
    print(f"report written to {path}: continue from it with --since {path}", file=out)
    return 0


def verify_main(paths: list[str], min_security: int, out=None,
                max_trace_length: int = MAX_TRACE_LENGTH, after: str | None = None,
                jobs: int | None = None, report: str | None = None, since: str | None = None,
                progress: bool | None = None) -> int:
    """`zksidecar verify PROOF...`: 0 if the files verify as one chain from
    the empty book (or, with `after`, continuing the batch in that file:
    from its post-state), 3 if they verify in segments (recorded breaks), 1
    if not, 2 for a file that cannot be read.  Every message names a batch
    by its batch id, and the file it came from.

    `jobs` processes verify the proofs (None: every core; tools/verify_jobs.py),
    the links are checked in chain order: the same verdicts and messages
    whatever the count.  `report`: write a verification report
    (prover/orderbook/verify_report.py) when the chain verifies.  `since`:
    continue the chain such a report covers, once the SHA-256 chain of its
    files is recomputed and matches (2 if it does not, or the report is
    malformed); files it covers given again at the head of `paths` are
    skipped.  `progress`: a progress line on stderr (None: on a terminal)."""
    # (--since R --report R is allowed: R is read whole before anything is
    # verified and replaced at the end as one rename, json_file.write)
    if _report_unwritable(report) or _report_overwrites_input(report, [*paths, after]):
        return 2
    prior = None
    jobs = jobs or default_jobs()
    current: list[str] = []
    prev = None
    try:
        with Checker(jobs, min_security, max_trace_length, progress, len(paths),
                     digest=report is not None) as checker:
            rehashed = None
            if since is not None:
                prior = _prior(since, min_security, store=False).symbols[0]
                covered = list(prior.files)
                given = [os.path.abspath(p) for p in paths]
                if given[:len(covered)] == covered:
                    paths = paths[len(covered):]
                elif set(given) & set(covered):
                    raise _Refused(f"{next(p for p in paths if os.path.abspath(p) in covered)} is "
                                   f"covered by {since}: give the files after it (or all of "
                                   "them, from the first)")
                # re-hashed while the files after them are verified; checked
                # before any verdict on those (the finally below)
                rehashed = checker.sha256s(covered, verifying=len(paths))
                if checker.progress:
                    checker.progress.total = len(paths)
            try:
                if after is not None:
                    current[:] = [after]
                    prev = check_path(after, min_security, max_trace_length)
                    if isinstance(prev, Exception):
                        raise prev
                    symbol = prev.symbol
                elif prior is not None:
                    symbol = prior.symbol
                else:
                    first = input_file.read(paths[0], proof_file.max_file_bytes(max_trace_length),
                                            "batch proof file")
                    symbol = int(proof_file.decode_public(first).symbol)
                chain = ChainCheck(min_security, symbol, max_trace_length,
                                   prev if prev is not None else prior.point if prior else None)
                digest = prior.proofs_sha256 if prior else verify_report.NO_PROOFS
                for path, c in zip(paths, checker.files(paths)):
                    current[:] = [path]
                    if prior is not None:
                        _same_mode(since, prior, c.mode, path)
                    chain.add(c)
                    digest = verify_report.chain_digest(digest, c.sha256)
            finally:
                # a report whose files changed is refused, whatever became of
                # the files after them (its _Refused replaces their verdict)
                if rehashed is not None:
                    _unchanged(since, prior, rehashed)
        segments = chain.result() if prior is None or paths else []
    except _Refused as exc:
        print(f"zksidecar verify: {exc}", file=sys.stderr)
        return 2
    except (OSError, ProofFormatError) as exc:
        print(f"zksidecar verify: {paths[0]}: {getattr(exc, 'strerror', None) or exc}",
              file=sys.stderr)
        return 2
    except (Unreadable, WorkerDied) as exc:
        print(f"zksidecar verify: {exc}", file=sys.stderr)
        return 2
    except VerificationError as exc:
        where = f" ({current[0]})" if current else ""
        print(f"zksidecar verify: REJECTED: {exc}{where}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"zksidecar verify: out of memory committing the empty book at the trace length "
              f"the first proof claims (a lower --max-trace-length refuses such claims)",
              file=sys.stderr)
        return 1
    if prior is not None:
        status = 3 if prior.segments > 1 or any(s.expected is not None for s in segments) else 0
        print(f"{since}: " + _report(symbol, segments, prior), file=out)
    elif prev is not None:
        first, done = segments[0], segments[-1].verified
        ids = f"batch {first.first_batch}" if len(paths) == 1 else \
            f"batches {first.first_batch}..{segments[-1].last_batch}"
        since_text = f"batch {prev.batch_id} ({after})"
        if len(segments) > 1 or first.expected is not None:
            print(f"{ids}: BROKEN: verified root to root from {since_text}, but the stream resumed "
                  f"past a gap or after its time went back: "
                  + "; ".join(_describe(seg, False) for seg in segments if seg.expected is not None),
                  file=out)
            return 3
        print(f"verified {ids} ({sum(s.ops for s in segments):,} operations) continuing "
              f"{since_text}: its pre-state is that batch's post-state; {done.security_bits} bits; "
              f"final state root {done.roots['book.post'].hex()}", file=out)
        return 0
    elif len(segments) > 1:
        print(_report(symbol, segments), file=out)
        status = 3
    else:
        first, done = segments[0], segments[-1].verified
        mode = " zk" if chain.point.mode == "zk" else ""
        print(f"verified {first.batches}{mode} batches ({first.ops:,} operations) root to root from the "
              f"empty book, batch ids {first.first_batch}..{first.last_batch}, "
              f"{done.security_bits} bits; final state root {done.roots['book.post'].hex()}", file=out)
        status = 0
    if report is not None:
        rec = _record(symbol, chain, digest, prior, [os.path.abspath(p) for p in paths])
        return _write_report(report, verify_report.Report(min_security, None, (rec,)), out) \
            or status
    return status


def verify_store(directory: str, min_security: int = 100, out=None,
                 max_trace_length: int = MAX_TRACE_LENGTH, jobs: int | None = None,
                 report: str | None = None, since: str | None = None,
                 progress: bool | None = None) -> int:
    """`zksidecar verify --store DIR`: every symbol's batches, in batch-id
    order, verified as one chain from the empty book, or in segments where
    the stream resumed past a gap; a missing batch id is a failure.  Prints
    a line per symbol.  Exit status 0 if every chain is whole and verifies,
    3 if every one verifies but some in segments (breaks), 1 if any does
    not (an empty store verifies nothing and is a failure too, and a store
    holding proofs of both modes is refused before any is verified), 2 if
    the store cannot be read.  `jobs`, `report`, `since` and `progress` as
    verify_main's, per symbol (a report covers every symbol; a symbol it
    does not name is verified from the empty book)."""
    if report is not None and _inside(report, directory):
        print(f"zksidecar verify: --report {report} is inside the store {directory}, whose files "
              "(its proofs, their private files) a report could be written over; name a file "
              "outside it", file=sys.stderr)
        return 2
    if _report_unwritable(report):
        return 2
    try:
        rep = _prior(since, min_security, store=True) if since is not None else None
    except _Refused as exc:
        print(f"zksidecar verify: {exc}", file=sys.stderr)
        return 2
    store = _open_store("verify", directory)
    if store is None:
        return 2

    def stored_digests(symbol: int, ids):
        for bid in ids:
            try:
                yield f"batch {bid}", hashlib.sha256(store.get(symbol, bid)).digest()
            except StoreError as exc:
                yield f"batch {bid}", str(exc)

    failed = broken = unanchored = total_batches = total_ops = 0
    records = []
    with store:
        symbols = store.symbols()
        if not symbols:
            print(f"zksidecar verify: {directory}: the store holds no proofs", file=out)
            return 1
        mixed = mixed_problem(directory, proofs_by_mode(store, every_proof(store, symbols)))
        if mixed:
            print(f"zksidecar verify: FAILED: {mixed}", file=out)
            return 1
        runs, priors = {}, {}
        try:
            for rec in rep.symbols if rep else ():
                held = set(store.batches(rec.symbol)) if rec.symbol in symbols else set()
                if not held.issuperset(range(rec.first_batch, rec.last_batch + 1)):
                    other = rep.store is not None and rep.store != os.path.abspath(directory)
                    raise _Refused(f"{since}: symbol {rec.symbol}: the store no longer holds "
                                   f"batches {rec.first_batch}..{rec.last_batch}, which the "
                                   "report covers: verify from the start (without --since)"
                                   + (f"; the report was written on the store {rep.store}" if other else ""))
                mode = _stored_mode(store, rec.symbol)
                if mode is not None:
                    _same_mode(since, rec, mode, f"{directory}'s newest batch of symbol {rec.symbol}")
                kept = store.first_kept(rec.symbol)
                if kept > rec.last_batch + 1:
                    raise _Refused(f"{since}: symbol {rec.symbol}: the store archived batches up "
                                   f"to {kept - 1}, past the report's last ({rec.last_batch}): "
                                   "continue from a report reaching batch "
                                   f"{kept - 1}, or verify without --since")
                if not kept:        # archived proofs cannot be re-hashed: the bridge checks them
                    _unchanged(since, rec, stored_digests(
                        rec.symbol, range(rec.first_batch, rec.last_batch + 1)))
                priors[rec.symbol] = rec
        except _Refused as exc:
            print(f"zksidecar verify: {exc}", file=sys.stderr)
            return 2
        for symbol in symbols:
            ids = store.batches(symbol)
            missing = sorted(set(range(ids[-1] + 1)) - set(ids))
            run = ids[:missing[0]] if missing else ids      # the chain up to the first gap
            prior = priors.get(symbol)
            kept = store.first_kept(symbol)
            run = [b for b in run if b >= kept]
            # a report and archived batches: the kept batches it covers verify from the
            # first one's stated pre-state and must reach the report's point (the bridge)
            bridge = [b for b in run if prior is not None and kept and b <= prior.last_batch]
            runs[symbol] = (missing, bridge, kept,
                            [b for b in run if prior is None or b > prior.last_batch])
        jobs = jobs or default_jobs()
        total = sum(len(bridge) + len(run) for _, bridge, _, run in runs.values())
        with Checker(jobs, min_security, max_trace_length, progress, total,
                     digest=report is not None) as checker:
            for symbol in symbols:
                missing, bridge, kept, run = runs[symbol]
                prior = priors.get(symbol)
                chain = ChainCheck(min_security, symbol, max_trace_length,
                                   prior.point if prior else None)
                digest = prior.proofs_sha256 if prior else verify_report.NO_PROOFS
                try:
                    if bridge:
                        side = ChainCheck(min_security, symbol, max_trace_length)
                        for c in checker.stored(store, symbol, bridge):
                            side.start = side.start or _stated(c, symbol)
                            side.add(c)
                        p, q = side.point, prior.point
                        if (p.root, p.link, p.next_seq, p.next_id) != (q.root, q.link, q.next_seq,
                                                                         q.next_id):
                            raise VerificationError(
                                f"batches {kept}..{prior.last_batch}, kept after retention "
                                f"archived those before, verify from batch {kept}'s stated "
                                f"pre-state but do not end where the report {since} says "
                                f"batch {prior.last_batch} does")
                    for c in checker.stored(store, symbol, run):
                        if prior is None and kept and chain.start is None:
                            chain.start = _stated(c, symbol)
                        chain.add(c)
                        digest = verify_report.chain_digest(digest, c.sha256)
                    segments = chain.result() if run else []
                except WorkerDied as exc:
                    print(f"zksidecar verify: {exc}", file=sys.stderr)
                    return 2
                except (Unreadable, VerificationError, MemoryError) as exc:
                    if checker.progress:
                        checker.progress.clear()
                    why = "out of memory" if isinstance(exc, MemoryError) else str(exc)
                    print(f"symbol {symbol}: FAILED: {why}", file=out)
                    failed += 1
                    continue
                ops = sum(s.ops for s in segments)
                if checker.progress:
                    checker.progress.clear()
                if missing:
                    shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
                    before = (prior.operations if prior else 0) + ops
                    print(f"symbol {symbol}: FAILED: missing batch {shown} (a chain has no gaps)"
                          + (f"; batches 0..{missing[0] - 1} before it verify ({before:,} "
                             "operations)" if missing[0] else ""), file=out)
                    failed += 1
                    continue
                total_batches += sum(s.batches for s in segments) + (prior.batches if prior else 0)
                total_ops += ops + (prior.operations if prior else 0)
                broken += (prior.segments if prior else 1) + \
                    sum(s.expected is not None for s in segments) > 1
                unanchored += bool(kept) and prior is None
                print(_report(symbol, segments, prior, 0 if prior else kept), file=out)
                records.append(_record(symbol, chain, digest, prior, None))
    if failed:
        print(f"zksidecar verify: {failed} of {len(symbols)} symbols FAILED", file=out)
        return 1
    print(f"verified {len(symbols)} symbols, {total_batches} batches, {total_ops:,} operations"
          + (f" ({sum(r.batches for r in priors.values())} batches by the report {since}, "
             "their proofs unchanged)" if priors else "")
          + (f"; {broken} of them BROKEN: their streams resumed past operations that never "
             "reached the sidecar (the proofs connect each segment, not the segments)"
             if broken else "")
          + (f"; {unanchored} of them UNANCHORED: verified from their first kept batch, those "
             "before archived" if unanchored else ""), file=out)
    status = 3 if broken else 0
    if report is not None:
        rep = verify_report.Report(min_security, os.path.abspath(directory), tuple(records))
        return _write_report(report, rep, out) or status
    return status


def verify_exported(directory: str, min_security: int, out=None,
                    max_trace_length: int = MAX_TRACE_LENGTH, **verify) -> int:
    """`zksidecar verify DIR`: an exported chain (`zksidecar export`): its
    manifest read (exit 2 if it cannot be), every file's SHA-256, batch id,
    symbol and sequence numbers checked against it (1 if one differs), then
    the files verified as one chain from the empty book (verify_main, which
    `verify` options go to)."""
    try:
        m = manifest.read(directory)
    except FileNotFoundError:
        print(f"zksidecar verify: {directory} is a directory without {manifest.NAME}: give "
              f"proof files, a directory `zksidecar export` wrote, or --store DIR", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"zksidecar verify: {exc.filename or directory}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except manifest.ManifestError as exc:
        print(f"zksidecar verify: {exc}", file=sys.stderr)
        return 2
    if _report_overwrites_input(verify.get("report"), [os.path.join(directory, manifest.NAME)]):
        return 2
    try:
        paths = [manifest.check_file(directory, m.symbol, e) for e in m.batches]
    except manifest.ManifestError as exc:
        print(f"zksidecar verify: REJECTED: {exc}", file=sys.stderr)
        return 1
    print(f"{directory}: symbol {m.symbol}, {len(paths)} proof files match "
          f"{manifest.NAME} (SHA-256, batch ids, sequence numbers)", file=out)
    return verify_main(paths, min_security, out=out, max_trace_length=max_trace_length, **verify)


def export_main(store_dir: str, symbol: int, out_dir: str, out=None) -> int:
    """`zksidecar export --store DIR --symbol S --out DIR2`: symbol S's
    proofs, in batch-id order, copied out of the store as batch proof files
    with a manifest (prover/orderbook/manifest.py), which `zksidecar verify
    DIR2` checks.  Exit 0 when written; 1 if the chain cannot be exported
    whole (a missing batch, proofs of both modes, a damaged entry); 2 for
    bad usage (a store that cannot be read, a symbol it holds no proofs of,
    an output directory in use)."""
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        print(f"zksidecar export: {out_dir} is not empty: give a new or empty directory",
              file=sys.stderr)
        return 2
    store = _open_store("export", store_dir)
    if store is None:
        return 2
    with store:
        missing = store.no_symbol(symbol)
        if missing:                     # a wrong parameter, as reprove and store prune say it
            print(f"zksidecar export: {missing}", file=sys.stderr)
            return 2
        ids = store.batches(symbol)
        kept = store.first_kept(symbol)
        if kept:
            print(f"zksidecar export: symbol {symbol}: batches 0..{kept - 1} are archived (retention "
                  "removed their proofs; `zksidecar store archive --to DIR` put them in "
                  f"DIR/symbol-{symbol}, itself an exported chain), and an exported chain starts at "
                  f"batch 0. Hand over the archive, and verify the batches kept here after it with "
                  f"`zksidecar verify --store {store_dir} --since R`, R from `zksidecar verify "
                  f"DIR/symbol-{symbol} --report R`", file=sys.stderr)
            return 1
        missing = sorted(set(range(ids[0], ids[-1] + 1)) - set(ids))
        if ids[0] != 0 or missing:
            gap = [*range(ids[0])][:10] if ids[0] else missing[:10]
            print(f"zksidecar export: symbol {symbol}: missing batch "
                  f"{', '.join(map(str, gap))}{' …' if len(gap) == 10 else ''} (a chain "
                  "starts at batch 0 and has no gaps)", file=sys.stderr)
            return 1
        mixed = mixed_problem(store_dir, proofs_by_mode(store, every_proof(store, [symbol])))
        if mixed:
            print(f"zksidecar export: symbol {symbol}: {mixed}", file=sys.stderr)
            return 1
        group = perms.group_of_dir(store_dir)      # the copy is never wider than the store
        made = not os.path.isdir(out_dir)
        try:
            perms.make_dirs(out_dir, group)        # an existing one keeps the operator's mode
        except OSError as exc:
            print(f"zksidecar export: {out_dir}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        entries: list[manifest.Entry] = []
        try:
            path = copy_chain(store, symbol, ids, out_dir, entries, group=group)
        except (StoreError, ProofFormatError) as exc:
            _discard_export(out_dir, ids[:len(entries) + 1], made)
            print(f"zksidecar export: symbol {symbol} batch {ids[len(entries)]}: {exc}"
                  + ("; `zksidecar reprove --config FILE` proves a damaged batch again while "
                     "the journal holds it (docs/STORE.md, \"Proving a damaged proof again\")"
                     if isinstance(exc, StoreCorrupt) else ""), file=sys.stderr)
            return 1
        except OSError as exc:
            _discard_export(out_dir, ids[:len(entries) + 1], made)
            print(f"zksidecar export: {out_dir}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    print(f"exported symbol {symbol}: batches {ids[0]}..{ids[-1]} (seq {entries[0].first_seq}.."
          f"{entries[-1].last_seq}) to {out_dir}, described by {path}; "
          f"check it with `zksidecar verify {out_dir}`", file=out)
    return 0


def _discard_export(out_dir: str, ids: list[int], made: bool) -> None:
    """A failed export's files taken out of `out_dir` again (the proof files
    of batches `ids`, the last perhaps written in part; the manifest is
    written last, so there is none), and `out_dir` itself if the export
    made it: a failed export leaves nothing that looks like part of a
    chain."""
    for bid in ids:
        try:
            os.unlink(os.path.join(out_dir, manifest.batch_file_name(bid)))
        except FileNotFoundError:
            pass
    if made:
        try:
            os.rmdir(out_dir)
        except OSError:
            pass                 # something else was put there meanwhile: not ours to remove


def _open_store(command: str, directory: str) -> ProofStore | None:
    """The store at `directory`, read-only; None when it cannot be read, the
    reason printed as `zksidecar COMMAND: DIR: why` (the caller exits 2).
    Damaged index entries it opened around, and a torn tail it read past,
    are named on stderr."""
    problem = not_a_store(directory)
    if problem:
        print(f"zksidecar {command}: {directory}: {problem}", file=sys.stderr)
        return None
    try:
        store = ProofStore(directory, fsync=False, readonly=True)
    except (StoreError, OSError) as exc:
        print(f"zksidecar {command}: {directory}: {exc}", file=sys.stderr)
        return None
    for line in store.damage:
        print(f"zksidecar {command}: {line}", file=sys.stderr)
    if store.torn_tail:
        print(f"zksidecar {command}: note: {store.torn_tail}: a proof whose write a crash cut short, "
              "not counted here; the daemon drops it when it next starts and proves that batch "
              "again from its journal", file=sys.stderr)
    return store


def copy_chain(store: ProofStore, symbol: int, ids: list[int], out_dir: str,
               entries: list[manifest.Entry], advance=lambda: None, group: int | None = None) -> str:
    """Batches `ids` of `symbol` copied out of `store` into `out_dir` as
    batch proof files (each synced), appended to `entries` (those `out_dir`
    already holds, in chain order), and the manifest written over them
    all; returns its path.  `advance()` after each file.  Every file is
    made 0600 (0640 owned by `group`) whatever the umask (daemon/perms.py):
    a proof carries its batch's records.  Raises StoreError /
    ProofFormatError for a proof that cannot be copied (the manifest is
    then not written), OSError for the directory."""
    for bid in ids:
        data = store.get(symbol, bid)
        name = manifest.batch_file_name(bid)
        e = manifest.entry(name, data)
        if e.batch_id != bid:
            raise StoreCorrupt(store.directory, 0, f"stored as batch {bid}, the proof is batch "
                               f"{e.batch_id}")
        fm.write_whole(os.path.join(out_dir, name), data, True, OSError, OSError, "a proof", group)
        entries.append(e)
        advance()
    path = os.path.join(out_dir, manifest.NAME)
    fm.write_whole(path, manifest.encode(symbol, entries), True, OSError, OSError, "the manifest", group)
    return path
