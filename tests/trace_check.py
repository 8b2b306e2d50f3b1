"""Replay a batch's steps (engine/trace.py) against the proof state table: the
executable counterpart of the memory argument and of the step rules of
docs/STATEMENT.md, in plain Python.

`check` starts from proof_table(pre) and walks the steps in order:

- memory: every access's old word must equal the word the last write left at
  its address (a read sees the last write), then its new word is written; at
  the end the memory must equal proof_table(post).  This is what the LogUp
  memory argument proves, checked directly.
- each step's own rule, on its words alone: MATCH takes the header's best
  opposite order, within the taker's limit, for min(taker remaining, maker
  qty), and a filled maker is unlinked and freed; REST takes the free head and
  goes between two adjacent orders sorted around its price; CANCEL and REDUCE
  name the handle's live order; PEEK writes nothing.
- each operation: BEGIN and END around its steps, in order; its MATCHes are
  its trade records; its outcome (rested, cancelled, reduced, rejected) has
  the step that makes it; a taker that is not filled ends with a PEEK proving
  the side empty or its head not crossing; a rejection's reason is proven by
  its reads.

It is a checker for tests and for people debugging a witness, not the proof:
it trusts nothing in the trace, but it runs in Python, at some 10^5 steps per
second.  TraceError names the step that breaks a rule: operations in order,
within one its step rules before its memory accesses.
"""
from __future__ import annotations

import numpy as np

from zksidecar.engine.invariants import COLUMNS, HEADER
from zksidecar.engine.native import lib
from zksidecar.engine.proof_table import HEADER_FIELDS, WORD, proof_table
from zksidecar.engine.records import Kind, Reason, Side, Status
from zksidecar.engine.trace import ACCESSES, Access, StepKind

H, A, B, C = Access
_HDR = {name: i for i, name in enumerate(HEADER_FIELDS)}
PRICE, QTY, SIDE, ACCT_LO, ACCT_HI, PREV, NEXT, GEN = range(WORD)
GEN_MASK = lib.ZK_GEN_MASK
ZERO = [0] * WORD
TAKERS = (Kind.LIMIT, Kind.IOC, Kind.MARKET, Kind.FOK)


class TraceError(ValueError):
    """A trace that does not replay; `step` is the index of the offending step
    (len(steps) for a problem found at the end)."""

    def __init__(self, message: str, step: int):
        super().__init__(f"step {step}: {message}")
        self.step = step


def _best(side: int) -> int:
    """Header cell of the best order of `side` (the worst follows it)."""
    return _HDR["best_bid"] if side == Side.BUY else _HDR["best_ask"]


def _crosses(side: int, limit: int | None, price: int) -> bool:
    """A taker of `side` with this limit (None: MARKET) may trade at `price`."""
    return limit is None or (price <= limit if side == Side.BUY else price >= limit)


class _Step:
    """One step record as Python values, with its accesses by name."""
    __slots__ = ("index", "op", "kind", "mask", "addr", "old", "new")

    def __init__(self, index: int, row: tuple):
        self.index = index
        self.op, kind, self.mask, reserved, self.addr, self.old, self.new = row
        self.kind = StepKind(kind) if kind in StepKind._value2member_map_ else kind
        if reserved:
            raise TraceError("reserved field is not zero", index)

    def has(self, j: int) -> bool:
        return bool(self.mask >> j & 1)

    def fail(self, message: str):
        name = self.kind.name if isinstance(self.kind, StepKind) else f"kind {self.kind}"
        raise TraceError(f"{name} of operation {self.op}: {message}", self.index)


