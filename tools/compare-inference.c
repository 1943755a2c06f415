/* apr-compare-inference: do two model files compute the same thing, and if not, where does the
 * first difference appear? Runs each model on one prompt with every stage captured
 * (rosetta/verify.h), compares them stage by stage and prints the table, the first divergence
 * and a verdict. The comparison itself is libinfer's (ri_compare_*); this file parses flags and
 * prints. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rosetta/contract.h"
#include "rosetta/verify.h"

static const cli_tool TOOL = {
    "compare-inference",
    "run two models on one prompt and find the first stage where they compute differently",
    "usage: apr compare-inference [options] A B [C ...]\n"
    "       apr compare-inference [options] --against TRACE A [B ...]\n"
    "       apr compare-inference [options] --engine-b llama A.gguf [B.gguf]\n\n"
    "Runs every model (GGUF, APR, SafeTensors file or directory; any dtype) with Rosetta's\n"
    "engine on the prompt, each tokenized by its own tokenizer, captures every stage of every\n"
    "layer (attn_norm, q, k, v after the bias, q/k after RoPE, attention output, o_proj,\n"
    "residual, ffn_norm, gate, up, SwiGLU, down, layer output), the final norm, the logits of\n"
    "every prompt position and a greedy continuation, and compares each model with A:\n"
    "tokens, then the stages in computation order, logits (argmax, top-k overlap, KL\n"
    "divergence, max |diff|), continuation. Per stage: max |diff|, relative max, cosine, NMSE\n"
    "(sum (b - a)^2 / sum (a - mean a)^2) against a limit that depends on the dtypes of the two\n"
    "models (docs/verifier.md). The table stops at the first divergence (--all shows every\n"
    "row); it is named 'layer L, stage S, tensor T' with the weights that feed it.\n\n"
    "Options:\n"
    "  -p, --prompt TEXT          the prompt (default: the trace's with --against, else \"The\n"
    "                             capital of France is Paris. 1 + 1 = 2.\")\n"
    "  -n, --tokens N             greedy continuation length (default 8; with --against, the\n"
    "                             trace's)\n"
    "      --tolerance X          NMSE limit of every stage (overrides the dtype defaults)\n"
    "      --stage-tolerance S=X  NMSE limit of stage S (repeatable; S a stage name, e.g. k=1e-3)\n"
    "      --kl-tolerance X       limit of the mean KL divergence of the logits\n"
    "      --top-k K              top-k overlap of the last logits (default 10)\n"
    "      --engine-b llama       run B (or A again, when only A is given) with llama.cpp's\n"
    "                             libllama loaded at run time ($ROSETTA_LLAMA_LIB, the pinned\n"
    "                             build, or the system's); B must be GGUF\n"
    "      --llama-lib PATH       the libllama.so to load\n"
    "      --against TRACE        compare with a recorded trace (apr trace --full, or\n"
    "                             tests/interop/hf_trace.py) instead of a second model\n"
    "  -t, --threads N            worker threads (default: all CPUs)\n"
    "      --reference            Rosetta's scalar reference path instead of the fast path\n"
    "      --skip-contract        do not check the models against the contracts first\n"
    "      --all                  print every row, also after the first divergence\n"
    "      --json                 one JSON object (schema in docs/verifier.md)\n\n"
    "Exit status: 0 parity, 1 divergence, 2 usage, 3 unreadable input (a model, a trace,\n"
    "no libllama), 5 a model violates the contracts (structural rules; apr validate).\n"};

#define MAX_MODELS 16

typedef struct options {
    const char *prompt;
    const char *models[MAX_MODELS];
    int n_models;
    const char *against, *llama_lib;
    bool engine_llama, json, all, reference, skip_contract;
    bool n_given; /* -n was given (else --against takes the trace's continuation length) */
    int threads;
    ri_capture_params cap;
    ri_compare_options cmp;
} options;

