/*
 * ext4.c — quartic extension kernels, F_p[X]/(X^4 - W), W = 11.
 *
 * Products are accumulated lazily: a sum of four base products is below
 * 4p^2 < 2^64, so each output coefficient costs one wide Montgomery
 * reduction instead of four.  W is folded into the multiplicand first
 * (b' = W b, a plain integer scaling that commutes with Montgomery form), so
 * every coefficient is a sum of exactly four products:
 *
 *   c0 = a0 b0  + a1 b3' + a2 b2' + a3 b1'
 *   c1 = a0 b1  + a1 b0  + a2 b3' + a3 b2'
 *   c2 = a0 b2  + a1 b1  + a2 b0  + a3 b3'
 *   c3 = a0 b3  + a1 b2  + a2 b1  + a3 b0
 *
 * Each kernel has a scalar body and vector bodies for AVX2 and AVX-512,
 * compiled from one source (ext4_vec.inc) and dispatched on zk_active_isa;
 * the vector layouts and their correctness argument are below.
 */
#include <stdlib.h>

#include "bb_field.h"
#include "zk_ext4.h"
#include "zk_field.h"

#define W ZK_EXT4_W

/* ======================================================= scalar bodies == */


static inline void ext4_mul1(uint32_t c[4], const uint32_t a[4], const uint32_t b[4]) {
    uint64_t b1w = bb_mul_small(b[1], W), b2w = bb_mul_small(b[2], W), b3w = bb_mul_small(b[3], W);
    uint64_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    uint32_t c0 = bb_reduce_wide(a0 * b[0] + a1 * b3w + a2 * b2w + a3 * b1w);
    uint32_t c1 = bb_reduce_wide(a0 * b[1] + a1 * b[0] + a2 * b3w + a3 * b2w);
    uint32_t c2 = bb_reduce_wide(a0 * b[2] + a1 * b[1] + a2 * b[0] + a3 * b3w);
    uint32_t c3 = bb_reduce_wide(a0 * b[3] + a1 * b[2] + a2 * b[1] + a3 * b[0]);
    c[0] = c0, c[1] = c1, c[2] = c2, c[3] = c3; /* written last: c may alias a or b */
}

static void mul_scalar(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) ext4_mul1(out + 4 * i, a + 4 * i, b + 4 * i);
}

static void mul_s_scalar(uint32_t *out, const uint32_t *a, const uint32_t *s, size_t n) {
    uint32_t sv[4] = {s[0], s[1], s[2], s[3]}; /* copied: out may alias s */
    for (size_t i = 0; i < n; i++) ext4_mul1(out + 4 * i, a + 4 * i, sv);
}

static void mul_base_scalar(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n) {
    /* a is 4n words and b is n words: four word products share one b. */
    for (size_t i = 0; i < n; i++) {
        uint32_t bi = b[i]; /* read first: out may alias b */
        for (int k = 0; k < 4; k++) out[4 * i + k] = bb_mul(a[4 * i + k], bi);
    }
}

static void scale_base_scalar(uint32_t *out, const uint32_t *a, const uint32_t *s, size_t n) {
    uint32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
    for (size_t i = 0; i < n; i++) {
        uint32_t x = a[i];
        out[4 * i] = bb_mul(x, s0), out[4 * i + 1] = bb_mul(x, s1);
        out[4 * i + 2] = bb_mul(x, s2), out[4 * i + 3] = bb_mul(x, s3);
    }
}

/* Four products per wide reduction: columns go in groups of four, each group
 * reduced once and added mod p to the running coefficient.  `nout` (1 or 2)
 * combinations of the same row share its loads. */
static inline __attribute__((always_inline)) void
combine_scalar_body(uint32_t *out_a, uint32_t *out_b, const uint32_t *m, const uint32_t *ca,
                    const uint32_t *cb, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++) {
        const uint32_t *row = m + r * cols;
        uint32_t acc[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
        for (size_t c0 = 0; c0 < cols; c0 += 4) {
            size_t c1 = c0 + 4 < cols ? c0 + 4 : cols;
            for (int k = 0; k < 4; k++) {
                uint64_t sa = 0, sb = 0;
                for (size_t c = c0; c < c1; c++) {
                    sa += (uint64_t)row[c] * ca[4 * c + k];
                    if (cb) sb += (uint64_t)row[c] * cb[4 * c + k];
                }
                acc[0][k] = bb_add(acc[0][k], bb_reduce_wide(sa));
                acc[1][k] = bb_add(acc[1][k], bb_reduce_wide(sb));
            }
        }
        for (int k = 0; k < 4; k++) out_a[4 * r + k] = acc[0][k];
        if (cb)
            for (int k = 0; k < 4; k++) out_b[4 * r + k] = acc[1][k];
    }
}

static void combine_scalar(uint32_t *out_a, uint32_t *out_b, const uint32_t *m, const uint32_t *ca,
                           const uint32_t *cb, size_t rows, size_t cols) {
    if (cb)
        combine_scalar_body(out_a, out_b, m, ca, cb, rows, cols);
    else
        combine_scalar_body(out_a, 0, m, ca, 0, rows, cols);
}

