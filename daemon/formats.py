"""The on-disk formats of the journal, its snapshots and the proof store
(csrc/formats/zk_store.h),
and the file handling both logs share.

The C header is the definition; the dtypes here mirror it
(tests/test_store.py checks every size, offset and constant through cffi)
and docs/STORE.md documents each byte.  Both logs are append-only segment
files of entries: a 32-byte header (magic, version, payload length, a CRC-32
of the payload, a CRC-32 of the header itself) then the payload.  Reading
them is one walk (EntryWalk) with one rule for a torn tail; writing them is
one positioned write that is undone if it fails (append_at), so a full disk
never leaves half an entry behind.
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import zlib
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ..engine.records import OP_DTYPE, Packed, record_dtype
from . import perms
from .refusal import StartRefusal

VERSION = 1
JOURNAL_MAGIC = 0x454A4B5A     # b"ZKJE"
STORE_MAGIC = 0x45534B5A       # b"ZKSE"
JOURNAL_OPS = 1
JOURNAL_BATCH = 2
JOURNAL_ENTRY_ZK = 1           # zk_journal_entry.flags: written by a zk-mode daemon
MARK_RESUMED = 1               # zk_journal_batch.flags
SNAPSHOT_MAGIC = 0x4E534B5A    # b"ZKSN"
SNAPSHOT_RESUMED = 1           # zk_snapshot_book.flags
SNAPSHOT_VERSION = 2           # a snapshot's own: its header says its mode
SNAPSHOT_VERSION_BEFORE_MODE = 1   # read, its mode unknown (zk_store.h ZK_SNAPSHOT_VERSION)
SNAPSHOT_ZK = 1                # zk_snapshot_header.flags: written by a zk-mode daemon


class FileLogError(OSError):
    """The base of the journal's and the store's errors: `errno` is the
    system's code; the message says what and where (no "[Errno N]" prefix)."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


#: how an entry whose sound header says another release wrote it is
#: refused: another format version, or flags this build does not know
OTHER_VERSION = "format version"
UNKNOWN_FLAGS = "unknown flags"


class CorruptEntryMixin(StartRefusal):
    """A damaged entry that is not a torn tail: `path` and `offset` name it.
    One whose header, its checksum holding, says another format version or
    carries flags this build does not know (`reason` starts OTHER_VERSION or
    UNKNOWN_FLAGS) is no damage but another release's file: `unusable`, as
    no retry or repair makes this release read it (`journal repair` leaves
    it as it is)."""

    what = "entry"

    def __init__(self, path: str, offset: int, reason: str):
        self.path, self.offset, self.reason = path, offset, reason
        super().__init__(errno.EIO, f"{path}: corrupt {self.what} at byte {offset}: {reason}",
                         unusable=reason.startswith((OTHER_VERSION, UNKNOWN_FLAGS)))


JOURNAL_ENTRY_DTYPE = record_dtype([
    ("magic", "<u4", 0),
    ("version", "u1", 4),
    ("type", "u1", 5),
    ("flags", "<u2", 6),
    ("length", "<u4", 8),
    ("count", "<u4", 12),
    ("seen_ns", "<u8", 16),
    ("payload_crc", "<u4", 24),
    ("header_crc", "<u4", 28),
], 32)

JOURNAL_BATCH_DTYPE = record_dtype([
    ("symbol", "<u4", 0),
    ("priority", "u1", 4),
    ("flags", "u1", 5),
    ("reserved", "<u2", 6),
    ("batch_id", "<u8", 8),
    ("first_seq", "<u8", 16),
    ("last_seq", "<u8", 24),
], 32)

STORE_ENTRY_DTYPE = record_dtype([
    ("magic", "<u4", 0),
    ("version", "u1", 4),
    ("reserved", "3u1", 5),
    ("symbol", "<u4", 8),
    ("length", "<u4", 12),
    ("batch_id", "<u8", 16),
    ("data_crc", "<u4", 24),
    ("header_crc", "<u4", 28),
], 32)

