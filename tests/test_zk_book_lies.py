"""zk mode's own lies, scans and completeness (docs/ZK.md section 11 and
section 13, step 7): what the malicious-engine suite in zk mode
(tests/test_orderbook_air.py, tests/test_orderbook_review.py and
tests/test_book_domain.py with the `book_mode` fixture) cannot reach,
because only zk mode has it.

- The lies of section 11's table that are zk mode's alone, each built as
  a trace (the honest batch's lane edited, its leaves rehashed where the
  lie needs them published): row types that lie, in every direction; a
  dummy with data; a trade leaf that is not its MATCH's, or supplied
  twice; leaves without the feed-forward; the state's timestamp cells;
  `resumed`; the leaf table's type bits (the operation count); the link
  between the lane and the `book` domain's records segment (records
  checked other than those hashed, rows swapped, an operation checked but
  not published, an operation on the last row); a REDUCE as a taker,
  whose two guards are each shown necessary.  Each is
  refused: debug names the family (a constraint, or the LogUp sum), and a
  proof forced past it does not verify.
- The free-cell scan over the lane's columns on a zk witness: one cell
  edited, on an operation, trade, dummy and the last row, breaks a
  constraint or the row's LogUp term; and the records segment's inputs
  (the block's own columns are scanned in tests/test_zk_record_checks.py).
- The completeness scan: engine/flow.py batches with every kind, outcome
  and field rejection, and records at the edges of every field, run
  through the engine and proven in zk mode with debug checks.

The batches are small (a book of 128 slots, 256 ops rows, 8 queries:
insecure parameters, which the refusals do not depend on)."""
from __future__ import annotations

import copy
import dataclasses
import re
from collections import Counter

import numpy as np
import pytest

import test_orderbook_air as base
import test_orderbook_review as review
from book_modes import ZK, ZK_OPTS
from test_zk_record_checks import EDGES, every_kind, slot_edges
from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.engine.records import MAX_PRICE, OP_DTYPE, Kind, Reason, Side, Status
from zksidecar.prover import constraints as C
from zksidecar.prover import field as F
from zksidecar.prover import poseidon2
from zksidecar.prover.air import Frame
from zksidecar.prover.expr import TRACE, evaluate
from zksidecar.prover.orderbook import prove_batch, verify_batch, verify_chain
from zksidecar.prover.orderbook import zk_air
from zksidecar.prover.orderbook.air import WORD
from zksidecar.prover.orderbook.batch import BookState
from zksidecar.prover.orderbook.zk_chain import ZkChain, zk_state_table
from zksidecar.prover.orderbook.zk_record_checks import RecordChecks, timestamp_pieces
from zksidecar.prover.prove import ConstraintError
from zksidecar.prover.verify import VerificationError

P = F.P
SUM = base.SUM
#: row 0's binding of the records' previous timestamp to the pre-state's cells
LPTS = "records: row 0's lpts. is the pre-state's cell"
#: an IOC that takes two makers (two trades), a LIMIT that rests, a BAD_SIDE
#: rejection: operation, trade and dummy rows on a book of 128 slots
OPS = base.batch((Kind.IOC, Side.BUY, 101, 7), (Kind.LIMIT, Side.BUY, 96, 2), (Kind.LIMIT, 3, 96, 2))


def prepared(ops=OPS, last_ts: int = 0, resumed: bool = False):
    """The honest zk batch of `ops` on setup_book's orders (batch 1 of a
    chain whose pre-state carries `last_ts`)."""
    return ZK.prepare(base.setup_book(ZK.capacity(16)), ops, last_ts=last_ts, resumed=resumed)


class Cells:
    """A segment's matrix cell by cell by column name (canonical values)."""

    def __init__(self, matrix: np.ndarray, names):
        self.m, self.names = matrix, tuple(names)
        self.at = {c: j for j, c in enumerate(self.names)}

    def __getitem__(self, key):
        name, row = key
        if isinstance(row, slice):
            return F.decode(np.ascontiguousarray(self.m[row, self.at[name]]))
        return F.decode_int(int(self.m[row, self.at[name]]))

    def __setitem__(self, key, value):
        name, row = key
        if isinstance(row, slice):
            n = len(range(*row.indices(len(self.m))))
            self.m[row, self.at[name]] = F.encode(np.full(n, value, dtype=np.int64) % P)
        else:
            self.m[row, self.at[name]] = F.encode_int(int(value) % P)

    def rows(self, kind: str) -> np.ndarray:
        """The rows where a 0/1 column is 1 ("lo", "lt" or "ld")."""
        return np.flatnonzero(self[kind, slice(None)])

    def copy_row(self, src: int, dst: int, names) -> None:
        for c in names:
            self.m[dst, self.at[c]] = self.m[src, self.at[c]]


