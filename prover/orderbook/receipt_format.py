"""The receipt file, version 1 (csrc/formats/zk_receipt.h; docs/FORMATS.md,
"Receipt"): its parts as numpy dtypes, a decoded receipt, and the encoder and
decoder.

The C header is the definition; tests/test_zk_receipts.py checks every size,
offset and constant here against it through cffi.  What a receipt is for and
how it is checked is prover/orderbook/receipt.py; this module only reads and
writes the bytes.

A receipt is read from a trader's disk or from a socket, so nothing in it is
trusted: :func:`decode_receipt` checks the magic, the version and the
header's shape, that the claimed counts are at most what a receipt of that
batch can hold and fit exactly the bytes it has (before it reads any
entry), and that the entries are in their one order, and refuses with a
:class:`ReceiptFormatError` naming the field, never another exception.
:func:`encode_receipt` refuses the same way a :class:`Receipt` whose values
do not fit their fields, so a Receipt built by hand meets the same checks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...engine.records import OP_DTYPE, join_handle, record_dtype
from .zk_encoding import SALT_ELEMENTS, SIDE_SALT_BYTES   # the salts of the leaves the entries open
from .zk_lists import DIGEST_BYTES, depth_for

MAGIC = 0x52534B5A                    # b"ZKSR" as a little-endian u32
MAGIC_BYTES = b"ZKSR"
VERSION = 1
#: a trace length the header may claim: a power of two from 2 to 2^31
MAX_TRACE_LENGTH = 1 << 31
#: the most bytes a receipt file may have, refused unread past it
#: (prover/input_file.py): the largest receipt of a batch zk mode proves
#: (2^15 ops rows, every operation and trade in it) is ~33 MiB
#: (tests/test_input_file.py adds it up with receipt_size)
MAX_FILE_BYTES = 64 << 20

HEADER_DTYPE = record_dtype([
    ("magic", "<u4", 0),
    ("version", "<u2", 4),
    ("reserved", "<u2", 6),
    ("statement", "32u1", 8),
    ("batch_id", "<u8", 40),
    ("first_seq", "<u8", 48),
    ("symbol", "<u4", 56),
    ("ops", "<u4", 60),
    ("trace_length", "<u4", 64),
    ("op_count", "<u4", 68),
    ("trade_count", "<u4", 72),
    ("handle_count", "<u4", 76),
    ("ops_root", "32u1", 80),
    ("side_root", "32u1", 112),
    ("trades_root", "32u1", 144),
], 176)

OP_ENTRY_DTYPE = record_dtype([
    ("record", OP_DTYPE, 0),
    ("index", "<u4", 64),
    ("salt", "4<u4", 68),
    ("side_salt", "16u1", 84),
    ("reserved", "<u4", 100),
], 104)

TRADE_ENTRY_DTYPE = record_dtype([
    ("slot", "<u4", 0),
    ("taker", "<u4", 4),
    ("number", "<u4", 8),
    ("maker_slot", "<u4", 12),
    ("maker_gen", "<u4", 16),
    ("price", "<u4", 20),
    ("qty", "<u4", 24),
    ("salt", "4<u4", 28),
    ("reserved", "<u4", 44),
], 48)

#: a trade entry's six leaf fields, in the trade leaf's order (docs/ZK.md, 3.3)
TRADE_FIELDS = ("taker", "number", "maker_slot", "maker_gen", "price", "qty")
HANDLE_BYTES = 8
#: the header's integer fields and their widths in bits
_HEADER_INTS = {"batch_id": 64, "first_seq": 64, "symbol": 32, "ops": 32, "trace_length": 32}
_DIGESTS = ("statement", "ops_root", "side_root", "trades_root")


class ReceiptError(ValueError):
    """A receipt refused, or a receipt that cannot be made: the message says
    what and where."""


class ReceiptFormatError(ReceiptError):
    """Bytes that are not a well-formed receipt: the message names the field."""


def _with_paths(fixed: np.dtype, paths: list[str], depth: int) -> np.dtype:
    names, formats, offsets = list(fixed.names), [fixed.fields[n][0] for n in fixed.names], \
        [fixed.fields[n][1] for n in fixed.names]
    at = fixed.itemsize
    for name in paths:
        names.append(name)
        formats.append(("u1", (depth, DIGEST_BYTES)))
        offsets.append(at)
        at += depth * DIGEST_BYTES
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": at})


def op_entry_dtype(depth: int) -> np.dtype:
    """An operation entry with its two paths (`path` in the operation list,
    `side_path` in the side list) of `depth` digests each."""
    return _with_paths(OP_ENTRY_DTYPE, ["path", "side_path"], depth)


def trade_entry_dtype(depth: int) -> np.dtype:
    """A trade entry with its `path` of `depth` digests in the trade list."""
    return _with_paths(TRADE_ENTRY_DTYPE, ["path"], depth)


@dataclass
class Receipt:
    """A decoded receipt.  The header's fields by name (`statement`, the
    statement digest, and the roots as bytes); `operations` and `trades`
    structured arrays of :func:`op_entry_dtype` and :func:`trade_entry_dtype`
    at the batch's list depths; `handles` the u64 handles the receipt names
    as its holder's resting orders."""
    statement: bytes
    batch_id: int
    first_seq: int
    symbol: int
    ops: int
    trace_length: int
    ops_root: bytes
    side_root: bytes
    trades_root: bytes
    operations: np.ndarray
    trades: np.ndarray
    handles: np.ndarray

    @property
    def trade_slots(self) -> int:
        """The trade list's length, T - 1 - ops: real trades and dummies."""
        return self.trace_length - 1 - self.ops

    @property
    def op_depth(self) -> int:
        return depth_for(self.ops)

    @property
    def trade_depth(self) -> int:
        return depth_for(self.trade_slots)


