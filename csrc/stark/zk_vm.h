/*
 * zk_vm.h — a small register machine that evaluates constraint expressions
 * over the LDE block by block (prover/constraint_program.py compiles them).
 *
 * Evaluating a DAG node by node over whole columns makes one pass over
 * memory per node: for 2^19-row columns every node streams megabytes.  Here
 * the whole program runs on one block of ZK_VM_BLOCK rows at a time, so the
 * registers (each one block of base or extension values) stay in L1/L2 and
 * only the inputs and the accumulators touch memory.
 *
 * Registers hold a block of base elements (n words) or extension elements
 * (4n words), Montgomery form; the compiler knows which and picks typed
 * instructions.  Registers [0, n_base_regs) are base registers (one block of
 * words each), the rest extension registers (four blocks): most values are
 * base, and the smaller register file stays in L2.  Results are accumulated:
 * acc[k] += value * constant, so the random linear combination of the
 * constraints happens in the same pass.
 */
#ifndef ZK_VM_H
#define ZK_VM_H

#include "common/zk_common.h"

/* cffi-begin */
#define ZK_VM_BLOCK 256

/* opcodes; a, b are registers unless said otherwise */
#define ZK_VM_LOAD_B 1   /* dst = base column a, rows shifted by `step` if b */
#define ZK_VM_LOAD_E 2   /* dst = extension column a, shifted if b */
#define ZK_VM_CONST_B 3  /* dst = constant a (its first word) in every row */
#define ZK_VM_CONST_E 4  /* dst = constant a in every row */
#define ZK_VM_ADD_BB 5
#define ZK_VM_SUB_BB 6
#define ZK_VM_MUL_BB 7
#define ZK_VM_NEG_B 8
#define ZK_VM_ADD_EE 9
#define ZK_VM_SUB_EE 10
#define ZK_VM_MUL_EE 11
#define ZK_VM_NEG_E 12
#define ZK_VM_ADD_EB 13  /* ext + base */
#define ZK_VM_SUB_EB 14  /* ext - base */
#define ZK_VM_SUB_BE 15  /* base - ext */
#define ZK_VM_MUL_EB 16  /* ext * base */
#define ZK_VM_ACC_B 17   /* acc[dst] += base register a * constant b */
#define ZK_VM_ACC_E 18   /* acc[dst] += ext register a * constant b */
#define ZK_VM_LIN_E 19   /* dst (ext) = constant a + sum over the b TERMs that follow of
                          * constant * base register: a linear form, reduced once */
#define ZK_VM_TERM 20    /* one term of the LIN_E before it: base register a times
                          * constant b (dst unused); nowhere else */
#define ZK_VM_ADD_BC 21  /* dst = base register a + constant b (its first word) */
#define ZK_VM_SUB_BC 22  /* dst = a - constant b */
#define ZK_VM_SUB_CB 23  /* dst = constant b - a */
#define ZK_VM_MUL_BC 24  /* dst = a * constant b */

typedef struct zk_vm_insn {
    uint32_t op, dst, a, b;
} zk_vm_insn;

/* Run `code` over rows [0, rows).  Input i is a column of `rows` values:
 * value r of a base input at base_cols[i][r * base_stride[i]], of an
 * extension input the 4 words at ext_cols[i] + 4 r ext_stride[i] (strides in
 * values, so a column of a row-major matrix is read where it lies, with no
 * transposed copy).  A shifted load reads `step` rows further on, wrapping
 * past the last row to the first (step < rows).  consts is (n, 4) Montgomery.
 * Every input word and constant word must be canonical, in [0, p): the
 * vector paths' ACC_B adds two products before each fold
 * (constraint_vm_vec.inc), which stays below 2^64 only for words below p,
 * so a larger word gives a different result on each path; it is not
 * checked (every caller passes field elements: LDE outputs, encoded
 * constants and weights, run_matrix's encoded values).
 * accs[k] is an (rows, 4) extension column, added into.  Returns 0, -1 for
 * a malformed program (an opcode, register or index out of range, or a
 * register of the wrong kind; checked before anything runs, as is
 * step < rows) or -2 if scratch memory could not be allocated. */
int zk_vm_run(const zk_vm_insn *code, size_t n_code, size_t n_regs, size_t n_base_regs,
              uint32_t **base_cols, const size_t *base_stride, size_t n_base,
              uint32_t **ext_cols, const size_t *ext_stride, size_t n_ext,
              const uint32_t *consts, size_t n_consts, uint32_t **accs, size_t n_accs,
              size_t rows, size_t step);
/* cffi-end */

#endif
