"""The order-book AIR (prover/orderbook, docs/STATEMENT.md): completeness on
random flows of every kind, a chain of batches root to root from the empty
book, and a lying engine's traces, each rejected by the verifier and named by
debug mode with the constraint family that catches it, in both proof modes
(the `book_mode` fixture: tests/book_modes.py, docs/ZK.md section 11)."""
from __future__ import annotations

import hashlib
import re
from collections import Counter

import numpy as np
import pytest

from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.engine.records import FLAG_CLAIMED, FLAG_CRITICAL, OP_DTYPE, Kind, Reason, Side, Status
from zksidecar.prover.orderbook import (BatchRejected, prove_batch, verify_batch, verify_chain)
from zksidecar.prover.orderbook import witness as W
from zksidecar.prover.orderbook.air import WRITES
from zksidecar.prover.orderbook.batch import BatchPublic, BookState, prove_from_cells
from zksidecar.prover.proof import Proof
from zksidecar.prover.prove import ConstraintError
from zksidecar.prover.verify import VerificationError
from book_modes import OPTS

# ------------------------------------------------------------ op streams --

def random_ops(n: int, seed: int, capacity: int, first_seq: int = 1, book: Book | None = None,
               ts: int = 0) -> np.ndarray:
    """n records of every kind, drawn against a shadow book so that cancels
    and reduces name live (and sometimes stale or unknown) handles; outcome
    fields cleared.  Prices cluster so takers cross and FOKs go both ways."""
    rng = np.random.default_rng(seed)
    shadow = Book(capacity) if book is None else Book.restore(book.snapshot())
    out = np.zeros(n, dtype=OP_DTYPE)
    dead: list[int] = []
    for i in range(n):
        op = out[i: i + 1]
        op["seq"], op["ts_ns"] = first_seq + i, ts + i
        op["account"] = rng.integers(1, 70000)
        u = rng.random()
        live = np.flatnonzero(shadow.qty)
        if u < 0.2 and len(live):
            s = int(rng.choice(live))
            h = int(shadow.gen[s]) << 32 | s
            if rng.random() < 0.15 and dead:
                h = dead[int(rng.integers(len(dead)))]
            kind = Kind.REDUCE if rng.random() < 0.4 else Kind.CANCEL
            op["kind"], op["handle"] = kind, h
            op["qty"] = int(rng.integers(1, 8)) if kind == Kind.REDUCE else 0
            if kind == Kind.CANCEL or int(op["qty"][0]) >= int(shadow.qty[s]):
                dead.append(h)
        elif u < 0.23:   # malformed
            op["kind"], op["side"], op["price"], op["qty"] = rng.choice([1, 9]), 3, 100, 1
            if rng.random() < 0.3:
                op["kind"], op["handle"] = Kind.CANCEL, capacity + 5
        else:
            kind = rng.choice([Kind.LIMIT, Kind.LIMIT, Kind.IOC, Kind.MARKET, Kind.FOK,
                               Kind.POST_ONLY])
            side = int(rng.integers(1, 3))
            op["kind"], op["side"] = kind, side
            op["price"] = 100 + int(rng.integers(-4, 5))
            op["qty"] = int(rng.integers(1, 12))
        shadow.process(op)
    for name in ("filled", "trades", "status", "reason"):
        out[name] = 0
    new = (out["kind"] != Kind.CANCEL) & (out["kind"] != Kind.REDUCE)
    out["handle"][new] = 0
    return out


def make_ops(rows, first_seq: int = 1) -> np.ndarray:
    """Records from (kind, side, price, qty[, handle]) tuples."""
    out = np.zeros(len(rows), dtype=OP_DTYPE)
    for i, r in enumerate(rows):
        kind, side, price, qty, *h = r
        out[i]["seq"], out[i]["ts_ns"], out[i]["account"] = first_seq + i, i, 7 + i
        out[i]["kind"], out[i]["side"], out[i]["price"], out[i]["qty"] = kind, side, price, qty
        out[i]["handle"] = h[0] if h else 0
    return out


def outcomes(bp) -> Counter:
    o = bp.public.ops
    return Counter(zip(o["kind"].tolist(), o["status"].tolist(), o["reason"].tolist()))


# ------------------------------------------------------------ completeness --

@pytest.mark.parametrize("log_cap,n,seed", [(4, 40, 1), (4, 60, 2), (5, 80, 3), (6, 120, 4)])
def test_random_flows_prove_and_verify(log_cap, n, seed):
    cap = 1 << log_cap
    book = Book(cap)
    ops = random_ops(n, seed, cap)
    bp, post, trades = prove_batch(book, ops, OPTS, debug=True)
    assert 64 <= bp.public.ops_length <= 512 and bp.public.book_length == max(cap, 16)
    verify_batch(bp, min_security=0)
    ref = Book(cap)
    ref_ops = ops.copy()
    assert np.array_equal(ref.process(ref_ops), trades)
    assert np.array_equal(ref.cells, post.cells)


def test_batch_of_field_rejections_only():
    """No step touches memory: post = pre, proven by the memory argument alone."""
    ops = make_ops([(9, 1, 100, 1), (Kind.LIMIT, 3, 100, 1), (Kind.LIMIT, 1, 0, 1),
                    (Kind.IOC, 2, 100, 0), (Kind.CANCEL, 0, 0, 0, 1 << 32 | 99),
                    (Kind.CANCEL, 0, 0, 0, 0), (Kind.REDUCE, 0, 0, 0, 1)])
    ops[0]["flags"] = 0
    bp, post, trades = prove_batch(Book(16), ops, OPTS, debug=True)
    verify_batch(bp, min_security=0)
    assert len(trades) == 0 and set(bp.public.ops["status"]) == {Status.REJECTED}
    from zksidecar.engine.proof_table import proof_table
    assert np.array_equal(proof_table(post.cells), proof_table(Book(16).cells))
    assert post.root == bp.public.pre_root          # the same table, the same root


