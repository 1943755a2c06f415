/* rk_matmul and friends (matmul.h): activation quantization, the choice of variant and path,
 * the split over the thread pool, and the dequantizing reference. The type table and argument
 * checks are in matmul_types.c, the kernels in matmul_ref.c and matmul_<isa>.c. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_features.h"
#include "cpu/matmul.h"
#include "cpu/matmul_internal.h"
#include "cpu/quant_dispatch.h"
#include "cpu/quant_ref.h"

/* ---- variants ------------------------------------------------------------------------------- */

rk_isa rk_isa_cpu(void)
{
    switch (rk_cpu_simd_level()) {
    case RK_SIMD_SCALAR: return RK_ISA_SCALAR;
    case RK_SIMD_AVX2: return RK_ISA_AVX2;
    case RK_SIMD_AVX512: return rk_cpu_has_avx512vnni() ? RK_ISA_AVX512_VNNI : RK_ISA_AVX512;
    }
    return RK_ISA_SCALAR;
}

rk_isa rk_isa_active(void)
{
    static _Atomic int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        rk_isa isa = RK_ISA_SCALAR;
        switch (rk_simd_active()) {
        case RK_SIMD_SCALAR: isa = RK_ISA_SCALAR; break;
        case RK_SIMD_AVX2: isa = RK_ISA_AVX2; break;
        case RK_SIMD_AVX512: isa = rk_isa_cpu(); break;
        }
        v = (int)isa;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return (rk_isa)v;
}

const char *rk_isa_name(rk_isa isa)
{
    switch (isa) {
    case RK_ISA_SCALAR: return "scalar";
    case RK_ISA_AVX2: return "avx2";
    case RK_ISA_AVX512: return "avx512";
    case RK_ISA_AVX512_VNNI: return "avx512vnni";
    }
    return "unknown";
}

static rk_mm_fn pick(rk_isa isa, int gemm)
{
    switch (isa) {
    case RK_ISA_SCALAR: return rk_mm_ref;
    case RK_ISA_AVX2: return gemm ? rk_mm_gemm_avx2 : rk_mm_matvec_avx2;
    case RK_ISA_AVX512: return gemm ? rk_mm_gemm_avx512 : rk_mm_matvec_avx512;
    case RK_ISA_AVX512_VNNI: return gemm ? rk_mm_gemm_avx512vnni : rk_mm_matvec_avx512vnni;
    }
    return rk_mm_ref;
}

/* ---- matmul --------------------------------------------------------------------------------- */

static int check_call(const rk_matrix *w, int64_t r0, int64_t r1, const void *act,
                      size_t act_stride, int64_t n_cols, const float *y, size_t y_stride)
{
    if (rk_matrix_check(w) != 0 || !act || !y || n_cols < 1)
        return -1;
    if (r0 < 0 || r1 > w->n_rows || r0 >= r1)
        return -1;
    if (w->layout == RK_LAYOUT_R16 && r0 % 16 != 0)
        return -1;
    const size_t act_row = rk_act_row_bytes(w->type, w->k);
    if (n_cols > 1 && (act_stride < act_row || y_stride < (size_t)r1))
        return -1;
    /* float activations are read as floats */
    if (rk_act_type(w->type) == RK_TYPE_F32 &&
        ((uintptr_t)act % sizeof(float) != 0 || act_stride % sizeof(float) != 0))
        return -1;
    return 0;
}

int rk_matmul_isa(rk_isa isa, int gemm, const rk_matrix *w, int64_t r0, int64_t r1, const void *act,
                  size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    if (check_call(w, r0, r1, act, act_stride, n_cols, y, y_stride) != 0)
        return -1;
    if ((int)isa > (int)rk_isa_cpu() || (int)isa < 0)
        return -1;
    pick(isa, gemm)(w, r0, r1, act, act_stride, n_cols, y, y_stride);
    return 0;
}

