"""Receipts: one trader's operations of one zk batch, shown as the ones the
batch's proof processed, and nothing of anyone else's (docs/ZK.md, section
8; the file format is receipt_format.py, docs/FORMATS.md "Receipt").

A zk batch proof publishes no record, only salted leaves (zk_encoding.py)
and the roots of three lists over them (zk_lists.py): the operation leaves
(`ops_root`), the side leaves that bind the fields no rule reads
(`side_root`), and the trade and dummy leaves in a random order
(`trades_root`).  A receipt holds some operations' records with their
outcomes, their trades, the salts of exactly those leaves and their paths in
the three lists.  It opens no trace polynomial, so receipts cost the proof's
masking nothing and any number of them can be made.

    make_receipt    the venue's side: from the batch's public statement, its
                    private data (records, trades, salts) and its lists
                    (built once per batch), a receipt for some sequence
                    numbers or for an account
    check_receipt   the trader's side: section 8's checks 1 and 3-5 against
                    the statement of a batch whose proof the caller has
                    verified (check 2 is the caller's: verify_batch first)
    render          check 6: the printed statement of what was proven, and
                    what a receipt cannot show

Every refusal is a :class:`~receipt_format.ReceiptError` whose message says
what is wrong, in section 8's words where it gives them.  The inputs the
batch-file glue supplies are plain: a :class:`BatchStatement` (the public
fields), a :class:`PrivateBatch` (the private data), and the published
leaves or the :class:`BatchLists` built from them.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from ...engine.records import OP_DTYPE, Kind, Reason, Side, Status, join_handle
from .air import GEN_LIMIT, classify
from .receipt_format import (DIGEST_BYTES, TRADE_FIELDS, Receipt, ReceiptError, ReceiptFormatError,
                             decode_receipt, encode_receipt, op_entry_dtype, trade_entry_dtype)
from .zk_encoding import (LEAF_ELEMENTS, SALT_ELEMENTS, SIDE_SALT_BYTES, TRADE_ELEMENTS, EncodingError,
                          leaf_digests, operation_elements, side_leaf, side_leaves, trade_elements)
from .zk_lists import LIST_OPS, LIST_TRADES, ListTree, element_tree, leaf_hash, verify_path

__all__ = ["BatchStatement", "PrivateBatch", "BatchLists", "make_receipt", "check_receipt", "render",
           "decode_receipt", "encode_receipt", "Receipt", "ReceiptReport", "OperationReport", "TradeReport",
           "PlacedBy", "ReceiptError", "ReceiptFormatError", "ReceiptRequestError", "ReceiptStatementError",
           "ReceiptRecordError", "ReceiptTradeError"]


class ReceiptRequestError(ReceiptError):
    """A receipt that cannot be made: an unknown sequence number or account,
    nothing to show, or private data that is not the batch's."""


class ReceiptStatementError(ReceiptError):
    """The receipt is not for the batch whose statement it was checked
    against (section 8, check 1)."""


class ReceiptRecordError(ReceiptError):
    """An operation of the receipt is not the one the batch committed at its
    row (check 3)."""


class ReceiptTradeError(ReceiptError):
    """A trade of the receipt is missing, added, altered or not a trade
    (checks 4 and 5)."""


# ------------------------------------------------------------- the inputs --

class BatchStatement(NamedTuple):
    """The public statement of a zk batch that a receipt names: the batch
    file's statement digest (docs/ZK.md, section 7) and the fields a receipt
    repeats.  The batch-file glue builds it from a verified batch file; the
    roots are those of the file's leaves (ops_root, trades_root) and its
    side_root."""
    digest: bytes
    batch_id: int
    symbol: int
    first_seq: int
    ops: int
    trace_length: int
    ops_root: bytes
    side_root: bytes
    trades_root: bytes

    @property
    def trade_slots(self) -> int:
        """The trade list's length, T - 1 - ops (real trades and dummies)."""
        return self.trace_length - 1 - self.ops

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.ops - 1


#: the fields a receipt repeats from the statement, checked after the digest
_REPEATED = ("batch_id", "symbol", "first_seq", "ops", "trace_length", "ops_root", "side_root", "trades_root")


class PrivateBatch(NamedTuple):
    """A batch's private data, from which its receipts are made (kept
    beside its proof, docs/ZK.md section 9; the salts derived from the
    batch key, section 6):

    records      OP_DTYPE, the batch's `ops` records with their outcomes,
                 row i holding seq first_seq + i
    leaf_salts   (ops, 4) canonical field elements: each operation leaf's salt
    side_salts   (ops, 16) uint8: each side leaf's salt
    trades       (m, 6) integers, one row per real trade, the trade leaf's
                 fields: taker row i, trade number tn within its taker's
                 trades, maker slot, maker generation, price, qty
                 (air.public_tables's trade rows, entries 1-6)
    trade_slots  (m,) each trade's position in the trade list
    trade_salts  (m, 4) canonical field elements: each trade leaf's salt
    resting      the orders resting in the batch's pre-state book: a 1-D
                 structured array with (at least) the fields `handle` and
                 `account`, as Book.orders gives them for each side (the
                 sequencer has them at the cut, section 9).  A by-account
                 receipt takes its account's orders from here, never from
                 its requester.
    """
    records: np.ndarray
    leaf_salts: np.ndarray
    side_salts: np.ndarray
    trades: np.ndarray
    trade_slots: np.ndarray
    trade_salts: np.ndarray
    resting: np.ndarray


