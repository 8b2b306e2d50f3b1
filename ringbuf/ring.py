"""Producer and consumer of the shared-memory ring (csrc/ring/zkring.h via cffi).

Records are opaque fixed-size byte strings (64 bytes for both of the
sidecar's rings).  Batches cross into C as numpy arrays — any structured
dtype whose itemsize is the record size, or uint8 of shape (n, record_size) —
with one C call per batch and no copy on the Python side.
"""
from __future__ import annotations

import errno as errno_codes
import grp
import os
import pwd
import time
from dataclasses import dataclass

import numpy as np

from . import layout

try:
    from ._ring import ffi, lib
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "zksidecar's ring is not built: run `make install` (or `pip install -e .`)"
    ) from exc

MODES = {"spsc": lib.ZKRING_SPSC, "mpsc": lib.ZKRING_MPSC}
PEER_STATUS = ("alive", "none", "dead", "stale", "closed")


CLAIMER_STATUS = {lib.ZKRING_CLAIM_ALIVE: "alive", lib.ZKRING_CLAIM_DEAD: "dead",
                  lib.ZKRING_CLAIM_FOREIGN: "foreign", lib.ZKRING_CLAIM_UNKNOWN: "unknown"}
#: how long a claimed, uncommitted MPSC position may hold the consumer up
#: before the consumer asks whether its claimer is alive (Consumer(unblock_after=))
UNBLOCK_AFTER_S = 1.0


class RingError(Exception):
    """A ring could not be created, opened or read.  The message names the
    ring, what failed (with the errno text of a failed system call) and what
    to do; `code` is the zkring code, `errno` the system error or 0."""

    def __init__(self, name: str, code: int, action: str, detail: str = "", hint: str = "",
                 err: int = 0):
        self.name, self.code, self.errno = name, code, err
        reason = detail or ffi.string(lib.zkring_strerror(code)).decode()
        if err and not detail:
            reason = f"{os.strerror(err)} ({errno_codes.errorcode.get(err, err)})"
        self._what = f"ring {name}: cannot {action}: {reason}"
        super().__init__(self._what + (f"; {hint}" if hint else ""))

    @property
    def for_cli(self) -> str:
        """The message as a command-line user should read it (the commands
        print this): what to do with a command, not with this API."""
        return str(self)


class RingMissing(RingError):
    """The ring does not exist (yet)."""


class RingCorrupt(RingError):
    """The segment holds an impossible index; nothing was read."""


class RingBusy(RingError):
    """Another live process holds the role (consumer, or SPSC producer); `pid`
    is its pid (0 when it is the MPSC producer registry that is full), `role`
    the role."""

    pid = 0
    role = ""

    @property
    def for_cli(self) -> str:
        """takeover=True is this API's way past a holder known to be gone; a
        command has none, and `zksidecar rings list` shows the holder."""
        if not self.pid:
            return str(self)
        return (f"{self._what}; stop that process first (two {self.role}s would corrupt the "
                f"stream); `zksidecar rings list {self.name}` shows the {self.role} and whether "
                "it is alive")


class RingForeign(RingError):
    """The segment's owner, group or mode is not what the opener requires:
    someone else may have created it to read or inject records."""


_RECREATE = ("stop the processes using it, remove it ({path}) and let the sidecar daemon create "
             "it again")


def _path(name: str) -> str:
    return "/dev/shm/" + name.lstrip("/")


