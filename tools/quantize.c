/* apr-quantize: quantize a model with llama-quantize's type mixes (Q4_K_M, Q8_0, ...), from any
 * input format, printing the per-tensor plan. Parses the flags, calls rf_convert (the pipeline:
 * rosetta/convert.h) and prints what it planned and did. Not for: converting names or formats
 * without a type change (apr convert). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "rosetta/convert.h"
#include "rosetta/output.h"
#include "rosetta/model.h"
#include "rosetta/quant.h"
#include "rosetta/quant_plan.h"

/* The help text; its last paragraph (what each format holds) is added from the dtype table. */
static const char USAGE[] =
    "usage: apr quantize [options] IN OUT TYPE\n"
    "       apr quantize --dry-run [options] IN [OUT] TYPE\n\n"
    "Quantizes IN (GGUF, SafeTensors file or directory, APR) to OUT, choosing each tensor's type\n"
    "exactly as llama.cpp's llama-quantize does for TYPE, and prints the per-tensor plan (type,\n"
    "size, and the rule that chose it) on stdout. Non-F32 sources (F16, BF16, quantized) are\n"
    "dequantized to F32 first. OUT's format comes from its extension (.gguf, .apr, .safetensors)\n"
    "or --format; with --format safetensors, an OUT without the .safetensors extension is a\n"
    "Hugging Face directory (model.safetensors, config.json, tokenizer.json, ...), while a\n"
    "single .safetensors file holds the tensors only. OUT is checked before any work: it must\n"
    "not be a device, FIFO or directory (for a file), nor one of IN's files (unless --force).\n"
    "GGUF output equals llama-quantize's output on the F32 GGUF of the same model:\n"
    "same tensor order, types, bytes and metadata (general.file_type = the mix's llama_ftype,\n"
    "general.quantization_version = 2, appended last; every other key kept).\n\n"
    "TYPE: q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k\n"
    "      f16 bf16 f32 (any case; q3_k, q4_k, q5_k are the _m mixes), or a llama_ftype number\n\n"
    "Options:\n"
    "  -t, --threads N               worker threads (default: all CPUs); the bytes are the same\n"
    "      --dry-run                 print the plan and sizes only; OUT may be left out\n"
    "      --imatrix FILE            importance matrix (llama-imatrix GGUF or legacy .dat)\n"
    "      --pure                    no per-tensor mix rules: every weight gets TYPE's default\n"
    "                                type (fallbacks for row lengths still apply)\n"
    "      --leave-output-tensor     keep output.weight unquantized\n"
    "      --output-tensor-type T    type of output.weight (and of a tied token embedding)\n"
    "      --token-embedding-type T  type of token_embd.weight\n"
    "      --tensor-type PAT=T       type T for tensors whose GGUF name matches the regular\n"
    "                                expression PAT (repeatable; the first match wins)\n"
    "      --format F                output format: gguf, apr or safetensors\n"
    "      --json                    print the plan as one JSON object (schema in docs)\n"
    "      --allow-requantize        no warning when a quantized tensor is requantized (it is\n"
    "                                dequantized to F32 first either way)\n"
    "      --force                   allow OUT to be one of IN's files: it is replaced once\n"
    "                                the new file is complete\n"
    "  -q, --quiet                   no progress, no warnings and no success line on stderr\n\n"
    "llama-quantize's --override-kv, --keep-split, --include-weights, --exclude-weights and\n"
    "--prune-layers are not supported (exit 2). On success the last line on stderr is\n"
    "'wrote OUT: N tensors, SIZE, T s'.\n\n";

static char usage_text[4096];
static cli_tool TOOL = {
    "quantize", "quantize a model with llama-quantize's type mixes (q4_k_m, q8_0, ...)", NULL};

