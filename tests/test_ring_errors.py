"""Bad segments get clean errors; liveness, permissions, takeover, parking."""
from __future__ import annotations

import mmap
import os
import stat
import threading

import numpy as np
import pytest

from ring_helpers import RECORD, peek, poke, records, ring_name, shm_path
from zksidecar import ringbuf
from zksidecar.ringbuf import layout


@pytest.fixture
def name():
    n = ring_name()
    yield n
    ringbuf.unlink(n, missing_ok=True)


@pytest.mark.parametrize("field,value,message", [
    ("magic", 0x1234, "bad magic"),
    ("version", 2, "layout version 2, this build reads 3"),   # a segment of the layout before
    ("version", 99, "layout version 99"),
    ("record_size", 32, "record size"),
    ("capacity", 1000, "corrupt header"),   # not a power of two
    ("capacity", 0, "corrupt header"),
    ("mode", 0, "corrupt header"),
    ("records_offset", 64, "corrupt header"),
    ("segment_size", 1 << 40, "corrupt header"),
])
@pytest.mark.parametrize("role", [ringbuf.Consumer, ringbuf.Producer])
def test_corrupt_header_is_refused(name, role, field, value, message):
    ringbuf.create(name, 16)
    poke(name, field, value)
    with pytest.raises(ringbuf.RingError, match=message):
        role(name)


def test_wrong_record_size_expected_by_caller(name):
    ringbuf.create(name, 16, record_size=128)
    with pytest.raises(ringbuf.RingError, match="record size"):
        ringbuf.Consumer(name)
    ringbuf.Consumer(name, record_size=128).close()


@pytest.mark.parametrize("size", [0, 100, layout.RECORDS_OFFSET, layout.segment_size(16) - 1])
def test_truncated_segment_is_refused(name, size):
    ringbuf.create(name, 16)
    os.truncate(shm_path(name), size)
    with pytest.raises(ringbuf.RingError, match="truncated"):
        ringbuf.Consumer(name)


