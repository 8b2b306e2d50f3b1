"""Merkle trees against a pure-Python model of docs/MERKLE.md (leaves by
hashlib, nodes by the compression function of prover/sha256_reference.py),
on every instruction-set path, plus tampering and bad-input checks."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zksidecar.prover import field, merkle, sha256_reference
from zksidecar.prover.merkle import MerkleTree, verify_path, verify_path_py

VERIFIERS = [verify_path, verify_path_py]


# ------------------------------------------------------- reference model --

def random_canonical(rows: int, cols: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, field.P, (rows, cols), dtype=np.uint32)


def model_leaf(canonical_row: np.ndarray) -> bytes:
    return hashlib.sha256(canonical_row.astype("<u4").tobytes()).digest()


def model_nodes(leaves: list[bytes]) -> list[bytes]:
    """The node array of docs/MERKLE.md: [unused, root, ..., leaves]."""
    rows = len(leaves)
    nodes = [b""] * rows + leaves
    for i in range(rows - 1, 0, -1):
        nodes[i] = sha256_reference.merkle_node(nodes[2 * i], nodes[2 * i + 1])
    return nodes


def model_path(nodes: list[bytes], index: int) -> list[bytes]:
    rows = len(nodes) // 2
    path, node = [], rows + index
    while node > 1:
        path.append(nodes[node ^ 1])
        node //= 2
    return path


def flip_bit(digest: bytes, bit: int) -> bytes:
    out = bytearray(digest)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# ------------------------------------------------------------ leaf hashing --

# Column counts around the encoding's edges: 13 columns (52 bytes) is the
# last one-block row, 14..16 need a padding block, 256 is one full decode
# chunk in the kernel, 257 spills into a second.
@pytest.mark.parametrize("cols", [0, 1, 13, 14, 15, 16, 17, 143, 255, 256, 257, 600])
def test_leaf_is_sha256_of_canonical_le_values(each_isa, cols):
    # 21 rows: a 16-lane group (AVX-512), two-lane groups and a tail row
    canonical = random_canonical(21, cols, seed=cols)
    canonical[0, :] = field.P - 1          # the largest value, and 0, through the vector decode
    canonical[1, :] = 0
    matrix = field.encode(canonical)
    expected = [model_leaf(row) for row in canonical]
    leaves = merkle.hash_rows(matrix)
    assert leaves.shape == (21, 32) and leaves.dtype == np.uint8
    assert [bytes(leaf) for leaf in leaves] == expected


def test_leaf_decode_of_any_word(each_isa):
    """The leaf kernels' Montgomery decode is x / 2^32 mod p for every 32-bit
    word, not only those below p: 0, p and 2p (whose product's high word is
    0), 2^32 - 1, and random words, through a 16-lane group and a tail row."""
    words = np.random.default_rng(7).integers(0, 2**32, (17, 37), dtype=np.uint64)
    words[0, :4] = [0, field.P, 2 * field.P, 2**32 - 1]
    words[1, :] = field.P
    r_inv = pow(2**32, -1, field.P)
    canonical = (words * r_inv) % field.P
    leaves = merkle.hash_rows(words.astype(np.uint32))
    assert [bytes(leaf) for leaf in leaves] == [model_leaf(row) for row in canonical]


def test_leaf_encoding_by_hand():
    # one row holding 1 and p - 1: canonical LE words 01000000 and 00000078
    matrix = field.encode([[1, field.P - 1]])
    expected = hashlib.sha256(bytes.fromhex("01000000" "00000078")).digest()
    assert merkle.hash_rows(matrix)[0].tobytes() == expected


# -------------------------------------------------------------------- trees --

@pytest.mark.parametrize("rows, cols", [(1, 3), (2, 1), (8, 16), (64, 7), (1024, 20)])
def test_tree_matches_model(each_isa, rows, cols):
    canonical = random_canonical(rows, cols, seed=rows * cols)
    nodes = model_nodes([model_leaf(row) for row in canonical])
    tree = MerkleTree(field.encode(canonical))
    assert tree.rows == rows and tree.depth == rows.bit_length() - 1
    assert tree.root == nodes[1]
    assert [bytes(n) for n in tree.nodes[1:]] == nodes[1:]


def test_from_leaves_matches_matrix_tree():
    matrix = field.encode(random_canonical(32, 5, seed=1))
    tree = MerkleTree(matrix)
    again = MerkleTree.from_leaves(merkle.hash_rows(matrix))
    np.testing.assert_array_equal(again.nodes[1:], tree.nodes[1:])


def test_worked_node_of_the_docs(each_isa):
    """docs/MERKLE.md's example: the leaves 00 01 .. 1f and 20 21 .. 3f have
    the root N(left, right) = one compression of IV and the block 00 .. 3f,
    a published vector of SHA-256's compression function (not SHA-256 of
    the 64 bytes, fdeab9ac..., two compressions)."""
    leaves = np.arange(64, dtype=np.uint8).reshape(2, 32)
    tree = MerkleTree.from_leaves(leaves)
    assert tree.root.hex() == "fc99a2df88f42a7a7bb9d18033cdc6a20256755f9d5b9a5044a9cc315abe84a7"
    assert hashlib.sha256(leaves.tobytes()).hexdigest().startswith("fdeab9ac")
    assert all(verify(tree.root, leaves[0].tobytes(), 0, tree.open([0])[0]) for verify in VERIFIERS)
    assert not any(verify(hashlib.sha256(leaves.tobytes()).digest(), leaves[0].tobytes(), 0, tree.open([0])[0])
                   for verify in VERIFIERS)


def test_single_leaf_tree_is_its_leaf():
    leaf = np.frombuffer(hashlib.sha256(b"only").digest(), np.uint8).reshape(1, 32)
    tree = MerkleTree.from_leaves(leaf)
    assert tree.root == leaf.tobytes() and tree.depth == 0
    path = tree.open([0])[0]
    assert path.shape == (0, 32)
    assert all(verify(tree.root, leaf.tobytes(), 0, path) for verify in VERIFIERS)


def test_nodes_are_read_only():
    tree = MerkleTree(field.encode(random_canonical(4, 2, seed=2)))
    with pytest.raises(ValueError):
        tree.nodes[1, 0] ^= 1


# -------------------------------------------------------------------- paths --

def test_every_path_matches_model_and_verifies():
    canonical = random_canonical(16, 9, seed=3)
    tree = MerkleTree(field.encode(canonical))
    nodes = model_nodes([model_leaf(row) for row in canonical])
    paths = tree.open(np.arange(16))
    assert paths.shape == (16, 4, 32)
    for i, path in enumerate(paths):
        assert [bytes(p) for p in path] == model_path(nodes, i)
        for verify in VERIFIERS:
            assert verify(tree.root, nodes[16 + i], i, path, depth=4)
            assert verify(tree.root, nodes[16 + i], i, model_path(nodes, i))  # list of bytes


def test_open_accepts_repeats_and_any_order():
    tree = MerkleTree(field.encode(random_canonical(8, 2, seed=4)))
    paths = tree.open([5, 0, 5])
    np.testing.assert_array_equal(paths[0], paths[2])
    np.testing.assert_array_equal(paths[1], tree.open([0])[0])
    assert tree.open([]).shape == (0, 3, 32)


@pytest.fixture(scope="module")
def opened():
    tree = MerkleTree(field.encode(random_canonical(32, 4, seed=5)))
    index = 13
    return tree, index, tree.leaves[index].tobytes(), tree.open([index])[0]


@pytest.mark.parametrize("verify", VERIFIERS, ids=["c", "py"])
def test_tampering_fails(verify, opened):
    tree, index, leaf, path = opened
    assert verify(tree.root, leaf, index, path)
    for bit in (0, 7, 100, 255):
        assert not verify(tree.root, flip_bit(leaf, bit), index, path)
        assert not verify(flip_bit(tree.root, bit), leaf, index, path)
        for level in range(tree.depth):
            bad = path.copy()
            bad[level] = np.frombuffer(flip_bit(path[level].tobytes(), bit), np.uint8)
            assert not verify(tree.root, leaf, index, bad)
    for wrong in (index ^ 1, index ^ 16, 0, 31):
        assert not verify(tree.root, leaf, wrong, path)


@settings(max_examples=60, deadline=None)
@given(log_rows=st.integers(0, 7), cols=st.integers(0, 40), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_random_trees_open_and_verify(log_rows, cols, seed, data):
    rows = 1 << log_rows
    tree = MerkleTree(field.encode(random_canonical(rows, cols, seed)))
    index = data.draw(st.integers(0, rows - 1))
    path = tree.open([index])[0]
    leaf = tree.leaves[index].tobytes()
    assert verify_path(tree.root, leaf, index, path) and verify_path_py(tree.root, leaf, index, path)


# --------------------------------------------------------------- bad input --

def test_bad_matrices_raise():
    good = field.encode(random_canonical(4, 3, seed=6))
    with pytest.raises(ValueError, match="power-of-two"):
        MerkleTree(good[:3])
    with pytest.raises(ValueError, match="power-of-two"):
        MerkleTree(good[:0])
    with pytest.raises(TypeError, match="uint32"):
        MerkleTree(good.astype(np.int64))
    with pytest.raises(ValueError, match="2-D"):
        MerkleTree(good.ravel())
    with pytest.raises(ValueError, match="C-contiguous"):
        MerkleTree(good[:, ::2])
    with pytest.raises(TypeError, match="uint32"):
        merkle.hash_rows([[1, 2]])


def test_bad_leaves_raise():
    with pytest.raises(ValueError, match=r"\(rows, 32\)"):
        MerkleTree.from_leaves(np.zeros((4, 31), dtype=np.uint8))
    with pytest.raises(ValueError, match="power-of-two"):
        MerkleTree.from_leaves(np.zeros((6, 32), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        MerkleTree.from_leaves(np.zeros((4, 8), dtype=np.uint32))


def test_bad_open_indices_raise(opened):
    tree = opened[0]
    for index in (-1, tree.rows, 2**40):
        with pytest.raises(IndexError, match="out of range"):
            tree.open([index])
    with pytest.raises(TypeError, match="integers"):
        tree.open([1.5])
    with pytest.raises(TypeError, match="1-D"):
        tree.open([[1, 2]])


@pytest.mark.parametrize("verify", VERIFIERS, ids=["c", "py"])
def test_bad_proofs_raise(verify, opened):
    tree, index, leaf, path = opened
    with pytest.raises(ValueError, match="expected depth 4"):
        verify(tree.root, leaf, index, path, depth=4)
    with pytest.raises(ValueError, match="out of range"):
        verify(tree.root, leaf, 1 << tree.depth, path)
    with pytest.raises(ValueError, match="out of range"):
        verify(tree.root, leaf, -1, path)
    with pytest.raises(TypeError, match="integer"):
        verify(tree.root, leaf, 1.0, path)
    with pytest.raises(ValueError, match="root must be 32 bytes"):
        verify(tree.root[:31], leaf, index, path)
    with pytest.raises(ValueError, match="leaf digest must be 32 bytes"):
        verify(tree.root, leaf + b"\0", index, path)
    with pytest.raises(ValueError, match=r"path\[2\] must be 32 bytes"):
        verify(tree.root, leaf, index, [bytes(p) for p in path[:2]] + [b"short"])
    with pytest.raises(ValueError, match=r"\(depth, 32\) uint8 array"):
        verify(tree.root, leaf, index, path.reshape(-1))


def test_digest_arguments_must_be_bytes_like(opened):
    tree, index, leaf, path = opened
    with pytest.raises(TypeError):
        verify_path(tree.root, 32, index, path)  # bytes(32) would be 32 zero bytes


# ------------------------------------------------ LDE and tree in one pass --

@pytest.mark.parametrize("budget", [None, 4096])
@pytest.mark.parametrize("log_n, cols, log_blowup", [(0, 3, 1), (3, 1, 2), (6, 16, 2), (7, 17, 4),
                                                     (9, 143, 2), (5, 40, 3), (6, 2, 1), (5, 4, 2)])
def test_commit_lde_is_lde_then_tree(each_isa, budget, log_n, cols, log_blowup):
    """commit_lde hashes each leaf where the LDE hands its row over (in the
    last pass's sets; a small budget makes those strided): the same arrays
    as the LDE followed by a tree over its rows in bit-reversed order."""
    from zksidecar.prover import ntt
    evals = field.encode(random_canonical(1 << log_n, cols, seed=log_n * cols))
    want_lde = ntt.lde(evals, log_blowup, 7)
    want = MerkleTree(ntt.bit_reverse_rows(want_lde))
    if budget is None:
        lde, tree = merkle.commit_lde(evals, log_blowup, 7)
    else:
        with ntt.cache_budget(budget):
            lde, tree = merkle.commit_lde(evals, log_blowup, 7)
    np.testing.assert_array_equal(lde, want_lde)
    np.testing.assert_array_equal(tree.nodes, want.nodes)
    assert tree.root == want.root and tree.rows == want.rows


@pytest.mark.parametrize("log_n, cols, log_blowup", [(0, 2, 1), (4, 1, 2), (6, 8, 2), (8, 143, 2), (5, 4, 1)])
def test_commit_extend_is_extend_then_tree(each_isa, log_n, cols, log_blowup):
    from zksidecar.prover import ntt
    coeffs = field.encode(random_canonical(1 << log_n, cols, seed=log_n + cols))
    want = ntt.extend(coeffs, log_blowup, 31)
    values, tree = merkle.commit_extend(coeffs, log_blowup, 31)
    np.testing.assert_array_equal(values, want)
    np.testing.assert_array_equal(tree.nodes, MerkleTree(ntt.bit_reverse_rows(want)).nodes)


def test_commit_lde_rejects_bad_input():
    evals = field.encode(random_canonical(8, 2, seed=3))
    with pytest.raises(ValueError, match="log_blowup"):
        merkle.commit_lde(evals, 0)
    with pytest.raises(ValueError, match="power of two"):
        merkle.commit_lde(evals[:6], 1)
    with pytest.raises(ValueError, match="2-D"):
        merkle.commit_lde(evals[:, 0].copy(), 1)
    with pytest.raises(TypeError, match="uint32"):
        merkle.commit_lde(evals.astype(np.int64), 1)
    with pytest.raises(ValueError, match="2-D"):
        merkle.commit_extend(evals[:, 0].copy(), 1)
