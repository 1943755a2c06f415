/* Engine model: finds the Qwen2 tensors by role in the model view (Hugging Face or GGUF names),
 * checks the config and every shape, and describes each weight for the forward pass without
 * copying it (docs/engine.md, "Loading").
 * Not for: the forward pass itself (reference.c, cpu.c). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "rosetta/apr.h"
#include "rosetta/names.h"
#include "rosetta/quant.h"
#include "rosetta/version.h"

const char *ri_version(void) { return ROSETTA_VERSION; }

ri_model_params ri_model_params_default(void) { return (ri_model_params){RI_PATH_AUTO}; }

/* ---- tensors by role ----------------------------------------------------------------------- */

/* The tensor with the Hugging Face name hf, or its GGUF spelling; NULL when neither exists. */
static const rf_tensor *find_role(const rf_model *src, const char *hf, char *gguf, size_t gguf_size)
{
    const rf_tensor *t = rf_model_find_tensor(src, hf);
    if (t)
        return t;
    if (!rf_name_to_gguf(hf, gguf, gguf_size))
        gguf[0] = '\0';
    return gguf[0] ? rf_model_find_tensor(src, gguf) : NULL;
}

static bool is_apr(const rf_model *src)
{
    return rf_model_format(src) == RF_FORMAT_APR || rf_model_format(src) == RF_FORMAT_APR2_MAGIC;
}

static const char *shape_text(const rf_tensor *t, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < t->ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRIu64, i ? ", " : "", t->shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

static rf_status missing(const char *hf, const char *gguf, rf_error *err)
{
    if (gguf[0])
        return rf_error_set(err, RF_ERR_NOT_FOUND, "tensor %s (GGUF name %s) not found", hf, gguf);
    return rf_error_set(err, RF_ERR_NOT_FOUND, "tensor %s not found", hf);
}

static rf_status check_shape(const rf_tensor *t, int ndim, uint64_t d0, uint64_t d1, rf_error *err)
{
    bool ok = t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1);
    if (ok)
        return RF_OK;
    char found[128];
    if (ndim == 1)
        return rf_error_set(err, RF_ERR_FORMAT, "tensor %s: shape %s, expected [%" PRIu64 "]",
                            t->name, shape_text(t, found, sizeof found), d0);
    return rf_error_set(err, RF_ERR_FORMAT,
                        "tensor %s: shape %s, expected [%" PRIu64 ", %" PRIu64 "]", t->name,
                        shape_text(t, found, sizeof found), d0, d1);
}

static rf_status check_dtype(const rf_tensor *t, rf_error *err)
{
    if (!rf_can_dequantize(t->dtype))
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "tensor %s: unsupported dtype %s", t->name,
                            rf_dtype_name(t->dtype));
    if (!t->data)
        return rf_error_set(err, RF_ERR_FORMAT, "tensor %s: no data in the file", t->name);
    return RF_OK;
}

/* A 1-D tensor of n values as an F32 copy. APR stores 1-D K-quants padded to whole
 * super-blocks (docs/formats/apr.md, "Sizes"). */
static rf_status load_vector(const rf_model *src, const char *hf, uint64_t n, float **out,
                             rf_error *err)
{
    char gguf[256];
    const rf_tensor *t = find_role(src, hf, gguf, sizeof gguf);
    if (!t)
        return missing(hf, gguf, err);
    rf_status st = check_shape(t, 1, n, 0, err);
    if (st == RF_OK)
        st = check_dtype(t, err);
    if (st != RF_OK)
        return st;
    uint64_t padded = n;
    if (is_apr(src) && (t->dtype == RF_DTYPE_Q4_K || t->dtype == RF_DTYPE_Q6_K))
        padded = (n + 255) / 256 * 256;
    float *v = padded ? malloc(padded * sizeof *v) : NULL;
    if (!v)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory for tensor %s", t->name);
    if (padded == n) {
        st = rf_tensor_dequantize(t, v, err);
    } else {
        uint64_t need = padded / 256 * rf_dtype_get(t->dtype)->block_bytes;
        st = t->nbytes < need ? rf_error_set(err, RF_ERR_FORMAT,
                                             "tensor %s: %" PRIu64 " bytes, expected %" PRIu64,
                                             t->name, t->nbytes, need)
                              : rf_dequantize(t->dtype, t->data, v, padded, err);
    }
    if (st != RF_OK) {
        free(v);
        if (err && !strstr(err->message, t->name))
            rf_error_prefix(err, "tensor %s", t->name);
        return st;
    }
    *out = v;
    return RF_OK;
}

static rf_status too_short(const rf_tensor *t, uint64_t need, rf_error *err)
{
    return rf_error_set(err, RF_ERR_FORMAT, "tensor %s: %" PRIu64 " data bytes, expected %" PRIu64,
                        t->name, t->nbytes, need);
}