static int parse_double(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0) || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    enum {
        OPT_TOL = 256,
        OPT_STAGE,
        OPT_KL,
        OPT_TOPK,
        OPT_ENGINE,
        OPT_LIB,
        OPT_AGAINST,
        OPT_REF,
        OPT_SKIP,
        OPT_ALL,
        OPT_JSON
    };
    static const struct option longopts[] = {
        {"prompt", required_argument, NULL, 'p'},
        {"tokens", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},
        {"tolerance", required_argument, NULL, OPT_TOL},
        {"stage-tolerance", required_argument, NULL, OPT_STAGE},
        {"kl-tolerance", required_argument, NULL, OPT_KL},
        {"top-k", required_argument, NULL, OPT_TOPK},
        {"engine-b", required_argument, NULL, OPT_ENGINE},
        {"llama-lib", required_argument, NULL, OPT_LIB},
        {"against", required_argument, NULL, OPT_AGAINST},
        {"reference", no_argument, NULL, OPT_REF},
        {"skip-contract", no_argument, NULL, OPT_SKIP},
        {"all", no_argument, NULL, OPT_ALL},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "p:n:t:", longopts, NULL)) != -1) {
        char *end;
        long v;
        double d;
        switch (opt) {
        case 'p': o->prompt = optarg; break;
        case 'n':
            v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 1024)
                return cli_usage_error(&TOOL, "-n wants 0..1024, got '%s'", optarg);
            o->cap.n_greedy = (uint32_t)v;
            o->n_given = true;
            break;
        case 't':
            v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 256)
                return cli_usage_error(&TOOL, "--threads wants 0..256, got '%s'", optarg);
            o->threads = (int)v;
            break;
        case OPT_TOL:
            if (parse_double(optarg, &o->cmp.tolerance))
                return cli_usage_error(&TOOL, "--tolerance wants a number >= 0, got '%s'", optarg);
            break;
        case OPT_KL:
            if (parse_double(optarg, &o->cmp.kl_tolerance))
                return cli_usage_error(&TOOL, "--kl-tolerance wants a number >= 0, got '%s'",
                                       optarg);
            break;
        case OPT_STAGE: {
            const char *eq = strchr(optarg, '=');
            char name[64];
            ri_stage stage;
            if (!eq || (size_t)(eq - optarg) >= sizeof name)
                return cli_usage_error(&TOOL, "--stage-tolerance wants STAGE=X, got '%s'", optarg);
            memcpy(name, optarg, (size_t)(eq - optarg));
            name[eq - optarg] = '\0';
            if (!ri_stage_from_name(name, &stage))
                return cli_usage_error(&TOOL,
                                       "--stage-tolerance: no stage '%s' (stages: "
                                       "embedding, attn_norm, q, k, v, q_rope, k_rope, attn_out, "
                                       "o_proj, attn_residual, ffn_norm, gate, up, swiglu, down, "
                                       "layer_out, final_norm, logits)",
                                       name);
            if (parse_double(eq + 1, &d))
                return cli_usage_error(&TOOL, "--stage-tolerance %s: not a number >= 0", name);
            o->cmp.stage_tolerance[stage] = d;
            break;
        }
        case OPT_TOPK:
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1000)
                return cli_usage_error(&TOOL, "--top-k wants 1..1000, got '%s'", optarg);
            o->cmp.top_k = (uint32_t)v;
            break;
        case OPT_ENGINE:
            if (strcmp(optarg, "llama") != 0 && strcmp(optarg, "llama.cpp") != 0)
                return cli_usage_error(&TOOL, "--engine-b knows 'llama' only, got '%s'", optarg);
            o->engine_llama = true;
            break;
        case OPT_LIB: o->llama_lib = optarg; break;
        case OPT_AGAINST: o->against = optarg; break;
        case OPT_REF: o->reference = true; break;
        case OPT_SKIP: o->skip_contract = true; break;
        case OPT_ALL: o->all = true; break;
        case OPT_JSON: o->json = true; break;
        default: return cli_option_error(&TOOL, argv, "p:n:t:", longopts);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (o->n_models == MAX_MODELS)
            return cli_usage_error(&TOOL, "at most %d models", MAX_MODELS);
        o->models[o->n_models++] = argv[i];
    }
    if (o->against && o->engine_llama)
        return cli_usage_error(&TOOL, "--against and --engine-b exclude each other");
    int need = o->against || o->engine_llama ? 1 : 2;
    if (o->n_models < need)
        return cli_usage_error(&TOOL, need == 1 ? "no model given" : "two models needed (A B)");
    if (o->engine_llama && o->n_models > 2)
        return cli_usage_error(&TOOL, "--engine-b llama takes A and at most one B");
    if (o->llama_lib && !o->engine_llama)
        return cli_usage_error(&TOOL, "--llama-lib needs --engine-b llama");
    return -1;
}

