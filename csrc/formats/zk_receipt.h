/*
 * zk_receipt.h — a receipt: one trader's operations of one zk batch, with
 * their outcomes and trades, and the list paths that open exactly those
 * leaves against the batch's commitments (docs/ZK.md, section 8).  One
 * definition: prover/orderbook/receipt_format.py mirrors these structs as
 * numpy dtypes (tests/test_zk_receipts.py checks every size, offset and
 * constant against this header through cffi) and docs/FORMATS.md
 * ("Receipt") documents each byte.
 *
 * A receipt file, little-endian, every part starting at a multiple of 8
 * bytes (so it can be read in place):
 *
 *   zk_receipt_header                      176 bytes
 *   op_count operation entries, each:
 *     zk_receipt_op                        104 bytes
 *     leaf path                            d_ops x 32 bytes
 *     side path                            d_ops x 32 bytes
 *   trade_count trade entries, each:
 *     zk_receipt_trade                      48 bytes
 *     leaf path                            d_trades x 32 bytes
 *   handle_count handles                   8 bytes each (u64)
 *
 * with d_ops = ceil(log2 ops) and d_trades = ceil(log2 (trace_length - 1 -
 * ops)) (0 for a list of at most one leaf: the depth of docs/FORMATS.md's
 * "zk list trees"), so the file's length is exactly
 *
 *   176 + op_count (104 + 64 d_ops) + trade_count (48 + 32 d_trades)
 *       + 8 handle_count
 *
 * which a reader checks against the bytes it has before it reads any entry:
 * the counts are untrusted, and none exceeds what a receipt of the batch can
 * hold (op_count <= ops, trade_count <= trace_length - 1 - ops, handle_count
 * <= trade_count).  A path lists the sibling digests from the leaf's level
 * up.  Every reserved field is zero.
 *
 * One receipt has one byte string: operation entries in increasing `index`,
 * trade entries in increasing (taker, number), handles nonzero, increasing,
 * and each the maker handle of a trade of the receipt.
 *
 * The trades are one list, not a list per operation: a trade against a
 * resting order has no taker among the receipt's operations.  Such a trade
 * is against an order one of the receipt's operations placed in the batch
 * (its status RESTED, before the trade's taker), or against one of
 * `handles`: orders resting before the batch that a by-account receipt
 * names as its account's.  Nothing in the batch proves whose a named handle
 * is; a receipt of the earlier batch whose operation placed it does
 * (docs/ZK.md, section 8, check 5).
 *
 * Self-contained but for zk_records.h (the operation record).
 */
#ifndef ZK_RECEIPT_H
#define ZK_RECEIPT_H

#include <assert.h>
#include <stdint.h>

#include "zk_records.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "zk_receipt.h: receipts are little-endian; this target is not"
#endif

/* cffi-begin */
/* The bytes "ZKSR" as a little-endian u32. */
#define ZK_RECEIPT_MAGIC 0x52534B5A
/* Receipt format version; bump on any change below. */
#define ZK_RECEIPT_VERSION 1
/* Salts: a leaf's 4 field elements, a side leaf's 16 bytes. */
#define ZK_RECEIPT_SALT_ELEMENTS 4
#define ZK_RECEIPT_SIDE_SALT_BYTES 16
#define ZK_RECEIPT_DIGEST_BYTES 32
/* A handle after the trades: a u64, slot in bits 0-31, generation above. */
#define ZK_RECEIPT_HANDLE_BYTES 8

/* The header, 176 bytes: the batch's public statement, repeated so that a
 * receipt reads alone, and the counts of what follows. */
typedef struct zk_receipt_header {
    uint32_t magic;             /*   0  ZK_RECEIPT_MAGIC */
    uint16_t version;           /*   4  ZK_RECEIPT_VERSION */
    uint16_t reserved;          /*   6  zero */
    uint8_t statement[32];      /*   8  the batch file's statement digest (docs/ZK.md, section 7) */
    uint64_t batch_id;          /*  40 */
    uint64_t first_seq;         /*  48  seq of the batch's row 0 */
    uint32_t symbol;            /*  56 */
    uint32_t ops;               /*  60  operations in the batch, >= 1 */
    uint32_t trace_length;      /*  64  T, a power of two; the trade list has T - 1 - ops slots */
    uint32_t op_count;          /*  68  operation entries that follow */
    uint32_t trade_count;       /*  72  trade entries after the operations */
    uint32_t handle_count;      /*  76  u64 handles after the trades */
    uint8_t ops_root[32];       /*  80  root of the operation leaves' list */
    uint8_t side_root[32];      /* 112  root of the side leaves' list */
    uint8_t trades_root[32];    /* 144  root of the trade and dummy leaves' list */
} zk_receipt_header;

