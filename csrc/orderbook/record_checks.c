/*
 * record_checks.c — the record-check block's columns from the operation
 * records (zk_record_checks.h).  The readable definition is
 * RecordChecks.columns_of in prover/orderbook/zk_record_checks.py; this
 * file follows it statement for statement, one operation at a time instead
 * of one column at a time:
 *
 *   1. the operation's named values (op_values): its sub-fields' sources,
 *      the kind, side and flag tests, the price, qty and handle bounds, the
 *      first failing field check, the op and outcome tuples, the timestamp
 *      comparison against the previous operation's (row 0: the
 *      pre-state's) pieces; and whether the transparent verifier would
 *      refuse the record (then nothing more is written);
 *   2. the row: each column the plan's bits of its value, the range
 *      lookups counted, the row encoded to Montgomery form straight into
 *      its place in the records matrix (row-major: one contiguous run per
 *      row, where a column at a time writes one cache line per row);
 *   3. the inverses (zero tests' witnesses) of all rows in one batch
 *      inversion, written into their places.
 *
 * Every value is below p before it is encoded: a piece has at most 30
 * bits (< 2^30 < p), a wider one is reduced, and the derived values are
 * computed canonical (tsd mod p, as columns_of reduces it before the
 * split).  The rows after the last operation are one row, encoded once.
 */
#include "orderbook/zk_record_checks.h"

#include <stdlib.h>
#include <string.h>

#include "field/bb_field.h"
#include "field/zk_field.h"
#include "formats/zk_records.h"

#define P ((uint64_t)BB_P)
#define LOW30 (((uint64_t)1 << 30) - 1)
#define LIMB15 0x7FFFu

/* The named values, in one list: enum and names cannot drift.  The first
 * eleven are record fields (sub-field sources, zk_encoding.SOURCE_BITS's
 * names); the rest are the block's derived values, named as its columns
 * without the rc_ prefix (kcmp .. tsd: the comparison values, split into
 * pieces by the plan). */
#define RC_VALUES(X)                                                                               \
    X(TS_NS, "ts_ns") X(PRICE, "price") X(QTY, "qty") X(SLOT, "slot") X(GEN, "gen")                \
    X(FLAGS, "flags") X(SIDE, "side") X(KIND, "kind") X(ACCOUNT, "account") X(REASON, "reason")    \
    X(STATUS, "status")                                                                            \
    X(K1, "k1") X(K2, "k2") X(K3, "k3") X(K4, "k4") X(K5, "k5") X(K6, "k6") X(K7, "k7")            \
    X(KZ, "kz") X(KB, "kb") X(KCMP, "kcmp")                                                        \
    X(BUY, "buy") X(SZ, "sz") X(SB, "sb") X(SCMP, "scmp") X(FBAD, "fbad") X(FHI, "fhi")            \
    X(PINV, "pinv") X(PNZ, "pnz") X(PBIG, "pbig") X(PCMP, "pcmp") X(POK, "pok")                    \
    X(QINV, "qinv") X(QNZ, "qnz") X(QBIG, "qbig") X(QCMP, "qcmp") X(QOK, "qok")                    \
    X(H1INV, "h1inv") X(H1NZ, "h1nz") X(HINV, "hinv") X(HNZ, "hnz") X(HBIG, "hbig")                \
    X(HCMP, "hcmp") X(HOK1, "hok1") X(HOK, "hok")                                                  \
    X(RQR, "rqr") X(RH, "rh") X(RK, "rk") X(RS, "rs") X(RP, "rp") X(RQ, "rq")                      \
    X(OP_CODE, "op_code") X(OP_BUY, "op_buy") X(OP_LIM, "op_lim") X(OP_QTY, "op_qty")              \
    X(OP_HSLOT, "op_hslot") X(OP_HGEN, "op_hgen") X(OP_ALO, "op_alo") X(OP_AHI, "op_ahi")          \
    X(OUT_STATUS, "out_status") X(OUT_REASON, "out_reason") X(OUT_FILLED, "out_filled")            \
    X(OUT_TRADES, "out_trades") X(OUT_SLOT, "out_slot") X(OUT_GEN, "out_gen")                      \
    X(SIG1, "sig1") X(SIG2, "sig2") X(SIG3, "sig3") X(SIG4, "sig4") X(TSD, "tsd")                  \
    X(LPTS0, "lpts0") X(LPTS1, "lpts1") X(LPTS2, "lpts2") X(LPTS3, "lpts3") X(LPTS4, "lpts4")      \
    X(LTS0, "lts0") X(LTS1, "lts1") X(LTS2, "lts2") X(LTS3, "lts3") X(LTS4, "lts4")

