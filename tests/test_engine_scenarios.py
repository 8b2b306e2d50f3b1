"""Hand-written scenarios: every order kind and edge case of docs/MATCHING.md,
each with the trades it must produce."""
from __future__ import annotations

import numpy as np
import pytest

from zksidecar.engine import invariants, records
from zksidecar.engine.book import Book, CorruptState, StreamError
from zksidecar.engine.native import lib
from zksidecar.engine.records import MAX_PRICE, MAX_QTY, Kind, Reason, Side, Status

BUY, SELL = Side.BUY, Side.SELL
# a rejection changes no cell but the next sequence number
SEQ_CELLS = {lib.ZK_HDR_NEXT_SEQ_LO, lib.ZK_HDR_NEXT_SEQ_HI}


def fills(outcome):
    """(maker handle, price, qty) of each trade."""
    return outcome.trades[["maker_handle", "price", "qty"]].tolist()


def rest(book, side, price, qty, account=0):
    out = book.submit(Kind.LIMIT, side, price, qty, account=account)
    assert out.status == Status.RESTED and out.filled == 0
    return out.handle


@pytest.fixture
def book():
    yield (b := Book(16))
    invariants.check(b.cells)


def test_price_then_time_priority_at_the_makers_price(book):
    a = rest(book, SELL, 100, 5)
    b = rest(book, SELL, 100, 5)
    c = rest(book, SELL, 99, 5)
    out = book.submit(Kind.LIMIT, BUY, 101, 12)
    assert (out.status, out.filled, out.handle) == (Status.FILLED, 12, 0)
    assert fills(out) == [(c, 99, 5), (a, 100, 5), (b, 100, 2)]
    assert book.orders(SELL)[["handle", "qty"]].tolist() == [(b, 3)]


def test_limit_remainder_rests_and_trades_name_its_handle(book):
    m = rest(book, SELL, 100, 4, account=7)
    out = book.submit(Kind.LIMIT, BUY, 100, 10, account=8)
    assert (out.status, out.filled) == (Status.RESTED, 4)
    t = out.trades[0]
    assert (t["maker_handle"], t["taker_handle"], t["maker_account"], t["taker_account"],
            t["taker_side"], t["taker_seq"]) == (m, out.handle, 7, 8, BUY, out.seq)
    assert book.orders(BUY)[["handle", "price", "qty"]].tolist() == [(out.handle, 100, 6)]
    assert book.best(BUY) == 100 and book.best(SELL) is None


def test_ioc_drops_its_remainder(book):
    m = rest(book, BUY, 50, 3)
    out = book.submit(Kind.IOC, SELL, 49, 10)
    assert (out.status, out.filled, out.handle, fills(out)) == (Status.EXPIRED, 3, 0, [(m, 50, 3)])
    assert len(book) == 0


def test_ioc_that_does_not_cross_changes_nothing(book):
    rest(book, BUY, 50, 3)
    before = book.digest()
    out = book.submit(Kind.IOC, SELL, 51, 10)
    assert (out.status, out.reason, out.filled, len(out.trades)) == (Status.EXPIRED, Reason.NONE, 0, 0)
    assert book.digest() == before


def test_market_sweeps_levels_and_ignores_price(book):
    a, b = rest(book, SELL, 10, 1), rest(book, SELL, 1000, 1)
    out = book.submit(Kind.MARKET, BUY, 0, 5)
    assert (out.status, out.filled, fills(out)) == (Status.EXPIRED, 2, [(a, 10, 1), (b, 1000, 1)])
    assert book.submit(Kind.MARKET, SELL, 0, 5).status == Status.EXPIRED  # empty book


def test_fok_fills_completely_or_changes_nothing(book):
    a = rest(book, SELL, 100, 5)
    b = rest(book, SELL, 101, 5)
    before = book.cells.copy()
    out = book.submit(Kind.FOK, BUY, 100, 6)  # only 5 lots at or below 100
    assert (out.status, out.reason, out.filled) == (Status.REJECTED, Reason.FOK_UNFILLABLE, 0)
    assert set(np.flatnonzero(before != book.cells)) <= SEQ_CELLS
    out = book.submit(Kind.FOK, BUY, 101, 10)
    assert (out.status, fills(out)) == (Status.FILLED, [(a, 100, 5), (b, 101, 5)])


