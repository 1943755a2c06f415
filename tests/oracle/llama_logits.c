/* llama_logits: loads a GGUF written by Rosetta with llama.cpp's own libllama and checks that it
 * is the model of the Hugging Face fixture it came from: hyperparameters against config.json,
 * llama_tokenize against the fixture's token ids, last-position logits of llama_decode against
 * the transformers float32 logits, a 16-token greedy continuation against the fixture's, and the
 * ChatML rendering of llama_chat_apply_template against the fixture's chat text.
 * Driven by tests/tools/llama_logits_oracle.sh; not part of Rosetta.
 *
 * usage: llama_logits [--threads N] [--max-rel R] [--greedy exact|report] [--kv f32|f16]
 *                     [--flash-attn off|auto] MODEL.gguf FIXTURE_DIR LABEL
 *   --threads N      llama.cpp's threads (default 1)
 *   --max-rel R      fail when max|logit - reference| > R * max|reference logit| (default 1e-4)
 *   --greedy exact   the 16 greedy tokens must equal the fixture's (default)
 *   --greedy report  a divergence is reported, not a failure (quantized weights)
 *   --kv, --flash-attn  the KV cache type and flash attention (default f32 and off: llama.cpp's
 *                    defaults, an F16 cache and flash attention on the CPU, round K, V and Q to
 *                    F16 and cost about 2e-3 of max|logit|)
 * LLAMA_LOGITS_DEBUG=1 in the environment copies llama.cpp's log to stderr (level first).
 * One line per prompt on stdout ("OK ..." or "FAIL ..."); exit status 0 when every check passed,
 * 1 when one failed (llama.cpp's log is printed when loading fails), 2 on usage or input errors. */
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "llama.h"

#define N_GREEDY 16

static const char *const PROMPTS[] = {"plain", "code", "chat", "long"};

/* ---- llama.cpp's log: kept in memory, printed when something fails ----------------------- */

static char log_buf[1 << 20];
static size_t log_len;
static int n_warnings; /* WARN and ERROR messages since the last reset */
static char first_warning[512];

static void log_cb(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (getenv("LLAMA_LOGITS_DEBUG") != NULL)
        fprintf(stderr, "[%d] %s", (int)level, text);
    if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) {
        if (n_warnings++ == 0)
            snprintf(first_warning, sizeof first_warning, "%s", text);
    }
    size_t n = strlen(text);
    if (n >= sizeof log_buf)
        return;
    if (log_len + n >= sizeof log_buf) /* keep the tail */
        log_len = 0;
    memcpy(log_buf + log_len, text, n);
    log_len += n;
    log_buf[log_len] = '\0';
}

/* ---- files ---------------------------------------------------------------------------------- */

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "llama_logits: cannot open %s\n", path);
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *p = realloc(buf, cap);
            if (p == NULL) {
                free(buf);
                fclose(f);
                fprintf(stderr, "llama_logits: out of memory reading %s\n", path);
                return NULL;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got < 4096)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static cJSON *read_json(const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    if (text == NULL)
        return NULL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (j == NULL)
        fprintf(stderr, "llama_logits: %s: not valid JSON\n", path);
    return j;
}

static double json_num(const cJSON *obj, const char *key, const char *file)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v)) {
        fprintf(stderr, "llama_logits: %s: no number \"%s\"\n", file, key);
        exit(2);
    }
    return v->valuedouble;
}

/* Integer array `key` of obj into a new array; *n its length. Exits on malformed input. */
static int32_t *json_ids(const cJSON *obj, const char *key, int *n, const char *file)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0) {
        fprintf(stderr, "llama_logits: %s: no array \"%s\"\n", file, key);
        exit(2);
    }
    *n = cJSON_GetArraySize(a);
    int32_t *ids = calloc((size_t)*n, sizeof *ids);
    if (ids == NULL)
        exit(2);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (!cJSON_IsNumber(e)) {
            fprintf(stderr, "llama_logits: %s: \"%s\"[%d] is not a number\n", file, key, i);
            exit(2);
        }
        ids[i++] = (int32_t)e->valueint;
    }
    return ids;
}

