/*
 * zk_field.h — BabyBear array kernels (public interface).
 *
 * Every array holds elements in Montgomery form (see bb_field.h); values
 * enter through zk_fp_encode and leave through zk_fp_decode.  Inputs must be
 * reduced (< p): kernels never read out of bounds on bad values, but results
 * of unreduced inputs are unspecified.  `out` may alias an input unless a
 * function says otherwise.  Each call walks whole arrays: Python crosses the
 * cffi boundary once per array, with the GIL released.
 */
#ifndef ZK_FIELD_H
#define ZK_FIELD_H

#include "common/zk_common.h"

/* cffi-begin */
#define ZK_FP_P 2013265921
#define ZK_FP_ONE_MONT 268435454

void zk_fp_add(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n);
void zk_fp_sub(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n);
void zk_fp_mul(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n);
void zk_fp_neg(uint32_t *out, const uint32_t *a, size_t n);
/* out[i] = a[i] * s, for one element s (Montgomery form). */
void zk_fp_mul_scalar(uint32_t *out, const uint32_t *a, uint32_t s, size_t n);
/* out[i] = a[i] ^ e, for one exponent e (an integer, not an element). */
void zk_fp_pow(uint32_t *out, const uint32_t *a, uint64_t e, size_t n);
/* Batch inverse (Montgomery's trick, run in independent lanes).  Returns -1,
 * or the index of the first zero (then `out` is unspecified).  `out` must not
 * overlap `a`. */
int64_t zk_fp_inv(uint32_t *out, const uint32_t *a, size_t n);
/* Canonical integers -> Montgomery form.  Returns -1, or the index of the
 * first input >= p (then `out` is unspecified). */
int64_t zk_fp_encode(uint32_t *out, const uint32_t *in, size_t n);
/* Montgomery form -> canonical integers in [0, p). */
void zk_fp_decode(uint32_t *out, const uint32_t *in, size_t n);
/* Rejection sampling (the zk keys' expansion, docs/ZK_KEYS.md): the words
 * w < 2p of words[0 .. n), in order, each reduced mod p, as canonical
 * integers into out[0 .. k); returns k.  Every residue r has exactly the
 * two accepted preimages r and r + p, so uniform words give exactly
 * uniform elements.  `out` (room for n) may be `words`. */
size_t zk_fp_uniform_from_words(uint32_t *out, const uint32_t *words, size_t n);
/* cffi-end */

/* out[i] = a[i] * s + b[i] (out may be b): one pass where a multiply and an
 * add would make two (the masked LDE's small-coset folds, ntt.c). */
void zk_fp_mul_scalar_add(uint32_t *out, const uint32_t *a, uint32_t s, const uint32_t *b, size_t n);
/* outs[s][c] += sum over r of ws[s][r] * m[r * stride + c], c < cols, for
 * each of `sets` weightings of `rows` rows of a base matrix (`stride` words
 * apart), up to ZK_FP_MAX_WEIGHT_SETS of them in one pass over the rows
 * (more take a pass each that many; none adds nothing): one reduction a
 * sum where a multiply-add a row would reduce every product (the masked
 * LDE's small-coset folds, ntt.c; zk_fold_rows, fold.c). */
#define ZK_FP_MAX_WEIGHT_SETS 4
void zk_fp_sum_rows_add(uint32_t *const *outs, const uint32_t *const *ws, size_t sets, const uint32_t *m,
                        size_t rows, size_t cols, size_t stride);

#endif
