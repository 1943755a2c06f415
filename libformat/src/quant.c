/* rf_quantize / rf_dequantize: argument checks, the choice of kernel (scalar reference, AVX2 or
 * AVX-512, from rk_simd_active()) and the split of the work over threads.
 * Every kernel writes only the blocks of its own range, and blocks never depend on their
 * neighbours, so the bytes do not depend on the split or on the SIMD level (the SIMD kernels
 * are tested byte for byte against the reference in tests/unit/test_quant_simd.c). */
#include "rosetta/quant.h"

#include <stdatomic.h>
#include <string.h>

#include "cpu/cpu_features.h"
#include "cpu/quant_dispatch.h"
#include "cpu/quant_ref.h"
#include "cpu/threads.h"
#include "io_internal.h"

typedef void (*quant_fn)(const float *x, void *y, int64_t k);
typedef void (*dequant_fn)(const void *x, float *y, int64_t k);
typedef void (*imatrix_fn)(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                           const float *quant_weights);

/* ---- plain (per-element) dtypes -------------------------------------------------------------- */

static void quantize_f32(const float *x, void *y, int64_t k) { memcpy(y, x, (size_t)k * 4); }

/* Values of integer dtypes convert as C converts them to float (round to nearest). */
#define PLAIN_DEQUANT(name, ctype)                                                                 \
    static void dequantize_##name(const void *vx, float *y, int64_t k)                             \
    {                                                                                              \
        const uint8_t *x = vx;                                                                     \
        for (int64_t i = 0; i < k; i++) {                                                          \
            ctype v;                                                                               \
            memcpy(&v, x + (size_t)i * sizeof v, sizeof v);                                        \
            y[i] = (float)v;                                                                       \
        }                                                                                          \
    }
PLAIN_DEQUANT(f32, float)
PLAIN_DEQUANT(f64, double)
PLAIN_DEQUANT(i8, int8_t)
PLAIN_DEQUANT(i16, int16_t)
PLAIN_DEQUANT(i32, int32_t)
PLAIN_DEQUANT(i64, int64_t)
PLAIN_DEQUANT(u8, uint8_t)
PLAIN_DEQUANT(u16, uint16_t)
PLAIN_DEQUANT(u32, uint32_t)
PLAIN_DEQUANT(u64, uint64_t)

static void dequantize_bool(const void *vx, float *y, int64_t k)
{
    const uint8_t *x = vx;
    for (int64_t i = 0; i < k; i++)
        y[i] = x[i] ? 1.0f : 0.0f;
}

/* ---- the kernels of each dtype --------------------------------------------------------------- */

typedef struct kernels {
    quant_fn quant[3];     /* by rk_simd_level; [0] is the reference, NULL = cannot quantize */
    dequant_fn dequant[3]; /* by rk_simd_level; [0] is the reference, NULL = cannot dequantize */
    imatrix_fn imatrix;    /* weighted path, NULL = no importance matrix */
    bool ignores_imatrix;  /* llama.cpp ignores an importance matrix for this dtype */
} kernels;

/* A dtype with AVX2 and AVX-512 variants of both directions. */
static kernels with_simd(quant_fn q_ref, quant_fn q_avx2, quant_fn q_avx512, dequant_fn d_ref,
                         dequant_fn d_avx2, dequant_fn d_avx512, imatrix_fn imatrix)
{
    return (kernels){{q_ref, q_avx2, q_avx512}, {d_ref, d_avx2, d_avx512}, imatrix, false};
}

/* A dtype with the reference kernels only (q or d may be NULL). */
static kernels scalar_only(quant_fn q, dequant_fn d, imatrix_fn imatrix)
{
    return (kernels){{q, q, q}, {d, d, d}, imatrix, false};
}

static kernels ignoring_imatrix(kernels k)
{
    k.ignores_imatrix = true;
    return k;
}

