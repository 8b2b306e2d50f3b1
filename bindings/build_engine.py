"""cffi build module for the matching engine (-> zksidecar.engine._engine).

Compiles csrc/engine/ (engine.c, which includes engine_core.inc twice: the
engine and its traced twin; zk_core.c, the public embeddable API over it,
zk_core.h, which `make examples` also builds alone as build/libzkcore.a) and declares, from csrc/formats/, the binary
formats the engine, the ring's clients and the daemon share:

  zk_records.h  the operation and completion records (the engine reads and
                writes them; the ring carries them)
  zk_store.h    the daemon's journal and proof store files
  zk_receipt.h  a zk batch's receipts (docs/ZK.md, section 8)
  zk_private.h  a zk batch's private file beside its proof (docs/ZK.md, section 9)
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
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))   # cffi runs this file as a script
from cffi_marked import CSRC, ROOT, builder  # noqa: E402

HEADERS = [CSRC / h for h in ("formats/zk_records.h", "formats/zk_store.h", "formats/zk_backend.h",
                              "formats/zk_receipt.h", "formats/zk_private.h", "engine/zk_engine.h")]

ffibuilder = builder(
    "zksidecar.engine._engine", HEADERS,
    "\n".join(f'#include "{h.relative_to(CSRC)}"' for h in HEADERS),
    sources=[CSRC / "engine" / "engine.c", CSRC / "engine" / "zk_core.c"],
    include_dirs=[CSRC],      # includes name the component: "engine/..."
    extra_compile_args=["-O3", "-std=gnu11", "-fno-plt", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
