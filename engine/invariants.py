"""The invariants of a well-formed state table (docs/MATCHING.md, "State
table"), checked in plain Python: on every restore, since a snapshot is
untrusted input, and by the tests after every step of random flows.

Every walk is bounded by the capacity, so a cyclic or corrupt table is
reported, never looped on.
"""
from __future__ import annotations

import numpy as np

from .native import lib
from .records import MAX_PRICE, MAX_QTY, Side

HEADER = lib.ZK_BOOK_HEADER
COLUMNS = ("price", "qty", "side", "account", "prev", "next", "gen")


class CorruptState(ValueError):
    """A snapshot or table that is not a well-formed book."""


def check_shape(cells: np.ndarray) -> int:
    """The capacity of `cells` if they have a book's shape: a one-dimensional
    uint32 array of the header and the columns of a capacity in range, the
    reserved header cells zero.  CorruptState naming what is wrong
    otherwise.  Nothing is walked: this is what code that only reads cells
    (never runs the engine on them) needs to index them safely."""
    if not isinstance(cells, np.ndarray) or cells.ndim != 1 or cells.dtype != np.uint32:
        raise CorruptState("a book's cells are a one-dimensional array of uint32")
    if len(cells) <= HEADER:
        raise CorruptState(f"{len(cells)} cells cannot hold a book")
    log2 = int(cells[lib.ZK_HDR_LOG2_CAPACITY])
    if not lib.ZK_MIN_LOG2_CAPACITY <= log2 <= lib.ZK_MAX_LOG2_CAPACITY:
        raise CorruptState(f"capacity 2^{log2} out of range")
    cap = 1 << log2
    if len(cells) != HEADER + len(COLUMNS) * cap:
        raise CorruptState(f"{len(cells)} cells do not match a capacity of 2^{log2}")
    if cells[lib.ZK_HDR_LOG2_CAPACITY + 1:HEADER].any():
        raise CorruptState("reserved header cells are not zero")
    return cap


def check(cells: np.ndarray) -> None:
    """Raise CorruptState naming the first broken invariant of `cells`."""
    cap = check_shape(cells)
    col = {name: cells[HEADER + i * cap: HEADER + (i + 1) * cap].tolist()
           for i, name in enumerate(COLUMNS)}
    if any(col[name][0] for name in COLUMNS):
        raise CorruptState("the null slot 0 is not all zero")
    if max(col["gen"]) > lib.ZK_GEN_MASK:
        raise CorruptState("a generation exceeds 30 bits")
    hdr = cells[:HEADER].tolist()
    seen = [False] * cap
    seen[0] = True

    def visit(s: int, what: str) -> None:
        if not 0 < s < cap:
            raise CorruptState(f"{what}: slot {s} out of range")
        if seen[s]:
            raise CorruptState(f"{what}: slot {s} reached twice")
        seen[s] = True

    live = 0
    best = {}
    for side, head in ((Side.BUY, lib.ZK_HDR_BEST_BID), (Side.SELL, lib.ZK_HDR_BEST_ASK)):
        prev, s, last_price = 0, hdr[head], None
        while s:
            visit(s, f"{side.name} list")
            if col["side"][s] != side or col["prev"][s] != prev:
                raise CorruptState(f"{side.name} list: slot {s} has the wrong side or back link")
            price, qty = col["price"][s], col["qty"][s]
            if not (1 <= price <= MAX_PRICE and 1 <= qty <= MAX_QTY):
                raise CorruptState(f"{side.name} list: slot {s} has price {price}, qty {qty}")
            if last_price is not None and (price > last_price if side == Side.BUY else price < last_price):
                raise CorruptState(f"{side.name} list: slot {s} is out of price order")
            last_price = price
            best.setdefault(side, price)
            live += 1
            prev, s = s, col["next"][s]
        if hdr[head + 1] != prev:
            raise CorruptState(f"{side.name} list: the worst-order cell is {hdr[head + 1]}, not {prev}")
    if live != hdr[lib.ZK_HDR_LIVE]:
        raise CorruptState(f"{live} orders on the lists, the header says {hdr[lib.ZK_HDR_LIVE]}")
    if Side.BUY in best and Side.SELL in best and best[Side.BUY] >= best[Side.SELL]:
        raise CorruptState(f"crossed book: bid {best[Side.BUY]} >= ask {best[Side.SELL]}")

    s = hdr[lib.ZK_HDR_FREE_HEAD]
    while s:
        visit(s, "free list")
        if col["price"][s] or col["qty"][s] or col["side"][s] or col["account"][s] or col["prev"][s]:
            raise CorruptState(f"free slot {s} is not cleared")
        s = col["next"][s]
    if not all(seen):
        raise CorruptState(f"slot {seen.index(False)} is neither on a list nor free")
