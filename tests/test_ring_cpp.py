"""bindings/zkring.hpp (and through it csrc/ring/zkring.h, the one definition
of the ring) in every C++ standard it supports: C++17, C++20 and C++23, with
g++ and, when it is installed, clang++.  In each, a producer
(bindings/example_engine.cpp) publishes to a ring Python created and drains,
and a consumer (tests/clients/zkring_consumer.cpp) drains what Python
publishes, SPSC and MPSC.  Older standards, and C before C11, stop at the
header's #error with a message that says what to use, and nothing else."""
from __future__ import annotations

import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from ring_helpers import (BINDINGS, RING, ROOT, StreamChecker, build_cpp, drain_into, records,
                          ring_name)
from zksidecar import ringbuf

COUNT = 50_000
CONSUMER = ROOT / "tests" / "clients" / "zkring_consumer.cpp"


def _std_flag(cxx: str, std: str) -> str | None:
    """The spelling of `std` this compiler takes (clang 14 knows C++23 only
    as c++2b), or None when it knows neither."""
    spellings = {"c++23": ["c++23", "c++2b"], "c++20": ["c++20", "c++2a"]}.get(std, [std])
    for s in spellings:
        probe = subprocess.run([cxx, f"-std={s}", "-x", "c++", "-fsyntax-only", "-"],
                               input="", capture_output=True, text=True)
        if probe.returncode == 0:
            return s
    return None


COMPILERS = ["g++", "clang++"]
STDS = ["c++17", "c++20", "c++23"]


def _compiler(cxx: str) -> str:
    path = shutil.which(cxx)
    if path is None:
        if cxx == "g++":
            pytest.fail("g++ is required (README: the tests build the C and C++ clients)")
        pytest.skip(f"{cxx} is not installed on this machine (e.g. Debian's clang package)")
    return path


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("cpp")


@pytest.fixture
def name():
    n = ring_name()
    yield n
    ringbuf.unlink(n, missing_ok=True)


def _build(out, cxx, std, source=None):
    flag = _std_flag(_compiler(cxx), std)
    if flag is None:
        pytest.skip(f"{cxx} does not know {std}")
    return build_cpp(out, flag, cxx, source)


@pytest.mark.parametrize("mode", ["spsc", "mpsc"])
@pytest.mark.parametrize("std", STDS)
@pytest.mark.parametrize("cxx", COMPILERS)
def test_cpp_producer_to_python(out, name, cxx, std, mode):
    exe = _build(out, cxx, std)
    ringbuf.create(name, 1 << 10, mode=mode)  # small: wraps and fills
    proc = subprocess.Popen([str(exe), name, str(COUNT), "5"])
    checker = StreamChecker([5])
    with ringbuf.Consumer(name) as c:
        drain_into(c, checker, COUNT)
        assert proc.wait(30) == 0
    assert checker.next == {5: COUNT}


@pytest.mark.parametrize("mode", ["spsc", "mpsc"])
@pytest.mark.parametrize("std", STDS)
@pytest.mark.parametrize("cxx", COMPILERS)
def test_python_producer_to_cpp_consumer(out, name, cxx, std, mode):
    exe = _build(out, cxx, std, CONSUMER)
    ringbuf.create(name, 1 << 10, mode=mode)
    proc = subprocess.Popen([str(exe), name, str(COUNT), "9"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    batch = records(np.arange(COUNT, dtype=np.uint64), 9)
    with ringbuf.Producer(name) as p:
        assert p.publish_all(batch, timeout=60) == COUNT  # the ring holds 1024: as it drains
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert stdout.strip() == f"received {COUNT}"


def test_cpp_consumer_role_is_exclusive(out, name):
    """The C's ownership rules, compiled as C++: a second consumer is refused
    while the first (Python) lives, and says who holds the role."""
    exe = _build(out, "g++", "c++17", CONSUMER)
    ringbuf.create(name, 16)
    with ringbuf.Consumer(name):
        res = subprocess.run([str(exe), name, "1", "0"], capture_output=True, text=True,
                             timeout=30)
    assert res.returncode == 1
    assert "another live process holds this role" in res.stderr, res.stderr


def _errors(stderr: str) -> int:
    return sum(": error:" in line or ": fatal error:" in line for line in stderr.splitlines())


TINY = '#include "zkring.hpp"\nint main() { return 0; }\n'


@pytest.mark.parametrize("std", ["c++11", "c++14"])
@pytest.mark.parametrize("cxx", COMPILERS)
def test_older_cpp_stops_at_one_clear_error(tmp_path, cxx, std):
    src = tmp_path / "old.cpp"
    src.write_text(TINY)
    res = subprocess.run([_compiler(cxx), f"-std={std}", f"-I{RING}", f"-I{BINDINGS}",
                          "-fsyntax-only", str(src)], capture_output=True, text=True)
    assert res.returncode != 0
    assert "needs C++17 or later" in res.stderr, res.stderr
    assert "-std=c++17" in res.stderr
    assert _errors(res.stderr) == 1, res.stderr  # the #error alone, no cascade


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_c_before_c11_stops_at_one_clear_error(tmp_path, cc):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed on this machine")
    src = tmp_path / "old.c"
    src.write_text('#include "zkring.h"\nint main(void) { return 0; }\n')
    res = subprocess.run([cc, "-std=c99", f"-I{RING}", "-fsyntax-only", str(src)],
                         capture_output=True, text=True)
    assert res.returncode != 0
    assert "needs C11 atomics" in res.stderr, res.stderr
    assert _errors(res.stderr) == 1, res.stderr


@pytest.mark.parametrize("std", ["gnu11", "gnu17"])
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_c_header_compiles_cleanly(tmp_path, cc, std):
    """The C side of the atomics layer: -pedantic clean, as before it."""
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed on this machine")
    src = tmp_path / "c.c"
    src.write_text('#include "zkring.h"\n'
                   'int main(void) { zkring_t r; return zkring_open(&r, "x", 2, 64, 0); }\n')
    subprocess.run([cc, f"-std={std}", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{RING}",
                    "-o", str(tmp_path / "c"), str(src)], check=True)
