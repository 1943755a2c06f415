/* Scalar reference quantizers and dequantizers (contract in quant_ref.h).
 * Every expression keeps llama.cpp's float temporaries and left-to-right evaluation order, and the
 * project builds with -ffp-contract=off: reordering or fusing any of them changes bytes in rare
 * blocks (docs/formats/quantization.md). Narrowing conversions go through quant_math.h, which
 * states what x86-64 does where C leaves it undefined. Not for: speed or argument checking (see
 * rosetta/quant.h). */
#include "cpu/quant_ref.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "common/apr_quant.h"
#include "common/blocks.h"
#include "common/quant_dequant.h"
#include "common/quant_math.h"

/* "All zero" threshold of the symmetric searches and the Q6_K super-block (ggml GROUP_MAX_EPS). */
#define RK_GROUP_MAX_EPS 1e-15f

static inline int rk_min_i(int a, int b) { return a < b ? a : b; }

static inline int rk_clamp_i(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* ======================================================================================
 * Row drivers: apply a per-block function to k / block_size consecutive blocks.
 * ====================================================================================== */

typedef void (*rk_quant_block_fn)(const float *x, uint8_t *b);
typedef void (*rk_dequant_block_fn)(const uint8_t *b, float *y);

static void rk_quantize_blocks(rk_quant_block_fn fn, int block, size_t bytes, const float *x,
                               void *y, int64_t k)
{
    uint8_t *out = y;
    for (int64_t i = 0; i < k / block; i++)
        fn(x + i * block, out + (size_t)i * bytes);
}

static void rk_dequantize_blocks(rk_dequant_block_fn fn, int block, size_t bytes, const void *x,
                                 float *y, int64_t k)
{
    const uint8_t *in = x;
    for (int64_t i = 0; i < k / block; i++)
        fn(in + (size_t)i * bytes, y + i * block);
}

/* ======================================================================================
 * 32-element types (docs/formats/quantization.md)
 * ====================================================================================== */

/* The element of largest magnitude with its sign (first one wins on ties). */
static inline float rk_signed_absmax(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        const float v = x[j];
        if (amax < fabsf(v)) {
            amax = fabsf(v);
            max = v;
        }
    }
    return max;
}

static inline void rk_min_max(const float *x, int n, float *min_out, float *max_out)
{
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        const float v = x[j];
        if (v < min)
            min = v;
        if (v > max)
            max = v;
    }
    *min_out = min;
    *max_out = max;
}

/* Q4_0: d = (signed extreme) / -8; nibble = min(15, trunc(x / d + 8.5)), with the f32 d. */
static void rk_q4_0_block(const float *x, uint8_t *b)
{
    const float max = rk_signed_absmax(x, 32);
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    rk_store_f16(b + offsetof(rk_block_q4_0, d), d);
    uint8_t *qs = b + offsetof(rk_block_q4_0, qs);
    for (int j = 0; j < 16; j++) {
        const float x0 = x[j] * id;
        const float x1 = x[j + 16] * id;
        const int q0 = rk_min_i(15, rk_float_to_i8_x86(x0 + 8.5f));
        const int q1 = rk_min_i(15, rk_float_to_i8_x86(x1 + 8.5f));
        qs[j] = rk_wrap_u8(rk_wrap_u8(q0) | (rk_wrap_u8(q1) << 4));
    }
}

/* Q4_1: d = (max - min) / 15, m = min; nibble = min(15, trunc((x - min) / d + 0.5)). */
static void rk_q4_1_block(const float *x, uint8_t *b)
{
    float min, max;
    rk_min_max(x, 32, &min, &max);
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    rk_store_f16(b + offsetof(rk_block_q4_1, d), d);
    rk_store_f16(b + offsetof(rk_block_q4_1, m), min);
    uint8_t *qs = b + offsetof(rk_block_q4_1, qs);
    for (int j = 0; j < 16; j++) {
        const float x0 = (x[j] - min) * id;
        const float x1 = (x[j + 16] - min) * id;
        const int q0 = rk_min_i(15, rk_float_to_i8_x86(x0 + 0.5f));
        const int q1 = rk_min_i(15, rk_float_to_i8_x86(x1 + 0.5f));
        qs[j] = rk_wrap_u8(rk_wrap_u8(q0) | (rk_wrap_u8(q1) << 4));
    }
}

/* Packs 32 five-bit quants (split halves) into qs[16] and the 32 fifth bits into qh. */
static void rk_pack_q5(const uint8_t *q, uint8_t *qs, uint8_t *qh_bytes)
{
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        const uint8_t q0 = q[j], q1 = q[j + 16];
        qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
        qh |= ((q0 & 0x10u) >> 4) << j;
        qh |= ((q1 & 0x10u) >> 4) << (j + 16);
    }
    rk_store_u32le(qh_bytes, qh);
}

/* Q5_0: d = (signed extreme) / -16; q = min(31, trunc(x / d + 16.5)). */
static void rk_q5_0_block(const float *x, uint8_t *b)
{
    const float max = rk_signed_absmax(x, 32);
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    rk_store_f16(b + offsetof(rk_block_q5_0, d), d);
    uint8_t q[32];
    for (int j = 0; j < 32; j++)
        q[j] = rk_wrap_u8(rk_min_i(31, rk_float_to_i8_x86(x[j] * id + 16.5f)));
    rk_pack_q5(q, b + offsetof(rk_block_q5_0, qs), b + offsetof(rk_block_q5_0, qh));
}

/* Q5_1: d = (max - min) / 31, m = min; q = trunc((x - min) / d + 0.5) (no clamp). */
static void rk_q5_1_block(const float *x, uint8_t *b)
{
    float min, max;
    rk_min_max(x, 32, &min, &max);
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    rk_store_f16(b + offsetof(rk_block_q5_1, d), d);
    rk_store_f16(b + offsetof(rk_block_q5_1, m), min);
    uint8_t q[32];
    for (int j = 0; j < 32; j++)
        q[j] = rk_float_to_u8_x86((x[j] - min) * id + 0.5f);
    rk_pack_q5(q, b + offsetof(rk_block_q5_1, qs), b + offsetof(rk_block_q5_1, qh));
}

