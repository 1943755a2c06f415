/* The SIMD quantizers and dequantizers against the scalar reference kernels (docs/design.md
 * section 7; docs/formats/quantization-speed.md): byte-identical blocks and bit-identical floats
 * on random and adversarial rows, for every SIMD level this CPU has; and rf_quantize's bytes for
 * thread counts 1, 2, 3 and 7 and every SIMD level (ROSETTA_SIMD), with odd row counts. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_features.h"
#include "cpu/quant_dispatch.h"
#include "cpu/quant_ref.h"
#include "rosetta/quant.h"

#if defined(__SANITIZE_ADDRESS__)
#define ROUNDS 1 /* the sanitizer build is ~20x slower; the release build runs the full set */
#else
#define ROUNDS 4
#endif

typedef void (*quant_fn)(const float *x, void *y, int64_t k);
typedef void (*dequant_fn)(const void *x, float *y, int64_t k);

/* ---- inputs ---------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float uniform(void) { return (float)(next_u64() >> 40) / 16777216.0f; }
static float gauss(void)
{
    float u = uniform() + 1e-7f, v = uniform();
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}
static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#define N_MODES 22

/* Fills x[0..n) with pattern `mode`; the patterns cover docs/formats/quantization.md */
static void fill(float *x, int64_t n, int mode)
{
    for (int64_t i = 0; i < n; i++) {
        float v;
        uint64_t r = next_u64();
        switch (mode) {
        case 0: v = gauss(); break;
        case 1: v = 0.1f + 2.0f * cosf((float)i + 0.5f); break; /* ggml's synthetic pattern */
        case 2: v = gauss() * 1e-3f; break;
        case 3: v = (float)((int)(r % 33) - 16) * 0.25f; break; /* rounding ties */
        case 4: v = gauss() * 1e-39f; break;                    /* subnormal */
        case 5: v = gauss() * 1e-38f; break;                    /* inverse scale overflows */
        case 6: v = gauss() * 1e30f; break;
        case 7: v = (r % 3 == 0) ? gauss() : 0.0f; break;
        case 8: v = fabsf(gauss()); break;               /* all positive: min clamp */
        case 9: v = -fabsf(gauss()) - 1.0f; break;       /* all negative */
        case 10: v = (r & 1) ? 0.0f : -0.0f; break;      /* signed zeros */
        case 11: v = 3.25f; break;                       /* constant */
        case 12: v = (i % 97 == 5) ? 7.0f : 0.0f; break; /* single non-zero */
        case 13: v = (i / 32) % 2 ? 5.0f : -5.0f; break; /* equal extremes of both signs */
        case 14: {                                       /* random finite bit patterns */
            v = from_bits((uint32_t)r);
            if (!isfinite(v))
                v = 1.0f;
        } break;
        case 15: { /* NaN and infinities here and there */
            int c = (int)(r % 50);
            v = c == 0 ? NAN : c == 1 ? INFINITY : c == 2 ? -INFINITY : gauss();
        } break;
        case 16: v = (r % 2 ? 1.0f : -1.0f) * (float)((r >> 8) % 8); break;
        case 17: v = gauss() * ((i / 16) % 4 == 0 ? 1e-6f : 10.0f); break; /* mixed sub-blocks */
        case 18: v = (i % 16 == 0) ? -gauss() * 100.0f : gauss() * 0.01f; break;
        case 19: v = gauss() * 65504.0f * 64.0f; break; /* super-scales at the f16 limit */
        case 20: v = (float)(i % 32) - 15.5f; break;
        default: v = (i % 2) ? 2.5f : -2.5f; break;
        }
        x[i] = v;
    }
}

/* ---- kernels under test ---------------------------------------------------------------------- */

typedef struct simd_case {
    const char *name;
    int block_elems, block_bytes;
    quant_fn ref_q, q_avx2, q_avx512;
    dequant_fn ref_d, d_avx2, d_avx512;
} simd_case;

#define SIMD_CASE(name, t, elems, bytes)                                                           \
    {                                                                                              \
        name, elems, bytes, rk_quantize_row_##t##_ref, rk_quantize_row_##t##_avx2,                 \
            rk_quantize_row_##t##_avx512, rk_dequantize_row_##t##_ref,                             \
            rk_dequantize_row_##t##_avx2, rk_dequantize_row_##t##_avx512                           \
    }

static const simd_case CASES[] = {
    SIMD_CASE("Q4_K", q4_K, 256, 144), SIMD_CASE("Q5_K", q5_K, 256, 176),
    SIMD_CASE("Q6_K", q6_K, 256, 210), SIMD_CASE("Q8_0", q8_0, 32, 34),
    SIMD_CASE("Q4_0", q4_0, 32, 18),   SIMD_CASE("Q5_0", q5_0, 32, 22),
    SIMD_CASE("F16", f16, 1, 2),       SIMD_CASE("BF16", bf16, 1, 2),
};

