"""A reference engine process: what a venue's matching engine does with the
sidecar attached, for the demo, the end-to-end tests and `bench e2e`.

It matches a synthetic flow (engine/flow.py) with the engine, and after each
chunk publishes the chunk's records — with the engine's outcome as its claim
(FLAG_CLAIMED) — to the ops ring, at a chosen rate; it reads completions as
they come back.  The publish never waits: a full ring is counted, the records
that did not fit are retried on the next chunk (a real engine would do the
same from its outbound queue), and matching goes on.  It heartbeats both
rings every HEARTBEAT_S, as docs/INTEGRATION.md asks of an engine, and
marks the stream closed when it is done.

An engine continues a stream across its restarts by re-applying its own
journal of what it published (docs/INTEGRATION.md, "Engine restarts"): with
`--journal FILE` the command keeps one (every record as published, appended)
and a run re-applies it to rebuild its book, then continues the flow after
its last seq.  Either way it first asks the daemon (/status) where the
symbol's stream stands, and refuses a run whose first seq is not the one the
daemon expects (every record would be refused as replayed, or wait past a
gap).

`zksidecar loadgen` runs it from the command line (run_args); `run()` is the
library form, returning what it saw.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from zksidecar import ringbuf
from zksidecar.engine.book import Book, StreamError
from zksidecar.engine.flow import FlowParams, cleared, generate
from zksidecar.engine.records import (COMPLETION_DTYPE, FLAG_CLAIMED, OP_DTYPE, CompletionStatus,
                                      check_completions)
from zksidecar.engine.records import VERSION as RECORDS_VERSION
from zksidecar.prover import input_file

from . import arg_types

CHUNK = 64
#: seconds between heartbeats: the examples' interval, within the 0.1-1 s
#: docs/INTEGRATION.md asks for (the daemon calls a producer silent for
#: ingest.producer_stale_s, default 5 s, stale)
HEARTBEAT_S = 0.2

#: the engine journal (--journal): this header, then the operation records
#: as published, 64 bytes each (docs/FORMATS.md, "Engine journal header"; the one
#: definition is here)
JOURNAL_MAGIC = b"ZKEJ"
JOURNAL_VERSION = 1
JOURNAL_HEADER = np.dtype([("magic", "S4"), ("version", "<u2"), ("records_version", "<u2"),
                           ("symbol", "<u4"), ("capacity", "<u4")])


@dataclass
class LoadReport:
    published: int = 0
    full_events: int = 0
    seconds: float = 0.0
    completions: list = field(default_factory=list)      # COMPLETION_DTYPE arrays
    #: operations left unpublished because the ring stayed full for full_timeout
    unpublished: int = 0
    #: the ops ring's consumer as the producer last saw it (peer_status)
    consumer: str = ""

    @property
    def completed(self) -> np.ndarray:
        return np.concatenate(self.completions) if self.completions else np.zeros(0, COMPLETION_DTYPE)

    def proven_ops(self) -> int:
        c = self.completed
        ok = np.isin(c["status"], [CompletionStatus.PROVEN, CompletionStatus.DISAGREES])
        return int(c["op_count"][ok].sum())


def flow(n: int, seed: int, capacity: int, symbol: int = 0) -> np.ndarray:
    """The synthetic flow, as records ready for the engine (outcomes empty)."""
    return generate(n, seed, capacity, symbol, FlowParams(depth=max(8, capacity // 4)))


class _Heartbeat:
    """Heartbeats the rings an engine holds at most every HEARTBEAT_S, from
    whichever loop it is in (publishing, pacing, waiting)."""

    def __init__(self, *ends):
        self._ends = [e for e in ends if e is not None]
        self._due = 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now >= self._due:
            for end in self._ends:
                end.heartbeat()
            self._due = now + HEARTBEAT_S

    def sleep(self, seconds: float) -> None:
        """Sleep `seconds`, heartbeating on the way."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, HEARTBEAT_S))
            self()


