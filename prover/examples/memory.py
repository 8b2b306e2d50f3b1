"""Offline memory checking with LogUp, and state tables chained proof to proof.

The memory has K = N cells (N the trace length; a smaller memory is the
same table with its upper cells never touched), addresses 0..N-1.  Row i of
the trace is step i, at timestamp i + 1 (timestamp 0 is the initial state).
Every step reads one cell and writes it back (a pure read writes back the
value it read; a write stores a new one); steps past the end of the program
are padding reads of cell 0.

Segments (every segment has N rows; row a of a table is cell a):

    init   (EXTERNAL)  init_addr, init_val      the pre-state
    final              final_addr, final_val    the post-state
    ops                step, addr, read_val, read_ts, write_val, final_ts, range_m

``final`` holds exactly the columns of ``init``, so its commitment is the next
proof's ``init`` (the final timestamps live in ``ops``, which is not reused).

Constraints:

    step[0] = 0,  step' = step + 1                     (step = row index)
    init_addr, final_addr: the same (the tables list cells 0..N-1 in order)
    memory (LogUp, tuples (address, value, timestamp)):
        + (init_addr, init_val, 0)         every row: the initial writes
        + (addr, write_val, step + 1)      every row: the step's write
        - (addr, read_val, read_ts)        every row: the step's read
        - (final_addr, final_val, final_ts) every row: the final reads
      sums to 0:  init + writes = reads + final  as multisets
    timestamps (LogUp range check): step - read_ts is in [0, N), looked up in
      the table given by the step column itself (multiplicities range_m)

Why it is sound (docs/LOGUP.md gives the argument in full): write tuples are
pairwise distinct (op timestamps are distinct and >= 1; initial writes have
distinct addresses), so equal multisets pair every write with exactly one
read.  The range check gives read_ts <= step < step + 1: a step only reads a
write strictly earlier (a "negative" read_ts, p - k, equals no write's
timestamp since N < p / 2).  Per cell, the k-th access must then read the
(k-1)-th write (by induction: the earlier writes were already consumed), and
the final table reads the last one.  So every read returns the last value
written and ``final`` is the memory after the program.  An address outside
0..N-1 has no initial write, so its first access has nothing to read.

Degrees: memory fractions in two groups of two, range check one group: 3.
The quotient has degree below 2N, so proofs need log_blowup >= 1.

Chaining (prove.py's ``external``, verify.py's ``external``):

* first proof: the pre-state is a table the verifier knows (e.g. zeros).
  Both sides commit it: ``prove.SegmentCommitment.commit(table, log_blowup)``;
  the prover passes ``{"init": (commitment, None)}``, the verifier
  ``{"init": (commitment.root, None)}`` (Link None: the verifier built the
  root itself, see :func:`known_table_root`).
* proof k+1: ``{"init": (commitment, commitment.link())}`` for the prover,
  where ``commitment`` is proof k's ``final`` (``result_k.commitments["final"]``,
  or the same table committed again: the link is a function of the table
  alone); the verifier takes the root and Link that verifying proof k
  returned (``done.roots["final"]``, ``done.links["final"]``).  Every proof of
  a chain has the same N and log_blowup.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import field as F
from .. import logup
from ..air import Air, BoundaryConstraint, Frame, Segment, TransitionConstraint
from ..expr import const
from ..masking import Mask
from ..prove import SegmentCommitment

OPS_COLUMNS = ("step", "addr", "read_val", "read_ts", "write_val", "final_ts", "range_m")


class MemoryAir(Air):
    num_challenges = 3   # alpha, beta_1, beta_2 (shared by both LogUp sums; tuples of 3)

    def __init__(self, trace_length: int):
        self.main_segments = (
            Segment("init", ("init_addr", "init_val"), external=True),
            Segment("final", ("final_addr", "final_val"), exported=True),
            Segment("ops", OPS_COLUMNS),
        )
        ts = lambda f: f.cur("step") + 1                      # noqa: E731  the step's timestamp
        self.memory = logup.LogUp("mem", [
            logup.supply(["init_addr", "init_val", 0]),
            logup.supply(["addr", "write_val", ts]),
            logup.consume(["addr", "read_val", "read_ts"]),
            logup.consume(["final_addr", "final_val", "final_ts"]),
        ])
        self.timestamps = logup.LogUp("ts", [
            logup.supply(["step"], "range_m"),
            logup.consume([lambda f: f.cur("step") - f.cur("read_ts")]),
        ])
        self.arguments = [self.memory, self.timestamps]
        self.aux_columns = logup.aux_columns(*self.arguments)
        self.lookup_arguments = tuple(self.arguments)
        super().__init__(trace_length)

    def transitions(self, f: Frame) -> list[TransitionConstraint]:
        out = []
        for c in ("step", "init_addr", "final_addr"):
            out.append(TransitionConstraint(f"{c}' = {c} + 1", f.next(c) - f.cur(c) - 1, 1))
        return out + logup.transitions(f, self.arguments)

    def boundaries(self, f: Frame) -> list[BoundaryConstraint]:
        out = [BoundaryConstraint(f"{c}[0] = 0", c, 0, const(0))
               for c in ("step", "init_addr", "final_addr")]
        return out + logup.boundaries(f, self.arguments)

    def build_aux(self, main, challenges):
        return logup.build_aux(self, self.arguments, main, challenges)


# ------------------------------------------------------------------ traces --

def state_table(values) -> np.ndarray:
    """(N, 2) Montgomery (address, value) table for canonical cell values."""
    values = np.asarray(values, dtype=np.int64)
    return F.encode(np.column_stack([np.arange(values.size, dtype=np.int64), values]))


def known_table_root(table: np.ndarray, log_blowup: int, zk: bool = False) -> bytes:
    """The root of a table the verifier knows (the first proof's init); in
    zk mode with zero salts and no mask (masking.Mask.public)."""
    return known_table_commitment(table, log_blowup, zk).root


def known_table_commitment(table: np.ndarray, log_blowup: int, zk: bool = False) -> SegmentCommitment:
    """The commitment of a table the verifier knows, as a proof reusing it
    passes it (the first proof's init, Link None)."""
    table = np.ascontiguousarray(table)
    mask = Mask.public(table.shape[1], table.shape[0].bit_length() - 1 + log_blowup) if zk else None
    return SegmentCommitment.commit(table, log_blowup, mask)


@dataclass
class MemoryRun:
    """A program run on a memory: the traces and the canonical post-state."""

    traces: dict[str, np.ndarray]
    final_values: np.ndarray
    reads: list[int]                 # the value each step read


def run(init_values, ops: list[tuple[int, int | None]]) -> MemoryRun:
    """Execute `ops` (address, value to write or None for a read) on a memory
    of N = len(init_values) cells and lay out the trace.  At most N ops; the
    rest are padding reads of cell 0."""
    init = np.asarray(init_values, dtype=np.int64)
    n = init.size
    steps, mem, last, reads = execute(init, ops, n)
    cols = np.zeros((n, len(OPS_COLUMNS)), dtype=np.int64)
    cols[:, :5] = steps
    cols[:, 5] = last                                           # final_ts, by address
    cols[:, 6] = np.bincount(cols[:, 0] - cols[:, 3], minlength=n)  # range_m
    traces = {"init": state_table(init), "final": state_table(mem), "ops": F.encode(cols)}
    return MemoryRun(traces, mem, reads)


def execute(init: np.ndarray, ops: list[tuple[int, int | None]], rows: int):
    """Run `ops` on the memory `init` (canonical values) over `rows` steps,
    padding with reads of cell 0: (steps (rows, 5): step, addr, read_val,
    read_ts, write_val; the final values; each cell's last write timestamp;
    the value each of `ops` read)."""
    cells = init.size
    if len(ops) > rows:
        raise ValueError(f"{len(ops)} ops do not fit a {rows}-row trace")
    mem, last = init.copy(), np.zeros(cells, dtype=np.int64)
    steps = np.zeros((rows, 5), dtype=np.int64)
    reads = []
    for i in range(rows):
        a, w = ops[i] if i < len(ops) else (0, None)
        if not 0 <= a < cells:
            raise ValueError(f"op {i}: address {a} outside 0..{cells - 1}")
        r, rts = int(mem[a]), int(last[a])
        w = r if w is None else int(w)
        steps[i] = (i, a, r, rts, w)
        mem[a], last[a] = w, i + 1
        reads.append(r)
    return steps, mem, last, reads[: len(ops)]


def random_ops(n: int, count: int, seed: int = 0, cells: int | None = None,
               write_ratio: float = 0.5) -> list[tuple[int, int | None]]:
    """`count` random reads and writes over the first `cells` cells."""
    rng = np.random.default_rng(seed)
    cells = n if cells is None else cells
    out = []
    for a, is_w, v in zip(rng.integers(0, cells, count), rng.random(count) < write_ratio,
                          rng.integers(0, F.P, count)):
        out.append((int(a), int(v) if is_w else None))
    return out
