"""zk mode's batch statement (docs/ZK.md, sections 3 to 5): the order
book's two domains with the records committed in a lane instead of given.

``book`` (ZkBookAir, S rows, as BookAir) with the state table's five
timestamp cells (section 5.7; where they live, below) and the records'
checks, one operation a row (so a zk batch has at most S operations):

    pre     (EXTERNAL)  p0..p7, pt0..pt4    the state before the batch
    post    (exported)  q0..q7, qt0..qt4    the state after it
    stamp               row, pts, r0, rl,   r0 = 1 on row 0 only, rl on the last
                        bm, bx0..bx7        the blinding tuple (below)
    records             lo, e0..e11,        operation i's data elements on row i
                        rc_...              the record-check block (zk_record_checks)

``ops`` (ZkOpsAir, T rows, one height per chain in zk mode):

    exec              air.exec_columns(T), as in transparent mode, built by
                      the same C witness (witness.build)
    lane              fli (a MATCH's fill inverse, check 19), the row
                      types lo, lt, ld, salts s0..s3, data e0..e11,
                      the 274 Poseidon2 registers (poseidon2_air), the
                      blinding tuple bm, bx0..bx7 (below)

**Why the records are checked in the `book` domain.**  The block reads
nothing of a row but its operation's data elements, and there are at most
S operations, where the lane needs a row for every operation and trade
(T rows).  Its 100-odd columns and 30 fractions cost half as much at S
rows as they did beside the lane.  The lane hands each operation's data
elements over by one tuple of its own, tag 6 (TAG_LINK):

    lane supplies     <6, row, e0..e11> x lo      (rows 0 .. ops - 1)
    records consume   <6, row, e0..e11> x lo      (the book domain's lo)

Row indices are distinct in each domain, so the sum forces the book
domain's lo to be 1 on exactly rows 0 .. ops - 1 (lo boolean) and each of
those rows to hold the data elements its leaf hashes.

**The timestamp cells.**  The state table of zk mode carries the last
operation's timestamp in five cells of row 0 (15, 15, 15, 15 and 4 bits:
zk_record_checks.timestamp_pieces, the block's), columns pt0..pt4 of
``pre`` and qt0..qt4 of ``post``, zero on every other row (every-row
constraints row * c = 0: a current-row read, so the state is still not
opened at w z and its mask stays 2q + 20).  The block's row-0 previous
timestamp and its last one are bound to them on row 0 of the same domain:

    r0 * (lpts_j - (1 - resumed) pt_j) = 0,   r0 * (lts_j - qt_j) = 0

so row 0's previous-timestamp pieces are the pre-state's (0 when the batch
begins where its stream resumed: `resumed`, a public bit both domains
bind) and the last timestamp the record-check block proves is the
post-state's.  lpts and lts are the block's columns (RecordChecks.lpts,
.lts), lts constant down the trace.

**The lane** (section 3.4).  Row types: lo (operation leaf), lt (trade
leaf), ld (dummy leaf), u = lo + lt + ld, u = 1 on rows 0 .. T - 2 and every
type 0 on the last row.  Each row hashes (s0..s3, e0..e11) by Poseidon2 on
every row, the last included, and consumes its leaf <7, row, lo, d0..d7> x u,
d_k = pi(x)_k + x_k; the verifier supplies <7, j, [j < ops], leaf_j> for
each published leaf j = 0 .. T - 2, the statement's target (the one LogUp
sum's public side), so row j's leaf is leaf j and its type bit [j < ops]:
operations on rows 0 .. ops - 1, trades and dummies after.  A trade row
supplies <5, e0, .., e5> (taker i, trade number tn, maker slot, maker
generation, price, qty), which the execution's MATCH rows consume (their
trade tuple narrowed to those six: air.fractions_for(trade_accounts=False));
a dummy's data elements are 0, a trade row's e6..e11 are 0, the last row's
data is 0.  An operation row supplies its data elements to the `book`
domain (the link tuple), whose record-check block supplies the op and
outcome tuples the execution consumes (tag 3 and 4, x lo).

**The blinding tuple** (docs/ZK.md section 10, "The claimed sums").  Each
domain claims its part of the one LogUp sum in the proof; the `book`
domain's part would be a function of the private state tables.  So the
`book` domain supplies one tuple of a tag of its own, 8 (TAG_BLIND), on
row 0, which the lane consumes on its row 0:

    book supplies  <8, bx0..bx7> x bm      (stamp's columns)
    lane consumes  <8, bx0..bx7> x bm      (the lane's columns)

bm (rho, uniform and nonzero) and bx (uniform) are drawn from the batch key
(zk_lane.blinding), the same values in both domains, and are 0 on every
other row (row * c = 0, every row).  The `book` claim moves by
rho / (alpha - compress(<8, bx>)), uniform to anyone without the batch key,
the `ops` claim by the opposite, their total (the target) not at all; no
other fraction has tag 8, so the sum forces the two to cancel.

Every constraint has degree <= 3.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import logup
from ..air import BoundaryConstraint, Frame, Segment, TransitionConstraint
from ..expr import Expr, const
from ..ext_scalar import Ext
from ..poseidon2_air import Poseidon2Columns
from ..statement import Statement
from .air import (MIN_ROWS, TAG_TRADE, WORD, BookAir, OrderBookAir, _claimed, _public_sum, book_fractions,
                  book_length, exec_columns, fractions_for, limbs_for)
from .zk_encoding import DATA_ELEMENTS, LEAF_ELEMENTS, SALT_ELEMENTS, TRADE_ELEMENTS
from .zk_record_checks import TIMESTAMP_PIECE_BITS, RecordChecks

#: the tuple tags zk mode adds to air.py's (1 memory .. 5 trade)
TAG_LINK, TAG_LEAF, TAG_BLIND = 6, 7, 8
#: the state table's timestamp cells: a u64 timestamp's pieces, least
#: significant first, as the record-check block compares them
TS_CELLS = len(TIMESTAMP_PIECE_BITS)
#: zk mode's tallest `ops` domain (docs/ZK.md section 14, decision 2): the
#: height it is built and tested to; the LogUp sum of its fractions would
#: leave 100 bits at 2^16 rows for capacities up to 2^12, under 100 above
#: (params.check_zk_ops_length says which applies)
ZK_MAX_LOG_OPS = 15
#: the version of zk mode's AIR, bound into a zk chain's digest (zk_keys.chain_digest);
#: 2: fli pinned on the last row too; 3: the blinding tuple; 4: the record
#: checks in the `book` domain
ZK_AIR_VERSION = 4

SALTS = tuple(f"s{k}" for k in range(SALT_ELEMENTS))
DATA = tuple(f"e{k}" for k in range(DATA_ELEMENTS))
TYPES = ("lo", "lt", "ld")
P2 = Poseidon2Columns("p2")
#: the blinding tuple's entries: enough that their span over F_p is the
#: whole extension field but with probability ~p^-5 (docs/ZK.md section 10)
BLIND_ENTRIES = 8
#: the blinding tuple's columns, in both domains: its multiplicity rho, then its entries
BLIND_M = "bm"
BLIND_X = tuple(f"bx{k}" for k in range(BLIND_ENTRIES))
BLIND_COLUMNS = (BLIND_M,) + BLIND_X
#: the lane's columns
LANE_COLUMNS = ("fli",) + TYPES + SALTS + DATA + P2.names + BLIND_COLUMNS
#: the leaf tuple <7, row, lo, d0..d7>
LEAF_ARITY = 3 + LEAF_ELEMENTS
#: the link tuple <6, row, e0..e11>: the widest tuple of the sum
LINK_ARITY = 2 + DATA_ELEMENTS
#: the statement's challenges: alpha, then one compression challenge per
#: entry of the widest tuple after the first
ZK_CHALLENGES = LINK_ARITY
#: the `book` domain's records segment: the operation rows' indicator and
#: data elements (the block's columns follow)
RECORD_INPUTS = ("lo",) + DATA
PRE_TS = tuple(f"pt{k}" for k in range(TS_CELLS))
POST_TS = tuple(f"qt{k}" for k in range(TS_CELLS))


# ------------------------------------------------------------- book --

def link_tuple() -> list:
    """The link tuple's entries <6, row, e0..e11> (module docstring)."""
    return [TAG_LINK, "row"] + list(DATA)


