"""zk mode's record-check block (prover/orderbook/zk_record_checks.py;
docs/ZK.md, 4.1 "The record-check block").

The block is a component of the record lane, which is built elsewhere, so
these tests prove it inside a **test double of the lane** (`LaneDouble`
below): ops-domain-like rows with `row`, `lo`, e0..e11, the range table's
multiplicity column `rm` and the block's columns; the range table supplied
on `row`; the block's op and outcome tuples balanced against the tables
`air.public_tables` builds from the same records in transparent mode; and,
standing in for the lane's Poseidon2 leaves, a leaf table <7, i, e0..e11>
the verifier computes from the records (zk_encoding.encode_operations),
which binds the elements the way the published leaves will.  A proof of
the double therefore shows that the block's tuples are the transparent
classification of the committed records.

Cheap checks (no proof) evaluate every constraint and each row's LogUp
term on a witness with `Checker`, as tests/test_orderbook_review.py does
for the execution rows.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from format_docs import check_layout

from zksidecar.engine.records import MAX_PRICE, MAX_QTY, OP_DTYPE, TRADE_DTYPE, Kind, Reason, Side, Status
from zksidecar.prover import constraints as C
from zksidecar.prover import field as F
from zksidecar.prover import logup, params
from zksidecar.prover.air import Air, BoundaryConstraint, Frame, Segment, TransitionConstraint
from zksidecar.prover.expr import TRACE, const, evaluate
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.orderbook import air as air_mod
from zksidecar.prover.orderbook import zk_record_checks
from zksidecar.prover.native import ffi, lib
from zksidecar.prover.orderbook.zk_encoding import EncodingError, encode_operations
from zksidecar.prover.orderbook.zk_record_checks import (ELEMENTS, INPUTS, OP_ENTRIES, OUT_ENTRIES,
                                                         RecordChecks, RecordError, timestamp_pieces)
from zksidecar.prover.prove import ConstraintError, prove
from zksidecar.prover.verify import VerificationError, verify

P = F.P
TAG_LEAF = 7
OPTS = params.ProofOptions(log_blowup=1, num_queries=24, grinding_bits=0, fri_folding_factor=4,
                           fri_max_final_degree=4)
NO_TRADES = np.zeros(0, dtype=TRADE_DTYPE)


# ------------------------------------------------------------ the double --

class LaneDouble(Air):
    """Test double of the record lane: the block on rows holding `row`,
    `lo` and the records' elements, the range table supplied on `row`, and
    the verifier's side of the op, outcome and leaf tuples computed from
    the records (module docstring).  `prev_ts` and the last record's
    timestamp are public, standing in for the state cells the lane binds
    row 0's lpts and lts to."""

    #: alpha and the compression challenges of the leaf tuple (14 entries)
    num_challenges = 14
    derived_values = ("tables",)

    def __init__(self, trace_length: int, log2_capacity: int, records: np.ndarray, prev_ts: int = 0,
                 published: np.ndarray | None = None, last_ts: int | None = None):
        """`records`: what the execution processed (the op and outcome
        tables, public_tables's); `published`: the records whose leaves are
        published (the same, unless a lie says otherwise); `last_ts`: the
        post-state's last timestamp (the last record's unless a lie says
        otherwise)."""
        self.block = RecordChecks(trace_length, log2_capacity)
        published = records if published is None else published
        self.main_segments = (Segment("lane", INPUTS + ("rm",) + self.block.columns),)
        fr = [logup.supply([air_mod.TAG_RANGE, "row"], "rm")] + self.block.fractions() \
            + [logup.supply([TAG_LEAF, "row"] + list(ELEMENTS), "lo")]
        self.lu = logup.LogUp("lu", fr, alpha=0, beta=1, target=lambda f: f.derived("tables"))
        self.aux_columns = self.lu.columns
        self.lookup_arguments = (self.lu,)
        op_rows, out_rows, _ = air_mod.public_tables(records, NO_TRADES, 1 << log2_capacity, 0)
        n = len(published)
        leaves = np.column_stack([np.full(n, TAG_LEAF), np.arange(n), encode_operations(published)])
        self.tables = [op_rows, out_rows, leaves.astype(np.uint32)]
        last = int(published["ts_ns"][-1]) if last_ts is None else last_ts
        super().__init__(trace_length, {**{f"pre{j}": v for j, v in enumerate(timestamp_pieces(prev_ts))},
                                        **{f"last{j}": v for j, v in enumerate(timestamp_pieces(last))}})

    def derive(self, challenges):
        coeffs = self.lu.compression_coefficients(challenges, self.num_challenges)
        return {"tables": Ext.from_mont(air_mod._public_sum(self.tables, challenges[0], coeffs))}

    def transitions(self, f):
        c, n = f.cur, f.next
        TC = TransitionConstraint
        own = [TC("row' = row + 1", n("row") - c("row") - 1, 1),
               TC("lo boolean", c("lo") * (1 - c("lo")), 2),
               TC("lo only falls", n("lo") * (1 - c("lo")), 2),
               TC("rl = 0 off the last row", (c("row") - (self.trace_length - 1)) * c("rl"), 2, every_row=True)]
        return own + self.block.transitions(f) + self.lu.transitions(f)

    def boundaries(self, f):
        BC = BoundaryConstraint
        out = [BC("row[0] = 0", "row", 0, const(0)), BC("rl[-1] = 1", "rl", -1, const(1))]
        for j in range(5):
            out.append(BC(f"lpts{j}[0] = the pre-state's", self.block.lpts[j], 0, f.public(f"pre{j}")))
            out.append(BC(f"lts{j} = the post-state's", self.block.lts[j], 0, f.public(f"last{j}")))
        return out

    def build_aux(self, main, challenges):
        return logup.build_aux(self, [self.lu], main, challenges)


def columns(air: LaneDouble, records: np.ndarray, block: dict | None = None, prev_ts: int = 0) -> dict:
    """Every column of the double by name (canonical), the block's from
    `block` (fill's, or a lie built from it)."""
    T, n = air.trace_length, len(records)
    block = air.block.fill(records, prev_ts=prev_ts) if block is None else block
    out = {"row": np.arange(T, dtype=np.int64), "lo": (np.arange(T) < n).astype(np.int64),
           "rl": (np.arange(T) == T - 1).astype(np.int64)}
    el = encode_operations(records)
    for k, e in enumerate(ELEMENTS):
        out[e] = np.zeros(T, dtype=np.int64)
        out[e][:n] = el[:, k]
    out["rm"] = range_counts(air, block, n)
    out.update({k: v.astype(np.int64) for k, v in block.items()})
    return out


def range_counts(air, block, n):
    """rm: the block's lookups counted, as a prover would count them for
    its own witness (values outside the table dropped: nothing can supply
    them)."""
    v = air.block.range_values(block, n)
    v = v[(v >= 0) & (v < air.trace_length)]
    return np.bincount(v, minlength=air.trace_length)


def traces(air: LaneDouble, cols: dict) -> dict:
    names = air.main_segments[0].columns
    return {"lane": F.encode(np.column_stack([np.asarray(cols[c], dtype=np.int64) % P for c in names]))}


