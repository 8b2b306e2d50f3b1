/*
 * engine.c — the matching engine of zk_engine.h.
 *
 * Every rule lives here once, in engine_core.inc; docs/MATCHING.md states
 * them and engine/reference.py re-implements them plainly for the
 * differential tests.  The core reads and writes the state only through the
 * column pointers of `book`, cell by cell, and is compiled twice: plain
 * (zk_book_run) and with its steps recorded (zk_book_run_traced, the
 * witness of a batch proof).
 */
#include <string.h>

#include "zk_engine.h"

/* The tracing mode's cursor: where the next step goes, and which operation
 * (index in the batch) the steps belong to. */
typedef struct {
    zk_step *first, *at;
    uint32_t op;
} tracer;

typedef struct {
    uint32_t *hdr;
    uint32_t *price, *qty, *side, *account, *prev, *next, *gen;
    uint32_t *level_end; /* private index, see zk_engine.h */
    uint32_t cap;
} book;

/* The traced instance's book: the tracer rides behind the plain book, so the
 * plain instance keeps the exact struct (and code) it had before tracing. */
typedef struct {
    book b;
    tracer *trace;
} traced_book;

static inline tracer *tracer_of(const book *b) {
    return ((const traced_book *)b)->trace; /* b is the first member of a traced_book */
}

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

static inline int valid_amount(uint32_t v) {
    return v >= 1 && v <= ZK_MAX_QTY;
}

static void reject(zk_op *op, uint8_t reason) {
    op->status = ZK_STATUS_REJECTED;
    op->reason = reason;
}

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

/* ------------------------------------------------------------- tracing -- */

/* The word at `addr` in the proof-table layout (docs/STATEMENT.md). */
static void word_of(const book *b, uint32_t addr, uint32_t w[ZK_WORD_CELLS]) {
    if (addr == 0) {
        for (int c = 0; c < ZK_HEADER_WORD_CELLS; c++) w[c] = b->hdr[c];
        for (int c = ZK_HEADER_WORD_CELLS; c < ZK_WORD_CELLS; c++) w[c] = 0;
        return;
    }
    w[0] = b->price[addr];
    w[1] = b->qty[addr];
    w[2] = b->side[addr];
    w[3] = b->account[addr] & 0xFFFF;
    w[4] = b->account[addr] >> 16;
    w[5] = b->prev[addr];
    w[6] = b->next[addr];
    w[7] = b->gen[addr];
}

static void trace_open(const book *b, uint8_t kind) {
    zk_step *st = tracer_of(b)->at;
    memset(st, 0, sizeof *st); /* unused accesses read as address 0, zero words */
    st->op = tracer_of(b)->op;
    st->kind = kind;
}

/* Access j of the open step; a slot address of 0 is a neighbour that does
 * not exist and is no access.  Records the old word now, so the caller puts
 * it before the step's first write to that word. */
static void trace_access(const book *b, int j, uint32_t addr) {
    if (j != ZK_ACCESS_H && addr == 0) return;
    zk_step *st = tracer_of(b)->at;
    st->mask |= (uint8_t)(1u << j);
    st->addr[j] = addr;
    word_of(b, addr, st->old_word[j]);
}

static void trace_close(const book *b) {
    zk_step *st = tracer_of(b)->at++;
    for (int j = 0; j < ZK_STEP_ACCESSES; j++)
        if (st->mask >> j & 1) word_of(b, st->addr[j], st->new_word[j]);
}

/* A PEEK: reads the header (if `header`) and slot `slot` (if not 0),
 * writes nothing. */
static void trace_peek(const book *b, int header, uint32_t slot) {
    trace_open(b, ZK_STEP_PEEK);
    if (header) trace_access(b, ZK_ACCESS_H, 0);
    trace_access(b, ZK_ACCESS_A, slot);
    trace_close(b);
}

/* ------------------------------------------------ the two instances -- */

#define ZK_TRACE 0
#define FN(name) name
#include "engine_core.inc"
#undef FN
#undef ZK_TRACE

#define ZK_TRACE 1
#define FN(name) name##_traced
#include "engine_core.inc"
#undef FN
#undef ZK_TRACE

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
    return run_batch(&b, ops, n, trades, trade_cap, 0, run);
}

int zk_book_run_traced(uint32_t *cells, uint32_t *level_end, zk_op *ops, size_t n,
                       zk_trade *trades, size_t trade_cap, zk_step *steps, size_t step_cap,
                       zk_run *run) {
    tracer t = {.first = steps, .at = steps, .op = 0};
    traced_book tb = {.b = open_book(cells, level_end), .trace = &t};
    return run_batch_traced(&tb.b, ops, n, trades, trade_cap, step_cap, run);
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
