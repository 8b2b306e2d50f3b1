"""BabyBear field arithmetic over numpy arrays.

p = 15 * 2^27 + 1.  Arrays are ``uint32`` and hold elements in **Montgomery
form** (x stored as x * 2^32 mod p), the form every kernel works in; this keeps a
product to one Montgomery reduction (csrc/field/bb_field.h explains it).  Values
enter through :func:`encode` and leave through :func:`decode`; nothing else
converts, so form mistakes stay at the edges.

Each function is one C call over the whole array with the GIL released, and
writes into ``out`` (allocated if not given) without copies.
"""
from __future__ import annotations

import numpy as np

from .native import lib, u32p

P = 2013265921
TWO_ADICITY = 27
GENERATOR = 31  # canonical; generates the multiplicative group
ONE = 268435454  # 1 in Montgomery form (2^32 mod p)
_R = 1 << 32


def checked_array(a: np.ndarray, name: str) -> np.ndarray:
    """`a`, if it is a C-contiguous uint32 array (what the kernels take);
    TypeError or ValueError naming it otherwise."""
    if not isinstance(a, np.ndarray) or a.dtype != np.uint32:
        raise TypeError(f"{name} must be a numpy uint32 array, got {type(a).__name__} "
                        f"{getattr(a, 'dtype', '')}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    return a


def output_array(out: np.ndarray | None, like: np.ndarray) -> np.ndarray:
    """Where a kernel writes a result shaped like `like`: `out` if given
    (checked: uint32, contiguous, that shape, writeable), else a new array."""
    if out is None:
        return np.empty_like(like)
    checked_array(out, "out")
    if out.shape != like.shape:
        raise ValueError(f"out has shape {out.shape}, expected {like.shape}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


def _index(flat: int, shape: tuple) -> tuple:
    """A flat index as a tuple of ints, for error messages."""
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def _pair(a, b):
    checked_array(a, "a"), checked_array(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} and {b.shape}")


# ----------------------------------------------------------------- edges --

def encode(values) -> np.ndarray:
    """Canonical integers (anything numpy can read as integers in [0, p)) to
    a Montgomery-form array.  Raises ValueError naming the first bad value."""
    src = np.asarray(values)
    if src.dtype.kind not in "iub":
        raise TypeError(f"field values must be integers, got dtype {src.dtype}")
    if src.dtype.kind == "i" and src.size and src.min() < 0:
        idx = _index(int(np.argmax(src < 0)), src.shape)
        raise ValueError(f"field value {int(src[idx])} at index {idx} is negative")
    if src.dtype.itemsize > 4 and src.size and src.max() >= P:
        idx = _index(int(np.argmax(src >= P)), src.shape)
        raise ValueError(f"field value {int(src[idx])} at index {idx} is not below p = {P}")
    src = np.ascontiguousarray(src, dtype=np.uint32)
    out = np.empty_like(src)
    bad = lib.zk_fp_encode(u32p(out), u32p(src), src.size)
    if bad >= 0:
        idx = _index(bad, src.shape)
        raise ValueError(f"field value {int(src[idx])} at index {idx} is not below p = {P}")
    return out


def decode(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Montgomery form to canonical integers in [0, p)."""
    checked_array(a, "a")
    out = output_array(out, a)
    lib.zk_fp_decode(u32p(out), u32p(a), a.size)
    return out


def encode_int(x: int) -> int:
    """One canonical integer to its Montgomery form (for constants)."""
    return (x % P) * _R % P


def decode_int(x: int) -> int:
    return x * pow(_R, -1, P) % P


# ------------------------------------------------------------ arithmetic --

def add(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    _pair(a, b)
    out = output_array(out, a)
    lib.zk_fp_add(u32p(out), u32p(a), u32p(b), a.size)
    return out


def sub(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    _pair(a, b)
    out = output_array(out, a)
    lib.zk_fp_sub(u32p(out), u32p(a), u32p(b), a.size)
    return out


def mul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    _pair(a, b)
    out = output_array(out, a)
    lib.zk_fp_mul(u32p(out), u32p(a), u32p(b), a.size)
    return out


def neg(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    checked_array(a, "a")
    out = output_array(out, a)
    lib.zk_fp_neg(u32p(out), u32p(a), a.size)
    return out


def mul_scalar(a: np.ndarray, s: int, out: np.ndarray | None = None) -> np.ndarray:
    """a * s for one element s, given in Montgomery form."""
    checked_array(a, "a")
    if not 0 <= s < P:
        raise ValueError(f"scalar {s} is not a reduced field element")
    out = output_array(out, a)
    lib.zk_fp_mul_scalar(u32p(out), u32p(a), s, a.size)
    return out


def power(a: np.ndarray, e: int, out: np.ndarray | None = None) -> np.ndarray:
    """a ** e elementwise, for one integer exponent e >= 0 (0 ** 0 = 1)."""
    checked_array(a, "a")
    if not 0 <= e < 1 << 64:
        raise ValueError(f"exponent {e} must be in [0, 2^64)")
    out = output_array(out, a)
    lib.zk_fp_pow(u32p(out), u32p(a), e, a.size)
    return out


def inv(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Elementwise inverse (one batch inversion).  Raises ZeroDivisionError
    naming the first zero."""
    checked_array(a, "a")
    out = output_array(out, a)
    if np.shares_memory(out, a):
        raise ValueError("inv cannot write over its input")
    bad = lib.zk_fp_inv(u32p(out), u32p(a), a.size)
    if bad >= 0:
        raise ZeroDivisionError(f"inverse of zero at index {_index(bad, a.shape)}")
    return out


def two_adic_generator(log_n: int) -> int:
    """A generator of the order-2^log_n subgroup (canonical form)."""
    if not 0 <= log_n <= TWO_ADICITY:
        raise ValueError(f"BabyBear has no subgroup of order 2^{log_n} (max 2^{TWO_ADICITY})")
    return pow(GENERATOR, (P - 1) >> log_n, P)