class LaneCells(Cells):
    """The lane segment of a prepared zk batch, cell by cell, its leaves
    rehashed after an edit; `records`, the `book` domain's records segment
    (its lo, data elements and the record-check block's columns) likewise."""

    def __init__(self, prep):
        super().__init__(prep.zk.lane.matrix, zk_air.LANE_COLUMNS)
        self.prep = prep
        block = RecordChecks(prep.public.ops_length, prep.public.log2_capacity, rows=prep.public.book_length)
        self.records = Cells(prep.zk.lane.records, zk_air.RECORD_INPUTS + block.columns)
        self.n = prep.public.zk.n_ops

    def rehash(self) -> None:
        """Every row's Poseidon2 registers from its salt and data, and the
        published leaves from them (as a lying prover publishes them)."""
        s0, p2 = self.at["s0"], self.at[zk_air.P2.names[0]]
        x = np.ascontiguousarray(self.m[:, s0: s0 + 16])
        poseidon2.air_registers(x, out=self.m[:, p2: p2 + poseidon2.AIR_COLUMNS])
        leaves = F.decode(poseidon2.leaf(x))[:len(x) - 1]
        self.prep.zk.lane.leaves = leaves
        self.prep.public.zk = dataclasses.replace(self.prep.public.zk, leaves=leaves)


def refused(prep, family: str) -> None:
    """Debug names `family`; a proof forced past it does not verify."""
    with pytest.raises(ConstraintError, match=family):
        ZK.prove(prep, debug=True)
    with pytest.raises(VerificationError):
        verify_batch(ZK.prove(prep), min_security=0)


def test_the_lying_lane_of_honest_records_is_the_honest_lane():
    """The suite's lying prover (book_modes.lying_lane) can accept: the
    honest records give back the prover's own lane, leaves, side root and
    range counts, and the proof verifies."""
    prep = prepared()
    lane, public = copy.deepcopy(prep.zk.lane), copy.deepcopy(prep.public.zk)
    rm = prep.witness.columns["rm"].copy()
    ZK.commit(prep, *ZK.records(prep))
    assert np.array_equal(prep.zk.lane.matrix, lane.matrix) and np.array_equal(prep.public.zk.leaves, public.leaves)
    assert prep.public.zk.side_root == public.side_root and np.array_equal(prep.witness.columns["rm"], rm)
    verify_batch(ZK.prove(prep, debug=True), min_security=0)
    cells = LaneCells(prepared())
    assert len(cells.rows("lo")) == 3 and len(cells.rows("lt")) == 2 and len(cells.rows("ld")) == 250


# ------------------------------------------------------- row types that lie --
#
# The leaf tuple <7, row, lo, leaf> carries the type bit, which the
# verifier's leaf table gives as [row < ops]: a row whose type lies consumes
# a tuple the table does not supply, whatever it hashes.  Each lie below
# makes the row's data fit its claimed type (zeros for a dummy, six fields
# for a trade, a whole record for an operation) and publishes the leaf it
# then hashes, so that no row constraint is left to catch it.

def _as_dummy_or_trade(cells, row: int, kind: str) -> None:
    """Operation row `row` (the batch's last) shown as a dummy (zero data)
    or a trade (its first six data elements kept, the rest zero), and taken
    out of the records segment: its row there all zero, and the last
    timestamp (lts, the post state's cells) the operation's before it."""
    data = [f"e{k}" for k in range(12)]
    for c in data[6 if kind == "lt" else 0:]:
        cells[c, row] = 0
    cells["lo", row], cells[kind, row] = 0, 1
    rec = cells.records
    for c in rec.names:
        if c not in {f"rc_lts{j}" for j in range(5)}:
            rec[c, row] = 0
    prev_ts = int(cells.prep.zk.ops["ts_ns"][row - 1])
    for j, v in enumerate(timestamp_pieces(prev_ts)):
        rec[f"rc_lts{j}", slice(None)] = v
    cells.prep.zk.post_table = zk_state_table(cells.prep.witness.post, prev_ts)
    cells.rehash()


@pytest.mark.parametrize("kind", ["ld", "lt"])
def test_an_operation_leaf_presented_as_a_dummy_or_a_trade(kind):
    """The last operation's row claims to be a dummy (or a trade): the
    leaf tuple's type bit is the verifier's 1, the operation's op and
    outcome tuples, which the execution consumes, are supplied by no row,
    and the sum does not close (the records segment, left as it was, would
    consume a link tuple no lane row supplies).  With only its type bits
    flipped, the row's data does not fit the type it claims."""
    prep = prepared()
    cells = LaneCells(prep)
    _as_dummy_or_trade(cells, cells.n - 1, kind)
    refused(prep, SUM)
    prep = prepared()
    cells = LaneCells(prep)
    row = cells.n - 1
    cells["lo", row], cells[kind, row] = 0, 1
    refused(prep, re.escape("lane: a dummy's data is zero (e0)" if kind == "ld"
                            else "lane: a trade leaf has six fields (e6 = 0)"))


