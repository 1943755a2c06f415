/* CPU compute kernels of the inference engine: weight-type traits, activation quantization,
 * quantized matrix multiplication (decode = matrix-vector, prefill = register-blocked GEMM), a
 * persistent thread pool, and the small vector operations of a transformer layer.
 * Not for: loading or validating model files (the caller hands over raw row bytes), choosing
 * weight types, or anything about a particular model. Contracts in full: docs/kernels.md.
 *
 * Shape convention. A weight matrix W has n_rows rows (the output dimension) of k elements (the
 * input dimension), stored as in GGUF/APR: row r starts at data + r * row_stride and holds
 * k / block_elems consecutive blocks of its type. An activation "column" is one input vector of k
 * floats (one token). rk_matmul computes, for every column c and row r,
 *
 *     y[c * y_stride + r] = dot(W row r, activation column c)
 *
 * i.e. Y[col][row]: the output of one token is contiguous (a row of the next layer's input).
 *
 * Numerics ("rk math", the same for every variant). Activations are quantized once per matmul to
 * the weight type's activation type (rk_act_type): Q8_0 for the 32-element block types, Q8_1 for
 * Q4_1 / Q5_1, Q8_K for the K-quants, F32 for F32 / F16 / BF16 weights. Quantized types then use
 * exact integer dot products per block (per 256-element super-block for the K-quants, integer
 * sub-block scales applied in integer arithmetic, minimums as dmin * sum(mins * bsums)), followed
 * by a fixed sequence of float operations per block, accumulated block after block in row order.
 * Float weights use a 16-lane dot product (lane l sums the elements i with i % 16 == l with fused
 * multiply-adds, then a fixed pairwise reduction of the 16 lanes). Because the integer parts are
 * exact and the float sequence is fixed, EVERY variant (scalar reference, AVX2, AVX-512,
 * AVX512-VNNI, matrix-vector or GEMM, any tile or thread split, any n_cols) returns the SAME BITS.
 * Against ggml's own portable dot products (the *_generic vec_dot on the same weight and
 * activation bytes) the results are identical for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K and within a
 * few float roundings (< 1e-7 of sum |w_i * x_i|) for Q3_K..Q6_K, whose super-block sum ggml
 * splits into 8 float lanes. Against an F32 dot product of the dequantized weights with the
 * unquantized activations, the error is that of the activation quantization:
 * |err| <= sum_i |w_i| * step_i / 2 + 1e-5 * sum_i |w_i * x_i|, step_i = the quantization step of
 * x_i's activation block (in practice about 1e-3 of sum |w_i * x_i|); F32/F16/BF16 weights:
 * float rounding only (about 1e-7 of sum |w_i * x_i|). docs/kernels.md has the per-type
 * formulas and the measured figures.
 *
 * Errors: functions returning int give 0 on success and -1 for invalid arguments (unsupported
 * type, k not a multiple of the block, bad range, NULL pointer) or, where documented, an
 * allocation failure. They never print or abort. */
#ifndef RK_MATMUL_H
#define RK_MATMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- types ----------------------------------------------------------------------------------
 * Weight and activation types by their ggml type code (the values of rf_dtype), plus aprender's
 * two own types by their rf_dtype values. */
typedef enum rk_type {
    RK_TYPE_F32 = 0,
    RK_TYPE_F16 = 1,
    RK_TYPE_Q4_0 = 2,
    RK_TYPE_Q4_1 = 3,
    RK_TYPE_Q5_0 = 6,
    RK_TYPE_Q5_1 = 7,
    RK_TYPE_Q8_0 = 8,
    RK_TYPE_Q8_1 = 9, /* activation type only */
    RK_TYPE_Q2_K = 10,
    RK_TYPE_Q3_K = 11,
    RK_TYPE_Q4_K = 12,
    RK_TYPE_Q5_K = 13,
    RK_TYPE_Q6_K = 14,
    RK_TYPE_Q8_K = 15, /* activation type only */
    RK_TYPE_BF16 = 30,
    /* aprender APR_Q4: blocks of 32 as Q4_0 (f16 scale, 16 bytes) but element 2i in the low
     * nibble and 2i+1 in the high nibble of byte i. A matrix is usable when k % 32 == 0 (then
     * every row is k / 32 whole blocks); activations are Q8_0. */
    RK_TYPE_APR_Q4 = 128,
    /* aprender APR_Q8: one f32 scale for the whole tensor, then int8 values. As a matrix: data
     * points at the first int8 (4 bytes past the tensor start), row_stride = k, and
     * rk_matrix.scale holds the tensor's scale. Needs k % 32 == 0; activations are Q8_0. */
    RK_TYPE_APR_Q8 = 129,
} rk_type;

