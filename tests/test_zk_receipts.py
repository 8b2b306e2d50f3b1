"""Receipts (prover/orderbook/receipt.py, receipt_format.py; docs/ZK.md,
section 8; docs/FORMATS.md, "Receipt"): the format against its C header,
receipts by sequence number and by account made and checked against a
batch built from the engine, every refusal of section 8 with the refused
receipt built, the decoder's refusals of malformed and non-canonical bytes,
and the cheap form of hiding test 12.d (a receipt holds no other
operation's record bytes, and its size is a function of its counts).

The batch is the engine's (engine/flow.py through a Book) on a flow rich in
cancels, reduces and field rejections, its leaves are zk_encoding's and its
lists zk_lists'.  Two things are test doubles, here only: the batch's salts
and trade-slot order come from zk_keys under a fixed test key and test
labels (the prover's labels are the batch proof's to fix), and the
statement digest is a SHA-256 of the test's own (the batch file's digest is
the batch file's to define)."""
from __future__ import annotations

import dataclasses
import hashlib
import re

import numpy as np
import pytest

from format_docs import check_byte_table, check_layout
from zksidecar.engine import flow, records
from zksidecar.engine.book import Book
from zksidecar.engine.native import ffi, lib
from zksidecar.engine.records import OP_DTYPE, Kind, Reason, Status, join_handle
from zksidecar.prover import zk_keys
from zksidecar.prover.orderbook import air, batch_receipts
from zksidecar.prover.orderbook import receipt as R
from zksidecar.prover.orderbook import receipt_format as RF
from zksidecar.prover.orderbook import zk_encoding as Z
from zksidecar.prover.orderbook import zk_lists as L

CAPACITY = 1 << 10
SYMBOL = 7
TRACE_LENGTH = 512
EPOCH_NS = 1_765_000_000_123_456_789
#: test double of a store key (the prover's keys are zk_keys'; the labels below are the test's)
TEST_KEY = bytes(range(32))
#: a flow whose batch holds CANCELs and REDUCEs (of orders that traded in it), every field rejection but
#: BOOK_FULL, orders from before the batch trading in it, and an account with fills but no operation
RICH = flow.FlowParams(depth=60, invalid=0.08)
SEED = 15


def stream(seed: int = SEED) -> np.ndarray:
    """Operations 1 .. 500 of the test flow, timestamped like an engine's."""
    ops = flow.generate(500, seed, capacity=CAPACITY, prefill=150, symbol=SYMBOL, params=RICH)
    ops["ts_ns"] += np.uint64(EPOCH_NS)         # the flow's clock starts at 0; an engine's does not
    return ops


class Batch:
    """One zk batch's public statement, private data and published leaves,
    built from the engine: by default operations 201 .. 500 of the flow
    (batch 1; the first 200 built the book, and are batch 0 with
    `before=0, count=200`), so rows and sequence numbers differ and orders
    from before the batch trade in it.  `craft` edits the stream before the
    engine runs it; `tamper` edits the records and trade fields after (a
    batch that commits a lie)."""

    def __init__(self, batch_id: int = 1, ops: np.ndarray | None = None, before: int = 200, count: int = 300,
                 trace_length: int = TRACE_LENGTH, craft=None, tamper=None):
        ops = (stream() if ops is None else ops).copy()
        if craft:
            craft(ops)
        book = Book(CAPACITY, symbol=SYMBOL)
        book.process(ops[:before])
        self.pre = Book.restore(book.snapshot())
        resting = np.concatenate([self.pre.orders(side) for side in (1, 2)])
        records = ops[before:before + count].copy()
        trades = book.process(records)
        self.trade_records = trades
        first_seq = int(records["seq"][0])
        fields = air.public_tables(records, trades, CAPACITY, first_seq)[2][:, 1:7].astype(np.int64)
        if tamper:
            tamper(records, fields)
        n, m = len(records), len(trades)
        slots = trace_length - 1 - n
        key = zk_keys.derive(TEST_KEY, ["test batch", SYMBOL, batch_id])
        leaf_salts = zk_keys.field_elements(key, ["leaf salts"], 4 * n).reshape(n, 4)
        side_salts = np.frombuffer(zk_keys.expand(key, ["side salts"], 16 * n), np.uint8).reshape(n, 16)
        order = np.argsort(zk_keys.field_elements(key, ["trade order"], slots), kind="stable")
        slot_salts = zk_keys.field_elements(key, ["trade salts"], 4 * slots).reshape(slots, 4)
        trade_slots = order[:m].astype(np.uint32)          # trade k at slot order[k]
        self.dummy_slots = order[m:]
        data = np.zeros((slots, Z.DATA_ELEMENTS), dtype=np.uint32)
        data[trade_slots] = Z.encode_trades(fields)
        self.slot_salts = slot_salts
        self.op_leaves = Z.leaf_digests(leaf_salts, Z.encode_operations(records))
        self.trade_leaves = Z.leaf_digests(slot_salts, data)
        self.private = R.PrivateBatch(records, leaf_salts, side_salts, fields, trade_slots, slot_salts[trade_slots],
                                      resting)
        self.lists = R.BatchLists.build(self.private, self.op_leaves, self.trade_leaves)
        digest = hashlib.sha256(b"test double of a statement digest" + bytes([batch_id]) + self.lists.ops.root
                                + self.lists.trades.root).digest()
        self.statement = R.BatchStatement(digest, batch_id, SYMBOL, first_seq, n, trace_length,
                                          self.lists.ops.root, self.lists.sides.root, self.lists.trades.root)
        self.records, self.fields = records, fields
        self.maker_handles = join_handle(fields[:, 2], fields[:, 3]) if m else np.zeros(0, np.uint64)

    def seq_with_trades(self, t: int, skip: int = 0) -> int:
        return int(self.records["seq"][np.flatnonzero(self.records["trades"] == t)[skip]])

    def row(self, seq: int) -> int:
        return seq - self.statement.first_seq

    def receipt(self, **choice) -> bytes:
        return R.make_receipt(self.statement, self.private, self.lists, **choice)

    def check(self, data, leaves: bool = False, **kw) -> R.ReceiptReport:
        if leaves:
            return R.check_receipt(data, self.statement, self.op_leaves, self.trade_leaves, **kw)
        return R.check_receipt(data, self.statement, **kw)

    def trade_entries(self, taker_seq: int, handle: int | None = None) -> np.ndarray:
        """Trade entries (with salts and paths) of a receipt of `taker_seq`,
        those against `handle` if given: what a forger holding that receipt
        can splice into another."""
        t = editable(self.receipt(seqs=[taker_seq])).trades
        t = t[t["taker"] == self.row(taker_seq)]
        return t if handle is None else t[join_handle(t["maker_slot"], t["maker_gen"]) == handle]


