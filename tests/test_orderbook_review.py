"""Soundness review of the order-book AIR (docs/STATEMENT.md, "Soundness
review (2026-11-25)"): one regression test per finding, and the lying-engine
cases the acceptance suite (tests/test_orderbook_air.py, whose helpers this
module reuses) did not have, each named by the constraint family or verifier
check that catches it.

The lies are built as there: the honest run's witness and public records,
edited the way a dishonest engine (running its own prover) would."""
from __future__ import annotations

import copy
import re

import numpy as np
import pytest

import test_orderbook_air as base
from zksidecar.engine.book import Book, StreamError
from zksidecar.engine.records import Kind, Side, Status
from zksidecar.prover import constraints as C
from zksidecar.prover import field as F
from zksidecar.prover.air import Frame
from zksidecar.prover.expr import TRACE, evaluate
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.orderbook import BatchRejected, prove_batch, verify_batch
from zksidecar.prover.orderbook import air as air_mod
from zksidecar.prover.orderbook import batch as batch_mod
from zksidecar.prover.orderbook import witness as W
from zksidecar.prover.orderbook.air import HCELLS, STEPS, WRITES, written
from zksidecar.prover.orderbook.batch import prepare_batch

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
def test_public_field_plus_p_is_refused(monkeypatch, rows, alias):
    """Verifier check "public records canonical": without it (both sides
    patched, as a lying prover would run) the aliased records verify; with
    it they are refused before any proof is read."""
    book, ops = base.setup_book(), batch(*rows)

    def tamper(w, o, t):
        alias(o, t)

    with monkeypatch.context() as m:
        for mod in (air_mod, batch_mod):
            m.setattr(mod, "noncanonical", lambda *a: None)
        bp = base.prove_lie(book, ops, tamper)
        verify_batch(bp, min_security=0)                  # the hole, shown
    with pytest.raises(BatchRejected, match="not canonical"):
        verify_batch(bp, min_security=0)
    with pytest.raises(ValueError, match="not canonical"):
        bp.public.air()                                   # the AIR refuses it too


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

def test_timestamps_are_compared_unsigned():
    """check_public compared ts_ns as int64: 2^64 - 1 then 0 passed as
    "non-decreasing" (-1 <= 0), though the engine refuses that stream, and
    2^63 - 1 then 2^63 was refused though the engine runs it."""
    ops = base.make_ops([(Kind.LIMIT, Side.BUY, 96, 2), (Kind.LIMIT, Side.BUY, 97, 1)])
    ops["ts_ns"] = [(1 << 63) - 1, 1 << 63]
    bp, _, _ = prove_batch(Book(16), ops, OPTS)
    verify_batch(bp, min_security=0)                      # honest across 2^63

    backwards = ops.copy()
    backwards["ts_ns"] = [(1 << 64) - 1, 0]
    with pytest.raises(StreamError):
        Book(16).process(backwards.copy())                # the engine's rule

    def tamper(w, o, t):
        o["ts_ns"] = backwards["ts_ns"]
    lie = base.prove_lie(Book(16), ops, tamper)
    with pytest.raises(BatchRejected, match="timestamps go backwards"):
        verify_batch(lie, min_security=0)


# ------------------------------------- boundaries and the wrap-around --

