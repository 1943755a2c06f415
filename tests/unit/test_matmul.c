/* kernels/cpu/matmul.h: every matmul variant (scalar, AVX2, AVX-512, AVX512-VNNI; matrix-vector
 * and GEMM) against the scalar reference, bit for bit, on random weights of every type with
 * awkward shapes (odd row counts, one block, chunk boundaries, 1..17 columns, padded strides,
 * row sub-ranges); the reference against an F32 dot product of the dequantized weights within
 * the documented tolerance; the thread pool's results for 1, 2 and 3 threads; the SIMD Q8_K
 * activation quantizers against the reference bytes; argument checks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/half.h"
#include "cpu/matmul.h"
#include "cpu/quant_dispatch.h"
#include "cpu/quant_ref.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* ---- inputs ---------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
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

typedef void (*quant_fn)(const float *x, void *y, int64_t k);

static const rk_type WEIGHT_TYPES[] = {
    RK_TYPE_Q8_0, RK_TYPE_Q5_0, RK_TYPE_Q4_K, RK_TYPE_Q6_K,   RK_TYPE_F32,
    RK_TYPE_Q4_0, RK_TYPE_Q4_1, RK_TYPE_Q5_1, RK_TYPE_Q5_K,   RK_TYPE_Q2_K,
    RK_TYPE_Q3_K, RK_TYPE_F16,  RK_TYPE_BF16, RK_TYPE_APR_Q4, RK_TYPE_APR_Q8,
};
#define N_WEIGHT_TYPES (sizeof WEIGHT_TYPES / sizeof WEIGHT_TYPES[0])

static quant_fn weight_quantizer(rk_type t)
{
    switch (t) {
    case RK_TYPE_F32: return NULL;
    case RK_TYPE_F16: return rk_quantize_row_f16_ref;
    case RK_TYPE_BF16: return rk_quantize_row_bf16_ref;
    case RK_TYPE_Q4_0: return rk_quantize_row_q4_0_ref;
    case RK_TYPE_Q4_1: return rk_quantize_row_q4_1_ref;
    case RK_TYPE_Q5_0: return rk_quantize_row_q5_0_ref;
    case RK_TYPE_Q5_1: return rk_quantize_row_q5_1_ref;
    case RK_TYPE_Q8_0: return rk_quantize_row_q8_0_ref;
    case RK_TYPE_Q2_K: return rk_quantize_row_q2_K_ref;
    case RK_TYPE_Q3_K: return rk_quantize_row_q3_K_ref;
    case RK_TYPE_Q4_K: return rk_quantize_row_q4_K_ref;
    case RK_TYPE_Q5_K: return rk_quantize_row_q5_K_ref;
    case RK_TYPE_Q6_K: return rk_quantize_row_q6_K_ref;
    case RK_TYPE_APR_Q4: return rk_quantize_row_apr_q4_ref;
    case RK_TYPE_APR_Q8: return NULL;
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q8_K: return NULL;
    }
    return NULL;
}

static void dequantize_row(const rk_matrix *w, int64_t r, float *out)
{
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_stride;
    const int64_t k = w->k;
    switch (w->type) {
    case RK_TYPE_F32: memcpy(out, row, (size_t)k * 4); return;
    case RK_TYPE_F16: rk_dequantize_row_f16_ref(row, out, k); return;
    case RK_TYPE_BF16: rk_dequantize_row_bf16_ref(row, out, k); return;
    case RK_TYPE_Q4_0: rk_dequantize_row_q4_0_ref(row, out, k); return;
    case RK_TYPE_Q4_1: rk_dequantize_row_q4_1_ref(row, out, k); return;
    case RK_TYPE_Q5_0: rk_dequantize_row_q5_0_ref(row, out, k); return;
    case RK_TYPE_Q5_1: rk_dequantize_row_q5_1_ref(row, out, k); return;
    case RK_TYPE_Q8_0: rk_dequantize_row_q8_0_ref(row, out, k); return;
    case RK_TYPE_Q2_K: rk_dequantize_row_q2_K_ref(row, out, k); return;
    case RK_TYPE_Q3_K: rk_dequantize_row_q3_K_ref(row, out, k); return;
    case RK_TYPE_Q4_K: rk_dequantize_row_q4_K_ref(row, out, k); return;
    case RK_TYPE_Q5_K: rk_dequantize_row_q5_K_ref(row, out, k); return;
    case RK_TYPE_Q6_K: rk_dequantize_row_q6_K_ref(row, out, k); return;
    case RK_TYPE_APR_Q4: rk_dequantize_row_apr_q4_ref(row, out, k); return;
    case RK_TYPE_APR_Q8:
        for (int64_t i = 0; i < k; i++)
            out[i] = (float)(int8_t)row[i] * w->scale;
        return;
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q8_K: break;
    }
    cr_assert_fail("no dequantizer");
}

/* A weight matrix of n_rows x k with `pad` spare bytes after each row. mode 0: quantized
 * Gaussian rows (realistic blocks); mode 1: random quant bytes with sane scales (every bit
 * pattern of the quants: Q8_0 -128, Q6_K scale -128, ...). */
