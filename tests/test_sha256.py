"""SHA-256 kernels against hashlib and the published NIST examples, on every
instruction-set path this CPU can run (each path must give identical bytes)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zksidecar.prover import merkle, native, sha256_reference as R


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


# The compression function on one block, the standard IV in, its state
# written big-endian: published vectors (the test vectors circulated with
# SHA-256 compression circuits; the 00 01 .. 3f block is also docs/MERKLE.md's
# worked node).
COMPRESSION_VECTORS = [
    ("00" * 64, "da5698be17b9b46962335799779fbeca8ce5d491c0d26243bafef9ea1837a9d8"),
    (bytes(range(64)).hex(), "fc99a2df88f42a7a7bb9d18033cdc6a20256755f9d5b9a5044a9cc315abe84a7"),
    ("ff" * 64, "ef0c748df4da50a8d6c43c013edc3ce76c9d9fa9a1458ade56eb86c0a64492d2"),
    ("243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89"
     "452821e638d01377be5466cf34e90c6cc0ac29b7c97c50dd3f84d5b5b5470917",
     "cf0ae4eb67d38ffeb94068984b22abde4e92bc548d14585e48dca8882d7b09ce"),
]


def padded(message: bytes) -> bytes:
    """`message` with SHA-256's padding: 0x80, zeros, the bit length (a
    multiple of 64 bytes)."""
    zeros = (55 - len(message)) % 64
    return message + b"\x80" + bytes(zeros) + (8 * len(message)).to_bytes(8, "big")


def reference_sha256(message: bytes) -> bytes:
    """SHA-256 from the pure-Python compression alone, block by block."""
    data, state = padded(message), R.IV
    for at in range(0, len(data), 64):
        state = R.compress(state, data[at:at + 64])
    return R.state_bytes(state)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=55))
def test_reference_compression_of_one_padded_block_is_sha256(message):
    """hashlib does not expose the compression, so the pure-Python one is
    checked through it: SHA-256 of a message of at most 55 bytes is one
    compression of IV and the message padded to one block."""
    assert R.state_bytes(R.compress(R.IV, padded(message))) == hashlib.sha256(message).digest()


@pytest.mark.parametrize("length", BOUNDARY_LENGTHS)
def test_reference_compression_chains_to_sha256(length):
    """Past one block the state in is not IV: chained compressions over the
    padded message give hashlib's digest (the feed-forward adds the state
    that came in, not IV)."""
    data = bytes(np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8))
    assert reference_sha256(data) == hashlib.sha256(data).digest()


@pytest.mark.parametrize("block, hex_node", COMPRESSION_VECTORS, ids=["zeros", "counting", "ones", "pi"])
def test_node_compression_vectors(block, hex_node):
    pair = np.frombuffer(bytes.fromhex(block), np.uint8).reshape(1, 64)
    assert R.merkle_node(pair[0, :32].tobytes(), pair[0, 32:].tobytes()).hex() == hex_node
    for name, got in native.on_each_isa(lambda: merkle.compress_pairs(pair)).items():
        assert got.tobytes().hex() == hex_node, f"{name} path"


def test_a_node_is_not_sha256_of_its_children():
    """One compression, no padding block: the node differs from SHA-256 of
    the same 64 bytes (the node of proof formats before 8), which is two."""
    block = bytes(range(64))
    assert R.merkle_node(block[:32], block[32:]) != hashlib.sha256(block).digest()
    padding_block = padded(block)[64:]
    assert R.state_bytes(R.compress(R.compress(R.IV, block), padding_block)) == hashlib.sha256(block).digest()


def test_reference_refuses_other_sizes():
    with pytest.raises(ValueError, match="64-byte block"):
        R.compress(R.IV, bytes(63))
    with pytest.raises(ValueError, match="32-byte digests"):
        R.merkle_node(bytes(32), bytes(33))


# Odd counts leave one pair for the single-lane tail of the two-lane kernel;
# 16, 17, 33 and 1001 fill the sixteen lanes of the AVX-512 path and leave
# a tail of 0, 1 or more for SHA-NI.
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 7, 16, 17, 33, 1000, 1001])
def test_compress_pairs_is_one_compression_of_each_64_bytes(n):
    pairs = np.random.default_rng(n).integers(0, 256, (n, 64), dtype=np.uint8)
    expected = np.array([np.frombuffer(R.merkle_node(p[:32].tobytes(), p[32:].tobytes()), np.uint8)
                         for p in pairs], dtype=np.uint8).reshape(n, 32)
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
