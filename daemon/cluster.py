"""Proving on a Dask cluster: the pool behind `workers.backend = "dask"`.

The daemon is a client of a cluster someone else runs (`dask scheduler`,
`dask worker` with zksidecar installed: docs/DEPLOY.md); nothing here
starts, sizes or restarts cluster processes.  The pool offers what the
service uses of the local WorkerPool (daemon/pools.py, ProofPool): submit a
job with a priority, get a Future of its ProofResult.

Where jobs wait.  Every job first waits in the daemon's own PriorityQueue
(daemon/priority.py), which ages it as the local pool's does.  A dispatcher
thread hands the cluster at most `max_in_flight` jobs at a time (0: twice the
cluster's worker threads, read again as workers come and go), each as one
task running workers.prove_answer (the function the local workers run) with
a Dask priority from the level the job competes at when it leaves the queue
(Critical highest; an aged Low job goes in at the level it has risen to), so
the few jobs waiting inside the cluster keep the same order.

What crosses.  A task carries the job's inputs (jobs.JobInputs: the cells
before the batch and its records with their outcomes, ~0.3 MiB at 4,096
operations), not the engine's run of them (~4 MiB of steps): the worker
runs the engine again (prove_inputs), which costs it ~2 ms where sending
the run cost the daemon, the scheduler it passes through and the worker
some 4 MiB of pickling and copying each.  The answer is the ProofResult:
the proof file and a few figures.  Each worker sets malloc as a local
proving process does (malloc.keep_proof_buffers) before it takes tasks.

Failures.  A worker that dies mid-task is Dask's to handle: the scheduler
runs the task again elsewhere (up to its `allowed_failures`, then the task
fails with KilledWorker, which fails the job with WorkerCrashed as a dead
local worker does: a job that kills every worker it lands on is not run for
ever; its batch stays marked in the journal).  A task lost with the
scheduler (the connection dropped, the scheduler restarted: Dask cancels the
client's futures) is not the job's fault: it goes back to the daemon's queue
with the wait it had already done and is submitted again, under a new key,
when the client is connected again.  Keys are
`zksidecar-prove-<symbol>-<batch>-<attempt>-<pool token>`: the token keeps
two daemons on one cluster (or a restarted one) from sharing a task.  Each
job's Future is resolved once, so its proof reaches the store once.

Reporting.  status() is the local pool's report (pools.ProofPool.status:
workers, threads, jobs in flight and queued, crashed, resubmitted, round
trips) plus the scheduler's address and whether the client is connected.
It is read per /status request and per scrape, so it asks the scheduler
nothing: the dispatcher reads the workers and their threads every
THREADS_EVERY_S on its own thread (it needs the threads for max_in_flight
0 anyway), and status() shows what it last saw, none while not connected.

Trust.  A proof computed elsewhere is checked here, in the daemon, before it
is kept (jobs.accept_proof: the job's symbol, batch, parameters, records,
trades and pre-state, then verify_batch); the post-state root comes from the
checked proof, not from what the worker says.  Dask itself pickles results,
so whoever can join the cluster can run code in the daemon: the cluster's
network is the daemon's to trust, which is what TLS with client certificates
(`workers.tls_*`, `workers.require_encryption`) is for (docs/SECURITY.md).
The check is then not a defence against the cluster's intent but against
its faults (a worker of another build, a memory error on another host): it
is what a PROVEN completion rests on, and costs one verification a batch
here, none on the workers.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
import uuid
from concurrent.futures import CancelledError, Future, InvalidStateError
from queue import Empty
from dataclasses import dataclass

import distributed
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.security import Security

from .backends import NativeBackend, ProofBackend
from .jobs import BackendError, JobInputs, ProofJob, ProofResult, accept_proof
from .malloc import keep_proof_buffers
from .metrics import PoolFigures
from .priority import DEFAULT_AGE_STEP, LEVELS, ProofPriority, PriorityQueue, QueueClosed
from .workers import PoolClosed, WorkerCrashed, prove_answer

log = logging.getLogger(__name__)

#: a lost connection is retried this often (seconds)
RECONNECT_S = 2.0
#: the cluster's workers and their threads are read again this often (seconds),
#: by the dispatcher: status() reads what it last saw, never the scheduler
THREADS_EVERY_S = 2.0
#: per worker thread, the jobs in flight when max_in_flight is 0 (automatic)
IN_FLIGHT_PER_THREAD = 2
WARM_UP_PLUGIN = "zksidecar-warm-up"


def dask_priority(level: ProofPriority) -> int:
    """Dask runs higher priorities first; ProofPriority counts the other way."""
    return int(LEVELS[-1]) - int(level)


def security(w) -> Security | None:
    """The Security of [workers] `w` (config.WorkersConfig): its TLS files
    and require_encryption, or None for a tcp:// scheduler without either."""
    if not (w.tls_ca_file or w.tls_client_cert or w.require_encryption):
        return None
    return Security(tls_ca_file=w.tls_ca_file or None, tls_client_cert=w.tls_client_cert or None,
                    tls_client_key=w.tls_client_key or None,
                    require_encryption=w.require_encryption)


