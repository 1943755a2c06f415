/* Scalar reference quantizers/dequantizers (kernels/cpu/quant_ref.c): round-trip error bounds
 * per type, bytes derived by hand for zero / constant / tie / tiny blocks, block layouts decoded
 * element by element from the formulas of docs/formats/quantization.md (written here
 * independently of quant_dequant.h), no access outside whole blocks, and a misdispatch check.
 * Byte equality with llama.cpp itself is tests/tools/quant_oracle.sh. */
#include <criterion/criterion.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/quant_ref.h"

typedef void (*quant_fn)(const float *x, void *y, int64_t k);
typedef void (*dequant_fn)(const void *x, float *y, int64_t k);

typedef struct qtype {
    const char *name;
    quant_fn quant;
    dequant_fn dequant;
    int block; /* elements per block */
    size_t block_bytes;
    double max_rel_rmse; /* bound on RMSE / RMS for N(0,1) input */
} qtype;

/* Bounds: a uniform grid of step D has RMSE D / sqrt(12); for blocks of 32 Gaussian values
 * (max |x| about 2.1) that is 0.0048 for 8 bits, 0.076 for 4 bits; the searches of the K-quants
 * do better, f16 scales add a little. Each bound is about 1.2x the value measured. */
static const qtype TYPES[] = {
    {"q4_0", rk_quantize_row_q4_0_ref, rk_dequantize_row_q4_0_ref, 32, 18, 0.10},
    {"q4_1", rk_quantize_row_q4_1_ref, rk_dequantize_row_q4_1_ref, 32, 20, 0.095},
    {"q5_0", rk_quantize_row_q5_0_ref, rk_dequantize_row_q5_0_ref, 32, 22, 0.05},
    {"q5_1", rk_quantize_row_q5_1_ref, rk_dequantize_row_q5_1_ref, 32, 24, 0.046},
    {"q8_0", rk_quantize_row_q8_0_ref, rk_dequantize_row_q8_0_ref, 32, 34, 0.0065},
    {"q8_1", rk_quantize_row_q8_1_ref, rk_dequantize_row_q8_1_ref, 32, 36, 0.0065},
    {"q2_K", rk_quantize_row_q2_K_ref, rk_dequantize_row_q2_K_ref, 256, 84, 0.35},
    {"q3_K", rk_quantize_row_q3_K_ref, rk_dequantize_row_q3_K_ref, 256, 110, 0.18},
    {"q4_K", rk_quantize_row_q4_K_ref, rk_dequantize_row_q4_K_ref, 256, 144, 0.085},
    {"q5_K", rk_quantize_row_q5_K_ref, rk_dequantize_row_q5_K_ref, 256, 176, 0.043},
    {"q6_K", rk_quantize_row_q6_K_ref, rk_dequantize_row_q6_K_ref, 256, 210, 0.021},
    {"q8_K", rk_quantize_row_q8_K_ref, rk_dequantize_row_q8_K_ref, 256, 292, 0.0085},
    {"iq4_nl", rk_quantize_row_iq4_nl_ref, rk_dequantize_row_iq4_nl_ref, 32, 18, 0.09},
    {"iq4_xs", rk_quantize_row_iq4_xs_ref, rk_dequantize_row_iq4_xs_ref, 256, 136, 0.09},
    {"apr_q4", rk_quantize_row_apr_q4_ref, rk_dequantize_row_apr_q4_ref, 32, 18, 0.115},
    {"f16", rk_quantize_row_f16_ref, rk_dequantize_row_f16_ref, 1, 2, 0.0004},
    {"bf16", rk_quantize_row_bf16_ref, rk_dequantize_row_bf16_ref, 1, 2, 0.003},
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

static uint64_t rng = 12345;

static double gauss(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    double u1 = (double)(rng >> 11) * 0x1p-53 + 0x1p-60;
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    double u2 = (double)(rng >> 11) * 0x1p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

#ifdef __FLT16_MANT_DIG__
static uint16_t f16_bits(float f) /* the compiler's conversion, independent of Rosetta's */
{
    _Float16 h = (_Float16)f;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}

static float f16_value(uint16_t u)
{
    _Float16 h;
    memcpy(&h, &u, 2);
    return (float)h;
}
#else /* clang < 15 on x86 has no _Float16: the CPU's F16C conversion, as independent */
__attribute__((target("f16c"))) static uint16_t f16_bits(float f)
{
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

__attribute__((target("f16c"))) static float f16_value(uint16_t u) { return _cvtsh_ss(u); }
#endif

static double rel_rmse(const float *x, const float *y, int n)
{
    double e = 0, r = 0;
    for (int i = 0; i < n; i++) {
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        r += (double)x[i] * x[i];
    }
    return sqrt(e / r);
}

/* ------------------------------------------------------------------ round trip */

Test(quant_ref, round_trip_error_bounds)
{
    enum { N = 256 * 64 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    uint8_t *q = malloc(N * 4 + 8);
    for (int i = 0; i < N; i++)
        x[i] = (float)gauss();
    for (size_t t = 0; t < N_TYPES; t++) {
        TYPES[t].quant(x, q, N);
        TYPES[t].dequant(q, y, N);
        double e = rel_rmse(x, y, N);
        cr_expect(e <= TYPES[t].max_rel_rmse, "%s: relative RMSE %.5f above %.5f", TYPES[t].name, e,
                  TYPES[t].max_rel_rmse);
        cr_expect(e > 0.0, "%s: a lossy type reproduced Gaussian noise exactly", TYPES[t].name);
    }
    /* APR_Q8 has one scale for the tensor: the bound follows max |x| of the whole tensor */
    rk_quantize_row_apr_q8_ref(x, q, N);
    rk_dequantize_row_apr_q8_ref(q, y, N);
    cr_expect(rel_rmse(x, y, N) <= 0.012, "apr_q8: relative RMSE %.5f", rel_rmse(x, y, N));
    free(x);
    free(y);
    free(q);
}

Test(quant_ref, weighted_paths_with_null_weights_are_the_reference)
{
    enum { ROWS = 3, COLS = 512 };
    float x[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++)
        x[i] = (float)gauss();
    struct {
        const char *name;
        quant_fn ref;
        void (*im)(const float *, void *, int64_t, int64_t, const float *);
    } pairs[] = {
        {"q4_0", rk_quantize_row_q4_0_ref, rk_quantize_row_q4_0_imatrix},
        {"q4_1", rk_quantize_row_q4_1_ref, rk_quantize_row_q4_1_imatrix},
        {"q5_0", rk_quantize_row_q5_0_ref, rk_quantize_row_q5_0_imatrix},
        {"q5_1", rk_quantize_row_q5_1_ref, rk_quantize_row_q5_1_imatrix},
        {"q2_K", rk_quantize_row_q2_K_ref, rk_quantize_row_q2_K_imatrix},
        {"q3_K", rk_quantize_row_q3_K_ref, rk_quantize_row_q3_K_imatrix},
        {"q4_K", rk_quantize_row_q4_K_ref, rk_quantize_row_q4_K_imatrix},
        {"q5_K", rk_quantize_row_q5_K_ref, rk_quantize_row_q5_K_imatrix},
        {"q6_K", rk_quantize_row_q6_K_ref, rk_quantize_row_q6_K_imatrix},
        {"iq4_nl", rk_quantize_row_iq4_nl_ref, rk_quantize_row_iq4_nl_imatrix},
        {"iq4_xs", rk_quantize_row_iq4_xs_ref, rk_quantize_row_iq4_xs_imatrix},
    };
    static uint8_t a[ROWS * COLS * 2], b[ROWS * COLS * 2];
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        memset(a, 0, sizeof a);
        memset(b, 0, sizeof b);
        pairs[p].ref(x, a, ROWS * COLS);
        pairs[p].im(x, b, ROWS, COLS, NULL);
        cr_expect(memcmp(a, b, sizeof a) == 0, "%s: imatrix(NULL) differs from the reference",
                  pairs[p].name);
    }
    /* weighted: rows are independent, so 3 rows at once equal 3 calls of one row */
    float w[COLS];
    for (int i = 0; i < COLS; i++)
        w[i] = (float)(1.0 + fabs(gauss()));
    rk_quantize_row_q4_K_imatrix(x, a, ROWS, COLS, w);
    for (int r = 0; r < ROWS; r++)
        rk_quantize_row_q4_K_imatrix(x + r * COLS, b + r * (COLS / 256) * 144, 1, COLS, w);
    cr_expect(memcmp(a, b, ROWS * (COLS / 256) * 144) == 0, "q4_K imatrix: row-by-row differs");
    /* and the weights matter */
    rk_quantize_row_q4_K_ref(x, b, ROWS * COLS);
    cr_expect(memcmp(a, b, ROWS * (COLS / 256) * 144) != 0, "q4_K imatrix: weights had no effect");
}

/* ------------------------------------------------------------------ hand-derived bytes */

static void expect_bytes(const char *what, const uint8_t *got, const uint8_t *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(got[i], want[i], "%s: byte %zu is 0x%02x, expected 0x%02x", what, i, got[i],
                     want[i]);
}

Test(quant_ref, all_zero_blocks)
{
    float x[256] = {0};
    uint8_t got[300], want[300];
    /* Q8_0: d = 0, every q = 0 */
    memset(want, 0, sizeof want);
    rk_quantize_row_q8_0_ref(x, got, 32);
    expect_bytes("q8_0 zero", got, want, 34);
    /* Q4_0: d = 0 / -8 = -0 (f16 0x8000) so id = 0; q = trunc(0 + 8.5) = 8 in both nibbles */
    want[1] = 0x80;
    memset(want + 2, 0x88, 16);
    rk_quantize_row_q4_0_ref(x, got, 32);
    expect_bytes("q4_0 zero", got, want, 18);
    /* Q5_0: d = -0 as Q4_0; q = trunc(16.5) = 16: low nibbles 0, every fifth bit set */
    memset(want, 0, sizeof want);
    want[1] = 0x80;
    memset(want + 2, 0xff, 4);
    rk_quantize_row_q5_0_ref(x, got, 32);
    expect_bytes("q5_0 zero", got, want, 22);
    /* Q4_1 / Q5_1: d = 0, m = 0, q = 0 */
    memset(want, 0, sizeof want);
    rk_quantize_row_q4_1_ref(x, got, 32);
    expect_bytes("q4_1 zero", got, want, 20);
    rk_quantize_row_q5_1_ref(x, got, 32);
    expect_bytes("q5_1 zero", got, want, 24);
    rk_quantize_row_q8_1_ref(x, got, 32);
    expect_bytes("q8_1 zero", got, want, 36);
    /* K-quants: every field zero (Q3_K keeps L = 0 without the +4 offset: hmask stays clear) */
    const struct {
        const char *name;
        quant_fn f;
        size_t n;
    } k[] = {
        {"q2_K", rk_quantize_row_q2_K_ref, 84},  {"q3_K", rk_quantize_row_q3_K_ref, 110},
        {"q4_K", rk_quantize_row_q4_K_ref, 144}, {"q5_K", rk_quantize_row_q5_K_ref, 176},
        {"q6_K", rk_quantize_row_q6_K_ref, 210}, {"q8_K", rk_quantize_row_q8_K_ref, 292},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        memset(got, 0x5a, sizeof got);
        k[i].f(x, got, 256);
        expect_bytes(k[i].name, got, want, k[i].n);
    }
}

Test(quant_ref, constant_and_tie_blocks)
{
    float x[32];
    uint8_t got[40], want[40];
    /* Q4_0 of 2.0: d = 2 / -8 = -0.25, x * (1/d) = -8, trunc(-8 + 8.5) = 0 */
    for (int i = 0; i < 32; i++)
        x[i] = 2.0f;
    rk_quantize_row_q4_0_ref(x, got, 32);
    memset(want, 0, sizeof want);
    want[0] = (uint8_t)(f16_bits(-0.25f) & 0xff);
    want[1] = (uint8_t)(f16_bits(-0.25f) >> 8);
    expect_bytes("q4_0 constant 2", got, want, 18);
    /* Q8_0 of 1.0: d = 1/127 (f16), 1 / (1/127) rounds to 127 */
    for (int i = 0; i < 32; i++)
        x[i] = 1.0f;
    rk_quantize_row_q8_0_ref(x, got, 32);
    const uint16_t d127 = f16_bits(1.0f / 127.0f);
    cr_expect_eq(got[0] | (got[1] << 8), d127, "q8_0 d of a constant block");
    for (int i = 0; i < 32; i++)
        cr_expect_eq(got[2 + i], 127, "q8_0 constant q[%d]", i);
    /* Q8_0 ties round half away from zero: max 127 gives d = 1, id = 1 */
    x[0] = 127.0f;
    x[1] = 2.5f;
    x[2] = -2.5f;
    x[3] = 0.5f;
    x[4] = -0.5f;
    x[5] = 126.5f;
    rk_quantize_row_q8_0_ref(x, got, 32);
    cr_expect_eq(got[0] | (got[1] << 8), 0x3c00, "q8_0 d = 1.0");
    cr_expect_eq((int8_t)got[3], 3);
    cr_expect_eq((int8_t)got[4], -3);
    cr_expect_eq((int8_t)got[5], 1);
    cr_expect_eq((int8_t)got[6], -1);
    cr_expect_eq((int8_t)got[7], 127);
    /* Q4_0 ties: max -8 gives d = 1; v = x + 8.5 truncated = round half up of x + 8 */
    for (int i = 0; i < 32; i++)
        x[i] = 0.0f;
    x[0] = -8.0f;
    x[1] = -0.5f; /* 8.0 -> 8 */
    x[2] = 0.5f;  /* 9.0 -> 9 */
    x[3] = -1.5f; /* 7.0 -> 7 */
    x[16] = 7.5f; /* 16.0 -> 16, clamped to 15 */
    rk_quantize_row_q4_0_ref(x, got, 32);
    cr_expect_eq(got[0] | (got[1] << 8), 0x3c00, "q4_0 d = 1.0");
    cr_expect_eq(got[2], 0xf0, "q4_0 element 0 (nibble 0) and element 16 (nibble 15)");
    cr_expect_eq(got[3], 0x88);
    cr_expect_eq(got[4], 0x89);
    cr_expect_eq(got[5], 0x87);
}

Test(quant_ref, tiny_blocks_store_zero_quants)
{
    /* All-subnormal block: d is nonzero but 1/d overflows to Inf; the x86-64 reference stores
     * quant 0 (docs/formats/quantization.md) and f16(d) underflows to a signed zero. */
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = 1e-40f * (float)(i + 1); /* max 3.2e-40: |d| < 2^-128 for Q4_0, Q5_0 and Q8_0 */
    uint8_t got[40];
    rk_quantize_row_q4_0_ref(x, got, 32);
    cr_expect_eq(got[0] | (got[1] << 8), 0x8000, "q4_0 d = -0 (max positive, d = max / -8)");
    for (int i = 2; i < 18; i++)
        cr_expect_eq(got[i], 0, "q4_0 tiny: byte %d", i);
    rk_quantize_row_q8_0_ref(x, got, 32);
    cr_expect_eq(got[0] | (got[1] << 8), 0x0000);
    for (int i = 2; i < 34; i++)
        cr_expect_eq(got[i], 0, "q8_0 tiny: byte %d", i);
    rk_quantize_row_q5_0_ref(x, got, 32);
    for (int i = 2; i < 22; i++)
        cr_expect_eq(got[i], 0, "q5_0 tiny: byte %d (qh too)", i);
}

/* ------------------------------------------------------------------ layouts, element by element */

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(rng >> 56);
    }
}

static void set_f16(uint8_t *p, float v)
{
    uint16_t u = f16_bits(v);
    p[0] = (uint8_t)(u & 0xff);
    p[1] = (uint8_t)(u >> 8);
}

static float get_f16(const uint8_t *p) { return f16_value((uint16_t)(p[0] | (p[1] << 8))); }

static void expect_floats(const char *what, const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++)
        cr_expect_eq(bits(got[i]), bits(want[i]), "%s: element %d is %a, expected %a", what, i,
                     (double)got[i], (double)want[i]);
}

