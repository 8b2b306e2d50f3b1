"""The batch proof file: a batch's public inputs and its STARK proof in one
byte string (docs/PROOF_FORMAT.md, "Batch proof file").

Little-endian throughout; records are the engine's own (csrc/formats/zk_records.h),
stored as they are.  The decoder trusts nothing: every count is checked
against the bytes that remain before anything is allocated, and any
malformed input raises ProofFormatError.

Two versions are written, one per mode: VERSION (9) for transparent
batches, with their records, and ZK_FILE_VERSION (10) for zk batches, with
no record: the number of operations, `resumed`, the side leaves' root and
the published leaves in their place (docs/ZK.md section 7).  The version
says the mode; the proof inside must be of that mode (format 8 or 9).
"""
from __future__ import annotations

import hashlib
import struct

import numpy as np

from ...engine.records import OP_DTYPE, TRADE_DTYPE
from ..domain import Link
from ..ext_scalar import Ext
from ..field import P
from ..proof import DIGEST, SALT, Proof, ProofFormatError, Reader
from ..params import FOLDING_FACTORS, MAX_FINAL_DEGREE, MAX_LOG_BLOWUP, MAX_LOG_TRACE, MAX_QUERIES
from . import zk_lists
from .air import MAX_LOG_OPS, OrderBookAir, book_length
from .batch import BatchProof, BatchPublic, ZkPublic
from .zk_air import ZK_MAX_LOG_OPS
from .zk_chain import ZK_FILE_VERSION
from .zk_encoding import LEAF_ELEMENTS

MAGIC = b"ZKSB"
#: 3: proven against the folded trace (an operation's first and last rows
#: carry its op and outcome; docs/STATEMENT.md), which a version-2 proof,
#: made against BEGIN and END rows, does not verify against; 2: the
#: pre-state link is always present (the link point its root selects).
#: Version 3 (not yet released) also carries the LogUp layout of one cyclic
#: running sum: aux columns lu.sum, lu.h0 .. lu.h(G-2), no lu.prev and no
#: helper for the last group (docs/LOGUP.md), so 11 extension columns at
#: T = 2^15 where the prev/sum layout had 13.  4: the statement of two
#: domains (air.py: `book`, S rows, and `ops`, T' rows), the header carrying
#: log2 S and log2 T' where version 3 carried the trace length; a version-3
#: chain's state table is committed on another domain, so no version-4
#: proof continues it (docs/PROOF_FORMAT.md, "Migration").  6: the same
#: file holding a proof of format 6 (values at w*z only for the columns
#: read on the next row), which this build proves where 4 held format 4's;
#: 9: the same layout holding a proof of format 8 (a Merkle node one
#: SHA-256 compression, docs/MERKLE.md), so its roots, the pre-state's
#: included, are not version 6's: no version-9 proof continues a version-6
#: chain.  Version 8 was a zk batch's, so the transparent file's version is
#: no longer its proof's
VERSION = 9
#: batch id, symbol, log2 capacity, log2 S, log2 T', first seq (after the version)
_HEAD = "QIBBBQ"
#: after the zk header: the number of operations, resumed, whether a
#: pre-state link follows (0: the chain's first batch, the empty book)
_ZK_HEAD = "IBB"
#: the domain tag of a zk batch's statement digest
STATEMENT_TAG = b"zksidecar-zk-statement"
#: what this build says of each earlier version it refuses
_OLD = {2: "proven against the trace layout before the folded one",
        3: "proven on one domain of T rows, before the book's state had a domain of its own",
        4: "a transparent batch whose proof, format 4, opens whole matrices at w*z",
        5: "a zk batch whose proof, format 5, opens whole matrices at w*z",
        6: "a transparent batch whose proof, format 6, has Merkle nodes SHA-256(left || right)",
        7: "a zk batch of zk AIR version 3, its records checked beside the lane, not in the book domain",
        8: "a zk batch whose proof, format 7, has Merkle nodes SHA-256(left || right)"}


def old_version_error(version: int, what: str) -> str:
    """The refusal of a `what` (a batch proof, a store entry, a
    verification report) of an earlier format version: named, with what
    to do (docs/PROOF_FORMAT.md, "Migration")."""
    why = f" ({_OLD[version]})" if version in _OLD else ""
    return (f"{what} version {version} is not supported: this build reads version {VERSION} (and "
            f"{ZK_FILE_VERSION}, zk mode's){why}; "
            "verify it with the release that wrote it, and start a new chain (a new store) with "
            "this one")


