"""The proofs of a chain verified on several cores, and the progress of it
(`zksidecar verify --jobs N`, `--progress`).

Each proof is verified alone (prover/orderbook/batch.py check_alone) in a
worker process, which reads it itself from its file (or gets its bytes from
the store, which only the parent process opens) and sends back a Checked: a
few hundred bytes of public facts and the verdict, never the proof.  The
results are handed on in chain order, as they arrive, to the caller's
ChainCheck, which checks the links: a batch is accepted only when its proof
verified and its pre-state is the previous accepted post-state, whatever
order the workers finished in.  A look-ahead window bounds what is in
flight (a day's chain is hundreds of thousands of proofs).  With one job
nothing is forked: the same functions run in this process, one proof at a
time, so the verdicts and messages are the same whatever the job count.
"""
from __future__ import annotations

import concurrent.futures as cf
import functools
import hashlib
import itertools
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from zksidecar.daemon.malloc import keep_freed_memory
from zksidecar.daemon.store import ProofStore, StoreChanged, StoreCorrupt
from zksidecar.prover import input_file
from zksidecar.prover.orderbook import proof_file
from zksidecar.prover.orderbook.batch import Checked, check_alone
from zksidecar.prover.proof import ProofFormatError
from zksidecar.prover.verify import VerificationError
from . import forks

#: results waiting in chain order per worker: enough that no worker idles
#: while the parent checks links, few enough to hold in memory
WINDOW_PER_JOB = 8
#: a report's files hashed ahead of their check (Checker.sha256s): a report
#: of a few hundred batches is re-hashed while the batches after it are
#: verified; the rest of a day's (hundreds of thousands) after them
HASH_AHEAD = 256


