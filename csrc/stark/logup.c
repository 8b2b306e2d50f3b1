/*
 * logup.c — LogUp auxiliary columns (zk_logup.h), block by block.
 *
 * The numpy builder made one pass over memory per operation on whole
 * columns (each compression term, each inversion, each product), about
 * 400 column passes for the order-book sum.  Here a block of BLOCK rows goes
 * through every step while it is in cache:
 *
 *   1. denominators, fraction by fraction: sum_j c_j v_j(r) with lazy
 *      reduction (four 64-bit products of values < p sum below 4p^2 < 2^64,
 *      so one bb_reduce_wide per four tuple entries and component);
 *   2. one batch inversion of the block's denominators, through the norm
 *      as zk_ext4_inv does (1/f = f(-X) (b0 - b2 X^2) / N with N in the base
 *      field), the norms inverted by the vectorised base batch inverse
 *      (zk_fp_inv: Montgomery's trick in 8 or 16 lanes); a zero norm is a
 *      zero denominator, and the block is then scanned in row order for
 *      the first;
 *   3. multiplicities times inverses into the group sums, then row by row
 *      the cyclic running sum S (S[0] = 0, S[r+1] = S[r] + term(r) - shift,
 *      shift = target / N), carried from block to block; the last group
 *      has no helper column (its relation is written on S' - S).
 *
 * Every loop but the running sum runs across the block's rows on
 * component-major arrays (a[c][k * nb + i]).  The norm, inverse and group
 * steps use bb_field.h's 8- and 16-lane arithmetic (gcc left them scalar:
 * zk_ext4_inv itself, with its scalar norms and a 64-bit division per
 * multiply by W, had taken 60 % of the time); the compression loop is
 * compiled once per ISA path and vectorised by the compiler (vpmuludq).
 * Every path computes canonical field elements, so all paths and the numpy
 * builder agree word for word.
 */
#include <stdlib.h>
#include <string.h>

#include "field/bb_field.h"
#include "field/zk_field.h"
#include "zk_logup.h"

enum { BLOCK = 128 };

/* W and 2W as Montgomery constants: bb_mul(x, W_M) = 11 x in any representation
 * (a multiply, not the 64-bit division of bb_mul_small). */
#define W_M 0x37ffffe9u  /* 11 R mod p */
#define W2_M 0x6fffffd2u /* 22 R mod p */

/* A block's working set, component-major so every loop runs across rows:
 * a[c][q] are the denominators' components at q = k * nb + i (fraction k,
 * block row i), replaced by the inverses; b0, b2, nrm, ninv the norm steps. */
typedef struct {
    uint32_t *a[4], *b0, *b2, *nrm, *ninv;
} block_mem;

/* Denominators: offset - sum_j coeffs_j v_j(r0 + i), lazily reduced. */
ZK_INLINE void compress_body(block_mem *w, size_t k, const zk_logup_fraction *f, size_t r0, size_t nb) {
    uint32_t red[4][BLOCK];
    uint64_t acc[4][BLOCK];
    memset(red, 0, sizeof red);
    for (size_t j0 = 0; j0 < f->n_values; j0 += 4) {
        size_t j1 = j0 + 4 < f->n_values ? j0 + 4 : f->n_values;
        memset(acc, 0, sizeof acc);
        for (size_t j = j0; j < j1; j++) {
            uint32_t packed[BLOCK];
            const uint32_t *v = f->values[j] + r0 * f->strides[j];
            if (f->strides[j] != 1) { /* the block's values, gathered once */
                for (size_t i = 0; i < nb; i++) packed[i] = v[i * f->strides[j]];
                v = packed;
            }
            for (int c = 0; c < 4; c++) {
                uint64_t cc = f->coeffs[4 * j + c];
                for (size_t i = 0; i < nb; i++) acc[c][i] += (uint64_t)v[i] * cc;
            }
        }
        for (int c = 0; c < 4; c++)
            for (size_t i = 0; i < nb; i++) red[c][i] = bb_add(red[c][i], bb_reduce_wide(acc[c][i]));
    }
    for (int c = 0; c < 4; c++) {
        uint32_t *a = w->a[c] + k * nb, off = f->offset[c];
        for (size_t i = 0; i < nb; i++) a[i] = bb_sub(off, red[c][i]);
    }
}

