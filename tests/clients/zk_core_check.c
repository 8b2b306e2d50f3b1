/*
 * zk_core_check.c — the public core API (csrc/engine/zk_core.h) checked from
 * C, for tests/test_example_engines.py:
 *
 *   zk_core_check CAPACITY SYMBOL < ops.bin > applied.bin
 *
 * First the API's own promises (a bad capacity, a wrong seq/ts/symbol that
 * changes nothing, a handle looked up, the best order, a cancel, a stale
 * handle), on a scratch book; then every zk_op on stdin applied in order on a
 * fresh book and written back with its outcome, for the test to compare with
 * the Python engine (zksidecar.engine.Book), record for record.
 */
#include "engine/zk_core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "zk_core_check: line %d: %s\n", __LINE__, #cond); \
            return 1;                                                        \
        }                                                                    \
    } while (0)

static zk_op order(uint64_t seq, uint8_t kind, uint8_t side, uint32_t price, uint32_t qty) {
    zk_op op;
    memset(&op, 0, sizeof op);
    op.seq = seq;
    op.ts_ns = 1000 + seq;
    op.symbol = 5;
    op.kind = kind;
    op.side = side;
    op.price = price;
    op.qty = qty;
    op.account = 9;
    return op;
}

static int api(void) {
    errno = 0;
    CHECK(zk_core_new(3, 0) == NULL && errno == EINVAL);
    CHECK(zk_core_new(1u << 25, 0) == NULL && errno == EINVAL);
    zk_core *c = zk_core_new(16, 5);
    CHECK(c && zk_core_next_seq(c) == 1 && zk_core_last_ts(c) == 0);
    CHECK(zk_core_symbol(c) == 5 && zk_core_capacity(c) == 16 && zk_core_resting(c) == 0);
    CHECK(zk_core_best(c, ZK_SIDE_BUY, NULL) == 0);

    zk_op op = order(2, ZK_KIND_LIMIT, ZK_SIDE_BUY, 100, 10);
    CHECK(zk_core_apply(c, &op, NULL) == ZK_CORE_BAD_SEQ && op.status == 0);
    op = order(1, ZK_KIND_LIMIT, ZK_SIDE_BUY, 100, 10);
    op.symbol = 6;
    CHECK(zk_core_apply(c, &op, NULL) == ZK_CORE_BAD_SYMBOL && zk_core_next_seq(c) == 1);

    op = order(1, ZK_KIND_LIMIT, ZK_SIDE_BUY, 100, 10);
    const zk_trade *trades = NULL;
    CHECK(zk_core_apply(c, &op, &trades) == ZK_CORE_OK);
    CHECK(op.status == ZK_STATUS_RESTED && op.handle == 1 && (op.flags & ZK_FLAG_CLAIMED));
    uint64_t bid = op.handle;
    zk_core_order_info info;
    CHECK(zk_core_order(c, bid, &info) == 1 && info.price == 100 && info.qty == 10 &&
          info.side == ZK_SIDE_BUY && info.account == 9);
    CHECK(zk_core_best(c, ZK_SIDE_BUY, &info) == bid && zk_core_next_seq(c) == 2);

    op = order(2, ZK_KIND_IOC, ZK_SIDE_SELL, 99, 4); /* trades 4 at the maker's 100 */
    op.ts_ns = 5; /* time going back */
    CHECK(zk_core_apply(c, &op, &trades) == ZK_CORE_BAD_TS);
    op.ts_ns = 2000;
    CHECK(zk_core_apply(c, &op, &trades) == ZK_CORE_OK);
    CHECK(op.status == ZK_STATUS_FILLED && op.filled == 4 && op.trades == 1);
    CHECK(trades[0].maker_handle == bid && trades[0].price == 100 && trades[0].qty == 4 &&
          trades[0].taker_seq == 2);
    CHECK(zk_core_order(c, bid, &info) == 1 && info.qty == 6 && zk_core_last_ts(c) == 2000);

    op = order(3, ZK_KIND_CANCEL, 0, 0, 0);
    op.ts_ns = 2000;
    op.handle = bid;
    CHECK(zk_core_apply(c, &op, NULL) == ZK_CORE_OK && op.status == ZK_STATUS_CANCELLED);
    CHECK(zk_core_order(c, bid, NULL) == 0 && zk_core_resting(c) == 0);
    op = order(4, ZK_KIND_CANCEL, 0, 0, 0);
    op.ts_ns = 2000;
    op.handle = bid; /* the same handle again: the slot's generation moved on */
    CHECK(zk_core_apply(c, &op, NULL) == ZK_CORE_OK && op.status == ZK_STATUS_REJECTED &&
          op.reason == ZK_REASON_STALE_HANDLE);
    size_t n = 0;
    const uint32_t *cells = zk_core_cells(c, &n);
    CHECK(n == 16 + 7 * 16 && cells[6] == 5 && cells[10] == 5); /* next seq, symbol */
    zk_core_free(c);
    zk_core_free(NULL);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s CAPACITY SYMBOL < ops > applied\n", argv[0]);
        return 2;
    }
    if (api() != 0) return 1;
    zk_core *c = zk_core_new((uint32_t)strtoul(argv[1], NULL, 10), (uint32_t)strtoul(argv[2], NULL, 10));
    if (!c) return 1;
    zk_op op;
    while (fread(&op, sizeof op, 1, stdin) == 1) {
        int rc = zk_core_apply(c, &op, NULL);
        if (rc != ZK_CORE_OK) {
            fprintf(stderr, "zk_core_check: seq %llu refused: %d\n", (unsigned long long)op.seq, rc);
            return 1;
        }
        fwrite(&op, sizeof op, 1, stdout);
    }
    zk_core_free(c);
    return 0;
}
