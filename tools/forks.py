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
import threading

#: per thread: the signal mask before its outermost sigterm_held() (None,
#: or no attribute: none is running in it).  The mask is each thread's, so
#: is the hold; a new child reads the forking thread's, its only thread.
_held = threading.local()


class sigterm_held:
    """Run a block that forks (a multiprocessing fork's start, a fork
    pool's first submission, which launches all of its workers) with
    SIGTERM blocked in this thread, the one that forks (module docstring).
    A block inside another of the same thread is part of the outer one.

    signal.pthread_sigmask runs the handlers of signals pending when it
    returns, so a Ctrl-C can raise from the very call that blocked SIGTERM:
    the mask before is read first, and put back if anything raises before
    the block runs, never left blocked for the rest of the command."""

    def __enter__(self) -> None:
        self.outer = getattr(_held, "before", None) is None
        if not self.outer:
            return
        before = signal.pthread_sigmask(signal.SIG_BLOCK, ())       # read: nothing to undo
        _held.before = before
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        except BaseException:
            self._release(before)
            raise

    def __exit__(self, *exc) -> None:
        if self.outer:
            self._release(_held.before)

    @staticmethod
    def _release(before: set) -> None:
        # the hold ends first: a Ctrl-C that the restore below raises must
        # not leave this thread's later holds believing one runs
        _held.before = None
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _in_new_child() -> None:
    """In a child forked inside sigterm_held(): the default action first,
    then the mask as it was before the hold (a pending SIGTERM ends the
    child here).  The mask is put back whatever happens: a Ctrl-C that
    reached the child makes signal.signal raise, and Python ignores an
    exception of an at-fork hook, so a child left blocked would live on
    past every SIGTERM (its inherited handler then ends it: tools/cli.py
    _interrupt)."""
    before = getattr(_held, "before", None)
    if before is None:
        return
    _held.before = None
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


os.register_at_fork(after_in_child=_in_new_child)
