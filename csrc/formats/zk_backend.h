/*
 * zk_backend.h — the external prover process protocol: the frames the daemon
 * and a prover host (`zksidecar prover-server`, or a ZisK / SP1 host written
 * to this protocol) exchange over the host's stdin and stdout.  One
 * definition: daemon/frames.py mirrors these structs as numpy dtypes
 * (tests/test_backends.py checks every size, offset and constant against
 * this header through cffi) and docs/API.md documents each byte.
 *
 * Every frame is a little-endian uint32 length, then that many bytes:
 *
 *   request  = zk_backend_request, then n_cells uint32 cells (the engine's
 *              state table before the batch), then n_ops zk_op records
 *              (zk_records.h, outcome fields filled), then n_steps zk_step
 *              records (csrc/engine/zk_engine.h: the engine's traced run of
 *              those operations, the witness), then n_trades zk_trade
 *              records (zk_records.h: that run's trades), then, when mode
 *              is ZK_BACKEND_MODE_ZK, one zk_backend_zk (the batch's keys,
 *              derived by the daemon at the cut: docs/ZK.md section 9; never
 *              the store key); the length is exactly
 *              sizeof(zk_backend_request) + 4 * n_cells + 64 * n_ops
 *              + 280 * n_steps + 48 * n_trades (+ 224 in zk mode).
 *   response = zk_backend_response, then the body: on ZK_BACKEND_OK a batch
 *              proof file (docs/PROOF_FORMAT.md), on ZK_BACKEND_ERROR a UTF-8
 *              message.
 *
 * One request, then one response, in turn; end of input at a frame boundary
 * ends the session.  Self-contained like zk_records.h.
 */
#ifndef ZK_BACKEND_H
#define ZK_BACKEND_H

#include <assert.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "zk_backend.h: frames are little-endian; this target is not"
#endif

/* cffi-begin */
#define ZK_BACKEND_VERSION 3   /* 2: the request carries the engine's steps and trades; 3: the mode */
#define ZK_BACKEND_MAX_FRAME 1073741824   /* 1 GiB: a larger length is a broken stream */

/* zk_backend_response.status */
#define ZK_BACKEND_OK 0
#define ZK_BACKEND_ERROR 1

/* zk_backend_request.mode */
#define ZK_BACKEND_MODE_TRANSPARENT 0
#define ZK_BACKEND_MODE_ZK 1
/* zk_backend_zk.flags */
#define ZK_BACKEND_ZK_RESUMED 1

/* Request header, daemon -> prover, 48 bytes.  magic is "ZKPQ". */
typedef struct zk_backend_request {
    uint8_t magic[4];        /*  0  'Z' 'K' 'P' 'Q' */
    uint16_t version;        /*  4  ZK_BACKEND_VERSION */
    uint16_t log_blowup;     /*  6  LDE blowup 2^log_blowup */
    uint32_t symbol;         /*  8  the book */
    uint32_t security_bits;  /* 12  conjectured security the proof must reach */
    uint64_t batch_id;       /* 16  position in the symbol's chain */
    uint32_t trace_length;   /* 24  rows per proof, fixed for the chain */
    uint32_t n_cells;        /* 28  uint32 state cells that follow */
    uint32_t n_ops;          /* 32  zk_op records after the cells */
    uint32_t n_steps;        /* 36  zk_step records after the ops */
    uint32_t n_trades;       /* 40  zk_trade records after the steps */
    uint32_t mode;           /* 44  ZK_BACKEND_MODE_*: zk mode appends a zk_backend_zk */
} zk_backend_request;

/* A zk request's keys, 224 bytes, after the trades: each key with the
 * digest it was derived for (the prover refuses a run whose content or
 * tables differ).  Batch 0 has no pre-state key (the public empty book):
 * its pre_table and pre_key are zero. */
