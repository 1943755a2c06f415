/* Side B run by llama.cpp itself (docs/verifier.md, "llama.cpp as side B"): libllama is loaded
 * at run time with dlopen (Rosetta never needs llama.cpp to build), the prompt decoded in one
 * batch with logits at every position, and the per-layer tensors taken from llama.cpp's graph
 * evaluation callback (cb_eval) by node name:
 *
 *   llama.cpp node (layer N)       Rosetta stage     llama.cpp node          Rosetta stage
 *   embd (older: inp_embd)         embedding         ffn_inp-N               attn_residual
 *   attn_norm-N                    attn_norm         ffn_norm-N              ffn_norm
 *   Qcur-N / Kcur-N / Vcur-N       q / k / v         ffn_gate-N / ffn_up-N   gate / up
 *     (the MUL_MAT or bias ADD)                      ffn_swiglu-N            swiglu
 *   Qcur-N / Kcur-N (ROPE)         q_rope / k_rope   ffn_out-N               down
 *   kqv_out-N                      attn_out          l_out-N                 layer_out
 *   result_norm                    final_norm
 *
 * (names from the Qwen2 graph builder and llm_graph_context, src/models/qwen2.cpp and
 * src/llama-graph.cpp of the pinned llama.cpp; o_proj's product has no name there.)
 * Not for: Rosetta's own engine (capture.c). */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture_internal.h"
#include "llama_abi.h"

typedef struct rl_api {
    void *lib;
    char path[1024];
    rl_backend_init_fn backend_init;
    rl_log_set_fn log_set;
    rl_model_default_params_fn model_default_params;
    rl_context_default_params_fn context_default_params;
    rl_model_load_from_file_fn model_load_from_file;
    rl_model_free_fn model_free;
    rl_init_from_model_fn init_from_model;
    rl_free_fn free_ctx;
    rl_model_get_vocab_fn model_get_vocab;
    rl_vocab_n_tokens_fn vocab_n_tokens;
    rl_model_int_fn model_n_layer, model_n_embd, model_n_head, model_n_head_kv;
    rl_tokenize_fn tokenize;
    rl_batch_init_fn batch_init;
    rl_batch_free_fn batch_free;
    rl_batch_get_one_fn batch_get_one;
    rl_decode_fn decode;
    rl_get_logits_ith_fn get_logits_ith;
    rl_tensor_name_fn tensor_name, op_desc;
    rl_nelements_fn nelements;
    rl_is_contiguous_fn is_contiguous;
    rl_tensor_get_fn tensor_get;
} rl_api;

static rl_api g_api;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_last_log[512];

static void log_cb(int level, const char *text, void *user)
{
    (void)user;
    /* keep the last error-level line (GGML_LOG_LEVEL_ERROR = 4) for our messages */
    if (level == 4 && text) {
        snprintf(g_last_log, sizeof g_last_log, "%s", text);
        size_t n = strlen(g_last_log);
        while (n && (g_last_log[n - 1] == '\n' || g_last_log[n - 1] == '\r'))
            g_last_log[--n] = '\0';
    }
}

#define SYM(field, name)                                                                           \
    do {                                                                                           \
        *(void **)&api->field = dlsym(api->lib, name);                                             \
        if (!api->field)                                                                           \
            return rf_error_set(err, RF_ERR_UNSUPPORTED,                                           \
                                "%s has no symbol %s: not the "                                    \
                                "pinned llama.cpp (0.3.36)",                                       \
                                api->path, name);                                                  \
    } while (0)

/* The defaults of the pinned llama.cpp: a library whose structs differ would return other
 * values here (or garbage), so a mismatch refuses it instead of passing wrong layouts. */