class BatchLists(NamedTuple):
    """The batch's three list trees, built once per batch and reused for
    every receipt of it."""
    ops: ListTree
    sides: ListTree
    trades: ListTree

    @classmethod
    def build(cls, private: PrivateBatch, op_leaves: np.ndarray, trade_leaves: np.ndarray) -> "BatchLists":
        """The trees over the published leaves (the batch file's operation
        leaves, ``(ops, 8)``, and trade and dummy leaves, ``(T - 1 - ops,
        8)``, canonical uint32) and the side leaves of the private records
        with their side salts."""
        _check_private_shapes(private)
        return cls.of_trees(private, element_tree(LIST_OPS, op_leaves), element_tree(LIST_TRADES, trade_leaves))

    @classmethod
    def of_trees(cls, private: PrivateBatch, ops: ListTree, trades: ListTree) -> "BatchLists":
        """The lists from the operation and trade trees already built (the
        batch file's: proof_file.list_trees, whose roots its statement
        names) and the side tree of the private records."""
        _check_private_shapes(private)
        return cls(ops, ListTree(side_leaves(private.records, np.ascontiguousarray(private.side_salts))), trades)


def _check_statement(s: BatchStatement) -> None:
    if not isinstance(s, BatchStatement):
        raise TypeError(f"a BatchStatement, got {type(s).__name__}")
    for name in ("digest", "ops_root", "side_root", "trades_root"):
        value = getattr(s, name)
        if not isinstance(value, (bytes, bytearray)) or len(value) != DIGEST_BYTES:
            raise ValueError(f"statement {name}: {DIGEST_BYTES} bytes, got {value!r:.40}")
    if s.trace_length < 2 or s.trace_length & (s.trace_length - 1) or not 1 <= s.ops < s.trace_length:
        raise ValueError(f"statement: {s.ops} operations in a trace of {s.trace_length} rows is no zk batch's "
                         f"shape (a power of two T, 1 <= ops <= T - 1)")


def _check_private_shapes(p: PrivateBatch) -> None:
    if not isinstance(p, PrivateBatch):
        raise TypeError(f"a PrivateBatch, got {type(p).__name__}")
    if not isinstance(p.records, np.ndarray) or p.records.dtype != OP_DTYPE or p.records.ndim != 1:
        raise TypeError("private records: a 1-D OP_DTYPE array")
    n, m = len(p.records), len(p.trades)
    want = {"leaf_salts": (n, SALT_ELEMENTS), "side_salts": (n, SIDE_SALT_BYTES),
            "trades": (m, TRADE_ELEMENTS), "trade_slots": (m,), "trade_salts": (m, SALT_ELEMENTS)}
    for name, shape in want.items():
        a = getattr(p, name)
        if not isinstance(a, np.ndarray) or a.shape != shape or a.dtype.kind not in "ui":
            raise ValueError(f"private {name}: an integer array of shape {shape}, got "
                             f"{getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}")
    if p.side_salts.dtype != np.uint8:
        raise ValueError("private side_salts: uint8")
    r = p.resting
    if not isinstance(r, np.ndarray) or r.ndim != 1 or r.dtype.names is None \
            or not {"handle", "account"} <= set(r.dtype.names):
        raise ValueError("private resting: a 1-D structured array with the fields handle and account "
                         "(Book.orders's)")
    if (r["handle"] == 0).any():
        raise ValueError("private resting: the pre-state book's handles, each nonzero")


# ------------------------------------------------------------ one leaf each --

def _op_leaf(record, salt) -> np.ndarray:
    """The operation leaf of one record and salt: 8 canonical elements.
    EncodingError outside the encoding's domain or for a salt that is no
    field element."""
    data = np.array([operation_elements(record)], dtype=np.uint32)
    return leaf_digests(np.asarray(salt, dtype=np.uint64).reshape(1, SALT_ELEMENTS), data)[0]


def _trade_leaf(fields: Sequence[int], salt) -> np.ndarray:
    data = np.array([trade_elements(*(int(v) for v in fields))], dtype=np.uint32)
    return leaf_digests(np.asarray(salt, dtype=np.uint64).reshape(1, SALT_ELEMENTS), data)[0]


class PlacedBy(NamedTuple):
    """The operation that placed a resting order, as a receipt proves it:
    its batch, seq and account."""
    batch_id: int
    seq: int
    account: int


