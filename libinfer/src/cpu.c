/* The fast CPU path (docs/engine.md, "The fast path"): weights multiplied in their quantized
 * form by the kernels of kernels/cpu/matmul.h (activations quantized once per input and reused
 * by every matrix that shares it, SIMD variant chosen at run time), a persistent thread pool
 * splitting the rows of each matrix product and the heads of attention, prefill as one GEMM per
 * matrix over the whole batch, decode as matrix-vector products.
 * Not for: the definition of the arithmetic (reference.c is the specification). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "cpu/matmul.h"
#include "internal.h"
#include "rosetta/quant.h"

/* ---- weights -----------------------------------------------------------------------------------
 */

/* A weight as the kernels see it. k is the stored row length (row_elems: APR's padded K-quant
 * rows are multiplied whole, against activations padded with zeros). */
typedef struct cpu_weight {
    rk_matrix m;
    void *owned; /* m.data when it is ours: an F32 conversion or an R16 repacking */
} cpu_weight;

typedef struct cpu_layer {
    cpu_weight wq, wk, wv, wo, gate, up, down;
} cpu_layer;

typedef struct cpu_model {
    cpu_layer *layers;
    cpu_weight head;
    bool embd_from_head; /* tied and repacked: embedding rows come from head's R16 copy */
    size_t act_bytes;    /* largest quantized activation column */
    uint32_t k_max;      /* largest (padded) input length */
} cpu_model;

static bool rk_type_of(rf_dtype d, rk_type *out)
{
    switch (d) {
    case RF_DTYPE_F32: *out = RK_TYPE_F32; return true;
    case RF_DTYPE_F16: *out = RK_TYPE_F16; return true;
    case RF_DTYPE_BF16: *out = RK_TYPE_BF16; return true;
    case RF_DTYPE_Q4_0: *out = RK_TYPE_Q4_0; return true;
    case RF_DTYPE_Q4_1: *out = RK_TYPE_Q4_1; return true;
    case RF_DTYPE_Q5_0: *out = RK_TYPE_Q5_0; return true;
    case RF_DTYPE_Q5_1: *out = RK_TYPE_Q5_1; return true;
    case RF_DTYPE_Q8_0: *out = RK_TYPE_Q8_0; return true;
    case RF_DTYPE_Q2_K: *out = RK_TYPE_Q2_K; return true;
    case RF_DTYPE_Q3_K: *out = RK_TYPE_Q3_K; return true;
    case RF_DTYPE_Q4_K: *out = RK_TYPE_Q4_K; return true;
    case RF_DTYPE_Q5_K: *out = RK_TYPE_Q5_K; return true;
    case RF_DTYPE_Q6_K: *out = RK_TYPE_Q6_K; return true;
    case RF_DTYPE_APR_Q4: *out = RK_TYPE_APR_Q4; return true;
    case RF_DTYPE_APR_Q8: *out = RK_TYPE_APR_Q8; return true;
    case RF_DTYPE_Q8_1:
    case RF_DTYPE_Q8_K:
    case RF_DTYPE_IQ2_XXS:
    case RF_DTYPE_IQ2_XS:
    case RF_DTYPE_IQ3_XXS:
    case RF_DTYPE_IQ1_S:
    case RF_DTYPE_IQ4_NL:
    case RF_DTYPE_IQ3_S:
    case RF_DTYPE_IQ2_S:
    case RF_DTYPE_IQ4_XS:
    case RF_DTYPE_I8:
    case RF_DTYPE_I16:
    case RF_DTYPE_I32:
    case RF_DTYPE_I64:
    case RF_DTYPE_F64:
    case RF_DTYPE_IQ1_M:
    case RF_DTYPE_TQ1_0:
    case RF_DTYPE_TQ2_0:
    case RF_DTYPE_MXFP4:
    case RF_DTYPE_NVFP4:
    case RF_DTYPE_Q1_0:
    case RF_DTYPE_Q2_0:
    case RF_DTYPE_U8:
    case RF_DTYPE_U16:
    case RF_DTYPE_U32:
    case RF_DTYPE_U64:
    case RF_DTYPE_BOOL:
    case RF_DTYPE_C64:
    case RF_DTYPE_F8_E5M2:
    case RF_DTYPE_F8_E4M3:
    case RF_DTYPE_F8_E8M0:
    case RF_DTYPE_F8_E4M3FNUZ:
    case RF_DTYPE_F8_E5M2FNUZ:
    case RF_DTYPE_F6_E2M3:
    case RF_DTYPE_F6_E3M2:
    case RF_DTYPE_F4: return false;
    }
    return false;
}

