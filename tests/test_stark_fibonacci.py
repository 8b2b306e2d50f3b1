"""The STARK on the Fibonacci AIR: completeness, and that every kind of lie
fails (a changed cell, a changed public value, a flipped proof byte)."""
import dataclasses
import struct

import numpy as np
import pytest

from zksidecar.prover import field as F
from zksidecar.prover import params
from zksidecar.prover.examples.fibonacci import FibonacciAir, fibonacci_instance
from zksidecar.prover.air import TransitionConstraint
from zksidecar.prover.proof import Proof, ProofFormatError, quotient_log_blowup
from zksidecar.prover.prove import ConstraintError, prove
from zksidecar.prover.verify import VerificationError, verify
from zk_modes import modes, prove_in, zk

FAST = params.TESTING
#: the tamper tests run in both modes (zk mode: tests/zk_modes.py)
MODES = modes(FAST)
ZK = zk(FAST)


def roundtrip(air, proof):
    return Proof.from_bytes(proof.to_bytes(air), air)


@pytest.mark.parametrize("log_n,pairs", [(3, 1), (4, 3), (6, 2), (9, 8), (12, 16), (14, 2), (16, 1)])
def test_proves_and_verifies(log_n, pairs):
    air, traces = fibonacci_instance(1 << log_n, pairs, seed=log_n)
    proof = prove(air, traces, FAST, debug=True).proof
    assert verify(air, roundtrip(air, proof), min_security=0).security_bits == \
        FAST.conjectured_security(1 << log_n, air.algebraic_degree(1 << log_n))


@pytest.mark.parametrize("opts", [
    params.ProofOptions(log_blowup=2, num_queries=30, grinding_bits=0, fri_folding_factor=2,
                        fri_max_final_degree=1),
    params.ProofOptions(log_blowup=3, num_queries=12, grinding_bits=4, fri_folding_factor=16,
                        fri_max_final_degree=8),
    params.ProofOptions(log_blowup=1, num_queries=40, grinding_bits=1, fri_folding_factor=8,
                        fri_max_final_degree=256),
])
def test_parameter_sets(opts):
    air, traces = fibonacci_instance(1 << 10, 2)
    proof = prove(air, traces, opts).proof
    verify(air, roundtrip(air, proof), min_security=0)


def test_default_parameters_reach_100_bits():
    air, traces = fibonacci_instance(1 << 6, 1)
    proof = prove(air, traces, params.DEFAULT).proof
    assert verify(air, roundtrip(air, proof)).security_bits >= 100


class _Degree5Fibonacci(FibonacciAir):
    """Fibonacci with one more constraint of degree 5 (a0' = b0 times b0^4:
    true on every row, so only the degree is new)."""

    def transitions(self, f):
        a, b = f.next("a0"), f.cur("b0")
        return super().transitions(f) + [
            TransitionConstraint("degree 5", (a - b) * b * b * b * b, 5)]


def test_a_blowup_smaller_than_the_quotient_domain_is_refused():
    """Degree 5: the quotient has degree below 4N, so its domain is 4N
    points, and blowup 2 cannot hold it; blowup 4 can (degree 3 would need
    only 2)."""
    base, traces = fibonacci_instance(1 << 6, 1)
    pv = base.public_values
    air = _Degree5Fibonacci(base.trace_length, [(pv["a0"], pv["b0"])], [pv["result0"]])
    assert quotient_log_blowup(air) == 2
    with pytest.raises(params.ParameterError, match="need a blowup of at least 4; log_blowup is 1"):
        prove(air, traces, FAST)
    opts = dataclasses.replace(FAST, log_blowup=2)
    proof = prove(air, traces, opts).proof
    verify(air, roundtrip(air, proof), min_security=0)
    claimed = dataclasses.replace(proof, options=FAST)
    with pytest.raises(VerificationError, match="below the quotient's degree bound"):
        verify(air, claimed, min_security=0)


def test_verifier_refuses_weak_parameters():
    air, traces = fibonacci_instance(1 << 6, 1)
    proof = prove(air, traces, FAST).proof
    with pytest.raises(VerificationError, match="conjectured security"):
        verify(air, proof)


def test_debug_mode_names_the_failure():
    air, traces = fibonacci_instance(1 << 5, 2)
    bad = traces["main"].copy()
    bad[7, 3] = F.encode([5])[0]
    with pytest.raises(ConstraintError, match=r"b1' = a1 \+ b1.* at row 6"):
        prove(air, {"main": bad}, FAST, debug=True)


def _bump(cell):
    return F.add(np.array([cell], dtype=np.uint32), F.encode([1]))[0]


