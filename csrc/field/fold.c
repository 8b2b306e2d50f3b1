/*
 * fold.c — zk_fold_rows (zk_fold.h): the coefficient matrix folded onto m
 * rows at several factors, reading each coefficient once.
 *
 * Folding by Horner over the blocks of m rows (multiply the m-row result by
 * c, add the next block) walks the result twice per block; for the zk
 * quotient's D'' (m = 1024 rows of ~640 columns, 33 blocks, two factors)
 * that was 132 passes over a 2.6 MB array.  Here each output value is one
 * lazy sum: the products coeff * c^j (c^j precomputed, Montgomery) are
 * added in 64-bit lanes, folded below p 2^32 after every second product
 * (x < p 2^32 and two products < 2p^2 keep the sum below 2p 2^32 < 2^64,
 * as constraint_vm's lazy sums argue), and reduced once: the Montgomery
 * form of sum_j coeff_j c^j, the value Horner gives, exactly.  A vector of
 * VEC_LANES columns is summed in two halves (even lanes and odd lanes,
 * vpmuludq on the words and on the words moved down by vmovshdup) kept in
 * registers through every block, and bb_reduce_wide gives the reduced
 * words back in column order.
 */
#include <stdlib.h>

#include "bb_field.h"
#include "zk_fold.h"

/* Columns c0 .. cols-1 of output row i for every factor: one 64-bit lazy
 * sum a value, as the vector bodies' lanes. */
static void fold_columns_from(uint32_t *const *outs, const uint32_t *coeffs, size_t k, size_t cols, size_t m,
                              const uint32_t *pw, size_t blocks, size_t n_factors, size_t i, size_t c0) {
    const uint64_t ph = (uint64_t)BB_P << 32;
    for (size_t f = 0; f < n_factors; f++)
        for (size_t c = c0; c < cols; c++) {
            uint64_t x = 0;
            for (size_t j = 0; j < blocks && i + j * m < k; j++) {
                x += (uint64_t)coeffs[(i + j * m) * cols + c] * pw[f * blocks + j];
                x = x >= ph ? x - ph : x;
            }
            outs[f][i * cols + c] = bb_reduce(x);
        }
}

static void fold_row_scalar(uint32_t *const *outs, const uint32_t *coeffs, size_t k, size_t cols, size_t m,
                            const uint32_t *pw, size_t blocks, size_t n_factors, size_t i) {
    fold_columns_from(outs, coeffs, k, cols, m, pw, blocks, n_factors, i, 0);
}

/* fold_row_avx2, fold_row_avx512 */
#define VEC_BODY "field/fold_vec.inc"
#include "common/vec_widths.h"

int zk_fold_rows(uint32_t *const *outs, const uint32_t *coeffs, size_t k, size_t cols, size_t m,
                 const uint32_t *factors, size_t n_factors) {
    if (!m || !n_factors) return 0;
    size_t blocks = (k + m - 1) / m;
    uint32_t *pw = malloc((n_factors * blocks + 1) * sizeof *pw);   /* pw[f * blocks + j] = factors[f]^j */
    if (!pw) return -2;
    for (size_t f = 0; f < n_factors; f++) {
        uint32_t p = BB_ONE;
        for (size_t j = 0; j < blocks; j++) pw[f * blocks + j] = p, p = bb_mul(p, factors[f]);
    }
    int isa = zk_active_isa;
    for (size_t i = 0; i < m; i++) ZK_DISPATCH(isa, fold_row, outs, coeffs, k, cols, m, pw, blocks, n_factors, i);
    free(pw);
    return 0;
}
