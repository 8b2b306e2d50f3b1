"""glibc malloc's two thresholds, set for what a process does with memory.

    keep_freed_memory()     a verifier: each batch frees and allocates the
                            same few megabytes again; keep them
    keep_proof_buffers()    a proving process (a worker): each proof frees
                            and allocates the same arrays again; keep them,
                            up to a bound, the largest in the prover's
                            array pool (prover/array_pool.py)
    return_freed_memory()   the daemon: its memory must stay under a budget
                            (limits.memory_mib) whatever it held a minute
                            ago; give freed memory back

Each sets the mmap threshold to a fixed value: by default glibc raises it
after each large free (up to 32 MiB), so after a burst of large arrays
later ones come from the heap, where freed space stays resident behind
whatever was allocated above it.  Nothing on other C libraries (no
mallopt): the process then runs with that library's defaults.
"""
from __future__ import annotations

import ctypes

from ..prover import array_pool

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
    _keep(256 << 20)


def keep_proof_buffers() -> None:
    """Have malloc keep a proof's arrays for the next proof of the process.

    A proof allocates and frees the same arrays each time: the LDE
    matrices, their Merkle trees, the quotient's and DEEP's columns (tens of
    MiB at 2^14 operations).  With glibc's moving thresholds a proving
    process still handed some back and faulted them in again: 500 to 6,700
    page faults (2-26 MiB) in each proof of 2^14 operations after the
    first, 4-36 ms of system time on a KVM guest.  With the mmap threshold
    fixed at glibc's largest (32 MiB) every array below it comes from the
    heap, and with a trim threshold of 32 MiB the heap keeps at most that
    much free memory at its top: ~0 faults a proof after the first.  What
    this holds between proofs: the heap's free chunks (as before) and at
    most 32 MiB more at its top, never more than the process's largest
    proof used.  Measured at 2^14 operations: resident 195 MiB after five
    proofs, 186 with glibc's defaults.

    An array of 32 MiB or more is a mapping of its own whatever the
    thresholds, unmapped when freed: zk mode's lane matrix and its LDE at
    2^15 rows (38 and 76 MiB), faulted in again by every proof, 1,000 to
    2,500 faults and 12-28 ms of system time.  So this also turns on the
    prover's array pool (prover/array_pool.py), which keeps such arrays
    for the next proof: no fault a proof after the first, and between
    proofs the large arrays of the process's largest proof held, which its
    peak counts already (a zk worker proving the bench's batch at 2^15
    rows: resident ~350 MiB between proofs, which is its peak).  Released
    when the process exits."""
    _keep(32 << 20)
    array_pool.POOL.keep_from(array_pool.MIN_BYTES)


def _keep(trim: int) -> None:
    mallopt = _mallopt()
    if mallopt is not None:
        mallopt(M_TRIM_THRESHOLD, trim)
        mallopt(M_MMAP_THRESHOLD, 32 << 20)         # glibc's largest


def return_freed_memory() -> None:
    """Have malloc give freed memory back to the kernel.

    Under overload the daemon's arrays come and go by the megabyte (record
    chunks read from the ring and from the journal, rebuilt witnesses,
    jobs pickled to workers).  Every allocation of 256 KiB or more is its
    own mapping, unmapped when freed, and the heap's free top is trimmed
    past 1 MiB: measured on the overload bench (docs/BENCHMARKS.md), the
    daemon process peaked at 323 MiB this way against 396 MiB with glibc's
    moving threshold, the tree at 463 against 558.  The prover's array
    pool is off (it keeps nothing)."""
    array_pool.POOL.keep_from(None)
    mallopt = _mallopt()
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, 256 << 10)
        mallopt(M_TRIM_THRESHOLD, 1 << 20)
