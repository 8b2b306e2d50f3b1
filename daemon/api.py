"""The in-process Python API (docs/API.md), asyncio-native:
the sidecar in process, fed by calls instead of a ring.

It runs on the daemon's own machinery: one Sequencer (shadow books re-running
every operation by the rules, the batch policy and close reasons, the
chain's cap on ops rows: daemon/sequencer.py) and one WorkerPool proving batches
by priority (daemon/workers.py).  Nothing here cuts batches, detects
divergences or sizes traces.

    TradingZkVMManager     one chain of batch proofs per symbol, from the
                           empty book; each request is a batch of its own
    ZkProvableCLOBEngine   an engine Book whose orders come back at once with
                           an awaitable proof of them
    BatchProofProcessor    operations fed one by one, cut into batches by its
                           own BatchPolicy (size, timeout, Critical closes at
                           once), up to max_concurrent_batches proven at once
    AsyncProofGenerator    requests proven through num_workers slots, by
                           priority with aging

What an API's pre_state/post_state hashes are here: the proof's pre- and
post-state roots (Merkle roots of the book's state table), which chain batch
to batch from the empty book.  The caller never supplies them: the shadow
book computes the states, so a caller cannot claim a state the rules do not
give.  Every proof returned verifies with verify_chain over its symbol's
batches (TradingZkVMManager.chain).

Operations are engine records (engine/records.py OP_DTYPE); order(), cancel()
and reduce() build them.  A record whose seq is 0 is numbered by the manager
(next sequence number, timestamp now or later); otherwise it must continue
its symbol's stream.  Each symbol has one open batch, which a
BatchProofProcessor fills; a request closes it first (it is proven as it
stands) and is a batch of its own.  Every operation's proof is found by its
sequence number (TradingZkVMManager.proof_of), whichever call closed its
batch.
"""
from __future__ import annotations

import asyncio
import bisect
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..engine import records
from ..engine.book import Book, Outcome
from ..engine.records import FLAG_CLAIMED, NEW_ORDER_KINDS, OP_DTYPE, Kind, Side
from ..prover.orderbook import proof_file
from ..prover.orderbook.batch import BatchProof, verify_batch, verify_chain
from ..prover.orderbook.air import book_length
from ..prover.orderbook.params import proof_options
from ..prover.orderbook.witness import check_trace_length, trace_length_for
from ..prover.params import DEFAULT_MIN_SECURITY
from ..prover.verify import Verified
from .batches import CLOSE_REASONS, Batch, BatchPolicy, CloseReason
from .jobs import ProofJob, warm_up_job
from .metrics import Metrics
from .priority import DEFAULT_AGE_STEP, LEVELS, PriorityQueue, ProofPriority
from .sequencer import Sequencer
from .workers import WorkerPool


# ------------------------------------------------------------- records --

def order(kind: Kind, side: Side, price: int, qty: int, *, account: int = 0, client_id: int = 0,
          symbol: int = 0, ts_ns: int = 0) -> np.ndarray:
    """One new-order record (seq 0: the manager numbers it)."""
    return records.operation(kind=kind, side=side, price=price, qty=qty, account=account,
                             client_id=client_id, symbol=symbol, ts_ns=ts_ns)


def cancel(handle: int, *, symbol: int = 0, account: int = 0, ts_ns: int = 0) -> np.ndarray:
    return records.operation(kind=Kind.CANCEL, handle=handle, symbol=symbol, account=account,
                             ts_ns=ts_ns)


def reduce(handle: int, qty: int, *, symbol: int = 0, account: int = 0, ts_ns: int = 0) -> np.ndarray:
    return records.operation(kind=Kind.REDUCE, handle=handle, qty=qty, symbol=symbol,
                             account=account, ts_ns=ts_ns)


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


def _numbered(ops: np.ndarray, book: Book) -> np.ndarray:
    """`ops` (a copy of the caller's) numbered in place when every seq is
    0: the book's next sequence numbers, timestamps now or the record's own,
    never going back."""
    unnumbered = ops["seq"] == 0
    if unnumbered.all():
        ops["seq"] = np.arange(book.next_seq, book.next_seq + len(ops), dtype=np.uint64)
        now = np.uint64(time.time_ns())
        ops["ts_ns"] = np.maximum.accumulate(np.maximum(
            np.where(ops["ts_ns"] == 0, now, ops["ts_ns"]), np.uint64(book.last_ts)))
    elif unnumbered.any():
        raise ValueError("either every record of a batch has seq 0 (numbered here) or none has")
    return ops


