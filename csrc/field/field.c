/*
 * field.c — BabyBear array kernels: one function per operation, each with a
 * scalar body here and vector bodies for AVX2 and AVX-512 compiled from one
 * source (field_vec.inc), dispatched on zk_active_isa.  Arithmetic and its
 * correctness argument live in bb_field.h.
 */
#include <stdlib.h>

#include "bb_field.h"
#include "zk_field.h"

/* The elementwise kernels, as an X-macro: X(name, scalar op on element i,
 * vector op on va = lanes i.. of a, extra parameter).  Each becomes
 * name_scalar here and name_avx2 / name_avx512 in field_vec.inc, so the
 * operation is written once for all paths. */
#define FIELD_ELEMENTWISE(X)                                                                      \
    X(fp_add, bb_add(a[i], b[i]), VEC(bb_add)(va, VEC_LOAD(b + i)), const uint32_t *b)            \
    X(fp_sub, bb_sub(a[i], b[i]), VEC(bb_sub)(va, VEC_LOAD(b + i)), const uint32_t *b)            \
    X(fp_mul, bb_mul(a[i], b[i]), VEC(bb_mul)(va, VEC_LOAD(b + i)), const uint32_t *b)            \
    X(fp_mul_scalar, bb_mul(a[i], s), VEC(bb_mul)(va, VEC_SET1(s)), uint32_t s)                   \
    X(fp_mul_scalar_add, bb_add(bb_mul(a[i], s), b[i]), VEC(bb_add)(VEC(bb_mul)(va, VEC_SET1(s)), \
      VEC_LOAD(b + i)), uint32_t s, const uint32_t *b)                                            \
    /* decode(x) = x / R: a Montgomery product with 1 (the canonical 1). */                       \
    X(fp_decode, bb_decode(a[i]), VEC(bb_mul)(va, VEC_SET1(1)), int unused)

#define SCALAR_BODY(name, SCALAR_OP, VECTOR_OP, ...)                                              \
    static void name##_scalar(uint32_t *out, const uint32_t *a, __VA_ARGS__, size_t n) {          \
        for (size_t i = 0; i < n; i++) out[i] = SCALAR_OP;                                        \
    }
FIELD_ELEMENTWISE(SCALAR_BODY)
#undef SCALAR_BODY

/* -------------------------------------------------------- batch inverse -- */

/* Montgomery's trick in L independent lanes: lane j owns elements j, j+L,
 * j+2L, ...  A single chain is bound by multiply latency (one product waits
 * for the last); L chains in one vector give L products per multiply.
 *
 *   forward:  out[i] = prod of a[k] for k < i in lane (exclusive prefix)
 *   invert:   the L lane totals, by the trick again, then one bb_inv
 *   backward: out[i] = out[i] * inv_total;  inv_total *= a[i]
 *
 * The tail after the last full group of L is handled as extra lanes of
 * length one, folded into the same total inversion. */

/* Invert `m` nonzero scalars in place with one exponentiation. */
static void inv_small(uint32_t *x, size_t m) {
    uint32_t prefix[64], acc = BB_ONE;
    for (size_t j = 0; j < m; j++) prefix[j] = acc, acc = bb_mul(acc, x[j]);
    uint32_t inv = bb_inv(acc);
    for (size_t j = m; j-- > 0;) {
        uint32_t xj = x[j];
        x[j] = bb_mul(prefix[j], inv);
        inv = bb_mul(inv, xj);
    }
}

static void inv_lanes_scalar(uint32_t *out, const uint32_t *a, size_t groups, uint32_t *tot) {
    enum { L = 8 };
    for (size_t j = 0; j < L; j++) tot[j] = BB_ONE;
    for (size_t g = 0; g < groups; g++)
        for (size_t j = 0; j < L; j++) out[g * L + j] = tot[j], tot[j] = bb_mul(tot[j], a[g * L + j]);
    inv_small(tot, L);
    for (size_t g = groups; g-- > 0;)
        for (size_t j = 0; j < L; j++) {
            out[g * L + j] = bb_mul(out[g * L + j], tot[j]);
            tot[j] = bb_mul(tot[j], a[g * L + j]);
        }
}

