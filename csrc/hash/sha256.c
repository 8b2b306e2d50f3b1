/*
 * sha256.c — SHA-256 (FIPS 180-4) in three bodies: portable C, the x86 SHA
 * extensions (SHA-NI) for the AVX2 path, and sixteen messages at once in
 * AVX-512 registers for the AVX-512 path (SHA-NI for fewer than sixteen).
 *
 * Everything is built on one primitive, "compress whole 64-byte blocks into a
 * state", in up to ZK_SHA256_MAX_LANES independent streams at once.  Merkle
 * nodes are the hot case, and they are that primitive alone: a node is the
 * compression function applied once to the standard IV and the 64-byte block
 * left || right (docs/MERKLE.md, "Nodes"), no padding block and no length,
 * where SHA-256 of the 64-byte message would take a second compression over
 * the constant padding block.
 */
#include <string.h>

#include "common/transpose.h"
#include "zk_hash.h"

/* Round constants: the first 32 bits of the fractional parts of the cube
 * roots of the first 64 primes.  Aligned for the SHA-NI path's 16-byte loads. */
static _Alignas(16) const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

/* Initial state: the first 32 bits of the fractional parts of the square
 * roots of the first 8 primes. */
static const uint32_t IV[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};

/* zk_sha_ni_supported() asks CPUID, which is slow (and traps to the
 * hypervisor in a VM): ask once, at load. */
static int sha_ni_cpu;

static int use_sha_ni(void) { return sha_ni_cpu && zk_active_isa != ZK_ISA_SCALAR; }

ZK_INLINE uint32_t load_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

ZK_INLINE void store_be32(uint8_t *p, uint32_t x) {
    p[0] = (uint8_t)(x >> 24), p[1] = (uint8_t)(x >> 16), p[2] = (uint8_t)(x >> 8), p[3] = (uint8_t)x;
}

ZK_INLINE uint32_t rotr(uint32_t x, int n) { return x >> n | x << (32 - n); }

/* ------------------------------------------------------------- scalar -- */

/* The message schedule with the round constants already added: the rounds
 * only ever use the sum. */
static void schedule(uint32_t wk[64], const uint8_t block[64]) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++) w[t] = load_be32(block + 4 * t);
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ w[t - 15] >> 3;
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ w[t - 2] >> 10;
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    for (int t = 0; t < 64; t++) wk[t] = w[t] + K[t];
}

/* The 64 rounds and the feed-forward (adding the input state back in). */
static void rounds(uint32_t s[8], const uint32_t wk[64]) {
    uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + wk[t];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g, g = f, f = e, e = d + t1;
        d = c, c = b, b = a, a = t1 + t2;
    }
    s[0] += a, s[1] += b, s[2] += c, s[3] += d, s[4] += e, s[5] += f, s[6] += g, s[7] += h;
}

static void blocks_scalar(uint32_t s[8], const uint8_t *msg, size_t nblocks) {
    uint32_t wk[64];
    for (size_t i = 0; i < nblocks; i++) {
        schedule(wk, msg + 64 * i);
        rounds(s, wk);
    }
}

/* Merkle nodes: one compression of IV and the 64-byte block each, the state
 * written out as the digest. */
static void pairs_scalar(uint8_t *out, const uint8_t *in, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t s[8];
        memcpy(s, IV, sizeof s);
        blocks_scalar(s, in + 64 * i, 1);
        zk_sha256_digest(out + 32 * i, s);
    }
}

#if ZK_X86
/* -------------------------------------------------------------- SHA-NI -- */

enum { SHANI_LANES = 2 }; /* streams interleaved (see shani_block) */

/* The eight working variables A..H split the way sha256rnds2 reads them:
 *   abef = [A, B, E, F]   cdgh = [C, D, G, H]    (listed from lane 3 to lane 0)
 * i.e. A sits in bits 127:96 and F in bits 31:0 of abef. */
typedef struct {
    __m128i abef, cdgh;
} shani_state;

