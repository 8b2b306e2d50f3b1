"""glibc malloc's two thresholds, set for what a process does with memory.

    keep_freed_memory()     a verifier: each batch frees and allocates the
                            same few megabytes again; keep them
    return_freed_memory()   the daemon: its memory must stay under a budget
                            (limits.memory_mib) whatever it held a minute
                            ago; give freed memory back

Both set the mmap threshold to a fixed value: by default glibc raises it
after each large free (up to 32 MiB), so after a burst of large arrays
later ones come from the heap, where freed space stays resident behind
whatever was allocated above it.  Nothing on other C libraries (no
mallopt): the process then runs with that library's defaults.
"""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3     # <malloc.h>


def _mallopt():
    try:
        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> None:
    """Have malloc keep what a verification frees for the next one.

    Each batch allocates and frees the same few megabytes (the records, the
    AIR's public tables, the proof's arrays).  By default glibc gives freed
    memory at the top of its heap back to the kernel, and the next batch
    faults it in again: ~1,200 page faults a batch of 2^14 operations,
    1-1.5 ms of its ~14 ms on a KVM guest.  A trim threshold above what a
    verification uses and the largest fixed mmap threshold keep those pages
    in the process."""
    mallopt = _mallopt()
    if mallopt is not None:
        mallopt(M_TRIM_THRESHOLD, 256 << 20)
        mallopt(M_MMAP_THRESHOLD, 32 << 20)         # glibc's largest


def return_freed_memory() -> None:
    """Have malloc give freed memory back to the kernel.

    Under overload the daemon's arrays come and go by the megabyte (record
    chunks read from the ring and from the journal, rebuilt witnesses,
    jobs pickled to workers).  Every allocation of 256 KiB or more is its
    own mapping, unmapped when freed, and the heap's free top is trimmed
    past 1 MiB: measured on the overload bench (docs/BENCHMARKS.md), the
    daemon process peaked at 323 MiB this way against 396 MiB with glibc's
    moving threshold, the tree at 463 against 558."""
    mallopt = _mallopt()
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, 256 << 10)
        mallopt(M_TRIM_THRESHOLD, 1 << 20)