typedef struct test_matrix {
    rk_matrix w;
    uint8_t *bytes;
} test_matrix;

static void randomize_scales(rk_type t, uint8_t *blk)
{
    /* f16 scale fields set to a random finite value in [2^-10, 2^-4) */
    const uint16_t h = (uint16_t)(0x1400 + (next_u64() % 0x1800));
    switch (t) {
    case RK_TYPE_Q4_0:
    case RK_TYPE_Q5_0:
    case RK_TYPE_Q8_0:
    case RK_TYPE_APR_Q4: memcpy(blk, &h, 2); break;
    case RK_TYPE_Q4_1:
    case RK_TYPE_Q5_1:
    case RK_TYPE_Q4_K:
    case RK_TYPE_Q5_K: {
        const uint16_t h2 = (uint16_t)(0x1400 + (next_u64() % 0x1800));
        memcpy(blk, &h, 2);
        memcpy(blk + 2, &h2, 2);
        break;
    }
    case RK_TYPE_Q2_K: {
        const uint16_t h2 = (uint16_t)(0x1400 + (next_u64() % 0x1800));
        memcpy(blk + 80, &h, 2);
        memcpy(blk + 82, &h2, 2);
        break;
    }
    case RK_TYPE_Q3_K: memcpy(blk + 108, &h, 2); break;
    case RK_TYPE_Q6_K: memcpy(blk + 208, &h, 2); break;
    case RK_TYPE_F32:
    case RK_TYPE_F16:
    case RK_TYPE_BF16:
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q8_K:
    case RK_TYPE_APR_Q8: break;
    }
}

static test_matrix make_matrix(rk_type t, int64_t n_rows, int64_t k, size_t pad, int mode)
{
    test_matrix m = {0};
    const size_t row = rk_row_bytes(t, k);
    cr_assert(row > 0, "row bytes of type %d k %lld", (int)t, (long long)k);
    m.w = (rk_matrix){.type = t, .n_rows = n_rows, .k = k, .row_stride = row + pad};
    m.bytes = malloc(m.w.row_stride * (size_t)n_rows);
    cr_assert(m.bytes);
    float *x = malloc((size_t)k * sizeof(float));
    const rk_type_traits *tr = rk_type_traits_get(t);
    for (int64_t r = 0; r < n_rows; r++) {
        uint8_t *dst = m.bytes + (size_t)r * m.w.row_stride;
        const float amp = 0.02f * (1.0f + (float)(r % 5));
        for (int64_t i = 0; i < k; i++)
            x[i] = amp * gauss();
        quant_fn q = weight_quantizer(t);
        if (t == RK_TYPE_F32) {
            memcpy(dst, x, (size_t)k * 4);
        } else if (t == RK_TYPE_APR_Q8 || mode == 1) {
            for (size_t i = 0; i < row; i++)
                dst[i] = (uint8_t)next_u64();
            if (t == RK_TYPE_F16 || t == RK_TYPE_BF16)
                q(x, dst, k); /* random bits would hold NaNs */
            else
                for (int64_t b = 0; b < k / tr->block_elems; b++)
                    randomize_scales(t, dst + (size_t)b * tr->block_bytes);
        } else {
            q(x, dst, k);
        }
        memset(dst + row, 0xA5, pad);
    }
    free(x);
    m.w.data = m.bytes;
    m.w.scale = t == RK_TYPE_APR_Q8 ? 0.00390625f * 1.37f : 1.0f;
    return m;
}