ZK_SHANI ZK_INLINE shani_state shani_load(const uint32_t s[8]) {
    /* _mm_set_epi32 names lanes from 3 down to 0: the layout above, read
     * off directly (the compiler turns it into a few shuffles) */
    return (shani_state){_mm_set_epi32((int)s[0], (int)s[1], (int)s[4], (int)s[5]),
                         _mm_set_epi32((int)s[2], (int)s[3], (int)s[6], (int)s[7])};
}

/* [D, C, B, A] and [H, G, F, E] in lanes 0..3: the state words in reverse.
 * punpckhqdq / punpcklqdq take the upper / lower halves of cdgh, abef. */
ZK_SHANI ZK_INLINE __m128i shani_dcba(shani_state s) { return _mm_unpackhi_epi64(s.cdgh, s.abef); }
ZK_SHANI ZK_INLINE __m128i shani_hgfe(shani_state s) { return _mm_unpacklo_epi64(s.cdgh, s.abef); }

ZK_SHANI ZK_INLINE void shani_store(uint32_t s[8], shani_state st) {
    /* pshufd 0x1B reverses the four lanes: [A, B, C, D] in lanes 0..3 */
    _mm_storeu_si128((__m128i *)s, _mm_shuffle_epi32(shani_dcba(st), 0x1B));
    _mm_storeu_si128((__m128i *)(s + 4), _mm_shuffle_epi32(shani_hgfe(st), 0x1B));
}

/* The digest is A..H, each big-endian.  Lanes 0..3 = [D, C, B, A] is, as
 * little-endian bytes, the exact byte reversal of big-endian A B C D: one
 * pshufb with a reversing mask per half. */
ZK_SHANI ZK_INLINE void shani_digest(uint8_t out[32], shani_state st) {
    const __m128i reverse = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(shani_dcba(st), reverse));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(shani_hgfe(st), reverse));
}

/* W[t..t+3] of a data block (t = 0, 4, 8, 12): W[t+j] is the big-endian word
 * at byte 4j, put in lane j by byte-swapping each lane (pshufb). */
ZK_SHANI ZK_INLINE __m128i shani_load_words(const uint8_t *p) {
    const __m128i bswap32 = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
    return _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p), bswap32);
}

/* W[t..t+3] for t >= 16 from the sixteen words before it, held four to a
 * register: w0 = W[t-16..t-13], w1 = W[t-12..t-9], w2 = W[t-8..t-5],
 * w3 = W[t-4..t-1].  With W[i] = W[i-16] + s0(W[i-15]) + W[i-7] + s1(W[i-2]):
 *   sha256msg1 w0, w1   -> W[t-16+j] + s0(W[t-15+j])        (needs W[t-12], from w1)
 *   palignr w3:w2 by 4  -> W[t-7+j]                         (lanes 1..3 of w2, lane 0 of w3)
 *   sha256msg2 x, w3    -> x_j + s1(W[t-2+j]); for j = 2, 3 that is W[t], W[t+1],
 *                          which the instruction produces itself in lanes 0, 1. */
ZK_SHANI ZK_INLINE __m128i shani_schedule4(__m128i w0, __m128i w1, __m128i w2, __m128i w3) {
    __m128i x = _mm_sha256msg1_epu32(w0, w1);
    x = _mm_add_epi32(x, _mm_alignr_epi8(w3, w2, 4)); /* paddd */
    return _mm_sha256msg2_epu32(x, w3);
}

/* Rounds t..t+3, given wk = W[t+j] + K[t+j] in lane j.
 * sha256rnds2 dst, src, <xmm0> runs two rounds: it reads [C, D, G, H] from
 * dst, [A, B, E, F] from src and the two W + K words from the low 64 bits of
 * xmm0, and writes the new [A, B, E, F] to dst.  Two rounds shift A, B into
 * C, D and E, F into G, H, so the old [A, B, E, F] register already *is* the
 * new [C, D, G, H]: the registers just swap roles, and after the second call
 * (rounds t+2, t+3, their W + K moved down by pshufd 0x0E) each is back in
 * its named place.  No shuffling of the state is ever needed. */
