"""Receipts (prover/orderbook/receipt.py, receipt_format.py; docs/ZK.md,
section 8; docs/FORMATS.md, "Receipt"): the format against its C header,
receipts by sequence number and by account made and checked against a
batch built from the engine, every refusal of section 8 with the refused
receipt built, the decoder's refusals of malformed bytes, and the cheap form
of hiding test 12.d (a receipt holds no other operation's record bytes, and
its size is a function of its counts).

The batch is the engine's (engine/flow.py through a Book), its leaves are
zk_encoding's and its lists zk_lists'.  Two things are test doubles, here
only: the batch's salts and trade-slot order come from zk_keys under a
fixed test key and test labels (the prover's labels are the batch proof's
to fix), and the statement digest is a SHA-256 of the test's own (the batch
file's digest is the batch file's to define)."""
from __future__ import annotations

import dataclasses
import hashlib
import re

import numpy as np
import pytest

from format_docs import check_byte_table
from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.engine.native import ffi, lib
from zksidecar.engine.records import OP_DTYPE, Kind
from zksidecar.prover import zk_keys
from zksidecar.prover.orderbook import air
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


class Batch:
    """One zk batch's public statement, private data and published leaves,
    built from the engine: operations 201 .. 500 of a flow (batch 1; the
    first 200 built the book), so rows and sequence numbers differ and
    orders from before the batch trade in it."""

    def __init__(self, batch_id: int = 1, seed: int = 11, tamper=None):
        ops = flow.generate(500, seed, capacity=CAPACITY, prefill=150, symbol=SYMBOL)
        ops["ts_ns"] += np.uint64(EPOCH_NS)         # the flow's clock starts at 0; an engine's does not
        book = Book(CAPACITY, symbol=SYMBOL)
        book.process(ops[:200])
        self.pre = Book.restore(book.snapshot())
        records = ops[200:].copy()
        trades = book.process(records)
        self.trade_records = trades
        first_seq = int(records["seq"][0])
        fields = air.public_tables(records, trades, CAPACITY, first_seq)[2][:, 1:7].astype(np.int64)
        if tamper:
            tamper(records, fields)
        n, m = len(records), len(trades)
        slots = TRACE_LENGTH - 1 - n
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
        self.private = R.PrivateBatch(records, leaf_salts, side_salts, fields, trade_slots, slot_salts[trade_slots])
        self.lists = R.BatchLists.build(self.private, self.op_leaves, self.trade_leaves)
        digest = hashlib.sha256(b"test double of a statement digest" + bytes([batch_id]) + self.lists.ops.root
                                + self.lists.trades.root).digest()
        self.statement = R.BatchStatement(digest, batch_id, SYMBOL, first_seq, n, TRACE_LENGTH,
                                          self.lists.ops.root, self.lists.sides.root, self.lists.trades.root)
        self.records, self.fields = records, fields

    def seq_with_trades(self, t: int, skip: int = 0) -> int:
        return int(self.records["seq"][np.flatnonzero(self.records["trades"] == t)[skip]])

    def receipt(self, **choice) -> bytes:
        return R.make_receipt(self.statement, self.private, self.lists, **choice)

    def check(self, data, leaves: bool = False) -> R.ReceiptReport:
        if leaves:
            return R.check_receipt(data, self.statement, self.op_leaves, self.trade_leaves)
        return R.check_receipt(data, self.statement)


@pytest.fixture(scope="module")
def batch() -> Batch:
    return Batch()


def editable(data: bytes) -> RF.Receipt:
    """A decoded receipt with writable copies of its arrays."""
    r = RF.decode_receipt(data)
    return dataclasses.replace(r, operations=r.operations.copy(), trades=r.trades.copy(), handles=r.handles.copy())


def refused(batch: Batch, r, error, message: str, leaves: bool = False) -> None:
    data = RF.encode_receipt(r) if isinstance(r, RF.Receipt) else r
    with pytest.raises(error, match=message):
        batch.check(data, leaves)


# ------------------------------------------------------- the format --

PARTS = [("zk_receipt_header", RF.HEADER_DTYPE), ("zk_receipt_op", RF.OP_ENTRY_DTYPE),
         ("zk_receipt_trade", RF.TRADE_ENTRY_DTYPE)]


@pytest.mark.parametrize("ctype, dtype", PARTS)
def test_layout_agrees_with_the_c_header(ctype, dtype):
    assert ffi.sizeof(ctype) == dtype.itemsize
    c_fields = ffi.typeof(ctype).fields
    assert [name for name, _ in c_fields] == list(dtype.names)
    for name, field in c_fields:
        sub, offset = dtype.fields[name][:2]
        assert ffi.offsetof(ctype, name) == offset, name
        assert ffi.sizeof(field.type) == sub.itemsize, name
        assert sub.base.str[0] in "<|" or sub.names, name       # little-endian, or the nested record
    assert ffi.typeof("zk_receipt_op").fields[0][1].type == ffi.typeof("zk_op")
    assert RF.OP_ENTRY_DTYPE.fields["record"][0] == OP_DTYPE