# ------------------------------------------------------------- results --

@dataclass(frozen=True)
class BatchConfig:
    """The API's batching knobs (batch_timeout in seconds)."""

    max_batch_size: int = 100
    batch_timeout: float = 0.010
    enable_parallel_processing: bool = True
    max_concurrent_batches: int = 4

    def __post_init__(self):
        if self.max_concurrent_batches < 1:
            raise ValueError(f"max_concurrent_batches must be >= 1: {self}")
        self.policy()      # max_batch_size and batch_timeout, checked by the policy itself

    def policy(self) -> BatchPolicy:
        return BatchPolicy(self.max_batch_size, self.batch_timeout)

    @property
    def concurrency(self) -> int:
        """Batches proven at once."""
        return self.max_concurrent_batches if self.enable_parallel_processing else 1


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
    divergent: list[int] = field(default_factory=list)   # seqs whose engine claim differed

    def batch_proof(self) -> BatchProof:
        return proof_file.decode(self.proof)

    def verify(self, min_security: int = DEFAULT_MIN_SECURITY) -> Verified:
        """Verify this batch alone (its pre-state as it claims it), at the
        heights this process's own pipeline proved it at."""
        bp = self.batch_proof()
        return verify_batch(bp, min_security=min_security,
                            max_trace_length=max(bp.public.book_length, bp.public.ops_length))


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
    """A symbol's finished batches (proofs or failures) and the callers
    waiting for the proof of an operation whose batch is not finished."""

    finished: dict[int, TradingProof | ProofFailed] = field(default_factory=dict)
    starts: list[tuple[int, int, int]] = field(default_factory=list)   # (first, last, id) sorted
    waiting: list[tuple[int, asyncio.Future]] = field(default_factory=list)

    def finish(self, batch: Batch, outcome: TradingProof | ProofFailed) -> None:
        self.finished[batch.batch_id] = outcome
        bisect.insort(self.starts, (batch.first_seq, batch.last_seq, batch.batch_id))
        still = []
        for seq, fut in self.waiting:
            if batch.first_seq <= seq <= batch.last_seq:
                _settle(fut, outcome)
            else:
                still.append((seq, fut))
        self.waiting = still

    def outcome_of(self, seq: int) -> TradingProof | ProofFailed | None:
        k = bisect.bisect_right(self.starts, (seq, float("inf"), 0)) - 1
        if k >= 0 and self.starts[k][0] <= seq <= self.starts[k][1]:
            return self.finished[self.starts[k][2]]
        return None


def _settle(fut: asyncio.Future, outcome: TradingProof | ProofFailed) -> None:
    if fut.done():
        return
    if isinstance(outcome, ProofFailed):
        fut.set_exception(outcome)
    else:
        fut.set_result(outcome)


# ------------------------------------------------------------- manager --

