/* The public quantization API (rosetta/quant.h): capability flags against the dtype table,
 * sizes, argument checks and their messages, values of the plain dtypes, the importance-matrix
 * rules, rf_tensor_dequantize, and a round-trip error net per quantized type. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/quant_ref.h"
#include "rosetta/half.h"
#include "rosetta/quant.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static float gauss(void)
{
    float u[2];
    for (int i = 0; i < 2; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        u[i] = (float)(rng_state >> 40) / 16777216.0f;
    }
    return sqrtf(-2.0f * logf(u[0] + 1e-7f)) * cosf(6.2831853f * u[1]);
}

Test(quant_api, capabilities_match_the_dtype_table)
{
    int n_deq = 0, n_q = 0;
    for (int v = 0; v < 256; v++) {
        if (!rf_dtype_valid(v))
            continue;
        const rf_dtype_info *info = rf_dtype_get((rf_dtype)v);
        bool deq = (info->flags & RF_DTYPE_CAN_DEQUANTIZE) != 0;
        bool q = (info->flags & RF_DTYPE_CAN_QUANTIZE) != 0;
        cr_assert_eq(rf_can_dequantize(info->dtype), deq, "%s: CAN_DEQUANTIZE flag %d, API %d",
                     info->name, deq, rf_can_dequantize(info->dtype));
        cr_assert_eq(rf_can_quantize(info->dtype), q, "%s: CAN_QUANTIZE flag %d, API %d",
                     info->name, q, rf_can_quantize(info->dtype));
        n_deq += deq;
        n_q += q;
    }
    /* issue 5: 4 float + 9 integer/BOOL + 14 GGML quantized + 2 APR dequantizers; 16 quantizers */
    cr_assert_eq(n_deq, 29, "%d dequantizable dtypes", n_deq);
    cr_assert_eq(n_q, 16, "%d quantizable dtypes", n_q);
}

Test(quant_api, unsupported_dtypes_fail_clearly_and_leave_dst_alone)
{
    static const rf_dtype types[] = {RF_DTYPE_IQ2_XXS, RF_DTYPE_IQ1_M,   RF_DTYPE_TQ2_0,
                                     RF_DTYPE_MXFP4,   RF_DTYPE_F8_E4M3, RF_DTYPE_C64};
    uint8_t src[1024] = {0};
    float dst[256];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const rf_dtype_info *info = rf_dtype_get(types[i]);
        for (int j = 0; j < 256; j++)
            dst[j] = 42.0f;
        rf_error err;
        cr_assert_eq(rf_dequantize(types[i], src, dst, info->block_elems, &err),
                     RF_ERR_UNSUPPORTED);
        char want[64];
        snprintf(want, sizeof want, "unsupported dtype %s", info->name);
        cr_assert(strstr(err.message, want), "message \"%s\" lacks \"%s\"", err.message, want);
        for (int j = 0; j < 256; j++)
            cr_assert_eq(dst[j], 42.0f, "%s wrote into dst", info->name);
        float x[256] = {0};
        cr_assert_eq(rf_quantize(types[i], x, src, 1, info->block_elems, NULL, NULL, &err),
                     RF_ERR_UNSUPPORTED);
        cr_assert(strstr(err.message, want), "%s", err.message);
    }
    rf_error err;
    float x[32] = {0};
    cr_assert_eq(rf_quantize(RF_DTYPE_IQ4_NL, x, src, 1, 32, NULL, NULL, &err), RF_ERR_UNSUPPORTED);
    cr_assert_eq(rf_dequantize((rf_dtype)5, src, dst, 32, &err), RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "unknown dtype 5"), "%s", err.message);
}