def run(ops_ring: str, completions_ring: str | None, ops: np.ndarray, capacity: int,
        rate: float | None = None, lie_at: set[int] | None = None, wait_s: float = 0.0,
        progress=None, book: Book | None = None, group: str | int | None = None,
        full_timeout: float | None = None,
        journal: Callable[[np.ndarray], None] | None = None) -> LoadReport:
    """Match and publish `ops` (one symbol) at `rate` operations/s (None: as
    fast as the engine goes).  `lie_at`: indices whose claimed `filled` is
    off by one (a dishonest engine, for divergence tests).  After the last
    publish, keep reading completions for up to `wait_s` seconds, until
    every operation is covered.  `progress(report)` is called about 4 times
    a second.  `book`: the engine's state to continue from (default: empty).
    `group`: the daemon's ring.group, when its rings are made for one (the
    rings must then be that group's, mode 0660; otherwise ours, 0600).
    What the ring refused is published once matching is done, waiting for
    room; `full_timeout` (seconds; None: no limit) gives up once the ring
    has taken nothing for that long, counting what is left in
    `unpublished` (the consumer's state in `consumer`).  Both rings are
    heartbeaten throughout, and the stream marked closed at the end.
    `journal(records)` is given every run of records as it is published."""
    book = book if book is not None else Book(capacity, int(ops["symbol"][0]))
    rep = LoadReport()
    out = np.zeros(256, COMPLETION_DTYPE)
    producer = ringbuf.Producer(ops_ring, group=group)
    try:
        consumer = (ringbuf.Consumer(completions_ring, takeover=True, group=group)
                    if completions_ring else None)
    except BaseException:
        producer.close()
        raise
    beat = _Heartbeat(producer, consumer)
    publish = _Publisher(producer, rep, journal)
    backlog = ops[:0]
    t0 = time.monotonic()
    next_report = t0
    try:
        for start in range(0, len(ops), CHUNK):
            chunk = ops[start:start + CHUNK].copy()
            book.process(chunk)                          # the engine's matching
            chunk["flags"] |= FLAG_CLAIMED
            if lie_at:
                for i in range(start, start + len(chunk)):
                    if i in lie_at:
                        chunk["filled"][i - start] += 1
            backlog = np.concatenate([backlog, chunk]) if len(backlog) else chunk
            backlog = publish(backlog)                   # never waits
            beat()
            if rate:
                ahead = (start + len(chunk)) / rate - (time.monotonic() - t0)
                if ahead > 0:
                    beat.sleep(ahead)
            if consumer is not None:
                _read(consumer, out, rep)
            if progress and time.monotonic() >= next_report:
                progress(rep)
                next_report = time.monotonic() + 0.25
        rep.unpublished = _publish_rest(publish, backlog, beat, full_timeout)
        rep.consumer = producer.peer_status()
        rep.seconds = time.monotonic() - t0
        rep.full_events = producer.full_events
        deadline = time.monotonic() + wait_s
        while consumer is not None and time.monotonic() < deadline and rep.proven_ops() < len(ops):
            beat()
            if not _read(consumer, out, rep):
                time.sleep(0.01)
            if progress and time.monotonic() >= next_report:
                progress(rep)
                next_report = time.monotonic() + 0.25
        producer.mark_closed()
    finally:
        producer.close()
        if consumer is not None:
            consumer.close()
    return rep


class _Publisher:
    """Publishes what fits of a run of records, counts it and journals it;
    returns the rest."""

    def __init__(self, producer, rep: LoadReport, journal):
        self._producer, self._rep, self._journal = producer, rep, journal

    def __call__(self, records: np.ndarray) -> np.ndarray:
        sent = self._producer.publish(records)
        self._rep.published += sent
        if sent and self._journal is not None:
            self._journal(records[:sent])
        return records[sent:]