@pytest.mark.parametrize("opts", MODES)
@pytest.mark.parametrize("row,col", [(0, 0), (0, 1), (5, 0), (5, 3), (15, 2), (31, 1), (31, 3)])
def test_any_changed_cell_fails(row, col, opts):
    air, traces = fibonacci_instance(1 << 5, 2, seed=1)
    bad = traces["main"].copy()
    bad[row, col] = _bump(bad[row, col])
    with pytest.raises(ConstraintError):
        prove_in(air, {"main": bad}, opts, debug=True)
    proof = prove_in(air, {"main": bad}, opts).proof  # forced past the debug check
    with pytest.raises(VerificationError):
        verify(air, roundtrip(air, proof), min_security=0)


@pytest.mark.parametrize("opts,log_n", [pytest.param(FAST, 3, id="transparent"),
                                         pytest.param(ZK, 5, id="zk")])
def test_every_cell_of_a_small_trace(opts, log_n):
    """zk mode at 2^5 rows, the shortest its masks fit at 4 queries."""
    air, traces = fibonacci_instance(1 << log_n, 1, seed=2)
    for row in range(1 << log_n):
        for col in range(2):
            bad = traces["main"].copy()
            bad[row, col] = _bump(bad[row, col])
            proof = prove_in(air, {"main": bad}, opts).proof
            with pytest.raises(VerificationError):
                verify(air, proof, min_security=0)


@pytest.mark.parametrize("opts", MODES)
@pytest.mark.parametrize("name", ["a0", "b0", "result0", "result1"])
def test_changed_public_value_fails(name, opts):
    air, traces = fibonacci_instance(1 << 5, 2, seed=3)
    proof = prove_in(air, traces, opts).proof
    pub = dict(air.public_values)
    pub[name] = (pub[name] + 1) % F.P
    starts = [(pub[f"a{i}"], pub[f"b{i}"]) for i in range(2)]
    other = FibonacciAir(1 << 5, starts, [pub["result0"], pub["result1"]])
    with pytest.raises(VerificationError):
        verify(other, proof, min_security=0)


@pytest.mark.parametrize("opts,log_n", [pytest.param(FAST, 4, id="transparent"),
                                         pytest.param(ZK, 5, id="zk")])
def test_every_flipped_byte_is_rejected(opts, log_n):
    """Every byte, zk mode's salts included."""
    air, traces = fibonacci_instance(1 << log_n, 1, seed=4)
    raw = prove_in(air, traces, opts).proof.to_bytes(air)
    rng = np.random.default_rng(0)
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 1 << int(rng.integers(8))
        with pytest.raises((ProofFormatError, VerificationError)):
            verify(air, Proof.from_bytes(bytes(flipped), air), min_security=0)


@pytest.mark.parametrize("opts,log_n", [pytest.param(FAST, 4, id="transparent"),
                                         pytest.param(ZK, 5, id="zk")])
def test_malformed_bytes_give_clear_errors(opts, log_n):
    air, traces = fibonacci_instance(1 << log_n, 1, seed=5)
    raw = prove_in(air, traces, opts).proof.to_bytes(air)
    for cut in range(0, len(raw), 13):
        with pytest.raises(ProofFormatError):
            Proof.from_bytes(raw[:cut], air)
    with pytest.raises(ProofFormatError, match="unexpected bytes"):
        Proof.from_bytes(raw + b"\0", air)
    with pytest.raises(ProofFormatError, match="bad magic"):
        Proof.from_bytes(b"XXXX" + raw[4:], air)
    with pytest.raises(ProofFormatError, match="version"):
        Proof.from_bytes(raw[:4] + b"\x0b\x00" + raw[6:], air)      # 11: no version yet
    # a huge length field is refused before allocating: over what the
    # opened leaves can need (over the bytes that remain: the cuts above)
    proof = Proof.from_bytes(raw, air)
    rows = proof.rows["quotient"].astype("<u4").tobytes()
    if opts.zk:
        rows += proof.row_salts["quotient"].tobytes()
    at = raw.index(rows) + len(rows)          # the u32 length of the main round tree's proof
    huge = raw[:at] + b"\xff\xff\xff\x7f" + raw[at + 4:]
    with pytest.raises(ProofFormatError, match="main round tree proof claims 2147483647 digests"):
        Proof.from_bytes(huge, air)
    (n,) = struct.unpack_from("<I", raw, at)
    assert n == len(proof.row_proofs["main round"])
    with pytest.raises(ProofFormatError, match="bytes"):
        Proof.from_bytes("not bytes", air)
