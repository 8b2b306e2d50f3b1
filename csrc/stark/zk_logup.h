/*
 * zk_logup.h — a LogUp argument's auxiliary columns in one pass over the rows
 * (prover/logup.py describes the argument and calls this).
 *
 * A fraction is  sign * m(r) / (alpha - compress(tuple(r)))  on row r.  The
 * caller splits each tuple into its constant part and its varying base
 * columns v_j with extension coefficients c_j (the compression challenges), so the
 * denominator is  offset - sum_j c_j v_j(r)  with offset = alpha - (constant
 * part).  Fractions are summed by group; a row's term is the sum of its
 * groups; the cyclic running sum is
 *
 *   S[r] = (term(0) - shift) + ... + (term(r - 1) - shift)      (S[0] = 0)
 *
 * with shift = target / N (4 words, Montgomery), so that S[r+1] - S[r] =
 * term(r) - shift on every row, wrapping from N-1 to 0 when the terms sum
 * to target.  Output row r (out + r * out_stride words): S, then the group
 * sums h_0 .. h_{G-2} when G >= 2 (the last group has no column; 4 words
 * each, Montgomery) — the order of LogUp.columns.
 */
#ifndef ZK_LOGUP_H
#define ZK_LOGUP_H

#include "common/zk_common.h"

/* cffi-begin */
typedef struct zk_logup_fraction {
    uint32_t offset[4];              /* alpha - the tuple's constant part */
    uint32_t n_values;               /* varying entries of the tuple */
    uint32_t group;                  /* the helper column it adds to, < n_groups */
    int32_t sign;                    /* +1 supply, -1 consume */
    const uint32_t *mult;            /* base column of multiplicities, or NULL for 1 */
    size_t mult_stride;              /* words from one row's multiplicity to the next */
    const uint32_t *const *values;   /* n_values base columns of `rows` values */
    const size_t *strides;           /* words between rows, per column (a column of a
                                        row-major trace matrix is read where it lies) */
    const uint32_t *coeffs;          /* n_values extension coefficients, 4 words each */
} zk_logup_fraction;

/* Fill rows [0, rows) of `out`.  Returns -1 on success; -2 if scratch memory
 * could not be allocated; -3 for a malformed description (no group, a group
 * index out of range, a sign other than +-1, a zero stride, out_stride too
 * small); or, when
 * some denominator is zero, r * n_fractions + k for the first such (row r,
 * fraction k) in row order (out is then unspecified).  `end`, if not NULL,
 * receives S[rows], the running sum after the last row: with shift 0, the
 * sum of every row's term (how a domain's claimed sum is read without
 * evaluating a row again).  Every ISA path gives the same words. */
int64_t zk_logup_build(uint32_t *out, size_t out_stride, const zk_logup_fraction *fractions,
                       size_t n_fractions, size_t n_groups, size_t rows, const uint32_t shift[4],
                       uint32_t end[4]);

/* col[r] -= r * step for r < rows (4 words each, Montgomery; rows `stride`
 * words apart): a shared argument's running sum built on a claim of 0
 * closed on its total t, step = t / N (LogUp.close_on_total), in one pass
 * over the column where it lies. */
void zk_logup_ramp_sub(uint32_t *col, size_t stride, size_t rows, const uint32_t step[4]);
/* cffi-end */

#endif
