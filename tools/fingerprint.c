/* apr-fingerprint: a model's fingerprint (per-tensor digests and value statistics, whole-model
 * digests, typed config) as JSON; --check compares a model with a reference fingerprint;
 * --gguf-hash prints llama.cpp gguf-hash lines. The library computes (rosetta/fingerprint.h).
 * Not for: value-by-value comparison of two models (apr-diff-tensors). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rosetta/fingerprint.h"
#include "rosetta/contract.h"
#include "rosetta/model.h"

static const cli_tool TOOL = {
    "fingerprint", "digests and value statistics of a model; check one against a reference",
    "usage: apr fingerprint [--threads N] [-o FP.json] [--compact] FILE\n"
    "       apr fingerprint --check REF.json [--tolerance-sigma K] [--allow-requantized]\n"
    "                       [--json] [--threads N] FILE\n"
    "       apr fingerprint --gguf-hash [--threads N] FILE\n\n"
    "Fingerprints FILE (GGUF, SafeTensors file or directory, APR): per tensor its canonical name,\n"
    "dtype, row-major shape, bytes, XXH3-64 of the stored bytes and of the canonical values\n"
    "(dequantized to F32, little-endian, row-major: equal across formats when a conversion was\n"
    "lossless) and statistics of the dequantized values (count, min, max, mean, population std,\n"
    "L2, exact percentiles p1 p5 p25 p50 p75 p95 p99, NaN/Inf/zero counts); whole-model digests\n"
    "of the raw bytes and of the canonical values; the typed config. The JSON document goes to\n"
    "stdout, or to FP.json with -o. Schema: docs/fingerprint-schema.json; every field is\n"
    "defined in docs/fingerprint.md. The output does not depend on --threads.\n\n"
    "--check compares FILE with the reference fingerprint REF.json (of the same model in any\n"
    "format), tensors paired by canonical name: same dtype and bytes, or same values, pass; a\n"
    "conversion that keeps every value (to F32, or the same dtype) must have equal digests;\n"
    "a lossy one passes when its statistics are within K reference standard deviations and its\n"
    "NaN/Inf counts are equal. Every deviating tensor and field is listed.\n\n"
    "--gguf-hash prints the lines `llama-gguf-hash --xxh64 --sha256 FILE` prints: per tensor\n"
    "(in file order) `xxh64  <hex>  FILE:<name>` and `sha256  <hex>  FILE:<name>`, then the same\n"
    "for all tensors' bytes together, named FILE.\n\n"
    "Options:\n"
    "  -o, --output FP.json        write the fingerprint there (atomically) instead of stdout\n"
    "      --compact               one-line JSON\n"
    "      --json                  JSON output (the default for a fingerprint; --check prints\n"
    "                              its report as JSON)\n"
    "  -t, --threads N             worker threads (default: all CPUs)\n"
    "      --check REF.json        compare FILE with a reference fingerprint\n"
    "      --tolerance-sigma K     --check: statistics tolerance in reference standard\n"
    "                              deviations (default 0.25)\n"
    "      --allow-requantized     --check: a tensor in the reference's quantized dtype with\n"
    "                              other bytes is compared by statistics, not digests\n"
    "      --gguf-hash             llama.cpp gguf-hash compatible xxh64 and sha256 lines\n\n"
    "Exit codes (stable): 0 fingerprint written / check passed; 1 check found deviations;\n"
    "2 usage; 3 FILE or REF.json unreadable or malformed (a damaged FILE is still fingerprinted\n"
    "as far as it can be read); 4 the output could not be written.\n"};

/* Problems printed on stderr. */
#define MAX_WARNINGS 10

typedef struct options {
    const char *path, *output, *check;
    bool compact, json, gguf_hash, allow_requantized;
    double sigma;
    int threads;
} options;

