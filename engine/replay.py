"""Files of operations run through a Book: read, resolve the file's order ids
to the engine's handles, match.  `zksidecar replay FILE` (tools/replay.py)
prints the trades and the final digest; `zksidecar prove FILE` proves them.

Two file forms (docs/MATCHING.md, "Replay files"):

- CSV with the header `ts_ns,kind,side,price,qty,account,order_id`; kind is a
  Kind name, side BUY or SELL (B/S), empty fields are 0.  For CANCEL and
  REDUCE, order_id names the order to act on (an earlier row's order_id).
- LOBSTER message files (Time, Type, Order ID, Size, Price, Direction):
  submissions (1) become LIMIT orders, partial cancellations (2) REDUCEs,
  deletions (3) CANCELs, visible executions (4) IOC takers from the other
  side at the executed order's price; hidden executions, cross trades and
  halts (5, 6, 7) do not touch a visible book and are skipped.

Both forms come through one reader, read(), used by `zksidecar replay` and
`zksidecar prove` alike.  It checks every line against what a record can
hold (prices, sizes, quantities and accounts are u32, order ids and times
u64: docs/FORMATS.md) and against the form (UTF-8 text, field counts, kinds,
sides, the CSV header, told apart from a LOBSTER message by the first line).
A file with malformed lines is refused whole: FileError names each by line
number (the first MAX_SHOWN) and counts them; nothing past the first bad
line is run.

Files name orders by their own ids while the engine names them by handles,
which exist only once an order has rested; records are therefore run in
chunks, cut before any cancel of an order placed in the same chunk.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable, Iterator, NamedTuple

import numpy as np

from . import records
from .book import Book
from .native import lib
from .records import Kind, Side, Status

CHUNK = 4096
CSV_COLUMNS = ("ts_ns", "kind", "side", "price", "qty", "account", "order_id")
_SIDES = {"BUY": Side.BUY, "B": Side.BUY, "SELL": Side.SELL, "S": Side.SELL, "": 0}


MAX_SHOWN = 20          # malformed lines a FileError names; the rest are counted
#: the longest line read whole: a record's line is under 200 bytes (seven
#: u64 fields at most), so this leaves room for any comment; a longer line
#: is refused and skipped in pieces of this size, never held whole (a file
#: with no newline, or /dev/zero's endless one, costs no more memory)
MAX_LINE_BYTES = 64 << 10
U32, U64 = (1 << 32) - 1, (1 << 64) - 1   # the records' field widths (docs/FORMATS.md)
LOBSTER_COLUMNS = ("time", "type", "order_id", "size", "price", "direction")
#: the book sizes the engine builds (csrc/engine/zk_engine.h)
MIN_CAPACITY, MAX_CAPACITY = 1 << lib.ZK_MIN_LOG2_CAPACITY, 1 << lib.ZK_MAX_LOG2_CAPACITY


class FileError(ValueError):
    """A replay file refused: its malformed lines by number (the first
    MAX_SHOWN of them in `problems`, as (line, message)) and how many there
    are in all (`count`).  Nothing of a refused file is a result."""

    def __init__(self, problems: list[tuple[int, str]], count: int | None = None):
        self.problems = list(problems)
        self.count = len(self.problems) if count is None else count
        super().__init__("; ".join(f"line {n}: {m}" for n, m in self.problems)
                         + (f" (and {self.count - len(self.problems)} more malformed lines)"
                            if self.count > len(self.problems) else ""))

    def report(self, path: str) -> list[str]:
        """The lines to print: `PATH:LINE: what is wrong` for each shown, then
        a last line saying the file is refused (and how many were not shown)."""
        out = [f"{path}:{n}: {m}" for n, m in self.problems]
        more = self.count - len(self.problems)
        if self.count > 1 or more:
            out.append(f"{path}: {self.count} malformed lines"
                       + (f" (the first {len(self.problems)} shown)" if more else "")
                       + "; the file is refused")
        return out


class _Bad(Exception):
    """One line's problem, numbered by the reader that catches it."""