/* n_cols activation columns of k floats (stride xs) and their quantized form (stride as). */
typedef struct test_act {
    float *x;
    size_t x_stride;
    uint8_t *q;
    size_t q_stride;
} test_act;

static test_act make_act(rk_type weight_type, int64_t k, int64_t n_cols)
{
    test_act a;
    a.x_stride = (size_t)k + 3;
    a.x = malloc(a.x_stride * (size_t)n_cols * sizeof(float));
    for (size_t i = 0; i < a.x_stride * (size_t)n_cols; i++)
        a.x[i] = gauss() * (1.0f + (float)(i % 7));
    a.q_stride = rk_act_row_bytes(weight_type, k) + 8; /* padded, multiple of 4 */
    a.q = malloc(a.q_stride * (size_t)n_cols);
    cr_assert(rk_quantize_act(weight_type, k, n_cols, a.x, a.x_stride, a.q, a.q_stride) == 0);
    return a;
}

static void free_act(test_act *a)
{
    free(a->x);
    free(a->q);
}

/* the same float bits (NaN payloads and signed zeros included) */
static int same_float(float a, float b)
{
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y;
}

static const char *type_name(rk_type t) { return rk_type_traits_get(t)->name; }

/* Output buffer with a sentinel everywhere: y[c * ys + r]. */
static float *make_y(int64_t n_cols, size_t ys)
{
    float *y = malloc((size_t)n_cols * ys * sizeof(float));
    for (size_t i = 0; i < (size_t)n_cols * ys; i++)
        y[i] = -12345.0f;
    return y;
}

static int64_t ks_for(rk_type t, int which)
{
    const int64_t be = rk_type_traits_get(t)->block_elems;
    if (be == 256) {
        static const int64_t K[] = {256, 768, 1280};
        return K[which];
    }
    if (be == 32) {
        static const int64_t K[] = {32, 96, 544};
        return K[which];
    }
    static const int64_t K[] = {1, 17, 531};
    return K[which];
}

/* ---- every variant equals the reference -------------------------------------------------- */

static void check_variants(rk_type t, int64_t n_rows, int64_t k, int64_t n_cols, int mode)
{
    test_matrix m = make_matrix(t, n_rows, k, 5, mode);
    test_act a = make_act(t, k, n_cols);
    const size_t ys = (size_t)n_rows + 2;
    float *ref = make_y(n_cols, ys);
    cr_assert(rk_matmul_isa(RK_ISA_SCALAR, 0, &m.w, 0, n_rows, a.q, a.q_stride, n_cols, ref, ys) ==
              0);
    for (int isa = RK_ISA_AVX2; isa <= (int)rk_isa_cpu(); isa++) {
        for (int gemm = 0; gemm <= 1; gemm++) {
            float *y = make_y(n_cols, ys);
            cr_assert(rk_matmul_isa((rk_isa)isa, gemm, &m.w, 0, n_rows, a.q, a.q_stride, n_cols, y,
                                    ys) == 0);
            for (int64_t c = 0; c < n_cols; c++)
                for (size_t r = 0; r < ys; r++) {
                    const float e = ref[(size_t)c * ys + r], g = y[(size_t)c * ys + r];
                    if (!same_float(e, g))
                        cr_assert_fail("%s %s %s rows %lld k %lld cols %lld mode %d: y[%lld][%zu] "
                                       "= %.9g, reference %.9g",
                                       type_name(t), rk_isa_name((rk_isa)isa),
                                       gemm ? "gemm" : "matvec", (long long)n_rows, (long long)k,
                                       (long long)n_cols, mode, (long long)c, r, (double)g,
                                       (double)e);
                }
            free(y);
        }
    }
    /* a row sub-range writes exactly its rows */
    if (n_rows > 2) {
        const int64_t r0 = 1, r1 = n_rows - 1;
        for (int isa = RK_ISA_SCALAR; isa <= (int)rk_isa_cpu(); isa++) {
            float *y = make_y(n_cols, ys);
            cr_assert(rk_matmul_isa((rk_isa)isa, n_cols > 2, &m.w, r0, r1, a.q, a.q_stride, n_cols,
                                    y, ys) == 0);
            for (int64_t c = 0; c < n_cols; c++)
                for (size_t r = 0; r < ys; r++) {
                    const float g = y[(size_t)c * ys + r];
                    const float e =
                        (int64_t)r >= r0 && (int64_t)r < r1 ? ref[(size_t)c * ys + r] : -12345.0f;
                    cr_assert(same_float(e, g), "%s %s range: y[%lld][%zu]", type_name(t),
                              rk_isa_name((rk_isa)isa), (long long)c, r);
                }
            free(y);
        }
    }
    free(ref);
    free_act(&a);
    free(m.bytes);
}

