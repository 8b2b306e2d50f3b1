"""cffi build module for the ring (csrc/zkring.h -> zksidecar.ringbuf._ring).

zkring.h is header-only; bindings/ring_py.c includes it and marks, between
`/* cffi-begin */` and `/* cffi-end */`, the declarations Python may call
(zkring.h's own functions and a few helpers).  That text is the cdef, so the
C stays the one definition of the interface, as in build_kernels.py.
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
    include_dirs=["csrc", "bindings"],  # relative to setup.py, as setuptools wants
    extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