static kernels kernels_of(rf_dtype dtype)
{
    switch (dtype) {
    case RF_DTYPE_F32: return ignoring_imatrix(scalar_only(quantize_f32, dequantize_f32, NULL));
    case RF_DTYPE_F16:
        return ignoring_imatrix(with_simd(rk_quantize_row_f16_ref, rk_quantize_row_f16_avx2,
                                          rk_quantize_row_f16_avx512, rk_dequantize_row_f16_ref,
                                          rk_dequantize_row_f16_avx2, rk_dequantize_row_f16_avx512,
                                          NULL));
    case RF_DTYPE_BF16:
        return ignoring_imatrix(with_simd(rk_quantize_row_bf16_ref, rk_quantize_row_bf16_avx2,
                                          rk_quantize_row_bf16_avx512, rk_dequantize_row_bf16_ref,
                                          rk_dequantize_row_bf16_avx2,
                                          rk_dequantize_row_bf16_avx512, NULL));
    case RF_DTYPE_Q8_0: /* llama.cpp ignores an importance matrix for Q8_0 */
        return ignoring_imatrix(with_simd(rk_quantize_row_q8_0_ref, rk_quantize_row_q8_0_avx2,
                                          rk_quantize_row_q8_0_avx512, rk_dequantize_row_q8_0_ref,
                                          rk_dequantize_row_q8_0_avx2,
                                          rk_dequantize_row_q8_0_avx512, NULL));
    case RF_DTYPE_Q4_0:
        return with_simd(rk_quantize_row_q4_0_ref, rk_quantize_row_q4_0_avx2,
                         rk_quantize_row_q4_0_avx512, rk_dequantize_row_q4_0_ref,
                         rk_dequantize_row_q4_0_avx2, rk_dequantize_row_q4_0_avx512,
                         rk_quantize_row_q4_0_imatrix);
    case RF_DTYPE_Q5_0:
        return with_simd(rk_quantize_row_q5_0_ref, rk_quantize_row_q5_0_avx2,
                         rk_quantize_row_q5_0_avx512, rk_dequantize_row_q5_0_ref,
                         rk_dequantize_row_q5_0_avx2, rk_dequantize_row_q5_0_avx512,
                         rk_quantize_row_q5_0_imatrix);
    case RF_DTYPE_Q4_K:
        return with_simd(rk_quantize_row_q4_K_ref, rk_quantize_row_q4_K_avx2,
                         rk_quantize_row_q4_K_avx512, rk_dequantize_row_q4_K_ref,
                         rk_dequantize_row_q4_K_avx2, rk_dequantize_row_q4_K_avx512,
                         rk_quantize_row_q4_K_imatrix);
    case RF_DTYPE_Q5_K:
        return with_simd(rk_quantize_row_q5_K_ref, rk_quantize_row_q5_K_avx2,
                         rk_quantize_row_q5_K_avx512, rk_dequantize_row_q5_K_ref,
                         rk_dequantize_row_q5_K_avx2, rk_dequantize_row_q5_K_avx512,
                         rk_quantize_row_q5_K_imatrix);
    case RF_DTYPE_Q6_K:
        return with_simd(rk_quantize_row_q6_K_ref, rk_quantize_row_q6_K_avx2,
                         rk_quantize_row_q6_K_avx512, rk_dequantize_row_q6_K_ref,
                         rk_dequantize_row_q6_K_avx2, rk_dequantize_row_q6_K_avx512,
                         rk_quantize_row_q6_K_imatrix);
    case RF_DTYPE_Q4_1:
        return scalar_only(rk_quantize_row_q4_1_ref, rk_dequantize_row_q4_1_ref,
                           rk_quantize_row_q4_1_imatrix);
    case RF_DTYPE_Q5_1:
        return scalar_only(rk_quantize_row_q5_1_ref, rk_dequantize_row_q5_1_ref,
                           rk_quantize_row_q5_1_imatrix);
    case RF_DTYPE_Q2_K:
        return scalar_only(rk_quantize_row_q2_K_ref, rk_dequantize_row_q2_K_ref,
                           rk_quantize_row_q2_K_imatrix);
    case RF_DTYPE_Q3_K:
        return scalar_only(rk_quantize_row_q3_K_ref, rk_dequantize_row_q3_K_ref,
                           rk_quantize_row_q3_K_imatrix);
    case RF_DTYPE_Q8_K:
        return scalar_only(rk_quantize_row_q8_K_ref, rk_dequantize_row_q8_K_ref, NULL);
    case RF_DTYPE_APR_Q4:
        return scalar_only(rk_quantize_row_apr_q4_ref, rk_dequantize_row_apr_q4_ref, NULL);
    case RF_DTYPE_APR_Q8:
        return scalar_only(rk_quantize_row_apr_q8_ref, rk_dequantize_row_apr_q8_ref, NULL);
    /* read, never written: Q8_1 is an activation type; IQ4 quantizers are not offered */
    case RF_DTYPE_Q8_1: return scalar_only(NULL, rk_dequantize_row_q8_1_ref, NULL);
    case RF_DTYPE_IQ4_NL: return scalar_only(NULL, rk_dequantize_row_iq4_nl_ref, NULL);
    case RF_DTYPE_IQ4_XS: return scalar_only(NULL, rk_dequantize_row_iq4_xs_ref, NULL);
    case RF_DTYPE_F64: return scalar_only(NULL, dequantize_f64, NULL);
    case RF_DTYPE_I8: return scalar_only(NULL, dequantize_i8, NULL);
    case RF_DTYPE_I16: return scalar_only(NULL, dequantize_i16, NULL);
    case RF_DTYPE_I32: return scalar_only(NULL, dequantize_i32, NULL);
    case RF_DTYPE_I64: return scalar_only(NULL, dequantize_i64, NULL);
    case RF_DTYPE_U8: return scalar_only(NULL, dequantize_u8, NULL);
    case RF_DTYPE_U16: return scalar_only(NULL, dequantize_u16, NULL);
    case RF_DTYPE_U32: return scalar_only(NULL, dequantize_u32, NULL);
    case RF_DTYPE_U64: return scalar_only(NULL, dequantize_u64, NULL);
    case RF_DTYPE_BOOL: return scalar_only(NULL, dequantize_bool, NULL);
    /* neither read nor written as values by Rosetta: an error, never garbage */
    case RF_DTYPE_IQ2_XXS:
    case RF_DTYPE_IQ2_XS:
    case RF_DTYPE_IQ3_XXS:
    case RF_DTYPE_IQ1_S:
    case RF_DTYPE_IQ3_S:
    case RF_DTYPE_IQ2_S:
    case RF_DTYPE_IQ1_M:
    case RF_DTYPE_TQ1_0:
    case RF_DTYPE_TQ2_0:
    case RF_DTYPE_MXFP4:
    case RF_DTYPE_NVFP4:
    case RF_DTYPE_Q1_0:
    case RF_DTYPE_Q2_0:
    case RF_DTYPE_C64:
    case RF_DTYPE_F8_E5M2:
    case RF_DTYPE_F8_E4M3:
    case RF_DTYPE_F8_E8M0:
    case RF_DTYPE_F8_E4M3FNUZ:
    case RF_DTYPE_F8_E5M2FNUZ:
    case RF_DTYPE_F6_E2M3:
    case RF_DTYPE_F6_E3M2:
    case RF_DTYPE_F4: break;
    }
    return scalar_only(NULL, NULL, NULL);
}

