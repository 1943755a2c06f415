/* The front end of apr convert / rosetta-convert, apr import and apr export (see convert_cli.h):
 * flags in, one rf_convert call per output, the summary out. */
#include "convert_cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rosetta/contract.h"
#include "rosetta/convert.h"
#include "rosetta/output.h"

#define MAX_CHAIN 8

typedef struct options {
    const cli_tool *tool;
    convert_mode mode;
    const char *src, *out, *to, *chain, *mix, *requantize, *arch, *contracts;
    bool verify, skip_contract, no_provenance, json, quiet, enforce_provenance, force;
    int n_threads;
    /* progress bar */
    bool progress;
    double start;
    bool drawn;
} options;

enum {
    OPT_TO = 256,
    OPT_CHAIN,
    OPT_QUANTIZE,
    OPT_REQUANTIZE,
    OPT_VERIFY,
    OPT_SKIP_CONTRACT,
    OPT_CONTRACTS,
    OPT_ARCH,
    OPT_NO_PROVENANCE,
    OPT_JSON,
    OPT_ENFORCE,
    OPT_FORCE,
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- the output format ------------------------------------------------------------------- */

typedef struct target {
    rf_format format;
    bool directory; /* SafeTensors as a Hugging Face directory */
} target;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static bool is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A format word of --to, --format or --chain. */
static bool parse_word(const char *word, target *t)
{
    if (strcasecmp(word, "gguf") == 0)
        *t = (target){RF_FORMAT_GGUF, false};
    else if (strcasecmp(word, "apr") == 0)
        *t = (target){RF_FORMAT_APR, false};
    else if (strcasecmp(word, "safetensors") == 0 || strcasecmp(word, "st") == 0)
        *t = (target){RF_FORMAT_SAFETENSORS, false};
    else if (strcasecmp(word, "hf") == 0)
        *t = (target){RF_FORMAT_SAFETENSORS, true};
    else
        return false;
    return true;
}

/* The output of path: --to / --format when given, else the extension; a directory (existing,
 * ending in '/', or a name without a known extension) is the Hugging Face layout. */
static int resolve_target(const options *o, const char *path, target *t)
{
    const char *word = o->to;
    bool dir_like = is_directory(path) || ends_with(path, "/");
    if (word != NULL) {
        if (!parse_word(word, t))
            return cli_usage_error(o->tool, "--%s %s: expected gguf, apr, safetensors or hf",
                                   o->mode == CONVERT_EXPORT ? "format" : "to", word);
        if (t->format == RF_FORMAT_SAFETENSORS)
            t->directory = t->directory || dir_like || !ends_with(path, ".safetensors");
        if (t->directory && ends_with(path, ".safetensors") && !dir_like)
            return cli_usage_error(o->tool, "%s: a Hugging Face directory needs a directory name",
                                   path);
        return APR_EXIT_OK;
    }
    rf_format f = rf_convert_format_for_path(path);
    if (f != RF_FORMAT_UNKNOWN && !dir_like) {
        *t = (target){f, false};
        return APR_EXIT_OK;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (dir_like || strchr(base, '.') == NULL) {
        *t = (target){RF_FORMAT_SAFETENSORS, true};
        return APR_EXIT_OK;
    }
    return cli_usage_error(o->tool,
                           "%s: cannot tell the output format from the name; end it in .gguf, "
                           ".apr or .safetensors, name a directory, or give --to",
                           path);
}

static const char *target_word(const target *t)
{
    switch (t->format) {
    case RF_FORMAT_GGUF: return "gguf";
    case RF_FORMAT_APR: return "apr";
    case RF_FORMAT_SAFETENSORS: return t->directory ? "hf" : "safetensors";
    case RF_FORMAT_UNKNOWN:
    case RF_FORMAT_SAFETENSORS_INDEX:
    case RF_FORMAT_SAFETENSORS_DIR:
    case RF_FORMAT_APR2_MAGIC:
    case RF_FORMAT_APR_V1:
    case RF_FORMAT_APR1:
    case RF_FORMAT_APRT:
    case RF_FORMAT_APR_TSP: break;
    }
    return "?";
}

static const char *source_word(rf_format f)
{
    switch (f) {
    case RF_FORMAT_GGUF: return "gguf";
    case RF_FORMAT_APR:
    case RF_FORMAT_APR2_MAGIC: return "apr";
    case RF_FORMAT_SAFETENSORS:
    case RF_FORMAT_SAFETENSORS_INDEX:
    case RF_FORMAT_SAFETENSORS_DIR: return "safetensors";
    case RF_FORMAT_UNKNOWN:
    case RF_FORMAT_APR_V1:
    case RF_FORMAT_APR1:
    case RF_FORMAT_APRT:
    case RF_FORMAT_APR_TSP: break;
    }
    return rf_format_name(f);
}

/* ---- progress ---------------------------------------------------------------------------- */

static void on_work(const char *phase, uint64_t done, uint64_t total, void *ctx)
{
    options *o = ctx;
    if (!o->progress || now() - o->start < 1.0)
        return;
    char a[32], b[32];
    if (total > 0) {
        double pct = 100.0 * (double)done / (double)total;
        fprintf(stderr, "\r\033[K%-10s %3.0f%%  %s of %s", phase, pct > 99 ? 99 : pct,
                cli_human_bytes(done, a, sizeof a), cli_human_bytes(total, b, sizeof b));
    } else {
        fprintf(stderr, "\r\033[K%-10s ...", phase);
    }
    o->drawn = true;
}

static void clear_progress(options *o)
{
    if (o->drawn)
        fprintf(stderr, "\r\033[K");
    o->drawn = false;
}

/* ---- one conversion ---------------------------------------------------------------------- */

typedef struct step {
    const char *src_path, *out_path;
    target target;
    rf_format src_format;
    size_t src_tensors;
    uint64_t src_bytes;
    rf_convert_report *report;
    rf_status status;
    rf_error err;
} step;

static void print_violations(const options *o, const rf_contract_report *c)
{
    if (c == NULL || o->quiet)
        return;
    for (size_t i = 0; i < rf_contract_report_n_violations(c); i++) {
        const rf_violation *v = rf_contract_report_violation(c, i);
        if (v->severity == RF_SEVERITY_ERROR)
            fprintf(stderr, "  %-26s %s\n", v->rule, v->message);
    }
}

static void warnings(const options *o, const step *s)
{
    const rf_convert_report *r = s->report;
    if (o->quiet || r == NULL)
        return;
    /* the contract's warnings (a name that spells no role passes through unchanged) */
    for (size_t i = 0; r->contract && i < rf_contract_report_n_violations(r->contract); i++) {
        const rf_violation *v = rf_contract_report_violation(r->contract, i);
        if (v->severity == RF_SEVERITY_WARNING)
            fprintf(stderr, "apr-%s: warning: %s: %s\n", o->tool->name, v->rule, v->message);
    }
    if (r->n_unheld > 0) {
        rf_dtype to = RF_DTYPE_F32;
        if (o->requantize)
            rf_dtype_from_name(o->requantize, &to);
        fprintf(stderr,
                "apr-%s: warning: %zu tensor(s) of type %s, which %s cannot hold, %s %s%s\n",
                o->tool->name, r->n_unheld, r->unheld_types, target_word(&s->target),
                to == RF_DTYPE_F32 ? "were dequantized to" : "were requantized to",
                rf_dtype_name(to), to == RF_DTYPE_F32 ? " (their values are kept exactly)" : "");
    }
    if (r->n_fields_differ > 0)
        fprintf(stderr, "apr-%s: warning: the output does not keep %s (first: %s)%s\n",
                o->tool->name, r->fields_differ, r->first_field_diff,
                o->no_provenance ? "; without --no-provenance Rosetta carries them" : "");
    size_t requantized = 0;
    for (size_t i = 0; i < r->n_tensors; i++)
        requantized += r->tensors[i].requantize && !r->tensors[i].unheld;
    if (requantized > 0)
        fprintf(stderr,
                "apr-%s: warning: %zu quantized tensor(s) were requantized (dequantized, then "
                "quantized again: the errors add up)\n",
                o->tool->name, requantized);
}

/* "model.safetensors" in a directory, or an index, is named after the directory. */
static void stem_of(const char *path, char *out, size_t size)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    char *base = strrchr(buf, '/');
    char *name = base ? base + 1 : buf;
    if (!is_directory(buf)) {
        if (base && (strcmp(name, "model.safetensors") == 0 ||
                     strcmp(name, "model.safetensors.index.json") == 0)) {
            *base = '\0';
            base = strrchr(buf, '/');
            name = base ? base + 1 : buf;
        } else {
            char *dot = strrchr(name, '.');
            if (dot && dot != name)
                *dot = '\0';
        }
    }
    snprintf(out, size, "%s", name[0] ? name : "model");
}

static rf_status run_step(options *o, step *s, bool compare)
{
    const rf_open_options open = {.architecture = o->arch};
    rf_model *src = rf_model_open(s->src_path, &open, &s->err);
    if (src == NULL)
        return s->status = s->err.status ? s->err.status : RF_ERR_IO;
    s->src_format = rf_model_format(src);
    s->src_tensors = rf_model_n_tensors(src);
    for (size_t i = 0; i < s->src_tensors; i++)
        s->src_bytes += rf_model_tensor(src, i)->nbytes;
    if (!o->quiet)
        for (size_t i = 0; i < rf_model_n_warnings(src); i++)
            fprintf(stderr, "apr-%s: warning: %s\n", o->tool->name, rf_model_warning(src, i));
    if (o->mode == CONVERT_EXPORT && s->src_format != RF_FORMAT_APR &&
        s->src_format != RF_FORMAT_APR2_MAGIC) {
        rf_model_free(src);
        return s->status = rf_error_set(&s->err, RF_ERR_ARGUMENT,
                                        "%s: not an APR file (%s); apr export takes APR files, "
                                        "apr convert takes any",
                                        s->src_path, source_word(s->src_format));
    }
    if (o->enforce_provenance && s->src_format == RF_FORMAT_GGUF) {
        rf_model_free(src);
        return s->status = rf_error_set(
                   &s->err, RF_ERR_CONTRACT,
                   "%s: --enforce-provenance: the source is GGUF; start from the Hugging Face "
                   "SafeTensors (the ground truth) instead",
                   s->src_path);
    }
    rf_convert_params p = rf_convert_params_default();
    p.format = s->target.format;
    p.convert_unheld = true;
    p.unheld_dtype = RF_DTYPE_F32;
    if (o->requantize)
        rf_dtype_from_name(o->requantize, &p.unheld_dtype);
    if (o->mix) {
        p.quantize = true;
        rf_quant_mix_from_name(o->mix, &p.plan.mix);
        p.plan = rf_quant_plan_options_default(p.plan.mix);
    }
    p.n_threads = o->n_threads;
    p.architecture = o->arch;
    p.check_contract = !o->skip_contract;
    p.check_values = !o->skip_contract;
    p.provenance = !o->no_provenance;
    p.compare = compare;
    p.replace_input = o->force; /* rf_convert refuses the source's own files unless asked */
    p.on_work = on_work;
    p.ctx = o;
    o->start = now();
    s->status = rf_convert(src, &p, s->out_path, &s->report, &s->err);
    clear_progress(o);
    rf_model_free(src);
    return s->status;
}

/* ---- printing ---------------------------------------------------------------------------- */

static void print_step(const options *o, const step *s)
{
    const rf_convert_report *r = s->report;
    char a[32], b[32];
    printf("%s -> %s\n", s->src_path, s->out_path);
    printf("  source      %s, %zu tensors, %s\n", source_word(s->src_format), s->src_tensors,
           cli_human_bytes(s->src_bytes, a, sizeof a));
    if (r == NULL || r->plan == NULL)
        return;
    size_t converted = r->plan->n_convert, kept = r->n_tensors - converted;
    printf("  output      %s, %zu tensors (%zu kept, %zu converted", target_word(&s->target),
           r->n_tensors + r->n_head_copies, kept, converted);
    if (r->n_head_copies)
        printf(", %zu tied head copy", r->n_head_copies);
    printf("), %s\n", cli_human_bytes(r->plan->dst_bytes, b, sizeof b));
    if (r->n_unheld)
        printf("  not held    %zu tensor(s) of %s\n", r->n_unheld, r->unheld_types);
    if (r->contract) {
        const rf_family *f = rf_contract_report_family(r->contract);
        printf("  contract    passed (%s, structural rules)\n", f ? rf_family_name(f) : "?");
    } else {
        printf("  contract    skipped\n");
    }
    if (r->n_values_checked)
        printf("  values      no NaN or Inf in %zu tensors\n", r->n_values_checked);
    if (r->n_compared > 0) {
        printf("  verify      %zu identical, %zu exact, %zu within bound", r->compare_counts[0],
               r->compare_counts[1], r->compare_counts[2]);
        if (r->compare_counts[RF_COMPARE_OMITTED])
            printf(", %zu omitted (tied head)", r->compare_counts[RF_COMPARE_OMITTED]);
        if (r->compare_counts[RF_COMPARE_VIOLATION])
            printf(", %zu VIOLATION(S)", r->compare_counts[RF_COMPARE_VIOLATION]);
        if (r->worst_tensor[0])
            printf("; worst %s: relative RMSE %.3g (bound %.3g)", r->worst_tensor,
                   r->worst_rel_rmse, r->worst_bound);
        printf("\n");
    }
    if (r->n_fields_checked > 0) {
        if (r->n_fields_differ == 0)
            printf("  fields      %zu config and tokenizer fields kept\n", r->n_fields_checked);
        else
            printf("  fields      %zu of %zu config and tokenizer fields not kept: %s\n",
                   r->n_fields_differ, r->n_fields_checked, r->fields_differ);
    }
    if (r->provenance)
        printf("  provenance  %s\n", r->provenance);
    (void)o;
}

static cJSON *step_json(const step *s)
{
    const rf_convert_report *r = s->report;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "source", s->src_path);
    cJSON_AddStringToObject(j, "source_format", source_word(s->src_format));
    cJSON_AddStringToObject(j, "output", s->out_path);
    cJSON_AddStringToObject(j, "format", target_word(&s->target));
    cJSON_AddBoolToObject(j, "written", r && r->written);
    if (s->status != RF_OK)
        cJSON_AddStringToObject(j, "error", s->err.message);
    else
        cJSON_AddNullToObject(j, "error");
    if (r == NULL || r->plan == NULL)
        return j;
    cJSON_AddNumberToObject(j, "n_tensors", (double)(r->n_tensors + r->n_head_copies));
    cJSON_AddNumberToObject(j, "converted", (double)r->plan->n_convert);
    cJSON_AddNumberToObject(j, "tied_head_copies", (double)r->n_head_copies);
    cJSON_AddItemToObject(j, "bytes", cli_json_u64(r->plan->dst_bytes));
    cJSON *unheld = cJSON_AddObjectToObject(j, "not_held");
    cJSON_AddNumberToObject(unheld, "count", (double)r->n_unheld);
    cJSON_AddStringToObject(unheld, "types", r->unheld_types);
    cJSON_AddNumberToObject(j, "requantized", (double)r->n_requantized);
    cJSON_AddBoolToObject(j, "contract_checked", r->contract != NULL);
    cJSON_AddNumberToObject(j, "values_checked", (double)r->n_values_checked);
    if (r->source_digest[0])
        cJSON_AddStringToObject(j, "source_digest", r->source_digest);
    cJSON *prov = r->provenance ? cJSON_Parse(r->provenance) : NULL;
    if (prov)
        cJSON_AddItemToObject(j, "provenance", prov);
    else
        cJSON_AddNullToObject(j, "provenance");
    if (r->n_compared > 0) {
        cJSON *v = cJSON_AddObjectToObject(j, "verify");
        for (int k = 0; k <= RF_COMPARE_VIOLATION; k++)
            cJSON_AddNumberToObject(v, rf_compare_kind_name((rf_compare_kind)k),
                                    (double)r->compare_counts[k]);
        if (r->worst_tensor[0]) {
            cJSON *w = cJSON_AddObjectToObject(v, "worst");
            cJSON_AddStringToObject(w, "tensor", r->worst_tensor);
            cJSON_AddItemToObject(w, "rel_rmse", cli_json_double(r->worst_rel_rmse, false));
            cJSON_AddItemToObject(w, "bound", cli_json_double(r->worst_bound, false));
        }
        if (r->first_violation[0])
            cJSON_AddStringToObject(v, "first_violation", r->first_violation);
        cJSON_AddNumberToObject(v, "fields_checked", (double)r->n_fields_checked);
        cJSON *lost = cJSON_AddArrayToObject(v, "fields_not_kept");
        char names[sizeof r->fields_differ];
        snprintf(names, sizeof names, "%s", r->fields_differ);
        for (char *save = NULL, *f = strtok_r(names, ", ", &save); f;
             f = strtok_r(NULL, ", ", &save))
            cJSON_AddItemToArray(lost, cJSON_CreateString(f));
    } else {
        cJSON_AddNullToObject(j, "verify");
    }
    if (r->contract) {
        cJSON *list = cJSON_AddArrayToObject(j, "violations");
        for (size_t i = 0; i < rf_contract_report_n_violations(r->contract); i++) {
            const rf_violation *v = rf_contract_report_violation(r->contract, i);
            cJSON *item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "rule", v->rule);
            cJSON_AddStringToObject(item, "severity",
                                    v->severity == RF_SEVERITY_ERROR ? "error" : "warning");
            cJSON_AddStringToObject(item, "message", v->message);
            cJSON_AddItemToArray(list, item);
        }
    }
    return j;
}

