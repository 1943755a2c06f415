/* apr-validate: check a model file against the contracts (contracts/, docs/contracts.md) and
 * print every rule with pass/fail and every violation with its rule id, expected and found.
 * Not for: fixing what it finds, or reading values for display (apr-tensors --stats). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rosetta/contract.h"
#include "rosetta/model.h"

static const cli_tool TOOL = {
    "validate", "check a model file against the layout, family and data-quality contracts",
    "usage: apr validate [options] FILE\n"
    "       apr validate --list-rules [--json]\n\n"
    "Checks FILE (GGUF, SafeTensors file or directory, APR) against the contracts: structural\n"
    "rules (architecture family, config values, vocabulary sizes, every expected tensor in\n"
    "every layer, shapes equal to the contract's expressions on the config, bias presence)\n"
    "and data-quality rules on the dequantized values (NaN/Inf, zeros, L2 norm, constant\n"
    "tensors, spot-checked and dead embedding rows). Prints a table of the rules with pass or\n"
    "fail, then each violation: rule id, tensor, expected and found.\n\n"
    "Options:\n"
    "      --rules SET      structural, quality or all (default all)\n"
    "      --strict         warnings (unknown tensor names, dtypes that cannot be dequantized)\n"
    "                       fail the check too\n"
    "      --contracts DIR  read the contracts from DIR (default: $ROSETTA_CONTRACTS, the\n"
    "                       installed share/rosetta/contracts, the source tree)\n"
    "      --arch NAME      read FILE as architecture NAME and check it against NAME's\n"
    "                       family: a GGUF without general.architecture is read from its\n"
    "                       NAME.* keys (docs/reliability.md)\n"
    "      --json           print one JSON object (schema in docs/tools.md)\n"
    "      --list-rules     print every rule: id, class, severity, what it checks\n\n"
    "The rules and the contract files are described in docs/contracts.md.\n\n"
    "Exit status: 0 every rule passed, 5 a contract violation, 3 FILE or the contracts\n"
    "unreadable or malformed, 2 usage error.\n"};

typedef struct options {
    bool json, strict, list_rules;
    unsigned rules;
    const char *contracts, *arch, *path;
} options;

static const char *class_name(rf_rule_class c)
{
    return c == RF_RULE_QUALITY ? "quality" : "structural";
}

static const char *result_text(const rf_rule_result *r, bool strict, char *buf, size_t size)
{
    if (r->failed == 0)
        return "pass";
    bool fails = strict || r->rule->severity == RF_SEVERITY_ERROR;
    snprintf(buf, size, "%s (%" PRIu64 ")", fails ? "FAIL" : "warn", r->failed);
    return buf;
}

static int list_rules(bool json)
{
    if (json) {
        cJSON *list = cJSON_CreateArray();
        for (size_t i = 0; list && i < rf_contract_n_rules(); i++) {
            const rf_rule_info *r = rf_contract_rule(i);
            cJSON *item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "id", r->id);
            cJSON_AddStringToObject(item, "class", class_name(r->rule_class));
            cJSON_AddStringToObject(item, "severity",
                                    r->severity == RF_SEVERITY_ERROR ? "error" : "warning");
            cJSON_AddStringToObject(item, "summary", r->summary);
            cJSON_AddItemToArray(list, item);
        }
        return cli_print_json(list, true) ? APR_EXIT_OK : APR_EXIT_WRITE;
    }
    cli_table *table = cli_table_new(4, "llll");
    if (!table)
        return APR_EXIT_WRITE;
    const char *head[] = {"rule", "class", "severity", "checks that"};
    cli_table_add(table, head);
    for (size_t i = 0; i < rf_contract_n_rules(); i++) {
        const rf_rule_info *r = rf_contract_rule(i);
        const char *cells[] = {r->id, class_name(r->rule_class),
                               r->severity == RF_SEVERITY_ERROR ? "error" : "warning", r->summary};
        cli_table_add(table, cells);
    }
    cli_table_print(table, stdout, "");
    cli_table_free(table);
    return APR_EXIT_OK;
}

static int print_json(const options *o, const rf_model *m, const rf_contracts *c,
                      const rf_contract_report *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "file", cli_json_string(o->path, strlen(o->path)));
    cJSON_AddStringToObject(root, "format", rf_format_name(rf_model_format(m)));
    cJSON_AddItemToObject(root, "contracts",
                          cli_json_string(rf_contracts_dir(c), strlen(rf_contracts_dir(c))));
    const rf_family *f = rf_contract_report_family(r);
    const rf_family_size *size = rf_contract_report_size(r);
    if (f)
        cJSON_AddStringToObject(root, "family", rf_family_name(f));
    else
        cJSON_AddNullToObject(root, "family");
    if (size)
        cJSON_AddStringToObject(root, "size", size->name);
    else
        cJSON_AddNullToObject(root, "size");
    cJSON_AddBoolToObject(root, "strict", o->strict);
    size_t failures = rf_contract_report_n_failures(r, o->strict);
    cJSON_AddBoolToObject(root, "passed", failures == 0);
    cJSON_AddItemToObject(root, "failures", cli_json_u64(failures));
    cJSON *rules = cJSON_AddArrayToObject(root, "rules");
    for (size_t i = 0; rules && i < rf_contract_report_n_results(r); i++) {
        const rf_rule_result *res = rf_contract_report_result(r, i);
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "id", res->rule->id);
        cJSON_AddStringToObject(item, "class", class_name(res->rule->rule_class));
        cJSON_AddStringToObject(item, "severity",
                                res->rule->severity == RF_SEVERITY_ERROR ? "error" : "warning");
        cJSON_AddItemToObject(item, "checked", cli_json_u64(res->checked));
        cJSON_AddItemToObject(item, "failed", cli_json_u64(res->failed));
        cJSON_AddItemToArray(rules, item);
    }
    cJSON *list = cJSON_AddArrayToObject(root, "violations");
    for (size_t i = 0; list && i < rf_contract_report_n_violations(r); i++) {
        const rf_violation *v = rf_contract_report_violation(r, i);
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "rule", v->rule);
        cJSON_AddStringToObject(item, "severity",
                                v->severity == RF_SEVERITY_ERROR ? "error" : "warning");
        if (v->tensor)
            cJSON_AddItemToObject(item, "tensor", cli_json_string(v->tensor, strlen(v->tensor)));
        else
            cJSON_AddNullToObject(item, "tensor");
        if (v->role)
            cJSON_AddStringToObject(item, "role", v->role);
        else
            cJSON_AddNullToObject(item, "role");
        if (v->layer >= 0)
            cJSON_AddItemToObject(item, "layer", cli_json_i64(v->layer));
        else
            cJSON_AddNullToObject(item, "layer");
        cJSON_AddBoolToObject(item, "critical", v->critical);
        cJSON_AddItemToObject(item, "expected", cli_json_string(v->expected, strlen(v->expected)));
        cJSON_AddItemToObject(item, "found", cli_json_string(v->found, strlen(v->found)));
        cJSON_AddItemToObject(item, "message", cli_json_string(v->message, strlen(v->message)));
        cJSON_AddItemToArray(list, item);
    }
    if (!cli_print_json(root, true))
        return APR_EXIT_WRITE;
    return failures ? APR_EXIT_CONTRACT : APR_EXIT_OK;
}

static int print_text(const options *o, const rf_model *m, const rf_contract_report *r)
{
    const rf_family *f = rf_contract_report_family(r);
    const rf_family_size *size = rf_contract_report_size(r);
    printf("file    %s\n", o->path);
    printf("format  %s\n", rf_format_name(rf_model_format(m)));
    if (f)
        printf("family  %s (%s), size %s\n", rf_family_name(f), rf_family_display_name(f),
               size ? size->name : "not one of the family's");
    else
        printf("family  none\n");
    printf("\n");
    cli_table *table = cli_table_new(4, "llrl");
    if (!table)
        return APR_EXIT_WRITE;
    const char *head[] = {"rule", "class", "checked", "result"};
    cli_table_add(table, head);
    size_t failed_rules = 0;
    for (size_t i = 0; i < rf_contract_report_n_results(r); i++) {
        const rf_rule_result *res = rf_contract_report_result(r, i);
        char checked[32], result[48];
        snprintf(checked, sizeof checked, "%" PRIu64, res->checked);
        const char *cells[] = {res->rule->id, class_name(res->rule->rule_class), checked,
                               result_text(res, o->strict, result, sizeof result)};
        cli_table_add(table, cells);
        failed_rules += res->failed && (o->strict || res->rule->severity == RF_SEVERITY_ERROR);
    }
    cli_table_print(table, stdout, "");
    cli_table_free(table);
    size_t n = rf_contract_report_n_violations(r);
    if (n) {
        printf("\nviolations\n");
        for (size_t i = 0; i < n; i++) {
            const rf_violation *v = rf_contract_report_violation(r, i);
            bool fails = o->strict || v->severity == RF_SEVERITY_ERROR;
            printf("  %s %s%s: %s\n", fails ? "FAIL" : "warn", v->rule,
                   v->critical ? " (critical tensor)" : "", v->message);
        }
    }
    size_t failures = rf_contract_report_n_failures(r, o->strict);
    printf("\n%s: %zu rules, %zu violation%s%s", failures ? "FAIL" : "PASS",
           rf_contract_report_n_results(r), failures, failures == 1 ? "" : "s",
           failures ? " of " : "");
    if (failures)
        printf("%zu rule%s", failed_rules, failed_rules == 1 ? "" : "s");
    if (n > failures)
        printf(", %zu warning%s", n - failures, n - failures == 1 ? "" : "s");
    printf("\n");
    return failures ? APR_EXIT_CONTRACT : APR_EXIT_OK;
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    options o = {.rules = RF_RULES_ALL};
    enum { OPT_JSON = 1, OPT_STRICT, OPT_CONTRACTS, OPT_RULES, OPT_ARCH, OPT_LIST };
    static const struct option longopts[] = {{"json", no_argument, NULL, OPT_JSON},
                                             {"strict", no_argument, NULL, OPT_STRICT},
                                             {"contracts", required_argument, NULL, OPT_CONTRACTS},
                                             {"rules", required_argument, NULL, OPT_RULES},
                                             {"arch", required_argument, NULL, OPT_ARCH},
                                             {"list-rules", no_argument, NULL, OPT_LIST},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_JSON: o.json = true; break;
        case OPT_STRICT: o.strict = true; break;
        case OPT_CONTRACTS: o.contracts = optarg; break;
        case OPT_ARCH: o.arch = optarg; break;
        case OPT_LIST: o.list_rules = true; break;
        case OPT_RULES:
            if (strcmp(optarg, "structural") == 0)
                o.rules = RF_RULE_STRUCTURAL;
            else if (strcmp(optarg, "quality") == 0)
                o.rules = RF_RULE_QUALITY;
            else if (strcmp(optarg, "all") == 0)
                o.rules = RF_RULES_ALL;
            else
                return cli_usage_error(&TOOL, "--rules %s: expected structural, quality or all",
                                       optarg);
            break;
        default: return cli_option_error(&TOOL, argv, "", longopts);
        }
    }
    if (o.list_rules) {
        if (optind < argc)
            return cli_usage_error(&TOOL, "--list-rules takes no FILE");
        return list_rules(o.json);
    }
    if (optind >= argc)
        return cli_usage_error(&TOOL, "no FILE given");
    if (optind + 1 < argc)
        return cli_usage_error(&TOOL, "one FILE at a time (got %d)", argc - optind);
    o.path = argv[optind];

    rf_error err = {0};
    rf_contracts *contracts = rf_contracts_load(o.contracts, &err);
    if (!contracts) {
        cli_error(&TOOL, "contracts: %s", err.message);
        return APR_EXIT_INPUT;
    }
    const rf_open_options open = {.architecture = o.arch};
    rf_model *m = rf_model_open(o.path, &open, &err);
    if (!m) {
        cli_error(&TOOL, "%s", err.message);
        rf_contracts_free(contracts);
        return cli_exit_for_status(err.status);
    }
    for (size_t i = 0; i < rf_model_n_warnings(m); i++)
        cli_error(&TOOL, "warning: %s: %s", o.path, rf_model_warning(m, i));
    rf_contract_options copts = {.contracts = contracts, .rules = o.rules, .architecture = o.arch};
    rf_contract_report *report = NULL;
    int exit_code;
    if (rf_contract_check(m, &copts, &report, &err) != RF_OK) {
        cli_error(&TOOL, "%s: %s", o.path, err.message);
        exit_code = cli_exit_for_status(err.status);
    } else {
        exit_code = o.json ? print_json(&o, m, contracts, report) : print_text(&o, m, report);
    }
    rf_contract_report_free(report);
    rf_model_free(m);
    rf_contracts_free(contracts);
    return exit_code;
}
