/* llama_bench: llama.cpp's side of bench/infer, measured exactly as `apr bench` measures Rosetta
 * (same random ids, same warm-up, same repetitions) and printing the same JSON keys. Built by
 * scripts/bench-infer against the optimized llama.cpp of scripts/build-llama-bench; not part of
 * Rosetta.
 *
 * usage: llama_bench MODEL.gguf [-p N] [-n N] [-t THREADS] [-r REPS] [--kv f16|f32]
 *                    [--flash-attn auto|off]
 * Prefill: -p random ids in one llama_decode from an empty cache (n_batch = -p, n_ubatch 512, as
 * llama-bench); decode: -n ids one at a time from an empty cache. Defaults are llama.cpp's own:
 * F16 KV cache, flash attention auto.
 * stdout: one JSON line {"engine":"llama.cpp", "prefill_tok_s", "prefill_tok_s_min",
 * "prefill_tok_s_max", "decode_tok_s", ..., "load_s", "peak_rss_mib", ...}. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "llama.h"

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }
static double cpu_now(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void log_quiet(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR)
        fprintf(stderr, "%s", text);
}

/* tokens per wall-clock second in tps[0], per CPU second of the process in tps[1] */
static int prefill(struct llama_context *ctx, llama_token *ids, int n, double *tps, double *cps)
{
    llama_memory_clear(llama_get_memory(ctx), true);
    double t0 = now(), c0 = cpu_now();
    if (llama_decode(ctx, llama_batch_get_one(ids, n)) != 0)
        return -1;
    llama_synchronize(ctx);
    *tps = n / (now() - t0);
    *cps = n / (cpu_now() - c0);
    return 0;
}

static int decode(struct llama_context *ctx, llama_token *ids, int n, double *tps, double *cps)
{
    llama_memory_clear(llama_get_memory(ctx), true);
    double t0 = now(), c0 = cpu_now();
    for (int i = 0; i < n; i++)
        if (llama_decode(ctx, llama_batch_get_one(&ids[i], 1)) != 0)
            return -1;
    llama_synchronize(ctx);
    *tps = n / (now() - t0);
    *cps = n / (cpu_now() - c0);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int n_prompt = 512, n_gen = 128, threads = 1, reps = 5;
    enum ggml_type kv = GGML_TYPE_F16;
    bool flash_auto = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (a[0] != '-') {
            path = a;
            continue;
        }
        i++;
        if (strcmp(a, "-p") == 0)
            n_prompt = atoi(v);
        else if (strcmp(a, "-n") == 0)
            n_gen = atoi(v);
        else if (strcmp(a, "-t") == 0)
            threads = atoi(v);
        else if (strcmp(a, "-r") == 0)
            reps = atoi(v);
        else if (strcmp(a, "--kv") == 0)
            kv = strcmp(v, "f32") == 0 ? GGML_TYPE_F32 : GGML_TYPE_F16;
        else if (strcmp(a, "--flash-attn") == 0)
            flash_auto = strcmp(v, "off") != 0;
        else {
            fprintf(stderr, "llama_bench: unknown option %s\n", a);
            return 2;
        }
    }
    if (!path || reps < 1 || reps > 100 || n_prompt < 1 || n_gen < 1) {
        fprintf(stderr, "usage: llama_bench MODEL.gguf [-p N] [-n N] [-t T] [-r R]\n");
        return 2;
    }
    llama_log_set(log_quiet, NULL);
    llama_backend_init();
    double t0 = now();
    struct llama_model *model = llama_model_load_from_file(path, llama_model_default_params());
    if (!model) {
        fprintf(stderr, "llama_bench: cannot load %s\n", path);
        return 1;
    }
    double load_s = now() - t0;
    int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    struct llama_context_params cp = llama_context_default_params();
    int n_ctx = n_prompt > n_gen ? n_prompt : n_gen;
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = (uint32_t)n_prompt;
    cp.n_ubatch = 512;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.no_perf = true;
    cp.type_k = kv;
    cp.type_v = kv;
    cp.flash_attn_type = flash_auto ? LLAMA_FLASH_ATTN_TYPE_AUTO : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "llama_bench: llama_init_from_model failed\n");
        return 1;
    }
    /* the same ids as apr bench: its generator, below the tokenizer's size */
    int n_ids = n_ctx;
    llama_token *ids = malloc((size_t)n_ids * sizeof *ids);
    uint64_t state = 0x243F6A8885A308D3u;
    int n_valid = n_vocab;
    for (int i = 0; i < n_ids; i++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        ids[i] = (llama_token)((state >> 33) % (uint64_t)n_valid);
    }
    double *pp = malloc((size_t)reps * sizeof *pp), *tg = malloc((size_t)reps * sizeof *tg), ignore;
    double *ppc = malloc((size_t)reps * sizeof *ppc), *tgc = malloc((size_t)reps * sizeof *tgc);
    double ignore_c;
    int rc = prefill(ctx, ids, n_prompt, &ignore, &ignore_c);
    for (int r = 0; r < reps && rc == 0; r++)
        rc = prefill(ctx, ids, n_prompt, &pp[r], &ppc[r]);
    if (rc == 0)
        rc = decode(ctx, ids, n_gen < 16 ? n_gen : 16, &ignore, &ignore_c);
    for (int r = 0; r < reps && rc == 0; r++)
        rc = decode(ctx, ids, n_gen, &tg[r], &tgc[r]);
    if (rc != 0) {
        fprintf(stderr, "llama_bench: llama_decode failed\n");
        return 1;
    }
    qsort(pp, (size_t)reps, sizeof *pp, cmp_double);
    qsort(tg, (size_t)reps, sizeof *tg, cmp_double);
    qsort(ppc, (size_t)reps, sizeof *ppc, cmp_double);
    qsort(tgc, (size_t)reps, sizeof *tgc, cmp_double);
    double pcpu = reps % 2 ? ppc[reps / 2] : 0.5 * (ppc[reps / 2 - 1] + ppc[reps / 2]);
    double gcpu = reps % 2 ? tgc[reps / 2] : 0.5 * (tgc[reps / 2 - 1] + tgc[reps / 2]);
    double pmed = reps % 2 ? pp[reps / 2] : 0.5 * (pp[reps / 2 - 1] + pp[reps / 2]);
    double gmed = reps % 2 ? tg[reps / 2] : 0.5 * (tg[reps / 2 - 1] + tg[reps / 2]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"engine\":\"llama.cpp\",\"threads\":%d,\"kv\":\"%s\",\"flash_attn\":\"%s\","
           "\"reps\":%d,\"prefill_tokens\":%d,\"prefill_tok_s\":%.3f,\"prefill_tok_s_min\":%.3f,"
           "\"prefill_tok_s_max\":%.3f,\"decode_tokens\":%d,\"decode_tok_s\":%.3f,"
           "\"decode_tok_s_min\":%.3f,\"decode_tok_s_max\":%.3f,\"prefill_cpu_tok_s\":%.3f,"
           "\"decode_cpu_tok_s\":%.3f,\"load_s\":%.3f,\"peak_rss_mib\":%.1f}\n",
           threads, kv == GGML_TYPE_F16 ? "f16" : "f32", flash_auto ? "auto" : "off", reps,
           n_prompt, pmed, pp[0], pp[reps - 1], n_gen, gmed, tg[0], tg[reps - 1], pcpu, gcpu,
           load_s, (double)ru.ru_maxrss / 1024.0);
    free(ids);
    free(pp);
    free(tg);
    free(ppc);
    free(tgc);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
