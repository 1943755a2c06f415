/* apr-check: the ten-stage self-test on a real forward pass (rosetta/verify.h, ri_check_run):
 * tokenizer, embedding, RoPE, Q/K/V, attention, SwiGLU, RMSNorm, LM head, softmax, greedy
 * decoding. This file parses flags and prints the table or JSON. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rosetta/verify.h"

static const cli_tool TOOL = {
    "check", "ten-stage self-test of a model on a real forward pass",
    "usage: apr check [options] MODEL\n\n"
    "Runs MODEL (GGUF, APR, SafeTensors) on a fixed prompt with every stage captured and checks\n"
    "one invariant per stage against an independent recomputation: 1 tokenizer round trip and\n"
    "EOS, 2 embedding rows, 3 RoPE against the closed form at a position > 0 (the model's theta\n"
    "and type), 4 Q/K/V widths and spread, 5 attention rows sum to 1 with entropy > 0.1 and\n"
    "the output equals softmax(QK)V, 6 SwiGLU = silu(gate) * up and not a copy, 7 RMSNorm gives\n"
    "RMS 1 before its gain, 8 LM head width = vocabulary and logits that vary, 9 softmax sums\n"
    "to 1, 10 greedy decoding identical over 3 runs and made of real tokens (not one token\n"
    "repeated).\n\n"
    "Options:\n"
    "      --json         {\"model\", \"stages\": [{\"name\", \"plain\", \"pass\", \"details\"}],\n"
    "                     \"passed\", \"total\", \"all_passed\"}\n"
    "  -t, --threads N    worker threads (default: all CPUs)\n"
    "      --reference    Rosetta's scalar reference path\n\n"
    "Exit status: 0 every stage passed, 1 a stage failed (also with --json), 2 usage,\n"
    "3 unreadable model.\n"};

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    bool json = false, reference = false;
    int threads = 0;
    enum { OPT_JSON = 256, OPT_REF };
    static const struct option longopts[] = {{"json", no_argument, NULL, OPT_JSON},
                                             {"threads", required_argument, NULL, 't'},
                                             {"reference", no_argument, NULL, OPT_REF},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "t:", longopts, NULL)) != -1) {
        char *end;
        long v;
        switch (opt) {
        case OPT_JSON: json = true; break;
        case OPT_REF: reference = true; break;
        case 't':
            v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 256)
                return cli_usage_error(&TOOL, "--threads wants 0..256, got '%s'", optarg);
            threads = (int)v;
            break;
        default: return cli_option_error(&TOOL, argv, "t:", longopts);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error(&TOOL, argc - optind < 1 ? "no MODEL given" : "one MODEL only");
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
    ri_check_report rep;
    rf_status st = ri_check_run(m, threads, &rep, &err);
    ri_model_free(m);
    if (st != RF_OK) {
        cli_error(&TOOL, "%s: %s", path, err.message);
        return APR_EXIT_INPUT;
    }
    size_t passed = 0;
    for (size_t i = 0; i < rep.n_items; i++)
        passed += rep.items[i].pass;
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", path);
        cJSON *list = cJSON_AddArrayToObject(root, "stages");
        for (size_t i = 0; i < rep.n_items; i++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "name", rep.items[i].name);
            cJSON_AddStringToObject(s, "plain", rep.items[i].plain);
            cJSON_AddBoolToObject(s, "pass", rep.items[i].pass);
            cJSON_AddStringToObject(s, "details", rep.items[i].details);
            cJSON_AddItemToArray(list, s);
        }
        cJSON_AddNumberToObject(root, "passed", (double)passed);
        cJSON_AddNumberToObject(root, "total", (double)rep.n_items);
        cJSON_AddBoolToObject(root, "all_passed", rep.all_pass);
        if (!cli_print_json(root, true))
            return APR_EXIT_WRITE;
    } else {
        bool color = cli_color(stdout);
        const char *green = color ? "\033[32m" : "", *red = color ? "\033[31;1m" : "";
        const char *off = color ? "\033[0m" : "";
        printf("%s\n\n", path);
        printf(" #  %-10s %-6s %s\n", "stage", "result", "what it checks / measured");
        for (size_t i = 0; i < rep.n_items; i++) {
            const ri_check_item *it = &rep.items[i];
            printf("%2zu  %-10s %s%-6s%s %s\n%22s%s\n", i + 1, it->name, it->pass ? green : red,
                   it->pass ? "pass" : "FAIL", off, it->plain, "", it->details);
        }
        printf("\n%s%zu of %zu stages passed%s\n", rep.all_pass ? green : red, passed, rep.n_items,
               off);
    }
    return rep.all_pass ? APR_EXIT_OK : APR_EXIT_CHECK;
}
