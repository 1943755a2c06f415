/* Tokenizer speed: load time (model view, then ri_tokenizer_from_model) and encoding MB/s of
 * Rosetta's tokenizer on the real Qwen2.5 vocabulary, with llama.cpp's llama_tokenize measured in
 * the same run (interleaved) when its library can be loaded. One JSON object per line on stdout:
 * medians of --reps runs; "ratio" is Rosetta MB/s over llama.cpp MB/s from wall-clock medians,
 * "ratio_cpu_time" from process CPU time (steadier on a shared machine); "ids_equal" says whether
 * both produced the same ids.
 *
 * Workloads: "corpus", the valid UTF-8 strings of tests/data/tokenizer/corpus.jsonl one call
 * each (special tokens parsed); "files", Rosetta's own docs and C sources as one long text (code
 * and prose).
 *
 * Usage: bench-tokenize [--model GGUF] [--llama LIB] [--reps N]
 * The model defaults to $ROSETTA_REAL_MODEL, else the cached file of scripts/fetch-real-model
 * ($ROSETTA_MODEL_CACHE or ~/.cache/rosetta/models); without one, a note line and exit 0.
 * llama.cpp: --llama, else $ROSETTA_LLAMA_ORACLE, else the build tree's oracle library
 * (scripts/build-llama-oracle), loaded with dlopen. That library is built with its C++ at -O0
 * (a correctness oracle), so its speed is not a fair peer: the line says so ("llama_build").
 * Not for: correctness (tests/real/tokenizer.sh compares the ids). */
#include <dlfcn.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "rosetta/tokenizer.h"

#ifdef ROSETTA_LLAMA_H
#include "llama.h"
#endif

#ifndef ROSETTA_ROOT
#define ROSETTA_ROOT "."
#endif
#ifndef ROSETTA_BUILD
#define ROSETTA_BUILD "build"
#endif

typedef struct text {
    char *data;
    size_t len;
} text;

typedef struct workload {
    const char *name;
    text *texts;
    size_t n;
    size_t bytes;
} workload;

static double clock_seconds(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now(void) { return clock_seconds(CLOCK_MONOTONIC); }
static double cpu_now(void) { return clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[size] = '\0';
        *len = (size_t)size;
    }
    return buf;
}

static bool load_corpus(workload *w)
{
    size_t len;
    char *all = read_file(ROSETTA_ROOT "/tests/data/tokenizer/corpus.jsonl", &len);
    if (!all)
        return false;
    w->name = "corpus";
    w->texts = calloc(4096, sizeof *w->texts);
    for (char *line = strtok(all, "\n"); line && w->n < 4096; line = strtok(NULL, "\n")) {
        cJSON *e = cJSON_Parse(line);
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "text"));
        text t = {0};
        if (s) { /* the "hex" entries (invalid UTF-8) are left out: llama.cpp aborts on some */
            t.len = strlen(s);
            t.data = malloc(t.len + 1);
            memcpy(t.data, s, t.len + 1);
        }
        cJSON_Delete(e);
        if (t.data) {
            w->texts[w->n++] = t;
            w->bytes += t.len;
        }
    }
    free(all);
    return w->n > 0;
}

static bool load_files(workload *w)
{
    static const char *const patterns[] = {ROSETTA_ROOT "/docs/*.md", ROSETTA_ROOT "/docs/*/*.md",
                                           ROSETTA_ROOT "/libformat/src/*.c",
                                           ROSETTA_ROOT "/libinfer/src/*.c"};
    text all = {0};
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        glob_t g;
        if (glob(patterns[p], 0, NULL, &g) != 0)
            continue;
        for (size_t i = 0; i < g.gl_pathc; i++) {
            size_t len;
            char *data = read_file(g.gl_pathv[i], &len);
            if (!data)
                continue;
            all.data = realloc(all.data, all.len + len + 1);
            memcpy(all.data + all.len, data, len);
            all.len += len;
            free(data);
        }
        globfree(&g);
    }
    if (!all.data)
        return false;
    w->name = "files";
    w->texts = malloc(sizeof *w->texts);
    w->texts[0] = all;
    w->n = 1;
    w->bytes = all.len;
    return true;
}

/* ---- the two tokenizers behind one signature ------------------------------------------------ */

typedef struct peer {
    const char *name;
    /* tokenizes t into ids (capacity cap); returns the count or -1 */
    long (*tokenize)(void *ctx, const text *t, int32_t *ids, size_t cap);
    void *ctx;
} peer;

static long rosetta_tokenize(void *ctx, const text *t, int32_t *ids, size_t cap)
{
    size_t n;
    rf_status st = ri_tokenize(ctx, t->data, t->len, RI_TOKENIZE_PARSE_SPECIAL, ids, cap, &n, NULL);
    return st == RF_OK ? (long)n : -1;
}

