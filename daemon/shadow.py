"""The shadow book of one symbol: re-executes the engine's operations and
cuts them into batches.

Every operation is run again here, by the same engine code the proofs are
about (engine/book.py in tracing mode).  Three things come of it:

* **divergences**: an operation whose engine-claimed outcome (FLAG_CLAIMED
  set) differs from the rules' outcome is reported; the batch proof covers
  what the rules say, never the claim.
* **refused records**: a record that does not continue the symbol's stream
  (a sequence number the stream already had) cannot be proven; it is
  reported and not applied.  A record past a gap (a sequence number beyond
  the next one), or earlier than the stream's last timestamp, is held: if
  `resync_after` records in a row continue it, the stream **resumes** there
  (a Break: the open batch closes, the book resumes at that record,
  Book.resume, and the chain of proofs has a break that `zksidecar verify`
  rebuilds and reports); if the stream goes on instead, the held records
  are refused.  So one stray record never stops a symbol, and a
  stream that really lost operations does not stop either.  Every decision
  depends only on the order of the records, so a journal replay makes the
  same ones.
* **batches**: the operations are cut into batches (daemon/batches.py), each
  carrying the book's cells before it (a batch's pre-state root and link are
  functions of those cells) and the engine's run of its operations: their
  outcomes, trades and step records, the witness its proof is built from.
  Each operation runs through the engine once, here: where a batch fills its
  trace in the middle of a run, the run is split there (the next batch's
  cells are the first part's post-state, engine/trace.py cells_after), not
  run again.

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
from ..engine.trace import StepKind, cells_after
from ..prover.orderbook.air import book_length
from ..prover.orderbook.witness import check_trace_length, op_rows
from .batches import Applied, Batch, BatchPolicy, Break, CloseReason, Divergence, Refusal, Refused
from .priority import ProofPriority


class BatchOverflow(ValueError):
    """Records that must end in one batch take more rows than its trace
    holds; nothing of them was applied."""


@dataclass
class _Open:
    """The open batch: operations applied, not yet closed."""

    ops: list = field(default_factory=list)          # OP_DTYPE chunks, outcomes by the rules
    trades: list = field(default_factory=list)       # TRADE_DTYPE chunks
    steps: list = field(default_factory=list)        # STEP_DTYPE chunks, `op` counting in the batch
    seen: list = field(default_factory=list)         # int64 chunks
    count: int = 0
    rows: int = 0                                    # trace rows they take
    lane: int = 0                                    # zk mode: lane rows (an operation and its trades each)
    since: float = 0.0
    pre_cells: np.ndarray | None = None
    critical: bool = False
    priority: ProofPriority = ProofPriority.LOW      # the most urgent any feeder asked for
    divergent: list = field(default_factory=list)
    resumed: bool = False                            # it begins where the stream resumed

    def copy(self) -> "_Open":
        return replace(self, ops=list(self.ops), trades=list(self.trades), steps=list(self.steps),
                       seen=list(self.seen), divergent=list(self.divergent))


#: records in a row past a gap that make a stream resume there; fewer than
#: MIN_RESYNC_AFTER would let one or two stray records move a stream
DEFAULT_RESYNC_AFTER = 16
MIN_RESYNC_AFTER = 4


@dataclass
class _Held:
    """Records waiting in the shadow: past a gap, waiting for enough records
    to resume there (`pending`); or, once it did, still to be applied
    (`ready`: a journal replay applies them up to its marks)."""

    recs: np.ndarray = field(default_factory=lambda: np.zeros(0, OP_DTYPE))
    seen: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def add(self, recs: np.ndarray, seen: np.ndarray) -> None:
        self.recs, self.seen = np.concatenate([self.recs, recs]), np.concatenate([self.seen, seen])

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        out = self.recs, self.seen
        self.recs, self.seen = np.zeros(0, OP_DTYPE), np.zeros(0, np.int64)
        return out

    def drop(self, k: int) -> None:
        self.recs, self.seen = self.recs[k:], self.seen[k:]

    def __len__(self) -> int:
        return len(self.recs)


def _joined(chunks: list) -> np.ndarray:
    """One array of the chunks (the chunk itself when there is one: no copy)."""
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


@dataclass
class _Part:
    """Consecutive operations of one engine run, with what the run gave them."""

    first: int                  # index of the first in the run
    claimed: np.ndarray         # the records as they came (the engine's claims)
    computed: np.ndarray        # the records with the rules' outcomes
    trades: np.ndarray
    steps: np.ndarray           # `op` counting in the run
    seen: np.ndarray
    rows: int                   # trace rows they take
    lane: int                   # lane rows they take (zk mode)


@dataclass
class _Run:
    """A traced engine run over records, handed out in consecutive parts
    (a batch each) from `start`, its steps from `step_at`."""

    claimed: np.ndarray
    computed: np.ndarray
    trades: np.ndarray
    steps: np.ndarray
    steps_of: np.ndarray        # engine steps of each operation
    rows_of: np.ndarray         # trace rows of each operation (steps folded)
    lane_of: np.ndarray         # lane rows of each operation: itself and its trades
    seen: np.ndarray
    start: int = 0
    step_at: int = 0
    trade_at: int = 0

    def part(self, k: int) -> _Part:
        """The next `k` operations."""
        i, j = self.start, self.start + k
        s = self.step_at + int(self.steps_of[i:j].sum())
        steps = self.steps[self.step_at:s]
        t = self.trade_at + int((steps["kind"] == StepKind.MATCH).sum())    # a trade per MATCH
        out = _Part(i, self.claimed[i:j], self.computed[i:j], self.trades[self.trade_at:t], steps,
                    self.seen[i:j], int(self.rows_of[i:j].sum()), int(self.lane_of[i:j].sum()))
        self.start, self.step_at, self.trade_at = j, s, t
        return out


@dataclass
class ShadowState:
    """A shadow book between batches, all a snapshot keeps of it
    (daemon/snapshot.py): its book's cells, the id of its next batch, the
    records past a gap waiting to resume its stream (with their seen
    times), whether its next batch begins where the stream resumed, and
    the last timestamp of its last batch (`proven_ts`: zk mode's state
    table carries it, and a resume may have lowered the cells' own)."""

    symbol: int
    next_batch_id: int
    cells: np.ndarray
    held: np.ndarray
    held_seen: np.ndarray
    resumed: bool
    proven_ts: int = 0


class ShadowBook:
    """One symbol's stream, re-executed by the rules and cut into batches
    proven in ops traces of at most `trace_length` rows; past a gap,
    `resync_after` records in a row make the stream resume (module
    docstring).  `zk`: the batches are proven in zk mode, whose record
    lane must hold them too (an operation and each of its trades take a
    lane row: ops + trades + 1 <= trace_length), and whose book domain
    checks one operation a row (at most book_length(capacity) operations;
    docs/ZK.md section 9)."""

    def __init__(self, symbol: int, capacity: int, trace_length: int, next_batch_id: int = 0,
                 resync_after: int = DEFAULT_RESYNC_AFTER, zk: bool = False):
        if not isinstance(resync_after, int) or resync_after < MIN_RESYNC_AFTER:
            raise ValueError(f"resync_after must be an integer >= {MIN_RESYNC_AFTER}, "
                             f"not {resync_after!r}")
        self.symbol, self.trace_length = symbol, check_trace_length(trace_length, capacity)
        self.resync_after, self.zk = resync_after, bool(zk)
        #: zk mode: the most operations a batch holds (the book domain's rows)
        self.max_zk_ops = book_length(capacity)
        self.book = Book(capacity, symbol)
        self.next_batch_id = next_batch_id
        self._open = _Open()
        self._pending = _Held()
        self._ready = _Held()
        self._critical_tokens, self._tokens_at = 0.0, None
        self._resumed = False         # the next batch begins where the stream resumed
        self._proven_ts = 0           # the last timestamp of the last batch closed (ShadowState)

    def between_batches(self) -> ShadowState | None:
        """The book's state for a snapshot, or None while a batch is open or
        records a resume freed wait to be applied (no batch boundary)."""
        if self._open.count or len(self._ready):
            return None
        return ShadowState(self.symbol, self.next_batch_id, self.book.cells.copy(),
                           self._pending.recs.copy(), self._pending.seen.copy(), self._resumed,
                           self._proven_ts)

    @classmethod
    def restored(cls, state: ShadowState, capacity: int, trace_length: int,
                 resync_after: int = DEFAULT_RESYNC_AFTER, zk: bool = False) -> "ShadowBook":
        """The shadow book `state` describes (read from a file: its cells are
        checked, Book.from_cells, and must be a `capacity`-slot book of its
        symbol; CorruptState or ValueError otherwise)."""
        shadow = cls(state.symbol, capacity, trace_length, state.next_batch_id, resync_after, zk)
        book = Book.from_cells(state.cells)
        if (book.symbol, book.capacity) != (state.symbol, capacity):
            raise ValueError(f"the book of symbol {state.symbol} is a {book.capacity}-slot book of "
                             f"symbol {book.symbol}, not a {capacity}-slot book of its own")
        shadow.book = book
        shadow._pending = _Held(state.held.copy(), state.held_seen.copy())
        shadow._resumed = state.resumed
        shadow._proven_ts = int(state.proven_ts)
        return shadow

    @property
    def proven_ts(self) -> int:
        """The last timestamp of the last batch closed (0 before any)."""
        return self._proven_ts

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
        batch (close), and records whose rows do not fit the trace raise
        BatchOverflow with the shadow as it was before the call.  With
        `end_seq`, records are taken only until the stream has reached that
        sequence number; Applied.taken counts the records consumed.

        A call that raises changes nothing."""
        before = self._state()
        out = Applied()
        i = 0
        try:
            while True:
                if end_seq is not None and self.book.next_seq > end_seq:
                    break
                if len(self._ready):              # records a resume freed come first
                    k = self._apply_some(self._ready.recs, self._ready.seen, now, policy, priority,
                                         end_seq, out)
                    self._ready.drop(k)
                elif i < len(ops):
                    i += self._apply_some(ops[i:], seen_ns[i:], now, policy, priority, end_seq, out)
                else:
                    break
        except BaseException:
            self._restore(before)
            raise
        out.taken = i
        return out

    def _state(self) -> tuple:
        return (self.book.cells.copy(), self._open.copy(), self.next_batch_id,
                replace(self._pending), replace(self._ready), self._critical_tokens, self._tokens_at,
                self._resumed, self._proven_ts)

    def _restore(self, state: tuple) -> None:
        cells, self._open, self.next_batch_id, self._pending, self._ready, \
            self._critical_tokens, self._tokens_at, self._resumed, self._proven_ts = state
        self.book = Book.from_cells(cells, validate=False)

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
        batch = Batch(self.symbol, self.next_batch_id, _joined(o.ops), _joined(o.trades),
                      _joined(o.steps), o.pre_cells, self.trace_length, _joined(o.seen), priority,
                      reason, o.divergent, o.resumed, self._proven_ts)
        self._proven_ts = int(batch.ops["ts_ns"][-1])
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
    def _apply_some(self, ops, seen, now, policy, priority, end_seq, out: Applied) -> int:
        """Apply (or refuse, or hold) a prefix of `ops`; returns its length."""
        o = self._open
        if policy is not None and o.count >= policy.max_batch_size:
            out.closed.append(self.close(CloseReason.SIZE))    # opened under a larger policy
            return 0
        # 1. the stream: a record that does not continue it is refused or held
        bad = self._first_break(ops[:1])
        if bad == 0:
            self._off_stream(ops[0], seen[0], now, out)
            return 1
        if len(self._pending):                   # the stream went on: no gap after all
            self._refuse_pending(out, f"the stream went on at {self.book.next_seq}")
        n = len(ops) if policy is None else min(len(ops), policy.max_batch_size - o.count)
        if end_seq is not None:
            n = min(n, end_seq + 1 - self.book.next_seq)
        bad = self._first_break(ops[:n])
        n = bad if bad is not None else n
        # 2. a Critical operation ends its batch (under a policy, within its rate)
        crit = np.flatnonzero(self._critical(ops[:n], policy) | (priority == ProofPriority.CRITICAL))
        cut = crit.size and policy is not None and self._critical_allowed(now, policy)
        if cut:
            n = int(crit[0]) + 1
        # 3. run it (once: traced), then cut it where the trace is full
        if not o.count:
            o.pre_cells, o.since, o.resumed, self._resumed = self.book.cells.copy(), now, \
                self._resumed, False
        work = np.array(ops[:n], dtype=OP_DTYPE)
        before = self.book.cells.copy() if o.count else o.pre_cells
        trades, steps = self.book.process_traced(work)
        steps_of = np.bincount(steps["op"], minlength=n)
        rows_of = op_rows(steps, n)
        lane_of = 1 + work["trades"].astype(np.int64)
        if policy is None and o.rows + int(rows_of.sum()) > self.trace_length - 1:
            raise BatchOverflow(
                f"symbol {self.symbol}: the batch would take {o.rows + int(rows_of.sum())} "
                f"trace rows; its {self.trace_length}-row trace holds {self.trace_length - 1}")
        if policy is None and self.zk and o.lane + int(lane_of.sum()) > self.trace_length - 1:
            raise BatchOverflow(
                f"symbol {self.symbol}: the batch's operations and trades would take "
                f"{o.lane + int(lane_of.sum())} lane rows; its {self.trace_length}-row lane holds "
                f"{self.trace_length - 1}")
        if policy is None and self.zk and o.count + n > self.max_zk_ops:
            raise BatchOverflow(
                f"symbol {self.symbol}: the batch would hold {o.count + n} operations; a zk batch "
                f"holds at most {self.max_zk_ops} (its book domain's rows)")
        run = _Run(ops[:n], work, trades, steps, steps_of, rows_of, lane_of, seen[:n])
        while True:
            room = self.trace_length - 1 - o.rows
            fits = int(np.searchsorted(np.cumsum(rows_of[run.start:]), room, side="right"))
            if self.zk:         # zk mode: the record lane must hold them too
                lane_room = self.trace_length - 1 - o.lane
                fits = min(fits, int(np.searchsorted(np.cumsum(lane_of[run.start:]), lane_room,
                                                     side="right")), self.max_zk_ops - o.count)
            if run.start + fits == n:
                break
            # the trace is full before op run.start + fits: those before it end
            # this batch, the rest open the next, from the cells between them
            if not (fits or o.count):      # check_trace_length makes room for any one operation
                raise AssertionError(f"symbol {self.symbol}: one operation takes more rows than "
                                     f"a {self.trace_length}-row trace holds")
            if fits:
                self._take(run.part(fits), False, priority, out)
            out.closed.append(self.close(CloseReason.STEPS))
            o = self._open
            o.pre_cells = cells_after(before, steps[:run.step_at], work[:run.start])
            o.since = now
        # a Critical operation past the rate (under a policy) counts as an ordinary one
        critical = bool(cut) if policy is not None else bool(crit.size)
        self._take(run.part(n - run.start), critical, priority, out)
        if policy is not None:
            if cut:
                out.closed.append(self.close(CloseReason.CRITICAL))
            elif o.count >= policy.max_batch_size:
                out.closed.append(self.close(CloseReason.SIZE))
        return n

    def _off_stream(self, op, seen: int, now: float, out: Applied) -> None:
        """A record that does not continue the stream: refused, or held
        (past a gap, or earlier than the stream's time) until enough records
        continue it (then the stream resumes there)."""
        seq, ts, expected = int(op["seq"]), int(op["ts_ns"]), self.book.next_seq
        if int(op["symbol"]) != self.symbol:
            out.refused.append(Refused(self.symbol, seq, Refusal.SYMBOL,
                                       f"symbol {int(op['symbol'])} in the stream of symbol {self.symbol}"))
        elif seq < expected:
            out.refused.append(Refused(self.symbol, seq, Refusal.REPLAYED,
                                       f"sequence number {seq} again (the stream is at {expected})"))
        else:
            held = self._pending
            if len(held) and (seq != int(held.recs["seq"][-1]) + 1 or ts < int(held.recs["ts_ns"][-1])):
                self._refuse_pending(out, f"record {seq} does not continue them")
            held.add(np.array([op], dtype=OP_DTYPE), np.array([seen], dtype=np.int64))
            if len(held) >= self.resync_after:
                self._resume(out)

    @property
    def held(self) -> int:
        """Records held: waiting to resume the stream, or freed by a resume
        and not yet applied."""
        return len(self._pending) + len(self._ready)

    def resume(self, seq: int, ts_ns: int, out: Applied) -> None:
        """The stream resumes at record (`seq`, `ts_ns`) (Book.resume): close
        the open batch (BREAK) and resume the book.  Held records that start
        there become the stream's next ones; others are refused.  (A replay
        resumes where a journal mark says so: Sequencer.replay.)"""
        out.breaks.append(Break(self.symbol, self.book.next_seq, seq, ts_ns))
        closed = self.close(CloseReason.BREAK)
        if closed is not None:
            out.closed.append(closed)
        self.book.resume(seq, ts_ns)
        self._resumed = True
        if len(self._pending):
            if int(self._pending.recs["seq"][0]) == seq:
                self._ready.add(*self._pending.take())
            else:
                self._refuse_pending(out, f"the stream resumed at {seq}")

    def needs_resume(self, seq: int, ts_ns: int) -> bool:
        """Does a record (`seq`, `ts_ns`) start past what the stream can
        apply next (a gap, or earlier than its last timestamp)?"""
        return seq > self.book.next_seq or (seq == self.book.next_seq and ts_ns < self.book.last_ts)

    def _resume(self, out: Applied) -> None:
        """The held records continue each other: resume at the first."""
        recs, seen = self._pending.take()
        self.resume(int(recs["seq"][0]), int(recs["ts_ns"][0]), out)
        self._ready.add(recs, seen)

    def _refuse_pending(self, out: Applied, why: str) -> None:
        recs, _ = self._pending.take()
        out.refused.append(Refused(self.symbol, int(recs["seq"][0]), Refusal.UNCONFIRMED,
                                   f"{len(recs)} records past a gap at {self.book.next_seq}: {why}",
                                   len(recs)))

    def _critical_allowed(self, now: float, policy: BatchPolicy) -> bool:
        """May one more Critical operation close its batch (a token bucket
        of `critical_per_s`, holding up to a second's worth)?"""
        rate = policy.critical_per_s
        if not rate:
            return True
        burst = max(1.0, rate)
        if self._tokens_at is None:
            self._critical_tokens = burst
        else:
            self._critical_tokens = min(burst, self._critical_tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._critical_tokens >= 1.0:
            self._critical_tokens -= 1.0
            return True
        return False

    def _take(self, part: "_Part", critical: bool, priority: ProofPriority, out: Applied) -> None:
        o = self._open
        claimed, computed = part.claimed, part.computed
        claims = np.flatnonzero((claimed["flags"] & FLAG_CLAIMED) != 0)
        for k in claims[records.outcome_mismatches(claimed[claims], computed[claims])]:
            fields = records.OUTCOME_FIELDS
            seq = int(claimed["seq"][k])
            out.divergences.append(Divergence(self.symbol, seq,
                                              {f: int(claimed[f][k]) for f in fields},
                                              {f: int(computed[f][k]) for f in fields}))
            o.divergent.append(seq)
        steps = part.steps                    # the run's own: renumbered in place
        if part.first:
            steps["op"] -= np.uint32(part.first)
        if o.count:
            steps["op"] += np.uint32(o.count)            # counted in the batch, not the run
        o.ops.append(computed)
        o.trades.append(np.asarray(part.trades, dtype=TRADE_DTYPE))
        o.steps.append(steps)
        o.seen.append(np.array(part.seen, dtype=np.int64))     # a copy: the caller's may be reused
        o.count += len(computed)
        o.rows += part.rows
        o.lane += part.lane
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
