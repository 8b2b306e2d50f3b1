"""The engine clients in bindings/ (C, C++ wrapper, Rust) publish to rings
that the Python consumer drains: every record, in order, intact, SPSC and
MPSC, and two languages at once into one MPSC ring."""
from __future__ import annotations

import subprocess

import pytest

from ring_helpers import (StreamChecker, build_c, build_cpp, build_rust, drain_into, ring_name,
                          rustc)
from zksidecar import ringbuf

COUNT = 200_000


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    out = tmp_path_factory.mktemp("clients")
    return {"c": build_c(out), "cpp": build_cpp(out),
            "rust": build_rust(out) if rustc() else None}


@pytest.fixture
def name():
    n = ring_name()
    yield n
    ringbuf.unlink(n, missing_ok=True)


def _run(exe, name, count, ident):
    if exe is None:
        pytest.skip("rustc is not on this machine: the Rust client was not built")
    return subprocess.Popen([exe, name, str(count), str(ident)])


@pytest.mark.parametrize("mode", ["spsc", "mpsc"])
@pytest.mark.parametrize("lang", ["c", "cpp", "rust"])
def test_client_publishes_to_python_consumer(clients, name, lang, mode):
    ringbuf.create(name, 1 << 10, mode=mode)  # small: wraps and fills
    proc = _run(clients[lang], name, COUNT, 7)
    checker = StreamChecker([7])
    with ringbuf.Consumer(name) as c:
        drain_into(c, checker, COUNT)
        assert proc.wait(30) == 0
        assert c.peer_status() in ("none", "dead")  # it closed, or exited
    assert checker.next == {7: COUNT}


def test_three_languages_into_one_mpsc_ring(clients, name):
    ringbuf.create(name, 1 << 10, mode="mpsc")
    procs = [_run(clients[lang], name, COUNT, i)
             for i, lang in enumerate(["c", "cpp", "rust"], 1) if clients[lang] is not None]
    ids = list(range(1, len(procs) + 1))
    checker = StreamChecker(ids)
    with ringbuf.Consumer(name) as c:
        drain_into(c, checker, COUNT * len(procs))
    for p in procs:
        assert p.wait(30) == 0
    assert checker.next == {i: COUNT for i in ids}


def test_clients_refuse_a_ring_of_another_record_size(clients, name):
    ringbuf.create(name, 16, record_size=128)
    for lang, exe in clients.items():
        if exe is None:
            continue
        res = subprocess.run([exe, name, "1"], capture_output=True, text=True, timeout=30)
        assert res.returncode == 1, lang
        assert "record size" in res.stderr, (lang, res.stderr)


def test_clients_opening_a_missing_ring_say_which_why_and_what_to_start(clients, name):
    """An engine started before the daemon: the ring, the errno text and
    what to start first, from every client."""
    for lang, exe in clients.items():
        if exe is None:
            continue
        res = subprocess.run([exe, name, "1"], capture_output=True, text=True, timeout=30)
        assert res.returncode == 1, lang
        assert f"ring {name}: cannot open as producer: No such file or directory" in res.stderr, \
            (lang, res.stderr)
        assert "start the sidecar daemon first, it creates the rings" in res.stderr, (lang, res.stderr)


def test_clients_refuse_a_ring_of_another_layout_version(clients, name):
    """A ring of the layout before (records without the completion's
    symbol) is refused at open, saying both versions."""
    import struct

    from zksidecar.ringbuf import layout

    ringbuf.create(name, 16)
    offset, fmt = layout.FIELDS["version"]
    with open(f"/dev/shm/{name}", "r+b") as f:
        f.seek(offset)
        f.write(struct.pack(fmt, layout.VERSION - 1))
    for lang, exe in clients.items():
        if exe is None:
            continue
        res = subprocess.run([exe, name, "1"], capture_output=True, text=True, timeout=30)
        assert res.returncode == 1, lang
        assert (f"ring {name}: cannot open as producer: it has layout version {layout.VERSION - 1}, "
                f"this build reads {layout.VERSION}") in res.stderr, (lang, res.stderr)
