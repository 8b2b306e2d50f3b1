"""ChaCha20 (RFC 8439): the definition, in plain Python integers.

The readable specification of the keystream the zk keys expand into
(prover/zk_keys.py, docs/ZK_KEYS.md "Expansion"; the C kernel is
csrc/hash/chacha20.c).  It uses only integers, lists and `struct`, nothing
of the rest of the package, so it checks the C paths (tests/test_chacha20.py,
with RFC 8439's vectors) and serves the reference prover
(prover/reference.py) without sharing a line with the kernel.

    state   16 words of 32 bits: the constants "expand 32-byte k" (words
            0..3), the key as eight little-endian words (4..11), the block
            counter (12), the nonce as three little-endian words (13..15)
    QR(a, b, c, d):  a += b; d ^= a; d <<<= 16;  c += d; b ^= c; b <<<= 12;
                     a += b; d ^= a; d <<<= 8;   c += d; b ^= c; b <<<= 7
            (additions mod 2^32, <<< a left rotation of the 32-bit word)
    block   ten double rounds on a copy of the state, each the four columns
            QR(0, 4, 8, 12) .. QR(3, 7, 11, 15) then the four diagonals
            QR(0, 5, 10, 15), QR(1, 6, 11, 12), QR(2, 7, 8, 13),
            QR(3, 4, 9, 14); the input state added word by word; the 16 words
            written little-endian: 64 bytes
    stream  blocks counter, counter + 1, ... concatenated; the counter is
            32 bits, so a stream has at most 2^32 blocks from counter 0
"""
from __future__ import annotations

import struct

MASK = 0xFFFFFFFF
CONSTANTS = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)      # "expand 32-byte k"
BLOCK_BYTES = 64
#: the block counter is one 32-bit word: a stream is at most this many blocks
MAX_BLOCKS = 1 << 32

_WORDS = struct.Struct("<16I")
COLUMNS = ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15))
DIAGONALS = ((0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14))


def _rotl(x: int, n: int) -> int:
    return (x << n | x >> (32 - n)) & MASK


def quarter_round(x: list[int], a: int, b: int, c: int, d: int) -> None:
    """RFC 8439 section 2.2's QUARTERROUND on the state words at a, b, c, d,
    in place."""
    x[a] = (x[a] + x[b]) & MASK
    x[d] = _rotl(x[d] ^ x[a], 16)
    x[c] = (x[c] + x[d]) & MASK
    x[b] = _rotl(x[b] ^ x[c], 12)
    x[a] = (x[a] + x[b]) & MASK
    x[d] = _rotl(x[d] ^ x[a], 8)
    x[c] = (x[c] + x[d]) & MASK
    x[b] = _rotl(x[b] ^ x[c], 7)


def initial_state(key: bytes, counter: int, nonce: bytes) -> list[int]:
    """The block function's input state (RFC 8439 section 2.3)."""
    if len(key) != 32 or len(nonce) != 12 or not 0 <= counter < MAX_BLOCKS:
        raise ValueError("ChaCha20 takes a 32-byte key, a 12-byte nonce and a 32-bit block counter")
    return [*CONSTANTS, *struct.unpack("<8I", key), counter, *struct.unpack("<3I", nonce)]


def block(key: bytes, counter: int, nonce: bytes) -> bytes:
    """The 64-byte ChaCha20 block of (key, counter, nonce)."""
    state = initial_state(key, counter, nonce)
    x = list(state)
    for _ in range(10):
        for q in COLUMNS + DIAGONALS:
            quarter_round(x, *q)
    return _WORDS.pack(*((w + s) & MASK for w, s in zip(x, state)))


def keystream(key: bytes, nonce: bytes, counter: int, nbytes: int) -> bytes:
    """The first `nbytes` bytes of the blocks from `counter` on; ValueError
    if they would need a block past counter 2^32 - 1."""
    blocks = -(-nbytes // BLOCK_BYTES)
    if counter + blocks > MAX_BLOCKS:
        raise ValueError(f"{nbytes} bytes from block {counter} need blocks past the 32-bit counter")
    return b"".join(block(key, counter + i, nonce) for i in range(blocks))[:nbytes]
