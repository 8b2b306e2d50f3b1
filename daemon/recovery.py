"""Start-up recovery: the journal replayed through the sequencer, reconciled
with the proof store.

The journal holds every record ingest took off the ring and a mark for every
batch the sequencer closed.  Replaying it through fresh shadow books closes
the same batches again (Sequencer.replay, at each mark: the cut is the mark,
not the policy).  Then each batch is settled against the store, whose proofs
are authoritative:

* a marked batch with a sound proof in the store is done (its public inputs
  must be the batch the mark describes, else start-up stops: nothing is
  ever re-cut differently from what was proven);
* one with no proof, or a proof whose bytes fail their checksums, is proven
  again (the new proof supersedes a damaged one: ProofStore.put(replace));
  the proofs read are those of the batches replayed or settled by their
  marks, so one damaged before the proven frontier is tools/reprove.py's;
* a batch the store proves but the journal lost (a journal tail lost to a
  power failure under `journal.fsync = interval | never`, after its proof
  was stored) is rebuilt from the proof's own public records, checked
  against the book the journal gives (its pre-state root must be that
  book's), and written back to the journal (its missing records and its
  mark), so the journal is whole again;
* the records after a symbol's last batch go through the live path
  (Sequencer.feed) and continue its open batch.

So after kill -9, a torn journal or a damaged proof, nothing is lost,
nothing is proven twice, and the chain has no hole.  What cannot be
reconciled (the store's proofs do not follow from the journal's book, a
damaged proof whose records the journal lost) raises ReplayMismatch naming
the symbol and batch, before anything is served.

The journal's last records are also what a restarted ingest may see again on
the ring (deferred release: they were journaled, the ring slot not yet
freed): they come back as `tail`, for ingest's Resync.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..engine.book import Book
from ..engine.invariants import CorruptState
from ..engine.records import OP_DTYPE
from ..prover.orderbook import batch_receipts, proof_file
from ..prover.orderbook.batch import BookState
from ..prover.orderbook.receipt import ReceiptError
from ..prover.orderbook.zk_chain import ZK_FILE_VERSION, content_digest_of
from ..prover.proof import ProofFormatError
from .batches import Batch
from . import snapshot
from .journal import BatchMark, Journal, OpsEntry, ReplayMismatch
from .metrics import Metrics
from .priority import ProofPriority
from .sequencer import Sequencer, by_symbol
from .snapshot import Snapshot, SnapshotError
from .store import ProofStore, StoreArchived, StoreCorrupt

log = logging.getLogger("zksidecar.recovery")

PROGRESS_EVERY_S = 5.0      # how often a long replay reports (and extends systemd's start timeout)


@dataclass
class Recovered:
    todo: list[Batch | BatchMark]   # to prove: marked batches without a sound proof, then new
                                    # ones (a mark: a batch before the newest snapshot, not rebuilt)
    tail: np.ndarray           # the journal's last records (up to a ring's worth)
    replayed_ops: int = 0
    stored: int = 0            # batches whose sound proofs the store holds
    damaged: int = 0           # stored proofs that failed their checksums: proven again
    repaired: int = 0          # batches the journal lost, rebuilt from the store
    unproven: int = 0          # batches to prove (in todo, or handed to recover's `todo`)
    unproven_ops: int = 0      # their operations
    sink: Callable[[Batch | BatchMark], None] | None = None   # where they go (None: todo)

    def add(self, item: Batch | BatchMark) -> None:
        """One more batch to prove."""
        self.unproven += 1
        self.unproven_ops += (len(item.ops) if isinstance(item, Batch)
                              else item.last_seq - item.first_seq + 1)
        if self.sink is None:
            self.todo.append(item)
        else:
            self.sink(item)


@dataclass
class _Held:
    """A symbol's journaled records not yet in a batch, with their seen times."""

    recs: list = field(default_factory=list)
    seen: list = field(default_factory=list)

    def take_all(self) -> tuple[np.ndarray, np.ndarray]:
        # one chunk is taken as it is: marks that lag far behind their records
        # (a busy sequencer) would otherwise copy the records held once per mark
        recs = _joined(self.recs, OP_DTYPE)
        seen = _joined(self.seen, np.int64)
        self.recs, self.seen = [], []
        return recs, seen

    def put_back(self, recs: np.ndarray, seen: np.ndarray) -> None:
        self.recs, self.seen = [recs], [seen]


