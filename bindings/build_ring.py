"""cffi build module for the ring (-> zksidecar.ringbuf._ring).

Compiles bindings/ring_py.c, which includes csrc/ring/zkring.h.  zkring.h is
header-only: it is what engines written in C, C++ or Rust use to publish to
the sidecar, so it depends on libc alone and no other part of csrc/.
ring_py.c marks, between `/* cffi-begin */` and `/* cffi-end */`, the
declarations Python may call (zkring.h's own functions and a few helpers).
That text is the cdef, so the C stays the one definition of the interface,
as in build_kernels.py.

A module of its own: a Python producer or consumer of the ring needs
neither the prover nor the engine.
"""
from __future__ import annotations

import pathlib
import re

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHIM = ROOT / "bindings" / "ring_py.c"
_MARKED = re.compile(r"/\* cffi-begin \*/(.*?)/\* cffi-end \*/", re.S)

ffibuilder = FFI()
ffibuilder.cdef("\n".join(_MARKED.findall(SHIM.read_text())))
ffibuilder.set_source(
    "zksidecar.ringbuf._ring",
    '#include "ring_py.c"',
    include_dirs=["csrc/ring", "bindings"],  # relative to setup.py, as setuptools wants
    extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
