"""`zksidecar rings list|clean`: leftover ring segments in /dev/shm (issue 15,
item 5).  A live consumer's ring is listed alive and never removed; a ring
whose consumer died is removed; a file that is not a ring is never touched,
and named explicitly it is refused (exit 2)."""
from __future__ import annotations

import os
import uuid

import pytest

from zksidecar import ringbuf
from test_cli import run


@pytest.fixture
def names():
    """Unique names in the daemon's ring naming (zksidecar-*), removed after."""
    made = []

    def name(role: str) -> str:
        n = f"zksidecar-test{uuid.uuid4().hex[:10]}-{role}"
        made.append(n)
        return n

    yield name
    for n in made:
        try:
            os.unlink(f"/dev/shm/{n}")
        except FileNotFoundError:
            pass


def dead_consumer(name: str) -> int:
    """A forked child opens `name` as its consumer and exits without closing."""
    pid = os.fork()
    if pid == 0:
        try:
            held = ringbuf.Consumer(name)     # never closed: the child dies holding the role
            os._exit(0 if held else 1)
        finally:
            os._exit(1)
    os.waitpid(pid, 0)
    return pid


def test_live_consumer_listed_alive_and_kept(names, capsys):
    n = names("ops")
    ringbuf.create(n, 16)
    with ringbuf.Consumer(n):
        assert ringbuf.inspect(n).consumer == "alive"
        code, out, _ = run(["rings", "list"], capsys)
        assert code == 0
        line = next(l for l in out.splitlines() if l.startswith(n))
        assert f"{os.getpid()} alive" in line and "spsc 16" in line
        code, out, _ = run(["rings", "clean"], capsys)
        assert code == 0 and f"kept /dev/shm/{n}" in out
        code, out, _ = run(["rings", "clean", n], capsys)     # named explicitly: still kept
        assert code == 0 and f"kept /dev/shm/{n}" in out and "alive" in out
        assert os.path.exists(f"/dev/shm/{n}")


def test_dead_consumer_ring_removed(names, capsys):
    n = names("completions")
    ringbuf.create(n, 32, mode="mpsc")
    pid = dead_consumer(n)
    info = ringbuf.inspect(n)
    assert (info.consumer_pid, info.consumer, info.ring_mode, info.capacity) == \
        (pid, "dead", "mpsc", 32)
    code, out, _ = run(["rings", "list", n], capsys)
    assert code == 0 and f"{pid} dead" in out
    code, out, _ = run(["rings", "clean"], capsys)
    assert code == 0 and f"removed /dev/shm/{n}" in out
    assert not os.path.exists(f"/dev/shm/{n}")


def test_live_producer_keeps_ring(names, capsys):
    n = names("ops")
    ringbuf.create(n, 16, mode="mpsc")
    dead_consumer(n)
    with ringbuf.Producer(n):
        assert ringbuf.inspect(n).producers == ((os.getpid(), "alive"),)
        code, out, _ = run(["rings", "clean", n], capsys)
        assert code == 0 and "kept" in out and os.path.exists(f"/dev/shm/{n}")


def test_non_ring_never_touched(names, capsys):
    junk = names("ops")
    with open(f"/dev/shm/{junk}", "wb") as f:
        f.write(b"not a ring" * 200)
    code, out, err = run(["rings", "clean"], capsys)
    assert code == 0 and junk not in out and os.path.exists(f"/dev/shm/{junk}")
    for action in ("list", "clean"):
        code, out, err = run(["rings", action, f"/dev/shm/{junk}"], capsys)
        assert code == 2 and "not a zksidecar ring" in err and "Traceback" not in err
        assert os.path.exists(f"/dev/shm/{junk}")
    code, _, err = run(["rings", "clean", names("ops")], capsys)     # does not exist
    assert code == 2 and "does not exist" in err


def test_a_killed_daemons_rings(tmp_path, capsys):
    """While the daemon runs its rings are listed with a live consumer and
    kept; once it is killed -9 (its rings left behind) they are removed."""
    from daemon_helpers import Daemon

    d = Daemon(tmp_path)
    try:
        d.start()
        code, out, _ = run(["rings", "list", d.ops_ring, d.completions_ring], capsys)
        assert code == 0
        line = next(l for l in out.splitlines() if l.startswith(d.ops_ring))
        assert f"{d.proc.pid} alive" in line
        code, out, _ = run(["rings", "clean", d.ops_ring, d.completions_ring], capsys)
        assert code == 0 and out.count("kept") == 2 and "removed" not in out
        d.kill9()
        info = ringbuf.inspect(d.ops_ring)
        assert (info.consumer_pid, info.consumer) == (d.proc.pid, "dead")
        code, out, _ = run(["rings", "clean", d.ops_ring, d.completions_ring], capsys)
        assert code == 0, out
        assert f"removed /dev/shm/{d.ops_ring}" in out
        assert not os.path.exists(f"/dev/shm/{d.ops_ring}")
    finally:
        d.cleanup()


def dead_producer(name: str, count: int) -> None:
    """A forked child publishes `count` records to `name` and exits (an
    engine that published while no daemon consumed)."""
    import numpy as np

    pid = os.fork()
    if pid == 0:
        try:
            p = ringbuf.Producer(name)
            sent = p.publish(np.zeros((count, 64), np.uint8))
            os._exit(0 if sent == count else 1)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert status == 0


@pytest.mark.parametrize("role,mode", [("ops", "spsc"), ("completions", "mpsc")])
def test_unread_records_keep_the_ring(names, capsys, role, mode):
    """Records nobody has read (operations published while the daemon was
    down; completions the engine has not read) keep the ring: named with
    their count, exit 1, until --discard-records."""
    n = names(role)
    ringbuf.create(n, 64, mode=mode)
    dead_consumer(n)
    dead_producer(n, 5)
    for argv in (["rings", "clean"], ["rings", "clean", n]):
        code, out, _ = run(argv, capsys)
        assert code == 1, out
        assert f"kept /dev/shm/{n}: 5 records no consumer has read" in out
        assert "--discard-records" in out and "removed /dev" not in out
        assert os.path.exists(f"/dev/shm/{n}") and ringbuf.inspect(n).depth == 5
    code, out, _ = run(["rings", "clean", "--discard-records", n], capsys)
    assert code == 0 and f"removed /dev/shm/{n} ({mode} 64, 5 unread records discarded)" in out
    assert not os.path.exists(f"/dev/shm/{n}")


def test_records_read_then_ring_removed(names, capsys):
    """Records a consumer read and released are not unread: the ring goes."""
    import numpy as np

    n = names("ops")
    ringbuf.create(n, 64)
    dead_producer(n, 3)
    with ringbuf.Consumer(n) as c:
        assert c.drain(np.zeros((8, 64), np.uint8)) == 3
    code, out, _ = run(["rings", "clean", n], capsys)
    assert code == 0 and f"removed /dev/shm/{n} (spsc 64, empty)" in out


def test_records_published_after_the_first_look_keep_the_ring(names, capsys, monkeypatch):
    """The count is taken again under the consumer role: a record that
    arrives between inspect and the claim still keeps the ring."""
    from zksidecar.tools import rings

    n = names("ops")
    ringbuf.create(n, 64)
    looked = rings._why_kept

    def publish_after_look(info):
        dead_producer(n, 2)
        return looked(info)

    monkeypatch.setattr(rings, "_why_kept", publish_after_look)
    code, out, _ = run(["rings", "clean", n], capsys)
    assert code == 1 and f"kept /dev/shm/{n}: 2 records no consumer has read" in out
    assert os.path.exists(f"/dev/shm/{n}")
