/* The model view hides format bytes: rf_tensor_dequantize and rf_tensor_dequantize_range read
 * APR's row-padded K-quants (row_stride), K-quant runs with a padded last block, APR_Q4's partial
 * block and APR_Q8's scale prefix, for any range; and the small format facts the tools used to
 * decode themselves (APR flag names, version text, rope names). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rosetta/apr.h"
#include "rosetta/detect.h"
#include "rosetta/model.h"
#include "rosetta/quant.h"

static uint64_t seed = 0x9e3779b97f4a7c15ull;
static float noise(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (float)((double)(seed >> 11) / 9007199254740992.0 - 0.5);
}

/* Every range [a, b) of t read with rf_tensor_dequantize_range equals want[a..b). */
static void check_ranges(const rf_tensor *t, const float *want, uint64_t n)
{
    float *got = malloc((n + 1) * sizeof *got);
    rf_error err = {0};
    cr_assert_eq(rf_tensor_dequantize(t, got, &err), RF_OK, "%s", err.message);
    cr_assert_eq(memcmp(got, want, n * sizeof *got), 0, "%s: whole tensor", t->name);
    const uint64_t starts[] = {0, 1, 31, 32, 100, 255, 256, 257, n / 2, n - 1};
    const uint64_t lens[] = {0, 1, 7, 32, 255, 256, 300, 777, n};
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++)
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            uint64_t a = starts[i], len = lens[k];
            if (a >= n || len > n - a)
                continue;
            got[len] = 12345.0f; /* nothing is written past n values */
            cr_assert_eq(rf_tensor_dequantize_range(t, a, len, got, &err), RF_OK, "%s",
                         err.message);
            cr_assert_eq(memcmp(got, want + a, len * sizeof *got), 0, "%s: [%llu, +%llu)", t->name,
                         (unsigned long long)a, (unsigned long long)len);
            cr_assert_eq(got[len], 12345.0f, "%s: wrote past the range", t->name);
        }
    cr_assert_eq(rf_tensor_dequantize_range(t, n, 1, got, &err), RF_ERR_ARGUMENT);
    free(got);
}

Test(tensor_view, packed_types)
{
    enum { ROWS = 4, COLS = 512, N = ROWS * COLS };
    static float x[N], want[N];
    static uint8_t q[N * 4];
    for (int i = 0; i < N; i++)
        x[i] = noise();
    const rf_dtype types[] = {RF_DTYPE_F32,  RF_DTYPE_F16,  RF_DTYPE_BF16,  RF_DTYPE_Q8_0,
                              RF_DTYPE_Q4_K, RF_DTYPE_Q6_K, RF_DTYPE_APR_Q4};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        rf_error err = {0};
        uint64_t bytes;
        cr_assert_eq(rf_quant_bytes(types[k], ROWS, COLS, &bytes, &err), RF_OK);
        cr_assert_eq(rf_quantize(types[k], x, q, ROWS, COLS, NULL, NULL, &err), RF_OK, "%s",
                     err.message);
        cr_assert_eq(rf_dequantize(types[k], q, want, N, &err), RF_OK);
        rf_tensor t = {.name = rf_dtype_name(types[k]),
                       .dtype = types[k],
                       .ndim = 2,
                       .shape = {ROWS, COLS},
                       .data = q,
                       .nbytes = bytes};
        check_ranges(&t, want, N);
    }
}

/* aprender's layouts: rows padded to whole super-blocks, a 1-D run with a padded last block,
 * APR_Q4 with a partial last block, APR_Q8 with its scale. */
