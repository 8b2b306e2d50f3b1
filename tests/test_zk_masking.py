"""Masked commitments of zk mode (docs/ZK.md 5.1-5.7): salted Merkle
leaves (C on every ISA path, the Python verifier, the reference's trees),
f = t + Z_H r committed on the LDE, its values at z and at a link point,
salted batch openings, and a chained state committed twice from its state
key.  Keys here are fixed test bytes (a stand-in for a store's key)."""
from __future__ import annotations

import contextlib
import hashlib

import numpy as np
import pytest

from zksidecar.prover import field as F
from zksidecar.prover import merkle, ntt, reference, zk_keys
from zksidecar.prover.domain import link_point
from zksidecar.prover.examples import memory
from zksidecar.prover.examples.memory_domains import memory_statement
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.masking import STATE_LABEL, Mask, StateKey, commit_quotient
from zksidecar.prover.merkle import SALT_BYTES, MerkleTree
from zksidecar.prover.native import ffi, lib, u8p, u32p
from zksidecar.prover.params import ProofOptions
from zksidecar.prover.proof import Proof, statement_layouts, statement_trees
from zksidecar.prover.prove import (COSET_SHIFT, SegmentCommitment, barycentric_weights, open_rows,
                                    prove)
from zksidecar.prover.verify import VerificationError, check_openings

KEY = bytes(range(32))               # a fixed test key, not a store's
OTHER_KEY = bytes(range(1, 33))


def _canon_rows(rng, rows, cols):
    return rng.integers(0, F.P, size=(rows, cols), dtype=np.uint32)


def _model_leaf(canonical_row: np.ndarray, salt: bytes = b"") -> bytes:
    """docs/MERKLE.md's leaf, straight from hashlib."""
    return hashlib.sha256(canonical_row.astype("<u4").tobytes() + salt).digest()


# ------------------------------------------------------------ salted leaves --

@pytest.mark.parametrize("cols", [0, 1, 3, 11, 12, 13, 16, 17, 28, 143, 256, 260])
def test_salted_leaves_are_the_model_on_every_path(each_isa, cols):
    """SHA-256(row || salt) on every ISA path, every tail length (the 16-lane
    body lays the salt out after 0..15 leftover words); no salts: the
    unsalted leaf as before."""
    rng = np.random.default_rng(cols)
    canon = _canon_rows(rng, 37, cols)            # 37: two sets of sixteen and a remainder
    mat = F.encode(canon) if cols else canon
    salts = rng.integers(0, 256, size=(37, SALT_BYTES), dtype=np.uint8)
    salted = merkle.hash_rows(mat, salts)
    plain = merkle.hash_rows(mat)
    for r in range(37):
        assert salted[r].tobytes() == _model_leaf(canon[r], salts[r].tobytes())
        assert plain[r].tobytes() == _model_leaf(canon[r])
    assert MerkleTree(mat[:32], salts[:32]).root == reference.Tree.of_rows(
        canon[:32].tolist(), [s.tobytes() for s in salts[:32]]).root


def test_salted_lde_leaves_are_the_lde_rows_salted(each_isa):
    """The fused LDE-and-hash kernel with salts: leaf j is row rev(j) of the
    LDE with salt j."""
    rng = np.random.default_rng(3)
    evals = F.encode(_canon_rows(rng, 64, 19))
    salts = rng.integers(0, 256, size=(128, SALT_BYTES), dtype=np.uint8)
    lde, leaves = merkle.lde_leaves(evals, 1, COSET_SHIFT, salts=salts)
    assert np.array_equal(lde, ntt.lde(evals, 1, COSET_SHIFT))
    np.testing.assert_array_equal(leaves, merkle.hash_rows(ntt.bit_reverse_rows(lde), salts))


