/* APR v2 writer (docs/formats/apr.md; docs/design.md section 3): lays a model out
 * exactly as aprender's in-memory writer does, and, for models that did not come from APR,
 * builds the metadata aprender's importers write (docs/formats/apr.md).
 * Not for: dequantizing or requantizing tensors APR cannot hold (refused, named), or sharding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_internal.h"
#include "common/half.h"
#include "io_internal.h"
#include "model_internal.h"
#include "io.h"
#include "rosetta/contract.h"
#include "pages.h"
#include "write_hook.h"

/* One tensor as it goes into the file. */
typedef struct out_tensor {
    const char *name;
    rf_dtype dtype;
    int ndim;
    uint64_t shape[RF_MAX_DIMS];
    const uint8_t *data;
    uint64_t nbytes;
} out_tensor;

typedef struct plan {
    out_tensor *t;
    size_t n;
    apr_kvlist kvs;
    text_buf meta; /* the metadata JSON */
    uint64_t index_bytes, data_bytes;
} plan;

static void plan_free(plan *p)
{
    free(p->t);
    rfi_apr_kvlist_free(&p->kvs);
    rfi_text_buf_free(&p->meta);
    memset(p, 0, sizeof *p);
}

static uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

/* ---- values for synthesized metadata -------------------------------------------------------- */

static rf_value v_str(const char *s)
{
    rf_value v = {.type = RF_VALUE_STRING};
    v.as.str.data = s;
    v.as.str.len = strlen(s);
    return v;
}

static rf_value v_u64(uint64_t u)
{
    rf_value v = {.type = RF_VALUE_U64};
    v.as.u = u;
    return v;
}

static rf_value v_i64(int64_t i)
{
    rf_value v = {.type = RF_VALUE_I64};
    v.as.i = i;
    return v;
}

static rf_value v_f32(double f)
{
    rf_value v = {.type = RF_VALUE_F32};
    v.as.f = (double)(float)f;
    return v;
}

static rf_value v_f64(double f)
{
    rf_value v = {.type = RF_VALUE_F64};
    v.as.f = f;
    return v;
}

static rf_value v_bool(bool b)
{
    rf_value v = {.type = RF_VALUE_BOOL};
    v.as.b = b;
    return v;
}

static rf_value v_json(const char *text, size_t len)
{
    rf_value v = {.type = RF_VALUE_JSON};
    v.as.str.data = text;
    v.as.str.len = len;
    return v;
}

/* An array of strings whose items point at the given C strings (owned elsewhere). */
static rf_value v_strings(apr_kvlist *l, const char *const *items, uint64_t n)
{
    rf_value v = {.type = RF_VALUE_ARRAY};
    rf_value *arr = rfi_apr_kvlist_own(l, malloc((n ? n : 1) * sizeof *arr));
    if (!arr)
        return v_json("[]", 2);
    for (uint64_t i = 0; i < n; i++)
        arr[i] = v_str(items[i]);
    v.as.arr.elem_type = RF_VALUE_STRING;
    v.as.arr.count = n;
    v.as.arr.items = arr;
    return n ? v : v_json("[]", 2);
}

/* ---- synthesis (docs/formats/apr.md) --------------------------------------------------------- */

static int cmp_out(const void *a, const void *b)
{
    return strcmp(((const out_tensor *)a)->name, ((const out_tensor *)b)->name);
}

/* Whether at least 99.9 % of the elements are zero (aprender treats such a head as missing). */
static bool count_mostly_zero(const out_tensor *t)
{
    uint64_t n, zeros = 0, need;
    if (!t->data || rf_shape_elements(t->shape, t->ndim, &n, NULL) != RF_OK || n == 0 ||
        rf_dtype_flat_bytes(t->dtype, n, &need, NULL) != RF_OK || need > t->nbytes)
        return false;
    switch (t->dtype) {
    case RF_DTYPE_F32:
        for (uint64_t i = 0; i < n; i++)
            zeros += (rf_load_le32(t->data + 4 * i) & 0x7fffffffu) == 0;
        break;
    case RF_DTYPE_F16:
    case RF_DTYPE_BF16:
        for (uint64_t i = 0; i < n; i++)
            zeros += (rf_load_le16(t->data + 2 * i) & 0x7fffu) == 0;
        break;
    case RF_DTYPE_F64:
        for (uint64_t i = 0; i < n; i++)
            zeros += (rf_load_le64(t->data + 8 * i) & 0x7fffffffffffffffull) == 0;
        break;
    case RF_DTYPE_Q4_0:
    case RF_DTYPE_Q4_1:
    case RF_DTYPE_Q5_0:
    case RF_DTYPE_Q5_1:
    case RF_DTYPE_Q8_0:
    case RF_DTYPE_Q8_1:
    case RF_DTYPE_Q2_K:
    case RF_DTYPE_Q3_K:
    case RF_DTYPE_Q4_K:
    case RF_DTYPE_Q5_K:
    case RF_DTYPE_Q6_K:
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
    case RF_DTYPE_F4:
    case RF_DTYPE_APR_Q4:
    case RF_DTYPE_APR_Q8:
        return false; /* only float heads are checked, as aprender's F32 import path does */
    }
    return (double)zeros >= 0.999 * (double)n;
}