def test_single_operation_at_capacity_2_10():
    book = Book(1 << 10)
    bp, _, _ = prove_batch(book, make_ops([(Kind.LIMIT, Side.BUY, 100, 3)]), OPTS, debug=True)
    # the state on a book domain of 2^10 rows, the one operation's steps on 16
    assert (bp.public.book_length, bp.public.ops_length) == (1 << 10, 16)
    verify_batch(bp, min_security=0)


def test_the_longest_operation_fits_the_shortest_trace():
    """witness.max_rows: a FOK that walks every maker of a full book and then
    takes them all is the longest operation, 2 (N - 1) rows; it proves in
    the shortest trace check_trace_length allows.  Random flows never take
    more rows per operation."""
    cap = 16
    book = Book(cap)
    for i in range(cap - 1):
        book.submit(Kind.LIMIT, Side.SELL, 100 + i, 1, account=20 + i)
    ops = make_ops([(Kind.FOK, Side.BUY, 200, cap - 1)], first_seq=cap)
    _, steps = Book.restore(book.snapshot()).process_traced(ops.copy())
    assert W.op_rows(steps, 1)[0] == W.max_rows(cap) == 2 * (cap - 1)
    t = W.check_trace_length(32, cap)
    bp, _, trades = prove_batch(book, ops, OPTS, ops_length=t, debug=True)
    verify_batch(bp, min_security=0)
    assert len(trades) == cap - 1
    with pytest.raises(ValueError, match="cannot hold one operation"):
        W.check_trace_length(16, cap)
    for seed in range(6):
        ops = flow.generate(400, seed=seed, capacity=cap, params=flow.FlowParams(
            depth=12, take=0.5, cancel=0.3, invalid=0.05))
        _, steps = Book(cap).process_traced(ops.copy())
        assert W.op_rows(steps, len(ops)).max() <= W.max_rows(cap)


def test_every_outcome_is_proven():
    """Across a few flows every status and every reason the trace proves
    shows up (field rejections are the verifier's plain checks)."""
    seen = Counter()
    for seed in range(4):
        cap = 16
        ops = random_ops(70, 100 + seed, cap)
        bp, _, _ = prove_batch(Book(cap), ops, OPTS, debug=True)
        verify_batch(bp, min_security=0)
        seen += outcomes(bp)
    full = [(Kind.LIMIT, Side.BUY, 50 + i % 5, 1) for i in range(15)]
    full += [(Kind.LIMIT, Side.SELL, 60, 2), (Kind.POST_ONLY, Side.SELL, 70, 2),
             (Kind.LIMIT, Side.BUY, 49, 1), (Kind.IOC, Side.SELL, 52, 20)]
    bp, _, _ = prove_batch(Book(16), make_ops(full), OPTS, debug=True)
    verify_batch(bp, min_security=0)
    seen += outcomes(bp)
    statuses = {s for _, s, _ in seen}
    reasons = {r for _, _, r in seen}
    assert statuses >= {Status.RESTED, Status.FILLED, Status.EXPIRED, Status.CANCELLED,
                        Status.REDUCED, Status.REJECTED}
    assert reasons >= {Reason.STALE_HANDLE, Reason.WOULD_CROSS, Reason.FOK_UNFILLABLE,
                       Reason.BOOK_FULL, Reason.UNKNOWN_HANDLE, Reason.BAD_SIDE}
    kinds = {k for k, s, _ in seen if s != Status.REJECTED}
    assert kinds >= {Kind.LIMIT, Kind.IOC, Kind.MARKET, Kind.FOK, Kind.POST_ONLY, Kind.CANCEL,
                     Kind.REDUCE}


def test_the_critical_flag_is_proven_as_a_priority_hint_only(book_mode):
    """FLAG_CRITICAL (and CLAIMED) leave matching alone: such operations
    prove with their ordinary outcomes; any other bit is BAD_FLAGS, and
    records that let one through as an ordinary order are refused: in plain
    code when public, by check 12 (the reason is the first failing check's:
    BAD_FLAGS) when committed."""
    ops = make_ops([(Kind.LIMIT, Side.BUY, 50, 3), (Kind.LIMIT, Side.SELL, 50, 2),
                    (Kind.LIMIT, Side.SELL, 60, 1)])
    ops["flags"] = [FLAG_CRITICAL, FLAG_CRITICAL | FLAG_CLAIMED, 4]
    book = Book(book_mode.capacity(16))
    prep = book_mode.prepare(book, ops)
    o, trades = book_mode.records(prep)
    assert list(o["status"]) == [Status.RESTED, Status.FILLED, Status.REJECTED]
    assert o["reason"][2] == Reason.BAD_FLAGS and len(trades) == 1
    verify_batch(book_mode.prove(prep, debug=True), min_security=0)

    def tamper(w, o, t):
        o["status"][2], o["reason"][2] = Status.RESTED, Reason.NONE
    assert_plain_lie(book_mode, ops, tamper, "operation 2: its fields give BAD_FLAGS", "record: check 12: ",
                     book=book)


