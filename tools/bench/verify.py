"""The `verify` benchmark suite (`zksidecar bench verify`, issue 17): a
chain of batch proofs verified by `zksidecar verify` on every core, on one,
and continued from a verification report.

The chain: batches of 2^14 operations of the synthetic flow at capacity
2^14 from the empty book, proven by `zksidecar prove`'s own loop
(tools/proofs.py prove_ops) at 100 bits, one more batch than the chain
measured (the batch a resumed check adds).  Proving takes ~0.4 s a batch,
so the proofs are kept in a directory under the system's temporary
directory, named by what determines them, and made again only when absent
or when they no longer verify (another build).

Figures, every one measured in this run through tools/proofs.py verify_main
(files read, proofs verified, links checked, output written):
  verify_ops_per_s        operations verified per second, every core
  verify_ops_per_s_one_job  the baseline: the same chain, --jobs 1 (a report
                          written by both, and compared)
  parallel_speedup        the ratio of the two
  resume_s                `verify --since REPORT` over the chain and one more
                          batch: the report's proofs re-hashed, one verified
"""
from __future__ import annotations

import glob
import io
import os
import tempfile
import time

from zksidecar.engine import flow
from zksidecar.prover.orderbook.air import book_length
from zksidecar.prover.orderbook import proof_file
from zksidecar.prover.orderbook.params import conjectured_security, proof_options
from zksidecar.prover.orderbook.witness import trace_length_for

from .. import proofs
from .runner import all_cores

BATCH = 1 << 14
CAPACITY = 1 << 14
BATCHES = 64
SECURITY = 100


def chain_dir(batches: int, batch_ops: int, capacity: int) -> str:
    """Where the proofs of a chain of `batches` (+ 1) batches are kept, named
    by the file version and the proof options this build proves them with
    (proofs of other options still verify, so verifying them would not find
    them out); a build whose proofs differ otherwise is found out by
    verifying them: verify()."""
    o = proof_options(SECURITY, book_length(capacity), trace_length_for(capacity, batch_ops))
    return os.path.join(tempfile.gettempdir(), f"zksidecar-bench-verify-v{proof_file.VERSION}-"
                        f"{batches + 1}x{batch_ops}-cap{capacity}-b{1 << o.log_blowup}"
                        f"q{o.num_queries}g{o.grinding_bits}")


def build(sw, directory: str, batches: int, batch_ops: int, capacity: int) -> list[str]:
    """The chain's proof files, proven now unless they are there already."""
    paths = sorted(glob.glob(os.path.join(directory, "batch-*.zkb")))
    if len(paths) == batches + 1:
        return paths
    sw.step(f"proving a chain of {batches + 1} batches of {batch_ops} operations at capacity "
            f"{capacity} into {directory} (kept for the next run; ~0.4 s a batch at 2^14)")
    for p in paths:
        os.unlink(p)
    ops = flow.generate((batches + 1) * batch_ops, seed=2026, capacity=capacity,
                        params=flow.FlowParams(depth=min(4_000, capacity // 4)))
    if proofs.prove_ops(ops, capacity, batch_ops, directory, SECURITY, out=io.StringIO()) != 0:
        raise RuntimeError("the synthetic flow did not prove (see the log)")
    paths = sorted(glob.glob(os.path.join(directory, "batch-*.zkb")))
    if len(paths) != batches + 1:
        # the sequencer cuts a batch early where its steps would not fit the trace
        raise RuntimeError(f"{len(paths)} batches proven, not {batches + 1}: the flow's batches "
                           "did not fit the trace length")
    return paths


def timed(paths: list[str], jobs: int, **kw) -> tuple[float, str]:
    out = io.StringIO()
    t0 = time.perf_counter()
    status = proofs.verify_main(paths, SECURITY, out=out, jobs=jobs, progress=False, **kw)
    elapsed = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"zksidecar verify exited {status}: {out.getvalue()}")
    return elapsed, out.getvalue()


def verify(sw, batches: int | None = None, batch_ops: int = BATCH, capacity: int = CAPACITY,
           directory: str | None = None) -> dict:
    """The figures (module docstring); `batch_ops`, `capacity` and
    `directory` (where the proofs are kept) for a test's tiny chain."""
    batches = batches or BATCHES
    cores = all_cores()
    directory = directory or chain_dir(batches, batch_ops, capacity)
    os.makedirs(directory, exist_ok=True)
    paths = build(sw, directory, batches, batch_ops, capacity)
    chain, extra = paths[:-1], paths[-1:]
    try:
        timed(chain[:1], 1)
    except RuntimeError:            # proofs another build made: prove them again
        for p in paths:
            os.unlink(p)
        paths = build(sw, directory, batches, batch_ops, capacity)
        chain, extra = paths[:-1], paths[-1:]
    ops = sum(len(proof_file.decode_public(open(p, "rb").read()).ops) for p in chain)
    load = os.getloadavg()[0]
    report = os.path.join(directory, "report.json")
    sw.step(f"verifying {batches} batches on {len(cores)} cores (writing a report)")
    all_s, _ = timed(chain, len(cores), report=report)
    sw.step(f"verifying {batches} batches with --jobs 1 (writing a report too)")
    # the same work as the run on every core, the report included (each
    # proof's bytes hashed for it: ~1.3 ms a batch of 2^14 operations)
    one_report = os.path.join(directory, "report-one-job.json")
    one_s, _ = timed(chain, 1, report=one_report)
    with open(report, "rb") as a, open(one_report, "rb") as b:
        if a.read() != b.read():
            raise RuntimeError("the reports of --jobs 1 and of every core differ")
    sw.step("continuing from the report after one more batch")
    resume_s, text = timed(chain + extra, len(cores), since=report)
    if f"continuing batch {batches - 1}" not in text:
        raise RuntimeError(f"the resumed check did not continue the report: {text}")
    trace_length = trace_length_for(capacity, batch_ops)
    return {
        "batches": batches,
        "batch_ops": batch_ops,
        "capacity": capacity,
        "trace_length": trace_length,
        "operations": ops,
        "jobs": len(cores),
        "verify_ops_per_s": ops / all_s,
        "verify_s": all_s,
        "verify_ops_per_s_one_job": ops / one_s,
        "verify_s_one_job": one_s,
        "batch_verify_ms_one_job": one_s / batches * 1e3,
        "parallel_speedup": one_s / all_s,
        "resume_s": resume_s,
        "security_bits": conjectured_security(
            proof_options(SECURITY, book_length(capacity), trace_length), book_length(capacity),
            trace_length),
        "load_1m_before": round(load, 2),
        "cores_note": f"every core ({len(cores)}), and one (--jobs 1)",
    }