#if ZK_X86
/* ========================================================= vector bodies ==
 *
 * Elementwise kernels work on the interleaved layout directly: an element is
 * one 128-bit lane (a0 a1 a2 a3), so a ymm holds 2 elements and a zmm 4.
 *
 * Extension product c = a b as a 4x4 matrix-vector product in each 128-bit
 * lane: c = a0 B0 + a1 B1 + a2 B2 + a3 B3 where Bj is column j of the
 * multiplication-by-b matrix:
 *   B0 = (b0,  b1,  b2,  b3)        B1 = (Wb3, b0,  b1,  b2)
 *   B2 = (Wb2, Wb3, b0,  b1)        B3 = (Wb1, Wb2, Wb3, b0)
 * With b' = W b (all four words), Bj is the 128-bit lane of the byte
 * concatenation b:b' shifted right by 4(4 - j) bytes: one vpalignr each.
 * aj broadcast in its lane is one vpshufd.  b' = 11 b = 8b + 2b + b by five
 * modular additions (no multiplier; inputs are canonical, < p).
 *
 * Products: vpmuludq multiplies the even 32-bit lanes into 64-bit lanes.  The
 * broadcast aj has equal even and odd words, so for the odd lanes only Bj
 * needs vmovshdup.  Each 64-bit lane sums four products (< 4p^2 < 2p * 2^32
 * < 2^64, the lazy-reduction bound), then bb_reduce_wide_* folds once and
 * Montgomery-reduces: 8 (AVX2 2-element) / 8 (AVX-512 4-element) product
 * vpmuludq plus 4 for the reduction per vector, against 20 scalar multiplies
 * per element.  Results are the unique representative in [0, p) of the same
 * value the scalar body computes, so every path is bit-identical. */

/* ------------------------------------------------------ combine_rows --
 *
 * out[r] = sum_c m[r][c] coeffs[c], vectorised across the columns of a row.
 * The coefficients are transposed once per call into four component arrays
 * K_k[c] = coeffs[c][k] (zero padded), so a chunk of 8 (AVX2) / 16 (AVX-512)
 * consecutive row values x multiplies K_k[c..] lane by lane:
 *   even columns: vpmuludq(x, K_k + c)            (reads even lanes)
 *   odd columns:  vpmuludq(x >> 64-lane 32, K_k + c + 1)
 * (the load one word further on puts the odd columns' coefficients in the
 * even lanes: no shuffle).  The two products (< 2p^2) are added to a 64-bit
 * accumulator kept below p 2^32: acc + 2p^2 < 2p 2^32 < 2^64 (2p < 2^32),
 * and one bb_fold64 (vpsubq, vpminud) brings it back under p 2^32.  So a row
 * of any length costs 2 vpmuludq, 2 vpaddq, vpsubq, vpminud per component per
 * chunk and no Montgomery reduction until the row's end.
 *
 * Tails: the last chunk's values come from a masked load (vmovdqu32 {k}{z} /
 * vpmaskmovd), so nothing past the matrix is read, and the padded K_k words
 * are 0, so the extra lanes add 0.
 *
 * End of row: four accumulators (one per component) of 8 / 4 lanes are summed
 * horizontally by a transpose-and-add tree (vpunpck[lh]qdq, vshufi64x2 /
 * vperm2i128); every add of two values < p 2^32 is < 2p 2^32 and is folded
 * again.  Two rows (or, for combine_rows2, two coefficient sets on one row)
 * give one vector of eight output words, reduced by bb_reduce64 (x / R, i.e.
 * the Montgomery product); on AVX-512 they also share the tree's last level
 * and that one reduction (comb_words_*).
 * The value is sum_c m[r][c] K[c] / R mod p, the same as the scalar body's,
 * and both give its representative in [0, p): bit-identical. */

enum { CB = 512, CSTRIDE = CB + 32 }; /* column block; component array stride */
/* ext4_vec.inc marks a block's live groups of VEC_LANES columns in one 64-bit mask */
_Static_assert(CB / 8 <= 64, "combine_rows2's live-group mask holds CB / 8 bits");

/* K[k * CSTRIDE + c] = coeffs[4c + k] for c < w, 0 up to CSTRIDE. */
static void transpose_coeffs(uint32_t *K, const uint32_t *coeffs, size_t w) {
    for (int k = 0; k < 4; k++)
        for (size_t c = 0; c < CSTRIDE; c++) K[k * CSTRIDE + c] = c < w ? coeffs[4 * c + k] : 0;
}

/* Store (or, for later column blocks, add mod p) 4 words at p0 and 4 at p1. */
ZK_AVX2 ZK_INLINE void comb_emit(uint32_t *p0, uint32_t *p1, __m256i v, int acc) {
    if (acc) {
        __m256i old = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p0)),
            _mm_loadu_si128((const __m128i *)p1), 1);
        v = bb_add_avx2(v, old);
    }
    _mm_storeu_si128((__m128i *)p0, _mm256_castsi256_si128(v));
    _mm_storeu_si128((__m128i *)p1, _mm256_extracti128_si256(v, 1));
}

