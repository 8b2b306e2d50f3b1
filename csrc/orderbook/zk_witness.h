/*
 * zk_witness.h — the exec columns of OrderBookAir from the engine's step
 * records, in one pass over the steps (prover/orderbook/witness.py `build`
 * calls this; `build_reference` there is the readable definition, row by
 * row in Python, and a test holds the two equal on every column).
 *
 * Output: a row-major matrix of `n_cols` field elements per row (the order
 * of air.exec_columns), `trace_length` rows, in Montgomery form — the
 * layout and form the prover commits, so nothing is transposed or encoded
 * afterwards.  Which column each named value goes to is the caller's `pos`
 * table: the names are C's (zk_witness_column_name), the order is Python's
 * (exec_columns), and the builder never restates it.
 *
 * Per-operation context comes in as ZK_WCTX_COUNT int64 arrays of `n_ops`
 * (air.classify_all's fields, kind as an index into air.KINDS).  The steps
 * are untrusted: the builder refuses, by the index of the first such step,
 * everything engine/trace.py check_steps refuses (an operation index out
 * of range or going back, a kind that is not a step kind, a mask over four
 * bits, a reserved field set, an address outside the book's `capacity`
 * words, hence outside the `book` domain's `n_addresses` rows, a header
 * access not at address 0; no steps at all, as step 0), before reading
 * past anything, so a caller need not run check_steps first: it runs it on
 * a refusal, to name the fault.
 *
 * The same pass writes each address's last write time into `pts` and the
 * state table the steps leave (engine/trace.py `written`: each address's
 * last access's new word) into `post`, which the caller fills with the
 * table before the steps.
 */
#ifndef ZK_WITNESS_H
#define ZK_WITNESS_H

#include "common/zk_common.h"

/* cffi-begin */
/* Rows of the per-operation context array (each n_ops int64 values). */
#define ZK_WCTX_KIND 0     /* index into air.KINDS: k_lim k_ioc k_fok k_post k_can k_red k_z */
#define ZK_WCTX_BUY 1
#define ZK_WCTX_LIM 2
#define ZK_WCTX_QTY 3
#define ZK_WCTX_HSLOT 4
#define ZK_WCTX_HGEN 5
#define ZK_WCTX_ALO 6
#define ZK_WCTX_AHI 7
#define ZK_WCTX_CROSS 8    /* 1 if the operation's record says WOULD_CROSS */
#define ZK_WCTX_COUNT 9

/* Return codes of zk_witness_build besides -1 (success). */
#define ZK_WIT_NO_MEMORY -2
#define ZK_WIT_BAD_LAYOUT -3   /* a position outside [0, n_cols), too many limbs or capacity > n_addresses */
#define ZK_WIT_TOO_LONG -4     /* the steps take more than trace_length - 1 rows */

/* The named values the builder writes, and their names (exec_columns'). */
size_t zk_witness_column_count(void);
const char *zk_witness_column_name(size_t i);

/* Fill `out` (trace_length x n_cols uint32, row-major, uninitialised on
 * entry: each row is cleared as it is started) with every value in Montgomery
 * form, as the prover commits it.  pos[i] is the column of named value i,
 * or -1 for a limb column beyond `limbs` (the only names a layout may
 * lack).  limb_bits = log2(trace_length), limbs = the limbs per comparison
 * (air.limbs_for).  `steps`: n_steps zk_step records.  `pts`: n_addresses
 * uint32 (the `book` domain's rows, S >= capacity), each address's last
 * write time (0: not written by the batch), canonical.  `post`: capacity x
 * 8 uint32, the table before the steps on entry, after them on success.
 * Returns -1 on success, a ZK_WIT_* code (ZK_WIT_BAD_LAYOUT also for
 * capacity > n_addresses), or the index of the first step the builder
 * refuses. */
int64_t zk_witness_build(uint32_t *out, size_t n_cols, size_t trace_length, const int32_t *pos,
                         uint32_t limb_bits, uint32_t limbs, const void *steps, size_t n_steps,
                         const int64_t *ctx, size_t n_ops, uint32_t *pts, size_t n_addresses,
                         uint32_t *post, size_t capacity);
/* cffi-end */

#endif
