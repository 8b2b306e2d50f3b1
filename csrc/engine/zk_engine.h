/*
 * zk_engine.h — the matching engine: price-time priority on one book, run
 * over whole arrays of operation records (zk_records.h).
 *
 * The book's state is one flat array of uint32 cells, the table a batch proof
 * commits (docs/MATCHING.md, "State table"):
 *
 *   cells[0 .. ZK_BOOK_HEADER)                  header cells, ZK_HDR_*
 *   cells[ZK_BOOK_HEADER + c*N + s]             column c (ZK_COL_*) of slot s
 *
 * for a capacity of N = 2^log2_capacity slots.  Slot 0 is the null slot: a
 * link of 0 means "none", so every cell is a small integer and the table is
 * the same whatever machine wrote it.  Each side is a doubly linked list
 * (prev/next) sorted by price, then arrival; free slots form a singly linked
 * free list through `next`.  A handle is (generation << 32) | slot; freeing a
 * slot bumps its generation, so a stale handle is detected in O(1).
 *
 * `level_end` (N cells) is the engine's private index, not part of the state:
 * for the first order of a price level it holds the level's last order and
 * vice versa.  It lets an insertion skip whole levels, and is rebuilt from
 * the table with zk_book_rebuild_index after a restore.
 */
#ifndef ZK_ENGINE_H
#define ZK_ENGINE_H

#include <stddef.h>

#include "formats/zk_records.h"

/* cffi-begin */
#define ZK_BOOK_HEADER 16     /* header cells; the columns start on a 64-byte line */
#define ZK_HDR_BEST_BID 0     /* first slot of the bid list, 0 if empty */
#define ZK_HDR_WORST_BID 1    /* last slot of the bid list */
#define ZK_HDR_BEST_ASK 2
#define ZK_HDR_WORST_ASK 3
#define ZK_HDR_FREE_HEAD 4    /* first free slot, 0 if the book is full */
#define ZK_HDR_LIVE 5         /* resting orders */
#define ZK_HDR_NEXT_SEQ_LO 6  /* the sequence number the next operation must carry */
#define ZK_HDR_NEXT_SEQ_HI 7
#define ZK_HDR_LAST_TS_LO 8   /* timestamp of the last operation */
#define ZK_HDR_LAST_TS_HI 9
#define ZK_HDR_SYMBOL 10
#define ZK_HDR_LOG2_CAPACITY 11
/* cells 12..15 are zero */

#define ZK_BOOK_COLUMNS 7
#define ZK_COL_PRICE 0    /* 0 when free */
#define ZK_COL_QTY 1      /* remaining lots; 0 exactly when free */
#define ZK_COL_SIDE 2     /* ZK_SIDE_*, 0 when free */
#define ZK_COL_ACCOUNT 3
#define ZK_COL_PREV 4     /* toward the best order; 0 for the first (and when free) */
#define ZK_COL_NEXT 5     /* toward the worst order; when free: the next free slot */
#define ZK_COL_GEN 6      /* generation, 0 .. ZK_GEN_MASK, bumped when the slot is freed */

#define ZK_GEN_MASK 1073741823
#define ZK_MIN_LOG2_CAPACITY 1
#define ZK_MAX_LOG2_CAPACITY 24

/* zk_book_run results */
#define ZK_RUN_OK 0           /* every operation processed */
#define ZK_RUN_TRADES_FULL 1  /* stopped before ops[index]: fewer free trade records than resting orders */
#define ZK_RUN_BAD_SEQ 2      /* nothing processed: ops[index].seq is not the next sequence number */
#define ZK_RUN_BAD_TS 3       /* nothing processed: ops[index].ts_ns went backwards */
#define ZK_RUN_BAD_SYMBOL 4   /* nothing processed: ops[index] is for another book */
#define ZK_RUN_STEPS_FULL 5   /* traced: stopped before ops[index]: fewer free step records than it may need */

typedef struct zk_run {
    size_t index;   /* operations processed, or the offending one */
    size_t trades;  /* trade records written */
    size_t steps;   /* step records written (zk_book_run_traced; 0 otherwise) */
} zk_run;

/* Tracing (docs/MATCHING.md, "Tracing"): the steps of docs/STATEMENT.md,
 * each with up to four memory accesses to words of the proof state table
 * (address 0: the header word; s >= 1: slot s). */
