"""The statement of docs/STATEMENT.md as constraints: two domains.

``book`` (BookAir, S = max(capacity, 16) rows; row a is address a):

    pre   (EXTERNAL)  p0..p7     the state table before the batch (rows >= capacity zero)
    post  (exported)  q0..q7     the state table after it
    stamp             row, pts   the address, its last write's timestamp

``ops`` (OrderBookAir, T' rows: the smallest power of two >= max(16, rows + 1)
for the batch's rows and its PAD row):

    exec              EXEC_COLUMNS: row counter, range multiplicities, step
                      selectors, the operation's context, four accesses
                      (H, A, B, C), comparison limbs, helpers

One LogUp sum over tagged tuples, split by domain: memory (tag 1) on both,
range (2), op (3), outcome (4), trade (5) on ``ops``.  Each domain claims
its part (statement.py: the claimed sums, bound before alpha and z, each
domain's running sum closing on its own claim); the claims must add up to
``-public_sum``, the verifier's side of the op, outcome and trade tables
(`batch_statement`).

Every constraint has degree <= 3.  The constraint families are named after
the rule of docs/STATEMENT.md they enforce; debug mode (prove(...,
debug=True)) reports the first failing one by that name.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ...engine.records import FLAGS_KNOWN, MAX_PRICE, MAX_QTY, Kind, Reason, Side, Status
from .. import extension as E
from .. import field as F
from .. import logup
from ..air import Air, BoundaryConstraint, Frame, Segment, TransitionConstraint
from ..expr import const
from ..ext_scalar import Ext
from ..statement import Statement

WORD = 8
GEN_LIMIT = 1 << 30
#: the largest price or quantity the AIR can compare soundly, and so the
#: engine's limit.  A difference of two values below 2^30 spans (-2^30, 2^30):
#: 2^31 - 1 integers, more than p < 2^31 field elements, so "d in [0, 2^30)"
#: cannot tell every negative difference from a positive one.  With every
#: operand at most p - 2^30 - 1 = 2^30 - 2^27, a negative difference -x
#: (x <= p - 2^30) is the field element p - x >= 2^30, outside the range check.
PROVABLE_MAX = F.P - (1 << 30) - 1
assert MAX_PRICE == MAX_QTY == PROVABLE_MAX, "the engine's limits must be the provable ones"
TAG_MEM, TAG_RANGE, TAG_OP, TAG_OUT, TAG_TRADE = 1, 2, 3, 4, 5

# step selectors (one-hot per row); the PEEK roles split PEEK by what it proves.
# sN is the one row of an operation rejected on its public fields (it does
# nothing); sZ pads the trace after the last operation
STEPS = ("sN", "sM", "sR", "sC", "sD", "sZ",
         "pk_stop", "pk_cross", "pk_full", "pk_stale", "pk_fok")
PEEKS = ("pk_stop", "pk_cross", "pk_full", "pk_stale", "pk_fok")
# the operation's effective kind (one-hot): k_z = rejected on its public fields
KINDS = ("k_lim", "k_ioc", "k_fok", "k_post", "k_can", "k_red", "k_z")
KIND_CODE = {"k_lim": 1, "k_ioc": 2, "k_fok": 4, "k_post": 5, "k_can": 6, "k_red": 7, "k_z": 0}
CONTEXT = KINDS + ("buy", "lim", "qty", "hslot", "hgen", "alo", "ahi")
#: the outcome an operation's last row proves, by that row's step (sN, a
#: rejection on the public fields, has the all-zero outcome the verifier
#: checks on the record)
END_STATUS = {"sR": Status.RESTED, "sC": Status.CANCELLED, "sD": Status.REDUCED,
              "sM": Status.FILLED, "pk_stop": Status.EXPIRED, "pk_stale": Status.REJECTED,
              "pk_cross": Status.REJECTED, "pk_full": Status.REJECTED, "pk_fok": Status.REJECTED}
END_REASON = {"pk_stale": Reason.STALE_HANDLE, "pk_cross": Reason.WOULD_CROSS,
              "pk_full": Reason.BOOK_FULL, "pk_fok": Reason.FOK_UNFILLABLE}
HCELLS = 6  # header cells 6, 7 are zero forever: not columns
#: the degree of OrderBookAir's constraints (tests hold max_degree to it)
CONSTRAINT_DEGREE = 3
#: the widest public tuple (public_tables: op rows; outcome 8, trade 9)
PUBLIC_ARITY = 10
#: the cells each access can write.  B and C are the neighbours of a slot
#: being linked or unlinked: only their links change (B: prev and next, C:
#: prev), so their other cells are written back as read, and the write's
#: tuple takes those cells from the old word's columns: no column, no
#: constraint to hold a copy equal to the original
WRITES = {"H": tuple(range(HCELLS)), "A": tuple(range(WORD)), "B": (5, 6), "C": (5,)}


def written(x: str, j: int) -> str:
    """The column holding cell j of the word access x writes."""
    return f"n{x}{j}" if j in WRITES[x] else f"o{x}{j}"


def _access_columns():
    cols = ["mH", "tH"] + [f"oH{j}" for j in range(HCELLS)] + [f"nH{j}" for j in WRITES["H"]]
    for x in "ABC":
        cols += [f"m{x}", f"a{x}", f"t{x}"] + [f"o{x}{j}" for j in range(WORD)] \
            + [f"n{x}{j}" for j in WRITES[x]]
    return cols


#: the longest `ops` domain, log2: a comparison's top limb is range-checked
#: twice, as itself and scaled by 2^s (s = kL - 30), and the scaled lookup
#: bounds it only while the scaling cannot wrap mod p, (2^L - 1) 2^s < p:
#: true up to L = 20 (s = 10), false from L = 21 (two limbs, s = 12), where
#: thousands of tops below 2^L land in [0, T') after wrapping
MAX_LOG_OPS = 20


def limbs_for(trace_length: int) -> tuple[int, int]:
    """(L, k): limb width log2 T' and limbs per 30-bit difference (sound
    for T' up to 2^MAX_LOG_OPS only: OrderBookAir refuses longer)."""
    lb = trace_length.bit_length() - 1
    return lb, math.ceil(30 / lb)


def linear_values(trace_length: int) -> dict:
    """The values of the rows that are linear combinations of exec columns,
    and so have no column of their own: name -> a function of `get` (a
    column's value by name: an expression of a frame, or a whole column of
    a witness) giving it.  A constraint that names one reads its
    expression; the witness computes it from the columns.  Replacing a
    column v by the linear expression e its own constraint "v = e" pinned
    it to keeps the constraint system equivalent: every other constraint
    keeps its degree (e has degree 1), and the one that defined v becomes
    "e = e" (docs/STATEMENT.md, "Linear values").

    * `sN`, `k_z`: one of each one-hot family, 1 minus the others (the
      family's "one per row" constraint).
    * `cmp1`, `cmp2`: each comparison is the sum of its limbs (the limbs are
      what the range checks see).
    * `sb`, `sw`, `nsb`, `nsw`: the own side's best and worst before and
      after the step, the header's pair of cells less the opposite side's."""
    L, k = limbs_for(trace_length)

    def one_minus(names):
        return lambda get: 1 - sum((get(x) for x in names[1:]), get(names[0]))

    def limbs(c):
        return lambda get: sum((get(f"{c}_{i}") * (1 << (i * L)) for i in range(1, k)), get(f"{c}_0"))

    def own(h, lo, hi, opposite):
        return lambda get: get(f"{h}{lo}") + get(f"{h}{hi}") - get(opposite)

    return {"sN": one_minus([x for x in STEPS if x != "sN"]),
            "k_z": one_minus([x for x in KINDS if x != "k_z"]),
            "cmp1": limbs("c1"), "cmp2": limbs("c2"),
            "sb": own("oH", 0, 2, "ob"), "sw": own("oH", 1, 3, "ow"),
            "nsb": own("nH", 0, 2, "nob"), "nsw": own("nH", 1, 3, "now")}


