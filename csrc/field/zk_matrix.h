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
/* out[i] = in[i] for i < n, int64 to uint32; returns 1 when every value is
 * in [0, bound) (bound <= 2^32), else 0, and `out` then holds only the low
 * words (the caller reduces and writes again).  One pass for the cast and
 * the range check of a witness column. */
int zk_narrow_i64_u32(uint32_t *out, const int64_t *in, size_t n, uint64_t bound);
/* cffi-end */

#endif