@pytest.mark.parametrize("log_cap", [4, 5, 6])
def test_synthetic_flow_as_a_chain(log_cap):
    """engine/flow.py's synthetic flow (every kind, malformed records, cancels
    of orders that may have filled meanwhile), proven in batches of 60 on
    512-row traces and verified as a chain from the empty book."""
    cap = 1 << log_cap
    ops = flow.generate(300, seed=log_cap, capacity=cap, params=flow.FlowParams(
        depth=cap // 2, invalid=0.05, take=0.35, post_only=0.15, cancel=0.5, reduce=0.3))
    state, chain, seen = Book(cap), [], Counter()
    for start in range(0, len(ops), 60):
        bp, state, _ = prove_batch(state, ops[start:start + 60], OPTS, ops_length=512,
                                   batch_id=start // 60)
        chain.append(bp)
        seen += outcomes(bp)
    verify_chain(chain, min_security=0)
    assert {s for _, s, _ in seen} >= set(Status) - {Status.NONE}
    ref = Book(cap)
    ref.process(ops.copy())
    assert np.array_equal(ref.cells, state.cells)


def test_c_witness_builder_equals_the_row_by_row_one():
    from zksidecar.engine.proof_table import proof_table
    cases = [(Book(16 << (k % 3)), random_ops(80, 40 + k, 16 << (k % 3))) for k in range(3)]
    cases.append((Book(64), flow.generate(300, seed=1, capacity=64, params=flow.FlowParams(
        depth=32, invalid=0.05, take=0.35, post_only=0.15, cancel=0.5, reduce=0.3))))
    cases.append((Book(8), random_ops(40, 7, 8)))       # S = 16 > capacity: zero rows after the book
    for book, ops in cases:
        after = Book.restore(book.snapshot())
        ops = ops.copy()
        _, steps = after.process_traced(ops)
        t = W.rows_for(int(W.fold(steps).sum()))
        args = (proof_table(book.cells), ops, steps, t, book.capacity)
        fast, ref = W.build(*args), W.build_reference(*args)
        assert np.array_equal(fast.pre, ref.pre) and np.array_equal(fast.post, ref.post)
        assert np.array_equal(fast.pts, ref.pts)
        # the table the C pass writes is the engine's own after the run
        assert np.array_equal(fast.post_written, proof_table(after.cells))
        assert np.array_equal(fast.post_written, ref.post_written)
        for name in ref.columns:
            assert np.array_equal(fast.columns[name], ref.columns[name]), name


# ------------------------------------------------------------------ chains --

def prove_chain(k=3, cap=32, n=40, t=512, seed=0):
    state, out = Book(cap), []
    seq, ts = 1, 0
    book = Book(cap)
    for b in range(k):
        ops = random_ops(n, seed + b, cap, first_seq=seq, book=book, ts=ts)
        bp, state, _ = prove_batch(state, ops, OPTS, ops_length=t, batch_id=b)
        book.process(ops.copy())
        out.append(bp)
        seq, ts = seq + n, ts + n
    return out, state


def test_chain_of_three_verifies_root_to_root():
    chain, last = prove_chain()
    done = verify_chain(chain, min_security=0)
    assert done.roots["book.post"] == last.root
    assert chain[1].public.pre_root == chain[0].post_root
    # the proofs serialise in the documented format and still verify
    for bp in chain:
        st = bp.public.statement()
        again = Proof.from_bytes(bp.proof.to_bytes(st), st)
        verify_batch(again, bp.public, min_security=0)


def test_batches_of_a_chain_prove_in_any_order_from_cells():
    """A batch's pre-state (root and link) is a function of the engine's
    cells: the batches of one chain, proven last to first with
    prove_from_cells, verify as the same chain."""
    cap, n = 32, 40
    book, cuts = Book(cap), []
    for b in range(3):
        ops = random_ops(n, b, cap, first_seq=1 + b * n, book=book, ts=b * n)
        cuts.append((book.cells.copy(), ops))
        book.process(ops.copy())
    proofs = {}
    for b in reversed(range(3)):
        cells, ops = cuts[b]
        proofs[b], post_cells, _ = prove_from_cells(cells, ops, OPTS, b)
        assert (post_cells == (cuts[b + 1][0] if b < 2 else book.cells)).all()
    chain = [proofs[b] for b in range(3)]
    assert verify_chain(chain, min_security=0).roots["book.post"] == BookState.of(book.cells, OPTS.log_blowup).root


def test_chain_out_of_order_or_with_a_wrong_link_fails():
    chain, _ = prove_chain()
    with pytest.raises(VerificationError):
        verify_chain([chain[0], chain[2], chain[1]], min_security=0)
    with pytest.raises(VerificationError):
        verify_chain(chain[1:], min_security=0)            # not from the empty book
    pub = chain[2].public
    wrong = BatchPublic(pub.log2_capacity, pub.book_length, pub.ops_length, pub.symbol, pub.first_seq, pub.ops,
                        pub.trades, pub.pre_root, chain[1].public.pre_link)
    with pytest.raises(VerificationError):
        verify_batch(chain[2].proof, wrong, min_security=0)


def test_pre_state_that_is_not_the_previous_post_state_fails():
    chain, _ = prove_chain()
    # batch 2 proven from another book (batch 1's post-state with one more order)
    cap, t = 32, 512
    b1_post = Book(cap)
    for bp in chain[:2]:
        b1_post.process(bp.public.ops.copy())
    forged = Book.restore(b1_post.snapshot())
    forged.submit(Kind.LIMIT, Side.BUY, 1, 1)
    ops = chain[2].public.ops.copy()
    for name in ("filled", "trades", "status", "reason"):
        ops[name] = 0
    ops["seq"] += 1
    fake, _, _ = prove_batch(forged, ops, OPTS, ops_length=t)
    with pytest.raises(VerificationError):
        verify_chain(chain[:2] + [fake], min_security=0)
    # and verified against the real previous post root and link
    prev = verify_batch(chain[1], min_security=0)
    pub = fake.public
    real = BatchPublic(pub.log2_capacity, pub.book_length, pub.ops_length, pub.symbol, pub.first_seq, pub.ops,
                       pub.trades, prev.roots["book.post"], prev.links["book.post"])
    with pytest.raises(VerificationError):
        verify_batch(fake.proof, real, min_security=0)


# ------------------------------------------------------- a lying engine --
#
# Each case edits the honest witness the way a dishonest engine would (and,
# where the lie needs it, the records), then re-threads the memory so that
# every read returns the last write: what is left is the broken rule.
# Debug mode must name the constraint family; a proof made without debug
# must not verify.  Each runs in both proof modes (the `book_mode` fixture,
# tests/book_modes.py): in zk mode the records are not public but committed,
# and the lying prover's lane commits the edited ones.

def setup_book(capacity: int = 16) -> Book:
    """asks: slot 1 @100 x5 (account 11), slot 2 @101 x5 (12); bid: slot 3 @95 x4 (13)."""
    b = Book(capacity)
    b.submit(Kind.LIMIT, Side.SELL, 100, 5, account=11)
    b.submit(Kind.LIMIT, Side.SELL, 101, 5, account=12)
    b.submit(Kind.LIMIT, Side.BUY, 95, 4, account=13)
    return b


def mode_book(mode) -> Book:
    """setup_book at the mode's smallest capacity (zk mode's masks need 128 slots)."""
    return setup_book(mode.capacity(16))


def batch(*rows):
    return make_ops(rows, first_seq=4)


def prove_lie(mode, book, ops, tamper, ops_length=None, debug=False):
    """A lying engine's proof in `mode`: the honest run's witness and
    records, edited by `tamper(witness, ops, trades)` (in place, or by
    returning new (ops, trades)) before proving; published (transparent)
    or committed by the lying prover's lane (zk)."""
    prep = mode.prepare(book, ops, ops_length)
    ops_, trades = mode.records(prep)
    changed = tamper(prep.witness, ops_, trades)
    mode.commit(prep, *(changed if changed is not None else (ops_, trades)))
    return mode.prove(prep, debug)


def honest(*_):
    """A tamper that changes nothing."""


#: honest batches already proven through the lie harness, by mode, book,
#: records and height: each is proven once (it is deterministic)
_PROVEN: set = set()


def assert_lie(mode, ops, tamper, family: str, book=None, end_to_end: bool | None = None):
    """The honest run proves through the same path (in zk mode: the lying
    prover's lane of the honest records); the lie is named by debug mode
    (`family`); forced past it (`end_to_end`), its proof does not verify.
    By default the forced proof is made in transparent mode only: zk mode
    runs the same constraints and sum (the debug check shows which), and
    its proofs cost more; assert_plain_lie forces zk proofs, where the
    transparent refusal was not a constraint's."""
    book = mode_book(mode) if book is None else book
    key = (mode.name, hashlib.sha256(book.cells.tobytes()).digest(), ops.tobytes())
    if key not in _PROVEN:
        verify_batch(prove_lie(mode, book, ops, honest, debug=True), min_security=0)
        _PROVEN.add(key)
    with pytest.raises(ConstraintError, match=family):
        prove_lie(mode, book, ops, tamper, debug=True)
    if not mode.zk if end_to_end is None else end_to_end:
        with pytest.raises(VerificationError):
            verify_batch(prove_lie(mode, book, ops, tamper), min_security=0)


def assert_plain_lie(mode, ops, tamper, message: str, zk_family: str, book=None):
    """A lie transparent mode's verifier refuses in plain code, before any
    proof is read (check_public or noncanonical: BatchRejected, `message`).
    In zk mode no record is public: the lie is about committed records, and
    the constraint family or the LogUp sum that replaces the plain check
    (docs/ZK.md section 4's table; `zk_family`) refuses it: debug names it,
    a proof forced past it does not verify."""
    book = mode_book(mode) if book is None else book
    if mode.zk:
        assert_lie(mode, ops, tamper, zk_family, book=book, end_to_end=True)
        return
    with pytest.raises(BatchRejected, match=message):
        verify_batch(prove_lie(mode, book, ops, tamper), min_security=0)


def first(c, step):
    return int(np.flatnonzero(c[step])[0])


def set_word(c, x, r, word):
    """Cells of `word` into the columns x0.. at row r: an old word (oA), or
    the cells a new word has columns for (nA: all; nB, nC: their links)."""
    for j, v in enumerate(word):
        if f"{x}{j}" in c:
            c[f"{x}{j}"][r] = v


#: a LogUp sum that does not balance: each domain's running sum closes on the
#: sum it claims, so the lie shows as claims that miss the statement's target
#: (-public_sum); a claim off its own rows fails that domain's relation at
#: the wrap instead (tests/test_orderbook_review.py, the LogUp split)
SUM = re.escape("the domains' claimed sums do not add up to the statement's target")


def test_trade_through_skipping_the_best_maker(book_mode):
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sM")
        word = w.pre[2].copy()
        word[1] -= 3
        c["aA"][r] = 2
        set_word(c, "nA", r, word)
        c["zv1"][r], c["cmp1"][r] = word[6], 0
        w.rethread()
        trades[0]["maker_handle"], trades[0]["price"], trades[0]["maker_account"] = 2, 101, 12
    assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 101, 3)), tamper, "rule 2: MATCH takes the opposite head")