/* Rows repacked per step: each step's source pages are released before the next one is read,
 * so that the weights stay resident about once during the load as well. */
#define REPACK_ROWS 1024

/* Repacks out->m (a kernel-ready ROWS matrix) into the R16 layout of docs/kernels.md, which
 * decode and prefill read faster (one sequential stream per 16 rows, no cross-row reductions);
 * the results are the same bits. The source pages are then released (rf_model_release_data),
 * so the weights are resident once: the copy, not the file. Types without an R16 layout stay. */
static rf_status repack_weight(const ri_model *model, const ri_weight *w, cpu_weight *out,
                               rf_error *err)
{
    const rk_matrix src = out->m;
    if (!rk_repack_supported(src.type))
        return RF_OK;
    const size_t bytes = rk_repack_bytes(src.type, src.n_rows, src.k);
    const size_t group = rk_repack_bytes(src.type, 16, src.k);
    if (bytes == 0 || group == 0)
        return RF_OK;
    uint8_t *dst = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!dst)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory repacking tensor %s", w->name);
    rk_matrix packed = src;
    for (int64_t r0 = 0; r0 < src.n_rows; r0 += REPACK_ROWS) {
        rk_matrix part = src;
        part.data = (const uint8_t *)src.data + (size_t)r0 * src.row_stride;
        part.n_rows = src.n_rows - r0 < REPACK_ROWS ? src.n_rows - r0 : REPACK_ROWS;
        const size_t at = (size_t)(r0 / 16) * group;
        if (rk_repack(&part, dst + at, bytes - at, &packed) != 0) {
            free(dst);
            return rf_error_set(err, RF_ERR_UNSUPPORTED, "tensor %s: the kernels cannot repack it",
                                w->name);
        }
        rf_model_release_data(model->src, part.data, (uint64_t)part.n_rows * src.row_stride);
    }
    out->m = src;
    out->m.data = dst;
    out->m.layout = RK_LAYOUT_R16;
    out->owned = dst;
    return RF_OK;
}

/* The kernels' view of w; a type they cannot multiply is converted to F32 once, a type with an
 * R16 layout is repacked. */
static rf_status prepare_weight(const ri_model *model, const ri_weight *w, cpu_weight *out,
                                rf_error *err)
{
    rk_type t;
    memset(out, 0, sizeof *out);
    if (rk_type_of(w->dtype, &t)) {
        out->m = (rk_matrix){.type = t,
                             .data = w->data,
                             .row_stride = w->row_bytes,
                             .n_rows = w->rows,
                             .k = w->row_elems,
                             .scale = w->apr_q8_scale};
        if (rk_matrix_check(&out->m) == 0)
            return repack_weight(model, w, out, err);
    }
    float *f = malloc((size_t)w->rows * w->row_elems * sizeof *f);
    if (!f)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory converting tensor %s", w->name);
    for (uint32_t r = 0; r < w->rows; r++) {
        rf_status st = ri_weight_dequantize_row(w, r, f + (size_t)r * w->row_elems, err);
        if (st != RF_OK) {
            free(f);
            return st;
        }
    }
    out->owned = f;
    out->m = (rk_matrix){.type = RK_TYPE_F32,
                         .data = f,
                         .row_stride = (size_t)w->row_elems * sizeof(float),
                         .n_rows = w->rows,
                         .k = w->row_elems};
    if (rk_matrix_check(&out->m) != 0)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "tensor %s: the kernels refuse its shape",
                            w->name);
    return RF_OK;
}

static void cpu_model_free(ri_model *model)
{
    cpu_model *cm = model->backend_data;
    if (!cm)
        return;
    if (cm->layers) {
        for (uint32_t l = 0; l < model->info.n_layers; l++) {
            cpu_layer *L = &cm->layers[l];
            cpu_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
                free(ws[i]->owned);
        }
        free(cm->layers);
    }
    free(cm->head.owned);
    free(cm);
    model->backend_data = NULL;
}

static void note_sizes(cpu_model *cm, const cpu_weight *w)
{
    size_t b = rk_act_row_bytes(w->m.type, w->m.k);
    if (b > cm->act_bytes)
        cm->act_bytes = b;
    if ((uint32_t)w->m.k > cm->k_max)
        cm->k_max = (uint32_t)w->m.k;
}