def _publish_rest(publish: _Publisher, backlog: np.ndarray, beat: _Heartbeat,
                  full_timeout: float | None) -> int:
    """Publish `backlog` (what the ring refused, in order), waiting for room;
    with `full_timeout`, give up once the ring has taken nothing for that
    many seconds.  Returns how many were left unpublished."""
    stuck_since = None
    while len(backlog):
        left = publish(backlog)
        sent = len(backlog) - len(left)
        backlog = left
        beat()
        if sent:
            stuck_since = None
            continue
        now = time.monotonic()
        stuck_since = stuck_since or now
        if full_timeout is not None and now - stuck_since >= full_timeout:
            break
        time.sleep(0.001)
    return len(backlog)


def _read(consumer, out, rep: LoadReport) -> int:
    n = consumer.drain(out)
    if n:
        rep.completions.append(check_completions(out[:n].copy()))
    return n


def add_arguments(p) -> None:
    p.add_argument("--config", default=None, metavar="FILE",
                   help="the daemon's configuration, for its ring names and admin socket "
                        "(default: built-in defaults)")
    p.add_argument("--ops", type=arg_types.positive, default=10_000, help="operations to publish")
    p.add_argument("--rate", type=arg_types.nonnegative_rate, default=2_000,
                   help="operations per second (0: flat out)")
    p.add_argument("--seed", type=arg_types.nonnegative, default=1, help="the synthetic flow's random seed")
    p.add_argument("--symbol", type=arg_types.nonnegative, default=0,
                   help="the book the flow is for")
    p.add_argument("--journal", metavar="FILE", default=None,
                   help="the engine's journal: every record published is appended to it, and a "
                        "run re-applies it first to continue the stream where it ended "
                        "(without one, a run starts the symbol's stream at seq 1)")
    p.add_argument("--wait", type=arg_types.nonnegative_seconds, default=30.0,
                   help="seconds to wait for completions, and for room once the ring has stayed "
                        "full that long after the last operation")
    p.add_argument("--json-progress", action="store_true",
                   help="progress as JSON lines on stdout (for a supervising process, e.g. the demo)")


def _daemon_status(socket_path: str) -> dict | None:
    """The daemon's /status, or None if it does not answer (not running:
    the ring keeps what is published for its next start)."""
    from .stats import StatsError, fetch_status

    try:
        return fetch_status(socket_path, timeout=2.0)
    except (StatsError, OSError, ValueError):
        return None


class JournalError(ValueError):
    """The engine's journal cannot be read or re-applied (the message says why)."""


def journal_header(symbol: int, capacity: int) -> bytes:
    """The header a new journal of `symbol` on a book of `capacity` slots starts with."""
    return np.array([(JOURNAL_MAGIC, JOURNAL_VERSION, RECORDS_VERSION, symbol, capacity)],
                    JOURNAL_HEADER).tobytes()


def read_journal(path: str | None, symbol: int, capacity: int) -> np.ndarray:
    """The records journaled at `path` (none if there is no file yet or it
    is empty): a journal of `symbol` on a book of `capacity` slots, its
    stream from seq 1 on."""
    if path is None or not os.path.exists(path):
        return np.zeros(0, OP_DTYPE)
    try:      # a regular file only: a device or a FIFO would be read forever (input_file)
        with input_file.open_regular(path) as f:
            raw = f.read()
    except OSError as exc:
        raise JournalError(exc.strerror or str(exc)) from None
    if not raw:
        return np.zeros(0, OP_DTYPE)
    _check_journal_header(raw, symbol, capacity)
    body = raw[JOURNAL_HEADER.itemsize:]
    if len(body) % OP_DTYPE.itemsize:
        raise JournalError(f"{len(body)} bytes after its header, not a whole number of "
                           f"{OP_DTYPE.itemsize}-byte operation records (a write cut short?)")
    records = np.frombuffer(body, OP_DTYPE).copy()
    if np.any(records["symbol"] != symbol) or np.any(
            records["seq"] != np.arange(1, len(records) + 1, dtype=np.uint64)):
        raise JournalError(f"its records are not one stream of symbol {symbol} from seq 1")
    return records


