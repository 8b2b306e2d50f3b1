/*
 * zk_poseidon2_constraints.h — the Poseidon2 block's constraints on the
 * quotient domain, a kernel of their own (public interface).
 *
 * prover/poseidon2_air.py defines the block: one permutation a row, 274
 * register columns, 274 constraints of degree 3, constraint j the one that
 * defines register j (docs/POSEIDON2.md, "In an AIR").  The
 * prover's quotient needs acc(x) += sum_j w_j C_j(x) at every point of its
 * domain; the block evaluator (zk_vm.h) can compute it from the compiled
 * expressions, at ~3,000 instructions a row.  This kernel computes the
 * same sum with the permutation's rounds written out (the linear layers of
 * hash/poseidon2_rounds.inc), the state in vector registers, one row per
 * vector lane, and the weighted sum kept lazily in 64-bit lanes.  It is a
 * prover's fast path only: the expressions stay the definition, and the
 * verifier evaluates them.
 */
#ifndef ZK_POSEIDON2_CONSTRAINTS_H
#define ZK_POSEIDON2_CONSTRAINTS_H

#include "common/zk_common.h"

/* cffi-begin */
/* The columns the kernel reads: the permutation's 16 inputs, then its
 * ZK_POSEIDON2_AIR_COLUMNS registers in the AIR's order. */
#define ZK_POSEIDON2_CONSTRAINT_COLUMNS 290

/* acc[4r .. 4r+4) += sum_j weights[4j .. 4j+4) * C_j(row r) for r < rows,
 * j < ZK_POSEIDON2_AIR_COLUMNS: C_j the block's constraint j on row r
 * (prover/poseidon2_air.py, Poseidon2Columns.transitions, in its order),
 * whose inputs x_i are cols[i] and registers cols[16 + j], column c's value
 * at row r being cols[c][r * strides[c]] (a column of a row-major matrix
 * read where it lies, as zk_vm_run reads its inputs).  weights (274, 4)
 * and acc (rows, 4) are extension elements, Montgomery form; every input
 * word and weight must be canonical, in [0, p) (not checked: the callers'
 * LDE values and encoded weights are).  Returns 0, or -2 if scratch memory
 * could not be allocated (then acc is unchanged). */
int zk_poseidon2_constraints(uint32_t **cols, const size_t *strides, const uint32_t *weights, uint32_t *acc,
                             size_t rows);
/* cffi-end */

#endif
