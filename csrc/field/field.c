/*
 * field.c — BabyBear array kernels: one function per operation, each with a
 * scalar, an AVX2 and an AVX-512 body, dispatched on zk_active_isa.
 * Arithmetic and its correctness argument live in bb_field.h.
 */
#include <stdlib.h>

#include "bb_field.h"
#include "zk_field.h"

/* An elementwise kernel in three bodies.  Vector bodies use unaligned loads
 * (numpy gives no 32/64-byte alignment guarantee; on current cores an aligned
 * address costs the same through vmovdqu) and finish the tail with the scalar
 * operation, so every path gives bit-identical results. */
#define ZK_ELEMENTWISE(name, SCALAR_OP, AVX2_OP, AVX512_OP, ...)                       \
    static void name##_scalar(uint32_t *out, const uint32_t *a, __VA_ARGS__, size_t n) {    \
        for (size_t i = 0; i < n; i++) out[i] = SCALAR_OP;                                \
    }                                                                                    \
    ZK_AVX2 static void name##_avx2(uint32_t *out, const uint32_t *a, __VA_ARGS__, size_t n) { \
        size_t i = 0;                                                                    \
        for (; i + 8 <= n; i += 8) {                                                     \
            __m256i va = _mm256_loadu_si256((const __m256i *)(a + i));                  \
            _mm256_storeu_si256((__m256i *)(out + i), AVX2_OP);                          \
        }                                                                                \
        for (; i < n; i++) out[i] = SCALAR_OP;                                           \
    }                                                                                    \
    ZK_AVX512 static void name##_avx512(uint32_t *out, const uint32_t *a, __VA_ARGS__, size_t n) { \
        size_t i = 0;                                                                    \
        for (; i + 16 <= n; i += 16) {                                                   \
            __m512i va = _mm512_loadu_si512((const void *)(a + i));                     \
            _mm512_storeu_si512((void *)(out + i), AVX512_OP);                           \
        }                                                                                \
        for (; i < n; i++) out[i] = SCALAR_OP;                                           \
    }

#define ZK_DISPATCH(name, ...)                                                           \
    switch (zk_active_isa) {                                                             \
    case ZK_ISA_AVX512: name##_avx512(__VA_ARGS__); return;                              \
    case ZK_ISA_AVX2: name##_avx2(__VA_ARGS__); return;                                  \
    default: name##_scalar(__VA_ARGS__); return;                                         \
    }

#define LOAD2(p) _mm256_loadu_si256((const __m256i *)((p) + i))
#define LOAD5(p) _mm512_loadu_si512((const void *)((p) + i))

ZK_ELEMENTWISE(fp_add, bb_add(a[i], b[i]), bb_add_avx2(va, LOAD2(b)), bb_add_avx512(va, LOAD5(b)),
               const uint32_t *b)
ZK_ELEMENTWISE(fp_sub, bb_sub(a[i], b[i]), bb_sub_avx2(va, LOAD2(b)), bb_sub_avx512(va, LOAD5(b)),
               const uint32_t *b)
ZK_ELEMENTWISE(fp_mul, bb_mul(a[i], b[i]), bb_mul_avx2(va, LOAD2(b)), bb_mul_avx512(va, LOAD5(b)),
               const uint32_t *b)
ZK_ELEMENTWISE(fp_mul_scalar, bb_mul(a[i], s), bb_mul_avx2(va, _mm256_set1_epi32((int)s)),
               bb_mul_avx512(va, _mm512_set1_epi32((int)s)), uint32_t s)
/* decode(x) = x / R: a Montgomery product with 1 (the canonical 1). */
ZK_ELEMENTWISE(fp_decode, bb_decode(a[i]), bb_mul_avx2(va, _mm256_set1_epi32(1)),
               bb_mul_avx512(va, _mm512_set1_epi32(1)), int unused)

void zk_fp_add(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n) { ZK_DISPATCH(fp_add, out, a, b, n) }
void zk_fp_sub(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n) { ZK_DISPATCH(fp_sub, out, a, b, n) }
void zk_fp_mul(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n) { ZK_DISPATCH(fp_mul, out, a, b, n) }
void zk_fp_mul_scalar(uint32_t *out, const uint32_t *a, uint32_t s, size_t n) {
    ZK_DISPATCH(fp_mul_scalar, out, a, s, n)
}
void zk_fp_decode(uint32_t *out, const uint32_t *in, size_t n) { ZK_DISPATCH(fp_decode, out, in, 0, n) }

