/*
 * zkring.h — the shared-memory ring between a matching engine and the sidecar.
 *
 * Header-only, C11 atomics, libc only (plus the Linux futex syscall number).
 * Include it from exactly the code that needs it; every function is static.
 * The same header compiles as C++17, C++20 and C++23 (bindings/zkring.hpp is
 * a thin RAII wrapper over it): every atomic goes through the ZKRING_ATOMIC /
 * ZKRING_LOAD / ... layer below, which is C11's _Atomic and
 * atomic_*_explicit in C (the same tokens as writing them out, so the same
 * code) and std::atomic<T> with std::atomic_*_explicit and the same memory
 * orders in C++.  One protocol, one text: nothing else restates it for C++.
 * Older C and C++ stop with an #error that says what is needed.
 *
 * One segment holds one ring of fixed-size opaque records (64 bytes for the
 * operation ring and for the completion ring; the ring never looks inside a
 * record).  Two modes share one layout, chosen at creation:
 *
 *   SPSC  one producer thread.  The producer owns `tail`, the consumer owns
 *         `head`; each keeps a private cached copy of the other's counter and
 *         re-reads the shared one only when the cache says "full" / "empty"
 *         (the cached-index SPSC queue; Agrona's OneToOneRingBuffer, the
 *         Disruptor's single-producer sequencer).
 *   MPSC  several producer threads or processes.  A producer claims a range
 *         by compare-and-swap on `tail` after checking capacity against the
 *         shared `head_cache` line, writes its records, then stamps each
 *         slot's sequence word; the consumer takes a slot only when its
 *         sequence says this lap's record is complete, so a slow or stalled
 *         claimer never exposes a half-written record (the Disruptor's
 *         availability buffer, Vyukov's bounded queue).
 *
 * Layout (little-endian; offsets in bytes; the byte-by-byte table with the
 * same numbers is docs/RING.md, and ringbuf/layout.py mirrors it, checked by
 * tests/test_ring_layout.py).  Every region a different party writes sits on
 * its own 128-byte line (two 64-byte lines: the adjacent-line prefetcher
 * pairs lines, so 64 is not enough to stop false sharing).
 *
 *   line 0   [0, 128)   configuration, written once by zkring_create
 *     0   u64  magic            "ZKSDRING" (0x474E495244534B5A); written last
 *     8   u32  version          ZKRING_VERSION
 *     12  u32  record_size      bytes per record (a multiple of 8, 8..4096)
 *     16  u64  capacity         records, a power of two, 2..2^30
 *     24  u32  mode             1 = SPSC, 2 = MPSC (0 is never valid)
 *     28  u32  flags            bit 0 GROUP (0660), bit 1 CLOSED (atomic)
 *     32  u64  records_offset   = 768
 *     40  u64  seq_offset       MPSC: records_offset + capacity*record_size;
 *                               SPSC: 0
 *     48  u64  segment_size     bytes the segment must have
 *     56  u64  registry_offset  MPSC: seq_offset + capacity*8; SPSC: 0
 *     64  u32  producer_slots   MPSC: ZKRING_PRODUCER_SLOTS; SPSC: 0
 *     68..127  zero
 *   line 1   [128, 256)  producer side, written by producers
 *     128 i32  producer_pid     last producer to open or heartbeat; 0 = none
 *     132 u32  zero
 *     136 u64  producer_heartbeat_ns   CLOCK_MONOTONIC
 *     144 u64  full_events      failed publishes because the ring was full
 *     152 u64  producer_owner   SPSC: the producer's identity word; 0 = none
 *   line 2   [256, 384)  consumer side, written by the consumer
 *     256 i32  consumer_pid     0 = none
 *     260 u32  consumer_parked  futex word: 1 while the consumer sleeps
 *     264 u64  consumer_heartbeat_ns   CLOCK_MONOTONIC
 *     272 u64  consumer_owner   the consumer's identity word; 0 = none
 *     280 u64  unblocked        positions skipped because their claimer died
 *   line 3   [384, 512)  u64 tail        next position a producer claims
 *   line 4   [512, 640)  u64 head_cache  MPSC producers' shared copy of head
 *   line 5   [640, 768)  u64 head        next position the consumer reads
 *   [768, 768 + capacity*record_size)   records; position p lives in slot
 *                                       p & (capacity-1)
 *   MPSC only: capacity u64 sequence words; slot s holds p+1 once the
 *   record at position p (p & mask == s) is fully written.  Zero-filled
 *   memory is a valid empty ring: no position p has p+1 == 0.
 *   MPSC only, at registry_offset: ZKRING_PRODUCER_SLOTS entries of 128
 *   bytes, one per open producer handle (struct zkring_producer_slot):
 *     0   u64  owner        the producer's identity word; 0 = free
 *     8   u64  intent_lo    [intent_lo, intent_hi): the positions it is
 *     16  u64  intent_hi    claiming or has claimed and not yet committed
 *     24  u64  heartbeat_ns CLOCK_MONOTONIC
 *
 * Identity word (who holds a role or a producer slot), one u64 so that it
 * is claimed and read atomically:
 *   bits 0..21   pid (the kernel's PID_MAX_LIMIT is 2^22)
 *   bits 22..31  1 + (inode of /proc/self/ns/pid) % 1023; 0 = unknown
 *   bits 32..63  low 32 bits of the process's start time (clock ticks since
 *                boot, field 22 of /proc/<pid>/stat); 0 = unknown
 * The start time tells a live holder from an unrelated process that reused
 * its pid (and a restarted container's process that got the same pid); the
 * namespace bits tell that a pid was recorded in another pid namespace, where
 * this process cannot check it (see zkring__ident_status).
 *
 * Positions are 64-bit and never wrap in practice (2^64 records at 10^9/s is
 * 584 years), so `tail - head` is always the fill level.
 *
 * Ownership: /dev/shm is world-writable, so whoever creates a name first owns
 * it.  zkring_open_ex checks the segment's owner, group and mode on the
 * opened descriptor before mapping it (ZKRING_EFOREIGN), and the consumer
 * and SPSC producer roles, and the MPSC producer registry's entries, are
 * claimed by compare-and-swap of an identity word (ZKRING_EBUSY while a live
 * process holds one).
 *
 * Trust: the consumer (the sidecar) trusts nothing in the segment.  It checks
 * magic, version, sizes and mode at open, keeps its own head privately, and
 * refuses any tail outside [head, head + capacity] with ZKRING_ECORRUPT
 * instead of reading past what was published.  A segment truncated after it
 * was mapped would still raise SIGBUS; that takes a deliberate ftruncate, not
 * an engine bug writing bad bytes.
 */
#ifndef ZKRING_H
#define ZKRING_H

/* What the header needs, said once and first; the rest of it is skipped
 * then, so the #error is the only message (see the atomics layer below). */
#if defined(__cplusplus) && __cplusplus < 201703L
#error "zkring.h (and bindings/zkring.hpp) needs C++17 or later: compile with -std=c++17, -std=c++20 or -std=c++23"
#elif !defined(__cplusplus) && \
    (!defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L || defined(__STDC_NO_ATOMICS__))
#error "zkring.h needs C11 atomics (<stdatomic.h>): compile with -std=c11 (or gnu11) or later, with a compiler that has them"
#elif !defined(__GNUC__)
#error "zkring.h needs GCC or Clang (or a compiler that defines __GNUC__): it uses their builtins and inline assembly for the spin-wait hint"
#else

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

/* ---- the atomics layer ---------------------------------------------------
 * The segment is shared memory that C, C++, Rust and Python map at the same
 * offsets, so an atomic must be the plain integer's size and alignment, and
 * lock-free (a lock would live in one process's address space): checked
 * below for every type the layout uses, in every language mode.
 *
 * C: C11 <stdatomic.h>; the macros expand to exactly the calls they name.
 * C++: <atomic>.  Not <stdatomic.h>: libstdc++ maps it onto std::atomic only
 * from C++23 and libc++ from C++23 too; std::atomic<T> and the free
 * functions std::atomic_*_explicit exist since C++11 and their memory orders
 * are C11's (the C++ memory model is C11's).  C++17 is the floor: it is the
 * first standard whose free functions take the expected/desired value as
 * the atomic's value_type (P0558), so `ZKRING_STORE(&w, 0, ...)` deduces,
 * and the first with std::atomic<T>::is_always_lock_free for the checks. */
#if defined(__cplusplus)
#include <atomic>
#include <type_traits>
#define ZKRING_STATIC_ASSERT static_assert
#define ZKRING_ALIGNOF(T) alignof(T)
#define ZKRING_ATOMIC(T) std::atomic<T>
#define ZKRING_RELAXED std::memory_order_relaxed
#define ZKRING_ACQUIRE std::memory_order_acquire
#define ZKRING_RELEASE std::memory_order_release
#define ZKRING_ACQ_REL std::memory_order_acq_rel
#define ZKRING_SEQ_CST std::memory_order_seq_cst
#define ZKRING_LOAD(obj, mo) std::atomic_load_explicit(obj, mo)
#define ZKRING_STORE(obj, v, mo) std::atomic_store_explicit(obj, v, mo)
#define ZKRING_EXCHANGE(obj, v, mo) std::atomic_exchange_explicit(obj, v, mo)
#define ZKRING_CAS(obj, exp, v, ok, fail) \
    std::atomic_compare_exchange_strong_explicit(obj, exp, v, ok, fail)
#define ZKRING_CAS_WEAK(obj, exp, v, ok, fail) \
    std::atomic_compare_exchange_weak_explicit(obj, exp, v, ok, fail)