#: handle -> the operations that were assigned it, in seq order
Placements = dict[int, list[PlacedBy]]


def _placements(records, batch_id: int, into: Placements | None = None) -> Placements:
    """The handle each record was assigned, for the records that rested.
    The engine assigns a handle only to a new order that rests (status
    RESTED); any other record's handle is no assignment: a CANCEL's or
    REDUCE's names its target, and a new order rejected on its fields
    before the engine reads them (BAD_FLAGS) keeps the handle its sender
    wrote, which may name another trader's order."""
    out: Placements = defaultdict(list) if into is None else into
    for rec in records:
        if int(rec["status"]) == Status.RESTED:
            out[int(rec["handle"])].append(PlacedBy(batch_id, int(rec["seq"]), int(rec["account"])))
    for placed in out.values():
        placed.sort(key=lambda q: q.seq)
    return out


def _placer(placements: Placements, handle: int, taker_seq: int) -> PlacedBy | None:
    """The operation whose order a trade of `taker_seq` against `handle`
    met: the last one assigned the handle before the taker.  A handle comes
    back only after its slot's generation wraps, which takes GEN_LIMIT
    orders resting in that slot, one operation each: an assignment fewer
    operations before the taker than that is the order's."""
    found = None
    for placed in placements.get(handle, ()):
        if placed.seq < taker_seq:
            found = placed
    return found if found is not None and taker_seq - found.seq < GEN_LIMIT else None


# ------------------------------------------------------------ making one --

