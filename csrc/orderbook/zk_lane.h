/*
 * zk_lane.h — the record lane's own columns but its Poseidon2 registers,
 * in one pass over the rows, and the published leaves from the registers
 * (prover/orderbook/zk_lane.py `lane_matrix` calls these; the Poseidon2
 * registers are hash/zk_poseidon2.h's, written between the two calls).
 *
 * Which column each named value goes to is the caller's `pos` table: the
 * names are C's (zk_lane_column_name: zk_air.LANE_COLUMNS' names of fli,
 * the row types, the salts, the data elements and the blinding tuple),
 * the order is Python's (LANE_COLUMNS), and the builder never restates it
 * (the witness builder's rule, zk_witness.h).
 *
 * Row r of the lane holds, in Montgomery form:
 *   fli         fl^-1 where the execution row r is a MATCH with a nonzero
 *               fill (sM != 0 and fl != 0), else 0 (check 19)
 *   lo, lt, ld  the row's types (three 0/1 values)
 *   s0..s3      its four salts, then e0..e11 its twelve data elements: the
 *               permutation's input x, which also goes to `x` (T x 16,
 *               contiguous: the register kernel's input)
 *   bm, bx0..7  the blinding tuple's values on row 0, else 0
 */
#ifndef ZK_LANE_H
#define ZK_LANE_H

#include "common/zk_common.h"

/* cffi-begin */
/* Return codes of zk_lane_rows besides -1 (success) and the flat index of
 * the first input value >= p: salts (T x 4), then data (T x 12), types
 * (T x 3) and the blinding values (9) counted on in that order. */
#define ZK_LANE_NO_MEMORY -2
#define ZK_LANE_BAD_LAYOUT -3   /* a position outside [0, n_cols) */

/* The named columns the builder writes, and their names. */
size_t zk_lane_column_count(void);
const char *zk_lane_column_name(size_t i);

/* Write the named columns of `trace_length` rows of `out` (row r at out +
 * r * stride; pos[i] the column of name i, below n_cols <= stride) and
 * the permutation inputs `x` (trace_length x 16), every value in
 * Montgomery form, from canonical `salts` (T x 4), `data` (T x 12), `types`
 * (T x 3) and `blinding` (9: bm, then bx0..bx7), and the execution rows'
 * fl and sM columns (Montgomery, row r's at fl + r * exec_stride, likewise
 * sM).  Returns -1, the index of the first value >= p (nothing is
 * written then), or a ZK_LANE_* code. */
int64_t zk_lane_rows(uint32_t *out, size_t stride, size_t n_cols, const int32_t *pos, uint32_t *x,
                     size_t trace_length, const uint32_t *salts, const uint32_t *data, const uint32_t *types,
                     const uint32_t *blinding, const uint32_t *fl, const uint32_t *sm, size_t exec_stride);

/* The published leaves, canonical (rows x 8): each row's permutation
 * output elements 0..7 (Montgomery, at registers + r * stride) plus its
 * input's first eight (x, rows x 16 Montgomery): Poseidon2's feed-forward,
 * as prover.poseidon2.leaf computes it. */
void zk_lane_leaves(uint32_t *leaves, const uint32_t *registers, size_t stride, const uint32_t *x, size_t rows);
/* cffi-end */

#endif