enum {
#define AS_ENUM(id, name) V_##id,
    RC_VALUES(AS_ENUM)
#undef AS_ENUM
    V_COUNT
};

static const char *const NAMES[V_COUNT] = {
#define AS_NAME(id, name) name,
    RC_VALUES(AS_NAME)
#undef AS_NAME
};

size_t zk_record_checks_value_count(void) { return V_COUNT; }

const char *zk_record_checks_value_name(size_t i) { return i < V_COUNT ? NAMES[i] : NULL; }

/* The first value that is not a record field: op_values computes every
 * one of them below p. */
#define V_FIRST_DERIVED V_K1

/* The values that are inverted (x^-1, 0 for x = 0): op_values stores x. */
ZK_INLINE int is_inverse(int v) {
    return v == V_FHI || v == V_PINV || v == V_QINV || v == V_H1INV || v == V_HINV;
}

/* A u64 timestamp's five pieces (zk_record_checks.timestamp_pieces):
 * bits 0-14, 15-29, 30-44, 45-59, 60-63. */
ZK_INLINE void ts_pieces(uint64_t out[5], uint64_t ts) {
    for (int j = 0; j < 4; j++) out[j] = ts >> (15 * j) & LIMB15;
    out[4] = ts >> 60;
}

/* Operation `o`'s named values into v (V_COUNT entries; lts is the
 * caller's), the previous operation's timestamp `prev_ts` and its pieces
 * `prev`.  Returns 0 if the record is refused (zk_record_checks.h). */