/* The R16 copy of the matrix gives the ROWS reference's bits on every variant and path; row
 * ranges start on 16-row boundaries. */
static void check_r16(rk_type t, int64_t n_rows, int64_t k, int64_t n_cols, int mode)
{
    test_matrix m = make_matrix(t, n_rows, k, 3, mode);
    test_act a = make_act(t, k, n_cols);
    const size_t ys = (size_t)n_rows + 2;
    float *ref = make_y(n_cols, ys);
    cr_assert(rk_matmul_isa(RK_ISA_SCALAR, 0, &m.w, 0, n_rows, a.q, a.q_stride, n_cols, ref, ys) ==
              0);
    const size_t bytes = rk_repack_bytes(t, n_rows, k);
    cr_assert(bytes == (size_t)((n_rows + 15) / 16) * 16 * rk_row_bytes(t, k));
    uint8_t *packed = malloc(bytes + 1);
    rk_matrix r16;
    cr_assert(rk_repack(&m.w, packed + 1, bytes, &r16) == 0, "repack %s", type_name(t));
    cr_assert(r16.layout == RK_LAYOUT_R16 && rk_matrix_check(&r16) == 0);
    cr_assert(rk_repack(&m.w, packed + 1, bytes - 1, &r16) == -1, "small buffer");
    cr_assert(rk_repack(&m.w, packed + 1, bytes, &r16) == 0);
    const int64_t r0 = n_rows > 16 ? 16 : 0;
    for (int isa = RK_ISA_SCALAR; isa <= (int)rk_isa_cpu(); isa++) {
        for (int gemm = 0; gemm <= 1; gemm++) {
            float *y = make_y(n_cols, ys);
            cr_assert(rk_matmul_isa((rk_isa)isa, gemm, &r16, r0, n_rows, a.q, a.q_stride, n_cols, y,
                                    ys) == 0);
            for (int64_t c = 0; c < n_cols; c++)
                for (size_t r = 0; r < ys; r++) {
                    const float g = y[(size_t)c * ys + r];
                    const float e = (int64_t)r >= r0 && (int64_t)r < n_rows
                                        ? ref[(size_t)c * ys + r]
                                        : -12345.0f;
                    if (!same_float(e, g))
                        cr_assert_fail("R16 %s %s %s rows %lld k %lld cols %lld: y[%lld][%zu] = "
                                       "%.9g, reference %.9g",
                                       type_name(t), rk_isa_name((rk_isa)isa),
                                       gemm ? "gemm" : "matvec", (long long)n_rows, (long long)k,
                                       (long long)n_cols, (long long)c, r, (double)g, (double)e);
                }
            free(y);
        }
    }
    if (n_rows > 1) {
        float *y = make_y(n_cols, ys);
        cr_assert(rk_matmul(&r16, 1, n_rows, a.q, a.q_stride, n_cols, y, ys) == -1,
                  "R16 ranges start on 16 rows");
        free(y);
    }
    rk_pool *pool = rk_pool_create(3);
    float *y = make_y(n_cols, ys);
    cr_assert(rk_matmul_pool(pool, &r16, a.q, a.q_stride, n_cols, y, ys) == 0);
    for (int64_t c = 0; c < n_cols; c++)
        for (int64_t r = 0; r < n_rows; r++)
            cr_assert(same_float(y[(size_t)c * ys + (size_t)r], ref[(size_t)c * ys + (size_t)r]));
    free(y);
    rk_pool_destroy(pool);
    free(packed);
    free(ref);
    free_act(&a);
    free(m.bytes);
}

