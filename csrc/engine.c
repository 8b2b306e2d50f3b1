/*
 * engine.c — the matching engine of zk_engine.h.
 *
 * Every rule lives here once; docs/MATCHING.md states them and
 * engine/reference.py re-implements them plainly for the differential tests.
 * The code reads and writes the state only through the column pointers of
 * `book`, cell by cell, so a tracing build can later log every access.
 */
#include "zk_engine.h"

typedef struct {
    uint32_t *hdr;
    uint32_t *price, *qty, *side, *account, *prev, *next, *gen;
    uint32_t *level_end; /* private index, see zk_engine.h */
    uint32_t cap;
} book;

static book open_book(uint32_t *cells, uint32_t *level_end) {
    uint32_t cap = 1u << cells[ZK_HDR_LOG2_CAPACITY];
    uint32_t *col = cells + ZK_BOOK_HEADER;
    book b = {
        .hdr = cells,
        .price = col + ZK_COL_PRICE * cap,
        .qty = col + ZK_COL_QTY * cap,
        .side = col + ZK_COL_SIDE * cap,
        .account = col + ZK_COL_ACCOUNT * cap,
        .prev = col + ZK_COL_PREV * cap,
        .next = col + ZK_COL_NEXT * cap,
        .gen = col + ZK_COL_GEN * cap,
        .level_end = level_end,
        .cap = cap,
    };
    return b;
}

static inline uint64_t get64(const uint32_t *hdr, int lo) {
    return (uint64_t)hdr[lo] | ((uint64_t)hdr[lo + 1] << 32);
}

static inline void put64(uint32_t *hdr, int lo, uint64_t v) {
    hdr[lo] = (uint32_t)v;
    hdr[lo + 1] = (uint32_t)(v >> 32);
}

/* Header cell of the first order of `side`; the last one follows it. */
static inline int head_cell(uint32_t side) {
    return side == ZK_SIDE_BUY ? ZK_HDR_BEST_BID : ZK_HDR_BEST_ASK;
}

/* Price a is ahead of price b in the queue of `side`. */
static inline int ahead(uint32_t side, uint32_t a, uint32_t b) {
    return side == ZK_SIDE_BUY ? a > b : a < b;
}

/* A taker of `side` with this limit may trade with a maker at maker_price. */
static inline int crosses(uint32_t side, uint32_t limit, uint32_t maker_price) {
    return side == ZK_SIDE_BUY ? maker_price <= limit : maker_price >= limit;
}

static inline uint64_t handle_of(const book *b, uint32_t s) {
    return ((uint64_t)b->gen[s] << 32) | s;
}

/* ------------------------------------------------------------ the lists -- */

static void free_slot(book *b, uint32_t s) {
    b->price[s] = 0;
    b->qty[s] = 0;
    b->side[s] = 0;
    b->account[s] = 0;
    b->prev[s] = 0;
    b->next[s] = b->hdr[ZK_HDR_FREE_HEAD];
    b->gen[s] = (b->gen[s] + 1) & ZK_GEN_MASK;
    b->hdr[ZK_HDR_FREE_HEAD] = s;
    b->hdr[ZK_HDR_LIVE] -= 1;
}

/* Take s out of its side's list and free it. */
static void remove_order(book *b, uint32_t s) {
    uint32_t p = b->prev[s], n = b->next[s], px = b->price[s];
    int h = head_cell(b->side[s]);
    int first = p == 0 || b->price[p] != px;
    int last = n == 0 || b->price[n] != px;
    /* keep level_end pointing first <-> last for the level that remains */
    if (first && !last) {
        uint32_t end = b->level_end[s];
        b->level_end[n] = end;
        b->level_end[end] = n;
    } else if (last && !first) {
        uint32_t start = b->level_end[s];
        b->level_end[p] = start;
        b->level_end[start] = p;
    }
    if (p) b->next[p] = n; else b->hdr[h] = n;
    if (n) b->prev[n] = p; else b->hdr[h + 1] = p;
    free_slot(b, s);
}

/* Put a new order on the book, behind every order at its price or better.
 * The caller has checked that a slot is free. */
