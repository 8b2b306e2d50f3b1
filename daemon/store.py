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

Retention (`zksidecar store prune|archive`, `store.retain`) removes whole
segments whose proofs are old: their index entries stay, marked ARCHIVED,
so the store still knows every batch it proved (has(), proven_through())
and trusts an archived one on its index entry's own checksum; get() of one
raises StoreArchived.  The index is then the only record of those proofs:
it is rewritten whole (a new file renamed over it) before any segment goes,
then archived.zka, a second copy of its archived entries, the same way; a
store whose segments are missing without ARCHIVED entries naming them is
corrupt, never silently smaller.  An entry up to the last archived one that
fails its check is restored (from the copy, its own fields, or the data) or
kept in its place as a lost archived entry: never truncated, since that
would renumber later proofs (docs/STORE.md, "Retention of proofs").
"""
from __future__ import annotations

import bisect
import contextlib
import dataclasses
import errno
import logging
import math
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..engine.records import NO_PROOF
from . import formats as fm
from . import perms

log = logging.getLogger(__name__)

PREFIX, SUFFIX = "store", ".zkd"
INDEX_NAME = "index.zki"
COPY_NAME = "archived.zka"      # the second copy of the archived index entries
INDEX_SIZE = fm.STORE_INDEX.size
MIN_SEGMENT_BYTES = 256
HEADER_DAMAGED = "its data entry header is damaged"
BYTES_DAMAGED = "its proof bytes fail their checksum"
#: what can be wrong with an entry an index entry vouches for (where it lies,
#: how long it is, its CRC) that a crash cannot do: the put wrote the data
#: before the index entry, so this is damage, kept to be superseded
VOUCHED_DAMAGE = (HEADER_DAMAGED, BYTES_DAMAGED)


class StoreError(fm.FileLogError):
    """The store cannot be opened, written or read, or refuses a put."""


class StoreFull(StoreError):
    """A put found the disk full (ENOSPC, EDQUOT) or the file size limit
    (EFBIG); nothing of it was kept and the store is as it was."""


class StoreCorrupt(fm.CorruptEntryMixin, StoreError):
    """Damaged data that is not a torn tail: `path` and `offset` name it."""

    what = "proof store entry"


class StoreArchived(StoreError):
    """get() of a proof whose segment retention removed (its index entry
    stays: the batch is proven, its bytes are no longer here)."""


class StoreChanged(StoreError):
    """get(), head() or check() on a read-only store of a proof whose
    segment is gone since the reader opened it: a running daemon's
    retention removed it (a reader holds no lock, and sees the store as it
    was at its open)."""


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
    archived: bool = False      # its segment was removed by retention
    #: a lost archived entry: its index bytes as they are, damaged in index.zki
    #: and without a sound copy in archived.zka (which proof it was is unknown;
    #: the fields above are only where the data cursor stood)
    lost: bytes | None = None

    @property
    def end(self) -> int:
        return self.offset + fm.HEADER_SIZE + self.length


def _nearest_state(word: int) -> int | None:
    """The index entry state (0 or STORE_ARCHIVED) nearer `word` in flipped
    bits, None at equal distance: the two words differ in 12 bits, so a
    state word with a few bits flipped still says which it was."""
    to_live, to_archived = bin(word).count("1"), bin(word ^ fm.STORE_ARCHIVED).count("1")
    return 0 if to_live < to_archived else fm.STORE_ARCHIVED if to_archived < to_live else None


def _sound_entry(chunk: bytes):
    """The index entry `chunk` unpacked, if its checksum holds and its
    state is one of the two; else None."""
    e = fm.STORE_INDEX.unpack(chunk)
    if fm.crc32(chunk[:fm.INDEX_CRC_AT]) != e.entry_crc or e.state not in (0, fm.STORE_ARCHIVED):
        return None
    return e


def _may_follow_lost(cursor: tuple[int, int], at: tuple[int, int], lost: int,
                     present: dict[int, str], sizes: dict[int, int]) -> bool:
    """May the entry at `at` (segment, offset) come after `lost` lost
    archived entries that came after the data cursor `cursor`?  Each lay in
    a removed segment: later in the cursor's own (removed) segment, or in
    the ones after it; the entry after them starts in the last one's segment
    (a removed one) or at byte 0 of the next, and no data of a present
    segment is left between."""
    (seg, off), (segment, offset) = cursor, at
    if segment == seg:
        return seg not in present and offset > off
    if seg in present and off < sizes[seg] or any(n in present for n in range(seg + 1, segment)):
        return False
    return offset == 0 and segment <= seg + lost + 1 or segment not in present and segment <= seg + lost


def _names_unlisted(raw: bytes, present: dict[int, str]) -> bool:
    """Does an index entry of `raw` (index.zki's bytes) not marked archived
    name a segment `present` does not hold?  Entries are not checked: a
    damaged one naming some segment costs one more listing, no more."""
    entries = np.frombuffer(raw, fm.STORE_INDEX_DTYPE, len(raw) // INDEX_SIZE)
    named = np.unique(entries["segment"][entries["state"] != fm.STORE_ARCHIVED])
    return not set(named.tolist()) <= present.keys()


def _data_at(cursor: tuple[int, int], present: dict[int, str], sizes: dict[int, int], file):
    """Where the next data entry after the data cursor lies ((segment,
    offset), or None if no data is there) and its header if it checks out
    as the data scan checks one (else None; its proof bytes may be damaged:
    the header alone says which proof it is)."""
    seg, off = cursor
    if seg not in present or off >= sizes[seg]:
        seg, off = seg + 1, 0
    if seg not in present or off >= sizes[seg]:
        return None
    f = file(seg)

    def read(o, n):
        f.seek(o)
        return f.read(n)
    walk = fm.EntryWalk(read, sizes[seg], fm.STORE_LAYOUT, present[seg], False, StoreCorrupt, off,
                        damaged_payloads=True)
    try:
        _, header, _ = next(iter(walk))
    except StoreCorrupt:
        header = None
    return (seg, off), header


def _next_position(raw: bytes, k: int, count: int, copy: fm.ArchivedCopy) -> tuple[int, int] | None:
    """Where the first index entry after k whose fields can be trusted (its
    own checksum holds, or archived.zka has it) says its proof lies."""
    for j in range(k + 1, count):
        chunk = copy.records.get(j) or raw[j * INDEX_SIZE:(j + 1) * INDEX_SIZE]
        e = fm.STORE_INDEX.unpack(chunk)
        if fm.crc32(chunk[:fm.INDEX_CRC_AT]) == e.entry_crc:
            return e.segment, e.offset
    return None


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
        return BYTES_DAMAGED
    return None


def _same_proof(a: Location, b: Location) -> bool:
    """Do `a` and `b` hold the same proof bytes (length and CRC-32)?  A
    second index entry of a batch is a re-proof that superseded a damaged
    one (put(replace=True)); a proof is a function of its inputs, so when a
    backup's copy of the damaged segment is put back, the first is sound
    again and the same bytes: not two proofs of one batch.  Only an index
    entry says a repeat was put so: one the data scan finds unindexed (a
    segment copied twice) is still refused."""
    return (a.length, a.crc) == (b.length, b.crc)


def _first_missing(ids: list[int]) -> int:
    """The lowest batch id (from 0) the sorted `ids` do not hold.  Workers
    finish out of order, so a batch below stored ones may still be proven
    (or never be): retention archives nothing at or past it, or its put
    would leave a live proof behind archived ones (an index no open
    accepts) and the chain from the first kept batch a hole."""
    return next((i for i, b in enumerate(ids) if b != i), len(ids))


@dataclass(frozen=True)
class RetentionPlan:
    """What retention would remove: segment numbers, and per symbol the
    batches (first, last, count) that become archived; `bytes` on disk."""

    segments: tuple[int, ...]
    batches: dict[int, tuple[int, int, int]]
    bytes: int

    @property
    def proofs(self) -> int:
        return sum(n for _, _, n in self.batches.values())


def not_a_store(directory: str) -> str | None:
    """Why `directory` holds no proof store (None: it holds a store's
    index or segments).  A directory that holds other files is named with
    them, so a journal or an exported chain given for a store is seen for
    what it is, and one that cannot be listed with the reason."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return "no such directory"
    except NotADirectoryError:
        return "not a directory"
    except OSError as exc:       # a symlink loop, a name too long, no permission: said as the OS says it
        return exc.strerror or str(exc)
    if INDEX_NAME in names or fm.segment_files(directory, PREFIX, SUFFIX):
        return None
    held = (f"it holds {', '.join(names[:4])}{' …' if len(names) > 4 else ''}" if names else "it is empty")
    return (f"no proof store here (no {INDEX_NAME}, no {PREFIX}-NNNNNN{SUFFIX}): {held}; only the daemon "
            "makes a store, at its first start with this [store] dir")


class ProofStore:
    """An open proof store directory.  One writer at a time (its LOCK file);
    `readonly=True` opens without the lock and without repairing anything,
    for a verifier beside a running daemon: it sees the proofs whose data
    is whole, and leaves a torn tail for the writer to deal with.
    `drop_torn_tail=False` opens a writer that leaves a torn tail where it
    is (`torn_tail` says so) and then takes no puts: for `zksidecar store
    prune|archive`, which remove old segments and drop no other bytes.
    Only the daemon's writer (`create=True`) makes a store where there is
    none; the others open a store that exists, or raise StoreError naming
    the directory and what it holds instead (not_a_store)."""

    def __init__(self, directory: str, fsync: bool = True, segment_bytes: int = 256 << 20,
                 readonly: bool = False, group: str | int | None = None,
                 drop_torn_tail: bool = True, create: bool = True):
        if not isinstance(segment_bytes, int) or segment_bytes < MIN_SEGMENT_BYTES:
            raise ValueError(f"store segment_bytes must be an integer >= {MIN_SEGMENT_BYTES}, "
                             f"got {segment_bytes!r}")
        self.directory, self.fsync, self.segment_bytes = directory, fsync, segment_bytes
        self.readonly = readonly
        self.drop_torn_tail = drop_torn_tail and not readonly
        self.torn_tail: str | None = None    # a torn tail found and left in place, if any
        self._group = group              # files 0640 owned by it, directories 0750 (daemon/perms.py)
        self.repairs: list[str] = []     # what opening changed, for the daemon's status
        #: damaged index entries (and archived.zka records) found on opening,
        #: whether restored or lost, for every command that reports problems
        self.damage: list[str] = []
        self._restored = False           # an entry of the archived span restored in memory
        self._entries: list[Location] = []
        self._number: dict[tuple[int, int], int] = {}
        self._batches: dict[int, list[int]] = {}
        self._archived: int | None = None   # archived_count(), counted once (retention resets it)
        self._lock = threading.Lock()
        self._fd = self._index_fd = self._lock_fd = -1
        if readonly or not create:
            problem = not_a_store(directory)
            if problem:
                raise StoreError(errno.ENOENT, f"proof store {directory}: {problem}")
        if not readonly:
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

    def segment_path(self, number: int) -> str:
        return fm.segment_name(self.directory, PREFIX, SUFFIX, number)

    @property
    def _index_path(self) -> str:
        return os.path.join(self.directory, INDEX_NAME)

    def _list_segments(self) -> tuple[dict[int, str], dict[int, int]]:
        """The data segments on disk: number -> path, and number -> size.
        A segment gone between the directory's listing and its size (a
        running daemon's retention, beside a reader) is not on disk: the
        index read after it says whether it was archived or lost."""
        present, sizes = {}, {}
        for n, name in fm.segment_files(self.directory, PREFIX, SUFFIX):
            path = os.path.join(self.directory, name)
            try:
                sizes[n] = os.path.getsize(path)
            except FileNotFoundError:
                continue
            present[n] = path
        return present, sizes

    def _read_index(self) -> bytes:
        try:
            with open(self._index_path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def _open(self) -> None:
        present, sizes = self._list_segments()
        raw = self._read_index()
        if self.readonly and _names_unlisted(raw, present):
            # a reader holds no lock: the writer may have rolled to a new
            # segment between the listing and the index read.  It makes a
            # segment before it indexes a proof in it, so a listing made after
            # the read holds every segment the index names, and one still
            # missing from it is lost (the checks below say so).  A writer
            # holds the lock: nothing changes under it
            present, sizes = self._list_segments()
        copy_raw = self._read_copy_file()
        copy = self._parse_copy(copy_raw)
        kept, why, vouched = self._check_index(raw, present, sizes, copy)
        pending = self._pending_removal(present)
        for number in pending:                  # an interrupted prune: not data any more
            del present[number], sizes[number]
        new = self._scan_data(present, sizes, vouched)
        self._refuse_renumbering(raw, kept)
        # after the scan: a damaged live entry past the archived ones is rebuilt
        # from the data, and until then a symbol may seem to have only archived
        # batches (its kept ones are all after the damage)
        self._check_archived()
        self._take_lost_as_archived()
        last = max([*present, *(loc.segment for loc in self._entries[-1:])], default=-1)
        self._segment = last
        if self.readonly:
            return
        if why or new:
            note = (f"{self._index_path}: entries from {kept} on rebuilt from the data ("
                    + (why or "the data holds proofs the index does not list") + ")")
            log.warning("proof store repair: %s", note)
            self.repairs.append(note)
        if last not in present:
            self._new_segment()
        else:
            self._fd = os.open(present[last], os.O_RDWR | os.O_CLOEXEC)
            self._size = sizes[last]
        if self._restored:                      # in the middle: the whole index, as retention writes it
            self._replace_file(INDEX_NAME, b"".join(map(self._index_bytes, self._entries)))
            note = f"{self._index_path}: the damaged entries named above written back"
            log.warning("proof store repair: %s", note)
            self.repairs.append(note)
        self._index_fd = perms.open_or_create(self._index_path, os.O_RDWR | os.O_CLOEXEC, self._group)
        if (why or new) and not self._restored:
            os.ftruncate(self._index_fd, kept * INDEX_SIZE)
            entries = b"".join(self._index_bytes(loc) for loc in self._entries[kept:])
            if entries:
                fm.append_at(self._index_fd, kept * INDEX_SIZE, [entries], self._index_path,
                             StoreFull, StoreError)
            if self.fsync:
                os.fsync(self._index_fd)
        if pending:
            self._unlink_segments(pending)
            note = (f"removed segment(s) {', '.join(map(str, pending))}, whose proofs the index "
                    "already marks archived (a prune was interrupted)")
            log.warning("proof store repair: %s", note)
            self.repairs.append(note)
        self._write_copy_if_stale(copy_raw, copy, raw)

    def _refuse_renumbering(self, raw: bytes, kept: int) -> None:
        """StoreCorrupt if the index rebuilt from the data after entry
        `kept` gives a proof another number than its own sound entry in
        index.zki does (same batch, same place in the data): an entry before
        it is missing with no data to rebuild it from (a removed segment's
        archived entry, a segment emptied), and a proof_index a completion
        record carries would name another proof."""
        for k in range(kept, len(raw) // INDEX_SIZE):
            e = _sound_entry(raw[k * INDEX_SIZE:(k + 1) * INDEX_SIZE])
            n = None if e is None else self._number.get((e.symbol, e.batch_id))
            if n is None or n == k or n < kept:     # n < kept: a stray repeat of a kept entry
                continue
            loc = self._entries[n]
            if (loc.segment, loc.offset, loc.length, loc.crc) == (e.segment, e.offset, e.length,
                                                                e.data_crc):
                raise StoreCorrupt(self._index_path, kept * INDEX_SIZE, f"index entry {k} (symbol "
                                   f"{e.symbol} batch {e.batch_id}), sound, and its data agree, but "
                                   f"the entries before it from {kept} on cannot be rebuilt from "
                                   f"the data: rebuilding would renumber it {n}; nothing is renumbered")

    def _pending_removal(self, present: dict[int, str]) -> list[int]:
        """Segments still on disk whose every index entry is archived (a
        prune that stopped between its index and its unlinks); a segment
        with archived and live entries is corrupt."""
        state: dict[int, set[bool]] = {}
        for loc in self._entries:
            if loc.lost is None:        # a lost entry's segment is unknown
                state.setdefault(loc.segment, set()).add(loc.archived)
        for number, flags in state.items():
            if number in present and flags == {True, False}:
                raise StoreCorrupt(self._index_path, 0, f"segment {number} holds archived and live "
                                   "proofs: the index was changed by something other than a prune")
        return sorted(n for n, flags in state.items() if n in present and flags == {True})

    def _check_archived(self) -> None:
        """Every symbol's archived batches are a prefix of its batches, and
        never its newest (retention's rules): otherwise the index is not
        one retention wrote."""
        for symbol, ids in self._batches.items():
            flags = [self._entries[self._number[symbol, b]].archived for b in ids]
            live = flags.index(False) if False in flags else len(flags)     # the first kept
            bad = ids[-1] if flags[-1] else next((b for b, f in zip(ids[live:], flags[live:]) if f), None)
            if bad is not None:
                raise StoreCorrupt(self._index_path, self._number[symbol, bad] * INDEX_SIZE,
                                   f"symbol {symbol} batch {bad} is archived out of order (retention "
                                   "archives the oldest batches of a symbol, never its newest)")

    @staticmethod
    def _index_bytes(loc: Location) -> bytes:
        if loc.lost is not None:
            return loc.lost             # nothing to restore it from: kept as it is
        return fm.index_entry(loc.symbol, loc.segment, loc.batch_id, loc.offset, loc.length, loc.crc,
                              fm.STORE_ARCHIVED if loc.archived else 0)

    def _check_index(self, raw: bytes, present: dict[int, str], sizes: dict[int, int],
                     copy: fm.ArchivedCopy) -> tuple[int, str | None, dict[int, tuple[int, int]]]:
        """Keep the index entries that agree with the data, up to the first
        that does not: (how many, why the rest was dropped or None, and by
        segment (end, entry) the furthest whole data a sound entry among the
        rest vouches for).  Entries up to the last archived one (the
        archived span) are never dropped: truncating there would renumber
        later proofs, so a damaged one is restored (_restore_entry) or kept
        as a lost archived entry, and what cannot be either is corrupt."""
        count = len(raw) // INDEX_SIZE
        why = f"a torn entry of {len(raw) % INDEX_SIZE} bytes" if len(raw) % INDEX_SIZE else None
        span = self._archived_span(raw, count, copy)
        with contextlib.ExitStack() as files:     # each segment opened once, however many proofs
            opened = {}

            def file(number: int):
                if number not in opened:
                    opened[number] = files.enter_context(open(present[number], "rb"))
                return opened[number]

            kept, why = self._index_prefix(raw, count, why, present, sizes, file, copy, span)
        vouched: dict[int, tuple[int, int]] = {}
        for k in range(kept, count):
            e = _sound_entry(raw[k * INDEX_SIZE:(k + 1) * INDEX_SIZE])
            if e is None:
                continue
            if e.state == fm.STORE_ARCHIVED:    # past the span: _archived_span rules it out
                raise StoreCorrupt(self._index_path, kept * INDEX_SIZE, f"{why}; entry {k} after it "
                                   "is an archived proof, which the data cannot give back")
            # an entry past the ones kept, sound itself, whose data the file
            # holds in full: the put that wrote it was whole up to its end (a
            # crash cuts a file short; it does not flip bits), so _scan_data
            # drops no tail under it.  One past the file's end is a write cut short
            end = e.offset + fm.HEADER_SIZE + e.length
            if end <= sizes.get(e.segment, -1) and end > vouched.get(e.segment, (0, 0))[0]:
                vouched[e.segment] = (end, k)
        return kept, why, vouched

    def _archived_span(self, raw: bytes, count: int, copy: fm.ArchivedCopy) -> int:
        """How many index entries reach to the last archived one: what
        archived.zka says, or the last entry (damaged or not) whose state
        word is nearer ARCHIVED.  Retention wrote them all (synced, renamed),
        so no crash leaves them torn; index.zki shorter than that was lost or
        cut short."""
        states = np.frombuffer(raw, fm.STORE_INDEX_DTYPE, count)["state"]
        archived = [int(k) for k in np.flatnonzero(states)
                    if _nearest_state(int(states[k])) == fm.STORE_ARCHIVED]
        span = max([copy.entries or 0, *(k + 1 for k in copy.records), *(k + 1 for k in archived[-1:])])
        if span > count:
            raise StoreCorrupt(self._index_path, count * INDEX_SIZE, f"{INDEX_NAME} holds {count} "
                               f"entries, but {COPY_NAME} records archived entries up to number "
                               f"{span - 1} ({INDEX_NAME} was lost after a prune, or cut short; the "
                               "data cannot give archived entries back)")
        return span

    def _index_prefix(self, raw, count, why, present, sizes, file, copy, span) -> tuple[int, str | None]:
        # where the next entry must start: entries tile the data with no gaps
        # (a removed segment's size is unknown: its successor starts at byte 0)
        seg, off = 0, 0
        last = max(present, default=-1)
        any_archived, lost = False, 0        # lost: lost entries since the last one placed
        for k in range(count):
            chunk = raw[k * INDEX_SIZE:(k + 1) * INDEX_SIZE]
            e = _sound_entry(chunk)
            if e is None:
                if k >= span:
                    return k, f"entry {k} fails its checksum"
                e = self._restore_entry(k, chunk, raw, count, span, copy, (seg, off), present, sizes, file)
                if e is None:
                    self._add(Location(-1, -1, seg, off, 0, 0, True, lost=chunk))
                    any_archived, lost = True, lost + 1
                    continue
            sym, bid, segment = e.symbol, e.batch_id, e.segment
            archived = e.state == fm.STORE_ARCHIVED
            loc = Location(sym, bid, segment, e.offset, e.length, e.data_crc, archived)
            if lost and _may_follow_lost((seg, off), (segment, e.offset), lost, present, sizes):
                seg, off = segment, e.offset     # the lost entries lay between: where is unknown
            lost = 0
            if segment == seg + 1 and (seg not in present or k and self._entries[-1].archived
                                       or off == sizes[seg]):
                seg, off = segment, 0        # the previous segment ends exactly there
            if not archived and segment not in present and (segment < last or any_archived):
                raise StoreCorrupt(self.segment_path(segment), 0, "this segment is missing and "
                                   f"the index (entry {k}) does not record its proofs as archived "
                                   "(a segment file was lost)")
            if (segment, e.offset) != (seg, off) or (
                    not archived and (segment not in present or loc.end > sizes[segment])):
                return self._cut(k, span, f"entry {k} does not follow the previous one in the data")
            earlier = self._number.get((sym, bid))
            if earlier is not None and not self._entries[earlier].archived and not archived \
                    and not _same_proof(self._entries[earlier], loc) \
                    and not self._damaged(self._entries[earlier], file):
                return self._cut(k, span, f"entry {k} repeats symbol {sym} batch {bid}, whose proof "
                                 "is sound")
            if not archived:
                problem = self._check_data(loc, file(segment), whole=(segment == last
                                                                      and loc.end == sizes[segment]))
                if problem and problem not in VOUCHED_DAMAGE:
                    return self._cut(k, span, f"entry {k}: {problem}")
                if problem:
                    self._keep_damaged(loc, problem)
            self._add(loc)
            off = loc.end
            any_archived = any_archived or archived
        return count, why

    def _cut(self, k: int, span: int, why: str) -> tuple[int, str]:
        """The index is kept up to entry k, unless k lies in the archived
        span: dropping it would renumber the archived entries after it."""
        if k < span:
            raise StoreCorrupt(self._index_path, k * INDEX_SIZE, f"{why}; archived entries follow "
                               "it, which the data cannot give back (truncating the index would "
                               "renumber every later proof)")
        return k, why

    def _restore_entry(self, k, chunk, raw, count, span, copy, cursor, present, sizes, file):
        """Index entry k of the archived span, which fails its check: from
        archived.zka's record of it; else its own fields when only its state
        word is damaged; else from the data entry where the previous proof
        ended, if no trusted entry claims it (a live proof).  None: an
        archived entry neither copy gives back (lost: its place kept, which
        proof it was unknown).  Each is named in `damage`."""
        where = f"{self._index_path}: entry {k} (byte {k * INDEX_SIZE}) fails its checksum"
        if k in copy.records:
            return self._restored_as(where, f"restored from {COPY_NAME}", copy.records[k])
        e = fm.STORE_INDEX.unpack(chunk)
        state = _nearest_state(e.state)
        if fm.crc32(chunk[:fm.INDEX_CRC_AT]) == e.entry_crc and state is not None:
            if e.segment in present:
                # its segment is still here: a live proof (a word of garbage reads
                # ARCHIVED as often as 0, and an archived one would have its segment
                # removed as an interrupted prune's); a prune that did stop there
                # wrote archived.zka first, which restored it above
                state = 0
            return self._restored_as(where, "only its state word is damaged: restored to "
                                     + ("ARCHIVED" if state else "0, a live proof"), chunk, state)
        if state is None and k == span - 1:
            state = fm.STORE_ARCHIVED            # the span ends at an archived entry
        at, header = _data_at(cursor, present, sizes, file) or (None, None)
        following = _next_position(raw, k, count, copy)
        unclaimed = at is not None and (following is None or following > at)
        # a sound data header no trusted entry claims is this entry's proof, whatever
        # the damaged state word reads: an archived entry's segment is gone, and the
        # entries after it claim the data that follows (garbage reads ARCHIVED as
        # often as 0: taking it so renumbered a live proof)
        if unclaimed and header is not None:
            return self._restored_as(where, "rebuilt from the data entry it names (a live proof)",
                                     fm.index_entry(header.symbol, at[0], header.batch_id, at[1],
                                                    header.length, header.data_crc))
        seg, off = cursor
        if state == 0 or state is None and unclaimed or seg in present and off < sizes[seg]:
            # a live entry without its data, or an archived one where data is
            # left that no entry claims: index and data both damaged
            raise StoreCorrupt(self._index_path, k * INDEX_SIZE, f"entry {k} fails its checksum, "
                               f"archived entries follow it, and the data where it must lie (segment "
                               f"{seg} byte {off}) cannot give it back: damaged, or another entry's; "
                               "nothing is renumbered or dropped")
        self._name_damage(f"{where}: an archived entry {COPY_NAME} holds no sound copy of: which "
                          "proof it was is lost; its place is kept (nothing is renumbered)")
        return None

    def _restored_as(self, where: str, how: str, chunk: bytes, state: int | None = None):
        self._restored = True
        self._name_damage(f"{where}: {how}"
                          + (" (read-only: restored in memory only)" if self.readonly else "; written back"))
        e = fm.STORE_INDEX.unpack(chunk)
        return e if state is None else e._replace(state=state)

    def _name_damage(self, note: str) -> None:
        if not self.readonly:
            log.warning("proof store damage: %s", note)
        self.damage.append(note)

    def _keep_damaged(self, loc: Location, problem: str) -> None:
        """A damaged entry the index vouches for is corruption, not a torn
        write: it stays indexed (get() and check() name it; put(replace=True)
        supersedes it) and its bytes stay where they are.  A writer says so."""
        if not self.readonly:
            log.warning("proof store: %s: symbol %d batch %d at byte %d: %s; kept as it is (a "
                        "damaged proof is superseded, never overwritten)",
                        self.segment_path(loc.segment), loc.symbol, loc.batch_id, loc.offset, problem)

    @staticmethod
    def _check_data(loc: Location, f, whole: bool) -> str | None:
        """Does the data entry at `loc` (in the open segment file `f`) say
        what the index says?  `whole` also checks the proof bytes: done for
        the newest entry, so that opening names its damage (the others are
        read, and checked, by get())."""
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
        with open(self.segment_path(loc.segment), "rb") as f:
            f.seek(loc.offset)
            return f.read(fm.HEADER_SIZE + loc.length)

    def _scan_data(self, present: dict[int, str], sizes: dict[int, int],
                   vouched: dict[int, tuple[int, int]]) -> bool:
        """Index the data entries after the last one the index vouched for;
        a torn tail of the last segment is truncated (unless read-only, or
        opened to keep it), unless an index entry past the kept ones vouches
        for data under it (`vouched`, _check_index's): then the store is
        refused.  True if any entry was found."""
        last = self._entries[-1] if self._entries else None
        seg, start = (0, 0) if last is None else (last.segment + 1, 0) if last.archived \
            else (last.segment, last.end)
        final = max(present, default=-1)
        if last is not None and last.lost is not None:
            # the lost entry's own segment is unknown: it may be a removed one
            seg = min([n for n in present if n > last.segment], default=final + 1)
        found = False
        for number in range(seg, final + 1):
            if number not in present:
                raise StoreCorrupt(self.segment_path(number), 0, "this segment is missing and the "
                                   "index does not record its proofs as archived (a segment file "
                                   "was lost, or index.zki was lost after a prune)")
            path = present[number]
            with open(path, "rb") as f:
                def read(o, n, f=f):
                    f.seek(o)
                    return f.read(n)
                walk = fm.EntryWalk(read, sizes[number], fm.STORE_LAYOUT, path,
                                    number == final, StoreCorrupt,
                                    start if number == seg else 0, damaged_payloads=True)
                for at, h, data in walk:
                    key = (h.symbol, h.batch_id)
                    if key in self._number and not self._entries[self._number[key]].archived \
                            and _entry_problem(
                            earlier := self._entries[self._number[key]],
                            self._read_whole(earlier), True) is None:
                        raise StoreCorrupt(path, at, f"a second proof of symbol {h.symbol} batch "
                                           f"{h.batch_id}, whose first proof is sound")
                    self._add(Location(h.symbol, h.batch_id, number, at, h.length, h.data_crc))
                    found = True
            if walk.torn:
                whole_to, k = vouched.get(number, (0, 0))
                if whole_to > walk.end:
                    # every open refuses: a writer that drops tails would drop it,
                    # any writer rewrites the index from the data (losing entry k),
                    # and a reader would show the store without its newest proof
                    raise StoreCorrupt(path, walk.end, f"the data from here reads as a torn tail "
                                       f"({walk.torn}), but index entry {k}, itself sound, vouches for a "
                                       f"whole proof up to byte {whole_to}: damage, not a cut write; "
                                       "nothing is dropped")
                tail = f"a torn tail of {sizes[number] - walk.end} bytes at byte {walk.end} ({walk.torn})"
                sizes[number] = walk.end
                if not self.drop_torn_tail:
                    self.torn_tail = f"{path}: {tail}"     # left for the daemon's open to drop
                else:
                    note = f"{path}: dropped {tail}"
                    with open(path, "r+b") as f:
                        f.truncate(walk.end)
                        if self.fsync:
                            os.fsync(f.fileno())
                    log.warning("proof store repair: %s", note)
                    self.repairs.append(note)
        return found

    # ------------------------------------------- the archived entries' copy --

    @property
    def _copy_path(self) -> str:
        return os.path.join(self.directory, COPY_NAME)

    def _read_copy_file(self) -> bytes | None:
        try:
            with open(self._copy_path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def _parse_copy(self, raw: bytes | None) -> fm.ArchivedCopy:
        copy = fm.read_archived_copy(raw)
        for problem in copy.problems:
            self._name_damage(f"{self._copy_path}: {problem}")
        return copy

    def _copy_bytes(self) -> bytes | None:
        """What archived.zka should hold for the index as it is: a record of
        every archived entry but the lost ones; None when nothing is archived."""
        span = max((k + 1 for k, loc in enumerate(self._entries) if loc.archived), default=0)
        if not span:
            return None
        return fm.archived_copy(span, [(k, self._index_bytes(loc)) for k, loc in enumerate(self._entries)
                                       if loc.archived and loc.lost is None])

    def _write_copy_if_stale(self, have: bytes | None, copy: fm.ArchivedCopy, index: bytes) -> None:
        """A writer's open: archived.zka (`have`, as read; `copy`, as parsed)
        rewritten when it is not what the index gives (damaged, behind a
        retention that stopped between the two files, or missing: a store
        archived before the copy existed).  `index` is index.zki as read:
        unless an entry was restored, it holds the archived entries as they are."""
        if not self._restored and self._copy_agrees(have, copy, index):
            return
        want = self._copy_bytes()
        if have == want:
            return
        if want is None:
            os.unlink(self._copy_path)
            fm.fsync_directory(self.directory)
            what = "removed (the index archives nothing)"
        else:
            self._replace_file(COPY_NAME, want)
            what = "written" if have is None else \
                f"rewritten from the index ({'; '.join(copy.problems) or 'it did not match'})"
        note = f"{self._copy_path}: {what}"
        log.warning("proof store repair: %s", note)
        self.repairs.append(note)

    def _copy_agrees(self, have: bytes | None, copy: fm.ArchivedCopy, index: bytes) -> bool:
        """Does archived.zka hold exactly a record of each archived entry of
        `index` (the lost ones aside), and the span?  Compared as parsed, so
        an open does not pack every archived entry again."""
        archived = [k for k, loc in enumerate(self._entries) if loc.archived]
        if not archived:
            return have is None
        return have is not None and not copy.problems and copy.entries == archived[-1] + 1 \
            and copy.records == {k: index[k * INDEX_SIZE:(k + 1) * INDEX_SIZE] for k in archived
                                 if self._entries[k].lost is None}

    def _replace_file(self, name: str, data: bytes) -> None:
        """`name` in the store directory replaced by `data` whole: a new
        file, synced, renamed over it, the directory synced, so a crash
        leaves the old file or the new one.  Raises StoreError (StoreFull)."""
        path = os.path.join(self.directory, name)
        tmp = path + ".new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)                 # left by a write that stopped
        try:
            fd = perms.create_file(tmp, os.O_WRONLY | os.O_CLOEXEC, self._group)
            try:
                fm.append_at(fd, 0, [data], tmp, StoreFull, StoreError)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
            fm.fsync_directory(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, StoreError):
                raise
            raise StoreError(exc.errno, f"proof store {self.directory}: cannot rewrite {name} "
                             f"({exc.strerror})") from exc

    def _take_lost_as_archived(self) -> None:
        """With lost archived entries, the batch ids below a symbol's first
        kept batch that no entry lists are taken as archived (has(),
        proven_through(), batches() list them, put() refuses them):
        retention archives a prefix of each symbol's batches, so a lost entry
        is one of these (or a superseded proof), and the daemon must not
        prove one again behind the kept chain.  Those above the symbol's
        highest archived id only when the ones below it leave lost entries
        over: else they are batches still being proven."""
        lost = [k for k, loc in enumerate(self._entries) if loc.lost is not None]
        if not lost:
            return
        # retention archives each symbol's batches 0.. up to one it does not
        # hold: an id missing below a symbol's highest archived one was archived
        # (a gap), one between that and its first kept may be a batch still
        # being proven, taken only when the gaps do not account for every lost entry
        gaps, above = [], []
        for symbol, ids in self._batches.items():
            first = self.first_kept(symbol)
            archived = ids[:bisect.bisect_left(ids, first)]
            top = archived[-1] if archived else -1
            held = set(archived)
            gaps += [(symbol, b) for b in range(top) if b not in held]
            above += [(symbol, b) for b in range(top + 1, first)]
        taken = gaps + (above if len(lost) > len(gaps) else [])
        for i, (symbol, b) in enumerate(taken):
            self._number[symbol, b] = lost[min(i, len(lost) - 1)]
            bisect.insort(self._batches[symbol], b)
        said = ", ".join(f"symbol {s} batch {b}" for s, b in taken) or "none"
        self._name_damage(f"{self._index_path}: {len(lost)} lost archived entr"
                          + ("y" if len(lost) == 1 else "ies") + f" (number {', '.join(map(str, lost))}); "
                          f"taken as archived: {said} (the batches below a symbol's first kept one "
                          "that no entry lists)")

    def _add(self, loc: Location) -> None:
        """Index `loc`; a later entry of a batch supersedes an earlier one.
        A lost entry takes its place in the numbering and names no batch."""
        if loc.lost is not None:
            self._entries.append(loc)
            return
        key = (loc.symbol, loc.batch_id)
        if key not in self._number:
            bisect.insort(self._batches.setdefault(loc.symbol, []), loc.batch_id)
        self._number[key] = len(self._entries)
        self._entries.append(loc)

    # --------------------------------------------------------------- put --

    def _new_segment(self) -> None:
        number = self._segment + 1
        path = self.segment_path(number)
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
            if self.torn_tail:      # a put would bury it: corruption in the middle
                raise StoreError(errno.EROFS, f"proof store: {self.torn_tail} is left in place "
                                 "(opened with drop_torn_tail=False); this store takes no puts")
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
                    self._durable(self._fd, self.segment_path(self._segment))
                self._new_segment()
            start, path = self._size, self.segment_path(self._segment)
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
        against both checksums), or None if nothing is.  Its segment gone
        is StoreChanged or StoreCorrupt, as for get()."""
        with self._lock:
            return self._problem(symbol, batch_id)

    def _problem(self, symbol: int, batch_id: int) -> str | None:
        loc = self._entries[self.proof_index(symbol, batch_id)]
        if loc.archived:
            return None         # trusted on its index entry's checksum: nothing known wrong
        with self._open_segment(loc) as f:
            return self._check_data(loc, f, True)

    def archived(self, symbol: int, batch_id: int) -> bool:
        """Is this batch proven, and its proof removed by retention?"""
        number = self._number.get((symbol, batch_id))
        return number is not None and self._entries[number].archived

    def first_kept(self, symbol: int) -> int | None:
        """The symbol's first batch whose proof the store still holds (the
        ones before it are archived); None if it has no batches."""
        ids = self._batches.get(symbol)
        if not ids:
            return None
        return next(b for b in ids if not self._entries[self._number[symbol, b]].archived)

    def get(self, symbol: int, batch_id: int) -> bytes:
        """The proof file's bytes, checked against both checksums; a
        mismatch raises StoreCorrupt naming the file and byte, an archived
        proof StoreArchived."""
        return self._read(symbol, batch_id, None)

    def head(self, symbol: int, batch_id: int, size: int) -> bytes:
        """The proof file's first `size` bytes (fewer if it is shorter), its
        data entry header checked but not its bytes' checksum: one field of
        a proof's own header (its format version, which says its mode) for
        the price of one small read, where get() reads the whole proof.
        StoreArchived and StoreCorrupt as get()."""
        return self._read(symbol, batch_id, size)

    def _read(self, symbol: int, batch_id: int, size: int | None) -> bytes:
        """get() (`size` None: the whole proof) and head()."""
        loc = self._entries[self.proof_index(symbol, batch_id)]
        path = self.segment_path(loc.segment)
        if loc.archived:
            where = (f"its index entry is lost (entry {self.proof_index(symbol, batch_id)} is damaged "
                     f"in {INDEX_NAME} and {COPY_NAME})" if loc.lost is not None
                     else f"segment {loc.segment} was removed by retention")
            raise StoreArchived(errno.ENOENT, f"proof store {self.directory}: symbol {symbol} batch "
                                f"{batch_id} is archived ({where}); the store keeps only that it "
                                "was proven")
        whole = size is None
        with self._open_segment(loc) as f:
            f.seek(loc.offset)
            raw = f.read(fm.HEADER_SIZE + (loc.length if whole else min(size, loc.length)))
        problem = _entry_problem(loc, raw, whole)
        if problem:
            raise StoreCorrupt(path, loc.offset, f"symbol {symbol} batch {batch_id}: {problem}")
        return raw[fm.HEADER_SIZE:]

    def _open_segment(self, loc: Location):
        """The segment file holding a kept proof, open for reading (get(),
        head() and check() read through here).  Gone: on a reader,
        StoreChanged (retention removed it since the open); on the writer,
        StoreCorrupt (its lock keeps retention its own: only a loss)."""
        path = self.segment_path(loc.segment)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            if not self.readonly:
                raise StoreCorrupt(path, loc.offset, f"symbol {loc.symbol} batch {loc.batch_id}: its "
                                   "segment is missing") from None
            raise StoreChanged(errno.ENOENT, f"proof store {self.directory}: symbol {loc.symbol} batch "
                               f"{loc.batch_id}: segment {loc.segment} was removed after this reader "
                               "opened the store (a running daemon's retention removes its oldest "
                               "segments): open it again to read the store as it is now") from None

    def proven_through(self, symbol: int, n: int) -> bool:
        """Does the store hold a proof of each of the symbol's batches 0..n-1?"""
        with self._lock:
            ids = self._batches.get(symbol, [])
            return bisect.bisect_left(ids, n) == n

    def symbols(self) -> list[int]:
        return sorted(self._batches)

    def no_symbol(self, symbol: int) -> str | None:
        """Why a command given `symbol` has nothing of it here (None: the
        store holds proofs of it), naming the symbols it does hold: a
        mistyped symbol is said, not taken for one with nothing to do."""
        if symbol in self._batches:
            return None
        held = ", ".join(map(str, self.symbols())) or "none"
        return f"{self.directory} holds no proofs of symbol {symbol} (symbols stored: {held})"

    def batches(self, symbol: int) -> list[int]:
        """The symbol's stored batch ids, sorted."""
        return list(self._batches.get(symbol, ()))

    def __len__(self) -> int:
        """Batches with a proof (a superseded proof is not counted)."""
        return len(self._number)

    def archived_count(self) -> int:
        """Batches whose proofs retention removed (counted in len())."""
        if self._archived is None:
            self._archived = sum(self._entries[n].archived for n in self._number.values())
        return self._archived

    # --------------------------------------------------------- retention --

    def plan_retention(self, older_than_s: float | None = None, keep: int | None = None,
                       symbols: set[int] | None = None, now: float | None = None) -> RetentionPlan:
        """The segments retention may remove: those whose every proof is of a
        batch older than `older_than_s` seconds (its segment last written
        that long ago) or beyond the newest `keep` batches of its symbol (of
        `symbols` only, if given).  Never the segment being written, never
        a symbol's newest batch, never a batch at or past one the store does
        not hold (_first_missing), and never a proof after one that stays: a
        symbol keeps a whole run of batches, from its first kept to its
        newest, so its chain verifies from the first kept one."""
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be at least 1 (a symbol's newest batch always stays), "
                             f"got {keep}")
        now = time.time() if now is None else now
        with self._lock:
            present = {loc.segment for loc in self._entries if not loc.archived} - {self._segment}
            old = set()
            if older_than_s is not None:
                for n in present:
                    with contextlib.suppress(FileNotFoundError):
                        if os.stat(self.segment_path(n)).st_mtime <= now - older_than_s:
                            old.add(n)
            cut: dict[int, int] = {}           # symbol -> its batches below this may go
            for symbol, ids in self._batches.items():
                c = ids[-1]
                if symbols is not None and symbol not in symbols:
                    c = ids[0]
                if keep is not None:
                    c = min(c, ids[max(0, len(ids) - keep)])
                if older_than_s is not None:
                    c = min(c, next((b for b in ids if not self._old(symbol, b, old)), c))
                cut[symbol] = min(c, _first_missing(ids))
            by_segment: dict[int, list[tuple[int, Location]]] = {}
            for number, loc in enumerate(self._entries):
                if loc.segment in present and loc.lost is None:
                    by_segment.setdefault(loc.segment, []).append((number, loc))
            going = {n for n in present if all(loc.batch_id < cut[loc.symbol]
                                               for _, loc in by_segment.get(n, ()))}
            while True:                        # a proof that stays keeps the later ones
                first = {}
                for symbol, ids in self._batches.items():
                    first[symbol] = next((b for b in ids if not self._gone(symbol, b, going)),
                                         math.inf)
                stay = {n for n in going for number, loc in by_segment[n]
                        if self._number[loc.symbol, loc.batch_id] == number     # not superseded
                        and loc.batch_id > first[loc.symbol]}
                if not stay:
                    break
                going -= stay
            batches = {}
            for symbol, ids in self._batches.items():
                newly = [b for b in ids if self._gone(symbol, b, going)
                         and not self.archived(symbol, b)]
                if newly:
                    batches[symbol] = (newly[0], newly[-1], len(newly))
            size = sum(os.path.getsize(self.segment_path(n)) for n in going
                       if os.path.exists(self.segment_path(n)))
            return RetentionPlan(tuple(sorted(going)), batches, size)

    def _old(self, symbol: int, batch_id: int, old: set[int]) -> bool:
        loc = self._entries[self._number[symbol, batch_id]]
        return loc.archived or loc.segment in old

    def _gone(self, symbol: int, batch_id: int, going: set[int]) -> bool:
        loc = self._entries[self._number[symbol, batch_id]]
        return loc.archived or loc.segment in going

    def remove_segments(self, plan: RetentionPlan) -> None:
        """Carry out `plan` (plan_retention's, on this store, nothing put
        since that would change it: a put only adds to the segment being
        written, which no plan removes): the index is rewritten with their
        entries archived (a new file, synced, renamed over the old), then
        archived.zka, its second copy of the archived entries (the same way),
        then the segment files are removed."""
        if self.readonly or self._fd < 0:
            raise StoreError(errno.EBADF, f"proof store {self.directory} is "
                             + ("read-only" if self.readonly else "closed"))
        going = set(plan.segments)
        if not going:
            return
        with self._lock:
            if self._segment in going:
                raise ValueError(f"segment {self._segment} is being written; no plan removes it")
            entries = [dataclasses.replace(loc, archived=True) if loc.segment in going else loc
                       for loc in self._entries]
            try:
                self._replace_file(INDEX_NAME, b"".join(map(self._index_bytes, entries)))
            except StoreError as exc:
                raise type(exc)(exc.errno, f"{exc}; nothing was removed") from exc
            old_fd = self._index_fd
            self._index_fd = os.open(self._index_path, os.O_RDWR | os.O_CLOEXEC)
            os.close(old_fd)
            self._entries, self._archived = entries, None
            # the copy after the index: it then never names an entry the index
            # does not archive; a crash between leaves it behind, which the next
            # writer's open rewrites.  Before any segment goes, so it is whole
            self._replace_file(COPY_NAME, self._copy_bytes())
            self._unlink_segments(sorted(going))

    def _unlink_segments(self, numbers: list[int]) -> None:
        for n in numbers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.segment_path(n))
        fm.fsync_directory(self.directory)

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
