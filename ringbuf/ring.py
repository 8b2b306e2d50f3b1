"""Producer and consumer of the shared-memory ring (csrc/ring/zkring.h via cffi).

Records are opaque fixed-size byte strings (64 bytes for both of the
sidecar's rings).  Batches cross into C as numpy arrays — any structured
dtype whose itemsize is the record size, or uint8 of shape (n, record_size) —
with one C call per batch and no copy on the Python side.
"""
from __future__ import annotations

import grp
import os
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


class RingError(Exception):
    """A ring could not be created, opened or read; `code` is the zkring code."""

    def __init__(self, name: str, code: int, action: str):
        self.code = code
        reason = ffi.string(lib.zkring_strerror(code)).decode()
        if code == lib.ZKRING_ESYS:
            reason += f": {os.strerror(ffi.errno)}"
        super().__init__(f"ring {name!r}: cannot {action}: {reason}")


class RingCorrupt(RingError):
    """The segment holds an impossible index; nothing was read."""


class RingBusy(RingError):
    """Another live process holds the role (consumer, or SPSC producer)."""


def _error(name: str, code: int, action: str) -> RingError:
    cls = {lib.ZKRING_ECORRUPT: RingCorrupt, lib.ZKRING_EBUSY: RingBusy}.get(code, RingError)
    return cls(name, code, action)


def create(name: str, capacity: int, *, record_size: int = layout.RECORD_SIZE,
           mode: str = "spsc", group: str | int | None = None, replace: bool = False) -> None:
    """Create ring segment `name` (POSIX shm).  Mode 0600; with `group` (a
    name or gid) 0660 owned by that group.  `replace` unlinks an existing
    segment of that name first (a reader still mapping it keeps the old one)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, not {mode!r}")
    gid = -1 if group is None else (group if isinstance(group, int) else grp.getgrnam(group).gr_gid)
    if replace:
        unlink(name, missing_ok=True)
    rc = lib.zkring_create(name.encode(), capacity, record_size, MODES[mode], gid)
    if rc != lib.ZKRING_OK:
        raise _error(name, rc, f"create (capacity {capacity}, record size {record_size})")


def unlink(name: str, missing_ok: bool = False) -> None:
    if lib.zkring_unlink(name.encode()) != lib.ZKRING_OK:
        if not (missing_ok and ffi.errno == 2):  # ENOENT
            raise _error(name, lib.ZKRING_ESYS, "unlink")


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
    role: int
    _what: str

    def __init__(self, name: str, record_size: int, takeover: bool, options: int = 0):
        self.name = name
        self.record_size = record_size
        self._r = ffi.new("zkring_t *")
        rc = lib.zkring_open(self._r, name.encode(), self.role, record_size,
                             options | (lib.ZKRING_O_TAKEOVER if takeover else 0))
        if rc != lib.ZKRING_OK:
            self._r = None
            raise _error(name, rc, f"open as {self._what}")

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

    def __init__(self, name: str, record_size: int = layout.RECORD_SIZE, takeover: bool = False):
        super().__init__(name, record_size, takeover)

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
    again whatever it had polled but not released."""

    role = lib.ZKRING_CONSUMER
    _what = "consumer"

    def __init__(self, name: str, record_size: int = layout.RECORD_SIZE,
                 idle: IdleStrategy | None = None, takeover: bool = False,
                 defer_release: bool = False):
        super().__init__(name, record_size, takeover,
                         lib.ZKRING_O_DEFER_RELEASE if defer_release else 0)
        self.idle = idle or IdleStrategy.spin_then_park()
        self._idle = self.idle._c()

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

