/*
 * vec_avx2.h — the vector vocabulary (vec_widths.h) on AVX2: 8 lanes of 32
 * bits in a ymm register.  Included only by vec_widths.h.
 */
#define VEC_T __m256i
#define VEC_LANES 8
#define VEC_LOG2_LANES 3
#define VEC_TARGET ZK_AVX2
#define VEC(name) name##_avx2

#define VEC_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))               /* vmovdqu */
#define VEC_STORE(p, v) _mm256_storeu_si256((__m256i *)(p), v)
#define VEC_LOAD_FIRST(p, n)                                                   /* vpmaskmovd */ \
    _mm256_maskload_epi32((const int *)(p), _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)),    \
                                                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)))
#define VEC_LOAD_QUARTER(p) _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)(p))) /* vmovq */
#define VEC_BCAST128(p) _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p)))
#define VEC_BCAST256(p) VEC_LOAD(p)                                        /* the whole vector */
#define VEC_WIDEN(p) _mm256_cvtepu32_epi64(_mm_loadu_si128((const __m128i *)(p))) /* vpmovzxdq */
#define VEC_ZERO() _mm256_setzero_si256()
#define VEC_SET1(x) _mm256_set1_epi32((int)(x))                            /* vpbroadcastd */
#define VEC_SET1_64(x) _mm256_set1_epi64x((long long)(x))                  /* vpbroadcastq */

#define VEC_ADD32(a, b) _mm256_add_epi32(a, b)                             /* vpaddd */
#define VEC_SUB32(a, b) _mm256_sub_epi32(a, b)                             /* vpsubd */
#define VEC_MIN32(a, b) _mm256_min_epu32(a, b)                             /* vpminud */
#define VEC_ADD64(a, b) _mm256_add_epi64(a, b)                             /* vpaddq */
#define VEC_SUB64(a, b) _mm256_sub_epi64(a, b)                             /* vpsubq */
#define VEC_SRL64(a, n) _mm256_srli_epi64(a, n)                            /* vpsrlq */
#define VEC_MUL_EVN(a, b) _mm256_mul_epu32(a, b)                           /* vpmuludq */
#define VEC_XOR(a, b) _mm256_xor_si256(a, b)                               /* vpxor */
/* No rotate instruction below AVX-512: a rotation by 16 or 8 moves whole
 * bytes, one vpshufb; any other is vpslld, vpsrld, vpor.  `n` is a constant,
 * so the choice is made at compile time. */
#define VEC_ROTL32(a, n)                                                                       \
    ((n) == 16  ? _mm256_shuffle_epi8(a, _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9,  \
                                                          14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, \
                                                          5, 10, 11, 8, 9, 14, 15, 12, 13))    \
     : (n) == 8 ? _mm256_shuffle_epi8(a, _mm256_setr_epi8(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10,  \
                                                          15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5, \
                                                          6, 11, 8, 9, 10, 15, 12, 13, 14))    \
                : _mm256_or_si256(_mm256_slli_epi32(a, (n) & 31), _mm256_srli_epi32(a, (32 - (n)) & 31)))

#define VEC_MOVEHDUP(a) _mm256_castps_si256(_mm256_movehdup_ps(_mm256_castsi256_ps(a))) /* vmovshdup */
#define VEC_BLEND32(a, b, imm8) _mm256_blend_epi32(a, b, imm8)             /* vpblendd */
/* vmovshdup, vpblendd (a blend is cheap on any port) */
#define VEC_HIGH_WORDS(e, o) VEC_BLEND32(VEC_MOVEHDUP(e), o, 0xAA)
#define VEC_SHUFFLE32(a, imm8) _mm256_shuffle_epi32(a, imm8)               /* vpshufd */
#define VEC_ALIGNR(a, b, bytes) _mm256_alignr_epi8(a, b, bytes)            /* vpalignr */
#define VEC_PERMUTE32(a, idx) _mm256_permutevar8x32_epi32(a, idx)          /* vpermd */
#define VEC_UNPACKLO64(a, b) _mm256_unpacklo_epi64(a, b)                   /* vpunpcklqdq */
#define VEC_UNPACKHI64(a, b) _mm256_unpackhi_epi64(a, b)                   /* vpunpckhqdq */
#define VEC_LO_HALVES(a, b) _mm256_permute2x128_si256(a, b, 0x20)          /* vperm2i128 */
#define VEC_HI_HALVES(a, b) _mm256_permute2x128_si256(a, b, 0x31)
/* two 128-bit lanes a vector: the even lanes are the low halves */
#define VEC_EVEN_LANES128(a, b) VEC_LO_HALVES(a, b)
#define VEC_ODD_LANES128(a, b) VEC_HI_HALVES(a, b)

/* VEC_LANES x VEC_LANES words: out[i] lane l = in[l] lane i (common/transpose.h) */
#define VEC_TRANSPOSE(out, in) zk_transpose8_avx2(out, in)

/* A lane mask is a vector of all-ones / all-zero lanes. */
#define VEC_MASK_T __m256i
#define VEC_MASK(v) (v)
#define VEC_SELECT(m, a, b) _mm256_blendv_epi8(a, b, m)                    /* vpblendvb */
