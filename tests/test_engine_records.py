"""The numpy dtypes of engine/records.py against the compiled C header
csrc/formats/zk_records.h: every size, offset and constant must agree."""
from __future__ import annotations

import pytest

from zksidecar.engine import records
from zksidecar.engine.native import ffi, lib
from zksidecar.engine.records import (COMPLETION_DTYPE, OP_DTYPE, TRADE_DTYPE, CompletionStatus,
                                      Kind, Reason, Side, Status)

PAIRS = [("zk_op", OP_DTYPE), ("zk_trade", TRADE_DTYPE), ("zk_completion", COMPLETION_DTYPE)]


@pytest.mark.parametrize("ctype, dtype", PAIRS)
def test_sizes_and_offsets_agree(ctype, dtype):
    assert ffi.sizeof(ctype) == dtype.itemsize
    c_fields = [name for name, _ in ffi.typeof(ctype).fields]
    assert c_fields == list(dtype.names)
    for name in dtype.names:
        sub, offset = dtype.fields[name][:2]
        assert ffi.offsetof(ctype, name) == offset, name
        assert ffi.sizeof(ffi.typeof(ctype).fields[c_fields.index(name)][1].type) == sub.itemsize, name


@pytest.mark.parametrize("dtype", [OP_DTYPE, TRADE_DTYPE, COMPLETION_DTYPE])
def test_little_endian_and_packed(dtype):
    records.struct_of(dtype)  # raises on a gap
    for name in dtype.names:
        base = dtype.fields[name][0].base
        assert base.str[0] in "<|", name


@pytest.mark.parametrize("enum, prefix", [(Kind, "ZK_KIND_"), (Side, "ZK_SIDE_"),
                                          (Reason, "ZK_REASON_"), (CompletionStatus, "ZK_COMPLETION_")])
def test_constants_agree(enum, prefix):
    for member in enum:
        assert getattr(lib, prefix + member.name) == member.value, member


def test_status_and_scalars_agree():
    for member in Status:
        if member != Status.NONE:
            assert getattr(lib, "ZK_STATUS_" + member.name) == member.value
    assert lib.ZK_RECORDS_VERSION == records.VERSION
    assert lib.ZK_MAX_PRICE == records.MAX_PRICE and lib.ZK_MAX_QTY == records.MAX_QTY
    assert lib.ZK_FLAG_CLAIMED == records.FLAG_CLAIMED and lib.ZK_NO_PROOF == records.NO_PROOF
    assert lib.ZK_FLAG_CRITICAL == records.FLAG_CRITICAL and lib.ZK_FLAGS_KNOWN == records.FLAGS_KNOWN


def test_op_struct_packs_like_the_dtype():
    ops = records.ops(1)
    values = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
    records.OP_STRUCT.pack_into(memoryview(ops).cast("B"), 0, *values)
    assert ops[0].tolist() == values


def test_outcome_mismatches():
    a, b = records.ops(3), records.ops(3)
    b["filled"][1] = 5
    assert records.outcome_mismatches(a, b).tolist() == [1]
    with pytest.raises(ValueError):
        records.outcome_mismatches(a, b[:2])
