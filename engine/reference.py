"""A plain reference matching engine: docs/MATCHING.md written as obvious
Python (sorted lists, a dict of live orders), sharing no code or constants
with the engine.

It is the other side of the differential tests (tests/test_engine_diff.py)
and the baseline of `zksidecar bench engine`.  It models slots and
generations only as far as the documented handle rule requires: a stack of
free slots (lowest first) and a generation per slot, bumped on free.
"""
from __future__ import annotations

import bisect
import hashlib
import struct

LIMIT, IOC, MARKET, FOK, POST_ONLY, CANCEL, REDUCE = range(1, 8)
BUY, SELL = 1, 2
RESTED, FILLED, EXPIRED, CANCELLED, REDUCED, REJECTED = range(1, 7)
(NONE, BAD_KIND, BAD_SIDE, BAD_PRICE, BAD_QTY, BAD_FLAGS, UNKNOWN_HANDLE, STALE_HANDLE, WOULD_CROSS,
 FOK_UNFILLABLE, BOOK_FULL) = range(11)
MAX = 2**30 - 2**27
GEN_LIMIT = 2**30


class Order:
    __slots__ = ("key", "price", "qty", "account", "handle")

    def __init__(self, key, price, qty, account, handle):
        self.key, self.price, self.qty, self.account, self.handle = key, price, qty, account, handle

    def __lt__(self, other):
        return self.key < other.key


class ReferenceBook:
    def __init__(self, capacity: int, symbol: int = 0):
        self.symbol = symbol
        self.free = list(range(capacity - 1, 0, -1))  # top of the stack is the lowest slot
        self.gen = [0] * capacity
        self.sides = {BUY: [], SELL: []}  # best first
        self.live = {}  # handle -> (side, Order)
        self.arrivals = 0

    def apply(self, seq, kind, side, price, qty, handle, account, flags=0):
        """One operation.  Returns (status, reason, handle, filled, trades),
        trades as (taker_seq, maker_handle, taker_handle, price, qty,
        maker_account, taker_account, symbol, taker_side) tuples."""
        if flags & ~3:  # CLAIMED | CRITICAL: the only bits an operation may carry
            return REJECTED, BAD_FLAGS, handle, 0, []
        if kind in (CANCEL, REDUCE):
            return self._cancel_or_reduce(kind, qty, handle)
        if kind not in (LIMIT, IOC, MARKET, FOK, POST_ONLY):
            return REJECTED, BAD_KIND, handle, 0, []
        if side not in (BUY, SELL):
            return REJECTED, BAD_SIDE, 0, 0, []
        if kind != MARKET and not 1 <= price <= MAX:
            return REJECTED, BAD_PRICE, 0, 0, []
        if not 1 <= qty <= MAX:
            return REJECTED, BAD_QTY, 0, 0, []
        if kind == MARKET:
            price = MAX if side == BUY else 1
        other = self.sides[SELL if side == BUY else BUY]

        def crosses(maker):
            return maker.price <= price if side == BUY else maker.price >= price

        if kind == POST_ONLY:
            if other and crosses(other[0]):
                return REJECTED, WOULD_CROSS, 0, 0, []
            if not self.free:
                return REJECTED, BOOK_FULL, 0, 0, []
        if kind == FOK and sum(m.qty for m in other if crosses(m)) < qty:
            return REJECTED, FOK_UNFILLABLE, 0, 0, []

        trades, remaining = [], qty
        while remaining and other and crosses(other[0]):
            maker = other[0]
            fill = min(remaining, maker.qty)
            trades.append([seq, maker.handle, 0, maker.price, fill, maker.account, account,
                           self.symbol, side])
            remaining -= fill
            maker.qty -= fill
            if maker.qty == 0:
                other.pop(0)
                self._free(maker.handle)
        filled = qty - remaining
        if remaining == 0:
            return FILLED, NONE, 0, filled, [tuple(t) for t in trades]
        if kind not in (LIMIT, POST_ONLY):
            return EXPIRED, NONE, 0, filled, [tuple(t) for t in trades]
        if not self.free:
            return REJECTED, BOOK_FULL, 0, filled, [tuple(t) for t in trades]
        slot = self.free.pop()
        new = self.gen[slot] << 32 | slot
        self.arrivals += 1
        key = (-price if side == BUY else price, self.arrivals)
        order = Order(key, price, remaining, account, new)
        bisect.insort(self.sides[side], order)
        self.live[new] = (side, order)
        for t in trades:
            t[2] = new
        return RESTED, NONE, new, filled, [tuple(t) for t in trades]

    def _cancel_or_reduce(self, kind, qty, handle):
        if kind == REDUCE and not 1 <= qty <= MAX:
            return REJECTED, BAD_QTY, handle, 0, []
        slot, gen = handle & 0xFFFFFFFF, handle >> 32
        if slot == 0 or slot >= len(self.gen) or gen >= GEN_LIMIT:
            return REJECTED, UNKNOWN_HANDLE, handle, 0, []
        if handle not in self.live:
            return REJECTED, STALE_HANDLE, handle, 0, []
        side, order = self.live[handle]
        if kind == REDUCE and qty < order.qty:
            order.qty -= qty
            return REDUCED, NONE, handle, 0, []
        self.sides[side].remove(order)
        self._free(handle)
        return CANCELLED, NONE, handle, 0, []

    def _free(self, handle):
        slot = handle & 0xFFFFFFFF
        del self.live[handle]
        self.gen[slot] = (self.gen[slot] + 1) % GEN_LIMIT
        self.free.append(slot)

    def orders(self, side):
        """(price, qty, account) of the resting orders of `side`, best first."""
        return [(o.price, o.qty, o.account) for o in self.sides[side]]

    def digest(self) -> bytes:
        """docs/MATCHING.md, "Digest"."""
        out = b"zksidecar.book.v1\0" + struct.pack("<I", self.symbol)
        for side in (BUY, SELL):
            rows = self.orders(side)
            out += struct.pack("<I", len(rows))
            out += b"".join(struct.pack("<III", *row) for row in rows)
        return hashlib.sha256(out).digest()