def test_trade_at_the_takers_price(book_mode):
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sM")
        c["oA0"][r] = c["nA0"][r] = 102                  # a forged read of the maker's price
        c["cmp1"][r] = 0
        W.derive_columns(c, w.trace_length)
        w.finish()
        trades[0]["price"] = 102
    assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 102, 3)), tamper, SUM)


def test_trade_at_the_takers_price_in_the_public_list_only(book_mode):
    def tamper(w, ops, trades):
        trades[0]["price"] = 102
    assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 102, 3)), tamper, SUM)


@pytest.mark.parametrize("fill", [4, 2])
def test_over_and_under_fill(book_mode, fill):
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sM")
        c["fl"][r] = fill
        c["nA1"][r] = 5 - fill
        c["rem"][r + 1:] = 3 - fill
        w.rethread()
        trades[0]["qty"] = fill
        ops[0]["filled"] = fill
    assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 100, 3)), tamper, r"rule [23]: .*fill")


def test_cancel_that_leaves_the_order_live(book_mode):
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sC")
        for x, cells in WRITES.items():
            for j in cells:
                c[f"n{x}{j}"][r] = c[f"o{x}{j}"][r]
        w.rethread()
    assert_lie(book_mode, batch((Kind.CANCEL, 0, 0, 0, 1)), tamper, "freed slot")


