/* The engine on APR's own weight layouts, built in memory from tiny-qwen2-odd (rows of 160 and
 * 416 values): APR_Q8 (one f32 scale for the whole tensor before its int8 values), APR_Q4 (Q4_0
 * blocks with interleaved nibbles, flat over the tensor) and Q4_K / Q6_K rows padded to whole
 * 256-value super-blocks (aprender's quantizer). For each, a twin model holds the same values
 * as F32: the reference path must give bit-identical logits on both (the rows are decoded at
 * the right offsets, padding ignored), and the fast path must stay within the activation
 * quantization tolerance of the reference. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/fixture_ref.h"
#include "rosetta/infer.h"
#include "model_internal.h"
#include "rosetta/model.h"
#include "rosetta/quant.h"

typedef enum layout { APR_Q8, APR_Q4, KQUANT_PADDED } layout;

typedef struct built {
    rf_model *quant, *f32;
    void *bufs[256];
    int n_bufs;
} built;

static void *keep(built *b, void *p)
{
    cr_assert_not_null(p);
    cr_assert_lt(b->n_bufs, 256);
    b->bufs[b->n_bufs++] = p;
    return p;
}

static void add(rf_model *m, const rf_tensor *like, rf_dtype dtype, const void *data, uint64_t n)
{
    rf_tensor t = *like;
    t.dtype = dtype;
    t.data = data;
    t.nbytes = n;
    t.file_offset = 0;
    t.source = 0;
    rf_error err = {0};
    cr_assert_eq(rf_model_add_tensor(m, &t, &err), RF_OK, "%s", err.message);
}

/* Quantizes 2-D tensor values (rows x cols F32) to the layout; also returns the values the
 * layout decodes to (F32, rows x cols). */
static void quantize(built *b, layout how, const float *x, uint64_t rows, uint64_t cols,
                     rf_dtype *dtype, void **data, uint64_t *nbytes, float *decoded)
{
    rf_error err = {0};
    if (how == APR_Q8 || how == APR_Q4) {
        *dtype = how == APR_Q8 ? RF_DTYPE_APR_Q8 : RF_DTYPE_APR_Q4;
        cr_assert_eq(rf_quant_bytes(*dtype, rows, cols, nbytes, &err), RF_OK, "%s", err.message);
        *data = keep(b, malloc(*nbytes));
        cr_assert_eq(rf_quantize(*dtype, x, *data, rows, cols, NULL, NULL, &err), RF_OK, "%s",
                     err.message);
        cr_assert_eq(rf_dequantize(*dtype, *data, decoded, rows * cols, &err), RF_OK, "%s",
                     err.message);
        return;
    }
    /* K-quant rows padded with zeros to whole super-blocks; Q6_K for the wide down matrix */
    *dtype = cols > 256 ? RF_DTYPE_Q6_K : RF_DTYPE_Q4_K;
    uint64_t padded = (cols + 255) / 256 * 256, row_bytes;
    cr_assert_eq(rf_quant_row_bytes(*dtype, padded, &row_bytes, &err), RF_OK);
    *nbytes = rows * row_bytes;
    uint8_t *q = keep(b, malloc(*nbytes));
    float *row = calloc(padded, sizeof *row), *back = malloc(padded * sizeof *back);
    for (uint64_t r = 0; r < rows; r++) {
        memset(row, 0, padded * sizeof *row);
        memcpy(row, x + r * cols, cols * sizeof *row);
        cr_assert_eq(rf_quantize(*dtype, row, q + r * row_bytes, 1, padded, NULL, NULL, &err),
                     RF_OK, "%s", err.message);
        cr_assert_eq(rf_dequantize(*dtype, q + r * row_bytes, back, padded, &err), RF_OK);
        memcpy(decoded + r * cols, back, cols * sizeof *back);
    }
    free(row);
    free(back);
    *data = q;
}