@pytest.fixture(scope="module")
def batch() -> Batch:
    return Batch()


@pytest.fixture(scope="module")
def batch0() -> Batch:
    """Batch 0: the 200 operations that built batch 1's pre-state book."""
    return Batch(batch_id=0, before=0, count=200)


def editable(data: bytes) -> RF.Receipt:
    """A decoded receipt with writable copies of its arrays."""
    r = RF.decode_receipt(data)
    return dataclasses.replace(r, operations=r.operations.copy(), trades=r.trades.copy(), handles=r.handles.copy())


def in_order(trades: np.ndarray) -> np.ndarray:
    """Trade entries in the format's one order, (taker, number): a forger
    who splices entries in puts them there, or the decoder refuses it."""
    return trades[np.lexsort((trades["number"], trades["taker"]))]


def spliced(r: RF.Receipt, extra: np.ndarray, handles=None) -> RF.Receipt:
    return dataclasses.replace(r, trades=in_order(np.concatenate([r.trades, extra])),
                               handles=r.handles if handles is None else np.array(handles, np.uint64))


def raw(r: RF.Receipt) -> bytes:
    """A Receipt's bytes as encode_receipt lays them out, without its checks:
    bytes a hostile writer could send."""
    h = np.zeros(1, RF.HEADER_DTYPE)
    h["magic"], h["version"] = RF.MAGIC, RF.VERSION
    for name in ("batch_id", "first_seq", "symbol", "ops", "trace_length"):
        h[name] = getattr(r, name)
    for name in ("statement", "ops_root", "side_root", "trades_root"):
        h[name] = np.frombuffer(getattr(r, name), np.uint8)
    handles = np.asarray(r.handles, "<u8")
    h["op_count"], h["trade_count"], h["handle_count"] = len(r.operations), len(r.trades), len(handles)
    return h.tobytes() + r.operations.tobytes() + r.trades.tobytes() + handles.tobytes()


def refused(batch: Batch, r, error, message: str, leaves: bool = False, **kw) -> None:
    data = RF.encode_receipt(r) if isinstance(r, RF.Receipt) else r
    with pytest.raises(error, match=message):
        batch.check(data, leaves, **kw)


def test_the_batch_holds_what_the_rules_are_tested_on(batch):
    """The batch these tests stand on has cancels and reduces of orders that
    traded in it, every field rejection but BOOK_FULL, fills of orders
    from before the batch and an account with fills but no operation."""
    rec = batch.records
    reasons = {Reason(int(x)) for x in rec["reason"][rec["status"] == Status.REJECTED]}
    assert {Reason.BAD_KIND, Reason.BAD_SIDE, Reason.BAD_PRICE, Reason.BAD_QTY, Reason.BAD_FLAGS,
            Reason.UNKNOWN_HANDLE, Reason.STALE_HANDLE} <= reasons
    for kind, status in ((Kind.CANCEL, Status.CANCELLED), (Kind.REDUCE, Status.REDUCED)):
        done = rec[(rec["kind"] == kind) & (rec["status"] == status)]
        assert np.isin(done["handle"], batch.maker_handles).any(), kind
    pre = batch.private.resting
    assert np.isin(batch.maker_handles, pre["handle"]).any()
    assert set(batch.trade_records["maker_account"].tolist()) - set(rec["account"].tolist())


# ------------------------------------------------------- the format --

PARTS = [("zk_receipt_header", RF.HEADER_DTYPE), ("zk_receipt_op", RF.OP_ENTRY_DTYPE),
         ("zk_receipt_trade", RF.TRADE_ENTRY_DTYPE)]


@pytest.mark.parametrize("ctype, dtype", PARTS)
def test_layout_agrees_with_the_c_header(ctype, dtype):
    check_layout(ctype, dtype)


def test_the_nested_record_is_the_engines():
    assert ffi.typeof("zk_receipt_op").fields[0][1].type == ffi.typeof("zk_op")
    assert RF.OP_ENTRY_DTYPE.fields["record"][0] == OP_DTYPE


def test_constants_agree_with_the_c_header():
    assert lib.ZK_RECEIPT_MAGIC == RF.MAGIC == int.from_bytes(RF.MAGIC_BYTES, "little")
    assert lib.ZK_RECEIPT_VERSION == RF.VERSION
    assert lib.ZK_RECEIPT_SALT_ELEMENTS == RF.SALT_ELEMENTS
    assert lib.ZK_RECEIPT_SIDE_SALT_BYTES == RF.SIDE_SALT_BYTES
    assert lib.ZK_RECEIPT_DIGEST_BYTES == L.DIGEST_BYTES
    assert lib.ZK_RECEIPT_HANDLE_BYTES == RF.HANDLE_BYTES
    assert RF.TRADE_FIELDS == RF.TRADE_ENTRY_DTYPE.names[1:7]


@pytest.mark.parametrize("title, dtype", [("### Receipt header", RF.HEADER_DTYPE),
                                          ("### Receipt operation entry", RF.OP_ENTRY_DTYPE),
                                          ("### Receipt trade entry", RF.TRADE_ENTRY_DTYPE)])
def test_formats_md_byte_tables_agree(title, dtype):
    check_byte_table(title, dtype)


# ------------------------------------------------ made and checked --

