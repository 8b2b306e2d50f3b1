"""Soundness review of the order-book AIR (docs/STATEMENT.md, "Soundness
review (2026-11-25)"): one regression test per finding, and the lying-engine
cases the acceptance suite (tests/test_orderbook_air.py, whose helpers this
module reuses) did not have, each named by the constraint family or verifier
check that catches it.

The lies are built as there: the honest run's witness and records, edited
the way a dishonest engine (running its own prover) would, in both proof
modes (zk mode's lying prover commits the edited records: tests/
book_modes.py); so are the scans."""
from __future__ import annotations

import copy
import dataclasses
import itertools
import re

import numpy as np
import pytest

import test_orderbook_air as base
from zksidecar.engine.book import Book, StreamError
from zksidecar.engine.records import Kind, Reason, Side, Status
from zksidecar.prover import constraints as C
from zksidecar.prover import field as F
from zksidecar.prover import logup
from zksidecar.prover.air import Frame
from zksidecar.prover.expr import TRACE, evaluate, variables
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.orderbook import BatchRejected, prove_batch, verify_batch
from zksidecar.prover.orderbook import air as air_mod
from zksidecar.prover.orderbook import batch as batch_mod
from zksidecar.prover.orderbook import witness as W
from zksidecar.prover.orderbook import zk_air
from zksidecar.prover.orderbook.air import HCELLS, STEPS, WRITES, exec_columns, written
from zksidecar.prover.orderbook.batch import prepare_batch
from zksidecar.prover.orderbook.zk_chain import zk_state_table
from zksidecar.prover.orderbook.zk_encoding import EncodingError, encode_operations, encode_trades
from zksidecar.prover.proof import quotient_log_blowup

P = F.P
OPTS = base.OPTS
SUM = base.SUM
batch, first, set_word = base.batch, base.first, base.set_word


# ------------------------------------------- finding 1: fields mod p --
#
# public_tables reduced every record field mod p; record fields are up to 32
# bits and p < 2^31, so x and x + p gave the same tuple: a trade published at
# price x + p (or qty, an outcome's filled or trade count, a handle's slot or
# generation + p) verified.  Fix: air.noncanonical, checked by check_public
# (BatchRejected) and by public_tables itself (ValueError).

def _trade_price(ops, trades):
    trades[0]["price"] += P


def _trade_qty(ops, trades):
    trades[1]["qty"] += P


def _maker_slot(ops, trades):
    trades[0]["maker_handle"] += P


def _maker_generation(ops, trades):
    trades[1]["maker_handle"] += P << 32


def _filled(ops, trades):
    ops[0]["filled"] += P


def _trade_count(ops, trades):
    ops[0]["trades"] += P


def _handle_of_an_order_that_did_not_rest(ops, trades):
    ops[0]["handle"] = P                 # slot p: "0" in the field
    trades["taker_handle"] = P


def _handle_of_a_rested_order(ops, trades):
    ops[0]["handle"] += P << 32          # generation + p
    trades["taker_handle"] = ops[0]["handle"]


@pytest.mark.parametrize("rows,alias", [
    ([(Kind.IOC, Side.BUY, 101, 7)], _trade_price),
    ([(Kind.IOC, Side.BUY, 101, 7)], _trade_qty),
    ([(Kind.IOC, Side.BUY, 101, 7)], _maker_slot),
    ([(Kind.IOC, Side.BUY, 101, 7)], _maker_generation),
    ([(Kind.IOC, Side.BUY, 101, 7)], _filled),
    ([(Kind.IOC, Side.BUY, 101, 7)], _trade_count),
    ([(Kind.IOC, Side.BUY, 101, 7)], _handle_of_an_order_that_did_not_rest),
    ([(Kind.LIMIT, Side.BUY, 101, 12)], _handle_of_a_rested_order),
])
def test_public_field_plus_p_is_refused(book_mode, monkeypatch, rows, alias):
    """Verifier check "public records canonical": without it (both sides
    patched, as a lying prover would run) the aliased records verify; with
    it they are refused before any proof is read.

    zk mode commits field elements, in which x + p is x: the lying prover's
    trade leaf of a trade at price (qty, maker slot, generation) x + p is
    the honest trade's leaf, so the proof states x; an outcome's filled or
    trade count x + p has no encoding at all.  Either way the aliased
    record has no leaf (zk_encoding refuses it), so a receipt showing it is
    refused: checks 14 and 17 of docs/ZK.md section 4.  A handle + p (a
    slot or generation with a top bit set) is encodable, and check 15's
    constraint (a live new order's handle has no top bit) refuses it."""
    book, ops = base.mode_book(book_mode), batch(*rows)

    def tamper(w, o, t):
        alias(o, t)

    if book_mode.zk:
        _aliased_in_zk_mode(book_mode, book, ops, alias, tamper)
        return
    with monkeypatch.context() as m:
        for mod in (air_mod, batch_mod):
            m.setattr(mod, "noncanonical", lambda *a: None)
        bp = base.prove_lie(book_mode, book, ops, tamper)
        verify_batch(bp, min_security=0)                  # the hole, shown
    with pytest.raises(BatchRejected, match="not canonical"):
        verify_batch(bp, min_security=0)
    with pytest.raises(ValueError, match="not canonical"):
        bp.public.air()                                   # the AIR refuses it too


def _aliased_in_zk_mode(mode, book, ops, alias, tamper) -> None:
    """test_public_field_plus_p_is_refused in zk mode (its docstring)."""
    if alias in (_handle_of_an_order_that_did_not_rest, _handle_of_a_rested_order):
        base.assert_lie(mode, ops, tamper, re.escape("record: check 15: live new order: no handle top bit"),
                        book=book, end_to_end=True)
        return
    prep = mode.prepare(book, ops)
    honest = prep.public.zk.leaves.copy()
    o, t = (x.copy() for x in mode.records(prep))
    alias(o, t)
    fields = air_mod.trade_table(t, prep.public.first_seq)[:, 1:7].astype(np.int64)
    with pytest.raises(EncodingError, match="outside"):       # the aliased operation, else trade
        encode_operations(o)
        encode_trades(fields)
    if alias in (_filled, _trade_count):
        return                                          # e8, e9 mod p: the honest record's elements
    mode.commit(prep, o, t)                             # the lying prover's lane: elements mod p
    assert np.array_equal(prep.public.zk.leaves, honest)
    verify_batch(mode.prove(prep), min_security=0)      # a proof of the honest trade


def test_noncanonical_accepts_every_honest_batch():
    """The bound is no tighter than the engine: limits at MAX_PRICE/MAX_QTY,
    handles up to generation 2^30 - 1 (tests/test_orderbook_air.py proves
    random flows and chains through the same check)."""
    from zksidecar.engine.records import MAX_PRICE, MAX_QTY
    ops = base.make_ops([(Kind.LIMIT, Side.SELL, MAX_PRICE, MAX_QTY),
                         (Kind.MARKET, Side.BUY, 0, MAX_QTY - 1)])
    bp, _, trades = prove_batch(Book(16), ops, OPTS)
    assert trades["price"][0] == MAX_PRICE and trades["qty"][0] == MAX_QTY - 1
    assert air_mod.noncanonical(bp.public.ops, trades, 16, bp.public.first_seq) is None
    verify_batch(bp, min_security=0)


# ------------------------------ finding 2: timestamps compared signed --

def test_timestamps_are_compared_unsigned(book_mode):
    """check_public compared ts_ns as int64: 2^64 - 1 then 0 passed as
    "non-decreasing" (-1 <= 0), though the engine refuses that stream, and
    2^63 - 1 then 2^63 was refused though the engine runs it.  zk mode
    compares the committed timestamps by check 4 of docs/ZK.md section 4:
    unsigned pieces, the highest differing one's difference range-checked
    (an honest prover's witness of these records fails its definition;
    tests/test_zk_record_checks.py writes it as a liar would, and the range
    lookup refuses it)."""
    ops = base.make_ops([(Kind.LIMIT, Side.BUY, 96, 2), (Kind.LIMIT, Side.BUY, 97, 1)])
    ops["ts_ns"] = [(1 << 63) - 1, 1 << 63]
    book = Book(book_mode.capacity(16))
    verify_batch(base.prove_lie(book_mode, book, ops, base.honest, debug=True), min_security=0)  # across 2^63

    backwards = ops.copy()
    backwards["ts_ns"] = [(1 << 64) - 1, 0]
    with pytest.raises(StreamError):
        Book(16).process(backwards.copy())                # the engine's rule

    def tamper(w, o, t):
        o["ts_ns"] = backwards["ts_ns"]
    base.assert_plain_lie(book_mode, ops, tamper, "timestamps go backwards", re.escape("record: check 4: "),
                          book=book)


# ------------------------------------- boundaries and the wrap-around --

