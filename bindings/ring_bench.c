/*
 * ring_bench.c — the C side of zksidecar.tools._ring_bench (built by
 * bindings/build_ring.py): the loops the `ring` benchmark
 * (tools/bench/ring.py) runs on pinned cores (a Python loop would measure
 * Python, not the ring).  They open rings the benchmark creates through
 * zksidecar.ringbuf.  zkring.h is header-only, so this module compiles its
 * own copy of the ring code from the same header, and the production module
 * (zksidecar.ringbuf._ring) holds no benchmark code.
 */
#ifndef _GNU_SOURCE      /* Python.h, included first by cffi, defines it already */
#define _GNU_SOURCE
#endif
#include "zkring.h"

#include <sched.h>

#if 0 /* the cdef, read by build_ring.py */
/* cffi-begin */
/* Each pins the calling thread to `core` (-1: leave) and returns elapsed
 * nanoseconds, or a negative zkring code. */
int64_t zkr_bench_produce(const char *name, uint64_t total, uint64_t batch, int core);
int64_t zkr_bench_consume(const char *name, uint64_t total, int core);
int64_t zkr_bench_ping(const char *ping, const char *pong, uint64_t rounds, int core,
                       int64_t *rtt_ns);
int64_t zkr_bench_echo(const char *ping, const char *pong, uint64_t rounds, int core);
/* cffi-end */
#endif

static void zkr__pin(int core)
{
    if (core < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* Publishes records 0..total-1 (the position in the first 8 bytes), spinning
 * while full: the sustained rate the consumer allows, amortised per record.
 * batch 1: try_publish per record; batch b: claim b, fill in place, commit. */
int64_t zkr_bench_produce(const char *name, uint64_t total, uint64_t batch, int core)
{
    zkring_t r;
    int rc = zkring_open(&r, name, ZKRING_PRODUCER, 64, 0);
    if (rc != ZKRING_OK)
        return rc;
    if (batch == 0 || batch > zkring_capacity(&r) || total % batch) {
        zkring_close(&r);
        return ZKRING_EINVAL;
    }
    zkr__pin(core);
    uint64_t rec[8] = {0}, pos;
    uint64_t t0 = zkring_now_ns();
    if (batch == 1) {
        for (uint64_t i = 0; i < total; i++) {
            rec[0] = i;
            while (zkring_try_publish(&r, rec) == ZKRING_FULL)
                zkring__relax();
        }
    } else {
        for (uint64_t i = 0; i < total; i += batch) {
            int claimed;
            while ((claimed = zkring_claim(&r, batch, &pos)) == ZKRING_FULL)
                zkring__relax();
            if (claimed != ZKRING_OK) { /* a claim can also fail outright: never write blind */
                zkring_close(&r);
                return claimed;
            }
            for (uint64_t k = 0; k < batch; k++)
                *(uint64_t *)zkring_slot(&r, pos + k) = i + k;
            zkring_commit(&r, pos, batch);
        }
    }
    int64_t elapsed = (int64_t)(zkring_now_ns() - t0);
    zkring_close(&r);
    return elapsed;
}

/* Drains `total` records in batches, checking each carries its position. */
int64_t zkr_bench_consume(const char *name, uint64_t total, int core)
{
    enum { BATCH = 1024 };
    static _Thread_local uint64_t buf[BATCH * 8];
    zkring_t r;
    int rc = zkring_open(&r, name, ZKRING_CONSUMER, 64, 0);
    if (rc != ZKRING_OK)
        return rc;
    zkr__pin(core);
    uint64_t expect = zkring_position(&r), t0 = 0;
    while (expect < total) {
        int64_t n = zkring_poll(&r, buf, BATCH);
        if (n < 0) {
            zkring_close(&r);
            return n;
        }
        if (n && !t0)
            t0 = zkring_now_ns();
        for (int64_t i = 0; i < n; i++, expect++)
            if (buf[i * 8] != expect) {
                zkring_close(&r);
                return ZKRING_ECORRUPT;
            }
        if (!n)
            zkring__relax();
    }
    int64_t elapsed = (int64_t)(zkring_now_ns() - t0);
    zkring_close(&r);
    return elapsed;
}

/* Ping-pong initiator: one record out on `ping`, wait (busy-spin) for the
 * echo on `pong`; rtt_ns[i] is the i-th round trip, clock reads included. */
int64_t zkr_bench_ping(const char *ping, const char *pong, uint64_t rounds, int core,
                       int64_t *rtt_ns)
{
    zkring_t out, in;
    int rc = zkring_open(&out, ping, ZKRING_PRODUCER, 64, 0);
    if (rc != ZKRING_OK)
        return rc;
    if ((rc = zkring_open(&in, pong, ZKRING_CONSUMER, 64, 0)) != ZKRING_OK) {
        zkring_close(&out);
        return rc;
    }
    zkr__pin(core);
    uint64_t rec[8] = {0}, back[8];
    uint64_t begin = zkring_now_ns();
    for (uint64_t i = 0; i < rounds; i++) {
        rec[0] = i;
        uint64_t t0 = zkring_now_ns();
        while (zkring_try_publish(&out, rec) == ZKRING_FULL)
            zkring__relax();
        int64_t n;
        while ((n = zkring_poll(&in, back, 1)) == 0)
            zkring__relax();
        rtt_ns[i] = (int64_t)(zkring_now_ns() - t0);
        if (n < 0 || back[0] != i) {
            rc = n < 0 ? (int)n : ZKRING_ECORRUPT;
            break;
        }
    }
    int64_t elapsed = (int64_t)(zkring_now_ns() - begin);
    zkring_close(&out);
    zkring_close(&in);
    return rc != ZKRING_OK ? rc : elapsed;
}

int64_t zkr_bench_echo(const char *ping, const char *pong, uint64_t rounds, int core)
{
    zkring_t in, out;
    int rc = zkring_open(&in, ping, ZKRING_CONSUMER, 64, 0);
    if (rc != ZKRING_OK)
        return rc;
    if ((rc = zkring_open(&out, pong, ZKRING_PRODUCER, 64, 0)) != ZKRING_OK) {
        zkring_close(&in);
        return rc;
    }
    zkr__pin(core);
    uint64_t rec[8];
    uint64_t begin = zkring_now_ns();
    for (uint64_t i = 0; i < rounds; i++) {
        int64_t n;
        while ((n = zkring_poll(&in, rec, 1)) == 0)
            zkring__relax();
        if (n < 0) {
            rc = (int)n;
            break;
        }
        while (zkring_try_publish(&out, rec) == ZKRING_FULL)
            zkring__relax();
    }
    int64_t elapsed = (int64_t)(zkring_now_ns() - begin);
    zkring_close(&in);
    zkring_close(&out);
    return rc != ZKRING_OK ? rc : elapsed;
}