#: the names linear_values defines (the same at every trace length)
LINEAR = ("sN", "k_z", "cmp1", "cmp2", "sb", "sw", "nsb", "nsw")


def exec_columns(trace_length: int) -> tuple[str, ...]:
    """The `ops` domain's committed columns, in order (the values of
    LINEAR are not among them: linear_values)."""
    _, k = limbs_for(trace_length)
    return tuple(x for x in
                 ["row", "rm"] + list(STEPS) + ["first", "last", "oi"] + list(CONTEXT)
                 + ["rem", "tn", "os", "og", "acc"]
                 + ["sel", "lv", "fl", "gw", "ginv", "zv1", "zi1", "nz1", "zv2", "zi2", "nz2",
                    "cr", "sf", "fg", "fc", "cxs", "cx", "dB", "dC", "ob", "ow", "nob", "now"]
                 + [f"c1_{i}" for i in range(k)] + [f"c2_{i}" for i in range(k)]
                 + _access_columns()
                 if x not in LINEAR)


# ------------------------------------------------------ public tables --

def classify(op, capacity: int) -> dict:
    """What an operation's first row takes from its public record: the
    effective kind (None: rejected on its fields alone, checked by the
    verifier) and the fields the AIR uses.  MARKET is IOC with the extreme
    limit (MAX_PRICE for a buy, 1 for a sell), as the engine does."""
    kind, side, price, qty = int(op["kind"]), int(op["side"]), int(op["price"]), int(op["qty"])
    handle, flags, account = int(op["handle"]), int(op["flags"]), int(op["account"])
    out = dict(kind=None, buy=0, lim=0, qty=0, hslot=0, hgen=0, alo=0, ahi=0, reason=None)

    def reject(reason):
        out["reason"] = reason
        return out

    if flags & ~FLAGS_KNOWN:
        return reject(Reason.BAD_FLAGS)
    if kind in (Kind.CANCEL, Kind.REDUCE):
        if kind == Kind.REDUCE and not 1 <= qty <= MAX_QTY:
            return reject(Reason.BAD_QTY)
        slot, gen = handle & 0xFFFFFFFF, handle >> 32
        if slot == 0 or slot >= capacity or gen >= GEN_LIMIT:
            return reject(Reason.UNKNOWN_HANDLE)
        out.update(kind="k_can" if kind == Kind.CANCEL else "k_red", hslot=slot, hgen=gen,
                   qty=qty if kind == Kind.REDUCE else 0)
        return out
    if kind not in (Kind.LIMIT, Kind.IOC, Kind.MARKET, Kind.FOK, Kind.POST_ONLY):
        return reject(Reason.BAD_KIND)
    if side not in (Side.BUY, Side.SELL):
        return reject(Reason.BAD_SIDE)
    if kind != Kind.MARKET and not 1 <= price <= MAX_PRICE:
        return reject(Reason.BAD_PRICE)
    if not 1 <= qty <= MAX_QTY:
        return reject(Reason.BAD_QTY)
    buy = int(side == Side.BUY)
    if kind == Kind.MARKET:       # no limit: above every provable price, or 1
        price = MAX_PRICE if buy else 1
    name = {Kind.LIMIT: "k_lim", Kind.IOC: "k_ioc", Kind.MARKET: "k_ioc", Kind.FOK: "k_fok",
            Kind.POST_ONLY: "k_post"}[Kind(kind)]
    out.update(kind=name, buy=buy, lim=price, qty=qty, alo=account & 0xFFFF, ahi=account >> 16)
    return out


def classify_all(ops: np.ndarray, capacity: int) -> dict[str, np.ndarray]:
    """`classify` over a whole array of records at once (the verifier runs
    it on every batch): int64 arrays "code" (the effective kind's code, 0 if
    rejected on its fields), "reason" (that rejection's, else 0), "buy", "lim",
    "qty", "hslot", "hgen", "alo", "ahi".  tests/test_orderbook_air.py holds
    it equal to `classify`, the readable definition."""
    kind = ops["kind"].astype(np.int64)
    side = ops["side"].astype(np.int64)
    price = ops["price"].astype(np.int64)
    qty = ops["qty"].astype(np.int64)
    flags = ops["flags"].astype(np.int64)
    handle = ops["handle"].astype(np.uint64)
    account = ops["account"].astype(np.int64)
    slot = (handle & np.uint64(0xFFFFFFFF)).astype(np.int64)
    gen = (handle >> np.uint64(32)).astype(np.int64)
    n = len(ops)
    reason = np.zeros(n, dtype=np.int64)

    def reject(mask, why):
        reason[(reason == 0) & mask] = why

    handled = (kind == Kind.CANCEL) | (kind == Kind.REDUCE)
    new = (kind == Kind.LIMIT) | (kind == Kind.IOC) | (kind == Kind.MARKET) | (kind == Kind.FOK) \
        | (kind == Kind.POST_ONLY)
    qty_ok = (qty >= 1) & (qty <= MAX_QTY)
    reject((flags & ~FLAGS_KNOWN) != 0, Reason.BAD_FLAGS)
    reject((kind == Kind.REDUCE) & ~qty_ok, Reason.BAD_QTY)
    reject(handled & ((slot == 0) | (slot >= capacity) | (gen >= GEN_LIMIT)), Reason.UNKNOWN_HANDLE)
    reject(~handled & ~new, Reason.BAD_KIND)
    reject(new & (side != Side.BUY) & (side != Side.SELL), Reason.BAD_SIDE)
    reject(new & (kind != Kind.MARKET) & ((price < 1) | (price > MAX_PRICE)), Reason.BAD_PRICE)
    reject(new & ~qty_ok, Reason.BAD_QTY)
    ok = reason == 0
    codes = np.zeros(8, dtype=np.int64)      # record kind -> effective kind code
    for record_kind, name in ((Kind.LIMIT, "k_lim"), (Kind.IOC, "k_ioc"), (Kind.MARKET, "k_ioc"),
                              (Kind.FOK, "k_fok"), (Kind.POST_ONLY, "k_post"),
                              (Kind.CANCEL, "k_can"), (Kind.REDUCE, "k_red")):
        codes[record_kind] = KIND_CODE[name]
    code = np.where(ok, codes[np.clip(kind, 0, 7)], 0)
    buy = (ok & new & (side == Side.BUY)).astype(np.int64)
    market = kind == Kind.MARKET
    lim = np.where(ok & new, np.where(market, np.where(buy == 1, MAX_PRICE, 1), price), 0)
    return {"code": code, "reason": reason, "buy": buy, "lim": lim,
            "qty": np.where(ok & (new | (kind == Kind.REDUCE)), qty, 0),
            "hslot": np.where(ok & handled, slot, 0), "hgen": np.where(ok & handled, gen, 0),
            "alo": np.where(ok & new, account & 0xFFFF, 0), "ahi": np.where(ok & new, account >> 16, 0)}