#define ZKRING_FETCH_ADD(obj, v, mo) std::atomic_fetch_add_explicit(obj, v, mo)
#define ZKRING_FETCH_AND(obj, v, mo) std::atomic_fetch_and_explicit(obj, v, mo)
#define ZKRING_FETCH_OR(obj, v, mo) std::atomic_fetch_or_explicit(obj, v, mo)
#define ZKRING_FENCE(mo) std::atomic_thread_fence(mo)
#define ZKRING_LOCK_FREE(T) (std::atomic<T>::is_always_lock_free)
#else
#include <stdatomic.h>
#define ZKRING_STATIC_ASSERT _Static_assert
#define ZKRING_ALIGNOF(T) _Alignof(T)
#define ZKRING_ATOMIC(T) _Atomic(T)
#define ZKRING_RELAXED memory_order_relaxed
#define ZKRING_ACQUIRE memory_order_acquire
#define ZKRING_RELEASE memory_order_release
#define ZKRING_ACQ_REL memory_order_acq_rel
#define ZKRING_SEQ_CST memory_order_seq_cst
#define ZKRING_LOAD(obj, mo) atomic_load_explicit(obj, mo)
#define ZKRING_STORE(obj, v, mo) atomic_store_explicit(obj, v, mo)
#define ZKRING_EXCHANGE(obj, v, mo) atomic_exchange_explicit(obj, v, mo)
#define ZKRING_CAS(obj, exp, v, ok, fail) \
    atomic_compare_exchange_strong_explicit(obj, exp, v, ok, fail)
#define ZKRING_CAS_WEAK(obj, exp, v, ok, fail) \
    atomic_compare_exchange_weak_explicit(obj, exp, v, ok, fail)
#define ZKRING_FETCH_ADD(obj, v, mo) atomic_fetch_add_explicit(obj, v, mo)
#define ZKRING_FETCH_AND(obj, v, mo) atomic_fetch_and_explicit(obj, v, mo)
#define ZKRING_FETCH_OR(obj, v, mo) atomic_fetch_or_explicit(obj, v, mo)
#define ZKRING_FENCE(mo) atomic_thread_fence(mo)
/* C11 says "always lock-free" per standard integer type (the macros cover
 * the signed and unsigned type alike); the layout's types are 4 or 8 bytes. */
#define ZKRING_LOCK_FREE(T)                                                              \
    (sizeof(T) == 4   ? ATOMIC_INT_LOCK_FREE == 2                                        \
     : sizeof(T) == 8 ? ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2        \
                      : 0)
#endif

/* The plain types of the layout, their atomics: same size, same alignment,
 * always lock-free, or the layout (and the protocol) does not hold. */
#define ZKRING__SAME_AS_PLAIN(T)                                                         \
    ZKRING_STATIC_ASSERT(sizeof(ZKRING_ATOMIC(T)) == sizeof(T) &&                        \
                             ZKRING_ALIGNOF(ZKRING_ATOMIC(T)) == ZKRING_ALIGNOF(T) &&    \
                             ZKRING_LOCK_FREE(T),                                        \
                         "zkring.h: an atomic " #T " must be a lock-free " #T " in memory")
ZKRING__SAME_AS_PLAIN(uint64_t);
ZKRING__SAME_AS_PLAIN(uint32_t);
ZKRING__SAME_AS_PLAIN(int32_t);

#define ZKRING_MAGIC 0x474E495244534B5AULL /* "ZKSDRING" little-endian */
/* 2: the producer registry, the identity words and the unblock counter.
 * A version-1 client would neither register its claims nor know the new
 * segment size, so it is refused (EVERSION) rather than half understood.
 * 3: the same header; the rings now carry records of layout version 2
 * (csrc/formats/zk_records.h: the completion record names its symbol).  The
 * ring version is the one thing every client checks at open, so an engine
 * built against layout-1 records is refused here instead of misreading
 * completions. */
#define ZKRING_VERSION 3u
#define ZKRING_LINE 128u
#define ZKRING_RECORDS_OFFSET 768u
#define ZKRING_MAX_CAPACITY (1ull << 30)
#define ZKRING_MAX_RECORD 4096u
#define ZKRING_PRODUCER_SLOTS 64u /* MPSC producer handles open at once */
/* A holder recorded from another pid namespace cannot be checked by pid; it
 * counts as alive while its heartbeat is younger than this. */
#define ZKRING_FOREIGN_STALE_NS 10000000000ull

/* Modes */
#define ZKRING_SPSC 1u
#define ZKRING_MPSC 2u
/* Header flags */
#define ZKRING_F_GROUP 1u  /* created 0660 for a configured group */
#define ZKRING_F_CLOSED 2u /* a producer ended the stream */
/* Roles */
#define ZKRING_PRODUCER 1
#define ZKRING_CONSUMER 2
/* open() options */
#define ZKRING_O_TAKEOVER 1 /* replace a live consumer / SPSC producer */
#define ZKRING_O_DEFER_RELEASE 2 /* consumer: polls do not free slots; zkring_release does */

/* Return codes.  ZKRING_FULL is a normal outcome, not an error. */
#define ZKRING_OK 0
#define ZKRING_FULL 1
#define ZKRING_EINVAL (-1)   /* bad argument */
#define ZKRING_ESYS (-2)     /* a system call failed; errno says which */
#define ZKRING_EMAGIC (-3)   /* not a ring (or not initialised yet) */
#define ZKRING_EVERSION (-4) /* another layout version */
#define ZKRING_ERECSIZE (-5) /* record size differs from the caller's */
#define ZKRING_ETRUNC (-6)   /* segment smaller than its header says */
#define ZKRING_EHEADER (-7)  /* capacity, mode or offsets out of range */
#define ZKRING_ECORRUPT (-8) /* an index in shared memory is impossible */
#define ZKRING_EBUSY (-9)    /* the role is held by a live process */
#define ZKRING_EFOREIGN (-10) /* the segment's owner, group or mode is not the expected one */

/* Peer liveness (zkring_peer_status) */
#define ZKRING_PEER_ALIVE 0
#define ZKRING_PEER_NONE 1   /* no pid recorded */
#define ZKRING_PEER_DEAD 2   /* the recorded pid no longer exists */
#define ZKRING_PEER_STALE 3  /* pid exists, heartbeat older than the limit */
#define ZKRING_PEER_CLOSED 4 /* producer ended the stream (consumer's view) */

/* Who claimed a position the consumer is stalled on (zkring_t.stall_status) */
#define ZKRING_CLAIM_ALIVE 0   /* a registered producer whose intent covers it is alive */
#define ZKRING_CLAIM_DEAD 1    /* every producer whose intent covers it is dead */
#define ZKRING_CLAIM_FOREIGN 2 /* one lives in another pid namespace: cannot tell */
#define ZKRING_CLAIM_UNKNOWN 3 /* no registered producer's intent covers it */

/* Consumer idle strategies (zkring_poll_wait) */
#define ZKRING_IDLE_SPIN 0  /* busy-spin: lowest latency, burns the core */
#define ZKRING_IDLE_YIELD 1 /* spin, then sched_yield */
#define ZKRING_IDLE_PARK 2  /* spin, yield, then sleep on the futex */

struct zkring_hdr {
    /* line 0: configuration */
    ZKRING_ATOMIC(uint64_t) magic;
    uint32_t version;
    uint32_t record_size;
    uint64_t capacity;
    uint32_t mode;
    ZKRING_ATOMIC(uint32_t) flags;
    uint64_t records_offset;
    uint64_t seq_offset;
    uint64_t segment_size;
    uint64_t registry_offset;
    uint32_t producer_slots;
    uint8_t pad0[ZKRING_LINE - 68];
    /* line 1: producer side */
    ZKRING_ATOMIC(int32_t) producer_pid;
    uint32_t pad1a;
    ZKRING_ATOMIC(uint64_t) producer_heartbeat_ns;
    ZKRING_ATOMIC(uint64_t) full_events;
    ZKRING_ATOMIC(uint64_t) producer_owner;
    uint8_t pad1[ZKRING_LINE - 32];
    /* line 2: consumer side */
    ZKRING_ATOMIC(int32_t) consumer_pid;
    ZKRING_ATOMIC(uint32_t) consumer_parked;
    ZKRING_ATOMIC(uint64_t) consumer_heartbeat_ns;
    ZKRING_ATOMIC(uint64_t) consumer_owner;
    ZKRING_ATOMIC(uint64_t) unblocked;
    uint8_t pad2[ZKRING_LINE - 32];
    /* lines 3-5: the counters, one per line */
    ZKRING_ATOMIC(uint64_t) tail;
    uint8_t pad3[ZKRING_LINE - 8];
    ZKRING_ATOMIC(uint64_t) head_cache;
    uint8_t pad4[ZKRING_LINE - 8];
    ZKRING_ATOMIC(uint64_t) head;
    uint8_t pad5[ZKRING_LINE - 8];
};

/* One MPSC producer handle's entry in the registry: its own line, written
 * by that producer alone (the consumer reads it only when stalled). */
struct zkring_producer_slot {
    ZKRING_ATOMIC(uint64_t) owner;
    ZKRING_ATOMIC(uint64_t) intent_lo;
    ZKRING_ATOMIC(uint64_t) intent_hi;
    ZKRING_ATOMIC(uint64_t) heartbeat_ns;
    uint8_t pad[ZKRING_LINE - 32];
};

ZKRING_STATIC_ASSERT(sizeof(struct zkring_hdr) == ZKRING_RECORDS_OFFSET, "header is 6 lines");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_hdr, registry_offset) == 56, "line 0");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_hdr, producer_slots) == 64, "line 0");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_hdr, producer_pid) == 128, "line 1");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_hdr, producer_owner) == 152, "line 1");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_hdr, full_events) == 144, "line 1");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_hdr, consumer_parked) == 260, "line 2");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_hdr, consumer_heartbeat_ns) == 264, "line 2");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_hdr, consumer_owner) == 272, "line 2");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_hdr, unblocked) == 280, "line 2");
ZKRING_STATIC_ASSERT(sizeof(struct zkring_producer_slot) == ZKRING_LINE, "a slot per line");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_producer_slot, intent_hi) == 16, "slot");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_producer_slot, heartbeat_ns) == 24, "slot");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_hdr, tail) == 384, "line 3");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_hdr, head_cache) == 512, "line 4");
ZKRING_STATIC_ASSERT(offsetof(struct zkring_hdr, head) == 640, "line 5");
/* Atomics in memory shared between processes must be lock-free (a lock
 * would live in one process's address space) and address-free. */
