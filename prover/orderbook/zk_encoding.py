"""The encodings of zk mode's record lane (docs/ZK.md, section 3.3;
docs/FORMATS.md, "zk leaf encodings"): records as field elements, leaves
and side leaves, and the lane's limb layout at every trace length.

One module for the lane witness and for receipts, so the two cannot encode
a record differently.  It lives beside the order-book AIR, not in
engine/records.py: the leaf digest needs the prover's field and Poseidon2
(engine/ imports nothing of prover/; the prover reads the engine's records),
and the layout is the AIR's range-check rule.  Salts are inputs (the keys of
prover/zk_keys.py give them); nothing here draws randomness.

    operation leaf   12 data elements packed from one operation record with
                     its outcome (OPERATION_LAYOUT, the table of section 3.3)
    trade leaf       6 data elements (taker index i, trade number tn, maker
                     slot, maker generation, price, qty), the other 6 zero
    dummy leaf       12 zeros
    leaf input       4 salt elements, then the 12 data elements
    leaf digest      prover.poseidon2.leaf of the leaf input: 8 elements
    side leaf        SHA-256(0x02 || "zksidecar-side" || le32(i) || salt (16
                     bytes) || client_id (le64) || reserved (le16))

The packing rule: a data element holds sub-fields least significant first,
e = sum_j v_j 2^(o_j), every sub-field at its exact width and the widths of
an element summing to at most 30 bits, so e < 2^30 < p and every element
decodes uniquely.  :func:`operation_elements` is the plain definition, one
record in Python integers, element by element as the table reads;
:func:`encode_operations` and :func:`decode_operations` are driven by
OPERATION_LAYOUT over whole arrays, and tests/test_zk_encoding.py holds the
two equal.

Every field the leaf carries is covered bit for bit except four, whose
domain is narrower than their byte width: `status` < 8, `reason` < 16,
`filled` and `trades` <= MAX_QTY.  A record outside that domain is refused
(EncodingError naming the record and the field); a receipt refuses it
likewise (docs/ZK.md, section 8).  Not in the leaf: `seq` (the leaf's
position), `symbol` (public), `client_id` and `reserved` (the side leaf).
"""
from __future__ import annotations

import functools
import hashlib
import struct
from typing import NamedTuple, Sequence

import numpy as np

from ...engine.records import MAX_PRICE, MAX_QTY, OP_DTYPE, join_handle
from .. import field as F
from .. import merkle, poseidon2

DATA_ELEMENTS = 12
SALT_ELEMENTS = 4
LEAF_ELEMENTS = poseidon2.LEAF_WIDTH          # 8
TRADE_ELEMENTS = 6
SIDE_SALT_BYTES = 16
#: every data element is below 2^ELEMENT_BITS < p
ELEMENT_BITS = 30
#: a trade leaf's fields are single elements below 2^30 (a valid book's)
TRADE_FIELD_LIMIT = 1 << 30
SIDE_PREFIX = b"\x02zksidecar-side"


class EncodingError(ValueError):
    """A record, trade or element array outside an encoding's domain: the
    message names the record's position and the field."""


# ------------------------------------------------------------ the table --

class SubField(NamedTuple):
    """Bits lo .. lo + width - 1 of `source` (a record field, or the
    handle's `slot` = bits 0-31, `gen` = bits 32-63), at bit `offset` of
    data element `element`.  `exact` says how the lane makes it exact
    (docs/ZK.md, section 3.3): "range" (lookups, :func:`lane_layout`),
    "boolean" (one boolean column) or "tuple" (equal, through the outcome
    tuple, to an execution value of known range)."""
    element: int
    offset: int
    source: str
    lo: int
    width: int
    exact: str

    @property
    def name(self) -> str:
        return f"{self.source}[{self.lo}]" if self.width == 1 else \
            f"{self.source}[{self.lo}:{self.lo + self.width}]"


def _element(element: int, parts: Sequence[tuple]) -> list[SubField]:
    out, offset = [], 0
    for source, lo, width, exact in parts:
        out.append(SubField(element, offset, source, lo, width, exact))
        offset += width
    return out


def _limbs(source: str, lo: int) -> list[tuple]:
    return [(source, lo, 15, "range"), (source, lo + 15, 15, "range")]


