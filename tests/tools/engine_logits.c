/* engine_logits: Rosetta's side of the engine-parity tests (tests/oracle/llama_engine.c is
 * llama.cpp's). For each prompt: the greedy continuation decoded with the KV cache, and, with
 * --teacher/--against, the comparison with another engine on that engine's own sequence
 * (teacher forcing: prompt + its greedy tokens but the last, every position's logits):
 * top-1 agreement, KL divergence of the next-token distributions (other || Rosetta, nats), NMSE
 * (squared error / variance of the other's logits) and max |diff| / max |logit|.
 *
 * usage: engine_logits MODEL --ids-file F [--greedy N] [--teacher OTHER.jsonl --against OTHER.bin]
 *                      [--logits OUT.bin] [--threads N] [--kv f32|f16] [--reference]
 *                      [--ctx N] [--batch N] [--margin M] [--trace]
 *   --ids-file  one prompt per line, ids comma separated
 *   --teacher   the other engine's JSON lines ({"greedy":[...]} per prompt, llama_engine's
 *               output); --against its logits rows in llama_engine's --logits layout
 *   --logits    this engine's rows in the same layout, on its own greedy sequence
 *   --trace     with a trace hook that does nothing (the fast path then computes each stage
 *               whole, e.g. the MLP's gate and up for the whole batch: the results must not change)
 *   --margin M  near-ties: positions where the other's top-2 logit gap is below M are left out
 *               of "top1_clear", and a greedy divergence at such a step is "greedy_ok"
 * stdout: one JSON line per prompt {"prompt":i,"greedy":[...]} plus, with --teacher,
 * "greedy_same" (leading tokens equal to the other's), "top1", "kl_mean", "kl_max", "nmse",
 * "max_rel", "clear", "top1_clear", "greedy_ok"; then a summary line
 * {"summary":true,"prompts":..,"positions":..,"top1":..,
 * "kl_mean":..,"kl_max":..,"nmse_max":..,"max_rel":..,"greedy_equal":.. (prompts whose
 * continuations are identical),"greedy_ok":.. (identical, or diverging at a near-tie),
 * "clear":.. (positions that are no near-tie),"top1_clear":..}. Exit 0 ok, 2 usage, 3 model or
 * input error. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rosetta/infer.h"

/* Reports and exits (the process ends: nothing to free). */
static _Noreturn void fail(int code, const char *what, const char *msg)
{
    fprintf(stderr, "engine_logits: %s%s%s\n", what, msg ? ": " : "", msg ? msg : "");
    exit(code);
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
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        max = fmax(max, x[i]);
    for (size_t i = 0; i < n; i++)
        sum += exp((double)x[i] - max);
    double lse = max + log(sum);
    for (size_t i = 0; i < n; i++)
        out[i] = (double)x[i] - lse;
}

static size_t parse_ids(const char *s, int32_t *ids, size_t cap)
{
    size_t n = 0;
    while (*s && n < cap) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s)
            break;
        ids[n++] = (int32_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

typedef struct totals {
    size_t prompts, positions, agree, greedy_equal, greedy_ok, clear, clear_agree;
    double kl_sum, kl_max, nmse_max, max_rel;
} totals;

/* top-1 minus top-2 of x */
static double margin_of(const float *x, size_t n)
{
    double a = -INFINITY, b = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (x[i] > a) {
            b = a;
            a = x[i];
        } else if (x[i] > b) {
            b = x[i];
        }
    }
    return a - b;
}

/* Compares rows of this engine (q) with the other's (p) for n positions; prints the figures.
 * Positions where the other's top-2 margin is below min_margin are near-ties: left out of
 * "top1_clear". */