@pytest.mark.parametrize("kind", ["lt", "ld"])
def test_a_trade_or_a_dummy_presented_as_an_operation(kind):
    """A trade's (or a dummy's) row claims to be an operation: it carries
    a copy of the last operation's record, its block's columns as an
    honest prover fills them (every row constraint holds; the first
    trade's row extends the operation rows), but the verifier's type bit
    there is 0, and its op and outcome tuples name a row no execution row
    consumes."""
    prep = prepared()
    cells = LaneCells(prep)
    row = int(cells.rows(kind)[0])
    cells.copy_row(cells.n - 1, row, [f"e{k}" for k in range(12)])
    last = prep.zk.ops[cells.n - 1: cells.n]
    # compared with the operation before it when it extends the operation
    # rows, else (after a row that is none) with 0
    prev = int(last["ts_ns"][0]) if row == cells.n else 0
    block, why = RecordChecks(prep.public.ops_length, prep.public.log2_capacity,
                              rows=prep.public.book_length).columns_of(last, prev_ts=prev)
    assert why is None
    rec = cells.records
    for c, v in block.items():
        rec[c, row] = int(v[0])
    rec.copy_row(cells.n - 1, row, ["lo"] + [f"e{k}" for k in range(12)])
    cells[kind, row], cells["lo", row] = 0, 1
    cells.rehash()
    refused(prep, SUM)


def test_a_trade_leaf_presented_as_a_dummy():
    """A real trade's row emptied into a dummy: the MATCH row that made the
    trade consumes a trade tuple no lane row supplies."""
    prep = prepared()
    cells = LaneCells(prep)
    row = int(cells.rows("lt")[0])
    for k in range(12):
        cells[f"e{k}", row] = 0
    cells["lt", row], cells["ld", row] = 0, 1
    cells.rehash()
    refused(prep, SUM)


def test_a_dummy_row_supplying_a_trade():
    """A dummy's row claims to be a trade (of zero fields): every row
    constraint holds, and it supplies a trade tuple no MATCH consumes."""
    prep = prepared()
    cells = LaneCells(prep)
    row = int(cells.rows("ld")[0])
    cells["ld", row], cells["lt", row] = 0, 1
    refused(prep, SUM)


def test_a_dummy_with_nonzero_data():
    """A dummy hashing a value (a covert channel in a leaf the verifier
    takes for padding), its leaf published: ld * e_k = 0 refuses it."""
    prep = prepared()
    cells = LaneCells(prep)
    row = int(cells.rows("ld")[3])
    cells["e3", row] = 5
    cells.rehash()
    refused(prep, re.escape("lane: a dummy's data is zero (e3)"))


# ---------------------------------------------------------------- trades --

def test_a_trade_leaf_not_matching_its_match_row():
    """A trade's quantity one more in the lane than its MATCH row filled,
    its leaf published: the tuples differ, the sum does not close."""
    prep = prepared()
    cells = LaneCells(prep)
    row = int(cells.rows("lt")[0])
    cells["e5", row] = cells["e5", row] + 1
    cells.rehash()
    refused(prep, SUM)


def test_a_trade_tuple_supplied_twice():
    """A dummy's row made a copy of a real trade (the trade leaf
    duplicated onto a second row): one MATCH consumes it, two rows supply
    it."""
    prep = prepared()
    cells = LaneCells(prep)
    src, dst = int(cells.rows("lt")[0]), int(cells.rows("ld")[0])
    cells.copy_row(src, dst, [f"e{k}" for k in range(12)])
    cells["ld", dst], cells["lt", dst] = 0, 1
    cells.rehash()
    refused(prep, SUM)


def _match_again_for_nothing(w, ops, trades):
    """IOC buy 100 x 3 takes 3 of slot 1's 5 lots and is filled; a second
    MATCH against slot 1 follows (fill = min(remaining 0, 2) = 0: every
    execution rule holds), a trade of 0 lots added to the records."""
    c, T = w.columns, w.trace_length
    r = base.first(c, "sM")
    for col in c.values():
        col[r + 1:] = col[r:-1].copy()
    c["row"] = np.arange(T)
    c["last"][r], c["first"][r + 1] = 0, 0
    c["rem"][r + 1], c["fl"][r + 1], c["tn"][r + 1] = 0, 0, 1
    review._pad_after(c, r + 2)
    review._rethread_reads(w)
    for j in range(8):                                   # the maker's word and the header kept
        c[f"nA{j}"][r + 1] = c[f"oA{j}"][r + 1]
    for j in range(6):
        c[f"nH{j}"][r + 1] = c[f"oH{j}"][r + 1]
    c["cmp2"][r + 1] = c["oA1"][r + 1] - 1
    w.rethread()
    ops[0]["trades"] = 2
    extra = trades[:1].copy()
    extra["qty"] = 0
    return ops, np.concatenate([trades, extra])