/* Norms of denominators q0 <= q < n (zk_ext4_inv's formulas):  f(X) f(-X) = b0 + b2 X^2,
 *   b0 = a0^2 + W a2^2 - 2W a1 a3,  b2 = 2 a0 a2 - a1^2 - W a3^2,  N = b0^2 - W b2^2. */
static void norms_from(block_mem *w, size_t q0, size_t n) {
    const uint32_t *a0 = w->a[0], *a1 = w->a[1], *a2 = w->a[2], *a3 = w->a[3];
    for (size_t q = q0; q < n; q++) {
        uint32_t a02 = bb_mul(a0[q], a2[q]);
        uint32_t b0 = bb_sub(bb_add(bb_mul(a0[q], a0[q]), bb_mul(bb_mul(a2[q], a2[q]), W_M)),
                             bb_mul(bb_mul(a1[q], a3[q]), W2_M));
        uint32_t b2 = bb_sub(bb_sub(bb_add(a02, a02), bb_mul(a1[q], a1[q])), bb_mul(bb_mul(a3[q], a3[q]), W_M));
        w->b0[q] = b0, w->b2[q] = b2;
        w->nrm[q] = bb_sub(bb_mul(b0, b0), bb_mul(bb_mul(b2, b2), W_M));
    }
}

/* 1/f = f(-X) (b0 - b2 X^2) / N, written over the denominators. */
static void inverses_from(block_mem *w, size_t q0, size_t n) {
    uint32_t *a0 = w->a[0], *a1 = w->a[1], *a2 = w->a[2], *a3 = w->a[3];
    for (size_t q = q0; q < n; q++) {
        uint32_t b0 = w->b0[q], b2 = w->b2[q], ni = w->ninv[q];
        uint32_t g0 = bb_sub(bb_mul(a0[q], b0), bb_mul(bb_mul(a2[q], b2), W_M));
        uint32_t g1 = bb_sub(bb_mul(bb_mul(a3[q], b2), W_M), bb_mul(a1[q], b0));
        uint32_t g2 = bb_sub(bb_mul(a2[q], b0), bb_mul(a0[q], b2));
        uint32_t g3 = bb_sub(bb_mul(a1[q], b2), bb_mul(a3[q], b0));
        a0[q] = bb_mul(g0, ni), a1[q] = bb_mul(g1, ni), a2[q] = bb_mul(g2, ni), a3[q] = bb_mul(g3, ni);
    }
}

/* hg[i] += or -= x[i] (* m[i] if m), i0 <= i < nb */
static void gather_from(uint32_t *hg, const uint32_t *x, const uint32_t *m, int sign, size_t i0, size_t nb) {
    for (size_t i = i0; i < nb; i++) {
        uint32_t t = m ? bb_mul(x[i], m[i]) : x[i];
        hg[i] = sign > 0 ? bb_add(hg[i], t) : bb_sub(hg[i], t);
    }
}

/* The scalar path: every step from row 0. */
static void norms_scalar(block_mem *w, size_t n) { norms_from(w, 0, n); }
static void inverses_scalar(block_mem *w, size_t n) { inverses_from(w, 0, n); }
static void gather_scalar(uint32_t *hg, const uint32_t *x, const uint32_t *m, int sign, size_t nb) {
    gather_from(hg, x, m, sign, 0, nb);
}
static void compress_scalar(block_mem *w, size_t k, const zk_logup_fraction *f, size_t r0, size_t nb) {
    compress_body(w, k, f, r0, nb);
}

/* norms_avx2 ... compress_avx512 */
#define VEC_BODY "stark/logup_vec.inc"
#include "common/vec_widths.h"

