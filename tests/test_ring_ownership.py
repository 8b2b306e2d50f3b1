"""Who may open a ring: segments someone else made are refused (owner, group,
mode, checked by fstat of the opened descriptor), one consumer (and one SPSC
producer) per ring, a dead holder's role is taken over, and every error says
which ring, what the system said and what to do.  Run as root here, so the
foreign segments are made by creating ours and chown/chmod-ing them."""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time

import pytest

from ring_helpers import peek, poke, ring_name, shm_path
from zksidecar import ringbuf
from zksidecar.daemon.config import RingConfig
from zksidecar.daemon.service import _open_rings

OTHER_UID = 65534          # nobody
GROUP = 4242               # a group no process here is in; root may chown to it

fork = multiprocessing.get_context("fork")

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


@pytest.fixture
def name():
    n = ring_name()
    yield n
    ringbuf.unlink(n, missing_ok=True)


def restat(name: str, mode: int | None = None, uid: int = -1, gid: int = -1) -> None:
    """chmod/chown the segment through a descriptor, as an attacker would its own file."""
    fd = os.open(shm_path(name), os.O_RDWR)
    try:
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        if mode is not None:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def start_time(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def identity(pid: int, start: int, ns_bits: int | None = None) -> int:
    """An identity word as zkring.h builds it (pid, namespace bits, start time)."""
    if ns_bits is None:
        ns_bits = 1 + os.stat("/proc/self/ns/pid").st_ino % 1023
    return (pid & 0x3FFFFF) | ns_bits << 22 | (start & 0xFFFFFFFF) << 32


# ------------------------------------------------------------------ ownership

ROLES = [ringbuf.Consumer, ringbuf.Producer]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", ["spsc", "mpsc"])
def test_a_world_writable_segment_is_refused(name, role, mode):
    """The fault injection: an unprivileged user pre-creates the ring 0666."""
    ringbuf.create(name, 16, mode=mode)
    restat(name, 0o666)
    with pytest.raises(ringbuf.RingForeign) as err:
        role(name)
    msg = str(err.value)
    assert name in msg and "mode 0666" in msg and "expected" in msg and "within 0600" in msg
    assert str(shm_path(name)) in msg          # what to remove
    assert peek(name, "consumer_pid") == 0 and peek(name, "producer_pid") == 0  # not adopted


@needs_root
@pytest.mark.parametrize("role", ROLES)
def test_a_segment_of_another_user_is_refused(name, role):
    ringbuf.create(name, 16)
    restat(name, 0o600, uid=OTHER_UID)
    with pytest.raises(ringbuf.RingForeign, match=f"owner uid {OTHER_UID}.*expected owner uid {os.geteuid()}"):
        role(name)
    # the check can be waived explicitly, and an explicit owner is honoured
    role(name, owner=OTHER_UID).close()
    role(name, check_access=False).close()


@pytest.mark.parametrize("role", ROLES)
def test_group_ring_0660_accepted_0666_refused(name, role):
    ringbuf.create(name, 16, group=GROUP)
    role(name, group=GROUP).close()
    with pytest.raises(ringbuf.RingForeign, match="mode 0660.*within 0600"):
        role(name)                              # without the group: 0660 is too wide
    restat(name, 0o666)
    with pytest.raises(ringbuf.RingForeign, match=f"mode 0666.*group gid {GROUP}"):
        role(name, group=GROUP)


@needs_root
def test_group_ring_of_any_owner_but_not_of_another_group(name):
    """With a group, the group decides (an engine running as another user
    opens the daemon's rings); an explicit owner is still checked."""
    ringbuf.create(name, 16, group=GROUP)
    restat(name, uid=OTHER_UID)
    ringbuf.Producer(name, group=GROUP).close()
    with pytest.raises(ringbuf.RingForeign, match=f"owner uid {OTHER_UID}"):
        ringbuf.Producer(name, group=GROUP, owner=os.geteuid())
    restat(name, gid=GROUP + 1)
    with pytest.raises(ringbuf.RingForeign, match=f"group gid {GROUP + 1}"):
        ringbuf.Producer(name, group=GROUP)


def test_the_daemon_refuses_a_foreign_ring(name):
    """`_open_rings` with create=True finds the name taken and must not adopt it."""
    other = ring_name()
    try:
        ringbuf.create(name, 16)
        restat(name, 0o666)
        with pytest.raises(ringbuf.RingForeign, match=name):
            _open_rings(RingConfig(ops=name, completions=other, capacity=16))
        assert not shm_path(other).exists() or peek(other, "producer_pid") == 0
    finally:
        ringbuf.unlink(other, missing_ok=True)


# ------------------------------------------------------------ one consumer

def _hold(name, role, ready, done, **kw):
    with role(name, **kw):
        ready.send(os.getpid())
        done.recv()


def _holder(name, role, **kw):
    ready, ready_child = fork.Pipe()
    done, done_child = fork.Pipe()
    proc = fork.Process(target=_hold, args=(name, role, ready_child, done_child), kwargs=kw)
    proc.start()
    assert ready.recv() == proc.pid
    return proc, done


@pytest.mark.parametrize("role,mode", [(ringbuf.Consumer, "spsc"), (ringbuf.Consumer, "mpsc"),
                                       (ringbuf.Producer, "spsc")])
def test_second_holder_refused_naming_the_pid_then_a_dead_ones_role_is_taken(name, role, mode):
    ringbuf.create(name, 16, mode=mode)
    proc, done = _holder(name, role)
    try:
        with pytest.raises(ringbuf.RingBusy) as err:
            role(name)
        assert err.value.pid == proc.pid
        assert f"pid {proc.pid}" in str(err.value) and name in str(err.value)
        os.kill(proc.pid, signal.SIGKILL)     # dies holding the role
        proc.join()
        role(name).close()                    # taken over
    finally:
        if proc.is_alive():
            done.send(None)
            proc.join()


def test_two_consumers_in_one_process_are_refused(name):
    ringbuf.create(name, 16)
    with ringbuf.Consumer(name):
        with pytest.raises(ringbuf.RingBusy, match=f"pid {os.getpid()}"):
            ringbuf.Consumer(name)


def test_our_pid_recorded_by_a_process_that_has_gone_is_taken_over(name):
    """A restarted container's daemon often gets the pid its predecessor had:
    same pid, another start time, so the predecessor is dead."""
    ringbuf.create(name, 16)
    poke(name, "consumer_owner", identity(os.getpid(), start_time(os.getpid()) + 1))
    ringbuf.Consumer(name).close()


def test_a_reused_pid_is_not_taken_for_the_consumer(name):
    ringbuf.create(name, 16)
    other = subprocess.Popen(["sleep", "60"])
    try:
        # the recorded consumer had other's pid but started at another time
        poke(name, "consumer_owner", identity(other.pid, start_time(other.pid) + 7))
        ringbuf.Consumer(name).close()
        # while the same pid with its real start time is the live consumer
        poke(name, "consumer_owner", identity(other.pid, start_time(other.pid)))
        with pytest.raises(ringbuf.RingBusy, match=f"pid {other.pid}"):
            ringbuf.Consumer(name)
    finally:
        other.kill()
        other.wait()


def test_a_consumer_in_another_pid_namespace_is_judged_by_its_heartbeat(name):
    ringbuf.create(name, 16)
    own_bits = 1 + os.stat("/proc/self/ns/pid").st_ino % 1023
    foreign = identity(1, 12345, ns_bits=own_bits % 1023 + 1)   # pid 1 of another namespace
    poke(name, "consumer_owner", foreign)
    poke(name, "consumer_heartbeat_ns", time.monotonic_ns())
    with pytest.raises(ringbuf.RingBusy, match="pid 1"):
        ringbuf.Consumer(name)
    poke(name, "consumer_heartbeat_ns", time.monotonic_ns() - 11 * 10**9)   # silent for 11 s
    ringbuf.Consumer(name).close()


def _race(name, go, results):
    while not go.value:
        pass
    try:
        c = ringbuf.Consumer(name)
        results.put("won")
        time.sleep(0.5)        # hold it while the others try
        c.close()
    except ringbuf.RingBusy:
        results.put("busy")


def test_simultaneous_openers_exactly_one_wins(name):
    ringbuf.create(name, 16)
    for _ in range(5):
        go, results = fork.Value("i", 0, lock=False), fork.Queue()
        procs = [fork.Process(target=_race, args=(name, go, results)) for _ in range(6)]
        for p in procs:
            p.start()
        time.sleep(0.2)
        go.value = 1
        outcome = sorted(results.get(timeout=30) for _ in procs)
        for p in procs:
            p.join()
        assert outcome == ["busy"] * 5 + ["won"]


def _daemon_rings(rc, ready, done):
    consumer, completions = _open_rings(rc)
    ready.send(os.getpid())
    done.recv()
    consumer.close()
    completions.close()


def test_a_second_daemon_on_the_same_rings_is_refused():
    rc = RingConfig(ops=ring_name(), completions=ring_name(), capacity=16)
    ready, ready_child = fork.Pipe()
    done, done_child = fork.Pipe()
    first = fork.Process(target=_daemon_rings, args=(rc, ready_child, done_child))
    first.start()
    try:
        assert ready.recv() == first.pid
        with pytest.raises(ringbuf.RingBusy, match=f"{rc.ops}.*live consumer, pid {first.pid}"):
            _open_rings(rc)
        os.kill(first.pid, signal.SIGKILL)
        first.join()
        consumer, completions = _open_rings(rc)   # the dead daemon's rings are taken over
        consumer.close()
        completions.close()
    finally:
        if first.is_alive():
            done.send(None)
            first.join()
        for n in (rc.ops, rc.completions):
            ringbuf.unlink(n, missing_ok=True)


# ------------------------------------------------------------------ errors

def test_a_missing_ring_says_so_and_what_to_do(name):
    for role in ROLES:
        with pytest.raises(ringbuf.RingMissing) as err:
            role(name)
        msg = str(err.value)
        assert f"ring {name}" in msg and "does not exist" in msg
        assert "No such file or directory" in msg       # the errno text
        assert "start the sidecar daemon first, it creates the rings" in msg


def test_create_over_an_existing_ring_names_it(name):
    ringbuf.create(name, 16)
    with pytest.raises(ringbuf.RingError, match=f"ring {name}: .*already exists.*File exists"):
        ringbuf.create(name, 16)


def _open_as_nobody(name, conn):
    os.setgid(OTHER_UID)
    os.setuid(OTHER_UID)
    try:
        ringbuf.Producer(name)
        conn.send("opened")
    except ringbuf.RingError as exc:
        conn.send(str(exc))


@needs_root
def test_permission_denied_names_the_ring_the_errno_and_the_owner(name):
    ringbuf.create(name, 16)
    parent, child = fork.Pipe()
    proc = fork.Process(target=_open_as_nobody, args=(name, child))
    proc.start()
    msg = parent.recv()
    proc.join()
    assert f"ring {name}" in msg and "Permission denied (EACCES)" in msg
    assert "owner uid 0" in msg and "mode 0600" in msg and "ring.group" in msg


def test_every_open_error_names_the_ring(name):
    ringbuf.create(name, 16)
    poke(name, "version", 1)
    with pytest.raises(ringbuf.RingError) as err:
        ringbuf.Consumer(name)
    msg = str(err.value)
    assert msg.startswith(f"ring {name}: cannot open as consumer")
    assert "layout version 1" in msg and f"remove it ({shm_path(name)})" in msg


def test_unlink_and_create_errors_name_the_ring_the_errno_and_what_to_do(name):
    with pytest.raises(ringbuf.RingError) as err:
        ringbuf.unlink(name)
    msg = str(err.value)
    assert msg.startswith(f"ring {name}: cannot unlink: No such file or directory (ENOENT)")
    assert f"{shm_path(name)} does not exist" in msg
    with pytest.raises(ringbuf.RingError, match=f"ring {name}: .*invalid argument; .*power of two"):
        ringbuf.create(name, 1000)


@pytest.mark.parametrize("mode,group", [(0o600, None), (0o640, None), (0o666, None), (0o604, None),
                                        (0o660, GROUP), (0o664, GROUP), (0o600, 0)])
def test_check_access_judges_as_the_open_does(name, mode, group):
    """ringbuf.ring.check_access (what --check-config asks) refuses exactly
    the segments the open refuses with RingForeign: the C's one check."""
    from zksidecar.ringbuf.ring import check_access

    ringbuf.create(name, 16)
    restat(name, mode)
    try:
        ringbuf.Consumer(name, group=group).close()
        opened = None
    except ringbuf.RingForeign as exc:
        opened = str(exc).replace("cannot open as consumer:", "cannot open:")
    try:
        check_access(str(shm_path(name)), group=group)
        checked = None
    except ringbuf.RingForeign as exc:
        checked = str(exc)
    assert checked == opened
    assert (opened is None) == (mode & ~(0o660 if group is not None else 0o600) == 0
                                and group in (None, os.getegid()))
    assert ringbuf.inspect(name).consumer != "alive"       # the check took no role
