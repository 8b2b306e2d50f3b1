"""Batches rebuilt from the journal: the whole witness of a closed batch the
backlog (daemon/backlog.py) kept only as its journal mark.

The journal is the source of truth.  A batch is its mark's records run
through its symbol's shadow book from the book's state at a batch boundary:
the newest snapshot (daemon/snapshot.py) that does not count the batch yet,
or the journal's start.  The symbol's records from there are replayed as
recovery replays them (recovery.replay_entries, Sequencer.replay at each
mark), and the batch comes out closed at its mark.  A rebuilt batch is the
batch the live path closed: the same cells before it, records with their
outcomes, trades and steps, so its proof is the same bytes (proofs are
functions of their inputs).

Cursors.  The backlog is proven mostly in the order it closed (aging puts
the longest waiting first), so each replay is kept as a cursor, a symbol's
shadow book and its place in the journal, and the symbol's next batch goes
on from there: each operation is replayed about once whatever the backlog.
A batch behind every cursor of its symbol (an urgent one went first) starts
a new cursor from a snapshot; at most MAX_CURSORS are kept, the least
recently used dropped.  A cursor holds one book and at most one batch's
records (and a journal entry's): a batch closes as soon as its last record
is replayed, its mark read ahead in the journal by a second reader of the
cursor's, not when the replay reaches the mark.  A sequencer behind ingest
writes marks long after their records (~10^6 records under overload);
waiting for them held every record of the symbol read in between (50-100
MiB of the daemon's memory in `bench overload`, docs/BENCHMARKS.md).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from . import snapshot
from .batches import Batch, BatchPolicy
from .config import Config
from .journal import BatchMark, Journal, JournalError, OpsEntry, ReplayMismatch
from .metrics import Metrics
from .recovery import replay_entries
from .sequencer import Sequencer
from .snapshot import SnapshotError

log = logging.getLogger("zksidecar.rebuild")

#: replays kept open at once (each: a shadow book and a batch's records)
MAX_CURSORS = 8


@dataclass
class _Cursor:
    """A replay of one symbol's records, between two journal entries."""

    symbol: int
    sequencer: Sequencer
    position: tuple[int, int] | None         # where the next read begins (None: the start)
    skip: dict[int, int]                     # marks a snapshot already counted
    held: dict = field(default_factory=dict)
    used: float = 0.0
    marks_at: tuple[int, int] | None = None  # where the look-ahead for marks goes on
    mark: BatchMark | None = None            # the last mark it found (not yet used)

    @property
    def next_batch_id(self) -> int:
        shadow = self.sequencer.shadows.get(self.symbol)
        return shadow.next_batch_id if shadow is not None else self.skip.get(self.symbol, 0)


def sequencer_of(config: Config) -> Sequencer:
    """A sequencer of `config` with no journal or metrics of its own: the
    books a rebuild replays on (the daemon's, and `zksidecar reprove`'s)."""
    c = config
    policy = BatchPolicy(c.batch.max_batch_size, c.batch.batch_timeout_ms / 1000,
                         c.batch.critical_qty, c.batch.critical_per_s)
    return Sequencer(c.book.capacity, c.trace_length, policy, Metrics(),
                     resync_after=c.book.resync_after, zk=c.proofs.mode == "zk")


