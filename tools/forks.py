"""Forks that a SIGTERM cannot slip past.

`demo` and `bench` take SIGTERM as Ctrl-C in their own process (tools/cli.py
_interrupt_on_sigterm), and the processes they fork (the ring bench's
producers and consumers, the restart bench's prover pool, the verifying
pool) must end on SIGTERM by its default action instead.  A SIGTERM that
reaches a new child inside fork(), or before Python's after-fork code has
run, reaches Python's C-level handler, which only notes it; that after-fork
code then clears every noted signal (so that a parent's signal is not also
handled by its copy), and the child lives on, a worker nobody stops.

sigterm_held() closes that window: SIGTERM is blocked across the fork, so
one sent to the new child stays pending in the kernel, where nothing
clears it.  The child's first act (an at-fork hook, before any other Python
code of the child) is to take the default action back and unblock: a
pending SIGTERM then ends it.  The parent unblocks when the block ends, and
a SIGTERM pending for it reaches its handler then (one sent to the process
may be taken meanwhile by another of its threads, which does not block it:
its handler runs in the block then, as it did without the hold).
"""
from __future__ import annotations

import os
import signal
from contextlib import contextmanager

#: the signal mask before the outermost sigterm_held() (None: none is
#: running); a new child reads its copy of it
_mask_before: set | None = None


@contextmanager
def sigterm_held():
    """Run a block that forks (a multiprocessing fork's start, a fork
    pool's first submission, which launches all of its workers) with
    SIGTERM blocked in this thread, the one that forks (module docstring).
    A block inside another is part of the outer one."""
    global _mask_before
    if _mask_before is not None:
        yield
        return
    _mask_before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        before, _mask_before = _mask_before, None
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _in_new_child() -> None:
    """In a child forked inside sigterm_held(): the default action first,
    then the mask as it was before the hold (a pending SIGTERM ends the
    child here)."""
    global _mask_before
    if _mask_before is None:
        return
    before, _mask_before = _mask_before, None
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, before)


os.register_at_fork(after_in_child=_in_new_child)