def _bits(source: str, *bits: int) -> list[tuple]:
    return [(source, b, 1, "boolean") for b in bits]


#: The operation leaf's data elements, sub-fields least significant first
#: (docs/ZK.md, section 3.3, the table).
OPERATION_LAYOUT: tuple[SubField, ...] = tuple(
    _element(0, _limbs("ts_ns", 0)) + _element(1, _limbs("ts_ns", 30))
    + _element(2, _limbs("price", 0)) + _element(3, _limbs("qty", 0))
    + _element(4, _limbs("slot", 0)) + _element(5, _limbs("gen", 0))
    + _element(6, _bits("ts_ns", 60, 61, 62, 63) + _bits("price", 30, 31) + _bits("qty", 30, 31)
               + _bits("slot", 30, 31) + _bits("gen", 30, 31) + _bits("flags", 0, 1)
               + [("flags", 2, 14, "range")])
    + _element(7, [("side", 0, 8, "range"), ("kind", 0, 8, "range"),
                   ("reason", 0, 4, "tuple"), ("status", 0, 3, "tuple")])
    + _element(8, [("filled", 0, 30, "tuple")])
    + _element(9, [("trades", 0, 30, "tuple")])
    + _element(10, [("account", 0, 15, "range"), ("account", 15, 1, "boolean")])
    + _element(11, [("account", 16, 15, "range"), ("account", 31, 1, "boolean")]))

#: each source's width in bits (the record field's, or the handle half's)
SOURCE_BITS = {"ts_ns": 64, "price": 32, "qty": 32, "slot": 32, "gen": 32, "flags": 16, "side": 8,
               "kind": 8, "reason": 4, "status": 3, "filled": 30, "trades": 30, "account": 32}
#: the largest value of a source narrower than its record field (the domain)
SOURCE_MAX = {"reason": 15, "status": 7, "filled": MAX_QTY, "trades": MAX_QTY}
#: each element's width: the sum of its sub-fields'
ELEMENT_WIDTHS = tuple(sum(sf.width for sf in OPERATION_LAYOUT if sf.element == e)
                       for e in range(DATA_ELEMENTS))
#: the record fields the leaf carries (seq, symbol, client_id, reserved are not)
LEAF_FIELDS = ("ts_ns", "handle", "price", "qty", "account", "kind", "side", "flags",
               "filled", "trades", "status", "reason")


def _check_ops(records: np.ndarray) -> np.ndarray:
    if not isinstance(records, np.ndarray) or records.dtype != OP_DTYPE or records.ndim != 1:
        raise TypeError(f"operation records must be a 1-D array of OP_DTYPE, got "
                        f"{getattr(records, 'dtype', type(records).__name__)}")
    return records


def _refuse_domain(records: np.ndarray) -> None:
    """EncodingError naming the first record (and field) outside the domain."""
    for name, top in SOURCE_MAX.items():
        bad = records[name] > top
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise EncodingError(f"operation record {i}: {name} = {int(records[name][i])} is outside the "
                                f"encoding's domain ({name} <= {top})")


# ------------------------------------------------- the plain definition --

def operation_elements(record) -> tuple[int, ...]:
    """The 12 data elements of one operation record (with its outcome), in
    plain Python integers: the definition the array functions are tested
    against, element by element as docs/ZK.md's table reads.  `record`:
    anything indexed by OP_DTYPE's field names (a row of an OP_DTYPE array).
    EncodingError outside the domain."""
    v = {name: int(record[name]) for name in LEAF_FIELDS}
    for name in LEAF_FIELDS:
        if not 0 <= v[name] < 1 << 8 * OP_DTYPE.fields[name][0].itemsize:
            raise EncodingError(f"operation record: {name} = {v[name]} does not fit its record field")
    for name, top in SOURCE_MAX.items():
        if not 0 <= v[name] <= top:
            raise EncodingError(f"operation record: {name} = {v[name]} is outside the encoding's "
                                f"domain ({name} <= {top})")
    ts, price, qty, flags, account = v["ts_ns"], v["price"], v["qty"], v["flags"], v["account"]
    slot, gen = v["handle"] & 0xFFFFFFFF, v["handle"] >> 32
    low30 = (1 << 30) - 1
    e6 = ((ts >> 60)                      # ts_ns bits 60-63 at bits 0-3
          | (price >> 30) << 4 | (qty >> 30) << 6 | (slot >> 30) << 8 | (gen >> 30) << 10
          | (flags & 1) << 12 | (flags >> 1 & 1) << 13 | (flags >> 2) << 14)
    e7 = v["side"] | v["kind"] << 8 | v["reason"] << 16 | v["status"] << 20
    return (ts & low30, ts >> 30 & low30, price & low30, qty & low30, slot & low30, gen & low30,
            e6, e7, v["filled"], v["trades"], account & 0xFFFF, account >> 16)


