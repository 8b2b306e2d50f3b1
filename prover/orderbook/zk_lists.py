"""The list trees of a zk batch: the SHA-256 Merkle trees over its published
leaves whose roots name the batch's records (docs/ZK.md, sections 7 and 8;
docs/FORMATS.md, "zk list trees").

A zk batch file carries its operation leaves and trade leaves (8 field
elements each, prover/orderbook/zk_encoding.py) and the root of its side
leaves.  A receipt proves one record's leaf is at its position in a list
without the list: a path in one of these trees.  Three lists, one rule:

    list leaf   SHA-256(0x00 || tag || j as u32 || 8 elements as u32)
                for element leaves (tag LIST_OPS or LIST_TRADES, j the
                leaf's position, elements canonical little-endian); a side
                leaf is used as it is (it is already SHA-256(0x02 || ...))
    node        SHA-256(0x01 || left || right)
    padding     the list is padded with EMPTY to the next power of two
    root        the one node at the top; the root of an empty list is
                EMPTY, of a one-leaf list its leaf
    path        the depth = ceil(log2 n) sibling digests from the leaf's
                level up

The prefixes keep the three kinds of hashed message apart (a leaf is never
read as a node, as RFC 6962's trees do), the tag keeps an operation leaf
from standing for a trade leaf, and j binds a leaf to its position, so a
path for row j cannot be replayed as row k's.  This is not the trace's
Merkle format (prover/merkle.py, docs/MERKLE.md: nodes without prefixes,
leaves in bit-reversed order): those trees commit matrices for FRI; these
commit a list for readers who hold one leaf.

Hashing runs in C (merkle.sha256_messages, one call per level); the paths
are checked in plain hashlib (:func:`verify_path`), the check a receipt's
reader runs on a handful of leaves.
"""
from __future__ import annotations

import hashlib

import numpy as np

from .. import merkle, poseidon2

DIGEST_BYTES = merkle.DIGEST_BYTES
LEAF_PREFIX, NODE_PREFIX = b"\x00", b"\x01"
LIST_OPS, LIST_TRADES = 1, 2
LIST_NAMES = {LIST_OPS: "operation", LIST_TRADES: "trade"}
#: the padding digest: a hashed message no leaf or node message equals
EMPTY = hashlib.sha256(b"\x00zksidecar-empty-list").digest()
#: elements a leaf carries (Poseidon2's leaf digest; the leaf message's size)
LEAF_ELEMENTS = poseidon2.LEAF_WIDTH
#: a list holds fewer than 2^32 leaves (j is a u32)
MAX_LEAVES = 1 << 32

_LEAF_MESSAGE = np.dtype({"names": ["prefix", "tag", "j", "elements"],
                          "formats": ["u1", "u1", "<u4", f"<{LEAF_ELEMENTS}u4"],
                          "offsets": [0, 1, 2, 6], "itemsize": 6 + 4 * LEAF_ELEMENTS})


class ListError(ValueError):
    """A list, position or path outside what the trees hold: the message
    names which."""


def depth_for(n: int) -> int:
    """The depth of a list of n leaves: ceil(log2 n), 0 for n <= 1."""
    if not 0 <= n < MAX_LEAVES:
        raise ListError(f"a list of {n} leaves (at most 2^32 - 1)")
    return max(n - 1, 0).bit_length()


def _check_tag(tag: int) -> None:
    if tag not in LIST_NAMES:
        raise ListError(f"list tag {tag!r} is not one of {sorted(LIST_NAMES)}")


def leaf_hashes(tag: int, elements: np.ndarray, first: int = 0) -> np.ndarray:
    """The list leaves of element leaves at positions first, first + 1, ...:
    ``(n, 32)`` uint8 from ``(n, 8)`` canonical uint32 elements."""
    _check_tag(tag)
    if not isinstance(elements, np.ndarray) or elements.dtype != np.uint32 or elements.ndim != 2 \
            or elements.shape[1] != LEAF_ELEMENTS:
        raise ListError(f"leaves must be an (n, {LEAF_ELEMENTS}) uint32 array, got "
                        f"{getattr(elements, 'dtype', type(elements).__name__)} {getattr(elements, 'shape', '')}")
    n = elements.shape[0]
    if first < 0 or first + n > MAX_LEAVES:
        raise ListError(f"positions {first} .. {first + n - 1} are not u32s")
    msg = np.zeros(n, dtype=_LEAF_MESSAGE)
    msg["prefix"], msg["tag"] = LEAF_PREFIX[0], tag
    msg["j"] = np.arange(first, first + n, dtype=np.uint64)
    msg["elements"] = elements
    return merkle.sha256_messages(msg.view(np.uint8).reshape(n, _LEAF_MESSAGE.itemsize))


