"""The proof state table, the engine's tracing mode and the trace replay
checker: the step record against the C header, traced runs identical to
plain ones, every trace replaying against the memory, and corrupted traces
caught."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flow_strategies
import trace_check
from format_docs import check_layout
from trace_check import TraceError

from zksidecar.engine import flow, invariants, records
from zksidecar.engine.book import Book
from zksidecar.engine.flow import FlowParams
from zksidecar.engine.native import lib
from zksidecar.engine.proof_table import HEADER_FIELDS, P, WORD, proof_table, with_table
from zksidecar.engine.records import Kind, Reason, Side, Status
from zksidecar.engine.trace import STEP_DTYPE, Access, StepKind, cells_after, check_steps, written

BUY, SELL = Side.BUY, Side.SELL
H, A, B, C = (1 << j for j in Access)
K = StepKind


def random_book(seed: int, log2: int, n: int = 2000) -> Book:
    ops = flow.generate(n, seed, 1 << log2, params=FlowParams(depth=1 << log2, move=0.2,
                                                              invalid=0.02, take=0.3))
    book = Book(1 << log2)
    book.process(ops)
    return book


def traced(book: Book, ops: np.ndarray):
    """Run ops traced on `book`, check the trace replays, return (trades, steps)."""
    pre = book.cells.copy()
    trades, steps = book.process_traced(ops)
    trace_check.check(pre, ops, trades, steps, book.cells)
    return trades, steps


def shape(steps: np.ndarray) -> list[tuple]:
    """(kind, mask) of each step, for the hand-written scenarios."""
    return [(K(k), m) for k, m in zip(steps["kind"].tolist(), steps["mask"].tolist())]


# ------------------------------------------------------------ proof table --

def test_modulus_is_babybear():
    from zksidecar.prover.field import P as FIELD_P
    assert P == FIELD_P == 2**31 - 2**27 + 1


def test_header_word_is_the_engines_first_header_cells():
    names = ("BEST_BID", "WORST_BID", "BEST_ASK", "WORST_ASK", "FREE_HEAD", "LIVE")
    assert [getattr(lib, "ZK_HDR_" + n) for n in names] == list(range(len(HEADER_FIELDS)))
    assert lib.ZK_HEADER_WORD_CELLS == len(HEADER_FIELDS) and lib.ZK_WORD_CELLS == WORD


@pytest.mark.parametrize("seed, log2", [(1, 4), (2, 6), (3, 10), (4, 12)])
def test_proof_table_on_random_books(seed, log2):
    book = random_book(seed, log2)
    table = proof_table(book.cells)
    cap = book.capacity
    assert table.shape == (cap, WORD) and table.dtype == np.uint32
    assert (table < P).all()
    hdr = book.cells[:len(HEADER_FIELDS)]
    assert table[0].tolist() == hdr.tolist() + [0, 0]
    s = np.arange(1, cap)
    for cell, column in enumerate(("price", "qty", "side")):
        assert np.array_equal(table[1:, cell], getattr(book, column)[s])
    assert np.array_equal(table[1:, 3] | table[1:, 4] << np.uint32(16), book.account[s])
    assert (table[:, 3] < 1 << 16).all() and (table[:, 4] < 1 << 16).all()
    for cell, column in ((5, "prev"), (6, "next"), (7, "gen")):
        assert np.array_equal(table[1:, cell], getattr(book, column)[s])


def test_proof_table_splits_wide_accounts_and_refuses_non_canonical_cells():
    book = Book(16)
    out = book.submit(Kind.LIMIT, BUY, 100, 5, account=0xFFFF_FFFF)
    slot = out.handle & 0xFFFFFFFF
    assert proof_table(book.cells)[slot, 3:5].tolist() == [0xFFFF, 0xFFFF]
    cells = book.cells.copy()
    cells[invariants.HEADER + 6 * 16 + slot] = P  # a generation no engine writes
    with pytest.raises(ValueError, match="not below p"):
        proof_table(cells)


# -------------------------------------------------------- the step record --

def test_step_record_agrees_with_the_c_header():
    assert STEP_DTYPE.itemsize == 280
    check_layout("zk_step", STEP_DTYPE)
    for kind in StepKind:
        assert getattr(lib, "ZK_STEP_" + kind.name) == kind.value
    for access in Access:
        assert getattr(lib, "ZK_ACCESS_" + access.name) == access.value
    assert lib.ZK_STEP_ACCESSES == len(Access)


# ----------------------------------------------- traced runs, hand-written --

def test_limit_that_rests_on_an_empty_book():
    book = Book(16)
    ops = one(book, Kind.LIMIT, BUY, 100, 5, account=0x12345678)
    trades, steps = traced(book, ops)
    assert shape(steps) == [(K.BEGIN, 0), (K.PEEK, H), (K.REST, H | A), (K.END, 0)]
    rest = steps[2]
    assert rest["addr"].tolist() == [0, 1, 0, 0]
    assert rest["old_word"][1].tolist() == [0, 0, 0, 0, 0, 0, 2, 0]  # free slot 1 -> 2
    assert rest["new_word"][1].tolist() == [100, 5, BUY, 0x5678, 0x1234, 0, 0, 0]
    assert rest["old_word"][0].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
    assert rest["new_word"][0].tolist() == [1, 1, 0, 0, 2, 1, 0, 0]


def test_sweep_then_rest():
    book = Book(16)
    a = rest(book, SELL, 100, 2)
    b = rest(book, SELL, 101, 2)
    rest(book, SELL, 103, 2)
    ops = one(book, Kind.LIMIT, BUY, 102, 5)
    trades, steps = traced(book, ops)
    assert shape(steps) == [(K.BEGIN, 0), (K.MATCH, H | A | B), (K.MATCH, H | A | B),
                            (K.PEEK, H | A), (K.REST, H | A), (K.END, 0)]
    assert steps["addr"][1:4, 1].tolist() == [a & 0xFFFF, b & 0xFFFF, 3]
    assert trades["maker_handle"].tolist() == [a, b]
    first = steps[1]
    assert first["new_word"][1].tolist() == [0, 0, 0, 0, 0, 0, 4, 1]  # freed, gen + 1
    assert first["new_word"][2][5] == 0  # the new head has no prev


def test_partial_fill_keeps_the_maker_and_needs_no_neighbour():
    book = Book(16)
    rest(book, SELL, 100, 5)
    rest(book, SELL, 100, 5)
    _, steps = traced(book, one(book, Kind.IOC, BUY, 100, 3))
    assert shape(steps) == [(K.BEGIN, 0), (K.MATCH, H | A), (K.END, 0)]
    assert steps[1]["new_word"][1][1] == 2


def test_cancel_between_two_orders_and_reduce():
    book = Book(16)
    rest(book, BUY, 100, 1)
    mid = rest(book, BUY, 99, 5)
    rest(book, BUY, 98, 1)
    _, steps = traced(book, one(book, Kind.REDUCE, qty=2, handle=mid))
    assert shape(steps) == [(K.BEGIN, 0), (K.REDUCE, A), (K.END, 0)]
    _, steps = traced(book, one(book, Kind.CANCEL, handle=mid))
    assert shape(steps) == [(K.BEGIN, 0), (K.CANCEL, H | A | B | C), (K.END, 0)]
    assert steps[1]["addr"].tolist() == [0, 2, 1, 3]


@pytest.mark.parametrize("case, reason, body", [
    ("stale", Reason.STALE_HANDLE, [(K.PEEK, A)]),
    ("unknown", Reason.UNKNOWN_HANDLE, []),
    ("would_cross", Reason.WOULD_CROSS, [(K.PEEK, H | A)]),
    ("fok", Reason.FOK_UNFILLABLE, [(K.PEEK, H | A), (K.PEEK, A), (K.PEEK, A)]),
    ("bad_qty", Reason.BAD_QTY, []),
])
def test_rejections_read_what_proves_them(case, reason, body):
    book = Book(16)
    gone = rest(book, SELL, 99, 1)
    book.submit(Kind.CANCEL, handle=gone)
    rest(book, SELL, 100, 1)
    rest(book, SELL, 101, 1)
    rest(book, SELL, 105, 1)
    ops = {"stale": lambda: one(book, Kind.CANCEL, handle=gone),
           "unknown": lambda: one(book, Kind.CANCEL, handle=99),
           "would_cross": lambda: one(book, Kind.POST_ONLY, BUY, 100, 1),
           "fok": lambda: one(book, Kind.FOK, BUY, 102, 3),
           "bad_qty": lambda: one(book, Kind.LIMIT, BUY, 100, 0)}[case]()
    before = book.cells.copy()
    _, steps = traced(book, ops)
    assert ops["reason"][0] == reason
    assert shape(steps) == [(K.BEGIN, 0)] + body + [(K.END, 0)]
    assert np.array_equal(steps["old_word"], steps["new_word"])
    assert np.array_equal(proof_table(before), proof_table(book.cells))


def test_book_full():
    book = Book(4)
    for price in (100, 101, 102):
        rest(book, SELL, price)
    for kind in (Kind.LIMIT, Kind.POST_ONLY):
        ops = one(book, kind, SELL, 103, 1)
        _, steps = traced(book, ops)
        assert ops["reason"][0] == Reason.BOOK_FULL
        assert shape(steps) == [(K.BEGIN, 0), (K.PEEK, H), (K.PEEK, H), (K.END, 0)]


def rest(book: Book, side: Side, price: int, qty: int = 1) -> int:
    out = book.submit(Kind.LIMIT, side, price, qty)
    assert out.status == Status.RESTED
    return out.handle


def one(book: Book, kind: Kind, side: Side = 0, price: int = 0, qty: int = 0, *, handle: int = 0,
        account: int = 0) -> np.ndarray:
    ops = records.ops(1)
    ops[0] = (book.next_seq, book.last_ts, handle, 0, price, qty, account, book.symbol, kind, side,
              0, 0, 0, 0, 0, 0)
    return ops


# ------------------------------------------------- traced runs, random flows --

flows = flow_strategies.flows(max_n=1200, max_depth=300)
make = flow_strategies.make


@settings(max_examples=60, deadline=None)
@given(flows, st.data())
def test_traced_runs_match_plain_runs_and_replay(f, data):
    ops = make(f)
    cut = data.draw(st.integers(0, len(ops)))  # traced from a book already in use
    plain, tracing = Book(1 << f["log2"]), Book(1 << f["log2"])
    plain.process(ops[:cut].copy())
    tracing.process(ops[:cut].copy())
    a, b = ops[cut:].copy(), ops[cut:].copy()
    trades = plain.process(a)
    traced_trades, steps = traced(tracing, b)
    assert np.array_equal(a, b)
    assert np.array_equal(trades, traced_trades)
    assert np.array_equal(plain.cells, tracing.cells)
    assert (steps["kind"] == K.BEGIN).sum() == len(b) == (steps["kind"] == K.END).sum()
    assert (steps["kind"] == K.MATCH).sum() == len(trades)
    # the tracer's own cursor state (the private index) is untouched too
    assert plain.submit(Kind.LIMIT, BUY, 1, 1).handle == tracing.submit(Kind.LIMIT, BUY, 1, 1).handle


@settings(max_examples=40, deadline=None)
@given(flows, st.data())
def test_the_steps_give_the_state_they_leave(f, data):
    """Whoever holds a run's steps has its post-state without a second
    run: after any prefix of the operations, the words the steps wrote
    (written) are the engine's table, and cells_after its cells."""
    ops = make(f)
    cap = 1 << f["log2"]
    cut = data.draw(st.integers(0, len(ops)))
    book = Book(cap)
    book.process(ops[:cut].copy())
    pre = book.cells.copy()
    assert np.array_equal(with_table(pre, proof_table(pre)), pre)
    work = ops[cut:].copy()
    trades, steps = book.process_traced(work)
    if len(work):
        check_steps(steps, len(work), cap)          # the engine's steps are in range
    per_op = np.r_[0, np.cumsum(np.bincount(steps["op"], minlength=len(work)))]
    for k in sorted({0, len(work), data.draw(st.integers(0, len(work)))}):
        again = Book.from_cells(pre)
        again.process(work[:k].copy())
        assert np.array_equal(written(proof_table(pre), steps[:per_op[k]]), proof_table(again.cells))
        assert np.array_equal(cells_after(pre, steps[:per_op[k]], work[:k]), again.cells)


