/* apr-trace: record what a model computes on a prompt, stage by stage: statistics per stage per
 * layer with anomaly flags as JSON, or every tensor in a zstd-compressed trace container that
 * `apr compare-inference --against` reads. Capture and statistics are libinfer's
 * (rosetta/verify.h); this file parses flags and prints. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rosetta/verify.h"

static const cli_tool TOOL = {
    "trace", "record every stage of a forward pass: statistics and anomalies, or full tensors",
    "usage: apr trace [options] MODEL -p PROMPT -o OUT\n\n"
    "Runs MODEL (GGUF, APR, SafeTensors) on PROMPT with every stage of every layer captured\n"
    "and writes to OUT ('-' for stdout with the statistics) either\n"
    "  statistics (default): JSON with, per stage and layer, min, max, mean, std (population),\n"
    "    NaN and Inf counts and L2 norm, anomaly flags (nan: NaN/Inf present, huge: |x| > 1e6,\n"
    "    flat: std < 1e-6) and per layer the attention entropy recomputed from q_rope and k_rope\n"
    "    (flag attn_entropy below 0.1 nats) and the residual ratio |x_in| / (|x_in| + |x_out -\n"
    "    x_in|) (flag residual above 0.99);\n"
    "  --full: every tensor in a trace container (JSON header + zstd-compressed F32 values;\n"
    "    docs/verifier.md), for apr compare-inference --against.\n"
    "Tracing does not change what the model computes.\n\n"
    "Options:\n"
    "  -p, --prompt TEXT   the prompt (required)\n"
    "  -o, --output OUT    where to write ('-' = stdout, statistics only)\n"
    "  -n, --tokens N      greedy continuation length recorded (default 8)\n"
    "      --full          write the full tensors (trace container)\n"
    "      --json          with --full: also print the statistics JSON on stdout\n"
    "  -t, --threads N     worker threads (default: all CPUs)\n"
    "      --reference     Rosetta's scalar reference path\n\n"
    "Exit status: 0 written (anomalies are reported in the JSON, not as failures), 2 usage,\n"
    "3 unreadable model, 4 OUT cannot be written.\n"};

/* The statistics of s into o (after the stage, layer and shape members). */
static void stats_json(cJSON *o, const ri_tensor_stats *s)
{
    cJSON_AddItemToObject(o, "min", cli_json_double(s->min, true));
    cJSON_AddItemToObject(o, "max", cli_json_double(s->max, true));
    cJSON_AddItemToObject(o, "mean", cli_json_double(s->mean, false));
    cJSON_AddItemToObject(o, "std", cli_json_double(s->std, false));
    cJSON_AddItemToObject(o, "l2", cli_json_double(s->l2, false));
    cJSON_AddNumberToObject(o, "nan", (double)s->nan);
    cJSON_AddNumberToObject(o, "inf", (double)s->inf);
}

static cJSON *flags_json(unsigned flags)
{
    char buf[128];
    cJSON *a = cJSON_CreateArray();
    ri_anomaly_names(flags, buf, sizeof buf);
    for (char *p = buf; *p;) {
        size_t n = strcspn(p, ",");
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        cJSON_AddItemToArray(a, cJSON_CreateString(name));
        p += n + (p[n] == ',');
    }
    return a;
}

