"""The shadow book of one symbol: re-executes the engine's operations and
cuts them into batches.

Every operation is run again here, by the same engine code the proofs are
about (engine/book.py in tracing mode).  Three things come of it:

* **divergences**: an operation whose engine-claimed outcome (FLAG_CLAIMED
  set) differs from the rules' outcome is reported; the batch proof covers
  what the rules say, never the claim.
* **refused records**: a record that does not continue the symbol's stream
  (sequence number not the next one, timestamp going back, another symbol)
  cannot be proven; it is reported and not applied.
* **batches**: the operations are cut into batches (daemon/batches.py), each
  carrying the book's cells before it, which is all a proof needs (a batch's
  pre-state root and link are functions of those cells).

`apply` is the one path every feeder takes: the daemon's live records (cut
by its BatchPolicy), a journal replay (no policy: the batch ends where the
journal's mark says, `end_seq`), and an API call that makes one batch of
its records (no policy: the caller closes it; records that overflow the
trace change nothing).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..engine import records
from ..engine.book import Book, StreamError
from ..engine.records import FLAG_CLAIMED, FLAG_CRITICAL, OP_DTYPE, TRADE_DTYPE
from ..prover.orderbook.witness import check_trace_length
from .batches import Applied, Batch, BatchPolicy, CloseReason, Divergence, Refused
from .priority import ProofPriority


class BatchOverflow(ValueError):
    """Records that must end in one batch take more steps than its trace
    holds; nothing of them was applied."""


@dataclass
class _Open:
    """The open batch: operations applied, not yet closed."""

    ops: list = field(default_factory=list)          # OP_DTYPE chunks, outcomes by the rules
    trades: list = field(default_factory=list)       # TRADE_DTYPE chunks
    seen: list = field(default_factory=list)         # int64 chunks
    count: int = 0
    steps: int = 0
    since: float = 0.0
    pre_cells: np.ndarray | None = None
    critical: bool = False
    priority: ProofPriority = ProofPriority.LOW      # the most urgent any feeder asked for
    divergent: list = field(default_factory=list)

    def copy(self) -> "_Open":
        return replace(self, ops=list(self.ops), trades=list(self.trades), seen=list(self.seen),
                       divergent=list(self.divergent))


class ShadowBook:
    """One symbol's stream, re-executed by the rules and cut into batches
    proven in traces of `trace_length` rows."""

    def __init__(self, symbol: int, capacity: int, trace_length: int, next_batch_id: int = 0):
        self.symbol, self.trace_length = symbol, check_trace_length(trace_length, capacity)
        self.book = Book(capacity, symbol)
        self.next_batch_id = next_batch_id
        self._open = _Open()

    @property
    def open_count(self) -> int:
        """Operations in the open batch."""
        return self._open.count

    @property
    def open_since(self) -> float:
        """When the open batch took its first operation (the `now` given)."""
        return self._open.since

    # ------------------------------------------------------------ apply --
    def apply(self, ops: np.ndarray, seen_ns: np.ndarray, now: float,
              policy: BatchPolicy | None, *, priority: ProofPriority = ProofPriority.NORMAL,
              end_seq: int | None = None) -> Applied:
        """Run `ops` (OP_DTYPE records of this symbol, in order; `seen_ns` per
        record) into the open batch, which asks to be proven at `priority`
        or more urgently (CRITICAL: every record is a Critical operation).

        With a `policy`, batches close by its rules and come back in
        Applied.closed.  Without one nothing closes: the caller closes the
        batch (close), and records whose steps do not fit the trace raise
        BatchOverflow with the shadow as it was before the call.  With
        `end_seq`, records are taken only until the stream has reached that
        sequence number; Applied.taken counts the records consumed.

        A call that raises changes nothing."""
        before = (self.book.cells.copy(), self._open.copy(), self.next_batch_id)
        out = Applied()
        i = 0
        try:
            while i < len(ops) and (end_seq is None or self.book.next_seq <= end_seq):
                end = len(ops) if end_seq is None else min(len(ops), i + end_seq + 1 - self.book.next_seq)
                i += self._apply_some(ops[i:end], seen_ns[i:end], now, policy, priority, out)
        except BaseException:
            self.book = Book.from_cells(before[0], validate=False)
            self._open, self.next_batch_id = before[1], before[2]
            raise
        out.taken = i
        return out

    def tick(self, now: float, policy: BatchPolicy) -> Batch | None:
        """Close the open batch if it is older than the policy's timeout."""
        if self._open.count and now - self._open.since >= policy.timeout_s:
            return self.close(CloseReason.TIMEOUT)
        return None

    def close(self, reason: CloseReason) -> Batch | None:
        """Close the open batch (None if it is empty)."""
        o = self._open
        if not o.count:
            return None
        priority = min(o.priority, ProofPriority.CRITICAL if o.critical else
                       ProofPriority.HIGH if o.divergent else ProofPriority.LOW)
        batch = Batch(self.symbol, self.next_batch_id, np.concatenate(o.ops),
                      np.concatenate(o.trades), o.pre_cells, self.trace_length,
                      np.concatenate(o.seen), priority, reason, o.divergent)
        self.next_batch_id += 1
        self._open = _Open()
        return batch

    def check_stream(self, ops: np.ndarray) -> None:
        """Raise StreamError (with the record's index) at the first record
        that would be refused; nothing is applied either way."""
        bad = self._first_break(ops)
        if bad is not None:
            raise StreamError(self._why(ops, bad), bad)

    def preview(self, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What `ops` would give from the book as it is (the records with
        their outcomes, the trades), nothing applied."""
        work = np.array(ops, dtype=OP_DTYPE, copy=True)
        trades = Book.from_cells(self.book.cells, validate=False).process(work)
        return work, trades

    # ---------------------------------------------------------- helpers --
    def _apply_some(self, ops, seen, now, policy, priority, out: Applied) -> int:
        """Apply a prefix of `ops` to the open batch; returns its length."""
        o = self._open
        if policy is not None and o.count >= policy.max_batch_size:
            out.closed.append(self.close(CloseReason.SIZE))    # opened under a larger policy
            return 0
        n = len(ops) if policy is None else min(len(ops), policy.max_batch_size - o.count)
        # 1. the stream: refuse the first record that does not continue it
        bad = self._first_break(ops[:n])
        if bad == 0:
            out.refused.append(Refused(self.symbol, int(ops["seq"][0]), self._why(ops, 0)))
            return 1
        n = bad if bad is not None else n
        # 2. a Critical operation ends its batch (under a policy)
        crit = np.flatnonzero(self._critical(ops[:n], policy) | (priority == ProofPriority.CRITICAL))
        if crit.size and policy is not None:
            n = int(crit[0]) + 1
        # 3. run it, then keep the prefix whose steps fit the trace
        if not o.count:
            o.pre_cells, o.since = self.book.cells.copy(), now
        work = np.array(ops[:n], dtype=OP_DTYPE)
        before = self.book.cells.copy()
        trades, steps = self.book.process_traced(work)
        per_op = np.bincount(steps["op"], minlength=n)
        room = self.trace_length - 1 - o.steps
        fits = int(np.searchsorted(np.cumsum(per_op), room, side="right"))
        if fits < n:
            if policy is None:
                raise BatchOverflow(
                    f"symbol {self.symbol}: the batch would take {o.steps + int(per_op.sum())} "
                    f"engine steps; its {self.trace_length}-row trace holds {self.trace_length - 1}")
            self.book = Book.from_cells(before, validate=False)     # cut before op `fits`
            if fits:
                work = np.array(ops[:fits], dtype=OP_DTYPE)
                trades = self.book.process(work)
                self._take(ops[:fits], work, trades, seen[:fits], int(per_op[:fits].sum()), False,
                           priority, out)
            out.closed.append(self.close(CloseReason.STEPS))
            return fits
        self._take(ops[:n], work, trades, seen[:n], int(per_op.sum()), bool(crit.size), priority, out)
        if policy is not None:
            if crit.size:
                out.closed.append(self.close(CloseReason.CRITICAL))
            elif o.count >= policy.max_batch_size:
                out.closed.append(self.close(CloseReason.SIZE))
        return n

    def _take(self, claimed, computed, trades, seen, steps: int, critical: bool,
              priority: ProofPriority, out: Applied) -> None:
        o = self._open
        claims = np.flatnonzero((claimed["flags"] & FLAG_CLAIMED) != 0)
        for k in claims[records.outcome_mismatches(claimed[claims], computed[claims])]:
            fields = records.OUTCOME_FIELDS
            seq = int(claimed["seq"][k])
            out.divergences.append(Divergence(self.symbol, seq,
                                              {f: int(claimed[f][k]) for f in fields},
                                              {f: int(computed[f][k]) for f in fields}))
            o.divergent.append(seq)
        o.ops.append(computed)
        o.trades.append(np.asarray(trades, dtype=TRADE_DTYPE))
        o.seen.append(np.asarray(seen, dtype=np.int64))
        o.count += len(computed)
        o.steps += steps
        o.critical |= critical
        o.priority = min(o.priority, priority)

    @staticmethod
    def _critical(ops: np.ndarray, policy: BatchPolicy | None) -> np.ndarray:
        crit = (ops["flags"] & FLAG_CRITICAL) != 0
        if policy is not None and policy.critical_qty:
            crit |= ops["qty"] >= policy.critical_qty
        return crit

    def _first_break(self, ops: np.ndarray) -> int | None:
        """Index of the first record that does not continue the stream."""
        if not len(ops):
            return None
        ts = ops["ts_ns"]
        expected = np.uint64(self.book.next_seq) + np.arange(len(ops), dtype=np.uint64)
        prev_ts = np.empty(len(ops), dtype=np.uint64)
        prev_ts[0] = self.book.last_ts
        prev_ts[1:] = ts[:-1]
        broken = (ops["seq"] != expected) | (ts < prev_ts) | (ops["symbol"] != self.symbol)
        return int(np.argmax(broken)) if broken.any() else None

    def _why(self, ops: np.ndarray, index: int) -> str:
        """Why record `index` of `ops` (those before it continuing the
        stream) breaks it."""
        op = ops[index]
        if int(op["symbol"]) != self.symbol:
            return f"symbol {int(op['symbol'])} in the stream of symbol {self.symbol}"
        if int(op["seq"]) != self.book.next_seq + index:
            return f"sequence number {int(op['seq'])}, expected {self.book.next_seq + index}"
        before = self.book.last_ts if index == 0 else int(ops["ts_ns"][index - 1])
        return f"timestamp {int(op['ts_ns'])} is before the previous one, {before}"
