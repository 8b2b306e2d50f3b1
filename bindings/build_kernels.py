"""cffi build module for the proof-system kernels (-> zksidecar.prover._kernels).

Compiles every C file of five components of csrc/:

  common/  the instruction-set (ISA) detection and choice every kernel reads,
           and the vector vocabulary that compiles each vector kernel for
           AVX2 and AVX-512 from one source (vec_widths.h)
  field/   BabyBear arrays, the quartic extension, NTT and low-degree
           extension, the transpose
  hash/    SHA-256 (SHA-NI and portable), Merkle trees, proof-of-work grinding,
           the ChaCha20 keystream the zk keys expand into, Poseidon2 over
           BabyBear
  stark/   the block-wise constraint evaluator and the LogUp columns
  orderbook/  the order-book AIR's witness from the engine's steps, and zk
              mode's record-check block from the operation records

A module of its own because this is the prover's arithmetic: compiled once at
install time with -O3 and no -march flag, its vector paths are per-function
target attributes picked at run time (common/zk_common.h), and nothing that
embeds only the engine or the ring needs it.

The cdef is the text between `/* cffi-begin */` and `/* cffi-end */` in each
component's public headers (zk_*.h), so the C headers stay the one
definition of the Python interface.
"""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))   # cffi runs this file as a script
from cffi_marked import CSRC, ROOT, builder  # noqa: E402

COMPONENTS = ["common", "field", "hash", "stark", "orderbook"]
HEADERS = [h for c in COMPONENTS for h in sorted((CSRC / c).glob("zk_*.h"))]

ffibuilder = builder(
    "zksidecar.prover._kernels", HEADERS,
    "\n".join(f'#include "{h.relative_to(CSRC)}"' for h in HEADERS),
    sources=[s for c in COMPONENTS for s in sorted((CSRC / c).glob("*.c"))],
    include_dirs=[CSRC],      # includes name the component: "field/zk_ntt.h"
    extra_compile_args=["-O3", "-std=gnu11", "-fno-plt", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
