/* The scalar reference path (docs/engine.md, "The reference path"): F32 arithmetic, every dot
 * product summed in index order, each weight row dequantized with rf_dequantize and then
 * multiplied. Threads split the output rows of a matrix product, so the result does not depend
 * on the thread count. Slow and plain on purpose: it is what the fast path is tested against.
 * Not for: speed (cpu.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "cpu/threads.h"
#include "internal.h"

typedef struct ref_ctx {
    void *k_cache, *v_cache;                    /* [layer][n_ctx][kv_dim], F32 or F16 */
    float *x, *a, *q, *k, *v, *att, *o, *g, *u; /* scratch for n_batch tokens */
} ref_ctx;

static size_t kv_elem(const ri_context *ctx) { return ctx->kv_type == RI_KV_F16 ? 2 : 4; }

static rf_status ref_context_init(ri_context *ctx, rf_error *err)
{
    const ri_model_info *I = &ctx->model->info;
    ref_ctx *r = calloc(1, sizeof *r);
    if (!r)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    ctx->backend_data = r;
    size_t kv_dim = (size_t)I->n_kv_heads * I->head_dim, q_dim = (size_t)I->n_heads * I->head_dim;
    size_t cache = (size_t)I->n_layers * ctx->n_ctx * kv_dim * kv_elem(ctx);
    size_t nb = ctx->n_batch;
    r->k_cache = malloc(cache);
    r->v_cache = malloc(cache);
    r->x = malloc(nb * I->n_embd * sizeof(float));
    r->a = malloc(nb * I->n_embd * sizeof(float));
    r->o = malloc(nb * I->n_embd * sizeof(float));
    r->q = malloc(nb * q_dim * sizeof(float));
    r->att = malloc(nb * q_dim * sizeof(float));
    r->k = malloc(nb * kv_dim * sizeof(float));
    r->v = malloc(nb * kv_dim * sizeof(float));
    r->g = malloc(nb * I->n_ff * sizeof(float));
    r->u = malloc(nb * I->n_ff * sizeof(float));
    if (!r->k_cache || !r->v_cache || !r->x || !r->a || !r->o || !r->q || !r->att || !r->k ||
        !r->v || !r->g || !r->u)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory for a KV cache of %u positions",
                            ctx->n_ctx);
    return RF_OK;
}

static void ref_context_free(ri_context *ctx)
{
    ref_ctx *r = ctx->backend_data;
    if (!r)
        return;
    free(r->k_cache);
    free(r->v_cache);
    free(r->x);
    free(r->a);
    free(r->o);
    free(r->q);
    free(r->att);
    free(r->k);
    free(r->v);
    free(r->g);
    free(r->u);
    free(r);
    ctx->backend_data = NULL;
}

/* ---- matrix product: y[t][o] = sum_i W[o][i] x[t][i] (+ bias[o]) ------------------------- */

typedef struct matmul_job {
    const ri_weight *w;
    const float *x, *bias;
    float *y;
    uint32_t n; /* tokens */
    size_t x_stride, y_stride;
    int failed;
} matmul_job;

static void matmul_rows(void *arg, int64_t begin, int64_t end)
{
    matmul_job *job = arg;
    const ri_weight *w = job->w;
    float *row = malloc((size_t)w->row_elems * sizeof *row);
    if (!row) {
        job->failed = 1;
        return;
    }
    for (int64_t o = begin; o < end; o++) {
        if (ri_weight_dequantize_row(w, (uint32_t)o, row, NULL) != RF_OK) {
            job->failed = 1;
            break;
        }
        for (uint32_t t = 0; t < job->n; t++) {
            const float *x = job->x + t * job->x_stride;
            float sum = 0.0f;
            for (uint32_t i = 0; i < w->cols; i++)
                sum += row[i] * x[i];
            if (job->bias)
                sum += job->bias[o];
            job->y[t * job->y_stride + (size_t)o] = sum;
        }
    }
    free(row);
}