/* ---- checks --------------------------------------------------------------------------------- */

static int failures;

static void check_int(const char *label, const char *what, long got, long want)
{
    if (got != want) {
        printf("FAIL %s: %s: llama.cpp has %ld, config.json %ld\n", label, what, got, want);
        failures++;
    }
}

/* A float hyperparameter from the GGUF's metadata (as llama.cpp reads it) against config.json. */
static void check_meta_float(const struct llama_model *model, const char *label, const char *key,
                             double want)
{
    char buf[128];
    if (llama_model_meta_val_str(model, key, buf, sizeof buf) < 0) {
        printf("FAIL %s: metadata %s missing\n", label, key);
        failures++;
        return;
    }
    double got = strtod(buf, NULL);
    if (fabs(got - want) > 1e-6 * fabs(want)) {
        printf("FAIL %s: %s: llama.cpp reads %s, config.json %g\n", label, key, buf, want);
        failures++;
    }
}

static int argmax(const float *v, int n)
{
    int best = 0; /* lowest id on ties, as the fixture's greedy */
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* ---- one prompt ----------------------------------------------------------------------------- */

struct opts {
    int threads;
    double max_rel;
    bool greedy_exact;
    enum ggml_type kv_type;
    enum llama_flash_attn_type flash_attn;
};

static void run_prompt(struct llama_model *model, const char *fixture, const char *prompt,
                       const char *label, const struct opts *o, double *worst_rel)
{
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);
    char path[4096];
    snprintf(path, sizeof path, "%s/reference/%s.json", fixture, prompt);
    cJSON *ref = read_json(path);
    if (ref == NULL)
        exit(2);
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(ref, "text");
    const cJSON *greedy = cJSON_GetObjectItemCaseSensitive(ref, "greedy");
    if (!cJSON_IsString(text) || !cJSON_IsObject(greedy)) {
        fprintf(stderr, "llama_logits: %s: no \"text\" string or \"greedy\" object\n", path);
        exit(2);
    }
    int n_ref = 0, n_greedy = 0;
    int32_t *ref_ids = json_ids(ref, "input_ids", &n_ref, path);
    int32_t *ref_greedy = json_ids(greedy, "ids", &n_greedy, path);
    if (n_greedy != N_GREEDY) {
        fprintf(stderr, "llama_logits: %s: %d greedy ids, expected %d\n", path, n_greedy, N_GREEDY);
        exit(2);
    }

    /* the logits transformers computed (float32, little-endian as the host: x86-64, arm64) */
    snprintf(path, sizeof path, "%s/reference/%s.logits.bin", fixture, prompt);
    size_t ref_len;
    float *ref_logits = read_file(path, &ref_len);
    if (ref_logits == NULL)
        exit(2);
    if (ref_len != (size_t)n_vocab * sizeof(float)) {
        printf("FAIL %s %s: %s has %zu bytes, llama.cpp's vocabulary %d ids (%zu bytes)\n", label,
               prompt, path, ref_len, n_vocab, (size_t)n_vocab * sizeof(float));
        failures++;
        goto out_logits;
    }

    /* tokens: the fixture tokenized the exact text with special tokens recognised, no BOS added;
     * add_special on is what llama.cpp's own tools do, so a BOS from the metadata would show */
    size_t text_len = strlen(text->valuestring);
    int cap = (int)text_len + 16;
    llama_token *ids = calloc((size_t)cap + N_GREEDY, sizeof *ids);
    if (ids == NULL)
        exit(2);
    int n_ids = llama_tokenize(vocab, text->valuestring, (int32_t)text_len, ids, cap, true, true);
    bool ids_equal = n_ids == n_ref;
    int first_diff = -1;
    for (int i = 0; i < n_ids && i < n_ref; i++) {
        if (ids[i] != ref_ids[i]) {
            ids_equal = false;
            first_diff = i;
            break;
        }
    }
    if (!ids_equal) {
        printf("FAIL %s %s: llama_tokenize gives %d tokens, the fixture %d", label, prompt, n_ids,
               n_ref);
        if (first_diff >= 0)
            printf("; first difference at %d: llama %d, fixture %d", first_diff, ids[first_diff],
                   ref_ids[first_diff]);
        printf("\n");
        failures++;
    }

    /* decode the fixture's own ids, so the logits are compared even if tokenizing differed */
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = 512;
    cp.n_ubatch = 512;
    cp.n_threads = o->threads;
    cp.n_threads_batch = o->threads;
    cp.no_perf = true;
    cp.type_k = o->kv_type; /* llama.cpp's default F16 cache rounds K and V to 11 bits */
    cp.type_v = o->kv_type;
    cp.flash_attn_type = o->flash_attn;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (ctx == NULL) {
        printf("FAIL %s %s: llama_init_from_model failed; llama.cpp's log:\n%s", label, prompt,
               log_buf);
        failures++;
        free(ids);
        goto out_logits;
    }
    if (n_ref > cap) {
        fprintf(stderr, "llama_logits: %s: %d ids for %zu bytes of text\n", prompt, n_ref,
                text_len);
        exit(2);
    }
    memcpy(ids, ref_ids, (size_t)n_ref * sizeof *ids);
    int rc = llama_decode(ctx, llama_batch_get_one(ids, n_ref));
    if (rc != 0) {
        printf("FAIL %s %s: llama_decode of %d tokens returned %d; llama.cpp's log:\n%s", label,
               prompt, n_ref, rc, log_buf);
        failures++;
        goto out_ctx;
    }
    const float *logits = llama_get_logits_ith(ctx, -1);
    if (logits == NULL) {
        printf("FAIL %s %s: no logits after llama_decode\n", label, prompt);
        failures++;
        goto out_ctx;
    }
    double max_diff = 0.0, max_ref = 0.0;
    int worst = 0;
    for (int i = 0; i < n_vocab; i++) {
        double d = fabs((double)logits[i] - (double)ref_logits[i]);
        if (!(d <= max_diff)) { /* NaN counts as the worst */
            max_diff = d;
            worst = i;
        }
        if (fabs((double)ref_logits[i]) > max_ref)
            max_ref = fabs((double)ref_logits[i]);
    }
    double rel = max_diff / max_ref;
    if (!(rel <= *worst_rel))
        *worst_rel = rel;
    int am = argmax(logits, n_vocab), ref_am = argmax(ref_logits, n_vocab);
    bool logits_ok = rel <= o->max_rel;
    /* the argmax must agree unless the two candidates are within the measured error of each
     * other in the reference (then either is a correct result of a correct model) */
    double ref_gap = (double)ref_logits[ref_am] - (double)ref_logits[am];
    bool argmax_ok = am == ref_am || (logits_ok && ref_gap <= 2.0 * max_diff);

    /* greedy: argmax, feed it back (llama.cpp's KV cache), 16 steps */
    llama_token got[N_GREEDY];
    int n_got = 0;
    llama_token next = am;
    for (int step = 0; step < N_GREEDY; step++) {
        got[n_got++] = next;
        if (step + 1 == N_GREEDY)
            break;
        rc = llama_decode(ctx, llama_batch_get_one(&next, 1));
        if (rc != 0) {
            printf("FAIL %s %s: llama_decode at greedy step %d returned %d\n", label, prompt, step,
                   rc);
            failures++;
            goto out_ctx;
        }
        const float *step_logits = llama_get_logits_ith(ctx, -1);
        if (step_logits == NULL) {
            printf("FAIL %s %s: no logits at greedy step %d\n", label, prompt, step);
            failures++;
            goto out_ctx;
        }
        next = argmax(step_logits, n_vocab);
    }
    int diverge = -1;
    for (int i = 0; i < N_GREEDY; i++) {
        if (got[i] != ref_greedy[i]) {
            diverge = i;
            break;
        }
    }
    bool greedy_ok = diverge < 0 || !o->greedy_exact;
    bool ok = ids_equal && logits_ok && argmax_ok && greedy_ok;
    char greedy_text[96];
    if (diverge < 0)
        snprintf(greedy_text, sizeof greedy_text, "greedy %d/%d equal", N_GREEDY, N_GREEDY);
    else
        snprintf(greedy_text, sizeof greedy_text,
                 "greedy diverges at step %d (llama %d, fixture %d)%s", diverge, got[diverge],
                 ref_greedy[diverge], o->greedy_exact ? "" : " [reported]");
    printf("%s %s %s: tokens %d/%d %s, max|dlogit| %.3g at id %d (%.3g of max|logit| %.3g, "
           "bound %.3g), argmax %d/%d%s, %s\n",
           ok ? "OK" : "FAIL", label, prompt, n_ids, n_ref, ids_equal ? "equal" : "DIFFER",
           max_diff, worst, rel, max_ref, o->max_rel, am, ref_am,
           am == ref_am ? " equal" : (argmax_ok ? " (near tie in the reference)" : " DIFFER"),
           greedy_text);
    if (!ok && ids_equal)
        failures++;

out_ctx:
    llama_free(ctx);
    free(ids);
out_logits:
    free(ref_logits);
    free(ref_ids);
    free(ref_greedy);
    cJSON_Delete(ref);
}