static void make_usage(void)
{
    char apr[256], st[256];
    const unsigned kinds = 1u << RF_KIND_FLOAT | 1u << RF_KIND_QUANT;
    snprintf(
        usage_text, sizeof usage_text,
        "%sAPR holds %s;\nSafeTensors holds %s (of the types Rosetta produces): a plan "
        "needing another\ntype for that format is refused (exit 2).\n",
        USAGE, rf_format_held_types(RF_FORMAT_APR, kinds, RF_DTYPE_CAN_QUANTIZE, apr, sizeof apr),
        rf_format_held_types(RF_FORMAT_SAFETENSORS, kinds, RF_DTYPE_CAN_QUANTIZE, st, sizeof st));
    TOOL.usage = usage_text;
}

enum {
    OPT_DRY_RUN = 256,
    OPT_IMATRIX,
    OPT_PURE,
    OPT_LEAVE_OUTPUT,
    OPT_OUTPUT_TYPE,
    OPT_TOKEN_TYPE,
    OPT_TENSOR_TYPE,
    OPT_FORMAT,
    OPT_JSON,
    OPT_ALLOW_REQUANTIZE,
    OPT_FORCE,
    OPT_UNSUPPORTED, /* llama-quantize options Rosetta does not offer */
};

#define MAX_OVERRIDES 256

typedef struct options {
    const char *in, *out, *type, *format;
    const rf_model *src;
    bool json, quiet, allow_requantize, progress;
    rf_convert_params p;
    rf_quant_override overrides[MAX_OVERRIDES];
    char *override_patterns[MAX_OVERRIDES];
} options;

/* ---- printing the plan -------------------------------------------------------------------- */

/* "512 B", "3.00 KiB", "1.25 MiB", "4.20 GiB" */
static const char *human(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        snprintf(buf, size, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, size, "%.2f %s", v, units[u]);
    return buf;
}

static double bpw(uint64_t bytes, uint64_t elements)
{
    return elements ? (double)bytes * 8.0 / (double)elements : 0.0;
}

static void print_plan_text(const options *o, const rf_convert_report *r)
{
    const rf_quant_plan *p = r->plan;
    printf("%s -> %s as %s (general.file_type %u), %zu tensors\n", o->in,
           o->out ? o->out : "(dry run)", rf_quant_mix_name(p->mix), p->file_type, p->n_entries);
    for (size_t i = 0; i < p->n_entries; i++) {
        const rf_quant_plan_entry *e = r->tensors[i].entry;
        char shape[96], a[32], b[32];
        cli_shape(r->tensors[i].shape, r->tensors[i].ndim, false, shape, sizeof shape);
        if (e->convert)
            printf("[%4zu/%4zu] %-36s %-18s %-6s -> %-6s %10s -> %10s  %s\n", i + 1, p->n_entries,
                   e->name, shape, rf_dtype_name(e->src_dtype), rf_dtype_name(e->dtype),
                   human(e->src_bytes, a, sizeof a), human(e->dst_bytes, b, sizeof b), e->reason);
        else
            printf("[%4zu/%4zu] %-36s %-18s %-6s    %-6s %10s    %10s  %s\n", i + 1, p->n_entries,
                   e->name, shape, rf_dtype_name(e->src_dtype), "kept",
                   human(e->src_bytes, a, sizeof a), "", e->reason);
    }
    printf("model size = %10.2f MiB (%.2f BPW)\n", (double)p->src_bytes / 1048576.0,
           bpw(p->src_bytes, p->n_elements));
    printf("quant size = %10.2f MiB (%.2f BPW)\n", (double)p->dst_bytes / 1048576.0,
           bpw(p->dst_bytes, p->n_elements));
    if (p->n_fallback > 0)
        printf("%zu of %zu tensor(s) required fallback quantization\n", p->n_fallback,
               p->n_entries);
}

