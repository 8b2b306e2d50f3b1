"""`zksidecar bench prover`'s machinery, tiny (batches of 100 operations at
capacity 2^8, 10 bits of security, two pairs): both modes run end to end
through the real prover, verifier and receipt commands, and report every
figure; no figure is asserted (unit tests never time anything)."""
from __future__ import annotations

import pytest

from zksidecar.tools.bench import prover, runner

TINY = dict(batch_ops=100, capacity=1 << 8, prefill=60, security_bits=10)
TRANSPARENT_KEYS = {"batch_ops", "capacity", "trace_length", "book_length", "ops_per_s", "prove_s",
                    "engine_ops_per_s", "proving_vs_matching", "single_op_ms", "single_op_trace_length",
                    "proof_kib", "verify_ms", "rows_per_op", "columns", "security_bits", "peak_rss_mib", "phases"}
ZK_KEYS = {"pairs", "prepare_s", "zk_ops_per_s", "zk_prove_s", "zk_prepare_s", "zk_vs_transparent",
           "zk_pair_ratios", "zk_trace_length", "zk_proof_kib", "zk_proof_ratio", "zk_batch_file_kib",
           "batch_file_kib", "zk_verify_ms", "zk_security_bits", "zk_parameters", "zk_phases", "receipt_seq",
           "receipt_trades", "receipt_kib", "receipt_ms", "receipt_verify_ms", "receipt_check_ms",
           "receipt_parts_ms", "load_1m_before", "load_1m_after"}


def test_transparent_mode_reports_its_figures_alone():
    figures = prover.prover(runner.Stopwatch(quiet=True, min_time=0), **TINY)
    assert set(figures) == TRANSPARENT_KEYS
    assert figures["batch_ops"] == 100 and figures["security_bits"] >= 10


def test_zk_mode_reports_every_figure_beside_the_transparent_ones():
    figures = prover.prover(runner.Stopwatch(quiet=True, min_time=0), "zk", pairs=2, **TINY)
    assert set(figures) == TRANSPARENT_KEYS | ZK_KEYS
    # every target of the suite is judged, zk mode's among them
    assert set(runner.check_targets("prover", figures)) == set(runner.TARGETS["prover"])
    assert figures["pairs"] == 2 and len(figures["zk_pair_ratios"]) == 2
    assert figures["zk_vs_transparent"] == pytest.approx(figures["prove_s"] / figures["zk_prove_s"])
    assert figures["zk_ops_per_s"] == pytest.approx(100 / figures["zk_prove_s"])
    assert figures["zk_proof_ratio"] == pytest.approx(figures["zk_proof_kib"] / figures["proof_kib"])
    assert figures["zk_batch_file_kib"] > figures["zk_proof_kib"]      # the leaves and header beside the proof
    assert figures["zk_security_bits"] >= 10 and figures["zk_parameters"]["mode"] == "zk"
    assert figures["zk_trace_length"] == figures["zk_parameters"]["ops_rows"]
    assert set(figures["zk_phases"]) == set(figures["phases"])
    # the receipt is of the batch's first operation that traded
    assert figures["receipt_trades"] >= 1 and figures["receipt_kib"] > 0
    assert set(figures["receipt_parts_ms"]) == {"decode_batch_file", "private_data", "batch_lists", "statement",
                                                "make_receipt"}
    for key in ("zk_prove_s", "zk_prepare_s", "zk_verify_ms", "receipt_ms", "receipt_verify_ms",
                "receipt_check_ms"):
        assert figures[key] > 0, key


def test_an_unknown_mode_is_refused_by_name():
    with pytest.raises(ValueError, match="the mode is transparent or zk, not 'fast'"):
        prover.prover(runner.Stopwatch(quiet=True), "fast")