def test_last_row_cannot_write(book_mode):
    """The last row is not reached by current-row transition constraints
    ("PAD accesses nothing" included), but its fractions are in the LogUp
    sum: a write there (a resting bid's quantity raised after the batch) is
    memory-consistent and only the boundary "the last row is PAD (mA = 0)"
    refuses it."""
    def tamper(w, ops, trades):
        c, r = w.columns, w.trace_length - 1
        c["mA"][r], c["aA"][r] = 1, 3
        word = w.pre[3].copy()
        word[1] += 10
        set_word(c, "nA", r, word)
        w.rethread()
        assert w.post[3, 1] == w.pre[3, 1] + 10
    base.assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 100, 3)), tamper,
                    re.escape("rule 1: the last row is PAD (mA = 0)"))


def _match_after_pad(w, ops, trades):
    """An IOC buy for 3 at 100 took 3 of the ask's 5 lots and ended; after a
    PAD row it MATCHes again (the ask's last 2 lots, a trade added to the
    public list), a last row a second time."""
    c = w.columns
    r = first(c, "sZ") + 1
    c["sZ"][r], c["sM"][r], c["last"][r] = 0, 1, 1
    c["mH"][r], c["mA"][r], c["mB"][r], c["aA"][r], c["aB"][r] = 1, 1, 1, 1, 2
    c["sel"][r], c["lv"][r], c["fl"][r], c["rem"][r], c["tn"][r] = 1, 1, 2, 2, 1
    c["rem"][r + 1:], c["tn"][r + 1:] = 0, 2
    w.rethread()                                          # old words as the memory has them
    hdr = [int(c[f"oH{j}"][r]) for j in range(6)]
    set_word(c, "nA", r, [0, 0, 0, 0, 0, 0, hdr[4], 1])   # freed: gen 0 -> 1
    hdr[2], hdr[4], hdr[5] = 2, 1, hdr[5] - 1             # best ask slot 2; free head slot 1
    set_word(c, "nH", r, hdr)
    set_word(c, "nB", r, [int(c[f"oB{j}"][r]) for j in range(5)] + [0, int(c["oB6"][r]),
                                                                    int(c["oB7"][r])])
    c["cmp1"][r], c["cmp2"][r], c["zv1"][r] = 0, 0, 2
    c["ginv"][r] = pow(P - ((1 << 30) - 1), P - 2, P)   # gen 0 does not wrap
    w.rethread()
    extra = trades[:1].copy()
    extra["maker_handle"], extra["qty"] = 1, 2
    return ops, np.concatenate([trades, extra])


def test_padding_is_absorbing(book_mode, monkeypatch):
    """A step after PAD is refused by "PAD is followed by PAD" (hardening).
    Without that constraint the lie is still refused: PAD rows carry the
    last operation's running values (a filled taker's remaining 0), so a
    step after them has nothing to fill, and a row after PAD cannot start an
    operation ("a first row follows a last row"; PAD rows are in none).  The
    general argument (a chain of steps after PAD must end on a last row, the
    last operation's second outcome) needs "PAD follows a last row or PAD"
    too: test_steps_after_pad_cannot_run_into_the_final_row."""
    ops = batch((Kind.IOC, Side.BUY, 100, 3))
    base.assert_lie(book_mode, ops, _match_after_pad, re.escape("rule 1: PAD is followed by PAD"))
    _without(monkeypatch, "rule 1: PAD is followed by PAD")
    base.assert_lie(book_mode, ops, _match_after_pad, re.escape("rule 3: remaining' = remaining - fill"))


# ------------------------------------------------- memory argument --

def test_read_of_its_own_write_fabricates_nothing(book_mode):
    """Timestamps: an IOC buy at 100 against the ask at 100 claims the side
    was empty: its stop PEEK reads a fabricated header (best ask 0) whose
    tuple is its own write-back (old_ts = its own timestamp), so the real
    header flows to the post-state untouched and the memory multiset closes.
    Only the range lookup of ts - old_ts - 1 (= -1) refuses it."""
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sM")
        # the one row: MATCH -> the stop PEEK
        c["sM"][r], c["pk_stop"][r] = 0, 1
        c["mA"][r] = c["aA"][r] = c["lv"][r] = c["fl"][r] = 0
        set_word(c, "oA", r, [0] * 8)
        set_word(c, "nA", r, [0] * 8)
        fake = [int(c[f"oH{j}"][r]) for j in range(6)]
        fake[2] = fake[3] = 0                             # no asks
        for j in range(6):
            c[f"oH{j}"][r] = c[f"nH{j}"][r] = fake[j]
        c["tH"][r] = r + 1                                # reads its own write
        c["rem"][r + 1:], c["tn"][r + 1:] = 3, 0
        c["zv1"][r] = c["cmp1"][r] = 0
        c["cmp2"][r] = 3 - 1
        w.pts[:] = 0
        w.post = w.pre.copy()                             # nothing else was touched
        W.derive_columns(c, w.trace_length)
        w.finish()
        ops[0]["status"], ops[0]["filled"], ops[0]["trades"] = Status.EXPIRED, 0, 0
        return ops, trades[:0]
    base.assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 100, 3)), tamper, SUM)


def test_negative_multiplicity_undoes_a_step(book_mode):
    """LogUp multiplicities: an access mask of p - 1 turns the MATCH's read
    into a write and its write into a read (the maker's fill undone in the
    post-state); access masks are boolean."""
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sM")
        c["mA"][r] = P - 1
        w.post[1] = w.pre[1]
    base.assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 100, 3)), tamper, "boolean mA")


# ------------------------------------------------- rules 3 and 5 --

def test_reduce_to_zero_leaves_a_ghost(book_mode):
    """A REDUCE by the whole remaining quantity kept as a REDUCE (quantity 0,
    still linked at the head of the asks) instead of a removal: the range
    check of REDUCE's cmp2 = qty_A - qty - 1 (= -1) refuses it."""
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sC")
        c["sC"][r], c["sD"][r] = 0, 1
        c["mH"][r] = c["mB"][r] = c["mC"][r] = 0
        for x in "HBC":
            set_word(c, f"o{x}", r, [0] * 8)
            set_word(c, f"n{x}", r, [0] * 8)
        c["aB"][r] = c["aC"][r] = c["zv1"][r] = c["zv2"][r] = c["sel"][r] = 0
        word = w.pre[1].copy()
        word[1] = 0
        set_word(c, "nA", r, word)
        c["cmp1"][r], c["cmp2"][r] = 0, -1
        w.rethread()
        ops[0]["status"] = Status.REDUCED
    base.assert_lie(book_mode, batch((Kind.REDUCE, 0, 0, 5, 1)), tamper, SUM)


def test_trades_of_one_operation_reordered(book_mode):
    """Trade table: a trade's number within its operation is its position in
    the public list, so swapping an operation's two trades (best maker
    second) is refused."""
    def tamper(w, ops, trades):
        return ops, trades[[1, 0]]
    base.assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 101, 7)), tamper, SUM)


# ----------------------------------------------- no column left free --

#: (column, step) cells a single-column edit may change with every
#: constraint and the LogUp sum still holding: values no rule reads there.
#: Access columns of an inactive access (mask 0) and the PAD rows are free by
#: design and not listed.  Anything outside this list that a single edit can
#: change is a column some step uses without a constraint; and every entry is
#: found free by the scan (test_no_column_is_left_free asserts equality), so
#: the list is no longer than the flow of every_step_ops needs.  Review of
#: 2026-12-06: `fl` and `cr` are no longer listed (constrained to 0 off MATCH
#: and off the FOK walk), `sel` is free on sN and the stale PEEK only (on
#: REDUCE and the book-full PEEK an edit of `sel` alone moves the helpers cx
#: or ob..sw: free only jointly with them, as the 2026-11-25 review noted),
#: and `ginv` is pinned on CANCEL (no generation wraps in the flow).
MAY_BE_FREE = {
    "ginv": (set(STEPS) - {"sZ", "sC"},
             "read only by a freeing step that does not wrap: CANCEL, a leaving MATCH "
             "(a partial MATCH is an sM row too)"),
    "zi1": ({"sN", "sR", "sC", "sD", "pk_stop", "pk_full"},
            "where zv1 = 0 (no prev, an empty side) or unread (sN, sD, pk_full) the "
            "'inverse' is anything"),
    "zi2": (set(STEPS) - {"sZ", "sC"}, "the same for zv2 (REST's next, the FOK walk's next; "
                                       "unread elsewhere)"),
    "sf": (set(STEPS) - {"sZ", "pk_fok"}, "off FOK's walk fg = cr * sf with cr = 0"),
    "sel": ({"sN", "pk_stale"}, "no side-dependent rule and no helper moves"),
}


