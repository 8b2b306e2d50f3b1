// examples/cpp/engine.cpp — a matching engine attached to the sidecar, in C++17.
//
//   engine OPS_RING COMPLETIONS_RING [OPS [CAPACITY [SYMBOL [SEED [WAIT_S]]]]]
//
// The same engine as examples/c/engine.c (docs/INTEGRATION.md), through the
// RAII ring wrapper (bindings/zkring.hpp) and the core's C API
// (csrc/engine/zk_core.h, linked from build/libzkcore.a): match through the
// provable core, stamp seq/ts, publish every applied operation with its claim
// (FULL never blocks: retried next turn, counted), heartbeat, read
// completions through struct zk_completion.  Last line: the summary the
// tests parse (see the C example).  Exit 0 when every operation was proven.
#include "engine/zk_core.h"
#include "formats/zk_records.h"
#include "zkring.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::uint64_t kHeartbeatNs = 200'000'000;  // 0.2 s: well inside the daemon's 5 s

// The core's book, owned.
struct CoreDeleter {
    void operator()(zk_core *c) const { zk_core_free(c); }
};
using Core = std::unique_ptr<zk_core, CoreDeleter>;

// A deterministic order flow (xorshift64*), the C example's.
class Flow {
  public:
    explicit Flow(std::uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}

    zk_op draw(const zk_core *core, std::uint64_t client_id)
    {
        zk_op op{};
        op.client_id = client_id;
        op.account = 1 + below(10);
        if (below(20) == 0) mid_ += below(2) ? 1 : -1;
        std::uint32_t u = below(100);
        std::uint32_t cancel_pct =
            zk_core_resting(core) * 4 > zk_core_capacity(core) * 3 ? 60 : 20;
        while (u < cancel_pct && !handles_.empty()) {
            std::size_t i = below(static_cast<std::uint32_t>(handles_.size()));
            std::uint64_t h = handles_[i];
            handles_[i] = handles_.back();
            handles_.pop_back();
            if (!zk_core_order(core, h, nullptr)) continue;  // filled since: pick another
            op.handle = h;
            if (below(5) == 0) {
                op.kind = ZK_KIND_REDUCE;
                op.qty = 1 + below(3);
            } else {
                op.kind = ZK_KIND_CANCEL;
            }
            return op;
        }
        op.side = below(2) ? ZK_SIDE_BUY : ZK_SIDE_SELL;
        std::int64_t sign = op.side == ZK_SIDE_BUY ? 1 : -1;
        op.qty = below(10) == 0 ? 50 + below(100) : 1 + below(20);
        if (u < cancel_pct + 20) {  // marketable
            static const std::uint8_t kinds[] = {ZK_KIND_IOC, ZK_KIND_IOC, ZK_KIND_MARKET,
                                                 ZK_KIND_FOK, ZK_KIND_LIMIT};
            op.kind = kinds[below(5)];
            op.price = op.kind == ZK_KIND_MARKET
                           ? 0
                           : static_cast<std::uint32_t>(mid_ + sign * below(3));
        } else {  // resting, behind the touch
            op.kind = below(20) == 0 ? ZK_KIND_POST_ONLY : ZK_KIND_LIMIT;
            op.price = static_cast<std::uint32_t>(mid_ - sign * (1 + below(5)));
        }
        return op;
    }

    void remember(const zk_op &op)
    {
        if (op.status == ZK_STATUS_RESTED) handles_.push_back(op.handle);
    }

  private:
    std::uint64_t next()
    {
        state_ ^= state_ >> 12;
        state_ ^= state_ << 25;
        state_ ^= state_ >> 27;
        return state_ * 0x2545F4914F6CDD1Dull;
    }
    std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(next() % n); }

    std::uint64_t state_;
    std::int64_t mid_ = 100000;
    std::vector<std::uint64_t> handles_;  // orders that rested (some filled since)
};

std::uint64_t wall_ns()
{
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

zkring_access_t expected_access()
{
    // ours (0600), or with ZKRING_GID the daemon's ring.group (0660)
    zkring_access_t access{static_cast<std::int64_t>(geteuid()), -1};
    if (const char *gid = std::getenv("ZKRING_GID"); gid && *gid)
        access = zkring_access_t{-1, std::strtoll(gid, nullptr, 10)};
    return access;
}

struct Done {
    std::uint64_t completions = 0, proven_ops = 0, disagrees = 0, failed = 0, covered_ops = 0,
                  last_seq = 0;
    std::uint8_t last_root[32] = {};
    std::uint32_t symbol = 0;  // the book's: completions of any other are not ours

    void read(zkr::Consumer<zk_completion> &ring)
    {
        zk_completion buf[64];
        while (std::uint64_t n = ring.poll(buf, 64)) {
            for (std::uint64_t i = 0; i < n; i++) {
                const zk_completion &c = buf[i];
                if (c.version != ZK_RECORDS_VERSION || c.symbol != symbol) {
                    // another layout, or another book's batch: not ours to count
                    std::fprintf(stderr, "engine: a completion of layout %u for symbol %u (expected "
                                 "layout %u, symbol %u)\n", unsigned(c.version), unsigned(c.symbol),
                                 unsigned(ZK_RECORDS_VERSION), unsigned(symbol));
                    failed++;
                    continue;
                }
                std::uint64_t ops = c.op_count, last = c.first_seq + c.op_count - 1;
                completions++;
                covered_ops += ops;
                if (last > last_seq) last_seq = last;
                if (c.status == ZK_COMPLETION_PROVEN) {
                    proven_ops += ops;
                    std::memcpy(last_root, c.post_state_root, sizeof last_root);
                } else if (c.status == ZK_COMPLETION_DISAGREES) {
                    disagrees++;
                    std::fprintf(stderr, "engine: batch %llu (seq %llu..%llu) disagrees with our claim\n",
                                 static_cast<unsigned long long>(c.batch_id),
                                 static_cast<unsigned long long>(c.first_seq),
                                 static_cast<unsigned long long>(last));
                } else {
                    failed++;
                }
            }
        }
    }
};

}  // namespace