STORE_INDEX_DTYPE = record_dtype([
    ("symbol", "<u4", 0),
    ("segment", "<u4", 4),
    ("batch_id", "<u8", 8),
    ("offset", "<u8", 16),
    ("length", "<u4", 24),
    ("data_crc", "<u4", 28),
    ("entry_crc", "<u4", 32),
    ("state", "<u4", 36),
], 40)
#: STORE_INDEX state of a proof whose segment was removed (`zksidecar store
#: prune|archive`): the bytes "ARCV"; 0 is a proof in its segment
STORE_ARCHIVED = 0x56435241

#: archived.zka, the second copy of index.zki's archived entries (its own
#: magic "ZKSA" and version; docs/STORE.md, "The second copy of the archived entries")
STORE_COPY_MAGIC = 0x41534B5A
STORE_COPY_VERSION = 1

STORE_COPY_HEADER_DTYPE = record_dtype([
    ("magic", "<u4", 0),
    ("version", "u1", 4),
    ("reserved", "3u1", 5),
    ("entries", "<u4", 8),
    ("count", "<u4", 12),
    ("reserved2", "<u4", 16),
    ("header_crc", "<u4", 20),
], 24)

STORE_ARCHIVED_DTYPE = record_dtype([
    ("entry", "40u1", 0),
    ("number", "<u4", 40),
    ("record_crc", "<u4", 44),
], 48)

SNAPSHOT_HEADER_DTYPE = record_dtype([
    ("magic", "<u4", 0),
    ("version", "u1", 4),
    ("flags", "u1", 5),
    ("reserved", "2u1", 6),
    ("segment", "<u4", 8),
    ("symbols", "<u4", 12),
    ("offset", "<u8", 16),
    ("created_ns", "<u8", 24),
    ("capacity", "<u4", 32),
    ("trace_length", "<u4", 36),
    ("unstarted", "<u4", 40),
    ("reserved2", "<u4", 44),
    ("body_length", "<u8", 48),
    ("body_crc", "<u4", 56),
    ("header_crc", "<u4", 60),
], 64)

SNAPSHOT_BOOK_DTYPE = record_dtype([
    ("symbol", "<u4", 0),
    ("flags", "<u4", 4),
    ("next_batch_id", "<u8", 8),
    ("n_cells", "<u4", 16),
    ("held", "<u4", 20),
    ("proven_ts", "<u8", 24),
], 32)

SNAPSHOT_UNSTARTED_DTYPE = record_dtype([
    ("symbol", "<u4", 0),
    ("count", "<u4", 4),
    ("reserved", "<u8", 8),
], 16)

JOURNAL_HEADER = Packed("JournalEntryHeader", JOURNAL_ENTRY_DTYPE)
JOURNAL_MARK = Packed("JournalBatchMark", JOURNAL_BATCH_DTYPE)
STORE_HEADER = Packed("StoreEntryHeader", STORE_ENTRY_DTYPE)
STORE_INDEX = Packed("StoreIndexEntry", STORE_INDEX_DTYPE)
STORE_COPY_HEADER = Packed("StoreCopyHeader", STORE_COPY_HEADER_DTYPE)
STORE_ARCHIVED_RECORD = Packed("StoreArchivedRecord", STORE_ARCHIVED_DTYPE)
SNAPSHOT_HEADER = Packed("SnapshotHeader", SNAPSHOT_HEADER_DTYPE)
SNAPSHOT_BOOK = Packed("SnapshotBook", SNAPSHOT_BOOK_DTYPE)
SNAPSHOT_UNSTARTED = Packed("SnapshotUnstarted", SNAPSHOT_UNSTARTED_DTYPE)
HEADER_SIZE = 32
#: a header's own checksum covers the bytes before it (both entry headers)
HEADER_CRC_AT = JOURNAL_HEADER.offset("header_crc")
assert HEADER_CRC_AT == STORE_HEADER.offset("header_crc") == HEADER_SIZE - 4
#: an index entry's checksum covers the bytes before it
INDEX_CRC_AT = STORE_INDEX.offset("entry_crc")
#: archived.zka's header and each record's checksum cover the bytes before it
COPY_HEADER_CRC_AT = STORE_COPY_HEADER.offset("header_crc")
RECORD_CRC_AT = STORE_ARCHIVED_RECORD.offset("record_crc")
U32, U64 = (1 << 32) - 1, (1 << 64) - 1

