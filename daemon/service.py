"""The sidecar daemon: everything wired together (docs/DAEMON.md).

Threads and processes, and what each owns:

    ingest      (thread, pinned)   ops ring -> journal -> sequencer queue     daemon/ingest.py
    sequencer   (thread)           shadow books, batch cuts, batch marks,     daemon/shadow.py
                                   proof jobs (by priority)
    workers     (processes,        proof jobs -> batch proofs                 daemon/workers.py
                 pinned)
    finisher    (thread)           proofs -> store -> completion ring
    event loop  (main thread,      admin endpoint, sd_notify READY/STATUS/    daemon/admin.py,
                 uvloop)           WATCHDOG, signals                          daemon/notify.py

Start-up is recovery: the journal and the store are repaired, the journal is
replayed through fresh shadow books (the same batch cuts, from its marks), a
marked batch with a proof in the store is done, one without is proven again,
and operations after the last mark of their symbol continue the open batch.
So after kill -9 at any point nothing is lost and nothing is proven twice.
"""
from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from concurrent.futures import CancelledError

import numpy as np

from .. import ringbuf
from ..engine.records import COMPLETION_DTYPE, NO_PROOF, OP_DTYPE, CompletionStatus
from ..ringbuf.ring import IdleStrategy
from .config import Config
from .ingest import Ingest, Resync
from .journal import BatchMark, Journal, OpsEntry
from .metrics import Metrics
from .priority import ProofPriority
from .shadow import Applied, Batch, BatchPolicy, Rejected, ShadowBook, trace_length_for
from .store import ProofStore, StoreError
from .workers import PoolClosed, ProofJob, ProofResult, WorkerPool

log = logging.getLogger("zksidecar.daemon")

LOG_BLOWUP = 2          # the order-book AIR's constraints have degree 3
SHUTDOWN_GRACE_S = 30   # a clean stop waits this long for proofs in flight