def test_a_filled_taker_matching_for_nothing():
    """Check 19 (docs/ZK.md section 4): a taker's MATCH after it is filled
    fills 0 lots, which every execution rule allows.  Transparent mode
    refuses the public trade of 0 lots in plain code (air.noncanonical:
    qty outside 1 .. MAX_QTY, before any proof); zk mode's AIR refuses it
    by fli: fl = 0 on a MATCH row has no inverse."""
    base.assert_lie(ZK, base.batch((Kind.IOC, Side.BUY, 100, 3)), _match_again_for_nothing,
                    re.escape("lane: check 19: a MATCH's fill has an inverse"), end_to_end=True)


def _reduce_as_a_taker(w, ops, trades):
    """An IOC sell 95 x 3 that takes 3 lots of the bid, presented as a live
    REDUCE of slot 2 by 3 that kept its trade: its rows' kind is REDUCE,
    with REDUCE's op-tuple context (no side, no limit, the handle of slot
    2), and the record says so; the MATCH's crossing comparison is
    rewritten for the limit of 0."""
    c = w.columns
    rows = np.flatnonzero(c["oi"] == 0)                  # the operation's rows and the PAD after it
    gen = int(w.pre[2][7])
    c["k_ioc"][rows], c["k_red"][rows] = 0, 1
    for x, v in (("buy", 0), ("lim", 0), ("hslot", 2), ("hgen", gen), ("alo", 0), ("ahi", 0)):
        c[x][rows] = v
    w.rethread()
    r = base.first(c, "sM")
    c["cmp1"][r] = c["cx"][r]                            # a limit of 0 still crosses the bid
    w.rethread()
    ops[0]["kind"], ops[0]["handle"], ops[0]["side"], ops[0]["price"] = Kind.REDUCE, 2 | gen << 32, 0, 0


def test_a_reduce_as_a_taker(monkeypatch):
    """Check 16 (docs/ZK.md section 4, review finding 10b): a trade whose
    taker is a CANCEL or REDUCE.  Transparent mode refuses it in plain code
    (check_public's `~handled[i]`); in zk mode no record is public and two
    execution constraints replace the check, each sufficient alone: the
    lie is refused naming the first, with either dropped the other names
    it, and with both dropped it verifies (a REDUCE that traded 3 lots).
    REDUCE is the sharp case: a CANCEL's quantity is 0, so its MATCH
    would fill 0 lots, which check 19 refuses as well."""
    ops = base.batch((Kind.IOC, Side.SELL, 95, 3))
    first = "rule 5: CANCEL/REDUCE start with CANCEL, REDUCE or the stale PEEK"
    kinds = "rule 5: sM only for its kinds"
    base.assert_lie(ZK, ops, _reduce_as_a_taker, re.escape(first), end_to_end=True)
    for dropped, named in ((first, kinds), (kinds, first)):
        review._drop(monkeypatch, lambda n: n == dropped)
        base.assert_lie(ZK, ops, _reduce_as_a_taker, re.escape(named))
        monkeypatch.undo()
    review._drop(monkeypatch, lambda n: n in (first, kinds))
    verify_batch(base.prove_lie(ZK, base.mode_book(ZK), ops, _reduce_as_a_taker), min_security=0)


def test_leaves_published_without_the_feed_forward():
    """Poseidon2's feed-forward: leaves published as the permutation's
    output alone, pi(x)[0..8), are not the rows' leaves."""
    prep = prepared()
    cells = LaneCells(prep)
    at = [cells.at[c] for c in zk_air.P2.output]
    leaves = F.decode(np.ascontiguousarray(cells.m[:-1, at]))
    prep.zk.lane.leaves = leaves
    prep.public.zk = dataclasses.replace(prep.public.zk, leaves=leaves)
    refused(prep, SUM)


# ------------------------------------------- timestamps, resumed, the count --

def test_the_post_states_timestamp_cells_lie():
    """The post-state carries a last timestamp other than the last
    operation's (row 0 of the book domain binds its cells to the records'
    lts), or a timestamp cell off row 0."""
    prep = prepared()
    prep.zk.post_table[0, WORD] += 1
    refused(prep, re.escape("records: lts0 is the post-state's cell"))
    prep = prepared()
    prep.zk.post_table[5, WORD] = 1
    refused(prep, re.escape("timestamp cell qt0 = 0 off row 0"))


def test_the_pre_states_timestamp_cells_lie():
    """The pre-state a batch starts from carries the chain's last
    timestamp; row 0's lpts must be it.  A batch whose first operation is
    before it (time went back), its witness compared with 0 as a resumed
    batch's but proven as continuing, breaks row 0's binding of lpts to the
    pre-state's cells; a pre-state table with a timestamp cell off row 0
    breaks the book domain's constraint."""
    late = OPS.copy()
    late["ts_ns"] += 10
    prep = prepared(late, last_ts=20, resumed=True)          # operation 0 at 10, before 20
    prep.public.zk = dataclasses.replace(prep.public.zk, resumed=False)
    refused(prep, LPTS)
    prep = prepared()
    table = F.decode(prep.pre.commitment.trace).astype(np.int64)
    table[5, WORD + 1] = 7
    com = prep.zk.chain.commit_state(F.encode(table), prep.zk.chain.state_key(0, F.encode(table)))
    prep.pre = BookState(prep.pre.cells, com, com.link(), 0)
    prep.public.pre_root, prep.public.pre_link = com.root, com.link()
    refused(prep, re.escape("timestamp cell pt1 = 0 off row 0"))


