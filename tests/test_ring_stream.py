"""Ordering and no loss across processes, with wraparound, a full ring and a
consumer restarted mid-stream: SPSC and MPSC, 10^7 records each from the C
example engine, smaller streams from the Python producer."""
from __future__ import annotations

import multiprocessing
import subprocess

import numpy as np
import pytest

from ring_helpers import RECORD, StreamChecker, build_c, drain_into, poke, records, ring_name
from zksidecar import ringbuf

TOTAL = 10_000_000
CAPACITY = 1 << 14  # 10^7 records wrap the ring ~600 times


@pytest.fixture
def name():
    n = ring_name()
    yield n
    ringbuf.unlink(n, missing_ok=True)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return build_c(tmp_path_factory.mktemp("engine"))


def _first_consumer(name, checker, stop_at, conn):
    """A consumer process that drains `stop_at` records and exits: the
    restart happens while producers are still publishing."""
    with ringbuf.Consumer(name, idle=ringbuf.IdleStrategy.spin_then_yield(100)) as c:
        drain_into(c, checker, stop_at)
        position = c.position
    conn.send((checker, position))


def _stream_with_restart(name, producers, ids, total):
    """Drain `total` records: the first consumer (a child process) stops
    after a third, a second consumer (this process) resumes from there."""
    fork = multiprocessing.get_context("fork")
    parent, child = fork.Pipe()
    stop_at = total // 3 + 12345  # not on any producer's batch boundary
    first = fork.Process(target=_first_consumer,
                         args=(name, StreamChecker(ids), stop_at, child))
    first.start()
    checker, position = parent.recv()
    first.join(10)
    assert first.exitcode == 0
    assert position == stop_at == checker.total
    # Producers run on while no consumer is attached: the ring fills up.
    with ringbuf.Consumer(name, idle=ringbuf.IdleStrategy.spin_then_yield(100)) as c:
        assert c.position == stop_at, "the new consumer must resume at the old one's head"
        drain_into(c, checker, total)
        for p in producers:
            assert p.wait(60) == 0
        out = np.zeros(16, RECORD)
        assert c.drain(out) == 0, "records beyond the stream"
        full_events = c.full_events
    assert checker.total == total
    assert full_events > 0, "the stream never filled the ring"
    return checker


@pytest.mark.slow
def test_spsc_10m_records_from_c_with_restart(name, engine):
    ringbuf.create(name, CAPACITY, mode="spsc")
    producer = subprocess.Popen([engine, name, str(TOTAL), "0", "1"])
    checker = _stream_with_restart(name, [producer], [0], TOTAL)
    assert checker.next == {0: TOTAL}