def test_a_receipt_by_seq_checks_and_says_what_was_proven(batch):
    seq = batch.seq_with_trades(2)
    data = batch.receipt(seqs=[seq])
    r = RF.decode_receipt(data)
    assert len(data) == RF.receipt_size(batch.statement.ops, TRACE_LENGTH, len(r.operations), len(r.trades), 0)
    report = batch.check(data)
    (op,) = report.operations
    row = batch.row(seq)
    assert op.seq == seq and op.row == row and op.record == {n: int(batch.records[row][n]) for n in OP_DTYPE.names}
    assert [t.number for t in op.trades] == [0, 1]
    mine = batch.fields[batch.fields[:, 0] == row]
    assert sorted((t.price, t.qty) for t in op.trades) == sorted(map(tuple, mine[:, 4:6].tolist()))
    assert sum(t.qty for t in op.trades) == op.record["filled"]
    # the check takes a decoded receipt too, and with the leaves at hand
    assert R.check_receipt(r, batch.statement) == report == batch.check(data, leaves=True)
    text = R.render(report, proof_verified=True)
    for phrase in (f"seq {seq}", "(verified)", "docs/MATCHING.md", "client_id", "cannot show",
                   "no other trade", "no other operation", f"trade 1 (slot {op.trades[1].slot})",
                   "the trade's number among that taker's trades"):
        assert phrase in text, phrase
    assert "NOT verified" in R.render(report, proof_verified=False)


def test_lists_from_leaves_give_the_same_receipt(batch):
    seq = batch.seq_with_trades(3)
    assert R.make_receipt(batch.statement, batch.private, (batch.op_leaves, batch.trade_leaves), seqs=[seq]) \
        == batch.receipt(seqs=[seq])


def test_a_receipt_of_every_operation_checks(batch):
    """Every one of the batch's operations, whatever its kind and outcome:
    its receipt checks and shows its record, its trades as taker, and, for
    an order that rested, the trades against it after it rested."""
    s = batch.statement
    for i, rec in enumerate(batch.records):
        seq = s.first_seq + i
        report = batch.check(batch.receipt(seqs=[seq]))
        (op,) = report.operations
        assert op.seq == seq and len(op.trades) == int(rec["trades"])
        against = np.flatnonzero((batch.maker_handles == rec["handle"]) & (batch.fields[:, 0] > i)) \
            if rec["status"] == Status.RESTED else []
        assert sorted(t.slot for t in report.maker_trades) == sorted(int(batch.private.trade_slots[t])
                                                                     for t in against)
        assert all(t.placed_by == R.PlacedBy(1, seq, int(rec["account"])) for t in report.maker_trades)
    seqs = [batch.seq_with_trades(t) for t in (0, 1, 2, 3, 4)] + [s.first_seq, s.last_seq]
    report = batch.check(batch.receipt(seqs=seqs))
    assert [op.seq for op in report.operations] == sorted(set(seqs))


def test_a_rested_orders_receipt_shows_its_fills_as_maker(batch):
    """By seq, a new order that rested in this batch: the trades against its
    handle later in the batch come with it, shown as its own."""
    rested = np.flatnonzero((batch.records["status"] == Status.RESTED)
                            & np.isin(batch.records["handle"], batch.maker_handles))
    i = int(rested[0])
    seq, h = batch.statement.first_seq + i, int(batch.records["handle"][i])
    report = batch.check(batch.receipt(seqs=[seq]))
    assert report.maker_trades and all(t.maker_handle == h and t.placed_by.seq == seq for t in report.maker_trades)
    text = R.render(report, proof_verified=True)
    assert f"resting with handle {h:#x}" in text and f"the order of seq {seq} (in this receipt)" in text
    assert "Trades as maker, against orders shown placed" in text


def account_trades(batch: Batch, account: int) -> set[int]:
    """The slots of every trade of the batch in which `account` is taker or
    maker, from the engine's own trade records."""
    t = batch.trade_records
    mine = (t["taker_account"] == account) | (t["maker_account"] == account)
    return {int(k) for k in batch.private.trade_slots[mine]}


def test_a_receipt_by_account_holds_every_trade_of_the_account(batch, batch0):
    """For every account with anything in the batch: its receipt holds
    exactly the trades the engine says it took part in, as taker or maker;
    it names exactly its orders from before the batch that traded (from
    the pre-state book, not from the requester); with its receipt of batch
    0 given, every one of its maker trades is shown to be its own."""
    pre = batch.private.resting
    t = batch.trade_records
    accounts = set(batch.records["account"].tolist()) | set(t["maker_account"].tolist())
    for account in sorted(accounts):
        report = batch.check(batch.receipt(account=account))
        assert [op.row for op in report.operations] == np.flatnonzero(batch.records["account"] == account).tolist()
        slots = {tr.slot for op in report.operations for tr in op.trades} | {tr.slot for tr in report.maker_trades}
        assert slots == account_trades(batch, account), account
        own_pre = pre["handle"][pre["account"] == account]
        traded = {int(h) for h in batch.maker_handles if h in own_pre}
        assert set(report.handles) == traded
        if not traded:
            continue
        earlier = batch0.check(batch0.receipt(account=account))
        shown = batch.check(batch.receipt(account=account), earlier=[earlier])
        assert shown.maker_trades and all(tr.placed_by is not None and tr.placed_by.account == account
                                          for tr in shown.maker_trades)
        assert {tr.placed_by.batch_id for tr in shown.maker_trades if tr.named} == {0}


def test_a_receipt_with_no_operation(batch, batch0):
    """An account whose orders from before the batch traded, with no
    operation in it: its receipt holds only those trades, shown as its own
    only with the receipt of the batch that placed them."""
    (account,) = set(batch.trade_records["maker_account"].tolist()) - set(batch.records["account"].tolist())
    report = batch.check(batch.receipt(account=account))
    assert report.operations == () and report.maker_trades
    assert all(t.named and t.placed_by is None for t in report.maker_trades)
    text = R.render(report, proof_verified=True)
    assert "NOT shown to be its holder's" in text and "Trades as maker, against orders shown" not in text
    shown = batch.check(batch.receipt(account=account), earlier=[batch0.check(batch0.receipt(account=account))])
    assert all(t.placed_by.account == account and t.placed_by.batch_id == 0 for t in shown.maker_trades)
    text = R.render(shown, proof_verified=True)
    assert "of batch 0, account" in text and "NOT shown" not in text


def test_the_shape_with_no_trade_slot():
    """ops = T - 1: the trade list has no slot (depth 0); receipts of it
    are made, decoded and checked."""
    ops = records.ops(7)
    ops["seq"] = np.arange(1, 8)
    ops["ts_ns"] = EPOCH_NS + np.arange(7)
    ops["kind"], ops["symbol"], ops["qty"], ops["account"] = Kind.LIMIT, SYMBOL, 5, np.arange(7) % 3
    ops["side"] = np.where(np.arange(7) % 2, 1, 2)
    ops["price"] = np.where(ops["side"] == 1, 99_000, 101_000) + np.arange(7)
    tiny = Batch(batch_id=3, ops=ops, before=0, count=7, trace_length=8)
    assert tiny.statement.trade_slots == 0 and tiny.lists.trades.depth == 0
    for seq in range(1, 8):
        (op,) = tiny.check(tiny.receipt(seqs=[seq])).operations
        assert op.record["status"] == Status.RESTED
    assert len(tiny.check(tiny.receipt(account=1)).operations) == 2