static int simd_index(void)
{
    switch (rk_simd_active()) {
    case RK_SIMD_SCALAR: return 0;
    case RK_SIMD_AVX2: return 1;
    case RK_SIMD_AVX512: return 2;
    }
    return 0;
}

bool rf_can_dequantize(rf_dtype dtype) { return kernels_of(dtype).dequant[0] != NULL; }
bool rf_can_quantize(rf_dtype dtype) { return kernels_of(dtype).quant[0] != NULL; }
bool rf_quant_uses_imatrix(rf_dtype dtype) { return kernels_of(dtype).imatrix != NULL; }

/* ---- sizes ----------------------------------------------------------------------------------- */

static bool is_flat(rf_dtype dtype) { return dtype == RF_DTYPE_APR_Q4 || dtype == RF_DTYPE_APR_Q8; }

rf_status rf_quant_row_bytes(rf_dtype dtype, uint64_t n_per_row, uint64_t *out, rf_error *err)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    if (!info)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "unknown dtype %d", (int)dtype);
    if (!is_flat(dtype) && n_per_row % info->block_elems)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "a row of %llu elements is not a multiple of the %s block (%u)",
                            (unsigned long long)n_per_row, info->name, info->block_elems);
    return rf_dtype_flat_bytes(dtype, n_per_row, out, err);
}

