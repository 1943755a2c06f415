/* apr-tensors: the tensor list of a model file (name, dtype, shape, offset, bytes) and, with
 * --stats, value statistics computed on dequantized data streamed in chunks.
 * Not for: metadata and config (apr-inspect). */
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rosetta/apr.h"
#include "rosetta/model.h"
#include "rosetta/quant.h"

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

/* Elements dequantized per step: 64 Ki floats (256 KiB), a multiple of every block size. */
#define CHUNK_ELEMS (UINT64_C(1) << 16)
/* Warnings printed on stderr; --json lists them all. */
#define MAX_WARNINGS 10

typedef struct options {
    bool stats, json, gguf_order;
    const char *filter;
    const char *path;
} options;

/* ---- statistics --------------------------------------------------------------------------- */

typedef struct stats {
    uint64_t count, finite, nan, inf, zeros;
    double min, max, mean, m2; /* over finite values; m2 = sum of squared deviations */
} stats;

/* Folds a chunk of values into s: the chunk's own mean and squared deviations are computed in
 * double over the chunk (two passes over memory that is in cache), then merged with the running
 * totals by Chan et al.'s pairwise update, which keeps std accurate for billions of values. */
static void stats_add(stats *s, const float *x, size_t n)
{
    uint64_t finite = 0;
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (isnan(v)) {
            s->nan++;
            continue;
        }
        if (isinf(v)) {
            s->inf++;
            continue;
        }
        s->zeros += v == 0.0f;
        finite++;
        sum += v;
        if (v < lo)
            lo = v;
        if (v > hi)
            hi = v;
    }
    s->count += n;
    if (finite == 0)
        return;
    double mean = sum / (double)finite, m2 = 0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(x[i])) {
            double d = (double)x[i] - mean;
            m2 += d * d;
        }
    }
    if (s->finite == 0) {
        s->min = lo;
        s->max = hi;
        s->mean = mean;
        s->m2 = m2;
        s->finite = finite;
        return;
    }
    double total = (double)(s->finite + finite);
    double delta = mean - s->mean;
    s->mean += delta * ((double)finite / total);
    s->m2 += m2 + delta * delta * ((double)s->finite * (double)finite / total);
    s->finite += finite;
    if (lo < s->min)
        s->min = lo;
    if (hi > s->max)
        s->max = hi;
}

static double stats_std(const stats *s) { return s->finite ? sqrt(s->m2 / (double)s->finite) : 0; }

/* How a tensor's values lie in its bytes: rows of row_bytes bytes, each decoding to row_elems
 * values of which the first cols are meaningful. Plain tensors are one row with nothing
 * padded; APR K-quants pad each row (or a 1-D tensor) to whole 256-value super-blocks. */
typedef struct value_layout {
    uint64_t rows, cols, row_elems, row_bytes;
} value_layout;

static bool is_apr(const rf_model *m)
{
    return rf_model_format(m) == RF_FORMAT_APR || rf_model_format(m) == RF_FORMAT_APR2_MAGIC;
}

/* The layout of t's values, after checking that its bytes are all there. */
static rf_status layout_of(const rf_model *m, const rf_tensor *t, const rf_dtype_info *info,
                           value_layout *out, rf_error *err)
{
    uint64_t elems, need;
    if (rf_shape_elements(t->shape, t->ndim, &elems, err) != RF_OK)
        return err->status;
    rf_status st = is_apr(m) ? rf_apr_tensor_bytes(t->dtype, t->shape, t->ndim, &need, err)
                             : rf_dtype_tensor_bytes(t->dtype, t->shape, t->ndim, &need, err);
    if (st != RF_OK)
        return st;
    *out = (value_layout){1, elems, elems, need};
    uint64_t row_bytes;
    if (is_apr(m) && rf_apr_tensor_row_padded(t, &row_bytes)) {
        *out = (value_layout){t->shape[0], t->shape[1],
                              row_bytes / info->block_bytes * info->block_elems, row_bytes};
    } else if (is_apr(m) && (t->dtype == RF_DTYPE_Q4_K || t->dtype == RF_DTYPE_Q6_K)) {
        out->row_elems = need / info->block_bytes * info->block_elems; /* last block padded */
    }
    if (elems > 0 && !t->data)
        return rf_error_set(err, RF_ERR_FORMAT, "no data: the tensor's bytes are not in the file");
    if (t->nbytes < need)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%" PRIu64 " data bytes for a shape that needs %" PRIu64, t->nbytes,
                            need);
    /* Defence in depth for lenient opens: data that lies in its mapped file must end in it. */
    const rf_file *file = rf_model_file(m, t->source);
    if (file && elems > 0) {
        uintptr_t base = (uintptr_t)rf_file_data(file), end = base + rf_file_size(file);
        uintptr_t at = (uintptr_t)t->data;
        if (at >= base && at <= end && need > end - at)
            return rf_error_set(err, RF_ERR_FORMAT, "data runs past the end of %s",
                                rf_file_path(file));
    }
    return RF_OK;
}