def make_receipt(statement: BatchStatement, private: PrivateBatch, lists, *, seqs: Iterable[int] | None = None,
                 account: int | None = None) -> bytes:
    """A receipt, version 1, for some operations of a batch: chosen by
    sequence numbers (`seqs`) or by `account` (every record of the batch
    whose `account` it is), exactly one of the two.

    It holds those operations' records with their outcomes, each one's
    trades as taker, and the trades as maker against the orders they
    placed in the batch (records that RESTED, trades whose taker came
    after).  By account it also holds the trades against the account's
    orders resting before the batch (`private.resting`, the pre-state
    book), and names those orders' handles: the batch does not prove whose
    they are, a receipt of the batch that placed each does (section 8,
    check 5).  `lists` is the batch's :class:`BatchLists`, or the pair
    (operation leaves, trade leaves) of the batch file to build it from
    (once per batch is enough: pass the built lists for the next receipt).

    The venue calls this for an authenticated requester: whoever may ask
    for a seq or an account sees its trades and learns that it was active.
    ReceiptRequestError for a sequence number outside the batch, an
    account with nothing to show, lists whose roots are not the
    statement's, or private data whose leaves are not the batch's (checked
    for every leaf the receipt opens).  The messages are for the venue's
    log and may name the requested seqs and account and their trades'
    slots (random); a reply to a requester should say "no receipt"."""
    _check_statement(statement)
    _check_private_shapes(private)
    s, p = statement, private
    if len(p.records) != s.ops:
        raise ReceiptRequestError(f"the private data holds {len(p.records)} records, batch {s.batch_id} "
                                  f"has {s.ops} operations")
    if not isinstance(lists, BatchLists):
        op_leaves, trade_leaves = lists
        lists = BatchLists.build(p, op_leaves, trade_leaves)
    for name, tree, root, n in (("operation", lists.ops, s.ops_root, s.ops),
                                ("side", lists.sides, s.side_root, s.ops),
                                ("trade", lists.trades, s.trades_root, s.trade_slots)):
        if tree.n != n or tree.root != root:
            raise ReceiptRequestError(f"the {name} list ({tree.n} leaves) is not the one batch {s.batch_id}'s "
                                      f"statement names ({n} leaves, root {root.hex()[:16]}...)")

    rows = _chosen_rows(s, p.records, seqs, account)
    placed = _placements(p.records[rows], s.batch_id)
    named = set()
    if account is not None:
        named = {int(h) for h in p.resting["handle"][p.resting["account"] == int(account)]} - set(placed)
    fields = p.trades.astype(np.int64)
    taker = np.isin(fields[:, 0], rows)
    maker_handle = join_handle(fields[:, 2], fields[:, 3])
    maker = ~taker & np.isin(maker_handle, np.array(sorted(set(placed) | named), dtype=np.uint64))
    for t in np.flatnonzero(maker):            # placed in the batch: only trades after the placing
        h = int(maker_handle[t])
        maker[t] = h in named or _placer(placed, h, s.first_seq + int(fields[t, 0])) is not None
    chosen = np.flatnonzero(taker | maker)
    chosen = chosen[np.lexsort((fields[chosen, 1], fields[chosen, 0]))]
    if not len(rows) and not len(chosen):
        raise ReceiptRequestError(f"account {account}: nothing to show in batch {s.batch_id} of symbol "
                                  f"{s.symbol} (no operation of it, no trade against its orders)")
    used_named = sorted({int(h) for h in maker_handle[chosen]} & named)
    made = np.bincount(fields[taker, 0], minlength=s.ops)[rows] if len(rows) else np.zeros(0, np.int64)
    short = np.flatnonzero(made != p.records["trades"][rows])
    if len(short):
        i, says = int(rows[short[0]]), int(p.records["trades"][rows[short[0]]])
        raise ReceiptRequestError(f"private data: the record of seq {s.first_seq + i} says {says} trades, the "
                                  f"private trades hold {int(made[short[0]])} of it")

    ops_out = np.zeros(len(rows), dtype=op_entry_dtype(lists.ops.depth))
    for e, i in enumerate(rows):
        rec, salt, side_salt = p.records[i], p.leaf_salts[i], p.side_salts[i]
        if int(rec["seq"]) != s.first_seq + i or int(rec["symbol"]) != s.symbol:
            raise ReceiptRequestError(f"private record at row {i} is seq {int(rec['seq'])} of symbol "
                                      f"{int(rec['symbol'])}, not seq {s.first_seq + i} of symbol {s.symbol}: "
                                      f"not this batch's records")
        try:
            leaf = _op_leaf(rec, salt)
            side = side_leaf(int(i), bytes(side_salt), int(rec["client_id"]), int(rec["reserved"]))
        except EncodingError as exc:
            raise ReceiptRequestError(f"private record of seq {int(rec['seq'])}: {exc}") from None
        if leaf_hash(LIST_OPS, int(i), leaf) != lists.ops.levels[0][i].tobytes() \
                or side != lists.sides.levels[0][i].tobytes():
            raise ReceiptRequestError(f"the private data of seq {int(rec['seq'])} (row {i}) does not give the "
                                      f"leaf batch {s.batch_id} committed: records or salts of another batch")
        ops_out[e]["record"], ops_out[e]["index"] = rec, i
        ops_out[e]["salt"], ops_out[e]["side_salt"] = salt, side_salt
        ops_out[e]["path"], ops_out[e]["side_path"] = lists.ops.path(int(i)), lists.sides.path(int(i))

    # the messages name a trade by its slot (random), never by its index among the private trades (MATCH order)
    trades_out = np.zeros(len(chosen), dtype=trade_entry_dtype(lists.trades.depth))
    for e, t in enumerate(chosen):
        k = int(p.trade_slots[t])
        if not 0 <= k < s.trade_slots:
            raise ReceiptRequestError(f"a private trade's slot {k} is outside the batch's {s.trade_slots} "
                                      f"trade slots")
        try:
            leaf = _trade_leaf(fields[t], p.trade_salts[t])
        except EncodingError as exc:
            raise ReceiptRequestError(f"the private trade at slot {k}: {exc}") from None
        if leaf_hash(LIST_TRADES, k, leaf) != lists.trades.levels[0][k].tobytes():
            raise ReceiptRequestError(f"the private trade at slot {k} does not give the leaf batch {s.batch_id} "
                                      f"committed there: trades, slots or salts of another batch")
        trades_out[e]["slot"] = k
        for name, value in zip(TRADE_FIELDS, fields[t]):
            trades_out[e][name] = value
        trades_out[e]["salt"], trades_out[e]["path"] = p.trade_salts[t], lists.trades.path(k)

    return encode_receipt(Receipt(statement=bytes(s.digest), batch_id=s.batch_id, first_seq=s.first_seq,
                                  symbol=s.symbol, ops=s.ops, trace_length=s.trace_length,
                                  ops_root=bytes(s.ops_root), side_root=bytes(s.side_root),
                                  trades_root=bytes(s.trades_root), operations=ops_out, trades=trades_out,
                                  handles=np.array(used_named, dtype=np.uint64)))


def _chosen_rows(s: BatchStatement, records: np.ndarray, seqs, account) -> np.ndarray:
    if (seqs is None) == (account is None):
        raise ReceiptRequestError("choose the operations by sequence numbers or by account: one of the two")
    if account is not None:
        if isinstance(account, bool) or not isinstance(account, (int, np.integer)) \
                or not 0 <= int(account) < 1 << 32:
            raise ReceiptRequestError(f"an account is a u32, got {account!r}")
        return np.flatnonzero(records["account"] == int(account))
    chosen = set()
    for seq in seqs:
        if isinstance(seq, bool) or not isinstance(seq, (int, np.integer)):
            raise ReceiptRequestError(f"a sequence number is an integer, got {seq!r}")
        if not s.first_seq <= int(seq) <= s.last_seq:
            raise ReceiptRequestError(f"seq {int(seq)} is not in batch {s.batch_id} of symbol {s.symbol} "
                                      f"(seqs {s.first_seq} .. {s.last_seq})")
        chosen.add(int(seq) - s.first_seq)
    if not chosen:
        raise ReceiptRequestError("no sequence number given")
    return np.array(sorted(chosen), dtype=np.int64)


