// zkring.hpp — C++ wrapper over csrc/ring/zkring.h (header-only; C++17, C++20
// or C++23, g++ or clang++).
//
// The ring protocol is the C header's, compiled as C++: its atomics layer maps
// C11's _Atomic and atomic_*_explicit onto std::atomic<T> and
// std::atomic_*_explicit with the same memory orders, and checks that each
// atomic is lock-free with the plain type's size and alignment (the segment is
// shared with C, Rust and Python).  Nothing here restates the protocol.
//
// Namespace zkr (C already has `struct zkring`).  RAII handles: open in the
// constructor (throws zkr::Error with the C message), close in the destructor.
// The hot path is the C functions inlined; nothing here allocates or throws
// after construction.
#pragma once

#if !defined(__cplusplus) || __cplusplus < 201703L
// Checked here too so that this is the only message (zkring.h says the same).
#error "bindings/zkring.hpp needs C++17 or later: compile with -std=c++17, -std=c++20 or -std=c++23"
#else

#include "zkring.h"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace zkr {

struct Error : std::runtime_error {
    int code;
    Error(const std::string &what, int c) : std::runtime_error(what + ": " + zkring_strerror(c)), code(c) {}
    // `what` already says it all (zkring_open_error).
    Error(const std::string &what, int c, bool) : std::runtime_error(what), code(c) {}
};

class Ring {
  public:
    Ring(const Ring &) = delete;
    Ring &operator=(const Ring &) = delete;
    ~Ring() { zkring_close(&r_); }

    std::uint64_t capacity() const { return zkring_capacity(&r_); }
    std::uint64_t full_events() const { return zkring_full_events(&r_); }
    void heartbeat() { zkring_heartbeat(&r_); }
    int peer_status(std::uint64_t max_age_ns = 0) const { return zkring_peer_status(&r_, max_age_ns); }

  protected:
    // `access`: the owner/group/mode the segment must have (zkring_open_ex);
    // nullptr: no check.
    Ring(const std::string &name, int role, std::uint32_t record_size, int options,
         const zkring_access_t *access)
    {
        int rc = zkring_open_ex(&r_, name.c_str(), role, record_size, options, access);
        if (rc != ZKRING_OK) {
            // The ring, the reason (errno text, holder, owner) and what to do.
            char msg[512];
            throw Error(zkring_open_error(msg, sizeof msg, name.c_str(), role, rc, &r_), rc, true);
        }
    }
    zkring_t r_;
};

// One record type per ring: Record must be trivially copyable, and its size
// is the ring's record size (checked at open).
template <class Record> class Producer : public Ring {
  public:
    explicit Producer(const std::string &name, int options = 0,
                      const zkring_access_t *access = nullptr)
        : Ring(name, ZKRING_PRODUCER, sizeof(Record), options, access) {}

    // false when the ring is full (counted in the header); never waits.
    bool try_publish(const Record &rec) { return zkring_try_publish(&r_, &rec) == ZKRING_OK; }

    // As many of n records as fit; returns the count.
    std::uint64_t publish(const Record *recs, std::uint64_t n)
    {
        return static_cast<std::uint64_t>(zkring_publish_batch(&r_, recs, n));
    }

    // Claim n slots and fill them in place: fill(Record &slot, std::uint64_t i).
    template <class Fill> bool publish_in_place(std::uint64_t n, Fill &&fill)
    {
        std::uint64_t pos;
        if (zkring_claim(&r_, n, &pos) != ZKRING_OK)
            return false;
        for (std::uint64_t i = 0; i < n; i++)
            fill(*reinterpret_cast<Record *>(zkring_slot(&r_, pos + i)), i);
        zkring_commit(&r_, pos, n);
        return true;
    }

    void mark_closed() { zkring_mark_closed(&r_); }
};

template <class Record> class Consumer : public Ring {
  public:
    explicit Consumer(const std::string &name, int options = 0,
                      const zkring_access_t *access = nullptr)
        : Ring(name, ZKRING_CONSUMER, sizeof(Record), options, access) {}

    // MPSC: skip a dead claimer's positions after timeout_ns (0: never).
    void set_unblock(std::uint64_t timeout_ns) { zkring_set_unblock(&r_, timeout_ns); }
    std::uint64_t unblocked() const { return zkring_unblocked(&r_); }

    // Up to max records into out; returns the count.  Throws on a corrupt
    // ring (the only error a poll can meet).
    std::uint64_t poll(Record *out, std::uint64_t max)
    {
        std::int64_t n = zkring_poll(&r_, out, max);
        if (n < 0)
            throw Error("zkring: poll", static_cast<int>(n));
        return static_cast<std::uint64_t>(n);
    }

    // As poll, idling by `idle` while empty (zkring_poll_wait), for at most
    // timeout_ns (0: forever); 0 on timeout.
    std::uint64_t poll_wait(Record *out, std::uint64_t max, const zkring_idle_t &idle,
                            std::uint64_t timeout_ns)
    {
        std::int64_t n = zkring_poll_wait(&r_, out, max, &idle, timeout_ns);
        if (n < 0)
            throw Error("zkring: poll", static_cast<int>(n));
        return static_cast<std::uint64_t>(n);
    }

    // Opened with ZKRING_O_DEFER_RELEASE: free every record polled so far.
    void release() { zkring_release(&r_); }

    std::uint64_t position() const { return zkring_position(&r_); }
    std::uint64_t depth() const { return zkring_depth(&r_); }
};

} // namespace zkr

#endif
