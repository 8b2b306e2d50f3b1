"""Single extension-field elements in plain Python, for the verifier.

The verifier's scalar values (challenges, the boundary terms at the
out-of-domain point, the constants of the constraint program) and the
reference evaluation of the constraints at that point
(verify.ood_quotient(..., compiled=False)): a few hundred operations on
Python integers, clearer than kernel calls and independent of the prover's
C.  Values are canonical (not Montgomery).  The test suite checks this
arithmetic against the C kernels (tests/test_verify_fast.py).
"""
from __future__ import annotations

import numpy as np

from .field import P

W = 11
_R = (1 << 32) % P          # Montgomery form of x is x * 2^32 mod p (field.encode_int)
_R_INV = pow(_R, -1, P)


class Ext:
    """a0 + a1 X + a2 X^2 + a3 X^3 in F_p[X]/(X^4 - 11), canonical ints."""

    __slots__ = ("c",)

    def __init__(self, c0=0, c1=0, c2=0, c3=0):
        self.c = (c0 % P, c1 % P, c2 % P, c3 % P)

    @staticmethod
    def lift(x) -> "Ext":
        return x if isinstance(x, Ext) else Ext(int(x))

    @staticmethod
    def from_mont(words: np.ndarray) -> "Ext":
        """From one Montgomery-form (4,) array.  (In Python integers: the
        verifier converts hundreds of single values, where a kernel call
        costs more than the arithmetic; tests hold it to field.decode.)"""
        return Ext(*(v * _R_INV for v in np.asarray(words, dtype=np.uint32).tolist()))

    def to_mont(self) -> np.ndarray:
        return np.array([c * _R % P for c in self.c], dtype=np.uint32)

    @staticmethod
    def _of(c0, c1, c2, c3) -> "Ext":
        """From four ints already reduced mod p (the operators below reduce
        in place: the verifier does a few thousand of them per proof)."""
        r = object.__new__(Ext)
        r.c = (c0, c1, c2, c3)
        return r

    def __add__(self, o):
        o = Ext.lift(o)
        a0, a1, a2, a3 = self.c
        b0, b1, b2, b3 = o.c
        return Ext._of((a0 + b0) % P, (a1 + b1) % P, (a2 + b2) % P, (a3 + b3) % P)

    __radd__ = __add__

    def __sub__(self, o):
        o = Ext.lift(o)
        a0, a1, a2, a3 = self.c
        b0, b1, b2, b3 = o.c
        return Ext._of((a0 - b0) % P, (a1 - b1) % P, (a2 - b2) % P, (a3 - b3) % P)

    def __rsub__(self, o):
        return Ext.lift(o) - self

    def __neg__(self):
        return Ext(*(-a for a in self.c))

    def __mul__(self, o):
        if not isinstance(o, Ext):
            k = int(o)
            return Ext(*(a * k for a in self.c))
        a0, a1, a2, a3 = self.c
        b0, b1, b2, b3 = o.c
        return Ext._of((a0 * b0 + W * (a1 * b3 + a2 * b2 + a3 * b1)) % P,
                       (a0 * b1 + a1 * b0 + W * (a2 * b3 + a3 * b2)) % P,
                       (a0 * b2 + a1 * b1 + a2 * b0 + W * a3 * b3) % P,
                       (a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0) % P)

    __rmul__ = __mul__

    def __pow__(self, e: int):
        r, b = Ext(1), self
        while e:
            if e & 1:
                r = r * b
            b = b * b
            e >>= 1
        return r

    def inverse(self) -> "Ext":
        """By the norm: 1/f = f(-X) (b0 - b2 X^2) / (b0^2 - W b2^2)."""
        a0, a1, a2, a3 = self.c
        b0 = (a0 * a0 + W * a2 * a2 - 2 * W * a1 * a3) % P
        b2 = (2 * a0 * a2 - a1 * a1 - W * a3 * a3) % P
        norm = (b0 * b0 - W * b2 * b2) % P
        if norm == 0:
            raise ZeroDivisionError("inverse of zero in the extension field")
        ni = pow(norm, P - 2, P)
        g = Ext(a0 * b0 - W * a2 * b2, W * a3 * b2 - a1 * b0, a2 * b0 - a0 * b2, a1 * b2 - a3 * b0)
        return g * ni

    def __truediv__(self, o):
        return self * Ext.lift(o).inverse()

    def __eq__(self, o):
        return isinstance(o, (Ext, int)) and self.c == Ext.lift(o).c

    def __hash__(self):
        return hash(self.c)

    def __repr__(self):
        return f"Ext{self.c}"

    def is_base(self) -> bool:
        return self.c[1] == self.c[2] == self.c[3] == 0


class ScalarAlgebra:
    """Evaluates constraint expressions at one point, given each variable's
    value (an Ext or int) through `values`."""

    def __init__(self, values):
        self._values = values

    def variable(self, key):
        return Ext.lift(self._values(key))

    def constant(self, value):
        return Ext(value)

    def add(self, a, b):
        return a + b

    def sub(self, a, b):
        return a - b

    def mul(self, a, b):
        return a * b

    def neg(self, a):
        return -a