Test(quant_ref, layout_q4_0_q5_0_split_halves)
{
    uint8_t b[22];
    float y[32], want[32];
    fill_random(b, sizeof b);
    set_f16(b, 0.5f);
    rk_dequantize_row_q4_0_ref(b, y, 32);
    for (int j = 0; j < 16; j++) {
        want[j] = (float)((b[2 + j] & 15) - 8) * 0.5f;
        want[j + 16] = (float)((b[2 + j] >> 4) - 8) * 0.5f;
    }
    expect_floats("q4_0", y, want, 32);

    fill_random(b, sizeof b);
    set_f16(b, 0.25f);
    const uint32_t qh =
        (uint32_t)b[2] | ((uint32_t)b[3] << 8) | ((uint32_t)b[4] << 16) | ((uint32_t)b[5] << 24);
    rk_dequantize_row_q5_0_ref(b, y, 32);
    for (int e = 0; e < 32; e++) {
        const int nib = e < 16 ? (b[6 + e] & 15) : (b[6 + e - 16] >> 4);
        want[e] = (float)((nib | (int)(((qh >> e) & 1) << 4)) - 16) * 0.25f;
    }
    expect_floats("q5_0", y, want, 32);
}

/* Q4_K scales by the rule of docs/formats/quantization.md */
static void k4_unpack(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

Test(quant_ref, layout_q4_K_nibbles_and_scales)
{
    /* Hand-packed scales with every 6-bit field distinct and using its top bits. */
    const int sc[8] = {1, 2, 3, 4, 33, 45, 50, 63};
    const int mn[8] = {5, 6, 7, 8, 40, 41, 62, 17};
    uint8_t b[144] = {0};
    set_f16(b, 1.0f);
    set_f16(b + 2, 0.5f);
    uint8_t *s = b + 4;
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
    for (int j = 0; j < 8; j++) {
        int a, m;
        k4_unpack(s, j, &a, &m);
        cr_assert_eq(a, sc[j], "scale %d", j);
        cr_assert_eq(m, mn[j], "min %d", j);
    }
    /* element 64c + l in the low nibble of qs[32c + l], 64c + 32 + l in the high nibble */
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            b[16 + 32 * c + l] = (uint8_t)((l % 16) | (((l + 5) % 16) << 4));
    float y[256], want[256];
    rk_dequantize_row_q4_K_ref(b, y, 256);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            want[64 * c + l] = 1.0f * (float)sc[2 * c] * (float)(l % 16) - 0.5f * (float)mn[2 * c];
            want[64 * c + 32 + l] =
                1.0f * (float)sc[2 * c + 1] * (float)((l + 5) % 16) - 0.5f * (float)mn[2 * c + 1];
        }
    expect_floats("q4_K", y, want, 256);
    /* element 0..31 are the low nibbles of bytes 0..31 of qs: changing a high nibble of qs[0]
     * changes element 32, not element 1 */
    b[16] ^= 0x30;
    float y2[256];
    rk_dequantize_row_q4_K_ref(b, y2, 256);
    cr_expect_eq(bits(y2[1]), bits(y[1]));
    cr_expect_neq(bits(y2[32]), bits(y[32]));
}