typedef struct zero_check {
    const out_tensor *t;
    bool result;
} zero_check;

static rf_status run_zero_check(void *ctx, rf_error *err)
{
    (void)err;
    zero_check *z = ctx;
    z->result = count_mostly_zero(z->t);
    return RF_OK;
}

/* count_mostly_zero under the mapped-input guard: a head whose mapping was truncated is not
 * "mostly zero"; writing it fails next, with the file named (rf_writer_write). */
static bool mostly_zero(const out_tensor *t)
{
    zero_check z = {t, false};
    return rfi_mapped_guarded(run_zero_check, &z, NULL) == RF_OK && z.result;
}

static bool is_embedding(const char *name, bool gguf)
{
    if (strstr(name, "embed_tokens.weight") || strcmp(name, "token_embd.weight") == 0)
        return true;
    if (gguf)
        return false;
    size_t n = strlen(name);
    return strcmp(name, "wte.weight") == 0 || (n > 11 && strcmp(name + n - 11, ".wte.weight") == 0);
}

/* "qwen2" -> "Qwen2ForCausalLM"; llama -> LlamaForCausalLM; others capitalised
 * (docs/formats/apr.md). */
static char *hf_architecture(apr_kvlist *l, const char *arch)
{
    size_t n = strlen(arch);
    char *s = rfi_apr_kvlist_own(l, malloc(n + sizeof "ForCausalLM"));
    if (!s)
        return NULL;
    memcpy(s, arch, n);
    if (n && s[0] >= 'a' && s[0] <= 'z')
        s[0] = (char)(s[0] - 'a' + 'A');
    memcpy(s + n, "ForCausalLM", sizeof "ForCausalLM");
    return s;
}

/* The Rust Debug text of aprender's Architecture option: the variant name ("Qwen2"). */
static char *debug_arch(apr_kvlist *l, const char *arch)
{
    size_t n = strlen(arch);
    char *s = rfi_apr_kvlist_own(l, malloc(n + 1));
    if (!s)
        return NULL;
    memcpy(s, arch, n + 1);
    if (n && s[0] >= 'a' && s[0] <= 'z')
        s[0] = (char)(s[0] - 'a' + 'A');
    return s;
}

/* aprender's name default: the output file stem (file name without its last extension). */
static char *file_stem(apr_kvlist *l, const char *path)
{
    if (!path)
        return NULL;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char *s = rfi_apr_kvlist_own(l, malloc(n + 1));
    if (!s)
        return NULL;
    memcpy(s, base, n);
    s[n] = '\0';
    return s;
}

static void add_json(apr_kvlist *l, const char *key, text_buf *b)
{
    if (b->failed || !rfi_apr_kvlist_own(l, b->data)) {
        if (b->failed)
            rfi_text_buf_free(b);
        l->failed = true;
        return;
    }
    rfi_apr_kvlist_add(l, key, v_json(b->data, b->len));
    memset(b, 0, sizeof *b);
}