ZK_SHANI ZK_INLINE void shani_rounds4(shani_state *s, __m128i wk) {
    s->cdgh = _mm_sha256rnds2_epu32(s->cdgh, s->abef, wk);
    s->abef = _mm_sha256rnds2_epu32(s->abef, s->cdgh, _mm_shuffle_epi32(wk, 0x0E));
}

ZK_SHANI ZK_INLINE void shani_feed_forward(shani_state *s, shani_state in) {
    s->abef = _mm_add_epi32(s->abef, in.abef);
    s->cdgh = _mm_add_epi32(s->cdgh, in.cdgh);
}

/* One data block into each of `lanes` states (a constant after inlining).
 * Every step is written once and applied to each lane in turn, so the lanes'
 * instructions interleave: one stream is a chain of 32 dependent
 * sha256rnds2, each waiting out the previous one's latency, and a second
 * independent stream runs in those gaps (Zen 4, Merkle nodes when a node
 * was two compressions: one lane 21 M pairs/s, two lanes 29 M).  Two lanes
 * x (4 message + 2 state + 2 saved state) registers fit the 16 xmm
 * registers SHA-NI can address: the Merkle node kernel (pairs_shani) keeps
 * everything in registers. */
ZK_SHANI ZK_INLINE void shani_block(shani_state *st, const uint8_t *const *blk, int lanes) {
    shani_state in[SHANI_LANES];
    __m128i w[SHANI_LANES][4]; /* the last 16 schedule words, rotating */
    for (int l = 0; l < lanes; l++) in[l] = st[l];
#pragma GCC unroll 16
    for (int g = 0; g < 16; g++) {
        __m128i k = _mm_load_si128((const __m128i *)(K + 4 * g));
        for (int l = 0; l < lanes; l++) {
            __m128i *wl = w[l]; /* wl[g & 3] = W[4g-16..4g-13] becomes W[4g..4g+3] */
            wl[g & 3] = g < 4 ? shani_load_words(blk[l] + 16 * g)
                              : shani_schedule4(wl[g & 3], wl[(g + 1) & 3], wl[(g + 2) & 3], wl[(g + 3) & 3]);
            shani_rounds4(&st[l], _mm_add_epi32(wl[g & 3], k));
        }
    }
    for (int l = 0; l < lanes; l++) shani_feed_forward(&st[l], in[l]);
}

ZK_SHANI ZK_INLINE void shani_blocks_n(uint32_t (*states)[8], const uint8_t *const *msgs, size_t nblocks,
                                       int lanes) {
    shani_state st[SHANI_LANES];
    const uint8_t *blk[SHANI_LANES];
    for (int l = 0; l < lanes; l++) st[l] = shani_load(states[l]);
    for (size_t i = 0; i < nblocks; i++) {
        for (int l = 0; l < lanes; l++) blk[l] = msgs[l] + 64 * i;
        shani_block(st, blk, lanes);
    }
    for (int l = 0; l < lanes; l++) shani_store(states[l], st[l]);
}

/* Each call site inlines the kernel for a constant lane count. */
ZK_SHANI static void blocks_shani(uint32_t (*states)[8], const uint8_t *const *msgs, size_t nblocks,
                                  int lanes) {
    if (lanes == 2)
        shani_blocks_n(states, msgs, nblocks, 2);
    else
        shani_blocks_n(states, msgs, nblocks, 1);
}

ZK_SHANI ZK_INLINE void shani_pairs_n(uint8_t *out, const uint8_t *in, int lanes) {
    shani_state st[SHANI_LANES];
    const uint8_t *blk[SHANI_LANES];
    for (int l = 0; l < lanes; l++) st[l] = shani_load(IV), blk[l] = in + 64 * l;
    shani_block(st, blk, lanes); /* the node is this one compression's state */
    for (int l = 0; l < lanes; l++) shani_digest(out + 32 * l, st[l]);
}

ZK_SHANI static void pairs_shani(uint8_t *out, const uint8_t *in, size_t n) {
    size_t i = 0;
    for (; i + 2 <= n; i += 2) shani_pairs_n(out + 32 * i, in + 64 * i, 2);
    if (i < n) shani_pairs_n(out + 32 * i, in + 64 * i, 1);
}
/* ----------------------------------------------- AVX-512, 16 lanes -- */

