"""`zksidecar prove FILE` and `zksidecar verify PROOF...`.

prove: reads operations in the engine's file forms (engine/replay.py: the CSV
form or LOBSTER messages), cuts them into batches, proves each batch from the
empty book as one chain, writes one batch proof file per batch
(docs/PROOF_FORMAT.md, "Batch proof file") and prints a line per batch.

verify: reads batch proof files and verifies them as a chain from the empty
book, in the order given; exit status 0 only if every one verifies.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from ...engine import replay
from ...engine.book import Book
from ..proof import ProofFormatError
from ..verify import VerificationError
from . import proof_file
from .batch import prove_batch, verify_chain
from .params import proof_options
from .witness import trace_length_for


def read_ops(path: str, fmt: str, capacity: int) -> np.ndarray:
    """The file's operations as records, file ids resolved to the engine's
    handles (a scratch engine run, as `zksidecar replay` does)."""
    chunks: list[np.ndarray] = []
    with open(path, newline="") as f:
        first = f.readline()
        f.seek(0)
        fmt = replay.detect(first) if fmt == "auto" else fmt
        events = replay.read_csv(f) if fmt == "csv" else replay.read_lobster(f)
        replay.run(events, Book(capacity), on_ops=lambda ops: chunks.append(ops.copy()))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=replay.records.OP_DTYPE)


def prove_main(path: str, fmt: str, capacity: int, batch_size: int, out_dir: str,
               security: int, trace_length: int | None = None, out=sys.stdout) -> int:
    if capacity < 16 or capacity & (capacity - 1):
        print(f"zksidecar prove: capacity must be a power of two >= 16, got {capacity}", file=sys.stderr)
        return 2
    if batch_size < 1:
        print("zksidecar prove: batch size must be at least 1", file=sys.stderr)
        return 2
    try:
        ops = read_ops(path, fmt, capacity)
    except (OSError, replay.FileError) as exc:
        print(f"zksidecar prove: {path}: {exc}", file=sys.stderr)
        return 2
    if not len(ops):
        print(f"zksidecar prove: {path}: no operations", file=sys.stderr)
        return 2
    # one trace length for the whole chain (every proof of a chain shares it)
    trace_length = trace_length or trace_length_for(capacity, batch_size)
    if trace_length & (trace_length - 1) or trace_length < capacity:
        print(f"zksidecar prove: trace length must be a power of two >= the capacity, got "
              f"{trace_length}", file=sys.stderr)
        return 2
    options = proof_options(security)
    os.makedirs(out_dir, exist_ok=True)
    print(f"{len(ops):,} operations in batches of {batch_size}, capacity {capacity}, "
          f"trace length {trace_length}, {options.conjectured_security(trace_length)} bits", file=out)
    print(f"{'batch':>6} {'ops':>6} {'trades':>7} {'prove s':>8} {'KiB':>7}  post root", file=out)
    state = Book(capacity)
    for b, start in enumerate(range(0, len(ops), batch_size)):
        t0 = time.perf_counter()
        try:
            bp, state, trades = prove_batch(state, ops[start:start + batch_size], options,
                                            trace_length=trace_length, batch_id=b)
        except ValueError as exc:
            print(f"zksidecar prove: batch {b}: {exc} (use a larger --trace-length or a "
                  "smaller --batch-size)", file=sys.stderr)
            return 1
        raw = proof_file.encode(bp)
        name = os.path.join(out_dir, f"batch-{b:06d}.zkb")
        with open(name, "wb") as f:
            f.write(raw)
        print(f"{b:>6} {len(bp.public.ops):>6} {len(trades):>7} {time.perf_counter() - t0:>8.2f} "
              f"{len(raw) / 1024:>7.1f}  {bp.post_root.hex()[:16]}…  {name}", file=out)
    return 0


def verify_main(paths: list[str], min_security: int, out=sys.stdout) -> int:
    batches = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                batches.append(proof_file.decode(f.read()))
        except (OSError, ProofFormatError) as exc:
            print(f"zksidecar verify: {p}: {exc}", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    try:
        done = verify_chain(batches, min_security=min_security, symbol=int(batches[0].public.symbol))
    except VerificationError as exc:
        print(f"zksidecar verify: REJECTED: {exc}", file=sys.stderr)
        return 1
    ops = sum(len(b.public.ops) for b in batches)
    print(f"verified {len(batches)} batches ({ops:,} operations) root to root from the empty "
          f"book in {time.perf_counter() - t0:.2f} s, {done.security_bits} bits; "
          f"final state root {done.roots['post'].hex()}", file=out)
    return 0
