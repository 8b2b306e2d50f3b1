"""One definition of the ring layout: csrc/ring/zkring.h.  ringbuf/layout.py, the
Rust client's constants and docs/RING.md must agree with it."""
from __future__ import annotations

import re

import pytest

from ring_helpers import BINDINGS, ROOT
from zksidecar.ringbuf import layout
from zksidecar.ringbuf.ring import ffi, lib


@pytest.mark.parametrize("field", sorted(layout.FIELDS))
def test_python_offsets_match_c(field):
    assert lib.zkr_offsetof(field.encode()) == layout.FIELDS[field][0]


@pytest.mark.parametrize("field", sorted(layout.SLOT_FIELDS))
def test_python_registry_offsets_match_c(field):
    assert lib.zkr_offsetof(f"slot.{field}".encode()) == layout.SLOT_FIELDS[field][0]


def test_constants_match_c():
    assert layout.MAGIC == lib.ZKRING_MAGIC
    assert layout.MAGIC.to_bytes(8, "little") == b"ZKSDRING"
    assert layout.VERSION == lib.ZKRING_VERSION
    assert layout.LINE == lib.ZKRING_LINE
    assert layout.RECORDS_OFFSET == lib.ZKRING_RECORDS_OFFSET == lib.zkr_offsetof(b"header_size")
    assert layout.PRODUCER_SLOTS == lib.ZKRING_PRODUCER_SLOTS
    assert layout.SLOT_SIZE == lib.zkr_offsetof(b"slot_size") == layout.LINE
    assert (layout.SPSC, layout.MPSC) == (lib.ZKRING_SPSC, lib.ZKRING_MPSC)
    assert (layout.F_GROUP, layout.F_CLOSED) == (lib.ZKRING_F_GROUP, lib.ZKRING_F_CLOSED)
    for cap in (2, 1024, 1 << 20):
        for mode in (layout.SPSC, layout.MPSC):
            assert layout.segment_size(cap, 64, mode) == lib.zkring_segment_size(cap, 64, mode)


def test_counters_and_sides_each_own_a_line():
    lines = {name: off // layout.LINE for name, (off, _) in layout.FIELDS.items()}
    owners = [{"tail"}, {"head_cache"}, {"head"},
              {"producer_pid", "producer_heartbeat_ns", "full_events", "producer_owner"},
              {"consumer_pid", "consumer_parked", "consumer_heartbeat_ns", "consumer_owner",
               "unblocked"}]
    for group in owners:
        same = {lines[f] for f in group}
        assert len(same) == 1
        others = {f for f in lines if lines[f] in same} - group
        assert not others, f"{group} shares its line with {others}"


def test_rust_client_offsets_match_c():
    text = (BINDINGS / "rust" / "zkring.rs").read_text()
    consts = dict(re.findall(r"const OFF_(\w+): usize = (\d+);", text))
    names = {"PRODUCER_HEARTBEAT": "producer_heartbeat_ns"}
    assert consts
    for const, value in consts.items():
        field = names.get(const, const.lower())
        assert lib.zkr_offsetof(field.encode()) == int(value), const
    assert f"const RECORDS_OFFSET: usize = {layout.RECORDS_OFFSET};" in text
    slots = dict(re.findall(r"const SLOT_(\w+): usize = (\d+);", text))
    assert slots.pop("SIZE") == str(layout.SLOT_SIZE)
    assert {k.lower(): int(v) for k, v in slots.items()} == \
        {k: off for k, (off, _) in layout.SLOT_FIELDS.items()}
    assert f"pub const VERSION: u32 = {layout.VERSION};" in text
    assert f"const PRODUCER_SLOTS: usize = {layout.PRODUCER_SLOTS};" in text


def test_doc_table_matches_c():
    doc = (ROOT / "docs" / "RING.md").read_text()
    rows = dict((name, int(off)) for off, name in re.findall(r"^\|\s*(\d+)\s*\|\s*`(\w+)`", doc, re.M))
    for field, (offset, _) in layout.FIELDS.items():
        assert rows.get(field) == offset, f"docs/RING.md: {field}"
    slot_rows = dict((name, int(off)) for off, name in
                     re.findall(r"^\|\s*slot \+ (\d+)\s*\|\s*`(\w+)`", doc, re.M))
    assert slot_rows == {k: off for k, (off, _) in layout.SLOT_FIELDS.items()}, "docs/RING.md: registry"
    assert f"layout version, {layout.VERSION}" in doc
    assert ffi.sizeof("zkring_idle_t") == 24