static uint32_t rest_order(book *b, uint32_t side, uint32_t px, uint32_t qty, uint32_t account) {
    uint32_t s = b->hdr[ZK_HDR_FREE_HEAD];
    b->hdr[ZK_HDR_FREE_HEAD] = b->next[s];
    b->hdr[ZK_HDR_LIVE] += 1;
    b->price[s] = px;
    b->qty[s] = qty;
    b->side[s] = side;
    b->account[s] = account;

    int h = head_cell(side);
    uint32_t last = b->hdr[h + 1];
    uint32_t after, before; /* s goes between these two (0: list end) */
    if (last == 0) {
        after = before = 0;
        b->level_end[s] = s;
    } else if (!ahead(side, px, b->price[last])) {
        /* at or behind the worst price: append (the common case deep in a book) */
        after = last;
        before = 0;
        if (b->price[last] == px) {
            uint32_t start = b->level_end[last];
            b->level_end[start] = s;
            b->level_end[s] = start;
        } else {
            b->level_end[s] = s;
        }
    } else {
        /* skip whole levels ahead of px; the worst order is behind px, so the
         * walk stops at a level before the end of the list */
        uint32_t level = b->hdr[h];
        after = 0;
        while (ahead(side, b->price[level], px)) {
            after = b->level_end[level];
            level = b->next[after];
        }
        if (b->price[level] == px) {
            uint32_t end = b->level_end[level];
            after = end;
            before = b->next[end];
            b->level_end[level] = s;
            b->level_end[s] = level;
        } else {
            before = level;
            b->level_end[s] = s;
        }
    }
    b->prev[s] = after;
    b->next[s] = before;
    if (after) b->next[after] = s; else b->hdr[h] = s;
    if (before) b->prev[before] = s; else b->hdr[h + 1] = s;
    return s;
}

/* ------------------------------------------------------------ matching -- */

/* Crossing quantity available to a taker, counted up to `want`. */
static uint32_t crossing_qty(const book *b, uint32_t side, uint32_t limit, uint32_t want) {
    uint32_t opposite = side == ZK_SIDE_BUY ? ZK_SIDE_SELL : ZK_SIDE_BUY;
    uint64_t sum = 0;
    for (uint32_t m = b->hdr[head_cell(opposite)]; m && sum < want; m = b->next[m]) {
        if (!crosses(side, limit, b->price[m])) break;
        sum += b->qty[m];
    }
    return sum < want ? (uint32_t)sum : want;
}

/* Trade against the head of the opposite list while it crosses; returns the
 * lots filled.  Each fill is min(taker remaining, maker remaining) at the
 * maker's price; a filled maker leaves, a partial one keeps its place. */
static uint32_t take(book *b, zk_op *op, uint32_t limit, zk_trade *out, size_t *ntrades) {
    uint32_t side = op->side;
    int h = head_cell(side == ZK_SIDE_BUY ? ZK_SIDE_SELL : ZK_SIDE_BUY);
    uint32_t want = op->qty, remaining = want;
    size_t t = *ntrades;
    while (remaining) {
        uint32_t m = b->hdr[h];
        if (m == 0 || !crosses(side, limit, b->price[m])) break;
        uint32_t fill = remaining < b->qty[m] ? remaining : b->qty[m];
        zk_trade *tr = &out[t++];
        tr->taker_seq = op->seq;
        tr->maker_handle = handle_of(b, m);
        tr->taker_handle = 0;
        tr->price = b->price[m];
        tr->qty = fill;
        tr->maker_account = b->account[m];
        tr->taker_account = op->account;
        tr->symbol = op->symbol;
        tr->taker_side = (uint8_t)side;
        tr->reserved[0] = tr->reserved[1] = tr->reserved[2] = 0;
        remaining -= fill;
        b->qty[m] -= fill;
        if (b->qty[m] == 0) remove_order(b, m);
    }
    op->trades = (uint32_t)(t - *ntrades);
    *ntrades = t;
    return want - remaining;
}

static inline int valid_amount(uint32_t v) {
    return v >= 1 && v <= ZK_MAX_QTY;
}

static void reject(zk_op *op, uint8_t reason) {
    op->status = ZK_STATUS_REJECTED;
    op->reason = reason;
}

