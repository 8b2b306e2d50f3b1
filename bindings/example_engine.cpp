// example_engine.cpp — the C example engine again, through the C++ wrapper:
//   example_engine_cpp NAME COUNT [ID]
// Publishes COUNT test records (the layout of bindings/example_engine.c),
// alternately one by one and in place in claims of 16.  Test patterns for the
// ring's tests, not operation records (a daemon refuses them): the C++ engine
// attached to the sidecar is examples/cpp/engine.cpp (docs/INTEGRATION.md).
#include "zkring.hpp"

#include <cstdio>
#include <cstdlib>

struct Record {
    std::uint64_t seq;
    std::uint32_t id, zero;
    std::uint64_t payload[6];
};
static_assert(sizeof(Record) == 64);

static void fill(Record &r, std::uint64_t seq, std::uint32_t id)
{
    r.seq = seq;
    r.id = id;
    r.zero = 0;
    for (int i = 0; i < 6; i++)
        r.payload[i] = seq * 0x9E3779B97F4A7C15ull + id + static_cast<std::uint64_t>(i);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s NAME COUNT [ID]\n", argv[0]);
        return 2;
    }
    std::uint64_t count = std::strtoull(argv[2], nullptr, 10);
    auto id = static_cast<std::uint32_t>(argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 0);
    try {
        zkr::Producer<Record> ring(argv[1]);
        std::uint64_t seq = 0;
        while (seq < count) {
            bool ok;
            std::uint64_t n = count - seq < 16 ? count - seq : 16;
            if ((seq / 16) % 2 == 0) {
                Record rec;
                fill(rec, seq, id);
                ok = ring.try_publish(rec);
                n = 1;
            } else {
                ok = ring.publish_in_place(n, [&](Record &slot, std::uint64_t i) { fill(slot, seq + i, id); });
            }
            if (ok)
                seq += n;
            else
                sched_yield(); // full: let the consumer run
        }
    } catch (const zkr::Error &e) {
        std::fprintf(stderr, "example_engine_cpp: %s\n", e.what());
        return 1;
    }
    return 0;
}