static cJSON *plan_json(const options *o, const rf_convert_report *r)
{
    const rf_quant_plan *p = r->plan;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "input", o->in);
    if (o->out)
        cJSON_AddStringToObject(root, "output", o->out);
    else
        cJSON_AddNullToObject(root, "output");
    cJSON_AddStringToObject(root, "format",
                            r->format == RF_FORMAT_SAFETENSORS ? "safetensors"
                                                               : rf_format_name(r->format));
    cJSON_AddStringToObject(root, "mix", rf_quant_mix_name(p->mix));
    cJSON_AddNumberToObject(root, "file_type", p->file_type);
    cJSON_AddBoolToObject(root, "dry_run", o->p.dry_run);
    cJSON_AddBoolToObject(root, "written", r->written);
    cJSON_AddNumberToObject(root, "n_tensors", (double)p->n_entries);
    cJSON_AddNumberToObject(root, "n_converted", (double)p->n_convert);
    cJSON_AddNumberToObject(root, "n_fallback", (double)p->n_fallback);
    cJSON_AddNumberToObject(root, "n_elements", (double)p->n_elements);
    cJSON_AddNumberToObject(root, "src_bytes", (double)p->src_bytes);
    cJSON_AddNumberToObject(root, "dst_bytes", (double)p->dst_bytes);
    cJSON_AddNumberToObject(root, "src_bpw", bpw(p->src_bytes, p->n_elements));
    cJSON_AddNumberToObject(root, "dst_bpw", bpw(p->dst_bytes, p->n_elements));
    cJSON *list = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; i < p->n_entries; i++) {
        const rf_convert_tensor *t = &r->tensors[i];
        const rf_quant_plan_entry *e = t->entry;
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name", e->name);
        cJSON_AddStringToObject(item, "source_name", t->source_name);
        cJSON *shape = cJSON_AddArrayToObject(item, "shape");
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddStringToObject(item, "src_dtype", rf_dtype_name(e->src_dtype));
        cJSON_AddStringToObject(item, "chosen_dtype", rf_dtype_name(e->chosen_dtype));
        cJSON_AddStringToObject(item, "dtype", rf_dtype_name(e->dtype));
        cJSON_AddBoolToObject(item, "quantizable", e->quantizable);
        cJSON_AddBoolToObject(item, "convert", e->convert);
        cJSON_AddBoolToObject(item, "fallback", e->fallback);
        cJSON_AddNumberToObject(item, "src_bytes", (double)e->src_bytes);
        cJSON_AddNumberToObject(item, "dst_bytes", (double)e->dst_bytes);
        cJSON_AddStringToObject(item, "reason", e->reason);
        cJSON_AddItemToArray(list, item);
    }
    return root;
}

/* ---- hooks of rf_convert ------------------------------------------------------------------ */

static rf_status on_plan(const rf_convert_report *r, void *ctx, rf_error *err)
{
    (void)err;
    const options *o = ctx;
    if (!o->json)
        print_plan_text(o, r);
    fflush(stdout);
    if (!o->quiet)
        cli_convert_warnings(&TOOL, o->src, r, o->allow_requantize);
    return RF_OK;
}

static void on_progress(const rf_convert_report *r, size_t i, void *ctx)
{
    const options *o = ctx;
    if (i == r->n_tensors) {
        if (o->progress)
            fprintf(stderr, "\r\033[K");
        return;
    }
    const rf_quant_plan_entry *e = r->tensors[i].entry;
    if (o->progress)
        fprintf(stderr, "\r\033[K[%4zu/%4zu] %s -> %s", i + 1, r->n_tensors, e->name,
                rf_dtype_name(e->dtype));
}

/* ---- command line ------------------------------------------------------------------------- */

