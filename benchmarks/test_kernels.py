"""Kernel throughput beside numpy / hashlib baselines (same run, same data)."""
import hashlib

import numpy as np
import pytest

from zksidecar.prover import field, merkle, ntt
from zksidecar.tools.bench.kernels import ntt_numpy_reference

P = field.P
RNG = np.random.default_rng(7)
X = RNG.integers(0, P, 2048, dtype=np.uint32)
Y = RNG.integers(0, P, 2048, dtype=np.uint32)


@pytest.mark.benchmark(group="mul-2048")
def test_mul_kernel(benchmark):
    a, b, out = field.encode(X), field.encode(Y), np.empty_like(X)
    benchmark(field.mul, a, b, out)


@pytest.mark.benchmark(group="mul-2048")
def test_mul_numpy(benchmark):
    benchmark(lambda: (X.astype(np.uint64) * Y % P).astype(np.uint32))


COL = field.encode(RNG.integers(0, P, 1 << 16, dtype=np.uint32))


@pytest.mark.benchmark(group="ntt-2^16")
def test_ntt_kernel(benchmark):
    benchmark(ntt.ntt, COL)


@pytest.mark.benchmark(group="ntt-2^16")
def test_ntt_numpy(benchmark):
    canon = field.decode(COL)
    benchmark(ntt_numpy_reference, canon)


@pytest.mark.benchmark(group="lde-2^14x64-b2")
def test_lde_kernel(benchmark):
    m = field.encode(RNG.integers(0, P, (1 << 14, 64), dtype=np.uint32))
    benchmark(ntt.lde, m, 1)


PAIRS = RNG.integers(0, 256, (4096, 64), dtype=np.uint8)


@pytest.mark.benchmark(group="sha256-pairs-4096")
def test_compress_pairs_kernel(benchmark):
    benchmark(merkle.compress_pairs, PAIRS)


@pytest.mark.benchmark(group="sha256-pairs-4096")
def test_compress_pairs_hashlib(benchmark):
    rows = [bytes(r) for r in PAIRS]
    benchmark(lambda: [hashlib.sha256(r).digest() for r in rows])
