"""The pure-Python reference prover (prover/reference.py) against the fast
prover: byte-identical proofs for several AIRs, sizes and parameter sets, and
the reference proofs verify.  A difference here is a bug in one of the two."""
import numpy as np
import pytest

from zksidecar.prover import field as F
from zksidecar.prover import params
from zksidecar.prover.air import Air, BoundaryConstraint, Frame, Segment, TransitionConstraint
from zksidecar.prover.examples.fibonacci import fibonacci_instance
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.prove import prove
from zksidecar.prover.reference import (bit_reverse_list, intt, ntt, reference_prove,
                                        root_of_unity, RefTranscript)
from zksidecar.prover.transcript import Transcript
from zksidecar.prover.verify import verify
from zksidecar.tools.bench.stark import reference_prove_seconds

P = F.P

OPTION_SETS = {
    "testing": params.TESTING,
    "blowup4-fold2-final1": params.ProofOptions(log_blowup=2, num_queries=30, grinding_bits=0,
                                                fri_folding_factor=2, fri_max_final_degree=1),
    "blowup8-fold16-final8": params.ProofOptions(log_blowup=3, num_queries=12, grinding_bits=4,
                                                 fri_folding_factor=16, fri_max_final_degree=8),
    "blowup2-fold8-final256": params.ProofOptions(log_blowup=1, num_queries=25, grinding_bits=1,
                                                  fri_folding_factor=8, fri_max_final_degree=256),
    "blowup4-fold8-final1": params.ProofOptions(log_blowup=2, num_queries=16, grinding_bits=3,
                                                fri_folding_factor=8, fri_max_final_degree=1),
}

FIELDS = ["roots", "ood_z", "ood_next", "fri_roots", "fri_final", "pow_nonce", "rows",
          "row_proofs", "fri_leaves", "fri_proofs"]


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def assert_same_proof(air, fast_proof, ref_proof):
    """Field by field first (a precise message), then the bytes."""
    differ = [f for f in FIELDS if not _equal(getattr(fast_proof, f), getattr(ref_proof, f))]
    assert not differ, f"reference and fast proofs differ in {differ}"
    assert fast_proof.to_bytes(air) == ref_proof.to_bytes(air)


def check(air, traces, opts, fast_external=None, ref_external=None):
    fast = prove(air, traces, opts, external=fast_external).proof
    ref = reference_prove(air, traces, opts, external=ref_external)
    assert_same_proof(air, fast, ref)
    return ref


# ----------------------------------------------------------- Fibonacci --