static rf_status matmul(const ri_context *ctx, const ri_weight *w, const float *bias,
                        const float *x, size_t x_stride, uint32_t n, float *y, size_t y_stride,
                        rf_error *err)
{
    matmul_job job = {w, x, bias, y, n, x_stride, y_stride, 0};
    rk_parallel_for(w->rows, 16, ctx->n_threads, matmul_rows, &job);
    if (job.failed)
        return rf_error_set(err, RF_ERR_NOMEM, "tensor %s: cannot dequantize a row", w->name);
    return RF_OK;
}

/* ---- elementwise stages ---------------------------------------------------------------------- */

/* y = w * (x / sqrt(mean(x^2) + eps)); the sum of squares is accumulated in double. */
static void rmsnorm(const float *x, const float *w, uint32_t n, float eps, float *y)
{
    double ss = 0.0;
    for (uint32_t i = 0; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    float scale = (float)(1.0 / sqrt(ss / n + (double)eps));
    for (uint32_t i = 0; i < n; i++)
        y[i] = w[i] * (x[i] * scale);
}

/* Rotates each head_dim-long head of x (n_heads of them) for position pos. NEOX pairs element i
 * with i + d/2; NORM pairs 2i with 2i + 1. Angle of pair i: pos * theta^(-2i/d). */
static void rope(float *x, uint32_t n_heads, uint32_t d, uint32_t pos, double theta,
                 rf_rope_type type)
{
    uint32_t half = d / 2;
    for (uint32_t i = 0; i < half; i++) {
        double angle = (double)pos * pow(theta, -2.0 * i / d);
        float c = (float)cos(angle), s = (float)sin(angle);
        for (uint32_t h = 0; h < n_heads; h++) {
            float *v = x + (size_t)h * d;
            uint32_t i0 = type == RF_ROPE_NEOX ? i : 2 * i;
            uint32_t i1 = type == RF_ROPE_NEOX ? i + half : 2 * i + 1;
            float a = v[i0], b = v[i1];
            v[i0] = a * c - b * s;
            v[i1] = b * c + a * s;
        }
    }
}

static float kv_get(const void *cache, bool f16, size_t index)
{
    return f16 ? rk_f16_to_f32(((const uint16_t *)cache)[index]) : ((const float *)cache)[index];
}

static void kv_put(void *cache, bool f16, size_t index, float value)
{
    if (f16)
        ((uint16_t *)cache)[index] = rk_f32_to_f16(value);
    else
        ((float *)cache)[index] = value;
}

/* Causal GQA attention of n queries at positions pos0.. over the cached keys and values. */
typedef struct attn_job {
    const ri_context *ctx;
    uint32_t layer, pos0, n;
    const float *q;
    float *out;
    int failed;
} attn_job;

static void attention_heads(void *arg, int64_t begin, int64_t end)
{
    attn_job *job = arg;
    const ri_context *ctx = job->ctx;
    const ref_ctx *r = ctx->backend_data;
    const ri_model_info *I = &ctx->model->info;
    uint32_t d = I->head_dim, n_rep = I->n_heads / I->n_kv_heads;
    size_t kv_dim = (size_t)I->n_kv_heads * d, q_dim = (size_t)I->n_heads * d;
    size_t layer_off = (size_t)job->layer * ctx->n_ctx * kv_dim;
    bool f16 = ctx->kv_type == RI_KV_F16;
    float scale = (float)(1.0 / sqrt((double)d));
    float *scores = malloc((size_t)(job->pos0 + job->n) * sizeof *scores);
    if (!scores) {
        job->failed = 1;
        return;
    }
    /* index = t * n_heads + h */
    for (int64_t idx = begin; idx < end; idx++) {
        uint32_t t = (uint32_t)(idx / I->n_heads), h = (uint32_t)(idx % I->n_heads);
        uint32_t g = h / n_rep, pos = job->pos0 + t;
        const float *q = job->q + t * q_dim + (size_t)h * d;
        float max = -INFINITY;
        for (uint32_t j = 0; j <= pos; j++) {
            size_t base = layer_off + (size_t)j * kv_dim + (size_t)g * d;
            float s = 0.0f;
            for (uint32_t i = 0; i < d; i++)
                s += q[i] * kv_get(r->k_cache, f16, base + i);
            s *= scale;
            scores[j] = s;
            if (s > max)
                max = s;
        }
        float sum = 0.0f;
        for (uint32_t j = 0; j <= pos; j++) {
            scores[j] = expf(scores[j] - max);
            sum += scores[j];
        }
        float *o = job->out + t * q_dim + (size_t)h * d;
        for (uint32_t i = 0; i < d; i++)
            o[i] = 0.0f;
        for (uint32_t j = 0; j <= pos; j++) {
            float p = scores[j] / sum;
            size_t base = layer_off + (size_t)j * kv_dim + (size_t)g * d;
            for (uint32_t i = 0; i < d; i++)
                o[i] += p * kv_get(r->v_cache, f16, base + i);
        }
    }
    free(scores);
}

/* ---- the forward pass ------------------------------------------------------------------------ */

static rf_status ref_forward(ri_context *ctx, const int32_t *tokens, uint32_t n,
                             ri_logits_mode mode, float *logits, rf_error *err)
{
    const ri_model *m = ctx->model;
    const ri_model_info *I = &m->info;
    ref_ctx *r = ctx->backend_data;
    uint32_t H = I->n_embd, d = I->head_dim, FF = I->n_ff, pos0 = ctx->n_past;
    size_t q_dim = (size_t)I->n_heads * d, kv_dim = (size_t)I->n_kv_heads * d;
    bool f16 = ctx->kv_type == RI_KV_F16;
    rf_status st;

    float *row = malloc((size_t)m->embd.row_elems * sizeof *row);
    if (!row)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    for (uint32_t t = 0; t < n; t++) {
        if ((st = ri_weight_dequantize_row(&m->embd, (uint32_t)tokens[t], row, err)) != RF_OK) {
            free(row);
            return st;
        }
        memcpy(r->x + (size_t)t * H, row, H * sizeof(float));
    }
    free(row);
    ri_trace_emit(ctx, RI_STAGE_EMBEDDING, -1, pos0, n, H, r->x);

    for (uint32_t l = 0; l < I->n_layers; l++) {
        const ri_layer *L = &m->layers[l];
        for (uint32_t t = 0; t < n; t++)
            rmsnorm(r->x + (size_t)t * H, L->attn_norm, H, m->rms_eps, r->a + (size_t)t * H);
        ri_trace_emit(ctx, RI_STAGE_ATTN_NORM, (int32_t)l, pos0, n, H, r->a);

        if ((st = matmul(ctx, &L->wq, L->bq, r->a, H, n, r->q, q_dim, err)) != RF_OK ||
            (st = matmul(ctx, &L->wk, L->bk, r->a, H, n, r->k, kv_dim, err)) != RF_OK ||
            (st = matmul(ctx, &L->wv, L->bv, r->a, H, n, r->v, kv_dim, err)) != RF_OK)
            return st;
        ri_trace_emit(ctx, RI_STAGE_Q, (int32_t)l, pos0, n, (uint32_t)q_dim, r->q);
        ri_trace_emit(ctx, RI_STAGE_K, (int32_t)l, pos0, n, (uint32_t)kv_dim, r->k);
        ri_trace_emit(ctx, RI_STAGE_V, (int32_t)l, pos0, n, (uint32_t)kv_dim, r->v);

        for (uint32_t t = 0; t < n; t++) {
            rope(r->q + t * q_dim, I->n_heads, d, pos0 + t, m->rope_theta, m->rope_type);
            rope(r->k + t * kv_dim, I->n_kv_heads, d, pos0 + t, m->rope_theta, m->rope_type);
        }
        ri_trace_emit(ctx, RI_STAGE_Q_ROPE, (int32_t)l, pos0, n, (uint32_t)q_dim, r->q);
        ri_trace_emit(ctx, RI_STAGE_K_ROPE, (int32_t)l, pos0, n, (uint32_t)kv_dim, r->k);

        size_t layer_off = (size_t)l * ctx->n_ctx * kv_dim;
        for (uint32_t t = 0; t < n; t++)
            for (size_t i = 0; i < kv_dim; i++) {
                size_t at = layer_off + (size_t)(pos0 + t) * kv_dim + i;
                kv_put(r->k_cache, f16, at, r->k[t * kv_dim + i]);
                kv_put(r->v_cache, f16, at, r->v[t * kv_dim + i]);
            }
        attn_job aj = {ctx, l, pos0, n, r->q, r->att, 0};
        rk_parallel_for((int64_t)n * I->n_heads, 1, ctx->n_threads, attention_heads, &aj);
        if (aj.failed)
            return rf_error_set(err, RF_ERR_NOMEM, "out of memory in attention");
        ri_trace_emit(ctx, RI_STAGE_ATTN_OUT, (int32_t)l, pos0, n, (uint32_t)q_dim, r->att);

        if ((st = matmul(ctx, &L->wo, NULL, r->att, q_dim, n, r->o, H, err)) != RF_OK)
            return st;
        ri_trace_emit(ctx, RI_STAGE_O_PROJ, (int32_t)l, pos0, n, H, r->o);
        for (size_t i = 0; i < (size_t)n * H; i++)
            r->x[i] += r->o[i];
        ri_trace_emit(ctx, RI_STAGE_ATTN_RESIDUAL, (int32_t)l, pos0, n, H, r->x);

        for (uint32_t t = 0; t < n; t++)
            rmsnorm(r->x + (size_t)t * H, L->ffn_norm, H, m->rms_eps, r->a + (size_t)t * H);
        ri_trace_emit(ctx, RI_STAGE_FFN_NORM, (int32_t)l, pos0, n, H, r->a);
        if ((st = matmul(ctx, &L->gate, NULL, r->a, H, n, r->g, FF, err)) != RF_OK ||
            (st = matmul(ctx, &L->up, NULL, r->a, H, n, r->u, FF, err)) != RF_OK)
            return st;
        ri_trace_emit(ctx, RI_STAGE_GATE, (int32_t)l, pos0, n, FF, r->g);
        ri_trace_emit(ctx, RI_STAGE_UP, (int32_t)l, pos0, n, FF, r->u);
        for (size_t i = 0; i < (size_t)n * FF; i++) {
            float gv = r->g[i];
            r->g[i] = gv / (1.0f + expf(-gv)) * r->u[i];
        }
        ri_trace_emit(ctx, RI_STAGE_SWIGLU, (int32_t)l, pos0, n, FF, r->g);
        if ((st = matmul(ctx, &L->down, NULL, r->g, FF, n, r->o, H, err)) != RF_OK)
            return st;
        ri_trace_emit(ctx, RI_STAGE_DOWN, (int32_t)l, pos0, n, H, r->o);
        for (size_t i = 0; i < (size_t)n * H; i++)
            r->x[i] += r->o[i];
        ri_trace_emit(ctx, RI_STAGE_LAYER_OUT, (int32_t)l, pos0, n, H, r->x);
    }

    for (uint32_t t = 0; t < n; t++)
        rmsnorm(r->x + (size_t)t * H, m->final_norm, H, m->rms_eps, r->a + (size_t)t * H);
    ri_trace_emit(ctx, RI_STAGE_FINAL_NORM, -1, pos0, n, H, r->a);
    if (mode == RI_LOGITS_NONE)
        return RF_OK;
    uint32_t first = mode == RI_LOGITS_LAST ? n - 1 : 0, rows = n - first;
    if ((st = matmul(ctx, &m->head, NULL, r->a + (size_t)first * H, H, rows, logits, I->n_vocab,
                     err)) != RF_OK)
        return st;
    ri_trace_emit(ctx, RI_STAGE_LOGITS, -1, pos0 + first, rows, I->n_vocab, logits);
    return RF_OK;
}

const ri_backend ri_backend_reference = {
    .name = "reference",
    .model_init = NULL,
    .model_free = NULL,
    .context_init = ref_context_init,
    .context_free = ref_context_free,
    .forward = ref_forward,
};