Test(tensor_view, apr_layouts)
{
    enum { ROWS = 3, COLS = 300, PADDED = 512 };
    static float x[ROWS * PADDED], row_vals[ROWS * PADDED], want[ROWS * COLS];
    static uint8_t q[ROWS * 2 * 210 + 64];
    rf_error err = {0};
    const rf_dtype kq[] = {RF_DTYPE_Q4_K, RF_DTYPE_Q6_K};
    for (size_t k = 0; k < 2; k++) {
        for (int i = 0; i < ROWS * PADDED; i++)
            x[i] = i % PADDED < COLS ? noise() : 0.0f;
        cr_assert_eq(rf_quantize(kq[k], x, q, ROWS, PADDED, NULL, NULL, &err), RF_OK);
        cr_assert_eq(rf_dequantize(kq[k], q, row_vals, ROWS * PADDED, &err), RF_OK);
        for (int r = 0; r < ROWS; r++)
            memcpy(want + r * COLS, row_vals + r * PADDED, COLS * sizeof *want);
        uint64_t block = kq[k] == RF_DTYPE_Q4_K ? 144 : 210;
        rf_tensor t = {.name = "padded rows",
                       .dtype = kq[k],
                       .ndim = 2,
                       .shape = {ROWS, COLS},
                       .data = q,
                       .nbytes = ROWS * 2 * block,
                       .row_stride = 2 * block};
        cr_assert(rf_apr_tensor_row_padded(&t, NULL));
        check_ranges(&t, want, ROWS * COLS);
        t.row_stride = block; /* a stride that does not hold a row is refused */
        float one;
        cr_assert_eq(rf_tensor_dequantize_range(&t, 0, 1, &one, &err), RF_ERR_FORMAT);
        /* the same bytes as one 1-D run of 600 values padded to 3 super-blocks: the run's
         * values are the decoded blocks in order */
        rf_tensor run = {.name = "padded run",
                         .dtype = kq[k],
                         .ndim = 1,
                         .shape = {600},
                         .data = q,
                         .nbytes = 3 * block};
        check_ranges(&run, row_vals, 600);
    }

    /* APR_Q4: 70 values = 2 whole blocks and a partial one */
    for (int i = 0; i < 70; i++)
        x[i] = noise();
    uint64_t bytes;
    cr_assert_eq(rf_quant_bytes(RF_DTYPE_APR_Q4, 1, 70, &bytes, &err), RF_OK);
    cr_assert_eq(bytes, 3 * 18);
    cr_assert_eq(rf_quantize(RF_DTYPE_APR_Q4, x, q, 1, 70, NULL, NULL, &err), RF_OK);
    cr_assert_eq(rf_dequantize(RF_DTYPE_APR_Q4, q, want, 70, &err), RF_OK);
    rf_tensor q4 = {.name = "apr_q4",
                    .dtype = RF_DTYPE_APR_Q4,
                    .ndim = 2,
                    .shape = {7, 10},
                    .data = q,
                    .nbytes = bytes};
    check_ranges(&q4, want, 70);

    /* APR_Q8: the tensor-wide scale comes first */
    cr_assert_eq(rf_quantize(RF_DTYPE_APR_Q8, x, q, 1, 70, NULL, NULL, &err), RF_OK);
    cr_assert_eq(rf_dequantize(RF_DTYPE_APR_Q8, q, want, 70, &err), RF_OK);
    rf_tensor q8 = {.name = "apr_q8",
                    .dtype = RF_DTYPE_APR_Q8,
                    .ndim = 1,
                    .shape = {70},
                    .data = q,
                    .nbytes = 74};
    check_ranges(&q8, want, 70);
    q8.nbytes = 70;
    cr_assert_eq(rf_tensor_check(NULL, &q8, &err), RF_ERR_FORMAT);
    cr_assert(strstr(err.message, "apr_q8") && strstr(err.message, "74"), "%s", err.message);
}

Test(tensor_view, format_facts)
{
    char buf[32];
    cr_assert_str_eq(rf_format_version_text(RF_FORMAT_APR, 200, buf, sizeof buf), "2.0");
    cr_assert_str_eq(rf_format_version_text(RF_FORMAT_GGUF, 3, buf, sizeof buf), "3");
    cr_assert_null(rf_format_version_text(RF_FORMAT_SAFETENSORS, 0, buf, sizeof buf));
    cr_assert(rf_format_is_apr(RF_FORMAT_APR2_MAGIC) && !rf_format_is_apr(RF_FORMAT_APR_V1));
    cr_assert_str_eq(rf_apr_flag_name(RF_APR_FLAG_ROW_MAJOR), "row-major");
    cr_assert_str_eq(rf_apr_flag_name(RF_APR_FLAG_LZ4), "lz4");
    cr_assert_null(rf_apr_flag_name(0x1000));
    cr_assert_null(rf_apr_flag_name(RF_APR_FLAG_LZ4 | RF_APR_FLAG_ZSTD));
    cr_assert_str_eq(rf_rope_type_name(RF_ROPE_NEOX), "neox");
    cr_assert_null(rf_rope_type_name(RF_ROPE_UNKNOWN));
}