/* Q8_0 / Q8_1 scale: max|x| / 127 (MAX(a, b) = a > b ? a : b, as ggml). */
static inline float rk_q8_scale(const float *x)
{
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    return amax / 127.0f;
}

/* Q8_0: q = roundf(x / d) (half away from zero), with the f32 d. */
static void rk_q8_0_block(const float *x, uint8_t *b)
{
    const float d = rk_q8_scale(x);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    rk_store_f16(b + offsetof(rk_block_q8_0, d), d);
    uint8_t *qs = b + offsetof(rk_block_q8_0, qs);
    for (int j = 0; j < 32; j++)
        qs[j] = (uint8_t)rk_float_to_i8_x86(roundf(x[j] * id));
}

/* Q8_1: as Q8_0, plus s = f16(sum(q) * d). */
static void rk_q8_1_block(const float *x, uint8_t *b)
{
    const float d = rk_q8_scale(x);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    rk_store_f16(b + offsetof(rk_block_q8_1, d), d);
    uint8_t *qs = b + offsetof(rk_block_q8_1, qs);
    int sum = 0;
    for (int j = 0; j < 16; j++) {
        const int8_t q0 = rk_float_to_i8_x86(roundf(x[j] * id));
        const int8_t q1 = rk_float_to_i8_x86(roundf(x[j + 16] * id));
        qs[j] = (uint8_t)q0;
        qs[j + 16] = (uint8_t)q1;
        sum += q0;
        sum += q1;
    }
    rk_store_f16(b + offsetof(rk_block_q8_1, s), (float)sum * d);
}

/* ======================================================================================
 * Scale searches shared by the K-quants and the weighted paths (docs/formats/quantization.md)
 * ====================================================================================== */

/* Symmetric search with weights qw (or x^2 when qw is NULL; ggml's rmse_type 1):
 * L[i] = l + nmax with l in [-nmax, nmax-1]; returns the scale (sign opposite to the extreme). */
