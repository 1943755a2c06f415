/* Shared command-line plumbing for the apr-* tools (see cli.h). */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/cpu_features.h"
#include "rosetta/version.h"

void cli_print_version(const cli_tool *tool, FILE *out)
{
    fprintf(out, "apr-%s %s (simd: %s, cuda: %s)\n", tool->name, ROSETTA_VERSION,
            rk_simd_level_name(rk_cpu_simd_level()), ROSETTA_HAVE_CUDA ? "on" : "off");
}

void cli_print_help(const cli_tool *tool, FILE *out)
{
    fprintf(out, "apr-%s: %s\n\n%s", tool->name, tool->summary, tool->usage);
    fputs("\nCommon options:\n"
          "  -h, --help       show this help and exit\n"
          "      --version    show version and build features and exit\n"
          "\nExit codes: 0 ok, 1 check failed, 2 usage error, 3 input unreadable or malformed,\n"
          "            4 write error, 5 contract violation.\n",
          out);
}

bool cli_common_flags(const cli_tool *tool, int argc, char **argv, int *exit_code)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            cli_print_help(tool, stdout);
            *exit_code = APR_EXIT_OK;
            return true;
        }
        if (strcmp(argv[i], "--version") == 0) {
            cli_print_version(tool, stdout);
            *exit_code = APR_EXIT_OK;
            return true;
        }
        if (strcmp(argv[i], "--describe") == 0) { /* used by `apr --help` */
            printf("%s\n", tool->summary);
            *exit_code = APR_EXIT_OK;
            return true;
        }
    }
    return false;
}

void cli_error(const cli_tool *tool, const char *fmt, ...)
{
    fflush(stdout);
    fprintf(stderr, "apr-%s: ", tool->name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const cli_tool *tool, const char *fmt, ...)
{
    fprintf(stderr, "apr-%s: ", tool->name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'apr %s --help'.\n", tool->name);
    return APR_EXIT_USAGE;
}

int cli_exit_for_status(rf_status status)
{
    switch (status) {
    case RF_OK: return APR_EXIT_OK;
    case RF_ERR_ARGUMENT: return APR_EXIT_USAGE;
    case RF_ERR_WRITE: return APR_EXIT_WRITE;
    case RF_ERR_CONTRACT: return APR_EXIT_CONTRACT;
    case RF_ERR_IO: case RF_ERR_FORMAT: case RF_ERR_CHECKSUM: case RF_ERR_UNSUPPORTED:
    case RF_ERR_NOMEM: case RF_ERR_OVERFLOW: case RF_ERR_LIMIT: case RF_ERR_NOT_FOUND:
        return APR_EXIT_INPUT;
    }
    return APR_EXIT_INPUT;
}

bool cli_print_json(cJSON *json, bool pretty)
{
    char *text = pretty ? cJSON_Print(json) : cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    if (!text)
        return false;
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
    return true;
}

bool cli_color(FILE *stream)
{
    const char *no = getenv("NO_COLOR");
    if (no && *no)
        return false;
    return isatty(fileno(stream));
}
