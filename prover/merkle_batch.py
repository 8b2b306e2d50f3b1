"""Batch openings: one Merkle proof for many leaves of one tree.

Separate paths repeat the nodes near the root that queries share; a batch
proof sends each needed sibling once.  For a sorted set of distinct leaf
indices, level by level from the leaves up, the known nodes are grouped into
parents: two known siblings need nothing, a lone node needs its sibling from
the proof.  The proof is those siblings in order: by level (leaves first),
then by index.  The verifier replays the same walk, hashing each level with
one C call, and must consume the proof exactly.

Node indexing is merkle.MerkleTree's: level-l node j is nodes[(rows >> l) + j].
"""
from __future__ import annotations

import numpy as np

from .merkle import DIGEST_BYTES, MerkleTree, compress_pairs


def _groups(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted distinct indices of one level: the position of the first
    node of each parent group, and whether that group has both children."""
    n = idx.size
    pair_next = np.zeros(n, dtype=bool)
    if n > 1:
        pair_next[:-1] = ((idx[:-1] & 1) == 0) & (idx[1:] == idx[:-1] + 1)
    starts = np.ones(n, dtype=bool)
    starts[1:] = ~pair_next[:-1]
    first = np.flatnonzero(starts)
    return first, pair_next[first]


def open_batch(tree: MerkleTree, indices: np.ndarray) -> np.ndarray:
    """The sibling digests (k, 32) proving the leaves at sorted distinct
    `indices` (positions in [0, tree.rows))."""
    idx = np.asarray(indices, dtype=np.int64)
    out = []
    for level in range(tree.depth):
        first, paired = _groups(idx)
        lone = idx[first[~paired]]
        out.append(tree.nodes[(tree.rows >> level) + (lone ^ 1)])
        idx = idx[first] >> 1
    return np.concatenate(out) if out else np.empty((0, DIGEST_BYTES), np.uint8)


def verify_batch(root: bytes, depth: int, indices: np.ndarray, leaves: np.ndarray,
                 proof: np.ndarray) -> bool:
    """True if `leaves` (k, 32) at sorted distinct `indices` and the sibling
    digests `proof` lead to `root` in a tree of `depth` levels, using every
    proof digest exactly once.

    Each level's known nodes are placed into their parents' (left, right)
    slots, the empty slots (one per lone node, in index order: the order
    open_batch wrote them) are filled from the proof, and the parents are
    hashed with one C call.  A verifier runs this on every matrix and FRI
    layer, so a level costs a dozen array operations, not per-node Python."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0 or idx.size != len(leaves):
        return False
    if (np.diff(idx) <= 0).any() or idx[0] < 0 or idx[-1] >= 1 << depth:
        return False
    nodes = np.ascontiguousarray(leaves, dtype=np.uint8)
    used = 0
    for _ in range(depth):
        parent = idx >> 1
        first = np.empty(idx.size, dtype=bool)        # first known child of its parent
        first[0] = True
        np.not_equal(parent[1:], parent[:-1], out=first[1:])
        group = np.cumsum(first) - 1                  # each node's parent, numbered 0..g-1
        g = int(group[-1]) + 1
        side = idx & 1
        children = np.empty((g, 2, DIGEST_BYTES), dtype=np.uint8)
        children[group, side] = nodes
        lone = 2 * g - idx.size                       # parents with one known child
        if lone:
            if used + lone > len(proof):
                return False
            empty = np.ones((g, 2), dtype=bool)
            empty[group, side] = False
            children.reshape(2 * g, DIGEST_BYTES)[empty.ravel()] = proof[used: used + lone]
            used += lone
        nodes = compress_pairs(children.reshape(g, 2 * DIGEST_BYTES))
        idx = parent[first]
    return used == len(proof) and nodes.shape[0] == 1 and nodes[0].tobytes() == root
