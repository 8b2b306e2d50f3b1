/*
 * vec_avx512.h — the vector vocabulary (vec_widths.h) on AVX-512: 16 lanes
 * of 32 bits in a zmm register.  Included only by vec_widths.h.
 */
#define VEC_T __m512i
#define VEC_LANES 16
#define VEC_LOG2_LANES 4
#define VEC_TARGET ZK_AVX512
#define VEC(name) name##_avx512
/* The AVX2 instance of a body: an AVX-512 kernel may finish a half vector
 * with it (ymm code runs on AVX-512 cores). */
#define VEC_HALF(name) name##_avx2

#define VEC_LOAD(p) _mm512_loadu_si512((const void *)(p))                  /* vmovdqu32 */
#define VEC_STORE(p, v) _mm512_storeu_si512((void *)(p), v)
#define VEC_LOAD_FIRST(p, n) _mm512_maskz_loadu_epi32((__mmask16)((1u << (n)) - 1), p) /* {k}{z} */
#define VEC_LOAD_QUARTER(p) _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p))) /* xmm */
#define VEC_BCAST128(p) _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(p)))
#define VEC_BCAST256(p) _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(p))) /* vbroadcasti64x4 */
#define VEC_WIDEN(p) _mm512_cvtepu32_epi64(_mm256_loadu_si256((const __m256i *)(p))) /* vpmovzxdq */
#define VEC_ZERO() _mm512_setzero_si512()
#define VEC_SET1(x) _mm512_set1_epi32((int)(x))                            /* vpbroadcastd */
#define VEC_SET1_64(x) _mm512_set1_epi64((long long)(x))                   /* vpbroadcastq */

#define VEC_ADD32(a, b) _mm512_add_epi32(a, b)                             /* vpaddd */
#define VEC_SUB32(a, b) _mm512_sub_epi32(a, b)                             /* vpsubd */
#define VEC_MIN32(a, b) _mm512_min_epu32(a, b)                             /* vpminud */
#define VEC_ADD64(a, b) _mm512_add_epi64(a, b)                             /* vpaddq */
#define VEC_SUB64(a, b) _mm512_sub_epi64(a, b)                             /* vpsubq */
#define VEC_SRL64(a, n) _mm512_srli_epi64(a, n)                            /* vpsrlq */
#define VEC_MUL_EVN(a, b) _mm512_mul_epu32(a, b)                           /* vpmuludq */
#define VEC_XOR(a, b) _mm512_xor_si512(a, b)                               /* vpxord */
#define VEC_ROTL32(a, n) _mm512_rol_epi32(a, n)                            /* vprold */

#define VEC_MOVEHDUP(a) _mm512_castps_si512(_mm512_movehdup_ps(_mm512_castsi512_ps(a))) /* vmovshdup */
/* vpblendmd with the 8-lane pattern repeated over 16 lanes */
#define VEC_BLEND32(a, b, imm8) _mm512_mask_blend_epi32((__mmask16)((imm8) | (imm8) << 8), a, b)
/* One vmovshdup merging under k = 0x5555 into o: even lanes take e's odd
 * lanes, odd lanes keep o's (GCC emits vmovshdup then a masked vmovdqa32
 * for the blend of a plain one, two uops on the shuffle port) */
#define VEC_HIGH_WORDS(e, o)                                                                  \
    _mm512_castps_si512(_mm512_mask_movehdup_ps(_mm512_castsi512_ps(o), (__mmask16)0x5555, \
                                                _mm512_castsi512_ps(e)))
#define VEC_SHUFFLE32(a, imm8) _mm512_shuffle_epi32(a, imm8)               /* vpshufd */
#define VEC_ALIGNR(a, b, bytes) _mm512_alignr_epi8(a, b, bytes)            /* vpalignr */
#define VEC_PERMUTE32(a, idx) _mm512_permutexvar_epi32(idx, a)             /* vpermd */
#define VEC_UNPACKLO64(a, b) _mm512_unpacklo_epi64(a, b)                   /* vpunpcklqdq */
#define VEC_UNPACKHI64(a, b) _mm512_unpackhi_epi64(a, b)                   /* vpunpckhqdq */
#define VEC_LO_HALVES(a, b) _mm512_shuffle_i64x2(a, b, 0x44)               /* vshufi64x2 */
#define VEC_HI_HALVES(a, b) _mm512_shuffle_i64x2(a, b, 0xEE)
#define VEC_EVEN_LANES128(a, b) _mm512_shuffle_i64x2(a, b, 0x88)          /* a.l0 a.l2 b.l0 b.l2 */
#define VEC_ODD_LANES128(a, b) _mm512_shuffle_i64x2(a, b, 0xDD)           /* a.l1 a.l3 b.l1 b.l3 */

/* VEC_LANES x VEC_LANES words: out[i] lane l = in[l] lane i (common/transpose.h) */
#define VEC_TRANSPOSE(out, in) zk_transpose16_avx512(out, in)

/* A lane mask is a k register (one bit a lane). */
#define VEC_MASK_T __mmask16
#define VEC_MASK(v) _mm512_movepi32_mask(v)                                /* vpmovd2m */
#define VEC_SELECT(m, a, b) _mm512_mask_blend_epi32(m, a, b)               /* vpblendmd */