void zk_fp_neg(uint32_t *out, const uint32_t *a, size_t n) {
    /* 0 - a: the vector sub's min trick maps 0 to 0 and a to p - a. */
    static const uint32_t zeros[64];
    for (size_t i = 0; i < n; i += 64) {
        size_t m = n - i < 64 ? n - i : 64;
        zk_fp_sub(out + i, zeros, a + i, m);
    }
}

int64_t zk_fp_encode(uint32_t *out, const uint32_t *in, size_t n) {
    /* Validate first (a branch-free OR the compiler vectorises), then encode
     * as a product with R^2: (x)(R^2)/R = xR. */
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) bad |= in[i] >= BB_P;
    if (bad)
        for (size_t i = 0; i < n; i++)
            if (in[i] >= BB_P) return (int64_t)i;
    zk_fp_mul_scalar(out, in, BB_R2, n);
    return -1;
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

ZK_AVX2 static void inv_lanes_avx2(uint32_t *out, const uint32_t *a, size_t groups, uint32_t *tot) {
    __m256i acc = _mm256_set1_epi32((int)BB_ONE);
    for (size_t g = 0; g < groups; g++) {
        _mm256_storeu_si256((__m256i *)(out + 8 * g), acc);
        acc = bb_mul_avx2(acc, _mm256_loadu_si256((const __m256i *)(a + 8 * g)));
    }
    _mm256_storeu_si256((__m256i *)tot, acc);
    inv_small(tot, 8);
    acc = _mm256_loadu_si256((const __m256i *)tot);
    for (size_t g = groups; g-- > 0;) {
        __m256i pre = _mm256_loadu_si256((const __m256i *)(out + 8 * g));
        _mm256_storeu_si256((__m256i *)(out + 8 * g), bb_mul_avx2(pre, acc));
        acc = bb_mul_avx2(acc, _mm256_loadu_si256((const __m256i *)(a + 8 * g)));
    }
}

ZK_AVX512 static void inv_lanes_avx512(uint32_t *out, const uint32_t *a, size_t groups, uint32_t *tot) {
    __m512i acc = _mm512_set1_epi32((int)BB_ONE);
    for (size_t g = 0; g < groups; g++) {
        _mm512_storeu_si512((void *)(out + 16 * g), acc);
        acc = bb_mul_avx512(acc, _mm512_loadu_si512((const void *)(a + 16 * g)));
    }
    _mm512_storeu_si512((void *)tot, acc);
    inv_small(tot, 16);
    acc = _mm512_loadu_si512((const void *)tot);
    for (size_t g = groups; g-- > 0;) {
        __m512i pre = _mm512_loadu_si512((const void *)(out + 16 * g));
        _mm512_storeu_si512((void *)(out + 16 * g), bb_mul_avx512(pre, acc));
        acc = bb_mul_avx512(acc, _mm512_loadu_si512((const void *)(a + 16 * g)));
    }
}

int64_t zk_fp_inv(uint32_t *out, const uint32_t *a, size_t n) {
    uint32_t anyzero = 0;
    for (size_t i = 0; i < n; i++) anyzero |= a[i] == 0;
    if (anyzero)
        for (size_t i = 0; i < n; i++)
            if (a[i] == 0) return (int64_t)i;

    size_t L = zk_active_isa == ZK_ISA_AVX512 ? 16 : zk_active_isa == ZK_ISA_AVX2 ? 8 : 8;
    size_t groups = n / L, done = groups * L;
    uint32_t tot[16];
    if (groups) {
        if (zk_active_isa == ZK_ISA_AVX512)
            inv_lanes_avx512(out, a, groups, tot);
        else if (zk_active_isa == ZK_ISA_AVX2)
            inv_lanes_avx2(out, a, groups, tot);
        else
            inv_lanes_scalar(out, a, groups, tot);
    }
    /* tail: fewer than L elements */
    for (size_t i = done; i < n; i++) out[i] = a[i];
    if (n > done) inv_small(out + done, n - done);
    return -1;
}
