"""SHA-256 Merkle commitments to matrices of BabyBear elements.

The format (docs/MERKLE.md is its definition):

* leaf ``r`` = SHA-256 of row ``r``'s canonical values, each 4 bytes
  little-endian (arrays hold Montgomery form; the C kernel decodes on the fly),
  followed, in a salted tree (zk mode, docs/ZK.md section 5.1), by the
  leaf's 16-byte salt; every function here takes ``salts=None`` for the
  unsalted tree, whose bytes are exactly what they were before salts;
* node = N(left, right): SHA-256's compression function applied once to the
  standard IV and the 64-byte block left || right, its eight words
  big-endian (no padding block, no length: one compression where SHA-256
  of the 64 bytes takes two);
* the tree is an array of ``2 * rows`` digests: ``nodes[1]`` is the root, node
  ``i`` has children ``2i`` and ``2i + 1``, the leaves are
  ``nodes[rows:]``, ``nodes[0]`` is unused; ``rows`` is a power of two;
* the path of leaf ``i`` is the ``depth = log2(rows)`` sibling digests from
  the leaf's level up to the root's children;
* a committed LDE's leaves are in bit-reversed order (leaf j is the digest of
  row rev(j), so leaf j is FRI position j), and matrices of one round share
  a tree (:meth:`MerkleTree.shared`): the tallest are its leaves, a shorter
  one joins at the level of its height, each node there
  N(N(left, right), digest of the short row).

Hashing runs in C (SHA-NI when the CPU has it and a vector ISA is active):
one call per array, numpy buffers passed without copies.
:func:`verify_path_py` is an independent pure-Python verifier for tests
(the compression function written out in prover/sha256_reference.py).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import array_pool, ntt, sha256_reference
from .field import GENERATOR
from .native import ffi, lib, u8p, u32p

DIGEST_BYTES = 32
SALT_BYTES = lib.ZK_SALT_BYTES


def sha256(data: bytes) -> bytes:
    """SHA-256 of ``data`` (any bytes-like object), computed by the C kernel."""
    buf = ffi.from_buffer("uint8_t[]", data)
    out = ffi.new("uint8_t[32]")
    lib.zk_sha256(out, buf, len(buf))
    return bytes(out)


def compress_pairs(pairs: np.ndarray) -> np.ndarray:
    """The Merkle node of each 64-byte row of a ``(n, 64)`` uint8 array:
    ``(n, 32)`` node digests N(left, right) from their (left || right)
    children, one compression each (not SHA-256 of the 64 bytes)."""
    _check_array(pairs, np.uint8, "pairs")
    if pairs.ndim != 2 or pairs.shape[1] != 2 * DIGEST_BYTES:
        raise ValueError(f"pairs must have shape (n, 64), got {pairs.shape}")
    out = np.empty((pairs.shape[0], DIGEST_BYTES), dtype=np.uint8)
    lib.zk_sha256_compress_pairs(u8p(out), u8p(pairs), pairs.shape[0])
    return out


def sha256_messages(messages: np.ndarray) -> np.ndarray:
    """SHA-256 of each row of a ``(n, len)`` uint8 array: ``(n, 32)``."""
    _check_array(messages, np.uint8, "messages")
    if messages.ndim != 2:
        raise ValueError(f"messages must have shape (n, len), got {messages.shape}")
    out = np.empty((messages.shape[0], DIGEST_BYTES), dtype=np.uint8)
    lib.zk_sha256_messages(u8p(out), u8p(messages), *messages.shape)
    return out


def combine_digests(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The digest of several matrices' rows at one height of a shared tree:
    a lone matrix's row digests as they are, several matrices' as
    SHA-256(d_1 || ... || d_k) row by row (``(n, 32)`` each in, ``(n, 32)``
    out)."""
    if len(parts) == 1:
        return parts[0]
    return sha256_messages(np.ascontiguousarray(np.concatenate(parts, axis=1)))


def hash_rows(matrix: np.ndarray, salts: np.ndarray | None = None) -> np.ndarray:
    """Leaf digests ``(rows, 32)`` uint8 of a Montgomery-form ``(rows, cols)``
    uint32 matrix; with `salts` (``(rows, 16)`` uint8), row r's digest is
    salted with salts[r]."""
    _check_matrix(matrix)
    out = np.empty((matrix.shape[0], DIGEST_BYTES), dtype=np.uint8)
    lib.zk_merkle_hash_rows(u8p(out), u32p(matrix), *matrix.shape, _salts_ptr(salts, matrix.shape[0]))
    return out


