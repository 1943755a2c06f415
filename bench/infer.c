/* Inference speed against llama.cpp in the same run: for each model and thread count, `apr bench`
 * (Rosetta) and bench/llama/llama_bench.c (llama.cpp, built by scripts/build-llama-bench) measure
 * prefill and decode tokens/s the same way, each in its own process (so that each peak RSS is its
 * own), one after the other; then the ratios, Rosetta's peak RSS against its budget (file + KV
 * cache + 64 MiB), and the decode roofline: DRAM read bandwidth, measured here, over the weight
 * bytes a decoded token reads.
 * One JSON object per line on stdout; the ratios are Rosetta / llama.cpp of the medians, by
 * wall-clock time and by process CPU time (steadier when other programs share the cores).
 *
 * usage: bench-infer [--model PATH]... [--threads LIST] [-p N] [-n N] [--reps R]
 *                    [--apr-bench PATH] [--llama-bench PATH]
 * Defaults: the real Qwen2.5-Coder-0.5B (scripts/fetch-real-model), threads 1,2, -p 512,
 * -n 128, 3 reps, apr-bench beside this program's ../bin, llama_bench from
 * $ROSETTA_LLAMA_BENCH or ../llama-bench/llama_bench (scripts/bench-infer builds both and the
 * other models). Without llama_bench only Rosetta's figures are printed.
 * Not for: correctness (tests/tools/engine_llama_oracle.sh). */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#ifndef ROSETTA_ROOT
#define ROSETTA_ROOT "."
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- DRAM read bandwidth ------------------------------------------------------------------ */

#define BW_BYTES ((size_t)1 << 30)

typedef struct bw_job {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} bw_job;

static void *bw_read(void *arg)
{
    bw_job *j = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= j->n; i += 4) {
        s0 += j->p[i];
        s1 += j->p[i + 1];
        s2 += j->p[i + 2];
        s3 += j->p[i + 3];
    }
    j->sum = s0 + s1 + s2 + s3;
    return NULL;
}

/* Best of 5 reads of a 1 GiB buffer split over `threads` threads, in GB/s (1e9 bytes). */
static double dram_bandwidth(int threads)
{
    if (threads < 1 || threads > 64)
        return 0;
    uint64_t *buf = malloc(BW_BYTES);
    if (!buf)
        return 0;
    size_t n = BW_BYTES / sizeof *buf;
    for (size_t i = 0; i < n; i++)
        buf[i] = i;
    double best = 0;
    uint64_t keep = 0;
    for (int rep = 0; rep < 5; rep++) {
        bw_job jobs[64] = {{0}};
        pthread_t tids[64];
        size_t per = n / (size_t)threads;
        double t0 = now();
        for (int t = 0; t < threads; t++) {
            jobs[t] = (bw_job){buf + per * (size_t)t, per, 0};
            if (t > 0)
                pthread_create(&tids[t], NULL, bw_read, &jobs[t]);
        }
        bw_read(&jobs[0]);
        for (int t = 1; t < threads; t++)
            pthread_join(tids[t], NULL);
        double gbs = (double)(per * (size_t)threads * sizeof *buf) / (now() - t0) / 1e9;
        for (int t = 0; t < threads; t++)
            keep += jobs[t].sum;
        if (gbs > best)
            best = gbs;
    }
    free(buf);
    return keep == 42 ? best + 1e-12 : best; /* keep the sums alive */
}

/* ---- children ------------------------------------------------------------------------------ */

