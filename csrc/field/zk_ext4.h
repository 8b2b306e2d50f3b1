/*
 * zk_ext4.h — the quartic extension F_p[X]/(X^4 - 11) over BabyBear, over arrays.
 *
 * Verifier challenges and out-of-domain values live here: 4 * 31 = 124 bits of
 * field, enough for 100-bit soundness where the base field (31 bits) is not.
 * X^4 - 11 is irreducible over BabyBear: by Lidl-Niederreiter Thm 3.75,
 * X^4 - w is irreducible iff p = 1 mod 4 and w is a quadratic non-residue
 * (so ord(w) holds all of 2^27 and (p-1)/ord(w) is odd).  Both hold for
 * w = 11; tests/test_extension.py checks them.
 *
 * An element a0 + a1 X + a2 X^2 + a3 X^3 is four consecutive uint32 words
 * (a0 first), each in Montgomery form; an array of n elements is a row-major
 * (n, 4) uint32 array.  Addition and subtraction are the base field's, word by
 * word (zk_fp_add on 4n words), so they have no kernels here.
 */
#ifndef ZK_EXT4_H
#define ZK_EXT4_H

#include "common/zk_common.h"

/* cffi-begin */
#define ZK_EXT4_W 11

/* out[i] = a[i] * b[i] (all extension elements). */
void zk_ext4_mul(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n);
/* out[i] = a[i] * s for one extension element s. */
void zk_ext4_mul_scalar(uint32_t *out, const uint32_t *a, const uint32_t *s, size_t n);
/* out[i] = a[i] * b[i] for a base element b[i]. */
void zk_ext4_mul_base(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n);
/* out[i] = a[i] * s for base elements a[i] and one extension element s. */
void zk_ext4_scale_base(uint32_t *out, const uint32_t *a, const uint32_t *s, size_t n);
/* out[r] = sum over c of m[r][c] * coeffs[c]: a base matrix (rows x cols,
 * row-major) combined with extension coefficients (cols elements). */
void zk_ext4_combine_rows(uint32_t *out, const uint32_t *m, const uint32_t *coeffs, size_t rows,
                          size_t cols);
/* Two combinations of the same matrix in one pass over it:
 * out_a[r] = sum_c m[r][c] coeffs_a[c], out_b[r] = sum_c m[r][c] coeffs_b[c].
 * The vector paths skip each chunk of columns whose coeffs_b are all zero, so
 * a sparse second set costs only the chunks it touches. */
void zk_ext4_combine_rows2(uint32_t *out_a, uint32_t *out_b, const uint32_t *m, const uint32_t *coeffs_a,
                           const uint32_t *coeffs_b, size_t rows, size_t cols);
/* out[c] = sum over r of w[r] * m[r][c]: the rows of a base matrix (rows x
 * cols, row-major) summed with extension weights (rows elements), out has
 * cols elements; read as the matrix lies (no transpose).  Returns 0, or -2
 * if scratch memory could not be allocated (then `out` is unspecified). */
int zk_ext4_sum_rows(uint32_t *out, const uint32_t *m, const uint32_t *w, size_t rows, size_t cols);
/* Two weightings of the same matrix in one pass over it:
 * out_a[c] = sum_r w_a[r] m[r][c], out_b[c] = sum_r w_b[r] m[r][c], the
 * second only for the columns c with cols_b[c] != 0 (every column when
 * cols_b is NULL; out_b[c] = 0 for the others), which alone cost its
 * products. */
int zk_ext4_sum_rows2(uint32_t *out_a, uint32_t *out_b, const uint32_t *m, const uint32_t *w_a,
                      const uint32_t *w_b, const uint8_t *cols_b, size_t rows, size_t cols);
/* Batch inverse.  Returns -1; or the index of the first zero element, or -2
 * if scratch memory could not be allocated (then `out` is unspecified).
 * `out` must not overlap `a`. */
int64_t zk_ext4_inv(uint32_t *out, const uint32_t *a, size_t n);
/* f[i] += (num[i] - c) / (x[i] - z): one DEEP quotient term added in place,
 * for base points x[i] and extension constants c, z (one element each).
 * Returns -1; or the first i with x[i] = z (f is then unspecified), or -2
 * if scratch memory could not be allocated. */
int64_t zk_ext4_add_quotient(uint32_t *f, const uint32_t *num, const uint32_t *c,
                             const uint32_t *x, const uint32_t *z, size_t n);
/* cffi-end */

#endif