class MerkleTree:
    """A whole Merkle tree, kept as its node array.

    ``MerkleTree(matrix)`` commits to the rows of a Montgomery-form
    ``(rows, cols)`` uint32 matrix (leaf r salted with salts[r] when `salts`
    is given); :meth:`from_leaves` to leaf digests computed elsewhere.
    ``rows`` must be a power of two.
    """

    def __init__(self, matrix: np.ndarray, salts: np.ndarray | None = None):
        _check_matrix(matrix)
        nodes = _new_nodes(matrix.shape[0])
        lib.zk_merkle_build(u8p(nodes), u32p(matrix), *matrix.shape, _salts_ptr(salts, matrix.shape[0]))
        self._freeze(nodes)

    @classmethod
    def from_leaves(cls, leaves: np.ndarray, inject: dict[int, np.ndarray] | None = None) -> MerkleTree:
        """The tree over ``(rows, 32)`` uint8 leaf digests; `inject` maps a
        level l (1 .. depth) to ``(rows >> l, 32)`` digests, node i of that
        level then N(N(left, right), inject[l][i])."""
        _check_array(leaves, np.uint8, "leaves")
        if leaves.ndim != 2 or leaves.shape[1] != DIGEST_BYTES:
            raise ValueError(f"leaves must have shape (rows, 32), got {leaves.shape}")
        rows = leaves.shape[0]
        nodes = _new_nodes(rows)
        depth = rows.bit_length() - 1
        table, keep = ffi.NULL, []
        if inject:
            table = ffi.new("uint8_t *[]", depth + 1)
            for level, digests in inject.items():
                if not 1 <= level <= depth:
                    raise ValueError(f"level {level} is not above the leaves of a depth-{depth} tree")
                _check_array(digests, np.uint8, f"digests injected at level {level}")
                if digests.shape != (rows >> level, DIGEST_BYTES):
                    raise ValueError(f"level {level} has {rows >> level} nodes, got digests {digests.shape}")
                keep.append(ffi.from_buffer("uint8_t[]", digests))
                table[level] = keep[-1]
        lib.zk_merkle_build_from_leaves(u8p(nodes), u8p(leaves), rows, table)
        tree = cls.__new__(cls)
        tree._freeze(nodes)
        return tree

    @classmethod
    def shared(cls, parts: Sequence[np.ndarray]) -> MerkleTree:
        """The one tree of several matrices (docs/MERKLE.md, "Shared
        trees"): `parts` are their row digests in bit-reversed order
        (:func:`lde_leaves`), ``(2^h, 32)`` each, in the order the tree
        lists them.  The tallest are its leaves (combined by
        :func:`combine_digests` when several); a matrix 2^s times shorter
        joins at level s, combined with the others of its height."""
        groups = group_heights([p.shape[0] for p in parts])
        leaves = combine_digests([parts[i] for i in groups[0]])
        return cls.from_leaves(np.ascontiguousarray(leaves),
                               {level: np.ascontiguousarray(combine_digests([parts[i] for i in members]))
                                for level, members in groups.items() if level})

    def _freeze(self, nodes: np.ndarray) -> None:
        nodes.flags.writeable = False
        self.nodes = nodes  # (2 * rows, 32) uint8, layout in the module docstring
        self.rows = nodes.shape[0] // 2
        self.depth = self.rows.bit_length() - 1

    @property
    def root(self) -> bytes:
        return self.nodes[1].tobytes()

    @property
    def leaves(self) -> np.ndarray:
        """The leaf digests, ``(rows, 32)`` (a view into the node array)."""
        return self.nodes[self.rows:]

    def open(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Authentication paths ``(len(indices), depth, 32)`` uint8 of the given
        leaf indices; ``paths[q, k]`` is the sibling at height ``k`` (0 = leaf
        level) on the way from leaf ``indices[q]`` to the root."""
        idx = np.asarray(indices)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise TypeError(f"indices must be a 1-D sequence of integers, got {idx.dtype} {idx.shape}")
        bad = (idx < 0) | (idx >= self.rows)
        if bad.any():
            raise IndexError(f"leaf index {int(idx[bad.argmax()])} out of range for {self.rows} rows")
        idx = np.ascontiguousarray(idx, dtype=np.uint64)
        paths = np.empty((idx.size, self.depth, DIGEST_BYTES), dtype=np.uint8)
        lib.zk_merkle_open(u8p(paths), u8p(self.nodes), self.rows,
                           ffi.cast("uint64_t *", idx.ctypes.data), idx.size)
        return paths


def group_heights(heights: Sequence[int]) -> dict[int, list[int]]:
    """A shared tree's matrices by the level they join at: level s (0 = the
    leaves) lists, in order, the positions in `heights` (row counts, powers
    of two) of the matrices 2^s times shorter than the tallest."""
    tall = max(heights)
    groups: dict[int, list[int]] = {}
    for i, h in enumerate(heights):
        groups.setdefault(tall.bit_length() - h.bit_length(), []).append(i)
    return dict(sorted(groups.items()))


def lde_leaves(a: np.ndarray, log_blowup: int, shift: int = GENERATOR, from_coeffs: bool = False,
               salts: np.ndarray | None = None, mask: np.ndarray | None = None,
               cosets: Sequence[tuple[int, int, np.ndarray]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """``(lde, leaves)``: ``ntt.lde(a, log_blowup, shift)`` (natural order;
    ``ntt.extend`` with `from_coeffs`) and its rows' digests in bit-reversed
    order (``leaves[j]`` = the digest of row rev(j), salted with salts[j]
    when `salts`, ``(M, 16)`` uint8 by leaf, is given), in one C call that
    hashes each row while the LDE still has it in cache
    (csrc/hash/merkle.c, ``zk_merkle_lde_leaves``).

    `mask`, r's h coefficients ``(h, cols)`` Montgomery (X^0 first, h <= N,
    the rows of `a`), commits the masked polynomial f = t + (X^N - 1) r
    instead (docs/ZK.md, section 5.2; masking.Mask.commit_lde): the LDE
    adds r inside its transform (csrc/field/ntt.c, ``zk_lde_visit_masked``,
    which adds r_k to the copies of t's coefficient k: hence k < N), and
    the LDE returned is f's.  `cosets`, at most ``lib.ZK_LDE_MAX_COSETS``
    of ``(log_m, shift, out)``: each C-contiguous ``(2^log_m, cols)``
    uint32 `out`, sharing no memory with `a`, `mask` or another `out`,
    receives f's values on the small coset shift <w_m>
    (``ntt.coset_values`` of f's coefficients), which the LDE folds from
    the coefficients it computes on the way."""
    what = "commit_extend" if from_coeffs else "commit_lde"
    shape = ntt.lde_shape(a, log_blowup)
    if a.ndim != 2:
        raise ValueError(f"{what} needs a 2-D (rows, cols) matrix, got shape {a.shape}")
    n, cols = a.shape
    h, mask_ptr = 0, ffi.NULL
    if mask is not None:
        _check_array(mask, np.uint32, "mask")
        if mask.ndim != 2 or mask.shape[1] != cols:
            raise ValueError(f"{what}: the mask must be (h, {cols}) coefficients, got {mask.shape}")
        h = mask.shape[0]
        if h > n:
            raise ValueError(f"{what}: a mask of h = {h} rows on a trace of N = {n} rows: the masked LDE "
                             f"takes h <= N")
        mask_ptr = u32p(mask) if h else ffi.NULL
    if len(cosets) > lib.ZK_LDE_MAX_COSETS:
        raise ValueError(f"{what}: at most {lib.ZK_LDE_MAX_COSETS} small cosets, got {len(cosets)}")
    targets = ffi.new("zk_coset[]", max(len(cosets), 1))
    for i, (log_m, coset_shift, values) in enumerate(cosets):
        _check_array(values, np.uint32, "a coset's values")
        if not isinstance(log_m, int) or not 0 <= log_m <= ntt.MAX_LOG_SIZE \
                or values.shape != (1 << log_m, cols):
            raise ValueError(f"{what}: a coset's values must be (2^log_m, {cols}), log_m <= "
                             f"{ntt.MAX_LOG_SIZE}, got log_m {log_m!r} and {values.shape}")
        # the kernel zeroes each fold before it reads `a` and `mask`
        if any(np.shares_memory(values, x) for x in [a, mask] + [c[2] for c in cosets[:i]] if x is not None):
            raise ValueError(f"{what}: coset {i}'s values share memory with the input, the mask or "
                             f"another coset's values")
        targets[i].values, targets[i].shift, targets[i].log_m = u32p(values), ntt.shift_mont(coset_shift), log_m
    out = array_pool.empty(shape, np.uint32)       # the largest array of a proof: kept for the next
    leaves = np.empty((shape[0], DIGEST_BYTES), dtype=np.uint8)
    ntt.check_rc(lib.zk_merkle_lde_leaves(u32p(out), u8p(leaves), u32p(a), n, cols, log_blowup,
                                          ntt.shift_mont(shift), int(from_coeffs), _salts_ptr(salts, shape[0]),
                                          mask_ptr, h, targets, len(cosets)), what)
    return out, leaves


def commit_lde(evals: np.ndarray, log_blowup: int, shift: int = GENERATOR) -> tuple[np.ndarray, MerkleTree]:
    """``(lde, tree)``: ``ntt.lde(evals, log_blowup, shift)`` (natural order)
    and the tree over its rows in bit-reversed order (leaf j = row rev(j)),
    the leaves hashed in the LDE's last pass (:func:`lde_leaves`).  A
    masked, salted commitment: masking.Mask.commit_lde."""
    lde, leaves = lde_leaves(evals, log_blowup, shift)
    return lde, MerkleTree.from_leaves(leaves)


def commit_extend(coeffs: np.ndarray, log_blowup: int,
                  shift: int = GENERATOR) -> tuple[np.ndarray, MerkleTree]:
    """``(values, tree)``: ``ntt.extend(coeffs, log_blowup, shift)`` and its
    tree, as :func:`commit_lde`."""
    values, leaves = lde_leaves(coeffs, log_blowup, shift, from_coeffs=True)
    return values, MerkleTree.from_leaves(leaves)


def verify_path(root: bytes, leaf_digest: bytes, index: int, path, depth: int | None = None) -> bool:
    """True if ``path`` leads from ``leaf_digest`` at leaf ``index`` to ``root``.

    ``path`` is a ``(depth, 32)`` uint8 array or a sequence of 32-byte digests.
    Malformed input raises ValueError (wrong digest sizes, ``len(path) !=
    depth`` when ``depth`` is given, ``index`` outside ``[0, 2**len(path))``);
    well-formed input that does not match returns False.
    """
    root, leaf_digest, index, path_bytes, levels = _check_proof(root, leaf_digest, index, path, depth)
    return bool(lib.zk_merkle_verify(root, leaf_digest, index, path_bytes, levels))


def verify_path_py(root: bytes, leaf_digest: bytes, index: int, path, depth: int | None = None) -> bool:
    """:func:`verify_path` in pure Python, the node's compression function
    included (sha256_reference.merkle_node): an independent check."""
    root, node, index, path_bytes, levels = _check_proof(root, leaf_digest, index, path, depth)
    for level in range(levels):
        sibling = path_bytes[DIGEST_BYTES * level:DIGEST_BYTES * (level + 1)]
        node = sha256_reference.merkle_node(sibling, node) if (index >> level) & 1 \
            else sha256_reference.merkle_node(node, sibling)
    return node == root


# ------------------------------------------------------------ validation --

def _check_array(a, dtype, name: str) -> None:
    if not isinstance(a, np.ndarray) or a.dtype != dtype:
        raise TypeError(f"{name} must be a numpy {np.dtype(dtype)} array, got "
                        f"{type(a).__name__} {getattr(a, 'dtype', '')}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")


def _check_matrix(matrix) -> None:
    _check_array(matrix, np.uint32, "matrix")
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be 2-D (rows, cols), got shape {matrix.shape}")


def _salts_ptr(salts, rows: int):
    """The C pointer of a ``(rows, 16)`` uint8 salt array, or NULL for None."""
    if salts is None:
        return ffi.NULL
    _check_array(salts, np.uint8, "salts")
    if salts.shape != (rows, SALT_BYTES):
        raise ValueError(f"salts must have shape ({rows}, {SALT_BYTES}), one per leaf, got {salts.shape}")
    return u8p(salts)


def _new_nodes(rows: int) -> np.ndarray:
    if rows < 1 or rows & (rows - 1):
        raise ValueError(f"a Merkle tree needs a power-of-two number of rows, got {rows}")
    return np.empty((2 * rows, DIGEST_BYTES), dtype=np.uint8)


def _digest(value, name: str) -> bytes:
    data = bytes(memoryview(value))  # not bytes(value): bytes(32) would be 32 zeros
    if len(data) != DIGEST_BYTES:
        raise ValueError(f"{name} must be {DIGEST_BYTES} bytes, got {len(data)}")
    return data


def _check_proof(root, leaf_digest, index, path, depth):
    """Normalise a path check's inputs to (root, leaf, index, path bytes, levels)."""
    root = _digest(root, "root")
    leaf_digest = _digest(leaf_digest, "leaf digest")
    if isinstance(path, np.ndarray):
        if path.dtype != np.uint8 or path.ndim != 2 or path.shape[1] != DIGEST_BYTES:
            raise ValueError(f"path must be a (depth, 32) uint8 array, got {path.dtype} {path.shape}")
        levels, path_bytes = path.shape[0], path.tobytes()
    else:
        levels = len(path)
        path_bytes = b"".join(_digest(p, f"path[{k}]") for k, p in enumerate(path))
    if depth is not None and levels != depth:
        raise ValueError(f"path has {levels} digests, expected depth {depth}")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"leaf index must be an integer, got {type(index).__name__}")
    index = int(index)
    if not 0 <= index < 1 << levels:
        raise ValueError(f"leaf index {index} out of range for a path of depth {levels}")
    return root, leaf_digest, index, path_bytes, levels
