"""The list trees of a zk batch (prover/orderbook/zk_lists.py): the C-hashed
trees against a plain-hashlib definition, paths, and their refusals."""
import hashlib

import numpy as np
import pytest

from zksidecar.prover.orderbook import zk_lists as L


def plain_root(leaves: list[bytes]) -> bytes:
    """The rule of the module docstring, written out: pad with EMPTY to a
    power of two, hash pairs with the node prefix."""
    if not leaves:
        return L.EMPTY
    level = list(leaves)
    while len(level) & (len(level) - 1):
        level.append(L.EMPTY)
    while len(level) > 1:
        level = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def elements(n, seed=1):
    return np.random.default_rng(seed).integers(0, 2**31 - 2**27, size=(n, 8), dtype=np.uint32)


@pytest.mark.parametrize("tag", [L.LIST_OPS, L.LIST_TRADES])
def test_leaf_hashes_are_the_plain_definition(tag):
    e = elements(7)
    got = L.leaf_hashes(tag, e, first=5)
    for j in range(7):
        assert got[j].tobytes() == L.leaf_hash(tag, 5 + j, e[j])


def test_tag_and_position_enter_the_leaf():
    e = elements(2)
    ops, trades = L.leaf_hashes(L.LIST_OPS, e), L.leaf_hashes(L.LIST_TRADES, e)
    assert not np.array_equal(ops, trades)
    assert L.leaf_hash(L.LIST_OPS, 0, e[0]) != L.leaf_hash(L.LIST_OPS, 1, e[0])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 13])
def test_roots_and_every_path(n):
    leaves = L.leaf_hashes(L.LIST_OPS, elements(n, seed=n))
    tree = L.ListTree(leaves)
    assert tree.root == plain_root([x.tobytes() for x in leaves])
    assert tree.depth == L.depth_for(n)
    for j in range(n):
        path = tree.path(j)
        assert L.verify_path(tree.root, leaves[j].tobytes(), j, n, path)
        # the same leaf at another position, or another leaf at this one, fails
        other = (j + 1) % n
        if other != j:
            assert not L.verify_path(tree.root, leaves[other].tobytes(), j, n, path)
            if L.depth_for(n) and other < n:
                assert not L.verify_path(tree.root, leaves[j].tobytes(), other, n, path)


def test_side_leaves_are_used_as_they_are():
    side = np.frombuffer(b"".join(hashlib.sha256(bytes([i])).digest() for i in range(3)), dtype=np.uint8)
    side = side.reshape(3, 32)
    assert L.root_of(side) == plain_root([r.tobytes() for r in side])


def test_a_changed_path_digest_fails():
    leaves = L.leaf_hashes(L.LIST_TRADES, elements(6))
    tree = L.ListTree(leaves)
    path = tree.path(4).copy()
    path[1, 0] ^= 1
    assert not L.verify_path(tree.root, leaves[4].tobytes(), 4, 6, path)


@pytest.mark.parametrize("j, n, depth", [(6, 6, 3), (-1, 6, 3), (0, 6, 2), (0, 6, 4), (0, 2**32, 32)])
def test_untrusted_positions_and_paths_are_refused(j, n, depth):
    with pytest.raises(L.ListError):
        L.verify_path(b"\0" * 32, b"\0" * 32, j, n, [b"\0" * 32] * depth)


def test_bad_inputs_are_refused():
    with pytest.raises(L.ListError, match="tag"):
        L.leaf_hashes(9, elements(1))
    with pytest.raises(L.ListError, match="uint32"):
        L.leaf_hashes(L.LIST_OPS, elements(1).astype(np.int64))
    with pytest.raises(L.ListError, match="outside"):
        L.ListTree(L.leaf_hashes(L.LIST_OPS, elements(3))).path(3)
    with pytest.raises(L.ListError, match="u32"):
        L.leaf_hash(L.LIST_OPS, 0, [2**32] + [0] * 7)
