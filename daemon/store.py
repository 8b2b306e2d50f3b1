"""The proof store: every batch proof file the workers produce, append-only,
with an index from (symbol, batch id) to where the proof lies.

Data segments store-NNNNNN.zkd hold entries (a 32-byte header with two
CRC-32s, then the proof file's bytes); index.zki holds one 40-byte entry per
proof, in data order, so entry k is proof number k, the completion record's
proof_index (csrc/formats/zk_store.h, docs/STORE.md).  The data is the truth: the
index is checked against it on open and rebuilt from it where it is missing,
torn or wrong.  A put writes the data (and fsyncs it), then the index entry;
a put that fails, a full disk included, is undone, so the store is exactly
as before.  `zksidecar verify --store DIR` (tools/proofs.py) reads it.
"""
from __future__ import annotations

import bisect
import contextlib
import errno
import logging
import os
import threading
from dataclasses import dataclass

from ..engine.records import NO_PROOF
from . import formats as fm
from . import perms

log = logging.getLogger(__name__)

PREFIX, SUFFIX = "store", ".zkd"
INDEX_NAME = "index.zki"
INDEX_SIZE = fm.STORE_INDEX.size
MIN_SEGMENT_BYTES = 256
HEADER_DAMAGED = "its data entry header is damaged"


class StoreError(fm.FileLogError):
    """The store cannot be opened, written or read, or refuses a put."""


class StoreFull(StoreError):
    """A put found the disk full (ENOSPC, EDQUOT) or the file size limit
    (EFBIG); nothing of it was kept and the store is as it was."""


class StoreCorrupt(fm.CorruptEntryMixin, StoreError):
    """Damaged data that is not a torn tail: `path` and `offset` name it."""

    what = "proof store entry"


@dataclass(frozen=True)
class Location:
    """Where one proof lies: its data entry header is at `offset` of
    segment `segment`, followed by `length` bytes whose CRC-32 is `crc`."""

    symbol: int
    batch_id: int
    segment: int
    offset: int
    length: int
    crc: int

    @property
    def end(self) -> int:
        return self.offset + fm.HEADER_SIZE + self.length


def _entry_problem(loc: Location, raw: bytes, whole: bool) -> str | None:
    """What is wrong with the data entry `raw` (its header, and its proof
    bytes too when `whole`) as the proof `loc` names; None if nothing."""
    if len(raw) < fm.HEADER_SIZE + (loc.length if whole else 0):
        return "its data entry is cut short"
    h = fm.STORE_HEADER.unpack(raw)
    if h.magic != fm.STORE_MAGIC or fm.crc32(raw[:fm.HEADER_CRC_AT]) != h.header_crc \
            or h.version != fm.VERSION:
        return HEADER_DAMAGED
    if (h.symbol, h.batch_id, h.length, h.data_crc) != (loc.symbol, loc.batch_id, loc.length, loc.crc):
        return "its data entry is another proof"
    if whole and fm.crc32(raw[fm.HEADER_SIZE:]) != loc.crc:
        return "its proof bytes fail their checksum"
    return None


