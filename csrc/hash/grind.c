/*
 * grind.c — proof-of-work search for the Fiat-Shamir transcript.
 *
 * The message is 41 bytes (32 state, 1 tag, 8 nonce), a single SHA-256 block
 * after padding, so each try is one compression (sixteen tries at a time on
 * the AVX-512 path, two with SHA-NI).  Expected tries: 2^bits.
 */
#include <string.h>

#include "zk_grind.h"
#include "zk_hash.h"

/* The first 64 bits of the digest, big-endian: state words 0 and 1. */
static int leading_zero_bits_at_least(const uint32_t st[8], unsigned bits) {
    uint64_t head = (uint64_t)st[0] << 32 | st[1];
    return bits == 0 || (head >> (64 - bits)) == 0;
}

/* Each try writes only the nonce bytes of a block padded once, and as many
 * tries as the active path has lanes go through the compression together
 * (SHA-NI interleaves two, AVX-512 runs sixteen; the scalar path one).
 * Lanes hold increasing nonces and are checked in order, so the least valid
 * nonce is the one returned on every path. */
uint64_t zk_grind(const uint8_t state[32], unsigned bits, uint64_t start) {
    uint8_t block[ZK_SHA256_MAX_LANES][64];
    const uint8_t *msgs[ZK_SHA256_MAX_LANES];
    for (int l = 0; l < ZK_SHA256_MAX_LANES; l++) {
        memcpy(block[l], state, 32);
        block[l][32] = 0x04;
        zk_sha256_pad(block[l], 41, 41);
        msgs[l] = block[l];
    }
    int lanes = zk_sha256_lanes();
    for (uint64_t nonce = start;; nonce += (uint64_t)lanes) {
        uint32_t st[ZK_SHA256_MAX_LANES][8];
        for (int l = 0; l < lanes; l++) {
            for (int i = 0; i < 8; i++) block[l][33 + i] = (uint8_t)((nonce + (uint64_t)l) >> (8 * i));
            zk_sha256_init(st[l]);
        }
        zk_sha256_blocks(st, msgs, 1, lanes);
        for (int l = 0; l < lanes; l++)
            if (leading_zero_bits_at_least(st[l], bits)) return nonce + (uint64_t)l;
    }
}
