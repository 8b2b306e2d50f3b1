"""The record lane's witness (docs/ZK.md, section 3.4; zk_air.py's segment
``lane``): the operation, trade and dummy leaves, their salts and order,
the Poseidon2 registers, the side leaves.

Everything random comes from the batch key kappa_b (zk_chain.ZkChain.batch_key;
docs/ZK_KEYS.md, "A batch's lane"):

    leaf salts    zk_keys.field_elements(kappa_b, ["leaf-salts"], 4 T):
                  row r's salt is elements 4r .. 4r + 3 (every lane row,
                  the last included)
    side salts    zk_keys.expand(kappa_b, ["side-salts"], 16 ops): operation
                  i's is bytes 16i .. 16i + 15
    trade order   zk_keys.expand(kappa_b, ["trade-order"], 8 (T - 1 - ops)):
                  one u64 per trade slot; the slots sorted by it (stable)
                  give the order in which the trades, then the dummies, sit
                  on rows ops .. T - 2 (`order[j]`: slot j holds trade
                  order[j] if that is below the trade count, else a dummy)
    blinding      zk_keys.field_elements(kappa_b, ["blinding"], ...): the
                  tuple's entries x are elements 0 .. 7, its multiplicity
                  rho the first nonzero element from 8 on (zk_air.py,
                  "The blinding tuple"; on row 0 of the lane and of the
                  `book` domain's stamp)

so a receipt's maker re-derives a record's salt, side salt and a trade's
slot from kappa_b alone.  The registers are the C kernel's
(poseidon2.air_registers, written straight into their columns); the rest
is laid out column by column into the row-major Montgomery matrix the
prover commits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import field as F
from .. import array_pool, poseidon2, zk_keys
from ..native import ffi, lib, u32p
from .air import check_canonical, exec_columns, trade_table
from .zk_air import BLIND_COLUMNS, BLIND_ENTRIES, LANE_COLUMNS, P2, RECORD_INPUTS, TYPES
from .zk_encoding import (DATA_ELEMENTS, LEAF_ELEMENTS, SALT_ELEMENTS, SIDE_SALT_BYTES, TRADE_ELEMENTS,
                          encode_operations, encode_trades, leaf_digests, side_leaves)
from .zk_lists import root_of
from .zk_record_checks import RecordChecks


class LaneFull(ValueError):
    """A batch whose operations and trades do not fit its lane (ops +
    trades + 1 <= T): the message says by how much."""


@dataclass
class LaneRandomness:
    """A batch's lane randomness, from its batch key (module docstring)."""

    salts: np.ndarray           # (T, 4) canonical uint32
    side_salts: np.ndarray      # (ops, 16) uint8
    order: np.ndarray           # (T - 1 - ops,) int64: slot j's item
    blinding: np.ndarray        # (9,) canonical uint32: rho (nonzero), then x

    @classmethod
    def derive(cls, batch_key: bytes, n_ops: int, trace_length: int) -> "LaneRandomness":
        slots = trace_length - 1 - n_ops
        if slots < 0:
            raise LaneFull(f"{n_ops} operations do not fit a lane of {trace_length} rows")
        salts = zk_keys.field_elements(batch_key, ["leaf-salts"], SALT_ELEMENTS * trace_length)
        side = zk_keys.expand_array(batch_key, ["side-salts"], SIDE_SALT_BYTES * n_ops).reshape(n_ops, SIDE_SALT_BYTES)
        keys = zk_keys.expand_array(batch_key, ["trade-order"], 8 * slots).view("<u8")
        return cls(salts.reshape(trace_length, SALT_ELEMENTS), side, stable_order(keys), blinding(batch_key))


def stable_order(keys: np.ndarray) -> np.ndarray:
    """np.argsort(keys, kind="stable"): the indices that sort `keys`, equal
    keys in index order.  Random 64-bit keys are all distinct but with
    probability ~n^2 / 2^65, and for distinct keys every sort gives the
    one sorting permutation, so the (several times faster) unstable sort is
    taken and checked for ties: only then is the stable sort run."""
    order = np.argsort(keys)
    ranked = keys[order]
    if len(keys) > 1 and (ranked[1:] == ranked[:-1]).any():
        return np.argsort(keys, kind="stable")
    return order