def _joined(chunks: list, dtype) -> np.ndarray:
    if not chunks:
        return np.zeros(0, dtype)
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def recover(journal: Journal, store: ProofStore, sequencer: Sequencer, tail_records: int,
            progress: Callable[[int], None] = lambda replayed: None,
            todo: Callable[[Batch | BatchMark], None] | None = None, private=None) -> Recovered:
    """Replay `journal` into `sequencer` (fresh) and reconcile it with
    `store` (module docstring); returns what is left to prove and the
    journal's last `tail_records` records.  `progress(operations replayed)`
    is called every PROGRESS_EVERY_S seconds of a long replay.  Each batch
    left to prove goes to `todo` as it is found (default: into
    Recovered.todo), so a caller with a memory budget never holds them all.

    The replay begins at the newest usable snapshot (daemon/snapshot.py;
    unusable ones are set aside) and skips the marks of batches it already
    counts.  Batches before it that the store does not prove come as their
    journal marks, not rebuilt (the marks are read from the newest snapshot
    whose batches are all proven, the proven frontier, or from the
    journal's start): daemon/rebuild.py rebuilds each when it is proven,
    so a restart does not grow with the backlog it inherits.

    zk mode (`private`: the store's daemon/zk_store.ZkStore): a stored zk
    proof publishes no record, so a replayed batch is compared with its
    private file's records, and a batch the journal lost is rebuilt from
    them (checked against the proof's leaves first)."""
    refuse_old_chains(store)
    out = Recovered([], np.zeros(0, OP_DTYPE), sink=todo)
    report = _Progress(progress, out)
    aside: list[str] = []
    newest, frontier = _snapshots(journal, store, sequencer, aside)
    if newest is None and journal.first:
        raise ReplayMismatch(_uncovered(journal, aside))
    skip: dict[int, int] = {}
    start = None
    if newest is not None:
        if frontier is not newest:
            _marks_before(newest, frontier, journal, store, out, report)
        sequencer.restore(newest.books, newest.unstarted)
        skip, start = newest.next_batch_ids(), newest.position
        log.info("recovery: from snapshot %s (journal segment %d byte %d)", newest.path,
                 newest.segment, newest.offset)
    held: dict[int, _Held] = {}
    tail = _Tail(tail_records)
    marks = _marks_after(journal, start, skip)
    # batch ids from which a symbol has no mark and no proof: its records
    # from there on are live ones (fed as they are read, not held to the end)
    unmarked = {sym: max([m.batch_id for m in marks.get(sym, [])[-1:]] + store.batches(sym)[-1:],
                         default=-1) + 1
                for sym in set(marks) | set(store.symbols())}
    at = {sym: 0 for sym in marks}                     # each symbol's next mark in `marks`

    def ahead(symbol: int, batch_id: int) -> BatchMark | None:
        ms, k = marks.get(symbol, ()), at.get(symbol, 0)
        while k < len(ms) and ms[k].batch_id < batch_id:
            k += 1
        at[symbol] = k
        return ms[k] if k < len(ms) and ms[k].batch_id == batch_id else None

    def live(symbol: int, h: _Held) -> None:
        shadow = sequencer.shadows.get(symbol)
        if shadow is not None and shadow.next_batch_id >= unmarked.get(symbol, 0):
            for batch in sequencer.feed(*h.take_all(), time.monotonic()):
                out.add(batch)

    replay_entries(journal.replay(start), sequencer, held, skip,
                   lambda batch, mark: _settle(batch, mark, store, sequencer.capacity, out, private),
                   report=report, tail=tail, ahead=ahead, live=live)
    for symbol in store.symbols():
        h = held.setdefault(symbol, _Held())
        shadow = sequencer.shadows.get(symbol) or sequencer.shadow(symbol)
        if shadow is None:
            raise ReplayMismatch(f"the store proves symbol {symbol}, one beyond book.max_symbols "
                                 f"({sequencer.max_symbols}); raise it", unusable=True)
        for batch_id in [b for b in store.batches(symbol) if b >= shadow.next_batch_id]:
            report()
            _rebuild(batch_id, symbol, h, journal, store, sequencer, private)
            out.repaired += 1
            out.stored += 1
    now = time.monotonic()
    for symbol, h in held.items():
        recs, seen = h.take_all()
        if len(recs):
            for batch in sequencer.feed(recs, seen, now):
                out.add(batch)
    for batch in sequencer.release(now):       # records a resume freed after the last marks
        out.add(batch)
    out.tail = tail.records()
    if out.unproven or out.repaired:
        log.info("recovery: %d operations replayed; %d batches to prove, %d proofs in the store "
                 "(%d damaged, proven again; %d batches the journal had lost, rebuilt from the "
                 "store)", out.replayed_ops, out.unproven, len(store), out.damaged, out.repaired)
    return out


