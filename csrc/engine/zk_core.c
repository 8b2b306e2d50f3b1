/*
 * zk_core.c — zk_core.h over zk_engine.h: a book that owns its state table,
 * its private index and a trade buffer, one operation at a time.  No rule
 * lives here: every operation goes through zk_book_run (engine_core.inc).
 */
#include "engine/zk_core.h"

#include <errno.h>
#include <stdlib.h>

#include "engine/zk_engine.h"

struct zk_core {
    uint32_t *cells;     /* ZK_BOOK_HEADER + ZK_BOOK_COLUMNS * capacity */
    uint32_t *level_end; /* capacity */
    zk_trade *trades;    /* capacity: an operation trades at most once per resting order */
    size_t n_cells;
    uint32_t capacity;
};

static uint32_t log2_of(uint32_t capacity) {
    uint32_t k = 0;
    while ((1u << k) < capacity) k++;
    return k;
}

zk_core *zk_core_new(uint32_t capacity, uint32_t symbol) {
    if (capacity < ZK_CORE_MIN_CAPACITY || capacity > ZK_CORE_MAX_CAPACITY ||
        (capacity & (capacity - 1))) {
        errno = EINVAL;
        return NULL;
    }
    zk_core *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->capacity = capacity;
    c->n_cells = ZK_BOOK_HEADER + (size_t)ZK_BOOK_COLUMNS * capacity;
    c->cells = calloc(c->n_cells, sizeof *c->cells);
    c->level_end = calloc(capacity, sizeof *c->level_end);
    c->trades = calloc(capacity, sizeof *c->trades);
    if (!c->cells || !c->level_end || !c->trades) {
        zk_core_free(c);
        errno = ENOMEM;
        return NULL;
    }
    if (zk_book_init(c->cells, log2_of(capacity), symbol, 1) != 0) {
        zk_core_free(c);
        errno = EINVAL;
        return NULL;
    }
    return c;
}

void zk_core_free(zk_core *c) {
    if (!c) return;
    free(c->cells);
    free(c->level_end);
    free(c->trades);
    free(c);
}

int zk_core_apply(zk_core *c, zk_op *op, const zk_trade **trades) {
    zk_run run;
    int rc = zk_book_run(c->cells, c->level_end, op, 1, c->trades, c->capacity, &run);
    /* TRADES_FULL cannot happen: the buffer holds `capacity` trades and at
     * most capacity - 1 orders rest. */
    if (rc != ZK_RUN_OK) return rc;
    if (trades) *trades = c->trades;
    return ZK_CORE_OK;
}

static uint64_t get64(const uint32_t *cells, int lo) {
    return (uint64_t)cells[lo] | (uint64_t)cells[lo + 1] << 32;
}

uint64_t zk_core_next_seq(const zk_core *c) { return get64(c->cells, ZK_HDR_NEXT_SEQ_LO); }
uint64_t zk_core_last_ts(const zk_core *c) { return get64(c->cells, ZK_HDR_LAST_TS_LO); }
uint32_t zk_core_symbol(const zk_core *c) { return c->cells[ZK_HDR_SYMBOL]; }
uint32_t zk_core_capacity(const zk_core *c) { return c->capacity; }
uint32_t zk_core_resting(const zk_core *c) { return c->cells[ZK_HDR_LIVE]; }

static const uint32_t *column(const zk_core *c, int col) {
    return c->cells + ZK_BOOK_HEADER + (size_t)col * c->capacity;
}

static void info_of(const zk_core *c, uint32_t s, zk_core_order_info *out) {
    if (!out) return;
    out->price = column(c, ZK_COL_PRICE)[s];
    out->qty = column(c, ZK_COL_QTY)[s];
    out->account = column(c, ZK_COL_ACCOUNT)[s];
    out->side = (uint8_t)column(c, ZK_COL_SIDE)[s];
}

int zk_core_order(const zk_core *c, uint64_t handle, zk_core_order_info *out) {
    uint64_t slot = handle & 0xFFFFFFFFu, gen = handle >> 32;
    if (slot == 0 || slot >= c->capacity) return 0;
    if (column(c, ZK_COL_GEN)[slot] != gen || column(c, ZK_COL_QTY)[slot] == 0) return 0;
    info_of(c, (uint32_t)slot, out);
    return 1;
}

uint64_t zk_core_best(const zk_core *c, uint8_t side, zk_core_order_info *out) {
    if (side != ZK_SIDE_BUY && side != ZK_SIDE_SELL) return 0;
    uint32_t s = c->cells[side == ZK_SIDE_BUY ? ZK_HDR_BEST_BID : ZK_HDR_BEST_ASK];
    if (s == 0) return 0;
    info_of(c, s, out);
    return (uint64_t)column(c, ZK_COL_GEN)[s] << 32 | s;
}

const uint32_t *zk_core_cells(const zk_core *c, size_t *n_cells) {
    if (n_cells) *n_cells = c->n_cells;
    return c->cells;
}
