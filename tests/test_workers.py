"""daemon/workers.py: a pool of pinned prover processes fed by priority;
real proofs that verify as a chain, priorities across the pool, a worker
killed with SIGKILL detected and replaced, and clean closing."""
from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

from zksidecar.daemon.backends import NativeBackend
from zksidecar.daemon.jobs import ProofJob, warm_up_job
from zksidecar.daemon.workers import PoolClosed, WorkerCrashed, WorkerPool, _receive_job, _send_job
from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.prover.orderbook import proof_file, verify_batch, verify_chain

CAP, T, BITS = 16, 128, 20


def chain_jobs(n_batches: int, size: int = 12, seed: int = 3, symbol: int = 0) -> list[ProofJob]:
    """Consecutive batches of one symbol, each with the cells before it and
    the engine's traced run of its operations (as a shadow book makes it)."""
    ops = flow.generate(n_batches * size, seed=seed, capacity=CAP, symbol=symbol,
                        params=flow.FlowParams(depth=8))
    book, jobs = Book(CAP, symbol), []
    for b in range(n_batches):
        part = ops[b * size:(b + 1) * size].copy()
        pre = book.cells.copy()
        trades, steps = book.process_traced(part)
        jobs.append(ProofJob(symbol, b, pre, part, steps, trades, T, BITS, 2))
    return jobs


def first_batch(batch_id: int) -> ProofJob:
    """A batch from the empty book, labelled `batch_id` (verifies on its own)."""
    job = chain_jobs(1)[0]
    job.batch_id = batch_id
    return job


class GatedBackend(NativeBackend):
    """Test double: the native prover, except that batch `gated` waits until
    the file `gate` exists, so a test can hold a worker busy."""

    def __init__(self, gate: str, gated: int = 0):
        self.gate, self.gated = gate, gated

    def prove(self, job):
        while job.batch_id == self.gated and not os.path.exists(self.gate):
            time.sleep(0.01)
        return super().prove(job)


class DiesOnArrival(NativeBackend):
    """Test double: a backend whose unpickling kills the worker process at
    start-up, before it is ready (as a spawn without a main guard would)."""

    def __getstate__(self):
        return {"die": True}

    def __setstate__(self, state):
        os._exit(3)


class RecordingBackend(NativeBackend):
    """Test double: the native prover, noting each job it is given
    (symbol:batch) in a file, so a test sees what a worker proved in order."""

    def __init__(self, path: str):
        self.path = path

    def prove(self, job):
        with open(self.path, "a") as f:
            f.write(f"{job.symbol}:{job.batch_id}\n")
        return super().prove(job)


def wait_until(predicate, what: str, limit: float = 60.0):
    """Poll for a condition (the limit only stops a broken test from hanging)."""
    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def pool():
    with WorkerPool(2, cores=sorted(os.sched_getaffinity(0))[:1]) as p:
        yield p


def test_a_chain_proven_in_parallel_verifies(pool):
    jobs = chain_jobs(4)
    futures = [pool.submit(j) for j in jobs]
    results = [f.result(120) for f in futures]
    assert all(r.ok for r in results), [r.error for r in results]
    assert [r.batch_id for r in results] == [0, 1, 2, 3]
    assert {r.worker_pid for r in results} <= set(pool.pids)
    assert all(r.prove_s > 0 and r.queue_wait_s >= 0 for r in results)
    assert sum(r.n_ops for r in results) == 48
    batches = [proof_file.decode(r.proof) for r in results]
    assert [b.post_root for b in batches] == [r.post_root for r in results]
    verify_chain(batches, min_security=BITS)


def test_workers_are_pinned(pool):
    core = sorted(os.sched_getaffinity(0))[0]
    assert pool.cores == [core, core]
    for pid in pool.pids:
        assert os.sched_getaffinity(pid) == {core}


def test_a_missing_core_is_skipped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="zksidecar.daemon.workers"):
        with WorkerPool(1, cores=[100_000]) as p:
            assert p.cores == [None]
            assert p.submit(first_batch(0)).result(120).ok
    assert "core 100000 is not available" in caplog.text


def test_a_backend_error_is_a_result_not_a_dead_worker(pool):
    job = first_batch(0)
    job.ops = job.ops[:0]
    r = pool.submit(job).result(60)
    assert r.error == "ValueError: an empty batch" and r.proof == b""
    assert pool.submit(first_batch(1)).result(60).ok


def test_asyncio_helper(pool):
    r = asyncio.run(pool.prove(first_batch(7), "high"))
    assert r.ok and r.batch_id == 7 and r.priority.label == "high"
    verify_batch(proof_file.decode(r.proof), min_security=BITS)


def test_priorities_apply_across_the_pool(tmp_path):
    """One worker held busy; four jobs queued behind it leave in priority
    order, not submission order."""
    gate = str(tmp_path / "gate")
    with WorkerPool(1, backend=GatedBackend(gate), age_step=None) as p:
        held = p.submit(first_batch(0))
        wait_until(lambda: p.busy_pids(), "the held job to be dispatched")
        order = []
        futures = {name: p.submit(first_batch(i), name)
                   for i, name in enumerate(["low", "normal", "critical", "high"], start=1)}
        for name, f in futures.items():
            f.add_done_callback(lambda _, name=name: order.append(name))
        open(gate, "w").close()
        assert held.result(60).ok
        assert all(f.result(60).ok for f in futures.values())
        assert order == ["critical", "high", "normal", "low"]
        waits = {name: f.result().queue_wait_s for name, f in futures.items()}
        assert waits["low"] > waits["critical"]