/* Sixteen messages of equal length side by side, one per 32-bit lane of a
 * zmm register: state word A of all sixteen in one register, and so on.
 * FIPS 180-4's operations map one to one onto single instructions:
 *   ROTR^n            vprord (AVX-512F has a rotate; AVX2 does not, which is
 *                     why there is no 8-lane AVX2 body: shifts and ors would
 *                     cost it more than SHA-NI)
 *   x ^ y ^ z         vpternlogd 0x96 (odd parity of the three inputs)
 *   Ch(e, f, g)       vpternlogd 0xCA (e ? f : g)
 *   Maj(a, b, c)      vpternlogd 0xE8 (at least two of three)
 *   + mod 2^32        vpaddd
 *   SHR^n (σ0, σ1)    vpsrld
 * About 16 instructions a round and 11 a schedule word, for sixteen blocks:
 * ~1550 per 16 blocks, none of them a shuffle.  On the Intel Xeon
 * (Sapphire/Emerald Rapids class) this project measures on, that is ~26 ns
 * a block against ~37 for SHA-NI, whose rounds instruction is the
 * bottleneck there (2, 4 or 8 interleaved SHA-NI lanes all measured ~36 ns).
 *
 * Message words: block b of lane l is words 16b..16b+15 of message l.  One
 * zmm load per lane gives sixteen registers "one lane's block each"; a 16 x 16
 * transpose of 32-bit words (vpunpck[lh]dq, vpunpck[lh]qdq, then two rounds
 * of vshufi32x4: 64 shuffles) turns them into W[0..15], "word t of every
 * lane", and vpshufb swaps each word's bytes (SHA-256 reads big-endian
 * words; a leaf's elements are little-endian 32-bit words, and a byte
 * message loaded as 32-bit words is little-endian too).
 *
 * Three users: Merkle leaves straight from matrix rows with the Montgomery
 * decode in the same registers (x16_leaves), Merkle nodes (x16_pairs), and
 * zk_sha256_blocks given sixteen lanes (x16_blocks: grinding's sixteen
 * nonces at a time). */

#define X16 ZK_AVX512

X16 ZK_INLINE __m512i x16_xor3(__m512i a, __m512i b, __m512i c) { return _mm512_ternarylogic_epi32(a, b, c, 0x96); }

X16 ZK_INLINE __m512i x16_bswap(__m512i x) {
    const __m512i rev = _mm512_broadcast_i32x4(_mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3));
    return _mm512_shuffle_epi8(x, rev); /* vpshufb: bytes reversed in each word */
}

/* W[0..15] from r[l] = lane l's sixteen little-endian words: the transpose,
 * then each word big-endian. */
X16 ZK_INLINE void x16_schedule_in(__m512i w[16], const __m512i r[16]) {
    zk_transpose16_avx512(w, r);
    for (int t = 0; t < 16; t++) w[t] = x16_bswap(w[t]);
}

/* One round: t1 = h + S1(e) + Ch(e, f, g) + wk, t2 = S0(a) + Maj(a, b, c);
 * the names rotate instead of the values (s[i] is the variable that is
 * "a" after i rounds, so no register moves). */
#define X16_ROUND(a, b, c, d, e, f, g, h, wk)                                                                   \
    do {                                                                                                       \
        __m512i t1 = _mm512_add_epi32(                                                                         \
            _mm512_add_epi32(h, x16_xor3(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), _mm512_ror_epi32(e, 25))), \
            _mm512_add_epi32(_mm512_ternarylogic_epi32(e, f, g, 0xCA), wk));                                   \
        __m512i t2 = _mm512_add_epi32(x16_xor3(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), _mm512_ror_epi32(a, 22)), \
                                      _mm512_ternarylogic_epi32(a, b, c, 0xE8));                               \
        d = _mm512_add_epi32(d, t1);                                                                           \
        h = _mm512_add_epi32(t1, t2);                                                                          \
    } while (0)

