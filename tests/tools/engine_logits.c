/* engine_logits: Rosetta's twin of tests/oracle/llama_engine.c for the engine-parity tests: the
 * greedy continuation of a token sequence (decoded with the KV cache) and the logits of every
 * position (teacher forcing), and, with --against, the comparison with another engine's logits
 * of the same sequence: top-1 agreement, KL divergence of the next-token distributions
 * (reference || this engine, in nats), NMSE and max |diff| relative to max |logit|.
 *
 * usage: engine_logits MODEL --ids A,B,... [--greedy N] [--logits OUT.bin] [--against REF.bin]
 *                      [--threads N] [--kv f32|f16] [--reference] [--ctx N] [--batch N]
 * stdout: one JSON line {"n_vocab":V,"ids":[...],"greedy":[...], "path":"...",
 *         and with --against "top1":x,"kl_mean":x,"kl_max":x,"nmse":x,"max_rel":x}.
 * Exit 0 ok, 2 usage, 3 model or input error. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosetta/infer.h"

static int fail(int code, const char *what, const char *msg)
{
    fprintf(stderr, "engine_logits: %s%s%s\n", what, msg ? ": " : "", msg ? msg : "");
    return code;
}

static int32_t argmax(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

/* log-softmax of x into out (double) */
static void log_softmax(const float *x, size_t n, double *out)
{
    double max = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++)
        max = fmax(max, x[i]);
    for (size_t i = 0; i < n; i++)
        sum += exp((double)x[i] - max);
    double lse = max + log(sum);
    for (size_t i = 0; i < n; i++)
        out[i] = (double)x[i] - lse;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *ids_arg = NULL, *logits_path = NULL, *against = NULL;
    int greedy = 0, threads = 1;
    unsigned n_ctx = 2048, n_batch = 0;
    bool reference = false;
    ri_kv_type kv = RI_KV_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--reference") == 0) {
            reference = true;
            continue;
        }
        if (a[0] != '-') {
            model_path = a;
            continue;
        }
        if (!v)
            return fail(2, a, "needs a value");
        i++;
        if (strcmp(a, "--ids") == 0)
            ids_arg = v;
        else if (strcmp(a, "--greedy") == 0)
            greedy = atoi(v);
        else if (strcmp(a, "--logits") == 0)
            logits_path = v;
        else if (strcmp(a, "--against") == 0)
            against = v;
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(v);
        else if (strcmp(a, "--ctx") == 0)
            n_ctx = (unsigned)atoi(v);
        else if (strcmp(a, "--batch") == 0)
            n_batch = (unsigned)atoi(v);
        else if (strcmp(a, "--kv") == 0)
            kv = strcmp(v, "f16") == 0 ? RI_KV_F16 : RI_KV_F32;
        else
            return fail(2, a, "unknown option");
    }
    if (!model_path || !ids_arg)
        return fail(2, "usage", "engine_logits MODEL --ids A,B,... [options]");

    size_t n_ids = 0, cap = 64;
    int32_t *ids = malloc(cap * sizeof *ids);
    for (const char *s = ids_arg; ids && *s;) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s)
            break;
        if (n_ids == cap) {
            int32_t *p = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!p)
                return fail(3, "out of memory", NULL);
            ids = p;
        }
        ids[n_ids++] = (int32_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    if (n_ids == 0)
        return fail(2, "--ids", "no ids");

    rf_error err = {0};
    ri_model_params mp = ri_model_params_default();
    mp.path = reference ? RI_PATH_REFERENCE : RI_PATH_FAST;
    ri_model *m = ri_model_open(model_path, &mp, &err);
    if (!m)
        return fail(3, model_path, err.message);
    ri_model_info info = ri_model_get_info(m);
    size_t V = info.n_vocab;
    ri_context_params cp = ri_context_params_default();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_threads = threads;
    cp.kv_type = kv;
    ri_context *ctx = ri_context_new(m, &cp, &err);
    if (!ctx)
        return fail(3, "context", err.message);
    float *logits = malloc(n_ids * V * sizeof *logits);
    if (!logits)
        return fail(3, "out of memory", NULL);
    if (ri_forward(ctx, ids, n_ids, RI_LOGITS_ALL, logits, &err) != RF_OK)
        return fail(3, "forward", err.message);
    if (logits_path) {
        FILE *f = fopen(logits_path, "wb");
        if (!f || fwrite(logits, sizeof(float), n_ids * V, f) != n_ids * V || fclose(f) != 0)
            return fail(3, logits_path, "cannot write");
    }

    int32_t *gen = calloc((size_t)greedy + 1, sizeof *gen);
    float *step = malloc(V * sizeof *step);
    int32_t next = argmax(logits + (n_ids - 1) * V, V);
    for (int g = 0; g < greedy; g++) {
        gen[g] = next;
        if (g + 1 == greedy)
            break;
        if (ri_forward(ctx, &next, 1, RI_LOGITS_LAST, step, &err) != RF_OK)
            return fail(3, "forward", err.message);
        next = argmax(step, V);
    }

    printf("{\"n_vocab\":%zu,\"path\":\"%s\",\"ids\":[", V, ri_model_path_name(m));
    for (size_t i = 0; i < n_ids; i++)
        printf("%s%d", i ? "," : "", ids[i]);
    printf("],\"greedy\":[");
    for (int g = 0; g < greedy; g++)
        printf("%s%d", g ? "," : "", gen[g]);
    printf("]");

    if (against) {
        FILE *f = fopen(against, "rb");
        float *ref = malloc(n_ids * V * sizeof *ref);
        if (!f || !ref || fread(ref, sizeof(float), n_ids * V, f) != n_ids * V)
            return fail(3, against, "cannot read n_ids x n_vocab floats");
        fclose(f);
        double *lp = malloc(V * sizeof *lp), *lq = malloc(V * sizeof *lq);
        double kl_sum = 0, kl_max = 0, se = 0, var = 0, max_abs = 0, max_diff = 0;
        size_t agree = 0;
        for (size_t t = 0; t < n_ids; t++) {
            const float *p = ref + t * V, *q = logits + t * V;
            agree += argmax(p, V) == argmax(q, V);
            log_softmax(p, V, lp);
            log_softmax(q, V, lq);
            double kl = 0, mean = 0;
            for (size_t i = 0; i < V; i++) {
                kl += exp(lp[i]) * (lp[i] - lq[i]);
                mean += p[i];
                max_abs = fmax(max_abs, fabs(p[i]));
                max_diff = fmax(max_diff, fabs(p[i] - q[i]));
            }
            mean /= (double)V;
            for (size_t i = 0; i < V; i++) {
                se += ((double)p[i] - q[i]) * ((double)p[i] - q[i]);
                var += ((double)p[i] - mean) * ((double)p[i] - mean);
            }
            kl_sum += kl;
            kl_max = fmax(kl_max, kl);
        }
        printf(",\"positions\":%zu,\"top1\":%.6f,\"kl_mean\":%.6g,\"kl_max\":%.6g,\"nmse\":%.6g,"
               "\"max_rel\":%.6g",
               n_ids, (double)agree / (double)n_ids, kl_sum / (double)n_ids, kl_max, se / var,
               max_diff / max_abs);
        free(lp);
        free(lq);
        free(ref);
    }
    printf("}\n");
    free(step);
    free(gen);
    free(logits);
    free(ids);
    ri_context_free(ctx);
    ri_model_free(m);
    return 0;
}
