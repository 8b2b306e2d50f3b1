"""LogUp helpers and the range-check AIR: column semantics, completeness, and
that out-of-range values, wrong multiplicities and changed cells fail."""
import dataclasses

import numpy as np
import pytest

from zksidecar.prover import field as F
from zksidecar.prover import logup, params
from zksidecar.prover.air import Air, Segment
from zksidecar.prover.examples.range_check import (RangeCheckAir, multiplicities,
                                                   range_check_instance, range_check_trace)
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.params import ParameterError
from zksidecar.prover.proof import Proof
from zksidecar.prover.prove import ConstraintError, prove
from zksidecar.prover.verify import VerificationError, verify
from zk_modes import modes, prove_in, zk

#: degree-3 constraints need blowup >= 3
FAST = dataclasses.replace(params.TESTING, log_blowup=2)
#: the tamper tests run in both modes (zk mode: tests/zk_modes.py; its
#: masks fit 2^7 rows and more at degree 3)
ZK = zk(FAST)
MODES = modes(FAST)


def roundtrip(air, proof):
    return Proof.from_bytes(proof.to_bytes(air), air)


def _bump(cell):
    return F.add(np.array([cell], dtype=np.uint32), F.encode([1]))[0]


def assert_rejected(air, traces, opts=FAST, **kw):
    """Fails in debug mode, and a proof forced past the debug check fails."""
    with pytest.raises(ConstraintError):
        prove_in(air, traces, opts, debug=True, **kw)
    proof = prove_in(air, traces, opts, **kw).proof
    with pytest.raises(VerificationError):
        verify(air, roundtrip(air, proof), min_security=0)


# ------------------------------------------------- a sum with a public target --

class SumAir(Air):
    """Proves sum_rows x = public total, as LogUp fractions alpha*x / alpha
    (a deliberately trivial argument that exercises a non-zero target and
    checks that every row, the first and the last included, is counted)."""

    num_challenges = 2

    def __init__(self, n, total):
        self.main_segments = (Segment("main", ("x",)),)
        self.argument = logup.LogUp(
            "s", [logup.supply([0], lambda f: f.challenge(0) * f.cur("x"))],
            target=lambda f: f.public("total"))
        self.aux_columns = logup.aux_columns(self.argument)
        super().__init__(n, {"total": total})

    def transitions(self, f):
        return self.argument.transitions(f)

    def boundaries(self, f):
        return self.argument.boundaries(f)

    def build_aux(self, main, challenges):
        return logup.build_aux(self, [self.argument], main, challenges)


