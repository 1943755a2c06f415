/* apr-diff-tensors: compares the tensors of two models (any formats) value by value, paired by
 * canonical name; the library does the work (rosetta/tensor_diff.h).
 * Not for: checking a model against a stored fingerprint (apr-fingerprint --check). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rosetta/contract.h"
#include "rosetta/model.h"
#include "rosetta/tensor_diff.h"

static const cli_tool TOOL = {
    "diff-tensors", "compare the tensors of two models value by value",
    "usage: apr diff-tensors [--json] [--filter GLOB] [--tolerance X] [--mismatches-only]\n"
    "                        [--show N] A B\n\n"
    "Pairs the tensors of A and B (GGUF, SafeTensors, APR, in any combination) by canonical name\n"
    "(Hugging Face spelling: token_embd.weight and model.embed_tokens.weight are one tensor),\n"
    "lists tensors found on one side only, and compares each pair's dtype, row-major shape and\n"
    "dequantized values in one streaming pass: max |a-b|, mean |a-b|, RMSE, cosine similarity,\n"
    "max distance in float32 steps (ULPs, when both dtypes are equal), the number of values that\n"
    "differ and the first of them. 2-D tensors whose shapes are swapped are compared with the\n"
    "transpose. Each pair gets a status: identical (same bytes), same-values (bit-identical after\n"
    "dequantization), within-tolerance, small / medium / large (max |a-b| beyond tolerance and\n"
    "below 0.01 / 0.1 / 1), transposed, critical; or only-in-a / only-in-b.\n"
    "The default tolerance of max |a-b| is max|a| times the coarser dtype's factor: 0 for F32,\n"
    "F64 and integers, 2^-11 F16, 2^-8 BF16, 1/64 8-bit, 1/16 5- and 6-bit, 1/8 4-bit quants,\n"
    "1/4 Q3_K, 1/2 Q2_K (docs/diff-tensors.md).\n\n"
    "Options:\n"
    "      --json             one JSON object; \"deviating\" lists each tensor that is not within\n"
    "                         tolerance by its name in A (in B when A lacks it)\n"
    "      --filter GLOB      only tensors whose name in A or B, or canonical name, matches\n"
    "      --tolerance X      absolute tolerance of max |a-b| for every tensor\n"
    "      --mismatches-only  leave out the pairs that pass\n"
    "      --show N           N values of A and B around the first difference\n\n"
    "Exit codes (stable): 0 every pair within tolerance and no tensor on one side only;\n"
    "1 otherwise; 2 usage; 3 A or B unreadable or malformed.\n"};

typedef struct options {
    const char *a, *b;
    bool json, mismatches_only;
    rf_diff_options diff;
} options;

static const char *dtype_pair(const rf_tensor_diff *d, char *buf, size_t size)
{
    if (!d->name_a)
        return rf_dtype_name(d->dtype_b);
    if (!d->name_b || d->dtype_a == d->dtype_b)
        return rf_dtype_name(d->dtype_a);
    snprintf(buf, size, "%s/%s", rf_dtype_name(d->dtype_a), rf_dtype_name(d->dtype_b));
    return buf;
}

static const char *shape_pair(const rf_tensor_diff *d, char *buf, size_t size)
{
    char sa[160], sb[160];
    cli_shape(d->shape_a, d->ndim_a, false, sa, sizeof sa);
    cli_shape(d->shape_b, d->ndim_b, false, sb, sizeof sb);
    if (!d->name_a)
        snprintf(buf, size, "%s", sb);
    else if (!d->name_b || strcmp(sa, sb) == 0)
        snprintf(buf, size, "%s", sa);
    else
        snprintf(buf, size, "%s/%s", sa, sb);
    return buf;
}

static const char *g(double v, char *buf, size_t size)
{
    snprintf(buf, size, "%.4g", v);
    return buf;
}

static bool print_text(const rf_diff_report *r, const options *o)
{
    cli_table *t = cli_table_new(11, "lllrrrrrrrl");
    if (!t)
        return false;
    const char *head[11] = {"status", "tensor", "dtype",  "max|d|", "mean|d|", "rmse",
                            "cosine", "ulp",    "differ", "first",  "shape"};
    bool ok = cli_table_add(t, head);
    size_t counts[RF_DIFF_ONLY_IN_B + 1] = {0};
    for (size_t i = 0; ok && i < rf_diff_report_count(r); i++) {
        const rf_tensor_diff *d = rf_diff_report_get(r, i);
        counts[d->cls]++;
        if (o->mismatches_only && rf_diff_class_ok(d->cls))
            continue;
        char v[7][40], dt[64], sh[340], name[600];
        if (d->name_a && d->name_b && strcmp(d->name_a, d->name_b) != 0)
            snprintf(name, sizeof name, "%s (B: %s)", d->name_a, d->name_b);
        else
            snprintf(name, sizeof name, "%s", d->name_a ? d->name_a : d->name_b);
        const char *cells[11] = {rf_diff_class_name(d->cls), name, dtype_pair(d, dt, sizeof dt)};
        for (int k = 3; k < 10; k++)
            cells[k] = "-";
        if (d->compared) {
            cells[3] = g(d->max_abs, v[0], sizeof v[0]);
            cells[4] = g(d->mean_abs, v[1], sizeof v[1]);
            cells[5] = g(d->rmse, v[2], sizeof v[2]);
            snprintf(v[3], sizeof v[3], "%.6f", d->cosine);
            cells[6] = v[3];
            if (d->has_ulp) {
                snprintf(v[4], sizeof v[4], "%" PRIu64, d->max_ulp);
                cells[7] = v[4];
            }
            snprintf(v[5], sizeof v[5], "%" PRIu64, d->n_diff);
            cells[8] = v[5];
            if (d->n_diff) {
                snprintf(v[6], sizeof v[6], "%" PRIu64, d->first_diff);
                cells[9] = v[6];
            }
        }
        cells[10] = shape_pair(d, sh, sizeof sh);
        ok = cli_table_add(t, cells);
    }
    if (ok)
        cli_table_print(t, stdout, "");
    cli_table_free(t);
    for (size_t i = 0; i < rf_diff_report_count(r); i++) {
        const rf_tensor_diff *d = rf_diff_report_get(r, i);
        if (d->error)
            printf("%s: %s\n", d->name_a ? d->name_a : d->name_b, d->error);
        if (d->n_show && !(o->mismatches_only && rf_diff_class_ok(d->cls))) {
            printf("%s: values %" PRIu64 "..%" PRIu64 " (first difference at %" PRIu64 "):\n",
                   d->name_a, d->show_first, d->show_first + d->n_show - 1, d->first_diff);
            for (uint32_t k = 0; k < d->n_show; k++)
                printf("  [%" PRIu64 "] %.9g %.9g%s\n", d->show_first + k, d->show_a[k],
                       d->show_b[k], d->show_first + k == d->first_diff ? "  <-" : "");
        }
    }
    printf("%zu pairs: %zu identical, %zu same values, %zu within tolerance, %zu small, "
           "%zu medium, %zu large, %zu transposed, %zu critical; %zu only in A, %zu only in B\n",
           rf_diff_report_count(r) - counts[RF_DIFF_ONLY_IN_A] - counts[RF_DIFF_ONLY_IN_B],
           counts[RF_DIFF_IDENTICAL], counts[RF_DIFF_SAME_VALUES], counts[RF_DIFF_WITHIN_TOLERANCE],
           counts[RF_DIFF_SMALL], counts[RF_DIFF_MEDIUM], counts[RF_DIFF_LARGE],
           counts[RF_DIFF_TRANSPOSED], counts[RF_DIFF_CRITICAL], counts[RF_DIFF_ONLY_IN_A],
           counts[RF_DIFF_ONLY_IN_B]);
    return ok;
}

static cJSON *json_shape(const uint64_t *shape, int ndim)
{
    cJSON *a = cJSON_CreateArray();
    for (int d = 0; a && d < ndim; d++)
        cJSON_AddItemToArray(a, cli_json_u64(shape[d]));
    return a;
}

static cJSON *json_name(const char *s)
{
    return s ? cli_json_string(s, strlen(s)) : cJSON_CreateNull();
}

static bool print_json(const rf_diff_report *r, const options *o)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "model_a", json_name(o->a));
    cJSON_AddItemToObject(root, "model_b", json_name(o->b));
    cJSON_AddBoolToObject(root, "passed", rf_diff_report_ok(r));
    cJSON *deviating = cJSON_AddArrayToObject(root, "deviating");
    cJSON *list = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; i < rf_diff_report_count(r); i++) {
        const rf_tensor_diff *d = rf_diff_report_get(r, i);
        const char *name = d->name_a ? d->name_a : d->name_b;
        if (!rf_diff_class_ok(d->cls))
            cJSON_AddItemToArray(deviating, json_name(name));
        if (o->mismatches_only && rf_diff_class_ok(d->cls))
            continue;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToObject(t, "name", json_name(name));
        cJSON_AddItemToObject(t, "name_a", json_name(d->name_a));
        cJSON_AddItemToObject(t, "name_b", json_name(d->name_b));
        cJSON_AddItemToObject(t, "canonical", json_name(d->canonical));
        cJSON_AddStringToObject(t, "status", rf_diff_class_name(d->cls));
        cJSON_AddItemToObject(t, "dtype_a",
                              d->name_a ? cJSON_CreateString(rf_dtype_name(d->dtype_a))
                                        : cJSON_CreateNull());
        cJSON_AddItemToObject(t, "dtype_b",
                              d->name_b ? cJSON_CreateString(rf_dtype_name(d->dtype_b))
                                        : cJSON_CreateNull());
        cJSON_AddItemToObject(t, "shape_a",
                              d->name_a ? json_shape(d->shape_a, d->ndim_a) : cJSON_CreateNull());
        cJSON_AddItemToObject(t, "shape_b",
                              d->name_b ? json_shape(d->shape_b, d->ndim_b) : cJSON_CreateNull());
        if (d->compared) {
            cJSON_AddItemToObject(t, "count", cli_json_u64(d->count));
            cJSON_AddItemToObject(t, "max_abs_diff", cli_json_double(d->max_abs, false));
            cJSON_AddItemToObject(t, "mean_abs_diff", cli_json_double(d->mean_abs, false));
            cJSON_AddItemToObject(t, "rmse", cli_json_double(d->rmse, false));
            cJSON_AddItemToObject(t, "cosine", cli_json_double(d->cosine, false));
            cJSON_AddItemToObject(t, "max_ulp",
                                  d->has_ulp ? cli_json_u64(d->max_ulp) : cJSON_CreateNull());
            cJSON_AddItemToObject(t, "differing", cli_json_u64(d->n_diff));
            cJSON_AddItemToObject(t, "first_difference",
                                  d->n_diff ? cli_json_u64(d->first_diff) : cJSON_CreateNull());
            cJSON_AddItemToObject(t, "nonfinite_mismatches", cli_json_u64(d->nonfinite));
            cJSON_AddItemToObject(t, "tolerance", cli_json_double(d->tolerance, false));
        }
        cJSON_AddItemToObject(t, "error", json_name(d->error));
        if (d->n_show) {
            cJSON *sa = cJSON_AddArrayToObject(t, "values_a"),
                  *sb = cJSON_AddArrayToObject(t, "values_b");
            cJSON_AddItemToObject(t, "values_first", cli_json_u64(d->show_first));
            for (uint32_t k = 0; k < d->n_show; k++) {
                cJSON_AddItemToArray(sa, cli_json_double(d->show_a[k], true));
                cJSON_AddItemToArray(sb, cli_json_double(d->show_b[k], true));
            }
        }
        cJSON_AddItemToArray(list, t);
    }
    return cli_print_json(root, true);
}

static rf_model *open_input(const char *path, int *code)
{
    rf_error damage, lenient_err;
    rf_model *m = cli_open_diagnostic(path, cli_cheap_to_verify(path), NULL, &damage, &lenient_err);
    if (m && damage.status == RF_OK)
        return m;
    *code = cli_report_damage(&TOOL, path, m, &damage, &lenient_err, 10);
    if (*code == APR_EXIT_OK)
        *code = APR_EXIT_INPUT;
    rf_model_free(m);
    return NULL;
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    options o = {.diff = {.tolerance = -1}};
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                             {"filter", required_argument, NULL, 'f'},
                                             {"tolerance", required_argument, NULL, 't'},
                                             {"mismatches-only", no_argument, NULL, 'm'},
                                             {"show", required_argument, NULL, 's'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    char *end;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j': o.json = true; break;
        case 'f': o.diff.filter = optarg; break;
        case 't':
            o.diff.tolerance = strtod(optarg, &end);
            if (*end || !(o.diff.tolerance >= 0))
                return cli_usage_error(&TOOL, "--tolerance needs a number >= 0");
            break;
        case 'm': o.mismatches_only = true; break;
        case 's': {
            long n = strtol(optarg, &end, 10);
            if (*end || n < 0 || n > 4096)
                return cli_usage_error(&TOOL, "--show needs a number from 0 to 4096");
            o.diff.show = (uint32_t)n;
            break;
        }
        default:
            if (optopt)
                return cli_usage_error(&TOOL, "option '%s' needs a value", argv[optind - 1]);
            return cli_usage_error(&TOOL, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error(&TOOL, "two models A and B are needed (got %d)", argc - optind);
    o.a = argv[optind];
    o.b = argv[optind + 1];
    rf_error contracts_err;
    if (!rf_contracts_default(&contracts_err))
        cli_error(&TOOL,
                  "warning: %s: canonical names are the stored names (no pairing across "
                  "formats)",
                  contracts_err.message);
    rf_model *a = open_input(o.a, &code);
    if (!a)
        return code;
    rf_model *b = open_input(o.b, &code);
    if (!b) {
        rf_model_free(a);
        return code;
    }
    rf_diff_report *r = NULL;
    rf_error err;
    rf_status st = rf_models_diff(a, b, &o.diff, &r, &err);
    if (st != RF_OK) {
        cli_error(&TOOL, "%s", err.message);
        code = cli_exit_for_status(st);
    } else {
        bool printed = o.json ? print_json(r, &o) : print_text(r, &o);
        code = !printed ? APR_EXIT_WRITE : rf_diff_report_ok(r) ? APR_EXIT_OK : APR_EXIT_CHECK;
    }
    rf_diff_report_free(r);
    rf_model_free(a);
    rf_model_free(b);
    if (cli_finish_stdout(&TOOL, true) != APR_EXIT_OK)
        code = APR_EXIT_WRITE;
    return code;
}
