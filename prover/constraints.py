"""Evaluating constraint expressions over whole columns.

Used twice by the prover: over the low-degree extension (to build the
quotient) and over the trace itself (the debug check).  A value is either a
column (numpy, Montgomery form; base (n,) or extension (n, 4)) or a scalar
(:class:`Ext`, canonical: constants, public values, challenges).  Each
operation is one kernel call over the column; scalars fold in Python.
"""
from __future__ import annotations

from typing import Callable, Union

import numpy as np

from . import extension as E
from . import field as F
from .ext_scalar import Ext

Value = Union[np.ndarray, Ext]


def _is_ext(a: np.ndarray) -> bool:
    return a.ndim == 2


def _as_ext(a: np.ndarray) -> np.ndarray:
    return a if _is_ext(a) else E.from_base(a)


def _broadcast(s: Ext, n: int, ext: bool) -> np.ndarray:
    if ext:
        return np.ascontiguousarray(np.broadcast_to(s.to_mont(), (n, 4)))
    return np.full(n, F.encode_int(s.c[0]), dtype=np.uint32)


class ColumnAlgebra:
    """Evaluates expressions over columns of length n.  `column(key)` gives a
    variable's column (or scalar)."""

    def __init__(self, n: int, column: Callable[[tuple], Value]):
        self.n, self._column = n, column

    def variable(self, key):
        v = self._column(key)
        return v if isinstance(v, np.ndarray) else Ext.lift(v)

    def constant(self, value):
        return Ext(value)

    def _coerce(self, a: Value, b: Value) -> tuple[np.ndarray, np.ndarray]:
        """Two columns of one kind (base or extension) for add/sub."""
        ext = (isinstance(a, np.ndarray) and _is_ext(a)) or (isinstance(b, np.ndarray) and _is_ext(b)) \
            or (isinstance(a, Ext) and not a.is_base()) or (isinstance(b, Ext) and not b.is_base())
        cols = []
        for v in (a, b):
            if isinstance(v, Ext):
                cols.append(_broadcast(v, self.n, ext))
            else:
                cols.append(_as_ext(v) if ext else v)
        return cols[0], cols[1]

    def add(self, a, b):
        if isinstance(a, Ext) and isinstance(b, Ext):
            return a + b
        return F.add(*self._coerce(a, b))

    def sub(self, a, b):
        if isinstance(a, Ext) and isinstance(b, Ext):
            return a - b
        return F.sub(*self._coerce(a, b))

    def neg(self, a):
        return -a if isinstance(a, Ext) else F.neg(a)

    def mul(self, a, b):
        if isinstance(a, Ext) and isinstance(b, Ext):
            return a * b
        if isinstance(a, Ext):
            a, b = b, a
        if isinstance(b, Ext):  # column times scalar
            if b.is_base():
                return F.mul_scalar(a, F.encode_int(b.c[0]))
            if not _is_ext(a):
                return E.scale_base(a, b.to_mont())
            return E.mul_scalar(a, b.to_mont())
        if _is_ext(a) and _is_ext(b):
            return E.mul(a, b)
        if _is_ext(a):
            return E.mul_base(a, b)
        if _is_ext(b):
            return E.mul_base(b, a)
        return F.mul(a, b)


def as_column(v: Value, n: int, ext: bool) -> np.ndarray:
    """A value as a full column (scalars broadcast), extension if `ext`."""
    if isinstance(v, Ext):
        return _broadcast(v, n, ext)
    return _as_ext(v) if ext else v
