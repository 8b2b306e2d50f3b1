"""`zksidecar bench SUITE`: measured figures, each beside a baseline run in the
same process, printed as a table or as one JSON object.

A suite is a function ``SUITE(sw: Stopwatch) -> dict`` in its own module
of this package (the kernels suite is zksidecar.tools.bench.kernels:kernels).
It returns its figures; this module times, pins, reports progress and
compares with the targets of the issue that asked for the suite.  Unit tests never assert on
time: these figures are for people and docs/BENCHMARKS.md.
"""
from __future__ import annotations

import importlib
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

# suite name -> "module:function"
SUITES = {
    "kernels": "zksidecar.tools.bench.kernels:kernels",
    "stark": "zksidecar.tools.bench.stark:stark",
    "engine": "zksidecar.tools.bench.engine:engine",
    "ring": "zksidecar.tools.bench.ring:ring",
    "prover": "zksidecar.tools.bench.prover:prover",
    "e2e": "zksidecar.tools.bench.e2e:e2e",
    "restart": "zksidecar.tools.bench.restart:restart",
    "overload": "zksidecar.tools.bench.e2e:overload_suite",
    "verify": "zksidecar.tools.bench.verify:verify",
}
#: the suites whose chain length `--batches N` sets
CHAINS = ("verify",)
#: the suites whose overload phase `--overload-seconds S` sets
OVERLOADING = ("e2e", "overload")
#: the suites measured in a proof mode (`--mode`), and the modes: zk adds zk
#: mode's figures beside the transparent ones (default: transparent alone)
MODED = ("prover",)
MODES = ("transparent", "zk")
#: the suites that draw a plot (`--plot PATH`)
PLOTTING = ("ring", "e2e")

# the restart figures' targets (issue 16), in `bench restart` and in `bench e2e`
RESTART_TARGETS = {
    "restart_s_1e6": ("<=", 2, "start to READY, 10^6 operations journaled, half proven"),
    "restart_growth": ("<=", 1.5, "restart at 10^6 operations / at 10^5"),
}

# the overload figure's target (issue 16), in `bench overload` and in `bench e2e`
OVERLOAD_TARGETS = {
    "overload_rss_mib": ("<=", 512, "daemon tree peak memory, offered 10x its proving rate "
                                    "(limits.memory_mib 512)"),
}

# suite -> key -> (comparison, threshold, label): the targets of the issues
TARGETS = {
    "kernels": {
        "mul_per_s_avx2": (">=", 2e9, "BabyBear mul on AVX2, in cache"),
        "mul_speedup_vs_numpy": (">=", 20, "vs numpy"),
        "ntt_2_20_ms": ("<=", 15, "one column NTT of 2^20"),
        "lde_2_16x64_b2_ms": ("<=", 120, "LDE 2^16 x 64, blowup 2"),
        "merkle_compressions_per_s": (">=", 8e6, "SHA-256 two-to-one"),
    },
    "stark": {
        "cells_per_s": (">=", 4e6, "main-trace cells proven per second"),
        "verify_ms": ("<=", 15, "verification"),
        "proof_kib": ("<=", 300, "proof size"),
        "security_bits": (">=", 100, "conjectured security"),
    },
    "engine": {
        "ops_per_s": (">=", 2e6, "batch API, book of 10^4 orders"),
        "submit_ns_p99": ("<=", 5000, "per-order API"),
        "speedup_vs_reference": (">=", 20, "vs the plain reference engine"),
    },
    "ring": {
        "c_publish_ns": ("<=", 10, "C publish, amortised per record, sustained"),
        "one_way_ns_p50": ("<=", 300, "one way, median"),
        "one_way_ns_p99": ("<=", 2000, "one way, 99th percentile"),
        "py_batch_publish_per_s": (">=", 2e7, "numpy batch publish"),
        "py_single_publish_ns": ("<=", 1000, "one Python publish"),
        "speedup_vs_mp_queue": (">=", 50, "vs multiprocessing.Queue"),
    },
    "prover": {      # issue 13
        "ops_per_s": (">=", 50_000, "sustained proving, batches of 2^14, capacity 2^14, one core"),
        "proving_vs_matching": ("<=", 35, "proving time over the engine's traced run of the same operations"),
        "single_op_ms": ("<=", 8, "a batch of one operation, capacity 2^10, at the trace length a daemon uses"),
        "proof_kib": ("<=", 300, "proof size"),
        "verify_ms": ("<=", 15, "verification"),
        "peak_rss_mib": ("<=", 2048, "peak memory"),
        "security_bits": (">=", 100, "conjectured security"),
        # --mode zk (issue 14)
        "zk_vs_transparent": (">=", 0.35, "zk ops/s over transparent ops/s, same run, same batch"),
        "zk_proof_ratio": ("<=", 2.5, "zk proof size over transparent's"),
        "receipt_kib": ("<=", 128, "a receipt for one operation"),
        "receipt_ms": ("<=", 50, "making it, from the stored batch file and private file"),
        "receipt_verify_ms": ("<=", 15, "zksidecar verify-receipt: the batch proof verified, the receipt "
                                        "checked"),
        "zk_security_bits": (">=", 100, "conjectured security, zk formula"),
    },
    "e2e": {
        "engine_overhead_pct": ("<=", 3, "engine throughput lost to the sidecar"),
        "proof_lag_ms_p99": ("<=", 2000, "proof lag p99 at 10,000 ops/s sustained"),
        "sustained_ops_per_s": (">=", 10_000, "offered rate the daemon keeps up with, both cores"),
        **RESTART_TARGETS,
        **OVERLOAD_TARGETS,
        "dask_vs_local": (">=", 0.85, "sustained rate with proofs on a 2-process Dask LocalCluster "
                                      "over the local pool's, same run"),
    },
    "restart": RESTART_TARGETS,
    "overload": OVERLOAD_TARGETS,
    "verify": {      # issue 17
        "verify_ops_per_s": (">=", 2e6, "operations verified per second, every core"),
        "parallel_speedup": (">=", 1.7, "every core over --jobs 1"),
        "resume_s": ("<=", 0.1, "continuing from a report after one more batch"),
    },
}


