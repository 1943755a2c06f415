/* Oracle test of the matmul kernels (kernels/cpu/matmul.h) against ggml's CPU backend
 * (libggml-cpu of the pinned llama.cpp, built by scripts/build-llama-oracle without -march=native:
 * its type traits use the AVX2 code, its *_generic functions the portable reference code).
 *
 *   activations: rk_quantize_act's Q8_0 / Q8_1 / Q8_K blocks must equal ggml's
 *     quantize_row_<type>_generic bytes (the reference quantizers) exactly; differences from the
 *     AVX2 from_float (which rounds ties to even) are counted and printed;
 *   dot products: for every weight type, rk_matmul on ggml-identical weight bytes against
 *     ggml's vec_dot on ggml's own activations:
 *       Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K: bit-identical to ggml_vec_dot_*_generic;
 *       Q3_K Q4_K Q5_K Q6_K: within 1e-6 * sum|w x| of the generic code (ggml sums a
 *         super-block in 8 float lanes, rk math in one exact integer);
 *       every type: within 1e-6 * sum|w x| of the AVX2 vec_dot (another float order);
 *       F32: within 1e-6 * sum|w x|; F16 / BF16: ggml rounds the activations to F16 / BF16,
 *         within 2^-10 / 2^-7 * sum|w x|;
 *     and the R16 layout (rk_repack) gives the row layout's bits.
 * Built and run by tests/tools/matmul_oracle.sh. Prints one line per type; exit 0 when all
 * checks pass, 1 otherwise. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-cpu.h"
#include "ggml.h"

#include "common/half.h"
#include "cpu/matmul.h"
#include "cpu/quant_ref.h"

typedef void (*vec_dot_fn)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y,
                           size_t by, int nrc);
typedef void (*quant_fn)(const float *x, void *y, int64_t k);

/* ggml-cpu exports its portable reference code under these names (ggml-cpu/quants.c) */
void ggml_vec_dot_q4_0_q8_0_generic(int, float *, size_t, const void *, size_t, const void *,
                                    size_t, int);
void ggml_vec_dot_q4_1_q8_1_generic(int, float *, size_t, const void *, size_t, const void *,
                                    size_t, int);
void ggml_vec_dot_q5_0_q8_0_generic(int, float *, size_t, const void *, size_t, const void *,
                                    size_t, int);
void ggml_vec_dot_q5_1_q8_1_generic(int, float *, size_t, const void *, size_t, const void *,
                                    size_t, int);
void ggml_vec_dot_q8_0_q8_0_generic(int, float *, size_t, const void *, size_t, const void *,
                                    size_t, int);
void ggml_vec_dot_q2_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *,
                                    size_t, int);
void ggml_vec_dot_q3_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *,
                                    size_t, int);
void ggml_vec_dot_q4_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *,
                                    size_t, int);
void ggml_vec_dot_q5_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *,
                                    size_t, int);
void ggml_vec_dot_q6_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *,
                                    size_t, int);
void quantize_row_q8_0_generic(const float *x, void *y, int64_t k);
void quantize_row_q8_1_generic(const float *x, void *y, int64_t k);
void quantize_row_q8_K_generic(const float *x, void *y, int64_t k);

typedef struct otype {
    rk_type type;
    quant_fn quantize;  /* Rosetta's reference quantizer (ggml's bytes, tests/tools/quant_oracle) */
    vec_dot_fn generic; /* NULL: none to compare */
    int generic_exact;  /* bit-identical to the generic code */
    double arch_tol;    /* relative to sum |w x| */
} otype;

static const otype TYPES[] = {
    {RK_TYPE_Q4_0, rk_quantize_row_q4_0_ref, ggml_vec_dot_q4_0_q8_0_generic, 1, 1e-6},
    {RK_TYPE_Q4_1, rk_quantize_row_q4_1_ref, ggml_vec_dot_q4_1_q8_1_generic, 1, 1e-6},
    {RK_TYPE_Q5_0, rk_quantize_row_q5_0_ref, ggml_vec_dot_q5_0_q8_0_generic, 1, 1e-6},
    {RK_TYPE_Q5_1, rk_quantize_row_q5_1_ref, ggml_vec_dot_q5_1_q8_1_generic, 1, 1e-6},
    {RK_TYPE_Q8_0, rk_quantize_row_q8_0_ref, ggml_vec_dot_q8_0_q8_0_generic, 1, 1e-6},
    {RK_TYPE_Q2_K, rk_quantize_row_q2_K_ref, ggml_vec_dot_q2_K_q8_K_generic, 1, 1e-6},
    {RK_TYPE_Q3_K, rk_quantize_row_q3_K_ref, ggml_vec_dot_q3_K_q8_K_generic, 0, 1e-6},
    {RK_TYPE_Q4_K, rk_quantize_row_q4_K_ref, ggml_vec_dot_q4_K_q8_K_generic, 0, 1e-6},
    {RK_TYPE_Q5_K, rk_quantize_row_q5_K_ref, ggml_vec_dot_q5_K_q8_K_generic, 0, 1e-6},
    {RK_TYPE_Q6_K, rk_quantize_row_q6_K_ref, ggml_vec_dot_q6_K_q8_K_generic, 0, 1e-6},
    {RK_TYPE_F32, NULL, NULL, 0, 1e-6},
    {RK_TYPE_F16, rk_quantize_row_f16_ref, NULL, 0, 1.0 / 1024},
    {RK_TYPE_BF16, rk_quantize_row_bf16_ref, NULL, 0, 1.0 / 128},
};

