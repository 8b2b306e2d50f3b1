/*
 * zk_common.h — what every kernel file shares: the instruction-set (ISA)
 * selection and the function attributes that let one binary carry scalar,
 * AVX2 and AVX-512 code.
 *
 * The library is compiled without -march flags, so the baseline is plain
 * x86-64 (or whatever the compiler targets).  Vector code lives in functions
 * marked ZK_AVX2 / ZK_AVX512 / ZK_SHANI: GCC and Clang compile those bodies
 * for the named extensions only, and nothing calls them unless the CPU reports
 * the extension at run time (zk_isa_supported).  So an old CPU never executes
 * an instruction it lacks.  A vector kernel is written once and compiled for
 * both widths, AVX2 and AVX-512, through vec_widths.h.
 */
#ifndef ZK_COMMON_H
#define ZK_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(_M_X64)
#define ZK_X86 1
#include <immintrin.h>
#define ZK_AVX2 __attribute__((target("avx2,bmi2")))
#define ZK_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,bmi2")))
#define ZK_SHANI __attribute__((target("sha,sse4.1,ssse3")))
#else
#define ZK_X86 0
#endif

#define ZK_INLINE static inline __attribute__((always_inline))

/* Call name_avx512, name_avx2 or name_scalar with the arguments, by `isa`
 * (usually zk_active_isa; a kernel that must not change path halfway reads
 * it once and passes its copy).  The vector bodies are compiled from one
 * source per kernel, once per width (vec_widths.h). */
#if ZK_X86
#define ZK_DISPATCH(isa, name, ...)                                                       \
    do {                                                                                  \
        switch (isa) {                                                                    \
        case ZK_ISA_AVX512: name##_avx512(__VA_ARGS__); break;                            \
        case ZK_ISA_AVX2: name##_avx2(__VA_ARGS__); break;                                \
        default: name##_scalar(__VA_ARGS__); break;                                       \
        }                                                                                 \
    } while (0)
#else
#define ZK_DISPATCH(isa, name, ...) name##_scalar(__VA_ARGS__)
#endif

/* cffi-begin */
/* Instruction-set paths.  Numbers are stable: Python mirrors them. */
#define ZK_ISA_SCALAR 0
#define ZK_ISA_AVX2 1
#define ZK_ISA_AVX512 2

/* 1 if this CPU (and OS) can run the path, else 0. */
int zk_isa_supported(int isa);
/* Make `isa` the path every kernel takes; -1 if the CPU cannot run it. */
int zk_set_isa(int isa);
int zk_get_isa(void);
/* 1 if SHA-256 uses the SHA-NI instructions on this CPU. */
int zk_sha_ni_supported(void);
/* cffi-end */

/* The active path, read by every kernel's dispatch switch. */
extern int zk_active_isa;

#endif