def test_long_flow_reaches_every_outcome_and_replays():
    capacity = 1 << 8
    ops = flow.generate(20_000, seed=11, capacity=capacity,
                        params=FlowParams(depth=300, invalid=0.02, take=0.3, move=0.2))
    book = Book(capacity)
    trades, steps = traced(book, ops)
    assert set(np.unique(ops["status"])) == set(Status) - {Status.NONE}
    assert set(np.unique(ops["reason"])) == set(Reason)
    assert set(np.unique(steps["kind"])) == set(StepKind)
    assert (proof_table(book.cells) < P).all()


def test_buffers_grow_mid_batch():
    """More trades than the book holds and many steps per operation (FOK walks
    of a deep book): the traced run resumes where it stopped, numbering the
    operations across the whole batch."""
    book = Book(1 << 10)
    book.process(makers(1, 1000))
    sweep = records.ops(1)
    sweep[0] = (0, 0, 0, 0, 0, 10**6, 0, 0, Kind.MARKET, BUY, 0, 0, 0, 0, 0, 0)
    fok = records.ops(100)
    fok["kind"], fok["side"], fok["price"], fok["qty"] = Kind.FOK, BUY, 10**6, 10**6
    ops = np.concatenate([sweep, makers(0, 1000), fok, sweep])
    ops["seq"] = np.arange(book.next_seq, book.next_seq + len(ops))
    _, steps = traced(book, ops)
    assert len(steps) > 4 * len(ops) + 2 * book.capacity + 4
    assert ops["trades"][[0, -1]].tolist() == [1000, 1000] and len(book) == 0
    assert (ops["reason"][1001:1101] == Reason.FOK_UNFILLABLE).all()
    begins = steps["op"][steps["kind"] == K.BEGIN]
    assert begins.tolist() == list(range(len(ops)))