crc32 = zlib.crc32   # CRC-32/ISO-HDLC, the zlib polynomial; C at a few GB/s


def _sealed(body: bytes, at: int) -> bytes:
    """`body` with the CRC-32 of its first `at` bytes written at `at`."""
    return body[:at] + crc32(body[:at]).to_bytes(4, "little") + body[at + 4:]


def journal_header(kind: int, payload, count: int, seen_ns: int, flags: int = 0) -> bytes:
    """The 32-byte header of a journal entry over `payload` (bytes-like);
    `flags`: JOURNAL_ENTRY_ZK from a zk-mode daemon, else 0."""
    return _sealed(JOURNAL_HEADER.pack(magic=JOURNAL_MAGIC, version=VERSION, type=kind, flags=flags,
                                      length=len(payload), count=count, seen_ns=seen_ns,
                                      payload_crc=crc32(payload), header_crc=0), HEADER_CRC_AT)


def store_header(symbol: int, batch_id: int, length: int, data_crc: int) -> bytes:
    """The 32-byte header of a proof store data entry over `length` bytes
    whose CRC-32 is `data_crc`."""
    return _sealed(STORE_HEADER.pack(magic=STORE_MAGIC, version=VERSION, reserved=(0, 0, 0),
                                    symbol=symbol, length=length, batch_id=batch_id,
                                    data_crc=data_crc, header_crc=0), HEADER_CRC_AT)


def index_entry(symbol: int, segment: int, batch_id: int, offset: int, length: int,
                data_crc: int, state: int = 0) -> bytes:
    """One 40-byte index entry, its own checksum filled in."""
    return _sealed(STORE_INDEX.pack(symbol=symbol, segment=segment, batch_id=batch_id,
                                    offset=offset, length=length, data_crc=data_crc, entry_crc=0,
                                    state=state), INDEX_CRC_AT)


def archived_copy(entries: int, records: list[tuple[int, bytes]]) -> bytes:
    """archived.zka's bytes: the header (index.zki's `entries` up to its last
    archived one) and one record per (number k, its 40-byte index entry)."""
    header = _sealed(STORE_COPY_HEADER.pack(magic=STORE_COPY_MAGIC, version=STORE_COPY_VERSION,
                                            reserved=(0, 0, 0), entries=entries, count=len(records),
                                            reserved2=0, header_crc=0), COPY_HEADER_CRC_AT)
    # a record is its entry's bytes, its number and a CRC of both: joined as
    # bytes, as packing 40 one-byte fields a record costs a retention of
    # millions of proofs seconds
    bodies = (raw + number.to_bytes(4, "little") for number, raw in records)
    return header + b"".join(body + crc32(body).to_bytes(4, "little") for body in bodies)


@dataclass(frozen=True)
class ArchivedCopy:
    """What archived.zka holds that checks out: `entries` (None if its
    header is damaged or missing), the sound records by number, and what
    was wrong with the rest (for a repair line)."""

    entries: int | None
    records: dict[int, bytes]
    problems: tuple[str, ...]


