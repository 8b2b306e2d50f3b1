"""One symbol's order book: the state table, the batch and per-order APIs,
the canonical digest, snapshots.

The state is `Book.cells`, one flat uint32 array laid out as in
csrc/engine/zk_engine.h (header cells, then one column per field over the slots):
exactly the table a batch proof commits.  All matching happens in C
(csrc/engine/engine.c) on that array in place; this class only checks input and
shapes results.
"""
from __future__ import annotations

import hashlib
import struct
from typing import NamedTuple

import numpy as np

from . import invariants, records, trace
from .invariants import CorruptState
from .native import ffi, lib
from .records import OP_DTYPE, TRADE_DTYPE, Kind, Reason, Side, Status, join_handle

HEADER = invariants.HEADER
COLUMNS = invariants.COLUMNS
SNAPSHOT_MAGIC = b"zkbook\0\0"
SNAPSHOT_VERSION = 1
DIGEST_DOMAIN = b"zksidecar.book.v1\0"

_STATUS = tuple(Status)
_REASON = tuple(Reason)

# the per-order path, bound once (attribute lookups on lib cost ~50 ns each)
_RUN, _RUN_OK = lib.zk_book_run, lib.ZK_RUN_OK
_NEXT_SEQ_LO, _NEXT_SEQ_HI = lib.ZK_HDR_NEXT_SEQ_LO, lib.ZK_HDR_NEXT_SEQ_HI
_LAST_TS_LO, _LAST_TS_HI = lib.ZK_HDR_LAST_TS_LO, lib.ZK_HDR_LAST_TS_HI
_SYMBOL = lib.ZK_HDR_SYMBOL
_PACK = records.OP_STRUCT.pack_into
_AT = {name: OP_DTYPE.fields[name][1] for name in OP_DTYPE.names}
assert _AT["trades"] == _AT["filled"] + 4 and _AT["reason"] == _AT["status"] + 1 == _AT["trades"] + 5
_OUTCOME_AT = _AT["handle"]
_OUTCOME = struct.Struct(  # handle, filled, trades, status, reason
    f"<Q{_AT['filled'] - _AT['handle'] - 8}xIIBB").unpack_from
_TRADE_SIZE = TRADE_DTYPE.itemsize
_frombuffer = np.frombuffer
_NO_TRADES = records.trades(0)
_NO_TRADES.flags.writeable = False


def _ops_pointer(ops: np.ndarray):
    if not isinstance(ops, np.ndarray) or ops.dtype != OP_DTYPE:
        raise TypeError("ops must be a numpy array of records.OP_DTYPE")
    if ops.ndim != 1 or not ops.flags.c_contiguous or not ops.flags.writeable:
        raise TypeError("ops must be one-dimensional, C-contiguous and writeable")
    return ffi.cast("zk_op *", ffi.from_buffer(ops))