Test(quant_api, row_sizes)
{
    static const struct {
        rf_dtype dtype;
        uint64_t n, bytes;
    } ok[] = {
        {RF_DTYPE_Q4_K, 512, 288}, {RF_DTYPE_Q6_K, 256, 210}, {RF_DTYPE_Q8_0, 64, 68},
        {RF_DTYPE_Q5_0, 896, 616}, {RF_DTYPE_F16, 3, 6},      {RF_DTYPE_F32, 5, 20},
        {RF_DTYPE_APR_Q4, 33, 36}, {RF_DTYPE_APR_Q8, 10, 14}, {RF_DTYPE_APR_Q8, 0, 0},
        {RF_DTYPE_Q8_K, 256, 292}, {RF_DTYPE_BF16, 1, 2},     {RF_DTYPE_Q2_K, 256, 84},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t bytes = 0;
        rf_error err;
        cr_assert_eq(rf_quant_row_bytes(ok[i].dtype, ok[i].n, &bytes, &err), RF_OK, "%s",
                     err.message);
        cr_assert_eq(bytes, ok[i].bytes, "%s x %llu: %llu bytes", rf_dtype_name(ok[i].dtype),
                     (unsigned long long)ok[i].n, (unsigned long long)bytes);
    }
    uint64_t bytes;
    rf_error err;
    cr_assert_eq(rf_quant_bytes(RF_DTYPE_Q4_K, 3, 512, &bytes, &err), RF_OK);
    cr_assert_eq(bytes, 3 * 288);
    cr_assert_eq(rf_quant_bytes(RF_DTYPE_APR_Q4, 3, 11, &bytes, &err), RF_OK);
    cr_assert_eq(bytes, 2 * 18, "APR_Q4 is flat: 33 elements in 2 blocks");
    cr_assert_eq(rf_quant_bytes(RF_DTYPE_APR_Q8, 3, 11, &bytes, &err), RF_OK);
    cr_assert_eq(bytes, 4 + 33);
    cr_assert_eq(rf_quant_bytes(RF_DTYPE_Q8_0, UINT64_MAX / 2, 64, &bytes, &err), RF_ERR_OVERFLOW);
}

Test(quant_api, rows_must_be_whole_blocks)
{
    float x[1000] = {0};
    uint8_t y[1000];
    rf_error err;
    cr_assert_eq(rf_quantize(RF_DTYPE_Q4_K, x, y, 1, 100, NULL, NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "100") && strstr(err.message, "Q4_K") &&
                  strstr(err.message, "256"),
              "%s", err.message);
    cr_assert_eq(rf_quantize(RF_DTYPE_Q8_0, x, y, 2, 48, NULL, NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "48") && strstr(err.message, "32"), "%s", err.message);
    cr_assert_eq(rf_quant_row_bytes(RF_DTYPE_Q6_K, 896, (uint64_t[1]){0}, &err), RF_ERR_ARGUMENT);
    cr_assert_eq(rf_dequantize(RF_DTYPE_Q4_0, y, x, 40, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "40") && strstr(err.message, "Q4_0"), "%s", err.message);
    rf_quant_options opts = {-2};
    cr_assert_eq(rf_quantize(RF_DTYPE_Q8_0, x, y, 1, 32, NULL, &opts, &err), RF_ERR_ARGUMENT);
    cr_assert_eq(rf_quantize(RF_DTYPE_Q8_0, NULL, y, 1, 32, NULL, NULL, &err), RF_ERR_ARGUMENT);
    /* nothing to do is fine, even without buffers */
    cr_assert_eq(rf_quantize(RF_DTYPE_Q8_0, NULL, NULL, 0, 32, NULL, NULL, &err), RF_OK);
    cr_assert_eq(rf_dequantize(RF_DTYPE_Q8_0, NULL, NULL, 0, &err), RF_OK);
}

