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
