/*
 * zk_store.h — the daemon's on-disk formats: the journal (operations and
 * batch boundaries, in append order), its snapshots of the shadow books, and
 * the proof store (batch proof files, their index and the second copy of its
 * archived entries).  One definition of
 * each: daemon/formats.py mirrors it as struct/numpy layouts (tests/test_store.py checks every size, offset and
 * constant against this header through cffi) and docs/STORE.md documents
 * each byte, the repair rules and the fsync policies.
 *
 * Little-endian, naturally aligned, like zk_records.h.  Every header carries
 * two CRC-32s (the zlib / ISO-HDLC polynomial): one of the bytes that follow
 * it and one of the header itself, so a damaged length is caught before it is
 * trusted to find the next entry.
 */
#ifndef ZK_STORE_H
#define ZK_STORE_H

#include <assert.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "zk_store.h: the files are little-endian; this target is not"
#endif

/* cffi-begin */
/* Format version of every structure below but archived.zka's (which has
 * ZK_STORE_COPY_VERSION) and a snapshot's (ZK_SNAPSHOT_VERSION); bump on
 * any change. */
#define ZK_STORE_VERSION 1

/* Journal entry magic: the bytes "ZKJE". */
#define ZK_JOURNAL_MAGIC 0x454A4B5A
/* Journal entry types (zk_journal_entry.type). */
#define ZK_JOURNAL_OPS 1    /* payload: `count` zk_op records (zk_records.h), 64 bytes each */
#define ZK_JOURNAL_BATCH 2  /* payload: one zk_journal_batch */

/* Proof store data entry magic: the bytes "ZKSE". */
#define ZK_STORE_MAGIC 0x45534B5A

/* zk_journal_entry.flags: the entry was written by a zk-mode daemon (its
 * records are a zk chain's, private: a transparent proof would publish them).
 * Every entry a zk daemon writes carries it and a transparent daemon's none,
 * so the journal says its own mode and a start of the other mode refuses it
 * (docs/STORE.md, "The journal's mode").  The field was `reserved`, required
 * zero, before: a build from then refuses a flagged entry as "reserved bytes
 * are not zero", and reads a transparent journal of this one unchanged. */
#define ZK_JOURNAL_ENTRY_ZK 1

/* Journal entry header, 32 bytes, followed by `length` payload bytes. */
typedef struct zk_journal_entry {
    uint32_t magic;       /*  0  ZK_JOURNAL_MAGIC */
    uint8_t version;      /*  4  ZK_STORE_VERSION */
    uint8_t type;         /*  5  ZK_JOURNAL_OPS or ZK_JOURNAL_BATCH */
    uint16_t flags;       /*  6  ZK_JOURNAL_ENTRY_*; other bits zero */
    uint32_t length;      /*  8  payload bytes */
    uint32_t count;       /* 12  OPS: records in the payload (length = 64 * count); BATCH: 1 */
    uint64_t seen_ns;     /* 16  OPS: when the daemon took the records off the ring (CLOCK_REALTIME ns); BATCH: when the mark was written */
    uint32_t payload_crc; /* 24  CRC-32 of the payload */
    uint32_t header_crc;  /* 28  CRC-32 of bytes 0..27 of this header */
} zk_journal_entry;

/* zk_journal_batch.flags: the batch begins where its stream resumed (its
 * first operation is the record the book resumed at: Book.resume in
 * engine/book.py; docs/DAEMON.md, "Bad streams").  A replay resumes there
 * too, whatever records before it the journal still holds. */
#define ZK_MARK_RESUMED 1

/* Payload of a ZK_JOURNAL_BATCH entry: a closed batch, 32 bytes.  (Version 1
 * journals written before `flags` existed hold a u32 priority of 0..3 here:
 * the same bytes, flags 0.) */
typedef struct zk_journal_batch {
    uint32_t symbol;      /*  0 */
    uint8_t priority;     /*  4  0 critical, 1 high, 2 normal, 3 low */
    uint8_t flags;        /*  5  ZK_MARK_* */
    uint16_t reserved;    /*  6  zero */
    uint64_t batch_id;    /*  8  0, 1, 2, ... per symbol */
    uint64_t first_seq;   /* 16  first operation of the batch */
    uint64_t last_seq;    /* 24  last operation of the batch (inclusive) */
} zk_journal_batch;

