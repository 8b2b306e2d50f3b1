"""Proof jobs: what a batch proof is made from, what comes back, and the
checks on both ends.

A ProofJob is a batch as a prover needs it: the engine's cells before it,
the shadow book's traced run of its operations (the records with their
outcomes, the trades, the engine's step records: the witness), the chain's
cap on ops rows and the proof parameters.  A ProofResult is the batch proof
file or why there is none.  Every backend (daemon/backends.py) runs
check_job before any work; `prove_job` is the order-book STARK itself, built
from the job's run without running the engine again; `accept_proof` is what
a proof made elsewhere must pass before the daemon keeps it.

A job crosses a process boundary, so nothing in it is trusted: check_job
and prepare_run refuse what a worker cannot use (shapes, sizes, ranges),
with an error saying what; whether the run is the engine's is the
verifier's question, and a run that is not gives a proof verify_batch (and
so accept_proof) rejects.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine import invariants
from ..engine.book import Book
from ..engine.native import lib
from ..engine.records import Kind, Side, operation
from ..prover.orderbook import batch as B
from ..prover.orderbook import proof_file
from ..prover.orderbook.air import book_length
from ..prover.orderbook.params import LOG_BLOWUP, proof_options
from ..prover.orderbook.witness import check_trace_length, ops_length_for
from ..prover.params import DEFAULT_MIN_SECURITY, MAX_LOG_BLOWUP, ProofOptions
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
    """One batch to prove: the engine's cells before it and the engine's
    run of its operations from them (Book.process_traced: the records with
    their outcomes, the trades, the steps), as a closed Batch carries them."""

    symbol: int
    batch_id: int
    pre_cells: np.ndarray     # uint32, Book.cells
    ops: np.ndarray           # OP_DTYPE, outcome fields filled: the proof's public records
    steps: np.ndarray         # STEP_DTYPE, `op` counting from 0: the witness
    trades: np.ndarray        # TRADE_DTYPE: the proof's public trades
    trace_length: int         # the chain's cap on a batch's ops rows (T' is the batch's own)
    security_bits: int = DEFAULT_MIN_SECURITY
    log_blowup: int = LOG_BLOWUP

    @classmethod
    def of(cls, batch: Batch, security_bits: int = DEFAULT_MIN_SECURITY) -> "ProofJob":
        return cls(batch.symbol, batch.batch_id, batch.pre_cells, batch.ops, batch.steps,
                   batch.trades, batch.trace_length, security_bits)


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


def check_job(job: ProofJob) -> None:
    """Refuse a malformed job with a clear error before any work: records
    of the wrong type or shape, cells that do not have a book's shape
    (CorruptState) or are another symbol's, parameters out of range or out
    of reach at this trace length.  The run itself (its steps' ranges) is
    checked where it is read (prepare_run); whether it is the engine's, by
    the verifier."""
    B.check_records(job.ops, job.steps, job.trades)
    if not 1 <= job.log_blowup <= MAX_LOG_BLOWUP:
        raise ValueError(f"log_blowup must be in 1..{MAX_LOG_BLOWUP}, not {job.log_blowup}")
    if not 1 <= job.security_bits <= 128:
        raise ValueError(f"security_bits must be in 1..128, not {job.security_bits}")
    capacity = invariants.check_shape(job.pre_cells)
    symbol = int(job.pre_cells[lib.ZK_HDR_SYMBOL])
    if symbol != job.symbol:
        raise ValueError(f"the cells are symbol {symbol}'s book, the job is for {job.symbol}")
    t = check_trace_length(job.trace_length, capacity)
    # ParameterError if the target cannot be reached at the chain's cap (hash
    # and field bounds); the batch's own rows are checked where they are read
    proof_options(job.security_bits, book_length(capacity), t, job.log_blowup)


def ops_length(job: ProofJob) -> int:
    """T', the `ops` rows of the job's batch (witness.ops_length_for): ValueError
    if its steps take more than the chain's cap allows."""
    t = ops_length_for(job.steps)
    if t > job.trace_length:
        raise ValueError(f"symbol {job.symbol} batch {job.batch_id}: its steps need an ops trace "
                         f"of {t} rows, over the chain's cap of {job.trace_length}")
    return t


def job_options(job: ProofJob, ops_rows: int) -> ProofOptions:
    """The job's proof parameters, for its book's S and its batch's T'
    (`ops_rows`, ops_length(job))."""
    capacity = invariants.check_shape(job.pre_cells)
    return proof_options(job.security_bits, book_length(capacity), ops_rows, job.log_blowup)


def prove_job(job: ProofJob) -> B.BatchProof:
    """Prove `job` with the order-book STARK, from its run (the engine is
    not run again), its `ops` domain the fewest rows its steps take."""
    check_job(job)
    t = ops_length(job)
    options = job_options(job, t)
    prep = B.prepare_run(job.pre_cells, job.ops, job.steps, job.trades, options, t, job.batch_id)
    proof, _, _ = B.prove_prepared(prep, options)
    return proof


def warm_up_job(capacity: int, trace_length: int, security_bits: int = DEFAULT_MIN_SECURITY,
                log_blowup: int = LOG_BLOWUP, symbol: int = 0) -> ProofJob:
    """A job of a chain's shape that a worker proves, and throws away,
    before its first real one (WorkerPool(warm=...)): one limit order on the
    empty book, with the engine's run of it.  Everything a proof of that
    shape computes once and keeps (the AIR's constraints, the compiled
    constraint program, the LogUp and quotient plans, divisors, coset
    points, twiddles, scratch buffers) is then ready, so the first Critical
    operation costs what the next ones do."""
    op = operation(seq=1, ts_ns=1, symbol=symbol, kind=Kind.LIMIT, side=Side.BUY, price=1, qty=1,
                   account=1)
    book = Book(capacity, symbol)
    cells = book.cells.copy()
    trades, steps = book.process_traced(op)
    return ProofJob(symbol, 0, cells, op, steps, trades, trace_length, security_bits, log_blowup)


def accept_proof(job: ProofJob, raw: bytes) -> B.BatchProof:
    """Check that `raw` is a batch proof file proving exactly `job` (its
    symbol, batch, chain parameters, records, trades and pre-state) and
    verify it: the decoded proof.  ProofRejected otherwise.

    The job's records and trades are the daemon's own (the shadow book's
    run); the verifier checks that they are what the rules give, so the
    engine is not run here either."""
    try:
        bp = proof_file.decode(raw)
    except ProofFormatError as exc:
        raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: not a batch proof "
                            f"file: {exc}") from None
    pub = bp.public
    # the pre-state root and Link any proof of `job` must carry: functions of the cells alone
    state = B.BookState.commit(job.pre_cells, job.log_blowup)
    wrong = [what for what, bad in [
        ("symbol", pub.symbol != job.symbol),
        ("batch id", pub.batch_id != job.batch_id),
        ("ops length", pub.ops_length != ops_length(job)),
        ("blowup", bp.proof.options.log_blowup != job.log_blowup),
        ("operations", pub.ops.tobytes() != job.ops.tobytes()),
        ("trades", pub.trades.tobytes() != job.trades.tobytes()),
        ("pre-state", pub.pre_root != state.root or pub.pre_link != state.link),
    ] if bad]
    if wrong:
        raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: the proof's "
                            f"{', '.join(wrong)} differ from the job's")
    try:
        # the chain's own cap, checked against the configuration when the
        # daemon started (a verifier's default bound is the longest at 100
        # bits, and a configuration may trade bits for a longer trace)
        B.verify_batch(bp, min_security=job.security_bits, max_trace_length=job.trace_length)
    except VerificationError as exc:
        raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: the proof does not "
                            f"verify: {exc}") from None
    return bp
