/* Scalar reference of rk_matmul ("rk math", docs/kernels.md): one weight row against one
 * quantized activation column, written for obviousness. Every SIMD variant, the GEMM and any
 * thread split must return exactly these bits.
 * Not for: speed. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "common/blocks.h"
#include "common/half.h"
#include "common/quant_dot.h"
#include "common/quant_math.h"
#include "cpu/matmul_internal.h"

/* Block b of row r, as the block's own bytes: in place for ROWS, unpacked into buf for R16. */
static const uint8_t *row_block(const rk_matrix *w, int64_t r, int64_t b, size_t bb, uint8_t *buf)
{
    if (w->layout == RK_LAYOUT_R16) {
        rk_r16_block(w->type, rk_r16_tile(w, r / 16, b), (int)(r % 16), buf);
        return buf;
    }
    return (const uint8_t *)w->data + (size_t)r * w->row_stride + (size_t)b * bb;
}

/* Q8_0 activation block: d (f16) | qs[32]. */
static float act_q8_0(const uint8_t *a, const int8_t **qs)
{
    *qs = (const int8_t *)(a + offsetof(rk_block_q8_0, qs));
    return rk_load_f16(a + offsetof(rk_block_q8_0, d));
}

static int32_t isum32(const int8_t *q, const int8_t *x)
{
    int32_t s = 0;
    for (int i = 0; i < 32; i++)
        s += (int32_t)q[i] * (int32_t)x[i];
    return s;
}

/* Q4_0, Q5_0, Q8_0, APR_Q4, APR_Q8 against Q8_0: acc = acc + (float)isum * (d_w * d_x). */
static float dot_blk32(const rk_matrix *w, int64_t r, const uint8_t *act, int64_t nb)
{
    const rk_type type = w->type;
    const size_t bb = rk_type_traits_get(type)->block_bytes;
    uint8_t buf[256];
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row_block(w, r, b, bb, buf);
        int8_t q[32] = {0};
        float d = 0.0f;
        switch (type) {
        case RK_TYPE_Q4_0: rk_qform_q4_0(blk, q, &d); break;
        case RK_TYPE_Q5_0: rk_qform_q5_0(blk, q, &d); break;
        case RK_TYPE_Q8_0: rk_qform_q8_0(blk, q, &d); break;
        case RK_TYPE_APR_Q4: rk_qform_apr_q4(blk, q, &d); break;
        case RK_TYPE_APR_Q8:
            for (int i = 0; i < 32; i++)
                q[i] = (int8_t)blk[i];
            d = w->scale;
            break;
        case RK_TYPE_F32:
        case RK_TYPE_F16:
        case RK_TYPE_Q4_1:
        case RK_TYPE_Q5_1:
        case RK_TYPE_Q8_1:
        case RK_TYPE_Q2_K:
        case RK_TYPE_Q3_K:
        case RK_TYPE_Q4_K:
        case RK_TYPE_Q5_K:
        case RK_TYPE_Q6_K:
        case RK_TYPE_Q8_K:
        case RK_TYPE_BF16: return NAN;
        }
        const int8_t *x;
        const float dx = act_q8_0(act + b * 34, &x);
        const int32_t isum = isum32(q, x);
        acc = acc + (float)isum * (d * dx);
    }
    return acc;
}

/* Q4_1, Q5_1 against Q8_1 (d | s | qs[32]): acc = acc + ((d_w * d_x) * (float)isum + m_w * s_x). */
static float dot_blk32_min(const rk_matrix *w, int64_t r, const uint8_t *act, int64_t nb)
{
    const size_t bb = rk_type_traits_get(w->type)->block_bytes;
    uint8_t buf[256];
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row_block(w, r, b, bb, buf);
        int8_t q[32] = {0};
        float d, m;
        if (w->type == RK_TYPE_Q4_1)
            rk_qform_q4_1(blk, q, &d, &m);
        else
            rk_qform_q5_1(blk, q, &d, &m);
        const uint8_t *a = act + b * 36;
        const float dx = rk_load_f16(a + offsetof(rk_block_q8_1, d));
        const float sx = rk_load_f16(a + offsetof(rk_block_q8_1, s));
        const int32_t isum = isum32(q, (const int8_t *)(a + offsetof(rk_block_q8_1, qs)));
        acc = acc + ((d * dx) * (float)isum + m * sx);
    }
    return acc;
}

/* K-quants against Q8_K (d f32 | qs[256] | bsums[16] int16), per super-block:
 *   isum = sum_j sc[j] * sum_{i in j} q[i] * x[i];  msum = sum_j mn[j] * (sum of x over j)
 *   with mins:    acc = acc + ((d_w * d_x) * (float)isum - (dmin_w * d_x) * (float)msum)
 *   without:      acc = acc + (d_w * d_x) * (float)isum */
