"""The Python API of the original specification (docs/API.md), asyncio-native,
over the daemon's machinery for in-process use.

    TradingZkVMManager     one chain of batch proofs per symbol: a shadow Book
                           runs every operation by the rules, each batch goes
                           to a WorkerPool by priority, every proof is real
    ZkProvableCLOBEngine   an engine Book whose orders come back at once with
                           an awaitable proof of them
    BatchProofProcessor    groups operations into batches (size, timeout,
                           Critical closes at once), proves batches in parallel
    AsyncProofGenerator    priority requests with per-priority statistics

What the SPEC's pre_state/post_state hashes become: the proof's pre- and
post-state roots (Merkle roots of the book's state table), which chain batch
to batch from the empty book.  The caller never supplies them: the manager's
shadow book computes the states, so a caller cannot claim a state the rules
do not give.  Every proof returned verifies with verify_chain over its
symbol's batches (TradingZkVMManager.chain).

Operations are engine records (engine/records.py OP_DTYPE); order(), cancel()
and reduce() build them.  A record whose seq is 0 is numbered by the manager
(next sequence number, timestamp now or later); otherwise it must continue
its symbol's stream.
"""
from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..engine.book import Book, Outcome
from ..engine.records import FLAG_CLAIMED, OP_DTYPE, OUTCOME_FIELDS, Kind, Side
from ..prover.orderbook import proof_file
from ..prover.orderbook import witness as W
from ..prover.orderbook.batch import BatchProof, verify_batch, verify_chain
from ..prover.verify import Verified
from .backends import job_options
from .priority import DEFAULT_AGE_STEP, LEVELS, PriorityQueue, ProofPriority
from .workers import ProofJob, ProofResult, WorkerPool

NEW_ORDER_KINDS = (Kind.LIMIT, Kind.IOC, Kind.MARKET, Kind.FOK, Kind.POST_ONLY)
STEPS_PER_OP = 8      # the default trace holds 8 engine steps per operation of a full batch


# ------------------------------------------------------------- records --

def order(kind: Kind, side: Side, price: int, qty: int, *, account: int = 0, client_id: int = 0,
          symbol: int = 0, ts_ns: int = 0) -> np.ndarray:
    """One new-order record (seq 0: the manager numbers it)."""
    rec = np.zeros(1, dtype=OP_DTYPE)
    rec[0] = (0, ts_ns, 0, client_id, price, qty, account, symbol, kind, side, 0, 0, 0, 0, 0, 0)
    return rec


def cancel(handle: int, *, symbol: int = 0, account: int = 0, ts_ns: int = 0) -> np.ndarray:
    rec = order(Kind.CANCEL, 0, 0, 0, account=account, symbol=symbol, ts_ns=ts_ns)
    rec["handle"] = handle
    return rec


def reduce(handle: int, qty: int, *, symbol: int = 0, account: int = 0, ts_ns: int = 0) -> np.ndarray:
    rec = order(Kind.REDUCE, 0, 0, qty, account=account, symbol=symbol, ts_ns=ts_ns)
    rec["handle"] = handle
    return rec


def _records(ops) -> np.ndarray:
    if isinstance(ops, np.void) and ops.dtype == OP_DTYPE:
        ops = np.array([ops], dtype=OP_DTYPE)
    if not isinstance(ops, np.ndarray) or ops.dtype != OP_DTYPE:
        raise TypeError("operations must be OP_DTYPE records (see order(), cancel(), reduce())")
    ops = np.array(ops, dtype=OP_DTYPE, copy=True).reshape(-1)
    if len(ops) == 0:
        raise ValueError("no operations")
    if (ops["symbol"] != ops["symbol"][0]).any():
        raise ValueError("a batch holds one symbol's operations")
    return ops


# ------------------------------------------------------------- results --

