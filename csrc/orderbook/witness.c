/*
 * witness.c — OrderBookAir's exec columns from the engine's steps
 * (zk_witness.h).  The readable definition is build_reference in
 * prover/orderbook/witness.py; this file follows it statement for statement,
 * in three passes:
 *
 *   1. the steps, in order: each step but BEGIN and END is a row (a BEGIN
 *      followed at once by its END is the one sN row of an operation
 *      rejected on its fields); BEGIN and END become the flags `first` and
 *      `last`.  The row takes its operation's context, the running values
 *      (remaining quantity, trades so far, FOK accumulator) as they stand
 *      before its own step, its accesses with the timestamp of each
 *      address's previous write (one array of the last write per address:
 *      the steps are in time order, so no sort is needed), and its step's
 *      selector and its comparisons' limbs (the values that are linear
 *      combinations of columns, air.linear_values, have none: sN, k_z,
 *      cmp1, cmp2, sb, sw, nsb, nsw).  PAD rows then carry the last
 *      operation's context.
 *   2. every row: the helper columns (zero-test inverses, signed
 *      differences, best helpers), as derive_columns computes them; the
 *      inverses of all rows in one batch inversion.
 *   3. the range multiplicities `rm`, counted from every range lookup.
 *
 * Each address's last write time goes to `pts` (the `book` domain's column
 * of that name, one entry per address), the rest to the `ops` rows.  Pass 1
 * also checks each step's ranges and writes the post table (zk_witness.h).
 *
 * Everything is computed as a canonical element of [0, p): a signed value v
 * becomes v mod p (red), the way the Python columns are reduced; each `ops`
 * row is then encoded to Montgomery form (the prover's) at the end of pass
 * 3.  `pts` stays canonical (the caller stacks it beside the row numbers).
 *
 * The output is row-major, the layout the prover commits: a row's ~130
 * values are one contiguous run, so pass 1 writes a handful of cache lines
 * per row instead of one per column, and nothing is transposed afterwards.
 */
#include "orderbook/zk_witness.h"

#include <stdlib.h>
#include <string.h>

#include "engine/zk_engine.h"
#include "field/bb_field.h"
#include "field/zk_field.h"

#define P ((int64_t)ZK_FP_P)
#define GEN_LIMIT ((int64_t)1 << 30)
#define MAX_LIMBS 8

/* The named values, in one list: enum and names cannot drift. */
#define WITNESS_COLUMNS(X)                                                                         \
    X(ROW, "row") X(RM, "rm")                                                        \
    X(SM, "sM") X(SR, "sR") X(SC, "sC") X(SD, "sD") X(SZ, "sZ")                        \
    X(PK_STOP, "pk_stop") X(PK_CROSS, "pk_cross") X(PK_FULL, "pk_full")                            \
    X(PK_STALE, "pk_stale") X(PK_FOK, "pk_fok")                                                    \
    X(FIRST, "first") X(LAST, "last") X(OI, "oi")                                                  \
    X(K_LIM, "k_lim") X(K_IOC, "k_ioc") X(K_FOK, "k_fok") X(K_POST, "k_post")                      \
    X(K_CAN, "k_can") X(K_RED, "k_red")                                                            \
    X(BUY, "buy") X(LIM, "lim") X(QTY, "qty") X(HSLOT, "hslot") X(HGEN, "hgen")                    \
    X(ALO, "alo") X(AHI, "ahi")                                                                    \
    X(REM, "rem") X(TN, "tn") X(OS, "os") X(OG, "og") X(ACC, "acc")                                \
    X(SEL, "sel") X(LV, "lv") X(FL, "fl") X(GW, "gw") X(GINV, "ginv")                              \
    X(ZV1, "zv1") X(ZI1, "zi1") X(NZ1, "nz1") X(ZV2, "zv2") X(ZI2, "zi2") X(NZ2, "nz2")            \
    X(CR, "cr") X(SF, "sf") X(FG, "fg") X(FC, "fc") X(CXS, "cxs") X(CX, "cx")                      \
    X(DB, "dB") X(DC, "dC")                                                                        \
    X(BEST_O, "ob") X(BEST_W, "ow") X(NBEST_O, "nob") X(NBEST_W, "now")                            \
    X(C1_0, "c1_0") X(C1_1, "c1_1") X(C1_2, "c1_2") X(C1_3, "c1_3")                                \
    X(C1_4, "c1_4") X(C1_5, "c1_5") X(C1_6, "c1_6") X(C1_7, "c1_7")                                \
    X(C2_0, "c2_0") X(C2_1, "c2_1") X(C2_2, "c2_2") X(C2_3, "c2_3")                                \
    X(C2_4, "c2_4") X(C2_5, "c2_5") X(C2_6, "c2_6") X(C2_7, "c2_7")                                \
    X(MH, "mH") X(TH, "tH")                                                                        \
    X(OH0, "oH0") X(OH1, "oH1") X(OH2, "oH2") X(OH3, "oH3") X(OH4, "oH4") X(OH5, "oH5")            \
    X(NH0, "nH0") X(NH1, "nH1") X(NH2, "nH2") X(NH3, "nH3") X(NH4, "nH4") X(NH5, "nH5")            \
    X(MA, "mA") X(AA, "aA") X(TA, "tA")                                                            \
    X(OA0, "oA0") X(OA1, "oA1") X(OA2, "oA2") X(OA3, "oA3")                                        \
    X(OA4, "oA4") X(OA5, "oA5") X(OA6, "oA6") X(OA7, "oA7")                                        \
    X(NA0, "nA0") X(NA1, "nA1") X(NA2, "nA2") X(NA3, "nA3")                                        \
    X(NA4, "nA4") X(NA5, "nA5") X(NA6, "nA6") X(NA7, "nA7")                                        \
    X(MB, "mB") X(AB, "aB") X(TB, "tB")                                                            \
    X(OB0, "oB0") X(OB1, "oB1") X(OB2, "oB2") X(OB3, "oB3")                                        \
    X(OB4, "oB4") X(OB5, "oB5") X(OB6, "oB6") X(OB7, "oB7")                                        \
    X(NB5, "nB5") X(NB6, "nB6")                                                                    \
    X(MC, "mC") X(AC, "aC") X(TC, "tC")                                                            \
    X(OC0, "oC0") X(OC1, "oC1") X(OC2, "oC2") X(OC3, "oC3")                                        \
    X(OC4, "oC4") X(OC5, "oC5") X(OC6, "oC6") X(OC7, "oC7")                                        \
    X(NC5, "nC5")

