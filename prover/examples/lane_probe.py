"""The record lane's probe: T rows of Poseidon2 on records, the leaves published.

The hash of docs/ZK.md's record lane (sections 3.2 and 13) without the
rest of the lane (no encodings, classification or tuples), at its real
shape: tests/test_poseidon2_air.py proves it to check the Poseidon2
constraints and their C witness there.  It is a transparent AIR (no
masking), and a complete one: it proves and verifies.

Columns (one segment ``lane``, 291 in all):

    row         0, 1, 2, ... (row[0] = 0, row' = row + 1)
    x0 .. x15   the record: four salt elements and twelve data elements
    p2.*        the 274 Poseidon2 registers (prover/poseidon2_air.py)

One LogUp sum binds the trace to the published leaves, as the lane's sum
will (docs/ZK.md, section 3.4, tag 7): every row consumes
<7, row, leaf_0 .. leaf_7>, leaf_k = pi(x)_k + x_k (linear in the columns:
no column of its own), and the verifier supplies <7, j, leaf_j> for every
published leaf j (the derived value ``leaf_sum``), so the sum's target is
-leaf_sum.  The row index in the tuple pins leaf j to row j.
"""
from __future__ import annotations

import numpy as np

from .. import field as F
from .. import logup
from .. import poseidon2
from ..air import Air, BoundaryConstraint, Frame, Segment, TransitionConstraint
from ..expr import const
from ..ext_scalar import Ext
from ..orderbook.air import _public_sum
from ..poseidon2_air import Poseidon2Columns
from ..poseidon2_reference import LEAF_WIDTH, P, WIDTH

#: the leaf tuple's tag, the lane's (docs/ZK.md, section 3.4)
TAG_LEAF = 7
INPUTS = tuple(f"x{k}" for k in range(WIDTH))
#: <tag, row, leaf_0 .. leaf_7>
LEAF_ARITY = 2 + LEAF_WIDTH


class LaneProbeAir(Air):
    #: alpha, then one compression challenge per leaf-tuple entry after the first
    num_challenges = LEAF_ARITY
    derived_values = ("leaf_sum",)

    def __init__(self, trace_length: int, leaves: np.ndarray):
        """`leaves`: the published leaves, (trace_length, 8) canonical
        field elements, leaf j of row j."""
        leaves = np.asarray(leaves)
        if leaves.shape != (trace_length, LEAF_WIDTH):
            raise ValueError(f"the lane probe publishes one leaf of {LEAF_WIDTH} elements per row: "
                             f"expected ({trace_length}, {LEAF_WIDTH}) leaves, got {leaves.shape}")
        if leaves.dtype.kind not in "ui" or (leaves < 0).any() or (leaves >= P).any():
            bad = np.argwhere((leaves < 0) | (leaves >= P))
            where = f" (leaf {bad[0][0]}, element {bad[0][1]})" if len(bad) else ""
            raise ValueError(f"the leaves must be canonical field elements below p = {P}{where}")
        self.leaves = np.ascontiguousarray(leaves, dtype=np.uint32)
        self.p2 = Poseidon2Columns("p2")
        self.main_segments = (Segment("lane", ("row",) + INPUTS + self.p2.names),)
        self.lu = logup.LogUp("leaf", [logup.consume([TAG_LEAF, "row"] + self.p2.leaf_terms(INPUTS))],
                              alpha=0, beta=1, target=lambda f: -f.derived("leaf_sum"))
        self.aux_columns = self.lu.columns
        self.lookup_arguments = (self.lu,)
        super().__init__(trace_length)

    def transitions(self, f: Frame) -> list[TransitionConstraint]:
        row = TransitionConstraint("row' = row + 1", f.next("row") - f.cur("row") - 1, 1)
        return [row] + self.p2.transitions(f, [f.cur(c) for c in INPUTS]) + self.lu.transitions(f)

    def boundaries(self, f: Frame) -> list[BoundaryConstraint]:
        return [BoundaryConstraint("row[0] = 0", "row", 0, const(0))]

    def public_bytes(self) -> bytes:
        return b"zksidecar.lane-probe.v1;" + super().public_bytes() + self.leaves.tobytes()

    def algebraic_degree(self, trace_length: int) -> int:
        # the sum's fractions: one per row, and the verifier's one per leaf
        return max(self.identity_degree(trace_length),
                   self.lu.soundness_degree(trace_length, len(self.leaves)))

    def leaf_table(self) -> np.ndarray:
        """The verifier's side of the sum: <7, j, leaf_j>, (T, 10) canonical."""
        n = self.trace_length
        table = np.empty((n, LEAF_ARITY), dtype=np.uint32)
        table[:, 0], table[:, 1], table[:, 2:] = TAG_LEAF, np.arange(n), self.leaves
        return table

    def derive(self, challenges):
        coeffs = self.lu.compression_coefficients(challenges, LEAF_ARITY)
        return {"leaf_sum": Ext.from_mont(_public_sum([self.leaf_table()], challenges[0], coeffs))}

    def build_aux(self, main, challenges):
        return logup.build_aux(self, [self.lu], main, challenges)


def lane_probe_witness(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The probe's trace for `records` ((T, 16) canonical field elements):
    the (T, 291) Montgomery matrix of segment ``lane`` (the registers
    written by the C kernel straight into their columns), and the leaves,
    (T, 8) canonical."""
    records = np.asarray(records)
    n = records.shape[0]
    if records.ndim != 2 or records.shape[1] != WIDTH:
        raise ValueError(f"records must have shape (T, {WIDTH}), got {records.shape}")
    trace = np.empty((n, 1 + WIDTH + poseidon2.AIR_COLUMNS), dtype=np.uint32)
    trace[:, 0] = F.encode(np.arange(n, dtype=np.int64))
    x = F.encode(records)
    trace[:, 1:1 + WIDTH] = x
    poseidon2.air_registers(x, out=trace[:, 1 + WIDTH:])
    last = 1 + WIDTH + poseidon2.AIR_COLUMNS - LEAF_WIDTH       # pi(x)_0 .. pi(x)_7
    leaves = F.decode(F.add(np.ascontiguousarray(trace[:, last:]), np.ascontiguousarray(x[:, :LEAF_WIDTH])))
    return trace, leaves


def random_records(trace_length: int, seed: int = 0) -> np.ndarray:
    """(T, 16) uniformly random field elements: records as the lane hashes
    them (their packing does not change the hash's cost)."""
    return np.random.default_rng(seed).integers(0, P, (trace_length, WIDTH), dtype=np.int64)


def lane_probe_instance(trace_length: int, seed: int = 0):
    """An AIR and a valid trace: random records, their leaves published."""
    trace, leaves = lane_probe_witness(random_records(trace_length, seed))
    return LaneProbeAir(trace_length, leaves), {"lane": trace}
