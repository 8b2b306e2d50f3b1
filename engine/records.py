"""The record formats of csrc/formats/zk_records.h as numpy structured dtypes.

The C header is the definition; this module mirrors it so that whole arrays
of records cross into C (and into the ring) without copies.
tests/test_engine_records.py checks every size, offset and constant here
against the compiled header, and docs/FORMATS.md documents each byte.
"""
from __future__ import annotations

import struct
from collections import namedtuple
from enum import IntEnum

import numpy as np

VERSION = 2   # 2: the completion record names its symbol and carries this version
# csrc/formats/zk_records.h: the largest value a proof can compare
MAX_PRICE = (1 << 30) - (1 << 27)
MAX_QTY = (1 << 30) - (1 << 27)


class Kind(IntEnum):
    LIMIT = 1
    IOC = 2
    MARKET = 3
    FOK = 4
    POST_ONLY = 5
    CANCEL = 6
    REDUCE = 7


class Side(IntEnum):
    BUY = 1
    SELL = 2


#: the kinds that are new orders (the others name a resting order by its
#: handle: CANCEL and REDUCE).  A new order's record carries the handle the
#: engine assigned it only when its status is RESTED; a new order rejected on
#: its fields before the engine reaches it (BAD_FLAGS) keeps the handle its
#: sender wrote, which names nothing (docs/MATCHING.md).
NEW_ORDER_KINDS = (Kind.LIMIT, Kind.IOC, Kind.MARKET, Kind.FOK, Kind.POST_ONLY)


def join_handle(slot, gen):
    """A handle from its slot (bits 0-31) and generation (bits 32-63):
    Python ints give an int, numpy arrays a uint64 array."""
    if isinstance(slot, np.ndarray) or isinstance(gen, np.ndarray):
        return (np.asarray(gen).astype(np.uint64) << np.uint64(32)) | np.asarray(slot).astype(np.uint64)
    return int(gen) << 32 | int(slot)


class Status(IntEnum):
    NONE = 0  # not processed
    RESTED = 1
    FILLED = 2
    EXPIRED = 3
    CANCELLED = 4
    REDUCED = 5
    REJECTED = 6


class Reason(IntEnum):
    NONE = 0
    BAD_KIND = 1
    BAD_SIDE = 2
    BAD_PRICE = 3
    BAD_QTY = 4
    BAD_FLAGS = 5
    UNKNOWN_HANDLE = 6
    STALE_HANDLE = 7
    WOULD_CROSS = 8
    FOK_UNFILLABLE = 9
    BOOK_FULL = 10


class CompletionStatus(IntEnum):
    PROVEN = 1
    DISAGREES = 2
    FAILED = 3


FLAG_CLAIMED = 1
FLAG_CRITICAL = 2      # the engine asks the sidecar to prove this operation's batch first
FLAGS_KNOWN = FLAG_CLAIMED | FLAG_CRITICAL
NO_PROOF = 0xFFFFFFFF


def record_dtype(fields: list[tuple[str, str, int]], size: int) -> np.dtype:
    """A little-endian dtype with explicit offsets, so numpy cannot re-pack it."""
    names, formats, offsets = zip(*fields)
    return np.dtype({"names": list(names), "formats": list(formats),
                     "offsets": list(offsets), "itemsize": size})


OP_DTYPE = record_dtype([
    ("seq", "<u8", 0),
    ("ts_ns", "<u8", 8),
    ("handle", "<u8", 16),
    ("client_id", "<u8", 24),
    ("price", "<u4", 32),
    ("qty", "<u4", 36),
    ("account", "<u4", 40),
    ("symbol", "<u4", 44),
    ("kind", "u1", 48),
    ("side", "u1", 49),
    ("flags", "<u2", 50),
    ("filled", "<u4", 52),
    ("trades", "<u4", 56),
    ("status", "u1", 60),
    ("reason", "u1", 61),
    ("reserved", "<u2", 62),
], 64)

TRADE_DTYPE = record_dtype([
    ("taker_seq", "<u8", 0),
    ("maker_handle", "<u8", 8),
    ("taker_handle", "<u8", 16),
    ("price", "<u4", 24),
    ("qty", "<u4", 28),
    ("maker_account", "<u4", 32),
    ("taker_account", "<u4", 36),
    ("symbol", "<u4", 40),
    ("taker_side", "u1", 44),
    ("reserved", "3u1", 45),
], 48)

COMPLETION_DTYPE = record_dtype([
    ("batch_id", "<u8", 0),
    ("first_seq", "<u8", 8),
    ("symbol", "<u4", 16),
    ("op_count", "<u4", 20),
    ("post_state_root", "32u1", 24),
    ("status", "u1", 56),
    ("version", "u1", 57),
    ("reserved", "<u2", 58),
    ("proof_index", "<u4", 60),
], 64)