class Checker:
    """Every constraint of a batch's `ops` domain on a witness, without
    proving: the transition constraints (LogUp's own excepted) row by row,
    the boundaries, and each row's LogUp term; and the total of the one
    LogUp sum, both domains' fractions (the `book` domain's from the
    witness's state tables and `pts`), against its target, at fixed
    challenges.  `prep`: the prepared batch the witnesses are edits of, in
    either mode (zk mode: the lane as prepared, the post-state's timestamp
    cells as its last timestamp gives them).

    The honest witness holds; an edit is checked against it: only the
    constraints and fractions that read a column the edit changed are
    evaluated again (zk mode's `ops` domain has some 830 constraints)."""

    def __init__(self, prep, seed: int):
        st = prep.public.statement()
        self.prep, self.book, self.air = prep, st.book, st.ops
        air = self.air
        self.T = air.trace_length
        self.challenges = F.encode(np.random.default_rng(seed).integers(0, P, (st.num_challenges, 4)))
        self.consts = air.constants(self.challenges)
        self.cons = [c for c in air.transition_constraints if not c.name.startswith("lu")]
        f = Frame(air)
        self.bounds = [f.cur(b.column) - b.value for b in air.boundary_constraints
                       if not b.name.startswith("lu")]
        self.bound_rows = [b.row % self.T for b in air.boundary_constraints
                           if not b.name.startswith("lu")]
        self.target = st.target(self.challenges)
        reads = lambda exprs: {k[1] for k in variables(exprs) if k[0] == TRACE}     # noqa: E731
        self.con_reads = [reads([c.expr]) for c in self.cons]
        lu = air.lu
        self.fractions = [logup.LogUp(f"{lu.name}.{k}", [fr], alpha=lu.alpha, beta=lu.beta)
                          for k, fr in enumerate(lu.fractions)]
        self.frac_reads = [reads([e for pair in lu._parts(f, [fr]) for e in pair]) for fr in lu.fractions]
        tr = self.traces(prep.witness)
        self.base_cols, self.base_book = self._ops_matrix(tr), self._book_mats(tr)
        main = self._main(self.base_cols)
        self.base_fracs = [g.group_sums(air, main, self.challenges)[0] for g in self.fractions]
        self.base_term = self._add(self.base_fracs)
        assert (self.base_term == self._add(lu.group_sums(air, main, self.challenges))).all()
        self.base_book_total = self._book_total(self.base_book)
        bad, _ = self._rows(self.base_cols, range(len(self.cons)), self.base_term)
        assert not bad.any(), "the honest witness breaks a constraint"

    @staticmethod
    def _add(columns):
        out = columns[0]
        for c in columns[1:]:
            out = F.add(out, c)
        return out

    def traces(self, wit) -> dict[str, np.ndarray]:
        """The statement's matrices of witness `wit` (an edit of prep's)."""
        z = self.prep.zk
        if z is None:
            return wit.traces()
        return dataclasses.replace(z, post_table=zk_state_table(wit.post, z.last_ts)).traces(wit, self.prep.pre)

    def _ops_matrix(self, tr) -> np.ndarray:
        return np.concatenate([tr["ops." + s.name] for s in self.air.main_segments], axis=1)

    def _book_mats(self, tr) -> dict[str, np.ndarray]:
        return {s.name: tr["book." + s.name] for s in self.book.main_segments}

    def _main(self, cols: np.ndarray) -> dict[str, np.ndarray]:
        names = [c for s in self.air.main_segments for c in s.columns]
        return {c: np.ascontiguousarray(cols[:, j]) for j, c in enumerate(names)}

    def _book_total(self, mats) -> Ext:
        book = self.book
        main = {c: np.ascontiguousarray(mats[s.name][:, j])
                for s in book.main_segments for j, c in enumerate(s.columns)}
        terms = book.lu.group_sums(book, main, self.challenges[:book.num_challenges])
        return sum((Ext.from_mont((t.astype(np.uint64).sum(axis=0) % P).astype(np.uint32)) for t in terms),
                   Ext(0))

    def rows(self, wit):
        """(bad, term): rows a failing transition constraint touches, and
        each row's LogUp term (T, 4)."""
        return self.check(self.traces(wit))

    def check(self, tr: dict[str, np.ndarray]):
        """rows() of the statement's matrices `tr` (traces(), edited)."""
        cols = self._ops_matrix(tr)
        changed = set(np.flatnonzero((cols != self.base_cols).any(axis=0)).tolist())
        cons = [i for i, r in enumerate(self.con_reads) if r & changed]
        fracs = [k for k, r in enumerate(self.frac_reads) if r & changed]
        term = self.base_term
        if fracs:
            main = self._main(cols)
            for k in fracs:
                new = self.fractions[k].group_sums(self.air, main, self.challenges)[0]
                term = F.add(F.sub(term, self.base_fracs[k]), new)
        bad, term = self._rows(cols, cons, term)
        book = self._book_mats(tr)
        same = all(np.array_equal(book[k], self.base_book[k]) for k in book)
        self._total = Ext.from_mont((term.astype(np.uint64).sum(axis=0) % P).astype(np.uint32)) \
            + (self.base_book_total if same else self._book_total(book))
        return bad, term.astype(np.int64)

    def _rows(self, cols, cons, term):
        T, air = self.T, self.air

        def source(key):
            if key[0] != TRACE:
                return self.consts(key)
            col, nxt = key[1], key[2]
            assert col < air.num_main_columns, "non-LogUp constraints read main columns only"
            v = np.ascontiguousarray(cols[:, col])
            return np.roll(v, -1) if nxt else v

        alg = C.ColumnAlgebra(T, source)
        bad = np.zeros(T, dtype=bool)
        chosen = [self.cons[i] for i in cons]
        for v, c in zip(evaluate([c.expr for c in chosen], alg), chosen):
            row_bad = C.as_column(v, T, isinstance(v, np.ndarray) and v.ndim == 2).reshape(T, -1).any(axis=1)
            if not c.every_row:
                row_bad[T - 1] = False          # the wrap: not a transition's row
            bad |= row_bad
            bad[1:] |= row_bad[:T - 1]          # and the next row, which it may read
        for v, r in zip(evaluate(self.bounds, alg), self.bound_rows):
            bad[r] |= bool(C.as_column(v, T, False)[r])
        return bad, term

    def holds(self, wit) -> bool:
        bad, _ = self.rows(wit)
        return not bad.any() and self._total == self.target


def _step_of(w):
    return np.array([next(s for s in STEPS if w.columns[s][r]) for r in range(w.trace_length)])


def _free_cells(prep, seed, only=None):
    """{column: steps} where editing that exec column alone on a row (a flip
    for 0/1 columns, + 12345 otherwise) of `prep`'s witness leaves every
    transition constraint of the rows around it and the row's LogUp term
    unchanged.  Even and odd rows are edited in two passes, so no
    constraint sees two edited rows."""
    w = prep.witness
    T, check = w.trace_length, Checker(prep, seed)
    bad0, term0 = check.rows(w)
    assert not bad0.any()
    step_of = _step_of(w)
    free: dict[str, set] = {}
    # the committed columns: a linear value (air.linear_values) is not one
    for name in only or exec_columns(T):
        col = w.columns[name]
        binary = set(np.unique(col).tolist()) <= {0, 1}
        for parity in (0, 1):
            rows = np.arange(parity, T, 2)
            edited = copy.copy(w)
            edited.columns = dict(w.columns)
            edited.columns[name] = col.copy()
            edited.columns[name][rows] = 1 - col[rows] if binary else (col[rows] + 12345) % P
            bad, term = check.rows(edited)
            moved = (term != term0).any(axis=1)
            for r in rows:
                if bad[r] or moved[r] or step_of[r] == "sZ":
                    continue
                x = name[1] if name[:1] in "onatm" and name[1:2] in tuple("HABC") else None
                if x and not w.columns["m" + x][r]:
                    continue                              # an inactive access
                free.setdefault(name, set()).add(str(step_of[r]))
    return free


def _carry(w, edited, r, x, j):
    """Later accesses of the address access x of row r wrote, that passed
    its cell j through unchanged, pass the edited value through instead
    (as a lying engine's later steps would): up to the first that changes
    the cell."""
    c = w.columns
    addr = 0 if x == "H" else int(c[f"a{x}"][r])
    value = edited.columns[f"n{x}{j}"][r]
    for rr in range(r + 1, w.trace_length):
        for y in "HABC":
            if not c[f"m{y}"][rr] or (0 if y == "H" else int(c[f"a{y}"][rr])) != addr:
                continue
            if j >= (HCELLS if y == "H" else 8) or c[f"o{y}{j}"][rr] != c[written(y, j)][rr]:
                return
            if written(y, j) != f"o{y}{j}":     # else the rethread carries it: the write repeats the read
                edited.columns[written(y, j)][rr] = value


def _unconstrained_writes(prep, seed):
    """(row, step, cell) for which a dishonest write verifies: on the first
    row of each step type, each written cell (and each access address) is
    moved by one, carried through the later steps that pass the cell on,
    the memory rethreaded (every later read and the post table follow it,
    as a lying engine would make them), and every constraint and the LogUp
    total checked."""
    w = prep.witness
    check, step_of = Checker(prep, seed), _step_of(w)
    assert check.holds(w)
    out = []
    for step in sorted(set(step_of) - {"sN", "sZ"}):
        r = int(np.flatnonzero(step_of == step)[0])
        for x in "HABC":
            if not w.columns["m" + x][r]:
                continue
            for name in [f"n{x}{j}" for j in WRITES[x]] \
                    + ([] if x == "H" else [f"a{x}"]):
                edited = copy.copy(w)
                edited.columns = {k: v.copy() for k, v in w.columns.items()}
                edited.columns[name][r] += 1
                if name[1:2] == x and name[0] == "n":
                    _carry(w, edited, r, x, int(name[2:]))
                edited.rethread()
                if check.holds(edited):
                    out.append((r, step, name))
    return out


