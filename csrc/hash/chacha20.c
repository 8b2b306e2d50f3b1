/*
 * chacha20.c — the ChaCha20 keystream of RFC 8439 (zk_chacha20.h): the
 * stream the zk keys expand into (prover/zk_keys.py, docs/ZK_KEYS.md).
 *
 * Written from the RFC's definition: the scalar body below is section 2.3
 * line by line, one block at a time; the vector bodies (chacha20_vec.inc)
 * run the same rounds with one block a 32-bit lane, eight (AVX2) or
 * sixteen (AVX-512) at once, picked by the active ISA path.  ChaCha20 is
 * additions, exclusive ors and constant rotations only, so every path
 * runs in time independent of the key and the output.
 */
#include <string.h>

#include "zk_chacha20.h"

/* "expand 32-byte k", little-endian words */
static const uint32_t SIGMA[4] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u};
/* the vector paths' block offsets, lane l = l */
static const uint32_t CHACHA20_LANE[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* (x << n) | (x >> (32 - n)), n in 1..31: the compiler emits one rol. */
#define ROTL32(x, n) ((uint32_t)((x) << (n)) | (uint32_t)((x) >> (32 - (n))))

#define QUARTER(a, b, c, d)                             \
    do {                                                \
        a += b, d ^= a, d = ROTL32(d, 16);              \
        c += d, b ^= c, b = ROTL32(b, 12);              \
        a += b, d ^= a, d = ROTL32(d, 8);               \
        c += d, b ^= c, b = ROTL32(b, 7);               \
    } while (0)

static void chacha20_blocks_scalar(uint8_t *out, const uint32_t in[16], size_t nblocks) {
    uint32_t s[16];
    memcpy(s, in, sizeof s);
    for (size_t i = 0; i < nblocks; i++, s[12]++) {
        uint32_t x[16];
        memcpy(x, s, sizeof x);
        for (int round = 0; round < 10; round++) {
            QUARTER(x[0], x[4], x[8], x[12]); /* columns */
            QUARTER(x[1], x[5], x[9], x[13]);
            QUARTER(x[2], x[6], x[10], x[14]);
            QUARTER(x[3], x[7], x[11], x[15]);
            QUARTER(x[0], x[5], x[10], x[15]); /* diagonals */
            QUARTER(x[1], x[6], x[11], x[12]);
            QUARTER(x[2], x[7], x[8], x[13]);
            QUARTER(x[3], x[4], x[9], x[14]);
        }
        for (int w = 0; w < 16; w++) store_le32(out + 64 * i + 4 * w, x[w] + s[w]);
    }
}

/* chacha20_blocks_avx2, chacha20_blocks_avx512 */
#define VEC_BODY "hash/chacha20_vec.inc"
#include "common/vec_widths.h"

int zk_chacha20_blocks(uint8_t *out, const uint8_t key[32], const uint8_t nonce[12], uint64_t counter,
                       size_t nblocks) {
    if (counter > (1ull << 32) || nblocks > (1ull << 32) - counter) return -1;
    if (nblocks == 0) return 0;
    uint32_t in[16];
    memcpy(in, SIGMA, sizeof SIGMA);
    for (int i = 0; i < 8; i++) in[4 + i] = load_le32(key + 4 * i);
    in[12] = (uint32_t)counter;
    for (int i = 0; i < 3; i++) in[13 + i] = load_le32(nonce + 4 * i);
    ZK_DISPATCH(zk_active_isa, chacha20_blocks, out, in, nblocks);
    return 0;
}
