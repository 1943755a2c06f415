/* Cost of the verifier (docs/verifier.md, "Performance"): comparing two models on one prompt
 * (apr compare-inference: each model run with every stage of every layer captured and the logits
 * of every position kept, then the stage-by-stage comparison) against running both models once
 * (a prefill of the same prompt with the last position's logits, then the same greedy steps).
 * One JSON object per line on stdout, medians of --reps runs, interleaved:
 *   plain_s    the two plain runs
 *   capture_s  the two captured runs (ri_capture_run_ids)
 *   compare_s  ri_compare_new on the two captures
 *   ratio      (capture_s + compare_s) / plain_s, from wall-clock medians; ratio_cpu_time from
 *              process CPU time (steadier on a shared machine)
 *   capture_bytes  the memory the two captures hold
 * Model loading is left out of both sides (the same for both).
 *
 * Usage: bench-verify [--a MODEL] [--b MODEL] [--tokens N] [--greedy N] [--reps N]
 * A defaults to $ROSETTA_REAL_MODEL, else the cached file of scripts/fetch-real-model
 * ($ROSETTA_MODEL_CACHE or ~/.cache/rosetta/models), else the fixture tiny-qwen2; B defaults to A
 * (the cost does not depend on the values). The prompt is the first N (64) token ids of Rosetta's
 * README under A's tokenizer.
 * Not for: correctness (tests/tools/compare_inference.sh, tests/real/compare.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "rosetta/tokenizer.h"
#include "rosetta/verify.h"

#ifndef ROSETTA_ROOT
#define ROSETTA_ROOT "."
#endif

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
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
            *len = fread(buf, 1, (size_t)n, f);
            buf[*len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static const char *default_model(char *buf, size_t size)
{
    const char *env = getenv("ROSETTA_REAL_MODEL");
    if (env && *env)
        return env;
    const char *cache = getenv("ROSETTA_MODEL_CACHE"), *home = getenv("HOME");
    struct stat st;
    if (cache && *cache)
        snprintf(buf, size, "%s/qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf", cache);
    else
        snprintf(buf, size, "%s/.cache/rosetta/models/qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf",
                 home ? home : "");
    if (stat(buf, &st) == 0)
        return buf;
    snprintf(buf, size, "%s/fixtures/tiny-qwen2", ROSETTA_ROOT);
    return buf;
}

static ri_model *open_model(const char *path)
{
    rf_error err = {0};
    ri_model *m = ri_model_open(path, NULL, &err);
    if (!m)
        fprintf(stderr, "bench-verify: %s: %s\n", path, err.message);
    return m;
}

/* A plain run: prefill with the last logits, then greedy - 1 decode steps. */
static int plain_run(ri_model *m, const int32_t *ids, size_t n, uint32_t greedy, float *logits)
{
    rf_error err = {0};
    ri_context_params cp = ri_context_params_default();
    cp.n_ctx = (uint32_t)n + greedy;
    ri_context *ctx = ri_context_new(m, &cp, &err);
    if (!ctx || ri_forward(ctx, ids, n, RI_LOGITS_LAST, logits, &err) != RF_OK) {
        fprintf(stderr, "bench-verify: %s\n", err.message);
        ri_context_free(ctx);
        return -1;
    }
    ri_model_info I = ri_model_get_info(m);
    for (uint32_t g = 1; g < greedy; g++) {
        int32_t next = 0;
        for (uint32_t i = 1; i < I.n_vocab; i++)
            if (logits[i] > logits[next])
                next = (int32_t)i;
        if (ri_forward(ctx, &next, 1, RI_LOGITS_LAST, logits, &err) != RF_OK) {
            fprintf(stderr, "bench-verify: %s\n", err.message);
            ri_context_free(ctx);
            return -1;
        }
    }
    ri_context_free(ctx);
    return 0;
}

static size_t capture_bytes(const ri_capture *c)
{
    size_t total = 0;
    ri_model_info I = ri_capture_info(c);
    for (int s = 0; s < RI_STAGE_COUNT; s++)
        for (int32_t l = -1; l < (int32_t)I.n_layers; l++) {
            uint32_t rows, cols;
            if (ri_capture_stage(c, (ri_stage)s, l, &rows, &cols))
                total += (size_t)rows * cols * sizeof(float);
        }
    return total;
}

