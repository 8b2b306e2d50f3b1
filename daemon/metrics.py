"""The daemon's figures: one Metrics object the ingest thread and the event
loop both update, read by the admin endpoint as Prometheus text and as the
status JSON.

Metrics keeps every figure itself (plain integers and numpy arrays under one
lock) and a collector presents them to its own prometheus_client registry at
scrape time, so the Prometheus page and the status JSON are two views of the
same numbers and an update costs one lock and a few additions.  Callers
update per batch of records, never per record.  Figures that live in the
daemon's stages (proofs in flight, disk use, the backlog, ...) are read, not
copied: the service attaches one function (attach()) that both the scrape
and its /status call.  The process_* metrics are prometheus_client's
ProcessCollector on the same registry.

Percentiles.  A Prometheus histogram has a dozen buckets: fine for rates and
alerts, useless for an exact p99.  Each timing therefore also feeds a
LogHistogram: fixed memory, log-spaced bins of ratio 1.01 from 1 us to
1e5 s.  A reported percentile is the nearest-rank value of everything
recorded (the smallest recorded x with at least q of the weight <= x) up to a
relative error of at most sqrt(1.01) - 1 < 0.5 % (ERROR_BOUND), for values
in that range; below 1 us the error is under 0.5 us; above 1e5 s the value
reported is the largest recorded; q = 1 gives the exact maximum.
docs/ADMIN.md lists every metric.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque

import numpy as np
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.metrics_core import (CounterMetricFamily, GaugeMetricFamily,
                                            HistogramMetricFamily)

from .batches import CLOSE_REASONS, REFUSALS
from .priority import LEVELS

PRIORITIES = tuple(p.label for p in LEVELS)
# The ring's peer states (ringbuf.ring.PEER_STATUS; tests/test_metrics.py
# checks they agree) and "unknown" until the daemon has looked.
PRODUCER_STATES = ("unknown", "alive", "none", "dead", "stale", "closed")

# Prometheus buckets: seconds for the timings, powers of two for batch sizes.
TIME_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
SIZE_BUCKETS = tuple(float(1 << k) for k in range(17))   # 1 .. 65536

RATE_WINDOW_S = 5.0      # the ingest rate is measured over about this long
PROVING_RATE_WINDOW_S = 30.0   # the proving rate (operations proven per second) over about this long
_RATE_SAMPLE_S = 0.25    # at most one rate sample this often
BLOCKING_STAGES = ("ingest", "sequencer", "finisher")   # who can hold work a full disk refused
DISK_AREAS = ("journal", "store")


class _Rate:
    """A running count's rate over about `window` seconds: samples (time,
    count) at most every _RATE_SAMPLE_S; the rate is from the newest sample
    at least `window` old (or the oldest there is) to now.  Not locked:
    Metrics holds its lock around every use."""

    def __init__(self, start: float, window: float):
        self.window = window
        self.samples: deque[tuple[float, int]] = deque([(start, 0)], maxlen=max(16, int(window / _RATE_SAMPLE_S) + 16))

    def sample(self, now: float, count: int) -> None:
        if now - self.samples[-1][0] >= _RATE_SAMPLE_S:
            self.samples.append((now, count))

    def rate(self, now: float, count: int) -> float:
        self.sample(now, count)
        base_t, base_n = self.samples[0]
        for t, n in self.samples:
            if now - t < self.window:
                break
            base_t, base_n = t, n
        return (count - base_n) / (now - base_t) if now > base_t else 0.0


class LogHistogram:
    """Counts of non-negative values in log-spaced bins (ratio `GROWTH`) from
    LOW to HIGH, plus an underflow bin [0, LOW) and an overflow bin [HIGH, inf).
    Fixed memory (2,548 int64 counts); recording is vectorised and weighted.
    Not locked: Metrics holds its lock around every use."""

    LOW = 1e-6
    HIGH = 1e5
    GROWTH = 1.01
    ERROR_BOUND = math.sqrt(GROWTH) - 1.0   # relative error of a quantile in [LOW, HIGH)

    _LOG_G = math.log(GROWTH)
    _N_LOG = math.ceil(math.log(HIGH / LOW) / _LOG_G)   # log-spaced bins

    def __init__(self):
        self.counts = np.zeros(self._N_LOG + 2, dtype=np.int64)
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def record(self, values, weight: int = 1) -> None:
        """Record each of `values` (a number or an array) `weight` times."""
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.size == 0:
            return
        if weight < 1 or int(weight) != weight:
            raise ValueError(f"weight must be a positive integer, not {weight!r}")
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            bad = v[~np.isfinite(v) | (v < 0)][0]
            raise ValueError(f"a duration must be finite and non-negative, not {bad!r}")
        weight = int(weight)
        idx = self.bins(v)
        if v.size == 1:
            self.counts[idx[0]] += weight
        else:
            self.counts += np.bincount(idx, minlength=self.counts.size) * weight
        self.count += v.size * weight
        self.sum += float(v.sum()) * weight
        self.min = min(self.min, float(v.min()))
        self.max = max(self.max, float(v.max()))

    @classmethod
    def bins(cls, v: np.ndarray) -> np.ndarray:
        """Bin index of each value: 0 below LOW, 1 + floor(log_G(v / LOW)) up
        to the overflow bin."""
        out = np.zeros(v.shape, dtype=np.int64)
        above = v >= cls.LOW
        k = np.floor(np.log(v[above] / cls.LOW) / cls._LOG_G).astype(np.int64) + 1
        out[above] = np.minimum(k, cls._N_LOG + 1)
        return out

    @staticmethod
    def rank(q: float, n: int) -> int:
        """The nearest rank of quantile q among n values (1-based): ceil(q n),
        at least 1.  Rounding q n to 6 places first keeps 0.99 * 100 at 99."""
        return max(1, min(n, math.ceil(round(q * n, 6))))

    def quantile(self, q: float) -> float | None:
        """The nearest-rank q-quantile of everything recorded, within
        ERROR_BOUND (relative); None when nothing was recorded."""
        if not 0.0 < q <= 1.0:
            raise ValueError(f"a quantile is in (0, 1], not {q!r}")
        if self.count == 0:
            return None
        rank = self.rank(q, self.count)
        if rank == self.count:                       # the extremes are known exactly
            return self.max
        if rank == 1:
            return self.min
        k = int(np.searchsorted(np.cumsum(self.counts), rank))
        if k == 0:
            value = self.LOW / 2                     # below LOW: off by < LOW / 2
        elif k == self._N_LOG + 1:
            value = self.max                         # above HIGH: the largest seen
        else:                                        # the bin's geometric middle
            value = self.LOW * self.GROWTH ** (k - 0.5)
        return min(max(value, self.min), self.max)   # the true value lies in [min, max]

    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    def copy(self) -> LogHistogram:
        h = LogHistogram.__new__(LogHistogram)
        h.counts, h.count, h.sum, h.min, h.max = self.counts.copy(), self.count, self.sum, self.min, self.max
        return h


class Buckets:
    """Exact counts per Prometheus bucket (cumulative at exposition), with the
    sum and count a histogram family needs."""

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self.counts = np.zeros(len(bounds) + 1, dtype=np.int64)   # last: above every bound
        self.sum = 0.0

    def record(self, values, weight: int = 1) -> None:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        # side="left": a value equal to a bound belongs to that bound (le = <=)
        idx = np.searchsorted(self.bounds, v, side="left")
        self.counts += np.bincount(idx, minlength=self.counts.size) * int(weight)
        self.sum += float(v.sum()) * int(weight)

    def family_rows(self) -> list[tuple[str, float]]:
        cumulative = np.cumsum(self.counts)
        rows = [(_le(b), float(c)) for b, c in zip(self.bounds, cumulative[:-1])]
        rows.append(("+Inf", float(cumulative[-1])))
        return rows

    def copy(self) -> Buckets:
        b = Buckets.__new__(Buckets)
        b.bounds, b.counts, b.sum = self.bounds, self.counts.copy(), self.sum
        return b


def _le(bound: float) -> str:
    return repr(float(bound))


class _Timing:
    """One timing: Prometheus buckets for the scrape, a LogHistogram for the
    percentiles."""

    def __init__(self):
        self.buckets = Buckets(TIME_BUCKETS)
        self.fine = LogHistogram()

    def record(self, values, weight: int = 1) -> None:
        self.fine.record(values, weight)      # validates first: a bad value changes nothing
        self.buckets.record(values, weight)

    def copy(self) -> _Timing:
        t = _Timing.__new__(_Timing)
        t.buckets, t.fine = self.buckets.copy(), self.fine.copy()
        return t


class PoolFigures:
    """What a proof pool counts of its own jobs (WorkerPool and DaskPool keep
    one each): jobs failed because the worker running them died, jobs handed
    to a worker again (lost with the Dask scheduler), and each answered job's
    round trip (handed to a worker -> its answer back in the daemon: the
    proving, plus the pipe or the cluster's queue and network).  The pool's
    status() carries figures() beside its live counts; /status shows them as
    pool_status() makes them JSON, /metrics as the zksidecar_pool_* families
    (_live_families), so both read one source."""

    def __init__(self):
        self._lock = threading.Lock()
        self._crashed = 0
        self._resubmitted = 0
        self._round_trip = _Timing()

    def job_crashed(self) -> None:
        with self._lock:
            self._crashed += 1

    def job_resubmitted(self) -> None:
        with self._lock:
            self._resubmitted += 1

    def job_answered(self, round_trip_s: float) -> None:
        with self._lock:
            self._round_trip.record(max(0.0, round_trip_s))

    def figures(self) -> dict:
        """{crashed, resubmitted, round_trip} now (round_trip: a copy of the timing)."""
        with self._lock:
            return {"crashed": self._crashed, "resubmitted": self._resubmitted,
                    "round_trip": self._round_trip.copy()}


def pool_status(pool: dict) -> dict:
    """A pool's status() (ProofPool.status: its live counts and figures())
    as /status shows it: the round trip as {count, mean, p50, p99, max}."""
    out = {k: v for k, v in pool.items() if k != "round_trip"}
    fine = pool["round_trip"].fine
    out["round_trip_s"] = {"count": fine.count, "mean": fine.mean(), "p50": fine.quantile(0.5),
                           "p99": fine.quantile(0.99), "max": fine.max if fine.count else None}
    return out


def _check_priority(priority: str) -> str:
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {PRIORITIES}, not {priority!r}")
    return priority


def _check_count(name: str, n: int) -> int:
    if int(n) != n or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {n!r}")
    return int(n)


class Metrics:
    """Every figure the daemon reports.  Thread-safe: each update takes one
    lock; exposition() and status() copy under the lock and format outside it.

    `clock` (seconds, monotonic) is for tests that drive the ingest rate."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._ops = 0
        self._ingest_rate = _Rate(self._start, RATE_WINDOW_S)
        self._proving_rate = _Rate(self._start, PROVING_RATE_WINDOW_S)
        self._ring_depth = 0
        self._ring_full = 0
        self._ring_unblocked = 0
        self._ring_stall: dict | None = None
        self._live = None
        self._producer = "unknown"
        self._closed = dict.fromkeys(CLOSE_REASONS, 0)
        self._batch_sizes = Buckets(SIZE_BUCKETS)
        self._queued = dict.fromkeys(PRIORITIES, 0)
        self._failed = dict.fromkeys(PRIORITIES, 0)
        self._failed_unattributed = 0
        self._taken_untimed = dict.fromkeys(PRIORITIES, 0)   # jobs whose worker died with them
        self._queue_wait = {p: _Timing() for p in PRIORITIES}
        self._proving = {p: _Timing() for p in PRIORITIES}
        self._lag = _Timing()
        self._divergences: dict[int, int] = {}
        self._refused = dict.fromkeys(REFUSALS, 0)
        self._breaks: dict[int, int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        # process_resident_memory_bytes, process_cpu_seconds_total, process_start_time_seconds, ...
        # of this process (prometheus_client reads /proc; absent where there is none)
        ProcessCollector(registry=self.registry)

    def attach(self, live) -> None:
        """`live()` returns the daemon's own figures, read from its stages at
        the moment of asking (Service.live(): proofs in flight, disk, backlog,
        ...).  /metrics calls it per scrape and /status reads the same
        function, so the two never disagree; keys are in docs/ADMIN.md."""
        self._live = live

    # ---- updates (ingest thread and event loop) ----

    def ops_ingested(self, n: int) -> None:
        """`n` more operations were drained from the ring into the journal."""
        n = _check_count("ops ingested", n)
        now = self._clock()
        with self._lock:
            self._ops += n
            self._ingest_rate.sample(now, self._ops)

    def ring_depth(self, depth: int) -> None:
        """Records waiting in the ops ring when the ingest thread last looked."""
        depth = _check_count("ring depth", depth)
        with self._lock:
            self._ring_depth = depth

    def ring_full_events(self, total: int) -> None:
        """The ring's own count of publishes refused because it was full."""
        total = _check_count("ring full events", total)
        with self._lock:
            self._ring_full = total

    def ring_unblocked(self, total: int) -> None:
        """The ring's own count of positions skipped because their claimer
        died between claim and commit (ringbuf Consumer.unblocked)."""
        total = _check_count("ring unblocked", total)
        with self._lock:
            self._ring_unblocked = total

    def ring_stall(self, stall: dict | None) -> None:
        """The claimed, uncommitted position holding the consumer up, as
        ringbuf Consumer.stall gives it (None: not stalled)."""
        with self._lock:
            self._ring_stall = dict(stall) if stall else None

    def batch_closed(self, size: int, reason: str) -> None:
        """The batcher closed a batch of `size` operations, for `reason`."""
        size = _check_count("batch size", size)
        if reason not in CLOSE_REASONS:
            raise ValueError(f"close reason must be one of {CLOSE_REASONS}, not {reason!r}")
        with self._lock:
            self._closed[reason] += 1
            self._batch_sizes.record(size)

    def batch_queued(self, priority: str) -> None:
        """A batch's proof job entered the priority queue (including a batch
        re-queued on restart).  Pending = queued - taken (queue_wait calls)."""
        _check_priority(priority)
        with self._lock:
            self._queued[priority] += 1

    def queue_wait(self, priority: str, seconds: float) -> None:
        """A worker took a job after it waited `seconds` in the queue."""
        _check_priority(priority)
        with self._lock:
            self._queue_wait[priority].record(seconds)

    def proving_time(self, priority: str, seconds: float) -> None:
        """A proof was made and stored in `seconds`: one proven batch."""
        _check_priority(priority)
        with self._lock:
            self._proving[priority].record(seconds)

    def proof_lag(self, seconds, count: int = 1) -> None:
        """Operation seen -> its proof stored: one value per operation (a
        number or an array), or one value for a whole batch weighted by its
        `count` operations."""
        now = self._clock()
        with self._lock:
            self._lag.record(seconds, count)
            self._proving_rate.sample(now, self._lag.fine.count)

    def divergence(self, symbol: int) -> None:
        """The engine's claimed outcome differed from the rules on `symbol`."""
        symbol = _check_count("symbol", symbol)
        with self._lock:
            self._divergences[symbol] = self._divergences.get(symbol, 0) + 1

    def job_finished(self, priority: str, waited_s: float | None, proving_s: float | None,
                     lag_s=None) -> None:
        """A proof job's end, whoever ran it: it left the queue after
        `waited_s` (None when unknown: its worker died with it), and was
        proven and stored in `proving_s` seconds (None: it failed); `lag_s`,
        for a proven job, is each of its operations' time from seen to
        proven (an array)."""
        if waited_s is None:
            _check_priority(priority)
            with self._lock:
                self._taken_untimed[priority] += 1
        else:
            self.queue_wait(priority, waited_s)
        if proving_s is None:
            self.proof_failed(priority)
            return
        self.proving_time(priority, proving_s)
        if lag_s is not None:
            self.proof_lag(lag_s)

    def proof_failed(self, priority: str | None = None) -> None:
        """A proof job failed (its error is logged by the caller)."""
        if priority is not None:
            _check_priority(priority)
        with self._lock:
            if priority is None:
                self._failed_unattributed += 1
            else:
                self._failed[priority] += 1

    def records_refused(self, reason: str, n: int = 1) -> None:
        """`n` records were not applied, for `reason` (daemon/batches.py REFUSALS)."""
        if reason not in REFUSALS:
            raise ValueError(f"refusal reason must be one of {REFUSALS}, not {reason!r}")
        n = _check_count("refused records", n)
        with self._lock:
            self._refused[reason] += n

    def stream_break(self, symbol: int) -> None:
        """`symbol`'s stream resumed past a gap (a break in its chain)."""
        symbol = _check_count("symbol", symbol)
        with self._lock:
            self._breaks[symbol] = self._breaks.get(symbol, 0) + 1

    def producer_status(self, status: str) -> None:
        """The ops ring's producer as the ring reports it (ringbuf.ring.PEER_STATUS)."""
        if status not in PRODUCER_STATES:
            raise ValueError(f"producer status must be one of {PRODUCER_STATES}, not {status!r}")
        with self._lock:
            self._producer = status

    # ---- reading ----

    def proving_rate(self) -> float:
        """Operations proven per second over about PROVING_RATE_WINDOW_S."""
        now = self._clock()
        with self._lock:
            return self._proving_rate.rate(now, self._lag.fine.count)

    def backlog_seconds(self, ops: int) -> float | None:
        """Seconds of proving `ops` operations take at the current proving
        rate; None when nothing was proven in the window (no rate to go by),
        0.0 for no backlog."""
        if ops == 0:
            return 0.0
        rate = self.proving_rate()
        return ops / rate if rate > 0 else None

    def live(self) -> dict:
        """The attached daemon's figures now ({} when none is attached)."""
        return self._live() if self._live is not None else {}

    def _snapshot(self) -> dict:
        now = self._clock()
        with self._lock:
            return {
                "uptime": now - self._start, "ops": self._ops,
                "rate": self._ingest_rate.rate(now, self._ops),
                "proving_rate": self._proving_rate.rate(now, self._lag.fine.count),
                "ring_depth": self._ring_depth, "ring_full": self._ring_full,
                "ring_unblocked": self._ring_unblocked,
                "ring_stall": dict(self._ring_stall) if self._ring_stall else None,
                "producer": self._producer, "closed": dict(self._closed),
                "batch_sizes": self._batch_sizes.copy(), "queued": dict(self._queued),
                "failed": dict(self._failed), "failed_other": self._failed_unattributed,
                "taken_untimed": dict(self._taken_untimed),
                "queue_wait": {p: t.copy() for p, t in self._queue_wait.items()},
                "proving": {p: t.copy() for p, t in self._proving.items()},
                "lag": self._lag.copy(), "divergences": dict(self._divergences),
                "refused": dict(self._refused), "breaks": dict(self._breaks),
            }

    def status(self) -> dict:
        """A JSON-able snapshot (keys in docs/ADMIN.md).  Times in seconds;
        a percentile or mean of nothing is None."""
        s = self._snapshot()
        taken = {p: s["queue_wait"][p].fine.count + s["taken_untimed"][p] for p in PRIORITIES}
        proven = {p: s["proving"][p].fine.count for p in PRIORITIES}
        failed = sum(s["failed"].values()) + s["failed_other"]
        sizes = s["batch_sizes"]
        n_closed = sum(s["closed"].values())
        lag = s["lag"].fine
        return {
            "uptime_s": s["uptime"],
            "ops": {"ingested": s["ops"], "rate_per_s": s["rate"], "proven": lag.count,
                    "proven_rate_per_s": s["proving_rate"]},
            "ring": {"depth": s["ring_depth"], "full_events": s["ring_full"],
                     "producer": s["producer"], "unblocked": s["ring_unblocked"],
                     "stall": s["ring_stall"]},
            "batches": {
                "closed": n_closed,
                "closed_by_reason": s["closed"],
                "size_mean": sizes.sum / n_closed if n_closed else None,
                "pending": {p: s["queued"][p] - taken[p] for p in PRIORITIES},
                "proving": sum(taken.values()) - sum(proven.values()) - failed,
                "proven": sum(proven.values()),
                "failed": failed,
            },
            "lag_s": {"count": lag.count, "mean": lag.mean(), "p50": lag.quantile(0.5),
                      "p99": lag.quantile(0.99), "p999": lag.quantile(0.999),
                      "max": lag.max if lag.count else None},
            "divergences": {"total": sum(s["divergences"].values()),
                            "by_symbol": {str(k): v for k, v in sorted(s["divergences"].items())}},
            "refused": {"total": sum(s["refused"].values()), "by_reason": s["refused"]},
            "breaks": {"total": sum(s["breaks"].values()),
                       "by_symbol": {str(k): v for k, v in sorted(s["breaks"].items())}},
            "priorities": {p: {"pending": s["queued"][p] - taken[p], "proven": proven[p],
                               "failed": s["failed"][p],
                               "queue_wait_s": _summary(s["queue_wait"][p].fine),
                               "proving_s": _summary(s["proving"][p].fine)}
                           for p in PRIORITIES},
            "percentile_error_bound": LogHistogram.ERROR_BOUND,
        }

    def exposition(self) -> bytes:
        """The registry in Prometheus text format (version 0.0.4)."""
        return generate_latest(self.registry)


def _summary(h: LogHistogram) -> dict:
    return {"count": h.count, "mean": h.mean(), "p99": h.quantile(0.99)}


class _Collector:
    """Presents a Metrics snapshot as Prometheus families at scrape time."""

    def __init__(self, metrics: Metrics):
        self._metrics = metrics

    def collect(self):
        s = self._metrics._snapshot()
        yield GaugeMetricFamily("zksidecar_uptime_seconds", "Seconds since the daemon started.",
                                value=s["uptime"])
        yield CounterMetricFamily("zksidecar_ops_ingested", "Operations drained from the ops ring "
                                  "into the journal.", value=s["ops"])
        yield GaugeMetricFamily("zksidecar_ring_depth", "Records waiting in the ops ring.",
                                value=s["ring_depth"])
        yield CounterMetricFamily("zksidecar_ring_full_events", "Publishes the ops ring refused "
                                  "because it was full (the ring's own count).", value=s["ring_full"])
        yield CounterMetricFamily("zksidecar_ring_unblocked", "Ops ring positions skipped because "
                                  "their claimer died between claim and commit (the ring's own "
                                  "count).", value=s["ring_unblocked"])
        stall = s["ring_stall"]
        yield GaugeMetricFamily("zksidecar_ring_stalled", "1 while the consumer is held up by a "
                                "claimed, uncommitted position, else 0.", value=1.0 if stall else 0.0)
        yield GaugeMetricFamily("zksidecar_ring_stall_seconds", "How long the consumer has been "
                                "held up by a claimed, uncommitted position (0: not stalled).",
                                value=stall["seconds"] if stall else 0.0)
        producer = GaugeMetricFamily("zksidecar_producer_status", "The ops ring's producer: 1 for "
                                     "its current state, 0 for the others.", labels=["state"])
        for state in PRODUCER_STATES:
            producer.add_metric([state], 1.0 if state == s["producer"] else 0.0)
        yield producer

        closed = CounterMetricFamily("zksidecar_batches_closed", "Batches closed by the batcher.",
                                     labels=["reason"])
        for reason, n in s["closed"].items():
            closed.add_metric([reason], n)
        yield closed
        sizes = s["batch_sizes"]
        yield HistogramMetricFamily("zksidecar_batch_size", "Operations per closed batch.",
                                    buckets=sizes.family_rows(), sum_value=sizes.sum)

        queued = CounterMetricFamily("zksidecar_batches_queued", "Proof jobs put on the priority "
                                     "queue.", labels=["priority"])
        pending = GaugeMetricFamily("zksidecar_batches_pending", "Proof jobs waiting in the "
                                    "priority queue.", labels=["priority"])
        proven = CounterMetricFamily("zksidecar_proofs_stored", "Batch proofs made and stored.",
                                     labels=["priority"])
        for p in PRIORITIES:
            queued.add_metric([p], s["queued"][p])
            pending.add_metric([p], s["queued"][p] - s["queue_wait"][p].fine.count
                               - s["taken_untimed"][p])
            proven.add_metric([p], s["proving"][p].fine.count)
        yield queued
        yield pending
        yield proven
        yield CounterMetricFamily("zksidecar_proofs_failed", "Proof jobs that failed.",
                                  value=sum(s["failed"].values()) + s["failed_other"])

        for name, doc, key in (("zksidecar_queue_wait_seconds", "Time a proof job waited in the "
                                "priority queue.", "queue_wait"),
                               ("zksidecar_proving_seconds", "Time to prove and store a batch.",
                                "proving")):
            family = HistogramMetricFamily(name, doc, labels=["priority"])
            for p in PRIORITIES:
                b = s[key][p].buckets
                family.add_metric([p], b.family_rows(), b.sum)
            yield family
        lag = s["lag"].buckets
        yield HistogramMetricFamily("zksidecar_proof_lag_seconds", "Operation seen by the daemon "
                                    "-> its batch proof stored, per operation.",
                                    buckets=lag.family_rows(), sum_value=lag.sum)

        div = CounterMetricFamily("zksidecar_divergences", "Operations whose engine-claimed "
                                  "outcome differed from the rules.", labels=["symbol"])
        for symbol, n in sorted(s["divergences"].items()):
            div.add_metric([str(symbol)], n)
        yield div
        refused = CounterMetricFamily("zksidecar_records_refused", "Records not applied (kept in "
                                      "the journal, in no proof), by reason.", labels=["reason"])
        for reason, n in s["refused"].items():
            refused.add_metric([reason], n)
        yield refused
        yield GaugeMetricFamily("zksidecar_proven_ops_per_second", "Operations proven per second, "
                                f"over about the last {PROVING_RATE_WINDOW_S:g} s.",
                                value=s["proving_rate"])
        breaks = CounterMetricFamily("zksidecar_stream_breaks", "Times a symbol's stream resumed "
                                     "past operations that never arrived (a break in its chain "
                                     "of proofs).", labels=["symbol"])
        for symbol, n in sorted(s["breaks"].items()):
            breaks.add_metric([str(symbol)], n)
        yield breaks
        yield from _live_families(self._metrics.live(), self._metrics)


def _live_families(live: dict, metrics: Metrics):
    """The daemon's own figures (Service.live()) as metric families; a key
    the daemon does not give (a bare Metrics in a test) gives no family."""
    if "proofs_in_flight" in live:
        yield GaugeMetricFamily("zksidecar_proofs_in_flight", "Batches whose proofs are not stored "
                                "yet: waiting for a journal mark, queued, proving, or being stored.",
                                value=live["proofs_in_flight"])
        yield GaugeMetricFamily("zksidecar_proofs_in_flight_limit", "batch.max_pending: above "
                                "this many proofs in flight the daemon is behind.",
                                value=live["max_pending"])
        yield GaugeMetricFamily("zksidecar_behind", "1 while more proofs are in flight than "
                                "batch.max_pending, else 0.", value=1.0 if live["behind"] else 0.0)
    if "completions_waiting" in live:
        yield GaugeMetricFamily("zksidecar_completions_waiting", "Completions the engine's full "
                                "completion ring could not take yet.",
                                value=live["completions_waiting"])
        yield CounterMetricFamily("zksidecar_completions_dropped", "Completions given up because "
                                  "the engine left its completion ring full past the backlog "
                                  "bound.", value=live["completions_dropped"])
    if "ingest_healthy" in live:
        yield GaugeMetricFamily("zksidecar_ingest_healthy", "1 while the ingest loop is turning, "
                                "else 0.", value=1.0 if live["ingest_healthy"] else 0.0)
    if "blocked" in live:
        blocked = GaugeMetricFamily("zksidecar_blocked", "1 while the stage holds work a full "
                                    "disk refused, else 0.", labels=["stage"])
        for stage in BLOCKING_STAGES:
            blocked.add_metric([stage], 1.0 if live["blocked"].get(stage) else 0.0)
        yield blocked
    if "disk" in live:
        families = {
            "bytes": GaugeMetricFamily("zksidecar_disk_bytes", "Bytes the journal or the proof "
                                       "store occupies (its files).", labels=["area"]),
            "fs_used_bytes": GaugeMetricFamily("zksidecar_filesystem_used_bytes", "Bytes used on "
                                               "the filesystem holding the journal or the store.",
                                               labels=["area"]),
            "fs_free_bytes": GaugeMetricFamily("zksidecar_filesystem_free_bytes", "Bytes free "
                                               "for the daemon (f_bavail) on the filesystem "
                                               "holding the journal or the store.", labels=["area"]),
            "fs_size_bytes": GaugeMetricFamily("zksidecar_filesystem_size_bytes", "Size in bytes "
                                               "of the filesystem holding the journal or the "
                                               "store.", labels=["area"]),
        }
        for area in DISK_AREAS:
            figures = live["disk"].get(area) or {}
            for key, family in families.items():
                if figures.get(key) is not None:
                    family.add_metric([area], figures[key])
        yield from families.values()
    if "backlog" in live:
        b = live["backlog"]
        ops = GaugeMetricFamily("zksidecar_backlog_ops", "Operations waiting for a proof: in "
                                "closed batches whose proof job is queued or running, and in "
                                "the open batches.", labels=["where"])
        ops.add_metric(["closed"], b["closed_ops"])
        ops.add_metric(["open"], b["open_ops"])
        yield ops
        seconds = GaugeMetricFamily("zksidecar_backlog_seconds", "Seconds of proving the backlog "
                                    "takes at the current proving rate (absent while nothing "
                                    "was proven lately: no rate to go by).")
        if b.get("seconds") is not None:
            seconds.add_metric([], b["seconds"])
        yield seconds
        if "queued_on_disk" in b:
            batches = GaugeMetricFamily("zksidecar_backlog_batches", "Closed batches waiting for "
                                        "a proof: queued with their witness in memory, queued as "
                                        "their journal mark (rebuilt when proven: on disk), or "
                                        "handed to the proof pool.", labels=["where"])
            batches.add_metric(["memory"], b["queued_in_memory"])
            batches.add_metric(["disk"], b["queued_on_disk"])
            batches.add_metric(["pool"], b["in_pool"])
            yield batches
            yield GaugeMetricFamily("zksidecar_backlog_memory_bytes", "Bytes of witness the "
                                    "backlog's queued batches hold (at most its budget, "
                                    "limits.memory_mib / 8).", value=b["memory_bytes"])
            yield CounterMetricFamily("zksidecar_backlog_rebuilt", "Batches rebuilt from the "
                                      "journal to be proven.", value=b["rebuilt"])
    if "snapshots" in live:
        snap = live["snapshots"]
        yield CounterMetricFamily("zksidecar_snapshots_written", "Snapshots of the shadow books "
                                  "written at checkpoints.", value=snap["written"])
        yield CounterMetricFamily("zksidecar_snapshots_failed", "Checkpoints whose snapshot "
                                  "could not be written (a full disk); the next one tries "
                                  "again.", value=snap["failed"])
    if "pool" in live:
        yield from _pool_families(live["pool"])
    if live.get("tree_resident_bytes") is not None:
        yield GaugeMetricFamily("zksidecar_tree_resident_memory_bytes", "Resident memory of the "
                                "daemon and its child processes (the proof workers), in bytes.",
                                value=live["tree_resident_bytes"])


def _pool_families(pool: dict):
    """The proof pool's status() (WorkerPool or DaskPool: one shape) as
    metric families; the cluster's own (scheduler, connected) only for a
    pool that has them."""
    info = GaugeMetricFamily("zksidecar_pool_info", "The proof pool: its backend (local or "
                             "dask) and, for dask, the scheduler's address; always 1.",
                             labels=["backend", "scheduler"])
    info.add_metric([pool["backend"], pool.get("scheduler", "")], 1.0)
    yield info
    if "connected" in pool:
        yield GaugeMetricFamily("zksidecar_pool_connected", "1 while the daemon is connected to "
                                "the Dask scheduler, else 0.", value=1.0 if pool["connected"] else 0.0)
    yield GaugeMetricFamily("zksidecar_pool_workers", "Proof workers able to take jobs: local "
                            "worker processes started and warmed, or the Dask workers "
                            "connected to the scheduler (0 while not connected).",
                            value=pool["workers"])
    yield GaugeMetricFamily("zksidecar_pool_threads", "Jobs the workers can prove at once: one "
                            "per local worker, the Dask workers' threads.", value=pool["threads"])
    yield GaugeMetricFamily("zksidecar_pool_jobs_in_flight", "Proof jobs handed to a worker (a "
                            "local process, or a task on the cluster) and not answered yet.",
                            value=pool["in_flight"])
    yield GaugeMetricFamily("zksidecar_pool_jobs_queued", "Proof jobs in the pool's priority "
                            "queue, not handed to a worker yet.", value=pool["queued"])
    yield CounterMetricFamily("zksidecar_pool_jobs_crashed", "Proof jobs failed because the "
                              "worker running them died (Dask: every worker it ran on).",
                              value=pool["crashed"])
    yield CounterMetricFamily("zksidecar_pool_jobs_resubmitted", "Proof jobs handed to a worker "
                              "again: Dask tasks lost with the scheduler.",
                              value=pool["resubmitted"])
    rt = pool["round_trip"].buckets
    yield HistogramMetricFamily("zksidecar_pool_round_trip_seconds", "A proof job handed to a "
                                "worker -> its answer back in the daemon.",
                                buckets=rt.family_rows(), sum_value=rt.sum)