/* ---- the chat template ---------------------------------------------------------------------- */

static void check_chat(struct llama_model *model, const char *fixture, const char *label)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/reference/chat.json", fixture);
    cJSON *ref = read_json(path);
    if (ref == NULL)
        exit(2);
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(ref, "text");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(ref, "messages");
    if (!cJSON_IsString(text) || !cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) > 8) {
        fprintf(stderr, "llama_logits: %s: no \"text\" or \"messages\"\n", path);
        exit(2);
    }
    const char *tmpl = llama_model_chat_template(model, NULL);
    if (tmpl == NULL) {
        printf("FAIL %s chat template: the GGUF has no tokenizer.chat_template\n", label);
        failures++;
        cJSON_Delete(ref);
        return;
    }
    struct llama_chat_message chat[8];
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content)) {
            fprintf(stderr, "llama_logits: %s: a message without role/content\n", path);
            exit(2);
        }
        chat[n].role = role->valuestring;
        chat[n].content = content->valuestring;
        n++;
    }
    char out[8192];
    int len = llama_chat_apply_template(tmpl, chat, n, true, out, (int32_t)sizeof out);
    if (len < 0 || len >= (int)sizeof out) {
        printf("FAIL %s chat template: llama_chat_apply_template returned %d (template not "
               "recognised)\n",
               label, len);
        failures++;
    } else if ((size_t)len != strlen(text->valuestring) ||
               memcmp(out, text->valuestring, (size_t)len) != 0) {
        out[len] = '\0';
        printf("FAIL %s chat template: llama.cpp renders\n%s\n-- the fixture has --\n%s\n", label,
               out, text->valuestring);
        failures++;
    } else {
        printf("OK %s chat template: llama_chat_apply_template renders the fixture's chat text "
               "(%d bytes)\n",
               label, len);
    }
    cJSON_Delete(ref);
}

