"""Range check by LogUp: every value of `lanes` main columns lies in [0, 2^bits).

Columns (one segment "main"):  v0 .. v{lanes-1} (the values), m (multiplicities).

The table is the periodic column ``table`` of period T = 2^bits: row i holds
i mod T.  Each table value therefore appears N / T times; the prover may put a
value's whole count on any of its copies (we use the first), LogUp only sees
the totals.  The argument:

    sum_rows m / (alpha - table)  =  sum_rows sum_lanes 1 / (alpha - v_lane)

Why a periodic column and not an identity column (t' = t + 1, t[0] = 0):
a periodic table costs no committed column and no constraint, and works for
any trace length N >= T; an identity column is only a correct table when
N == T (past row T-1 it would keep counting).  The price is on the verifier,
which interpolates the period-T column (and its rotated twin, see logup.py)
at the out-of-domain point: O(T) Python operations, negligible for 8-bit
limbs and a fraction of a second for 16-bit ones.  So 16-bit limbs need
N >= 2^16 rows; tests use 8-bit limbs (T = 256) at 2^8..2^10 rows.

Degree 3 (lanes = 1, one fraction group): the quotient has degree below 2N,
so proofs need log_blowup >= 1.
"""
from __future__ import annotations

import numpy as np

from .. import field as F
from .. import logup
from ..air import Air, BoundaryConstraint, Frame, Segment, TransitionConstraint


class RangeCheckAir(Air):
    num_challenges = 1   # alpha (1-tuples need no compression challenge)

    def __init__(self, trace_length: int, bits: int = 8, lanes: int = 1):
        if not 1 <= bits <= 20:
            raise ValueError(f"bits must be in 1..20, got {bits}")
        if trace_length < 1 << bits:
            raise ValueError(f"a {bits}-bit table needs at least 2^{bits} rows, "
                             f"got {trace_length}")
        self.bits, self.lanes = bits, lanes
        self.value_columns = tuple(f"v{i}" for i in range(lanes))
        self.main_segments = (Segment("main", self.value_columns + ("m",)),)
        self.periodic_columns = logup.with_next_rows({"table": list(range(1 << bits))})
        self.argument = logup.LogUp(
            "range", [logup.supply([lambda f: f.periodic("table")], "m")]
            + [logup.consume([v]) for v in self.value_columns])
        self.aux_columns = logup.aux_columns(self.argument)
        self.lookup_arguments = (self.argument,)
        super().__init__(trace_length)

    def transitions(self, f: Frame) -> list[TransitionConstraint]:
        return self.argument.transitions(f)

    def boundaries(self, f: Frame) -> list[BoundaryConstraint]:
        return self.argument.boundaries(f)

    def build_aux(self, main, challenges):
        return logup.build_aux(self, [self.argument], main, challenges)

    def public_bytes(self) -> bytes:
        return f"bits={self.bits};lanes={self.lanes};".encode()


def multiplicities(values: np.ndarray, bits: int, trace_length: int) -> np.ndarray:
    """Canonical multiplicity column: the count of table value t on row t
    (values outside the table are not counted: such a trace cannot close)."""
    v = np.asarray(values, dtype=np.int64).ravel()
    v = v[(v >= 0) & (v < 1 << bits)]
    out = np.zeros(trace_length, dtype=np.int64)
    out[: 1 << bits] = np.bincount(v, minlength=1 << bits)
    return out


def range_check_trace(values: np.ndarray, bits: int) -> np.ndarray:
    """(N, lanes + 1) Montgomery trace for canonical values (N, lanes)."""
    values = np.asarray(values, dtype=np.int64)
    n = values.shape[0]
    m = multiplicities(values, bits, n)
    return F.encode(np.column_stack([values, m]))


def range_check_instance(trace_length: int, bits: int = 8, lanes: int = 1, seed: int = 0):
    """An AIR and a valid trace (random values, including both ends of the range)."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 1 << bits, (trace_length, lanes))
    values[0, 0], values[-1, -1] = 0, (1 << bits) - 1
    air = RangeCheckAir(trace_length, bits, lanes)
    return air, {"main": range_check_trace(values, bits)}