enum {
#define AS_ENUM(id, name) W_##id,
    WITNESS_COLUMNS(AS_ENUM)
#undef AS_ENUM
    W_COUNT
};

static const char *const NAMES[W_COUNT] = {
#define AS_NAME(id, name) name,
    WITNESS_COLUMNS(AS_NAME)
#undef AS_NAME
};

size_t zk_witness_column_count(void) { return W_COUNT; }

const char *zk_witness_column_name(size_t i) { return i < W_COUNT ? NAMES[i] : NULL; }

/* The four accesses (H, A, B, C; air.WRITES): their flag, address and
 * timestamp columns, the first old-cell column, and which cells have a
 * column of their own for the written value (the others are written back
 * as read: their tuple takes the old column). */
typedef struct access_columns {
    int m, a, t, old0, cells;
    int n_written;
    int written_cell[8];
    int written_col[8];
} access_columns;

static const access_columns ACCESS[4] = {
    {W_MH, -1, W_TH, W_OH0, ZK_HEADER_WORD_CELLS, 6,
     {0, 1, 2, 3, 4, 5}, {W_NH0, W_NH1, W_NH2, W_NH3, W_NH4, W_NH5}},
    {W_MA, W_AA, W_TA, W_OA0, ZK_WORD_CELLS, 8,
     {0, 1, 2, 3, 4, 5, 6, 7}, {W_NA0, W_NA1, W_NA2, W_NA3, W_NA4, W_NA5, W_NA6, W_NA7}},
    {W_MB, W_AB, W_TB, W_OB0, ZK_WORD_CELLS, 2, {5, 6}, {W_NB5, W_NB6}},
    {W_MC, W_AC, W_TC, W_OC0, ZK_WORD_CELLS, 1, {5}, {W_NC5}},
};

/* What PAD rows repeat of the last operation row (witness._CARRIED). */
static const int CARRIED[] = {W_OI, W_K_LIM, W_K_IOC, W_K_FOK, W_K_POST, W_K_CAN, W_K_RED,
                              W_BUY, W_LIM, W_QTY, W_HSLOT, W_HGEN, W_ALO, W_AHI};

enum { K_LIM, K_IOC, K_FOK, K_POST, K_CAN, K_RED, K_Z, N_KINDS };   /* air.KINDS */

ZK_INLINE uint32_t red(int64_t v) {
    int64_t r = v % P;
    return (uint32_t)(r < 0 ? r + P : r);
}