class ProofStore:
    """An open proof store directory.  One writer at a time (its LOCK file);
    `readonly=True` opens without the lock and without repairing anything,
    for a verifier beside a running daemon: it sees the proofs whose data
    is whole, and leaves a torn tail for the writer to deal with."""

    def __init__(self, directory: str, fsync: bool = True, segment_bytes: int = 256 << 20,
                 readonly: bool = False, group: str | int | None = None):
        if not isinstance(segment_bytes, int) or segment_bytes < MIN_SEGMENT_BYTES:
            raise ValueError(f"store segment_bytes must be an integer >= {MIN_SEGMENT_BYTES}, "
                             f"got {segment_bytes!r}")
        self.directory, self.fsync, self.segment_bytes = directory, fsync, segment_bytes
        self.readonly = readonly
        self._group = group              # files 0640 owned by it, directories 0750 (daemon/perms.py)
        self.repairs: list[str] = []     # what opening changed, for the daemon's status
        self._entries: list[Location] = []
        self._number: dict[tuple[int, int], int] = {}
        self._batches: dict[int, list[int]] = {}
        self._lock = threading.Lock()
        self._fd = self._index_fd = self._lock_fd = -1
        if readonly:
            if not os.path.isdir(directory):
                raise StoreError(errno.ENOENT, f"proof store {directory}: no such directory")
        else:
            try:
                perms.make_dirs(directory, group)
            except OSError as exc:
                raise StoreError(exc.errno, f"proof store {directory}: {exc.strerror}") from exc
            self._lock_fd = fm.lock_directory(directory, "proof store", StoreError, group)
        try:
            self._open()
        except BaseException:
            self._close_fds()
            raise

    # -------------------------------------------------------------- open --

    def _segment_path(self, number: int) -> str:
        return fm.segment_name(self.directory, PREFIX, SUFFIX, number)

    @property
    def _index_path(self) -> str:
        return os.path.join(self.directory, INDEX_NAME)

    def _open(self) -> None:
        paths = fm.list_segments(self.directory, PREFIX, SUFFIX, StoreCorrupt)
        sizes = [os.path.getsize(p) for p in paths]
        try:
            with open(self._index_path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raw = b""
        kept, why = self._check_index(raw, paths, sizes)
        new = self._scan_data(paths, sizes)
        if self.readonly:
            return
        if why or new:
            note = (f"{self._index_path}: entries from {kept} on rebuilt from the data ("
                    + (why or "the data holds proofs the index does not list") + ")")
            log.warning("proof store repair: %s", note)
            self.repairs.append(note)
        if not paths:
            self._segment = -1
            self._new_segment()
        else:
            self._segment = len(paths) - 1
            self._fd = os.open(paths[-1], os.O_RDWR | os.O_CLOEXEC)
            self._size = sizes[-1]
        self._index_fd = perms.open_or_create(self._index_path, os.O_RDWR | os.O_CLOEXEC, self._group)
        if why or new:
            os.ftruncate(self._index_fd, kept * INDEX_SIZE)
            entries = b"".join(self._index_bytes(loc) for loc in self._entries[kept:])
            if entries:
                fm.append_at(self._index_fd, kept * INDEX_SIZE, [entries], self._index_path,
                             StoreFull, StoreError)
            if self.fsync:
                os.fsync(self._index_fd)

    @staticmethod
    def _index_bytes(loc: Location) -> bytes:
        return fm.index_entry(loc.symbol, loc.segment, loc.batch_id, loc.offset, loc.length, loc.crc)

    def _check_index(self, raw: bytes, paths: list[str], sizes: list[int]) -> tuple[int, str | None]:
        """Keep the index entries that agree with the data, up to the first
        that does not: (how many, why the rest was dropped or None)."""
        count = len(raw) // INDEX_SIZE
        why = f"a torn entry of {len(raw) % INDEX_SIZE} bytes" if len(raw) % INDEX_SIZE else None
        with contextlib.ExitStack() as files:     # each segment opened once, however many proofs
            opened = {}

            def file(number: int):
                if number not in opened:
                    opened[number] = files.enter_context(open(paths[number], "rb"))
                return opened[number]

            return self._index_prefix(raw, count, why, paths, sizes, file)

    def _index_prefix(self, raw, count, why, paths, sizes, file) -> tuple[int, str | None]:
        # where the next entry must start: entries tile the data with no gaps
        seg, off = 0, 0
        for k in range(count):
            chunk = raw[k * INDEX_SIZE:(k + 1) * INDEX_SIZE]
            e = fm.STORE_INDEX.unpack(chunk)
            sym, bid, segment = e.symbol, e.batch_id, e.segment
            loc = Location(sym, bid, segment, e.offset, e.length, e.data_crc)
            if fm.crc32(chunk[:fm.INDEX_CRC_AT]) != e.entry_crc or e.reserved:
                return k, f"entry {k} fails its checksum"
            if seg < len(paths) and segment == seg + 1 and off == sizes[seg]:
                seg, off = segment, 0        # the previous segment ends exactly there
            if (segment, e.offset) != (seg, off) or segment >= len(paths) or loc.end > sizes[segment]:
                return k, f"entry {k} does not follow the previous one in the data"
            if (sym, bid) in self._number and not self._damaged(self._entries[self._number[sym, bid]],
                                                                 file):
                return k, f"entry {k} repeats symbol {sym} batch {bid}, whose proof is sound"
            problem = self._check_data(loc, file(segment), whole=(segment == len(paths) - 1
                                                                  and loc.end == sizes[segment]))
            if problem and not (problem == HEADER_DAMAGED and k + 1 < count):
                # (a damaged header with entries after it: the index says where it
                # ends, so it is kept, damaged, to be superseded)
                return k, f"entry {k}: {problem}"
            self._add(loc)
            off = loc.end
        return count, why

    @staticmethod
    def _check_data(loc: Location, f, whole: bool) -> str | None:
        """Does the data entry at `loc` (in the open segment file `f`) say
        what the index says?  `whole` also checks the proof bytes (for the
        last entry, where a torn write could have left a good header over
        bad bytes)."""
        f.seek(loc.offset)
        return _entry_problem(loc, f.read(fm.HEADER_SIZE + loc.length if whole
                                          else fm.HEADER_SIZE), whole)

    @staticmethod
    def _damaged(loc: Location, file) -> bool:
        """Do the proof bytes at `loc` (its segment opened by `file(n)`) fail
        their checksums?  Only such a proof may be superseded by a later
        entry of the same batch (put(replace=True))."""
        f = file(loc.segment)
        f.seek(loc.offset)
        return _entry_problem(loc, f.read(fm.HEADER_SIZE + loc.length), True) is not None

    def _read_whole(self, loc: Location) -> bytes:
        with open(self._segment_path(loc.segment), "rb") as f:
            f.seek(loc.offset)
            return f.read(fm.HEADER_SIZE + loc.length)

    def _scan_data(self, paths: list[str], sizes: list[int]) -> bool:
        """Index the data entries after the last one the index vouched for;
        a torn tail of the last segment is truncated (unless read-only).
        True if any entry was found."""
        last = self._entries[-1] if self._entries else None
        seg, start = (last.segment, last.end) if last else (0, 0)
        found = False
        for number in range(seg, len(paths)):
            path = paths[number]
            with open(path, "rb") as f:
                def read(o, n, f=f):
                    f.seek(o)
                    return f.read(n)
                walk = fm.EntryWalk(read, sizes[number], fm.STORE_LAYOUT, path,
                                    number == len(paths) - 1, StoreCorrupt,
                                    start if number == seg else 0, damaged_payloads=True)
                for at, h, data in walk:
                    key = (h.symbol, h.batch_id)
                    if key in self._number and _entry_problem(
                            earlier := self._entries[self._number[key]],
                            self._read_whole(earlier), True) is None:
                        raise StoreCorrupt(path, at, f"a second proof of symbol {h.symbol} batch "
                                           f"{h.batch_id}, whose first proof is sound")
                    self._add(Location(h.symbol, h.batch_id, number, at, h.length, h.data_crc))
                    found = True
            if walk.torn:
                note = (f"{path}: dropped a torn tail of {sizes[number] - walk.end} bytes at byte "
                        f"{walk.end} ({walk.torn})")
                sizes[number] = walk.end
                if not self.readonly:
                    with open(path, "r+b") as f:
                        f.truncate(walk.end)
                        if self.fsync:
                            os.fsync(f.fileno())
                    log.warning("proof store repair: %s", note)
                    self.repairs.append(note)
        return found

    def _add(self, loc: Location) -> None:
        """Index `loc`; a later entry of a batch supersedes an earlier one."""
        key = (loc.symbol, loc.batch_id)
        if key not in self._number:
            bisect.insort(self._batches.setdefault(loc.symbol, []), loc.batch_id)
        self._number[key] = len(self._entries)
        self._entries.append(loc)

    # --------------------------------------------------------------- put --

    def _new_segment(self) -> None:
        number = self._segment + 1
        path = self._segment_path(number)
        try:
            fd = perms.create_file(path, os.O_RDWR | os.O_CLOEXEC, self._group)
        except OSError as exc:
            cls = StoreFull if exc.errno in fm.FULL_ERRNOS else StoreError
            raise cls(exc.errno, f"proof store: cannot create {path}: {exc.strerror}") from exc
        if self.fsync:
            fm.fsync_directory(self.directory)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._segment, self._size = fd, number, 0

    def put(self, symbol: int, batch_id: int, data: bytes, replace: bool = False) -> int:
        """Store the proof of `symbol`'s batch `batch_id`; returns its
        proof_index.  Durable on return when the store fsyncs.  Raises
        StoreError for a duplicate (no batch is proven twice) unless
        `replace` and the stored proof is damaged (check): then this one
        supersedes it.  StoreFull when the disk is full; a failed put leaves
        the store as it was."""
        if not 0 <= symbol <= fm.U32 or not 0 <= batch_id <= fm.U64:
            raise ValueError(f"symbol {symbol} / batch id {batch_id} out of range (u32 / u64)")
        data = memoryview(data).cast("B")
        if not 0 < len(data) <= fm.U32:
            raise ValueError(f"a proof of {len(data)} bytes (1 .. 2^32 - 1)")
        with self._lock:
            if self._fd < 0:
                raise StoreError(errno.EBADF, f"proof store {self.directory} is "
                                 + ("read-only" if self.readonly else "closed"))
            if (symbol, batch_id) in self._number and not (replace and self._problem(symbol, batch_id)):
                raise StoreError(errno.EEXIST, f"proof store: symbol {symbol} batch {batch_id} is "
                                 f"already stored (proof {self._number[(symbol, batch_id)]}); "
                                 "no batch is proven twice")
            number = len(self._entries)
            if number >= NO_PROOF:
                raise StoreError(errno.EFBIG, f"proof store {self.directory} holds {number} proofs, "
                                 "the most a u32 proof_index can name")
            if self._size and self._size + fm.HEADER_SIZE + len(data) > self.segment_bytes:
                if self.fsync:
                    self._durable(self._fd, self._segment_path(self._segment))
                self._new_segment()
            start, path = self._size, self._segment_path(self._segment)
            loc = Location(symbol, batch_id, self._segment, start, len(data), fm.crc32(data))
            header = fm.store_header(symbol, batch_id, len(data), loc.crc)
            end = fm.append_at(self._fd, start, [header, data], path, StoreFull, StoreError)
            try:
                if self.fsync:
                    self._durable(self._fd, path)
                fm.append_at(self._index_fd, number * INDEX_SIZE, [self._index_bytes(loc)],
                             self._index_path, StoreFull, StoreError)
            except StoreError:
                os.ftruncate(self._fd, start)     # the put did not happen, after a crash too
                if self.fsync:
                    os.fdatasync(self._fd)
                raise
            self._size = end
            self._add(loc)
            return number

    @staticmethod
    def _durable(fd: int, path: str) -> None:
        try:
            os.fdatasync(fd)
        except OSError as exc:
            cls = StoreFull if exc.errno in fm.FULL_ERRNOS else StoreError
            raise cls(exc.errno, f"{path}: fsync failed ({exc.strerror}); the proof was not "
                      "kept") from exc

    # -------------------------------------------------------------- read --

    def has(self, symbol: int, batch_id: int) -> bool:
        return (symbol, batch_id) in self._number

    def proof_index(self, symbol: int, batch_id: int) -> int:
        """The proof's entry number (what a completion record carries)."""
        try:
            return self._number[(symbol, batch_id)]
        except KeyError:
            raise KeyError(f"proof store: no proof of symbol {symbol} batch {batch_id}") from None

    def check(self, symbol: int, batch_id: int) -> str | None:
        """What is wrong with the stored proof of this batch (its bytes
        against both checksums), or None if nothing is."""
        with self._lock:
            return self._problem(symbol, batch_id)

    def _problem(self, symbol: int, batch_id: int) -> str | None:
        loc = self._entries[self.proof_index(symbol, batch_id)]
        return _entry_problem(loc, self._read_whole(loc), True)

    def get(self, symbol: int, batch_id: int) -> bytes:
        """The proof file's bytes, checked against both checksums; a
        mismatch raises StoreCorrupt naming the file and byte."""
        loc = self._entries[self.proof_index(symbol, batch_id)]
        path = self._segment_path(loc.segment)
        with open(path, "rb") as f:
            f.seek(loc.offset)
            raw = f.read(fm.HEADER_SIZE + loc.length)
        problem = _entry_problem(loc, raw, True)
        if problem:
            raise StoreCorrupt(path, loc.offset, f"symbol {symbol} batch {batch_id}: {problem}")
        return raw[fm.HEADER_SIZE:]

    def proven_through(self, symbol: int, n: int) -> bool:
        """Does the store hold a proof of each of the symbol's batches 0..n-1?"""
        with self._lock:
            ids = self._batches.get(symbol, [])
            return bisect.bisect_left(ids, n) == n

    def symbols(self) -> list[int]:
        return sorted(self._batches)

    def batches(self, symbol: int) -> list[int]:
        """The symbol's stored batch ids, sorted."""
        return list(self._batches.get(symbol, ()))

    def __len__(self) -> int:
        """Batches with a proof (a superseded proof is not counted)."""
        return len(self._number)

    def _close_fds(self) -> None:
        for name in ("_fd", "_index_fd", "_lock_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def close(self) -> None:
        with self._lock:
            if self._index_fd >= 0 and self.fsync:
                os.fsync(self._index_fd)
            self._close_fds()

    def __enter__(self) -> ProofStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