static void new_order(book *b, zk_op *op, zk_trade *trades, size_t *ntrades) {
    uint32_t side = op->side;
    op->handle = 0; /* assigned below only if the order rests */
    if (side != ZK_SIDE_BUY && side != ZK_SIDE_SELL) { reject(op, ZK_REASON_BAD_SIDE); return; }
    int market = op->kind == ZK_KIND_MARKET;
    if (!market && !valid_amount(op->price)) { reject(op, ZK_REASON_BAD_PRICE); return; }
    if (!valid_amount(op->qty)) { reject(op, ZK_REASON_BAD_QTY); return; }
    uint32_t limit = market ? (side == ZK_SIDE_BUY ? ZK_MAX_PRICE : 1) : op->price;

    if (op->kind == ZK_KIND_POST_ONLY) {
        uint32_t m = b->hdr[head_cell(side == ZK_SIDE_BUY ? ZK_SIDE_SELL : ZK_SIDE_BUY)];
        if (m && crosses(side, limit, b->price[m])) { reject(op, ZK_REASON_WOULD_CROSS); return; }
    }
    if (op->kind == ZK_KIND_FOK && crossing_qty(b, side, limit, op->qty) < op->qty) {
        reject(op, ZK_REASON_FOK_UNFILLABLE);
        return;
    }
    /* a post-only order cannot trade, so a full book refuses it outright */
    if (op->kind == ZK_KIND_POST_ONLY && b->hdr[ZK_HDR_FREE_HEAD] == 0) {
        reject(op, ZK_REASON_BOOK_FULL);
        return;
    }
    int rests = op->kind == ZK_KIND_LIMIT || op->kind == ZK_KIND_POST_ONLY;

    size_t first_trade = *ntrades;
    op->filled = take(b, op, limit, trades, ntrades);
    uint32_t remaining = op->qty - op->filled;
    if (remaining == 0) {
        op->status = ZK_STATUS_FILLED;
    } else if (!rests) {
        op->status = ZK_STATUS_EXPIRED;
    } else if (b->hdr[ZK_HDR_FREE_HEAD] == 0) {
        /* no room for the remainder.  Nothing traded: a remainder means every
         * crossing maker was consumed, and consuming one frees its slot. */
        reject(op, ZK_REASON_BOOK_FULL);
    } else {
        uint32_t s = rest_order(b, side, op->price, remaining, op->account);
        op->handle = handle_of(b, s);
        for (size_t t = first_trade; t < *ntrades; t++) trades[t].taker_handle = op->handle;
        op->status = ZK_STATUS_RESTED;
    }
}

/* The live order a handle names, or 0 after rejecting the operation. */
static uint32_t live_slot(const book *b, zk_op *op) {
    uint64_t h = op->handle;
    uint32_t s = (uint32_t)h;
    uint64_t g = h >> 32;
    if (s == 0 || s >= b->cap || g > ZK_GEN_MASK) {
        reject(op, ZK_REASON_UNKNOWN_HANDLE);
        return 0;
    }
    if (b->gen[s] != g || b->qty[s] == 0) {
        reject(op, ZK_REASON_STALE_HANDLE);
        return 0;
    }
    return s;
}

static void cancel_or_reduce(book *b, zk_op *op) {
    if (op->kind == ZK_KIND_REDUCE && !valid_amount(op->qty)) { reject(op, ZK_REASON_BAD_QTY); return; }
    uint32_t s = live_slot(b, op);
    if (s == 0) return;
    if (op->kind == ZK_KIND_REDUCE && op->qty < b->qty[s]) {
        b->qty[s] -= op->qty; /* same slot, same links: priority kept */
        op->status = ZK_STATUS_REDUCED;
    } else {
        remove_order(b, s);
        op->status = ZK_STATUS_CANCELLED;
    }
}

static void apply(book *b, zk_op *op, zk_trade *trades, size_t *ntrades) {
    op->filled = 0;
    op->trades = 0;
    op->status = 0;
    op->reason = ZK_REASON_NONE;
    op->reserved = 0;
    if (op->flags & ~ZK_FLAGS_KNOWN) {
        reject(op, ZK_REASON_BAD_FLAGS);
    } else {
        switch (op->kind) {
        case ZK_KIND_LIMIT:
        case ZK_KIND_IOC:
        case ZK_KIND_MARKET:
        case ZK_KIND_FOK:
        case ZK_KIND_POST_ONLY:
            new_order(b, op, trades, ntrades);
            break;
        case ZK_KIND_CANCEL:
        case ZK_KIND_REDUCE:
            cancel_or_reduce(b, op);
            break;
        default:
            reject(op, ZK_REASON_BAD_KIND);
        }
    }
    op->flags |= ZK_FLAG_CLAIMED;
}