Test(quant_ref, layout_k_quants_element_formulas)
{
    /* Random blocks with a finite f16 super-scale, decoded with the element formulas of
     * docs/formats/quantization.md */
    uint8_t b[292];
    float y[256], want[256];
    for (int round = 0; round < 20; round++) {
        /* Q2_K: scales[16] qs[64] d dmin */
        fill_random(b, 84);
        set_f16(b + 80, 0.75f);
        set_f16(b + 82, 0.125f);
        rk_dequantize_row_q2_K_ref(b, y, 256);
        for (int e = 0; e < 256; e++) {
            const int h = e / 128, j = (e % 128) / 32, l = e % 32;
            const int q = (b[16 + 32 * h + l] >> (2 * j)) & 3;
            const uint8_t s = b[8 * h + 2 * j + l / 16];
            want[e] = 0.75f * (float)(s & 15) * (float)q - 0.125f * (float)(s >> 4);
        }
        expect_floats("q2_K", y, want, 256);

        /* Q3_K: hmask[32] qs[64] scales[12] d */
        fill_random(b, 110);
        set_f16(b + 108, -0.375f);
        rk_dequantize_row_q3_K_ref(b, y, 256);
        for (int e = 0; e < 256; e++) {
            const int h = e / 128, j = (e % 128) / 32, l = e % 32;
            const int low2 = (b[32 + 32 * h + l] >> (2 * j)) & 3;
            const int hbit = (b[l] >> (4 * h + j)) & 1;
            const int q = low2 - (hbit ? 0 : 4);
            const int s = 8 * h + 2 * j + l / 16;
            const uint8_t *sc = b + 96;
            const int low4 = s < 8 ? (sc[s] & 15) : (sc[s - 8] >> 4);
            const int high2 = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
            want[e] = -0.375f * (float)((low4 | (high2 << 4)) - 32) * (float)q;
        }
        expect_floats("q3_K", y, want, 256);

        /* Q5_K: d dmin scales[12] qh[32] qs[128] */
        fill_random(b, 176);
        set_f16(b, 0.0625f);
        set_f16(b + 2, 0.5f);
        rk_dequantize_row_q5_K_ref(b, y, 256);
        for (int e = 0; e < 256; e++) {
            const int c = e / 64, hi = (e % 64) / 32, l = e % 32;
            const int nib = hi ? (b[48 + 32 * c + l] >> 4) : (b[48 + 32 * c + l] & 15);
            const int bit = (b[16 + l] >> (2 * c + hi)) & 1;
            int sc, m;
            k4_unpack(b + 4, 2 * c + hi, &sc, &m);
            want[e] = 0.0625f * (float)sc * (float)(nib + 16 * bit) - 0.5f * (float)m;
        }
        expect_floats("q5_K", y, want, 256);

        /* Q6_K: ql[128] qh[64] scales[16] d */
        fill_random(b, 210);
        set_f16(b + 208, 0.01f);
        rk_dequantize_row_q6_K_ref(b, y, 256);
        for (int e = 0; e < 256; e++) {
            const int h = e / 128, t = (e % 128) / 32, l = e % 32;
            int low4;
            switch (t) {
            case 0: low4 = b[64 * h + l] & 15; break;
            case 1: low4 = b[64 * h + 32 + l] & 15; break;
            case 2: low4 = b[64 * h + l] >> 4; break;
            default: low4 = b[64 * h + 32 + l] >> 4; break;
            }
            const int high2 = (b[128 + 32 * h + l] >> (2 * t)) & 3;
            const int q = (low4 | (high2 << 4)) - 32;
            const int8_t s = (int8_t)b[192 + 8 * h + l / 16 + 2 * t];
            want[e] = get_f16(b + 208) * (float)s * (float)q;
        }
        expect_floats("q6_K", y, want, 256);

        /* Q8_K: d (f32) qs[256] bsums */
        fill_random(b, 292);
        const float d = 0.03125f;
        memcpy(b, &d, 4);
        rk_dequantize_row_q8_K_ref(b, y, 256);
        for (int e = 0; e < 256; e++)
            want[e] = d * (float)(int8_t)b[4 + e];
        expect_floats("q8_K", y, want, 256);
    }
}

