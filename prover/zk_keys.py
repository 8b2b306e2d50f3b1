"""The keys of zk mode: one store key, the keys derived from it with
HMAC-SHA-256 under injective labels, and their expansion into bytes and
exactly uniform field elements (docs/ZK.md, section 6; docs/ZK_KEYS.md is
the definition).

    K      the store key: 32 bytes from os.urandom, once per store
    Delta  chain_digest(...): SHA-256 of the chain's fixed parameters
    k_b    batch_key(K, Delta, symbol, b, content digest)
    s_b    state_key(K, Delta, symbol, b, post-state digest)
    k_pi   proof_key(k_b, transcript-header digest, traces digest)

The digests of a proof's witness (:func:`table_digest`,
:func:`traces_digest`) enter the proof key and a chained state's mask, so
that no key the caller passes makes two witnesses share a mask (but with
probability at most (rows + columns) / p^4 for the keyed traces digest).

A derived key is HMAC(parent, label(fields)); the stream of (key, fields)
is the ChaCha20 keystream (RFC 8439, nonce 0, block counter from 0) of its
stream key HMAC(key, label(["stream", *fields])), at most 2^32 blocks of
64 bytes.  :func:`label` encodes a list of fields so that no two lists
encode alike, and no derivation's label starts with "stream", so a stream
key is never a derived key.

Only :func:`new_store_key` draws randomness (os.urandom).  Everything else
is a function of its arguments, so a batch proven again is the same bytes;
no random-number generator is imported here (tests/test_import_graph.py
checks it), so none is ever copied into a forked worker.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Sequence, Union

import numpy as np

from . import extension as E
from . import field as F
from . import merkle
from .field import P, checked_array
from .native import lib, u32p, u8p

KEY_BYTES = 32
DIGEST_BYTES = 32
#: a stream's block: one ChaCha20 block
BLOCK_BYTES = 64
#: the version of the key stream, bound into every chain digest: 2, the
#: ChaCha20 keystream of stream_key (1 was block i = HMAC(key, label ||
#: le64(i)), the expansion of chains made before; their stores are refused)
KEY_STREAM_VERSION = 2
#: the first field of a stream key's label, and of no derivation's
STREAM = "stream"
#: ChaCha20's block counter is 32 bits: a stream is at most 2^32 blocks,
#: and no request may wrap it
MAX_STREAM_BLOCKS = 1 << 32
MAX_STREAM_BYTES = BLOCK_BYTES * MAX_STREAM_BLOCKS
#: field elements drawn from one stream at most: half its 2^36 words, so
#: that rejection (1 word in 16) never runs out of stream in practice
MAX_ELEMENTS = MAX_STREAM_BYTES // 8
#: 32-bit words at or above this are redrawn: below it, w mod p is uniform
#: (each residue has exactly two preimages, r and r + p)
REJECTION_BOUND = 2 * P
#: the chain modes a digest may name
MODES = ("transparent", "zk")

Field = Union[bytes, str, int, Sequence["Field"]]

_U64 = struct.Struct("<Q")
_NONCE = bytes(12)
# field tags: the type of a field is part of its encoding
_BYTES, _STR, _UINT, _LIST = b"B", b"S", b"U", b"L"


def new_store_key() -> bytes:
    """A fresh store key K: 32 bytes from the operating system's generator.
    The only randomness of zk mode; drawn once, when a store is created."""
    return os.urandom(KEY_BYTES)


# -------------------------------------------------------------- key file --

class StreamTooLong(ValueError):
    """More asked of one key stream than it has (MAX_STREAM_BYTES,
    MAX_ELEMENTS): the message names the stream's label and the bound."""


class KeyFileError(ValueError):
    """A store key file that cannot be used: the message names the file
    and what is wrong."""


class KeyFileExposed(KeyFileError):
    """A key file others may read: whole, but refused until its mode is
    the owner's alone, which only the operator changes."""


def write_key_file(path: str) -> bytes:
    """Create `path` holding a new store key (docs/ZK_KEYS.md, "Key
    file"): exactly KEY_BYTES bytes, mode 0600, never over an existing
    file (KeyFileError).  Returns the key."""
    key = new_store_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} exists: a store key is made once (a new key starts a new chain)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    return key