/* Structural contract rules (names, shapes, config, vocabulary) of the file at path. */
static int check_contract(const rf_model *m, const char *path)
{
    rf_contract_options co = {.rules = RF_RULE_STRUCTURAL};
    rf_contract_report *rep = NULL;
    rf_error err = {0};
    if (rf_contract_check(m, &co, &rep, &err) != RF_OK) {
        cli_error(&TOOL, "%s: cannot check the contracts: %s (use --skip-contract)", path,
                  err.message);
        return cli_exit_for_status(err.status);
    }
    rf_status st = rf_contract_report_status(rep, false, &err);
    rf_contract_report_free(rep);
    if (st != RF_OK) {
        cli_error(&TOOL, "%s: %s", path, err.message);
        return APR_EXIT_CONTRACT;
    }
    return APR_EXIT_OK;
}

/* Opens and runs one model with Rosetta's engine; *exit_code on failure. */
static ri_capture *run_rosetta(const options *o, const char *path, int *exit_code)
{
    rf_error err = {0};
    rf_model *src = rf_model_open(path, NULL, &err);
    if (!src) {
        cli_error(&TOOL, "%s", err.message);
        *exit_code = cli_exit_for_status(err.status);
        return NULL;
    }
    if (!o->skip_contract && (*exit_code = check_contract(src, path)) != APR_EXIT_OK) {
        rf_model_free(src);
        return NULL;
    }
    ri_model_params mp = ri_model_params_default();
    if (o->reference)
        mp.path = RI_PATH_REFERENCE;
    ri_model *m = ri_model_load(src, &mp, &err);
    if (!m) {
        cli_error(&TOOL, "%s: %s", path, err.message);
        rf_model_free(src);
        *exit_code = APR_EXIT_INPUT;
        return NULL;
    }
    ri_capture_params cp = o->cap;
    cp.n_threads = o->threads;
    ri_capture *c = ri_capture_run(m, o->prompt, strlen(o->prompt), &cp, &err);
    ri_model_free(m);
    rf_model_free(src);
    if (!c) {
        cli_error(&TOOL, "%s: %s", path, err.message);
        *exit_code = err.status == RF_ERR_NOMEM ? APR_EXIT_INPUT : cli_exit_for_status(err.status);
    }
    return c;
}

static ri_capture *run_llama(const options *o, const char *path, int *exit_code)
{
    rf_error err = {0};
    ri_capture_params cp = o->cap;
    cp.n_threads = o->threads;
    ri_capture *c =
        ri_capture_run_llama(path, o->llama_lib, o->prompt, strlen(o->prompt), &cp, &err);
    if (!c) {
        cli_error(&TOOL, "--engine-b llama: %s", err.message);
        *exit_code = APR_EXIT_INPUT;
    }
    return c;
}

/* ---- printing -------------------------------------------------------------------------------- */

static const char *num(double v, char *buf, size_t size)
{
    if (isnan(v))
        snprintf(buf, size, "-");
    else if (v == 0)
        snprintf(buf, size, "0");
    else
        snprintf(buf, size, "%.3g", v);
    return buf;
}

/* The tensor a divergence is named after: the first feeding weight, else the activation. */
static void divergence_tensor(const ri_capture *b, const ri_compare_row *r, char *buf, size_t size)
{
    if (r->point == RI_POINT_TOKENS) {
        snprintf(buf, size, "tokenizer vocabulary");
        return;
    }
    if (r->point == RI_POINT_GREEDY) {
        snprintf(buf, size, "continuation token %" PRId64, r->first_diff);
        return;
    }
    const char *w = ri_capture_weights(b, r->stage, r->layer);
    if (w && *w) {
        size_t n = strcspn(w, ",");
        snprintf(buf, size, "%.*s", (int)n, w);
    } else if (r->layer >= 0) {
        snprintf(buf, size, "layers.%d.%s (activation)", r->layer, ri_stage_name(r->stage));
    } else {
        snprintf(buf, size, "%s (activation)", ri_stage_name(r->stage));
    }
}

