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
from ..engine.records import OP_DTYPE
from ..prover.orderbook import proof_file
from ..prover.orderbook.batch import BookState
from ..prover.proof import ProofFormatError
from .batches import Batch
from .journal import BatchMark, Journal, OpsEntry, ReplayMismatch
from .priority import ProofPriority
from .sequencer import Sequencer, by_symbol
from .store import ProofStore, StoreCorrupt

log = logging.getLogger("zksidecar.recovery")

PROGRESS_EVERY_S = 5.0      # how often a long replay reports (and extends systemd's start timeout)


@dataclass
class Recovered:
    todo: list[Batch]          # batches to prove: marked ones without a sound proof, then new ones
    tail: np.ndarray           # the journal's last records (up to a ring's worth)
    replayed_ops: int = 0
    stored: int = 0            # batches whose sound proofs the store holds
    damaged: int = 0           # stored proofs that failed their checksums: proven again
    repaired: int = 0          # batches the journal lost, rebuilt from the store


@dataclass
class _Held:
    """A symbol's journaled records not yet in a batch, with their seen times."""

    recs: list = field(default_factory=list)
    seen: list = field(default_factory=list)

    def take_all(self) -> tuple[np.ndarray, np.ndarray]:
        recs = np.concatenate(self.recs) if self.recs else np.zeros(0, OP_DTYPE)
        seen = np.concatenate(self.seen) if self.seen else np.zeros(0, np.int64)
        self.recs, self.seen = [], []
        return recs, seen

    def put_back(self, recs: np.ndarray, seen: np.ndarray) -> None:
        self.recs, self.seen = [recs], [seen]


def recover(journal: Journal, store: ProofStore, sequencer: Sequencer, tail_records: int,
            progress: Callable[[int], None] = lambda replayed: None) -> Recovered:
    """Replay `journal` into `sequencer` (fresh) and reconcile it with
    `store` (module docstring); returns what is left to prove and the
    journal's last `tail_records` records.  `progress(operations replayed)`
    is called every PROGRESS_EVERY_S seconds of a long replay."""
    out = Recovered([], np.zeros(0, OP_DTYPE))
    held: dict[int, _Held] = {}
    tail: deque = deque()
    tail_len = 0
    next_report = time.monotonic() + PROGRESS_EVERY_S
    for entry in journal.replay():
        if time.monotonic() >= next_report:
            progress(out.replayed_ops)
            next_report = time.monotonic() + PROGRESS_EVERY_S
        if isinstance(entry, OpsEntry):
            recs = entry.records
            out.replayed_ops += len(recs)
            tail.append(recs)
            tail_len += len(recs)
            while tail_len - len(tail[0]) >= tail_records:
                tail_len -= len(tail.popleft())
            for symbol, mine, seen in by_symbol(recs, np.full(len(recs), entry.seen_ns, np.int64)):
                if symbol not in sequencer.shadows:       # the live path's rule, in the same order
                    admitted = sequencer.admit(symbol, mine, seen)
                    if admitted is None:
                        continue
                    mine, seen = admitted
                h = held.setdefault(symbol, _Held())
                h.recs.append(mine)
                h.seen.append(seen)
            continue
        h = held.setdefault(entry.symbol, _Held())
        recs, seen = h.take_all()
        batch, taken = sequencer.replay(entry, recs, seen, time.monotonic())
        h.put_back(recs[taken:], seen[taken:])
        _settle(batch, entry, store, sequencer.capacity, out)
    for symbol in store.symbols():
        h = held.setdefault(symbol, _Held())
        shadow = sequencer.shadows.get(symbol) or sequencer.shadow(symbol)
        if shadow is None:
            raise ReplayMismatch(f"the store proves symbol {symbol}, one beyond book.max_symbols "
                                 f"({sequencer.max_symbols}); raise it")
        for batch_id in [b for b in store.batches(symbol) if b >= shadow.next_batch_id]:
            if time.monotonic() >= next_report:
                progress(out.replayed_ops)
                next_report = time.monotonic() + PROGRESS_EVERY_S
            _rebuild(batch_id, symbol, h, journal, store, sequencer)
            out.repaired += 1
            out.stored += 1
    now = time.monotonic()
    for symbol, h in held.items():
        recs, seen = h.take_all()
        if len(recs):
            out.todo += sequencer.feed(recs, seen, now)
    out.todo += sequencer.release(now)      # records a resume freed after the last marks
    out.tail = np.concatenate(tail) if tail else np.zeros(0, OP_DTYPE)
    if out.todo or out.repaired:
        log.info("recovery: %d operations replayed; %d batches to prove, %d proofs in the store "
                 "(%d damaged, proven again; %d batches the journal had lost, rebuilt from the "
                 "store)", out.replayed_ops, len(out.todo), len(store), out.damaged, out.repaired)
    return out