def read_key_file(path: str, what: str = "store key") -> bytes:
    """The store key in `path`: KeyFileError unless the file is exactly
    KEY_BYTES bytes and readable by its owner alone (the key is as secret
    as the journal: docs/ZK.md section 6).  `what` names the key in the
    refusal: an archive keeps batch keys in the same format."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read(KEY_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror or exc}") from None
    if len(data) != KEY_BYTES:
        raise KeyFileError(f"{path} is not a {what} ({st.st_size} bytes; a key file is exactly {KEY_BYTES})")
    if st.st_mode & 0o077:
        raise KeyFileExposed(f"{path} is readable by others (mode {st.st_mode & 0o777:o}): a {what} is as "
                           f"secret as the journal; chmod 600 {path}")
    return data


# ---------------------------------------------------------------- labels --

def _check_fields(fields):
    if isinstance(fields, (bytes, str)) or not isinstance(fields, Sequence):
        raise TypeError(f"a label is a list or tuple of fields, got {type(fields).__name__}")
    return fields


def label(fields: Sequence[Field]) -> bytes:
    """The injective encoding of a list of fields:

        le64(number of fields), then each field as a tag and a body:
          bytes    b"B" le64(length) data
          str      b"S" le64(length) UTF-8 bytes
          int      b"U" le64(value)                (0 <= value < 2^64)
          list     b"L" label(items)               (a tuple or list, nested)

    Every encoding parses back to exactly one list (the count says where
    the list ends, the tag and length where each field ends), so two
    different lists never encode alike, and no encoding is a proper prefix
    of another.  TypeError or ValueError naming a field that is none of
    these."""
    out = bytearray(_U64.pack(len(_check_fields(fields))))
    for i, f in enumerate(fields):
        if isinstance(f, (bytes, bytearray, memoryview)):
            data = bytes(f)
            out += _BYTES + _U64.pack(len(data)) + data
        elif isinstance(f, str):
            data = f.encode("utf-8")
            out += _STR + _U64.pack(len(data)) + data
        elif isinstance(f, bool) or not isinstance(f, (int, Sequence)):
            raise TypeError(f"label field {i} is {type(f).__name__}: a field is bytes, str, an integer "
                            f"or a list of fields")
        elif isinstance(f, int):
            if not 0 <= f < 1 << 64:
                raise ValueError(f"label field {i} = {f} is not in [0, 2^64)")
            out += _UINT + _U64.pack(f)
        else:
            out += _LIST + label(f)
    return bytes(out)


def _check_bytes(value, size: int, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{name} must be {size} bytes, got {type(value).__name__}")
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(value)}")
    return bytes(value)


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def derive(parent: bytes, fields: Sequence[Field]) -> bytes:
    """HMAC-SHA-256(parent, label(fields)): a 32-byte key.  A label whose
    first field is STREAM is a stream key's (stream_key), never a
    derivation's: ValueError."""
    data = label(fields)
    if len(fields) and isinstance(fields[0], str) and fields[0] == STREAM:
        raise ValueError(f"a derivation's label never starts with {STREAM!r}: those are stream keys' (stream_key)")
    return hmac.digest(_check_bytes(parent, KEY_BYTES, "parent key"), data, "sha256")


# ----------------------------------------------------------- the hierarchy --

def chain_digest(*, mode: str, ops_rows: int, capacity: int, log_blowup: int, queries: int, h: int,
                 h_q: int, fri_folds: Sequence[int], fri_final_degree: int, grinding_bits: int,
                 proof_version: int, batch_file_version: int, air_version: int,
                 key_stream_version: int) -> bytes:
    """Delta: SHA-256 of the label of the chain's fixed parameters, each
    named: mode, the `ops` domain's rows T' (one height per chain in zk
    mode: docs/ZK.md section 14, decision 3; the `book` domain's follow
    from the capacity), book capacity, log2 blowup, queries q, mask
    sizes h and h_q, the FRI plan (fold factors, final degree), grinding
    bits, proof and batch-file versions, AIR version, and the version of
    the key stream the chain's masks and salts are expanded with
    (KEY_STREAM_VERSION): a chained state's mask must be the same
    polynomial for the two proofs that open it, so a chain never changes
    its expansion."""
    fields = _chain_fields(mode=mode, ops_rows=ops_rows, capacity=capacity, log_blowup=log_blowup,
                           queries=queries, h=h, h_q=h_q, fri_folds=fri_folds, fri_final_degree=fri_final_degree,
                           grinding_bits=grinding_bits, proof_version=proof_version,
                           batch_file_version=batch_file_version, air_version=air_version)
    return hashlib.sha256(label(fields + ["key_stream_version",
                                          _check_count(key_stream_version, "key_stream_version")])).digest()


