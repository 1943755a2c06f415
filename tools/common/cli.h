/* Shared command-line plumbing for the apr-* tools: exit codes, --help/--version/--describe,
 * error printing in the one house format, and JSON output. Tools stay thin: parse flags, call
 * the libraries, print. */
#ifndef APR_CLI_H
#define APR_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <getopt.h>

#include "rosetta/convert.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

/* Exit codes shared by every tool (docs/design.md section 6). */
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
 * returns true with *exit_code set); otherwise returns false. Every tool calls it first, so it
 * also prepares the process for hostile environments (docs/reliability.md): SIGPIPE ignored (a
 * closed stdout gives EPIPE, see cli_finish_stdout, never a silent death), SIGXFSZ ignored (a
 * file size limit gives exit 4 "file size limit"), a SIGBUS from a mapped input truncated under a
 * read no library guard covers ends the tool with exit 3 and one line, SIGINT/SIGTERM/SIGHUP remove
 * unfinished temp files (rf_output_cleanup_on_signals), getopt's own messages off (opterr = 0: the
 * tool reports option errors with cli_option_error), and the clock of cli_report_written started.
 */
bool cli_common_flags(const cli_tool *tool, int argc, char **argv, int *exit_code);

/* The usage error for the option getopt_long just refused (it returned '?' or ':'), in one line
 * naming the tool and the real problem: "--tensor-type requires an argument", "unknown option
 * '--frobnicate'", "option '--t' is ambiguous", "--pure takes no argument". shortopts and
 * longopts are the ones given to getopt_long. Returns APR_EXIT_USAGE. */
int cli_option_error(const cli_tool *tool, char **argv, const char *shortopts,
                     const struct option *longopts);

/* Flushes stdout and says how the tool should end: APR_EXIT_OK when everything reached stdout.
 * When it did not: a reader that went away (EPIPE, `| head`) gets no message, any other
 * failure a message on stderr; the result is APR_EXIT_WRITE if stdout carries the tool's result
 * (result_on_stdout: inspect, tensors, detect, --json), else APR_EXIT_OK (the plan a writing
 * tool prints is a courtesy; its job is the file it wrote). */
int cli_finish_stdout(const cli_tool *tool, bool result_on_stdout);

/* "apr-<name>: wrote OUT: N tensors, SIZE, T s" on stderr: the success line of a writing tool
 * (SIZE of the file, or of the regular files in an output directory; T since cli_common_flags). */
void cli_report_written(const cli_tool *tool, const char *path, size_t n_tensors);

/* The warnings of a conversion, each printed once, before the work (call it from the plan hook):
 * requantized tensors (one line with their count and the type changes) unless
 * allow_requantize, and a single .safetensors output that leaves out the source's config and
 * tokenizer (with how to get a full Hugging Face directory instead). */
void cli_convert_warnings(const cli_tool *tool, const rf_model *src,
                          const rf_convert_report *report, bool allow_requantize);

/* Prints the --help text of tool to out. */
void cli_print_help(const cli_tool *tool, FILE *out);

/* Prints "apr-<name> <version> (simd: X, cuda: on|off)". */
void cli_print_version(const cli_tool *tool, FILE *out);

