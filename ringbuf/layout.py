"""The ring's segment layout, mirrored from csrc/ring/zkring.h (the one definition;
docs/RING.md is the byte-by-byte table).  tests/test_ring_layout.py checks
that every number here equals the C's offsetof/sizeof.  The Python side never
reads these fields itself in the hot path (the C does); they exist for tools
that inspect a segment (and for the tests that corrupt one on purpose).
"""
from __future__ import annotations

MAGIC = 0x474E495244534B5A  # b"ZKSDRING" as a little-endian u64
VERSION = 3                  # 3: records of layout 2 (completions name their symbol); 2: producer registry, identity words, unblocked
LINE = 128                   # bytes between fields written by different parties
RECORD_SIZE = 64             # operation and completion records
RECORDS_OFFSET = 768         # the header is six 128-byte lines
MAX_CAPACITY = 1 << 30
PRODUCER_SLOTS = 64          # MPSC registry entries, one per producer handle
SLOT_SIZE = 128              # one registry entry, a line of its own

SPSC, MPSC = 1, 2
F_GROUP, F_CLOSED = 1, 2

# field -> (offset, struct format) in the header
FIELDS = {
    # line 0: configuration, written once at creation
    "magic": (0, "<Q"),
    "version": (8, "<I"),
    "record_size": (12, "<I"),
    "capacity": (16, "<Q"),
    "mode": (24, "<I"),
    "flags": (28, "<I"),
    "records_offset": (32, "<Q"),
    "seq_offset": (40, "<Q"),
    "segment_size": (48, "<Q"),
    "registry_offset": (56, "<Q"),
    "producer_slots": (64, "<I"),
    # line 1: producers
    "producer_pid": (128, "<i"),
    "producer_heartbeat_ns": (136, "<Q"),
    "full_events": (144, "<Q"),
    "producer_owner": (152, "<Q"),
    # line 2: the consumer
    "consumer_pid": (256, "<i"),
    "consumer_parked": (260, "<I"),
    "consumer_heartbeat_ns": (264, "<Q"),
    "consumer_owner": (272, "<Q"),
    "unblocked": (280, "<Q"),
    # lines 3-5: the counters, one per line
    "tail": (384, "<Q"),
    "head_cache": (512, "<Q"),
    "head": (640, "<Q"),
}

# field -> (offset, struct format) in a producer registry entry (MPSC), entry
# i at registry_offset + i * SLOT_SIZE
SLOT_FIELDS = {
    "owner": (0, "<Q"),
    "intent_lo": (8, "<Q"),
    "intent_hi": (16, "<Q"),
    "heartbeat_ns": (24, "<Q"),
}


def identity_pid(word: int) -> int:
    """The pid in an identity word (producer_owner, consumer_owner, a slot's owner)."""
    return word & 0x3FFFFF


def segment_size(capacity: int, record_size: int = RECORD_SIZE, mode: int = SPSC) -> int:
    """Bytes of a segment: header, records, and (MPSC) one u64 sequence per
    slot and the producer registry."""
    size = RECORDS_OFFSET + capacity * record_size
    return size + capacity * 8 + PRODUCER_SLOTS * SLOT_SIZE if mode == MPSC else size
