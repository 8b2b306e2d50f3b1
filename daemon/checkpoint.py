"""Checkpoints: when the daemon snapshots its shadow books, which snapshots
it keeps, and which journal segments it may then remove (retention).

A checkpoint is due every `every_ops` operations sequenced or every
`every_s` seconds with some operations (journal.snapshot_every_ops /
_every_s).  At one, the sequencer thread closes every open batch
(CloseReason.SNAPSHOT), marks them, and this writes the snapshot at the
journal position just after the last entry it sequenced (daemon/snapshot.py).

Which snapshots are kept: the **proven frontier** (the newest whose batches
the store all proves), every one after it, and the one before it (a
fallback should the frontier's file be damaged).  A restart replays from the
newest, and rebuilds the unproven batches before it by replaying from the
frontier (daemon/recovery.py), so nothing older is ever read.

Retention: journal segments wholly before the oldest snapshot kept, last
written more than `retain_s` seconds ago (journal.retain), are removed.
Every operation in them is in a proven batch, was refused, or waits in a
snapshot (records past a gap, streams not started); no replay reads them.
Store segments whose proofs are all older than `store_retain_s`
(store.retain) are removed too, by the store's own rules
(ProofStore.plan_retention): their batches stay proven in its index.
"""
from __future__ import annotations

import logging
import math
import time

from . import snapshot
from .journal import Journal, JournalError
from .snapshot import Snapshot, SnapshotError
from .zk_store import prune_private
from .store import ProofStore, StoreError

log = logging.getLogger("zksidecar.checkpoint")


class Checkpoints:
    """The daemon's checkpoints over `journal` and `store` (module docstring)."""

    def __init__(self, journal: Journal, store: ProofStore, capacity: int, trace_length: int,
                 every_ops: int, every_s: float, retain_s: float = math.inf,
                 group: str | int | None = None, store_retain_s: float = math.inf):
        self.journal, self.store, self.group = journal, store, group
        self.capacity, self.trace_length = capacity, trace_length
        self.every_ops, self.every_s, self.retain_s = every_ops, every_s, retain_s
        self.store_retain_s = store_retain_s
        self.written = self.failed = 0
        self.last_error: str | None = None
        self.last_position: tuple[int, int] | None = None
        self._ops = 0                       # operations sequenced since the last snapshot
        self._since = time.monotonic()
        # (position, path, {symbol: next batch id}) of each snapshot on disk, oldest first
        self._kept: list[tuple[tuple[int, int], str, dict[int, int]]] = []
        for seg, off, path in snapshot.listed(journal.directory):
            try:
                snap = snapshot.read(path)
            except SnapshotError:
                continue                    # recovery set aside what it could not use
            self._kept.append(((seg, off), path, snap.next_batch_ids()))

    @property
    def enabled(self) -> bool:
        return self.every_ops > 0

    def sequenced(self, n: int) -> None:
        self._ops += n

    def due(self, now: float) -> bool:
        return self.enabled and self._ops > 0 and (
            self._ops >= self.every_ops or now - self._since >= self.every_s)

    def take(self, sequencer, position: tuple[int, int]) -> bool:
        """Snapshot `sequencer` (every batch just closed and marked) as of
        journal `position`; then prune snapshots and journal segments.
        False if it could not (a book not between batches, a full disk): it
        is tried again at the next checkpoint, and nothing else changes."""
        state = sequencer.between_batches()
        if state is None:
            return False
        books, unstarted = state
        snap = Snapshot(position[0], position[1], self.capacity, self.trace_length, books, unstarted,
                        zk=self.journal.zk)      # in its journal's mode, which its books are of
        try:
            self.journal.sync()         # the records and marks it counts are durable first
            path = snapshot.write(self.journal.directory, snap, self.journal.fsync != "never",
                                  self.group)
        except (SnapshotError, JournalError) as exc:
            self.failed += 1
            self._ops, self._since = 0, time.monotonic()      # the next try, a checkpoint later
            if self.last_error is None:
                log.error("snapshot not written: %s; the next checkpoint tries again (a restart "
                          "replays from the snapshot before)", exc)
            self.last_error = str(exc)
            return False
        if self.last_error is not None:
            log.warning("snapshots are written again")
            self.last_error = None
        self.written += 1
        self.last_position = position
        self._ops, self._since = 0, time.monotonic()
        self._kept.append((position, path, snap.next_batch_ids()))
        self.prune()
        return True

    def frontier(self) -> int | None:
        """Index in _kept of the newest snapshot whose batches are all proven."""
        for k in range(len(self._kept) - 1, -1, -1):
            if all(self.store.proven_through(s, n) for s, n in self._kept[k][2].items()):
                return k
        return None

    def prune(self) -> list[str]:
        """Remove the snapshots before the one before the frontier, then the
        journal segments before the oldest snapshot kept that are older than
        retain_s; returns the paths removed."""
        front = self.frontier()
        removed: list[str] = []
        if front is None:
            return removed
        cut = max(0, front - 1)
        for _, path, _ in self._kept[:cut]:
            try:
                snapshot.remove(path)
            except SnapshotError as exc:
                log.error("%s", exc)
                return removed
            removed.append(path)
        self._kept = self._kept[cut:]
        if math.isfinite(self.retain_s):
            gone = self.journal.remove_before(self._kept[0][0][0], self.retain_s)
            if gone:
                log.info("journal retention: removed %d segment(s), %s .. %s (every operation "
                         "in them proven, older than journal.retain)", len(gone), gone[0], gone[-1])
            removed += gone
        removed += self.prune_store()
        return removed

    def prune_store(self) -> list[str]:
        # zk mode's private files go with their proofs (daemon/zk_store.py)
        """The store segments store.retain lets go (none under "forever")."""
        if not math.isfinite(self.store_retain_s):
            return []
        try:
            plan = self.store.plan_retention(older_than_s=self.store_retain_s)
            self.store.remove_segments(plan)
        except StoreError as exc:
            log.error("store retention: %s; the next checkpoint tries again", exc)
            return []
        if plan.segments:
            log.info("store retention: removed %d segment(s) (%d proofs older than store.retain; "
                     "their batches stay proven in the index)", len(plan.segments), plan.proofs)
            gone = prune_private(self.store.directory, self.store)
            if gone:
                log.info("store retention: removed %d private file(s) with their proofs", gone)
        return [self.store.segment_path(n) for n in plan.segments]

    def status(self) -> dict:
        return {"written": self.written, "failed": self.failed, "kept": len(self._kept),
                "last_position": list(self.last_position) if self.last_position else None,
                "error": self.last_error, "journal_first_segment": self.journal.first}
