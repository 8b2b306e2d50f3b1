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
    return verify_batches([root], depth, indices, [leaves], [proof])[0]


def verify_batches(roots: list[bytes], depth: int, indices: np.ndarray, leaves: list[np.ndarray],
                   proofs: list[np.ndarray]) -> list[bool]:
    """verify_batch for several trees of one depth opened at the same
    indices (every matrix of a proof is opened at the query rows): for each
    tree, whether its leaves and proof lead to its root.

    The walk depends on the indices alone, so it is planned once: each
    level's known nodes are placed into their parents' (left, right) slots,
    the empty slots (one per lone node, in index order: the order open_batch
    wrote them) are filled from each tree's proof, and the parents of every
    tree are hashed with one C call per level.  A proof of another length
    than the plan's sibling count cannot be used up exactly: that tree fails."""
    idx = np.asarray(indices, dtype=np.int64)
    ok = [False] * len(roots)
    if idx.size == 0 or any(idx.size != len(lv) for lv in leaves):
        return ok
    if (np.diff(idx) <= 0).any() or idx[0] < 0 or idx[-1] >= 1 << depth:
        return ok
    plan, need = [], 0
    for _ in range(depth):
        parent = idx >> 1
        first = np.empty(idx.size, dtype=bool)        # first known child of its parent
        first[0] = True
        np.not_equal(parent[1:], parent[:-1], out=first[1:])
        group = np.cumsum(first) - 1                  # each node's parent, numbered 0..g-1
        g = int(group[-1]) + 1
        side = idx & 1
        lone = 2 * g - idx.size                       # parents with one known child
        empty = None
        if lone:
            empty = np.ones((g, 2), dtype=bool)
            empty[group, side] = False
            empty = empty.ravel()
        plan.append((g, group, side, empty, need, lone))
        need += lone
        idx = parent[first]
    live = [t for t, pf in enumerate(proofs) if len(pf) == need]
    if not live:
        return ok
    t = len(live)
    nodes = np.stack([np.ascontiguousarray(leaves[i], dtype=np.uint8) for i in live])   # (t, k, 32)
    sib = np.stack([np.asarray(proofs[i], dtype=np.uint8).reshape(need, DIGEST_BYTES) for i in live])
    for g, group, side, empty, at, lone in plan:
        children = np.empty((t, g, 2, DIGEST_BYTES), dtype=np.uint8)
        children[:, group, side] = nodes
        if lone:
            children.reshape(t, 2 * g, DIGEST_BYTES)[:, empty] = sib[:, at: at + lone]
        nodes = compress_pairs(children.reshape(t * g, 2 * DIGEST_BYTES)).reshape(t, g, DIGEST_BYTES)
    for j, i in enumerate(live):
        ok[i] = nodes.shape[1] == 1 and nodes[j, 0].tobytes() == roots[i]
    return ok