static rf_status synthesize(const rf_model *m, const char *path, const rf_apr_write_options *o,
                            plan *p, rf_error *err)
{
    bool gguf = rf_model_format(m) == RF_FORMAT_GGUF;
    const rf_model_config *c = rf_model_config_get(m);
    const rf_tokenizer *tok = rf_model_tokenizer(m);
    const char *arch = c->architecture;
    apr_kvlist *l = &p->kvs;
    size_t n = rf_model_n_tensors(m);
    const rf_contracts *names = gguf ? rf_contracts_default(err) : NULL;
    if (gguf && !names)
        return err ? err->status : RF_ERR_NOT_FOUND;
    p->t = calloc(n + 1, sizeof *p->t);
    if (!p->t)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const rf_tensor *t = rf_model_tensor(m, i);
        out_tensor *o_t = &p->t[p->n++];
        o_t->name = t->name;
        if (gguf) { /* aprender maps GGUF names to HF names for the Qwen families only */
            size_t cap = strlen(t->name) + 64;
            char *mapped = rfi_apr_kvlist_own(l, malloc(cap));
            if (!mapped)
                return rf_error_set(err, RF_ERR_NOMEM, "out of memory mapping tensor names");
            rf_status st = rf_contracts_apr_name(names, t->name, arch, mapped, cap, err);
            if (st != RF_OK)
                return st;
            o_t->name = mapped;
        }
        o_t->dtype = t->dtype;
        o_t->ndim = t->ndim;
        memcpy(o_t->shape, t->shape, sizeof o_t->shape);
        o_t->data = t->data;
        o_t->nbytes = t->nbytes;
    }
    qsort(p->t, p->n, sizeof *p->t, cmp_out);

    /* tied embeddings: lm_head.weight becomes a copy of the embedding (docs/formats/apr.md) */
    out_tensor *head = NULL, *embed = NULL;
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->t[i].name, "lm_head.weight") == 0 ||
            (gguf && strcmp(p->t[i].name, "output.weight") == 0))
            head = &p->t[i];
        if (!embed && is_embedding(p->t[i].name, gguf))
            embed = &p->t[i];
    }
    bool tied = false;
    if (embed && (!head || (!gguf && mostly_zero(head)))) {
        out_tensor copy = *embed;
        copy.name = "lm_head.weight";
        if (head)
            *head = copy;
        else
            p->t[p->n++] = copy;
        qsort(p->t, p->n, sizeof *p->t, cmp_out);
        tied = true;
    }

    /* tensor_shapes (a serde_json Map: sorted by name) and the parameter count */
    text_buf shapes = {0};
    uint64_t params = 0;
    rfi_text_buf_putc(&shapes, '{');
    for (size_t i = 0; i < p->n; i++) {
        uint64_t elems;
        if (rf_shape_elements(p->t[i].shape, p->t[i].ndim, &elems, err) != RF_OK) {
            rfi_text_buf_free(&shapes);
            return rf_error_set(err, RF_ERR_ARGUMENT, "tensor '%s': shape product overflows",
                                p->t[i].name);
        }
        params += elems;
        if (i && strcmp(p->t[i].name, p->t[i - 1].name) == 0)
            continue; /* reported as a duplicate by the layout check */
        if (i)
            rfi_text_buf_putc(&shapes, ',');
        rfi_json_put_cstring(&shapes, p->t[i].name);
        rfi_text_buf_puts(&shapes, ":[");
        for (int k = 0; k < p->t[i].ndim; k++) {
            if (k)
                rfi_text_buf_putc(&shapes, ',');
            rfi_apr_json_u64(&shapes, p->t[i].shape[k]);
        }
        rfi_text_buf_putc(&shapes, ']');
    }
    rfi_text_buf_putc(&shapes, '}');

    /* typed keys */
    const char *model_type = o->model_type;
    const char *name = o->name;
    if (gguf) {
        if (!model_type)
            model_type = arch ? arch : "qwen2";
        if (!name)
            name = arch;
        rfi_apr_kvlist_add(l, "description",
                           v_str("GGUF Q4_K model imported with native quantization"));
        rfi_apr_kvlist_add(l, "version", v_str("1.0.0"));
        rfi_apr_kvlist_add(l, "original_format", v_str("gguf"));
        if (arch) {
            char *hf = hf_architecture(l, arch);
            if (hf)
                rfi_apr_kvlist_add(l, "hf_architecture", v_str(hf));
            rfi_apr_kvlist_add(l, "hf_model_type", v_str(arch));
        }
    } else {
        if (!model_type)
            model_type = arch ? debug_arch(l, arch) : "Auto";
        if (!name)
            name = file_stem(l, path);
        if (!name)
            name = "model";
    }
    if (model_type)
        rfi_apr_kvlist_add(l, "model_type", v_str(model_type));
    if (name)
        rfi_apr_kvlist_add(l, "name", v_str(name));
    rfi_apr_kvlist_add(l, "param_count", v_u64(params));
    if (arch)
        rfi_apr_kvlist_add(l, "architecture", v_str(arch));
    if (c->hidden_size)
        rfi_apr_kvlist_add(l, "hidden_size", v_u64(c->hidden_size));
    if (c->n_layers)
        rfi_apr_kvlist_add(l, "num_layers", v_u64(c->n_layers));
    if (c->n_heads)
        rfi_apr_kvlist_add(l, "num_heads", v_u64(c->n_heads));
    if (c->n_kv_heads)
        rfi_apr_kvlist_add(l, "num_kv_heads", v_u64(c->n_kv_heads));
    if (c->vocab_size)
        rfi_apr_kvlist_add(l, "vocab_size", v_u64(c->vocab_size));
    if (c->intermediate_size)
        rfi_apr_kvlist_add(l, "intermediate_size", v_u64(c->intermediate_size));
    if (c->context_length)
        rfi_apr_kvlist_add(l, "max_position_embeddings", v_u64(c->context_length));
    if (c->rope_theta > 0)
        rfi_apr_kvlist_add(l, "rope_theta", v_f32(c->rope_theta));
    int rope = c->rope_type == RF_ROPE_NEOX ? 2 : c->rope_type == RF_ROPE_NORM ? 0 : -1;
    if (rope >= 0)
        rfi_apr_kvlist_add(l, "rope_type", v_u64((uint64_t)rope));
    if (c->rms_norm_eps > 0)
        rfi_apr_kvlist_add(l, "rms_norm_eps", v_f32(c->rms_norm_eps));
    /* head_dim only when it is not hidden / heads (Qwen3-style), which readers derive */
    if (c->head_dim && c->n_heads && c->head_dim * c->n_heads != c->hidden_size)
        rfi_apr_kvlist_add(l, "head_dim", v_u64(c->head_dim));
    if (c->chat_template)
        rfi_apr_kvlist_add(l, "chat_template", v_str(c->chat_template));

    /* custom keys */
    add_json(l, "tensor_shapes", &shapes);
    if (tied)
        rfi_apr_kvlist_add(l, "tied_embeddings", v_bool(true));
    if (!gguf) { /* SafeTensors __metadata__ (string pairs not from the companion files) */
        text_buf meta = {0};
        size_t count = 0;
        for (size_t i = 0; i < rf_model_n_kv(m); i++) {
            const rf_kv *kv = rf_model_kv(m, i);
            if (kv->value.type != RF_VALUE_STRING || strncmp(kv->key, "hf.", 3) == 0)
                continue;
            rfi_text_buf_puts(&meta, count++ ? "," : "{");
            rfi_json_put_cstring(&meta, kv->key);
            rfi_text_buf_putc(&meta, ':');
            rfi_json_put_string(&meta, kv->value.as.str.data, (size_t)kv->value.as.str.len);
        }
        if (count) {
            rfi_text_buf_putc(&meta, '}');
            /* re-sorted as a serde_json Map */
            apr_json j;
            if (!meta.failed && rfi_apr_json_parse((const uint8_t *)meta.data, meta.len, 0,
                                                   "source_metadata", &j, err) == RF_OK) {
                text_buf sorted = {0};
                rfi_apr_json_write(&sorted, &j, 0);
                rfi_apr_json_free(&j);
                add_json(l, "source_metadata", &sorted);
            } else {
                l->failed = true;
            }
        }
        rfi_text_buf_free(&meta);
    }
    if (tok) {
        if (tok->n_tokens) {
            rfi_apr_kvlist_add(l, "tokenizer.vocabulary", v_strings(l, tok->tokens, tok->n_tokens));
            rfi_apr_kvlist_add(l, "tokenizer.vocab_size", v_u64(tok->n_tokens));
        }
        if (tok->model) {
            if (gguf)
                rfi_apr_kvlist_add(l, "tokenizer.model", v_str(tok->model));
            else /* the tokenizer.json model type: byte-level BPE is "bpe" */
                rfi_apr_kvlist_add(l, "tokenizer.model_type",
                                   v_str(strcmp(tok->model, "gpt2") == 0 ? "bpe" : tok->model));
        }
        if (tok->pre)
            rfi_apr_kvlist_add(l, "tokenizer.pre_type", v_str(tok->pre));
        if (tok->n_merges)
            rfi_apr_kvlist_add(l, "tokenizer.merges", v_strings(l, tok->merges, tok->n_merges));
        if (gguf && tok->token_types && tok->n_tokens) {
            rf_value v = {.type = RF_VALUE_ARRAY};
            rf_value *arr = rfi_apr_kvlist_own(l, malloc(tok->n_tokens * sizeof *arr));
            if (arr) {
                for (uint64_t i = 0; i < tok->n_tokens; i++)
                    arr[i] = v_i64(tok->token_types[i]);
                v.as.arr.elem_type = RF_VALUE_I64;
                v.as.arr.count = tok->n_tokens;
                v.as.arr.items = arr;
                rfi_apr_kvlist_add(l, "tokenizer.token_type", v);
            }
        }
    }
    if (c->bos_token_id >= 0)
        rfi_apr_kvlist_add(l, "tokenizer.bos_token_id", v_u64((uint64_t)c->bos_token_id));
    if (c->eos_token_id >= 0)
        rfi_apr_kvlist_add(l, "tokenizer.eos_token_id", v_u64((uint64_t)c->eos_token_id));
    if (gguf) {
        if (c->pad_token_id >= 0)
            rfi_apr_kvlist_add(l, "tokenizer.padding_token_id", v_u64((uint64_t)c->pad_token_id));
        const rf_kv *add_bos = rf_model_find_kv(m, "tokenizer.ggml.add_bos_token");
        if (add_bos && add_bos->value.type == RF_VALUE_BOOL)
            rfi_apr_kvlist_add(l, "tokenizer.add_bos_token", add_bos->value);
        const rf_kv *scores = rf_model_find_kv(m, "tokenizer.ggml.scores");
        if (scores && scores->value.type == RF_VALUE_ARRAY)
            rfi_apr_kvlist_add(l, "tokenizer.scores", scores->value);
        if (c->chat_template)
            rfi_apr_kvlist_add(l, "tokenizer.chat_template", v_str(c->chat_template));
        /* the GGUF path duplicates the config under "model." (f32 values widened to f64) */
        if (arch)
            rfi_apr_kvlist_add(l, "model.architecture", v_str(arch));
        if (c->hidden_size)
            rfi_apr_kvlist_add(l, "model.hidden_size", v_u64(c->hidden_size));
        if (c->n_layers)
            rfi_apr_kvlist_add(l, "model.num_layers", v_u64(c->n_layers));
        if (c->n_heads)
            rfi_apr_kvlist_add(l, "model.num_heads", v_u64(c->n_heads));
        if (c->n_kv_heads)
            rfi_apr_kvlist_add(l, "model.num_kv_heads", v_u64(c->n_kv_heads));
        if (c->vocab_size)
            rfi_apr_kvlist_add(l, "model.vocab_size", v_u64(c->vocab_size));
        if (c->intermediate_size)
            rfi_apr_kvlist_add(l, "model.intermediate_size", v_u64(c->intermediate_size));
        if (c->context_length)
            rfi_apr_kvlist_add(l, "model.max_position_embeddings", v_u64(c->context_length));
        if (c->rope_theta > 0)
            rfi_apr_kvlist_add(l, "model.rope_theta", v_f64((double)(float)c->rope_theta));
        if (c->rms_norm_eps > 0)
            rfi_apr_kvlist_add(l, "model.rms_norm_eps", v_f64((double)(float)c->rms_norm_eps));
        if (rope >= 0)
            rfi_apr_kvlist_add(l, "model.rope_type", v_u64((uint64_t)rope));
    }
    return RF_OK;
}

