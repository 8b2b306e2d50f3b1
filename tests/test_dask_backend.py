"""daemon/cluster.py: proofs on a Dask cluster (`workers.backend = "dask"`).

One LocalCluster of two worker processes on loopback serves the module
(started once: ~3 s).  Real small batches are proven on it and verified; a
worker is killed with SIGKILL mid-proof and its job still completes, once,
and is stored once; priorities hold with one job in flight as they do in the
local pool; a task lost from under the client is submitted again; a job
that kills every worker it lands on fails as a crashed worker; a proof a
worker tampered with is refused by the daemon; bad [workers] keys are
refused naming the key; and a daemon with backend "dask" proves an engine's
flow end to end.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

from daemon_helpers import Daemon  # noqa: E402
from test_workers import BITS, GatedBackend, chain_jobs, first_batch, wait_until  # noqa: E402
from zksidecar.daemon import config  # noqa: E402
from zksidecar.daemon.backends import NativeBackend  # noqa: E402
from zksidecar.daemon.cluster import WARM_UP_PLUGIN, DaskPool, dask_priority  # noqa: E402
from zksidecar.daemon.jobs import ProofResult  # noqa: E402
from zksidecar.daemon.metrics import Metrics, pool_status  # noqa: E402
from zksidecar.daemon.priority import ProofPriority  # noqa: E402
from zksidecar.daemon.store import ProofStore  # noqa: E402
from zksidecar.daemon.workers import PoolClosed, WorkerCrashed  # noqa: E402
from zksidecar.engine.records import Status  # noqa: E402
from zksidecar.prover.orderbook import proof_file, verify_chain  # noqa: E402
from zksidecar.tools import loadgen  # noqa: E402


class PidGatedBackend(GatedBackend):
    """Test double: GatedBackend that first writes its worker's pid to
    `gate`.pid when it takes the gated batch, so a test knows which worker
    process is proving it."""

    def prove(self, job):
        if job.batch_id == self.gated and not os.path.exists(self.gate):
            with open(self.gate + ".pid", "w") as f:
                f.write(str(os.getpid()))
        return super().prove(job)


class KillsItsWorker(NativeBackend):
    """Test double: kills the worker process that runs the job."""

    def prove(self, job):
        os.kill(os.getpid(), signal.SIGKILL)


class Tampering(NativeBackend):
    """Test double: a worker that flips one byte of the proof it made."""

    def prove(self, job):
        result = super().prove(job)
        raw = bytearray(result.proof)
        raw[len(raw) // 2] ^= 1
        result.proof = bytes(raw)
        return result


@pytest.fixture(scope="module")
def cluster():
    # one death is retried, a second fails the task (KilledWorker): the
    # poison test then costs two worker restarts, not four
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        # ":0", not None: the scheduler serves its HTTP routes either way,
        # on 8787 unless told a port, which a second cluster then finds taken
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=":0") as c:
            yield c


def two_workers(cluster) -> None:
    """Wait until the cluster has its two workers (a killed one is restarted by its nanny)."""
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)


def test_a_chain_proven_on_the_cluster_verifies(cluster):
    with DaskPool(cluster.scheduler_address, warm=first_batch(0)) as pool:
        results = [f.result(120) for f in [pool.submit(j) for j in chain_jobs(4)]]
        assert pool.ready == 2
    assert all(r.ok for r in results), [r.error for r in results]
    assert [r.batch_id for r in results] == [0, 1, 2, 3]
    assert all(r.extra["attempts"] == 1 and r.prove_s > 0 and r.queue_wait_s >= 0
               for r in results)
    assert len({r.worker_pid for r in results} - {os.getpid()}) >= 1    # proven elsewhere
    batches = [proof_file.decode(r.proof) for r in results]
    assert [b.post_root for b in batches] == [r.post_root for r in results]
    verify_chain(batches, min_security=BITS)
    assert pool.pending == 0


def test_priorities_hold_with_one_job_in_flight(cluster, tmp_path):
    """One job holds the only slot in flight; four queued behind it leave in
    priority order, not submission order, as in the local pool."""
    gate = str(tmp_path / "gate")
    with DaskPool(cluster.scheduler_address, backend=GatedBackend(gate), max_in_flight=1,
                  age_step=None) as pool:
        held = pool.submit(first_batch(0))
        wait_until(lambda: pool.in_flight == 1, "the held job to be handed to the cluster")
        order = []
        futures = {name: pool.submit(first_batch(i), name)
                   for i, name in enumerate(["low", "normal", "critical", "high"], start=1)}
        for name, f in futures.items():
            f.add_done_callback(lambda _, name=name: order.append(name))
        assert pool.in_flight == 1 and pool.pending == 5
        open(gate, "w").close()
        assert held.result(60).ok
        assert all(f.result(60).ok for f in futures.values())
    assert order == ["critical", "high", "normal", "low"]
    assert futures["low"].result().priority == ProofPriority.LOW
    assert dask_priority(ProofPriority.CRITICAL) > dask_priority(ProofPriority.LOW)


def test_a_worker_killed_mid_proof_loses_nothing_and_stores_once(cluster, tmp_path):
    gate = str(tmp_path / "gate")
    stored = []
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store, \
            DaskPool(cluster.scheduler_address, backend=PidGatedBackend(gate)) as pool:
        def keep(fut):                 # as the finisher does: one put per resolved future
            r = fut.result()
            stored.append(store.put(r.symbol, r.batch_id, r.proof))

        doomed = pool.submit(first_batch(0))
        doomed.add_done_callback(keep)
        wait_until(lambda: os.path.exists(gate + ".pid"), "the job to start on a worker", 60)
        victim = int(open(gate + ".pid").read())
        os.kill(victim, signal.SIGKILL)
        open(gate, "w").close()
        result = doomed.result(120)
        assert result.ok and result.worker_pid != victim
        assert result.extra["attempts"] == 1       # Dask re-ran it; the daemon did not need to
        wait_until(lambda: len(stored) == 1, "the proof to be stored")
        assert len(store) == 1 and store.has(0, 0)
        proof_file.decode(store.get(0, 0))
    assert stored == [0] and pool.pending == 0
    two_workers(cluster)


def test_a_task_lost_from_under_the_client_is_submitted_again(cluster, tmp_path):
    """As when the scheduler is lost: Dask cancels the client's future; the
    job goes back to the daemon's queue and is submitted under a new key."""
    gate = str(tmp_path / "gate")
    with DaskPool(cluster.scheduler_address, backend=GatedBackend(gate)) as pool:
        fut = pool.submit(first_batch(0))
        wait_until(lambda: pool.in_flight == 1, "the job to be handed to the cluster")
        [(key, entry)] = list(pool._in_flight.items())
        entry.dask.cancel()
        wait_until(lambda: pool.status()["resubmitted"] == 1, "the job to be submitted again")
        assert pool.status()["resubmitted"] == 1
        open(gate, "w").close()
        result = fut.result(60)
    assert result.ok and result.extra["attempts"] == 2
    assert key.endswith(f"-0-{pool.token}")


