"""Poseidon2 over BabyBear, width 16: the plain-Python definition
(prover/poseidon2_reference.py) against the instance's published vectors,
and the C kernel (prover/poseidon2.py) against the definition on every
instruction-set path this CPU runs."""
from __future__ import annotations

import numpy as np
import pytest

from zksidecar.prover import field, native, poseidon2
from zksidecar.prover import poseidon2_reference as ref
from zksidecar.prover.native import lib

P = field.P

# The published vectors of the Poseidon2 authors' BabyBear width-16 instance:
# its permutation of (0, 1, ..., 15), and of the all-zero state and of a
# random state (the two further vectors public test suites give for it).
# The other widely used BabyBear width-16 instance has other round
# constants and would fail all three.
PUBLISHED = {
    "range": (list(range(16)),
              [896560466, 771677727, 128113032, 1378976435, 160019712, 1452738514, 682850273,
               223500421, 501450187, 1804685789, 1671399593, 1788755219, 1736880027, 1352180784,
               1928489698, 1128802977]),
    "zeros": ([0] * 16,
              [1337856655, 1843094405, 328115114, 964209316, 1365212758, 1431554563, 210126733,
               1214932203, 1929553766, 1647595522, 1496863878, 324695999, 1569728319, 1634598391,
               597968641, 679989771]),
    "random": ([1179785652, 1291567559, 66272299, 471640172, 653876821, 478855335, 871063984,
                540251327, 1506944720, 1403776782, 770420443, 126472305, 1535928603, 1017977016,
                818646757, 359411429],
               [1736862924, 1950079822, 952072292, 1965704005, 236226362, 1113998185, 1624488077,
                391891139, 1194078311, 1040746778, 1898067001, 774167026, 193702242, 859952892,
                732204701, 1744970965]),
}


def c_permute(canonical) -> np.ndarray:
    return field.decode(poseidon2.permute(field.encode(np.asarray(canonical, dtype=np.uint32))))


def c_leaf(canonical) -> np.ndarray:
    return field.decode(poseidon2.leaf(field.encode(np.asarray(canonical, dtype=np.uint32))))


def random_states(n: int, seed: int) -> np.ndarray:
    states = np.random.default_rng(seed).integers(0, P, (n, 16), dtype=np.uint32)
    if n >= 2:  # the edges of the field in every position
        states[0], states[1] = 0, P - 1
    return states


@pytest.mark.parametrize("name", PUBLISHED)
def test_the_definition_gives_the_published_vectors(name):
    state, expected = PUBLISHED[name]
    assert ref.permute(state) == expected


@pytest.mark.parametrize("name", PUBLISHED)
def test_the_kernel_gives_the_published_vectors_on_every_isa(name):
    state, expected = PUBLISHED[name]
    for isa, got in native.on_each_isa(lambda: c_permute([state] * 3)).items():
        assert got.tolist() == [expected] * 3, f"{isa} path"


def test_the_kernel_constants_are_the_definitions():
    assert [list(row) for row in lib.zk_poseidon2_full_rc] == [list(r) for r in ref.FULL_ROUND_CONSTANTS]
    assert list(lib.zk_poseidon2_partial_rc) == list(ref.PARTIAL_ROUND_CONSTANTS)
    assert list(lib.zk_poseidon2_internal_diag) == list(ref.INTERNAL_DIAGONAL)
    assert (lib.ZK_POSEIDON2_FULL_ROUNDS, lib.ZK_POSEIDON2_PARTIAL_ROUNDS) == (ref.FULL_ROUNDS,
                                                                                ref.PARTIAL_ROUNDS)
    assert len(ref.FULL_ROUND_CONSTANTS) == 8 and all(len(r) == 16 for r in ref.FULL_ROUND_CONSTANTS)
    assert all(0 <= c < P for r in ref.FULL_ROUND_CONSTANTS for c in r)
    assert all(0 <= c < P for c in ref.PARTIAL_ROUND_CONSTANTS + ref.INTERNAL_DIAGONAL)


# 37 = 2 x 16 + 5 = 4 x 8 + 5: whole blocks and a short last block on both
# vector widths.
def test_kernel_equals_definition_on_random_states_on_every_isa():
    states = random_states(37, 1)
    expected = [ref.permute(s) for s in states.tolist()]
    expected_leaves = [ref.leaf(s) for s in states.tolist()]
    for isa, (got, leaves) in native.on_each_isa(lambda: (c_permute(states), c_leaf(states))).items():
        assert got.tolist() == expected, f"{isa} path"
        assert leaves.tolist() == expected_leaves, f"{isa} path"


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 15, 16, 17, 100])
def test_every_count_gives_the_same_states_on_every_isa(n):
    """Block and tail boundaries of each path; a block's spare lanes never
    reach the output."""
    states = random_states(n, n)
    results = native.on_each_isa(lambda: (c_permute(states), c_leaf(states)))
    scalar = results["scalar"]
    assert scalar[0].shape == (n, 16) and scalar[1].shape == (n, 8)
    for isa, (perm, leaves) in results.items():
        np.testing.assert_array_equal(perm, scalar[0], err_msg=f"{isa} path")
        np.testing.assert_array_equal(leaves, scalar[1], err_msg=f"{isa} path")
    if n:
        assert scalar[0][-1].tolist() == ref.permute(states[-1].tolist())