class Event(NamedTuple):
    """One operation as a file states it: orders named by the file's ids."""
    ts_ns: int
    kind: int
    side: int
    price: int
    qty: int
    account: int
    order_id: int  # new orders: their id; CANCEL/REDUCE: the target's id


@dataclass
class Summary:
    operations: int = 0
    trades: int = 0
    skipped: int = 0  # LOBSTER events that do not act on the visible book
    statuses: dict = field(default_factory=dict)


def check_capacity(capacity: int, lo: int = MIN_CAPACITY, hi: int = MAX_CAPACITY) -> str | None:
    """What is wrong with `capacity` as a book's order slots, or None."""
    if capacity < lo or capacity > hi or capacity & (capacity - 1):
        return (f"capacity must be a power of two from {lo} to 2^{hi.bit_length() - 1} "
                f"({hi:,}), not {capacity}")
    return None


def _decimal(text: str) -> int:
    """`text` as a whole number written in ASCII digits, with an optional
    sign and surrounding blanks; ValueError otherwise (int() alone also
    takes '1_000' and other scripts' digits, which no file of ours means)."""
    t = text.strip()
    if not (t.isascii() and t.lstrip("+-").isdigit() and len(t) - len(t.lstrip("+-")) <= 1):
        raise ValueError(text)
    return int(t)


def _int(text: str, what: str, limit: int = U64) -> int:
    try:
        value = _decimal(text) if text.strip() else 0
    except ValueError:
        raise _Bad(f"{what} {text!r} is not an integer") from None
    if not 0 <= value <= limit:
        raise _Bad(f"{what} {value} is out of range (0 to {_range(limit)})")
    return value


def _range(limit: int) -> str:
    return {U32: "2^32 - 1", U64: "2^64 - 1"}.get(limit, str(limit))


class _Lines:
    """A binary file's lines decoded as UTF-8, for csv.reader.  A line that
    is not UTF-8 is handed on decoded with replacements and marked `bad`
    (the reader reports it and drops the row it ends up in), as is one
    longer than MAX_LINE_BYTES, handed on empty.  A UTF-8 byte order mark
    before the first line is skipped."""

    def __init__(self, f: BinaryIO):
        self.f, self.number, self.bad = f, 0, None

    def __iter__(self):
        return self

    def __next__(self) -> str:
        raw = self.f.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        self.number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := self.f.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            if self.bad is None:
                self.bad = f"a line of more than {MAX_LINE_BYTES:,} bytes (a record's is under 200)"
            return "\n"
        if self.number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.bad is None:
                self.bad = f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
            return raw.decode("utf-8", "replace")


def _first_line(f: BinaryIO) -> str:
    pos = f.tell()
    raw = f.readline(MAX_LINE_BYTES + 1)
    f.seek(pos)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.decode("utf-8", "replace")


def detect(first_line: str) -> str:
    """"lobster" if the line is a LOBSTER message (a time and an integer
    type first), else "csv": a CSV file starts with its header, so a line
    that is neither is read as a header and refused naming the expected one."""
    fields = [x.strip() for x in first_line.split(",")]
    if len(fields) >= 2 and _is_time(fields[0]) and fields[1].lstrip("-").isdigit():
        return "lobster"
    return "csv" if first_line.strip() else "lobster"


def _is_time(text: str) -> bool:
    whole, _, frac = text.partition(".")
    return whole.isdigit() and (not frac or frac.isdigit())


