"""FRI with inputs at lower heights (prover/fri.py, docs/STATE_DOMAIN.md
"FRI across heights"): the layer schedule, completeness, byte identity with
the pure-Python reference (prover/reference.py), and the rejections a
lie at an injected height must meet."""
import numpy as np
import pytest

from zksidecar.prover import extension as E
from zksidecar.prover import field as F
from zksidecar.prover import fri, ntt
from zksidecar.prover.domain import COSET_SHIFT
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.merkle import MerkleTree
from zksidecar.prover.params import ProofOptions
from zksidecar.prover.reference import RefTranscript, reference_fri_commit, reference_schedule
from zksidecar.prover.transcript import Transcript

FOLD8 = ProofOptions(log_blowup=1, num_queries=24, grinding_bits=0, fri_folding_factor=8,
                     fri_max_final_degree=64)
FOLD4 = ProofOptions(log_blowup=2, num_queries=16, grinding_bits=0, fri_folding_factor=4,
                     fri_max_final_degree=4)


# ------------------------------------------------------------ helpers --

def _codeword(rng, log_m: int, log_blowup: int, degree: int | None = None) -> np.ndarray:
    """A random extension polynomial of degree < `degree` (default: the rate's
    bound 2^(log_m - log_blowup)) on g * <w_(2^log_m)>, bit-reversed, (2^log_m, 4)
    Montgomery."""
    m = 1 << log_m
    degree = m >> log_blowup if degree is None else degree
    coeffs = np.zeros((m, 4), dtype=np.uint32)
    coeffs[:degree] = F.encode(rng.integers(0, F.P, (degree, 4)).astype(np.uint32))
    return ntt.bit_reverse_rows(ntt.coset_ntt(coeffs, COSET_SHIFT))


def _prove(f, degree, options, log_m, inputs, label=b"fri-inputs"):
    tr = Transcript(label)
    com = fri.commit(f, degree, options, log_m, COSET_SHIFT, tr, inputs)
    positions = np.array(tr.challenge_indices(options.num_queries, 1 << log_m), dtype=np.int64)
    return com, positions, fri.open_layers(com, positions)


def _verify(com, positions, openings, f, degree, options, log_m, inputs, label=b"fri-inputs",
            gammas=None, declared=None):
    """Replay the transcript as a verifier would and check; `declared`
    overrides the input heights the verifier believes in, `gammas` the
    challenges it uses."""
    tr = Transcript(label)
    heights = [h for h, _ in inputs] if declared is None else declared
    schedule = fri.layer_schedule(options, degree, log_m, heights)
    betas, drawn = fri.draw_challenges(tr, com.roots, com.final_coeffs, schedule)
    mine = np.array(tr.challenge_indices(options.num_queries, 1 << log_m), dtype=np.int64)
    if declared is None:
        assert np.array_equal(mine, positions)
    positions = mine          # the verifier's own positions, whatever the prover opened
    # at a height the prover did not commit to, it answers with its input's
    # values at the positions modulo its size (any values would do)
    values = [(h, g[fri.input_positions(positions, log_m, h) % g.shape[0]])
              for h, (_, g) in zip(heights, inputs)]
    fri.verify(com.roots, com.final_coeffs, openings, positions, f[positions], degree, options,
               log_m, COSET_SHIFT, betas, values, drawn if gammas is None else gammas)


def _ext_list(a: np.ndarray) -> list[Ext]:
    return [Ext(*(int(c) for c in row)) for row in F.decode(a)]


# ----------------------------------------------------------- schedule --

def test_the_schedule_puts_a_layer_boundary_at_every_input_height():
    # one operation at capacity 2^10: book 2^11 points, ops T' = 16 (32 points)
    assert fri.layer_schedule(FOLD8, 1 << 10, 11, [5]) == fri.Schedule((3, 3), 16, (2,))
    # T' = 32: a remainder layer of 4 first, the injection is the final vector
    assert fri.layer_schedule(FOLD8, 1 << 10, 11, [6]) == fri.Schedule((2, 3), 32, (2,))
    # the bench's batch: ops 2^16 points, book 2^15: one binary fold, then the plain rule
    assert fri.layer_schedule(FOLD8, 1 << 15, 16, [15]) == fri.Schedule((1, 3, 3, 3), 32, (1,))
    # equal heights join layer 0; an input below the plain rule's stop is folded down to
    assert fri.layer_schedule(FOLD8, 1 << 15, 16, [16]) == fri.Schedule((3, 3, 3), 64, (0,))
    assert fri.layer_schedule(FOLD8, 1 << 11, 12, [5]) == fri.Schedule((1, 3, 3), 16, (3,))
    # two inputs, one height each, and two at one height
    assert fri.layer_schedule(FOLD8, 1 << 13, 14, [12, 7, 12]) == \
        fri.Schedule((2, 2, 3), 64, (1, 3, 1))


