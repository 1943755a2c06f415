/* llama_engine: runs llama.cpp's own libllama on a GGUF as the engine-parity oracle of
 * tests/tools/engine_llama_oracle.sh and tests/real/engine.sh: tokenizes a prompt (or takes ids),
 * decodes a greedy continuation with the KV cache and writes the logits of every position it
 * computed, so that another engine can be teacher-forced on the same sequence. Not part of
 * Rosetta; tests/tools/engine_logits.c is Rosetta's side.
 *
 * usage: llama_engine MODEL.gguf (--ids A,B,... | --ids-file F | --prompt TEXT [--chat]
 *                     [--system S]) [--greedy N] [--logits OUT.bin] [--threads N]
 *                     [--kv f32|f16] [--flash-attn off|auto] [--ctx N]
 *   --ids       the token ids of one prompt (comma separated)
 *   --ids-file  one prompt per line (ids comma separated); each runs from an empty cache
 *   --prompt    text tokenized by llama_tokenize (special tokens parsed); with --chat it is the
 *               user message of llama_chat_apply_template with the model's template (and a
 *               system message --system)
 *   --greedy N  the N-token greedy continuation (argmax, lowest id on ties), no stop tokens
 *   --logits    float32 little-endian rows of n_vocab logits, per prompt: one row per prompt
 *               position, then one per greedy decode step but the last (N - 1 rows): the
 *               logits of the sequence prompt + greedy[0 .. N-2] at every position
 *   --kv, --flash-attn: default f32 and off (llama.cpp's defaults are f16 and auto)
 * stdout: one JSON line per prompt {"n_vocab":V,"ids":[...],"greedy":[...]}.
 * Exit 0 ok, 2 usage or input error, 1 when llama.cpp fails. LLAMA_ENGINE_DEBUG=1 prints
 * llama.cpp's log to stderr. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static void log_cb(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (getenv("LLAMA_ENGINE_DEBUG") != NULL || level == GGML_LOG_LEVEL_ERROR)
        fprintf(stderr, "%s", text);
}

static int usage(const char *msg)
{
    fprintf(stderr, "llama_engine: %s\n", msg);
    return 2;
}

static int parse_ids(const char *s, llama_token **out)
{
    int cap = 64, n = 0;
    llama_token *ids = malloc((size_t)cap * sizeof *ids);
    while (ids && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s)
            break;
        if (n == cap) {
            cap *= 2;
            llama_token *p = realloc(ids, (size_t)cap * sizeof *ids);
            if (!p)
                break;
            ids = p;
        }
        ids[n++] = (llama_token)v;
        s = *end == ',' ? end + 1 : end;
    }
    *out = ids;
    return n;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* Decodes ids[0..n) with logits at every position, then the greedy continuation of `greedy`
 * tokens with the KV cache; writes the n + greedy - 1 logits rows (the prompt's, then each
 * decode step's: teacher forcing on llama.cpp's own continuation) to lf and a JSON line. */
