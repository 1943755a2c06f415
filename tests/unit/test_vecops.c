/* The vector operations of kernels/cpu/matmul.h: every SIMD table against the scalar reference,
 * bit for bit, at lengths 1..70 and model sizes (tails, aliasing, special values); the reference
 * against double-precision math within stated tolerances (rk_exp within 2 ulp, softmax,
 * RMSNorm, SwiGLU, NEOX RoPE). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "cpu/matmul.h"
#include "cpu/vecops_internal.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float uniform(void) { return (float)(next_u64() >> 40) / 16777216.0f; }
static float gauss(void)
{
    float u = uniform() + 1e-7f, v = uniform();
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

static int same_bits(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

static int same1(float a, float b)
{
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y;
}

static const int64_t LENGTHS[] = {1,  2,  3,  7,  8,  9,  15,  16,  17,   31, 32,
                                  33, 47, 63, 64, 65, 70, 128, 896, 4864, 151};

static void fill(float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = gauss() * scale;
}

static const rk_vec_ops *variant(int isa) { return rk_vec_ops_for((rk_isa)isa); }

Test(vecops, simd_tables_match_reference)
{
    const rk_vec_ops *ref = &rk_vec_ops_ref;
    float *a = malloc(5000 * sizeof(float)), *b = malloc(5000 * sizeof(float));
    float *y1 = malloc(5000 * sizeof(float)), *y2 = malloc(5000 * sizeof(float));
    float *w = malloc(5000 * sizeof(float));
    uint16_t *h = malloc(5000 * sizeof(uint16_t));
    for (int isa = RK_ISA_AVX2; isa <= (int)rk_isa_cpu(); isa++) {
        const rk_vec_ops *v = variant(isa);
        const char *name = rk_isa_name((rk_isa)isa);
        for (size_t li = 0; li < sizeof LENGTHS / sizeof LENGTHS[0]; li++) {
            const int64_t n = LENGTHS[li];
            fill(a, n, 3.0f);
            fill(b, n, 0.5f);
            fill(w, n, 1.0f);
            for (int64_t i = 0; i < n; i++)
                h[i] = rk_f32_to_f16(a[i]);
            cr_assert(same1(ref->dot_f32(n, a, b), v->dot_f32(n, a, b)), "%s dot n=%lld", name,
                      (long long)n);
            cr_assert(same1(ref->dot_f16_f32(n, h, b), v->dot_f16_f32(n, h, b)),
                      "%s dot_f16 n=%lld", name, (long long)n);
            cr_assert(same1(ref->sumsq_f32(n, a), v->sumsq_f32(n, a)), "%s sumsq", name);
            cr_assert(same1(ref->max_f32(n, a), v->max_f32(n, a)), "%s max", name);

            memcpy(y1, b, (size_t)n * 4);
            memcpy(y2, b, (size_t)n * 4);
            ref->axpy_f32(n, 0.37f, a, y1);
            v->axpy_f32(n, 0.37f, a, y2);
            cr_assert(same_bits(y1, y2, n), "%s axpy n=%lld", name, (long long)n);
            ref->axpy_f16(n, -1.3f, h, y1);
            v->axpy_f16(n, -1.3f, h, y2);
            cr_assert(same_bits(y1, y2, n), "%s axpy_f16", name);
            ref->add_f32(n, a, y1, y1); /* aliasing y = a + y */
            v->add_f32(n, a, y2, y2);
            cr_assert(same_bits(y1, y2, n), "%s add", name);
            ref->scale_f32(n, 0.7f, y1);
            v->scale_f32(n, 0.7f, y2);
            cr_assert(same_bits(y1, y2, n), "%s scale", name);
            ref->scale_mul_f32(n, a, 0.3f, w, y1);
            v->scale_mul_f32(n, a, 0.3f, w, y2);
            cr_assert(same_bits(y1, y2, n), "%s scale_mul", name);
            ref->scale_mul_f32(n, a, 0.3f, NULL, y1);
            v->scale_mul_f32(n, a, 0.3f, NULL, y2);
            cr_assert(same_bits(y1, y2, n), "%s scale_mul without w", name);

            /* softmax pieces with masked entries and large ranges */
            for (int64_t i = 0; i < n; i++) {
                y1[i] = a[i] * 20.0f;
                if (i % 5 == 3)
                    y1[i] = -INFINITY;
            }
            memcpy(y2, y1, (size_t)n * 4);
            const float m = ref->max_f32(n, y1);
            const float s1 = ref->exp_sum_f32(n, y1, m), s2 = v->exp_sum_f32(n, y2, m);
            cr_assert(same1(s1, s2) && same_bits(y1, y2, n), "%s exp_sum n=%lld", name,
                      (long long)n);

            ref->silu_mul_f32(n, a, b, y1);
            v->silu_mul_f32(n, a, b, y2);
            cr_assert(same_bits(y1, y2, n), "%s silu_mul n=%lld", name, (long long)n);
            memcpy(y1, a, (size_t)n * 4);
            memcpy(y2, a, (size_t)n * 4);
            ref->silu_mul_f32(n, y1, b, y1); /* aliasing */
            v->silu_mul_f32(n, y2, b, y2);
            cr_assert(same_bits(y1, y2, n), "%s silu_mul in place", name);

            if (n % 2 == 0 && n <= 128) {
                const int64_t heads = 3, hd = n;
                float *x1 = malloc((size_t)(heads * hd) * 4),
                      *x2 = malloc((size_t)(heads * hd) * 4);
                fill(x1, heads * hd, 1.0f);
                memcpy(x2, x1, (size_t)(heads * hd) * 4);
                float c[64], s[64];
                rk_rope_table(1234, hd, 1000000.0f, c, s);
                ref->rope_neox_f32(x1, heads, hd, c, s);
                v->rope_neox_f32(x2, heads, hd, c, s);
                cr_assert(same_bits(x1, x2, heads * hd), "%s rope head_dim %lld", name,
                          (long long)hd);
                free(x1);
                free(x2);
            }
        }
    }
    free(a);
    free(b);
    free(y1);
    free(y2);
    free(w);
    free(h);
}