/* The option word of an unsupported option getopt_long just returned ("--override-kv"). */
static const char *unsupported_name(char **argv, int optind_now, const char *arg)
{
    /* "--opt=value" and "--opt" stand alone; "--opt value" took the next word as well */
    const char *word = argv[optind_now - 1];
    if (arg && word == arg && optind_now >= 2)
        word = argv[optind_now - 2];
    static char name[64];
    const char *eq = strchr(word, '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq ? eq - word : (long)strlen(word)), word);
    return name;
}

static int parse_format(options *o)
{
    static const struct {
        const char *name;
        rf_format format;
    } formats[] = {
        {"gguf", RF_FORMAT_GGUF}, {"apr", RF_FORMAT_APR}, {"safetensors", RF_FORMAT_SAFETENSORS}};
    for (size_t i = 0; o->format != NULL && i < sizeof formats / sizeof formats[0]; i++)
        if (strcasecmp(o->format, formats[i].name) == 0) {
            o->p.format = formats[i].format;
            return APR_EXIT_OK;
        }
    if (o->format != NULL)
        return cli_usage_error(&TOOL, "--format %s: expected gguf, apr or safetensors", o->format);
    o->p.format = o->out ? rf_convert_format_for_path(o->out) : RF_FORMAT_GGUF;
    if (o->p.format == RF_FORMAT_UNKNOWN && o->out) {
        /* a directory-looking OUT ("x.gguf/") gets the library's reason, not a naming hint */
        rf_error err = {0};
        if (rf_output_check(o->out, NULL, &err) == RF_ERR_ARGUMENT)
            return cli_usage_error(&TOOL, "%s", err.message);
    }
    if (o->p.format == RF_FORMAT_UNKNOWN)
        return cli_usage_error(&TOOL,
                               "%s: cannot tell the output format from the name; end it in .gguf, "
                               ".apr or .safetensors, or give --format",
                               o->out);
    return APR_EXIT_OK;
}

static int parse_type_flag(const char *flag, const char *value, rf_dtype *out)
{
    rf_dtype d;
    const rf_dtype_info *info;
    if (!rf_dtype_from_name(value, &d) || (info = rf_dtype_get(d)) == NULL || info->ggml_code < 0)
        return cli_usage_error(&TOOL, "%s %s: not a GGUF tensor type name (q8_0, q6_k, f16, ...)",
                               flag, value);
    *out = d;
    return APR_EXIT_OK;
}

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"threads", required_argument, NULL, 't'},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"imatrix", required_argument, NULL, OPT_IMATRIX},
        {"pure", no_argument, NULL, OPT_PURE},
        {"leave-output-tensor", no_argument, NULL, OPT_LEAVE_OUTPUT},
        {"output-tensor-type", required_argument, NULL, OPT_OUTPUT_TYPE},
        {"token-embedding-type", required_argument, NULL, OPT_TOKEN_TYPE},
        {"tensor-type", required_argument, NULL, OPT_TENSOR_TYPE},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"allow-requantize", no_argument, NULL, OPT_ALLOW_REQUANTIZE},
        {"force", no_argument, NULL, OPT_FORCE},
        {"override-kv", required_argument, NULL, OPT_UNSUPPORTED},
        {"keep-split", no_argument, NULL, OPT_UNSUPPORTED},
        {"include-weights", required_argument, NULL, OPT_UNSUPPORTED},
        {"exclude-weights", required_argument, NULL, OPT_UNSUPPORTED},
        {"prune-layers", required_argument, NULL, OPT_UNSUPPORTED},
        {NULL, 0, NULL, 0},
    };
    static const char shortopts[] = "t:q";
    o->p = rf_convert_params_default();
    o->p.quantize = true;
    rf_quant_plan_options *plan = &o->p.plan;
    int opt, rc;
    char *end;
    while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        switch (opt) {
        case 't': {
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 0 || v > 4096)
                return cli_usage_error(&TOOL, "--threads %s: expected a number 0..4096", optarg);
            o->p.n_threads = (int)v;
            break;
        }
        case OPT_DRY_RUN: o->p.dry_run = true; break;
        case OPT_IMATRIX: o->p.imatrix_path = optarg; break;
        case OPT_PURE: plan->pure = true; break;
        case OPT_LEAVE_OUTPUT: plan->leave_output_tensor = true; break;
        case OPT_OUTPUT_TYPE:
            if ((rc = parse_type_flag("--output-tensor-type", optarg, &plan->output_tensor_type)))
                return rc;
            plan->set_output_tensor_type = true;
            break;
        case OPT_TOKEN_TYPE:
            if ((rc = parse_type_flag("--token-embedding-type", optarg,
                                      &plan->token_embedding_type)))
                return rc;
            plan->set_token_embedding_type = true;
            break;
        case OPT_TENSOR_TYPE: {
            if (plan->n_overrides == MAX_OVERRIDES)
                return cli_usage_error(&TOOL, "more than %d --tensor-type options", MAX_OVERRIDES);
            size_t len = 0;
            rf_dtype d;
            rf_error err = {0};
            if (rf_quant_override_parse(optarg, &len, &d, &err) != RF_OK)
                return cli_usage_error(&TOOL, "--tensor-type: %s", err.message);
            char *pattern = strndup(optarg, len);
            if (pattern == NULL)
                return cli_usage_error(&TOOL, "out of memory");
            o->override_patterns[plan->n_overrides] = pattern;
            o->overrides[plan->n_overrides] = (rf_quant_override){pattern, d};
            plan->n_overrides++; /* NOLINT(clang-analyzer-unix.Malloc): freed by main() */
            break;
        }
        case OPT_FORMAT: o->format = optarg; break;
        case OPT_JSON: o->json = true; break;
        case 'q': o->quiet = true; break;
        case OPT_ALLOW_REQUANTIZE: o->allow_requantize = true; break;
        case OPT_FORCE: o->p.replace_input = true; break;
        case OPT_UNSUPPORTED:
            return cli_usage_error(&TOOL, "%s: not supported by apr quantize",
                                   unsupported_name(argv, optind, optarg));
        default: return cli_option_error(&TOOL, argv, shortopts, longopts);
        }
    }
    plan->overrides = o->overrides;
    int n = argc - optind;
    if (n == 3) {
        o->in = argv[optind];
        o->out = argv[optind + 1];
        o->type = argv[optind + 2];
    } else if (n == 2 && o->p.dry_run) {
        o->in = argv[optind];
        o->type = argv[optind + 1];
    } else {
        return cli_usage_error(&TOOL,
                               "expected IN OUT TYPE (or IN TYPE with --dry-run), got %d "
                               "argument(s)",
                               n);
    }
    if (!rf_quant_mix_from_name(o->type, &plan->mix))
        return cli_usage_error(&TOOL,
                               "unknown TYPE '%s': expected q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, "
                               "q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k, f16, "
                               "bf16 or f32",
                               o->type);
    return parse_format(o);
}