typedef struct rk_type_traits {
    rk_type type;
    const char *name;    /* "Q4_K", "APR_Q8", ... */
    int64_t block_elems; /* elements per block: 1 (F32/F16/BF16), 32, or 256 (K-quants) */
    size_t block_bytes;  /* bytes per block (APR_Q8: 32 int8 per 32; its scale is outside) */
    rk_type act_type;    /* what rk_quantize_act makes of the activations for this weight type */
    bool weight;         /* rk_matmul accepts it as a weight type */
} rk_type_traits;

/* Traits of type, or NULL when the kernels do not know it. */
const rk_type_traits *rk_type_traits_get(rk_type type);

/* Bytes of one row of k elements of type (weights or activations), or 0 when k is not a
 * positive multiple of the block or the type is unknown. */
size_t rk_row_bytes(rk_type type, int64_t k);

/* The activation type of a weight type (see rk_type_traits.act_type); RK_TYPE_F32 for an
 * unknown type. */
rk_type rk_act_type(rk_type weight_type);

/* Bytes of one quantized activation column of k elements for weight_type, 0 when k does not
 * suit the weight type. At least rk_row_bytes(rk_act_type(weight_type), k): the row of
 * activation blocks comes first, followed for Q8_0 by kernel-private data (the integer sum of
 * each block, which the GEMM needs). Allocate with this size, never with rk_row_bytes. */
size_t rk_act_row_bytes(rk_type weight_type, int64_t k);

/* ---- the weight matrix ----------------------------------------------------------------------
 * A view of a weight matrix as stored; the kernels never copy or modify it. Build it with a
 * designated initializer so fields added later default to 0:
 *     rk_matrix w = {.type = RK_TYPE_Q4_K, .data = p, .row_stride = rk_row_bytes(..),
 *                    .n_rows = 896, .k = 896};
 * Rows need no alignment (blocks are read as bytes). */

/* How the bytes are arranged. RK_LAYOUT_ROWS: as in the file (row r at data + r * row_stride).
 * RK_LAYOUT_R16: made by rk_repack; 16 rows interleaved per block (docs/kernels.md), same bytes
 * per weight, faster for both decode and prefill. */
typedef enum rk_layout {
    RK_LAYOUT_ROWS = 0,
    RK_LAYOUT_R16 = 1,
} rk_layout;

typedef struct rk_matrix {
    rk_type type;
    const void *data;  /* first byte of row 0 */
    size_t row_stride; /* bytes from row r to row r + 1, >= rk_row_bytes(type, k) (ROWS only) */
    int64_t n_rows;    /* output dimension */
    int64_t k;         /* input dimension, a multiple of the type's block (32 for APR types) */
    float scale;       /* APR_Q8 only: the tensor's scale; ignored for every other type */
    rk_layout layout;  /* RK_LAYOUT_ROWS (0) unless the matrix came from rk_repack */
} rk_matrix;

/* Checks that w is usable by rk_matmul: supported weight type, k a positive multiple of the
 * block (and of 32 for the APR types), n_rows >= 1, data != NULL, row_stride large enough (ROWS),
 * a repackable type (R16). Returns 0 or -1. Call it once at load time. */
int rk_matrix_check(const rk_matrix *w);