@pytest.mark.parametrize("flip_to", [True, False])
def test_resumed_set_falsely(flip_to):
    """`resumed` is public and bound: a continuing batch (its first
    timestamp compared with the pre-state's last, 20) published as
    resumed, or a resumed one (compared with 0, its first timestamp 10
    before 20) published as continuing: row 0 of the book domain binds lpts,
    what the witness compared with, to the pre-state's cells or to zero by
    the public bit, and that constraint breaks."""
    ops = OPS.copy()
    ops["ts_ns"] += 10 if flip_to is False else 30
    prep = prepared(ops, last_ts=20, resumed=not flip_to)
    prep.public.zk = dataclasses.replace(prep.public.zk, resumed=flip_to)
    refused(prep, LPTS)


@pytest.mark.parametrize("delta", [-1, 1])
def test_the_leaf_tables_type_bits_lie(delta):
    """The operation count published one less (the last operation's leaf
    then a trade or dummy slot of the verifier's table) or one more (the
    first trade or dummy leaf an operation's): the type bits of the leaf
    table move, and the sum does not close."""
    prep = prepared()
    prep.public.zk = dataclasses.replace(prep.public.zk, n_ops=prep.public.zk.n_ops + delta)
    refused(prep, SUM)


# ------------------------------------------------------------ the lane scan --

def lane_free_cells(prep, seed: int, only=None) -> dict[str, set]:
    """{column: row types} where editing one cell of a lane or block column
    (a flip for 0/1 columns, + 12345 otherwise) of `prep`'s zk witness
    leaves every constraint of the rows around it and the row's LogUp term
    unchanged: on every row of each type (operation, trade, dummy, the last
    row), even and odd rows in two passes (test_orderbook_review.Checker,
    which evaluates again only what reads the edited column)."""
    check = review.Checker(prep, seed)
    cells = LaneCells(prep)
    base_tr = check.traces(prep.witness)
    bad0, term0 = check.check(base_tr)
    assert not bad0.any()
    T = prep.public.ops_length
    kind = np.full(T, "last", dtype=object)
    for k, name in (("lo", "operation"), ("lt", "trade"), ("ld", "dummy")):
        kind[cells.rows(k)] = name
    lane = F.decode(cells.m).astype(np.int64)
    free: dict[str, set] = {}
    for name in only or cells.names:
        j = cells.at[name]
        col = lane[:, j]
        binary = set(np.unique(col).tolist()) <= {0, 1}
        for parity in (0, 1):
            rows = np.arange(parity, T, 2)
            edited = cells.m.copy()
            edited[rows, j] = F.encode((1 - col[rows]) % P if binary else (col[rows] + 12345) % P)
            bad, term = check.check({**base_tr, "ops.lane": edited})
            moved = (term != term0).any(axis=1)
            for r in rows[~(bad[rows] | moved[rows])]:
                free.setdefault(name, set()).add(str(kind[r]))
    return free


def test_records_check_an_operation_the_leaves_do_not_publish():
    """The records and the execution check the batch's last operation, but
    the lane hides it as a dummy (its leaf a dummy's) and one operation
    fewer is published: the op and outcome tuples still balance, the leaf
    table agrees with the lane, and only the link tuple the records
    consume for that row, which no lane row supplies, leaves the sum
    open."""
    prep = prepared()
    cells = LaneCells(prep)
    row = cells.n - 1
    for k in range(12):
        cells[f"e{k}", row] = 0
    cells["lo", row], cells["ld", row] = 0, 1
    cells.rehash()
    prep.public.zk = dataclasses.replace(prep.public.zk, n_ops=cells.n - 1)
    refused(prep, SUM)


def test_lane_rows_swapped_against_the_records():
    """Operations 0 and 1 hashed in each other's lane rows (their leaves
    published so) while the records and the execution keep their order:
    only the link tuples' row entries differ, and the sum refuses it."""
    prep = prepared()
    cells = LaneCells(prep)
    for k in range(12):
        cells[f"e{k}", 0], cells[f"e{k}", 1] = cells[f"e{k}", 1], cells[f"e{k}", 0]
    cells.rehash()
    refused(prep, SUM)


