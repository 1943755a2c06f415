/* rf_quantize / rf_dequantize: argument checks, the choice of kernel (scalar reference, AVX2 or
 * AVX-512, from rk_simd_active()) and the split of the work over threads.
 * Every kernel writes only the blocks of its own range, and blocks never depend on their
 * neighbours, so the bytes do not depend on the split or on the SIMD level (the SIMD kernels
 * are tested byte for byte against the reference in tests/unit/test_quant_simd.c). */
#include "model_internal.h"
#include "rosetta/quant.h"

#include <stdatomic.h>
#include <string.h>

#include "io.h"

#include "cpu/cpu_features.h"
#include "cpu/threads.h"
#include "dtype_internal.h"
#include "io_internal.h"

/* The kernels of a dtype: its entry in the dtype table (dtype.c), or none. */
typedef struct kernels {
    rfi_quant_fn quant[3];
    rfi_dequant_fn dequant[3];
    rfi_imatrix_fn imatrix;
    bool ignores_imatrix;
} kernels;

static kernels kernels_of(rf_dtype dtype)
{
    const rfi_dtype_traits *t = rfi_dtype_traits_of(dtype);
    kernels k = {{NULL, NULL, NULL}, {NULL, NULL, NULL}, NULL, false};
    if (t) {
        memcpy(k.quant, t->quant, sizeof k.quant);
        memcpy(k.dequant, t->dequant, sizeof k.dequant);
        k.imatrix = t->imatrix;
        k.ignores_imatrix = t->ignores_imatrix;
    }
    return k;
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

const char *rf_simd_cpu(void) { return rk_simd_level_name(rk_cpu_simd_level()); }
const char *rf_simd_active(void) { return rk_simd_level_name(rk_simd_active()); }

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
    rfi_dequant_fn fn;
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
    return rfi_mapped_guarded(run_dequant, &call, err);
}

/* How a tensor's values lie in its bytes: rows of row_bytes bytes, each decoding to row_elems
 * values of which the first cols are meaningful (a packed tensor is one row). */
typedef struct value_layout {
    uint64_t elements, rows, cols, row_elems, row_bytes;
} value_layout;

static rf_status layout_of(const rf_tensor *t, const char *name, value_layout *out, rf_error *err)
{
    const rf_dtype_info *info = rf_dtype_get(t->dtype);
    if (!info)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "tensor '%s': unknown dtype %d", name,
                            (int)t->dtype);
    if (t->ndim < 0 || t->ndim > RF_MAX_DIMS)
        return rf_error_set(err, RF_ERR_FORMAT, "tensor '%s': %d dimensions (at most %d)", name,
                            t->ndim, RF_MAX_DIMS);
    uint64_t n, need = 0;
    rf_status st = rf_shape_elements(t->shape, t->ndim, &n, err);
    if (st != RF_OK) {
        rf_error_prefix(err, "tensor '%s'", name);
        return st;
    }
    const uint64_t block = info->block_elems, block_bytes = info->block_bytes;
    if (t->dtype == RF_DTYPE_APR_Q8) { /* one f32 scale, then one int8 per value */
        need = n ? 4 + n : 0;
        *out = (value_layout){n, 1, n, n, need};
    } else if (t->row_stride != 0) {
        uint64_t cols = t->ndim > 0 ? t->shape[t->ndim - 1] : 0;
        uint64_t per_row = block ? cols / block + (cols % block != 0) : 0;
        if (cols == 0 || block == 0 || per_row > UINT64_MAX / block_bytes ||
            per_row * block_bytes != t->row_stride)
            return rf_error_set(
                err, RF_ERR_FORMAT,
                "tensor '%s': rows of %llu bytes, but rows of %llu %s values take "
                "%llu",
                name, (unsigned long long)t->row_stride, (unsigned long long)cols, info->name,
                (unsigned long long)(per_row <= UINT64_MAX / block_bytes ? per_row * block_bytes
                                                                         : 0));
        if (__builtin_mul_overflow(n / cols, t->row_stride, &need))
            return rf_error_set(err, RF_ERR_OVERFLOW, "tensor '%s': size overflows", name);
        *out = (value_layout){n, n / cols, cols, per_row * block, t->row_stride};
    } else {
        uint64_t blocks = block ? n / block + (n % block != 0) : 0;
        if (block == 0 || __builtin_mul_overflow(blocks, block_bytes, &need))
            return rf_error_set(err, RF_ERR_OVERFLOW, "tensor '%s': size overflows", name);
        *out = (value_layout){n, 1, n, blocks * block, need};
    }
    if (need != t->nbytes)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "tensor '%s': %llu bytes, but %llu elements of %s take %llu bytes",
                            name, (unsigned long long)t->nbytes, (unsigned long long)n, info->name,
                            (unsigned long long)need);
    if (n > 0 && !t->data)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "tensor '%s': no data: the tensor's bytes are not in the file", name);
    return RF_OK;
}