@pytest.mark.parametrize("log_n", [1, 3, 6])
def test_target_counts_every_row(log_n):
    n = 1 << log_n
    x = np.arange(1, n + 1, dtype=np.int64) * 7
    air = SumAir(n, int(x.sum()))
    traces = {"main": F.encode(x[:, None])}
    proof = prove(air, traces, FAST, debug=True).proof
    verify(air, roundtrip(air, proof), min_security=0)
    for row in {0, n // 2, n - 1}:
        bad = traces["main"].copy()
        bad[row, 0] = _bump(bad[row, 0])
        assert_rejected(air, {"main": bad})
    # a claimed total that skips the last row (the classic off-by-one) fails
    assert_rejected(SumAir(n, int(x[:-1].sum())), traces)
    assert_rejected(SumAir(n, int(x[1:].sum())), traces)


def test_column_semantics():
    """sum[i] = sum of (term - target/N) over rows < i (target 0 here),
    helpers = the sums of every group but the last; checked against
    plain-Python extension arithmetic."""
    air, traces = range_check_instance(8, bits=3, lanes=3, seed=7)
    main = {c: np.ascontiguousarray(traces["main"][:, j])
            for j, c in enumerate(air.main_segments[0].columns)}
    rng = np.random.default_rng(1)
    chal = F.encode(rng.integers(0, F.P, (air.num_challenges, 4)))
    aux = air.build_aux(main, chal)
    assert air.aux_columns == ("range.sum", "range.h0")
    assert aux.shape == (8, 2, 4)
    alpha = Ext.from_mont(chal[0])
    vals = F.decode(traces["main"])
    acc = Ext(0)
    for i in range(8):
        v0, v1, v2, m = (int(c) for c in vals[i])
        h0 = Ext(m) * (alpha - i).inverse() - (alpha - v0).inverse()
        h1 = -((alpha - v1).inverse() + (alpha - v2).inverse())
        got = [Ext.from_mont(aux[i, k]) for k in range(2)]
        assert got[0] == acc and got[1] == h0
        acc = acc + h0 + h1
    assert acc == Ext(0)      # the wrap: S[N] would be S[0] = 0


def test_declared_degrees():
    air = RangeCheckAir(256, 8, 1)
    assert air.max_degree == 3
    assert {c.degree for c in air.transition_constraints} == {3}
    # one group: the sum relation alone, on every row (the last wrapping to row 0)
    assert [c.every_row for c in air.transition_constraints] == [True]
    assert air.aux_columns == ("range.sum",) and air.boundary_constraints == []
    wide = logup.LogUp("w", [logup.consume(["a"]), logup.consume(["b"]), logup.consume(["c"])],
                       group_size=3)
    assert wide.columns == ("w.sum",)
    two = RangeCheckAir(256, 8, 3)      # 4 fractions, 2 groups: one helper, the last group absorbed
    assert two.aux_columns == ("range.sum", "range.h0")
    assert [c.degree for c in two.transition_constraints] == [3, 3]
    assert all(c.every_row for c in two.transition_constraints)


def test_fractions_must_use_the_current_row():
    class NextRow(RangeCheckAir):
        def __init__(self):
            super().__init__(256, 8, 1)
            self.argument = logup.LogUp("range", [logup.consume([lambda f: f.next("v0")])])

    with pytest.raises(ValueError, match="cannot read the next row"):
        NextRow().transition_constraints


def test_the_target_must_be_degree_0():
    """target / N is added on every row: a target reading the trace would
    make the statement sum(term) = mean(target) without a word."""
    class TraceTarget(RangeCheckAir):
        def __init__(self):
            super().__init__(256, 8, 1)
            self.argument = logup.LogUp("range", self.argument.fractions, target=lambda f: f.cur("v0"))

    with pytest.raises(ValueError, match="target must be a constant"):
        TraceTarget().transition_constraints


class ForgedTerm(SumAir):
    """A dishonest prover claiming a total off by `delta`: one row's term is
    changed by `delta` and the running sum rethreaded from that row on, so
    every relation the prover controls holds but the one of that row."""

    def __init__(self, n, total, row, delta):
        super().__init__(n, total)
        self.row, self.delta = row, delta

    def build_aux(self, main, challenges):
        aux = super().build_aux(main, challenges)      # honest S: breaks the wrap at row N-1
        d = Ext(self.delta).to_mont()                  # the term of a row is its x
        rows = np.arange(self.row + 1, self.trace_length)
        aux[rows, 0] = F.add(aux[rows, 0], np.broadcast_to(d, (len(rows), 4)).copy())
        return aux


@pytest.mark.parametrize("log_n,opts", [pytest.param(3, FAST, id="3"), pytest.param(6, FAST, id="6"),
                                         pytest.param(8, ZK, id="8-zk")])
def test_a_forged_term_fails(log_n, opts):
    """A total off by 12345, hidden in one row's term: the columns are
    rethreaded so that the sum relation holds everywhere but at that row;
    that row is still checked, the first (row 0) and the wrap row (N-1,
    whose next row is row 0) included."""
    n = 1 << log_n
    x = np.arange(1, n + 1, dtype=np.int64) * 7
    traces = {"main": F.encode(x[:, None])}
    for row in sorted({0, n // 2, n - 2, n - 1}):
        forged = ForgedTerm(n, int(x.sum()) + 12345, row, 12345)
        with pytest.raises(ConstraintError, match=rf"sum' - sum = term - target/N\W fails at row {row}\b"):
            prove_in(forged, traces, opts, debug=True)
        assert_rejected(forged, traces, opts)
    honest = ForgedTerm(n, int(x.sum()), 0, 0)
    verify(honest, roundtrip(honest, prove_in(honest, traces, opts, debug=True).proof), min_security=0)


@pytest.mark.parametrize("log_n,opts", [pytest.param(3, FAST, id="3"), pytest.param(6, FAST, id="6"),
                                         pytest.param(8, ZK, id="8-zk")])
def test_the_wrap_row_is_constrained(log_n, opts):
    """Honest columns for a claimed total missing the last row's term: every
    relation holds on rows 0..N-2 and only the wrap, row N-1 -> row 0, is
    broken.  A constraint skipping the last row (an ordinary transition)
    would accept it."""
    n = 1 << log_n
    x = np.arange(1, n + 1, dtype=np.int64) * 7
    traces = {"main": F.encode(x[:, None])}
    air = SumAir(n, int(x[:-1].sum()))
    with pytest.raises(ConstraintError, match=rf"fails at row {n - 1}\b"):
        prove_in(air, traces, opts, debug=True)
    assert_rejected(air, traces, opts)


class ForgedHelper(RangeCheckAir):
    """A helper column that lies at one row by `delta`, the running sum
    rethreaded so the sum relation (the last group's, absorbed) holds on
    every row: the lie is confined to the helper's relation at `row`."""

    def __init__(self, row, **kw):
        super().__init__(**kw)
        self.row = row

    def build_aux(self, main, challenges):
        aux = super().build_aux(main, challenges)
        n, alpha, table = self.trace_length, Ext.from_mont(challenges[0]), 1 << self.bits
        vals = [[int(v) for v in F.decode(np.asarray(main[c]))] for c in self.main_segments[0].columns]

        def term(i):
            return Ext(vals[-1][i]) * (alpha - i % table).inverse() - \
                sum(((alpha - col[i]).inverse() for col in vals[:-1]), Ext(0))

        # the honest columns do not close: the terms total S[N-1] + term(N-1)
        total = Ext.from_mont(aux[-1, 0]) + term(n - 1)
        assert total != Ext(0)
        aux[self.row, 1] = (Ext.from_mont(aux[self.row, 1]) - total).to_mont()
        for i in range(self.row + 1, n):
            aux[i, 0] = (Ext.from_mont(aux[i, 0]) - total).to_mont()
        return aux


@pytest.mark.parametrize("opts", MODES)
@pytest.mark.parametrize("row", [0, 77, 255])
def test_a_forged_helper_fails(row, opts):
    """An out-of-range value (256 in an 8-bit table), its term's excess
    taken out of one row's helper h0 and the running sum rethreaded: the
    sum relation (with the last group absorbed) holds on every row, the
    wrap included; h0's relation at that row alone rejects it."""
    _, traces = range_check_instance(1 << 8, 8, 3, seed=11)
    vals = F.decode(traces["main"]).astype(np.int64)[:, :3]
    vals[40, 2] = 256
    forged = ForgedHelper(row, trace_length=1 << 8, bits=8, lanes=3)
    bad = {"main": range_check_trace(vals, 8)}
    with pytest.raises(ConstraintError, match=rf"h0 = group 0 fractions\W fails at row {row}\b"):
        prove_in(forged, bad, opts, debug=True)
    assert_rejected(forged, bad, opts)


# ------------------------------------------------------------- range check --

@pytest.mark.parametrize("log_n,bits,lanes", [(3, 3, 1), (4, 2, 2), (8, 8, 1), (9, 8, 2),
                                              (10, 8, 3), (10, 4, 1)])
def test_range_check_proves_and_verifies(log_n, bits, lanes):
    air, traces = range_check_instance(1 << log_n, bits, lanes, seed=log_n)
    proof = prove(air, traces, FAST, debug=True).proof
    assert verify(air, roundtrip(air, proof), min_security=0).security_bits == \
        FAST.conjectured_security(1 << log_n, air.algebraic_degree(1 << log_n))


@pytest.mark.parametrize("opts", [
    params.ProofOptions(log_blowup=2, num_queries=30, grinding_bits=0, fri_folding_factor=2,
                        fri_max_final_degree=1),
    params.ProofOptions(log_blowup=3, num_queries=12, grinding_bits=4, fri_folding_factor=16,
                        fri_max_final_degree=8),
    params.ProofOptions(log_blowup=4, num_queries=10, grinding_bits=1, fri_folding_factor=8,
                        fri_max_final_degree=256),
])
def test_range_check_parameter_sets(opts):
    air, traces = range_check_instance(1 << 9, 8, 2)
    verify(air, roundtrip(air, prove(air, traces, opts).proof), min_security=0)


def test_range_check_default_parameters():
    air, traces = range_check_instance(1 << 8, 8, 1)
    opts = params.ProofOptions.for_security(100, log_blowup=2)
    assert verify(air, roundtrip(air, prove(air, traces, opts).proof)).security_bits >= 100




def test_table_needs_enough_rows():
    with pytest.raises(ValueError, match="at least"):
        RangeCheckAir(128, 8)


@pytest.mark.parametrize("opts", MODES)
@pytest.mark.parametrize("bad_value", [256, 257, 1 << 16, F.P - 1])
def test_value_out_of_range_fails(bad_value, opts):
    air, traces = range_check_instance(1 << 8, 8, 2, seed=3)
    vals = F.decode(traces["main"]).astype(np.int64)[:, :2]
    vals[17, 1] = bad_value
    assert_rejected(air, {"main": range_check_trace(vals, 8)}, opts)


@pytest.mark.parametrize("opts", MODES)
def test_out_of_range_value_with_any_multiplicity_fails(opts):
    """Moving the count to the nearest table value does not help."""
    air, traces = range_check_instance(1 << 8, 8, 1, seed=4)
    vals = F.decode(traces["main"]).astype(np.int64)[:, :1]
    vals[5, 0] = 256
    m = multiplicities(np.where(vals == 256, 255, vals), 8, 256)
    assert_rejected(air, {"main": F.encode(np.column_stack([vals, m]))}, opts)


@pytest.mark.parametrize("opts", MODES)
@pytest.mark.parametrize("row,delta", [(0, 1), (3, -1), (255, 1), (100, F.P - 1)])
def test_wrong_multiplicity_fails(row, delta, opts):
    air, traces = range_check_instance(1 << 8, 8, 1, seed=5)
    vals = F.decode(traces["main"]).astype(np.int64)
    vals[row, 1] = (vals[row, 1] + delta) % F.P
    assert_rejected(air, {"main": F.encode(vals)}, opts)


def test_multiplicity_moved_between_copies_still_verifies():
    """The table repeats every 2^bits rows; only each value's total counts."""
    air, traces = range_check_instance(1 << 10, 8, 1, seed=6)
    vals = F.decode(traces["main"]).astype(np.int64)
    vals[256 * 3 + 9, 1] += vals[9, 1]
    vals[9, 1] = 0
    proof = prove(air, {"main": F.encode(vals)}, FAST, debug=True).proof
    verify(air, proof, min_security=0)


def test_every_cell_of_a_small_trace_matters():
    air, traces = range_check_instance(1 << 3, 3, 2, seed=8)
    for row in range(8):
        for col in range(3):
            bad = traces["main"].copy()
            bad[row, col] = _bump(bad[row, col])
            with pytest.raises(ConstraintError):
                prove(air, {"main": bad}, FAST, debug=True)
            proof = prove(air, {"main": bad}, FAST).proof
            with pytest.raises(VerificationError):
                verify(air, proof, min_security=0)


@pytest.mark.parametrize("opts", MODES)
def test_sampled_cells_of_a_larger_trace_matter(opts):
    air, traces = range_check_instance(1 << 9, 8, 2, seed=9)
    rng = np.random.default_rng(0)
    for row, col in zip(rng.integers(0, 1 << 9, 6), [0, 1, 2, 0, 1, 2]):
        bad = traces["main"].copy()
        bad[row, col] = _bump(bad[row, col])
        assert_rejected(air, {"main": bad}, opts)


@pytest.mark.parametrize("opts", MODES)
def test_proof_for_other_bits_does_not_verify(opts):
    air, traces = range_check_instance(1 << 8, 4, 1)
    proof = prove_in(air, traces, opts).proof
    with pytest.raises(VerificationError):
        verify(RangeCheckAir(1 << 8, 8, 1), proof, min_security=0)


def test_periodic_column_needs_no_twin():
    class NoTwin(RangeCheckAir):
        def __init__(self):
            super().__init__(256, 8, 1)
            self.periodic_columns = {"table": list(range(256))}

    air = NoTwin()
    _, traces = range_check_instance(256, 8, 1)
    verify(air, roundtrip(air, prove(air, traces, FAST, debug=True).proof), min_security=0)


def test_16_bit_limbs_at_2_16_rows():
    """The full 16-bit table (one second or so; the only large test here)."""
    air, traces = range_check_instance(1 << 16, 16, 1, seed=16)
    proof = prove(air, traces, FAST).proof
    verify(air, proof, min_security=0)
    vals = F.decode(traces["main"]).astype(np.int64)
    vals[12345, 0] = 1 << 16
    with pytest.raises(ConstraintError):
        prove(air, {"main": range_check_trace(vals[:, :1], 16)}, FAST, debug=True)


def test_alpha_is_not_a_compression_challenge():
    """The soundness error counts alpha and the tuples' compression
    challenges as independent: an argument drawing alpha among them is
    refused where it is made."""
    fractions = [logup.supply([0, "x", "y"])]
    with pytest.raises(ValueError, match="alpha \\(challenge 2\\) is one of the tuples' compression "
                                         "challenges \\(1..2\\)"):
        logup.LogUp("s", fractions, alpha=2, beta=1)
    assert logup.LogUp("s", fractions, alpha=3, beta=1).challenges_used == 4
    assert logup.LogUp("s", fractions, alpha=0, beta=1).challenges_used == 3
