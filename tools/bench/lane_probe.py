"""`zksidecar bench prover --lane-probe`: the go/no-go measurement of zk
mode's record lane (docs/ZK.md, section 13, build step 2), beside the
transparent batch of the same run.

The probe (prover/examples/lane_probe.py) is the lane's hash at its real
shape: 2^15 rows of Poseidon2 (274 registers, the 16 record elements, a row
counter) and the LogUp sum binding the published leaves, proven at the
transparent batch's parameters (blowup 2).  Measured: the witness (the C
registers), the commitment (LDE and Merkle tree), the constraint program on
the committed domain D (2N points), and what zk mode would add on the
second coset D' (docs/ZK.md, section 5.3): the trace's values there (one
coset NTT per column, from its coefficients) and the constraint program on
D''s 2N points.  From these and the transparent batch's own phases the
suite recomputes section 13's zk estimate, each line it measures replaced
by its measured figure, the others scaled by the transparent batch's time
against the design's 0.228 s (the machine's load moves both alike; the
two-domain batch's own ~7 % over that baseline, 0.244 s of record, rides
along), and reports the resulting zk_vs_transparent.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from zksidecar.prover import field as F
from zksidecar.prover import ntt
from zksidecar.prover.constraint_program import Output, Program
from zksidecar.prover.domain import COSET_SHIFT
from zksidecar.prover.examples.lane_probe import LaneProbeAir, lane_probe_witness, random_records
from zksidecar.prover.expr import TRACE
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.prove import prove, quotient_on_lde

LOG_T = 15

# docs/ZK.md, section 13 (the design's figures this step checks)
DESIGN = {
    "transparent_s": 0.228,          # the batch the estimate started from
    "zk_s": 1.04,
    "zk_vs_transparent": 0.22,
    "committed_columns": 630,        # main and aux base columns the LDE holds in zk mode
    "lane_columns": 381,
    "commit_ms_per_column": 0.46,    # LDE + Merkle on D, 2^15 rows
    "coset_ntt_ms_per_column": 0.25,  # the trace on D'
    "program_s_per_2_16": 0.12,      # the zk constraint program on 2^16 points
    "poseidon2_instructions_per_row": 2000,
    "other_lane_instructions_per_row": 400,
    "lane_fractions": 31,
    "ms_per_fraction": 1.25,         # a LogUp fraction in the program, per 2^16 points
    "witness_lane_s": 0.045,
    "transparent_witness_s": 0.008,
    # the lines the probe does not measure, zk mode's figures (section 13's table)
    "unmeasured_zk_s": {"logup_columns": 0.043, "quotient_chunks": 0.025, "ood_deep": 0.08,
                        "fri": 0.010, "keys_masks_salts": 0.010, "the_rest": 0.14, "engine": 0.005},
}


def _median_phases(results) -> dict:
    return {k: statistics.median(r.timings[k] for r in results) for k in results[0].timings}


def _time(fn, runs: int = 3) -> float:
    fn()                                           # warm-up: pages, twiddles, compiled plans
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def _instructions(air: LaneProbeAir, prefix: str) -> int:
    """The compiled constraint program's instructions per row for the
    constraints named under `prefix` (the Poseidon2 rounds alone)."""
    cons = [c for c in air.transition_constraints if c.name.startswith(prefix)]
    inputs = {(TRACE, i): i for i in range(air.num_main_columns)}
    program = Program([Output(0, c.expr, Ext(0)) for c in cons], lambda key: Ext(0), inputs, {}, 1)
    return len(program.code)


def lane_probe(sw, options, transparent: dict, log_t: int = LOG_T) -> dict:
    """The probe's figures at 2^log_t rows, and the zk estimate against
    `transparent` (the prover suite's figures of this run: prove_s and
    phases; the estimate means something at the bench's 2^15 only)."""
    n = 1 << log_t
    lb = options.log_blowup
    sw.step(f"lane probe: 2^{log_t} rows of Poseidon2, witness")
    records = random_records(n, seed=2026)
    witness_s = _time(lambda: lane_probe_witness(records))
    trace, leaves = lane_probe_witness(records)
    air = LaneProbeAir(n, leaves)
    columns = air.num_main_columns

    sw.step("lane probe: proving (a warm-up, then three proofs)")
    prove(air, {"lane": trace}, options)        # compiles the constraint program
    results = [prove(air, {"lane": trace}, options) for _ in range(3)]
    phases = _median_phases(results)
    prove_s = statistics.median(sum(r.timings.values()) for r in results)

    sw.step("lane probe: the second coset D' (the trace's values, the constraint program)")
    # D' = g w_4N <w_2N>: the points of g <w_4N> that D = g <w_2N> lacks
    shift = COSET_SHIFT * F.two_adic_generator(log_t + lb + 1) % F.P
    coeffs = ntt.intt(trace)                    # the prover has them (zk mode keeps them)
    coset_s = _time(lambda: ntt.extend(coeffs, lb, shift))
    lde2 = ntt.extend(coeffs, lb, shift)
    com = results[-1].commitments
    aux_coeffs = ntt.intt(np.ascontiguousarray(com["aux"].trace))
    aux2 = ntt.extend(aux_coeffs, lb, shift)
    challenges = np.ascontiguousarray(
        F.encode(np.random.default_rng(1).integers(0, F.P, (air.num_challenges, 4))), dtype=np.uint32)
    alpha = Ext(12345, 678, 9, 10)
    # the same call on D and on D': the divisors are D's in both (the cost
    # is the same; the values on D' are not a quotient, only timed)
    on_d_s = _time(lambda: quotient_on_lde(air, [com["lane"].lde, com["aux"].lde], challenges, alpha, lb))
    on_d2_s = _time(lambda: quotient_on_lde(air, [lde2, aux2], challenges, alpha, lb))
    instructions = _instructions(air, "p2:")

    # ------------------------------------------------- the estimate --
    d = DESIGN
    load = transparent["prove_s"] / d["transparent_s"]
    commit_ms = phases["1_commit_main"] / columns * 1e3
    coset_ms = coset_s / (columns + 4) * 1e3
    tq = transparent["phases"]["3_quotient"]
    lane_program = on_d_s * (1 + d["other_lane_instructions_per_row"] / instructions) \
        + d["lane_fractions"] * d["ms_per_fraction"] * 1e-3 * load
    program_d = tq + lane_program
    zk_lines = {
        "lde_merkle_on_d": d["committed_columns"] * commit_ms * 1e-3,
        "trace_on_d2": d["committed_columns"] * coset_ms * 1e-3,
        "constraint_program": program_d * (1 + on_d2_s / on_d_s),
        "witness": d["transparent_witness_s"] * load
        + witness_s * d["lane_columns"] / (columns - 1),
        **{k: v * load for k, v in d["unmeasured_zk_s"].items()},
    }
    zk_s = sum(zk_lines.values())
    return {
        "lane_probe_rows": n,
        "lane_probe_columns": columns,
        "lane_probe_prove_s": prove_s,
        "lane_probe_witness_s": witness_s,
        "lane_probe_commit_s": phases["1_commit_main"],
        "lane_probe_commit_ms_per_column": commit_ms,
        "lane_probe_program_on_d_s": on_d_s,
        "lane_probe_program_on_d2_s": on_d2_s,
        "lane_probe_coset_d2_s": coset_s,
        "lane_probe_coset_ms_per_column": coset_ms,
        "lane_probe_instructions_per_row": instructions,
        "lane_probe_phases": {k: round(v, 4) for k, v in phases.items()},
        "zk_estimate_s": zk_s,
        "zk_vs_transparent": transparent["prove_s"] / zk_s,
        "zk_estimate_lines": {k: round(v, 4) for k, v in zk_lines.items()},
        "zk_estimate_load_factor": load,
        "zk_design": {k: v for k, v in d.items() if not isinstance(v, dict)},
    }