def test_constants_agree_with_the_c_header():
    assert lib.ZK_RECEIPT_MAGIC == RF.MAGIC == int.from_bytes(RF.MAGIC_BYTES, "little")
    assert lib.ZK_RECEIPT_VERSION == RF.VERSION
    assert lib.ZK_RECEIPT_SALT_ELEMENTS == RF.SALT_ELEMENTS == Z.SALT_ELEMENTS
    assert lib.ZK_RECEIPT_SIDE_SALT_BYTES == RF.SIDE_SALT_BYTES == Z.SIDE_SALT_BYTES
    assert lib.ZK_RECEIPT_DIGEST_BYTES == L.DIGEST_BYTES
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
    row = seq - batch.statement.first_seq
    assert op.seq == seq and op.row == row and op.record == {n: int(batch.records[row][n]) for n in OP_DTYPE.names}
    assert [t.number for t in op.trades] == [0, 1]
    mine = batch.fields[batch.fields[:, 0] == row]
    assert sorted((t.price, t.qty) for t in op.trades) == sorted(map(tuple, mine[:, 4:6].tolist()))
    assert sum(t.qty for t in op.trades) == op.record["filled"]
    # the check takes a decoded receipt too, and with the leaves at hand
    assert R.check_receipt(r, batch.statement) == report == batch.check(data, leaves=True)
    text = R.render(report, proof_verified=True)
    for phrase in (f"seq {seq}", "(verified)", "docs/MATCHING.md", "client_id", "cannot show",
                   "no other trade", "no other operation", f"trade 1 (slot {op.trades[1].slot})"):
        assert phrase in text, phrase
    assert "NOT verified" in R.render(report, proof_verified=False)


def test_lists_from_leaves_give_the_same_receipt(batch):
    seq = batch.seq_with_trades(3)
    assert R.make_receipt(batch.statement, batch.private, (batch.op_leaves, batch.trade_leaves), seqs=[seq]) \
        == batch.receipt(seqs=[seq])


def test_receipts_of_every_operation_check_whatever_others_were_made(batch):
    s = batch.statement
    seqs = [batch.seq_with_trades(t) for t in (0, 1, 2, 3, 4)] + [s.first_seq, s.last_seq]
    for seq in seqs:
        report = batch.check(batch.receipt(seqs=[seq]))
        assert [op.seq for op in report.operations] == [seq]
    report = batch.check(batch.receipt(seqs=seqs))
    assert [op.seq for op in report.operations] == sorted(set(seqs))


def test_a_rested_orders_receipt_shows_its_fills_as_maker(batch):
    """By seq, a new order that rested in this batch: the trades against its
    handle later in the batch come with it, marked as its own."""
    handles = R._assigned(batch.records)
    hit = [(h, s) for h, s in handles.items()
           if (batch.fields[:, 3] << 32 | batch.fields[:, 2] == h).any()]
    h, seq = hit[0]
    report = batch.check(batch.receipt(seqs=[seq]))
    assert report.maker_trades and all(t.maker_seq == seq and t.maker_handle == h for t in report.maker_trades)
    assert "the order of seq" in R.render(report, proof_verified=True)


def test_a_receipt_by_account(batch):
    """An account's operations, their trades as taker, and the trades against
    its orders: those it placed in the batch and, named, those resting in the
    pre-state book."""
    s, f = batch.statement, batch.fields
    maker_handle = f[:, 3] << 32 | f[:, 2]
    pre_orders = np.concatenate([batch.pre.orders(side) for side in (1, 2)])
    best = None
    for account in np.unique(batch.records["account"]):
        rows = np.flatnonzero(batch.records["account"] == account)
        resting = {int(h) for h in pre_orders["handle"][pre_orders["account"] == account]}
        own = set(R._assigned(batch.records[rows]))
        taker = np.isin(f[:, 0], rows)
        maker = ~taker & np.isin(maker_handle, list(own | resting))
        named = set(maker_handle[maker & np.isin(maker_handle, list(resting - own))].tolist())
        if taker.any() and named:
            best = (int(account), rows, resting, taker, maker, named)
            break
    account, rows, resting, taker, maker, named = best
    report = batch.check(batch.receipt(account=account, resting=sorted(resting)))
    assert [op.row for op in report.operations] == rows.tolist()
    assert sum(len(op.trades) for op in report.operations) == int(taker.sum())
    assert len(report.maker_trades) == int(maker.sum())
    assert set(report.handles) == named                     # only the resting handles that traded
    assert all(t.named for t in report.maker_trades if t.maker_handle in named)
    assert "names as its holder's order resting before the batch" in R.render(report, proof_verified=True)
    # without the resting handles, the trades against them are not in it
    assert len(batch.check(batch.receipt(account=account)).maker_trades) < int(maker.sum())