ZKRING_STATIC_ASSERT(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2, "lock-free atomics");
ZKRING_STATIC_ASSERT(sizeof(ZKRING_ATOMIC(uint64_t)) == 8 && sizeof(ZKRING_ATOMIC(uint32_t)) == 4, "plain sizes");
#if defined(__cplusplus)
/* offsetof above needs a standard-layout struct in C++; the byte offsets are
 * then the C ones (the asserts above), whatever the language. */
ZKRING_STATIC_ASSERT(std::is_standard_layout<struct zkring_hdr>::value &&
                         std::is_standard_layout<struct zkring_producer_slot>::value,
                     "zkring.h: the header structs must be standard-layout in C++");
#endif

/* A process's handle on one ring.  The caller owns the memory (a local or a
 * struct field): opening allocates nothing.  Fields are private. */
typedef struct zkring {
    struct zkring_hdr *hdr;
    uint8_t *records;
    ZKRING_ATOMIC(uint64_t) *seq; /* MPSC only */
    size_t map_len;
    uint64_t capacity, mask;
    uint32_t record_size, mode;
    int role;
    int32_t pid;
    /* Producer (SPSC): next position to claim.  Consumer: next position to
     * read — the authoritative head, never re-read from shared memory. */
    uint64_t pos;
    /* Producer (SPSC): last head seen.  Consumer (SPSC): last tail seen.
     * Private: a cache in shared memory would be one more thing the
     * consumer had to distrust, and one more line to keep exclusive. */
    uint64_t cached;
    /* Consumer opened with ZKRING_O_DEFER_RELEASE: polls advance pos only,
     * and head (what a restarted consumer resumes from, and what frees
     * slots for the producer) moves in zkring_release. */
    int defer_release;
    /* Who we are (identity word, see the layout), and our pid namespace
     * bits, computed once at open. */
    uint64_t ident;
    uint32_t ns_bits;
    /* MPSC: the registry; a producer's own entry, and how many of its
     * claims are not yet committed (zkring__claim). */
    struct zkring_producer_slot *registry, *slot;
    uint32_t open_claims;
    /* MPSC consumer: unblock a position after it has been claimed and not
     * committed for unblock_ns (0 = never), if its claimer is dead.  The
     * stall_* fields describe the current stall (stall_since 0: none);
     * stall_status is a ZKRING_CLAIM_* once the claimer has been looked up
     * (-1 before) and stall_pid that claimer's pid, for monitoring. */
    uint64_t unblock_ns, stall_pos, stall_since, stall_check;
    int32_t stall_status, stall_pid;
    /* Why zkring_open failed, for the caller's message: errno of a failed
     * system call, the live holder's pid (EBUSY), the segment's owner,
     * group and mode (st_mode & 07777, from fstat of the opened descriptor)
     * and its layout version (EVERSION).  Set as far as open got. */
    int sys_errno;
    int32_t holder_pid;
    uint32_t seg_uid, seg_gid, seg_mode, seg_version;
} zkring_t;

/* What zkring_open_ex requires of a segment before it maps it: its owner
 * (`uid`, or -1 for any owner when a group is given) and, with `gid` >= 0,
 * its group; its mode may have no bit beyond 0600 (no group) or 0660. */
typedef struct zkring_access {
    int64_t uid;
    int64_t gid;
} zkring_access_t;

typedef struct zkring_idle {
    uint32_t kind;    /* ZKRING_IDLE_* */
    uint32_t spins;   /* empty polls before yielding (or parking) */
    uint32_t yields;  /* sched_yield rounds before parking */
    uint64_t park_ns; /* longest single sleep; bounds a missed wake */
} zkring_idle_t;

/* ---- small helpers ------------------------------------------------------ */

static inline void zkring__relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause(); /* frees the pipeline for the sibling thread */
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint64_t zkring_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int zkring__shm_name(char *out, size_t cap, const char *name)
{
    /* shm_open wants "/name" with no other slash. */
    if (!name || !*name)
        return ZKRING_EINVAL;
    const char *bare = name[0] == '/' ? name + 1 : name;
    size_t len = strlen(bare);
    if (len == 0 || len + 2 > cap || strchr(bare, '/'))
        return ZKRING_EINVAL;
    out[0] = '/';
    memcpy(out + 1, bare, len + 1);
    return ZKRING_OK;
}

static inline int zkring__pid_exists(int32_t pid)
{
    /* kill(pid, 0) delivers nothing; EPERM still means "exists". */
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* /proc/<pid>/<file> (/proc/self/<file> for pid <= 0) read into buf,
 * NUL-terminated, without stdio: its length, or 0 when it cannot be read. */
static inline ssize_t zkring__read_proc(int32_t pid, const char *file, char *buf, size_t size)
{
    char path[48] = "/proc/self/";
    size_t at = 11;
    if (pid > 0) {
        char digits[12];
        int n = 0;
        for (uint32_t v = (uint32_t)pid; v; v /= 10)
            digits[n++] = (char)('0' + v % 10);
        at = 6; /* after "/proc/" */
        for (int i = 0; i < n; i++)
            path[at++] = digits[n - 1 - i];
        path[at++] = '/';
    }
    size_t len = strlen(file); /* the callers' names: a few bytes */
    if (at + len >= sizeof path)
        return 0;
    memcpy(path + at, file, len + 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t got = read(fd, buf, size - 1);
    close(fd);
    if (got <= 0)
        return 0;
    buf[got] = 0;
    return got;
}

/* The start time of process `pid` (0: this process) in clock ticks since
 * boot, field 22 of /proc/<pid>/stat, and its state letter; 0 when /proc
 * cannot tell (not mounted, or the process is gone).  Cold path only: open,
 * and a consumer that has been stalled for its unblock timeout. */
static inline uint64_t zkring__proc_start(int32_t pid, char *state)
{
    char buf[512];
    if (!zkring__read_proc(pid, "stat", buf, sizeof buf))
        return 0;
    /* The command name (field 2) may hold spaces and ')': fields 3.. follow
     * the last ')'.  Field 22 ends within 512 bytes: the name is at most 16
     * bytes and fields 3..22 at most 21 bytes each. */
    char *c = strrchr(buf, ')');
    if (!c || c[1] != ' ')
        return 0;
    c += 2;
    if (state)
        *state = *c;
    for (int field = 3; field < 22; c++) {
        if (!*c)
            return 0;
        if (*c == ' ')
            field++;
    }
    uint64_t v = 0;
    for (; *c >= '0' && *c <= '9'; c++)
        v = v * 10 + (uint64_t)(*c - '0');
    return v;
}

/* Threads of process `pid` ("Threads:" in /proc/<pid>/status), 0 when
 * unreadable.  Cold path: only for a process whose leader is a zombie. */
static inline uint32_t zkring__proc_threads(int32_t pid)
{
    char buf[1024];
    if (pid <= 0 || !zkring__read_proc(pid, "status", buf, sizeof buf))
        return 0;
    char *c = strstr(buf, "\nThreads:");
    if (!c)
        return 0;
    for (c += 9; *c == ' ' || *c == '\t'; c++)
        ;
    uint32_t t = 0;
    for (; *c >= '0' && *c <= '9'; c++)
        t = t * 10 + (uint32_t)(*c - '0');
    return t;
}

/* This process's pid-namespace bits of an identity word (1..1023), 0 when
 * /proc does not say. */
static inline uint32_t zkring__ns_bits(void)
{
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) != 0)
        return 0;
    return 1u + (uint32_t)(st.st_ino % 1023u);
}

#define ZKRING__PID_BITS 0x3FFFFFull

static inline uint64_t zkring__identity(uint32_t ns_bits)
{
    uint64_t pid = (uint64_t)getpid() & ZKRING__PID_BITS;
    uint64_t start = zkring__proc_start(0, NULL) & 0xFFFFFFFFull;
    return pid | (uint64_t)ns_bits << 22 | start << 32;
}

static inline int32_t zkring__ident_pid(uint64_t w) { return (int32_t)(w & ZKRING__PID_BITS); }

/* Is the holder of identity word `w` alive, as seen from a process whose
 * namespace bits are `ns_bits`?  ZKRING_CLAIM_ALIVE, _DEAD or _FOREIGN (its
 * pid was recorded in another pid namespace: a pid there names nothing
 * here, so no answer).  Errs towards ALIVE: a pid that exists with an
 * unknown start time counts as alive (a reused pid keeps a ring waiting; it
 * never lets two processes hold one role). */
static inline int zkring__ident_status(uint64_t w, uint32_t ns_bits)
{
    int32_t pid = zkring__ident_pid(w);
    uint32_t ns = (uint32_t)(w >> 22) & 0x3FFu;
    uint32_t start = (uint32_t)(w >> 32);
    if (pid == 0)
        return ZKRING_CLAIM_DEAD;
    if (ns && ns_bits && ns != ns_bits)
        return ZKRING_CLAIM_FOREIGN;
    if (!zkring__pid_exists(pid))
        return ZKRING_CLAIM_DEAD;
    char state = 0;
    uint64_t now_start = zkring__proc_start(pid, &state);
    /* A zombie ('Z', not yet reaped) or exiting ('X') process runs no more
     * code: it will never write to the ring again.  But a leader that called
     * pthread_exit is 'Z' too while its other threads run on: only a zombie
     * with no other thread is dead. */
    if (state == 'X' || (state == 'Z' && zkring__proc_threads(pid) <= 1))
        return ZKRING_CLAIM_DEAD;
    if (start && now_start && (uint32_t)now_start != start)
        return ZKRING_CLAIM_DEAD; /* the pid now names another process */
    return ZKRING_CLAIM_ALIVE;
}