def test_an_operation_on_every_book_row():
    """ops = S: a maker and S - 1 IOCs on a book of S slots fill the book
    domain, the last operation on its last row.  The honest batch proves
    and verifies; a post-state (and lts) carrying the timestamp of the
    operation before the last is refused by the last-row rule of check 25,
    which no transition reaches."""
    S = ZK.capacity(16)
    ops = np.zeros(S, dtype=OP_DTYPE)
    ops["seq"], ops["ts_ns"], ops["account"] = np.arange(1, S + 1), np.arange(S) * 10 + 5, 5
    ops["kind"], ops["side"], ops["price"], ops["qty"] = Kind.IOC, Side.BUY, 100, 1
    ops[0]["kind"], ops[0]["side"], ops[0]["qty"] = Kind.LIMIT, Side.SELL, 1000
    prep = ZK.prepare(Book(S), ops)
    assert prep.public.book_length == prep.public.zk.n_ops == S
    verify_batch(ZK.prove(prep, debug=True), min_security=0)
    prep = ZK.prepare(Book(S), ops)
    earlier = int(ops["ts_ns"][-2])
    for j, v in enumerate(timestamp_pieces(earlier)):
        LaneCells(prep).records[f"rc_lts{j}", slice(None)] = v
    prep.zk.post_table = zk_state_table(prep.witness.post, earlier)
    refused(prep, re.escape("check 25: lts0 = piece 0 of an operation on the last row"))


def test_no_lane_cell_is_left_free():
    """Every cell of the lane's columns (types, salts, data, the 274
    Poseidon2 registers, fli, the blinding tuple), on every row type,
    is pinned by a constraint or the row's LogUp term: a single edit breaks
    one.  Guards against a constraint or a fraction dropped.  (The
    record-check block's columns have their scan in
    tests/test_zk_record_checks.py; the records segment's inputs, below.)"""
    prep = prepared()
    assert lane_free_cells(prep, seed=11) == {}


def test_no_records_input_cell_is_left_free():
    """The `book` domain's records segment: lo and the data elements, on an
    operation row, a row after the operations and the last row, and the
    last-row selector rl on rows 0, 1 and the last: editing one cell
    breaks a constraint or the sum (debug refuses to prove it)."""
    probe = LaneCells(prepared())
    S = probe.records.m.shape[0]
    for name in zk_air.RECORD_INPUTS + ("rl",):
        for row in ((0, 1, S - 1) if name == "rl" else (1, probe.n, S - 1)):
            prep = prepared()
            cells = LaneCells(prep)
            if name == "rl":
                stamp = prep.zk.traces(prep.witness, prep.pre)["book.stamp"]
                j = ("row", "pts", "r0", "rl").index("rl")
                flipped = 1 - F.decode_int(int(stamp[row, j]))
                original = prep.zk.traces

                def traces(witness, pre, original=original, row=row, j=j, flipped=flipped):
                    out = original(witness, pre)
                    out["book.stamp"] = out["book.stamp"].copy()
                    out["book.stamp"][row, j] = F.encode_int(flipped)
                    return out
                prep.zk.traces = traces
            else:
                v = cells.records[name, row]
                cells.records[name, row] = (1 - v) if name == "lo" else v + 12345
            with pytest.raises(ConstraintError):
                ZK.prove(prep, debug=True)


def test_the_records_checked_are_the_records_hashed():
    """The link tuple is what ties the records segment to the lane: a lane
    whose operation 1 hashes a timestamp before operation 0's (its leaf
    published so), beside a records segment that checks the honest,
    non-decreasing timestamps, moves no tuple but the link (the timestamp
    is in neither the op nor the outcome tuple), and the sum alone refuses
    it; a proof forced past it does not verify."""
    prep = prepared()
    cells = LaneCells(prep)
    assert cells["e0", 1] > 0 or cells["e1", 1] > 0
    cells["e0", 1], cells["e1", 1] = 0, 0       # operation 1's timestamp bits 0..59 cleared
    cells.rehash()
    refused(prep, SUM)


def test_the_lane_scan_finds_a_dropped_constraint(monkeypatch):
    """The scan above can fail: without "fli = 0 off MATCH", fli is free
    on every row but a MATCH's (no lane row is one)."""
    orig = zk_air.ZkOpsAir._lane
    monkeypatch.setattr(zk_air.ZkOpsAir, "_lane",
                        lambda self, f: [c for c in orig(self, f) if c.name != "lane: fli = 0 off MATCH"])
    monkeypatch.setattr(zk_air.ZkOpsAir, "_transitions_by_key", {})
    assert lane_free_cells(prepared(), seed=12, only=["fli", "lo"]) == \
        {"fli": {"operation", "trade", "dummy", "last"}}


