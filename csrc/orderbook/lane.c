/*
 * lane.c — the record lane's own columns and its published leaves
 * (zk_lane.h).  tests/test_zk_batch.py holds them equal to the numpy
 * definition they replace (the lane's columns one at a time, into a
 * row-major matrix: a cache line touched per row and column).  Here each
 * row's values are one short run written once: the permutation's input x
 * (salts then data elements, encoded) is built in its contiguous array and
 * copied into the row, the types beside it, the blinding values on
 * row 0 and zeros elsewhere; the fill inverses of all MATCH rows come from
 * one batch inversion (fl is already Montgomery, and the inverse of a
 * Montgomery value is the Montgomery form of the inverse, as zk_fp_inv
 * computes it for field.inv).
 */
#include "orderbook/zk_lane.h"

#include <stdlib.h>
#include <string.h>

#include "field/bb_field.h"
#include "field/zk_field.h"

#define SALTS 4
#define DATA 12
#define TYPES 3
#define BLIND 9
#define LEAF 8

/* The named columns, in one list: enum and names cannot drift. */
#define LANE_COLUMNS(X)                                                                            \
    X(FLI, "fli") X(LO, "lo") X(LT, "lt") X(LD, "ld")                                              \
    X(S0, "s0") X(S1, "s1") X(S2, "s2") X(S3, "s3")                                                \
    X(E0, "e0") X(E1, "e1") X(E2, "e2") X(E3, "e3") X(E4, "e4") X(E5, "e5")                        \
    X(E6, "e6") X(E7, "e7") X(E8, "e8") X(E9, "e9") X(E10, "e10") X(E11, "e11")                    \
    X(BM, "bm") X(BX0, "bx0") X(BX1, "bx1") X(BX2, "bx2") X(BX3, "bx3")                            \
    X(BX4, "bx4") X(BX5, "bx5") X(BX6, "bx6") X(BX7, "bx7")

enum {
#define AS_ENUM(id, name) L_##id,
    LANE_COLUMNS(AS_ENUM)
#undef AS_ENUM
    L_COUNT
};

static const char *const NAMES[L_COUNT] = {
#define AS_NAME(id, name) name,
    LANE_COLUMNS(AS_NAME)
#undef AS_NAME
};

size_t zk_lane_column_count(void) { return L_COUNT; }

const char *zk_lane_column_name(size_t i) { return i < L_COUNT ? NAMES[i] : NULL; }

int64_t zk_lane_rows(uint32_t *out, size_t stride, size_t n_cols, const int32_t *pos, uint32_t *x,
                     size_t trace_length, const uint32_t *salts, const uint32_t *data, const uint32_t *types,
                     const uint32_t *blinding, const uint32_t *fl, const uint32_t *sm, size_t exec_stride) {
    const size_t T = trace_length;
    if (n_cols > stride) return ZK_LANE_BAD_LAYOUT;
    for (size_t i = 0; i < L_COUNT; i++)
        if (pos[i] < 0 || (size_t)pos[i] >= n_cols) return ZK_LANE_BAD_LAYOUT;
    /* every input canonical before anything is written (encoding is then exact) */
    int64_t bad, base = 0;
    if ((bad = bb_first_unreduced(salts, T * SALTS)) >= 0) return base + bad;
    base += (int64_t)(T * SALTS);
    if ((bad = bb_first_unreduced(data, T * DATA)) >= 0) return base + bad;
    base += (int64_t)(T * DATA);
    if ((bad = bb_first_unreduced(types, T * TYPES)) >= 0) return base + bad;
    base += (int64_t)(T * TYPES);
    if ((bad = bb_first_unreduced(blinding, BLIND)) >= 0) return base + bad;

    /* fli's inputs: the MATCH rows with a fill, then one batch inversion */
    size_t n_match = 0;
    for (size_t r = 0; r < T; r++) n_match += sm[r * exec_stride] != 0 && fl[r * exec_stride] != 0;
    uint32_t *inv_in = malloc((n_match + 1) * sizeof *inv_in), *inv_out = malloc((n_match + 1) * sizeof *inv_out);
    if (!inv_in || !inv_out) {
        free(inv_in);
        free(inv_out);
        return ZK_LANE_NO_MEMORY;
    }
    n_match = 0;
    for (size_t r = 0; r < T; r++)
        if (sm[r * exec_stride] != 0 && fl[r * exec_stride] != 0) inv_in[n_match++] = fl[r * exec_stride];
    if (n_match) zk_fp_inv(inv_out, inv_in, n_match);          /* nonzero: cannot fail */

    /* The words of a row written, as prefetch offsets: each run of adjacent
     * columns from its first word every 16 words and its last, so every
     * line it touches holds one (a row of the lane is ~1.6 KiB, a few lines
     * of it written here: the row AHEAD rows on is asked for, for writing,
     * while this one is filled; a prefetch changes no value). */
    int32_t sorted[L_COUNT], pf[2 * L_COUNT];
    size_t n_pf = 0;
    for (size_t i = 0; i < L_COUNT; i++) {
        size_t j = i;
        while (j > 0 && sorted[j - 1] > pos[i]) sorted[j] = sorted[j - 1], j--;
        sorted[j] = pos[i];
    }
    for (size_t i = 0; i < L_COUNT; i++) {
        int run_start = i == 0 || sorted[i] != sorted[i - 1] + 1;
        int run_end = i + 1 == L_COUNT || sorted[i + 1] != sorted[i] + 1;
        if (run_start || run_end || sorted[i] >= pf[n_pf - 1] + 16) pf[n_pf++] = sorted[i];
    }
    enum { AHEAD = 8 };

    uint32_t blind[BLIND], typ[TYPES];
    zk_fp_encode(blind, blinding, BLIND);                      /* canonical: cannot fail */
    size_t k = 0;
    for (size_t r = 0; r < T; r++) {
        uint32_t *row = out + r * stride, *xr = x + r * (SALTS + DATA);
        if (r + AHEAD < T)
            for (size_t i = 0; i < n_pf; i++) __builtin_prefetch(row + AHEAD * stride + pf[i], 1, 3);
        memcpy(xr, salts + r * SALTS, SALTS * sizeof *xr);
        memcpy(xr + SALTS, data + r * DATA, DATA * sizeof *xr);
        zk_fp_encode(xr, xr, SALTS + DATA);
        for (int j = 0; j < TYPES; j++) typ[j] = bb_encode(types[r * TYPES + j]);
        row[pos[L_FLI]] = sm[r * exec_stride] != 0 && fl[r * exec_stride] != 0 ? inv_out[k++] : 0;
        for (int j = 0; j < TYPES; j++) row[pos[L_LO + j]] = typ[j];
        for (int j = 0; j < SALTS + DATA; j++) row[pos[L_S0 + j]] = xr[j];
        for (int j = 0; j < BLIND; j++) row[pos[L_BM + j]] = r == 0 ? blind[j] : 0;
    }
    free(inv_in);
    free(inv_out);
    return -1;
}

void zk_lane_leaves(uint32_t *leaves, const uint32_t *registers, size_t stride, const uint32_t *x, size_t rows) {
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < LEAF; j++)
            leaves[r * LEAF + j] = bb_decode(bb_add(registers[r * stride + j], x[r * (SALTS + DATA) + j]));
}