def every_step_book(mode) -> Book:
    """The book every_step_ops starts from: an empty 16-slot book, or in zk
    mode (128 slots at least) one whose other slots hold bids at price 1,
    which no operation of the batch reaches: 15 free slots either way."""
    book = Book(mode.capacity(16))
    for i in range(book.capacity - 16):
        book.submit(Kind.LIMIT, Side.BUY, 1, 1, account=900 + i)
    return book


def every_step_ops(book: Book | None = None) -> np.ndarray:
    """One batch on a book with 15 free slots (every_step_book; an empty
    16-slot book by default) with every step type: the book fills
    (BOOK_FULL for a LIMIT and a POST_ONLY), an IOC sweeps, FOKs both
    ways, POST_ONLY crossing and resting, MARKET, a REDUCE, a CANCEL and the
    same CANCEL again (stale), a field rejection."""
    book = Book(16) if book is None else book
    rows = [(Kind.LIMIT, Side.BUY, 50 + i % 5, 1 + i % 3) for i in range(15)]
    rows += [(Kind.LIMIT, Side.SELL, 60, 2), (Kind.POST_ONLY, Side.SELL, 70, 2),
             (Kind.IOC, Side.SELL, 53, 9), (Kind.FOK, Side.SELL, 50, 40), (Kind.FOK, Side.SELL, 51, 2),
             (Kind.POST_ONLY, Side.SELL, 50, 1), (Kind.POST_ONLY, Side.BUY, 60, 1),
             (Kind.MARKET, Side.BUY, 0, 1), (Kind.LIMIT, Side.BUY, 45, 5)]
    shadow = Book.restore(book.snapshot())
    shadow.process(base.make_ops(rows, first_seq=book.next_seq))
    bids = shadow.orders(Side.BUY)
    last = int(bids["handle"][bids["price"] == 45][0])   # the bid at 45
    best = int(bids["handle"][0])                          # the best bid
    return base.make_ops(rows + [(Kind.REDUCE, 0, 0, 2, last), (Kind.CANCEL, 0, 0, 0, best),
                                 (Kind.CANCEL, 0, 0, 0, best), (Kind.LIMIT, 3, 1, 1)], first_seq=book.next_seq)


def every_step_batch(mode):
    """every_step_ops on every_step_book, prepared in `mode`."""
    book = every_step_book(mode)
    return mode.prepare(book, every_step_ops(book))


def test_no_column_is_left_free(book_mode):
    """Every exec column is pinned on the steps that use it: a single edit
    of any other (column, step) cell breaks a constraint or the LogUp sum.
    Guards against a constraint or a LogUp fraction dropped by a refactor.
    In zk mode too: the lane's tuples stand in for the public tables (and
    its trade tuple has no maker account), fli joins check 19; the same
    cells are left free."""
    prep = every_step_batch(book_mode)
    free = _free_cells(prep, seed=5)
    unexpected = {name: sorted(steps - MAY_BE_FREE.get(name, (set(), ""))[0])
                  for name, steps in free.items()}
    unexpected = {k: v for k, v in unexpected.items() if v}
    assert not unexpected, f"columns left free on steps that use them: {unexpected}"
    expected = {name: steps for name, (steps, _) in MAY_BE_FREE.items()}
    if book_mode.zk:
        # every_step_book's bids at price 1 are a next where the 16-slot
        # book's side ends: the FOK walk ends on a maker that does not cross
        # and the bid at 45 rests ahead of one (zv2 != 0: its inverse read)
        expected["zi2"] = expected["zi2"] - {"pk_fok", "sR"}
    assert free == expected, "MAY_BE_FREE lists a cell the scan finds pinned: shorten it"
    covered = {str(s) for s in np.unique([next(s for s in STEPS if prep.witness.columns[s][r])
                                          for r in range(prep.witness.trace_length)])}
    assert covered == set(STEPS)                          # the flow has every step type


def test_the_free_cell_scan_finds_a_dropped_constraint(book_mode, monkeypatch):
    """The scan above can fail: with the definition of the helper dB (REST's
    signed price difference to its prev) dropped, dB is free wherever REST
    does not read it, and the scan names it."""
    _drop(monkeypatch, lambda name: name.startswith("helper dB "))
    prep = book_mode.prepare(base.mode_book(book_mode), batch((Kind.REDUCE, 0, 0, 2, 2)))
    free = _free_cells(prep, seed=6, only=["dB", "cx"])
    assert "cx" not in free                               # still defined
    assert free.get("dB", set()) >= {"sD"}


def test_rest_into_a_full_book_at_the_header_row(book_mode):
    """One access per address and timestamp: with the book full (free head
    0) a LIMIT claims to rest "in slot 0", i.e. its A access is the header
    row, which its H access also reads and writes.  Every step rule holds
    (slot 0 reads as an empty word on a book with no bids); the memory
    multiset cannot: both reads want the one latest write of address 0."""
    cap = book_mode.capacity(16)
    book = Book(cap)
    for i in range(cap - 1):
        book.submit(Kind.LIMIT, Side.SELL, 100 + i, 1, account=20 + i)

    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "pk_full")
        c["pk_full"][r], c["sR"][r] = 0, 1
        c["mA"][r], c["aA"][r], c["sel"][r] = 1, 0, 1
        hdr = [int(c[f"oH{j}"][r]) for j in range(6)] + [0, 0]
        assert hdr[1] == 0                                # no bids: "qty" 0, an empty slot
        set_word(c, "oA", r, hdr)
        set_word(c, "nA", r, [50, 1, Side.BUY, int(c["alo"][r]), int(c["ahi"][r]), 0, 0, 0])
        c["nH0"][r] = c["nH1"][r] = 0                     # best, worst bid: slot 0
        c["nH4"][r], c["nH5"][r] = 0, hdr[5] + 1
        w.rethread()
        ops[0]["status"], ops[0]["reason"] = Status.RESTED, 0
    base.assert_lie(book_mode, base.make_ops([(Kind.LIMIT, Side.BUY, 50, 1)], first_seq=cap), tamper, SUM,
                    book=book)


def test_no_write_is_left_free(book_mode):
    """Every written cell is pinned by its step: moving one (or an access's
    address) by one, with the memory rethreaded so that every later read and
    the post table follow, breaks a constraint or the LogUp sum, on every
    step type that writes (in zk mode too, the post-state's table and its
    timestamp cells following the rethread)."""
    assert _unconstrained_writes(every_step_batch(book_mode), seed=7) == []


def test_the_write_scan_finds_a_dropped_constraint(book_mode, monkeypatch):
    """The scan above can fail: with "rested word cell 3" dropped, REST can
    write any account_lo into the order it rests (the first REST's order is
    still on the book at the end, so only the post table shows it)."""
    _drop(monkeypatch, lambda name: name == "rule 4: rested word cell 3")
    found = _unconstrained_writes(every_step_batch(book_mode), seed=8)
    assert {(step, name) for _, step, name in found} == {("sR", "nA3")}


# ======================================================================
# Review of 2026-12-06: the folded trace (docs/STATEMENT.md, "Soundness
# review (2026-12-06): the folded trace").  BEGIN and END became the flags
# `first` and `last` of an operation's own rows; status, reason, filled,
# trades and handle became expressions of the last row; running values are
# "before the row's step"; B and C writes take their unchanged cells from
# the old word.  Each lie below is built as a trace (the honest witness
# edited, the memory rethreaded, the public records edited where the lie
# needs it): debug mode names the family, a proof made without debug does
# not verify.  Where one constraint alone stands between the lie and a
# verifying proof, the test also shows the lie verifying with that
# constraint dropped (`_without`): the constraint is necessary, not only
# named.

assert_lie, prove_lie, shift_up = base.assert_lie, base.prove_lie, base._shift_up


def _any_air(trace_length=None):
    """An OrderBookAir (its constraints do not depend on the batch)."""
    ops = base.make_ops([(Kind.LIMIT, Side.BUY, 5, 1)])
    return prepare_batch(Book(16), ops, OPTS, trace_length).public.air()


def _drop(monkeypatch, dropped) -> None:
    """The AIR without the execution's transition constraints whose name
    `dropped(name)` holds (prover and verifier alike, either mode: what a
    lie would need)."""
    orig = air_mod.OrderBookAir._transitions
    monkeypatch.setattr(air_mod.OrderBookAir, "_transitions",
                        lambda self, f: [c for c in orig(self, f) if not dropped(c.name)])
    monkeypatch.setattr(air_mod.OrderBookAir, "_transitions_by_length", {})
    monkeypatch.setattr(zk_air.ZkOpsAir, "_transitions_by_key", {})