def read(f: BinaryIO, fmt: str = "auto") -> Iterator[Event | None]:
    """The operations of a replay file opened in binary mode, in either form
    ("auto": told apart by the first line, see detect()); None for a
    LOBSTER event that does not act on the visible book.

    Every line is checked.  Events are yielded up to the first malformed
    line and none after it; the rest of the file is still read, and at its
    end a FileError names every malformed line (the first MAX_SHOWN) and
    counts them, so a file is run whole or refused, never run in part.  An
    empty file (no bytes, or blank lines only: `echo > FILE` leaves one) is
    refused: a copy cut short or a wrong path more likely than a day
    without messages."""
    auto = fmt == "auto"
    if auto:
        fmt = detect(_first_line(f))
    if fmt not in ("csv", "lobster"):
        raise ValueError(f"unknown replay file format {fmt!r}")
    lines = _Lines(f)
    reader = csv.reader(lines)
    parse = _lobster_row if fmt == "lobster" else None
    problems: list[tuple[int, str]] = []
    count = 0
    last = 0
    blank = True                # no line but blank ones yet
    while True:
        try:
            row = next(reader)
            problem = lines.bad
        except StopIteration:
            break
        except csv.Error as exc:
            row, problem = None, lines.bad or f"not a CSV line ({exc})"
        blank = blank and row == [] and problem is None
        first, last = last + 1, lines.number      # a quoted field may span lines
        lines.bad = None
        if problem is None and row is not None:
            try:
                if parse is None:                 # the CSV header: nothing else is read without it
                    _csv_header(row, auto)
                    parse = _csv_row
                    continue
                if not row or (parse is _csv_row and row[0].lstrip().startswith("#")):
                    continue
                event = parse(row, first)
            except _Bad as exc:
                problem = str(exc)
            else:
                if not count:
                    yield event
                continue
        count += 1
        if len(problems) < MAX_SHOWN:
            problems.append((first, problem))
        if parse is None:                         # no header: the rows cannot be read
            break
    if blank:      # not a file of no operations: a CSV file has its header at least
        raise FileError([(1, "the file is empty (no bytes, or blank lines only): no CSV header ("
                          + ",".join(CSV_COLUMNS) + "), no LOBSTER message")])
    if count:
        raise FileError(problems, count)


def _csv_header(row: list[str], auto: bool) -> None:
    header = [h.strip() for h in row]
    if tuple(header) == CSV_COLUMNS:
        return
    wrong = [f"column {k + 1} is {h!r}, not {c!r}" for k, (h, c) in enumerate(zip(header, CSV_COLUMNS))
             if h != c]
    if len(header) != len(CSV_COLUMNS):
        wrong.append(f"{len(header)} columns, not {len(CSV_COLUMNS)}")
    raise _Bad(f"not the CSV header {','.join(CSV_COLUMNS)}: {'; '.join(wrong[:3])}"
               + (f" (nor a LOBSTER message {','.join(LOBSTER_COLUMNS)})" if auto else ""))


def _csv_row(row: list[str], line: int) -> Event:
    if len(row) != len(CSV_COLUMNS):
        raise _Bad(f"{len(row)} fields, expected {len(CSV_COLUMNS)} ({','.join(CSV_COLUMNS)})")
    ts, kind, side, price, qty, account, oid = (x.strip() for x in row)
    try:
        k = Kind[kind.upper()]
    except KeyError:
        raise _Bad(f"unknown kind {kind!r} (one of {', '.join(x.name for x in Kind)})") from None
    if side.upper() not in _SIDES:
        raise _Bad(f"side {side!r} is not BUY or SELL")
    return Event(_int(ts, "ts_ns"), k, _SIDES[side.upper()], _int(price, "price", U32),
                 _int(qty, "qty", U32), _int(account, "account", U32), _int(oid, "order_id"))


def _lobster_time(text: str) -> int:
    """Seconds after midnight, decimal, to nanoseconds exactly."""
    whole, _, frac = text.strip().partition(".")
    if not (whole + frac).isascii() or not whole.isdigit() or (frac and not frac.isdigit()) or len(frac) > 9:
        raise _Bad(f"time {text!r} is not seconds with up to 9 decimals")
    ns = int(whole) * 10**9 + int(frac.ljust(9, "0") or 0)
    if ns > U64:
        raise _Bad(f"time {text!r} is out of range (2^64 - 1 nanoseconds at most)")
    return ns


