"""A matrix is opened at w*z only when some transition constraint reads its
next row (proof.Matrix.at_next, Air.next_row_columns; proof format 4):
the layout, the prover and the reference agree, and the values at z of a
matrix with no next-row opening stay bound by DEEP."""
import numpy as np
import pytest

from zksidecar.engine.records import OP_DTYPE, TRADE_DTYPE
from zksidecar.prover import field as F
from zksidecar.prover import params
from zksidecar.prover.air import Air, BoundaryConstraint, Frame, Segment, TransitionConstraint
from zksidecar.prover.orderbook.air import BookAir, OrderBookAir
from zksidecar.prover.proof import Proof, layout
from zksidecar.prover.prove import prove
from zksidecar.prover.reference import reference_prove
from zksidecar.prover.verify import VerificationError, verify

OPTS = params.ProofOptions(log_blowup=2, num_queries=16, grinding_bits=0, fri_folding_factor=4,
                           fri_max_final_degree=4)


class SquaresAir(Air):
    """w' = w + 1 (segment "walk", read on the next row), v = w^2 on every
    row but the last (segment "square", read on the current row only)."""

    def __init__(self, n: int, w0: int):
        self.main_segments = (Segment("walk", ("w",)), Segment("square", ("v",)))
        super().__init__(n, {"w0": w0})

    def transitions(self, f: Frame):
        return [TransitionConstraint("step", f.next("w") - f.cur("w") - 1, 1),
                TransitionConstraint("square", f.cur("v") - f.cur("w") * f.cur("w"), 2)]

    def boundaries(self, f: Frame):
        return [BoundaryConstraint("w0", "w", 0, f.public("w0"))]


def _instance(n: int = 16, w0: int = 5):
    w = (w0 + np.arange(n, dtype=np.int64)) % F.P
    return SquaresAir(n, w0), {"walk": F.encode(w.reshape(n, 1)), "square": F.encode((w * w % F.P).reshape(n, 1))}


def test_only_matrices_read_on_the_next_row_are_opened_there():
    air, _ = _instance()
    assert air.next_row_columns == frozenset({air.column_index("w")})
    assert [(m.name, m.at_next) for m in layout(air)] == \
        [("walk", True), ("square", False), ("quotient", False)]
    # the order book reads its state tables on the current row only
    book = BookAir(16)
    assert {m.name: m.at_next for m in layout(book)} == \
        {"pre": False, "post": False, "stamp": True, "aux": True, "quotient": False}
    ops = OrderBookAir(16, 2, np.zeros(0, OP_DTYPE), np.zeros(0, TRADE_DTYPE), 1)
    assert {m.name: m.at_next for m in layout(ops)} == {"exec": True, "aux": True, "quotient": False}


def test_the_proof_carries_no_next_row_values_for_the_others():
    air, traces = _instance()
    proof = prove(air, traces, OPTS, debug=True).proof
    assert set(proof.ood_next) == {"walk"}
    data = proof.to_bytes(air)
    assert reference_prove(air, traces, OPTS).to_bytes(air) == data
    verify(air, Proof.from_bytes(data, air), min_security=0)


@pytest.mark.parametrize("name", ["walk", "square"])
def test_a_changed_value_at_z_is_rejected(name):
    air, traces = _instance()
    proof = prove(air, traces, OPTS).proof
    proof.ood_z[name] = proof.ood_z[name].copy()
    proof.ood_z[name][0, 1] = (int(proof.ood_z[name][0, 1]) + 1) % F.P
    with pytest.raises(VerificationError):
        verify(air, Proof.from_bytes(proof.to_bytes(air), air), min_security=0)


def test_a_false_square_is_rejected():
    air, traces = _instance()
    traces["square"] = traces["square"].copy()
    traces["square"][3, 0] = F.encode(np.array([7], dtype=np.int64))[0]
    proof = prove(air, traces, OPTS).proof
    with pytest.raises(VerificationError):
        verify(air, proof, min_security=0)
