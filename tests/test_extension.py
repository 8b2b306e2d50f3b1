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


# ---- every ISA path: kernels against Python integers and against scalar ----

LENGTHS = [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100]
EDGE = [0, 1, P - 1]


def edge_rand(shape, seed):
    """Random canonical values with the edge values 0, 1, p - 1 salted in."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, P, shape, dtype=np.uint32)
    flat = x.reshape(-1)
    k = min(flat.size, max(1, flat.size // 4))
    if flat.size:
        idx = rng.choice(flat.size, k, replace=False)
        flat[idx] = rng.choice(EDGE, k)
    return x


def poly_mul_base(u, v):
    return [c * v % P for c in u]


def on_scalar(fn):
    """fn() run on the scalar path (the reference every vector path must match bit for bit)."""
    from zksidecar.prover import native
    before = native.isa()
    native.set_isa("scalar")
    try:
        return fn()
    finally:
        native.set_isa(before)


def combine_want(m, c):
    rows, cols = m.shape
    mi, ci = m.astype(object), c.astype(object)
    return [[int(sum(mi[r, j] * ci[j, k] for j in range(cols)) % P) for k in range(4)] for r in range(rows)]


@pytest.mark.parametrize("n", LENGTHS)
def test_mul_paths(each_isa, n):
    x, y = edge_rand((n, 4), n), edge_rand((n, 4), 100 + n)
    if n >= 2:
        x[0], y[0] = [P - 1] * 4, [P - 1] * 4
        x[1], y[1] = [0, 0, 0, 1], [0, 1, 0, P - 1]
    a, b = E.encode(x), E.encode(y)
    got = E.mul(a, b)
    assert E.decode(got).tolist() == [poly_mul(u, v) for u, v in zip(x.tolist(), y.tolist())]
    assert np.array_equal(got, on_scalar(lambda: E.mul(a, b)))
    # in place (out aliases a)
    c = a.copy()
    E.mul(c, b, out=c)
    assert np.array_equal(c, got)


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("s", [[0, 0, 0, 0], [1, 0, 0, 0], [P - 1] * 4, [0, 0, 0, 1], None])
def test_mul_scalar_paths(each_isa, n, s):
    x = edge_rand((n, 4), 200 + n)
    s = np.array(edge_rand((4,), 7) if s is None else s, dtype=np.uint32)
    a, se = E.encode(x), E.encode(s)
    got = E.mul_scalar(a, se)
    assert E.decode(got).tolist() == [poly_mul(u, s.tolist()) for u in x.tolist()]
    assert np.array_equal(got, on_scalar(lambda: E.mul_scalar(a, se)))
    assert np.array_equal(got, E.mul(a, np.tile(se, (n, 1))))
    c = a.copy()
    E.mul_scalar(c, se, out=c)
    assert np.array_equal(c, got)


@pytest.mark.parametrize("n", LENGTHS)
def test_mul_base_and_scale_base_paths(each_isa, n):
    x, y = edge_rand((n, 4), 300 + n), edge_rand((n,), 400 + n)
    a, b = E.encode(x), F.encode(y)
    got = E.mul_base(a, b)
    assert E.decode(got).tolist() == [poly_mul_base(u, v) for u, v in zip(x.tolist(), y.tolist())]
    assert np.array_equal(got, on_scalar(lambda: E.mul_base(a, b)))
    for s in ([0, 0, 0, 0], [1, 0, 0, 0], [P - 1] * 4, edge_rand((4,), n).tolist()):
        se = E.encode(np.array(s, dtype=np.uint32))
        got = E.scale_base(b, se)
        assert E.decode(got).tolist() == [[v * c % P for c in s] for v in y.tolist()]
        assert np.array_equal(got, on_scalar(lambda: E.scale_base(b, se)))


@pytest.mark.parametrize("cols", list(range(0, 71)))
def test_combine_rows_paths(each_isa, cols):
    rows = 9 if cols % 2 else 8  # odd and even row counts (the vector bodies pair rows)
    m, c = edge_rand((rows, cols), cols), edge_rand((cols, 4), 1000 + cols)
    if cols:
        m[0] = P - 1
        c[0] = P - 1
    m[1] = 0
    me, ce = F.encode(m), E.encode(c)
    got = E.combine_rows(me, ce)
    assert E.decode(got).tolist() == combine_want(m, c)
    assert np.array_equal(got, on_scalar(lambda: E.combine_rows(me, ce)))
    c2 = edge_rand((cols, 4), 2000 + cols)
    c2e = E.encode(c2)
    ga, gb = E.combine_rows2(me, ce, c2e)
    assert np.array_equal(ga, got)
    assert E.decode(gb).tolist() == combine_want(m, c2)
    sa, sb = on_scalar(lambda: E.combine_rows2(me, ce, c2e))
    assert np.array_equal(ga, sa) and np.array_equal(gb, sb)


@pytest.mark.parametrize("rows", LENGTHS)
@pytest.mark.parametrize("cols", [4, 5, 8, 16])  # 4: the rows-across-lanes body
def test_combine_rows_row_counts(each_isa, rows, cols):
    m, c = edge_rand((rows, cols), rows), edge_rand((cols, 4), 3)
    me, ce = F.encode(m), E.encode(c)
    assert E.decode(E.combine_rows(me, ce)).tolist() == combine_want(m, c)
    a, b = E.combine_rows2(me, ce, ce)
    assert np.array_equal(a, b) and np.array_equal(a, E.combine_rows(me, ce))
    c2 = E.encode(edge_rand((cols, 4), 4))
    a, b = E.combine_rows2(me, ce, c2)
    assert E.decode(b).tolist() == combine_want(m, E.decode(c2))
    assert np.array_equal(b, on_scalar(lambda: E.combine_rows(me, c2)))


@pytest.mark.parametrize("cols", [511, 512, 513, 1100])
def test_combine_rows_wide(each_isa, cols):
    # the vector bodies take columns in blocks of 512; later blocks add into out
    rows = 3
    m, c = edge_rand((rows, cols), cols), edge_rand((cols, 4), cols + 1)
    me, ce = F.encode(m), E.encode(c)
    got = E.combine_rows(me, ce)
    assert E.decode(got).tolist() == combine_want(m, c)
    ga, gb = E.combine_rows2(me, ce, E.encode(c[::-1].copy()))
    assert np.array_equal(ga, got)
    assert E.decode(gb).tolist() == combine_want(m, c[::-1])


# a sparse second set (DEEP's next-row terms): the chunks of columns with no
# index skipped, the others multiplied; columns across the 8- and 16-lane
# chunks and the 512-column blocks, an index in the first and last chunk
@pytest.mark.parametrize("cols, picked", [(1, [0]), (17, [16]), (40, [0, 1, 39]), (118, [0, 2, 44, 75, 78]),
                                          (410, [2, 400, 409]), (530, [3, 511, 512, 529]), (33, [])])
def test_combine_rows2_columns_b(each_isa, cols, picked):
    rows = 7
    m, c = edge_rand((rows, cols), cols), edge_rand((cols, 4), cols + 5)
    sub = edge_rand((len(picked), 4), cols + 6)
    me, ce, se = F.encode(m), E.encode(c), E.encode(sub)
    a, b = E.combine_rows2(me, ce, se, columns_b=np.array(picked, dtype=np.int64))
    assert np.array_equal(a, E.combine_rows(me, ce))
    assert E.decode(b).tolist() == combine_want(m[:, picked], sub) if picked else not b.any()
    assert np.array_equal(b, on_scalar(lambda: E.combine_rows2(me, ce, se, columns_b=picked)[1]))


@pytest.mark.parametrize("rows, cols, picked", [(65, 17, [16]), (130, 143, [0, 15, 16, 142]), (3, 1, [0]),
                                                (64, 118, [0, 2, 3, 44, 75, 78]), (9, 20, [])])
def test_sum_rows2_columns_b(each_isa, rows, cols, picked):
    m = edge_rand((rows, cols), 3 * rows + cols)
    w, v = edge_rand((rows, 4), rows + 3), edge_rand((rows, 4), rows + 4)
    me, we, ve = F.encode(m), E.encode(w), E.encode(v)
    a, b = E.sum_rows2(me, we, ve, columns_b=np.array(picked, dtype=np.int64))
    assert np.array_equal(a, E.sum_rows(me, we)) and b.shape == (len(picked), 4)
    assert E.decode(b).tolist() == sum_want(m[:, picked], v)
    assert np.array_equal(b, on_scalar(lambda: E.sum_rows2(me, we, ve, columns_b=picked)[1]))


def test_columns_b_errors():
    m = F.encode(np.ones((3, 5), dtype=np.uint32))
    c, w = E.encode(rand(5, 10)), E.encode(rand(3, 11))
    for bad in ([1, 1], [2, 1], [5], [-1]):
        with pytest.raises(ValueError, match="ascending and distinct"):
            E.sum_rows2(m, w, w, columns_b=bad)
        with pytest.raises(ValueError, match="ascending and distinct"):
            E.combine_rows2(m, c, c[:len(bad)].copy(), columns_b=bad)
    with pytest.raises(ValueError, match="2 rows for 1 columns"):
        E.combine_rows2(m, c, c[:2].copy(), columns_b=[3])


def test_combine_rows_all_max(each_isa):
    # largest possible lane sums: every value p - 1, many columns
    cols = 70
    m = np.full((4, cols), P - 1, dtype=np.uint32)
    c = np.full((cols, 4), P - 1, dtype=np.uint32)
    assert E.decode(E.combine_rows(F.encode(m), E.encode(c))).tolist() == combine_want(m, c)
    # Montgomery form of p - 1 is not p - 1: also the raw word p - 1 everywhere
    raw = np.full((4, cols), P - 1, dtype=np.uint32)
    rc = np.full((cols, 4), P - 1, dtype=np.uint32)
    assert np.array_equal(E.combine_rows(raw, rc), on_scalar(lambda: E.combine_rows(raw, rc)))


@pytest.mark.parametrize("n", [1, 3, 17, 100])
def test_inverse_paths(each_isa, n):
    x = edge_rand((n, 4), 500 + n)
    x[np.all(x == 0, axis=1)] = [0, 0, 1, 0]
    a = E.encode(x)
    inv = E.inv(a)
    assert (E.decode(E.mul(inv, a)) == [1, 0, 0, 0]).all()
    assert np.array_equal(inv, on_scalar(lambda: E.inv(a)))


def test_new_wrapper_errors():
    a = E.encode(rand(4, 8))
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        E.mul_scalar(a, a)
    m = F.encode(np.ones((3, 4), dtype=np.uint32))
    with pytest.raises(ValueError, match="do not match"):
        E.combine_rows2(m, a, a[:3].copy())
    out = np.empty((3, 4), dtype=np.uint32)
    with pytest.raises(ValueError, match="overlap"):
        E.combine_rows2(m, a, a, out_a=out, out_b=out)


# ---- sum_rows: the rows of a matrix weighted and summed, read row-major ----

def sum_want(m, w):
    """sum_r w[r] * m[r, c] for each column c, in Python integers."""
    return combine_want(np.ascontiguousarray(m.T), w)


# rows around the kernel's blocks of 64 and its two-row folds; columns
# around the 8- and 16-lane chunks (masked last chunk)
@pytest.mark.parametrize("rows, cols", [(0, 3), (1, 1), (2, 5), (63, 8), (64, 16), (65, 17), (130, 143),
                                        (129, 7), (5, 0)])
def test_sum_rows_paths(each_isa, rows, cols):
    m = edge_rand((rows, cols), 7 * rows + cols)
    w, v = edge_rand((rows, 4), rows + 1), edge_rand((rows, 4), rows + 2)
    me, we, ve = F.encode(m), E.encode(w), E.encode(v)
    got = E.sum_rows(me, we)
    assert got.shape == (cols, 4)
    assert E.decode(got).tolist() == sum_want(m, w)
    assert np.array_equal(got, on_scalar(lambda: E.sum_rows(me, we)))
    ga, gb = E.sum_rows2(me, we, ve)
    assert np.array_equal(ga, got) and E.decode(gb).tolist() == sum_want(m, v)
    if rows and cols:   # the transpose of combine_rows
        assert np.array_equal(got, E.combine_rows(np.ascontiguousarray(me.T), we))


def test_sum_rows_all_max(each_isa):
    # the largest sums: every value p - 1 (Montgomery words and raw words)
    rows, cols = 200, 33
    m = np.full((rows, cols), P - 1, dtype=np.uint32)
    w = np.full((rows, 4), P - 1, dtype=np.uint32)
    assert E.decode(E.sum_rows(F.encode(m), E.encode(w))).tolist() == sum_want(m, w)
    assert np.array_equal(E.sum_rows(m, w), on_scalar(lambda: E.sum_rows(m, w)))
    # both weight sets at the bound too (sum_rows2 keeps 16 sums a chunk)
    v = np.full((rows, 4), P - 2, dtype=np.uint32)
    ga, gb = E.sum_rows2(m, w, v)
    sa, sb = on_scalar(lambda: E.sum_rows2(m, w, v))
    assert np.array_equal(ga, sa) and np.array_equal(gb, sb)
    assert E.decode(gb).tolist() == sum_want(F.decode(m), F.decode(v))


def test_sum_rows_errors():
    m = F.encode(np.ones((3, 4), dtype=np.uint32))
    w = E.encode(rand(3, 9))
    with pytest.raises(ValueError, match="do not match"):
        E.sum_rows(m, w[:2].copy())
    with pytest.raises(ValueError, match="do not match"):
        E.sum_rows2(m, w, w[:2].copy())
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        E.sum_rows(m, m[:, :3].copy())
    with pytest.raises(TypeError, match="uint32"):
        E.sum_rows(m.astype(np.int64), w)


@pytest.mark.parametrize("n", [1, 5, 1023, 1024, 1025, 3000])
@pytest.mark.parametrize("z_in", ["extension", "base", "quadratic"])
def test_add_quotient_is_the_array_composition(each_isa, n, z_in):
    """f += (num - c) / (x - z) in one call (blocks of 1024 rows, the
    inverse from base polynomials in x - z0) equals the same quotient from
    whole-array kernels (zk_ext4_inv's generic inverse), across block
    boundaries, also for a z in a subfield (components 1 and 3, or 1 to 3,
    zero: the constant terms then vanish)."""
    rng = np.random.default_rng(n)
    f0, num = (F.encode(rng.integers(0, P, (n, 4))) for _ in range(2))
    x = F.encode(rng.integers(0, P, n))
    c, z = F.encode(rng.integers(0, P, 4)), F.encode(rng.integers(0, P, 4))
    if z_in != "extension":
        z[1] = z[3] = 0
        if z_in == "base":
            z[2] = 0
            one = F.encode(np.array([1], dtype=np.uint32))
            z[0] = x[0]
            while z[0] in x:            # a base z off every x: x - z is never zero
                z[0] = F.add(z[:1], one)[0]
    want = F.add(f0, E.mul(F.sub(num, np.tile(c, (n, 1))), E.inv(F.sub(E.from_base(x), np.tile(z, (n, 1))))))
    got = E.add_quotient(f0.copy(), num, c, x, z)
    assert np.array_equal(got, want)


def test_add_quotient_names_a_vanishing_denominator():
    n = 2000
    rng = np.random.default_rng(1)
    f, num = (F.encode(rng.integers(0, P, (n, 4))) for _ in range(2))
    x = F.encode(rng.integers(0, P, n))
    z = np.array([x[1500], 0, 0, 0], dtype=np.uint32)
    with pytest.raises(ZeroDivisionError, match="row 1500"):
        E.add_quotient(f, num, z, x, z)
    with pytest.raises(ValueError, match="shapes"):
        E.add_quotient(f, num[:-1], z, x, z)
