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
    return tree.nodes[sibling_positions(tree.rows, indices)]


def sibling_positions(rows: int, indices: np.ndarray) -> np.ndarray:
    """Where open_batch's digests lie in the node array of any tree of `rows`
    leaves: the same for every tree of that size, so a prover opening the
    same rows of several matrices computes them once."""
    idx = np.asarray(indices, dtype=np.int64)
    out = []
    depth = rows.bit_length() - 1
    for level in range(depth):
        first, paired = _groups(idx)
        lone = idx[first[~paired]]
        out.append((rows >> level) + (lone ^ 1))
        idx = idx[first] >> 1
    return np.concatenate(out) if out else np.empty(0, np.int64)


def verify_batch(root: bytes, depth: int, indices: np.ndarray, leaves: np.ndarray,
                 proof: np.ndarray) -> bool:
    """True if `leaves` (k, 32) at sorted distinct `indices` and the sibling
    digests `proof` lead to `root` in a tree of `depth` levels, using every
    proof digest exactly once."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0 or idx.size != len(leaves):
        return False
    if (np.diff(idx) <= 0).any() or idx[0] < 0 or idx[-1] >= 1 << depth:
        return False
    nodes = np.ascontiguousarray(leaves, dtype=np.uint8)
    used = 0
    for _ in range(depth):
        first, paired = _groups(idx)
        lone = first[~paired]
        if used + lone.size > len(proof):
            return False
        pairs = np.empty((first.size, 2, DIGEST_BYTES), dtype=np.uint8)
        # paired groups: the two known children in order
        both = first[paired]
        pairs[paired, 0] = nodes[both]
        pairs[paired, 1] = nodes[both + 1]
        # lone nodes: left or right of the sibling taken from the proof
        sib = proof[used: used + lone.size]
        used += lone.size
        is_left = (idx[lone] & 1) == 0
        single = np.flatnonzero(~paired)
        pairs[single[is_left], 0] = nodes[lone[is_left]]
        pairs[single[is_left], 1] = sib[is_left]
        pairs[single[~is_left], 0] = sib[~is_left]
        pairs[single[~is_left], 1] = nodes[lone[~is_left]]
        nodes = compress_pairs(pairs.reshape(first.size, 2 * DIGEST_BYTES))
        idx = idx[first] >> 1
    return used == len(proof) and nodes.shape[0] == 1 and nodes[0].tobytes() == root