int rk_matmul(const rk_matrix *w, int64_t r0, int64_t r1, const void *act, size_t act_stride,
              int64_t n_cols, float *y, size_t y_stride)
{
    if (check_call(w, r0, r1, act, act_stride, n_cols, y, y_stride) != 0)
        return -1;
    pick(rk_isa_active(), n_cols >= RK_GEMM_MIN_COLS)(w, r0, r1, act, act_stride, n_cols, y,
                                                      y_stride);
    return 0;
}

typedef struct mm_job {
    rk_mm_fn fn;
    const rk_matrix *w;
    const uint8_t *act;
    size_t act_stride;
    int64_t n_cols;
    float *y;
    size_t y_stride;
    int64_t chunk;
} mm_job;

static void mm_task(void *ctx, int64_t task, int thread)
{
    (void)thread;
    const mm_job *j = ctx;
    const int64_t r0 = task * j->chunk;
    const int64_t r1 = r0 + j->chunk < j->w->n_rows ? r0 + j->chunk : j->w->n_rows;
    j->fn(j->w, r0, r1, j->act, j->act_stride, j->n_cols, j->y, j->y_stride);
}

int rk_matmul_pool(rk_pool *pool, const rk_matrix *w, const void *act, size_t act_stride,
                   int64_t n_cols, float *y, size_t y_stride)
{
    if (check_call(w, 0, w ? w->n_rows : 0, act, act_stride, n_cols, y, y_stride) != 0)
        return -1;
    const int gemm = n_cols >= RK_GEMM_MIN_COLS;
    const int64_t threads = rk_pool_threads(pool);
    int64_t chunk;
    if (gemm) {
        chunk = RK_GEMM_ROW_CHUNK;
    } else {
        /* about 4 chunks per thread for balance, whole 16-row tiles, at least 16 rows */
        chunk = (w->n_rows + 4 * threads - 1) / (4 * threads);
        chunk = (chunk + 15) / 16 * 16;
        if (chunk < 16)
            chunk = 16;
    }
    mm_job job = {pick(rk_isa_active(), gemm), w, act, act_stride, n_cols, y, y_stride, chunk};
    rk_pool_run(pool, (w->n_rows + chunk - 1) / chunk, mm_task, &job);
    return 0;
}

/* ---- activation quantization ---------------------------------------------------------------- */

typedef void (*quant_row_fn)(const float *x, void *y, int64_t k);

static quant_row_fn act_quantizer(rk_type act_type)
{
    const rk_isa isa = rk_isa_active();
    switch (act_type) {
    case RK_TYPE_Q8_0:
        if (isa >= RK_ISA_AVX512)
            return rk_quantize_row_q8_0_avx512;
        if (isa == RK_ISA_AVX2)
            return rk_quantize_row_q8_0_avx2;
        return rk_quantize_row_q8_0_ref;
    case RK_TYPE_Q8_1: return rk_quantize_row_q8_1_ref;
    case RK_TYPE_Q8_K:
        if (isa >= RK_ISA_AVX512)
            return rk_quantize_row_q8_K_avx512;
        if (isa == RK_ISA_AVX2)
            return rk_quantize_row_q8_K_avx2;
        return rk_quantize_row_q8_K_ref;
    case RK_TYPE_F32:
    case RK_TYPE_F16:
    case RK_TYPE_Q4_0:
    case RK_TYPE_Q4_1:
    case RK_TYPE_Q5_0:
    case RK_TYPE_Q5_1:
    case RK_TYPE_Q2_K:
    case RK_TYPE_Q3_K:
    case RK_TYPE_Q4_K:
    case RK_TYPE_Q5_K:
    case RK_TYPE_Q6_K:
    case RK_TYPE_BF16:
    case RK_TYPE_APR_Q4:
    case RK_TYPE_APR_Q8: return NULL;
    }
    return NULL;
}