def test_without_inputs_the_schedule_is_the_plain_one():
    for options in (FOLD8, FOLD4, ProofOptions(fri_folding_factor=16, fri_max_final_degree=8),
                    ProofOptions(fri_folding_factor=2, fri_max_final_degree=1)):
        for log_d in range(0, 17):
            degree, plan = 1 << log_d, [1 << log_d]
            while plan[-1] > options.fri_max_final_degree and plan[-1] >= options.fri_folding_factor:
                plan.append(plan[-1] // options.fri_folding_factor)
            s = fri.layer_schedule(options, degree, log_d + options.log_blowup)
            assert s.final_degree == plan[-1] and len(s.log_arities) == len(plan) - 1
            assert set(s.log_arities) <= {options.fri_folding_factor.bit_length() - 1}


def test_the_reference_schedule_agrees():
    for options in (FOLD8, FOLD4, ProofOptions(log_blowup=3, fri_folding_factor=16,
                                               fri_max_final_degree=8)):
        lb = options.log_blowup
        for log_m in range(lb + 1, 20):
            for heights in ([], [log_m], [log_m - 1], [lb], [lb + 1, log_m - 2],
                            [log_m - 5, log_m - 5, lb + 2]):
                heights = [h for h in heights if lb <= h <= log_m]
                s = fri.layer_schedule(options, 1 << (log_m - lb), log_m, heights)
                arities, final, joins = reference_schedule(options, 1 << (log_m - lb), log_m, heights)
                assert (list(s.log_arities), s.final_degree, list(s.joins)) == (arities, final, joins)


def test_a_height_outside_the_range_is_refused():
    with pytest.raises(ValueError, match="2\\^12 points"):
        fri.layer_schedule(FOLD8, 1 << 10, 11, [12])
    with pytest.raises(ValueError, match="degree bound 1"):
        fri.layer_schedule(FOLD8, 1 << 10, 11, [0])


# ----------------------------------------------------- completeness --

CASES = [
    # (options, log_m, input heights): s = 0, 1, 2, 3, 5, 6; the final vector; two inputs
    (FOLD8, 9, [9]),
    (FOLD8, 9, [8]),
    (FOLD8, 9, [7]),
    (FOLD8, 10, [7]),
    (FOLD8, 11, [6]),
    (FOLD8, 11, [5]),
    (FOLD4, 9, [8, 4]),
    (FOLD4, 8, [6, 6]),
]


@pytest.mark.parametrize("options,log_m,heights", CASES)
def test_inputs_at_lower_heights_verify(options, log_m, heights):
    rng = np.random.default_rng(log_m * 100 + sum(heights))
    lb = options.log_blowup
    f = _codeword(rng, log_m, lb)
    inputs = [(h, _codeword(rng, h, lb)) for h in heights]
    com, positions, openings = _prove(f, 1 << (log_m - lb), options, log_m, inputs)
    _verify(com, positions, openings, f, 1 << (log_m - lb), options, log_m, inputs)


@pytest.mark.parametrize("options,log_m,heights", [c for c in CASES if c[1] <= 9])
def test_the_reference_commits_the_same_layers(options, log_m, heights):
    rng = np.random.default_rng(7 + log_m)
    lb = options.log_blowup
    degree = 1 << (log_m - lb)
    f = _codeword(rng, log_m, lb)
    inputs = [(h, _codeword(rng, h, lb)) for h in heights]
    tr, ref_tr = Transcript(b"same"), RefTranscript(b"same")
    com = fri.commit(f, degree, options, log_m, COSET_SHIFT, tr, inputs)
    plan = reference_schedule(options, degree, log_m, heights)
    layers, trees, final, _ = reference_fri_commit(
        ref_tr, _ext_list(f), options, log_m, [(h, _ext_list(g)) for h, g in inputs], plan)
    assert list(com.schedule.log_arities) == plan[0]
    assert com.roots == [t.root for t in trees]
    assert [Ext(*(int(c) for c in row)) for row in F.decode(com.final_coeffs)] == final
    for ours, theirs in zip(com.layers, layers):
        assert _ext_list(ours) == theirs
    # the transcripts end in the same state
    assert Ext.from_mont(tr.challenge_ext(1)[0]) == ref_tr.challenge_ext()


# -------------------------------------------------------- soundness --

def test_a_tampered_injected_value_is_caught_at_its_layer():
    rng = np.random.default_rng(1)
    # joined at a committed layer (2^11 -> 2^8 points, then one more fold) ...
    f, g = _codeword(rng, 11, 1), _codeword(rng, 8, 1)
    com, positions, openings = _prove(f, 1 << 10, FOLD8, 11, [(8, g)])
    assert com.schedule.joins == (1,) and len(com.layers) == 2
    bad = g.copy()
    row = fri.input_positions(positions, 11, 8)[3]
    bad[row] = F.add(bad[row], np.full(4, F.ONE, dtype=np.uint32))
    with pytest.raises(fri.FriError, match="layer 1: opened values disagree"):
        _verify(com, positions, openings, f, 1 << 10, FOLD8, 11, [(8, bad)])
    # ... and at the final vector
    f, g = _codeword(rng, 10, 1), _codeword(rng, 7, 1)
    com, positions, openings = _prove(f, 1 << 9, FOLD8, 10, [(7, g)])
    assert com.schedule.joins == (1,) and len(com.layers) == 1
    bad = g.copy()
    bad[fri.input_positions(positions, 10, 7)[0], 2] ^= 1
    with pytest.raises(fri.FriError, match="final polynomial disagrees"):
        _verify(com, positions, openings, f, 1 << 9, FOLD8, 10, [(7, bad)])


def test_an_input_far_from_its_degree_bound_is_rejected():
    rng = np.random.default_rng(2)
    f = _codeword(rng, 10, 1)
    for g in (_codeword(rng, 7, 1, degree=1 << 7),          # twice the rate: a random vector
              _codeword(rng, 7, 1, degree=(1 << 6) + 1)):   # one coefficient over the bound
        com, positions, openings = _prove(f, 1 << 9, FOLD8, 10, [(7, g)])
        with pytest.raises(fri.FriError):
            _verify(com, positions, openings, f, 1 << 9, FOLD8, 10, [(7, g)])


def test_an_input_joined_at_the_wrong_height_is_rejected():
    rng = np.random.default_rng(3)
    f = _codeword(rng, 10, 1)
    for honest, believed in ((6, 7), (6, 5), (3, 6)):
        g = _codeword(rng, honest, 1)
        com, positions, openings = _prove(f, 1 << 9, FOLD8, 10, [(honest, g)])
        # the verifier's schedule (from the heights it knows) binds another
        # transcript and other layers: the prover's openings do not answer it
        with pytest.raises(fri.FriError):
            _verify(com, positions, openings, f, 1 << 9, FOLD8, 10, [(honest, g)],
                    declared=[believed])


def test_the_injection_challenge_is_the_transcripts():
    rng = np.random.default_rng(4)
    f, g = _codeword(rng, 9, 1), _codeword(rng, 8, 1)
    com, positions, openings = _prove(f, 1 << 8, FOLD8, 9, [(8, g)])
    _verify(com, positions, openings, f, 1 << 8, FOLD8, 9, [(8, g)])
    other = E.mul(np.ascontiguousarray(com.final_coeffs[:1]), com.final_coeffs[:1])[0]
    with pytest.raises(fri.FriError):
        _verify(com, positions, openings, f, 1 << 8, FOLD8, 9, [(8, g)], gammas=[other])
    with pytest.raises(fri.FriError, match="0 input challenges for 1 inputs"):
        _verify(com, positions, openings, f, 1 << 8, FOLD8, 9, [(8, g)], gammas=[])


def test_an_input_of_the_wrong_shape_is_refused_by_the_prover():
    rng = np.random.default_rng(5)
    f = _codeword(rng, 9, 1)
    with pytest.raises(ValueError, match="must be \\(128, 4\\)"):
        fri.commit(f, 1 << 8, FOLD8, 9, COSET_SHIFT, Transcript(b"x"), [(7, np.zeros((64, 4), np.uint32))])


def _late_commit(f, degree, options, log_m, tr, h, g, late=True):
    """Test double: fri.commit with one input on 2^h points whose gamma is
    drawn where the schedule says (so the transcript is the honest one's)
    but gamma*g is added one layer later (`late`): g is folded alongside
    with beta 0 to the height where it is added, so every layer the prover
    commits follows from the one before; an input joining the final vector
    has no later layer and is never added.  late=False is the honest
    commit (the control that the double is faithful)."""
    schedule = fri.layer_schedule(options, degree, log_m, [h])
    join = schedule.joins[0]
    layers, trees, values, shift = [], [], f, COSET_SHIFT
    pending, gamma, g_shift, g_log = None, None, COSET_SHIFT, h
    zero = np.zeros(4, dtype=np.uint32)

    def add(vals, inp):
        return F.add(vals, E.mul_scalar(np.ascontiguousarray(inp), gamma))

    for layer, log_arity in enumerate(schedule.log_arities):
        if layer == join:
            gamma = tr.challenge_ext(1)[0]
            if late:
                pending = g
            else:
                values = add(values, g)
        elif pending is not None:
            values, pending = add(values, pending), None
        tree = MerkleTree(values.reshape(-1, 4 << log_arity))
        tr.absorb(b"fri-layer", tree.root)
        beta = tr.challenge_ext(1)[0]
        layers.append(values)
        trees.append(tree)
        for _ in range(log_arity):
            values = fri.binary_fold(values, log_m, shift, beta)
            if pending is not None:
                pending = fri.binary_fold(pending, g_log, g_shift, zero)
                g_shift, g_log = g_shift * g_shift % F.P, g_log - 1
            beta = E.mul(beta.reshape(1, 4), beta.reshape(1, 4))[0]
            shift, log_m = shift * shift % F.P, log_m - 1
    if join == len(schedule.log_arities):
        gamma = tr.challenge_ext(1)[0]
        if not late:
            values = add(values, g)
    elif pending is not None:
        values = add(values, pending)
    coeffs = ntt.coset_intt(ntt.bit_reverse_rows(values), shift)
    final = np.ascontiguousarray(coeffs[: schedule.final_degree])
    tr.absorb_array(b"fri-final", final)
    return fri.FriCommitment(layers, trees, final, schedule)


@pytest.mark.parametrize("options,log_m,h,where", [
    (FOLD4, 10, 8, "layer 1: opened values disagree"),
    (FOLD8, 11, 8, "layer 1: opened values disagree"),
    (FOLD4, 9, 9, "layer 0: opened values disagree"),
    (FOLD8, 10, 7, "final polynomial disagrees"),        # joins the final vector
])
def test_an_injection_one_layer_late_with_the_transcript_kept_is_rejected(options, log_m, h, where):
    """The late injection keeps the honest transcript (gamma drawn at the
    scheduled point, the positions the verifier's own), so only FRI's check
    at the injection layer, or of the final polynomial, can catch it; the
    same double injecting on time verifies."""
    rng = np.random.default_rng(9)
    lb = options.log_blowup
    f, g = _codeword(rng, log_m, lb), _codeword(rng, h, lb)
    degree = 1 << (log_m - lb)
    for late in (False, True):
        tr = Transcript(b"fri-inputs")
        com = _late_commit(f, degree, options, log_m, tr, h, g, late)
        positions = np.array(tr.challenge_indices(options.num_queries, 1 << log_m), dtype=np.int64)
        openings = fri.open_layers(com, positions)
        if not late:
            _verify(com, positions, openings, f, degree, options, log_m, [(h, g)])
            continue
        with pytest.raises(fri.FriError, match=where):
            _verify(com, positions, openings, f, degree, options, log_m, [(h, g)])
