/*
 * zk_records.h — the fixed-size records engines, the ring and the daemon
 * exchange.  One definition of each binary format: engine/records.py mirrors
 * it as numpy dtypes (tests/test_engine_records.py checks every size and
 * offset against this header through cffi) and docs/FORMATS.md documents each
 * byte.
 *
 * All fields are little-endian and naturally aligned, so a record can be read
 * in place from shared memory on any little-endian machine.  The header is
 * self-contained (only <stdint.h> and <assert.h>) because the ring client
 * that engines link is header-only too.
 */
#ifndef ZK_RECORDS_H
#define ZK_RECORDS_H

#include <assert.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "zk_records.h: records are little-endian and read in place; this target is not"
#endif

/* cffi-begin */
/* Record layout version; bump on any change to the structs below.
 * 2: the completion record names its symbol (and carries this version in
 *    zk_completion.version; the ring layout version went to 3 with it, so a
 *    client built against version 1 is refused when it opens a ring). */
#define ZK_RECORDS_VERSION 2

/* Prices (ticks) and quantities (lots) are 1 .. 2^30 - 2^27 = 939,524,096:
 * one BabyBear field element each (p = 2^31 - 2^27 + 1), and small enough
 * that a batch proof can compare any two: the difference of two such values
 * is either in [0, 2^30) or, when negative, a field element >= 2^30, so one
 * range check tells the sign (docs/STATEMENT.md, "Range checks"). */
#define ZK_MAX_PRICE 939524096
#define ZK_MAX_QTY 939524096

/* Operation kinds (zk_op.kind).  0 is invalid so a zeroed record is refused. */
#define ZK_KIND_LIMIT 1     /* rest the remainder (good till cancelled) */
#define ZK_KIND_IOC 2       /* immediate or cancel: drop the remainder */
#define ZK_KIND_MARKET 3    /* IOC with no price limit */
#define ZK_KIND_FOK 4       /* fill completely or change nothing */
#define ZK_KIND_POST_ONLY 5 /* rest without trading, or reject */
#define ZK_KIND_CANCEL 6    /* remove the order `handle` */
#define ZK_KIND_REDUCE 7    /* remove `qty` lots from the order `handle`, keeping its priority */

/* Sides (zk_op.side, zk_trade.taker_side).  0 is invalid. */
#define ZK_SIDE_BUY 1
#define ZK_SIDE_SELL 2

/* zk_op.flags */
#define ZK_FLAG_CLAIMED 1   /* the outcome fields hold the engine's claim */
#define ZK_FLAG_CRITICAL 2  /* prove this operation's batch first (sidecar priority; no effect on matching) */
#define ZK_FLAGS_KNOWN 3    /* any other bit set is a rejection (BAD_FLAGS) */

/* Outcome of an operation (zk_op.status).  0 means not processed. */
#define ZK_STATUS_RESTED 1    /* new order: (the rest of) it is on the book */
#define ZK_STATUS_FILLED 2    /* new order: filled completely */
#define ZK_STATUS_EXPIRED 3   /* new order: traded what it could, the rest dropped */
#define ZK_STATUS_CANCELLED 4 /* cancel, or a reduce that removed the whole order */
#define ZK_STATUS_REDUCED 5   /* reduce: the order rests with less quantity */
#define ZK_STATUS_REJECTED 6  /* nothing changed; zk_op.reason says why */

/* Why (zk_op.reason): set exactly when the status is REJECTED. */
#define ZK_REASON_NONE 0
#define ZK_REASON_BAD_KIND 1
#define ZK_REASON_BAD_SIDE 2
#define ZK_REASON_BAD_PRICE 3
#define ZK_REASON_BAD_QTY 4
#define ZK_REASON_BAD_FLAGS 5
#define ZK_REASON_UNKNOWN_HANDLE 6 /* no such slot: the handle was never issued */
#define ZK_REASON_STALE_HANDLE 7   /* the order it named has left the book */
#define ZK_REASON_WOULD_CROSS 8    /* post-only that would have traded */
#define ZK_REASON_FOK_UNFILLABLE 9 /* not enough crossing quantity */
#define ZK_REASON_BOOK_FULL 10     /* no free slot for the remainder */

/* Completion status (zk_completion.status). */
#define ZK_COMPLETION_PROVEN 1    /* proof stored; post_state_root is proven */
#define ZK_COMPLETION_DISAGREES 2 /* the shadow book's outcome differs from the engine's claim */
#define ZK_COMPLETION_FAILED 3    /* the prover failed; no proof */
#define ZK_NO_PROOF 4294967295    /* zk_completion.proof_index when there is no proof */

/* Operation record, engine -> daemon, 64 bytes. */
typedef struct zk_op {
    uint64_t seq;       /*  0  strictly +1 per symbol */
    uint64_t ts_ns;     /*  8  engine timestamp, non-decreasing per symbol */
    uint64_t handle;    /* 16  CANCEL/REDUCE: target; new orders: assigned if rested, else 0 */
    uint64_t client_id; /* 24  the client's order id, carried, never interpreted */
    uint32_t price;     /* 32  ticks, 1..ZK_MAX_PRICE (ignored by MARKET, CANCEL, REDUCE) */
    uint32_t qty;       /* 36  lots, 1..ZK_MAX_QTY (REDUCE: lots to remove; ignored by CANCEL) */
    uint32_t account;   /* 40  owner; copied into trades */
    uint32_t symbol;    /* 44  the book it is for */
    uint8_t kind;       /* 48  ZK_KIND_* */
    uint8_t side;       /* 49  ZK_SIDE_* (ignored by CANCEL, REDUCE) */
    uint16_t flags;     /* 50  ZK_FLAG_* */
    /* outcome, written by the engine */
    uint32_t filled;    /* 52  lots traded by this operation */
    uint32_t trades;    /* 56  trade records it produced */
    uint8_t status;     /* 60  ZK_STATUS_* */
    uint8_t reason;     /* 61  ZK_REASON_* */
    uint16_t reserved;  /* 62  zero */
} zk_op;