static rf_status cpu_model_init(ri_model *model, rf_error *err)
{
    cpu_model *cm = calloc(1, sizeof *cm);
    if (!cm)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    model->backend_data = cm;
    cm->layers = calloc(model->info.n_layers, sizeof *cm->layers);
    if (!cm->layers)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    rf_status st;
    for (uint32_t l = 0; l < model->info.n_layers; l++) {
        const ri_layer *L = &model->layers[l];
        cpu_layer *C = &cm->layers[l];
        const ri_weight *src[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
        cpu_weight *dst[] = {&C->wq, &C->wk, &C->wv, &C->wo, &C->gate, &C->up, &C->down};
        for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) {
            if ((st = prepare_weight(model, src[i], dst[i], err)) != RF_OK)
                return st;
            note_sizes(cm, dst[i]);
        }
    }
    if ((st = prepare_weight(model, &model->head, &cm->head, err)) != RF_OK)
        return st;
    note_sizes(cm, &cm->head);
    /* A tied head's repacking released the embedding's pages too; reading embedding rows from
     * the file would map them back (the kernel maps 64 KiB around each fault, so a few thousand
     * random tokens bring back most of the table), and the table would be resident twice. */
    cm->embd_from_head = model->head.data == model->embd.data &&
                         model->head.dtype == model->embd.dtype &&
                         cm->head.m.layout == RK_LAYOUT_R16;
    char isa[40];
    snprintf(isa, sizeof isa, "cpu %s", rk_isa_name(rk_isa_active()));
    snprintf(model->path_name, sizeof model->path_name, "%s", isa);
    return RF_OK;
}

/* ---- context ------------------------------------------------------------------------------------
 */

#define ACT_SLOTS 2
#define ATTN_QB   32 /* queries of one head per attention task */
/* Rows of gate and up computed at a time in a batch's MLP (a multiple of 256; see mlp). */
#define MLP_BLOCK 1024
/* Batches of fewer tokens (decode) take the MLP whole: little memory, fewer calls. */
#define MLP_MIN_TOKENS 16

typedef struct cpu_ctx {
    rk_pool *pool;
    int n_threads;
    void *k_cache, *v_cache;          /* transposed: [layer][kv_dim][n_ctx] */
    float *x, *a, *q, *k, *v, *g, *u; /* n_batch rows each (see mlp for g, u) */
    /* Aliases, to keep the batch's scratch small: attention writes each head's output over the
     * query it has read (att = q), and o_proj and down write over the normed input, which is
     * dead once quantized (o = a; the quantized copies are invalidated before a is read again). */
    float *att, *o;
    float *pad;                 /* zero-padded input rows for padded weights */
    uint8_t *embd_row;          /* an embedding row's bytes (embd_from_head) */
    float *scores, *probs;      /* [thread][ATTN_QB][n_ctx] */
    float *rope_cos, *rope_sin; /* [n_batch][head_dim / 2] */
    uint8_t *act[ACT_SLOTS];    /* quantized activations, n_batch columns */
    uint8_t *act_mlp;           /* down's input, quantized block by block */
    struct {
        rk_type type;
        const float *src;
        uint32_t n, k;
        bool valid;
    } slot[ACT_SLOTS];
    int next_slot;
} cpu_ctx;

static size_t kv_elem(const ri_context *ctx) { return ctx->kv_type == RI_KV_F16 ? 2 : 4; }