static cJSON *trace_json(const ri_capture *c)
{
    ri_model_info I = ri_capture_info(c);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", "rosetta.trace/1");
    cJSON_AddStringToObject(root, "model", ri_capture_label(c));
    cJSON_AddStringToObject(root, "engine", ri_capture_engine(c));
    const char *prompt = ri_capture_prompt(c);
    if (prompt)
        cJSON_AddItemToObject(root, "prompt", cli_json_string(prompt, strlen(prompt)));
    size_t n;
    const int32_t *ids = ri_capture_tokens(c, &n);
    cJSON *t = cJSON_AddArrayToObject(root, "tokens");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(t, cJSON_CreateNumber(ids[i]));
    ids = ri_capture_greedy(c, &n);
    t = cJSON_AddArrayToObject(root, "greedy");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(t, cJSON_CreateNumber(ids[i]));
    cJSON *stages = cJSON_AddArrayToObject(root, "stages");
    cJSON *layers = cJSON_AddArrayToObject(root, "layers");
    unsigned all = 0;
    /* computation order: embedding, each layer's stages, final norm, logits */
    for (int32_t l = -1; l <= (int32_t)I.n_layers; l++) {
        bool outside = l < 0 || l == (int32_t)I.n_layers;
        int s0 = l < 0 ? RI_STAGE_EMBEDDING : outside ? RI_STAGE_FINAL_NORM : RI_STAGE_ATTN_NORM;
        int s1 = l < 0 ? RI_STAGE_EMBEDDING : outside ? RI_STAGE_LOGITS : RI_STAGE_LAYER_OUT;
        for (int s = s0; s <= s1; s++) {
            uint32_t rows, cols;
            int32_t layer = outside ? -1 : l;
            const float *x = ri_capture_stage(c, (ri_stage)s, layer, &rows, &cols);
            if (!x)
                continue;
            ri_tensor_stats st = ri_tensor_stats_compute(x, (size_t)rows * cols);
            unsigned flags = ri_tensor_stats_anomalies(&st);
            all |= flags;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "stage", ri_stage_name((ri_stage)s));
            cJSON_AddNumberToObject(e, "layer", layer);
            cJSON_AddNumberToObject(e, "rows", rows);
            cJSON_AddNumberToObject(e, "cols", cols);
            stats_json(e, &st);
            cJSON_AddItemToObject(e, "anomalies", flags_json(flags));
            cJSON_AddItemToArray(stages, e);
        }
    }
    for (uint32_t l = 0; l < I.n_layers; l++) {
        ri_layer_health h;
        rf_error err = {0};
        if (ri_capture_layer_health(c, l, &h, &err) != RF_OK)
            continue;
        all |= h.anomalies;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "layer", l);
        cJSON_AddItemToObject(e, "attn_entropy", cli_json_double(h.attn_entropy, false));
        cJSON_AddItemToObject(e, "attn_entropy_min_head",
                              cli_json_double(h.attn_entropy_min_head, false));
        cJSON_AddItemToObject(e, "residual_ratio", cli_json_double(h.residual_ratio, false));
        cJSON_AddItemToObject(e, "anomalies", flags_json(h.anomalies));
        cJSON_AddItemToArray(layers, e);
    }
    cJSON_AddItemToObject(root, "anomalies", flags_json(all));
    return root;
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    const char *prompt = NULL, *out = NULL;
    bool full = false, json = false, reference = false;
    ri_capture_params cp = ri_capture_params_default();
    enum { OPT_FULL = 256, OPT_JSON, OPT_REF };
    static const struct option longopts[] = {
        {"prompt", required_argument, NULL, 'p'},  {"output", required_argument, NULL, 'o'},
        {"tokens", required_argument, NULL, 'n'},  {"threads", required_argument, NULL, 't'},
        {"full", no_argument, NULL, OPT_FULL},     {"json", no_argument, NULL, OPT_JSON},
        {"reference", no_argument, NULL, OPT_REF}, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "p:o:n:t:", longopts, NULL)) != -1) {
        char *end;
        long v;
        switch (opt) {
        case 'p': prompt = optarg; break;
        case 'o': out = optarg; break;
        case 'n':
            v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 1024)
                return cli_usage_error(&TOOL, "-n wants 0..1024, got '%s'", optarg);
            cp.n_greedy = (uint32_t)v;
            break;
        case 't':
            v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 256)
                return cli_usage_error(&TOOL, "--threads wants 0..256, got '%s'", optarg);
            cp.n_threads = (int)v;
            break;
        case OPT_FULL: full = true; break;
        case OPT_JSON: json = true; break;
        case OPT_REF: reference = true; break;
        default: return cli_option_error(&TOOL, argv, "p:o:n:t:", longopts);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error(&TOOL, argc - optind < 1 ? "no MODEL given" : "one MODEL only");
    if (!prompt || !*prompt)
        return cli_usage_error(&TOOL, "-p PROMPT is required");
    if (!out)
        return cli_usage_error(&TOOL, "-o OUT is required ('-' for stdout)");
    if (full && strcmp(out, "-") == 0)
        return cli_usage_error(&TOOL, "--full writes a file: give -o FILE");
    const char *path = argv[optind];
    rf_error err = {0};
    ri_model_params mp = ri_model_params_default();
    if (reference)
        mp.path = RI_PATH_REFERENCE;
    ri_model *m = ri_model_open(path, &mp, &err);
    if (!m) {
        cli_error(&TOOL, "%s", err.message);
        return err.status == RF_ERR_NOMEM ? APR_EXIT_INPUT : cli_exit_for_status(err.status);
    }
    ri_capture *c = ri_capture_run(m, prompt, strlen(prompt), &cp, &err);
    ri_model_free(m);
    if (!c) {
        cli_error(&TOOL, "%s: %s", path, err.message);
        return APR_EXIT_INPUT;
    }
    int rc = APR_EXIT_OK;
    if (full) {
        if (ri_capture_write(c, out, &err) != RF_OK) {
            cli_error(&TOOL, "%s", err.message);
            rc = APR_EXIT_WRITE;
        } else if (json && !cli_print_json(trace_json(c), true)) {
            rc = APR_EXIT_WRITE;
        }
    } else if (strcmp(out, "-") == 0) {
        if (!cli_print_json(trace_json(c), true))
            rc = APR_EXIT_WRITE;
    } else {
        cJSON *root = trace_json(c);
        char *text = cJSON_Print(root);
        cJSON_Delete(root);
        size_t len = text ? strlen(text) : 0;
        if (text)
            text[len] = '\n'; /* replaces the NUL: the text is written by length */
        if (!text || ri_write_file_atomic(out, text, len + 1, &err) != RF_OK) {
            cli_error(&TOOL, "%s", text ? err.message : "out of memory");
            rc = APR_EXIT_WRITE;
        }
        free(text);
    }
    ri_capture_free(c);
    return rc;
}
