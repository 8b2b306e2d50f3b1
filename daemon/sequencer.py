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
from typing import Callable

import numpy as np

from ..prover.orderbook.witness import check_trace_length
from .batches import Applied, Batch, BatchPolicy, CloseReason, Refusal, Refused
from .journal import BatchMark, Journal, ReplayMismatch
from .metrics import Metrics
from .priority import ProofPriority
from .shadow import DEFAULT_RESYNC_AFTER, BatchOverflow, ShadowBook

log = logging.getLogger("zksidecar.sequencer")


class Sequencer:
    """The shadow books of one service: books of `capacity` slots proven in
    traces of `trace_length` rows, cut into batches by `policy`, at most
    `max_symbols` of them (an engine writing garbage symbols must not grow
    the daemon without bound: records of further symbols are refused)."""

    def __init__(self, capacity: int, trace_length: int, policy: BatchPolicy, metrics: Metrics, *,
                 max_symbols: int | None = None, journal: Journal | None = None,
                 resync_after: int = DEFAULT_RESYNC_AFTER):
        self.trace_length = check_trace_length(trace_length, capacity)
        self.capacity, self.policy, self.resync_after = capacity, policy, resync_after
        self.metrics, self.journal, self.max_symbols = metrics, journal, max_symbols
        self.shadows: dict[int, ShadowBook] = {}
        self.divergences = self.refused = self.breaks = 0
        self._log_budget = _LogBudget()

    def shadow(self, symbol: int) -> ShadowBook | None:
        """The symbol's shadow book, made on first use; None past max_symbols."""
        book = self.shadows.get(symbol)
        if book is None:
            if self.max_symbols is not None and len(self.shadows) >= self.max_symbols:
                return None
            book = self.shadows[symbol] = ShadowBook(symbol, self.capacity, self.trace_length,
                                                     resync_after=self.resync_after)
        return book

    def _start(self, symbol: int, ops: np.ndarray, out: Applied) -> int | None:
        """Where a symbol without a shadow book starts, if it can: at its
        stream's first record (sequence number 1), within max_symbols.  The
        records before are refused, so garbage never takes a symbol slot."""
        first = np.flatnonzero(ops["seq"] == 1)
        start = int(first[0]) if first.size else len(ops)
        full = self.max_symbols is not None and len(self.shadows) >= self.max_symbols
        refused = len(ops) if full else start
        if refused:
            why = f"a symbol beyond book.max_symbols ({self.max_symbols})" if full else \
                f"symbol {symbol} has not started (a stream begins at sequence number 1)"
            out.refused.append(Refused(symbol, int(ops["seq"][0]), Refusal.SYMBOL, why, refused))
        return None if refused == len(ops) else start

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
                start = self._start(symbol, ops, out)
                if start is None:
                    continue
                ops, seen = ops[start:], seen[start:]
            out.add(self.shadow(symbol).apply(ops, seen, now, policy, priority=priority))
        return self._report(out)

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
        shadow = self.shadow(mark.symbol)
        if shadow is None:
            raise ReplayMismatch(f"a batch mark for symbol {mark.symbol}, beyond book.max_symbols "
                                 f"({self.max_symbols})")
        if mark.batch_id != shadow.next_batch_id:
            raise ReplayMismatch(f"symbol {mark.symbol}: the journal marks batch {mark.batch_id}, "
                                 f"expected {shadow.next_batch_id}")
        try:
            applied = shadow.apply(recs, seen_ns, now, None, end_seq=mark.last_seq)
        except BatchOverflow as exc:
            raise ReplayMismatch(f"batch {mark.batch_id} of symbol {mark.symbol}: {exc} (was "
                                 "book.trace_length or book.capacity changed?)") from None
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
        self._report_records(applied)
        return batch, applied.taken

    # ---------------------------------------------------------- reports --
    def _report(self, applied: Applied) -> list[Batch]:
        self._report_records(applied)
        for b in applied.closed:
            if self.journal is not None:
                self.journal.append_batch(BatchMark(b.symbol, b.batch_id, b.first_seq, b.last_seq,
                                                    int(b.priority)))
            self.metrics.batch_closed(len(b.ops), b.reason.value)
        return applied.closed

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
            log.warning("symbol %d: operations %d..%d never arrived; the stream resumes at %d "
                        "(a break in the chain of proofs)", b.symbol, b.expected, b.resumed - 1,
                        b.resumed)


class SequencerThread(threading.Thread):
    """The daemon's sequencer: records from ingest (`inbox`: (records,
    seen_ns) items) through the Sequencer, timeouts, and at stop() the open
    batches closed; every closed batch goes to `submit`."""

    def __init__(self, sequencer: Sequencer, submit: Callable[[Batch], None]):
        super().__init__(name="zksidecar-sequencer", daemon=True)
        self.sequencer, self.submit = sequencer, submit
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None

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
        seq = self.sequencer
        while True:
            due = seq.next_timeout()
            wait = seq.policy.timeout_s if due is None else max(0.0, due - time.monotonic())
            try:
                item = self.inbox.get(timeout=min(wait, 0.25) or 0.001)
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            now = time.monotonic()
            closed = []
            if item is not None:
                recs, seen = item
                closed += seq.feed(recs, np.full(len(recs), seen, np.int64), now)
            closed += seq.tick(now)
            for b in closed:
                self.submit(b)
        for b in seq.close_all(CloseReason.SHUTDOWN):
            self.submit(b)


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