def _lobster_row(row: list[str], line: int) -> Event | None:
    if len(row) < 6:
        raise _Bad(f"{len(row)} fields, a LOBSTER message has 6 ({','.join(LOBSTER_COLUMNS)})")
    if line == 1 and not _is_time(row[0].strip()):
        raise _Bad(f"{','.join(row)[:80]!r} is not a LOBSTER message (a header? LOBSTER "
                   "message files have none)")
    ts = _lobster_time(row[0])
    try:
        etype, oid, size, price, direction = (_decimal(x) for x in row[1:6])
    except ValueError:
        raise _Bad("type, id, size, price and direction must be integers") from None
    if direction not in (1, -1):
        raise _Bad(f"direction {direction}, expected 1 or -1")
    if etype in (5, 6, 7):
        return None  # counted as skipped
    if etype not in (1, 2, 3, 4):
        raise _Bad(f"unknown LOBSTER event type {etype}")
    side = Side.BUY if direction == 1 else Side.SELL
    other = Side.SELL if direction == 1 else Side.BUY
    # a negative size or price is the engine's to reject (as 0); one too wide
    # for the record's u32 cannot be sent at all
    size, price = max(size, 0), max(price, 0)
    if size > U32:
        raise _Bad(f"size {size} is out of range (0 to 2^32 - 1)")
    if price > U32:
        raise _Bad(f"price {price} is out of range (0 to 2^32 - 1)")
    if etype != 4 and not 0 <= oid <= U64:
        raise _Bad(f"order id {oid} is out of range (0 to 2^64 - 1)")
    if etype == 1:
        return Event(ts, Kind.LIMIT, side, price, size, 0, oid)
    if etype == 2:
        return Event(ts, Kind.REDUCE, 0, 0, size, 0, oid)
    if etype == 3:
        return Event(ts, Kind.CANCEL, 0, 0, 0, 0, oid)
    return Event(ts, Kind.IOC, other, price, size, 0, 0)


def read_csv(f: BinaryIO) -> Iterator[Event]:
    """The CSV form (read(f, "csv"))."""
    return read(f, "csv")


def read_lobster(f: BinaryIO) -> Iterator[Event | None]:
    """LOBSTER messages (read(f, "lobster"))."""
    return read(f, "lobster")


def run(events: Iterable[Event | None], book: Book,
        on_trades: Callable[[np.ndarray], None] = lambda t: None,
        on_progress: Callable[[int], None] = lambda n: None,
        on_ops: Callable[[np.ndarray], None] = lambda ops: None) -> Summary:
    """Run `events` on `book`; on_trades gets each chunk's trade records and
    on_ops its operation records (file ids resolved to engine handles,
    outcomes filled; a view, valid during the call)."""
    buf = records.ops(CHUNK)
    raw = memoryview(buf).cast("B")
    pack, size = records.OP_STRUCT.pack_into, records.OP_DTYPE.itemsize
    handles: dict[int, int] = {}
    pending: set[int] = set()
    summary = Summary()
    n = 0
    seq = book.next_seq
    last_ts = book.last_ts

    def flush():
        nonlocal n
        chunk = buf[:n]
        trades = book.process(chunk)
        new = np.flatnonzero(chunk["status"] == Status.RESTED)
        handles.update(zip(chunk["client_id"][new].tolist(), chunk["handle"][new].tolist()))
        summary.trades += len(trades)
        for status, count in zip(*np.unique(chunk["status"], return_counts=True)):
            name = Status(status).name
            summary.statuses[name] = summary.statuses.get(name, 0) + int(count)
        on_trades(trades)
        on_ops(chunk)
        on_progress(n)
        pending.clear()
        n = 0

    for ev in events:
        if ev is None:
            summary.skipped += 1
            continue
        handle = 0
        if ev.kind in (Kind.CANCEL, Kind.REDUCE):
            if ev.order_id in pending:
                flush()
            handle = handles.get(ev.order_id, 0)  # unknown ids are the engine's to reject
        else:
            pending.add(ev.order_id)
        last_ts = max(last_ts, ev.ts_ns)  # files may repeat a time; never go back
        pack(raw, n * size, seq, last_ts, handle, ev.order_id, ev.price, ev.qty, ev.account,
             book.symbol, ev.kind, ev.side, 0, 0, 0, 0, 0, 0)
        n += 1
        seq += 1
        summary.operations += 1
        if n == CHUNK:
            flush()
    if n:
        flush()
    return summary
