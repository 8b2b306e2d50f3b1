"""The compiled kernels (csrc/, built by bindings/build_kernels.py) and the
choice of instruction-set path.

The best path the CPU supports is active by default.  ZKSIDECAR_ISA
(scalar|avx2|avx512) forces one, for tests and comparisons; forcing a path the
CPU cannot run is an error here, at import, never an illegal instruction later.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, TypeVar

import numpy as np

try:
    from ._kernels import ffi, lib
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "zksidecar's C kernels are not built: run `make install` (or `pip install -e .`) "
        "from the source tree"
    ) from exc

T = TypeVar("T")

ISA_NAMES = {"scalar": lib.ZK_ISA_SCALAR, "avx2": lib.ZK_ISA_AVX2, "avx512": lib.ZK_ISA_AVX512}
_ISA_BY_CODE = {code: name for name, code in ISA_NAMES.items()}


def supported_isas() -> list[str]:
    return [name for name, code in ISA_NAMES.items() if lib.zk_isa_supported(code)]


def isa() -> str:
    """Name of the active path."""
    return _ISA_BY_CODE[lib.zk_get_isa()]


def set_isa(name: str) -> None:
    """Make every kernel take path `name`; raises if this CPU cannot run it."""
    if name not in ISA_NAMES:
        raise ValueError(f"unknown ISA {name!r}: expected one of {', '.join(ISA_NAMES)}")
    if lib.zk_set_isa(ISA_NAMES[name]) != 0:
        raise RuntimeError(
            f"this CPU cannot run the {name} path (it supports: {', '.join(supported_isas())})"
        )


@contextmanager
def using_isa(name: str):
    """Run a block with every kernel on path `name`, then restore the path."""
    before = isa()
    set_isa(name)
    try:
        yield name
    finally:
        set_isa(before)


def on_each_isa(fn: Callable[[], T]) -> dict[str, T]:
    """{path: fn()} for every path this CPU supports, to compare them."""
    results = {}
    for name in supported_isas():
        with using_isa(name):
            results[name] = fn()
    return results


def sha_ni() -> bool:
    """True when SHA-256 runs on the SHA-NI instructions (vector paths only)."""
    return bool(lib.zk_sha_ni_supported()) and isa() != "scalar"


def u32p(arr: np.ndarray):
    """A uint32_t* to the data of a C-contiguous uint32 array (no copy).
    ffi.from_buffer costs ~0.2 us a call against ~1.5 us for arr.ctypes."""
    return ffi.from_buffer("uint32_t[]", arr)


def u8p(arr: np.ndarray):
    return ffi.from_buffer("uint8_t[]", arr)


class ForcedIsaUnusable(ImportError):
    """ZKSIDECAR_ISA names a path that is not one, or one this CPU cannot
    run: the kernels are not usable as asked (an ImportError, since it is
    raised at import, before anything runs on a path other than the one
    forced)."""


_forced = os.environ.get("ZKSIDECAR_ISA")
if _forced:
    try:
        set_isa(_forced.strip().lower())
    except (ValueError, RuntimeError) as exc:
        raise ForcedIsaUnusable(f"ZKSIDECAR_ISA={_forced}: {exc}") from None