def test_requests_that_cannot_be_met(batch):
    s = batch.statement
    with pytest.raises(R.ReceiptRequestError, match=rf"seq {s.last_seq + 1} is not in batch 1 of symbol 7 "
                                                    rf"\(seqs {s.first_seq} \.\. {s.last_seq}\)"):
        batch.receipt(seqs=[s.last_seq + 1])
    absent = int(max(batch.records["account"].max(), batch.private.resting["account"].max())) + 1
    with pytest.raises(R.ReceiptRequestError, match=f"account {absent}: nothing to show in batch 1"):
        batch.receipt(account=absent)
    with pytest.raises(R.ReceiptRequestError, match="one of the two"):
        batch.receipt(seqs=[s.first_seq], account=1)
    with pytest.raises(R.ReceiptRequestError, match="one of the two"):
        batch.receipt()
    with pytest.raises(TypeError):              # resting orders come from the pre-state book, not the request
        batch.receipt(seqs=[s.first_seq], resting=[int(batch.private.resting["handle"][0])])
    # private data or lists of another batch are refused, not turned into a receipt that fails later
    other = Batch(batch_id=2)
    with pytest.raises(R.ReceiptRequestError, match="is not the one batch 1's statement names"):
        R.make_receipt(batch.statement, batch.private, other.lists, seqs=[s.first_seq])
    with pytest.raises(R.ReceiptRequestError, match="does not give the leaf batch 1 committed"):
        R.make_receipt(batch.statement, other.private, batch.lists, seqs=[s.first_seq])
    seq = batch.seq_with_trades(2)
    # a trade's message names its slot, never its index among the private trades (its rank in MATCH order)
    salted = batch.private._replace(trade_salts=other.private.trade_salts[:len(batch.private.trades)])
    with pytest.raises(R.ReceiptRequestError, match=r"^the private trade at slot \d+ does not give the leaf"):
        R.make_receipt(batch.statement, salted, batch.lists, seqs=[seq])
    dropped = batch.private._replace(trades=batch.private.trades[batch.private.trades[:, 0] != batch.row(seq)])
    with pytest.raises(R.ReceiptRequestError, match=f"the record of seq {seq} says 2 trades, the private trades "
                                                    f"hold 0 of it"):
        R.make_receipt(batch.statement, dropped._replace(trade_slots=batch.private.trade_slots[:len(dropped.trades)],
                                                          trade_salts=batch.private.trade_salts[:len(dropped.trades)]),
                       batch.lists, seqs=[seq])
    with pytest.raises(ValueError, match="private resting: a 1-D structured array"):
        R.make_receipt(batch.statement, batch.private._replace(resting=np.zeros(3, np.uint64)), batch.lists,
                       seqs=[seq])


# ------------------------------------------------ section 8's refusals --

def test_a_receipt_for_another_batch(batch):
    other = Batch(batch_id=2)
    data = other.receipt(seqs=[other.statement.first_seq])
    refused(batch, data, R.ReceiptStatementError, "the receipt is for batch 2 of symbol 7, not for this proof")
    # this batch's digest over another header: every repeated field is compared
    r = editable(data)
    refused(batch, dataclasses.replace(r, statement=batch.statement.digest), R.ReceiptStatementError,
            "names this proof's statement digest, but its batch_id")
    r = editable(batch.receipt(seqs=[batch.statement.first_seq]))
    refused(batch, dataclasses.replace(r, trades_root=other.statement.trades_root), R.ReceiptStatementError,
            "but its trades_root")


@pytest.mark.parametrize("field, value", [("price", 1), ("qty", 1), ("account", 1), ("ts_ns", 1),
                                          ("status", 3), ("filled", 1), ("handle", 5), ("client_id", 1)])
def test_an_altered_record(batch, field, value):
    seq = batch.seq_with_trades(1)
    r = editable(batch.receipt(seqs=[seq]))
    rec = r.operations[0]["record"]
    rec[field] = int(rec[field]) + value
    refused(batch, r, R.ReceiptRecordError, f"the record of seq {seq} is not the one batch 1 committed")


def test_a_record_outside_the_encoding(batch):
    seq = batch.statement.first_seq
    r = editable(batch.receipt(seqs=[seq]))
    r.operations[0]["record"]["status"] = 9
    refused(batch, r, R.ReceiptRecordError, f"the record of seq {seq}: .*status = 9 is outside")
    r = editable(batch.receipt(seqs=[seq]))
    r.operations[0]["record"]["symbol"] = SYMBOL + 1
    refused(batch, r, R.ReceiptRecordError, f"the record of seq {seq} is for symbol 8, not the batch's 7")


def test_another_row_position(batch):
    """Row i's record (with its salt and paths) presented as row j's, its
    seq changed to match: refused, and named when the leaves are at hand."""
    s = batch.statement
    i, j = 5, 6
    r = editable(batch.receipt(seqs=[s.first_seq + i]))
    r.operations[0]["index"] = j
    r.operations[0]["record"]["seq"] = s.first_seq + j
    refused(batch, r, R.ReceiptRecordError, f"the record of seq {s.first_seq + j} is not the one batch 1 committed")
    refused(batch, r, R.ReceiptRecordError, f"this record is row {i}'s, not row {j}'s", leaves=True)
    # the row moved alone: its seq no longer matches
    r.operations[0]["record"]["seq"] = s.first_seq + i
    refused(batch, r, R.ReceiptRecordError, f"the record at row {j} has seq {s.first_seq + i}, but row {j} "
                                            f"of batch 1 is seq {s.first_seq + j}")
    r.operations[0]["index"] = s.ops
    refused(batch, r, R.ReceiptRecordError, f"row {s.ops} is outside batch 1's {s.ops} operations")


def test_an_empty_receipt(batch):
    r = editable(batch.receipt(seqs=[batch.statement.first_seq]))
    refused(batch, dataclasses.replace(r, operations=r.operations[:0], trades=r.trades[:0]), R.ReceiptRecordError,
            "no operation and no trade")


