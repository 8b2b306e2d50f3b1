/*
 * matrix.c — cache-blocked transpose.
 *
 * A naive column-by-column copy of a tall row-major matrix reads every cache
 * line of the source once per column: 32 columns of 2^19 rows cost 32 passes
 * over 64 MiB.  Tiles of 64 x 16 keep the source lines (one 64-byte line =
 * 16 elements of a row) and the destination lines (64 rows of one column)
 * in L1 while a tile is moved, so each line is fetched once.
 */
#include "zk_matrix.h"

enum { TILE_ROWS = 64, TILE_COLS = 16 };

void zk_transpose_u32(uint32_t *out, size_t out_stride, const uint32_t *in, size_t rows, size_t cols) {
    for (size_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
        size_t r1 = r0 + TILE_ROWS < rows ? r0 + TILE_ROWS : rows;
        for (size_t c0 = 0; c0 < cols; c0 += TILE_COLS) {
            size_t c1 = c0 + TILE_COLS < cols ? c0 + TILE_COLS : cols;
            for (size_t c = c0; c < c1; c++) {
                uint32_t *dst = out + c * out_stride;
                for (size_t r = r0; r < r1; r++) dst[r] = in[r * cols + c];
            }
        }
    }
}