/* The weights feeding the row's stage, from B's capture (A's when B does not know them). */
static const char *feeding(const ri_capture *a, const ri_capture *b, const ri_compare_row *r)
{
    if (r->point != RI_POINT_STAGE)
        return NULL;
    const char *w = ri_capture_weights(b, r->stage, r->layer);
    return w ? w : ri_capture_weights(a, r->stage, r->layer);
}

/* The diff-tensors status of the weights feeding the first divergence (ri_weights_diff), or
 * why it is not available. */
typedef struct weights_report {
    ri_weight_diff items[16];
    size_t n;
    const char *why; /* non-NULL: not available */
} weights_report;

static void weights_status(const char *path_a, const char *path_b, const ri_capture *a,
                           const ri_capture *b, const ri_compare *cmp, weights_report *w)
{
    w->n = 0;
    w->why = NULL;
    long first = ri_compare_first_divergence(cmp);
    const ri_compare_row *r = first >= 0 ? ri_compare_row_at(cmp, (size_t)first) : NULL;
    const char *names = r ? feeding(a, b, r) : NULL;
    if (!names || !*names) {
        w->why = "no weights feed this stage";
        return;
    }
    if (!path_a) {
        w->why = "A is a recorded trace, not a model file";
        return;
    }
    rf_error err = {0};
    rf_model *ma = rf_model_open(path_a, NULL, &err), *mb = NULL;
    if (ma)
        mb = rf_model_open(path_b, NULL, &err);
    if (!ma || !mb || ri_weights_diff(ma, mb, names, w->items, 16, &w->n, &err) != RF_OK) {
        cli_error(&TOOL, "diff-tensors status of %s: %s", names, err.message);
        w->why = "the models could not be compared tensor by tensor (see stderr)";
        w->n = 0;
    }
    rf_model_free(ma);
    rf_model_free(mb);
}

static void print_ids(const char *label, const int32_t *ids, size_t n, int64_t mark)
{
    printf("  %s:", label);
    for (size_t i = 0; i < n && i < 48; i++)
        printf((int64_t)i == mark ? " [%d]" : " %d", ids[i]);
    if (n > 48)
        printf(" ... (%zu ids)", n);
    putchar('\n');
}

static void print_model_line(const char *tag, const ri_capture *c)
{
    size_t n;
    ri_capture_tokens(c, &n);
    printf("%s: %s (%s; weights %s, level %s; %zu prompt tokens)\n", tag, ri_capture_label(c),
           ri_capture_engine(c), *ri_capture_dtypes(c) ? ri_capture_dtypes(c) : "?",
           ri_level_name(ri_capture_level(c)), n);
}

