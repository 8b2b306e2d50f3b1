"""The finisher: proven batches into the proof store, completions to the
engine.

The worker pool resolves each batch's future in its monitor thread; the
future's callback hands (batch, future) to this thread, which does the slow
part: the store's write and fsync, the completion record, the metrics.  A
completion the engine's full ring cannot take waits in a bounded backlog and
is published as soon as there is room.  A proof a full disk cannot take
(StoreFull) is held and stored again every poll, up to UNSTORED_MAX of them;
past that the oldest is given up (FAILED: its batch is still marked in the
journal, so the next start proves it again).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import CancelledError, Future

import numpy as np

from ..engine.records import COMPLETION_DTYPE, NO_PROOF, VERSION as RECORDS_VERSION, CompletionStatus
from .batches import Batch
from .jobs import ProofResult
from .metrics import Metrics
from .priority import ProofPriority
from .store import ProofStore, StoreError, StoreFull
from .workers import PoolClosed

log = logging.getLogger("zksidecar.finisher")

#: completions held while the engine does not read them; past this the oldest go
COMPLETION_BACKLOG = 1 << 16
#: proofs held while the store's disk is full (~170 KiB each)
UNSTORED_MAX = 256
_POLL_S = 0.1     # how often a waiting completion or proof is retried when nothing else happens


class Finisher(threading.Thread):
    """Stores each finished batch's proof and publishes its completion on
    `completions` (a ring Producer of COMPLETION_DTYPE records)."""

    def __init__(self, store: ProofStore, completions, metrics: Metrics, private=None):
        super().__init__(name="zksidecar-finisher", daemon=True)
        self.store, self.completions, self.metrics = store, completions, metrics
        # zk mode (daemon/zk_store.ZkStore): each batch's private file is
        # written, durably, before its proof is stored and its completion sent
        self.private = private
        self.proven = self.failed = self.completions_dropped = 0
        self.left: list = []                 # batches (or marks) a stop left unproven, in the journal
        self.error: BaseException | None = None
        self.blocked: str | None = None       # why proofs wait to be stored (a full disk)
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._backlog: deque = deque()
        self._unstored: deque = deque()       # (batch, result) a full disk refused
        # batches handed here whose _finish has not returned: with _unstored, the
        # proofs done but not stored yet (unfinished)
        self._taking = 0
        self._taking_lock = threading.Lock()

    def finished(self, batch: Batch, future: Future) -> None:
        """A batch's proof future is done (called from any thread).  It
        counts as unfinished from this call on."""
        with self._taking_lock:
            self._taking += 1
        self._done.put((batch, future))

    @property
    def unfinished(self) -> int:
        """Batches handed here whose proofs are not stored (nor failed, nor
        left for the next start) yet: on the queue, being stored, or held
        by a full disk.  A batch held is counted in both terms for an
        instant as it moves, never in neither, so a reader that sees 0
        sees every proof handed here before stored or given up."""
        with self._taking_lock:
            taking = self._taking
        return taking + len(self._unstored)

    def stop(self) -> None:
        """Finish what is queued, then end."""
        self._done.put(_STOP)

    @property
    def completions_waiting(self) -> int:
        return len(self._backlog)

    def run(self) -> None:
        try:
            while True:
                try:
                    item = self._done.get(timeout=_POLL_S)
                except queue.Empty:
                    item = None
                self._flush()
                self._store_held()
                if item is _STOP:
                    self.left += [batch for batch, _ in self._unstored]   # the journal keeps them
                    return
                if item is not None:
                    try:
                        self._finish(*item)
                    finally:
                        with self._taking_lock:
                            self._taking -= 1
        except BaseException as exc:           # reported through is_alive(); the service stops
            self.error = exc
            log.error("finisher stopped: %s: %s (unstored batches stay marked in the journal)",
                      type(exc).__name__, exc)
            log.debug("finisher stopped", exc_info=True)

    def _finish(self, batch: Batch, future: Future) -> None:
        try:
            res: ProofResult = future.result()
        except (CancelledError, PoolClosed):   # a stop: the journal keeps it for the next start
            self.left.append(batch)
            return
        except Exception as exc:               # the pool failed the job (a crashed worker)
            self._failed(batch, None, f"{type(exc).__name__}: {exc}", b"")
            return
        if not res.ok:
            self._failed(batch, res.queue_wait_s, res.error, b"")
            return
        if self._unstored or not self._store(batch, res):   # in order while the disk is full
            self._hold(batch, res)

    def _store(self, batch: Batch, res: ProofResult) -> bool:
        """Store and complete a proven batch; False if a full disk refused it."""
        try:
            if self.private is not None:
                self.private.write_private(batch)
            # replace: a proof recovery found damaged is proven again and superseded
            index = self.store.put(batch.symbol, batch.batch_id, res.proof, replace=True)
        except StoreFull as exc:
            if self.blocked is None:
                log.error("proof store full: %s; proofs wait in memory (up to %d) until it takes "
                          "them again", exc, UNSTORED_MAX)
            self.blocked = f"proof store full: {exc}"
            return False
        except StoreError as exc:
            self._failed(batch, res.queue_wait_s, f"proof not stored: {exc} (its batch stays "
                         "marked in the journal: the next start proves it again)", res.post_root)
            return True
        self.proven += 1
        self.metrics.job_finished(batch.priority.label, res.queue_wait_s, res.prove_s,
                                  np.maximum(time.monotonic_ns() - batch.seen_ns, 0) / 1e9)
        status = CompletionStatus.DISAGREES if batch.divergent else CompletionStatus.PROVEN
        self._complete(batch, status, res.post_root, index)
        return True

    def _hold(self, batch: Batch, res: ProofResult) -> None:
        self._unstored.append((batch, res))
        if len(self._unstored) > UNSTORED_MAX:
            old, old_res = self._unstored.popleft()
            self._failed(old, old_res.queue_wait_s, "the proof store stayed full (its batch "
                         "stays marked in the journal: the next start proves it again)",
                         old_res.post_root)

    def _store_held(self) -> None:
        while self._unstored:
            if not self._store(*self._unstored[0]):
                return
            self._unstored.popleft()
        if self.blocked is not None and not self._unstored:
            log.warning("the proof store takes proofs again")
            self.blocked = None

    def _failed(self, batch: Batch, waited_s: float | None, why: str, root: bytes) -> None:
        self.failed += 1
        self.metrics.job_finished(ProofPriority(batch.priority).label, waited_s, None)
        log.error("batch %d of symbol %d: no proof: %s", batch.batch_id, batch.symbol, why)
        self._complete(batch, CompletionStatus.FAILED, root, NO_PROOF)

    def _complete(self, batch: Batch, status: CompletionStatus, root: bytes, index: int) -> None:
        rec = np.zeros(1, COMPLETION_DTYPE)
        rec["batch_id"], rec["first_seq"], rec["symbol"] = batch.batch_id, batch.first_seq, batch.symbol
        rec["op_count"] = batch.last_seq - batch.first_seq + 1
        rec["version"] = RECORDS_VERSION
        rec["post_state_root"] = np.frombuffer(root.ljust(rec["post_state_root"].size, b"\0"), np.uint8)
        rec["status"], rec["proof_index"] = int(status), index
        self._backlog.append(rec)
        self._flush()

    def _flush(self) -> None:
        """Publish waiting completions; an engine that does not read them
        fills the ring, and they wait here (bounded) instead."""
        while self._backlog:
            if not self.completions.publish(self._backlog[0]):
                if len(self._backlog) > COMPLETION_BACKLOG:
                    self._backlog.popleft()
                    self.completions_dropped += 1
                return
            self._backlog.popleft()


_STOP = object()
