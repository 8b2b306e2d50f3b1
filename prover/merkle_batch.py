"""Batch openings: one Merkle proof for many leaves of one tree.

Separate paths repeat the nodes near the root that queries share; a batch
proof sends each needed sibling once.  For a sorted set of distinct leaf
indices, level by level from the leaves up, the known nodes are grouped into
parents: two known siblings need nothing, a lone node needs its sibling from
the proof.  The proof is those siblings in order: by level (leaves first),
then by index.  The verifier replays the same walk, hashing each level with
one C call, and must consume the proof exactly.

Node indexing is merkle.MerkleTree's: level-l node j is nodes[(rows >> l) + j].

A shared tree (merkle.MerkleTree.shared) is opened the same way: its
siblings are those of any tree of its size, and the verifier, walking up,
hashes each known node of a level where a shorter matrix joins with that
matrix's row at the node's index (verify_shared).
"""
from __future__ import annotations

import numpy as np

from .merkle import DIGEST_BYTES, MerkleTree, combine_digests
from .native import ffi, lib, u8p


def open_batch(tree: MerkleTree, indices: np.ndarray) -> np.ndarray:
    """The sibling digests (k, 32) proving the leaves at sorted distinct
    `indices` (positions in [0, tree.rows))."""
    return tree.nodes[sibling_positions(tree.rows, indices)]


def sibling_positions(rows: int, indices: np.ndarray) -> np.ndarray:
    """Where open_batch's digests lie in the node array of any tree of `rows`
    leaves: the same for every tree of that size, so a prover opening the
    same rows of several matrices computes them once.

    Every level at once (a level at a time cost a dozen small numpy calls
    a level): row l of `known` is the leaves' ancestors at level l, sorted,
    an ancestor repeated once per leaf under it.  A known node's sibling
    is sent unless it is known too: in a sorted row an even node's sibling
    can only be the value right after its run of repeats, an odd node's
    right before its run.  Each node is looked at once, at the last of its
    run (even) or the first (odd); the siblings, read row by row, are then
    by level and by index, the proof's order."""
    idx = np.asarray(indices, dtype=np.int64)
    depth = rows.bit_length() - 1
    levels = np.arange(depth, dtype=np.int64)[:, None]
    known = idx[None, :] >> levels
    after, before = np.full_like(known, -1), np.full_like(known, -1)   # -1: no node, past a row's end
    after[:, :-1], before[:, 1:] = known[:, 1:], known[:, :-1]
    even = (known & 1) == 0
    lone = np.where(even, (after != known) & (after != known + 1),
                    (before != known) & (before != known - 1))
    return ((rows >> levels) + (known ^ 1))[lone]


def verify_batch(root: bytes, depth: int, indices: np.ndarray, leaves: np.ndarray,
                 proof: np.ndarray, inject: dict[int, np.ndarray] | None = None) -> bool:
    """True if `leaves` (k, 32) at sorted distinct `indices` and the sibling
    digests `proof` lead to `root` in a tree of `depth` levels, using every
    proof digest exactly once.  `inject` maps a level l (1 .. depth) of a
    shared tree to its injected digests, one per known node of that level
    (the distinct indices >> l, in order).  Indices not sorted and
    distinct, or outside the tree, fail, as do leaves, a proof or injected
    digests of another shape."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or not 0 <= depth <= 62:
        return False
    lv = np.ascontiguousarray(leaves, dtype=np.uint8)
    pf = np.ascontiguousarray(proof, dtype=np.uint8)
    if len(root) != DIGEST_BYTES or lv.shape != (idx.size, DIGEST_BYTES) \
            or pf.ndim != 2 or pf.shape[1:] != (DIGEST_BYTES,):
        return False
    table, counts, keep = ffi.NULL, ffi.NULL, []
    if inject:
        table = ffi.new("uint8_t *[]", depth + 1)
        counts = ffi.new("size_t[]", depth + 1)
        for level, digests in inject.items():
            digests = np.ascontiguousarray(digests, dtype=np.uint8)
            if not 1 <= level <= depth or digests.ndim != 2 or digests.shape[1] != DIGEST_BYTES:
                return False
            keep.append(ffi.from_buffer("uint8_t[]", digests))
            table[level], counts[level] = keep[-1], digests.shape[0]
    # the contiguous copy stays referenced until the call returns: a cast of a
    # temporary's buffer would not keep the array alive
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    at = ffi.cast("uint64_t *", ffi.from_buffer("int64_t[]", idx))
    rc = lib.zk_merkle_verify_batch(bytes(root), depth, at, u8p(lv), idx.size, u8p(pf), len(pf),
                                    table, counts)
    if rc == -2:
        raise MemoryError(f"no scratch memory to check a batch opening of {idx.size} leaves")
    return rc == 1


def verify_shared(root: bytes, depth: int, indices: np.ndarray, parts: list[tuple[int, np.ndarray]],
                  proof: np.ndarray) -> bool:
    """verify_batch for a shared tree of `depth` levels
    (merkle.MerkleTree.shared): `indices` are its sorted distinct leaf
    indices; `parts` its matrices in the tree's order, each (level,
    digests): the level it joins at (0 = the leaves; 2^level times shorter
    than the tallest) and its opened rows' digests at the known nodes of
    that level (the distinct `indices` >> level, in order).  Matrices of
    one level are combined as the tree combines them (merkle.combine_digests)."""
    by_level: dict[int, list[np.ndarray]] = {}
    for level, digests in parts:
        by_level.setdefault(level, []).append(np.ascontiguousarray(digests, dtype=np.uint8))
    if 0 not in by_level:
        return False
    for level, group in by_level.items():
        if any(g.shape != group[0].shape for g in group):
            return False
    inject = {level: combine_digests(group) for level, group in by_level.items() if level}
    return verify_batch(root, depth, indices, combine_digests(by_level[0]), proof, inject)
