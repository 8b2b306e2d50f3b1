"""`zksidecar bench e2e`'s machinery, tiny: both phases run against a real
daemon and report every key.  No figure is asserted (unit tests never time
anything): only what does not depend on the machine's speed."""
from __future__ import annotations

import glob
import os
import tempfile

from zksidecar.tools.bench import e2e, runner


def test_e2e_suite_runs_and_reports_every_key():
    sw = runner.Stopwatch(quiet=True)
    cores = set(e2e.all_cores())
    # a short root: the daemons' admin sockets live below it, and pytest's
    # own temporary directories leave too little of sun_path's 107 bytes for
    # the retried rate's directory
    with tempfile.TemporaryDirectory(prefix="e2e") as root:
        figures = e2e.e2e(sw, root=root, pairs=3, run_ops=2048,
                          rates=(500,), window_s=1.5, drain_s=20, dask_steps=(1.0,),
                          restart_sizes=(1000, 3000), restart_runs=1, overload_seconds=1.5)
    for key in ("engine_overhead_pct", "publish_ns_per_op", "sustained_ops_per_s",
                "proof_lag_ms_p50", "proof_lag_ms_p99", "daemon_rss_mib", "dask_vs_local",
                "dask_sustained_ops_per_s", "dask_proof_lag_ms_p99",
                "restart_s_1e3", "restart_s_3000", "replay_s_3000", "restart_growth",
                "overload_rss_mib", "overload_published", "overload_batches_on_disk"):
        assert key in figures, key
    # one pair counted (two warm up); every run fitted the ring, so no publish was refused
    assert figures["overhead_runs"] == 1
    assert figures["overhead_ring_full_events"] == 0
    assert figures["engine_ops_per_s_alone"] > 0 and figures["engine_ops_per_s_attached"] > 0
    assert figures["daemon_rss_mib"] > 0
    assert list(figures["rates"]) == ["500"]
    assert figures["sustained_ops_per_s"] in (0, 500)
    assert figures["stages"]["offered_ops_per_s"] == 500
    # the Dask phase offered the local figure itself (steps (1.0,)), or nothing if there was none
    assert list(figures["dask_rates"]) == ([str(figures["sustained_ops_per_s"])]
                                           if figures["sustained_ops_per_s"] else [])
    assert figures["dask_vs_local"] in (0.0, 1.0)
    met = runner.check_targets("e2e", figures)
    assert set(met) == {"engine_overhead_pct", "proof_lag_ms_p99", "sustained_ops_per_s",
                        "restart_growth", "dask_vs_local", "overload_rss_mib"}
    # the overload phase offered ten times a proving rate of at least 1,000 ops/s
    assert figures["overload_offered_ops_per_s"] >= 10_000 and figures["overload_rss_mib"] > 0
    # the restart states were made as described: half the operations proven, the rest not
    state = figures["restart_state_3000"]
    assert state["ops"] == 3000 and 0 < state["proven_ops"] < 3000 and \
        state["proven_batches"] < state["batches"]
    # a lag measured below 10,000 ops/s never counts as meeting the target
    assert met["proof_lag_ms_p99"] is False
    # the suite's rings are gone, and the process is no longer pinned to the engine's core
    assert glob.glob(f"/dev/shm/*-bench-{os.getpid()}-*") == []
    assert os.sched_getaffinity(0) == cores
    runner.print_table("e2e", dict(figures, machine=runner.machine(), targets_met=met))


def _run(rate: int, kept_up: bool, lag_p99: float) -> dict:
    """One rate's result as e2e._one_rate returns it (figures made up)."""
    return {"rate": rate, "kept_up": kept_up, "published": rate * 10, "proven": rate * 10,
            "backlog_growth_2nd_half": 0, "lag_ms_p50": lag_p99 / 2, "lag_ms_p99": lag_p99,
            "peak_rss": 100 << 20,
            "stages": {"proof_ops_per_s": rate, "batch_ops_mean": 100.0, "proving_s_mean": 0.2,
                       "queue_wait_s_mean": 0.0}}


def test_summary_takes_the_lag_at_10k_or_says_why_not():
    s = e2e.summarize([_run(5000, True, 900), _run(10000, True, 1500), _run(12500, False, 9000)])
    assert (s["sustained_ops_per_s"], s["lag_rate_ops_per_s"], s["proof_lag_ms_p99"]) == (10000, 10000, 1500)
    assert runner.check_targets("e2e", s) == {"proof_lag_ms_p99": True, "sustained_ops_per_s": True}
    # 10,000 not sustained: the lag of the highest sustained rate, never counted as met
    s = e2e.summarize([_run(5000, True, 900), _run(7500, True, 1000), _run(10000, False, 5000)])
    assert (s["sustained_ops_per_s"], s["lag_rate_ops_per_s"], s["proof_lag_ms_p99"]) == (7500, 7500, 1000)
    assert "7,500" in s["targets_unmeasured"]["proof_lag_ms_p99"]
    assert s["at_10k"]["lag_ms_p99_of_proven"] == 5000
    assert runner.check_targets("e2e", s)["proof_lag_ms_p99"] is False
    # nothing sustained: no lag at all, and the check still answers
    s = e2e.summarize([_run(2500, False, 7000)])
    assert s["sustained_ops_per_s"] == 0 and s["proof_lag_ms_p99"] is None
    assert runner.check_targets("e2e", s) == {"proof_lag_ms_p99": False, "sustained_ops_per_s": False}