/* The last step of combine's tree: two rows' four 64-bit sums each (ua,
 * ub from comb_half_tree) to their eight reduced words, (a0..a3, b0..b3).
 * Written per width because the tree's depth differs: after comb_half_tree
 * a ymm holds a row's four complete sums, a zmm still two partial sums of
 * each, so AVX-512 takes one more level (which pairs the two rows).
 *
 * AVX2: bb_reduce64 of each row leaves its results in the odd words;
 * vpsrlq + vpblendd interleave them (a0 b0 a1 b1 ..) and one vpermd orders
 * them. */
ZK_AVX2 ZK_INLINE __m256i comb_words_avx2(__m256i ua, __m256i ub) {
    __m256i ra4 = bb_reduce64_avx2(ua), rb4 = bb_reduce64_avx2(ub);
    __m256i mix = _mm256_blend_epi32(_mm256_srli_epi64(ra4, 32), rb4, 0xAA);
    return _mm256_permutevar8x32_epi32(mix, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
}

/* AVX-512: ua = ((a0,a1) x2, (a2,a3) x2) in its four 128-bit lanes, partial
 * sums; vshufi64x2 takes the even and the odd 128-bit lanes of ua and ub, so
 * one add (and fold) gives (a0 a1 a2 a3 b0 b1 b2 b3) in 64-bit lanes, one
 * bb_reduce64 reduces all eight, and vpermd gathers the odd words. */
ZK_AVX512 ZK_INLINE __m256i comb_words_avx512(__m512i ua, __m512i ub) {
    const __m512i ODD = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15);
    __m512i v = bb_fold64_avx512(_mm512_add_epi64(_mm512_shuffle_i64x2(ua, ub, 0x88),
                                                  _mm512_shuffle_i64x2(ua, ub, 0xDD)));
    return _mm512_castsi512_si256(_mm512_permutexvar_epi32(ODD, bb_reduce64_avx512(v)));
}

/* vpermd indices spreading VEC_LANES / 4 words over four lanes each. */
static const uint32_t SPREAD4[16] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};

/* cols == 4 (one row is one 128-bit lane): the across-columns body would use
 * 4 of 8/16 lanes and spend most of its time in the tree, so here the lanes
 * run across rows instead, 2 (AVX2) / 4 (AVX-512) rows per vector.  For
 * component k the coefficient vector is (K0 K1 K2 K3) in every 128-bit lane;
 * vpmuludq on x and on x >> 32 (against the odd words moved down) gives in
 * each row's two 64-bit lanes m0K0 + m1K1 and m2K2 + m3K3.  vpunpck[lh]qdq of
 * components (0, 1) and (2, 3) and one vpaddq sum those: each 64-bit lane is
 * then one output word as a sum of four products (< 4p^2 < 2p 2^32), folded
 * and Montgomery-reduced; vpshufd + vpblendd (vpblendmd) put the odd-word
 * results in (c0 c1 c2 c3) order. */

/* cols == 8 (the quotient's two chunks, a state table's eight cells): the
 * across-columns body would fill 8 lanes with one row and spend its time in
 * the tree, so combine8 runs rows across 256-bit halves as combine4 runs
 * them across 128-bit lanes.  Each 128-bit lane ends with a half row's sums
 * (columns 0-3 or 4-7) of components (0, 1) or (2, 3); vshufi64x2 (AVX-512,
 * 0x88 and 0xDD) or vperm2i128 (AVX2) of two vectors puts every row's first
 * halves in one vector and its second halves in another, and one vpaddq adds
 * each row's two halves.  Every sum stays below 2p 2^32 before its fold
 * (four products < 4p^2, then two folded sums < 2p 2^32), so the reduction
 * sees the scalar body's value below p 2^32: bit-identical. */

/* mul_avx2 ... combine8_avx512 */
#define VEC_BODY "field/ext4_vec.inc"
#include "common/vec_widths.h"

/* ---- inverse through the norm (zk_ext4_inv), 16 elements at a time ----
 * Four loads hold 16 interleaved elements; two rounds of vpermt2d gather
 * each component into one vector (and two more rounds put them back). */

typedef struct {
    __m512i r1_01, r1_23, r2_lo, r2_hi, w0, w1;
} inv_perm_avx512;

ZK_AVX512 static inv_perm_avx512 inv_perms_avx512(void) {
    uint32_t r01[16], r23[16], lo[16], hi[16], w0[16], w1[16];
    for (unsigned l = 0; l < 16; l++) {
        unsigned j = l & 7, k = l >> 3; /* lane l of round 1: element j, component k (+2) */
        r01[l] = (j < 4 ? 4 * j : 16 + 4 * (j - 4)) + k;
        r23[l] = r01[l] + 2;
        lo[l] = l < 8 ? l : 16 + (l - 8);
        hi[l] = lo[l] + 8;
        unsigned e = l >> 2, c = l & 3; /* word l of a store: element e, component c */
        w0[l] = (c < 2 ? 0 : 16) + (c & 1) * 8 + e;
        w1[l] = w0[l] + 4;
    }
    inv_perm_avx512 p;
    p.r1_01 = _mm512_loadu_si512((const void *)r01), p.r1_23 = _mm512_loadu_si512((const void *)r23);
    p.r2_lo = _mm512_loadu_si512((const void *)lo), p.r2_hi = _mm512_loadu_si512((const void *)hi);
    p.w0 = _mm512_loadu_si512((const void *)w0), p.w1 = _mm512_loadu_si512((const void *)w1);
    return p;
}