# -------------------------------------------------------------- checking --

class TradeReport(NamedTuple):
    """One trade a receipt proved: its slot, the taker's seq and its number
    among the taker's trades, the maker's order, price and quantity.
    `placed_by`: the operation that placed the maker's order, when a
    receipt proves it (one of this receipt's operations, or one of an
    earlier batch's receipt given to check_receipt), else None; `named`:
    the receipt names the maker's handle as its holder's order resting
    before the batch (a claim, proven only by `placed_by`)."""
    slot: int
    taker_seq: int
    number: int
    maker_handle: int
    price: int
    qty: int
    placed_by: PlacedBy | None
    named: bool


class OperationReport(NamedTuple):
    """One operation a receipt proved: its seq, row, the record's fields by
    name (outcome included), and its trades as taker in number order."""
    seq: int
    row: int
    record: dict
    trades: tuple[TradeReport, ...]


class ReceiptReport(NamedTuple):
    """What :func:`check_receipt` found: the statement, the operations, the
    trades whose taker is not in the receipt (against an order one of its
    operations placed, or against a named handle), and the handles the
    receipt names as its holder's orders resting before the batch."""
    statement: BatchStatement
    operations: tuple[OperationReport, ...]
    maker_trades: tuple[TradeReport, ...]
    handles: tuple[int, ...]


def check_receipt(receipt, statement: BatchStatement, op_leaves: np.ndarray | None = None,
                  trade_leaves: np.ndarray | None = None, *, earlier: Iterable[ReceiptReport] = ()
                  ) -> ReceiptReport:
    """Check a receipt (bytes, or a decoded :class:`Receipt`) against the
    statement of a batch: docs/ZK.md section 8's checks 1, 3, 4 and 5.

    Check 2, the batch proof's verification, is the caller's: verify the
    batch file (verify_batch in zk mode, and the chain when there is one)
    and take `statement` from it, then call this.  Without that, a report
    says only that the receipt agrees with a statement, not that any proof
    holds.

    `op_leaves` and `trade_leaves` (the batch file's leaves, ``(ops, 8)``
    and ``(T - 1 - ops, 8)``), when given, name the row or slot a leaf
    that does not verify at its own position belongs to.

    `earlier`: reports this function returned for receipts of earlier
    batches of the same symbol and chain, whose proofs the caller verified
    likewise.  A trade against a handle that one of their operations was
    assigned (it RESTED) is reported as that operation's order
    (`placed_by`); without them, a trade against a handle the receipt
    names is reported as named only: the batch does not prove whose
    order it is.

    Refusals, in order: ReceiptFormatError (bytes that are not a receipt,
    or not in the one order of the format); ReceiptStatementError (another
    batch's receipt, a header that differs from the statement it names, or
    an `earlier` report that is not of an earlier batch of the symbol);
    ReceiptRecordError (a row outside the batch, a seq that is not its
    row's, another symbol, a record outside the encoding's domain, a leaf
    or side leaf that does not verify); ReceiptTradeError (a slot outside
    the list or repeated, a zero price or quantity, a taker outside the
    batch, a trade of no operation and no order of the receipt, a named
    handle that one of its operations placed, a number beyond or repeated,
    a missing trade, a leaf that does not verify, quantities that do not
    sum to `filled`, a price beyond the limit).  A receipt with neither
    operation nor trade is refused (ReceiptRecordError): it shows
    nothing."""
    # a Receipt object goes through its bytes too, so it meets the decoder's checks
    r = decode_receipt(encode_receipt(receipt) if isinstance(receipt, Receipt) else receipt)
    _check_statement(statement)
    s = statement
    # check 1: the receipt is this batch's
    if r.statement != bytes(s.digest):
        raise ReceiptStatementError(f"the receipt is for batch {r.batch_id} of symbol {r.symbol}, not for this proof")
    for name in _REPEATED:
        got, want = getattr(r, name), getattr(s, name)
        if got != (bytes(want) if isinstance(want, (bytes, bytearray)) else want):
            # whole: a one-byte change shows (a root's 64 hex digits fit a message)
            show = (lambda v: v.hex()) if isinstance(want, (bytes, bytearray)) else str
            raise ReceiptStatementError(f"the receipt names this proof's statement digest, but its {name} "
                                        f"({show(got)}) is not the proof's ({show(want)})")
    before = _earlier_placements(earlier, s)
    if not len(r.operations) and not len(r.trades):
        raise ReceiptRecordError("the receipt holds no operation and no trade: nothing to check")
    if op_leaves is not None:
        op_leaves = _checked_leaves(op_leaves, s.ops, "op_leaves")
    if trade_leaves is not None:
        trade_leaves = _checked_leaves(trade_leaves, s.trade_slots, "trade_leaves")
    ops = _check_operations(r, s, op_leaves)
    taker_trades, maker_trades = _check_trades(r, s, ops, trade_leaves, before)
    reports = tuple(OperationReport(seq, row, {name: int(rec[name]) for name in OP_DTYPE.names},
                                    tuple(sorted(taker_trades[row], key=lambda t: t.number)))
                    for row, (seq, rec) in sorted(ops.items()))
    return ReceiptReport(s, reports, tuple(sorted(maker_trades, key=lambda t: (t.taker_seq, t.number))),
                         tuple(int(h) for h in r.handles))