def _uncovered(journal: Journal, aside: list[str]) -> str:
    """Why a journal whose first segments were removed cannot be replayed
    without a snapshot, and what the operator can do."""
    why = (f"the journal begins at segment {journal.first} (the segments before it were removed) "
           "and no usable snapshot covers them")
    if not aside:
        return why
    return (f"{why}: the snapshots were damaged and set aside: {'; '.join(aside)}. The books they "
            f"held cannot be rebuilt from this journal: put a sound copy of one of them (a backup "
            f"of {journal.directory}) back under its own name, or start a new chain with an "
            "empty [journal] dir and [store] dir (the old store's proofs still verify: "
            "`zksidecar verify --store DIR`)")


class _Progress:
    """Calls `progress(operations replayed)` every PROGRESS_EVERY_S seconds."""

    def __init__(self, progress: Callable[[int], None], out: Recovered):
        self.progress, self.out = progress, out
        self.next = time.monotonic() + PROGRESS_EVERY_S

    def __call__(self) -> None:
        if time.monotonic() >= self.next:
            self.progress(self.out.replayed_ops)
            self.next = time.monotonic() + PROGRESS_EVERY_S


class _Tail:
    """The last `n` records replayed (at least; whole entries)."""

    def __init__(self, n: int):
        self.n, self.chunks, self.count = n, deque(), 0

    def add(self, recs: np.ndarray) -> None:
        self.chunks.append(recs)
        self.count += len(recs)
        while self.count - len(self.chunks[0]) >= self.n:
            self.count -= len(self.chunks.popleft())

    def records(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, OP_DTYPE)


def replay_entries(entries, sequencer: Sequencer, held: dict[int, _Held], skip: dict[int, int],
                   settle: Callable[[Batch, BatchMark], None], done: Callable[[], bool] = lambda: False,
                   report: _Progress | None = None, tail: _Tail | None = None,
                   ahead: Callable[[int, int], BatchMark | None] | None = None,
                   live: Callable[[int, _Held], None] | None = None) -> None:
    """Journal entries through `sequencer`: records held per symbol until
    their batch's mark closes it (then `settle(batch, mark)`); the marks of
    batches below `skip[symbol]` (a snapshot counts them) are passed over.
    Stops early once `done()`.  Recovery and the backlog's rebuilds
    (daemon/rebuild.py) both replay through this.

    `ahead(symbol, batch_id)`: that batch's mark if it is known before its
    entry is read (a rebuild looks ahead in the journal for it).  Such a
    batch closes as soon as its last record is held, and its entry is
    passed over when it comes: a sequencer that lags ingest writes a mark
    long after the batch's records (millions of records under overload),
    and every record of the symbol read meanwhile would be held until
    then.  `live(symbol, held)` is offered each symbol's records held after
    its marks are passed: it may take them (recovery feeds the records no
    mark follows as live ones as they are read, not all at the end)."""
    for entry in entries:
        if report is not None:
            report()
        if isinstance(entry, OpsEntry):
            recs = entry.records
            if report is not None:
                report.out.replayed_ops += len(recs)
            if tail is not None:
                tail.add(recs)
            for symbol, mine, seen in by_symbol(recs, np.full(len(recs), entry.seen_ns, np.int64)):
                if symbol not in sequencer.shadows:       # the live path's rule, in the same order
                    admitted = sequencer.admit(symbol, mine, seen)
                    if admitted is None:
                        continue
                    mine, seen = admitted
                h = held.setdefault(symbol, _Held())
                h.recs.append(mine)
                h.seen.append(seen)
                while ahead is not None and (mark := _closing(ahead, sequencer, symbol, h)):
                    skip[symbol] = mark.batch_id + 1          # its entry, read later, passed over
                    _close(mark, sequencer, h, settle)
                    if done():
                        return
                if live is not None:
                    live(symbol, h)
            continue
        if entry.batch_id < skip.get(entry.symbol, 0):
            continue
        _close(entry, sequencer, held.setdefault(entry.symbol, _Held()), settle)
        if done():
            return