def test_salts_of_the_wrong_shape_are_refused():
    mat = F.encode(np.ones((8, 3), dtype=np.uint32))
    with pytest.raises(ValueError, match="one per leaf"):
        merkle.hash_rows(mat, np.zeros((8, 15), dtype=np.uint8))
    with pytest.raises(TypeError, match="salts"):
        merkle.hash_rows(mat, np.zeros((8, 16), dtype=np.int64))
    with pytest.raises(ValueError, match="one per leaf"):
        merkle.lde_leaves(mat, 1, salts=np.zeros((8, 16), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\(h, 3\) coefficients"):
        merkle.lde_leaves(mat, 1, mask=np.zeros((8, 2), dtype=np.uint32))
    with pytest.raises(ValueError, match="h = 9 rows on a trace of N = 8 rows"):
        merkle.lde_leaves(mat, 1, mask=np.zeros((9, 3), dtype=np.uint32))
    with pytest.raises(TypeError, match="mask"):
        merkle.lde_leaves(mat, 1, mask=np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"a coset's values must be \(2\^log_m, 3\)"):
        merkle.lde_leaves(mat, 1, mask=np.zeros((2, 3), dtype=np.uint32),
                          cosets=[(2, 5, np.zeros((8, 3), dtype=np.uint32))])
    with pytest.raises(ValueError, match="log_m"):
        merkle.lde_leaves(mat, 1, cosets=[(28, 5, np.zeros((4, 3), dtype=np.uint32))])
    with pytest.raises(ValueError, match="at most 4 small cosets"):
        merkle.lde_leaves(mat, 1, cosets=[(2, 5, np.zeros((4, 3), dtype=np.uint32))] * 5)


# ------------------------------------------------------------ f = t + Z_H r --

N, LB, H_MASK, WIDTH = 32, 1, 9, 3


def _masked(seed: int = 0, key: bytes = KEY, label: str = "main"):
    rng = np.random.default_rng(seed)
    canon = _canon_rows(rng, N, WIDTH)
    mask = Mask.derive(key, label, WIDTH, H_MASK, (N << LB).bit_length() - 1)
    return canon, mask, SegmentCommitment.commit(F.encode(canon), LB, mask)


def test_mask_derivation_is_the_keys_stream():
    """r and the salts are zk_keys' expansion of the key under the mask's
    labels: deterministic, and another key or label gives other ones."""
    mask = Mask.derive(KEY, "main", WIDTH, H_MASK, 6)
    want = zk_keys.field_elements(KEY, ["mask", "main"], H_MASK * WIDTH).reshape(H_MASK, WIDTH)
    np.testing.assert_array_equal(F.decode(mask.coeffs), want)
    assert mask.salts.tobytes() == zk_keys.expand(KEY, ["salts", "main"], 16 * 64)
    again = Mask.derive(KEY, "main", WIDTH, H_MASK, 6)
    assert np.array_equal(again.coeffs, mask.coeffs) and np.array_equal(again.salts, mask.salts)
    for other in (Mask.derive(OTHER_KEY, "main", WIDTH, H_MASK, 6), Mask.derive(KEY, "aux", WIDTH, H_MASK, 6)):
        assert not np.array_equal(other.coeffs, mask.coeffs)
        assert not np.array_equal(other.salts, mask.salts)
    table = F.encode(_canon_rows(np.random.default_rng(3), 32, WIDTH))
    assert Mask.for_state(StateKey.of(KEY, table), WIDTH, H_MASK, 6).salts.tobytes() == \
        Mask.derive(KEY, [STATE_LABEL, zk_keys.table_digest(table)], WIDTH, H_MASK, 6).salts.tobytes()
    with pytest.raises(ValueError, match="label"):
        Mask.derive(KEY, "", WIDTH, H_MASK, 6)


def test_masked_commitment_is_t_plus_zh_r(each_isa):
    """The committed LDE is f = t + Z_H r: its coefficients are t's with r
    subtracted from the first h and r at N .. N + h - 1 (degree N + h - 1),
    f = t on H, and LDE and root equal the pure-Python reference's masked
    column and salted tree."""
    canon, mask, com = _masked()
    r = F.decode(mask.coeffs)
    coeffs = F.decode(ntt.coset_intt(np.ascontiguousarray(com.lde), COSET_SHIFT))
    t = F.decode(ntt.intt(F.encode(canon)))
    assert not coeffs[N + H_MASK:].any()
    np.testing.assert_array_equal(coeffs[N:N + H_MASK], r)
    np.testing.assert_array_equal(coeffs[:H_MASK], (t[:H_MASK].astype(np.int64) - r) % F.P)
    np.testing.assert_array_equal(coeffs[H_MASK:N], t[H_MASK:N])
    # f on H: fold the coefficients mod X^N - 1 and evaluate there
    folded = (coeffs[:N].astype(np.int64) + coeffs[N:].astype(np.int64)) % F.P
    np.testing.assert_array_equal(F.decode(ntt.ntt(F.encode(folded.astype(np.uint32)))), canon)
    ref_lde = [reference.lde_column(canon[:, c].tolist(), LB, r[:, c].tolist()) for c in range(WIDTH)]
    np.testing.assert_array_equal(F.decode(com.lde), np.array(ref_lde, dtype=np.uint32).T)
    ref_tree = reference.Tree(reference.reversed_row_digests(ref_lde, [s.tobytes() for s in mask.salts]))
    assert com.root == ref_tree.root
    assert com.root != SegmentCommitment.commit(F.encode(canon), LB).root


def _masked_definition(t_canon: np.ndarray, r_canon: np.ndarray, lb: int, shift: int, from_coeffs: bool):
    """f = t + (X^N - 1) r by its definition, canonical: its N + h
    coefficients (t's from its values by the inverse NTT, unless given as
    coefficients) and its values on D = shift <w_M>, the coefficients
    padded to M and transformed there by one size-M coset NTT (not the LDE)."""
    n, h = t_canon.shape[0], r_canon.shape[0]
    t = t_canon.astype(np.int64) if from_coeffs else F.decode(ntt.intt(F.encode(t_canon))).astype(np.int64)
    f = np.zeros((n << lb, t_canon.shape[1]), dtype=np.int64)
    f[:n] = t
    f[:h] -= r_canon
    f[n:n + h] += r_canon
    f %= F.P
    values = F.decode(ntt.coset_ntt(F.encode(f.astype(np.uint32)), shift))
    return f[:n + h].astype(np.uint32), values


def _values_on_coset(coeffs: np.ndarray, log_m: int, shift: int) -> np.ndarray:
    """The polynomials with canonical coefficients `coeffs` (one a column)
    at shift w_m^i, i < 2^log_m, by Horner at each point: the definition
    of a small coset's values, canonical."""
    m = 1 << log_m
    w = F.two_adic_generator(log_m)
    points = np.array([shift * pow(w, i, F.P) % F.P for i in range(m)], dtype=np.int64)[:, None]
    acc = np.zeros((m, coeffs.shape[1]), dtype=np.int64)
    for row in coeffs[::-1].astype(np.int64):
        acc = (acc * points + row) % F.P
    return acc.astype(np.uint32)


#: small cosets to evaluate f on beside the LDE: (log_m, shift)
_COSETS = [(3, COSET_SHIFT ** 2 % F.P), (0, 7), (6, 12345), (4, 3)]


@pytest.mark.parametrize("log_n, cols, lb, h, from_coeffs, budget, cosets", [
    (5, 1, 1, 9, False, 0, 2),          # one column: its own spread
    (6, 3, 1, 64, False, 0, 4),         # h = N, the most the kernel takes (= M - N at blowup 2)
    (6, 19, 2, 23, False, 256, 3),      # blowup 4; a tiny budget: DIF passes, blocks, DIT passes
    (7, 16, 1, 5, True, 0, 1),          # from coefficients
    (6, 143, 1, 40, False, 4096, 2),    # the order book's width, a vector and a tail
    (5, 8, 3, 0, False, 0, 2),          # h = 0: the cosets alone
    (5, 2, 1, 7, False, 0, 4),          # narrow matrices: column by column (ntt.c, narrow)
    (6, 4, 2, 30, False, 0, 1),
    (5, 12, 1, 9, True, 0, 3),
    (6, 24, 1, 11, False, 0, 0),        # a mask and no coset
    # the spread fused with DIT stages B and 2B (ntt.c, spread_dit2): quads
    # holding a masked coefficient take the unfused steps, the rest one
    # spread_quad each: blocks of 4 rows (b = 4), a vector and a tail, half
    # a vector on AVX-512 (8 columns), fewer columns than a vector (8 rows)
    (6, 24, 1, 11, False, 768, 1),
    (6, 143, 1, 40, False, 0, 2),
    (6, 8, 2, 37, False, 0, 1),
    (3, 3, 2, 5, False, 0, 1),
])
def test_masked_lde_kernel_is_the_definition(each_isa, log_n, cols, lb, h, from_coeffs, budget, cosets):
    """The masked LDE (csrc/field/ntt.c, zk_lde_visit_masked: (c_b - 1) r
    added to coset b's first h coefficients inside the transform) on random
    t and r: f's values on D and on each small coset asked for (folded
    from its N + h coefficients on the way; a coset larger than N + h, of
    one point, and of a shift m does not divide) are the definition's, and
    the leaves are the LDE's rows hashed, on every ISA path and pass
    layout."""
    rng = np.random.default_rng(log_n * 1000 + cols + h)
    n = 1 << log_n
    t_canon, r_canon = _canon_rows(rng, n, cols), _canon_rows(rng, h, cols)
    salts = rng.integers(0, 256, size=(n << lb, SALT_BYTES), dtype=np.uint8)
    outs = [(log_m, shift, np.full((1 << log_m, cols), 99, dtype=np.uint32)) for log_m, shift in _COSETS[:cosets]]
    with ntt.cache_budget(budget) if budget else contextlib.nullcontext():
        lde, leaves = merkle.lde_leaves(F.encode(t_canon), lb, COSET_SHIFT, from_coeffs, salts,
                                        mask=F.encode(r_canon), cosets=outs)
    want_coeffs, want_values = _masked_definition(t_canon, r_canon, lb, COSET_SHIFT, from_coeffs)
    for log_m, shift, values in outs:
        np.testing.assert_array_equal(F.decode(values), _values_on_coset(want_coeffs, log_m, shift))
    np.testing.assert_array_equal(F.decode(lde), want_values)
    np.testing.assert_array_equal(leaves, merkle.hash_rows(ntt.bit_reverse_rows(lde), salts))
    if h == 0:      # no mask: the plain LDE, the cosets evaluated on the way
        assert np.array_equal(lde, merkle.lde_leaves(F.encode(t_canon), lb, COSET_SHIFT, from_coeffs)[0])


@pytest.mark.parametrize("log_n, cols, h, log_m, budget", [
    (6, 19, 23, 3, 0), (6, 37, 9, 2, 256), (5, 3, 7, 4, 0), (6, 17, 11, 6, 0), (7, 33, 5, 1, 512)])
def test_masked_lde_cosets_of_one_size(each_isa, log_n, cols, h, log_m, budget):
    """Two to four small cosets of ONE size (production asks for two: D''
    and w_N D''), which the spread folds in one weighted sum of each
    block's rows (zk_fp_sum_rows_add with 2, 3 and 4 weight sets), on
    every ISA path, widths around the vector loops, a narrow matrix and
    tiny budgets: each coset's values are the definition's."""
    rng = np.random.default_rng(log_n * 100 + cols)
    n = 1 << log_n
    t_canon, r_canon = _canon_rows(rng, n, cols), _canon_rows(rng, h, cols)
    want_coeffs, _ = _masked_definition(t_canon, r_canon, 1, COSET_SHIFT, False)
    for count in (2, 3, 4):
        shifts = [COSET_SHIFT ** 2 % F.P, 7, 12345, 3][:count]
        outs = [(log_m, s, np.full((1 << log_m, cols), 99, dtype=np.uint32)) for s in shifts]
        with ntt.cache_budget(budget) if budget else contextlib.nullcontext():
            merkle.lde_leaves(F.encode(t_canon), 1, COSET_SHIFT, False, None, mask=F.encode(r_canon), cosets=outs)
        for _, shift, values in outs:
            np.testing.assert_array_equal(F.decode(values), _values_on_coset(want_coeffs, log_m, shift))


@pytest.mark.parametrize("log_n", [1, 2, 3, 4, 7])
def test_masked_lde_minimum_shapes(each_isa, log_n):
    """The smallest traces (N = 2 .. 16) and one of 128 rows, at widths
    1, 2, 9, 16 and 17, with h = 1 and h = N (the most the kernel takes),
    blowup 4, at the default and a tiny cache budget, cosets of one point,
    of N points, larger than f's degree and of N/2 points: the LDE and
    every coset are the definition's."""
    rng = np.random.default_rng(log_n)
    n = 1 << log_n
    cosets = ((0, 5), (log_n, 7), (log_n + 2, 11), (log_n - 1, 13))
    for cols in (1, 2, 9, 16, 17):
        for h in (1, n):
            t_canon, r_canon = _canon_rows(rng, n, cols), _canon_rows(rng, h, cols)
            want_coeffs, want_values = _masked_definition(t_canon, r_canon, 2, COSET_SHIFT, False)
            for budget in (0, 64):
                outs = [(lm, s, np.full((1 << lm, cols), 99, dtype=np.uint32)) for lm, s in cosets]
                with ntt.cache_budget(budget) if budget else contextlib.nullcontext():
                    lde, _ = merkle.lde_leaves(F.encode(t_canon), 2, COSET_SHIFT, False, None,
                                               mask=F.encode(r_canon), cosets=outs)
                np.testing.assert_array_equal(F.decode(lde), want_values)
                for lm, s, values in outs:
                    np.testing.assert_array_equal(F.decode(values), _values_on_coset(want_coeffs, lm, s))


def test_a_mask_of_more_rows_than_the_trace_is_refused():
    """h > N is refused by the Python entry points and by the kernel itself
    (zk_lde_visit_masked): the spread masks only t's N coefficients'
    copies, so f's LDE would be wrong there even where N + h fits the LDE
    (N = 16, h = 17, blowup 4).  h = N is taken."""
    rng = np.random.default_rng(5)
    t = F.encode(_canon_rows(rng, 16, 3))
    with pytest.raises(ValueError, match="h = 17 rows on a trace of N = 16 rows"):
        merkle.lde_leaves(t, 2, COSET_SHIFT, mask=F.encode(_canon_rows(rng, 17, 3)))
    with pytest.raises(ValueError, match="h = 20 rows on a trace of N = 16 rows"):
        Mask.derive(KEY, "main", 3, 20, 6).commit_lde(t, 2, COSET_SHIFT)
    Mask.derive(KEY, "main", 3, 16, 6).commit_lde(t, 2, COSET_SHIFT)
    mask = F.encode(_canon_rows(rng, 17, 3))
    lde, leaves = np.empty((64, 3), dtype=np.uint32), np.empty((64, merkle.DIGEST_BYTES), dtype=np.uint8)
    for h, want in ((17, -1), (16, 0)):
        assert lib.zk_merkle_lde_leaves(u32p(lde), u8p(leaves), u32p(t), 16, 3, 2, ntt.shift_mont(COSET_SHIFT), 0,
                                        ffi.NULL, u32p(mask), h, ffi.NULL, 0) == want


def test_coset_values_that_overlap_the_input_are_refused():
    """The kernel zeroes each coset's fold before it reads the trace and
    the mask: values sharing their memory are refused."""
    rng = np.random.default_rng(6)
    t, r = F.encode(_canon_rows(rng, 16, 3)), F.encode(_canon_rows(rng, 4, 3))
    for values in (t[:4], r, t[8:12]):
        with pytest.raises(ValueError, match="share memory"):
            merkle.lde_leaves(t, 1, COSET_SHIFT, mask=r, cosets=[(2, 7, values)])
    other = np.zeros((4, 3), dtype=np.uint32)
    with pytest.raises(ValueError, match="coset 1's values share memory"):
        merkle.lde_leaves(t, 1, COSET_SHIFT, mask=r, cosets=[(2, 7, other), (2, 11, other)])


def test_folded_cosets_are_the_commitments():
    """A commitment whose LDE evaluated f on small cosets gives there what
    SegmentCommitment.coset_values computes from its coefficients (its own
    inverse transform, ntt.coset_values) for one made without them."""
    canon, mask, com = _masked(4)
    cosets = [(4, COSET_SHIFT ** 2 % F.P), (4, 11)]
    folded = SegmentCommitment.commit(F.encode(canon), LB, mask, cosets)
    assert folded.root == com.root and np.array_equal(folded.lde, com.lde)
    assert not com.cosets and set(folded.cosets) == set(cosets)
    asked = cosets + [(2, 11)]          # the last one not folded: from the coefficients
    outs, want = ([np.empty((1 << log_m, WIDTH), dtype=np.uint32) for log_m, _ in asked] for _ in range(2))
    folded.coset_values(asked, outs)
    com.coset_values(asked, want)
    for (log_m, shift), out, w in zip(asked, outs, want):
        np.testing.assert_array_equal(out, w)
        np.testing.assert_array_equal(out, ntt.coset_values(com.coefficients(), log_m, shift))


def test_a_mask_that_does_not_fit_the_lde_is_refused():
    trace = F.encode(np.ones((8, 2), dtype=np.uint32))
    with pytest.raises(ValueError, match="h = 9 rows on a trace of N = 8 rows"):
        Mask.derive(KEY, "main", 2, 9, 4).commit_lde(trace, 1, COSET_SHIFT)
    with pytest.raises(ValueError, match="columns"):
        Mask.derive(KEY, "main", 3, 4, 4).commit_lde(trace, 1, COSET_SHIFT)


def test_values_at_z_are_the_masked_polynomials():
    """The prover's path (barycentric weights on the trace, then the mask's
    (z^N - 1) r(z)) gives f(z) and f(w z), as evaluating f's coefficients
    directly does; the link at the point the root selects likewise."""
    canon, mask, com = _masked(1)
    r = F.decode(mask.coeffs)
    coeffs = [reference.masked_coefficients(canon[:, c].tolist(), r[:, c].tolist()) for c in range(WIDTH)]
    z = Ext(123456789, 987654321, 55555, 7)
    z_next = z * F.two_adic_generator(N.bit_length() - 1)
    u = barycentric_weights(z, N)
    at_z, at_next = com.values_at(z, u, z_next, np.roll(u, 1, axis=0))
    assert [Ext.from_mont(v) for v in at_z] == [reference.horner(c, z) for c in coeffs]
    assert [Ext.from_mont(v) for v in at_next] == [reference.horner(c, z_next) for c in coeffs]
    only_z, none = com.values_at(z, u)
    assert none is None and np.array_equal(only_z, at_z)
    link = com.link()
    assert link.z == link_point(com.root)
    assert link.values == [reference.horner(c, link.z) for c in coeffs]
    # unmasked, the same path is the interpolant's value, as before
    plain = SegmentCommitment.commit(F.encode(canon), LB)
    assert [Ext.from_mont(v) for v in plain.values_at(z, u)[0]] == \
        [reference.horner(reference.intt(canon[:, c].tolist()), z) for c in range(WIDTH)]


# ------------------------------------------------------------ openings --

def _salted_statement_commitments():
    """Every matrix of the two-domain memory statement (cells 2^4, steps
    2^3: shared trees with a shorter domain's matrices injected) committed
    masked and salted from random tables, each round's shared tree built
    from the salted leaves."""
    st = memory_statement(16, 8)
    layouts, trees = statement_layouts(st), statement_trees(st)
    heights = {m.name: dom.log_length for dom, mats in zip(st.domains, layouts) for m in mats}
    rng = np.random.default_rng(7)
    coms, leaves = {}, {}
    for mats in layouts:
        for m in mats:
            log_n = heights[m.name]
            mask = Mask.derive(KEY, m.name, m.width, 3, log_n + LB)
            trace = F.encode(_canon_rows(rng, 1 << log_n, m.width))
            lde, leaves[m.name] = mask.commit_lde(trace, LB, COSET_SHIFT)
            coms[m.name] = (trace, lde, mask)
    out = {}
    for t in trees:
        tree = MerkleTree.shared([leaves[name] for _, name in t.matrices])
        for _, name in t.matrices:
            out[name] = SegmentCommitment(coms[name][0], coms[name][1], tree, coms[name][2])
    log_ms = [dom.log_length + LB for dom in st.domains]
    return st, layouts, trees, out, log_ms


def test_salted_openings_verify_and_an_altered_salt_fails():
    st, layouts, trees, coms, log_ms = _salted_statement_commitments()
    tall = st.tall
    positions = np.array([3, 17, 18, 5, 31, 17, 0], dtype=np.int64)
    rows, salts, proofs = open_rows(layouts, trees, coms, positions, log_ms, tall)
    assert set(salts) == set(rows)
    roots = {t.name: coms[t.matrices[0][1]].root for t in trees}
    opened = check_openings(layouts, trees, roots, positions, log_ms, tall, rows, salts, proofs)
    assert set(opened) == set(rows)
    # an altered salt of a tall matrix, then of a shorter one joining a shared tree
    short = next(m.name for d, mats in enumerate(layouts) if log_ms[d] < log_ms[tall] for m in mats
                 if not (m.exported or m.external))
    for name in (layouts[tall][-1].name, short):
        bad = {k: v.copy() for k, v in salts.items()}
        bad[name][0, 5] ^= 1
        with pytest.raises(VerificationError, match="do not match the commitment"):
            check_openings(layouts, trees, roots, positions, log_ms, tall, rows, bad, proofs)
    # salts left out (the rows hashed unsalted), or of another shape, or for no matrix
    missing = {k: v for k, v in salts.items() if k != short}
    with pytest.raises(VerificationError, match="do not match"):
        check_openings(layouts, trees, roots, positions, log_ms, tall, rows, missing, proofs)
    with pytest.raises(VerificationError, match="salts uint8"):
        check_openings(layouts, trees, roots, positions, log_ms, tall, rows,
                       dict(salts, **{short: salts[short][:, :8]}), proofs)
    with pytest.raises(VerificationError, match="does not have"):
        check_openings(layouts, trees, roots, positions, log_ms, tall, rows, dict(salts, nowhere=salts[short]),
                       proofs)


def test_salted_openings_in_pure_python():
    """The same openings checked with hashlib alone: each opened row of a
    chained segment's own tree, hashed with its salt, walks its path to the
    root (merkle.verify_path_py); an altered salt does not."""
    st, layouts, trees, coms, log_ms = _salted_statement_commitments()
    own = next(t for t in trees if len(t.matrices) == 1 and t.round == "main")
    (d, name), = own.matrices
    com = coms[name]
    positions = np.array([1, 9, 30], dtype=np.int64)
    rows, salts, _ = open_rows(layouts, trees, coms, positions, log_ms, st.tall)
    leaves = sorted(set((positions >> (log_ms[st.tall] - log_ms[d])).tolist()))
    paths = com.tree.open(leaves)
    for k, j in enumerate(leaves):
        leaf = reference.hash_row(rows[name][k].tolist(), salts[name][k].tobytes())
        assert merkle.verify_path_py(com.root, leaf, j, paths[k])
        altered = bytearray(salts[name][k].tobytes())
        altered[15] ^= 0x80
        assert not merkle.verify_path_py(com.root, reference.hash_row(rows[name][k].tolist(), bytes(altered)),
                                         j, paths[k])


def test_a_transparent_proof_with_salts_has_no_encoding():
    """Salts are zk mode's (format 5): a transparent proof carrying them
    refuses to encode rather than drop them."""
    proof = Proof.__new__(Proof)
    proof.options = ProofOptions()
    proof.row_salts = {"main": np.zeros((1, 16), dtype=np.uint8)}
    proof.fri_salts = []
    with pytest.raises(ValueError, match="no salted openings"):
        proof.to_bytes(memory_statement(16, 8))


# ------------------------------------------------------------ chained state --

def _state_digest(table: np.ndarray) -> bytes:
    return hashlib.sha256(F.decode(table).astype("<u4").tobytes()).digest()


def test_chained_state_commits_the_same_root_from_sigma():
    """The memory example's chain: batch 1 exports `final` masked with the
    state key of its table; batch 2 rebuilds `init` from the cells it
    starts from and the same state key and gets the same root and link.
    Another batch id or store key gives another root; so does no mask."""
    n, h = 16, 5
    chain = zk_keys.chain_digest(mode="zk", ops_rows=n, capacity=n, log_blowup=LB, queries=20, h=h,
                                 h_q=h, fri_folds=[2], fri_final_degree=4, grinding_bits=0,
                                 proof_version=4, batch_file_version=0, air_version=1,
                                 key_stream_version=zk_keys.KEY_STREAM_VERSION)
    log_m = (n << LB).bit_length() - 1
    first = memory.run(np.zeros(n, dtype=np.int64), memory.random_ops(n, 12, seed=1))
    post = first.traces["final"]
    sigma = zk_keys.state_key(KEY, chain, "mem", 1, _state_digest(post))
    exported = SegmentCommitment.commit(post, LB, Mask.for_state(StateKey.of(sigma, post), post.shape[1], h, log_m))
    link = exported.link()

    second = memory.run(first.final_values, memory.random_ops(n, 12, seed=2))
    pre = second.traces["init"]                           # built from the cells again
    assert pre is not post and np.array_equal(pre, post)
    sigma_again = zk_keys.state_key(KEY, chain, "mem", 1, _state_digest(pre))
    external = SegmentCommitment.commit(pre, LB, Mask.for_state(StateKey.of(sigma_again, pre), pre.shape[1], h,
                                                                log_m))
    assert external.root == exported.root
    assert external.link() == link
    assert np.array_equal(external.lde, exported.lde)

    r = F.decode(external.mask.coeffs)
    canon = F.decode(pre)
    assert link.values == [reference.horner(reference.masked_coefficients(canon[:, c].tolist(),
                                                                          r[:, c].tolist()), link.z)
                           for c in range(pre.shape[1])]
    for key, b in ((KEY, 2), (OTHER_KEY, 1)):
        other = zk_keys.state_key(key, chain, "mem", b, _state_digest(pre))
        assert SegmentCommitment.commit(pre, LB, Mask.for_state(StateKey.of(other, pre), pre.shape[1], h,
                                                                log_m)).root != exported.root
    assert SegmentCommitment.commit(pre, LB).root != exported.root

    # a masked pre-state is proven in zk mode only (tests/test_zk_mode.py)
    air = memory.MemoryAir(n)
    opts = ProofOptions(log_blowup=LB, num_queries=8, grinding_bits=0, fri_folding_factor=2,
                        fri_max_final_degree=4)
    with pytest.raises(ValueError, match="proven in zk mode"):
        prove(air, second.traces, opts, external={"init": (external, link)})


def test_merkle_md_salted_example():
    """docs/MERKLE.md's salted example leaf."""
    salt = bytes(range(16))
    want = hashlib.sha256(bytes.fromhex("0100000000000078") + salt).digest()
    mat = F.encode(np.array([[1, F.P - 1]], dtype=np.uint32))
    assert merkle.hash_rows(mat, np.frombuffer(salt, dtype=np.uint8).reshape(1, 16))[0].tobytes() == want
    assert reference.hash_row([1, F.P - 1], salt) == want


@pytest.mark.parametrize("log_m, cols, degree", [
    (6, 8, 64),        # every row: r of K rows, every quad masked
    (7, 16, 70),       # a few rows over K, the quotient's usual shape
    (6, 20, 32),       # degree <= K: no r, the plain extension
    (5, 4, 17),        # narrow: column by column
])
def test_quotient_commitment_is_the_coset_transform_hashed(each_isa, log_m, cols, degree):
    """masking.commit_quotient (zk mode's quotient: t + (X^K - 1) r through
    the masked LDE from coefficients) gives the words of the transform of
    size m of the coefficients and of their rows hashed in bit-reversed
    order, salted, that it replaces."""
    rng = np.random.default_rng(log_m * 1000 + degree)
    m = 1 << log_m
    chunks = np.zeros((m, cols), dtype=np.uint32)
    chunks[:degree] = F.encode(_canon_rows(rng, degree, cols))
    salts = rng.integers(0, 256, (m, SALT_BYTES), dtype=np.uint8)
    lde, leaves = commit_quotient(chunks, degree, COSET_SHIFT, salts)
    expected = ntt.coset_ntt(chunks, COSET_SHIFT)
    assert np.array_equal(lde, expected)
    assert np.array_equal(leaves, merkle.hash_rows(ntt.bit_reverse_rows(expected), salts))


def test_a_quotient_degree_over_its_rows_is_refused():
    with pytest.raises(ValueError, match="must hold the degree"):
        commit_quotient(np.zeros((8, 4), dtype=np.uint32), 9, COSET_SHIFT, np.zeros((8, SALT_BYTES), np.uint8))