Test(quant_api, plain_values)
{
    rf_error err;
    float y[8];
    const int8_t i8[] = {-128, 127, 0, -1};
    cr_assert_eq(rf_dequantize(RF_DTYPE_I8, i8, y, 4, &err), RF_OK);
    cr_assert(y[0] == -128.0f && y[1] == 127.0f && y[2] == 0.0f && y[3] == -1.0f);
    const uint64_t u64[] = {UINT64_MAX, 16777217u};
    cr_assert_eq(rf_dequantize(RF_DTYPE_U64, u64, y, 2, &err), RF_OK);
    cr_assert(y[0] == 18446744073709551616.0f && y[1] == 16777216.0f, "%a %a", (double)y[0],
              (double)y[1]);
    const int64_t i64[] = {INT64_MIN, -3};
    cr_assert_eq(rf_dequantize(RF_DTYPE_I64, i64, y, 2, &err), RF_OK);
    cr_assert(y[0] == -9223372036854775808.0f && y[1] == -3.0f);
    const double f64[] = {1e300, -0.0, 0.1, 1e-50};
    cr_assert_eq(rf_dequantize(RF_DTYPE_F64, f64, y, 4, &err), RF_OK);
    cr_assert(isinf(y[0]) && y[1] == 0.0f && signbit(y[1]) && y[2] == 0.1f && y[3] == 0.0f);
    const uint8_t b[] = {0, 1, 2, 255};
    cr_assert_eq(rf_dequantize(RF_DTYPE_BOOL, b, y, 4, &err), RF_OK);
    cr_assert(y[0] == 0.0f && y[1] == 1.0f && y[2] == 1.0f && y[3] == 1.0f);
    const uint16_t u16[] = {65535, 7};
    cr_assert_eq(rf_dequantize(RF_DTYPE_U16, u16, y, 2, &err), RF_OK);
    cr_assert(y[0] == 65535.0f && y[1] == 7.0f);
    const int16_t i16[] = {-32768, 5};
    cr_assert_eq(rf_dequantize(RF_DTYPE_I16, i16, y, 2, &err), RF_OK);
    cr_assert(y[0] == -32768.0f && y[1] == 5.0f);
    const uint32_t u32[] = {4294967295u, 3};
    cr_assert_eq(rf_dequantize(RF_DTYPE_U32, u32, y, 2, &err), RF_OK);
    cr_assert(y[0] == 4294967296.0f && y[1] == 3.0f);
    const int32_t i32[] = {-2147483647 - 1, 16777217};
    cr_assert_eq(rf_dequantize(RF_DTYPE_I32, i32, y, 2, &err), RF_OK);
    cr_assert(y[0] == -2147483648.0f && y[1] == 16777216.0f);
    /* unaligned source */
    uint8_t raw[1 + 4 * 2];
    float one = 1.5f, two = -2.25f;
    memcpy(raw + 1, &one, 4);
    memcpy(raw + 5, &two, 4);
    cr_assert_eq(rf_dequantize(RF_DTYPE_F32, raw + 1, y, 2, &err), RF_OK);
    cr_assert(y[0] == 1.5f && y[1] == -2.25f);
    /* F32 quantizes to itself; F16 and BF16 to their rounding */
    float x[3] = {1.0f / 3.0f, 65504.0f, -1e-8f};
    float back[3];
    uint8_t h[6];
    cr_assert_eq(rf_quantize(RF_DTYPE_F16, x, h, 1, 3, NULL, NULL, &err), RF_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(h[2 * i] | h[2 * i + 1] << 8, rf_f32_to_f16(x[i]));
    cr_assert_eq(rf_quantize(RF_DTYPE_BF16, x, h, 3, 1, NULL, NULL, &err), RF_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(h[2 * i] | h[2 * i + 1] << 8, rf_f32_to_bf16(x[i]));
    cr_assert_eq(rf_quantize(RF_DTYPE_F32, x, back, 1, 3, NULL, NULL, &err), RF_OK);
    cr_assert(memcmp(x, back, sizeof x) == 0);
}

Test(quant_api, importance_matrix_rules)
{
    enum { ROWS = 3, COLS = 512 };
    static float x[ROWS * COLS], imatrix[COLS];
    for (int i = 0; i < ROWS * COLS; i++)
        x[i] = gauss();
    for (int i = 0; i < COLS; i++)
        imatrix[i] = 0.1f + fabsf(gauss());
    static uint8_t a[ROWS * COLS * 4 + 4], b[ROWS * COLS * 4 + 4];
    rf_error err;
    /* refused where llama.cpp has no weighted path Rosetta reproduces */
    static const rf_dtype refused[] = {RF_DTYPE_Q8_K, RF_DTYPE_APR_Q4, RF_DTYPE_APR_Q8};
    for (size_t t = 0; t < sizeof refused / sizeof refused[0]; t++) {
        cr_assert(!rf_quant_uses_imatrix(refused[t]));
        cr_assert_eq(rf_quantize(refused[t], x, a, ROWS, COLS, imatrix, NULL, &err),
                     RF_ERR_UNSUPPORTED);
        cr_assert(strstr(err.message, rf_dtype_name(refused[t])) &&
                      strstr(err.message, "importance"),
                  "%s", err.message);
    }
    /* ignored, as llama.cpp ignores it */
    static const rf_dtype ignored[] = {RF_DTYPE_Q8_0, RF_DTYPE_F16, RF_DTYPE_BF16, RF_DTYPE_F32};
    for (size_t t = 0; t < sizeof ignored / sizeof ignored[0]; t++) {
        uint64_t bytes;
        cr_assert(!rf_quant_uses_imatrix(ignored[t]));
        cr_assert_eq(rf_quant_bytes(ignored[t], ROWS, COLS, &bytes, &err), RF_OK);
        cr_assert_eq(rf_quantize(ignored[t], x, a, ROWS, COLS, imatrix, NULL, &err), RF_OK);
        cr_assert_eq(rf_quantize(ignored[t], x, b, ROWS, COLS, NULL, NULL, &err), RF_OK);
        cr_assert(memcmp(a, b, bytes) == 0, "%s", rf_dtype_name(ignored[t]));
    }
    /* used: the reference weighted kernel's bytes (tests/oracle proves them against llama.cpp),
     * for any thread count, and different from the unweighted bytes */
    static const struct {
        rf_dtype dtype;
        void (*ref)(const float *, void *, int64_t, int64_t, const float *);
    } used[] = {
        {RF_DTYPE_Q4_0, rk_quantize_row_q4_0_imatrix},
        {RF_DTYPE_Q4_1, rk_quantize_row_q4_1_imatrix},
        {RF_DTYPE_Q5_0, rk_quantize_row_q5_0_imatrix},
        {RF_DTYPE_Q5_1, rk_quantize_row_q5_1_imatrix},
        {RF_DTYPE_Q2_K, rk_quantize_row_q2_K_imatrix},
        {RF_DTYPE_Q3_K, rk_quantize_row_q3_K_imatrix},
        {RF_DTYPE_Q4_K, rk_quantize_row_q4_K_imatrix},
        {RF_DTYPE_Q5_K, rk_quantize_row_q5_K_imatrix},
        {RF_DTYPE_Q6_K, rk_quantize_row_q6_K_imatrix},
    };
    for (size_t t = 0; t < sizeof used / sizeof used[0]; t++) {
        uint64_t bytes;
        cr_assert(rf_quant_uses_imatrix(used[t].dtype));
        cr_assert_eq(rf_quant_bytes(used[t].dtype, ROWS, COLS, &bytes, &err), RF_OK);
        used[t].ref(x, a, ROWS, COLS, imatrix);
        for (int th = 1; th <= 3; th++) {
            rf_quant_options opts = {th};
            memset(b, 0, sizeof b);
            cr_assert_eq(rf_quantize(used[t].dtype, x, b, ROWS, COLS, imatrix, &opts, &err), RF_OK);
            cr_assert(memcmp(a, b, bytes) == 0, "%s with imatrix, %d threads",
                      rf_dtype_name(used[t].dtype), th);
        }
        cr_assert_eq(rf_quantize(used[t].dtype, x, b, ROWS, COLS, NULL, NULL, &err), RF_OK);
        cr_assert(memcmp(a, b, bytes) != 0, "%s: the imatrix changed nothing",
                  rf_dtype_name(used[t].dtype));
    }
}

Test(quant_api, tensor_dequantize_checks_the_size)
{
    float x[512], y[512], z[512];
    for (int i = 0; i < 512; i++)
        x[i] = gauss();
    uint8_t q[288];
    rf_error err;
    cr_assert_eq(rf_quantize(RF_DTYPE_Q4_K, x, q, 2, 256, NULL, NULL, &err), RF_OK);
    rf_tensor t = {.name = "blk.0.ffn_up.weight",
                   .dtype = RF_DTYPE_Q4_K,
                   .ndim = 2,
                   .shape = {2, 256},
                   .data = q,
                   .nbytes = 288};
    cr_assert_eq(rf_tensor_dequantize(&t, y, &err), RF_OK, "%s", err.message);
    cr_assert_eq(rf_dequantize(RF_DTYPE_Q4_K, q, z, 512, &err), RF_OK);
    cr_assert(memcmp(y, z, sizeof y) == 0);
    t.nbytes = 287;
    cr_assert_eq(rf_tensor_dequantize(&t, y, &err), RF_ERR_FORMAT);
    cr_assert(strstr(err.message, "blk.0.ffn_up.weight") && strstr(err.message, "287") &&
                  strstr(err.message, "288"),
              "%s", err.message);
    t.nbytes = 288;
    t.shape[1] = 128; /* rows of 128 cannot be Q4_K */
    cr_assert_eq(rf_tensor_dequantize(&t, y, &err), RF_ERR_FORMAT);
    cr_assert(strstr(err.message, "blk.0.ffn_up.weight"), "%s", err.message);
    t.shape[1] = 256;
    t.dtype = RF_DTYPE_IQ3_S;
    t.nbytes = 2 * 110;
    cr_assert_eq(rf_tensor_dequantize(&t, y, &err), RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "blk.0.ffn_up.weight") &&
                  strstr(err.message, "unsupported dtype IQ3_S"),
              "%s", err.message);
}

/* Round trip F32 -> type -> F32 on Gaussian rows: relative RMSE below a bound per type (ggml's
 * own tolerances are of this size); catches a dispatch to the wrong kernel. */
Test(quant_api, round_trip_error_net)
{
    static const struct {
        rf_dtype dtype;
        double max_rel_rmse;
    } cases[] = {
        {RF_DTYPE_Q8_0, 0.01},  {RF_DTYPE_Q4_0, 0.15},   {RF_DTYPE_Q4_1, 0.15},
        {RF_DTYPE_Q5_0, 0.08},  {RF_DTYPE_Q5_1, 0.08},   {RF_DTYPE_Q2_K, 0.45},
        {RF_DTYPE_Q3_K, 0.25},  {RF_DTYPE_Q4_K, 0.12},   {RF_DTYPE_Q5_K, 0.06},
        {RF_DTYPE_Q6_K, 0.03},  {RF_DTYPE_Q8_K, 0.01},   {RF_DTYPE_F16, 0.001},
        {RF_DTYPE_BF16, 0.005}, {RF_DTYPE_APR_Q4, 0.25}, {RF_DTYPE_APR_Q8, 0.02},
        {RF_DTYPE_F32, 0.0},
    };
    enum { ROWS = 4, COLS = 1024 };
    static float x[ROWS * COLS], y[ROWS * COLS];
    static uint8_t q[ROWS * COLS * 4 + 4];
    double sum2 = 0;
    for (int i = 0; i < ROWS * COLS; i++) {
        x[i] = gauss();
        sum2 += (double)x[i] * x[i];
    }
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rf_error err;
        rf_quant_options opts = {2};
        cr_assert_eq(rf_quantize(cases[c].dtype, x, q, ROWS, COLS, NULL, &opts, &err), RF_OK, "%s",
                     err.message);
        cr_assert_eq(rf_dequantize(cases[c].dtype, q, y, ROWS * COLS, &err), RF_OK, "%s",
                     err.message);
        double e2 = 0;
        for (int i = 0; i < ROWS * COLS; i++)
            e2 += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        double rel = sqrt(e2 / sum2);
        cr_assert(rel <= cases[c].max_rel_rmse, "%s: relative RMSE %.4f > %.4f",
                  rf_dtype_name(cases[c].dtype), rel, cases[c].max_rel_rmse);
        if (cases[c].dtype != RF_DTYPE_F32)
            cr_assert(rel > 0, "%s: a lossy type gave back the input exactly",
                      rf_dtype_name(cases[c].dtype));
    }
}