def test_a_job_that_kills_every_worker_fails_as_a_crash(cluster):
    with DaskPool(cluster.scheduler_address, backend=KillsItsWorker()) as pool:
        with pytest.raises(WorkerCrashed, match="every Dask worker that ran it died"):
            pool.submit(first_batch(0)).result(120)
        assert pool.status()["crashed"] == 1
    two_workers(cluster)


def scraped(pool: DaskPool) -> dict[tuple, float]:
    """The pool's status() as /metrics presents it: the daemon's own
    Metrics with the pool attached as Service.live() attaches it."""
    from test_daemon_metrics import parsed
    metrics = Metrics()
    metrics.attach(lambda: {"pool": pool.status()})
    return parsed(metrics.exposition().decode())


def test_status_and_metrics_show_the_clusters_workers_and_jobs(cluster, tmp_path):
    from test_daemon_metrics import pool_agrees
    gate = str(tmp_path / "gate")
    two_workers(cluster)
    with DaskPool(cluster.scheduler_address, backend=GatedBackend(gate), max_in_flight=1) as pool:
        held, queued = pool.submit(first_batch(0)), pool.submit(first_batch(1), "low")
        wait_until(lambda: pool.in_flight == 1 and pool.status()["workers"] == 2,
                   "the held job to be on the cluster")
        st = pool_status(pool.status())
        assert pool_agrees({"pool": st}, scraped(pool)) == st
        assert st == {"backend": "dask", "scheduler": cluster.scheduler_address,
                      "connected": True, "workers": 2, "threads": 2, "in_flight": 1,
                      "queued": 1, "crashed": 0, "resubmitted": 0,
                      "round_trip_s": {"count": 0, "mean": None, "p50": None, "p99": None,
                                       "max": None}}
        open(gate, "w").close()
        results = [held.result(60), queued.result(60)]
        st = pool_status(pool.status())
        pool_agrees({"pool": st}, scraped(pool))
    assert (st["in_flight"], st["queued"], st["round_trip_s"]["count"]) == (0, 0, 2)
    # the round trip is the cluster's whole answer time: at least the worker's proving
    assert st["round_trip_s"]["max"] >= max(r.prove_s for r in results)
    assert sorted(r.extra["cluster_round_trip_s"] for r in results)[-1] \
        == pytest.approx(st["round_trip_s"]["max"], rel=0.01)