def blinding(batch_key: bytes) -> np.ndarray:
    """The blinding tuple's values (zk_air.BLIND_COLUMNS' order), ``(9,)``
    canonical uint32: rho, exactly uniform on the nonzero elements (the
    first nonzero one of the stream from element 8 on: a zero rho would
    leave the claims unblinded), then x, 8 exactly uniform elements
    (elements 0 .. 7)."""
    count = BLIND_ENTRIES + 1
    while True:                 # a second round with probability 1/p
        e = zk_keys.field_elements(batch_key, ["blinding"], count)
        nonzero = np.flatnonzero(e[BLIND_ENTRIES:])
        if len(nonzero):
            return np.concatenate([e[BLIND_ENTRIES + nonzero[:1]], e[:BLIND_ENTRIES]])
        count += 1


def blinding_rows(values: np.ndarray, rows: int) -> np.ndarray:
    """The blinding columns of a domain of `rows` rows (``(rows, 9)``
    Montgomery): `values` (LaneRandomness.blinding) on row 0, 0 elsewhere.
    The lane and the `book` domain's stamp hold the same."""
    out = np.zeros((rows, len(BLIND_COLUMNS)), dtype=np.uint32)
    out[0] = F.encode(np.asarray(values, dtype=np.int64))
    return out


def trade_fields(ops: np.ndarray, trades: np.ndarray, capacity: int, first_seq: int,
                 classified: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Each trade's six leaf fields (i, tn, maker slot, maker generation,
    price, qty), ``(m, 6)`` int64: entries 1 .. 6 of air.public_tables's
    trade rows (the taker's index, the trade's number within its operation),
    the records checked as public_tables checks them (ValueError), its op
    and outcome tables not built.  `classified`: classify_all of `ops`,
    when the caller has it."""
    if not len(trades):
        return np.zeros((0, TRADE_ELEMENTS), dtype=np.int64)
    check_canonical(ops, trades, capacity, first_seq, classified)
    return trade_table(trades, first_seq)[:, 1:1 + TRADE_ELEMENTS].astype(np.int64)


@dataclass
class Lane:
    """A batch's lane: the segment's matrix (T x width, Montgomery), the
    `book` domain's records segment (S x width, Montgomery: zk_air.py's
    RECORD_INPUTS, then the record-check block's columns), the published
    leaves (T - 1 x 8, canonical: operation leaves first, then the trade
    and dummy leaves in their slots), the side leaves and their root, and
    how often the record-check block looks up each value of the range
    table [0, T)."""

    matrix: np.ndarray
    records: np.ndarray
    leaves: np.ndarray
    side_leaves: np.ndarray
    side_root: bytes
    range_counts: np.ndarray
    #: the blinding tuple's values (LaneRandomness.blinding), which the
    #: `book` domain's stamp holds too
    blinding: np.ndarray


def lane_data(ops: np.ndarray, fields: np.ndarray, order: np.ndarray, trace_length: int) -> tuple[np.ndarray, np.ndarray]:
    """The data elements (``(T, 12)`` uint32) and row types (``(T, 3)``: lo,
    lt, ld) of a lane: operation i on row i, slot j's trade (order[j] <
    trades) or dummy on row ops + j, the last row none.  LaneFull when the
    trades do not fit the slots; EncodingError for a record outside the
    encoding's domain."""
    return place_elements(encode_operations(ops), encode_trades(fields), order, trace_length)


def place_elements(op_elements: np.ndarray, trade_elements: np.ndarray, order: np.ndarray,
                   trace_length: int) -> tuple[np.ndarray, np.ndarray]:
    """lane_data of the operations' and trades' data elements as given
    (encode_operations', encode_trades', or a test's lying prover's)."""
    n, m, t = len(op_elements), len(trade_elements), trace_length
    slots = t - 1 - n
    if m > slots:
        raise LaneFull(f"{n} operations and {m} trades do not fit a lane of {t} rows (ops + trades + 1 "
                       f"<= {t}: {n + m + 1 - t} too many)")
    data = np.zeros((t, DATA_ELEMENTS), dtype=np.uint32)
    types = np.zeros((t, len(TYPES)), dtype=np.uint32)
    data[:n] = op_elements
    types[:n, 0] = 1
    real = order < m
    rows = n + np.flatnonzero(real)
    data[rows] = trade_elements[order[real]]
    types[rows, 1] = 1
    types[n + np.flatnonzero(~real), 2] = 1
    return data, types


def published_leaves(ops: np.ndarray, trades: np.ndarray, batch_key: bytes, capacity: int, first_seq: int,
                     trace_length: int) -> tuple[LaneRandomness, np.ndarray, np.ndarray]:
    """(randomness, trade fields, published leaves ``(T - 1, 8)`` canonical)
    of a batch from its records with outcomes, its trades and kappa_b,
    without building the lane: what a proof's leaves are compared with by
    the daemon checking a job's proof and by a receipt's maker.
    EncodingError for a record outside the encoding's domain, LaneFull."""
    rand = LaneRandomness.derive(batch_key, len(ops), trace_length)
    fields = trade_fields(ops, trades, capacity, first_seq)
    data, _ = lane_data(ops, fields, rand.order, trace_length)
    return rand, fields, leaf_digests(rand.salts[:trace_length - 1], data[:trace_length - 1])


