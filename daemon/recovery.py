"""Start-up recovery: the journal replayed through the sequencer.

The journal holds every record ingest took off the ring and a mark for every
batch the sequencer closed.  Replaying it through fresh shadow books closes
the same batches again (Sequencer.replay, at each mark: the cut is the mark,
not the policy); a marked batch with a proof in the store is done, one
without is proven again; the records after their symbol's last mark go
through the live path (Sequencer.feed) and continue the open batch.  So
after kill -9 at any point nothing is lost and nothing is proven twice.

The journal's last records are also what a restarted ingest may see again on
the ring (deferred release: they were journaled, the ring slot not yet
freed): they come back as `tail`, for ingest's Resync.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..engine.records import OP_DTYPE
from .batches import Batch
from .journal import Journal, OpsEntry
from .sequencer import Sequencer, by_symbol
from .store import ProofStore

log = logging.getLogger("zksidecar.recovery")


@dataclass
class Recovered:
    todo: list[Batch]          # batches to prove: marked ones without a proof, then new ones
    tail: np.ndarray           # the journal's last records (up to a ring's worth)
    replayed_ops: int = 0
    stored: int = 0            # marked batches whose proofs the store holds


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


def recover(journal: Journal, store: ProofStore, sequencer: Sequencer, tail_records: int
            ) -> Recovered:
    """Replay `journal` into `sequencer` (fresh); returns what is left to
    prove and the journal's last `tail_records` records."""
    todo: list[Batch] = []
    held: dict[int, _Held] = {}
    tail: deque = deque()
    tail_len = replayed = stored = 0
    for entry in journal.replay():
        if isinstance(entry, OpsEntry):
            recs = entry.records
            replayed += len(recs)
            tail.append(recs)
            tail_len += len(recs)
            while tail_len - len(tail[0]) >= tail_records:
                tail_len -= len(tail.popleft())
            for symbol, mine, seen in by_symbol(recs, np.full(len(recs), entry.seen_ns, np.int64)):
                h = held.setdefault(symbol, _Held())
                h.recs.append(mine)
                h.seen.append(seen)
            continue
        h = held.setdefault(entry.symbol, _Held())
        recs, seen = h.take_all()
        batch, taken = sequencer.replay(entry, recs, seen, time.monotonic())
        if taken < len(recs):
            h.recs, h.seen = [recs[taken:]], [seen[taken:]]
        if store.has(entry.symbol, entry.batch_id):
            stored += 1
        else:
            todo.append(batch)
    now = time.monotonic()
    for h in held.values():
        recs, seen = h.take_all()
        if len(recs):
            todo += sequencer.feed(recs, seen, now)
    if todo:
        log.info("recovery: %d batches to prove (%d operations replayed, %d proofs in the store)",
                 len(todo), replayed, len(store))
    return Recovered(todo, np.concatenate(tail) if tail else np.zeros(0, OP_DTYPE), replayed, stored)
