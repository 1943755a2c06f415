/* Chunked reading of a tensor's logical values as F32 (see tensor_values.h). Every read goes
 * through rf_dequantize, so the values are those of the shared (SIMD) dequantizers. */
#include "tensor_values.h"

#include <inttypes.h>
#include <string.h>

#include "rosetta/apr.h"
#include "rosetta/quant.h"

static bool is_apr(const rf_model *m)
{
    return m && (rf_model_format(m) == RF_FORMAT_APR || rf_model_format(m) == RF_FORMAT_APR2_MAGIC);
}

rf_status tv_open(const rf_model *m, const rf_tensor *t, tv_reader *r, rf_error *err)
{
    r->tensor = t;
    r->info = rf_dtype_get(t->dtype);
    if (!r->info)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "unknown dtype %d", (int)t->dtype);
    if (!rf_can_dequantize(t->dtype) || r->info->block_elems == 0 || r->info->block_elems > 256 ||
        TV_CHUNK % r->info->block_elems != 0)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "unsupported dtype %s (no dequantizer)",
                            r->info->name);
    if (t->ndim < 0 || t->ndim > RF_MAX_DIMS)
        return rf_error_set(err, RF_ERR_FORMAT, "%d dimensions (at most %d)", t->ndim, RF_MAX_DIMS);
    uint64_t elems, need;
    if (rf_shape_elements(t->shape, t->ndim, &elems, err) != RF_OK)
        return err ? err->status : RF_ERR_OVERFLOW;
    rf_status st = is_apr(m) ? rf_apr_tensor_bytes(t->dtype, t->shape, t->ndim, &need, err)
                             : rf_dtype_tensor_bytes(t->dtype, t->shape, t->ndim, &need, err);
    if (st != RF_OK)
        return st;
    r->count = elems;
    r->rows = 1;
    r->cols = elems;
    r->row_elems = elems;
    r->row_bytes = need;
    r->need = need;
    uint64_t row_bytes;
    if (is_apr(m) && rf_apr_tensor_row_padded(t, &row_bytes)) {
        r->rows = t->shape[0];
        r->cols = t->shape[1];
        r->row_bytes = row_bytes;
        r->row_elems = row_bytes / r->info->block_bytes * r->info->block_elems;
    } else if (is_apr(m) && (t->dtype == RF_DTYPE_Q4_K || t->dtype == RF_DTYPE_Q6_K)) {
        r->row_elems = need / r->info->block_bytes * r->info->block_elems; /* last block padded */
    }
    if (elems > 0 && !t->data)
        return rf_error_set(err, RF_ERR_FORMAT, "no data: the tensor's bytes are not in the file");
    if (t->nbytes < need)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%" PRIu64 " data bytes for a shape that needs %" PRIu64, t->nbytes,
                            need);
    /* Lenient opens: data that lies in its mapped file must end in it. */
    const rf_file *file = m ? rf_model_file(m, t->source) : NULL;
    if (file && elems > 0) {
        uintptr_t base = (uintptr_t)rf_file_data(file), end = base + rf_file_size(file);
        uintptr_t at = (uintptr_t)t->data;
        if (at >= base && at <= end && need > end - at)
            return rf_error_set(err, RF_ERR_FORMAT, "data runs past the end of %s",
                                rf_file_path(file));
    }
    return RF_OK;
}

uint64_t tv_granule(const tv_reader *r) { return r->info->block_elems; }

/* Values [c0, c1) of one run of blocks starting at base, whose decoded length is run_elems. */
static rf_status decode_run(tv_reader *r, const uint8_t *base, uint64_t run_elems, uint64_t c0,
                            uint64_t c1, float *out, rf_error *err)
{
    rf_dtype dtype = r->tensor->dtype;
    if (dtype == RF_DTYPE_APR_Q8) {
        /* One f32 scale for the whole tensor, then one int8 per value (docs/formats/apr.md):
         * the dequantizer gets the scale followed by this range's values. */
        memcpy(r->scratch, base, 4);
        memcpy(r->scratch + 4, base + 4 + c0, c1 - c0);
        return rf_dequantize(dtype, r->scratch, out, c1 - c0, err);
    }
    uint64_t be = r->info->block_elems, bb = r->info->block_bytes;
    float *block = r->block;
    while (c0 < c1) {
        uint64_t start = c0 - c0 % be;
        if (start == c0 && c1 - c0 >= be) { /* whole blocks straight into out */
            uint64_t k = (c1 - c0) - (c1 - c0) % be;
            rf_status st = rf_dequantize(dtype, base + start / be * bb, out, k, err);
            if (st != RF_OK)
                return st;
            out += k;
            c0 += k;
            continue;
        }
        /* A block cut by the range: decode it whole (a partial last APR_Q4 block decodes to
         * fewer values) and copy the part asked for. */
        uint64_t k = run_elems - start < be ? run_elems - start : be;
        rf_status st = rf_dequantize(dtype, base + start / be * bb, block, k, err);
        if (st != RF_OK)
            return st;
        uint64_t take = (c1 < start + k ? c1 : start + k) - c0;
        memcpy(out, block + (c0 - start), take * sizeof *out);
        out += take;
        c0 += take;
    }
    return RF_OK;
}

rf_status tv_read(tv_reader *r, uint64_t first, uint64_t n, float *out, rf_error *err)
{
    if (n > TV_CHUNK || first > r->count || n > r->count - first)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "read of values [%" PRIu64 ", +%" PRIu64 ") of %" PRIu64, first, n,
                            r->count);
    while (n > 0) {
        uint64_t row = r->rows > 1 ? first / r->cols : 0;
        uint64_t c = r->rows > 1 ? first % r->cols : first;
        uint64_t seg = r->cols - c < n ? r->cols - c : n;
        rf_status st =
            decode_run(r, r->tensor->data + row * r->row_bytes, r->row_elems, c, c + seg, out, err);
        if (st != RF_OK)
            return st;
        out += seg;
        first += seg;
        n -= seg;
    }
    return RF_OK;
}

const float *tv_view(tv_reader *r, uint64_t first, uint64_t n, float *buf, rf_error *err)
{
    const rf_tensor *t = r->tensor;
    if (t->dtype == RF_DTYPE_F32 && r->rows == 1 && (uintptr_t)t->data % sizeof(float) == 0 &&
        n <= TV_CHUNK && first <= r->count && n <= r->count - first)
        return (const float *)(const void *)t->data + first;
    return tv_read(r, first, n, buf, err) == RF_OK ? buf : NULL;
}