ZK_AVX512 ZK_INLINE void inv_load16_avx512(__m512i A[4], const uint32_t *a, const inv_perm_avx512 *p) {
    __m512i v0 = _mm512_loadu_si512((const void *)a), v1 = _mm512_loadu_si512((const void *)(a + 16));
    __m512i v2 = _mm512_loadu_si512((const void *)(a + 32)), v3 = _mm512_loadu_si512((const void *)(a + 48));
    __m512i t0 = _mm512_permutex2var_epi32(v0, p->r1_01, v1), t1 = _mm512_permutex2var_epi32(v0, p->r1_23, v1);
    __m512i t2 = _mm512_permutex2var_epi32(v2, p->r1_01, v3), t3 = _mm512_permutex2var_epi32(v2, p->r1_23, v3);
    A[0] = _mm512_permutex2var_epi32(t0, p->r2_lo, t2), A[1] = _mm512_permutex2var_epi32(t0, p->r2_hi, t2);
    A[2] = _mm512_permutex2var_epi32(t1, p->r2_lo, t3), A[3] = _mm512_permutex2var_epi32(t1, p->r2_hi, t3);
}

ZK_AVX512 ZK_INLINE void inv_store16_avx512(uint32_t *out, const __m512i A[4], const inv_perm_avx512 *p) {
    __m512i t0 = _mm512_permutex2var_epi32(A[0], p->r2_lo, A[1]), t2 = _mm512_permutex2var_epi32(A[0], p->r2_hi, A[1]);
    __m512i t1 = _mm512_permutex2var_epi32(A[2], p->r2_lo, A[3]), t3 = _mm512_permutex2var_epi32(A[2], p->r2_hi, A[3]);
    _mm512_storeu_si512((void *)out, _mm512_permutex2var_epi32(t0, p->w0, t1));
    _mm512_storeu_si512((void *)(out + 16), _mm512_permutex2var_epi32(t0, p->w1, t1));
    _mm512_storeu_si512((void *)(out + 32), _mm512_permutex2var_epi32(t2, p->w0, t3));
    _mm512_storeu_si512((void *)(out + 48), _mm512_permutex2var_epi32(t2, p->w1, t3));
}

/* b0, b2 and the norm of a[0..16k), k = n / 16; returns 16k. */
ZK_AVX512 static size_t inv_norms_avx512(uint32_t *norm, uint32_t *b0s, uint32_t *b2s, const uint32_t *a,
                                         size_t n) {
    inv_perm_avx512 p = inv_perms_avx512();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i A[4];
        inv_load16_avx512(A, a + 4 * i, &p);
        __m512i a1a3 = bb_mul_avx512(A[1], A[3]);
        __m512i b0 = bb_sub_avx512(bb_add_avx512(bb_mul_avx512(A[0], A[0]), times_w_avx512(bb_mul_avx512(A[2], A[2]))),
                                   times_w_avx512(bb_add_avx512(a1a3, a1a3)));
        __m512i a0a2 = bb_mul_avx512(A[0], A[2]);
        __m512i b2 = bb_sub_avx512(bb_sub_avx512(bb_add_avx512(a0a2, a0a2), bb_mul_avx512(A[1], A[1])),
                                   times_w_avx512(bb_mul_avx512(A[3], A[3])));
        __m512i nm = bb_sub_avx512(bb_mul_avx512(b0, b0), times_w_avx512(bb_mul_avx512(b2, b2)));
        _mm512_storeu_si512((void *)(b0s + i), b0);
        _mm512_storeu_si512((void *)(b2s + i), b2);
        _mm512_storeu_si512((void *)(norm + i), nm);
    }
    return i;
}

/* out = f(-X) (b0 - b2 X^2) / N for a[0..16k); returns 16k. */
ZK_AVX512 static size_t inv_finish_avx512(uint32_t *out, const uint32_t *a, const uint32_t *b0s,
                                          const uint32_t *b2s, const uint32_t *norm_inv, size_t n) {
    inv_perm_avx512 p = inv_perms_avx512();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i A[4], G[4];
        inv_load16_avx512(A, a + 4 * i, &p);
        __m512i b0 = _mm512_loadu_si512((const void *)(b0s + i)), b2 = _mm512_loadu_si512((const void *)(b2s + i));
        __m512i ni = _mm512_loadu_si512((const void *)(norm_inv + i));
        G[0] = bb_sub_avx512(bb_mul_avx512(A[0], b0), times_w_avx512(bb_mul_avx512(A[2], b2)));
        G[1] = bb_sub_avx512(times_w_avx512(bb_mul_avx512(A[3], b2)), bb_mul_avx512(A[1], b0));
        G[2] = bb_sub_avx512(bb_mul_avx512(A[2], b0), bb_mul_avx512(A[0], b2));
        G[3] = bb_sub_avx512(bb_mul_avx512(A[1], b2), bb_mul_avx512(A[3], b0));
        for (int k = 0; k < 4; k++) G[k] = bb_mul_avx512(G[k], ni);
        inv_store16_avx512(out + 4 * i, G, &p);
    }
    return i;
}
#endif /* ZK_X86 */