class Checker:
    """Every constraint of a LaneDouble on a witness, without proving: the
    transitions (LogUp's own excepted) and boundaries row by row, each
    row's LogUp term, and the total against the target, at fixed
    challenges."""

    def __init__(self, air: LaneDouble, seed: int = 1):
        self.air, self.T = air, air.trace_length
        self.challenges = F.encode(np.random.default_rng(seed).integers(0, P, (air.num_challenges, 4)))
        self.consts = air.constants(self.challenges)
        self.cons = [c for c in air.transition_constraints if not c.name.startswith("lu")]
        f = Frame(air)
        self.bounds = [(f.cur(b.column) - b.value, b.row % self.T) for b in air.boundary_constraints]
        self.target = air.derive(self.challenges)["tables"]

    def _algebra(self, cols: dict):
        """The witness's matrix and the algebra evaluating constraints on
        it (a next-row read is the column rolled by one)."""
        mats = traces(self.air, cols)["lane"]

        def source(key):
            if key[0] != TRACE:
                return self.consts(key)
            v = np.ascontiguousarray(mats[:, key[1]])
            return np.roll(v, -1) if key[2] else v

        return mats, C.ColumnAlgebra(self.T, source)

    def failing(self, cols: dict) -> tuple[list[str], np.ndarray, Ext]:
        """(names of failing constraints, each row's LogUp term (T, 4), the
        total)."""
        T, air = self.T, self.air
        mats, alg = self._algebra(cols)
        bad = []
        for con, v in zip(self.cons, evaluate([c.expr for c in self.cons], alg)):
            rows = C.as_column(v, T, isinstance(v, np.ndarray) and v.ndim == 2).reshape(T, -1).any(axis=1)
            if rows[:T if con.every_row else T - 1].any():
                bad.append(con.name)
        for (e, r), b in zip(self.bounds, air.boundary_constraints):
            if C.as_column(evaluate([e], alg)[0], T, False)[r]:
                bad.append(b.name)
        main = {c: np.ascontiguousarray(mats[:, j]) for j, c in enumerate(air.main_segments[0].columns)}
        groups = air.lu.group_sums(air, main, self.challenges)
        term = groups[0]
        for g in groups[1:]:
            term = F.add(term, g)
        total = Ext.from_mont((term.astype(np.uint64).sum(axis=0) % P).astype(np.uint32))
        return bad, term, total

    def bad_rows(self, cols: dict) -> np.ndarray:
        """The rows a failing constraint (LogUp's excepted) touches: its
        own, and the next for a transition reading it."""
        T = self.T
        _, alg = self._algebra(cols)
        bad = np.zeros(T, dtype=bool)
        for con, v in zip(self.cons, evaluate([c.expr for c in self.cons], alg)):
            rows = C.as_column(v, T, isinstance(v, np.ndarray) and v.ndim == 2).reshape(T, -1).any(axis=1)
            if not con.every_row:
                rows[T - 1] = False
                bad[1:] |= rows[:-1]
            bad |= rows
        return bad

    def holds(self, cols: dict) -> bool:
        bad, _, total = self.failing(cols)
        return not bad and total == self.target


# ------------------------------------------------------------- records --

def record(kind=Kind.LIMIT, side=Side.BUY, price=100, qty=5, handle=0, flags=0, account=7, ts=0,
           status=Status.RESTED, reason=0, filled=0, trades=0):
    r = np.zeros(1, dtype=OP_DTYPE)
    for k, v in dict(kind=kind, side=side, price=price, qty=qty, handle=handle, flags=flags,
                     account=account, ts_ns=ts, status=status, reason=reason, filled=filled,
                     trades=trades).items():
        r[k] = v
    return r


def completed(ops: np.ndarray, capacity: int) -> np.ndarray:
    """The records with outcomes the transparent verifier accepts: a field
    rejection's (REJECTED, its reason, nothing filled, and no handle for a
    new order rejected on side, price or qty), a live new order's handle
    inside the book; timestamps sorted."""
    ops = ops.copy()
    c = air_mod.classify_all(ops, capacity)
    rej = c["code"] == 0
    ops["status"] = np.where(rej, Status.REJECTED, ops["status"])
    ops["reason"] = np.where(rej, c["reason"], ops["reason"])
    ops["filled"] = np.where(rej, 0, ops["filled"])
    ops["trades"] = np.where(rej, 0, ops["trades"])
    kind = ops["kind"]
    new = np.isin(kind, [Kind.LIMIT, Kind.IOC, Kind.MARKET, Kind.FOK, Kind.POST_ONLY])
    no_handle = rej & new & np.isin(c["reason"], [Reason.BAD_SIDE, Reason.BAD_PRICE, Reason.BAD_QTY])
    h = ops["handle"]
    own = ~rej & new
    slot = (h & np.uint64(0xFFFFFFFF)) % np.uint64(capacity)
    gen = (h >> np.uint64(32)) % np.uint64(1 << 30)
    inside = slot | gen << np.uint64(32)
    ops["handle"] = np.where(no_handle, np.uint64(0), np.where(own, inside, h))
    ops["ts_ns"] = np.sort(ops["ts_ns"])
    return ops


#: values at and around every bound a check compares against
EDGES = {
    "kind": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 127, 255],
    "side": [0, 1, 2, 3, 4, 255],
    "price": [0, 1, 2, 1 << 15, (1 << 15) - 1, MAX_PRICE - 1, MAX_PRICE, MAX_PRICE + 1, (1 << 30) - 1,
              1 << 30, 1 << 31, (1 << 32) - 1],
    "flags": [0, 1, 2, 3, 4, 5, 0x8000, 0xFFFF],
    "gen": [0, 1, (1 << 30) - 1, 1 << 30, 1 << 31, (1 << 32) - 1],
}


def slot_edges(capacity: int) -> list[int]:
    return sorted({0, 1, 2, capacity - 1, capacity, capacity + 1, (1 << 15) - 1, 1 << 15, (1 << 15) + 1,
                   (1 << 30) - 1, 1 << 30, 1 << 31, (1 << 32) - 1} - {-1})


def adversarial(n: int, capacity: int, seed: int) -> np.ndarray:
    """n records whose fields are drawn from the edges (and at random),
    completed into records the transparent verifier accepts."""
    rng = np.random.default_rng(seed)
    ops = np.zeros(n, dtype=OP_DTYPE)

    def pick(values, bits):
        edge = rng.choice(np.array(values, dtype=np.uint64), n)
        rand = rng.integers(0, 1 << bits, n, dtype=np.uint64)
        return np.where(rng.random(n) < 0.7, edge, rand)

    ops["kind"] = pick(EDGES["kind"], 8)
    ops["side"] = pick(EDGES["side"], 8)
    ops["price"] = pick(EDGES["price"], 32)
    ops["qty"] = pick(EDGES["price"], 32)
    ops["flags"] = np.where(rng.random(n) < 0.8, 0, pick(EDGES["flags"], 16))
    ops["handle"] = pick(slot_edges(capacity), 32) | pick(EDGES["gen"], 32) << np.uint64(32)
    return with_outcomes(ops, capacity, rng)


def with_outcomes(ops: np.ndarray, capacity: int, rng) -> np.ndarray:
    """Random accounts, timestamps and outcomes of the kinds the execution
    gives, then completed()."""
    n = len(ops)
    ops["account"] = rng.integers(0, 1 << 32, n, dtype=np.uint64)
    ops["ts_ns"] = rng.integers(0, 1 << 64, n, dtype=np.uint64)
    ops["status"] = rng.integers(1, 7, n)
    ops["reason"] = rng.choice([0, 7, 8, 9, 10], n)
    ops["filled"] = rng.integers(0, MAX_QTY + 1, n)
    ops["trades"] = rng.integers(0, 1 << 14, n)
    ops["client_id"] = rng.integers(0, 1 << 63, n)
    return completed(ops, capacity)