/* Rounds t..t+7 with wk(i) the W + K of round t + i: after eight rounds the
 * names are back in place. */
#define X16_ROUNDS8(s, wk)                                                     \
    do {                                                                       \
        X16_ROUND(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], wk(0));      \
        X16_ROUND(s[7], s[0], s[1], s[2], s[3], s[4], s[5], s[6], wk(1));      \
        X16_ROUND(s[6], s[7], s[0], s[1], s[2], s[3], s[4], s[5], wk(2));      \
        X16_ROUND(s[5], s[6], s[7], s[0], s[1], s[2], s[3], s[4], wk(3));      \
        X16_ROUND(s[4], s[5], s[6], s[7], s[0], s[1], s[2], s[3], wk(4));      \
        X16_ROUND(s[3], s[4], s[5], s[6], s[7], s[0], s[1], s[2], wk(5));      \
        X16_ROUND(s[2], s[3], s[4], s[5], s[6], s[7], s[0], s[1], wk(6));      \
        X16_ROUND(s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[0], wk(7));      \
    } while (0)

/* One block of sixteen messages: w = W[0..15] (each "word t of every lane"),
 * the schedule extended in place over a ring of 16. */
X16 ZK_INLINE void x16_block(__m512i st[8], __m512i w[16]) {
    __m512i s[8];
    /* K[t] is the add's memory operand (vpaddd m32{1to16}: the broadcast
     * is part of the load).  Seen as the constant it is, GCC builds each
     * broadcast with mov $imm then vpbroadcastd from the integer register,
     * one more port-5 shuffle a round (56 a block) on the two ports the
     * rounds saturate; the empty asm hides the table's contents from it. */
    const uint32_t *k = K;
    __asm__("" : "+r"(k));
    for (int i = 0; i < 8; i++) s[i] = st[i];
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) {
        __m512i wk[8];
        for (int i = 0; i < 8; i++) {
            int t = 8 * g + i;
            if (t >= 16) { /* W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16] */
                __m512i w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
                __m512i s0 = x16_xor3(_mm512_ror_epi32(w15, 7), _mm512_ror_epi32(w15, 18), _mm512_srli_epi32(w15, 3));
                __m512i s1 = x16_xor3(_mm512_ror_epi32(w2, 17), _mm512_ror_epi32(w2, 19), _mm512_srli_epi32(w2, 10));
                w[t & 15] = _mm512_add_epi32(_mm512_add_epi32(w[t & 15], s0), _mm512_add_epi32(w[(t - 7) & 15], s1));
            }
            wk[i] = _mm512_add_epi32(w[t & 15], _mm512_set1_epi32((int)k[t]));
        }
#define WK(i) wk[i]
        X16_ROUNDS8(s, WK);
#undef WK
    }
    for (int i = 0; i < 8; i++) st[i] = _mm512_add_epi32(st[i], s[i]);
}

X16 ZK_INLINE void x16_init(__m512i st[8]) {
    for (int i = 0; i < 8; i++) st[i] = _mm512_set1_epi32((int)IV[i]);
}

/* The sixteen digests, the state words big-endian, by half a 16 x 16
 * transpose (transpose.h's zk_transpose_lanes4_avx512, stages 1 and 2, on the eight state registers):
 * after vpunpck[lh]dq and vpunpck[lh]qdq, u[c] holds in its 128-bit lane j
 * state words 0..3 of lane 4j + c and u[4 + c] words 4..7, so each digest
 * is two 16-byte stores (X16_STORE_DIGEST): 8 byte swaps + 16 shuffles, and
 * for 128-bit lanes 1..3 a vextracti32x4 before the store (GCC does not
 * fold it into the store form): 48 shuffles for sixteen digests, where
 * GCC's vectorisation of a word-by-word copy made ~150. */
X16 ZK_INLINE void x16_digest_words(__m512i u[8], const __m512i st[8]) {
    __m512i b[8];
    for (int i = 0; i < 8; i++) b[i] = x16_bswap(st[i]);
    zk_transpose_lanes4_avx512(u, b, 8);
}

