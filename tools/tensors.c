/* apr-tensors: the tensor list of a model file (name, dtype, shape, offset, bytes) and, with
 * --stats, value statistics computed on dequantized data streamed in chunks.
 * Not for: metadata and config (apr-inspect). */
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rosetta/fingerprint.h"
#include "rosetta/model.h"

static const cli_tool TOOL = {
    "tensors", "list the tensors of a model file, with value statistics on request",
    "usage: apr tensors [--stats] [--filter GLOB] [--json] [--gguf-order] FILE\n\n"
    "Prints one line per tensor: name, dtype, shape (row-major, outermost first), absolute\n"
    "file offset of its data and its size in bytes. A damaged file is listed as far as it can\n"
    "be read; its problems go to stderr and the exit code is 3.\n\n"
    "Options:\n"
    "      --stats        add min, max, mean, std (population), and NaN, Inf and zero counts of\n"
    "                     the dequantized values; NaN and Inf are left out of min/max/mean/std\n"
    "      --filter GLOB  only tensors whose name matches GLOB (fnmatch: * ? [..])\n"
    "      --json         print one JSON object (schema in docs/tools.md)\n"
    "      --gguf-order   print shapes innermost dimension first (GGUF ne order)\n"};

/* Warnings printed on stderr; --json lists them all. */
#define MAX_WARNINGS 10

typedef struct options {
    bool stats, json, gguf_order;
    const char *filter;
    const char *path;
} options;

/* ---- statistics --------------------------------------------------------------------------- */

/* Statistics of one tensor from the library (rf_tensor_stats: dequantized values streamed in
 * chunks, docs/fingerprint.md). On failure a short reason goes to err ("unsupported dtype
 * IQ2_XXS"): the table already names the tensor. */
static bool tensor_stats(const rf_model *m, const rf_tensor *t, rf_value_stats *s, rf_error *err)
{
    rf_status st = rf_tensor_stats(m, t, s, err);
    if (st == RF_OK)
        return true;
    if (st == RF_ERR_UNSUPPORTED) {
        rf_error_set(err, st, "unsupported dtype %s", rf_dtype_name(t->dtype));
        return false;
    }
    char prefix[600];
    snprintf(prefix, sizeof prefix, "tensor '%s': ", t->name);
    size_t n = strlen(prefix);
    if (strncmp(err->message, prefix, n) == 0)
        memmove(err->message, err->message + n, strlen(err->message + n) + 1);
    return false;
}

/* ---- output ------------------------------------------------------------------------------- */

static bool selected(const options *o, const rf_tensor *t)
{
    return !o->filter || fnmatch(o->filter, t->name, 0) == 0;
}

static cJSON *json_number_or_null(bool present, double v)
{
    return present ? cli_json_double(v, false) : cJSON_CreateNull();
}

static cJSON *json_shape(const rf_tensor *t, bool reversed)
{
    cJSON *a = cJSON_CreateArray();
    for (int d = 0; a && d < t->ndim; d++)
        cJSON_AddItemToArray(a, cli_json_u64(t->shape[reversed ? t->ndim - 1 - d : d]));
    return a;
}

static cJSON *json_stats(const rf_value_stats *s)
{
    cJSON *o = cJSON_CreateObject();
    bool any = s->finite > 0;
    cJSON_AddItemToObject(o, "min", json_number_or_null(any, s->min));
    cJSON_AddItemToObject(o, "max", json_number_or_null(any, s->max));
    cJSON_AddItemToObject(o, "mean", json_number_or_null(any, s->mean));
    cJSON_AddItemToObject(o, "std", json_number_or_null(any, s->std));
    cJSON_AddItemToObject(o, "count", cli_json_u64(s->count));
    cJSON_AddItemToObject(o, "finite", cli_json_u64(s->finite));
    cJSON_AddItemToObject(o, "nan", cli_json_u64(s->nan));
    cJSON_AddItemToObject(o, "inf", cli_json_u64(s->inf));
    cJSON_AddItemToObject(o, "zeros", cli_json_u64(s->zeros));
    return o;
}

static const char *g(double v, bool present, char *buf, size_t size)
{
    if (!present)
        return "-";
    snprintf(buf, size, "%.6g", v);
    return buf;
}

/* Lists the selected tensors; returns false if memory ran out. A file that changes while its
 * values are read (rf_dequantize reports the truncated mapping as RF_ERR_IO) ends the listing
 * there, with the error in *changed. */
