/* The vector operations of matmul.h: the scalar reference table (fixed order, fused
 * multiply-adds where the contract says so), the public functions that dispatch to the table of
 * rk_isa_active(), and the rotary table. Variants: vecops_avx2.c, vecops_avx512.c. */
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/half.h"
#include "cpu/matmul.h"
#include "cpu/matmul_internal.h"
#include "cpu/vecops_internal.h"

/* ---- rk_exp ---------------------------------------------------------------------------------- */

static float pow2i(int32_t k) /* 2^k for k in [-126, 127] */
{
    return rk_bits_f32((uint32_t)(k + 127) << 23);
}

static float exp_ref(float x)
{
    if (x != x)
        return x;
    const float xc = x > RK_EXP_HI ? RK_EXP_HI : (x < RK_EXP_LO ? RK_EXP_LO : x);
    const float z = xc * RK_EXP_LOG2E;
    const float kf = (z + RK_EXP_SHIFT) - RK_EXP_SHIFT;
    float r = fmaf(kf, -RK_EXP_LN2_HI, xc);
    r = fmaf(kf, -RK_EXP_LN2_LO, r);
    float p = RK_EXP_C7;
    p = fmaf(p, r, RK_EXP_C6);
    p = fmaf(p, r, RK_EXP_C5);
    p = fmaf(p, r, RK_EXP_C4);
    p = fmaf(p, r, RK_EXP_C3);
    p = fmaf(p, r, RK_EXP_C2);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    const int32_t k = (int32_t)kf;
    const int32_t k1 = (k - (k & 1)) / 2; /* floor(k / 2), as an arithmetic shift gives it */
    const float e = (p * pow2i(k1)) * pow2i(k - k1);
    if (x > RK_EXP_OVER)
        return INFINITY;
    if (x < RK_EXP_UNDER)
        return 0.0f;
    return e;
}

float rk_exp(float x) { return exp_ref(x); }

/* ---- the reference table --------------------------------------------------------------------- */

static float dot_f32_ref(int64_t n, const float *a, const float *b)
{
    float s[16] = {0};
    for (int64_t i = 0; i < n; i++)
        s[i % 16] = fmaf(a[i], b[i], s[i % 16]);
    return rk_sum16_lanes(s);
}

static float dot_f16_f32_ref(int64_t n, const uint16_t *a, const float *b)
{
    float s[16] = {0};
    for (int64_t i = 0; i < n; i++)
        s[i % 16] = fmaf(rk_f16_to_f32(a[i]), b[i], s[i % 16]);
    return rk_sum16_lanes(s);
}

static void axpy_f32_ref(int64_t n, float a, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = fmaf(a, x[i], y[i]);
}

static void axpy_f16_ref(int64_t n, float a, const uint16_t *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = fmaf(a, rk_f16_to_f32(x[i]), y[i]);
}

