/* apr-bench: prefill and decode speed of the engine on a model, as llama-bench measures them:
 * a prompt of P random tokens processed in one batch (prefill), then N tokens decoded one at a
 * time (decode), each repeated R times after a warm-up; median, min and max tokens per second.
 * Not for: comparing with llama.cpp (bench/infer does that in the same run). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "gen_opts.h"
#include "rosetta/infer.h"

static const cli_tool TOOL = {
    "bench", "measure prefill and decode speed of the inference engine",
    "usage: apr bench MODEL [-p N] [-n N] [--threads N] [--reps R] [--json]\n\n"
    "Runs the engine on random token ids (seeded, the same every run): a prompt of -p tokens in\n"
    "one batch (prefill), then -n tokens decoded one at a time from an empty cache (decode).\n"
    "Each test runs once to warm up, then --reps times; prints tokens per second (median, min,\n"
    "max), load time and peak resident memory. Exit 3 if the model cannot be loaded.\n\n"
    "Options:\n"
    "  -p, --prompt-tokens N  prefill length (default 512; 0 skips the test)\n"
    "  -n, --gen-tokens N     decode length (default 128; 0 skips the test)\n"
    "  -t, --threads N        worker threads (default: one per online CPU)\n"
    "  -r, --reps R           measured repetitions (default 5)\n"
    "      --kv f32|f16       KV cache type (default f32)\n"
    "      --reference        the scalar reference path instead of the fast path\n"
    "      --skip-contract    run even when the model breaks a structural contract rule\n"
    "                         (otherwise exit 5 naming the rules; see apr validate)\n"
    "      --json             one JSON object: model, path, threads, prefill_tokens,\n"
    "                         prefill_tok_s (median), prefill_tok_s_min, prefill_tok_s_max,\n"
    "                         decode_tokens, decode_tok_s, decode_tok_s_min, decode_tok_s_max,\n"
    "                         prefill_cpu_tok_s, decode_cpu_tok_s (tokens per CPU-second of\n"
    "                         the process, medians: steadier on a shared machine),\n"
    "                         load_s, file_bytes, weight_bytes (read per decoded token),\n"
    "                         kv_bytes (the KV cache), peak_rss_mib\n"};

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }

/* CPU time of the whole process (all threads): on a shared machine it leaves out the time other
 * programs hold the cores, so tokens per CPU-second are steadier than per wall-clock second. */
