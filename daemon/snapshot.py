"""Snapshots of the shadow books: where a restart's journal replay begins.

A snapshot is the state a journal replay has reached at one journal
position (a segment and a byte offset, an entry boundary): every shadow
book between batches (its cells, the id of its next batch, records past a
gap waiting to resume its stream), and the records of symbols not started
yet.  The daemon's sequencer takes one at a checkpoint (daemon/sequencer.py
SequencerThread): it closes every open batch, marks them, and writes the
state it has after the last journal entry it sequenced, so a replay from
that position, skipping the marks of batches the snapshot already counts,
reaches exactly the state a replay of the whole journal reaches.

The file format (csrc/formats/zk_store.h zk_snapshot_*, docs/STORE.md
"Snapshots") has one header with a CRC-32 of itself and one of the body;
a file is written whole to a temporary name, fsynced, renamed and the
directory fsynced, so a crash leaves the old snapshot or the new one, never
half of one.  Anything wrong with a snapshot on reading (a checksum, a
size, a book that is not a book) is SnapshotCorrupt naming the file and
byte: recovery sets it aside (renamed *.corrupt-N, nothing deleted) and
uses the one before it, or the whole journal.  A whole snapshot written
under another book capacity, a larger ops-row cap, or more books than
book.max_symbols, than the configuration's is not damaged: it is left in
place and the start refused, naming the key (`unfit`; `zksidecar daemon
--check-config` says so too).

A snapshot says the mode of the daemon that wrote it (its header's flags,
format version 2): a zk chain's books are its private state, which a
transparent daemon would go on from and prove in the clear.  A start
refuses a journal holding a snapshot of the other mode (`mode_problem`,
run by journal.mode_problem).  A version-1 snapshot, an earlier release's,
has no mode: it is read as before, and its journal's entries and the store
judge the mode.
"""
from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field

import numpy as np

from ..engine.records import OP_DTYPE
from . import formats as fm
from . import perms
from .shadow import ShadowState

log = logging.getLogger("zksidecar.snapshot")

PREFIX, SUFFIX = "snapshot", ".zks"
_NAME = re.compile(re.escape(PREFIX) + r"-(\d{6,})-(\d{12,})" + re.escape(SUFFIX) + "$")
HEADER = fm.SNAPSHOT_HEADER
BOOK = fm.SNAPSHOT_BOOK
UNSTARTED = fm.SNAPSHOT_UNSTARTED
SEEN_DTYPE = np.dtype("<i8")
#: a snapshot's own header checksum covers the bytes before it
HEADER_CRC_AT = HEADER.offset("header_crc")


class SnapshotError(fm.FileLogError):
    """A snapshot cannot be written or read."""


class SnapshotFull(SnapshotError):
    """The disk is full (ENOSPC, EDQUOT, EFBIG): no snapshot was written."""


class SnapshotCorrupt(fm.CorruptEntryMixin, SnapshotError):
    """A damaged snapshot: `path` and `offset` name where."""

    what = "snapshot"


@dataclass
class Snapshot:
    """The replay state at journal segment `segment`, byte `offset`."""

    segment: int
    offset: int
    capacity: int
    trace_length: int
    books: list[ShadowState] = field(default_factory=list)
    unstarted: dict = field(default_factory=dict)     # symbol: (records, seen times)
    path: str = ""
    symbols: int = -1           # books, as the header counts them (read_header); -1: len(books)
    # written by a zk-mode daemon; None: not said (format version 1).  Asked
    # of every writer: a default would make a forgetful one's mode up
    zk: bool | None = field(kw_only=True)

    @property
    def book_count(self) -> int:
        return len(self.books) if self.symbols < 0 else self.symbols

    @property
    def position(self) -> tuple[int, int]:
        return self.segment, self.offset

    def next_batch_ids(self) -> dict[int, int]:
        return {b.symbol: b.next_batch_id for b in self.books}


# --------------------------------------------------------------- bytes --