def test_a_scheduler_that_goes_away_shows_as_disconnected():
    """A cluster of its own (one in-process worker), closed under the pool:
    status() says disconnected, no workers, the scheduler it was at; no
    call blocks and nothing raises."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=":0", worker_dashboard_address=None) as gone:
        pool = DaskPool(gone.scheduler_address, connect_timeout_s=0.5)
        wait_until(lambda: pool.status()["workers"] == 1, "the pool to see the worker", 30)
        assert scraped(pool)[("zksidecar_pool_connected", ())] == 1
    try:
        wait_until(lambda: not pool.status()["connected"], "the pool to see the scheduler gone", 30)
        st = pool.status()
        assert (st["scheduler"], st["workers"], st["threads"]) == (gone.scheduler_address, 0, 0)
        m = scraped(pool)
        assert m[("zksidecar_pool_connected", ())] == 0 and m[("zksidecar_pool_workers", ())] == 0
    finally:
        pool.close(wait=False)


def test_a_tampered_proof_is_refused_by_the_daemon(cluster):
    with DaskPool(cluster.scheduler_address, backend=Tampering()) as pool:
        r = pool.submit(first_batch(0)).result(60)
    assert not r.ok and r.proof == b"" and "symbol 0 batch 0" in r.error


def test_a_backend_error_is_a_result(cluster):
    job = first_batch(0)
    job.security_bits = 0
    with DaskPool(cluster.scheduler_address) as pool:
        r = pool.submit(job).result(60)
    assert isinstance(r, ProofResult)
    assert r.error == "ValueError: security_bits must be in 1..128, not 0"


def test_a_job_the_workers_engine_runs_otherwise_is_refused_by_the_worker(cluster):
    """A task carries the job's cells and records, not its run: the worker
    runs the engine on them, and a record whose outcome its engine does not
    give (as a worker of another zksidecar would find) is answered as an
    error, never proven; the steps the daemon holds are not what it proves."""
    job = first_batch(0)
    i = int(np.argmax(job.ops["status"] == Status.RESTED))
    job.ops["status"][i] = Status.FILLED
    with DaskPool(cluster.scheduler_address) as pool:
        r = pool.submit(job).result(60)
        good = first_batch(1)
        good.steps = good.steps.copy()
        good.steps["new_word"] = 0               # not sent: the worker's engine gives the run
        ok = pool.submit(good).result(60)
    assert not r.ok and r.proof == b"" and (r.symbol, r.batch_id, r.n_ops) == (0, 0, len(job.ops))
    assert r.error.startswith("the worker could not run the engine on the job: ValueError: symbol 0 "
                              "batch 0: this engine gives 1 of its 12 operations other outcomes")
    assert r.worker_pid != os.getpid()
    assert ok.ok and ok.extra["engine_s"] > 0 and ok.prove_s > ok.extra["engine_s"]


def test_every_worker_is_set_up_for_proving_without_a_warm_up_job(cluster):
    """malloc as a local proving process sets it (the set-up plugin), with
    or without a warm-up job to prove."""
    with DaskPool(cluster.scheduler_address, warm=None) as pool:
        wait_until(lambda: pool.connected, "the pool to connect", 30)
        setups = pool._client.run(lambda dask_worker: type(dask_worker.plugins[WARM_UP_PLUGIN])
                                  .__name__ + f" {dask_worker.plugins[WARM_UP_PLUGIN].job}")
    assert sorted(setups.values()) == ["WarmUp None", "WarmUp None"]


def test_close_without_waiting_cancels_queued_and_fails_running(cluster, tmp_path):
    gate = str(tmp_path / "gate")
    pool = DaskPool(cluster.scheduler_address, backend=GatedBackend(gate), max_in_flight=1)
    running = pool.submit(first_batch(0))
    wait_until(lambda: pool.in_flight == 1, "the job to be handed to the cluster")
    queued = pool.submit(first_batch(1))
    pool.close(wait=False)
    assert queued.cancelled()
    with pytest.raises(PoolClosed):
        running.result(10)
    with pytest.raises(PoolClosed):
        pool.submit(first_batch(2))
    open(gate, "w").close()


def test_an_unreachable_scheduler_holds_jobs_in_the_queue(caplog):
    pool = DaskPool("tcp://127.0.0.1:9", connect_timeout_s=0.5)
    try:
        fut = pool.submit(first_batch(0))
        wait_until(lambda: "cannot reach the Dask scheduler tcp://127.0.0.1:9" in caplog.text,
                   "the connection error to be logged", 30)
        assert not fut.done() and pool.pending == 1 and not pool.connected
    finally:
        pool.close(wait=False)
    assert fut.cancelled()


# --------------------------------------------------------------- config --

def _problems(workers: dict, **kw) -> str:
    with pytest.raises(config.ConfigError) as err:
        config.load(overrides={"workers": workers}, **kw)
    return str(err.value)


@pytest.mark.parametrize("workers, says", [
    ({"backend": "cloud"}, "[workers] backend: must be one of local, dask, got 'cloud'"),
    ({"backend": "dask"}, "[workers] scheduler: backend = \"dask\" needs the scheduler's address"),
    ({"backend": "dask", "scheduler": "http://h:8786"}, 'must be "tcp://host:port" or "tls://'),
    ({"backend": "dask", "scheduler": "tcp://h"}, "[workers] scheduler: names no port"),
    ({"backend": "dask", "scheduler": "tcp://:8786"}, "[workers] scheduler: names no host"),
    ({"backend": "dask", "scheduler": "tcp://h:99999"}, "[workers] scheduler: not an address"),
    ({"scheduler": "tcp://h:8786"}, '[workers] scheduler: is read only with backend = "dask"'),
    ({"max_in_flight": 4}, '[workers] max_in_flight: is read only with backend = "dask"'),
    ({"backend": "dask", "scheduler": "tcp://h:1", "count": 4},
     '[workers] count: is read only with backend = "local"'),
    ({"backend": "dask", "scheduler": "tcp://h:1", "max_in_flight": -1},
     "[workers] max_in_flight: must be 0"),
    ({"backend": "dask", "scheduler": "tls://h:1"}, "[workers] tls_ca_file: a tls:// scheduler"),
    ({"backend": "dask", "scheduler": "tcp://h:1", "require_encryption": True},
     "[workers] require_encryption: TLS needs a tls:// scheduler"),
    ({"backend": "dask", "scheduler": "tls://h:1", "tls_ca_file": "ca.pem", "tls_client_key": "k"},
     "[workers] tls_client_key: goes with tls_client_cert"),
])
def test_bad_backend_settings_are_refused_naming_the_key(workers, says):
    assert says in _problems(workers, machine=False)


def test_tls_files_must_be_readable(tmp_path):
    missing = str(tmp_path / "ca.pem")
    says = _problems({"backend": "dask", "scheduler": "tls://h:1", "tls_ca_file": missing})
    assert f"[workers] tls_ca_file: {missing} does not exist" in says


def test_a_dask_configuration_is_accepted_and_needs_no_local_workers(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    cfg = config.load(overrides={
        "workers": {"backend": "dask", "scheduler": "tls://prover-1:8786", "tls_ca_file": str(ca),
                    "require_encryption": True, "max_in_flight": 8},
        "journal": {"dir": str(tmp_path / "j")}, "store": {"dir": str(tmp_path / "p")},
        "admin": {"socket": str(tmp_path / "admin.sock")}})
    assert cfg.workers.backend == "dask" and config.memory_estimate(cfg)["workers.count"] == 0


# ------------------------------------------------------------ end to end --

def test_a_daemon_proves_on_the_cluster(cluster, tmp_path):
    d = Daemon(tmp_path, settings={"workers": {"backend": "dask",
                                               "scheduler": cluster.scheduler_address}})
    try:
        d.start()
        ops = loadgen.flow(600, seed=5, capacity=d.capacity)
        rep = loadgen.run(d.ops_ring, d.completions_ring, ops, d.capacity, wait_s=120)
        assert rep.published == 600 and rep.proven_ops() == 600
        st = d.status()
        assert st["counts"]["proven"] == len(rep.completed) and st["counts"]["failed"] == 0
        from test_daemon_metrics import pool_agrees, scrape
        pool = pool_agrees(st, scrape(d))          # idle: nothing moves between the two
        assert (pool["backend"], pool["scheduler"], pool["connected"]) == \
            ("dask", cluster.scheduler_address, True)
        assert (pool["workers"], pool["threads"], pool["in_flight"], pool["queued"]) == (2, 2, 0, 0)
        assert pool["round_trip_s"]["count"] == st["counts"]["proven"]
        assert d.stop() == 0
    finally:
        d.cleanup()
    from test_daemon_e2e import check_store
    check_store(d, 600)
    assert "proofs on the Dask cluster at " + cluster.scheduler_address in d.logs()
