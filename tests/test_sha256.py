"""SHA-256 kernels against hashlib and the published NIST examples, on every
instruction-set path this CPU can run (each path must give identical bytes)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zksidecar.prover import merkle, native


# FIPS 180-4 examples (NIST CSRC "Examples with intermediate values").
NIST_VECTORS = [
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]

# Around the padding boundaries: 55 is the longest one-block message, 56..63
# spill the length into a second block, 64 is exactly one block.
BOUNDARY_LENGTHS = [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129]


def assert_all_equal(results: dict, expected) -> None:
    for name, got in results.items():
        assert got == expected, f"{name} path differs"


@pytest.mark.parametrize("message, hex_digest", NIST_VECTORS, ids=["abc", "empty", "448-bit", "million-a"])
def test_nist_vectors(message, hex_digest):
    assert_all_equal(native.on_each_isa(lambda: merkle.sha256(message).hex()), hex_digest)


@pytest.mark.parametrize("length", BOUNDARY_LENGTHS)
def test_block_boundaries(length):
    data = bytes(np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8))
    assert_all_equal(native.on_each_isa(lambda: merkle.sha256(data)), hashlib.sha256(data).digest())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1000))
def test_random_messages(data):
    assert_all_equal(native.on_each_isa(lambda: merkle.sha256(data)), hashlib.sha256(data).digest())


def test_accepts_any_buffer():
    data = bytearray(b"x" * 100)
    assert merkle.sha256(data) == merkle.sha256(memoryview(data)) == hashlib.sha256(data).digest()


# Odd counts leave one pair for the single-lane tail of the two-lane kernel.
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 7, 1000, 1001])
def test_compress_pairs_is_sha256_of_each_64_bytes(n):
    pairs = np.random.default_rng(n).integers(0, 256, (n, 64), dtype=np.uint8)
    expected = np.array([np.frombuffer(hashlib.sha256(p.tobytes()).digest(), np.uint8) for p in pairs],
                        dtype=np.uint8).reshape(n, 32)
    for name, got in native.on_each_isa(lambda: merkle.compress_pairs(pairs)).items():
        np.testing.assert_array_equal(got, expected, err_msg=f"{name} path")


def test_compress_pairs_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"shape \(n, 64\)"):
        merkle.compress_pairs(np.zeros((4, 32), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        merkle.compress_pairs(np.zeros((4, 64), dtype=np.uint32))
    with pytest.raises(ValueError, match="C-contiguous"):
        merkle.compress_pairs(np.zeros((4, 128), dtype=np.uint8)[:, ::2])


def test_grinding_finds_the_least_nonce_on_every_isa():
    """zk_grind tries as many nonces at once as the path has lanes (1, 2 or
    16) and checks them in order: every path returns the least valid nonce,
    the one a plain hashlib search finds, so a proof's bytes do not depend
    on the CPU."""
    from zksidecar.prover.native import ffi, lib

    state = hashlib.sha256(b"grind").digest()

    def least(bits, start):
        nonce = start
        while True:
            digest = hashlib.sha256(state + b"\x04" + nonce.to_bytes(8, "little")).digest()
            if bits == 0 or int.from_bytes(digest[:8], "big") >> (64 - bits) == 0:
                return nonce
            nonce += 1

    for bits, start in ((0, 5), (3, 0), (7, 1), (9, 12345)):
        found = native.on_each_isa(lambda: int(lib.zk_grind(ffi.from_buffer(state), bits, start)))
        assert_all_equal(found, least(bits, start))
