"""The proof worker pool: N processes, each pinned to a core, fed by priority.

One PriorityQueue (daemon/priority.py) holds every job.  A dispatcher thread
in the parent hands the next job to a worker only when that worker is free,
so priorities hold across the whole pool: a Critical job never waits behind a
Low job that a busy worker has already queued.  A monitor thread waits on
every worker's pipe and process sentinel at once: it resolves futures as
results arrive and notices a worker that died (kill -9, out of memory, a
crash in C), fails that worker's job with WorkerCrashed, and starts a
replacement, so a dead worker never hangs the pool.

Workers are started with the 'spawn' method: the daemon has threads, and
forking a threaded process can copy a lock some other thread held.  Each
worker runs ``backend.prove(job)`` (daemon/backends.py) for every job it is
given; the backend object is pickled to each worker, so an external-prover
backend gets one prover process per worker.  A job carries its batch's step
records (about 1 KiB per operation), so it crosses the pipe as a pickle with
its arrays out of band (protocol 5): their bytes go from the batch's own
arrays into the worker's, through the kernel only.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing as mp
import os
import pickle
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_ready

from .backends import NativeBackend, ProofBackend
from .jobs import ProofJob, ProofResult
from .malloc import keep_proof_buffers
from .metrics import PoolFigures
from .priority import DEFAULT_AGE_STEP, ProofPriority, PriorityQueue, QueueClosed

log = logging.getLogger(__name__)

# A worker slot whose process dies before it is ready (before _worker_main
# runs) EARLY_DEATHS times in a row is not restarted again: something (a
# missing `if __name__ == "__main__":` guard under spawn, a broken install)
# kills every worker at start-up, and restarting it for ever would only spin.
EARLY_DEATHS = 3
READY = "ready"


class WorkerCrashed(RuntimeError):
    """The worker process proving a job died before answering."""


class PoolClosed(RuntimeError):
    """The pool was closed before the job ran (or, with wait=False, finished)."""


def _send_job(conn, job_id: int, job: ProofJob) -> None:
    """Send a job: its pickle without its arrays, their sizes, then each
    array's bytes as they are (pickle protocol 5, out of band)."""
    arrays: list[pickle.PickleBuffer] = []
    head = pickle.dumps((job_id, job), protocol=5, buffer_callback=arrays.append)
    raws = [a.raw() for a in arrays]
    conn.send((head, [r.nbytes for r in raws]))
    for r in raws:
        conn.send_bytes(r)


def _receive_job(conn, msg) -> tuple[int, ProofJob]:
    """The job whose head `msg` is (_send_job): each array's bytes received
    into a buffer of its own, which the unpickled arrays then use."""
    head, sizes = msg
    arrays = []
    for n in sizes:
        buf = bytearray(n)
        conn.recv_bytes_into(buf)
        arrays.append(buf)
    return pickle.loads(head, buffers=arrays)


def _worker_main(conn, backend, warm: ProofJob | None = None) -> None:
    """A worker process: prove `warm` first (if given, result thrown away),
    then each job received until told to stop (None)."""
    keep_proof_buffers()     # each proof's arrays serve the next (spawned: nothing inherited)
    if warm is not None:
        # before READY: the shape caches are built before any real job is
        # taken (one sent meanwhile waits in the pipe); a failure here is the
        # first job's to report, not the warm-up's
        try:
            backend.prove(warm)
        except Exception as exc:
            log.warning("worker warm-up failed (%s: %s); the first job builds the caches",
                        type(exc).__name__, exc)
    conn.send(READY)
    while True:
        try:
            msg = conn.recv()
            if msg is None:
                return
            job_id, job = _receive_job(conn, msg)
        except (EOFError, OSError):   # the parent went away
            return
        conn.send((job_id, prove_answer(backend, job)))


def prove_answer(backend: ProofBackend, job: ProofJob) -> ProofResult:
    """What a worker answers for `job`: `backend`'s result, or one whose
    error says why the backend raised (a backend bug still answers, never
    kills the worker), with the worker's pid.  The local pool's workers and
    a Dask cluster's (daemon/cluster.py) both run this."""
    t0 = time.perf_counter()
    try:
        result = backend.prove(job)
    except Exception as exc:
        result = ProofResult(job.symbol, job.batch_id, n_ops=len(job.ops),
                             error=f"{type(exc).__name__}: {exc}",
                             prove_s=time.perf_counter() - t0)
    result.worker_pid = os.getpid()
    return result