class CompletionLayoutError(ValueError):
    """Completion records of another layout version than this build's."""


def check_completions(recs: np.ndarray) -> np.ndarray:
    """`recs` (COMPLETION_DTYPE) if every record is of this build's layout
    version; raises CompletionLayoutError otherwise instead of letting a
    record of another layout be misread (a version-1 daemon leaves 0 in
    `version`, the high bytes of its u32 status)."""
    bad = recs["version"] != VERSION
    if bad.any():
        got = int(recs["version"][np.flatnonzero(bad)[0]])
        raise CompletionLayoutError(
            f"completion record of layout version {got}, this build reads {VERSION}"
            + (" (a daemon older than records version 2, whose completions carry no symbol)"
               if got == 0 else "")
            + ": run an engine client and a daemon of the same version")
    return recs


def completion_last_seq(recs: np.ndarray) -> np.ndarray:
    """The last operation of each completion's batch (inclusive)."""
    return recs["first_seq"] + recs["op_count"].astype(np.uint64) - np.uint64(1)

def struct_of(dtype: np.dtype) -> struct.Struct:
    """The struct.Struct packing one record of `dtype` field by field: the
    per-order API packs a record with one call instead of one per field."""
    codes = {"u1": "B", "u2": "H", "u4": "I", "u8": "Q"}
    fmt, at = "<", 0
    for name in dtype.names:
        sub, offset = dtype.fields[name][:2]
        if offset != at:
            raise ValueError(f"{name} is not packed after the previous field")
        base, count = (sub.subdtype if sub.subdtype else (sub, (1,)))
        fmt += (str(count[0]) if count[0] > 1 else "") + codes[base.str[1:]]
        at += sub.itemsize
    if at != dtype.itemsize:
        raise ValueError("the fields do not fill the record")
    return struct.Struct(fmt)


OP_STRUCT = struct_of(OP_DTYPE)


class Packed:
    """A packed record read and written field by field by name: `dtype` is
    the mirror of its C struct, `struct` packs it, `unpack` returns a named
    tuple (an array field, such as reserved bytes, as a tuple)."""

    def __init__(self, name: str, dtype: np.dtype):
        self.dtype, self.struct, self.size = dtype, struct_of(dtype), dtype.itemsize
        self.fields = namedtuple(name, dtype.names)
        self._counts = [int(np.prod(dtype.fields[n][0].shape)) for n in dtype.names]

    def offset(self, name: str) -> int:
        return self.dtype.fields[name][1]

    def pack(self, **values) -> bytes:
        """The record's bytes; every field named (an array field by a tuple)."""
        try:
            row = self.fields(**values)
        except TypeError as exc:
            raise TypeError(f"{self.fields.__name__}: {exc}") from None
        flat = []
        for value, count in zip(row, self._counts):
            flat += list(value) if count > 1 else [value]
        return self.struct.pack(*flat)

    def unpack(self, raw) -> tuple:
        """The fields of the record at the start of `raw`, by name."""
        flat = self.struct.unpack_from(raw)
        values, at = [], 0
        for count in self._counts:
            values.append(flat[at:at + count] if count > 1 else flat[at])
            at += count
        return self.fields(*values)

# The fields an engine fills in: what the daemon compares with its shadow book.
OUTCOME_FIELDS = ("handle", "filled", "trades", "status", "reason")


def ops(n: int) -> np.ndarray:
    """n zeroed operation records."""
    return np.zeros(n, dtype=OP_DTYPE)


def operation(**fields) -> np.ndarray:
    """One operation record (an array of one) with the named fields set and
    the others zero."""
    rec = ops(1)
    for name, value in fields.items():
        if name not in OP_DTYPE.names:
            raise TypeError(f"an operation record has no field {name!r} "
                            f"(fields: {', '.join(OP_DTYPE.names)})")
        rec[name] = value
    return rec


def trades(n: int) -> np.ndarray:
    """n zeroed trade records."""
    return np.zeros(n, dtype=TRADE_DTYPE)


def outcome_mismatches(claimed: np.ndarray, computed: np.ndarray) -> np.ndarray:
    """Positions where an engine's claimed outcome differs from a re-execution
    of the same records (both arrays of OP_DTYPE, same length)."""
    if claimed.shape != computed.shape:
        raise ValueError(f"{len(claimed)} claimed outcomes against {len(computed)} computed")
    differ = np.zeros(len(claimed), dtype=bool)
    for name in OUTCOME_FIELDS:
        differ |= claimed[name] != computed[name]
    return np.flatnonzero(differ)