static inline const char *zkring_strerror(int code)
{
    switch (code) {
    case ZKRING_OK: return "ok";
    case ZKRING_FULL: return "ring full";
    case ZKRING_EINVAL: return "invalid argument";
    case ZKRING_ESYS: return "system call failed";
    case ZKRING_EMAGIC: return "bad magic: not a zksidecar ring, or not initialised";
    case ZKRING_EVERSION: return "unsupported ring layout version";
    case ZKRING_ERECSIZE: return "record size differs from the expected one";
    case ZKRING_ETRUNC: return "segment truncated: smaller than its header requires";
    case ZKRING_EHEADER: return "corrupt header: capacity, mode or offsets out of range";
    case ZKRING_ECORRUPT: return "corrupt ring: an index in shared memory is out of range";
    case ZKRING_EBUSY: return "another live process holds this role";
    case ZKRING_EFOREIGN: return "the segment's owner, group or mode is not the expected one";
    default: return "unknown zkring error";
    }
}

/* What to do about a failed zkring_open / zkring_open_ex that returned `rc`
 * and left its diagnostics in `r`: the step that fixes it, "" if none. */
static inline const char *zkring_open_hint(int rc, const zkring_t *r)
{
    switch (rc) {
    case ZKRING_ESYS:
        if (r->sys_errno == ENOENT)
            return "start the sidecar daemon first, it creates the rings";
        if (r->sys_errno == EACCES)
            return "run as the ring's owner, or as a member of the group the daemon creates its "
                   "rings for (ring.group)";
        if (r->sys_errno == EMFILE || r->sys_errno == ENFILE)
            return "too many open files: raise the limit (ulimit -n, LimitNOFILE=)";
        return "check that /dev/shm is mounted and usable by this user";
    case ZKRING_EVERSION:
        if (r->seg_version > ZKRING_VERSION)
            return "the daemon is newer than this client: build the client against the daemon's "
                   "zkring.h and zk_records.h";
        return "an older zksidecar made it: run a daemon of this version, and if it is a leftover, "
               "stop the processes using it, remove it from /dev/shm and let the sidecar daemon "
               "create it again";
    case ZKRING_EMAGIC: case ZKRING_ETRUNC: case ZKRING_EHEADER: case ZKRING_ECORRUPT:
        return "if no daemon is creating it at this moment, stop the processes using it, remove it "
               "from /dev/shm and let the sidecar daemon create it again";
    case ZKRING_ERECSIZE:
        return "the ring was created for another record type: check the ring names";
    case ZKRING_EBUSY:
        return r->holder_pid ? "stop that process first (two would corrupt the stream)"
                             : "close producers that are done";
    case ZKRING_EFOREIGN:
        return "another user may have created it to read or inject records: check who did, then "
               "remove it from /dev/shm and let the sidecar daemon create it again";
    case ZKRING_EINVAL:
        return "a ring name is 'name' or '/name' with no other '/'";
    default:
        return "";
    }
}

/* The whole message for a failed open, into buf (len bytes; returns buf):
 *   ring NAME: cannot open as producer: No such file or directory; start
 *   the sidecar daemon first, it creates the rings
 * the ring, the reason (the errno text of a failed system call, the holder's
 * pid, the segment's owner or version) and what to do. */
static inline const char *zkring_open_error(char *buf, size_t len, const char *name, int role,
                                            int rc, const zkring_t *r)
{
    char why[160];
    const char *hint = zkring_open_hint(rc, r);
    if (rc == ZKRING_ESYS)
        snprintf(why, sizeof why, "%s", strerror(r->sys_errno));
    else if (rc == ZKRING_EBUSY && r->holder_pid)
        snprintf(why, sizeof why, "%s, pid %d", zkring_strerror(rc), (int)r->holder_pid);
    else if (rc == ZKRING_EVERSION)
        snprintf(why, sizeof why, "it has layout version %u, this build reads %u",
                 (unsigned)r->seg_version, (unsigned)ZKRING_VERSION);
    else if (rc == ZKRING_EFOREIGN)
        snprintf(why, sizeof why, "%s (owner uid %u, group gid %u, mode %04o)", zkring_strerror(rc),
                 (unsigned)r->seg_uid, (unsigned)r->seg_gid, (unsigned)r->seg_mode);
    else
        snprintf(why, sizeof why, "%s", zkring_strerror(rc));
    snprintf(buf, len, "ring %s: cannot open as %s: %s%s%s", name,
             role == ZKRING_CONSUMER ? "consumer" : "producer", why, *hint ? "; " : "", hint);
    return buf;
}

/* Bytes a segment needs, or 0 if the parameters are invalid. */
static inline uint64_t zkring_segment_size(uint64_t capacity, uint32_t record_size, uint32_t mode)
{
    if (capacity < 2 || capacity > ZKRING_MAX_CAPACITY || (capacity & (capacity - 1)))
        return 0;
    if (record_size < 8 || record_size > ZKRING_MAX_RECORD || record_size % 8)
        return 0;
    if (mode != ZKRING_SPSC && mode != ZKRING_MPSC)
        return 0;
    /* capacity <= 2^30 and record_size <= 2^12: no overflow */
    uint64_t size = ZKRING_RECORDS_OFFSET + capacity * record_size;
    if (mode == ZKRING_MPSC)
        size += capacity * sizeof(uint64_t) +
                ZKRING_PRODUCER_SLOTS * (uint64_t)sizeof(struct zkring_producer_slot);
    return size;
}

/* ---- create / open / close (cold path) --------------------------------- */

/* Create a new ring segment; fails with ZKRING_ESYS/EEXIST if one exists.
 * Mode 0600, or 0660 owned by group `gid` when gid >= 0. */
static inline int zkring_create(const char *name, uint64_t capacity, uint32_t record_size,
                                uint32_t mode, int64_t gid)
{
    char path[256];
    uint64_t size = zkring_segment_size(capacity, record_size, mode);
    if (size == 0 || zkring__shm_name(path, sizeof path, name) != ZKRING_OK)
        return ZKRING_EINVAL;
    int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return ZKRING_ESYS;
    /* shm_open's mode passes through the umask; set the exact mode. */
    int perm = gid >= 0 ? 0660 : 0600;
    if ((gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)gid) != 0) || fchmod(fd, perm) != 0 ||
        ftruncate(fd, (off_t)size) != 0) {
        int saved = errno;
        close(fd);
        shm_unlink(path);
        errno = saved;
        return ZKRING_ESYS;
    }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int saved = errno;
    close(fd);
    if (base == MAP_FAILED) {
        shm_unlink(path);
        errno = saved;
        return ZKRING_ESYS;
    }
    /* ftruncate zero-filled everything: counters, pids, MPSC sequences. */
    struct zkring_hdr *h = (struct zkring_hdr *)base;
    h->version = ZKRING_VERSION;
    h->record_size = record_size;
    h->capacity = capacity;
    h->mode = mode;
    ZKRING_STORE(&h->flags, gid >= 0 ? ZKRING_F_GROUP : 0u, ZKRING_RELAXED);
    h->records_offset = ZKRING_RECORDS_OFFSET;
    h->seq_offset = mode == ZKRING_MPSC ? ZKRING_RECORDS_OFFSET + capacity * record_size : 0;
    h->registry_offset = mode == ZKRING_MPSC ? h->seq_offset + capacity * sizeof(uint64_t) : 0;
    h->producer_slots = mode == ZKRING_MPSC ? ZKRING_PRODUCER_SLOTS : 0;
    h->segment_size = size;
    /* Release: whoever reads the magic with acquire sees every field above,
     * so a half-initialised segment reads as "bad magic", never as garbage. */
    ZKRING_STORE(&h->magic, ZKRING_MAGIC, ZKRING_RELEASE);
    munmap(base, size);
    return ZKRING_OK;
}

static inline int zkring_unlink(const char *name)
{
    char path[256];
    if (zkring__shm_name(path, sizeof path, name) != ZKRING_OK)
        return ZKRING_EINVAL;
    return shm_unlink(path) == 0 ? ZKRING_OK : ZKRING_ESYS;
}

/* Check a mapped header against the mapping's real length and the record
 * size the caller expects.  Reads each field once, into locals. */
static inline int zkring__validate(const struct zkring_hdr *h, uint64_t file_size,
                                   uint32_t record_size)
{
    if (ZKRING_LOAD(&h->magic, ZKRING_ACQUIRE) != ZKRING_MAGIC)
        return ZKRING_EMAGIC;
    if (h->version != ZKRING_VERSION)
        return ZKRING_EVERSION;
    if (h->record_size != record_size)
        return ZKRING_ERECSIZE;
    uint64_t size = zkring_segment_size(h->capacity, h->record_size, h->mode);
    int mpsc = h->mode == ZKRING_MPSC;
    uint64_t seq = ZKRING_RECORDS_OFFSET + h->capacity * h->record_size;
    if (size == 0 || h->records_offset != ZKRING_RECORDS_OFFSET || h->segment_size != size ||
        h->seq_offset != (mpsc ? seq : 0) ||
        h->registry_offset != (mpsc ? seq + h->capacity * 8 : 0) ||
        h->producer_slots != (mpsc ? ZKRING_PRODUCER_SLOTS : 0))
        return ZKRING_EHEADER;
    if (file_size < size)
        return ZKRING_ETRUNC;
    return ZKRING_OK;
}

/* Does the segment open on `fd` meet `access`?  fstat of the descriptor we
 * opened, not a stat of the path: a path can be swapped between the check
 * and the open, a descriptor cannot. */