def every_kind(capacity: int) -> np.ndarray:
    """Honest records of every kind and outcome, every field rejection
    (and which of two failing checks wins), and the bounds: price and qty
    MAX and MAX + 1, 0, top bits; slot capacity - 1, capacity, 2^15, top
    bits; generation 2^30 - 1 and 2^30; flags 3 and 4; kinds 0, 8, 9, 255;
    sides 0, 3, 255.  Timestamps equal, then increasing across every
    15-bit piece boundary and through the 4-bit top to 2^64 - 1."""
    B, S = Side.BUY, Side.SELL
    L, IOC, M, FOK, PO, CAN, RED = Kind.LIMIT, Kind.IOC, Kind.MARKET, Kind.FOK, Kind.POST_ONLY, \
        Kind.CANCEL, Kind.REDUCE
    hd = lambda slot, gen=0: slot | gen << 32          # noqa: E731
    R = Status.REJECTED
    live = [
        dict(kind=L, side=B, price=100, qty=5, handle=hd(3, 1), status=Status.RESTED),
        dict(kind=L, side=S, price=MAX_PRICE, qty=MAX_QTY, status=Status.FILLED, filled=MAX_QTY, trades=3),
        dict(kind=L, side=B, price=1, qty=1, flags=3, handle=hd(capacity - 1, (1 << 30) - 1),
             status=Status.RESTED),
        dict(kind=IOC, side=B, price=7, qty=9, status=Status.EXPIRED, filled=4, trades=1),
        dict(kind=M, side=B, price=0, qty=2, status=Status.FILLED, filled=2, trades=2),
        dict(kind=M, side=S, price=(1 << 32) - 1, qty=2, status=Status.EXPIRED),
        dict(kind=FOK, side=S, price=50, qty=40, status=R, reason=Reason.FOK_UNFILLABLE),
        dict(kind=PO, side=S, price=70, qty=2, status=R, reason=Reason.WOULD_CROSS),
        dict(kind=PO, side=B, price=60, qty=1, handle=hd(1), status=Status.RESTED),
        dict(kind=L, side=B, price=45, qty=5, status=R, reason=Reason.BOOK_FULL),
        dict(kind=CAN, side=0, price=0, qty=0, handle=hd(3, 1), status=Status.CANCELLED),
        dict(kind=CAN, side=255, price=1 << 31, qty=1 << 31, handle=hd(capacity - 1, (1 << 30) - 1),
             status=R, reason=Reason.STALE_HANDLE),
        dict(kind=RED, side=7, qty=MAX_QTY, handle=hd(1, 2), status=Status.REDUCED),
    ]
    rejected = [  # the record's fields alone reject it (completed() writes the outcome)
        dict(flags=4), dict(flags=0x8000, kind=CAN, handle=0), dict(flags=4, kind=9, price=0),
        dict(kind=RED, qty=0, handle=0), dict(kind=RED, qty=MAX_QTY + 1, handle=hd(3)),
        dict(kind=CAN, handle=0), dict(kind=CAN, handle=hd(capacity)), dict(kind=CAN, handle=hd(capacity + 1)),
        dict(kind=RED, qty=1, handle=hd(1 << 15)), dict(kind=CAN, handle=hd(1 << 20)),
        dict(kind=CAN, handle=hd(1 << 30)), dict(kind=CAN, handle=hd(1 << 31)),
        dict(kind=CAN, handle=hd((1 << 32) - 1)), dict(kind=CAN, handle=hd(3, 1 << 30)),
        dict(kind=RED, qty=3, handle=hd(3, 1 << 31)),
        dict(kind=0), dict(kind=8), dict(kind=9, side=0, price=0), dict(kind=255),
        dict(side=0), dict(kind=M, side=3, price=0), dict(kind=FOK, side=255, qty=0),
        dict(price=0), dict(kind=PO, price=MAX_PRICE + 1), dict(price=1 << 30), dict(kind=IOC, price=1 << 31),
        dict(price=(1 << 32) - 1, qty=0),
        dict(qty=0), dict(kind=M, price=0, qty=MAX_QTY + 1), dict(qty=1 << 30), dict(kind=FOK, qty=1 << 31),
    ]
    rows = [record(**r) for r in live]
    base = dict(kind=L, side=B, price=100, qty=5, handle=0)
    rows += [record(**{**base, **r}) for r in rejected]
    ops = np.concatenate(rows)
    ts = [5, 5, (1 << 15) - 1, 1 << 15, (1 << 30) - 1, 1 << 30, (1 << 45) - 1, 1 << 45, (1 << 60) - 1,
          1 << 60, (1 << 61) + 3, (1 << 63) + 1]
    ts += [ts[-1] + i // 2 for i in range(len(ops) - len(ts) - 1)] + [(1 << 64) - 1]
    ops["ts_ns"] = np.array(ts, dtype=np.uint64)
    ops["seq"] = np.arange(len(ops))
    out = completed(ops, capacity)
    assert (out["ts_ns"] == ops["ts_ns"]).all()
    return out


def test_every_kind_covers_every_field_reason():
    """The list above (the completeness scan's records) has every field
    rejection, every effective kind and both branches of MARKET."""
    for cap in (16, 1 << 20):
        c = air_mod.classify_all(every_kind(cap), cap)
        assert set(c["reason"].tolist()) == {0} | {int(r) for r in (
            Reason.BAD_FLAGS, Reason.BAD_QTY, Reason.UNKNOWN_HANDLE, Reason.BAD_KIND, Reason.BAD_SIDE,
            Reason.BAD_PRICE)}
        assert set(c["code"].tolist()) == {0, 1, 2, 4, 5, 6, 7}
        assert {MAX_PRICE, 1} <= set(c["lim"][every_kind(cap)["kind"] == Kind.MARKET].tolist())


# ------------------------------------------------------------- the block --

def test_the_interface():
    """Columns prefixed rc_ and apart from the execution's; inputs; every
    constraint of degree <= 3; fractions = lookups + the two tuples; the
    counts docs/ZK.md gives at 2^11, 2^15 and 2^16."""
    counts = {}
    for T, c in ((1 << 11, 10), (1 << 15, 14), (1 << 16, 14), (1 << 16, 16), (16, 1)):
        b = RecordChecks(T, c)
        assert all(col.startswith("rc_") for col in b.columns)
        assert not set(b.columns) & set(air_mod.exec_columns(T)) and not set(b.columns) & set(INPUTS)
        assert b.inputs == ("row", "lo", "rl") + tuple(f"e{k}" for k in range(12))
        air = LaneDouble(T, c, every_kind(1 << c)[: min(T - 1, 40)])
        cons = b.transitions(Frame(air))
        assert max(con.degree for con in cons) <= air_mod.CONSTRAINT_DEGREE
        assert len(b.fractions()) == len(b.lookups) + 2
        assert sum(1 for col, _ in b.lookups) >= b.layout.lookups    # every piece's lookups, and more
        counts[(T, c)] = (len(b.columns), len(b.fractions()))
    assert counts == {(1 << 11, 10): (125, 65), (1 << 15, 14): (106, 30), (1 << 16, 14): (106, 46),
                      (1 << 16, 16): (104, 46), (16, 1): (173, 111)}


def _unpinned_pieces(b: RecordChecks) -> list[str]:
    """The columns of `b`'s pieces (sub-fields' and comparison values')
    that have neither a range lookup nor a boolean constraint."""
    looked_up = {col for col, _ in b.lookups}
    return [col for r in list(b.fields.values()) + list(b.comparisons.values())
            for col, p in zip(r.columns, r.pieces)
            if col not in looked_up and not (p.width == 1 and col in b.booleans)]


def test_every_piece_is_looked_up_or_boolean_at_every_height():
    """Every piece of a sub-field or of a comparison value is range-looked-up
    or, of 1 bit, boolean: at every height the block takes (2^4 .. 2^20)
    and capacities at both handle branches' ends (review finding L4)."""
    for t in range(4, air_mod.MAX_LOG_OPS + 1):
        for c in (1, 15, 16, 30):
            assert _unpinned_pieces(RecordChecks(1 << t, c)) == [], (t, c)


def test_a_one_bit_comparison_piece_is_boolean(monkeypatch):
    """Were a comparison value one bit wider than a whole number of
    lookups, its top piece of 1 bit would have no lookup: the block makes
    it boolean (none is, at the shapes built: the sweep above)."""
    monkeypatch.setattr(zk_record_checks, "_cmp_width", lambda needed, sound, log_rows: log_rows + 1)
    b = RecordChecks(16, 1)
    assert b.comparisons["kcmp"].pieces[-1].width == 1 and _unpinned_pieces(b) == []
    names = {con.name for con in b.transitions(Frame(LaneDouble(16, 1, every_kind(2)[:15])))}
    assert {f"record: boolean rc_{x}_1" for x in b.comparisons} <= names


@pytest.mark.parametrize("T,c,match", [(8, 3, "power of two from 16"), (1 << 21, 3, "power of two from 16"),
                                       (100, 3, "power of two"), (64, 0, "capacity"), (64, 31, "capacity"),
                                       (64, True, "capacity"), (64.0, 3, "power of two")])
def test_refuses_a_shape_it_cannot_check(T, c, match):
    with pytest.raises(ValueError, match=match):
        RecordChecks(T, c)


# ---------------------------------------------------------- completeness --

def prove_and_verify(air: LaneDouble, cols: dict):
    res = prove(air, traces(air, cols), OPTS, debug=True)
    return verify(air, res.proof, min_security=0)


@pytest.mark.parametrize("T,c", [(64, 4), (64, 20), (1 << 15, 14)])
def test_honest_records_of_every_kind_prove_and_verify(T, c):
    """The completeness scan (docs/ZK.md, section 11): every kind, every
    field rejection, the bounds, on both slot branches (capacity at most
    2^15, and above) and at the production layout (2^15 rows: one piece a
    limb)."""
    ops = every_kind(1 << c)
    if T == 1 << 15:
        ops = np.concatenate([ops, adversarial(3000, 1 << c, seed=11)])
        ops["ts_ns"] = np.sort(ops["ts_ns"])
    air = LaneDouble(T, c, ops, prev_ts=3)
    prove_and_verify(air, columns(air, ops, prev_ts=3))


def test_a_short_lane_with_four_bit_pieces():
    """T' = 16: every 15-bit limb is four pieces, the bytes two."""
    ops = every_kind(4)
    for part in (ops[:15], ops[15:30], ops[30:45]):
        air = LaneDouble(16, 2, part, prev_ts=int(part["ts_ns"][0]))
        prove_and_verify(air, columns(air, part, prev_ts=int(part["ts_ns"][0])))


def random_live(n: int, capacity: int, seed: int) -> np.ndarray:
    """n records of valid kinds and fields with random outcomes (most of
    them live), completed."""
    rng = np.random.default_rng(seed)
    ops = np.zeros(n, dtype=OP_DTYPE)
    ops["kind"] = rng.integers(1, 8, n)
    ops["side"] = rng.integers(1, 3, n)
    ops["price"] = rng.integers(1, MAX_PRICE + 1, n)
    ops["qty"] = rng.integers(1, MAX_QTY + 1, n)
    ops["flags"] = rng.integers(0, 4, n)
    ops["handle"] = rng.integers(1, capacity, n, dtype=np.uint64) | \
        rng.integers(0, 1 << 30, n, dtype=np.uint64) << np.uint64(32)
    return with_outcomes(ops, capacity, rng)


@pytest.mark.parametrize("T,c", [(1 << 11, 10), (1 << 12, 1), (1 << 12, 15), (1 << 12, 16), (1 << 12, 30),
                                 (1 << 16, 14), (1 << 16, 24)])
def test_fill_agrees_with_the_transparent_classification(T, c):
    """Thousands of random and adversarial records (no proof): the tuples
    the block's columns carry are public_tables's op and outcome rows,
    entry for entry, and every constraint and the LogUp sum hold."""
    n = min(T - 1, 4000)
    ops = np.concatenate([adversarial(n - n // 3, 1 << c, seed=T + c), random_live(n // 3, 1 << c, seed=c)])
    ops["ts_ns"] = np.sort(ops["ts_ns"])
    air = LaneDouble(T, c, ops)
    block = air.block.fill(ops)
    op_rows, out_rows, _ = air_mod.public_tables(ops, NO_TRADES, 1 << c, 0)
    for j, x in enumerate(OP_ENTRIES, 2):
        assert (block[f"rc_op_{x}"][:n] == op_rows[:, j]).all(), x
    for j, x in enumerate(OUT_ENTRIES, 2):
        assert (block[f"rc_out_{x}"][:n] == out_rows[:, j]).all(), x
    reason = air_mod.classify_all(ops, 1 << c)["reason"]
    chain = sum(block[f"rc_{name}"][:n].astype(np.int64) * int(code)
                for name, code in (("fbad", 5), ("rqr", 4), ("rh", 6), ("rk", 1), ("rs", 2), ("rp", 3), ("rq", 4)))
    assert (chain == reason).all()
    assert Checker(air).holds(columns(air, ops, block))
    counts = air.block.range_counts(block, n)
    assert counts.sum() == n * len(air.block.lookups)


def test_fill_refuses_records_no_witness_exists_for():
    """What the transparent verifier refuses (check_public, noncanonical),
    fill refuses with the operation named; outside the encoding's domain,
    EncodingError; a wrong shape, a clear error."""
    block, ops = RecordChecks(64, 4), every_kind(16)

    def refused(edit, match, prev_ts=0, exc=RecordError):
        bad = ops.copy()
        edit(bad)
        with pytest.raises(exc, match=match):
            block.fill(bad, prev_ts=prev_ts)

    refused(lambda o: None, "operation 0: its timestamp goes back", prev_ts=6)
    refused(lambda o: o.__setitem__("ts_ns", o["ts_ns"][::-1].copy()), "operation 1: its timestamp goes back")
    first_rej = int(np.flatnonzero(air_mod.classify_all(ops, 16)["code"] == 0)[0])
    for field, value in (("status", Status.RESTED), ("reason", Reason.BAD_KIND), ("filled", 1), ("trades", 2)):
        refused(lambda o: o[field].__setitem__(first_rej, value), f"operation {first_rej}: its fields give")
    bad_price = int(np.flatnonzero(air_mod.classify_all(ops, 16)["reason"] == Reason.BAD_PRICE)[0])
    refused(lambda o: o["handle"].__setitem__(bad_price, 5), f"operation {bad_price}: a rejected order with a handle")
    refused(lambda o: o["handle"].__setitem__(0, 16), "operation 0: an assigned handle outside the book")
    refused(lambda o: o["handle"].__setitem__(0, 1 << 62), "operation 0: an assigned handle outside the book")
    refused(lambda o: o["status"].__setitem__(2, 9), "status = 9 is outside the encoding's domain",
            exc=EncodingError)
    many = np.concatenate([ops] * (64 // len(ops) + 1))[:65]
    many["ts_ns"] = np.sort(many["ts_ns"])
    with pytest.raises(RecordError, match="65 operations for record checks of 64 rows"):
        block.fill(many)
    with pytest.raises(RecordError, match="0 operations"):
        block.fill(ops[:0])
    with pytest.raises(TypeError, match="OP_DTYPE"):
        block.fill(ops.view(np.uint8))
    with pytest.raises(ValueError, match="for 64 rows, not 128"):
        block.fill(ops, 128)
    assert block.fill(ops, 64).keys() == set(block.columns)


# ------------------------------------------------------- the C builder --

def test_the_plan_structs_agree_with_c():
    """The builder's plan records (zk_record_checks.h) and their mirrors."""
    check_layout("zk_rc_column", zk_record_checks.COLUMN_DTYPE, ffi)
    check_layout("zk_rc_lookup", zk_record_checks.LOOKUP_DTYPE, ffi)


def test_every_value_the_builder_computes_is_some_columns():
    """The plan maps every column to a value the builder names, and the
    builder names none that no shape uses (both handle branches)."""
    used = {v for T, c in ((1 << 15, 14), (1 << 15, 20), (16, 1))
            for v in zk_record_checks._plan(RecordChecks(T, c))[0]["value"].tolist()}
    assert used == set(zk_record_checks.VALUES.values())


def perturbed(ops: np.ndarray, rng) -> np.ndarray:
    """`ops` with one field of about one record in twenty moved to where a
    refusal may lie: an outcome, a handle, a timestamp, a domain edge."""
    ops = ops.copy()
    for i in np.flatnonzero(rng.random(len(ops)) < 0.05):
        field, value = [("status", rng.integers(0, 9)), ("reason", rng.choice([0, 1, 4, 5, 6, 16])),
                        ("filled", rng.choice([0, 1, MAX_QTY + 1])), ("trades", rng.choice([0, 3])),
                        ("handle", rng.integers(0, 1 << 64, dtype=np.uint64)),
                        ("ts_ns", rng.integers(0, 1 << 64, dtype=np.uint64))][rng.integers(0, 6)]
        ops[field][i] = value
    return ops


@pytest.mark.parametrize("T,c", [(16, 1), (64, 4), (1 << 11, 10), (1 << 12, 15), (1 << 12, 16),
                                 (1 << 13, 30), (1 << 15, 14)])
def test_the_c_builder_is_columns_of(T, c):
    """The C builder (write, and fill through it) against the readable
    definition (columns_of) on random and adversarial records, honest and
    perturbed: the same columns, Montgomery as written, the same range
    counts as range_counts of columns_of's, and a refusal exactly where
    columns_of finds a fault, with its message (EncodingError outside the
    domain)."""
    rng = np.random.default_rng(T + c)
    block = RecordChecks(T, c)
    n = min(T - 1, 3000)
    honest = np.concatenate([adversarial(n - n // 3, 1 << c, seed=T + c), random_live(n // 3, 1 << c, seed=c)])
    honest["ts_ns"] = np.sort(honest["ts_ns"])
    whole = honest[rng.permutation(n)] if T == 16 else honest      # timestamps back: refused
    m = min(n, 15)
    batches = [(whole, int(whole["ts_ns"][0]))] + [(perturbed(honest[j:j + m], rng), int(rng.integers(0, 2)))
                                                   for j in rng.integers(0, n - m + 1, 40)]
    refusals = 0
    for ops, prev_ts in batches:
        try:
            want, why = block.columns_of(ops, prev_ts)
        except EncodingError as exc:
            with pytest.raises(EncodingError, match=re.escape(str(exc))):
                block.fill(ops, prev_ts=prev_ts)
            refusals += 1
            continue
        if why is not None:
            with pytest.raises(RecordError, match=re.escape(why)):
                block.fill(ops, prev_ts=prev_ts)
            refusals += 1
            continue
        out = np.empty((T, len(block.columns)), dtype=np.uint32)
        counts = block.write(ops, out, prev_ts)
        canonical = np.column_stack([want[col] for col in block.columns])
        assert np.array_equal(out, F.encode(canonical))
        assert np.array_equal(counts, block.range_counts(want, len(ops)))
    assert 0 < refusals < len(batches)


def test_the_c_builder_refuses_a_plan_it_cannot_follow():
    """A column of no value, wider than 64 bits or past bit 63, an inverse
    taken in part, a lookup of a column too wide for the table or shifted
    past it, a shape out of range: ZK_RC_BAD_PLAN, nothing refused by
    operation."""
    block = RecordChecks(64, 4)
    ops = every_kind(16)[:40]
    good_columns, good_lookups, codes = zk_record_checks._plan(block)
    inverse = int(np.flatnonzero(good_columns["value"] == zk_record_checks.VALUES["pinv"])[0])
    piece = good_lookups["column"][0]

    def run(columns=good_columns, lookups=good_lookups, T=64, n=len(ops), log2_capacity=4, rows=64):
        out = np.empty((64, len(columns)), dtype=np.uint32)
        counts = np.empty(64, dtype=np.int64)
        return lib.zk_record_checks_fill(ffi.from_buffer("uint32_t[]", out), len(columns), rows, T,
                                         ffi.from_buffer(ops),
                                         n, 0, log2_capacity, ffi.from_buffer("int32_t[]", codes),
                                         ffi.from_buffer("zk_rc_column[]", columns), len(columns),
                                         ffi.from_buffer("zk_rc_lookup[]", lookups), len(lookups),
                                         ffi.from_buffer("int64_t[]", counts))

    assert run() == -1

    def column(j, **edit):
        c = good_columns.copy()
        for k, v in edit.items():
            c[k][j] = v
        return c

    def lookup(**edit):
        lk = good_lookups.copy()
        for k, v in edit.items():
            lk[k][0] = v
        return lk

    for bad in (dict(columns=column(0, value=len(zk_record_checks.VALUES))), dict(columns=column(0, value=-1)),
                dict(columns=column(0, width=65)), dict(columns=column(0, width=0)),
                dict(columns=column(0, lo=60, width=8)), dict(columns=column(inverse, width=30)),
                dict(columns=column(piece, width=7)), dict(lookups=lookup(shift=64 - 15)),
                dict(lookups=lookup(column=len(good_columns))), dict(lookups=lookup(shift=-1)),
                dict(T=48), dict(rows=48), dict(rows=32, n=33), dict(n=0), dict(log2_capacity=31)):
        assert run(**bad) == lib.ZK_RC_BAD_PLAN, bad


def test_write_takes_the_blocks_place_in_a_matrix():
    """write fills a block of columns of a wider matrix (the lane's), and
    nothing beside it; a place of the wrong shape, type or layout is refused
    by name."""
    block, ops = RecordChecks(64, 4), every_kind(16)
    wide = np.full((64, len(block.columns) + 7), 0xFFFFFFFF, dtype=np.uint32)
    block.write(ops, wide[:, 3:3 + len(block.columns)])
    assert (wide[:, :3] == 0xFFFFFFFF).all() and (wide[:, -4:] == 0xFFFFFFFF).all()
    assert np.array_equal(F.decode(np.ascontiguousarray(wide[:, 3:-4])),
                          np.column_stack([block.fill(ops)[c] for c in block.columns]))
    k = len(block.columns)
    for out in (np.empty((64, k + 1), np.uint32), np.empty((64, k), np.int64), np.empty((k, 64), np.uint32).T,
                None, np.empty((64, k), np.uint32)[::-1],                  # rows backwards: a negative stride
                np.lib.stride_tricks.as_strided(np.empty(64 + k, np.uint32), (64, k), (4, 4))):   # rows overlap
        with pytest.raises(ValueError, match="contiguous columns"):
            block.write(ops, out)


# ------------------------------------------------------------------ lies --

T_LIE, C_LIE = 64, 4


def honest_prefix(k: int = 12) -> np.ndarray:
    return every_kind(1 << C_LIE)[:k]


def batch_of(*recs) -> np.ndarray:
    """Honest operations, then `recs` (one record each), timestamps
    non-decreasing."""
    ops = np.concatenate([honest_prefix()] + list(recs))
    ops["ts_ns"][len(ops) - len(recs):] = ops["ts_ns"][len(ops) - len(recs) - 1]
    return ops


def set_value(block: dict, ranged, row: int, value: int) -> None:
    """Write `value` into a ranged value's pieces on `row` as a lying
    prover would: the lower pieces at their widths, the top piece holding
    whatever is left (in range or not), so the value's own constraint
    holds and only its lookups can fail."""
    value %= P
    for j, (col, piece) in enumerate(zip(ranged.columns, ranged.pieces)):
        last = j == len(ranged.pieces) - 1
        block[col][row] = (value >> piece.lo) % P if last else value >> piece.lo & ((1 << piece.width) - 1)


def refused(air: LaneDouble, published: np.ndarray, block: dict, *, end_to_end: bool = False,
            prev_ts: int = 0, by: str | None = None) -> None:
    """The lie is refused: some constraint fails or the LogUp total misses
    its target (by="constraint" or "sum" says which must catch it); end to
    end, the debug check refuses to prove it and a proof forced past it
    does not verify."""
    cols = columns(air, published, block, prev_ts)
    bad, _, total = Checker(air).failing(cols)
    assert bad or total != Checker(air).target, "the lie holds"
    if by == "constraint":
        assert bad, "no constraint catches the lie"
    if by == "sum":
        assert not bad and total != Checker(air).target, f"expected the sum alone to catch it: {bad}"
    if end_to_end:
        with pytest.raises(ConstraintError):
            prove(air, traces(air, cols), OPTS, debug=True)
        proof = prove(air, traces(air, cols), OPTS).proof
        with pytest.raises(VerificationError):
            verify(air, proof, min_security=0)


def witness_of(air: LaneDouble, recs: np.ndarray, prev_ts: int = 0) -> dict:
    """The block's witness an honest prover builds from `recs` (refused
    records too): where a lie starts."""
    return {k: v.astype(np.int64) for k, v in air.block.columns_of(recs, prev_ts)[0].items()}


def test_the_honest_witness_of_the_lie_harness_holds():
    """The harness can accept: the witness of honest records, through
    the same path the lies take, holds."""
    ops = batch_of(record(flags=4, price=0, status=Status.REJECTED, reason=Reason.BAD_FLAGS))
    air = LaneDouble(T_LIE, C_LIE, ops)
    assert Checker(air).holds(columns(air, ops, witness_of(air, ops)))


def test_a_wrong_reason_and_a_later_reason_than_the_first():
    """Check 12 and the first-failing chain: a record with bad flags and a
    zero price is BAD_FLAGS.  Published as BAD_PRICE, it is refused
    whether the witness keeps the true chain (reason = its code fails),
    drops fbad (fh = 0 unless fbad fails) or sets the later reason beside
    it (the chain fails)."""
    truth = record(flags=4, price=0, status=Status.REJECTED, reason=Reason.BAD_FLAGS)
    lie = record(flags=4, price=0, status=Status.REJECTED, reason=Reason.BAD_PRICE)
    ops = batch_of(lie)
    i = len(ops) - 1
    air = LaneDouble(T_LIE, C_LIE, batch_of(truth), published=ops)
    refused(air, ops, witness_of(air, ops), by="constraint", end_to_end=True)
    w = witness_of(air, ops)
    w["rc_fbad"][i] = w["rc_fhi"][i] = 0
    w["rc_rp"][i] = 1
    refused(air, ops, w, by="constraint")
    w = witness_of(air, ops)
    w["rc_rp"][i] = 1
    refused(air, ops, w, by="constraint")
    # REDUCE with qty 0 and slot 0 is BAD_QTY, not UNKNOWN_HANDLE
    lie = record(kind=Kind.REDUCE, qty=0, handle=0, status=Status.REJECTED, reason=Reason.UNKNOWN_HANDLE)
    ops = batch_of(lie)
    air = LaneDouble(T_LIE, C_LIE, ops)
    w = witness_of(air, ops)
    w["rc_qnz"][i], w["rc_qok"][i], w["rc_rqr"][i], w["rc_rh"][i] = 1, 1, 0, 1
    refused(air, ops, w, by="constraint", end_to_end=True)


def test_a_valid_kind_claimed_for_kind_9():
    """Check 9: a record of kind 9 processed as a LIMIT (the execution
    consumed a LIMIT's op tuple): its kind byte 9 with the one-hot on 1
    fails "kind = k"; with kb beside it, "one kind class"; the byte
    claimed 1, e7 no longer decomposes."""
    published = record(kind=9, price=100, qty=5, handle=3, status=Status.RESTED)
    processed = record(kind=Kind.LIMIT, price=100, qty=5, handle=3, status=Status.RESTED)
    ops, done = batch_of(published), batch_of(processed)
    i = len(ops) - 1
    air = LaneDouble(T_LIE, C_LIE, done, published=ops)
    w = witness_of(air, done)
    set_value(w, air.block.fields["kind"], i, 9)
    refused(air, ops, w, by="constraint", end_to_end=True)
    w["rc_kb"][i] = 1
    set_value(w, air.block.comparisons["kcmp"], i, 1)
    refused(air, ops, w, by="constraint")
    refused(air, ops, witness_of(air, done), by="constraint")


def test_side_256_beside_kind_minus_one():
    """Review finding 2a: e7 of a LIMIT/BUY read as kind 0 and side 257
    decomposes, and the witness classifies it BAD_KIND with every
    constraint holding; only the side byte's range lookups refuse it."""
    published = record(kind=Kind.LIMIT, side=Side.BUY, status=Status.REJECTED, reason=Reason.BAD_KIND)
    processed = record(kind=0, side=Side.BUY, status=Status.REJECTED, reason=Reason.BAD_KIND)
    ops, done = batch_of(published), batch_of(processed)
    i = len(ops) - 1
    air = LaneDouble(T_LIE, C_LIE, done, published=ops)
    w = witness_of(air, done)
    set_value(w, air.block.fields["side"], i, 257)
    w["rc_buy"][i], w["rc_sb"][i] = 0, 1
    set_value(w, air.block.comparisons["scmp"], i, 254)
    refused(air, ops, w, by="sum", end_to_end=True)


def test_a_piece_out_of_range():
    """A limb's low piece carries 2^t (its neighbour one less): the element
    still decomposes and every constraint holds; the range table refuses
    the piece (at 64 rows, and a 15-bit limb of 2^15 at 2^15 rows: a
    price, and a timestamp, whose pieces the next row's lpts repeats)."""
    ops = every_kind(16)
    air = LaneDouble(T_LIE, C_LIE, ops)
    w = witness_of(air, ops)
    p0 = air.block.fields["p0"].columns
    row = int(np.flatnonzero(w[p0[1]] > 0)[0])
    w[p0[0]][row] += T_LIE
    w[p0[1]][row] -= 1
    refused(air, ops, w, by="sum", end_to_end=True)
    with pytest.raises(ValueError, match=r"outside the range table \[0, 64\)"):
        air.block.range_counts(w, len(ops))

    ops = every_kind(1 << 14)
    air = LaneDouble(1 << 15, 14, ops)
    for a, b in (("rc_p0", "rc_p1"), ("rc_t0", "rc_t1")):
        w = witness_of(air, ops)
        row = int(np.flatnonzero(w[b][: len(ops)] > 0)[0])
        w[a][row] += 1 << 15
        w[b][row] -= 1
        # a timestamp's pieces are also the next row's lpts and compared
        refused(air, ops, w, by="sum" if a == "rc_p0" else None)


def test_a_boolean_of_two():
    """An e6 bit of 2 beside its neighbour one less keeps e6 and fails its
    boolean constraint."""
    ops = every_kind(16)
    air = LaneDouble(T_LIE, C_LIE, ops)
    w = witness_of(air, ops)
    row = int(np.flatnonzero(w["rc_tb61"][: len(ops)] == 1)[0])
    w["rc_tb60"][row] += 2
    w["rc_tb61"][row] -= 1
    refused(air, ops, w, by="constraint")


def test_price_and_handle_bounds_cannot_be_moved():
    """Checks 8 and 11: a valid LIMIT at MAX_PRICE proven BAD_PRICE, and a
    valid CANCEL of slot capacity - 1 proven UNKNOWN_HANDLE, need a
    comparison of -1 (only the range table refuses them); a CANCEL of slot
    2^20 proven valid needs h1 = 0 or its comparison negative."""
    published = record(price=MAX_PRICE, status=Status.REJECTED, reason=Reason.BAD_PRICE)
    processed = record(price=MAX_PRICE, kind=0, status=Status.REJECTED, reason=Reason.BAD_KIND)
    ops, done = batch_of(published), batch_of(processed)
    i = len(ops) - 1
    air = LaneDouble(T_LIE, C_LIE, done, published=ops)
    w = witness_of(air, ops)
    w["rc_pbig"][i], w["rc_pok"][i], w["rc_rp"][i], w["rc_reason"][i] = 1, 0, 1, Reason.BAD_PRICE
    for x in ("code", "buy", "lim", "qty", "alo", "ahi"):
        w[f"rc_op_{x}"][i] = 0
    for x in OUT_ENTRIES:
        w[f"rc_out_{x}"][i] = 0
    set_value(w, air.block.comparisons["pcmp"], i, -1)
    refused(air, ops, w, by="sum", end_to_end=True)

    cancel = dict(kind=Kind.CANCEL, handle=15 | 1 << 32)
    published = record(**cancel, status=Status.REJECTED, reason=Reason.UNKNOWN_HANDLE)
    processed = record(**{**cancel, "kind": 0}, status=Status.REJECTED, reason=Reason.BAD_KIND)
    ops, done = batch_of(published), batch_of(processed)
    air = LaneDouble(T_LIE, C_LIE, done, published=ops)
    w = witness_of(air, ops)
    w["rc_hbig"][i], w["rc_hok1"][i], w["rc_hok"][i], w["rc_rh"][i] = 1, 0, 0, 1
    w["rc_reason"][i] = Reason.UNKNOWN_HANDLE
    for x in OP_ENTRIES + OUT_ENTRIES:
        w[f"rc_{'op' if x in OP_ENTRIES else 'out'}_{x}"][i] = 0
    set_value(w, air.block.comparisons["hcmp"], i, -1)
    refused(air, ops, w, by="sum")

    ops = batch_of(record(kind=Kind.CANCEL, handle=1 << 20, status=Status.CANCELLED))
    air = LaneDouble(T_LIE, C_LIE, ops)
    w = witness_of(air, ops)
    w["rc_h1nz"][i] = w["rc_h1inv"][i] = 0
    refused(air, ops, w, by="constraint")


def test_status_and_reason_moved_inside_e7():
    """e7 = ... + 2^16 reason + 2^20 status also reads as (reason + 16,
    status - 1): every constraint holds, and the outcome tuple no longer
    matches the execution's."""
    ops = batch_of(record(status=Status.FILLED, reason=0, filled=5, trades=1))
    i = len(ops) - 1
    air = LaneDouble(T_LIE, C_LIE, ops)
    w = witness_of(air, ops)
    w["rc_reason"][i] += 16
    w["rc_status"][i] -= 1
    w["rc_out_reason"][i] += 16
    w["rc_out_status"][i] -= 1
    refused(air, ops, w, by="sum", end_to_end=True)


@pytest.mark.parametrize("entry", ["lim", "qty", "alo", "code"])
def test_an_op_tuple_entry_changed(entry):
    """The op tuple: a MARKET buy's limit one below MAX_PRICE, or another
    entry moved, fails its defining constraint; a witness that keeps the
    constraint instead unbalances the sum (the execution consumes the
    true tuple)."""
    ops = every_kind(16)
    air = LaneDouble(T_LIE, C_LIE, ops)
    w = witness_of(air, ops)
    row = 4                                     # the MARKET buy
    assert w["rc_op_lim"][row] == MAX_PRICE
    w[f"rc_op_{entry}"][row] -= 1
    refused(air, ops, w, by="constraint", end_to_end=entry == "lim")


def test_handles_of_rejected_and_live_new_orders():
    """Check 13: a BAD_PRICE order published with a handle.  Check 15
    (review finding 2e): a rested order whose generation has top bits 10
    is og + 2^31 as a u32 but og as its 30-bit parts, which is what the
    execution's REST wrote; only the top-bit pin refuses it."""
    ops = batch_of(record(price=0, handle=5, status=Status.REJECTED, reason=Reason.BAD_PRICE))
    air = LaneDouble(T_LIE, C_LIE, ops)
    refused(air, ops, witness_of(air, ops), by="constraint", end_to_end=True)

    rested = dict(kind=Kind.LIMIT, price=100, qty=5, status=Status.RESTED)
    done = batch_of(record(**rested, handle=3 | 7 << 32))
    ops = batch_of(record(**rested, handle=3 | (7 | 1 << 31) << 32))
    air = LaneDouble(T_LIE, C_LIE, done, published=ops)
    cols = columns(air, ops, witness_of(air, ops))
    bad, _, total = Checker(air).failing(cols)
    assert bad == ["record: check 15: live new order: no handle top bit"] and total == Checker(air).target


def test_a_rejection_that_filled_or_traded():
    for field in ("filled", "trades"):
        ops = batch_of(record(kind=0, status=Status.REJECTED, reason=Reason.BAD_KIND, **{field: 5}))
        air = LaneDouble(T_LIE, C_LIE, ops)
        refused(air, ops, witness_of(air, ops), by="constraint", end_to_end=field == "filled")


def _ts_lie(air: LaneDouble, ops: np.ndarray, row: int, choice: int, prev_ts: int = 0) -> dict:
    """The witness of `ops` with row's highest differing piece claimed to
    be `choice` (0: none), the comparison written as a lying prover would
    (set_value)."""
    w = witness_of(air, ops, prev_ts)
    ts = timestamp_pieces(int(ops["ts_ns"][row]))
    prev = timestamp_pieces(int(ops["ts_ns"][row - 1]) if row else prev_ts)
    for k in range(1, 5):
        w[f"rc_sig{k}"][row] = int(k == choice)
    diff = ts[choice] - prev[choice] - 1 if choice else ts[0] - prev[0]
    set_value(w, air.block.comparisons["tsd"], row, diff)
    return w


@pytest.mark.parametrize("piece", range(5))
def test_a_timestamp_back_by_one_in_any_piece(piece):
    """Check 4: a timestamp one unit of piece j below the previous one
    (across every piece, the 4-bit top included) is refused whichever
    piece the witness claims differs highest; end to end for one claim."""
    base = (5 << 60) | (6 << 45) | (7 << 30) | (8 << 15) | 9
    ops = batch_of(record(), record())
    ops["ts_ns"][-2], ops["ts_ns"][-1] = base, base - (1 << 15 * piece)
    row = len(ops) - 1
    air = LaneDouble(T_LIE, C_LIE, ops)
    for choice in range(5):
        refused(air, ops, _ts_lie(air, ops, row, choice), end_to_end=choice == piece)


def test_timestamps_wrapping_and_against_the_pre_state():
    """2^64 - 1 then 0 is refused; so is a first operation before the
    pre-state's last timestamp (row 0's lpts, which the lane binds to the
    pre-state), and two selectors at once."""
    ops = batch_of(record(), record())
    ops["ts_ns"][-2], ops["ts_ns"][-1] = (1 << 64) - 1, 0
    air = LaneDouble(T_LIE, C_LIE, ops)
    for choice in range(5):
        refused(air, ops, _ts_lie(air, ops, len(ops) - 1, choice))
    ops = honest_prefix()
    prev = int(ops["ts_ns"][0]) + 1
    air = LaneDouble(T_LIE, C_LIE, ops, prev_ts=prev)
    for choice in range(5):
        refused(air, ops, _ts_lie(air, ops, 0, choice, prev_ts=prev), prev_ts=prev,
                end_to_end=choice == 0)
    ops = every_kind(16)
    air = LaneDouble(T_LIE, C_LIE, ops)
    w = witness_of(air, ops)
    row = int(np.flatnonzero(w["rc_sig2"][: len(ops)] == 1)[0])
    w["rc_sig1"][row] = 1
    refused(air, ops, w, by="constraint")


def refused_with_the_timestamp_before_the_last(ops: np.ndarray) -> None:
    """A post-state carrying the timestamp of the operation before the
    last (lts constant at it) is refused, by a constraint and end to end."""
    earlier = int(ops["ts_ns"][-2])
    air = LaneDouble(T_LIE, C_LIE, ops, last_ts=earlier)
    w = witness_of(air, ops)
    for j, v in enumerate(timestamp_pieces(earlier)):
        w[f"rc_lts{j}"][:] = v
    refused(air, ops, w, by="constraint", end_to_end=True)


def test_the_last_timestamp_is_the_last_operations():
    """Check 25: lts, bound to the post-state's cells, must be the last
    operation's timestamp: a post-state carrying an earlier one (lts
    constant at it) is refused; so is lts changing down the trace."""
    ops = every_kind(16)
    refused_with_the_timestamp_before_the_last(ops)
    air = LaneDouble(T_LIE, C_LIE, ops)
    w = witness_of(air, ops)
    w["rc_lts4"][len(ops):] = 0
    refused(air, ops, w, by="constraint")


def test_an_operation_on_the_last_row_binds_lts_too():
    """One operation a row on every row (the book domain takes as many
    operations as it has rows): no transition reaches the last row, whose
    operation is the last, so lts is bound to it by the every-row rule on
    rl.  Honest records prove; a post-state carrying the timestamp before
    the last one is refused, by a constraint and end to end."""
    ops = np.concatenate([every_kind(1 << C_LIE)] * 2)[:T_LIE]
    ops["ts_ns"] = np.arange(T_LIE, dtype=np.uint64) * np.uint64(1000)
    air = LaneDouble(T_LIE, C_LIE, ops)
    assert Checker(air).holds(columns(air, ops, witness_of(air, ops)))
    refused_with_the_timestamp_before_the_last(ops)


# ------------------------------------------------------ no cell left free --

def free_cells(air: LaneDouble, ops: np.ndarray, names=None) -> dict[str, set]:
    """{column: {"operation", "other"}}: the owned columns where editing one
    cell (a flip for 0/1 columns, + 12345 otherwise) leaves every
    constraint of the rows around it holding.  Even and odd rows are edited
    in two passes, so no constraint sees two edited rows."""
    check, T, n = Checker(air), air.trace_length, len(ops)
    honest = witness_of(air, ops)
    assert not check.bad_rows(columns(air, ops, honest)).any()
    free: dict[str, set] = {}
    for name in names or air.block.columns:
        col = honest[name]
        binary = set(np.unique(col).tolist()) <= {0, 1}
        for parity in (0, 1):
            rows = np.arange(parity, T, 2)
            w = dict(honest)
            w[name] = col.copy()
            w[name][rows] = 1 - col[rows] if binary else (col[rows] + 12345) % P
            bad = check.bad_rows(columns(air, ops, w))
            for r in rows[~bad[rows]]:
                free.setdefault(name, set()).add("operation" if r < n else "other")
    return free


@pytest.mark.parametrize("c", [4, 20])
def test_no_cell_is_left_free(c):
    """Every owned column is pinned by a constraint on every row (the
    LogUp sum aside): an edit of any one cell, on an operation row of any
    kind or outcome or on a row that is no operation, breaks a constraint
    of that row.  Guards against a constraint dropped by a refactor."""
    ops = every_kind(1 << c)
    air = LaneDouble(T_LIE, c, ops)
    assert free_cells(air, ops) == {}


def test_the_free_cell_scan_finds_a_dropped_constraint(monkeypatch):
    """The scan above can fail: with the op tuple's limit undefined, the
    column is free on every operation row."""
    orig = RecordChecks.transitions
    monkeypatch.setattr(RecordChecks, "transitions",
                        lambda self, f: [c for c in orig(self, f) if c.name != "record: op tuple: lim"])
    ops = every_kind(16)
    air = LaneDouble(T_LIE, C_LIE, ops)
    assert free_cells(air, ops, ["rc_op_lim", "rc_op_qty"]) == {"rc_op_lim": {"operation"}}