Test(quant_ref, quantized_q8_K_bsums_and_q8_1_sum)
{
    float x[256];
    for (int i = 0; i < 256; i++)
        x[i] = (float)gauss();
    uint8_t b[292];
    rk_quantize_row_q8_K_ref(x, b, 256);
    for (int g = 0; g < 16; g++) {
        int sum = 0;
        for (int i = 0; i < 16; i++)
            sum += (int8_t)b[4 + 16 * g + i];
        cr_expect_eq((int16_t)(b[260 + 2 * g] | (b[261 + 2 * g] << 8)), sum, "bsums[%d]", g);
    }
    rk_quantize_row_q8_1_ref(x, b, 32);
    int sum = 0;
    for (int i = 0; i < 32; i++)
        sum += (int8_t)b[4 + i];
    const float s = get_f16(b + 2), want = (float)sum * get_f16(b);
    cr_expect(fabsf(s - want) <= fabsf(want) * 0x1p-10f + 1e-6f, "q8_1 s = d * sum(q): %g vs %g",
              (double)s, (double)want);
}

Test(quant_ref, f16_nan_comes_out_quiet)
{
    const uint8_t h[4] = {0x01, 0x7c, 0x00, 0xfe}; /* 0x7c01 signalling, 0xfe00 quiet negative */
    float y[2];
    rk_dequantize_row_f16_ref(h, y, 2);
    cr_expect_eq(bits(y[0]), 0x7fc02000u);
    cr_expect_eq(bits(y[1]), 0xffc00000u);
    const float nan_payload = y[0];
    uint8_t back[2];
    rk_quantize_row_f16_ref(&nan_payload, back, 1);
    cr_expect_eq(back[0] | (back[1] << 8), 0x7e00,
                 "f32 NaN -> f16 sign | 0x7E00 (payload dropped)");
}