def test_last_row_cannot_write():
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
    base.assert_lie(batch((Kind.IOC, Side.BUY, 100, 3)), tamper,
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


def test_padding_is_absorbing(monkeypatch):
    """A step after PAD is refused by "PAD is followed by PAD" (hardening).
    Without that constraint the lie is still refused: PAD rows carry the
    last operation's running values (a filled taker's remaining 0), so a
    step after them has nothing to fill, and a row after PAD cannot start an
    operation ("a first row follows a last row"; PAD rows are in none)."""
    ops = batch((Kind.IOC, Side.BUY, 100, 3))
    base.assert_lie(ops, _match_after_pad, re.escape("rule 1: PAD is followed by PAD"))
    orig = air_mod.OrderBookAir._transitions
    monkeypatch.setattr(air_mod.OrderBookAir, "_transitions",
                        lambda self, f: [c for c in orig(self, f) if "PAD is followed" not in c.name])
    monkeypatch.setattr(air_mod.OrderBookAir, "_transitions_by_length", {})
    base.assert_lie(ops, _match_after_pad, re.escape("rule 3: remaining' = remaining - fill"))


# ------------------------------------------------- memory argument --

def test_read_of_its_own_write_fabricates_nothing():
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
        c["pts"][:] = 0
        w.post = w.pre.copy()                             # nothing else was touched
        W.derive_columns(c, w.trace_length)
        w.finish()
        ops[0]["status"], ops[0]["filled"], ops[0]["trades"] = Status.EXPIRED, 0, 0
        return ops, trades[:0]
    base.assert_lie(batch((Kind.IOC, Side.BUY, 100, 3)), tamper, SUM)


def test_negative_multiplicity_undoes_a_step():
    """LogUp multiplicities: an access mask of p - 1 turns the MATCH's read
    into a write and its write into a read (the maker's fill undone in the
    post-state); access masks are boolean."""
    def tamper(w, ops, trades):
        c = w.columns
        r = first(c, "sM")
        c["mA"][r] = P - 1
        w.post[1] = w.pre[1]
    base.assert_lie(batch((Kind.IOC, Side.BUY, 100, 3)), tamper, "boolean mA")


# ------------------------------------------------- rules 3 and 5 --

def test_reduce_to_zero_leaves_a_ghost():
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
    base.assert_lie(batch((Kind.REDUCE, 0, 0, 5, 1)), tamper, SUM)


def test_trades_of_one_operation_reordered():
    """Trade table: a trade's number within its operation is its position in
    the public list, so swapping an operation's two trades (best maker
    second) is refused."""
    def tamper(w, ops, trades):
        return ops, trades[[1, 0]]
    base.assert_lie(batch((Kind.IOC, Side.BUY, 101, 7)), tamper, SUM)


# ----------------------------------------------- no column left free --

#: (column, step) cells a single-column edit may change with every
#: constraint and the LogUp sum still holding: values no rule reads there.
#: Access columns of an inactive access (mask 0) and the PAD rows are free by
#: design and not listed.  Anything outside this list that a single edit can
#: change is a column some step uses without a constraint.
MAY_BE_FREE = {
    "ginv": (set(STEPS), "only a freeing step reads it (a partial MATCH is an sM row too)"),
    "zi1": (set(STEPS), "where zv1 = 0 the 'inverse' is anything"),
    "zi2": (set(STEPS), "where zv2 = 0, the same"),
    "sf": (set(STEPS) - {"pk_fok"}, "off FOK's walk fg = cr * sf with cr = 0"),
    "sel": ({"sN", "sD", "pk_stale", "pk_full"}, "no side-dependent rule on these steps"),
}


class Checker:
    """Every constraint of an OrderBookAir on a witness, without proving:
    the transition constraints (LogUp's own excepted) row by row, the
    boundaries, and each row's LogUp term and the total against its target,
    at fixed challenges."""

    def __init__(self, air, seed: int):
        self.air, self.T = air, air.trace_length
        self.challenges = F.encode(np.random.default_rng(seed).integers(0, P, (2, 4)))
        self.consts = air.constants(self.challenges)
        self.cons = [c for c in air.transition_constraints if not c.name.startswith("lu")]
        f = Frame(air)
        self.bounds = [f.cur(b.column) - b.value for b in air.boundary_constraints
                       if not b.name.startswith("lu")]
        self.bound_rows = [b.row % self.T for b in air.boundary_constraints
                           if not b.name.startswith("lu")]
        self.target = -air.derive(self.challenges)["public_sum"]

    def rows(self, wit):
        """(bad, term): rows a failing transition constraint touches, and
        each row's LogUp term (T, 4)."""
        T, air = self.T, self.air
        tr = wit.traces()
        cols = np.concatenate([tr["pre"], tr["post"], tr["exec"]], axis=1)

        def source(key):
            if key[0] != TRACE:
                return self.consts(key)
            col, nxt = key[1], key[2]
            assert col < air.num_main_columns, "non-LogUp constraints read main columns only"
            v = np.ascontiguousarray(cols[:, col])
            return np.roll(v, -1) if nxt else v

        alg = C.ColumnAlgebra(T, source)
        bad = np.zeros(T, dtype=bool)
        for v in evaluate([c.expr for c in self.cons], alg):
            row_bad = C.as_column(v, T, isinstance(v, np.ndarray) and v.ndim == 2) \
                .reshape(T, -1)[:T - 1].any(axis=1)
            bad[:T - 1] |= row_bad
            bad[1:] |= row_bad
        for v, r in zip(evaluate(self.bounds, alg), self.bound_rows):
            bad[r] |= bool(C.as_column(v, T, False)[r])
        main = {c: np.ascontiguousarray(tr[s.name][:, j])
                for s in air.main_segments for j, c in enumerate(s.columns)}
        self._lu = air.lu.build(air, main, self.challenges)
        return bad, (self._lu[:, 1].astype(np.int64) - self._lu[:, 0].astype(np.int64)) % P

    def holds(self, wit) -> bool:
        bad, _ = self.rows(wit)
        return not bad.any() and Ext.from_mont(self._lu[-1, 1]) == self.target


def _step_of(w):
    return np.array([next(s for s in STEPS if w.columns[s][r]) for r in range(w.trace_length)])


def _free_cells(w, air, seed, only=None):
    """{column: steps} where editing that column alone on a row (a flip for
    0/1 columns, + 12345 otherwise) leaves every transition constraint of
    the rows around it and the row's LogUp term unchanged.  Even and odd
    rows are edited in two passes, so no constraint sees two edited rows."""
    T, check = w.trace_length, Checker(air, seed)
    bad0, term0 = check.rows(w)
    assert not bad0.any()
    step_of = _step_of(w)
    free: dict[str, set] = {}
    for name in only or w.columns:
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


def _unconstrained_writes(w, air, seed):
    """(row, step, cell) for which a dishonest write verifies: on the first
    row of each step type, each written cell (and each access address) is
    moved by one, carried through the later steps that pass the cell on,
    the memory rethreaded (every later read and the post table follow it,
    as a lying engine would make them), and every constraint and the LogUp
    total checked."""
    check, step_of = Checker(air, seed), _step_of(w)
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


def every_step_ops() -> np.ndarray:
    """One batch on an empty 16-slot book with every step type: the book
    fills (BOOK_FULL for a LIMIT and a POST_ONLY), an IOC sweeps, FOKs both
    ways, POST_ONLY crossing and resting, MARKET, a REDUCE, a CANCEL and the
    same CANCEL again (stale), a field rejection."""
    rows = [(Kind.LIMIT, Side.BUY, 50 + i % 5, 1 + i % 3) for i in range(15)]
    rows += [(Kind.LIMIT, Side.SELL, 60, 2), (Kind.POST_ONLY, Side.SELL, 70, 2),
             (Kind.IOC, Side.SELL, 53, 9), (Kind.FOK, Side.SELL, 50, 40), (Kind.FOK, Side.SELL, 51, 2),
             (Kind.POST_ONLY, Side.SELL, 50, 1), (Kind.POST_ONLY, Side.BUY, 60, 1),
             (Kind.MARKET, Side.BUY, 0, 1), (Kind.LIMIT, Side.BUY, 45, 5)]
    shadow = Book(16)
    shadow.process(base.make_ops(rows))
    bids = shadow.orders(Side.BUY)["handle"]
    last, best = int(bids[-1]), int(bids[0])          # the bid at 45; the best bid
    return base.make_ops(rows + [(Kind.REDUCE, 0, 0, 2, last), (Kind.CANCEL, 0, 0, 0, best),
                                 (Kind.CANCEL, 0, 0, 0, best), (Kind.LIMIT, 3, 1, 1)])


def test_no_column_is_left_free():
    """Every exec column is pinned on the steps that use it: a single edit
    of any other (column, step) cell breaks a constraint or the LogUp sum.
    Guards against a constraint or a LogUp fraction dropped by a refactor."""
    prep = prepare_batch(Book(16), every_step_ops(), OPTS)
    free = _free_cells(prep.witness, prep.public.air(), seed=5)
    unexpected = {name: sorted(steps - MAY_BE_FREE.get(name, (set(), ""))[0])
                  for name, steps in free.items()}
    unexpected = {k: v for k, v in unexpected.items() if v}
    assert not unexpected, f"columns left free on steps that use them: {unexpected}"
    covered = {str(s) for s in np.unique([next(s for s in STEPS if prep.witness.columns[s][r])
                                          for r in range(prep.witness.trace_length)])}
    assert covered == set(STEPS)                          # the flow has every step type


def test_the_free_cell_scan_finds_a_dropped_constraint(monkeypatch):
    """The scan above can fail: with the definition of the helper dB (REST's
    signed price difference to its prev) dropped, dB is free wherever REST
    does not read it, and the scan names it."""
    orig = air_mod.OrderBookAir._transitions

    def without(self, f):
        return [c for c in orig(self, f) if not c.name.startswith("helper dB ")]
    monkeypatch.setattr(air_mod.OrderBookAir, "_transitions", without)
    monkeypatch.setattr(air_mod.OrderBookAir, "_transitions_by_length", {})
    prep = prepare_batch(base.setup_book(), batch((Kind.REDUCE, 0, 0, 2, 2)), OPTS)
    free = _free_cells(prep.witness, prep.public.air(), seed=6, only=["dB", "cx"])
    assert "cx" not in free                               # still defined
    assert free.get("dB", set()) >= {"sD"}



def test_rest_into_a_full_book_at_the_header_row():
    """One access per address and timestamp: with the book full (free head
    0) a LIMIT claims to rest "in slot 0", i.e. its A access is the header
    row, which its H access also reads and writes.  Every step rule holds
    (slot 0 reads as an empty word on a book with no bids); the memory
    multiset cannot: both reads want the one latest write of address 0."""
    book = Book(16)
    for i in range(15):
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
    base.assert_lie(base.make_ops([(Kind.LIMIT, Side.BUY, 50, 1)], first_seq=16), tamper, SUM,
                    book=book)


def test_no_write_is_left_free():
    """Every written cell is pinned by its step: moving one (or an access's
    address) by one, with the memory rethreaded so that every later read and
    the post table follow, breaks a constraint or the LogUp sum, on every
    step type that writes."""
    prep = prepare_batch(Book(16), every_step_ops(), OPTS)
    assert _unconstrained_writes(prep.witness, prep.public.air(), seed=7) == []


def test_the_write_scan_finds_a_dropped_constraint(monkeypatch):
    """The scan above can fail: with "rested word cell 3" dropped, REST can
    write any account_lo into the order it rests (the first REST's order is
    still on the book at the end, so only the post table shows it)."""
    orig = air_mod.OrderBookAir._transitions
    monkeypatch.setattr(air_mod.OrderBookAir, "_transitions",
                        lambda self, f: [c for c in orig(self, f) if c.name != "rule 4: rested word cell 3"])
    monkeypatch.setattr(air_mod.OrderBookAir, "_transitions_by_length", {})
    prep = prepare_batch(Book(16), every_step_ops(), OPTS)
    found = _unconstrained_writes(prep.witness, prep.public.air(), seed=8)
    assert {(step, name) for _, step, name in found} == {("sR", "nA3")}