static void compare(const float *p, const float *q, size_t n, size_t V, double min_margin,
                    totals *tot)
{
    size_t clear = 0, clear_agree = 0;
    double *lp = malloc(V * sizeof *lp), *lq = malloc(V * sizeof *lq);
    double kl_sum = 0, kl_max = 0, se = 0, var = 0, max_abs = 0, max_diff = 0;
    size_t agree = 0;
    for (size_t t = 0; t < n; t++) {
        const float *pr = p + t * V, *qr = q + t * V;
        bool same = argmax(pr, V) == argmax(qr, V);
        agree += same;
        if (margin_of(pr, V) >= min_margin) {
            clear++;
            clear_agree += same;
        }
        log_softmax(pr, V, lp);
        log_softmax(qr, V, lq);
        double kl = 0, mean = 0;
        for (size_t i = 0; i < V; i++) {
            kl += exp(lp[i]) * (lp[i] - lq[i]);
            mean += pr[i];
            max_abs = fmax(max_abs, fabs((double)pr[i]));
            max_diff = fmax(max_diff, fabs((double)pr[i] - (double)qr[i]));
        }
        mean /= (double)V;
        for (size_t i = 0; i < V; i++) {
            se += ((double)pr[i] - qr[i]) * ((double)pr[i] - qr[i]);
            var += ((double)pr[i] - mean) * ((double)pr[i] - mean);
        }
        kl_sum += kl;
        kl_max = fmax(kl_max, kl);
    }
    double nmse = var > 0 ? se / var : 0;
    printf(",\"clear\":%zu,\"top1_clear\":%.6f", clear,
           clear ? (double)clear_agree / (double)clear : 1.0);
    tot->clear += clear;
    tot->clear_agree += clear_agree;
    printf(",\"positions\":%zu,\"top1\":%.6f,\"kl_mean\":%.6g,\"kl_max\":%.6g,\"nmse\":%.6g,"
           "\"max_rel\":%.6g",
           n, (double)agree / (double)n, kl_sum / (double)n, kl_max, nmse, max_diff / max_abs);
    tot->positions += n;
    tot->agree += agree;
    tot->kl_sum += kl_sum;
    tot->kl_max = fmax(tot->kl_max, kl_max);
    tot->nmse_max = fmax(tot->nmse_max, nmse);
    tot->max_rel = fmax(tot->max_rel, max_diff / max_abs);
    free(lp);
    free(lq);
}