@pytest.mark.slow
def test_mpsc_10m_records_from_three_c_processes_with_restart(name, engine):
    ringbuf.create(name, CAPACITY, mode="mpsc")
    # try_publish, claim/commit of 7 and of 64: claims of different sizes
    # interleave and wrap at every offset.
    shares = {1: TOTAL // 3, 2: TOTAL // 3, 3: TOTAL - 2 * (TOTAL // 3)}
    batches = {1: 1, 2: 7, 3: 64}
    procs = [subprocess.Popen([engine, name, str(shares[i]), str(i), str(batches[i])])
             for i in shares]
    checker = _stream_with_restart(name, procs, list(shares), TOTAL)
    assert checker.next == shares


def _python_producer(name, count, ident, batch, single):
    with ringbuf.Producer(name) as p:
        for start in range(0, count, batch):
            chunk = records(np.arange(start, min(count, start + batch), dtype=np.uint64), ident)
            if single:
                for rec in chunk:
                    while not p.try_publish(rec.tobytes()):
                        pass
            else:
                assert p.publish_all(chunk, timeout=60) == len(chunk)


@pytest.mark.parametrize("mode", ["spsc", "mpsc"])
def test_python_producers_batch_and_single(name, mode):
    ringbuf.create(name, 1024, mode=mode)
    fork = multiprocessing.get_context("fork")
    if mode == "spsc":
        specs = {0: (300_000, 5000, False)}
    else:
        specs = {1: (200_000, 3000, False), 2: (20_000, 100, True), 3: (200_000, 777, False)}
    procs = [fork.Process(target=_python_producer, args=(name, n, i, b, s))
             for i, (n, b, s) in specs.items()]
    for p in procs:
        p.start()
    checker = StreamChecker(specs)
    with ringbuf.Consumer(name) as c:
        drain_into(c, checker, sum(n for n, _, _ in specs.values()), batch=4096)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert checker.next == {i: n for i, (n, _, _) in specs.items()}


@pytest.mark.parametrize("mode", ["spsc", "mpsc"])
def test_full_ring_is_reported_not_waited_on(name, mode):
    ringbuf.create(name, 8, mode=mode)
    with ringbuf.Producer(name) as p, ringbuf.Consumer(name) as c:
        assert p.publish(records(np.arange(5, dtype=np.uint64))) == 5
        assert p.publish(records(np.arange(5, 10, dtype=np.uint64))) == 3  # cut short
        assert p.full_events == 1
        assert not p.try_publish(records(np.array([8], np.uint64)).tobytes())
        assert p.full_events == 2
        out = np.zeros(16, RECORD)
        assert c.drain(out) == 8
        assert list(out["seq"][:8]) == list(range(8))
        assert p.try_publish(records(np.array([8], np.uint64)).tobytes())
        assert c.drain(out) == 1 and out["seq"][0] == 8


@pytest.mark.parametrize("lag", [9, 8 * 5, 8 * 5 + 3])
def test_a_head_cache_laps_behind_never_lets_a_producer_overrun(name, lag):
    """head_cache is a hint racing producers may store backwards by whole
    laps (one descheduled between its load of head and its store): a full
    ring stays full, and room is found in head, however stale the hint.
    (Tested by writing the stale value a slow producer would store.)"""
    ringbuf.create(name, 8, mode="mpsc")
    out = np.zeros(16, RECORD)
    with ringbuf.Producer(name) as p, ringbuf.Consumer(name) as c:
        for lap in range(5):                        # tail and head at 40
            assert p.publish(records(np.arange(8 * lap, 8 * lap + 8, dtype=np.uint64))) == 8
            assert c.drain(out) == 8
        assert p.publish(records(np.arange(40, 48, dtype=np.uint64))) == 8   # full: tail 48
        poke(name, "head_cache", 48 - lag)
        assert p.publish(records(np.arange(48, 50, dtype=np.uint64))) == 0
        assert not p.try_publish(records(np.array([48], np.uint64)).tobytes())
        assert c.drain(out) == 8 and list(out["seq"][:8]) == list(range(40, 48))
        poke(name, "head_cache", 48 - lag)          # stale again: head has room
        assert p.publish(records(np.arange(48, 56, dtype=np.uint64))) == 8
        assert c.drain(out) == 8 and list(out["seq"][:8]) == list(range(48, 56))


def test_batches_accept_raw_bytes_and_refuse_other_shapes(name):
    ringbuf.create(name, 64)
    with ringbuf.Producer(name) as p, ringbuf.Consumer(name) as c:
        raw = records(np.arange(3, dtype=np.uint64)).view(np.uint8).reshape(3, 64)
        assert p.publish(raw) == 3
        out = np.zeros((4, 64), np.uint8)
        assert c.drain(out) == 3
        assert np.array_equal(out[:3], raw)
        with pytest.raises(TypeError):
            p.publish(np.zeros(3, np.dtype([("x", "<u8")])))
        with pytest.raises(TypeError):
            p.publish(np.zeros((3, 32), np.uint8))
        with pytest.raises(ValueError):
            p.try_publish(b"short")


@pytest.mark.parametrize("mode", ["spsc", "mpsc"])
def test_deferred_release_redelivers_what_a_crashed_consumer_had_not_released(name, mode):
    """A defer_release consumer frees slots only in release(): records it
    polled and did not release come again to the next consumer (the daemon
    journals before it releases), and they still occupy the ring meanwhile."""
    ringbuf.create(name, 16, mode=mode)
    out = np.zeros(16, RECORD)
    with ringbuf.Producer(name) as p:
        assert p.publish(records(np.arange(16))) == 16
        with ringbuf.Consumer(name, defer_release=True) as c:
            assert c.drain(out[:10]) == 10
            assert c.depth == 6
            assert p.publish(records(np.arange(16, 17))) == 0     # nothing freed yet
            c.release()
            assert p.publish(records(np.arange(16, 26))) == 10
            assert c.drain(out[:4]) == 4                           # 10..13, never released
            assert list(out["seq"][:4]) == [10, 11, 12, 13]
        with ringbuf.Consumer(name, defer_release=True) as c:     # the restart
            n = c.drain(out)
            assert list(out["seq"][:n]) == list(range(10, 26))