/* ============================================================ dispatch == */

void zk_ext4_mul(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n) {
    ZK_DISPATCH(zk_active_isa, mul, out, a, b, n);
}
void zk_ext4_mul_scalar(uint32_t *out, const uint32_t *a, const uint32_t *s, size_t n) {
    ZK_DISPATCH(zk_active_isa, mul_s, out, a, s, n);
}
void zk_ext4_mul_base(uint32_t *out, const uint32_t *a, const uint32_t *b, size_t n) {
    ZK_DISPATCH(zk_active_isa, mul_base, out, a, b, n);
}
void zk_ext4_scale_base(uint32_t *out, const uint32_t *a, const uint32_t *s, size_t n) {
    ZK_DISPATCH(zk_active_isa, scale_base, out, a, s, n);
}

/* Vector paths take the columns in blocks of CB so the transposed
 * coefficients fit a fixed stack buffer; blocks after the first add into out. */
static void combine(uint32_t *out_a, uint32_t *out_b, const uint32_t *m, const uint32_t *ca,
                    const uint32_t *cb, size_t rows, size_t cols) {
#if ZK_X86
    if (zk_active_isa != ZK_ISA_SCALAR && cols > 0) {
        _Alignas(64) uint32_t Ka[4 * CSTRIDE], Kb[4 * CSTRIDE];
        for (size_t c0 = 0; c0 < cols; c0 += CB) {
            size_t w = cols - c0 < CB ? cols - c0 : CB;
            transpose_coeffs(Ka, ca + 4 * c0, w);
            if (cb) transpose_coeffs(Kb, cb + 4 * c0, w);
            const uint32_t *Kbp = cb ? Kb : 0;
            size_t done = 0; /* rows handled by the cols == 4 body */
            if (cols == 4)
                done = zk_active_isa == ZK_ISA_AVX512 ? combine4_avx512(out_a, out_b, m, Ka, Kbp, rows)
                                                      : combine4_avx2(out_a, out_b, m, Ka, Kbp, rows);
            else if (cols == 8)
                done = zk_active_isa == ZK_ISA_AVX512 ? combine8_avx512(out_a, out_b, m, Ka, Kbp, rows)
                                                      : combine8_avx2(out_a, out_b, m, Ka, Kbp, rows);
            uint32_t *ob = cb ? out_b + 4 * done : 0;
            if (zk_active_isa == ZK_ISA_AVX512 && w > 8)
                combine_avx512(out_a + 4 * done, ob, m + done * cols + c0, cols, Ka, Kbp, rows - done, w, c0 > 0);
            else /* up to 8 columns, 8 lanes waste less than 16 */
                combine_avx2(out_a + 4 * done, ob, m + done * cols + c0, cols, Ka, Kbp, rows - done, w, c0 > 0);
        }
        return;
    }
#endif
    combine_scalar(out_a, out_b, m, ca, cb, rows, cols);
}

void zk_ext4_combine_rows(uint32_t *out, const uint32_t *m, const uint32_t *coeffs, size_t rows,
                          size_t cols) {
    combine(out, 0, m, coeffs, 0, rows, cols);
}

void zk_ext4_combine_rows2(uint32_t *out_a, uint32_t *out_b, const uint32_t *m, const uint32_t *coeffs_a,
                           const uint32_t *coeffs_b, size_t rows, size_t cols) {
    combine(out_a, out_b, m, coeffs_a, coeffs_b, rows, cols);
}

/* ------------------------------------------------------------ sum_rows --
 *
 * out[c] = sum_r w[r] m[r][c]: the rows of a base matrix summed with
 * extension weights (the transpose of combine_rows, which sums each row's
 * columns), read row-major as the matrix lies: the out-of-domain values of a
 * trace matrix (barycentric weights, docs/STARK.md) no longer need its
 * transpose.  Each (column, component) keeps a 64-bit sum of products
 * (< p^2 each) below p 2^32 by a fold after every two rows (vector bodies)
 * or every product (scalar), and is Montgomery-reduced once at the end:
 * (w R)(x R) summed over rows, divided by R, is (sum w x) R, the Montgomery
 * form of the sum.  Every path returns its representative in [0, p), so all
 * are bit-identical (and equal to combine_rows of the transpose).
 * Rows go in blocks of SUM_BLOCK, a chunk of VEC_LANES columns walking down
 * a block with its 8 (sum_rows2: 16) accumulators in registers, the running
 * sums of all chunks in a scratch array between blocks.  A chunk is one
 * cache line of a row and no line is read twice (twice at most where the
 * rows are not line-aligned), so the cache gives no reuse to plan for: what
 * costs is waiting on memory.  The walk reads down the block (one line in
 * every row), a pattern the hardware prefetcher does not follow, so each
 * block prefetches the next, in address order, one line per row of each
 * chunk (a block has at most as many lines as row-chunks): by a block's start
 * it is in L2 (a block of 64 rows is 64 rows * cols * 4 bytes, 132 KiB at
 * 528 columns, against 2 MiB).  Without the prefetch (and with the
 * accumulators on the stack, as GCC put them when the number of weight sets
 * was not a compile-time constant) the AVX-512 body took 3x as long at
 * 2^16 x 528: now it is at the machine's streaming read rate there. */