def trade_elements(i: int, tn: int, slot: int, gen: int, price: int, qty: int) -> tuple[int, ...]:
    """The 12 data elements of a trade leaf: taker index i, trade number tn
    within the taker's operation, maker slot, maker generation, price, qty,
    then six zeros.  EncodingError if a field is out of a valid book's
    range (price and qty from 1: a zero one would be a dummy's)."""
    fields = (("i", i), ("tn", tn), ("slot", slot), ("gen", gen), ("price", price), ("qty", qty))
    for name, value in fields:
        top = {"price": MAX_PRICE, "qty": MAX_QTY}.get(name, TRADE_FIELD_LIMIT - 1)
        low = 1 if name in ("price", "qty") else 0
        if not isinstance(value, (int, np.integer)) or not low <= int(value) <= top:
            raise EncodingError(f"trade: {name} = {value!r} is outside a trade leaf's domain "
                                f"({low} <= {name} <= {top})")
    return tuple(int(v) for _, v in fields) + (0,) * (DATA_ELEMENTS - TRADE_ELEMENTS)


def side_leaf(i: int, salt: bytes, client_id: int, reserved: int) -> bytes:
    """The side leaf of operation row i: SHA-256(0x02 || "zksidecar-side" ||
    le32(i) || salt || le64(client_id) || le16(reserved))."""
    if not isinstance(salt, (bytes, bytearray)) or len(salt) != SIDE_SALT_BYTES:
        raise EncodingError(f"a side salt is {SIDE_SALT_BYTES} bytes, got {salt!r:.40}")
    if not 0 <= i < 1 << 32:
        raise EncodingError(f"side leaf: row {i} is not a u32")
    return hashlib.sha256(SIDE_PREFIX + struct.pack("<I", i) + bytes(salt)
                          + struct.pack("<QH", client_id, reserved)).digest()


# ------------------------------------------------------------- arrays --

def _sources(records: np.ndarray) -> dict[str, np.ndarray]:
    src = {name: records[name].astype(np.uint64) for name in SOURCE_BITS if name not in ("slot", "gen")}
    handle = records["handle"].astype(np.uint64)
    src["slot"], src["gen"] = handle & np.uint64(0xFFFFFFFF), handle >> np.uint64(32)
    return src


def encode_operations(records: np.ndarray) -> np.ndarray:
    """The data elements of each operation record: an ``(n, 12)`` uint32
    array of canonical values.  EncodingError naming the first record and
    field outside the domain (nothing is returned then)."""
    _check_ops(records)
    _refuse_domain(records)
    src = _sources(records)
    # one contiguous column per element, transposed once at the end
    out = np.zeros((DATA_ELEMENTS, len(records)), dtype=np.uint64)
    for element, source, lo, width, offset in _MOVES:
        piece = src[source] >> np.uint64(lo) if lo else src[source]
        piece = piece & np.uint64((1 << width) - 1)
        out[element] |= piece << np.uint64(offset) if offset else piece
    return np.ascontiguousarray(out.T, dtype=np.uint32)


def _moves(layout: Sequence[SubField]) -> tuple[tuple[int, str, int, int, int], ...]:
    """The layout as bit moves (element, source, lo, width, offset): each
    run of sub-fields that carries adjacent bits of one source to adjacent
    bits of one element merged into one move (37 sub-fields, 20 moves:
    encode_operations makes about half the array passes, 0.96 -> 0.61 ms
    at 2^14 records)."""
    moves: list[list] = []
    for sf in layout:
        m = moves[-1] if moves else None
        if m and (m[0], m[1]) == (sf.element, sf.source) and m[2] + m[3] == sf.lo and m[4] + m[3] == sf.offset:
            m[3] += sf.width
        else:
            moves.append([sf.element, sf.source, sf.lo, sf.width, sf.offset])
    return tuple(tuple(m) for m in moves)