static void check_type(rk_type t)
{
    static const int64_t ROWS[] = {1, 7, 17, 33};
    static const int64_t COLS[] = {1, 2, 3, 4, 5, 8, 13, 17};
    for (int kw = 0; kw < 3; kw++)
        for (size_t ri = 0; ri < sizeof ROWS / sizeof ROWS[0]; ri++)
            for (size_t ci = 0; ci < sizeof COLS / sizeof COLS[0]; ci++) {
                /* the largest shapes once, the small ones in both weight modes */
                if (kw == 2 && (ri + ci) % 3 != 0)
                    continue;
                for (int mode = 0; mode <= 1; mode++) {
                    if (SANITIZED && mode == 1 && kw > 0)
                        continue; /* the sanitizer build is ~20x slower: random bytes once */
                    check_variants(t, ROWS[ri], ks_for(t, kw), COLS[ci], mode);
                    if (rk_repack_supported(t) && ci % 2 == 0)
                        check_r16(t, ROWS[ri], ks_for(t, kw), COLS[ci], mode);
                }
            }
}

Test(matmul, variants_q8_0) { check_type(RK_TYPE_Q8_0); }
Test(matmul, variants_q5_0) { check_type(RK_TYPE_Q5_0); }
Test(matmul, variants_q4_k) { check_type(RK_TYPE_Q4_K); }
Test(matmul, variants_q6_k) { check_type(RK_TYPE_Q6_K); }
Test(matmul, variants_f32) { check_type(RK_TYPE_F32); }
Test(matmul, variants_q4_0) { check_type(RK_TYPE_Q4_0); }
Test(matmul, variants_q4_1) { check_type(RK_TYPE_Q4_1); }
Test(matmul, variants_q5_1) { check_type(RK_TYPE_Q5_1); }
Test(matmul, variants_q5_k) { check_type(RK_TYPE_Q5_K); }
Test(matmul, variants_q2_k) { check_type(RK_TYPE_Q2_K); }
Test(matmul, variants_q3_k) { check_type(RK_TYPE_Q3_K); }
Test(matmul, variants_f16) { check_type(RK_TYPE_F16); }
Test(matmul, variants_bf16) { check_type(RK_TYPE_BF16); }
Test(matmul, variants_apr_q4) { check_type(RK_TYPE_APR_Q4); }
Test(matmul, variants_apr_q8) { check_type(RK_TYPE_APR_Q8); }

/* ---- the reference against the dequantize-then-F32 reference ----------------------------- */

/* Bound on |quantized dot - exact dot of dequantized weights with the float activations|:
 * each activation is off by at most half its block's step (d_x / 2), plus float rounding of
 * the accumulation (relative 1e-5 of sum |w x|). */
static void check_tolerance(rk_type t)
{
    const int64_t k = rk_type_traits_get(t)->block_elems == 1 ? 531 : 1280;
    const int64_t n_rows = 9, n_cols = 3;
    test_matrix m = make_matrix(t, n_rows, k, 0, 0);
    test_act a = make_act(t, k, n_cols);
    float *yq = make_y(n_cols, (size_t)n_rows), *yf = make_y(n_cols, (size_t)n_rows);
    cr_assert(rk_matmul_isa(RK_ISA_SCALAR, 0, &m.w, 0, n_rows, a.q, a.q_stride, n_cols, yq,
                            (size_t)n_rows) == 0);
    cr_assert(rk_matmul_dequant_ref(&m.w, 0, n_rows, a.x, a.x_stride, n_cols, yf, (size_t)n_rows) ==
              0);
    const rk_type at = rk_act_type(t);
    float *wrow = malloc((size_t)k * sizeof(float));
    double worst = 0.0;
    for (int64_t r = 0; r < n_rows; r++) {
        dequantize_row(&m.w, r, wrow);
        for (int64_t c = 0; c < n_cols; c++) {
            const float *x = a.x + (size_t)c * a.x_stride;
            const uint8_t *q = a.q + (size_t)c * a.q_stride;
            double bound = 0.0, mag = 0.0;
            for (int64_t i = 0; i < k; i++) {
                double step = 0.0;
                if (at == RK_TYPE_Q8_0)
                    step = rk_f16_to_f32((uint16_t)(q[(i / 32) * 34] | q[(i / 32) * 34 + 1] << 8));
                else if (at == RK_TYPE_Q8_1)
                    step = rk_f16_to_f32((uint16_t)(q[(i / 32) * 36] | q[(i / 32) * 36 + 1] << 8));
                else if (at == RK_TYPE_Q8_K) {
                    float d;
                    memcpy(&d, q + (i / 256) * 292, 4);
                    step = fabs((double)d);
                }
                bound += fabs((double)wrow[i]) * step * 0.5;
                mag += fabs((double)wrow[i] * (double)x[i]);
            }
            bound = bound * 1.001 + 1e-5 * mag + 1e-30;
            const double err = fabs((double)yq[c * n_rows + r] - (double)yf[c * n_rows + r]);
            cr_assert(err <= bound,
                      "%s row %lld col %lld: quantized %.9g, F32 %.9g, |err| %.3g > "
                      "bound %.3g",
                      type_name(t), (long long)r, (long long)c, (double)yq[c * n_rows + r],
                      (double)yf[c * n_rows + r], err, bound);
            if (mag > 0 && err / mag > worst)
                worst = err / mag;
        }
    }
    cr_log_info("%s: worst |err| / sum|w x| = %.3g", type_name(t), worst);
    free(wrow);
    free(yq);
    free(yf);
    free_act(&a);
    free(m.bytes);
}