/* Runs a command and parses the last line of its stdout as JSON; NULL on failure. */
static cJSON *run_json(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return NULL;
    char line[8192], last[8192] = "";
    while (fgets(line, sizeof line, f))
        if (line[0] == '{')
            snprintf(last, sizeof last, "%s", line);
    int rc = pclose(f);
    if (rc != 0) {
        fprintf(stderr, "bench-infer: '%s' failed (status %d)\n", cmd, rc);
        return NULL;
    }
    return cJSON_Parse(last);
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int main(int argc, char **argv)
{
    const char *models[16];
    int n_models = 0, threads[8] = {1, 2}, n_threads = 2, n_prompt = 512, n_gen = 128, reps = 3;
    char apr_bench[8192] = "", llama_bench[8192] = "", real[4096] = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench-infer: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--model") == 0 && n_models < 16) {
            models[n_models++] = v;
        } else if (strcmp(a, "--threads") == 0) {
            n_threads = 0;
            for (const char *s = v; *s && n_threads < 8;) {
                threads[n_threads++] = atoi(s);
                s = strchr(s, ',') ? strchr(s, ',') + 1 : s + strlen(s);
            }
        } else if (strcmp(a, "-p") == 0) {
            n_prompt = atoi(v);
        } else if (strcmp(a, "-n") == 0) {
            n_gen = atoi(v);
        } else if (strcmp(a, "--reps") == 0) {
            reps = atoi(v);
        } else if (strcmp(a, "--apr-bench") == 0) {
            snprintf(apr_bench, sizeof apr_bench, "%s", v);
        } else if (strcmp(a, "--llama-bench") == 0) {
            snprintf(llama_bench, sizeof llama_bench, "%s", v);
        } else {
            fprintf(stderr, "bench-infer: unknown option %s\n", a);
            return 2;
        }
    }
    char self[4096 + 64];
    ssize_t len = readlink("/proc/self/exe", self, 4095);
    self[len > 0 ? len : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0'; /* <build>/bench */
    if (!apr_bench[0])
        snprintf(apr_bench, sizeof apr_bench, "%s/../bin/apr-bench", self);
    if (!llama_bench[0]) {
        const char *env = getenv("ROSETTA_LLAMA_BENCH");
        snprintf(llama_bench, sizeof llama_bench, "%s",
                 env ? env : strcat(self, "/../llama-bench/llama_bench"));
    }
    bool have_llama = access(llama_bench, X_OK) == 0;
    if (n_models == 0) {
        FILE *f = popen(ROSETTA_ROOT "/scripts/fetch-real-model 2>/dev/null", "r");
        if (f && fgets(real, sizeof real, f))
            real[strcspn(real, "\n")] = '\0';
        if (f)
            pclose(f);
        if (!real[0]) {
            printf("{\"bench\":\"infer\",\"skipped\":\"no model (scripts/fetch-real-model "
                   "failed)\"}\n");
            return 0;
        }
        models[n_models++] = real;
    }

    double bw[8];
    for (int t = 0; t < n_threads; t++) {
        bw[t] = dram_bandwidth(threads[t]);
        printf("{\"bench\":\"infer\",\"dram_read_gbs\":%.2f,\"threads\":%d}\n", bw[t], threads[t]);
        fflush(stdout);
    }
    for (int m = 0; m < n_models; m++) {
        for (int t = 0; t < n_threads; t++) {
            char cmd[12288];
            snprintf(cmd, sizeof cmd, "'%s' '%s' -p %d -n %d -t %d -r %d --json", apr_bench,
                     models[m], n_prompt, n_gen, threads[t], reps);
            cJSON *ro = run_json(cmd);
            cJSON *ll = NULL;
            if (have_llama) {
                snprintf(cmd, sizeof cmd, "'%s' '%s' -p %d -n %d -t %d -r %d", llama_bench,
                         models[m], n_prompt, n_gen, threads[t], reps);
                ll = run_json(cmd);
            }
            double weight = num(ro, "weight_bytes"), file = num(ro, "file_bytes");
            double kv = num(ro, "kv_bytes"), rss = num(ro, "peak_rss_mib");
            double roof = weight > 0 ? bw[t] * 1e9 / weight : 0;
            double budget = (file + kv) / 1048576.0 + 64;
            printf("{\"bench\":\"infer\",\"model\":\"%s\",\"threads\":%d,\"prefill_tokens\":%d,"
                   "\"decode_tokens\":%d,\"rosetta\":{\"path\":\"%s\",\"prefill_tok_s\":%.2f,"
                   "\"decode_tok_s\":%.2f,\"prefill_cpu_tok_s\":%.2f,\"decode_cpu_tok_s\":%.2f,"
                   "\"peak_rss_mib\":%.1f}",
                   base_name(models[m]), threads[t], n_prompt, n_gen,
                   ro && cJSON_GetObjectItem(ro, "path")
                       ? cJSON_GetObjectItem(ro, "path")->valuestring
                       : "failed",
                   num(ro, "prefill_tok_s"), num(ro, "decode_tok_s"), num(ro, "prefill_cpu_tok_s"),
                   num(ro, "decode_cpu_tok_s"), rss);
            if (ll)
                printf(
                    ",\"llama\":{\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f,"
                    "\"prefill_cpu_tok_s\":%.2f,\"decode_cpu_tok_s\":%.2f,"
                    "\"peak_rss_mib\":%.1f,\"kv\":\"%s\",\"flash_attn\":\"%s\"},"
                    "\"prefill_ratio\":%.3f,\"decode_ratio\":%.3f,"
                    "\"prefill_ratio_cpu_time\":%.3f,\"decode_ratio_cpu_time\":%.3f",
                    num(ll, "prefill_tok_s"), num(ll, "decode_tok_s"), num(ll, "prefill_cpu_tok_s"),
                    num(ll, "decode_cpu_tok_s"), num(ll, "peak_rss_mib"),
                    cJSON_GetObjectItem(ll, "kv") ? cJSON_GetObjectItem(ll, "kv")->valuestring
                                                  : "?",
                    cJSON_GetObjectItem(ll, "flash_attn")
                        ? cJSON_GetObjectItem(ll, "flash_attn")->valuestring
                        : "?",
                    num(ll, "prefill_tok_s") > 0
                        ? num(ro, "prefill_tok_s") / num(ll, "prefill_tok_s")
                        : 0,
                    num(ll, "decode_tok_s") > 0 ? num(ro, "decode_tok_s") / num(ll, "decode_tok_s")
                                                : 0,
                    num(ll, "prefill_cpu_tok_s") > 0
                        ? num(ro, "prefill_cpu_tok_s") / num(ll, "prefill_cpu_tok_s")
                        : 0,
                    num(ll, "decode_cpu_tok_s") > 0
                        ? num(ro, "decode_cpu_tok_s") / num(ll, "decode_cpu_tok_s")
                        : 0);
            printf(
                ",\"weight_bytes\":%.0f,\"dram_read_gbs\":%.2f,\"roofline_decode_tok_s\":%.2f,"
                "\"decode_roofline_frac\":%.3f,\"rss_budget_mib\":%.1f,\"rss_within_budget\":%s}\n",
                weight, bw[t], roof, roof > 0 ? num(ro, "decode_tok_s") / roof : 0, budget,
                rss > 0 && rss <= budget ? "true" : "false");
            fflush(stdout);
            cJSON_Delete(ro);
            cJSON_Delete(ll);
        }
    }
    return 0;
}