def makers(first_seq: int, n: int) -> np.ndarray:
    """n one-lot asks at 1000, 1001, ..."""
    ops = records.ops(n)
    ops["seq"] = np.arange(first_seq, first_seq + n)
    ops["kind"], ops["side"], ops["qty"] = Kind.LIMIT, SELL, 1
    ops["price"] = 1000 + np.arange(n)
    return ops


# ------------------------------------------------------ corrupted traces --

@pytest.fixture(scope="module")
def run():
    capacity = 1 << 6
    ops = flow.generate(3000, seed=5, capacity=capacity,
                        params=FlowParams(depth=80, invalid=0.02, take=0.4, move=0.2))
    book = Book(capacity)
    book.process(ops[:1000].copy())
    pre = book.cells.copy()
    ops = ops[1000:].copy()
    trades, steps = book.process_traced(ops)
    return pre, ops, trades, steps, book.cells.copy()


def first(steps, kind, mask=None):
    hits = np.flatnonzero((steps["kind"] == kind) & ((steps["mask"] == mask) if mask else True))
    return int(hits[len(hits) // 2])


def replays(run, steps):
    pre, ops, trades, _, post = run
    trace_check.check(pre, ops, trades, steps, post)


def test_the_untouched_trace_replays(run):
    replays(run, run[3])


@pytest.mark.parametrize("kind, access, cell", [
    (K.MATCH, 1, 1), (K.REST, 0, 4), (K.CANCEL, 2, 6), (K.PEEK, 0, 0), (K.REDUCE, 1, 7)])
def test_a_changed_old_word_is_caught(run, kind, access, cell):
    """A read that does not return the last write: the memory argument's
    case (a PEEK or a neighbour's link only the memory can refute)."""
    steps = run[3].copy()
    i = first(steps, kind, H | A if kind == K.PEEK else None)
    if kind == K.CANCEL:
        i = int(np.flatnonzero((steps["kind"] == kind) & (steps["mask"] & B > 0))[0])
    steps["old_word"][i, access, cell] += 1
    if kind == K.PEEK:  # a read writes back what it read: both change together
        steps["new_word"][i, access, cell] += 1
    with pytest.raises(TraceError) as err:  # by the memory, or first by the step's own rule
        replays(run, steps)
    assert err.value.step == i


def test_a_changed_write_is_caught(run):
    steps = run[3].copy()
    i = first(steps, K.REDUCE)
    steps["new_word"][i, 1, 1] -= 1
    with pytest.raises(TraceError):
        replays(run, steps)


@pytest.mark.parametrize("kind, mask", [(K.MATCH, H | A | B), (K.MATCH, H | A), (K.REST, None),
                                        (K.CANCEL, None), (K.PEEK, H | A), (K.PEEK, A),
                                        (K.BEGIN, None)])
def test_a_dropped_step_is_caught(run, kind, mask):
    steps = run[3]
    i = first(steps, kind, mask)
    with pytest.raises(TraceError):
        replays(run, np.delete(steps, i))


def test_a_maker_skipped_is_caught(run):
    """A MATCH against the second order instead of the head: the step reads
    consistent memory but breaks rule 2."""
    steps = run[3]
    i = first(steps, K.MATCH, H | A | B)
    bad = steps.copy()
    bad["addr"][i, 1], bad["old_word"][i, 1] = bad["addr"][i, 2], bad["old_word"][i, 2]
    bad["mask"][i], bad["addr"][i, 2], bad["old_word"][i, 2], bad["new_word"][i, 2] = H | A, 0, 0, 0
    with pytest.raises(TraceError, match="the best opposite order is") as err:
        replays(run, bad)
    assert err.value.step == i


def test_a_duplicated_step_and_a_trace_of_other_ops_are_caught(run):
    steps = run[3]
    i = first(steps, K.MATCH)
    with pytest.raises(TraceError):
        replays(run, np.insert(steps, i, steps[i]))
    pre, ops, trades, _, post = run
    with pytest.raises(TraceError):
        trace_check.check(pre, ops[:-1], trades, steps, post)