@dataclass
class _Running:
    """A job a worker was given, until it answers or dies."""

    job_id: int
    job: ProofJob
    priority: ProofPriority
    waited_s: float
    future: Future
    sent: float = 0.0                 # when it was handed to the worker (monotonic)


@dataclass
class _Slot:
    index: int
    core: int | None
    process: mp.process.BaseProcess | None = None
    conn: object = None
    job: _Running | None = None
    stopping: bool = False
    ready: bool = False               # its process reached _worker_main and warmed up
    early_deaths: int = 0


class WorkerPool:
    """`count` worker processes proving ProofJobs with `backend` (default:
    the in-process STARK prover, NativeBackend), each pinned to one of
    `cores` (cycled; None: no pinning).  `warm` (jobs.warm_up_job: a job of
    the chain's shape) is proven by each worker, a replacement included,
    before it reports ready and takes its first job."""

    def __init__(self, count: int, cores: list[int] | None = None,
                 backend: ProofBackend | None = None, *,
                 age_step: float | None = DEFAULT_AGE_STEP, queue: PriorityQueue | None = None,
                 warm: ProofJob | None = None):
        if count < 1:
            raise ValueError(f"a worker pool needs at least one worker, not {count}")
        self.backend = backend if backend is not None else NativeBackend()
        self.warm = warm
        self.queue = queue or PriorityQueue(age_step)
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._ids = itertools.count()
        self._closing = False
        self._stopped = threading.Event()
        self._broken: str | None = None
        self._unfinished = 0
        self._count_lock = threading.Lock()
        self.crashes = 0                  # worker processes that died unasked
        self.figures = PoolFigures()
        usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        self._slots = []
        for i in range(count):
            core = cores[i % len(cores)] if cores else None
            if core is not None and core not in usable:
                log.warning("worker %d: core %d is not available to this process (usable: %s); "
                            "not pinning it", i, core, sorted(usable))
                core = None
            self._slots.append(_Slot(i, core))
        # the monitor's own wake-up pipe: a new worker's connection to watch, or shutdown
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        for slot in self._slots:
            self._start(slot)
        self._monitor = threading.Thread(target=self._monitor_loop, name="zksidecar-pool-monitor",
                                         daemon=True)
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="zksidecar-pool-dispatch",
                                            daemon=True)
        self._monitor.start()
        self._dispatcher.start()

    # ---------------------------------------------------------- processes --
    def _start(self, slot: _Slot) -> None:
        parent, child = self._ctx.Pipe()
        p = self._ctx.Process(target=_worker_main, args=(child, self.backend, self.warm),
                              name=f"zksidecar-prover-{slot.index}", daemon=True)
        p.start()
        child.close()
        if slot.core is not None:
            try:
                os.sched_setaffinity(p.pid, {slot.core})
            except OSError as exc:
                log.warning("worker %d: cannot pin to core %d (%s); running unpinned",
                            slot.index, slot.core, exc)
        slot.process, slot.conn, slot.job, slot.stopping = p, parent, None, False
        slot.ready = False

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [s.process.pid for s in self._slots if s.process is not None]

    @property
    def ready(self) -> int:
        """Workers that have started (and proven the warm-up job, if any)."""
        with self._lock:
            return sum(1 for s in self._slots if s.ready and s.process is not None)

    @property
    def cores(self) -> list[int | None]:
        return [s.core for s in self._slots]

    @property
    def broken(self) -> str | None:
        """Why the pool cannot prove anything (every worker dies at start-up), or None."""
        return self._broken

    @property
    def pending(self) -> int:
        """Jobs submitted whose futures are not done: queued or running.
        Futures run their callbacks in the thread that resolves them (the
        monitor, the dispatcher or close()), so once close() has returned
        every callback of every job has run."""
        with self._count_lock:
            return self._unfinished

    def _finished(self, _fut: Future) -> None:
        with self._count_lock:     # its own lock: a future may resolve under the pool's
            self._unfinished -= 1

    def status(self) -> dict:
        """The pool as /status and /metrics show it (ProofPool.status; keys
        in docs/ADMIN.md): attributes read under the pool's lock, no call
        to a worker.  A worker proves one job at a time: its threads are its
        workers."""
        workers = self.ready
        with self._lock:
            in_flight = sum(1 for s in self._slots if s.job is not None)
        return {"backend": "local", "workers": workers, "threads": workers,
                "in_flight": in_flight, "queued": len(self.queue), **self.figures.figures()}

    def busy_pids(self) -> list[int]:
        """Workers proving a job now."""
        with self._lock:
            return [s.process.pid for s in self._slots if s.job is not None]

    # ------------------------------------------------------------ submit --
    def submit(self, job: ProofJob, priority: ProofPriority | int | str = ProofPriority.NORMAL
               ) -> Future:
        """Queue `job`; the Future resolves to its ProofResult (error set if
        the backend could not prove it) or fails with WorkerCrashed /
        PoolClosed.  Cancelling the Future before the job starts drops it."""
        priority = ProofPriority.parse(priority)
        if self._broken:
            raise WorkerCrashed(self._broken)
        fut: Future = Future()
        try:
            self.queue.put((next(self._ids), job, fut), priority)
        except QueueClosed:
            raise PoolClosed("the worker pool is closed") from None
        with self._count_lock:
            self._unfinished += 1
        fut.add_done_callback(self._finished)
        return fut

    async def prove(self, job: ProofJob, priority: ProofPriority | int | str = ProofPriority.NORMAL
                    ) -> ProofResult:
        """submit() for asyncio callers."""
        return await asyncio.wrap_future(self.submit(job, priority))

    # -------------------------------------------------------- dispatching --
    def _dispatch_loop(self) -> None:
        while True:
            with self._free:
                while not self._closing and not any(s.job is None and not s.stopping
                                                    for s in self._slots):
                    self._free.wait()
            try:
                (job_id, job, fut), priority, waited = self.queue.get()
            except QueueClosed:
                return
            if not fut.set_running_or_notify_cancel():
                continue                   # cancelled while queued
            with self._lock:
                slot = next((s for s in self._slots if s.job is None and not s.stopping), None)
                if slot is not None:
                    busy = slot.job = _Running(job_id, job, priority, waited, fut,
                                               time.monotonic())
                    conn = slot.conn           # this process's pipe, even if it is replaced
            if slot is None:               # only while closing without waiting, or broken
                fut.set_exception(WorkerCrashed(self._broken) if self._broken
                                  else PoolClosed("the worker pool closed before the job ran"))
                continue
            try:
                _send_job(conn, job_id, job)
            except (OSError, ValueError) as exc:
                # the worker died as it was given the job: the monitor replaces
                # it and, if it saw the job first, has failed it already
                with self._lock:
                    mine = slot.job is busy
                    if mine:
                        slot.job = None
                if mine:
                    self.figures.job_crashed()
                    fut.set_exception(WorkerCrashed(
                        f"proof worker {slot.index} died as it was given symbol {job.symbol} "
                        f"batch {job.batch_id} ({exc}); the batch is not proven"))

    # --------------------------------------------------------- monitoring --
    def _monitor_loop(self) -> None:
        while True:
            with self._lock:
                watch = {self._wake_r: None}
                for s in self._slots:
                    if s.process is not None:
                        watch[s.conn] = s
                        watch[s.process.sentinel] = s
            for ready in wait_ready(list(watch)):
                if ready is self._wake_r:
                    try:
                        if self._wake_r.recv() == "stop":
                            return
                    except EOFError:
                        return
                    continue
                slot = watch[ready]
                # an earlier event of this round may have replaced the slot's process
                if ready is slot.conn:
                    self._receive(slot)
                elif slot.process is not None and ready == slot.process.sentinel \
                        and not slot.process.is_alive():
                    self._reap(slot)

    def _receive(self, slot: _Slot) -> None:
        try:
            answer = slot.conn.recv()
        except (EOFError, OSError):          # the worker died: its sentinel says so too
            self._reap(slot)
            return
        if answer == READY:
            slot.ready, slot.early_deaths = True, 0
            return
        self._resolve(slot, answer)

    def _resolve(self, slot: _Slot, answer) -> None:
        job_id, result = answer
        with self._free:
            busy, slot.job = slot.job, None
            self._free.notify_all()
        if busy is None or busy.job_id != job_id:
            log.error("worker %d answered job %s it was not given; ignored", slot.index, job_id)
            return
        self.figures.job_answered(time.monotonic() - busy.sent)
        result.queue_wait_s, result.priority = busy.waited_s, busy.priority
        busy.future.set_result(result)

    def _reap(self, slot: _Slot) -> None:
        """A worker process ended: fail its job and replace it (unless stopping)."""
        proc = slot.process
        proc.join(timeout=1)
        try:                                 # it answered before it died: keep the answer
            while slot.conn.poll():
                answer = slot.conn.recv()
                if answer == READY:
                    slot.ready = True
                else:
                    self._resolve(slot, answer)
        except (EOFError, OSError):
            pass
        with self._free:
            busy, slot.job = slot.job, None
            expected = slot.stopping
            slot.process = None
            slot.conn.close()
            if not expected:
                self.crashes += 1
                slot.early_deaths = 0 if slot.ready else slot.early_deaths + 1
                if slot.early_deaths >= EARLY_DEATHS:
                    slot.stopping = True
                    log.error("proof worker %d (pid %s) died at start-up %d times in a row (exit "
                              "code %s); not restarting it", slot.index, proc.pid, slot.early_deaths,
                              proc.exitcode)
                elif not self._stopped.is_set():
                    log.error("proof worker %d (pid %s) died (exit code %s); replaced", slot.index,
                              proc.pid, proc.exitcode)
                    self._start(slot)
            if all(s.stopping for s in self._slots) and not self._stopped.is_set():
                self._broken = (f"every proof worker died at start-up {EARLY_DEATHS} times in a row "
                                f"(last exit code {proc.exitcode}; see the log). A script that starts "
                                "a pool must do so under `if __name__ == \"__main__\":` (workers "
                                "are spawned and import the main module)")
                self._closing = True
            self._free.notify_all()
        if self._broken and not self._stopped.is_set():
            self.queue.close()
            for (_, _, queued), _ in self.queue.drain():
                if queued.set_running_or_notify_cancel():
                    queued.set_exception(WorkerCrashed(self._broken))
        if busy is not None:
            job, fut = busy.job, busy.future
            if expected:
                fut.set_exception(PoolClosed("the worker pool closed while the job ran"))
            else:
                self.figures.job_crashed()
                code = proc.exitcode
                how = f"killed by signal {-code}" if code is not None and code < 0 \
                    else f"exit code {code}"
                fut.set_exception(WorkerCrashed(
                    f"proof worker {slot.index} (pid {proc.pid}) died ({how}) while proving symbol "
                    f"{job.symbol} batch {job.batch_id}; the batch is not proven"))

    # ------------------------------------------------------------ closing --
    def close(self, wait: bool = True, cancel_pending: bool = False) -> None:
        """Stop taking jobs.  wait=True: queued jobs are proven (or, with
        cancel_pending, their futures cancelled) and running ones finish before
        the workers stop.  wait=False: queued futures are cancelled, running
        ones fail with PoolClosed and the workers are terminated."""
        if self._stopped.is_set():
            return
        self.queue.close()
        if cancel_pending or not wait:
            for (_, _, fut), _ in self.queue.drain():
                fut.cancel()
        if wait:
            self._dispatcher.join()          # the queue is empty and closed
            with self._free:
                while any(s.job is not None for s in self._slots):
                    self._free.wait()
        with self._free:
            self._closing = True
            self._stopped.set()
            self._free.notify_all()
            for s in self._slots:
                s.stopping = True
        self._dispatcher.join()
        with self._lock:
            running = [(s, s.process, s.conn) for s in self._slots if s.process is not None]
        for s, proc, conn in running:
            if wait:
                try:
                    conn.send(None)
                except (OSError, ValueError):
                    pass
                proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        self._wake_w.send("stop")
        self._monitor.join()
        for s in self._slots:
            if s.job is not None:      # its worker ended after the monitor stopped
                s.job.future.set_exception(PoolClosed("the worker pool closed while the job ran"))
                s.job = None
            if s.conn is not None:
                s.conn.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
