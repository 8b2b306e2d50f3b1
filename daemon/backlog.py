"""The proof backlog: closed batches waiting for a proof, in memory up to a
budget and on disk (in the journal) beyond it.

Every closed batch, the sequencer's and those recovery left to prove,
enters the backlog, which orders them by ProofPriority with aging (the
PriorityQueue of daemon/priority.py, as the pools order their jobs) and
hands the proof pool the next one whenever the pool has room: `slots` jobs
at a time, about two per worker (one proving, one ready to go), so the
pool's own queue stays short and the order is decided here.

Memory.  A batch's witness (the cells before it, its records, trades and
step records: about 1.7 MB for 1,024 operations of the synthetic flow) is
kept while the batches kept so take at most `budget` bytes.  Past that a
batch is kept as its journal mark only (daemon/journal.py BatchMark: a
hundred bytes), and rebuilt from the journal and a snapshot
(daemon/rebuild.py) when the pool has room for it.  So memory holds the
budget's worth of batches, the pool's few jobs and a mark per batch beyond,
whatever the backlog; nothing is dropped (every batch here is marked in the
journal before it is queued), and ingest never waits for any of it.
Batches recovery did not rebuild arrive as marks.
"""
from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from queue import Empty

from .batches import Batch
from .jobs import BackendError, ProofJob
from .journal import BatchMark, JournalError
from .priority import DEFAULT_AGE_STEP, ProofPriority, PriorityQueue, QueueClosed
from .rebuild import Rebuilder
from .workers import PoolClosed, WorkerCrashed

log = logging.getLogger("zksidecar.backlog")

#: how often the feeder looks again at a pool that has no room (its workers may have changed)
_RECHECK_S = 0.25


def witness_bytes(batch: Batch) -> int:
    """The bytes a closed batch holds in memory (its arrays)."""
    return (batch.pre_cells.nbytes + batch.ops.nbytes + batch.trades.nbytes + batch.steps.nbytes
            + batch.seen_ns.nbytes)


def op_count(item: Batch | BatchMark) -> int:
    return len(item.ops) if isinstance(item, Batch) else item.last_seq - item.first_seq + 1


def mark_of(batch: Batch) -> BatchMark:
    return BatchMark(batch.symbol, batch.batch_id, batch.first_seq, batch.last_seq,
                     int(batch.priority), batch.resumed)