/* Describes the 2-D tensor t [rows, cols] as a weight, in place when its rows can be read one by
 * one; an APR_Q4 tensor whose rows do not start on a block is converted to F32. */
static rf_status weight_of(const rf_model *src, const rf_tensor *t, uint64_t rows, uint64_t cols,
                           ri_weight *w, rf_error *err)
{
    rf_status st = check_shape(t, 2, rows, cols, err);
    if (st == RF_OK)
        st = check_dtype(t, err);
    if (st != RF_OK)
        return st;
    const rf_dtype_info *info = rf_dtype_get(t->dtype);
    *w = (ri_weight){.name = t->name,
                     .dtype = t->dtype,
                     .rows = (uint32_t)rows,
                     .cols = (uint32_t)cols,
                     .row_elems = (uint32_t)cols,
                     .data = t->data};
    uint64_t padded_row_bytes;
    if (t->dtype == RF_DTYPE_APR_Q8) {
        /* one f32 scale for the whole tensor, then one int8 per value */
        if (t->nbytes < 4 + rows * cols)
            return too_short(t, 4 + rows * cols, err);
        memcpy(&w->apr_q8_scale, t->data, 4);
        w->data = t->data + 4;
        w->row_bytes = cols;
        return RF_OK;
    }
    if (t->dtype == RF_DTYPE_APR_Q4 && cols % 32 != 0) {
        /* blocks run across row boundaries: no row can be decoded on its own */
        float *f = malloc(rows * cols * sizeof *f);
        if (!f)
            return rf_error_set(err, RF_ERR_NOMEM, "out of memory converting tensor %s", t->name);
        if ((st = rf_tensor_dequantize(t, f, err)) != RF_OK) {
            free(f);
            return st;
        }
        w->dtype = RF_DTYPE_F32;
        w->data = (const uint8_t *)f;
        w->row_bytes = cols * sizeof(float);
        w->owned = f;
        return RF_OK;
    }
    if (t->dtype == RF_DTYPE_APR_Q4) {
        w->row_bytes = cols / 32 * 18;
    } else if (is_apr(src) && rf_apr_tensor_row_padded(t, &padded_row_bytes)) {
        w->row_bytes = padded_row_bytes;
        w->row_elems = (uint32_t)(padded_row_bytes / info->block_bytes * info->block_elems);
    } else {
        if (cols % info->block_elems != 0)
            return rf_error_set(err, RF_ERR_FORMAT,
                                "tensor %s: %" PRIu64 " columns, not a multiple of the %s block "
                                "of %u",
                                t->name, cols, info->name, info->block_elems);
        w->row_bytes = cols / info->block_elems * info->block_bytes;
    }
    if (t->nbytes < rows * w->row_bytes)
        return too_short(t, rows * w->row_bytes, err);
    return RF_OK;
}

static rf_status load_weight(const rf_model *src, const char *hf, uint64_t rows, uint64_t cols,
                             ri_weight *w, rf_error *err)
{
    char gguf[256];
    const rf_tensor *t = find_role(src, hf, gguf, sizeof gguf);
    if (!t)
        return missing(hf, gguf, err);
    return weight_of(src, t, rows, cols, w, err);
}

/* ---- config -------------------------------------------------------------------------------- */

static rf_status check_config(const rf_model_config *c, ri_model *m, rf_error *err)
{
    if (!c->architecture)
        return rf_error_set(err, RF_ERR_FORMAT, "config: no architecture in the file");
    if (strcasecmp(c->architecture, "qwen2") != 0)
        return rf_error_set(err, RF_ERR_UNSUPPORTED,
                            "config: architecture \"%s\" is not supported (expected qwen2)",
                            c->architecture);
    const struct {
        const char *key;
        uint64_t value;
    } need[] = {{"hidden_size", c->hidden_size},
                {"num_hidden_layers", c->n_layers},
                {"num_attention_heads", c->n_heads},
                {"num_key_value_heads", c->n_kv_heads},
                {"intermediate_size", c->intermediate_size}};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (need[i].value == 0)
            return rf_error_set(err, RF_ERR_FORMAT, "config: %s missing", need[i].key);
        if (need[i].value > (1u << 20))
            return rf_error_set(err, RF_ERR_FORMAT, "config: %s = %" PRIu64 " is implausible",
                                need[i].key, need[i].value);
    }
    uint64_t head_dim = c->head_dim ? c->head_dim : c->hidden_size / c->n_heads;
    if (c->n_heads % c->n_kv_heads != 0)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "config: num_attention_heads %" PRIu64
                            " is not a multiple of num_key_value_heads %" PRIu64,
                            c->n_heads, c->n_kv_heads);
    if (head_dim == 0 || head_dim % 2 != 0 || head_dim > 4096)
        return rf_error_set(err, RF_ERR_FORMAT, "config: head_dim %" PRIu64 " is not even",
                            head_dim);
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return rf_error_set(err, RF_ERR_FORMAT, "config: rope_theta missing or invalid (%g)",
                            c->rope_theta);
    if (c->rope_type != RF_ROPE_NEOX && c->rope_type != RF_ROPE_NORM)
        return rf_error_set(err, RF_ERR_FORMAT, "config: rope type unknown");
    if (!(c->rms_norm_eps >= 0 && c->rms_norm_eps < 1))
        return rf_error_set(err, RF_ERR_FORMAT, "config: rms_norm_eps %g out of [0, 1)",
                            c->rms_norm_eps);
    m->info.n_embd = (uint32_t)c->hidden_size;
    m->info.n_layers = (uint32_t)c->n_layers;
    m->info.n_heads = (uint32_t)c->n_heads;
    m->info.n_kv_heads = (uint32_t)c->n_kv_heads;
    m->info.head_dim = (uint32_t)head_dim;
    m->info.n_ff = (uint32_t)c->intermediate_size;
    m->info.n_ctx_train = c->context_length > UINT32_MAX ? UINT32_MAX : (uint32_t)c->context_length;
    m->rope_theta = c->rope_theta;
    m->rope_type = c->rope_type;
    m->rms_eps = (float)c->rms_norm_eps;
    return RF_OK;
}