def test_a_killed_worker_fails_its_job_and_is_replaced(tmp_path):
    gate = str(tmp_path / "gate")
    with WorkerPool(2, backend=GatedBackend(gate)) as p:
        doomed = p.submit(first_batch(0))
        wait_until(lambda: p.busy_pids(), "the job to be dispatched")
        [victim] = p.busy_pids()
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(WorkerCrashed, match=r"pid \d+\) died \(killed by signal 9\) while "
                                                r"proving symbol 0 batch 0"):
            doomed.result(60)
        wait_until(lambda: victim not in p.pids, "the replacement worker")
        assert p.crashes == 1 and len(p.pids) == 2
        open(gate, "w").close()
        results = [f.result(120) for f in [p.submit(first_batch(i)) for i in range(4)]]
        assert all(r.ok for r in results)


def test_workers_that_die_at_start_up_are_not_restarted_for_ever():
    p = WorkerPool(1, backend=DiesOnArrival())
    try:
        first = p.submit(first_batch(0))
        with pytest.raises(WorkerCrashed, match="exit code 3"):
            first.result(120)
        wait_until(lambda: p.broken, "three start-up deaths")
        assert p.crashes == 3
        with pytest.raises(WorkerCrashed, match="died at start-up 3 times in a row"):
            p.submit(first_batch(1))
    finally:
        p.close()


def test_close_waits_for_queued_work():
    p = WorkerPool(1)
    futures = [p.submit(j) for j in chain_jobs(3)]
    p.close(wait=True)
    assert all(f.result(0).ok for f in futures)
    with pytest.raises(PoolClosed):
        p.submit(first_batch(0))
    p.close()   # closing twice is harmless


def test_close_without_waiting_cancels_and_fails(tmp_path):
    gate = str(tmp_path / "never")
    p = WorkerPool(1, backend=GatedBackend(gate))
    running = p.submit(first_batch(0))
    wait_until(lambda: p.busy_pids(), "the job to be dispatched")
    [pid] = p.pids
    queued = [p.submit(first_batch(i)) for i in (1, 2)]
    p.close(wait=False)
    assert all(f.cancelled() for f in queued)
    with pytest.raises(PoolClosed):
        running.result(10)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_bad_pool_arguments():
    with pytest.raises(ValueError, match="at least one worker"):
        WorkerPool(0)
    assert np.array_equal(first_batch(3).pre_cells, Book(CAP).cells)


def test_a_worker_proves_the_warm_up_job_before_its_first(tmp_path):
    """WorkerPool(warm=...): each worker proves the chain's warm-up job (one
    order on the empty book, thrown away) before it reports ready, so the
    shape's caches are built before the first real job; a warm-up that
    fails is logged and the worker serves anyway."""
    log_path = str(tmp_path / "proved")
    with WorkerPool(1, backend=RecordingBackend(log_path), warm=warm_up_job(CAP, T, BITS, symbol=5)) as p:
        wait_until(lambda: p.ready == 1, "the warmed worker")
        assert open(log_path).read() == "5:0\n"
        r = p.submit(first_batch(7), "critical").result(120)
        assert r.ok, r.error
        verify_batch(proof_file.decode(r.proof), min_security=BITS)
        assert open(log_path).read() == "5:0\n0:7\n"
    broken = warm_up_job(CAP, T, BITS)
    broken.ops = broken.ops[:0]
    with WorkerPool(1, warm=broken) as p:
        assert p.submit(first_batch(0)).result(120).ok


def test_the_warm_up_job_is_a_proof_of_the_chains_shape():
    job = warm_up_job(1 << 10, 4096, 100)
    assert (job.trace_length, job.security_bits, len(job.ops)) == (4096, 100, 1)
    result = NativeBackend().prove(job)
    assert result.ok and result.n_trades == 0


def test_a_job_crosses_the_pipe_with_its_arrays_out_of_band():
    """A job's arrays travel as raw bytes beside its pickle (protocol 5):
    they arrive equal and writable, and a view sends only its own bytes."""
    job = chain_jobs(2)[1]
    whole = job.steps
    job.steps = whole[: len(whole) // 2]         # a view into a longer buffer, as a split run's
    a, b = mp.Pipe()
    sent = []
    real_send_bytes = a.send_bytes
    a.send_bytes = lambda buf: sent.append(len(memoryview(buf).cast("B"))) or real_send_bytes(buf)
    _send_job(a, 7, job)
    job_id, back = _receive_job(b, b.recv())
    assert job_id == 7
    for name in ("pre_cells", "ops", "steps", "trades"):
        sent_array, got = getattr(job, name), getattr(back, name)
        assert got.dtype == sent_array.dtype and got.tobytes() == sent_array.tobytes(), name
        assert got.flags.writeable, name
    assert job.steps.nbytes in sent and whole.nbytes not in sent
    a.close()
    b.close()
