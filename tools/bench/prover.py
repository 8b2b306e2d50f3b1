"""The `prover` benchmark suite (`zksidecar bench prover`): order-book batch
proofs on the synthetic flow, at >= 100 bits of conjectured security, one core.

The baseline beside the figures is the engine itself on the same operations
(how much slower proving is than matching), measured in the same run.
``--lane-probe`` adds zk mode's record-lane probe beside the batch
(lane_probe.py).
"""
from __future__ import annotations

import resource
import statistics
import time

from zksidecar.daemon.malloc import keep_proof_buffers
from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.prover.orderbook.air import book_length, exec_columns
from zksidecar.prover.orderbook.batch import (BookState, prepare_batch, prove_batch, prove_prepared,
                                              verify_batch)
from zksidecar.prover.orderbook.params import LOG_BLOWUP, conjectured_security, proof_options
from zksidecar.prover.orderbook.witness import ops_length_for, trace_length_for
from zksidecar.prover.proof import Proof

BATCH = 1 << 14
CAPACITY = 1 << 14
SINGLE_CAPACITY = 1 << 10
#: unmeasured engine runs before the baseline's five (see prover())
ENGINE_WARM_UP = 5


def prover(sw, lane_probe: bool = False) -> dict:
    # the daemon's ops cap for this batch size: each batch is proven at the
    # rows it takes (rows_for), at most this
    cap = trace_length_for(CAPACITY, BATCH)
    s = book_length(CAPACITY)
    sw.step(f"synthetic flow: a book of ~4,000 orders, then batches of {BATCH} operations")
    ops = flow.generate(4_000 + 2 * BATCH, seed=2026, capacity=CAPACITY,
                        params=flow.FlowParams(depth=4_000), prefill=4_000)
    book = Book(CAPACITY)
    book.process(ops[:4_000].copy())
    # the baseline: the engine's traced run of the batch (what the witness is
    # built from), on a copy of the book made before the clock starts, at
    # its steady speed, as a daemon's shadow book runs: the median of five
    # runs after ENGINE_WARM_UP unmeasured ones.  The first runs of a
    # process fault in fresh pages (their buffers are mmapped until the
    # allocator's threshold rises) and take up to three times as long, so a
    # median over them moves the ratio by half from run to run
    engine_runs = []
    for i in range(ENGINE_WARM_UP + 5):
        again, work = Book.from_cells(book.cells), ops[4_000:4_000 + BATCH].copy()
        t0 = time.perf_counter()
        _, steps = again.process_traced(work)
        if i >= ENGINE_WARM_UP:
            engine_runs.append(time.perf_counter() - t0)
    engine_s = statistics.median(engine_runs)
    trace_length = ops_length_for(steps)                 # the first batch's T'
    assert trace_length <= cap
    options = proof_options(100, s, trace_length)

    sw.step("proving batch 1 (warm-up) and batch 2 (measured)")
    # malloc as a daemon's proof worker runs it (a proof's arrays kept for
    # the next), set after the baseline: the engine's runs above keep
    # glibc's thresholds (with these they ran ~25 % faster)
    keep_proof_buffers()
    first = ops[4_000:4_000 + BATCH]
    state: BookState = BookState.of(book, options.log_blowup)
    proof1, state, _ = prove_batch(state, first, options)
    t0 = time.perf_counter()
    prep = prepare_batch(state, ops[4_000 + BATCH:], options)
    second = (prep.public.book_length, prep.public.ops_length)
    if second != (s, trace_length):       # the parameters of the batch's own heights
        options = proof_options(100, *second)
    proof2, state, _ = prove_prepared(prep, options)
    prove_s = time.perf_counter() - t0
    trace_length = prep.public.ops_length
    steps = int((prep.witness.columns["sZ"] == 0).sum())  # rows that are not padding
    statement = proof2.public.statement()
    raw = proof2.proof.to_bytes(statement)
    sw.step("verifying batch 2")
    verify_s = sw.per_call(lambda: verify_batch(Proof.from_bytes(raw, statement), proof2.public),
                           samples=3)

    sw.step(f"a batch of one operation, capacity {SINGLE_CAPACITY}")
    small = Book(SINGLE_CAPACITY)
    small_ops = flow.generate(201, seed=7, capacity=SINGLE_CAPACITY,
                              params=flow.FlowParams(depth=200), prefill=200)
    small.process(small_ops[:200].copy())
    # the `ops` domain sized to the one operation (T' = rows_for of its
    # rows), the `book` domain to the capacity, as a daemon proves it
    _, one = Book.from_cells(small.cells).process_traced(small_ops[200:].copy())
    single_t = ops_length_for(one)
    single_options = proof_options(100, book_length(SINGLE_CAPACITY), single_t)
    single_state = BookState.of(small, LOG_BLOWUP)
    single_s = sw.per_call(lambda: prove_batch(single_state, small_ops[200:], single_options),
                           samples=3)

    figures = {
        "batch_ops": BATCH,
        "capacity": CAPACITY,
        "trace_length": trace_length,           # the batch's ops rows, T'
        "book_length": s,
        "ops_per_s": BATCH / prove_s,
        "prove_s": prove_s,
        "engine_ops_per_s": BATCH / engine_s,
        "proving_vs_matching": prove_s / engine_s,
        "single_op_ms": single_s * 1e3,
        "single_op_trace_length": single_t,     # its ops rows (the book domain: 2^10)
        "proof_kib": len(raw) / 1024,
        "verify_ms": verify_s * 1e3,
        "rows_per_op": steps / BATCH,
        "columns": len(exec_columns(trace_length)),    # ops; the book domain has 18 more
        "security_bits": conjectured_security(options, s, trace_length),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "phases": {k: round(v, 4) for k, v in proof2.timings.items()},
    }
    if lane_probe:
        from .lane_probe import lane_probe as probe

        figures.update(probe(sw, options, {"prove_s": prove_s, "phases": proof2.timings}))
    return figures
