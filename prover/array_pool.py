"""Large arrays a process keeps from one proof to the next.

glibc serves an allocation of 32 MiB or more (its largest mmap threshold,
daemon/malloc.py) from a mapping of its own and unmaps it when freed, so
the next proof's array of that size faults in fresh pages the kernel has
to zero: at the bench's zk shape the lane's trace matrix (2^15 x 304,
38 MiB) and its LDE (2^16 x 304, 76 MiB), ~1,000-2,500 page faults and
12-28 ms of system time a proof.  :func:`empty` hands out such arrays
from buffers the process keeps instead; smaller ones come from
``np.empty`` (the heap keeps those, malloc.keep_proof_buffers).

A buffer is handed out again only when nothing refers to it any more: no
array handed out of it, nor any view of one (numpy's views hold the
array whose memory they see), is alive.  The refcount says so; nothing
has to be given back, and a caller that keeps a result (a commitment's
LDE held after prove() returns, a prepared batch's lane) keeps its memory
to itself: the next request is served by another buffer.

A buffer serves arrays of its own size in bytes (a proving process asks
for the same sizes proof after proof).  Bounded: the pool never holds
more bytes than the most its arrays ever took at once in this process
(those in use plus the one asked for); a request no free buffer is the
size of drops free buffers, the oldest first, until the new one keeps
that bound.  A proving process therefore holds, between proofs, at
most the large arrays its largest proof held at once, which its peak
(the daemon's memory estimate, daemon/config.py) already counts.
"""
from __future__ import annotations

import os
import sys
import threading

import numpy as np

#: arrays from this size on are pooled: glibc's largest mmap threshold, so
#: each would otherwise be a mapping of its own, unmapped when freed
MIN_BYTES = 32 << 20


class ArrayPool:
    """Buffers of at least `min_bytes` (None: none, every array is numpy's
    own), each handed out again once nothing refers to what was handed out
    of it (module doc)."""

    def __init__(self, min_bytes: int | None = MIN_BYTES):
        self.min_bytes = min_bytes
        self._lock = threading.Lock()
        self._bufs: list[np.ndarray] = []       # uint8, each owning its memory
        self._peak = 0                          # most bytes in use at once, the one asked for included
        # the refcount of a buffer nothing but the pool refers to, as _refs counts it
        probe = [np.empty(1, dtype=np.uint8)]
        self._alone = _refs(probe, 0)

    def empty(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised C-contiguous array, as ``np.empty(shape, dtype)``."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if self.min_bytes is None or nbytes < self.min_bytes:
            return np.empty(shape, dtype=dtype)
        with self._lock:
            buf = self._take(nbytes)
        return buf[:nbytes].view(dtype).reshape(shape)

    def keep_from(self, min_bytes: int | None) -> None:
        """Pool arrays of `min_bytes` or more from now on; None: none, and
        the pool lets go of its buffers (one still in use lives as long as
        what refers to it, as numpy's own would)."""
        with self._lock:
            self.min_bytes = min_bytes
            if min_bytes is None:
                self._bufs, self._peak = [], 0

    def _after_fork(self) -> None:
        self._lock = threading.Lock()       # a forked child's: another thread may have held the parent's

    @property
    def held_bytes(self) -> int:
        """The bytes of every buffer the pool keeps, in use or not."""
        with self._lock:
            return sum(b.nbytes for b in self._bufs)

    def _free(self) -> list[int]:
        """The indices of the buffers nothing but the pool refers to."""
        return [i for i in range(len(self._bufs)) if _refs(self._bufs, i) == self._alone]

    def _take(self, nbytes: int) -> np.ndarray:
        free = self._free()
        in_use = sum(b.nbytes for i, b in enumerate(self._bufs) if i not in free)
        self._peak = max(self._peak, in_use + nbytes)
        for i in free:
            if self._bufs[i].nbytes == nbytes:
                return self._bufs[i]
        # free buffers go, the oldest first, until the new one keeps the pool
        # within the most its arrays took at once
        held = sum(b.nbytes for b in self._bufs) + nbytes
        drop = set()
        for i in free:
            if held <= self._peak:
                break
            drop.add(i)
            held -= self._bufs[i].nbytes
        self._bufs = [b for i, b in enumerate(self._bufs) if i not in drop]
        buf = np.empty(nbytes, dtype=np.uint8)
        self._bufs.append(buf)
        return buf


def _refs(bufs: list[np.ndarray], i: int) -> int:
    return sys.getrefcount(bufs[i])


#: the process's pool, off until the process says it proves
#: (malloc.keep_proof_buffers): the prover's large arrays come from it
POOL = ArrayPool(min_bytes=None)
os.register_at_fork(after_in_child=POOL._after_fork)


def empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """``np.empty(shape, dtype)``, from the process's pool when it is large
    enough to be a mapping of its own (ArrayPool)."""
    return POOL.empty(shape, dtype)