def test_change_to_an_untouched_slot(book_mode):
    def tamper(w, ops, trades):
        w.post[3, 1] += 1                                # the bid nobody touched
    assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 100, 3)), tamper, SUM)


def test_dropped_operation(book_mode):
    def tamper(w, ops, trades):
        c = w.columns
        keep = ~((c["oi"] == 1) & (c["sZ"] == 0))
        t = w.trace_length
        for name, col in c.items():
            kept = col[keep]
            c[name] = np.concatenate([kept, np.repeat(kept[-1:], t - len(kept))])
        c["row"] = np.arange(t)
        w.rethread()
    ops = batch((Kind.LIMIT, Side.BUY, 96, 2), (Kind.LIMIT, 3, 96, 2), (Kind.LIMIT, Side.BUY, 97, 1))
    assert_lie(book_mode, ops, tamper, re.escape("rule 1: op_index' = op_index + first'"))


def test_reordered_operations(book_mode):
    def tamper(w, ops, trades):
        c = w.columns
        a, b = (c["oi"] == 0) & (c["sZ"] == 0), (c["oi"] == 1)
        c["oi"][a], c["oi"][b] = 1, 0
        ops[[0, 1]] = ops[[1, 0]]
        ops["seq"], ops["ts_ns"] = [4, 5], [0, 0]
    ops = batch((Kind.LIMIT, Side.BUY, 96, 2), (Kind.LIMIT, Side.BUY, 97, 1))
    assert_lie(book_mode, ops, tamper, "rule 1: op_index")


@pytest.mark.parametrize("how", ["missing", "added"])
def test_trade_missing_from_or_added_to_the_public_list(book_mode, how):
    def tamper(w, ops, trades):
        assert len(trades) == 2
        return (ops, trades[:1]) if how == "missing" else (ops, np.concatenate([trades, trades[1:]]))
    assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 101, 7)), tamper, SUM)


def test_wrong_time_priority_at_one_price(book_mode):
    """A sell at 100 goes ahead of the resting sell at 100 (slot 1)."""
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sR")
        new = int(c["aA"][r])
        c["mB"][r] = c["aB"][r] = c["zv1"][r] = 0
        c["mC"][r], c["aC"][r], c["zv2"][r] = 1, 1, 1
        set_word(c, "oB", r, [0] * 8)
        set_word(c, "nB", r, [0] * 8)
        c["tB"][r] = 0
        c["nA5"][r], c["nA6"][r] = 0, 1
        c["nC5"][r] = new                     # slot 1's prev: the new order
        c["nH2"][r] = new                     # best ask: the new order
        c["nH3"][r] = 2                       # worst ask unchanged
        c["cmp1"][r] = 0
        w.rethread()
    assert_lie(book_mode, batch((Kind.LIMIT, Side.SELL, 100, 1)), tamper, "rule 4: next price strictly behind")


def test_stale_handle_accepted(book_mode):
    def tamper(w, ops, trades):
        c = w.columns
        ops[0]["handle"] = 1 << 32 | 1                   # generation 1: slot 1 is at generation 0
        c["hgen"][:] = 1
    assert_lie(book_mode, batch((Kind.CANCEL, 0, 0, 0, 1)), tamper, "rule 5: handle's generation")


def test_fok_partially_filled(book_mode):
    """A FOK for 20 lots against 10 crossing ones, traded as an IOC."""
    def tamper(w, ops, trades):
        c = w.columns
        c["k_ioc"][:], c["k_fok"][:] = 0, 1
        ops[0]["kind"] = Kind.FOK
    assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 101, 20)), tamper, "rule 5: FOK")


def test_post_only_that_crossed(book_mode):
    """A post-only sell at 95 against the bid at 95, shown resting."""
    def tamper(w, ops, trades):
        c = w.columns
        c["lim"][:] = 95
        c["nA0"][first(c, "sR")] = 95
        w.rethread()
        ops[0]["price"] = 95
    assert_lie(book_mode, batch((Kind.POST_ONLY, Side.SELL, 96, 2)), tamper, "rule 2: stop: the head does not cross")


