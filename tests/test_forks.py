"""The forks of `demo` and `bench` (tools/forks.py sigterm_held): a SIGTERM
that reaches a new child in the instant after fork() ends that child by the
default action, and one that reaches the forking process then is its
handler's (Ctrl-C there), after the fork.

Without the hold, Python's C-level handler only notes a SIGTERM that lands
in a new child before the child's after-fork code has run, and that code
clears what was noted: the child lived on, exit 0.  The instant is made
here by a C at-fork handler (tests/clients/sigterm_in_fork.c) that sends the
signal from inside fork(), in each real fork site."""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import shutil
import signal
import subprocess
import threading
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

import pytest

from source_tree import ROOT
from zksidecar.tools import cli, forks
from zksidecar.tools.bench import restart, ring
from zksidecar.tools.verify_jobs import Checker, WorkerDied


@pytest.fixture(scope="module")
def sigterm_in_fork(tmp_path_factory):
    """The C at-fork handler, loaded in this process (disarmed between uses)."""
    lib_path = tmp_path_factory.mktemp("sigterm_in_fork") / "sigterm_in_fork.so"
    subprocess.run([shutil.which("cc") or "gcc", "-std=gnu11", "-O1", "-Wall", "-Werror",
                    "-shared", "-fPIC", "-pthread", "-o", str(lib_path),
                    str(ROOT / "tests" / "clients" / "sigterm_in_fork.c")], check=True)
    return ctypes.CDLL(str(lib_path))


@contextmanager
def sigterm_as_ctrl_c():
    """The handler `demo` and `bench` run under, put back after."""
    before = signal.getsignal(signal.SIGTERM)
    restore = cli._interrupt_on_sigterm()
    try:
        yield
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) is before


@contextmanager
def armed(lib):
    assert lib.arm() == 0
    try:
        yield
    finally:
        lib.disarm()


def ring_producer() -> str:
    """The ring bench's fork site: a child pinned to a core, its result piped back."""
    proc, _conn = ring._in_child(min(os.sched_getaffinity(0)), int)
    proc.join(60)
    return "died of SIGTERM" if proc.exitcode == -signal.SIGTERM else f"exit {proc.exitcode}"


def restart_pool() -> str:
    """The restart bench's fork site: its prover pool (here proving abs)."""
    try:
        return f"results {list(restart._in_pool(abs, [-1, -2], 2))}"
    except BrokenProcessPool:
        return "died of SIGTERM"


def verifying_pool() -> str:
    """The verifying pool (`demo` verifies every stored proof, `bench verify` too)."""
    try:
        with Checker(2, 0, 1 << 20, progress=False) as checker:
            return f"results {list(checker._pooled(abs, [-1, -2]))}"
    except WorkerDied:
        return "died of SIGTERM"


@pytest.mark.parametrize("fork_site", [ring_producer, restart_pool, verifying_pool])
def test_a_sigterm_in_the_instant_after_fork_ends_the_new_child(fork_site, sigterm_in_fork):
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    with sigterm_as_ctrl_c(), armed(sigterm_in_fork):
        assert fork_site() == "died of SIGTERM"
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == mask


def _exit_0() -> None:
    os._exit(0)


def test_a_sigterm_to_the_forking_thread_in_the_hold_is_its_handlers_after_the_fork():
    """A SIGTERM that reaches the forking thread while it forks stays
    pending there (not the child's: a child starts with none pending) and
    is the Ctrl-C of its handler when the hold ends, the child forked.
    (Sent to the thread: one sent to the process may be taken by another
    of its threads, which does not block it, and the handler then runs in
    the hold: the parent's Ctrl-C all the same.)"""
    fork = multiprocessing.get_context("fork")
    child = fork.Process(target=_exit_0)
    with sigterm_as_ctrl_c():
        with pytest.raises(KeyboardInterrupt):
            with forks.sigterm_held():
                signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
                assert signal.SIGTERM in signal.sigpending()
                child.start()
    child.join(60)
    assert child.exitcode == 0
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, set())


def test_a_hold_inside_a_hold_is_the_outer_ones():
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    with forks.sigterm_held():
        with forks.sigterm_held():
            pass
        assert signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, set())
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == mask


def sigterm_blocked() -> bool:
    return signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, set())


def test_a_ctrl_c_from_the_call_that_blocks_sigterm_leaves_it_unblocked(monkeypatch):
    """signal.pthread_sigmask runs the handlers of signals pending when it
    returns (CPython's signalmodule.c), and a Ctrl-C then raises from it
    with the mask already changed: the hold must not leave SIGTERM blocked
    for the rest of the command (its cleanup), nor believe itself running."""
    pthread_sigmask = signal.pthread_sigmask

    def ctrl_c_on_block(how, mask):
        before = pthread_sigmask(how, mask)
        if how == signal.SIG_BLOCK and signal.SIGTERM in mask:
            raise KeyboardInterrupt
        return before

    monkeypatch.setattr(signal, "pthread_sigmask", ctrl_c_on_block)
    with pytest.raises(KeyboardInterrupt):
        with forks.sigterm_held():
            pass
    monkeypatch.undo()
    assert not sigterm_blocked()
    with forks.sigterm_held():                          # a later hold blocks
        assert sigterm_blocked()
    assert not sigterm_blocked()


def test_a_hold_in_another_thread_blocks_in_that_thread_too():
    """The mask is each thread's: a thread that forks while another thread
    is in its hold is held all the same (it was a nested hold's no-op)."""
    inside, release, seen = threading.Event(), threading.Event(), []

    def other():
        with forks.sigterm_held():
            inside.set()
            release.wait(60)

    t = threading.Thread(target=other)
    t.start()
    try:
        assert inside.wait(60)
        with forks.sigterm_held():
            seen.append(sigterm_blocked())
    finally:
        release.set()
        t.join(60)
    assert seen == [True] and not sigterm_blocked()


def test_a_new_child_whose_at_fork_hook_is_interrupted_still_unblocks_sigterm(monkeypatch):
    """A Ctrl-C that reaches the new child (Ctrl-C goes to the process
    group) before its hook takes the default action makes signal.signal
    raise there, and Python ignores an exception in an at-fork hook: the
    child must not live on with SIGTERM blocked, which nothing would then
    end by SIGTERM."""
    def ctrl_c(signum, handler):
        raise KeyboardInterrupt

    with forks.sigterm_held():
        monkeypatch.setattr(signal, "signal", ctrl_c)
        pid = os.fork()
        if pid == 0:
            os._exit(3 if sigterm_blocked() else 0)
        monkeypatch.undo()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
