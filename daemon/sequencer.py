"""The sequencer: every symbol's shadow book, fed records, and what comes of
them.

One Sequencer serves each entry point: the daemon's sequencer thread
(records from ingest), its recovery (the journal's records and marks), and
the in-process Python API (records from calls).  For each feed it routes
records to their symbol's ShadowBook (daemon/shadow.py), then reports what
came of it the same way whoever fed it: divergences and refused records are
counted, put in the metrics and logged (within a budget: an engine sending
garbage at a million records a second must not flood the log), and every
closed batch is marked in the journal (when there is one) before it is
handed back to the caller, who proves it.

SequencerThread is the daemon's loop around it: records from ingest's queue,
timeouts, a clean stop that closes what is open.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from typing import Callable

import numpy as np

from ..engine.records import OP_DTYPE
from ..prover.orderbook.witness import check_trace_length
from .batches import Applied, Batch, BatchPolicy, CloseReason, Refusal, Refused
from . import formats as fm
from .journal import BatchMark, Journal, JournalFull, ReplayMismatch
from .metrics import Metrics
from .priority import ProofPriority
from .shadow import DEFAULT_RESYNC_AFTER, BatchOverflow, ShadowBook, ShadowState

log = logging.getLogger("zksidecar.sequencer")

#: symbols without a shadow book whose records may wait at once to show
#: they are a stream (Sequencer.admit)
UNSTARTED_MAX = 64


class Sequencer:
    """The shadow books of one service: books of `capacity` slots whose
    batches are proven in ops traces of at most `trace_length` rows, cut by
    `policy`, at most `max_symbols` of them (an engine writing garbage
    symbols must not grow the daemon without bound: records of further
    symbols are refused).  `zk`: batches are cut for zk mode's record lane
    too (ShadowBook)."""

    def __init__(self, capacity: int, trace_length: int, policy: BatchPolicy, metrics: Metrics, *,
                 max_symbols: int | None = None, journal: Journal | None = None,
                 resync_after: int = DEFAULT_RESYNC_AFTER, zk: bool = False):
        self.trace_length = check_trace_length(trace_length, capacity)
        self.zk = bool(zk)
        self.capacity, self.policy, self.resync_after = capacity, policy, resync_after
        self.metrics, self.journal, self.max_symbols = metrics, journal, max_symbols
        self.shadows: dict[int, ShadowBook] = {}
        self.divergences = self.refused = self.breaks = 0
        self.blocked: str | None = None       # why closed batches wait for their journal marks
        self._unstarted: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._unmarked: deque[Batch] = deque()
        self._log_budget = _LogBudget()

    @property
    def unmarked(self) -> int:
        """Closed batches waiting for their journal marks (a full disk)."""
        return len(self._unmarked)

    def shadow(self, symbol: int) -> ShadowBook | None:
        """The symbol's shadow book, made on first use; None past max_symbols."""
        book = self.shadows.get(symbol)
        if book is None:
            if self.max_symbols is not None and len(self.shadows) >= self.max_symbols:
                return None
            book = self.shadows[symbol] = ShadowBook(symbol, self.capacity, self.trace_length,
                                                     resync_after=self.resync_after, zk=self.zk)
        return book

    def between_batches(self) -> tuple[list[ShadowState], dict] | None:
        """Every shadow book's state and the records of symbols not started
        (symbol: (records, seen times)), for a snapshot; None unless every
        book is between batches and every closed batch is marked (a batch
        a full disk has not marked yet must not be in a snapshot's past)."""
        if self._unmarked:
            return None
        states = [s.between_batches() for s in self.shadows.values()]
        if any(st is None for st in states):
            return None
        return states, {sym: (r.copy(), t.copy()) for sym, (r, t) in self._unstarted.items()}

    def restore(self, states: list[ShadowState], unstarted: dict) -> None:
        """Take the state a snapshot kept (a fresh sequencer only)."""
        if self.shadows or self._unstarted:
            raise RuntimeError("restore: this sequencer already has books")
        if self.max_symbols is not None and len(states) > self.max_symbols:
            raise ValueError(f"{len(states)} books, more than book.max_symbols ({self.max_symbols})")
        shadows = {st.symbol: ShadowBook.restored(st, self.capacity, self.trace_length,
                                                  self.resync_after, self.zk) for st in states}
        self.shadows = shadows
        self._unstarted = {sym: (r.copy(), t.copy()) for sym, (r, t) in unstarted.items()}

    @property
    def unstarted(self) -> int:
        """Records of symbols not started that wait to show they are a stream."""
        return sum(len(recs) for recs, _ in self._unstarted.values())

    # -------------------------------------------------------- admission --
    def admit(self, symbol: int, ops: np.ndarray, seen: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray] | None:
        """Records of a symbol without a shadow book.  It starts at the first
        record of its stream (sequence number 1); or, when that never
        arrived, once `resync_after` records in a row continue each other
        (they wait here till then, for at most UNSTARTED_MAX symbols at
        once), as a stream resuming past its lost start.  So garbage never
        takes one of the max_symbols slots.  Returns the records the new book
        takes (None: none yet); refusals are reported."""
        out = Applied()
        try:
            return self._admit(symbol, ops, seen, out)
        finally:
            self._report_records(out)

    def _admit(self, symbol, ops, seen, out: Applied):
        run = self._unstarted.pop(symbol, None)

        def refuse(recs, why):
            if len(recs):
                out.refused.append(Refused(symbol, int(recs["seq"][0]), Refusal.SYMBOL, why,
                                           len(recs)))

        if self.max_symbols is not None and len(self.shadows) >= self.max_symbols:
            if run is not None:
                refuse(run[0], f"a symbol beyond book.max_symbols ({self.max_symbols})")
            refuse(ops, f"a symbol beyond book.max_symbols ({self.max_symbols})")
            return None
        starts = np.flatnonzero(ops["seq"] == 1)
        if starts.size:
            i = int(starts[0])
            if run is not None:
                refuse(run[0], f"symbol {symbol} started at sequence number 1 after them")
            refuse(ops[:i], f"symbol {symbol} has not started (its stream begins at 1)")
            self.shadow(symbol)
            return ops[i:], seen[i:]
        recs, times = run if run is not None else (ops[:0], seen[:0])
        for k in range(len(ops)):
            op = ops[k]
            if len(recs) and not (int(op["seq"]) == int(recs["seq"][-1]) + 1
                                  and int(op["ts_ns"]) >= int(recs["ts_ns"][-1])):
                refuse(recs, f"symbol {symbol} has not started, and these do not continue")
                recs, times = ops[:0], seen[:0]
            recs, times = np.concatenate([recs, ops[k:k + 1]]), np.concatenate([times, seen[k:k + 1]])
        if len(recs) >= self.resync_after:
            self.shadow(symbol)
            return recs, times
        self._unstarted[symbol] = (recs, times)
        if len(self._unstarted) > UNSTARTED_MAX:
            oldest = next(iter(self._unstarted))
            refuse_recs, _ = self._unstarted.pop(oldest)
            out.refused.append(Refused(oldest, int(refuse_recs["seq"][0]), Refusal.SYMBOL,
                                       f"symbol {oldest} has not started, and more than "
                                       f"{UNSTARTED_MAX} such symbols wait", len(refuse_recs)))
        return None

    # ------------------------------------------------------------- feed --
    def feed(self, recs: np.ndarray, seen_ns: np.ndarray, now: float, *,
             priority: ProofPriority = ProofPriority.NORMAL, policy: BatchPolicy | None = None,
             whole: bool = False) -> list[Batch]:
        """Run records (of any symbols) into their shadow books, cut by
        `policy` (default: the sequencer's); returns the batches that closed,
        already reported and marked.  `whole`: no rule cuts these records
        (the caller closes their batch), and records that overflow its trace
        raise BatchOverflow with nothing of their symbol applied (a caller
        that needs all or nothing feeds one symbol)."""
        policy = None if whole else policy or self.policy
        out = Applied()
        for symbol, ops, seen in by_symbol(recs, seen_ns):
            if symbol not in self.shadows:
                admitted = self.admit(symbol, ops, seen)
                if admitted is None:
                    continue
                ops, seen = admitted
            out.add(self.shadows[symbol].apply(ops, seen, now, policy, priority=priority))
        return self._report(out)

    def release(self, now: float) -> list[Batch]:
        """Apply the records a resume freed and nothing applied yet (after a
        journal replay that ended among them), under the policy."""
        out = Applied()
        for shadow in self._books(None):
            out.add(shadow.apply(np.zeros(0, OP_DTYPE), np.zeros(0, np.int64), now, self.policy))
        return self._report(out)

    def retry_marks(self) -> list[Batch]:
        """Closed batches whose journal marks a full disk held back, marked
        now if it takes them (in order)."""
        return self._mark([])

    def tick(self, now: float, policy: BatchPolicy | None = None,
             symbol: int | None = None) -> list[Batch]:
        """Close every open batch (of `symbol`, or of all) older than the
        policy's timeout."""
        policy = policy or self.policy
        closed = [b for s in self._books(symbol) if (b := s.tick(now, policy)) is not None]
        return self._report(Applied(closed=closed))

    def close(self, symbol: int, reason: CloseReason) -> Batch | None:
        """Close the symbol's open batch now (None if there is none)."""
        shadow = self.shadows.get(symbol)
        batch = shadow.close(reason) if shadow is not None else None
        return self._report(Applied(closed=[batch]))[0] if batch is not None else None

    def close_all(self, reason: CloseReason) -> list[Batch]:
        closed = [b for s in self._books(None) if (b := s.close(reason)) is not None]
        return self._report(Applied(closed=closed))

    def next_timeout(self, policy: BatchPolicy | None = None,
                     symbol: int | None = None) -> float | None:
        """When the oldest open batch (of `symbol`, or of all) times out
        under the policy (None: none is open)."""
        opened = [s.open_since for s in self._books(symbol) if s.open_count]
        return min(opened) + (policy or self.policy).timeout_s if opened else None

    def _books(self, symbol: int | None) -> list[ShadowBook]:
        if symbol is None:
            return list(self.shadows.values())
        return [self.shadows[symbol]] if symbol in self.shadows else []

    # ----------------------------------------------------------- replay --
    def replay(self, mark: BatchMark, recs: np.ndarray, seen_ns: np.ndarray, now: float
               ) -> tuple[Batch, int]:
        """Journal replay: close batch `mark` as the daemon did before, from
        `recs` (the symbol's journaled records not yet in a batch, in
        order).  Returns the batch (not marked again: the mark is in the
        journal) and how many of `recs` it consumed.  ReplayMismatch if the
        journal contradicts itself."""
        shadow = self.shadows.get(mark.symbol)
        if shadow is None:
            raise ReplayMismatch(f"a batch mark for symbol {mark.symbol}, which no record started")
        if mark.batch_id != shadow.next_batch_id:
            raise ReplayMismatch(f"symbol {mark.symbol}: the journal marks batch {mark.batch_id}, "
                                 f"expected {shadow.next_batch_id}")
        resumed = Applied()
        if mark.resumed:                 # resume where the mark says, whatever came before
            firsts = np.flatnonzero(recs["seq"] == mark.first_seq)
            if not firsts.size:
                raise ReplayMismatch(f"symbol {mark.symbol}: batch {mark.batch_id} resumes at "
                                     f"{mark.first_seq}, a record the journal does not hold")
            ts = int(recs["ts_ns"][firsts[0]])
            if shadow.needs_resume(mark.first_seq, ts):
                shadow.resume(mark.first_seq, ts, resumed)
                if resumed.closed:
                    raise ReplayMismatch(f"symbol {mark.symbol}: batch {mark.batch_id} resumes at "
                                         f"{mark.first_seq} while batch {mark.batch_id - 1} is open")
        try:
            applied = shadow.apply(recs, seen_ns, now, None, end_seq=mark.last_seq)
        except BatchOverflow as exc:
            raise ReplayMismatch(f"batch {mark.batch_id} of symbol {mark.symbol}: {exc}: it was cut "
                                 "under another configuration: a larger cap on a batch's ops rows "
                                 "([book] trace_length, or sized for [batch] max_batch_size; it may "
                                 "grow between runs, never shrink) or another [book] capacity (fixed "
                                 "for a chain): set it back", unusable=True) from None
        if applied.closed:
            raise ReplayMismatch(f"symbol {mark.symbol}: batch {mark.batch_id - 1} was marked before "
                                 f"the records that close it at a break")
        batch = shadow.close(CloseReason.REPLAY)
        if batch is None or (batch.first_seq, batch.last_seq) != (mark.first_seq, mark.last_seq):
            got = "no operations" if batch is None else f"{batch.first_seq}..{batch.last_seq}"
            raise ReplayMismatch(f"symbol {mark.symbol}: batch {mark.batch_id} is marked "
                                 f"{mark.first_seq}..{mark.last_seq}; the journal's records "
                                 f"give {got}")
        batch.priority = ProofPriority(mark.priority)
        resumed.add(applied)
        self._report_records(resumed)
        return batch, applied.taken

    # ---------------------------------------------------------- reports --
    def _report(self, applied: Applied) -> list[Batch]:
        self._report_records(applied)
        return self._mark(applied.closed)

    def _mark(self, closed: list[Batch]) -> list[Batch]:
        """Mark closed batches in the journal, in order; those a full disk
        refuses wait (`blocked`) and are marked by a later call.  Returns the
        batches marked: only a marked batch may be proven (a restart cuts
        its batches from the marks)."""
        self._unmarked.extend(closed)
        marked = []
        while self._unmarked:
            b = self._unmarked[0]
            if self.journal is not None:
                try:
                    self.journal.append_batch(BatchMark(b.symbol, b.batch_id, b.first_seq,
                                                        b.last_seq, int(b.priority), b.resumed))
                except JournalFull as exc:
                    if self.blocked is None:
                        log.error("journal full: %s; %d closed batches wait for their marks",
                                  exc, len(self._unmarked))
                    self.blocked = f"journal full (batch marks): {exc}"
                    return marked
            self._unmarked.popleft()
            self.metrics.batch_closed(len(b.ops), b.reason.value)
            marked.append(b)
        if self.blocked is not None:
            log.warning("the journal takes batch marks again")
            self.blocked = None
        return marked

    def _report_records(self, applied: Applied) -> None:
        for d in applied.divergences:
            self.divergences += 1
            self.metrics.divergence(d.symbol)
            if self._log_budget.take("divergence"):
                log.warning("divergence: symbol %d seq %d: the engine claims %s, the rules give %s",
                            d.symbol, d.seq, d.claimed, d.computed)
        for r in applied.refused:
            self.refused += r.count
            self.metrics.records_refused(r.reason.value, r.count)
            if self._log_budget.take("refused"):
                log.error("refused %s: symbol %d seq %d%s: %s (kept in the journal, not proven)",
                          "record" if r.count == 1 else f"{r.count} records", r.symbol, r.seq,
                          "" if r.count == 1 else " on", r.why)
        for b in applied.breaks:
            self.breaks += 1
            self.metrics.stream_break(b.symbol)
            lost = f"operations {b.expected}..{b.resumed - 1} never arrived" if b.resumed > b.expected \
                else "its time went back"
            log.warning("symbol %d: %s; the stream resumes at %d (a break in the chain of proofs)",
                        b.symbol, lost, b.resumed)


