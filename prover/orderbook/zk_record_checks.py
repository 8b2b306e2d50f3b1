"""zk mode's record-check block: every plain check of the transparent
verifier, as constraints over one operation record's data elements
(docs/ZK.md, section 4, and its subsection 4.1 "The record-check block",
which argues each constraint family).

In zk mode the records are private.  The record lane hashes operation i's
12 data elements e0..e11 (zk_encoding.OPERATION_LAYOUT) on row i of the
`ops` domain, and hands them to row i of the `book` domain (zk_air.py,
the link tuple), where this block decomposes them exactly into
their sub-fields, classifies the record as `air.classify_all` does (the
first failing field check is its reason), checks a field rejection's
outcome and a new order's handle as `batch.check_public` and
`air.noncanonical` do, holds the timestamps non-decreasing, and supplies
the op and outcome tuples the execution rows consume, equal entry for
entry to the ones `air.public_tables` builds from the record in
transparent mode.

The block is a component: it owns its columns (all named ``rc_...``), its
constraints and its LogUp fractions, and reads columns it does not own
(``inputs``).  What the integrator (zk mode's `book` domain, zk_air.py)
must provide, and which of it the argument assumes:

* ``row`` is the row counter (row[0] = 0, row' = row + 1), so on row i
  it is the operation index i;
* ``lo`` is boolean and 1 exactly on rows 0 .. ops - 1 (ops <= rows: the
  last row may be an operation's);
* ``rl`` is 1 on the last row and 0 on every other;
* e0..e11 on an operation row are the data elements its published leaf
  hashes (the lane's Poseidon2 rows bind them, the link tuple carries them);
* the range table <TAG_RANGE, v>, v in [0, T), is supplied (OrderBookAir's
  ``supply([TAG_RANGE, "row"], "rm")``) with multiplicities that count
  every value this block looks up: :meth:`RecordChecks.range_counts`;
* the op and outcome tuples this block supplies are consumed by the
  execution rows, which bound what the outcome carries (status 1..6,
  reason 0 or 7..10, filled and trades at most MAX_QTY);
* row 0's ``lpts`` (:attr:`RecordChecks.lpts`, the columns holding the
  previous operation's timestamp pieces) is bound to the
  pre-state's timestamp cells, or to 0 when the public `resumed` bit is
  set; ``lts`` (:attr:`RecordChecks.lts`, constant down the trace) to
  the post-state's cells.  Both in the five pieces of
  :func:`timestamp_pieces`.

Every column but ``lts`` is 0 off the operation rows, so a row without an
operation contributes nothing: no lookup, no tuple.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ...engine.records import FLAGS_KNOWN, MAX_PRICE, MAX_QTY, OP_DTYPE, Kind, Reason, Side, Status
from .. import field as F
from .. import logup
from ..air import Frame, TransitionConstraint
from ..expr import Expr, const
from ..native import ffi, lib
from .air import CONSTRAINT_DEGREE, KIND_CODE, MAX_LOG_OPS, MIN_ROWS, PROVABLE_MAX, TAG_OP, TAG_OUT, TAG_RANGE
from .zk_encoding import DATA_ELEMENTS, OPERATION_LAYOUT, Piece, encode_operations, lane_layout, pieces_for

#: the data-element columns the lane holds
ELEMENTS = tuple(f"e{k}" for k in range(DATA_ELEMENTS))
#: the columns the block reads and does not own: the row counter, the
#: operation rows' indicator, the last row's selector and the data elements
INPUTS = ("row", "lo", "rl") + ELEMENTS

# flags & ~FLAGS_KNOWN != 0 is "flags >> 2 != 0" only while the known flags are bits 0 and 1
assert FLAGS_KNOWN == 0b11, "the block reads flags as f0, f1 and fh = flags >> 2"
# the price and qty comparisons are sound in 30 bits only because MAX = p - 2^30 - 1
assert MAX_PRICE == MAX_QTY == PROVABLE_MAX

#: each sub-field of OPERATION_LAYOUT by (source, lo): the short name of its
#: column(s).  filled and trades have none: they are e8 and e9 themselves
SHORT = {("ts_ns", 0): "t0", ("ts_ns", 15): "t1", ("ts_ns", 30): "t2", ("ts_ns", 45): "t3",
         ("ts_ns", 60): "tb60", ("ts_ns", 61): "tb61", ("ts_ns", 62): "tb62", ("ts_ns", 63): "tb63",
         ("price", 0): "p0", ("price", 15): "p1", ("price", 30): "pb30", ("price", 31): "pb31",
         ("qty", 0): "q0", ("qty", 15): "q1", ("qty", 30): "qb30", ("qty", 31): "qb31",
         ("slot", 0): "h0", ("slot", 15): "h1", ("slot", 30): "hb30", ("slot", 31): "hb31",
         ("gen", 0): "g0", ("gen", 15): "g1", ("gen", 30): "gb30", ("gen", 31): "gb31",
         ("flags", 0): "f0", ("flags", 1): "f1", ("flags", 2): "fh",
         ("side", 0): "side", ("kind", 0): "kind",
         ("account", 0): "a0", ("account", 15): "a15", ("account", 16): "a1", ("account", 31): "a31",
         ("reason", 0): "reason", ("status", 0): "status"}

#: a timestamp's pieces, least significant first: four 15-bit limbs and the
#: 4-bit top (ts_ns bits 60-63, four booleans of e6)
TIMESTAMP_PIECE_BITS = (15, 15, 15, 15, 4)

#: the reasons a record's fields alone can give, in classify_all's order of
#: checks (BAD_QTY twice: a REDUCE's before the handle, a new order's last),
#: with the column of each (BAD_FLAGS's is fbad, the flags' zero test)
FIELD_REASONS = (("fbad", Reason.BAD_FLAGS), ("rqr", Reason.BAD_QTY), ("rh", Reason.UNKNOWN_HANDLE),
                 ("rk", Reason.BAD_KIND), ("rs", Reason.BAD_SIDE), ("rp", Reason.BAD_PRICE),
                 ("rq", Reason.BAD_QTY))

#: record kind -> the op tuple's code (classify_all: MARKET is IOC)
EFFECTIVE_CODE = {Kind.LIMIT: KIND_CODE["k_lim"], Kind.IOC: KIND_CODE["k_ioc"],
                  Kind.MARKET: KIND_CODE["k_ioc"], Kind.FOK: KIND_CODE["k_fok"],
                  Kind.POST_ONLY: KIND_CODE["k_post"], Kind.CANCEL: KIND_CODE["k_can"],
                  Kind.REDUCE: KIND_CODE["k_red"]}
HANDLED_KINDS = (Kind.CANCEL, Kind.REDUCE)

OP_ENTRIES = ("code", "buy", "lim", "qty", "hslot", "hgen", "alo", "ahi")
OUT_ENTRIES = ("status", "reason", "filled", "trades", "slot", "gen")

#: the widest capacity the block takes: the slot bound is stated on the
#: slot's bits 0-29 with bits 30 and 31 clear, which is "slot < C" only
#: while C <= 2^30 (the engine's own limit is 2^24)
MAX_LOG2_CAPACITY = 30
#: 2^15: a limb
LIMB = 1 << 15

#: the C builder's plan (csrc/orderbook/zk_record_checks.h, whose structs
#: these mirror: tests/test_zk_record_checks.py holds them equal): a column
#: is bits lo .. lo + width - 1 of a named value; a lookup, a column + shift
COLUMN_DTYPE = np.dtype([("value", "<i4"), ("lo", "<i4"), ("width", "<i4")])
LOOKUP_DTYPE = np.dtype([("column", "<i4"), ("shift", "<i4")])
#: a plan column's width for the whole value
WHOLE = 64


class RecordError(ValueError):
    """Records no honest witness of the block exists for (the transparent
    verifier refuses them too): the message names the operation."""


def timestamp_pieces(ts: int) -> tuple[int, ...]:
    """The five pieces of a u64 timestamp the block compares (and the state
    table's timestamp cells hold): bits 0-14, 15-29, 30-44, 45-59, 60-63."""
    if not 0 <= ts < 1 << 64:
        raise ValueError(f"a timestamp is a u64, got {ts}")
    return tuple(ts >> (15 * j) & ((1 << b) - 1) for j, b in enumerate(TIMESTAMP_PIECE_BITS))


def _cmp_width(needed: int, sound: int, log_rows: int) -> int:
    """The width w of a comparison value: at least `needed` bits (every
    honest value fits), at most `sound` (every value a false claim would
    need is a field element >= 2^sound), and else a multiple of log2 T, so
    that its pieces are whole lookups: one piece at T >= 2^needed."""
    return min(-(-needed // log_rows) * log_rows, sound)


class Ranged(NamedTuple):
    """A value held as range-checked pieces, least significant first (or
    one boolean column): its columns and each piece's lookups."""
    name: str
    pieces: tuple[Piece, ...]
    columns: tuple[str, ...]

    @classmethod
    def of(cls, name: str, pieces: Sequence[Piece]) -> "Ranged":
        cols = (f"rc_{name}",) if len(pieces) == 1 else tuple(f"rc_{name}_{j}" for j in range(len(pieces)))
        return cls(name, tuple(pieces), cols)

    def expr(self, f: Frame) -> Expr:
        return sum((f.cur(c) * (1 << p.lo) for c, p in zip(self.columns, self.pieces)), const(0))

    def lookups(self) -> list[tuple[str, int]]:
        return [(c, s) for c, p in zip(self.columns, self.pieces) for s in p.shifts]

    def split(self, values: np.ndarray) -> dict[str, np.ndarray]:
        return {c: values >> p.lo & ((1 << p.width) - 1) for c, p in zip(self.columns, self.pieces)}


class RecordChecks:
    """The record-check block for an `ops` domain of `trace_length` rows
    (T', a power of two from MIN_ROWS to 2^MAX_LOG_OPS: the range table is
    [0, T'), which sets the pieces) and a book of 2^`log2_capacity` slots
    (1 .. MAX_LOG2_CAPACITY), living in a domain of `rows` rows (T' when not
    given; zk mode's `book` domain, zk_air.py), one operation a row.  The
    integrator adds ``columns`` to a segment, ``transitions(f)`` to its
    constraints and ``fractions()`` to its one LogUp sum, and has the block
    write its columns into the segment's matrix with :meth:`write`
    (:meth:`fill`: the same by name)."""

    inputs = INPUTS

    def __init__(self, trace_length: int, log2_capacity: int, rows: int | None = None):
        if isinstance(trace_length, bool) or not isinstance(trace_length, int) \
                or trace_length & (trace_length - 1) or not MIN_ROWS <= trace_length <= 1 << MAX_LOG_OPS:
            raise ValueError(f"the record checks take an ops trace of a power of two from {MIN_ROWS} to "
                             f"2^{MAX_LOG_OPS} rows (the ops domain's own limits), got {trace_length!r}")
        rows = trace_length if rows is None else rows
        if isinstance(rows, bool) or not isinstance(rows, int) or rows & (rows - 1) \
                or not MIN_ROWS <= rows <= 1 << MAX_LOG_OPS:
            raise ValueError(f"the record checks live in a domain of a power of two from {MIN_ROWS} to "
                             f"2^{MAX_LOG_OPS} rows, got {rows!r}")
        #: the rows of the domain the block lives in (one operation a row)
        self.rows = rows
        if isinstance(log2_capacity, bool) or not isinstance(log2_capacity, int) \
                or not 1 <= log2_capacity <= MAX_LOG2_CAPACITY:
            raise ValueError(f"the record checks take a capacity of 2^1 to 2^{MAX_LOG2_CAPACITY} slots "
                             f"(the slot bound is compared on 15-bit limbs), got 2^{log2_capacity!r}")
        self.trace_length, self.log2_capacity = trace_length, log2_capacity
        self.capacity = 1 << log2_capacity
        self.layout = lane_layout(trace_length)
        t = self.layout.log_rows
        #: every sub-field with pieces, by short name (and the sub-field itself)
        self.fields: dict[str, Ranged] = {}
        self._subfields = {}
        for sp in self.layout.subfields:
            if sp.pieces:
                short = SHORT[(sp.subfield.source, sp.subfield.lo)]
                self.fields[short] = Ranged.of(short, sp.pieces)
                self._subfields[short] = sp.subfield
        #: the comparison values: (needed bits, sound bits) each (docs: each one's argument)
        self.small_slot = log2_capacity <= 15
        cmp_bits = {"kcmp": (8, 30), "scmp": (8, 30), "pcmp": (30, 30), "qcmp": (30, 30),
                    "hcmp": (15, 30), "tsd": (15, 30)}
        self.comparisons = {name: Ranged.of(name, pieces_for(_cmp_width(need, sound, t), t, "range"))
                            for name, (need, sound) in cmp_bits.items()}
        slot_tests = (("rc_h1inv", "rc_h1nz") if self.small_slot else ()) + ("rc_hinv", "rc_hnz", "rc_hbig")
        #: the previous operation's timestamp pieces (row 0's: the integrator binds them to
        #: the pre-state's cells, or 0 when the stream resumed) and the last operation's
        #: (constant down the trace: bound to the post-state's cells)
        self.lpts = tuple(f"rc_lpts{j}" for j in range(5))
        self.lts = tuple(f"rc_lts{j}" for j in range(5))
        cols = [c for r in self.fields.values() for c in r.columns] + ["rc_reason", "rc_status"]
        cols += [f"rc_k{k}" for k in range(1, 8)] + ["rc_kz", "rc_kb"] + list(self.comparisons["kcmp"].columns)
        cols += ["rc_buy", "rc_sz", "rc_sb"] + list(self.comparisons["scmp"].columns)
        cols += ["rc_fbad", "rc_fhi"]
        cols += ["rc_pinv", "rc_pnz", "rc_pbig"] + list(self.comparisons["pcmp"].columns) + ["rc_pok"]
        cols += ["rc_qinv", "rc_qnz", "rc_qbig"] + list(self.comparisons["qcmp"].columns) + ["rc_qok"]
        cols += list(slot_tests) + list(self.comparisons["hcmp"].columns) + ["rc_hok1", "rc_hok"]
        cols += [f"rc_{r}" for r, _ in FIELD_REASONS[1:]]
        cols += [f"rc_op_{x}" for x in OP_ENTRIES] + [f"rc_out_{x}" for x in OUT_ENTRIES]
        cols += [f"rc_sig{k}" for k in range(1, 5)] + list(self.comparisons["tsd"].columns)
        cols += list(self.lpts) + list(self.lts)
        #: the columns the block owns, in its order
        self.columns: tuple[str, ...] = tuple(cols)
        if len(set(self.columns)) != len(self.columns):
            raise AssertionError("the record checks name a column twice")
        ranged = list(self.fields.values()) + list(self.comparisons.values())
        #: every range lookup: (column, shift), the value piece + shift in [0, T)
        self.lookups: tuple[tuple[str, int], ...] = tuple(lk for r in ranged for lk in r.lookups())
        #: the boolean columns: every 1-bit piece, a comparison value's as well as a
        #: sub-field's (a piece of 1 bit has no lookup: unconstrained, it would be free;
        #: none of a comparison's is at the shapes built, but _cmp_width does not promise it),
        #: and the block's own flags
        self.booleans: tuple[str, ...] = tuple(
            [col for r in ranged for col, p in zip(r.columns, r.pieces) if p.boolean]
            + [f"rc_k{k}" for k in range(1, 8)] + ["rc_kz", "rc_kb", "rc_buy", "rc_sz", "rc_sb",
                                                   "rc_pbig", "rc_qbig", "rc_hbig"]
            + [f"rc_sig{k}" for k in range(1, 5)])

    # ------------------------------------------------------ expressions --
    def _v(self, f: Frame, short: str) -> Expr:
        return self.fields[short].expr(f)

    def _value(self, f: Frame, name: str) -> Expr:
        """Bits 0-29 of the price, qty, handle slot or generation, from its
        two 15-bit limbs."""
        s = {"price": "p", "qty": "q", "slot": "h", "gen": "g"}[name]
        return self._v(f, f"{s}0") + self._v(f, f"{s}1") * LIMB

    def _ts(self, f: Frame) -> list[Expr]:
        """The timestamp's five pieces (TIMESTAMP_PIECE_BITS)."""
        top = sum((self._v(f, f"tb{60 + i}") * (1 << i) for i in range(4)), const(0))
        return [self._v(f, f"t{j}") for j in range(4)] + [top]

    def _element(self, f: Frame, k: int) -> Expr:
        """Data element k as OPERATION_LAYOUT packs it, from the columns."""
        acc = const(0)
        for sf in OPERATION_LAYOUT:
            if sf.element != k:
                continue
            short = SHORT[(sf.source, sf.lo)]
            part = f.cur(f"rc_{short}") if sf.exact == "tuple" else self._v(f, short)
            acc = acc + part * (1 << sf.offset)
        return acc

    # ------------------------------------------------------ constraints --
    def transitions(self, f: Frame) -> list[TransitionConstraint]:
        """Every constraint of the block (docs/ZK.md, 4.1 "The record-check
        block", names each family by the check of section 4 it
        replaces).  A relation of one row holds on every row, the last
        included (``every_row``); the timestamp chain and ``lts`` relate a
        row to the next."""
        c, n = f.cur, f.next
        out: list[TransitionConstraint] = []

        def row(name: str, expr: Expr) -> None:
            out.append(TransitionConstraint(f"record: {name}", expr, expr.degree, every_row=True))

        def step(name: str, expr: Expr) -> None:
            out.append(TransitionConstraint(f"record: {name}", expr, expr.degree))

        lo = c("lo")
        # ---- shape: nothing off the operation rows; booleans
        for col in self.columns:
            if col not in self.lts:
                row(f"{col} = 0 off the operation rows", (1 - lo) * c(col))
        for col in self.booleans:
            row(f"boolean {col}", c(col) * (1 - c(col)))

        # ---- check 1: the elements decode into exact sub-fields
        for k in range(DATA_ELEMENTS):
            if k not in (8, 9):
                row(f"check 1: e{k} is its sub-fields", lo * (c(f"e{k}") - self._element(f, k)))

        # ---- check 9: kind, one of 1..7, 0 (kz) or at least 8 (kb)
        ks = [c(f"rc_k{k}") for k in range(1, 8)]
        kind = self._v(f, "kind")
        row("check 9: one kind class", sum(ks, const(0)) + c("rc_kz") + c("rc_kb") - lo)
        row("check 9: kind = k", kind * (1 - c("rc_kb")) - sum((k * s for k, s in enumerate(ks, 1)), const(0)))
        row("check 9: kb -> kind - 8 in range", self.comparisons["kcmp"].expr(f) - c("rc_kb") * (kind - 8))
        new = sum(ks[:5], const(0))
        handled = ks[5] + ks[6]

        # ---- check 10: side 1 (buy), 2, 0 (sz) or at least 3 (sb)
        side = self._v(f, "side")
        row("check 10: a valid side is 2 - buy", (lo - c("rc_sz") - c("rc_sb")) * (side - 2 + c("rc_buy")))
        row("check 10: sz -> side = 0", c("rc_sz") * side)
        row("check 10: sb -> side - 3 in range", self.comparisons["scmp"].expr(f) - c("rc_sb") * (side - 3))
        row("check 10: buy only on a valid side", c("rc_buy") * (c("rc_sz") + c("rc_sb")))

        # ---- check 6: BAD_FLAGS iff fh != 0 (fbad, by its inverse fhi)
        fh = self._v(f, "fh")
        row("check 6: fh * fhi = fbad", fh * c("rc_fhi") - c("rc_fbad"))
        row("check 6: fh = 0 unless fbad", fh * (1 - c("rc_fbad")))
        row("check 6: fhi = 0 unless fbad", c("rc_fhi") * (1 - c("rc_fbad")))

        # ---- checks 7, 11: price and qty in 1 .. MAX (ok), by a zero test
        # and a 30-bit comparison with MAX = PROVABLE_MAX
        for x, name, top in (("p", "price", MAX_PRICE), ("q", "qty", MAX_QTY)):
            v, nz, big = self._value(f, name), c(f"rc_{x}nz"), c(f"rc_{x}big")
            row(f"check 11: {name} * inverse = nz", v * c(f"rc_{x}inv") - nz)
            row(f"check 11: {name} = 0 unless nz", v * (1 - nz))
            row(f"check 11: {name} inverse = 0 unless nz", c(f"rc_{x}inv") * (1 - nz))
            row(f"check 11: {name} comparison with MAX",
                self.comparisons[f"{x}cmp"].expr(f) - big * (v - top - 1) - (lo - big) * (top - v))
            row(f"check 11: {name} ok = nonzero, not above MAX, no top bit",
                c(f"rc_{x}ok") - (nz - big) * (1 - self._v(f, f"{x}b30")) * (1 - self._v(f, f"{x}b31")))

        # ---- check 8: the handle's slot in 1 .. capacity - 1, its
        # generation below 2^30 (hok), limb-wise
        cap = self.capacity
        slot, gen = self._value(f, "slot"), self._value(f, "gen")
        h0, h1 = self._v(f, "h0"), self._v(f, "h1")
        if self.small_slot:
            # slot < C <= 2^15 iff h1 = 0 and h0 < C: y = h0 + C [h1 != 0]
            row("check 8: h1 * inverse = h1nz", h1 * c("rc_h1inv") - c("rc_h1nz"))
            row("check 8: h1 = 0 unless h1nz", h1 * (1 - c("rc_h1nz")))
            row("check 8: h1 inverse = 0 unless h1nz", c("rc_h1inv") * (1 - c("rc_h1nz")))
            y = h0 + c("rc_h1nz") * cap
            bound, zero = cap, y
        else:
            # slot < C = B 2^15 iff h1 < B
            y, bound, zero = h1, cap >> 15, slot
        big = c("rc_hbig")
        row("check 8: slot * inverse = nz", zero * c("rc_hinv") - c("rc_hnz"))
        row("check 8: slot = 0 unless nz", zero * (1 - c("rc_hnz")))
        row("check 8: slot inverse = 0 unless nz", c("rc_hinv") * (1 - c("rc_hnz")))
        row("check 8: slot comparison with the capacity",
            self.comparisons["hcmp"].expr(f) - big * (y - bound) - (lo - big) * (bound - 1 - y))
        row("check 8: slot ok = nonzero, below the capacity, no top bit",
            c("rc_hok1") - (c("rc_hnz") - big) * (1 - self._v(f, "hb30")) * (1 - self._v(f, "hb31")))
        row("check 8: handle ok = slot ok, generation below 2^30",
            c("rc_hok") - c("rc_hok1") * (1 - self._v(f, "gb30")) * (1 - self._v(f, "gb31")))

        # ---- the reason is the first failing check, in classify_all's order
        r = {name: c(f"rc_{name}") for name, _ in FIELD_REASONS}
        alive = 1 - r["fbad"]
        row("first failing: BAD_QTY (REDUCE)", r["rqr"] - alive * ks[6] * (1 - c("rc_qok")))
        alive = alive - r["rqr"]
        row("first failing: UNKNOWN_HANDLE", r["rh"] - alive * handled * (1 - c("rc_hok")))
        alive = alive - r["rh"]
        row("first failing: BAD_KIND", r["rk"] - alive * (c("rc_kz") + c("rc_kb")))
        alive = alive - r["rk"]
        row("first failing: BAD_SIDE", r["rs"] - alive * new * (c("rc_sz") + c("rc_sb")))
        alive = alive - r["rs"]
        row("first failing: BAD_PRICE", r["rp"] - alive * (new - ks[2]) * (1 - c("rc_pok")))
        alive = alive - r["rp"]
        row("first failing: BAD_QTY (new order)", r["rq"] - alive * new * (1 - c("rc_qok")))
        rejected = sum(r.values(), const(0))
        live = lo - rejected

        # ---- check 12: a field rejection's outcome; check 13: its handle
        row("check 12: reason = the first failing check's",
            sum((r[name] * (c("rc_reason") - int(code)) for name, code in FIELD_REASONS), const(0)))
        row("check 12: rejected -> status REJECTED", rejected * (c("rc_status") - int(Status.REJECTED)))
        row("check 12: rejected -> filled 0", rejected * c("e8"))
        row("check 12: rejected -> trades 0", rejected * c("e9"))
        no_handle = r["rs"] + r["rp"] + r["rq"]
        row("check 13: rejected new order: slot 0",
            no_handle * (slot + self._v(f, "hb30") + self._v(f, "hb31")))
        row("check 13: rejected new order: generation 0",
            no_handle * (gen + self._v(f, "gb30") + self._v(f, "gb31")))
        # ---- check 15: a live new order's handle is two exact 30-bit values
        row("check 15: live new order: no handle top bit",
            live * new * sum((self._v(f, b) for b in ("hb30", "hb31", "gb30", "gb31")), const(0)))

        # ---- the op tuple (classify_all's effective fields, 0 if rejected)
        code = sum((EFFECTIVE_CODE[Kind(k)] * s for k, s in enumerate(ks, 1)), const(0))
        buy = c("rc_buy")
        market_lim = 1 + buy * (MAX_PRICE - 1)
        op = {"code": live * code,
              "buy": live * new * buy,
              "lim": live * ((new - ks[2]) * self._value(f, "price") + ks[2] * market_lim),
              "qty": live * (new + ks[6]) * self._value(f, "qty"),
              "hslot": live * handled * slot, "hgen": live * handled * gen,
              "alo": live * new * c("e10"), "ahi": live * new * c("e11")}
        for x in OP_ENTRIES:
            row(f"op tuple: {x}", c(f"rc_op_{x}") - op[x])
        # ---- the outcome tuple (the record's, 0 if rejected)
        outcome = {"status": live * c("rc_status"), "reason": live * c("rc_reason"),
                   "filled": live * c("e8"), "trades": live * c("e9"),
                   "slot": live * new * slot, "gen": live * new * gen}
        for x in OUT_ENTRIES:
            row(f"outcome tuple: {x}", c(f"rc_out_{x}") - outcome[x])

        # ---- checks 4 and 25: timestamps non-decreasing, as u64.  sig_k
        # marks the highest piece where ts and lpts differ (k = 1..4); none
        # set: pieces 1..4 equal, and piece 0 compared with "minus 0"
        ts, prev = self._ts(f), [c(col) for col in self.lpts]
        sig = [c(f"rc_sig{k}") for k in range(1, 5)]
        any_sig = sum(sig, const(0))
        row("check 4: at most one highest differing piece", any_sig * (1 - any_sig))
        for j in range(1, 5):
            above_or_at = sum(sig[j - 1:], const(0))
            row(f"check 4: piece {j} equal unless a piece at or above it differs",
                (lo - above_or_at) * (ts[j] - prev[j]))
        diff = sum((sig[k - 1] * (ts[k] - prev[k] - 1) for k in range(1, 5)), const(0)) \
            + (lo - any_sig) * (ts[0] - prev[0])
        row("check 4: the differing piece went up", self.comparisons["tsd"].expr(f) - diff)
        for j in range(5):
            step(f"check 4: lpts{j}' = this operation's piece {j}", n("lo") * (n(f"rc_lpts{j}") - ts[j]))
            step(f"check 25: lts{j} constant", n(f"rc_lts{j}") - c(f"rc_lts{j}"))
            step(f"check 25: lts{j} = the last operation's piece {j}",
                 lo * (1 - n("lo")) * (c(f"rc_lts{j}") - ts[j]))
            # every row may be an operation's (ops = rows): the last row's
            # operation is the last one, and no transition reaches it
            row(f"check 25: lts{j} = piece {j} of an operation on the last row",
                c("rl") * lo * (c(f"rc_lts{j}") - ts[j]))

        for con in out:
            if con.degree > CONSTRAINT_DEGREE:
                raise AssertionError(f"{con.name!r} has degree {con.degree} > {CONSTRAINT_DEGREE}")
        return out

    def fractions(self) -> list:
        """The block's LogUp fractions: every range lookup (multiplicity
        lo: none off the operation rows), then the op tuple and the outcome
        tuple, each supplied once per operation row."""
        fr = [logup.consume([TAG_RANGE, col if not s else lambda f, col=col, s=s: f.cur(col) + s], "lo")
              for col, s in self.lookups]
        fr.append(logup.supply([TAG_OP, "row"] + [f"rc_op_{x}" for x in OP_ENTRIES], "lo"))
        fr.append(logup.supply([TAG_OUT, "row"] + [f"rc_out_{x}" for x in OUT_ENTRIES], "lo"))
        return fr

    # ------------------------------------------------------------ witness --
    def fill(self, records: np.ndarray, rows: int | None = None, prev_ts: int = 0) -> dict[str, np.ndarray]:
        """The block's columns for these operation records (OP_DTYPE, with
        their outcomes) on rows 0 .. len(records) - 1: canonical uint32
        arrays of `rows` rows by column name (:meth:`write`'s, decoded).
        `prev_ts`: the last timestamp the pre-state carries (0 when the
        batch begins where its stream resumed); row 0's lpts holds its
        pieces.  `rows`, if given, must be the block's.  Errors as
        :meth:`write`'s."""
        if rows is not None and rows != self.rows:
            raise ValueError(f"these record checks are for {self.rows} rows, not {rows}")
        out = np.empty((self.rows, len(self.columns)), dtype=np.uint32)
        self.write(records, out, prev_ts)
        return dict(zip(self.columns, np.ascontiguousarray(F.decode(out).T)))

    def write(self, records: np.ndarray, out: np.ndarray, prev_ts: int = 0) -> np.ndarray:
        """Write the block's columns for these operation records into `out`
        (``(rows, len(columns))`` uint32, its columns contiguous: the
        block's place in its domain's matrix), Montgomery form, with the C builder
        (csrc/orderbook/record_checks.c, which follows :meth:`columns_of`),
        and return how often each value of the range table [0, T) is looked
        up (T int64: :meth:`range_counts` of the columns).  RecordError
        (naming the operation) for records no witness exists for, which the
        transparent verifier refuses too; zk_encoding.EncodingError outside
        the encoding's domain: on a refusal, columns_of names the fault."""
        if not isinstance(records, np.ndarray) or records.dtype != OP_DTYPE or records.ndim != 1:
            raise TypeError("operation records must be a 1-D array of OP_DTYPE")
        if not 1 <= len(records) <= self.rows:
            raise RecordError(f"{len(records)} operations for record checks of {self.rows} rows "
                              f"(at least one, one a row)")
        shape = (self.rows, len(self.columns))
        if not isinstance(out, np.ndarray) or out.dtype != np.uint32 or out.shape != shape \
                or out.strides[1] != 4 or out.strides[0] % 4 or out.strides[0] < 4 * shape[1] \
                or not out.flags.writeable:
            raise ValueError(f"the block's columns go to a writeable uint32 {shape} array with contiguous "
                             f"columns and rows apart (a row stride of at least {4 * shape[1]} bytes), not "
                             f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')} "
                             f"strides {getattr(out, 'strides', '')}")
        prev_ts = int(prev_ts)
        timestamp_pieces(prev_ts)            # ValueError for a timestamp that is no u64
        columns, lookups, codes = _plan(self)
        records = np.ascontiguousarray(records)
        counts = np.empty(self.trace_length, dtype=np.int64)
        # a strided view has no contiguous buffer to hand over: its address
        got = lib.zk_record_checks_fill(ffi.cast("uint32_t *", out.ctypes.data), out.strides[0] // 4,
                                        self.rows, self.trace_length, ffi.from_buffer(records), len(records),
                                        prev_ts,
                                        self.log2_capacity, ffi.from_buffer("int32_t[]", codes),
                                        ffi.from_buffer("zk_rc_column[]", columns), len(columns),
                                        ffi.from_buffer("zk_rc_lookup[]", lookups), len(lookups),
                                        ffi.from_buffer("int64_t[]", counts))
        if got == lib.ZK_RC_NO_MEMORY:
            raise MemoryError("the record-check builder's scratch memory")
        if got >= 0:
            _, why = self.columns_of(records, prev_ts)      # EncodingError outside the domain
            if why is None:
                raise AssertionError(f"the record-check builder refused operation {got}, which columns_of "
                                     "accepts: the two definitions disagree")
            raise RecordError(why)
        if got != -1:
            raise AssertionError(f"the record-check builder refused its plan ({got})")
        return counts

    def columns_of(self, records: np.ndarray, prev_ts: int = 0) -> tuple[dict[str, np.ndarray], str | None]:
        """The columns :meth:`fill` returns, and what is wrong with the
        records (None if nothing): the witness an honest prover builds
        from these records, whether or not it satisfies the constraints
        (tests build lies from it).  The readable definition, column by
        column: the C builder :meth:`write` uses follows it statement for
        statement, one record at a time (tests hold the two equal), and
        runs it only to name a refusal."""
        R, n = self.rows, len(records)
        el = encode_operations(records).astype(np.int64)
        raw: dict[str, np.ndarray] = {}
        sub: dict[str, np.ndarray] = {}
        for sp in self.layout.subfields:
            sf = sp.subfield
            if sf.exact == "tuple" and sf.element in (8, 9):
                continue
            short = SHORT[(sf.source, sf.lo)]
            sub[short] = el[:, sf.element] >> sf.offset & ((1 << sf.width) - 1)
            if short in self.fields:
                raw.update(self.fields[short].split(sub[short]))
        raw["rc_reason"], raw["rc_status"] = sub["reason"], sub["status"]
        one = lambda b: b.astype(np.int64)      # noqa: E731

        kind, side = sub["kind"], sub["side"]
        ks = [kind == k for k in range(1, 8)]
        for k, s in enumerate(ks, 1):
            raw[f"rc_k{k}"] = one(s)
        kz, kb = kind == 0, kind >= 8
        raw["rc_kz"], raw["rc_kb"] = one(kz), one(kb)
        raw.update(self.comparisons["kcmp"].split(np.where(kb, kind - 8, 0)))
        sz, sb, buy = side == 0, side >= 3, side == Side.BUY
        raw["rc_sz"], raw["rc_sb"], raw["rc_buy"] = one(sz), one(sb), one(buy)
        raw.update(self.comparisons["scmp"].split(np.where(sb, side - 3, 0)))
        fbad = sub["fh"] != 0
        raw["rc_fbad"], raw["rc_fhi"] = one(fbad), _inverse(sub["fh"])

        bits = {b: sub[b] == 1 for b in ("pb30", "pb31", "qb30", "qb31", "hb30", "hb31", "gb30", "gb31")}
        ok = {}
        for x, top in (("p", MAX_PRICE), ("q", MAX_QTY)):
            v = sub[f"{x}0"] + (sub[f"{x}1"] << 15)
            nz, big = v != 0, v > top
            raw[f"rc_{x}inv"], raw[f"rc_{x}nz"], raw[f"rc_{x}big"] = _inverse(v), one(nz), one(big)
            raw.update(self.comparisons[f"{x}cmp"].split(np.where(big, v - top - 1, top - v)))
            ok[x] = nz & ~big & ~bits[f"{x}b30"] & ~bits[f"{x}b31"]
            raw[f"rc_{x}ok"] = one(ok[x])
        h0, h1 = sub["h0"], sub["h1"]
        slot, gen = h0 + (h1 << 15), sub["g0"] + (sub["g1"] << 15)
        if self.small_slot:
            h1nz = h1 != 0
            raw["rc_h1inv"], raw["rc_h1nz"] = _inverse(h1), one(h1nz)
            y = h0 + self.capacity * h1nz
            bound, zero = self.capacity, y
        else:
            y, bound, zero = h1, self.capacity >> 15, slot
        hbig = y >= bound
        raw["rc_hinv"], raw["rc_hnz"], raw["rc_hbig"] = _inverse(zero), one(zero != 0), one(hbig)
        raw.update(self.comparisons["hcmp"].split(np.where(hbig, y - bound, bound - 1 - y)))
        hok1 = (zero != 0) & ~hbig & ~bits["hb30"] & ~bits["hb31"]
        hok = hok1 & ~bits["gb30"] & ~bits["gb31"]
        raw["rc_hok1"], raw["rc_hok"] = one(hok1), one(hok)

        new = ks[0] | ks[1] | ks[2] | ks[3] | ks[4]
        handled = ks[5] | ks[6]
        alive = ~fbad
        r = {"fbad": fbad}
        for name, cond in (("rqr", ks[6] & ~ok["q"]), ("rh", handled & ~hok), ("rk", kz | kb),
                           ("rs", new & (sz | sb)), ("rp", new & ~ks[2] & ~ok["p"]), ("rq", new & ~ok["q"])):
            r[name] = alive & cond
            alive = alive & ~r[name]
            raw[f"rc_{name}"] = one(r[name])
        live = alive
        reason = sum((np.where(r[name], int(code), 0) for name, code in FIELD_REASONS), np.zeros(n, np.int64))

        code = np.zeros(n, dtype=np.int64)
        for k, s in enumerate(ks, 1):
            code[s] = EFFECTIVE_CODE[Kind(k)]
        price, qty = sub["p0"] + (sub["p1"] << 15), sub["q0"] + (sub["q1"] << 15)
        lim = np.where(ks[2], np.where(buy, MAX_PRICE, 1), price)
        op = {"code": code, "buy": new & buy, "lim": np.where(new, lim, 0), "qty": np.where(new | ks[6], qty, 0),
              "hslot": np.where(handled, slot, 0), "hgen": np.where(handled, gen, 0),
              "alo": np.where(new, el[:, 10], 0), "ahi": np.where(new, el[:, 11], 0)}
        for x in OP_ENTRIES:
            raw[f"rc_op_{x}"] = np.where(live, op[x], 0)
        out = {"status": sub["status"], "reason": sub["reason"], "filled": el[:, 8], "trades": el[:, 9],
               "slot": np.where(new, slot, 0), "gen": np.where(new, gen, 0)}
        for x in OUT_ENTRIES:
            raw[f"rc_out_{x}"] = np.where(live, out[x], 0)

        # timestamps: this operation's pieces against the previous one's
        ts = np.stack([sub[f"t{j}"] for j in range(4)]
                      + [sum(sub[f"tb{60 + i}"] << i for i in range(4))], axis=1)
        prev = np.vstack([np.array([timestamp_pieces(prev_ts)], dtype=np.int64), ts[:-1]])
        differs = ts != prev
        # the highest differing piece, 0 when pieces 1..4 are all equal
        high = np.where(differs[:, 1:].any(axis=1), 4 - np.argmax(differs[:, :0:-1], axis=1), 0)
        for k in range(1, 5):
            raw[f"rc_sig{k}"] = one(high == k)
        at = np.arange(n)
        raw.update(self.comparisons["tsd"].split(
            np.where(high > 0, ts[at, high] - prev[at, high] - 1, ts[:, 0] - prev[:, 0]) % F.P))
        for j in range(5):
            raw[f"rc_lpts{j}"] = prev[:, j]

        cols = {name: np.zeros(R, dtype=np.uint32) for name in self.columns}
        for name, v in raw.items():
            cols[name][:n] = v % F.P
        for j in range(5):
            cols[f"rc_lts{j}"][:] = ts[-1, j]

        # what the transparent verifier would refuse (batch.check_public,
        # air.noncanonical), in its order
        u64 = records["ts_ns"]
        back = np.flatnonzero(np.r_[np.uint64(prev_ts) > u64[0], u64[1:] < u64[:-1]])
        why = None
        if back.size:
            why = f"operation {int(back[0])}: its timestamp goes back"
        rej = ~live
        wrong = rej & ((sub["status"] != Status.REJECTED) | (sub["reason"] != reason) | (el[:, 8] != 0)
                       | (el[:, 9] != 0))
        handle = (r["rs"] | r["rp"] | r["rq"]) & (records["handle"] != 0)
        handle64 = records["handle"].astype(np.uint64)
        outside = ((handle64 & np.uint64(0xFFFFFFFF)) >= np.uint64(self.capacity)) \
            | ((handle64 >> np.uint64(32)) >= np.uint64(1 << 30))
        own_outside = live & new & outside
        for bad, what in ((wrong, lambda i: f"its fields give {Reason(int(reason[i])).name}, its outcome is "
                                            f"status {int(sub['status'][i])} reason {int(sub['reason'][i])} "
                                            f"filled {int(el[i, 8])} trades {int(el[i, 9])}"),
                          (handle, lambda i: "a rejected order with a handle"),
                          (own_outside, lambda i: "an assigned handle outside the book")):
            if why is None and bad.any():
                i = int(np.argmax(bad))
                why = f"operation {i}: {what(i)}"
        return cols, why

    def range_values(self, columns: dict[str, np.ndarray], ops: int) -> np.ndarray:
        """Every value the block looks up in the range table, on operation
        rows 0 .. ops - 1 (int64): what the integrator counts into rm."""
        return np.concatenate([columns[col][:ops].astype(np.int64) + s for col, s in self.lookups])

    def range_counts(self, columns: dict[str, np.ndarray], ops: int) -> np.ndarray:
        """How often each table value v in [0, T) is looked up (T int64
        counts): the block's part of the multiplicity column rm.
        ValueError if a value lies outside the table (no proof closes)."""
        values = self.range_values(columns, ops)
        if values.size and (values.min() < 0 or values.max() >= self.trace_length):
            raise ValueError(f"a looked-up value outside the range table [0, {self.trace_length})")
        return np.bincount(values, minlength=self.trace_length)


#: the C builder's named values (csrc/orderbook/record_checks.c), by name
VALUES = {ffi.string(lib.zk_record_checks_value_name(i)).decode(): i
          for i in range(lib.zk_record_checks_value_count())}


def _plan(checks: RecordChecks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The C builder's plan for `checks` (zk_record_checks.h): each column's
    value and bits (COLUMN_DTYPE, in the block's column order), each range
    lookup (LOOKUP_DTYPE) and the op tuple's code of each record kind.  A
    sub-field's piece is bits of its record field, a comparison value's
    piece bits of that value; every other column rc_x is the whole value x."""
    bits = {}
    for short, r in checks.fields.items():
        sf = checks._subfields[short]
        bits.update({col: (sf.source, sf.lo + p.lo, p.width) for col, p in zip(r.columns, r.pieces)})
    for name, r in checks.comparisons.items():
        bits.update({col: (name, p.lo, p.width) for col, p in zip(r.columns, r.pieces)})
    plan = [bits.get(col, (col[len("rc_"):], 0, WHOLE)) for col in checks.columns]
    missing = sorted({v for v, _, _ in plan} - set(VALUES))
    if missing:
        raise AssertionError(f"values the C record-check builder does not compute: {missing}")
    columns = np.array([(VALUES[v], lo, width) for v, lo, width in plan], dtype=COLUMN_DTYPE)
    where = {col: j for j, col in enumerate(checks.columns)}
    lookups = np.array([(where[col], s) for col, s in checks.lookups], dtype=LOOKUP_DTYPE)
    codes = np.array([EFFECTIVE_CODE.get(k, 0) for k in range(lib.ZK_RC_KINDS)], dtype=np.int32)
    return columns, lookups, codes


def _inverse(values: np.ndarray) -> np.ndarray:
    """x^-1 mod p where x != 0, else 0 (the zero tests' witness)."""
    out = np.zeros(len(values), dtype=np.int64)
    nz = values != 0
    if nz.any():
        out[nz] = F.decode(F.inv(F.encode(values[nz] % F.P)))
    return out
