/*
 * zk_private.h — a zk batch's private file: what receipts of the batch need
 * that the batch proof file does not publish and the store key cannot
 * re-derive (docs/ZK.md section 9; docs/STORE.md, "Private files").  The
 * daemon writes one beside each zk proof it stores, as
 * private/S{symbol}-B{batch}.zkp in the proof store (mode 0600 in a 0700
 * directory), fsynced before the batch's completion goes out.  One
 * definition: daemon/private_file.py mirrors these structs as numpy dtypes
 * (tests/test_zk_daemon.py checks every size, offset and constant against
 * this header through cffi).
 *
 * A private file, little-endian:
 *
 *   zk_private_header          80 bytes
 *   n_ops zk_op records        64 bytes each: the batch's operations with
 *                              their outcomes, row i holding seq first_seq + i
 *   n_trades zk_trade records  48 bytes each: its trades, in the engine's order
 *
 * so its length is exactly 80 + 64 n_ops + 48 n_trades, which a reader
 * checks before reading a record: the counts are untrusted, and so is the
 * rest (the records are checked against the proof's committed leaves
 * before a receipt is made of them).  Salts and masks are not here: they
 * are re-derived from the store key and `pre_state`.
 *
 * Self-contained but for zk_records.h (the record sizes).
 */
#ifndef ZK_PRIVATE_H
#define ZK_PRIVATE_H

#include <assert.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "zk_private.h: private files are little-endian; this target is not"
#endif

/* cffi-begin */
/* The bytes "ZKPV" as a little-endian u32. */
#define ZK_PRIVATE_MAGIC 0x56504B5A
/* Private file format version; bump on any change below. */
#define ZK_PRIVATE_VERSION 1

/* The header, 80 bytes. */
typedef struct zk_private_header {
    uint32_t magic;             /*  0  ZK_PRIVATE_MAGIC */
    uint16_t version;           /*  4  ZK_PRIVATE_VERSION */
    uint16_t reserved;          /*  6  zero */
    uint32_t symbol;            /*  8 */
    uint32_t n_ops;             /* 12  operation records that follow, >= 1 */
    uint64_t batch_id;          /* 16 */
    uint64_t first_seq;         /* 24  seq of row 0 */
    uint32_t n_trades;          /* 32  trade records after the operations */
    uint32_t body_crc;          /* 36  CRC-32 of the bytes after this header */
    uint8_t pre_state[32];      /* 40  the digest of the batch's zk pre-state table (zk_keys.table_digest):
                                 *     the batch key's input beside the records */
    uint64_t reserved2;         /* 72  zero */
} zk_private_header;
/* cffi-end */

#ifndef offsetof
#define offsetof(type, field) __builtin_offsetof(type, field)
#endif
#define ZK_PRIVATE_AT(type, field, offset) \
    static_assert(offsetof(type, field) == (offset), #type "." #field " must be at byte " #offset)

static_assert(sizeof(zk_private_header) == 80, "zk_private_header is 80 bytes");
ZK_PRIVATE_AT(zk_private_header, magic, 0);
ZK_PRIVATE_AT(zk_private_header, version, 4);
ZK_PRIVATE_AT(zk_private_header, symbol, 8);
ZK_PRIVATE_AT(zk_private_header, n_ops, 12);
ZK_PRIVATE_AT(zk_private_header, batch_id, 16);
ZK_PRIVATE_AT(zk_private_header, first_seq, 24);
ZK_PRIVATE_AT(zk_private_header, n_trades, 32);
ZK_PRIVATE_AT(zk_private_header, body_crc, 36);
ZK_PRIVATE_AT(zk_private_header, pre_state, 40);
ZK_PRIVATE_AT(zk_private_header, reserved2, 72);

#undef ZK_PRIVATE_AT

#endif
