"""`zksidecar bench stark`: prove and verify a Fibonacci-like trace at
>= 100-bit conjectured security, and the pure-Python reference prover
(prover/reference.py, byte-identical proofs) on a tiny shape as the baseline.
"""
from __future__ import annotations

import time

from zksidecar.prover import params
from zksidecar.prover.examples.fibonacci import fibonacci_instance
from zksidecar.prover.proof import Proof
from zksidecar.prover.prove import prove
from zksidecar.prover.reference import reference_prove
from zksidecar.prover.verify import verify


def reference_prove_seconds(log_n: int, pairs: int, options: params.ProofOptions | None = None,
                            seed: int = 0) -> float:
    """Seconds the reference prover takes on Fibonacci with 2^log_n rows and
    2 * pairs columns (the benchmark's pure-Python baseline); the instance is
    built outside the timed region."""
    air, traces = fibonacci_instance(1 << log_n, pairs, seed=seed)
    t0 = time.perf_counter()
    reference_prove(air, traces, options or params.TESTING)
    return time.perf_counter() - t0


def stark(sw) -> dict:
    """Prove the Fibonacci-like AIR (2^18 rows x 32 columns, blowup 2,
    >= 100-bit conjectured security) and verify it."""
    log_n, pairs = 18, 16
    sw.step(f"trace: 2^{log_n} rows x {2 * pairs} columns")
    air, traces = fibonacci_instance(1 << log_n, pairs)
    options = params.DEFAULT
    sw.step("proving (3 runs)")
    runs = [prove(air, traces, options) for _ in range(3)]
    best = min(runs, key=lambda r: sum(r.timings.values()))
    prove_s = sum(best.timings.values())
    raw = best.proof.to_bytes(air)
    sw.step("verifying")
    verify_s = sw.per_call(lambda: verify(air, Proof.from_bytes(raw, air)))
    cells = (1 << log_n) * 2 * pairs

    # the pure-Python reference prover (byte-identical proofs) on a tiny shape
    tiny_log, tiny_pairs = 10, 1
    sw.step(f"reference prover vs this prover, 2^{tiny_log} x {2 * tiny_pairs}")
    tiny_air, tiny_traces = fibonacci_instance(1 << tiny_log, tiny_pairs)
    fast_tiny = sw.per_call(lambda: prove(tiny_air, tiny_traces, options), samples=3)
    ref_tiny = reference_prove_seconds(tiny_log, tiny_pairs, options)
    return {
        "shape": f"2^{log_n} x {2 * pairs}, blowup {1 << options.log_blowup}",
        "cells_per_s": cells / prove_s,
        "prove_s": prove_s,
        "verify_ms": verify_s * 1e3,
        "proof_kib": len(raw) / 1024,
        "security_bits": options.conjectured_security(1 << log_n, air.algebraic_degree(1 << log_n)),
        "queries": options.num_queries,
        "grinding_bits": options.grinding_bits,
        "phases": {k: round(v, 4) for k, v in best.timings.items()},
        "reference_shape": f"2^{tiny_log} x {2 * tiny_pairs}",
        "reference_prove_s": ref_tiny,
        "tiny_prove_s": fast_tiny,
        "speedup_vs_reference": ref_tiny / fast_tiny,
    }