_MOVES = _moves(OPERATION_LAYOUT)


def decode_operations(elements: np.ndarray) -> np.ndarray:
    """The records whose data elements these are: an OP_DTYPE array with
    every field the leaf carries set and `seq`, `symbol`, `client_id`,
    `reserved` zero.  EncodingError naming the first row and element that
    is no encoding (an element at or above 2^width of its sub-fields, or
    `filled`/`trades` above MAX_QTY): the inverse of
    :func:`encode_operations` on its image, and nothing else decodes."""
    elements = np.ascontiguousarray(_check_elements(elements, "operation elements").T)
    for e, width in enumerate(ELEMENT_WIDTHS):
        bad = elements[e] >> np.uint64(width) != 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise EncodingError(f"row {i}: element e{e} = {int(elements[e, i])} is not an operation "
                                f"encoding (e{e} holds {width} bits)")
    n = elements.shape[1]
    src = {name: np.zeros(n, dtype=np.uint64) for name in SOURCE_BITS}
    for sf in OPERATION_LAYOUT:
        piece = (elements[sf.element] >> np.uint64(sf.offset)) & np.uint64((1 << sf.width) - 1)
        src[sf.source] |= piece << np.uint64(sf.lo)
    for name in ("filled", "trades"):
        bad = src[name] > MAX_QTY
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise EncodingError(f"row {i}: {name} = {int(src[name][i])} in e{8 if name == 'filled' else 9} "
                                f"is not an operation encoding ({name} <= {MAX_QTY})")
    out = np.zeros(n, dtype=OP_DTYPE)
    for name in LEAF_FIELDS:
        if name != "handle":
            out[name] = src[name]
    out["handle"] = join_handle(src["slot"], src["gen"])
    return out


def _check_elements(elements, what: str, width: int = DATA_ELEMENTS) -> np.ndarray:
    return _valid_elements(elements, what, width).astype(np.uint64)


def _valid_elements(elements, what: str, width: int) -> np.ndarray:
    """`elements` itself, once it is an (n, width) integer array with no
    negative value (TypeError, EncodingError)."""
    if not isinstance(elements, np.ndarray) or elements.dtype.kind not in "ui" or elements.ndim != 2 \
            or elements.shape[1] != width:
        raise TypeError(f"{what} must be an (n, {width}) integer array, got "
                        f"{getattr(elements, 'dtype', type(elements).__name__)} "
                        f"{getattr(elements, 'shape', '')}")
    if elements.dtype.kind == "i" and elements.size and elements.min() < 0:
        i = int(np.flatnonzero((elements < 0).any(axis=1))[0])
        raise EncodingError(f"row {i} of the {what}: a negative value")
    return elements


_TRADE_NAMES = ("i", "tn", "slot", "gen", "price", "qty")


def encode_trades(fields: np.ndarray) -> np.ndarray:
    """The data elements of trade leaves from their six fields, an ``(m, 6)``
    integer array with rows (i, tn, slot, gen, price, qty): a MATCH row's
    oi, tn, aA, oA7, oA0, fl in the lane, entries 1-6 of
    air.public_tables's trade rows from a batch's trade records.  ``(m,
    12)`` uint32, the last six zero.  EncodingError as
    :func:`trade_elements`, naming the first trade."""
    f = _check_elements(fields, "trade fields", TRADE_ELEMENTS)
    low = np.array([0, 0, 0, 0, 1, 1], dtype=np.uint64)
    top = np.array([TRADE_FIELD_LIMIT - 1] * 4 + [MAX_PRICE, MAX_QTY], dtype=np.uint64)
    bad = (f < low) | (f > top)
    if bad.any():
        k, j = (int(x) for x in np.argwhere(bad)[0])
        raise EncodingError(f"trade {k}: {_TRADE_NAMES[j]} = {int(f[k, j])} is outside a trade leaf's "
                            f"domain ({int(low[j])} <= {_TRADE_NAMES[j]} <= {int(top[j])})")
    out = np.zeros((len(f), DATA_ELEMENTS), dtype=np.uint32)
    out[:, :TRADE_ELEMENTS] = f
    return out


