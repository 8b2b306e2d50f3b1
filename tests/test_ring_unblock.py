"""MPSC: a producer that dies between claim and commit no longer stalls the
consumer (its positions are skipped after the unblock timeout and counted),
while a claimer that is alive, however late, is waited for and delivered in
order; claims the registry cannot attribute, or attributes to another pid
namespace, are never skipped (csrc/ring/zkring.h, zkring_unblock)."""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from ring_helpers import RECORD, StreamChecker, drain_into, peek, poke, records, ring_name, shm_path
from test_ring_ownership import identity, start_time
from zksidecar import ringbuf
from zksidecar.ringbuf import layout
from zksidecar.ringbuf.ring import ffi, lib

fork = multiprocessing.get_context("fork")
UNBLOCK = 0.2        # seconds: the consumers' unblock timeout here


@pytest.fixture
def name():
    n = ring_name()
    ringbuf.create(n, 64, mode="mpsc")
    yield n
    ringbuf.unlink(n, missing_ok=True)


def _claimer(name, n, conn, then):
    """Publish records 0..2 of producer 1, claim n positions and report the
    first; then die there (`then` = "hang": the parent kills -9) or stop
    (SIGSTOP) and, once continued, fill and commit records 3..3+n-1."""
    p = ringbuf.Producer(name)
    p.publish_all(records(np.arange(3, dtype=np.uint64), 1), timeout=10)
    pos = ffi.new("uint64_t *")
    assert lib.zkring_claim(p._r, n, pos) == lib.ZKRING_OK
    conn.send(pos[0])
    if then == "hang":
        time.sleep(120)
        os._exit(1)
    os.kill(os.getpid(), signal.SIGSTOP)
    recs = records(np.arange(3, 3 + n, dtype=np.uint64), 1)
    for i in range(n):
        ffi.memmove(lib.zkring_slot(p._r, pos[0] + i), recs[i:i + 1].tobytes(), 64)
    lib.zkring_commit(p._r, pos[0], n)
    p.close()
    os._exit(0)


def _start_claimer(name, n, then):
    parent, child = fork.Pipe()
    proc = fork.Process(target=_claimer, args=(name, n, child, then))
    proc.start()
    if not parent.poll(30):
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        pytest.fail(f"the claimer did not claim (exit code {proc.exitcode})")
    return proc, parent.recv()


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("n,reaped", [(1, True), (5, True), (2, False)])
def test_a_claimer_killed_between_claim_and_commit_no_longer_stalls(name, n, reaped):
    """Killed with -9 holding a claim of n positions; reaped (its pid gone) or
    not (a zombie, which runs no more code either)."""
    proc, pos = _start_claimer(name, n, "hang")
    assert pos == 3
    os.kill(proc.pid, signal.SIGKILL)
    if reaped:
        proc.join()
    else:
        while _state(proc.pid) != "Z":
            time.sleep(0.01)
    with ringbuf.Producer(name) as p2:                # records after the dead claim
        p2.publish_all(records(np.arange(10, dtype=np.uint64), 2), timeout=10)
    checker = StreamChecker([1, 2])
    with ringbuf.Consumer(name, unblock_after=UNBLOCK) as c:
        t0 = time.monotonic()
        drain_into(c, checker, 13, timeout=10)
        assert time.monotonic() - t0 >= UNBLOCK        # not before the timeout
        assert c.unblocked == n                        # the skipped positions, counted
        assert c.position == 3 + n + 10
        assert c.stall is None
    assert checker.next == {1: 3, 2: 10}
    assert peek(name, "unblocked") == n                # the ring's own count, for /metrics
    proc.join()


def test_without_unblock_the_consumer_waits(name):
    proc, pos = _start_claimer(name, 1, "hang")
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    with ringbuf.Producer(name) as p2:
        p2.publish_all(records(np.arange(4, dtype=np.uint64), 2), timeout=10)
    out = np.zeros(16, RECORD)
    with ringbuf.Consumer(name, unblock_after=None) as c:
        assert c.poll(out, timeout=5) == 3             # producer 1's first three
        assert c.poll(out, timeout=3 * UNBLOCK) == 0   # held up at the dead claim
        assert c.unblocked == 0 and c.stall is None