/* A value needing its inverse in pass 2: (where it goes, the value). */
typedef struct pending_inverse {
    uint32_t *at;
    uint32_t value;
} pending_inverse;

/* Whether step e's fields are in range (engine/trace.py check_steps, rule
 * for rule): `prev_op` is the previous step's operation index (0 for the
 * first step). */
ZK_INLINE int step_in_range(const zk_step *s, uint32_t prev_op, size_t n_ops, size_t capacity) {
    if (s->op >= n_ops || s->op < prev_op) return 0;
    if (s->kind < ZK_STEP_BEGIN || s->kind > ZK_STEP_END) return 0;
    if (s->mask >= 1u << 4 || s->reserved != 0) return 0;
    if (s->addr[ZK_ACCESS_H] != 0) return 0;
    for (int j = 0; j < 4; j++)
        if (s->addr[j] >= capacity) return 0;
    return 1;
}

int64_t zk_witness_build(uint32_t *out, size_t n_cols, size_t trace_length, const int32_t *pos_in,
                         uint32_t limb_bits, uint32_t limbs, const void *steps_in, size_t n_steps,
                         const int64_t *ctx, size_t n_ops, uint32_t *pts, size_t n_addresses,
                         uint32_t *post, size_t capacity) {
    const size_t T = trace_length;
    const zk_step *steps = (const zk_step *)steps_in;
    uint32_t pos[W_COUNT];
    if (limbs < 1 || limbs > MAX_LIMBS || limb_bits < 1 || limb_bits * limbs < 30 || limb_bits >= 31)
        return ZK_WIT_BAD_LAYOUT;
    /* every address step_in_range lets through (< capacity) has its `pts` entry */
    if (capacity > n_addresses) return ZK_WIT_BAD_LAYOUT;
    for (size_t i = 0; i < W_COUNT; i++) {
        int optional = (i >= W_C1_0 + limbs && i <= W_C1_7) || (i >= W_C2_0 + limbs && i <= W_C2_7);
        if (pos_in[i] < 0 && optional) {
            pos[i] = 0;          /* never written: the limb loops stop at `limbs` */
            continue;
        }
        if (pos_in[i] < 0 || (size_t)pos_in[i] >= n_cols) return ZK_WIT_BAD_LAYOUT;
        pos[i] = (uint32_t)pos_in[i];
    }
#define AT(r, id) out[(size_t)(r) * n_cols + pos[W_##id]]
#define AT_COL(r, w) out[(size_t)(r) * n_cols + pos[(w)]]
    const int64_t *c_kind = ctx + ZK_WCTX_KIND * n_ops, *c_buy = ctx + ZK_WCTX_BUY * n_ops,
                  *c_lim = ctx + ZK_WCTX_LIM * n_ops, *c_qty = ctx + ZK_WCTX_QTY * n_ops,
                  *c_hslot = ctx + ZK_WCTX_HSLOT * n_ops, *c_hgen = ctx + ZK_WCTX_HGEN * n_ops,
                  *c_alo = ctx + ZK_WCTX_ALO * n_ops, *c_ahi = ctx + ZK_WCTX_AHI * n_ops,
                  *c_cross = ctx + ZK_WCTX_CROSS * n_ops;

    /* row + 1 of each address's last write: the book domain's `pts`, written in place */
    uint32_t *last_write = pts;
    uint32_t *counts = calloc(T, sizeof *counts);
    pending_inverse *pend = malloc(3 * T * sizeof *pend);        /* ginv, zi1, zi2 of each row at most */
    uint32_t *inv_in = malloc(3 * T * sizeof *inv_in), *inv_out = malloc(3 * T * sizeof *inv_out);
    int64_t result = -1;
    if (!counts || !pend || !inv_in || !inv_out) {
        result = ZK_WIT_NO_MEMORY;
        goto done;
    }
    memset(pts, 0, n_addresses * sizeof *pts);
    if (n_steps == 0) {          /* check_steps: every operation takes at least two */
        result = 0;
        goto done;
    }
    size_t n_pend = 0;
    /* each row is cleared as pass 1 starts it (its step's row, or a PAD
     * row): while it is in cache, where a cleared matrix was another pass
     * over all of it before this one */
#define CLEAR_ROW(r) memset(out + (size_t)(r) * n_cols, 0, n_cols * sizeof *out)

    /* ---- pass 1: one row per step but BEGIN/END ---- */
    const uint32_t limb_mask = (1u << limb_bits) - 1;
    size_t r = 0;
    int64_t rem = 0, tn = 0, acc = 0;
    int peeks = 0, opens = 0;
    size_t i = 0;                                /* the current operation */
    for (size_t e = 0; e < n_steps; e++) {
        const zk_step *s = &steps[e];
        if (!step_in_range(s, e ? steps[e - 1].op : 0, n_ops, capacity)) { result = (int64_t)e; goto done; }
        /* the post table: every access writes its new word (a read, the
         * word it read), whatever the step's kind, as `written` does */
        for (int j = 0; j < 4; j++)
            if (s->mask >> j & 1)
                memcpy(post + (size_t)s->addr[j] * ZK_WORD_CELLS, s->new_word[j], sizeof s->new_word[j]);
        if (s->kind == ZK_STEP_BEGIN) {
            i = s->op;
            rem = c_qty[i];
            tn = acc = 0;
            peeks = 0;
            opens = 1;
            int lone = e + 1 < n_steps && steps[e + 1].kind == ZK_STEP_END;
            if (!lone) continue;
        } else if (s->kind == ZK_STEP_END) {
            if (r == 0) { result = (int64_t)e; goto done; }
            AT(r - 1, LAST) = 1;
            continue;
        } else if (s->kind < ZK_STEP_MATCH || s->kind > ZK_STEP_REDUCE || s->op != i) {
            result = (int64_t)e;
            goto done;
        }
        if (r + 1 >= T) { result = ZK_WIT_TOO_LONG; goto done; }
        const int64_t kind = c_kind[i];
        if (kind < 0 || kind >= N_KINDS) { result = (int64_t)e; goto done; }
        const int64_t buy = c_buy[i], lim = c_lim[i], qty = c_qty[i];
        CLEAR_ROW(r);
        AT(r, FIRST) = (uint32_t)opens;
        opens = 0;
        if (kind != K_Z) AT_COL(r, W_K_LIM + kind) = 1;   /* k_z: 1 minus the others (air.linear_values) */
        AT(r, BUY) = red(buy);
        AT(r, LIM) = red(lim);
        AT(r, QTY) = red(qty);
        AT(r, HSLOT) = red(c_hslot[i]);
        AT(r, HGEN) = red(c_hgen[i]);
        AT(r, ALO) = red(c_alo[i]);
        AT(r, AHI) = red(c_ahi[i]);
        AT(r, OI) = red((int64_t)i);
        AT(r, REM) = red(rem);
        AT(r, TN) = red(tn);
        AT(r, ACC) = red(acc);

        /* memory: every access reads the last write of its address, then
         * all of them write (a step's addresses are distinct) */
        for (int j = 0; j < 4; j++) {
            if (!(s->mask >> j & 1)) continue;
            const access_columns *x = &ACCESS[j];
            uint32_t a = s->addr[j];     /* < capacity <= n_addresses: step_in_range */
            AT_COL(r, x->m) = 1;
            AT_COL(r, x->t) = last_write[a];
            if (x->a >= 0) AT_COL(r, x->a) = a;
            for (int c = 0; c < x->cells; c++) AT_COL(r, x->old0 + c) = s->old_word[j][c] % ZK_FP_P;
            for (int w = 0; w < x->n_written; w++)
                AT_COL(r, x->written_col[w]) = s->new_word[j][x->written_cell[w]] % ZK_FP_P;
        }
        for (int j = 0; j < 4; j++)
            if (s->mask >> j & 1) last_write[s->addr[j]] = (uint32_t)(r + 1);

        const uint32_t *oA = s->old_word[ZK_ACCESS_A], *nA = s->new_word[ZK_ACCESS_A];
        const uint32_t *oB = s->old_word[ZK_ACCESS_B], *oC = s->old_word[ZK_ACCESS_C];
        const int64_t aA = s->addr[ZK_ACCESS_A], aB = s->addr[ZK_ACCESS_B], aC = s->addr[ZK_ACCESS_C];
        const int has_a = s->mask >> ZK_ACCESS_A & 1;
        /* the limit against maker A's price, positive when they cross */
        const int64_t cx = buy ? lim - (int64_t)oA[0] : (int64_t)oA[0] - lim;
        int frees = 0;
        uint32_t cmp[2] = {0, 0};                 /* cmp1, cmp2: only their limbs are columns */
        switch (s->kind) {
        case ZK_STEP_BEGIN:                       /* the operation's only row: sN, 1 minus the other steps */
            break;
        case ZK_STEP_MATCH: {
            AT(r, SM) = 1;
            AT(r, SEL) = red(buy);
            int64_t fill = (int64_t)oA[1] - (int64_t)nA[1];
            int lv = nA[1] == 0;
            AT(r, FL) = red(fill);
            AT(r, LV) = (uint32_t)lv;
            cmp[0] = red(cx);
            cmp[1] = red(lv ? rem - (int64_t)oA[1] : (int64_t)oA[1] - rem - 1);
            AT(r, ZV1) = oA[6] % ZK_FP_P;
            rem -= fill;
            tn += 1;
            frees = lv;
            break;
        }
        case ZK_STEP_PEEK:
            peeks++;
            if (kind == K_CAN || kind == K_RED) {
                AT(r, PK_STALE) = 1;
                AT(r, ZV1) = red((int64_t)oA[7] - c_hgen[i]);
            } else if (kind == K_FOK) {
                AT(r, PK_FOK) = 1;
                AT(r, SEL) = red(buy);
                AT(r, ZV1) = has_a ? red(aA) : 0;
                AT(r, ZV2) = has_a ? oA[6] % ZK_FP_P : 0;
                int cr = has_a && cx >= 0;
                AT(r, CR) = (uint32_t)cr;
                if (has_a) cmp[0] = red(cr ? cx : -cx - 1);
                acc += cr ? (int64_t)oA[1] : 0;
                AT(r, ACC) = red(acc);        /* this row's maker included */
                int sf = acc >= qty;
                AT(r, SF) = (uint32_t)sf;
                cmp[1] = red(sf ? acc - qty : qty - acc - 1);
            } else if (peeks == 1 && c_cross[i]) {
                AT(r, PK_CROSS) = 1;
                AT(r, SEL) = red(buy);
                AT(r, ZV1) = red(aA);
                cmp[0] = red(cx);
            } else if (peeks == 1) {
                AT(r, PK_STOP) = 1;
                AT(r, SEL) = red(buy);
                AT(r, ZV1) = has_a ? red(aA) : 0;
                if (has_a) cmp[0] = red(-cx - 1);
                cmp[1] = red(rem - 1);
            } else {
                AT(r, PK_FULL) = 1;
            }
            break;
        case ZK_STEP_REST:
            AT(r, SR) = 1;
            AT(r, SEL) = red(buy);
            AT(r, ZV1) = red(aB);
            AT(r, ZV2) = red(aC);
            if (aB) cmp[0] = red(buy ? (int64_t)oB[0] - lim : lim - (int64_t)oB[0]);
            if (aC) cmp[1] = red(buy ? lim - (int64_t)oC[0] - 1 : (int64_t)oC[0] - lim - 1);
            AT(r, OS) = red(aA);
            AT(r, OG) = oA[7] % ZK_FP_P;
            break;
        case ZK_STEP_CANCEL:
            AT(r, SC) = 1;
            AT(r, SEL) = oA[2] == 1;
            AT(r, ZV1) = red(aB);
            AT(r, ZV2) = red(aC);
            cmp[0] = red((int64_t)oA[1] - 1);
            if (kind == K_RED) cmp[1] = red(qty - (int64_t)oA[1]);
            frees = 1;
            break;
        case ZK_STEP_REDUCE:
            AT(r, SD) = 1;
            cmp[1] = red((int64_t)oA[1] - qty - 1);
            break;
        }
        for (int m = 0; m < 2; m++) {             /* the comparisons' limbs (PAD rows: all 0) */
            const int first = m ? W_C2_0 : W_C1_0;
            for (uint32_t k = 0; k + 1 < limbs; k++) AT_COL(r, first + (int)k) = cmp[m] >> (k * limb_bits) & limb_mask;
            AT_COL(r, first + (int)limbs - 1) = cmp[m] >> ((limbs - 1) * limb_bits);
        }
        if (frees) {                              /* a freed slot's generation moves on, or wraps */
            if ((int64_t)oA[7] == GEN_LIMIT - 1) {
                AT(r, GW) = 1;
            } else {
                uint32_t v = red((int64_t)oA[7] - (GEN_LIMIT - 1));
                if (v) pend[n_pend++] = (pending_inverse){&AT(r, GINV), v};
            }
        }
        r++;
    }
    const size_t S = r;
    /* PAD rows: the last operation's context, the running values after it */
    for (size_t q = S; q < T; q++) {
        CLEAR_ROW(q);
        for (size_t k = 0; k < sizeof CARRIED / sizeof *CARRIED; k++)
            AT_COL(q, CARRIED[k]) = S ? AT_COL(S - 1, CARRIED[k]) : 0;
        AT(q, REM) = red(rem);
        AT(q, TN) = red(tn);
        AT(q, ACC) = red(acc);
        AT(q, SZ) = 1;
    }

    /* ---- pass 2: the helpers of every row (witness.derive_columns) ---- */
    for (size_t q = 0; q < T; q++) {
        AT(q, ROW) = (uint32_t)q;
        const uint32_t zv1 = AT(q, ZV1), zv2 = AT(q, ZV2);
        AT(q, NZ1) = zv1 != 0;
        AT(q, NZ2) = zv2 != 0;
        if (zv1) pend[n_pend++] = (pending_inverse){&AT(q, ZI1), zv1};
        if (zv2) pend[n_pend++] = (pending_inverse){&AT(q, ZI2), zv2};
        const int64_t sel = AT(q, SEL), lim = AT(q, LIM), sgn = 2 * sel - 1;
        const int64_t cx = red(sgn * (lim - (int64_t)AT(q, OA0)));
        AT(q, CX) = (uint32_t)cx;
        AT(q, DB) = red(sgn * ((int64_t)AT(q, OB0) - lim));
        AT(q, DC) = red(sgn * (lim - (int64_t)AT(q, OC0)));
        const int64_t cr = AT(q, CR), sf = AT(q, SF), nz2 = zv2 != 0;
        AT(q, CXS) = red((2 * cr - 1) * cx + cr - 1);
        const int64_t fg = red(cr * sf);
        AT(q, FG) = (uint32_t)fg;
        AT(q, FC) = red((cr - fg) * nz2);
        for (int n = 0; n < 2; n++) {             /* the header before (o) and after (n) the step */
            const int base = n ? W_NH0 : W_OH0;
            const int64_t h0 = AT_COL(q, base), h1 = AT_COL(q, base + 1), h2 = AT_COL(q, base + 2),
                          h3 = AT_COL(q, base + 3);
            /* the own side's pair (sb, sw) is h0 + h2 - ob, h1 + h3 - ow: no column */
            AT_COL(q, n ? W_NBEST_O : W_BEST_O) = red(sel * h2 + (1 - sel) * h0);
            AT_COL(q, n ? W_NBEST_W : W_BEST_W) = red(sel * h3 + (1 - sel) * h1);
        }
    }
    for (size_t k = 0; k < n_pend; k++) inv_in[k] = pend[k].value;
    if (n_pend) {
        if (zk_fp_encode(inv_in, inv_in, n_pend) >= 0 || zk_fp_inv(inv_out, inv_in, n_pend) >= 0) {
            result = ZK_WIT_BAD_LAYOUT;        /* cannot happen: canonical, nonzero by construction */
            goto done;
        }
        zk_fp_decode(inv_out, inv_out, n_pend);
        for (size_t k = 0; k < n_pend; k++) *pend[k].at = inv_out[k];
    }

    /* ---- pass 3: range multiplicities (Witness.finish) ---- */
    const uint64_t top = (uint64_t)1 << (limbs * limb_bits - 30);
    for (size_t q = 0; q < T; q++) {
        for (int j = 0; j < 4; j++) {
            if (AT_COL(q, ACCESS[j].m) != 1) continue;
            uint32_t d = red((int64_t)q - (int64_t)AT_COL(q, ACCESS[j].t));
            if (d < T) counts[d]++;
        }
        for (int m = 0; m < 2; m++) {
            const int first = m ? W_C2_0 : W_C1_0;
            for (uint32_t k = 0; k < limbs; k++) {
                uint32_t v = AT_COL(q, first + (int)k);
                if (v < T) counts[v]++;
            }
            if (top > 1) {
                uint64_t v = (uint64_t)AT_COL(q, first + (int)limbs - 1) * top % (uint64_t)P;
                if (v < T) counts[v]++;
            }
        }
        /* the row is final but for rm (0 here, whose Montgomery form is 0):
         * encoded now, while it is in cache, not in a pass of its own */
        if (zk_fp_encode(out + q * n_cols, out + q * n_cols, n_cols) >= 0) {
            result = ZK_WIT_BAD_LAYOUT;        /* cannot happen: every value is canonical */
            goto done;
        }
    }
    for (size_t q = 0; q < T; q++) AT(q, RM) = bb_encode(counts[q]);   /* < T < p */
#undef AT
#undef AT_COL
done:
    free(counts);
    free(pend);
    free(inv_in);
    free(inv_out);
    return result;
}
