"""Proof jobs: what a batch proof is made from, what comes back, and the
checks on both ends.

A ProofJob is a batch as a prover needs it: the engine's cells before it,
the shadow book's traced run of its operations (the records with their
outcomes, the trades, the engine's step records: the witness), the chain's
cap on ops rows and the proof parameters.  A ProofResult is the batch proof
file or why there is none.  Every backend (daemon/backends.py) runs
check_job before any work; `prove_job` is the order-book STARK itself, built
from the job's run without running the engine again; `accept_proof` is what
a proof made elsewhere must pass before the daemon keeps it.  A JobInputs is
a job without the engine's run of it, as a job is sent to a Dask cluster
(daemon/cluster.py): the worker runs the engine again for the run.

zk mode (docs/ZK.md section 9): a job also carries its batch's keys
(zk_chain.BatchKeys: kappa_b, sigma_(b-1), sigma_b, derived at the cut by
ProofJob.of from the store key, which never leaves the daemon), the
pre-state's last timestamp and `resumed`; prove_job proves it at the
chain's one ops height with a chain that holds only those keys, and
accept_proof rebuilds the pre-state commitment and the leaves from the
job before it verifies.

A job crosses a process boundary, so nothing in it is trusted: check_job
and prepare_run refuse what a worker cannot use (shapes, sizes, ranges),
with an error saying what; whether the run is the engine's is the
verifier's question, and a run that is not gives a proof verify_batch (and
so accept_proof) rejects.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..engine import invariants
from ..engine.book import Book
from ..engine.native import lib
from ..engine.records import Kind, Side, operation, outcome_mismatches, trades as no_trades
from ..engine.trace import cells_after, steps as no_steps
from ..prover.orderbook import batch as B
from ..prover.orderbook import proof_file, zk_lane
from ..prover.orderbook.air import book_length
from ..prover.orderbook.params import LOG_BLOWUP, proof_options, zk_proof_options
from ..prover.orderbook.zk_chain import BatchKeys, ZkChain
from ..prover.orderbook.zk_encoding import EncodingError, side_leaves
from ..prover.orderbook.zk_lists import root_of
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
class ZkJob:
    """What a zk job carries beyond the run: its batch's keys (never the
    store key), the pre-state's last timestamp (Batch.pre_ts) and whether
    the batch begins where its stream resumed."""

    keys: BatchKeys
    pre_ts: int
    resumed: bool


@dataclass
class ProofJob:
    """One batch to prove: the engine's cells before it and the engine's
    run of its operations from them (Book.process_traced: the records with
    their outcomes, the trades, the steps), as a closed Batch carries them;
    in zk mode, its keys (ZkJob)."""

    symbol: int
    batch_id: int
    pre_cells: np.ndarray     # uint32, Book.cells
    ops: np.ndarray           # OP_DTYPE, outcome fields filled: the proof's public records
    steps: np.ndarray         # STEP_DTYPE, `op` counting from 0: the witness
    trades: np.ndarray        # TRADE_DTYPE: the proof's public trades
    trace_length: int         # the chain's cap on a batch's ops rows (T' is the batch's own)
    security_bits: int = DEFAULT_MIN_SECURITY
    log_blowup: int = LOG_BLOWUP
    zk: ZkJob | None = None

    @classmethod
    def of(cls, batch: Batch, security_bits: int = DEFAULT_MIN_SECURITY,
           chains=None) -> "ProofJob":
        """The job of a closed batch; `chains` (zk mode: symbol -> the
        symbol's ZkChain, holding the store key) derives its keys here."""
        zk = None
        if chains is not None:
            chain = chains(batch.symbol)
            post = cells_after(batch.pre_cells, batch.steps, batch.ops)
            keys = chain.batch_keys(batch.batch_id, batch.pre_cells, batch.pre_ts, batch.ops, batch.trades,
                                    post, batch.resumed)
            zk = ZkJob(keys, batch.pre_ts, bool(batch.resumed))
        return cls(batch.symbol, batch.batch_id, batch.pre_cells, batch.ops, batch.steps,
                   batch.trades, batch.trace_length, security_bits, zk=zk)


@dataclass
class JobInputs:
    """A ProofJob without the engine's run of it (its steps and trades),
    everything else (a zk job's keys too) as it is: what a job is sent to a
    Dask worker as (daemon/cluster.py).  The steps
    are ~280 bytes each, 3 to 4 an operation on the synthetic flow: ~4 MiB of
    a 4,096-operation job's ~4.3, where these inputs are ~0.3 MiB (64
    bytes an operation, and the cells).  Running the engine again from the
    cells (`job()`, ~2 ms at 4,096 operations on a 1,024-slot book) costs
    the worker less than receiving the run costs both ends, and the
    scheduler the task passes through."""

    symbol: int
    batch_id: int
    pre_cells: np.ndarray     # uint32, Book.cells
    ops: np.ndarray           # OP_DTYPE, outcome fields as the daemon's shadow book gave them
    trace_length: int
    security_bits: int = DEFAULT_MIN_SECURITY
    log_blowup: int = LOG_BLOWUP
    zk: ZkJob | None = None

    @classmethod
    def of(cls, job: ProofJob) -> "JobInputs":
        return cls(job.symbol, job.batch_id, job.pre_cells, job.ops, job.trace_length,
                   job.security_bits, job.log_blowup, job.zk)

    def job(self) -> ProofJob:
        """The job: the engine's traced run of the records from the cells
        (on copies).  ValueError naming what is wrong if the records are not
        operation records, the cells not a well-formed book (the whole walk:
        the engine is about to run on them), the records do not continue its
        stream, or the engine gives any record another outcome than the one
        it carries: then this engine is not the daemon's, and a proof of its
        run would not be a proof of the job."""
        B.check_records(self.ops, no_steps(0), no_trades(0))
        book = Book.from_cells(self.pre_cells)
        run = self.ops.copy()
        trades, steps = book.process_traced(run)
        differ = outcome_mismatches(self.ops, run)
        if differ.size:
            i = int(differ[0])
            raise ValueError(
                f"symbol {self.symbol} batch {self.batch_id}: this engine gives {differ.size} of "
                f"its {len(run)} operations other outcomes than the daemon's shadow book did (the "
                f"first: seq {int(run['seq'][i])}); the daemon and its workers must run the same "
                "zksidecar")
        return ProofJob(self.symbol, self.batch_id, self.pre_cells, self.ops, steps, trades,
                        self.trace_length, self.security_bits, self.log_blowup, self.zk)


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
    if job.zk is None:
        proof_options(job.security_bits, book_length(capacity), t, job.log_blowup)
        return
    z = job.zk
    if not isinstance(z, ZkJob) or not isinstance(z.keys, BatchKeys):
        raise ValueError("a zk job carries its batch's keys (ZkJob)")
    if z.keys.batch_id != job.batch_id:
        raise ValueError(f"the keys of batch {z.keys.batch_id} in the job of batch {job.batch_id}")
    if not 0 <= z.pre_ts < 1 << 64:
        raise ValueError(f"a pre-state timestamp is a u64, not {z.pre_ts}")
    zk_proof_options(job.security_bits, capacity.bit_length() - 1, t, job.log_blowup)


def zk_chain_of(job: ProofJob) -> ZkChain:
    """The chain a zk job is proven with: its parameters, and only its
    batch's keys."""
    capacity = invariants.check_shape(job.pre_cells)
    log2 = capacity.bit_length() - 1
    options = zk_proof_options(job.security_bits, log2, job.trace_length, job.log_blowup)
    return ZkChain(None, job.symbol, log2, job.trace_length, options, job.zk.keys)


def zk_pre_state(job: ProofJob, chain: ZkChain) -> B.BookState:
    """A zk job's pre-state as its proof commits it: the public empty book
    for batch 0, else the job's cells and pre_ts under sigma_(b-1)."""
    if job.batch_id == 0:
        return B.BookState.zk_genesis(chain, job.pre_cells)
    return B.BookState.zk_after(chain, job.pre_cells, job.zk.pre_ts, job.batch_id - 1)


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
    if job.zk is not None:            # zk mode: the chain's one ops height, its batch's keys
        chain = zk_chain_of(job)
        prep = B.prepare_run(zk_pre_state(job, chain), job.ops, job.steps, job.trades, chain.options,
                             chain.ops_length, job.batch_id, zk=chain, resumed=job.zk.resumed)
        return B.prove_prepared(prep, chain.options)[0]
    t = ops_length(job)
    options = job_options(job, t)
    prep = B.prepare_run(job.pre_cells, job.ops, job.steps, job.trades, options, t, job.batch_id)
    proof, _, _ = B.prove_prepared(prep, options)
    return proof


#: the store key of a warm-up job's chain (zk mode): a constant of its own,
#: never a store's, for a proof that is thrown away unseen
WARM_UP_KEY = hashlib.sha256(b"zksidecar warm-up: a proof thrown away").digest()


def warm_up_job(capacity: int, trace_length: int, security_bits: int = DEFAULT_MIN_SECURITY,
                log_blowup: int = LOG_BLOWUP, symbol: int = 0, zk: bool = False) -> ProofJob:
    """A job of a chain's shape that a worker proves, and throws away,
    before its first real one (WorkerPool(warm=...)): one limit order on the
    empty book, with the engine's run of it.  Everything a proof of that
    shape computes once and keeps (the AIR's constraints, the compiled
    constraint program, the LogUp and quotient plans, divisors, coset
    points, twiddles, scratch buffers) is then ready, so the first Critical
    operation costs what the next ones do.  `zk`: a zk job, at the chain's
    one ops height, its keys of a chain under WARM_UP_KEY."""
    op = operation(seq=1, ts_ns=1, symbol=symbol, kind=Kind.LIMIT, side=Side.BUY, price=1, qty=1,
                   account=1)
    book = Book(capacity, symbol)
    cells = book.cells.copy()
    trades, steps = book.process_traced(op)
    job = ProofJob(symbol, 0, cells, op, steps, trades, trace_length, security_bits, log_blowup)
    if zk:
        log2 = capacity.bit_length() - 1
        chain = ZkChain(WARM_UP_KEY, symbol, log2, trace_length,
                        zk_proof_options(security_bits, log2, trace_length, log_blowup))
        keys = chain.batch_keys(0, cells, 0, op, trades, book.cells, False)
        job.zk = ZkJob(keys, 0, False)
    return job


def accept_proof(job: ProofJob, raw: bytes) -> B.BatchProof:
    """Check that `raw` is a batch proof file proving exactly `job` (its
    symbol, batch, chain parameters, records, trades and pre-state) and
    verify it: the decoded proof.  ProofRejected otherwise.

    The job's records and trades are the daemon's own (the shadow book's
    run); the verifier checks that they are what the rules give, so the
    engine is not run here either."""
    try:
        bp, air = proof_file.decode_with_air(raw)   # the AIR of its public inputs, once
    except ProofFormatError as exc:
        raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: not a batch proof "
                            f"file: {exc}") from None
    pub = bp.public
    if job.zk is not None or pub.zk is not None:
        wrong = _zk_differences(job, bp)
        if wrong:
            raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: the proof's "
                                f"{', '.join(wrong)} differ from the job's")
        return _verified(job, bp, air)
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
    return _verified(job, bp, air)


