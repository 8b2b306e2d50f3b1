"""The prover's shortcuts agree with the plain definitions they replace:
barycentric out-of-domain values against interpolation, the two-lane proof of
work against a hashlib search for the least nonce, the shared batch-opening
positions against a walk per tree, and the cached divisors against a fresh
computation."""
import hashlib
import struct

import numpy as np
import pytest

from zksidecar.prover import extension as E
from zksidecar.prover import field as F
from zksidecar.prover import ntt
from zksidecar.prover.domain import zpowers
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.merkle import MerkleTree
from zksidecar.prover.merkle_batch import open_batch, sibling_positions, verify_batch
from zksidecar.prover.prove import _columns, _divisors_on_lde, barycentric_weights
from zksidecar.prover.transcript import Transcript


def _random_trace(n: int, w: int, seed: int) -> np.ndarray:
    return F.encode(np.random.default_rng(seed).integers(0, F.P, (n, w), dtype=np.uint32))


@pytest.mark.parametrize("log_n,w", [(1, 1), (4, 3), (10, 9)])
def test_barycentric_values_match_interpolation(log_n, w):
    n = 1 << log_n
    trace = _random_trace(n, w, log_n)
    z = Ext(7, 123456, 99, 2_000_000_000 % F.P)
    w_n = F.two_adic_generator(log_n)
    coeffs = _columns(ntt.intt(trace))
    want_z = E.combine_rows(coeffs, zpowers(z, n))
    want_next = E.combine_rows(coeffs, zpowers(z * w_n, n))
    u = barycentric_weights(z, n)
    got_z, got_next = E.sum_rows2(trace, u, np.roll(u, 1, axis=0))   # as prove() does: no transpose
    assert np.array_equal(got_z, want_z)
    assert np.array_equal(got_next, want_next)


def _least_nonce(state: bytes, bits: int) -> int:
    nonce = 0
    while int.from_bytes(hashlib.sha256(state + b"\x04" + struct.pack("<Q", nonce)).digest()[:8],
                         "big") >> (64 - bits):
        nonce += 1
    return nonce


@pytest.mark.parametrize("seed", range(6))
def test_grind_finds_the_least_nonce(seed):
    tr = Transcript(b"grind-test")
    tr.absorb(b"seed", bytes([seed]))
    state = bytes(tr._state)
    assert tr.grind(6) == _least_nonce(state, 6)


def test_shared_sibling_positions_open_every_tree():
    rows = 64
    idx = np.array([0, 1, 5, 17, 40, 41, 63])
    pos = sibling_positions(rows, idx)
    for seed in range(3):
        mat = _random_trace(rows, 3 + seed, seed)
        tree = MerkleTree(mat)
        proof = tree.nodes[pos]
        assert np.array_equal(proof, open_batch(tree, idx))
        leaves = tree.nodes[rows + idx]
        assert verify_batch(tree.root, tree.depth, idx, leaves, proof)


def test_cached_divisors_are_read_only_and_exact():
    n, lb, rows = 16, 2, (0, 15)
    transition, inv_zh, boundary = _divisors_on_lde(n, lb, rows)
    assert not transition.flags.writeable
    x = ntt.domain((n << lb).bit_length() - 1, ntt.GENERATOR)
    one = np.full(x.size, F.ONE, dtype=np.uint32)
    # inv_zh * (x^n - 1) == 1, boundary_r * (x - w^r) == 1
    assert np.array_equal(F.mul(inv_zh, F.sub(F.power(x, n), one)), one)
    w_n = F.two_adic_generator(n.bit_length() - 1)
    for r, inv in zip(rows, boundary):
        point = np.full(x.size, F.encode_int(pow(w_n, r, F.P)), dtype=np.uint32)
        assert np.array_equal(F.mul(inv, F.sub(x, point)), one)


def test_challenge_ext_is_challenge_ints_in_numpy():
    """Transcript.challenge_ext reduces its squeeze in numpy (the DEEP
    coefficients are hundreds at once): the same elements as challenge_ints
    from the same state, and the state moves on the same way."""
    a, b = Transcript(b"t"), Transcript(b"t")
    for tr in (a, b):
        tr.absorb(b"x", b"state")
    got = a.challenge_ext(300)
    want = F.encode(np.array(b.challenge_ints(1200), dtype=np.uint32)).reshape(300, 4)
    assert np.array_equal(got, want)
    assert np.array_equal(a.challenge_ext(1), b.challenge_ext(1))
