"""A matrix is opened at w*z only at the columns some transition constraint
reads on the next row (proof.Matrix.next_columns, Air.next_row_columns;
proof formats 6 and 7): the layout, the prover and the reference agree,
the values at z of a column with no next-row opening stay bound by DEEP,
and a proof with a value at w*z too many or too few is refused, named."""
import copy

import numpy as np
import pytest

from zksidecar.engine.records import OP_DTYPE, TRADE_DTYPE
from zksidecar.prover import field as F
from zksidecar.prover import params
from zksidecar.prover.air import Air, BoundaryConstraint, Frame, Segment, TransitionConstraint
from zksidecar.prover.orderbook.air import BookAir, OrderBookAir
from zksidecar.prover.proof import Proof, ProofFormatError, layout
from zksidecar.prover.prove import prove
from zksidecar.prover.reference import reference_prove
from zksidecar.prover.verify import VerificationError, verify

OPTS = params.ProofOptions(log_blowup=2, num_queries=16, grinding_bits=0, fri_folding_factor=4,
                           fri_max_final_degree=4)


class SquaresAir(Air):
    """w' = w + 1 and u = w + 7 (segment "walk": w read on the next row, u
    on the current row only), v = w^2 on every row but the last (segment
    "square", read on the current row only)."""

    def __init__(self, n: int, w0: int):
        self.main_segments = (Segment("walk", ("u", "w")), Segment("square", ("v",)))
        super().__init__(n, {"w0": w0})

    def transitions(self, f: Frame):
        return [TransitionConstraint("step", f.next("w") - f.cur("w") - 1, 1),
                TransitionConstraint("offset", f.cur("u") - f.cur("w") - 7, 1),
                TransitionConstraint("square", f.cur("v") - f.cur("w") * f.cur("w"), 2)]

    def boundaries(self, f: Frame):
        return [BoundaryConstraint("w0", "w", 0, f.public("w0"))]


def _instance(n: int = 16, w0: int = 5):
    w = (w0 + np.arange(n, dtype=np.int64)) % F.P
    walk = np.stack([(w + 7) % F.P, w], axis=1)
    return SquaresAir(n, w0), {"walk": F.encode(walk), "square": F.encode((w * w % F.P).reshape(n, 1))}


def test_only_the_columns_read_on_the_next_row_are_opened_there():
    air, _ = _instance()
    assert air.next_row_columns == frozenset({air.column_index("w")})
    assert [(m.name, m.next_columns) for m in layout(air)] == \
        [("walk", (1,)), ("square", ()), ("quotient", ())]
    assert [(m.name, m.at_next) for m in layout(air)] == \
        [("walk", True), ("square", False), ("quotient", False)]
    # the order book reads its state tables on the current row only
    book = BookAir(16)
    assert {m.name: m.at_next for m in layout(book)} == \
        {"pre": False, "post": False, "stamp": True, "aux": True, "quotient": False}
    ops = OrderBookAir(16, 2, np.zeros(0, OP_DTYPE), np.zeros(0, TRADE_DTYPE), 1)
    assert {m.name: m.at_next for m in layout(ops)} == {"exec": True, "aux": True, "quotient": False}
    # each matrix's next columns are its columns in next_row_columns, in
    # column order; an auxiliary (extension) column's four coordinates
    for a in (book, ops):
        nxt, start = a.next_row_columns, 0
        mats = {m.name: m for m in layout(a)}
        for seg in a.main_segments:
            assert mats[seg.name].next_columns == tuple(c for c in range(len(seg.columns)) if start + c in nxt)
            start += len(seg.columns)
        assert mats["aux"].next_columns == tuple(4 * j + k for j in range(len(a.aux_columns))
                                                 if start + j in nxt for k in range(4))
        assert 0 < len(mats["aux"].next_columns) <= mats["aux"].width
    assert len(layout(ops)[-2].next_columns) < layout(ops)[-2].width     # ops' aux: some, not all


