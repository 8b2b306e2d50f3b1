"""Memory checking on two domains: the memory (examples/memory.py) split so
that the cells and the steps each have a trace of their own length.

A statement (statement.py) of two domains, sharing the challenges and one
LogUp sum over tuples (address, value, timestamp):

``cells`` (K rows, K the memory's size; row a is cell a):

    init    (EXTERNAL)  init_addr, init_val      the pre-state
    final   (exported)  final_addr, final_val    the post-state
    stamps              final_ts                 each cell's last write time

    init_addr[0] = 0, init_addr' = init_addr + 1; final_addr likewise
    mem:  + (init_addr, init_val, 0)  - (final_addr, final_val, final_ts)
          summed over the K rows: the claimed sum t_cells

``steps`` (T rows; row i is step i, at timestamp i + 1; steps past the
program are padding reads of cell 0):

    ops                 step, addr, read_val, read_ts, write_val, range_m

    step[0] = 0, step' = step + 1
    mem:  + (addr, write_val, step + 1)  - (addr, read_val, read_ts)
          summed over the T rows: the claimed sum t_steps
    ts:   step - read_ts in [0, T), looked up in the step column itself
          (multiplicities range_m): a sum of its own, target 0

The statement's target is 0: t_cells + t_steps = 0 says init + writes =
reads + final as multisets over both domains' rows, which is the one-domain
memory argument (docs/LOGUP.md) with the tuples where they now sit; each
domain's relation closes on its own claim, so a claim shifted by d in one
domain and by -d in the other fails both relations.  The soundness argument
is examples/memory.py's with K for N where it speaks of addresses (the
cells domain supplies exactly 0..K-1) and T for N where it speaks of
timestamps (the range check is over [0, T)).

Chaining is memory.py's, per domain: the prover passes
``{"cells.init": (commitment, link)}``, the verifier ``{"cells.init":
(root, link)}``, and ``cells.final`` is what the next proof takes.  Every
proof of a chain has the same K; T may differ from proof to proof.
"""
from __future__ import annotations

import numpy as np

from .. import field as F
from .. import logup
from ..air import Air, BoundaryConstraint, Frame, Segment, TransitionConstraint
from ..expr import const
from ..statement import Statement
from .memory import MemoryRun, execute, state_table

STEP_COLUMNS = ("step", "addr", "read_val", "read_ts", "write_val", "range_m")


def _claimed(f: Frame):
    return f.claimed_sum()


class CellsAir(Air):
    """The memory's cells: initial and final tables, final timestamps."""

    num_challenges = 3   # alpha, beta_1, beta_2: the statement's, shared with steps

    def __init__(self, trace_length: int):
        self.main_segments = (
            Segment("init", ("init_addr", "init_val"), external=True),
            Segment("final", ("final_addr", "final_val"), exported=True),
            Segment("stamps", ("final_ts",)),
        )
        self.memory = logup.LogUp("mem", [
            logup.supply(["init_addr", "init_val", 0]),
            logup.consume(["final_addr", "final_val", "final_ts"]),
        ], target=_claimed)
        self.shared_argument = self.memory
        self.lookup_arguments = (self.memory,)
        self.aux_columns = logup.aux_columns(self.memory)
        super().__init__(trace_length)

    def transitions(self, f: Frame) -> list[TransitionConstraint]:
        out = [TransitionConstraint(f"{c}' = {c} + 1", f.next(c) - f.cur(c) - 1, 1)
               for c in ("init_addr", "final_addr")]
        return out + logup.transitions(f, [self.memory])

    def boundaries(self, f: Frame) -> list[BoundaryConstraint]:
        return [BoundaryConstraint(f"{c}[0] = 0", c, 0, const(0)) for c in ("init_addr", "final_addr")]

    def build_aux(self, main, challenges):
        return logup.build_aux(self, [self.memory], main, challenges)


class StepsAir(Air):
    """The program's steps: one read and one write each, timestamps range-checked."""

    num_challenges = 3

    def __init__(self, trace_length: int):
        self.main_segments = (Segment("ops", STEP_COLUMNS),)
        ts = lambda f: f.cur("step") + 1                      # noqa: E731  the step's timestamp
        self.memory = logup.LogUp("mem", [
            logup.supply(["addr", "write_val", ts]),
            logup.consume(["addr", "read_val", "read_ts"]),
        ], target=_claimed)
        self.timestamps = logup.LogUp("ts", [
            logup.supply(["step"], "range_m"),
            logup.consume([lambda f: f.cur("step") - f.cur("read_ts")]),
        ])
        self.arguments = [self.memory, self.timestamps]
        self.shared_argument = self.memory
        self.lookup_arguments = tuple(self.arguments)
        self.aux_columns = logup.aux_columns(*self.arguments)
        super().__init__(trace_length)

    def transitions(self, f: Frame) -> list[TransitionConstraint]:
        out = [TransitionConstraint("step' = step + 1", f.next("step") - f.cur("step") - 1, 1)]
        return out + logup.transitions(f, self.arguments)

    def boundaries(self, f: Frame) -> list[BoundaryConstraint]:
        return [BoundaryConstraint("step[0] = 0", "step", 0, const(0))]

    def build_aux(self, main, challenges):
        return logup.build_aux(self, self.arguments, main, challenges)


def memory_statement(cells: int, steps: int) -> Statement:
    """The statement of a memory of `cells` cells and a program of `steps`
    rows (both powers of two)."""
    return Statement("memory", [("cells", CellsAir(cells)), ("steps", StepsAir(steps))])


def run(init_values, ops: list[tuple[int, int | None]], steps: int) -> MemoryRun:
    """Execute `ops` (address, value to write or None for a read) on a
    memory of K = len(init_values) cells over a `steps`-row trace (at most
    that many ops; the rest are padding reads of cell 0), and lay out both
    domains' traces, by the statement's matrix names."""
    init = np.asarray(init_values, dtype=np.int64)
    cols, mem, last, reads = execute(init, ops, steps)
    range_m = np.bincount(cols[:, 0] - cols[:, 3], minlength=steps)
    traces = {"cells.init": state_table(init), "cells.final": state_table(mem),
              "cells.stamps": F.encode(last.reshape(-1, 1)),
              "steps.ops": F.encode(np.column_stack([cols, range_m]))}
    return MemoryRun(traces, mem, reads)