def file_version(data: bytes) -> int | None:
    """The format version a batch proof's bytes state, or None if they do
    not start as one (too short, another magic): for a reader that refuses
    an earlier version's chain before reading it (daemon/recovery.py)."""
    if len(data) < 6 or data[:4] != MAGIC:
        return None
    return struct.unpack_from("<H", data, 4)[0]


# ---- the largest file a verifier can accept (what a reader may read of one) ----
#: the shape of a batch statement, over both domains and both modes, that
#: max_file_bytes counts on: field words in one opened row of every matrix
#: (zk mode's widest, at capacity 16, 905), matrices (10) and Merkle trees
#: (5).  A generous margin over today's; tests/test_input_file.py checks
#: both modes' statements at every capacity against them, so a wider AIR
#: raises them here
MAX_OPENED_WORDS = 2048
MAX_MATRICES = 16
MAX_TREES = 8


def max_file_bytes(max_trace_length: int) -> int:
    """The most bytes a batch proof file can have and still verify where
    domains of up to `max_trace_length` rows are accepted (the verifier's
    cap, batch.check_claims): a reader refuses a larger file unread.

    Each part at its legal most: an `ops` domain of T' rows (at most
    2^MAX_LOG_OPS) carries under T' operations and under T' trades (each
    takes an ops row, the PAD row none), or in zk mode under T' leaves; the
    STARK proof opens at most MAX_QUERIES rows of each matrix, with salts,
    Merkle paths at most as deep as the tallest domain at the largest
    blowup, and at most that many FRI layers, each opening a coset of the
    largest folding factor per query, then a final polynomial of at most
    MAX_FINAL_DEGREE coefficients."""
    log_l = max(max_trace_length, 1).bit_length() - 1
    rows = 1 << min(log_l, MAX_LOG_OPS)
    per_row = max(OP_DTYPE.itemsize + TRADE_DTYPE.itemsize, 4 * LEAF_ELEMENTS)
    ext = 16                                                       # bytes of an extension element
    depth = min(log_l, MAX_LOG_TRACE) + MAX_LOG_BLOWUP
    link = 4 + ext * (1 + MAX_OPENED_WORDS)
    # magic, both modes' headers, the record counts, pre-state and side roots, the proof length
    public = (4 + struct.calcsize("<H" + _HEAD + _ZK_HEAD + "II") + 2 * DIGEST + link
              + rows * per_row + 8)
    path = MAX_QUERIES * depth * DIGEST
    # each domain's opened-row count, then the rows with a salt per matrix
    opened = 2 * 2 + MAX_QUERIES * (4 * MAX_OPENED_WORDS + SALT * MAX_MATRICES)
    values = 3 * ext * MAX_OPENED_WORDS + 2 * ext                  # at z, at w*z, at the link; sums
    fri_layer = DIGEST + 2 + MAX_QUERIES * (ext * max(FOLDING_FACTORS) + SALT) + 4 + path
    stark = (16 + MAX_TREES * (DIGEST + 4 + path) + values + opened + 1 + depth * fri_layer
             + 2 + ext * MAX_FINAL_DEGREE + 8)
    return public + stark


def encode(bp: BatchProof) -> bytes:
    pub = bp.public
    if pub.zk is not None:
        proof = bp.proof.to_bytes(pub.statement())
        return b"".join([MAGIC, _zk_header(pub), np.ascontiguousarray(pub.zk.leaves, dtype="<u4").tobytes(),
                         struct.pack("<Q", len(proof)), proof])
    out = [MAGIC, struct.pack("<H" + _HEAD, VERSION, pub.batch_id, pub.symbol, pub.log2_capacity,
                             pub.book_length.bit_length() - 1, pub.ops_length.bit_length() - 1,
                             pub.first_seq), pub.pre_root]
    out.append(pub.pre_link.to_bytes())
    out.append(struct.pack("<I", len(pub.ops)) + pub.ops.astype(OP_DTYPE).tobytes())
    out.append(struct.pack("<I", len(pub.trades)) + pub.trades.astype(TRADE_DTYPE).tobytes())
    proof = bp.proof.to_bytes(pub.statement())
    out.append(struct.pack("<Q", len(proof)) + proof)
    return b"".join(out)


