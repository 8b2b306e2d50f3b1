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
from dataclasses import dataclass, field

import numpy as np

from ...engine import invariants, trace
from ...engine.book import Book
from ...engine.native import lib
from ...engine.proof_table import proof_table
from ...engine.records import OP_DTYPE, TRADE_DTYPE, Kind, Reason, Status
from .. import field as F
from ..domain import Link
from ..params import DEFAULT_MIN_SECURITY, ParameterError, ProofOptions
from ..proof import Proof
from ..prove import SegmentCommitment, prove
from ..verify import Verified, VerificationError, verify
from . import witness as W
from .air import (MAX_LOG_OPS, WORD, BatchStatement, OrderBookAir, algebraic_degree, book_length, classify_all,
                  noncanonical)
from .params import MAX_TRACE_LENGTH


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
    link: Link

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


@dataclass
class BatchPublic:
    log2_capacity: int
    book_length: int          # S: the book domain's rows (the capacity's: book_length)
    ops_length: int           # T': the ops domain's rows
    symbol: int
    first_seq: int
    ops: np.ndarray           # OP_DTYPE, outcome fields filled
    trades: np.ndarray        # TRADE_DTYPE
    pre_root: bytes
    pre_link: Link | None
    batch_id: int = 0

    def air(self, classified: dict[str, np.ndarray] | None = None) -> OrderBookAir:
        """The `ops` domain's AIR of this batch; `classified` as OrderBookAir
        takes it."""
        return OrderBookAir(self.ops_length, self.log2_capacity, self.ops, self.trades,
                            self.first_seq, self.symbol, self.batch_id, classified)

    def statement(self, air: OrderBookAir | None = None) -> BatchStatement:
        """The statement of this batch; `air`: its `ops` AIR, if built."""
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


def prove_batch(pre: Book | BookState, ops: np.ndarray, options: ProofOptions,
                ops_length: int | None = None, debug: bool = False,
                batch_id: int = 0) -> tuple[BatchProof, BookState, np.ndarray]:
    """Run `ops` on the book `pre` (a Book, committed here; or the BookState
    a previous prove_batch returned) and prove it as batch `batch_id`, its
    `ops` domain `ops_length` rows (default: the fewest its rows take,
    witness.rows_for).  Returns (proof, post state, trades)."""
    return prove_prepared(prepare_batch(pre, ops, options, ops_length, batch_id), options, debug)


def prove_from_cells(pre_cells: np.ndarray, ops: np.ndarray, options: ProofOptions,
                     batch_id: int) -> tuple[BatchProof, np.ndarray, np.ndarray]:
    """Prove batch `batch_id` from the engine cells before it (checked, then
    run through the engine), needing nothing of the batch before but its
    cells.  Returns (proof, post cells, trades)."""
    proof, post, trades = prove_batch(Book.from_cells(pre_cells), ops, options, batch_id=batch_id)
    return proof, post.cells, trades


def prepare_batch(pre: Book | BookState, ops: np.ndarray, options: ProofOptions,
                  ops_length: int | None = None, batch_id: int = 0) -> PreparedBatch:
    """The engine's run of `ops` from `pre`, traced, and the witness of it,
    its `ops` domain `ops_length` rows (default: the fewest its rows take)."""
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
                       ops_length, batch_id)


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
                batch_id: int = 0) -> PreparedBatch:
    """The witness of a run the engine already made (module docstring): from
    the book `pre` (a BookState, or engine cells, committed here unchecked
    beyond their shape), `ops` with their outcomes, the `steps` and `trades`
    of them (Book.process_traced), its `ops` domain `ops_length` rows
    (default: the fewest its rows take, witness.rows_for).  The post-state
    is the steps' writes (engine/trace.py written); nothing runs the
    engine.  ValueError naming what is wrong for records of the wrong shape
    or steps out of range."""
    cells = pre.cells if isinstance(pre, BookState) else pre
    check_records(ops, steps, trades)
    cap = invariants.check_shape(cells)
    s = book_length(cap)
    if isinstance(pre, BookState) and pre.commitment.lde.shape[0] != s << options.log_blowup:
        raise ValueError("the pre-state was committed with another blowup or book height")
    t = ops_length or W.ops_length_for(steps)
    classified = classify_all(ops, cap)
    pre_table = proof_table(cells)
    try:
        # one pass over the steps: their ranges checked (what
        # trace.check_steps refuses), the rows, pts and the post table written
        wit = W.build(pre_table, ops, steps, t, cap, classified)
    except ValueError:
        _name_refused_run(ops, steps, t, cap)
        raise
    matches = int(np.count_nonzero(steps["kind"] == trace.StepKind.MATCH))
    if len(trades) != matches:
        raise ValueError(f"{len(trades)} trades for {matches} MATCH steps (a trade each)")
    state = pre if isinstance(pre, BookState) else BookState.commit(cells, options.log_blowup)
    first_seq = int(cells[lib.ZK_HDR_NEXT_SEQ_LO]) | int(cells[lib.ZK_HDR_NEXT_SEQ_HI]) << 32
    public = BatchPublic(cap.bit_length() - 1, s, t, int(cells[lib.ZK_HDR_SYMBOL]), first_seq,
                         ops, trades, state.root, state.link, batch_id)
    return PreparedBatch(wit, public, state, trace.cells_after(cells, steps, ops, wit.post_written),
                         trades, classified)


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
    check_claims(proof, min_security, max_trace_length)
    classified = check_public(proof.public, air)
    return verify(proof.public.statement(air or proof.public.air(classified)), proof.proof,
                  external={"book.pre": (proof.public.pre_root, proof.public.pre_link)},
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
    is each batch's own)."""

    config: tuple[int, int, int, int]
    root: bytes
    link: Link
    next_seq: int
    last_ts: int
    next_id: int


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

    def config(self, symbol: int) -> tuple[int, int, int, int]:
        return (self.log2_capacity, self.book_length, symbol, self.options.log_blowup)

    def after(self) -> ChainPoint:
        """The point this accepted batch leaves its chain at."""
        assert self.verified is not None
        return ChainPoint(self.config(self.symbol), self.verified.roots["book.post"],
                          self.verified.links["book.post"], self.first_seq + self.ops, self.last_ts,
                          self.batch_id + 1)


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
    ops = pub.ops
    verified = rejected = None
    try:
        verified = _verify_named(b, min_security, max_trace_length, air)
    except VerificationError as exc:
        rejected = exc
    return Checked(int(pub.batch_id), int(pub.symbol), int(pub.log2_capacity),
                   int(pub.book_length), int(pub.ops_length), b.proof.options, int(pub.first_seq), len(ops),
                   int(ops["ts_ns"][0]) if len(ops) else 0,
                   int(ops["ts_ns"][-1]) if len(ops) else 0, pub.pre_root, pub.pre_link,
                   verified, rejected, sha256)


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
                genesis = empty_state(1 << c.log2_capacity, c.options.log_blowup, self.symbol)
                self.point = ChainPoint(c.config(self.symbol), genesis.root, genesis.link, 1, 0,
                                        c.batch_id)
            self.segments.append(ChainSegment(c.batch_id, c.first_seq))
        p = self.point
        if c.config(c.symbol) != p.config:
            raise VerificationError(f"batch {c.batch_id}: capacity, book height, blowup or "
                                    "symbol changed")
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
        if c.first_seq > p.next_seq or c.first_ts < p.last_ts:
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
