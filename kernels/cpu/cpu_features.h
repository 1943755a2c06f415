/* CPU feature detection for choosing SIMD kernel variants at run time.
 * Not for: anything compile-time; every variant is always built. */
#ifndef RK_CPU_FEATURES_H
#define RK_CPU_FEATURES_H

typedef enum rk_simd_level {
    RK_SIMD_SCALAR = 0,
    RK_SIMD_AVX2 = 1,
    RK_SIMD_AVX512 = 2,
} rk_simd_level;

/* The best level this CPU and OS support (cached after the first call). */
rk_simd_level rk_cpu_simd_level(void);

/* The level kernels use: the CPU's best, capped by ROSETTA_SIMD=scalar|avx2|avx512
 * in the environment (tests use it to compare variants). */
rk_simd_level rk_simd_active(void);

/* Whether the CPU and OS support AVX512-VNNI (vpdpbusd) on top of RK_SIMD_AVX512. */
int rk_cpu_has_avx512vnni(void);

/* "scalar", "avx2" or "avx512". */
const char *rk_simd_level_name(rk_simd_level level);

#endif
