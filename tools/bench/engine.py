"""`zksidecar bench engine`: the matching engine against the plain reference
(engine/reference.py), on the same synthetic flow in the same run.

Every figure starts from the same book: 10^4 resting orders built by the
flow's prefill, restored from a snapshot before each sample.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.engine.reference import ReferenceBook

CAPACITY = 1 << 15
DEPTH = 10_000
BATCH_OPS = 1_000_000
SUBMIT_OPS = 100_000
REFERENCE_OPS = 50_000
SEED = 2026


def engine(sw) -> dict:
    sw.step(f"flow: {DEPTH:,} resting orders, then {BATCH_OPS:,} operations")
    ops = flow.generate(DEPTH + BATCH_OPS, SEED, CAPACITY,
                        params=flow.FlowParams(depth=DEPTH), prefill=DEPTH)
    warm, run = ops[:DEPTH], ops[DEPTH:]
    book = Book(CAPACITY)
    book.process(warm.copy())
    snapshot = book.snapshot()
    fig: dict = {"resting_orders": len(book), "capacity": CAPACITY}

    sw.step("batch API")
    batch_s, trades = [], 0
    for _ in range(sw.samples):
        b, work = Book.restore(snapshot), run.copy()
        t0 = time.perf_counter()
        trades = len(b.process(work))
        batch_s.append(time.perf_counter() - t0)
    fig["resting_orders_end"] = len(b)
    fig["ops_per_s"] = len(run) / statistics.median(batch_s)
    fig["trades_per_op"] = trades / len(run)

    sw.step("per-order API")
    b = Book.restore(snapshot)
    args = run[:SUBMIT_OPS][["kind", "side", "price", "qty", "handle", "account", "ts_ns"]].tolist()
    lat = np.empty(len(args), dtype=np.int64)
    clock, submit = time.perf_counter_ns, b.submit
    for i, (kind, side, price, qty, handle, account, ts) in enumerate(args):
        t0 = clock()
        submit(kind, side, price, qty, handle=handle, account=account, ts_ns=ts)
        lat[i] = clock() - t0
    fig["submit_ns_p50"] = float(np.percentile(lat, 50))
    fig["submit_ns_p99"] = float(np.percentile(lat, 99))
    fig["submit_ops_per_s"] = len(lat) / (lat.sum() * 1e-9)

    sw.step(f"reference engine, {REFERENCE_OPS:,} operations")
    ref = ReferenceBook(CAPACITY)
    for op in warm.tolist():
        ref.apply(op[0], op[8], op[9], op[4], op[5], op[2], op[6])
    tail = run[:REFERENCE_OPS].tolist()
    t0 = time.perf_counter()
    for op in tail:
        ref.apply(op[0], op[8], op[9], op[4], op[5], op[2], op[6], op[10])
    fig["reference_ops_per_s"] = len(tail) / (time.perf_counter() - t0)
    fig["speedup_vs_reference"] = fig["ops_per_s"] / fig["reference_ops_per_s"]
    fig["submit_speedup_vs_reference"] = fig["submit_ops_per_s"] / fig["reference_ops_per_s"]
    return fig
