"""The engine against the plain reference (engine/reference.py) on random
flows, and the properties every run must have (hypothesis)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import flow_strategies

from zksidecar.engine import flow, invariants
from zksidecar.engine.book import Book
from zksidecar.engine.flow import FlowParams
from zksidecar.engine.records import Kind, Side, Status
from zksidecar.engine.reference import ReferenceBook

TRADE_FIELDS = ["taker_seq", "maker_handle", "taker_handle", "price", "qty", "maker_account",
                "taker_account", "symbol", "taker_side"]


def run_reference(ops, capacity, symbol=0):
    ref, outcomes, trades = ReferenceBook(capacity, symbol), [], []
    for op in ops.tolist():
        seq, _, handle, _, price, qty, account, _, kind, side, flags = op[:11]
        status, reason, h, filled, t = ref.apply(seq, kind, side, price, qty, handle, account, flags)
        outcomes.append((h, filled, len(t), status, reason))
        trades += t
    return ref, outcomes, trades


def test_differential_1e5_operations():
    capacity = 1 << 10
    ops = flow.generate(100_000, seed=7, capacity=capacity,
                        params=FlowParams(depth=1100, invalid=0.01))  # beyond capacity: fills it
    book = Book(capacity)
    trades = book.process(ops)
    ref, outcomes, ref_trades = run_reference(ops, capacity)
    mine = ops[["handle", "filled", "trades", "status", "reason"]].tolist()
    assert mine == outcomes
    assert trades[TRADE_FIELDS].tolist() == ref_trades
    assert book.digest() == ref.digest()
    for side in (Side.BUY, Side.SELL):
        assert book.orders(side)[["price", "qty", "account"]].tolist() == ref.orders(side)
    # the flow reached every outcome, including a full book
    assert set(np.unique(ops["status"])) == set(Status) - {Status.NONE}
    assert len(np.unique(ops["reason"])) == 11


flows = flow_strategies.flows(max_n=1500, max_depth=200)
make = flow_strategies.make


@settings(max_examples=60, deadline=None)
@given(flows)
def test_properties_of_random_flows(f):
    ops = make(f)
    book = Book(1 << f["log2"])
    trades = book.process(ops)
    invariants.check(book.cells)  # lists sorted, linked, never crossed; free list exact
    # quantity is conserved: takers' fills are makers' fills, one trade record each
    assert ops["filled"].sum() == trades["qty"].sum()
    assert ops["trades"].sum() == len(trades)
    # priority: a taker's fills go best price first, and never beyond its limit
    for seq in np.unique(trades["taker_seq"])[:50]:
        t = trades[trades["taker_seq"] == seq]
        prices = t["price"].astype(np.int64)
        step = np.diff(prices) * (1 if t["taker_side"][0] == Side.BUY else -1)
        assert (step >= 0).all()
    # the reference agrees
    ref, outcomes, ref_trades = run_reference(ops, 1 << f["log2"])
    assert ops[["handle", "filled", "trades", "status", "reason"]].tolist() == outcomes
    assert trades[TRADE_FIELDS].tolist() == ref_trades


@settings(max_examples=30, deadline=None)
@given(flows, st.data())
def test_determinism_and_snapshot_replay(f, data):
    ops = make(f)
    cut = data.draw(st.integers(0, len(ops)))
    a, b = Book(1 << f["log2"]), Book(1 << f["log2"])
    ta = a.process(ops.copy())
    first = b.process(ops[:cut].copy())
    c = Book.restore(b.snapshot())
    rest = c.process(ops[cut:].copy())
    assert np.array_equal(np.concatenate([first, rest]), ta)
    assert np.array_equal(a.cells, c.cells)
    assert a.digest() == c.digest()


@settings(max_examples=60, deadline=None)
@given(flows)
def test_quantity_is_conserved_order_by_order(f):
    """A ledger of every resting order's remaining lots, kept from the records
    alone: each trade takes its lots from a maker that has them, a taker never
    fills more than it asked, and the ledger ends equal to the book."""
    ops = make(f)
    book = Book(1 << f["log2"])
    trades = book.process(ops)
    by_taker: dict[int, list] = {}
    for t in trades.tolist():
        by_taker.setdefault(t[0], []).append(t)
    remaining: dict[int, int] = {}
    for op in ops:
        seq, kind, status = int(op["seq"]), int(op["kind"]), Status(op["status"])
        fills = by_taker.get(seq, [])
        assert sum(t[4] for t in fills) == op["filled"] and len(fills) == op["trades"]
        for t in fills:                       # (taker_seq, maker_handle, _, price, qty, ...)
            maker, lots = t[1], t[4]
            assert remaining.get(maker, 0) >= lots, "a maker gave lots it did not have"
            remaining[maker] -= lots
            if remaining[maker] == 0:
                del remaining[maker]
        if kind in (Kind.CANCEL, Kind.REDUCE):
            h = int(op["handle"])
            if status == Status.CANCELLED:
                del remaining[h]
            elif status == Status.REDUCED:
                assert remaining[h] > op["qty"]
                remaining[h] -= int(op["qty"])
        elif status != Status.REJECTED:   # a new order (invalid kinds are rejected)
            assert op["filled"] <= op["qty"]
            if status == Status.RESTED:
                remaining[int(op["handle"])] = int(op["qty"] - op["filled"])
            else:
                assert (status == Status.FILLED) == (op["filled"] == op["qty"])
    resting = {int(h): int(q) for side in (Side.BUY, Side.SELL)
               for h, q in book.orders(side)[["handle", "qty"]].tolist()}
    assert resting == remaining
