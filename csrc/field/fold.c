/*
 * fold.c — zk_fold_rows (zk_fold.h): the coefficient matrix folded onto m
 * rows at several factors, reading each coefficient once.
 *
 * Folding by Horner over the blocks of m rows (multiply the m-row result by
 * c, add the next block) walks the result twice per block; for the zk
 * quotient's D'' (m = 1024 rows of ~640 columns, 33 blocks, two factors)
 * that was 132 passes over a 2.6 MB array.  Here output row i is one
 * weighted sum of the rows i, i + m, i + 2m, ... with the weights c^j
 * (precomputed, Montgomery), the factors' sums in one pass over those rows
 * (zk_fp_sum_rows_add: 64-bit lazy sums, one reduction a value): the
 * Montgomery form of sum_j coeff_j c^j, the value Horner gives, exactly.
 */
#include <stdlib.h>
#include <string.h>

#include "bb_field.h"
#include "zk_field.h"
#include "zk_fold.h"

int zk_fold_rows(uint32_t *const *outs, const uint32_t *coeffs, size_t k, size_t cols, size_t m,
                 const uint32_t *factors, size_t n_factors) {
    if (!m || !n_factors) return 0;
    size_t blocks = (k + m - 1) / m;
    uint32_t *pw = malloc((n_factors * blocks + 1) * sizeof *pw);   /* pw[f * blocks + j] = factors[f]^j */
    if (!pw) return -2;
    for (size_t f = 0; f < n_factors; f++) {
        uint32_t p = BB_ONE;
        for (size_t j = 0; j < blocks; j++) pw[f * blocks + j] = p, p = bb_mul(p, factors[f]);
        memset(outs[f], 0, m * cols * sizeof *outs[f]);
    }
    for (size_t i = 0; i < m && i < k; i++) {
        size_t rows = (k - 1 - i) / m + 1;               /* blocks with a row i + j m < k */
        for (size_t f = 0; f < n_factors; f += ZK_FP_MAX_WEIGHT_SETS) {
            size_t sets = n_factors - f < ZK_FP_MAX_WEIGHT_SETS ? n_factors - f : ZK_FP_MAX_WEIGHT_SETS;
            uint32_t *o[ZK_FP_MAX_WEIGHT_SETS];
            const uint32_t *w[ZK_FP_MAX_WEIGHT_SETS];
            for (size_t s = 0; s < sets; s++) o[s] = outs[f + s] + i * cols, w[s] = pw + (f + s) * blocks;
            zk_fp_sum_rows_add(o, w, sets, coeffs + i * cols, rows, cols, m * cols);
        }
    }
    free(pw);
    return 0;
}
