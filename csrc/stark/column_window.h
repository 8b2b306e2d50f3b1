/*
 * column_window.h — a block of rows of strided columns, copied into scratch
 * one row of it a column (internal to the kernels of stark/).
 *
 * The constraint kernels read columns of row-major LDE matrices where they
 * lie: a column is one word in every row, rows hundreds of words apart.
 * Walked column by column, a block's rows are fetched once per column, a
 * line per row for one word of it.  The kernels instead copy a block's
 * window of every column they read into scratch (zk_window_gather) and
 * compute on the scratch rows, and ask for the next block's lines while
 * they compute (zk_window_prefetch_row).  The block evaluator
 * (constraint_vm.c) and the Poseidon2 constraints kernel
 * (poseidon2_constraints.c) share them.
 */
#ifndef COLUMN_WINDOW_H
#define COLUMN_WINDOW_H

#include "common/zk_common.h"

/* scratch rows start on a line: pitch is a whole number of LINE_WORDS */
enum { ZK_WINDOW_LINE_WORDS = 16 };

/* The width of the transposing gather on `isa` (1: none). */
size_t zk_window_lanes(int isa);

/* run[g]: how many of the columns which[g], which[g+1], ... the gather takes
 * at once: `lanes` of them when they lie side by side in one matrix (the
 * next column one word on, the same stride), else 1 (and 0 for the rest of
 * a run).  Plan with the lanes of the isa the gather will run. */
void zk_window_plan(uint8_t *run, uint32_t *const *cols, const size_t *col_stride, const uint32_t *which,
                    size_t k, size_t lanes);

/* scratch[g * pitch + w] = column which[g]'s value at row (start + w) mod
 * rows, for g < k and w < n (n <= rows: the window wraps at most once).
 * Column c's value at row r is cols[c][r * col_stride[c]]. */
void zk_window_gather(uint32_t *scratch, size_t pitch, uint32_t *const *cols, const size_t *col_stride,
                      const uint32_t *which, const uint8_t *run, size_t k, size_t start, size_t n,
                      size_t rows, int isa);

/* The bytes [lo, hi) of row 0 that a run of columns of one matrix reads
 * (its columns within a line of each other, of one stride), rows `stride`
 * bytes apart: what a prefetch of one row asks for. */
typedef struct {
    uintptr_t lo, hi;
    size_t stride;
} zk_window_span;

/* spans with the column at p (`width` words a value, values `stride`
 * values apart) added: merged into the last span when it lies within a line
 * of it at the same stride; returns the span count (at most one more) */
size_t zk_window_add_span(zk_window_span *s, size_t n, const uint32_t *p, size_t width, size_t stride);

/* prefetcht1 every line of row `row` of the spans: a hint, which never
 * faults and changes no value. */
void zk_window_prefetch_row(const zk_window_span *s, size_t n, size_t row);

#endif