def test_the_leaf_feeds_the_input_forward():
    """leaf(x) = pi(x)[0..8) + x[0..8): never the truncated permutation
    where x[0..8) is not zero, and equal to it where it is."""
    states = random_states(20, 2)
    states[2, :8] = 0
    perm, leaves = c_permute(states), c_leaf(states)
    np.testing.assert_array_equal(leaves, (perm[:, :8].astype(np.uint64) + states[:, :8]) % P)
    differs = (leaves != perm[:, :8]).any(axis=1)
    assert differs.tolist() == [bool(s[:8].any()) for s in states]
    assert ref.leaf(PUBLISHED["range"][0]) != PUBLISHED["range"][1][:8]


def test_the_leaf_depends_on_every_input_element():
    base = random_states(1, 3)[0]
    moved = np.repeat(base[None, :], 16, axis=0)
    moved[np.arange(16), np.arange(16)] = (moved[np.arange(16), np.arange(16)].astype(np.uint64) + 1) % P
    leaves = c_leaf(np.vstack([base[None, :], moved]))
    assert len({tuple(row) for row in leaves.tolist()}) == 17


def test_the_external_layer_in_block_form_is_the_matrix():
    me = ref.external_matrix()
    for q in range(4):  # circ(2 M4, M4, M4, M4)
        for q2 in range(4):
            block = [row[4 * q2: 4 * q2 + 4] for row in me[4 * q: 4 * q + 4]]
            assert block == [[(2 if q == q2 else 1) * m for m in r] for r in ref.M4]
    unit = [[int(i == j) for i in range(16)] for j in range(16)]
    columns = [ref.external_layer(e) for e in unit]
    assert [[columns[c][r] for c in range(16)] for r in range(16)] == me
    for x in random_states(10, 4).tolist():
        assert ref.external_layer(x) == ref.matvec(me, x)


def test_the_internal_layer_is_ones_plus_the_diagonal():
    mi = ref.internal_matrix()
    assert all(mi[r][c] == 1 for r in range(16) for c in range(16) if r != c)
    assert [mi[i][i] - 1 for i in range(16)] == list(ref.INTERNAL_DIAGONAL)
    for x in random_states(5, 5).tolist():
        assert ref.internal_layer(x) == ref.matvec(mi, x)


def test_permute_in_place():
    states = field.encode(random_states(21, 6))
    expected = poseidon2.permute(states)
    assert poseidon2.permute(states, out=states) is states
    np.testing.assert_array_equal(states, expected)


# ----------------------------------------------------------- bad input --

def test_wrong_arrays_are_refused_with_their_fault():
    good = np.zeros((4, 16), dtype=np.uint32)
    with pytest.raises(TypeError, match="uint32"):
        poseidon2.permute(good.astype(np.int64))
    with pytest.raises(TypeError, match="numpy uint32 array"):
        poseidon2.leaf(good.tolist())
    for shape in [(4, 15), (64,), (4, 16, 1), (4, 17)]:
        with pytest.raises(ValueError, match=r"shape \(n, 16\)"):
            poseidon2.permute(np.zeros(shape, dtype=np.uint32))
        with pytest.raises(ValueError, match=r"shape \(n, 16\)"):
            poseidon2.leaf(np.zeros(shape, dtype=np.uint32))
    with pytest.raises(ValueError, match="C-contiguous"):
        poseidon2.permute(np.zeros((4, 32), dtype=np.uint32)[:, ::2])
    with pytest.raises(ValueError, match="out has shape"):
        poseidon2.permute(good, out=np.zeros((4, 8), dtype=np.uint32))
    with pytest.raises(ValueError, match="overlap"):
        big = np.zeros((5, 16), dtype=np.uint32)
        poseidon2.permute(big[:4], out=big[1:])


@pytest.mark.parametrize("word", [P, P + 1, 2**32 - 1])
def test_unreduced_words_are_named_and_nothing_is_written(word):
    states = field.encode(random_states(40, 7))
    states[33, 9] = word
    out = np.full((40, 16), 7, dtype=np.uint32)
    for isa in native.supported_isas():
        with native.using_isa(isa):
            with pytest.raises(ValueError, match=rf"state 33, element 9: {word} is not a field element"):
                poseidon2.permute(states, out=out)
            with pytest.raises(ValueError, match="state 33, element 9"):
                poseidon2.leaf(states)
    assert (out == 7).all()


def test_the_definition_refuses_bad_states():
    with pytest.raises(ValueError, match="16 elements, got 15"):
        ref.permute(list(range(15)))
    with pytest.raises(ValueError, match=f"element 3 = {P} is not a canonical field element"):
        ref.permute([0, 0, 0, P] + [0] * 12)
    with pytest.raises(ValueError, match="element 0 = -1"):
        ref.leaf([-1] + [0] * 15)
    with pytest.raises(TypeError, match="element 1 is float"):
        ref.permute([0, 1.0] + [0] * 14)
