"""`zksidecar bench restart` (also part of `bench e2e`): how long a daemon
takes from its start to READY (its admin endpoint answering, after the
journal's replay) with 10^5 and 10^6 operations in its journal, half of
them proven: ``restart_s_1e5``, ``restart_s_1e6`` and their ratio
``restart_growth``.

The state is made by the daemon's own machinery, in this process: the
synthetic flow (tools/loadgen.py) journaled in ingest's chunks of 4,096
records by daemon/journal.py, sequenced with each chunk's journal position
by the daemon's sequencer thread with its checkpoints (snapshots every
journal.snapshot_every_ops, the default), in the daemon's default
configuration (books of 1,024 slots, batches of up to 1,024 operations).
The batches holding the first half of the operations are proven for real
(daemon/jobs.py prove_job, at workers.security_bits, on a process per core)
and put in the proof store; the rest are left unproven, as a daemon that
fell behind leaves them.  The last TAIL operations (half of
snapshot_every_ops: the mean a kill -9 at a random moment leaves) are
sequenced with checkpoints off, and the sequencer stops without a last
snapshot, as after kill -9: at 10^6 the journal ends with those records
after its newest snapshot, and at 10^5 (one snapshot interval) no snapshot
is taken at all, so its start replays the whole journal.  (Without the
tail, where a run's last checkpoint falls would decide the ratio: at
exactly 10^5 operations it falls at the very end, and that start replays
nothing.)  The journal is written with fsync "never"
(durability plays no part in a restart).

Each figure is the median of RUNS starts, each on a fresh copy of the
state (a start changes it: a stop writes a snapshot).  ``replay_s_1e6`` is
the same state's start with every snapshot removed (a replay of the whole
journal, as before snapshots existed): the baseline of the same run.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from zksidecar.daemon.checkpoint import Checkpoints
from zksidecar.daemon.jobs import ProofJob, prove_job
from zksidecar.daemon.journal import Journal
from zksidecar.daemon import snapshot
from zksidecar.daemon.batches import BatchPolicy
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.sequencer import Sequencer, SequencerThread
from zksidecar.daemon.store import ProofStore
from zksidecar.prover.orderbook import proof_file

from .. import forks, loadgen
from ..demo import DaemonProcess, fresh_dir
from .daemons import tag as _tag
from .runner import all_cores

BENCH_DIR = "./var/bench-restart"
SIZES = (10 ** 5, 10 ** 6)
RUNS = 3
CHUNK = 4096                 # ingest's poll chunk (daemon/ingest.py)
SETTINGS = {"workers": {"count": 1, "stop_grace_s": 0}, "store": {"fsync": False}}
TAIL_SHARE = 2             # the records after the newest snapshot: snapshot_every_ops / this


def restart(sw, *, root: str = BENCH_DIR, sizes: tuple[int, ...] = SIZES, runs: int = RUNS) -> dict:
    root = fresh_dir(root)
    cores = all_cores()
    figures: dict = {}
    for n in sizes:
        state = os.path.join(root, f"state-{n}")
        sw.step(f"restart: building a journal of {n:,} operations, half of them proven")
        made = _build(state, n, len(cores), _tag(f"r{n}"))
        times = [_start(state, os.path.join(root, f"run-{n}-{k}"), _tag(f"r{n}-{k}"))
                 for k in range(runs)]
        sw.step(f"restart at {n:,}: {', '.join(f'{t:.2f}' for t in times)} s")
        label = _label(n)
        figures[f"restart_s_{label}"] = round(statistics.median(times), 3)
        figures[f"restart_state_{label}"] = made
        if n == max(sizes):
            full = _start(state, os.path.join(root, f"run-{n}-full"), _tag(f"r{n}-full"),
                          snapshots=False)
            sw.step(f"the same without snapshots (whole journal): {full:.2f} s")
            figures[f"replay_s_{label}"] = round(full, 3)
    if len(sizes) == 2:
        small, big = (f"restart_s_{_label(n)}" for n in sizes)
        figures["restart_growth"] = round(figures[big] / figures[small], 3)
    shutil.rmtree(root, ignore_errors=True)
    return figures


def _label(n: int) -> str:
    """1e6 for 10^6; the number itself otherwise."""
    k = len(str(n)) - 1
    return f"1e{k}" if n == 10 ** k else str(n)


def _daemon(state: str, tag: str) -> DaemonProcess:
    return DaemonProcess(state, SETTINGS, tag)


def _build(state: str, n: int, workers: int, tag: str) -> dict:
    """The journal and store of a daemon that took `n` operations and
    proved the first half (module docstring)."""
    os.makedirs(state)
    c = _daemon(state, tag).config
    ops = loadgen.flow(n, seed=5, capacity=c.book.capacity)
    closed = []
    with Journal(c.journal.dir, c.journal.segment_mib << 20, "never") as journal, \
            ProofStore(c.store.dir, fsync=False) as store:
        seq = Sequencer(c.book.capacity, c.trace_length, _policy(c), Metrics(), journal=journal,
                        max_symbols=c.book.max_symbols)
        cp = Checkpoints(journal, store, c.book.capacity, c.trace_length,
                         c.journal.snapshot_every_ops, c.journal.snapshot_every_s)
        thread = SequencerThread(seq, closed.append, cp)
        thread.start()
        tail = min(n, c.journal.snapshot_every_ops // TAIL_SHARE)

        def feed(part):
            for i in range(0, len(part), CHUNK):
                recs = part[i:i + CHUNK]
                thread.inbox.put((recs, time.monotonic_ns(),
                                  journal.append_ops(recs, time.time_ns())))
            while not thread.inbox.empty():      # everything sequenced, its checkpoints taken
                time.sleep(0.01)
            time.sleep(0.2)                      # the last item taken off the inbox, done

        feed(ops[:n - tail])
        cp.every_ops = 0             # no snapshot after this: the state a kill -9 leaves
        feed(ops[n - tail:])
        thread.stop()
        thread.join()
        if thread.error is not None:
            raise thread.error
        half, done = [], 0
        for b in closed:
            if done >= n // 2:
                break
            half.append(b)
            done += len(b.ops)
        jobs = [ProofJob.of(b, c.workers.security_bits) for b in half]
        for b, res in zip(half, _in_pool(prove_job, jobs, workers)):
            store.put(b.symbol, b.batch_id, proof_file.encode(res), replace=True)
    return {"ops": n, "batches": len(closed), "proven_batches": len(half), "proven_ops": done,
            "snapshots": len(snapshot.listed(c.journal.dir)), "ops_after_newest_snapshot": tail}


def _in_pool(fn, items: list, workers: int):
    """fn(item) for every item on `workers` forked processes, the results
    in order.  A pool that forks launches every worker at its first
    submission, which map() makes before it returns: the forks are in the
    hold (tools/forks.py), the proving is not."""
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        with forks.sigterm_held():
            results = pool.map(fn, items, chunksize=4)
        yield from results


def _policy(c) -> BatchPolicy:
    return BatchPolicy(c.batch.max_batch_size, c.batch.batch_timeout_ms / 1000,
                       c.batch.critical_qty, c.batch.critical_per_s)


def _start(state: str, run_dir: str, tag: str, snapshots: bool = True) -> float:
    """Seconds from starting a daemon on a copy of `state` to its admin
    endpoint answering (READY is sent just before)."""
    shutil.copytree(state, run_dir, ignore=shutil.ignore_patterns("*.sock", "LOCK"))
    if not snapshots:
        for _, _, path in snapshot.listed(os.path.join(run_dir, "journal")):
            os.unlink(path)
    d = _daemon(run_dir, tag)
    try:
        t0 = time.perf_counter()
        d.start(timeout=600)
        took = time.perf_counter() - t0
        d.stop()
    finally:
        d.cleanup()
    shutil.rmtree(run_dir, ignore_errors=True)
    return took
