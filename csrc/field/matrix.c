/*
 * matrix.c — cache-blocked transpose.
 *
 * A naive column-by-column copy of a tall row-major matrix reads every cache
 * line of the source once per column: 32 columns of 2^19 rows cost 32 passes
 * over 64 MiB.  Tiles of 512 rows x 16 columns read each source line once
 * and give each of the 16 destination columns a 2 KiB run per tile.  Shorter
 * runs (64 rows) measured up to 3x slower for widths like 143 or 159 columns
 * (the prover's order-book trace), where the 16 write streams, a row length
 * apart, keep evicting each other; 512-row tiles were as fast or faster for
 * every width measured, 8 to 200 columns (4-7 GB/s on one Zen 4 core).
 *
 * zk_gather_columns is that tiling for chosen columns (a LogUp argument's
 * expression entries read ~24 of the order book's 143), each tile reading
 * the chosen columns of its rows, not a pass per column; the transpose is
 * every column gathered.  zk_gather_strided is the same tiling for columns
 * given by pointer, each with its own stride: the constraint evaluator's
 * inputs, gathered a block of rows at a time (csrc/stark/constraint_vm.c).
 */
#include "zk_matrix.h"

enum { TILE_ROWS = 512, TILE_COLS = 16 };

void zk_gather_strided(uint32_t *out, size_t out_stride, const uint32_t *const *cols,
                       const size_t *strides, size_t rows, size_t k) {
    for (size_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
        size_t r1 = r0 + TILE_ROWS < rows ? r0 + TILE_ROWS : rows;
        for (size_t j0 = 0; j0 < k; j0 += TILE_COLS) {
            size_t j1 = j0 + TILE_COLS < k ? j0 + TILE_COLS : k;
            for (size_t j = j0; j < j1; j++) {
                uint32_t *dst = out + j * out_stride;
                const uint32_t *src = cols[j];
                size_t st = strides[j];
                for (size_t r = r0; r < r1; r++) dst[r] = src[r * st];
            }
        }
    }
}

/* up to GROUP columns a call of zk_gather_strided, their pointers on the
 * stack */
enum { GROUP = 1024 };

void zk_gather_columns(uint32_t *out, size_t out_stride, const uint32_t *in, size_t row_stride,
                       size_t rows, const size_t *offsets, size_t k) {
    const uint32_t *cols[GROUP];
    size_t strides[GROUP];
    for (size_t c0 = 0; c0 < k; c0 += GROUP) {
        size_t n = k - c0 < GROUP ? k - c0 : GROUP;
        for (size_t j = 0; j < n; j++) cols[j] = in + offsets[c0 + j], strides[j] = row_stride;
        zk_gather_strided(out + c0 * out_stride, out_stride, cols, strides, rows, n);
    }
}

/* Every column gathered, GROUP columns a call. */
void zk_transpose_u32(uint32_t *out, size_t out_stride, const uint32_t *in, size_t rows, size_t cols) {
    size_t offsets[GROUP];
    for (size_t c0 = 0; c0 < cols; c0 += GROUP) {
        size_t k = cols - c0 < GROUP ? cols - c0 : GROUP;
        for (size_t j = 0; j < k; j++) offsets[j] = c0 + j;
        zk_gather_columns(out + c0 * out_stride, out_stride, in, cols, rows, offsets, k);
    }
}
