"""The quartic extension F_p[X]/(X^4 - 11) over numpy arrays.

An extension element is four BabyBear words (coefficients of 1, X, X^2, X^3,
each in Montgomery form); an array of n elements has shape (n, 4).  Addition
and subtraction are the base field's, word by word.  The kernels are in
csrc/field/ext4.c.
"""
from __future__ import annotations

import numpy as np

from . import field
from .field import checked_array, output_array
from .native import ffi, lib, u32p

DEGREE = 4
W = 11  # X^4 = W


def _ext(a: np.ndarray, name: str) -> np.ndarray:
    checked_array(a, name)
    if a.ndim != 2 or a.shape[1] != DEGREE:
        raise ValueError(f"{name} must have shape (n, 4) for extension elements, got {a.shape}")
    return a


def encode(coeffs) -> np.ndarray:
    """Canonical coefficients, shape (n, 4) or (4,), to Montgomery form."""
    out = field.encode(coeffs)
    if out.shape[-1] != DEGREE:
        raise ValueError(f"extension elements need 4 coefficients, got shape {out.shape}")
    return out


decode = field.decode


def from_base(a: np.ndarray) -> np.ndarray:
    """Embed base elements (n,) as extension elements (n, 4)."""
    checked_array(a, "a")
    out = np.zeros((a.size, DEGREE), dtype=np.uint32)
    out[:, 0] = a.ravel()
    return out


def add(a, b, out=None):
    return field.add(_ext(a, "a"), _ext(b, "b"), out)


def sub(a, b, out=None):
    return field.sub(_ext(a, "a"), _ext(b, "b"), out)


def mul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    _ext(a, "a"), _ext(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} and {b.shape}")
    out = output_array(out, a)
    lib.zk_ext4_mul(u32p(out), u32p(a), u32p(b), a.shape[0])
    return out