/* Lane l's digest (l a constant after unrolling) from x16_digest_words. */
#define X16_STORE_DIGEST(dst, u, l)                                                                     \
    do {                                                                                                \
        _mm_storeu_si128((__m128i *)(dst), _mm512_extracti32x4_epi32((u)[(l) & 3], (l) >> 2));            \
        _mm_storeu_si128((__m128i *)((dst) + 16), _mm512_extracti32x4_epi32((u)[4 + ((l) & 3)], (l) >> 2)); \
    } while (0)

/* Lane l's digest to out[l]. */
X16 ZK_INLINE void x16_digests(uint8_t *const out[16], const __m512i st[8]) {
    __m512i u[8];
    x16_digest_words(u, st);
#pragma GCC unroll 16
    for (int l = 0; l < 16; l++) X16_STORE_DIGEST(out[l], u, l);
}

/* Montgomery form -> canonical on 16 lanes: x / 2^32 mod p for any
 * x < 2^32, as bb_reduce of the 64-bit value x (bb_field.h): q = x MU mod
 * 2^32 (vpmuludq keeps the low word), qp = q p.  qp's low word is x (q was
 * chosen so that x - qp = 0 mod 2^32, and both are below 2^32), so
 * (x - qp) / 2^32 = -hi exactly, hi = qp's high word, and x / 2^32 = -hi
 * mod p.  hi <= p - 1 (q < 2^32), so the canonical value is 0 where hi = 0
 * and p - hi otherwise (hi = 0 for x = 0, p and 2p, all of them 0 mod p).
 * Eight instructions a register:
 *   even lanes   vpmuludq x MU, vpmuludq by p
 *   odd lanes    vpsrlq 32, then the same two
 *   hi           vpermt2d picks the high words of the even and odd products
 *                into their lanes (one shuffle where vmovshdup + a blend
 *                were two)
 *   p - hi or 0  vptestmd hi -> k, vpsubd {k}{z} (two where a subtraction
 *                from zero, p added and vpminud of the two were three) */
X16 ZK_INLINE __m512i x16_decode(__m512i x) {
    const __m512i P = _mm512_set1_epi32((int)0x78000001u), MU = _mm512_set1_epi32((int)0x88000001u);
    const __m512i high_words = _mm512_set_epi32(31, 15, 29, 13, 27, 11, 25, 9, 23, 7, 21, 5, 19, 3, 17, 1);
    __m512i qp_e = _mm512_mul_epu32(_mm512_mul_epu32(x, MU), P);
    __m512i qp_o = _mm512_mul_epu32(_mm512_mul_epu32(_mm512_srli_epi64(x, 32), MU), P);
    /* lane 2i <- qp_e word 2i + 1, lane 2i + 1 <- qp_o word 2i + 1 (index 16 + 2i + 1) */
    __m512i hi = _mm512_permutex2var_epi32(qp_e, high_words, qp_o);
    return _mm512_maskz_sub_epi32(_mm512_test_epi32_mask(hi, hi), P, hi);
}

/* Elements [at, at + n) of every lane's row (n <= 16; the rest zero,
 * nothing past them read), decoded, as W[0..15]. */
X16 ZK_INLINE void x16_load_row(__m512i w[16], const uint32_t *const rows[16], size_t at, size_t n) {
    __m512i r[16];
    __mmask16 k = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    for (int l = 0; l < 16; l++) /* vmovdqu32 {k}{z}: masked lanes do not fault */
        r[l] = x16_decode(_mm512_maskz_loadu_epi32(k, rows[l] + at));
    x16_schedule_in(w, r);
}

/* W[0..15] of sixteen 64-byte blocks, lane l's at blk[l]. */
X16 ZK_INLINE void x16_load_blocks(__m512i w[16], const uint8_t *const blk[16]) {
    __m512i r[16];
    for (int l = 0; l < 16; l++) r[l] = _mm512_loadu_si512((const void *)blk[l]);
    x16_schedule_in(w, r);
}

