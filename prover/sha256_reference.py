"""SHA-256's compression function and the Merkle node: the definition, in
plain Python integers.

hashlib computes whole SHA-256 digests but does not expose the compression
function, and a Merkle node is that function alone (docs/MERKLE.md,
"Nodes"):

    N(left, right) = compress(IV, left || right), its eight words written
                     big-endian as SHA-256 writes its digest

one compression of the standard initial value and the 64-byte block, with
no padding block and no length.  This module is the readable definition
(FIPS 180-4, section 6.2.2, one block); it uses only integers and `struct`,
nothing of the rest of the package, so it checks the C kernels
(csrc/hash/sha256.c, every ISA path: tests/test_sha256.py), serves the
pure-Python path verifier (merkle.verify_path_py) and the reference prover
(prover/reference.py) without sharing a line with them, and is itself
checked against hashlib: SHA-256 of a message of at most 55 bytes is
compress(IV, the message padded to one block).

    Ch(e, f, g)  = (e & f) ^ (~e & g)       Maj(a, b, c) = (a & b) ^ (a & c) ^ (b & c)
    S0(a) = ROTR2 ^ ROTR13 ^ ROTR22         S1(e) = ROTR6 ^ ROTR11 ^ ROTR25
    s0(w) = ROTR7 ^ ROTR18 ^ SHR3           s1(w) = ROTR17 ^ ROTR19 ^ SHR10
    W[t]  = the block's big-endian words (t < 16), else
            s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16]
    64 rounds on a copy of the state, then the input state added word by word
    (all additions mod 2^32)
"""
from __future__ import annotations

import struct

MASK = 0xFFFFFFFF
BLOCK_BYTES = 64
DIGEST_BYTES = 32

#: the first 32 bits of the fractional parts of the cube roots of the first 64 primes
K = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)
#: the initial state: the first 32 bits of the fractional parts of the square roots of the first 8 primes
IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)

_BLOCK = struct.Struct(">16I")
_STATE = struct.Struct(">8I")


def _rotr(x: int, n: int) -> int:
    return (x >> n | x << (32 - n)) & MASK


def schedule(block: bytes) -> list[int]:
    """W[0..63] of one 64-byte block."""
    w = list(_BLOCK.unpack(block))
    for t in range(16, 64):
        s0 = _rotr(w[t - 15], 7) ^ _rotr(w[t - 15], 18) ^ w[t - 15] >> 3
        s1 = _rotr(w[t - 2], 17) ^ _rotr(w[t - 2], 19) ^ w[t - 2] >> 10
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & MASK)
    return w


def compress(state: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    """The compression function: `state` (eight 32-bit words) after one
    64-byte `block`, the feed-forward included."""
    if len(block) != BLOCK_BYTES or len(state) != 8:
        raise ValueError(f"compress takes 8 state words and a {BLOCK_BYTES}-byte block, "
                         f"got {len(state)} words and {len(block)} bytes")
    a, b, c, d, e, f, g, h = state
    for wt, kt in zip(schedule(block), K):
        t1 = (h + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (~e & g)) + kt + wt) & MASK
        t2 = ((_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) & MASK
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & MASK, c, b, a, (t1 + t2) & MASK
    return tuple((x + y) & MASK for x, y in zip(state, (a, b, c, d, e, f, g, h)))


def state_bytes(state: tuple[int, ...]) -> bytes:
    """The state written as SHA-256 writes its digest: each word big-endian."""
    return _STATE.pack(*state)


def merkle_node(left: bytes, right: bytes) -> bytes:
    """N(left, right): one compression of IV and left || right (two 32-byte
    digests), as 32 bytes."""
    if len(left) != DIGEST_BYTES or len(right) != DIGEST_BYTES:
        raise ValueError(f"a node's children are {DIGEST_BYTES}-byte digests, got {len(left)} and "
                         f"{len(right)} bytes")
    return state_bytes(compress(IV, left + right))
