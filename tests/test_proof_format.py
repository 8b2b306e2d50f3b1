"""Fuzzing the proof decoder and verifier: any bytes give a proof or a
ProofFormatError, and a decoded proof gives Verified or a VerificationError —
never another exception, never an unbounded allocation."""
import functools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zksidecar.prover import params
from zksidecar.prover.examples.fibonacci import fibonacci_instance
from zksidecar.prover.proof import Proof, ProofFormatError
from zksidecar.prover.prove import prove
from zksidecar.prover.verify import VerificationError, verify


@functools.lru_cache(maxsize=1)
def valid():
    air, traces = fibonacci_instance(1 << 4, 2, seed=9)
    return air, prove(air, traces, params.TESTING).proof.to_bytes(air)


def check(data: bytes) -> None:
    air, _ = valid()
    try:
        proof = Proof.from_bytes(data, air)
    except ProofFormatError:
        return
    try:
        verify(air, proof, min_security=0)
    except VerificationError:
        return
    assert data == valid()[1], "a changed proof verified"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_proofs(data):
    raw = bytearray(valid()[1])
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if not raw:
            break
        if kind == "flip":
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set":
            raw[at] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del raw[at: at + data.draw(st.integers(1, 8))]
        else:
            del raw[at:]
    if bytes(raw) != valid()[1]:
        check(bytes(raw))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes(data):
    check(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_valid_header_then_garbage(tail):
    raw = valid()[1]
    check(raw[:40] + tail)


def test_the_valid_proof_verifies():
    air, raw = valid()
    verify(air, Proof.from_bytes(raw, air), min_security=0)