def test_requests_that_cannot_be_met(batch):
    s = batch.statement
    with pytest.raises(R.ReceiptRequestError, match=rf"seq {s.last_seq + 1} is not in batch 1 of symbol 7 "
                                                    rf"\(seqs {s.first_seq} \.\. {s.last_seq}\)"):
        batch.receipt(seqs=[s.last_seq + 1])
    absent = int(batch.records["account"].max()) + 1
    with pytest.raises(R.ReceiptRequestError, match=f"account {absent}: no operation in batch 1"):
        batch.receipt(account=absent)
    with pytest.raises(R.ReceiptRequestError, match="one of the two"):
        batch.receipt(seqs=[s.first_seq], account=1)
    with pytest.raises(R.ReceiptRequestError, match="one of the two"):
        batch.receipt()
    with pytest.raises(R.ReceiptRequestError, match="nonzero u64"):
        batch.receipt(seqs=[s.first_seq], resting=[0])
    # private data or lists of another batch are refused, not turned into a receipt that fails later
    other = Batch(batch_id=2)
    with pytest.raises(R.ReceiptRequestError, match="is not the one batch 1's statement names"):
        R.make_receipt(batch.statement, batch.private, other.lists, seqs=[s.first_seq])
    with pytest.raises(R.ReceiptRequestError, match="does not give the leaf batch 1 committed"):
        R.make_receipt(batch.statement, other.private, batch.lists, seqs=[s.first_seq])
    seq = batch.seq_with_trades(2)
    dropped = batch.private._replace(trades=batch.private.trades[batch.private.trades[:, 0] != seq - s.first_seq])
    with pytest.raises(R.ReceiptRequestError, match=f"the record of seq {seq} says 2 trades, the private trades "
                                                    f"hold 0 of it"):
        R.make_receipt(batch.statement, dropped._replace(trade_slots=batch.private.trade_slots[:len(dropped.trades)],
                                                          trade_salts=batch.private.trade_salts[:len(dropped.trades)]),
                       batch.lists, seqs=[seq])


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
    refused(batch, dataclasses.replace(r, operations=np.concatenate([r.operations, r.operations])),
            R.ReceiptRecordError, "row 0 appears twice")


@pytest.mark.parametrize("field", ["price", "qty", "maker_slot", "maker_gen", "number"])
def test_an_altered_trade(batch, field):
    seq = batch.seq_with_trades(3)
    r = editable(batch.receipt(seqs=[seq]))
    t = r.trades[1]
    t[field] = int(t[field]) + (1 if field != "number" else 0)
    if field == "number":                       # swap two numbers: both still in range, both present
        r.trades[0]["number"], r.trades[1]["number"] = int(r.trades[1]["number"]), int(r.trades[0]["number"])
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
    extra = editable(batch.receipt(seqs=[other])).trades
    taker_only = extra[extra["taker"] == other - batch.statement.first_seq][:1]
    added = np.concatenate([r.trades, taker_only])
    refused(batch, dataclasses.replace(r, trades=added), R.ReceiptTradeError,
            rf"trade at slot {int(taker_only[0]['slot'])} is not one of this receipt's: its taker, seq {other}")
    claimed = added.copy()
    claimed[-1]["taker"], claimed[-1]["number"] = seq - batch.statement.first_seq, 2
    refused(batch, dataclasses.replace(r, trades=claimed), R.ReceiptTradeError,
            f"is not one of operation {seq}'s: it made 2 trades, this one is numbered 2")
    claimed[-1]["number"] = 1
    refused(batch, dataclasses.replace(r, trades=claimed), R.ReceiptTradeError,
            f"is not one of operation {seq}'s: its trade 1 is at slot")


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
    refused(batch, dataclasses.replace(r, trades=np.concatenate([r.trades, dummy])), R.ReceiptTradeError,
            f"trade at slot {k} has quantity 0: not a trade")
    dummy["qty"] = 1
    refused(batch, dataclasses.replace(r, trades=np.concatenate([r.trades, dummy])), R.ReceiptTradeError,
            f"trade at slot {k} has price 0: not a trade")


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
        (data[:68] + (10 ** 6).to_bytes(4, "little") + data[72:], "op_count = 1000000 claims"),
        (data[:72] + (2 ** 32 - 1).to_bytes(4, "little") + data[76:], "trade_count = 4294967295 claims"),
        (data[:76] + (3).to_bytes(4, "little") + data[80:], "handle_count = 3 claims 24 bytes"),
        (data[:176 + 100] + b"\1" + data[176 + 101:], "operation entry 0: reserved is not zero"),
        ("a receipt", "a receipt is bytes"),
    ]
    for bad, message in cases:
        with pytest.raises(R.ReceiptFormatError, match=re.escape(message)):
            batch.check(bad)


def test_a_claimed_count_is_checked_before_anything_is_read():
    """A 176-byte header claiming 2^32 - 1 of everything, and nothing after
    it: refused by the length check alone."""
    h = np.zeros(1, RF.HEADER_DTYPE)
    h["magic"], h["version"], h["ops"], h["trace_length"] = RF.MAGIC, RF.VERSION, 1, 2
    h["op_count"] = h["trade_count"] = h["handle_count"] = 2 ** 32 - 1
    with pytest.raises(R.ReceiptFormatError, match="op_count = 4294967295 claims"):
        RF.decode_receipt(h.tobytes())


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
