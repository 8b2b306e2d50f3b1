/*
 * zk_record_checks.h — the columns of zk mode's record-check block from the
 * operation records, in one pass over them (prover/orderbook/
 * zk_record_checks.py `RecordChecks.write` calls this; `columns_of` there is
 * the readable definition, column by column in numpy, and a test holds the
 * two equal on random and adversarial records at every shape).
 *
 * The builder computes, for each operation, the named values listed by
 * zk_record_checks_value_name: the record's fields the sub-fields come
 * from (ts_ns, price, qty, slot = handle bits 0-31, gen = handle bits
 * 32-63, flags, side, kind, account, reason, status) and every value the
 * block derives (rc_k1 .. rc_lts4 without the prefix; kcmp .. tsd, the
 * comparison values).  Which column holds which bits of which value is the
 * caller's plan: column j of the block is
 *
 *     (value[columns[j].value] >> columns[j].lo) & (2^columns[j].width - 1),
 *     reduced mod p (width 64: the whole value)
 *
 * so the plan, not the builder, carries the lane layout's pieces (which
 * depend on T) and the block's column order (both Python's:
 * RecordChecks.columns and lane_layout).  The five inverses (fhi, pinv,
 * qinv, h1inv, hinv: x^-1 or 0 for x = 0) are whole values only.
 *
 * Every value of an operation row is computed as columns_of computes it;
 * the rows after the last operation are 0 but for lts (the last
 * operation's timestamp pieces, constant down the trace).  The same pass
 * counts each range lookup (column, shift) of the operation rows into
 * `counts` (T values: RecordChecks.range_counts).
 *
 * The records are untrusted.  The builder refuses, by the index of an
 * operation, a record outside the encoding's domain (zk_encoding:
 * status > 7, reason > 15, filled or trades > ZK_MAX_QTY) and a record no
 * honest witness exists for (a timestamp going back, a field rejection's
 * outcome that is not REJECTED with its reason and nothing filled, a
 * rejected new order with a handle, a live new order's handle outside the
 * book), before anything is read past it; the caller names the fault by
 * running the readable definition on a refusal.
 */
#ifndef ZK_RECORD_CHECKS_H
#define ZK_RECORD_CHECKS_H

#include "common/zk_common.h"

/* cffi-begin */
/* A column of the block: bits lo .. lo + width - 1 of named value `value`
 * (an index of zk_record_checks_value_name), 1 <= width <= 64. */
typedef struct zk_rc_column {
    int32_t value;
    int32_t lo;
    int32_t width;
} zk_rc_column;

/* A range lookup: column `column`'s value + `shift`, in [0, T). */
typedef struct zk_rc_lookup {
    int32_t column;
    int32_t shift;
} zk_rc_lookup;

/* Return codes of zk_record_checks_fill besides -1 (success) and an
 * operation's index (refused). */
#define ZK_RC_NO_MEMORY -2
#define ZK_RC_BAD_PLAN -3    /* a column or lookup the builder cannot write or count (see below) */

/* Entries of the op tuple's code by record kind 0 .. 7 (codes[kind]). */
#define ZK_RC_KINDS 8

/* The named values and their names. */
size_t zk_record_checks_value_count(void);
const char *zk_record_checks_value_name(size_t i);

/* Write the block's `n_columns` columns of `rows` rows into `out` (row
 * r's at out + r * stride, Montgomery form, every value written: no
 * clearing needed), from `n` zk_op records (1 <= n <= rows: operation i
 * on row i), the pre-state's last timestamp `prev_ts` (0 when the batch
 * resumed its stream) and a book of 2^log2_capacity slots (1 .. 30);
 * `codes`: the op tuple's code of each record kind (ZK_RC_KINDS entries, 0
 * for a kind no operation has).  `table` is the range table's size T (its
 * values are [0, T)), which sets the pieces; `counts` (T int64,
 * overwritten): each table value's lookups.  Returns -1, an operation's
 * index (refused: the module comment), ZK_RC_NO_MEMORY, or ZK_RC_BAD_PLAN
 * for a shape or plan out of range: rows or T not a power of two, n
 * outside [1, rows], a value index out of range, a width outside 1 .. 64
 * or lo + width > 64, an inverse taken in part, a lookup of a column wider
 * than log2 T or whose value + shift could reach T. */
int64_t zk_record_checks_fill(uint32_t *out, size_t stride, size_t rows, size_t table, const void *records,
                              size_t n, uint64_t prev_ts, uint32_t log2_capacity, const int32_t *codes,
                              const zk_rc_column *columns, size_t n_columns, const zk_rc_lookup *lookups,
                              size_t n_lookups, int64_t *counts);
/* cffi-end */

#endif