def default_jobs() -> int:
    """Every core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Unreadable(Exception):
    """A proof that cannot be read (its message names it), raised in chain
    order where its batch would have been checked."""


def check_path(path: str, min_security: int, max_trace_length: int,
               digest: bool = False) -> Checked | Exception:
    """The proof in file `path` verified alone (with the SHA-256 of its
    bytes if `digest`), or Unreadable naming it.  Returned, not raised: the
    parent raises it when the chain reaches it."""
    try:
        data = input_file.read(path, proof_file.max_file_bytes(max_trace_length), "batch proof file")
        bp, air = proof_file.decode_with_air(data)
    except OSError as exc:
        return Unreadable(f"{path}: {exc.strerror or exc}")
    except ProofFormatError as exc:
        return Unreadable(f"{path}: {exc}")
    return check_alone(bp, min_security, max_trace_length,
                       hashlib.sha256(data).digest() if digest else b"", air)


def check_stored(item: tuple[int, int, bytes | str], min_security: int,
                 max_trace_length: int, digest: bool = False) -> Checked | Exception:
    """A stored proof (symbol, batch id, its bytes or why they could not be
    read) verified alone, after checking it names the symbol and batch id it
    is stored under."""
    symbol, bid, data = item
    if isinstance(data, str):
        return Unreadable(f"batch {bid} unreadable: {data}")
    try:
        bp, air = proof_file.decode_with_air(data)
    except ProofFormatError as exc:
        return Unreadable(f"batch {bid} unreadable: {exc}")
    if bp.public.batch_id != bid or bp.public.symbol != symbol:
        return VerificationError(f"stored as symbol {symbol} batch {bid}, the proof is "
                                 f"symbol {bp.public.symbol} batch {bp.public.batch_id}")
    return check_alone(bp, min_security, max_trace_length,
                       hashlib.sha256(data).digest() if digest else b"", air)


def sha256_file(path: str) -> tuple[str, bytes | str]:
    """(path, the SHA-256 of its bytes, or why they could not be read).
    Read, not mapped: a file truncated while mapped would kill the process
    with SIGBUS."""
    h = hashlib.sha256()
    try:
        with input_file.open_regular(path, buffering=0) as f:
            # a proof file in one read and one update where it fits 16 MiB:
            # each call gives up the GIL, and taking it back behind a thread
            # running Python waits up to the switch interval (5 ms)
            buf = memoryview(bytearray(min(os.fstat(f.fileno()).st_size + 1, 16 << 20)))
            while n := f.readinto(buf):
                h.update(buf[:n])
    except OSError as exc:
        return path, str(exc.strerror or exc)
    return path, h.digest()


class WorkerDied(Exception):
    """A worker process ended without a result (killed, out of memory)."""


class Progress:
    """One line on stderr, redrawn at most four times a second: batches
    done of all, batches and operations per second, and the time left at
    that rate."""

    def __init__(self, total: int, stream=None):
        self.total, self.stream = total, stream or sys.stderr
        self.batches = self.ops = 0
        self.t0 = self.drawn = time.monotonic()

    def advance(self, c: Checked) -> None:
        self.batches += 1
        self.ops += c.ops
        now = time.monotonic()
        if now - self.drawn >= 0.25:
            self.drawn = now
            self.draw(now)

    def draw(self, now: float) -> None:
        elapsed = max(now - self.t0, 1e-9)
        rate = self.batches / elapsed
        left = (self.total - self.batches) / rate if rate else 0.0
        eta = time.strftime("%H:%M:%S", time.gmtime(left))
        self.stream.write(f"\rverifying: {self.batches:,}/{self.total:,} batches "
                          f"({self.batches / max(self.total, 1):.0%}), {rate:,.0f} batches/s, "
                          f"{self.ops / elapsed:,.0f} operations/s, ETA {eta} ")
        self.stream.flush()

    def clear(self) -> None:
        """Blank the line, for a line of output on the same terminal (the
        next advance draws it again)."""
        self.stream.write("\r\033[K")
        self.stream.flush()

    def close(self) -> None:
        self.draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()


class Checker:
    """Proofs verified alone on `jobs` processes (one: in this process), the
    results in chain order.  A context manager: leaving it stops the
    workers, abandoning what is still queued (the first failure ends a
    chain).  `progress`: show a Progress of `total` batches (None: only
    when stderr is a terminal)."""

    def __init__(self, jobs: int, min_security: int, max_trace_length: int,
                 progress: bool | None = None, total: int = 0, digest: bool = False):
        if jobs < 1:
            raise ValueError("jobs must be at least 1")
        self.jobs, self.min_security, self.max_trace_length = jobs, min_security, max_trace_length
        self.digest = digest          # each Checked carries its proof's SHA-256 (for a report)
        keep_freed_memory()     # here and, forked, in every worker
        show = sys.stderr.isatty() if progress is None else progress
        self.progress = Progress(total) if show and total else None
        self.pool: cf.ProcessPoolExecutor | None = None

    def __enter__(self) -> "Checker":
        return self

    def __exit__(self, *exc) -> None:
        if self.progress:
            self.progress.close()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def files(self, paths: list[str]) -> Iterator[Checked]:
        return self._in_order(functools.partial(check_path, min_security=self.min_security,
                                                max_trace_length=self.max_trace_length,
                                                digest=self.digest),
                              paths, len(paths))

    def stored(self, store: ProofStore, symbol: int, ids: list[int]) -> Iterator[Checked]:
        def items():
            for bid in ids:
                try:
                    data: bytes | str = store.get(symbol, bid)
                except StoreCorrupt as exc:     # what the operator can do about it, with it
                    data = (f"{exc}; `zksidecar reprove --config FILE` proves it again while the "
                            "journal holds it (docs/STORE.md, \"Proving a damaged proof again\")")
                except StoreChanged as exc:     # pruned beside this reader: not damage
                    data = str(exc)
                yield symbol, bid, data

        return self._in_order(functools.partial(check_stored, min_security=self.min_security,
                                                max_trace_length=self.max_trace_length,
                                                digest=self.digest),
                              items(), len(ids))

    def sha256s(self, paths: list[str], verifying: int = 0) -> Iterator[tuple[str, bytes | str]]:
        """sha256_file of every path, started now, the results in order as
        the caller iterates (a report's files re-hashed: ~107 MB for 64
        batches of 2^14 operations), while this process goes on to verify
        `verifying` files (files()).  On threads, not the worker processes:
        hashlib hashes without the GIL, and nothing is sent between
        processes for it.  Workers that will verify are forked first: fork
        copies only the calling thread, whatever locks the others hold."""
        if self.jobs > 1 and verifying > 1:
            self._start_pool()
        pool = cf.ThreadPoolExecutor(self.jobs)
        it = iter(paths)
        pending = deque(pool.submit(sha256_file, p) for p in itertools.islice(it, HASH_AHEAD))

        def results():
            try:
                while pending:
                    done = pending.popleft().result()
                    for p in it:
                        pending.append(pool.submit(sha256_file, p))
                        break
                    yield done
            finally:            # also when the caller stops early (a file unreadable)
                pool.shutdown(wait=True, cancel_futures=True)
        return results()

    def _in_order(self, fn: Callable, items: Iterable, count: int) -> Iterator:
        """fn(item) for every item, yielded in the items' order; an
        exception fn returned is raised there."""
        if self.jobs == 1 or count <= 1:
            results: Iterator = map(fn, items)
        else:
            results = self._pooled(fn, items)
        for r in results:
            if isinstance(r, Exception):
                raise r
            if self.progress and isinstance(r, Checked):
                self.progress.advance(r)
            yield r

    def _start_pool(self) -> None:
        if self.pool is None:
            # fork: the workers start with this process's modules (the
            # kernels, numpy) already loaded, in milliseconds (a forkserver
            # imports them again, ~0.5 s: as long as verifying 64 batches).
            # A pool that forks launches every worker at its first
            # submission (never later: concurrent.futures.process), which
            # is therefore made here, before any thread of ours starts
            self.pool = cf.ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("fork"))
            with forks.sigterm_held():
                self.pool.submit(int)

    def _pooled(self, fn: Callable, items: Iterable) -> Iterator:
        self._start_pool()
        pending: deque[cf.Future] = deque()
        it = iter(items)
        try:
            for item in it:
                pending.append(self.pool.submit(fn, item))
                if len(pending) >= self.jobs * WINDOW_PER_JOB:
                    break
            while pending:
                done = pending.popleft().result()
                for item in it:
                    pending.append(self.pool.submit(fn, item))
                    break
                yield done
        except cf.process.BrokenProcessPool:    # from a result, or a submission after
            raise WorkerDied("a verifying process ended without its result (killed, or "
                             "out of memory?): try fewer --jobs") from None
        finally:
            for f in pending:
                f.cancel()