static int op_values(uint64_t *v, const zk_op *o, uint64_t prev_ts, const uint64_t prev[5],
                     uint64_t capacity, int small_slot, const int32_t *codes) {
    /* zk_encoding's domain: the fields narrower than their bytes */
    if (o->status > 7 || o->reason > 15 || o->filled > ZK_MAX_QTY || o->trades > ZK_MAX_QTY) return 0;
    memset(v, 0, V_COUNT * sizeof *v);
    const uint64_t ts = o->ts_ns, slot = o->handle & 0xFFFFFFFFu, gen = o->handle >> 32;
    const uint64_t kind = o->kind, side = o->side, flags = o->flags;
    v[V_TS_NS] = ts;
    v[V_PRICE] = o->price;
    v[V_QTY] = o->qty;
    v[V_SLOT] = slot;
    v[V_GEN] = gen;
    v[V_FLAGS] = flags;
    v[V_SIDE] = side;
    v[V_KIND] = kind;
    v[V_ACCOUNT] = o->account;
    v[V_REASON] = o->reason;
    v[V_STATUS] = o->status;

    /* kind: one of 1..7, or 0, or >= 8 (kcmp: kind - 8 >= 0) */
    int k[8] = {0};
    for (int j = 1; j <= 7; j++) v[V_K1 + j - 1] = (uint64_t)(k[j] = kind == (uint64_t)j);
    const int kz = kind == 0, kb = kind >= 8;
    v[V_KZ] = (uint64_t)kz;
    v[V_KB] = (uint64_t)kb;
    v[V_KCMP] = kb ? kind - 8 : 0;
    /* side: 0, buy, sell or >= 3 (scmp: side - 3 >= 0) */
    const int sz = side == 0, sb = side >= 3, buy = side == ZK_SIDE_BUY;
    v[V_SZ] = (uint64_t)sz;
    v[V_SB] = (uint64_t)sb;
    v[V_BUY] = (uint64_t)buy;
    v[V_SCMP] = sb ? side - 3 : 0;
    /* flags: a bit above the known two (fh = flags >> 2, its zero test) */
    const uint64_t fh = flags >> 2;
    const int fbad = fh != 0;
    v[V_FBAD] = (uint64_t)fbad;
    v[V_FHI] = fh;

    /* price and qty: bits 0-29 nonzero and at most MAX, bits 30, 31 clear;
     * the comparison value is MAX - v, or v - MAX - 1 when it is above */
    int ok[2];
    const uint64_t raw[2] = {o->price, o->qty}, top[2] = {ZK_MAX_PRICE, ZK_MAX_QTY};
    const int base[2] = {V_PINV, V_QINV};   /* inv, nz, big, cmp, ok in this order */
    uint64_t low[2];
    for (int x = 0; x < 2; x++) {
        const uint64_t val = raw[x] & LOW30;
        const int nz = val != 0, big = val > top[x];
        low[x] = val;
        v[base[x]] = val;
        v[base[x] + 1] = (uint64_t)nz;
        v[base[x] + 2] = (uint64_t)big;
        v[base[x] + 3] = big ? val - top[x] - 1 : top[x] - val;
        ok[x] = nz && !big && !(raw[x] >> 30 & 1) && !(raw[x] >> 31 & 1);
        v[base[x] + 4] = (uint64_t)ok[x];
    }
    const uint64_t price30 = low[0], qty30 = low[1];
    const int pok = ok[0], qok = ok[1];

    /* the handle: slot below the capacity (compared on its 15-bit limbs),
     * nonzero, bits 30 and 31 of slot and generation clear */
    const uint64_t h0 = slot & LIMB15, h1 = slot >> 15 & LIMB15, slot30 = slot & LOW30, gen30 = gen & LOW30;
    uint64_t y, bound, zero;
    if (small_slot) {
        const int h1nz = h1 != 0;
        v[V_H1INV] = h1;
        v[V_H1NZ] = (uint64_t)h1nz;
        y = h0 + capacity * (uint64_t)h1nz;
        bound = capacity;
        zero = y;
    } else {
        y = h1;
        bound = capacity >> 15;
        zero = slot30;
    }
    const int hbig = y >= bound;
    v[V_HINV] = zero;
    v[V_HNZ] = zero != 0;
    v[V_HBIG] = (uint64_t)hbig;
    v[V_HCMP] = hbig ? y - bound : bound - 1 - y;
    const int hok1 = zero != 0 && !hbig && !(slot >> 30 & 1) && !(slot >> 31 & 1);
    const int hok = hok1 && !(gen >> 30 & 1) && !(gen >> 31 & 1);
    v[V_HOK1] = (uint64_t)hok1;
    v[V_HOK] = (uint64_t)hok;

    /* the first failing field check, in classify_all's order */
    const int new_order = k[1] || k[2] || k[3] || k[4] || k[5], handled = k[6] || k[7];
    int alive = !fbad;
    const int rqr = alive && k[7] && !qok;
    alive = alive && !rqr;
    const int rh = alive && handled && !hok;
    alive = alive && !rh;
    const int rk = alive && (kz || kb);
    alive = alive && !rk;
    const int rs = alive && new_order && (sz || sb);
    alive = alive && !rs;
    const int rp = alive && new_order && !k[3] && !pok;
    alive = alive && !rp;
    const int rq = alive && new_order && !qok;
    alive = alive && !rq;
    const int live = alive;
    v[V_RQR] = (uint64_t)rqr;
    v[V_RH] = (uint64_t)rh;
    v[V_RK] = (uint64_t)rk;
    v[V_RS] = (uint64_t)rs;
    v[V_RP] = (uint64_t)rp;
    v[V_RQ] = (uint64_t)rq;
    const uint64_t reason = fbad ? ZK_REASON_BAD_FLAGS : rqr ? ZK_REASON_BAD_QTY : rh ? ZK_REASON_UNKNOWN_HANDLE
                          : rk ? ZK_REASON_BAD_KIND : rs ? ZK_REASON_BAD_SIDE : rp ? ZK_REASON_BAD_PRICE
                          : rq ? ZK_REASON_BAD_QTY : 0;

    /* the op tuple (classify_all's effective fields) and the outcome
     * tuple, 0 for a rejected record */
    if (live) {
        const uint64_t lim = k[3] ? (buy ? ZK_MAX_PRICE : 1) : price30;
        v[V_OP_CODE] = kind >= 1 && kind <= 7 ? (uint64_t)codes[kind] : 0;
        v[V_OP_BUY] = (uint64_t)(new_order && buy);
        v[V_OP_LIM] = new_order ? lim : 0;
        v[V_OP_QTY] = new_order || k[7] ? qty30 : 0;
        v[V_OP_HSLOT] = handled ? slot30 : 0;
        v[V_OP_HGEN] = handled ? gen30 : 0;
        v[V_OP_ALO] = new_order ? o->account & 0xFFFFu : 0;
        v[V_OP_AHI] = new_order ? o->account >> 16 : 0;
        v[V_OUT_STATUS] = o->status;
        v[V_OUT_REASON] = o->reason;
        v[V_OUT_FILLED] = o->filled;
        v[V_OUT_TRADES] = o->trades;
        v[V_OUT_SLOT] = new_order ? slot30 : 0;
        v[V_OUT_GEN] = new_order ? gen30 : 0;
    }

    /* the timestamp against the previous one: the highest differing piece
     * of 1..4 (0: none), and the difference there (minus one), or at piece
     * 0 when none differs; negative only for a timestamp that went back,
     * refused below, reduced mod p as columns_of reduces it */
    uint64_t t[5];
    ts_pieces(t, ts);
    int high = 0;
    for (int j = 4; j >= 1 && !high; j--)
        if (t[j] != prev[j]) high = j;
    for (int j = 1; j <= 4; j++) v[V_SIG1 + j - 1] = (uint64_t)(high == j);
    const int64_t d = high ? (int64_t)t[high] - (int64_t)prev[high] - 1 : (int64_t)t[0] - (int64_t)prev[0];
    v[V_TSD] = d < 0 ? (uint64_t)(d + (int64_t)P) : (uint64_t)d;
    for (int j = 0; j < 5; j++) v[V_LPTS0 + j] = prev[j];

    /* what the transparent verifier refuses (batch.check_public, air.noncanonical) */
    if (ts < prev_ts) return 0;
    if (!live && (o->status != ZK_STATUS_REJECTED || o->reason != reason || o->filled || o->trades)) return 0;
    if ((rs || rp || rq) && o->handle) return 0;
    if (live && new_order && (slot >= capacity || gen >= (uint64_t)1 << 30)) return 0;
    return 1;
}