def test_a_live_but_slow_claimer_is_waited_for_and_delivered_in_order(name):
    """Stopped (SIGSTOP) between claim and commit for many unblock timeouts:
    alive, so its position is not skipped; once continued, its late commit
    arrives first, then the records published after it."""
    proc, pos = _start_claimer(name, 1, "stop")
    try:
        deadline = time.monotonic() + 10
        while _state(proc.pid) != "T":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with ringbuf.Producer(name) as p2:
            p2.publish_all(records(np.arange(10, dtype=np.uint64), 2), timeout=10)
        out = np.zeros(16, RECORD)
        with ringbuf.Consumer(name, unblock_after=UNBLOCK) as c:
            assert c.poll(out, timeout=5) == 3
            assert c.poll(out, timeout=4 * UNBLOCK) == 0        # waits past the timeout
            stall = c.stall
            assert stall["position"] == pos and stall["claimer"] == "alive"
            assert stall["claimer_pid"] == proc.pid and stall["seconds"] >= UNBLOCK
            assert c.unblocked == 0
            os.kill(proc.pid, signal.SIGCONT)
            proc.join(10)
            assert proc.exitcode == 0
            assert c.poll(out[:1], timeout=5) == 1
            assert (out["id"][0], out["seq"][0]) == (1, 3)       # the late record, in place
            checker = StreamChecker([2])
            drain_into(c, checker, 10, timeout=5)
            assert c.unblocked == 0
    finally:
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()


def _claim_without_intent(name):
    """A claim no registry entry covers (a producer outside the protocol):
    tail moves, nothing else."""
    tail = peek(name, "tail")
    poke(name, "tail", tail + 1)
    return tail


def test_a_claim_nobody_registered_is_never_skipped(name):
    pos = _claim_without_intent(name)
    with ringbuf.Consumer(name, unblock_after=0.05) as c:
        out = np.zeros(4, RECORD)
        assert c.poll(out, timeout=0.5) == 0
        assert c.stall["claimer"] == "unknown" and c.stall["position"] == pos
        assert c.unblocked == 0


def _fake_claim(name, slot, owner):
    """A registry entry `slot` owned by `owner` with an uncommitted claim of
    the next position."""
    pos = _claim_without_intent(name)
    poke(name, "owner", owner, slot)
    poke(name, "intent_lo", pos, slot)
    poke(name, "intent_hi", pos + 1, slot)
    return pos


def test_a_reused_pid_does_not_keep_a_dead_claim_alive(name):
    other = subprocess.Popen(["sleep", "60"])
    try:
        # the claimer had other's pid and another start time: it is gone
        _fake_claim(name, 5, identity(other.pid, start_time(other.pid) + 3))
        with ringbuf.Producer(name) as p:
            p.publish(records(np.arange(2, dtype=np.uint64), 2))
        with ringbuf.Consumer(name, unblock_after=UNBLOCK) as c:
            drain_into(c, StreamChecker([2]), 2, timeout=5)
            assert c.unblocked == 1
    finally:
        other.kill()
        other.wait()


def test_a_claim_of_a_live_process_is_not_skipped(name):
    other = subprocess.Popen(["sleep", "60"])
    try:
        pos = _fake_claim(name, 5, identity(other.pid, start_time(other.pid)))
        with ringbuf.Consumer(name, unblock_after=0.05) as c:
            assert c.poll(np.zeros(4, RECORD), timeout=0.5) == 0
            assert c.stall["claimer"] == "alive" and c.stall["claimer_pid"] == other.pid
            other.kill()
            other.wait()                                          # now it is gone
            assert c.poll(np.zeros(4, RECORD), timeout=2) == 0    # nothing to deliver...
            assert c.unblocked == 1 and c.position == pos + 1     # ...but it moved on
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def test_a_claim_from_another_pid_namespace_is_never_skipped(name):
    own = 1 + os.stat("/proc/self/ns/pid").st_ino % 1023
    _fake_claim(name, 7, identity(999_999 % (1 << 22), 1, ns_bits=own % 1023 + 1))
    with ringbuf.Consumer(name, unblock_after=0.05) as c:
        assert c.poll(np.zeros(4, RECORD), timeout=0.5) == 0
        assert c.stall["claimer"] == "foreign"
        assert c.unblocked == 0


