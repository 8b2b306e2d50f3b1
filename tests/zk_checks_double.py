"""TEST DOUBLE of zk mode's record-check block (zk_air.RecordChecks), for
the tests of the zk statement until the real block
(prover/orderbook/zk_record_checks.py, branch zk-checks) lands.

It is NOT sound and not meant to be: it supplies the op and outcome tuples
<3, row, ...> and <4, row, ...> from witness columns it fills with what
air.public_tables gives for the records, and the timestamp pieces from
columns it fills from the records, with no constraint tying any of them to
the data elements e0..e11.  What it lets the tests exercise is everything
around the block: the lane's leaves, types and trade tuples, the narrowed
execution, the timestamp cells of the state, masking, keys, the batch file
and the chain rules.  Install it with `installed(monkeypatch)`.
"""
from __future__ import annotations

import numpy as np

from zksidecar.engine.records import TRADE_DTYPE
from zksidecar.prover import logup
from zksidecar.prover.orderbook import air as A
from zksidecar.prover.orderbook import zk_air
from zksidecar.prover.orderbook.zk_air import TS_CELLS, ts_pieces

OP_FIELDS = ("code", "buy", "lim", "qty", "hslot", "hgen", "alo", "ahi")
OUT_FIELDS = ("status", "reason", "filled", "trades", "os", "og")


class DoubleChecks:
    """The double (module docstring): unconstrained columns rc_op_*,
    rc_out_*, rc_lpts*, rc_lts*."""

    def __init__(self, trace_length: int, log2_capacity: int):
        self.trace_length, self.log2_capacity = trace_length, log2_capacity
        self.op = tuple(f"rc_op_{n}" for n in OP_FIELDS)
        self.out = tuple(f"rc_out_{n}" for n in OUT_FIELDS)
        self.first_lpts = tuple(f"rc_lpts{k}" for k in range(TS_CELLS))
        self.last_ts = tuple(f"rc_lts{k}" for k in range(TS_CELLS))
        self.columns = self.op + self.out + self.first_lpts + self.last_ts

    def transitions(self, f):
        return []

    def fractions(self):
        return [logup.supply([A.TAG_OP, "row"] + list(self.op), "lo"),
                logup.supply([A.TAG_OUT, "row"] + list(self.out), "lo")]

    def fill(self, records: np.ndarray, trace_length: int, prev_ts: int):
        n, t = len(records), trace_length
        op_rows, out_rows, _ = A.public_tables(records, np.zeros(0, TRADE_DTYPE), 1 << self.log2_capacity,
                                               int(records["seq"][0]) if n else 0)
        cols = {c: np.zeros(t, dtype=np.int64) for c in self.columns}
        for j, c in enumerate(self.op):
            cols[c][:n] = op_rows[:, 2 + j]
        for j, c in enumerate(self.out):
            cols[c][:n] = out_rows[:, 2 + j]
        ts = records["ts_ns"].astype(np.uint64)
        before = ts_pieces(np.r_[np.uint64(prev_ts), ts[:-1]].astype(np.uint64))
        last = ts_pieces(ts[-1])
        for k in range(TS_CELLS):
            cols[self.first_lpts[k]][:n] = before[:, k]
            cols[self.last_ts[k]][:] = last[k]
        return cols

    def range_counts(self, columns, ops: int):
        return np.zeros(self.trace_length, dtype=np.int64)       # the double looks nothing up


def installed(monkeypatch) -> None:
    """Make the double zk_air's record-check block for this test."""
    monkeypatch.setattr(zk_air, "record_checks", DoubleChecks)
