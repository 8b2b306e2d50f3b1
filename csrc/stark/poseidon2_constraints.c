/*
 * poseidon2_constraints.c — the Poseidon2 block's constraints on the
 * quotient domain (zk_poseidon2_constraints.h): a block of rows of the
 * block's 290 columns gathered into scratch (column_window.c, as the block
 * evaluator gathers its inputs), then the rounds on each group of rows, one
 * row per vector lane (poseidon2_constraints_rounds.inc), the weighted sum
 * added into the accumulator.
 *
 * All three paths compute every constraint's value as the reduced field
 * element and the sum exactly (lazy 64-bit sums, reduced once), so they
 * give the words the block evaluator gives for the compiled expressions:
 * the field's sum does not depend on the order of its terms.
 */
#include <stdlib.h>
#include <string.h>

#include "field/bb_field.h"
#include "hash/zk_poseidon2.h"
#include "column_window.h"
#include "zk_poseidon2_constraints.h"

enum { K = ZK_POSEIDON2_CONSTRAINT_COLUMNS, REGS = ZK_POSEIDON2_AIR_COLUMNS, BLOCK = 32 };
_Static_assert(K == 16 + REGS, "the inputs, then the registers");
_Static_assert(BLOCK % ZK_WINDOW_LINE_WORDS == 0 && BLOCK % 16 == 0,
               "a block is whole lines and whole groups of every path");

/* The instance's constants in Montgomery form (filled at load), under the
 * names hash/poseidon2_rounds.inc reads. */
static uint32_t p2_full_rc_m[8][16], p2_partial_rc_m[13], p2_diag_m[16];

/* Share k (of 21: one after each round) of the lines pf[0 .. n), by
 * prefetcht1: spread through the arithmetic (the driver, below, says why). */
ZK_INLINE void p2c_prefetch(const uintptr_t *pf, size_t n, int k) {
    for (size_t i = n * (size_t)k / 21; i < n * (size_t)(k + 1) / 21; i++)
        __builtin_prefetch((const void *)pf[i], 0, 2);
}

/* ------------------------------------------------------------- scalar -- */

/* The weighted sum of one row, per component: s[c] < p 2^32, each add of
 * two products (< p^2 each) folded back below it (as the vector paths). */
typedef struct {
    uint64_t s[4];
} p2c_acc_scalar;

static inline void p2c_acc2_scalar(p2c_acc_scalar *acc, uint32_t a, uint32_t b, const uint32_t *w) {
    const uint64_t ph = (uint64_t)BB_P << 32;
    for (int c = 0; c < 4; c++) {
        uint64_t x = acc->s[c] + (uint64_t)a * w[c] + (uint64_t)b * w[4 + c];
        acc->s[c] = x >= ph ? x - ph : x;
    }
}

#define P2_T uint32_t
#define P2_ADD(a, b) bb_add(a, b)
#define P2_SUB(a, b) bb_sub(a, b)
#define P2_MUL(a, b) bb_mul(a, b)
#define P2_CONST(c) (c)
#define P2_LOAD(p) (*(p))
#define P2_ATTR
#define P2_FN(name) name##_scalar
#define P2C_ACC_T p2c_acc_scalar
#define P2C_ACC2(acc, a, b, w) p2c_acc2_scalar(acc, a, b, w)
#include "poseidon2_constraints_rounds.inc"
#undef P2_T
#undef P2_ADD
#undef P2_SUB
#undef P2_MUL
#undef P2_CONST
#undef P2_LOAD
#undef P2_ATTR
#undef P2_FN
#undef P2C_ACC_T
#undef P2C_ACC2

/* One row (a group of one lane): out[c] its sum's component c. */
static void p2c_group_scalar(const uint32_t *t, size_t pitch, const uint32_t *w, uint32_t *out,
                             const uintptr_t *pf, size_t n_pf) {
    p2c_acc_scalar acc = {{0, 0, 0, 0}};
    p2c_rows_scalar(t, pitch, w, &acc, pf, n_pf);
    for (int c = 0; c < 4; c++) out[c] = bb_reduce(acc.s[c]);
}

/* ------------------------------------------------------- AVX2, AVX-512 -- */

/* p2c_group_avx2 (8 rows), p2c_group_avx512 (16 rows) */
#define VEC_BODY "stark/poseidon2_constraints_vec.inc"
#include "common/vec_widths.h"