static inline int zkring__check_access(zkring_t *r, int fd, const zkring_access_t *access,
                                       struct stat *st)
{
    if (fstat(fd, st) != 0) {
        r->sys_errno = errno;
        return ZKRING_ESYS;
    }
    r->seg_uid = (uint32_t)st->st_uid;
    r->seg_gid = (uint32_t)st->st_gid;
    r->seg_mode = (uint32_t)st->st_mode & 07777u;
    if (!access)
        return ZKRING_OK;
    if (access->uid < 0 && access->gid < 0)
        return ZKRING_EINVAL; /* "any owner, any group" is no check at all */
    uint32_t allowed = access->gid >= 0 ? 0660u : 0600u;
    if (!S_ISREG(st->st_mode) || (r->seg_mode & ~allowed) ||
        (access->gid >= 0 && (int64_t)st->st_gid != access->gid) ||
        (access->uid >= 0 && (int64_t)st->st_uid != access->uid))
        return ZKRING_EFOREIGN;
    return ZKRING_OK;
}

/* Take an exclusive role (the consumer, or the SPSC producer) recorded in
 * `owner`: refused with EBUSY while the recorded holder is alive, unless
 * TAKEOVER; a dead holder's role is taken over. */
static inline int zkring__take_role(zkring_t *r, ZKRING_ATOMIC(uint64_t) *owner,
                                    ZKRING_ATOMIC(uint64_t) *heartbeat, int takeover)
{
    uint64_t held = ZKRING_LOAD(owner, ZKRING_ACQUIRE);
    for (;;) {
        if (held && !takeover) {
            int st = zkring__ident_status(held, r->ns_bits);
            if (st == ZKRING_CLAIM_FOREIGN) {
                /* Recorded in another pid namespace: its pid cannot be
                 * checked from here, so its heartbeat decides. */
                uint64_t beat = ZKRING_LOAD(heartbeat, ZKRING_RELAXED);
                uint64_t now = zkring_now_ns();
                st = now > beat && now - beat > ZKRING_FOREIGN_STALE_NS ? ZKRING_CLAIM_DEAD
                                                                         : ZKRING_CLAIM_ALIVE;
            }
            /* Our own identity counts too: two consumers in one process would
             * race.  (A process that merely has our pid, from before a
             * restart, has another start time and is dead.) */
            if (st != ZKRING_CLAIM_DEAD) {
                r->holder_pid = zkring__ident_pid(held);
                return ZKRING_EBUSY;
            }
        }
        /* A compare-and-swap, not a store: of two openers that both found
         * the role free (or its holder dead), exactly one wins, and the other
         * sees the winner's identity and is refused, or re-judges it.
         * Acq_rel: what the previous holder wrote before its close (its
         * head) is ours to read; our identity is published before we act. */
        if (ZKRING_CAS(owner, &held, r->ident, ZKRING_ACQ_REL,
                                                    ZKRING_ACQUIRE))
            return ZKRING_OK;
    }
}

/* MPSC producer: take a free entry of the registry, or a dead producer's
 * whose intent, cut at tail, lies wholly below head: every position it may
 * have claimed has been consumed or unblocked, none is left that only its
 * entry names.  (Cut at tail: a dead producer claims nothing more, so the
 * part of a stale intent at or above tail was never claimed by it.)
 * EBUSY when all ZKRING_PRODUCER_SLOTS entries are held. */
static inline int zkring__take_slot(zkring_t *r)
{
    /* Head before tail, both acquire: head <= tail holds between the two
     * values read (head never passes tail), so "claimed and not consumed"
     * is never judged from a tail older than the head. */
    uint64_t head = ZKRING_LOAD(&r->hdr->head, ZKRING_ACQUIRE);
    uint64_t tail = ZKRING_LOAD(&r->hdr->tail, ZKRING_ACQUIRE);
    for (uint32_t i = 0; i < ZKRING_PRODUCER_SLOTS; i++) {
        struct zkring_producer_slot *e = &r->registry[i];
        uint64_t held = ZKRING_LOAD(&e->owner, ZKRING_ACQUIRE);
        if (held) {
            int st = zkring__ident_status(held, r->ns_bits);
            if (st == ZKRING_CLAIM_FOREIGN) {
                uint64_t beat = ZKRING_LOAD(&e->heartbeat_ns, ZKRING_RELAXED);
                uint64_t now = zkring_now_ns();
                st = now > beat && now - beat > ZKRING_FOREIGN_STALE_NS ? ZKRING_CLAIM_DEAD
                                                                         : ZKRING_CLAIM_ALIVE;
            }
            uint64_t hi = ZKRING_LOAD(&e->intent_hi, ZKRING_RELAXED);
            if (hi > tail)
                hi = tail;
            if (st != ZKRING_CLAIM_DEAD || hi > head)
                continue; /* alive, or dead with an intent the consumer has not passed */
        }
        if (ZKRING_CAS(&e->owner, &held, r->ident,
                                                    ZKRING_ACQ_REL, ZKRING_RELAXED)) {
            /* After the owner: a consumer reading the entry sees our identity
             * with the old (consumed) intent, or ours; never a dead owner
             * with our intent (it re-reads the owner, see zkring__claimer). */
            ZKRING_STORE(&e->intent_lo, 0, ZKRING_RELAXED);
            ZKRING_STORE(&e->intent_hi, 0, ZKRING_RELAXED);
            ZKRING_STORE(&e->heartbeat_ns, zkring_now_ns(), ZKRING_RELAXED);
            r->slot = e;
            return ZKRING_OK;
        }
    }
    r->holder_pid = 0;
    return ZKRING_EBUSY;
}

/* Open an existing ring as ZKRING_PRODUCER or ZKRING_CONSUMER.
 * `record_size` is what the caller will pass per record; a ring of another
 * size is refused.  With `access` (NULL: no check), a segment whose owner,
 * group or mode is not as required is refused with ZKRING_EFOREIGN before it
 * is mapped.  The consumer, and an SPSC producer, refuse to open while
 * another live process holds the role (ZKRING_EBUSY), unless `options` has
 * TAKEOVER; an MPSC producer takes an entry of the producer registry (EBUSY
 * when all are held by live processes).  On failure, r's diagnostic fields
 * (sys_errno, holder_pid, seg_*) say why. */
/* head and tail as one snapshot, for a check of tail - head <= capacity by
 * a process that holds neither counter (opening, or inspecting, a ring that
 * may be live).  Acquire on both: what the other side wrote before
 * publishing them (records, or the consumer's reads) is ordered before the
 * caller's use, and the loads stay in order.  A ring in use moves both
 * between two loads (a producer joining a busy MPSC ring: the consumer
 * drains and the others publish in between), so head is read on both sides
 * of tail: when the two reads agree, head had that value when tail was
 * read, and a sound ring's tail is at most capacity past it; returns 1.
 * When head moves under every try, returns 0 with the head read before the
 * last tail (at most that tail): a live consumer's, not to be judged. */
static inline int zkring__indices(const struct zkring_hdr *h, uint64_t *head, uint64_t *tail)
{
    for (int tries = 0; tries < 8; tries++) {
        uint64_t before = ZKRING_LOAD(&h->head, ZKRING_ACQUIRE);
        *tail = ZKRING_LOAD(&h->tail, ZKRING_ACQUIRE);
        *head = ZKRING_LOAD(&h->head, ZKRING_ACQUIRE);
        if (*head == before)
            return 1;
        *head = before;
    }
    return 0;
}

static inline int zkring_open_ex(zkring_t *r, const char *name, int role, uint32_t record_size,
                                 int options, const zkring_access_t *access)
{
    char path[256];
    memset(r, 0, sizeof *r);
    r->stall_status = -1;
    if ((role != ZKRING_PRODUCER && role != ZKRING_CONSUMER) ||
        zkring__shm_name(path, sizeof path, name) != ZKRING_OK)
        return ZKRING_EINVAL;
    int fd = shm_open(path, O_RDWR, 0);
    if (fd < 0) {
        r->sys_errno = errno;
        return ZKRING_ESYS;
    }
    struct stat st;
    int rc = zkring__check_access(r, fd, access, &st);
    if (rc == ZKRING_OK && (uint64_t)st.st_size < ZKRING_RECORDS_OFFSET)
        rc = ZKRING_ETRUNC;
    if (rc != ZKRING_OK) {
        close(fd);
        return rc;
    }
    /* Map what the file has (not what the header claims): every byte we may
     * touch is then backed, whatever the header says. */
    size_t len = (size_t)st.st_size;
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    r->sys_errno = errno;
    close(fd);
    if (base == MAP_FAILED)
        return ZKRING_ESYS;
    r->sys_errno = 0;
    struct zkring_hdr *h = (struct zkring_hdr *)base;
    r->seg_version = h->version;
    rc = zkring__validate(h, len, record_size);
    if (rc != ZKRING_OK) {
        munmap(base, len);
        return rc;
    }
    r->hdr = h;
    r->map_len = len;
    r->records = (uint8_t *)base + ZKRING_RECORDS_OFFSET;
    r->capacity = h->capacity;
    r->mask = h->capacity - 1;
    r->record_size = h->record_size;
    r->mode = h->mode;
    r->seq = h->mode == ZKRING_MPSC ? (ZKRING_ATOMIC(uint64_t) *)((uint8_t *)base + h->seq_offset) : NULL;
    r->registry = h->mode == ZKRING_MPSC
                      ? (struct zkring_producer_slot *)((uint8_t *)base + h->registry_offset)
                      : NULL;
    r->role = role;
    r->pid = (int32_t)getpid();
    r->ns_bits = zkring__ns_bits();
    r->ident = zkring__identity(r->ns_bits);

    /* A head that moves under every try is a live consumer's, not
     * corruption: what follows checks the ring as it runs. */
    uint64_t head, tail;
    if (zkring__indices(h, &head, &tail) && tail - head > r->capacity) {
        munmap(base, len);
        r->hdr = NULL;
        return ZKRING_ECORRUPT;
    }
    int takeover = (options & ZKRING_O_TAKEOVER) != 0;
    if (role == ZKRING_CONSUMER)
        rc = zkring__take_role(r, &h->consumer_owner, &h->consumer_heartbeat_ns, takeover);
    else if (r->mode == ZKRING_SPSC)
        rc = zkring__take_role(r, &h->producer_owner, &h->producer_heartbeat_ns, takeover);
    else
        rc = zkring__take_slot(r);
    if (rc != ZKRING_OK) {
        munmap(base, len);
        r->hdr = NULL;
        return rc;
    }
    /* The pid fields are for display and zkring_peer_status; the identity
     * words above decide who holds a role. */
    ZKRING_STORE(role == ZKRING_CONSUMER ? &h->consumer_pid : &h->producer_pid, r->pid,
                          ZKRING_RELAXED);
    if (role == ZKRING_CONSUMER) {
        /* Resume exactly where the last consumer committed: every record
         * before head was handed out by a completed poll (or released), none
         * after.  Re-read: a consumer we took over from may have moved it
         * after our first read. */
        head = ZKRING_LOAD(&h->head, ZKRING_ACQUIRE);
        r->pos = head;
        r->defer_release = (options & ZKRING_O_DEFER_RELEASE) != 0;
        r->cached = head;
        ZKRING_STORE(&h->consumer_parked, 0u, ZKRING_RELAXED);
        ZKRING_STORE(&h->consumer_heartbeat_ns, zkring_now_ns(), ZKRING_RELAXED);
    } else {
        r->pos = tail;
        r->cached = head;
        ZKRING_FETCH_AND(&h->flags, ~ZKRING_F_CLOSED, ZKRING_RELAXED);
        ZKRING_STORE(&h->producer_heartbeat_ns, zkring_now_ns(), ZKRING_RELAXED);
    }
    return ZKRING_OK;
}