def read_archived_copy(raw: bytes | None) -> ArchivedCopy:
    """archived.zka's `raw` bytes (None: no such file) read record by record:
    each record stands on its own checksum, and on its entry's (an archived
    index entry whose own checksum holds), so a damaged header or record
    costs only itself."""
    if raw is None:
        return ArchivedCopy(None, {}, ())
    problems, entries = [], None
    size = STORE_COPY_HEADER.size
    h = STORE_COPY_HEADER.unpack(raw) if len(raw) >= size else None
    if h is None or h.magic != STORE_COPY_MAGIC or crc32(raw[:COPY_HEADER_CRC_AT]) != h.header_crc:
        problems.append("its header is damaged")
    elif h.version != STORE_COPY_VERSION:        # records of another layout: none used
        return ArchivedCopy(None, {}, (f"format version {h.version} (this build reads "
                                       f"{STORE_COPY_VERSION}); not used",))
    elif any(h.reserved) or h.reserved2:
        problems.append("its header's reserved bytes are not zero")
    else:
        entries = h.entries
        if (len(raw) - size) != h.count * STORE_ARCHIVED_RECORD.size:
            problems.append(f"it holds {len(raw) - size} bytes of records, not the "
                            f"{h.count * STORE_ARCHIVED_RECORD.size} of the {h.count} its header says")
    step = STORE_ARCHIVED_RECORD.size
    n = (len(raw) - size) // step if len(raw) > size else 0
    table = np.frombuffer(raw, STORE_ARCHIVED_DTYPE, n, size) if n else np.zeros(0, STORE_ARCHIVED_DTYPE)
    numbers, crcs = table["number"].tolist(), table["record_crc"].tolist()
    index = np.ascontiguousarray(table["entry"]).view(STORE_INDEX_DTYPE).reshape(-1)
    states, entry_crcs = index["state"].tolist(), index["entry_crc"].tolist()
    records: dict[int, bytes] = {}
    view = memoryview(raw)
    for i, at in enumerate(range(size, size + n * step, step)):
        if crc32(view[at:at + RECORD_CRC_AT]) != crcs[i] or states[i] != STORE_ARCHIVED \
                or crc32(view[at:at + INDEX_CRC_AT]) != entry_crcs[i] \
                or (entries is not None and numbers[i] >= entries):
            problems.append(f"its record at byte {at} is damaged")
            continue
        records[numbers[i]] = raw[at:at + STORE_INDEX.size]
    return ArchivedCopy(entries, records, tuple(problems))


# ------------------------------------------------------------ reading --

@dataclass(frozen=True)
class Layout:
    """How to read one kind of entry header: its packed layout, magic, the
    field holding its payload's CRC, and the checks beyond the checksums."""

    name: str
    header: Packed
    magic: int
    payload_crc: str
    check: Callable[[tuple], str | None]

    def sound_header(self, raw: bytes):
        """`raw`'s header fields if it is a whole header this build reads
        (magic, its own checksum, version and `check`: what EntryWalk asks
        of one before its payload), else None."""
        if len(raw) < HEADER_SIZE:
            return None
        h = self.header.unpack(raw[:HEADER_SIZE])
        sound = (h.magic == self.magic and crc32(raw[:HEADER_CRC_AT]) == h.header_crc
                 and h.version == VERSION and self.check(h) is None)
        return h if sound else None


def _check_journal(h) -> str | None:
    # unknown bits are refused, as the reserved bytes they were: a reader
    # that took an entry with a flag it does not know could miss what it says
    if h.flags & ~JOURNAL_ENTRY_ZK:
        return (f"{UNKNOWN_FLAGS} {h.flags & ~JOURNAL_ENTRY_ZK:#x} (this build knows "
                f"{JOURNAL_ENTRY_ZK:#x}, ZK_JOURNAL_ENTRY_ZK)")
    if h.type == JOURNAL_OPS:
        return None if h.count >= 1 and h.length == OP_DTYPE.itemsize * h.count else \
            f"{h.count} records do not fill {h.length} payload bytes"
    if h.type == JOURNAL_BATCH:
        return None if h.count == 1 and h.length == JOURNAL_MARK.size else \
            "a batch mark of the wrong size"
    return f"unknown entry type {h.type}"


def _check_store(h) -> str | None:
    return "reserved bytes are not zero" if any(h.reserved) else None


JOURNAL_LAYOUT = Layout("journal entry", JOURNAL_HEADER, JOURNAL_MAGIC, "payload_crc", _check_journal)
STORE_LAYOUT = Layout("proof store entry", STORE_HEADER, STORE_MAGIC, "data_crc", _check_store)