/* ---- repacking (optional, at load time) -----------------------------------------------------
 * rk_repack copies a ROWS matrix into the R16 layout: groups of 16 rows, each block of the 16
 * rows stored together with their quants interleaved 4 bytes per row (the rows past n_rows in
 * the last group are zero). The bytes per weight do not change, decode reads one sequential
 * stream per 16 rows and needs no cross-row reductions, and the GEMM reads the quants directly.
 * Results are bit-identical to the ROWS layout (rk math does not depend on the layout).
 * Types: Q4_0, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K. On an R16 matrix, rk_matmul's r0 must be a multiple
 * of 16 (rk_matmul_pool's chunks are). Once repacked, the engine may release the source pages
 * (e.g. madvise(MADV_DONTNEED) on an mmapped file) so that the weights are resident once. */

/* Whether type has an R16 layout. */
bool rk_repack_supported(rk_type type);

/* Bytes of the R16 copy of an n_rows x k matrix of type (n_rows rounded up to 16), or 0 when the
 * type has no R16 layout or k does not suit it. */
size_t rk_repack_bytes(rk_type type, int64_t n_rows, int64_t k);

/* Writes the R16 copy of src (a valid ROWS matrix) to dst (dst_bytes >= rk_repack_bytes, any
 * alignment) and describes it in *out (data = dst, layout = RK_LAYOUT_R16, other fields as src).
 * Returns 0 or -1 (unsupported type, small buffer, invalid src). */
int rk_repack(const rk_matrix *src, void *dst, size_t dst_bytes, rk_matrix *out);

/* Row r of an R16 matrix back in the bytes of the ROWS layout (k / block_elems blocks at dst),
 * e.g. an embedding row read from the repacked copy of the output matrix tied to it, so that the
 * file's copy need not stay resident. Returns 0 or -1 (not R16, r out of range). */
int rk_r16_row(const rk_matrix *w, int64_t r, void *dst);

/* ---- activation quantization ----------------------------------------------------------------
 * Quantizes n_cols activation columns of k floats (column c at x + c * x_stride floats) into
 * rk_act_type(weight_type) rows (column c at act + c * act_stride bytes, act_stride >=
 * rk_act_row_bytes(weight_type, k)). The blocks equal ggml's quantize_row_q8_0 / q8_1 / q8_K
 * of the same floats (Q8_K: f32 d, 256 int8, 16 int16 bsums; see docs/kernels.md);
 * for F32/F16/BF16 weights the floats are copied. Do it once per input and reuse the result for
 * every matrix sharing that input (q/k/v, gate/up) when their weight types have the same
 * activation type. Returns 0 or -1. */
int rk_quantize_act(rk_type weight_type, int64_t k, int64_t n_cols, const float *x, size_t x_stride,
                    void *act, size_t act_stride);

/* ---- matrix multiplication ------------------------------------------------------------------
 * Rows [r0, r1) of Y[col][row] = W x ACT for n_cols quantized activation columns (column c at
 * act + c * act_stride bytes, quantized by rk_quantize_act for w->type), output column c at
 * y + c * y_stride floats (only y[c * y_stride + r] for r in [r0, r1) is written).
 * Single-threaded; picks matrix-vector kernels for few columns and the register-blocked GEMM
 * for many (same results either way). Uses the best variant of rk_isa_active(). Needs no
 * allocation. Returns 0 or -1 (invalid w, range, pointers, strides). */
int rk_matmul(const rk_matrix *w, int64_t r0, int64_t r1, const void *act, size_t act_stride,
              int64_t n_cols, float *y, size_t y_stride);

/* ---- thread pool ------------------------------------------------------------------------------
 * A persistent pool: n_threads - 1 worker threads plus the calling thread. rk_pool_run hands
 * out task indices 0 .. n_tasks - 1 through an atomic counter; idle workers spin briefly (so the
 * many small matmuls of a decode step do not pay a wake-up), then sleep on a condition variable.
 * Which thread runs a task never changes a result: every kernel here computes each output
 * element in exactly one task with a fixed order, so outputs are bit-identical for any
 * n_threads. A pool is used by one calling thread at a time (rk_pool_run is not reentrant). */
typedef struct rk_pool rk_pool;

/* Task body: runs task index `task`; `thread` is 0 .. n_threads - 1 (0 = the caller), for
 * per-thread scratch. */
typedef void (*rk_task_fn)(void *ctx, int64_t task, int thread);

/* A pool of n_threads (including the caller); n_threads <= 0 means the number of online CPUs.
 * NULL when a thread or the memory could not be had. */