enum { SUM_BLOCK = 64 };

static void sum_rows_scalar(uint64_t *acc, const uint32_t *m, const uint32_t *wa, const uint32_t *wb,
                            const uint8_t *cols_b, size_t rows, size_t cols) {
    const uint64_t PH = (uint64_t)BB_P << 32;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            uint64_t x = m[r * cols + c], *a = acc + 8 * c;
            for (int k = 0; k < 4; k++) {
                a[k] += x * wa[4 * r + k];           /* < p 2^32 + p^2 < 2p 2^32 */
                if (a[k] >= PH) a[k] -= PH;
                if (wb && (!cols_b || cols_b[c])) {
                    a[4 + k] += x * wb[4 * r + k];
                    if (a[4 + k] >= PH) a[4 + k] -= PH;
                }
            }
        }
}

static int sum_rows(uint32_t *out_a, uint32_t *out_b, const uint32_t *m, const uint32_t *wa, const uint32_t *wb,
                    const uint8_t *cols_b, size_t rows, size_t cols) {
    int isa = zk_active_isa;
#if ZK_X86
    if (isa != ZK_ISA_SCALAR) {
        size_t lanes = isa == ZK_ISA_AVX512 ? 16 : 8, chunks = (cols + lanes - 1) / lanes;
        uint32_t *acc = calloc(chunks * 16 * lanes + 1, sizeof *acc);
        /* live_b[ch]: chunk ch holds a column of the second weighting (every
         * chunk without cols_b); the others walk with one weight set */
        uint8_t *live_b = calloc(chunks + 1, 1);
        if (!acc || !live_b) {
            free(acc), free(live_b);
            return -2;
        }
        for (size_t c = 0; c < cols; c++)
            if (!cols_b || cols_b[c]) live_b[c / lanes] = 1;
        for (size_t r0 = 0; r0 < rows; r0 += SUM_BLOCK) {
            size_t n = rows - r0 < SUM_BLOCK ? rows - r0 : SUM_BLOCK;
            size_t next = rows - r0 - n < SUM_BLOCK ? rows - r0 - n : SUM_BLOCK;
            const uint32_t *wb_r = wb ? wb + 4 * r0 : 0;
            /* the next block's bytes, from the line holding its first word */
            const char *pf = (const char *)((uintptr_t)(m + (r0 + n) * cols) & ~(uintptr_t)63);
            const char *pf_end = (const char *)(m + (r0 + n + next) * cols);
            if (isa == ZK_ISA_AVX512)
                sum_rows_block_avx512(acc, m + r0 * cols, wa + 4 * r0, wb_r, n, cols, pf, pf_end, live_b);
            else
                sum_rows_block_avx2(acc, m + r0 * cols, wa + 4 * r0, wb_r, n, cols, pf, pf_end, live_b);
        }
        if (isa == ZK_ISA_AVX512)
            sum_rows_finish_avx512(out_a, out_b, acc, cols);
        else
            sum_rows_finish_avx2(out_a, out_b, acc, cols);
        free(acc), free(live_b);
        if (out_b && cols_b) /* a live chunk's other columns were summed too: 0, as documented */
            for (size_t c = 0; c < cols; c++)
                if (!cols_b[c]) out_b[4 * c] = out_b[4 * c + 1] = out_b[4 * c + 2] = out_b[4 * c + 3] = 0;
        return 0;
    }
#endif
    uint64_t *acc = calloc(8 * cols + 1, sizeof *acc);
    if (!acc) return -2;
    sum_rows_scalar(acc, m, wa, wb, cols_b, rows, cols);
    for (size_t c = 0; c < cols; c++)
        for (int k = 0; k < 4; k++) {
            out_a[4 * c + k] = bb_reduce(acc[8 * c + k]);
            if (out_b) out_b[4 * c + k] = bb_reduce(acc[8 * c + 4 + k]);
        }
    free(acc);
    return 0;
}

int zk_ext4_sum_rows(uint32_t *out, const uint32_t *m, const uint32_t *w, size_t rows, size_t cols) {
    return sum_rows(out, 0, m, w, 0, 0, rows, cols);
}