Test(matmul, tolerance_vs_dequantized_f32)
{
    for (size_t i = 0; i < N_WEIGHT_TYPES; i++)
        check_tolerance(WEIGHT_TYPES[i]);
}

/* ---- threads ------------------------------------------------------------------------------- */

Test(matmul, pool_results_independent_of_threads)
{
    static const rk_type TYPES[] = {RK_TYPE_Q8_0, RK_TYPE_Q5_0, RK_TYPE_Q4_K, RK_TYPE_Q6_K,
                                    RK_TYPE_F32};
    rk_pool *pools[3];
    for (int t = 0; t < 3; t++) {
        pools[t] = rk_pool_create(t + 1);
        cr_assert(pools[t]);
        cr_assert_eq(rk_pool_threads(pools[t]), t + 1);
    }
    for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++) {
        const rk_type t = TYPES[ti];
        const int64_t k = rk_type_traits_get(t)->block_elems == 256 ? 768 : 544;
        for (int64_t n_cols = 1; n_cols <= 6; n_cols += 5) {
            const int64_t n_rows = 157;
            test_matrix m = make_matrix(t, n_rows, k, 0, 0);
            test_act a = make_act(t, k, n_cols);
            float *ref = make_y(n_cols, (size_t)n_rows);
            cr_assert(rk_matmul_isa(RK_ISA_SCALAR, 0, &m.w, 0, n_rows, a.q, a.q_stride, n_cols, ref,
                                    (size_t)n_rows) == 0);
            for (int p = 0; p < 3; p++) {
                for (int rep = 0; rep < 3; rep++) {
                    float *y = make_y(n_cols, (size_t)n_rows);
                    cr_assert(rk_matmul_pool(pools[p], &m.w, a.q, a.q_stride, n_cols, y,
                                             (size_t)n_rows) == 0);
                    cr_assert(memcmp(y, ref, (size_t)(n_rows * n_cols) * sizeof(float)) == 0,
                              "%s, %d threads, %lld cols: differs from the reference", type_name(t),
                              p + 1, (long long)n_cols);
                    free(y);
                }
            }
            /* the pooled activation quantization gives the same bytes */
            uint8_t *q2 = malloc(a.q_stride * (size_t)n_cols);
            memset(q2, 0, a.q_stride * (size_t)n_cols);
            cr_assert(
                rk_quantize_act_pool(pools[2], t, k, n_cols, a.x, a.x_stride, q2, a.q_stride) == 0);
            for (int64_t c = 0; c < n_cols; c++)
                cr_assert(memcmp(q2 + (size_t)c * a.q_stride, a.q + (size_t)c * a.q_stride,
                                 rk_act_row_bytes(t, k)) == 0);
            /* and piece by piece, 256 elements at a time from packed pieces: the same bytes */
            memset(q2, 0, a.q_stride * (size_t)n_cols);
            for (int64_t e0 = 0; e0 < k; e0 += 256) {
                const int64_t e1 = e0 + 256 < k ? e0 + 256 : k, w = e1 - e0;
                float *piece = malloc((size_t)(w * n_cols) * sizeof(float));
                for (int64_t c = 0; c < n_cols; c++)
                    memcpy(piece + c * w, a.x + (size_t)c * a.x_stride + (size_t)e0,
                           (size_t)w * sizeof(float));
                cr_assert(rk_quantize_act_range_pool(pools[1], t, k, e0, e1, n_cols, piece,
                                                     (size_t)w, q2, a.q_stride) == 0);
                free(piece);
            }
            for (int64_t c = 0; c < n_cols; c++)
                cr_assert(memcmp(q2 + (size_t)c * a.q_stride, a.q + (size_t)c * a.q_stride,
                                 rk_act_row_bytes(t, k)) == 0,
                          "%s: activations quantized by ranges differ", type_name(t));
            cr_assert(rk_quantize_act_range_pool(NULL, t, k, 32, k, n_cols, a.x, a.x_stride, q2,
                                                 a.q_stride) == -1); /* e0 not a multiple of 256 */
            cr_assert(rk_quantize_act_range_pool(NULL, t, k, 0, k + 256, n_cols, a.x, a.x_stride,
                                                 q2, a.q_stride) == -1); /* past the column */
            free(q2);
            free(ref);
            free_act(&a);
            free(m.bytes);
        }
    }
    for (int t = 0; t < 3; t++)
        rk_pool_destroy(pools[t]);
}