static void cpu_context_free(ri_context *ctx)
{
    cpu_ctx *c = ctx->backend_data;
    if (!c)
        return;
    rk_pool_destroy(c->pool);
    void *bufs[] = {c->k_cache, c->v_cache, c->x,        c->a,        c->q,        c->k,
                    c->v,       c->g,       c->u,        c->pad,      c->scores,   c->probs,
                    c->act[0],  c->act[1],  c->rope_cos, c->rope_sin, c->embd_row, c->act_mlp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(c);
    ctx->backend_data = NULL;
}

static rf_status cpu_context_init(ri_context *ctx, rf_error *err)
{
    const ri_model *m = ctx->model;
    const ri_model_info *I = &m->info;
    const cpu_model *cm = m->backend_data;
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    ctx->backend_data = c;
    c->pool = rk_pool_create(ctx->n_threads);
    if (!c->pool)
        return rf_error_set(err, RF_ERR_NOMEM, "cannot start %d threads", ctx->n_threads);
    c->n_threads = rk_pool_threads(c->pool);
    size_t kv_dim = (size_t)I->n_kv_heads * I->head_dim, q_dim = (size_t)I->n_heads * I->head_dim;
    size_t cache = (size_t)I->n_layers * ctx->n_ctx * kv_dim * kv_elem(ctx);
    size_t nb = ctx->n_batch, f = sizeof(float);
    c->k_cache = malloc(cache);
    c->v_cache = malloc(cache);
    c->x = malloc(nb * I->n_embd * f);
    c->a = malloc(nb * I->n_embd * f);
    c->o = c->a;
    c->q = malloc(nb * q_dim * f);
    c->att = c->q;
    c->k = malloc(nb * kv_dim * f);
    c->v = malloc(nb * kv_dim * f);
    c->g = malloc(nb * I->n_ff * f);
    c->u = malloc(nb * I->n_ff * f);
    size_t pad = cm->k_max > m->embd.row_elems ? cm->k_max : m->embd.row_elems;
    c->pad = calloc(nb * pad, f);
    c->embd_row = malloc(m->embd.row_bytes > 0 ? m->embd.row_bytes : 1);
    size_t per_thread = (size_t)c->n_threads * ATTN_QB;
    c->scores = malloc(per_thread * ctx->n_ctx * f);
    c->probs = malloc(per_thread * ctx->n_ctx * f);
    c->rope_cos = malloc(nb * (I->head_dim / 2) * f);
    c->rope_sin = malloc(nb * (I->head_dim / 2) * f);
    for (int i = 0; i < ACT_SLOTS; i++)
        c->act[i] = malloc(nb * cm->act_bytes);
    c->act_mlp = malloc(nb * cm->act_bytes);
    if (!c->k_cache || !c->v_cache || !c->x || !c->a || !c->q || !c->k || !c->v || !c->g || !c->u ||
        !c->pad || !c->scores || !c->probs || !c->rope_cos || !c->rope_sin || !c->act[0] ||
        !c->act[1] || !c->embd_row || !c->act_mlp)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory for a KV cache of %u positions",
                            ctx->n_ctx);
    return RF_OK;
}

/* ---- matrix products
 * ------------------------------------------------------------------------------ */

static void act_invalidate(cpu_ctx *c)
{
    for (int i = 0; i < ACT_SLOTS; i++)
        c->slot[i].valid = false;
}

/* y[t][r] = W x[t] (+ bias[r]) for n rows x[t] of k floats (stride x_stride). The quantized
 * activations of x are kept, so the next matrix with the same input and activation type
 * (q/k/v, gate/up) reuses them. */
static rf_status matmul(const ri_context *ctx, const cpu_weight *w, const float *bias,
                        const float *x, size_t x_stride, uint32_t k, uint32_t n, float *y,
                        size_t y_stride, rf_error *err)
{
    cpu_ctx *c = ctx->backend_data;
    rk_type at = rk_act_type(w->m.type);
    size_t act_stride = rk_act_row_bytes(w->m.type, w->m.k);
    int s = -1;
    for (int i = 0; i < ACT_SLOTS; i++)
        if (c->slot[i].valid && c->slot[i].type == at && c->slot[i].src == x && c->slot[i].n == n &&
            c->slot[i].k == (uint32_t)w->m.k)
            s = i;
    if (s < 0) {
        s = c->next_slot;
        c->next_slot = (c->next_slot + 1) % ACT_SLOTS;
        const float *in = x;
        size_t in_stride = x_stride;
        if ((uint32_t)w->m.k != k) { /* padded rows: zero-extend each input row */
            for (uint32_t t = 0; t < n; t++)
                memcpy(c->pad + (size_t)t * w->m.k, x + t * x_stride, k * sizeof(float));
            in = c->pad;
            in_stride = (size_t)w->m.k;
        }
        if (rk_quantize_act_pool(c->pool, w->m.type, w->m.k, n, in, in_stride, c->act[s],
                                 act_stride) != 0)
            return rf_error_set(err, RF_ERR_UNSUPPORTED, "cannot quantize activations for %s",
                                rk_type_traits_get(w->m.type)->name);
        c->slot[s].type = at;
        c->slot[s].src = x;
        c->slot[s].n = n;
        c->slot[s].k = (uint32_t)w->m.k;
        c->slot[s].valid = true;
    }
    if (rk_matmul_pool(c->pool, &w->m, c->act[s], act_stride, n, y, y_stride) != 0)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "matrix product refused by the kernels");
    if (bias)
        for (uint32_t t = 0; t < n; t++)
            rk_add_f32(w->m.n_rows, y + t * y_stride, bias, y + t * y_stride);
    return RF_OK;
}