/* ---- main ----------------------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: llama_logits [--threads N] [--max-rel R] [--greedy exact|report] "
                    "[--kv f32|f16] [--flash-attn off|auto] MODEL.gguf FIXTURE_DIR LABEL\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct opts o = {.threads = 1,
                     .max_rel = 1e-4,
                     .greedy_exact = true,
                     .kv_type = GGML_TYPE_F32,
                     .flash_attn = LLAMA_FLASH_ATTN_TYPE_DISABLED};
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--threads") == 0)
            o.threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--max-rel") == 0)
            o.max_rel = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--kv") == 0 && strcmp(argv[i + 1], "f32") == 0)
            o.kv_type = GGML_TYPE_F32;
        else if (strcmp(argv[i], "--kv") == 0 && strcmp(argv[i + 1], "f16") == 0)
            o.kv_type = GGML_TYPE_F16;
        else if (strcmp(argv[i], "--flash-attn") == 0 && strcmp(argv[i + 1], "off") == 0)
            o.flash_attn = LLAMA_FLASH_ATTN_TYPE_DISABLED;
        else if (strcmp(argv[i], "--flash-attn") == 0 && strcmp(argv[i + 1], "auto") == 0)
            o.flash_attn = LLAMA_FLASH_ATTN_TYPE_AUTO;
        else if (strcmp(argv[i], "--greedy") == 0 && strcmp(argv[i + 1], "exact") == 0)
            o.greedy_exact = true;
        else if (strcmp(argv[i], "--greedy") == 0 && strcmp(argv[i + 1], "report") == 0)
            o.greedy_exact = false;
        else
            return usage();
    }
    if (argc - i != 3 || o.threads < 1 || !(o.max_rel > 0))
        return usage();
    const char *model_path = argv[i], *fixture = argv[i + 1], *label = argv[i + 2];

    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", fixture);
    cJSON *cfg = read_json(path);
    if (cfg == NULL)
        return 2;

    llama_log_set(log_cb, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.load_mode = LLAMA_LOAD_MODE_MMAP;
    n_warnings = 0;
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (model == NULL) {
        printf("FAIL %s: llama.cpp does not load %s; its log:\n%s", label, model_path, log_buf);
        cJSON_Delete(cfg);
        llama_backend_free();
        return 1;
    }

    /* hyperparameters as llama.cpp understood them */
    int before = failures;
    if (n_warnings != 0) {
        printf("FAIL %s: llama.cpp logged %d warnings/errors while loading, the first: %s", label,
               n_warnings, first_warning);
        failures++;
    }
    const cJSON *rope = cJSON_GetObjectItemCaseSensitive(cfg, "rope_parameters");
    double theta = cJSON_IsObject(rope) ? json_num(rope, "rope_theta", path)
                                        : json_num(cfg, "rope_theta", path);
    check_int(label, "vocabulary size", llama_vocab_n_tokens(llama_model_get_vocab(model)),
              (long)json_num(cfg, "vocab_size", path));
    check_int(label, "n_layer", llama_model_n_layer(model),
              (long)json_num(cfg, "num_hidden_layers", path));
    check_int(label, "n_embd", llama_model_n_embd(model), (long)json_num(cfg, "hidden_size", path));
    check_int(label, "n_head", llama_model_n_head(model),
              (long)json_num(cfg, "num_attention_heads", path));
    check_int(label, "n_head_kv", llama_model_n_head_kv(model),
              (long)json_num(cfg, "num_key_value_heads", path));
    check_int(label, "n_ctx_train", llama_model_n_ctx_train(model),
              (long)json_num(cfg, "max_position_embeddings", path));
    check_int(label, "rope type (NEOX)", llama_model_rope_type(model), LLAMA_ROPE_TYPE_NEOX);
    check_meta_float(model, label, "qwen2.rope.freq_base", theta);
    check_meta_float(model, label, "qwen2.attention.layer_norm_rms_epsilon",
                     json_num(cfg, "rms_norm_eps", path));
    check_meta_float(model, label, "qwen2.feed_forward_length",
                     json_num(cfg, "intermediate_size", path));
    if (failures == before)
        printf("OK %s: loaded by llama.cpp; vocab %d, n_layer %d, n_embd %d, n_head %d/%d, "
               "rope base %g NEOX, rms eps %g as config.json; no warning in llama.cpp's log\n",
               label, llama_vocab_n_tokens(llama_model_get_vocab(model)),
               llama_model_n_layer(model), llama_model_n_embd(model), llama_model_n_head(model),
               llama_model_n_head_kv(model), theta, json_num(cfg, "rms_norm_eps", path));
    cJSON_Delete(cfg);

    double worst_rel = 0.0;
    for (size_t p = 0; p < sizeof PROMPTS / sizeof PROMPTS[0]; p++)
        run_prompt(model, fixture, PROMPTS[p], label, &o, &worst_rel);
    check_chat(model, fixture, label);
    printf("%s %s: worst max|dlogit| over the prompts: %.3g of max|logit|\n",
           failures == 0 ? "OK" : "FAIL", label, worst_rel);

    llama_model_free(model);
    llama_backend_free();
    return failures == 0 ? 0 : 1;
}