/* ulp distance between two finite floats of the same sign, or across zero */
static int64_t ulps(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0)
        ia = (int32_t)0x80000000 - ia;
    if (ib < 0)
        ib = (int32_t)0x80000000 - ib;
    return llabs((long long)ia - (long long)ib);
}

Test(vecops, exp_accuracy_and_special_values)
{
    int64_t worst = 0;
    for (int i = 0; i < 200000; i++) {
        const float x = -87.0f + 175.0f * uniform();
        const float e = rk_exp(x);
        const float t = (float)exp((double)x);
        const int64_t u = ulps(e, t);
        if (u > worst)
            worst = u;
        cr_assert(u <= 2, "rk_exp(%.9g) = %.9g, exp = %.9g (%lld ulp)", (double)x, (double)e,
                  (double)t, (long long)u);
    }
    cr_log_info("rk_exp: worst %lld ulp on [-87, 88]", (long long)worst);
    cr_assert(same1(rk_exp(0.0f), 1.0f));
    cr_assert(same1(rk_exp(-0.0f), 1.0f));
    cr_assert(isinf(rk_exp(89.0f)) && rk_exp(89.0f) > 0);
    cr_assert(isinf(rk_exp(INFINITY)));
    cr_assert(same1(rk_exp(-INFINITY), 0.0f));
    cr_assert(same1(rk_exp(-110.0f), 0.0f));
    cr_assert(isnan(rk_exp(NAN)));
    cr_assert(rk_exp(88.7f) < INFINITY);
    /* subnormal results stay close */
    for (int i = 0; i < 44; i++) {
        const float x = -103.0f + 0.37f * (float)i;
        const double t = exp((double)x);
        cr_assert(fabs((double)rk_exp(x) - t) <= 2.0 * 1.401298464e-45 + 1e-6 * t, "x %g", x);
    }
    /* the SIMD tables agree on special inputs too (through exp_sum with m = 0) */
    float sp[16] = {0.0f, -0.0f,  88.72f, 88.73f, -103.9f, -104.5f, INFINITY, -INFINITY,
                    NAN,  1e-30f, -87.5f, 50.0f,  -50.0f,  3.0f,    -3.0f,    89.0f};
    for (int isa = RK_ISA_AVX2; isa <= (int)rk_isa_cpu(); isa++) {
        float r1[16], r2[16];
        memcpy(r1, sp, sizeof sp);
        memcpy(r2, sp, sizeof sp);
        rk_vec_ops_ref.exp_sum_f32(16, r1, 0.0f);
        variant(isa)->exp_sum_f32(16, r2, 0.0f);
        for (int i = 0; i < 16; i++)
            cr_assert(same1(r1[i], r2[i]) || (isnan(r1[i]) && isnan(r2[i])), "%s exp(%g): %g vs %g",
                      rk_isa_name((rk_isa)isa), (double)sp[i], (double)r2[i], (double)r1[i]);
    }
}