static int check_quant(rk_type weight_type, int64_t k, int64_t n_cols, const float *x,
                       size_t x_stride, const void *act, size_t act_stride)
{
    const size_t row = rk_act_row_bytes(weight_type, k);
    if (row == 0 || !x || !act || n_cols < 1)
        return -1;
    const rk_type_traits *t = rk_type_traits_get(weight_type);
    if (!t->weight)
        return -1;
    if (n_cols > 1 && (x_stride < (size_t)k || act_stride < row))
        return -1;
    return 0;
}

/* Elements [e0, e1) of columns [c0, c1): x holds the e1 - e0 values of each column, act the whole
 * rows (the blocks before e0 are skipped, and for Q8_0 the sums of the blocks written). */
static void quantize_cols(rk_type weight_type, int64_t k, int64_t e0, int64_t e1, int64_t c0,
                          int64_t c1, const float *x, size_t x_stride, void *act, size_t act_stride)
{
    const rk_type at = rk_act_type(weight_type);
    quant_row_fn q = act_quantizer(at);
    const size_t skip = rk_row_bytes(at, e0);
    for (int64_t c = c0; c < c1; c++) {
        const float *src = x + (size_t)c * x_stride;
        uint8_t *row = (uint8_t *)act + (size_t)c * act_stride;
        if (q)
            q(src, row + skip, e1 - e0);
        else
            memcpy(row + skip, src, (size_t)(e1 - e0) * sizeof(float));
        if (at == RK_TYPE_Q8_0)
            rk_act_q8_0_block_sums(row, k / 32, e0 / 32, e1 / 32);
    }
}

int rk_quantize_act(rk_type weight_type, int64_t k, int64_t n_cols, const float *x, size_t x_stride,
                    void *act, size_t act_stride)
{
    if (check_quant(weight_type, k, n_cols, x, x_stride, act, act_stride) != 0)
        return -1;
    quantize_cols(weight_type, k, 0, k, 0, n_cols, x, x_stride, act, act_stride);
    return 0;
}

typedef struct quant_job {
    rk_type weight_type;
    int64_t k, e0, e1, n_cols, chunk;
    const float *x;
    size_t x_stride;
    void *act;
    size_t act_stride;
} quant_job;

static void quant_task(void *ctx, int64_t task, int thread)
{
    (void)thread;
    const quant_job *j = ctx;
    const int64_t c0 = task * j->chunk;
    const int64_t c1 = c0 + j->chunk < j->n_cols ? c0 + j->chunk : j->n_cols;
    quantize_cols(j->weight_type, j->k, j->e0, j->e1, c0, c1, j->x, j->x_stride, j->act,
                  j->act_stride);
}

static void quantize_on_pool(rk_pool *pool, quant_job *job)
{
    rk_pool_run(pool, (job->n_cols + job->chunk - 1) / job->chunk, quant_task, job);
}

int rk_quantize_act_pool(rk_pool *pool, rk_type weight_type, int64_t k, int64_t n_cols,
                         const float *x, size_t x_stride, void *act, size_t act_stride)
{
    if (check_quant(weight_type, k, n_cols, x, x_stride, act, act_stride) != 0)
        return -1;
    quant_job job = {weight_type, k, 0, k, n_cols, 4, x, x_stride, act, act_stride};
    quantize_on_pool(pool, &job);
    return 0;
}

int rk_quantize_act_range_pool(rk_pool *pool, rk_type weight_type, int64_t k, int64_t e0,
                               int64_t e1, int64_t n_cols, const float *x, size_t x_stride,
                               void *act, size_t act_stride)
{
    if (e0 < 0 || e1 <= e0 || e1 > k || e0 % 256 != 0 || (e1 != k && e1 % 256 != 0) || n_cols < 1 ||
        check_quant(weight_type, k, 1, x, 0, act, 0) != 0 ||
        (n_cols > 1 &&
         (x_stride < (size_t)(e1 - e0) || act_stride < rk_act_row_bytes(weight_type, k))))
        return -1;
    quant_job job = {weight_type, k, e0, e1, n_cols, 4, x, x_stride, act, act_stride};
    quantize_on_pool(pool, &job);
    return 0;
}