/* Trade record, one per fill, 48 bytes. */
typedef struct zk_trade {
    uint64_t taker_seq;     /*  0  seq of the operation that took liquidity */
    uint64_t maker_handle;  /*  8  the resting order */
    uint64_t taker_handle;  /* 16  the taker's handle if its remainder rested, else 0 */
    uint32_t price;         /* 24  the maker's price */
    uint32_t qty;           /* 28  lots */
    uint32_t maker_account; /* 32 */
    uint32_t taker_account; /* 36 */
    uint32_t symbol;        /* 40 */
    uint8_t taker_side;     /* 44  ZK_SIDE_* of the taker (the aggressor) */
    uint8_t reserved[3];    /* 45  zero */
} zk_trade;

/* Completion record, daemon -> engine, 64 bytes.  A batch is operations
 * first_seq .. first_seq + op_count - 1 of `symbol`.  A reader checks
 * `version` == ZK_RECORDS_VERSION and refuses any other record: a layout-1
 * writer leaves 0 there (the high bytes of its u32 status), and a layout-1
 * reader sees status 0x0201.. (no ZK_COMPLETION_* value). */
typedef struct zk_completion {
    uint64_t batch_id;           /*  0  0, 1, 2, ... per symbol */
    uint64_t first_seq;          /*  8  first operation of the batch */
    uint32_t symbol;             /* 16  the book the batch is for (zk_op.symbol) */
    uint32_t op_count;           /* 20  operations in the batch, >= 1 (last seq = first_seq + op_count - 1) */
    uint8_t post_state_root[32]; /* 24  state root after the batch */
    uint8_t status;              /* 56  ZK_COMPLETION_* */
    uint8_t version;             /* 57  ZK_RECORDS_VERSION */
    uint16_t reserved;           /* 58  zero */
    uint32_t proof_index;        /* 60  position of the proof in the proof store, or ZK_NO_PROOF */
} zk_completion;
/* cffi-end */

#define ZK_CHECK_AT(type, field, offset) \
    static_assert(offsetof(type, field) == (offset), #type "." #field " must be at byte " #offset)

#ifndef offsetof
#define offsetof(type, field) __builtin_offsetof(type, field)
#endif

static_assert(sizeof(zk_op) == 64, "zk_op is 64 bytes");
ZK_CHECK_AT(zk_op, seq, 0);
ZK_CHECK_AT(zk_op, ts_ns, 8);
ZK_CHECK_AT(zk_op, handle, 16);
ZK_CHECK_AT(zk_op, client_id, 24);
ZK_CHECK_AT(zk_op, price, 32);
ZK_CHECK_AT(zk_op, qty, 36);
ZK_CHECK_AT(zk_op, account, 40);
ZK_CHECK_AT(zk_op, symbol, 44);
ZK_CHECK_AT(zk_op, kind, 48);
ZK_CHECK_AT(zk_op, side, 49);
ZK_CHECK_AT(zk_op, flags, 50);
ZK_CHECK_AT(zk_op, filled, 52);
ZK_CHECK_AT(zk_op, trades, 56);
ZK_CHECK_AT(zk_op, status, 60);
ZK_CHECK_AT(zk_op, reason, 61);
ZK_CHECK_AT(zk_op, reserved, 62);

static_assert(sizeof(zk_trade) == 48, "zk_trade is 48 bytes");
ZK_CHECK_AT(zk_trade, taker_seq, 0);
ZK_CHECK_AT(zk_trade, maker_handle, 8);
ZK_CHECK_AT(zk_trade, taker_handle, 16);
ZK_CHECK_AT(zk_trade, price, 24);
ZK_CHECK_AT(zk_trade, qty, 28);
ZK_CHECK_AT(zk_trade, maker_account, 32);
ZK_CHECK_AT(zk_trade, taker_account, 36);
ZK_CHECK_AT(zk_trade, symbol, 40);
ZK_CHECK_AT(zk_trade, taker_side, 44);
ZK_CHECK_AT(zk_trade, reserved, 45);

static_assert(sizeof(zk_completion) == 64, "zk_completion is 64 bytes");
ZK_CHECK_AT(zk_completion, batch_id, 0);
ZK_CHECK_AT(zk_completion, first_seq, 8);
ZK_CHECK_AT(zk_completion, symbol, 16);
ZK_CHECK_AT(zk_completion, op_count, 20);
ZK_CHECK_AT(zk_completion, post_state_root, 24);
ZK_CHECK_AT(zk_completion, status, 56);
ZK_CHECK_AT(zk_completion, version, 57);
ZK_CHECK_AT(zk_completion, reserved, 58);
ZK_CHECK_AT(zk_completion, proof_index, 60);

#undef ZK_CHECK_AT

#endif
