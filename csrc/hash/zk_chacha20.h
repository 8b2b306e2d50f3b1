/*
 * zk_chacha20.h — the ChaCha20 keystream of RFC 8439 (public interface):
 * the stream every zk key expands into masks and salts (prover/zk_keys.py,
 * docs/ZK_KEYS.md, "Expansion").
 *
 * The block function of RFC 8439 section 2.3: a 16-word state of the four
 * constants "expand 32-byte k", the key's eight little-endian words, the
 * 32-bit block counter and the nonce's three words; twenty rounds (ten
 * column-and-diagonal double rounds of the quarter round a += b; d ^= a;
 * d <<<= 16; c += d; b ^= c; b <<<= 12; a += b; d ^= a; d <<<= 8; c += d;
 * b ^= c; b <<<= 7); the input state added back; the sixteen words written
 * little-endian: 64 bytes a block.  Every path gives the bytes of that
 * definition (prover/chacha20_reference.py; tests/test_chacha20.py holds
 * RFC 8439's vectors): scalar C one block at a time, AVX2 eight blocks and
 * AVX-512 sixteen side by side, one block a 32-bit lane.
 *
 * Constant time by construction: additions, exclusive ors and rotations by
 * constants, on every path; no table, no branch and no address depends on
 * the key or the output (the only branches are on the public block count).
 */
#ifndef ZK_CHACHA20_H
#define ZK_CHACHA20_H

#include "common/zk_common.h"

/* cffi-begin */
#define ZK_CHACHA20_KEY_BYTES 32
#define ZK_CHACHA20_NONCE_BYTES 12
#define ZK_CHACHA20_BLOCK_BYTES 64

/* out[64i .. 64i+64) = ChaCha20 block (key, block counter counter + i,
 * nonce) for i < nblocks.  Returns 0, or -1 with nothing written when
 * counter + nblocks > 2^32: the 32-bit block counter would wrap, and a
 * stream repeats nothing. */
int zk_chacha20_blocks(uint8_t *out, const uint8_t key[32], const uint8_t nonce[12], uint64_t counter,
                       size_t nblocks);
/* cffi-end */

#endif
