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
/* cffi-end */

#endif