static rf_status check_abi(rl_api *api, rf_error *err)
{
    rl_model_params mp = api->model_default_params();
    rl_context_params cp = api->context_default_params();
    bool ok = mp.devices == NULL && mp.n_gpu_layers == -1 && mp.main_gpu == 0 && !mp.vocab_only &&
              mp.use_extra_bufts && !mp.load_mtp && cp.n_ctx == 512 && cp.n_batch == 2048 &&
              cp.n_ubatch == 512 && cp.n_seq_max == 1 && cp.flash_attn_type == -1 &&
              cp.rope_freq_base == 0.0f && cp.yarn_ext_factor == -1.0f &&
              cp.defrag_thold == -1.0f && cp.cb_eval == NULL && cp.type_k == 1 && cp.type_v == 1 &&
              cp.offload_kqv && !cp.kv_unified && cp.samplers == NULL && cp.n_samplers == 0 &&
              cp.ctx_other == NULL;
    if (!ok)
        return rf_error_set(err, RF_ERR_UNSUPPORTED,
                            "%s: llama_context_params / llama_model_params defaults differ from "
                            "the pinned llama.cpp 0.3.36: another ABI, refused",
                            api->path);
    return RF_OK;
}

static rf_status load_symbols(rl_api *api, rf_error *err)
{
    SYM(backend_init, "llama_backend_init");
    SYM(log_set, "llama_log_set");
    SYM(model_default_params, "llama_model_default_params");
    SYM(context_default_params, "llama_context_default_params");
    SYM(model_load_from_file, "llama_model_load_from_file");
    SYM(model_free, "llama_model_free");
    SYM(init_from_model, "llama_init_from_model");
    SYM(free_ctx, "llama_free");
    SYM(model_get_vocab, "llama_model_get_vocab");
    SYM(vocab_n_tokens, "llama_vocab_n_tokens");
    SYM(model_n_layer, "llama_model_n_layer");
    SYM(model_n_embd, "llama_model_n_embd");
    SYM(model_n_head, "llama_model_n_head");
    SYM(model_n_head_kv, "llama_model_n_head_kv");
    SYM(tokenize, "llama_tokenize");
    SYM(batch_init, "llama_batch_init");
    SYM(batch_free, "llama_batch_free");
    SYM(batch_get_one, "llama_batch_get_one");
    SYM(decode, "llama_decode");
    SYM(get_logits_ith, "llama_get_logits_ith");
    SYM(tensor_name, "ggml_get_name");
    SYM(op_desc, "ggml_op_desc");
    SYM(nelements, "ggml_nelements");
    SYM(is_contiguous, "ggml_is_contiguous");
    SYM(tensor_get, "ggml_backend_tensor_get");
    return check_abi(api, err);
}

/* Loads libllama once per process (kept loaded: ggml's globals do not survive dlclose). */
static const rl_api *load_llama(const char *library, rf_error *err)
{
    pthread_mutex_lock(&g_lock);
    if (g_api.lib) {
        pthread_mutex_unlock(&g_lock);
        return &g_api;
    }
    char tried[2048] = "";
    const char *env = getenv("ROSETTA_LLAMA_LIB"), *build = getenv("ROSETTA_BUILD");
    char pinned[1024] = "";
    if (build && *build)
        snprintf(pinned, sizeof pinned, "%s/oracle/llama/install/lib/libllama.so", build);
    const char *candidates[4] = {library, library ? NULL : env, library ? NULL : pinned,
                                 library ? NULL : "libllama.so"};
    for (int i = 0; i < 4; i++) {
        const char *c = candidates[i];
        if (!c || !*c)
            continue;
        void *lib = dlopen(c, RTLD_NOW | RTLD_LOCAL);
        size_t used = strlen(tried);
        if (!lib) {
            const char *why = dlerror();
            snprintf(tried + used, sizeof tried - used, "%s%s (%s)", used ? "; " : "", c,
                     why ? why : "not loadable");
            continue;
        }
        rl_api api = {.lib = lib};
        snprintf(api.path, sizeof api.path, "%s", c);
        rl_api *p = &api;
        if (load_symbols(p, err) != RF_OK) {
            dlclose(lib);
            pthread_mutex_unlock(&g_lock);
            return NULL;
        }
        api.log_set(log_cb, NULL);
        api.backend_init();
        g_api = api;
        pthread_mutex_unlock(&g_lock);
        return &g_api;
    }
    pthread_mutex_unlock(&g_lock);
    rf_error_set(err, RF_ERR_NOT_FOUND,
                 "llama.cpp's libllama could not be loaded (set ROSETTA_LLAMA_LIB, or build the "
                 "pinned one with scripts/build-llama-oracle); tried: %s",
                 *tried ? tried : "nothing (no --llama-lib, ROSETTA_LLAMA_LIB or ROSETTA_BUILD)");
    return NULL;
}