def _marks_after(journal: Journal, start: tuple[int, int] | None,
                 skip: dict[int, int]) -> dict[int, list[BatchMark]]:
    """Each symbol's marks in the journal from `start`, in order, but those
    a snapshot counts (a hundred bytes a batch: what lets the replay close
    each batch at its last record instead of holding records till its
    mark, which a lagging sequencer wrote long after them)."""
    marks: dict[int, list[BatchMark]] = {}
    for entry in journal.replay(start):
        if isinstance(entry, BatchMark) and entry.batch_id >= skip.get(entry.symbol, 0):
            marks.setdefault(entry.symbol, []).append(entry)
    return marks


def _closing(ahead: Callable[[int, int], BatchMark | None], sequencer: Sequencer, symbol: int,
             h: _Held) -> BatchMark | None:
    """The mark of the symbol's next batch if `ahead` knows it and the
    records held begin with the whole batch: first_seq to last_seq, one
    after the other.  Anything else (a gap, a duplicate, a resume: a stream
    the live path refused records of) waits for the mark's entry, as every
    batch did before."""
    shadow = sequencer.shadows.get(symbol)
    mark = ahead(symbol, shadow.next_batch_id) if shadow is not None else None
    if mark is None or not any((r["seq"] == mark.last_seq).any() for r in h.recs):
        return None
    n = mark.last_seq - mark.first_seq + 1
    seqs = np.concatenate([r["seq"] for r in h.recs])[:n]
    whole = len(seqs) == n and np.array_equal(seqs, np.arange(mark.first_seq, mark.last_seq + 1,
                                                              dtype=seqs.dtype))
    return mark if whole else None


def _close(mark: BatchMark, sequencer: Sequencer, h: _Held,
           settle: Callable[[Batch, BatchMark], None]) -> None:
    """Close `mark`'s batch from the symbol's records held; the rest stay held."""
    recs, seen = h.take_all()
    batch, taken = sequencer.replay(mark, recs, seen, time.monotonic())
    h.put_back(recs[taken:], seen[taken:])
    settle(batch, mark)


def _fresh(sequencer: Sequencer) -> Sequencer:
    """A sequencer like `sequencer`, without books, journal or metrics of its own."""
    return Sequencer(sequencer.capacity, sequencer.trace_length, sequencer.policy, Metrics(),
                     max_symbols=sequencer.max_symbols, resync_after=sequencer.resync_after,
                     zk=sequencer.zk)


def refuse_unfit(snap: Snapshot, sequencer: Sequencer) -> None:
    """ReplayMismatch naming the key if the configuration changed a setting
    the chain of `snap` fixes (snapshot.unfit): nothing is set aside, so
    reverting the configuration works."""
    unfit = snapshot.unfit(snap, sequencer.capacity, sequencer.trace_length,
                           sequencer.max_symbols, sequencer.zk)
    if unfit is not None:
        section, _, name = unfit[0].partition(".")
        raise ReplayMismatch(f"the configuration changed a setting this chain fixes: [{section}] "
                             f"{name}: {unfit[1]}", unusable=True)


def refuse_other_release(path: str) -> Snapshot:
    """The snapshot at `path` (snapshot.read), or ReplayMismatch if its
    sound header says another format version or flags this build does not
    know: another release's, a newer one's (the downgrade after an
    upgrade), not damage.  Nothing is set aside: renamed, its books would
    be lost to a start whose journal's first segments retention removed,
    and to the release that wrote it, which finds it by its name."""
    try:
        return snapshot.read(path)
    except snapshot.SnapshotCorrupt as exc:
        why = snapshot.another_release(exc)
        if why is None:
            raise
        raise ReplayMismatch(why, unusable=True) from None


