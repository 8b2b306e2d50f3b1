/*
 * ext4.c — quartic extension kernels, F_p[X]/(X^4 - W), W = 11.
 *
 * Products are accumulated lazily: a sum of four base products is below
 * 4p^2 < 2^64, so each output coefficient costs one wide Montgomery
 * reduction instead of four.  W is folded into the multiplicand first
 * (b' = W b, a plain integer scaling that commutes with Montgomery form), so
 * every coefficient is a sum of exactly four products:
 *
 *   c0 = a0 b0  + a1 b3' + a2 b2' + a3 b1'
 *   c1 = a0 b1  + a1 b0  + a2 b3' + a3 b2'
 *   c2 = a0 b2  + a1 b1  + a2 b0  + a3 b3'
 *   c3 = a0 b3  + a1 b2  + a2 b1  + a3 b0
 *
 * These kernels are portable C (no per-ISA bodies): the prover spends its
 * time in NTTs and hashing, and extension work is a small share of it.
 */
#include <stdlib.h>

#include "bb_field.h"
#include "zk_ext4.h"
#include "zk_field.h"

#define W ZK_EXT4_W

static inline void ext4_mul1(uint32_t c[4], const uint32_t a[4], const uint32_t b[4]) {
    uint64_t b1w = bb_mul_small(b[1], W), b2w = bb_mul_small(b[2], W), b3w = bb_mul_small(b[3], W);
    uint64_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    uint32_t c0 = bb_reduce_wide(a0 * b[0] + a1 * b3w + a2 * b2w + a3 * b1w);
    uint32_t c1 = bb_reduce_wide(a0 * b[1] + a1 * b[0] + a2 * b3w + a3 * b2w);
    uint32_t c2 = bb_reduce_wide(a0 * b[2] + a1 * b[1] + a2 * b[0] + a3 * b3w);
    uint32_t c3 = bb_reduce_wide(a0 * b[3] + a1 * b[2] + a2 * b[1] + a3 * b[0]);
    c[0] = c0, c[1] = c1, c[2] = c2, c[3] = c3; /* written last: c may alias a or b */
}

void zk_ext4_mul(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) ext4_mul1(out + 4 * i, a + 4 * i, b + 4 * i);
}

void zk_ext4_mul_base(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n) {
    /* a is 4n words and b is n words: four word products share one b. */
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) out[4 * i + k] = bb_mul(a[4 * i + k], b[i]);
}

void zk_ext4_scale_base(uint32_t *out, const uint32_t *a, const uint32_t *s, size_t n) {
    uint32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
    for (size_t i = 0; i < n; i++) {
        uint32_t x = a[i];
        out[4 * i] = bb_mul(x, s0), out[4 * i + 1] = bb_mul(x, s1);
        out[4 * i + 2] = bb_mul(x, s2), out[4 * i + 3] = bb_mul(x, s3);
    }
}

/* Four products per wide reduction: columns go in groups of four, each group
 * reduced once and added mod p to the running coefficient. */
void zk_ext4_combine_rows(uint32_t *out, const uint32_t *m, const uint32_t *coeffs, size_t rows,
                          size_t cols) {
    for (size_t r = 0; r < rows; r++) {
        const uint32_t *row = m + r * cols;
        uint32_t acc[4] = {0, 0, 0, 0};
        for (size_t c0 = 0; c0 < cols; c0 += 4) {
            size_t c1 = c0 + 4 < cols ? c0 + 4 : cols;
            for (int k = 0; k < 4; k++) {
                uint64_t sum = 0;
                for (size_t c = c0; c < c1; c++) sum += (uint64_t)row[c] * coeffs[4 * c + k];
                acc[k] = bb_add(acc[k], bb_reduce_wide(sum));
            }
        }
        for (int k = 0; k < 4; k++) out[4 * r + k] = acc[k];
    }
}

/* Inverse through the norm.  With f(X) = a0 + a1 X + a2 X^2 + a3 X^3,
 * f(X) f(-X) = (a0 + a2 X^2)^2 - X^2 (a1 + a3 X^2)^2 = b0 + b2 X^2, where
 *   b0 = a0^2 + W a2^2 - 2W a1 a3,   b2 = 2 a0 a2 - a1^2 - W a3^2,
 * and (b0 + b2 X^2)(b0 - b2 X^2) = b0^2 - W b2^2 = N, a base element that is
 * zero only for f = 0 (the extension is a field).  So
 *   1/f = f(-X) (b0 - b2 X^2) / N,
 * and the n norms are inverted together by one base batch inversion. */
int64_t zk_ext4_inv(uint32_t *out, const uint32_t *a, size_t n) {
    uint32_t *norm = malloc(2 * n * sizeof *norm + 1);
    if (!norm) return -2;
    uint32_t *norm_inv = norm + n;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *f = a + 4 * i;
        uint32_t a0 = f[0], a1 = f[1], a2 = f[2], a3 = f[3];
        uint32_t b0 = bb_sub(bb_add(bb_mul(a0, a0), bb_mul_small(bb_mul(a2, a2), W)),
                             bb_mul_small(bb_mul(a1, a3), 2 * W));
        uint32_t b2 = bb_sub(bb_sub(bb_mul_small(bb_mul(a0, a2), 2), bb_mul(a1, a1)),
                             bb_mul_small(bb_mul(a3, a3), W));
        norm[i] = bb_sub(bb_mul(b0, b0), bb_mul_small(bb_mul(b2, b2), W));
        /* keep b0, b2 in out for the second pass */
        out[4 * i] = b0, out[4 * i + 1] = b2;
    }
    int64_t zero = zk_fp_inv(norm_inv, norm, n);
    if (zero >= 0) {
        free(norm);
        return zero;
    }
    for (size_t i = 0; i < n; i++) {
        const uint32_t *f = a + 4 * i;
        uint32_t b0 = out[4 * i], b2 = out[4 * i + 1], ni = norm_inv[i];
        /* f(-X) (b0 - b2 X^2), coefficient by coefficient (X^4 = W):
         *   X^0: a0 b0 - W a2 b2      X^1: W a3 b2 - a1 b0
         *   X^2: a2 b0 - a0 b2        X^3: a1 b2 - a3 b0 */
        uint32_t g0 = bb_sub(bb_mul(f[0], b0), bb_mul_small(bb_mul(f[2], b2), W));
        uint32_t g1 = bb_sub(bb_mul_small(bb_mul(f[3], b2), W), bb_mul(f[1], b0));
        uint32_t g2 = bb_sub(bb_mul(f[2], b0), bb_mul(f[0], b2));
        uint32_t g3 = bb_sub(bb_mul(f[1], b2), bb_mul(f[3], b0));
        out[4 * i] = bb_mul(g0, ni), out[4 * i + 1] = bb_mul(g1, ni);
        out[4 * i + 2] = bb_mul(g2, ni), out[4 * i + 3] = bb_mul(g3, ni);
    }
    free(norm);
    return -1;
}