int main(int argc, char **argv)
{
    char def[1024];
    const char *pa = NULL, *pb = NULL;
    int reps = 3;
    uint32_t n_tokens = 64, greedy = 8;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--a") == 0 && i + 1 < argc)
            pa = argv[++i];
        else if (strcmp(argv[i], "--b") == 0 && i + 1 < argc)
            pb = argv[++i];
        else if (strcmp(argv[i], "--tokens") == 0 && i + 1 < argc)
            n_tokens = (uint32_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--greedy") == 0 && i + 1 < argc)
            greedy = (uint32_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench-verify [--a MODEL] [--b MODEL] [--tokens N] "
                            "[--greedy N] [--reps N]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 100 || n_tokens < 1 || n_tokens > 2048 || greedy < 1 || greedy > 256) {
        fprintf(stderr, "bench-verify: --reps 1..100, --tokens 1..2048, --greedy 1..256\n");
        return 2;
    }
    if (!pa)
        pa = default_model(def, sizeof def);
    if (!pb)
        pb = pa;
    ri_model *ma = open_model(pa), *mb = ma && strcmp(pa, pb) != 0 ? open_model(pb) : ma;
    if (!ma || !mb)
        return 1;

    /* the prompt: the first n_tokens ids of the README */
    size_t len = 0, n_ids = 0;
    char readme[1100];
    snprintf(readme, sizeof readme, "%s/README.md", ROSETTA_ROOT);
    char *text = read_file(readme, &len);
    rf_error err = {0};
    ri_tokenizer *tok = ri_tokenizer_from_model(ri_model_source(ma), &err);
    int32_t *ids = NULL;
    if (!text || !tok || ri_tokenize_alloc(tok, text, len, 0, &ids, &n_ids, &err) != RF_OK ||
        n_ids < n_tokens) {
        fprintf(stderr, "bench-verify: no %u-token prompt from %s: %s\n", n_tokens, readme,
                err.message);
        return 1;
    }
    ri_tokenizer_free(tok);
    free(text);

    ri_model_info ia = ri_model_get_info(ma), ib = ri_model_get_info(mb);
    float *logits = malloc((size_t)(ia.n_vocab > ib.n_vocab ? ia.n_vocab : ib.n_vocab) * 4);
    double *plain = calloc((size_t)reps, sizeof *plain), *cap = calloc((size_t)reps, sizeof *cap);
    double *cmp_t = calloc((size_t)reps, sizeof *cmp_t), *plain_cpu = calloc((size_t)reps, 8);
    double *cap_cpu = calloc((size_t)reps, 8);
    size_t bytes = 0;
    ri_capture_params cp = ri_capture_params_default();
    cp.n_greedy = greedy;
    int rc = 0;
    for (int r = 0; r < reps && rc == 0; r++) {
        double t0 = now(), c0 = cpu_now();
        if (plain_run(ma, ids, n_tokens, greedy, logits) ||
            plain_run(mb, ids, n_tokens, greedy, logits)) {
            rc = 1;
            break;
        }
        double t1 = now(), c1 = cpu_now();
        ri_capture *a = ri_capture_run_ids(ma, ids, n_tokens, &cp, &err);
        ri_capture *b = a ? ri_capture_run_ids(mb, ids, n_tokens, &cp, &err) : NULL;
        double t2 = now();
        ri_compare *cmp = b ? ri_compare_new(a, b, NULL, &err) : NULL;
        double t3 = now(), c3 = cpu_now();
        if (!cmp) {
            fprintf(stderr, "bench-verify: %s\n", err.message);
            rc = 1;
        } else {
            bytes = capture_bytes(a) + capture_bytes(b);
        }
        ri_compare_free(cmp);
        ri_capture_free(a);
        ri_capture_free(b);
        plain[r] = t1 - t0;
        cap[r] = t2 - t1;
        cmp_t[r] = t3 - t2;
        plain_cpu[r] = c1 - c0;
        cap_cpu[r] = c3 - c1;
    }
    if (rc == 0) {
        double p = median(plain, reps), c = median(cap, reps), k = median(cmp_t, reps);
        double pc = median(plain_cpu, reps), cc = median(cap_cpu, reps);
        printf("{\"bench\":\"verify\",\"model_a\":\"%s\",\"model_b\":\"%s\",\"engine\":\"%s\","
               "\"tokens\":%u,\"greedy\":%u,\"reps\":%d,\"plain_s\":%.4f,\"capture_s\":%.4f,"
               "\"compare_s\":%.4f,\"ratio\":%.3f,\"ratio_cpu_time\":%.3f,"
               "\"capture_bytes\":%zu}\n",
               pa, pb, ri_model_path_name(ma), n_tokens, greedy, reps, p, c, k, (c + k) / p,
               cc / pc, bytes);
    }
    free(ids);
    free(logits);
    free(plain);
    free(cap);
    free(cmp_t);
    free(plain_cpu);
    free(cap_cpu);
    if (mb != ma)
        ri_model_free(mb);
    ri_model_free(ma);
    return rc;
}