@pytest.mark.parametrize("opts", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("log_n,pairs", [(3, 1), (4, 3), (6, 2)])
def test_fibonacci_byte_identical(log_n, pairs, opts):
    air, traces = fibonacci_instance(1 << log_n, pairs, seed=10 * log_n + pairs)
    ref = check(air, traces, opts)
    verify(air, ref, min_security=0)


def test_a_proof_is_a_function_of_its_inputs():
    """Nothing but the AIR, the traces and the options enters a proof: two
    runs of the fast prover, and the reference prover fed nothing else, give
    the same bytes (no timing, no run-dependent value in the transcript)."""
    air, traces = fibonacci_instance(1 << 4, 1)
    first = prove(air, traces, params.TESTING).proof.to_bytes(air)
    assert prove(air, traces, params.TESTING).proof.to_bytes(air) == first
    assert reference_prove(air, traces, params.TESTING).to_bytes(air) == first


def test_invalid_trace_same_bytes():
    """Both provers commit to whatever they are given (no debug check): a
    broken trace still gives identical (and rejected) proofs."""
    air, traces = fibonacci_instance(1 << 4, 2, seed=3)
    bad = traces["main"].copy()
    bad[5, 1] = F.encode([7])[0]
    check(air, {"main": bad}, params.TESTING)


# ------------------------------------------- a richer AIR for coverage --

class MixedAir(Air):
    """Exercises what Fibonacci does not: a degree-3 constraint (two
    quotient chunks), a periodic column, two main segments (the first may be
    external, reused from an earlier proof), an auxiliary extension column
    built from two challenges, boundaries at a middle row and on the
    auxiliary column.

        x' = x * y^2 + k         (k periodic, period 4)
        y' = y + 1
        s' = s + x               (segment "side")
        acc' = acc * (c0 + x + c1 * y),  acc[0] = 1   (auxiliary)
    """

    periodic_columns = {"k": [1, 2, 3, 4]}
    aux_columns = ("acc",)
    num_challenges = 2

    def __init__(self, n, x0, y0, s_last, external=False):
        self.main_segments = (Segment("main", ("x", "y"), external, exported=not external),
                              Segment("side", ("s",)))
        super().__init__(n, {"x0": x0, "y0": y0, "s_last": s_last})

    def transitions(self, f: Frame):
        x, y, s, acc = f.cur("x"), f.cur("y"), f.cur("s"), f.cur("acc")
        return [
            TransitionConstraint("x", f.next("x") - (x * y * y + f.periodic("k")), 3),
            TransitionConstraint("y", f.next("y") - (y + 1), 1),
            TransitionConstraint("s", f.next("s") - (s + x), 1),
            TransitionConstraint("acc", f.next("acc") - acc * (f.challenge(0) + x + f.challenge(1) * y), 2),
        ]

    def boundaries(self, f: Frame):
        return [
            BoundaryConstraint("x0", "x", 0, f.public("x0")),
            BoundaryConstraint("y0", "y", 0, f.public("y0")),
            BoundaryConstraint("y3", "y", 3, f.public("y0") + 3),
            BoundaryConstraint("s_last", "s", -1, f.public("s_last")),
            BoundaryConstraint("acc0", "acc", 0, f.challenge(0) - f.challenge(0) + 1),
        ]

    def build_aux(self, main, challenges):
        c0, c1 = Ext.from_mont(challenges[0]), Ext.from_mont(challenges[1])
        xs = [int(v) for v in F.decode(main["x"])]
        ys = [int(v) for v in F.decode(main["y"])]
        acc, out = Ext(1), []
        for x, y in zip(xs, ys):
            out.append(acc.c)
            acc = acc * (c0 + x + c1 * y)
        return F.encode(np.array(out, dtype=np.int64)).reshape(self.trace_length, 1, 4)


def mixed_instance(n, seed=0, external=False):
    rng = np.random.default_rng(seed)
    x0, y0, s0 = (int(v) for v in rng.integers(0, P, 3))
    k = MixedAir.periodic_columns["k"]
    x, y, s = x0, y0, s0
    main, side = [], []
    for i in range(n):
        main.append((x, y))
        side.append((s,))
        x, y, s = (x * y * y + k[i % 4]) % P, (y + 1) % P, (s + x) % P
    air = MixedAir(n, x0, y0, side[-1][0], external)
    return air, {"main": F.encode(np.array(main, dtype=np.int64)),
                 "side": F.encode(np.array(side, dtype=np.int64))}


@pytest.mark.parametrize("opts", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("log_n", [2, 3, 5])
def test_mixed_air_byte_identical(log_n, opts):
    air, traces = mixed_instance(1 << log_n, seed=log_n)
    prove(air, traces, opts, debug=True)   # the instance is valid
    ref = check(air, traces, opts)
    verify(air, ref, min_security=0)


@pytest.mark.parametrize("with_link", [True, False])
def test_external_segment_byte_identical(with_link):
    """Segment "main" exported by an earlier proof and reused: the header
    absorbs the Link, and DEEP gets a group at the point main's root selects."""
    opts = OPTION_SETS["blowup4-fold2-final1"]
    first_air, traces = mixed_instance(1 << 3, seed=7)
    first = prove(first_air, traces, opts)
    air, _ = mixed_instance(1 << 3, seed=7, external=True)
    link = first.links["main"] if with_link else None
    ref = check(air, traces, opts, fast_external={"main": (first.commitments["main"], link)},
                ref_external={"main": link})
    verify(air, ref, {"main": (first.commitments["main"].root, link)}, min_security=0)


# ----------------------------------------------------- building blocks --

def test_ntt_roundtrip_and_definition():
    rng = np.random.default_rng(1)
    for log_n in range(0, 6):
        n = 1 << log_n
        c = [int(v) for v in rng.integers(0, P, n)]
        for shift in (1, 31, 12345):
            ev = ntt(c, shift)
            w = root_of_unity(log_n)
            assert ev == [sum(cj * pow(shift * pow(w, i, P), j, P) for j, cj in enumerate(c)) % P
                          for i in range(n)]
            assert intt(ev, shift) == c
    assert bit_reverse_list(list(range(8))) == [0, 4, 2, 6, 1, 5, 3, 7]


def test_transcript_matches():
    a, b = Transcript(b"t"), RefTranscript(b"t")
    for i in range(3):
        a.absorb(b"x", bytes(range(i * 7)))
        b.absorb(b"x", bytes(range(i * 7)))
        assert [Ext.from_mont(v) for v in a.challenge_ext(3)] == b.challenge_exts(3)
        assert a.challenge_indices(40, 64) == b.challenge_indices(40, 64)
    assert a.grind(6) == b.grind(6)
    assert a.challenge_ints(2) == [w % P for w in b._words(2)]


def test_baseline_timer():
    assert reference_prove_seconds(3, 1) > 0


# ------------------------------------------------------------ edge cases --

class EdgeAir(Air):
    """No boundary constraints; periodic columns of period 1 and of period N;
    a degree-2 constraint at the smallest blowup that allows it.

        u' = u * v + one,   v' = v + full
    """

    main_segments = (Segment("main", ("u", "v")),)

    def __init__(self, n, full):
        self.periodic_columns = {"one": [5], "full": list(full)}
        super().__init__(n)

    def transitions(self, f: Frame):
        u, v = f.cur("u"), f.cur("v")
        return [TransitionConstraint("u", f.next("u") - (u * v + f.periodic("one")), 2),
                TransitionConstraint("v", f.next("v") - (v + f.periodic("full")), 1)]


def edge_instance(n, seed=0):
    rng = np.random.default_rng(seed)
    full = [int(v) for v in rng.integers(0, P, n)]
    u, v = (int(x) for x in rng.integers(0, P, 2))
    rows = []
    for i in range(n):
        rows.append((u, v))
        u, v = (u * v + 5) % P, (v + full[i]) % P
    return EdgeAir(n, full), {"main": F.encode(np.array(rows, dtype=np.int64))}


@pytest.mark.parametrize("opts", [OPTION_SETS["testing"], OPTION_SETS["blowup8-fold16-final8"]],
                         ids=["testing", "blowup8-fold16-final8"])
@pytest.mark.parametrize("log_n", [1, 2, 4])
def test_edge_air_byte_identical(log_n, opts):
    air, traces = edge_instance(1 << log_n, seed=log_n)
    prove(air, traces, opts, debug=True)
    ref = check(air, traces, opts)
    verify(air, ref, min_security=0)


@pytest.mark.parametrize("opts", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
def test_fibonacci_two_rows(opts):
    air, traces = fibonacci_instance(2, 2, seed=5)
    ref = check(air, traces, opts)
    verify(air, ref, min_security=0)


@pytest.mark.parametrize("log_n,pairs,opts", [(6, 2, params.DEFAULT), (9, 8, params.TESTING)],
                         ids=["2^6x4-default", "2^9x16-testing"])
def test_fibonacci_larger(log_n, pairs, opts):
    """The production parameters (16 grinding bits, searched in plain Python
    here), and a wider trace."""
    air, traces = fibonacci_instance(1 << log_n, pairs, seed=1)
    ref = check(air, traces, opts)
    assert verify(air, ref, min_security=0).security_bits == \
        opts.conjectured_security(1 << log_n, air.algebraic_degree(1 << log_n))


def test_the_reference_finds_the_next_row_columns_itself(monkeypatch):
    """The reference walks the constraints for the columns read on the next
    row: a layout that opens another set at w z (as a wrong
    Air.next_row_columns would make it) stops it, naming the matrix."""
    import dataclasses

    from zksidecar.prover import reference

    air, traces = fibonacci_instance(8, 1, seed=1)
    real = reference.statement_layouts

    def shifted(st, zk=False):
        return [[dataclasses.replace(m, next_columns=m.next_columns[1:]) if m.next_columns else m for m in mats]
                for mats in real(st, zk)]

    monkeypatch.setattr(reference, "statement_layouts", shifted)
    with pytest.raises(AssertionError, match="the layout opens .* at w z, the constraints read"):
        reference_prove(air, traces, params.TESTING)