def noncanonical(ops: np.ndarray, trades: np.ndarray, capacity: int, first_seq: int,
                 c: dict[str, np.ndarray] | None = None) -> str | None:
    """The first public field that the tables below could only take mod p,
    or None.  Record fields are up to 32 bits wide and p < 2^31: a trade at
    price x + p, or an outcome claiming x + p lots filled, has the same tuple
    as the truth and would verify.  Every field that enters a tuple must
    therefore lie in the range its trace value has: prices and quantities in
    1 .. MAX_PRICE / MAX_QTY, slots below the capacity, generations below
    2^30, a filled quantity and a trade count (every trade fills a lot) at
    most MAX_QTY, a trade's taker inside the batch.  The op fields are
    already bounded by classify.  `c` is classify_all(ops, capacity) when
    the caller has it."""
    if c is None:
        c = classify_all(ops, capacity)
    live = c["code"] != 0
    own = live & (c["code"] != KIND_CODE["k_can"]) & (c["code"] != KIND_CODE["k_red"])
    handle = ops["handle"].astype(np.uint64)
    slot = (handle & np.uint64(0xFFFFFFFF)).astype(np.int64)
    gen = (handle >> np.uint64(32)).astype(np.int64)
    for bad, what in ((live & (ops["filled"].astype(np.int64) > MAX_QTY), "filled above MAX_QTY"),
                      (live & (ops["trades"].astype(np.int64) > MAX_QTY),
                       "a trade count above MAX_QTY"),
                      (own & ((slot >= capacity) | (gen >= GEN_LIMIT)),
                       "an assigned handle outside the book")):
        if bad.any():
            return f"operation {int(np.argmax(bad))}: {what}"
    mh = trades["maker_handle"].astype(np.uint64)
    mslot = (mh & np.uint64(0xFFFFFFFF)).astype(np.int64)
    mgen = (mh >> np.uint64(32)).astype(np.int64)
    price, qty = trades["price"].astype(np.int64), trades["qty"].astype(np.int64)
    seq = trades["taker_seq"].astype(np.uint64)
    first = np.uint64(first_seq)
    for bad, what in (((seq < first) | (seq - first >= np.uint64(len(ops))), "a taker outside the batch"),
                      ((price < 1) | (price > MAX_PRICE), "price outside 1 .. MAX_PRICE"),
                      ((qty < 1) | (qty > MAX_QTY), "qty outside 1 .. MAX_QTY"),
                      ((mslot < 1) | (mslot >= capacity) | (mgen >= GEN_LIMIT),
                       "a maker handle outside the book")):
        if bad.any():
            return f"trade {int(np.argmax(bad))}: {what}"
    return None


def public_tables(ops: np.ndarray, trades: np.ndarray, capacity: int, first_seq: int,
                  c: dict[str, np.ndarray] | None = None):
    """The verifier's op, outcome and trade tuples (tags included), as uint32
    arrays of canonical field elements, from the public records (refused,
    ValueError, when a field is not canonical: see `noncanonical`, after
    which every entry lies in [0, p) and is written as it is).  `c` is
    classify_all(ops, capacity) when the caller has it."""
    return _public_rows(ops, trades, first_seq, check_canonical(ops, trades, capacity, first_seq, c))


def _public_rows(ops: np.ndarray, trades: np.ndarray, first_seq: int, c: dict[str, np.ndarray]):
    """public_tables of records check_canonical has passed (`c`: their
    classify_all, which it returns): the tables alone, not checked again."""
    n = len(ops)
    # each table filled column by column in place (no stack of int64 copies:
    # the verifier builds these for every batch)
    op_rows = np.empty((n, 10), dtype=np.uint32)
    op_rows[:, 0], op_rows[:, 1] = TAG_OP, np.arange(n, dtype=np.uint32)
    for j, k in enumerate(("code", "buy", "lim", "qty", "hslot", "hgen", "alo", "ahi"), 2):
        op_rows[:, j] = c[k]
    live = c["code"] != 0
    own = live & (c["code"] != KIND_CODE["k_can"]) & (c["code"] != KIND_CODE["k_red"])
    out_rows = np.empty((n, 8), dtype=np.uint32)
    out_rows[:, 0], out_rows[:, 1] = TAG_OUT, op_rows[:, 1]
    for j, f in enumerate(("status", "reason", "filled", "trades"), 2):
        out_rows[:, j] = np.where(live, ops[f], 0)
    h = np.where(own, ops["handle"], np.uint64(0))
    out_rows[:, 6], out_rows[:, 7] = h & np.uint64(0xFFFFFFFF), h >> np.uint64(32)
    return [op_rows, out_rows, trade_table(trades, first_seq)]


def check_canonical(ops: np.ndarray, trades: np.ndarray, capacity: int, first_seq: int,
                    c: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """ValueError unless the public records are canonical (`noncanonical`
    says why); returns classify_all(ops, capacity) (`c`, when given)."""
    if c is None:
        c = classify_all(ops, capacity)
    why = noncanonical(ops, trades, capacity, first_seq, c)
    if why:
        raise ValueError(f"public records not canonical: {why}")
    return c


def trade_table(trades: np.ndarray, first_seq: int) -> np.ndarray:
    """The trade tuples <5, i, tn, maker slot, maker generation, price, qty,
    maker account halves> of a trade list, ``(m, 9)`` uint32, each field
    as the record has it (public_tables checks them first: canonical only
    then): i the taker's index in the batch, tn the trade's number within
    its operation, counted in list order."""
    taker = trades["taker_seq"].astype(np.int64) - first_seq
    # a trade's number within its operation: how many trades of the same
    # taker come before it in the list (a stable sort keeps list order)
    order = np.argsort(taker, kind="stable")
    sorted_taker = taker[order]
    group_start = np.r_[0, np.flatnonzero(np.diff(sorted_taker)) + 1].astype(np.int64) \
        if len(trades) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[group_start, len(trades)])
    number = np.empty(len(trades), dtype=np.int64)
    number[order] = np.arange(len(trades)) - np.repeat(group_start, sizes)
    mh, acct = trades["maker_handle"], trades["maker_account"]
    rows = np.empty((len(trades), 9), dtype=np.uint32)
    rows[:, 0], rows[:, 1], rows[:, 2] = TAG_TRADE, taker, number
    rows[:, 3], rows[:, 4] = mh & np.uint64(0xFFFFFFFF), mh >> np.uint64(32)
    rows[:, 5], rows[:, 6] = trades["price"], trades["qty"]
    rows[:, 7], rows[:, 8] = acct & 0xFFFF, acct >> 16
    return rows


