"""The Rust client (bindings/rust/, std only): its record structs against the
C header csrc/formats/zk_records.h as the C compiler lays it out, and its
consumer against rings Python creates and publishes to: every record in
order and intact (SPSC and MPSC), the consumer role's ownership rules as
zkring_open_ex applies them, and deferred release.  (Its producer is tested
in tests/test_ring_clients.py.)  Skipped, saying so, where rustc is absent."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from ring_helpers import BINDINGS, ROOT, StreamChecker, drain_into, records, ring_name, rustc
from zksidecar import ringbuf

RECORDS_H = ROOT / "csrc" / "formats" / "zk_records.h"
STRUCTS = ["zk_op", "zk_trade", "zk_completion"]
COUNT = 50_000

pytestmark = pytest.mark.skipif(rustc() is None,
                                reason="rustc is not on this machine: the Rust client is not built")


def _rustc(src, exe):
    if not exe.exists():
        subprocess.run([rustc(), "--edition=2021", "-O", "-o", str(exe), str(src)], check=True)
    return exe


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("rust")


@pytest.fixture(scope="module")
def consumer(out):
    return _rustc(BINDINGS / "rust" / "example_consumer.rs", out / "zkring_rust_consumer")


@pytest.fixture
def name():
    n = ring_name()
    yield n
    ringbuf.unlink(n, missing_ok=True)


def _c_layout(out) -> list[str]:
    """Every field's offset and size, every struct's size and every ZK_
    constant, printed by a C program compiled against zk_records.h; the
    fields are the header's own (cffi's parse of it), in declaration order."""
    from zksidecar.engine.native import ffi
    lines = []
    for s in STRUCTS:
        lines.append(f'printf("size {s} %zu\\n", sizeof({s}));')
        for field, _ in ffi.typeof(s).fields:
            lines.append(f'printf("field {s} {field} %zu %zu\\n", offsetof({s}, {field}), '
                         f'sizeof((({s} *)0)->{field}));')
    names = sorted(set(re.findall(r"^#define (ZK_[A-Z_0-9]+) ", RECORDS_H.read_text(), re.M))
                   - {"ZK_RECORDS_H"})
    for n in names:
        lines.append(f'printf("const {n} %llu\\n", (unsigned long long)({n}));')
    src = out / "c_layout.c"
    src.write_text("#include <stddef.h>\n#include <stdio.h>\n#include \"zk_records.h\"\n"
                   "int main(void) {\n" + "\n".join(lines) + "\nreturn 0;\n}\n")
    exe = out / "c_layout"
    subprocess.run([os.environ.get("CC", "cc"), "-std=gnu11", "-Wall", "-Werror",
                    f"-I{RECORDS_H.parent}", "-o", str(exe), str(src)], check=True)
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()


def test_record_structs_match_the_c_header(out):
    exe = _rustc(ROOT / "tests" / "clients" / "rust_layout.rs", out / "rust_layout")
    rust = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    c = _c_layout(out)
    # Fields in declaration order, each with its offset and size; sizes; and
    # every constant, both ways (a field or constant on one side only fails).
    assert [x for x in rust if not x.startswith("const")] == [x for x in c if not x.startswith("const")]
    assert sorted(x for x in rust if x.startswith("const")) == sorted(x for x in c if x.startswith("const"))


def _wait_for_consumer_pid(name, pid, timeout=10.0):
    """Until the ring's header names `pid` as its consumer."""
    from zksidecar.ringbuf import layout
    off = layout.FIELDS["consumer_pid"][0]
    path = f"/dev/shm/{name}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            head = f.read(512)
        if int.from_bytes(head[off:off + 4], "little") == pid:
            return
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} never became the consumer of {name}")


@pytest.mark.parametrize("mode", ["spsc", "mpsc"])
def test_python_producer_to_rust_consumer(consumer, name, mode):
    ringbuf.create(name, 1 << 10, mode=mode)  # small: wraps and fills
    proc = subprocess.Popen([str(consumer), name, str(COUNT), "4"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    with ringbuf.Producer(name) as p:
        assert p.publish_all(records(np.arange(COUNT, dtype=np.uint64), 4), timeout=60) == COUNT
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert stdout.split() == ["received", str(COUNT), "position", str(COUNT)]
    # It gave the role up on exit, having released everything: a new
    # consumer opens at once, with nothing left to read.
    with ringbuf.Consumer(name) as c:
        assert c.position == COUNT and c.depth == 0


def test_rust_consumer_is_refused_while_a_live_consumer_holds_the_role(consumer, name):
    ringbuf.create(name, 16)
    with ringbuf.Consumer(name):
        res = subprocess.run([str(consumer), name, "1", "0"], capture_output=True, text=True,
                             timeout=30)
    assert res.returncode == 1
    assert "another live process holds this role" in res.stderr, res.stderr
    assert f"pid {os.getpid()}" in res.stderr


def test_rust_consumer_holds_the_role_and_a_dead_one_is_taken_over(consumer, name):
    ringbuf.create(name, 16)
    proc = subprocess.Popen([str(consumer), name, "1", "0"], stderr=subprocess.PIPE)
    try:
        _wait_for_consumer_pid(name, proc.pid)
        with pytest.raises(ringbuf.RingBusy):
            ringbuf.Consumer(name)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with ringbuf.Consumer(name) as c:  # its holder is dead: taken over, no TAKEOVER needed
        assert c.position == 0


def test_rust_consumer_deferred_release_redelivers_what_it_did_not_release(consumer, name):
    ringbuf.create(name, 256, mode="mpsc")
    with ringbuf.Producer(name) as p:
        assert p.publish_all(records(np.arange(100, dtype=np.uint64), 2)) == 100
    res = subprocess.run([str(consumer), name, "100", "2", "40"], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stderr
    checker = StreamChecker([2])
    checker.next[2] = 40  # released up to 40: 40..99 come again
    with ringbuf.Consumer(name) as c:
        assert c.position == 40
        drain_into(c, checker, 60)
    assert checker.next == {2: 100}