def _parts(ops: int, trace_length: int) -> tuple[tuple[str, str, int], ...]:
    """What follows the header, in order: (part, its count field, bytes an
    entry takes with its paths).  The one statement of zk_receipt.h's
    length rule: receipt_size adds it up, decode_receipt reads by it."""
    d_ops, d_trades = depth_for(ops), depth_for(trace_length - 1 - ops)
    return (("operations", "op_count", op_entry_dtype(d_ops).itemsize),
            ("trades", "trade_count", trade_entry_dtype(d_trades).itemsize),
            ("handles", "handle_count", HANDLE_BYTES))


def receipt_size(ops: int, trace_length: int, op_count: int, trade_count: int, handle_count: int) -> int:
    """The exact length of a receipt with these counts (zk_receipt.h)."""
    counts = (op_count, trade_count, handle_count)
    return HEADER_DTYPE.itemsize + sum(n * size for n, (_, _, size) in zip(counts, _parts(ops, trace_length)))


def _check_shape(trace_length: int, ops: int) -> None:
    if not 2 <= trace_length <= MAX_TRACE_LENGTH or trace_length & (trace_length - 1):
        raise ReceiptFormatError(f"header: trace_length = {trace_length} is not a power of two from 2 "
                                 f"to 2^31")
    if not 1 <= ops <= trace_length - 1:
        raise ReceiptFormatError(f"header: ops = {ops} is outside 1 .. trace_length - 1 = "
                                 f"{trace_length - 1}")


def _check_counts(ops: int, trade_slots: int, op_count: int, trade_count: int, handle_count: int) -> None:
    """The most any receipt of this batch can hold: each row once, each
    trade slot once, a handle only for a trade against it.  Checked before
    the length, so a hostile file's claimed counts bound nothing."""
    for name, count, most, what in (("op_count", op_count, ops, "the batch's operations"),
                                    ("trade_count", trade_count, trade_slots, "the batch's trade slots"),
                                    ("handle_count", handle_count, trade_count, "trade_count")):
        if count > most:
            raise ReceiptFormatError(f"header: {name} = {count} is more than {what} ({most})")