def book_free_cells(prep, seed: int, only=None) -> dict[str, set]:
    """{column: rows} ("row 0", "other rows") where editing one cell of a
    `book` domain column (pre, post, stamp: the blinding tuple's
    included; a flip for 0/1 columns, + 12345 otherwise) of `prep`'s zk
    witness leaves every `book` constraint of the rows around it and the
    row's LogUp term unchanged, even and odd rows in two passes.
    test_orderbook_review.Checker reads the `book` domain only through its
    total; this evaluates its constraints (LogUp's own excepted: the term
    stands in for them) row by row, as Checker does the `ops` domain's."""
    st = prep.public.statement()
    air, S = st.book, st.book.trace_length
    challenges = F.encode(np.random.default_rng(seed).integers(0, P, (st.num_challenges, 4)))
    consts = air.constants(challenges)
    cons = [c for c in air.transition_constraints if not c.name.startswith("lu")]
    f = Frame(air)
    bounds = [(f.cur(b.column) - b.value, b.row % S) for b in air.boundary_constraints
              if not b.name.startswith("lu")]
    names = [c for seg in air.main_segments for c in seg.columns]
    tr = prep.zk.traces(prep.witness, prep.pre)
    base_cols = np.concatenate([tr["book." + seg.name] for seg in air.main_segments], axis=1)

    def rows(cols):
        def source(key):
            if key[0] != TRACE:
                return consts(key)
            v = np.ascontiguousarray(cols[:, key[1]])
            return np.roll(v, -1) if key[2] else v

        alg = C.ColumnAlgebra(S, source)
        bad = np.zeros(S, dtype=bool)
        for v, c in zip(evaluate([c.expr for c in cons], alg), cons):
            row_bad = C.as_column(v, S, isinstance(v, np.ndarray) and v.ndim == 2).reshape(S, -1).any(axis=1)
            if not c.every_row:
                row_bad[S - 1] = False
            bad |= row_bad
            bad[1:] |= row_bad[:S - 1]
        for (e, r), v in zip(bounds, evaluate([e for e, _ in bounds], alg)):
            bad[r] |= bool(C.as_column(v, S, False)[r])
        main = {c: np.ascontiguousarray(cols[:, j]) for j, c in enumerate(names)}
        groups = air.lu.group_sums(air, main, challenges[:air.num_challenges])
        term = groups[0]
        for g in groups[1:]:
            term = F.add(term, g)
        return bad, term

    bad0, term0 = rows(base_cols)
    assert not bad0.any(), "the honest book witness breaks a constraint"
    plain = F.decode(base_cols).astype(np.int64)
    free: dict[str, set] = {}
    for name in only or names:
        j = names.index(name)
        col = plain[:, j]
        binary = set(np.unique(col).tolist()) <= {0, 1}
        for parity in (0, 1):
            edit = np.arange(parity, S, 2)
            cols = base_cols.copy()
            cols[edit, j] = F.encode((1 - col[edit]) % P if binary else (col[edit] + 12345) % P)
            bad, term = rows(cols)
            moved = (term != term0).any(axis=1)
            for r in edit[~(bad[edit] | moved[edit])]:
                free.setdefault(name, set()).add("row 0" if r == 0 else "other rows")
    return free


def test_no_book_cell_is_left_free():
    """Every cell of the `book` domain's columns (the state tables with
    their timestamp cells, row, pts, r0 and the blinding tuple's bm,
    bx0..bx7) is pinned by a constraint or the row's LogUp term: the
    blinding columns have their one cell, on row 0, and it is in the sum."""
    prep = prepared()
    assert {c for seg in prep.public.statement().book.main_segments for c in seg.columns} \
        >= set(zk_air.BLIND_COLUMNS)
    assert book_free_cells(prep, seed=13) == {}


def test_the_book_scan_finds_a_dropped_constraint(monkeypatch):
    """The scan above can fail: without "blinding bx3 = 0 off row 0", bx3 is
    free on every row but row 0 (bm is 0 there: the fraction is 0)."""
    orig = zk_air.ZkBookAir.transitions
    monkeypatch.setattr(zk_air.ZkBookAir, "transitions",
                        lambda self, f: [c for c in orig(self, f) if c.name != "blinding bx3 = 0 off row 0"])
    monkeypatch.setattr(zk_air.ZkBookAir, "_transitions_by_key", {})
    assert book_free_cells(prepared(), seed=14, only=["bm", "bx3"]) == {"bx3": {"other rows"}}


# ------------------------------------------------------------- blinding --

@pytest.mark.parametrize("side", ["lane", "book"])
@pytest.mark.parametrize("column", ["bm", "bx3"])
def test_blinding_tuples_that_differ(side, column):
    """The blinding tuple the `book` domain supplies and the one the lane
    consumes made to differ (the multiplicity rho, or an entry, one more on
    either side): no other fraction has tag 8, so nothing balances them
    and the sum does not close."""
    prep = prepared()
    if side == "lane":
        cells = LaneCells(prep)
        cells[column, 0] = cells[column, 0] + 1
    else:
        k = zk_air.BLIND_COLUMNS.index(column)
        values = prep.zk.lane.blinding.copy()
        values[k] = (int(values[k]) + 1) % P
        prep.zk.lane.blinding = values
    refused(prep, SUM)


# --------------------------------------------------------- completeness --