static float dot_kquant(const rk_matrix *w, int64_t r, const uint8_t *act, int64_t nb)
{
    const rk_type type = w->type;
    const size_t bb = rk_type_traits_get(type)->block_bytes;
    uint8_t buf[256];
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row_block(w, r, b, bb, buf);
        int8_t q[256] = {0};
        int32_t sc[16], mn[16] = {0};
        float d = 0.0f, dmin = 0.0f;
        int nsub = 16, mins = 0;
        switch (type) {
        case RK_TYPE_Q2_K:
            rk_qform_q2_K(blk, q, sc, mn, &d, &dmin);
            mins = 1;
            break;
        case RK_TYPE_Q3_K: rk_qform_q3_K(blk, q, sc, &d); break;
        case RK_TYPE_Q4_K:
            rk_qform_q4_K(blk, q, sc, mn, &d, &dmin);
            nsub = 8;
            mins = 1;
            break;
        case RK_TYPE_Q5_K:
            rk_qform_q5_K(blk, q, sc, mn, &d, &dmin);
            nsub = 8;
            mins = 1;
            break;
        case RK_TYPE_Q6_K: rk_qform_q6_K(blk, q, sc, &d); break;
        case RK_TYPE_F32:
        case RK_TYPE_F16:
        case RK_TYPE_Q4_0:
        case RK_TYPE_Q4_1:
        case RK_TYPE_Q5_0:
        case RK_TYPE_Q5_1:
        case RK_TYPE_Q8_0:
        case RK_TYPE_Q8_1:
        case RK_TYPE_Q8_K:
        case RK_TYPE_BF16:
        case RK_TYPE_APR_Q4:
        case RK_TYPE_APR_Q8: return NAN;
        }
        const uint8_t *a = act + b * 292;
        const float dx = rk_load_f32le(a + offsetof(rk_block_q8_K, d));
        const int8_t *x = (const int8_t *)(a + offsetof(rk_block_q8_K, qs));
        const uint8_t *bsums = a + offsetof(rk_block_q8_K, bsums);
        const int len = 256 / nsub;
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < nsub; j++) {
            int32_t s = 0, xs = 0;
            for (int i = j * len; i < (j + 1) * len; i++)
                s += (int32_t)q[i] * (int32_t)x[i];
            for (int g = j * len / 16; g < (j + 1) * len / 16; g++)
                xs += (int16_t)rk_load_u16le(bsums + 2 * g);
            isum += sc[j] * s;
            msum += mn[j] * xs;
        }
        if (mins)
            acc = acc + ((d * dx) * (float)isum - (dmin * dx) * (float)msum);
        else
            acc = acc + (d * dx) * (float)isum;
    }
    return acc;
}

/* F32 / F16 / BF16 against F32: the 16-lane sum of fused multiply-adds. */
static float dot_float(rk_type type, const uint8_t *row, const float *x, int64_t k)
{
    float s[16] = {0};
    for (int64_t i = 0; i < k; i++) {
        float wv = 0.0f;
        switch (type) {
        case RK_TYPE_F32: wv = rk_load_f32le(row + 4 * i); break;
        case RK_TYPE_F16: wv = rk_f16_to_f32(rk_load_u16le(row + 2 * i)); break;
        case RK_TYPE_BF16: wv = rk_bf16_to_f32(rk_load_u16le(row + 2 * i)); break;
        case RK_TYPE_Q4_0:
        case RK_TYPE_Q4_1:
        case RK_TYPE_Q5_0:
        case RK_TYPE_Q5_1:
        case RK_TYPE_Q8_0:
        case RK_TYPE_Q8_1:
        case RK_TYPE_Q2_K:
        case RK_TYPE_Q3_K:
        case RK_TYPE_Q4_K:
        case RK_TYPE_Q5_K:
        case RK_TYPE_Q6_K:
        case RK_TYPE_Q8_K:
        case RK_TYPE_APR_Q4:
        case RK_TYPE_APR_Q8: return NAN;
        }
        s[i % 16] = fmaf(wv, x[i], s[i % 16]);
    }
    return rk_sum16_lanes(s);
}

float rk_dot_row_ref(const rk_matrix *w, int64_t r, const uint8_t *act)
{
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_stride;
    switch (w->type) {
    case RK_TYPE_Q4_0:
    case RK_TYPE_Q5_0:
    case RK_TYPE_Q8_0:
    case RK_TYPE_APR_Q4:
    case RK_TYPE_APR_Q8: return dot_blk32(w, r, act, w->k / 32);
    case RK_TYPE_Q4_1:
    case RK_TYPE_Q5_1: return dot_blk32_min(w, r, act, w->k / 32);
    case RK_TYPE_Q2_K:
    case RK_TYPE_Q3_K:
    case RK_TYPE_Q4_K:
    case RK_TYPE_Q5_K:
    case RK_TYPE_Q6_K: return dot_kquant(w, r, act, w->k / 256);
    case RK_TYPE_F32:
    case RK_TYPE_F16:
    case RK_TYPE_BF16: return dot_float(w->type, row, (const float *)(const void *)act, w->k);
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q8_K: return NAN;
    }
    return NAN;
}

void rk_mm_ref(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act, size_t act_stride,
               int64_t n_cols, float *y, size_t y_stride)
{
    for (int64_t c = 0; c < n_cols; c++)
        for (int64_t r = r0; r < r1; r++)
            y[(size_t)c * y_stride + (size_t)r] =
                rk_dot_row_ref(w, r, act + (size_t)c * act_stride);
}