static float rk_make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *qw)
{
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < RK_GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++)
            L[i] = 0;
        return 0.0f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = rk_clamp_i(rk_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float w = qw ? qw[i] : x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = rk_clamp_i(rk_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = qw ? qw[i] : x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + rk_clamp_i(rk_nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's symmetric search with coordinate-wise refinement (weights x^2). All-zero input gives
 * L = 0 without the +nmax offset. */
static float rk_make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < RK_GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++)
            L[i] = 0;
        return 0.0f;
    }
    const float iscale = (float)-nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = rk_clamp_i(rk_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0.0f) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                const int new_l = rk_clamp_i(rk_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (n_changed == 0)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Weighted error term of the asymmetric searches. */
static inline float rk_err_term(float diff, bool use_mad)
{
    return use_mad ? fabsf(diff) : diff * diff;
}

/* Asymmetric (scale + min) search: ggml's make_qkx2_quants (strict == 0 test on the range) and
 * make_qkx3_quants (<= test); weights are never NULL here. L in [0, nmax]; *the_min = -min >= 0. */
static float rk_make_qkx_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                                float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                                bool use_mad, bool empty_when_le)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0.0f)
        min = 0.0f;
    if (empty_when_le ? max <= min : max == min) {
        for (int i = 0; i < n; i++)
            L[i] = 0;
        *the_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1.0f / iscale;
    float best_error = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = rk_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)rk_clamp_i(l, 0, nmax);
        const float diff = scale * (float)L[i] + min - x[i];
        best_error += weights[i] * rk_err_term(diff, use_mad);
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = rk_clamp_i(rk_nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0.0f) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0.0f) {
                this_min = 0.0f;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0.0f;
            for (int i = 0; i < n; i++) {
                const float diff = this_scale * (float)Laux[i] + this_min - x[i];
                cur_error += weights[i] * rk_err_term(diff, use_mad);
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Quantizes the non-negative sub-block scales (or mins) x[0..n) to L in [0, nmax] under weights
 * quant_weights (ggml's make_qp_quants). L is uint8_t and its narrowing is modular, as in ggml. */
static float rk_make_qp_quants(int n, int nmax, const float *x, uint8_t *L,
                               const float *quant_weights)
{
    float max = 0.0f;
    for (int i = 0; i < n; i++)
        max = max > x[i] ? max : x[i];
    if (max < RK_GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++)
            L[i] = 0;
        return 0.0f;
    }
    float iscale = (float)nmax / max;
    for (int i = 0; i < n; i++)
        L[i] = rk_wrap_u8(rk_nearest_int(iscale * x[i]));
    const float scale = 1.0f / iscale;
    float best_mse = 0.0f;
    for (int i = 0; i < n; i++) {
        const float diff = x[i] - scale * (float)L[i];
        const float w = quant_weights[i];
        best_mse += w * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0)
            continue;
        const float iscale_is = (0.1f * (float)is + (float)nmax) / max;
        const float scale_is = 1.0f / iscale_is;
        float mse = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = rk_min_i(nmax, rk_nearest_int(iscale_is * x[i]));
            const float diff = x[i] - scale_is * (float)l;
            const float w = quant_weights[i];
            mse += w * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = rk_min_i(nmax, rk_nearest_int(iscale * x[i]));
        L[i] = rk_wrap_u8(l);
        const float w = quant_weights[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = quant_weights[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            if (slx > 0.0f && sl2 > 0.0f) {
                const int new_l = rk_min_i(nmax, rk_nearest_int(x[i] * sl2 / slx));
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = rk_wrap_u8(new_l);
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (n_changed == 0)
            break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Sum of squares of n elements, ascending order. */
static inline float rk_sum_sq(const float *x, int64_t n)
{
    float s = 0.0f;
    for (int64_t j = 0; j < n; j++)
        s += x[j] * x[j];
    return s;
}

/* ======================================================================================
 * Q2_K
 * ====================================================================================== */

/* qs[32h + l] holds the 2-bit quants of weights 128h + l + 32t at bits 2t (t = 0..3). */
static void rk_pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *g = L + 128 * h + l;
            qs[32 * h + l] = rk_wrap_u8(g[0] | (g[32] << 2) | (g[64] << 4) | (g[96] << 6));
        }
}

/* Re-derives each sub-block's quants from the stored (f16-rounded) scales; a sub-block whose
 * scale is zero keeps the quants of the search. */
static void rk_q2_K_requantize(const float *x, const uint8_t *scales, float d_all, float dmin_all,
                               uint8_t *L)
{
    for (int j = 0; j < 16; j++) {
        const float d = d_all * (float)(scales[j] & 0x0f);
        if (d == 0.0f)
            continue;
        const float dm = dmin_all * (float)(scales[j] >> 4);
        for (int ii = 0; ii < 16; ii++) {
            const int l = rk_nearest_int((x[16 * j + ii] + dm) / d);
            L[16 * j + ii] = (uint8_t)rk_clamp_i(l, 0, 3);
        }
    }
}

static void rk_q2_K_block(const float *x, uint8_t *b)
{
    uint8_t L[256], Laux[16];
    float weights[16], mins[16], scales[16];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 16; j++) {
        for (int l = 0; l < 16; l++)
            weights[l] = fabsf(x[16 * j + l]);
        scales[j] = rk_make_qkx_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                       -0.5f, 0.1f, 15, true, false);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    uint8_t *sc = b + offsetof(rk_block_q2_K, scales);
    uint8_t *dp = b + offsetof(rk_block_q2_K, d);
    uint8_t *dminp = b + offsetof(rk_block_q2_K, dmin);
    if (max_scale > 0.0f) {
        const float iscale = 15.0f / max_scale;
        for (int j = 0; j < 16; j++)
            sc[j] = rk_wrap_u8(rk_nearest_int(iscale * scales[j]));
        rk_store_f16(dp, max_scale / 15.0f);
    } else {
        memset(sc, 0, 16);
        rk_store_f16(dp, 0.0f);
    }
    if (max_min > 0.0f) {
        const float iscale = 15.0f / max_min;
        for (int j = 0; j < 16; j++) {
            const int32_t l = rk_nearest_int(iscale * mins[j]);
            sc[j] = rk_wrap_u8((int32_t)(sc[j] | ((uint32_t)l << 4)));
        }
        rk_store_f16(dminp, max_min / 15.0f);
    } else {
        rk_store_f16(dminp, 0.0f);
    }
    rk_q2_K_requantize(x, sc, rk_load_f16(dp), rk_load_f16(dminp), L);
    rk_pack_2bit(L, b + offsetof(rk_block_q2_K, qs));
}

/* Weighted Q2_K (ggml quantize_row_q2_K_impl); qw = the imatrix slice of this super-block. */
static void rk_q2_K_block_weighted(const float *x, uint8_t *b, const float *qw)
{
    uint8_t L[256], Laux[16], Ls[16], Lm[16];
    float mins[16], scales[16], sw[16], weight[16];
    memset(sw, 0, sizeof sw);
    const float sigma2 = rk_sum_sq(x, 256) / 256.0f;
    for (int j = 0; j < 16; j++) {
        for (int l = 0; l < 16; l++)
            weight[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
        for (int l = 0; l < 16; l++)
            sw[j] += weight[l];
        scales[j] = rk_make_qkx_quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f,
                                       0.05f, 36, false, true);
    }
    const float dm = rk_make_qp_quants(16, 15, scales, Ls, sw);
    const float mm = rk_make_qp_quants(16, 15, mins, Lm, sw);
    uint8_t *dp = b + offsetof(rk_block_q2_K, d);
    uint8_t *dminp = b + offsetof(rk_block_q2_K, dmin);
    rk_store_f16(dp, dm);
    rk_store_f16(dminp, mm);
    uint8_t *sc = b + offsetof(rk_block_q2_K, scales);
    for (int j = 0; j < 16; j++)
        sc[j] = rk_wrap_u8(Ls[j] | (Lm[j] << 4));
    rk_q2_K_requantize(x, sc, rk_load_f16(dp), rk_load_f16(dminp), L);
    rk_pack_2bit(L, b + offsetof(rk_block_q2_K, qs));
}

/* ======================================================================================
 * Q3_K
 * ====================================================================================== */

/* Stores sixteen 6-bit scales l[j] (0..63) into scales[12] (layout in quant_dequant.h). */
static void rk_q3_K_pack_scales(const int *l6, uint8_t *scales)
{
    memset(scales, 0, 12);
    for (int j = 0; j < 16; j++) {
        const int l = l6[j];
        if (j < 8)
            scales[j] = (uint8_t)(l & 0x0f);
        else
            scales[j - 8] = rk_wrap_u8(scales[j - 8] | ((l & 0x0f) << 4));
        scales[8 + j % 4] = rk_wrap_u8(scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
    }
}

/* Requantizes with the stored scales, then splits L (0..7) into hmask and 2-bit qs. */
static void rk_q3_K_finish(const float *x, uint8_t *b, int8_t *L)
{
    const uint8_t *scales = b + offsetof(rk_block_q3_K, scales);
    const float d_all = rk_load_f16(b + offsetof(rk_block_q3_K, d));
    for (int j = 0; j < 16; j++) {
        const int8_t sc = rk_wrap_i8(rk_q3_K_scale(scales, j));
        const float d = d_all * (float)sc;
        if (d == 0.0f)
            continue;
        for (int ii = 0; ii < 16; ii++) {
            const int l = rk_clamp_i(rk_nearest_int(x[16 * j + ii] / d), -4, 3);
            L[16 * j + ii] = (int8_t)(l + 4);
        }
    }
    /* hmask[e % 32] bit e / 32 = bit 2 of L[e] */
    uint8_t *hmask = b + offsetof(rk_block_q3_K, hmask);
    memset(hmask, 0, 32);
    for (int e = 0; e < 256; e++) {
        if (L[e] > 3) {
            hmask[e % 32] = (uint8_t)(hmask[e % 32] | (1u << (e / 32)));
            L[e] = (int8_t)(L[e] - 4);
        }
    }
    uint8_t Lu[256];
    for (int e = 0; e < 256; e++)
        Lu[e] = (uint8_t)L[e];
    rk_pack_2bit(Lu, b + offsetof(rk_block_q3_K, qs));
}

static void rk_q3_K_block(const float *x, uint8_t *b)
{
    int8_t L[256];
    float scales[16];
    float max_scale = 0.0f, amax = 0.0f;
    for (int j = 0; j < 16; j++) {
        scales[j] = rk_make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
        const float a = fabsf(scales[j]);
        if (a > amax) {
            amax = a;
            max_scale = scales[j];
        }
    }
    uint8_t *dp = b + offsetof(rk_block_q3_K, d);
    if (max_scale != 0.0f) {
        const float iscale = -32.0f / max_scale;
        int l6[16];
        for (int j = 0; j < 16; j++) {
            const int8_t l = rk_wrap_i8(rk_nearest_int(iscale * scales[j]));
            l6[j] = rk_clamp_i(l, -32, 31) + 32;
        }
        rk_q3_K_pack_scales(l6, b + offsetof(rk_block_q3_K, scales));
        rk_store_f16(dp, 1.0f / iscale);
    } else {
        memset(b + offsetof(rk_block_q3_K, scales), 0, 12);
        rk_store_f16(dp, 0.0f);
    }
    rk_q3_K_finish(x, b, L);
}

static void rk_q3_K_block_weighted(const float *x, uint8_t *b, const float *qw)
{
    int8_t L[256], Ls[16];
    float scales[16], weight[16], sw[16];
    const float sigma2 = 2.0f * rk_sum_sq(x, 256) / 256.0f;
    for (int j = 0; j < 16; j++) {
        for (int l = 0; l < 16; l++)
            weight[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
        float sumw = 0.0f;
        for (int l = 0; l < 16; l++)
            sumw += weight[l];
        sw[j] = sumw;
        scales[j] = rk_make_qx_quants(16, 4, x + 16 * j, L + 16 * j, weight);
    }
    const float d_block = rk_make_qx_quants(16, 32, scales, Ls, sw);
    int l6[16];
    for (int j = 0; j < 16; j++)
        l6[j] = Ls[j];
    rk_q3_K_pack_scales(l6, b + offsetof(rk_block_q3_K, scales));
    rk_store_f16(b + offsetof(rk_block_q3_K, d), d_block);
    rk_q3_K_finish(x, b, L);
}

/* ======================================================================================
 * Q4_K and Q5_K
 * ====================================================================================== */

/* Packs eight 6-bit scales and mins into scales[12] (layout in quant_dequant.h). The j < 4
 * stores happen before the j >= 4 ORs, so no clearing is needed. */
static void rk_k4_pack_scales(const uint8_t *ls, const uint8_t *lm, uint8_t *scales)
{
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            scales[j] = ls[j];
            scales[j + 4] = lm[j];
        } else {
            scales[j + 4] = rk_wrap_u8((ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4));
            scales[j - 4] = rk_wrap_u8(scales[j - 4] | ((ls[j] >> 4) << 6));
            scales[j] = rk_wrap_u8(scales[j] | ((lm[j] >> 4) << 6));
        }
    }
}

/* Requantizes 8 sub-blocks of 32 to [0, nmax] with the stored scales; a zero scale keeps L. */
static void rk_k4_requantize(const float *x, const uint8_t *scales, float d_all, float dmin_all,
                             int nmax, uint8_t *L)
{
    for (int j = 0; j < 8; j++) {
        int sc, m;
        rk_k4_scale_min(scales, j, &sc, &m);
        const float d = d_all * (float)sc;
        if (d == 0.0f)
            continue;
        const float dm = dmin_all * (float)m;
        for (int ii = 0; ii < 32; ii++) {
            const int l = rk_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)rk_clamp_i(l, 0, nmax);
        }
    }
}

/* The unweighted search of Q4_K / Q5_K: 8 sub-blocks, weights av_x + |x|, 6-bit scales from
 * max/63. Fills scales[12], d, dmin and L (0..nmax). */
static void rk_k4_search_ref(const float *x, int nmax, float rmin, int nstep, uint8_t *scales_b,
                             uint8_t *dp, uint8_t *dminp, uint8_t *L)
{
    uint8_t Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++)
            sum_x2 += xs[l] * xs[l];
        const float av_x = sqrtf(sum_x2 / 32.0f);
        for (int l = 0; l < 32; l++)
            weights[l] = av_x + fabsf(xs[l]);
        scales[j] = rk_make_qkx_quants(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin,
                                       0.1f, nstep, false, false);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        /* narrowed to uint8_t before the clamp, as in ggml: -1 becomes 255, then 63 */
        const uint8_t s = rk_wrap_u8(rk_nearest_int(inv_scale * scales[j]));
        const uint8_t m = rk_wrap_u8(rk_nearest_int(inv_min * mins[j]));
        ls[j] = s < 63 ? s : 63;
        lm[j] = m < 63 ? m : 63;
    }
    rk_k4_pack_scales(ls, lm, scales_b);
    rk_store_f16(dp, max_scale / 63.0f);
    rk_store_f16(dminp, max_min / 63.0f);
    rk_k4_requantize(x, scales_b, rk_load_f16(dp), rk_load_f16(dminp), nmax, L);
}

