/*
 * zk_core.h — the provable matching core, for a venue's engine to embed.
 *
 * This is the public header an engine includes (docs/INTEGRATION.md).  It is
 * a thin, owning wrapper around the one matching engine of this repository
 * (zk_engine.h: engine.c and engine_core.inc, the code whose every step a
 * batch proof checks), so an engine that matches through it computes exactly
 * what the sidecar's shadow book will compute: the same outcomes, the same
 * trades and, above all, the same handles (slot and generation from the
 * book's free list), which CANCEL and REDUCE records must name.
 *
 * Build: compile csrc/engine/engine.c and csrc/engine/zk_core.c with -Icsrc
 * (C11), or link build/libzkcore.a (`make examples` builds it).  C++ and
 * Rust link the same library: the functions are extern "C", the structs are
 * those of formats/zk_records.h.
 *
 * Contract, per book (one book per symbol; one thread at a time per book):
 *
 *   - capacity: order slots, a power of two; it must be the daemon's
 *     `book.capacity`, since handles are slot numbers of a book of that size.
 *   - seq: the first operation carries 1, then +1 per operation, rejected
 *     operations included (zk_core_next_seq tells the next one).
 *   - ts_ns: any clock, never decreasing within the book (zk_core_last_ts).
 *   - symbol: the book's own.
 *
 * zk_core_apply checks those three first; a record that breaks one changes
 * nothing and is not a record to publish (ZK_CORE_BAD_SEQ/TS/SYMBOL).
 * Otherwise it matches the operation, writes the outcome fields (handle for
 * a new order, filled, trades, status, reason), sets ZK_FLAG_CLAIMED, and the
 * record is exactly what the engine publishes on the ops ring: the claim the
 * sidecar re-executes and proves.  An order the rules refuse (bad price,
 * stale handle, post-only that would cross, ...) is still applied: status
 * REJECTED with a reason, its seq consumed, and it must be published too.
 */
#ifndef ZK_CORE_H
#define ZK_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "formats/zk_records.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Results of zk_core_apply (the ZK_RUN_* of zk_engine.h for the same cases). */
#define ZK_CORE_OK 0
#define ZK_CORE_BAD_SEQ 2    /* op->seq is not zk_core_next_seq(): nothing changed */
#define ZK_CORE_BAD_TS 3     /* op->ts_ns is below zk_core_last_ts(): nothing changed */
#define ZK_CORE_BAD_SYMBOL 4 /* op->symbol is not the book's: nothing changed */

/* Capacity bounds (slots; a book of N slots holds N - 1 orders). */
#define ZK_CORE_MIN_CAPACITY 2u
#define ZK_CORE_MAX_CAPACITY (1u << 24)

typedef struct zk_core zk_core; /* one book; opaque */

/* A live order, as zk_core_order reports it. */
typedef struct zk_core_order_info {
    uint32_t price;   /* ticks */
    uint32_t qty;     /* remaining lots */
    uint32_t account;
    uint8_t side;     /* ZK_SIDE_* */
} zk_core_order_info;

/* A new, empty book of `capacity` slots (a power of two, 2 .. 2^24) for
 * `symbol`, expecting seq 1 first.  NULL if the capacity is not one of those
 * (errno EINVAL) or memory is short (ENOMEM).  About 80 bytes per slot (the
 * state table, the private index and a trade buffer). */
zk_core *zk_core_new(uint32_t capacity, uint32_t symbol);

/* Free the book (NULL is allowed). */
void zk_core_free(zk_core *core);

/* Match one operation (see the contract above).  On ZK_CORE_OK the outcome
 * fields of *op are written and ZK_FLAG_CLAIMED is set, and, if trades is not
 * NULL, *trades points at the op->trades trade records it produced (the
 * core's own buffer, valid until the next call on this book). */
int zk_core_apply(zk_core *core, zk_op *op, const zk_trade **trades);

/* The sequence number the next operation must carry (1 for a new book). */
uint64_t zk_core_next_seq(const zk_core *core);

/* The last operation's timestamp (0 for a new book). */
uint64_t zk_core_last_ts(const zk_core *core);

uint32_t zk_core_symbol(const zk_core *core);
uint32_t zk_core_capacity(const zk_core *core);

/* Resting orders. */
uint32_t zk_core_resting(const zk_core *core);

/* 1 and *out filled (out may be NULL) if `handle` names a live order; 0 if
 * it never did or the order has left the book (filled, cancelled).  A CANCEL
 * of a handle for which this says 0 is REJECTED (UNKNOWN_ or STALE_HANDLE):
 * valid to publish, but no use. */
int zk_core_order(const zk_core *core, uint64_t handle, zk_core_order_info *out);

/* The best order of `side` (ZK_SIDE_BUY: highest bid, ZK_SIDE_SELL: lowest
 * ask): its handle and, if out is not NULL, its fields; 0 if the side is
 * empty. */
uint64_t zk_core_best(const zk_core *core, uint8_t side, zk_core_order_info *out);

/* The state table (docs/MATCHING.md, "State table"): *n_cells u32 cells, the
 * table whose Merkle root a completion's post_state_root commits.  Read-only;
 * valid until the next zk_core_apply or zk_core_free. */
const uint32_t *zk_core_cells(const zk_core *core, size_t *n_cells);

#ifdef __cplusplus
}
#endif

#endif