static quant_fn simd_q(const simd_case *c, int level)
{
    return level == RK_SIMD_AVX512 ? c->q_avx512 : c->q_avx2;
}

static dequant_fn simd_d(const simd_case *c, int level)
{
    return level == RK_SIMD_AVX512 ? c->d_avx512 : c->d_avx2;
}

static const simd_case *find_case(const char *name)
{
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        if (strcmp(CASES[i].name, name) == 0)
            return &CASES[i];
    cr_assert_fail("no case %s", name);
    return NULL;
}

/* Quantizes every pattern with the reference and with each SIMD level the CPU has; every block
 * must be byte-identical. Rows hold an odd number of blocks, so that the AVX-512 K-quant path
 * (two super-blocks per pass) also meets a lone last block. */
/* Skips the calling test loudly on a CPU without AVX2: there is no SIMD variant to compare, and
 * a pass would claim a check that did not happen. */
static void need_simd(const char *name)
{
    if (rk_cpu_simd_level() == RK_SIMD_SCALAR)
        cr_skip_test("%s: this CPU has no AVX2, so there is no SIMD variant to compare", name);
}

static void check_quantizer(const char *name)
{
    need_simd(name);
    const simd_case *c = find_case(name);
    const int64_t blocks = c->block_elems == 256 ? 23 : c->block_elems == 32 ? 185 : 5923;
    const int64_t n = blocks * c->block_elems;
    float *x = malloc((size_t)n * sizeof *x);
    uint8_t *want = malloc((size_t)(blocks * c->block_bytes));
    uint8_t *got = malloc((size_t)(blocks * c->block_bytes));
    cr_assert(x && want && got);
    long compared = 0;
    for (int level = RK_SIMD_AVX2; level <= (int)rk_cpu_simd_level(); level++) {
        for (int round = 0; round < 3 * ROUNDS; round++) {
            for (int mode = 0; mode < N_MODES; mode++) {
                fill(x, n, mode);
                c->ref_q(x, want, n);
                memset(got, 0xA5, (size_t)(blocks * c->block_bytes));
                simd_q(c, level)(x, got, n);
                for (int64_t b = 0; b < blocks; b++) {
                    const uint8_t *w = want + b * c->block_bytes, *g = got + b * c->block_bytes;
                    if (memcmp(w, g, (size_t)c->block_bytes) != 0) {
                        int at = 0;
                        while (w[at] == g[at])
                            at++;
                        cr_assert_fail("%s %s: pattern %d round %d block %lld byte %d: reference "
                                       "0x%02x, SIMD 0x%02x",
                                       name, rk_simd_level_name((rk_simd_level)level), mode, round,
                                       (long long)b, at, w[at], g[at]);
                    }
                }
                compared += blocks;
            }
        }
    }
    cr_log_info("%s: %ld blocks byte-identical", name, compared);
    free(x);
    free(want);
    free(got);
}

static int same_bits(const float *a, const float *b, int64_t n, int64_t *where)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t ua, ub;
        memcpy(&ua, a + i, 4);
        memcpy(&ub, b + i, 4);
        if (ua != ub) {
            *where = i;
            return 0;
        }
    }
    return 1;
}

/* Dequantizes random bytes (scales of every class: NaN, Inf, subnormal) and quantized rows;
 * the SIMD floats must equal the reference floats bit for bit. */
static void check_dequantizer(const char *name)
{
    need_simd(name);
    const simd_case *c = find_case(name);
    const int64_t blocks = c->block_elems == 1 ? 4099 : c->block_elems == 32 ? 257 : 33;
    const int64_t n = blocks * c->block_elems;
    uint8_t *q = malloc((size_t)(blocks * c->block_bytes));
    float *x = malloc((size_t)n * sizeof *x), *want = malloc((size_t)n * sizeof *want),
          *got = malloc((size_t)n * sizeof *got);
    cr_assert(q && x && want && got);
    for (int level = RK_SIMD_AVX2; level <= (int)rk_cpu_simd_level(); level++) {
        for (int round = 0; round < 4 * ROUNDS; round++) {
            if (round % 2) {
                fill(x, n, round % N_MODES);
                c->ref_q(x, q, n);
            } else {
                for (int64_t i = 0; i < blocks * c->block_bytes; i++)
                    q[i] = (uint8_t)next_u64();
            }
            c->ref_d(q, want, n);
            simd_d(c, level)(q, got, n);
            int64_t at = 0;
            cr_assert(same_bits(want, got, n, &at),
                      "%s %s round %d element %lld: reference %a, SIMD %a", name,
                      rk_simd_level_name((rk_simd_level)level), round, (long long)at,
                      (double)want[at], (double)got[at]);
        }
    }
    free(q);
    free(x);
    free(want);
    free(got);
}