static double cpu_now(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

/* One measurement: tokens per wall-clock second and per CPU second. */
typedef struct speed {
    double wall, cpu;
} speed;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct result {
    double median, min, max;
} result;

static result summarize(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return (result){med, v[0], v[n - 1]};
}

/* one prefill of n ids from an empty cache */
static rf_status run_prefill(ri_context *ctx, const int32_t *ids, int n, float *logits, speed *out,
                             rf_error *err)
{
    ri_context_reset(ctx);
    double t0 = now(), c0 = cpu_now();
    rf_status st = ri_forward(ctx, ids, (size_t)n, RI_LOGITS_LAST, logits, err);
    out->wall = n / (now() - t0);
    out->cpu = n / (cpu_now() - c0);
    return st;
}

/* n single-token steps from an empty cache */
static rf_status run_decode(ri_context *ctx, const int32_t *ids, int n, float *logits, speed *out,
                            rf_error *err)
{
    ri_context_reset(ctx);
    double t0 = now(), c0 = cpu_now();
    for (int i = 0; i < n; i++) {
        rf_status st = ri_forward(ctx, &ids[i], 1, RI_LOGITS_LAST, logits, err);
        if (st != RF_OK)
            return st;
    }
    out->wall = n / (now() - t0);
    out->cpu = n / (cpu_now() - c0);
    return RF_OK;
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    int n_prompt = 512, n_gen = 128, threads = 0, reps = 5;
    bool json = false, reference = false, skip_contract = false;
    ri_kv_type kv = RI_KV_F32;
    static const struct option longopts[] = {{"prompt-tokens", required_argument, NULL, 'p'},
                                             {"gen-tokens", required_argument, NULL, 'n'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"reps", required_argument, NULL, 'r'},
                                             {"kv", required_argument, NULL, 'k'},
                                             {"reference", no_argument, NULL, 'R'},
                                             {"skip-contract", no_argument, NULL, 'S'},
                                             {"json", no_argument, NULL, 'j'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "p:n:t:r:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            if (!parse_int(optarg, 0, 1 << 20, &n_prompt))
                return cli_usage_error(&TOOL, "-p: a token count, not '%s'", optarg);
            break;
        case 'n':
            if (!parse_int(optarg, 0, 1 << 20, &n_gen))
                return cli_usage_error(&TOOL, "-n: a token count, not '%s'", optarg);
            break;
        case 't':
            if (!parse_int(optarg, 1, 256, &threads))
                return cli_usage_error(&TOOL, "--threads: 1..256, not '%s'", optarg);
            break;
        case 'r':
            if (!parse_int(optarg, 1, 1000, &reps))
                return cli_usage_error(&TOOL, "--reps: 1..1000, not '%s'", optarg);
            break;
        case 'k':
            if (strcmp(optarg, "f32") != 0 && strcmp(optarg, "f16") != 0)
                return cli_usage_error(&TOOL, "--kv: f32 or f16, not '%s'", optarg);
            kv = strcmp(optarg, "f16") == 0 ? RI_KV_F16 : RI_KV_F32;
            break;
        case 'R': reference = true; break;
        case 'S': skip_contract = true; break;
        case 'j': json = true; break;
        default: return cli_option_error(&TOOL, argv, "p:n:t:r:", longopts);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(&TOOL, optind >= argc ? "no MODEL given" : "one MODEL only");
    const char *path = argv[optind];

    rf_error err = {0};
    gen_opts go;
    gen_opts_init(&go);
    go.reference = reference;
    go.skip_contract = skip_contract;
    gen_model gm;
    if ((code = gen_open(&TOOL, path, &go, false, &gm)) != 0)
        return code;
    ri_model *model = gm.model;
    double load_s = gm.load_s;
    ri_model_info info = ri_model_get_info(model);
    ri_context_params cp = ri_context_params_default();
    cp.n_ctx = (uint32_t)(n_prompt > n_gen ? n_prompt : n_gen);
    if (cp.n_ctx == 0)
        cp.n_ctx = 1;
    cp.n_threads = threads;
    cp.kv_type = kv;
    ri_context *ctx = ri_context_new(model, &cp, &err);
    if (!ctx) {
        cli_error(&TOOL, "%s: %s", path, err.message);
        gen_close(&gm);
        return cli_exit_for_status(err.status);
    }

    /* random ids below the tokenizer's size (never padding rows), fixed seed */
    const rf_tokenizer *tok = rf_model_tokenizer(ri_model_source(model));
    uint64_t n_valid = tok && tok->n_tokens ? tok->n_tokens : info.n_vocab;
    int n_ids = n_prompt > n_gen ? n_prompt : n_gen;
    int32_t *ids = malloc((size_t)(n_ids ? n_ids : 1) * sizeof *ids);
    float *logits = malloc((size_t)info.n_vocab * sizeof *logits);
    speed *pp = malloc((size_t)reps * sizeof *pp), *tg = malloc((size_t)reps * sizeof *tg);
    double *wall = malloc((size_t)reps * sizeof *wall), *cpu = malloc((size_t)reps * sizeof *cpu);
    int exit_code = APR_EXIT_OK;
    if (!ids || !logits || !pp || !tg || !wall || !cpu) {
        cli_error(&TOOL, "out of memory");
        exit_code = APR_EXIT_INPUT;
        goto out;
    }
    uint64_t state = 0x243F6A8885A308D3u;
    for (int i = 0; i < n_ids; i++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        ids[i] = (int32_t)((state >> 33) % n_valid);
    }

    rf_status st = RF_OK;
    speed ignore;
    if (n_prompt > 0) {
        st = run_prefill(ctx, ids, n_prompt, logits, &ignore, &err);
        for (int r = 0; r < reps && st == RF_OK; r++)
            st = run_prefill(ctx, ids, n_prompt, logits, &pp[r], &err);
    }
    if (n_gen > 0 && st == RF_OK) {
        st = run_decode(ctx, ids, n_gen < 16 ? n_gen : 16, logits, &ignore, &err);
        for (int r = 0; r < reps && st == RF_OK; r++)
            st = run_decode(ctx, ids, n_gen, logits, &tg[r], &err);
    }
    if (st != RF_OK) {
        cli_error(&TOOL, "%s: %s", path, err.message);
        exit_code = cli_exit_for_status(st);
        goto out;
    }
    result rp = {0, 0, 0}, rg = {0, 0, 0}, cp_cpu = {0, 0, 0}, cg_cpu = {0, 0, 0};
    for (int which = 0; which < 2; which++) {
        const speed *v = which == 0 ? pp : tg;
        if ((which == 0 ? n_prompt : n_gen) == 0)
            continue;
        for (int r = 0; r < reps; r++) {
            wall[r] = v[r].wall;
            cpu[r] = v[r].cpu;
        }
        *(which == 0 ? &rp : &rg) = summarize(wall, reps);
        *(which == 0 ? &cp_cpu : &cg_cpu) = summarize(cpu, reps);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = (double)ru.ru_maxrss / 1024.0;
    uint64_t kv_bytes = 2ull * info.n_layers * ri_context_n_ctx(ctx) * info.n_kv_heads *
                        info.head_dim * (kv == RI_KV_F16 ? 2 : 4);
    int n_threads = threads ? threads : -1;

    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", path);
        cJSON_AddStringToObject(o, "path", ri_model_path_name(model));
        if (n_threads > 0)
            cJSON_AddNumberToObject(o, "threads", n_threads);
        else
            cJSON_AddStringToObject(o, "threads", "all");
        cJSON_AddStringToObject(o, "kv", kv == RI_KV_F16 ? "f16" : "f32");
        cJSON_AddNumberToObject(o, "reps", reps);
        cJSON_AddNumberToObject(o, "prefill_tokens", n_prompt);
        cJSON_AddItemToObject(o, "prefill_tok_s", cli_json_double(rp.median, false));
        cJSON_AddItemToObject(o, "prefill_tok_s_min", cli_json_double(rp.min, false));
        cJSON_AddItemToObject(o, "prefill_tok_s_max", cli_json_double(rp.max, false));
        cJSON_AddNumberToObject(o, "decode_tokens", n_gen);
        cJSON_AddItemToObject(o, "decode_tok_s", cli_json_double(rg.median, false));
        cJSON_AddItemToObject(o, "decode_tok_s_min", cli_json_double(rg.min, false));
        cJSON_AddItemToObject(o, "decode_tok_s_max", cli_json_double(rg.max, false));
        cJSON_AddItemToObject(o, "prefill_cpu_tok_s", cli_json_double(cp_cpu.median, false));
        cJSON_AddItemToObject(o, "decode_cpu_tok_s", cli_json_double(cg_cpu.median, false));
        cJSON_AddItemToObject(o, "load_s", cli_json_double(load_s, false));
        cJSON_AddItemToObject(o, "file_bytes",
                              cli_json_u64(rf_model_file_size(ri_model_source(model))));
        cJSON_AddItemToObject(o, "weight_bytes", cli_json_u64(info.weight_bytes));
        cJSON_AddItemToObject(o, "kv_bytes", cli_json_u64(kv_bytes));
        cJSON_AddItemToObject(o, "peak_rss_mib", cli_json_double(rss_mib, false));
        if (!cli_print_json(o, false))
            exit_code = APR_EXIT_WRITE;
    } else {
        char th[16] = "all";
        if (n_threads > 0)
            snprintf(th, sizeof th, "%d", n_threads);
        printf("model    %s\npath     %s\nthreads  %s\n", path, ri_model_path_name(model), th);
        printf("load     %.2f s\n", load_s);
        if (n_prompt > 0)
            printf("prefill  %d tokens: %.2f tok/s (min %.2f, max %.2f, %d reps)\n", n_prompt,
                   rp.median, rp.min, rp.max, reps);
        if (n_gen > 0)
            printf("decode   %d tokens: %.2f tok/s (min %.2f, max %.2f, %d reps)\n", n_gen,
                   rg.median, rg.min, rg.max, reps);
        printf("peak RSS %.1f MiB\n", rss_mib);
    }
out:
    free(ids);
    free(logits);
    free(pp);
    free(tg);
    free(wall);
    free(cpu);
    ri_context_free(ctx);
    gen_close(&gm);
    return exit_code;
}