/* Proof store data entry header, 32 bytes, followed by `length` bytes of a
 * batch proof file (docs/PROOF_FORMAT.md). */
typedef struct zk_store_entry {
    uint32_t magic;       /*  0  ZK_STORE_MAGIC */
    uint8_t version;      /*  4  ZK_STORE_VERSION */
    uint8_t reserved[3];  /*  5  zero */
    uint32_t symbol;      /*  8 */
    uint32_t length;      /* 12  proof bytes */
    uint64_t batch_id;    /* 16 */
    uint32_t data_crc;    /* 24  CRC-32 of the proof bytes */
    uint32_t header_crc;  /* 28  CRC-32 of bytes 0..27 of this header */
} zk_store_entry;

/* Proof store index entry, 40 bytes; entry k of index.zki describes proof
 * number k (the completion record's proof_index). */
typedef struct zk_store_index {
    uint32_t symbol;      /*  0 */
    uint32_t segment;     /*  4  data segment number (store-NNNNNN.zkd) */
    uint64_t batch_id;    /*  8 */
    uint64_t offset;      /* 16  byte offset of the zk_store_entry in that segment */
    uint32_t length;      /* 24  proof bytes */
    uint32_t data_crc;    /* 28  CRC-32 of the proof bytes (as in the data entry) */
    uint32_t entry_crc;   /* 32  CRC-32 of bytes 0..31 of this index entry */
    uint32_t state;       /* 36  0: the proof is in its segment; ZK_STORE_ARCHIVED: its
                           *     segment was removed (zksidecar store prune|archive) */
} zk_store_index;
/* zk_store_index.state of a proof whose segment was removed: the bytes "ARCV"
 * (a word, not a bit, so no single flipped bit archives a live proof). */
#define ZK_STORE_ARCHIVED 0x56435241

/* archived.zka, the second copy of the proof store's archived index entries:
 * magic, the bytes "ZKSA".  Retention writes it after index.zki (each a new
 * file, synced, renamed over the old), so a damaged archived entry of
 * index.zki, which the data can no longer give back, is restored from it. */
#define ZK_STORE_COPY_MAGIC 0x41534B5A
/* Its format version: its own, as it is a file of its own (index.zki and the
 * data entries keep ZK_STORE_VERSION). */
#define ZK_STORE_COPY_VERSION 1

/* archived.zka's header, 24 bytes, followed by `count` zk_store_archived. */
typedef struct zk_store_copy_header {
    uint32_t magic;       /*  0  ZK_STORE_COPY_MAGIC */
    uint8_t version;      /*  4  ZK_STORE_COPY_VERSION */
    uint8_t reserved[3];  /*  5  zero */
    uint32_t entries;     /*  8  index.zki's entries up to its last archived one (its number + 1) */
    uint32_t count;       /* 12  records that follow: one per archived entry among those */
    uint32_t reserved2;   /* 16  zero */
    uint32_t header_crc;  /* 20  CRC-32 of bytes 0..19 of this header */
} zk_store_copy_header;

/* One archived index entry, 48 bytes: checked by its own CRC, whatever the
 * header and the other records hold, so one damaged record costs only itself. */
typedef struct zk_store_archived {
    uint8_t entry[40];    /*  0  the zk_store_index as index.zki holds it (state ZK_STORE_ARCHIVED) */
    uint32_t number;      /* 40  its place k in index.zki (the proof_index) */
    uint32_t record_crc;  /* 44  CRC-32 of bytes 0..43 of this record */
} zk_store_archived;

/* Shadow book snapshot magic: the bytes "ZKSN" (docs/STORE.md, "Snapshots"). */
#define ZK_SNAPSHOT_MAGIC 0x4E534B5A
/* zk_snapshot_book.flags: the symbol's next batch begins where its stream
 * resumed (as ZK_MARK_RESUMED will say of it). */