def _without(monkeypatch, name):
    """The AIR with the transition constraint `name` dropped (prover and
    verifier alike: what the lie would need)."""
    air = _any_air()
    assert any(c.name == name for c in air.transition_constraints), name
    _drop(monkeypatch, lambda n: n == name)


def _without_boundary(monkeypatch, name):
    """The AIR with the boundary constraint `name` dropped (prover and
    verifier alike)."""
    orig = air_mod.OrderBookAir.boundaries
    assert any(b.name == name for b in _any_air().boundary_constraints), name
    monkeypatch.setattr(air_mod.OrderBookAir, "boundaries",
                        lambda self, f: [b for b in orig(self, f) if b.name != name])


def assert_necessary(mode, monkeypatch, ops, tamper, name, book=None):
    """The lie is refused, naming `name`; with `name` dropped it verifies
    (in zk mode too: nothing of the lane stands in for the constraint)."""
    assert_lie(mode, ops, tamper, re.escape(name), book=book)
    _without(monkeypatch, name)
    verify_batch(prove_lie(mode, base.mode_book(mode) if book is None else book, ops, tamper), min_security=0)


def _rows_of(c, i):
    """Operation i's rows (PAD rows carry the last index: not included)."""
    return np.flatnonzero((c["oi"] == i) & (c["sZ"] == 0))


def _pad_after(c, r):
    """PAD rows from r on carry running values as they stand after row r - 1."""
    c["rem"][r:] = c["rem"][r - 1] - c["fl"][r - 1]
    c["tn"][r:] = c["tn"][r - 1] + c["sM"][r - 1]
    c["acc"][r:] = c["acc"][r - 1]


def _rethread_reads(w):
    """Witness.rethread, then every PEEK writes back what it now reads (as a
    lying engine's PEEKs would), then rethread again."""
    c = w.columns
    w.rethread()
    peek = np.zeros(w.trace_length, dtype=bool)
    for s in air_mod.PEEKS:
        peek |= c[s] == 1
    for x, cells in (("H", range(HCELLS)), ("A", range(8))):
        for j in cells:
            c[f"n{x}{j}"][peek] = c[f"o{x}{j}"][peek]
    w.rethread()


def _delete_rows(w, rows):
    for r in sorted(rows, reverse=True):
        shift_up(w, r)


# ------------------------------------------- the step machine, exhaustively --
#
# The succession constraints use only the step selectors, the kinds, first,
# last and the FOK walk's two bits fg ("sufficient") and fc ("go on"), plus
# one use of rem - fl ("filled").  Evaluating exactly those constraints on
# every pair of abstract rows gives the automaton they allow; its language
# (an operation's steps from its first row to its last) must be the table
# of docs/STATEMENT.md, "Allowed successions".

_SYMBOL = {"sM": "M", "pk_stop": "S", "sR": "R", "pk_full": "F", "pk_cross": "X", "sC": "C",
           "sD": "D", "pk_stale": "T", "sN": "N", "sZ": "Z"}
#: per kind, an operation's steps: M a MATCH (m: one that fills the taker),
#: S the stop PEEK, R REST, F book full, X would cross, C CANCEL, D REDUCE,
#: T stale, N a field rejection; the FOK walk's PEEKs: c "go on", g
#: "sufficient", u "unfillable".  A filled MATCH that is not last (m inside
#: a word) is a succession the selectors allow; the data refuse it: a
#: further MATCH fills 0 lots (a trade of 0 lots is not canonical), the
#: stop PEEK needs remaining >= 1.
_SPEC = {"k_lim": r"[Mm]*m|[Mm]*S[RF]", "k_ioc": r"[Mm]*m|[Mm]*S", "k_fok": r"c*u|c*g[Mm]*m",
         "k_post": r"S[RF]|X", "k_can": r"[CT]", "k_red": r"[CDT]", "k_z": r"N"}


class _Alg:
    """Plain integer arithmetic on numpy arrays (the values stay tiny)."""

    def __init__(self, cur, nxt, names):
        self.cur, self.nxt, self.names = cur, nxt, names

    def variable(self, key):
        _, col, off = key
        return (self.nxt if off else self.cur)[self.names[col]]

    def constant(self, x):
        return x

    def add(self, a, b):
        return a + b

    def sub(self, a, b):
        return a - b

    def mul(self, a, b):
        return a * b

    def neg(self, a):
        return -a


def step_machine(air, drop=()):
    """(nodes, successors): the abstract rows (step, kind, first, last, fg,
    fc, filled) every row-local succession constraint allows, and for each
    the rows the pair constraints allow after it."""
    names = {air.column_index(c): c for s in air.main_segments for c in s.columns}
    shape = set(STEPS) | set(air_mod.KINDS) | {"first", "last", "fg", "fc"}
    local, pair = [], []
    for c in air.transition_constraints:
        if c.name.startswith("lu") or c.name in drop:
            continue
        used = {(names[v[1]], v[2]) for v in variables([c.expr]) if v[0] == TRACE}
        cols = {x for x, _ in used}
        nxt = any(o for _, o in used)
        if cols <= shape or (cols <= shape | {"rem", "fl"} and not nxt):
            (pair if nxt else local).append(c.expr)
    assert len(local) + len(pair) >= 55 - len(drop)          # the whole succession family
    nodes, values = [], []
    for step, kind, fi, la, (fg, fc), filled in itertools.product(
            STEPS, air_mod.KINDS, (0, 1), (0, 1), ((0, 0), (1, 0), (0, 1)), (0, 1)):
        v = dict.fromkeys(STEPS + air_mod.KINDS, 0)
        v[step] = v[kind] = 1
        fl = int(step == "sM")
        v.update(first=fi, last=la, fg=fg, fc=fc, fl=fl, rem=fl + 1 - filled)
        nodes.append((step, kind, fi, la, fg, fc, filled))
        values.append(v)
    cols = list(values[0])
    table = {c: np.array([v[c] for v in values], dtype=np.int64) for c in cols}
    ok = np.ones(len(nodes), dtype=bool)
    for v in evaluate(local, _Alg(table, table, names)):
        ok &= np.asarray(v) % P == 0
    good = np.flatnonzero(ok)
    i, j = (x.ravel() for x in np.meshgrid(good, good, indexing="ij"))
    cur = {c: table[c][i] for c in cols}
    nxt = {c: table[c][j] for c in cols}
    ok = np.ones(len(i), dtype=bool)
    for v in evaluate(pair, _Alg(cur, nxt, names)):
        ok &= np.asarray(v) % P == 0
    succ = {int(a): [] for a in good}
    for a, b in zip(i[ok], j[ok]):
        succ[int(a)].append(int(b))
    return nodes, succ


def _symbol(node):
    step, kind, fi, la, fg, fc, filled = node
    if step == "pk_fok":
        return "g" if fg else "c" if fc else "u"
    return "m" if step == "sM" and filled else _SYMBOL[step]


def operations(nodes, succ, longest=7):
    """{kind: words}: the step words of every operation up to `longest` rows
    (first row to last row), and the facts about the rows around them."""
    words = {k: set() for k in air_mod.KINDS}
    frontier = {(_symbol(nodes[a]), a) for a in succ if nodes[a][2]}
    for _ in range(longest):
        nxt = set()
        for word, a in frontier:
            step, kind, fi, la, *_ = nodes[a]
            if la:
                words[kind].add(word)
                continue
            for b in succ[a]:
                assert not nodes[b][2], f"{word}: a first row inside an operation"
                assert nodes[b][1] == kind, f"{word}: the kind changes inside an operation"
                nxt.add((word + _symbol(nodes[b]), b))
        frontier = nxt
    return words


def test_the_step_machine_is_the_specified_one():
    """Every operation the succession constraints allow (up to 7 rows) is
    one of the table's, and every one of the table's (up to 5 rows) is
    allowed; a last row is followed by a first row or PAD, a first row
    follows a last row, PAD is neither and only PAD follows it, and the
    trace's row 0 (first, by the boundary) cannot be PAD."""
    air = _any_air()
    nodes, succ = step_machine(air)
    words = operations(nodes, succ)
    for kind, spec in _SPEC.items():
        extra = sorted(w for w in words[kind] if not re.fullmatch(spec, w))
        assert not extra, (kind, extra[:5])
        letters = sorted(set(re.sub(r"[^A-Za-z]", "", spec)))
        wanted = {w for n in range(1, 6) for w in map("".join, itertools.product(letters, repeat=n))
                  if re.fullmatch(spec, w)}
        assert wanted <= words[kind], (kind, sorted(wanted - words[kind])[:5])
    for a, after in succ.items():
        step, _, fi, la, *_ = nodes[a]
        for b in after:
            if nodes[b][2]:
                assert la, "a first row after a row that is not last"
            if la:
                assert nodes[b][2] or nodes[b][0] == "sZ", "after a last row: a first row or PAD"
        if step == "sZ":
            assert not fi and not la and all(nodes[b][0] == "sZ" for b in after)