static void add_f32_ref(int64_t n, const float *a, const float *b, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

static void scale_f32_ref(int64_t n, float a, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = a * y[i];
}

static float sumsq_f32_ref(int64_t n, const float *x)
{
    float s[16] = {0};
    for (int64_t i = 0; i < n; i++)
        s[i % 16] = fmaf(x[i], x[i], s[i % 16]);
    return rk_sum16_lanes(s);
}

static void scale_mul_f32_ref(int64_t n, const float *x, float r, const float *w, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = w ? (x[i] * r) * w[i] : x[i] * r;
}

static float max_f32_ref(int64_t n, const float *x)
{
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static float exp_sum_f32_ref(int64_t n, float *x, float m)
{
    float s[16] = {0};
    for (int64_t i = 0; i < n; i++) {
        x[i] = exp_ref(x[i] - m);
        s[i % 16] = s[i % 16] + x[i];
    }
    return rk_sum16_lanes(s);
}

static void silu_mul_f32_ref(int64_t n, const float *g, const float *u, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = (g[i] / (1.0f + exp_ref(-g[i]))) * u[i];
}

static void rope_neox_f32_ref(float *x, int64_t n_heads, int64_t head_dim, const float *c,
                              const float *s)
{
    const int64_t half = head_dim / 2;
    for (int64_t h = 0; h < n_heads; h++) {
        float *v = x + h * head_dim;
        for (int64_t i = 0; i < half; i++) {
            const float a = v[i], b = v[i + half];
            const float ac = a * c[i], bs = b * s[i], as = a * s[i], bc = b * c[i];
            v[i] = ac - bs;
            v[i + half] = as + bc;
        }
    }
}

const rk_vec_ops rk_vec_ops_ref = {
    dot_f32_ref, dot_f16_f32_ref, axpy_f32_ref,     axpy_f16_ref,
    add_f32_ref, scale_f32_ref,   sumsq_f32_ref,    scale_mul_f32_ref,
    max_f32_ref, exp_sum_f32_ref, silu_mul_f32_ref, rope_neox_f32_ref,
};

const rk_vec_ops *rk_vec_ops_for(rk_isa isa)
{
    switch (isa) {
    case RK_ISA_SCALAR: return &rk_vec_ops_ref;
    case RK_ISA_AVX2: return &rk_vec_ops_avx2;
    case RK_ISA_AVX512:
    case RK_ISA_AVX512_VNNI: return &rk_vec_ops_avx512;
    }
    return &rk_vec_ops_ref;
}

static const rk_vec_ops *ops(void)
{
    static _Atomic(const rk_vec_ops *) cached = NULL;
    const rk_vec_ops *o = atomic_load_explicit(&cached, memory_order_acquire);
    if (!o) {
        o = rk_vec_ops_for(rk_isa_active());
        atomic_store_explicit(&cached, o, memory_order_release);
    }
    return o;
}

/* ---- public functions ------------------------------------------------------------------------ */

float rk_dot_f32(int64_t n, const float *a, const float *b) { return ops()->dot_f32(n, a, b); }

float rk_dot_f16_f32(int64_t n, const uint16_t *a, const float *b)
{
    return ops()->dot_f16_f32(n, a, b);
}

void rk_dot_rows_f32(int64_t n, const float *q, const float *rows, size_t row_stride,
                     int64_t n_rows, float *out)
{
    const rk_vec_ops *o = ops();
    for (int64_t t = 0; t < n_rows; t++)
        out[t] = o->dot_f32(n, rows + (size_t)t * row_stride, q);
}

void rk_dot_rows_f16(int64_t n, const float *q, const uint16_t *rows, size_t row_stride,
                     int64_t n_rows, float *out)
{
    const rk_vec_ops *o = ops();
    for (int64_t t = 0; t < n_rows; t++)
        out[t] = o->dot_f16_f32(n, rows + (size_t)t * row_stride, q);
}

void rk_axpy_f32(int64_t n, float a, const float *x, float *y) { ops()->axpy_f32(n, a, x, y); }

void rk_axpy_f16(int64_t n, float a, const uint16_t *x, float *y) { ops()->axpy_f16(n, a, x, y); }

void rk_weighted_sum_f32(int64_t n, const float *p, const float *rows, size_t row_stride,
                         int64_t n_rows, float *y)
{
    const rk_vec_ops *o = ops();
    memset(y, 0, (size_t)n * sizeof(float));
    for (int64_t t = 0; t < n_rows; t++)
        o->axpy_f32(n, p[t], rows + (size_t)t * row_stride, y);
}

void rk_weighted_sum_f16(int64_t n, const float *p, const uint16_t *rows, size_t row_stride,
                         int64_t n_rows, float *y)
{
    const rk_vec_ops *o = ops();
    memset(y, 0, (size_t)n * sizeof(float));
    for (int64_t t = 0; t < n_rows; t++)
        o->axpy_f16(n, p[t], rows + (size_t)t * row_stride, y);
}

void rk_add_f32(int64_t n, const float *a, const float *b, float *y) { ops()->add_f32(n, a, b, y); }

void rk_scale_f32(int64_t n, float a, float *y) { ops()->scale_f32(n, a, y); }

void rk_rmsnorm_f32(int64_t n, const float *x, const float *w, float eps, float *y)
{
    const rk_vec_ops *o = ops();
    const float ss = o->sumsq_f32(n, x);
    const float r = 1.0f / sqrtf(ss / (float)n + eps);
    o->scale_mul_f32(n, x, r, w, y);
}

void rk_softmax_f32(int64_t n, float *x)
{
    const rk_vec_ops *o = ops();
    const float m = o->max_f32(n, x);
    const float s = o->exp_sum_f32(n, x, m);
    o->scale_f32(n, 1.0f / s, x);
}

void rk_silu_mul_f32(int64_t n, const float *g, const float *u, float *y)
{
    ops()->silu_mul_f32(n, g, u, y);
}

void rk_rope_table(int64_t pos, int64_t head_dim, float theta, float *cos_out, float *sin_out)
{
    for (int64_t i = 0; i < head_dim / 2; i++) {
        const float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        const float angle = (float)pos * inv_freq;
        cos_out[i] = cosf(angle);
        sin_out[i] = sinf(angle);
    }
}

void rk_rope_neox_f32(float *x, int64_t n_heads, int64_t head_dim, const float *cos_tab,
                      const float *sin_tab)
{
    ops()->rope_neox_f32(x, n_heads, head_dim, cos_tab, sin_tab);
}
