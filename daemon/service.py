"""The sidecar daemon: every stage built and wired together (docs/DAEMON.md).

The data path, and the thread or process each stage runs on:

    ingest      (thread, pinned)   ops ring -> journal -> sequencer inbox     daemon/ingest.py
    sequencer   (thread)           shadow books, batch cuts, journal marks    daemon/sequencer.py
    workers     (processes,        proof jobs by priority -> batch proofs     daemon/workers.py,
                 pinned)                                                      daemon/backends.py
    finisher    (thread)           proofs -> store -> completion ring         daemon/finisher.py
    event loop  (main thread,      admin endpoint, sd_notify READY/STATUS/    daemon/admin.py,
                 uvloop)           WATCHDOG, signals                          daemon/notify.py

Constructing a Service opens the journal and the store, replays the journal
(daemon/recovery.py) and opens the rings; start() starts the threads and
the proofs recovery left to make; serve() runs the event loop until SIGTERM.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import time

from .. import ringbuf
from ..prover.orderbook.witness import trace_length_for
from ..ringbuf.ring import IdleStrategy
from .batches import Batch, BatchPolicy
from .config import Config, RingConfig
from .finisher import Finisher
from .ingest import Ingest, Resync
from .jobs import ProofJob
from .journal import Journal
from .metrics import Metrics
from .recovery import recover
from .sequencer import Sequencer, SequencerThread
from .store import ProofStore
from .workers import WorkerPool

log = logging.getLogger("zksidecar.daemon")

SHUTDOWN_GRACE_S = 30   # a clean stop waits this long for proofs in flight


class Service:
    """The daemon.  `serve()` runs until stop() (or SIGTERM / SIGINT)."""

    def __init__(self, config: Config, metrics: Metrics | None = None, notifier=None):
        c = config
        self.config = c
        self.metrics = metrics or Metrics()
        self.notifier = notifier
        self.started_at = time.time()
        self.trace_length = c.book.trace_length or trace_length_for(c.book.capacity,
                                                                    c.batch.max_batch_size)
        self.policy = BatchPolicy(c.batch.max_batch_size, c.batch.batch_timeout_ms / 1000,
                                  c.batch.critical_qty)
        with contextlib.ExitStack() as opened:       # closed again if anything below fails
            self.journal = opened.enter_context(
                Journal(c.journal.dir, c.journal.segment_mib << 20, c.journal.fsync,
                        c.journal.fsync_interval_ms / 1000))
            for repair in self.journal.repairs:
                log.warning("journal: %s", repair)
            self.store = opened.enter_context(ProofStore(c.store.dir, c.store.fsync))
            self.sequencer = Sequencer(c.book.capacity, self.trace_length, self.policy, self.metrics,
                                       max_symbols=c.book.max_symbols, journal=self.journal)
            self.recovered = recover(self.journal, self.store, self.sequencer, c.ring.capacity)
            self.consumer, self.completions = _open_rings(c.ring)
            opened.callback(self.consumer.close)
            opened.callback(self.completions.close)
            self.pool = WorkerPool(c.workers.count, list(c.workers.cores) or None)
            self._closing = opened.pop_all()
        self.finisher = Finisher(self.store, self.completions, self.metrics)
        self.sequencer_thread = SequencerThread(self.sequencer, self._submit)
        self.ingest = Ingest(self.consumer, self.journal.append_ops, self.sequencer_thread.inbox,
                             self.metrics, c.ingest.core, Resync(self.recovered.tail))
        self._threads = (self.ingest, self.sequencer_thread, self.finisher)
        self._stop_requested = False

    # -------------------------------------------------------------- run --
    def start(self) -> None:
        """Start every thread, and the proofs recovery left to make."""
        self.finisher.start()
        for batch in self.recovered.todo:
            self._submit(batch)
        self.sequencer_thread.start()
        self.ingest.start()
        c = self.config
        log.info("serving: ops ring %s, completions %s, trace %d rows, batches of up to %d, "
                 "%d worker(s)", c.ring.ops, c.ring.completions, self.trace_length,
                 self.policy.max_batch_size, c.workers.count)

    def _submit(self, batch: Batch) -> None:
        self.metrics.batch_queued(batch.priority.label)
        future = self.pool.submit(ProofJob.of(batch, self.config.workers.security_bits),
                                  batch.priority)
        future.add_done_callback(functools.partial(self.finisher.finished, batch))

    def shutdown(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Stop ingest, close the open batches, wait (up to grace_s) for the
        proofs in flight, and close everything.  Unproven batches stay marked
        in the journal and are proven on the next start."""
        if self.ingest.is_alive():
            self.ingest.stop()
            self.ingest.join()
        if self.sequencer_thread.is_alive():
            self.sequencer_thread.stop()
            self.sequencer_thread.join()
        deadline = time.monotonic() + grace_s
        while self.pool.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        # close() joins the pool's threads, which run every future's callback:
        # each finished job is on the finisher's queue before its stop mark
        self.pool.close(wait=False, cancel_pending=True)
        if self.finisher.is_alive():
            self.finisher.stop()
            self.finisher.join()
        self._closing.close()

    def stop(self) -> None:
        """Ask serve() to return (from any thread)."""
        self._stop_requested = True

    # ----------------------------------------------------------- status --
    def status(self) -> dict:
        pending = self.pool.pending
        seq, fin = self.sequencer, self.finisher
        return {
            "trace_length": self.trace_length,
            "batch_policy": {"max_batch_size": self.policy.max_batch_size,
                             "timeout_s": self.policy.timeout_s},
            "symbols": {str(s): {"next_batch_id": b.next_batch_id, "open_ops": b.open_count,
                                 "next_seq": b.book.next_seq, "resting": len(b.book)}
                        for s, b in sorted(seq.shadows.items())},
            "proofs_in_flight": pending,
            "behind": pending > self.config.batch.max_pending,
            "store": {"proofs": len(self.store)},
            "completions_waiting": fin.completions_waiting,
            "ingest_healthy": self.ingest.healthy(),
            "counts": {"divergences": seq.divergences, "rejected": seq.refused,
                       "proven": fin.proven, "failed": fin.failed,
                       "completions_dropped": fin.completions_dropped,
                       "recovered_batches": len(self.recovered.todo)},
        }

    def healthy(self) -> bool:
        return self.ingest.healthy() and all(t.is_alive() for t in self._threads)

    def _status_line(self) -> str:
        ops = sum(b.book.next_seq - 1 for b in list(self.sequencer.shadows.values()))
        return (f"{ops:,} ops, {self.finisher.proven:,} proofs, {self.pool.pending} in flight, "
                f"{self.sequencer.divergences} divergences")

    # ----------------------------------------------------------- serve --
    async def serve(self) -> None:
        """start(), then run until stop(): the admin endpoint, sd_notify, signals."""
        from .admin import serve_admin
        from .notify import Notifier, watchdog_loop

        notifier = self.notifier or Notifier.from_env()
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stopped.set)
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass
        self.start()
        try:
            async with await serve_admin(self.metrics, self.status, self.config.admin.socket,
                                         self.config.admin.tcp_port or None):
                watchdog = asyncio.ensure_future(watchdog_loop(notifier, self.healthy))
                notifier.ready(f"serving {self.config.ring.ops}")
                try:
                    while not stopped.is_set() and not self._stop_requested:
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
        finally:
            await loop.run_in_executor(None, self.shutdown)


def _open_rings(rc: RingConfig):
    """The ops ring's consumer and the completion ring's producer, creating
    the rings first if asked to and they do not exist.

    Neither is taken over from a live process: a second daemon on the same
    rings (another state directory, say) is refused with RingBusy naming the
    first one's pid, and a dead daemon's roles are taken.  Both opens require
    the segment to be ours (owned by this user, mode within 0600) or, with
    ring.group, that group's (mode within 0660): a ring someone else created
    is refused with RingForeign, never adopted (docs/RING.md)."""
    access = {"group": rc.group or None}
    for name in (rc.ops, rc.completions):
        if rc.create and not os.path.exists("/dev/shm/" + name.lstrip("/")):
            ringbuf.create(name, rc.capacity, group=access["group"])
            log.info("created ring %s (%d records)", name, rc.capacity)
    consumer = ringbuf.Consumer(rc.ops, idle=IdleStrategy.named(rc.idle), defer_release=True,
                                **access)
    try:
        completions = ringbuf.Producer(rc.completions, **access)
    except BaseException:
        consumer.close()
        raise
    return consumer, completions


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
