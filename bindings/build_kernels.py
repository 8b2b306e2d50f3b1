"""cffi build module for the proof-system kernels (csrc/*.c -> zksidecar.prover._kernels).

Out-of-line API mode: the C is compiled once at install time with -O3 and no
-march flag; vector paths are per-function target attributes picked at run time
(csrc/zk_common.h).  Each public header csrc/zk_*.h marks the declarations
Python may call between `/* cffi-begin */` and `/* cffi-end */`: that text is
the cdef, so the C header stays the one definition of the interface.
"""
from __future__ import annotations

import pathlib
import re

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
_MARKED = re.compile(r"/\* cffi-begin \*/(.*?)/\* cffi-end \*/", re.S)

# Compiled into their own modules (bindings/build_engine.py), not the kernels.
ELSEWHERE = {"zk_records.h", "zk_engine.h", "zk_store.h", "engine.c"}


def public_headers() -> list[pathlib.Path]:
    return sorted(p for p in CSRC.glob("zk_*.h") if p.name not in ELSEWHERE)


def cdef_text() -> str:
    parts = []
    for header in public_headers():
        parts += _MARKED.findall(header.read_text())
    return "\n".join(parts)


def sources() -> list[str]:
    # setuptools wants paths relative to setup.py
    return sorted(str(p.relative_to(ROOT)) for p in CSRC.glob("*.c") if p.name not in ELSEWHERE)


ffibuilder = FFI()
ffibuilder.cdef(cdef_text())
ffibuilder.set_source(
    "zksidecar.prover._kernels",
    "\n".join(f'#include "{h.name}"' for h in public_headers()),
    sources=sources(),
    include_dirs=[str(CSRC.relative_to(ROOT))],
    extra_compile_args=["-O3", "-std=gnu11", "-fno-plt", "-Wall", "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