def test_missing_and_uninitialised_segments(name):
    with pytest.raises(ringbuf.RingError, match="No such file"):
        ringbuf.Consumer(name)
    # created (ours, 0600: a wider one is refused before it is read), never initialised
    with open(os.open(shm_path(name), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.truncate(layout.segment_size(16))
    with pytest.raises(ringbuf.RingError, match="bad magic"):
        ringbuf.Consumer(name)


@pytest.mark.parametrize("mode", ["spsc", "mpsc"])
@pytest.mark.parametrize("bad_tail", [100, 2**64 - 1])  # beyond head+capacity / behind head
def test_impossible_tail_in_flight_is_refused_without_reading(name, mode, bad_tail):
    ringbuf.create(name, 16, mode=mode)
    with ringbuf.Producer(name) as p, ringbuf.Consumer(name) as c:
        p.publish(records(np.arange(4, dtype=np.uint64)))
        out = np.zeros(8, RECORD)
        assert c.drain(out[:2]) == 2
        poke(name, "tail", bad_tail)
        # The two records seen under the sound tail still arrive (SPSC has
        # it cached; MPSC goes by the per-slot sequence words, never tail).
        assert c.drain(out) == 2 and list(out["seq"][:2]) == [2, 3]
        if mode == "spsc":
            with pytest.raises(ringbuf.RingCorrupt):
                c.drain(out)
            with pytest.raises(ringbuf.RingCorrupt):
                c.poll(out, timeout=0.01)  # refused at once, no hang
            assert c.position == 4
        else:
            assert c.drain(out) == 0
    with pytest.raises(ringbuf.RingCorrupt):
        ringbuf.Consumer(name)  # and the next consumer refuses it at open


def test_garbage_sequence_words_are_never_taken_as_records(name):
    ringbuf.create(name, 16, mode="mpsc")
    seq_offset = peek(name, "seq_offset")
    with open(shm_path(name), "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[seq_offset:seq_offset + 16 * 8] = np.arange(5, 21, dtype="<u8").tobytes()
    with ringbuf.Consumer(name) as c:
        assert c.drain(np.zeros(16, RECORD)) == 0


def _exit_without_closing(name, code):
    producer = ringbuf.Producer(name)  # never closed: the process just ends
    os._exit(code if producer else 1)


def test_dead_stale_and_closed_producers_are_detected(name):
    import multiprocessing

    ringbuf.create(name, 16)
    with ringbuf.Consumer(name) as c:
        assert c.peer_status() == "none"
        proc = multiprocessing.get_context("fork").Process(target=_exit_without_closing,
                                                            args=(name, 0))
        proc.start()
        proc.join()
        assert c.peer_status() == "dead"
        with ringbuf.Producer(name) as p:
            assert c.peer_status() == "alive"
            poke(name, "producer_heartbeat_ns", 1)  # a heartbeat from long ago
            assert c.peer_status(max_age=1.0) == "stale"
            p.heartbeat()
            assert c.peer_status(max_age=1.0) == "alive"
            p.mark_closed()
            assert c.peer_status() == "closed"
        assert peek(name, "producer_pid") == 0  # close gave the role up


def test_second_consumer_is_refused_unless_taking_over(name):
    ringbuf.create(name, 16)
    first = ringbuf.Consumer(name)
    with pytest.raises(ringbuf.RingBusy):
        ringbuf.Consumer(name)
    ringbuf.Consumer(name, takeover=True).close()
    first.close()
    ringbuf.Consumer(name).close()


def test_a_busy_ring_tells_a_command_line_user_a_command(name):
    """RingBusy's message names this API's way past a holder known to be
    gone (takeover=True); the commands print `for_cli`, which names what a
    command-line user can do instead (the daemon's `cannot start:` line,
    `zksidecar loadgen`, `zksidecar rings`)."""
    from zksidecar.daemon.service import _what_failed

    ringbuf.create(name, 16)
    with ringbuf.Consumer(name):
        with pytest.raises(ringbuf.RingBusy) as err:
            ringbuf.Consumer(name)
    exc = err.value
    assert "takeover=True" in str(exc)
    assert exc.for_cli == (f"ring {name}: cannot open as consumer: it already has a live consumer, "
                           f"pid {os.getpid()}; stop that process first (two consumers would "
                           f"corrupt the stream); `zksidecar rings list {name}` shows the consumer "
                           "and whether it is alive")
    assert _what_failed(exc) == f"RingBusy: {exc.for_cli}"
    missing = ringbuf.RingMissing(name, 0, "open")
    assert missing.for_cli == str(missing)


def test_segment_permissions(name):
    ringbuf.create(name, 16)
    assert stat.S_IMODE(os.stat(shm_path(name)).st_mode) == 0o600
    other = ring_name()
    try:
        ringbuf.create(other, 16, group=os.getgid())
        st = os.stat(shm_path(other))
        assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == os.getgid()
        assert peek(other, "flags") & layout.F_GROUP
    finally:
        ringbuf.unlink(other, missing_ok=True)


def test_create_refuses_bad_parameters_and_existing_names(name):
    for capacity in (0, 1, 1000, 1 << 31):
        with pytest.raises(ringbuf.RingError, match="invalid"):
            ringbuf.create(name, capacity)
    with pytest.raises(ringbuf.RingError, match="invalid"):
        ringbuf.create(name, 16, record_size=60)
    ringbuf.create(name, 16)
    with pytest.raises(ringbuf.RingError, match="File exists"):
        ringbuf.create(name, 16)
    ringbuf.create(name, 32, replace=True)
    assert peek(name, "capacity") == 32


@pytest.mark.parametrize("idle", [ringbuf.IdleStrategy.busy_spin(),
                                  ringbuf.IdleStrategy.spin_then_yield(spins=10),
                                  ringbuf.IdleStrategy.spin_then_park(spins=10, yields=2)])
def test_idle_strategies_time_out_and_deliver(name, idle):
    ringbuf.create(name, 16)
    with ringbuf.Producer(name) as p, ringbuf.Consumer(name, idle=idle) as c:
        out = np.zeros(4, RECORD)
        assert c.poll(out, timeout=0.02) == 0
        p.publish(records(np.arange(3, dtype=np.uint64)))
        assert c.poll(out, timeout=5) == 3


def test_parked_consumer_is_woken_by_the_producer(name):
    """The consumer declares itself parked (the futex word is 1) and sleeps
    in slices of 10 s; the producer's publish must wake it, long before."""
    ringbuf.create(name, 16)
    idle = ringbuf.IdleStrategy.spin_then_park(spins=10, yields=2, park_us=10e6)
    with ringbuf.Producer(name) as p, ringbuf.Consumer(name, idle=idle) as c:
        def publish_once_parked():
            while peek(name, "consumer_parked") != 1:
                pass
            p.publish(records(np.arange(1, dtype=np.uint64)))

        t = threading.Thread(target=publish_once_parked)
        t.start()
        out = np.zeros(4, RECORD)
        n = c.poll(out, timeout=60)  # returns on the wake, not after 10 s
        t.join()
        assert n == 1
        assert peek(name, "consumer_parked") == 0
