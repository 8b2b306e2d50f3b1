"""A zk batch's private file (csrc/formats/zk_private.h; docs/STORE.md,
"Private files"): the batch's records with their outcomes, its trades and
the digest of its pre-state table, which receipts need and neither the
batch proof file (it publishes no record) nor the store key (it re-derives
only salts and masks) gives back.

The C header is the definition; tests/test_zk_daemon.py checks every size,
offset and constant here against it through cffi.  A private file is read
from disk, so nothing in it is trusted: `decode` checks the magic, the
version, the reserved fields, that the counts fit exactly the bytes there
are (before reading a record) and the body's checksum, and refuses with a
PrivateFileError naming the file and what is wrong.  Whether the records are
the ones the batch committed is the receipt glue's question
(prover/orderbook/batch_receipts.py compares their leaves with the proof's).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.records import OP_DTYPE, TRADE_DTYPE, Packed, record_dtype
from .formats import crc32

MAGIC = 0x56504B5A              # b"ZKPV" as a little-endian u32
VERSION = 1
DIGEST_BYTES = 32

HEADER_DTYPE = record_dtype([
    ("magic", "<u4", 0),
    ("version", "<u2", 4),
    ("reserved", "<u2", 6),
    ("symbol", "<u4", 8),
    ("n_ops", "<u4", 12),
    ("batch_id", "<u8", 16),
    ("first_seq", "<u8", 24),
    ("n_trades", "<u4", 32),
    ("body_crc", "<u4", 36),
    ("pre_state", "32u1", 40),
    ("reserved2", "<u8", 72),
], 80)
HEADER = Packed("PrivateHeader", HEADER_DTYPE)


class PrivateFileError(ValueError):
    """A private file that cannot be read as one: the message names the
    file and what is wrong."""


@dataclass
class PrivateBatchFile:
    """What a private file holds: batch `batch_id` of `symbol`, its records
    from `first_seq` with their outcomes (OP_DTYPE), its trades
    (TRADE_DTYPE) and the digest of its zk pre-state table."""

    symbol: int
    batch_id: int
    first_seq: int
    pre_state: bytes
    ops: np.ndarray
    trades: np.ndarray


def encode(p: PrivateBatchFile) -> bytes:
    ops = np.ascontiguousarray(p.ops, dtype=OP_DTYPE)
    trades = np.ascontiguousarray(p.trades, dtype=TRADE_DTYPE)
    if len(ops) == 0 or len(p.pre_state) != DIGEST_BYTES:
        raise ValueError("a private file holds at least one operation and a 32-byte pre-state digest")
    body = ops.tobytes() + trades.tobytes()
    head = HEADER.pack(magic=MAGIC, version=VERSION, reserved=0, symbol=p.symbol, n_ops=len(ops),
                       batch_id=p.batch_id, first_seq=p.first_seq, n_trades=len(trades),
                       body_crc=crc32(body), pre_state=tuple(p.pre_state), reserved2=0)
    return head + body


def decode(data: bytes, where: str) -> PrivateBatchFile:
    """The private file `data` read from `where`, every check made."""
    def bad(why: str) -> PrivateFileError:
        return PrivateFileError(f"{where}: not a usable private file: {why}")

    if len(data) < HEADER.size:
        raise bad(f"{len(data)} bytes, shorter than its {HEADER.size}-byte header")
    h = HEADER.unpack(data)
    if h.magic != MAGIC:
        raise bad("bad magic")
    if h.version != VERSION:
        raise bad(f"format version {h.version} (this build reads {VERSION})")
    if h.reserved or h.reserved2:
        raise bad("reserved fields are not zero")
    if h.n_ops == 0:
        raise bad("no operations")
    want = HEADER.size + h.n_ops * OP_DTYPE.itemsize + h.n_trades * TRADE_DTYPE.itemsize
    if len(data) != want:
        raise bad(f"{h.n_ops} operations and {h.n_trades} trades take {want} bytes, the file has {len(data)}")
    if crc32(data[HEADER.size:]) != h.body_crc:
        raise bad("its records fail their checksum")
    at = HEADER.size
    ops = np.frombuffer(data, OP_DTYPE, h.n_ops, at).copy()
    trades = np.frombuffer(data, TRADE_DTYPE, h.n_trades, at + h.n_ops * OP_DTYPE.itemsize).copy()
    return PrivateBatchFile(int(h.symbol), int(h.batch_id), int(h.first_seq), bytes(h.pre_state), ops, trades)


def peek(data: bytes) -> tuple[int, int, int, int] | None:
    """(symbol, batch_id, first_seq, n_ops) of a private file's header, or
    None if the bytes do not start with one (an index is built from the
    headers alone; the whole file is checked when it is used)."""
    if len(data) < HEADER.size:
        return None
    h = HEADER.unpack(data)
    if h.magic != MAGIC or h.version != VERSION or h.n_ops == 0:
        return None
    return int(h.symbol), int(h.batch_id), int(h.first_seq), int(h.n_ops)
