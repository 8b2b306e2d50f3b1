"""The step records of the engine's tracing mode (zk_step in csrc/engine/zk_engine.h)
as a numpy dtype, and their kinds.

`Book.process_traced` runs the engine's own matching code (compiled a second
time with its steps recorded, csrc/engine/engine_core.inc) and returns these records:
the witness a batch proof is built from.  `written` and `cells_after` give
the state they leave (every word's last write), so whoever holds a run's
steps has its post-state without running the engine again; `check_steps`
is what code reading steps from elsewhere checks first (ranges, not rules).  docs/MATCHING.md ("Tracing")
documents each byte and what every step kind reads and writes;
tests/trace_check.py replays them against the proof state table
(engine/proof_table.py).  tests/test_engine_trace.py checks this dtype against
the compiled header.
"""
from __future__ import annotations

from enum import IntEnum

import numpy as np

from .native import lib
from .proof_table import WORD, proof_table, with_table
from .records import record_dtype


class StepKind(IntEnum):
    BEGIN = 1
    MATCH = 2
    PEEK = 3
    REST = 4
    CANCEL = 5
    REDUCE = 6
    END = 7


class Access(IntEnum):
    """Index of an access in a step's addr/old_word/new_word; bit 1 << index
    of its mask."""
    H = 0  # the header word, address 0
    A = 1
    B = 2
    C = 3


ACCESSES = len(Access)

STEP_DTYPE = record_dtype([
    ("op", "<u4", 0),
    ("kind", "u1", 4),
    ("mask", "u1", 5),
    ("reserved", "<u2", 6),
    ("addr", ("<u4", (ACCESSES,)), 8),
    ("old_word", ("<u4", (ACCESSES, WORD)), 24),
    ("new_word", ("<u4", (ACCESSES, WORD)), 152),
], 280)


#: one operation takes at most STEPS_FIXED + STEPS_PER_RESTING * (orders
#: resting on the book) steps (csrc/engine/zk_engine.h)
STEPS_FIXED, STEPS_PER_RESTING = lib.ZK_STEPS_FIXED, lib.ZK_STEPS_PER_RESTING


def max_steps(capacity: int) -> int:
    """The most steps one operation can take on a book of `capacity` slots."""
    return STEPS_FIXED + STEPS_PER_RESTING * capacity


def steps(n: int) -> np.ndarray:
    """n zeroed step records."""
    return np.zeros(n, dtype=STEP_DTYPE)


def written(table: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """The proof state table after `steps` (checked: check_steps) from
    `table` (N, WORD): each address holds the new word of its last access (a
    read writes back the word it read).  The memory argument of a batch
    proof holds the post state to exactly this, so a run's post-state needs
    no second run."""
    out = np.array(table, dtype=np.uint32)
    mask, addr = steps["mask"], steps["addr"]
    # each address's last access, as step * ACCESSES + access (the engine's
    # order of them): one unordered scatter-max per access slot, no sort
    last = np.full(len(out), -1, dtype=np.int64)
    for j in range(ACCESSES):
        rows = np.flatnonzero(mask & (1 << j))
        np.maximum.at(last, addr[rows, j], rows * ACCESSES + j)
    hit = np.flatnonzero(last >= 0)
    key = last[hit]
    out[hit] = steps["new_word"][key // ACCESSES, key % ACCESSES]
    return out


def cells_after(cells: np.ndarray, steps: np.ndarray, ops: np.ndarray,
                table: np.ndarray | None = None) -> np.ndarray:
    """The engine's cells after it ran `ops` from `cells` and recorded
    `steps` (Book.process_traced): the words the steps wrote, and the stream
    at the last operation.  What the engine would leave, without running it.
    `table`: the table they leave (written), if the caller has it."""
    if table is None:
        table = written(proof_table(cells), steps)
    out = with_table(cells, table)
    if len(ops):
        seq = (int(out[lib.ZK_HDR_NEXT_SEQ_LO]) | int(out[lib.ZK_HDR_NEXT_SEQ_HI]) << 32) + len(ops)
        ts = int(ops["ts_ns"][-1])
        out[lib.ZK_HDR_NEXT_SEQ_LO], out[lib.ZK_HDR_NEXT_SEQ_HI] = seq & 0xFFFFFFFF, seq >> 32
        out[lib.ZK_HDR_LAST_TS_LO], out[lib.ZK_HDR_LAST_TS_HI] = ts & 0xFFFFFFFF, ts >> 32
    return out


def check_steps(steps: np.ndarray, n_ops: int, capacity: int) -> None:
    """Refuse step records nothing can index safely, naming the first bad
    one: the wrong dtype or shape, an operation index outside 0..n_ops-1 or
    going back, a kind that is not a StepKind, a mask or reserved field out
    of range, an address outside the book's `capacity` words (the header
    access's is 0).  Whether they are the engine's run is not checked here:
    a proof built from steps that are not is rejected by its verifier."""
    if not isinstance(steps, np.ndarray) or steps.dtype != STEP_DTYPE or steps.ndim != 1:
        raise ValueError("steps must be a one-dimensional array of STEP_DTYPE records")
    if not len(steps):
        raise ValueError("no steps: every operation takes at least two (BEGIN, END)")
    op, kind, mask, addr = steps["op"], steps["kind"], steps["mask"], steps["addr"]
    # (what, whether any step has it: one cheap pass, which step: only on failure)
    rules = (
        ("an operation index out of range", op.max() >= n_ops, lambda: op >= n_ops),
        ("an operation index that goes back", bool((op[1:] < op[:-1]).any()),
         lambda: np.r_[False, op[1:] < op[:-1]]),
        ("a kind that is not a step kind", kind.min() < min(StepKind) or kind.max() > max(StepKind),
         lambda: (kind < min(StepKind)) | (kind > max(StepKind))),
        ("an access mask over 4 bits", mask.max() >= 1 << ACCESSES, lambda: mask >= 1 << ACCESSES),
        ("a reserved field that is not zero", steps["reserved"].any(), lambda: steps["reserved"] != 0),
        (f"an address outside the {capacity}-word table", addr.max() >= capacity,
         lambda: (addr >= capacity).any(axis=1)),
        ("a header access not at address 0", addr[:, Access.H].any(), lambda: addr[:, Access.H] != 0),
    )
    for what, broken, where in rules:
        if broken:
            i = int(np.argmax(where()))
            raise ValueError(f"step {i} of {len(steps)}: {what} (op {int(op[i])}, kind "
                             f"{int(kind[i])}, mask {int(mask[i])}, addresses {addr[i].tolist()})")