static void print_text(const options *o, const ri_capture *a, const ri_capture *b,
                       const ri_compare *cmp, const weights_report *wr, bool color)
{
    const char *green = color ? "\033[32m" : "", *red = color ? "\033[31;1m" : "";
    const char *dim = color ? "\033[2m" : "", *off = color ? "\033[0m" : "";
    print_model_line("A", a);
    print_model_line("B", b);
    ri_limits lim = ri_compare_limits(cmp);
    char b1[32], b2[32];
    printf("limits: nmse <= %s per stage, mean KL <= %s, continuation %s\n",
           num(o->cmp.tolerance >= 0 ? o->cmp.tolerance : lim.nmse, b1, sizeof b1),
           num(o->cmp.kl_tolerance >= 0 ? o->cmp.kl_tolerance : lim.kl_mean, b2, sizeof b2),
           lim.judge_greedy ? "must match" : "reported");
    for (size_t i = 0; i < ri_compare_n_warnings(cmp); i++)
        fprintf(stderr, "apr-compare-inference: warning: %s\n", ri_compare_warning(cmp, i));
    long first = ri_compare_first_divergence(cmp);
    printf("\n%-14s %5s %10s %10s %10s %10s %10s  %s\n", "stage", "layer", "max|diff|", "rel max",
           "cosine", "nmse", "limit", "result");
    size_t shown = 0;
    for (size_t i = 0; i < ri_compare_n_rows(cmp); i++) {
        const ri_compare_row *r = ri_compare_row_at(cmp, i);
        if (!o->all && first >= 0 && (long)i > first)
            break;
        shown++;
        const char *name = ri_compare_row_name(r);
        char layer[16];
        if (r->layer >= 0)
            snprintf(layer, sizeof layer, "%d", r->layer);
        else
            snprintf(layer, sizeof layer, "-");
        const char *res = !r->compared ? "n/a" : r->pass ? "ok" : "DIVERGES";
        const char *col = !r->compared ? dim : r->pass ? green : red;
        if (r->point != RI_POINT_STAGE) {
            char detail[160];
            if (r->first_diff < 0)
                snprintf(detail, sizeof detail, "%zu / %zu ids, identical", r->n_a, r->n_b);
            else
                snprintf(detail, sizeof detail, "%zu / %zu ids, first difference at %" PRId64,
                         r->n_a, r->n_b, r->first_diff);
            printf("%-14s %5s  %-54s  %s%s%s%s%s\n", name, layer, detail, col, res, off,
                   r->note && r->pass ? "  " : "", r->note && r->pass ? r->note : "");
            continue;
        }
        char c1[32], c2[32], c3[32], c4[32], c5[32];
        char cos[32];
        if (isnan(r->cosine))
            snprintf(cos, sizeof cos, "-");
        else
            snprintf(cos, sizeof cos, "%.6f", r->cosine);
        printf("%-14s %5s %10s %10s %10s %10s %10s  %s%s%s", name, layer,
               num(r->max_abs, c1, sizeof c1), num(r->rel_max, c2, sizeof c2), cos,
               num(r->nmse, c3, sizeof c3), num(r->limit, c4, sizeof c4), col, res, off);
        if (r->note)
            printf("  (%s)", r->note);
        putchar('\n');
        if (r->stage == RI_STAGE_LOGITS && r->compared)
            printf("  logits: argmax %d / %d, top-%u overlap %.2f, KL mean %s max %s (limit %s), "
                   "same top %.1f %%, RMS dp %.3g %%\n",
                   r->argmax_a, r->argmax_b, o->cmp.top_k, r->top_k_overlap,
                   num(r->kl_mean, c1, sizeof c1), num(r->kl_max, c2, sizeof c2),
                   num(r->kl_limit, c5, sizeof c5), 100.0 * r->top1_agreement, 100.0 * r->rms_dp);
        (void)c5;
    }
    if (shown < ri_compare_n_rows(cmp))
        printf("... %zu more rows (--all shows them)\n", ri_compare_n_rows(cmp) - shown);
    if (first >= 0) {
        const ri_compare_row *r = ri_compare_row_at(cmp, (size_t)first);
        char tensor[256];
        divergence_tensor(b, r, tensor, sizeof tensor);
        printf("\n%sfirst divergence: layer %d, stage %s, tensor %s%s\n", red, r->layer,
               ri_compare_row_name(r), tensor, off);
        if (r->point == RI_POINT_TOKENS) {
            size_t na, nb;
            const int32_t *ta = ri_capture_tokens(a, &na), *tb = ri_capture_tokens(b, &nb);
            print_ids("A ids", ta, na, r->first_diff);
            print_ids("B ids", tb, nb, r->first_diff);
        } else if (r->point == RI_POINT_GREEDY) {
            size_t na, nb;
            const int32_t *ga = ri_capture_greedy(a, &na), *gb = ri_capture_greedy(b, &nb);
            print_ids("A continuation", ga, na, r->first_diff);
            print_ids("B continuation", gb, nb, r->first_diff);
        } else {
            char c1[32], c2[32];
            if (r->first_position >= 0)
                printf("  first at prompt position %d; nmse %s > limit %s\n", r->first_position,
                       num(r->nmse, c1, sizeof c1), num(r->limit, c2, sizeof c2));
            const char *w = feeding(a, b, r);
            if (!w || !*w)
                printf("  fed by no weights of its own (computed from the stages before it)\n");
            else if (wr->why)
                printf("  fed by: %s\n  diff-tensors status: not available (%s)\n", w, wr->why);
            else
                printf("  fed by (diff-tensors status A vs B):\n");
            for (size_t i = 0; !wr->why && i < wr->n; i++) {
                const ri_weight_diff *d = &wr->items[i];
                printf("    %-36s %s%-16s%s %s\n", d->name, d->changed ? red : green, d->status,
                       off, d->detail);
            }
        }
    }
    printf("\nverdict: %s%s%s\n", first < 0 ? green : red,
           first < 0 ? "parity (B computes what A computes, within the limits)"
                     : "divergence (B does not compute what A computes)",
           off);
}

