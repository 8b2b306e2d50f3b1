"""The finisher: proven batches into the proof store, completions to the
engine.

The worker pool resolves each batch's future in its monitor thread; the
future's callback hands (batch, future) to this thread, which does the slow
part: the store's write and fsync, the completion record, the metrics.  A
completion the engine's full ring cannot take waits in a bounded backlog and
is published as soon as there is room.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import CancelledError, Future

import numpy as np

from ..engine.records import COMPLETION_DTYPE, NO_PROOF, CompletionStatus
from .batches import Batch
from .jobs import ProofResult
from .metrics import Metrics
from .store import ProofStore, StoreError
from .workers import PoolClosed

log = logging.getLogger("zksidecar.finisher")

#: completions held while the engine does not read them; past this the oldest go
COMPLETION_BACKLOG = 1 << 16
_POLL_S = 0.1     # how often a waiting completion is retried when nothing else happens


class Finisher(threading.Thread):
    """Stores each finished batch's proof and publishes its completion on
    `completions` (a ring Producer of COMPLETION_DTYPE records)."""

    def __init__(self, store: ProofStore, completions, metrics: Metrics):
        super().__init__(name="zksidecar-finisher", daemon=True)
        self.store, self.completions, self.metrics = store, completions, metrics
        self.proven = self.failed = self.completions_dropped = 0
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._backlog: deque = deque()

    def finished(self, batch: Batch, future: Future) -> None:
        """A batch's proof future is done (called from any thread)."""
        self._done.put((batch, future))

    def stop(self) -> None:
        """Finish what is queued, then end."""
        self._done.put(_STOP)

    @property
    def completions_waiting(self) -> int:
        return len(self._backlog)

    def run(self) -> None:
        while True:
            try:
                item = self._done.get(timeout=_POLL_S)
            except queue.Empty:
                item = None
            self._flush()
            if item is _STOP:
                return
            if item is not None:
                self._finish(*item)

    def _finish(self, batch: Batch, future: Future) -> None:
        label = batch.priority.label
        try:
            res: ProofResult = future.result()
        except (CancelledError, PoolClosed):   # a stop: the journal keeps it for the next start
            log.info("batch %d of symbol %d: left for the next start", batch.batch_id, batch.symbol)
            return
        except Exception as exc:               # the pool failed the job (a crashed worker)
            self._failed(batch, None, f"{type(exc).__name__}: {exc}", b"")
            return
        if not res.ok:
            self._failed(batch, res.queue_wait_s, res.error, b"")
            return
        try:
            index = self.store.put(batch.symbol, batch.batch_id, res.proof)
        except StoreError as exc:
            self._failed(batch, res.queue_wait_s, f"proof not stored: {exc} (it stays in the "
                         "journal and is proven again on restart)", res.post_root)
            return
        self.proven += 1
        self.metrics.job_finished(label, res.queue_wait_s, res.prove_s,
                                  np.maximum(time.monotonic_ns() - batch.seen_ns, 0) / 1e9)
        status = CompletionStatus.DISAGREES if batch.divergent else CompletionStatus.PROVEN
        self._complete(batch, status, res.post_root, index)

    def _failed(self, batch: Batch, waited_s: float | None, why: str, root: bytes) -> None:
        self.failed += 1
        self.metrics.job_finished(batch.priority.label, waited_s, None)
        log.error("batch %d of symbol %d: no proof: %s", batch.batch_id, batch.symbol, why)
        self._complete(batch, CompletionStatus.FAILED, root, NO_PROOF)

    def _complete(self, batch: Batch, status: CompletionStatus, root: bytes, index: int) -> None:
        rec = np.zeros(1, COMPLETION_DTYPE)
        rec["batch_id"], rec["first_seq"], rec["last_seq"] = batch.batch_id, batch.first_seq, batch.last_seq
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
