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

Files name orders by their own ids while the engine names them by handles,
which exist only once an order has rested; records are therefore run in
chunks, cut before any cancel of an order placed in the same chunk.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, NamedTuple, TextIO

import numpy as np

from . import records
from .book import Book
from .records import Kind, Side, Status

CHUNK = 4096
CSV_COLUMNS = ("ts_ns", "kind", "side", "price", "qty", "account", "order_id")
_SIDES = {"BUY": Side.BUY, "B": Side.BUY, "SELL": Side.SELL, "S": Side.SELL, "": 0}


class FileError(ValueError):
    """A line of a replay file that cannot be read."""


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


def _int(text: str, what: str, line: int, limit: int = (1 << 64) - 1) -> int:
    try:
        value = int(text) if text.strip() else 0
    except ValueError:
        raise FileError(f"line {line}: {what} {text!r} is not an integer") from None
    if not 0 <= value <= limit:
        raise FileError(f"line {line}: {what} {value} is out of range")
    return value


def read_csv(f: TextIO) -> Iterator[Event]:
    reader = csv.reader(f)
    header = [h.strip() for h in next(reader, [])]
    if tuple(header) != CSV_COLUMNS:
        raise FileError(f"line 1: the header must be {','.join(CSV_COLUMNS)}, not {','.join(header)}")
    u32 = 0xFFFFFFFF
    for row in reader:
        line = reader.line_num
        if not row or row[0].startswith("#"):
            continue
        if len(row) != len(CSV_COLUMNS):
            raise FileError(f"line {line}: {len(row)} fields, expected {len(CSV_COLUMNS)}")
        ts, kind, side, price, qty, account, oid = (x.strip() for x in row)
        try:
            k = Kind[kind.upper()]
        except KeyError:
            raise FileError(f"line {line}: unknown kind {kind!r} "
                            f"(one of {', '.join(x.name for x in Kind)})") from None
        if side.upper() not in _SIDES:
            raise FileError(f"line {line}: side {side!r} is not BUY or SELL")
        yield Event(_int(ts, "ts_ns", line), k, _SIDES[side.upper()], _int(price, "price", line, u32),
                    _int(qty, "qty", line, u32), _int(account, "account", line, u32),
                    _int(oid, "order_id", line))


def _lobster_time(text: str, line: int) -> int:
    """Seconds after midnight, decimal, to nanoseconds exactly."""
    whole, _, frac = text.strip().partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()) or len(frac) > 9:
        raise FileError(f"line {line}: time {text!r} is not seconds with up to 9 decimals")
    return int(whole) * 10**9 + int(frac.ljust(9, "0") or 0)


def read_lobster(f: TextIO) -> Iterator[Event]:
    for line, row in enumerate(csv.reader(f), start=1):
        if not row:
            continue
        if len(row) < 6:
            raise FileError(f"line {line}: {len(row)} fields, a LOBSTER message has 6")
        ts = _lobster_time(row[0], line)
        try:
            etype, oid, size, price, direction = (int(x) for x in row[1:6])
        except ValueError:
            raise FileError(f"line {line}: type, id, size, price and direction must be integers") from None
        if direction not in (1, -1):
            raise FileError(f"line {line}: direction {direction}, expected 1 or -1")
        side = Side.BUY if direction == 1 else Side.SELL
        other = Side.SELL if direction == 1 else Side.BUY
        size, price = max(size, 0), max(price, 0)  # bad values are the engine's to reject
        if etype == 1:
            yield Event(ts, Kind.LIMIT, side, price, size, 0, oid)
        elif etype == 2:
            yield Event(ts, Kind.REDUCE, 0, 0, size, 0, oid)
        elif etype == 3:
            yield Event(ts, Kind.CANCEL, 0, 0, 0, 0, oid)
        elif etype == 4:
            yield Event(ts, Kind.IOC, other, price, size, 0, 0)
        elif etype in (5, 6, 7):
            yield None  # counted as skipped
        else:
            raise FileError(f"line {line}: unknown LOBSTER event type {etype}")


def detect(first_line: str) -> str:
    return "csv" if first_line.lstrip().startswith("ts_ns") else "lobster"


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