def test_a_row_twice(batch):
    r = editable(batch.receipt(seqs=[batch.statement.first_seq]))
    refused(batch, raw(dataclasses.replace(r, operations=np.concatenate([r.operations, r.operations]))),
            R.ReceiptFormatError, "operation entry 1: row 0 after row 0: the row appears twice")


@pytest.mark.parametrize("field", ["price", "qty", "maker_slot", "maker_gen", "number"])
def test_an_altered_trade(batch, field):
    seq = batch.seq_with_trades(3)
    r = editable(batch.receipt(seqs=[seq]))
    t = r.trades[1]
    t[field] = int(t[field]) + (1 if field != "number" else 0)
    if field == "number":                       # swap two numbers: both still in range, both present
        r.trades[0]["number"], r.trades[1]["number"] = int(r.trades[1]["number"]), int(r.trades[0]["number"])
        r = dataclasses.replace(r, trades=in_order(r.trades))
    refused(batch, r, R.ReceiptTradeError, r"trade at slot \d+ does not match the commitment")


def test_a_trade_at_another_slot(batch):
    seq = batch.seq_with_trades(2)
    r = editable(batch.receipt(seqs=[seq]))
    k = int(r.trades[0]["slot"])
    r.trades[0]["slot"] = int(batch.dummy_slots[0])
    refused(batch, r, R.ReceiptTradeError, f"trade at slot {int(batch.dummy_slots[0])} does not match")
    refused(batch, r, R.ReceiptTradeError, f"is slot {k}'s, not slot {int(batch.dummy_slots[0])}'s", leaves=True)
    r.trades[0]["slot"] = batch.statement.trade_slots
    refused(batch, r, R.ReceiptTradeError, f"outside batch 1's {batch.statement.trade_slots} trade slots")
    r.trades[0]["slot"] = int(r.trades[1]["slot"])
    refused(batch, r, R.ReceiptTradeError, "appears twice")


def test_a_trade_dropped(batch):
    seq = batch.seq_with_trades(3)
    r = editable(batch.receipt(seqs=[seq]))
    keep = r.trades["number"] != 1
    refused(batch, dataclasses.replace(r, trades=r.trades[keep]), R.ReceiptTradeError,
            f"trade 1 of operation seq {seq} is missing")


def test_a_trade_added(batch):
    """Another operation's trade, as it is (it verifies) and claimed as this
    operation's."""
    seq = batch.seq_with_trades(2)
    other = batch.seq_with_trades(1)
    r = editable(batch.receipt(seqs=[seq]))
    taker_only = batch.trade_entries(other)[:1]
    refused(batch, spliced(r, taker_only), R.ReceiptTradeError,
            rf"trade at slot {int(taker_only[0]['slot'])} is not one of this receipt's: its taker, seq {other}")
    claimed = taker_only.copy()
    claimed["taker"], claimed["number"] = batch.row(seq), 2
    refused(batch, spliced(r, claimed), R.ReceiptTradeError,
            f"is not one of operation {seq}'s: it made 2 trades, this one is numbered 2")
    claimed["number"] = 1           # beside the real trade 1: one (taker, number) twice, refused by the format
    row = batch.row(seq)
    refused(batch, raw(spliced(r, claimed)), R.ReceiptFormatError,
            f"taker row {row} trade 1 after taker row {row} trade 1: trades are in increasing")


def test_a_taker_outside_the_batch(batch):
    """A trade whose taker row is beyond the batch is refused by name."""
    seq = batch.seq_with_trades(2)
    r = editable(batch.receipt(seqs=[seq]))
    t = r.trades[-1:].copy()
    t["taker"], t["slot"] = batch.statement.ops, int(batch.dummy_slots[0])
    refused(batch, spliced(r, t), R.ReceiptTradeError,
            f"its taker, row {batch.statement.ops}, is outside batch 1's {batch.statement.ops} operations")


def test_a_dummy_presented_as_a_trade(batch):
    """A dummy leaf opens with all-zero fields and its own salt: its path
    verifies, and the zero quantity refuses it."""
    seq = batch.seq_with_trades(1)
    r = editable(batch.receipt(seqs=[seq]))
    k = int(batch.dummy_slots[3])
    dummy = np.zeros(1, dtype=r.trades.dtype)
    dummy["slot"], dummy["salt"], dummy["path"] = k, batch.slot_salts[k], batch.lists.trades.path(k)
    leaf = Z.leaf_digests(batch.slot_salts[k:k + 1], np.zeros((1, 12), np.uint32))[0]
    assert L.verify_path(batch.statement.trades_root, L.leaf_hash(L.LIST_TRADES, k, leaf), k,
                         batch.statement.trade_slots, dummy[0]["path"])
    refused(batch, spliced(r, dummy), R.ReceiptTradeError, f"trade at slot {k} has quantity 0: not a trade")
    dummy["qty"] = 1
    refused(batch, spliced(r, dummy), R.ReceiptTradeError, f"trade at slot {k} has price 0: not a trade")


def test_committed_trades_that_break_the_record_are_refused():
    """A batch that committed a lie (which its proof would not verify): the
    receipt's own checks still refuse trades that do not sum to `filled`, or
    that trade beyond the taker's limit."""
    def short_fill(records, fields):
        fields[np.flatnonzero(records["trades"][fields[:, 0]] == 2)[0], 5] += 1

    lie = Batch(tamper=short_fill)
    row = int(lie.fields[np.flatnonzero(lie.records["trades"][lie.fields[:, 0]] == 2)[0], 0])
    seq = lie.statement.first_seq + row
    with pytest.raises(R.ReceiptTradeError, match=f"the trades of operation seq {seq} sum to \\d+ lots, "
                                                  f"but its record says filled"):
        lie.check(lie.receipt(seqs=[seq]))

    def beyond(records, fields):
        k = np.flatnonzero(np.isin(records["kind"][fields[:, 0]], [Kind.LIMIT, Kind.IOC]))[0]
        rec = records[fields[k, 0]]
        fields[k, 4] = int(rec["price"]) + (1 if rec["side"] == 1 else -1)

    lie = Batch(tamper=beyond)
    k = np.flatnonzero(np.isin(lie.records["kind"][lie.fields[:, 0]], [Kind.LIMIT, Kind.IOC]))[0]
    seq = lie.statement.first_seq + int(lie.fields[k, 0])
    with pytest.raises(R.ReceiptTradeError, match=f"beyond operation seq {seq}'s limit"):
        lie.check(lie.receipt(seqs=[seq]))