/* ---- load ---------------------------------------------------------------------------------- */

static void weight_release(ri_weight *w)
{
    free(w->owned);
    w->owned = NULL;
}

void ri_model_free(ri_model *m)
{
    if (!m)
        return;
    if (m->backend && m->backend->model_free)
        m->backend->model_free(m);
    if (m->layers) {
        for (uint32_t l = 0; l < m->info.n_layers; l++) {
            ri_layer *L = &m->layers[l];
            free(L->attn_norm);
            free(L->ffn_norm);
            free(L->bq);
            free(L->bk);
            free(L->bv);
            ri_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
                weight_release(ws[i]);
        }
        free(m->layers);
    }
    if (!m->info.tied_head)
        weight_release(&m->head);
    weight_release(&m->embd);
    free(m->final_norm);
    rf_model_free(m->owned_src);
    free(m);
}

static uint64_t weight_bytes(const ri_weight *w) { return (uint64_t)w->rows * w->row_bytes; }

static rf_status load_layer(const rf_model *src, ri_model *m, uint32_t l, rf_error *err)
{
    const ri_model_info *I = &m->info;
    ri_layer *L = &m->layers[l];
    uint64_t q_dim = (uint64_t)I->n_heads * I->head_dim,
             kv_dim = (uint64_t)I->n_kv_heads * I->head_dim;
    char name[160];
#define LNAME(suffix) (snprintf(name, sizeof name, "model.layers.%u.%s", l, suffix), name)
    rf_status st;
    if ((st = load_vector(src, LNAME("input_layernorm.weight"), I->n_embd, &L->attn_norm, err)) ||
        (st = load_vector(src, LNAME("post_attention_layernorm.weight"), I->n_embd, &L->ffn_norm,
                          err)) ||
        (st = load_vector(src, LNAME("self_attn.q_proj.bias"), q_dim, &L->bq, err)) ||
        (st = load_vector(src, LNAME("self_attn.k_proj.bias"), kv_dim, &L->bk, err)) ||
        (st = load_vector(src, LNAME("self_attn.v_proj.bias"), kv_dim, &L->bv, err)) ||
        (st = load_weight(src, LNAME("self_attn.q_proj.weight"), q_dim, I->n_embd, &L->wq, err)) ||
        (st = load_weight(src, LNAME("self_attn.k_proj.weight"), kv_dim, I->n_embd, &L->wk, err)) ||
        (st = load_weight(src, LNAME("self_attn.v_proj.weight"), kv_dim, I->n_embd, &L->wv, err)) ||
        (st = load_weight(src, LNAME("self_attn.o_proj.weight"), I->n_embd, q_dim, &L->wo, err)) ||
        (st = load_weight(src, LNAME("mlp.gate_proj.weight"), I->n_ff, I->n_embd, &L->gate, err)) ||
        (st = load_weight(src, LNAME("mlp.up_proj.weight"), I->n_ff, I->n_embd, &L->up, err)) ||
        (st = load_weight(src, LNAME("mlp.down_proj.weight"), I->n_embd, I->n_ff, &L->down, err)))
        return st;
#undef LNAME
    return RF_OK;
}

static ri_path path_of(const ri_model_params *params)
{
    ri_path p = params ? params->path : RI_PATH_AUTO;
    if (p != RI_PATH_AUTO)
        return p;
    const char *env = getenv("ROSETTA_ENGINE");
    if (env && strcmp(env, "reference") == 0)
        return RI_PATH_REFERENCE;
    return RI_PATH_FAST;
}