class Backlog:
    """Batches waiting for proofs (module docstring).  `rebuild` turns a
    mark back into its batch; `security_bits` is the proofs'.  start()
    begins feeding a pool; each batch handed over comes back through
    `done(batch, future)` when its proof future is done."""

    name = "backlog"

    def __init__(self, budget: int, rebuild: Rebuilder, security_bits: int,
                 age_step: float | None = DEFAULT_AGE_STEP, chains=None):
        if budget < 0:
            raise ValueError(f"the backlog's memory budget must be >= 0 bytes, not {budget}")
        self.budget, self.rebuild, self.security_bits = budget, rebuild, security_bits
        self.chains = chains       # zk mode: symbol -> ZkChain, the jobs' keys derived from it
        self.queue = PriorityQueue(age_step)
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._bytes = 0                # witness bytes of the batches queued in memory
        self._in_memory = 0            # batches queued with their witness
        self._marks = 0                # batches queued as marks (their witness on disk)
        self._ops = 0                  # operations queued
        self._pool_ops = 0             # operations in jobs handed to the pool, not done
        self._in_pool = 0
        self.rebuilt = 0               # batches rebuilt from the journal
        self.rebuild_failed = 0
        self.peak_bytes = 0
        self._pool = None
        self._slots: Callable[[], int] = lambda: 0
        self._done: Callable[[Batch | BatchMark, Future], None] | None = None
        self._feeder: threading.Thread | None = None
        self._closed = False
        self.error: BaseException | None = None

    # ------------------------------------------------------------- adding --
    def add(self, item: Batch | BatchMark) -> None:
        """Queue a closed batch (marked in the journal), or the mark of one."""
        priority = ProofPriority(item.priority)
        with self._lock:
            if isinstance(item, Batch):
                size = witness_bytes(item)
                if self._bytes + size > self.budget:
                    item = mark_of(item)          # the journal holds it: rebuilt when its turn comes
                else:
                    self._bytes += size
                    self.peak_bytes = max(self.peak_bytes, self._bytes)
            if isinstance(item, Batch):
                self._in_memory += 1
            else:
                self._marks += 1
            self._ops += op_count(item)
            self._room.notify_all()
        self.queue.put(item, priority)

    # ------------------------------------------------------------ feeding --
    def start(self, pool, done: Callable[[Batch | BatchMark, Future], None],
              slots: Callable[[], int]) -> None:
        """Feed `pool` (a ProofPool) up to `slots()` jobs at a time."""
        self._pool, self._done, self._slots = pool, done, slots
        self._feeder = threading.Thread(target=self._run, name="zksidecar-backlog", daemon=True)
        self._feeder.start()

    def _run(self) -> None:
        try:
            self._feed()
        except BaseException as exc:          # reported through is_alive(); the service stops
            self.error = exc
            log.error("backlog feeder stopped: %s: %s (the batches are marked in the journal)",
                      type(exc).__name__, exc)
            log.debug("backlog feeder stopped", exc_info=True)

    def is_alive(self) -> bool:
        return self._feeder is not None and self._feeder.is_alive()

    def _feed(self) -> None:
        while True:
            with self._room:
                while not self._closed and self._in_pool >= max(1, self._slots()):
                    self._room.wait(_RECHECK_S)
                if self._closed:
                    return
            try:
                item, priority, waited = self.queue.get(timeout=_RECHECK_S)
            except QueueClosed:
                return
            except Empty:                      # look at the pool again
                continue
            self._hand_over(item, priority, waited)

    def _hand_over(self, item: Batch | BatchMark, priority: ProofPriority, waited: float) -> None:
        n = op_count(item)
        with self._lock:
            self._ops -= n
            if isinstance(item, Batch):
                self._in_memory -= 1
                self._bytes -= witness_bytes(item)
            else:
                self._marks -= 1
            self._in_pool += 1
            self._pool_ops += n
        batch = item
        future: Future
        if isinstance(item, BatchMark):
            try:
                batch = self.rebuild.batch(item)
                self.rebuilt += 1
            except (JournalError, ValueError) as exc:
                self.rebuild_failed += 1
                log.error("symbol %d batch %d cannot be rebuilt from the journal: %s (it stays "
                          "marked there; the next start tries again)", item.symbol, item.batch_id,
                          exc)
                future = Future()
                future.set_exception(BackendError(f"not rebuilt from the journal: {exc}"))
                self._finished(item, n, waited, future)
                return
        try:
            future = self._pool.submit(ProofJob.of(batch, self.security_bits, self.chains), priority)
        except (PoolClosed, WorkerCrashed, ValueError) as exc:   # ValueError: keys not derivable
            future = Future()
            future.set_exception(exc)
            self._finished(batch, n, waited, future)
            return
        future.add_done_callback(functools.partial(self._finished, batch, n, waited))

    def _finished(self, batch: Batch | BatchMark, n: int, waited: float, future: Future) -> None:
        if not future.cancelled() and future.exception() is None:
            future.result().queue_wait_s += waited         # its wait here, then in the pool's queue
        # handed on before it leaves the pool's count: a reader of pending,
        # then of what it is handed to (Service.live), never misses it
        self._done(batch, future)
        with self._room:
            self._in_pool -= 1
            self._pool_ops -= n
            self._room.notify_all()

    # ------------------------------------------------------------ closing --
    def close(self) -> list[Batch | BatchMark]:
        """Stop feeding the pool; returns what was still queued (marked in
        the journal: the next start proves it)."""
        with self._room:
            self._closed = True
            self._room.notify_all()
        self.queue.close()
        if self._feeder is not None:
            self._feeder.join()
        left = [item for item, _ in self.queue.drain()]
        with self._lock:
            self._ops = self._in_memory = self._marks = self._bytes = 0
        return left

    # ------------------------------------------------------------- status --
    @property
    def pending(self) -> int:
        """Batches queued here or handed to the pool, whose proofs are not done."""
        with self._lock:
            return self._in_memory + self._marks + self._in_pool

    @property
    def ops(self) -> int:
        """Operations in those batches."""
        with self._lock:
            return self._ops + self._pool_ops

    def status(self) -> dict:
        with self._lock:
            return {"queued_in_memory": self._in_memory, "queued_on_disk": self._marks,
                    "in_pool": self._in_pool, "memory_bytes": self._bytes,
                    "memory_budget_bytes": self.budget, "memory_peak_bytes": self.peak_bytes,
                    "rebuilt": self.rebuilt, "rebuild_failed": self.rebuild_failed,
                    "rebuild_cursors": self.rebuild.cursors}