def build_lane(ops: np.ndarray, fields: np.ndarray, rand: LaneRandomness, exec_rows: np.ndarray,
               checks: RecordChecks, trace_length: int, prev_ts: int) -> Lane:
    """The lane of a batch (`ops` with outcomes, its trades' `fields`), from
    its randomness, its execution rows (``(T, k)`` Montgomery, air.exec_columns'
    order: fli is read from fl and sM), and its records segment, whose
    record-check block (`checks`, of the `book` domain's S rows) writes its
    own columns (`prev_ts`: the timestamp row 0's operation is compared
    against).  EncodingError for a record outside the encoding's domain,
    RecordError for one no witness exists for, LaneFull (ops + trades + 1
    > T, or more operations than S)."""
    if trace_length != checks.trace_length:
        raise ValueError(f"a lane of {trace_length} rows with record checks for {checks.trace_length}")
    if len(ops) > checks.rows:
        raise LaneFull(f"{len(ops)} operations do not fit a zk batch whose book domain has {checks.rows} rows "
                       f"(one operation a row: {len(ops) - checks.rows} too many)")
    data, types = lane_data(ops, fields, rand.order, trace_length)
    records = records_matrix(data[:len(ops)], checks.rows, len(checks.columns))
    counts = checks.write(ops, records[:, len(RECORD_INPUTS):], prev_ts)
    matrix = array_pool.empty((trace_length, len(LANE_COLUMNS)), np.uint32)    # kept for the next
    leaves = lane_matrix(matrix, data, types, rand.salts, rand.blinding, exec_rows)
    side = side_leaves(ops, rand.side_salts)
    return Lane(matrix, records, leaves, side, root_of(side), counts, rand.blinding)


def records_matrix(op_elements: np.ndarray, rows: int, block_width: int) -> np.ndarray:
    """The `book` domain's records segment (``(rows, 13 + block_width)``
    uint32, Montgomery) with its inputs written: lo = 1 and operation i's
    data elements (`op_elements`, ``(ops, 12)`` canonical) on row i, zero
    on every other row; the record-check block's `block_width` columns
    after them zero, for the block to write."""
    n = len(op_elements)
    out = np.zeros((rows, len(RECORD_INPUTS) + block_width), dtype=np.uint32)
    out[:n, 0] = F.ONE
    out[:n, 1:len(RECORD_INPUTS)] = F.encode(op_elements)
    return out


#: the lane's own columns (LANE_COLUMNS): the whole lane
BLOCK = len(LANE_COLUMNS)
#: the Poseidon2 registers' first column, and the permutation output's (the
#: leaf's eight elements before the feed-forward): runs of the matrix
_P2 = LANE_COLUMNS.index(P2.names[0])
_OUTPUT = LANE_COLUMNS.index(P2.output[0])
assert LANE_COLUMNS[_P2: _P2 + poseidon2.AIR_COLUMNS] == P2.names
assert LANE_COLUMNS[_OUTPUT: _OUTPUT + LEAF_ELEMENTS] == P2.output
#: the column of each value the C builder names (csrc/orderbook/zk_lane.h)
_POS = np.array([LANE_COLUMNS.index(ffi.string(lib.zk_lane_column_name(i)).decode())
                 for i in range(lib.zk_lane_column_count())], dtype=np.int32)
assert sorted(_POS.tolist() + list(range(_P2, _P2 + poseidon2.AIR_COLUMNS))) == list(range(BLOCK)), \
    "every column of the lane's own is the C builder's or a register, once"