/* The block's rows lie a matrix row apart (the lane's, ~1.6 KiB), a few
 * lines of each written: a row AHEAD rows on is asked for, for writing,
 * while this one is filled (the stores' line fetches otherwise wait one
 * by one; a prefetch changes no value). */
enum { AHEAD = 8 };

static void prefetch_row(const uint32_t *p, size_t k) {
    uintptr_t end = (uintptr_t)(p + k);
    for (uintptr_t q = (uintptr_t)p & ~(uintptr_t)63; q < end; q += 64) __builtin_prefetch((const void *)q, 1, 3);
}

int64_t zk_record_checks_fill(uint32_t *out, size_t stride, size_t rows, size_t table, const void *records,
                              size_t n, uint64_t prev_ts, uint32_t log2_capacity, const int32_t *codes,
                              const zk_rc_column *columns, size_t n_columns, const zk_rc_lookup *lookups,
                              size_t n_lookups, int64_t *counts) {
    const size_t R = rows, T = table, k = n_columns;
    const zk_op *ops = (const zk_op *)records;
    if (T < 2 || T & (T - 1) || R < 2 || R & (R - 1) || n < 1 || n > R || log2_capacity < 1
        || log2_capacity > 30 || stride < k)
        return ZK_RC_BAD_PLAN;
    size_t n_inverse = 0;
    for (size_t j = 0; j < k; j++) {
        const zk_rc_column c = columns[j];
        if (c.value < 0 || c.value >= V_COUNT || c.width < 1 || c.width > 64 || c.lo < 0 || c.lo + c.width > 64)
            return ZK_RC_BAD_PLAN;
        if (is_inverse(c.value)) {
            if (c.lo != 0 || c.width != 64) return ZK_RC_BAD_PLAN;
            n_inverse++;
        }
    }
    for (size_t j = 0; j < n_lookups; j++) {
        /* every value of a column of w <= 30 bits is below 2^w: in the
         * table with its shift when shift + 2^w <= T */
        const zk_rc_lookup l = lookups[j];
        if (l.column < 0 || (size_t)l.column >= k || l.shift < 0 || columns[l.column].width > 30
            || (uint64_t)l.shift + ((uint64_t)1 << columns[l.column].width) > T)
            return ZK_RC_BAD_PLAN;
    }
    const uint64_t capacity = (uint64_t)1 << log2_capacity;
    const int small_slot = log2_capacity <= 15;

    /* the plan as arrays, and the columns that need more than the bits:
     * the wide ones (more than 30 bits of a record field, reduced mod p:
     * a derived value is computed below p) and the inverses (pass 3) */
    uint64_t *v = malloc(V_COUNT * sizeof *v);
    uint32_t *row = malloc(k * sizeof *row);
    uint64_t *mask = malloc(k * sizeof *mask);
    uint32_t *value = malloc(k * sizeof *value), *lo = malloc(k * sizeof *lo);
    size_t *wide = malloc(k * sizeof *wide), *inverse = malloc(k * sizeof *inverse);
    size_t *pend_at = malloc((n_inverse * n + 1) * sizeof *pend_at);
    uint32_t *inv_in = malloc((n_inverse * n + 1) * sizeof *inv_in);
    uint32_t *inv_out = malloc((n_inverse * n + 1) * sizeof *inv_out);
    int64_t result = -1;
    if (!v || !row || !mask || !value || !lo || !wide || !inverse || !pend_at || !inv_in || !inv_out) {
        result = ZK_RC_NO_MEMORY;
        goto done;
    }
    size_t n_wide = 0;
    n_inverse = 0;
    for (size_t j = 0; j < k; j++) {
        value[j] = (uint32_t)columns[j].value;
        lo[j] = (uint32_t)columns[j].lo;
        mask[j] = columns[j].width == 64 ? ~(uint64_t)0 : ((uint64_t)1 << columns[j].width) - 1;
        if (is_inverse(columns[j].value)) inverse[n_inverse++] = j;
        else if (columns[j].width > 30 && columns[j].value < V_FIRST_DERIVED) wide[n_wide++] = j;
    }
    memset(counts, 0, T * sizeof *counts);
    uint64_t last[5];
    ts_pieces(last, ops[n - 1].ts_ns);
    uint64_t prev[5];
    ts_pieces(prev, prev_ts);

    /* ---- passes 1 and 2: the operation rows ---- */
    size_t n_pend = 0;
    for (size_t r = 0; r < n; r++) {
        const uint64_t before = r ? ops[r - 1].ts_ns : prev_ts;
        if (r) ts_pieces(prev, before);
        if (!op_values(v, &ops[r], before, prev, capacity, small_slot, codes)) {
            result = (int64_t)r;
            goto done;
        }
        for (int j = 0; j < 5; j++) v[V_LTS0 + j] = last[j];
        /* a piece of at most 30 bits is below p as it is */
        for (size_t j = 0; j < k; j++) row[j] = (uint32_t)(v[value[j]] >> lo[j] & mask[j]);
        for (size_t q = 0; q < n_wide; q++) row[wide[q]] = (uint32_t)((v[value[wide[q]]] >> lo[wide[q]] & mask[wide[q]]) % P);
        for (size_t q = 0; q < n_inverse; q++) {
            const size_t j = inverse[q];
            const uint64_t x = v[value[j]];     /* < 2^30 (op_values) */
            if (x) {
                pend_at[n_pend] = r * stride + j;
                inv_in[n_pend++] = (uint32_t)x;
            }
            row[j] = 0;
        }
        for (size_t j = 0; j < n_lookups; j++) counts[row[lookups[j].column] + (uint32_t)lookups[j].shift]++;
        if (r + AHEAD < R) prefetch_row(out + (r + AHEAD) * stride, k);
        if (zk_fp_encode(out + r * stride, row, k) >= 0) {
            result = ZK_RC_BAD_PLAN;        /* cannot happen: every value is below p */
            goto done;
        }
    }
    /* the rows after the last operation: 0, lts the last operation's pieces
     * (an inverse's input is 0 there: its column 0) */
    memset(v, 0, V_COUNT * sizeof *v);
    for (int j = 0; j < 5; j++) v[V_LTS0 + j] = last[j];
    for (size_t j = 0; j < k; j++) row[j] = (uint32_t)((v[value[j]] >> lo[j] & mask[j]) % P);
    if (zk_fp_encode(row, row, k) >= 0) {
        result = ZK_RC_BAD_PLAN;            /* cannot happen, as above */
        goto done;
    }
    for (size_t r = n; r < R; r++) {
        if (r + AHEAD < R) prefetch_row(out + (r + AHEAD) * stride, k);
        memcpy(out + r * stride, row, k * sizeof *row);
    }

    /* ---- pass 3: the inverses, nonzero and below p by construction ---- */
    if (n_pend) {
        if (zk_fp_encode(inv_in, inv_in, n_pend) >= 0 || zk_fp_inv(inv_out, inv_in, n_pend) >= 0) {
            result = ZK_RC_BAD_PLAN;        /* cannot happen */
            goto done;
        }
        for (size_t q = 0; q < n_pend; q++) out[pend_at[q]] = inv_out[q];   /* Montgomery, as the rows */
    }
done:
    free(v);
    free(row);
    free(mask);
    free(value);
    free(lo);
    free(wide);
    free(inverse);
    free(pend_at);
    free(inv_in);
    free(inv_out);
    return result;
}
