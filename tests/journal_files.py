"""Journal files rewritten in place for the mode tests: entries given other
header flags, each header sealed again with its own checksum (what a journal
an earlier release wrote looks like, or a forged one), through the format's
one definition (daemon/formats.py)."""
from __future__ import annotations

import os

from zksidecar.daemon import formats as fm
from zksidecar.daemon import journal, snapshot


def entry_offsets(path) -> list[int]:
    """Where each entry of the segment file at `path` starts."""
    raw = open(path, "rb").read()
    walk = fm.EntryWalk(lambda o, n: raw[o:o + n], len(raw), fm.JOURNAL_LAYOUT, str(path), False,
                        journal.JournalCorrupt)
    return [at for at, _, _ in walk]


def set_flags(path, at: int, flags: int) -> None:
    """The entry at byte `at` of the segment at `path` with header `flags`,
    its header checksum made again (a sound header saying something else)."""
    with open(path, "r+b") as f:
        f.seek(at)
        h = fm.JOURNAL_HEADER.unpack(f.read(fm.HEADER_SIZE))
        payload = f.read(h.length)
        f.seek(at)
        f.write(fm.journal_header(h.type, payload, h.count, h.seen_ns, flags))


def set_mark_fields(path, at: int, **fields) -> None:
    """The batch mark at byte `at` of the segment at `path` with payload
    `fields` (flags=..., reserved=..., priority=...), its payload and
    header checksums made again."""
    with open(path, "r+b") as f:
        f.seek(at)
        h = fm.JOURNAL_HEADER.unpack(f.read(fm.HEADER_SIZE))
        payload = fm.JOURNAL_MARK.pack(**{**fm.JOURNAL_MARK.unpack(f.read(h.length))._asdict(), **fields})
        f.seek(at)
        f.write(fm.journal_header(h.type, payload, h.count, h.seen_ns, h.flags) + payload)


def set_mark_flags(path, at: int, flags: int) -> None:
    """The batch mark at byte `at` with payload `flags` (set_mark_fields)."""
    set_mark_fields(path, at, flags=flags)


def set_all_flags(directory, flags: int) -> None:
    """Every entry of the journal at `directory` with header `flags`."""
    for _, name in fm.segment_files(str(directory), journal.PREFIX, journal.SUFFIX):
        path = os.path.join(str(directory), name)
        for at in entry_offsets(path):
            set_flags(path, at, flags)


def as_written_before_flags(directory) -> list[str]:
    """The journal at `directory` as a zk daemon of the release before the
    entry flags left it: every entry unflagged, the zk-journal mark, and
    its snapshots of format version 1, which say no mode (returned)."""
    set_all_flags(directory, 0)
    open(os.path.join(str(directory), journal.ZK_MARK_NAME), "wb").close()
    return snapshots_as_version_1(directory)


def snapshots_as_version_1(directory) -> list[str]:
    """The snapshots of the journal at `directory` as a release before
    snapshots said their mode wrote them (version 1, byte 5 zero), each
    header sealed again; their paths."""
    paths = [path for _, _, path in snapshot.listed(str(directory))]
    for path in paths:
        with open(path, "r+b") as f:
            head = bytearray(f.read(snapshot.HEADER.size))
            head[4:6] = bytes([fm.SNAPSHOT_VERSION_BEFORE_MODE, 0])
            at = snapshot.HEADER_CRC_AT
            head[at:at + 4] = fm.crc32(bytes(head[:at])).to_bytes(4, "little")
            f.seek(0)
            f.write(head)
    return paths
