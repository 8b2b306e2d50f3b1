/*
 * examples/c/engine.c — a matching engine attached to the sidecar, in C.
 *
 *   engine OPS_RING COMPLETIONS_RING [OPS [CAPACITY [SYMBOL [SEED [WAIT_S [LIE_SEQ]]]]]]
 *
 * Defaults: 1000 operations, capacity 1024 (the daemon's book.capacity: it
 * must be the same), symbol 0, seed 1, wait 60 s for completions.  LIE_SEQ
 * (default 0: none) makes the engine misreport one operation's outcome (its
 * claimed `filled` one too many), to show what a divergence looks like.
 *
 * What docs/INTEGRATION.md asks of an engine, in order:
 *   1. match through the provable core (csrc/engine/zk_core.h): it assigns
 *      the handles CANCEL/REDUCE name, and writes the outcome (the claim);
 *   2. stamp each operation with the book's next seq (1, 2, ...) and a
 *      non-decreasing timestamp before applying it;
 *   3. publish every applied operation, rejections included, in seq order;
 *      a FULL ring never blocks matching: the record stays in the outbox and
 *      is retried on the next turn (counted);
 *   4. heartbeat the ops ring at least every second (the daemon calls a
 *      producer silent for ingest.producer_stale_s, default 5 s, "stale");
 *   5. read completions (through struct zk_completion, never offsets) and
 *      report what was proven.
 * The last line is a summary the tests parse:
 *   summary published=N full_events=F trades=T rejected=R completions=C
 *   proven_ops=P disagrees=D failed=X last_seq=S
 * Exit 0 when every operation was proven with no disagreement.
 */
#define _GNU_SOURCE
#include "engine/zk_core.h"
#include "formats/zk_records.h"
#include "ring/zkring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEARTBEAT_NS 200000000ull /* 0.2 s: well inside the daemon's 5 s */

/* ---- a deterministic order flow (xorshift64*) --------------------------- */

static uint64_t rng_state;
static uint64_t next_rand(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static uint32_t below(uint32_t n) { return (uint32_t)(next_rand() % n); }

typedef struct {
    uint64_t *handles; /* orders this engine placed that rested (some filled since) */
    size_t n, cap;
    uint32_t mid;
} flow_t;

/* The next operation's request fields (the seq, ts and symbol come later). */
static void draw(flow_t *f, zk_core *core, zk_op *op, uint64_t client_id) {
    memset(op, 0, sizeof *op);
    op->client_id = client_id;
    op->account = 1 + below(10);
    if (below(20) == 0) f->mid += below(2) ? 1 : -1;
    uint32_t u = below(100);
    uint32_t cancel_pct = zk_core_resting(core) * 4 > zk_core_capacity(core) * 3 ? 60 : 20;
    while (u < cancel_pct && f->n) {
        size_t i = below((uint32_t)f->n);
        uint64_t h = f->handles[i];
        f->handles[i] = f->handles[--f->n];
        if (!zk_core_order(core, h, NULL)) continue; /* filled since: pick another */
        op->handle = h;
        if (below(5) == 0) {
            op->kind = ZK_KIND_REDUCE;
            op->qty = 1 + below(3);
        } else {
            op->kind = ZK_KIND_CANCEL;
        }
        return;
    }
    op->side = below(2) ? ZK_SIDE_BUY : ZK_SIDE_SELL;
    int sign = op->side == ZK_SIDE_BUY ? 1 : -1;
    op->qty = below(10) == 0 ? 50 + below(100) : 1 + below(20);
    if (u < cancel_pct + 20) { /* marketable */
        static const uint8_t kinds[] = {ZK_KIND_IOC, ZK_KIND_IOC, ZK_KIND_MARKET, ZK_KIND_FOK,
                                        ZK_KIND_LIMIT};
        op->kind = kinds[below(5)];
        op->price = op->kind == ZK_KIND_MARKET ? 0 : f->mid + sign * (int)below(3);
    } else { /* resting, behind the touch */
        op->kind = below(20) == 0 ? ZK_KIND_POST_ONLY : ZK_KIND_LIMIT;
        op->price = f->mid - sign * (int)(1 + below(5));
    }
}

static void remember(flow_t *f, const zk_op *op) {
    if (op->status != ZK_STATUS_RESTED) return;
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 64;
        f->handles = realloc(f->handles, f->cap * sizeof *f->handles);
        if (!f->handles) abort();
    }
    f->handles[f->n++] = op->handle;
}