class Service:
    """The daemon.  `run()` serves until stop() (or SIGTERM / SIGINT)."""

    def __init__(self, config: Config, metrics: Metrics | None = None, notifier=None):
        self.config = config
        self.metrics = metrics or Metrics()
        self.notifier = notifier
        cap, bc = config.book.capacity, config.batch
        self.trace_length = config.book.trace_length or trace_length_for(cap, bc.max_batch_size)
        self.policy = BatchPolicy(bc.max_batch_size, bc.batch_timeout_ms / 1000, self.trace_length,
                                  bc.critical_qty)
        self.shadows: dict[int, ShadowBook] = {}
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._in_flight: dict[tuple[int, int], Batch] = {}     # submitted, not yet finished
        self._in_flight_lock = threading.Lock()
        self._completions_backlog: deque = deque()
        self._stop = threading.Event()
        self._log_budget = _LogBudget()
        self.counts = {"divergences": 0, "rejected": 0, "proven": 0, "failed": 0,
                       "completions_dropped": 0, "recovered_batches": 0}
        self.started_at = time.time()
        self.ingest: Ingest | None = None
        self.pool: WorkerPool | None = None

    # ------------------------------------------------------------ start --
    def _open_rings(self):
        rc = self.config.ring
        for name in (rc.ops, rc.completions):
            if rc.create and not os.path.exists("/dev/shm/" + name.lstrip("/")):
                ringbuf.create(name, rc.capacity, group=rc.group or None)
                log.info("created ring %s (%d records)", name, rc.capacity)
        idle = {"busy_spin": IdleStrategy.busy_spin(), "spin_then_yield": IdleStrategy.spin_then_yield(),
                "spin_then_park": IdleStrategy.spin_then_park()}[rc.idle]
        consumer = ringbuf.Consumer(rc.ops, idle=idle, takeover=True, defer_release=True)
        completions = ringbuf.Producer(rc.completions, takeover=True)
        return consumer, completions

    def _shadow(self, symbol: int) -> ShadowBook | None:
        """The symbol's shadow book, made on its first record; None past
        book.max_symbols (an engine writing garbage symbols must not grow the
        daemon without bound: its records are refused)."""
        book = self.shadows.get(symbol)
        if book is None:
            if len(self.shadows) >= self.config.book.max_symbols:
                return None
            book = self.shadows[symbol] = ShadowBook(symbol, self.config.book.capacity, self.policy)
        return book

    def _apply(self, recs: np.ndarray, seen: np.ndarray, now: float | None) -> Applied:
        """Hand records to their symbols' shadow books (now None: journal
        replay, held until the marks); refuse those of a symbol too many."""
        out = Applied()
        for symbol, ops, at in _by_symbol(recs, seen):
            shadow = self._shadow(symbol)
            if shadow is None:
                out.rejected += [Rejected(symbol, int(s), f"a symbol beyond book.max_symbols "
                                          f"({self.config.book.max_symbols})") for s in ops["seq"][:100]]
                continue
            if now is None:
                shadow.replay_ops(ops, at)
            else:
                more = shadow.apply(ops, at, now)
                out.closed += more.closed
                out.divergences += more.divergences
                out.rejected += more.rejected
        return out

    def recover(self) -> list[Batch]:
        """Replay the journal; returns the batches that still need a proof
        (marked ones without a proof, then those the held operations close)."""
        todo: list[Batch] = []
        tail: deque = deque()
        tail_len = 0
        for entry in self.journal.replay():
            if isinstance(entry, OpsEntry):
                recs = entry.records
                tail.append(recs)
                tail_len += len(recs)
                while tail_len - len(tail[0]) >= self.config.ring.capacity:
                    tail_len -= len(tail.popleft())
                self._apply(recs, np.full(len(recs), entry.seen_ns, np.int64), None)
            else:
                shadow = self._shadow(entry.symbol)
                if shadow is None:
                    raise ValueError(f"journal: a batch mark for symbol {entry.symbol}, beyond "
                                     f"book.max_symbols ({self.config.book.max_symbols})")
                batch, applied = shadow.replay_mark(entry.batch_id, entry.last_seq)
                self.counts["divergences"] += len(applied.divergences)
                batch.priority = ProofPriority(entry.priority)
                if not self.store.has(entry.symbol, entry.batch_id):
                    todo.append(batch)
        self.resync = Resync(np.concatenate(tail) if tail else np.zeros(0, OP_DTYPE))
        now = time.monotonic()
        for shadow in self.shadows.values():
            todo += self._handle(shadow.release_held(now))
        self.counts["recovered_batches"] = len(todo)
        if todo:
            log.info("recovery: %d batches to prove (journal replayed, %d proofs in the store)",
                     len(todo), len(self.store))
        return todo

    # -------------------------------------------------------- sequencer --
    def _handle(self, applied: Applied) -> list[Batch]:
        """Report an Applied's divergences and refusals, mark its batches in
        the journal; returns the batches."""
        for d in applied.divergences:
            self.counts["divergences"] += 1
            self.metrics.divergence(d.symbol)
            if self._log_budget.take("divergence"):
                log.warning("divergence: symbol %d seq %d: the engine claims %s, the rules give %s",
                            d.symbol, d.seq, d.claimed, d.computed)
        for r in applied.rejected:
            self.counts["rejected"] += 1
            if self._log_budget.take("refused"):
                log.error("refused record: symbol %d seq %d: %s (kept in the journal, not proven)",
                          r.symbol, r.seq, r.why)
        for b in applied.closed:
            self.journal.append_batch(BatchMark(b.symbol, b.batch_id, b.first_seq, b.last_seq,
                                                int(b.priority)))
            self.metrics.batch_closed(len(b.ops), b.reason)
        return applied.closed

    def _submit(self, batch: Batch) -> None:
        job = ProofJob(batch.symbol, batch.batch_id, batch.pre_cells, batch.ops, self.trace_length,
                       self.config.workers.security_bits, LOG_BLOWUP)
        with self._in_flight_lock:
            self._in_flight[(batch.symbol, batch.batch_id)] = batch
        self.metrics.batch_queued(batch.priority.label)
        fut = self.pool.submit(job, batch.priority)
        fut.add_done_callback(lambda f, b=batch: self._results.put((b, f)))

    def _sequencer(self) -> None:
        timeout = self.policy.timeout_s
        while True:
            wait = timeout
            opened = [s.open_since for s in self.shadows.values() if s.open_count]
            if opened:
                wait = max(0.0, min(opened) + timeout - time.monotonic())
            try:
                item = self._inbox.get(timeout=min(wait, 0.25) if wait else 0.001)
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            now = time.monotonic()
            if item is not None:
                recs, seen = item
                for b in self._handle(self._apply(recs, np.full(len(recs), seen, np.int64), now)):
                    self._submit(b)
            for shadow in self.shadows.values():
                b = shadow.tick(now)
                if b is not None:
                    self._handle(Applied(closed=[b]))
                    self._submit(b)
        for shadow in self.shadows.values():            # a clean stop proves what is open
            b = shadow.close("shutdown")
            if b is not None:
                self._handle(Applied(closed=[b]))
                self._submit(b)

    # --------------------------------------------------------- finisher --
    def _finisher(self) -> None:
        while True:
            try:
                item = self._results.get(timeout=0.1)
            except queue.Empty:
                item = None
            self._flush_completions()
            if item is _STOP:
                break
            if item is None:
                continue
            batch, fut = item
            with self._in_flight_lock:
                self._in_flight.pop((batch.symbol, batch.batch_id), None)
            try:
                res: ProofResult = fut.result()
            except (CancelledError, PoolClosed):   # a stop: the journal keeps it for the next start
                log.info("batch %d of symbol %d: left for the next start", batch.batch_id, batch.symbol)
                continue
            except Exception as exc:  # the pool failed the job (a crashed worker)
                res = ProofResult(batch.symbol, batch.batch_id, error=f"{type(exc).__name__}: {exc}")
            self._finish(batch, res)

    def _finish(self, batch: Batch, res: ProofResult) -> None:
        label = batch.priority.label
        if not res.ok:
            self.counts["failed"] += 1
            self.metrics.proof_failed(label)
            log.error("batch %d of symbol %d: no proof: %s", batch.batch_id, batch.symbol, res.error)
            self._complete(batch, CompletionStatus.FAILED, b"\0" * 32, NO_PROOF)
            return
        try:
            index = self.store.put(batch.symbol, batch.batch_id, res.proof)
        except StoreError as exc:
            self.counts["failed"] += 1
            self.metrics.proof_failed(label)
            log.error("batch %d of symbol %d: proof not stored: %s (it stays in the journal and "
                      "is proven again on restart)", batch.batch_id, batch.symbol, exc)
            self._complete(batch, CompletionStatus.FAILED, res.post_root, NO_PROOF)
            return
        self.counts["proven"] += 1
        self.metrics.queue_wait(label, res.queue_wait_s)
        self.metrics.proving_time(label, res.prove_s)
        lag = np.maximum(time.monotonic_ns() - batch.seen_ns, 0) / 1e9
        self.metrics.proof_lag(lag)
        status = CompletionStatus.DISAGREES if batch.divergences else CompletionStatus.PROVEN
        self._complete(batch, status, res.post_root, index)

    def _complete(self, batch: Batch, status: CompletionStatus, root: bytes, index: int) -> None:
        rec = np.zeros(1, COMPLETION_DTYPE)
        rec["batch_id"], rec["first_seq"], rec["last_seq"] = batch.batch_id, batch.first_seq, batch.last_seq
        rec["post_state_root"] = np.frombuffer(root.ljust(32, b"\0")[:32], np.uint8)
        rec["status"], rec["proof_index"] = int(status), index
        self._completions_backlog.append(rec)
        self._flush_completions()

    def _flush_completions(self) -> None:
        """Publish waiting completions; an engine that does not read them
        fills the ring, and they wait here (bounded) instead."""
        while self._completions_backlog:
            if not self.completions.publish(self._completions_backlog[0]):
                if len(self._completions_backlog) > 1 << 16:
                    self._completions_backlog.popleft()
                    self.counts["completions_dropped"] += 1
                return
            self._completions_backlog.popleft()

    # ----------------------------------------------------------- status --
    def _pending(self) -> int:
        with self._in_flight_lock:
            return len(self._in_flight)

    def status(self) -> dict:
        pending = self._pending()
        return {
            "trace_length": self.trace_length,
            "batch_policy": {"max_batch_size": self.policy.max_batch_size,
                             "timeout_s": self.policy.timeout_s},
            "symbols": {str(s): {"next_batch_id": b.next_batch_id, "open_ops": b.open_count,
                                 "next_seq": b.book.next_seq, "resting": len(b.book)}
                        for s, b in sorted(self.shadows.items())},
            "proofs_in_flight": pending,
            "behind": pending > self.config.batch.max_pending,
            "store": {"proofs": len(self.store)},
            "completions_waiting": len(self._completions_backlog),
            "ingest_healthy": self.ingest.healthy() if self.ingest else False,
            "counts": dict(self.counts),
        }

    def healthy(self) -> bool:
        return self.ingest is not None and self.ingest.healthy() and \
            all(t.is_alive() for t in self._threads)

    # -------------------------------------------------------------- run --
    def start(self) -> None:
        """Recover, then start every thread and process (no event loop)."""
        c = self.config
        os.makedirs(c.journal.dir, exist_ok=True)
        os.makedirs(c.store.dir, exist_ok=True)
        self.journal = Journal(c.journal.dir, c.journal.segment_mib << 20, c.journal.fsync,
                               c.journal.fsync_interval_ms / 1000)
        for repair in self.journal.repairs:
            log.warning("journal: %s", repair)
        self.store = ProofStore(c.store.dir, c.store.fsync)
        todo = self.recover()
        self.consumer, self.completions = self._open_rings()
        self.pool = WorkerPool(c.workers.count, list(c.workers.cores) or None)
        for batch in todo:
            self._submit(batch)
        self.ingest = Ingest(self.consumer, self.journal.append_ops, self._inbox, self.metrics,
                             c.ingest.core, self.resync)
        self._threads = [threading.Thread(target=self._sequencer, name="zksidecar-sequencer", daemon=True),
                         threading.Thread(target=self._finisher, name="zksidecar-finisher", daemon=True)]
        self.ingest.start()
        for t in self._threads:
            t.start()
        log.info("serving: ops ring %s, completions %s, trace %d rows, batches of up to %d, "
                 "%d worker(s)", c.ring.ops, c.ring.completions, self.trace_length,
                 self.policy.max_batch_size, c.workers.count)

    def shutdown(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Stop ingest, close the open batches, wait (up to grace_s) for the
        proofs in flight, and close everything.  Unproven batches stay marked
        in the journal and are proven on the next start."""
        if self.ingest is not None:
            self.ingest.stop()
            self.ingest.join()
        self._inbox.put(_STOP)
        self._threads[0].join()
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            with self._in_flight_lock:
                if not self._in_flight:
                    break
            time.sleep(0.05)
        self.pool.close(wait=False, cancel_pending=True)
        self._results.put(_STOP)
        self._threads[1].join()
        self.consumer.close()
        self.completions.close()
        self.journal.close()
        self.store.close()

    def stop(self) -> None:
        self._stop.set()

    async def serve(self) -> None:
        """Run until stop(): the admin endpoint, sd_notify, signals."""
        from .admin import serve_admin
        from .notify import Notifier, watchdog_loop

        notifier = self.notifier or Notifier.from_env()
        self.start()
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stopped.set)
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass
        admin = await serve_admin(self.metrics, self.status, self.config.admin.socket,
                                  self.config.admin.tcp_port or None)
        watchdog = asyncio.ensure_future(watchdog_loop(notifier, self.healthy))
        notifier.ready(f"serving {self.config.ring.ops}")
        try:
            while not stopped.is_set() and not self._stop.is_set():
                if not self.healthy():
                    log.error("a daemon thread died; stopping (systemd restarts us)")
                    break
                notifier.status(self._status_line())
                try:
                    await asyncio.wait_for(stopped.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
        finally:
            notifier.stopping("closing batches and waiting for proofs in flight")
            watchdog.cancel()
            admin.close()
            await admin.wait_closed()
            await loop.run_in_executor(None, self.shutdown)

    def _status_line(self) -> str:
        c = self.counts
        return (f"{sum(b.book.next_seq - 1 for b in self.shadows.values()):,} ops, "
                f"{c['proven']:,} proofs, {self._pending()} in flight, "
                f"{c['divergences']} divergences")


_STOP = object()


def _by_symbol(recs: np.ndarray, seen: np.ndarray):
    """(symbol, its records in order, their seen times) for each symbol."""
    sym = recs["symbol"]
    if (sym == sym[0]).all():
        yield int(sym[0]), recs, seen
        return
    for s in np.unique(sym):
        mine = sym == s
        yield int(s), recs[mine], seen[mine]


class _LogBudget:
    """At most `per_second` log lines of a kind each second: an engine that
    sends garbage at a million records a second must not flood the log (the
    counters still count every one)."""

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


def main(config_path: str | None) -> int:
    """`zksidecar daemon --config FILE`."""
    from .config import ConfigError, load

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = load(config_path)
    except ConfigError as exc:
        log.error("configuration: %s", exc)
        return 2
    try:
        import uvloop
        run = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency; asyncio works the same
        run = asyncio.run
    try:
        run(Service(cfg).serve())
    except (OSError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    return 0