class EntryWalk:
    """The entries of one segment file, from `start`, checked one by one.

    Iterating yields (offset, header fields by name, payload).  A failed check in
    the last segment of a log is a torn tail when the failing entry is the
    last thing in the file (docs/STORE.md, "Repair"): fewer than 32 bytes
    left; a good header whose payload runs past the end; an entry that ends
    exactly at the end of the file with a failing checksum; or nothing but
    zeros to the end (blocks a power loss allocated but never wrote).  Then
    iteration stops and `torn` says why, with `end` the offset to truncate
    to.  Anything else raises `error(path, offset, reason)`: corruption in
    the middle of a log is never skipped, except, with `damaged_payloads`,
    a payload whose checksum fails under a sound header (the header says
    where the entry ends): it is yielded with payload None (the proof store
    keeps such an entry, to be superseded: ProofStore.put(replace=True)).
    """

    def __init__(self, read: Callable[[int, int], bytes], size: int, layout: Layout, path: str,
                 last: bool, error: Callable[[str, int, str], Exception], start: int = 0,
                 damaged_payloads: bool = False):
        self.read, self.size, self.layout, self.path = read, size, layout, path
        self.last, self.error, self.damaged_payloads = last, error, damaged_payloads
        self.end = start
        self.torn: str | None = None

    def _fail(self, at: int, reason: str, tail: bool) -> None:
        if self.last and (tail or self._zeros(at)):
            self.torn = reason if tail else "zero-filled tail"
            return
        raise self.error(self.path, at, reason)

    def _zeros(self, at: int) -> bool:
        step = 1 << 20
        for o in range(at, self.size, step):
            chunk = self.read(o, min(step, self.size - o))
            if bytes(chunk).count(0) != len(chunk):
                return False
        return True

    def __iter__(self) -> Iterator[tuple[int, tuple, bytes]]:
        lay, at = self.layout, self.end
        while at < self.size:
            rest = self.size - at
            if rest < HEADER_SIZE:
                return self._fail(at, f"a short header ({rest} of {HEADER_SIZE} bytes)", True)
            raw = bytes(self.read(at, HEADER_SIZE))
            h = lay.header.unpack(raw)
            end = at + HEADER_SIZE + h.length
            if h.magic != lay.magic:
                return self._fail(at, f"not a {lay.name} (bad magic)", end == self.size)
            if crc32(raw[:HEADER_CRC_AT]) != h.header_crc:
                return self._fail(at, "header checksum fails", end == self.size)
            if h.version != VERSION:
                raise self.error(self.path, at, f"{OTHER_VERSION} {h.version} (this build reads {VERSION})")
            problem = lay.check(h)
            if problem:
                raise self.error(self.path, at, problem)
            if end > self.size:
                return self._fail(at, f"a short payload ({rest - HEADER_SIZE} of {h.length} bytes)",
                                  True)
            payload = self.read(at + HEADER_SIZE, h.length)
            if crc32(payload) != getattr(h, lay.payload_crc):
                if not self.damaged_payloads or (self.last and end == self.size):
                    return self._fail(at, "payload checksum fails", end == self.size)
                payload = None
            yield at, h, payload
            at = self.end = end


def segment_files(directory: str, prefix: str, suffix: str) -> list[tuple[int, str]]:
    """(number, file name) of each `prefix`-NNNNNN`suffix` in `directory`,
    in order, gaps and all."""
    pat = re.compile(re.escape(prefix) + r"-(\d{6,})" + re.escape(suffix) + "$")
    return sorted((int(m.group(1)), name) for name in os.listdir(directory)
                  if (m := pat.match(name)))


def numbered_segments(directory: str, prefix: str, suffix: str,
                      error: Callable[[str, int, str], Exception]) -> list[tuple[int, str]]:
    """(number, path) of each `prefix`-NNNNNN`suffix` in `directory`, in
    order, from the lowest number there (segments before it were removed
    on purpose: journal retention); a missing number after it is an error
    (a segment was lost)."""
    found = segment_files(directory, prefix, suffix)
    for k, (n, name) in enumerate(found):
        if n != found[0][0] + k:
            raise error(os.path.join(directory, name), 0, f"segment {n} where {found[0][0] + k} "
                        "was expected (a segment file is missing)")
    return [(n, os.path.join(directory, name)) for n, name in found]