/* The weighted search of Q4_K / Q5_K (ggml quantize_row_q4_K_impl / q5_K_impl): row statistic
 * sigma2 of this super-block, weights qw * sqrt(sigma2 + x^2), scales by make_qp_quants.
 * clamp63 reproduces the MIN(63, .) that only the Q5_K path applies. */
static void rk_k4_search_weighted(const float *x, const float *qw, int nmax, bool clamp63,
                                  uint8_t *scales_b, uint8_t *dp, uint8_t *dminp, uint8_t *L)
{
    uint8_t Laux[32], Ls[8], Lm[8];
    float weights[32], sw[8], mins[8], scales[8];
    const float sigma2 = 2.0f * rk_sum_sq(x, 256) / 256.0f;
    for (int j = 0; j < 8; j++) {
        for (int l = 0; l < 32; l++)
            weights[l] = qw[32 * j + l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
        float sumw = 0.0f;
        for (int l = 0; l < 32; l++)
            sumw += weights[l];
        sw[j] = sumw;
        scales[j] = rk_make_qkx_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                       -0.9f, 0.05f, 36, false, true);
    }
    const float d_block = rk_make_qp_quants(8, 63, scales, Ls, sw);
    const float m_block = rk_make_qp_quants(8, 63, mins, Lm, sw);
    if (clamp63) {
        for (int j = 0; j < 8; j++) {
            Ls[j] = Ls[j] < 63 ? Ls[j] : 63;
            Lm[j] = Lm[j] < 63 ? Lm[j] : 63;
        }
    }
    rk_k4_pack_scales(Ls, Lm, scales_b);
    rk_store_f16(dp, d_block);
    rk_store_f16(dminp, m_block);
    rk_k4_requantize(x, scales_b, rk_load_f16(dp), rk_load_f16(dminp), nmax, L);
}