def _snapshots(journal: Journal, store: ProofStore, sequencer: Sequencer, aside: list[str]
               ) -> tuple[Snapshot | None, Snapshot | None]:
    """The newest usable snapshot and the proven frontier: the newest whose
    batches the store all proves (None: the journal's start).  A damaged
    snapshot is set aside, with a log line saying why (its new name and
    why, into `aside`); one the configuration does not fit stops the start
    (refuse_unfit), as does another release's (refuse_other_release)."""
    end = journal.position
    usable: list[Snapshot] = []
    for _, _, path in reversed(snapshot.listed(journal.directory)):
        problem = None
        try:
            snap = refuse_other_release(path)
            refuse_unfit(snap, sequencer)
            if snap.position > end:
                problem = (f"it resumes at journal segment {snap.segment} byte {snap.offset}, "
                           f"beyond the journal's end (segment {end[0]} byte {end[1]})")
            elif snap.segment < journal.first:
                problem = f"the journal segment {snap.segment} it resumes in was removed"
            else:
                _fresh(sequencer).restore(snap.books, snap.unstarted)   # every book checked
        except SnapshotError as exc:
            problem = str(exc)
        except (CorruptState, ValueError) as exc:
            problem = f"a book in it is damaged: {exc}"
        if problem:
            aside.append(f"{snapshot.set_aside(path, problem)} ({problem})")
            continue
        usable.append(snap)
    if not usable:
        return None, None
    frontier = next((s for s in usable if all(store.proven_through(b.symbol, b.next_batch_id)
                                              for b in s.books)), None)
    return usable[0], frontier


def _marks_before(newest: Snapshot, frontier: Snapshot | None, journal: Journal,
                  store: ProofStore, out: Recovered, report: _Progress) -> None:
    """The batches before `newest` the store does not prove, as their marks,
    into out.todo: the marks from `frontier` (None: the journal's start) up
    to `newest`, each settled against the store by its range (nothing is
    replayed: daemon/rebuild.py rebuilds a batch when it is proven)."""
    where = f"snapshot {newest.path}"
    if frontier is None and journal.first:
        raise ReplayMismatch(f"{where} counts batches the store does not prove, and the journal "
                             f"segments before {journal.first} that hold them were removed")
    start = frontier.position if frontier is not None else None
    skip = frontier.next_batch_ids() if frontier is not None else {}
    target = newest.next_batch_ids()
    expect = dict(skip)                 # each symbol's next mark
    before = out.unproven

    def reached() -> bool:
        return all(expect.get(s, 0) >= n for s, n in target.items())

    # the marks a snapshot counts end a little after its position (a
    # checkpoint marks the batches it closes after the records it sequenced)
    entries = journal.entries(start) if not reached() else ()
    for entry, _ in entries:
        report()
        if not isinstance(entry, BatchMark) or entry.batch_id < skip.get(entry.symbol, 0) \
                or entry.batch_id >= target.get(entry.symbol, 0):
            continue
        if entry.batch_id != expect.get(entry.symbol, 0):
            raise ReplayMismatch(f"symbol {entry.symbol}: the journal marks batch {entry.batch_id}, "
                                 f"expected {expect.get(entry.symbol, 0)}")
        expect[entry.symbol] = entry.batch_id + 1
        _settle_mark(entry, store, out)
        if reached():
            break
    if any(expect.get(s, 0) < n for s, n in target.items()):
        raise ReplayMismatch(f"{where} counts batches whose marks the journal does not hold")
    if out.unproven > before:
        log.info("recovery: %d batches before %s are not proven; each is rebuilt from the "
                 "journal when a worker takes it", out.unproven - before, where)


#: _stored's answer for a batch whose proof retention archived: proven
ARCHIVED = object()


def refuse_old_chains(store: ProofStore) -> None:
    """ReplayMismatch if a symbol's chain in `store` is of an earlier batch
    proof version than this build proves (docs/PROOF_FORMAT.md,
    "Migration"): a version-4 proof cannot continue a version-3 chain, so
    the daemon does not start on it.  Each symbol's newest proof whose
    bytes are kept is read (its header alone decides)."""
    for symbol in store.symbols():
        for batch_id in reversed(store.batches(symbol)):
            if store.archived(symbol, batch_id):
                continue
            try:
                version = proof_file.file_version(store.get(symbol, batch_id))
            except StoreCorrupt:
                continue            # damaged: recovery proves it again, or says why not
            if version is not None and version not in (proof_file.VERSION, ZK_FILE_VERSION):
                raise ReplayMismatch(
                    f"the proof store {store.directory} holds a version-{version} chain (symbol "
                    f"{symbol}, batch {batch_id}); this release proves batch proof version "
                    f"{proof_file.VERSION}, which cannot continue it: verify that store with the "
                    "release that wrote it, and start this one with a new store ([store] dir) "
                    "and journal (docs/PROOF_FORMAT.md, \"Migration\")", unusable=True)
            break


