/*
 * logup.c — LogUp auxiliary columns (zk_logup.h), block by block.
 *
 * The numpy builder made one pass over memory per operation on whole
 * columns (each compression term, each inversion, each product), about
 * 400 column passes for the order-book sum.  Here a block of BLOCK rows goes
 * through every step while it is in cache:
 *
 *   1. denominators, fraction by fraction: sum_j c_j v_j(r) with lazy
 *      reduction (on the vector paths each row's four components in 64-bit
 *      lanes of registers across the entries, folded below p 2^32 after
 *      every second product, one reduction at the end; on the scalar path
 *      one bb_reduce_wide per four entries);
 *   2. one batch inversion of the block's denominators, through the norm
 *      as zk_ext4_inv does (1/f = f(-X) (b0 - b2 X^2) / N with N in the base
 *      field), the norms inverted by the vectorised base batch inverse
 *      (zk_fp_inv: Montgomery's trick in 8 or 16 lanes); a zero norm is a
 *      zero denominator, and the block is then scanned in row order for
 *      the first;
 *   3. multiplicities times inverses into the group sums, written to
 *      their rows by one tiled gather a block (the last group has no
 *      helper column: its relation is written on S' - S), their sum the
 *      row's term, then row by row the cyclic running sum S (S[0] = 0,
 *      S[r+1] = S[r] + term(r) - shift, shift = target / N), carried from
 *      block to block.
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
#include "field/zk_matrix.h"
#include "column_window.h"
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

/* Denominators of block rows from..nb-1: offset - sum_j coeffs_j v_j(r0 + i),
 * lazily reduced (four 64-bit products of values < p sum below 2^64: one
 * reduction per four entries); vals[j] is entry j's values for the block's
 * rows, contiguous.  The scalar path's, and the vector paths' tail. */