def test_the_step_machine_check_finds_a_dropped_constraint():
    """The check above can fail: without "FOK walk ends the operation only
    when unfillable" a FOK may end on a sufficient or a "go on" PEEK."""
    air = _any_air()
    words = operations(*step_machine(
        air, drop={"rule 5: FOK walk ends the operation only when unfillable"}))
    assert {"g", "c", "cg"} <= words["k_fok"]


# ------------------------------------------------------------ degrees --

@pytest.mark.parametrize("t", [16, 512, 1 << 10, 1 << 15])
def test_every_constraint_has_degree_at_most_3(t):
    """Blowup 2 suffices: every transition constraint (LogUp's included) has
    degree <= 3, computed from its expression, at every limb layout, so the
    quotient has degree below 2N and the LDE at blowup 2 holds its domain."""
    prep = prepare_batch(Book(16), base.make_ops([(Kind.LIMIT, Side.BUY, 5, 1)]), OPTS, ops_length=t)
    air = prep.public.air()
    assert max(c.expr.degree for c in air.transition_constraints) == 3
    assert all(c.degree == c.expr.degree for c in air.transition_constraints)
    assert OPTS.log_blowup >= quotient_log_blowup(air) == 1    # the prover's rule (prove.py)


# ------------------------------------------------- first and last rows --

def _ioc_stops_early(w, ops, trades):
    """IOC buy 101 x 7 takes slot 1 (5 lots) and ends there, FILLED with 5
    of its 7 lots (slot 2's 2 lots never taken); the next operation starts."""
    c = w.columns
    r = _rows_of(c, 0)
    assert [int(c["sM"][x]) for x in r] == [1, 1]
    shift_up(w, r[1])
    c["last"][r[0]] = 1
    _rethread_reads(w)                          # the LIMIT's stop PEEK reads slot 2 whole
    ops[0]["filled"], ops[0]["trades"] = 5, 1
    return ops, trades[:1]


def test_last_placed_early_on_an_unfilled_match(book_mode, monkeypatch):
    assert_necessary(book_mode, monkeypatch,
                     batch((Kind.IOC, Side.BUY, 101, 7), (Kind.LIMIT, Side.BUY, 96, 2)),
                     _ioc_stops_early, "rule 2: a taker ends on MATCH only when filled")


def test_fok_match_phase_ends_early(book_mode):
    """A FOK that walked enough liquidity takes only the first maker and
    ends, FILLED with 5 of 7 lots."""
    def tamper(w, ops, trades):
        c = w.columns
        m = np.flatnonzero(c["sM"])
        shift_up(w, m[1])
        c["last"][m[0]] = 1
        _pad_after(c, m[0] + 1)
        w.rethread()
        ops[0]["filled"], ops[0]["trades"] = 5, 1
        return ops, trades[:1]
    assert_lie(book_mode, batch((Kind.FOK, Side.BUY, 101, 7)), tamper,
               re.escape("rule 2: a taker ends on MATCH only when filled"))


def test_first_in_the_middle_of_an_operation(book_mode):
    """IOC buy 101 x 7: its second MATCH restarts as an operation of its own
    (op index + 1, remaining and trade number reset), the one before it not
    being a last row."""
    def tamper(w, ops, trades):
        c = w.columns
        r = _rows_of(c, 0)[1]
        c["first"][r] = 1
        c["oi"][r:] += 1
        c["rem"][r], c["tn"][r] = 7, 0
        w.rethread()
    assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 101, 7), (Kind.LIMIT, Side.BUY, 96, 2)), tamper,
               re.escape("rule 1: a first row follows a last row"))


def test_two_operations_merged_into_one_run(book_mode):
    """Two IOC buys at 100 for 2 lots (same account: one context) run as one
    operation: the first's last flag and the second's first flag cleared."""
    ops = batch((Kind.IOC, Side.BUY, 100, 2), (Kind.IOC, Side.BUY, 100, 2))
    ops["account"] = 7

    def tamper(w, o, trades):
        c = w.columns
        r = _rows_of(c, 1)[0]
        c["last"][r - 1] = c["first"][r] = 0
        c["oi"][r:] = 0
        w.rethread()
    assert_lie(book_mode, ops, tamper, re.escape("rule 3: remaining' = remaining - fill"))


def test_rest_that_is_not_last(book_mode):
    """A LIMIT that rests and goes on (into what was the next LIMIT's rows,
    given its context): REST is always last."""
    def tamper(w, ops, trades):
        c = w.columns
        r = _rows_of(c, 1)[0]
        c["last"][r - 1] = c["first"][r] = 0
        c["oi"][r:] = 0
        for x in air_mod.CONTEXT:
            c[x][r:] = c[x][0]
        c["rem"][r:] = c["rem"][0]
        w.rethread()
    assert_lie(book_mode, batch((Kind.LIMIT, Side.BUY, 96, 2), (Kind.LIMIT, Side.BUY, 97, 1)), tamper,
               re.escape("rule 5: single steps are last"))


@pytest.mark.parametrize("kind", ["k_can", "k_z"])
def test_nothing_row_for_an_operation_that_is_not_a_field_rejection(book_mode, kind):
    """A CANCEL of a live order shown as one NOTHING row (the order stays):
    as a CANCEL (its first-row rule) or as a field rejection (kind 0, no
    handle: the op table has the record's kind, CANCEL)."""
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sC")
        c["sC"][r], c["sN"][r] = 0, 1
        for x in "HABC":
            c[f"m{x}"][r] = 0
        for name in ("aA", "aB", "aC", "sel", "zv1", "zv2", "cmp1", "cmp2", "ginv"):
            c[name][r] = 0
        if kind == "k_z":
            c["k_can"][:], c["k_z"][:] = 0, 1
            c["hslot"][:] = c["hgen"][:] = 0
        w.rethread()
        assert (w.post == w.pre).all()
        ops[0]["status"], ops[0]["reason"] = Status.REJECTED, Reason.UNKNOWN_HANDLE
    family = "rule 5: CANCEL/REDUCE start with" if kind == "k_can" else SUM
    assert_lie(book_mode, batch((Kind.CANCEL, 0, 0, 0, 2)), tamper, family)


# ------------------------------------------- the FOK walk across operations --

def _fok_goes_on_into_the_next_fok(w, ops, trades):
    """FOK buy 101 x 7 (5 + 5 lots cross: fillable) walks slot 1 only (5,
    short, a next maker: "go on") and ends REJECTED FOK_UNFILLABLE; its "go
    on" is met by the next FOK's first look-ahead PEEK.  Built from the
    honest run at limit 100 (walk: slot 1, then slot 2 does not cross)."""
    c = w.columns
    r = _rows_of(c, 0)
    c["lim"][r] = 101
    c["cmp1"][r[0]] = 101 - 100                 # cx: crossing
    shift_up(w, r[1])
    c["last"][r[0]] = 1
    w.rethread()
    assert c["fc"][r[0]] == 1 and c["pk_fok"][r[0] + 1] == 1 and c["first"][r[0] + 1] == 1
    ops[0]["price"] = 101


def _fok_sufficient_into_the_next_match(w, ops, trades):
    """FOK buy 101 x 3 (slot 1 has 5: sufficient) ends REJECTED on its
    sufficient PEEK; "sufficient -> MATCH" is met by the next operation's
    first MATCH (an IOC).  Built from the honest run at limit 99."""
    c = w.columns
    r = _rows_of(c, 0)[0]
    c["lim"][r] = 101
    c["cr"][r], c["cmp1"][r] = 1, 101 - 100
    c["acc"][r], c["sf"][r], c["cmp2"][r] = 5, 1, 5 - 3
    w.rethread()
    assert c["fg"][r] == 1 and c["sM"][r + 1] == 1 and c["first"][r + 1] == 1
    ops[0]["price"] = 101


@pytest.mark.parametrize("ops,tamper", [
    (batch((Kind.FOK, Side.BUY, 100, 7), (Kind.FOK, Side.BUY, 101, 3)), _fok_goes_on_into_the_next_fok),
    (batch((Kind.FOK, Side.BUY, 99, 3), (Kind.IOC, Side.BUY, 100, 2)), _fok_sufficient_into_the_next_match),
])
def test_fok_walk_continues_into_the_next_operation(book_mode, monkeypatch, ops, tamper):
    """The successor rules of the walk ("go on -> look-ahead PEEK",
    "sufficient -> MATCH") do not see operation boundaries: only "FOK walk
    ends the operation only when unfillable" keeps a fillable FOK from
    ending on them."""
    def lie(w, o, t):
        tamper(w, o, t)
        o[0]["status"], o[0]["reason"], o[0]["filled"], o[0]["trades"] = \
            Status.REJECTED, Reason.FOK_UNFILLABLE, 0, 0
    assert_necessary(book_mode, monkeypatch, ops, lie, "rule 5: FOK walk ends the operation only when unfillable")