/* The success line of a written step (stderr), unless -q. */
static void report_written(const options *o, const step *s)
{
    const rf_convert_report *r = s->report;
    if (s->status == RF_OK && r != NULL && r->written && !o->quiet)
        cli_report_written(o->tool, s->out_path, r->n_tensors + r->n_head_copies);
}

/* Exit code of a finished step, after its messages. */
static int finish_step(const options *o, const step *s)
{
    if (s->status == RF_OK)
        return APR_EXIT_OK;
    if (s->report)
        print_violations(o, s->report->contract);
    cli_error(o->tool, "%s", s->err.message);
    int code = cli_exit_for_status(s->status);
    /* a request the output cannot satisfy is a usage error; out of memory is not */
    return s->status == RF_ERR_NOMEM ? APR_EXIT_WRITE : code;
}

/* ---- the modes ------------------------------------------------------------------------------ */

static int run_single(options *o)
{
    step s = {0};
    s.src_path = o->src;
    s.out_path = o->out;
    int rc = o->mode == CONVERT_IMPORT ? APR_EXIT_OK : resolve_target(o, o->out, &s.target);
    if (o->mode == CONVERT_IMPORT)
        s.target = (target){RF_FORMAT_APR, false};
    if (rc != APR_EXIT_OK)
        return rc;
    run_step(o, &s, o->verify);
    warnings(o, &s);
    rc = finish_step(o, &s);
    if (o->json)
        cli_print_json(step_json(&s), true);
    else if (s.status == RF_OK)
        print_step(o, &s);
    /* a closed stdout does not undo the written file; it fails only a result asked on stdout */
    int out_rc = cli_finish_stdout(o->tool, o->json);
    if (rc == APR_EXIT_OK)
        rc = out_rc;
    report_written(o, &s);
    rf_convert_report_free(s.report);
    return rc;
}

