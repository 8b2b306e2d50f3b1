"""Benchmark suites of the proof system (run by `zksidecar bench`).

Each figure is measured beside a numpy (or hashlib) implementation of the same
operation, in the same run, and also reported as a ratio.
"""
from __future__ import annotations

import hashlib

import numpy as np

from . import field, merkle, native, ntt

P = field.P


def _numpy_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The plain numpy way to multiply canonical BabyBear arrays."""
    return (a.astype(np.uint64) * b % P).astype(np.uint32)


def kernels(sw) -> dict:
    rng = np.random.default_rng(2026)
    fig: dict = {"isa": native.isa(), "sha_ni": native.sha_ni()}
    active = native.isa()

    # -- multiply, in cache: three 64 KiB arrays stay in L2 (1 MiB per Zen 4 core);
    #    smaller arrays measure the ~1.5 us of Python per call, not the kernel
    n = 16384
    x, y = rng.integers(0, P, n, dtype=np.uint32), rng.integers(0, P, n, dtype=np.uint32)
    a, b, out = field.encode(x), field.encode(y), np.empty(n, dtype=np.uint32)
    sw.step("BabyBear mul, every ISA path")
    mul_by_isa = native.on_each_isa(lambda: n / sw.per_call(lambda: field.mul(a, b, out)))
    sw.step("BabyBear mul, numpy")
    numpy_mul = n / sw.per_call(lambda: _numpy_mul(x, y))
    fig["mul_per_s"] = mul_by_isa[active]
    for isa, rate in mul_by_isa.items():
        fig[f"mul_per_s_{isa}"] = rate
    fig["mul_per_s_numpy"] = numpy_mul
    fig["mul_speedup_vs_numpy"] = mul_by_isa[active] / numpy_mul

    # -- one column NTT of 2^20
    col = field.encode(rng.integers(0, P, 1 << 20, dtype=np.uint32))
    sw.step("NTT 2^20, every ISA path")
    ntt_by_isa = native.on_each_isa(lambda: sw.per_call(lambda: ntt.ntt(col), samples=3) * 1e3)
    sw.step("NTT 2^20, numpy")
    canon = field.decode(col)
    ntt_numpy = sw.per_call(lambda: ntt.ntt_numpy_reference(canon), samples=3) * 1e3
    fig["ntt_2_20_ms"] = ntt_by_isa[active]
    for isa, ms in ntt_by_isa.items():
        fig[f"ntt_2_20_ms_{isa}"] = ms
    fig["ntt_2_20_ms_numpy"] = ntt_numpy
    fig["ntt_speedup_vs_numpy"] = ntt_numpy / ntt_by_isa[active]

    # -- LDE of 2^16 rows x 64 columns, blowup 2
    sw.step("LDE 2^16 x 64, blowup 2")
    trace = field.encode(rng.integers(0, P, (1 << 16, 64), dtype=np.uint32))
    fig["lde_2_16x64_b2_ms"] = sw.per_call(lambda: ntt.lde(trace, 1), samples=3) * 1e3

    # -- SHA-256 two-to-one compressions (Merkle nodes)
    pairs = rng.integers(0, 256, (1 << 16, 64), dtype=np.uint8)
    sw.step("SHA-256 compressions")
    fig["merkle_compressions_per_s"] = len(pairs) / sw.per_call(lambda: merkle.compress_pairs(pairs))
    few = [bytes(p) for p in pairs[:4096]]
    sw.step("SHA-256 compressions, hashlib")
    hashlib_rate = len(few) / sw.per_call(lambda: [hashlib.sha256(p).digest() for p in few])
    fig["merkle_compressions_per_s_hashlib"] = hashlib_rate
    fig["merkle_speedup_vs_hashlib"] = fig["merkle_compressions_per_s"] / hashlib_rate
    return fig


def stark(sw) -> dict:
    """Prove the Fibonacci-like AIR (2^18 rows x 32 columns, blowup 2,
    >= 100-bit conjectured security) and verify it."""
    from . import params
    from .examples.fibonacci import fibonacci_instance
    from .proof import Proof
    from .prove import prove
    from .verify import verify

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
    from .reference import reference_prove_seconds

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
        "security_bits": options.conjectured_security(1 << log_n),
        "queries": options.num_queries,
        "grinding_bits": options.grinding_bits,
        "phases": {k: round(v, 4) for k, v in best.timings.items()},
        "reference_shape": f"2^{tiny_log} x {2 * tiny_pairs}",
        "reference_prove_s": ref_tiny,
        "tiny_prove_s": fast_tiny,
        "speedup_vs_reference": ref_tiny / fast_tiny,
    }