int zk_ext4_sum_rows2(uint32_t *out_a, uint32_t *out_b, const uint32_t *m, const uint32_t *w_a,
                      const uint32_t *w_b, const uint8_t *cols_b, size_t rows, size_t cols) {
    return sum_rows(out_a, out_b, m, w_a, w_b, cols_b, rows, cols);
}

/* Inverse through the norm.  With f(X) = a0 + a1 X + a2 X^2 + a3 X^3,
 * f(X) f(-X) = (a0 + a2 X^2)^2 - X^2 (a1 + a3 X^2)^2 = b0 + b2 X^2, where
 *   b0 = a0^2 + W a2^2 - 2W a1 a3,   b2 = 2 a0 a2 - a1^2 - W a3^2,
 * and (b0 + b2 X^2)(b0 - b2 X^2) = b0^2 - W b2^2 = N, a base element that is
 * zero only for f = 0 (the extension is a field).  So
 *   1/f = f(-X) (b0 - b2 X^2) / N,
 * and the n norms are inverted together by one base batch inversion.  With
 * AVX-512 both passes run on 16 elements at a time (inv_norms_avx512,
 * inv_finish_avx512); a tail of fewer than 16 takes the scalar loops. */
int64_t zk_ext4_inv(uint32_t *out, const uint32_t *a, size_t n) {
    if (n == 0) return -1;
    uint32_t *norm = malloc(4 * n * sizeof *norm);
    if (!norm) return -2;
    uint32_t *norm_inv = norm + n, *b0s = norm + 2 * n, *b2s = norm + 3 * n;
    size_t i = 0;
#if ZK_X86
    if (zk_active_isa == ZK_ISA_AVX512) i = inv_norms_avx512(norm, b0s, b2s, a, n);
#endif
    for (; i < n; i++) {
        const uint32_t *f = a + 4 * i;
        uint32_t a0 = f[0], a1 = f[1], a2 = f[2], a3 = f[3];
        uint32_t b0 = bb_sub(bb_add(bb_mul(a0, a0), bb_mul_small(bb_mul(a2, a2), W)),
                             bb_mul_small(bb_mul(a1, a3), 2 * W));
        uint32_t b2 = bb_sub(bb_sub(bb_mul_small(bb_mul(a0, a2), 2), bb_mul(a1, a1)),
                             bb_mul_small(bb_mul(a3, a3), W));
        norm[i] = bb_sub(bb_mul(b0, b0), bb_mul_small(bb_mul(b2, b2), W));
        b0s[i] = b0, b2s[i] = b2;
    }
    int64_t zero = zk_fp_inv(norm_inv, norm, n);
    if (zero >= 0) {
        free(norm);
        return zero;
    }
    i = 0;
#if ZK_X86
    if (zk_active_isa == ZK_ISA_AVX512) i = inv_finish_avx512(out, a, b0s, b2s, norm_inv, n);
#endif
    for (; i < n; i++) {
        const uint32_t *f = a + 4 * i;
        uint32_t b0 = b0s[i], b2 = b2s[i], ni = norm_inv[i];
        /* f(-X) (b0 - b2 X^2), coefficient by coefficient (X^4 = W):
         *   X^0: a0 b0 - W a2 b2      X^1: W a3 b2 - a1 b0
         *   X^2: a2 b0 - a0 b2        X^3: a1 b2 - a3 b0 */
        uint32_t g0 = bb_sub(bb_mul(f[0], b0), bb_mul_small(bb_mul(f[2], b2), W));
        uint32_t g1 = bb_sub(bb_mul_small(bb_mul(f[3], b2), W), bb_mul(f[1], b0));
        uint32_t g2 = bb_sub(bb_mul(f[2], b0), bb_mul(f[0], b2));
        uint32_t g3 = bb_sub(bb_mul(f[1], b2), bb_mul(f[3], b0));
        out[4 * i] = bb_mul(g0, ni), out[4 * i + 1] = bb_mul(g1, ni);
        out[4 * i + 2] = bb_mul(g2, ni), out[4 * i + 3] = bb_mul(g3, ni);
    }
    free(norm);
    return -1;
}

/* ---- a DEEP quotient term added in place (zk_ext4_add_quotient) ----
 * f += (num - c) / (x - z) with x a base point and z, c constants.  The
 * denominator d = (x - z0, -z1, -z2, -z3) has three constant components, so
 * zk_ext4_inv's norm formulas (a0 = y = x - z0, a1 = -z1, a2 = -z2,
 * a3 = -z3) fold into constants and become base-field polynomials in y:
 *   b0 = y^2 + C0,        C0 = W z2^2 - 2W z1 z3
 *   b2 = -2 z2 y + C2,    C2 = -z1^2 - W z3^2
 *   N  = b0^2 - W b2^2    (the norm of d: zero exactly where x = z, since
 *                          x is base and the extension is a field)
 * and f(-X) (b0 - b2 X^2) / N, linear in (b0, b2), is with B0 = b0 / N and
 * B2 = b2 / N
 *   1/d = (y B0 + W z2 B2,  z1 B0 - W z3 B2,  -z2 B0 - y B2,  z3 B0 - z1 B2).
 * That is 7 products a row and 8 by constants, against zk_ext4_inv's 20 and
 * 6 on a generic element (and the four interleaved words of d to build, and
 * its norm arrays): every
 * step is a pass of the dispatched base kernels (zk_fp_*: scalar, AVX2,
 * AVX-512) over a block's component arrays, which stay in L1.  The values
 * are the field's, so the words are those of the generic composition
 * (tests/test_extension.py checks every ISA path against it).  Then, as
 * before: (num - c) times the inverse (zk_ext4_mul) added into f. */