/* --chain st,apr,gguf SRC -o DIR: each step converts the previous output, compared with it; then
 * the last output is compared with SRC. */
static int run_chain(options *o)
{
    target chain[MAX_CHAIN];
    size_t n = 0;
    char list[256];
    snprintf(list, sizeof list, "%s", o->chain);
    for (char *save = NULL, *w = strtok_r(list, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        if (n == MAX_CHAIN)
            return cli_usage_error(o->tool, "--chain: at most %d formats", MAX_CHAIN);
        if (!parse_word(w, &chain[n]))
            return cli_usage_error(o->tool, "--chain: '%s': expected gguf, apr, st or hf", w);
        n++;
    }
    if (n < 2)
        return cli_usage_error(o->tool, "--chain: name the source format and at least one more");
    /* before any work: a directory (or nothing) at DIR, in a writable directory */
    rf_output_check_options where = {RF_OUTPUT_DIRECTORY, NULL, false};
    rf_error check = {0};
    if (rf_output_check(o->out, &where, &check) != RF_OK) {
        cli_error(o->tool, "%s", check.message);
        return cli_exit_for_status(check.status);
    }
    if (mkdir(o->out, 0755) != 0 && errno != EEXIST)
        return cli_usage_error(o->tool, "%s: cannot create the directory: %s", o->out,
                               strerror(errno));
    char stem[256];
    stem_of(o->src, stem, sizeof stem);
    char paths[MAX_CHAIN][4096];
    step steps[MAX_CHAIN];
    memset(steps, 0, sizeof steps);
    snprintf(paths[0], sizeof paths[0], "%s", o->src);
    int rc = APR_EXIT_OK;
    cJSON *json = o->json ? cJSON_CreateObject() : NULL;
    cJSON *list_json = json ? cJSON_AddArrayToObject(json, "chain") : NULL;
    size_t done = 0;
    const char *mix = o->mix;
    for (size_t i = 1; i < n && rc == APR_EXIT_OK; i++) {
        chain[i].directory = chain[i].format == RF_FORMAT_SAFETENSORS;
        const char *ext = chain[i].format == RF_FORMAT_GGUF  ? ".gguf"
                          : chain[i].format == RF_FORMAT_APR ? ".apr"
                                                             : "-hf";
        bool repeated = false;
        for (size_t k = 1; k < i; k++)
            repeated |= chain[k].format == chain[i].format;
        if (repeated)
            snprintf(paths[i], sizeof paths[i], "%s/%s.%zu%s", o->out, stem, i, ext);
        else
            snprintf(paths[i], sizeof paths[i], "%s/%s%s", o->out, stem, ext);
        step *s = &steps[i];
        s->src_path = paths[i - 1];
        s->out_path = paths[i];
        s->target = chain[i];
        o->mix = i == 1 ? mix : NULL; /* a mix applies to the first step; later ones keep it */
        run_step(o, s, true);
        if (i == 1 && s->status == RF_OK) {
            const char *want = source_word(chain[0].format);
            if (strcmp(want, source_word(s->src_format)) != 0) {
                s->status =
                    rf_error_set(&s->err, RF_ERR_ARGUMENT, "--chain starts with %s, but %s is %s",
                                 want, o->src, source_word(s->src_format));
            }
        }
        warnings(o, s);
        rc = finish_step(o, s);
        if (s->status == RF_ERR_ARGUMENT)
            rc = APR_EXIT_USAGE;
        done = i;
        if (json)
            cJSON_AddItemToArray(list_json, step_json(s));
        else if (s->status == RF_OK)
            print_step(o, s);
        fflush(stdout);
        report_written(o, s);
    }
    o->mix = mix;
    /* end to end: the last output against the original source */
    if (rc == APR_EXIT_OK) {
        rf_error err = {0};
        const rf_open_options open = {.architecture = o->arch};
        rf_model *a = rf_model_open(o->src, &open, &err), *b = NULL;
        if (a)
            b = rf_model_open(paths[done], NULL, &err);
        rf_compare_report *c = NULL;
        if (!a || !b || rf_convert_compare(a, b, NULL, &c, &err) != RF_OK) {
            cli_error(o->tool, "%s", err.message);
            rc = cli_exit_for_status(err.status);
        } else {
            size_t bad = c->counts[RF_COMPARE_VIOLATION];
            if (json) {
                cJSON *e = cJSON_AddObjectToObject(json, "end_to_end");
                for (int k = 0; k <= RF_COMPARE_VIOLATION; k++)
                    cJSON_AddNumberToObject(e, rf_compare_kind_name((rf_compare_kind)k),
                                            (double)c->counts[k]);
            } else {
                printf("%s -> %s (end to end)\n  verify      %zu identical, %zu exact, %zu "
                       "within bound, %zu omitted, %zu violation(s)\n",
                       o->src, paths[done], c->counts[0], c->counts[1], c->counts[2], c->counts[3],
                       bad);
            }
            for (size_t i = 0; i < c->n_entries; i++)
                if (c->entries[i].kind == RF_COMPARE_VIOLATION && !o->quiet)
                    fprintf(stderr, "  %s: %s\n",
                            c->entries[i].name ? c->entries[i].name : c->entries[i].source_name,
                            c->entries[i].detail);
            if (bad) {
                cli_error(o->tool, "%s: %zu tensor(s) differ from %s beyond their types' bounds",
                          paths[done], bad, o->src);
                rc = APR_EXIT_CHECK;
            }
        }
        rf_compare_report_free(c);
        rf_model_free(b);
        rf_model_free(a);
    }
    if (json)
        cli_print_json(json, true);
    int out_rc = cli_finish_stdout(o->tool, json != NULL);
    if (rc == APR_EXIT_OK)
        rc = out_rc;
    for (size_t i = 1; i < n; i++)
        rf_convert_report_free(steps[i].report);
    return rc;
}

/* ---- flags ------------------------------------------------------------------------------- */

static int parse_args(options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"to", required_argument, NULL, OPT_TO},
        {"format", required_argument, NULL, OPT_TO},
        {"chain", required_argument, NULL, OPT_CHAIN},
        {"quantize", required_argument, NULL, OPT_QUANTIZE},
        {"requantize", required_argument, NULL, OPT_REQUANTIZE},
        {"verify", no_argument, NULL, OPT_VERIFY},
        {"skip-contract", no_argument, NULL, OPT_SKIP_CONTRACT},
        {"contracts", required_argument, NULL, OPT_CONTRACTS},
        {"arch", required_argument, NULL, OPT_ARCH},
        {"no-provenance", no_argument, NULL, OPT_NO_PROVENANCE},
        {"enforce-provenance", no_argument, NULL, OPT_ENFORCE},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"threads", required_argument, NULL, 't'},
        {"force", no_argument, NULL, OPT_FORCE},
        {NULL, 0, NULL, 0},
    };
    static const char shortopts[] = "o:qt:";
    int opt;
    while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        switch (opt) {
        case 'o': o->out = optarg; break;
        case OPT_TO: o->to = optarg; break;
        case OPT_CHAIN: o->chain = optarg; break;
        case OPT_QUANTIZE: o->mix = optarg; break;
        case OPT_REQUANTIZE: o->requantize = optarg; break;
        case OPT_VERIFY: o->verify = true; break;
        case OPT_SKIP_CONTRACT: o->skip_contract = true; break;
        case OPT_CONTRACTS: o->contracts = optarg; break;
        case OPT_ARCH: o->arch = optarg; break;
        case OPT_NO_PROVENANCE: o->no_provenance = true; break;
        case OPT_ENFORCE: o->enforce_provenance = true; break;
        case OPT_JSON: o->json = true; break;
        case OPT_FORCE: o->force = true; break;
        case 'q': o->quiet = true; break;
        case 't': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 0 || v > 4096)
                return cli_usage_error(o->tool, "--threads %s: expected a number 0..4096", optarg);
            o->n_threads = (int)v;
            break;
        }
        default: return cli_option_error(o->tool, argv, shortopts, longopts);
        }
    }
    /* flags that belong to another mode */
    const char *wrong = NULL;
    if (o->mode != CONVERT_ANY && o->chain)
        wrong = "--chain";
    else if (o->mode == CONVERT_IMPORT && o->to)
        wrong = "--to/--format (apr import writes APR)";
    else if (o->mode != CONVERT_IMPORT && o->enforce_provenance)
        wrong = "--enforce-provenance";
    if (wrong)
        return cli_usage_error(o->tool, "%s is not an option of apr %s", wrong, o->tool->name);
    if (argc - optind != 1)
        return cli_usage_error(o->tool, "expected one SRC, got %d", argc - optind);
    o->src = argv[optind];
    if (o->out == NULL)
        return cli_usage_error(o->tool, "no output: give -o %s", o->chain ? "DIR" : "DST");
    rf_quant_mix mix;
    if (o->mix && !rf_quant_mix_from_name(o->mix, &mix))
        return cli_usage_error(o->tool,
                               "--quantize %s: expected q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, "
                               "q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k, "
                               "f16, bf16 or f32",
                               o->mix);
    rf_dtype d;
    if (o->requantize && !rf_dtype_from_name(o->requantize, &d))
        return cli_usage_error(o->tool, "--requantize %s: not a tensor type (q6_k, q4_k, ...)",
                               o->requantize);
    if (o->contracts) {
        rf_error err = {0};
        if (rf_contracts_set_default(o->contracts, &err) != RF_OK)
            return cli_usage_error(o->tool, "--contracts %s: %s", o->contracts, err.message);
    }
    return APR_EXIT_OK;
}

int convert_cli_main(const cli_tool *tool, convert_mode mode, int argc, char **argv)
{
    int code;
    if (cli_common_flags(tool, argc, argv, &code))
        return code;
    options o;
    memset(&o, 0, sizeof o);
    o.tool = tool;
    o.mode = mode;
    if ((code = parse_args(&o, argc, argv)) != APR_EXIT_OK)
        return code;
    o.progress = !o.quiet && isatty(STDERR_FILENO);
    return o.chain ? run_chain(&o) : run_single(&o);
}