def _earlier_placements(earlier: Iterable[ReceiptReport], s: BatchStatement) -> Placements:
    """The orders the `earlier` reports show placed, by handle."""
    out: Placements = defaultdict(list)
    for report in earlier:
        if not isinstance(report, ReceiptReport):
            raise TypeError(f"earlier: reports of check_receipt, got {type(report).__name__}")
        e = report.statement
        if e.symbol != s.symbol or e.last_seq >= s.first_seq:
            raise ReceiptStatementError(f"the report given as earlier is of batch {e.batch_id} of symbol "
                                        f"{e.symbol} (seqs {e.first_seq} .. {e.last_seq}), not of a batch of "
                                        f"symbol {s.symbol} before seq {s.first_seq}")
        _placements((op.record for op in report.operations), e.batch_id, into=out)
    return out


def _checked_leaves(leaves, n: int, name: str) -> np.ndarray:
    if not isinstance(leaves, np.ndarray) or leaves.shape != (n, LEAF_ELEMENTS) or leaves.dtype.kind not in "ui":
        raise ValueError(f"{name}: an ({n}, {LEAF_ELEMENTS}) integer array, got "
                         f"{getattr(leaves, 'dtype', type(leaves).__name__)} {getattr(leaves, 'shape', '')}")
    return leaves


def _misplaced(root: bytes, tag: int, n: int, pos: int, leaf: np.ndarray, path, leaves) -> int | None:
    """None if `leaf` opens at `pos` of the list (`tag`, n leaves, `root`)
    by `path`.  Else where it stands among the published `leaves` when
    they are at hand and that is another position, or -1: the row or slot
    a leaf that does not verify at its claimed position belongs to."""
    if verify_path(root, leaf_hash(tag, pos, leaf), pos, n, path):
        return None
    same = np.flatnonzero((leaves == leaf).all(axis=1)) if leaves is not None else []
    return int(same[0]) if len(same) and int(same[0]) != pos else -1


def _check_operations(r: Receipt, s: BatchStatement, op_leaves) -> dict[int, tuple[int, np.void]]:
    """Check 3 for every operation entry: row -> (seq, record).  The
    decoder has put the rows in increasing order, each once."""
    out: dict[int, tuple[int, np.void]] = {}
    for e, entry in enumerate(r.operations):
        i, rec = int(entry["index"]), entry["record"]
        seq = int(rec["seq"])
        if i >= s.ops:
            raise ReceiptRecordError(f"operation entry {e}: row {i} is outside batch {s.batch_id}'s {s.ops} "
                                     f"operations")
        if seq != s.first_seq + i:
            raise ReceiptRecordError(f"the record at row {i} has seq {seq}, but row {i} of batch {s.batch_id} "
                                     f"is seq {s.first_seq + i}")
        if int(rec["symbol"]) != s.symbol:
            raise ReceiptRecordError(f"the record of seq {seq} is for symbol {int(rec['symbol'])}, not the "
                                     f"batch's {s.symbol}")
        try:
            leaf = _op_leaf(rec, entry["salt"])
        except EncodingError as exc:
            raise ReceiptRecordError(f"the record of seq {seq}: {exc}") from None
        j = _misplaced(s.ops_root, LIST_OPS, s.ops, i, leaf, entry["path"], op_leaves)
        if j is not None:
            raise ReceiptRecordError(f"this record is row {j}'s, not row {i}'s" if j >= 0 else
                                     f"the record of seq {seq} is not the one batch {s.batch_id} committed")
        side = side_leaf(i, entry["side_salt"].tobytes(), int(rec["client_id"]), int(rec["reserved"]))
        if not verify_path(s.side_root, side, i, s.ops, entry["side_path"]):
            raise ReceiptRecordError(f"the record of seq {seq} is not the one batch {s.batch_id} committed "
                                     f"(its client_id, reserved or side salt: the side leaf does not verify)")
        out[i] = (seq, rec)
    return out