/* -------------------------------------------------------- sum_rows_add --
 * outs[s][c] += sum_r ws[s][r] m[r stride + c]: each column's products
 * summed in 64 bits, kept below p 2^32 by a fold (every product on the
 * scalar path, every second row on the vector paths: x < p 2^32 and two
 * products < 2p^2 stay below 2p 2^32 < 2^64), Montgomery-reduced once:
 * (w R)(x R) summed, divided by R, is (sum w x) R, the value a multiply
 * and an add a row give, exactly.  Every path returns the canonical sum,
 * so all are bit-identical. */
static void fp_sum_rows_add_scalar(uint32_t *const *outs, const uint32_t *const *ws, size_t sets,
                                   const uint32_t *m, size_t rows, size_t cols, size_t stride) {
    const uint64_t PH = (uint64_t)BB_P << 32;
    for (size_t c = 0; c < cols; c++)
        for (size_t s = 0; s < sets; s++) {
            uint64_t acc = 0;
            for (size_t r = 0; r < rows; r++) {
                acc += (uint64_t)m[r * stride + c] * ws[s][r];  /* < p 2^32 + p^2 < 2p 2^32 */
                if (acc >= PH) acc -= PH;
            }
            outs[s][c] = bb_add(outs[s][c], bb_reduce(acc));
        }
}

/* ------------------------------------------------------- vector bodies -- */

/* fp_add_avx2 ... inv_lanes_avx512 */
#define VEC_BODY "field/field_vec.inc"
#include "common/vec_widths.h"

/* ---------------------------------------------------------- public API -- */

void zk_fp_add(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n) {
    ZK_DISPATCH(zk_active_isa, fp_add, out, a, b, n);
}
void zk_fp_sub(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n) {
    ZK_DISPATCH(zk_active_isa, fp_sub, out, a, b, n);
}
void zk_fp_mul(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n) {
    ZK_DISPATCH(zk_active_isa, fp_mul, out, a, b, n);
}
void zk_fp_mul_scalar(uint32_t *out, const uint32_t *a, uint32_t s, size_t n) {
    ZK_DISPATCH(zk_active_isa, fp_mul_scalar, out, a, s, n);
}
void zk_fp_mul_scalar_add(uint32_t *out, const uint32_t *a, uint32_t s, const uint32_t *b, size_t n) {
    ZK_DISPATCH(zk_active_isa, fp_mul_scalar_add, out, a, s, b, n);
}
void zk_fp_sum_rows_add(uint32_t *const *outs, const uint32_t *const *ws, size_t sets, const uint32_t *m,
                        size_t rows, size_t cols, size_t stride) {
    /* the vector paths hold at most ZK_FP_MAX_WEIGHT_SETS sets' sums in
     * registers: more sets take more passes, so every path does them all */
    for (size_t s = 0; s < sets; s += ZK_FP_MAX_WEIGHT_SETS) {
        size_t part = sets - s < ZK_FP_MAX_WEIGHT_SETS ? sets - s : ZK_FP_MAX_WEIGHT_SETS;
        ZK_DISPATCH(zk_active_isa, fp_sum_rows_add, outs + s, ws + s, part, m, rows, cols, stride);
    }
}
void zk_fp_decode(uint32_t *out, const uint32_t *in, size_t n) {
    ZK_DISPATCH(zk_active_isa, fp_decode, out, in, 0, n);
}

void zk_fp_neg(uint32_t *out, const uint32_t *a, size_t n) {
    /* 0 - a: the vector sub's min trick maps 0 to 0 and a to p - a. */
    static const uint32_t zeros[64];
    for (size_t i = 0; i < n; i += 64) {
        size_t m = n - i < 64 ? n - i : 64;
        zk_fp_sub(out + i, zeros, a + i, m);
    }
}

int64_t zk_fp_encode(uint32_t *out, const uint32_t *in, size_t n) {
    /* Validate first, then encode as a product with R^2: (x)(R^2)/R = xR. */
    int64_t bad = bb_first_unreduced(in, n);
    if (bad >= 0) return bad;
    zk_fp_mul_scalar(out, in, BB_R2, n);
    return -1;
}