def mul_scalar(a: np.ndarray, s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a[i] * s for extension a (n, 4) and one extension element s (4,)."""
    _ext(a, "a"), checked_array(s, "s")
    if s.shape != (DEGREE,):
        raise ValueError(f"s must have shape (4,), got {s.shape}")
    out = output_array(out, a)
    lib.zk_ext4_mul_scalar(u32p(out), u32p(a), u32p(s), a.shape[0])
    return out


def mul_base(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a[i] * b[i] for extension a (n, 4) and base b (n,)."""
    _ext(a, "a"), checked_array(b, "b")
    if b.shape != (a.shape[0],):
        raise ValueError(f"b must have shape ({a.shape[0]},), got {b.shape}")
    out = output_array(out, a)
    lib.zk_ext4_mul_base(u32p(out), u32p(a), u32p(b), a.shape[0])
    return out


def scale_base(a: np.ndarray, s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a[i] * s for base a (n,) and one extension element s (4,)."""
    checked_array(a, "a"), checked_array(s, "s")
    if a.ndim != 1 or s.shape != (DEGREE,):
        raise ValueError(f"need a of shape (n,) and s of shape (4,), got {a.shape} and {s.shape}")
    like = np.empty((a.size, DEGREE), dtype=np.uint32)
    out = like if out is None else output_array(out, like)
    lib.zk_ext4_scale_base(u32p(out), u32p(a), u32p(s), a.size)
    return out


def combine_rows(m: np.ndarray, coeffs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row r of the base matrix m (rows, cols) combined with extension
    coefficients (cols, 4): out[r] = sum_c m[r, c] * coeffs[c]."""
    checked_array(m, "m"), _ext(coeffs, "coeffs")
    if m.ndim != 2 or m.shape[1] != coeffs.shape[0]:
        raise ValueError(f"m {m.shape} and coeffs {coeffs.shape} do not match")
    like = np.empty((m.shape[0], DEGREE), dtype=np.uint32)
    out = like if out is None else output_array(out, like)
    lib.zk_ext4_combine_rows(u32p(out), u32p(m), u32p(coeffs), m.shape[0], m.shape[1])
    return out


def combine_rows2(m: np.ndarray, coeffs_a: np.ndarray, coeffs_b: np.ndarray,
                  out_a: np.ndarray | None = None, out_b: np.ndarray | None = None,
                  columns_b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two combinations of the rows of one base matrix m (rows, cols), in one
    pass over it: (sum_c m[r, c] * coeffs_a[c], sum_c m[r, c] * coeffs_b[c]).
    With `columns_b` (column indices, ascending, distinct) the second is
    over those columns alone, coeffs_b one row per index: the kernel then
    multiplies only the column chunks that hold one of them."""
    checked_array(m, "m"), _ext(coeffs_a, "coeffs_a"), _ext(coeffs_b, "coeffs_b")
    if columns_b is not None and m.ndim == 2:
        cols = _column_list(columns_b, m.shape[1], coeffs_b.shape[0], "coeffs_b")
        full = np.zeros_like(coeffs_a)
        full[cols] = coeffs_b
        coeffs_b = full
    if m.ndim != 2 or m.shape[1] != coeffs_a.shape[0] or coeffs_b.shape != coeffs_a.shape:
        raise ValueError(f"m {m.shape}, coeffs_a {coeffs_a.shape} and coeffs_b {coeffs_b.shape} do not match")
    like = np.empty((m.shape[0], DEGREE), dtype=np.uint32)
    out_a = np.empty_like(like) if out_a is None else output_array(out_a, like)
    out_b = np.empty_like(like) if out_b is None else output_array(out_b, like)
    if np.shares_memory(out_a, out_b):
        raise ValueError("out_a and out_b must not overlap")
    lib.zk_ext4_combine_rows2(u32p(out_a), u32p(out_b), u32p(m), u32p(coeffs_a), u32p(coeffs_b),
                              m.shape[0], m.shape[1])
    return out_a, out_b


def _column_list(columns: np.ndarray, width: int, rows: int | None = None, what: str = "") -> np.ndarray:
    """`columns` as an int64 array of ascending, distinct indices below
    `width` (as many as `what` has rows, when `rows` is given)."""
    cols = np.asarray(columns, dtype=np.int64)
    if cols.ndim != 1 or (rows is not None and cols.size != rows):
        raise ValueError(f"{what} has {rows} rows for {cols.size} columns")
    if cols.size and (cols[0] < 0 or cols[-1] >= width or np.any(np.diff(cols) <= 0)):
        raise ValueError(f"columns must be ascending and distinct, in 0..{width - 1}: {cols.tolist()}")
    return cols


def powers(x: np.ndarray, n: int) -> np.ndarray:
    """(n, 4) Montgomery: x^0 .. x^(n-1) of one extension element x ((4,)
    Montgomery words), by doubling: one kernel product per bit of n."""
    x = np.ascontiguousarray(x, dtype=np.uint32).reshape(DEGREE)
    out = np.zeros((n, DEGREE), dtype=np.uint32)
    if n == 0:
        return out
    out[0] = field.encode(np.array([1, 0, 0, 0], dtype=np.uint32))
    filled, step = 1, x
    while filled < n:
        take = min(filled, n - filled)
        # rows of a C-contiguous array: both slices contiguous, written in place
        mul_scalar(out[:take], step, out=out[filled: filled + take])
        filled += take
        step = mul_scalar(step.reshape(1, DEGREE), step)[0]
    return out


def sum_rows(m: np.ndarray, w: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The rows of the base matrix m (rows, cols) summed with extension
    weights w (rows, 4): out[c] = sum_r w[r] * m[r, c], (cols, 4).  The same
    as combine_rows of m's transpose, read row-major (no transpose)."""
    checked_array(m, "m"), _ext(w, "w")
    if m.ndim != 2 or m.shape[0] != w.shape[0]:
        raise ValueError(f"m {m.shape} and w {w.shape} do not match")
    like = np.empty((m.shape[1], DEGREE), dtype=np.uint32)
    out = like if out is None else output_array(out, like)
    _check_scratch(lib.zk_ext4_sum_rows(u32p(out), u32p(m), u32p(w), m.shape[0], m.shape[1]), m)
    return out


def sum_rows2(m: np.ndarray, w_a: np.ndarray, w_b: np.ndarray,
              columns_b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two weightings of the rows of one base matrix m (rows, cols), in one
    pass over it: (sum_r w_a[r] * m[r, c], sum_r w_b[r] * m[r, c]), each
    (cols, 4); with `columns_b` (column indices, ascending, distinct) the
    second only for those columns, (len(columns_b), 4) in their order: the
    kernel weighs twice only the column chunks that hold one of them."""
    checked_array(m, "m"), _ext(w_a, "w_a"), _ext(w_b, "w_b")
    if m.ndim != 2 or m.shape[0] != w_a.shape[0] or w_b.shape != w_a.shape:
        raise ValueError(f"m {m.shape}, w_a {w_a.shape} and w_b {w_b.shape} do not match")
    mask = ffi.NULL
    if columns_b is not None:
        cols = _column_list(columns_b, m.shape[1])
        flags = np.zeros(m.shape[1] + 1, dtype=np.uint8)
        flags[cols] = 1
        mask = ffi.from_buffer("uint8_t[]", flags)
    out_a = np.empty((m.shape[1], DEGREE), dtype=np.uint32)
    out_b = np.empty_like(out_a)
    _check_scratch(lib.zk_ext4_sum_rows2(u32p(out_a), u32p(out_b), u32p(m), u32p(w_a), u32p(w_b), mask,
                                         m.shape[0], m.shape[1]), m)
    return out_a, (out_b if columns_b is None else out_b[cols])


def _check_scratch(rc: int, m: np.ndarray) -> None:
    if rc == -2:
        raise MemoryError(f"no scratch memory to sum the rows of a {m.shape} matrix")


def inv(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Elementwise inverse; ZeroDivisionError names the first zero."""
    _ext(a, "a")
    out = output_array(out, a)
    if np.shares_memory(out, a):
        raise ValueError("inv cannot write over its input")
    bad = lib.zk_ext4_inv(u32p(out), u32p(a), a.shape[0])
    if bad == -2:
        raise MemoryError(f"no scratch memory to invert {a.shape[0]} extension elements")
    if bad >= 0:
        raise ZeroDivisionError(f"inverse of zero at index {bad}")
    return out


def add_quotient(f: np.ndarray, num: np.ndarray, c: np.ndarray, x: np.ndarray,
                 z: np.ndarray) -> np.ndarray:
    """f += (num - c) / (x - z), row by row, in place: a DEEP quotient term
    (num, f (n, 4); base points x (n,); constants c, z (4,); all
    Montgomery), in one pass that keeps its intermediates in cache.
    ZeroDivisionError names the first row where x = z."""
    _ext(f, "f"), _ext(num, "num")
    checked_array(x, "x"), checked_array(c, "c"), checked_array(z, "z")
    n = f.shape[0]
    if num.shape != f.shape or x.shape != (n,) or c.shape != (4,) or z.shape != (4,):
        raise ValueError(f"shapes f {f.shape}, num {num.shape}, x {x.shape}, c {c.shape}, z {z.shape}: "
                         "need (n, 4), (n, 4), (n,), (4,), (4,)")
    if not f.flags.writeable:
        raise ValueError("f is read-only")
    bad = lib.zk_ext4_add_quotient(u32p(f), u32p(num), u32p(c), u32p(x), u32p(z), n)
    if bad == -2:
        raise MemoryError("no scratch memory for a DEEP quotient term")
    if bad >= 0:
        raise ZeroDivisionError(f"x - z is zero at row {bad}")
    return f
