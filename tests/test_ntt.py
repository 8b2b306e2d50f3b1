"""NTT and LDE (prover/ntt.py over csrc/field/ntt.c) against definitions written
with Python integers, on every instruction-set path."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zksidecar.prover import field, native, ntt
from zksidecar.tools.bench.kernels import ntt_numpy_reference

P = field.P
RNG = np.random.default_rng(20240527)


def rand(*shape) -> np.ndarray:
    """Random canonical field elements (uint32)."""
    return RNG.integers(0, P, size=shape, dtype=np.uint32)


def omega(n: int) -> int:
    return field.two_adic_generator(n.bit_length() - 1)


def naive_eval(coeffs, points) -> list[int]:
    """sum_i c_i x^i at each point, by Horner in Python integers."""
    out = []
    for x in points:
        acc = 0
        for c in reversed([int(c) for c in coeffs]):
            acc = (acc * x + c) % P
        out.append(acc)
    return out


def coset_points(n: int, shift: int = 1) -> list[int]:
    w = omega(n)
    return [shift * pow(w, i, P) % P for i in range(n)]


def bit_reverse_perm(n: int) -> np.ndarray:
    bits = n.bit_length() - 1
    return np.array([int(f"{i:0{bits}b}"[::-1], 2) if bits else 0 for i in range(n)])


# ------------------------------------------------------------ definitions --

@pytest.mark.parametrize("log_n", range(11))
def test_ntt_matches_naive_dft(each_isa, log_n):
    n = 1 << log_n
    coeffs = rand(n)
    got = field.decode(ntt.ntt(field.encode(coeffs)))
    assert got.tolist() == naive_eval(coeffs, coset_points(n))


@pytest.mark.parametrize("log_n", [0, 1, 4, 7])
@pytest.mark.parametrize("shift", [field.GENERATOR, 7, P - 1])
def test_coset_ntt_matches_naive_evaluation(each_isa, log_n, shift):
    n = 1 << log_n
    coeffs = rand(n, 3)
    got = field.decode(ntt.coset_ntt(field.encode(coeffs), shift))
    for j in range(3):
        assert got[:, j].tolist() == naive_eval(coeffs[:, j], coset_points(n, shift))


@pytest.mark.parametrize("cols", [2, 4, 12, 15])
def test_narrow_matrices_match_naive_evaluation(each_isa, cols):
    """Under 16 columns and not a multiple of 8 wide, csrc/field/ntt.c transforms
    column by column (one transpose each way): still each column's DFT."""
    n, shift = 64, field.GENERATOR
    coeffs = rand(n, cols)
    evals = field.decode(ntt.coset_ntt(field.encode(coeffs), shift))
    for j in range(cols):
        assert evals[:, j].tolist() == naive_eval(coeffs[:, j], coset_points(n, shift))
    assert (field.decode(ntt.coset_intt(field.encode(evals), shift)) == coeffs).all()


def test_intt_inverts_naive_dft(each_isa):
    n = 64
    coeffs = rand(n)
    evals = field.encode(np.array(naive_eval(coeffs, coset_points(n)), dtype=np.uint32))
    assert (field.decode(ntt.intt(evals)) == coeffs).all()


def test_domain_points():
    for log_n, shift in [(0, 1), (0, 5), (3, 1), (6, field.GENERATOR)]:
        pts = field.decode(ntt.domain(log_n, shift))
        assert pts.tolist() == coset_points(1 << log_n, shift)


def test_numpy_reference_agrees():
    coeffs = rand(1 << 9)
    assert ntt_numpy_reference(coeffs).tolist() == naive_eval(coeffs, coset_points(1 << 9))


# ------------------------------------------------------------ round trips --

@pytest.mark.parametrize("cols", [1, 3, 8, 17, 64])
@pytest.mark.parametrize("log_n", [0, 1, 2, 3, 5, 8, 11, 14])
def test_round_trips(each_isa, log_n, cols):
    a = field.encode(rand(1 << log_n, cols) if cols > 1 else rand(1 << log_n))
    assert (ntt.intt(ntt.ntt(a)) == a).all()
    assert (ntt.ntt(ntt.intt(a)) == a).all()
    assert (ntt.coset_intt(ntt.coset_ntt(a, 31), 31) == a).all()