def encode(snap: Snapshot, created_ns: int | None = None) -> bytes:
    """The snapshot file's bytes, in this build's format version: they say
    its mode (ValueError for a snapshot whose mode is not known)."""
    if snap.zk is None:
        raise ValueError("a snapshot of an unknown mode is not written again: its mode would be made up")
    body = []
    for b in snap.books:
        cells = np.ascontiguousarray(b.cells, dtype="<u4")
        held = fm.as_records(b.held, OP_DTYPE)
        body += [BOOK.pack(symbol=b.symbol, flags=fm.SNAPSHOT_RESUMED if b.resumed else 0,
                           next_batch_id=b.next_batch_id, n_cells=len(cells), held=len(held),
                           proven_ts=b.proven_ts),
                 cells.tobytes(), held.tobytes(), np.asarray(b.held_seen, SEEN_DTYPE).tobytes()]
    for symbol, (recs, seen) in sorted(snap.unstarted.items()):
        recs = fm.as_records(recs, OP_DTYPE)
        body += [UNSTARTED.pack(symbol=symbol, count=len(recs), reserved=0), recs.tobytes(),
                 np.asarray(seen, SEEN_DTYPE).tobytes()]
    data = b"".join(body)
    head = HEADER.pack(magic=fm.SNAPSHOT_MAGIC, version=fm.SNAPSHOT_VERSION,
                       flags=fm.SNAPSHOT_ZK if snap.zk else 0, reserved=(0, 0),
                       segment=snap.segment, symbols=len(snap.books), offset=snap.offset,
                       created_ns=time.time_ns() if created_ns is None else created_ns,
                       capacity=snap.capacity, trace_length=snap.trace_length,
                       unstarted=len(snap.unstarted), reserved2=0, body_length=len(data),
                       body_crc=fm.crc32(data), header_crc=0)
    head = head[:HEADER_CRC_AT] + fm.crc32(head[:HEADER_CRC_AT]).to_bytes(4, "little")
    return head + data


class _Reader:
    """Reads a body's parts in order, each checked against what is left
    (the sizes are claimed by the file: untrusted)."""

    def __init__(self, data: bytes, at: int, path: str):
        self.data, self.at, self.path = memoryview(data), at, path

    def take(self, n: int, what: str) -> memoryview:
        if n > len(self.data) - self.at:
            raise SnapshotCorrupt(self.path, self.at, f"{what}: {n} bytes claimed, "
                                  f"{len(self.data) - self.at} left")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def array(self, count: int, dtype: np.dtype, what: str) -> np.ndarray:
        return np.frombuffer(self.take(count * dtype.itemsize, what), dtype=dtype).copy()


def _header(data: bytes, path: str):
    """The header at the start of `data`, checked on its own (SnapshotCorrupt
    otherwise)."""
    if len(data) < HEADER.size:
        raise SnapshotCorrupt(path, 0, f"a short header ({len(data)} of {HEADER.size} bytes)")
    h = HEADER.unpack(data)
    if h.magic != fm.SNAPSHOT_MAGIC:
        raise SnapshotCorrupt(path, 0, "not a snapshot (bad magic)")
    if fm.crc32(data[:HEADER_CRC_AT]) != h.header_crc:
        raise SnapshotCorrupt(path, 0, "header checksum fails")
    if h.version not in (fm.SNAPSHOT_VERSION, fm.SNAPSHOT_VERSION_BEFORE_MODE):
        raise SnapshotCorrupt(path, 4, f"{fm.OTHER_VERSION} {h.version} (this build reads "
                              f"{fm.SNAPSHOT_VERSION}, and {fm.SNAPSHOT_VERSION_BEFORE_MODE} without its mode)")
    if any(h.reserved) or h.reserved2 or (h.version == fm.SNAPSHOT_VERSION_BEFORE_MODE and h.flags):
        raise SnapshotCorrupt(path, 5, "reserved bytes are not zero")
    if h.flags & ~fm.SNAPSHOT_ZK:
        raise SnapshotCorrupt(path, 5, f"{fm.UNKNOWN_FLAGS} {h.flags & ~fm.SNAPSHOT_ZK:#x} (this build knows "
                              f"{fm.SNAPSHOT_ZK:#x}, ZK_SNAPSHOT_ZK)")
    return h


def _mode(h) -> bool | None:
    """Was the snapshot of header `h` written by a zk-mode daemon?  None:
    a version-1 snapshot does not say."""
    return None if h.version == fm.SNAPSHOT_VERSION_BEFORE_MODE else bool(h.flags & fm.SNAPSHOT_ZK)