/* Branch-free compaction: every word's reduction is written at out[k] and
 * k advances only past an accepted one, so a rejected word (1 in 16) costs
 * no mispredicted branch and the next accepted word overwrites it.  k <= i
 * throughout, so out may be words. */
static size_t uniform_from_words_scalar(uint32_t *out, const uint32_t *words, size_t n, size_t k) {
    for (size_t i = 0; i < n; i++) {
        uint32_t w = words[i];
        out[k] = w >= BB_P ? w - BB_P : w;
        k += w < 2 * BB_P; /* 2p = 0xf0000002 < 2^32 */
    }
    return k;
}

#if ZK_X86
/* Sixteen words a step: vpcmpud against 2p gives the accepted lanes,
 * vpminud(w, w - p) the reduction (w - p wraps above w when w < p),
 * vpcompressd packs the accepted ones into the low lanes of a register,
 * stored whole at out[k] (its unused lanes are overwritten by the next
 * store), k += popcnt.  k <= i, so the 16-word store ends at or before
 * word i + 16, already loaded: out may be words.  The rest scalar. */
ZK_AVX512 static size_t uniform_from_words_avx512(uint32_t *out, const uint32_t *words, size_t n) {
    const __m512i p = _mm512_set1_epi32((int)BB_P), two_p = _mm512_set1_epi32((int)(2 * BB_P));
    size_t k = 0, i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_loadu_si512((const void *)(words + i));
        __mmask16 keep = _mm512_cmplt_epu32_mask(w, two_p);
        __m512i r = _mm512_min_epu32(w, _mm512_sub_epi32(w, p));
        _mm512_storeu_si512((void *)(out + k), _mm512_maskz_compress_epi32(keep, r));
        k += (size_t)__builtin_popcount(keep);
    }
    return uniform_from_words_scalar(out, words + i, n - i, k);
}
#endif

size_t zk_fp_uniform_from_words(uint32_t *out, const uint32_t *words, size_t n) {
#if ZK_X86
    if (zk_active_isa == ZK_ISA_AVX512) return uniform_from_words_avx512(out, words, n);
#endif
    return uniform_from_words_scalar(out, words, n, 0);
}

/* ------------------------------------------------------------------ pow -- */

/* Square-and-multiply over blocks that stay in L1: the same exponent bits for
 * every element, so each step is one array multiply. */
void zk_fp_pow(uint32_t *out, const uint32_t *a, uint64_t e, size_t n) {
    enum { BLOCK = 1024 };
    uint32_t base[BLOCK];
    for (size_t i = 0; i < n; i += BLOCK) {
        size_t m = n - i < BLOCK ? n - i : BLOCK;
        uint32_t *acc = out + i;
        for (size_t j = 0; j < m; j++) base[j] = a[i + j], acc[j] = BB_ONE; /* read first: out may alias a */
        for (uint64_t k = e; k; k >>= 1) {
            if (k & 1) zk_fp_mul(acc, acc, base, m);
            if (k >> 1) zk_fp_mul(base, base, base, m);
        }
    }
}

int64_t zk_fp_inv(uint32_t *out, const uint32_t *a, size_t n) {
    uint32_t anyzero = 0;
    for (size_t i = 0; i < n; i++) anyzero |= a[i] == 0;
    if (anyzero)
        for (size_t i = 0; i < n; i++)
            if (a[i] == 0) return (int64_t)i;

    int isa = zk_active_isa; /* the lane count and the body must agree */
    size_t L = isa == ZK_ISA_AVX512 ? 16 : 8;
    size_t groups = n / L, done = groups * L;
    uint32_t tot[16];
    if (groups) ZK_DISPATCH(isa, inv_lanes, out, a, groups, tot);
    /* tail: fewer than L elements */
    for (size_t i = done; i < n; i++) out[i] = a[i];
    if (n > done) inv_small(out + done, n - done);
    return -1;
}