rf_status rf_tensor_check(const rf_model *model, const rf_tensor *tensor, rf_error *err)
{
    if (!tensor)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL tensor");
    const char *name = tensor->name ? tensor->name : "(unnamed)";
    value_layout v = {0};
    rf_status st = layout_of(tensor, name, &v, err);
    if (st != RF_OK)
        return st;
    /* data that lies in a mapped file must end in it (defence in depth for lenient opens) */
    const rf_file *file = model ? rf_model_file(model, tensor->source) : NULL;
    if (file && tensor->nbytes > 0) {
        uintptr_t base = (uintptr_t)rf_file_data(file), end = base + rf_file_size(file);
        uintptr_t at = (uintptr_t)tensor->data;
        if (at >= base && at <= end && tensor->nbytes > end - at)
            return rf_error_set(err, RF_ERR_FORMAT, "tensor '%s': data runs past the end of %s",
                                name, rf_file_path(file));
    }
    return RF_OK;
}

rf_status rf_tensor_dequantize(const rf_tensor *tensor, float *dst, rf_error *err)
{
    if (!tensor)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL tensor");
    const char *name = tensor->name ? tensor->name : "(unnamed)";
    value_layout v = {0};
    rf_status st = layout_of(tensor, name, &v, err);
    if (st != RF_OK)
        return st;
    return rf_tensor_dequantize_range(tensor, 0, v.elements, dst, err);
}

/* Values [col, col + n) of one row (cols meaningful values) that starts at row; a block that
 * is only partly wanted is decoded into a one-block buffer. */
static rf_status dequantize_in_row(const rf_tensor *t, const rf_dtype_info *info,
                                   const uint8_t *row, uint64_t cols, uint64_t col, uint64_t n,
                                   float *dst, rf_error *err)
{
    const uint64_t block = info->block_elems;
    rf_status st = RF_OK;
    while (st == RF_OK && n > 0) {
        const uint8_t *src = row + col / block * info->block_bytes;
        uint64_t lead = col % block;
        if (lead == 0 && n >= block) {
            uint64_t whole = n / block * block;
            st = rf_dequantize(t->dtype, src, dst, whole, err);
            col += whole;
            dst += whole;
            n -= whole;
            continue;
        }
        float part[256];
        /* APR_Q4's last block may hold fewer values; every other block is whole (padded) */
        uint64_t count = block;
        if (t->dtype == RF_DTYPE_APR_Q4 && cols - (col - lead) < block)
            count = cols - (col - lead);
        if (count > sizeof part / sizeof part[0])
            return rf_error_set(err, RF_ERR_UNSUPPORTED, "%s blocks are too large", info->name);
        st = rf_dequantize(t->dtype, src, part, count, err);
        uint64_t use = count - lead < n ? count - lead : n;
        if (st == RF_OK)
            memcpy(dst, part + lead, (size_t)use * sizeof *part);
        col += use;
        dst += use;
        n -= use;
    }
    return st;
}

rf_status rf_tensor_dequantize_range(const rf_tensor *tensor, uint64_t first, uint64_t n,
                                     float *dst, rf_error *err)
{
    if (!tensor)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL tensor");
    const char *name = tensor->name ? tensor->name : "(unnamed)";
    value_layout v = {0};
    rf_status st = layout_of(tensor, name, &v, err);
    if (st != RF_OK)
        return st;
    if (first > v.elements || n > v.elements - first)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "tensor '%s': values [%llu, %llu) are outside its %llu values", name,
                            (unsigned long long)first, (unsigned long long)(first + n),
                            (unsigned long long)v.elements);
    if (n == 0)
        return RF_OK;
    const rf_dtype_info *info = rf_dtype_get(tensor->dtype);
    if (!kernels_of(tensor->dtype).dequant[0]) {
        st = unsupported(err, tensor->dtype, "Rosetta has no dequantizer for it");
        rf_error_prefix(err, "tensor '%s'", name);
        return st;
    }
    if (tensor->dtype == RF_DTYPE_APR_Q8) {
        /* the tensor-wide scale, then the wanted int8 values (apr-v2.md 9.3) */
        float scale;
        uint32_t bits = rf_load_le32(tensor->data);
        memcpy(&scale, &bits, sizeof scale);
        for (uint64_t i = 0; i < n; i++)
            dst[i] = (float)(int8_t)tensor->data[4 + first + i] * scale;
        return RF_OK;
    }
    while (st == RF_OK && n > 0) {
        uint64_t row = first / v.cols, col = first % v.cols;
        uint64_t take = v.cols - col < n ? v.cols - col : n;
        st = dequantize_in_row(tensor, info, tensor->data + row * v.row_bytes, v.cols, col, take,
                               dst, err);
        dst += take;
        first += take;
        n -= take;
    }
    if (st != RF_OK)
        rf_error_prefix(err, "tensor '%s'", name);
    return st;
}

/* ---- quantization ---------------------------------------------------------------------------- */

typedef struct quant_job {
    rfi_quant_fn fn;
    rfi_imatrix_fn weighted;
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
    if (rfi_mapped_guarded(run_range, &c, &e) != RF_OK) {
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