def test_post_only_rejects_what_would_cross_including_equal_prices(book):
    rest(book, SELL, 100, 5)
    out = book.submit(Kind.POST_ONLY, BUY, 100, 1)
    assert (out.status, out.reason) == (Status.REJECTED, Reason.WOULD_CROSS)
    out = book.submit(Kind.POST_ONLY, BUY, 99, 1)
    assert out.status == Status.RESTED and out.handle


def test_cancel_and_stale_or_unknown_handles(book):
    h = rest(book, BUY, 10, 1)
    assert h == 1  # slot 1, generation 0
    assert book.submit(Kind.CANCEL, handle=h).status == Status.CANCELLED
    assert book.submit(Kind.CANCEL, handle=h).reason == Reason.STALE_HANDLE
    h2 = rest(book, BUY, 10, 1)
    assert h2 == (1 << 32) | 1  # the slot is reused under the next generation
    assert book.submit(Kind.REDUCE, 0, 0, 1, handle=h).reason == Reason.STALE_HANDLE
    for bad in (0, 16, 1 << 31, (1 << 62) | 1):
        out = book.submit(Kind.CANCEL, handle=bad)
        assert (out.status, out.reason) == (Status.REJECTED, Reason.UNKNOWN_HANDLE), bad
    assert book.submit(Kind.CANCEL, handle=(5 << 32) | 2).reason == Reason.STALE_HANDLE  # never issued


def test_reduce_keeps_priority_and_reduce_to_zero_cancels(book):
    a = rest(book, SELL, 100, 5)
    b = rest(book, SELL, 100, 5)
    out = book.submit(Kind.REDUCE, 0, 0, 3, handle=a)
    assert out.status == Status.REDUCED
    assert fills(book.submit(Kind.IOC, BUY, 100, 3)) == [(a, 100, 2), (b, 100, 1)]
    assert book.submit(Kind.REDUCE, 0, 0, 4, handle=b).status == Status.CANCELLED
    assert len(book) == 0
    assert book.submit(Kind.REDUCE, 0, 0, 0, handle=b).reason == Reason.BAD_QTY


def test_equal_prices_queue_behind_in_the_middle_of_a_book(book):
    h = [rest(book, BUY, p, 1) for p in (10, 12, 11, 12, 11, 9, 11)]
    assert book.orders(BUY)[["handle", "price"]].tolist() == [
        (h[1], 12), (h[3], 12), (h[2], 11), (h[4], 11), (h[6], 11), (h[0], 10), (h[5], 9)]
    book.submit(Kind.CANCEL, handle=h[4])
    book.submit(Kind.CANCEL, handle=h[1])
    late = rest(book, BUY, 11, 1)
    assert [x[0] for x in book.orders(BUY)[["handle"]].tolist()] == [h[3], h[2], h[6], late, h[0], h[5]]


def test_full_book(book):
    small = Book(4)  # slot 0 is null: three orders fit
    for p in (10, 11, 12):
        rest(small, BUY, p, 1)
    out = small.submit(Kind.LIMIT, BUY, 9, 1)
    assert (out.status, out.reason) == (Status.REJECTED, Reason.BOOK_FULL)
    assert small.submit(Kind.POST_ONLY, SELL, 20, 1).reason == Reason.BOOK_FULL
    out = small.submit(Kind.LIMIT, SELL, 12, 2)  # takes the 12, frees its slot, rests
    assert (out.status, out.filled) == (Status.RESTED, 1)
    assert small.submit(Kind.IOC, SELL, 1, 1).status == Status.FILLED
    invariants.check(small.cells)


@pytest.mark.parametrize("kind, side, price, qty, reason", [
    (Kind.LIMIT, BUY, 10, 0, Reason.BAD_QTY),
    (Kind.LIMIT, BUY, 10, MAX_QTY + 1, Reason.BAD_QTY),
    (Kind.LIMIT, BUY, 0, 1, Reason.BAD_PRICE),
    (Kind.IOC, SELL, MAX_PRICE + 1, 1, Reason.BAD_PRICE),
    (Kind.LIMIT, 0, 10, 1, Reason.BAD_SIDE),
    (Kind.FOK, 3, 10, 1, Reason.BAD_SIDE),
    (0, BUY, 10, 1, Reason.BAD_KIND),
    (8, BUY, 10, 1, Reason.BAD_KIND),
])
def test_malformed_orders_are_rejected_with_a_reason(book, kind, side, price, qty, reason):
    before = book.cells.copy()
    out = book.submit(kind, side, price, qty)
    assert (out.status, out.reason) == (Status.REJECTED, reason)
    assert set(np.flatnonzero(before != book.cells)) <= SEQ_CELLS