# ------------------------------------------------ whose order a trade is against --

def test_traded_resting_is_each_maker_order_once_by_handle(batch: Batch):
    """batch_receipts.traded_resting: the distinct (maker handle, maker
    account) pairs of the engine's trade records, sorted by handle then
    account, as a set of pairs sorted would give them; an order that
    traded several times is there once."""
    trades = batch.trade_records
    want = sorted({(int(h), int(a)) for h, a in zip(trades["maker_handle"], trades["maker_account"])})
    assert len(want) < len(trades)               # the batch has makers that traded more than once
    twice = np.concatenate([trades[::-1], trades])
    for given in (trades, twice):
        got = batch_receipts.traded_resting(given)
        assert got.dtype == batch_receipts.RESTING_DTYPE
        assert [(int(h), int(a)) for h, a in zip(got["handle"], got["account"])] == want
    # one handle with two accounts (not an engine's, but the rule holds): both, the smaller account first
    odd = trades[:2].copy()
    odd["maker_handle"] = odd["maker_handle"][0]
    odd["maker_account"] = [9, 4]
    assert batch_receipts.traded_resting(odd)["account"].tolist() == [4, 9]
    assert len(batch_receipts.traded_resting(trades[:0])) == 0


def traded_before_the_batch(batch: Batch) -> list[tuple[int, int]]:
    """(handle, owner account) of each order resting before the batch that
    trades in it."""
    pre = batch.private.resting
    hit = np.isin(pre["handle"], batch.maker_handles)
    return [(int(h), int(a)) for h, a in zip(pre["handle"][hit], pre["account"][hit])]


def test_a_field_rejected_order_carrying_another_accounts_handle(batch):
    """H1 of the review: a LIMIT rejected BAD_FLAGS keeps the handle its
    sender wrote, here another account's resting order that trades later
    in the batch (the engine writes it so, and the transparent verifier
    accepts it: docs/MATCHING.md, "Handles").  Only a RESTED record was
    assigned its handle: the receipt of the rejected order holds none of
    that order's fills, shows no handle for it, and refuses one spliced in."""
    h, owner = traded_before_the_batch(batch)[0]

    def craft(ops):
        evil = ops[200]                     # the batch's first operation becomes the sender's
        evil["kind"], evil["flags"], evil["handle"], evil["account"] = Kind.LIMIT, 0x4, h, 999
        evil["side"], evil["price"], evil["qty"] = 1, 100_000, 1

    bad = Batch(craft=craft)
    rec, seq = bad.records[0], bad.statement.first_seq
    assert (int(rec["status"]), int(rec["reason"]), int(rec["handle"])) == (Status.REJECTED, Reason.BAD_FLAGS, h)
    victims = np.flatnonzero(bad.maker_handles == h)
    assert len(victims) and owner != 999
    for choice in (dict(seqs=[seq]), dict(account=999)):
        report = bad.check(bad.receipt(**choice))
        assert report.maker_trades == () and report.handles == ()
        text = R.render(report, proof_verified=True)
        assert "REJECTED (BAD_FLAGS)" in text and f"{h:#x}" not in text
    taker_seq = bad.statement.first_seq + int(bad.fields[victims[0], 0])
    forged = spliced(editable(bad.receipt(seqs=[seq])), bad.trade_entries(taker_seq, h))
    refused(bad, forged, R.ReceiptTradeError, f"its taker, seq {taker_seq}, is not in the receipt, and its maker "
                                              f"order, handle {h:#x}, is neither placed by one of the receipt's")


@pytest.mark.parametrize("kind", [Kind.CANCEL, Kind.REDUCE])
def test_a_cancels_target_is_not_its_order(batch, kind):
    """A CANCEL's or REDUCE's handle names its target, another order (M4 of
    the review): its receipt holds none of the target's fills, and one
    spliced in is refused.  The REDUCE's target trades after it, so
    counting a target as placed would let that fill in."""
    rec = batch.records
    rows = [i for i in np.flatnonzero(rec["kind"] == kind) if rec["status"][i] != Status.REJECTED
            and (batch.maker_handles == rec["handle"][i]).any()]
    i = rows[-1]
    h, seq = int(rec["handle"][i]), batch.statement.first_seq + int(i)
    report = batch.check(batch.receipt(seqs=[seq]))
    assert report.maker_trades == ()
    t = int(np.flatnonzero(batch.maker_handles == h)[0])
    taker_seq = batch.statement.first_seq + int(batch.fields[t, 0])
    assert (taker_seq > seq) == (kind == Kind.REDUCE)
    forged = spliced(editable(batch.receipt(seqs=[seq])), batch.trade_entries(taker_seq, h))
    refused(batch, forged, R.ReceiptTradeError, f"its maker order, handle {h:#x}, is neither placed")


def test_a_trade_before_the_order_was_placed_is_not_its():
    """A trade counts as a placed order's only when its taker came after the
    placing row.  Committed by a lying batch (whose proof would not
    verify): a trade of an earlier row recorded against the handle a later
    row was assigned.  The receipt of that later row leaves it out and
    refuses it spliced in."""
    chosen = {}

    def tamper(records, fields):
        rested = np.flatnonzero(records["status"] == Status.RESTED)
        r = int(next(r for r in rested if (fields[:, 0] < r).any()))
        t = int(np.flatnonzero(fields[:, 0] < r)[0])
        h = int(records["handle"][r])
        fields[t, 2], fields[t, 3] = h & 0xFFFFFFFF, h >> 32
        chosen.update(row=r, trade=t, handle=h)

    lie = Batch(tamper=tamper)
    seq = lie.statement.first_seq + chosen["row"]
    taker_seq = lie.statement.first_seq + int(lie.fields[chosen["trade"], 0])
    report = lie.check(lie.receipt(seqs=[seq]))
    assert all(t.taker_seq > seq for t in report.maker_trades)
    forged = spliced(editable(lie.receipt(seqs=[seq])), lie.trade_entries(taker_seq, chosen["handle"]))
    refused(lie, forged, R.ReceiptTradeError, f"its taker, seq {taker_seq}, is not in the receipt, and its maker "
                                              f"order, handle {chosen['handle']:#x}, is neither placed by one of "
                                              f"the receipt's operations before that taker")


