// zkring_consumer.cpp — the tests' C++ consumer, through bindings/zkring.hpp:
//   zkring_consumer NAME COUNT ID
// Drains COUNT test records of producer ID (tests/ring_helpers.py: u64 seq,
// u32 id, u32 zero, u64 payload[i] = seq * 0x9E3779B97F4A7C15 + id + i),
// checks each arrives in order and intact, prints "received COUNT" and exits
// 0; exits 1 with the first bad record, or 3 if nothing arrives for 20 s.
// Compiled by tests/test_ring_cpp.py in each C++ standard.
#include "zkring.hpp"

#include <cstdio>
#include <cstdlib>

namespace {

struct Record {
    std::uint64_t seq;
    std::uint32_t id, zero;
    std::uint64_t payload[6];
};
static_assert(sizeof(Record) == 64, "the test record is 64 bytes");

} // namespace

int main(int argc, char **argv)
{
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s NAME COUNT ID\n", argv[0]);
        return 2;
    }
    const std::uint64_t count = std::strtoull(argv[2], nullptr, 10);
    const auto id = static_cast<std::uint32_t>(std::strtoul(argv[3], nullptr, 10));
    try {
        zkr::Consumer<Record> ring(argv[1]);
        const zkring_idle_t idle{ZKRING_IDLE_PARK, 1000, 10, 1000000};
        Record batch[256];
        std::uint64_t next = 0;
        while (next < count) {
            std::uint64_t want = count - next < 256 ? count - next : 256;
            std::uint64_t n = ring.poll_wait(batch, want, idle, 20000000000ull);
            if (n == 0) {
                std::fprintf(stderr, "zkring_consumer: nothing for 20 s at record %llu\n",
                             static_cast<unsigned long long>(next));
                return 3;
            }
            for (std::uint64_t i = 0; i < n; i++, next++) {
                const Record &r = batch[i];
                bool ok = r.seq == next && r.id == id && r.zero == 0;
                for (int k = 0; k < 6 && ok; k++)
                    ok = r.payload[k] == r.seq * 0x9E3779B97F4A7C15ull + id + static_cast<std::uint64_t>(k);
                if (!ok) {
                    std::fprintf(stderr, "zkring_consumer: bad record at %llu (seq %llu, id %u)\n",
                                 static_cast<unsigned long long>(next),
                                 static_cast<unsigned long long>(r.seq), r.id);
                    return 1;
                }
            }
        }
        std::printf("received %llu\n", static_cast<unsigned long long>(next));
    } catch (const zkr::Error &e) {
        std::fprintf(stderr, "zkring_consumer: %s\n", e.what());
        return 1;
    }
    return 0;
}