def _stored(mark: BatchMark, store: ProofStore, out: Recovered):
    """The public inputs of the batch's sound proof in the store, checked to
    cover the mark's operations; ARCHIVED if retention removed a proof's
    bytes; None if there is none or it is damaged (counted: it is proven
    again, the new proof superseding it)."""
    if not store.has(mark.symbol, mark.batch_id):
        return None
    if store.archived(mark.symbol, mark.batch_id):
        return ARCHIVED         # proven; retention removed the bytes (docs/STORE.md)
    try:
        public = proof_file.decode_public(store.get(mark.symbol, mark.batch_id))
    except (StoreCorrupt, ProofFormatError) as exc:
        log.warning("recovery: the stored proof of symbol %d batch %d is damaged (%s); it is "
                    "proven again from the journal", mark.symbol, mark.batch_id, exc)
        out.damaged += 1
        return None
    if (public.first_seq, public.n_ops) != (mark.first_seq, mark.last_seq - mark.first_seq + 1):
        raise ReplayMismatch(
            f"symbol {mark.symbol}: batch {mark.batch_id} is operations {mark.first_seq}.."
            f"{mark.last_seq} in the journal, but its stored proof covers {public.first_seq}.."
            f"{public.first_seq + public.n_ops - 1}")
    return public


def _settle_mark(mark: BatchMark, store: ProofStore, out: Recovered) -> None:
    """A batch known by its mark against the store: done, or to prove
    (again).  Its records are checked against the stored proof's only by
    their range here; a rebuilt batch is checked whole when it is proven."""
    public = _stored(mark, store, out)
    if public is None:
        out.add(mark)
    elif public is ARCHIVED:
        out.stored += 1
    elif (public.symbol, public.batch_id) != (mark.symbol, mark.batch_id):
        raise ReplayMismatch(f"symbol {mark.symbol}: batch {mark.batch_id}: its stored proof is "
                             f"of symbol {public.symbol} batch {public.batch_id}")
    else:
        out.stored += 1


def _settle(batch: Batch, mark: BatchMark, store: ProofStore, capacity: int,
            out: Recovered, private=None) -> None:
    """A replayed batch against the store: done, or to prove (again)."""
    public = _stored(mark, store, out)     # Sequencer.replay made the batch the mark's range
    if public is None:
        out.add(batch)
        return
    if public is ARCHIVED:
        out.stored += 1
        return
    where = f"symbol {mark.symbol}: batch {mark.batch_id}"
    if 1 << public.log2_capacity != capacity:
        raise ReplayMismatch(f"{where}: its stored proof is of a {1 << public.log2_capacity}-slot "
                             f"book; [book] capacity is {capacity}, and a chain's book capacity "
                             f"cannot change between runs: set it back to {1 << public.log2_capacity}",
                             unusable=True)
    if public.ops_length > batch.trace_length:
        raise ReplayMismatch(f"{where}: its stored proof has {public.ops_length} ops rows, over the "
                             f"cap of {batch.trace_length} ([book] trace_length, or sized for [batch] "
                             "max_batch_size); the cap may grow between runs, never shrink: set it "
                             f"to at least {public.ops_length}", unusable=True)
    if public.zk is not None:
        records = _private_records(private, mark.symbol, mark.batch_id)
    else:
        records = public.ops
    if (public.symbol, public.batch_id) != (mark.symbol, mark.batch_id) \
            or (records is not None and records.tobytes() != batch.ops.tobytes()):
        raise ReplayMismatch(f"{where}: its stored proof is of other records, or of another "
                             "chain, than the journal's")
    out.stored += 1


