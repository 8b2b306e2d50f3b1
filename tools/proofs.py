"""`zksidecar prove FILE`, `zksidecar verify PROOF...` and `zksidecar verify
--store DIR`.

prove: reads operations in the engine's file forms (engine/replay.py: the CSV
form or LOBSTER messages), cuts them into batches with the daemon's
sequencer, proves each batch as the daemon's workers do (one chain from the
empty book), writes one batch proof file per batch
(docs/PROOF_FORMAT.md, "Batch proof file") and prints a line per batch.

verify: reads batch proof files and verifies them as a chain from the empty
book, in the order given; exit status 0 only if every one verifies.

verify --store: every symbol's chain in a daemon's proof store
(docs/STORE.md).
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from zksidecar.daemon.batches import BatchPolicy, CloseReason
from zksidecar.daemon.config import BOOK_MAX_CAPACITY, BOOK_MIN_CAPACITY
from zksidecar.daemon.jobs import ProofJob, prove_job
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.sequencer import Sequencer
from zksidecar.daemon.store import ProofStore, StoreCorrupt, StoreError
from zksidecar.engine import replay
from zksidecar.engine.book import Book
from zksidecar.prover.orderbook import proof_file
from zksidecar.prover.orderbook.batch import ChainSegment, verify_history
from zksidecar.prover.orderbook.params import MAX_TRACE_LENGTH, proof_options
from zksidecar.prover.orderbook.witness import trace_length_for
from zksidecar.prover.proof import ProofFormatError
from zksidecar.prover.verify import VerificationError


def read_ops(path: str, fmt: str, capacity: int) -> np.ndarray:
    """The file's operations as records, file ids resolved to the engine's
    handles (a scratch engine run, as `zksidecar replay` does).  Raises
    replay.FileError naming every malformed line: the file is refused whole."""
    chunks: list[np.ndarray] = []
    with open(path, "rb") as f:
        replay.run(replay.read(f, fmt), Book(capacity), on_ops=lambda ops: chunks.append(ops.copy()))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=replay.records.OP_DTYPE)


def prove_main(path: str, fmt: str, capacity: int, batch_size: int, out_dir: str,
               security: int, trace_length: int | None = None, out=sys.stdout) -> int:
    problem = replay.check_capacity(capacity, BOOK_MIN_CAPACITY, BOOK_MAX_CAPACITY)
    if problem:
        print(f"zksidecar prove: {problem}", file=sys.stderr)
        return 2
    if batch_size < 1:
        print("zksidecar prove: batch size must be at least 1", file=sys.stderr)
        return 2
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
    # one trace length for the whole chain (every proof of a chain shares it);
    # the daemon's sequencer cuts the batches: at batch_size operations, or
    # where the next operation's steps would not fit the trace (a file has
    # no clock, so no batch times out)
    trace_length = trace_length or trace_length_for(capacity, batch_size)
    try:
        sequencer = Sequencer(capacity, trace_length, BatchPolicy(batch_size, 1.0), Metrics())
        options = proof_options(security, trace_length)
    except ValueError as exc:
        print(f"zksidecar prove: {exc}", file=sys.stderr)
        return 2
    os.makedirs(out_dir, exist_ok=True)
    print(f"{len(ops):,} operations in batches of up to {batch_size}, capacity {capacity}, "
          f"trace length {trace_length}, {options.conjectured_security(trace_length)} bits", file=out)
    print(f"{'batch':>6} {'ops':>6} {'trades':>7} {'prove s':>8} {'KiB':>7}  post root", file=out)
    seen = np.zeros(batch_size, np.int64)
    for start in range(0, len(ops) + batch_size, batch_size):
        chunk = ops[start:start + batch_size]
        closed = sequencer.feed(chunk, seen[:len(chunk)], 0.0) if len(chunk) else \
            sequencer.close_all(CloseReason.FLUSH)
        if sequencer.refused:
            print(f"zksidecar prove: {path}: {sequencer.refused} operations do not continue the "
                  "stream (see the log)", file=sys.stderr)
            return 1
        for batch in closed:
            t0 = time.perf_counter()
            proof = prove_job(ProofJob.of(batch, security))
            raw = proof_file.encode(proof)
            name = os.path.join(out_dir, f"batch-{batch.batch_id:06d}.zkb")
            with open(name, "wb") as f:
                f.write(raw)
            print(f"{batch.batch_id:>6} {len(batch.ops):>6} {len(batch.trades):>7} "
                  f"{time.perf_counter() - t0:>8.2f} {len(raw) / 1024:>7.1f}  "
                  f"{proof.post_root.hex()[:16]}…  {name}", file=out)
    return 0


def _describe(segment: ChainSegment, first: bool) -> str:
    ids = f"batches {segment.first_batch}..{segment.last_batch}"
    if first:
        return f"{ids} from the empty book"
    lost = f"operations {segment.expected}..{segment.first_seq - 1} never reached the sidecar" \
        if segment.first_seq > segment.expected else "its time went back"
    return f"{ids} from where the stream resumed at {segment.first_seq} ({lost})"


def _report(symbol: int, segments: list[ChainSegment]) -> str:
    """One line for a symbol whose chain verified, whole or across breaks."""
    ops = sum(s.ops for s in segments)
    n = sum(s.batches for s in segments)
    done = segments[-1].verified
    if len(segments) == 1:
        return (f"symbol {symbol}: {n} batches, {ops:,} operations verified from the empty book "
                f"({done.security_bits} bits); final state root {done.roots['post'].hex()}")
    parts = "; ".join(_describe(seg, k == 0) for k, seg in enumerate(segments))
    return (f"symbol {symbol}: BROKEN: {n} batches, {ops:,} operations verified root to root "
            f"in {len(segments)} segments (the book is proven the same across each break; the "
            f"stream is not): {parts}")


class _Unreadable(Exception):
    """A proof that cannot be read, raised out of the stream of proofs a
    chain verifier is consuming (`where` names it)."""

    def __init__(self, where: str, exc: Exception):
        super().__init__(f"{where}: {exc}")


def _files(paths: list[str]):
    """The proofs of `paths`, decoded one at a time as the verifier asks."""
    for p in paths:
        try:
            with open(p, "rb") as f:
                yield proof_file.decode(f.read())
        except (OSError, ProofFormatError) as exc:
            raise _Unreadable(p, exc) from None


def verify_main(paths: list[str], min_security: int, out=sys.stdout,
                max_trace_length: int = MAX_TRACE_LENGTH) -> int:
    """`zksidecar verify PROOF...`: 0 if the files verify as one chain from
    the empty book, 3 if they verify in segments (recorded breaks), 1 if
    not, 2 for a file that cannot be read."""
    t0 = time.perf_counter()
    try:
        with open(paths[0], "rb") as f:
            symbol = int(proof_file.decode_public(f.read()).symbol)
        segments = verify_history(_files(paths), min_security, symbol, max_trace_length)
    except (OSError, ProofFormatError) as exc:
        print(f"zksidecar verify: {paths[0]}: {exc}", file=sys.stderr)
        return 2
    except _Unreadable as exc:
        print(f"zksidecar verify: {exc}", file=sys.stderr)
        return 2
    except VerificationError as exc:
        print(f"zksidecar verify: REJECTED: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"zksidecar verify: out of memory committing the empty book at the trace length "
              f"the first proof claims (a lower --max-trace-length refuses such claims)",
              file=sys.stderr)
        return 1
    if len(segments) > 1:
        print(_report(symbol, segments), file=out)
        return 3
    done = segments[0].verified
    print(f"verified {segments[0].batches} batches ({segments[0].ops:,} operations) root to root "
          f"from the empty book in {time.perf_counter() - t0:.2f} s, {done.security_bits} bits; "
          f"final state root {done.roots['post'].hex()}", file=out)
    return 0


def verify_store(directory: str, min_security: int = 100, out=sys.stdout,
                 max_trace_length: int = MAX_TRACE_LENGTH) -> int:
    """`zksidecar verify --store DIR`: every symbol's batches, in batch-id
    order, verified as one chain from the empty book, or in segments where
    the stream resumed past a gap; a missing batch id is a failure.  Prints
    a line per symbol.  Exit status 0 if every chain is whole and verifies,
    3 if every one verifies but some in segments (breaks), 1 if any does
    not (an empty store verifies nothing and is a failure too), 2 if the
    store cannot be read.  One proof is held at a time."""
    try:
        store = ProofStore(directory, fsync=False, readonly=True)
    except (StoreError, OSError) as exc:
        print(f"zksidecar verify: {directory}: {exc}", file=sys.stderr)
        return 2

    def stored(symbol: int, ids: list[int]):
        for bid in ids:
            try:
                bp = proof_file.decode(store.get(symbol, bid))
            except (StoreCorrupt, ProofFormatError) as exc:
                raise _Unreadable(f"batch {bid} unreadable", exc) from None
            if bp.public.batch_id != bid or bp.public.symbol != symbol:
                raise VerificationError(f"stored as symbol {symbol} batch {bid}, the proof is "
                                        f"symbol {bp.public.symbol} batch {bp.public.batch_id}")
            yield bp

    failed = broken = total_batches = total_ops = 0
    with store:
        symbols = store.symbols()
        if not symbols:
            print(f"zksidecar verify: {directory}: the store holds no proofs", file=out)
            return 1
        for symbol in symbols:
            ids = store.batches(symbol)
            missing = sorted(set(range(ids[-1] + 1)) - set(ids))
            run = ids[:missing[0]] if missing else ids      # the chain up to the first gap
            try:
                segments = verify_history(stored(symbol, run), min_security, symbol,
                                          max_trace_length) if run else []
            except (_Unreadable, VerificationError, MemoryError) as exc:
                why = "out of memory" if isinstance(exc, MemoryError) else str(exc)
                print(f"symbol {symbol}: FAILED: {why}", file=out)
                failed += 1
                continue
            ops = sum(s.ops for s in segments)
            if missing:
                shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
                print(f"symbol {symbol}: FAILED: missing batch {shown} (a chain has no gaps)"
                      + (f"; batches 0..{len(run) - 1} before it verify ({ops:,} operations)"
                         if run else ""), file=out)
                failed += 1
                continue
            total_batches += sum(s.batches for s in segments)
            total_ops += ops
            broken += len(segments) > 1
            print(_report(symbol, segments), file=out)
    if failed:
        print(f"zksidecar verify: {failed} of {len(symbols)} symbols FAILED", file=out)
        return 1
    print(f"verified {len(symbols)} symbols, {total_batches} batches, {total_ops:,} operations"
          + (f"; {broken} of them BROKEN: their streams resumed past operations that never "
             "reached the sidecar (the proofs connect each segment, not the segments)"
             if broken else ""), file=out)
    return 3 if broken else 0