rk_pool *rk_pool_create(int n_threads);

/* Stops and joins the workers; NULL is allowed. */
void rk_pool_destroy(rk_pool *pool);

/* Threads of the pool including the caller (1 for NULL). */
int rk_pool_threads(const rk_pool *pool);

/* Runs fn(ctx, t, thread) for every t in [0, n_tasks) and returns when all are done. pool NULL
 * runs them in order on the calling thread. */
void rk_pool_run(rk_pool *pool, int64_t n_tasks, rk_task_fn fn, void *ctx);

/* The whole matrix (rows 0 .. n_rows - 1) with rk_matmul split over the pool in chunks of rows
 * (16-row groups for the GEMM, larger chunks for matrix-vector). pool may be NULL. Output
 * bits do not depend on the pool's size. Returns 0 or -1 as rk_matmul. */
int rk_matmul_pool(rk_pool *pool, const rk_matrix *w, const void *act, size_t act_stride,
                   int64_t n_cols, float *y, size_t y_stride);

/* rk_quantize_act split over the pool by columns (prefill). Same bytes as rk_quantize_act. */
int rk_quantize_act_pool(rk_pool *pool, rk_type weight_type, int64_t k, int64_t n_cols,
                         const float *x, size_t x_stride, void *act, size_t act_stride);

/* Elements [e0, e1) of n_cols activation columns of k elements: writes the bytes that
 * rk_quantize_act writes for those elements of the whole columns (the blocks, and for Q8_0 their
 * sums), from x[c * x_stride + i] = element e0 + i of column c. e0 and e1 are multiples of 256
 * (or e1 = k), so that a column can be quantized piece by piece as its values are computed
 * (the engine's MLP does so). Split over the pool by columns; pool may be NULL. Returns 0 or -1
 * (a bad range, k or stride). */
int rk_quantize_act_range_pool(rk_pool *pool, rk_type weight_type, int64_t k, int64_t e0,
                               int64_t e1, int64_t n_cols, const float *x, size_t x_stride,
                               void *act, size_t act_stride);

/* ---- vector operations of the forward pass ----------------------------------------------------
 * All run on the calling thread, use the best variant of rk_isa_active() and return the same
 * bits on every variant. "16-lane sum" below means: lane l accumulates the terms of the
 * elements i with i % 16 == l in index order, then lanes are added pairwise (l + 8, then + 4,
 * + 2, + 1); docs/kernels.md draws it. */

/* sum_i a[i] * b[i] as a 16-lane sum of fused multiply-adds. */
float rk_dot_f32(int64_t n, const float *a, const float *b);

/* The same with a in IEEE binary16 (an F16 KV cache), converted exactly to f32. */
float rk_dot_f16_f32(int64_t n, const uint16_t *a, const float *b);

/* out[t] = rk_dot_f32(n, q, rows + t * row_stride) for t in [0, n_rows) (attention scores
 * against a K cache; row_stride in elements). _f16: the rows are binary16. */
void rk_dot_rows_f32(int64_t n, const float *q, const float *rows, size_t row_stride,
                     int64_t n_rows, float *out);
void rk_dot_rows_f16(int64_t n, const float *q, const uint16_t *rows, size_t row_stride,
                     int64_t n_rows, float *out);

/* y[i] += a * x[i] (one fused multiply-add per element). */
void rk_axpy_f32(int64_t n, float a, const float *x, float *y);
void rk_axpy_f16(int64_t n, float a, const uint16_t *x, float *y);

/* y[i] = sum_t p[t] * rows[t * row_stride + i] for i in [0, n), t = 0, 1, ... n_rows - 1 in
 * order, one fused multiply-add per term starting from 0 (attention output against a V cache).
 * _f16: rows are binary16. */
void rk_weighted_sum_f32(int64_t n, const float *p, const float *rows, size_t row_stride,
                         int64_t n_rows, float *y);
void rk_weighted_sum_f16(int64_t n, const float *p, const uint16_t *rows, size_t row_stride,
                         int64_t n_rows, float *y);

/* y[i] = a[i] + b[i]; y[i] = a * y[i]. y may alias a or b. */
void rk_add_f32(int64_t n, const float *a, const float *b, float *y);
void rk_scale_f32(int64_t n, float a, float *y);