/* RMSNorm as llama.cpp's CPU backend computes it (ggml_compute_forward_rms_norm_f32, then a
 * separate multiply by the weight): squares in float summed in double, the mean and
 * 1 / sqrtf(mean + eps) in float, y = (x * scale) * w. Matching it matters more than its speed:
 * activations derived from a quantized embedding sit on a grid, their Q8 quantization meets
 * exact ties, and one ulp of scale decides which way dozens of them round. */
static void rmsnorm(uint32_t n, const float *x, const float *w, float eps, float *y)
{
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (uint32_t i = 0; i < n; i++)
        y[i] = (x[i] * scale) * w[i];
}

/* ---- attention
 * ------------------------------------------------------------------------------------- */

typedef struct attn_job {
    const ri_context *ctx;
    uint32_t layer, pos0, n, n_qblocks;
} attn_job;

/* Task h * n_qblocks + b: query head h for the tokens of block b (ATTN_QB of them) against the
 * cached positions of the head's KV group. Both caches are transposed ([dim][position]), so
 * the scores are d axpys over the positions a query may see (s += q_i * K^T row i, one fused
 * multiply-add per element in dimension order) and, after the causal softmax, the output is a
 * matrix product on the kernels (V^T rows as the matrix, the probabilities as the columns,
 * positions past a query's own holding probability 0). Every value is computed in an order that
 * does not depend on the block, so a cached decode step equals the recomputation bit for bit.
 * The output goes over the task's own queries (c->att is c->q), after all of them are read. */
static void attention_task(void *arg, int64_t task, int thread)
{
    const attn_job *job = arg;
    const ri_context *ctx = job->ctx;
    const cpu_ctx *c = ctx->backend_data;
    const ri_model_info *I = &ctx->model->info;
    uint32_t d = I->head_dim, n_rep = I->n_heads / I->n_kv_heads;
    uint32_t h = (uint32_t)(task / job->n_qblocks), block = (uint32_t)(task % job->n_qblocks);
    uint32_t g = h / n_rep, t0 = block * ATTN_QB;
    uint32_t t1 = t0 + ATTN_QB < job->n ? t0 + ATTN_QB : job->n, nc = t1 - t0;
    uint32_t n_keys = job->pos0 + t1;
    size_t kv_dim = (size_t)I->n_kv_heads * d, q_dim = (size_t)I->n_heads * d, n_ctx = ctx->n_ctx;
    bool f16 = ctx->kv_type == RI_KV_F16;
    size_t elem = f16 ? 2 : 4;
    /* the rows of dimension g * d .. g * d + d - 1 of this layer's transposed caches */
    size_t first_row = (size_t)job->layer * kv_dim + (size_t)g * d;
    const uint16_t *kt16 = (const uint16_t *)c->k_cache + first_row * n_ctx;
    const float *kt32 = (const float *)c->k_cache + first_row * n_ctx;
    float *scores = c->scores + (size_t)thread * ATTN_QB * n_ctx;
    float *probs = c->probs + (size_t)thread * ATTN_QB * n_ctx;
    float scale = 1.0f / sqrtf((float)d);
    for (uint32_t i = 0; i < nc; i++) {
        float *row = scores + (size_t)i * n_keys;
        const float *q = c->q + (t0 + i) * q_dim + (size_t)h * d;
        uint32_t valid = job->pos0 + t0 + i + 1;
        memset(row, 0, n_keys * sizeof *row);
        for (uint32_t e = 0; e < d; e++) {
            if (f16)
                rk_axpy_f16(valid, q[e], kt16 + e * n_ctx, row);
            else
                rk_axpy_f32(valid, q[e], kt32 + e * n_ctx, row);
        }
        rk_scale_f32(valid, scale, row);
        rk_softmax_f32(valid, row);
    }
    rk_type kv = f16 ? RK_TYPE_F16 : RK_TYPE_F32;
    rk_quantize_act(kv, n_keys, nc, scores, n_keys, probs, (size_t)n_keys * sizeof(float));
    rk_matrix values = {.type = kv,
                        .data = (const uint8_t *)c->v_cache + first_row * n_ctx * elem,
                        .row_stride = n_ctx * elem,
                        .n_rows = d,
                        .k = n_keys};
    rk_matmul(&values, 0, d, probs, (size_t)n_keys * sizeof(float), nc,
              c->att + t0 * q_dim + (size_t)h * d, q_dim);
}

