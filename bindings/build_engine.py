"""cffi build module for the matching engine (-> zksidecar.engine._engine).

Compiles csrc/engine/ (engine.c, which includes engine_core.inc twice: the
engine and its traced twin) and declares, from csrc/formats/, the binary
formats the engine, the ring's clients and the daemon share:

  zk_records.h  the operation and completion records (the engine reads and
                writes them; the ring carries them)
  zk_store.h    the daemon's journal and proof store files
  zk_backend.h  the frames of the external prover process protocol

A module of its own, apart from the proof kernels: the engine is what
co-located users embed, so it must not drag the prover in.  The formats are
declarations only (no code); they are here so that the tests can compare
each C layout with its Python mirror (ffi.offsetof / ffi.sizeof report what
the C compiler laid out).  The cdef is the text between `/* cffi-begin */`
and `/* cffi-end */` in these headers, as in build_kernels.py.
"""
from __future__ import annotations

import pathlib
import re

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
_MARKED = re.compile(r"/\* cffi-begin \*/(.*?)/\* cffi-end \*/", re.S)

HEADERS = ["formats/zk_records.h", "formats/zk_store.h", "formats/zk_backend.h",
           "engine/zk_engine.h"]
SOURCES = ["engine/engine.c"]


def cdef_text() -> str:
    return "\n".join(m for h in HEADERS for m in _MARKED.findall((CSRC / h).read_text()))


ffibuilder = FFI()
ffibuilder.cdef(cdef_text())
ffibuilder.set_source(
    "zksidecar.engine._engine",
    "\n".join(f'#include "{h}"' for h in HEADERS),
    sources=[str((CSRC / s).relative_to(ROOT)) for s in SOURCES],
    include_dirs=[str(CSRC.relative_to(ROOT))],  # includes name the component: "engine/..."
    extra_compile_args=["-O3", "-std=gnu11", "-fno-plt", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