Test(vecops, public_functions_against_double_math)
{
    const int64_t n = 896;
    float *x = malloc(n * 4), *w = malloc(n * 4), *y = malloc(n * 4);
    fill(x, n, 2.0f);
    fill(w, n, 1.0f);

    /* RMSNorm */
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    const double r = 1.0 / sqrt(ss / n + 1e-6);
    rk_rmsnorm_f32(n, x, w, 1e-6f, y);
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabs(y[i] - x[i] * r * w[i]) <= 1e-5 * fabs(x[i] * r * w[i]) + 1e-7);
    memcpy(y, x, n * 4);
    rk_rmsnorm_f32(n, y, NULL, 1e-6f, y); /* in place, no weight */
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabs(y[i] - x[i] * r) <= 1e-5 * fabs(x[i] * r) + 1e-7);

    /* softmax with masked entries */
    memcpy(y, x, n * 4);
    for (int64_t i = 0; i < n; i++)
        y[i] = i % 7 == 0 ? -INFINITY : y[i] * 10.0f;
    double mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++)
        if (y[i] > mx)
            mx = y[i];
    for (int64_t i = 0; i < n; i++)
        sum += exp((double)y[i] - mx);
    float *soft = malloc(n * 4);
    memcpy(soft, y, n * 4);
    rk_softmax_f32(n, soft);
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        const double t = exp((double)y[i] - mx) / sum;
        cr_assert(fabs(soft[i] - t) <= 1e-6 * t + 1e-12, "softmax[%lld] %g vs %g", (long long)i,
                  (double)soft[i], t);
        if (i % 7 == 0)
            cr_assert(same1(soft[i], 0.0f));
        total += soft[i];
    }
    cr_assert(fabs(total - 1.0) < 1e-5);
    float one = 3.0f;
    rk_softmax_f32(1, &one);
    cr_assert(same1(one, 1.0f));

    /* SwiGLU */
    rk_silu_mul_f32(n, x, w, y);
    for (int64_t i = 0; i < n; i++) {
        const double t = (double)x[i] / (1.0 + exp(-(double)x[i])) * w[i];
        cr_assert(fabs(y[i] - t) <= 1e-6 * fabs(t) + 1e-30, "silu %g", (double)x[i]);
    }

    /* dot products, axpy, weighted sums */
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        d += (double)x[i] * w[i];
    cr_assert(fabs(rk_dot_f32(n, x, w) - d) <= 1e-5 * sqrt(ss) * 30);
    uint16_t *h = malloc(3 * n * 2);
    float rows[3 * 64], p[3] = {0.2f, 0.5f, 0.3f}, out[3], ws[64];
    for (int64_t i = 0; i < 3 * 64; i++) {
        rows[i] = gauss();
        h[i] = rk_f32_to_f16(rows[i]);
    }
    rk_dot_rows_f32(64, x, rows, 64, 3, out);
    for (int t = 0; t < 3; t++)
        cr_assert(same1(out[t], rk_dot_f32(64, rows + t * 64, x)));
    rk_dot_rows_f16(64, x, h, 64, 3, out);
    for (int t = 0; t < 3; t++)
        cr_assert(same1(out[t], rk_dot_f16_f32(64, h + t * 64, x)));
    rk_weighted_sum_f32(64, p, rows, 64, 3, ws);
    for (int i = 0; i < 64; i++)
        cr_assert(same1(
            ws[i], fmaf(p[2], rows[128 + i], fmaf(p[1], rows[64 + i], fmaf(p[0], rows[i], 0.0f)))));
    rk_weighted_sum_f16(64, p, h, 64, 3, ws);
    for (int i = 0; i < 64; i++) {
        const double t = p[0] * (double)rk_f16_to_f32(h[i]) +
                         p[1] * (double)rk_f16_to_f32(h[64 + i]) +
                         p[2] * (double)rk_f16_to_f32(h[128 + i]);
        cr_assert(fabs(ws[i] - t) <= 1e-6 * (fabs(t) + 1));
    }
    memcpy(y, x, n * 4);
    rk_axpy_f32(n, 2.0f, w, y);
    for (int64_t i = 0; i < n; i++)
        cr_assert(same1(y[i], fmaf(2.0f, w[i], x[i])));
    rk_add_f32(n, x, w, y);
    for (int64_t i = 0; i < n; i++)
        cr_assert(same1(y[i], x[i] + w[i]));
    rk_scale_f32(n, 0.5f, y);
    for (int64_t i = 0; i < n; i++)
        cr_assert(same1(y[i], 0.5f * (x[i] + w[i])));
    free(h);
    free(soft);
    free(x);
    free(w);
    free(y);
}

Test(vecops, rope_neox_rotates_pairs)
{
    const int64_t hd = 64, heads = 2;
    float c[32], s[32], v[128], orig[128];
    rk_rope_table(17, hd, 10000.0f, c, s);
    for (int i = 0; i < 32; i++) {
        const double inv = 1.0 / pow(10000.0, (2.0 * i) / 64.0);
        cr_assert(fabs(c[i] - cos(17 * inv)) < 1e-5 && fabs(s[i] - sin(17 * inv)) < 1e-5);
    }
    fill(v, 128, 1.0f);
    memcpy(orig, v, sizeof v);
    rk_rope_neox_f32(v, heads, hd, c, s);
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 32; i++) {
            const double a = orig[h * 64 + i], b = orig[h * 64 + 32 + i];
            cr_assert(fabs(v[h * 64 + i] - (a * c[i] - b * s[i])) < 1e-6);
            cr_assert(fabs(v[h * 64 + 32 + i] - (a * s[i] + b * c[i])) < 1e-6);
        }
    /* position 0 is the identity */
    rk_rope_table(0, hd, 10000.0f, c, s);
    memcpy(v, orig, sizeof v);
    rk_rope_neox_f32(v, heads, hd, c, s);
    cr_assert(same_bits(v, orig, 128));
}