def test_public_field_rejection_checked_by_the_verifier(book_mode):
    """A BAD_SIDE rejection recorded as BAD_PRICE: transparent mode's
    verifier refuses the public record in plain code (check_public); in zk
    mode the committed record's reason is not the first failing check's,
    which check 12 of docs/ZK.md section 4 refuses by a constraint."""
    def tamper(w, ops, trades):
        ops[0]["reason"] = Reason.BAD_PRICE
    ops = batch((Kind.LIMIT, 3, 96, 2))
    if book_mode.zk:
        assert_lie(book_mode, ops, tamper, re.escape("record: check 12: reason = the first failing check's"))
        return
    bp = prove_lie(book_mode, mode_book(book_mode), ops, tamper)
    with pytest.raises(BatchRejected, match="operation 0: its fields give BAD_SIDE"):
        verify_batch(bp, min_security=0)


def test_phantom_maker(book_mode):
    """A MATCH against slot 4, free in the book, read as if it held an ask."""
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sM")
        c["oH2"][r] = c["nH2"][r] = 4
        c["aA"][r] = 4
        set_word(c, "oA", r, [100, 5, 2, 11, 0, 0, 2, 0])
        set_word(c, "nA", r, [100, 2, 2, 11, 0, 0, 2, 0])
        W.derive_columns(c, w.trace_length)
        w.finish()
        trades[0]["maker_handle"] = 4
    assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 100, 3)), tamper, SUM)


def _shift_up(w, r):
    """Delete row r (the rows below move up; the last row repeats)."""
    c = w.columns
    for name, col in c.items():
        col[r:-1] = col[r + 1:].copy()
    c["row"] = np.arange(w.trace_length)


def test_fok_rejected_though_fillable(book_mode):
    """FOK for 7 against 10 crossing lots, rejected after its look-ahead."""
    def tamper(w, ops, trades):
        c = w.columns
        c["qty"][:] = 7
        c["rem"][:] = 7
        c["cmp2"][0] = 7 - 5 - 1                    # rows: the walk at slot 1, at slot 2 (last)
        c["sf"][1], c["cmp2"][1] = 1, 10 - 7
        W.derive_columns(c, w.trace_length)
        w.finish()
        ops[0]["qty"] = 7
    assert_lie(book_mode, batch((Kind.FOK, Side.BUY, 101, 11)), tamper, "rule 5: FOK sufficient -> MATCH")


def test_post_only_rejected_though_not_crossing(book_mode):
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sR")
        c["pk_stop"][r - 1], c["pk_cross"][r - 1] = 0, 1
        _shift_up(w, r)                                   # REST gone: the PEEK ends the operation
        c["last"][r - 1] = 1
        w.rethread()
        ops[0]["status"], ops[0]["reason"], ops[0]["handle"] = Status.REJECTED, Reason.WOULD_CROSS, 0
    assert_lie(book_mode, batch((Kind.POST_ONLY, Side.SELL, 96, 2)), tamper,
               re.escape("rule 5: post-only crossing: it crosses (cmp1)"))


def test_book_full_claimed_with_a_free_slot(book_mode):
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sR")
        c["sR"][r], c["pk_full"][r] = 0, 1
        for x in "ABC":
            c[f"m{x}"][r] = c[f"a{x}"][r] = 0
            set_word(c, f"o{x}", r, [0] * 8)
            set_word(c, f"n{x}", r, [0] * 8)
        for j in range(6):
            c[f"nH{j}"][r] = c[f"oH{j}"][r]
        c["zv1"][r] = c["zv2"][r] = c["cmp1"][r] = c["cmp2"][r] = 0
        c["os"][r] = c["og"][r] = 0
        w.rethread()
        ops[0]["status"], ops[0]["reason"], ops[0]["handle"] = Status.REJECTED, Reason.BOOK_FULL, 0
    assert_lie(book_mode, batch((Kind.LIMIT, Side.BUY, 96, 2)), tamper, "rule 5: book full: free head = 0")


def test_live_order_rejected_as_stale(book_mode):
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sC")
        c["sC"][r], c["pk_stale"][r] = 0, 1
        c["mH"][r] = c["mB"][r] = c["mC"][r] = c["aB"][r] = c["aC"][r] = 0
        for x in "HBC":
            set_word(c, f"o{x}", r, [0] * 8)
            set_word(c, f"n{x}", r, [0] * 8)
        for j in range(8):
            c[f"nA{j}"][r] = c[f"oA{j}"][r]
        c["sel"][r] = c["cmp1"][r] = c["cmp2"][r] = c["zv2"][r] = 0
        c["zv1"][r] = 0                                   # gen - handle gen
        w.rethread()
        ops[0]["status"], ops[0]["reason"] = Status.REJECTED, Reason.STALE_HANDLE
    assert_lie(book_mode, batch((Kind.CANCEL, 0, 0, 0, 1)), tamper, "rule 5: stale: generation differs or qty 0")


def test_reduce_that_moves_the_order(book_mode):
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sD")
        c["nA0"][r] = 99                                  # a better price: ahead of the queue
        w.rethread()
    assert_lie(book_mode, batch((Kind.REDUCE, 0, 0, 2, 2)), tamper, "REDUCE keeps cell 0")


# One edit per constraint family that the cases above do not reach: each
# lie is otherwise consistent (rethreaded memory) and names its family.

def _cancel_row(w):
    return first(w.columns, "sC")


def _no_gen_bump(w, ops, trades):
    c = w.columns
    r = _cancel_row(w)
    c["nA7"][r] = c["oA7"][r]
    w.rethread()