/* ------------------------------------------------------------ public API -- */

int zk_book_init(uint32_t *cells, uint32_t log2_capacity, uint32_t symbol, uint64_t first_seq) {
    if (log2_capacity < ZK_MIN_LOG2_CAPACITY || log2_capacity > ZK_MAX_LOG2_CAPACITY) return -1;
    uint32_t cap = 1u << log2_capacity;
    size_t total = ZK_BOOK_HEADER + (size_t)ZK_BOOK_COLUMNS * cap;
    for (size_t i = 0; i < total; i++) cells[i] = 0;
    cells[ZK_HDR_SYMBOL] = symbol;
    cells[ZK_HDR_LOG2_CAPACITY] = log2_capacity;
    put64(cells, ZK_HDR_NEXT_SEQ_LO, first_seq);
    uint32_t *next = cells + ZK_BOOK_HEADER + ZK_COL_NEXT * cap;
    for (uint32_t s = 1; s + 1 < cap; s++) next[s] = s + 1;
    cells[ZK_HDR_FREE_HEAD] = cap > 1 ? 1 : 0;
    return 0;
}

int zk_book_run(uint32_t *cells, uint32_t *level_end, zk_op *ops, size_t n, zk_trade *trades,
                size_t trade_cap, zk_run *run) {
    book b = open_book(cells, level_end);
    uint64_t seq = get64(b.hdr, ZK_HDR_NEXT_SEQ_LO);
    uint64_t ts = get64(b.hdr, ZK_HDR_LAST_TS_LO);
    run->trades = 0;
    /* the stream first, so that a bad record changes nothing */
    for (size_t i = 0; i < n; i++) {
        int err = ops[i].seq != seq + i ? ZK_RUN_BAD_SEQ
                  : ops[i].ts_ns < ts   ? ZK_RUN_BAD_TS
                  : ops[i].symbol != b.hdr[ZK_HDR_SYMBOL] ? ZK_RUN_BAD_SYMBOL
                                                          : ZK_RUN_OK;
        if (err) {
            run->index = i;
            return err;
        }
        ts = ops[i].ts_ns;
    }
    size_t ntrades = 0, i = 0;
    int result = ZK_RUN_OK;
    for (; i < n; i++) {
        /* one operation makes at most one trade per resting order */
        if (trade_cap - ntrades < b.hdr[ZK_HDR_LIVE]) {
            result = ZK_RUN_TRADES_FULL;
            break;
        }
        apply(&b, &ops[i], trades, &ntrades);
    }
    if (i) {
        put64(b.hdr, ZK_HDR_NEXT_SEQ_LO, seq + i);
        put64(b.hdr, ZK_HDR_LAST_TS_LO, ops[i - 1].ts_ns);
    }
    run->index = i;
    run->trades = ntrades;
    return result;
}

void zk_book_rebuild_index(const uint32_t *cells, uint32_t *level_end) {
    book b = open_book((uint32_t *)cells, level_end);
    for (uint32_t side = ZK_SIDE_BUY; side <= ZK_SIDE_SELL; side++) {
        uint32_t start = 0;
        for (uint32_t s = b.hdr[head_cell(side)]; s; s = b.next[s]) {
            if (start == 0 || b.price[start] != b.price[s]) start = s;
            uint32_t n = b.next[s];
            if (n == 0 || b.price[n] != b.price[s]) {
                level_end[start] = s;
                level_end[s] = start;
            }
        }
    }
}

size_t zk_book_side_slots(const uint32_t *cells, uint32_t side, uint32_t *out, size_t max) {
    book b = open_book((uint32_t *)cells, NULL);
    size_t count = 0;
    /* bounded by the capacity, so a corrupt (cyclic) table cannot hang us */
    for (uint32_t s = b.hdr[head_cell(side)]; s && count < b.cap; s = b.next[s]) {
        if (count < max) out[count] = s;
        count++;
    }
    return count;
}
