"""Peak memory of one proving worker per `ops` height, in each mode: the
basis of daemon/config.py's memory estimate (WORKER_* and ZK_WORKER_*).

    .venv/bin/python benchmarks/worker_memory.py [--zk-only] [--max-log 15]
    .venv/bin/python benchmarks/worker_memory.py --long 30 [--max-log 15]

Not a test and not a benchmark suite: a measurement made by hand when the
prover's memory changes, its figures written beside the constants.  Each
point runs in a fresh process spawned as the daemon spawns its workers
(daemon/workers.py): malloc set for proving (daemon/malloc.py), a warm-up
proof of the chain's shape, then one job proven as a worker proves it
(daemon/jobs.prove_job) and its file encoded; the process's peak RSS
(getrusage ru_maxrss) is the figure, as `zksidecar bench prover` reports it.
The book's capacity is half the height (the automatic cap: an operation of
the book's worst case fits), the batch as many synthetic operations as the
height holds (zk mode proves every batch at the chain's one height whatever
it holds; transparent mode at the rows it takes, so a full one).

``--long N`` is a worker's long run instead, at the height 2^max-log: one
spawned process, malloc set for proving, a warm-up proof in each mode,
then N zk jobs and N transparent ones, each a batch of its own from one
synthetic flow, and after each job its resident memory (now: what the
process holds between proofs), its peak so far, and what the prover's
array pool (prover/array_pool.py) keeps.  A process whose memory grew
with the proofs it made would show it here.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource

BITS = 80


def _point(mode: str, log_rows: int, conn) -> None:
    import numpy as np

    from zksidecar.daemon.batches import BatchPolicy, CloseReason
    from zksidecar.daemon.jobs import ProofJob, prove_job, warm_up_job
    from zksidecar.daemon.malloc import keep_proof_buffers
    from zksidecar.daemon.metrics import Metrics
    from zksidecar.daemon.sequencer import Sequencer
    from zksidecar.engine import flow
    from zksidecar.prover import zk_keys
    from zksidecar.prover.orderbook import proof_file
    from zksidecar.prover.orderbook.params import zk_proof_options
    from zksidecar.prover.orderbook.zk_chain import ZkChain

    keep_proof_buffers()
    rows = 1 << log_rows
    capacity = rows // 2
    zk = mode == "zk"
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    prove_job(warm_up_job(capacity, rows, BITS, zk=zk))          # what a worker does before READY
    n = rows // 2 - 1
    seq = Sequencer(capacity, rows, BatchPolicy(n, 1.0), Metrics(), zk=zk)
    ops = flow.generate(n, 11, capacity)
    batch = (seq.feed(ops, np.zeros(n, np.int64), 0.0) + seq.close_all(CloseReason.FLUSH))[0]
    chains = None
    if zk:
        key = zk_keys.new_store_key()
        options = zk_proof_options(BITS, capacity.bit_length() - 1, rows)
        chains = lambda s: ZkChain(key, s, capacity.bit_length() - 1, rows, options)   # noqa: E731
    proof_file.encode(prove_job(ProofJob.of(batch, BITS, chains)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    conn.send((start / 1024, peak / 1024, len(batch.ops)))


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / (1 << 20)


def _long_run(log_rows: int, jobs: int, conn) -> None:
    import numpy as np

    from zksidecar.daemon.batches import BatchPolicy, CloseReason
    from zksidecar.daemon.jobs import ProofJob, prove_job, warm_up_job
    from zksidecar.daemon.malloc import keep_proof_buffers
    from zksidecar.daemon.metrics import Metrics
    from zksidecar.daemon.sequencer import Sequencer
    from zksidecar.engine import flow
    from zksidecar.prover import zk_keys
    from zksidecar.prover.array_pool import POOL
    from zksidecar.prover.orderbook import proof_file
    from zksidecar.prover.orderbook.params import zk_proof_options
    from zksidecar.prover.orderbook.zk_chain import ZkChain

    keep_proof_buffers()
    rows = 1 << log_rows
    capacity, n = rows // 2, rows // 2 - 1
    for zk in (True, False):
        prove_job(warm_up_job(capacity, rows, BITS, zk=zk))
    conn.send(("warm-up", _rss_mib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               POOL.held_bytes / (1 << 20)))
    key = zk_keys.new_store_key()
    options = zk_proof_options(BITS, capacity.bit_length() - 1, rows)
    chains = lambda s: ZkChain(key, s, capacity.bit_length() - 1, rows, options)   # noqa: E731
    ops = flow.generate(jobs * n, 11, capacity)
    for zk in (True, False):
        seq = Sequencer(capacity, rows, BatchPolicy(n, 1.0), Metrics(), zk=zk)
        for k in range(jobs):             # a batch at a time: the process holds one, as a worker does
            part = ops[k * n:(k + 1) * n]
            for batch in seq.feed(part, np.zeros(len(part), np.int64), 0.0) + seq.close_all(CloseReason.FLUSH):
                proof_file.encode(prove_job(ProofJob.of(batch, BITS, chains if zk else None)))
                conn.send(("zk" if zk else "transparent", _rss_mib(),
                           resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, POOL.held_bytes / (1 << 20)))
    conn.send(None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zk-only", action="store_true")
    ap.add_argument("--min-log", type=int, default=11)
    ap.add_argument("--max-log", type=int, default=15)
    ap.add_argument("--long", type=int, metavar="N", help="a worker's long run: N jobs in each mode")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    if args.long:
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_long_run, args=(args.max_log, args.long, child))
        p.start()
        print(f"{'job':>4} {'mode':<12} {'RSS MiB':>8} {'peak MiB':>9} {'pool MiB':>9}", flush=True)
        i = 0
        while (row := parent.recv()) is not None:
            print(f"{i:>4} {row[0]:<12} {row[1]:>8.0f} {row[2]:>9.0f} {row[3]:>9.0f}", flush=True)
            i += 1
        p.join()
        return
    print(f"{'mode':<12} {'rows':>6} {'ops':>6} {'start MiB':>10} {'peak MiB':>9}", flush=True)
    for mode in (("zk",) if args.zk_only else ("transparent", "zk")):
        for log_rows in range(args.min_log, args.max_log + 1):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_point, args=(mode, log_rows, child))
            p.start()
            start, peak, n = parent.recv()
            p.join()
            print(f"{mode:<12} {1 << log_rows:>6} {n:>6} {start:>10.0f} {peak:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