static uint64_t rng = 0x853c49e6748fea9bull;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static float gauss(void)
{
    const double u = uniform() + 1e-12, v = uniform();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static quant_fn generic_quantizer(rk_type act)
{
    if (act == RK_TYPE_Q8_0)
        return quantize_row_q8_0_generic;
    if (act == RK_TYPE_Q8_1)
        return quantize_row_q8_1_generic;
    if (act == RK_TYPE_Q8_K)
        return quantize_row_q8_K_generic;
    return NULL;
}

/* dequantized weights of one row (through ggml's own to_float) */
static void to_float(rk_type t, const void *row, float *out, int64_t k)
{
    const struct ggml_type_traits *tr = ggml_get_type_traits((enum ggml_type)t);
    if (t == RK_TYPE_F32)
        memcpy(out, row, (size_t)k * 4);
    else
        tr->to_float(row, out, k);
}

static int check_type(const otype *o, int64_t k, int64_t n_rows, int64_t n_cols)
{
    const rk_type t = o->type;
    const char *name = rk_type_traits_get(t)->name;
    const struct ggml_type_traits_cpu *cpu = ggml_get_type_traits_cpu((enum ggml_type)t);
    const enum ggml_type gact = cpu->vec_dot_type;
    const size_t row = rk_row_bytes(t, k);
    const size_t gact_row = ggml_row_size(gact, k);
    const size_t rk_act_row = rk_act_row_bytes(t, k);
    uint8_t *w = malloc(row * (size_t)n_rows);
    float *x = malloc((size_t)(k * n_cols) * sizeof(float));
    uint8_t *ract = malloc(rk_act_row * (size_t)n_cols);
    uint8_t *gact_buf = malloc(gact_row * (size_t)n_cols);
    uint8_t *garch = malloc(gact_row * (size_t)n_cols);
    float *y = malloc((size_t)(n_rows * n_cols) * sizeof(float));
    float *yref = malloc((size_t)(n_rows * n_cols) * sizeof(float));
    float *wf = malloc((size_t)k * sizeof(float)), *xf = malloc((size_t)k * sizeof(float));
    float *tmp = malloc((size_t)k * sizeof(float));
    int fail = 0;

    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t i = 0; i < k; i++)
            tmp[i] = gauss() * 0.05f * (float)(1 + r % 4);
        if (o->quantize)
            o->quantize(tmp, w + (size_t)r * row, k);
        else
            memcpy(w + (size_t)r * row, tmp, row);
    }
    for (int64_t i = 0; i < k * n_cols; i++)
        x[i] = gauss() * (i % 97 == 0 ? 8.0f : 1.0f);
    if (rk_quantize_act(t, k, n_cols, x, (size_t)k, ract, rk_act_row) != 0) {
        fprintf(stderr, "%s: rk_quantize_act failed\n", name);
        return 1;
    }

    /* activation bytes */
    quant_fn gq = generic_quantizer(rk_act_type(t));
    int64_t arch_diff = 0;
    const struct ggml_type_traits_cpu *acpu = ggml_get_type_traits_cpu(gact);
    for (int64_t c = 0; c < n_cols; c++) {
        uint8_t *g = gact_buf + (size_t)c * gact_row;
        uint8_t *a = garch + (size_t)c * gact_row;
        if (acpu->from_float && gact != GGML_TYPE_F32)
            acpu->from_float(x + c * k, a, k);
        else
            memcpy(a, x + c * k, (size_t)k * 4);
        if (gq) {
            gq(x + c * k, g, k);
            if (memcmp(g, ract + (size_t)c * rk_act_row, gact_row) != 0) {
                fprintf(stderr,
                        "%s: column %lld: activation bytes differ from ggml's generic quantizer\n",
                        name, (long long)c);
                fail = 1;
            }
            arch_diff += memcmp(a, g, gact_row) != 0;
        } else {
            memcpy(g, a, gact_row);
        }
    }

    /* Rosetta's products, scalar and active variant: identical */
    rk_matrix m = {.type = t, .data = w, .row_stride = row, .n_rows = n_rows, .k = k};
    if (rk_matmul_isa(RK_ISA_SCALAR, 0, &m, 0, n_rows, ract, rk_act_row, n_cols, yref,
                      (size_t)n_rows) != 0 ||
        rk_matmul(&m, 0, n_rows, ract, rk_act_row, n_cols, y, (size_t)n_rows) != 0) {
        fprintf(stderr, "%s: rk_matmul failed\n", name);
        return 1;
    }
    if (memcmp(y, yref, (size_t)(n_rows * n_cols) * sizeof(float)) != 0) {
        fprintf(stderr, "%s: %s differs from the scalar reference\n", name,
                rk_isa_name(rk_isa_active()));
        fail = 1;
    }
    /* the R16 layout gives the same bits */
    if (rk_repack_supported(t)) {
        const size_t pb = rk_repack_bytes(t, n_rows, k);
        uint8_t *packed = malloc(pb);
        float *y16 = malloc((size_t)(n_rows * n_cols) * sizeof(float));
        rk_matrix r16;
        if (rk_repack(&m, packed, pb, &r16) != 0 ||
            rk_matmul(&r16, 0, n_rows, ract, rk_act_row, n_cols, y16, (size_t)n_rows) != 0 ||
            memcmp(y16, yref, (size_t)(n_rows * n_cols) * sizeof(float)) != 0) {
            fprintf(stderr, "%s: the R16 layout differs from the row layout\n", name);
            fail = 1;
        }
        free(packed);
        free(y16);
    }

    double worst_generic = 0, worst_arch = 0;
    int64_t generic_equal = 0, compared = 0;
    for (int64_t c = 0; c < n_cols; c++) {
        /* the quantized activation as floats, for the magnitude of the terms */
        const uint8_t *ga = gact_buf + (size_t)c * gact_row;
        if (gact == GGML_TYPE_F32)
            memcpy(xf, x + c * k, (size_t)k * 4);
        else if (gact == GGML_TYPE_Q8_0)
            rk_dequantize_row_q8_0_ref(ga, xf, k);
        else if (gact == GGML_TYPE_Q8_1)
            rk_dequantize_row_q8_1_ref(ga, xf, k);
        else if (gact == GGML_TYPE_Q8_K)
            rk_dequantize_row_q8_K_ref(ga, xf, k);
        else if (gact == GGML_TYPE_F16)
            rk_dequantize_row_f16_ref(ga, xf, k);
        else
            rk_dequantize_row_bf16_ref(ga, xf, k);
        for (int64_t r = 0; r < n_rows; r++) {
            const uint8_t *wr = w + (size_t)r * row;
            to_float(t, wr, wf, k);
            double mag = 0;
            for (int64_t i = 0; i < k; i++)
                mag += fabs((double)wf[i] * (double)xf[i]);
            const float ours = y[c * n_rows + r];
            if (o->generic) {
                float s = 0;
                o->generic((int)k, &s, 0, wr, 0, gact_buf + (size_t)c * gact_row, 0, 1);
                const double d = fabs((double)s - (double)ours);
                generic_equal += memcmp(&s, &ours, 4) == 0;
                if (mag > 0 && d / mag > worst_generic)
                    worst_generic = d / mag;
                if ((o->generic_exact && memcmp(&s, &ours, 4) != 0) || d > 1e-6 * mag + 1e-30) {
                    if (!fail)
                        fprintf(stderr, "%s: row %lld col %lld: generic vec_dot %.9g, rk %.9g\n",
                                name, (long long)r, (long long)c, (double)s, (double)ours);
                    fail = 1;
                }
            }
            float s = 0;
            cpu->vec_dot((int)k, &s, 0, wr, 0, garch + (size_t)c * gact_row, 0, 1);
            const double d = fabs((double)s - (double)ours);
            if (mag > 0 && d / mag > worst_arch)
                worst_arch = d / mag;
            if (d > o->arch_tol * mag + 1e-30) {
                if (!fail)
                    fprintf(stderr, "%s: row %lld col %lld: vec_dot %.9g, rk %.9g (tol %.3g)\n",
                            name, (long long)r, (long long)c, (double)s, (double)ours,
                            o->arch_tol * mag);
                fail = 1;
            }
            compared++;
        }
    }
    printf("%-5s k %5lld: %lld dots; generic: %s (%lld bit-identical, worst %.2e); "
           "ggml AVX2 vec_dot: worst %.2e; activation blocks differing from AVX2 from_float: "
           "%lld/%lld\n",
           name, (long long)k, (long long)compared,
           o->generic ? (o->generic_exact ? "exact" : "close") : "none", (long long)generic_equal,
           worst_generic, worst_arch, (long long)arch_diff, (long long)n_cols);
    free(w);
    free(x);
    free(ract);
    free(gact_buf);
    free(garch);
    free(y);
    free(yref);
    free(wf);
    free(xf);
    free(tmp);
    return fail;
}

int main(void)
{
    ggml_cpu_init();
    int fail = 0;
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) {
        const int64_t be = rk_type_traits_get(TYPES[i].type)->block_elems;
        fail |= check_type(&TYPES[i], be == 256 ? 256 : 32, 7, 3);
        fail |= check_type(&TYPES[i], 2560, 37, 5);
        if (be != 256)
            fail |= check_type(&TYPES[i], 896, 19, 4);
    }
    printf("matmul_oracle: %s\n", fail ? "FAILED" : "all checks passed");
    return fail;
}