/* The Merkle leaves of sixteen rows of `words` elements each: SHA-256 of
 * their canonical values as little-endian 32-bit words.  The padding words
 * are the same in every lane (equal lengths): 0x80 then zeros is the word
 * 0x80000000 after the data, and the bit length fills the last two words of
 * the last block. */
X16 static void x16_leaves(uint8_t *const out[16], const uint32_t *const rows[16], size_t words,
                           const uint8_t *const salts[16]) {
    __m512i st[8], w[16];
    x16_init(st);
    size_t full = words / 16, rem = words % 16;
    uint64_t bits = (uint64_t)words * 32;
    for (size_t b = 0; b < full; b++) {
        x16_load_row(w, rows, 16 * b, 16);
        x16_block(st, w);
    }
    if (salts) {
        /* a salted leaf: the row's last rem words, decoded, then the lane's
         * 16 salt bytes and the padding, laid out per lane in memory (at
         * most 76 bytes of message + 72 of padding) and hashed as one or two
         * blocks; the data blocks above are the unsalted leaf's */
        uint32_t tail[16][48];
        __mmask16 k = (__mmask16)((1u << rem) - 1);
        size_t nb = 0;
        for (int l = 0; l < 16; l++) {
            _mm512_storeu_si512((void *)tail[l], x16_decode(_mm512_maskz_loadu_epi32(k, rows[l] + 16 * full)));
            memcpy(tail[l] + rem, salts[l], ZK_SALT_BYTES);
            nb = zk_sha256_pad((uint8_t *)tail[l], 4 * rem + ZK_SALT_BYTES, 4 * (uint64_t)words + ZK_SALT_BYTES);
        }
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *blk[16];
            for (int l = 0; l < 16; l++) blk[l] = (const uint8_t *)tail[l] + 64 * b;
            x16_load_blocks(w, blk);
            x16_block(st, w);
        }
        x16_digests(out, st);
        return;
    }
    if (rem) x16_load_row(w, rows, 16 * full, rem);
    else
        for (int t = 0; t < 16; t++) w[t] = _mm512_setzero_si512();
    w[rem] = _mm512_set1_epi32((int)0x80000000u);
    if (rem >= 14) { /* no room for the length: it gets a block of its own */
        x16_block(st, w);
        for (int t = 0; t < 16; t++) w[t] = _mm512_setzero_si512();
    }
    w[14] = _mm512_set1_epi32((int)(uint32_t)(bits >> 32));
    w[15] = _mm512_set1_epi32((int)(uint32_t)bits);
    x16_block(st, w);
    x16_digests(out, st);
}

/* Sixteen Merkle nodes: out[32i..] = the compression of IV and the block
 * in[64i .. 64i + 64), its state words big-endian.  The
 * sixteen blocks and digests are at fixed strides, addressed from in and
 * out directly: through arrays of sixteen pointers GCC built the pointers
 * in vector registers and took each out with a shuffle (~100 a call). */
X16 static void x16_pairs(uint8_t *out, const uint8_t *in) {
    __m512i st[8], w[16], r[16], u[8];
    for (int l = 0; l < 16; l++) r[l] = _mm512_loadu_si512((const void *)(in + 64 * l));
    x16_schedule_in(w, r);
    x16_init(st);
    x16_block(st, w); /* the node is this one compression's state */
    x16_digest_words(u, st);
#pragma GCC unroll 16
    for (int l = 0; l < 16; l++) X16_STORE_DIGEST(out + 32 * l, u, l);
}

/* zk_sha256_blocks on sixteen lanes.  The caller's states are per lane;
 * they cross to "word i of every lane" through a small array once a call,
 * not once a block. */
X16 static void x16_blocks(uint32_t (*states)[8], const uint8_t *const *msgs, size_t nblocks) {
    uint32_t words[8][16];
    __m512i st[8], w[16];
    const uint8_t *blk[16];
    for (int l = 0; l < 16; l++)
        for (int i = 0; i < 8; i++) words[i][l] = states[l][i];
    for (int i = 0; i < 8; i++) st[i] = _mm512_loadu_si512((const void *)words[i]);
    for (size_t b = 0; b < nblocks; b++) {
        for (int l = 0; l < 16; l++) blk[l] = msgs[l] + 64 * b;
        x16_load_blocks(w, blk);
        x16_block(st, w);
    }
    for (int i = 0; i < 8; i++) _mm512_storeu_si512((void *)words[i], st[i]);
    for (int l = 0; l < 16; l++)
        for (int i = 0; i < 8; i++) states[l][i] = words[i][l];
}
#endif /* ZK_X86 */