def _table_sum(rows: np.ndarray, alpha: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """sum over rows of 1 / (alpha - compress(row)), (4,) Montgomery, with
    compress(row) = sum_j coeffs[j] row[j] (coeffs: LogUp.compression_coefficients).  The
    readable definition; derive computes the same sum over all three tables
    at once (_public_sum), and tests hold the two equal."""
    if len(rows) == 0:
        return np.zeros(4, dtype=np.uint32)
    n = len(rows)
    acc = E.from_base(F.encode(rows[:, 0]))
    for j in range(1, rows.shape[1]):
        pw = np.ascontiguousarray(np.broadcast_to(coeffs[j], (n, 4)))
        acc = E.add(acc, E.mul_base(pw, F.encode(rows[:, j])))
    d = E.sub(np.ascontiguousarray(np.broadcast_to(alpha, (n, 4))), acc)
    return (np.sum(E.inv(d).astype(np.uint64), axis=0) % F.P).astype(np.uint32)


def _public_sum(tables: list[np.ndarray], alpha: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """sum over the rows of every table of 1 / (alpha - compress(row)), (4,)
    Montgomery: the sum of _table_sum over the tables.  compress(row) =
    sum_j coeffs[j] row[j] for every row of a table is one combine_rows
    (with -coeffs[j], so alpha - compress is one add), written into one
    array for all the tables, then one add, one batch inversion and one
    sum."""
    width = max(t.shape[1] for t in tables)
    negated = (-F.decode(np.ascontiguousarray(coeffs[:width])).astype(np.int64)) % F.P
    # combine_rows multiplies in Montgomery form, a * b / 2^32: canonical
    # rows (x, read as the Montgomery form of x / 2^32) against coefficients
    # encoded twice (c 2^64) give x c 2^32, the Montgomery form of x c, with
    # no pass to encode the rows
    twice = E.encode(E.encode(negated.astype(np.uint32)))
    d = np.empty((sum(len(t) for t in tables), 4), dtype=np.uint32)
    at = 0
    for t in tables:
        if len(t):
            E.combine_rows(np.ascontiguousarray(t, dtype=np.uint32),
                           np.ascontiguousarray(twice[:t.shape[1]]), out=d[at:at + len(t)])
            at += len(t)
    if not at:
        return np.zeros(4, dtype=np.uint32)
    F.add(d, np.ascontiguousarray(np.broadcast_to(alpha, d.shape)), out=d)    # canonical, < p
    # each component summed along a contiguous row of the transpose: numpy
    # sums a (k, 4) array down its columns ~6x slower.  Below 2^31 a value,
    # so no overflow under 2^33 rows
    total = np.ascontiguousarray(E.inv(d).T).sum(axis=1, dtype=np.uint64)
    return (total % F.P).astype(np.uint32)


def _outcome(codes: dict) -> callable:
    """The status or reason a last row proves: sum of code * step selector."""
    return lambda f: sum((int(v) * f.cur(step) for step, v in codes.items()), const(0))


def _record_bytes(records: np.ndarray):
    """The records' bytes as records.tobytes() gives them, without the copy."""
    return np.ascontiguousarray(records).view(np.uint8)


# -------------------------------------------------------------- the AIR --

#: the fewest rows of either domain (a power of two: the prover's minimum
#: trace, which keeps the FRI schedule's smallest layer meaningful)
MIN_ROWS = 16


def book_length(capacity: int) -> int:
    """S, the `book` domain's rows for a book of `capacity` slots: the
    capacity (a power of two), at least MIN_ROWS (the rows from the
    capacity on hold zero words: docs/STATEMENT.md, "every address below S
    is a word")."""
    return max(capacity, MIN_ROWS)


def book_fractions() -> list:
    """The `book` domain's two fractions, one group: each address's word
    before the batch supplied at time 0, its word after the batch consumed
    at its last write's time."""
    return [logup.supply([TAG_MEM, "row"] + [f"p{j}" for j in range(WORD)] + [0]),
            logup.consume([TAG_MEM, "row"] + [f"q{j}" for j in range(WORD)] + ["pts"])]


def fractions_for(trace_length: int, trade_accounts: bool = True) -> list:
    """The LogUp fractions on every row of an `ops` trace of this length
    (the limbs of the range checks depend on it).  `trade_accounts=False`
    narrows a MATCH row's trade tuple to <5, oi, tn, aA, oA7, oA0, fl>, the
    trade leaf's fields (zk mode, zk_air.py: docs/ZK.md 3.4; the maker's
    account is bound by its resting operation's leaf, not the trade's)."""
    L, k = limbs_for(trace_length)
    ts = lambda f: f.cur("row") + 1                    # noqa: E731
    # header access: address 0, cells 6 and 7 zero
    fr = [logup.supply([TAG_MEM, 0] + [f"nH{j}" for j in range(HCELLS)] + [0, 0, ts], "mH"),
          logup.consume([TAG_MEM, 0] + [f"oH{j}" for j in range(HCELLS)] + [0, 0, "tH"], "mH")]
    for x in "ABC":
        fr.append(logup.supply([TAG_MEM, f"a{x}"] + [written(x, j) for j in range(WORD)] + [ts],
                               f"m{x}"))
        fr.append(logup.consume([TAG_MEM, f"a{x}"] + [f"o{x}{j}" for j in range(WORD)]
                                + [f"t{x}"], f"m{x}"))
    fr.append(logup.supply([TAG_RANGE, "row"], "rm"))
    for x in "HABC":
        fr.append(logup.consume([TAG_RANGE, lambda f, x=x: f.cur("row") - f.cur(f"t{x}")],
                                f"m{x}"))
    # limbs below the top in [0, T'); the top limb in [0, T') and, scaled by
    # 2^(kL - 30), in [0, T') again: top < 2^(30 - (k-1)L).  The scaled
    # lookup alone is not enough: top * 2^s lands in [0, T') for T' field
    # elements top, most of them huge (v / 2^s for v not a multiple of 2^s).
    top = 1 << (k * L - 30)
    for c in ("c1", "c2"):
        for i in range(k):
            fr.append(logup.consume([TAG_RANGE, f"{c}_{i}"]))
        if top > 1:
            fr.append(logup.consume([TAG_RANGE, lambda f, c=c: f.cur(f"{c}_{k - 1}") * top]))
    code = lambda f: sum((KIND_CODE[n] * f.cur(n) for n in KINDS if KIND_CODE[n]), const(0))  # noqa
    fr.append(logup.consume([TAG_OP, "oi", code] + list(CONTEXT[len(KINDS):]), "first"))
    # the outcome, on the operation's last row: its step gives status and
    # reason; filled and trades count this row's own MATCH (fl is 0 on
    # every other step)
    fr.append(logup.consume([TAG_OUT, "oi", _outcome(END_STATUS), _outcome(END_REASON),
                             lambda f: f.cur("qty") - f.cur("rem") + f.cur("fl"),
                             lambda f: f.cur("tn") + f.cur("sM"), "os", "og"], "last"))
    trade = [TAG_TRADE, "oi", "tn", "aA", "oA7", "oA0", "fl"] + (["oA3", "oA4"] if trade_accounts else [])
    fr.append(logup.consume(trade, "sM"))
    return fr


def public_fractions(ops_length: int) -> int:
    """The most fractions the verifier's public tables may hold beside an
    `ops` domain of this length: an op and an outcome tuple per operation,
    a trade tuple per trade, at most one operation and one trade per row
    (check_public refuses longer lists)."""
    return 3 * ops_length


@functools.lru_cache(maxsize=64)
def algebraic_degree(book_length: int, ops_length: int, log_blowup: int) -> int:
    """The batch statement's algebraic degree at blowup 2^log_blowup
    (Statement.algebraic_degree), from the two heights alone (the
    parameter chooser and a verifier's check_claims have no statement yet):
    d (S + T') for the check at one z on both domains, and 3 F for the one
    LogUp sum, F every fraction of both domains and the public tables'
    (public_fractions), whichever is larger; plus 2 M_1 for the shorter
    domain's DEEP batching and FRI injection (M_1 the tall domain's LDE
    size).  A test holds it equal to the statement's own."""
    lu = len(book_fractions()) * book_length + len(fractions_for(ops_length)) * ops_length
    return max(CONSTRAINT_DEGREE * (book_length + ops_length),
               3 * (lu + public_fractions(ops_length))) \
        + 2 * (max(book_length, ops_length) << log_blowup)


def _claimed(f: Frame):
    return f.claimed_sum()


class BookAir(Air):
    """The `book` domain: the state tables before and after the batch and
    each address's last write time, S rows (row a is address a).  Its part
    of the memory argument supplies every address's word before the batch
    at time 0 and consumes its word after it at `pts`; the `ops` domain's
    accesses supply and consume everything between."""

    #: the statement's challenges (OrderBookAir's): alpha and the compression
    #: challenges of an 11-entry memory tuple
    num_challenges = 11

    def __init__(self, book_length: int):
        self.main_segments = (
            Segment("pre", tuple(f"p{j}" for j in range(WORD)), external=True),
            Segment("post", tuple(f"q{j}" for j in range(WORD)), exported=True),
            Segment("stamp", ("row", "pts")),
        )
        self.lu = logup.LogUp("lu", book_fractions(), alpha=0, beta=1, target=_claimed)
        self.shared_argument = self.lu
        self.lookup_arguments = (self.lu,)
        self.aux_columns = self.lu.columns
        super().__init__(book_length)

    #: book length -> transition constraints (as OrderBookAir's: a chain's
    #: AIRs share one list, and with it the compiled constraint program)
    _transitions_by_length: dict = {}

    def transitions(self, f: Frame) -> list[TransitionConstraint]:
        cached = BookAir._transitions_by_length.get(self.trace_length)
        if cached is None:
            cached = BookAir._transitions_by_length[self.trace_length] = [
                TransitionConstraint("row' = row + 1", f.next("row") - f.cur("row") - 1, 1)
            ] + self.lu.transitions(f)
        return cached

    def boundaries(self, f: Frame) -> list[BoundaryConstraint]:
        return [BoundaryConstraint("row[0] = 0", "row", 0, const(0))] + self.lu.boundaries(f)

    def build_aux(self, main, challenges):
        return logup.build_aux(self, [self.lu], main, challenges)


class OrderBookAir(Air):
    """The `ops` domain: the batch's steps, one a row, on T' rows."""

    #: alpha, then one compression challenge per tuple entry after the first
    #: (the widest tuple, a memory access, has 11): the LogUp sum's
    num_challenges = 11

    def __init__(self, trace_length: int, log2_capacity: int, ops: np.ndarray,
                 trades: np.ndarray, first_seq: int, symbol: int = 0, batch_id: int = 0,
                 classified: dict[str, np.ndarray] | None = None):
        """`classified` is classify_all(ops, 1 << log2_capacity) when the
        caller has computed it from these same records (verify_batch: the
        plain checks do), else it is computed here."""
        capacity = 1 << log2_capacity
        if not MIN_ROWS <= trace_length <= 1 << MAX_LOG_OPS:
            raise ValueError(f"an ops trace of {trace_length} rows (from {MIN_ROWS} to "
                             f"2^{MAX_LOG_OPS}: the comparisons' limbs hold no further)")
        self.capacity, self.log2_capacity = capacity, log2_capacity
        self.ops, self.trades = ops, trades
        self.first_seq, self.symbol, self.batch_id = first_seq, symbol, batch_id
        self.L, self.k = limbs_for(trace_length)
        #: classify_all of the records (check_public reuses it)
        self.classified = classify_all(ops, capacity) if classified is None else classified
        # records that are not canonical are refused here, where the AIR is
        # built (check_public relies on it); their tables wait for `tables`
        check_canonical(ops, trades, capacity, first_seq, self.classified)
        self.main_segments = (Segment("exec", exec_columns(trace_length)),)
        self._share_sum(fractions_for(trace_length))
        super().__init__(trace_length, {"log2_capacity": log2_capacity, "ops": len(ops),
                                        "trades": len(trades)})

    def _share_sum(self, fractions: list) -> None:
        """The domain's one LogUp sum over `fractions`, shared with the
        statement's other domain (its target the claimed sum)."""
        self.lu = logup.LogUp("lu", fractions, alpha=0, beta=1, target=_claimed)
        self.shared_argument = self.lu
        self.aux_columns = self.lu.columns
        self.lookup_arguments = (self.lu,)
        if self.lu.challenges_used != self.num_challenges:
            raise AssertionError(f"the LogUp sum uses {self.lu.challenges_used} challenges, "
                                 f"num_challenges says {self.num_challenges}")

    # -------------------------------------------------------- public --
    @functools.cached_property
    def tables(self) -> list[np.ndarray]:
        """The op, outcome and trade tables (public_tables) of the records,
        checked when the AIR was built: made when first read, by the
        verifier's public_sum, so that a prover, which never reads them,
        does not build them."""
        return _public_rows(self.ops, self.trades, self.first_seq, self.classified)

    def public_bytes(self) -> bytes:
        """Everything public, in full: capacity, first sequence number,
        symbol, batch id, every operation record (outcomes included) and
        every trade."""
        head = b"zksidecar.orderbook.v2;" + str((self.log2_capacity, self.first_seq,
                                                  self.symbol, self.batch_id)).encode()
        # one join of the records' own bytes (not three concatenations of
        # copies: the verifier hashes about 1.6 MB of them per 2^14 operations)
        return b"".join((head, super().public_bytes(), _record_bytes(self.ops), _record_bytes(self.trades)))

    def public_sum(self, challenges: np.ndarray) -> Ext:
        """The verifier's side of the op, outcome and trade tables: the sum
        of their fractions at these challenges ((k, 4) Montgomery)."""
        coeffs = self.lu.compression_coefficients(challenges, PUBLIC_ARITY)
        return Ext.from_mont(_public_sum(self.tables, challenges[0], coeffs))

    def build_aux(self, main, challenges):
        return logup.build_aux(self, [self.lu], main, challenges)

    # ------------------------------------------------------ the sum --
    # ------------------------------------------------------ constraints --
    def boundaries(self, f):
        out = [BoundaryConstraint("row[0] = 0", "row", 0, const(0)),
               BoundaryConstraint("rule 1: the trace starts with an operation", "first", 0, const(1)),
               BoundaryConstraint("rule 1: op_index[0] = 0", "oi", 0, const(0))]
        # the last row's own constraints are not transition-checked ("one
        # step per row" and the booleans do not reach it): it must be a PAD
        # row with every other step selector 0, no access and no fraction of
        # a step, so that no transition into it can be met by a selector it
        # carries (a MATCH on row T - 2 followed by a "stop PEEK" beside sZ)
        out.append(BoundaryConstraint("rule 1: the last row is PAD", "sZ", -1, const(1)))
        # (sN, a linear value, is 1 minus the others: 0 here)
        for col in tuple(s for s in STEPS if s not in ("sZ",) + LINEAR) + ("first", "last", "mH", "mA", "mB", "mC"):
            out.append(BoundaryConstraint(f"rule 1: the last row is PAD ({col} = 0)", col, -1, const(0)))
        return out + self.lu.boundaries(f)

    #: trace length -> transition constraints: they depend on the trace length
    #: alone (column layout, limb sizes), not on the batch, so every AIR of a
    #: chain shares one DAG instead of building ~400 constraints per proof
    _transitions_by_length: dict = {}

    def transitions(self, f):
        cached = OrderBookAir._transitions_by_length.get(self.trace_length)
        if cached is None:
            cached = OrderBookAir._transitions_by_length[self.trace_length] = self._transitions(f)
        return cached

    def _transitions(self, f):
        linear = linear_values(self.trace_length)

        def c(x):
            return linear[x](c) if x in linear else f.cur(x)

        def n(x):
            return linear[x](n) if x in linear else f.next(x)

        out: list[TransitionConstraint] = []

        def add(name, expr):
            out.append(TransitionConstraint(name, expr, expr.degree))

        def s(*names):
            return sum((c(x) for x in names[1:]), c(names[0]))

        sP = s(*PEEKS)
        # ---- shape: booleans, one-hot selectors, the row counter
        for x in STEPS + KINDS + ("first", "last", "buy", "sel", "lv", "gw", "cr", "sf",
                                  "mH", "mA", "mB", "mC"):
            add(f"boolean {x}", c(x) * (1 - c(x)))
        # one step per row, one kind per operation: sN and k_z are 1 minus
        # the others (linear_values), so each family sums to 1 by construction
        add("row' = row + 1", n("row") - c("row") - 1)
        add("lv only on MATCH", c("lv") * (1 - c("sM")))
        add("fill only on MATCH", c("fl") * (1 - c("sM")))
        add("crossing bit only on the FOK walk", c("cr") * (1 - c("pk_fok")))
        # zero tests
        for z in ("1", "2"):
            add(f"zero test {z}: zv*zi = nz", c(f"zv{z}") * c(f"zi{z}") - c(f"nz{z}"))
            add(f"zero test {z}: zv*(1-nz) = 0", c(f"zv{z}") * (1 - c(f"nz{z}")))
        # cmp1 and cmp2 are the sums of their limbs (linear_values)
        # helpers (defined on every row)
        sel = c("sel")
        sgn = 2 * sel - 1
        lim = c("lim")
        add("helper cx = (2sel-1)(lim - A.price)", c("cx") - sgn * (lim - c("oA0")))
        add("helper dB = (2sel-1)(B.price - lim)", c("dB") - sgn * (c("oB0") - lim))
        add("helper dC = (2sel-1)(lim - C.price)", c("dC") - sgn * (lim - c("oC0")))
        add("helper cxs", c("cxs") - (2 * c("cr") - 1) * c("cx") - c("cr") + 1)
        add("helper fg = cr*sf", c("fg") - c("cr") * c("sf"))
        add("helper fc = (cr - fg)*nz2", c("fc") - (c("cr") - c("fg")) * c("nz2"))
        for pre, w in (("o", ""), ("n", "n")):
            H = lambda j: c(f"{pre}H{j}")  # noqa: E731
            # (sb, sw, nsb, nsw: the header's pair less these, linear_values)
            add(f"helper {w}ob", c(f"{w}ob") - sel * H(2) - (1 - sel) * H(0))
            add(f"helper {w}ow", c(f"{w}ow") - sel * H(3) - (1 - sel) * H(1))
        add("gen wrap: gw -> gen = 2^30 - 1", c("gw") * (c("oA7") - (GEN_LIMIT - 1)))

        # ---- rule 1: operations once, in order; sequencing of steps.  An
        # operation is a run of rows from one with `first` to one with `last`
        # (the same row for a one-step operation); PAD rows come after the
        # last operation and belong to none
        first, last = c("first"), c("last")
        add("rule 1: op_index' = op_index + first'", n("oi") - c("oi") - n("first"))
        for x in CONTEXT:       # k_z (linear) follows from the other kinds
            if x not in LINEAR:
                add(f"rule 1: context {x} constant within an operation", (1 - n("first")) * (n(x) - c(x)))
        add("rule 1: after the last row comes a first row or PAD", last * (1 - n("first") - n("sZ")))
        add("rule 1: a first row follows a last row", n("first") * (1 - last))
        add("rule 1: PAD follows a last row or PAD", n("sZ") * (1 - last - c("sZ")))
        add("rule 1: PAD rows belong to no operation", c("sZ") * (first + last))
        # PAD is absorbing.  Hardening, given the rule above: a row after PAD
        # cannot be a first row, so it would continue the last operation,
        # and its steps would have to end on a last row before the final
        # (PAD) row: a second outcome of that operation, which the outcome
        # table refuses.  This makes "padding does nothing" a constraint
        # instead of a counting argument
        add("rule 1: PAD is followed by PAD", c("sZ") * (1 - n("sZ")))
        # the first step of each kind
        add("rule 5: LIMIT/IOC start with MATCH or the stop PEEK",
            first * (c("k_lim") + c("k_ioc")) * (1 - c("sM") - c("pk_stop")))
        add("rule 5: FOK starts with the look-ahead PEEK", first * c("k_fok") * (1 - c("pk_fok")))
        add("rule 5: POST_ONLY starts with the crossing-check PEEK",
            first * c("k_post") * (1 - c("pk_stop") - c("pk_cross")))
        add("rule 5: CANCEL/REDUCE start with CANCEL, REDUCE or the stale PEEK",
            first * (c("k_can") + c("k_red")) * (1 - c("sC") - c("sD") - c("pk_stale")))
        add("rule 5: a field rejection is one sN row", first * c("k_z") * (1 - c("sN")))
        add("rule 5: sN is an operation's last row", c("sN") * (1 - last))
        # what follows each step within its operation, and which steps end it
        sM = c("sM")
        add("rule 2: MATCH -> MATCH or stop PEEK, unless last", sM * (1 - last) * (1 - n("sM") - n("pk_stop")))
        add("rule 2: a taker ends on MATCH only when filled", sM * last * (c("rem") - c("fl")))
        add("rule 2: stop PEEK -> REST or book-full PEEK, unless last",
            c("pk_stop") * (1 - last) * (1 - n("sR") - n("pk_full")))
        add("rule 5: LIMIT/POST_ONLY remainder rests (or BOOK_FULL)",
            c("pk_stop") * (c("k_lim") + c("k_post")) * last)
        add("rule 5: IOC/MARKET remainder is dropped", c("pk_stop") * c("k_ioc") * (1 - last))
        add("rule 5: REST follows the stop PEEK", n("sR") * (1 - c("pk_stop")))
        add("rule 5: book-full PEEK follows the stop PEEK", n("pk_full") * (1 - c("pk_stop")))
        add("rule 5: single steps are last",
            s("sR", "sC", "sD", "pk_stale", "pk_cross", "pk_full") * (1 - last))
        add("rule 5: FOK walk continues from a look-ahead PEEK",
            n("pk_fok") * (1 - n("first")) * (1 - c("pk_fok")))
        add("rule 5: FOK walk goes on when crossing, short and not at the end",
            c("pk_fok") * c("fc") * (1 - n("pk_fok")))
        add("rule 5: FOK sufficient -> MATCH", c("pk_fok") * c("fg") * (1 - n("sM")))
        add("rule 5: FOK walk ends the operation only when unfillable",
            c("pk_fok") * (c("fg") + c("fc")) * last)
        add("rule 5: FOK unfillable is last", c("pk_fok") * (1 - c("fg") - c("fc")) * (1 - last))
        for step, bad in (("sM", ("k_post", "k_can", "k_red", "k_z")),
                          ("pk_stop", ("k_fok", "k_can", "k_red", "k_z")),
                          ("pk_cross", ("k_lim", "k_ioc", "k_fok", "k_can", "k_red", "k_z")),
                          ("pk_full", ("k_ioc", "k_fok", "k_can", "k_red", "k_z")),
                          ("pk_stale", ("k_lim", "k_ioc", "k_fok", "k_post", "k_z")),
                          ("pk_fok", ("k_lim", "k_ioc", "k_post", "k_can", "k_red", "k_z")),
                          ("sR", ("k_ioc", "k_fok", "k_can", "k_red", "k_z")),
                          ("sC", ("k_lim", "k_ioc", "k_fok", "k_post", "k_z")),
                          ("sD", ("k_lim", "k_ioc", "k_fok", "k_post", "k_can", "k_z")),
                          ("sN", ("k_lim", "k_ioc", "k_fok", "k_post", "k_can", "k_red"))):
            add(f"rule 5: {step} only for its kinds", c(step) * s(*bad))

        # ---- per-operation running values, each as it stands before the
        # row's own step (the outcome tuple adds the last row's MATCH)
        add("rule 3: first row: remaining = qty", first * (c("rem") - c("qty")))
        add("rule 3: remaining' = remaining - fill", (1 - n("first")) * (n("rem") - c("rem") + c("fl")))
        add("rule 6: first row: trade number 0", first * c("tn"))
        add("rule 6: trade number + 1 per MATCH", (1 - n("first")) * (n("tn") - c("tn") - sM))
        # the handle an operation is assigned: REST's slot and generation, on
        # the REST row (always its operation's last); 0 on every other row
        add("rule 5: handle = the rested slot (os)", c("os") - c("sR") * c("aA"))
        add("rule 5: handle = the rested generation (og)", c("og") - c("sR") * c("oA7"))
        # FOK's look-ahead sum counts this row's crossing maker (cr is 0 off the walk)
        add("rule 5: FOK: first row: look-ahead sum = its crossing maker",
            first * (c("acc") - c("cr") * c("oA1")))
        add("rule 5: FOK: look-ahead sum adds crossing makers",
            (1 - n("first")) * (n("acc") - c("acc") - n("cr") * n("oA1")))

        # ---- access masks per step
        add("memory: sN and PAD access nothing", s("sN", "sZ") * s("mH", "mA", "mB", "mC"))
        add("memory: header read by MATCH/REST/CANCEL/stop/cross/full",
            s("sM", "sR", "sC", "pk_stop", "pk_cross", "pk_full") * (1 - c("mH")))
        add("memory: no header in REDUCE/stale", s("sD", "pk_stale") * c("mH"))
        add("memory: FOK reads the header on its first PEEK", c("pk_fok") * (c("mH") - first))
        add("memory: A accessed", s("sM", "sR", "sC", "sD", "pk_cross", "pk_stale") * (1 - c("mA")))
        add("memory: no A in book-full PEEK", c("pk_full") * c("mA"))
        add("memory: A read iff the side has a head", s("pk_stop", "pk_fok") * (c("mA") - c("nz1")))
        add("memory: B only in MATCH/REST/CANCEL", c("mB") * (1 - s("sM", "sR", "sC")))
        add("memory: C only in REST/CANCEL", c("mC") * (1 - s("sR", "sC")))
        add("memory: B iff the neighbour exists (REST/CANCEL)", s("sR", "sC") * (c("mB") - c("nz1")))
        add("memory: C iff the neighbour exists (REST/CANCEL)", s("sR", "sC") * (c("mC") - c("nz2")))
        add("memory: MATCH: B iff the maker leaves and has a next",
            c("sM") * (c("mB") - c("lv") * c("nz1")))
        # pure reads
        for j in range(HCELLS):
            add(f"rule 6: PEEK writes nothing (H{j})", sP * (c(f"nH{j}") - c(f"oH{j}")))
        for j in range(WORD):
            add(f"rule 6: PEEK writes nothing (A{j})", sP * (c(f"nA{j}") - c(f"oA{j}")))
        # B and C change only their links (WRITES: the other cells have no
        # column of their own, the write's tuple repeats the old word's)
        add("rule 6: B.prev changes only in MATCH", (1 - c("sM")) * (c("nB5") - c("oB5")))

        # ---- which side the step works on
        add("side: takers work on their own side", s("sM", "pk_stop", "pk_cross", "pk_fok", "sR")
            * (sel - c("buy")))
        add("side: CANCEL works on the target's side", c("sC") * (sel - 2 + c("oA2")))

        # ---- rule 2 + 3: MATCH
        sM, lv = c("sM"), c("lv")
        add("rule 2: MATCH takes the opposite head", sM * (c("aA") - c("ob")))
        add("rule 2: the maker is on the opposite side", sM * (c("oA2") - 1 - sel))
        add("rule 2: the maker is a head (prev = 0)", sM * c("oA5"))
        add("rule 2: MATCH crosses (cmp1 = cx)", sM * (c("cmp1") - c("cx")))
        add("rule 3: leave bit by comparison (cmp2)",
            sM * (c("cmp2") - lv * (c("rem") - c("oA1")) - (1 - lv) * (c("oA1") - c("rem") - 1)))
        add("rule 3: fill = min(remaining, maker qty)",
            sM * (c("fl") - lv * c("oA1") - (1 - lv) * c("rem")))
        add("rule 3: maker qty - fill", sM * (c("nA1") - c("oA1") + c("fl")))
        add("rule 3: zv1 = maker's next", sM * (c("zv1") - c("oA6")))
        add("rule 3: B = maker's next", sM * c("mB") * (c("aB") - c("oA6")))
        add("rule 3: B.prev = 0 after the unlink", sM * c("nB5"))
        add("rule 3: B.next kept in MATCH", sM * (c("nB6") - c("oB6")))
        part = sM - lv
        for j in (0, 2, 3, 4, 5, 6, 7):
            add(f"rule 3/5: partial maker / REDUCE keeps cell {j}", (part + c("sD")) * (c(f"nA{j}") - c(f"oA{j}")))
        for j in range(HCELLS):
            add(f"rule 3: partial fill keeps header cell {j}", part * (c(f"nH{j}") - c(f"oH{j}")))
        add("rule 3: leaving maker: opposite best = its next", lv * (c("nob") - c("oA6")))
        add("rule 3: leaving maker: opposite worst kept", lv * c("nz1") * (c("now") - c("ow")))
        add("rule 3: leaving last maker: opposite worst 0", lv * (1 - c("nz1")) * c("now"))
        add("rule 3: leaving maker: own best kept", lv * (c("nsb") - c("sb")))
        add("rule 3: leaving maker: own worst kept", lv * (c("nsw") - c("sw")))
        # freeing a slot (a leaving maker, a cancel)
        frees = lv + c("sC")
        for j in (0, 1, 2, 3, 4, 5):
            add(f"rule 3/5: freed slot cell {j} = 0", frees * c(f"nA{j}"))
        add("rule 3/5: freed slot joins the free list", frees * (c("nA6") - c("oH4")))
        add("rule 3/5: freed slot gen + 1 (mod 2^30)",
            frees * (c("nA7") - c("oA7") - 1 + c("gw") * GEN_LIMIT))
        add("rule 3/5: gen wrap only at 2^30 - 1",
            frees * ((c("oA7") - (GEN_LIMIT - 1)) * c("ginv") - 1 + c("gw")))
        add("rule 3/5: free head = freed slot", frees * (c("nH4") - c("aA")))
        add("rule 3/5: live - 1", frees * (c("nH5") - c("oH5") + 1))

        # ---- rule 2: the taker's stop, post-only's check
        stop = c("pk_stop")
        add("rule 2: stop PEEK reads the opposite head", s("pk_stop", "pk_cross") * (c("aA") - c("ob")))
        add("rule 2: stop zv1 = opposite head", s("pk_stop", "pk_cross") * (c("zv1") - c("ob")))
        add("rule 2: stop: the head does not cross (cmp1)", stop * (c("cmp1") + c("nz1") * (c("cx") + 1)))
        add("rule 2: stop: the taker is not filled (cmp2)", stop * (c("cmp2") - c("rem") + 1))
        add("rule 5: post-only crossing: a head exists", c("pk_cross") * (1 - c("nz1")))
        add("rule 5: post-only crossing: it crosses (cmp1)", c("pk_cross") * (c("cmp1") - c("cx")))
        add("rule 5: book full: free head = 0", c("pk_full") * c("oH4"))

        # ---- rule 4: REST
        sR = c("sR")
        add("rule 4: REST takes the free head", sR * (c("aA") - c("oH4")))
        add("rule 4: the free slot is empty", sR * c("oA1"))
        add("rule 4: zv1 = prev", s("sR", "sC") * (c("zv1") - c("aB")))
        add("rule 4: zv2 = next", s("sR", "sC") * (c("zv2") - c("aC")))
        for j, v in enumerate((lim, c("rem"), 2 - sel, c("alo"), c("ahi"), c("aB"), c("aC"), c("oA7"))):
            add(f"rule 4: rested word cell {j}", sR * (c(f"nA{j}") - v))
        add("rule 4: prev.next = next", sR * c("nz1") * (c("oB6") - c("aC")))
        add("rule 4: no prev: best = next", sR * (1 - c("nz1")) * (c("sb") - c("aC")))
        add("rule 4: next.prev = prev", sR * c("nz2") * (c("oC5") - c("aB")))
        add("rule 4: no next: worst = prev", sR * (1 - c("nz2")) * (c("sw") - c("aB")))
        add("rule 4: prev on the own side", sR * c("nz1") * (c("oB2") - 2 + sel))
        add("rule 4: next on the own side", sR * c("nz2") * (c("oC2") - 2 + sel))
        add("rule 4: prev price at or ahead (cmp1)", sR * (c("cmp1") - c("nz1") * c("dB")))
        add("rule 4: next price strictly behind (cmp2)", sR * (c("cmp2") - c("nz2") * (c("dC") - 1)))
        add("rule 4: prev.next = new", sR * c("mB") * (c("nB6") - c("aA")))
        add("rule 4: next.prev = new", sR * c("mC") * (c("nC5") - c("aA")))
        add("rule 4: free head = the slot's next", sR * (c("nH4") - c("oA6")))
        add("rule 4: live + 1", sR * (c("nH5") - c("oH5") - 1))
        add("rule 4: own best", sR * (c("nsb") - c("sb") - (1 - c("nz1")) * (c("aA") - c("sb"))))
        add("rule 4: own worst", sR * (c("nsw") - c("sw") - (1 - c("nz2")) * (c("aA") - c("sw"))))
        add("rule 4/5: opposite best kept", s("sR", "sC") * (c("nob") - c("ob")))
        add("rule 4/5: opposite worst kept", s("sR", "sC") * (c("now") - c("ow")))

        # ---- rule 5: CANCEL, REDUCE, stale handles
        sC, sD = c("sC"), c("sD")
        add("rule 5: handle's slot", s("sC", "sD", "pk_stale") * (c("aA") - c("hslot")))
        add("rule 5: handle's generation", s("sC", "sD") * (c("oA7") - c("hgen")))
        add("rule 5: CANCEL: the order is live (cmp1)", sC * (c("cmp1") - c("oA1") + 1))
        add("rule 5: CANCEL by REDUCE: qty >= remaining (cmp2)",
            sC * (c("cmp2") - c("k_red") * (c("qty") - c("oA1"))))
        add("rule 5: REDUCE: qty < remaining (cmp2)", sD * (c("cmp2") - c("oA1") + c("qty") + 1))
        add("rule 5: REDUCE lowers the quantity", sD * (c("nA1") - c("oA1") + c("qty")))
        add("rule 5: CANCEL: B = prev", sC * (c("aB") - c("oA5")))
        add("rule 5: CANCEL: C = next", sC * (c("aC") - c("oA6")))
        add("rule 5: CANCEL: prev.next = next", sC * c("mB") * (c("nB6") - c("aC")))
        add("rule 5: CANCEL: next.prev = prev", sC * c("mC") * (c("nC5") - c("aB")))
        add("rule 5: CANCEL: own best", sC * (c("nsb") - c("sb") - (1 - c("nz1")) * (c("aC") - c("sb"))))
        add("rule 5: CANCEL: own worst", sC * (c("nsw") - c("sw") - (1 - c("nz2")) * (c("aB") - c("sw"))))
        add("rule 5: stale: zv1 = gen - handle gen", c("pk_stale") * (c("zv1") - c("oA7") + c("hgen")))
        add("rule 5: stale: generation differs or qty 0", c("pk_stale") * (1 - c("nz1")) * c("oA1"))

        # ---- rule 5: FOK look-ahead
        fok = c("pk_fok")
        add("rule 5: FOK: first PEEK at the opposite head", fok * c("mH") * (c("aA") - c("ob")))
        add("rule 5: FOK: walk follows next", n("pk_fok") * (1 - n("first")) * (n("aA") - c("oA6")))
        add("rule 5: FOK: zv1 = slot", fok * (c("zv1") - c("aA")))
        add("rule 5: FOK: zv2 = next", fok * (c("zv2") - c("oA6")))
        add("rule 5: FOK: crossing bit (cmp1)", fok * (c("cmp1") - c("nz1") * c("cxs")))
        add("rule 5: FOK: empty side does not cross", fok * (1 - c("nz1")) * c("cr"))
        add("rule 5: FOK: sufficiency bit (cmp2)",
            fok * (c("cmp2") - c("sf") * (c("acc") - c("qty")) - (1 - c("sf")) * (c("qty") - c("acc") - 1)))

        return out + self.lu.transitions(f)


class BatchStatement(Statement):
    """A batch's statement: `book` (BookAir, S rows) then `ops`
    (OrderBookAir, T' rows), the challenges shared, the two claimed sums
    adding up to -public_sum (the verifier's op, outcome and trade
    fractions), the public tables' fractions counted (public_fractions).
    The target reads only the ops domain's tables, which are functions of
    what its public bytes hold (header and records), absorbed with the
    domain: the statement adds none of its own (b"", not the ~1.6 MB of a
    2^14-operation batch's records hashed a second time)."""

    def __init__(self, book_length: int, ops: OrderBookAir):
        self.book, self.ops = BookAir(book_length), ops
        if book_length < ops.capacity:
            raise ValueError(f"a book domain of {book_length} rows for a capacity of {ops.capacity}")
        super().__init__("orderbook", [("book", self.book), ("ops", ops)],
                         target=lambda challenges: -ops.public_sum(challenges),
                         public=b"",
                         public_fractions=public_fractions(ops.trace_length))