def _not_on_free_list(w, ops, trades):
    c = w.columns
    r = _cancel_row(w)
    c["nH4"][r] = c["oH4"][r]
    c["nA6"][r] = 0
    w.rethread()


def _live_kept(w, ops, trades):
    c = w.columns
    r = _cancel_row(w)
    c["nH5"][r] = c["oH5"][r]
    w.rethread()


def _false_wrap(w, ops, trades):
    c = w.columns
    r = _cancel_row(w)
    c["gw"][r], c["nA7"][r] = 1, 0                 # gen 0 -> 0, "wrapped"
    w.rethread()


def _rest_elsewhere(w, ops, trades):
    c = w.columns
    r = first(c, "sR")
    c["aA"][r] = 9                                  # a free slot, not the free head (4)
    w.rethread()
    c["nH4"][r] = c["oA6"][r]                       # slot 9's next becomes the free head
    c["os"][r] = 9
    w.rethread()
    ops[0]["handle"] = 9


def _maker_leaves_best_kept(w, ops, trades):
    c = w.columns
    r = first(c, "sM")
    c["nH2"][r] = c["oH2"][r]                       # best ask still the freed slot
    w.rethread()


def _limit_changed_mid_operation(w, ops, trades):
    c = w.columns
    r = first(c, "sM")
    c["lim"][r + 1:] = 99                           # the stop PEEK sees a lower limit
    c["cmp1"][r + 1] = c["oA0"][r + 1] - 99 - 1
    w.rethread()


def _expired_called_filled(w, ops, trades):
    """The taker's stop PEEK dropped, so that its last row is a MATCH:
    status FILLED, with 2 lots unfilled."""
    c = w.columns
    r = first(c, "sM")
    _shift_up(w, r + 1)
    c["last"][r] = 1
    w.rethread()
    ops[0]["status"] = Status.FILLED


def _walk_skips_a_maker(w, ops, trades):
    c = w.columns
    c["aA"][1] = 1                                  # slot 1 again, not its next (2):
    c["zv1"][1] = 1                                 # its liquidity counted twice
    w.rethread()
    c["zv2"][1] = c["oA6"][1]
    W.derive_columns(c, w.trace_length)
    w.finish()


@pytest.mark.parametrize("rows,tamper,family", [
    ([(Kind.CANCEL, 0, 0, 0, 1)], _no_gen_bump, re.escape("freed slot gen + 1")),
    ([(Kind.CANCEL, 0, 0, 0, 1)], _not_on_free_list, "freed slot joins the free list"),
    ([(Kind.CANCEL, 0, 0, 0, 1)], _live_kept, "live - 1"),
    ([(Kind.CANCEL, 0, 0, 0, 1)], _false_wrap, "gen wrap"),
    ([(Kind.LIMIT, Side.BUY, 96, 2)], _rest_elsewhere, "REST takes the free head"),
    ([(Kind.IOC, Side.BUY, 100, 5)], _maker_leaves_best_kept, "opposite best = its next"),
    ([(Kind.IOC, Side.BUY, 100, 7)], _limit_changed_mid_operation, "context lim constant"),
    ([(Kind.IOC, Side.BUY, 100, 7)], _expired_called_filled, "a taker ends on MATCH only when filled"),
    ([(Kind.FOK, Side.BUY, 101, 7)], _walk_skips_a_maker, "FOK: walk follows next"),
])
def test_each_family_catches_its_lie(book_mode, rows, tamper, family):
    assert_lie(book_mode, batch(*rows), tamper, family)


def test_generation_wraps_at_2_30(book_mode):
    """A slot at generation 2^30 - 1 is freed to generation 0 (completeness
    of the wrap); claiming no wrap there fails."""
    book = mode_book(book_mode)
    cells = book.cells.copy()
    from zksidecar.engine.invariants import COLUMNS, HEADER
    gen_at = HEADER + COLUMNS.index("gen") * book.capacity + 1
    cells[gen_at] = (1 << 30) - 1
    snap = Book.snapshot(type("C", (), {"cells": cells})())
    wrapped = Book.restore(snap)
    ops = batch((Kind.CANCEL, 0, 0, 0, ((1 << 30) - 1) << 32 | 1))
    prep = book_mode.prepare(wrapped, ops)
    verify_batch(book_mode.prove(prep, debug=True), min_security=0)
    assert book_mode.records(prep)[0][0]["status"] == Status.CANCELLED and prep.post_cells[gen_at] == 0

    def no_wrap(w, ops, trades):
        c = w.columns
        r = _cancel_row(w)
        c["gw"][r], c["nA7"][r] = 0, 1 << 30
        w.rethread()
    assert_lie(book_mode, ops, no_wrap, "gen", book=wrapped)


# ----------------------------------------------------- range-check limits --