static cJSON *ids_json(const int32_t *ids, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    return a;
}

static cJSON *model_json(const ri_capture *c)
{
    cJSON *m = cJSON_CreateObject();
    size_t n;
    ri_capture_tokens(c, &n);
    cJSON_AddStringToObject(m, "path", ri_capture_label(c));
    cJSON_AddStringToObject(m, "engine", ri_capture_engine(c));
    cJSON_AddStringToObject(m, "dtypes", ri_capture_dtypes(c));
    cJSON_AddStringToObject(m, "level", ri_level_name(ri_capture_level(c)));
    cJSON_AddNumberToObject(m, "n_tokens", (double)n);
    return m;
}

static cJSON *weights_json(const weights_report *wr)
{
    if (wr->why)
        return cJSON_CreateNull();
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < wr->n; i++) {
        const ri_weight_diff *d = &wr->items[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", d->name);
        cJSON_AddStringToObject(e, "kind", d->is_tensor ? "tensor" : "config");
        cJSON_AddStringToObject(e, "status", d->status);
        cJSON_AddBoolToObject(e, "ok", d->ok);
        cJSON_AddBoolToObject(e, "changed", d->changed);
        if (d->is_tensor) {
            cJSON_AddItemToObject(e, "max_abs", cli_json_double(d->max_abs, false));
            cJSON_AddItemToObject(e, "tolerance", cli_json_double(d->tolerance, false));
        }
        cJSON_AddStringToObject(e, "detail", d->detail);
        cJSON_AddItemToArray(arr, e);
    }
    return arr;
}

static cJSON *divergence_json(const ri_capture *a, const ri_capture *b, const ri_compare *cmp,
                              const weights_report *wr)
{
    long first = ri_compare_first_divergence(cmp);
    if (first < 0)
        return cJSON_CreateNull();
    const ri_compare_row *r = ri_compare_row_at(cmp, (size_t)first);
    cJSON *d = cJSON_CreateObject();
    char tensor[256];
    divergence_tensor(b, r, tensor, sizeof tensor);
    cJSON_AddNumberToObject(d, "layer", r->layer);
    cJSON_AddStringToObject(d, "stage", ri_compare_row_name(r));
    cJSON_AddStringToObject(d, "tensor", tensor);
    cJSON *w = cJSON_AddArrayToObject(d, "weights");
    const char *list = feeding(a, b, r);
    while (list && *list) {
        size_t n = strcspn(list, ",");
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)n, list);
        cJSON_AddItemToArray(w, cJSON_CreateString(name));
        list += n + (list[n] == ',');
    }
    cJSON_AddItemToObject(d, "diff_tensors", weights_json(wr));
    if (r->point == RI_POINT_STAGE) {
        cJSON_AddNumberToObject(d, "position", r->first_position);
        cJSON_AddItemToObject(d, "nmse", cli_json_double(r->nmse, false));
        cJSON_AddItemToObject(d, "limit", cli_json_double(r->limit, false));
    } else {
        cJSON_AddNumberToObject(d, "position", (double)r->first_diff);
    }
    return d;
}