/* ---- plan ----------------------------------------------------------------------------------- */

static rf_status keep(const rf_model *m, plan *p, rf_error *err)
{
    size_t n = rf_model_n_tensors(m);
    p->t = calloc(n ? n : 1, sizeof *p->t);
    if (!p->t)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const rf_tensor *t = rf_model_tensor(m, i);
        out_tensor *o = &p->t[p->n++];
        o->name = t->name;
        o->dtype = t->dtype;
        o->ndim = t->ndim;
        memcpy(o->shape, t->shape, sizeof o->shape);
        o->data = t->data;
        o->nbytes = t->nbytes;
    }
    qsort(p->t, p->n, sizeof *p->t, cmp_out);
    for (size_t i = 0; i < rf_model_n_kv(m); i++) {
        const rf_kv *kv = rf_model_kv(m, i);
        rfi_apr_kvlist_add(&p->kvs, kv->key, kv->value);
    }
    return RF_OK;
}

/* Checks every tensor against what APR can hold and computes the section sizes. */
static rf_status check_tensors(plan *p, rf_error *err)
{
    p->index_bytes = 0;
    p->data_bytes = 0;
    for (size_t i = 0; i < p->n; i++) {
        const out_tensor *t = &p->t[i];
        if (!rf_format_holds(RF_FORMAT_APR, t->dtype)) {
            char held[256];
            rf_format_held_types(RF_FORMAT_APR, ~0u, 0, held, sizeof held);
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "tensor '%s' has dtype %s, which APR cannot hold (APR holds %s): "
                                "convert it first",
                                t->name, rf_dtype_name(t->dtype), held);
        }
        size_t len = strlen(t->name);
        if (len > RF_APR_MAX_NAME_LEN)
            return rf_error_set(err, RF_ERR_LIMIT,
                                "tensor '%.64s...': name of %zu bytes exceeds APR's %d (aprender "
                                "would truncate it)",
                                t->name, len, RF_APR_MAX_NAME_LEN);
        if (!rf_utf8_valid(t->name, len))
            return rf_error_set(err, RF_ERR_ARGUMENT, "tensor name '%s' is not valid UTF-8",
                                t->name);
        if (i && strcmp(t->name, p->t[i - 1].name) == 0)
            return rf_error_set(err, RF_ERR_ARGUMENT, "two tensors are named '%s'", t->name);
        if (t->ndim < 0 || t->ndim > RF_APR_MAX_DIMS)
            return rf_error_set(err, RF_ERR_LIMIT,
                                "tensor '%s': %d dimensions, APR holds at most %d", t->name,
                                t->ndim, RF_APR_MAX_DIMS);
        uint64_t expected;
        rf_status st = rf_apr_tensor_bytes(t->dtype, t->shape, t->ndim, &expected, err);
        if (st != RF_OK) {
            rf_error_prefix(err, "tensor '%s'", t->name);
            return st;
        }
        if (expected != t->nbytes)
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "tensor '%s': %llu bytes given, but %s of this shape takes %llu in "
                                "APR",
                                t->name, (unsigned long long)t->nbytes, rf_dtype_name(t->dtype),
                                (unsigned long long)expected);
        if (t->nbytes && !t->data)
            return rf_error_set(err, RF_ERR_ARGUMENT, "tensor '%s' has no data", t->name);
        p->index_bytes += 20 + len + 8u * (uint64_t)t->ndim;
        if (__builtin_add_overflow(p->data_bytes, align64(t->nbytes), &p->data_bytes))
            return rf_error_set(err, RF_ERR_OVERFLOW, "total tensor size overflows");
    }
    if (p->n > UINT32_MAX)
        return rf_error_set(err, RF_ERR_LIMIT, "%zu tensors exceed APR's u32 tensor count", p->n);
    return RF_OK;
}