def leaf_hash(tag: int, j: int, elements) -> bytes:
    """One list leaf in plain hashlib: the definition :func:`leaf_hashes`
    is tested against."""
    _check_tag(tag)
    values = [int(x) for x in elements]
    if len(values) != LEAF_ELEMENTS or not all(0 <= x < 1 << 32 for x in values):
        raise ListError(f"a leaf is {LEAF_ELEMENTS} u32 elements, got {values}")
    if not 0 <= j < MAX_LEAVES:
        raise ListError(f"position {j} is not a u32")
    return hashlib.sha256(LEAF_PREFIX + bytes([tag]) + j.to_bytes(4, "little")
                          + b"".join(x.to_bytes(4, "little") for x in values)).digest()


class ListTree:
    """The tree over ``(n, 32)`` uint8 list leaves (from :func:`leaf_hashes`,
    or side leaves as they are).  ``levels[0]`` is the padded leaf level,
    ``levels[-1]`` the root's (one digest)."""

    def __init__(self, leaves: np.ndarray):
        if not isinstance(leaves, np.ndarray) or leaves.dtype != np.uint8 or leaves.ndim != 2 \
                or leaves.shape[1] != DIGEST_BYTES:
            raise ListError(f"list leaves must be an (n, 32) uint8 array, got "
                            f"{getattr(leaves, 'dtype', type(leaves).__name__)} {getattr(leaves, 'shape', '')}")
        self.n = leaves.shape[0]
        self.depth = depth_for(self.n)
        level = np.empty((1 << self.depth, DIGEST_BYTES), dtype=np.uint8)
        level[:self.n] = leaves
        level[self.n:] = np.frombuffer(EMPTY, dtype=np.uint8)
        self.levels = [level]
        while len(level) > 1:
            msg = np.empty((len(level) // 2, 1 + 2 * DIGEST_BYTES), dtype=np.uint8)
            msg[:, 0] = NODE_PREFIX[0]
            msg[:, 1:] = level.reshape(-1, 2 * DIGEST_BYTES)
            level = merkle.sha256_messages(msg)
            self.levels.append(level)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0].tobytes()

    def path(self, j: int) -> np.ndarray:
        """Leaf j's path: ``(depth, 32)`` uint8, the sibling at each level
        from the leaves up."""
        if not 0 <= j < self.n:
            raise ListError(f"position {j} is outside a list of {self.n} leaves")
        return np.stack([self.levels[level][(j >> level) ^ 1] for level in range(self.depth)]) \
            if self.depth else np.empty((0, DIGEST_BYTES), dtype=np.uint8)


def element_tree(tag: int, elements: np.ndarray) -> ListTree:
    """The tree of a list of element leaves (``(n, 8)`` canonical integers,
    a batch file's operation or trade leaves) at positions 0 .. n - 1."""
    return ListTree(leaf_hashes(tag, np.ascontiguousarray(elements, dtype=np.uint32)))


def root_of(leaves: np.ndarray) -> bytes:
    """The root of a list of ``(n, 32)`` list leaves."""
    return ListTree(leaves).root


def verify_path(root: bytes, leaf: bytes, j: int, n: int, path) -> bool:
    """Whether `leaf` (a list leaf's 32 bytes) is at position j of the list
    of n leaves whose root is `root`, by `path` (depth digests, each 32
    bytes).  Untrusted input: a position outside the list or a path of the
    wrong shape is refused (ListError), a wrong digest gives False."""
    depth = depth_for(n)
    if not 0 <= j < n:
        raise ListError(f"position {j} is outside a list of {n} leaves")
    siblings = [bytes(s) for s in path]
    if len(siblings) != depth or any(len(s) != DIGEST_BYTES for s in siblings) or len(leaf) != DIGEST_BYTES \
            or len(root) != DIGEST_BYTES:
        raise ListError(f"a path in a list of {n} leaves is {depth} digests of {DIGEST_BYTES} bytes, "
                        f"got {len(siblings)}")
    node = bytes(leaf)
    for level, sibling in enumerate(siblings):
        pair = sibling + node if (j >> level) & 1 else node + sibling
        node = hashlib.sha256(NODE_PREFIX + pair).digest()
    return node == bytes(root)


assert _LEAF_MESSAGE.itemsize == 2 + 4 + 4 * LEAF_ELEMENTS