def test_a_named_handle_is_not_shown_to_be_the_holders(batch, batch0):
    """M1 of the review.  Trader A's receipt with a stranger's trade spliced
    in (taker X, against account B's order from before the batch) and that
    order's handle named; and a receipt holding only that trade and handle.
    Every trade in them is real, so both check, and both report the
    stranger's trade as what it is: against a handle the receipt names,
    not shown to be its holder's.  A's own trade against the same order is
    not relabelled.  With the receipt of batch 0 that placed the order
    given, the trade is shown as B's order, with B's account."""
    f, s = batch.fields, batch.statement
    for h, owner in traded_before_the_batch(batch):
        takers = sorted({int(i) for i in f[batch.maker_handles == h, 0] if batch.records["account"][i] != owner})
        if len(takers) >= 2:
            break
    seq_a, seq_x = s.first_seq + takers[0], s.first_seq + takers[1]
    r = editable(batch.receipt(seqs=[seq_a]))
    extra = batch.trade_entries(seq_x, h)
    forged = RF.encode_receipt(spliced(r, extra, handles=[h]))
    report = batch.check(forged)
    assert [(t.taker_seq, t.maker_handle, t.named, t.placed_by) for t in report.maker_trades] \
        == [(seq_x, h, True, None)] * len(extra)
    own = [t for t in report.operations[0].trades if t.maker_handle == h]
    assert own and all(t.placed_by is None for t in own)
    text = R.render(report, proof_verified=True)
    assert "NOT shown to be its holder's" in text and "Trades as maker" not in text
    assert all(line.endswith(f"against handle {h:#x}") for line in text.splitlines()
               if line.startswith("  trade ") and f"{h:#x}" in line)
    only = RF.encode_receipt(dataclasses.replace(r, operations=r.operations[:0], trades=in_order(extra),
                                                 handles=np.array([h], np.uint64)))
    report = batch.check(only)
    assert report.operations == () and all(t.named and t.placed_by is None for t in report.maker_trades)
    assert "Trades as maker" not in R.render(report, proof_verified=True)
    # the receipt of the batch whose operation placed the order shows whose it is
    placer = batch0.records[(batch0.records["status"] == Status.RESTED) & (batch0.records["handle"] == h)]
    placer_seq = int(placer["seq"][0])
    shown = batch.check(forged, earlier=[batch0.check(batch0.receipt(seqs=[placer_seq]))])
    assert all(t.placed_by == R.PlacedBy(0, placer_seq, owner) for t in shown.maker_trades)
    assert f"the order of seq {placer_seq} of batch 0, account {owner}" in R.render(shown, proof_verified=True)


def test_earlier_reports_must_be_of_earlier_batches(batch, batch0):
    later = batch.check(batch.receipt(seqs=[batch.statement.first_seq]))
    data = batch0.receipt(seqs=[1])
    with pytest.raises(R.ReceiptStatementError, match=r"the report given as earlier is of batch 1 of symbol 7 "
                                                      r"\(seqs 201 \.\. 500\), not of a batch of symbol 7 before "
                                                      r"seq 1"):
        batch0.check(data, earlier=[later])
    with pytest.raises(R.ReceiptStatementError, match="not of a batch of symbol 7 before seq 201"):
        batch.check(batch.receipt(seqs=[batch.statement.last_seq]), earlier=[later])
    with pytest.raises(TypeError, match="earlier: reports of check_receipt, got bytes"):
        batch.check(batch.receipt(seqs=[batch.statement.last_seq]), earlier=[data])


def test_a_handle_named_and_placed_in_the_batch(batch):
    """A named handle is an order from before the batch: one that an
    operation of the receipt placed in it is refused."""
    rested = np.flatnonzero((batch.records["status"] == Status.RESTED)
                            & np.isin(batch.records["handle"], batch.maker_handles))
    seq = batch.statement.first_seq + int(rested[0])
    r = editable(batch.receipt(seqs=[seq]))
    h = int(batch.records["handle"][rested[0]])
    refused(batch, dataclasses.replace(r, handles=np.array([h], np.uint64)), R.ReceiptTradeError,
            f"handle {h:#x} is named as an order resting before the batch, but seq {seq} of this receipt placed it")


# ------------------------------------------------ malformed bytes --

def test_malformed_bytes_are_named(batch):
    data = batch.receipt(seqs=[batch.seq_with_trades(2)])
    cases = [
        (data[:100], "truncated: a receipt's header is 176 bytes, got 100"),
        (data[:-1], "trade_count = 2 claims"),
        (data + b"\0" * 8, "8 trailing bytes"),
        (5, "a receipt is bytes, got int"),
        (b"ZKSX" + data[4:], "not a receipt: magic b'ZKSX'"),
        (data[:4] + (2).to_bytes(2, "little") + data[6:], "receipt version 2, this build reads 1"),
        (data[:6] + b"\1\0" + data[8:], "header: reserved is not zero"),
        (data[:64] + (500).to_bytes(4, "little") + data[68:], "trace_length = 500 is not a power of two"),
        (data[:60] + (512).to_bytes(4, "little") + data[64:], "ops = 512 is outside 1 .. trace_length - 1"),
        (data[:68] + (10 ** 6).to_bytes(4, "little") + data[72:],
         "header: op_count = 1000000 is more than the batch's operations (300)"),
        (data[:72] + (2 ** 32 - 1).to_bytes(4, "little") + data[76:],
         "header: trade_count = 4294967295 is more than the batch's trade slots (211)"),
        (data[:76] + (3).to_bytes(4, "little") + data[80:], "header: handle_count = 3 is more than trade_count (2)"),
        (data[:68] + (300).to_bytes(4, "little") + data[72:], "op_count = 300 claims"),
        (data[:76] + (1).to_bytes(4, "little") + data[80:], "handle_count = 1 claims 8 bytes"),
        (data[:176 + 100] + b"\1" + data[176 + 101:], "operation entry 0: reserved is not zero"),
        ("a receipt", "a receipt is bytes"),
    ]
    for bad, message in cases:
        with pytest.raises(R.ReceiptFormatError, match=re.escape(message)):
            batch.check(bad)