static void hex_bytes(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int run_gguf_hash(const options *o, const rf_model *m)
{
    size_t n = rf_model_n_tensors(m);
    rf_raw_hash *per = calloc(n ? n : 1, sizeof *per), whole;
    if (!per) {
        cli_error(&TOOL, "out of memory");
        return APR_EXIT_INPUT;
    }
    rf_error err;
    rf_status st = rf_model_raw_hashes(m, o->threads, per, &whole, &err);
    if (st != RF_OK) {
        free(per);
        cli_error(&TOOL, "%s: %s", o->path, err.message);
        return cli_exit_for_status(st);
    }
    char sha[65];
    for (size_t i = 0; i < n; i++) {
        const char *name = rf_model_tensor(m, i)->name;
        hex_bytes(per[i].sha256, 32, sha);
        printf("%-8s  %016" PRIx64 "  %s:%s\n", "xxh64", per[i].xxh64, o->path, name);
        printf("%-8s  %s  %s:%s\n", "sha256", sha, o->path, name);
    }
    hex_bytes(whole.sha256, 32, sha);
    printf("%-8s  %016" PRIx64 "  %s\n", "xxh64", whole.xxh64, o->path);
    printf("%-8s  %s  %s\n", "sha256", sha, o->path);
    free(per);
    if (rf_model_format(m) != RF_FORMAT_GGUF)
        cli_error(&TOOL,
                  "note: %s is not a GGUF file: tensors were hashed in the order its reader "
                  "lists them (%s)",
                  o->path, rf_format_name(rf_model_format(m)));
    return APR_EXIT_OK;
}

static void print_report_text(const rf_check_report *r, const options *o)
{
    size_t counts[6] = {0};
    for (size_t i = 0; i < rf_check_report_n_tensors(r); i++)
        counts[rf_check_report_tensor(r, i)->verdict]++;
    for (size_t i = 0; i < rf_check_report_n_deviations(r); i++) {
        const rf_check_deviation *d = rf_check_report_deviation(r, i);
        printf("DEVIATION  %s  %s: expected %s, found %s%s%s%s\n",
               d->tensor ? d->tensor : "(model)", d->field, d->expected, d->found,
               d->detail[0] ? " (" : "", d->detail, d->detail[0] ? ")" : "");
    }
    printf("%s: %s against %s: %zu tensors: %zu same bytes, %zu same values, %zu within "
           "tolerance, %zu deviating, %zu missing, %zu extra\n",
           rf_check_report_passed(r) ? "MATCH" : "DEVIATION", o->path, o->check,
           rf_check_report_n_tensors(r), counts[RF_CHECK_RAW], counts[RF_CHECK_CANONICAL],
           counts[RF_CHECK_STATISTICS], counts[RF_CHECK_DEVIATES], counts[RF_CHECK_MISSING],
           counts[RF_CHECK_EXTRA]);
}

static bool print_report_json(const rf_check_report *r, const options *o)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "file", cli_json_string(o->path, strlen(o->path)));
    cJSON_AddItemToObject(root, "reference", cli_json_string(o->check, strlen(o->check)));
    cJSON_AddBoolToObject(root, "passed", rf_check_report_passed(r));
    cJSON *tensors = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; i < rf_check_report_n_tensors(r); i++) {
        const rf_check_tensor *t = rf_check_report_tensor(r, i);
        cJSON *item = cJSON_CreateObject();
        cJSON_AddItemToObject(item, "name", cli_json_string(t->name, strlen(t->name)));
        cJSON_AddItemToObject(item, "canonical",
                              cli_json_string(t->canonical, strlen(t->canonical)));
        cJSON_AddStringToObject(item, "verdict", rf_check_verdict_name(t->verdict));
        cJSON_AddItemToArray(tensors, item);
    }
    cJSON *devs = cJSON_AddArrayToObject(root, "deviations");
    for (size_t i = 0; i < rf_check_report_n_deviations(r); i++) {
        const rf_check_deviation *d = rf_check_report_deviation(r, i);
        cJSON *item = cJSON_CreateObject();
        if (d->tensor)
            cJSON_AddItemToObject(item, "tensor", cli_json_string(d->tensor, strlen(d->tensor)));
        else
            cJSON_AddNullToObject(item, "tensor");
        cJSON_AddStringToObject(item, "field", d->field);
        cJSON_AddItemToObject(item, "expected", cli_json_string(d->expected, strlen(d->expected)));
        cJSON_AddItemToObject(item, "found", cli_json_string(d->found, strlen(d->found)));
        cJSON_AddItemToObject(item, "detail", cli_json_string(d->detail, strlen(d->detail)));
        cJSON_AddItemToArray(devs, item);
    }
    return cli_print_json(root, true);
}

static int run_check(const options *o, const rf_fingerprint *fp)
{
    rf_error err;
    rf_fingerprint *ref = rf_fingerprint_read(o->check, &err);
    if (!ref) {
        cli_error(&TOOL, "%s", err.message);
        return APR_EXIT_INPUT;
    }
    rf_fingerprint_check_options copts = {o->sigma, o->allow_requantized};
    rf_check_report *r = rf_fingerprint_check(ref, fp, &copts, &err);
    rf_fingerprint_free(ref);
    if (!r) {
        cli_error(&TOOL, "%s", err.message);
        return APR_EXIT_INPUT;
    }
    int code = rf_check_report_passed(r) ? APR_EXIT_OK : APR_EXIT_CHECK;
    if (o->json) {
        if (!print_report_json(r, o))
            code = APR_EXIT_WRITE;
    } else {
        print_report_text(r, o);
    }
    rf_check_report_free(r);
    return code;
}