rf_status rf_quant_bytes(rf_dtype dtype, uint64_t n_rows, uint64_t n_per_row, uint64_t *out,
                         rf_error *err)
{
    uint64_t n, row;
    if (__builtin_mul_overflow(n_rows, n_per_row, &n))
        return rf_error_set(err, RF_ERR_OVERFLOW, "%llu rows of %llu elements overflow 64 bits",
                            (unsigned long long)n_rows, (unsigned long long)n_per_row);
    rf_status st = rf_quant_row_bytes(dtype, n_per_row, &row, err);
    if (st != RF_OK)
        return st;
    if (is_flat(dtype))
        return rf_dtype_flat_bytes(dtype, n, out, err);
    if (__builtin_mul_overflow(n_rows, row, out))
        return rf_error_set(err, RF_ERR_OVERFLOW, "%llu rows of %llu bytes overflow 64 bits",
                            (unsigned long long)n_rows, (unsigned long long)row);
    return RF_OK;
}

/* ---- dequantization -------------------------------------------------------------------------- */

static rf_status unsupported(rf_error *err, rf_dtype dtype, const char *what)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    if (!info)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "unknown dtype %d", (int)dtype);
    return rf_error_set(err, RF_ERR_UNSUPPORTED, "unsupported dtype %s (%s)", info->name, what);
}

typedef struct dequant_call {
    dequant_fn fn;
    const void *src;
    float *dst;
    int64_t n;
} dequant_call;

static rf_status run_dequant(void *ctx, rf_error *err)
{
    (void)err;
    const dequant_call *c = ctx;
    c->fn(c->src, c->dst, c->n);
    return RF_OK;
}

rf_status rf_dequantize(rf_dtype dtype, const void *src, float *dst, uint64_t n_elements,
                        rf_error *err)
{
    kernels k = kernels_of(dtype);
    if (!k.dequant[0])
        return unsupported(err, dtype, "Rosetta has no dequantizer for it");
    const rf_dtype_info *info = rf_dtype_get(dtype);
    if (n_elements > (uint64_t)INT64_MAX)
        return rf_error_set(err, RF_ERR_ARGUMENT, "%llu elements is too many",
                            (unsigned long long)n_elements);
    if (dtype != RF_DTYPE_APR_Q4 && n_elements % info->block_elems)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "%llu elements is not a multiple of the %s block (%u)",
                            (unsigned long long)n_elements, info->name, info->block_elems);
    if (n_elements == 0)
        return RF_OK;
    if (!src || !dst)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL %s buffer for %llu %s elements",
                            src ? "destination" : "source", (unsigned long long)n_elements,
                            info->name);
    /* src is often a mapped file: a truncation underneath becomes an error, not a SIGBUS */
    dequant_call call = {k.dequant[simd_index()], src, dst, (int64_t)n_elements};
    return mapped_guarded(run_dequant, &call, err);
}

rf_status rf_tensor_dequantize(const rf_tensor *tensor, float *dst, rf_error *err)
{
    if (!tensor)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL tensor");
    const char *name = tensor->name ? tensor->name : "(unnamed)";
    if (tensor->ndim < 0 || tensor->ndim > RF_MAX_DIMS)
        return rf_error_set(err, RF_ERR_FORMAT, "tensor '%s': %d dimensions (at most %d)", name,
                            tensor->ndim, RF_MAX_DIMS);
    uint64_t n, expect;
    rf_status st = rf_shape_elements(tensor->shape, tensor->ndim, &n, err);
    if (st == RF_OK)
        st = rf_dtype_tensor_bytes(tensor->dtype, tensor->shape, tensor->ndim, &expect, err);
    if (st != RF_OK) {
        rf_error_prefix(err, "tensor '%s'", name);
        return st;
    }
    if (expect != tensor->nbytes)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "tensor '%s': %llu bytes, but %llu elements of %s take %llu bytes",
                            name, (unsigned long long)tensor->nbytes, (unsigned long long)n,
                            rf_dtype_name(tensor->dtype), (unsigned long long)expect);
    if (n > 0 && !tensor->data)
        return rf_error_set(err, RF_ERR_ARGUMENT, "tensor '%s': no data", name);
    st = rf_dequantize(tensor->dtype, tensor->data, dst, n, err);
    if (st != RF_OK)
        rf_error_prefix(err, "tensor '%s'", name);
    return st;
}

/* ---- quantization ---------------------------------------------------------------------------- */

typedef struct quant_job {
    quant_fn fn;
    imatrix_fn weighted;
    const float *src;
    uint8_t *dst;
    uint64_t unit_elems; /* elements per work unit: a block, or a row on the weighted path */
    uint64_t unit_bytes;
    uint64_t n_elements; /* total (the last APR_Q4 block may be partial) */
    const float *imatrix;
    atomic_int faulted; /* a range read a truncated mapping; fault holds the first error */
    rf_error fault;
} quant_job;