@dataclass(frozen=True)
class BatchConfig:
    """The SPEC's batching knobs (batch_timeout in seconds)."""

    max_batch_size: int = 100
    batch_timeout: float = 0.010
    enable_parallel_processing: bool = True
    max_concurrent_batches: int = 4

    def __post_init__(self):
        if self.max_batch_size < 1 or self.max_concurrent_batches < 1 or not self.batch_timeout > 0:
            raise ValueError(f"max_batch_size and max_concurrent_batches must be >= 1 and "
                             f"batch_timeout > 0: {self}")


class ProofFailed(RuntimeError):
    """A batch could not be proven (the message says why); its operations
    stay applied to the shadow book and the batch is a gap in the chain."""


class EngineDisagrees(ValueError):
    """What the caller claims happened is not what the rules give; nothing
    was applied or proven."""


@dataclass
class TradingProof:
    """A proven batch: its operations with the outcomes the rules give, its
    trades, and the batch proof file (prover/orderbook/proof_file.py)."""

    symbol: int
    batch_id: int
    first_seq: int
    last_seq: int
    ops: np.ndarray
    trades: np.ndarray
    proof: bytes
    pre_root: bytes
    post_root: bytes
    priority: ProofPriority
    prove_s: float
    queue_wait_s: float
    divergent: list[int] = field(default_factory=list)   # ops whose engine claim differed

    def batch_proof(self) -> BatchProof:
        return proof_file.decode(self.proof)

    def verify(self, min_security: int = 100) -> Verified:
        """Verify this batch alone (its pre-state as it claims it)."""
        return verify_batch(self.batch_proof(), min_security=min_security)


@dataclass
class ManagerStats:
    total_proofs_generated: int = 0     # batches finished, proven or failed
    successful_proofs: int = 0
    failed_proofs: int = 0
    total_operations_proven: int = 0
    avg_generation_time_ms: float = 0.0  # proving time per successful batch
    avg_queue_wait_ms: float = 0.0
    divergences: int = 0
    pending: int = 0


@dataclass
class _Chain:
    book: Book
    next_batch: int = 0
    proofs: dict[int, TradingProof] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


@dataclass
class _Prepared:
    job: ProofJob
    ops: np.ndarray
    trades: np.ndarray
    divergent: list[int]


# ------------------------------------------------------------- manager --