/* qs[32c + l] = L[64c + l] | L[64c + 32 + l] << 4 */
static void rk_q4_K_pack(const uint8_t *L, uint8_t *qs)
{
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            qs[32 * c + l] = rk_wrap_u8(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
}

/* Low 4 bits as Q4_K; bit 4 of L[64c + l] -> qh[l] bit 2c, of L[64c + 32 + l] -> bit 2c + 1. */
static void rk_q5_K_pack(const uint8_t *L, uint8_t *qh, uint8_t *qs)
{
    memset(qh, 0, 32);
    for (int c = 0; c < 4; c++) {
        const unsigned m1 = 1u << (2 * c), m2 = 2u << (2 * c);
        for (int l = 0; l < 32; l++) {
            int l1 = L[64 * c + l];
            if (l1 > 15) {
                l1 -= 16;
                qh[l] = (uint8_t)(qh[l] | m1);
            }
            int l2 = L[64 * c + 32 + l];
            if (l2 > 15) {
                l2 -= 16;
                qh[l] = (uint8_t)(qh[l] | m2);
            }
            qs[32 * c + l] = rk_wrap_u8(l1 | (l2 << 4));
        }
    }
}

static void rk_q4_K_block(const float *x, uint8_t *b)
{
    uint8_t L[256];
    rk_k4_search_ref(x, 15, -1.0f, 20, b + offsetof(rk_block_q4_K, scales),
                     b + offsetof(rk_block_q4_K, d), b + offsetof(rk_block_q4_K, dmin), L);
    rk_q4_K_pack(L, b + offsetof(rk_block_q4_K, qs));
}

static void rk_q4_K_block_weighted(const float *x, uint8_t *b, const float *qw)
{
    uint8_t L[256];
    rk_k4_search_weighted(x, qw, 15, false, b + offsetof(rk_block_q4_K, scales),
                          b + offsetof(rk_block_q4_K, d), b + offsetof(rk_block_q4_K, dmin), L);
    rk_q4_K_pack(L, b + offsetof(rk_block_q4_K, qs));
}

static void rk_q5_K_block(const float *x, uint8_t *b)
{
    uint8_t L[256];
    rk_k4_search_ref(x, 31, -0.5f, 15, b + offsetof(rk_block_q5_K, scales),
                     b + offsetof(rk_block_q5_K, d), b + offsetof(rk_block_q5_K, dmin), L);
    rk_q5_K_pack(L, b + offsetof(rk_block_q5_K, qh), b + offsetof(rk_block_q5_K, qs));
}

static void rk_q5_K_block_weighted(const float *x, uint8_t *b, const float *qw)
{
    uint8_t L[256];
    rk_k4_search_weighted(x, qw, 31, true, b + offsetof(rk_block_q5_K, scales),
                          b + offsetof(rk_block_q5_K, d), b + offsetof(rk_block_q5_K, dmin), L);
    rk_q5_K_pack(L, b + offsetof(rk_block_q5_K, qh), b + offsetof(rk_block_q5_K, qs));
}

/* ======================================================================================
 * Q6_K
 * ====================================================================================== */

/* qw == NULL: weights x^2 (reference); else the raw imatrix slice (ggml's weighted path). */
static void rk_q6_K_block_impl(const float *x, uint8_t *b, const float *qw)
{
    int8_t L[256];
    float scales[16];
    float max_scale = 0.0f, max_abs_scale = 0.0f;
    for (int ib = 0; ib < 16; ib++) {
        const float scale =
            rk_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, qw ? qw + 16 * ib : NULL);
        scales[ib] = scale;
        const float abs_scale = fabsf(scale);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    if (max_abs_scale < RK_GROUP_MAX_EPS) {
        memset(b, 0, sizeof(rk_block_q6_K));
        return;
    }
    const float iscale = -128.0f / max_scale;
    uint8_t *dp = b + offsetof(rk_block_q6_K, d);
    uint8_t *sc = b + offsetof(rk_block_q6_K, scales);
    rk_store_f16(dp, 1.0f / iscale);
    for (int ib = 0; ib < 16; ib++)
        sc[ib] = (uint8_t)rk_wrap_i8(rk_min_i(127, rk_nearest_int(iscale * scales[ib])));
    const float d_all = rk_load_f16(dp);
    for (int j = 0; j < 16; j++) {
        const float d = d_all * (float)(int8_t)sc[j];
        if (d == 0.0f)
            continue;
        for (int ii = 0; ii < 16; ii++) {
            const int l = rk_clamp_i(rk_nearest_int(x[16 * j + ii] / d), -32, 31);
            L[16 * j + ii] = (int8_t)(l + 32);
        }
    }
    uint8_t *ql = b + offsetof(rk_block_q6_K, ql);
    uint8_t *qh = b + offsetof(rk_block_q6_K, qh);
    for (int h = 0; h < 2; h++) {
        const int8_t *g = L + 128 * h;
        for (int l = 0; l < 32; l++) {
            const int q1 = g[l] & 0x0f, q2 = g[l + 32] & 0x0f, q3 = g[l + 64] & 0x0f,
                      q4 = g[l + 96] & 0x0f;
            ql[64 * h + l] = rk_wrap_u8(q1 | (q3 << 4));
            ql[64 * h + l + 32] = rk_wrap_u8(q2 | (q4 << 4));
            qh[32 * h + l] = rk_wrap_u8((g[l] >> 4) | ((g[l + 32] >> 4) << 2) |
                                        ((g[l + 64] >> 4) << 4) | ((g[l + 96] >> 4) << 6));
        }
    }
}

static void rk_q6_K_block(const float *x, uint8_t *b) { rk_q6_K_block_impl(x, b, NULL); }

/* ======================================================================================
 * Q8_K (activations of the K-quant dot products)
 * ====================================================================================== */

static void rk_q8_K_block(const float *x, uint8_t *b)
{
    uint8_t *qs = b + offsetof(rk_block_q8_K, qs);
    uint8_t *bsums = b + offsetof(rk_block_q8_K, bsums);
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < 256; j++) {
        const float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (amax == 0.0f) {
        /* ggml leaves bsums unwritten here; Rosetta writes zeros (see quant_ref.h) */
        rk_store_f32le(b + offsetof(rk_block_q8_K, d), 0.0f);
        memset(qs, 0, 256);
        memset(bsums, 0, 32);
        return;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < 256; j++)
        qs[j] = (uint8_t)rk_wrap_i8(rk_min_i(127, rk_nearest_int(iscale * x[j])));
    for (int g = 0; g < 16; g++) {
        int sum = 0;
        for (int i = 0; i < 16; i++)
            sum += (int8_t)qs[16 * g + i];
        rk_store_u16le(bsums + 2 * g, (uint16_t)(int16_t)sum);
    }
    rk_store_f32le(b + offsetof(rk_block_q8_K, d), 1.0f / iscale);
}

/* ======================================================================================
 * IQ4_NL and IQ4_XS (ggml quantize_row_iq4_nl_impl with ntry = 7, the llama-quantize path)
 * ====================================================================================== */

/* Index of the table value nearest to v (ties to the lower index only when strictly nearer). */
static int rk_iq4_best_index(float v)
{
    const int8_t *val = rk_iq4nl_values;
    if (v <= (float)val[0])
        return 0;
    if (v >= (float)val[15])
        return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < (float)val[mid])
            hi = mid;
        else
            lo = mid;
    }
    return v - (float)val[hi - 1] < (float)val[hi] - v ? hi - 1 : hi;
}

