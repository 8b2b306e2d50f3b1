"""A quick known-answer check of every kernel on every ISA path this CPU runs,
against plain Python integers and hashlib (`zksidecar selfcheck`, `make demo`).

The test suite is far more thorough; this is what an operator runs on a new
machine before trusting it with proofs.
"""
from __future__ import annotations

import hashlib
import hmac

import numpy as np

from zksidecar.prover import (chacha20_reference, extension, field, merkle, native, ntt, poseidon2,
                              poseidon2_reference, sha256_reference, zk_keys)
from zksidecar.prover.native import lib

P = field.P


def _field(rng) -> bool:
    x = rng.integers(0, P, 999, dtype=np.uint32)
    y = rng.integers(1, P, 999, dtype=np.uint32)
    x[:3] = [0, 1, P - 1]
    a, b = field.encode(x), field.encode(y)
    X, Y = x.tolist(), y.tolist()
    return (field.decode(field.mul(a, b)).tolist() == [u * v % P for u, v in zip(X, Y)]
            and field.decode(field.sub(a, b)).tolist() == [(u - v) % P for u, v in zip(X, Y)]
            and field.decode(field.inv(b)).tolist() == [pow(v, P - 2, P) for v in Y])


def _extension(rng) -> bool:
    a = extension.encode(rng.integers(1, P, (64, 4), dtype=np.uint32))
    one = extension.decode(extension.mul(a, extension.inv(a)))
    return bool((one == [1, 0, 0, 0]).all())


def _ntt(rng) -> bool:
    n = 64
    coeffs = rng.integers(0, P, n, dtype=np.uint32).tolist()
    w = field.two_adic_generator(6)
    naive = [sum(c * pow(w, i * j, P) for j, c in enumerate(coeffs)) % P for i in range(n)]
    evals = ntt.ntt(field.encode(coeffs))
    # LDE of a degree-9 polynomial has no coefficient above 9
    low = field.encode(coeffs[:10] + [0] * (n - 10))
    ext = ntt.lde(ntt.ntt(low), 2)
    back = field.decode(ntt.coset_intt(ext, field.GENERATOR))
    return field.decode(evals).tolist() == naive and not back[10:].any() \
        and back[:10].tolist() == coeffs[:10]


def _sha256(rng) -> bool:
    msgs = [b"", b"abc", bytes(rng.integers(0, 256, 1000, dtype=np.uint8))]
    pairs = rng.integers(0, 256, (33, 64), dtype=np.uint8)
    got = merkle.compress_pairs(pairs)
    return (all(merkle.sha256(m) == hashlib.sha256(m).digest() for m in msgs)
            and all(bytes(got[i]) == sha256_reference.merkle_node(bytes(pairs[i, :32]), bytes(pairs[i, 32:]))
                    for i in range(33)))


def _merkle(rng) -> bool:
    rows = field.encode(rng.integers(0, P, (64, 5), dtype=np.uint32))
    tree = merkle.MerkleTree(rows)
    leaves = merkle.hash_rows(rows)
    path = tree.open([37])[0]
    bad = bytearray(path[0])
    bad[0] ^= 1
    return (merkle.verify_path(tree.root, bytes(leaves[37]), 37, path)
            and not merkle.verify_path(tree.root, bytes(leaves[37]), 37, [bytes(bad)] + list(path[1:])))


def _poseidon2(rng) -> bool:
    """The instance's published permutation of (0..15), and 18 random states
    (a short last block on both vector widths) against the definition."""
    states = rng.integers(0, P, (19, 16), dtype=np.uint32)
    states[0] = np.arange(16)
    got = field.decode(poseidon2.permute(field.encode(states))).tolist()
    return (got[0][:4] == [896560466, 771677727, 128113032, 1378976435]
            and got == [poseidon2_reference.permute(s) for s in states.tolist()])


def _chacha20(rng) -> bool:
    """The zk keys' expansion: RFC 8439's block function vector (section
    2.3.2), and 19 blocks of a stream (a whole and a partial vector batch)
    against ChaCha20's plain-Python definition keyed by hashlib's hmac."""
    rfc = bytes.fromhex("10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
                        "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e")
    out = np.zeros(64, dtype=np.uint8)
    lib.zk_chacha20_blocks(native.u8p(out), bytes(range(32)), bytes.fromhex("000000090000004a00000000"), 1, 1)
    key = bytes(rng.integers(0, 256, 32, dtype=np.uint8))
    stream = hmac.digest(key, zk_keys.label(["stream", "selfcheck"]), "sha256")
    expected = chacha20_reference.keystream(stream, bytes(12), 0, 64 * 19)
    return out.tobytes() == rfc and zk_keys.expand(key, ["selfcheck"], 64 * 19) == expected


CHECKS = [("field", _field), ("extension", _extension), ("ntt/lde", _ntt),
          ("sha-256", _sha256), ("merkle", _merkle), ("poseidon2", _poseidon2), ("chacha20", _chacha20)]


def run(verbose: bool = False) -> bool:
    ok = True
    for isa in native.supported_isas():
        with native.using_isa(isa):
            for name, check in CHECKS:
                passed = check(np.random.default_rng(1))
                ok &= passed
                if verbose:
                    print(f"  {isa:<7} {name:<10} {'ok' if passed else 'FAILED'}")
    if verbose:
        sha = "SHA-NI" if native.sha_ni() else "portable SHA-256"
        print(f"selfcheck {'passed' if ok else 'FAILED'}; active path {native.isa()}, {sha}")
    return ok