def chain_digest_before_key_streams(**parameters) -> bytes:
    """Delta as a release before key stream versions computed it: the same
    label without its key_stream_version field.  A chain record such a
    release wrote holds this digest; daemon/zk_store checks it to tell that
    record (refused by name: its masks were HMAC-SHA-256 in counter mode)
    from a damaged one."""
    return hashlib.sha256(label(_chain_fields(**parameters))).digest()


def _chain_fields(*, mode: str, ops_rows: int, capacity: int, log_blowup: int, queries: int, h: int,
                  h_q: int, fri_folds: Sequence[int], fri_final_degree: int, grinding_bits: int,
                  proof_version: int, batch_file_version: int, air_version: int) -> list:
    """chain_digest's label fields but the key stream version, checked."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    named = {"ops_rows": ops_rows, "capacity": capacity, "log_blowup": log_blowup,
             "queries": queries, "h": h, "h_q": h_q, "fri_final_degree": fri_final_degree,
             "grinding_bits": grinding_bits, "proof_version": proof_version,
             "batch_file_version": batch_file_version, "air_version": air_version}
    for name, value in named.items():
        _check_count(value, name)
    if isinstance(fri_folds, (bytes, str)) or not isinstance(fri_folds, Sequence):
        raise TypeError(f"fri_folds must be a sequence of fold factors, got {type(fri_folds).__name__}")
    folds = tuple(_check_count(f, f"fri_folds[{i}]") for i, f in enumerate(fri_folds))
    fields = ["chain", "mode", mode]
    for name in ("ops_rows", "capacity", "log_blowup", "queries", "h", "h_q"):
        fields += [name, named[name]]
    fields += ["fri_folds", folds]
    for name in ("fri_final_degree", "grinding_bits", "proof_version", "batch_file_version", "air_version"):
        fields += [name, named[name]]
    return fields


def _check_symbol(symbol) -> str:
    if not isinstance(symbol, str) or not symbol:
        raise ValueError(f"symbol must be a non-empty string, got {symbol!r}")
    return symbol


def batch_key(store_key: bytes, chain: bytes, symbol: str, batch_id: int, content_digest: bytes) -> bytes:
    """k_b = HMAC(K, label("batch", Delta, symbol, b, SHA-256 of the batch's
    content)): the record salts, side salts and trade-row permutation of
    batch b, and the parent of its proof key."""
    return derive(store_key, ("batch", _check_bytes(chain, DIGEST_BYTES, "chain digest"),
                              _check_symbol(symbol), _check_count(batch_id, "batch_id"),
                              _check_bytes(content_digest, DIGEST_BYTES, "content digest")))


def state_key(store_key: bytes, chain: bytes, symbol: str, batch_id: int, post_state_digest: bytes) -> bytes:
    """s_b = HMAC(K, label("state", Delta, symbol, b, SHA-256 of batch b's
    post-state table)): the state mask and the state tree's salts, derived
    alike by the two proofs that open that state."""
    return derive(store_key, ("state", _check_bytes(chain, DIGEST_BYTES, "chain digest"),
                              _check_symbol(symbol), _check_count(batch_id, "batch_id"),
                              _check_bytes(post_state_digest, DIGEST_BYTES, "post-state digest")))


def proof_key(batch: bytes, header_digest: bytes, traces: bytes) -> bytes:
    """k_pi = HMAC(k_b, label("proof", SHA-256 of the transcript header,
    traces_digest of the witness)): every mask and salt only this proof
    opens.  The traces' digest makes them functions of the witness, not of
    the caller's key and the public header only: two proofs with the same
    header and key but different traces share no mask (review M2)."""
    return derive(batch, ("proof", _check_bytes(header_digest, DIGEST_BYTES, "header digest"),
                          _check_bytes(traces, DIGEST_BYTES, "traces digest")))


# ------------------------------------------------------- witness digests --

def table_digest(table: np.ndarray) -> bytes:
    """SHA-256 of label(["table", rows, columns]) followed by the table's
    row digests, row by row: each row's SHA-256 of its canonical values, 4
    bytes little-endian each (a Merkle leaf's message, docs/MERKLE.md).
    `table` is an (N, w) uint32 matrix in Montgomery form, as the prover
    holds it; the digest is of the values, so it does not depend on the
    form.  The label fixes the row count and width, so two tables never
    frame alike.  Rows are hashed by the C leaf kernel, 16 at a time, which
    decodes on the fly: a 2^15 x 509 table in ~20 ms where one hashlib
    stream over the decoded copy took ~80."""
    if not isinstance(table, np.ndarray) or table.ndim != 2 or table.dtype != np.uint32:
        raise TypeError(f"a table is a 2-D uint32 matrix, got "
                        f"{getattr(table, 'dtype', type(table).__name__)} {getattr(table, 'shape', '')}")
    rows, cols = table.shape
    digest = hashlib.sha256(label(["table", rows, cols]))
    if rows and cols:
        digest.update(merkle.hash_rows(np.ascontiguousarray(table)).tobytes())
    else:
        digest.update(hashlib.sha256(b"").digest() * rows)
    return digest.digest()


def traces_digest(batch: bytes, header_digest: bytes, tables: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """The proof key's witness input: SHA-256 of label(["traces", [[name,
    rows, columns, v0, v1, v2, v3], ...]]), a proof's main matrices by
    matrix name in statement order, v = sum_ij t[i, j] rho^i tau^j in
    F_p^4 the table's canonical values evaluated at two secret points
    (:func:`witness_points`).

    A keyed evaluation, not a hash of every value: two witnesses of one
    header that differ in a table agree on its v with probability at most
    (rows + columns) / p^4 (Schwartz-Zippel: rho and tau are uniform and
    no one who chose the witness knows them), at the cost of one weighted
    sum of the rows (extension.sum_rows), a fifth of what SHA-256 of every
    value costs (for a 2^15-row zk witness, that was a twentieth of the
    proof).  `tables` are (N, w) Montgomery uint32 matrices, as the prover
    holds them; the values, not the form, are evaluated."""
    rho, tau = witness_points(batch, header_digest)
    rows = max((t.shape[0] for _, t in tables), default=0)
    rho_powers = E.powers(rho, rows)
    entries = []
    for name, table in tables:
        checked_array(table, f"table {name!r}")
        if table.ndim != 2:
            raise TypeError(f"table {name!r} is a 2-D uint32 matrix, got shape {table.shape}")
        n, w = table.shape
        by_column = E.sum_rows(np.ascontiguousarray(table), rho_powers[:n])
        v = (E.mul(by_column, E.powers(tau, w)).astype(np.uint64).sum(axis=0) % P).astype(np.uint32)
        entries.append([name, n, w, *(int(c) for c in F.decode(v))])
    return hashlib.sha256(label(["traces", entries])).digest()


def witness_points(batch: bytes, header_digest: bytes) -> tuple[np.ndarray, np.ndarray]:
    """rho and tau, (4,) Montgomery each: the first 8 of
    field_elements(k_b, ["witness points", header_digest]), four a point.
    No other use of k_b takes that label, so they are computationally
    independent (a PRF under distinct labels) of the record salts, the
    trade order and the blinding values the witness itself holds."""
    e = F.encode(field_elements(batch, ("witness points", _check_bytes(header_digest, DIGEST_BYTES,
                                                                         "header digest")), 8))
    return e[:4], e[4:]


# ------------------------------------------------------------- expansion --

def stream_key(key: bytes, fields: Sequence[Field]) -> bytes:
    """The ChaCha20 key of the stream of (key, label(fields)):
    HMAC(key, label([STREAM, *fields])).  No derivation's label starts with
    the field STREAM (:func:`derive` refuses one), so a stream key is never
    a derived key, and two label lists give two stream keys."""
    return hmac.digest(_check_bytes(key, KEY_BYTES, "key"), label([STREAM, *_check_fields(fields)]), "sha256")


def _blocks(stream: bytes, first: int, count: int, fields) -> np.ndarray:
    """ChaCha20 blocks first .. first + count of the stream keyed `stream`
    (nonce 0), as one uint8 array (csrc/hash/chacha20.c: 16 blocks at a
    time on AVX-512, 8 on AVX2, 1 scalar).  StreamTooLong past block
    2^32 - 1."""
    # checked before the allocation; the kernel refuses the same (returns -1)
    ok = first + count <= MAX_STREAM_BLOCKS
    out = np.empty(BLOCK_BYTES * count if ok else 0, dtype=np.uint8)
    if not ok or (count and lib.zk_chacha20_blocks(u8p(out), stream, _NONCE, first, count) != 0):
        raise StreamTooLong(f"the stream of {list(fields)!r} has {MAX_STREAM_BLOCKS} blocks of {BLOCK_BYTES} "
                            f"bytes (ChaCha20's 32-bit block counter); blocks {first} .. {first + count - 1} "
                            "were asked of it")
    return out


def expand(key: bytes, fields: Sequence[Field], nbytes: int) -> bytes:
    """The first `nbytes` bytes of the stream of (key, label(fields)): the
    ChaCha20 keystream (nonce 0, block counter from 0) of
    stream_key(key, fields).  StreamTooLong over MAX_STREAM_BYTES."""
    return expand_array(key, fields, nbytes).tobytes()


def expand_array(key: bytes, fields: Sequence[Field], nbytes: int) -> np.ndarray:
    """:func:`expand` as a uint8 array, the kernel's output as it is: a
    proof's leaf salts are megabytes, and a copy into fresh bytes faults
    in pages for each."""
    stream = stream_key(key, fields)
    nbytes = _check_count(nbytes, "nbytes")
    if nbytes > MAX_STREAM_BYTES:
        raise StreamTooLong(f"{nbytes} bytes asked of the stream of {list(fields)!r}: a stream is at most "
                            f"{MAX_STREAM_BYTES} bytes (2^32 ChaCha20 blocks)")
    out = _blocks(stream, 0, -(-nbytes // BLOCK_BYTES), fields)[:nbytes]
    out.flags.writeable = False         # read-only, as the bytes it stands for
    return out


def uniform_from_words(words: np.ndarray) -> np.ndarray:
    """The rejection step: the words w < 2p of a uint32 array, in order,
    each reduced mod p (w - p where w >= p), as a new array.  Every residue
    r has exactly two accepted preimages, r and r + p, so uniform words give
    exactly uniform elements (csrc/field/field.c)."""
    checked_array(words, "words")
    out = np.empty(words.size, dtype=np.uint32)
    return out[:lib.zk_fp_uniform_from_words(u32p(out), u32p(words), words.size)]


def field_elements(key: bytes, fields: Sequence[Field], count: int) -> np.ndarray:
    """`count` exactly uniform field elements (canonical values, uint32)
    from the stream of (key, label(fields)): its 32-bit little-endian words
    in order, each word w >= 2p skipped and each kept word reduced mod p.
    The result is a prefix of one fixed sequence whatever `count` is.
    StreamTooLong over MAX_ELEMENTS (or, never in practice, if the stream's
    2^36 words hold fewer than `count` below 2p)."""
    stream = stream_key(key, fields)
    count = _check_count(count, "count")
    if count > MAX_ELEMENTS:
        raise StreamTooLong(f"{count} field elements asked of the stream of {list(fields)!r}: at most "
                            f"{MAX_ELEMENTS} are drawn from one stream (half its 2^36 words)")
    words_per_block = BLOCK_BYTES // 4
    acceptance = REJECTION_BOUND / 2**32              # 15/16
    out = np.empty(count, dtype=np.uint32)
    filled, block = 0, 0
    while filled < count:
        # enough blocks for the rest with room for an unlucky run (~7 standard
        # deviations of the rejection count), so one round almost always does
        need = count - filled
        n = max(1, int(need / acceptance / words_per_block + 8 * (need ** 0.5) / words_per_block) + 1)
        words = _blocks(stream, block, n, fields).view("<u4").astype(np.uint32, copy=False)
        block += n
        kept = min(need, lib.zk_fp_uniform_from_words(u32p(words), u32p(words), words.size))
        out[filled: filled + kept] = words[:kept]
        filled += kept
    return out
