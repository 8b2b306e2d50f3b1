"""The step records of the engine's tracing mode (zk_step in csrc/engine/zk_engine.h)
as a numpy dtype, and their kinds.

`Book.process_traced` runs the engine's own matching code (compiled a second
time with its steps recorded, csrc/engine/engine_core.inc) and returns these records:
the witness a batch proof is built from.  docs/MATCHING.md ("Tracing")
documents each byte and what every step kind reads and writes;
tests/trace_check.py replays them against the proof state table
(engine/proof_table.py).  tests/test_engine_trace.py checks this dtype against
the compiled header.
"""
from __future__ import annotations

from enum import IntEnum

import numpy as np

from .native import lib
from .proof_table import WORD
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