#define ADD_QUOTIENT_BLOCK 1024

int64_t zk_ext4_add_quotient(uint32_t *f, const uint32_t *num, const uint32_t *c,
                             const uint32_t *x, const uint32_t *z, size_t n) {
    enum { B = ADD_QUOTIENT_BLOCK };
    /* y b0 b2 nrm ninv t | Z0 C0 C2 (constant arrays) | d, e, Ct (4 B each) */
    uint32_t *scratch = malloc(21 * B * sizeof *scratch);
    if (!scratch) return -2;
    uint32_t *y = scratch, *b0 = y + B, *b2 = b0 + B, *nrm = b2 + B, *ninv = nrm + B, *t = ninv + B;
    uint32_t *Z0 = t + B, *C0 = Z0 + B, *C2 = C0 + B, *d = C2 + B, *e = d + 4 * B, *Ct = e + 4 * B;
    const uint32_t z0 = z[0], z1 = z[1], z2 = z[2], z3 = z[3];
    const uint32_t wz2 = bb_mul_small(z2, W), wz3 = bb_mul_small(z3, W);
    const uint32_t c0 = bb_sub(bb_mul(wz2, z2), bb_mul_small(bb_mul(z1, z3), 2 * W));
    const uint32_t c2 = bb_neg(bb_add(bb_mul(z1, z1), bb_mul(wz3, z3)));
    const uint32_t m2z2 = bb_neg(bb_mul_small(z2, 2)), mw = bb_neg(bb_mul_small(BB_ONE, W));
    const uint32_t nwz3 = bb_neg(wz3), nz2 = bb_neg(z2), nz1 = bb_neg(z1);
    for (size_t i = 0; i < B; i++) {
        Z0[i] = z0, C0[i] = c0, C2[i] = c2;
        for (int k = 0; k < 4; k++) Ct[4 * i + k] = c[k];
    }
    int64_t result = -1;
    for (size_t r0 = 0; r0 < n; r0 += B) {
        const size_t m = n - r0 < B ? n - r0 : B;
        zk_fp_sub(y, x + r0, Z0, m);                  /* y = x - z0 */
        zk_fp_mul(t, y, y, m);
        zk_fp_add(b0, t, C0, m);                      /* b0 = y^2 + C0 */
        zk_fp_mul_scalar_add(b2, y, m2z2, C2, m);     /* b2 = -2 z2 y + C2 */
        zk_fp_mul(ninv, b0, b0, m);                   /* (ninv as scratch until the inverse) */
        zk_fp_mul(t, b2, b2, m);
        zk_fp_mul_scalar_add(nrm, t, mw, ninv, m);    /* N = b0^2 - W b2^2 */
        const int64_t bad = zk_fp_inv(ninv, nrm, m);
        if (bad >= 0) {
            result = (int64_t)r0 + bad;
            break;
        }
        zk_fp_mul(b0, b0, ninv, m);                   /* B0 = b0 / N */
        zk_fp_mul(b2, b2, ninv, m);                   /* B2 = b2 / N */
        /* the inverse's components, component-major in e: e[k B + i] */
        uint32_t *g0 = e, *g1 = e + B, *g2 = e + 2 * B, *g3 = e + 3 * B;
        zk_fp_mul(t, y, b0, m);
        zk_fp_mul_scalar_add(g0, b2, wz2, t, m);      /* y B0 + W z2 B2 */
        zk_fp_mul_scalar(t, b0, z1, m);
        zk_fp_mul_scalar_add(g1, b2, nwz3, t, m);     /* z1 B0 - W z3 B2 */
        zk_fp_mul(t, y, b2, m);
        zk_fp_neg(t, t, m);
        zk_fp_mul_scalar_add(g2, b0, nz2, t, m);      /* -z2 B0 - y B2 */
        zk_fp_mul_scalar(t, b0, z3, m);
        zk_fp_mul_scalar_add(g3, b2, nz1, t, m);      /* z3 B0 - z1 B2 */
        for (size_t i = 0; i < m; i++)                /* interleaved, as zk_ext4_mul reads it */
            d[4 * i] = g0[i], d[4 * i + 1] = g1[i], d[4 * i + 2] = g2[i], d[4 * i + 3] = g3[i];
        zk_fp_sub(e, num + 4 * r0, Ct, 4 * m);       /* num - c */
        zk_ext4_mul(d, e, d, m);
        zk_fp_add(f + 4 * r0, f + 4 * r0, d, 4 * m);
    }
    free(scratch);
    return result;
}
