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

/* -1, or the index of the first of n words that is not canonical (>= p).
 * A branch-free OR over the whole input first (the compiler vectorises it),
 * so canonical input, the common case, costs one pass. */
ZK_INLINE int64_t bb_first_unreduced(const uint32_t *a, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) bad |= a[i] >= BB_P;
    if (bad)
        for (size_t i = 0; i < n; i++)
            if (a[i] >= BB_P) return (int64_t)i;
    return -1;
}

/* ------------------------------------------------------- AVX2, AVX-512 -- */

/* bb_add_avx2 ... bb_reduce_wide_avx512: the same operations on 8 and 16
 * lanes, one source for both widths (bb_field_vec.inc). */
#define VEC_BODY "field/bb_field_vec.inc"
#include "common/vec_widths.h"

#endif /* BB_FIELD_H */