/* ------------------------------------------------------------------ APR */

Test(quant_ref, apr_q4_interleaved_and_partial)
{
    /* max |x| = 7 -> scale 1.0; round half away from zero; element 2k in the low nibble */
    const float x[5] = {7.0f, -7.0f, 3.5f, -3.5f, 0.4f};
    uint8_t b[18];
    memset(b, 0xee, sizeof b);
    rk_quantize_row_apr_q4_ref(x, b, 5);
    const uint8_t want[18] = {0x00, 0x3c, (uint8_t)(15 | (1 << 4)), (uint8_t)(12 | (4 << 4)), 8};
    expect_bytes("apr_q4", b, want, 18);
    float y[5];
    rk_dequantize_row_apr_q4_ref(b, y, 5);
    const float yw[5] = {7.0f, -7.0f, 4.0f, -4.0f, 0.0f};
    expect_floats("apr_q4 decode", y, yw, 5);
}

Test(quant_ref, apr_q8_tensor_scale)
{
    const float x[4] = {0.0f, 127.0f, -63.5f, 1.2f};
    uint8_t b[8];
    rk_quantize_row_apr_q8_ref(x, b, 4);
    const uint8_t want[8] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x7f, 0xc0, 0x01};
    expect_bytes("apr_q8", b, want, 8);
    const float z[3] = {0.0f, 0.0f, 0.0f};
    rk_quantize_row_apr_q8_ref(z, b, 3);
    const uint8_t wz[7] = {0x00, 0x00, 0x80, 0x3f, 0, 0, 0}; /* all zero: scale 1.0 */
    expect_bytes("apr_q8 zero", b, wz, 7);
}