static rf_status build_plan(const rf_model *m, const char *path, const rf_apr_write_options *o,
                            plan *p, rf_error *err)
{
    memset(p, 0, sizeof *p);
    rf_apr_metadata_source src = o->metadata;
    if (src == RF_APR_METADATA_AUTO) {
        rf_format f = rf_model_format(m);
        src = f == RF_FORMAT_APR || f == RF_FORMAT_APR2_MAGIC ? RF_APR_METADATA_KEEP
                                                              : RF_APR_METADATA_SYNTHESIZE;
    }
    rf_status st = src == RF_APR_METADATA_KEEP ? keep(m, p, err) : synthesize(m, path, o, p, err);
    for (size_t i = 0; st == RF_OK && i < o->n_extra; i++)
        rfi_apr_kvlist_add(&p->kvs, o->extra[i].key, o->extra[i].value);
    if (st == RF_OK)
        st = check_tensors(p, err);
    if (st == RF_OK)
        st = rfi_apr_metadata_write(&p->kvs, &p->meta, err);
    if (st == RF_OK && p->meta.len > RF_APR_MAX_METADATA_SIZE)
        st = rf_error_set(err, RF_ERR_LIMIT,
                          "metadata JSON of %zu bytes exceeds APR's 16 MiB limit (aprender's "
                          "MAX_METADATA_SIZE)",
                          p->meta.len);
    return st;
}