@dataclass
class Stopwatch:
    """Times callables and shows progress on stderr (never on stdout, which
    carries the JSON)."""

    quiet: bool = False
    min_time: float = 0.2      # seconds per sample
    samples: int = 5
    log: list = field(default_factory=list)
    plot: str | None = None    # where a suite that draws one writes its plot

    def step(self, message: str) -> None:
        if not self.quiet:
            print(f"  … {message}", file=sys.stderr, flush=True)

    def per_call(self, fn: Callable[[], object], samples: int | None = None) -> float:
        """Median seconds per call of `fn` over `samples` samples, each long
        enough (min_time) that the clock's resolution does not matter."""
        fn()  # warm up: caches, twiddles, page faults
        number, t0 = 1, time.perf_counter()
        fn()
        once = max(time.perf_counter() - t0, 1e-9)
        number = max(1, int(self.min_time / once))
        results = []
        for _ in range(samples or self.samples):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            results.append((time.perf_counter() - t0) / number)
        return statistics.median(results)


def pin_to_one_core() -> int | None:
    """Run on one core (the last one allowed, leaving core 0 to the OS)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def all_cores() -> list[int]:
    """Every core this process may use, after lifting the pin to one core
    (for the suites that measure several: the daemon and the engine need
    their own, a verifier uses them all)."""
    import psutil

    try:
        psutil.Process().cpu_affinity([])       # []: every eligible core
    except (psutil.Error, AttributeError, OSError):
        pass
    return sorted(os.sched_getaffinity(0))


def machine() -> dict:
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numpy

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "system": f"{platform.system()} {platform.release()}",
    }


def check_targets(suite: str, figures: dict) -> dict:
    met = {}
    for key, (op, threshold, _label) in TARGETS.get(suite, {}).items():
        if key in figures:
            value = figures[key]
            if value is None:                   # not measured (the suite says why)
                met[key] = False
                continue
            met[key] = value >= threshold if op == ">=" else value <= threshold
    for key in figures.get("targets_unmeasured", {}):   # measured, but not where the target is
        met[key] = False
    return met


def run(suite: str, as_json: bool, plot: str | None = None, batches: int | None = None,
        overload_seconds: float | None = None, mode: str | None = None) -> int:
    if suite not in SUITES:
        print(f"zksidecar bench: unknown suite {suite!r}; suites: {', '.join(SUITES)}",
              file=sys.stderr)
        return 2
    if batches is not None and suite not in CHAINS:
        print(f"zksidecar bench: --batches sets the chain of suite {', '.join(CHAINS)}, not "
              f"{suite}", file=sys.stderr)
        return 2
    if overload_seconds is not None and suite not in OVERLOADING:
        print(f"zksidecar bench: --overload-seconds sets the overload phase of suite "
              f"{', '.join(OVERLOADING)}, not {suite}", file=sys.stderr)
        return 2
    if mode is not None and suite not in MODED:
        print(f"zksidecar bench: --mode applies to suite {', '.join(MODED)}, not {suite}", file=sys.stderr)
        return 2
    if mode is not None and mode not in MODES:
        print(f"zksidecar bench: --mode is {' or '.join(MODES)}, not {mode!r}", file=sys.stderr)
        return 2
    module, func = SUITES[suite].split(":")
    run_suite = getattr(importlib.import_module(module), func)
    core = pin_to_one_core()
    sw = Stopwatch(quiet=False, plot=plot)
    sw.step(f"suite {suite} on core {core}" + (f", {mode} mode" if mode else ""))
    kwargs = {k: v for k, v in (("batches", batches), ("overload_seconds", overload_seconds),
                                ("mode", mode)) if v is not None}
    figures = run_suite(sw, **kwargs)
    figures["machine"] = machine()
    figures["pinned_core"] = core
    figures["targets_met"] = check_targets(suite, figures)
    if as_json:
        print(json.dumps(figures, indent=2, sort_keys=False))
    else:
        print_table(suite, figures)
    return 0


def _fmt(v) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if v == 0:
        return "0"
    if abs(v) >= 1e6:
        return f"{v:.3g}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def print_table(suite: str, figures: dict) -> None:
    targets = TARGETS.get(suite, {})
    met = figures.get("targets_met", {})
    rows = [(k, _fmt(v)) for k, v in figures.items()
            if k not in ("machine", "targets_met", "cores_note", "targets_unmeasured")
            and not isinstance(v, dict)]
    width = max(len(k) for k, _ in rows)
    print(f"zksidecar bench {suite} — {figures['machine']['cpu']}, "
          f"{figures.get('cores_note', 'one core')}")
    for key, value in rows:
        note = ""
        if key in targets:
            op, threshold, label = targets[key]
            note = f"  target {op} {_fmt(threshold)} ({label}): {'met' if met.get(key) else 'NOT met'}"
            if key in figures.get("targets_unmeasured", {}):
                note += f" ({figures['targets_unmeasured'][key]})"
        print(f"  {key:<{width}}  {value:>12}{note}")
    for key, value in figures.items():
        if isinstance(value, dict) and key not in ("machine", "targets_met", "targets_unmeasured"):
            print(f"  {key}: " + ", ".join(
                f"{k}=({', '.join(f'{kk} {_fmt(vv)}' for kk, vv in v.items())})" if isinstance(v, dict)
                else f"{k}={_fmt(v)}" for k, v in value.items()))
