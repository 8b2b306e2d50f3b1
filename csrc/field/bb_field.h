/*
 * bb_field.h — BabyBear arithmetic primitives (internal, inline), one element
 * (scalar), 8 lanes (AVX2) or 16 lanes (AVX-512) at a time.
 *
 *   p = 15 * 2^27 + 1 = 0x78000001 = 2013265921
 *
 * Representation: Montgomery form with R = 2^32.  An element x is stored as
 * the uint32 xR mod p, always in [0, p).  Add and sub do not care; a product
 * of two stored values is (xR)(yR) = xyR^2 and one Montgomery reduction
 * (division by R) brings it back to xyR.  Conversions happen only at the
 * edges: zk_fp_encode / zk_fp_decode.
 *
 * Montgomery reduction of x < p * 2^32 (the "signed" variant):
 *   q  = (x mod 2^32) * MU mod 2^32,   MU = p^-1 mod 2^32
 *   qp = q * p                          (so qp = x mod 2^32: the low halves cancel)
 *   t  = x_hi - qp_hi  in (-p, p),      t = (x - qp) / 2^32 = x / R mod p
 *   result = t < 0 ? t + p : t
 * Vector code computes t with wrapping 32-bit arithmetic and picks the
 * correct of {t, t + p} with one unsigned min: exactly one of the two is
 * below p, and the other is >= 2^32 - p > p (it wrapped or did not).
 * The same min trick serves add (min(s, s - p)) and sub (min(d, d + p)),
 * valid because 2p < 2^32.
 */
#ifndef BB_FIELD_H
#define BB_FIELD_H

#include "common/zk_common.h"

#define BB_P 0x78000001u
#define BB_MU 0x88000001u      /* p^-1 mod 2^32 */
#define BB_ONE 0x0ffffffeu     /* R mod p: 1 in Montgomery form */
#define BB_R2 0x45dddde3u      /* R^2 mod p: encode(x) = mont_mul(x, R^2) */
#define BB_TWO_ADICITY 27
#define BB_GENERATOR 31u       /* generates the multiplicative group (canonical) */

/* ---------------------------------------------------------------- scalar -- */

ZK_INLINE uint32_t bb_reduce(uint64_t x) { /* x < p * 2^32 */
    uint32_t q = (uint32_t)x * BB_MU;
    uint64_t qp = (uint64_t)q * BB_P;
    uint32_t xh = (uint32_t)(x >> 32), qh = (uint32_t)(qp >> 32);
    uint32_t t = xh - qh;
    return xh < qh ? t + BB_P : t;
}

/* Reduction of any x < 2^64 (sums of up to four products).  Here
 * x_hi < 2^32 < 2.14p, so t = x_hi - qp_hi lies in (-p, 2.14p): up to two
 * subtractions after the wrap fix. */
ZK_INLINE uint32_t bb_reduce_wide(uint64_t x) {
    uint32_t q = (uint32_t)x * BB_MU;
    uint64_t qp = (uint64_t)q * BB_P;
    int64_t t = (int64_t)(x >> 32) - (int64_t)(qp >> 32);
    if (t < 0) t += BB_P;
    if (t >= BB_P) t -= BB_P;
    if (t >= BB_P) t -= BB_P;
    return (uint32_t)t;
}

ZK_INLINE uint32_t bb_add(uint32_t a, uint32_t b) {
    uint32_t s = a + b;
    return s >= BB_P ? s - BB_P : s;
}

ZK_INLINE uint32_t bb_sub(uint32_t a, uint32_t b) {
    uint32_t d = a - b;
    return a < b ? d + BB_P : d;
}

ZK_INLINE uint32_t bb_neg(uint32_t a) { return a ? BB_P - a : 0; }

ZK_INLINE uint32_t bb_mul(uint32_t a, uint32_t b) { return bb_reduce((uint64_t)a * b); }

/* Multiply by a small integer k (not an element): kxR = (kx)R, so the
 * representation does not matter.  Used for the extension's W = 11. */
ZK_INLINE uint32_t bb_mul_small(uint32_t a, uint32_t k) {
    return (uint32_t)(((uint64_t)a * k) % BB_P);
}

ZK_INLINE uint32_t bb_encode(uint32_t x) { return bb_mul(x, BB_R2); }
ZK_INLINE uint32_t bb_decode(uint32_t x) { return bb_reduce(x); }

ZK_INLINE uint32_t bb_pow(uint32_t a, uint64_t e) {
    uint32_t r = BB_ONE;
    while (e) {
        if (e & 1) r = bb_mul(r, a);
        a = bb_mul(a, a);
        e >>= 1;
    }
    return r;
}

/* a^(p-2); the caller checks a != 0. */
ZK_INLINE uint32_t bb_inv(uint32_t a) { return bb_pow(a, BB_P - 2); }

#if ZK_X86
/* ------------------------------------------------------------------ AVX2 -- */

/* Copy each odd 32-bit lane onto the even lane below it: the high half of a
 * 64-bit product lands where vpmuludq reads its next input.  vmovshdup runs
 * on the shuffle port, leaving the multiplier free. */