/* ------------------------------------------------------------- public -- */

/* The AVX-512 path is chosen with the ISA (it needs no CPU feature beyond
 * AVX-512F/BW, which zk_set_isa checked); SHA-NI still hashes what comes in
 * fewer than sixteen messages. */
static int use_avx512(void) { return ZK_X86 && zk_active_isa == ZK_ISA_AVX512; }

int zk_sha256_lanes(void) { return use_avx512() ? 16 : use_sha_ni() ? 2 : 1; }

void zk_sha256_leaves_x16(uint8_t *const out[16], const uint32_t *const rows[16], size_t cols,
                          const uint8_t *const salts[16]) {
#if ZK_X86
    x16_leaves(out, rows, cols, salts);
#else
    (void)out, (void)rows, (void)cols, (void)salts;
#endif
}

void zk_sha256_init(uint32_t state[8]) { memcpy(state, IV, sizeof IV); }

void zk_sha256_blocks(uint32_t (*states)[8], const uint8_t *const *msgs, size_t nblocks, int lanes) {
#if ZK_X86
    if (lanes == 16 && use_avx512()) {
        x16_blocks(states, msgs, nblocks);
        return;
    }
    if (use_sha_ni()) {
        for (int l = 0; l < lanes; l += SHANI_LANES)
            blocks_shani(states + l, msgs + l, nblocks, lanes - l < SHANI_LANES ? lanes - l : SHANI_LANES);
        return;
    }
#endif
    for (int l = 0; l < lanes; l++) blocks_scalar(states[l], msgs[l], nblocks);
}

size_t zk_sha256_pad(uint8_t *buf, size_t used, uint64_t msg_len) {
    /* 0x80, then zeros up to 8 bytes short of a block boundary, then the
     * 64-bit bit length (messages are far below 2^61 bytes) */
    size_t end = (used + 1 + 8 + 63) / 64 * 64;
    uint64_t bits = msg_len * 8;
    buf[used] = 0x80;
    memset(buf + used + 1, 0, end - 8 - (used + 1));
    store_be32(buf + end - 8, (uint32_t)(bits >> 32));
    store_be32(buf + end - 4, (uint32_t)bits);
    return end / 64;
}

void zk_sha256_digest(uint8_t out[32], const uint32_t state[8]) {
    for (int i = 0; i < 8; i++) store_be32(out + 4 * i, state[i]);
}

void zk_sha256(uint8_t out[32], const uint8_t *data, size_t len) {
    uint32_t st[1][8];
    uint8_t tail[128];
    size_t full = len / 64, rest = len % 64;
    const uint8_t *msg = data;
    zk_sha256_init(st[0]);
    zk_sha256_blocks(st, &msg, full, 1);
    if (rest) memcpy(tail, data + 64 * full, rest);
    msg = tail;
    zk_sha256_blocks(st, &msg, zk_sha256_pad(tail, rest, len), 1);
    zk_sha256_digest(out, st[0]);
}

void zk_sha256_compress_pairs(uint8_t *out, const uint8_t *in, size_t n) {
#if ZK_X86
    if (use_avx512()) {
        size_t i = 0;
        for (; i + 16 <= n; i += 16) x16_pairs(out + 32 * i, in + 64 * i);
        out += 32 * i, in += 64 * i, n -= i; /* the last n < 16 pairs below */
    }
    if (use_sha_ni()) {
        pairs_shani(out, in, n);
        return;
    }
#endif
    pairs_scalar(out, in, n);
}

__attribute__((constructor)) static void sha256_load(void) { sha_ni_cpu = zk_sha_ni_supported(); }
