"""Batch proofs of the order book: prove_batch, verify_batch, verify_chain.

A batch proof is a STARK proof of the batch statement (air.BatchStatement:
the `book` domain of S rows, S fixed by the capacity, and the `ops` domain
of T' rows, sized to the batch) plus its public inputs (BatchPublic): the
operation records with their outcomes, the trade records, the pre-state
root and its Link.  The post-state root is the proof's own root of segment
``book.post``; a chain verifier hands it (with the Link verify() derives) to
the next batch, starting from the empty book, whose root and Link it
computes itself (docs/SECURITY.md, "Chained segments").  The state lives on
the `book` domain alone, so batches of any T' chain; what a chain keeps is
the capacity (so S), the blowup and the symbol.

A book's root and Link are functions of its cells alone (BookState.of), so
the batches of one symbol can be proven in any order and in parallel: a
batch needs the engine's cells before it, not the proof of the batch before.

A proof is built from the engine's traced run of its operations.
`prove_batch` (and `prepare_batch`) make that run, for callers that have
only operations; `prepare_run` takes a run made elsewhere (the daemon's
shadow book makes it once, as it cuts the batch) and runs nothing.  A run is
not trusted: `prepare_run` refuses what it cannot index (engine/trace.py
check_steps), and a run that is not the engine's, or outcomes and trades
that are not the rules', give a proof verify_batch rejects.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields

import numpy as np

from ...engine import invariants, trace
from ...engine.book import Book
from ...engine.native import lib
from ...engine.proof_table import proof_table
from ...engine.records import OP_DTYPE, TRADE_DTYPE, Kind, Reason, Status
from .. import field as F
from .. import zk_keys
from ..domain import Link
from ..params import DEFAULT_MIN_SECURITY, ParameterError, ProofOptions
from ..proof import Proof
from ..prove import SegmentCommitment, prove
from ..verify import Verified, VerificationError, verify
from . import witness as W
from .air import (MAX_LOG_OPS, WORD, BatchStatement, OrderBookAir, algebraic_degree, book_length, classify_all,
                  noncanonical)
from .params import MAX_TRACE_LENGTH, check_zk_ops_length, zk_security
from . import zk_chain, zk_lane
from .zk_air import ZkBatchStatement, ZkOpsAir, shape_statement
from .zk_chain import ZkChain, zk_state_table
from .zk_record_checks import RecordChecks


class BatchRejected(VerificationError):
    """The public inputs themselves break a rule the verifier checks in plain
    code (sequence, timestamps, symbol, field rejections, trade fields)."""


@dataclass
class BookState:
    """A book as a chain link: its engine cells, the commitment of its proof
    state table (the `book` domain's S rows) and that table's Link.  Made by
    BookState.of (which checks the cells) or returned by prove_batch."""

    cells: np.ndarray
    commitment: SegmentCommitment
    #: None for a zk chain's first state, which the verifier commits itself
    link: Link | None
    #: zk mode: the last proven timestamp, the state table's timestamp
    #: cells (zk_air.py); 0 for the empty book and in transparent mode
    last_ts: int = 0
    #: zk_keys.table_digest of the committed table, once known (table_digest)
    known_digest: bytes | None = field(default=None, repr=False)

    def table_digest(self) -> bytes:
        """zk_keys.table_digest of the committed state table (the next
        batch's content digest reads it): the one its proof worked out for
        the state key, or worked out here once."""
        if self.known_digest is None:
            self.known_digest = zk_keys.table_digest(self.commitment.trace)
        return self.known_digest

    @property
    def root(self) -> bytes:
        return self.commitment.root

    @property
    def book_length(self) -> int:
        return self.commitment.trace.shape[0]

    @classmethod
    def of(cls, book: Book | np.ndarray, log_blowup: int) -> "BookState":
        """The state of `book`, committed here: a Book (well formed by
        construction) or engine cells, which are checked (CorruptState if
        they are not a well-formed book's)."""
        if isinstance(book, Book):
            cells = book.cells
        else:
            cells = np.asarray(book, dtype=np.uint32)
            Book.from_cells(cells)
        return cls.commit(cells, log_blowup)

    @classmethod
    def commit(cls, cells: np.ndarray, log_blowup: int) -> "BookState":
        """The state of engine cells as they are, unchecked beyond their shape
        (proof_table): for cells that never reach the engine, whose proof
        is worth only what its chain makes it (a pre-state that is not the
        previous post-state does not chain)."""
        cells = np.array(cells, dtype=np.uint32)
        s = book_length(invariants.check_shape(cells))
        com = SegmentCommitment.commit(F.encode(state_table(cells, s)), log_blowup)
        return cls(cells, com, com.link())

    @classmethod
    def zk_genesis(cls, chain: ZkChain, book: Book | np.ndarray | None = None) -> "BookState":
        """A zk chain's first state: the empty book, public (committed
        unmasked with zero salts, no link: the verifier commits it), with
        `book`'s engine cells (its next sequence number and time) when
        given; ValueError for a book that is not empty, which a zk batch
        can only start from as the post-state of the chain's batch before
        (the BookState prove_batch returned, or BookState.zk_after)."""
        empty = Book(chain.capacity, chain.symbol).cells
        cells = empty if book is None else np.array(book.cells if isinstance(book, Book) else book,
                                                     dtype=np.uint32)
        if book is not None:
            cap = invariants.check_shape(cells)
            symbol = int(cells[lib.ZK_HDR_SYMBOL])
            if (cap, symbol) != (chain.capacity, chain.symbol):
                raise ValueError(f"a book of capacity {cap}, symbol {symbol} for a zk chain of capacity "
                                 f"{chain.capacity}, symbol {chain.symbol}")
            if not np.array_equal(state_table(cells, chain.book_length), state_table(empty, chain.book_length)):
                raise ValueError("zk mode: a chain starts from the empty book; a later batch starts from the "
                                 "previous batch's post-state (the BookState prove_batch returned, or "
                                 "BookState.zk_after)")
        return cls(cells, chain.commit_state(F.encode(chain.genesis_table()), None), None, 0)

    @classmethod
    def zk_after(cls, chain: ZkChain, cells: np.ndarray, last_ts: int, batch_id: int) -> "BookState":
        """The zk state batch `batch_id` of `chain` left: the engine cells
        after it (checked) and its last operation's timestamp, committed
        under that batch's state key, as its proof committed it.  The
        table is hashed once: its digest derives the key, labels the mask
        and is the next batch's content digest's (table_digest)."""
        cells = np.array(cells, dtype=np.uint32)
        Book.from_cells(cells)
        table = F.encode(zk_state_table(state_table(cells, chain.book_length), last_ts))
        state = chain.state_key(batch_id, table)
        com = chain.commit_state(table, state)
        return cls(cells, com, com.link(), last_ts, state.table_digest)

    @property
    def zk(self) -> bool:
        """Whether this state is a zk chain's (its commitment carries salts)."""
        return self.commitment.mask is not None


@dataclass
class ZkPublic:
    """What only a zk batch publishes (docs/ZK.md section 1), in place of
    the records: the number of operations, `resumed` (the batch begins
    where its stream resumed: its first timestamp is not compared with the
    pre-state's), the leaves (``(T - 1, 8)`` canonical uint32: the operation
    leaves, then the trade and dummy leaves in their slots) and the side
    leaves' root (zk_lists)."""

    n_ops: int
    resumed: bool
    leaves: np.ndarray
    side_root: bytes


@dataclass
class BatchPublic:
    log2_capacity: int
    book_length: int          # S: the book domain's rows (the capacity's: book_length)
    ops_length: int           # T': the ops domain's rows
    symbol: int
    first_seq: int
    ops: np.ndarray | None    # OP_DTYPE, outcome fields filled; None in zk mode (not public)
    trades: np.ndarray | None  # TRADE_DTYPE; None in zk mode
    pre_root: bytes
    pre_link: Link | None
    batch_id: int = 0
    #: zk mode's public inputs; None in transparent mode
    zk: ZkPublic | None = None

    @property
    def n_ops(self) -> int:
        return self.zk.n_ops if self.zk is not None else len(self.ops)

    def air(self, classified: dict[str, np.ndarray] | None = None) -> OrderBookAir:
        """The `ops` domain's AIR of this batch; `classified` as OrderBookAir
        takes it (transparent mode)."""
        if self.zk is not None:
            z = self.zk
            return ZkOpsAir(self.ops_length, self.log2_capacity, self.first_seq, self.symbol, self.batch_id,
                            z.n_ops, z.resumed, z.leaves, z.side_root)
        return OrderBookAir(self.ops_length, self.log2_capacity, self.ops, self.trades,
                            self.first_seq, self.symbol, self.batch_id, classified)

    def statement(self, air: OrderBookAir | None = None) -> BatchStatement | ZkBatchStatement:
        """The statement of this batch; `air`: its `ops` AIR, if built."""
        if self.zk is not None:
            return ZkBatchStatement(self.book_length, air or self.air())
        return BatchStatement(self.book_length, air or self.air())


@dataclass
class BatchProof:
    proof: Proof
    public: BatchPublic
    timings: dict = field(default_factory=dict)

    @property
    def post_root(self) -> bytes:
        return self.proof.roots["book.post"]


def state_table(cells: np.ndarray, rows: int) -> np.ndarray:
    """The proof state table of a book padded to `rows` (S) rows, canonical (S, 8)."""
    table = proof_table(cells).astype(np.int64)
    out = np.zeros((rows, WORD), dtype=np.int64)
    out[:len(table)] = table
    return out


def empty_state(capacity: int, log_blowup: int, symbol: int = 0) -> BookState:
    """The empty book: what a chain verifier commits itself for the first batch."""
    return BookState.of(Book(capacity, symbol), log_blowup)


@dataclass
class PreparedBatch:
    """A batch's traced run and the witness of it: everything a proof
    needs, before proving."""

    witness: W.Witness
    public: BatchPublic
    pre: BookState
    post_cells: np.ndarray
    trades: np.ndarray
    #: classify_all of public.ops as prepared: the witness's context, which
    #: the AIR reuses; None once public.ops are edited after preparing (a
    #: test's lying engine), so the AIR classifies what it proves
    classified: dict[str, np.ndarray] | None = None
    #: zk mode: the lane and keys (None in transparent mode)
    zk: "ZkPrepared | None" = None


@dataclass
class ZkPrepared:
    """What a zk batch's proof needs beyond the execution's witness: its
    chain, its operations with their outcomes (private: the records the
    lane commits), the lane (zk_lane.Lane), the batch key kappa_b, the zk
    state table after the batch (``(S, 13)`` canonical:
    zk_chain.zk_state_table) and its last timestamp."""

    chain: ZkChain
    ops: np.ndarray
    lane: zk_lane.Lane
    batch_key: bytes
    post_table: np.ndarray
    last_ts: int

    def traces(self, witness: W.Witness, pre: BookState) -> dict[str, np.ndarray]:
        """Every segment's matrix by the zk statement's names."""
        s = len(witness.pts)
        r0, rl = np.zeros(s, dtype=np.int64), np.zeros(s, dtype=np.int64)
        r0[0] = rl[-1] = 1
        stamp = np.column_stack([np.arange(s, dtype=np.int64), witness.pts, r0, rl])
        stamp = np.concatenate([F.encode(stamp), zk_lane.blinding_rows(self.lane.blinding, s)], axis=1)
        return {"book.pre": pre.commitment.trace, "book.post": F.encode(self.post_table),
                "book.stamp": stamp, "book.records": self.lane.records,
                "ops.exec": witness.traces()["ops.exec"], "ops.lane": self.lane.matrix}


def prove_batch(pre: Book | BookState, ops: np.ndarray, options: ProofOptions,
                ops_length: int | None = None, debug: bool = False,
                batch_id: int = 0, zk: ZkChain | None = None,
                resumed: bool = False) -> tuple[BatchProof, BookState, np.ndarray]:
    """Run `ops` on the book `pre` (a Book, committed here; or the BookState
    a previous prove_batch returned) and prove it as batch `batch_id`, its
    `ops` domain `ops_length` rows (default: the fewest its rows take,
    witness.rows_for).  Returns (proof, post state, trades).

    zk mode (docs/ZK.md): `zk` is the chain (zk_chain.ZkChain: the store
    key, the fixed `ops` height, zk mode's `options`); `pre` is the empty
    book (a chain's first batch: a Book or BookState.zk_genesis) or the
    post-state the chain's previous zk batch returned; `resumed` says the
    batch begins where its stream resumed (its first timestamp is then
    not compared with the pre-state's last)."""
    return prove_prepared(prepare_batch(pre, ops, options, ops_length, batch_id, zk, resumed), options, debug)


def prove_from_cells(pre_cells: np.ndarray, ops: np.ndarray, options: ProofOptions,
                     batch_id: int) -> tuple[BatchProof, np.ndarray, np.ndarray]:
    """Prove batch `batch_id` from the engine cells before it (checked, then
    run through the engine), needing nothing of the batch before but its
    cells.  Returns (proof, post cells, trades)."""
    proof, post, trades = prove_batch(Book.from_cells(pre_cells), ops, options, batch_id=batch_id)
    return proof, post.cells, trades


def prepare_batch(pre: Book | BookState, ops: np.ndarray, options: ProofOptions,
                  ops_length: int | None = None, batch_id: int = 0, zk: ZkChain | None = None,
                  resumed: bool = False) -> PreparedBatch:
    """The engine's run of `ops` from `pre`, traced, and the witness of it,
    its `ops` domain `ops_length` rows (default: the fewest its rows take;
    zk mode: the chain's); `zk`, `resumed` as prove_batch takes them."""
    if zk is not None and not isinstance(pre, BookState):
        pre = BookState.zk_genesis(zk, pre)
    cells = pre.cells.copy()
    # no walk of the lists again: a Book is well formed by construction, and a
    # BookState's cells were checked when it was made (BookState.of) or are
    # the engine's own output (the post state below)
    book = Book.from_cells(cells, validate=False)
    ops = np.array(ops, dtype=OP_DTYPE, copy=True)
    if len(ops) == 0:
        raise ValueError("an empty batch")
    trades, steps = book.process_traced(ops)
    # a Book's cells are committed by prepare_run, once the run fits the trace
    return prepare_run(pre if isinstance(pre, BookState) else cells, ops, steps, trades, options,
                       ops_length, batch_id, zk, resumed)


def check_records(ops: np.ndarray, steps: np.ndarray, trades: np.ndarray) -> None:
    """ValueError unless `ops`, `steps` and `trades` are one-dimensional
    arrays of OP_DTYPE, STEP_DTYPE and TRADE_DTYPE records, `ops` not empty."""
    for name, records, dtype, dtype_name in (("ops", ops, OP_DTYPE, "OP_DTYPE"),
                                             ("steps", steps, trace.STEP_DTYPE, "STEP_DTYPE"),
                                             ("trades", trades, TRADE_DTYPE, "TRADE_DTYPE")):
        if not isinstance(records, np.ndarray) or records.dtype != dtype or records.ndim != 1:
            raise ValueError(f"{name} must be a one-dimensional array of {dtype_name} records")
    if len(ops) == 0:
        raise ValueError("an empty batch")


def prepare_run(pre: BookState | np.ndarray, ops: np.ndarray, steps: np.ndarray,
                trades: np.ndarray, options: ProofOptions, ops_length: int | None = None,
                batch_id: int = 0, zk: ZkChain | None = None, resumed: bool = False) -> PreparedBatch:
    """The witness of a run the engine already made (module docstring): from
    the book `pre` (a BookState, or engine cells, committed here unchecked
    beyond their shape), `ops` with their outcomes, the `steps` and `trades`
    of them (Book.process_traced), its `ops` domain `ops_length` rows
    (default: the fewest its rows take, witness.rows_for).  The post-state
    is the steps' writes (engine/trace.py written); nothing runs the
    engine.  ValueError naming what is wrong for records of the wrong shape
    or steps out of range.  zk mode (`zk`, `resumed`: prove_batch): `pre`
    is a zk BookState, the `ops` height the chain's."""
    cells = pre.cells if isinstance(pre, BookState) else pre
    check_records(ops, steps, trades)
    cap = invariants.check_shape(cells)
    s = book_length(cap)
    if isinstance(pre, BookState) and pre.commitment.lde.shape[0] != s << options.log_blowup:
        raise ValueError("the pre-state was committed with another blowup or book height")
    if zk is not None:
        _check_zk_run(zk, pre, cap, options, ops_length)
        ops_length = zk.ops_length
    elif options.zk or (isinstance(pre, BookState) and pre.zk):
        raise ValueError("zk mode proves with its chain (prove_batch's zk=ZkChain): zk options or a zk "
                         "pre-state were given without one")
    kinds = W.step_kinds(steps)     # read once: the rows it folds into, the MATCH steps
    t = ops_length or W.rows_for(int(W.fold_kinds(kinds).sum()))
    classified = classify_all(ops, cap)
    pre_table = proof_table(cells)
    try:
        # one pass over the steps: their ranges checked (what
        # trace.check_steps refuses), the rows, pts and the post table written
        wit = W.build(pre_table, ops, steps, t, cap, classified)
    except ValueError:
        _name_refused_run(ops, steps, t, cap)
        raise
    matches = int(np.count_nonzero(kinds == np.uint8(trace.StepKind.MATCH)))   # uint8: no cast
    if len(trades) != matches:
        raise ValueError(f"{len(trades)} trades for {matches} MATCH steps (a trade each)")
    state = pre if isinstance(pre, BookState) else BookState.commit(cells, options.log_blowup)
    first_seq = int(cells[lib.ZK_HDR_NEXT_SEQ_LO]) | int(cells[lib.ZK_HDR_NEXT_SEQ_HI]) << 32
    post_cells = trace.cells_after(cells, steps, ops, wit.post_written)
    if zk is not None:
        return _prepare_zk(zk, state, wit, ops, trades, cap, first_seq, post_cells, batch_id, resumed, classified)
    public = BatchPublic(cap.bit_length() - 1, s, t, int(cells[lib.ZK_HDR_SYMBOL]), first_seq,
                         ops, trades, state.root, state.link, batch_id)
    return PreparedBatch(wit, public, state, post_cells, trades, classified)


def _check_zk_run(chain: ZkChain, pre, capacity: int, options: ProofOptions, ops_length: int | None) -> None:
    """What a zk batch must agree with its chain on before anything is built."""
    if not isinstance(pre, BookState) or not pre.zk:
        raise ValueError("zk mode: the pre-state is the chain's empty book or the post-state of its batch "
                         "before (a zk BookState), not engine cells or a transparent state")
    if options != chain.options:
        raise ValueError("zk mode proves with its chain's options (ZkChain.options)")
    if capacity != chain.capacity:
        raise ValueError(f"a book of capacity {capacity} for a zk chain of capacity {chain.capacity}")
    if ops_length not in (None, chain.ops_length):
        raise ValueError(f"zk mode keeps one ops height per chain ({chain.ops_length} rows), not {ops_length}")


def _prepare_zk(chain: ZkChain, state: BookState, wit: W.Witness, ops: np.ndarray, trades: np.ndarray,
                cap: int, first_seq: int, post_cells: np.ndarray, batch_id: int,
                resumed: bool, classified: dict[str, np.ndarray]) -> PreparedBatch:
    """prepare_run's zk part: the lane, the keys, the zk state tables
    (`classified`: classify_all of `ops`, the witness's)."""
    t = chain.ops_length
    if not isinstance(resumed, (bool, np.bool_)):
        raise ValueError(f"resumed is a bool, not {resumed!r}")
    first_ts = int(ops["ts_ns"][0])
    if not resumed and first_ts < state.last_ts:
        raise ValueError(f"operation 0's timestamp {first_ts} is before the pre-state's last, "
                         f"{state.last_ts}: a batch that begins where its stream resumed is proven "
                         "with resumed=True")
    last_ts = int(ops["ts_ns"][-1])
    key = chain.batch_key(batch_id, zk_chain.content_digest_of(state.table_digest(), ops, trades, bool(resumed)))
    rand = zk_lane.LaneRandomness.derive(key, len(ops), t)
    checks = RecordChecks(t, cap.bit_length() - 1, rows=chain.book_length)
    exec_rows = wit.traces()["ops.exec"]
    lane = zk_lane.build_lane(ops, zk_lane.trade_fields(ops, trades, cap, first_seq, classified), rand,
                              exec_rows, checks, t, 0 if resumed else state.last_ts)
    zk_lane.count_lookups(exec_rows, lane.range_counts, t)
    public = BatchPublic(cap.bit_length() - 1, chain.book_length, t, chain.symbol, first_seq, None, None,
                         state.root, state.link, batch_id,
                         ZkPublic(len(ops), bool(resumed), lane.leaves, lane.side_root))
    post_table = zk_state_table(wit.post, last_ts)
    return PreparedBatch(wit, public, state, post_cells, trades,
                         zk=ZkPrepared(chain, ops, lane, key, post_table, last_ts))


def _name_refused_run(ops: np.ndarray, steps: np.ndarray, trace_length: int, capacity: int) -> None:
    """The ValueError naming why the witness builder refused a run, when a
    plain check says it: more rows than the trace holds, then the first
    step out of range (trace.check_steps).  Run on a refusal only: the
    builder checks the same in its pass."""
    rows = int(W.fold(steps).sum())
    if rows + 1 > trace_length:
        raise ValueError(f"the batch takes {rows} trace rows; an ops trace of {trace_length} rows "
                         f"holds at most {trace_length - 1}")
    trace.check_steps(steps, len(ops), capacity)


def prove_prepared(prep: PreparedBatch, options: ProofOptions,
                   debug: bool = False) -> tuple[BatchProof, BookState, np.ndarray]:
    """Prove a prepared batch: (proof, post state, trades)."""
    public, state = prep.public, prep.pre
    if prep.zk is not None:
        z = prep.zk
        traces = z.traces(prep.witness, state)
        post_key = z.chain.state_key(public.batch_id, traces["book.post"])    # the post table hashed once
        res = prove(public.statement(), traces, options, external={"book.pre": (state.commitment, state.link)},
                    debug=debug, zk_key=z.batch_key, state_keys={"book.post": post_key})
        post = BookState(prep.post_cells, res.commitments["book.post"], res.links["book.post"], z.last_ts,
                         post_key.table_digest)
        return BatchProof(res.proof, public, res.timings), post, prep.trades
    res = prove(public.statement(public.air(prep.classified)), prep.witness.traces(), options,
                external={"book.pre": (state.commitment, state.link)}, debug=debug)
    post = BookState(prep.post_cells, res.commitments["book.post"], res.links["book.post"])
    return BatchProof(res.proof, public, res.timings), post, prep.trades


# -------------------------------------------------------------- verifier --

def check_public(pub: BatchPublic, air: OrderBookAir | None = None) -> dict[str, np.ndarray]:
    """The rules checked on the public lists in plain code (docs/STATEMENT.md,
    "Public inputs").  Returns the operations' classify_all, which the AIR's
    public tables reuse.  `air`: an OrderBookAir built from these very
    records, whose classification is reused; building it refused records
    that are not canonical (public_tables), so that is not checked again."""
    ops, trades = pub.ops, pub.trades
    if ops.dtype != OP_DTYPE or trades.dtype != TRADE_DTYPE:
        raise BatchRejected("records of the wrong format")
    if len(ops) == 0:
        raise BatchRejected("an empty batch")
    # every operation has a row of its own and every trade its MATCH row, so
    # an honest batch has fewer of either than ops rows; the security level
    # counts at most 3 T' public fractions (2 an operation, 1 a trade:
    # air.public_fractions), and longer lists would make it claim too much
    t = pub.ops_length
    if len(ops) >= t or len(trades) >= t:
        raise BatchRejected(f"{len(ops)} operations and {len(trades)} trades for an ops trace of "
                            f"{t} rows (each takes a row of its own, and one row is padding)")
    cap = 1 << pub.log2_capacity
    if (ops["seq"] != np.arange(pub.first_seq, pub.first_seq + len(ops), dtype=np.uint64)).any():
        raise BatchRejected("sequence numbers are not consecutive from first_seq")
    ts = ops["ts_ns"]
    if (ts[1:] < ts[:-1]).any():          # as uint64: an int64 cast wraps at 2^63
        raise BatchRejected("timestamps go backwards")
    if (ops["symbol"] != pub.symbol).any() or (trades["symbol"] != pub.symbol).any():
        raise BatchRejected("a record of another symbol")
    if air is None:
        c = classify_all(ops, cap)
        why = noncanonical(ops, trades, cap, pub.first_seq, c)
        if why:
            raise BatchRejected(f"public records not canonical: {why}")
    else:
        c = air.classified
    rejected = c["code"] == 0
    kind = ops["kind"]
    handled = (kind == Kind.CANCEL) | (kind == Kind.REDUCE)       # np.isin: 10x slower here
    wrong = rejected & ((ops["status"] != Status.REJECTED) | (ops["reason"] != c["reason"])
                        | (ops["filled"] != 0) | (ops["trades"] != 0))
    if wrong.any():
        i = int(np.argmax(wrong))
        raise BatchRejected(f"operation {i}: its fields give {Reason(int(c['reason'][i])).name}")
    reason = c["reason"]
    with_handle = rejected & ((reason == Reason.BAD_SIDE) | (reason == Reason.BAD_PRICE)
                              | (reason == Reason.BAD_QTY)) & ~handled & (ops["handle"] != 0)
    if with_handle.any():
        raise BatchRejected(f"operation {int(np.argmax(with_handle))}: a rejected order with a handle")
    seq = trades["taker_seq"]
    first = np.uint64(pub.first_seq)
    in_range = (seq >= first) & (seq < first + np.uint64(len(ops)))
    i = np.where(in_range, seq - first, 0).astype(np.int64)
    ordered = np.r_[True, np.diff(i) >= 0] if len(trades) else np.zeros(0, bool)
    if not (in_range & ordered).all():
        j = int(np.argmax(~(in_range & ordered)))
        raise BatchRejected(f"trade {j}: taker {int(seq[j])} out of order or range")
    # each trade's operation, field by field (indexing the records themselves
    # copies whole 64-byte records)
    agree = ~handled[i] & (trades["qty"] >= 1) & (trades["taker_account"] == ops["account"][i]) \
        & (trades["taker_side"] == ops["side"][i]) & (trades["taker_handle"] == ops["handle"][i]) \
        & ~trades["reserved"].any(axis=1)
    if not agree.all():
        j = int(np.argmax(~agree))
        raise BatchRejected(f"trade {j}: fields disagree with operation {int(i[j])}")
    return c


def check_claims(proof: BatchProof, min_security: int = DEFAULT_MIN_SECURITY,
                 max_trace_length: int = MAX_TRACE_LENGTH) -> None:
    """Refuse what a proof claims about its own size before anything is
    spent on it: a `book` height other than its capacity's (book_length),
    either height over the `max_trace_length` this verifier accepts, or
    parameters under its security threshold at those heights.  A file of a
    few kilobytes can claim 2^24 rows; a chain verifier commits the empty
    book at the first proof's claim (gigabytes and tens of seconds at that
    size)."""
    pub = proof.public
    _check_claims(pub.batch_id, pub.log2_capacity, pub.book_length, pub.ops_length,
                  proof.proof.options, min_security, max_trace_length)


def _check_claims(batch_id: int, log2_capacity: int, s: int, t: int, options: ProofOptions,
                  min_security: int, max_trace_length: int) -> None:
    if s != book_length(1 << log2_capacity):
        raise VerificationError(f"batch {batch_id} claims a book domain of {s} rows; capacity "
                                f"2^{log2_capacity} has {book_length(1 << log2_capacity)}")
    for what, n in (("an ops trace", t), ("a book domain (capacity)", s)):
        if n > max_trace_length:
            raise VerificationError(f"batch {batch_id} claims {what} of {n} rows, over "
                                    f"the {max_trace_length} this verifier accepts")
    if options.zk:
        # zk mode's cap (2^15 ops rows, named with the bits a taller domain
        # would lack), an ops domain that holds one operation, and the zk
        # security figure (zk_security: the query term at FRI's D_F)
        try:
            check_zk_ops_length(t, log2_capacity, min_security)
        except ParameterError as exc:
            raise VerificationError(f"batch {batch_id}: {exc}") from None
        bits = zk_security(options, shape_statement(log2_capacity, t))
        if bits < min_security:
            raise VerificationError(f"batch {batch_id}: these zk parameters give {bits} bits of conjectured "
                                    f"security at {t} ops rows, under the required {min_security}")
        return
    degree = algebraic_degree(s, t, options.log_blowup)
    try:
        options.check_security(max(s, t), lambda _n: degree, min_security)
    except ParameterError as exc:
        raise VerificationError(f"batch {batch_id}: {exc}") from None
    if t > 1 << MAX_LOG_OPS:    # whatever the verifier's cap and threshold allow
        raise VerificationError(f"batch {batch_id} claims an ops trace of {t} rows, over the "
                                f"2^{MAX_LOG_OPS} the order book's comparisons hold")


def verify_batch(proof: BatchProof | Proof, public: BatchPublic | None = None,
                 min_security: int = DEFAULT_MIN_SECURITY,
                 max_trace_length: int = MAX_TRACE_LENGTH,
                 air: OrderBookAir | None = None) -> Verified:
    """Verify one batch against its public inputs (pre-state root and Link
    included).  Raises VerificationError (BatchRejected for the plain checks).
    `air`: the AIR of these very public inputs, unchanged since it was built
    (proof_file.decode_with_air builds one to read the proof), instead of
    building it again (a few milliseconds at 2^14 operations)."""
    if not isinstance(proof, BatchProof):
        if public is None:
            raise TypeError("a bare Proof is verified against its BatchPublic")
        proof = BatchProof(proof, public)
    elif public is not None:
        proof = BatchProof(proof.proof, public)
    pub = proof.public
    if (pub.zk is not None) != proof.proof.options.zk:
        raise VerificationError(f"batch {pub.batch_id}: a {'zk' if proof.proof.options.zk else 'transparent'} "
                                f"proof for {'zk' if pub.zk is not None else 'transparent'} public inputs")
    check_claims(proof, min_security, max_trace_length)
    if pub.zk is not None:
        return _verify_zk(proof, min_security, air)
    classified = check_public(proof.public, air)
    return verify(proof.public.statement(air or proof.public.air(classified)), proof.proof,
                  external={"book.pre": (proof.public.pre_root, proof.public.pre_link)},
                  min_security=min_security)


def _verify_zk(proof: BatchProof, min_security: int, air: ZkOpsAir | None) -> Verified:
    """verify_batch's zk part: the statement has no public records (their
    checks are constraints, docs/ZK.md section 4); a batch with no pre-state
    link starts from the empty book, whose commitment the verifier makes
    itself (the root must be it)."""
    pub = proof.public
    try:
        statement = pub.statement(air)
    except ValueError as exc:       # public inputs built by hand (a decoded file's were checked)
        raise BatchRejected(f"batch {pub.batch_id}: {exc}") from None
    if pub.pre_link is None:
        genesis = zk_chain.genesis_commitment(pub.log2_capacity, pub.symbol, proof.proof.options.log_blowup)
        if pub.pre_root != genesis.root:
            raise VerificationError(f"batch {pub.batch_id}: a zk batch without a pre-state link starts from "
                                    "the empty book, and its pre-state root is not the empty book's")
    return verify(statement, proof.proof, external={"book.pre": (pub.pre_root, pub.pre_link)},
                  min_security=min_security)


@dataclass
class ChainSegment:
    """Consecutive batches of a chain between the breaks where its stream
    resumed; after the first, each begins where its stream resumed
    (`expected`: the sequence number the stream was at, `last_ts` its time
    then).  Counts, not the proofs: a verifier streams a chain."""

    first_batch: int
    first_seq: int
    expected: int | None = None
    last_ts: int | None = None
    last_batch: int = -1
    batches: int = 0
    ops: int = 0
    verified: Verified | None = None


@dataclass(frozen=True)
class ChainPoint:
    """Where a chain stands after its last accepted batch (or at the empty
    book): what the next batch must continue.  `config` is (log2 capacity,
    book height S, symbol, log blowup), fixed for a chain (the ops height
    is each batch's own in transparent mode); `mode` the chain's (a chain
    is all one mode) and, in zk mode, `ops_length` its one ops height (0
    in transparent mode) and `options` its one set of proof options (None
    in transparent mode, where each proof's own are checked alone): a
    state's masks are sized for the queries of both proofs that open it
    (docs/ZK.md 5.2).  A zk chain's point has no `last_ts` (0: its
    timestamps are private, the state's cells carry them) and no link at
    the empty book (the verifier commits it)."""

    config: tuple[int, int, int, int]
    root: bytes
    link: Link | None
    next_seq: int
    last_ts: int
    next_id: int
    mode: str = "transparent"
    ops_length: int = 0
    options: ProofOptions | None = None


@dataclass
class Checked:
    """One batch as a chain check needs it, its proof verified alone
    (check_alone): the public facts the links are checked on, and either
    what the proof establishes (`verified`) or why it was rejected
    (`rejected`).  Small and picklable: a worker process returns it in
    place of the proof.  `sha256`: of the bytes the proof was read from,
    when its reader was asked for it (a verification report's digest), else
    empty."""

    batch_id: int
    symbol: int
    log2_capacity: int
    book_length: int
    ops_length: int
    options: ProofOptions
    first_seq: int
    ops: int
    first_ts: int
    last_ts: int
    pre_root: bytes
    pre_link: Link | None
    verified: Verified | None
    rejected: VerificationError | None
    sha256: bytes = b""
    #: zk mode: the batch's public `resumed` bit (a new segment starts there)
    resumed: bool = False

    def config(self, symbol: int) -> tuple[int, int, int, int]:
        return (self.log2_capacity, self.book_length, symbol, self.options.log_blowup)

    @property
    def mode(self) -> str:
        return "zk" if self.options.zk else "transparent"

    @property
    def chain_ops_length(self) -> int:
        """The ops height a chain of this batch keeps: zk mode's one height, 0 otherwise."""
        return self.ops_length if self.options.zk else 0

    @property
    def chain_options(self) -> ProofOptions | None:
        """The proof options a chain of this batch keeps: zk mode's one set, None otherwise."""
        return self.options if self.options.zk else None

    def after(self) -> ChainPoint:
        """The point this accepted batch leaves its chain at."""
        assert self.verified is not None
        return ChainPoint(self.config(self.symbol), self.verified.roots["book.post"],
                          self.verified.links["book.post"], self.first_seq + self.ops, self.last_ts,
                          self.batch_id + 1, self.mode, self.chain_ops_length, self.chain_options)


def check_alone(b: BatchProof, min_security: int = DEFAULT_MIN_SECURITY,
                max_trace_length: int = MAX_TRACE_LENGTH, sha256: bytes = b"",
                air: OrderBookAir | None = None) -> Checked:
    """Verify one batch independently of its neighbours (verify_batch): the
    part of a chain check that can run on any core in any order.

    What the proof binds: the STARK proof is verified against the pre-state
    root and Link the batch's public inputs state (the external segment
    "book.pre"), and it commits the post-state itself (its own segment "book.post",
    whose Link the verifier derives).  So an accepted proof says: the rules'
    run of these operations takes the book committed at pre_root to the
    book committed at the post root.  It says nothing about where pre_root
    came from: that is the link check (ChainCheck), which accepts a batch
    only when its proof verifies AND its pre-state (root and Link) is the
    previous accepted batch's post-state as that batch's verification
    derived it (or the empty book, committed by the checker itself).
    Checking the proofs out of order and the links in order is therefore as
    sound as checking both one batch after another."""
    pub = b.public
    verified = rejected = None
    try:
        verified = _verify_named(b, min_security, max_trace_length, air)
    except VerificationError as exc:
        rejected = exc
    if pub.zk is not None:      # no timestamp is public: the AIR compares them (unless resumed)
        first_ts = last_ts = 0
    else:
        ts = pub.ops["ts_ns"]
        first_ts, last_ts = (int(ts[0]), int(ts[-1])) if len(ts) else (0, 0)
    return Checked(int(pub.batch_id), int(pub.symbol), int(pub.log2_capacity),
                   int(pub.book_length), int(pub.ops_length), b.proof.options, int(pub.first_seq), pub.n_ops,
                   first_ts, last_ts, pub.pre_root, pub.pre_link, verified, rejected, sha256,
                   pub.zk is not None and pub.zk.resumed)


class ChainCheck:
    """The links of a chain, checked in chain order over batches whose
    proofs were verified alone (check_alone, in any order and on any core):
    verify_history's rules (there), one batch at a time (add), so a caller
    can feed it results as they arrive.  `start`: where the chain stands
    before the first batch added: the empty book (None, committed here at
    the first batch's claims once they are checked), a batch verified alone
    whose post-state the chain continues (a Checked, its rejection raised
    when the first batch arrives), or a ChainPoint a verification report
    recorded.  `segments` holds the result so far."""

    def __init__(self, min_security: int = DEFAULT_MIN_SECURITY, symbol: int = 0,
                 max_trace_length: int = MAX_TRACE_LENGTH,
                 start: Checked | ChainPoint | None = None):
        self.min_security, self.symbol, self.max_trace_length = \
            min_security, symbol, max_trace_length
        self.start, self.point = start, None
        self.segments: list[ChainSegment] = []

    def add(self, c: Checked) -> None:
        """Accept batch `c` or raise VerificationError naming it."""
        start = self.start
        if not self.segments:
            if isinstance(start, Checked):
                if start.rejected is not None:
                    raise start.rejected
                self.point = start.after()
            elif isinstance(start, ChainPoint):
                self.point = start
            else:
                _check_claims(c.batch_id, c.log2_capacity, c.book_length, c.ops_length, c.options,
                              self.min_security, self.max_trace_length)
                if c.options.zk:     # the empty book, public: committed unmasked, no link
                    genesis = zk_chain.genesis_commitment(c.log2_capacity, self.symbol, c.options.log_blowup)
                    root, link = genesis.root, None
                else:
                    genesis = empty_state(1 << c.log2_capacity, c.options.log_blowup, self.symbol)
                    root, link = genesis.root, genesis.link
                self.point = ChainPoint(c.config(self.symbol), root, link, 1, 0, c.batch_id, c.mode,
                                        c.chain_ops_length, c.chain_options)
            self.segments.append(ChainSegment(c.batch_id, c.first_seq))
        p = self.point
        if c.mode != p.mode:
            raise VerificationError(f"batch {c.batch_id} is a {c.mode} proof in a {p.mode} chain: a chain "
                                    "is all one mode")
        if c.config(c.symbol) != p.config:
            raise VerificationError(f"batch {c.batch_id}: capacity, book height, blowup or "
                                    "symbol changed")
        if c.chain_ops_length != p.ops_length:
            raise VerificationError(f"batch {c.batch_id} has an ops domain of {c.ops_length} rows: zk mode "
                                    f"keeps one ops height per chain, this chain's is {p.ops_length}")
        if c.chain_options != p.options:
            changed = ", ".join(f"{f.name} {getattr(c.options, f.name)} (the chain's "
                                f"{getattr(p.options, f.name, None)})" for f in fields(ProofOptions)
                                if getattr(c.options, f.name) != getattr(p.options, f.name, None))
            raise VerificationError(f"batch {c.batch_id}: a zk chain keeps one set of proof options (queries "
                                    f"and with them the masks' sizes, grinding, the FRI plan): {changed}")
        if c.batch_id != p.next_id:
            raise VerificationError(f"batch {c.batch_id} follows batch {p.next_id - 1}: "
                                    + ("batches are missing" if c.batch_id > p.next_id
                                       else "batch ids count up by one"))
        if (c.pre_root, c.pre_link) != (p.root, p.link):
            raise VerificationError(f"batch {c.batch_id}: its pre-state is not the previous "
                                    "post-state")
        if c.first_seq < p.next_seq:
            raise VerificationError(f"batch {c.batch_id}: the stream does not continue "
                                    f"(sequence number {c.first_seq}, expected {p.next_seq})")
        if c.first_seq > p.next_seq or c.first_ts < p.last_ts or c.resumed:
            resumed = ChainSegment(c.batch_id, c.first_seq, p.next_seq, p.last_ts)
            if start is not None and self.segments[-1].batches == 0:
                # the first batch after `start` resumed: its one segment says so (`expected`)
                self.segments[-1] = resumed
            else:
                self.segments.append(resumed)
        if c.rejected is not None:
            raise c.rejected
        self.point = c.after()
        seg = self.segments[-1]
        seg.last_batch, seg.batches, seg.ops, seg.verified = \
            c.batch_id, seg.batches + 1, seg.ops + c.ops, c.verified

    def result(self) -> list[ChainSegment]:
        if not self.segments:
            raise VerificationError("an empty chain")
        return self.segments


def verify_history(batches: Iterable[BatchProof], min_security: int = DEFAULT_MIN_SECURITY,
                   symbol: int = 0, max_trace_length: int = MAX_TRACE_LENGTH,
                   after: BatchProof | None = None) -> list[ChainSegment]:
    """Verify a chain root to root from the empty book, except at the breaks
    where its stream resumed: returns its segments (one, for a whole chain).
    `batches` may be any iterable (a generator reading a store): one proof is
    held at a time.  Each proof is verified alone (check_alone) and its
    links checked in order (ChainCheck); a caller with several cores feeds
    ChainCheck from worker processes instead (tools/verify_jobs.py).

    The state roots must chain without exception: the proof state table
    holds the book, not the stream's sequence number and time (the verifier
    checks those on the public records), so a stream that resumed past lost
    operations, or after its time went back (engine/book.py Book.resume),
    keeps its book, proven.  A batch whose first sequence number jumps past
    the next one, or whose first timestamp is before the last one, starts a
    new segment; anything else that does not continue, a batch id that does
    not count up, a proof that does not verify: VerificationError.  The
    first proof's claims are checked (check_claims) before the empty book is
    committed at its capacity.

    `after`: the proof of the batch before the first of `batches`, verified
    alone (verify_batch) and not part of the result: the chain starts from
    its post-state (root, Link, next sequence number, time, batch id)
    instead of the empty book.  It proves that `batches` continue that
    batch, not that the batch itself continues the empty book.  If the
    first of `batches` resumed the stream, the first segment's `expected`
    says so (it is None otherwise)."""
    chain = ChainCheck(min_security, symbol, max_trace_length,
                       None if after is None else check_alone(after, min_security, max_trace_length))
    for b in batches:
        chain.add(check_alone(b, min_security, max_trace_length))
    return chain.result()


def _verify_named(b: BatchProof, min_security: int, max_trace_length: int,
                  air: OrderBookAir | None = None) -> Verified:
    """verify_batch, its failure naming the batch by its id."""
    try:
        return verify_batch(b, min_security=min_security, max_trace_length=max_trace_length,
                            air=air)
    except VerificationError as exc:
        tag = f"batch {b.public.batch_id}"
        if str(exc).startswith((tag + ":", tag + " ")):
            raise
        raise type(exc)(f"{tag}: {exc}") from None


def verify_chain(batches: Iterable[BatchProof], min_security: int = DEFAULT_MIN_SECURITY,
                 symbol: int = 0, max_trace_length: int = MAX_TRACE_LENGTH) -> Verified:
    """Verify proofs root to root from the empty book, as verify_history,
    with no break: sequence numbers and timestamps continue throughout.
    Returns the last Verified."""
    segments = verify_history(batches, min_security, symbol, max_trace_length)
    if len(segments) > 1:
        seg = segments[1]
        raise VerificationError(f"batch {seg.first_batch}: the stream does not continue "
                                f"(sequence number {seg.first_seq} after {seg.expected - 1}, "
                                f"or its time went back)")
    return segments[0].verified