rf_status rf_apr_metadata_json(const rf_model *m, const char *path,
                               const rf_apr_write_options *opts, char **json, size_t *len,
                               rf_error *err)
{
    static const rf_apr_write_options defaults = {0};
    plan p;
    rf_status st = build_plan(m, path, opts ? opts : &defaults, &p, err);
    *json = NULL;
    *len = 0;
    if (st == RF_OK) {
        *json = p.meta.data ? p.meta.data : calloc(1, 1);
        *len = p.meta.len;
        p.meta.data = NULL;
    }
    plan_free(&p);
    return st;
}

/* ---- bytes ---------------------------------------------------------------------------------- */

/* Output: the atomic writer, or a memory image (compressed files are built in memory first). */
typedef struct sink {
    rf_writer *w;
    uint8_t *mem;
    uint64_t pos;
    const write_hook *hook; /* tensor bytes are released through it once written */
} sink;

static rf_status sink_put(sink *s, const void *p, uint64_t n, rf_error *err)
{
    if (n == 0) /* an empty tensor may have no data pointer */
        return RF_OK;
    if (s->w)
        return rf_writer_write(s->w, p, (size_t)n, err);
    memcpy(s->mem + s->pos, p, (size_t)n);
    s->pos += n;
    return RF_OK;
}

