"""Shared by the tests/test_ring_*.py suites: the test record, a stream
checker, unique ring names, and builders for the foreign clients.

The test record is the tests' own 64-byte dtype (the ring is record-agnostic):
u64 seq, u32 id, u32 zero, u64 payload[6] with
payload[i] = seq * 0x9E3779B97F4A7C15 + id + i (mod 2^64), so a torn or
misplaced record never passes.  bindings/example_engine.c, the C++ example
and the Rust client write exactly this.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import struct
import subprocess
import uuid

import numpy as np

from zksidecar.ringbuf import layout

ROOT = pathlib.Path(__file__).resolve().parent.parent
RING = ROOT / "csrc" / "ring"
BINDINGS = ROOT / "bindings"

RECORD = np.dtype([("seq", "<u8"), ("id", "<u4"), ("zero", "<u4"), ("payload", "<u8", (6,))])
assert RECORD.itemsize == 64
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def records(seqs: np.ndarray, ident: int = 0) -> np.ndarray:
    out = np.zeros(len(seqs), RECORD)
    out["seq"] = seqs
    out["id"] = ident
    out["payload"] = (seqs.astype(np.uint64)[:, None] * GOLDEN + np.uint64(ident)
                      + np.arange(6, dtype=np.uint64))
    return out


def ring_name() -> str:
    return f"zkt-{os.getpid()}-{uuid.uuid4().hex[:10]}"


def shm_path(name: str) -> pathlib.Path:
    return pathlib.Path("/dev/shm") / name


def peek(name: str, field: str, slot: int | None = None) -> int:
    """A header field of ring `name` (layout.FIELDS), or with `slot` a field
    of that producer registry entry (layout.SLOT_FIELDS), read from the
    segment file."""
    offset, fmt = (layout.FIELDS if slot is None else layout.SLOT_FIELDS)[field]
    if slot is not None:
        offset += peek(name, "registry_offset") + slot * layout.SLOT_SIZE
    with open(shm_path(name), "rb") as f:
        f.seek(offset)
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]


def poke(name: str, field: str, value: int, slot: int | None = None) -> None:
    """Write a header (or registry entry) field as a buggy or hostile process
    sharing the segment would: straight into the file."""
    offset, fmt = (layout.FIELDS if slot is None else layout.SLOT_FIELDS)[field]
    if slot is not None:
        offset += peek(name, "registry_offset") + slot * layout.SLOT_SIZE
    fd = os.open(shm_path(name), os.O_RDWR)
    try:
        os.pwrite(fd, struct.pack(fmt, value), offset)
    finally:
        os.close(fd)


class StreamChecker:
    """Feeds on drained batches; asserts each producer's records arrive in
    order, each exactly once, intact.  Picklable, so a consumer process can
    hand its state to the one that replaces it."""

    def __init__(self, ids):
        self.next = {int(i): 0 for i in ids}
        self.total = 0

    def feed(self, batch: np.ndarray) -> None:
        seq, ident = batch["seq"], batch["id"]
        assert np.all(batch["zero"] == 0)
        expect = (seq[:, None] * GOLDEN + ident.astype(np.uint64)[:, None]
                  + np.arange(6, dtype=np.uint64))
        assert np.array_equal(batch["payload"], expect), "a record is torn or corrupt"
        if len(self.next) == 1:
            (i,) = self.next
            assert np.all(ident == i), "a record from an unknown producer"
            self._continue(i, seq)
        else:
            assert np.isin(ident, list(self.next)).all(), "a record from an unknown producer"
            for i in self.next:
                self._continue(i, seq[ident == i])
        self.total += len(batch)

    def _continue(self, ident: int, seq: np.ndarray) -> None:
        if len(seq) == 0:
            return
        start = self.next[ident]
        assert seq[0] == start, f"producer {ident}: expected seq {start}, got {seq[0]}"
        assert np.all(np.diff(seq) == 1), f"producer {ident}: a record lost or repeated"
        self.next[ident] = int(seq[-1]) + 1


def drain_into(consumer, checker: StreamChecker, until: int, batch: int = 8192,
               timeout: float = 60.0) -> None:
    """Drain until the checker has seen `until` records in all (never more:
    the last poll asks for exactly what is missing)."""
    out = np.zeros(batch, RECORD)
    while checker.total < until:
        want = min(batch, until - checker.total)
        n = consumer.poll(out[:want], timeout=timeout)
        assert n > 0, f"nothing arrived for {timeout} s at record {checker.total}"
        checker.feed(out[:n])


def build_c(out_dir: pathlib.Path) -> pathlib.Path:
    exe = out_dir / "example_engine"
    if not exe.exists():
        subprocess.run([os.environ.get("CC", "cc"), "-std=gnu11", "-O2", "-Wall", "-Werror",
                        f"-I{RING}", "-o", str(exe), str(BINDINGS / "example_engine.c")],
                       check=True)
    return exe


def build_cpp(out_dir: pathlib.Path, std: str = "c++17", cxx: str | None = None,
              source: pathlib.Path | None = None) -> pathlib.Path:
    """Compile a C++ client (default bindings/example_engine.cpp) through
    bindings/zkring.hpp in standard `std`, with -Wall -Wextra -Werror
    -pedantic; C++17 is the default (the floor, and most trading code)."""
    cxx = cxx or os.environ.get("CXX", "g++")
    source = source or BINDINGS / "example_engine.cpp"
    exe = out_dir / f"{source.stem}-{pathlib.Path(cxx).name}-{std}"
    if not exe.exists():
        subprocess.run([cxx, f"-std={std}", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic",
                        f"-I{RING}", f"-I{BINDINGS}", "-o", str(exe), str(source)], check=True)
    return exe


def rustc() -> str | None:
    return shutil.which("rustc")


def build_rust(out_dir: pathlib.Path) -> pathlib.Path:
    exe = out_dir / "zkring_rust_example"
    if not exe.exists():
        subprocess.run([rustc(), "--edition=2021", "-O", "-o", str(exe),
                        str(BINDINGS / "rust" / "example.rs")], check=True)
    return exe