def edge_records(capacity: int) -> np.ndarray:
    """Records at the edges of every field (tests/test_zk_record_checks.py's
    every_kind and EDGES, and docs/ZK.md section 11's list: 0, 1,
    capacity - 1, capacity, capacity + 1, 2^15 - 1, 2^15, 2^30 - 1, 2^30,
    2^32 - 1 for every slot, generation, price and qty; kinds and sides 0,
    8, 255), their outcomes cleared for the engine to give, timestamps
    across every piece boundary to 2^64 - 1."""
    kept = ("kind", "side", "price", "qty", "handle", "flags", "account", "ts_ns")
    recs = [every_kind(capacity)]

    def rows(**fields):
        n = max(len(v) for v in fields.values() if isinstance(v, list))
        r = np.zeros(n, dtype=OP_DTYPE)
        for k, v in fields.items():
            r[k] = v
        return r

    field_edges = sorted(set(slot_edges(capacity)) | set(EDGES["price"]) | {MAX_PRICE, MAX_PRICE + 1})
    slots = [v for v in field_edges if v < 1 << 32]
    recs.append(rows(kind=Kind.CANCEL, handle=slots))
    recs.append(rows(kind=Kind.REDUCE, qty=1, handle=[3 | g << 32 for g in EDGES["gen"]]))
    for side in (Side.BUY, Side.SELL):
        recs.append(rows(kind=Kind.LIMIT, side=side, qty=1, price=[v for v in field_edges if v < 1 << 32]))
    recs.append(rows(kind=Kind.IOC, side=Side.BUY, price=100, qty=[v for v in field_edges if v < 1 << 32]))
    recs.append(rows(kind=EDGES["kind"], side=Side.SELL, price=200, qty=1))
    recs.append(rows(kind=Kind.POST_ONLY, side=EDGES["side"], price=300, qty=1))
    recs.append(rows(kind=Kind.LIMIT, side=Side.SELL, price=400, qty=1, flags=EDGES["flags"]))
    ops = np.zeros(sum(len(r) for r in recs), dtype=OP_DTYPE)
    out = np.concatenate(recs)
    for k in kept:
        ops[k] = out[k]
    ops["ts_ns"] = np.sort(out["ts_ns"])
    ops["ts_ns"][-1] = (1 << 64) - 1
    ops["seq"] = np.arange(1, len(ops) + 1)
    return ops


def outcomes(records: np.ndarray) -> Counter:
    return Counter(zip(records["kind"].tolist(), records["status"].tolist(), records["reason"].tolist()))


def prove_zk_chain(ops: np.ndarray, capacity: int, ops_length: int, cuts: int):
    """`ops` proven in zk mode with debug checks as a chain of `cuts`
    batches of equal counts from the empty book; the proofs verified as a
    chain; the records with the engine's outcomes."""
    chain = ZkChain(b"tests/test_zk_book_lies.py key..", 0, capacity.bit_length() - 1, ops_length, ZK_OPTS)
    state, proofs, records = Book(capacity), [], []
    for b, part in enumerate(np.array_split(ops, cuts)):
        done = part.copy()
        Book.from_cells(state.cells.copy()).process(done)
        bp, state, _ = prove_batch(state, part, ZK_OPTS, batch_id=b, zk=chain, debug=True)
        proofs.append(bp)
        records.append(done)
    verify_chain(proofs, min_security=0)
    return proofs, np.concatenate(records)


def test_records_at_every_edge_prove_through_the_engine():
    """docs/ZK.md section 11's completeness scan: an honest batch the zk
    prover cannot prove is a failure.  The edge records run through the
    engine (their outcomes its own), proven in three batches of a chain."""
    ops = edge_records(ZK.capacity(16))
    _, records = prove_zk_chain(ops, ZK.capacity(16), 256, 3)
    reasons = set(records["reason"].tolist())
    assert reasons >= {int(r) for r in (Reason.BAD_FLAGS, Reason.BAD_QTY, Reason.UNKNOWN_HANDLE, Reason.BAD_KIND,
                                        Reason.BAD_SIDE, Reason.BAD_PRICE, Reason.STALE_HANDLE)}
    assert MAX_PRICE in records["price"][records["status"] == Status.RESTED]


def test_flow_batches_of_every_kind_and_outcome_prove():
    """engine/flow.py with malformed records (every field rejection), a
    book kept at its capacity (BOOK_FULL), takers, post-only orders,
    cancels and reduces: every status and reason, proven in zk mode with
    debug checks, as a chain."""
    cap = ZK.capacity(16)
    ops = flow.generate(360, seed=7, capacity=cap, prefill=120, params=flow.FlowParams(
        depth=cap, invalid=0.12, take=0.35, post_only=0.2, cancel=0.4, reduce=0.3))
    _, records = prove_zk_chain(ops, cap, 256, 4)
    seen = outcomes(records)
    assert {s for _, s, _ in seen} >= set(Status) - {Status.NONE}
    assert {r for _, _, r in seen} >= set(Reason)
    assert {k for k, s, _ in seen if s != Status.REJECTED} >= set(Kind)