def zk_book_fractions(checks: RecordChecks) -> list:
    """The `book` domain's fractions in zk mode: the memory pair
    (air.book_fractions), the blinding tuple supplied, the record-check
    block's (its range lookups, the op and outcome tuples), then the link
    tuple consumed (module docstring)."""
    return book_fractions() + [logup.supply([TAG_BLIND] + list(BLIND_X), BLIND_M)] \
        + list(checks.fractions()) + [logup.consume(link_tuple(), "lo")]


class ZkBookAir(BookAir):
    """The `book` domain of zk mode: BookAir's with the timestamp cells,
    the row-0 and last-row selectors r0 and rl, the blinding tuple and the
    records' checks (module docstring).  `ops_length` (T) is the `ops`
    domain's: the range table the block looks its pieces up in is [0, T)."""

    num_challenges = ZK_CHALLENGES
    _transitions_by_key: dict = {}

    def __init__(self, book_length: int, resumed: bool, ops_length: int, log2_capacity: int):
        self.resumed = bool(resumed)
        self.checks = RecordChecks(ops_length, log2_capacity, rows=book_length)
        self.main_segments = (
            Segment("pre", tuple(f"p{j}" for j in range(WORD)) + PRE_TS, external=True),
            Segment("post", tuple(f"q{j}" for j in range(WORD)) + POST_TS, exported=True),
            Segment("stamp", ("row", "pts", "r0", "rl") + BLIND_COLUMNS),
            Segment("records", RECORD_INPUTS + tuple(self.checks.columns)),
        )
        self.lu = logup.LogUp("lu", zk_book_fractions(self.checks), alpha=0, beta=1, target=_claimed)
        self.shared_argument = self.lu
        self.lookup_arguments = (self.lu,)
        self.aux_columns = self.lu.columns
        super(BookAir, self).__init__(book_length, {"resumed": int(self.resumed)})

    def transitions(self, f: Frame) -> list[TransitionConstraint]:
        key = (self.trace_length, self.resumed, self.checks.trace_length, self.checks.log2_capacity)
        cached = ZkBookAir._transitions_by_key.get(key)
        if cached is None:
            c = f.cur
            row = c("row")

            def every(name: str, expr: Expr) -> TransitionConstraint:
                return TransitionConstraint(name, expr, expr.degree, every_row=True)

            out = [TransitionConstraint("row' = row + 1", f.next("row") - row - 1, 1),
                   every("r0 = 0 off row 0", row * c("r0")),
                   every("rl = 0 off the last row", (row - (self.trace_length - 1)) * c("rl"))]
            for x in PRE_TS + POST_TS:
                out.append(every(f"timestamp cell {x} = 0 off row 0", row * c(x)))
            # the blinding tuple has one cell per column, and that cell is in the sum
            for x in BLIND_COLUMNS:
                out.append(every(f"blinding {x} = 0 off row 0", row * c(x)))
            out.append(every("records: boolean lo", c("lo") * (1 - c("lo"))))
            for x in DATA:
                out.append(every(f"records: {x} = 0 off the operation rows", (1 - c("lo")) * c(x)))
            for j, (pt, qt) in enumerate(zip(PRE_TS, POST_TS)):
                before = const(0) if self.resumed else c(pt)
                out.append(every(f"records: row 0's lpts{j} is the pre-state's cell (0 if resumed)",
                                 c("r0") * (c(self.checks.lpts[j]) - before)))
                out.append(every(f"records: lts{j} is the post-state's cell",
                                 c("r0") * (c(self.checks.lts[j]) - c(qt))))
            cached = ZkBookAir._transitions_by_key[key] = out + list(self.checks.transitions(f)) \
                + self.lu.transitions(f)
        return cached

    def boundaries(self, f: Frame) -> list[BoundaryConstraint]:
        return super().boundaries(f) + [BoundaryConstraint("r0[0] = 1", "r0", 0, const(1)),
                                        BoundaryConstraint("rl on the last row = 1", "rl", -1, const(1))]