class TradingZkVMManager:
    """Proofs of trading operations, one chain per symbol from the empty
    book, proven by a WorkerPool of `num_workers` processes with `backend`
    (default NativeBackend).  `trace_length` is fixed per chain (default:
    room for STEPS_PER_OP steps per operation of a full batch)."""

    def __init__(self, batch_config: BatchConfig | None = None, num_workers: int = 1, backend=None,
                 *, capacity: int = 1 << 10, symbol: int = 0, security_bits: int = 100,
                 log_blowup: int = 2, trace_length: int | None = None, cores: list[int] | None = None,
                 age_step: float | None = DEFAULT_AGE_STEP):
        self.batch_config = batch_config or BatchConfig()
        self.capacity, self.symbol = capacity, symbol
        self.security_bits, self.log_blowup = security_bits, log_blowup
        Book(capacity, symbol)   # refuses a bad capacity or symbol now, not at the first order
        self.trace_length = trace_length or W.trace_length_for(
            STEPS_PER_OP * self.batch_config.max_batch_size, capacity)
        t = self.trace_length
        if t & (t - 1) or t < max(16, capacity):
            raise ValueError(f"trace_length must be a power of two >= max(16, capacity {capacity}), "
                             f"not {t}")
        # ParameterError (a ValueError) now if no proof of this size can reach the target
        job_options(security_bits, log_blowup).check_security(self.trace_length, security_bits)
        self.pool = WorkerPool(num_workers, cores, backend, age_step=age_step)
        self._chains: dict[int, _Chain] = {}
        self._stats = ManagerStats()
        self._prove_s = self._wait_s = 0.0
        self._tasks: set[asyncio.Task] = set()

    # ----------------------------------------------------------- chains --
    def _chain(self, symbol: int) -> _Chain:
        if symbol not in self._chains:
            self._chains[symbol] = _Chain(Book(self.capacity, symbol))
        return self._chains[symbol]

    def book(self, symbol: int | None = None) -> Book:
        """The shadow book of `symbol` (read it, do not process on it)."""
        return self._chain(self.symbol if symbol is None else symbol).book

    def proofs(self, symbol: int | None = None) -> list[TradingProof]:
        """The symbol's proven batches so far, in batch order."""
        chain = self._chain(self.symbol if symbol is None else symbol)
        return [chain.proofs[k] for k in sorted(chain.proofs)]

    async def chain(self, symbol: int | None = None) -> list[BatchProof]:
        """Every batch of `symbol` once all are proven, decoded, in order: the
        input of verify_chain.  ProofFailed names a batch that failed."""
        await self.drain()
        symbol = self.symbol if symbol is None else symbol
        chain = self._chain(symbol)
        if chain.failed:
            k = min(chain.failed)
            raise ProofFailed(f"symbol {symbol} batch {k} failed ({chain.failed[k]}): the chain has a gap")
        return [chain.proofs[k].batch_proof() for k in range(chain.next_batch)]

    async def verify_chain(self, symbol: int | None = None) -> Verified:
        symbol = self.symbol if symbol is None else symbol
        return verify_chain(await self.chain(symbol), min_security=self.security_bits, symbol=symbol)

    # ------------------------------------------------------ the two steps --
    def _prepare(self, ops: np.ndarray, batch_id: int | None = None,
                 claims: np.ndarray | None = None) -> _Prepared:
        """Run a batch on its symbol's shadow book and make its job (the next
        batch id).  Synchronous, so batches take ids in call order; raises
        with the book unchanged if the batch cannot be one."""
        ops = _records(ops)
        chain = self._chain(int(ops["symbol"][0]))
        book = chain.book
        if batch_id is not None and batch_id != chain.next_batch:
            raise ValueError(f"symbol {book.symbol}: batch ids count up by one; the next is "
                             f"{chain.next_batch}, not {batch_id}")
        unnumbered = ops["seq"] == 0
        if unnumbered.all():
            ops["seq"] = np.arange(book.next_seq, book.next_seq + len(ops), dtype=np.uint64)
            now = np.uint64(time.time_ns())
            ops["ts_ns"] = np.maximum.accumulate(np.maximum(
                np.where(ops["ts_ns"] == 0, now, ops["ts_ns"]), np.uint64(book.last_ts)))
        elif unnumbered.any():
            raise ValueError("either every record of a batch has seq 0 (numbered here) or none has")
        claimed = ops.copy() if claims is None else claims
        pre = book.cells.copy()
        trades, steps = book.process_traced(ops)          # StreamError: nothing changed
        if len(steps) + 1 > self.trace_length:
            chain.book = Book.from_cells(pre)
            raise ValueError(f"symbol {book.symbol}: the batch takes {len(steps)} engine steps; "
                             f"this chain's {self.trace_length}-row proofs hold "
                             f"{self.trace_length - 1} (split it, or raise trace_length)")
        has_claim = (claimed["flags"] & FLAG_CLAIMED) != 0
        differs = np.zeros(len(ops), dtype=bool)
        for name in OUTCOME_FIELDS:
            if name != "handle":
                differs |= claimed[name] != ops[name]
        new = np.isin(ops["kind"], NEW_ORDER_KINDS)
        differs |= new & (claimed["handle"] != ops["handle"])
        divergent = np.flatnonzero(has_claim & differs).tolist()
        self._stats.divergences += len(divergent)
        job = ProofJob(book.symbol, chain.next_batch, pre, ops.copy(), self.trace_length,
                       self.security_bits, self.log_blowup)
        chain.next_batch += 1
        return _Prepared(job, ops, trades, divergent)

    async def _prove(self, prep: _Prepared, priority: ProofPriority) -> TradingProof:
        job = prep.job
        chain = self._chain(job.symbol)
        self._stats.pending += 1
        try:
            result: ProofResult = await self.pool.prove(job, priority)
        except Exception as exc:
            chain.failed[job.batch_id] = str(exc)
            self._finish(None)
            raise ProofFailed(f"symbol {job.symbol} batch {job.batch_id}: {exc}") from exc
        if not result.ok:
            chain.failed[job.batch_id] = result.error
            self._finish(None)
            raise ProofFailed(f"symbol {job.symbol} batch {job.batch_id}: {result.error}")
        proof = TradingProof(job.symbol, job.batch_id, int(prep.ops["seq"][0]),
                             int(prep.ops["seq"][-1]), prep.ops, prep.trades, result.proof,
                             b"", result.post_root, result.priority, result.prove_s,
                             result.queue_wait_s, prep.divergent)
        proof.pre_root = proof.batch_proof().public.pre_root
        chain.proofs[job.batch_id] = proof
        self._finish(result)
        return proof

    def _finish(self, result: ProofResult | None) -> None:
        s = self._stats
        s.pending -= 1
        s.total_proofs_generated += 1
        if result is None:
            s.failed_proofs += 1
            return
        s.successful_proofs += 1
        s.total_operations_proven += result.n_ops
        self._prove_s += result.prove_s
        self._wait_s += result.queue_wait_s
        s.avg_generation_time_ms = 1e3 * self._prove_s / s.successful_proofs
        s.avg_queue_wait_ms = 1e3 * self._wait_s / s.successful_proofs

    def _spawn(self, prep: _Prepared, priority) -> asyncio.Task:
        task = asyncio.ensure_future(self._prove(prep, ProofPriority.parse(priority)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------ the SPEC API --
    async def prove_order_placement(self, order_record, priority=ProofPriority.NORMAL) -> TradingProof:
        """Prove one new order (LIMIT, IOC, MARKET, FOK or POST_ONLY) as a batch
        of its own."""
        ops = _records(order_record)
        if len(ops) != 1 or int(ops["kind"][0]) not in NEW_ORDER_KINDS:
            raise ValueError("order placement takes one new-order record (limit, IOC, market, FOK, "
                             "post-only)")
        return await self._spawn(self._prepare(ops), priority)

    async def prove_order_matching(self, taker_order, maker_orders=None, trades=None,
                                   priority=ProofPriority.NORMAL) -> TradingProof:
        """Prove a taker's match.  If the caller states the makers it hit
        (their handles, in order) or the trades (TRADE_DTYPE), they must be
        what the rules give, else EngineDisagrees and nothing is applied."""
        ops = _records(taker_order)
        if len(ops) != 1 or int(ops["kind"][0]) not in NEW_ORDER_KINDS:
            raise ValueError("order matching takes one taker record (a new order)")
        if maker_orders is not None or trades is not None:
            chain = self._chain(int(ops["symbol"][0]))
            trial = Book.from_cells(chain.book.cells)
            probe = ops.copy()
            if probe["seq"][0] == 0:
                probe["seq"], probe["ts_ns"] = trial.next_seq, max(int(probe["ts_ns"][0]), trial.last_ts)
            got = trial.process(probe)
            if maker_orders is not None and [int(h) for h in maker_orders] != got["maker_handle"].tolist():
                raise EngineDisagrees(f"the taker hits makers {got['maker_handle'].tolist()} by the "
                                      f"rules, not {[int(h) for h in maker_orders]}")
            if trades is not None:
                claim = np.asarray(trades)
                fields = ("maker_handle", "price", "qty")
                if len(claim) != len(got) or any((claim[f] != got[f]).any() for f in fields):
                    raise EngineDisagrees("the stated trades are not the ones the rules give")
        return await self._spawn(self._prepare(ops), priority)

    async def prove_order_cancellation(self, cancel_record, priority=ProofPriority.NORMAL
                                       ) -> TradingProof:
        """Prove a cancel (or reduce) as a batch of its own; the proof shows
        whether it removed a live order or was rejected, and why."""
        ops = _records(cancel_record)
        if len(ops) != 1 or int(ops["kind"][0]) not in (Kind.CANCEL, Kind.REDUCE):
            raise ValueError("order cancellation takes one CANCEL or REDUCE record")
        return await self._spawn(self._prepare(ops), priority)

    async def prove_batch_operations(self, ops, batch_id: int | None = None,
                                     priority=ProofPriority.NORMAL) -> TradingProof:
        """Prove `ops` (one symbol) as one batch: batch `batch_id` if given
        (it must be the symbol's next), else the next."""
        return await self._spawn(self._prepare(ops, batch_id), priority)

    async def prove_operation_async(self, op, priority=ProofPriority.NORMAL) -> asyncio.Task:
        """Apply `op` (a record or a batch of them) now and return at once an
        awaitable of its proof: the SPEC's receiver."""
        return self._spawn(self._prepare(op), priority)

    def get_stats(self) -> ManagerStats:
        return ManagerStats(**vars(self._stats))

    # ---------------------------------------------------------- closing --
    async def drain(self) -> None:
        """Wait until every proof started so far has finished (or failed)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        await asyncio.to_thread(self.pool.close)

    def close(self) -> None:
        self.pool.close()

    async def __aenter__(self) -> "TradingZkVMManager":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


# -------------------------------------------------------------- engine --

class ZkProvableCLOBEngine:
    """An engine Book for one symbol whose every operation is proven.  The
    engine answers at once; the proof follows (a batch of its own, or the
    batch a BatchProofProcessor puts it in).  The manager's shadow book
    re-runs each record with the engine's outcome as its claim; a difference
    is counted (TradingProof.divergent, ManagerStats.divergences) and the
    proof covers what the rules say."""

    def __init__(self, symbol: int, zkvm_manager: TradingZkVMManager,
                 enable_proof_generation: bool = True, async_proofs: bool = True,
                 processor: "BatchProofProcessor | None" = None):
        self.symbol, self.manager, self.processor = symbol, zkvm_manager, processor
        self.enable_proof_generation, self.async_proofs = enable_proof_generation, async_proofs
        # the engine starts from the state the symbol's chain is in (the empty book at first)
        self.book = Book.from_cells(zkvm_manager.book(symbol).cells)

    async def submit_order_with_proof(self, kind: Kind, side: Side = 0, price: int = 0, qty: int = 0,
                                      *, handle: int = 0, account: int = 0, client_id: int = 0,
                                      priority=ProofPriority.NORMAL
                                      ) -> tuple[Outcome, "asyncio.Future[TradingProof] | None"]:
        """Run one operation on the engine book: (its outcome, an awaitable of
        the proof covering it; None with proof generation off).  With
        async_proofs off the proof is finished when this returns."""
        ts = max(time.time_ns(), self.book.last_ts)
        out = self.book.submit(kind, side, price, qty, handle=handle, account=account,
                               client_id=client_id, ts_ns=ts)
        if not self.enable_proof_generation:
            return out, None
        rec = np.zeros(1, dtype=OP_DTYPE)
        rec[0] = (out.seq, ts, handle, client_id, price, qty, account, self.symbol, kind, side,
                  FLAG_CLAIMED, out.filled, len(out.trades), out.status, out.reason, 0)
        if int(kind) in NEW_ORDER_KINDS:
            rec["handle"] = out.handle
        if self.processor is not None:
            fut = await self.processor.add_operation(rec, priority)
        else:
            fut = await self.manager.prove_operation_async(rec, priority)
        if not self.async_proofs:
            await asyncio.wait([fut])
        return out, fut


# ---------------------------------------------------------- batching --

@dataclass
class BatchStats:
    total_batches_processed: int = 0
    failed_batches: int = 0
    avg_batch_size: float = 0.0
    avg_batch_processing_time_ms: float = 0.0   # batch closed -> proof ready
    pending_operations: int = 0
    closed_by: dict = field(default_factory=lambda: {"size": 0, "timeout": 0, "critical": 0,
                                                     "flush": 0})


@dataclass
class _OpenBatch:
    records: list = field(default_factory=list)
    futures: list = field(default_factory=list)
    priority: ProofPriority = ProofPriority.LOW
    timer: asyncio.TimerHandle | None = None


class BatchProofProcessor:
    """Groups operations into batches per symbol: a batch closes at
    max_batch_size operations, batch_timeout after its first, or at once on
    a Critical operation (which also raises the whole batch to Critical).
    Up to max_concurrent_batches batches prove at once (one without
    enable_parallel_processing); a batch takes the most urgent priority of
    its operations."""

    def __init__(self, batch_config: BatchConfig | None, zkvm_manager: TradingZkVMManager):
        self.config = batch_config or zkvm_manager.batch_config
        self.manager = zkvm_manager
        limit = self.config.max_concurrent_batches if self.config.enable_parallel_processing else 1
        self._slots = asyncio.Semaphore(limit)
        self._open: dict[int, _OpenBatch] = {}
        self._running: set[asyncio.Task] = set()
        self._stats = BatchStats()
        self._sizes = 0
        self._seconds = 0.0

    async def add_operation(self, op, priority=ProofPriority.NORMAL) -> asyncio.Future:
        """Queue one operation record; returns at once an awaitable of the
        TradingProof of the batch that will hold it."""
        rec = _records(op)
        if len(rec) != 1:
            raise ValueError("add_operation takes one record; use prove_batch_operations for many")
        priority = ProofPriority.parse(priority)
        symbol = int(rec["symbol"][0])
        batch = self._open.setdefault(symbol, _OpenBatch())
        fut = asyncio.get_running_loop().create_future()
        batch.records.append(rec)
        batch.futures.append(fut)
        batch.priority = min(batch.priority, priority)
        self._stats.pending_operations += 1
        if priority == ProofPriority.CRITICAL:
            self._close(symbol, "critical")
        elif len(batch.records) >= self.config.max_batch_size:
            self._close(symbol, "size")
        elif batch.timer is None:
            batch.timer = asyncio.get_running_loop().call_later(
                self.config.batch_timeout, self._close, symbol, "timeout")
        return fut

    def _close(self, symbol: int, reason: str) -> None:
        batch = self._open.pop(symbol, None)
        if batch is None or not batch.records:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        self._stats.closed_by[reason] += 1
        self._stats.pending_operations -= len(batch.records)
        ops = np.concatenate(batch.records)
        started = time.perf_counter()
        try:
            parts = self._prepare_split(ops)
        except Exception as exc:
            for f in batch.futures:
                if not f.done():
                    f.set_exception(exc)
            self._stats.failed_batches += 1
            return
        at = 0
        for prep in parts:
            futs = batch.futures[at:at + len(prep.ops)]
            at += len(prep.ops)
            task = asyncio.ensure_future(self._run(prep, batch.priority, futs, started))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _prepare_split(self, ops: np.ndarray) -> list[_Prepared]:
        """The batch as one job, or halves of it if it takes more engine steps
        than a proof holds (ids still in order)."""
        try:
            return [self.manager._prepare(ops)]
        except ValueError as exc:
            if "engine steps" not in str(exc) or len(ops) == 1:
                raise
        half = len(ops) // 2
        return self._prepare_split(ops[:half]) + self._prepare_split(ops[half:])

    async def _run(self, prep: _Prepared, priority, futures, started: float) -> None:
        async with self._slots:
            try:
                proof = await self.manager._prove(prep, priority)
            except Exception as exc:
                self._stats.failed_batches += 1
                for f in futures:
                    if not f.done():
                        f.set_exception(exc)
                return
        s = self._stats
        s.total_batches_processed += 1
        self._sizes += len(prep.ops)
        self._seconds += time.perf_counter() - started
        s.avg_batch_size = self._sizes / s.total_batches_processed
        s.avg_batch_processing_time_ms = 1e3 * self._seconds / s.total_batches_processed
        for f in futures:
            if not f.done():
                f.set_result(proof)

    async def flush(self) -> None:
        """Close every open batch now and wait for all batches to be proven."""
        for symbol in list(self._open):
            self._close(symbol, "flush")
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def close(self) -> None:
        await self.flush()

    def get_stats(self) -> BatchStats:
        s = self._stats
        return BatchStats(s.total_batches_processed, s.failed_batches, s.avg_batch_size,
                          s.avg_batch_processing_time_ms, s.pending_operations, dict(s.closed_by))


# ------------------------------------------------------ the generator --

@dataclass
class GeneratorStats:
    total_requests: int = 0
    completed_requests: int = 0
    failed_requests: int = 0
    avg_queue_wait_time_ms: float = 0.0   # in this generator's queue and the pool's
    avg_processing_time_ms: float = 0.0   # proving
    critical_priority_requests: int = 0
    high_priority_requests: int = 0
    normal_priority_requests: int = 0
    low_priority_requests: int = 0


class AsyncProofGenerator:
    """Priority proof requests: each request is applied to its symbol's
    shadow book when submitted (so the chain follows submission order) and
    waits in a PriorityQueue (with aging) until one of `num_workers` request
    slots takes it to the manager's pool; the pool orders them again by the
    same priority."""

    def __init__(self, zkvm_manager: TradingZkVMManager, num_workers: int = 4,
                 age_step: float | None = DEFAULT_AGE_STEP):
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, not {num_workers}")
        self.manager, self.num_workers = zkvm_manager, num_workers
        self._queue = PriorityQueue(age_step)
        self._ready: asyncio.Semaphore | None = None
        self._workers: list[asyncio.Task] = []
        self._pending: set[asyncio.Future] = set()
        self._stats = GeneratorStats()
        self._by_priority = defaultdict(int)
        self._wait_s = self._prove_s = 0.0

    async def submit_request(self, op, priority=ProofPriority.NORMAL) -> asyncio.Future:
        """Apply `op` now; returns at once an awaitable of its TradingProof."""
        priority = ProofPriority.parse(priority)
        prep = self.manager._prepare(op)
        if self._ready is None:
            self._ready = asyncio.Semaphore(0)
            self._workers = [asyncio.ensure_future(self._work()) for _ in range(self.num_workers)]
        fut = asyncio.get_running_loop().create_future()
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        self._queue.put((prep, fut), priority)
        self._ready.release()
        self._stats.total_requests += 1
        self._by_priority[priority] += 1
        return fut

    async def _work(self) -> None:
        while True:
            await self._ready.acquire()
            (prep, fut), priority, waited = self._queue.get_nowait()
            try:
                proof = await self.manager._prove(prep, priority)
            except Exception as exc:
                self._stats.failed_requests += 1
                if not fut.done():
                    fut.set_exception(exc)
                continue
            self._stats.completed_requests += 1
            self._wait_s += waited + proof.queue_wait_s
            self._prove_s += proof.prove_s
            if not fut.done():
                fut.set_result(proof)

    def get_stats(self) -> GeneratorStats:
        s = self._stats
        done = max(1, s.completed_requests)
        return GeneratorStats(s.total_requests, s.completed_requests, s.failed_requests,
                              1e3 * self._wait_s / done, 1e3 * self._prove_s / done,
                              *(self._by_priority[p] for p in LEVELS))

    async def close(self) -> None:
        """Wait for every request submitted, then stop the request slots."""
        await asyncio.gather(*self._pending, return_exceptions=True)
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