static int run_prompt(struct llama_context *ctx, const struct llama_vocab *vocab, int n_vocab,
                      const llama_token *ids, int n, int greedy, FILE *lf)
{
    (void)vocab;
    llama_memory_clear(llama_get_memory(ctx), true);
    struct llama_batch batch = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        batch.token[i] = ids[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n;
    if (llama_decode(ctx, batch) != 0) {
        fprintf(stderr, "llama_engine: llama_decode of the prompt failed\n");
        return 1;
    }
    llama_batch_free(batch);
    if (lf)
        for (int i = 0; i < n; i++)
            fwrite(llama_get_logits_ith(ctx, i), sizeof(float), (size_t)n_vocab, lf);
    llama_token *gen = calloc((size_t)greedy + 1, sizeof *gen);
    llama_token next = argmax(llama_get_logits_ith(ctx, n - 1), n_vocab);
    for (int g = 0; g < greedy; g++) {
        gen[g] = next;
        if (g + 1 == greedy)
            break;
        if (llama_decode(ctx, llama_batch_get_one(&next, 1)) != 0) {
            fprintf(stderr, "llama_engine: llama_decode at greedy step %d failed\n", g);
            return 1;
        }
        const float *l = llama_get_logits_ith(ctx, -1);
        if (lf)
            fwrite(l, sizeof(float), (size_t)n_vocab, lf);
        next = argmax(l, n_vocab);
    }
    printf("{\"n_vocab\":%d,\"ids\":[", n_vocab);
    for (int i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", ids[i]);
    printf("],\"greedy\":[");
    for (int g = 0; g < greedy; g++)
        printf("%s%d", g ? "," : "", gen[g]);
    printf("]}\n");
    free(gen);
    return 0;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *ids_arg = NULL, *ids_file = NULL, *prompt = NULL;
    const char *system_msg = NULL;
    const char *logits_path = NULL;
    bool chat = false, flash = false;
    int greedy = 0, threads = 1, n_ctx = 2048;
    enum ggml_type kv = GGML_TYPE_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--chat") == 0) {
            chat = true;
            continue;
        }
        if (a[0] != '-') {
            model_path = a;
            continue;
        }
        if (!v)
            return usage("an option lacks its value");
        i++;
        if (strcmp(a, "--ids") == 0)
            ids_arg = v;
        else if (strcmp(a, "--ids-file") == 0)
            ids_file = v;
        else if (strcmp(a, "--prompt") == 0)
            prompt = v;
        else if (strcmp(a, "--system") == 0)
            system_msg = v;
        else if (strcmp(a, "--greedy") == 0)
            greedy = atoi(v);
        else if (strcmp(a, "--logits") == 0)
            logits_path = v;
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(v);
        else if (strcmp(a, "--ctx") == 0)
            n_ctx = atoi(v);
        else if (strcmp(a, "--kv") == 0)
            kv = strcmp(v, "f16") == 0 ? GGML_TYPE_F16 : GGML_TYPE_F32;
        else if (strcmp(a, "--flash-attn") == 0)
            flash = strcmp(v, "auto") == 0;
        else
            return usage("unknown option");
    }
    if (!model_path || (!ids_arg && !prompt && !ids_file))
        return usage(
            "usage: llama_engine MODEL.gguf (--ids A,B | --ids-file F | --prompt TEXT) ...");

    llama_log_set(log_cb, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) {
        fprintf(stderr, "llama_engine: llama.cpp cannot load %s\n", model_path);
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);

    llama_token *ids = NULL;
    int n_ids = 0;
    if (ids_arg) {
        n_ids = parse_ids(ids_arg, &ids);
    } else if (prompt) {
        char *text = NULL;
        if (chat) {
            struct llama_chat_message msgs[2];
            int n = 0;
            if (system_msg)
                msgs[n++] = (struct llama_chat_message){"system", system_msg};
            msgs[n++] = (struct llama_chat_message){"user", prompt};
            const char *tmpl = llama_model_chat_template(model, NULL);
            int cap = 1 << 16;
            text = malloc((size_t)cap);
            int len = llama_chat_apply_template(tmpl, msgs, (size_t)n, true, text, cap);
            if (len < 0 || len >= cap) {
                fprintf(stderr, "llama_engine: llama_chat_apply_template failed (%d)\n", len);
                return 1;
            }
            text[len] = '\0';
        } else {
            text = strdup(prompt);
        }
        int cap = (int)strlen(text) + 16;
        ids = malloc((size_t)cap * sizeof *ids);
        n_ids = llama_tokenize(vocab, text, (int32_t)strlen(text), ids, cap, false, true);
        free(text);
        if (n_ids < 0) {
            fprintf(stderr, "llama_engine: llama_tokenize failed\n");
            return 1;
        }
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = (uint32_t)n_ctx;
    cp.n_ubatch = 512;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.no_perf = true;
    cp.type_k = kv;
    cp.type_v = kv;
    cp.flash_attn_type = flash ? LLAMA_FLASH_ATTN_TYPE_AUTO : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "llama_engine: llama_init_from_model failed\n");
        return 1;
    }
    FILE *lf = NULL;
    if (logits_path && !(lf = fopen(logits_path, "wb")))
        return usage("cannot write the logits file");

    /* one prompt per line of --ids-file, or the one prompt of --ids / --prompt */
    FILE *idf = ids_file ? fopen(ids_file, "r") : NULL;
    if (ids_file && !idf)
        return usage("cannot read the ids file");
    char *line = NULL;
    size_t line_cap = 0;
    for (int prompt_no = 0;; prompt_no++) {
        if (idf) {
            if (getline(&line, &line_cap, idf) < 0)
                break;
            free(ids);
            n_ids = parse_ids(line, &ids);
            if (n_ids == 0)
                continue;
        } else if (prompt_no > 0) {
            break;
        }
        if (n_ids <= 0 || n_ids + greedy > n_ctx)
            return usage("no ids, or more than the context holds");
        if (run_prompt(ctx, vocab, n_vocab, ids, n_ids, greedy, lf) != 0)
            return 1;
    }
    free(line);
    if (idf)
        fclose(idf);
    if (lf && fclose(lf) != 0)
        return usage("cannot write the logits file");
    free(ids);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