def decode(data: bytes, path: str) -> Snapshot:
    """A snapshot file's bytes, every check made (SnapshotCorrupt otherwise).
    The books' cells are checked as books when restored (Sequencer.restore)."""
    h = _header(data, path)
    if h.body_length != len(data) - HEADER.size:
        raise SnapshotCorrupt(path, HEADER.size, f"a body of {len(data) - HEADER.size} bytes, "
                              f"the header says {h.body_length}")
    if fm.crc32(data[HEADER.size:]) != h.body_crc:
        raise SnapshotCorrupt(path, HEADER.size, "body checksum fails")
    r = _Reader(data, HEADER.size, path)
    snap = Snapshot(h.segment, h.offset, h.capacity, h.trace_length, path=path, zk=_mode(h))
    seen_symbols = set()
    for k in range(h.symbols):
        at = r.at
        b = BOOK.unpack(r.take(BOOK.size, f"book {k}"))
        if b.flags & ~fm.SNAPSHOT_RESUMED:
            raise SnapshotCorrupt(path, at, f"book {k}: unknown flags {b.flags:#x}")
        if b.symbol in seen_symbols:
            raise SnapshotCorrupt(path, at, f"book {k}: symbol {b.symbol} twice")
        seen_symbols.add(b.symbol)
        cells = r.array(b.n_cells, np.dtype("<u4"), f"book {k} (symbol {b.symbol}) cells")
        held = r.array(b.held, OP_DTYPE, f"book {k} held records")
        seen = r.array(b.held, SEEN_DTYPE, f"book {k} held seen times")
        snap.books.append(ShadowState(b.symbol, b.next_batch_id, cells.astype(np.uint32), held,
                                      seen.astype(np.int64), bool(b.flags & fm.SNAPSHOT_RESUMED),
                                      int(b.proven_ts)))
    for k in range(h.unstarted):
        at = r.at
        u = UNSTARTED.unpack(r.take(UNSTARTED.size, f"unstarted stream {k}"))
        if u.reserved or u.symbol in seen_symbols or u.symbol in snap.unstarted:
            raise SnapshotCorrupt(path, at, f"unstarted stream {k}: symbol {u.symbol} repeated "
                                  "or reserved bytes set")
        snap.unstarted[u.symbol] = (r.array(u.count, OP_DTYPE, f"unstarted stream {k} records"),
                                    r.array(u.count, SEEN_DTYPE, f"unstarted stream {k} seen "
                                            "times").astype(np.int64))
    if r.at != len(data):
        raise SnapshotCorrupt(path, r.at, f"{len(data) - r.at} bytes after the last section")
    return snap


# --------------------------------------------------------------- files --

def file_name(segment: int, offset: int) -> str:
    return f"{PREFIX}-{segment:06d}-{offset:012d}{SUFFIX}"


def listed(directory: str) -> list[tuple[int, int, str]]:
    """(segment, offset, path) of every snapshot file in `directory`, oldest
    (lowest journal position) first."""
    found = []
    for name in os.listdir(directory):
        m = _NAME.match(name)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), os.path.join(directory, name)))
    return sorted(found)


def read_header(path: str) -> Snapshot:
    """A snapshot's header alone (no books): what it was written under, its
    position.  SnapshotCorrupt if the header itself is damaged (recovery
    reads the whole file, and sets such a one aside)."""
    try:
        with open(path, "rb") as f:
            data = f.read(HEADER.size)
    except OSError as exc:
        raise SnapshotError(exc.errno, f"{path}: cannot read: {exc.strerror}") from exc
    h = _header(data, path)
    return Snapshot(h.segment, h.offset, h.capacity, h.trace_length, path=path, symbols=h.symbols, zk=_mode(h))


def mode_problem(directory: str, zk: bool) -> str | None:
    """Why a daemon of this mode (`zk`) must not take the journal at
    `directory` for a snapshot in it of the other mode (its header says),
    else None.  A snapshot that does not say (format version 1) or whose
    header is damaged (recovery's to set aside) says nothing."""
    try:
        found = listed(directory)
    except FileNotFoundError:
        return None
    for _, _, path in found:
        try:
            snap = read_header(path)
        except SnapshotError:
            continue
        if snap.zk is None or snap.zk == zk:
            continue
        path = os.path.abspath(path)
        if snap.zk:
            return (f"{path} is a zk chain's snapshot (its header is flagged zk): a transparent daemon would go "
                    "on from its books, a zk chain's private state, and prove the batches after it in the "
                    "clear; set [proofs] mode = \"zk\", or give a new [journal] dir and a new [store] dir for a "
                    "transparent chain")
        return (f"{path} is a transparent chain's snapshot (its header is not flagged zk): a journal is all one "
                "mode; set [proofs] mode = \"transparent\", or give a new [journal] dir and a new [store] dir "
                "for a zk chain")
    return None


def another_release(exc: SnapshotCorrupt) -> str | None:
    """Why a start refuses the snapshot `exc` names, if its sound header
    says another format version or flags this build does not know: another
    release's snapshot (a newer one's, after a downgrade), not damage, so
    it is left as it is (daemon/recovery.py refuse_other_release, `daemon
    --check-config`); None if `exc` is damage."""
    if not exc.unusable:
        return None
    return (f"{exc}: a snapshot another release of zksidecar wrote, not a damaged one; it is left as it "
            "is: run that release, or move the file out of the journal directory (the start then goes on "
            "from the snapshot before it, or the journal's start while the journal holds it)")


