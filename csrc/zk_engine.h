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

#include "zk_records.h"

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

typedef struct zk_run {
    size_t index;   /* operations processed, or the offending one */
    size_t trades;  /* trade records written */
} zk_run;

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

/* Recompute level_end from the table (after loading cells from elsewhere). */
void zk_book_rebuild_index(const uint32_t *cells, uint32_t *level_end);

/* The slots of one side in priority order (best first) into out[0..max);
 * returns how many there are (at most max are written). */
size_t zk_book_side_slots(const uint32_t *cells, uint32_t side, uint32_t *out, size_t max);
/* cffi-end */

#endif