/* ---- the evaluation callback ------------------------------------------------------------- */

typedef struct cb_state {
    const rl_api *api;
    ri_capture *c;
    uint32_t n_tokens;
    bool active, failed;
} cb_state;

/* The stage a node stands for, by its name and op (see the table at the top). */
static bool map_node(const char *name, const char *op, ri_stage *stage, int32_t *layer)
{
    static const struct {
        const char *base;
        ri_stage stage;
    } plain[] = {
        {"attn_norm", RI_STAGE_ATTN_NORM},   {"kqv_out", RI_STAGE_ATTN_OUT},
        {"ffn_inp", RI_STAGE_ATTN_RESIDUAL}, {"ffn_norm", RI_STAGE_FFN_NORM},
        {"ffn_gate", RI_STAGE_GATE},         {"ffn_up", RI_STAGE_UP},
        {"ffn_swiglu", RI_STAGE_SWIGLU},     {"ffn_gate_par", RI_STAGE_SWIGLU},
        {"ffn_out", RI_STAGE_DOWN},          {"l_out", RI_STAGE_LAYER_OUT},
    };
    if (!name)
        return false;
    if (strcmp(name, "embd") == 0 || strcmp(name, "inp_embd") == 0) {
        *stage = RI_STAGE_EMBEDDING;
        *layer = -1;
        return true;
    }
    if (strcmp(name, "result_norm") == 0) {
        *stage = RI_STAGE_FINAL_NORM;
        *layer = -1;
        return true;
    }
    const char *dash = strrchr(name, '-');
    if (!dash || dash[1] < '0' || dash[1] > '9')
        return false;
    char *end;
    long l = strtol(dash + 1, &end, 10);
    if (*end || l < 0 || l > 100000)
        return false;
    size_t len = (size_t)(dash - name);
    *layer = (int32_t)l;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (strlen(plain[i].base) == len && strncmp(name, plain[i].base, len) == 0) {
            *stage = plain[i].stage;
            return true;
        }
    bool proj = op && (strcmp(op, "MUL_MAT") == 0 || strcmp(op, "ADD") == 0);
    bool rope = op && strcmp(op, "ROPE") == 0;
    if (len == 4 && strncmp(name, "Qcur", 4) == 0 && (proj || rope)) {
        *stage = rope ? RI_STAGE_Q_ROPE : RI_STAGE_Q;
        return true;
    }
    if (len == 4 && strncmp(name, "Kcur", 4) == 0 && (proj || rope)) {
        *stage = rope ? RI_STAGE_K_ROPE : RI_STAGE_K;
        return true;
    }
    if (len == 4 && strncmp(name, "Vcur", 4) == 0 && proj) {
        *stage = RI_STAGE_V;
        return true;
    }
    return false;
}