#define ZK_WORD_CELLS 8         /* price, qty, side, account_lo, account_hi, prev, next, gen */
#define ZK_HEADER_WORD_CELLS 6  /* header cells 0..5 (best_bid .. live), then two zeros */
#define ZK_STEP_ACCESSES 4
/* One operation records at most ZK_STEPS_FIXED + ZK_STEPS_PER_RESTING * (resting
 * orders) steps: a FOK can PEEK and then MATCH every maker between its BEGIN
 * and END; any other taker records at most one MATCH per maker, a PEEK and a
 * REST; a cancel or a rejection at most one step. */
#define ZK_STEPS_FIXED 4
#define ZK_STEPS_PER_RESTING 2

#define ZK_STEP_BEGIN 1   /* starts operation `op`; no access */
#define ZK_STEP_MATCH 2   /* one trade against the head maker A (H, A, and B = A's next if A leaves) */
#define ZK_STEP_PEEK 3    /* reads H and/or A, writes nothing */
#define ZK_STEP_REST 4    /* the remainder into free slot A, between B and C */
#define ZK_STEP_CANCEL 5  /* unlinks and frees A (prev B, next C) */
#define ZK_STEP_REDUCE 6  /* lowers A's quantity */
#define ZK_STEP_END 7     /* ends operation `op` (its outcome is in the op record); no access */

/* access index j: addr[j], old_word[j], new_word[j], bit (1 << j) of mask */
#define ZK_ACCESS_H 0     /* the header word, address 0 */
#define ZK_ACCESS_A 1
#define ZK_ACCESS_B 2
#define ZK_ACCESS_C 3

/* One step, 280 bytes.  An access not in the mask has address 0 and zero
 * words; a pure read has new_word equal to old_word. */
typedef struct zk_step {
    uint32_t op;           /*   0  index of the operation in the batch */
    uint8_t kind;          /*   4  ZK_STEP_* */
    uint8_t mask;          /*   5  accesses made: bit j for access j */
    uint16_t reserved;     /*   6  zero */
    uint32_t addr[4];      /*   8  word address per access (addr[0], the header's, is 0) */
    uint32_t old_word[4][8]; /*  24  each access's word before the step */
    uint32_t new_word[4][8]; /* 152  each access's word after the step */
} zk_step;

/* The empty book: all cells zero but the header's symbol, capacity and
 * sequence number, and the free list 1 -> 2 -> ... -> N-1.  cells has
 * ZK_BOOK_HEADER + ZK_BOOK_COLUMNS * 2^log2_capacity entries.  -1 if
 * log2_capacity is out of range. */
int zk_book_init(uint32_t *cells, uint32_t log2_capacity, uint32_t symbol, uint64_t first_seq);

/* Process ops[0..n) in order, writing each one's outcome fields and
 * appending its trades to trades[0..trade_cap).  The sequence numbers,
 * timestamps and symbols are checked for the whole array first; if one is
 * wrong nothing changes.  Returns ZK_RUN_*, with the details in *run. */
int zk_book_run(uint32_t *cells, uint32_t *level_end, zk_op *ops, size_t n, zk_trade *trades,
                size_t trade_cap, zk_run *run);

/* zk_book_run, also recording every step into steps[0..step_cap) (run->steps
 * of them).  Same rules, same results: both are compiled from
 * engine_core.inc.  Stops with ZK_RUN_STEPS_FULL before an operation that
 * might not fit. */
int zk_book_run_traced(uint32_t *cells, uint32_t *level_end, zk_op *ops, size_t n,
                       zk_trade *trades, size_t trade_cap, zk_step *steps, size_t step_cap,
                       zk_run *run);

/* Recompute level_end from the table (after loading cells from elsewhere). */
void zk_book_rebuild_index(const uint32_t *cells, uint32_t *level_end);

/* The slots of one side in priority order (best first) into out[0..max);
 * returns how many there are (at most max are written). */
size_t zk_book_side_slots(const uint32_t *cells, uint32_t side, uint32_t *out, size_t max);
/* cffi-end */

static_assert(sizeof(zk_step) == 280, "zk_step is 280 bytes");
static_assert(offsetof(zk_step, addr) == 8, "zk_step.addr at byte 8");
static_assert(offsetof(zk_step, old_word) == 24, "zk_step.old_word at byte 24");
static_assert(offsetof(zk_step, new_word) == 152, "zk_step.new_word at byte 152");

#endif