def test_matrix_columns_are_independent(each_isa):
    m = field.encode(rand(256, 17))
    whole = ntt.ntt(m)
    for j in (0, 8, 16):
        assert (whole[:, j] == ntt.ntt(np.ascontiguousarray(m[:, j]))).all()


def test_in_place(each_isa):
    a = field.encode(rand(1024))
    expected = ntt.ntt(a)
    assert ntt.ntt(a, out=a) is a
    assert (a == expected).all()


def test_bit_reverse_rows():
    for log_n in [0, 1, 3, 7, 8, 9, 12]:  # 8 and up take the tiled single-column path
        n = 1 << log_n
        for a in (rand(n), rand(n, 5)):
            got = ntt.bit_reverse_rows(a)
            assert (got == a[bit_reverse_perm(n)]).all()
            assert (ntt.bit_reverse_rows(got) == a).all()


# -------------------------------------------------------------------- LDE --

# Widths around the row kernel's tails: 3 scalar; 12 on AVX-512 the ymm
# instance with its own overlapping vector; 17 and 29 an overlapping last
# vector on both vector paths.
@pytest.mark.parametrize("log_blowup", [1, 2, 3, 4])
@pytest.mark.parametrize("cols", [1, 3, 8, 12, 17, 29])     # 3 at 8 rows and 8: spread_quad under a vector
@pytest.mark.parametrize("log_n", [0, 1, 3, 4, 6])
def test_lde_equals_direct_evaluation(each_isa, log_n, log_blowup, cols):
    n, big = 1 << log_n, 1 << (log_n + log_blowup)
    degree = max(n - 2, 0)  # a polynomial of known degree d < n
    coeffs = np.zeros((n, cols), dtype=np.uint32)
    coeffs[: degree + 1] = rand(degree + 1, cols)
    evals = ntt.ntt(field.encode(coeffs))

    natural = ntt.lde(evals, log_blowup)
    reversed_ = ntt.lde(evals, log_blowup, bit_reversed=True)
    points = coset_points(big, field.GENERATOR)
    for j in range(cols):
        assert field.decode(np.ascontiguousarray(natural[:, j])).tolist() == naive_eval(coeffs[:, j], points)
    assert (reversed_ == natural[bit_reverse_perm(big)]).all()
    # degree check: interpolating the LDE gives back the coefficients, zeros above d
    recovered = field.decode(ntt.coset_intt(natural, field.GENERATOR))
    assert (recovered[: degree + 1] == coeffs[: degree + 1]).all()
    assert not recovered[degree + 1:].any()


@pytest.mark.parametrize("bit_reversed", [False, True])
@pytest.mark.parametrize("cols", [1, 16, 33])
def test_lde_larger_sizes_against_coset_ntt(each_isa, cols, bit_reversed):
    n, log_blowup = 1 << 12, 2
    coeffs = field.encode(rand(n, cols) if cols > 1 else rand(n))
    padded = np.zeros((n << log_blowup,) + coeffs.shape[1:], dtype=np.uint32)
    padded[:n] = coeffs
    expected = ntt.coset_ntt(padded, 7)
    if bit_reversed:
        expected = ntt.bit_reverse_rows(expected)
    got = ntt.lde(ntt.ntt(coeffs), log_blowup, shift=7, bit_reversed=bit_reversed)
    assert (got == expected).all()


def test_lde_leaves_input_alone():
    evals = field.encode(rand(64, 3))
    before = evals.copy()
    ntt.lde(evals, 3)
    assert (evals == before).all()


# ------------------------------------------------------- ISA equivalence --

@pytest.mark.parametrize("shape", [(1 << 13,), (1 << 16,), (1 << 10, 1), (1 << 10, 7), (1 << 9, 40),
                                   (1 << 9, 8), (1 << 8, 16), (1 << 8, 126)])
def test_every_isa_bit_identical_to_scalar(shape):
    """Matrices go two stages a call (set_stage2): rows narrower than an
    AVX-512 vector (8), exactly one (16) and a width whose last vector
    overlaps the one before it (40, 126: the order book's execution
    segment) against the scalar path's stage-by-stage butterflies."""
    a = field.encode(rand(*shape))
    results = native.on_each_isa(lambda: [ntt.ntt(a), ntt.intt(a), ntt.coset_ntt(a, 31),
                                          ntt.coset_intt(a, 31), ntt.lde(a, 1),
                                          ntt.lde(a, 3, bit_reversed=True)])
    for name, outs in results.items():
        for got, want in zip(outs, results["scalar"]):
            assert (got == want).all(), name


