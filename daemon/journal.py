"""The journal: every operation the daemon takes off the ring and every batch
boundary it draws, on disk in append order before anything else happens to
them.  It is the source of truth on restart (the store only says which
batches are proven).

Append-only segment files journal-NNNNNN.zkj, rolled at `segment_bytes`;
each entry is a 32-byte header with two CRC-32s (csrc/formats/zk_store.h) and a
payload: the raw 64-byte operation records, or one batch mark.  An append of
a whole array of records is one positioned write of the array's own buffer;
a write that fails (a full disk) is truncated back, so the journal is always
a sequence of whole entries.  docs/STORE.md documents every byte, the repair
rule and the fsync policies.

The journal says its mode: every entry a zk-mode daemon writes is flagged
(formats.JOURNAL_ENTRY_ZK), as its records are a zk chain's, private, and
a transparent proof would publish them.  `mode_problem` is the start's
judgment of a journal (and `daemon --check-config`'s), from its entries,
its mark and its snapshots (which say their mode too); replay refuses an
entry of the other mode it meets (JournalModeError).  A zk journal an
earlier release wrote has unflagged entries and an empty file ZK_MARK_NAME
beside them, which is honoured, never made.
"""
from __future__ import annotations

import errno
import functools
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..engine.records import OP_DTYPE
from . import formats as fm
from . import perms
from . import snapshot
from .refusal import StartRefusal

log = logging.getLogger(__name__)

PREFIX, SUFFIX = "journal", ".zkj"
#: an empty file a zk daemon of an earlier release made in its journal
#: directory, whose entries it did not flag: the journal is a zk chain's
ZK_MARK_NAME = "zk-journal"
FSYNC_POLICIES = ("always", "batch", "interval", "never")
MIN_SEGMENT_BYTES = 256


class JournalError(fm.FileLogError):
    """The journal cannot be opened, written or read."""


class JournalFull(JournalError):
    """An append found the disk full (ENOSPC, EDQUOT) or the file size limit
    (EFBIG); nothing of it was written and the journal is as it was."""


class JournalCorrupt(fm.CorruptEntryMixin, JournalError):
    """A damaged entry that is not a torn tail: `path` and `offset` name it."""

    what = "journal entry"


class JournalModeError(StartRefusal, JournalError):
    """An entry of the other mode than the reader's (a zk daemon's read by a
    transparent one, or the reverse): `path` and `offset` name it.  No retry
    reads it otherwise: `unusable` (daemon/refusal.py)."""

    def __init__(self, path: str, offset: int, flags: int, zk: bool):
        self.path, self.offset = path, offset
        wrote = "a zk" if flags & fm.JOURNAL_ENTRY_ZK else "a transparent"
        super().__init__(errno.EINVAL, f"{path}: the journal entry at byte {offset} was written by {wrote} "
                         f"daemon, and this one reads it in {'zk' if zk else 'transparent'} mode: a journal "
                         "is all one mode (docs/STORE.md, \"The journal's mode\")", unusable=True)


class ReplayMismatch(StartRefusal, JournalError):
    """Whole entries that do not replay to what the daemon recorded: a batch
    mark that does not follow its symbol's last one, or whose operations do
    not end where it says (a journal from another configuration, or one
    edited by hand).  `unusable=True` where the configuration (or this
    release) is what the journal or the store does not fit (daemon/refusal.py)."""

    def __init__(self, message: str, unusable: bool = False):
        super().__init__(errno.EINVAL, f"journal replay: {message}", unusable=unusable)