class WarmUp(WorkerPlugin):
    """Each worker (those that join later too), before it takes tasks, as a
    local worker does: malloc set for proving (malloc.keep_proof_buffers:
    each proof's arrays serve the next), then the warm-up job (jobs.warm_up_job),
    if any, proven once."""

    def __init__(self, backend: ProofBackend, job: ProofJob | None):
        self.backend, self.job = backend, job

    def setup(self, worker) -> None:
        keep_proof_buffers()
        if self.job is None:
            return
        answer = prove_answer(self.backend, self.job)
        if not answer.ok:
            log.warning("worker warm-up failed (%s); the first job builds the caches", answer.error)


def prove_inputs(backend: ProofBackend, inputs: JobInputs) -> ProofResult:
    """A Dask task: the job `inputs` are of (the engine run again on the
    worker, JobInputs.job), then what prove_answer answers for it; an
    answer whose error says why if the run cannot be made.  Its prove_s is
    the worker's whole time on the job, the run's share in
    extra["engine_s"]."""
    t0 = time.perf_counter()
    try:
        job = inputs.job()
    except Exception as exc:
        return ProofResult(inputs.symbol, inputs.batch_id, prove_s=time.perf_counter() - t0,
                           worker_pid=os.getpid(),
                           error=f"the worker could not run the engine on the job: "
                                 f"{type(exc).__name__}: {exc}")
    engine_s = time.perf_counter() - t0
    result = prove_answer(backend, job)
    result.prove_s += engine_s
    result.extra["engine_s"] = engine_s
    return result


@dataclass
class _Job:
    """A job from submit() until its Future is resolved."""

    job: ProofJob
    priority: ProofPriority
    future: Future
    attempt: int = 0
    put_at: float = 0.0            # when it entered the daemon's queue (its clock)
    waited_s: float = 0.0          # in the daemon's queue, every stay counted
    dask: object = None            # the distributed.Future in flight