class TradingZkVMManager:
    """Proofs of trading operations, one chain per symbol from the empty
    book, proven by a WorkerPool of `num_workers` processes with `backend`
    (default NativeBackend).  `trace_length` is the chain's cap on a
    batch's `ops` rows (default: room for any one operation and for a full
    batch of batch_config); each batch is proven at the rows it takes."""

    def __init__(self, batch_config: BatchConfig | None = None, num_workers: int = 1, backend=None,
                 *, capacity: int = 1 << 10, symbol: int = 0,
                 security_bits: int = DEFAULT_MIN_SECURITY, trace_length: int | None = None,
                 cores: list[int] | None = None, age_step: float | None = DEFAULT_AGE_STEP):
        self.batch_config = batch_config or BatchConfig()
        self.symbol, self.security_bits = symbol, security_bits
        Book(capacity, symbol)   # refuses a bad capacity or symbol now, not at the first order
        t = check_trace_length(trace_length or trace_length_for(capacity,
                                                                self.batch_config.max_batch_size),
                               capacity)
        # ParameterError (a ValueError) now if no proof of this size can reach the target
        proof_options(security_bits, book_length(capacity), t)
        self.trace_length = t
        #: the same figures the daemon reports (Metrics.status(), Prometheus text)
        self.metrics = Metrics()
        self.sequencer = Sequencer(capacity, t, self.batch_config.policy(), self.metrics)
        self.pool = WorkerPool(num_workers, cores, backend, age_step=age_step,
                               warm=warm_up_job(capacity, t, security_bits))
        self._chains: dict[int, _Chain] = defaultdict(_Chain)
        self._proving: set[asyncio.Future] = set()
        self._tasks: set[asyncio.Task] = set()
        self._unproven: set[tuple[int, int]] = set()     # (symbol, batch id) closed, not yet proven

    # ----------------------------------------------------------- chains --
    def book(self, symbol: int | None = None) -> Book:
        """The shadow book of `symbol` (read it, do not process on it)."""
        return self.sequencer.shadow(self.symbol if symbol is None else symbol).book

    def proofs(self, symbol: int | None = None) -> list[TradingProof]:
        """The symbol's proven batches so far, in batch order."""
        done = self._chains[self.symbol if symbol is None else symbol].finished
        return [done[k] for k in sorted(done) if isinstance(done[k], TradingProof)]

    async def chain(self, symbol: int | None = None) -> list[BatchProof]:
        """Every closed batch of `symbol` once all are proven, decoded, in
        order: the input of verify_chain.  ProofFailed names a batch that
        failed."""
        await self.drain()
        symbol = self.symbol if symbol is None else symbol
        done = self._chains[symbol].finished
        closed = self.sequencer.shadow(symbol).next_batch_id
        for k in range(closed):
            outcome = done.get(k)
            if not isinstance(outcome, TradingProof):
                why = outcome or "closed, not proven"
                raise ProofFailed(f"symbol {symbol} batch {k} failed ({why}): the chain has a gap")
        return [done[k].batch_proof() for k in range(closed)]

    async def verify_chain(self, symbol: int | None = None) -> Verified:
        symbol = self.symbol if symbol is None else symbol
        return verify_chain(await self.chain(symbol), min_security=self.security_bits, symbol=symbol,
                            max_trace_length=self.trace_length)

    # ----------------------------------------------------- the pipeline --
    def apply(self, ops, priority: ProofPriority = ProofPriority.NORMAL, *,
              policy: BatchPolicy | None = None, whole: bool = False
              ) -> tuple[np.ndarray, list[Batch]]:
        """Number `ops` (one symbol's records; see the module docstring) and
        run them on the symbol's shadow book: (the records as numbered, the
        batches that closed, cut by `policy`, default the manager's).  With
        `whole` nothing cuts them and records that would overflow the trace
        raise BatchOverflow with nothing applied.  A broken stream raises
        StreamError with nothing applied.  The closed batches are the
        caller's to prove (prove)."""
        ops = _records(ops)
        shadow = self.sequencer.shadow(int(ops["symbol"][0]))
        ops = _numbered(ops, shadow.book)
        shadow.check_stream(ops)
        seen = np.full(len(ops), time.monotonic_ns(), np.int64)
        closed = self.sequencer.feed(ops, seen, time.monotonic(), priority=ProofPriority.parse(priority),
                                     policy=policy, whole=whole)
        return ops, self._handed_out(closed)

    def request(self, ops, priority: ProofPriority = ProofPriority.NORMAL,
                batch_id: int | None = None) -> Batch:
        """`ops` (one symbol's records) as a batch of their own, applied
        and closed (REQUEST): batch `batch_id` if given, which must be the
        symbol's next.  A batch left open in the symbol (a processor's) is
        closed first and proven by the manager.  The caller proves the
        batch returned."""
        ops = _records(ops)
        symbol = int(ops["symbol"][0])
        shadow = self.sequencer.shadow(symbol)
        if batch_id is not None and batch_id != shadow.next_batch_id + bool(shadow.open_count):
            raise ValueError(f"symbol {symbol}: batch ids count up by one; the next is "
                             f"{shadow.next_batch_id + bool(shadow.open_count)}, not {batch_id}")
        if shadow.open_count:
            self._spawn(self.close_batch(symbol, CloseReason.FLUSH))
        self.apply(ops, priority, whole=True)
        return self.close_batch(symbol, CloseReason.REQUEST)

    def close_batch(self, symbol: int, reason: CloseReason = CloseReason.FLUSH) -> Batch | None:
        """Close the symbol's open batch now; the caller proves it."""
        batch = self.sequencer.close(symbol, reason)
        return self._handed_out([batch])[0] if batch is not None else None

    def expire(self, symbol: int, policy: BatchPolicy) -> list[Batch]:
        """Close the symbol's open batch if it is older than the policy's
        timeout; the caller proves it."""
        return self._handed_out(self.sequencer.tick(time.monotonic(), policy, symbol))

    def timeout_at(self, symbol: int, policy: BatchPolicy) -> float | None:
        """When the symbol's open batch times out under `policy`
        (time.monotonic), or None if none is open."""
        return self.sequencer.next_timeout(policy, symbol)

    def _handed_out(self, batches: list[Batch]) -> list[Batch]:
        """Closed batches given to a caller to prove: drain() waits for them."""
        self._unproven.update((b.symbol, b.batch_id) for b in batches)
        return batches

    async def prove(self, batch: Batch) -> TradingProof:
        """Prove a closed batch at its priority; the proof also settles
        every proof_of() future of its operations.  ProofFailed if it could
        not be proven (the pool refused or failed the job)."""
        label = batch.priority.label
        self.metrics.batch_queued(label)
        result = None
        try:
            fut = asyncio.wrap_future(self.pool.submit(ProofJob.of(batch, self.security_bits),
                                                       batch.priority))
            self._proving.add(fut)
            fut.add_done_callback(self._proving.discard)
            result = await fut
            error = result.error
        except Exception as exc:            # a crashed worker, a closed or broken pool
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._unproven.discard((batch.symbol, batch.batch_id))
        chain = self._chains[batch.symbol]
        waited = result.queue_wait_s if result is not None else None
        if error is not None:
            self.metrics.job_finished(label, waited, None)
            failure = ProofFailed(f"symbol {batch.symbol} batch {batch.batch_id}: {error}")
            chain.finish(batch, failure)
            raise failure
        self.metrics.job_finished(label, waited, result.prove_s,
                                  np.maximum(time.monotonic_ns() - batch.seen_ns, 0) / 1e9)
        proof = TradingProof(batch.symbol, batch.batch_id, batch.first_seq, batch.last_seq,
                             batch.ops, batch.trades, result.proof, b"", result.post_root,
                             result.priority, result.prove_s, result.queue_wait_s,
                             list(batch.divergent))
        proof.pre_root = proof.batch_proof().public.pre_root
        chain.finish(batch, proof)
        return proof

    def proof_of(self, symbol: int, seq: int) -> asyncio.Future:
        """An awaitable of the TradingProof of the batch holding operation
        `seq` of `symbol` (ProofFailed if that batch fails)."""
        fut = asyncio.get_running_loop().create_future()
        chain = self._chains[symbol]
        outcome = chain.outcome_of(seq)
        if outcome is not None:
            _settle(fut, outcome)
        else:
            chain.waiting.append((seq, fut))
        return fut

    def _spawn(self, batch: Batch) -> asyncio.Task:
        task = asyncio.ensure_future(self.prove(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------- the in-process API --
    async def prove_order_placement(self, order_record, priority=ProofPriority.NORMAL) -> TradingProof:
        """Prove one new order (LIMIT, IOC, MARKET, FOK or POST_ONLY) as a batch
        of its own."""
        ops = _records(order_record)
        if len(ops) != 1 or int(ops["kind"][0]) not in NEW_ORDER_KINDS:
            raise ValueError("order placement takes one new-order record (limit, IOC, market, FOK, "
                             "post-only)")
        return await self._spawn(self.request(ops, priority))

    async def prove_order_matching(self, taker_order, maker_orders=None, trades=None,
                                   priority=ProofPriority.NORMAL) -> TradingProof:
        """Prove a taker's match.  If the caller states the makers it hit
        (their handles, in order) or the trades (TRADE_DTYPE), they must be
        what the rules give, else EngineDisagrees and nothing is applied."""
        ops = _records(taker_order)
        if len(ops) != 1 or int(ops["kind"][0]) not in NEW_ORDER_KINDS:
            raise ValueError("order matching takes one taker record (a new order)")
        if maker_orders is not None or trades is not None:
            shadow = self.sequencer.shadow(int(ops["symbol"][0]))
            _, got = shadow.preview(_numbered(ops.copy(), shadow.book))
            if maker_orders is not None and [int(h) for h in maker_orders] != got["maker_handle"].tolist():
                raise EngineDisagrees(f"the taker hits makers {got['maker_handle'].tolist()} by the "
                                      f"rules, not {[int(h) for h in maker_orders]}")
            if trades is not None:
                claim = np.asarray(trades)
                fields = ("maker_handle", "price", "qty")
                if len(claim) != len(got) or any((claim[f] != got[f]).any() for f in fields):
                    raise EngineDisagrees("the stated trades are not the ones the rules give")
        return await self._spawn(self.request(ops, priority))

    async def prove_order_cancellation(self, cancel_record, priority=ProofPriority.NORMAL
                                       ) -> TradingProof:
        """Prove a cancel (or reduce) as a batch of its own; the proof shows
        whether it removed a live order or was rejected, and why."""
        ops = _records(cancel_record)
        if len(ops) != 1 or int(ops["kind"][0]) not in (Kind.CANCEL, Kind.REDUCE):
            raise ValueError("order cancellation takes one CANCEL or REDUCE record")
        return await self._spawn(self.request(ops, priority))

    async def prove_batch_operations(self, ops, batch_id: int | None = None,
                                     priority=ProofPriority.NORMAL) -> TradingProof:
        """Prove `ops` (one symbol) as one batch: batch `batch_id` if given
        (it must be the symbol's next), else the next."""
        return await self._spawn(self.request(ops, priority, batch_id))

    async def prove_operation_async(self, op, priority=ProofPriority.NORMAL) -> asyncio.Task:
        """Apply `op` (a record or a batch of them) now and return at once an
        awaitable of its proof: the API's receiver."""
        return self._spawn(self.request(op, priority))

    def get_stats(self) -> ManagerStats:
        st = self.metrics.status()
        batches = st["batches"]
        proven = batches["proven"]

        def mean_ms(key: str) -> float:
            parts = [st["priorities"][p.label][key] for p in LEVELS]
            n = sum(s["count"] for s in parts)
            return 1e3 * sum(s["count"] * s["mean"] for s in parts if s["count"]) / n if n else 0.0

        return ManagerStats(proven + batches["failed"], proven, batches["failed"], st["ops"]["proven"],
                            mean_ms("proving_s"), mean_ms("queue_wait_s"),
                            st["divergences"]["total"], len(self._proving))

    # ---------------------------------------------------------- closing --
    async def drain(self) -> None:
        """Wait until every batch closed so far is proven (or has failed),
        those a processor or a generator still holds included."""
        while self._tasks or self._proving or self._unproven:
            if self._tasks or self._proving:
                await asyncio.gather(*self._tasks, *self._proving, return_exceptions=True)
            else:
                await asyncio.sleep(0.005)       # held by their owners' limits; they prove them

    async def aclose(self) -> None:
        await self.drain()
        await asyncio.to_thread(self.pool.close)

    def close(self) -> None:
        """Close the worker pool (after the proofs it holds)."""
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
        # the engine's record with its claimed outcome (for a new order, the
        # handle is the engine's answer; for a cancel or reduce, its target)
        rec = records.operation(seq=out.seq, ts_ns=ts, client_id=client_id, price=price, qty=qty,
                                account=account, symbol=self.symbol, kind=kind, side=side,
                                flags=FLAG_CLAIMED, filled=out.filled, trades=len(out.trades),
                                status=out.status, reason=out.reason,
                                handle=out.handle if int(kind) in NEW_ORDER_KINDS else handle)
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
    pending_operations: int = 0                 # added, proof not ready
    closed_by: dict = field(default_factory=lambda: dict.fromkeys(CLOSE_REASONS, 0))


class BatchProofProcessor:
    """Feeds operations one by one into the manager's open batches, cut by
    this processor's BatchPolicy (max_batch_size, batch_timeout; a Critical
    operation closes its batch at once and raises it to Critical); up to
    `concurrency` of the batches it closes prove at once."""

    def __init__(self, batch_config: BatchConfig | None, zkvm_manager: TradingZkVMManager):
        self.config = batch_config or zkvm_manager.batch_config
        self.policy = self.config.policy()
        self.manager = zkvm_manager
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._symbols: set[int] = set()
        self._running: set[asyncio.Task] = set()
        self._waiting: set[asyncio.Future] = set()
        self._stats = BatchStats()
        self._sizes = 0
        self._seconds = 0.0

    async def add_operation(self, op, priority=ProofPriority.NORMAL) -> asyncio.Future:
        """Queue one operation record; returns at once an awaitable of the
        TradingProof of the batch that will hold it."""
        rec = _records(op)
        if len(rec) != 1:
            raise ValueError("add_operation takes one record; use prove_batch_operations for many")
        symbol = int(rec["symbol"][0])
        applied, closed = self.manager.apply(rec, ProofPriority.parse(priority), policy=self.policy)
        fut = self.manager.proof_of(symbol, int(applied["seq"][0]))
        self._waiting.add(fut)
        fut.add_done_callback(self._waiting.discard)
        self._symbols.add(symbol)
        self._launch(closed)
        self._arm(symbol)
        return fut

    def _arm(self, symbol: int) -> None:
        """A timer for the symbol's open batch, if it has one and none is set."""
        due = self.manager.timeout_at(symbol, self.policy)
        if due is None or symbol in self._timers:
            return
        self._timers[symbol] = asyncio.get_running_loop().call_later(
            max(0.0, due - time.monotonic()), self._expire, symbol)

    def _expire(self, symbol: int) -> None:
        del self._timers[symbol]
        self._launch(self.manager.expire(symbol, self.policy))
        self._arm(symbol)       # a younger batch opened since the timer was set

    def _launch(self, batches: list[Batch]) -> None:
        for batch in batches:
            self._stats.closed_by[batch.reason.value] += 1
            task = asyncio.ensure_future(self._run(batch, time.perf_counter()))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: Batch, closed_at: float) -> None:
        async with self._slots:
            try:
                await self.manager.prove(batch)
            except ProofFailed:                 # its futures carry the failure
                self._stats.failed_batches += 1
                return
        s = self._stats
        s.total_batches_processed += 1
        self._sizes += len(batch.ops)
        self._seconds += time.perf_counter() - closed_at
        s.avg_batch_size = self._sizes / s.total_batches_processed
        s.avg_batch_processing_time_ms = 1e3 * self._seconds / s.total_batches_processed

    async def flush(self) -> None:
        """Close every open batch now and wait for all batches to be proven."""
        for symbol in sorted(self._symbols):
            batch = self.manager.close_batch(symbol, CloseReason.FLUSH)
            self._launch([batch] if batch is not None else [])
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def close(self) -> None:
        await self.flush()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def get_stats(self) -> BatchStats:
        s = self._stats
        return BatchStats(s.total_batches_processed, s.failed_batches, s.avg_batch_size,
                          s.avg_batch_processing_time_ms, len(self._waiting), dict(s.closed_by))


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
    shadow book and closed as a batch when submitted (so the chain follows
    submission order), then waits in a PriorityQueue (with aging) until one
    of `num_workers` request slots gives it to the manager's pool, which
    orders the slots' batches again by the same priority."""

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
        batch = self.manager.request(op, priority)
        if self._ready is None:
            self._ready = asyncio.Semaphore(0)
            self._workers = [asyncio.ensure_future(self._work()) for _ in range(self.num_workers)]
        fut = asyncio.get_running_loop().create_future()
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        self._queue.put((batch, fut), priority)
        self._ready.release()
        self._stats.total_requests += 1
        self._by_priority[priority] += 1
        return fut

    async def _work(self) -> None:
        while True:
            await self._ready.acquire()
            (batch, fut), priority, waited = self._queue.get_nowait()
            try:
                proof = await self.manager.prove(batch)
            except ProofFailed as exc:
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
