"""BabyBear kernels against Python integers, on every ISA path."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zksidecar.prover import field as F
from zksidecar.prover import native

P = F.P
EDGES = [0, 1, 2, P - 1, P - 2, (P - 1) // 2, (P + 1) // 2, 1 << 27, (1 << 31) - 1 - (1 << 27)]
# lengths that exercise every vector body and every tail length
LENGTHS = [0, 1, 7, 8, 9, 15, 16, 17, 33, 1000]


def rand(n, seed=0):
    return np.random.default_rng(seed).integers(0, P, n, dtype=np.uint32)


def with_edges(n, seed):
    x = rand(n, seed)
    x[: min(n, len(EDGES))] = EDGES[: min(n, len(EDGES))]
    return x


def as_ints(a):
    return [int(v) for v in a]


def test_constants():
    assert P == 15 * 2**27 + 1
    assert F.ONE == (1 << 32) % P
    assert F.encode_int(1) == F.ONE and F.decode_int(F.ONE) == 1
    assert pow(F.GENERATOR, (P - 1) // 2, P) == P - 1  # a non-residue: generates the whole group
    for q in (2, 3, 5):  # p - 1 = 2^27 * 3 * 5
        assert pow(F.GENERATOR, (P - 1) // q, P) != 1
    g = F.two_adic_generator(27)
    assert pow(g, 1 << 26, P) == P - 1 and pow(g, 1 << 27, P) == 1


@pytest.mark.parametrize("n", LENGTHS)
def test_round_trip(each_isa, n):
    x = with_edges(n, n)
    a = F.encode(x)
    assert (a == np.array([F.encode_int(v) for v in as_ints(x)], dtype=np.uint32)).all()
    assert (F.decode(a) == x).all()


@pytest.mark.parametrize("n", LENGTHS)
def test_arithmetic_known_answers(each_isa, n):
    x, y = with_edges(n, 1), with_edges(n, 2)[::-1].copy()
    a, b = F.encode(x), F.encode(y)
    X, Y = as_ints(x), as_ints(y)
    assert as_ints(F.decode(F.add(a, b))) == [(u + v) % P for u, v in zip(X, Y)]
    assert as_ints(F.decode(F.sub(a, b))) == [(u - v) % P for u, v in zip(X, Y)]
    assert as_ints(F.decode(F.mul(a, b))) == [u * v % P for u, v in zip(X, Y)]
    assert as_ints(F.decode(F.neg(a))) == [-u % P for u in X]
    s = 123456789
    assert as_ints(F.decode(F.mul_scalar(a, F.encode_int(s)))) == [u * s % P for u in X]
    for e in (0, 1, 2, 7, P - 2, P - 1, 2**64 - 1):
        assert as_ints(F.decode(F.power(a, e))) == [pow(u, e, P) for u in X]


@pytest.mark.parametrize("n", LENGTHS)
def test_inverse(each_isa, n):
    x = with_edges(n, 3)
    x[x == 0] = 5
    inv = F.decode(F.inv(F.encode(x)))
    assert as_ints(inv) == [pow(u, P - 2, P) for u in as_ints(x)]


@pytest.mark.parametrize("where", [0, 5, 16, 999])
def test_inverse_of_zero_is_an_error(each_isa, where):
    x = rand(1000, 4)
    x[x == 0] = 1
    x[where] = 0
    with pytest.raises(ZeroDivisionError, match=rf"index \({where},\)"):
        F.inv(F.encode(x))


def test_every_path_matches_scalar():
    x, y = rand(4099, 7), rand(4099, 8)

    def run():
        a, b = F.encode(x), F.encode(y)
        return [F.add(a, b), F.sub(a, b), F.mul(a, b), F.neg(a), F.inv(a + (a == 0)),
                F.power(a, 0xDEADBEEF), F.decode(a)]

    results = native.on_each_isa(run)
    for isa, res in results.items():
        for got, want in zip(res, results["scalar"]):
            assert (got == want).all(), isa


def test_out_may_alias_input(each_isa):
    x = rand(100, 9)
    a = F.encode(x)
    want = F.mul(a, a)
    F.mul(a, a, out=a)
    assert (a == want).all()
    b = F.encode(x)
    F.power(b, 3, out=b)
    assert as_ints(F.decode(b)) == [pow(u, 3, P) for u in as_ints(x)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, P - 1), min_size=1, max_size=70),
       st.lists(st.integers(0, P - 1), min_size=1, max_size=70))
def test_field_laws(xs, ys):
    n = min(len(xs), len(ys))
    a, b = F.encode(np.array(xs[:n])), F.encode(np.array(ys[:n]))
    assert (F.mul(a, b) == F.mul(b, a)).all()
    assert (F.sub(F.add(a, b), b) == a).all()
    assert (F.add(a, F.neg(a)) == 0).all()
    # distributivity
    c = F.add(a, b)
    assert (F.mul(c, a) == F.add(F.mul(a, a), F.mul(b, a))).all()
    assert as_ints(F.decode(F.mul(a, b))) == [u * v % P for u, v in zip(xs, ys)]


def test_bad_input_errors():
    with pytest.raises(ValueError, match="not below p"):
        F.encode([1, P])
    with pytest.raises(ValueError, match="not below p"):
        F.encode(np.array([1, 2**40], dtype=np.int64))
    with pytest.raises(ValueError, match="negative"):
        F.encode([3, -1])
    with pytest.raises(TypeError, match="integers"):
        F.encode([1.5])
    a = F.encode([1, 2, 3])
    with pytest.raises(TypeError, match="uint32"):
        F.mul(a, a.astype(np.int64))
    with pytest.raises(ValueError, match="shape mismatch"):
        F.mul(a, a[:2].copy())
    with pytest.raises(ValueError, match="C-contiguous"):
        F.mul(a[::2], a[::2])
    with pytest.raises(ValueError, match="cannot write over"):
        F.inv(a, out=a)
    with pytest.raises(ValueError, match="exponent"):
        F.power(a, -1)
    with pytest.raises(ValueError, match="no subgroup"):
        F.two_adic_generator(28)
    with pytest.raises(ValueError, match="unknown ISA"):
        native.set_isa("neon")
