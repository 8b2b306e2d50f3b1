"""Proof jobs: what a batch proof is made from, what comes back, and the
checks on both ends.

A ProofJob is a batch as a prover needs it (the engine's cells before it,
its operation records, the chain's trace length and the proof parameters);
a ProofResult is the batch proof file or why there is none.  Every backend
(daemon/backends.py) runs check_job before any work; `prove_job` is the
order-book STARK itself; `accept_proof` is what a proof made elsewhere must
pass before the daemon keeps it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine.book import Book
from ..engine.records import OP_DTYPE, Kind, Side, operation
from ..prover.orderbook import batch as B
from ..prover.orderbook import proof_file
from ..prover.orderbook.params import LOG_BLOWUP, proof_options
from ..prover.orderbook.witness import check_trace_length
from ..prover.params import DEFAULT_MIN_SECURITY, MAX_LOG_BLOWUP
from ..prover.proof import ProofFormatError
from ..prover.verify import VerificationError
from .batches import Batch
from .priority import ProofPriority


class BackendError(RuntimeError):
    """A backend could not prove a job (its message says why)."""


class ProofRejected(BackendError):
    """A proof made elsewhere does not prove its job."""


@dataclass
class ProofJob:
    """One batch to prove: the engine's cells before it and its operation
    records (OP_DTYPE, outcome fields optional: the prover recomputes them)."""

    symbol: int
    batch_id: int
    pre_cells: np.ndarray
    ops: np.ndarray
    trace_length: int
    security_bits: int = DEFAULT_MIN_SECURITY
    log_blowup: int = LOG_BLOWUP

    @classmethod
    def of(cls, batch: Batch, security_bits: int = DEFAULT_MIN_SECURITY) -> "ProofJob":
        return cls(batch.symbol, batch.batch_id, batch.pre_cells, batch.ops, batch.trace_length,
                   security_bits)


@dataclass
class ProofResult:
    """A proven batch (error None) or why it could not be proven.

    proof is a batch proof file (prover/orderbook/proof_file.py); post_root
    the state root after the batch.  prove_s is the backend's proving time,
    queue_wait_s the time the job waited in the pool's queue."""

    symbol: int
    batch_id: int
    proof: bytes = b""
    post_root: bytes = b""
    n_ops: int = 0
    n_trades: int = 0
    prove_s: float = 0.0
    error: str | None = None
    queue_wait_s: float = 0.0
    priority: ProofPriority = ProofPriority.NORMAL
    worker_pid: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def check_job(job: ProofJob) -> Book:
    """Refuse a malformed job with a clear error before any work; returns
    the book its cells hold (checked once here, for everything after)."""
    if not isinstance(job.ops, np.ndarray) or job.ops.dtype != OP_DTYPE or job.ops.ndim != 1:
        raise ValueError("job.ops must be a one-dimensional array of OP_DTYPE records")
    if len(job.ops) == 0:
        raise ValueError("an empty batch")
    if not 1 <= job.log_blowup <= MAX_LOG_BLOWUP:
        raise ValueError(f"log_blowup must be in 1..{MAX_LOG_BLOWUP}, not {job.log_blowup}")
    if not 1 <= job.security_bits <= 128:
        raise ValueError(f"security_bits must be in 1..128, not {job.security_bits}")
    book = Book.from_cells(job.pre_cells)      # CorruptState if these are not a book's cells
    if book.symbol != job.symbol:
        raise ValueError(f"the cells are symbol {book.symbol}'s book, the job is for {job.symbol}")
    t = check_trace_length(job.trace_length, book.capacity)
    # ParameterError if the target cannot be reached at this size (hash and field bounds)
    proof_options(job.security_bits, t, job.log_blowup)
    return book


def prove_job(job: ProofJob, pre: Book | None = None) -> tuple[B.BatchProof, np.ndarray]:
    """Prove `job` with the order-book STARK: (proof, trades).  `pre` is
    the book check_job returned, if the caller has it."""
    pre = pre or check_job(job)
    options = proof_options(job.security_bits, job.trace_length, job.log_blowup)
    proof, _, trades = B.prove_batch(pre, job.ops, options, job.trace_length, batch_id=job.batch_id)
    return proof, trades


def warm_up_job(capacity: int, trace_length: int, security_bits: int = DEFAULT_MIN_SECURITY,
                log_blowup: int = LOG_BLOWUP, symbol: int = 0) -> ProofJob:
    """A job of a chain's shape that a worker proves, and throws away,
    before its first real one (WorkerPool(warm=...)): one limit order on the
    empty book.  Everything a proof of that shape computes once and keeps
    (the AIR's constraints, the compiled constraint program, the LogUp and
    quotient plans, divisors, coset points, twiddles, scratch buffers) is
    then ready, so the first Critical operation costs what the next ones do."""
    op = operation(seq=1, ts_ns=1, symbol=symbol, kind=Kind.LIMIT, side=Side.BUY, price=1, qty=1,
                   account=1)
    return ProofJob(symbol, 0, Book(capacity, symbol).cells, op, trace_length, security_bits, log_blowup)


def accept_proof(job: ProofJob, raw: bytes, pre: Book) -> tuple[B.BatchProof, int]:
    """Check that `raw` is a batch proof file proving exactly `job` (whose
    cells hold the book `pre`, as check_job returned it) and verify it: (the
    decoded proof, its trade count).  ProofRejected otherwise."""
    try:
        bp = proof_file.decode(raw)
    except ProofFormatError as exc:
        raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: not a batch proof "
                            f"file: {exc}") from None
    pub = bp.public
    # what the rules give for these operations from these cells
    ops = np.array(job.ops, dtype=OP_DTYPE, copy=True)
    trades = Book.from_cells(pre.cells, validate=False).process(ops)
    # the pre-state root and Link any proof of `job` must carry: functions of the cells alone
    state = B.BookState.of(pre, job.trace_length, job.log_blowup)
    wrong = [what for what, bad in [
        ("symbol", pub.symbol != job.symbol),
        ("batch id", pub.batch_id != job.batch_id),
        ("trace length", pub.trace_length != job.trace_length),
        ("blowup", bp.proof.options.log_blowup != job.log_blowup),
        ("operations", pub.ops.tobytes() != ops.tobytes()),
        ("trades", pub.trades.tobytes() != trades.tobytes()),
        ("pre-state", pub.pre_root != state.root or pub.pre_link != state.link),
    ] if bad]
    if wrong:
        raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: the proof's "
                            f"{', '.join(wrong)} differ from the job's")
    try:
        B.verify_batch(bp, min_security=job.security_bits)
    except VerificationError as exc:
        raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: the proof does not "
                            f"verify: {exc}") from None
    return bp, len(trades)