/* zkring_open_ex without an ownership check. */
static inline int zkring_open(zkring_t *r, const char *name, int role, uint32_t record_size,
                              int options)
{
    return zkring_open_ex(r, name, role, record_size, options, NULL);
}

/* Unmap.  Gives up the role (or the registry entry) so the next process
 * need not take over. */
static inline void zkring_close(zkring_t *r)
{
    if (!r->hdr)
        return;
    struct zkring_hdr *h = r->hdr;
    uint64_t mine = r->ident;
    if (r->slot) {
        /* Empty the intent first: a claim of ours is committed by now (one
         * thread per handle), so the entry names nothing the consumer
         * waits for; then free it. */
        ZKRING_STORE(&r->slot->intent_lo, 0, ZKRING_RELAXED);
        ZKRING_STORE(&r->slot->intent_hi, 0, ZKRING_RELAXED);
        ZKRING_CAS(&r->slot->owner, &mine, 0, ZKRING_RELEASE,
                                                ZKRING_RELAXED);
    } else {
        /* Only clear our own identity: a process that took over holds it. */
        ZKRING_ATOMIC(uint64_t) *owner =
            r->role == ZKRING_CONSUMER ? &h->consumer_owner : &h->producer_owner;
        ZKRING_CAS(owner, &mine, 0, ZKRING_RELEASE,
                                                ZKRING_RELAXED);
    }
    ZKRING_ATOMIC(int32_t) *holder = r->role == ZKRING_CONSUMER ? &h->consumer_pid : &h->producer_pid;
    int32_t pid = r->pid;
    /* Only clear our own pid: an MPSC peer may have written its own since. */
    ZKRING_CAS(holder, &pid, 0, ZKRING_RELAXED,
                                            ZKRING_RELAXED);
    munmap(h, r->map_len);
    r->hdr = NULL;
}

/* Producer: the stream is over (the consumer's peer status becomes CLOSED). */
static inline void zkring_mark_closed(zkring_t *r)
{
    /* Release: a consumer that sees CLOSED also sees every record committed
     * before it, so "closed and empty" means "drained". */
    ZKRING_FETCH_OR(&r->hdr->flags, ZKRING_F_CLOSED, ZKRING_RELEASE);
}

/* Record that this side is alive (pid and CLOCK_MONOTONIC now).  Relaxed:
 * liveness is advisory and tolerates a stale reading. */
static inline void zkring_heartbeat(zkring_t *r)
{
    struct zkring_hdr *h = r->hdr;
    if (r->role == ZKRING_PRODUCER) {
        uint64_t now = zkring_now_ns();
        ZKRING_STORE(&h->producer_pid, r->pid, ZKRING_RELAXED);
        ZKRING_STORE(&h->producer_heartbeat_ns, now, ZKRING_RELAXED);
        if (r->slot)
            ZKRING_STORE(&r->slot->heartbeat_ns, now, ZKRING_RELAXED);
    } else {
        ZKRING_STORE(&h->consumer_heartbeat_ns, zkring_now_ns(), ZKRING_RELAXED);
    }
}

/* Is the other side alive?  A consumer asks about the producer (MPSC: the
 * last producer to heartbeat) and vice versa.  `max_age_ns` = 0 skips the
 * heartbeat test. */
static inline int zkring_peer_status(const zkring_t *r, uint64_t max_age_ns)
{
    struct zkring_hdr *h = r->hdr;
    int consumer = r->role == ZKRING_CONSUMER;
    if (consumer && (ZKRING_LOAD(&h->flags, ZKRING_ACQUIRE) & ZKRING_F_CLOSED))
        return ZKRING_PEER_CLOSED;
    int32_t pid = ZKRING_LOAD(consumer ? &h->producer_pid : &h->consumer_pid,
                                       ZKRING_RELAXED);
    if (pid == 0)
        return ZKRING_PEER_NONE;
    if (!zkring__pid_exists(pid))
        return ZKRING_PEER_DEAD;
    uint64_t beat = ZKRING_LOAD(
        consumer ? &h->producer_heartbeat_ns : &h->consumer_heartbeat_ns, ZKRING_RELAXED);
    uint64_t now = zkring_now_ns();
    if (max_age_ns && now > beat && now - beat > max_age_ns)
        return ZKRING_PEER_STALE;
    return ZKRING_PEER_ALIVE;
}

static inline uint64_t zkring_full_events(const zkring_t *r)
{
    return ZKRING_LOAD(&r->hdr->full_events, ZKRING_RELAXED);
}

/* Positions consumers of this ring have skipped because their claimer died
 * between claim and commit (zkring_unblock), since the ring was created. */
static inline uint64_t zkring_unblocked(const zkring_t *r)
{
    return ZKRING_LOAD(&r->hdr->unblocked, ZKRING_RELAXED);
}

static inline uint64_t zkring_capacity(const zkring_t *r) { return r->capacity; }

/* Consumer: the position of the next record poll returns. */
static inline uint64_t zkring_position(const zkring_t *r) { return r->pos; }

/* Consumer: records published (MPSC: claimed) and not yet polled, for
 * monitoring.  Clamped to the capacity: tail is the producer's to write. */
static inline uint64_t zkring_depth(const zkring_t *r)
{
    uint64_t d = ZKRING_LOAD(&r->hdr->tail, ZKRING_RELAXED) - r->pos;
    return d > r->capacity ? r->capacity : d;
}

/* ---- producer hot path -------------------------------------------------- */

static inline uint8_t *zkring_slot(const zkring_t *r, uint64_t pos)
{
    return r->records + (size_t)(pos & r->mask) * r->record_size;
}

/* Wake a consumer that declared itself parked.  Cold: taken only when the
 * consumer had nothing to do for its whole spin and yield budget. */
static inline void zkring__wake(zkring_t *r)
{
    /* Exchange so that of several producers only one pays the syscall. */
    if (ZKRING_EXCHANGE(&r->hdr->consumer_parked, 0u, ZKRING_RELAXED) == 1u) {
#if defined(__linux__)
        syscall(SYS_futex, (uint32_t *)&r->hdr->consumer_parked, FUTEX_WAKE, 1, NULL, NULL, 0);
#endif
    }
}

static inline void zkring__maybe_wake(zkring_t *r)
{
    /* A relaxed load of a line the consumer writes only when it parks: it
     * stays shared in our cache, so this costs about a nanosecond.  There is
     * no StoreLoad fence between our publish and this load (a fence per
     * publish would cost more than the publish); the window in which a
     * consumer parks just as we publish is closed on its side instead, by
     * parking for at most park_ns (see zkring_poll_wait). */
    if (ZKRING_LOAD(&r->hdr->consumer_parked, ZKRING_RELAXED))
        zkring__wake(r);
}

static inline int zkring__full(zkring_t *r)
{
    ZKRING_FETCH_ADD(&r->hdr->full_events, 1, ZKRING_RELAXED);
    return ZKRING_FULL;
}

/* Claim up to `want` consecutive positions, at least `need` (1 <= need <=
 * want <= capacity); returns how many were claimed, 0 if fewer than `need`
 * fit.  Counts nothing: the public callers decide what a full event is. */