#define ZK_SNAPSHOT_RESUMED 1
/* A snapshot's format version (zk_snapshot_header.version): its own, as it
 * is a file of its own, for the three structures below.  2: the header says
 * the mode of the daemon that wrote it (`flags`, ZK_SNAPSHOT_ZK).  Version 1
 * (ZK_STORE_VERSION then) had zero in that byte, a transparent snapshot's
 * and a zk one's alike: a version-1 snapshot's mode is unknown, and it is
 * read as before (its journal's entries and the store say the mode).  So
 * the byte could not be given a meaning within version 1, as the journal
 * entry's flags were: a zero there would say "transparent" of a zk
 * snapshot an earlier release wrote beside flagged entries. */
#define ZK_SNAPSHOT_VERSION 2
/* zk_snapshot_header.flags (version 2): written by a zk-mode daemon (its
 * books are a zk chain's state, private); 0: by a transparent one.  A start
 * of the other mode refuses the snapshot (docs/STORE.md, "The snapshot's
 * mode"). */
#define ZK_SNAPSHOT_ZK 1

/* A snapshot file (snapshot-SSSSSS-OOOOOOOOOOOO.zks in the journal
 * directory): this 64-byte header, then `symbols` books and `unstarted`
 * waiting streams, each a fixed part followed by its arrays.  It is the
 * state a journal replay has at journal segment `segment`, byte `offset`
 * (an entry boundary): every batch before it closed and marked, the books
 * as those batches leave them. */
typedef struct zk_snapshot_header {
    uint32_t magic;          /*  0  ZK_SNAPSHOT_MAGIC */
    uint8_t version;         /*  4  ZK_SNAPSHOT_VERSION */
    uint8_t flags;           /*  5  ZK_SNAPSHOT_ZK; other bits zero (version 1: zero) */
    uint8_t reserved[2];     /*  6  zero */
    uint32_t segment;        /*  8  journal segment the replay resumes in */
    uint32_t symbols;        /* 12  zk_snapshot_book sections */
    uint64_t offset;         /* 16  byte of that segment the replay resumes at */
    uint64_t created_ns;     /* 24  CLOCK_REALTIME when written (for people; nothing reads it) */
    uint32_t capacity;       /* 32  order slots of every book */
    uint32_t trace_length;   /* 36  trace rows of every batch proof */
    uint32_t unstarted;      /* 40  zk_snapshot_unstarted sections, after the books */
    uint32_t reserved2;      /* 44  zero */
    uint64_t body_length;    /* 48  bytes after this header */
    uint32_t body_crc;       /* 56  CRC-32 of those bytes */
    uint32_t header_crc;     /* 60  CRC-32 of bytes 0..59 of this header */
} zk_snapshot_header;

/* One shadow book, 32 bytes, followed by n_cells uint32 cells (the book's
 * state table, zk_engine.h), then `held` zk_op records (records past a gap
 * waiting to resume the stream) and `held` int64 seen times (ns). */
typedef struct zk_snapshot_book {
    uint32_t symbol;         /*  0 */
    uint32_t flags;          /*  4  ZK_SNAPSHOT_* */
    uint64_t next_batch_id;  /*  8  the id its next batch gets */
    uint32_t n_cells;        /* 16  ZK_BOOK_HEADER + ZK_COLUMNS * capacity */
    uint32_t held;           /* 20 */
    uint64_t proven_ts;      /* 24  the last timestamp of the symbol's last batch closed, 0 before
                              *     any (zk mode's state carries it; a resume may lower the cells') */
} zk_snapshot_book;

/* Records of a symbol without a book yet, waiting to show they are a
 * stream, 16 bytes, followed by `count` zk_op records and `count` int64
 * seen times. */
typedef struct zk_snapshot_unstarted {
    uint32_t symbol;         /*  0 */
    uint32_t count;          /*  4 */
    uint64_t reserved;       /*  8  zero */
} zk_snapshot_unstarted;
/* cffi-end */