/* ------------------------------------------------------------- driver -- */

static size_t group_lanes(int isa) {
    return isa == ZK_ISA_AVX512 ? 16 : isa == ZK_ISA_AVX2 ? 8 : 1;
}

/* Blocks of BLOCK rows: the block's window of the K columns gathered into
 * scratch (K x BLOCK words, 37 KiB: L1), its groups of rows evaluated from
 * there.  A short last block's spare lanes compute on stale scratch words
 * (field elements: zero at first, then an earlier block's), and are not
 * added.
 *
 * The rows are a row-major matrix's, ~18 lines of each for the block's
 * columns, and they come from memory: with the gather waiting on each line
 * in turn the kernel took a quarter longer.  So while a block's groups
 * run, the next block's lines are prefetched (prefetcht1: into L2), each
 * group a share of its rows, and within a group a share after each round
 * (p2c_prefetch): ~300 prefetches at once would fill the line fill buffers
 * and stall the arithmetic behind them.  A prefetch is a hint: it never
 * faults and changes no value. */
int zk_poseidon2_constraints(uint32_t **cols, const size_t *strides, const uint32_t *weights, uint32_t *acc,
                             size_t rows) {
    int isa = zk_active_isa;     /* one path for the whole run */
    size_t lanes = group_lanes(isa);
    uint32_t which[K];
    uint8_t run[K];
    zk_window_span spans[K];
    size_t n_spans = 0, span_lines = 0;
    for (size_t k = 0; k < K; k++) {
        which[k] = (uint32_t)k;
        n_spans = zk_window_add_span(spans, n_spans, cols[k], 1, strides[k]);
    }
    /* a span of b bytes touches at most (b + 126) / 64 lines, however aligned */
    for (size_t i = 0; i < n_spans; i++) span_lines += (spans[i].hi - spans[i].lo + 126) / 64;
    zk_window_plan(run, cols, strides, which, K, zk_window_lanes(isa));
    /* a group's prefetches: the lines of `per` rows */
    const size_t per = (BLOCK + BLOCK / lanes - 1) / (BLOCK / lanes);
    uint32_t *scratch = 0;
    uintptr_t *pf = malloc((per * span_lines + 1) * sizeof *pf);
    if (!pf || posix_memalign((void **)&scratch, 4 * ZK_WINDOW_LINE_WORDS, K * BLOCK * sizeof *scratch)) {
        free(pf);
        return -2;
    }
    memset(scratch, 0, K * BLOCK * sizeof *scratch);
    uint32_t out[4 * 16];
    for (size_t r0 = 0; r0 < rows; r0 += BLOCK) {
        size_t n = rows - r0 < BLOCK ? rows - r0 : BLOCK;
        zk_window_gather(scratch, BLOCK, cols, strides, which, run, K, r0, n, rows, isa);
        size_t next = r0 + BLOCK, pf_end = next + BLOCK < rows ? next + BLOCK : rows;
        for (size_t g = 0; g < n; g += lanes) {
            size_t n_pf = 0;
            for (size_t r = next + g / lanes * per; r < next + (g / lanes + 1) * per && r < pf_end; r++)
                for (size_t i = 0; i < n_spans; i++) {
                    uintptr_t end = spans[i].hi + r * spans[i].stride;
                    for (uintptr_t q = (spans[i].lo + r * spans[i].stride) & ~(uintptr_t)63; q < end; q += 64)
                        pf[n_pf++] = q;
                }
            ZK_DISPATCH(isa, p2c_group, scratch + g, BLOCK, weights, out, pf, n_pf);
            for (size_t l = 0; l < lanes && g + l < n; l++) {
                uint32_t *a = acc + 4 * (r0 + g + l);
                for (int c = 0; c < 4; c++) a[c] = bb_add(a[c], out[c * lanes + l]);
            }
        }
    }
    free(scratch), free(pf);
    return 0;
}

__attribute__((constructor)) static void poseidon2_constraints_load(void) {
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < 16; i++) p2_full_rc_m[r][i] = bb_encode(zk_poseidon2_full_rc[r][i]);
    for (int r = 0; r < 13; r++) p2_partial_rc_m[r] = bb_encode(zk_poseidon2_partial_rc[r]);
    for (int i = 0; i < 16; i++) p2_diag_m[i] = bb_encode(zk_poseidon2_internal_diag[i]);
}
