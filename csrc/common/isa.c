/*
 * isa.c — run-time choice of the kernel path.
 *
 * At load time the best path the CPU supports becomes active.  Python may then
 * force another one (ZKSIDECAR_ISA), but never one the CPU cannot run.
 * "scalar" means portable C everywhere, SHA-256 included; the vector paths also
 * use SHA-NI where the CPU has it.
 */
#include "zk_common.h"

#if ZK_X86
#include <cpuid.h>
#endif

int zk_active_isa = ZK_ISA_SCALAR;

int zk_isa_supported(int isa) {
    switch (isa) {
    case ZK_ISA_SCALAR:
        return 1;
#if ZK_X86
    /* __builtin_cpu_supports checks CPUID and, for AVX and AVX-512, that the
     * OS saves the wide registers (XCR0), so a "yes" is safe to act on. */
    case ZK_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2");
    case ZK_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
               zk_isa_supported(ZK_ISA_AVX2);
#endif
    default:
        return 0;
    }
}

int zk_set_isa(int isa) {
    if (!zk_isa_supported(isa)) return -1;
    zk_active_isa = isa;
    return 0;
}

int zk_get_isa(void) { return zk_active_isa; }

int zk_sha_ni_supported(void) {
#if ZK_X86
    unsigned a, b, c, d;
    /* CPUID.(EAX=7,ECX=0):EBX bit 29 = SHA extensions; they use SSE registers
     * only, so no XCR0 check beyond SSE4.1 is needed. */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return ((b >> 29) & 1) && __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3");
#else
    return 0;
#endif
}

__attribute__((constructor)) static void zk_isa_init(void) {
    if (zk_isa_supported(ZK_ISA_AVX512))
        zk_active_isa = ZK_ISA_AVX512;
    else if (zk_isa_supported(ZK_ISA_AVX2))
        zk_active_isa = ZK_ISA_AVX2;
    else
        zk_active_isa = ZK_ISA_SCALAR;
}