@pytest.mark.parametrize("shape", [(1 << 10, 1), (1 << 9, 40), (1 << 8, 126)])
def test_extreme_values_bit_identical_to_scalar(shape):
    """The vector butterflies keep some values lazy (a sum below 2p, a
    difference plus p: ntt_vec.inc, dit4 and the DIF butterfly) where only a
    product reads them, and skip the product where the twiddle is ONE.
    Inputs made of the extremes (0, 1, p - 1, p - 2 and their Montgomery
    images) put the largest lazy words into the first stages (p - 1 + p - 1
    = 2p - 2 the top of the range): every ISA path gives the scalar path's
    words and the definition's (coset NTT of the coefficients)."""
    edges = np.array([0, 1, P - 1, P - 2, 2, (P - 1) // 2], dtype=np.uint32)
    picks = RNG.integers(0, 2 * len(edges), size=shape)
    a = np.where(picks < len(edges), edges[picks % len(edges)],
                 field.encode(edges)[picks % len(edges)]).astype(np.uint32)
    results = native.on_each_isa(lambda: [ntt.ntt(a), ntt.intt(a), ntt.lde(a, 1), ntt.lde(a, 2),
                                          ntt.extend(a, 1)])
    for name, outs in results.items():
        for got, want in zip(outs, results["scalar"]):
            assert (got == want).all(), name
    coeffs = ntt.intt(a)
    padded = np.zeros((2 * shape[0],) + shape[1:], dtype=np.uint32)
    padded[:shape[0]] = coeffs
    assert (results["scalar"][2] == ntt.coset_ntt(padded, field.GENERATOR)).all()


# ----------------------------------------------------------- properties --

@settings(max_examples=40, deadline=None)
@given(log_n=st.integers(0, 9), cols=st.integers(1, 20), data=st.data())
def test_ntt_is_linear(log_n, cols, data):
    """ntt(a + c b) = ntt(a) + c ntt(b): catches any twiddle or stage slip."""
    n = 1 << log_n
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a, b = (field.encode(rng.integers(0, P, (n, cols), dtype=np.uint32)) for _ in range(2))
    c = field.encode_int(data.draw(st.integers(0, P - 1)))
    lhs = ntt.ntt(field.add(a, field.mul_scalar(b, c)))
    rhs = field.add(ntt.ntt(a), field.mul_scalar(ntt.ntt(b), c))
    assert (lhs == rhs).all()


@settings(max_examples=40, deadline=None)
@given(log_n=st.integers(0, 8), shift=st.integers(1, P - 1), log_blowup=st.integers(1, 4))
def test_lde_restricts_to_coset(log_n, shift, log_blowup):
    """Every 2^log_blowup-th LDE row is the evaluation on shift * H itself."""
    evals = field.encode(rand(1 << log_n, 2))
    big = ntt.lde(evals, log_blowup, shift=shift)
    assert (big[:: 1 << log_blowup] == ntt.coset_ntt(ntt.intt(evals), shift)).all()


# ---------------------------------------------------------------- errors --

def test_rejects_bad_input():
    with pytest.raises(ValueError, match="power of two"):
        ntt.ntt(np.zeros(12, dtype=np.uint32))
    with pytest.raises(ValueError, match="power of two"):
        ntt.ntt(np.zeros(0, dtype=np.uint32))
    with pytest.raises(TypeError, match="uint32"):
        ntt.ntt(np.zeros(16, dtype=np.uint64))
    with pytest.raises(TypeError, match="uint32"):
        ntt.ntt([1, 2, 3, 4])
    with pytest.raises(ValueError, match="C-contiguous"):
        ntt.ntt(np.zeros((16, 4), dtype=np.uint32)[:, ::2])
    with pytest.raises(ValueError, match="1-D"):
        ntt.ntt(np.zeros((4, 4, 4), dtype=np.uint32))
    with pytest.raises(ValueError, match="nonzero"):
        ntt.coset_ntt(np.zeros(16, dtype=np.uint32), P)
    with pytest.raises(TypeError, match="shift"):
        ntt.coset_ntt(np.zeros(16, dtype=np.uint32), 3.0)
    for bad in (0, 5, -1, 1.5):
        with pytest.raises(ValueError, match="log_blowup"):
            ntt.lde(np.zeros(16, dtype=np.uint32), bad)
    with pytest.raises(ValueError, match="out"):
        ntt.lde(np.zeros(16, dtype=np.uint32), 1, out=np.zeros(16, dtype=np.uint32))
    with pytest.raises(ValueError, match="log_n"):
        ntt.domain(28)


def test_rejects_sizes_beyond_two_adicity():
    """Refused from the shape alone.  np.empty only reserves address space, and
    no page is touched because the check comes before any C call."""
    with pytest.raises(ValueError, match="2\\^27"):
        ntt.ntt(np.empty(1 << 28, dtype=np.uint32))
    with pytest.raises(ValueError, match="extended domain"):
        ntt.lde(np.empty(1 << 26, dtype=np.uint32), 2)


def test_concurrent_calls_share_the_twiddle_cache():
    """Threads (the GIL is released in C) first using a new size together:
    the lazily built twiddle levels must come out the same for all."""
    from concurrent.futures import ThreadPoolExecutor

    evals = field.encode(rand(1 << 16))  # LDE to 2^18: levels no other test builds
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ntt.lde(evals, 2), range(8)))
    expected = ntt.lde(evals, 2)
    assert all((r == expected).all() for r in results)
    assert (expected[::4] == ntt.coset_ntt(ntt.intt(evals), field.GENERATOR)).all()


