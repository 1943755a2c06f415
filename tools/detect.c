/* apr-detect: print the format of each file, decided by its content (magic bytes), never its name.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rosetta/detect.h"

static const cli_tool TOOL = {
    "detect", "print the format of model files, detected from their bytes",
    "usage: apr detect [--json] FILE...\n\n"
    "Prints one line per FILE: 'FILE: FORMAT (DESCRIPTION)'. Formats: gguf, safetensors,\n"
    "safetensors-index, safetensors-dir, apr, apr2-magic, apr-v1, apr1, aprt, apr-tsp, unknown.\n"
    "A directory holding *.safetensors is safetensors-dir. Exit 3 if any FILE is unreadable.\n\n"
    "Options:\n"
    "      --json       print a JSON array of {\"path\", \"format\", \"description\"}\n"};

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    bool json = false;
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'j')
            json = true;
        else
            return cli_option_error(&TOOL, argv, "", longopts);
    }
    if (optind >= argc)
        return cli_usage_error(&TOOL, "no FILE given");
    int exit_code = APR_EXIT_OK;
    cJSON *array = json ? cJSON_CreateArray() : NULL;
    for (int i = optind; i < argc; i++) {
        rf_error err = {0};
        rf_format format;
        if (rf_detect_path(argv[i], &format, &err) != RF_OK) {
            cli_error(&TOOL, "%s", err.message);
            exit_code = APR_EXIT_INPUT;
            continue;
        }
        if (json) {
            cJSON *item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "path", argv[i]);
            cJSON_AddStringToObject(item, "format", rf_format_name(format));
            cJSON_AddStringToObject(item, "description", rf_format_description(format));
            cJSON_AddItemToArray(array, item);
        } else {
            printf("%s: %s (%s)\n", argv[i], rf_format_name(format), rf_format_description(format));
        }
    }
    if (json)
        cli_print_json(array, false);
    int out_rc = cli_finish_stdout(&TOOL, true);
    return out_rc != APR_EXIT_OK ? out_rc : exit_code;
}
