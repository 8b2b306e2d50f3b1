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

/* What `zksidecar rings list` shows of a segment, read without taking
 * any role (zkr_inspect).  Statuses are zkring__ident_status's
 * ZKRING_CLAIM_ALIVE / _DEAD / _FOREIGN, or -1 where no identity is recorded. */
typedef struct zkr_info {
    uint64_t file_size;
    uint32_t uid, gid, mode;           /* the segment file's owner, group, permission bits */
    uint32_t version, record_size, ring_mode, flags;
    uint64_t capacity, tail, head;
    int32_t consumer_pid;
    int consumer_status;
    int32_t producer_pid;              /* SPSC: the producer role's holder */
    int producer_status;
    uint32_t producer_slots;           /* MPSC: registry entries in use, below */
    int32_t slot_pid[64];
    int slot_status[64];
    int sys_errno;
} zkr_info_t;
/* Read segment `name`'s header (O_RDONLY, no role taken): ZKRING_OK, or
 * ZKRING_ESYS (errno in sys_errno), _EMAGIC, _EVERSION, _EHEADER, _ETRUNC,
 * _EINVAL: not a ring this build reads; _ECORRUPT: its indices are
 * impossible (tail more than capacity past head), as a consumer would
 * refuse it. */
int zkr_inspect(const char *name, zkr_info_t *out);
/* zkring__ident_status of identity word `w` as this process sees it. */
int zkr_ident_status(uint64_t w);
/* Does the segment open on `fd` meet `access`?  zkring__check_access, the
 * check zkring_open_ex makes before it maps a segment, for a caller that
 * must not take a role (`zksidecar daemon --check-config`): ZKRING_OK,
 * ZKRING_EFOREIGN or ZKRING_ESYS, with the segment's owner, group and mode
 * (or errno) in `r` as a failed open leaves them. */
int zkr_check_access(zkring_t *r, int fd, const zkring_access_t *access);

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


typedef struct zkr_info {
    uint64_t file_size;
    uint32_t uid, gid, mode;
    uint32_t version, record_size, ring_mode, flags;
    uint64_t capacity, tail, head;
    int32_t consumer_pid;
    int consumer_status;
    int32_t producer_pid;
    int producer_status;
    uint32_t producer_slots;
    int32_t slot_pid[64];
    int slot_status[64];
    int sys_errno;
} zkr_info_t;

_Static_assert(ZKRING_PRODUCER_SLOTS <= 64, "zkr_info_t holds every registry entry");

int zkr_ident_status(uint64_t w)
{
    return zkring__ident_status(w, zkring__ns_bits());
}

int zkr_check_access(zkring_t *r, int fd, const zkring_access_t *access)
{
    struct stat st;
    return zkring__check_access(r, fd, access, &st);
}

/* The liveness of an identity word as zkr_info_t reports it. */
static int zkr__status(uint64_t w, uint32_t ns_bits)
{
    return w ? zkring__ident_status(w, ns_bits) : -1;
}

/* head and tail as zkring__indices reads them, checked as the consumer
 * checks them (tail - head <= capacity, else ZKRING_ECORRUPT) when head held
 * still; when a live consumer moved it under every try, shown with the fill
 * bounded by the capacity rather than called corrupt. */
static int zkr__indices(const struct zkring_hdr *h, zkr_info_t *out)
{
    int still = zkring__indices(h, &out->head, &out->tail);
    if (out->tail - out->head > h->capacity) {
        if (still)
            return ZKRING_ECORRUPT;
        out->head = out->tail - h->capacity;  /* a full-ring bound, never a wrapped fill */
    }
    return ZKRING_OK;
}

int zkr_inspect(const char *name, zkr_info_t *out)
{
    char path[256];
    memset(out, 0, sizeof *out);
    out->consumer_status = out->producer_status = -1;
    if (zkring__shm_name(path, sizeof path, name) != ZKRING_OK)
        return ZKRING_EINVAL;
    int fd = shm_open(path, O_RDONLY, 0);
    if (fd < 0) {
        out->sys_errno = errno;
        return ZKRING_ESYS;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        out->sys_errno = errno;
        close(fd);
        return ZKRING_ESYS;
    }
    out->file_size = (uint64_t)st.st_size;
    out->uid = (uint32_t)st.st_uid;
    out->gid = (uint32_t)st.st_gid;
    out->mode = (uint32_t)st.st_mode & 07777u;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < ZKRING_RECORDS_OFFSET) {
        close(fd);
        return ZKRING_ETRUNC;
    }
    size_t len = (size_t)st.st_size;
    void *base = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    out->sys_errno = base == MAP_FAILED ? errno : 0;
    close(fd);
    if (base == MAP_FAILED)
        return ZKRING_ESYS;
    const struct zkring_hdr *h = (const struct zkring_hdr *)base;
    out->version = h->version;
    int rc = zkring__validate(h, len, h->record_size);
    if (rc == ZKRING_OK) {
        uint32_t ns = zkring__ns_bits();
        out->record_size = h->record_size;
        out->ring_mode = h->mode;
        out->flags = ZKRING_LOAD(&h->flags, ZKRING_RELAXED);
        out->capacity = h->capacity;
        rc = zkr__indices(h, out);
        uint64_t c = ZKRING_LOAD(&h->consumer_owner, ZKRING_ACQUIRE);
        out->consumer_pid = c ? zkring__ident_pid(c) : 0;
        out->consumer_status = zkr__status(c, ns);
        if (h->mode == ZKRING_SPSC) {
            uint64_t p = ZKRING_LOAD(&h->producer_owner, ZKRING_ACQUIRE);
            out->producer_pid = p ? zkring__ident_pid(p) : 0;
            out->producer_status = zkr__status(p, ns);
        } else {
            const struct zkring_producer_slot *reg =
                (const struct zkring_producer_slot *)((const uint8_t *)base + h->registry_offset);
            for (uint32_t i = 0; i < ZKRING_PRODUCER_SLOTS; i++) {
                uint64_t w = ZKRING_LOAD(&reg[i].owner, ZKRING_ACQUIRE);
                if (!w)
                    continue;
                out->slot_pid[out->producer_slots] = zkring__ident_pid(w);
                out->slot_status[out->producer_slots] = zkr__status(w, ns);
                out->producer_slots++;
            }
        }
    }
    munmap(base, len);
    return rc;
}
