/*
 * transpose.h — a square block of 32-bit words transposed in vector
 * registers: 16 x 16 in zmm registers (AVX-512), 8 x 8 in ymm (AVX2).
 *
 *   out[i] lane l = in[l] lane i
 *
 * Kernels that move between a row-major matrix (one row's words side by
 * side) and lane-major vectors (one column's words of VEC_LANES rows side by
 * side) use it: the SHA-256 message schedule of sixteen leaves, the
 * constraint VM's gather of adjacent columns, the Poseidon2 witness's rows.
 * vec_avx2.h and vec_avx512.h name it VEC_TRANSPOSE for a vec_widths.h body.
 *
 * Intended instructions, AVX-512 (64 shuffles for 256 words):
 *   1. vpunpck[lh]dq of rows 2i, 2i+1: per 128-bit lane k, (r2i[4k+c],
 *      r2i+1[4k+c], r2i[4k+c+1], r2i+1[4k+c+1]) for c = 0, 2;
 *   2. vpunpck[lh]qdq of those in pairs: u[4i + c] holds, in 128-bit lane
 *      k, word 4k + c of rows 4i .. 4i + 3;
 *   3. two rounds of vshufi32x4 transpose the 4 x 4 grid of 128-bit lanes:
 *      out[4k + c] gathers 128-bit lane k of u[c], u[4 + c], u[8 + c],
 *      u[12 + c], i.e. word 4k + c of rows 0 .. 15 in order.
 * AVX2 is the same with 8 rows: two unpack stages, then vperm2i128 swaps
 * the 128-bit halves (24 shuffles for 64 words).
 */
#ifndef ZK_TRANSPOSE_H
#define ZK_TRANSPOSE_H

#include "zk_common.h"

#if ZK_X86
#include <immintrin.h>

/* Stages 1 and 2 on `n` rows (n a multiple of 4, a constant after
 * inlining): u[4i + c] holds, in 128-bit lane k, word 4k + c of rows
 * 4i .. 4i + 3.  The full transpose below goes on to stage 3; the SHA-256
 * kernel stores its digests from here (x16_digest_words). */
ZK_AVX512 ZK_INLINE void zk_transpose_lanes4_avx512(__m512i *u, const __m512i *in, int n) {
    __m512i t[16];
    for (int i = 0; i < n / 2; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(in[2 * i], in[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(in[2 * i], in[2 * i + 1]);
    }
    for (int i = 0; i < n / 4; i++) {
        u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
}

ZK_AVX512 ZK_INLINE void zk_transpose16_avx512(__m512i out[16], const __m512i in[16]) {
    __m512i u[16];
    zk_transpose_lanes4_avx512(u, in, 16);
    for (int c = 0; c < 4; c++) {
        /* 0x44 / 0xEE: 128-bit lanes 0, 1 / 2, 3 of each source; then 0x88 /
         * 0xDD: the even / odd 128-bit lanes of those pairs */
        __m512i a01lo = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44), a01hi = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
        __m512i a23lo = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44);
        __m512i a23hi = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
        out[c] = _mm512_shuffle_i32x4(a01lo, a23lo, 0x88);
        out[4 + c] = _mm512_shuffle_i32x4(a01lo, a23lo, 0xDD);
        out[8 + c] = _mm512_shuffle_i32x4(a01hi, a23hi, 0x88);
        out[12 + c] = _mm512_shuffle_i32x4(a01hi, a23hi, 0xDD);
    }
}

ZK_AVX2 ZK_INLINE void zk_transpose8_avx2(__m256i out[8], const __m256i in[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(in[2 * i], in[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(in[2 * i], in[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int c = 0; c < 4; c++) { /* u[c]: rows 0-3, u[4 + c]: rows 4-7, word c of each 128-bit half */
        out[c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x20);
        out[4 + c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x31);
    }
}
#endif

#endif
