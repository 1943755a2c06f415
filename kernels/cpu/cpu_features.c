/* CPU feature detection (CPUID + XGETBV) for run-time SIMD dispatch. */
#include "cpu/cpu_features.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static rk_simd_level detect(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return RK_SIMD_SCALAR;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave)
        return RK_SIMD_SCALAR;
    unsigned long long xcr0 = read_xcr0();
    int ymm_ok = (xcr0 & 0x6) == 0x6;
    int zmm_ok = (xcr0 & 0xe6) == 0xe6;
    if (__get_cpuid_max(0, NULL) < 7)
        return RK_SIMD_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
        avx512vl = (b >> 31) & 1;
    if (ymm_ok && zmm_ok && avx2 && fma && f16c && avx512f && avx512bw && avx512vl && avx512dq)
        return RK_SIMD_AVX512;
    if (ymm_ok && avx2 && fma && f16c)
        return RK_SIMD_AVX2;
    return RK_SIMD_SCALAR;
}

static int detect_vnni(void)
{
    if (detect() != RK_SIMD_AVX512)
        return 0;
    unsigned int a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    return (c >> 11) & 1;
}
#else
static rk_simd_level detect(void) { return RK_SIMD_SCALAR; }
static int detect_vnni(void) { return 0; }
#endif

rk_simd_level rk_cpu_simd_level(void)
{
    static int cached = -1;
    if (cached < 0)
        cached = (int)detect();
    return (rk_simd_level)cached;
}

int rk_cpu_has_avx512vnni(void)
{
    static int cached = -1;
    if (cached < 0)
        cached = detect_vnni();
    return cached;
}

rk_simd_level rk_simd_active(void)
{
    rk_simd_level best = rk_cpu_simd_level();
    const char *want = getenv("ROSETTA_SIMD");
    if (!want)
        return best;
    rk_simd_level cap = best;
    if (strcmp(want, "scalar") == 0)
        cap = RK_SIMD_SCALAR;
    else if (strcmp(want, "avx2") == 0)
        cap = RK_SIMD_AVX2;
    else if (strcmp(want, "avx512") == 0)
        cap = RK_SIMD_AVX512;
    return cap < best ? cap : best;
}

const char *rk_simd_level_name(rk_simd_level level)
{
    switch (level) {
    case RK_SIMD_SCALAR: return "scalar";
    case RK_SIMD_AVX2: return "avx2";
    case RK_SIMD_AVX512: return "avx512";
    }
    return "unknown";
}