#define ZK_CHECK_AT(type, field, offset) \
    static_assert(offsetof(type, field) == (offset), #type "." #field " must be at byte " #offset)

#ifndef offsetof
#define offsetof(type, field) __builtin_offsetof(type, field)
#endif

static_assert(sizeof(zk_journal_entry) == 32, "zk_journal_entry is 32 bytes");
ZK_CHECK_AT(zk_journal_entry, magic, 0);
ZK_CHECK_AT(zk_journal_entry, version, 4);
ZK_CHECK_AT(zk_journal_entry, type, 5);
ZK_CHECK_AT(zk_journal_entry, flags, 6);
ZK_CHECK_AT(zk_journal_entry, length, 8);
ZK_CHECK_AT(zk_journal_entry, count, 12);
ZK_CHECK_AT(zk_journal_entry, seen_ns, 16);
ZK_CHECK_AT(zk_journal_entry, payload_crc, 24);
ZK_CHECK_AT(zk_journal_entry, header_crc, 28);

static_assert(sizeof(zk_journal_batch) == 32, "zk_journal_batch is 32 bytes");
ZK_CHECK_AT(zk_journal_batch, symbol, 0);
ZK_CHECK_AT(zk_journal_batch, priority, 4);
ZK_CHECK_AT(zk_journal_batch, flags, 5);
ZK_CHECK_AT(zk_journal_batch, reserved, 6);
ZK_CHECK_AT(zk_journal_batch, batch_id, 8);
ZK_CHECK_AT(zk_journal_batch, first_seq, 16);
ZK_CHECK_AT(zk_journal_batch, last_seq, 24);

static_assert(sizeof(zk_store_entry) == 32, "zk_store_entry is 32 bytes");
ZK_CHECK_AT(zk_store_entry, magic, 0);
ZK_CHECK_AT(zk_store_entry, version, 4);
ZK_CHECK_AT(zk_store_entry, reserved, 5);
ZK_CHECK_AT(zk_store_entry, symbol, 8);
ZK_CHECK_AT(zk_store_entry, length, 12);
ZK_CHECK_AT(zk_store_entry, batch_id, 16);
ZK_CHECK_AT(zk_store_entry, data_crc, 24);
ZK_CHECK_AT(zk_store_entry, header_crc, 28);

static_assert(sizeof(zk_store_index) == 40, "zk_store_index is 40 bytes");
ZK_CHECK_AT(zk_store_index, symbol, 0);
ZK_CHECK_AT(zk_store_index, segment, 4);
ZK_CHECK_AT(zk_store_index, batch_id, 8);
ZK_CHECK_AT(zk_store_index, offset, 16);
ZK_CHECK_AT(zk_store_index, length, 24);
ZK_CHECK_AT(zk_store_index, data_crc, 28);
ZK_CHECK_AT(zk_store_index, entry_crc, 32);
ZK_CHECK_AT(zk_store_index, state, 36);

static_assert(sizeof(zk_store_copy_header) == 24, "zk_store_copy_header is 24 bytes");
ZK_CHECK_AT(zk_store_copy_header, version, 4);
ZK_CHECK_AT(zk_store_copy_header, reserved, 5);
ZK_CHECK_AT(zk_store_copy_header, entries, 8);
ZK_CHECK_AT(zk_store_copy_header, count, 12);
ZK_CHECK_AT(zk_store_copy_header, reserved2, 16);
ZK_CHECK_AT(zk_store_copy_header, header_crc, 20);
static_assert(sizeof(zk_store_archived) == 48, "zk_store_archived is 48 bytes");
ZK_CHECK_AT(zk_store_archived, number, 40);
ZK_CHECK_AT(zk_store_archived, record_crc, 44);

static_assert(sizeof(zk_snapshot_header) == 64, "zk_snapshot_header is 64 bytes");
ZK_CHECK_AT(zk_snapshot_header, flags, 5);
ZK_CHECK_AT(zk_snapshot_header, segment, 8);
ZK_CHECK_AT(zk_snapshot_header, offset, 16);
ZK_CHECK_AT(zk_snapshot_header, body_length, 48);
ZK_CHECK_AT(zk_snapshot_header, header_crc, 60);
static_assert(sizeof(zk_snapshot_book) == 32, "zk_snapshot_book is 32 bytes");
ZK_CHECK_AT(zk_snapshot_book, next_batch_id, 8);
ZK_CHECK_AT(zk_snapshot_book, held, 20);
static_assert(sizeof(zk_snapshot_unstarted) == 16, "zk_snapshot_unstarted is 16 bytes");

#undef ZK_CHECK_AT

#endif