/* Appends the n tokens' keys and values at positions pos0.. of layer l: columns of the
 * transposed caches. */
static void store_kv(const ri_context *ctx, uint32_t l, uint32_t pos0, uint32_t n)
{
    const cpu_ctx *c = ctx->backend_data;
    const ri_model_info *I = &ctx->model->info;
    size_t kv_dim = (size_t)I->n_kv_heads * I->head_dim, n_ctx = ctx->n_ctx;
    size_t at = (size_t)l * kv_dim * n_ctx + pos0;
    bool f16 = ctx->kv_type == RI_KV_F16;
    for (uint32_t t = 0; t < n; t++)
        for (size_t i = 0; i < kv_dim; i++) {
            float k = c->k[t * kv_dim + i], v = c->v[t * kv_dim + i];
            size_t index = at + i * n_ctx + t;
            if (f16) {
                ((uint16_t *)c->k_cache)[index] = rk_f32_to_f16(k);
                ((uint16_t *)c->v_cache)[index] = rk_f32_to_f16(v);
            } else {
                ((float *)c->k_cache)[index] = k;
                ((float *)c->v_cache)[index] = v;
            }
        }
}

/* RoPE for n tokens at pos0..: NEOX through the kernels, NORM (adjacent pairs) here. */
static void rope(const ri_context *ctx, float *x, uint32_t n_heads, uint32_t n, size_t stride)
{
    const cpu_ctx *c = ctx->backend_data;
    const ri_model *m = ctx->model;
    uint32_t d = m->info.head_dim, half = d / 2;
    for (uint32_t t = 0; t < n; t++) {
        const float *cs = c->rope_cos + (size_t)t * half, *sn = c->rope_sin + (size_t)t * half;
        float *row = x + t * stride;
        if (m->rope_type == RF_ROPE_NEOX) {
            rk_rope_neox_f32(row, n_heads, d, cs, sn);
            continue;
        }
        for (uint32_t h = 0; h < n_heads; h++)
            for (uint32_t i = 0; i < half; i++) {
                float *v = row + (size_t)h * d;
                float a = v[2 * i], b = v[2 * i + 1];
                v[2 * i] = a * cs[i] - b * sn[i];
                v[2 * i + 1] = a * sn[i] + b * cs[i];
            }
    }
}

/* ---- the MLP ------------------------------------------------------------------------------- */

/* Rows [r0, r1) of w as a matrix of their own (r0 a multiple of 16, for the R16 layout). */
static cpu_weight weight_rows(const cpu_weight *w, int64_t r0, int64_t r1)
{
    cpu_weight part = {.m = w->m, .owned = NULL};
    size_t skip = w->m.layout == RK_LAYOUT_R16 ? rk_repack_bytes(w->m.type, r0, w->m.k)
                                               : (size_t)r0 * w->m.row_stride;
    part.m.data = (const uint8_t *)w->m.data + skip;
    part.m.n_rows = r1 - r0;
    return part;
}

/* The SwiGLU MLP of n tokens, down's output into c->o: down(silu(gate a) * up a).
 *
 * Whole, gate and up give two n x n_ff float arrays (for a 1.5B model and 512 tokens 35 MiB,
 * more than half of the batch's scratch). So when nothing watches the stages, gate and up run
 * MLP_BLOCK rows at a time: each block's SwiGLU goes straight into down's quantized input
 * (rk_quantize_act_range_pool: the same bytes as quantizing whole rows), and only one block of
 * g and u is ever touched (the buffers are allocated for the whole width, which costs no memory
 * until written). The weights are still read once per batch, and every value is the same bits
 * (rows of a matrix product are independent, SwiGLU is element-wise). With a trace hook, or when
 * down's rows are padded (APR K-quants), the whole arrays are computed and reported. */