class Inbox:
    """Ingest's records on their way to the sequencer: (records, seen_ns,
    journal position after them) items, in order.  Past `limit` records
    held, an item keeps only its place in the journal (it was journaled
    before it was put here) and get() reads its records back from
    `journal`: a sequencer that falls behind a flood costs disk reads, not
    memory, and ingest never waits for it."""

    def __init__(self, journal: Journal | None = None, limit: int = 1 << 20):
        self.journal, self.limit = journal, limit
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.held = 0              # records held in memory
        self.spilled = 0           # items left in the journal (read back when taken)

    def put(self, item) -> None:
        if isinstance(item, tuple) and self.journal is not None:
            recs, seen, position = item
            with self._lock:
                spill = self.held + len(recs) > self.limit
                if spill:
                    self.spilled += 1
                else:
                    self.held += len(recs)
            if spill:                       # where its entry starts: entries never span segments
                item = (None, seen, position, (position[0], position[1] - fm.HEADER_SIZE
                                               - recs.nbytes))
        self._q.put(item)

    def get(self, timeout: float | None = None):
        item = self._q.get(timeout=timeout)
        if not isinstance(item, tuple) or self.journal is None:
            return item
        if item[0] is None:
            _, seen, position, start = item
            entry, _ = next(self.journal.entries(start))
            return entry.records, seen, position
        with self._lock:
            self.held -= len(item[0])
        return item

    def empty(self) -> bool:
        return self._q.empty()