static void compress_from(block_mem *w, size_t k, const zk_logup_fraction *f, const uint32_t *const *vals,
                          size_t from, size_t nb) {
    for (size_t i = from; i < nb; i++)
        for (int c = 0; c < 4; c++) {
            uint32_t red = 0;
            for (size_t j0 = 0; j0 < f->n_values; j0 += 4) {
                size_t j1 = j0 + 4 < f->n_values ? j0 + 4 : f->n_values;
                uint64_t acc = 0;
                for (size_t j = j0; j < j1; j++) acc += (uint64_t)vals[j][i] * f->coeffs[4 * j + c];
                red = bb_add(red, bb_reduce_wide(acc));
            }
            w->a[c][k * nb + i] = bb_sub(f->offset[c], red);
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
static void compress_scalar(block_mem *w, size_t k, const zk_logup_fraction *f, const uint32_t *const *vals,
                            size_t nb) {
    compress_from(w, k, f, vals, 0, nb);
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
    /* The strided columns the fractions read (tuple entries and
     * multiplicities: columns of a row-major trace matrix, read where they
     * lie), each once, gathered a block of rows at a time into rows of
     * `gathered` by zk_window_gather (column_window.h: runs of adjacent
     * columns transposed in registers, others 16 over the block's rows a
     * pass, in address order; the next block's lines prefetched while
     * this one's denominators are summed): each line of the matrix then comes from
     * memory about once, where a strided copy per entry fetched a line per
     * row for one word of it, again for every fraction that names the
     * column.  at[e] is entry e's gathered row (entries in fraction order,
     * then the multiplicities), or -1 for a contiguous column. */
    size_t n_entries = 0;
    for (size_t k = 0; k < nf; k++) n_entries += fractions[k].n_values;
    size_t n_at = n_entries + nf, n_src = 0;
    const uint32_t **src = malloc(2 * n_at * sizeof *src), **vals = src + n_at;
    size_t *src_stride = malloc(2 * n_at * sizeof *src_stride), *rank = malloc(n_at * sizeof *rank);
    const uint32_t **cur = malloc(n_at * sizeof *cur);
    const uint32_t **h_col = malloc(BLOCK * sizeof *h_col);     /* the helper columns' gather */
    size_t *h_stride = malloc(BLOCK * sizeof *h_stride);
    int64_t *at = malloc(n_at * sizeof *at);
    uint32_t *mem = malloc((8 * cap + 4 * n_groups * BLOCK) * sizeof *mem);
    uint32_t *gathered = 0;
    int64_t status = -1;
    if (!src || !src_stride || !rank || !cur || !h_col || !h_stride || !at || !mem) {
        status = -2;
        goto done;
    }
    for (size_t k = 0, e = 0; k < nf; k++)
        for (size_t j = 0; j <= fractions[k].n_values; j++) {
            const zk_logup_fraction *f = &fractions[k];
            int mult = j == f->n_values;           /* after the entries: the multiplicity */
            const uint32_t *p = mult ? f->mult : f->values[j];
            size_t st = mult ? f->mult_stride : f->strides[j], where = mult ? n_entries + k : e++;
            at[where] = -1;
            if (!p || st == 1) continue;
            size_t i = 0;
            while (i < n_src && (src[i] != p || src_stride[i] != st)) i++;
            if (i == n_src) src[n_src] = p, src_stride[n_src++] = st;
            at[where] = (int64_t)i;
        }
    /* gathered rows in address order (the tiles then read neighbouring words) */
    for (size_t i = 0; i < n_src; i++) {
        rank[i] = 0;
        for (size_t j = 0; j < n_src; j++)
            rank[i] += (uintptr_t)src[j] < (uintptr_t)src[i] || (src[j] == src[i] && src_stride[j] < src_stride[i]);
    }
    size_t *sorted_stride = src_stride + n_at;
    for (size_t i = 0; i < n_src; i++) cur[rank[i]] = src[i], sorted_stride[rank[i]] = src_stride[i];
    for (size_t i = 0; i < n_src; i++) src[i] = cur[i], src_stride[i] = sorted_stride[i];
    for (size_t e = 0; e < n_at; e++)
        if (at[e] >= 0) at[e] = (int64_t)rank[at[e]];
    /* the gather's plan (column_window.h, as the constraint kernels use it):
     * runs of adjacent columns transposed in registers, the rest 16 at a
     * time; and the spans of each row it reads, which the block before
     * prefetches (the matrices are tens of MiB: a block's rows come from
     * memory, and a strided walk waits on each line in turn) */
    int isa = zk_active_isa;
    uint32_t *which = malloc((n_src + 1) * sizeof *which);
    uint8_t *run = malloc(n_src + 1);
    zk_window_span *spans = malloc((n_src + 1) * sizeof *spans);
    size_t n_spans = 0;
    if (!which || !run || !spans || (n_src && !(gathered = malloc(n_src * BLOCK * sizeof *gathered)))) {
        free(which), free(run), free(spans);
        status = -2;
        goto done;
    }
    for (size_t i = 0; i < n_src; i++) {
        which[i] = (uint32_t)i;
        n_spans = zk_window_add_span(spans, n_spans, src[i], 1, src_stride[i]);
    }
    zk_window_plan(run, (uint32_t *const *)src, src_stride, which, n_src, zk_window_lanes(isa));
    block_mem w = {{mem, mem + cap, mem + 2 * cap, mem + 3 * cap}, mem + 4 * cap, mem + 5 * cap,
                   mem + 6 * cap, mem + 7 * cap};
    uint32_t *h = mem + 8 * cap; /* h[(g * 4 + c) * BLOCK + i] */
    uint32_t run_sum[4] = {0, 0, 0, 0}; /* S at the current row: sum of (term - shift) over the rows before */
    for (size_t r0 = 0; r0 < rows && status == -1; r0 += BLOCK) {
        size_t nb = rows - r0 < BLOCK ? rows - r0 : BLOCK, n = nf * nb;
        size_t next = rows - r0 - nb < BLOCK ? rows - r0 - nb : BLOCK; /* the next block's rows */
        if (n_src)
            zk_window_gather(gathered, BLOCK, (uint32_t *const *)src, src_stride, which, run, n_src, r0, nb, rows,
                             isa);
        /* each entry's values for the block (vals: entries in fraction order) */
        for (size_t k = 0, e = 0; k < nf; k++)
            for (size_t j = 0; j < fractions[k].n_values; j++, e++)
                vals[e] = at[e] >= 0 ? gathered + (size_t)at[e] * BLOCK : fractions[k].values[j] + r0;
        /* the next block's rows prefetched, spread over the fractions' sums */
        for (size_t k = 0, e = 0, pf = 0; k < nf; e += fractions[k++].n_values) {
            ZK_DISPATCH(zk_active_isa, compress, &w, k, &fractions[k], vals + e, nb);
            for (size_t end = (k + 1) * next / nf; pf < end; pf++)
                zk_window_prefetch_row(spans, n_spans, r0 + nb + pf);
        }
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
            const int64_t g = at[n_entries + k];
            const uint32_t *m = !f->mult ? 0 : g >= 0 ? gathered + (size_t)g * BLOCK : f->mult + r0;
            for (int c = 0; c < 4; c++)
                ZK_DISPATCH(zk_active_isa, gather, h + (f->group * 4 + c) * BLOCK, w.a[c] + k * nb, m, f->sign,
                            nb);
        }
        /* the helper columns (every group but the last) into their rows: h
         * is (4 (G - 1)) x BLOCK, component-major; row i of the block takes
         * its column i, one tiled gather for the block */
        if (n_groups > 1) {
            for (size_t i = 0; i < nb; i++) h_col[i] = h + i, h_stride[i] = BLOCK;
            zk_gather_strided(out + r0 * out_stride + 4, out_stride, h_col, h_stride, 4 * (n_groups - 1), nb);
        }
        /* each row's term (the sum of its groups) across the block's rows,
         * then the running sum down them, 4 words a row */
        for (size_t g = 1; g < n_groups; g++)
            zk_fp_add(h, h, h + g * 4 * BLOCK, 4 * BLOCK);
        for (size_t i = 0; i < nb; i++) {
            uint32_t *o = out + (r0 + i) * out_stride;
            memcpy(o, run_sum, sizeof run_sum);
            for (int c = 0; c < 4; c++) run_sum[c] = bb_sub(bb_add(run_sum[c], h[c * BLOCK + i]), shift[c]);
        }
    }
    if (end && status == -1) memcpy(end, run_sum, sizeof run_sum);
    free(which), free(run), free(spans);
done:
    free(src), free(src_stride), free(rank), free(cur), free(h_col), free(h_stride), free(at), free(mem),
        free(gathered);
    return status;
}

void zk_logup_ramp_sub(uint32_t *col, size_t stride, size_t rows, const uint32_t step[4]) {
    uint32_t acc[4] = {0, 0, 0, 0}; /* r * step, summed up row by row */
    for (size_t r = 0; r < rows; r++, col += stride)
        for (int c = 0; c < 4; c++) col[c] = bb_sub(col[c], acc[c]), acc[c] = bb_add(acc[c], step[c]);
}