#ifdef ROSETTA_LLAMA_H
typedef struct llama_api {
    __typeof__(&llama_backend_init) backend_init;
    __typeof__(&llama_model_default_params) default_params;
    __typeof__(&llama_model_load_from_file) load;
    __typeof__(&llama_model_get_vocab) get_vocab;
    __typeof__(&llama_tokenize) tokenize;
    __typeof__(&llama_model_free) model_free;
    __typeof__(&llama_log_set) log_set;
    const struct llama_vocab *vocab;
    struct llama_model *model;
} llama_api;

static void quiet(enum ggml_log_level level, const char *message, void *user)
{
    (void)level;
    (void)message;
    (void)user;
}

static long llama_peer_tokenize(void *ctx, const text *t, int32_t *ids, size_t cap)
{
    llama_api *api = ctx;
    int32_t n = api->tokenize(api->vocab, t->data, (int32_t)t->len, ids, (int32_t)cap, false, true);
    return n;
}

static const char *llama_open(llama_api *api, const char *lib_path, const char *model,
                              double *load_ms)
{
    void *lib = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return dlerror();
    api->backend_init = (__typeof__(api->backend_init))dlsym(lib, "llama_backend_init");
    api->default_params = (__typeof__(api->default_params))dlsym(lib, "llama_model_default_params");
    api->load = (__typeof__(api->load))dlsym(lib, "llama_model_load_from_file");
    api->get_vocab = (__typeof__(api->get_vocab))dlsym(lib, "llama_model_get_vocab");
    api->tokenize = (__typeof__(api->tokenize))dlsym(lib, "llama_tokenize");
    api->model_free = (__typeof__(api->model_free))dlsym(lib, "llama_model_free");
    api->log_set = (__typeof__(api->log_set))dlsym(lib, "llama_log_set");
    if (!api->backend_init || !api->default_params || !api->load || !api->get_vocab ||
        !api->tokenize || !api->model_free || !api->log_set)
        return "a llama.cpp function is missing from the library";
    api->log_set(quiet, NULL);
    api->backend_init();
    struct llama_model_params mp = api->default_params();
    mp.vocab_only = true;
    double t0 = now();
    api->model = api->load(model, mp);
    *load_ms = (now() - t0) * 1e3;
    if (!api->model)
        return "llama.cpp does not load the model";
    api->vocab = api->get_vocab(api->model);
    return NULL;
}
#endif

/* One pass over the workload; returns false when tokenizing failed. ids_out (if not NULL)
 * receives a checksum of the ids. */
static bool run_pass(const peer *p, const workload *w, int32_t *ids, size_t cap, uint64_t *sum)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < w->n; i++) {
        long n = p->tokenize(p->ctx, &w->texts[i], ids, cap);
        if (n < 0)
            return false;
        for (long k = 0; k < n; k++)
            h = (h ^ (uint32_t)ids[k]) * 1099511628211u;
        h = (h ^ 0xFFFFFFFFu) * 1099511628211u;
    }
    *sum = h;
    return true;
}

static void bench_workload(const workload *w, const peer *peers, size_t n_peers, int reps,
                           const char *llama_note)
{
    size_t cap = w->bytes + 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    double wall[2][64], cpu[2][64];
    uint64_t sums[2] = {0, 0};
    bool ok[2] = {true, true};
    /* each measurement repeats the workload for at least 0.2 s (once for a slow peer) */
    int inner[2] = {1, 1};
    for (size_t p = 0; p < n_peers; p++) {
        double t0 = cpu_now();
        ok[p] = run_pass(&peers[p], w, ids, cap, &sums[p]);
        double dt = cpu_now() - t0;
        inner[p] = dt > 0 ? (int)(0.2 / dt) + 1 : 1;
        if (inner[p] > 10000)
            inner[p] = 10000;
    }
    for (int r = 0; r < reps; r++)
        for (size_t p = 0; p < n_peers; p++) {
            double t0 = now(), c0 = cpu_now();
            for (int k = 0; k < inner[p] && ok[p]; k++)
                ok[p] = run_pass(&peers[p], w, ids, cap, &sums[p]);
            wall[p][r] = (now() - t0) / inner[p];
            cpu[p][r] = (cpu_now() - c0) / inner[p];
        }
    double mb = (double)w->bytes / 1e6;
    double rw = median(wall[0], reps), rc = median(cpu[0], reps);
    printf("{\"bench\":\"tokenize\",\"workload\":\"%s\",\"texts\":%zu,\"bytes\":%zu,"
           "\"reps\":%d,\"mb_s\":%.2f,\"mb_s_cpu_time\":%.2f",
           w->name, w->n, w->bytes, reps, mb / rw, mb / rc);
    if (n_peers > 1 && ok[1]) {
        double lw = median(wall[1], reps), lc = median(cpu[1], reps);
        printf(",\"llama_mb_s\":%.2f,\"ratio\":%.2f,\"ratio_cpu_time\":%.2f,\"ids_equal\":%s,"
               "\"llama_build\":\"%s\"",
               mb / lw, lw / rw, lc / rc, sums[0] == sums[1] ? "true" : "false", llama_note);
    }
    printf("%s}\n", ok[0] ? "" : ",\"error\":\"Rosetta failed to tokenize\"");
    free(ids);
}