def dummy_elements(n: int) -> np.ndarray:
    """The data elements of n dummy leaves: zeros (a dummy differs from a
    trade by its zero price and qty, which no trade leaf has)."""
    return np.zeros((n, DATA_ELEMENTS), dtype=np.uint32)


def leaf_inputs(salts: np.ndarray, data: np.ndarray) -> np.ndarray:
    """The permutation inputs of leaves: each row 4 salt elements, then 12
    data elements, canonical uint32 ``(n, 16)``.  EncodingError naming the
    first salt or data value not below p."""
    salts = _valid_elements(salts, "salts", SALT_ELEMENTS)
    data = _valid_elements(data, "data elements", DATA_ELEMENTS)
    if len(salts) != len(data):
        raise ValueError(f"{len(salts)} salts for {len(data)} leaves")
    for what, a in (("salt", salts), ("data element", data)):
        if a.size and int(a.max()) >= F.P:         # the whole comparison only to name the first
            k, j = (int(x) for x in np.argwhere(a >= F.P)[0])
            raise EncodingError(f"leaf {k}: {what} {j} = {int(a[k, j])} is not a field element "
                                f"(below p = {F.P})")
    # each value is below p now, so it is copied into uint32 as it is (no uint64 copy between)
    out = np.empty((len(salts), SALT_ELEMENTS + DATA_ELEMENTS), dtype=np.uint32)
    out[:, :SALT_ELEMENTS], out[:, SALT_ELEMENTS:] = salts, data
    return out


def leaf_digests(salts: np.ndarray, data: np.ndarray) -> np.ndarray:
    """The leaves: prover.poseidon2.leaf (pi(x)_k + x_k, k < 8) of each
    salted input, ``(n, 8)`` canonical uint32."""
    return F.decode(poseidon2.leaf(F.encode(leaf_inputs(salts, data))))


_SIDE_MESSAGE = np.dtype({"names": ["prefix", "i", "salt", "client_id", "reserved"],
                          "formats": [f"{len(SIDE_PREFIX)}u1", "<u4", f"{SIDE_SALT_BYTES}u1", "<u8", "<u2"],
                          "offsets": [0, 15, 19, 35, 43], "itemsize": 45})


def side_leaves(records: np.ndarray, salts: np.ndarray, first_row: int = 0) -> np.ndarray:
    """The side leaves of operation records on rows first_row, first_row +
    1, ... (each row's :func:`side_leaf`), hashed in C: ``(n, 32)`` uint8.
    `salts`: ``(n, 16)`` uint8."""
    _check_ops(records)
    if not isinstance(salts, np.ndarray) or salts.dtype != np.uint8 or salts.shape != (len(records), SIDE_SALT_BYTES):
        raise TypeError(f"side salts must be a ({len(records)}, {SIDE_SALT_BYTES}) uint8 array, got "
                        f"{getattr(salts, 'dtype', type(salts).__name__)} {getattr(salts, 'shape', '')}")
    if first_row < 0 or first_row + len(records) > 1 << 32:
        raise EncodingError(f"side leaves: rows {first_row} .. {first_row + len(records) - 1} are not u32s")
    msg = np.zeros(len(records), dtype=_SIDE_MESSAGE)
    msg["prefix"] = np.frombuffer(SIDE_PREFIX, dtype=np.uint8)
    msg["i"] = np.arange(first_row, first_row + len(records), dtype=np.uint64)
    msg["salt"] = salts
    msg["client_id"], msg["reserved"] = records["client_id"], records["reserved"]
    return merkle.sha256_messages(msg.view(np.uint8).reshape(len(records), _SIDE_MESSAGE.itemsize))


assert _SIDE_MESSAGE.itemsize == len(SIDE_PREFIX) + 4 + SIDE_SALT_BYTES + 8 + 2


# ------------------------------------------------------- the lane layout --