def _settle(batch: Batch, mark: BatchMark, store: ProofStore, capacity: int,
            out: Recovered) -> None:
    """A replayed batch against the store: done, or to prove (again)."""
    if not store.has(mark.symbol, mark.batch_id):
        out.todo.append(batch)
        return
    try:
        public = proof_file.decode_public(store.get(mark.symbol, mark.batch_id))
    except (StoreCorrupt, ProofFormatError) as exc:
        log.warning("recovery: the stored proof of symbol %d batch %d is damaged (%s); it is "
                    "proven again from the journal", mark.symbol, mark.batch_id, exc)
        out.damaged += 1
        out.todo.append(batch)
        return
    where = f"symbol {mark.symbol}: batch {mark.batch_id}"
    if (public.first_seq, len(public.ops)) != (batch.first_seq, len(batch.ops)):
        raise ReplayMismatch(
            f"{where} is operations {batch.first_seq}..{batch.last_seq} in the journal, but its "
            f"stored proof covers {public.first_seq}..{public.first_seq + len(public.ops) - 1}")
    if (public.symbol, public.batch_id, public.trace_length, 1 << public.log2_capacity) != \
            (mark.symbol, mark.batch_id, batch.trace_length, capacity) \
            or public.ops.tobytes() != batch.ops.tobytes():
        raise ReplayMismatch(f"{where}: its stored proof is of other records, or of another "
                             "chain, than the journal's")
    out.stored += 1


def _rebuild(batch_id: int, symbol: int, held: _Held, journal: Journal, store: ProofStore,
             sequencer: Sequencer) -> None:
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
    except (StoreCorrupt, ProofFormatError) as exc:
        raise ReplayMismatch(f"{where}: the journal lost its records and its stored proof is "
                             f"damaged ({exc}); nothing can prove it again") from None
    public = proof.public
    if (public.trace_length, 1 << public.log2_capacity) != (shadow.trace_length,
                                                           shadow.book.capacity):
        raise ReplayMismatch(f"{where}: its stored proof has {public.trace_length}-row traces of a "
                             f"{1 << public.log2_capacity}-slot book; the configuration says "
                             f"{shadow.trace_length} rows, {shadow.book.capacity} slots")
    # it may begin where its stream resumed past a gap the journal lost too
    first_ts = int(public.ops["ts_ns"][0])
    resumed = shadow.needs_resume(public.first_seq, first_ts)
    book = Book.from_cells(shadow.book.cells, validate=False)
    if resumed:
        book.resume(public.first_seq, first_ts)
    state = BookState.of(book, shadow.trace_length, proof.proof.options.log_blowup)
    if (state.root, state.link) != (public.pre_root, public.pre_link):
        raise ReplayMismatch(f"{where}: its stored proof starts from another book than the "
                             "journal's records give")
    recs, seen = held.take_all()
    mark = BatchMark(symbol, batch_id, public.first_seq, public.first_seq + len(public.ops) - 1,
                     int(ProofPriority.NORMAL), resumed)
    batch, _ = sequencer.replay(mark, public.ops, np.zeros(len(public.ops), np.int64),
                                time.monotonic())
    if batch.ops.tobytes() != public.ops.tobytes():
        raise ReplayMismatch(f"{where}: its stored records do not replay to themselves")
    # the proof's records, all of them, then its mark: the next replay finds
    # them whatever the journal still held (those it has again are refused
    # there as replayed)
    journal.append_ops(public.ops, 0)
    journal.append_batch(mark)
    log.warning("recovery: %s was in the store but not in the journal (a lost journal tail); "
                "rebuilt from its proof and written back to the journal", where)
    later = recs["seq"] > mark.last_seq
    held.put_back(recs[later], seen[later])
