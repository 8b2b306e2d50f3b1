/*
 * column_window.c — a block's window of strided columns into scratch, and
 * the prefetch of the next block's rows (column_window.h).
 *
 * Intended instructions: on the vector paths, a run of VEC_LANES adjacent
 * columns (a matrix's columns are; the zk `ops` domain's 528 are 33 runs of
 * 16) is transposed in registers (gather_run, column_window_vec.inc): a
 * row's words of the run in one load, every word used.  Elsewhere (a column
 * alone, the scalar path) zk_gather_strided (field/matrix.c): 16 columns at
 * a time over the window's rows, so the first column's loads bring a line of
 * each row into L1 where the other fifteen find it; one scalar load
 * (mov r32, [src + r stride]) a row and a store into the column's scratch
 * row.  vpgatherdd was tried for the strided loads and gained nothing
 * (docs/BENCHMARKS.md): the cost was the lines fetched, not the loads; the
 * transpose saves the loads and stores of single words.
 */
#include "column_window.h"
#include "field/zk_matrix.h"

/* gather_run_avx2, gather_run_avx512: a run of VEC_LANES adjacent columns */
#define VEC_BODY "stark/column_window_vec.inc"
#include "common/vec_widths.h"

/* The width of the transposing gather on `isa` (1: none). */
size_t zk_window_lanes(int isa) {
#if ZK_X86
    return isa == ZK_ISA_AVX512 ? 16 : isa == ZK_ISA_AVX2 ? 8 : 1;
#else
    (void)isa;
    return 1;
#endif
}

/* (column_window.h) */
void zk_window_plan(uint8_t *run, uint32_t *const *cols, const size_t *col_stride, const uint32_t *which,
                    size_t k, size_t lanes) {
    for (size_t g = 0; g < k;) {
        size_t j = 1;
        if (lanes > 1 && g + lanes <= k)
            while (j < lanes && cols[which[g + j]] == cols[which[g]] + j
                   && col_stride[which[g + j]] == col_stride[which[g]])
                j++;
        run[g] = j == lanes ? (uint8_t)lanes : 1;
        for (size_t i = 1; i < run[g]; i++) run[g + i] = 0;
        g += run[g];
    }
}

/* Rows start.. start+n-1 (no wrap) of the gathered columns into scratch
 * columns' words done.. */
static void gather_block(uint32_t *scratch, size_t pitch, uint32_t *const *cols, const size_t *col_stride,
                         const uint32_t *which, const uint8_t *run, size_t k, size_t start, size_t n, int isa) {
    for (size_t g = 0; g < k;) {
        const uint32_t *src = cols[which[g]] + start * col_stride[which[g]];
        uint32_t *out = scratch + g * pitch;
#if ZK_X86
        if (run[g] == 16 && isa == ZK_ISA_AVX512) {
            gather_run_avx512(out, pitch, src, col_stride[which[g]], n);
            g += 16;
            continue;
        }
        if (run[g] == 8 && isa == ZK_ISA_AVX2) {
            gather_run_avx2(out, pitch, src, col_stride[which[g]], n);
            g += 8;
            continue;
        }
#endif
        /* up to 16 single columns at once, as zk_gather_strided tiles them:
         * the first column's loads bring each row's line to L1 for the rest.
         * Column g always (a run this isa has no gather for, which zk_window_plan
         * with the same isa never makes, goes column by column: no spin),
         * then up to the next run. */
        size_t m = 0;
        const uint32_t *srcs[16];
        size_t strides[16];
        while (m < 16 && g + m < k && (m == 0 || run[g + m] == 1)) {
            srcs[m] = cols[which[g + m]] + start * col_stride[which[g + m]];
            strides[m] = col_stride[which[g + m]];
            m++;
        }
        zk_gather_strided(out, pitch, srcs, strides, n, m);
        g += m;
        (void)src;
    }
}

/* The block's window: rows start .. start+n-1, wrapping at `rows`, of every
 * gathered column. */
void zk_window_gather(uint32_t *scratch, size_t pitch, uint32_t *const *cols, const size_t *col_stride,
                      const uint32_t *which, const uint8_t *run, size_t k, size_t start, size_t n,
                      size_t rows, int isa) {
    size_t done = 0;
    if (start >= rows) start -= rows;
    while (done < n) {
        size_t len = rows - start < n - done ? rows - start : n - done;
        gather_block(scratch + done, pitch, cols, col_stride, which, run, k, start, len, isa);
        done += len, start = 0;
    }
}

size_t zk_window_add_span(zk_window_span *s, size_t n, const uint32_t *p, size_t width, size_t stride) {
    uintptr_t lo = (uintptr_t)p, hi = lo + 4 * width;
    size_t bytes = 4 * width * stride;
    if (n && s[n - 1].stride == bytes && lo + 64 >= s[n - 1].lo && lo <= s[n - 1].hi + 64) {
        if (lo < s[n - 1].lo) s[n - 1].lo = lo;
        if (hi > s[n - 1].hi) s[n - 1].hi = hi;
        return n;
    }
    s[n] = (zk_window_span){lo, hi, bytes};
    return n + 1;
}

void zk_window_prefetch_row(const zk_window_span *s, size_t n, size_t row) {
    for (size_t i = 0; i < n; i++) {
        uintptr_t end = s[i].hi + row * s[i].stride;
        for (uintptr_t q = (s[i].lo + row * s[i].stride) & ~(uintptr_t)63; q < end; q += 64)
            __builtin_prefetch((const void *)q, 0, 2); /* prefetcht1 */
    }
}