Test(quant_simd, q4_K)
{
    check_quantizer("Q4_K");
    check_dequantizer("Q4_K");
}
Test(quant_simd, q5_K)
{
    check_quantizer("Q5_K");
    check_dequantizer("Q5_K");
}
Test(quant_simd, q6_K)
{
    check_quantizer("Q6_K");
    check_dequantizer("Q6_K");
}
Test(quant_simd, q8_0)
{
    check_quantizer("Q8_0");
    check_dequantizer("Q8_0");
}
Test(quant_simd, q4_0)
{
    check_quantizer("Q4_0");
    check_dequantizer("Q4_0");
}
Test(quant_simd, q5_0)
{
    check_quantizer("Q5_0");
    check_dequantizer("Q5_0");
}
Test(quant_simd, f16)
{
    check_quantizer("F16");
    check_dequantizer("F16");
}
Test(quant_simd, bf16)
{
    check_quantizer("BF16");
    check_dequantizer("BF16");
}

/* Every 16-bit pattern, and every float class, through the F16 / BF16 kernels. */
Test(quant_simd, half_all_patterns)
{
    static uint8_t in[65536 * 2], out_ref[65536 * 2], out_simd[65536 * 2];
    static float want[65536], got[65536], src[65536];
    for (int i = 0; i < 65536; i++) {
        in[2 * i] = (uint8_t)i;
        in[2 * i + 1] = (uint8_t)(i >> 8);
        /* floats around every f16 / bf16 rounding point, NaNs with payloads included */
        src[i] = from_bits((uint32_t)i << 16 | (uint32_t)(next_u64() & 0xffff));
    }
    for (int level = RK_SIMD_AVX2; level <= (int)rk_cpu_simd_level(); level++) {
        for (int kind = 0; kind < 2; kind++) {
            const simd_case *c = find_case(kind ? "BF16" : "F16");
            int64_t at = 0;
            c->ref_d(in, want, 65536);
            simd_d(c, level)(in, got, 65536);
            cr_assert(same_bits(want, got, 65536, &at), "%s %s: pattern 0x%04llx", c->name,
                      rk_simd_level_name((rk_simd_level)level), (long long)at);
            c->ref_q(src, out_ref, 65536);
            simd_q(c, level)(src, out_simd, 65536);
            cr_assert(memcmp(out_ref, out_simd, sizeof out_ref) == 0, "%s %s: quantize differs",
                      c->name, rk_simd_level_name((rk_simd_level)level));
        }
    }
}

/* ---- the public API: threads and SIMD levels give the same bytes ----------------------------- */

static const char *const LEVEL_ENV[] = {"scalar", "avx2", "avx512"};

Test(quant_simd, threads_and_levels_give_identical_bytes)
{
    static const rf_dtype types[] = {
        RF_DTYPE_Q4_K, RF_DTYPE_Q5_K, RF_DTYPE_Q6_K, RF_DTYPE_Q8_0,   RF_DTYPE_Q4_0,
        RF_DTYPE_Q5_0, RF_DTYPE_Q4_1, RF_DTYPE_Q5_1, RF_DTYPE_Q2_K,   RF_DTYPE_Q3_K,
        RF_DTYPE_Q8_K, RF_DTYPE_F16,  RF_DTYPE_BF16, RF_DTYPE_APR_Q4, RF_DTYPE_APR_Q8,
    };
    static const int threads[] = {1, 2, 3, 7};
    /* 229 rows of 512: enough work that 7 threads each get a range (16K elements minimum) */
    const uint64_t rows = 229, per_row = 512, n = rows * per_row;
    float *x = malloc(n * sizeof *x);
    cr_assert(x);
    fill(x, (int64_t)n, 0);
    for (uint64_t i = 0; i < n; i += 97)
        x[i] *= 1000.0f; /* outliers in many blocks */
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        rf_error err;
        uint64_t bytes;
        cr_assert_eq(rf_quant_bytes(types[t], rows, per_row, &bytes, &err), RF_OK, "%s",
                     err.message);
        uint8_t *want = malloc(bytes), *got = malloc(bytes);
        cr_assert(want && got);
        setenv("ROSETTA_SIMD", "scalar", 1);
        rf_quant_options one = {1};
        cr_assert_eq(rf_quantize(types[t], x, want, rows, per_row, NULL, &one, &err), RF_OK, "%s",
                     err.message);
        for (int level = 0; level <= (int)rk_cpu_simd_level(); level++) {
            setenv("ROSETTA_SIMD", LEVEL_ENV[level], 1);
            for (size_t k = 0; k < sizeof threads / sizeof threads[0]; k++) {
                rf_quant_options opts = {threads[k]};
                memset(got, 0x5A, bytes);
                cr_assert_eq(rf_quantize(types[t], x, got, rows, per_row, NULL, &opts, &err), RF_OK,
                             "%s", err.message);
                cr_assert(memcmp(want, got, bytes) == 0, "%s: %s with %d threads differs",
                          rf_dtype_name(types[t]), LEVEL_ENV[level], threads[k]);
            }
        }
        unsetenv("ROSETTA_SIMD");
        free(want);
        free(got);
    }
    free(x);
}