def test_the_proof_carries_next_row_values_only_for_those_columns():
    air, traces = _instance()
    proof = prove(air, traces, OPTS, debug=True).proof
    assert set(proof.ood_next) == {"walk"} and proof.ood_next["walk"].shape == (1, 4)
    data = proof.to_bytes(air)
    assert reference_prove(air, traces, OPTS).to_bytes(air) == data
    verify(air, Proof.from_bytes(data, air), min_security=0)


def _honest():
    air, traces = _instance()
    return air, prove(air, traces, OPTS).proof


@pytest.mark.parametrize("rows", [0, 2])
def test_a_value_at_w_z_too_many_or_too_few_is_refused(rows):
    air, proof = _honest()
    data = proof.to_bytes(air)
    # in memory: the verifier names the matrix and the count, the encoder refuses it
    bad = copy.copy(proof)
    bad.ood_next = {"walk": np.zeros((rows, 4), dtype=np.uint32)}
    with pytest.raises(VerificationError, match=r"walk: values of shape \(%d, 4\) at w\*z; the layout "
                                                r"opens 1 columns there" % rows):
        verify(air, bad, min_security=0)
    with pytest.raises(ValueError, match="walk: values of shape"):
        bad.to_bytes(air)
    # in bytes: the section is read at the layout's count, so the proof no longer parses
    at = data.index(np.ascontiguousarray(proof.ood_next["walk"], dtype="<u4").tobytes())
    edited = data[:at] + bytes(16 * rows) + data[at + 16:]
    with pytest.raises(ProofFormatError):
        Proof.from_bytes(edited, air)


@pytest.mark.parametrize("field,name,refusal", [
    ("ood_next", "square", "values at w\\*z for square, which no constraint reads"),
    ("ood_z", "nothing", "values at z for nothing, which the layout has no matrix of")])
def test_values_for_a_matrix_not_opened_there_are_refused(field, name, refusal):
    """Values at w z for a matrix no constraint reads on the next row, and
    at z for one the layout has not: the verifier and the encoder refuse
    them, naming the point and the matrix."""
    air, proof = _honest()
    bad = copy.copy(proof)
    setattr(bad, field, {**getattr(proof, field), name: np.zeros((1, 4), dtype=np.uint32)})
    with pytest.raises(VerificationError, match=refusal):
        verify(air, bad, min_security=0)
    with pytest.raises(ValueError, match=refusal):
        bad.to_bytes(air)


def test_a_changed_value_at_w_z_is_rejected():
    air, proof = _honest()
    proof.ood_next["walk"] = proof.ood_next["walk"].copy()
    proof.ood_next["walk"][0, 2] = (int(proof.ood_next["walk"][0, 2]) + 1) % F.P
    with pytest.raises(VerificationError):
        verify(air, Proof.from_bytes(proof.to_bytes(air), air), min_security=0)


@pytest.mark.parametrize("old, zk", [(4, False), (5, True)])
def test_formats_4_and_5_are_refused_by_name(old, zk):
    air, proof = _honest()
    data = bytearray(proof.to_bytes(air))
    data[4:6] = old.to_bytes(2, "little")
    with pytest.raises(ProofFormatError, match=rf"proof format version {old} is not supported \("
                                               rf"{'zk mode' if zk else 'transparent'}, its values at w\*z for "
                                               r"every column of a matrix read on the next row: verify it with "
                                               r"the release that wrote it\); this build reads 8, transparent, "
                                               r"and 9, zk mode"):
        Proof.from_bytes(bytes(data), air)


@pytest.mark.parametrize("old, zk", [(6, False), (7, True)])
def test_formats_6_and_7_are_refused_by_name(old, zk):
    """Their Merkle nodes were SHA-256(left || right): every root and path
    means another thing in format 8 and 9 (docs/MERKLE.md, "Nodes")."""
    air, proof = _honest()
    data = bytearray(proof.to_bytes(air))
    data[4:6] = old.to_bytes(2, "little")
    with pytest.raises(ProofFormatError, match=rf"proof format version {old} is not supported \("
                                               rf"{'zk mode' if zk else 'transparent'}, its Merkle nodes "
                                               r"SHA-256\(left \|\| right\), two compressions each: verify it "
                                               r"with the release that wrote it\)"):
        Proof.from_bytes(bytes(data), air)


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
