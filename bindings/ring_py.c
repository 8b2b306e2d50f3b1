/*
 * ring_py.c — the C side of zksidecar.ringbuf._ring (built by
 * bindings/build_ring.py).  zkring.h's functions are called by cffi directly
 * (they are declared in the cdef below); this file adds only what Python
 * cannot do well itself: a length-checked single publish and the layout
 * offsets for the Python mirror's test.  The `ring` benchmark's C loops are
 * in bindings/ring_bench.c, a module of their own.
 */
#ifndef _GNU_SOURCE      /* Python.h, included first by cffi, defines it already */
#define _GNU_SOURCE
#endif
#include "zkring.h"

#if 0 /* the cdef, read by build_ring.py; "..." lets cffi take sizes and
         values from the C above instead of restating them */
/* cffi-begin */
typedef struct zkring {
    int32_t stall_status, stall_pid;
    uint64_t stall_pos, stall_since, unblock_ns;
    int sys_errno;
    int32_t holder_pid;
    uint32_t seg_uid, seg_gid, seg_mode, seg_version;
    ...;
} zkring_t;
typedef struct zkring_access {
    int64_t uid;
    int64_t gid;
} zkring_access_t;
typedef struct zkring_idle {
    uint32_t kind;
    uint32_t spins;
    uint32_t yields;
    uint64_t park_ns;
} zkring_idle_t;

#define ZKRING_VERSION ...
#define ZKRING_MAGIC ...
#define ZKRING_RECORDS_OFFSET ...
#define ZKRING_LINE ...
#define ZKRING_SPSC ...
#define ZKRING_MPSC ...
#define ZKRING_F_GROUP ...
#define ZKRING_F_CLOSED ...
#define ZKRING_PRODUCER ...
#define ZKRING_CONSUMER ...
#define ZKRING_O_TAKEOVER ...
#define ZKRING_O_DEFER_RELEASE ...
#define ZKRING_OK ...
#define ZKRING_FULL ...
#define ZKRING_ESYS ...
#define ZKRING_ECORRUPT ...
#define ZKRING_EBUSY ...
#define ZKRING_EINVAL ...
#define ZKRING_EMAGIC ...
#define ZKRING_EVERSION ...
#define ZKRING_ERECSIZE ...
#define ZKRING_ETRUNC ...
#define ZKRING_EHEADER ...
#define ZKRING_EFOREIGN ...
#define ZKRING_PRODUCER_SLOTS ...
#define ZKRING_CLAIM_ALIVE ...
#define ZKRING_CLAIM_DEAD ...
#define ZKRING_CLAIM_FOREIGN ...
#define ZKRING_CLAIM_UNKNOWN ...
#define ZKRING_IDLE_SPIN ...
#define ZKRING_IDLE_YIELD ...
#define ZKRING_IDLE_PARK ...

int zkring_create(const char *name, uint64_t capacity, uint32_t record_size, uint32_t mode,
                  int64_t gid);
int zkring_unlink(const char *name);
uint64_t zkring_segment_size(uint64_t capacity, uint32_t record_size, uint32_t mode);
int zkring_open(zkring_t *r, const char *name, int role, uint32_t record_size, int options);
int zkring_open_ex(zkring_t *r, const char *name, int role, uint32_t record_size, int options,
                   const zkring_access_t *access);
uint64_t zkring_now_ns(void);
int64_t zkring_unblock(zkring_t *r, uint64_t now);
void zkring_set_unblock(zkring_t *r, uint64_t timeout_ns);
uint64_t zkring_unblocked(const zkring_t *r);
int zkring_claim(zkring_t *r, uint64_t n, uint64_t *pos);
uint8_t *zkring_slot(const zkring_t *r, uint64_t pos);
void zkring_commit(zkring_t *r, uint64_t pos, uint64_t n);
void zkring_close(zkring_t *r);
void zkring_mark_closed(zkring_t *r);
void zkring_heartbeat(zkring_t *r);
int zkring_peer_status(const zkring_t *r, uint64_t max_age_ns);
uint64_t zkring_full_events(const zkring_t *r);
uint64_t zkring_capacity(const zkring_t *r);
uint64_t zkring_position(const zkring_t *r);
const char *zkring_strerror(int code);
int64_t zkring_publish_batch(zkring_t *r, const void *recs, uint64_t n);
int64_t zkring_poll(zkring_t *r, void *out, uint64_t max);
void zkring_release(zkring_t *r);
uint64_t zkring_depth(const zkring_t *r);
int64_t zkring_poll_wait(zkring_t *r, void *out, uint64_t max, const zkring_idle_t *idle,
                         uint64_t timeout_ns);

/* try_publish of a Python bytes object: ZKRING_EINVAL unless len is the
 * record size (checked here, where it costs nothing). */
int zkr_try_publish(zkring_t *r, const char *rec, size_t len);
/* Byte offset of a header field by name, -1 if unknown (layout test); a
 * name "slot.FIELD" is a field of a producer registry entry. */
int64_t zkr_offsetof(const char *field);

/* cffi-end */
#endif

int zkr_try_publish(zkring_t *r, const char *rec, size_t len)
{
    if (len != r->record_size)
        return ZKRING_EINVAL;
    return zkring_try_publish(r, rec);
}

int64_t zkr_offsetof(const char *field)
{
#define F(name) if (strcmp(field, #name) == 0) return (int64_t)offsetof(struct zkring_hdr, name)
    F(magic); F(version); F(record_size); F(capacity); F(mode); F(flags);
    F(records_offset); F(seq_offset); F(segment_size); F(registry_offset); F(producer_slots);
    F(producer_pid); F(producer_heartbeat_ns); F(full_events); F(producer_owner);
    F(consumer_pid); F(consumer_parked); F(consumer_heartbeat_ns); F(consumer_owner);
    F(unblocked);
    F(tail); F(head_cache); F(head);
#undef F
#define S(name) if (strcmp(field, "slot." #name) == 0) \
        return (int64_t)offsetof(struct zkring_producer_slot, name)
    S(owner); S(intent_lo); S(intent_hi); S(heartbeat_ns);
#undef S
    if (strcmp(field, "slot_size") == 0)
        return (int64_t)sizeof(struct zkring_producer_slot);
    if (strcmp(field, "header_size") == 0)
        return (int64_t)sizeof(struct zkring_hdr);
    return -1;
}

