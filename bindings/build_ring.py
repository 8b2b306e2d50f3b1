"""cffi build module for the ring (-> zksidecar.ringbuf._ring) and the ring
benchmark's C loops (-> zksidecar.tools._ring_bench).

Compiles bindings/ring_py.c, which includes csrc/ring/zkring.h.  zkring.h is
header-only: it is what engines written in C, C++ or Rust use to publish to
the sidecar, so it depends on libc alone and no other part of csrc/.
ring_py.c marks, between `/* cffi-begin */` and `/* cffi-end */`, the
declarations Python may call (zkring.h's own functions and a few helpers).
That text is the cdef, so the C stays the one definition of the interface,
as in every build module (bindings/cffi_marked.py).

A module of its own: a Python producer or consumer of the ring needs
neither the prover nor the engine.  The benchmark's loops (bindings/
ring_bench.c, also over zkring.h) are a second module, for the tools, so
that the production ring carries no benchmark code.
"""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))   # cffi runs this file as a script
from cffi_marked import CSRC, ROOT, builder  # noqa: E402


def ring_module(module: str, shim: str):
    """`module` from bindings/`shim`, which includes csrc/ring/zkring.h."""
    return builder(module, [ROOT / "bindings" / shim], f'#include "{shim}"',
                   include_dirs=[CSRC / "ring", ROOT / "bindings"],
                   extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wno-unused-function"])


ffibuilder = ring_module("zksidecar.ringbuf._ring", "ring_py.c")
benchbuilder = ring_module("zksidecar.tools._ring_bench", "ring_bench.c")

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
    benchbuilder.compile(verbose=True)