def test_scaled_top_limb_alone_would_accept_a_negative_difference(book_mode):
    """The range check's top limb: looked up only as top * 2^(kL - 30) (as
    first specified), a huge field element top = v / 2^s passes, and a buy at
    limit 1 trades through an ask at 858,993,459 (cmp1 = 1 - price, a
    negative difference).  Looking the top limb up directly as well stops it."""
    from zksidecar.prover import field as F
    from zksidecar.prover.orderbook.air import limbs_for
    P = F.P
    HIGH = 858_993_459          # 0.8 * 2^30: a valid price
    book = Book(book_mode.capacity(16))
    book.submit(Kind.LIMIT, Side.SELL, HIGH, 5, account=11)
    # batch: a buy IOC at limit 1 for 3 lots, honest: EXPIRED
    ops = make_ops([(Kind.IOC, Side.BUY, 1, 3)], first_seq=2)
    def tamper(w, o, trades):
        c = w.columns
        T = w.trace_length
        L, k = limbs_for(T)
        r = first(c, "pk_stop")             # the one row: the stop PEEK -> a MATCH
        c["pk_stop"][r], c["sM"][r] = 0, 1
        word = w.pre[1].copy(); word[1] -= 3
        set_word(c, "nA", r, word)
        c["fl"][r], c["lv"][r] = 3, 0
        c["zv1"][r] = word[6]
        c["rem"][r + 1:] = 0
        c["tn"][r + 1:] = 1
        cx = (1 - HIGH) % P
        c["cmp1"][r] = cx
        c["cmp2"][r] = 5 - 3 - 1
        w.rethread()
        s = k * L - 30
        # the cheat: cmp1 = lower + top * 2^((k-1)L), top = v / 2^s
        v = (1 << L) - 1
        lower = (cx - v * (1 << (30 - L))) % P
        assert 0 <= lower < 1 << ((k - 1) * L), (lower, k, L)
        for i in range(k - 1):
            c[f"c1_{i}"][r] = (lower >> (i * L)) & ((1 << L) - 1)
        c[f"c1_{k-1}"][r] = v * pow(1 << s, P - 2, P) % P
        w.finish()
        o[0]["status"], o[0]["filled"], o[0]["trades"] = Status.FILLED, 3, 1
        t = np.zeros(1, dtype=trades.dtype)
        t["taker_seq"], t["maker_handle"], t["price"], t["qty"] = 2, 1, HIGH, 3
        t["maker_account"], t["taker_account"], t["taker_side"] = 11, o[0]["account"], Side.BUY
        return o, t
    with pytest.raises(ConstraintError, match=SUM):
        prove_lie(book_mode, book, ops, tamper, ops_length=512, debug=True)
    with pytest.raises(VerificationError):
        verify_batch(prove_lie(book_mode, book, ops, tamper, ops_length=512), min_security=0)


def test_the_engine_limit_is_the_provable_limit(book_mode):
    """Differences of values below 2^30 span more integers than p has
    elements (1 - (2^30 - 2) is, in the field, a number below 2^30), so a
    range-checked difference only tells the sign of values up to
    p - 2^30 - 1.  That is the engine's MAX_PRICE and MAX_QTY: a larger value
    is a BAD_PRICE / BAD_QTY rejection, proven like any other, and a public
    list that claims it was accepted is refused (zk mode: committed records
    that claim it, by check 12 of docs/ZK.md section 4, the price's
    comparison with MAX being check 11's)."""
    from zksidecar.engine.records import MAX_PRICE, MAX_QTY
    from zksidecar.prover import field as F
    assert (1 - ((1 << 30) - 2)) % F.P < 1 << 30              # the ambiguity above the limit
    assert F.P - MAX_PRICE >= 1 << 30 and MAX_PRICE == MAX_QTY  # none at or below it
    ops = make_ops([(Kind.LIMIT, Side.SELL, MAX_PRICE, MAX_QTY), (Kind.MARKET, Side.BUY, 0, 1),
                    (Kind.LIMIT, Side.SELL, MAX_PRICE + 1, 1), (Kind.LIMIT, Side.BUY, 5, MAX_QTY + 1)])
    book = Book(book_mode.capacity(16))
    prep = book_mode.prepare(book, ops)
    assert list(book_mode.records(prep)[0]["reason"][2:]) == [Reason.BAD_PRICE, Reason.BAD_QTY]
    verify_batch(book_mode.prove(prep, debug=True), min_security=0)

    def tamper(w, o, t):
        o[2]["status"], o[2]["reason"] = Status.RESTED, Reason.NONE
    assert_plain_lie(book_mode, ops, tamper, "operation 2: its fields give BAD_PRICE", "record: check 12: ",
                     book=book)

def test_classify_all_is_classify_on_every_record():
    """The vectorised classification the verifier runs equals the readable
    one, on well-formed and malformed records alike."""
    from zksidecar.engine.records import MAX_PRICE
    from zksidecar.prover.orderbook.air import KIND_CODE, classify, classify_all
    rng = np.random.default_rng(11)
    n = 3000
    ops = np.zeros(n, dtype=OP_DTYPE)
    ops["kind"] = rng.integers(0, 10, n)
    ops["side"] = rng.integers(0, 4, n)
    ops["price"] = rng.choice([0, 1, 5, MAX_PRICE, MAX_PRICE + 1, 2**32 - 1], n)
    ops["qty"] = rng.choice([0, 1, 7, MAX_PRICE, MAX_PRICE + 1], n)
    ops["flags"] = rng.choice([0, 1, 2, 3], n, p=[0.6, 0.2, 0.1, 0.1])
    ops["account"] = rng.integers(0, 2**32, n, dtype=np.uint64)
    slot = rng.choice([0, 1, 15, 16, 2**32 - 1], n).astype(np.uint64)
    gen = rng.choice([0, 3, (1 << 30) - 1, 1 << 30], n).astype(np.uint64)
    ops["handle"] = (gen << np.uint64(32)) | slot
    got = classify_all(ops, 16)
    for i, op in enumerate(ops):
        want = classify(op, 16)
        code = 0 if want["kind"] is None else KIND_CODE[want["kind"]]
        assert got["code"][i] == code and got["reason"][i] == (want["reason"] or 0), i
        for key in ("buy", "lim", "qty", "hslot", "hgen", "alo", "ahi"):
            assert got[key][i] == want[key], (i, key)