ri_model *ri_model_load(const rf_model *src, const ri_model_params *params, rf_error *err)
{
    if (!src) {
        rf_error_set(err, RF_ERR_ARGUMENT, "no model");
        return NULL;
    }
    ri_model *m = calloc(1, sizeof *m);
    if (!m) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->src = src;
    m->path = path_of(params);
    const rf_model_config *c = rf_model_config_get(src);
    if (check_config(c, m, err) != RF_OK)
        goto fail;

    /* embedding first: it fixes the vocabulary size */
    char gguf[256];
    const char *embd_name = "model.embed_tokens.weight";
    const rf_tensor *te = find_role(src, embd_name, gguf, sizeof gguf);
    if (!te) {
        missing(embd_name, gguf, err);
        goto fail;
    }
    if (te->ndim != 2 || te->shape[0] == 0 || te->shape[0] > INT32_MAX) {
        char found[128];
        rf_error_set(err, RF_ERR_FORMAT, "tensor %s: shape %s, expected [vocab, %u]", te->name,
                     shape_text(te, found, sizeof found), m->info.n_embd);
        goto fail;
    }
    m->info.n_vocab = (uint32_t)te->shape[0];
    if (c->vocab_size && c->vocab_size != m->info.n_vocab) {
        rf_error_set(err, RF_ERR_FORMAT, "config: vocab_size %" PRIu64 " but tensor %s has %u rows",
                     c->vocab_size, te->name, m->info.n_vocab);
        goto fail;
    }
    if (weight_of(src, te, m->info.n_vocab, m->info.n_embd, &m->embd, err) != RF_OK)
        goto fail;
    const rf_tokenizer *tok = rf_model_tokenizer(src);
    if (tok && tok->n_tokens == 0) {
        rf_error_set(err, RF_ERR_FORMAT, "tokenizer: empty vocabulary");
        goto fail;
    }
    if (tok && tok->n_tokens > m->info.n_vocab) {
        rf_error_set(err, RF_ERR_FORMAT,
                     "tokenizer: %" PRIu64 " tokens but the embedding has only %u rows",
                     tok->n_tokens, m->info.n_vocab);
        goto fail;
    }

    const rf_tensor *th = find_role(src, "lm_head.weight", gguf, sizeof gguf);
    if (th) {
        if (weight_of(src, th, m->info.n_vocab, m->info.n_embd, &m->head, err) != RF_OK)
            goto fail;
    } else {
        /* no head tensor: the head is the embedding (tie_word_embeddings) */
        m->head = m->embd;
        m->head.owned = NULL;
        m->info.tied_head = true;
    }
    if (load_vector(src, "model.norm.weight", m->info.n_embd, &m->final_norm, err) != RF_OK)
        goto fail;

    m->layers = m->info.n_layers ? calloc(m->info.n_layers, sizeof *m->layers) : NULL;
    if (!m->layers) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (uint32_t l = 0; l < m->info.n_layers; l++)
        if (load_layer(src, m, l, err) != RF_OK)
            goto fail;

    uint64_t bytes = m->info.tied_head ? 0 : weight_bytes(&m->head);
    for (uint32_t l = 0; l < m->info.n_layers; l++) {
        const ri_layer *L = &m->layers[l];
        bytes += weight_bytes(&L->wq) + weight_bytes(&L->wk) + weight_bytes(&L->wv) +
                 weight_bytes(&L->wo) + weight_bytes(&L->gate) + weight_bytes(&L->up) +
                 weight_bytes(&L->down);
    }
    if (m->info.tied_head)
        bytes += weight_bytes(&m->embd);
    m->info.weight_bytes = bytes;

    m->backend = m->path == RI_PATH_REFERENCE ? &ri_backend_reference : &ri_backend_cpu;
    snprintf(m->path_name, sizeof m->path_name, "%s", m->backend->name);
    if (m->backend->model_init && m->backend->model_init(m, err) != RF_OK)
        goto fail;
    return m;
fail:
    ri_model_free(m);
    return NULL;
}

ri_model *ri_model_open(const char *path, const ri_model_params *params, rf_error *err)
{
    rf_model *src = rf_model_open(path, NULL, err);
    if (!src)
        return NULL;
    ri_model *m = ri_model_load(src, params, err);
    if (!m) {
        rf_model_free(src);
        if (err)
            rf_error_prefix(err, "%s", path);
        return NULL;
    }
    m->owned_src = src;
    return m;
}

const rf_model *ri_model_source(const ri_model *m) { return m->src; }
ri_path ri_model_path(const ri_model *m) { return m->path; }
const char *ri_model_path_name(const ri_model *m) { return m->path_name; }
ri_model_info ri_model_get_info(const ri_model *m) { return m->info; }
