"""daemon/metrics.py: the log-bucket percentiles within their documented
bound, the counters behind the status JSON, the Prometheus exposition, and
exact totals under concurrent updates."""
import json
import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from zksidecar.daemon.metrics import (CLOSE_REASONS, PRIORITIES, PRODUCER_STATES, TIME_BUCKETS,
                                      LogHistogram, Metrics)

QS = (0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0)


def exact(values, q):
    """The nearest-rank quantile the histogram promises to approximate."""
    s = np.sort(np.asarray(values, dtype=np.float64))
    return s[LogHistogram.rank(q, s.size) - 1]


def assert_within_bound(h, values, q):
    got, want = h.quantile(q), exact(values, q)
    assert abs(got - want) <= LogHistogram.ERROR_BOUND * want * (1 + 1e-9), (q, got, want)


def families(metrics):
    return {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}


def sample(fams, name, **labels):
    for f in fams.values():
        for s in f.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise KeyError((name, labels))


class FakeClock:
    """Test double: a monotonic clock the test moves by hand."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


# ---- LogHistogram ----

def test_error_bound_is_half_a_percent():
    assert LogHistogram.ERROR_BOUND == pytest.approx(math.sqrt(1.01) - 1)
    assert LogHistogram.ERROR_BOUND < 0.005


@pytest.mark.parametrize("dist", ["lognormal", "uniform", "exponential", "bimodal"])
def test_quantiles_of_known_distributions_within_bound(dist):
    rng = np.random.default_rng(7)
    n = 200_000
    values = {
        "lognormal": lambda: rng.lognormal(mean=-3.0, sigma=1.5, size=n),     # ~50 ms, wide tail
        "uniform": lambda: rng.uniform(0.001, 2.0, size=n),
        "exponential": lambda: rng.exponential(0.2, size=n),
        "bimodal": lambda: np.concatenate([rng.normal(0.01, 0.001, n // 2).clip(1e-5),
                                           rng.normal(1.5, 0.1, n // 2).clip(1e-5)]),
    }[dist]()
    h = LogHistogram()
    for chunk in np.array_split(values, 97):     # per batch, as the daemon records
        h.record(chunk)
    assert h.count == n
    assert h.mean() == pytest.approx(values.mean(), rel=1e-9)
    for q in QS:
        assert_within_bound(h, values, q)
    assert h.quantile(1.0) == values.max()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1e-6, max_value=9e4, allow_nan=False), min_size=1, max_size=300),
       st.sampled_from(QS))
def test_quantile_within_bound_for_any_values(values, q):
    h = LogHistogram()
    h.record(np.array(values))
    assert_within_bound(h, values, q)


def test_weighted_record_equals_repeated_record():
    a, b = LogHistogram(), LogHistogram()
    a.record(0.25, weight=1000)
    a.record([0.5, 0.75], weight=3)
    for _ in range(1000):
        b.record(0.25)
    for _ in range(3):
        b.record(np.array([0.5, 0.75]))
    assert np.array_equal(a.counts, b.counts)
    assert (a.count, a.sum, a.min, a.max) == (b.count, pytest.approx(b.sum), b.min, b.max)
    assert a.quantile(0.99) == b.quantile(0.99)


def test_values_outside_the_log_range():
    h = LogHistogram()
    h.record([0.0, 2e-7, 5e-7])                      # underflow bin
    assert h.quantile(1.0) == 5e-7 and h.quantile(0.1) == 0.0
    assert abs(h.quantile(0.5) - 2e-7) < LogHistogram.LOW
    h.record([3e5, 4e5])                             # overflow bin: the largest recorded
    assert h.quantile(1.0) == 4e5


def test_nothing_recorded_gives_none():
    h = LogHistogram()
    assert h.quantile(0.5) is None and h.mean() is None
    h.record(np.array([]))
    assert h.count == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.001, [0.1, float("nan")]])
def test_bad_durations_are_refused_and_change_nothing(bad):
    h = LogHistogram()
    h.record(0.1)
    before = h.counts.copy()
    with pytest.raises(ValueError, match="finite and non-negative"):
        h.record(bad)
    assert np.array_equal(h.counts, before) and h.count == 1


def test_bad_quantile_and_weight_refused():
    h = LogHistogram()
    h.record(1.0)
    for q in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="quantile"):
            h.quantile(q)
    with pytest.raises(ValueError, match="weight"):
        h.record(1.0, weight=0)


def test_rank_is_nearest_rank():
    assert LogHistogram.rank(0.99, 100) == 99           # not 100 from 0.99 * 100 = 99.00000000000001
    assert LogHistogram.rank(0.5, 3) == 2
    assert LogHistogram.rank(0.001, 10) == 1
    assert LogHistogram.rank(1.0, 7) == 7


# ---- Metrics ----

def test_status_counts_batches_and_priorities():
    m = Metrics()
    for reason, n in zip(("size", "timeout", "critical", "shutdown"), (5, 2, 1, 1)):
        for _ in range(n):
            m.batch_closed(100, reason)
    for _ in range(4):
        m.batch_queued("high")
    m.batch_queued("low")
    m.queue_wait("high", 0.002)
    m.queue_wait("high", 0.004)
    m.queue_wait("high", 0.006)
    m.proving_time("high", 0.5)
    m.proof_failed("high")
    m.proof_failed()
    s = m.status()
    json.dumps(s)                                          # JSON-able
    b = s["batches"]
    assert b["closed"] == 9
    assert b["closed_by_reason"] == dict.fromkeys(CLOSE_REASONS, 0) | {"size": 5, "critical": 1,
                                                                      "timeout": 2, "shutdown": 1}
    assert b["size_mean"] == 100
    assert b["pending"] == {"critical": 0, "high": 1, "normal": 0, "low": 1}
    assert b["proven"] == 1 and b["failed"] == 2
    assert b["proving"] == 3 - 1 - 2
    high = s["priorities"]["high"]
    assert high["queue_wait_s"]["count"] == 3
    assert high["queue_wait_s"]["mean"] == pytest.approx(0.004)
    assert high["queue_wait_s"]["p99"] == pytest.approx(0.006, rel=LogHistogram.ERROR_BOUND)
    assert high["proving_s"]["mean"] == 0.5 and high["failed"] == 1
    assert s["priorities"]["critical"]["proving_s"] == {"count": 0, "mean": None, "p99": None}


def test_status_lag_and_divergences():
    m = Metrics()
    lags = np.linspace(0.01, 2.0, 1000)
    m.proof_lag(lags)
    m.proof_lag(3.0, count=10)                         # one batch of ten, weighted
    m.divergence(7)
    m.divergence(7)
    m.divergence(2)
    s = m.status()
    all_lags = np.concatenate([lags, np.full(10, 3.0)])
    assert s["ops"]["proven"] == s["lag_s"]["count"] == 1010
    for key, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999)):
        want = exact(all_lags, q)
        assert abs(s["lag_s"][key] - want) <= LogHistogram.ERROR_BOUND * want
    assert s["lag_s"]["max"] == 3.0
    assert s["divergences"] == {"total": 3, "by_symbol": {"2": 1, "7": 2}}


def test_ingest_rate_over_the_last_seconds():
    clock = FakeClock()
    m = Metrics(clock=clock)
    assert m.status()["ops"]["rate_per_s"] == 0.0
    for _ in range(40):                                 # 1000 ops/s for 10 s
        clock.t += 0.25
        m.ops_ingested(250)
    assert m.status()["ops"]["rate_per_s"] == pytest.approx(1000.0)
    for _ in range(20):                                 # then 4000 ops/s for 5 s
        clock.t += 0.25
        m.ops_ingested(1000)
    assert m.status()["ops"]["rate_per_s"] == pytest.approx(4000.0)
    clock.t += 30.0                                     # then nothing
    s = m.status()
    assert s["ops"]["rate_per_s"] == 0.0
    assert s["ops"]["ingested"] == 40 * 250 + 20 * 1000
    assert s["uptime_s"] == pytest.approx(45.0)


def test_ring_and_producer_figures():
    m = Metrics()
    m.ring_depth(123)
    m.ring_full_events(9)
    m.producer_status("dead")
    m.ring_unblocked(2)
    assert m.status()["ring"] == {"depth": 123, "full_events": 9, "producer": "dead",
                                  "unblocked": 2, "stall": None}
    stall = {"position": 77, "seconds": 1.5, "claimer": "checking", "claimer_pid": 0}
    m.ring_stall(stall)
    assert m.status()["ring"]["stall"] == stall
    fams = families(m)
    assert fams["zksidecar_ring_unblocked"].samples[0].value == 2
    assert fams["zksidecar_ring_stalled"].samples[0].value == 1
    assert fams["zksidecar_ring_stall_seconds"].samples[0].value == 1.5
    m.ring_stall(None)
    assert families(m)["zksidecar_ring_stalled"].samples[0].value == 0


def test_producer_states_cover_the_ring():
    ring = pytest.importorskip("zksidecar.ringbuf.ring")
    assert set(ring.PEER_STATUS) <= set(PRODUCER_STATES)


@pytest.mark.parametrize("call", [
    lambda m: m.batch_closed(10, "bored"),
    lambda m: m.batch_queued("urgent"),
    lambda m: m.queue_wait("Critical", 0.1),
    lambda m: m.proving_time("low", -1.0),
    lambda m: m.proof_lag(float("nan")),
    lambda m: m.producer_status("zombie"),
    lambda m: m.ops_ingested(-1),
    lambda m: m.ring_depth(1.5),
    lambda m: m.divergence(-3),
    lambda m: m.proof_failed("meh"),
    lambda m: m.ring_unblocked(-1),
])
def test_bad_updates_are_refused_and_change_nothing(call):
    m = Metrics()
    before = m.exposition()
    with pytest.raises(ValueError):
        call(m)
    after = m.exposition()
    strip = lambda text: [ln for ln in text.decode().splitlines() if "uptime" not in ln and "process_" not in ln]  # noqa: E731
    assert strip(before) == strip(after)


def test_exposition_families():
    m = Metrics()
    m.ops_ingested(1500)
    m.ring_depth(4)
    m.ring_full_events(2)
    m.producer_status("alive")
    m.batch_closed(1, "critical")
    m.batch_closed(1024, "size")
    m.batch_closed(1000, "timeout")
    m.batch_queued("critical")
    m.queue_wait("critical", 0.001)                    # exactly on a bucket bound: le is <=
    m.proving_time("critical", 0.3)
    m.proof_lag(np.array([0.2, 0.4, 7.0]))
    m.divergence(5)
    m.proof_failed("low")
    f = families(m)
    assert f["zksidecar_ops_ingested"].type == "counter"
    assert sample(f, "zksidecar_ops_ingested_total") == 1500
    assert sample(f, "zksidecar_ring_depth") == 4
    assert sample(f, "zksidecar_ring_full_events_total") == 2
    assert sample(f, "zksidecar_producer_status", state="alive") == 1
    assert sample(f, "zksidecar_producer_status", state="dead") == 0
    assert sample(f, "zksidecar_batches_closed_total", reason="size") == 1
    assert sample(f, "zksidecar_batches_closed_total", reason="shutdown") == 0
    assert f["zksidecar_batch_size"].type == "histogram"
    assert sample(f, "zksidecar_batch_size_bucket", le="1.0") == 1
    assert sample(f, "zksidecar_batch_size_bucket", le="512.0") == 1
    assert sample(f, "zksidecar_batch_size_bucket", le="1024.0") == 3
    assert sample(f, "zksidecar_batch_size_sum") == 2025
    assert sample(f, "zksidecar_batch_size_count") == 3
    assert sample(f, "zksidecar_queue_wait_seconds_bucket", priority="critical", le="0.0005") == 0
    assert sample(f, "zksidecar_queue_wait_seconds_bucket", priority="critical", le="0.001") == 1
    assert sample(f, "zksidecar_queue_wait_seconds_count", priority="low") == 0
    assert sample(f, "zksidecar_proving_seconds_bucket", priority="critical", le="0.25") == 0
    assert sample(f, "zksidecar_proving_seconds_bucket", priority="critical", le="0.5") == 1
    assert sample(f, "zksidecar_proof_lag_seconds_bucket", le="0.25") == 1
    assert sample(f, "zksidecar_proof_lag_seconds_bucket", le="5.0") == 2
    assert sample(f, "zksidecar_proof_lag_seconds_bucket", le="+Inf") == 3
    assert sample(f, "zksidecar_proof_lag_seconds_sum") == pytest.approx(7.6)
    assert sample(f, "zksidecar_divergences_total", symbol="5") == 1
    assert sample(f, "zksidecar_proofs_failed_total") == 1
    assert sample(f, "zksidecar_proofs_stored_total", priority="critical") == 1
    assert sample(f, "zksidecar_batches_pending", priority="critical") == 0
    assert sample(f, "zksidecar_batches_queued_total", priority="critical") == 1
    assert sample(f, "zksidecar_uptime_seconds") >= 0
    assert len(TIME_BUCKETS) + 1 == len(
        [s for s in f["zksidecar_proof_lag_seconds"].samples if s.name.endswith("_bucket")])


def test_own_registry_not_the_global_one():
    from prometheus_client import REGISTRY
    a, b = Metrics(), Metrics()
    a.ops_ingested(3)
    assert sample(families(b), "zksidecar_ops_ingested_total") == 0
    assert REGISTRY.get_sample_value("zksidecar_ops_ingested_total") is None


def test_concurrent_updates_lose_nothing():
    m = Metrics()
    n_threads, rounds = 4, 2000
    start = threading.Barrier(n_threads)

    def work(k):
        start.wait()
        for i in range(rounds):
            m.ops_ingested(3)
            m.batch_closed(3, CLOSE_REASONS[i % 4])
            m.queue_wait(PRIORITIES[k], 0.001 * (i % 10 + 1))
            m.proof_lag(np.full(3, 0.01 * (k + 1)))
            if i % 100 == 0:
                m.status()
                m.exposition()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = m.status()
    assert s["ops"]["ingested"] == 3 * n_threads * rounds
    assert s["batches"]["closed"] == n_threads * rounds
    assert s["lag_s"]["count"] == 3 * n_threads * rounds
    for p in PRIORITIES:
        assert s["priorities"][p]["queue_wait_s"]["count"] == rounds
    assert sample(families(m), "zksidecar_batch_size_count") == n_threads * rounds