def segment_name(directory: str, prefix: str, suffix: str, number: int) -> str:
    return os.path.join(directory, f"{prefix}-{number:06d}{suffix}")


# ------------------------------------------------------------ writing --

FULL_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
IOV_MAX = 1024   # buffers one pwritev takes (POSIX minimum; Linux's value)


def append_at(fd: int, at: int, parts: list, path: str, full: type, other: type) -> int:
    """Write `parts` (bytes-likes) at offset `at` with as few syscalls as the
    kernel allows; returns the new end.  On failure the file is truncated
    back to `at`, so it holds exactly what it held before, and
    full(errno, message) is raised for a full disk or file-size limit,
    other(errno, message) for anything else."""
    want = sum(len(p) for p in parts)
    bufs = [memoryview(p).cast("B") for p in parts]
    done = 0
    try:
        while bufs:
            n = os.pwritev(fd, bufs[:IOV_MAX], at + done)
            done += n
            while bufs and n >= len(bufs[0]):
                n -= len(bufs[0])
                bufs.pop(0)
            if bufs and n:
                bufs[0] = bufs[0][n:]
    except OSError as exc:
        try:
            os.ftruncate(fd, at)
        except OSError as undo:   # pragma: no cover - truncating down does not allocate
            raise other(undo.errno, f"{path}: cannot undo a failed write at byte {at}: "
                        f"{undo.strerror}") from exc
        if exc.errno in FULL_ERRNOS:
            raise full(exc.errno, f"{path}: disk full or file size limit reached writing "
                       f"{want} bytes at byte {at} ({exc.strerror}); nothing was written") from exc
        raise other(exc.errno, f"{path}: write of {want} bytes at byte {at} failed "
                    f"({exc.strerror}); nothing was written") from exc
    return at + want


def fsync_directory(directory: str) -> None:
    """Make a created or removed name durable (the file's own fsync does not)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_whole(path: str, data: bytes, fsync: bool, full: type, other: type, what: str,
                group: str | int | None = None) -> None:
    """`data` at `path`, whole or not at all: a temporary name beside it,
    fsync, rename, the directory fsynced (with `fsync`).  A full disk raises
    `full`, anything else `other` ("PATH: cannot write WHAT: why"); either
    way nothing is left behind.  A temporary name left by a crash mid-write
    was never renamed, so never read: it is removed first."""
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp")
    try:
        if os.path.exists(tmp):
            os.unlink(tmp)
        fd = perms.create_file(tmp, os.O_WRONLY | os.O_CLOEXEC, group)
        try:
            append_at(fd, 0, [data], tmp, full, other)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        if fsync:
            fsync_directory(directory)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, other):
            cls = full if exc.errno in FULL_ERRNOS else other
            raise cls(exc.errno, f"{path}: cannot write {what}: {exc.strerror}") from exc
        raise


def lock_directory(directory: str, what: str, error: type, group: str | int | None = None) -> int:
    """Take the directory's LOCK file (flock, released when the process
    dies): two writers on one log would interleave their appends.  A new
    LOCK is 0600 (0640 owned by `group`) whatever the umask (daemon/perms.py)."""
    fd = perms.open_or_create(os.path.join(directory, "LOCK"), os.O_RDWR | os.O_CLOEXEC, group)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise error(errno.EBUSY, f"{what} {directory} is open in another writer "
                    "(its LOCK file is held)") from None
    return fd


def as_records(records: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`records` as a C-contiguous array of `dtype` (no copy when it is one)."""
    if not isinstance(records, np.ndarray) or records.dtype != dtype:
        raise TypeError(f"expected a numpy array of {dtype.itemsize}-byte records of the "
                        f"record dtype, got {getattr(records, 'dtype', type(records))}")
    return np.ascontiguousarray(records).reshape(-1)