class StreamError(ValueError):
    """A batch whose sequence numbers, timestamps or symbol do not continue
    the book's stream.  Nothing was processed."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


class Outcome(NamedTuple):
    """What one operation did (the outcome fields of its record)."""
    seq: int
    status: Status
    reason: Reason
    handle: int      # new orders: the handle if (the rest of) the order rests, else 0
    filled: int
    trades: np.ndarray  # TRADE_DTYPE records


def handle_slot(handle: int) -> int:
    return handle & 0xFFFFFFFF


def handle_generation(handle: int) -> int:
    return handle >> 32


class Book:
    """A price-time priority book over `capacity` order slots (a power of two;
    slot 0 is the null slot, so capacity - 1 orders can rest)."""

    def __init__(self, capacity: int = 1 << 16, symbol: int = 0, first_seq: int = 1):
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two >= 2, not {capacity}")
        log2 = capacity.bit_length() - 1
        if not lib.ZK_MIN_LOG2_CAPACITY <= log2 <= lib.ZK_MAX_LOG2_CAPACITY:
            raise ValueError(f"capacity must be at most 2^{lib.ZK_MAX_LOG2_CAPACITY}, not {capacity}")
        if not 0 <= symbol <= 0xFFFFFFFF:
            raise ValueError(f"symbol must fit 32 bits, not {symbol}")
        if not 0 <= first_seq < 1 << 64:
            raise ValueError(f"first_seq must fit 64 bits, not {first_seq}")
        cells = np.empty(HEADER + len(COLUMNS) * capacity, dtype=np.uint32)
        lib.zk_book_init(ffi.cast("uint32_t *", ffi.from_buffer(cells)), log2, symbol, first_seq)
        self._attach(cells)

    def _attach(self, cells: np.ndarray) -> None:
        """Adopt `cells` as the state and set up views and C pointers (cffi
        pointers made once: each ffi.from_buffer costs about 0.2 us)."""
        self.cells = cells
        cap = self.capacity
        for i, name in enumerate(COLUMNS):
            view = cells[HEADER + i * cap: HEADER + (i + 1) * cap]
            view.flags.writeable = False  # read-only to callers; C writes through the pointer
            setattr(self, name, view)
        self._level_end = np.zeros(cap, dtype=np.uint32)
        self._cells_p = ffi.cast("uint32_t *", ffi.from_buffer(cells))
        self._level_end_p = ffi.cast("uint32_t *", ffi.from_buffer(self._level_end))
        self._run = ffi.new("zk_run *")
        # per-order scratch: one operation, and room for the most trades it can make
        self._one = records.ops(1)
        self._one_buf = memoryview(self._one).cast("B")
        self._one_p = ffi.cast("zk_op *", ffi.from_buffer(self._one))
        self._one_trades = records.trades(cap)
        self._one_trades_buf = memoryview(self._one_trades).cast("B")
        self._one_trades_p = ffi.cast("zk_trade *", ffi.from_buffer(self._one_trades))
        self._one_cap = cap
        self._batch_trades = records.trades(cap)

    # ------------------------------------------------------------- header --
    @property
    def capacity(self) -> int:
        return 1 << int(self.cells[lib.ZK_HDR_LOG2_CAPACITY])

    @property
    def symbol(self) -> int:
        return int(self.cells[lib.ZK_HDR_SYMBOL])

    @property
    def next_seq(self) -> int:
        c = self._cells_p
        return c[lib.ZK_HDR_NEXT_SEQ_LO] | c[lib.ZK_HDR_NEXT_SEQ_HI] << 32

    @property
    def last_ts(self) -> int:
        c = self._cells_p
        return c[lib.ZK_HDR_LAST_TS_LO] | c[lib.ZK_HDR_LAST_TS_HI] << 32

    def resume(self, seq: int, ts_ns: int) -> None:
        """A stream that lost operations resumes at the record (`seq`,
        `ts_ns`): the next sequence number becomes `seq` (never earlier),
        and the last timestamp falls to `ts_ns` if that is earlier (a clock
        that went back, or a timestamp far ahead that was applied).  Nothing
        else changes, and no operation (so no proof) covers it: a chain of
        proofs has a break here, which a verifier rebuilds with this rule."""
        if not self.next_seq <= seq < 1 << 64:
            raise ValueError(f"a stream resumes at or after {self.next_seq}, not at {seq}")
        if seq == self.next_seq and ts_ns >= self.last_ts:
            raise ValueError(f"record {seq} at {ts_ns} continues the stream: nothing to resume")
        c = self._cells_p
        c[_NEXT_SEQ_LO], c[_NEXT_SEQ_HI] = seq & 0xFFFFFFFF, seq >> 32
        if ts_ns < self.last_ts:
            c[_LAST_TS_LO], c[_LAST_TS_HI] = ts_ns & 0xFFFFFFFF, ts_ns >> 32

    def __len__(self) -> int:
        """Resting orders."""
        return int(self.cells[lib.ZK_HDR_LIVE])

    def best(self, side: Side) -> int | None:
        """Best price on `side`, None if that side is empty."""
        slot = int(self.cells[lib.ZK_HDR_BEST_BID if side == Side.BUY else lib.ZK_HDR_BEST_ASK])
        return int(self.price[slot]) if slot else None

    # -------------------------------------------------------- processing --
    def process(self, ops: np.ndarray) -> np.ndarray:
        """Run an array of operation records (OP_DTYPE) in order, writing each
        one's outcome fields in place; returns their trades (TRADE_DTYPE).

        The records must continue the book's stream: seq from next_seq up by
        one, ts_ns non-decreasing, symbol this book's.  Otherwise StreamError
        is raised and nothing changes."""
        ops_p = _ops_pointer(ops)
        done, written = 0, 0
        while True:
            buf = self._batch_trades
            code = lib.zk_book_run(self._cells_p, self._level_end_p, ops_p + done, len(ops) - done,
                                   ffi.cast("zk_trade *", ffi.from_buffer(buf)) + written,
                                   len(buf) - written, self._run)
            if code in (lib.ZK_RUN_BAD_SEQ, lib.ZK_RUN_BAD_TS, lib.ZK_RUN_BAD_SYMBOL):
                raise self._stream_error(code, ops, done + self._run.index)
            done += self._run.index
            written += self._run.trades
            if code == lib.ZK_RUN_OK:
                return buf[:written].copy()
            # ZK_RUN_TRADES_FULL: grow the buffer and go on where it stopped
            self._batch_trades = np.concatenate([buf, records.trades(len(buf))])

    def process_traced(self, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`process`, also returning every step the engine took (trace.STEP_DTYPE,
        `op` counting from 0 at ops[0]): the witness of a batch proof
        (docs/MATCHING.md, "Tracing").  Same code, same outcomes, trades and
        state as `process`: the engine's matching core is compiled a second
        time with its steps recorded."""
        ops_p = _ops_pointer(ops)
        # room for any one operation, so every call makes progress
        reserve = trace.max_steps(self.capacity)
        # not zeroed: the engine clears each record it opens (trace_open in
        # csrc/engine/engine.c), and only the records it reports are returned
        steps = np.empty(4 * len(ops) + reserve, dtype=trace.STEP_DTYPE)
        done, written, taken = 0, 0, 0
        while True:
            buf = self._batch_trades
            code = lib.zk_book_run_traced(
                self._cells_p, self._level_end_p, ops_p + done, len(ops) - done,
                ffi.cast("zk_trade *", ffi.from_buffer(buf)) + written, len(buf) - written,
                ffi.cast("zk_step *", ffi.from_buffer(steps)) + taken, len(steps) - taken, self._run)
            if code in (lib.ZK_RUN_BAD_SEQ, lib.ZK_RUN_BAD_TS, lib.ZK_RUN_BAD_SYMBOL):
                raise self._stream_error(code, ops, done + self._run.index)
            if done:                            # C counts from the ops pointer it was given
                steps[taken:taken + self._run.steps]["op"] += np.uint32(done)
            done += self._run.index
            written += self._run.trades
            taken += self._run.steps
            if code == lib.ZK_RUN_OK:
                # the steps' buffer is this call's own: its head, not a copy
                # of ~17 MB (the tail was never written, so its pages were
                # never faulted in and hold no memory)
                return buf[:written].copy(), steps[:taken]
            if code == lib.ZK_RUN_TRADES_FULL:
                self._batch_trades = np.concatenate([buf, records.trades(len(buf))])
            else:  # ZK_RUN_STEPS_FULL
                steps = np.concatenate([steps, np.empty(len(steps), dtype=trace.STEP_DTYPE)])

    def _stream_error(self, code: int, ops: np.ndarray, i: int) -> StreamError:
        op = ops[i]
        if code == lib.ZK_RUN_BAD_SEQ:
            what = f"sequence number {op['seq']}, expected {self.next_seq + i}"
        elif code == lib.ZK_RUN_BAD_TS:
            before = ops[i - 1]["ts_ns"] if i else self.last_ts
            what = f"timestamp {op['ts_ns']} is before the previous one, {before}"
        else:
            what = f"symbol {op['symbol']}, but this book is symbol {self.symbol}"
        return StreamError(f"operation {i}: {what}; nothing was processed", i)

    def submit(self, kind: Kind, side: Side = 0, price: int = 0, qty: int = 0, *, handle: int = 0,
               account: int = 0, client_id: int = 0, ts_ns: int | None = None) -> Outcome:
        """Run one operation, numbered next_seq; ts_ns defaults to the last
        timestamp (keeping runs deterministic).  The trades come back as a
        read-only TRADE_DTYPE array.

        The per-order path costs a few microseconds of Python around well
        under one of C, so it packs the record with one struct call and reads
        the outcome with another rather than field by field."""
        c = self._cells_p
        seq = c[_NEXT_SEQ_LO] | c[_NEXT_SEQ_HI] << 32
        if ts_ns is None:
            ts_ns = c[_LAST_TS_LO] | c[_LAST_TS_HI] << 32
        try:
            _PACK(self._one_buf, 0, seq, ts_ns, handle, client_id, price, qty, account,
                  c[_SYMBOL], kind, side, 0, 0, 0, 0, 0, 0)
        except struct.error as exc:
            raise ValueError(f"operation field out of range: {exc}") from None
        code = _RUN(c, self._level_end_p, self._one_p, 1, self._one_trades_p, self._one_cap,
                    self._run)
        if code != _RUN_OK:  # only a timestamp before last_ts can do this
            raise self._stream_error(code, self._one, 0)
        handle, filled, ntrades, status, reason = _OUTCOME(self._one_buf, _OUTCOME_AT)
        trades = _frombuffer(bytes(self._one_trades_buf[:ntrades * _TRADE_SIZE]), TRADE_DTYPE) \
            if ntrades else _NO_TRADES
        return Outcome(seq, _STATUS[status], _REASON[reason], handle, filled, trades)

    # ------------------------------------------------------------ reading --
    def slots(self, side: Side) -> np.ndarray:
        """Slots of `side` in priority order, best first."""
        out = np.empty(len(self), dtype=np.uint32)
        n = lib.zk_book_side_slots(self._cells_p, side, ffi.cast("uint32_t *", ffi.from_buffer(out)),
                                   len(out))
        if n > len(out):
            raise CorruptState("a side list is longer than the live-order count")
        return out[:n]

    def orders(self, side: Side) -> np.ndarray:
        """Resting orders of `side`, best first: handle, price, qty, account."""
        s = self.slots(side)
        out = np.empty(len(s), dtype=[("handle", "<u8"), ("price", "<u4"), ("qty", "<u4"),
                                      ("account", "<u4")])
        out["handle"] = join_handle(s, self.gen[s])
        for name in ("price", "qty", "account"):
            out[name] = getattr(self, name)[s]
        return out

    def digest(self) -> bytes:
        """SHA-256 of the canonical serialization (docs/MATCHING.md, "Digest"):
        the orders in priority order, without slots, handles or counters, so
        equal books have equal digests however they were reached."""
        h = hashlib.sha256(DIGEST_DOMAIN)
        h.update(struct.pack("<I", self.symbol))
        for side in (Side.BUY, Side.SELL):
            s = self.slots(side)
            rows = np.stack([self.price[s], self.qty[s], self.account[s]], axis=1)
            h.update(struct.pack("<I", len(s)))
            h.update(rows.astype("<u4").tobytes())
        return h.digest()

    # ---------------------------------------------------------- snapshots --
    def snapshot(self) -> bytes:
        """The whole state table, restorable with Book.restore."""
        head = SNAPSHOT_MAGIC + struct.pack("<II", SNAPSHOT_VERSION, len(self.cells))
        return head + self.cells.astype("<u4").tobytes()

    @classmethod
    def restore(cls, data: bytes) -> "Book":
        """The book of a snapshot; CorruptState if it is not a well-formed book."""
        fixed = len(SNAPSHOT_MAGIC) + 8
        if len(data) < fixed or data[:len(SNAPSHOT_MAGIC)] != SNAPSHOT_MAGIC:
            raise CorruptState("not a book snapshot (bad magic)")
        version, count = struct.unpack_from("<II", data, len(SNAPSHOT_MAGIC))
        if version != SNAPSHOT_VERSION:
            raise CorruptState(f"snapshot version {version}, this build reads {SNAPSHOT_VERSION}")
        if len(data) != fixed + 4 * count or count <= HEADER:
            raise CorruptState(f"snapshot of {len(data)} bytes does not hold {count} cells")
        return cls.from_cells(np.frombuffer(data, dtype="<u4", offset=fixed))

    @classmethod
    def from_cells(cls, cells: np.ndarray, validate: bool = True) -> "Book":
        """A book over a copy of a state table (e.g. another book's cells);
        CorruptState if it is not a well-formed book.  validate=False skips
        the walk of every list (invariants.check) for cells known to be a
        book's (a copy of cells a Book produced, already checked once)."""
        cells = np.array(cells, dtype=np.uint32)
        count = len(cells)
        if count <= HEADER:
            raise CorruptState(f"{count} cells cannot hold a book")
        log2 = int(cells[lib.ZK_HDR_LOG2_CAPACITY])
        if not lib.ZK_MIN_LOG2_CAPACITY <= log2 <= lib.ZK_MAX_LOG2_CAPACITY \
                or count != HEADER + (len(COLUMNS) << log2):
            raise CorruptState(f"{count} cells do not match a capacity of 2^{log2}")
        if validate:
            invariants.check(cells)
        book = cls.__new__(cls)
        book._attach(cells)
        lib.zk_book_rebuild_index(book._cells_p, book._level_end_p)
        return book