# -------------------------------------------------------------- ops --

def lane_fractions() -> list:
    """The lane's fractions: its leaf consumed, a trade row's trade tuple
    supplied, an operation row's link tuple supplied (to the `book`
    domain's record checks), then the blinding tuple consumed (module
    docstring)."""
    inputs = SALTS + DATA
    u = lambda f: f.cur("lo") + f.cur("lt") + f.cur("ld")          # noqa: E731
    return [logup.consume([TAG_LEAF, "row", "lo"] + P2.leaf_terms(inputs), u),
            logup.supply([TAG_TRADE] + list(DATA[:TRADE_ELEMENTS]), "lt"),
            logup.supply(link_tuple(), "lo"),
            logup.consume([TAG_BLIND] + list(BLIND_X), BLIND_M)]


class ZkOpsAir(OrderBookAir):
    """The `ops` domain of zk mode: the execution rows as OrderBookAir's
    (their constraints are its own, `_transitions`) and the record lane
    (module docstring).  Public: the capacity, first sequence number,
    symbol, batch id, the number of operations, `resumed`, the published
    leaves (T - 1, operation leaves first) and the side leaves' root."""

    num_challenges = ZK_CHALLENGES
    _transitions_by_key: dict = {}

    def __init__(self, trace_length: int, log2_capacity: int, first_seq: int, symbol: int, batch_id: int,
                 n_ops: int, resumed: bool, leaves: np.ndarray, side_root: bytes):
        if not MIN_ROWS <= trace_length <= 1 << ZK_MAX_LOG_OPS:
            raise ValueError(f"a zk ops trace of {trace_length} rows (from {MIN_ROWS} to 2^{ZK_MAX_LOG_OPS}: "
                             "zk mode's cap)")
        if not 1 <= n_ops <= trace_length - 1:
            raise ValueError(f"{n_ops} operations in a zk ops trace of {trace_length} rows (1 to "
                             f"{trace_length - 1}: one leaf a row, the last row none)")
        leaves = np.asarray(leaves)
        if leaves.shape != (trace_length - 1, LEAF_ELEMENTS) or leaves.dtype != np.uint32 \
                or (leaves >= np.uint32(2013265921)).any():
            raise ValueError(f"the published leaves must be ({trace_length - 1}, {LEAF_ELEMENTS}) canonical "
                             f"uint32 field elements, got {leaves.dtype} {leaves.shape}")
        if not isinstance(side_root, bytes) or len(side_root) != 32:
            raise ValueError("the side leaves' root is 32 bytes")
        capacity = 1 << log2_capacity
        self.capacity, self.log2_capacity = capacity, log2_capacity
        self.first_seq, self.symbol, self.batch_id = first_seq, symbol, batch_id
        self.n_ops, self.resumed, self.leaves, self.side_root = n_ops, bool(resumed), leaves, side_root
        self.L, self.k = limbs_for(trace_length)
        self.main_segments = (Segment("exec", exec_columns(trace_length)), Segment("lane", LANE_COLUMNS))
        self._share_sum(fractions_for(trace_length, trade_accounts=False) + lane_fractions())
        super(OrderBookAir, self).__init__(trace_length, {"log2_capacity": log2_capacity, "ops": n_ops,
                                                          "resumed": int(self.resumed)})

    # -------------------------------------------------------- public --
    def public_bytes(self) -> bytes:
        """The statement of docs/ZK.md section 1 (no record): capacity,
        first sequence number, symbol, batch id, ops and resumed (the
        public values), the side root and every published leaf."""
        head = b"zksidecar.orderbook.zk.v1;" + str((self.log2_capacity, self.first_seq, self.symbol,
                                                     self.batch_id)).encode()
        return b"".join((head, super(OrderBookAir, self).public_bytes(), self.side_root,
                         np.ascontiguousarray(self.leaves, dtype="<u4").tobytes()))

    def leaf_table(self) -> np.ndarray:
        """The verifier's side of the leaf tuple: <7, j, [j < ops], leaf_j>
        for j = 0 .. T - 2, ``(T - 1, 11)`` canonical."""
        n = self.trace_length - 1
        table = np.empty((n, LEAF_ARITY), dtype=np.uint32)
        table[:, 0], table[:, 1] = TAG_LEAF, np.arange(n, dtype=np.uint32)
        table[:, 2] = np.arange(n) < self.n_ops
        table[:, 3:] = self.leaves
        return table

    def public_sum(self, challenges: np.ndarray) -> Ext:
        """The verifier's side of the sum: the leaf table's fractions."""
        coeffs = self.lu.compression_coefficients(challenges, LEAF_ARITY)
        return Ext.from_mont(_public_sum([self.leaf_table()], challenges[0], coeffs))

    # ------------------------------------------------------ constraints --
    def boundaries(self, f: Frame) -> list[BoundaryConstraint]:
        out = super().boundaries(f)
        for c in TYPES + DATA:
            out.append(BoundaryConstraint(f"lane: the last row is no leaf ({c} = 0)", c, -1, const(0)))
        return out

    def transitions(self, f: Frame) -> list[TransitionConstraint]:
        key = (self.trace_length, self.log2_capacity)
        cached = ZkOpsAir._transitions_by_key.get(key)
        if cached is None:
            cached = ZkOpsAir._transitions_by_key[key] = self._transitions(f) + self._lane(f)
        return cached

    def _lane(self, f: Frame) -> list[TransitionConstraint]:
        c = f.cur
        out: list[TransitionConstraint] = []

        def add(name: str, expr: Expr, every_row: bool = False) -> None:
            out.append(TransitionConstraint(f"lane: {name}", expr, expr.degree, every_row))

        for t in TYPES:
            add(f"boolean {t}", c(t) * (1 - c(t)))
        add("one row type on every row but the last", c("lo") + c("lt") + c("ld") - 1)
        for e in DATA:
            add(f"a dummy's data is zero ({e})", c("ld") * c(e))
        for e in DATA[TRADE_ELEMENTS:]:
            add(f"a trade leaf has six fields ({e} = 0)", c("lt") * c(e))
        # check 19: a MATCH fills at least one lot (fl is below 2^30, so
        # fl != 0 means fl >= 1); fli is 0 on every other row
        add("check 19: a MATCH's fill has an inverse", c("sM") * (c("fl") * c("fli") - 1))
        add("fli = 0 off MATCH", (1 - c("sM")) * c("fli"), every_row=True)
        for b in BLIND_COLUMNS:
            add(f"blinding {b} = 0 off row 0", c("row") * c(b), every_row=True)
        out += P2.transitions(f, [c(x) for x in SALTS + DATA])
        return out


