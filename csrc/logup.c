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
 *      so one bb_reduce_wide per four tuple entries and component), laid out
 *      row-major (row, fraction) so the first zero found is the first in row
 *      order;
 *   2. one batch inversion of the block's denominators, through the norm
 *      as zk_ext4_inv does (1/f = f(-X) (b0 - b2 X^2) / N with N in the base
 *      field), the norms inverted by the vectorised base batch inverse
 *      (zk_fp_inv: Montgomery's trick in 8 or 16 lanes);
 *   3. multiplicities times inverses into the group sums, then row by row
 *      the running sum, carried from block to block.
 *
 * Every loop but the running sum runs across the block's rows on
 * component-major arrays (a[c][k * nb + i]) and is compiled once per ISA
 * path, so the compiler vectorises the field arithmetic (vpmuludq, and min
 * for the conditional subtractions).  zk_ext4_inv itself, with its scalar
 * norms and a 64-bit division per multiply by W, took 60 % of the time.
 * Every path computes canonical field elements, so all paths and the numpy
 * builder agree word for word.
 */
#include <stdlib.h>
#include <string.h>

#include "bb_field.h"
#include "zk_field.h"
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
            const uint32_t *v = f->values[j] + r0;
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

/* Norms of n denominators (zk_ext4_inv's formulas):  f(X) f(-X) = b0 + b2 X^2,
 *   b0 = a0^2 + W a2^2 - 2W a1 a3,  b2 = 2 a0 a2 - a1^2 - W a3^2,  N = b0^2 - W b2^2. */
ZK_INLINE void norms_body(block_mem *w, size_t n) {
    const uint32_t *a0 = w->a[0], *a1 = w->a[1], *a2 = w->a[2], *a3 = w->a[3];
    for (size_t q = 0; q < n; q++) {
        uint32_t b0 = bb_sub(bb_add(bb_mul(a0[q], a0[q]), bb_mul(bb_mul(a2[q], a2[q]), W_M)),
                             bb_mul(bb_mul(a1[q], a3[q]), W2_M));
        uint32_t b2 = bb_sub(bb_sub(bb_add(bb_mul(a0[q], a2[q]), bb_mul(a0[q], a2[q])), bb_mul(a1[q], a1[q])),
                             bb_mul(bb_mul(a3[q], a3[q]), W_M));
        w->b0[q] = b0, w->b2[q] = b2;
        w->nrm[q] = bb_sub(bb_mul(b0, b0), bb_mul(bb_mul(b2, b2), W_M));
    }
}

/* 1/f = f(-X) (b0 - b2 X^2) / N, written over the denominators. */
ZK_INLINE void inverses_body(block_mem *w, size_t n) {
    uint32_t *a0 = w->a[0], *a1 = w->a[1], *a2 = w->a[2], *a3 = w->a[3];
    for (size_t q = 0; q < n; q++) {
        uint32_t b0 = w->b0[q], b2 = w->b2[q], ni = w->ninv[q];
        uint32_t g0 = bb_sub(bb_mul(a0[q], b0), bb_mul(bb_mul(a2[q], b2), W_M));
        uint32_t g1 = bb_sub(bb_mul(bb_mul(a3[q], b2), W_M), bb_mul(a1[q], b0));
        uint32_t g2 = bb_sub(bb_mul(a2[q], b0), bb_mul(a0[q], b2));
        uint32_t g3 = bb_sub(bb_mul(a1[q], b2), bb_mul(a3[q], b0));
        a0[q] = bb_mul(g0, ni), a1[q] = bb_mul(g1, ni), a2[q] = bb_mul(g2, ni), a3[q] = bb_mul(g3, ni);
    }
}

/* h[g][c][i] += sign * m_k(r0 + i) * inverse, fraction by fraction. */
ZK_INLINE void gather_body(uint32_t *h, const block_mem *w, const zk_logup_fraction *fr, size_t nf,
                           size_t r0, size_t nb) {
    for (size_t k = 0; k < nf; k++) {
        const zk_logup_fraction *f = &fr[k];
        for (int c = 0; c < 4; c++) {
            const uint32_t *x = w->a[c] + k * nb;
            uint32_t *hg = h + (f->group * 4 + c) * BLOCK;
            uint32_t t[BLOCK];
            if (f->mult)
                for (size_t i = 0; i < nb; i++) t[i] = bb_mul(x[i], f->mult[r0 + i]);
            else
                memcpy(t, x, nb * sizeof *t);
            if (f->sign > 0)
                for (size_t i = 0; i < nb; i++) hg[i] = bb_add(hg[i], t[i]);
            else
                for (size_t i = 0; i < nb; i++) hg[i] = bb_sub(hg[i], t[i]);
        }
    }
}

#define PATH(suffix, attr)                                                                              \
    attr static void compress_##suffix(block_mem *w, size_t k, const zk_logup_fraction *f, size_t r0,   \
                                       size_t nb) {                                                     \
        compress_body(w, k, f, r0, nb);                                                                 \
    }                                                                                                   \
    attr static void norms_##suffix(block_mem *w, size_t n) { norms_body(w, n); }                      \
    attr static void inverses_##suffix(block_mem *w, size_t n) { inverses_body(w, n); }                \
    attr static void gather_##suffix(uint32_t *h, const block_mem *w, const zk_logup_fraction *fr,      \
                                     size_t nf, size_t r0, size_t nb) {                                 \
        gather_body(h, w, fr, nf, r0, nb);                                                              \
    }