static rf_status sink_pad(sink *s, rf_error *err)
{
    static const uint8_t zeros[64];
    uint64_t at = s->w ? rf_writer_offset(s->w) : s->pos;
    uint64_t pad = align64(at) - at;
    return pad ? sink_put(s, zeros, pad, err) : RF_OK;
}

static void make_header(const plan *p, uint16_t flags, uint8_t out[RF_APR_HEADER_SIZE])
{
    rf_apr_header h = {.magic = {'A', 'P', 'R', 0}, .version_major = 2, .version_minor = 0};
    h.flags = flags;
    h.tensor_count = (uint32_t)p->n;
    h.metadata_offset = RF_APR_HEADER_SIZE;
    h.metadata_size = (uint32_t)p->meta.len;
    h.tensor_index_offset = RF_APR_HEADER_SIZE + align64(p->meta.len);
    h.data_offset = h.tensor_index_offset + align64(p->index_bytes);
    rf_apr_header_encode(&h, out);
    rf_store_le32(out + 40, rf_apr_header_crc(out)); /* computed last, over the final fields */
}

/* Header, metadata, index, data; the footer is added by the caller. */
static rf_status emit_body(const plan *p, const uint8_t header[RF_APR_HEADER_SIZE], sink *s,
                           rf_error *err)
{
    rf_status st = sink_put(s, header, RF_APR_HEADER_SIZE, err);
    if (st == RF_OK)
        st = sink_put(s, p->meta.data, p->meta.len, err);
    if (st == RF_OK)
        st = sink_pad(s, err);
    uint64_t offset = 0;
    for (size_t i = 0; i < p->n && st == RF_OK; i++) {
        const out_tensor *t = &p->t[i];
        uint8_t e[2 + RF_APR_MAX_NAME_LEN + 2 + 8 * RF_APR_MAX_DIMS + 16];
        size_t len = strlen(t->name), k = 0;
        rf_store_le16(e, (uint16_t)len);
        memcpy(e + 2, t->name, len);
        k = 2 + len;
        e[k++] = (uint8_t)rf_dtype_get(t->dtype)->apr_code;
        e[k++] = (uint8_t)t->ndim;
        for (int d = 0; d < t->ndim; d++, k += 8)
            rf_store_le64(e + k, t->shape[d]);
        rf_store_le64(e + k, offset);
        rf_store_le64(e + k + 8, t->nbytes);
        k += 16;
        offset += align64(t->nbytes);
        st = sink_put(s, e, k, err);
    }
    if (st == RF_OK)
        st = sink_pad(s, err);
    for (size_t i = 0; i < p->n && st == RF_OK; i++) {
        const uint8_t *data = p->t[i].data;
        for (uint64_t at = 0; st == RF_OK && at < p->t[i].nbytes; at += WRITE_HOOK_PIECE) {
            uint64_t k = p->t[i].nbytes - at;
            k = k < WRITE_HOOK_PIECE ? k : WRITE_HOOK_PIECE;
            st = sink_put(s, data + at, k, err);
            rfi_write_hook_release(s->hook, data + at, k);
        }
        if (st == RF_OK)
            st = sink_pad(s, err);
    }
    return st;
}

/* ---- verification: the finished temp file is read back before it replaces anything --------- */

typedef struct verify_ctx {
    const plan *p;
    const write_hook *hook;
} verify_ctx;

static rf_status verify(const char *temp_path, void *ctx, rf_error *err)
{
    const plan *p = ((const verify_ctx *)ctx)->p;
    rf_model *m = rf_apr_open_model(temp_path, NULL, err);
    if (!m) {
        rf_error_prefix(err, "verification of the written APR failed");
        return RF_ERR_WRITE;
    }
    rf_status st = RF_OK;
    if (rf_model_n_tensors(m) != p->n)
        st = rf_error_set(err, RF_ERR_WRITE, "%s: verification: %zu tensors read back, %zu written",
                          temp_path, rf_model_n_tensors(m), p->n);
    for (size_t i = 0; i < p->n && st == RF_OK; i++) {
        const out_tensor *t = &p->t[i];
        const rf_tensor *r = rf_model_tensor(m, i);
        /* the bytes: the strict reader verified the footer CRC over the whole file, and the
         * writer's running CRC of what it wrote is that footer, so the file holds exactly the
         * bytes written; here the index must say where they are */
        bool same = strcmp(r->name, t->name) == 0 && r->dtype == t->dtype && r->ndim == t->ndim &&
                    memcmp(r->shape, t->shape, sizeof(uint64_t) * (size_t)t->ndim) == 0 &&
                    r->nbytes == t->nbytes;
        if (!same)
            st = rf_error_set(err, RF_ERR_WRITE,
                              "%s: verification: tensor '%s' reads back differently", temp_path,
                              t->name);
    }
    if (st == RF_OK) { /* the metadata must survive a read: its re-serialization is identical */
        apr_kvlist kvs = {0};
        for (size_t i = 0; i < rf_model_n_kv(m); i++)
            rfi_apr_kvlist_add(&kvs, rf_model_kv(m, i)->key, rf_model_kv(m, i)->value);
        text_buf again = {0};
        st = rfi_apr_metadata_write(&kvs, &again, err);
        if (st == RF_OK &&
            (again.len != p->meta.len || memcmp(again.data, p->meta.data, again.len)))
            st = rf_error_set(err, RF_ERR_WRITE,
                              "%s: verification: the metadata does not re-serialize to the bytes "
                              "written",
                              temp_path);
        rfi_text_buf_free(&again);
        rfi_apr_kvlist_free(&kvs);
    }
    rf_model_free(m);
    return st;
}

