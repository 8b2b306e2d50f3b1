"""cffi build module for the ring benchmark's C loops (bindings/ring_bench.c
-> zksidecar.tools._ring_bench).

A module of its own so that the production ring (build_ring.py ->
zksidecar.ringbuf._ring) carries no benchmark code.  As in build_ring.py, the
text between `/* cffi-begin */` and `/* cffi-end */` in the C file is the
cdef, so the C stays the one definition of the interface.
"""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))   # cffi runs this file as a script
from cffi_marked import CSRC, ROOT, builder  # noqa: E402

SHIM = ROOT / "bindings" / "ring_bench.c"

ffibuilder = builder(
    "zksidecar.tools._ring_bench", [SHIM], '#include "ring_bench.c"',
    include_dirs=[CSRC / "ring", ROOT / "bindings"],
    extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
