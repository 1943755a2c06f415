/* Chunked reading of a tensor's logical values as F32 (see tensor_values.h), on the model view:
 * rf_tensor_check and rf_tensor_dequantize_range know each format's layout, and every read goes
 * through the shared (SIMD) dequantizers. */
#include "tensor_values.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rosetta/quant.h"

rf_status rfi_tv_open(const rf_model *m, const rf_tensor *t, tv_reader *r, rf_error *err)
{
    r->tensor = t;
    r->info = rf_dtype_get(t->dtype);
    if (!r->info)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "unknown dtype %d", (int)t->dtype);
    if (!rf_can_dequantize(t->dtype) || r->info->block_elems == 0 || r->info->block_elems > 256 ||
        TV_CHUNK % r->info->block_elems != 0)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "unsupported dtype %s (no dequantizer)",
                            r->info->name);
    /* the model view knows the format's layout (row stride, padded blocks, APR_Q8's scale) */
    rf_error e = {0};
    rf_status st = rf_tensor_check(m, t, &e);
    if (st == RF_OK)
        st = rf_shape_elements(t->shape, t->ndim, &r->count, &e);
    if (st != RF_OK) {
        /* callers name the tensor themselves */
        char prefix[512];
        snprintf(prefix, sizeof prefix, "tensor '%s': ", t->name ? t->name : "");
        size_t n = strlen(prefix);
        return rf_error_set(err, st, "%s",
                            strncmp(e.message, prefix, n) == 0 ? e.message + n : e.message);
    }
    return RF_OK;
}

uint64_t rfi_tv_granule(const tv_reader *r) { return r->info->block_elems; }

rf_status rfi_tv_read(tv_reader *r, uint64_t first, uint64_t n, float *out, rf_error *err)
{
    if (n > TV_CHUNK || first > r->count || n > r->count - first)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "read of values [%" PRIu64 ", +%" PRIu64 ") of %" PRIu64, first, n,
                            r->count);
    return rf_tensor_dequantize_range(r->tensor, first, n, out, err);
}

const float *rfi_tv_view(tv_reader *r, uint64_t first, uint64_t n, float *buf, rf_error *err)
{
    const rf_tensor *t = r->tensor;
    if (t->dtype == RF_DTYPE_F32 && t->row_stride == 0 && (uintptr_t)t->data % sizeof(float) == 0 &&
        n <= TV_CHUNK && first <= r->count && n <= r->count - first)
        return (const float *)(const void *)t->data + first;
    return rfi_tv_read(r, first, n, buf, err) == RF_OK ? buf : NULL;
}