def _check_journal_header(raw: bytes, symbol: int, capacity: int) -> None:
    if len(raw) < JOURNAL_HEADER.itemsize or raw[:4] != JOURNAL_MAGIC:
        raise JournalError(f"not an engine journal (no {JOURNAL_MAGIC.decode()} header)")
    h = np.frombuffer(raw[:JOURNAL_HEADER.itemsize], JOURNAL_HEADER)[0]
    if h["version"] != JOURNAL_VERSION:
        raise JournalError(f"engine journal version {h['version']}, this build reads "
                           f"{JOURNAL_VERSION}")
    if h["records_version"] != RECORDS_VERSION:
        raise JournalError(f"operation records of layout version {h['records_version']}, "
                           f"this build's are {RECORDS_VERSION}")
    if (h["symbol"], h["capacity"]) != (symbol, capacity):
        raise JournalError(f"a journal of symbol {h['symbol']} on a book of {h['capacity']} "
                           f"slots, not --symbol {symbol} and [book] capacity {capacity}")


def rebuild(records: np.ndarray, capacity: int, symbol: int) -> Book:
    """The book after the journaled `records`: each re-applied, and its
    outcome checked against the claim journaled with it."""
    book = Book(capacity, symbol)
    again = cleared(records)
    try:
        book.process(again)
    except StreamError as exc:
        raise JournalError(f"its records do not re-apply: {exc}") from None
    differ = np.flatnonzero(again != records)
    if len(differ):
        raise JournalError(f"seq {int(records['seq'][differ[0]])} re-applies to another outcome "
                           "than it claimed")
    return book


def continued(ops: np.ndarray, after: np.ndarray) -> np.ndarray:
    """`ops` (a flow from seq 1) moved on to follow the records `after`:
    sequence numbers and times shifted past theirs."""
    if not len(after):
        return ops
    out = ops.copy()
    out["seq"] += after["seq"][-1]
    out["ts_ns"] += after["ts_ns"][-1]
    return out


def _stream_taken(status: dict | None, symbol: int, max_symbols: int,
                  journaled: int = 0) -> str | None:
    """Why a stream of `symbol` after `journaled` operations would not be
    taken (None if it would, or the daemon cannot be asked): the daemon
    expects another seq next (docs/INTEGRATION.md, "Engine restarts")."""
    symbols = (status or {}).get("symbols", {})
    have = symbols.get(str(symbol), {}).get("next_seq", 1) - 1
    if status is None or have == journaled:
        return None
    if journaled:
        return (f"the daemon has operations 1..{have} of symbol {symbol} and the journal "
                f"1..{journaled}: a stream continues only where the daemon has it (a journal "
                "of another daemon's stream, or a daemon on an empty journal)")
    free = next((s for s in range(len(symbols) + 1) if str(s) not in symbols), None)
    other = (f"give a symbol it has none of (--symbol {free})" if len(symbols) < max_symbols
             else f"it holds [book] max_symbols = {max_symbols} symbols already")
    return (f"the daemon already has operations 1..{have} of symbol {symbol}: without "
            "--journal a run starts a symbol's stream at seq 1 (an engine continues a stream "
            "by re-applying its own journal, docs/INTEGRATION.md, \"Engine restarts\"), so the "
            f"daemon would refuse every record as replayed; give the --journal of the runs "
            f"that made them, {other}, or start the daemon on an empty journal")


def _shortfall(rep: LoadReport, n: int, wait_s: float, ring: str,
               before: dict | None, after: dict | None) -> str:
    """Why fewer than `n` operations came back proven: one line."""
    if rep.unpublished:
        return (f"the ops ring {ring} stayed full for {wait_s:g} s and its consumer is "
                f"{rep.consumer}{' (is `zksidecar daemon` running?)' if rep.consumer != 'alive' else ''}: "
                f"{rep.unpublished:,} operations not published")
    if rep.consumer != "alive":
        return (f"the daemon is not running (the ops ring's consumer is {rep.consumer}): the "
                f"records published wait in the ring {ring} for its next start")
    if after is None:
        return ("the daemon's admin socket does not answer ([admin] socket, relative to the "
                "daemon's directory): cannot ask it what became of the records")
    refused = (after.get("counts", {}).get("rejected", 0)
               - (before or {}).get("counts", {}).get("rejected", 0))
    if refused:
        return (f"the daemon refused {refused:,} of the records (its log says why, e.g. a seq "
                "it already has: replayed)")
    return (f"{rep.proven_ops():,} of {n:,} operations proven within --wait {wait_s:g} s: the "
            "rest wait for their proofs (`zksidecar stats`; a longer --wait)")