class Rebuilder:
    """Rebuilds batches of `journal` (module docstring).  `sequencer()`
    makes a fresh sequencer of the daemon's configuration, without a
    journal (recovery's side books).  Thread-safe; one rebuild at a time."""

    def __init__(self, journal: Journal, sequencer: Callable[[], Sequencer],
                 max_cursors: int = MAX_CURSORS):
        self.journal, self._sequencer, self.max_cursors = journal, sequencer, max_cursors
        self._cursors: list[_Cursor] = []
        self._lock = threading.Lock()
        self.rebuilt = 0              # batches rebuilt
        self.replayed_ops = 0         # operations replayed to rebuild them
        self.cursors_started = 0

    def batch(self, mark: BatchMark) -> Batch:
        """The batch `mark` describes, rebuilt (its priority the mark's).
        ReplayMismatch or JournalError if the journal does not give it."""
        with self._lock:
            ahead = [c for c in self._cursors
                     if c.symbol == mark.symbol and c.next_batch_id <= mark.batch_id]
            cursor = max(ahead, key=lambda c: c.next_batch_id) if ahead else self._start(mark)
            try:
                batch = self._advance(cursor, mark)
            except BaseException:
                self._drop(cursor)
                raise
            cursor.used = time.monotonic()
            self.rebuilt += 1
            return batch

    @property
    def cursors(self) -> int:
        return len(self._cursors)

    # ------------------------------------------------------------ helpers --
    def _drop(self, cursor: _Cursor) -> None:
        if cursor in self._cursors:
            self._cursors.remove(cursor)

    def _start(self, mark: BatchMark) -> _Cursor:
        """A cursor at the newest snapshot that does not count `mark`'s
        batch (or the journal's start)."""
        seq = self._sequencer()
        cursor = None
        for segment, _, path in reversed(snapshot.listed(self.journal.directory)):
            if segment < self.journal.first:
                break
            try:
                snap = snapshot.read(path)
            except (SnapshotError, FileNotFoundError):
                continue                 # set aside by recovery, or pruned meanwhile
            if snapshot.unfit(snap, seq.capacity, seq.trace_length, None, seq.zk) is not None:
                continue                 # recovery refused to start on it; not ours to judge
            ids = snap.next_batch_ids()
            if ids.get(mark.symbol, 0) > mark.batch_id:
                continue
            seq.restore([b for b in snap.books if b.symbol == mark.symbol],
                        {s: u for s, u in snap.unstarted.items() if s == mark.symbol})
            cursor = _Cursor(mark.symbol, seq, snap.position,
                             {mark.symbol: ids[mark.symbol]} if mark.symbol in ids else {},
                             marks_at=snap.position)
            break
        if cursor is None:
            if self.journal.first:
                raise ReplayMismatch(f"symbol {mark.symbol} batch {mark.batch_id}: no snapshot "
                                     "before it, and the journal's first segments were removed")
            cursor = _Cursor(mark.symbol, seq, None, {})
        self.cursors_started += 1
        cursor.used = time.monotonic()
        self._cursors.append(cursor)
        if len(self._cursors) > self.max_cursors:
            self._cursors.remove(min(self._cursors, key=lambda c: c.used))
        return cursor

    def _advance(self, cursor: _Cursor, mark: BatchMark) -> Batch:
        found: list[Batch] = []

        def settle(batch: Batch, m: BatchMark) -> None:
            if m.batch_id == mark.batch_id:
                if (m.first_seq, m.last_seq) != (mark.first_seq, mark.last_seq):
                    raise ReplayMismatch(f"symbol {mark.symbol} batch {mark.batch_id} is marked "
                                         f"{m.first_seq}..{m.last_seq} in the journal, not "
                                         f"{mark.first_seq}..{mark.last_seq}")
                found.append(batch)

        replay_entries(self._entries(cursor), cursor.sequencer, cursor.held, cursor.skip, settle,
                       done=lambda: bool(found),
                       ahead=lambda symbol, batch_id: self._mark_ahead(cursor, batch_id))
        if not found:
            raise ReplayMismatch(f"symbol {mark.symbol} batch {mark.batch_id}: its mark is not in "
                                 "the journal after the state it was rebuilt from")
        batch = found[0]
        batch.priority = type(batch.priority)(mark.priority)
        return batch

    def _mark_ahead(self, cursor: _Cursor, batch_id: int) -> BatchMark | None:
        """The mark of the cursor's symbol's batch `batch_id`, read ahead of
        the cursor's records (None: not in the journal yet).  The look-ahead
        keeps its place and only the mark it stopped at, so the journal is
        read about twice per cursor and memory holds no records for it."""
        if cursor.mark is not None and cursor.mark.batch_id == batch_id:
            return cursor.mark
        try:
            for entry, after in self.journal.entries(cursor.marks_at):
                cursor.marks_at = after
                if isinstance(entry, BatchMark) and entry.symbol == cursor.symbol and \
                        entry.batch_id >= batch_id:
                    cursor.mark = entry
                    return entry if entry.batch_id == batch_id else None
        except FileNotFoundError as exc:
            raise JournalError(exc.errno, f"journal {self.journal.directory}: {exc}") from None
        return None

    def _entries(self, cursor: _Cursor) -> Iterator[OpsEntry | BatchMark]:
        """The journal's entries of the cursor's symbol from its position;
        the position moves past each entry as it is handed over (the
        consumer takes an entry whole before asking for the next)."""
        s = cursor.symbol
        try:
            for entry, after in self.journal.entries(cursor.position):
                cursor.position = after
                if isinstance(entry, OpsEntry):
                    mine = entry.records[entry.records["symbol"] == s]
                    if len(mine):
                        self.replayed_ops += len(mine)
                        yield OpsEntry(mine, entry.seen_ns)
                elif entry.symbol == s:
                    yield entry
        except FileNotFoundError as exc:
            raise JournalError(exc.errno, f"journal {self.journal.directory}: {exc}") from None
