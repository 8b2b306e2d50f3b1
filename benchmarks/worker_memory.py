"""Peak memory of one proving worker per `ops` height, in each mode: the
basis of daemon/config.py's memory estimate (WORKER_* and ZK_WORKER_*).

    .venv/bin/python benchmarks/worker_memory.py [--zk-only] [--max-log 15]

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zk-only", action="store_true")
    ap.add_argument("--min-log", type=int, default=11)
    ap.add_argument("--max-log", type=int, default=15)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
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