static rf_status mlp(const ri_context *ctx, const cpu_layer *C, uint32_t l, uint32_t n,
                     rf_error *err)
{
    cpu_ctx *c = ctx->backend_data;
    const ri_model_info *I = &ctx->model->info;
    uint32_t H = I->n_embd, FF = I->n_ff, pos0 = ctx->n_past;
    rf_status st;
    if (ctx->trace || (uint32_t)C->down.m.k != FF || n < MLP_MIN_TOKENS) {
        if ((st = matmul(ctx, &C->gate, NULL, c->a, H, H, n, c->g, FF, err)) != RF_OK ||
            (st = matmul(ctx, &C->up, NULL, c->a, H, H, n, c->u, FF, err)) != RF_OK)
            return st;
        ri_trace_emit(ctx, RI_STAGE_GATE, (int32_t)l, pos0, n, FF, c->g);
        ri_trace_emit(ctx, RI_STAGE_UP, (int32_t)l, pos0, n, FF, c->u);
        rk_silu_mul_f32((int64_t)n * FF, c->g, c->u, c->g);
        ri_trace_emit(ctx, RI_STAGE_SWIGLU, (int32_t)l, pos0, n, FF, c->g);
        return matmul(ctx, &C->down, NULL, c->g, FF, FF, n, c->o, H, err);
    }
    size_t act_stride = rk_act_row_bytes(C->down.m.type, FF);
    for (uint32_t f0 = 0; f0 < FF; f0 += MLP_BLOCK) {
        uint32_t f1 = FF - f0 < MLP_BLOCK ? FF : f0 + MLP_BLOCK, w = f1 - f0;
        cpu_weight gate = weight_rows(&C->gate, f0, f1), up = weight_rows(&C->up, f0, f1);
        if ((st = matmul(ctx, &gate, NULL, c->a, H, H, n, c->g, w, err)) != RF_OK ||
            (st = matmul(ctx, &up, NULL, c->a, H, H, n, c->u, w, err)) != RF_OK)
            return st;
        rk_silu_mul_f32((int64_t)n * w, c->g, c->u, c->g);
        if (rk_quantize_act_range_pool(c->pool, C->down.m.type, FF, f0, f1, n, c->g, w, c->act_mlp,
                                       act_stride) != 0)
            return rf_error_set(err, RF_ERR_UNSUPPORTED, "cannot quantize activations for %s",
                                rk_type_traits_get(C->down.m.type)->name);
    }
    if (rk_matmul_pool(c->pool, &C->down.m, c->act_mlp, act_stride, n, c->o, H) != 0)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "matrix product refused by the kernels");
    return RF_OK;
}

/* ---- the forward pass
 * ------------------------------------------------------------------------------ */