static bool run(const rf_model *m, const options *o, const rf_error *damage, rf_error *changed)
{
    size_t n = rf_model_n_tensors(m);
    bool several_files = rf_model_n_files(m) > 1;
    cJSON *root = NULL, *list = NULL;
    cli_table *table = NULL;
    if (o->json) {
        root = cJSON_CreateObject();
        cJSON_AddItemToObject(root, "file", cli_json_string(o->path, strlen(o->path)));
        cJSON_AddStringToObject(root, "format", rf_format_name(rf_model_format(m)));
        cJSON_AddBoolToObject(root, "valid", damage->status == RF_OK);
        if (damage->status == RF_OK)
            cJSON_AddNullToObject(root, "error");
        else
            cJSON_AddItemToObject(root, "error",
                                  cli_json_string(damage->message, strlen(damage->message)));
        cJSON_AddItemToObject(root, "tensor_count", cli_json_u64(n));
        list = cJSON_AddArrayToObject(root, "tensors");
    } else {
        /* name dtype shape [file] offset bytes [min max mean std nan inf zeros note] */
        table = o->stats ? cli_table_new(several_files ? 14 : 13,
                                         several_files ? "lllrrrrrrrrrrl" : "lllrrrrrrrrrl")
                         : cli_table_new(several_files ? 6 : 5, several_files ? "lllrrr" : "lllrr");
        const char *head[14] = {"name", "dtype", o->gguf_order ? "ne" : "shape"};
        size_t c = 3;
        if (several_files)
            head[c++] = "file";
        head[c++] = "offset";
        head[c++] = "bytes";
        if (o->stats) {
            static const char *const stat_heads[] = {"min", "max", "mean", "std",
                                                     "nan", "inf", "zeros"};
            for (size_t k = 0; k < 7; k++)
                head[c++] = stat_heads[k];
        }
        if (table)
            cli_table_add(table, head);
    }
    if ((o->json && (!root || !list)) || (!o->json && !table)) {
        cJSON_Delete(root);
        cli_table_free(table);
        return false;
    }

    uint64_t listed = 0, params = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const rf_tensor *t = rf_model_tensor(m, i);
        if (!selected(o, t))
            continue;
        rf_value_stats s;
        rf_error serr = {0};
        bool have_stats = o->stats && tensor_stats(m, t, &s, &serr);
        if (serr.status == RF_ERR_IO) {
            *changed = serr;
            break;
        }
        listed++;
        uint64_t elems = 0;
        bool elems_ok = rf_shape_elements(t->shape, t->ndim, &elems, NULL) == RF_OK;
        params += elems;
        bytes += t->nbytes;
        if (o->json) {
            cJSON *item = cJSON_CreateObject();
            cJSON_AddItemToObject(item, "name", cli_json_string(t->name, strlen(t->name)));
            cJSON_AddStringToObject(item, "dtype", rf_dtype_name(t->dtype));
            cJSON_AddItemToObject(item, "shape", json_shape(t, false));
            cJSON_AddItemToObject(item, "ne", json_shape(t, true));
            cJSON_AddItemToObject(item, "elements",
                                  elems_ok ? cli_json_u64(elems) : cJSON_CreateNull());
            cJSON_AddItemToObject(item, "file_index", cli_json_u64(t->source));
            cJSON_AddItemToObject(item, "offset", cli_json_u64(t->file_offset));
            cJSON_AddItemToObject(item, "bytes", cli_json_u64(t->nbytes));
            if (o->stats) {
                cJSON_AddItemToObject(item, "stats",
                                      have_stats ? json_stats(&s) : cJSON_CreateNull());
                if (have_stats)
                    cJSON_AddNullToObject(item, "stats_error");
                else
                    cJSON_AddItemToObject(item, "stats_error",
                                          cli_json_string(serr.message, strlen(serr.message)));
            }
            cJSON_AddItemToArray(list, item);
            continue;
        }
        char shape[160], file_index[24], offset[24], size[24], v[7][32], na[1100];
        const char *cells[14] = {t->name, rf_dtype_name(t->dtype),
                                 cli_shape(t->shape, t->ndim, o->gguf_order, shape, sizeof shape)};
        size_t c = 3;
        if (several_files) {
            snprintf(file_index, sizeof file_index, "%" PRIu32, t->source);
            cells[c++] = file_index;
        }
        snprintf(offset, sizeof offset, "%" PRIu64, t->file_offset);
        snprintf(size, sizeof size, "%" PRIu64, t->nbytes);
        cells[c++] = offset;
        cells[c++] = size;
        if (o->stats && have_stats) {
            bool any = s.finite > 0;
            cells[c++] = g(s.min, any, v[0], sizeof v[0]);
            cells[c++] = g(s.max, any, v[1], sizeof v[1]);
            cells[c++] = g(s.mean, any, v[2], sizeof v[2]);
            cells[c++] = g(s.std, any, v[3], sizeof v[3]);
            snprintf(v[4], sizeof v[4], "%" PRIu64, s.nan);
            snprintf(v[5], sizeof v[5], "%" PRIu64, s.inf);
            snprintf(v[6], sizeof v[6], "%" PRIu64, s.zeros);
            cells[c++] = v[4];
            cells[c++] = v[5];
            cells[c++] = v[6];
            cells[c++] = "";
        } else if (o->stats) {
            for (int k = 0; k < 7; k++)
                cells[c++] = "-";
            snprintf(na, sizeof na, "n/a (%s)", serr.message);
            cells[c++] = na;
        }
        if (!cli_table_add(table, cells)) {
            cli_table_free(table);
            return false;
        }
    }
    if (o->json) {
        cJSON_AddItemToObject(root, "listed", cli_json_u64(listed));
        cJSON *warnings = cJSON_AddArrayToObject(root, "warnings");
        for (size_t i = 0; warnings && i < rf_model_n_warnings(m); i++) {
            const char *w = rf_model_warning(m, i);
            cJSON_AddItemToArray(warnings, cli_json_string(w, strlen(w)));
        }
        return cli_print_json(root, true);
    }
    cli_table_print(table, stdout, "");
    cli_table_free(table);
    char a[32], b[32], c[32];
    if (o->filter)
        printf("%s of %s tensors match, ", cli_thousands(listed, a, sizeof a),
               cli_thousands(n, b, sizeof b));
    else
        printf("%s tensors, ", cli_thousands(listed, a, sizeof a));
    printf("%s parameters, %s\n", cli_thousands(params, b, sizeof b),
           cli_human_bytes(bytes, c, sizeof c));
    return true;
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    options o = {0};
    static const struct option longopts[] = {{"stats", no_argument, NULL, 's'},
                                             {"filter", required_argument, NULL, 'f'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"gguf-order", no_argument, NULL, 'g'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 's': o.stats = true; break;
        case 'f': o.filter = optarg; break;
        case 'j': o.json = true; break;
        case 'g': o.gguf_order = true; break;
        default: return cli_option_error(&TOOL, argv, "", longopts);
        }
    }
    if (optind >= argc)
        return cli_usage_error(&TOOL, "no FILE given");
    if (optind + 1 < argc)
        return cli_usage_error(&TOOL, "one FILE at a time (got %d)", argc - optind);
    o.path = argv[optind];

    rf_error damage, lenient_err;
    /* --stats reads every byte anyway, so the whole-file checksum costs little more. */
    bool verify = o.stats || cli_cheap_to_verify(o.path);
    rf_model *model = cli_open_diagnostic(o.path, verify, NULL, &damage, &lenient_err);
    bool written = true;
    rf_error changed = {0};
    if (model)
        written = run(model, &o, &damage, &changed);
    else if (o.json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddItemToObject(root, "file", cli_json_string(o.path, strlen(o.path)));
        cJSON_AddBoolToObject(root, "valid", false);
        cJSON_AddItemToObject(root, "error",
                              cli_json_string(damage.message, strlen(damage.message)));
        cJSON_AddItemToObject(root, "tensor_count", cJSON_CreateNull());
        cJSON_AddArrayToObject(root, "tensors");
        written = cli_print_json(root, true);
    }
    if (model && o.filter && !o.json) {
        bool any = false;
        for (size_t i = 0; !any && i < rf_model_n_tensors(model); i++)
            any = selected(&o, rf_model_tensor(model, i));
        if (!any)
            cli_error(&TOOL, "%s: no tensor name matches '%s'", o.path, o.filter);
    }
    int out_code = cli_finish_stdout(&TOOL, true);
    code = cli_report_damage(&TOOL, o.path, model, &damage, &lenient_err, MAX_WARNINGS);
    rf_model_free(model);
    if (changed.status != RF_OK) {
        cli_error(&TOOL, "%s", changed.message);
        return APR_EXIT_INPUT;
    }
    if (!written) {
        cli_error(&TOOL, "out of memory");
        return code != APR_EXIT_OK ? code : APR_EXIT_WRITE;
    }
    return code != APR_EXIT_OK ? code : out_code;
}