def _user(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return f"gid {gid} ({grp.getgrgid(gid).gr_name})"
    except KeyError:
        return f"gid {gid}"


def _seg(uid: int, gid: int, mode: int) -> str:
    return f"owner {_user(uid)}, group {_group(gid)}, mode {mode:04o}"


def _error(name: str, code: int, action: str, r=None, err: int | None = None,
           access=None, role: str = "") -> RingError:
    """The error for zkring code `code`, told from the diagnostics open left
    in `r` (a zkring_t *), or from `err` (an errno) for calls without one."""
    path = _path(name)
    if err is None:
        err = r.sys_errno if r is not None else 0
    if code == lib.ZKRING_ESYS:
        if err == errno_codes.ENOENT and action.startswith("open"):
            return RingMissing(name, code, action, f"it does not exist ({path}: {os.strerror(err)})",
                               "start the sidecar daemon first, it creates the rings "
                               "(or create it with zksidecar.ringbuf.create)", err)
        if err == errno_codes.EACCES:
            try:
                st = os.stat(path)   # for the message only: the open itself was refused
                seen = f" ({_seg(st.st_uid, st.st_gid, st.st_mode & 0o7777)})"
            except OSError:
                seen = ""
            return RingError(name, code, action, f"{os.strerror(err)} (EACCES) on {path}{seen}",
                             "run as the ring's owner, or as a member of the group the daemon "
                             "creates its rings for (ring.group)", err)
        if err == errno_codes.EEXIST:
            return RingError(name, code, action, f"it already exists ({path}: {os.strerror(err)})",
                             "another daemon may be using it; pass replace=True to recreate it",
                             err)
        if err in (errno_codes.EMFILE, errno_codes.ENFILE):
            hint = "too many open files: raise the limit (ulimit -n, LimitNOFILE=)"
        elif err in (errno_codes.ENOSPC, errno_codes.ENOMEM):
            hint = "/dev/shm is full or memory is short: check `df /dev/shm` and remove stale rings"
        elif err == errno_codes.ENOENT:
            hint = f"{path} does not exist"
        else:
            hint = "check that /dev/shm is mounted and writable by this user"
        return RingError(name, code, action, hint=hint, err=err)
    if code == lib.ZKRING_EFOREIGN:
        uid, gid = access
        want = []
        if uid >= 0:
            want.append(f"owner {_user(uid)}")
        if gid >= 0:
            want.append(f"group {_group(gid)} and a mode within 0660")
        else:
            want.append("a mode within 0600")
        return RingForeign(name, code, action,
                           f"the segment has {_seg(r.seg_uid, r.seg_gid, r.seg_mode)}; "
                           f"expected {' and '.join(want)}",
                           f"another user may have created it to read or inject records: check "
                           f"who did, then remove it ({path}) and let the sidecar daemon create "
                           f"it again", 0)
    if code == lib.ZKRING_EBUSY:
        pid = r.holder_pid if r is not None else 0
        if pid:
            exc = RingBusy(name, code, action, f"it already has a live {role}, pid {pid}",
                           f"stop that process first (two {role}s would corrupt the stream); "
                           f"if pid {pid} is not a {role} of this ring (a reused pid), open it "
                           f"with takeover=True", 0)
        else:
            exc = RingBusy(name, code, action,
                           f"all {lib.ZKRING_PRODUCER_SLOTS} producer entries are held by live "
                           f"processes", "close producers that are done", 0)
        exc.pid, exc.role = pid, role
        return exc
    if code == lib.ZKRING_EVERSION:
        newer = r.seg_version > lib.ZKRING_VERSION
        return RingError(name, code, action,
                         f"it has layout version {r.seg_version}, this build reads "
                         f"{lib.ZKRING_VERSION}",
                         "the daemon that created it is newer than this client: run a client of "
                         "the same zksidecar version" if newer else
                         "an older zksidecar made it: run a daemon of this version, and if it is "
                         "a leftover, " + _RECREATE.format(path=path))
    if code in (lib.ZKRING_EMAGIC, lib.ZKRING_ETRUNC, lib.ZKRING_EHEADER):
        return RingError(name, code, action, hint="if no daemon is creating it at this moment, "
                         + _RECREATE.format(path=path))
    if code == lib.ZKRING_ECORRUPT:
        return RingCorrupt(name, code, action, hint=_RECREATE.format(path=path)
                           + " (the records in it are lost)")
    if code == lib.ZKRING_EINVAL:
        return RingError(name, code, action, hint="a ring name is 'name' or '/name' with no other "
                         "'/'; a capacity is a power of two from 2 to 2^30 and a record size a "
                         "multiple of 8 from 8 to 4096")
    if code == lib.ZKRING_ERECSIZE:
        return RingError(name, code, action, hint="the ring was created for another record type: "
                         "check the ring names in the configuration")
    return RingError(name, code, action)


def _uid(owner: int | str) -> int:
    return owner if isinstance(owner, int) else pwd.getpwnam(owner).pw_uid


def _gid(group: int | str) -> int:
    return group if isinstance(group, int) else grp.getgrnam(group).gr_gid


def _access(owner: int | str | None, group: int | str | None):
    """The zkring_access_t an opening requires (_End): owned by `owner`
    (default: this process's effective uid, or any owner with `group`) and
    within 0600, or with `group` owned by it and within 0660."""
    gid = -1 if group is None else _gid(group)
    uid = _uid(owner) if owner is not None else (-1 if gid >= 0 else os.geteuid())
    return ffi.new("zkring_access_t *", (uid, gid))


def check_access(path: str, owner: int | str | None = None,
                 group: int | str | None = None) -> None:
    """Raise RingForeign if the segment file at `path` fails the owner,
    group and mode check that opening it with `owner` and `group` makes
    (_End; the C's own zkring__check_access), RingError if it cannot be
    opened to look; take no role and map nothing."""
    name = os.path.basename(path)
    access = _access(owner, group)
    r = ffi.new("zkring_t *")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise _error(name, lib.ZKRING_ESYS, "check", err=exc.errno) from None
    try:
        rc = lib.zkr_check_access(r, fd, access)
    finally:
        os.close(fd)
    if rc != lib.ZKRING_OK:
        raise _error(name, rc, "open", r, access=(access.uid, access.gid))


def create(name: str, capacity: int, *, record_size: int = layout.RECORD_SIZE,
           mode: str = "spsc", group: str | int | None = None, replace: bool = False) -> None:
    """Create ring segment `name` (POSIX shm).  Mode 0600; with `group` (a
    name or gid) 0660 owned by that group.  `replace` unlinks an existing
    segment of that name first (a reader still mapping it keeps the old one)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, not {mode!r}")
    gid = -1 if group is None else _gid(group)
    if replace:
        unlink(name, missing_ok=True)
    rc = lib.zkring_create(name.encode(), capacity, record_size, MODES[mode], gid)
    if rc != lib.ZKRING_OK:
        raise _error(name, rc, f"create (capacity {capacity}, record size {record_size})",
                     err=ffi.errno if rc == lib.ZKRING_ESYS else 0)


def unlink(name: str, missing_ok: bool = False) -> None:
    if lib.zkring_unlink(name.encode()) != lib.ZKRING_OK:
        err = ffi.errno
        if not (missing_ok and err == errno_codes.ENOENT):
            raise _error(name, lib.ZKRING_ESYS, "unlink", err=err)


#: the idle strategies by name (IdleStrategy.named), as configuration spells them
IDLE_STRATEGIES = ("busy_spin", "spin_then_yield", "spin_then_park")


@dataclass(frozen=True)
class IdleStrategy:
    """What a consumer does while the ring is empty (Agrona's idle strategies).

    busy_spin: lowest latency, the core stays at 100%.  spin_then_yield:
    gives the core to other threads after `spins` empty polls.
    spin_then_park: then sleeps on a futex that a producer wakes only
    because the consumer announced it is parked; each sleep lasts at most
    `park_us`, which bounds the delay of a wake lost to the race that the
    producer's fence-free hot path leaves open (csrc/ring/zkring.h)."""

    kind: int
    spins: int = 0
    yields: int = 0
    park_us: float = 0.0

    @classmethod
    def busy_spin(cls) -> "IdleStrategy":
        return cls(lib.ZKRING_IDLE_SPIN)

    @classmethod
    def spin_then_yield(cls, spins: int = 10_000) -> "IdleStrategy":
        return cls(lib.ZKRING_IDLE_YIELD, spins)

    @classmethod
    def spin_then_park(cls, spins: int = 10_000, yields: int = 100,
                       park_us: float = 1000.0) -> "IdleStrategy":
        return cls(lib.ZKRING_IDLE_PARK, spins, yields, park_us)

    @classmethod
    def named(cls, name: str) -> "IdleStrategy":
        """The strategy called `name` (one of IDLE_STRATEGIES), with its defaults."""
        if name not in IDLE_STRATEGIES:
            raise ValueError(f"unknown idle strategy {name!r}: one of {', '.join(IDLE_STRATEGIES)}")
        return getattr(cls, name)()

    def _c(self):
        return ffi.new("zkring_idle_t *", (self.kind, self.spins, self.yields,
                                           int(self.park_us * 1000)))


def _records(arr: np.ndarray, record_size: int, writable: bool = False):
    """A C pointer to the records of `arr` and their count, or TypeError."""
    if not isinstance(arr, np.ndarray) or not arr.flags.c_contiguous:
        raise TypeError("records must be a C-contiguous numpy array")
    if arr.ndim == 1 and arr.dtype.itemsize == record_size and arr.dtype.fields is not None:
        count = arr.shape[0]
    elif arr.ndim == 2 and arr.dtype == np.uint8 and arr.shape[1] == record_size:
        count = arr.shape[0]
    else:
        raise TypeError(f"records must be a 1-d structured array of itemsize {record_size} "
                        f"or a uint8 array of shape (n, {record_size}); got {arr.dtype} "
                        f"of shape {arr.shape}")
    if writable and not arr.flags.writeable:
        raise TypeError("the output array is read-only")
    return ffi.from_buffer("char[]", arr, require_writable=writable), count


class _End:
    """Opening checks the segment before mapping it (fstat of the opened
    descriptor): owned by `owner` (a uid or user name; default: this
    process's effective uid) and no wider than mode 0600 — or, with `group`
    (a gid or group name, the daemon's ring.group), owned by that group and
    no wider than 0660, by any owner unless `owner` is given.  Anything else
    raises RingForeign: a segment someone else made is never adopted.
    `check_access=False` skips the check (a tool inspecting any segment)."""

    role: int
    _what: str
    _r = None

    def __init__(self, name: str, record_size: int, takeover: bool, options: int = 0,
                 owner: int | str | None = None, group: int | str | None = None,
                 check_access: bool = True):
        self.name = name
        self.record_size = record_size
        access = _access(owner, group) if check_access else ffi.NULL
        r = ffi.new("zkring_t *")
        rc = lib.zkring_open_ex(r, name.encode(), self.role, record_size,
                                options | (lib.ZKRING_O_TAKEOVER if takeover else 0), access)
        if rc != lib.ZKRING_OK:
            raise _error(name, rc, f"open as {self._what}", r,
                         access=(access.uid, access.gid) if access != ffi.NULL else None,
                         role=self._what)
        self._r = r

    @property
    def capacity(self) -> int:
        return lib.zkring_capacity(self._r)

    @property
    def full_events(self) -> int:
        """Publishes refused (or cut short) because the ring was full."""
        return lib.zkring_full_events(self._r)

    def heartbeat(self) -> None:
        lib.zkring_heartbeat(self._r)

    def peer_status(self, max_age: float | None = None) -> str:
        """'alive', 'none', 'dead' (pid gone), 'stale' (no heartbeat for
        `max_age` seconds) or, seen from the consumer, 'closed'."""
        return PEER_STATUS[lib.zkring_peer_status(self._r, int((max_age or 0) * 1e9))]

    def close(self) -> None:
        if self._r is not None:
            lib.zkring_close(self._r)
            self._r = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


class Producer(_End):
    """Publishes records; never blocks (a full ring is reported, not waited on)."""

    role = lib.ZKRING_PRODUCER
    _what = "producer"

    def __init__(self, name: str, record_size: int = layout.RECORD_SIZE, takeover: bool = False,
                 owner: int | str | None = None, group: int | str | None = None,
                 check_access: bool = True):
        super().__init__(name, record_size, takeover, 0, owner, group, check_access)

    def try_publish(self, record: bytes) -> bool:
        """Publish one record (bytes of the record size); False if full."""
        rc = lib.zkr_try_publish(self._r, record, len(record))
        if rc < 0:
            raise ValueError(f"a record is {self.record_size} bytes, not {len(record)}")
        return rc == lib.ZKRING_OK

    def publish(self, records: np.ndarray) -> int:
        """Publish as many of `records` as fit, in one C call; returns how many."""
        ptr, count = _records(records, self.record_size)
        return lib.zkring_publish_batch(self._r, ptr, count)

    def publish_all(self, records: np.ndarray, timeout: float | None = None) -> int:
        """Publish every record, yielding the CPU while the ring is full; for
        callers that can wait (tests, tools), unlike an engine.  Returns the
        count published, short only if `timeout` seconds passed."""
        ptr, count = _records(records, self.record_size)
        done, deadline = 0, None if timeout is None else time.monotonic() + timeout
        while done < count:
            n = lib.zkring_publish_batch(self._r, ptr + done * self.record_size, count - done)
            done += n
            if n == 0:
                if deadline is not None and time.monotonic() > deadline:
                    break
                os.sched_yield()
        return done

    def mark_closed(self) -> None:
        """End the stream: the consumer's peer_status() becomes 'closed'."""
        lib.zkring_mark_closed(self._r)


class Consumer(_End):
    """Drains records in order; trusts nothing in the segment.  Resumes at the
    last released position, so a restarted consumer neither loses nor
    repeats a record the ring released.

    `defer_release`: polls do not free what they return; release() does.  A
    consumer that must not lose records to its own crash (the daemon, which
    journals them) releases once they are safe, and after a restart gets
    again whatever it had polled but not released.

    One consumer per ring: opening refuses (RingBusy, naming the pid) while
    the recorded consumer is alive, and takes a dead one's place.
    `takeover=True` forces it (only for a holder known to be gone).

    `unblock_after` (MPSC, seconds; None or 0: never): a position claimed
    and not committed for that long holds the consumer up no longer if its
    claimer has died — it is skipped and counted in `unblocked`.  A claimer
    that is alive, however slow, is waited for (csrc/ring/zkring.h,
    zkring_unblock, says why that is safe)."""

    role = lib.ZKRING_CONSUMER
    _what = "consumer"

    def __init__(self, name: str, record_size: int = layout.RECORD_SIZE,
                 idle: IdleStrategy | None = None, takeover: bool = False,
                 defer_release: bool = False, unblock_after: float | None = UNBLOCK_AFTER_S,
                 owner: int | str | None = None, group: int | str | None = None,
                 check_access: bool = True):
        super().__init__(name, record_size, takeover,
                         lib.ZKRING_O_DEFER_RELEASE if defer_release else 0, owner, group,
                         check_access)
        self.idle = idle or IdleStrategy.spin_then_park()
        self._idle = self.idle._c()
        if unblock_after:
            lib.zkring_set_unblock(self._r, max(1, int(unblock_after * 1e9)))

    @property
    def unblocked(self) -> int:
        """Positions skipped because their claimer died between claim and
        commit (the ring's own count, kept across consumer restarts)."""
        return lib.zkring_unblocked(self._r)

    @property
    def stall(self) -> dict | None:
        """The claimed, uncommitted position holding this consumer up, if
        any, as its last poll saw it: position, seconds so far, and its
        claimer ('checking' until the stall reaches unblock_after, then
        'alive', 'foreign' — another pid namespace — or 'unknown')."""
        r = self._r
        if not r.unblock_ns or not r.stall_since or r.stall_pos != self.position:
            return None
        return {"position": r.stall_pos,
                "seconds": (lib.zkring_now_ns() - r.stall_since) / 1e9,
                "claimer": CLAIMER_STATUS.get(r.stall_status, "checking"),
                "claimer_pid": r.stall_pid}

    @property
    def position(self) -> int:
        """Position (count since creation) of the next record to be read."""
        return lib.zkring_position(self._r)

    @property
    def depth(self) -> int:
        """Records waiting (published, not yet polled): for monitoring."""
        return lib.zkring_depth(self._r)

    def release(self) -> None:
        """Free every record polled so far (defer_release consumers)."""
        lib.zkring_release(self._r)

    def drain(self, out: np.ndarray) -> int:
        """Copy up to len(out) waiting records into `out`; returns the count
        (0 when empty) without waiting."""
        ptr, count = _records(out, self.record_size, writable=True)
        n = lib.zkring_poll(self._r, ptr, count)
        if n == 0 and self._r.unblock_ns and lib.zkring_unblock(self._r, lib.zkring_now_ns()):
            n = lib.zkring_poll(self._r, ptr, count)
        if n < 0:
            raise _error(self.name, n, "poll")
        return n

    def poll(self, out: np.ndarray, timeout: float | None = None) -> int:
        """Like drain, but idles (per the idle strategy, in C, without the
        GIL) until records arrive or `timeout` seconds pass (then 0)."""
        ptr, count = _records(out, self.record_size, writable=True)
        wait = 0 if timeout is None else max(1, int(timeout * 1e9))
        n = lib.zkring_poll_wait(self._r, ptr, count, self._idle, wait)
        if n < 0:
            raise _error(self.name, n, "poll")
        return n



#: what a segment's recorded identity word says of its holder (zkr_inspect)
HOLDER_STATUS = {-1: "none", lib.ZKRING_CLAIM_ALIVE: "alive", lib.ZKRING_CLAIM_DEAD: "dead",
                 lib.ZKRING_CLAIM_FOREIGN: "foreign"}


class NotARing(RingError):
    """The segment exists but is not a ring this build reads (no magic,
    another layout version, a header out of range or a truncated file)."""


@dataclass(frozen=True)
class RingInfo:
    """A ring segment as its header records it, read without taking a role.
    Liveness is zkring.h's judgement of the identity words (zkring__ident_status):
    'alive', 'dead', 'foreign' (recorded in another pid namespace: no answer
    here) or 'none' (no holder recorded)."""

    name: str
    path: str
    file_size: int
    uid: int
    gid: int
    mode: int                     # permission bits of the segment file
    ring_mode: str                # "spsc" | "mpsc"
    capacity: int
    record_size: int
    depth: int                    # records published and not yet consumed
    closed: bool
    consumer_pid: int
    consumer: str
    producers: tuple[tuple[int, str], ...]   # (pid, status) of each registered producer


def inspect(name: str) -> RingInfo:
    """Read segment `name`'s header without opening it as either end.
    RingMissing if it does not exist, NotARing if it is not a ring or a
    corrupt one (indices a consumer would refuse), RingError for any other
    failure."""
    info = ffi.new("zkr_info_t *")
    rc = lib.zkr_inspect(name.encode(), info)
    path = _path(name)
    if rc == lib.ZKRING_ESYS:
        if info.sys_errno == errno_codes.ENOENT:
            raise RingMissing(name, rc, "inspect", f"it does not exist ({path})", err=info.sys_errno)
        raise _error(name, rc, "inspect", err=info.sys_errno)
    if rc == lib.ZKRING_EINVAL:
        raise _error(name, rc, "inspect")
    if rc == lib.ZKRING_ECORRUPT:
        raise NotARing(name, rc, "inspect", f"a corrupt ring: its tail index {info.tail} is not within its "
                                            f"capacity {info.capacity} of its head index {info.head}")
    if rc != lib.ZKRING_OK:
        what = {lib.ZKRING_EVERSION: f"layout version {info.version}, this build reads "
                                     f"{lib.ZKRING_VERSION}"}.get(rc, ffi.string(lib.zkring_strerror(rc)).decode())
        raise NotARing(name, rc, "inspect", f"not a zksidecar ring this build reads ({what})")
    if info.ring_mode == lib.ZKRING_SPSC:
        producers = ((info.producer_pid, HOLDER_STATUS[info.producer_status]),) \
            if info.producer_status != -1 else ()
    else:
        producers = tuple((info.slot_pid[i], HOLDER_STATUS[info.slot_status[i]])
                          for i in range(info.producer_slots))
    return RingInfo(name.lstrip("/"), path, info.file_size, info.uid, info.gid, info.mode,
                    "spsc" if info.ring_mode == lib.ZKRING_SPSC else "mpsc", info.capacity,
                    info.record_size, (info.tail - info.head) % (1 << 64),     # free-running u64s (zkring.h)
                    bool(info.flags & lib.ZKRING_F_CLOSED), info.consumer_pid,
                    HOLDER_STATUS[info.consumer_status], producers)