typedef struct count_ctx {
    int *hits;
} count_ctx;

static void count_task(void *ctx, int64_t task, int thread)
{
    count_ctx *c = ctx;
    cr_assert(thread >= 0 && thread < 4);
    __atomic_fetch_add(&c->hits[task], 1, __ATOMIC_RELAXED);
}

/* Back-to-back jobs of varied sizes: a worker that is late for one job must never run a task of
 * the next one twice or a task that does not exist (a real race once found under TSan). */
Test(matmul, pool_runs_every_task_once)
{
    rk_pool *pool = rk_pool_create(4);
    cr_assert(pool);
    int hits[1000];
    const int rounds = SANITIZED ? 2000 : 20000;
    for (int round = 0; round < rounds; round++) {
        const int n = 1 + (round * 7919) % 300;
        memset(hits, 0, sizeof hits);
        count_ctx c = {hits};
        rk_pool_run(pool, n, count_task, &c);
        for (int i = 0; i < n; i++)
            cr_assert_eq(hits[i], 1, "round %d task %d ran %d times", round, i, hits[i]);
        if (round % 5000 == 4999) /* let the workers fall asleep, then wake them */
            nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    rk_pool_destroy(pool);
    rk_pool_destroy(NULL);
    cr_assert_eq(rk_pool_threads(NULL), 1);
}

/* ---- activation quantization --------------------------------------------------------------- */

Test(matmul, q8_K_simd_quantizer_matches_reference)
{
    const int64_t k = 256 * 24;
    float *x = malloc((size_t)k * sizeof(float));
    uint8_t *ref = malloc((size_t)(k / 256) * 292), *got = malloc((size_t)(k / 256) * 292);
    for (int mode = 0; mode < 6; mode++) {
        for (int64_t i = 0; i < k; i++) {
            const int64_t b = i / 256;
            float v = gauss() * (b % 3 == 0 ? 1e-3f : 1.0f);
            if (mode == 1)
                v = (float)((int)(next_u64() % 9) - 4) * 0.5f; /* ties, repeated maxima */
            if (mode == 2 && b % 4 == 1)
                v = 0.0f; /* zero blocks */
            if (mode == 3 && i % 257 == 5)
                v = (i % 2) ? NAN : INFINITY; /* non-finite */
            if (mode == 4)
                v = 1e-40f * (float)(i % 13); /* subnormal: iscale overflows */
            if (mode == 5 && i % 256 == 100)
                v = -1e30f; /* a negative extreme */
            x[i] = v;
        }
        rk_quantize_row_q8_K_ref(x, ref, k);
        if (rk_isa_cpu() >= RK_ISA_AVX2) {
            rk_quantize_row_q8_K_avx2(x, got, k);
            cr_assert(memcmp(ref, got, (size_t)(k / 256) * 292) == 0, "avx2 mode %d", mode);
        }
        if (rk_isa_cpu() >= RK_ISA_AVX512) {
            rk_quantize_row_q8_K_avx512(x, got, k);
            cr_assert(memcmp(ref, got, (size_t)(k / 256) * 292) == 0, "avx512 mode %d", mode);
        }
    }
    free(x);
    free(ref);
    free(got);
}

Test(matmul, q8_0_activation_rows_carry_block_sums)
{
    const int64_t k = 96;
    float x[96];
    for (int i = 0; i < 96; i++)
        x[i] = gauss();
    const size_t bytes = rk_act_row_bytes(RK_TYPE_Q5_0, k);
    cr_assert_eq(bytes, 3 * 34 + 3 * 4);
    uint8_t *q = malloc(bytes), blocks[3 * 34];
    cr_assert(rk_quantize_act(RK_TYPE_Q5_0, k, 1, x, 0, q, 0) == 0);
    rk_quantize_row_q8_0_ref(x, blocks, k);
    cr_assert(memcmp(q, blocks, sizeof blocks) == 0, "the blocks are ggml's Q8_0 bytes");
    for (int b = 0; b < 3; b++) {
        int32_t s = 0, stored;
        for (int i = 0; i < 32; i++)
            s += (int8_t)blocks[b * 34 + 2 + i];
        memcpy(&stored, q + 3 * 34 + 4 * b, 4);
        cr_assert_eq(stored, s);
    }
    free(q);
}

/* ---- traits and argument checks ------------------------------------------------------------ */

Test(matmul, traits_and_checks)
{
    cr_assert_eq(rk_row_bytes(RK_TYPE_Q4_K, 512), 288u);
    cr_assert_eq(rk_row_bytes(RK_TYPE_Q4_K, 500), 0u);
    cr_assert_eq(rk_row_bytes(RK_TYPE_F16, 7), 14u);
    cr_assert_eq(rk_row_bytes(RK_TYPE_APR_Q8, 64), 64u);
    cr_assert(rk_repack_supported(RK_TYPE_Q6_K) && !rk_repack_supported(RK_TYPE_Q2_K));
    cr_assert_eq(rk_repack_bytes(RK_TYPE_Q5_0, 17, 64), 32u * 44u);
    cr_assert_eq(rk_repack_bytes(RK_TYPE_F32, 16, 64), 0u);
    cr_assert_eq(rk_act_type(RK_TYPE_Q6_K), RK_TYPE_Q8_K);
    cr_assert_eq(rk_act_type(RK_TYPE_Q5_1), RK_TYPE_Q8_1);
    cr_assert_eq(rk_act_type(RK_TYPE_APR_Q4), RK_TYPE_Q8_0);
    cr_assert_eq(rk_act_type(RK_TYPE_BF16), RK_TYPE_F32);
    cr_assert_eq(rk_act_row_bytes(RK_TYPE_Q4_K, 256), 292u);
    cr_assert_eq(rk_act_row_bytes(RK_TYPE_F16, 5), 20u);
    cr_assert_null(rk_type_traits_get((rk_type)5));
    cr_assert_str_eq(rk_type_traits_get(RK_TYPE_Q5_0)->name, "Q5_0");
    cr_assert(!rk_type_traits_get(RK_TYPE_Q8_K)->weight);

    uint8_t data[4 * 144] = {0};
    rk_matrix w = {.type = RK_TYPE_Q4_K, .data = data, .row_stride = 144, .n_rows = 4, .k = 256};
    cr_assert_eq(rk_matrix_check(&w), 0);
    rk_matrix bad = w;
    bad.k = 128;
    cr_assert_eq(rk_matrix_check(&bad), -1);
    bad = w;
    bad.row_stride = 100;
    cr_assert_eq(rk_matrix_check(&bad), -1);
    bad = w;
    bad.type = RK_TYPE_Q8_K;
    cr_assert_eq(rk_matrix_check(&bad), -1);
    bad = w;
    bad.data = NULL;
    cr_assert_eq(rk_matrix_check(&bad), -1);

    uint8_t act[292] = {0};
    float y[4];
    cr_assert_eq(rk_matmul(&w, 0, 4, act, 292, 1, y, 4), 0);
    cr_assert_eq(rk_matmul(&w, 0, 5, act, 292, 1, y, 4), -1);
    cr_assert_eq(rk_matmul(&w, 2, 2, act, 292, 1, y, 4), -1);
    cr_assert_eq(rk_matmul(&w, 0, 4, NULL, 292, 1, y, 4), -1);
    cr_assert_eq(rk_matmul(&w, 0, 4, act, 100, 2, y, 4), -1);
    cr_assert_eq(rk_quantize_act(RK_TYPE_Q4_K, 100, 1, (float[100]){0}, 0, act, 0), -1);
    cr_assert(rk_isa_active() <= rk_isa_cpu());
    cr_assert_str_eq(rk_isa_name(RK_ISA_AVX512_VNNI), "avx512vnni");
}