class DaskPool:
    """Proof jobs on the Dask cluster at `scheduler` (module docstring).
    `security`: a distributed Security (TLS), or None; `backend` is pickled
    to the workers with each task (default: the STARK prover, NativeBackend);
    `warm`: a job each worker proves once first."""

    def __init__(self, scheduler: str, *, security: Security | None = None,
                 max_in_flight: int = 0, backend: ProofBackend | None = None,
                 age_step: float | None = DEFAULT_AGE_STEP, queue: PriorityQueue | None = None,
                 warm: ProofJob | None = None, connect_timeout_s: float = 10.0):
        if max_in_flight < 0:
            raise ValueError(f"max_in_flight must be 0 (automatic) or more, not {max_in_flight}")
        self.scheduler = scheduler
        self.security = security
        self.max_in_flight = max_in_flight
        self.backend = backend if backend is not None else NativeBackend()
        self.warm = warm
        self.connect_timeout_s = connect_timeout_s
        self.queue = queue or PriorityQueue(age_step)
        self.token = uuid.uuid4().hex[:12]
        self.figures = PoolFigures()   # crashed (KilledWorker), resubmitted, round trips
        self._client: distributed.Client | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._in_flight: dict[str, _Job] = {}
        self._unfinished = 0
        self._closing = False
        self._stopped = threading.Event()
        self._seen = (0, 0, 0.0)       # (workers, their threads, when read): the dispatcher's
        self._ids = itertools.count()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="zksidecar-dask-dispatch",
                                            daemon=True)
        self._dispatcher.start()

    # ------------------------------------------------------------ status --
    @property
    def pending(self) -> int:
        """Jobs submitted whose futures are not done: queued here, or in the cluster."""
        with self._lock:
            return self._unfinished

    @property
    def in_flight(self) -> int:
        """Jobs handed to the cluster and not answered yet."""
        with self._lock:
            return len(self._in_flight)

    @property
    def connected(self) -> bool:
        """The client's own state (an attribute: no call to the scheduler)."""
        client = self._client
        return client is not None and client.status == "running"

    @property
    def ready(self) -> int:
        """The cluster's workers as the dispatcher last saw them (at most
        THREADS_EVERY_S old; 0 while not connected)."""
        return self._seen[0] if self.connected else 0

    def status(self) -> dict:
        """The pool as /status and /metrics show it (ProofPool.status, the
        local pool's keys plus the cluster's `scheduler` and `connected`;
        docs/ADMIN.md).  Cheap and never blocking: the workers are what the
        dispatcher last read from the scheduler, the rest this process's own
        counts, so a scheduler that is gone shows as connected false with no
        workers, not as a wait or an error."""
        connected = self.connected
        workers, threads, _ = self._seen if connected else (0, 0, 0.0)
        with self._lock:
            in_flight = len(self._in_flight)
        return {"backend": "dask", "scheduler": self.scheduler, "connected": connected,
                "workers": workers, "threads": threads, "in_flight": in_flight,
                "queued": len(self.queue), **self.figures.figures()}

    # ------------------------------------------------------------ submit --
    def submit(self, job: ProofJob, priority: ProofPriority | int | str = ProofPriority.NORMAL
               ) -> Future:
        """Queue `job`; the Future resolves to its ProofResult (error set if it
        could not be proven, or its proof did not check) or fails with
        WorkerCrashed (the task killed Dask's allowed number of workers) or
        PoolClosed.  Cancelling the Future before the job leaves the queue drops it."""
        priority = ProofPriority.parse(priority)
        fut: Future = Future()
        entry = _Job(job, priority, fut, put_at=self.queue.now())
        with self._lock:
            if self._closing:
                raise PoolClosed("the Dask pool is closed")
            self._unfinished += 1
        fut.add_done_callback(self._finished)
        try:
            self.queue.put(entry, priority, put_at=entry.put_at)
        except QueueClosed:
            fut.cancel()
            raise PoolClosed("the Dask pool is closed") from None
        return fut

    async def prove(self, job: ProofJob, priority: ProofPriority | int | str = ProofPriority.NORMAL
                    ) -> ProofResult:
        """submit() for asyncio callers."""
        return await asyncio.wrap_future(self.submit(job, priority))

    def _finished(self, _fut: Future) -> None:
        with self._changed:
            self._unfinished -= 1
            self._changed.notify_all()

    # -------------------------------------------------------- connecting --
    def _connect(self) -> distributed.Client | None:
        """A running client, connecting (and registering the warm-up) if
        there is none; None if the scheduler cannot be reached now."""
        client = self._client
        if client is not None and client.status == "running":
            return client
        if client is not None:
            log.warning("lost the Dask scheduler %s (client %s); connecting again",
                        self.scheduler, client.status)
            try:
                client.close(timeout=5)
            except Exception:
                pass
            self._client = None
            self._seen = (0, 0, 0.0)
        try:
            client = distributed.Client(self.scheduler, security=self.security,
                                        timeout=self.connect_timeout_s, set_as_default=False)
        except Exception as exc:      # OSError, TimeoutError, a TLS error: said, then retried
            log.error("cannot reach the Dask scheduler %s: %s: %s; jobs wait in the daemon's "
                      "queue, trying again in %.0f s (each attempt waits up to %.0f s)", self.scheduler,
                      type(exc).__name__, exc, RECONNECT_S, self.connect_timeout_s)
            return None
        try:
            client.register_plugin(WarmUp(self.backend, self.warm), name=WARM_UP_PLUGIN)
        except Exception as exc:
            log.warning("Dask workers not set up (%s: %s): malloc at its defaults, and their "
                        "first jobs build the caches", type(exc).__name__, exc)
        self._seen = (0, 0, 0.0)
        self._look(client)
        log.info("connected to the Dask scheduler %s (%d workers)", self.scheduler, self._seen[0])
        self._client = client
        return client

    def _look(self, client: distributed.Client) -> None:
        """Read the cluster's workers and threads (a call to the scheduler,
        on the dispatcher's thread alone) if the last look is THREADS_EVERY_S old."""
        if time.monotonic() - self._seen[2] <= THREADS_EVERY_S:
            return
        try:
            nthreads = client.nthreads()
        except Exception:                 # the connection is going: the next turn sees it
            nthreads = {}
        self._seen = (len(nthreads), sum(nthreads.values()), time.monotonic())

    def _limit(self, client: distributed.Client) -> int:
        self._look(client)
        return self.max_in_flight or IN_FLIGHT_PER_THREAD * self._seen[1]

    # -------------------------------------------------------- dispatching --
    def _dispatch_loop(self) -> None:
        while True:
            client = None
            while client is None:
                if self._stopped.is_set():
                    return
                client = self._connect()
                if client is None:
                    self._stopped.wait(RECONNECT_S)
            while True:
                limit = self._limit(client)          # an RPC at times: not under the lock
                with self._changed:
                    if self._stopped.is_set():
                        return
                    if len(self._in_flight) < limit:
                        break
                    self._changed.wait(THREADS_EVERY_S)
            if client.status != "running":
                continue
            try:
                entry, _, waited = self.queue.get(timeout=THREADS_EVERY_S)
            except QueueClosed:
                return
            except Empty:                # look at the connection again
                continue
            if entry.attempt == 0 and not entry.future.set_running_or_notify_cancel():
                continue                     # cancelled while queued
            entry.waited_s = waited
            self._send(client, entry)

    def _send(self, client: distributed.Client, entry: _Job) -> None:
        job = entry.job
        level = self.queue.effective(entry.priority, entry.waited_s)
        key = f"zksidecar-prove-{job.symbol}-{job.batch_id}-{entry.attempt}-{self.token}"
        with self._lock:
            self._in_flight[key] = entry
        sent = time.monotonic()
        try:
            entry.dask = client.submit(prove_inputs, self.backend, JobInputs.of(job), key=key,
                                       pure=False, priority=dask_priority(level))
        except Exception as exc:          # the connection went as we sent: try again later
            with self._lock:
                self._in_flight.pop(key, None)
            log.warning("symbol %d batch %d not handed to Dask (%s: %s); queued again",
                        job.symbol, job.batch_id, type(exc).__name__, exc)
            self._requeue(entry)
            return
        entry.dask.add_done_callback(lambda f: self._answered(key, entry, f, sent))

    def _requeue(self, entry: _Job) -> None:
        entry.attempt += 1
        try:
            self.queue.put(entry, entry.priority, put_at=self.queue.now() - entry.waited_s)
        except QueueClosed:
            _settle(entry.future, PoolClosed("the Dask pool closed before the job ran"))

    # ---------------------------------------------------------- answers --
    def _answered(self, key: str, entry: _Job, dfut, sent: float) -> None:
        """A task ended (Dask's callback thread): check its proof and resolve
        the job, or queue it again if its task was lost with the scheduler."""
        job = entry.job
        try:
            result = dfut.result()
        except Exception as exc:
            with self._changed:
                self._in_flight.pop(key, None)
                self._changed.notify_all()
                closing = self._closing
            if closing:
                _settle(entry.future, PoolClosed("the Dask pool closed while the job ran"))
            elif isinstance(exc, distributed.KilledWorker):
                self.figures.job_crashed()
                _settle(entry.future, WorkerCrashed(
                    f"symbol {job.symbol} batch {job.batch_id}: every Dask worker that ran it died "
                    f"({exc}); the batch is not proven"))
            elif _lost(exc):
                self.figures.job_resubmitted()
                log.warning("symbol %d batch %d: its Dask task was lost (%s: %s); submitted again",
                            job.symbol, job.batch_id, type(exc).__name__, exc)
                self._requeue(entry)
            else:                          # e.g. the worker could not unpickle the job
                self.figures.job_answered(time.monotonic() - sent)
                _settle(entry.future, ProofResult(
                    job.symbol, job.batch_id, n_ops=len(job.ops), queue_wait_s=entry.waited_s,
                    priority=entry.priority,
                    error=f"the Dask task failed: {type(exc).__name__}: {exc}"))
            return
        finally:
            dfut.release()
        round_trip_s = time.monotonic() - sent
        self.figures.job_answered(round_trip_s)
        with self._changed:
            self._in_flight.pop(key, None)
            self._changed.notify_all()
        _settle(entry.future, self._checked(entry, result, round_trip_s))

    def _checked(self, entry: _Job, result, round_trip_s: float) -> ProofResult:
        """The worker's answer as the daemon keeps it: its proof accepted here
        (an answer that is not a ProofResult of this job, or whose proof does
        not prove the job, becomes an error)."""
        job = entry.job
        if not isinstance(result, ProofResult):
            result = ProofResult(job.symbol, job.batch_id,
                                 error=f"a Dask worker answered a {type(result).__name__}, "
                                       "not a ProofResult")
        elif result.ok:
            try:
                proof = accept_proof(job, result.proof)
            except BackendError as exc:
                result = ProofResult(job.symbol, job.batch_id, error=str(exc))
            else:
                result.post_root = proof.post_root
                result.n_trades = len(job.trades)
        result.symbol, result.batch_id, result.n_ops = job.symbol, job.batch_id, len(job.ops)
        result.priority = entry.priority
        # waiting: in the daemon's queue, and in the cluster's beyond the proving itself
        result.queue_wait_s = entry.waited_s + max(0.0, round_trip_s - result.prove_s)
        result.extra["cluster_round_trip_s"] = round_trip_s
        result.extra["attempts"] = entry.attempt + 1
        return result

    # ------------------------------------------------------------ closing --
    def close(self, wait: bool = True, cancel_pending: bool = False) -> None:
        """Stop taking jobs.  wait=True: queued jobs are proven (or, with
        cancel_pending, their futures cancelled) and those in the cluster
        finish.  wait=False: queued futures are cancelled and those in the
        cluster fail with PoolClosed.  The connection is closed; the cluster
        is left running."""
        if self._stopped.is_set():
            return
        self.queue.close()
        if cancel_pending or not wait:
            for entry, _ in self.queue.drain():
                if not entry.future.cancel():      # a re-queued job is already running
                    _settle(entry.future, PoolClosed("the Dask pool closed before the job ran"))
        if wait:
            self._dispatcher.join()          # the queue is empty and closed
            with self._changed:
                while self._in_flight:
                    self._changed.wait(1.0)
        with self._changed:
            self._closing = True
            self._stopped.set()
            self._changed.notify_all()
            flying = list(self._in_flight.values())
        self._dispatcher.join()
        for entry in flying:
            if entry.dask is not None:
                entry.dask.cancel()
            _settle(entry.future, PoolClosed("the Dask pool closed while the job ran"))
        if self._client is not None:
            try:
                self._client.close(timeout=10)
            except Exception as exc:
                log.warning("closing the Dask client: %s: %s", type(exc).__name__, exc)

    def __enter__(self) -> "DaskPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _lost(exc: BaseException) -> bool:
    """A task that ended without an answer through no fault of its own: the
    client lost the scheduler (Dask cancels its futures), or the connection
    broke while the result was fetched (CommClosedError is an OSError)."""
    return isinstance(exc, (CancelledError, asyncio.CancelledError, OSError))


def _settle(future: Future, outcome) -> None:
    """Resolve `future` with a result or an exception, unless it already is
    (a close racing an answer: the first one counts)."""
    try:
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except InvalidStateError:
        pass