static inline uint64_t zkring__claim(zkring_t *r, uint64_t need, uint64_t want, uint64_t *pos)
{
    struct zkring_hdr *h = r->hdr;
    if (r->mode == ZKRING_SPSC) {
        uint64_t t = r->pos;
        if (r->capacity - (t - r->cached) < want) {
            /* Acquire pairs with the consumer's release of head: its reads of
             * the slots we are about to overwrite are complete. */
            r->cached = ZKRING_LOAD(&h->head, ZKRING_ACQUIRE);
            /* A head beyond our tail is a consumer bug; claim nothing. */
            if (t - r->cached > r->capacity)
                return 0;
        }
        uint64_t free = r->capacity - (t - r->cached);
        uint64_t take = free < want ? free : want;
        if (take < need)
            return 0;
        r->pos = t + take;
        *pos = t;
        return take;
    }
    /* MPSC: a capacity check, then a CAS on tail.  A fetch-add would claim
     * even when full and then have to wait for the consumer — blocking; the
     * CAS claims only what fits, and uncontended it costs the same one
     * locked instruction. */
    uint64_t t = ZKRING_LOAD(&h->tail, ZKRING_RELAXED);
    for (;;) {
        /* Acquire: the value came from a producer's release below, which
         * carries that producer's acquire of head with it. */
        uint64_t seen = ZKRING_LOAD(&h->head_cache, ZKRING_ACQUIRE);
        /* Compare the lag t - seen, never the free count capacity - (t -
         * seen): head_cache may be laps behind our tail (see the store
         * below), and then the free count would wrap to a huge number and
         * let us claim slots the consumer has not read.  A lag over
         * capacity - want (want <= capacity: no wrap) means "not enough
         * room as far as head_cache knows", including a lag beyond the
         * capacity and a stale t below seen (the lag wraps high): ask head
         * itself. */
        if (t - seen > r->capacity - want) {
            seen = ZKRING_LOAD(&h->head, ZKRING_ACQUIRE);
            /* A head beyond our tail: our tail is stale, or (if it is
             * current) the head is corrupt and we claim nothing. */
            if (t - seen > r->capacity) {
                uint64_t now = ZKRING_LOAD(&h->tail, ZKRING_RELAXED);
                if (now == t)
                    return 0;
                t = now;
                continue;
            }
            /* Release so producers acquiring head_cache inherit our acquire
             * of head.  Racing stores may move it backwards, by laps even (a
             * producer descheduled between its load of head and this store
             * writes a head long gone); every value stored was a true head
             * once, and readers test the lag above, so a stale value only
             * sends them to head. */
            ZKRING_STORE(&h->head_cache, seen, ZKRING_RELEASE);
        }
        uint64_t free = r->capacity - (t - seen);
        uint64_t take = free < want ? free : want;
        if (take < need) {
            /* Full unless our tail was stale: decide on a fresh one. */
            uint64_t now = ZKRING_LOAD(&h->tail, ZKRING_RELAXED);
            if (now == t)
                return 0;
            t = now;
            continue;
        }
        /* Announce the intent in our registry entry before the claim can
         * exist: a consumer stalled on a position of [t, t + take) finds
         * this entry covering it and asks whether its owner lives
         * (zkring_unblock).  Two relaxed stores to a line only we write:
         * about a nanosecond.  A failed CAS leaves a stale intent, which at
         * worst names a live producer for a position it did not claim (the
         * consumer then waits: conservative).  With a claim of ours still
         * uncommitted (zkring_claim twice before a commit) the intent is
         * widened, never moved past it. */
        struct zkring_producer_slot *e = r->slot;
        if (e) {
            if (r->open_claims == 0)
                ZKRING_STORE(&e->intent_lo, t, ZKRING_RELAXED);
            ZKRING_STORE(&e->intent_hi, t + take, ZKRING_RELAXED);
        }
        /* Release on success: a consumer that acquires a tail covering our
         * positions sees the intent above (RMWs on tail continue the release
         * sequence, so a later producer's CAS does not hide it).  The CAS
         * orders nothing else: slot ownership came from the head acquire
         * above, and publication is the per-slot sequence release in
         * zkring_commit.  (On x86 every locked CAS is a full barrier: the
         * release costs nothing there.)  On failure t is refreshed. */
        if (ZKRING_CAS_WEAK(&h->tail, &t, t + take, ZKRING_RELEASE,
                                                  ZKRING_RELAXED)) {
            r->open_claims++;
            *pos = t;
            return take;
        }
    }
}

/* Claim n (1..capacity) consecutive positions; write them with zkring_slot,
 * then zkring_commit.  All or nothing: ZKRING_FULL claims nothing and counts
 * one full event.  SPSC claims are committed in claim order (one producer
 * thread, so they are). */
static inline int zkring_claim(zkring_t *r, uint64_t n, uint64_t *pos)
{
    if (n == 0 || n > r->capacity)
        return ZKRING_EINVAL;
    return zkring__claim(r, n, n, pos) ? ZKRING_OK : zkring__full(r);
}

/* Make claimed positions [pos, pos+n) visible to the consumer. */
static inline void zkring_commit(zkring_t *r, uint64_t pos, uint64_t n)
{
    if (r->mode == ZKRING_SPSC) {
        /* Release: the record bytes are visible before the new tail is. */
        ZKRING_STORE(&r->hdr->tail, pos + n, ZKRING_RELEASE);
    } else {
        /* Release per slot: each record's bytes before its sequence word;
         * the consumer acquires the word before reading the record. */
        for (uint64_t p = pos; p < pos + n; p++)
            ZKRING_STORE(&r->seq[p & r->mask], p + 1, ZKRING_RELEASE);
        if (r->open_claims)
            r->open_claims--;
    }
    zkring__maybe_wake(r);
}

/* Publish one record (record_size bytes).  ZKRING_OK or ZKRING_FULL. */
static inline int zkring_try_publish(zkring_t *r, const void *rec)
{
    uint64_t pos;
    int rc = zkring_claim(r, 1, &pos);
    if (rc != ZKRING_OK)
        return rc;
    memcpy(zkring_slot(r, pos), rec, r->record_size);
    zkring_commit(r, pos, 1);
    return ZKRING_OK;
}

/* Publish up to n contiguous records; returns how many (0..n) were
 * published: as many as fit, in one claim.  Publishing fewer than n counts
 * one full event. */
static inline int64_t zkring_publish_batch(zkring_t *r, const void *recs, uint64_t n)
{
    if (n == 0)
        return 0;
    uint64_t pos = 0; /* written by a claim of take > 0, the only case that reads it; the
                       * compiler cannot see that and warns (-Wmaybe-uninitialized) */
    uint64_t take = zkring__claim(r, 1, n < r->capacity ? n : r->capacity, &pos);
    if (take < n)
        zkring__full(r);
    if (take == 0)
        return 0;
    const uint8_t *src = (const uint8_t *)recs;
    uint64_t first = pos & r->mask;
    uint64_t run = r->capacity - first < take ? r->capacity - first : take;
    memcpy(zkring_slot(r, pos), src, (size_t)(run * r->record_size));
    if (run < take) /* wrapped: the rest starts at slot 0 */
        memcpy(r->records, src + run * r->record_size, (size_t)((take - run) * r->record_size));
    zkring_commit(r, pos, take);
    return (int64_t)take;
}

/* ---- consumer ------------------------------------------------------------ */

/* Copy up to `max` records, in position order, into `out`; returns how many
 * (0 when empty) or ZKRING_ECORRUPT if the producer's tail is impossible
 * (nothing is read then, and the head does not move). */
static inline int64_t zkring_poll(zkring_t *r, void *out, uint64_t max)
{
    struct zkring_hdr *h = r->hdr;
    uint64_t head = r->pos, n;
    uint8_t *dst = (uint8_t *)out;
    if (max == 0)
        return 0;
    if (r->mode == ZKRING_SPSC) {
        if (r->cached == head) {
            /* Acquire pairs with the producer's release of tail: the records
             * below it are fully written before we copy them. */
            uint64_t tail = ZKRING_LOAD(&h->tail, ZKRING_ACQUIRE);
            /* Unsigned: also catches tail < head.  An impossible tail is
             * refused before any slot is read. */
            if (tail - head > r->capacity)
                return ZKRING_ECORRUPT;
            r->cached = tail;
        }
        n = r->cached - head;
        if (n > max)
            n = max;
        if (n == 0)
            return 0;
        uint64_t first = head & r->mask;
        uint64_t run = r->capacity - first < n ? r->capacity - first : n;
        memcpy(dst, zkring_slot(r, head), (size_t)(run * r->record_size));
        if (run < n)
            memcpy(dst + run * r->record_size, r->records, (size_t)((n - run) * r->record_size));
    } else {
        if (max > r->capacity)
            max = r->capacity;
        for (n = 0; n < max; n++) {
            uint64_t p = head + n;
            /* Acquire pairs with the committing producer's release: the
             * record is complete.  Any other value (an older lap, a claim not
             * yet committed, garbage) means "not yet", so nothing shared can
             * send us past what was published. */
            if (ZKRING_LOAD(&r->seq[p & r->mask], ZKRING_ACQUIRE) != p + 1)
                break;
            memcpy(dst + n * r->record_size, zkring_slot(r, p), r->record_size);
        }
        if (n == 0)
            return 0;
    }
    r->pos = head + n;
    /* Release: our copies of the slots complete before a producer, acquiring
     * head, may reuse them. */
    if (!r->defer_release)
        ZKRING_STORE(&h->head, head + n, ZKRING_RELEASE);
    return (int64_t)n;
}

/* A consumer opened with ZKRING_O_DEFER_RELEASE frees every record its polls
 * have returned so far: a consumer that must not lose records to its own
 * crash calls this once they are safe (journaled); a restart re-delivers
 * whatever was polled and not released.  (A no-op for other consumers: their
 * polls release at once.) */
static inline void zkring_release(zkring_t *r)
{
    /* Release: as in zkring_poll, the copies complete before slot reuse. */
    ZKRING_STORE(&r->hdr->head, r->pos, ZKRING_RELEASE);
}

/* ---- unblocking a dead claimer's positions (MPSC consumer, cold) -------- */

/* Who claimed position q?  Every registry entry whose intent covers q is a
 * candidate, and the true claimer is among them: it stored its intent
 * before the CAS that claimed q (release), the caller acquired a tail past
 * q, and a producer does not move its intent past an uncommitted claim of
 * its own (one thread per handle).  DEAD only if there is at least one
 * candidate and every candidate is dead; ALIVE or FOREIGN as soon as one
 * is; UNKNOWN when no entry covers q.  `pid` gets a candidate's pid. */