class ZkBatchStatement(Statement):
    """A zk batch's statement: `book` (ZkBookAir) then `ops` (ZkOpsAir),
    the challenges shared, the claimed sums adding up to minus the leaf
    table's fractions (the only public side of the sum), those T - 1
    fractions counted (public_fractions).  The target reads the ops
    domain's leaves, absorbed with its public bytes."""

    def __init__(self, book_length: int, ops: ZkOpsAir):
        if book_length < ops.capacity:
            raise ValueError(f"a book domain of {book_length} rows for a capacity of {ops.capacity}")
        if ops.n_ops > book_length:
            raise ValueError(f"{ops.n_ops} operations in a zk batch whose book domain has {book_length} rows "
                             f"(its record checks take one operation a row)")
        self.book = ZkBookAir(book_length, ops.resumed, ops.trace_length, ops.log2_capacity)
        self.ops = ops
        super().__init__("orderbook-zk", [("book", self.book), ("ops", ops)],
                         target=lambda challenges: -ops.public_sum(challenges),
                         public=b"", public_fractions=ops.trace_length - 1)


@functools.lru_cache(maxsize=16)
def shape_statement(log2_capacity: int, ops_length: int) -> ZkBatchStatement:
    """A zk statement of this shape (one operation, zero leaves): what the
    parameter chooser and a chain's digest read (heights, columns,
    constraints, fractions), none of which depends on the batch."""
    air = ZkOpsAir(ops_length, log2_capacity, 1, 0, 0, 1, False,
                   np.zeros((ops_length - 1, LEAF_ELEMENTS), dtype=np.uint32), bytes(32))
    return ZkBatchStatement(book_length(1 << log2_capacity), air)


def column_counts(statement: ZkBatchStatement) -> dict[str, int]:
    """Main columns, LogUp extension columns and fractions per row, by
    domain: the figures docs/ZK.md quotes."""
    out = {}
    for dom in statement.domains:
        air = dom.air
        out[dom.name] = {"main": air.num_main_columns, "aux": len(air.aux_columns),
                         "fractions": len(air.lu.fractions), "constraints": len(air.transition_constraints)}
    return out