/* ------------------------------------------------------------------ bounds and dispatch */

Test(quant_ref, only_whole_blocks_are_touched)
{
    for (size_t t = 0; t < N_TYPES; t++) {
        const qtype *q = &TYPES[t];
        if (q->block == 1 || strncmp(q->name, "apr", 3) == 0)
            continue;
        const int nb = 3;
        const int k = nb * q->block + q->block / 2 + 1; /* a partial block at the end is ignored */
        float *x = malloc((size_t)k * sizeof(float));
        float *y = malloc((size_t)k * sizeof(float));
        uint8_t *b = malloc((size_t)nb * q->block_bytes + 16);
        for (int i = 0; i < k; i++)
            x[i] = (float)gauss();
        memset(b, 0xcd, (size_t)nb * q->block_bytes + 16);
        q->quant(x, b, k);
        for (size_t i = (size_t)nb * q->block_bytes; i < (size_t)nb * q->block_bytes + 16; i++)
            cr_expect_eq(b[i], 0xcd, "%s: quantize wrote past the last whole block (byte %zu)",
                         q->name, i);
        for (int i = 0; i < k; i++)
            y[i] = -12345.0f;
        q->dequant(b, y, k);
        for (int i = nb * q->block; i < k; i++)
            cr_expect_eq(y[i], -12345.0f, "%s: dequantize wrote element %d of a partial block",
                         q->name, i);
        free(x);
        free(y);
        free(b);
    }
}

Test(quant_ref, wrong_kernel_gives_large_error)
{
    /* Q6_K bytes read by the Q4_K decoder, Q4_K bytes by the Q8_0 decoder: a misdispatch must be
     * visible (> 50 % relative error), which is what makes the exact-type tests meaningful. */
    enum { N = 256 * 8 };
    static float x[N], y[N];
    static uint8_t b[N * 2];
    for (int i = 0; i < N; i++)
        x[i] = (float)gauss();
    rk_quantize_row_q6_K_ref(x, b, N);
    rk_dequantize_row_q4_K_ref(b, y, N);
    double e = rel_rmse(x, y, N);
    cr_expect(!(e <= 0.5), "Q6_K bytes through the Q4_K decoder: relative error only %.3f", e);
    rk_quantize_row_q4_K_ref(x, b, N);
    rk_dequantize_row_q8_0_ref(b, y, N);
    e = rel_rmse(x, y, N);
    cr_expect(!(e <= 0.5), "Q4_K bytes through the Q8_0 decoder: relative error only %.3f", e);
    rk_dequantize_row_q4_K_ref(b, y, N);
    cr_expect(rel_rmse(x, y, N) < 0.1, "the right decoder is accurate");
}