/* An operation entry's fixed part, 104 bytes; its leaf path and side path
 * follow it. */
typedef struct zk_receipt_op {
    zk_op record;               /*   0  the engine's record with its outcome (zk_records.h) */
    uint32_t index;             /*  64  its row: seq - first_seq */
    uint32_t salt[4];           /*  68  the leaf's salt, canonical field elements */
    uint8_t side_salt[16];      /*  84  the side leaf's salt */
    uint32_t reserved;          /* 100  zero */
} zk_receipt_op;

/* A trade entry's fixed part, 48 bytes (the trade leaf's six fields, in its
 * order); its leaf path follows it. */
typedef struct zk_receipt_trade {
    uint32_t slot;              /*   0  its position in the trade list */
    uint32_t taker;             /*   4  the taker's row i (its seq is first_seq + i) */
    uint32_t number;            /*   8  tn: the trade's number among its taker's, from 0 */
    uint32_t maker_slot;        /*  12  the resting order's handle, bits 0-31 */
    uint32_t maker_gen;         /*  16  and bits 32-63 */
    uint32_t price;             /*  20 */
    uint32_t qty;               /*  24 */
    uint32_t salt[4];           /*  28  the leaf's salt, canonical field elements */
    uint32_t reserved;          /*  44  zero */
} zk_receipt_trade;
/* cffi-end */

#ifndef offsetof
#define offsetof(type, field) __builtin_offsetof(type, field)
#endif
#define ZK_RECEIPT_AT(type, field, offset) \
    static_assert(offsetof(type, field) == (offset), #type "." #field " must be at byte " #offset)

static_assert(sizeof(zk_receipt_header) == 176, "zk_receipt_header is 176 bytes");
ZK_RECEIPT_AT(zk_receipt_header, magic, 0);
ZK_RECEIPT_AT(zk_receipt_header, version, 4);
ZK_RECEIPT_AT(zk_receipt_header, reserved, 6);
ZK_RECEIPT_AT(zk_receipt_header, statement, 8);
ZK_RECEIPT_AT(zk_receipt_header, batch_id, 40);
ZK_RECEIPT_AT(zk_receipt_header, first_seq, 48);
ZK_RECEIPT_AT(zk_receipt_header, symbol, 56);
ZK_RECEIPT_AT(zk_receipt_header, ops, 60);
ZK_RECEIPT_AT(zk_receipt_header, trace_length, 64);
ZK_RECEIPT_AT(zk_receipt_header, op_count, 68);
ZK_RECEIPT_AT(zk_receipt_header, trade_count, 72);
ZK_RECEIPT_AT(zk_receipt_header, handle_count, 76);
ZK_RECEIPT_AT(zk_receipt_header, ops_root, 80);
ZK_RECEIPT_AT(zk_receipt_header, side_root, 112);
ZK_RECEIPT_AT(zk_receipt_header, trades_root, 144);

static_assert(sizeof(zk_receipt_op) == 104, "zk_receipt_op is 104 bytes");
ZK_RECEIPT_AT(zk_receipt_op, record, 0);
ZK_RECEIPT_AT(zk_receipt_op, index, 64);
ZK_RECEIPT_AT(zk_receipt_op, salt, 68);
ZK_RECEIPT_AT(zk_receipt_op, side_salt, 84);
ZK_RECEIPT_AT(zk_receipt_op, reserved, 100);

static_assert(sizeof(zk_receipt_trade) == 48, "zk_receipt_trade is 48 bytes");
ZK_RECEIPT_AT(zk_receipt_trade, slot, 0);
ZK_RECEIPT_AT(zk_receipt_trade, taker, 4);
ZK_RECEIPT_AT(zk_receipt_trade, number, 8);
ZK_RECEIPT_AT(zk_receipt_trade, maker_slot, 12);
ZK_RECEIPT_AT(zk_receipt_trade, maker_gen, 16);
ZK_RECEIPT_AT(zk_receipt_trade, price, 20);
ZK_RECEIPT_AT(zk_receipt_trade, qty, 24);
ZK_RECEIPT_AT(zk_receipt_trade, salt, 28);
ZK_RECEIPT_AT(zk_receipt_trade, reserved, 44);

/* Every part a multiple of 8 bytes, so every entry and path starts 8-aligned. */
static_assert(sizeof(zk_receipt_header) % 8 == 0 && sizeof(zk_receipt_op) % 8 == 0
              && sizeof(zk_receipt_trade) % 8 == 0 && ZK_RECEIPT_DIGEST_BYTES % 8 == 0,
              "receipt parts are multiples of 8 bytes");

#undef ZK_RECEIPT_AT

#endif
