"""cffi build module for the ring benchmark's C loops (bindings/ring_bench.c
-> zksidecar.tools._ring_bench).

A module of its own so that the production ring (build_ring.py ->
zksidecar.ringbuf._ring) carries no benchmark code.  As in build_ring.py, the
text between `/* cffi-begin */` and `/* cffi-end */` in the C file is the
cdef, so the C stays the one definition of the interface.
"""
from __future__ import annotations

import pathlib
import re

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "bindings" / "ring_bench.c"
_MARKED = re.compile(r"/\* cffi-begin \*/(.*?)/\* cffi-end \*/", re.S)

ffibuilder = FFI()
ffibuilder.cdef("\n".join(_MARKED.findall(SOURCE.read_text())))
ffibuilder.set_source(
    "zksidecar.tools._ring_bench",
    '#include "ring_bench.c"',
    include_dirs=["csrc/ring", "bindings"],  # relative to setup.py, as setuptools wants
    extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