class _Replay:
    def __init__(self, pre_cells: np.ndarray, ops: np.ndarray, trades: np.ndarray,
                 steps: np.ndarray):
        self.mem = proof_table(pre_cells).tolist()
        self.ops = ops
        self.trades = trades.tolist()
        self.t = 0  # next trade record
        # field by field: tolist() of a whole record leaves its sub-arrays numpy
        rows = zip(*(steps[name].tolist() for name in steps.dtype.names))
        self.steps = [_Step(i, row) for i, row in enumerate(rows)]
        self.pos = 0

    # -------------------------------------------------------------- memory --
    def access(self, st: _Step) -> None:
        """The memory argument for one step: reads see the last writes, then
        the step's writes land."""
        used = []
        for j in range(ACCESSES):
            if not st.has(j):
                if st.addr[j] or st.old[j] != ZERO or st.new[j] != ZERO:
                    st.fail(f"access {Access(j).name} is not made but its fields are not zero")
                continue
            addr = st.addr[j]
            if (addr != 0) if j == H else not 0 < addr < len(self.mem):
                st.fail(f"access {Access(j).name} at address {addr}")
            if addr in used:
                st.fail(f"two accesses to address {addr}")
            used.append(addr)
            if st.old[j] != self.mem[addr]:
                st.fail(f"access {Access(j).name} read {st.old[j]} at address {addr}, "
                        f"but the last write left {self.mem[addr]}")
        for j in range(ACCESSES):
            if st.has(j):
                self.mem[st.addr[j]] = st.new[j]

    # -------------------------------------------------------------- steps --
    def next_step(self, op: int) -> _Step:
        if self.pos == len(self.steps):
            raise TraceError(f"the trace ends inside operation {op}", self.pos)
        st = self.steps[self.pos]
        self.pos += 1
        if st.op != op:
            st.fail(f"expected a step of operation {op}")
        if not isinstance(st.kind, StepKind):
            st.fail("unknown step kind")
        if st.kind == StepKind.PEEK and (st.new != st.old or not st.mask or st.mask & ~(1 << H | 1 << A)):
            st.fail("a PEEK reads the header and/or one slot and writes nothing")
        return st

    def expect(self, st: _Step, kind: StepKind, mask: int) -> None:
        if st.kind != kind:
            st.fail(f"expected {kind.name}")
        if st.mask != mask:
            st.fail(f"access mask {st.mask:#x}, expected {mask:#x}")

    def run(self) -> None:
        for i, op in enumerate(self.ops.tolist()):
            self.operation(i, dict(zip(self.ops.dtype.names, op)))
        if self.pos != len(self.steps):
            raise TraceError("steps after the last operation", self.pos)
        if self.t != len(self.trades):
            raise TraceError(f"{len(self.trades) - self.t} trade records no MATCH made", self.pos)

    def operation(self, i: int, op: dict) -> None:
        begin = self.next_step(i)
        self.expect(begin, StepKind.BEGIN, 0)
        status, reason, kind = op["status"], op["reason"], op["kind"]
        body = []
        while True:
            end = self.next_step(i)
            if end.kind == StepKind.END:
                self.expect(end, StepKind.END, 0)
                break
            if end.kind == StepKind.BEGIN:
                end.fail("BEGIN inside an operation")
            body.append(end)
        if status == Status.REJECTED:
            for st in body:
                if st.kind != StepKind.PEEK:
                    st.fail("a rejected operation wrote")
            self.rejection(op, reason, body, end)
        elif kind in (Kind.CANCEL, Kind.REDUCE):
            self.cancel_or_reduce(op, body, end)
        else:
            self.new_order(op, body, end)
        # the memory last: a step that breaks its rule is named even when
        # it also makes a later read of the operation inconsistent
        for st in [begin] + body + [end]:
            self.access(st)

    # ---------------------------------------------------------- new orders --
    def new_order(self, op: dict, body: list[_Step], end: _Step) -> None:
        side, kind = op["side"], op["kind"]
        opposite = Side.SELL if side == Side.BUY else Side.BUY
        limit = None if kind == Kind.MARKET else op["price"]
        it = iter(body)
        st = next(it, None)
        if kind == Kind.POST_ONLY:
            self.head_peek(st, end, opposite, side, limit, crossing=False)
            st = next(it, None)
        elif kind == Kind.FOK:
            st, available = self.fok_walk(st, it, end, opposite, side, limit, op["qty"])
            if available < op["qty"]:
                (st or end).fail(f"FOK traded with {available} crossing lots of {op['qty']}")
        remaining, trades = op["qty"], 0
        while st is not None and st.kind == StepKind.MATCH:
            remaining -= self.match(st, op, opposite, limit, remaining)
            trades += 1
            st = next(it, None)
        if op["filled"] != op["qty"] - remaining or op["trades"] != trades:
            (st or end).fail(f"the MATCHes fill {op['qty'] - remaining} lots in {trades} trades, "
                             f"the record says {op['filled']} in {op['trades']}")
        if remaining and kind != Kind.POST_ONLY:  # what stopped the taker
            self.head_peek(st, end, opposite, side, limit, crossing=False)
            st = next(it, None)
        if op["status"] == Status.RESTED:
            if st is None or st.kind != StepKind.REST:
                (st or end).fail("a RESTED order without its REST step")
            self.rest(st, op, remaining)
            st = next(it, None)
        elif remaining and op["kind"] in (Kind.LIMIT, Kind.POST_ONLY):
            (st or end).fail("a limit order with a remainder that does not rest")
        if st is not None:
            st.fail("unexpected step")

    def head_peek(self, st: _Step | None, end: _Step, opposite: int, side: int,
                  limit: int | None, crossing: bool) -> None:
        """A PEEK of the header and the opposite head, which must cross
        (`crossing`) or not, an empty side counting as not crossing."""
        if st is None or st.kind != StepKind.PEEK or not st.has(H):
            (st or end).fail("expected a PEEK of the header and the opposite head")
        head = st.old[H][_best(opposite)]
        if st.addr[A] != head:
            st.fail(f"PEEK of slot {st.addr[A]}, the opposite head is {head}")
        does = bool(head) and _crosses(side, limit, st.old[A][PRICE])
        if does != crossing:
            st.fail("the opposite head " + ("does not cross" if crossing else "crosses"))

    def fok_walk(self, st: _Step | None, it, end: _Step, opposite: int, side: int,
                 limit: int | None, want: int) -> tuple[_Step | None, int]:
        """The FOK look-ahead: PEEKs from the opposite head along next links,
        adding crossing quantity until `want`, a maker that does not cross or
        the end of the side.  Returns the step after it and the quantity."""
        if st is None or st.kind != StepKind.PEEK or not st.has(H):
            (st or end).fail("a FOK starts with a PEEK of the header")
        slot, total = st.old[H][_best(opposite)], 0
        while True:
            if st.addr[A] != slot:
                st.fail(f"PEEK of slot {st.addr[A]}, the walk is at slot {slot}")
            if slot == 0:
                return next(it, None), total
            maker = st.old[A]
            if not _crosses(side, limit, maker[PRICE]):
                return next(it, None), total
            total += maker[QTY]
            slot = maker[NEXT]
            if total >= want or slot == 0:
                return next(it, None), total
            st = next(it, None)
            if st is None or st.kind != StepKind.PEEK or st.mask != 1 << A:
                (st or end).fail("the FOK walk stops before it is decided")

    def match(self, st: _Step, op: dict, opposite: int, limit: int | None, remaining: int) -> int:
        """One MATCH; returns its fill."""
        hdr, maker, new = st.old[H], st.old[A], st.new[A]
        if not st.has(H) or not st.has(A) or st.has(C):
            st.fail(f"access mask {st.mask:#x}")
        if st.addr[A] != hdr[_best(opposite)]:
            st.fail(f"trades with slot {st.addr[A]}, the best opposite order is {hdr[_best(opposite)]}")
        if maker[SIDE] != opposite or maker[QTY] == 0 or maker[PREV] != 0:
            st.fail("the maker is not a live head of the opposite side")
        if not _crosses(op["side"], limit, maker[PRICE]):
            st.fail(f"the maker's price {maker[PRICE]} does not cross the limit {limit}")
        fill = min(remaining, maker[QTY])
        if new[QTY] != maker[QTY] - fill:
            st.fail(f"the maker's qty goes {maker[QTY]} -> {new[QTY]}, the fill is {fill}")
        if self.t == len(self.trades):
            st.fail("a MATCH without its trade record")
        trade = dict(zip(("taker_seq", "maker_handle", "taker_handle", "price", "qty",
                          "maker_account", "taker_account"), self.trades[self.t][:7]))
        self.t += 1
        expected = {"taker_seq": op["seq"], "maker_handle": maker[GEN] << 32 | st.addr[A],
                    "price": maker[PRICE], "qty": fill,
                    "taker_handle": op["handle"],  # 0 unless the remainder rested
                    "maker_account": maker[ACCT_LO] | maker[ACCT_HI] << 16,
                    "taker_account": op["account"]}
        for name, value in expected.items():
            if trade[name] != value:
                st.fail(f"trade {self.t - 1}: {name} is {trade[name]}, the MATCH gives {value}")
        if new[QTY]:  # partial: the maker keeps its word but the quantity
            if st.has(B) or st.new[H] != hdr or new[:QTY] + new[QTY + 1:] != maker[:QTY] + maker[QTY + 1:]:
                st.fail("a partly filled maker changed more than its quantity")
        else:
            nxt = maker[NEXT]
            if st.has(B) != bool(nxt) or (nxt and st.addr[B] != nxt):
                st.fail(f"B is slot {st.addr[B]}, the maker's next is {nxt}")
            if nxt:
                self.relinked(st, B, PREV, 0)
            self.freed(st, A)
            after = list(hdr)
            after[_best(opposite)] = nxt
            if nxt == 0:
                after[_best(opposite) + 1] = 0
            after[_HDR["free_head"]], after[_HDR["live"]] = st.addr[A], hdr[_HDR["live"]] - 1
            if st.new[H] != after:
                st.fail(f"header {st.new[H]} after unlinking, expected {after}")
        return fill

    def rest(self, st: _Step, op: dict, remaining: int) -> None:
        side, price = op["side"], op["price"]
        hdr, slot = st.old[H], st.old[A]
        if not st.has(H) or not st.has(A):
            st.fail(f"access mask {st.mask:#x}")
        if st.addr[A] != hdr[_HDR["free_head"]] or slot[QTY]:
            st.fail(f"rests in slot {st.addr[A]}, the free head is {hdr[_HDR['free_head']]}")
        if op["handle"] != slot[GEN] << 32 | st.addr[A]:
            st.fail(f"handle {op['handle']:#x} does not name slot {st.addr[A]}")
        p, q = st.addr[B], st.addr[C]  # 0: no neighbour on that side
        best, worst = _best(side), _best(side) + 1
        if (st.old[B][NEXT] if p else hdr[best]) != q or (st.old[C][PREV] if q else hdr[worst]) != p:
            st.fail(f"slots {p} and {q} are not adjacent on the {Side(side).name} side")
        ahead = (lambda a, b: a > b) if side == Side.BUY else (lambda a, b: a < b)
        if p and (st.old[B][SIDE] != side or ahead(price, st.old[B][PRICE])):
            st.fail(f"price {price} goes ahead of slot {p} at {st.old[B][PRICE]}")
        if q and (st.old[C][SIDE] != side or not ahead(price, st.old[C][PRICE])):
            st.fail(f"price {price} does not go ahead of slot {q} at {st.old[C][PRICE]}")
        account = op["account"]
        word = [price, remaining, side, account & 0xFFFF, account >> 16, p, q, slot[GEN]]
        if st.new[A] != word:
            st.fail(f"the new order's word is {st.new[A]}, expected {word}")
        if p:
            self.relinked(st, B, NEXT, st.addr[A])
        if q:
            self.relinked(st, C, PREV, st.addr[A])
        after = list(hdr)
        after[_HDR["free_head"]], after[_HDR["live"]] = slot[NEXT], hdr[_HDR["live"]] + 1
        if not p:
            after[best] = st.addr[A]
        if not q:
            after[worst] = st.addr[A]
        if st.new[H] != after:
            st.fail(f"header {st.new[H]} after the insertion, expected {after}")

    # ----------------------------------------------------- cancel, reduce --
    def cancel_or_reduce(self, op: dict, body: list[_Step], end: _Step) -> None:
        if len(body) != 1:
            (body[1] if body else end).fail(f"{len(body)} steps for a {Kind(op['kind']).name}")
        st = body[0]
        target = st.old[A]
        if st.addr[A] != op["handle"] & 0xFFFFFFFF or target[GEN] != op["handle"] >> 32 or not target[QTY]:
            st.fail(f"slot {st.addr[A]} is not the live order of handle {op['handle']:#x}")
        if op["status"] == Status.REDUCED:
            self.expect(st, StepKind.REDUCE, 1 << A)
            word = list(target)
            word[QTY] -= op["qty"]
            if op["kind"] != Kind.REDUCE or not 0 < word[QTY] or st.new[A] != word:
                st.fail(f"reduced to {st.new[A]}, expected {word}")
            return
        if op["status"] != Status.CANCELLED or st.kind != StepKind.CANCEL:
            st.fail(f"expected the CANCEL of a {Status(op['status']).name} operation")
        if op["kind"] == Kind.REDUCE and op["qty"] < target[QTY]:
            st.fail("a partial reduce removed the order")
        p, q, hdr = target[PREV], target[NEXT], st.old[H]
        if not st.has(H) or st.addr[B] != p or st.addr[C] != q or st.has(B) != bool(p) \
                or st.has(C) != bool(q):
            st.fail(f"accesses {st.addr} for an order between {p} and {q}")
        if p:
            self.relinked(st, B, NEXT, q)
        if q:
            self.relinked(st, C, PREV, p)
        self.freed(st, A)
        best = _best(target[SIDE])
        after = list(hdr)
        if not p:
            after[best] = q
        if not q:
            after[best + 1] = p
        after[_HDR["free_head"]], after[_HDR["live"]] = st.addr[A], hdr[_HDR["live"]] - 1
        if st.new[H] != after:
            st.fail(f"header {st.new[H]} after the cancel, expected {after}")

    # --------------------------------------------------------- rejections --
    def rejection(self, op: dict, reason: int, body: list[_Step], end: _Step) -> None:
        """The reads that prove the reason (the field checks need none)."""
        where = body[0] if body else end
        side = op["side"]
        opposite = Side.SELL if side == Side.BUY else Side.BUY
        limit = None if op["kind"] == Kind.MARKET else op["price"]
        if reason == Reason.STALE_HANDLE:
            if len(body) != 1 or body[0].mask != 1 << A:
                where.fail("a stale handle is proven by one PEEK of its slot")
            slot = body[0].old[A]
            if body[0].addr[A] != op["handle"] & 0xFFFFFFFF or \
                    (slot[GEN] == op["handle"] >> 32 and slot[QTY]):
                where.fail("the PEEK shows the handle's order live")
        elif reason == Reason.WOULD_CROSS:
            if len(body) != 1:
                where.fail("WOULD_CROSS is proven by one PEEK")
            self.head_peek(body[0], where, opposite, side, limit, crossing=True)
        elif reason == Reason.FOK_UNFILLABLE:
            it = iter(body)
            rest, available = self.fok_walk(next(it, None), it, where, opposite, side, limit,
                                            op["qty"])
            if rest is not None or available >= op["qty"]:
                where.fail(f"the FOK walk finds {available} of {op['qty']} lots")
        elif reason == Reason.BOOK_FULL:
            # first the head that does not cross (a post-only order's check, a
            # limit order's stop: it traded nothing), then the full free list
            self.head_peek(body[0] if body else None, end, opposite, side, limit, crossing=False)
            last = body[-1]
            if len(body) != 2 or last.mask != 1 << H or last.old[H][_HDR["free_head"]]:
                last.fail("BOOK_FULL is proven by a PEEK of the header with no free slot")
        elif body:
            body[0].fail(f"{Reason(reason).name} needs no read")

    # ------------------------------------------------------------ helpers --
    def relinked(self, st: _Step, j: int, cell: int, value: int) -> None:
        """Access j changed only its link `cell`, to `value`."""
        word = list(st.old[j])
        word[cell] = value
        if st.new[j] != word:
            st.fail(f"neighbour {Access(j).name} became {st.new[j]}, expected {word}")

    def freed(self, st: _Step, j: int) -> None:
        """Access j was cleared and pushed on the free list with its
        generation bumped."""
        word = [0] * WORD
        word[NEXT] = st.old[H][_HDR["free_head"]]
        word[GEN] = (st.old[j][GEN] + 1) & GEN_MASK
        if st.new[j] != word:
            st.fail(f"freed slot became {st.new[j]}, expected {word}")


def check(pre_cells: np.ndarray, ops: np.ndarray, trades: np.ndarray, steps: np.ndarray,
          post_cells: np.ndarray) -> None:
    """Replay `steps` (with the outcome-filled `ops` and their `trades`, as
    Book.process_traced returns them) from the book `pre_cells`; raise
    TraceError at the first rule broken, including a final memory that is not
    proof_table(post_cells)."""
    if len(pre_cells) != len(post_cells) or len(pre_cells) < HEADER + len(COLUMNS):
        raise ValueError("pre and post are not state tables of one capacity")
    replay = _Replay(pre_cells, ops, trades, steps)
    replay.run()
    final = proof_table(post_cells).tolist()
    for addr, (got, want) in enumerate(zip(replay.mem, final)):
        if got != want:
            raise TraceError(f"after the last step address {addr} holds {got}, "
                             f"the post-state holds {want}", len(steps))