def test_fok_go_on_row_not_last_but_followed_by_a_first_row(book_mode):
    """The same walk with its "go on" row left not last, the next FOK's
    first row after it: a first row must follow a last row (and FOK 0's
    outcome would never be given)."""
    def tamper(w, ops, trades):
        _fok_goes_on_into_the_next_fok(w, ops, trades)
        w.columns["last"][0] = 0
    assert_lie(book_mode, batch((Kind.FOK, Side.BUY, 100, 7), (Kind.FOK, Side.BUY, 101, 3)), tamper,
               re.escape("rule 1: a first row follows a last row"))


# ------------------------------------ running values at first rows (row 0) --
#
# No transition constraint has row 0 as its next row, and every running
# value's transition is off at a first row (1 - first'): a first row's
# running values are pinned by the current-row "first row: ..." constraints
# alone, on row 0 (first by the boundary) as on any other.

def _at(position, *rows):
    """The batch `rows`, after a LIMIT that rests (position 1) or not (0)."""
    before = [(Kind.LIMIT, Side.BUY, 96, 2)] if position else []
    return batch(*before, *rows)


def _remaining_not_reset(w, ops, trades):
    """IOC buy 101 recorded for 3 lots, its first row's remaining 5: it takes
    all 5 of slot 1 (one trade of 5 published) and reports filled
    qty - rem + fill = 3 - 5 + 5 = 3, FILLED."""
    c, i = w.columns, len(ops) - 1
    c["qty"][c["oi"] == i] = 3
    ops[i]["qty"], ops[i]["filled"] = 3, 3
    assert trades[0]["qty"] == 5


def _look_ahead_sum_not_its_maker(w, ops, trades):
    """FOK buy 101 x 7 (fillable: 5 + 5) whose first row's look-ahead sum is
    0, not slot 1's 5: the walk ends at slot 2 with 5 < 7, REJECTED."""
    c, i = w.columns, len(ops) - 1
    r = _rows_of(c, i)
    c["acc"][r[0]], c["sf"][r[0]], c["cmp2"][r[0]] = 0, 0, 7 - 0 - 1
    c["acc"][r[1]], c["sf"][r[1]], c["cmp2"][r[1]] = 5, 0, 7 - 5 - 1
    c["last"][r[1]] = 1
    _delete_rows(w, r[2:])
    _pad_after(c, r[1] + 1)
    w.rethread()
    assert c["fc"][r[1]] == 0 and c["fg"][r[1]] == 0
    ops[i]["status"], ops[i]["reason"], ops[i]["filled"], ops[i]["trades"] = \
        Status.REJECTED, Reason.FOK_UNFILLABLE, 0, 0
    return ops, trades[:0]


@pytest.mark.parametrize("position", [0, 1])
def test_remaining_not_reset_at_a_first_row(book_mode, monkeypatch, position):
    assert_necessary(book_mode, monkeypatch, _at(position, (Kind.IOC, Side.BUY, 101, 5)),
                     _remaining_not_reset, "rule 3: first row: remaining = qty")


@pytest.mark.parametrize("position", [0, 1])
def test_look_ahead_sum_not_reset_at_a_first_row(book_mode, monkeypatch, position):
    assert_necessary(book_mode, monkeypatch, _at(position, (Kind.FOK, Side.BUY, 101, 7)),
                     _look_ahead_sum_not_its_maker,
                     "rule 5: FOK: first row: look-ahead sum = its crossing maker")


@pytest.mark.parametrize("position", [0, 1])
def test_trade_number_not_reset_at_a_first_row(book_mode, position):
    """tn = 1 on the first row: trade numbers 1, 2 and a count of 2 for one
    trade (the trade table numbers an operation's trades from 0, so the
    LogUp sum refuses it too)."""
    def tamper(w, ops, trades):
        c, i = w.columns, len(ops) - 1
        c["tn"][c["oi"] == i] += 1
        ops[i]["trades"] += 1
    assert_lie(book_mode, _at(position, (Kind.IOC, Side.BUY, 101, 5)), tamper,
               re.escape("rule 6: first row: trade number 0"))


def test_row_0_is_a_first_row(book_mode):
    """Row 0 claiming to continue an operation (first = 0), so that its
    first-row constraints are off and the remaining-quantity lie above
    holds: the boundary refuses it (and op 0's tuple would not be taken)."""
    def tamper(w, ops, trades):
        _remaining_not_reset(w, ops, trades)
        w.columns["first"][0] = 0
    assert_lie(book_mode, _at(0, (Kind.IOC, Side.BUY, 101, 5)), tamper,
               re.escape("rule 1: the trace starts with an operation"))


# ------------------------------------------------ outcome expressions --

def _expired_fill(w, ops, trades):
    """IOC buy 100 x 7: 5 lots taken, the stop PEEK (its last row) claims a
    fill of 1 more: filled = qty - rem + fl = 6, no trade for it."""
    c = w.columns
    r = first(c, "pk_stop")
    c["fl"][r] = 1
    _pad_after(c, r + 1)
    ops[0]["filled"] = 6


def _handle_for_an_ioc(w, ops, trades):
    """IOC buy 100 x 7 (EXPIRED) claims an assigned handle, slot 5."""
    c = w.columns
    c["os"][first(c, "pk_stop")] = 5
    ops[0]["handle"] = 5
    trades["taker_handle"] = 5


def test_fill_on_a_step_that_is_not_a_match(book_mode, monkeypatch):
    assert_necessary(book_mode, monkeypatch, batch((Kind.IOC, Side.BUY, 100, 7)), _expired_fill,
                     "fill only on MATCH")


def test_handle_assigned_without_a_rest(book_mode, monkeypatch):
    assert_necessary(book_mode, monkeypatch, batch((Kind.IOC, Side.BUY, 100, 7)), _handle_for_an_ioc,
                     "rule 5: handle = the rested slot (os)")


def test_rested_handle_with_another_generation(book_mode):
    def tamper(w, ops, trades):
        c = w.columns
        c["og"][first(c, "sR")] = 3
        ops[0]["handle"] = int(ops[0]["handle"]) | 3 << 32
    assert_lie(book_mode, batch((Kind.LIMIT, Side.BUY, 96, 2)), tamper,
               re.escape("rule 5: handle = the rested generation (og)"))


def _record(**edit):
    def tamper(w, ops, trades):
        for k, v in edit.items():
            ops[-1][k] = v(int(ops[-1][k])) if callable(v) else v
            if k == "handle":
                trades["taker_handle"] = ops[-1][k]
    return tamper


@pytest.mark.parametrize("rows,tamper", [
    ([(Kind.IOC, Side.BUY, 100, 7)], _record(filled=lambda x: x + 1)),
    ([(Kind.IOC, Side.BUY, 100, 7)], _record(filled=lambda x: x - 1)),
    ([(Kind.IOC, Side.BUY, 101, 7)], _record(trades=lambda x: x - 1)),
    ([(Kind.IOC, Side.BUY, 100, 7)], _record(status=Status.FILLED)),
    ([(Kind.FOK, Side.BUY, 100, 20)], _record(reason=Reason.WOULD_CROSS)),
    ([(Kind.FOK, Side.BUY, 100, 20)], _record(status=Status.EXPIRED, reason=Reason.NONE)),
    ([(Kind.LIMIT, Side.BUY, 96, 2)], _record(handle=lambda h: h + 1)),
    ([(Kind.LIMIT, Side.BUY, 96, 2)], _record(handle=lambda h: h | 1 << 32)),
    ([(Kind.LIMIT, Side.BUY, 96, 2)], _record(handle=0)),
    ([(Kind.IOC, Side.BUY, 100, 7)], _record(handle=5)),
    ([(Kind.REDUCE, 0, 0, 2, 2)], _record(filled=2)),
    ([(Kind.CANCEL, 0, 0, 0, 2)], _record(status=Status.REDUCED)),
    ([(Kind.LIMIT, 3, 96, 2), (Kind.LIMIT, Side.BUY, 96, 2)], _record(status=Status.EXPIRED)),
])
def test_outcome_record_disagrees_with_the_steps(book_mode, rows, tamper):
    """The outcome tuple is status, reason, filled, trades and handle as the
    last row's expressions give them: any other record is refused."""
    assert_lie(book_mode, batch(*rows), tamper, SUM)


# ------------------------------- B and C: cells that are not their links --

def _rethread_keeping(w, r, x):
    """Witness.rethread, except that row r's read of access x keeps the old
    word the columns claim (a forged read: the write, which repeats the
    read's unchanged cells, carries the forgery into memory)."""
    c, T = w.columns, w.trace_length
    mem, last = w.pre.copy(), np.zeros(len(w.pre), dtype=np.int64)
    for rr in range(T):
        writes = []
        for y in "HABC":
            if not c[f"m{y}"][rr]:
                continue
            a = 0 if y == "H" else int(c[f"a{y}"][rr])
            width = HCELLS if y == "H" else 8
            if (rr, y) != (r, x):
                for j in range(width):
                    c[f"o{y}{j}"][rr] = mem[a, j]
            c[f"t{y}"][rr] = last[a]
            writes.append((a, [int(c[written(y, j)][rr]) for j in range(width)]))
        for a, word in writes:
            mem[a, :len(word)] = word
            last[a] = rr + 1
    w.post = mem % P
    w.pts = last
    W.derive_columns(c, T)
    w.finish()