def _zk_differences(job: ProofJob, bp: B.BatchProof) -> list[str]:
    """What a zk proof states otherwise than its job gives (docs/ZK.md
    section 9): the mode, the header's fields, the pre-state commitment
    (rebuilt from the cells, pre_ts and sigma_(b-1)) and the leaves and side
    root (rebuilt from the records, the trades and kappa_b)."""
    pub = bp.public
    if job.zk is None or pub.zk is None:
        return ["mode"]
    try:
        check_job(job)
        chain = zk_chain_of(job)
        pre = zk_pre_state(job, chain)
        first_seq = int(pre.cells[lib.ZK_HDR_NEXT_SEQ_LO]) | int(pre.cells[lib.ZK_HDR_NEXT_SEQ_HI]) << 32
        n, t = len(job.ops), chain.ops_length
        rand, _, leaves = zk_lane.published_leaves(job.ops, job.trades, job.zk.keys.batch_key,
                                                   chain.capacity, first_seq, t)
        side_root = root_of(side_leaves(job.ops, rand.side_salts))
    except (ValueError, EncodingError) as exc:
        raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: the job cannot be checked: {exc}") from None
    z = pub.zk
    return [what for what, bad in [
        ("symbol", pub.symbol != job.symbol),
        ("batch id", pub.batch_id != job.batch_id),
        ("ops length", pub.ops_length != t),
        ("blowup", bp.proof.options.log_blowup != job.log_blowup),
        ("first sequence number", pub.first_seq != first_seq),
        ("operation count", z.n_ops != n),
        ("resumed bit", z.resumed != job.zk.resumed),
        ("pre-state", pub.pre_root != pre.root or pub.pre_link != pre.link),
        ("leaves", z.leaves.shape != leaves.shape or not np.array_equal(z.leaves, leaves)),
        ("side root", z.side_root != side_root),
    ] if bad]


def _verified(job: ProofJob, bp: B.BatchProof, air) -> B.BatchProof:
    """verify_batch at the job's security and cap; `air`: the one decoding built."""
    try:
        # the chain's own cap, checked against the configuration when the
        # daemon started (a verifier's default bound is the longest at 100
        # bits, and a configuration may trade bits for a longer trace)
        B.verify_batch(bp, min_security=job.security_bits, max_trace_length=job.trace_length,
                       air=air)
    except VerificationError as exc:
        raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: the proof does not "
                            f"verify: {exc}") from None
    return bp
