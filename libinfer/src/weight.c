/* One row of an engine weight as F32: the dequantization both forward paths share (the
 * reference path for every matrix row, the fast path for embedding rows and the weights it
 * converts at load). Not for: choosing or loading weights (model.c). */
#include "internal.h"
#include "rosetta/quant.h"

rf_status ri_weight_dequantize_row(const ri_weight *w, uint32_t r, float *out, rf_error *err)
{
    const uint8_t *row = w->data + (uint64_t)r * w->row_bytes;
    if (w->dtype == RF_DTYPE_APR_Q8) {
        const int8_t *q = (const int8_t *)row;
        for (uint32_t i = 0; i < w->cols; i++)
            out[i] = (float)q[i] * w->apr_q8_scale;
        return RF_OK;
    }
    return rf_dequantize(w->dtype, row, out, w->row_elems, err);
}