def test_neighbour_keeps_every_cell_but_its_links(book_mode):
    """On every step that writes B or C (MATCH's new head; REST's and
    CANCEL's neighbours), each cell other than the links, raised by one,
    either by a forged read (which the write repeats) or in the post table
    alone, fails the memory argument: the write has no column for it."""
    tried = set()
    for prep in (every_step_batch(book_mode),
                 book_mode.prepare(base.mode_book(book_mode), batch((Kind.CANCEL, 0, 0, 0, 2)))):
        w, check = prep.witness, Checker(prep, seed=9)
        assert check.holds(w)
        step_of = _step_of(w)
        for r in range(w.trace_length):
            for x in "BC":
                if not w.columns[f"m{x}"][r] or (step_of[r], x) in tried:
                    continue
                tried.add((str(step_of[r]), x))
                a = int(w.columns[f"a{x}"][r])
                for j in set(range(8)) - set(WRITES[x]):
                    forged = copy.copy(w)
                    forged.columns = {k: v.copy() for k, v in w.columns.items()}
                    forged.columns[f"o{x}{j}"][r] += 1
                    _rethread_keeping(forged, r, x)
                    assert not check.holds(forged), (step_of[r], x, j, "forged read")
                    posted = copy.copy(w)
                    posted.post = w.post.copy()
                    posted.post[a, j] = (posted.post[a, j] + 1) % P
                    assert not check.holds(posted), (step_of[r], x, j, "post table")
    assert tried == {("sM", "B"), ("sR", "B"), ("sR", "C"), ("sC", "B"), ("sC", "C")}


def test_cancel_raises_its_neighbours_quantity(book_mode):
    """CANCEL of slot 2 (prev: slot 1) that also adds 10 lots to slot 1,
    by a forged read of B which the write carries on."""
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sC")
        assert c["mB"][r] and c["aB"][r] == 1
        c["oB1"][r] += 10
        _rethread_keeping(w, r, "B")
        assert w.post[1, 1] == w.pre[1, 1] + 10
    assert_lie(book_mode, batch((Kind.CANCEL, 0, 0, 0, 2)), tamper, SUM)


# ----------------------------------------------------------- PAD rows --

def test_pad_row_cannot_write(book_mode):
    """A PAD row between the last operation and the last row raises the
    resting bid's quantity (memory-consistent after the rethread)."""
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sZ")
        c["mA"][r], c["aA"][r] = 1, 3
        word = w.pre[3].copy()
        word[1] += 10
        set_word(c, "nA", r, word)
        w.rethread()
        assert w.post[3, 1] == w.pre[3, 1] + 10
    assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 100, 3)), tamper,
               re.escape("memory: sN and PAD access nothing"))


def test_pad_row_cannot_give_an_outcome(book_mode):
    """A PAD row flagged last: the last operation's outcome taken twice.
    Two constraints refuse it on the same row: "PAD rows belong to no
    operation" and "PAD follows a last row or PAD" (1 - last - sZ = -1 for a
    PAD row after a PAD row that is last); debug names the first declared."""
    def tamper(w, ops, trades):
        c = w.columns
        c["last"][first(c, "sZ")] = 1
    assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 100, 3)), tamper,
               "rule 1: PAD (follows a last row or PAD|rows belong to no operation)")


def test_operation_after_a_pad_row(book_mode):
    """A PAD row inserted between two operations: the second one starts
    after PAD, not after a last row."""
    def tamper(w, ops, trades):
        c = w.columns
        r = _rows_of(c, 1)[0]
        pad = {k: v[-1] for k, v in c.items()}
        for k, col in c.items():
            col[r + 1:] = col[r:-1].copy()
            col[r] = pad[k]
        for x in air_mod.CONTEXT + ("oi",):
            c[x][r] = c[x][r - 1]
        _pad_after(c, r)
        c["rem"][r + 1], c["tn"][r + 1] = c["qty"][r + 1], 0
        c["acc"][r + 1] = c["cr"][r + 1] * c["oA1"][r + 1]
        c["row"] = np.arange(w.trace_length)
        w.rethread()
    assert_lie(book_mode, batch((Kind.IOC, Side.BUY, 100, 3), (Kind.LIMIT, Side.BUY, 96, 2)), tamper,
               re.escape("rule 1: a first row follows a last row"))


# ------------------------------------------------------------ max_rows --

@pytest.mark.parametrize("cap", [2, 4, 16])
def test_max_rows_is_reached_and_not_exceeded(cap):
    """witness.max_rows(N) = max(2(N - 1), N + 1): a FOK sweeping a full side
    takes 2(N - 1) rows, a LIMIT sweeping it and resting N + 1, an IOC N;
    the bound is the larger (N + 1 only at N = 2).  (Completeness: a trace
    too short for one operation refuses the batch; soundness does not rest
    on the bound.)"""
    book = Book(cap)
    for i in range(cap - 1):
        book.submit(Kind.LIMIT, Side.SELL, 100 + i, 1, account=20 + i)
    rows = {}
    for kind, qty in ((Kind.FOK, cap - 1), (Kind.LIMIT, cap), (Kind.IOC, cap)):
        ops = base.make_ops([(kind, Side.BUY, 500, qty)], first_seq=cap)
        _, steps = Book.restore(book.snapshot()).process_traced(ops.copy())
        rows[kind] = int(W.op_rows(steps, 1)[0])
    assert rows == {Kind.FOK: 2 * (cap - 1), Kind.LIMIT: cap + 1, Kind.IOC: cap}
    assert W.max_rows(cap) == max(rows.values())


def _fok_trades_after_pad(w, ops, trades):
    """FOK buy 101 x 20 against 10 crossing lots: REJECTED FOK_UNFILLABLE
    (walk: slot 1, slot 2, the end).  Then, after PAD rows, the same
    operation (no first row: op index and context carried) MATCHes both
    makers on rows T - 3 and T - 2 (the rows of an honest IOC buy 101 x 20,
    transplanted), its two trades added to the public list; the last MATCH
    is not last, and its successor rule ("MATCH or stop PEEK") is met by the
    final row's pk_stop selector, which that row carries beside sZ: the
    final row is pinned by boundaries only (sZ, first, last, sM, the masks),
    not by "one step per row"."""
    c, T = w.columns, w.trace_length
    ioc = prepare_batch(base.setup_book(), batch((Kind.IOC, Side.BUY, 101, 20)), OPTS, T)
    src = ioc.witness.columns
    assert [int(src["sM"][r]) for r in (0, 1)] == [1, 1]
    for k in c:
        c[k][T - 3:T - 1] = src[k][0:2]
    for x in air_mod.CONTEXT + ("oi", "acc"):
        c[x][T - 3:T - 1] = c[x][T - 4]
    c["first"][T - 3:T - 1] = c["last"][T - 3:T - 1] = 0
    c["row"] = np.arange(T)
    c["rem"][T - 1], c["tn"][T - 1], c["pk_stop"][T - 1] = 10, 2, 1
    w.rethread()
    return ops, ioc.public.trades.copy()


def test_steps_after_pad_cannot_run_into_the_final_row(book_mode, monkeypatch):
    """"PAD is followed by PAD" refuses the lie; without it, "PAD follows a
    last row or PAD" (row T - 2, a MATCH that is not last, before the final
    PAD row) does; without both, the final row's boundary "(pk_stop = 0)"
    (the transition "MATCH -> MATCH or stop PEEK" into the final row is met
    by a stop selector beside sZ there); without all three, a rejected FOK
    trades and the proof verifies.  So PAD being absorbing is hardening only
    given "PAD follows a last row or PAD" (a chain of steps after PAD must
    end on a last row, a second outcome of the last operation, which the
    outcome table refuses), and that rule and the final row's boundaries
    each close the run into the final row."""
    ops = batch((Kind.FOK, Side.BUY, 101, 20))
    assert_lie(book_mode, ops, _fok_trades_after_pad, re.escape("rule 1: PAD is followed by PAD"))
    _without(monkeypatch, "rule 1: PAD is followed by PAD")
    assert_lie(book_mode, ops, _fok_trades_after_pad, re.escape("rule 1: PAD follows a last row or PAD"))
    _without(monkeypatch, "rule 1: PAD follows a last row or PAD")
    assert_lie(book_mode, ops, _fok_trades_after_pad, re.escape("rule 1: the last row is PAD (pk_stop = 0)"))
    _without_boundary(monkeypatch, "rule 1: the last row is PAD (pk_stop = 0)")
    committed = []

    def lie(w, o, t):
        committed.extend(_fok_trades_after_pad(w, o, t))
        return committed
    verify_batch(prove_lie(book_mode, base.mode_book(book_mode), ops, lie), min_security=0)
    o, t = committed
    assert o[0]["status"] == Status.REJECTED and len(t) == 2
