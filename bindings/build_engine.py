"""cffi build module for the matching engine (csrc/engine.c -> zksidecar.engine._engine).

Its own module, apart from the proof kernels: the engine is what co-located
users embed, so it must not drag the prover in.  The cdef is the text between
`/* cffi-begin */` and `/* cffi-end */` in the headers it owns, as in
build_kernels.py; zk_records.h is also the ring's record definition, and the
struct declarations in the cdef let tests compare the C layout with the numpy
dtypes (ffi.offsetof / ffi.sizeof report what the C compiler laid out).
zk_store.h (the daemon's journal and proof store files) is here for the same
reason: declarations only, so the tests can compare its layouts.
"""
from __future__ import annotations

import pathlib
import re

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
_MARKED = re.compile(r"/\* cffi-begin \*/(.*?)/\* cffi-end \*/", re.S)

# What this module owns; build_kernels.py leaves these out.
HEADERS = ["zk_records.h", "zk_engine.h", "zk_store.h"]
SOURCES = ["engine.c"]


def cdef_text() -> str:
    return "\n".join(m for h in HEADERS for m in _MARKED.findall((CSRC / h).read_text()))


ffibuilder = FFI()
ffibuilder.cdef(cdef_text())
ffibuilder.set_source(
    "zksidecar.engine._engine",
    "\n".join(f'#include "{h}"' for h in HEADERS),
    sources=[str((CSRC / s).relative_to(ROOT)) for s in SOURCES],
    include_dirs=[str(CSRC.relative_to(ROOT))],
    extra_compile_args=["-O3", "-std=gnu11", "-fno-plt", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