def test_limits_are_inclusive(book):
    rest(book, SELL, MAX_PRICE, MAX_QTY)
    out = book.submit(Kind.MARKET, BUY, 0, MAX_QTY)
    assert (out.status, out.filled) == (Status.FILLED, MAX_QTY)


def test_unknown_flags_are_rejected(book):
    ops = records.ops(1)
    ops[0] = (1, 0, 0, 0, 10, 1, 0, 0, Kind.LIMIT, BUY, 4, 0, 0, 0, 0, 0)
    book.process(ops)
    assert (ops["status"][0], ops["reason"][0]) == (Status.REJECTED, Reason.BAD_FLAGS)
    assert ops["flags"][0] == 4 | records.FLAG_CLAIMED


def test_self_trade_is_allowed(book):
    m = rest(book, SELL, 100, 1, account=5)
    out = book.submit(Kind.LIMIT, BUY, 100, 1, account=5)
    assert fills(out) == [(m, 100, 1)]


def test_stream_errors_change_nothing(book):
    rest(book, BUY, 10, 1)
    before = book.cells.copy()
    for field, value, words in (("seq", 5, "sequence number"), ("ts_ns", 0, "timestamp"),
                                ("symbol", 3, "symbol")):
        ops = records.ops(2)
        ops["seq"] = [2, 3]
        ops["ts_ns"] = [10, 10]
        ops["kind"], ops["side"], ops["price"], ops["qty"] = Kind.LIMIT, BUY, 10, 1
        ops[field][1] = value
        with pytest.raises(StreamError, match=words) as err:
            book.process(ops)
        assert err.value.index == 1
        assert np.array_equal(book.cells, before) and not ops["status"].any()
    with pytest.raises(TypeError):
        book.process(np.zeros(3, dtype=np.uint64))
    with pytest.raises(StreamError):
        book.submit(Kind.LIMIT, BUY, 10, 1, ts_ns=5)
        book.submit(Kind.LIMIT, BUY, 10, 1, ts_ns=4)


def test_batch_grows_its_trade_buffer_and_matches_per_order():
    ops = records.ops(200)
    ops["seq"] = np.arange(1, 201)
    ops["kind"] = Kind.LIMIT
    ops["side"] = np.where(np.arange(200) % 2, SELL, BUY)
    ops["price"], ops["qty"] = 10, 1
    batch, one = Book(8), Book(8)
    trades = batch.process(ops)
    assert len(trades) == 100
    singles = [one.submit(Kind.LIMIT, s, 10, 1).trades for s in ops["side"]]
    assert np.array_equal(np.concatenate(singles), trades)
    assert np.array_equal(batch.cells, one.cells)


def test_snapshot_restore_and_corrupt_snapshots(book):
    for p in (10, 11, 12):
        rest(book, BUY, p, 2)
    rest(book, SELL, 20, 2)
    book.submit(Kind.CANCEL, handle=2)
    copy = Book.restore(book.snapshot())
    assert np.array_equal(copy.cells, book.cells)
    late = rest(copy, BUY, 11, 1)
    assert late == rest(book, BUY, 11, 1)  # the index was rebuilt: same placement
    assert copy.digest() == book.digest()
    snap = book.snapshot()
    with pytest.raises(CorruptState, match="magic"):
        Book.restore(b"x" + snap[1:])
    with pytest.raises(CorruptState, match="version"):
        Book.restore(snap[:8] + b"\x09" + snap[9:])
    with pytest.raises(CorruptState):
        Book.restore(snap[:-4])
    cells = book.cells.copy()
    cells[16 + 5 * 16 + 1] = 3  # a `next` link that skips an order
    bad = snap[:16] + cells.astype("<u4").tobytes()
    with pytest.raises(CorruptState):
        Book.restore(bad)


def test_digest_ignores_how_the_book_was_reached():
    a, b = Book(16), Book(16)
    rest(a, BUY, 10, 1, account=1)
    rest(a, SELL, 12, 2, account=2)
    tmp = rest(b, SELL, 30, 9)
    rest(b, BUY, 10, 1, account=1)
    b.submit(Kind.CANCEL, handle=tmp)
    rest(b, SELL, 12, 2, account=2)
    assert not np.array_equal(a.cells, b.cells)
    assert a.digest() == b.digest()
    rest(b, SELL, 12, 1)
    assert a.digest() != b.digest()


def test_bad_construction():
    for cap in (0, 1, 3, 1 << 25):
        with pytest.raises(ValueError):
            Book(cap)