/* Dequantizes values [first, first + n) of a row starting at row into out; first is a multiple
 * of the dtype's block. scratch holds CHUNK_ELEMS + 4 bytes. */
static rf_status dequantize_chunk(const rf_tensor *t, const rf_dtype_info *info, const uint8_t *row,
                                  uint64_t first, uint64_t n, float *out, uint8_t *scratch,
                                  rf_error *err)
{
    if (t->dtype == RF_DTYPE_APR_Q8) {
        /* One f32 scale for the whole tensor, then one int8 per value (apr-v2.md 9.3): the
         * dequantizer gets the scale followed by this chunk's values. */
        memcpy(scratch, row, 4);
        memcpy(scratch + 4, row + 4 + first, n);
        return rf_dequantize(RF_DTYPE_APR_Q8, scratch, out, n, err);
    }
    /* Every other type is a run of blocks (APR_Q4's last block may be partial), so a chunk
     * that starts on a block boundary is self-contained. */
    return rf_dequantize(t->dtype, row + first / info->block_elems * info->block_bytes, out, n,
                         err);
}

/* Statistics of one tensor, streamed CHUNK_ELEMS values at a time through buf (never a copy of
 * the whole tensor). On failure returns the status and leaves a short reason in err
 * ("unsupported dtype IQ2_XXS"). */
static rf_status tensor_stats(const rf_model *m, const rf_tensor *t, float *buf, uint8_t *scratch,
                              stats *s, rf_error *err)
{
    memset(s, 0, sizeof *s);
    const rf_dtype_info *info = rf_dtype_get(t->dtype);
    if (!info)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "unsupported dtype %d", (int)t->dtype);
    if (!rf_can_dequantize(t->dtype) || info->block_elems == 0 ||
        CHUNK_ELEMS % info->block_elems != 0)
        return rf_error_set(err, RF_ERR_UNSUPPORTED, "unsupported dtype %s", info->name);
    value_layout v = {0};
    if (layout_of(m, t, info, &v, err) != RF_OK)
        return err->status;
    for (uint64_t r = 0; r < v.rows && v.cols > 0; r++) {
        const uint8_t *row = t->data + r * v.row_bytes;
        for (uint64_t first = 0; first < v.cols; first += CHUNK_ELEMS) {
            uint64_t n = v.row_elems - first < CHUNK_ELEMS ? v.row_elems - first : CHUNK_ELEMS;
            if (dequantize_chunk(t, info, row, first, n, buf, scratch, err) != RF_OK)
                return err->status;
            stats_add(s, buf, (size_t)(v.cols - first < n ? v.cols - first : n));
        }
    }
    return RF_OK;
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

static cJSON *json_stats(const stats *s)
{
    cJSON *o = cJSON_CreateObject();
    bool any = s->finite > 0;
    cJSON_AddItemToObject(o, "min", json_number_or_null(any, s->min));
    cJSON_AddItemToObject(o, "max", json_number_or_null(any, s->max));
    cJSON_AddItemToObject(o, "mean", json_number_or_null(any, s->mean));
    cJSON_AddItemToObject(o, "std", json_number_or_null(any, stats_std(s)));
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
    float *buf = NULL;
    uint8_t *scratch = NULL;
    if (o->stats) {
        buf = malloc(CHUNK_ELEMS * sizeof *buf);
        scratch = malloc(CHUNK_ELEMS + 4);
        if (!buf || !scratch) {
            free(buf);
            free(scratch);
            return false;
        }
    }
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
        free(buf);
        free(scratch);
        return false;
    }

    uint64_t listed = 0, params = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const rf_tensor *t = rf_model_tensor(m, i);
        if (!selected(o, t))
            continue;
        stats s;
        rf_error serr = {0};
        bool have_stats = o->stats && tensor_stats(m, t, buf, scratch, &s, &serr) == RF_OK;
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
            cells[c++] = g(stats_std(&s), any, v[3], sizeof v[3]);
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
            free(buf);
            free(scratch);
            return false;
        }
    }
    free(buf);
    free(scratch);
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
    rf_model *model = cli_open_diagnostic(o.path, verify, &damage, &lenient_err);
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