@contextlib.contextmanager
def _journal_file(path: str | None, symbol: int, capacity: int):
    """A function appending published records to the journal at `path`
    (its header first if it is new; flushed as they go: what the ring took,
    the journal has), or None."""
    if path is None:
        yield None
        return
    with open(path, "ab") as f:
        if f.tell() == 0:
            f.write(journal_header(symbol, capacity))

        def append(records: np.ndarray) -> None:
            f.write(records.tobytes())
            f.flush()
        yield append


def run_args(args) -> int:
    """`zksidecar loadgen`: 0 when every operation came back proven, 1 if
    not (one line says why), 2 if it could not start."""
    from zksidecar.daemon.config import ConfigError, load

    try:
        # the engine's side: only the names matter, and this process runs as
        # the engine (its cores, its user), not as the daemon the machine's rules are about
        cfg = load(args.config, machine=False)
    except ConfigError as exc:
        print(f"zksidecar loadgen: {exc}", file=sys.stderr)
        return 2
    try:
        done = read_journal(args.journal, args.symbol, cfg.book.capacity)
        book = rebuild(done, cfg.book.capacity, args.symbol)
    except JournalError as exc:
        print(f"zksidecar loadgen: the journal {args.journal}: {exc}", file=sys.stderr)
        return 2
    before = _daemon_status(cfg.admin.socket)
    taken = _stream_taken(before, args.symbol, cfg.book.max_symbols, len(done))
    if taken:
        print(f"zksidecar loadgen: {taken}", file=sys.stderr)
        return 2
    ops = continued(flow(args.ops, args.seed, cfg.book.capacity, args.symbol), done)

    def show(rep: LoadReport) -> None:
        print(f"\r published {rep.published:>9,}  proven {rep.proven_ops():>9,}  "
              f"batches {len(rep.completed):>6,}", end="", file=sys.stderr, flush=True)

    def report(rep: LoadReport, done: bool = False) -> None:
        print(json.dumps({"published": rep.published, "proven": rep.proven_ops(),
                          "completions": len(rep.completed), "full_events": rep.full_events,
                          "seconds": rep.seconds, "done": done}), flush=True)

    progress = report if args.json_progress else show if os.isatty(2) else None
    try:
        with _journal_file(args.journal, args.symbol, cfg.book.capacity) as journal:
            rep = run(cfg.ring.ops, cfg.ring.completions, ops, cfg.book.capacity,
                      args.rate or None, wait_s=args.wait, progress=progress,
                      group=cfg.ring.group or None, full_timeout=args.wait, book=book,
                      journal=journal)
    except ringbuf.RingError as exc:
        print(f"zksidecar loadgen: {exc.for_cli} (is `zksidecar daemon` running with this "
              "configuration?)", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"zksidecar loadgen: the journal {args.journal}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    if args.json_progress:
        report(rep, done=True)
    print(f"\npublished {rep.published:,} operations in {rep.seconds:.1f} s "
          f"({rep.published / max(rep.seconds, 1e-9):,.0f}/s), {rep.full_events} full events; "
          f"{len(rep.completed):,} completions covering {rep.proven_ops():,} operations",
          file=sys.stderr if args.json_progress else sys.stdout)
    if rep.proven_ops() == len(ops):
        return 0
    after = _daemon_status(cfg.admin.socket)
    print(f"zksidecar loadgen: {_shortfall(rep, len(ops), args.wait, cfg.ring.ops, before, after)}",
          file=sys.stderr)
    return 1