static inline int zkring__claimer(const zkring_t *r, uint64_t q, int32_t *pid)
{
    int found = 0;
    for (uint32_t i = 0; i < ZKRING_PRODUCER_SLOTS; i++) {
        struct zkring_producer_slot *e = &r->registry[i];
        /* Owner, intent, owner again (a seqlock read): a producer that takes
         * over a dead entry writes its owner before its intent, so an intent
         * read together with an unchanged owner belongs to that owner.  A
         * changed owner means a live producer is there: count it alive.
         * Acquire on the first read and the fence keep the intent reads
         * between the two owner reads. */
        uint64_t w = ZKRING_LOAD(&e->owner, ZKRING_ACQUIRE);
        if (!w)
            continue;
        uint64_t lo = ZKRING_LOAD(&e->intent_lo, ZKRING_RELAXED);
        uint64_t hi = ZKRING_LOAD(&e->intent_hi, ZKRING_RELAXED);
        ZKRING_FENCE(ZKRING_ACQUIRE);
        if (ZKRING_LOAD(&e->owner, ZKRING_RELAXED) != w) {
            *pid = 0;
            return ZKRING_CLAIM_ALIVE;
        }
        /* Unsigned: an empty (hi <= lo) or garbage intent covers nothing. */
        if (q - lo >= hi - lo)
            continue;
        *pid = zkring__ident_pid(w);
        int st = zkring__ident_status(w, r->ns_bits);
        if (st != ZKRING_CLAIM_DEAD)
            return st;
        found = 1;
    }
    return found ? ZKRING_CLAIM_DEAD : ZKRING_CLAIM_UNKNOWN;
}

/* MPSC consumer: unblock the ring after a producer died between claim and
 * commit (Agrona's ManyToOneRingBuffer.unblock, made safe against a claimer
 * that is in fact alive).  Cheap unless the consumer is stalled: a position
 * that is claimed (below tail) and not committed, for unblock_ns.  Then, and
 * every min(unblock_ns, 1 s) while the stall lasts, it looks the claimer up
 * (zkring__claimer) and, if every candidate is dead, skips that position and
 * the claimed, uncommitted positions after it whose candidates are all dead
 * too (the rest of the dead producer's claim), counting them in the
 * header's `unblocked`.  Returns how many positions it skipped.  Called by
 * zkring_poll_wait; a consumer that only calls zkring_poll calls it after an
 * empty poll.  `now` is zkring_now_ns().
 *
 * Why skipping is safe.  A skip writes nothing into the slot or its
 * sequence word: the consumer's position moves past it, and (at release)
 * head, which hands the slot to the next lap.  So the one danger is a
 * claimer that is not in fact dead: it would write the record into a slot
 * the next lap owns, and its commit (a plain store of p + 1) would be read
 * by nobody and could overwrite the next lap's word.  It is excluded by
 * skipping only claims whose every candidate claimer is dead:
 *  - kill(pid, 0) fails with ESRCH only after the process has exited, or it
 *    is a zombie ('Z' in /proc): either way it runs no more code and every
 *    store it made is visible (the kernel's exit path and our system calls
 *    are full barriers).  The sequence word is read again after that
 *    judgement (seq_cst fence, acquire load): a claimer that committed and
 *    then exited is delivered, not skipped.
 *  - a pid reused by another process is not taken for the claimer: the start
 *    time in the identity word differs (errs towards alive: waits).
 *  - a claimer registered from another pid namespace is FOREIGN, never dead:
 *    its pid names nothing here.  Such claims are never unblocked.
 *  - a claim no registered intent covers (UNKNOWN: a producer outside this
 *    protocol, a handle shared by threads, a corrupt registry) is never
 *    unblocked either: skipping on a timeout alone would let a slow but
 *    live claimer (stopped, swapped out, in a debugger) tear a record of the
 *    next lap, and every claim made through this header has an intent.
 * So a live claimer, however late, is waited for and its record delivered in
 * order; a dead one's positions are skipped after unblock_ns.  Nothing in
 * the registry can send the consumer past tail: only positions below an
 * acquired tail are skipped, at most a capacity of them. */
static inline int64_t zkring_unblock(zkring_t *r, uint64_t now)
{
    struct zkring_hdr *h = r->hdr;
    if (r->mode != ZKRING_MPSC || r->role != ZKRING_CONSUMER || !r->unblock_ns)
        return 0;
    uint64_t p = r->pos;
    /* Acquire pairs with the claiming CAS's release: with a tail past p we
     * see the claimer's intent. */
    uint64_t tail = ZKRING_LOAD(&h->tail, ZKRING_ACQUIRE);
    if (tail - p - 1 >= r->capacity ||
        ZKRING_LOAD(&r->seq[p & r->mask], ZKRING_ACQUIRE) == p + 1) {
        /* Nothing claimed at p (tail <= p, or an impossible tail), or it is
         * committed and the next poll takes it: no stall. */
        r->stall_since = 0;
        return 0;
    }
    if (r->stall_since == 0 || r->stall_pos != p) {
        r->stall_pos = p;
        r->stall_since = now;
        r->stall_check = now + r->unblock_ns;
        r->stall_status = -1;
        r->stall_pid = 0;
        return 0;
    }
    if (now < r->stall_check)
        return 0;
    uint64_t n = 0;
    for (uint64_t q = p; q != tail && n < r->capacity; q++) {
        int32_t pid = 0;
        int st = zkring__claimer(r, q, &pid);
        if (n == 0) {
            r->stall_status = st;
            r->stall_pid = pid;
        }
        if (st != ZKRING_CLAIM_DEAD)
            break;
        /* The claimer is dead: its last stores are visible from here on.
         * Read the word again, after the judgement: committed means deliver. */
        ZKRING_FENCE(ZKRING_SEQ_CST);
        if (ZKRING_LOAD(&r->seq[q & r->mask], ZKRING_ACQUIRE) == q + 1)
            break;
        n++;
    }
    if (n == 0) {
        uint64_t again = r->unblock_ns < 1000000000ull ? r->unblock_ns : 1000000000ull;
        r->stall_check = now + again;
        return 0;
    }
    r->pos = p + n;
    r->stall_since = 0;
    /* Relaxed: a counter for monitoring.  An RMW although there is one
     * consumer: a consumer that took over from us adds to the same count. */
    ZKRING_FETCH_ADD(&h->unblocked, n, ZKRING_RELAXED);
    /* Release as in zkring_poll (nothing was read from the skipped slots,
     * but records polled before them were).  A deferred-release consumer
     * frees them with its next zkring_release. */
    if (!r->defer_release)
        ZKRING_STORE(&h->head, r->pos, ZKRING_RELEASE);
    return (int64_t)n;
}

/* Consumer (MPSC): unblock positions whose claimer died after they have been
 * claimed and not committed for `timeout_ns` (0: never, the default; an
 * SPSC ring ignores it). */
static inline void zkring_set_unblock(zkring_t *r, uint64_t timeout_ns)
{
    /* SPSC: nothing to unblock (an uncommitted SPSC claim is invisible). */
    r->unblock_ns = r->mode == ZKRING_MPSC ? timeout_ns : 0;
    r->stall_since = 0;
}

/* Poll, idling by `idle` while empty, until something arrives or
 * `timeout_ns` passes (0 = wait forever); returns the count, 0 on timeout, or
 * a negative error.  Never blocks a producer: parking is announced through
 * consumer_parked and a producer wakes us only when it sees it set. */
static inline int64_t zkring_poll_wait(zkring_t *r, void *out, uint64_t max,
                                       const zkring_idle_t *idle, uint64_t timeout_ns)
{
    uint64_t deadline = timeout_ns ? zkring_now_ns() + timeout_ns : UINT64_MAX;
    uint64_t empty = 0;
    for (;;) {
        int64_t n = zkring_poll(r, out, max);
        if (n != 0)
            return n;
        empty++;
        /* Read the clock once per 256 empty polls: it costs as much as ten.
         * A stalled MPSC consumer checks its stall then (cold: a few loads
         * until the stall has lasted unblock_ns). */
        if ((empty & 255) == 0) {
            uint64_t now = zkring_now_ns();
            if (r->unblock_ns && zkring_unblock(r, now) > 0)
                continue;
            if (now >= deadline)
                return 0;
        }
        if (idle->kind == ZKRING_IDLE_SPIN || empty <= idle->spins) {
            zkring__relax();
            continue;
        }
        if (idle->kind == ZKRING_IDLE_YIELD || empty <= (uint64_t)idle->spins + idle->yields) {
            sched_yield();
            continue;
        }
        /* Park.  Dekker-style handshake: we store parked=1 and then re-check
         * the ring; the producer publishes and then loads parked.  Seq_cst on
         * our store (a full barrier) ensures our re-check cannot be satisfied
         * from before the store.  The producer side carries no fence (see
         * zkring__maybe_wake), so in a window of nanoseconds it can miss our
         * flag; the sleep is therefore bounded by park_ns, which bounds the
         * latency of a missed wake. */
        ZKRING_STORE(&r->hdr->consumer_parked, 1u, ZKRING_SEQ_CST);
        n = zkring_poll(r, out, max);
        if (n == 0) {
            uint64_t now = zkring_now_ns();
            if (r->unblock_ns && zkring_unblock(r, now) > 0) {
                ZKRING_STORE(&r->hdr->consumer_parked, 0u, ZKRING_RELAXED);
                continue;
            }
            if (now >= deadline) {
                ZKRING_STORE(&r->hdr->consumer_parked, 0u, ZKRING_RELAXED);
                return 0;
            }
            uint64_t nap = idle->park_ns ? idle->park_ns : 1000000;
            if (nap > deadline - now)
                nap = deadline - now;
            struct timespec ts = {(time_t)(nap / 1000000000u), (long)(nap % 1000000000u)};
#if defined(__linux__)
            /* Sleeps only while the word is still 1: a wake between our store
             * and this call makes it return at once (EAGAIN). */
            syscall(SYS_futex, (uint32_t *)&r->hdr->consumer_parked, FUTEX_WAIT, 1, &ts, NULL,
                    0);
#else
            nanosleep(&ts, NULL);
#endif
            zkring_heartbeat(r);
        }
        ZKRING_STORE(&r->hdr->consumer_parked, 0u, ZKRING_RELAXED);
        if (n != 0)
            return n;
    }
}

#endif /* the language check at the top */

#endif