PATH(scalar, )
#if ZK_X86
PATH(avx2, ZK_AVX2)
PATH(avx512, ZK_AVX512)
#define DISPATCH(name, ...)                                                                             \
    switch (zk_active_isa) {                                                                            \
    case ZK_ISA_AVX512: name##_avx512(__VA_ARGS__); break;                                              \
    case ZK_ISA_AVX2: name##_avx2(__VA_ARGS__); break;                                                  \
    default: name##_scalar(__VA_ARGS__);                                                                \
    }
#else
#define DISPATCH(name, ...) name##_scalar(__VA_ARGS__)
#endif

int64_t zk_logup_build(uint32_t *out, size_t out_stride, const zk_logup_fraction *fractions,
                       size_t n_fractions, size_t n_groups, size_t rows) {
    size_t width = 2 + (n_groups >= 2 ? n_groups : 0); /* output columns */
    if (n_groups == 0 || n_fractions == 0 || out_stride < 4 * width) return -3;
    for (size_t k = 0; k < n_fractions; k++)
        if (fractions[k].group >= n_groups || (fractions[k].sign != 1 && fractions[k].sign != -1)) return -3;
    size_t nf = n_fractions, cap = nf * BLOCK;
    uint32_t *mem = malloc((8 * cap + 4 * n_groups * BLOCK) * sizeof *mem);
    if (!mem) return -2;
    block_mem w = {{mem, mem + cap, mem + 2 * cap, mem + 3 * cap}, mem + 4 * cap, mem + 5 * cap,
                   mem + 6 * cap, mem + 7 * cap};
    uint32_t *h = mem + 8 * cap; /* h[g][c][i] */
    uint32_t run[4] = {0, 0, 0, 0}; /* the running sum before the current row */
    int64_t status = -1;
    for (size_t r0 = 0; r0 < rows && status == -1; r0 += BLOCK) {
        size_t nb = rows - r0 < BLOCK ? rows - r0 : BLOCK, n = nf * nb;
        for (size_t k = 0; k < nf; k++) DISPATCH(compress, &w, k, &fractions[k], r0, nb);
        DISPATCH(norms, &w, n);
        if (zk_fp_inv(w.ninv, w.nrm, n) >= 0) { /* a zero norm is a zero denominator */
            for (size_t i = 0; i < nb && status == -1; i++)
                for (size_t k = 0; k < nf; k++)
                    if (w.nrm[k * nb + i] == 0) {
                        status = (int64_t)((r0 + i) * nf + k);
                        break;
                    }
            break;
        }
        DISPATCH(inverses, &w, n);
        memset(h, 0, 4 * n_groups * BLOCK * sizeof *h);
        DISPATCH(gather, h, &w, fractions, nf, r0, nb);
        for (size_t i = 0; i < nb; i++) {
            uint32_t *o = out + (r0 + i) * out_stride;
            memcpy(o, run, sizeof run);
            for (size_t g = 0; g < n_groups; g++)
                for (int c = 0; c < 4; c++) {
                    uint32_t v = h[(g * 4 + c) * BLOCK + i];
                    run[c] = bb_add(run[c], v);
                    if (n_groups >= 2) o[8 + 4 * g + c] = v;
                }
            memcpy(o + 4, run, sizeof run);
        }
    }
    free(mem);
    return status;
}