/* ---- the sidecar's side ---------------------------------------------------- */

static uint64_t wall_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int open_ring(zkring_t *r, const char *name, int role) {
    /* The segment must be ours (0600) or, with ZKRING_GID set (the daemon's
     * ring.group), that group's (0660): never a ring someone else made. */
    zkring_access_t access = {(int64_t)geteuid(), -1};
    const char *gid = getenv("ZKRING_GID");
    if (gid && *gid) access = (zkring_access_t){-1, strtoll(gid, NULL, 10)};
    int rc = zkring_open_ex(r, name, role, sizeof(zk_op), 0, &access);
    if (rc != ZKRING_OK)
        fprintf(stderr, "engine: ring %s: %s%s%s (is `zksidecar daemon` running?)\n", name,
                zkring_strerror(rc), rc == ZKRING_ESYS ? ": " : "",
                rc == ZKRING_ESYS ? strerror(r->sys_errno) : "");
    return rc;
}

typedef struct {
    uint64_t completions, proven_ops, disagrees, failed, covered_ops, last_seq;
    uint8_t last_root[32];
    uint32_t symbol; /* the book's: completions of any other are not ours */
} done_t;

static void read_completions(zkring_t *ring, done_t *d) {
    zk_completion buf[64];
    int64_t n;
    while ((n = zkring_poll(ring, buf, 64)) > 0) {
        for (int64_t i = 0; i < n; i++) {
            const zk_completion *c = &buf[i];
            if (c->version != ZK_RECORDS_VERSION || c->symbol != d->symbol) {
                /* another layout, or another book's batch: not ours to count */
                fprintf(stderr, "engine: a completion of layout %u for symbol %u (expected layout %u, "
                        "symbol %u)\n", c->version, c->symbol, ZK_RECORDS_VERSION, d->symbol);
                d->failed++;
                continue;
            }
            uint64_t ops = c->op_count, last = c->first_seq + c->op_count - 1;
            d->completions++;
            d->covered_ops += ops;
            if (last > d->last_seq) d->last_seq = last;
            if (c->status == ZK_COMPLETION_PROVEN) {
                d->proven_ops += ops;
                memcpy(d->last_root, c->post_state_root, 32);
            } else if (c->status == ZK_COMPLETION_DISAGREES) {
                d->disagrees++;
                fprintf(stderr, "engine: batch %llu (seq %llu..%llu): the sidecar's outcome "
                        "differs from our claim\n", (unsigned long long)c->batch_id,
                        (unsigned long long)c->first_seq, (unsigned long long)last);
            } else {
                d->failed++;
            }
        }
    }
    if (n < 0) fprintf(stderr, "engine: completions ring: %s\n", zkring_strerror((int)n));
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s OPS_RING COMPLETIONS_RING [OPS [CAPACITY [SYMBOL [SEED "
                "[WAIT_S [LIE_SEQ]]]]]]\n", argv[0]);
        return 2;
    }
    uint64_t n_ops = argc > 3 ? strtoull(argv[3], NULL, 10) : 1000;
    uint32_t capacity = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10) : 1024;
    uint32_t symbol = argc > 5 ? (uint32_t)strtoul(argv[5], NULL, 10) : 0;
    rng_state = (argc > 6 ? strtoull(argv[6], NULL, 10) : 1) * 0x9E3779B97F4A7C15ull + 1;
    double wait_s = argc > 7 ? atof(argv[7]) : 60.0;
    uint64_t lie_seq = argc > 8 ? strtoull(argv[8], NULL, 10) : 0;

    zk_core *core = zk_core_new(capacity, symbol);
    if (!core) {
        fprintf(stderr, "engine: capacity %u: must be a power of two, 2 .. 2^24\n", capacity);
        return 2;
    }
    zkring_t ops_ring, done_ring;
    if (open_ring(&ops_ring, argv[1], ZKRING_PRODUCER) != ZKRING_OK) return 1;
    if (open_ring(&done_ring, argv[2], ZKRING_CONSUMER) != ZKRING_OK) return 1;

    /* The outbox: every operation applied and not yet on the ring, in seq
     * order.  Here simply all of them; a venue would use a bounded queue. */
    zk_op *outbox = calloc(n_ops ? n_ops : 1, sizeof *outbox);
    flow_t flow = {.mid = 100000};
    done_t done = {0};
    done.symbol = symbol;
    uint64_t applied = 0, published = 0, full_events = 0, trades = 0, rejected = 0;
    uint64_t last_beat = zkring_now_ns();

    while (published < n_ops) {
        if (applied < n_ops) {
            /* match: stamp, apply in the core, keep the claimed record */
            zk_op *op = &outbox[applied];
            draw(&flow, core, op, applied + 1);
            op->seq = zk_core_next_seq(core);
            uint64_t ts = wall_ns();
            op->ts_ns = ts > zk_core_last_ts(core) ? ts : zk_core_last_ts(core);
            op->symbol = symbol;
            int rc = zk_core_apply(core, op, NULL);
            if (rc != ZK_CORE_OK) {
                fprintf(stderr, "engine: core refused seq %llu: %d\n",
                        (unsigned long long)op->seq, rc);
                return 1;
            }
            if (op->seq == lie_seq) op->filled += 1; /* a dishonest claim */
            trades += op->trades;
            rejected += op->status == ZK_STATUS_REJECTED;
            remember(&flow, op);
            applied++;
        }
        /* publish what is waiting; never wait for the ring */
        int64_t sent = zkring_publish_batch(&ops_ring, &outbox[published], applied - published);
        if (sent < 0) {
            fprintf(stderr, "engine: publish: %s\n", zkring_strerror((int)sent));
            return 1;
        }
        if ((uint64_t)sent < applied - published) {
            full_events++;
            if (applied == n_ops) sched_yield(); /* nothing left to match: let the daemon run */
        }
        published += (uint64_t)sent;
        uint64_t now = zkring_now_ns();
        if (now - last_beat > HEARTBEAT_NS) {
            zkring_heartbeat(&ops_ring);
            zkring_heartbeat(&done_ring);
            last_beat = now;
        }
        read_completions(&done_ring, &done);
    }

    /* wait for the proofs of everything published */
    uint64_t deadline = zkring_now_ns() + (uint64_t)(wait_s * 1e9);
    while (done.covered_ops < n_ops && zkring_now_ns() < deadline) {
        read_completions(&done_ring, &done);
        uint64_t now = zkring_now_ns();
        if (now - last_beat > HEARTBEAT_NS) {
            zkring_heartbeat(&ops_ring);
            zkring_heartbeat(&done_ring);
            last_beat = now;
        }
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
    }

    printf("engine (C): %llu operations on symbol %u, %u resting at the end; root after seq %llu: ",
           (unsigned long long)n_ops, symbol, zk_core_resting(core),
           (unsigned long long)done.last_seq);
    for (int i = 0; i < 32; i++) printf("%02x", done.last_root[i]);
    printf("\nsummary published=%llu full_events=%llu trades=%llu rejected=%llu completions=%llu "
           "proven_ops=%llu disagrees=%llu failed=%llu last_seq=%llu\n",
           (unsigned long long)published, (unsigned long long)full_events,
           (unsigned long long)trades, (unsigned long long)rejected,
           (unsigned long long)done.completions, (unsigned long long)done.proven_ops,
           (unsigned long long)done.disagrees, (unsigned long long)done.failed,
           (unsigned long long)done.last_seq);
    zkring_mark_closed(&ops_ring); /* a clean end: the daemon reports the engine "closed", not "dead" */
    zkring_close(&ops_ring);
    zkring_close(&done_ring);
    zk_core_free(core);
    free(outbox);
    free(flow.handles);
    return done.proven_ops == n_ops && done.disagrees == 0 && done.failed == 0 ? 0 : 1;
}