int64_t zk_logup_build(uint32_t *out, size_t out_stride, const zk_logup_fraction *fractions,
                       size_t n_fractions, size_t n_groups, size_t rows, const uint32_t shift[4],
                       uint32_t end[4]) {
    size_t width = 1 + (n_groups >= 2 ? n_groups - 1 : 0); /* output columns: S, h_0 .. h_{G-2} */
    if (n_groups == 0 || n_fractions == 0 || out_stride < 4 * width) return -3;
    for (size_t k = 0; k < n_fractions; k++) {
        const zk_logup_fraction *f = &fractions[k];
        if (f->group >= n_groups || (f->sign != 1 && f->sign != -1) || (f->mult && !f->mult_stride)) return -3;
        for (size_t j = 0; j < f->n_values; j++)
            if (!f->strides[j]) return -3;
    }
    size_t nf = n_fractions, cap = nf * BLOCK;
    uint32_t *mem = malloc((8 * cap + 4 * n_groups * BLOCK) * sizeof *mem);
    if (!mem) return -2;
    block_mem w = {{mem, mem + cap, mem + 2 * cap, mem + 3 * cap}, mem + 4 * cap, mem + 5 * cap,
                   mem + 6 * cap, mem + 7 * cap};
    uint32_t *h = mem + 8 * cap; /* h[(g * 4 + c) * BLOCK + i] */
    uint32_t run[4] = {0, 0, 0, 0}; /* S at the current row: sum of (term - shift) over the rows before */
    int64_t status = -1;
    for (size_t r0 = 0; r0 < rows && status == -1; r0 += BLOCK) {
        size_t nb = rows - r0 < BLOCK ? rows - r0 : BLOCK, n = nf * nb;
        for (size_t k = 0; k < nf; k++) ZK_DISPATCH(zk_active_isa, compress, &w, k, &fractions[k], r0, nb);
        ZK_DISPATCH(zk_active_isa, norms, &w, n);
        if (zk_fp_inv(w.ninv, w.nrm, n) >= 0) { /* a zero norm is a zero denominator */
            for (size_t i = 0; i < nb && status == -1; i++)
                for (size_t k = 0; k < nf; k++)
                    if (w.nrm[k * nb + i] == 0) {
                        status = (int64_t)((r0 + i) * nf + k);
                        break;
                    }
            break;
        }
        ZK_DISPATCH(zk_active_isa, inverses, &w, n);
        memset(h, 0, 4 * n_groups * BLOCK * sizeof *h);
        for (size_t k = 0; k < nf; k++) { /* multiplicity * inverse into its group, by component */
            const zk_logup_fraction *f = &fractions[k];
            uint32_t packed[BLOCK];
            const uint32_t *m = f->mult ? f->mult + r0 * f->mult_stride : 0;
            if (m && f->mult_stride != 1) {
                for (size_t i = 0; i < nb; i++) packed[i] = m[i * f->mult_stride];
                m = packed;
            }
            for (int c = 0; c < 4; c++)
                ZK_DISPATCH(zk_active_isa, gather, h + (f->group * 4 + c) * BLOCK, w.a[c] + k * nb, m, f->sign,
                            nb);
        }
        for (size_t i = 0; i < nb; i++) {
            uint32_t *o = out + (r0 + i) * out_stride;
            memcpy(o, run, sizeof run);
            for (size_t g = 0; g < n_groups; g++)
                for (int c = 0; c < 4; c++) {
                    uint32_t v = h[(g * 4 + c) * BLOCK + i];
                    run[c] = bb_add(run[c], v);
                    if (g + 1 < n_groups) o[4 + 4 * g + c] = v; /* the last group has no column */
                }
            for (int c = 0; c < 4; c++) run[c] = bb_sub(run[c], shift[c]);
        }
    }
    if (end && status == -1) memcpy(end, run, sizeof run);
    free(mem);
    return status;
}