def _check_trades(r: Receipt, s: BatchStatement, ops: dict, trade_leaves, before: Placements):
    """Checks 4 and 5: each trade belongs to an operation of the receipt
    (as taker) or to an order of it (as maker: one its operations placed
    before the trade's taker, or one it names); every operation's trades
    are all there; each leaf verifies; the quantities sum to `filled`;
    each price is within the taker's limit.  `before`: the placements
    the earlier reports show, which say whose a named handle is."""
    here = _placements((rec for _, rec in ops.values()), s.batch_id)
    named = {int(h) for h in r.handles}
    clash = sorted(named & set(here))
    if clash:
        raise ReceiptTradeError(f"handle {clash[0]:#x} is named as an order resting before the batch, but seq "
                                f"{here[clash[0]][0].seq} of this receipt placed it in the batch")
    placements: Placements = defaultdict(list, {h: list(v) for h, v in before.items()})
    _placements((rec for _, rec in ops.values()), s.batch_id, into=placements)
    seen: dict[int, int] = {}
    numbers: dict[int, set[int]] = defaultdict(set)
    for entry in r.trades:
        k = int(entry["slot"])
        if k >= s.trade_slots:
            raise ReceiptTradeError(f"trade at slot {k} is outside batch {s.batch_id}'s {s.trade_slots} trade slots")
        if k in seen:
            raise ReceiptTradeError(f"slot {k} appears twice in the receipt")
        seen[k] = len(seen)
        for name in ("qty", "price"):
            if int(entry[name]) == 0:
                what = "quantity" if name == "qty" else "price"
                raise ReceiptTradeError(f"trade at slot {k} has {what} 0: not a trade")
        i, n = int(entry["taker"]), int(entry["number"])
        if i in ops:
            seq, rec = ops[i]
            made = int(rec["trades"])
            if n >= made:
                raise ReceiptTradeError(f"trade at slot {k} is not one of operation {seq}'s: it made {made} "
                                        f"trade{'s' if made != 1 else ''}, this one is numbered {n}")
            numbers[i].add(n)                   # once each: the decoder holds (taker, number) increasing
            continue
        if i >= s.ops:
            raise ReceiptTradeError(f"trade at slot {k}: its taker, row {i}, is outside batch {s.batch_id}'s "
                                    f"{s.ops} operations")
        h = join_handle(entry["maker_slot"], entry["maker_gen"])
        if h not in named and _placer(here, h, s.first_seq + i) is None:
            raise ReceiptTradeError(f"trade at slot {k} is not one of this receipt's: its taker, seq "
                                    f"{s.first_seq + i}, is not in the receipt, and its maker order, handle "
                                    f"{h:#x}, is neither placed by one of the receipt's operations before that "
                                    f"taker nor named by it")
    for i, (seq, rec) in sorted(ops.items()):
        for n in range(int(rec["trades"])):
            if n not in numbers[i]:
                raise ReceiptTradeError(f"trade {n} of operation seq {seq} is missing")
    taker_trades: dict[int, list[TradeReport]] = defaultdict(list)
    maker_trades: list[TradeReport] = []
    for entry in r.trades:
        k = int(entry["slot"])
        try:
            leaf = _trade_leaf([entry[name] for name in TRADE_FIELDS], entry["salt"])
        except EncodingError as exc:
            raise ReceiptTradeError(f"trade at slot {k}: {exc}") from None
        j = _misplaced(s.trades_root, LIST_TRADES, s.trade_slots, k, leaf, entry["path"], trade_leaves)
        if j is not None:
            raise ReceiptTradeError(f"trade at slot {k} is slot {j}'s, not slot {k}'s" if j >= 0 else
                                    f"trade at slot {k} does not match the commitment")
        h = join_handle(entry["maker_slot"], entry["maker_gen"])
        i = int(entry["taker"])
        t = TradeReport(k, s.first_seq + i, int(entry["number"]), h, int(entry["price"]), int(entry["qty"]),
                        _placer(placements, h, s.first_seq + i), h in named)
        (taker_trades[i] if i in ops else maker_trades).append(t)
    for i, (seq, rec) in sorted(ops.items()):
        total = sum(t.qty for t in taker_trades[i])
        if total != int(rec["filled"]):
            raise ReceiptTradeError(f"the trades of operation seq {seq} sum to {total} lots, but its record says "
                                    f"filled {int(rec['filled'])}")
        limit = _limit(rec)
        for t in taker_trades[i]:
            if limit is not None and (t.price > limit if int(rec["side"]) == Side.BUY else t.price < limit):
                raise ReceiptTradeError(f"trade at slot {t.slot} is at price {t.price}, beyond operation seq "
                                        f"{seq}'s limit {limit}")
    return taker_trades, maker_trades


#: classify reads the capacity only to bound a CANCEL's or REDUCE's handle,
#: which has no limit; a receipt has no capacity, so it passes the widest
_ANY_CAPACITY = 1 << 32


def _limit(rec) -> int | None:
    """A taker's price limit, by air.classify's rule (the price; MARKET's
    is MAX_PRICE for a buy, 1 for a sell); None for a record that cannot
    take (rejected on its fields, a CANCEL or a REDUCE)."""
    c = classify(rec, _ANY_CAPACITY)
    return c["lim"] if c["kind"] not in (None, "k_can", "k_red") else None


# -------------------------------------------------------------- printing --

