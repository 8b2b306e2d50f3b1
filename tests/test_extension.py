"""Quartic extension kernels against polynomial arithmetic on Python integers."""
import numpy as np
import pytest

from zksidecar.prover import extension as E
from zksidecar.prover import field as F

P = F.P


def poly_mul(a, b):
    """(a * b) mod (X^4 - 11) on canonical coefficient lists."""
    prod = [0] * 7
    for i in range(4):
        for j in range(4):
            prod[i + j] += a[i] * b[j]
    return [(prod[k] + (E.W * prod[k + 4] if k + 4 < 7 else 0)) % P for k in range(4)]


def rand(n, seed):
    x = np.random.default_rng(seed).integers(0, P, (n, 4), dtype=np.uint32)
    if n:
        x[0] = [P - 1, P - 1, P - 1, P - 1]
    if n > 1:
        x[1] = [0, 0, 0, 1]
    return x


def test_modulus_is_irreducible():
    # Lidl-Niederreiter Thm 3.75: X^4 - w irreducible iff p = 1 mod 4 and w a non-residue
    assert P % 4 == 1 and pow(E.W, (P - 1) // 2, P) == P - 1


@pytest.mark.parametrize("n", [0, 1, 2, 17, 300])
def test_mul_and_inverse(n):
    x, y = rand(n, 1), rand(n, 2)
    a, b = E.encode(x), E.encode(y)
    got = E.decode(E.mul(a, b)).tolist()
    assert got == [poly_mul(u, v) for u, v in zip(x.tolist(), y.tolist())]
    if n:
        inv = E.inv(a)
        one = E.decode(E.mul(inv, a))
        assert (one == [1, 0, 0, 0]).all()


def test_mixed_base_extension_ops():
    x, y = rand(50, 3), np.random.default_rng(4).integers(0, P, 50, dtype=np.uint32)
    a, b = E.encode(x), F.encode(y)
    assert E.decode(E.mul_base(a, b)).tolist() == [[c * v % P for c in u] for u, v in zip(x.tolist(), y.tolist())]
    s = rand(1, 5)[0]
    assert E.decode(E.scale_base(b, E.encode(s))).tolist() == [[v * c % P for c in s.tolist()] for v in y.tolist()]
    assert (E.mul(E.from_base(b), a) == E.mul_base(a, b)).all()


@pytest.mark.parametrize("cols", [1, 3, 4, 5, 64])
def test_combine_rows(cols):
    rng = np.random.default_rng(cols)
    m = rng.integers(0, P, (20, cols), dtype=np.uint32)
    m[0] = P - 1
    c = rand(cols, 6)
    got = E.decode(E.combine_rows(F.encode(m), E.encode(c))).tolist()
    want = [[sum(int(m[r, j]) * int(c[j, k]) for j in range(cols)) % P for k in range(4)] for r in range(20)]
    assert got == want


def test_errors():
    a = E.encode(rand(4, 7))
    a[2] = 0
    with pytest.raises(ZeroDivisionError, match="index 2"):
        E.inv(a)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        E.mul(a[:, :3].copy(), a[:, :3].copy())
    with pytest.raises(ValueError, match="4 coefficients"):
        E.encode([1, 2, 3])
