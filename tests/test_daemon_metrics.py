"""/metrics carries every figure an operator alerts on (issue 16 item 5):
refused records, proofs in flight and `behind`, completions waiting and
dropped, ingest health, what the ring knows (full events, unblocked
positions, a stall), disk use, the backlog, the proof pool, and the
process_* metrics; and /status and /metrics agree, because both read the same state."""
from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon_helpers import Daemon
from test_daemon_e2e import _get
from zksidecar import ringbuf
from zksidecar.daemon.finisher import Finisher
from zksidecar.daemon.metrics import Metrics
from zksidecar.tools import loadgen


def scrape(d: Daemon) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of one /metrics answer."""
    return parsed(_get(d.socket, "/metrics"))


def parsed(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a Prometheus text page."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def one(m: dict, name: str, **labels) -> float:
    return m[(name, tuple(sorted(labels.items())))]


def pool_agrees(st: dict, m: dict) -> dict:
    """/status `pool` and the zksidecar_pool_* metrics say the same (both
    read the pool's one status()); the pool's status."""
    pool = st["pool"]
    assert one(m, "zksidecar_pool_info", backend=pool["backend"],
               scheduler=pool.get("scheduler", "")) == 1
    for key in ("workers", "threads"):
        assert pool[key] == one(m, f"zksidecar_pool_{key}")
    for key in ("in_flight", "queued"):
        assert pool[key] == one(m, f"zksidecar_pool_jobs_{key}")
    for key in ("crashed", "resubmitted"):
        assert pool[key] == one(m, f"zksidecar_pool_jobs_{key}_total")
    assert pool["round_trip_s"]["count"] == one(m, "zksidecar_pool_round_trip_seconds_count")
    if "connected" in pool:
        assert pool["connected"] == bool(one(m, "zksidecar_pool_connected"))
    else:
        assert not any(name == "zksidecar_pool_connected" for name, _ in m)
    return pool


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path)
    yield d
    d.cleanup()


def test_metrics_that_alert_and_agree_with_status(daemon):
    daemon.start()
    ops = loadgen.flow(200, seed=11, capacity=daemon.capacity)
    loadgen.run(daemon.ops_ring, None, ops, daemon.capacity)
    daemon.wait_for(lambda st: st["ops"]["proven"] == 200, what="200 proven")
    # a record the stream already had: refused (replayed), counted, kept in the journal
    with ringbuf.Producer(daemon.ops_ring) as p:
        assert p.publish(ops[:1].copy()) == 1
    st = daemon.wait_for(lambda st: st["refused"]["total"] == 1 and st["backlog"]["ops"] == 0
                         and st["proofs_in_flight"] == 0, what="the replayed record refused")
    m = scrape(daemon)

    assert one(m, "zksidecar_records_refused_total", reason="replayed") == 1
    assert one(m, "zksidecar_proofs_in_flight") == 0
    assert one(m, "zksidecar_proofs_in_flight_limit") == 64
    assert one(m, "zksidecar_behind") == 0
    assert one(m, "zksidecar_completions_waiting") == 0
    assert one(m, "zksidecar_completions_dropped_total") == 0
    assert one(m, "zksidecar_ingest_healthy") == 1
    for stage in ("ingest", "sequencer", "finisher"):
        assert one(m, "zksidecar_blocked", stage=stage) == 0
    assert one(m, "zksidecar_ring_full_events_total") == 0
    assert one(m, "zksidecar_ring_unblocked_total") == 0
    assert one(m, "zksidecar_ring_stalled") == 0
    assert one(m, "zksidecar_ring_stall_seconds") == 0
    for area in ("journal", "store"):
        assert one(m, "zksidecar_disk_bytes", area=area) > 0
        assert one(m, "zksidecar_filesystem_size_bytes", area=area) > 0
        assert 0 < one(m, "zksidecar_filesystem_free_bytes", area=area) \
            <= one(m, "zksidecar_filesystem_size_bytes", area=area)
        assert one(m, "zksidecar_filesystem_used_bytes", area=area) > 0
    assert one(m, "zksidecar_backlog_ops", where="closed") == 0
    assert one(m, "zksidecar_backlog_ops", where="open") == 0
    assert one(m, "zksidecar_backlog_seconds") == 0
    assert one(m, "zksidecar_proven_ops_per_second") > 0
    rss = one(m, "process_resident_memory_bytes")
    assert rss > 10 << 20
    assert one(m, "process_cpu_seconds_total") > 0
    assert abs(one(m, "process_start_time_seconds") - time.time()) < 600
    assert one(m, "zksidecar_tree_resident_memory_bytes") > rss     # the daemon and its worker

    # the shared fields: one source, so the same value whichever page is read
    # (the daemon is idle here, so nothing moves between the two requests)
    st = daemon.status()
    m = scrape(daemon)
    assert st["proofs_in_flight"] == one(m, "zksidecar_proofs_in_flight")
    assert st["behind"] == bool(one(m, "zksidecar_behind"))
    assert st["completions_waiting"] == one(m, "zksidecar_completions_waiting")
    assert st["counts"]["completions_dropped"] == one(m, "zksidecar_completions_dropped_total")
    assert st["ingest_healthy"] == bool(one(m, "zksidecar_ingest_healthy"))
    assert st["blocked"] == []
    assert st["refused"]["total"] == st["counts"]["rejected"] == sum(
        v for (name, _), v in m.items() if name == "zksidecar_records_refused_total")
    assert st["ring"]["full_events"] == one(m, "zksidecar_ring_full_events_total")
    assert st["ring"]["unblocked"] == one(m, "zksidecar_ring_unblocked_total")
    assert st["ring"]["stall"] is None
    assert st["backlog"]["closed_ops"] == one(m, "zksidecar_backlog_ops", where="closed")
    assert st["backlog"]["open_ops"] == one(m, "zksidecar_backlog_ops", where="open")
    assert st["backlog"]["seconds"] == one(m, "zksidecar_backlog_seconds")
    for area in ("journal", "store"):
        assert st["disk"][area]["bytes"] == one(m, "zksidecar_disk_bytes", area=area)
        assert st["disk"][area]["fs_size_bytes"] == one(m, "zksidecar_filesystem_size_bytes",
                                                        area=area)
    assert st["memory"]["tree_resident_bytes"] > 0
    pool = pool_agrees(st, m)          # the local pool: one worker, idle, every job answered
    assert (pool["backend"], pool["workers"], pool["threads"]) == ("local", 1, 1)
    assert pool["in_flight"] == pool["queued"] == pool["crashed"] == pool["resubmitted"] == 0
    rt = pool["round_trip_s"]
    assert rt["count"] == st["batches"]["proven"] > 0 and 0 < rt["p50"] <= rt["max"]
    assert daemon.stop() == 0


def test_backlog_counts_open_and_waiting_operations(tmp_path):
    """With batches that never fill and a long timeout, the operations sit in
    the open batch: the backlog says so, in both pages."""
    d = Daemon(tmp_path, batch=1024, timeout_ms=60_000)
    try:
        d.start()
        ops = loadgen.flow(50, seed=3, capacity=d.capacity)
        loadgen.run(d.ops_ring, None, ops, d.capacity)
        st = d.wait_for(lambda st: st["backlog"]["open_ops"] == 50, what="50 operations open")
        m = scrape(d)
        assert st["backlog"]["ops"] == 50
        assert one(m, "zksidecar_backlog_ops", where="open") == 50
        # nothing proven yet: no rate to go by, so no seconds (the family is there, empty)
        assert st["backlog"]["seconds"] is None
        assert not any(name == "zksidecar_backlog_seconds" for name, _ in m)
        assert d.stop() == 0
    finally:
        d.cleanup()


class _FullRing:
    def publish(self, rec) -> bool:
        return False


def test_dropped_completions_reach_the_metrics(tmp_path, monkeypatch):
    """An engine that never reads its completions: past the backlog bound the
    oldest are dropped, and the metric the daemon attaches counts them."""
    from zksidecar.daemon import finisher as finisher_mod
    from test_finisher import batch

    monkeypatch.setattr(finisher_mod, "COMPLETION_BACKLOG", 2)
    metrics = Metrics()
    fin = Finisher(None, _FullRing(), metrics)
    metrics.attach(lambda: {"completions_waiting": fin.completions_waiting,
                            "completions_dropped": fin.completions_dropped})
    for k in range(5):
        fin._complete(batch(k), finisher_mod.CompletionStatus.FAILED, b"", 0)
    fams = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    assert (fin.completions_dropped, fin.completions_waiting) == (3, 2)
    assert fams["zksidecar_completions_dropped"].samples[0].value == 3
    assert fams["zksidecar_completions_waiting"].samples[0].value == 2
    assert "zksidecar_disk_bytes" not in fams        # a figure not given is not made up


class _ConsumerDouble:
    """What ingest asks of the ops ring every 0.25 s, with a dead claimer's
    positions skipped and a live one's stall in progress."""
    depth, full_events, unblocked = 5, 7, 3
    stall = {"position": 40, "seconds": 2.5, "claimer": "alive", "claimer_pid": 1234}

    def heartbeat(self):
        pass

    def peer_status(self, max_age=None):
        return "alive"


def test_ingest_reports_what_the_ring_knows():
    """Full events, positions unblocked after a claimer died, and a stall on
    a claimed position reach both pages (ringbuf's own figures; the ring's
    side is tests/test_ring_unblock.py)."""
    import queue

    from zksidecar.daemon.ingest import Ingest

    metrics = Metrics()
    ingest = Ingest(_ConsumerDouble(), lambda recs, seen: None, queue.SimpleQueue(), metrics)
    ingest._status()
    ring = metrics.status()["ring"]
    assert ring["full_events"] == 7 and ring["unblocked"] == 3 and ring["depth"] == 5
    assert ring["stall"] == _ConsumerDouble.stall
    fams = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    assert fams["zksidecar_ring_full_events"].samples[0].value == 7
    assert fams["zksidecar_ring_unblocked"].samples[0].value == 3
    assert fams["zksidecar_ring_stalled"].samples[0].value == 1
    assert fams["zksidecar_ring_stall_seconds"].samples[0].value == 2.5