Test(quant_api, apr_types_are_flat)
{
    /* 3 rows of 11: APR_Q4 blocks run across rows, the last one partial */
    float x[33], y[33], z[33];
    for (int i = 0; i < 33; i++)
        x[i] = gauss();
    uint8_t a[64], b[64];
    rf_error err;
    cr_assert_eq(rf_quantize(RF_DTYPE_APR_Q4, x, a, 3, 11, NULL, NULL, &err), RF_OK);
    rk_quantize_row_apr_q4_ref(x, b, 33);
    cr_assert(memcmp(a, b, 36) == 0);
    cr_assert_eq(rf_dequantize(RF_DTYPE_APR_Q4, a, y, 33, &err), RF_OK);
    rk_dequantize_row_apr_q4_ref(a, z, 33);
    cr_assert(memcmp(y, z, sizeof y) == 0);
    cr_assert_eq(rf_quantize(RF_DTYPE_APR_Q8, x, a, 3, 11, NULL, NULL, &err), RF_OK);
    rk_quantize_row_apr_q8_ref(x, b, 33);
    cr_assert(memcmp(a, b, 37) == 0);
    cr_assert_eq(rf_dequantize(RF_DTYPE_APR_Q8, a, y, 33, &err), RF_OK);
    rk_dequantize_row_apr_q8_ref(a, z, 33);
    cr_assert(memcmp(y, z, sizeof y) == 0);
}
