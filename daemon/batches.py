"""What a batch is and when one closes: the one definition the daemon, its
recovery and the Python API share.

A batch is a run of one symbol's operations proven together (one batch
proof).  It closes, by the rules of a BatchPolicy, when it holds
`max_batch_size` operations (SIZE), when the next operation's steps would not
fit its trace (STEPS), right after a Critical operation (CRITICAL: the
record's FLAG_CRITICAL, or a quantity of at least `critical_qty`), or when it
is `timeout_s` old (TIMEOUT); when its stream resumes past a gap (BREAK:
daemon/shadow.py); or because its owner says so: an API request
that is a batch of its own (REQUEST), a flush (FLUSH), the daemon stopping
(SHUTDOWN), a journal mark replayed on restart (REPLAY), or a checkpoint
that snapshots the books between batches (SNAPSHOT: daemon/checkpoint.py).  daemon/shadow.py applies these rules; nothing else does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from .priority import ProofPriority


class CloseReason(str, Enum):
    """Why a batch closed; the value is the metrics label."""

    SIZE = "size"
    #: the batch's proof is full: its trace rows, or in zk mode its record
    #: lane (ops + trades + 1 rows) or its book domain (one operation a row)
    STEPS = "steps"
    CRITICAL = "critical"
    TIMEOUT = "timeout"
    BREAK = "break"
    REQUEST = "request"
    FLUSH = "flush"
    SHUTDOWN = "shutdown"
    REPLAY = "replay"
    SNAPSHOT = "snapshot"


#: every reason, in the order the metrics list them
CLOSE_REASONS = tuple(r.value for r in CloseReason)


@dataclass(frozen=True)
class BatchPolicy:
    """When an open batch closes on its own (module docstring).  At most
    `critical_per_s` Critical operations a second close their batch (a
    stream of them, or of garbage flags, must not cut a batch per
    operation); past that they only raise its priority.  0: no limit."""

    max_batch_size: int
    timeout_s: float
    critical_qty: int = 0     # 0: quantity alone never makes an operation Critical
    critical_per_s: float = 0.0

    def __post_init__(self):
        if not isinstance(self.max_batch_size, int) or self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be an integer >= 1, not {self.max_batch_size!r}")
        if not (isinstance(self.timeout_s, (int, float)) and math.isfinite(self.timeout_s)
                and self.timeout_s > 0):
            raise ValueError(f"a batch timeout must be a positive number of seconds, "
                             f"not {self.timeout_s!r}")
        if not isinstance(self.critical_qty, int) or self.critical_qty < 0:
            raise ValueError(f"critical_qty must be an integer >= 0 (0: off), not {self.critical_qty!r}")
        if not (isinstance(self.critical_per_s, (int, float)) and math.isfinite(self.critical_per_s)
                and self.critical_per_s >= 0):
            raise ValueError(f"critical_per_s must be a number >= 0 (0: no limit), "
                             f"not {self.critical_per_s!r}")


@dataclass
class Batch:
    """A closed batch: everything a proof of it needs (the book's cells
    before it, the shadow book's traced run of its operations, the trace
    length of its chain) and what its owner reports about it."""

    symbol: int
    batch_id: int
    ops: np.ndarray           # OP_DTYPE, outcomes as the rules give them
    trades: np.ndarray        # TRADE_DTYPE, as the rules give them
    steps: np.ndarray         # STEP_DTYPE, the engine's steps (`op` counting in the batch): the witness
    pre_cells: np.ndarray     # the book's cells before the batch
    trace_length: int         # the chain's cap on its proof's ops rows (T' is what its steps take)
    seen_ns: np.ndarray       # per operation: when it was seen (time.monotonic_ns)
    priority: ProofPriority
    reason: CloseReason
    divergent: list[int] = field(default_factory=list)   # seqs whose engine claim differed
    resumed: bool = False     # it begins where its stream resumed (its first op: Book.resume)
    pre_ts: int = 0           # the last timestamp of the batch before (0 for the first): zk
                              # mode's pre-state carries it (a resume may lower the cells' own)

    @property
    def first_seq(self) -> int:
        return int(self.ops["seq"][0])

    @property
    def last_seq(self) -> int:
        return int(self.ops["seq"][-1])


@dataclass
class Divergence:
    """An operation whose engine-claimed outcome differs from the rules'."""

    symbol: int
    seq: int
    claimed: dict
    computed: dict


class Refusal(str, Enum):
    """Why records were not applied; the value is the metrics label."""

    REPLAYED = "replayed"          # a sequence number the stream has already had
    UNCONFIRMED = "unconfirmed"    # held (past a gap, or time going back), and not followed by
                                   # enough records that continue it for the stream to resume there
    SYMBOL = "symbol"              # a symbol the service does not take (see daemon/sequencer.py)


REFUSALS = tuple(r.value for r in Refusal)


@dataclass
class Refused:
    """`count` records from sequence number `seq` of `symbol`, not applied."""

    symbol: int
    seq: int
    reason: Refusal
    why: str
    count: int = 1


@dataclass
class Break:
    """A stream that resumed (engine/book.py Book.resume): operations
    `expected` .. `resumed` - 1 never arrived, and/or time went back to
    `ts_ns`; the batch after it starts from the book as it was, resumed
    (no proof covers that step: the chain has a break there)."""

    symbol: int
    expected: int
    resumed: int
    ts_ns: int


@dataclass
class Applied:
    """What running records through shadow books gave: the batches that
    closed, the divergences, the refused records, the breaks, and how many
    of the records given were consumed (applied, refused or held)."""

    closed: list[Batch] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    breaks: list[Break] = field(default_factory=list)
    taken: int = 0

    def add(self, other: "Applied") -> None:
        self.closed += other.closed
        self.divergences += other.divergences
        self.refused += other.refused
        self.breaks += other.breaks
        self.taken += other.taken