int main(int argc, char **argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s OPS_RING COMPLETIONS_RING [OPS [CAPACITY [SYMBOL [SEED [WAIT_S]]]]]\n",
                     argv[0]);
        return 2;
    }
    const std::uint64_t n_ops = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1000;
    const auto capacity = static_cast<std::uint32_t>(argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 1024);
    const auto symbol = static_cast<std::uint32_t>(argc > 5 ? std::strtoul(argv[5], nullptr, 10) : 0);
    Flow flow(argc > 6 ? std::strtoull(argv[6], nullptr, 10) : 1);
    const double wait_s = argc > 7 ? std::atof(argv[7]) : 60.0;

    Core core(zk_core_new(capacity, symbol));
    if (!core) {
        std::fprintf(stderr, "engine: capacity %u: must be a power of two, 2 .. 2^24\n", capacity);
        return 2;
    }
    const zkring_access_t access = expected_access();
    try {
        zkr::Producer<zk_op> ops_ring(argv[1], 0, &access);
        zkr::Consumer<zk_completion> done_ring(argv[2], 0, &access);

        std::deque<zk_op> outbox;  // applied, not yet on the ring, in seq order
        Done done;
        done.symbol = symbol;
        std::uint64_t applied = 0, published = 0, full_events = 0, trades = 0, rejected = 0;
        std::uint64_t last_beat = zkring_now_ns();
        auto beat = [&] {
            std::uint64_t now = zkring_now_ns();
            if (now - last_beat > kHeartbeatNs) {
                ops_ring.heartbeat();
                done_ring.heartbeat();
                last_beat = now;
            }
        };

        while (published < n_ops) {
            if (applied < n_ops) {
                zk_op op = flow.draw(core.get(), applied + 1);
                op.seq = zk_core_next_seq(core.get());
                op.ts_ns = std::max(wall_ns(), zk_core_last_ts(core.get()));
                op.symbol = symbol;
                const zk_trade *fills = nullptr;
                if (int rc = zk_core_apply(core.get(), &op, &fills); rc != ZK_CORE_OK) {
                    std::fprintf(stderr, "engine: core refused seq %llu: %d\n",
                                 static_cast<unsigned long long>(op.seq), rc);
                    return 1;
                }
                trades += op.trades;  // fills[0 .. op.trades): the engine's execution reports
                rejected += op.status == ZK_STATUS_REJECTED;
                flow.remember(op);
                outbox.push_back(op);
                applied++;
            }
            // publish the front of the outbox, one record at a time; never wait
            while (!outbox.empty()) {
                if (!ops_ring.try_publish(outbox.front())) {
                    full_events++;
                    if (applied == n_ops) std::this_thread::yield();
                    break;
                }
                outbox.pop_front();
                published++;
            }
            beat();
            done.read(done_ring);
        }

        const auto deadline =
            std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
        while (done.covered_ops < n_ops && std::chrono::steady_clock::now() < deadline) {
            done.read(done_ring);
            beat();
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }

        ops_ring.mark_closed();  // a clean end: the daemon reports the engine "closed", not "dead"
        std::printf("engine (C++): %llu operations on symbol %u, %u resting at the end; root after seq %llu: ",
                    static_cast<unsigned long long>(n_ops), symbol, zk_core_resting(core.get()),
                    static_cast<unsigned long long>(done.last_seq));
        for (std::uint8_t b : done.last_root) std::printf("%02x", b);
        std::printf("\nsummary published=%llu full_events=%llu trades=%llu rejected=%llu "
                    "completions=%llu proven_ops=%llu disagrees=%llu failed=%llu last_seq=%llu\n",
                    static_cast<unsigned long long>(published),
                    static_cast<unsigned long long>(full_events),
                    static_cast<unsigned long long>(trades),
                    static_cast<unsigned long long>(rejected),
                    static_cast<unsigned long long>(done.completions),
                    static_cast<unsigned long long>(done.proven_ops),
                    static_cast<unsigned long long>(done.disagrees),
                    static_cast<unsigned long long>(done.failed),
                    static_cast<unsigned long long>(done.last_seq));
        return done.proven_ops == n_ops && done.disagrees == 0 && done.failed == 0 ? 0 : 1;
    } catch (const zkr::Error &e) {
        std::fprintf(stderr, "engine: %s (is `zksidecar daemon` running?)\n", e.what());
        return 1;
    }
}
