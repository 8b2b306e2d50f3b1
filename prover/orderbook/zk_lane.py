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
from .. import poseidon2, zk_keys
from .air import exec_columns, public_tables
from .zk_air import BLIND_COLUMNS, BLIND_ENTRIES, DATA, LANE_COLUMNS, P2, SALTS, TYPES
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
        side = np.frombuffer(zk_keys.expand(batch_key, ["side-salts"], SIDE_SALT_BYTES * n_ops),
                             dtype=np.uint8).reshape(n_ops, SIDE_SALT_BYTES)
        keys = np.frombuffer(zk_keys.expand(batch_key, ["trade-order"], 8 * slots), dtype="<u8")
        return cls(salts.reshape(trace_length, SALT_ELEMENTS), side, np.argsort(keys, kind="stable"),
                   blinding(batch_key))


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


def trade_fields(ops: np.ndarray, trades: np.ndarray, capacity: int, first_seq: int) -> np.ndarray:
    """Each trade's six leaf fields (i, tn, maker slot, maker generation,
    price, qty), ``(m, 6)`` int64: entries 1 .. 6 of air.public_tables's
    trade rows (the taker's index, the trade's number within its operation)."""
    if not len(trades):
        return np.zeros((0, TRADE_ELEMENTS), dtype=np.int64)
    _, _, rows = public_tables(ops, trades, capacity, first_seq)
    return rows[:, 1:1 + TRADE_ELEMENTS].astype(np.int64)


@dataclass
class Lane:
    """A batch's lane: the segment's matrix (T x width, Montgomery), the
    published leaves (T - 1 x 8, canonical: operation leaves first, then the
    trade and dummy leaves in their slots), the side leaves and their root,
    and how often the record-check block looks up each value of the range
    table [0, T)."""

    matrix: np.ndarray
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
    order: fli is read from fl and sM) and its record-check block, which
    fills its own columns (`prev_ts`: the timestamp row 0's operation is
    compared against).  EncodingError for a record outside the encoding's
    domain, RecordError for one no witness exists for, LaneFull."""
    cols = checks.fill(ops, trace_length, prev_ts)
    data, types = lane_data(ops, fields, rand.order, trace_length)
    matrix, leaves = lane_matrix(data, types, rand.salts, rand.blinding, exec_rows, checks, cols)
    side = side_leaves(ops, rand.side_salts)
    counts = np.asarray(checks.range_counts(cols, len(ops)), dtype=np.int64)
    return Lane(matrix, leaves, side, root_of(side), counts, rand.blinding)


def lane_matrix(data: np.ndarray, types: np.ndarray, salts: np.ndarray, blinding: np.ndarray,
                exec_rows: np.ndarray, checks: RecordChecks,
                block: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The lane segment's matrix (T x width, Montgomery) and its published
    leaves (``(T - 1, 8)`` canonical) from the lane's data elements and row
    types (lane_data), its salts (``(T, 4)``), the blinding tuple's values
    (LaneRandomness.blinding), the execution rows (fli is read from fl and
    sM) and the record-check block's columns `block` (by name, T rows, any
    integers: reduced mod p)."""
    t = len(data)
    columns = LANE_COLUMNS + tuple(checks.columns)
    at = {c: j for j, c in enumerate(columns)}
    out = np.zeros((t, len(columns)), dtype=np.uint32)
    x = F.encode(np.concatenate([salts, data], axis=1))                 # the permutation's inputs
    first = at[SALTS[0]]
    assert columns[first: first + len(SALTS) + len(DATA)] == SALTS + DATA
    out[:, first: first + len(SALTS) + len(DATA)] = x
    for k, name in enumerate(TYPES):
        out[:, at[name]] = F.encode(types[:, k])
    out[0, at["r0"]] = F.encode_int(1)
    b = at[BLIND_COLUMNS[0]]
    out[:, b: b + len(BLIND_COLUMNS)] = blinding_rows(blinding, t)
    p2 = at[P2.names[0]]
    poseidon2.air_registers(x, out=out[:, p2: p2 + poseidon2.AIR_COLUMNS])
    # fli: a MATCH's fill's inverse (check 19), 0 elsewhere
    names = exec_columns(t)
    fl, sm = exec_rows[:, names.index("fl")], exec_rows[:, names.index("sM")]
    match = np.flatnonzero((sm != 0) & (fl != 0))
    if len(match):
        out[match, at["fli"]] = F.inv(np.ascontiguousarray(fl[match]))
    for name in checks.columns:
        out[:, at[name]] = F.encode(np.asarray(block[name], dtype=np.int64) % F.P)
    leaf_cols = [at[c] for c in P2.output]
    leaves = F.decode(F.add(np.ascontiguousarray(out[:t - 1, leaf_cols]),
                            np.ascontiguousarray(x[:t - 1, :LEAF_ELEMENTS])))
    return out, leaves


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