# ---------------------------------------------------------------- passes --

@pytest.mark.parametrize("budget", [16, 200, 4096])
@pytest.mark.parametrize("log_n, cols", [(6, 2), (9, 3), (8, 17), (7, 143), (5, 40)])
def test_passes_are_bit_identical_at_any_cache_budget(each_isa, budget, log_n, cols):
    """A small budget splits every matrix transform into many passes of
    strided sets (ntt.c, "Passes"), down to one stage each: the results are
    those of the default budget (one pass at these sizes), which the tests
    above hold to the definitions."""
    a = field.encode(rand(1 << log_n, cols))
    ops = [lambda: ntt.ntt(a), lambda: ntt.intt(a), lambda: ntt.coset_ntt(a, 31),
           lambda: ntt.coset_intt(a, 31), lambda: ntt.lde(a, 1), lambda: ntt.lde(a, 2),
           lambda: ntt.lde(a, 4, shift=7), lambda: ntt.lde(a, 3, bit_reversed=True)]
    want = [op() for op in ops]
    with ntt.cache_budget(budget):
        got = [op() for op in ops]
    for g, w in zip(got, want):
        assert (g == w).all()


def test_cache_budget_is_restored_and_checked():
    a = field.encode(rand(1 << 8, 5))
    want = ntt.lde(a, 2)
    with ntt.cache_budget(64):
        with ntt.cache_budget(1 << 20):
            pass
        assert lib_budget() == 64
    assert lib_budget() == 0
    assert (ntt.lde(a, 2) == want).all()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="nbytes"):
            with ntt.cache_budget(bad):
                pass


def lib_budget() -> int:
    """The budget setting in force (0: the default), read by setting it back."""
    from zksidecar.prover.native import lib
    value = lib.zk_ntt_set_cache_bytes(0)
    lib.zk_ntt_set_cache_bytes(value)
    return value


# ----------------------------------------------------------------- extend --

@pytest.mark.parametrize("budget", [None, 200])
@pytest.mark.parametrize("log_n, cols, log_blowup", [(0, 1, 1), (3, 1, 2), (5, 8, 2), (6, 3, 4), (7, 17, 1),
                                                     (9, 143, 2), (12, 1, 2)])
def test_extend_is_coset_ntt_of_zero_padded_coefficients(each_isa, budget, log_n, cols, log_blowup):
    n, big = 1 << log_n, 1 << (log_n + log_blowup)
    coeffs = field.encode(rand(n, cols) if cols > 1 else rand(n))
    padded = np.zeros((big,) + coeffs.shape[1:], dtype=np.uint32)
    padded[:n] = coeffs
    want = ntt.coset_ntt(padded, 7)
    if budget is None:
        got = ntt.extend(coeffs, log_blowup, 7)
    else:
        with ntt.cache_budget(budget):
            got = ntt.extend(coeffs, log_blowup, 7)
    assert (got == want).all()