def _records(r: Reader, dtype: np.dtype, what: str) -> np.ndarray:
    (count,) = r.unpack("I", f"{what} count")
    # copied as bytes, then viewed as records: numpy copies a record array
    # field by field, ~8x slower (0.7 ms for 2^14 operations)
    return np.frombuffer(r.view(count * dtype.itemsize, what), dtype=np.uint8).copy().view(dtype)


def _ext(words) -> Ext:
    if any(w >= P for w in words):
        raise ProofFormatError("a link value is not a reduced field element")
    return Ext(*words)


def _link(r: Reader) -> Link:
    """A Link as Link.to_bytes writes it: a value count, then the point and
    the values, four field words each."""
    (n,) = r.unpack("I", "link value count")
    words = struct.unpack(f"<{4 * (n + 1)}I", r.take(16 * (n + 1), "link"))
    return Link(_ext(words[:4]), [_ext(words[4 * i: 4 * i + 4]) for i in range(1, n + 1)])


def decode_link(data: bytes) -> Link:
    """A Link from Link.to_bytes (a verification report keeps one):
    ProofFormatError if the bytes are not exactly one."""
    r = Reader(data, "link")
    link = _link(r)
    if r.pos != len(r.data):
        raise ProofFormatError(f"{len(r.data) - r.pos} unexpected bytes after the link")
    return link


def _zk_header(pub: BatchPublic) -> bytes:
    """A zk batch file's header after the magic: version, the batch's
    header (as the transparent file's), ops, resumed, the pre-state root and link (a
    flag byte, 0 for the empty book's none), the side leaves' root."""
    z = pub.zk
    return b"".join([struct.pack("<H" + _HEAD + _ZK_HEAD, ZK_FILE_VERSION, pub.batch_id, pub.symbol,
                                 pub.log2_capacity, pub.book_length.bit_length() - 1,
                                 pub.ops_length.bit_length() - 1, pub.first_seq, z.n_ops, int(z.resumed),
                                 int(pub.pre_link is not None)),
                     pub.pre_root, pub.pre_link.to_bytes() if pub.pre_link is not None else b"", z.side_root])


def list_trees(pub: BatchPublic) -> tuple[zk_lists.ListTree, zk_lists.ListTree]:
    """The list trees (zk_lists) of a zk batch over its operation leaves and
    its trade and dummy leaves: their roots are its ops_root and
    trades_root.  A caller that needs the roots and the paths (a receipt's
    maker) builds them once and passes them on (statement_digest's
    `trees`)."""
    z = pub.zk
    return (zk_lists.element_tree(zk_lists.LIST_OPS, z.leaves[:z.n_ops]),
            zk_lists.element_tree(zk_lists.LIST_TRADES, z.leaves[z.n_ops:]))


def statement_digest(bp: BatchProof, trees: tuple[zk_lists.ListTree, zk_lists.ListTree] | None = None) -> bytes:
    """A zk batch's statement digest, what receipts name (docs/ZK.md
    section 7): SHA-256 of STATEMENT_TAG, the file's header (version to
    side root), the post-state root, ops_root and trades_root.  `trees`:
    list_trees(bp.public) when the caller has them, else they are built."""
    if bp.public.zk is None:
        raise ValueError("a statement digest is a zk batch's")
    ops_tree, trades_tree = list_trees(bp.public) if trees is None else trees
    return hashlib.sha256(b"".join([STATEMENT_TAG, _zk_header(bp.public), bp.post_root, ops_tree.root,
                                    trades_tree.root])).digest()


def decode(data: bytes) -> BatchProof:
    return decode_with_air(data)[0]