typedef struct zk_backend_zk {
    uint32_t flags;          /*   0  ZK_BACKEND_ZK_RESUMED: the batch begins where its stream resumed */
    uint32_t reserved;       /*   4  zero */
    uint64_t pre_ts;         /*   8  the pre-state's last timestamp (the batch before's last; 0 for batch 0) */
    uint8_t content[32];     /*  16  the batch's content digest (zk_chain.content_digest) */
    uint8_t batch_key[32];   /*  48  kappa_b */
    uint8_t pre_table[32];   /*  80  the pre-state table's digest */
    uint8_t pre_key[32];     /* 112  sigma_(b-1) */
    uint8_t post_table[32];  /* 144  the post-state table's digest */
    uint8_t post_key[32];    /* 176  sigma_b */
    uint8_t reserved2[16];   /* 208  zero */
} zk_backend_zk;

/* Response header, prover -> daemon, 32 bytes.  magic is "ZKPR". */
typedef struct zk_backend_response {
    uint8_t magic[4];        /*  0  'Z' 'K' 'P' 'R' */
    uint16_t version;        /*  4  ZK_BACKEND_VERSION */
    uint16_t status;         /*  6  ZK_BACKEND_OK or ZK_BACKEND_ERROR */
    uint32_t symbol;         /*  8  echoed from the request */
    uint32_t reserved;       /* 12  zero */
    uint64_t batch_id;       /* 16  echoed from the request */
    uint64_t prove_ns;       /* 24  the prover's own time for this batch */
} zk_backend_response;
/* cffi-end */

#ifndef offsetof
#define offsetof(type, field) __builtin_offsetof(type, field)
#endif
#define ZK_BACKEND_AT(type, field, offset) \
    static_assert(offsetof(type, field) == (offset), #type "." #field " must be at byte " #offset)

static_assert(sizeof(zk_backend_request) == 48, "zk_backend_request is 48 bytes");
ZK_BACKEND_AT(zk_backend_request, magic, 0);
ZK_BACKEND_AT(zk_backend_request, version, 4);
ZK_BACKEND_AT(zk_backend_request, log_blowup, 6);
ZK_BACKEND_AT(zk_backend_request, symbol, 8);
ZK_BACKEND_AT(zk_backend_request, security_bits, 12);
ZK_BACKEND_AT(zk_backend_request, batch_id, 16);
ZK_BACKEND_AT(zk_backend_request, trace_length, 24);
ZK_BACKEND_AT(zk_backend_request, n_cells, 28);
ZK_BACKEND_AT(zk_backend_request, n_ops, 32);
ZK_BACKEND_AT(zk_backend_request, n_steps, 36);
ZK_BACKEND_AT(zk_backend_request, n_trades, 40);
ZK_BACKEND_AT(zk_backend_request, mode, 44);

static_assert(sizeof(zk_backend_zk) == 224, "zk_backend_zk is 224 bytes");
ZK_BACKEND_AT(zk_backend_zk, flags, 0);
ZK_BACKEND_AT(zk_backend_zk, pre_ts, 8);
ZK_BACKEND_AT(zk_backend_zk, content, 16);
ZK_BACKEND_AT(zk_backend_zk, batch_key, 48);
ZK_BACKEND_AT(zk_backend_zk, pre_table, 80);
ZK_BACKEND_AT(zk_backend_zk, pre_key, 112);
ZK_BACKEND_AT(zk_backend_zk, post_table, 144);
ZK_BACKEND_AT(zk_backend_zk, post_key, 176);
ZK_BACKEND_AT(zk_backend_zk, reserved2, 208);

static_assert(sizeof(zk_backend_response) == 32, "zk_backend_response is 32 bytes");
ZK_BACKEND_AT(zk_backend_response, magic, 0);
ZK_BACKEND_AT(zk_backend_response, version, 4);
ZK_BACKEND_AT(zk_backend_response, status, 6);
ZK_BACKEND_AT(zk_backend_response, symbol, 8);
ZK_BACKEND_AT(zk_backend_response, reserved, 12);
ZK_BACKEND_AT(zk_backend_response, batch_id, 16);
ZK_BACKEND_AT(zk_backend_response, prove_ns, 24);

#undef ZK_BACKEND_AT

#endif