typedef struct quant_range_call {
    const quant_job *job;
    int64_t begin, end;
} quant_range_call;

static rf_status run_range(void *ctx, rf_error *err)
{
    (void)err;
    const quant_range_call *c = ctx;
    const quant_job *job = c->job;
    const float *x = job->src + (uint64_t)c->begin * job->unit_elems;
    uint8_t *y = job->dst + (uint64_t)c->begin * job->unit_bytes;
    if (job->weighted) {
        job->weighted(x, y, c->end - c->begin, (int64_t)job->unit_elems, job->imatrix);
        return RF_OK;
    }
    uint64_t last = (uint64_t)c->end * job->unit_elems;
    if (last > job->n_elements)
        last = job->n_elements;
    job->fn(x, y, (int64_t)(last - (uint64_t)c->begin * job->unit_elems));
    return RF_OK;
}

/* One thread's range, under the mapped-input guard of that thread: src may be a mapped F32
 * tensor (rf_convert quantizes those in place), and a truncation must not kill a worker. */
static void quant_range(void *ctx, int64_t begin, int64_t end)
{
    quant_job *job = ctx;
    quant_range_call c = {job, begin, end};
    rf_error e;
    if (mapped_guarded(run_range, &c, &e) != RF_OK) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&job->faulted, &expected, 1))
            job->fault = e;
    }
}

rf_status rf_quantize(rf_dtype dtype, const float *src, void *dst, uint64_t n_rows,
                      uint64_t n_per_row, const float *imatrix, const rf_quant_options *opts,
                      rf_error *err)
{
    kernels k = kernels_of(dtype);
    if (!k.quant[0])
        return unsupported(err, dtype, "Rosetta cannot quantize to it");
    const rf_dtype_info *info = rf_dtype_get(dtype);
    uint64_t n, total_bytes;
    rf_status st = rf_quant_bytes(dtype, n_rows, n_per_row, &total_bytes, err);
    if (st != RF_OK)
        return st;
    n = n_rows * n_per_row; /* no overflow: checked by rf_quant_bytes */
    if (n > (uint64_t)INT64_MAX)
        return rf_error_set(err, RF_ERR_ARGUMENT, "%llu elements is too many",
                            (unsigned long long)n);
    bool weighted = false;
    if (imatrix && !k.ignores_imatrix) {
        if (!k.imatrix)
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "an importance matrix is not supported for %s (Q4_0, Q4_1, Q5_0, "
                                "Q5_1, Q2_K..Q6_K use one; Q8_0, F16, BF16 and F32 ignore it)",
                                info->name);
        weighted = true;
    }
    if (n == 0)
        return RF_OK;
    if (!src || !dst)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL %s buffer for %llu elements of %s",
                            src ? "destination" : "source", (unsigned long long)n, info->name);
    int n_threads = opts ? opts->n_threads : 1;
    if (n_threads < 0)
        return rf_error_set(err, RF_ERR_ARGUMENT, "negative thread count %d", n_threads);

    quant_job job = {k.quant[simd_index()], NULL, src, dst, 0, 0, n, imatrix, 0, {0}};
    int64_t n_units;
    if (weighted) { /* the weighted path uses statistics of whole rows */
        job.weighted = k.imatrix;
        job.unit_elems = n_per_row;
        job.unit_bytes = total_bytes / n_rows;
        n_units = (int64_t)n_rows;
    } else if (dtype == RF_DTYPE_APR_Q8) { /* one scale for the whole tensor */
        job.unit_elems = n;
        job.unit_bytes = total_bytes;
        n_units = 1;
    } else { /* blocks never cross rows, so the rows form one run of blocks */
        job.unit_elems = info->block_elems;
        job.unit_bytes = info->block_bytes;
        n_units = (int64_t)((n + info->block_elems - 1) / info->block_elems);
    }
    /* at least ~64 KiB of input per thread, so that small tensors do not pay for threads */
    int64_t granule = (int64_t)(16384 / job.unit_elems);
    if (granule < 1)
        granule = 1;
    rk_parallel_for(n_units, granule, n_threads, quant_range, &job);
    if (atomic_load(&job.faulted))
        return rf_error_set(err, job.fault.status, "%s", job.fault.message);
    return RF_OK;
}
