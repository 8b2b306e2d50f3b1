"""The numpy dtypes of engine/records.py against the compiled C header
csrc/formats/zk_records.h: every size, offset and constant must agree."""
from __future__ import annotations

import numpy as np
import pytest

from format_docs import check_byte_table, check_layout
from zksidecar.engine import records
from zksidecar.engine.native import lib
from zksidecar.engine.records import (COMPLETION_DTYPE, OP_DTYPE, TRADE_DTYPE, CompletionStatus,
                                      Kind, Reason, Side, Status)

PAIRS = [("zk_op", OP_DTYPE), ("zk_trade", TRADE_DTYPE), ("zk_completion", COMPLETION_DTYPE)]


@pytest.mark.parametrize("ctype, dtype", PAIRS)
def test_sizes_and_offsets_agree(ctype, dtype):
    check_layout(ctype, dtype)


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


@pytest.mark.parametrize("title, dtype", [("## Operation record", OP_DTYPE),
                                          ("## Trade record", TRADE_DTYPE),
                                          ("## Completion record", COMPLETION_DTYPE)])
def test_formats_md_byte_tables_agree(title, dtype):
    """docs/FORMATS.md's byte table of each record: the same fields, at the
    same bytes, as the mirror (which the test above holds to the header)."""
    check_byte_table(title, dtype)


def test_completion_layout_check():
    recs = np.zeros(3, COMPLETION_DTYPE)
    recs["version"] = records.VERSION
    recs["first_seq"], recs["op_count"] = [1, 5, 9], [4, 4, 1]
    assert records.check_completions(recs) is recs
    assert records.completion_last_seq(recs).tolist() == [4, 8, 9]
    # a layout-1 daemon's record: last_seq a u64 at 16, status PROVEN a u32 at
    # 56, so byte 57 (version) is 0: refused, not read as a symbol and a count
    raw = recs.view(np.uint8).reshape(3, 64)
    raw[2, 16:24] = np.frombuffer((9).to_bytes(8, "little"), np.uint8)
    raw[2, 56:60] = np.frombuffer((1).to_bytes(4, "little"), np.uint8)
    with pytest.raises(records.CompletionLayoutError, match="version 0, this build reads 2"):
        records.check_completions(recs)
    # and a layout-1 reader of a layout-2 record finds no status it knows
    recs["version"][2], recs["status"][2] = records.VERSION, records.CompletionStatus.PROVEN
    assert int.from_bytes(raw[2, 56:60].tobytes(), "little") == 0x0201