static void ignore_stage(void *user, const ri_trace_event *ev)
{
    (void)user;
    (void)ev;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *ids_file = NULL, *logits_path = NULL, *against = NULL;
    const char *teacher = NULL;
    int greedy = 0, threads = 1;
    double min_margin = 0;
    unsigned n_ctx = 2048, n_batch = 0;
    bool reference = false, trace = false;
    ri_kv_type kv = RI_KV_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--reference") == 0) {
            reference = true;
            continue;
        }
        if (strcmp(a, "--trace") == 0) {
            trace = true;
            continue;
        }
        if (a[0] != '-') {
            model_path = a;
            continue;
        }
        if (!v)
            fail(2, a, "needs a value");
        i++;
        if (strcmp(a, "--ids-file") == 0)
            ids_file = v;
        else if (strcmp(a, "--greedy") == 0)
            greedy = atoi(v);
        else if (strcmp(a, "--logits") == 0)
            logits_path = v;
        else if (strcmp(a, "--against") == 0)
            against = v;
        else if (strcmp(a, "--teacher") == 0)
            teacher = v;
        else if (strcmp(a, "--margin") == 0)
            min_margin = atof(v);
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(v);
        else if (strcmp(a, "--ctx") == 0)
            n_ctx = (unsigned)atoi(v);
        else if (strcmp(a, "--batch") == 0)
            n_batch = (unsigned)atoi(v);
        else if (strcmp(a, "--kv") == 0)
            kv = strcmp(v, "f16") == 0 ? RI_KV_F16 : RI_KV_F32;
        else
            fail(2, a, "unknown option");
    }
    if (!model_path || !ids_file || greedy < 1 || (!teacher != !against))
        fail(2, "usage", "engine_logits MODEL --ids-file F --greedy N [--teacher J --against B]");

    rf_error err = {0};
    ri_model_params mp = ri_model_params_default();
    mp.path = reference ? RI_PATH_REFERENCE : RI_PATH_FAST;
    ri_model *m = ri_model_open(model_path, &mp, &err);
    if (!m)
        fail(3, model_path, err.message);
    size_t V = ri_model_get_info(m).n_vocab;
    ri_context_params cp = ri_context_params_default();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_threads = threads;
    cp.kv_type = kv;
    cp.trace = trace ? ignore_stage : NULL;
    ri_context *ctx = ri_context_new(m, &cp, &err);
    if (!ctx)
        fail(3, "context", err.message);

    FILE *idf = fopen(ids_file, "r");
    FILE *tf = teacher ? fopen(teacher, "r") : NULL;
    FILE *af = against ? fopen(against, "rb") : NULL;
    FILE *lf = logits_path ? fopen(logits_path, "wb") : NULL;
    if (!idf || (teacher && (!tf || !af)) || (logits_path && !lf))
        fail(3, "cannot open", "the ids, teacher, against or logits file");
    size_t cap = n_ctx;
    int32_t *seq = malloc(cap * sizeof *seq), *gen = malloc((size_t)greedy * sizeof *gen);
    float *rows = malloc(cap * V * sizeof *rows), *other = malloc(cap * V * sizeof *other);
    if (!seq || !gen || !rows || !other)
        fail(3, "out of memory", NULL);
    char *line = NULL, *tline = NULL;
    size_t line_cap = 0, tline_cap = 0;
    totals tot = {0};
    while (getline(&line, &line_cap, idf) >= 0) {
        size_t n = parse_ids(line, seq, cap);
        if (n == 0)
            continue;
        if (n + (size_t)greedy > cap)
            fail(2, ids_file, "a prompt longer than --ctx allows");
        /* own greedy continuation, cached decode */
        ri_context_reset(ctx);
        float *step = rows + n * V; /* scratch past the prompt rows */
        if (ri_forward(ctx, seq, n, RI_LOGITS_LAST, step, &err) != RF_OK)
            fail(3, "forward", err.message);
        for (int g = 0; g < greedy; g++) {
            gen[g] = argmax(step, V);
            if (g + 1 < greedy && ri_forward(ctx, &gen[g], 1, RI_LOGITS_LAST, step, &err))
                fail(3, "forward", err.message);
        }
        printf("{\"prompt\":%zu,\"greedy\":[", tot.prompts);
        for (int g = 0; g < greedy; g++)
            printf("%s%d", g ? "," : "", gen[g]);
        printf("]");

        /* the sequence to evaluate: prompt + greedy (the other's with --teacher) but the last */
        const int32_t *cont = gen;
        int32_t teacher_ids[4096];
        int diverged_at = -1; /* first greedy step where this engine differs from the other */
        if (tf) {
            if (getline(&tline, &tline_cap, tf) < 0)
                fail(3, teacher, "fewer lines than prompts");
            cJSON *j = cJSON_Parse(tline);
            const cJSON *g = j ? cJSON_GetObjectItem(j, "greedy") : NULL;
            if (!cJSON_IsArray(g) || cJSON_GetArraySize(g) != greedy)
                fail(3, teacher, "no greedy array of --greedy ids");
            int i = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, g) teacher_ids[i++] = (int32_t)e->valuedouble;
            cJSON_Delete(j);
            cont = teacher_ids;
            int same = 0;
            while (same < greedy && gen[same] == teacher_ids[same])
                same++;
            printf(",\"greedy_same\":%d", same);
            tot.greedy_equal += same == greedy;
            if (same < greedy)
                diverged_at = same;
        }
        memcpy(seq + n, cont, (size_t)(greedy - 1) * sizeof *seq);
        size_t total = n + (size_t)greedy - 1;
        ri_context_reset(ctx);
        if (ri_forward(ctx, seq, total, RI_LOGITS_ALL, rows, &err) != RF_OK)
            fail(3, "forward", err.message);
        if (lf && fwrite(rows, sizeof(float), total * V, lf) != total * V)
            fail(3, logits_path, "cannot write");
        if (af) {
            if (fread(other, sizeof(float), total * V, af) != total * V)
                fail(3, against, "fewer logits rows than the sequences need");
            compare(other, rows, total, V, min_margin, &tot);
            /* a greedy divergence is acceptable where the other engine's choice was a near-tie:
             * step g chose from the row of position n - 1 + g */
            bool ok = diverged_at < 0 ||
                      margin_of(other + (n - 1 + (size_t)diverged_at) * V, V) < min_margin;
            printf(",\"greedy_ok\":%s", ok ? "true" : "false");
            tot.greedy_ok += ok;
        }
        printf("}\n");
        tot.prompts++;
    }
    if (af)
        printf("{\"summary\":true,\"path\":\"%s\",\"prompts\":%zu,\"positions\":%zu,\"top1\":%.6f,"
               "\"kl_mean\":%.6g,\"kl_max\":%.6g,\"nmse_max\":%.6g,\"max_rel\":%.6g,"
               "\"greedy_equal\":%zu,\"greedy_ok\":%zu,\"clear\":%zu,\"top1_clear\":%.6f}\n",
               ri_model_path_name(m), tot.prompts, tot.positions,
               (double)tot.agree / (double)tot.positions, tot.kl_sum / (double)tot.positions,
               tot.kl_max, tot.nmse_max, tot.max_rel, tot.greedy_equal, tot.greedy_ok, tot.clear,
               tot.clear ? (double)tot.clear_agree / (double)tot.clear : 1.0);
    if (lf && fclose(lf) != 0)
        fail(3, logits_path, "cannot write");
    fclose(idf);
    if (tf)
        fclose(tf);
    if (af)
        fclose(af);
    free(line);
    free(tline);
    free(seq);
    free(gen);
    free(rows);
    free(other);
    ri_context_free(ctx);
    ri_model_free(m);
    return 0;
}