static void build(layout how, built *b, rf_model *src)
{
    rf_error err = {0};
    memset(b, 0, sizeof *b);
    b->quant = rf_model_new(RF_FORMAT_APR, &err);
    b->f32 = rf_model_new(RF_FORMAT_APR, &err);
    cr_assert(b->quant && b->f32);
    *rf_model_config_mut(b->quant) = *rf_model_config_get(src);
    *rf_model_config_mut(b->f32) = *rf_model_config_get(src);
    for (size_t i = 0; i < rf_model_n_tensors(src); i++) {
        const rf_tensor *t = rf_model_tensor(src, i);
        uint64_t n = t->ndim == 2 ? t->shape[0] * t->shape[1] : t->shape[0];
        float *x = keep(b, malloc(n * sizeof *x));
        cr_assert_eq(rf_tensor_dequantize(t, x, &err), RF_OK, "%s", err.message);
        if (t->ndim != 2) {
            add(b->quant, t, RF_DTYPE_F32, x, n * 4);
            add(b->f32, t, RF_DTYPE_F32, x, n * 4);
            continue;
        }
        float *decoded = keep(b, malloc(n * sizeof *decoded));
        rf_dtype dtype;
        void *data;
        uint64_t nbytes;
        quantize(b, how, x, t->shape[0], t->shape[1], &dtype, &data, &nbytes, decoded);
        add(b->quant, t, dtype, data, nbytes);
        add(b->f32, t, RF_DTYPE_F32, decoded, n * 4);
    }
}

static void release(built *b)
{
    rf_model_free(b->quant);
    rf_model_free(b->f32);
    for (int i = 0; i < b->n_bufs; i++)
        free(b->bufs[i]);
}

static float *logits_of(const rf_model *m, ri_path path, const fixture_ref *ref)
{
    rf_error err = {0};
    ri_model_params mp = ri_model_params_default();
    mp.path = path;
    ri_model *im = ri_model_load(m, &mp, &err);
    cr_assert_not_null(im, "%s", err.message);
    ri_context_params cp = ri_context_params_default();
    cp.n_ctx = 256;
    cp.n_threads = 2;
    ri_context *ctx = ri_context_new(im, &cp, &err);
    cr_assert_not_null(ctx, "%s", err.message);
    size_t V = ri_model_get_info(im).n_vocab;
    float *logits = malloc(ref->n_ids * V * sizeof *logits);
    cr_assert_eq(ri_forward(ctx, ref->ids, ref->n_ids, RI_LOGITS_ALL, logits, &err), RF_OK, "%s",
                 err.message);
    ri_context_free(ctx);
    ri_model_free(im);
    return logits;
}

static double nmse(const float *ref, const float *x, size_t n)
{
    double mean = 0, var = 0, se = 0;
    for (size_t i = 0; i < n; i++)
        mean += ref[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        var += (ref[i] - mean) * (ref[i] - mean);
        se += ((double)ref[i] - x[i]) * ((double)ref[i] - x[i]);
    }
    return se / var;
}

static void check_layout(layout how, const char *label)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fixtures/tiny-qwen2-odd", ROSETTA_ROOT);
    rf_error err = {0};
    rf_model *src = rf_model_open(dir, NULL, &err);
    cr_assert_not_null(src, "%s", err.message);
    fixture_ref ref;
    cr_assert(fixture_ref_load("tiny-qwen2-odd", "code", &ref));
    built b;
    build(how, &b, src);
    size_t n = ref.n_ids * 1024;
    float *ref_q = logits_of(b.quant, RI_PATH_REFERENCE, &ref);
    float *ref_f = logits_of(b.f32, RI_PATH_REFERENCE, &ref);
    float *fast_q = logits_of(b.quant, RI_PATH_FAST, &ref);
    cr_expect_eq(memcmp(ref_q, ref_f, n * sizeof *ref_q), 0,
                 "%s: reference path differs from the same values in F32", label);
    double e = nmse(ref_q, fast_q, n);
    cr_log_info("%s: fast vs reference NMSE %.3g", label, e);
    cr_expect_leq(e, 0.006, "%s: fast path NMSE %g", label, e);
    free(ref_q);
    free(ref_f);
    free(fast_q);
    release(&b);
    rf_model_free(src);
}

Test(layouts, apr_q8) { check_layout(APR_Q8, "APR_Q8"); }
Test(layouts, apr_q4) { check_layout(APR_Q4, "APR_Q4"); }
Test(layouts, kquant_padded_rows) { check_layout(KQUANT_PADDED, "padded Q4_K/Q6_K"); }