def _private_records(private, symbol: int, batch_id: int) -> np.ndarray | None:
    """A zk batch's records from its private file, or None (logged) if it
    cannot be read: the batch is then settled by its range alone."""
    if private is None:
        raise ReplayMismatch(f"symbol {symbol} batch {batch_id}: the store holds a zk proof, the daemon "
                             "runs in transparent mode", unusable=True)
    try:
        return private.read_private(symbol, batch_id).ops
    except ReceiptError as exc:
        log.warning("recovery: %s; symbol %d batch %d is settled against its proof by its range only",
                    exc, symbol, batch_id)
        return None


def _rebuild(batch_id: int, symbol: int, held: _Held, journal: Journal, store: ProofStore,
             sequencer: Sequencer, private=None) -> None:
    """A batch the store proves and the journal lost: replay it from the
    proof's public records, check it continues the journal's book, and write
    its missing records and its mark back to the journal."""
    shadow = sequencer.shadow(symbol)
    where = f"symbol {symbol} batch {batch_id}"
    if batch_id != shadow.next_batch_id:
        raise ReplayMismatch(f"{where} is in the store, but the journal's batches of the symbol "
                             f"end at {shadow.next_batch_id - 1}: batches in between are missing")
    try:
        proof = proof_file.decode(store.get(symbol, batch_id))
    except (StoreCorrupt, StoreArchived, ProofFormatError) as exc:
        raise ReplayMismatch(f"{where}: the journal lost its records and its stored proof is "
                             f"damaged or archived ({exc}); nothing can prove it again") from None
    public = proof.public
    ops, zk_pre = public.ops, None
    if public.zk is not None:     # a zk proof has no public records: its private file's, checked
        if private is None:
            raise ReplayMismatch(f"{where}: the store holds a zk proof, the daemon runs in transparent mode",
                                 unusable=True)
        try:
            p = private.read_private(symbol, batch_id)
            chain = private.chain(symbol)
            key = chain.batch_key(batch_id, content_digest_of(p.pre_state, p.ops, p.trades, public.zk.resumed))
            batch_receipts.private_of(proof, key, p.ops, p.trades)
        except (ReceiptError, ValueError) as exc:
            raise ReplayMismatch(f"{where}: the journal lost its records, and a zk proof carries none: its "
                                 f"private file cannot give them ({exc}); nothing can prove it again") from None
        ops, zk_pre = p.ops, (chain, p.pre_state)
    if public.ops_length > shadow.trace_length or 1 << public.log2_capacity != shadow.book.capacity:
        raise ReplayMismatch(f"{where}: its stored proof has a {public.ops_length}-row ops trace "
                             f"of a {1 << public.log2_capacity}-slot book; the configuration says "
                             f"at most {shadow.trace_length} rows, {shadow.book.capacity} slots", unusable=True)
    # it may begin where its stream resumed past a gap the journal lost too
    first_ts = int(ops["ts_ns"][0])
    resumed = shadow.needs_resume(public.first_seq, first_ts)
    book = Book.from_cells(shadow.book.cells, validate=False)
    if resumed:
        book.resume(public.first_seq, first_ts)
    if zk_pre is not None:
        starts_elsewhere = zk_pre[0].pre_state_digest(book.cells, shadow.proven_ts) != zk_pre[1]
    else:
        state = BookState.of(book, proof.proof.options.log_blowup)
        starts_elsewhere = (state.root, state.link) != (public.pre_root, public.pre_link)
    if starts_elsewhere:
        raise ReplayMismatch(f"{where}: its stored proof starts from another book than the "
                             "journal's records give")
    recs, seen = held.take_all()
    mark = BatchMark(symbol, batch_id, public.first_seq, public.first_seq + len(ops) - 1,
                     int(ProofPriority.NORMAL), resumed)
    batch, _ = sequencer.replay(mark, ops, np.zeros(len(ops), np.int64), time.monotonic())
    if batch.ops.tobytes() != ops.tobytes():
        raise ReplayMismatch(f"{where}: its stored records do not replay to themselves")
    # the proof's records, all of them, then its mark: the next replay finds
    # them whatever the journal still held (those it has again are refused
    # there as replayed)
    journal.append_ops(ops, 0)
    journal.append_batch(mark)
    log.warning("recovery: %s was in the store but not in the journal (a lost journal tail); "
                "rebuilt from its proof and written back to the journal", where)
    later = recs["seq"] > mark.last_seq
    held.put_back(recs[later], seen[later])
