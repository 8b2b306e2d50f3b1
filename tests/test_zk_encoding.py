"""The zk record lane's encodings (prover/orderbook/zk_encoding.py; docs/ZK.md,
section 3.3): the table, round trips, the domain's refusals, injectivity,
the pieces of every sub-field at every ops-domain length, the leaf digest
against the plain Poseidon2 definition, side leaves byte by byte."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.engine.records import MAX_PRICE, MAX_QTY, OP_DTYPE, ops
from zksidecar.prover import poseidon2_reference
from zksidecar.prover.field import P
from zksidecar.prover.orderbook import air
from zksidecar.prover.orderbook import zk_encoding as Z

FIELD_BITS = {name: OP_DTYPE.fields[name][0].itemsize * 8 for name in OP_DTYPE.names}


def _set_source(rec, source: str, value: int) -> None:
    """Set a sub-field source of one record (slot and gen are handle halves)."""
    if source in ("slot", "gen"):
        h = int(rec["handle"])
        lo, hi = h & 0xFFFFFFFF, h >> 32
        lo, hi = (value, hi) if source == "slot" else (lo, value)
        rec["handle"] = hi << 32 | lo
    else:
        rec[source] = value


def _get_source(rec, source: str) -> int:
    h = int(rec["handle"])
    return h & 0xFFFFFFFF if source == "slot" else h >> 32 if source == "gen" else int(rec[source])


def random_records(n: int, seed: int) -> np.ndarray:
    """Records spread over the whole domain: every field uniform over its bits."""
    rng = np.random.default_rng(seed)
    r = ops(n)
    for name in OP_DTYPE.names:
        r[name] = rng.integers(0, 1 << FIELD_BITS[name], n, dtype=np.uint64, endpoint=False) \
            if FIELD_BITS[name] < 64 else rng.integers(0, 1 << 63, n, dtype=np.uint64) * np.uint64(2) \
            + rng.integers(0, 2, n, dtype=np.uint64)
    for name, top in Z.SOURCE_MAX.items():
        r[name] = rng.integers(0, top + 1, n)
    return r


def extreme_records() -> np.ndarray:
    """For every sub-field, rows where it is 0, 1 and 2^w - 1 (its source's
    largest in-domain value where that is smaller) with every other field at
    0, and again with every other field at its largest value."""
    top = ops(1)[0]
    for name in OP_DTYPE.names:
        top[name] = Z.SOURCE_MAX.get(name, (1 << FIELD_BITS[name]) - 1)
    rows = []
    for base in (ops(1)[0], top):
        for sf in Z.OPERATION_LAYOUT:
            for v in (0, 1, (1 << sf.width) - 1):
                r = base.copy()
                src = _get_source(r, sf.source)
                src = src & ~(((1 << sf.width) - 1) << sf.lo) | v << sf.lo
                _set_source(r, sf.source, min(src, Z.SOURCE_MAX.get(sf.source, src)))
                rows.append(r)
    return np.array(rows, dtype=OP_DTYPE)


# ------------------------------------------------------------- the table --

def test_the_table_packs_every_element_below_2_30_least_significant_first():
    for e in range(Z.DATA_ELEMENTS):
        subs = [sf for sf in Z.OPERATION_LAYOUT if sf.element == e]
        assert subs and subs[0].offset == 0
        assert all(b.offset == a.offset + a.width for a, b in zip(subs, subs[1:]))
        assert Z.ELEMENT_WIDTHS[e] == subs[-1].offset + subs[-1].width <= Z.ELEMENT_BITS
    assert Z.ELEMENT_WIDTHS == (30, 30, 30, 30, 30, 30, 28, 23, 30, 30, 16, 16)
    assert 1 << Z.ELEMENT_BITS < P


def test_every_source_bit_is_in_exactly_one_sub_field():
    """The sub-fields of a source tile its bits: nothing lost, nothing twice
    (with every element's sub-fields disjoint, the encoding is injective)."""
    for source, bits in Z.SOURCE_BITS.items():
        covered = sorted(b for sf in Z.OPERATION_LAYOUT if sf.source == source
                         for b in range(sf.lo, sf.lo + sf.width))
        assert covered == list(range(bits)), source
    assert set(Z.SOURCE_BITS) - {"slot", "gen"} | {"handle"} == set(Z.LEAF_FIELDS)
    # the domain's narrower fields: their record fields are wider than their bits
    for name, top in Z.SOURCE_MAX.items():
        assert top < 1 << Z.SOURCE_BITS[name] <= 1 << FIELD_BITS[name]


def test_how_each_sub_field_is_exact():
    for sf in Z.OPERATION_LAYOUT:
        assert (sf.exact == "boolean") == (sf.width == 1), sf
    tuple_bound = {sf.source for sf in Z.OPERATION_LAYOUT if sf.exact == "tuple"}
    assert tuple_bound == {"status", "reason", "filled", "trades"}


def test_the_table_is_the_plain_definition():
    """Each sub-field alone at all ones lands, in operation_elements, at its
    element and offset, and nowhere else."""
    for sf in Z.OPERATION_LAYOUT:
        r = ops(1)[0]
        v = min((1 << sf.width) - 1, Z.SOURCE_MAX.get(sf.source, 1 << 64))
        _set_source(r, sf.source, v << sf.lo)
        want = [0] * Z.DATA_ELEMENTS
        want[sf.element] = v << sf.offset
        assert list(Z.operation_elements(r)) == want, sf.name


# ------------------------------------------------------------ round trips --

@pytest.mark.parametrize("records", [random_records(3000, 1), extreme_records()],
                         ids=["random", "extreme"])
def test_round_trip_and_arrays_equal_the_definition(records):
    e = Z.encode_operations(records)
    assert e.dtype == np.uint32 and e.shape == (len(records), 12)
    assert int(e.max()) < 1 << 30
    for i in range(0, len(records), max(1, len(records) // 400)):
        assert tuple(int(x) for x in e[i]) == Z.operation_elements(records[i]), i
    back = Z.decode_operations(e)
    for name in Z.LEAF_FIELDS:
        assert np.array_equal(back[name], records[name]), name
    for name in ("seq", "symbol", "client_id", "reserved"):
        assert not back[name].any()
    assert np.array_equal(Z.encode_operations(back), e)


def test_an_engine_batch_round_trips():
    recs = flow.generate(600, seed=3, capacity=1 << 10, params=flow.FlowParams(invalid=0.1))
    Book(1 << 10).process(recs)
    assert set(recs["status"]) > {1, 2} and recs["trades"].any()
    back = Z.decode_operations(Z.encode_operations(recs))
    for name in Z.LEAF_FIELDS:
        assert np.array_equal(back[name], recs[name]), name


def test_empty_arrays():
    assert Z.encode_operations(ops(0)).shape == (0, 12)
    assert len(Z.decode_operations(np.zeros((0, 12), np.uint32))) == 0
    assert Z.encode_trades(np.zeros((0, 6), np.uint64)).shape == (0, 12)


# ------------------------------------------------------------- the domain --

@pytest.mark.parametrize("name,value", [("status", 8), ("status", 255), ("reason", 16), ("reason", 255),
                                        ("filled", MAX_QTY + 1), ("filled", 2**32 - 1),
                                        ("trades", MAX_QTY + 1), ("trades", 2**32 - 1)])
def test_records_outside_the_domain_are_refused(name, value):
    records = random_records(5, 2)
    records[name][3] = value
    with pytest.raises(Z.EncodingError, match=rf"operation record 3: {name} = {value} is outside"):
        Z.encode_operations(records)
    with pytest.raises(Z.EncodingError, match=rf"{name} = {value} is outside"):
        Z.operation_elements(records[3])
    records[name][3] = Z.SOURCE_MAX[name]        # the largest value is in
    Z.encode_operations(records)


def test_wrong_arrays_are_refused():
    with pytest.raises(TypeError, match="OP_DTYPE"):
        Z.encode_operations(np.zeros(3, np.uint64))
    with pytest.raises(Z.EncodingError, match="price = 4294967296 does not fit"):
        Z.operation_elements(dict(zip(Z.LEAF_FIELDS, [0] * 12), price=1 << 32))
    with pytest.raises(TypeError, match=r"\(n, 12\)"):
        Z.decode_operations(np.zeros((3, 11), np.uint32))
    with pytest.raises(Z.EncodingError, match="negative"):
        Z.decode_operations(-np.ones((2, 12), np.int64))


@pytest.mark.parametrize("e", range(12))
def test_elements_that_are_no_encoding_are_refused(e):
    good = Z.encode_operations(random_records(4, 3)).astype(np.uint64)
    for bad in {1 << Z.ELEMENT_WIDTHS[e], P - 1, 2**32 - 1}:
        elements = good.copy()
        elements[2, e] = bad
        with pytest.raises(Z.EncodingError, match=rf"row 2: element e{e} = {bad} is not an operation"):
            Z.decode_operations(elements)


@pytest.mark.parametrize("e,name", [(8, "filled"), (9, "trades")])
def test_counts_above_max_qty_do_not_decode(e, name):
    elements = Z.encode_operations(random_records(3, 4))
    elements[1, e] = MAX_QTY + 1
    with pytest.raises(Z.EncodingError, match=rf"row 1: {name} = {MAX_QTY + 1} in e{e}"):
        Z.decode_operations(elements)


# ----------------------------------------------------------- injectivity --

def test_every_record_bit_moves_exactly_one_element_bit_and_no_two_alike():
    """The encoding is bitwise: flipping one bit of one field flips one bit
    of one element, a different one for every (field, bit).  So two records
    of the domain that differ anywhere encode differently."""
    base = ops(1)
    seen = {}
    e0 = Z.encode_operations(base)[0].astype(np.uint64)
    for source, bits in Z.SOURCE_BITS.items():
        for b in range(bits):
            r = base.copy()
            _set_source(r[0], source, 1 << b)
            diff = Z.encode_operations(r)[0].astype(np.uint64) ^ e0
            (where,) = np.flatnonzero(diff)
            value = int(diff[where])
            assert value & (value - 1) == 0, (source, b)
            seen[(int(where), value.bit_length() - 1)] = (source, b)
    assert len(seen) == sum(Z.SOURCE_BITS.values())
    # and the encoding is that linear map on whole records
    a, c = random_records(200, 5), random_records(200, 6)
    for r in (a, c):                       # so that a ^ c stays in the domain
        for name in ("filled", "trades"):
            r[name] &= (1 << 29) - 1
    lhs = Z.encode_operations(a) ^ Z.encode_operations(c)
    x = ops(200)
    for name in Z.LEAF_FIELDS:
        x[name] = a[name] ^ c[name]
    rhs = Z.encode_operations(x)
    assert np.array_equal(lhs, rhs)


def test_fields_sharing_an_element_never_trade_bits():
    """Review finding 2a's lie: LIMIT/BUY (kind 1, side 1) and kind 0 with
    side 257 would share e7 if side were not a byte; and finding 2b's: flags
    with a 17th bit would reach e6's neighbour.  Neither is a record."""
    r = ops(2)
    r["kind"], r["side"] = (1, 0), (1, 255)
    e7 = Z.encode_operations(r)[:, 7]
    assert e7[0] == 1 << 8 | 1 and e7[1] == 255
    assert Z.decode_operations(Z.encode_operations(r))["kind"].tolist() == [1, 0]
    # every pair of different (side, kind, reason, status) encodes apart
    s, k, rs, st = np.meshgrid(np.arange(256), np.arange(0, 256, 51), np.arange(16), np.arange(8),
                               indexing="ij")
    many = ops(s.size)
    many["side"], many["kind"], many["reason"], many["status"] = s.ravel(), k.ravel(), rs.ravel(), st.ravel()
    assert len(np.unique(Z.encode_operations(many)[:, 7])) == s.size
    f = ops(1 << 16)
    f["flags"] = np.arange(1 << 16)
    f["handle"] = np.uint64(3 << 62)      # generation bits 30, 31: e6's bits 10, 11
    e6 = Z.encode_operations(f)[:, 6]
    assert len(np.unique(e6)) == 1 << 16 and np.all(e6 >> 10 & 3 == 3)


# ------------------------------------------------------------ trade leaves --

def _engine_trades():
    recs = flow.generate(800, seed=7, capacity=1 << 10)
    trades = Book(1 << 10).process(recs)
    assert len(trades) > 20
    return recs, trades


def test_trade_leaves_from_an_engine_batch():
    recs, trades = _engine_trades()
    rows = air.public_tables(recs, trades, 1 << 10, 1)[2]
    fields = rows[:, 1:7]
    e = Z.encode_trades(fields)
    assert not e[:, 6:].any()
    for k in range(len(trades)):
        assert tuple(e[k]) == Z.trade_elements(*(int(x) for x in fields[k]))
    assert np.array_equal(e[:, 4], trades["price"]) and np.array_equal(e[:, 5], trades["qty"])
    assert np.array_equal(e[:, 0], trades["taker_seq"] - 1)
    # distinct per trade: (i, tn) is
    assert len(np.unique(e[:, :2], axis=0)) == len(trades)


@pytest.mark.parametrize("j,value", [(0, 1 << 30), (1, 1 << 30), (2, 1 << 30), (3, 1 << 30),
                                     (4, 0), (4, MAX_PRICE + 1), (5, 0), (5, MAX_QTY + 1)])
def test_trades_outside_the_domain_are_refused(j, value):
    fields = np.array([[3, 1, 5, 2, 100, 7]] * 3, dtype=np.uint64)
    fields[2, j] = value
    name = ("i", "tn", "slot", "gen", "price", "qty")[j]
    with pytest.raises(Z.EncodingError, match=rf"trade 2: {name} = {value} is outside"):
        Z.encode_trades(fields)
    with pytest.raises(Z.EncodingError, match=rf"trade: {name} = {value} is outside"):
        Z.trade_elements(*(int(x) for x in fields[2]))


def test_a_dummy_is_zeros_and_no_trade():
    d = Z.dummy_elements(5)
    assert d.shape == (5, 12) and not d.any()
    with pytest.raises(Z.EncodingError, match="price = 0"):
        Z.encode_trades(d[:, :6])


# ------------------------------------------------------------ the digests --

def test_leaf_digests_against_the_plain_poseidon2():
    recs, trades = _engine_trades()
    data = np.concatenate([Z.encode_operations(recs[:4]), Z.encode_operations(extreme_records()[-3:]),
                           Z.encode_trades(air.public_tables(recs, trades, 1 << 10, 1)[2][:3, 1:7]),
                           Z.dummy_elements(2)])
    salts = np.array([[(17 * i + k) * 99991 % P for k in range(4)] for i in range(len(data))], np.uint32)
    salts[0] = P - 1
    got = Z.leaf_digests(salts, data)
    assert got.shape == (len(data), 8) and got.dtype == np.uint32
    for i in range(len(data)):
        x = [int(v) for v in salts[i]] + [int(v) for v in data[i]]
        assert got[i].tolist() == poseidon2_reference.leaf(x), i
    assert np.array_equal(Z.leaf_inputs(salts, data)[:, 4:], data)
    # the two dummies differ by their salts alone
    assert not np.array_equal(got[-1], got[-2])


def test_salts_and_data_not_below_p_are_refused():
    data = Z.dummy_elements(3)
    salts = np.zeros((3, 4), np.uint32)
    salts[1, 2] = P
    with pytest.raises(Z.EncodingError, match=rf"leaf 1: salt 2 = {P} is not a field element"):
        Z.leaf_digests(salts, data)
    data[2, 5] = 2**32 - 1
    with pytest.raises(Z.EncodingError, match="leaf 2: data element 5"):
        Z.leaf_inputs(np.zeros((3, 4), np.uint32), data)
    with pytest.raises(ValueError, match="2 salts for 3 leaves"):
        Z.leaf_inputs(np.zeros((2, 4), np.uint32), data)
    # a wider integer is checked before it is narrowed: 2^32 + 1 is not read as 1
    wide = np.zeros((3, 4), np.uint64)
    wide[2, 0] = 2**32 + 1
    with pytest.raises(Z.EncodingError, match=f"leaf 2: salt 0 = {2**32 + 1} is not a field element"):
        Z.leaf_inputs(wide, Z.dummy_elements(3))
    with pytest.raises(Z.EncodingError, match="row 1 of the salts: a negative value"):
        Z.leaf_inputs(np.array([[0, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 0]], np.int64), Z.dummy_elements(3))


def test_side_leaves_are_the_bytes_the_design_names():
    recs = random_records(40, 8)
    salts = np.random.default_rng(9).integers(0, 256, (40, 16), dtype=np.uint8)
    got = Z.side_leaves(recs, salts, first_row=1000)
    raw = recs.tobytes()
    for k in range(40):
        rec = raw[64 * k: 64 * k + 64]
        # client_id and reserved as the record carries them (bytes 24-31, 62-63)
        want = hashlib.sha256(b"\x02" + b"zksidecar-side" + (1000 + k).to_bytes(4, "little")
                              + salts[k].tobytes() + rec[24:32] + rec[62:64]).digest()
        assert got[k].tobytes() == want == Z.side_leaf(1000 + k, salts[k].tobytes(),
                                                       int(recs[k]["client_id"]), int(recs[k]["reserved"]))
    with pytest.raises(Z.EncodingError, match="16 bytes"):
        Z.side_leaf(0, b"short", 0, 0)
    with pytest.raises(TypeError, match=r"\(40, 16\) uint8"):
        Z.side_leaves(recs, salts[:, :8])


# ------------------------------------------------------------ the pieces --

def _admitted(piece: Z.Piece, t: int) -> np.ndarray:
    """Every field element a piece's checks admit.  With a plain lookup
    (shift 0) among them, only [0, 2^t) can pass, so those are all tried;
    a boolean piece admits what b(b - 1) = 0 admits, {0, 1}."""
    if piece.boolean:
        return np.array([0, 1])
    assert piece.shifts[0] == 0
    x = np.arange(1 << t, dtype=np.int64)
    ok = np.ones(x.size, dtype=bool)
    for s in piece.shifts:
        ok &= (x + s) % P < 1 << t
    return x[ok]


LENGTHS = range(air.MIN_ROWS.bit_length() - 1, air.MAX_LOG_OPS + 1)


def test_pieces_at_2_15_are_the_designs_table():
    lay = Z.lane_layout(1 << 15)
    by = {sf.name: p for sf, p in lay.subfields}
    for name in ("ts_ns[0:15]", "ts_ns[45:60]", "price[15:30]", "slot[0:15]", "gen[15:30]", "account[16:31]"):
        assert by[name] == (Z.Piece(0, 15, (0,)),)
    assert by["flags[2:16]"] == (Z.Piece(0, 14, (0, (1 << 15) - (1 << 14))),)
    assert by["side[0:8]"] == by["kind[0:8]"] == (Z.Piece(0, 8, (0, (1 << 15) - (1 << 8))),)
    assert by["filled[0:30]"] == by["status[0:3]"] == ()
    # docs/ZK.md 4.1: 12 limbs, 14 + 2 booleans, fh, kind, side, a0, a1 (33
    # columns); the limbs, fh (2), kind (2), side (2), a0 and a1: 20 lookups
    assert (lay.range_columns, lay.boolean_columns, lay.lookups) == (17, 16, 20)


@pytest.mark.parametrize("t", LENGTHS)
def test_every_sub_field_decodes_exactly_from_its_pieces(t):
    """At every ops-domain length from 2^4 to 2^20: the pieces tile the
    sub-field; each piece's checks admit exactly [0, 2^u); so the pieces
    passing their checks are exactly the sub-field's values below 2^w, each
    from one assignment: 0, 1, 2^w - 1 decode, 2^w and 2^30 - 1 do not."""
    lay = Z.lane_layout(1 << t)
    assert lay.log_rows == t
    cache = {}
    for sf, pieces in lay.subfields:
        if sf.exact == "tuple":
            assert pieces == ()
            continue
        assert [p.lo for p in pieces] == [sum(q.width for q in pieces[:j]) for j in range(len(pieces))]
        assert sum(p.width for p in pieces) == sf.width
        for p in pieces:
            assert p.width <= t and (len(p.shifts) == 1) == (p.width == t) and p.boolean == (p.width == 1)
            key = (p.width, p.shifts)
            if key not in cache:
                cache[key] = _admitted(p, t)
            assert np.array_equal(cache[key], np.arange(1 << p.width)), (sf.name, p)
        sp = Z.SubFieldPieces(sf, pieces)
        for v in (0, 1, (1 << sf.width) - 1):
            parts = sp.split(v)
            assert sp.join(parts) == v
            assert all(0 <= x < 1 << p.width for x, p in zip(parts, pieces))
        # the largest the pieces can hold is 2^w - 1
        assert sp.join([(1 << p.width) - 1 for p in pieces]) == (1 << sf.width) - 1
        for v in (1 << sf.width, (1 << 30) - 1):
            if v >= 1 << sf.width:
                assert sp.join(sp.split(v)) != v


def test_the_scaled_second_lookup_would_not_be_exact_at_2_20():
    """Why the second lookup is shifted: scaled by 2^(t - u), as air.py's top
    limbs are, a byte at 2^20 is admitted at 768 values, not 256."""
    t, u = 20, 8
    x = np.arange(1 << t, dtype=np.int64)
    assert int(((x << (t - u)) % P < 1 << t).sum()) == 768
    (piece,) = Z.pieces_for(u, t, "range")
    assert len(_admitted(piece, t)) == 256


def test_the_layout_grows_as_the_rule_says():
    """Below 2^15 the 15-bit limbs split (at 2^11: 11 + 4 bits, one lookup and
    two); above it every limb is narrower than t, two lookups."""
    at11, at16 = Z.lane_layout(1 << 11), Z.lane_layout(1 << 16)
    assert (at11.range_columns, at11.lookups) == (32, 49)
    assert (at16.range_columns, at16.lookups) == (17, 34)
    assert Z.lane_layout(1 << 16) is at16             # computed once per length


@pytest.mark.parametrize("bad", [0, 1, 3, 48, 1 << 30, -16, 16.0, True])
def test_a_layout_needs_a_power_of_two(bad):
    with pytest.raises(ValueError, match="power of two"):
        Z.lane_layout(bad)