def unfit(snap: Snapshot, capacity: int, trace_length: int, max_symbols: int | None = None,
          zk: bool = False, trace_key: str = "book.trace_length") -> tuple[str, str] | None:
    """Why a whole snapshot cannot be used by a daemon configured for
    `capacity`-slot books, an ops-row cap of `trace_length` and at most
    `max_symbols` books (None: no bound): (the configuration key, why);
    None if it can.  Not damage: the configuration changed a setting the
    journal's books fix, so the snapshot is left as it is and reverting
    the configuration works.

    The books a snapshot holds need book.max_symbols of at least their
    count.  A chain's book capacity is fixed (every proof's book domain, every
    snapshot's cells).  The ops-row cap may grow between runs (a snapshot
    is taken between batches: its books hold no open batch, and the
    batches already cut fit any larger cap), never shrink: the batches the
    journal holds were cut under the cap of their run, and may take up to
    it.  In zk mode (`zk`) every batch is proven in an ops trace of exactly
    the cap, a parameter of the chain (docs/ZK.md): it cannot change.
    `trace_key` names the key that set the cap (book.trace_length, or
    batch.max_batch_size when it is sized automatically)."""
    where = f"snapshot {snap.path}"
    if max_symbols is not None and snap.book_count > max_symbols:
        return "book.max_symbols", (
            f"this journal has {snap.book_count} symbols' books ({where}); set [book] "
            f"max_symbols to at least {snap.book_count}")
    if snap.capacity != capacity:
        return "book.capacity", (
            f"this journal's books have {snap.capacity} slots ({where}); a chain's book capacity "
            f"cannot change between runs: set [book] capacity = {snap.capacity} (or start a new "
            "chain with an empty [journal] dir and [store] dir)")
    if zk and snap.trace_length != trace_length:
        return trace_key, (
            f"it makes the ops trace {trace_length} rows; this journal's zk chain proves every "
            f"batch in {snap.trace_length} ({where}), which cannot change between runs: set "
            f"[book] trace_length = {snap.trace_length}, or [batch] max_batch_size back to its "
            "value then")
    if snap.trace_length > trace_length:
        return trace_key, (
            f"it makes the cap on a batch's ops rows {trace_length}, below the {snap.trace_length} "
            f"this journal's batches were cut under ({where}); the cap may grow between runs, "
            f"never shrink: set [book] trace_length = {snap.trace_length}, which keeps it whatever "
            "[batch] max_batch_size (smaller batches too)")
    return None


def read(path: str) -> Snapshot:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise SnapshotError(exc.errno, f"{path}: cannot read: {exc.strerror}") from exc
    snap = decode(data, path)
    m = _NAME.search(os.path.basename(path))
    if m is None or (int(m.group(1)), int(m.group(2))) != snap.position:
        raise SnapshotCorrupt(path, 8, f"it says journal segment {snap.segment} byte "
                              f"{snap.offset}, its name says otherwise")
    return snap


def write(directory: str, snap: Snapshot, fsync: bool = True,
          group: str | int | None = None) -> str:
    """Write `snap` atomically (a temporary name, fsync, rename, directory
    fsync); returns its path.  A full disk raises SnapshotFull, anything
    else SnapshotError; either way no file is left behind."""
    path = os.path.join(directory, file_name(snap.segment, snap.offset))
    fm.write_whole(path, encode(snap), fsync, SnapshotFull, SnapshotError, "a snapshot", group)
    snap.path = path
    return path


def set_aside(path: str, why: str) -> str:
    """Rename a snapshot that cannot be used to `<name>.corrupt-N` (nothing
    is deleted) and say so in the log; returns the new name."""
    aside, k = f"{path}.corrupt-0", 0
    while os.path.exists(aside):
        k += 1
        aside = f"{path}.corrupt-{k}"
    try:
        os.rename(path, aside)
    except OSError as exc:
        log.error("snapshot %s cannot be used (%s) nor set aside (%s); ignored", path, why,
                  exc.strerror)
        return path
    log.warning("snapshot %s cannot be used: %s; set aside as %s, the one before it is used "
                "(or the whole journal)", path, why, aside)
    return aside


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise SnapshotError(exc.errno, f"{path}: cannot remove: {exc.strerror}") from exc