def _check_canonical(operations: np.ndarray, trades: np.ndarray, handles: np.ndarray) -> None:
    """One receipt, one byte string: operations in increasing row order,
    trades in increasing (taker, number) order (the order make_receipt
    writes), handles nonzero, increasing, each one a trade's maker."""
    rows = operations["index"].astype(np.int64)
    bad = np.flatnonzero(rows[1:] <= rows[:-1])
    if len(bad):
        e = int(bad[0]) + 1
        raise ReceiptFormatError(f"operation entry {e}: row {int(rows[e])} after row {int(rows[e - 1])}"
                                 + (": the row appears twice" if rows[e] == rows[e - 1] else
                                    ": operations are in increasing row order"))
    key = trades["taker"].astype(np.uint64) << np.uint64(32) | trades["number"].astype(np.uint64)
    bad = np.flatnonzero(key[1:] <= key[:-1])
    if len(bad):
        e = int(bad[0]) + 1
        raise ReceiptFormatError(f"trade entry {e}: taker row {int(trades['taker'][e])} trade "
                                 f"{int(trades['number'][e])} after taker row {int(trades['taker'][e - 1])} trade "
                                 f"{int(trades['number'][e - 1])}: trades are in increasing (taker, number) order, "
                                 f"each once")
    if len(handles) and not handles[0]:
        raise ReceiptFormatError("handle entry 0 is 0: a handle is nonzero")
    bad = np.flatnonzero(handles[1:] <= handles[:-1])
    if len(bad):
        e = int(bad[0]) + 1
        raise ReceiptFormatError(f"handle entry {e}: {int(handles[e]):#x} after {int(handles[e - 1]):#x}: handles "
                                 f"are in increasing order, each once")
    unused = np.flatnonzero(~np.isin(handles, join_handle(trades["maker_slot"], trades["maker_gen"])))
    if len(unused):
        raise ReceiptFormatError(f"handle entry {int(unused[0])}: {int(handles[unused[0]]):#x} is the maker of "
                                 f"no trade of the receipt")


def _int_field(name: str, value, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) < 1 << bits:
        raise ReceiptFormatError(f"receipt {name}: a u{bits}, got {value!r:.40}")
    return int(value)


def encode_receipt(r: Receipt) -> bytes:
    """The receipt's bytes.  ReceiptFormatError naming the field for a value
    that does not fit its field (an integer out of range, digests that are
    not 32 bytes, arrays not of the dtypes its header's list depths give,
    handles that are not unsigned integers) or for what decode_receipt
    refuses (a shape no batch has, counts beyond what a receipt can hold,
    entries out of their order): the bytes are always ones it reads back."""
    if not isinstance(r, Receipt):
        raise ReceiptFormatError(f"a Receipt, got {type(r).__name__}")
    ints = {name: _int_field(name, getattr(r, name), bits) for name, bits in _HEADER_INTS.items()}
    _check_shape(ints["trace_length"], ints["ops"])
    for name in _DIGESTS:
        value = getattr(r, name)
        if not isinstance(value, (bytes, bytearray)) or len(value) != DIGEST_BYTES:
            raise ReceiptFormatError(f"receipt {name}: {DIGEST_BYTES} bytes, got {value!r:.40}")
    want = {"operations": op_entry_dtype(r.op_depth), "trades": trade_entry_dtype(r.trade_depth)}
    for name, dtype in want.items():
        a = getattr(r, name)
        if not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != 1:
            raise ReceiptFormatError(f"receipt {name}: a 1-D array of the entry dtype at this batch's list "
                                     f"depth, got {getattr(a, 'dtype', type(a).__name__)}")
    handles = r.handles
    if isinstance(handles, np.ndarray):
        if handles.ndim != 1 or handles.dtype.kind != "u" or handles.dtype.itemsize > HANDLE_BYTES:
            raise ReceiptFormatError(f"receipt handles: a 1-D array of unsigned integers, got {handles.dtype} "
                                     f"{handles.shape}")
    elif isinstance(handles, (list, tuple)):
        handles = [_int_field(f"handle {e}", h, 64) for e, h in enumerate(handles)]
    else:
        raise ReceiptFormatError(f"receipt handles: an array or list of u64, got {type(handles).__name__}")
    handles = np.array(handles, dtype="<u8").reshape(-1)
    _check_counts(ints["ops"], ints["trace_length"] - 1 - ints["ops"], len(r.operations), len(r.trades),
                  len(handles))
    _check_canonical(r.operations, r.trades, handles)
    h = np.zeros(1, dtype=HEADER_DTYPE)
    h["magic"], h["version"] = MAGIC, VERSION
    for name, value in ints.items():
        h[name] = value
    for name in _DIGESTS:
        h[name] = np.frombuffer(bytes(getattr(r, name)), dtype=np.uint8)
    h["op_count"], h["trade_count"], h["handle_count"] = len(r.operations), len(r.trades), len(handles)
    return h.tobytes() + r.operations.tobytes() + r.trades.tobytes() + handles.tobytes()