@dataclass(frozen=True)
class BatchMark:
    """A closed batch: operations first_seq..last_seq (inclusive) of `symbol`
    form batch `batch_id`, to be proven at `priority` (0 critical .. 3 low);
    `resumed`: it begins where its stream resumed (daemon/shadow.py)."""

    symbol: int
    batch_id: int
    first_seq: int
    last_seq: int
    priority: int
    resumed: bool = False

    def __post_init__(self):
        for name, top in (("symbol", fm.U32), ("batch_id", fm.U64), ("first_seq", fm.U64),
                          ("last_seq", fm.U64), ("priority", 3)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or not 0 <= value <= top:
                raise ValueError(f"batch mark {name} {value!r} is not an integer in 0..{top}")
        if self.first_seq > self.last_seq:
            raise ValueError(f"batch mark: first_seq {self.first_seq} after last_seq {self.last_seq}")


@dataclass
class OpsEntry:
    """Operation records as one append wrote them, and when they were seen."""

    records: np.ndarray   # OP_DTYPE
    seen_ns: int


def _check_policy(fsync: str) -> str:
    if fsync not in FSYNC_POLICIES:
        raise ValueError(f"journal fsync policy {fsync!r} is not one of {', '.join(FSYNC_POLICIES)}")
    return fsync


class Journal:
    """An open journal directory, appended by one writer (the directory's
    LOCK file keeps a second one out).  fsync policies: "always" (every
    append), "batch" (each batch mark, and close), "interval" (on an append at
    least `fsync_interval` s after the last sync, and close), "never" (the OS
    writes back when it likes).  Segment rolls fsync the finished segment and
    the directory under every policy but "never".  `zk`: the daemon's mode
    ([proofs] mode = "zk"), which every entry written says and every entry
    read must say (module docstring).  `reader=True` opens a journal that
    holds the LOCK and writes nothing: a torn tail is left where it is
    (`torn_tail` says so; replay ends before it), no first segment is made,
    no append is taken, no segment removed.  For `zksidecar reprove`, which
    reads the journal and drops no bytes of it (the daemon's next start
    drops the tail, as it would have)."""

    def __init__(self, directory: str, segment_bytes: int = 64 << 20, fsync: str = "batch",
                 fsync_interval: float = 1.0, group: str | int | None = None, zk: bool = False,
                 reader: bool = False):
        self.fsync = _check_policy(fsync)
        self.reader = reader
        self.torn_tail: str | None = None    # a torn tail found and left in place, if any
        self.zk = zk
        self._flags = fm.JOURNAL_ENTRY_ZK if zk else 0
        if not isinstance(segment_bytes, int) or segment_bytes < MIN_SEGMENT_BYTES:
            raise ValueError(f"journal segment_bytes must be an integer >= {MIN_SEGMENT_BYTES}, "
                             f"got {segment_bytes!r}")
        if not fsync_interval >= 0:
            raise ValueError(f"journal fsync_interval must be >= 0 s, got {fsync_interval!r}")
        self.directory, self.segment_bytes, self.fsync_interval = directory, segment_bytes, fsync_interval
        self.repairs: list[str] = []     # what opening dropped, for the daemon's status
        self._lock = threading.Lock()
        self._fd = -1
        self._group = group              # files 0640 owned by it, directories 0750 (daemon/perms.py)
        try:
            perms.make_dirs(directory, group)
        except OSError as exc:
            raise JournalError(exc.errno, f"journal {directory}: {exc.strerror}") from exc
        self._lock_fd = fm.lock_directory(directory, "journal", JournalError, group)
        # a zk journal an earlier release wrote: its unflagged entries are read too
        self._old_zk = zk and os.path.exists(os.path.join(directory, ZK_MARK_NAME))
        try:
            self._open()
        except BaseException:
            if self._fd >= 0:           # the last segment, opened before its walk refused it
                os.close(self._fd)
            os.close(self._lock_fd)
            raise
        self._last_sync = time.monotonic()

    def _open(self) -> None:
        segments = fm.numbered_segments(self.directory, PREFIX, SUFFIX, JournalCorrupt)
        if not segments:
            self._number, self._size = -1, 0
            self.first = 0
            if not self.reader:
                self._create_segment()
            return
        self.first = segments[0][0]        # segments before it were removed (retention)
        self._number, path = segments[-1]
        self._fd = os.open(path, (os.O_RDONLY if self.reader else os.O_RDWR) | os.O_CLOEXEC)
        with open(path, "rb") as f:
            data = memoryview(f.read())
        walk = fm.EntryWalk(lambda o, n: data[o:o + n], len(data), fm.JOURNAL_LAYOUT, path, True,
                            JournalCorrupt)
        for _ in walk:
            pass
        self._size = walk.end
        if walk.torn and self.reader:
            self.torn_tail = (f"{path}: a torn tail of {len(data) - walk.end} bytes at byte {walk.end} "
                              f"({walk.torn})")
        elif walk.torn:
            os.ftruncate(self._fd, walk.end)
            if self.fsync != "never":
                os.fsync(self._fd)
            note = (f"{path}: dropped a torn tail of {len(data) - walk.end} bytes at byte "
                    f"{walk.end} ({walk.torn})")
            log.warning("journal repair: %s", note)
            self.repairs.append(note)

    @property
    def _path(self) -> str:
        return fm.segment_name(self.directory, PREFIX, SUFFIX, self._number)

    def _create_segment(self) -> None:
        self._number += 1
        try:
            self._fd = perms.create_file(self._path, os.O_RDWR | os.O_CLOEXEC, self._group)
        except OSError as exc:
            self._number -= 1
            cls = JournalFull if exc.errno in fm.FULL_ERRNOS else JournalError
            raise cls(exc.errno, f"journal: cannot create segment {self._number + 1} in "
                      f"{self.directory}: {exc.strerror}") from exc
        self._size = 0
        if self.fsync != "never":
            fm.fsync_directory(self.directory)

    def _roll(self) -> None:
        # the finished segment is durable before its successor exists, so a
        # torn entry can only ever be at the end of the last segment
        if self.fsync != "never":
            self._sync_locked()
        old = self._fd
        self._create_segment()
        os.close(old)

    # ------------------------------------------------------------ append --

    def append_ops(self, records: np.ndarray, seen_ns: int) -> tuple[int, int]:
        """Append operation records (an OP_DTYPE array, one or more) taken off
        the ring at `seen_ns`, as one entry written with one syscall.
        Returns the journal position just after it (segment, byte): where a
        snapshot taken after these records resumes the replay."""
        recs = fm.as_records(records, OP_DTYPE)
        if len(recs) == 0:
            raise ValueError("append_ops: no records")
        if len(recs) * OP_DTYPE.itemsize > fm.U32:
            raise ValueError(f"append_ops: {len(recs)} records do not fit one entry; append fewer")
        if not 0 <= seen_ns <= fm.U64:
            raise ValueError(f"append_ops: seen_ns {seen_ns} is not a u64")
        payload = recs.view(np.uint8)
        return self._append(fm.journal_header(fm.JOURNAL_OPS, payload, len(recs), seen_ns, self._flags),
                            payload, False)

    def append_batch(self, mark: BatchMark) -> None:
        """Append a batch boundary; under "batch" it is durable on return."""
        if not isinstance(mark, BatchMark):
            raise TypeError(f"append_batch takes a BatchMark, not {type(mark).__name__}")
        payload = fm.JOURNAL_MARK.pack(symbol=mark.symbol, priority=mark.priority,
                                       flags=fm.MARK_RESUMED if mark.resumed else 0, reserved=0,
                                       batch_id=mark.batch_id, first_seq=mark.first_seq,
                                       last_seq=mark.last_seq)
        self._append(fm.journal_header(fm.JOURNAL_BATCH, payload, 1, time.time_ns(), self._flags), payload,
                     True)

    def _append(self, header: bytes, payload, batch: bool) -> tuple[int, int]:
        with self._lock:
            if self._fd < 0:
                raise JournalError(errno.EBADF, f"journal {self.directory} is closed")
            if self.reader:         # after a torn tail left in place, an append would bury it
                raise JournalError(errno.EROFS, f"journal {self.directory} is opened as a reader: it "
                                   "takes no appends")
            if self._size and self._size + len(header) + len(payload) > self.segment_bytes:
                self._roll()
            self._size = fm.append_at(self._fd, self._size, [header, payload], self._path,
                                      JournalFull, JournalError)
            policy = self.fsync
            if policy == "always" or (policy == "batch" and batch) or (
                    policy == "interval" and time.monotonic() - self._last_sync >= self.fsync_interval):
                self._sync_locked()
            return self._number, self._size

    @property
    def position(self) -> tuple[int, int]:
        """Where the next entry goes: (segment, byte)."""
        with self._lock:
            return self._number, self._size

    def remove_before(self, number: int, older_than: float) -> list[str]:
        """Remove the segments numbered below `number` (never the one being
        written) whose files were last written more than `older_than`
        seconds ago, oldest first, stopping at the first that is not (the
        journal stays one run of segments); returns the paths removed.
        Journal retention: the caller knows no replay needs them."""
        removed = []
        with self._lock:
            if self.reader:
                raise JournalError(errno.EROFS, f"journal {self.directory} is opened as a reader: it "
                                   "removes no segment")
            now = time.time()
            while self.first < min(number, self._number):
                path = fm.segment_name(self.directory, PREFIX, SUFFIX, self.first)
                try:
                    if now - os.stat(path).st_mtime < older_than:
                        break
                    os.unlink(path)
                except OSError as exc:
                    log.error("journal retention: cannot remove %s: %s", path, exc.strerror)
                    break
                removed.append(path)
                self.first += 1
        if removed and self.fsync != "never":
            fm.fsync_directory(self.directory)
        return removed

    def _sync_locked(self) -> None:
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            cls = JournalFull if exc.errno in fm.FULL_ERRNOS else JournalError
            raise cls(exc.errno, f"{self._path}: fsync failed: {exc.strerror}") from exc
        self._last_sync = time.monotonic()

    def sync(self) -> None:
        """Make everything appended so far durable, whatever the policy."""
        with self._lock:
            if self._fd >= 0:
                self._sync_locked()

    def close(self) -> None:
        with self._lock:
            if self._lock_fd < 0:
                return
            try:
                if self._fd >= 0 and self.fsync != "never" and not self.reader:
                    self._sync_locked()
            finally:
                if self._fd >= 0:       # a reader of a journal without segments has none
                    os.close(self._fd)
                os.close(self._lock_fd)
                self._fd = self._lock_fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ replay --

    def replay(self, start: tuple[int, int] | None = None) -> Iterator[OpsEntry | BatchMark]:
        """Every entry, in append order, as of the call, from position
        `start` (segment, byte: an entry boundary; None: the first segment
        there is).  The tail was repaired on open, so any failed check here
        is corruption and raises JournalCorrupt naming the file and byte; an
        entry of the other mode raises JournalModeError (the start refused
        such a journal already: mode_problem)."""
        for entry, _ in self.entries(start):
            yield entry

    def entries(self, start: tuple[int, int] | None = None
                ) -> Iterator[tuple[OpsEntry | BatchMark, tuple[int, int]]]:
        """replay(), each entry with the journal position just after it
        (where a later read resumes).  Entries are read one at a time
        (positioned reads): memory holds one entry, never a segment."""
        with self._lock:
            segments = fm.numbered_segments(self.directory, PREFIX, SUFFIX, JournalCorrupt)
            current = (self._number, self._size) if self._fd >= 0 else (-1, 0)
        first, offset = start if start is not None else (segments[0][0] if segments else 0, 0)
        if segments and first < segments[0][0]:
            raise JournalCorrupt(fm.segment_name(self.directory, PREFIX, SUFFIX, first), 0,
                                 "the segment a read starts in was removed (journal retention)")
        for number, path in segments:
            if number < first:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise JournalCorrupt(path, 0, "the segment was removed while it was read "
                                     "(journal retention)") from None
            try:
                size = current[1] if number == current[0] else os.fstat(fd).st_size
                walk = fm.EntryWalk(functools.partial(_read_into, fd), size, fm.JOURNAL_LAYOUT, path,
                                    False, JournalCorrupt, start=offset if number == first else 0)
                for at, head, payload in walk:
                    yield self._entry(path, at, head, payload), (number, at + fm.HEADER_SIZE + head.length)
            finally:
                os.close(fd)

    def _entry(self, path: str, at: int, head, payload: bytes) -> OpsEntry | BatchMark:
        if head.flags != self._flags and not (self._old_zk and head.flags == 0):
            raise JournalModeError(path, at, head.flags, self.zk)
        if head.type == fm.JOURNAL_OPS:
            return OpsEntry(np.frombuffer(payload, dtype=OP_DTYPE), head.seen_ns)   # its own buffer
        return decode_mark(path, at, payload)


def decode_mark(path: str, at: int, payload) -> BatchMark:
    """The batch mark whose sound entry is at byte `at` of `path` (replay's,
    and `journal repair`'s judgment of a mark's contents).  JournalCorrupt
    if its fields are none a release writes (damage: repair sets it
    aside), `unusable` for flags this build does not know (another
    release's mark: left as it is).  A release that gives the reserved
    bytes a meaning says so by a flag, which is refused as unknown first:
    reserved bytes not zero under known flags are damage."""
    m = fm.JOURNAL_MARK.unpack(payload)
    if m.flags & ~fm.MARK_RESUMED:      # its checksum held: another release's mark, as in a header
        raise JournalCorrupt(path, at, f"{fm.UNKNOWN_FLAGS} {m.flags & ~fm.MARK_RESUMED:#x} in a batch mark "
                             f"(this build knows {fm.MARK_RESUMED:#x}, ZK_MARK_RESUMED)")
    if m.reserved:
        raise JournalCorrupt(path, at, f"a batch mark's reserved bytes are not zero ({m.reserved:#x})")
    try:
        return BatchMark(m.symbol, m.batch_id, m.first_seq, m.last_seq, m.priority,
                         bool(m.flags & fm.MARK_RESUMED))
    except ValueError as exc:
        raise JournalCorrupt(path, at, str(exc)) from None


def _read_into(fd: int, offset: int, n: int) -> bytearray:
    """`n` bytes at `offset`, in a buffer of their own (writable: the
    records read are handed on without another copy)."""
    buf = bytearray(n)
    got = os.preadv(fd, [buf], offset)
    return buf if got == n else buf[:got]


def first_entry_flags(directory: str) -> list[tuple[str, int]]:
    """(path, flags) of each segment of the journal at `directory` whose
    first entry's header is sound; a segment empty or damaged there says
    nothing (the journal's open and replay judge damage).  [] if there is no
    such directory; JournalError naming what cannot be read."""
    try:
        names = fm.segment_files(directory, PREFIX, SUFFIX)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise JournalError(exc.errno, f"journal {directory}: cannot read: {exc.strerror}") from None
    found = []
    for _, name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                head = fm.JOURNAL_LAYOUT.sound_header(f.read(fm.HEADER_SIZE))
        except FileNotFoundError:       # removed by a running daemon's retention meanwhile
            continue
        except OSError as exc:
            raise JournalError(exc.errno, f"{path}: cannot read: {exc.strerror}") from None
        if head is not None:
            found.append((path, head.flags))
    return found


def mode_problem(directory: str, zk: bool) -> str | None:
    """Why a daemon in this mode (`zk`) must not take the journal at
    `directory`, else None: a transparent daemon refuses a zk chain's (its
    unproven batches would be proven in the clear), a zk daemon a
    transparent chain's (a journal, as a store, is all one mode), judged
    from its entries and mark, then from its snapshots (snapshot.mode_problem).
    JournalError if a segment cannot be read (first_entry_flags)."""
    return _entries_mode_problem(directory, zk) or snapshot.mode_problem(directory, zk)


def _entries_mode_problem(directory: str, zk: bool) -> str | None:
    """mode_problem's judgment from the journal's entries and its mark."""
    # The first entry of each segment is enough: every start refuses a
    # journal of the other mode before it writes to it, so a journal's
    # entries are all of one mode, but for a zk journal an earlier release
    # wrote (unflagged entries, its mark, then the flagged ones this
    # release's zk starts add: a segment may start unflagged and go on
    # flagged).  Replay checks every entry all the same (Journal._entry).
    marked = os.path.exists(os.path.join(directory, ZK_MARK_NAME))
    firsts = first_entry_flags(directory)
    where = os.path.abspath(directory)
    if not zk:
        flagged = [path for path, flags in firsts if flags & fm.JOURNAL_ENTRY_ZK]
        if not flagged and not marked:
            return None
        why = (f"{os.path.basename(flagged[0])}'s entries are flagged zk" if flagged else
               f"its {ZK_MARK_NAME} mark, which a zk daemon of an earlier release made")
        return (f"{where} is a zk chain's journal ({why}): a transparent daemon would prove its unproven "
                "batches as transparent proofs, which carry their records, in the clear; set [proofs] mode = "
                "\"zk\", or give a new [journal] dir and a new [store] dir for a transparent chain")
    plain = [path for path, flags in firsts if not flags & fm.JOURNAL_ENTRY_ZK]
    if not plain or marked:
        return None
    flagged = [path for path, flags in firsts if flags & fm.JOURNAL_ENTRY_ZK]
    if flagged:     # only a zk start with the mark appends flagged entries to unflagged ones
        return (f"{where} is a zk chain's journal whose {ZK_MARK_NAME} mark was lost ("
                f"{os.path.basename(plain[0])}'s entries are not flagged zk, {os.path.basename(flagged[0])}'s "
                "are: a zk journal an earlier release wrote, which a zk daemon of this release went on with); "
                f"put back the empty file {os.path.join(where, ZK_MARK_NAME)}, which says its unflagged entries "
                "are a zk chain's too")
    return (f"{where} is a transparent chain's journal ({os.path.basename(plain[0])}'s entries are not flagged "
            f"zk, and there is no {ZK_MARK_NAME} mark of an earlier release's zk journal): a journal is all one "
            "mode; set [proofs] mode = \"transparent\", or give a new [journal] dir and a new [store] dir for a "
            "zk chain.  (A zk chain's journal written before zk journals were flagged or marked has neither: "
            f"if this is one, put the empty file {os.path.join(where, ZK_MARK_NAME)} beside it, which says its "
            "entries are a zk chain's)")


def set_aside_corruption(directory: str) -> list[str]:
    """`zksidecar journal repair DIR`: cut the journal at its first damaged
    entry (or missing segment), so that a daemon can start again: an entry
    whose header or payload fails its checks, or a batch mark whose
    contents replay calls damaged (decode_mark).  The bytes
    from there on, and every later segment, are renamed `<name>.corrupt-N`
    beside it (nothing is deleted).  Returns what was done, one line each;
    an intact journal is left as it is ([]).  A journal of another format
    version, or with entry or mark flags this build does not know, is not
    damaged: JournalError, nothing changed.  Recovery then
    rebuilds from the proof store every batch it proves; records after the
    cut that no proof holds are lost (their symbols resume past them)."""
    pat = re.compile(re.escape(PREFIX) + r"-(\d{6,})" + re.escape(SUFFIX) + "$")

    def segments() -> list[tuple[int, str]]:
        try:
            names = os.listdir(directory)
        except OSError as exc:      # missing, not a directory, no permission: said as the OS says it
            raise JournalError(exc.errno, f"{directory}: {exc.strerror}") from exc
        return sorted((int(m.group(1)), os.path.join(directory, name))
                      for name in names if (m := pat.match(name)))

    # a directory that holds no journal is not one to repair: refused before
    # its LOCK file is made there
    if not segments():
        raise JournalError(errno.ENOENT, f"{directory}: no journal segments ({PREFIX}-NNNNNN{SUFFIX}) here: "
                           "not a journal directory, nothing repaired")
    group = perms.group_of_dir(directory)       # what is set aside is shared as the journal is
    lock = fm.lock_directory(directory, "journal", JournalError, group)     # no daemon writes meanwhile
    try:
        found = segments()
        gap = next((k for k, (n, _) in enumerate(found) if n != found[0][0] + k), len(found))
        contiguous = [path for _, path in found[:gap]]
        notes = [_set_aside(path, 0, None, "after a missing segment", group) for _, path in found[gap:]]
        for number, path in enumerate(contiguous):
            with open(path, "rb") as f:
                data = memoryview(f.read())
            walk = fm.EntryWalk(lambda o, n: data[o:o + n], len(data), fm.JOURNAL_LAYOUT, path,
                                number == len(contiguous) - 1, JournalCorrupt)
            try:
                for at, head, payload in walk:      # a mark's contents judged as replay judges them
                    if head.type == fm.JOURNAL_BATCH:
                        decode_mark(path, at, payload)
            except JournalCorrupt as exc:
                if exc.unusable:        # another release's journal, not damage
                    raise JournalError(errno.EINVAL, f"{path}: {exc.reason}: a journal of another "
                                       "version of zksidecar, not a damaged one; not repaired") from None
                notes.append(_set_aside(path, exc.offset, data[exc.offset:], exc.reason, group))
                notes += [_set_aside(later, 0, None, "after the damaged entry", group)
                          for later in contiguous[number + 1:]]
                break
        return notes
    finally:
        os.close(lock)


def _set_aside(path: str, offset: int, tail, why: str, group: int | None) -> str:
    """`path` from byte `offset` on (`tail`; None: the whole segment) kept
    as `<name>.corrupt-N`: a whole segment renamed, its mode as it was; a
    tail copied into a file made with the journal's modes (daemon/perms.py,
    `group`), never left to the umask: it holds order flow too."""
    aside, k = f"{path}.corrupt-0", 0
    while os.path.exists(aside):
        k += 1
        aside = f"{path}.corrupt-{k}"
    if tail is None:                   # the whole segment
        os.rename(path, aside)
        return f"{path}: set aside whole as {aside} ({why})"
    fm.write_whole(aside, bytes(tail), True, JournalFull, JournalError, "a damaged journal tail", group)
    with open(path, "r+b") as f:
        f.truncate(offset)
        os.fsync(f.fileno())
    fm.fsync_directory(os.path.dirname(path) or ".")
    return f"{path}: {len(tail)} bytes from byte {offset} set aside as {aside} ({why})"