def _name(enum, value: int) -> str:
    try:
        return enum(value).name
    except ValueError:
        return str(value)


def _describe(rec: dict) -> str:
    kind = int(rec["kind"])
    what = _name(Kind, kind)
    if kind in (Kind.CANCEL, Kind.REDUCE):
        what += f" of handle {rec['handle']:#x}" + (f", {rec['qty']} lots" if kind == Kind.REDUCE else "")
    else:
        what += f" {_name(Side, rec['side'])} {rec['qty']} lots"
        what += "" if kind == Kind.MARKET else f" at {rec['price']}"
    return (f"{what}, account {rec['account']}, ts_ns {rec['ts_ns']}, flags {rec['flags']:#x}, "
            f"client_id {rec['client_id']}")


def _outcome(rec: dict) -> str:
    out = _name(Status, rec["status"])
    if rec["status"] == Status.REJECTED:
        out += f" ({_name(Reason, rec['reason'])})"
    out += f", filled {rec['filled']} lots in {rec['trades']} trade{'s' if rec['trades'] != 1 else ''}"
    if rec["status"] == Status.RESTED:          # the only outcome whose handle the engine assigned
        out += f", resting with handle {rec['handle']:#x}"
    return out


def _maker(t: TradeReport, s: BatchStatement) -> str:
    """A trade's maker order and, when a receipt proves it, whose it is
    (a handle the receipt only names gets nothing here: its heading says
    so for a maker trade, and a taker's counterparty is just the handle)."""
    out, by = f"against handle {t.maker_handle:#x}", t.placed_by
    if by is not None and by.seq >= s.first_seq:
        return out + f", the order of seq {by.seq} (in this receipt)"
    if by is not None:
        return out + (f", the order of seq {by.seq} of batch {by.batch_id}, account {by.account} (shown by "
                      f"that batch's receipt, given)")
    return out


def render(report: ReceiptReport, *, proof_verified: bool) -> str:
    """The printed statement of section 8's check 6: for each operation,
    its record and outcome as processed by the batch, its trades with the
    counterparty facts each carries (the maker's handle for a taker; the
    taker's sequence number and the trade's number among its trades for a
    maker), the trades against its orders with whose order each is shown
    to be, the fields bound but under no rule, and what a receipt cannot
    show (docs/ZK.md section 14, decisions 4 and 6: not claimed).
    `proof_verified` says whether the caller verified the batch proof
    (check 2): without it, the text says that what it lists holds only if
    the proof verifies."""
    s = report.statement
    batch = f"batch {s.batch_id} of symbol {s.symbol}"
    lines = [f"Receipt for {batch}: seqs {s.first_seq} .. {s.last_seq} ({s.ops} operations), "
             f"statement {s.digest.hex()}."]
    if proof_verified:
        lines.append(f"The batch proof verified, and this receipt's records and trades are the ones it "
                     f"committed: each operation below was processed under the rules of docs/MATCHING.md by "
                     f"{batch} (verified), with the outcome shown.")
    else:
        lines.append(f"The batch proof was NOT verified here: what follows holds only if the proof of {batch} "
                     f"verifies.  This receipt's records and trades are the ones that statement commits.")
    for op in report.operations:
        rec = op.record
        lines.append("")
        lines.append(f"seq {op.seq} (row {op.row}): {_describe(rec)}")
        lines.append(f"  outcome: {_outcome(rec)}")
        for t in op.trades:
            lines.append(f"  trade {t.number} (slot {t.slot}): {t.qty} lots at {t.price}, {_maker(t, s)}")
    shown = [t for t in report.maker_trades if t.placed_by is not None]
    named = [t for t in report.maker_trades if t.placed_by is None]
    for trades, heading in ((shown, "Trades as maker, against orders shown placed by an operation of this receipt "
                                    "or of an earlier batch's receipt given with it:"),
                            (named, "Trades against handles this receipt names as its holder's orders resting "
                                    "before the batch, NOT shown to be its holder's (the receipt of the batch "
                                    "whose operation placed each order shows whose it is):")):
        if trades:
            lines.append("")
            lines.append(heading)
            for t in trades:
                lines.append(f"  slot {t.slot}: {t.qty} lots at {t.price}, taker seq {t.taker_seq} (its trade "
                             f"{t.number}), {_maker(t, s)}")
    lines.append("")
    lines.append("Bound by the batch's commitment (the side leaf) but read by no rule: client_id and the "
                 "reserved field.")
    lines.append("What a trade tells its counterparty: a taker's trade, the maker's handle; a maker's trade, the "
                 "taker's sequence number and the trade's number among that taker's trades (so how many trades "
                 "the taker's operation made before this one).  Nothing else of either is shown.")
    lines.append("What this receipt cannot show (not claimed):")
    lines.append("  - that an order had no other trade in this batch than those listed;")
    lines.append("  - that an account had no other operation in this batch than those listed.")
    return "\n".join(lines)