def decode_with_air(data: bytes) -> tuple[BatchProof, OrderBookAir]:
    """decode, and the AIR of the public inputs it built to read the proof
    (a verifier that verifies the proof at once reuses it: verify_batch's
    `air`)."""
    r = Reader(data, "batch proof")
    public = _public(r)
    (proof_len,) = r.unpack("Q", "proof length")
    proof_bytes = r.take(proof_len, "proof")
    if r.pos != len(r.data):
        raise ProofFormatError(f"{len(r.data) - r.pos} unexpected bytes after the batch proof")
    try:
        air = public.air()
        statement = public.statement(air)
    except ValueError as exc:
        raise ProofFormatError(f"public inputs do not describe a batch: {exc}") from None
    proof = Proof.from_bytes(proof_bytes, statement)
    if proof.options.zk != (public.zk is not None):
        # a zk proof would be checked against the transparent statement's
        # figures and anchors, or the reverse: the file's version is its mode
        raise ProofFormatError(f"a {'zk (format 9)' if proof.options.zk else 'transparent (format 8)'} proof "
                               f"in a {'zk' if public.zk is not None else 'transparent'} batch proof file "
                               f"(version {ZK_FILE_VERSION if public.zk is not None else VERSION})")
    return BatchProof(proof, public), air


def decode_public(data: bytes) -> BatchPublic:
    """The public inputs alone (what a store holds, without the cost of
    reading the proof): ProofFormatError if they are malformed."""
    return _public(Reader(data, "batch proof"))


def _public(r: Reader) -> BatchPublic:
    if r.take(4, "magic") != MAGIC:
        raise ProofFormatError("not a zksidecar batch proof (bad magic)")
    (version,) = r.unpack("H", "version")
    if version not in (VERSION, ZK_FILE_VERSION):
        raise ProofFormatError(old_version_error(version, "batch proof"))
    batch_id, symbol, log2_cap, log_s, log_t, first_seq = r.unpack(_HEAD, "header")
    # the heights' own limits, before anything is sized by them: S is the
    # capacity's (book_length), T' a power of two from 16 to the prover's
    # limit (a verifier's cap on both is batch.check_claims')
    if not 1 <= log2_cap <= MAX_LOG_TRACE or 1 << log_s != book_length(1 << log2_cap):
        raise ProofFormatError(f"capacity 2^{log2_cap} and a book domain of 2^{log_s} rows are not "
                               "a valid chain configuration (the book domain has max(capacity, 16) rows)")
    if not 4 <= log_t <= MAX_LOG_OPS:
        raise ProofFormatError(f"an ops domain of 2^{log_t} rows (from 2^4 to 2^{MAX_LOG_OPS})")
    if version == ZK_FILE_VERSION:
        return _zk_public(r, batch_id, symbol, log2_cap, log_s, log_t, first_seq)
    pre_root = r.take(32, "pre-state root")
    link = _link(r)
    ops = _records(r, OP_DTYPE, "operations")
    trades = _records(r, TRADE_DTYPE, "trades")
    return BatchPublic(log2_cap, 1 << log_s, 1 << log_t, symbol, first_seq, ops, trades, pre_root,
                       link, batch_id)


def _zk_public(r: Reader, batch_id: int, symbol: int, log2_cap: int, log_s: int, log_t: int,
               first_seq: int) -> BatchPublic:
    """A zk batch file's public inputs after the common header: every count
    checked against zk mode's limits before the leaves are read."""
    if log_t > ZK_MAX_LOG_OPS:
        raise ProofFormatError(f"a zk batch of 2^{log_t} ops rows: zk mode proves at most 2^{ZK_MAX_LOG_OPS}")
    n_ops, resumed, has_link = r.unpack(_ZK_HEAD, "zk header")
    t, s = 1 << log_t, 1 << log_s
    if not 1 <= n_ops <= min(t - 1, s):
        raise ProofFormatError(f"a zk batch of {n_ops} operations in {t} ops rows and {s} book rows (1 to "
                               f"{min(t - 1, s)}: one leaf an ops row, the last none; one operation a book row)")
    if resumed not in (0, 1) or has_link not in (0, 1):
        raise ProofFormatError(f"the zk header's resumed ({resumed}) and link ({has_link}) flags are bits")
    pre_root = r.take(32, "pre-state root")
    link = _link(r) if has_link else None
    side_root = r.take(32, "side root")
    leaves = r.u32s((t - 1, LEAF_ELEMENTS), "leaves")
    return BatchPublic(log2_cap, 1 << log_s, t, symbol, first_seq, None, None, pre_root, link, batch_id,
                       ZkPublic(n_ops, bool(resumed), leaves, side_root))