Test(quant_simd, odd_row_counts_and_one_row)
{
    static const uint64_t shapes[][2] = {{1, 256}, {3, 256}, {5, 768}, {1, 256 * 97}, {7, 1280}};
    static const rf_dtype types[] = {RF_DTYPE_Q4_K, RF_DTYPE_Q6_K, RF_DTYPE_Q8_0, RF_DTYPE_Q5_0};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const uint64_t rows = shapes[s][0], per_row = shapes[s][1], n = rows * per_row;
        float *x = malloc(n * sizeof *x);
        cr_assert(x);
        fill(x, (int64_t)n, (int)s);
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            rf_error err;
            uint64_t bytes;
            cr_assert_eq(rf_quant_bytes(types[t], rows, per_row, &bytes, &err), RF_OK);
            uint8_t *want = malloc(bytes), *got = malloc(bytes);
            float *back_ref = malloc(n * sizeof *x), *back = malloc(n * sizeof *x);
            cr_assert(want && got && back_ref && back);
            setenv("ROSETTA_SIMD", "scalar", 1);
            cr_assert_eq(rf_quantize(types[t], x, want, rows, per_row, NULL, NULL, &err), RF_OK);
            cr_assert_eq(rf_dequantize(types[t], want, back_ref, n, &err), RF_OK);
            unsetenv("ROSETTA_SIMD");
            for (int th = 1; th <= 7; th += 3) {
                rf_quant_options opts = {th};
                cr_assert_eq(rf_quantize(types[t], x, got, rows, per_row, NULL, &opts, &err),
                             RF_OK);
                cr_assert(memcmp(want, got, bytes) == 0, "%s %llux%llu, %d threads",
                          rf_dtype_name(types[t]), (unsigned long long)rows,
                          (unsigned long long)per_row, th);
            }
            cr_assert_eq(rf_dequantize(types[t], want, back, n, &err), RF_OK);
            int64_t at = 0;
            cr_assert(same_bits(back_ref, back, (int64_t)n, &at), "%s dequantize element %lld",
                      rf_dtype_name(types[t]), (long long)at);
            free(want);
            free(got);
            free(back_ref);
            free(back);
        }
        free(x);
    }
}

/* ---- the quantizer translation units are built without contraction or fast-math */

/* NULL when every unit's compile command has -ffp-contract=off and no fast-math; otherwise
 * what is wrong (in problem, a static buffer). */
static const char *check_compile_flags(const char *text)
{
    static char problem[512];
    static const char *const units[] = {"kernels/cpu/quant_ref.c", "kernels/cpu/quant_avx2.c",
                                        "kernels/cpu/quant_avx512.c", "libformat/src/quant.c"};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        /* an entry is {"directory": ..., "command": "... -c .../unit", "file": ...}: find the
         * unit, then the start of the command before it */
        const char *file = strstr(text, units[u]);
        if (!file) {
            snprintf(problem, sizeof problem, "%s is not in compile_commands.json", units[u]);
            return problem;
        }
        const char *start = file;
        while (start > text && strncmp(start, "\"command\"", 9) != 0)
            start--;
        size_t len = (size_t)(file - start);
        const char *bad = NULL;
        if (!memmem(start, len, "-ffp-contract=off", 17))
            bad = "without -ffp-contract=off";
        else if (memmem(start, len, "-ffast-math", 11) || memmem(start, len, "-Ofast", 6) ||
                 memmem(start, len, "-ffp-contract=fast", 18))
            bad = "with fast-math or contraction";
        if (bad) {
            snprintf(problem, sizeof problem, "%s is built %s", units[u], bad);
            return problem;
        }
    }
    return NULL;
}

Test(quant_simd, quantizers_built_without_fast_math_or_contraction)
{
#ifdef __FAST_MATH__
    cr_assert_fail("the test itself was built with -ffast-math");
#endif
    char path[4096];
    snprintf(path, sizeof path, "%s/compile_commands.json", ROSETTA_BUILD);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    size_t got = text ? fread(text, 1, (size_t)size, f) : 0;
    fclose(f);
    const char *problem = "cannot read compile_commands.json";
    if (text && got == (size_t)size) {
        text[size] = 0;
        problem = check_compile_flags(text);
    }
    free(text);
    cr_assert(problem == NULL, "%s", problem);
}