class SequencerThread(threading.Thread):
    """The daemon's sequencer: records from ingest (`inbox`: (records,
    seen_ns, journal position after them) items) through the Sequencer,
    timeouts, checkpoints (with `checkpoints`, daemon/checkpoint.py: every
    open batch closed, then a snapshot), and at stop() the open batches
    closed (and a snapshot taken); every closed batch goes to `submit`."""

    def __init__(self, sequencer: Sequencer, submit: Callable[[Batch], None], checkpoints=None,
                 inbox_limit: int = 1 << 20):
        super().__init__(name="zksidecar-sequencer", daemon=True)
        self.sequencer, self.submit, self.checkpoints = sequencer, submit, checkpoints
        self.inbox = Inbox(sequencer.journal, inbox_limit)
        self.error: BaseException | None = None
        # held through each step, from the records fed (or the timeouts) to the
        # closed batches submitted: a reader holding it (Service.status) sees
        # every operation in an open batch, a batch waiting for its journal mark
        # (Sequencer.unmarked) or one submitted, never between the two
        self.step_lock = threading.RLock()

    def stop(self) -> None:
        """Close the open batches (SHUTDOWN) after what is queued, then end."""
        self.inbox.put(_STOP)

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:           # reported through is_alive(); the service stops
            self.error = exc
            log.error("sequencer stopped: %s: %s (its records are in the journal)",
                      type(exc).__name__, exc)
            log.debug("sequencer stopped", exc_info=True)

    def _loop(self) -> None:
        seq, cp = self.sequencer, self.checkpoints
        at = None                  # journal position after the last records sequenced
        while True:
            due = seq.next_timeout()
            wait = seq.policy.timeout_s if due is None else max(0.0, due - time.monotonic())
            try:
                item = self.inbox.get(timeout=min(wait, 0.25) or 0.001)
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            with self.step_lock:
                at, snapshot_due = self._step(item, at)
            if snapshot_due:
                # outside the lock: the state is between steps and stays so (this
                # thread alone changes it); a snapshot's syncs and retention take a
                # while, and /status, /metrics need not wait for them
                cp.take(seq, at)
        with self.step_lock:
            for b in seq.close_all(CloseReason.SHUTDOWN):
                self.submit(b)
        if cp is not None and cp.enabled and at is not None and not seq.blocked:
            cp.take(seq, at)         # every batch closed: the next start replays from here

    def _step(self, item, at):
        """One item of the inbox (or None: the timeouts alone) through the
        sequencer, and the batches it closed submitted; returns the journal
        position after the records sequenced, and whether a snapshot is due
        (every batch closed for it and marked)."""
        seq, cp = self.sequencer, self.checkpoints
        now = time.monotonic()
        closed = seq.retry_marks() if seq.blocked else []
        if item is not None:
            recs, seen, position = item
            closed += seq.feed(recs, np.full(len(recs), seen, np.int64), now)
            if cp is not None:
                cp.sequenced(len(recs))
                at = position
        closed += seq.tick(now)
        snapshot_due = cp is not None and at is not None and not seq.blocked and cp.due(now)
        if snapshot_due:
            closed += seq.close_all(CloseReason.SNAPSHOT)
        for b in closed:
            self.submit(b)
        # every batch marked: a snapshot may count them
        return at, snapshot_due and not seq.blocked


_STOP = object()


def by_symbol(recs: np.ndarray, seen: np.ndarray):
    """(symbol, its records in order, their seen times) for each symbol."""
    if not len(recs):
        return
    sym = recs["symbol"]
    if (sym == sym[0]).all():
        yield int(sym[0]), recs, seen
        return
    for s in np.unique(sym):
        mine = sym == s
        yield int(s), recs[mine], seen[mine]


class _LogBudget:
    """At most `per_second` log lines of a kind each second (the counters
    still count every one)."""

    def __init__(self, per_second: int = 10):
        self.per_second = per_second
        self._window: dict[str, tuple[int, int]] = {}

    def take(self, kind: str) -> bool:
        second = int(time.monotonic())
        start, used = self._window.get(kind, (second, 0))
        if start != second:
            start, used = second, 0
        self._window[kind] = (start, used + 1)
        return used < self.per_second