static cJSON *comparison_json(const ri_capture *a, const ri_capture *b, const ri_compare *cmp,
                              const weights_report *wr)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToObject(c, "model", model_json(b));
    cJSON_AddStringToObject(c, "verdict", ri_compare_parity(cmp) ? "parity" : "divergence");
    cJSON_AddItemToObject(c, "first_divergence", divergence_json(a, b, cmp, wr));
    ri_limits lim = ri_compare_limits(cmp);
    cJSON *l = cJSON_AddObjectToObject(c, "limits");
    cJSON_AddItemToObject(l, "nmse", cli_json_double(lim.nmse, false));
    cJSON_AddItemToObject(l, "kl_mean", cli_json_double(lim.kl_mean, false));
    cJSON_AddBoolToObject(l, "judge_greedy", lim.judge_greedy);
    cJSON *warn = cJSON_AddArrayToObject(c, "warnings");
    for (size_t i = 0; i < ri_compare_n_warnings(cmp); i++)
        cJSON_AddItemToArray(warn, cJSON_CreateString(ri_compare_warning(cmp, i)));
    cJSON *stages = cJSON_AddArrayToObject(c, "stages");
    for (size_t i = 0; i < ri_compare_n_rows(cmp); i++) {
        const ri_compare_row *r = ri_compare_row_at(cmp, i);
        if (r->point == RI_POINT_TOKENS || r->point == RI_POINT_GREEDY) {
            size_t na, nb;
            const int32_t *xa =
                r->point == RI_POINT_TOKENS ? ri_capture_tokens(a, &na) : ri_capture_greedy(a, &na);
            const int32_t *xb =
                r->point == RI_POINT_TOKENS ? ri_capture_tokens(b, &nb) : ri_capture_greedy(b, &nb);
            cJSON *t = cJSON_AddObjectToObject(c, ri_compare_row_name(r));
            cJSON_AddItemToObject(t, "a", ids_json(xa, na));
            cJSON_AddItemToObject(t, "b", ids_json(xb, nb));
            cJSON_AddNumberToObject(t, "first_diff", (double)r->first_diff);
            cJSON_AddBoolToObject(t, "pass", r->pass);
            continue;
        }
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "stage", ri_compare_row_name(r));
        cJSON_AddNumberToObject(s, "layer", r->layer);
        cJSON_AddBoolToObject(s, "compared", r->compared);
        cJSON_AddBoolToObject(s, "pass", r->pass);
        cJSON_AddNumberToObject(s, "rows", r->rows);
        cJSON_AddNumberToObject(s, "cols", r->cols);
        cJSON_AddItemToObject(s, "max_abs", cli_json_double(r->max_abs, false));
        cJSON_AddItemToObject(s, "rel_max", cli_json_double(r->rel_max, false));
        cJSON_AddItemToObject(s, "cosine", cli_json_double(r->cosine, false));
        cJSON_AddItemToObject(s, "nmse", cli_json_double(r->nmse, false));
        cJSON_AddItemToObject(s, "limit", cli_json_double(r->limit, false));
        cJSON_AddNumberToObject(s, "first_position", r->first_position);
        cJSON_AddNumberToObject(s, "nonfinite_a", (double)r->bad_a);
        cJSON_AddNumberToObject(s, "nonfinite_b", (double)r->bad_b);
        if (r->note)
            cJSON_AddStringToObject(s, "note", r->note);
        cJSON_AddItemToArray(stages, s);
        if (r->stage == RI_STAGE_LOGITS && r->compared) {
            cJSON *lg = cJSON_AddObjectToObject(c, "logits");
            cJSON_AddNumberToObject(lg, "argmax_a", r->argmax_a);
            cJSON_AddNumberToObject(lg, "argmax_b", r->argmax_b);
            cJSON_AddItemToObject(lg, "top_k_overlap", cli_json_double(r->top_k_overlap, false));
            cJSON_AddItemToObject(lg, "kl_mean", cli_json_double(r->kl_mean, false));
            cJSON_AddItemToObject(lg, "kl_max", cli_json_double(r->kl_max, false));
            cJSON_AddItemToObject(lg, "kl_limit", cli_json_double(r->kl_limit, false));
            cJSON_AddItemToObject(lg, "same_top_p", cli_json_double(r->top1_agreement, false));
            cJSON_AddItemToObject(lg, "rms_dp", cli_json_double(r->rms_dp, false));
            cJSON_AddItemToObject(lg, "max_abs", cli_json_double(r->max_abs, false));
            cJSON_AddBoolToObject(lg, "pass", r->pass);
        }
    }
    return c;
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    options o = {
        .prompt = NULL, .cap = ri_capture_params_default(), .cmp = ri_compare_options_default()};
    if ((code = parse_args(argc, argv, &o)) >= 0)
        return code;
    if (o.prompt && !*o.prompt)
        return cli_usage_error(&TOOL, "the prompt is empty");

    ri_capture *ref = NULL, *caps[MAX_MODELS] = {NULL};
    const char *ref_path = NULL, *cap_paths[MAX_MODELS] = {NULL};
    int n_caps = 0, exit_code = APR_EXIT_OK;
    if (o.against) {
        rf_error err = {0};
        if (!(ref = ri_capture_read(o.against, &err))) {
            cli_error(&TOOL, "%s", err.message);
            return APR_EXIT_INPUT;
        }
        if (!o.prompt)
            o.prompt = ri_capture_prompt(ref);
        if (!o.n_given) {
            size_t n_greedy;
            ri_capture_greedy(ref, &n_greedy);
            o.cap.n_greedy = (uint32_t)n_greedy;
        }
        if (!o.prompt) {
            cli_error(&TOOL, "%s: the trace records no prompt: give it with -p", o.against);
            ri_capture_free(ref);
            return APR_EXIT_USAGE;
        }
        for (int i = 0; i < o.n_models; i++) {
            cap_paths[n_caps] = o.models[i];
            if (!(caps[n_caps] = run_rosetta(&o, o.models[i], &exit_code)))
                goto done;
            n_caps++;
        }
    } else {
        if (!o.prompt)
            o.prompt = "The capital of France is Paris. 1 + 1 = 2.";
        ref_path = o.models[0];
        if (!(ref = run_rosetta(&o, o.models[0], &exit_code)))
            goto done;
        int last = o.n_models - 1;
        for (int i = 1; i < o.n_models; i++) {
            cap_paths[n_caps] = o.models[i];
            caps[n_caps] = o.engine_llama && i == last ? run_llama(&o, o.models[i], &exit_code)
                                                       : run_rosetta(&o, o.models[i], &exit_code);
            if (!caps[n_caps])
                goto done;
            n_caps++;
        }
        if (o.engine_llama && o.n_models == 1) {
            cap_paths[n_caps] = o.models[0];
            if (!(caps[n_caps] = run_llama(&o, o.models[0], &exit_code)))
                goto done;
            n_caps++;
        }
    }

    bool color = !o.json && cli_color(stdout);
    cJSON *root = o.json ? cJSON_CreateObject() : NULL;
    cJSON *list = NULL, *first_div = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "schema", "rosetta.compare-inference/1");
        cJSON_AddItemToObject(root, "prompt", cli_json_string(o.prompt, strlen(o.prompt)));
        cJSON_AddItemToObject(root, "reference", model_json(ref));
        list = cJSON_CreateArray();
    }
    bool all_parity = true;
    for (int i = 0; i < n_caps; i++) {
        rf_error err = {0};
        ri_compare *cmp = ri_compare_new(ref, caps[i], &o.cmp, &err);
        if (!cmp) {
            cli_error(&TOOL, "%s", err.message);
            exit_code = APR_EXIT_INPUT;
            cJSON_Delete(root);
            cJSON_Delete(list);
            goto done;
        }
        if (!ri_compare_parity(cmp))
            all_parity = false;
        weights_report wr;
        weights_status(ref_path, cap_paths[i], ref, caps[i], cmp, &wr);
        if (root) {
            cJSON *cj = comparison_json(ref, caps[i], cmp, &wr);
            if (!first_div && !ri_compare_parity(cmp))
                first_div = cJSON_Duplicate(cJSON_GetObjectItem(cj, "first_divergence"), true);
            cJSON_AddItemToArray(list, cj);
        } else {
            if (i > 0)
                printf("\n");
            print_text(&o, ref, caps[i], cmp, &wr, color);
        }
        ri_compare_free(cmp);
    }
    if (root) {
        cJSON_AddStringToObject(root, "verdict", all_parity ? "parity" : "divergence");
        cJSON_AddItemToObject(root, "first_divergence", first_div ? first_div : cJSON_CreateNull());
        cJSON_AddItemToObject(root, "comparisons", list);
        if (!cli_print_json(root, true))
            exit_code = APR_EXIT_WRITE;
    }
    if (exit_code == APR_EXIT_OK && !all_parity)
        exit_code = APR_EXIT_CHECK;
done:
    ri_capture_free(ref);
    for (int i = 0; i < n_caps; i++)
        ri_capture_free(caps[i]);
    return exit_code;
}