ZK_AVX2 ZK_INLINE __m256i bb_movehdup_avx2(__m256i x) {
    return _mm256_castps_si256(_mm256_movehdup_ps(_mm256_castsi256_ps(x)));
}

ZK_AVX2 ZK_INLINE __m256i bb_add_avx2(__m256i a, __m256i b) {
    const __m256i P = _mm256_set1_epi32((int)BB_P);
    __m256i s = _mm256_add_epi32(a, b);                 /* vpaddd */
    return _mm256_min_epu32(s, _mm256_sub_epi32(s, P)); /* vpsubd, vpminud */
}

ZK_AVX2 ZK_INLINE __m256i bb_sub_avx2(__m256i a, __m256i b) {
    const __m256i P = _mm256_set1_epi32((int)BB_P);
    __m256i d = _mm256_sub_epi32(a, b);
    return _mm256_min_epu32(d, _mm256_add_epi32(d, P));
}

/* 8 Montgomery products: 6 vpmuludq (even lanes, odd lanes; x, q, qp),
 * 4 vmovshdup, 2 vpblendd, vpsubd, vpaddd, vpminud. */
ZK_AVX2 ZK_INLINE __m256i bb_mul_avx2(__m256i a, __m256i b) {
    const __m256i P = _mm256_set1_epi32((int)BB_P);
    const __m256i MU = _mm256_set1_epi32((int)BB_MU);
    __m256i x_evn = _mm256_mul_epu32(a, b);
    __m256i x_odd = _mm256_mul_epu32(bb_movehdup_avx2(a), bb_movehdup_avx2(b));
    __m256i q_evn = _mm256_mul_epu32(x_evn, MU);   /* only the low 32 bits matter */
    __m256i q_odd = _mm256_mul_epu32(x_odd, MU);
    __m256i qp_evn = _mm256_mul_epu32(q_evn, P);
    __m256i qp_odd = _mm256_mul_epu32(q_odd, P);
    /* high halves: even products' live in odd lanes, moved down; odd ones stay */
    __m256i xh = _mm256_blend_epi32(bb_movehdup_avx2(x_evn), x_odd, 0xAA);
    __m256i qh = _mm256_blend_epi32(bb_movehdup_avx2(qp_evn), qp_odd, 0xAA);
    __m256i t = _mm256_sub_epi32(xh, qh);
    return _mm256_min_epu32(t, _mm256_add_epi32(t, P));
}

/* ---- lazy sums in 64-bit lanes (AVX2) ----
 * vpmuludq gives the full 64-bit product of the even 32-bit lanes.  Products
 * of two elements are < p^2 < 2^62, so sums of up to four (< 4p^2) still fit
 * a 64-bit lane, and any sum below 2p * 2^32 (> 4p^2, since 2p < 2^32) can be
 * reduced with one fold and one Montgomery reduction. */

/* Fold x < 2p * 2^32 to x' < p * 2^32 with x' = x mod p * 2^32, so x' = x
 * mod p and the low words agree.  Subtracting p * 2^32 only touches the high
 * word, so it is a 32-bit question: hi' = min(hi, hi - p) (vpsubq, vpminud;
 * in the even lanes the two candidates are equal).  If hi >= p, hi - p < hi;
 * if hi < p, hi - p wraps to hi + 2^32 - p > hi. */
ZK_AVX2 ZK_INLINE __m256i bb_fold64_avx2(__m256i x) {
    const __m256i PH = _mm256_set1_epi64x((long long)((uint64_t)BB_P << 32));
    return _mm256_min_epu32(x, _mm256_sub_epi64(x, PH));
}

/* Montgomery reduction of 64-bit lanes x < p * 2^32 (e.g. after a fold):
 * the result x / R mod p sits in the odd (high) 32-bit lane of each 64-bit
 * lane.  2 vpmuludq, vpsubd, vpaddd, vpminud; even lanes are 0 (the low
 * halves of x and qp cancel). */
ZK_AVX2 ZK_INLINE __m256i bb_reduce64_avx2(__m256i x) {
    const __m256i P = _mm256_set1_epi32((int)BB_P);
    const __m256i MU = _mm256_set1_epi32((int)BB_MU);
    __m256i qp = _mm256_mul_epu32(_mm256_mul_epu32(x, MU), P);
    __m256i t = _mm256_sub_epi32(x, qp);
    return _mm256_min_epu32(t, _mm256_add_epi32(t, P));
}

/* 8 reduced lanes from two vectors of 64-bit sums (each lane < 2p * 2^32):
 * x_evn holds the sums for 32-bit lanes 0, 2, 4, 6 and x_odd those for
 * 1, 3, 5, 7.  Fold, then the reduction of bb_mul_avx2 from its products on. */