def test_drain_alone_unblocks_too(name):
    """A consumer that never waits in C (drain only) gets the unblock as well."""
    proc, _ = _start_claimer(name, 2, "hang")
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    with ringbuf.Producer(name) as p2:
        p2.publish(records(np.arange(3, dtype=np.uint64), 2))
    out = np.zeros(16, RECORD)
    got = []
    with ringbuf.Consumer(name, unblock_after=UNBLOCK) as c:
        deadline = time.monotonic() + 5
        while len(got) < 6 and time.monotonic() < deadline:
            n = c.drain(out)
            got += list(zip(out["id"][:n], out["seq"][:n]))
            time.sleep(0.01)
        assert got == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
        assert c.unblocked == 2


def test_the_registry_has_64_entries_and_a_dead_claimers_entry_is_reclaimed(name):
    held = [ringbuf.Producer(name) for _ in range(layout.PRODUCER_SLOTS - 1)]
    try:
        proc, pos = _start_claimer(name, 1, "hang")          # takes the last entry
        with pytest.raises(ringbuf.RingBusy, match="all 64 producer entries"):
            ringbuf.Producer(name)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        with pytest.raises(ringbuf.RingBusy):
            ringbuf.Producer(name)   # dead, but its claim is not passed yet: the entry names it
        with ringbuf.Consumer(name, unblock_after=UNBLOCK) as c:
            drain_into(c, StreamChecker([1]), 3, timeout=5)
            deadline = time.monotonic() + 5
            while c.unblocked == 0:
                assert time.monotonic() < deadline
                c.drain(np.zeros(4, RECORD))
                time.sleep(0.01)
        ringbuf.Producer(name).close()                       # the dead entry is free again
    finally:
        for p in held:
            p.close()


def _claim_in_a_thread_then_end_the_main_thread(name, conn):
    """The claim is held by a thread that runs on after the main thread ended
    (pthread_exit): the leader then shows as a zombie, the process lives."""
    import ctypes
    import threading

    def hold():
        p = ringbuf.Producer(name)
        pos = ffi.new("uint64_t *")
        assert lib.zkring_claim(p._r, 1, pos) == lib.ZKRING_OK
        conn.send(pos[0])
        time.sleep(120)

    threading.Thread(target=hold).start()
    ctypes.CDLL(None).pthread_exit(None)   # ctypes lets the GIL go; the thread runs on


def test_a_zombie_leader_whose_threads_run_on_is_alive(name):
    parent, child = fork.Pipe()
    proc = fork.Process(target=_claim_in_a_thread_then_end_the_main_thread, args=(name, child))
    proc.start()
    try:
        assert parent.poll(30)
        pos = parent.recv()
        deadline = time.monotonic() + 10
        while _state(proc.pid) != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with ringbuf.Consumer(name, unblock_after=0.05) as c:
            assert c.poll(np.zeros(4, RECORD), timeout=0.5) == 0
            assert c.stall["claimer"] == "alive" and c.stall["position"] == pos
            assert c.unblocked == 0
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
            assert c.poll(np.zeros(4, RECORD), timeout=1) == 0
            assert c.unblocked == 1
    finally:
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()


def test_a_dead_producers_stale_intent_beyond_tail_does_not_keep_its_entry(name):
    """A producer that died after a failed claim attempt leaves an intent past
    tail that nobody claimed: its entry is free for the next producer."""
    gone = subprocess.Popen(["true"])
    gone.wait()                                             # a pid that has exited
    held = [ringbuf.Producer(name) for _ in range(layout.PRODUCER_SLOTS - 1)]
    try:
        free = next(i for i in range(layout.PRODUCER_SLOTS) if peek(name, "owner", i) == 0)
        tail = peek(name, "tail")
        poke(name, "owner", identity(gone.pid, 0), free)
        poke(name, "intent_lo", tail, free)
        poke(name, "intent_hi", tail + 10, free)
        ringbuf.Producer(name).close()                      # takes the dead entry
    finally:
        for p in held:
            p.close()
