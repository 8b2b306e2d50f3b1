"""Proving time of this prover beside the pure-Python reference prover (which
produces byte-identical proofs), on a tiny Fibonacci trace."""
import pytest

from zksidecar.prover import params
from zksidecar.prover.examples.fibonacci import fibonacci_instance
from zksidecar.prover.prove import prove
from zksidecar.prover.reference import reference_prove

AIR, TRACES = fibonacci_instance(1 << 8, 2)


@pytest.mark.benchmark(group="stark-fibonacci-2^8x4")
def test_prove(benchmark):
    benchmark(prove, AIR, TRACES, params.TESTING)


@pytest.mark.benchmark(group="stark-fibonacci-2^8x4")
def test_prove_reference(benchmark):
    benchmark.pedantic(reference_prove, (AIR, TRACES, params.TESTING), rounds=3)