/* One super-block of n_sub sub-blocks of 32 (1 for IQ4_NL, 8 for IQ4_XS). Writes the f16 scale to
 * dp, the nibbles to q4 and, for n_sub > 1, the 6-bit sub-scales to scales_h / scales_l. */
static void rk_iq4_block(const float *x, int n_sub, const float *qw, uint8_t *dp, uint8_t *q4,
                         uint8_t *scales_h_bytes, uint8_t *scales_l)
{
    enum { NTRY = 7 };
    const int n = 32 * n_sub;
    float values[16];
    for (int i = 0; i < 16; i++)
        values[i] = (float)rk_iq4nl_values[i];
    uint8_t L[256];
    float scales[8], weight[32];

    float sigma2 = rk_sum_sq(x, n);
    sigma2 *= 2.0f / (float)n;

    float max_scale = 0.0f, amax_scale = 0.0f;
    for (int ib = 0; ib < n_sub; ib++) {
        const float *xb = x + 32 * ib;
        uint8_t *Lb = L + 32 * ib;
        if (qw) {
            for (int j = 0; j < 32; j++)
                weight[j] = qw[32 * ib + j] * sqrtf(sigma2 + xb[j] * xb[j]);
        } else {
            for (int j = 0; j < 32; j++)
                weight[j] = xb[j] * xb[j];
        }
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++) {
            const float ax = fabsf(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax < RK_GROUP_MAX_EPS) {
            scales[ib] = 0.0f;
            continue;
        }
        float d = -max / values[0];
        float id = 1.0f / d;
        float sumqx = 0.0f, sumq2 = 0.0f;
        for (int j = 0; j < 32; j++) {
            const int l = rk_iq4_best_index(id * xb[j]);
            Lb[j] = (uint8_t)l;
            const float q = values[l];
            const float w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
        float best = d * sumqx;
        for (int itry = -NTRY; itry <= NTRY; itry++) {
            id = (float)(itry + rk_iq4nl_values[0]) / max;
            sumqx = sumq2 = 0.0f;
            for (int j = 0; j < 32; j++) {
                const int l = rk_iq4_best_index(id * xb[j]);
                const float q = values[l];
                const float w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        const float abs_d = fabsf(d);
        if (abs_d > amax_scale) {
            amax_scale = abs_d;
            max_scale = d;
        }
    }

    if (n_sub > 1) {
        uint16_t scales_h = 0;
        const float d = -max_scale / 32.0f;
        rk_store_f16(dp, d);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int ib = 0; ib < n_sub; ib++) {
            int l = rk_clamp_i(rk_nearest_int(id * scales[ib]), -32, 31);
            const float dl = d * (float)l;
            const float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
            for (int j = 0; j < 32; j++)
                L[32 * ib + j] = (uint8_t)rk_iq4_best_index(idl * x[32 * ib + j]);
            l += 32;
            const uint8_t l_l = (uint8_t)(l & 0x0f);
            const uint8_t l_h = (uint8_t)(l >> 4);
            if (ib % 2 == 0)
                scales_l[ib / 2] = l_l;
            else
                scales_l[ib / 2] = (uint8_t)(scales_l[ib / 2] | (l_l << 4));
            scales_h = (uint16_t)(scales_h | (l_h << (2 * (ib % 8))));
        }
        rk_store_u16le(scales_h_bytes, scales_h);
    } else {
        rk_store_f16(dp, scales[0]);
        const float id = scales[0] != 0.0f ? 1.0f / scales[0] : 0.0f;
        for (int j = 0; j < n; j++)
            L[j] = (uint8_t)rk_iq4_best_index(id * x[j]);
    }

    for (int i = 0; i < n_sub; i++)
        for (int j = 0; j < 16; j++)
            q4[16 * i + j] = rk_wrap_u8(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

static void rk_iq4_nl_block_impl(const float *x, uint8_t *b, const float *qw)
{
    rk_iq4_block(x, 1, qw, b + offsetof(rk_block_iq4_nl, d), b + offsetof(rk_block_iq4_nl, qs),
                 NULL, NULL);
}

static void rk_iq4_xs_block_impl(const float *x, uint8_t *b, const float *qw)
{
    rk_iq4_block(x, 8, qw, b + offsetof(rk_block_iq4_xs, d), b + offsetof(rk_block_iq4_xs, qs),
                 b + offsetof(rk_block_iq4_xs, scales_h), b + offsetof(rk_block_iq4_xs, scales_l));
}

static void rk_iq4_nl_block(const float *x, uint8_t *b) { rk_iq4_nl_block_impl(x, b, NULL); }

static void rk_iq4_xs_block(const float *x, uint8_t *b) { rk_iq4_xs_block_impl(x, b, NULL); }

/* ======================================================================================
 * Weighted 32-element paths (ggml quantize_row_q4_0_impl ... q5_1_impl): sigma2 comes from the
 * whole row, so these are row functions.
 * ====================================================================================== */

typedef enum rk_w32_type { RK_W32_Q4_0, RK_W32_Q4_1, RK_W32_Q5_0, RK_W32_Q5_1 } rk_w32_type;

static void rk_quantize_row_w32(rk_w32_type type, const float *x, uint8_t *y, int64_t n_per_row,
                                const float *qw)
{
    const float sigma2 = rk_sum_sq(x, n_per_row) / (float)n_per_row;
    float weight[32];
    for (int64_t ib = 0; ib < n_per_row / 32; ib++) {
        const float *xb = x + 32 * ib;
        const float *qb = qw + 32 * ib;
        for (int j = 0; j < 32; j++)
            weight[j] = qb[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        switch (type) {
        case RK_W32_Q4_0: {
            uint8_t *b = y + ib * (int64_t)sizeof(rk_block_q4_0);
            int8_t L[32];
            const float d = rk_make_qx_quants(32, 8, xb, L, weight);
            rk_store_f16(b + offsetof(rk_block_q4_0, d), d);
            for (int j = 0; j < 16; j++)
                b[offsetof(rk_block_q4_0, qs) + (size_t)j] = rk_wrap_u8(L[j] | (L[j + 16] << 4));
            break;
        }
        case RK_W32_Q5_0: {
            uint8_t *b = y + ib * (int64_t)sizeof(rk_block_q5_0);
            int8_t L[32];
            uint8_t q[32];
            const float d = rk_make_qx_quants(32, 16, xb, L, weight);
            rk_store_f16(b + offsetof(rk_block_q5_0, d), d);
            for (int j = 0; j < 32; j++)
                q[j] = (uint8_t)L[j];
            rk_pack_q5(q, b + offsetof(rk_block_q5_0, qs), b + offsetof(rk_block_q5_0, qh));
            break;
        }
        case RK_W32_Q4_1: {
            uint8_t *b = y + ib * (int64_t)sizeof(rk_block_q4_1);
            uint8_t L[32], Laux[32];
            float min;
            const float d = rk_make_qkx_quants(32, 15, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36,
                                               false, true);
            rk_store_f16(b + offsetof(rk_block_q4_1, d), d);
            rk_store_f16(b + offsetof(rk_block_q4_1, m), -min);
            for (int j = 0; j < 16; j++)
                b[offsetof(rk_block_q4_1, qs) + (size_t)j] = rk_wrap_u8(L[j] | (L[j + 16] << 4));
            break;
        }
        case RK_W32_Q5_1: {
            uint8_t *b = y + ib * (int64_t)sizeof(rk_block_q5_1);
            uint8_t L[32], Laux[32];
            float min;
            const float d = rk_make_qkx_quants(32, 31, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36,
                                               false, true);
            rk_store_f16(b + offsetof(rk_block_q5_1, d), d);
            rk_store_f16(b + offsetof(rk_block_q5_1, m), -min);
            rk_pack_q5(L, b + offsetof(rk_block_q5_1, qs), b + offsetof(rk_block_q5_1, qh));
            break;
        }
        }
    }
}

/* ======================================================================================
 * Public entry points
 * ====================================================================================== */

#define RK_DEFINE_ROW_FUNCS(name, block_fn, dequant_fn, qk, bytes)                                 \
    void rk_quantize_row_##name##_ref(const float *x, void *y, int64_t k)                          \
    {                                                                                              \
        rk_quantize_blocks(block_fn, qk, bytes, x, y, k);                                          \
    }                                                                                              \
    void rk_dequantize_row_##name##_ref(const void *x, float *y, int64_t k)                        \
    {                                                                                              \
        rk_dequantize_blocks(dequant_fn, qk, bytes, x, y, k);                                      \
    }

RK_DEFINE_ROW_FUNCS(q4_0, rk_q4_0_block, rk_dequant_block_q4_0, 32, sizeof(rk_block_q4_0))
RK_DEFINE_ROW_FUNCS(q4_1, rk_q4_1_block, rk_dequant_block_q4_1, 32, sizeof(rk_block_q4_1))
RK_DEFINE_ROW_FUNCS(q5_0, rk_q5_0_block, rk_dequant_block_q5_0, 32, sizeof(rk_block_q5_0))
RK_DEFINE_ROW_FUNCS(q5_1, rk_q5_1_block, rk_dequant_block_q5_1, 32, sizeof(rk_block_q5_1))
RK_DEFINE_ROW_FUNCS(q8_0, rk_q8_0_block, rk_dequant_block_q8_0, 32, sizeof(rk_block_q8_0))
RK_DEFINE_ROW_FUNCS(q8_1, rk_q8_1_block, rk_dequant_block_q8_1, 32, sizeof(rk_block_q8_1))
RK_DEFINE_ROW_FUNCS(iq4_nl, rk_iq4_nl_block, rk_dequant_block_iq4_nl, 32, sizeof(rk_block_iq4_nl))
RK_DEFINE_ROW_FUNCS(q2_K, rk_q2_K_block, rk_dequant_block_q2_K, 256, sizeof(rk_block_q2_K))
RK_DEFINE_ROW_FUNCS(q3_K, rk_q3_K_block, rk_dequant_block_q3_K, 256, sizeof(rk_block_q3_K))
RK_DEFINE_ROW_FUNCS(q4_K, rk_q4_K_block, rk_dequant_block_q4_K, 256, sizeof(rk_block_q4_K))
RK_DEFINE_ROW_FUNCS(q5_K, rk_q5_K_block, rk_dequant_block_q5_K, 256, sizeof(rk_block_q5_K))
RK_DEFINE_ROW_FUNCS(q6_K, rk_q6_K_block, rk_dequant_block_q6_K, 256, sizeof(rk_block_q6_K))
RK_DEFINE_ROW_FUNCS(q8_K, rk_q8_K_block, rk_dequant_block_q8_K, 256, sizeof(rk_block_q8_K))
RK_DEFINE_ROW_FUNCS(iq4_xs, rk_iq4_xs_block, rk_dequant_block_iq4_xs, 256, sizeof(rk_block_iq4_xs))

/* Weighted super-block types: every row uses the same per-column weights. */
typedef void (*rk_weighted_block_fn)(const float *x, uint8_t *b, const float *qw);

static void rk_quantize_rows_weighted(rk_weighted_block_fn fn, rk_quant_block_fn ref_fn, int block,
                                      size_t bytes, const float *x, void *y, int64_t n_rows,
                                      int64_t n_per_row, const float *qw)
{
    uint8_t *out = y;
    const int64_t nb = n_per_row / block;
    for (int64_t r = 0; r < n_rows; r++) {
        const float *row = x + r * n_per_row;
        uint8_t *dst = out + (size_t)(r * nb) * bytes;
        for (int64_t i = 0; i < nb; i++) {
            if (qw)
                fn(row + i * block, dst + (size_t)i * bytes, qw + i * block);
            else
                ref_fn(row + i * block, dst + (size_t)i * bytes);
        }
    }
}

#define RK_DEFINE_IMATRIX_K(name, weighted_fn, ref_fn, qk, bytes)                                  \
    void rk_quantize_row_##name##_imatrix(const float *x, void *y, int64_t n_rows,                 \
                                          int64_t n_per_row, const float *quant_weights)           \
    {                                                                                              \
        rk_quantize_rows_weighted(weighted_fn, ref_fn, qk, bytes, x, y, n_rows, n_per_row,         \
                                  quant_weights);                                                  \
    }

RK_DEFINE_IMATRIX_K(q2_K, rk_q2_K_block_weighted, rk_q2_K_block, 256, sizeof(rk_block_q2_K))
RK_DEFINE_IMATRIX_K(q3_K, rk_q3_K_block_weighted, rk_q3_K_block, 256, sizeof(rk_block_q3_K))
RK_DEFINE_IMATRIX_K(q4_K, rk_q4_K_block_weighted, rk_q4_K_block, 256, sizeof(rk_block_q4_K))
RK_DEFINE_IMATRIX_K(q5_K, rk_q5_K_block_weighted, rk_q5_K_block, 256, sizeof(rk_block_q5_K))
RK_DEFINE_IMATRIX_K(q6_K, rk_q6_K_block_impl, rk_q6_K_block, 256, sizeof(rk_block_q6_K))
RK_DEFINE_IMATRIX_K(iq4_nl, rk_iq4_nl_block_impl, rk_iq4_nl_block, 32, sizeof(rk_block_iq4_nl))
RK_DEFINE_IMATRIX_K(iq4_xs, rk_iq4_xs_block_impl, rk_iq4_xs_block, 256, sizeof(rk_block_iq4_xs))

#define RK_DEFINE_IMATRIX_32(name, type_id, ref_fn, bytes)                                         \
    void rk_quantize_row_##name##_imatrix(const float *x, void *y, int64_t n_rows,                 \
                                          int64_t n_per_row, const float *quant_weights)           \
    {                                                                                              \
        uint8_t *out = y;                                                                          \
        const size_t row_bytes = (size_t)(n_per_row / 32) * (bytes);                               \
        for (int64_t r = 0; r < n_rows; r++) {                                                     \
            if (quant_weights)                                                                     \
                rk_quantize_row_w32(type_id, x + r * n_per_row, out + (size_t)r * row_bytes,       \
                                    n_per_row, quant_weights);                                     \
            else                                                                                   \
                rk_quantize_blocks(ref_fn, 32, bytes, x + r * n_per_row,                           \
                                   out + (size_t)r * row_bytes, n_per_row);                        \
        }                                                                                          \
    }

RK_DEFINE_IMATRIX_32(q4_0, RK_W32_Q4_0, rk_q4_0_block, sizeof(rk_block_q4_0))
RK_DEFINE_IMATRIX_32(q4_1, RK_W32_Q4_1, rk_q4_1_block, sizeof(rk_block_q4_1))
RK_DEFINE_IMATRIX_32(q5_0, RK_W32_Q5_0, rk_q5_0_block, sizeof(rk_block_q5_0))
RK_DEFINE_IMATRIX_32(q5_1, RK_W32_Q5_1, rk_q5_1_block, sizeof(rk_block_q5_1))

/* ---- aprender types: kernels/common/apr_quant.h (shared with the APR reader and writer) ---- */

void rk_quantize_row_apr_q4_ref(const float *x, void *y, int64_t k)
{
    if (k > 0)
        rk_apr_q4_quantize(x, (uint64_t)k, y);
}

void rk_dequantize_row_apr_q4_ref(const void *x, float *y, int64_t k)
{
    if (k > 0)
        rk_apr_q4_dequantize(x, (uint64_t)k, y);
}

void rk_quantize_row_apr_q8_ref(const float *x, void *y, int64_t k)
{
    if (k > 0)
        rk_apr_q8_quantize(x, (uint64_t)k, y);
}

void rk_dequantize_row_apr_q8_ref(const void *x, float *y, int64_t k)
{
    if (k > 0)
        rk_apr_q8_dequantize(x, (uint64_t)k, y);
}

/* ---- f16 / bf16 ---- */

void rk_quantize_row_f16_ref(const float *x, void *y, int64_t k)
{
    uint8_t *out = y;
    for (int64_t i = 0; i < k; i++)
        rk_store_u16le(out + 2 * i, rk_ggml_f32_to_f16(x[i]));
}

void rk_quantize_row_bf16_ref(const float *x, void *y, int64_t k)
{
    uint8_t *out = y;
    for (int64_t i = 0; i < k; i++)
        rk_store_u16le(out + 2 * i, rk_f32_to_bf16(x[i]));
}

void rk_dequantize_row_f16_ref(const void *x, float *y, int64_t k)
{
    const uint8_t *in = x;
    for (int64_t i = 0; i < k; i++)
        y[i] = rk_ggml_f16_to_f32(rk_load_u16le(in + 2 * i));
}

void rk_dequantize_row_bf16_ref(const void *x, float *y, int64_t k)
{
    const uint8_t *in = x;
    for (int64_t i = 0; i < k; i++)
        y[i] = rk_bf16_to_f32(rk_load_u16le(in + 2 * i));
}