def test_extend_small_case_by_hand_and_errors():
    # 3 + 2x on the coset 5 * <w_4>: values 3 + 10 w^i
    coeffs = field.encode([3, 2])
    w = omega(4)
    assert field.decode(ntt.extend(coeffs, 1, 5)).tolist() == [(3 + 10 * pow(w, i, P)) % P for i in range(4)]
    before = coeffs.copy()
    ntt.extend(coeffs, 2)
    assert (coeffs == before).all()
    with pytest.raises(ValueError, match="log_blowup"):
        ntt.extend(coeffs, 5)
    with pytest.raises(ValueError, match="power of two"):
        ntt.extend(field.encode([1, 2, 3]), 1)


# ----------------------------------------------------------- coset values --

@pytest.mark.parametrize("k, log_m, cols", [(1, 0, 1), (1, 3, 2), (5, 3, 1), (8, 3, 3), (9, 3, 2), (37, 3, 4),
                                             (100, 5, 1), (3, 4, 2), (130, 2, 5)])
def test_coset_values_are_the_polynomials_on_the_coset(k, log_m, cols):
    """Coefficients of any count k, folded onto m = 2^log_m rows: the values
    on shift * <w_m> (fewer, as many or far more coefficients than m; a
    last block of m rows cut short), a column as one."""
    coeffs = rand(k, cols)
    shift = 961
    points = coset_points(1 << log_m, shift)
    want = np.array([naive_eval(coeffs[:, c], points) for c in range(cols)]).T
    assert (field.decode(ntt.coset_values(field.encode(coeffs), log_m, shift)) == want).all()
    column = np.ascontiguousarray(coeffs[:, 0])
    assert field.decode(ntt.coset_values(field.encode(column), log_m, shift)).tolist() == want[:, 0].tolist()
    out = np.zeros((1 << log_m, cols), dtype=np.uint32)
    assert ntt.coset_values(field.encode(coeffs), log_m, shift, out=out) is out


def test_coset_values_at_gives_each_coset_from_one_pass(each_isa):
    """One to five cosets of one size from one fold (the zk quotient's D''
    and w_N D'' are two; zk_fold_rows' weighted sums of 1, 3 and 4 sets,
    and 5 in two passes), on every ISA, at widths around the vector loops
    (a tail of columns; one column), an odd count of blocks and cosets of
    one point: each against the definition (Horner at each point), and the
    same as coset_values alone; mismatched counts and overlapping outputs
    refused."""
    shifts = (961, 5, 7, 11, 13)
    for k, log_m, cols in [(100, 3, 37), (33, 2, 16), (9, 3, 1), (5, 4, 17), (64, 0, 3)]:
        canon = rand(k, cols)
        coeffs = field.encode(canon)
        want = {s: np.array([naive_eval(canon[:, c], coset_points(1 << log_m, s)) for c in range(cols)]).T
                for s in shifts}
        for count in (1, 3, 4, 5):
            outs = ntt.coset_values_at(coeffs, log_m, shifts[:count], [None] * count)
            for shift, out in zip(shifts, outs):
                assert (field.decode(out) == want[shift]).all()
        assert np.array_equal(outs[0], ntt.coset_values(coeffs, log_m, shifts[0]))
    coeffs = field.encode(rand(5, 17))
    with pytest.raises(ValueError, match="2 shifts for 1 outputs"):
        ntt.coset_values_at(coeffs, 1, (3, 5), (None,))
    out = np.zeros((4, 17), dtype=np.uint32)
    with pytest.raises(ValueError, match="another output"):
        ntt.coset_values_at(coeffs, 2, (3, 5), (out, out))


def test_coset_values_refuses_bad_input():
    coeffs = field.encode(rand(6, 2))
    with pytest.raises(ValueError, match="log_m"):
        ntt.coset_values(coeffs, -1, 7)
    with pytest.raises(ValueError, match="at least one row"):
        ntt.coset_values(np.zeros((0, 2), dtype=np.uint32), 2, 7)
    with pytest.raises(ValueError, match="out has shape"):
        ntt.coset_values(coeffs, 2, 7, out=np.zeros((8, 2), dtype=np.uint32))
    with pytest.raises(ValueError, match="cannot write over its input"):
        ntt.coset_values(coeffs, 1, 7, out=coeffs[:2])
    with pytest.raises(TypeError, match="uint32"):
        ntt.coset_values(rand(6, 2).astype(np.int64), 2, 7)