def decode_receipt(data) -> Receipt:
    """The receipt in `data` (bytes-like).  ReceiptFormatError naming the
    field on a short header, a wrong magic or version, a header shape no
    batch has, counts that need more (or fewer) bytes than there are,
    trailing bytes, or a reserved field that is not zero.  The counts are
    checked against the length before any entry is read; the entries are
    views of a copy of `data`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ReceiptFormatError(f"a receipt is bytes, got {type(data).__name__}")
    raw = bytes(data)
    if len(raw) < HEADER_DTYPE.itemsize:
        raise ReceiptFormatError(f"truncated: a receipt's header is {HEADER_DTYPE.itemsize} bytes, "
                                 f"got {len(raw)}")
    h = np.frombuffer(raw, dtype=HEADER_DTYPE, count=1)[0]
    if int(h["magic"]) != MAGIC:
        raise ReceiptFormatError(f"not a receipt: magic {raw[:4]!r}, expected {MAGIC_BYTES!r}")
    if int(h["version"]) != VERSION:
        raise ReceiptFormatError(f"receipt version {int(h['version'])}, this build reads {VERSION}")
    if int(h["reserved"]):
        raise ReceiptFormatError("header: reserved is not zero")
    ops, trace_length = int(h["ops"]), int(h["trace_length"])
    _check_shape(trace_length, ops)
    _check_counts(ops, trace_length - 1 - ops, *(int(h[count]) for _, count, _ in _parts(ops, trace_length)))
    at = HEADER_DTYPE.itemsize
    parts = {}
    for name, count_field, itemsize in _parts(ops, trace_length):
        count = int(h[count_field])
        need = count * itemsize
        if need > len(raw) - at:
            raise ReceiptFormatError(f"truncated or oversized: {count_field} = {count} claims {need} bytes "
                                     f"of {name} ({itemsize} each) at byte {at}, and {len(raw) - at} remain")
        parts[name] = (at, count)
        at += need
    if at != len(raw):
        raise ReceiptFormatError(f"{len(raw) - at} trailing bytes after the receipt's last field "
                                 f"(it ends at byte {at})")
    operations = np.frombuffer(raw, dtype=op_entry_dtype(depth_for(ops)), count=parts["operations"][1],
                               offset=parts["operations"][0])
    trades = np.frombuffer(raw, dtype=trade_entry_dtype(depth_for(trace_length - 1 - ops)),
                           count=parts["trades"][1], offset=parts["trades"][0])
    handles = np.frombuffer(raw, dtype="<u8", count=parts["handles"][1], offset=parts["handles"][0])
    for what, entries in (("operation", operations), ("trade", trades)):
        bad = np.flatnonzero(entries["reserved"])
        if len(bad):
            raise ReceiptFormatError(f"{what} entry {int(bad[0])}: reserved is not zero")
    _check_canonical(operations, trades, handles)
    return Receipt(statement=h["statement"].tobytes(), batch_id=int(h["batch_id"]),
                   first_seq=int(h["first_seq"]), symbol=int(h["symbol"]), ops=ops,
                   trace_length=trace_length, ops_root=h["ops_root"].tobytes(),
                   side_root=h["side_root"].tobytes(), trades_root=h["trades_root"].tobytes(),
                   operations=operations, trades=trades, handles=handles)


assert HEADER_DTYPE.itemsize % 8 == OP_ENTRY_DTYPE.itemsize % 8 == TRADE_ENTRY_DTYPE.itemsize % 8 == 0
