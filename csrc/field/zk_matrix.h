/*
 * zk_matrix.h — layout changes of uint32 matrices.
 */
#ifndef ZK_MATRIX_H
#define ZK_MATRIX_H

#include "common/zk_common.h"

/* cffi-begin */
/* out[c * out_stride + r] = in[r * cols + c] for r < rows, c < cols: a
 * row-major (rows x cols) matrix to column-major with rows padded to
 * out_stride >= rows elements.  `out` must not overlap `in`. */
void zk_transpose_u32(uint32_t *out, size_t out_stride, const uint32_t *in, size_t rows, size_t cols);
/* out[j * out_stride + r] = in[offsets[j] + r * row_stride] for r < rows,
 * j < k: k columns of a matrix (column j starting at element offsets[j],
 * rows row_stride elements apart), each to a contiguous row of `out`.
 * `out` must not overlap `in`. */
void zk_gather_columns(uint32_t *out, size_t out_stride, const uint32_t *in, size_t row_stride,
                       size_t rows, const size_t *offsets, size_t k);
/* cffi-end */

/* out[j * out_stride + r] = cols[j][r * strides[j]] for r < rows, j < k:
 * columns given by pointer, each with its own stride (zk_gather_columns's
 * tiling, for callers in C).  `out` must not overlap a column. */
void zk_gather_strided(uint32_t *out, size_t out_stride, const uint32_t *const *cols,
                       const size_t *strides, size_t rows, size_t k);

#endif
