"""The `ring` benchmark suite (run by `zksidecar bench ring`).

Every figure crosses a process boundary, producer and consumer pinned to
different cores, and the Python user's alternatives (multiprocessing.Queue,
faster_fifo, posix_ipc.MessageQueue) carry the same stream of 64-byte records
in the same run.  The C figures come from C loops in bindings/ring_bench.c (a
Python loop would measure Python); the consumer busy-spins throughout.
"""
from __future__ import annotations

import multiprocessing
import os
from contextlib import contextmanager
import time
import uuid

import numpy as np

from zksidecar.ringbuf import layout
from zksidecar.ringbuf.ring import Producer, create, unlink
from zksidecar.ringbuf.ring import ffi as ring_ffi, lib as ring_lib

from .. import forks
from .._ring_bench import ffi, lib

C_RECORDS = 50_000_000      # sustained C publish
ROUND_TRIPS = 1_000_000     # ping-pong, after WARMUP more
WARMUP = 20_000
PY_BATCH_RECORDS = 20_000_000
PY_BATCH = 8192
PY_SINGLE_RECORDS = 300_000
PEER_RECORDS = 100_000      # through each peer queue

_fork = multiprocessing.get_context("fork")


def _cores() -> tuple[int, int]:
    """(producer core, consumer core): two different cores if there are two."""
    n = os.cpu_count() or 1
    return (0, n - 1) if n > 1 else (0, 0)


def _name(tag: str) -> str:
    return f"zkbench-{tag}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _in_child(core: int, fn, *args):
    """Run fn(*args) in a forked process pinned to `core`; returns (process,
    connection that receives fn's result)."""
    parent, child = _fork.Pipe()

    def main():
        os.sched_setaffinity(0, {core})
        child.send(fn(*args))

    proc = _fork.Process(target=main)
    with forks.sigterm_held():
        proc.start()
    return proc, parent


def _join(proc, conn):
    result = conn.recv()
    proc.join()
    return result


