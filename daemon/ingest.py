"""Ingest: one thread, pinned to its own core, that drains the engine's ops
ring into the journal.

Order of events for every record, which is what makes kill -9 at any point
safe:

1. poll: the record is copied out of the ring (the consumer is opened with
   deferred release, so its slot is not yet freed and a restart would see it
   again);
2. journal: the records are appended to the journal (a write(2): they survive
   the daemon's death from here on; fsync per the journal's policy); the
   journal position after them goes with them (a snapshot taken after
   them resumes the replay there, daemon/checkpoint.py);
3. release: the ring may reuse the slots;
4. hand-off: the records go to the sequencer (shadow books, batcher).

A restart therefore gets again the records polled after the last release.
Those that reached the journal are recognised — same 64 bytes as one of the
journal's last records of that symbol and sequence number — and dropped
(`Resync`), until the first record the journal has not seen.

Everything else about the ring is watched here too: the producer's liveness
(a dead engine is reported, the daemon keeps serving), full events, depth,
positions unblocked after a claimer died, and a stall on a claimed position.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Callable

import numpy as np

from ..engine.records import OP_DTYPE
from .journal import JournalFull

log = logging.getLogger("zksidecar.ingest")

STATUS_EVERY_S = 0.25      # producer liveness, full events, depth: how often
RETRY_S = 0.5              # a journal that is full is tried again this often
PRODUCER_STALE_S = 5.0     # default of ingest.producer_stale_s: a producer silent this long is "stale"


class Resync:
    """The journal's last records, by (symbol, seq): what a restarted ingest
    may see again and must not journal twice."""

    def __init__(self, tail: np.ndarray):
        self._known = {(int(r["symbol"]), int(r["seq"])): r.tobytes() for r in tail}

    def filter(self, recs: np.ndarray) -> np.ndarray:
        """`recs` without its leading records the journal already holds; ends
        resync at the first one it does not."""
        if not self._known:
            return recs
        for i, r in enumerate(recs):
            if self._known.get((int(r["symbol"]), int(r["seq"]))) != r.tobytes():
                self._known = {}
                return recs[i:]
        return recs[:0]

    @property
    def active(self) -> bool:
        return bool(self._known)


def pin_to(core: int) -> None:
    """Pin the calling thread to `core` (-1: leave it)."""
    if core < 0:
        return
    try:
        os.sched_setaffinity(0, {core})
    except OSError as exc:
        log.warning("cannot pin ingest to core %d: %s; running unpinned", core, exc)


class Ingest(threading.Thread):
    """The ingest thread.  A journal that cannot take the records (a full
    disk: JournalFull) blocks it: the records it polled stay unreleased in
    the ring and are journaled again every RETRY_S, nothing more is polled,
    the ring fills and the engine sees FULL (it never blocks); `blocked`
    says why until the journal takes them.  Any other failure ends the
    thread (`error`): the records it held are still in the ring, for the
    next start."""

    def __init__(self, consumer, append: Callable[[np.ndarray, int], tuple[int, int] | None],
                 out: "queue.SimpleQueue", metrics, core: int = -1, resync: Resync | None = None,
                 chunk: int = 4096, producer_stale_s: float = PRODUCER_STALE_S):
        super().__init__(name="zksidecar-ingest", daemon=True)
        self.consumer, self.append, self.out, self.metrics = consumer, append, out, metrics
        self.core, self.resync = core, resync or Resync(np.zeros(0, OP_DTYPE))
        self._buf = np.zeros(chunk, dtype=OP_DTYPE)
        self._stopping = threading.Event()
        self._unjournaled: tuple[np.ndarray, int] | None = None   # polled, not yet journaled
        self.error: BaseException | None = None
        self.blocked: str | None = None
        self.last_loop = time.monotonic()
        self.producer = "unknown"
        self.producer_stale_s = producer_stale_s

    def stop(self) -> None:
        self._stopping.set()

    def healthy(self, max_silence_s: float = 2.0) -> bool:
        """The loop is turning (for the systemd watchdog) and has not died."""
        return self.error is None and self.is_alive() and \
            time.monotonic() - self.last_loop < max_silence_s

    def run(self) -> None:
        pin_to(self.core)
        next_status = 0.0
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                self.last_loop = now
                if self._unjournaled is not None:
                    self._journal()
                    if self._unjournaled is not None:
                        self._stopping.wait(RETRY_S)
                else:
                    n = self.consumer.poll(self._buf, timeout=0.05)
                    if n:
                        self._take(self._buf[:n].copy())
                if now >= next_status:
                    self._status()
                    next_status = now + STATUS_EVERY_S
            # a clean stop journals what the ring held when it began (bounded: an engine
            # publishing faster than the journal takes must not hold the stop up);
            # a full disk leaves it in the ring, as does whatever came after
            left = self.consumer.depth
            while left > 0 and self._unjournaled is None and \
                    (n := self.consumer.drain(self._buf[:min(left, len(self._buf))])):
                self._take(self._buf[:n].copy())
                left -= n
        except BaseException as exc:  # reported through healthy(); the service stops
            self.error = exc
            log.error("ingest stopped: %s: %s (the records it held are still in the ring)",
                      type(exc).__name__, exc)
            log.debug("ingest stopped", exc_info=True)

    def _take(self, recs: np.ndarray) -> None:
        if self.resync.active:
            fresh = self.resync.filter(recs)
            if len(fresh) < len(recs):
                log.info("dropped %d records the journal already holds (re-delivered after a restart)",
                         len(recs) - len(fresh))
            recs = fresh
        if not len(recs):
            self.consumer.release()
            return
        self._unjournaled = (recs, time.monotonic_ns())
        self._journal()

    def _journal(self) -> None:
        """Journal the records polled, then release their ring slots and hand
        them on; on a full disk keep them (the ring keeps their slots)."""
        recs, seen = self._unjournaled
        try:
            position = self.append(recs, seen)
        except JournalFull as exc:
            if self.blocked is None:
                log.error("journal full: %s; holding %d records in the ring, which fills (the "
                          "engine sees FULL) until the journal takes them again", exc, len(recs))
            self.blocked = f"journal full: {exc}"
            return
        if self.blocked is not None:
            log.warning("the journal takes records again; ingest resumes")
            self.blocked = None
        self._unjournaled = None
        self.consumer.release()
        self.out.put((recs, seen, position))
        self.metrics.ops_ingested(len(recs))

    def _status(self) -> None:
        self.consumer.heartbeat()
        status = self.consumer.peer_status(self.producer_stale_s)
        if status != self.producer:
            (log.warning if status in ("dead", "stale") else log.info)(
                "engine (ring producer) is %s", status)
            self.producer = status
        self.metrics.producer_status(status)
        self.metrics.ring_full_events(self.consumer.full_events)
        self.metrics.ring_depth(self.consumer.depth)
        self.metrics.ring_unblocked(self.consumer.unblocked)
        self.metrics.ring_stall(self.consumer.stall)
