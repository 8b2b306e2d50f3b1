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

from .merkle import DIGEST_BYTES, MerkleTree
from .native import ffi, lib, u8p


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
    tree, whether its leaves and proof lead to its root, using every proof
    digest exactly once.  The walk is zk_merkle_verify_batch's (module
    docstring; each level's parents hashed in one call); indices not sorted
    and distinct, or outside the tree, fail every tree, as do leaves or a
    proof of another shape that tree's."""
    idx = np.asarray(indices, dtype=np.int64)
    ok = [False] * len(roots)
    if idx.ndim != 1 or idx.size == 0 or idx.min() < 0:
        return ok
    at = ffi.cast("uint64_t *", ffi.from_buffer("int64_t[]", np.ascontiguousarray(idx)))
    for t, (root, lv, pf) in enumerate(zip(roots, leaves, proofs)):
        lv = np.ascontiguousarray(lv, dtype=np.uint8)
        pf = np.ascontiguousarray(pf, dtype=np.uint8)
        if len(root) != DIGEST_BYTES or lv.shape != (idx.size, DIGEST_BYTES) \
                or pf.ndim != 2 or pf.shape[1:] != (DIGEST_BYTES,):
            continue
        rc = lib.zk_merkle_verify_batch(bytes(root), depth, at, u8p(lv), idx.size, u8p(pf), len(pf))
        if rc == -2:
            raise MemoryError(f"no scratch memory to check a batch opening of {idx.size} leaves")
        ok[t] = rc == 1
    return ok