def test_a_claimed_count_is_checked_before_anything_is_read():
    """A 176-byte header and nothing after it: counts beyond what a receipt
    of its batch can hold are refused as such, counts within them by the
    length check, both before any entry is read."""
    h = np.zeros(1, RF.HEADER_DTYPE)
    h["magic"], h["version"], h["ops"], h["trace_length"] = RF.MAGIC, RF.VERSION, 1, 2
    h["op_count"] = h["trade_count"] = h["handle_count"] = 2 ** 32 - 1
    with pytest.raises(R.ReceiptFormatError, match="op_count = 4294967295 is more than the batch's operations"):
        RF.decode_receipt(h.tobytes())
    h["ops"], h["trace_length"] = 2 ** 30, 2 ** 31
    h["op_count"], h["trade_count"], h["handle_count"] = 2 ** 30, 2 ** 30 - 1, 2 ** 30 - 1
    with pytest.raises(R.ReceiptFormatError, match="op_count = 1073741824 claims"):
        RF.decode_receipt(h.tobytes())


def test_one_receipt_has_one_byte_string(batch):
    """The canonical form (L1 of the review): handles nonzero, increasing,
    each a trade's maker; operations by row, trades by (taker, number).
    Other bytes for the same content are refused by name, whether written
    by hand (decode) or built as a Receipt (encode)."""
    pre = batch.private.resting
    account = next(int(a) for a in sorted(set(pre["account"].tolist()))
                   if np.isin(batch.maker_handles, pre["handle"][pre["account"] == a]).sum() >= 2
                   and len(set(batch.maker_handles[np.isin(batch.maker_handles,
                                                           pre["handle"][pre["account"] == a])].tolist())) >= 2
                   and (batch.records["account"] == a).sum() >= 2)
    r = editable(batch.receipt(account=account))
    assert len(r.handles) >= 2 and len(r.operations) >= 2 and len(r.trades) >= 2
    h = [int(x) for x in r.handles]
    unused = int(pre["handle"][~np.isin(pre["handle"], batch.maker_handles)][0])
    cases = [
        (dict(handles=np.array([0] + h[1:], np.uint64)), "handle entry 0 is 0: a handle is nonzero"),
        (dict(handles=np.array([h[0], h[0]] + h[2:], np.uint64)), f"handle entry 1: {h[0]:#x} after {h[0]:#x}"),
        (dict(handles=np.array(h[::-1], np.uint64)), f"handle entry 1: {h[-2]:#x} after {h[-1]:#x}"),
        (dict(handles=np.array(sorted(h[1:] + [unused]), np.uint64)), f"{unused:#x} is the maker of no trade"),
        (dict(operations=r.operations[::-1].copy()), "operations are in increasing row order"),
        (dict(trades=r.trades[::-1].copy()), "trades are in increasing (taker, number) order"),
    ]
    for change, message in cases:
        bad = dataclasses.replace(r, **change)
        refused(batch, raw(bad), R.ReceiptFormatError, re.escape(message))
        with pytest.raises(R.ReceiptFormatError, match=re.escape(message)):
            RF.encode_receipt(bad)
    assert RF.encode_receipt(r) == batch.receipt(account=account)


@pytest.mark.parametrize("field, value, message", [
    ("batch_id", 2 ** 64, "receipt batch_id: a u64"),
    ("symbol", -1, "receipt symbol: a u32"),
    ("ops", True, "receipt ops: a u32"),
    ("statement", "x" * 32, "receipt statement: 32 bytes"),
    ("ops_root", b"\0" * 31, "receipt ops_root: 32 bytes"),
    ("trades", [], "receipt trades: a 1-D array of the entry dtype"),
    ("handles", [-1], "receipt handle 0: a u64"),
    ("handles", np.array([-1]), "receipt handles: a 1-D array of unsigned integers"),
    ("handles", np.array([[1]], np.uint64), "receipt handles: a 1-D array of unsigned integers"),
    ("handles", {1}, "receipt handles: an array or list of u64"),
    ("ops", 0, "header: ops = 0 is outside"),
])
def test_a_receipt_object_with_bad_values(batch, field, value, message):
    """A Receipt built by hand meets the format's checks: a value that does
    not fit its field is a ReceiptFormatError naming it, never an
    OverflowError or TypeError, and a negative handle is not wrapped."""
    r = editable(batch.receipt(seqs=[batch.seq_with_trades(2)]))
    with pytest.raises(R.ReceiptFormatError, match=re.escape(message)):
        batch.check(dataclasses.replace(r, **{field: value}))


# ------------------------------------------------ hiding, cheap form --

def test_a_receipt_holds_no_other_operations_record(batch):
    """Test 12.d, cheap form: no high-entropy 8-byte field (ts_ns, client_id)
    of any operation outside the receipt appears in its bytes; receipts of
    the same counts are the same length, a function of those counts alone.
    (Handles, prices, quantities and accounts are small numbers that any
    u32 field followed by zeros can spell: a search for them finds chance
    hits, not leaks.)"""
    s = batch.statement
    sizes = set()
    for seq in (batch.seq_with_trades(2, 0), batch.seq_with_trades(2, 1), batch.seq_with_trades(2, 2)):
        data = batch.receipt(seqs=[seq])
        r = RF.decode_receipt(data)
        others = batch.records[batch.records["seq"] != seq]
        assert len(others) == s.ops - 1
        found = [(name, int(v)) for name in ("ts_ns", "client_id") for v in others[name]
                 if int(v).to_bytes(8, "little") in data]
        assert found == []
        assert (len(r.operations), len(r.trades), len(r.handles)) == (1, 2, 0)
        sizes.add(len(data))
    assert sizes == {RF.receipt_size(s.ops, TRACE_LENGTH, 1, 2, 0)}
    # and the search finds a field when it is there: the receipt's own record
    rec = batch.records[batch.records["seq"] == seq][0]
    assert int(rec["ts_ns"]).to_bytes(8, "little") in data and int(rec["client_id"]).to_bytes(8, "little") in data


def test_size_at_the_bench_shape():
    """One operation with two trades at 2^14 operations in 2^15 rows: the
    paths are 14 digests each (docs/ZK.md, section 8's ~2.2 KB)."""
    assert RF.receipt_size(1 << 14, 1 << 15, 1, 2, 0) == 176 + 104 + 2 * 14 * 32 + 2 * (48 + 14 * 32) == 2168
