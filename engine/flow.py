"""A synthetic order flow, reproducible from a seed: arrivals around a mid
price that random-walks, heavy-tailed (Pareto) sizes, marketable takers of
every kind, and cancels and reductions of orders that were live a moment
earlier (some of which fill before the cancel lands, as in a real market).

Cancels need handles, and handles are assigned by the engine, so the
generator runs the flow through a Book as it goes, in chunks: a chunk's
cancels pick from the orders live when the chunk was drawn.  The returned
records have their outcome fields cleared; replaying them on a fresh book of
the same capacity and symbol gives the same run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .book import Book
from .records import FLAG_CLAIMED, MAX_PRICE, MAX_QTY, OP_DTYPE, Kind, Side, join_handle

CHUNK = 256


@dataclass(frozen=True)
class FlowParams:
    mid: int = 100_000             # starting mid price, ticks
    move: float = 0.05             # chance per operation that the mid moves a tick (each way)
    depth: int = 1_000             # resting orders the cancel rate steers toward
    take: float = 0.15             # share of new orders that are marketable
    post_only: float = 0.05        # share of resting orders sent post-only
    cancel: float = 0.30           # cancel share when the book is at `depth`
    reduce: float = 0.05           # share of cancels that are partial (REDUCE)
    spread: float = 0.15           # resting orders sit Geometric(spread) - 1 ticks behind the touch
    size_alpha: float = 1.3        # Pareto tail index of order sizes
    size_scale: int = 5            # smallest typical size, lots
    accounts: int = 100
    invalid: float = 0.0           # share of malformed records (exercise every rejection)
    gap_ns: float = 1_000.0        # mean time between operations


def generate(n: int, seed: int, capacity: int = 1 << 14, symbol: int = 0,
             params: FlowParams = FlowParams(), prefill: int = 0) -> np.ndarray:
    """n operation records; the first `prefill` are resting limit orders that
    build a book before the mixed flow starts."""
    rng = np.random.default_rng(seed)
    book = Book(capacity, symbol)
    out = np.zeros(n, dtype=OP_DTYPE)
    mid, ts = params.mid, 0
    for start in range(0, n, CHUNK):
        ops = out[start:start + CHUNK]
        mid, ts = _draw(rng, book, ops, params, mid, ts, resting_only=start + len(ops) <= prefill)
        ops["seq"] = np.arange(start + 1, start + 1 + len(ops))
        ops["symbol"] = symbol
        book.process(ops)
    return cleared(out)


def cleared(records: np.ndarray) -> np.ndarray:
    """A copy of operation records with what the engine wrote into them
    cleared (outcome fields, the claim flag, a new order's handle): the
    inputs that, run again on the book they were run on, give them again."""
    out = records.copy()
    for name in ("filled", "trades", "status", "reason"):
        out[name] = 0
    out["flags"] &= np.uint16(~FLAG_CLAIMED & 0xFFFF)
    new_orders = out["kind"] != Kind.CANCEL
    new_orders &= out["kind"] != Kind.REDUCE
    out["handle"][new_orders] = 0
    return out


def _draw(rng, book: Book, ops: np.ndarray, p: FlowParams, mid: int, ts: int,
          resting_only: bool) -> tuple[int, int]:
    m = len(ops)
    # the mid holds still while the book is built, so the prefill never crosses
    move = 0.0 if resting_only else p.move
    steps = rng.choice(np.array([-1, 0, 1]), size=m, p=[move, 1 - 2 * move, move])
    mids = np.maximum(mid + np.cumsum(steps), 1000)
    times = ts + np.cumsum(rng.exponential(p.gap_ns, m)).astype(np.uint64)
    ops["ts_ns"] = times
    ops["client_id"] = rng.integers(1, 1 << 63, m, dtype=np.uint64)
    ops["account"] = rng.integers(1, p.accounts + 1, m)
    side = rng.integers(Side.BUY, Side.SELL + 1, m)
    ops["side"] = side
    sign = np.where(side == Side.BUY, 1, -1)
    sizes = np.minimum(np.ceil((rng.pareto(p.size_alpha, m) + 1) * p.size_scale), MAX_QTY)
    ops["qty"] = sizes.astype(np.uint32)

    # resting orders: behind the touch; marketable ones: through it
    behind = rng.geometric(p.spread, m)
    ops["price"] = mids - sign * behind
    ops["kind"] = np.where(rng.random(m) < p.post_only, Kind.POST_ONLY, Kind.LIMIT)
    ops["handle"] = 0
    if not resting_only:
        u = rng.random(m)
        # cancels steer the book toward `depth` resting orders
        cancel_share = min(0.9, p.cancel * (len(book) / max(p.depth, 1)) ** 4)
        taker = u < p.take * (1 - cancel_share)
        through = rng.geometric(0.5, m) - 1
        ops["price"][taker] = (mids + sign * through)[taker]
        ops["kind"][taker] = rng.choice(
            np.array([Kind.IOC, Kind.MARKET, Kind.FOK, Kind.LIMIT]), size=int(taker.sum()),
            p=[0.5, 0.15, 0.15, 0.2])
        ops["price"][ops["kind"] == Kind.MARKET] = 0
        live = np.flatnonzero(book.qty)
        cancel = (u >= 1 - cancel_share) & (len(live) > 0)
        if cancel.any():
            slots = rng.choice(live, size=int(cancel.sum())).astype(np.uint64)
            ops["handle"][cancel] = join_handle(slots, book.gen[slots])
            reduce = rng.random(int(cancel.sum())) < p.reduce
            ops["kind"][cancel] = np.where(reduce, Kind.REDUCE, Kind.CANCEL)
            ops["price"][cancel] = 0
            ops["qty"][cancel] = np.where(reduce, np.maximum(ops["qty"][cancel] // 2, 1), 0)
    if p.invalid:
        _corrupt(rng, ops, rng.random(m) < p.invalid)
    return int(mids[-1]), int(times[-1])


def _corrupt(rng, ops: np.ndarray, which: np.ndarray) -> None:
    """Break one field of each chosen record, so every rejection reason shows up."""
    idx = np.flatnonzero(which)
    how = rng.integers(0, 6, len(idx))
    for i, h in zip(idx.tolist(), how.tolist()):
        if h == 0:
            ops["qty"][i] = 0
        elif h == 1:
            ops["price"][i] = MAX_PRICE + 1
        elif h == 2:
            ops["side"][i] = 3
        elif h == 3:
            ops["kind"][i] = 9
        elif h == 4:
            ops["flags"][i] = 4
        else:
            ops["kind"][i] = Kind.CANCEL
            ops["handle"][i] = rng.integers(0, 1 << 40)
