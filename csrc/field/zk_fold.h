/*
 * zk_fold.h — polynomials reduced modulo X^m - c, for several c in one pass
 * over their coefficients (prover/ntt.py's coset_values_at: a polynomial's
 * values on a coset s <w_m> are those of its remainder modulo X^m - s^m).
 */
#ifndef ZK_FOLD_H
#define ZK_FOLD_H

#include "common/zk_common.h"

/* cffi-begin */
/* For f < n_factors: outs[f][i * cols + col] = sum_j factors[f]^j *
 * coeffs[(i + j m) * cols + col] over i + j m < k, for i < m and col < cols:
 * the row-major (k x cols) coefficient matrix folded onto m rows at each
 * factor (Montgomery form in and out).  Each output is (m x cols) and must
 * not overlap `coeffs` or another output.  Returns 0, or -2 if scratch
 * memory could not be allocated. */
int zk_fold_rows(uint32_t *const *outs, const uint32_t *coeffs, size_t k, size_t cols, size_t m,
                 const uint32_t *factors, size_t n_factors);
/* cffi-end */

#endif