rf_status rf_apr_write(const rf_model *m, const char *path, const rf_apr_write_options *opts,
                       rf_error *err)
{
    return rfi_apr_write_hooked(m, path, opts, NULL, err);
}

rf_status rfi_apr_write_hooked(const rf_model *m, const char *path,
                               const rf_apr_write_options *opts, const write_hook *hook,
                               rf_error *err)
{
    static const rf_apr_write_options defaults = {0};
    if (!opts)
        opts = &defaults;
    if (!m || !path)
        return rf_error_set(err, RF_ERR_ARGUMENT, "rf_apr_write: model and path are required");
    plan p;
    rf_status st = build_plan(m, path, opts, &p, err);
    if (st != RF_OK) {
        rf_error_prefix(err, "%s", path);
        plan_free(&p);
        return st;
    }
    uint16_t flags = RF_APR_FLAG_ROW_MAJOR | opts->extra_flags;
    flags &= (uint16_t) ~(RF_APR_FLAG_LZ4 | RF_APR_FLAG_ZSTD | RF_APR_FLAG_COLUMN_MAJOR);
    if (opts->compression == RF_APR_COMPRESSION_LZ4)
        flags |= RF_APR_FLAG_LZ4;
    else if (opts->compression == RF_APR_COMPRESSION_ZSTD)
        flags |= RF_APR_FLAG_ZSTD;
    uint8_t header[RF_APR_HEADER_SIZE];
    make_header(&p, flags, header);
    uint64_t body = rf_load_le64(header + 32) + p.data_bytes;

    rf_writer *w = rf_writer_open(path, err);
    if (!w) {
        plan_free(&p);
        return RF_ERR_WRITE;
    }
    if (opts->compression == RF_APR_COMPRESSION_NONE) {
        sink s = {.w = w, .hook = hook};
        st = emit_body(&p, header, &s, err);
        uint8_t footer[4];
        rf_store_le32(footer, rf_writer_crc32(w));
        if (st == RF_OK)
            st = rf_writer_write(w, footer, 4, err);
    } else {
        /* docs/formats/apr.md: the uncompressed image (flag already set, footer over the image),
         * then everything after the header compressed as one block or frame */
        uint8_t *image = body + 4 <= SIZE_MAX ? malloc((size_t)(body + 4)) : NULL;
        if (!image) {
            st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory for a %llu-byte image", path,
                              (unsigned long long)(body + 4));
        } else {
            sink s = {.mem = image};
            st = emit_body(&p, header, &s, err);
            rf_store_le32(image + body, rf_crc32(0, image, (size_t)body));
            uint8_t *packed = NULL;
            uint64_t packed_len = 0;
            if (st == RF_OK)
                st = rfi_apr_compress(opts->compression, opts->zstd_level,
                                      image + RF_APR_HEADER_SIZE, body + 4 - RF_APR_HEADER_SIZE,
                                      &packed, &packed_len, err);
            if (st == RF_OK)
                st = rf_writer_write(w, header, RF_APR_HEADER_SIZE, err);
            if (st == RF_OK)
                st = rf_writer_write(w, packed, (size_t)packed_len, err);
            free(packed);
            free(image);
        }
    }
    if (st != RF_OK) {
        rf_writer_abort(w);
        plan_free(&p);
        return st;
    }
    verify_ctx ctx = {&p, hook};
    st = rfi_write_hook_commit(w, path, verify, &ctx, hook, err);
    plan_free(&p);
    return st;
}