ZK_AVX2 ZK_INLINE __m256i bb_reduce_wide_avx2(__m256i x_evn, __m256i x_odd) {
    const __m256i P = _mm256_set1_epi32((int)BB_P);
    const __m256i MU = _mm256_set1_epi32((int)BB_MU);
    x_evn = bb_fold64_avx2(x_evn);
    x_odd = bb_fold64_avx2(x_odd);
    __m256i qp_evn = _mm256_mul_epu32(_mm256_mul_epu32(x_evn, MU), P);
    __m256i qp_odd = _mm256_mul_epu32(_mm256_mul_epu32(x_odd, MU), P);
    __m256i xh = _mm256_blend_epi32(bb_movehdup_avx2(x_evn), x_odd, 0xAA);
    __m256i qh = _mm256_blend_epi32(bb_movehdup_avx2(qp_evn), qp_odd, 0xAA);
    __m256i t = _mm256_sub_epi32(xh, qh);
    return _mm256_min_epu32(t, _mm256_add_epi32(t, P));
}

/* --------------------------------------------------------------- AVX-512 -- */

ZK_AVX512 ZK_INLINE __m512i bb_movehdup_avx512(__m512i x) {
    return _mm512_castps_si512(_mm512_movehdup_ps(_mm512_castsi512_ps(x)));
}

ZK_AVX512 ZK_INLINE __m512i bb_add_avx512(__m512i a, __m512i b) {
    const __m512i P = _mm512_set1_epi32((int)BB_P);
    __m512i s = _mm512_add_epi32(a, b);
    return _mm512_min_epu32(s, _mm512_sub_epi32(s, P));
}

ZK_AVX512 ZK_INLINE __m512i bb_sub_avx512(__m512i a, __m512i b) {
    const __m512i P = _mm512_set1_epi32((int)BB_P);
    __m512i d = _mm512_sub_epi32(a, b);
    return _mm512_min_epu32(d, _mm512_add_epi32(d, P));
}

/* Same schedule as AVX2 on 16 lanes; the blend is a masked move (k = 0xAAAA
 * selects the odd lanes). */
ZK_AVX512 ZK_INLINE __m512i bb_mul_avx512(__m512i a, __m512i b) {
    const __m512i P = _mm512_set1_epi32((int)BB_P);
    const __m512i MU = _mm512_set1_epi32((int)BB_MU);
    __m512i x_evn = _mm512_mul_epu32(a, b);
    __m512i x_odd = _mm512_mul_epu32(bb_movehdup_avx512(a), bb_movehdup_avx512(b));
    __m512i q_evn = _mm512_mul_epu32(x_evn, MU);
    __m512i q_odd = _mm512_mul_epu32(x_odd, MU);
    __m512i qp_evn = _mm512_mul_epu32(q_evn, P);
    __m512i qp_odd = _mm512_mul_epu32(q_odd, P);
    __m512i xh = _mm512_mask_blend_epi32(0xAAAA, bb_movehdup_avx512(x_evn), x_odd);
    __m512i qh = _mm512_mask_blend_epi32(0xAAAA, bb_movehdup_avx512(qp_evn), qp_odd);
    __m512i t = _mm512_sub_epi32(xh, qh);
    return _mm512_min_epu32(t, _mm512_add_epi32(t, P));
}
/* ---- lazy sums in 64-bit lanes (AVX-512): as the AVX2 versions above ---- */

ZK_AVX512 ZK_INLINE __m512i bb_fold64_avx512(__m512i x) {
    const __m512i PH = _mm512_set1_epi64((long long)((uint64_t)BB_P << 32));
    return _mm512_min_epu32(x, _mm512_sub_epi64(x, PH));
}

ZK_AVX512 ZK_INLINE __m512i bb_reduce64_avx512(__m512i x) {
    const __m512i P = _mm512_set1_epi32((int)BB_P);
    const __m512i MU = _mm512_set1_epi32((int)BB_MU);
    __m512i qp = _mm512_mul_epu32(_mm512_mul_epu32(x, MU), P);
    __m512i t = _mm512_sub_epi32(x, qp);
    return _mm512_min_epu32(t, _mm512_add_epi32(t, P));
}

ZK_AVX512 ZK_INLINE __m512i bb_reduce_wide_avx512(__m512i x_evn, __m512i x_odd) {
    const __m512i P = _mm512_set1_epi32((int)BB_P);
    const __m512i MU = _mm512_set1_epi32((int)BB_MU);
    x_evn = bb_fold64_avx512(x_evn);
    x_odd = bb_fold64_avx512(x_odd);
    __m512i qp_evn = _mm512_mul_epu32(_mm512_mul_epu32(x_evn, MU), P);
    __m512i qp_odd = _mm512_mul_epu32(_mm512_mul_epu32(x_odd, MU), P);
    __m512i xh = _mm512_mask_blend_epi32(0xAAAA, bb_movehdup_avx512(x_evn), x_odd);
    __m512i qh = _mm512_mask_blend_epi32(0xAAAA, bb_movehdup_avx512(qp_evn), qp_odd);
    __m512i t = _mm512_sub_epi32(xh, qh);
    return _mm512_min_epu32(t, _mm512_add_epi32(t, P));
}
#endif /* ZK_X86 */

#endif /* BB_FIELD_H */