@contextmanager
def _on_core(core: int):
    """Run this process on `core` for a block, then put its affinity back (the
    C loops below pin the calling thread when given a core; the next
    measurement must not inherit that)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _checked(rc: int, what: str) -> int:
    if rc < 0:
        raise RuntimeError(f"{what}: {ring_ffi.string(ring_lib.zkring_strerror(rc)).decode()}")
    return rc


def _c_stream(capacity: int, batch: int) -> tuple[float, float]:
    """(producer ns, consumer ns) per record over C_RECORDS, C both sides."""
    prod_core, cons_core = _cores()
    name = _name("c")
    create(name, capacity)
    try:
        proc, conn = _in_child(prod_core, lambda: lib.zkr_bench_produce(name.encode(), C_RECORDS,
                                                                         batch, -1))
        with _on_core(cons_core):
            consumed = _checked(lib.zkr_bench_consume(name.encode(), C_RECORDS, -1), "consume")
        produced = _checked(_join(proc, conn), "produce")
    finally:
        unlink(name, missing_ok=True)
    return produced / C_RECORDS, consumed / C_RECORDS


def c_publish(capacity: int = 1 << 14) -> dict:
    """C producer -> C consumer, sustained: try_publish of one record at a
    time (the issue's figure), and claim/commit of 64 records in place."""
    single, consume = _c_stream(capacity, 1)
    batch64, _ = _c_stream(capacity, 64)
    return {"c_publish_ns": single, "c_consume_ns": consume,
            "c_publish_claim64_ns": batch64, "c_capacity": capacity}


def one_way_latency() -> tuple[dict, np.ndarray]:
    """Ping-pong over two SPSC rings; one way = half a round trip."""
    prod_core, cons_core = _cores()
    ping, pong = _name("ping"), _name("pong")
    create(ping, 1024)
    create(pong, 1024)
    rounds = ROUND_TRIPS + WARMUP
    rtt = np.zeros(rounds, np.int64)
    try:
        proc, conn = _in_child(prod_core, lambda: lib.zkr_bench_echo(ping.encode(), pong.encode(),
                                                                      rounds, -1))
        with _on_core(cons_core):
            _checked(lib.zkr_bench_ping(ping.encode(), pong.encode(), rounds, -1,
                                        ffi.from_buffer("int64_t[]", rtt)), "ping")
        _checked(_join(proc, conn), "echo")
    finally:
        unlink(ping, missing_ok=True)
        unlink(pong, missing_ok=True)
    one_way = rtt[WARMUP:] / 2.0
    fig: dict = {"round_trips": ROUND_TRIPS}
    try:
        from hdrh.histogram import HdrHistogram

        hist = HdrHistogram(1, 10_000_000_000, 3)
        for v in np.maximum(one_way, 1).astype(np.int64).tolist():
            hist.record_value(v)
        for key, pct in (("p50", 50), ("p99", 99), ("p999", 99.9)):
            fig[f"one_way_ns_{key}"] = hist.get_value_at_percentile(pct)
        fig["one_way_ns_max"] = hist.get_max_value()
        fig["latency_histogram"] = "HdrHistogram (hdrhistogram package, 3 significant digits)"
    except ImportError as exc:
        for key, pct in (("p50", 50), ("p99", 99), ("p999", 99.9)):
            fig[f"one_way_ns_{key}"] = float(np.percentile(one_way, pct))
        fig["one_way_ns_max"] = float(one_way.max())
        fig["latency_histogram"] = f"exact numpy percentiles (hdrhistogram unavailable: {exc})"
    return fig, one_way


def _c_drain(name: str, total: int):
    return lambda: lib.zkr_bench_consume(name.encode(), total, -1)


def py_batch_publish() -> float:
    """numpy batches through Producer.publish into a C consumer; records/s."""
    prod_core, cons_core = _cores()
    name = _name("pyb")
    create(name, 1 << 16)
    batch = np.zeros((PY_BATCH, 8), np.uint64)  # 64-byte records; word 0 = position
    step = np.arange(PY_BATCH, dtype=np.uint64)
    try:
        proc, conn = _in_child(cons_core, _c_drain(name, PY_BATCH_RECORDS))
        with Producer(name) as p:
            t0 = time.perf_counter()
            for base in range(0, PY_BATCH_RECORDS, PY_BATCH):
                batch[:, 0] = step + np.uint64(base)
                raw = batch.view(np.uint8)
                done = 0
                while done < PY_BATCH:
                    done += p.publish(raw[done:])
            _checked(_join(proc, conn), "consume")
            elapsed = time.perf_counter() - t0
    finally:
        unlink(name, missing_ok=True)
    return PY_BATCH_RECORDS / elapsed


def _record_bytes(n: int) -> list[bytes]:
    recs = np.zeros((n, 8), np.uint64)
    recs[:, 0] = np.arange(n, dtype=np.uint64)
    return [r.tobytes() for r in recs]


def py_single_publish() -> float:
    """Producer.try_publish of one bytes record at a time; ns per record."""
    prod_core, cons_core = _cores()
    name = _name("pys")
    create(name, 1 << 16)
    recs = _record_bytes(PY_SINGLE_RECORDS)
    try:
        proc, conn = _in_child(cons_core, _c_drain(name, PY_SINGLE_RECORDS))
        with Producer(name) as p:
            publish = p.try_publish
            t0 = time.perf_counter()
            for rec in recs:
                while not publish(rec):
                    pass
            elapsed = time.perf_counter() - t0
            _checked(_join(proc, conn), "consume")
    finally:
        unlink(name, missing_ok=True)
    return elapsed / PY_SINGLE_RECORDS * 1e9


def _peer_stream(make, put, get, close=lambda q: None) -> float:
    """records/s of PEER_RECORDS 64-byte records, put one by one by this
    process and taken by a consumer process, until the consumer has all."""
    prod_core, cons_core = _cores()
    q = make()
    recs = _record_bytes(PEER_RECORDS)

    def consume():
        for _ in range(PEER_RECORDS):
            get(q)
        return True

    proc, conn = _in_child(cons_core, consume)
    t0 = time.perf_counter()
    for rec in recs:
        put(q, rec)
    _join(proc, conn)
    elapsed = time.perf_counter() - t0
    close(q)
    return PEER_RECORDS / elapsed


def peers() -> dict:
    fig: dict = {}
    fig["mp_queue_per_s"] = _peer_stream(_fork.Queue, lambda q, r: q.put(r), lambda q: q.get())
    try:
        import faster_fifo

        fig["faster_fifo_per_s"] = _peer_stream(
            lambda: faster_fifo.Queue(max_size_bytes=1 << 22), lambda q, r: q.put(r),
            lambda q: q.get())
    except ImportError as exc:
        fig["faster_fifo_per_s"] = f"unavailable: {exc}"
    try:
        import posix_ipc

        def make_mq():
            return posix_ipc.MessageQueue(f"/{_name('mq')}", posix_ipc.O_CREX,
                                          max_message_size=layout.RECORD_SIZE)

        def close_mq(q):
            q.close()
            q.unlink()

        fig["posix_mq_per_s"] = _peer_stream(make_mq, lambda q, r: q.send(r),
                                             lambda q: q.receive(), close_mq)
    except ImportError as exc:
        fig["posix_mq_per_s"] = f"unavailable: {exc}"
    return fig


def plot(one_way: np.ndarray, path: str, fig: dict) -> None:
    """HdrHistogram-style percentile plot of the one-way latency (tools/plots.py)."""
    from .. import plots

    plots.ring_latency(one_way, path, fig["one_way_ns_p50"], fig["one_way_ns_p99"])


def ring(sw) -> dict:
    # The bench command pins this process to one core; a ring needs two. The
    # Python producers run here, so move here to the producer's core (the
    # consumers are forked onto the other one).
    prod_core, _ = _cores()
    os.sched_setaffinity(0, {prod_core})
    fig: dict = {"cores": "producer %d, consumer %d" % _cores()}
    sw.step(f"C producer -> C consumer, {C_RECORDS:.0e} records")
    fig.update(c_publish())
    sw.step(f"ping-pong, {ROUND_TRIPS:.0e} round trips")
    lat, one_way = one_way_latency()
    fig.update(lat)
    sw.step(f"Python batch publish, {PY_BATCH_RECORDS:.0e} records")
    fig["py_batch_publish_per_s"] = py_batch_publish()
    sw.step(f"Python single publish, {PY_SINGLE_RECORDS:.0e} records")
    fig["py_single_publish_ns"] = py_single_publish()
    sw.step(f"peers: multiprocessing.Queue, faster_fifo, posix_ipc, {PEER_RECORDS:.0e} records")
    fig.update(peers())
    single_rate = 1e9 / fig["py_single_publish_ns"]
    for peer in ("mp_queue", "faster_fifo", "posix_mq"):
        rate = fig[f"{peer}_per_s"]
        if isinstance(rate, float):
            fig[f"speedup_vs_{peer}"] = fig["py_batch_publish_per_s"] / rate
            fig[f"speedup_single_vs_{peer}"] = single_rate / rate
    if getattr(sw, "plot", None):
        sw.step(f"plot -> {sw.plot}")
        plot(one_way, sw.plot, fig)
    return fig