static int run(options *o)
{
    rf_error err = {0};
    rf_model *src = rf_model_open(o->in, NULL, &err);
    if (src == NULL) {
        cli_error(&TOOL, "%s", err.message);
        return cli_exit_for_status(err.status);
    }
    o->src = src;
    o->progress = !o->quiet && isatty(STDERR_FILENO);
    o->p.on_plan = on_plan;
    o->p.on_progress = on_progress;
    o->p.ctx = o;
    rf_convert_report *report = NULL;
    rf_status st = rf_convert(src, &o->p, o->out, &report, &err);
    int rc = APR_EXIT_OK;
    if (st != RF_OK) {
        cli_error(&TOOL, "%s", err.message);
        rc = st == RF_ERR_NOMEM ? APR_EXIT_WRITE : cli_exit_for_status(st);
    } else if (o->json) {
        cli_print_json(plan_json(o, report), true);
    }
    /* a closed stdout does not undo the written file; it fails only a result asked on stdout */
    int out_rc = cli_finish_stdout(&TOOL, o->json || o->p.dry_run);
    if (rc == APR_EXIT_OK)
        rc = out_rc;
    if (st == RF_OK && report->written && !o->quiet)
        cli_report_written(&TOOL, o->out, report->n_tensors + report->n_head_copies);
    rf_convert_report_free(report);
    rf_model_free(src);
    return rc;
}

int main(int argc, char **argv)
{
    int code;
    make_usage();
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    options o;
    memset(&o, 0, sizeof o);
    code = parse_args(argc, argv, &o);
    if (code == APR_EXIT_OK)
        code = run(&o);
    for (size_t i = 0; i < o.p.plan.n_overrides; i++)
        free(o.override_patterns[i]);
    return code; // NOLINT(clang-analyzer-unix.Malloc): every pattern is freed just above
}
