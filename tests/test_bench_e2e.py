"""`zksidecar bench e2e`'s machinery, tiny: both phases run against a real
daemon and report every key.  No figure is asserted (unit tests never time
anything): only what does not depend on the machine's speed."""
from __future__ import annotations

import glob
import os

from zksidecar.daemon import bench, bench_e2e


def test_e2e_suite_runs_and_reports_every_key(tmp_path):
    sw = bench.Stopwatch(quiet=True)
    cores = set(bench_e2e.all_cores())
    figures = bench_e2e.e2e(sw, root=str(tmp_path / "b"), pairs=3, run_ops=2048,
                            rates=(500,), window_s=1.5, drain_s=20)
    for key in ("engine_overhead_pct", "publish_ns_per_op", "sustained_ops_per_s",
                "proof_lag_ms_p50", "proof_lag_ms_p99", "daemon_rss_mib"):
        assert key in figures, key
    # one pair counted (two warm up); every run fitted the ring, so no publish was refused
    assert figures["overhead_runs"] == 1
    assert figures["overhead_ring_full_events"] == 0
    assert figures["engine_ops_per_s_alone"] > 0 and figures["engine_ops_per_s_attached"] > 0
    assert figures["daemon_rss_mib"] > 0
    assert list(figures["rates"]) == ["500"]
    assert figures["sustained_ops_per_s"] in (0, 500)
    assert figures["stages"]["offered_ops_per_s"] == 500
    met = bench.check_targets("e2e", figures)
    assert set(met) == {"engine_overhead_pct", "proof_lag_ms_p99", "sustained_ops_per_s"}
    # a lag measured below 10,000 ops/s never counts as meeting the target
    assert met["proof_lag_ms_p99"] is False
    # the suite's rings are gone, and the process is no longer pinned to the engine's core
    assert glob.glob(f"/dev/shm/*-bench-{os.getpid()}-*") == []
    assert os.sched_getaffinity(0) == cores
    bench.print_table("e2e", dict(figures, machine=bench.machine(), targets_met=met))