/* ---- dequantizing reference ----------------------------------------------------------------- */

static int dequant_row(const rk_matrix *w, int64_t r, float *out, uint8_t *rowbuf)
{
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_stride;
    const int64_t k = w->k;
    if (w->layout == RK_LAYOUT_R16) {
        const rk_type_traits *t = rk_type_traits_get(w->type);
        for (int64_t b = 0; b < k / t->block_elems; b++)
            rk_r16_block(w->type, rk_r16_tile(w, r / 16, b), (int)(r % 16),
                         rowbuf + (size_t)b * t->block_bytes);
        row = rowbuf;
    }
    switch (w->type) {
    case RK_TYPE_F32: memcpy(out, row, (size_t)k * sizeof(float)); return 0;
    case RK_TYPE_F16: rk_dequantize_row_f16_ref(row, out, k); return 0;
    case RK_TYPE_BF16: rk_dequantize_row_bf16_ref(row, out, k); return 0;
    case RK_TYPE_Q4_0: rk_dequantize_row_q4_0_ref(row, out, k); return 0;
    case RK_TYPE_Q4_1: rk_dequantize_row_q4_1_ref(row, out, k); return 0;
    case RK_TYPE_Q5_0: rk_dequantize_row_q5_0_ref(row, out, k); return 0;
    case RK_TYPE_Q5_1: rk_dequantize_row_q5_1_ref(row, out, k); return 0;
    case RK_TYPE_Q8_0: rk_dequantize_row_q8_0_ref(row, out, k); return 0;
    case RK_TYPE_Q2_K: rk_dequantize_row_q2_K_ref(row, out, k); return 0;
    case RK_TYPE_Q3_K: rk_dequantize_row_q3_K_ref(row, out, k); return 0;
    case RK_TYPE_Q4_K: rk_dequantize_row_q4_K_ref(row, out, k); return 0;
    case RK_TYPE_Q5_K: rk_dequantize_row_q5_K_ref(row, out, k); return 0;
    case RK_TYPE_Q6_K: rk_dequantize_row_q6_K_ref(row, out, k); return 0;
    case RK_TYPE_APR_Q4: rk_dequantize_row_apr_q4_ref(row, out, k); return 0;
    case RK_TYPE_APR_Q8:
        for (int64_t i = 0; i < k; i++)
            out[i] = (float)(int8_t)row[i] * w->scale;
        return 0;
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q8_K: return -1;
    }
    return -1;
}

int rk_matmul_dequant_ref(const rk_matrix *w, int64_t r0, int64_t r1, const float *x,
                          size_t x_stride, int64_t n_cols, float *y, size_t y_stride)
{
    if (rk_matrix_check(w) != 0 || !x || !y || n_cols < 1 || r0 < 0 || r1 > w->n_rows || r0 >= r1)
        return -1;
    const size_t row_bytes = rk_row_bytes(w->type, w->k); /* > 0: checked above */
    float *row = malloc((size_t)w->k * sizeof(float));
    uint8_t *rowbuf = row_bytes ? malloc(row_bytes) : NULL;
    if (!row || !rowbuf) {
        free(row);
        free(rowbuf);
        return -1;
    }
    for (int64_t r = r0; r < r1; r++) {
        if (dequant_row(w, r, row, rowbuf) != 0) {
            free(row);
            free(rowbuf);
            return -1;
        }
        for (int64_t c = 0; c < n_cols; c++) {
            const float *xc = x + (size_t)c * x_stride;
            double s = 0.0;
            for (int64_t i = 0; i < w->k; i++)
                s += (double)row[i] * (double)xc[i];
            y[(size_t)c * y_stride + (size_t)r] = (float)s;
        }
    }
    free(row);
    free(rowbuf);
    return 0;
}
