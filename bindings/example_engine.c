/*
 * example_engine.c — the ring's smallest producer, for the ring's own tests:
 * it opens an existing ring and publishes COUNT test records.  These are test
 * patterns, not operation records: a daemon refuses them.  An engine attached
 * to the sidecar is examples/c/engine.c (docs/INTEGRATION.md).
 *
 *   example_engine NAME COUNT [ID [BATCH]]
 *
 * Record (64 bytes, the tests' dtype): u64 seq (0..COUNT-1), u32 id, u32 0,
 * u64 payload[6] with payload[i] = seq * 0x9E3779B97F4A7C15 + id + i, so a
 * reader can check every byte.  BATCH > 1 uses claim/commit of BATCH records
 * written in place; BATCH = 1 (default) uses try_publish.  A full ring is
 * retried after a pause (spin, then yield) — an engine's choice, not the
 * ring's: the ring itself never waits.  Built by `make example-engine` and
 * the tests, with -Icsrc/ring: zkring.h needs nothing else from csrc/.
 *
 * It opens with zkring_open_ex and an ownership requirement, as an engine
 * should: the segment must be owned by our user and no wider than 0600, or,
 * with ZKRING_GID=<gid> in the environment (the daemon's ring.group), owned
 * by that group and no wider than 0660.  A segment someone else created is
 * refused (ZKRING_EFOREIGN) instead of receiving our records.
 */
#define _GNU_SOURCE
#include "zkring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct record {
    uint64_t seq;
    uint32_t id, zero;
    uint64_t payload[6];
};
_Static_assert(sizeof(struct record) == 64, "one 64-byte record");

static void fill(struct record *r, uint64_t seq, uint32_t id)
{
    r->seq = seq;
    r->id = id;
    r->zero = 0;
    for (int i = 0; i < 6; i++)
        r->payload[i] = seq * 0x9E3779B97F4A7C15ull + id + (uint64_t)i;
}

static void backoff(unsigned *misses)
{
    /* Spin briefly (the consumer is usually about to free a slot), then give
     * the core away: on a small machine the consumer may need it. */
    if (++*misses < 64)
        zkring__relax();
    else
        sched_yield();
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s NAME COUNT [ID [BATCH]]\n", argv[0]);
        return 2;
    }
    uint64_t count = strtoull(argv[2], NULL, 10);
    uint32_t id = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 0;
    uint64_t batch = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
    zkring_t ring;
    const char *gid = getenv("ZKRING_GID");
    zkring_access_t access = {(int64_t)geteuid(), -1};
    if (gid && *gid)
        access = (zkring_access_t){-1, strtoll(gid, NULL, 10)};
    int rc = zkring_open_ex(&ring, argv[1], ZKRING_PRODUCER, 64, 0, &access);
    if (rc != ZKRING_OK) {
        /* The ring, the reason (errno text, holder, owner) and what to do. */
        char msg[512];
        fprintf(stderr, "example_engine: %s\n",
                zkring_open_error(msg, sizeof msg, argv[1], ZKRING_PRODUCER, rc, &ring));
        return 1;
    }
    if (batch == 0 || batch > zkring_capacity(&ring))
        batch = 1;
    uint64_t seq = 0;
    unsigned misses = 0;
    struct record rec;
    while (seq < count) {
        if (batch == 1) {
            fill(&rec, seq, id);
            if (zkring_try_publish(&ring, &rec) != ZKRING_OK) {
                backoff(&misses);
                continue;
            }
            seq++;
        } else {
            uint64_t n = count - seq < batch ? count - seq : batch, pos;
            if (zkring_claim(&ring, n, &pos) != ZKRING_OK) {
                backoff(&misses);
                continue;
            }
            for (uint64_t i = 0; i < n; i++)
                fill((struct record *)zkring_slot(&ring, pos + i), seq + i, id);
            zkring_commit(&ring, pos, n);
            seq += n;
        }
        misses = 0;
        if ((seq & 0xFFFF) == 0)
            zkring_heartbeat(&ring);
    }
    zkring_close(&ring);
    return 0;
}
