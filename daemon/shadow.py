"""The shadow book of one symbol: re-executes the engine's operations and
cuts them into batches.

Every operation the engine reports is run again here, by the same engine code
the proofs are about (engine/book.py in tracing mode).  Three things come of
it:

* **divergences**: an operation whose engine-claimed outcome (FLAG_CLAIMED
  set) differs from the rules' outcome is reported; the batch proof covers
  what the rules say, never the claim.
* **rejected records**: a record that does not continue the symbol's stream
  (sequence number not the next one, timestamp going back) cannot be proven;
  it stays in the journal, is reported, and is not applied.
* **batches**: the operations are cut into batches, each carrying the book's
  cells before it, which is all a proof worker needs (a batch's pre-state
  root and link are functions of those cells: prover/orderbook/batch.py).

A batch closes (BatchPolicy) when it holds `max_batch_size` operations, when
the next operation's steps would not fit the proof's trace, right after a
Critical operation (FLAG_CRITICAL, or a quantity of at least `critical_qty`),
when it is older than the timeout (tick), or at shutdown.  On restart the
journal replays the same cuts: `replay_ops` holds operations back and
`replay_mark` closes a batch exactly where the journal's mark says.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine import records
from ..engine.book import Book
from ..engine.native import lib
from ..engine.records import FLAG_CLAIMED, FLAG_CRITICAL, OP_DTYPE
from .priority import ProofPriority

#: the most steps one operation can take: STEPS_FIXED + STEPS_PER_RESTING *
#: (resting orders), from csrc/engine/zk_engine.h
STEPS_FIXED, STEPS_PER_RESTING = lib.ZK_STEPS_FIXED, lib.ZK_STEPS_PER_RESTING
#: trace rows per operation when sizing a trace automatically: the synthetic
#: flow takes ~3.8; a heavier batch is cut when its trace is full ("steps")
ROWS_PER_OP = 4


def trace_length_for(capacity: int, max_batch_size: int) -> int:
    """The smallest trace (a power of two) that holds any single operation at
    this capacity (and so the state table) and `max_batch_size` operations
    of typical size.  Padding costs as much to prove as steps, so batches
    that fill their trace are the cheapest per operation."""
    need = max(STEPS_FIXED + STEPS_PER_RESTING * capacity + 1, max_batch_size * ROWS_PER_OP,
               capacity, 16)
    return 1 << (need - 1).bit_length()


@dataclass(frozen=True)
class BatchPolicy:
    max_batch_size: int
    timeout_s: float
    trace_length: int
    critical_qty: int = 0     # 0: quantity alone never makes an operation Critical


@dataclass
class Batch:
    """A closed batch: what a proof worker proves."""

    symbol: int
    batch_id: int
    ops: np.ndarray           # OP_DTYPE, outcomes as the rules give them
    pre_cells: np.ndarray     # the book's cells before the batch
    seen_ns: np.ndarray       # per operation: when ingest saw it (time.monotonic_ns)
    priority: ProofPriority
    reason: str               # "size" | "steps" | "critical" | "timeout" | "shutdown" | "replay"
    divergences: int = 0

    @property
    def first_seq(self) -> int:
        return int(self.ops["seq"][0])

    @property
    def last_seq(self) -> int:
        return int(self.ops["seq"][-1])


@dataclass
class Divergence:
    symbol: int
    seq: int
    claimed: dict
    computed: dict


@dataclass
class Rejected:
    symbol: int
    seq: int
    why: str


@dataclass
class Applied:
    closed: list[Batch] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class ShadowBook:
    def __init__(self, symbol: int, capacity: int, policy: BatchPolicy, next_batch_id: int = 0):
        if policy.trace_length < STEPS_FIXED + STEPS_PER_RESTING * capacity + 1:
            raise ValueError(f"a trace of {policy.trace_length} rows cannot hold one operation at "
                             f"capacity {capacity} (up to {STEPS_FIXED + STEPS_PER_RESTING * capacity} "
                             "steps)")
        self.symbol, self.policy = symbol, policy
        self.book = Book(capacity, symbol)
        self.next_batch_id = next_batch_id
        self._open: list[np.ndarray] = []      # applied operations of the open batch
        self._open_seen: list[np.ndarray] = []
        self._open_count = self._open_steps = self._open_divergences = 0
        self._open_critical = False
        self._open_since = 0.0
        self._pre_cells: np.ndarray | None = None
        self._held: list[tuple[np.ndarray, np.ndarray]] = []   # replay: not yet applied

    # ------------------------------------------------------------- live --
    @property
    def open_count(self) -> int:
        return self._open_count

    @property
    def open_since(self) -> float:
        return self._open_since

    def apply(self, ops: np.ndarray, seen_ns: np.ndarray, now: float) -> Applied:
        """Run `ops` (OP_DTYPE, this symbol's, in order); returns the batches
        that closed, the divergences and the records that were refused."""
        out = Applied()
        i = 0
        while i < len(ops):
            i += self._apply_some(ops[i:], seen_ns[i:], now, out)
        return out

    def tick(self, now: float) -> Batch | None:
        """Close the open batch if it is older than the timeout."""
        if self._open_count and now - self._open_since >= self.policy.timeout_s:
            return self.close("timeout")
        return None

    def close(self, reason: str) -> Batch | None:
        """Close the open batch (None if it is empty)."""
        if not self._open_count:
            return None
        ops = np.concatenate(self._open)
        prio = ProofPriority.CRITICAL if self._open_critical else \
            ProofPriority.HIGH if self._open_divergences else ProofPriority.NORMAL
        batch = Batch(self.symbol, self.next_batch_id, ops, self._pre_cells,
                      np.concatenate(self._open_seen), prio, reason, self._open_divergences)
        self.next_batch_id += 1
        self._open, self._open_seen = [], []
        self._open_count = self._open_steps = self._open_divergences = 0
        self._open_critical = False
        self._pre_cells = None
        return batch

    def _critical(self, ops: np.ndarray) -> np.ndarray:
        crit = (ops["flags"] & FLAG_CRITICAL) != 0
        if self.policy.critical_qty:
            crit |= ops["qty"] >= self.policy.critical_qty
        return crit

    def _apply_some(self, ops, seen, now, out: Applied) -> int:
        """Apply a prefix of `ops` to the open batch; returns its length."""
        p = self.policy
        # 1. the stream: refuse the first record that does not continue it
        n = min(len(ops), p.max_batch_size - self._open_count)
        bad = self._first_break(ops[:n])
        if bad == 0:
            op = ops[0]
            out.rejected.append(Rejected(self.symbol, int(op["seq"]), self._why(op)))
            return 1
        n = bad if bad is not None else n
        # 2. a Critical operation ends its batch
        crit = np.flatnonzero(self._critical(ops[:n]))
        if crit.size:
            n = int(crit[0]) + 1
        # 3. run it, then keep the prefix whose steps fit the trace
        if not self._open_count:
            self._pre_cells = self.book.cells.copy()
            self._open_since = now
        work = np.array(ops[:n], dtype=OP_DTYPE)
        before = self.book.cells.copy()
        _, steps = self.book.process_traced(work)
        per_op = np.bincount(steps["op"], minlength=n)
        room = p.trace_length - 1 - self._open_steps
        fits = int(np.searchsorted(np.cumsum(per_op), room, side="right"))
        if fits < n:                                   # the trace is full: cut before op `fits`
            self.book = Book.from_cells(before)
            if fits:
                work = np.array(ops[:fits], dtype=OP_DTYPE)
                self.book.process(work)
                self._take(ops[:fits], work, seen[:fits], int(per_op[:fits].sum()), False, out)
            out.closed.append(self.close("steps"))
            return fits
        self._take(ops[:n], work, seen[:n], int(per_op.sum()), bool(crit.size), out)
        if crit.size:
            out.closed.append(self.close("critical"))
        elif self._open_count >= p.max_batch_size:
            out.closed.append(self.close("size"))
        return n

    def _take(self, claimed, computed, seen, steps: int, critical: bool, out: Applied) -> None:
        has_claim = (claimed["flags"] & FLAG_CLAIMED) != 0
        if has_claim.any():
            idx = np.flatnonzero(has_claim)
            for k in idx[records.outcome_mismatches(claimed[idx], computed[idx])]:
                fields = records.OUTCOME_FIELDS
                out.divergences.append(Divergence(
                    self.symbol, int(claimed["seq"][k]),
                    {f: int(claimed[f][k]) for f in fields}, {f: int(computed[f][k]) for f in fields}))
                self._open_divergences += 1
        self._open.append(computed)
        self._open_seen.append(np.asarray(seen, dtype=np.int64))
        self._open_count += len(computed)
        self._open_steps += steps
        self._open_critical |= critical

    def _first_break(self, ops: np.ndarray) -> int | None:
        """Index of the first record that does not continue the stream."""
        seq = ops["seq"]
        ts = ops["ts_ns"]
        expected = np.uint64(self.book.next_seq) + np.arange(len(ops), dtype=np.uint64)
        prev_ts = np.empty(len(ops), dtype=np.uint64)
        prev_ts[0] = self.book.last_ts
        prev_ts[1:] = ts[:-1]
        broken = (seq != expected) | (ts < prev_ts) | (ops["symbol"] != self.symbol)
        return int(np.argmax(broken)) if broken.any() else None

    def _why(self, op) -> str:
        if int(op["symbol"]) != self.symbol:
            return f"symbol {int(op['symbol'])} in the stream of symbol {self.symbol}"
        if int(op["seq"]) != self.book.next_seq:
            return f"sequence number {int(op['seq'])}, expected {self.book.next_seq}"
        return f"timestamp {int(op['ts_ns'])} is before the previous one, {self.book.last_ts}"

    # ----------------------------------------------------------- replay --
    def replay_ops(self, ops: np.ndarray, seen_ns: np.ndarray) -> None:
        """Journal replay: hold operations until a mark says where they end."""
        self._held.append((ops, seen_ns))

    def replay_mark(self, batch_id: int, last_seq: int) -> tuple[Batch, Applied]:
        """Journal replay: apply the held operations up to `last_seq` and close
        them as batch `batch_id`, as the daemon did before the restart."""
        if batch_id != self.next_batch_id:
            raise ValueError(f"symbol {self.symbol}: the journal marks batch {batch_id}, "
                             f"expected {self.next_batch_id}")
        ops = np.concatenate([o for o, _ in self._held]) if self._held else np.zeros(0, OP_DTYPE)
        seen = np.concatenate([s for _, s in self._held]) if self._held else np.zeros(0, np.int64)
        out, i = Applied(), 0
        while self.book.next_seq <= last_seq and i < len(ops):
            i += self._replay_some(ops[i:], seen[i:], last_seq + 1 - self.book.next_seq, out)
        self._held = [(ops[i:], seen[i:])] if i < len(ops) else []
        batch = self.close("replay")
        if batch is None or batch.last_seq != last_seq:
            raise ValueError(f"symbol {self.symbol}: batch {batch_id} does not end at {last_seq} "
                             "when the journal is replayed")
        return batch, out

    def release_held(self, now: float) -> Applied:
        """End of replay: what no mark covers runs as live operations."""
        held, self._held = self._held, []
        out = Applied()
        for ops, seen in held:
            more = self.apply(ops, seen, now)
            out.closed += more.closed
            out.divergences += more.divergences
            out.rejected += more.rejected
        return out

    def _replay_some(self, ops, seen, limit: int, out: Applied) -> int:
        """Apply up to `limit` operations of a prefix of `ops` to the open
        batch without closing it (the mark decides where it ends)."""
        bad = self._first_break(ops[:limit])
        if bad == 0:
            out.rejected.append(Rejected(self.symbol, int(ops[0]["seq"]), self._why(ops[0])))
            return 1
        n = bad if bad is not None else min(limit, len(ops))
        if not self._open_count:
            self._pre_cells = self.book.cells.copy()
        work = np.array(ops[:n], dtype=OP_DTYPE)
        _, steps = self.book.process_traced(work)
        self._take(ops[:n], work, seen[:n], len(steps), bool(self._critical(ops[:n]).any()), out)
        return n
