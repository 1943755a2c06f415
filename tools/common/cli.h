/* Shared command-line plumbing for the apr-* tools: exit codes, --help/--version/--describe,
 * error printing in the one house format, and JSON output. Tools stay thin: parse flags, call
 * the libraries, print. */
#ifndef APR_CLI_H
#define APR_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "rosetta/status.h"

/* Exit codes shared by every tool (DESIGN.md section 6). */
enum {
    APR_EXIT_OK = 0,       /* success */
    APR_EXIT_CHECK = 1,    /* the check the tool performs failed (mismatch, divergence) */
    APR_EXIT_USAGE = 2,    /* bad command line */
    APR_EXIT_INPUT = 3,    /* input unreadable or malformed */
    APR_EXIT_WRITE = 4,    /* I/O error writing output */
    APR_EXIT_CONTRACT = 5, /* contract violation */
};

typedef struct cli_tool {
    const char *name;    /* "detect": the program is apr-detect */
    const char *summary; /* one line for `apr --help` */
    const char *usage;   /* full --help text after the "usage:" line, ends with a newline */
} cli_tool;

/* Handles --help, --version and --describe when argv[1] is one of them (prints to stdout and
 * returns true with *exit_code set); otherwise returns false. */
bool cli_common_flags(const cli_tool *tool, int argc, char **argv, int *exit_code);

/* Prints the --help text of tool to out. */
void cli_print_help(const cli_tool *tool, FILE *out);

/* Prints "apr-<name> <version> (simd: X, cuda: on|off)". */
void cli_print_version(const cli_tool *tool, FILE *out);

/* "apr-<name>: <message>\n" on stderr. */
void cli_error(const cli_tool *tool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Usage error: prints the message and a hint to run --help; returns APR_EXIT_USAGE. */
int cli_usage_error(const cli_tool *tool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Maps a library status to the tool exit code (input errors 3, write errors 4, contract 5). */
int cli_exit_for_status(rf_status status);

/* Prints a cJSON value compactly (one line) or indented, followed by a newline, to stdout,
 * and deletes it. Returns false if printing failed. */
bool cli_print_json(cJSON *json, bool pretty);

/* Whether stderr/stdout should get colour (a terminal and NO_COLOR unset). */
bool cli_color(FILE *stream);

#endif
