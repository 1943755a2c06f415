/* Private: the vector operations of matmul.h as one table per variant (vecops.c holds the scalar
 * reference and picks a table from rk_isa_active(); vecops_avx2.c and vecops_avx512.c hold the
 * others). Every table returns the reference's bits. Tests call the tables directly.
 * Not for: callers outside kernels/cpu and its tests. */
#ifndef RK_VECOPS_INTERNAL_H
#define RK_VECOPS_INTERNAL_H

#include <stdint.h>

#include "cpu/matmul.h"

typedef struct rk_vec_ops {
    float (*dot_f32)(int64_t n, const float *a, const float *b);
    float (*dot_f16_f32)(int64_t n, const uint16_t *a, const float *b);
    void (*axpy_f32)(int64_t n, float a, const float *x, float *y);
    void (*axpy_f16)(int64_t n, float a, const uint16_t *x, float *y);
    void (*add_f32)(int64_t n, const float *a, const float *b, float *y);
    void (*scale_f32)(int64_t n, float a, float *y);
    /* sum of x[i] * x[i] as a 16-lane sum of fused multiply-adds */
    float (*sumsq_f32)(int64_t n, const float *x);
    /* y[i] = (x[i] * r) * w[i], or x[i] * r when w is NULL */
    void (*scale_mul_f32)(int64_t n, const float *x, float r, const float *w, float *y);
    float (*max_f32)(int64_t n, const float *x);
    /* x[i] = rk_exp(x[i] - m); returns their 16-lane sum */
    float (*exp_sum_f32)(int64_t n, float *x, float m);
    void (*silu_mul_f32)(int64_t n, const float *g, const float *u, float *y);
    void (*rope_neox_f32)(float *x, int64_t n_heads, int64_t head_dim, const float *c,
                          const float *s);
} rk_vec_ops;

extern const rk_vec_ops rk_vec_ops_ref;
extern const rk_vec_ops rk_vec_ops_avx2;
extern const rk_vec_ops rk_vec_ops_avx512;

/* The table of a variant (AVX512-VNNI uses the AVX-512 table). */
const rk_vec_ops *rk_vec_ops_for(rk_isa isa);

/* rk_exp's constants and steps, shared so that every variant does the same operations:
 *   z = x * LOG2E;  k = nearest integer of z (by adding and subtracting 1.5 * 2^23)
 *   r = fma(k, -LN2_HI, x);  r = fma(k, -LN2_LO, r)           (x - k ln 2, |r| <= ln2 / 2)
 *   p = the degree-7 Taylor polynomial of e^r by Horner with fused multiply-adds
 *   e^x = (p * 2^k1) * 2^k2 with k1 = floor(k / 2), k2 = k - k1 (both in the normal range)
 * inputs are first clamped to [RK_EXP_LO, RK_EXP_HI]; above RK_EXP_OVER the result is +Inf,
 * below RK_EXP_UNDER it is 0, NaN stays NaN. */
#define RK_EXP_LOG2E  1.44269502162933349609375f
#define RK_EXP_LN2_HI 0.693145751953125f
#define RK_EXP_LN2_LO 1.428606765330187045e-06f
#define RK_EXP_OVER   88.72283935546875f
#define RK_EXP_UNDER  (-103.97208404541015625f)
#define RK_EXP_HI     89.0f
#define RK_EXP_LO     (-104.0f)
#define RK_EXP_C7     (1.0f / 5040.0f)
#define RK_EXP_C6     (1.0f / 720.0f)
#define RK_EXP_C5     (1.0f / 120.0f)
#define RK_EXP_C4     (1.0f / 24.0f)
#define RK_EXP_C3     (1.0f / 6.0f)
#define RK_EXP_C2     0.5f
#define RK_EXP_SHIFT  12582912.0f

#endif