static rf_status cpu_forward(ri_context *ctx, const int32_t *tokens, uint32_t n,
                             ri_logits_mode mode, float *logits, rf_error *err)
{
    const ri_model *m = ctx->model;
    const ri_model_info *I = &m->info;
    const cpu_model *cm = m->backend_data;
    cpu_ctx *c = ctx->backend_data;
    uint32_t H = I->n_embd, d = I->head_dim, pos0 = ctx->n_past;
    uint32_t q_dim = I->n_heads * d, kv_dim = I->n_kv_heads * d;
    rf_status st;

    act_invalidate(c);
    for (uint32_t t = 0; t < n; t++) {
        float *row = c->pad; /* the embedding row may be padded (APR K-quants) */
        if (cm->embd_from_head) {
            if (rk_r16_row(&cm->head.m, tokens[t], c->embd_row) != 0)
                return rf_error_set(err, RF_ERR_ARGUMENT, "token %d: no such embedding row",
                                    tokens[t]);
            if ((st = rf_dequantize(m->embd.dtype, c->embd_row, row, m->embd.row_elems, err)) !=
                RF_OK)
                return st;
        } else if ((st = ri_weight_dequantize_row(&m->embd, (uint32_t)tokens[t], row, err)) !=
                   RF_OK) {
            return st;
        }
        memcpy(c->x + (size_t)t * H, row, H * sizeof(float));
    }
    ri_trace_emit(ctx, RI_STAGE_EMBEDDING, -1, pos0, n, H, c->x);
    for (uint32_t t = 0; t < n; t++)
        rk_rope_table(pos0 + t, d, (float)m->rope_theta, c->rope_cos + (size_t)t * (d / 2),
                      c->rope_sin + (size_t)t * (d / 2));

    for (uint32_t l = 0; l < I->n_layers; l++) {
        const ri_layer *L = &m->layers[l];
        const cpu_layer *C = &cm->layers[l];
        act_invalidate(c);
        for (uint32_t t = 0; t < n; t++)
            rmsnorm(H, c->x + (size_t)t * H, L->attn_norm, m->rms_eps, c->a + (size_t)t * H);
        ri_trace_emit(ctx, RI_STAGE_ATTN_NORM, (int32_t)l, pos0, n, H, c->a);
        if ((st = matmul(ctx, &C->wq, L->bq, c->a, H, H, n, c->q, q_dim, err)) != RF_OK ||
            (st = matmul(ctx, &C->wk, L->bk, c->a, H, H, n, c->k, kv_dim, err)) != RF_OK ||
            (st = matmul(ctx, &C->wv, L->bv, c->a, H, H, n, c->v, kv_dim, err)) != RF_OK)
            return st;
        ri_trace_emit(ctx, RI_STAGE_Q, (int32_t)l, pos0, n, q_dim, c->q);
        ri_trace_emit(ctx, RI_STAGE_K, (int32_t)l, pos0, n, kv_dim, c->k);
        ri_trace_emit(ctx, RI_STAGE_V, (int32_t)l, pos0, n, kv_dim, c->v);
        rope(ctx, c->q, I->n_heads, n, q_dim);
        rope(ctx, c->k, I->n_kv_heads, n, kv_dim);
        ri_trace_emit(ctx, RI_STAGE_Q_ROPE, (int32_t)l, pos0, n, q_dim, c->q);
        ri_trace_emit(ctx, RI_STAGE_K_ROPE, (int32_t)l, pos0, n, kv_dim, c->k);

        store_kv(ctx, l, pos0, n);
        attn_job job = {ctx, l, pos0, n, (n + ATTN_QB - 1) / ATTN_QB};
        rk_pool_run(c->pool, (int64_t)I->n_heads * job.n_qblocks, attention_task, &job);
        ri_trace_emit(ctx, RI_STAGE_ATTN_OUT, (int32_t)l, pos0, n, q_dim, c->att);

        if ((st = matmul(ctx, &C->wo, NULL, c->att, q_dim, q_dim, n, c->o, H, err)) != RF_OK)
            return st;
        ri_trace_emit(ctx, RI_STAGE_O_PROJ, (int32_t)l, pos0, n, H, c->o);
        rk_add_f32((int64_t)n * H, c->x, c->o, c->x);
        ri_trace_emit(ctx, RI_STAGE_ATTN_RESIDUAL, (int32_t)l, pos0, n, H, c->x);

        act_invalidate(c);
        for (uint32_t t = 0; t < n; t++)
            rmsnorm(H, c->x + (size_t)t * H, L->ffn_norm, m->rms_eps, c->a + (size_t)t * H);
        ri_trace_emit(ctx, RI_STAGE_FFN_NORM, (int32_t)l, pos0, n, H, c->a);
        if ((st = mlp(ctx, C, l, n, err)) != RF_OK)
            return st;
        ri_trace_emit(ctx, RI_STAGE_DOWN, (int32_t)l, pos0, n, H, c->o);
        rk_add_f32((int64_t)n * H, c->x, c->o, c->x);
        ri_trace_emit(ctx, RI_STAGE_LAYER_OUT, (int32_t)l, pos0, n, H, c->x);
    }

    /* the final norm of the rows whose logits are wanted (all rows when tracing) */
    uint32_t first = mode == RI_LOGITS_ALL || ctx->trace ? 0 : n - 1;
    act_invalidate(c);
    for (uint32_t t = first; t < n; t++)
        rmsnorm(H, c->x + (size_t)t * H, m->final_norm, m->rms_eps, c->a + (size_t)t * H);
    ri_trace_emit(ctx, RI_STAGE_FINAL_NORM, -1, pos0, n, H, c->a);
    if (mode == RI_LOGITS_NONE)
        return RF_OK;
    first = mode == RI_LOGITS_LAST ? n - 1 : 0;
    uint32_t rows = n - first;
    if ((st = matmul(ctx, &cm->head, NULL, c->a + (size_t)first * H, H, H, rows, logits, I->n_vocab,
                     err)) != RF_OK)
        return st;
    ri_trace_emit(ctx, RI_STAGE_LOGITS, -1, pos0 + first, rows, I->n_vocab, logits);
    return RF_OK;
}

const ri_backend ri_backend_cpu = {
    .name = "cpu",
    .model_init = cpu_model_init,
    .model_free = cpu_model_free,
    .context_init = cpu_context_init,
    .context_free = cpu_context_free,
    .forward = cpu_forward,
};