/* "apr-<name>: <message>\n" on stderr. */
void cli_error(const cli_tool *tool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Usage error: prints the message and a hint to run --help, on one line; returns
 * APR_EXIT_USAGE. */
int cli_usage_error(const cli_tool *tool, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Maps a library status to the tool exit code (input errors 3, write errors 4, contract 5). */
int cli_exit_for_status(rf_status status);

/* Prints a cJSON value compactly (one line) or indented, followed by a newline, to stdout,
 * and deletes it. Every --json output goes through here, so every one escapes the same way:
 * bytes that are not UTF-8 (a path, a tensor name, a metadata string from a file) become U+FFFD,
 * as cli_json_string does, and the output is always valid JSON. Returns false if printing
 * failed. */
bool cli_print_json(cJSON *json, bool pretty);

/* Whether stderr/stdout should get colour (a terminal and NO_COLOR unset). */
bool cli_color(FILE *stream);

/* ---- helpers for the tools that print models (inspect, tensors) ---------------------------- */

/* Opens path for a diagnostic tool: strictly first and, if the strict reader refuses the file,
 * again with rf_open_options.lenient so that the tool can still show what is readable.
 * Returns the model (strict or lenient) or NULL when neither reader could build one.
 * *damage gets the strict reader's error: status RF_OK means the file is well formed, anything
 * else means it is malformed (the tool prints what it has, then exits 3). *lenient_err gets the
 * lenient reader's error when it also failed. Checksums that cover the whole file (the APR
 * footer CRC) are verified only when verify_whole_file is true. arch: read the file as that
 * architecture (rf_open_options.architecture, the tools' --arch), or NULL for the file's own. */
rf_model *cli_open_diagnostic(const char *path, bool verify_whole_file, const char *arch,
                              rf_error *damage, rf_error *lenient_err);

/* Files up to this size are cheap to read whole (milliseconds), so diagnostic tools verify
 * their whole-file checksums without being asked. */
#define CLI_CHEAP_VERIFY_BYTES (UINT64_C(64) << 20)

/* Whether path is a regular file of at most CLI_CHEAP_VERIFY_BYTES bytes. */
bool cli_cheap_to_verify(const char *path);

/* Prints the model's warnings, each naming path (the first max_warnings of them, 0 prints all;
 * one the strict error repeats is left out) and, if the file is damaged, the strict reader's
 * error on stderr in the house format. Returns the exit code the tool should end with (0, or 3
 * for a malformed file). */
int cli_report_damage(const cli_tool *tool, const char *path, const rf_model *model,
                      const rf_error *damage, const rf_error *lenient_err, size_t max_warnings);

/* "4.0 MiB" (binary units, one decimal; bytes below 1 KiB as "512 B"). */
const char *cli_human_bytes(uint64_t bytes, char *buf, size_t size);
/* "2,100,480". */
const char *cli_thousands(uint64_t value, char *buf, size_t size);
/* "[1024, 256]"; reversed prints the dimensions innermost first (GGUF ne order). */
const char *cli_shape(const uint64_t *shape, int ndim, bool reversed, char *buf, size_t size);

/* Appends s[0..len) to buf (of size bytes, NUL-terminated, holding used bytes) as a quoted,
 * C-escaped string, cut with "..." after max_chars characters (0 = no limit). Invalid UTF-8 and
 * control bytes are shown as \xNN. Returns the new used length (never beyond size - 1). */
size_t cli_quote(char *buf, size_t size, size_t used, const char *s, size_t len, size_t max_chars);

/* A JSON string from bytes that may be invalid UTF-8 or hold NULs: each invalid byte and each
 * NUL becomes U+FFFD, so the output is always valid JSON. NULL on allocation failure. */
cJSON *cli_json_string(const char *s, size_t len);
/* An integer as a JSON number when |value| <= 2^53 (exact in a double), else as a decimal
 * string, so that no value is silently rounded. */
cJSON *cli_json_u64(uint64_t value);
cJSON *cli_json_i64(int64_t value);
/* The shortest decimal text that reads back as exactly v ("%.15g" .. "%.17g"; with single,
 * the shortest that reads back as the same float32, "%.6g" .. "%.9g"); whole numbers below
 * 10^15 without exponent ("1000000"). */
const char *cli_shortest(double v, bool single, char *buf, size_t size);
/* A finite number as JSON written with cli_shortest (cJSON's own printing may drop the last
 * digits); NaN and infinities as null. */
cJSON *cli_json_double(double v, bool single);

/* A text table with aligned columns. align is one letter per column: 'l' left, 'r' right.
 * Cells are copied. Lines carry no trailing blanks: a left-aligned last cell is not padded and
 * empty cells at the end of a row are left out.
 * cli_table_new returns NULL on allocation failure or more than CLI_TABLE_MAX_COLS columns. */
#define CLI_TABLE_MAX_COLS 32
typedef struct cli_table cli_table;
cli_table *cli_table_new(size_t n_cols, const char *align);
/* Adds a row of n_cols cells (NULL prints as empty). false on allocation failure. */
bool cli_table_add(cli_table *table, const char *const *cells);
/* Prints every row, each prefixed with indent. */
void cli_table_print(const cli_table *table, FILE *out, const char *indent);
void cli_table_free(cli_table *table);

#endif