static int parse(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"compact", no_argument, NULL, 'c'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"check", required_argument, NULL, 'C'},
                                             {"tolerance-sigma", required_argument, NULL, 'k'},
                                             {"allow-requantized", no_argument, NULL, 'r'},
                                             {"gguf-hash", no_argument, NULL, 'g'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    char *end;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "o:t:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'o': o->output = optarg; break;
        case 'c': o->compact = true; break;
        case 'j': o->json = true; break;
        case 't':
            o->threads = (int)strtol(optarg, &end, 10);
            if (*end || o->threads < 1 || o->threads > 1024)
                return cli_usage_error(&TOOL, "--threads needs a number from 1 to 1024");
            break;
        case 'C': o->check = optarg; break;
        case 'k':
            o->sigma = strtod(optarg, &end);
            if (*end || !(o->sigma > 0))
                return cli_usage_error(&TOOL, "--tolerance-sigma needs a positive number");
            break;
        case 'r': o->allow_requantized = true; break;
        case 'g': o->gguf_hash = true; break;
        default:
            if (optopt)
                return cli_usage_error(&TOOL, "option '%s' needs a value", argv[optind - 1]);
            return cli_usage_error(&TOOL, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error(&TOOL, "no FILE given");
    if (optind + 1 < argc)
        return cli_usage_error(&TOOL, "one FILE at a time (got %d)", argc - optind);
    o->path = argv[optind];
    if (o->check && o->gguf_hash)
        return cli_usage_error(&TOOL, "--check and --gguf-hash exclude each other");
    if ((o->check || o->gguf_hash) && (o->output || o->compact))
        return cli_usage_error(&TOOL, "-o and --compact apply to a fingerprint, not to %s",
                               o->check ? "--check" : "--gguf-hash");
    if (!o->check && (o->sigma > 0 || o->allow_requantized))
        return cli_usage_error(&TOOL, "--tolerance-sigma and --allow-requantized need --check");
    return -1;
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    options o = {0};
    if ((code = parse(argc, argv, &o)) >= 0)
        return code;

    rf_error contracts_err;
    if (!rf_contracts_default(&contracts_err))
        cli_error(&TOOL,
                  "warning: %s: canonical names are the stored names (no pairing across "
                  "formats)",
                  contracts_err.message);
    rf_error damage, lenient_err;
    rf_model *model = cli_open_diagnostic(o.path, true, NULL, &damage, &lenient_err);
    if (!model) {
        code = cli_report_damage(&TOOL, o.path, NULL, &damage, &lenient_err, MAX_WARNINGS);
        return code != APR_EXIT_OK ? code : APR_EXIT_INPUT;
    }
    if (o.gguf_hash) {
        code = damage.status == RF_OK ? run_gguf_hash(&o, model) : APR_EXIT_INPUT;
    } else {
        rf_fingerprint_options fopts = {o.threads, false};
        rf_error err;
        rf_fingerprint *fp = rf_fingerprint_model(model, o.path, &fopts, &err);
        if (!fp) {
            cli_error(&TOOL, "%s: %s", o.path, err.message);
            code = cli_exit_for_status(err.status);
        } else if (o.check) {
            code = damage.status == RF_OK ? run_check(&o, fp) : APR_EXIT_INPUT;
        } else if (o.output) {
            code = rf_fingerprint_write(fp, o.output, !o.compact, &err) == RF_OK ? APR_EXIT_OK
                                                                                 : APR_EXIT_WRITE;
            if (code != APR_EXIT_OK)
                cli_error(&TOOL, "%s", err.message);
        } else {
            char *text = rf_fingerprint_to_json(fp, !o.compact);
            code = text && fputs(text, stdout) >= 0 ? APR_EXIT_OK : APR_EXIT_WRITE;
            free(text);
        }
        rf_fingerprint_free(fp);
    }
    if (cli_finish_stdout(&TOOL, true) != APR_EXIT_OK)
        code = APR_EXIT_WRITE;
    int damage_code = cli_report_damage(&TOOL, o.path, model, &damage, &lenient_err, MAX_WARNINGS);
    rf_model_free(model);
    return damage_code != APR_EXIT_OK ? damage_code : code;
}