static bool eval_cb(void *t, bool ask, void *user)
{
    cb_state *s = user;
    if (!s->active || s->failed)
        return !ask;
    const rl_api *api = s->api;
    ri_stage stage;
    int32_t layer;
    if (!map_node(api->tensor_name(t), api->op_desc(t), &stage, &layer))
        return !ask;
    if (ask)
        return true;
    const rl_tensor_head *h = t;
    int64_t n = api->nelements(t);
    if (h->type != RL_GGML_TYPE_F32 || !api->is_contiguous(t) || n <= 0 || n % s->n_tokens != 0)
        return true; /* a layout this capture does not read: left out */
    uint32_t cols = (uint32_t)(n / s->n_tokens);
    long slot = rcap_slot(s->c, stage, layer);
    if (slot < 0)
        return true;
    if (s->c->slots[slot].data && s->c->slots[slot].cols != cols)
        return true;
    float *dst = rcap_alloc_slot(s->c, stage, layer, s->n_tokens, cols);
    if (!dst) {
        s->failed = true;
        return true;
    }
    api->tensor_get(t, dst, 0, (size_t)n * sizeof(float));
    return true;
}

/* ---- the run ------------------------------------------------------------------------------- */

static int32_t argmax_row(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

ri_capture *ri_capture_run_llama(const char *gguf_path, const char *library, const char *text,
                                 size_t len, const ri_capture_params *params, rf_error *err)
{
    ri_capture_params p = params ? *params : ri_capture_params_default();
    if (!gguf_path || !text || len > INT32_MAX) {
        rf_error_set(err, RF_ERR_ARGUMENT, "no model or no prompt");
        return NULL;
    }
    /* What the file holds (precision level, dtypes) comes from Rosetta's reader. */
    rf_model *src = rf_model_open(gguf_path, NULL, err);
    if (!src)
        return NULL;
    if (rf_model_format(src) != RF_FORMAT_GGUF) {
        rf_error_set(err, RF_ERR_UNSUPPORTED, "%s: llama.cpp reads GGUF files only", gguf_path);
        rf_model_free(src);
        return NULL;
    }
    const rl_api *api = load_llama(library, err);
    if (!api) {
        rf_model_free(src);
        return NULL;
    }
    g_last_log[0] = '\0';
    rl_model_params mp = api->model_default_params();
    mp.n_gpu_layers = 0;
    void *model = api->model_load_from_file(gguf_path, mp);
    if (!model) {
        rf_error_set(err, RF_ERR_FORMAT, "%s: llama.cpp cannot load it%s%s", gguf_path,
                     *g_last_log ? ": " : "", g_last_log);
        rf_model_free(src);
        return NULL;
    }
    const void *vocab = api->model_get_vocab(model);
    int32_t cap_ids = (int32_t)len + 16, n_ids;
    rl_token *ids = malloc((size_t)cap_ids * sizeof *ids);
    ri_capture *c = NULL;
    void *ctx = NULL;
    rl_batch batch = {0};
    bool batch_made = false;
    if (!ids) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        goto done;
    }
    n_ids = api->tokenize(vocab, text, (int32_t)len, ids, cap_ids, false, true);
    if (n_ids <= 0) {
        rf_error_set(err, RF_ERR_ARGUMENT, "llama.cpp tokenized the prompt to %d tokens", n_ids);
        goto done;
    }
    if ((size_t)n_ids + p.n_greedy > 4096) {
        rf_error_set(err, RF_ERR_LIMIT, "%d prompt tokens + %u continuation tokens exceed 4096",
                     n_ids, p.n_greedy);
        goto done;
    }
    ri_model_info info = {0};
    info.n_vocab = (uint32_t)api->vocab_n_tokens(vocab);
    info.n_layers = (uint32_t)api->model_n_layer(model);
    info.n_embd = (uint32_t)api->model_n_embd(model);
    info.n_heads = (uint32_t)api->model_n_head(model);
    info.n_kv_heads = (uint32_t)api->model_n_head_kv(model);
    info.head_dim = info.n_heads ? info.n_embd / info.n_heads : 0;
    const rf_model_config *cfg = rf_model_config_get(src);
    if (cfg->head_dim)
        info.head_dim = (uint32_t)cfg->head_dim;
    info.n_ff = (uint32_t)cfg->intermediate_size;
    if (!(c = rcap_new(&info, (size_t)n_ids))) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(c->tokens, ids, (size_t)n_ids * sizeof *ids);
    c->engine = strdup("llama.cpp");
    c->label = strdup(gguf_path);
    c->prompt = strndup(text, len);
    c->rounded_activations = true;
    c->greedy = calloc(p.n_greedy ? p.n_greedy : 1, sizeof *c->greedy);
    float *logits = rcap_alloc_slot(c, RI_STAGE_LOGITS, -1, (uint32_t)n_ids, info.n_vocab);
    if (!c->engine || !c->label || !c->prompt || !c->greedy || !logits ||
        rcap_level_from_source(c, src, err) != RF_OK) {
        if (!c->engine || !c->label || !c->prompt || !c->greedy || !logits)
            rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        ri_capture_free(c);
        c = NULL;
        goto done;
    }
    cb_state state = {api, c, (uint32_t)n_ids, !p.no_stages, false};
    rl_context_params cp = api->context_default_params();
    uint32_t n_ctx = (uint32_t)n_ids + p.n_greedy + 1;
    cp.n_ctx = n_ctx < 256 ? 256 : n_ctx;
    cp.n_batch = cp.n_ubatch = (uint32_t)n_ids;
    int threads = p.n_threads > 0 ? p.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    cp.n_threads = cp.n_threads_batch = threads > 0 ? threads : 1;
    cp.flash_attn_type = 0; /* disabled: the product and softmax are separate nodes */
    cp.type_k = cp.type_v = RL_GGML_TYPE_F32;
    cp.cb_eval = eval_cb;
    cp.cb_eval_user_data = &state;
    if (!(ctx = api->init_from_model(model, cp))) {
        rf_error_set(err, RF_ERR_FORMAT, "%s: llama.cpp cannot create a context%s%s", gguf_path,
                     *g_last_log ? ": " : "", g_last_log);
        goto fail;
    }
    batch = api->batch_init(n_ids, 0, 1);
    batch_made = true;
    for (int32_t i = 0; i < n_ids; i++) {
        batch.token[i] = ids[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n_ids;
    if (api->decode(ctx, batch) != 0 || state.failed) {
        rf_error_set(err, state.failed ? RF_ERR_NOMEM : RF_ERR_FORMAT,
                     "%s: llama_decode of the prompt failed%s%s", gguf_path,
                     *g_last_log ? ": " : "", g_last_log);
        goto fail;
    }
    for (int32_t i = 0; i < n_ids; i++) {
        const float *row = api->get_logits_ith(ctx, i);
        if (!row) {
            rf_error_set(err, RF_ERR_FORMAT, "%s: llama.cpp returned no logits for position %d",
                         gguf_path, i);
            goto fail;
        }
        memcpy(logits + (size_t)i * info.n_vocab, row, (size_t)info.n_vocab * sizeof(float));
    }
    state.active = false;
    rl_token next = argmax_row(logits + (size_t)(n_ids - 1) * info.n_vocab, info.n_vocab);
    for (uint32_t g = 0; g < p.n_greedy; g++) {
        c->greedy[g] = next;
        c->n_greedy = g + 1;
        if (g + 1 == p.n_greedy)
            break;
        if (api->decode(ctx, api->batch_get_one(&next, 1)) != 0) {
            rf_error_set(err, RF_ERR_FORMAT, "%s: llama_decode at continuation step %u failed",
                         gguf_path, g);
            goto fail;
        }
        const float *row = api->get_logits_ith(ctx, -1);
        if (!row) {
            rf_error_set(err, RF_ERR_FORMAT, "%s: no logits at continuation step %u", gguf_path, g);
            goto fail;
        }
        next = argmax_row(row, info.n_vocab);
    }
    goto done;
fail:
    ri_capture_free(c);
    c = NULL;
done:
    if (batch_made)
        api->batch_free(batch);
    if (ctx)
        api->free_ctx(ctx);
    api->model_free(model);
    free(ids);
    rf_model_free(src);
    return c;
}