class Piece(NamedTuple):
    """Bits lo .. lo + width - 1 of a sub-field, one lane column.  `shifts`:
    its range lookups, each of the value piece + shift against the range
    table [0, T); none for a boolean piece (a boolean constraint)."""
    lo: int
    width: int
    shifts: tuple[int, ...]

    @property
    def boolean(self) -> bool:
        return not self.shifts


class SubFieldPieces(NamedTuple):
    """A sub-field of OPERATION_LAYOUT and its pieces (none for a sub-field
    made exact through a tuple)."""
    subfield: SubField
    pieces: tuple[Piece, ...]

    def split(self, value: int) -> list[int]:
        return [value >> p.lo & (1 << p.width) - 1 for p in self.pieces]

    def join(self, pieces: Sequence[int]) -> int:
        return sum(v << p.lo for v, p in zip(pieces, self.pieces))


class LaneLayout(NamedTuple):
    """The operation leaf's sub-fields with their pieces at T = 2^log_rows
    (:func:`lane_layout`), and the counts the lane's columns and fractions
    follow from."""
    log_rows: int
    subfields: tuple[SubFieldPieces, ...]

    @property
    def range_columns(self) -> int:
        return sum(1 for s in self.subfields for p in s.pieces if not p.boolean)

    @property
    def boolean_columns(self) -> int:
        return sum(1 for s in self.subfields for p in s.pieces if p.boolean)

    @property
    def lookups(self) -> int:
        return sum(len(p.shifts) for s in self.subfields for p in s.pieces)


#: the layout is exact while every lookup value stays below p: piece +
#: shift < 2^(t + 1) <= 2^30 < p
MAX_LOG_ROWS = 29


def pieces_for(width: int, log_rows: int, exact: str) -> tuple[Piece, ...]:
    """The pieces of a sub-field of `width` bits at T = 2^log_rows: none if
    it is exact through a tuple; else split least significant first into
    pieces of log_rows bits, the top one narrower when log_rows does not
    divide the width.  A piece of exactly log_rows bits is one lookup
    (piece in [0, T)); a 1-bit piece is a boolean column; a narrower piece
    of u bits two lookups, the piece and piece + 2^t - 2^u, both in [0, T)
    exactly when the piece is below 2^u.

    The second lookup is shifted, not scaled by 2^(t - u) as air.py's top
    limbs are: the scaled value wraps mod p once (2^t - 1) 2^(t - u) passes
    p, and then more than 2^u pieces pass (at 2^20, 768 of the 2^20 values
    below T pass for a byte).  The shifted value stays below 2^(t + 1) <=
    p, so the pair is exact at every T up to 2^MAX_LOG_ROWS."""
    if exact == "tuple":
        return ()
    if exact == "boolean":
        if width != 1:
            raise ValueError(f"a boolean sub-field has 1 bit, not {width}")
        return (Piece(0, 1, ()),)
    pieces, lo = [], 0
    while lo < width:
        u = min(log_rows, width - lo)
        shifts = (0,) if u == log_rows else () if u == 1 else (0, (1 << log_rows) - (1 << u))
        pieces.append(Piece(lo, u, shifts))
        lo += u
    return tuple(pieces)


@functools.lru_cache(maxsize=None)
def lane_layout(trace_length: int) -> LaneLayout:
    """Every sub-field of OPERATION_LAYOUT with its pieces and lookups at a
    lane of `trace_length` rows (a power of two; its range table is [0, T)).
    At 2^15 it is docs/ZK.md's table: 15-bit limbs one lookup each, fh and
    the bytes two, the single bits booleans.  A sub-field keeps its pieces
    together at every T, so the lane's constraints name a sub-field (the
    limb t0, the account half a0) the same way at every T."""
    if isinstance(trace_length, bool) or not isinstance(trace_length, int) or trace_length < 2 \
            or trace_length & (trace_length - 1) or trace_length > 1 << MAX_LOG_ROWS:
        raise ValueError(f"a lane's trace length is a power of two from 2 to 2^{MAX_LOG_ROWS}, "
                         f"got {trace_length!r}")
    t = trace_length.bit_length() - 1
    return LaneLayout(t, tuple(SubFieldPieces(sf, pieces_for(sf.width, t, sf.exact))
                               for sf in OPERATION_LAYOUT))