/* RMSNorm: ss = 16-lane sum of x[i]^2; r = 1 / sqrtf(ss / n + eps);
 * y[i] = (x[i] * r) * w[i] (w NULL: y[i] = x[i] * r). y may alias x. */
void rk_rmsnorm_f32(int64_t n, const float *x, const float *w, float eps, float *y);

/* In-place softmax: m = max x[i]; x[i] = rk_exp(x[i] - m); s = 16-lane sum; x[i] *= 1 / s.
 * Entries equal to -INFINITY (masked) become 0; n >= 1 and at least one finite entry. */
void rk_softmax_f32(int64_t n, float *x);

/* SwiGLU: y[i] = (g[i] / (1 + rk_exp(-g[i]))) * u[i]. y may alias g or u. */
void rk_silu_mul_f32(int64_t n, const float *g, const float *u, float *y);

/* exp(x) with at most 2 ulp error for the float range, identical on every variant (one
 * polynomial, no libm); +Inf above 88.72, 0 below -103.9, NaN for NaN. */
float rk_exp(float x);

/* NEOX rotary table for one position: for i in [0, head_dim / 2):
 *   inv_freq = 1 / powf(theta, (float)(2 * i) / (float)head_dim)
 *   angle = (float)pos * inv_freq;  cos_out[i] = cosf(angle);  sin_out[i] = sinf(angle)
 * (the float32 computation of Hugging Face's Qwen2 rotary embedding). head_dim even. */
void rk_rope_table(int64_t pos, int64_t head_dim, float theta, float *cos_out, float *sin_out);

/* NEOX rotation in place of n_heads vectors of head_dim floats (head h at x + h * head_dim):
 * for i < head_dim / 2, with a = x[i], b = x[i + head_dim / 2]:
 *   x[i] = a * cos[i] - b * sin[i];  x[i + head_dim / 2] = a * sin[i] + b * cos[i]
 * (products rounded, then one add or subtract; no fused operation). */
void rk_rope_neox_f32(float *x, int64_t n_heads, int64_t head_dim, const float *cos_tab,
                      const float *sin_tab);

/* ---- variants (tests and benchmarks) -------------------------------------------------------- */
typedef enum rk_isa {
    RK_ISA_SCALAR = 0,      /* the reference kernels: plain C, fixed order */
    RK_ISA_AVX2 = 1,        /* AVX2 + FMA + F16C */
    RK_ISA_AVX512 = 2,      /* AVX-512 F/BW/VL/DQ */
    RK_ISA_AVX512_VNNI = 3, /* AVX-512 plus VNNI (vpdpbusd) */
} rk_isa;

/* The best variant this CPU supports. */
rk_isa rk_isa_cpu(void);

/* The variant the kernels use: rk_isa_cpu() capped by ROSETTA_SIMD=scalar|avx2|avx512 (see
 * cpu/cpu_features.h; avx512 includes VNNI when the CPU has it). Read once per process. */
rk_isa rk_isa_active(void);

/* "scalar", "avx2", "avx512", "avx512vnni". */
const char *rk_isa_name(rk_isa isa);

/* rk_matmul forced to one variant and path: gemm = 0 the matrix-vector kernels (each column on
 * its own), 1 the GEMM. -1 also when the CPU lacks isa. For tests and benchmarks. */
int rk_matmul_isa(rk_isa isa, int gemm, const rk_matrix *w, int64_t r0, int64_t r1, const void *act,
                  size_t act_stride, int64_t n_cols, float *y, size_t y_stride);

/* The reference of the reference: dequantize each row to F32 (ggml's dequantizers) and dot it
 * in double precision with the unquantized activations x (column c at x + c * x_stride floats);
 * rows [r0, r1). For tests: the quantized results must lie within the documented tolerance of
 * this. Returns 0 or -1 (also when out of memory). */
int rk_matmul_dequant_ref(const rk_matrix *w, int64_t r0, int64_t r1, const float *x,
                          size_t x_stride, int64_t n_cols, float *y, size_t y_stride);

#ifdef __cplusplus
}
#endif

#endif