def _canonical(a, shape: tuple[int, ...], what: str) -> np.ndarray:
    """`a` as a contiguous uint32 array of `shape` (TypeError, ValueError
    naming `what`); the builder checks each value is below p."""
    a = np.asarray(a)
    if a.dtype.kind not in "ui":
        raise TypeError(f"the lane's {what} must be integers, got {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"the lane's {what} have shape {a.shape}, not {shape}")
    if a.dtype.itemsize > 4 or a.dtype.kind == "i":
        if a.size and (a.min() < 0 or a.max() >= F.P):
            k = tuple(int(i) for i in np.argwhere((a < 0) | (a >= F.P))[0])
            raise ValueError(f"the lane's {what}: {int(a[k])} at {k} is not a field element")
    return np.ascontiguousarray(a, dtype=np.uint32)


def lane_matrix(matrix: np.ndarray, data: np.ndarray, types: np.ndarray, salts: np.ndarray,
                blinding: np.ndarray, exec_rows: np.ndarray) -> np.ndarray:
    """Write the lane's columns (LANE_COLUMNS, the first BLOCK columns of
    `matrix`: T x width uint32, Montgomery; any after them are left as
    they are) from the lane's data
    elements and row types (lane_data), its salts (``(T, 4)``), the
    blinding tuple's values (LaneRandomness.blinding) and the execution
    rows (``(T, k)`` Montgomery, air.exec_columns' order: fli is read from
    fl and sM); return the published leaves (``(T - 1, 8)`` canonical).
    The columns but the registers are the C builder's (csrc/orderbook/
    lane.c), the registers the Poseidon2 kernel's, the leaves read from
    them.  ValueError naming a value that is not a field element."""
    t = len(data)
    if not isinstance(matrix, np.ndarray) or matrix.dtype != np.uint32 or matrix.ndim != 2 \
            or matrix.shape[0] != t or matrix.shape[1] < BLOCK or matrix.strides[1] != 4 \
            or matrix.strides[0] % 4 or matrix.strides[0] < 4 * matrix.shape[1] or not matrix.flags.writeable:
        raise ValueError(f"a lane matrix is a writeable uint32 matrix of {t} rows, at least {BLOCK} contiguous "
                         f"columns, rows apart (a row stride of at least its width), not "
                         f"{getattr(matrix, 'dtype', type(matrix).__name__)} {getattr(matrix, 'shape', '')} "
                         f"strides {getattr(matrix, 'strides', '')}")
    inputs = [_canonical(salts, (t, SALT_ELEMENTS), "salts"), _canonical(data, (t, DATA_ELEMENTS), "data elements"),
              _canonical(types, (t, len(TYPES)), "row types"),
              _canonical(blinding, (len(BLIND_COLUMNS),), "blinding values")]
    names = exec_columns(t)
    if exec_rows.dtype != np.uint32 or exec_rows.shape != (t, len(names)) or not exec_rows.flags.c_contiguous:
        raise ValueError(f"the execution rows are a contiguous uint32 ({t}, {len(names)}) matrix, not "
                         f"{exec_rows.dtype} {exec_rows.shape}")
    x = np.empty((t, SALT_ELEMENTS + DATA_ELEMENTS), dtype=np.uint32)   # the permutation's inputs
    base = ffi.cast("uint32_t *", matrix.ctypes.data)       # a strided view's address: no buffer to hand over
    stride = matrix.strides[0] // 4
    ex = u32p(exec_rows)
    got = lib.zk_lane_rows(base, stride, BLOCK, ffi.from_buffer("int32_t[]", _POS), u32p(x), t,
                           *(u32p(a) for a in inputs), ex + names.index("fl"), ex + names.index("sM"), len(names))
    if got == lib.ZK_LANE_NO_MEMORY:
        raise MemoryError("the lane builder's scratch memory")
    if got == lib.ZK_LANE_BAD_LAYOUT:
        raise AssertionError("the lane builder refused its column layout")
    if got >= 0:
        for a, what in zip(inputs, ("salts", "data elements", "row types", "blinding values")):
            if got < a.size:
                k = tuple(int(i) for i in np.unravel_index(got, a.shape))
                raise ValueError(f"the lane's {what}: {int(a[k])} at {k} is not a field element")
            got -= a.size
    poseidon2.air_registers(x, out=matrix[:, _P2: _P2 + poseidon2.AIR_COLUMNS])
    leaves = np.empty((t - 1, LEAF_ELEMENTS), dtype=np.uint32)
    lib.zk_lane_leaves(u32p(leaves), base + _OUTPUT, stride, u32p(x), t - 1)
    return leaves


def count_lookups(exec_rows: np.ndarray, counts: np.ndarray, trace_length: int) -> None:
    """Add the record-check block's range lookups (`counts`: per value of
    the table [0, T)) to the range table's multiplicities (exec's `rm`,
    Montgomery, in place): the table counts every lookup of the `ops`
    domain, the block's included."""
    t = trace_length
    if counts.shape != (t,):
        raise ValueError(f"range counts for a table of {counts.shape} values, not {t}")
    j = exec_columns(t).index("rm")
    rm = F.decode(np.ascontiguousarray(exec_rows[:, j])).astype(np.int64) + counts
    exec_rows[:, j] = F.encode(rm % F.P)

