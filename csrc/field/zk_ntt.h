/*
 * zk_ntt.h — number-theoretic transforms over BabyBear (public interface).
 *
 * Every transform works on a ROW-MAJOR matrix of `rows` x `cols` Montgomery-
 * form elements and transforms each column independently; a single column is
 * the case cols == 1.  `rows` is 2^log_rows with log_rows <= 27 (the two-adicity
 * of p - 1).  One call transforms the whole matrix; Python makes it with the
 * GIL released, and concurrent calls are safe (the twiddle cache is locked).
 *
 * Conventions (fixed, so callers never guess):
 *   w_n    = the canonical generator of the order-n subgroup H:
 *            w_n = g27^(2^27 / n),  g27 = 31^15 mod p  (0x1a427a41).
 *   Order  All inputs and outputs are in NATURAL order: row i of a coefficient
 *          matrix is the coefficient of x^i, row i of an evaluation matrix is
 *          the value at shift * w_n^i.  The one exception is zk_lde with
 *          bit_reverse_output = 1: then row r holds the value at
 *          shift * w_N^rev(r), rev = reversal of the low log2(N) bits (the
 *          order FRI folds in).
 *   Coset  `shift` (Montgomery form, nonzero) selects the coset shift * H;
 *          shift = 1 (ZK_FP_ONE_MONT) is H itself.
 *   Scale  The forward transform is unscaled; the inverse includes 1/n, so
 *          inverse(forward(a)) == a.
 *
 * Results of unreduced inputs are unspecified; nothing reads out of bounds.
 * Return value of the int functions: 0; -1 for an unsupported shape (rows
 * not a power of two or above 2^27, an LDE whose extended size exceeds 2^27,
 * log_blowup outside [1, 4]), checked before anything is written; -2 when
 * memory for a twiddle table or scratch could not be allocated.
 */
#ifndef ZK_NTT_H
#define ZK_NTT_H

#include "common/zk_common.h"

/* cffi-begin */
#define ZK_NTT_MAX_LOG 27
#define ZK_NTT_MIN_LOG_BLOWUP 1
#define ZK_NTT_MAX_LOG_BLOWUP 4

/* In place: coefficients -> evaluations on shift * H (shift = ONE for H). */
int zk_ntt_forward(uint32_t *a, size_t rows, size_t cols, uint32_t shift);
/* In place: evaluations on shift * H -> coefficients (includes 1/n). */
int zk_ntt_inverse(uint32_t *a, size_t rows, size_t cols, uint32_t shift);
/* In place: row i <-> row rev(i).  An involution. */
int zk_ntt_bit_reverse_rows(uint32_t *a, size_t rows, size_t cols);
/* Low-degree extension.  `in` holds evaluations on H (rows x cols, natural
 * order), `out` receives evaluations of the same polynomials on the coset
 * shift * H' of size N = rows << log_blowup (N x cols), natural order or
 * bit-reversed (see above).  `in` is not modified; `out` must not overlap it. */
int zk_lde(uint32_t *out, const uint32_t *in, size_t rows, size_t cols, unsigned log_blowup,
           uint32_t shift, int bit_reverse_output);
/* Coefficients -> evaluations on a larger coset: `coeffs` holds the
 * coefficients (rows x cols, natural order) of polynomials of degree < rows,
 * `out` receives their values on shift * H' of size N = rows << log_blowup
 * (N x cols, natural order): zk_ntt_forward of the coefficients padded with
 * zero rows to N, without transforming the zero rows.  `coeffs` is not
 * modified; `out` must not overlap it.  Codes as zk_lde. */
int zk_ntt_extend(uint32_t *out, const uint32_t *coeffs, size_t rows, size_t cols, unsigned log_blowup,
                  uint32_t shift);
/* The working-set budget in bytes of each pass of a matrix transform (see
 * ntt.c): 0 restores the default, half the L2 cache.  Returns the previous
 * setting (0 for the default).  A tuning and testing knob: results never
 * depend on it, only speed. */
size_t zk_ntt_set_cache_bytes(size_t bytes);
/* A small coset s <w_m> (m = 2^log_m, s = `shift` in Montgomery form) on
 * which a masked LDE (zk_merkle_lde_leaves, zk_lde_visit_masked) also
 * evaluates f, its coefficients folded on the way: `values` (m x cols)
 * receives f(s w_m^i) in row i, natural order. */
#define ZK_LDE_MAX_COSETS 4
typedef struct {
    uint32_t *values;
    uint32_t shift;
    unsigned log_m;
} zk_coset;
/* cffi-end */

/* ---- internal: the natural-order LDE with a hook on its finished rows ---- */

/* Rows r0 + t step + u of the output (t < groups, u < g) are final: row (t, u)
 * is at rows + (t step + u) cols.  Each output row is handed over exactly
 * once, while it is likely still in cache (hash/merkle.c hashes the leaves
 * of a commitment there). */
typedef struct {
    void (*rows)(void *ctx, const uint32_t *rows, size_t r0, size_t groups, size_t step, size_t g);
    void *ctx;
} zk_lde_visitor;

/* zk_lde(out, in, rows, cols, log_blowup, shift, 0), or with from_coeffs
 * zk_ntt_extend(out, in, rows, cols, log_blowup, shift), calling `visit`
 * (not NULL) on the output rows as they become final. */
int zk_lde_visit(uint32_t *out, const uint32_t *in, size_t rows, size_t cols, unsigned log_blowup,
                 uint32_t shift, int from_coeffs, const zk_lde_visitor *visit);
/* zk_lde_visit of a masked polynomial f = t + (X^rows - 1) r (docs/ZK.md 5.2):
 * `in` gives t as for zk_lde_visit, `mask` r's mask_rows coefficients
 * (mask_rows x cols, X^0 first; mask_rows <= rows: the spread adds r_k
 * to the copies of t's coefficient k, ntt.c), and `out` receives f on the
 * LDE's domain.  Each of the `ncosets` cosets (at most
 * ZK_LDE_MAX_COSETS, log_m <= 27) receives f's values there,
 * from f's coefficients, which the LDE computes anyway.  With mask_rows 0
 * and no cosets this is zk_lde_visit.  Codes as zk_lde (-1 also for
 * mask_rows > rows, mask_rows > 0 with mask NULL, or a coset out of
 * range). */
int zk_lde_visit_masked(uint32_t *out, const uint32_t *in, size_t rows, size_t cols, unsigned log_blowup,
                        uint32_t shift, int from_coeffs, const uint32_t *mask, size_t mask_rows,
                        const zk_coset *cosets, size_t ncosets, const zk_lde_visitor *visit);

#endif