int main(int argc, char **argv)
{
    const char *model = getenv("ROSETTA_REAL_MODEL");
    const char *llama_lib = getenv("ROSETTA_LLAMA_ORACLE");
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            model = argv[++i];
        else if (strcmp(argv[i], "--llama") == 0 && i + 1 < argc)
            llama_lib = argv[++i];
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench-tokenize [--model GGUF] [--llama LIB] [--reps N]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 64)
        reps = 5;
    char cached[4096];
    if (!model || !*model) {
        const char *cache = getenv("ROSETTA_MODEL_CACHE");
        const char *home = getenv("HOME");
        if (cache && *cache)
            snprintf(cached, sizeof cached, "%s/qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf",
                     cache);
        else
            snprintf(cached, sizeof cached,
                     "%s/.cache/rosetta/models/qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf",
                     home ? home : "");
        model = cached;
    }
    /* load: the model view, then the tokenizer from it */
    double open_ms[64] = {0}, tok_ms[64] = {0}, tok_cpu_ms[64] = {0};
    ri_tokenizer *tok = NULL;
    for (int r = 0; r < reps; r++) {
        rf_error err = {0};
        double t0 = now();
        rf_model *m = rf_model_open(model, NULL, &err);
        double t1 = now(), c1 = cpu_now();
        if (!m) {
            printf("{\"bench\":\"tokenize\",\"note\":\"no model: %s (run scripts/fetch-real-model "
                   "or pass --model)\"}\n",
                   err.message);
            return 0;
        }
        ri_tokenizer_free(tok);
        tok = ri_tokenizer_from_model(m, &err);
        double t2 = now(), c2 = cpu_now();
        rf_model_free(m);
        if (!tok) {
            printf("{\"bench\":\"tokenize\",\"error\":\"%s\"}\n", err.message);
            return 1;
        }
        open_ms[r] = (t1 - t0) * 1e3;
        tok_ms[r] = (t2 - t1) * 1e3;
        tok_cpu_ms[r] = (c2 - c1) * 1e3;
    }
    peer peers[2] = {{"rosetta", rosetta_tokenize, tok}};
    size_t n_peers = 1;
    const char *llama_note = "C++ -O0 (the correctness oracle build): not a fair speed peer";
    char default_lib[4096];
    if (!llama_lib || !*llama_lib) {
        snprintf(default_lib, sizeof default_lib, "%s/oracle/llama/install/lib/libllama.so",
                 ROSETTA_BUILD);
        llama_lib = default_lib;
    }
    double llama_load_ms = 0;
    const char *llama_problem = "bench-tokenize was built without llama.h (no oracle build "
                                "when it was configured)";
#ifdef ROSETTA_LLAMA_H
    static llama_api api;
    llama_problem = llama_open(&api, llama_lib, model, &llama_load_ms);
    if (!llama_problem) {
        peers[1] = (peer){"llama.cpp", llama_peer_tokenize, &api};
        n_peers = 2;
    }
#endif
    printf("{\"bench\":\"tokenize\",\"model\":\"%s\",\"n_vocab\":%zu,\"open_ms\":%.1f,"
           "\"tokenizer_ms\":%.1f,\"tokenizer_cpu_ms\":%.1f,\"load_ms\":%.1f",
           model, ri_n_vocab(tok), median(open_ms, reps), median(tok_ms, reps),
           median(tok_cpu_ms, reps), median(open_ms, reps) + median(tok_ms, reps));
    if (n_peers > 1)
        printf(",\"llama_load_ms\":%.1f", llama_load_ms);
    else
        printf(",\"note\":\"no llama.cpp comparison: %s\"", llama_problem);
    printf("}\n");
    workload corpus = {0}, files = {0};
    if (load_corpus(&corpus))
        bench_workload(&corpus, peers, n_peers, reps, llama_note);
    if (load_files(&files))
        bench_workload(&files, peers, n_peers, reps, llama_note);
    ri_tokenizer_free(tok);
    return 0;
}
