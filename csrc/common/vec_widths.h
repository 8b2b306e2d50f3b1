/*
 * vec_widths.h — compile one kernel source once per vector width.
 *
 * A vector kernel is written once, in a .inc file, in terms of a small
 * vocabulary: the vector type, its lane count, the function attribute that
 * lets the body use the instructions, and one macro per operation (load,
 * store, add, the even-lane 32 x 32 -> 64-bit multiply, shuffles...).
 * vec_avx2.h and vec_avx512.h map that vocabulary onto the intrinsics of
 * each width; they are the only text written per width.  Usage:
 *
 *   #define VEC_BODY "field/ntt_vec.inc"    (a path under csrc/)
 *   #include "common/vec_widths.h"
 *
 * compiles the body as name_avx2 (8 lanes of 32 bits, ymm) and name_avx512
 * (16 lanes, zmm), each function naming itself VEC(name) and its siblings of
 * the same width likewise; ZK_DISPATCH (zk_common.h) then picks one at run
 * time.  The vocabulary macros exist only while a body is being compiled.
 * Deliberately no include guard: every kernel file includes this again with
 * its own VEC_BODY.
 *
 * The vocabulary ("lane" = 32-bit lane; a 128-bit lane is 4 of them):
 *
 *   VEC_T, VEC_LANES        the vector type and its lane count
 *   VEC_LOG2_LANES          log2 of the lane count (3, 4)
 *   VEC_TARGET              the function attribute (ZK_AVX2 / ZK_AVX512)
 *   VEC(name)               this width's instance of a function of the body
 *   VEC_HALF(name)          AVX-512 only: the AVX2 instance of a function
 *   VEC_LOAD(p), VEC_STORE(p, v)   VEC_LANES words, unaligned
 *   VEC_LOAD_FIRST(p, n)    p[0..n), n < VEC_LANES, the other lanes 0;
 *                           nothing at or past p + n is read
 *   VEC_LOAD_QUARTER(p)     p[0..VEC_LANES/4) in the low lanes, the rest
 *                           unspecified
 *   VEC_BCAST128(p)         p[0..4) in every 128-bit lane
 *   VEC_BCAST256(p)         p[0..8) in every 256-bit half (AVX2: the vector)
 *   VEC_WIDEN(p)            p[0..VEC_LANES/2) zero-extended to 64-bit lanes
 *   VEC_ZERO(), VEC_SET1(x), VEC_SET1_64(x)   0; x in every lane / 64-bit lane
 *   VEC_ADD32, VEC_SUB32    wrapping, lane by lane
 *   VEC_MIN32               unsigned minimum, lane by lane
 *   VEC_ADD64, VEC_SUB64    wrapping, by 64-bit lane
 *   VEC_SRL64(a, n)         each 64-bit lane shifted right by n bits
 *   VEC_XOR(a, b)           bitwise exclusive or
 *   VEC_ROTL32(a, n)        each lane rotated left by the constant n bits
 *   VEC_MUL_EVN(a, b)       vpmuludq: the full 64-bit product of the even
 *                           (low) lanes of each 64-bit lane; odd lanes unread
 *   VEC_MOVEHDUP(a)         each odd lane copied onto the even lane below it
 *   VEC_BLEND32(a, b, imm8) lane i from b if bit i mod 8 of imm8 is set, else a
 *   VEC_HIGH_WORDS(e, o)    the high words of the 64-bit lanes of e and o:
 *                           even lane 2i = e's lane 2i + 1, odd lanes o's
 *   VEC_SHUFFLE32(a, imm8)  vpshufd: one 4-lane shuffle in every 128-bit lane
 *   VEC_ALIGNR(a, b, k)     per 128-bit lane: the bytes of a:b (a high)
 *                           shifted right by k bytes, the low 16 kept
 *   VEC_PERMUTE32(a, idx)   lane i = lane idx[i] of a, across the vector
 *   VEC_UNPACKLO64(a, b)    per 128-bit lane: (low 64 of a, low 64 of b);
 *   VEC_UNPACKHI64(a, b)    likewise the high 64 bits
 *   VEC_LO_HALVES(a, b)     the low half of a, then the low half of b;
 *   VEC_HI_HALVES(a, b)     likewise the high halves
 *   VEC_EVEN_LANES128(a, b) the even-numbered 128-bit lanes of a, then of b;
 *   VEC_ODD_LANES128(a, b)  likewise the odd-numbered (AVX2: the halves)
 *   VEC_MASK_T, VEC_MASK(v) a lane mask: the lanes of v whose top bit is set
 *   VEC_SELECT(m, a, b)     lane i from b where m holds lane i, else from a
 *   VEC_TRANSPOSE(out, in)  VEC_LANES x VEC_LANES words: out[i] lane l =
 *                           in[l] lane i (arrays of VEC_LANES vectors)
 */
#include "transpose.h"
#include "zk_common.h"

#ifndef VEC_BODY
#error "vec_widths.h: define VEC_BODY, the kernel source to compile per width"
#endif

#if ZK_X86
#include "vec_avx2.h"
#include VEC_BODY
#include "vec_end.h"

#include "vec_avx512.h"
#include VEC_BODY
#include "vec_end.h"
#endif

#undef VEC_BODY
