/* Shared command-line plumbing for the apr-* tools (see cli.h). */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rosetta/apr.h"
#include "rosetta/detect.h"
#include "rosetta/output.h"
#include "rosetta/quant.h"
#include "rosetta/text.h"
#include "rosetta/version.h"

void cli_print_version(const cli_tool *tool, FILE *out)
{
    fprintf(out, "apr-%s %s (simd: %s, cuda: %s)\n", tool->name, ROSETTA_VERSION, rf_simd_cpu(),
            ROSETTA_HAVE_CUDA ? "on" : "off");
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

static struct timespec started;

/* The last resort for a mapped input truncated underneath a read that no guard covers (the
 * engine's matrix products over mapped weights, docs/reliability.md). The library's guard
 * (rf_mapped_call) turns a fault inside it into an error and hands any other SIGBUS to the
 * handler that was in place before it: this one. A BUS_ADRERR fault (a page past the end of a
 * mapped file) ends the tool with exit 3 and one line, after the temp files of unfinished writes
 * are removed; any other SIGBUS takes the process down as before. Async-signal-safe: the line is
 * prepared in advance; only write, unlink and _exit run in the handler. */
static char fault_line[192];
static size_t fault_line_len;

static void on_unguarded_sigbus(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    if (info && info->si_code == BUS_ADRERR) {
        rf_output_remove_temps();
        ssize_t written = write(STDERR_FILENO, fault_line, fault_line_len);
        (void)written;
        _exit(APR_EXIT_INPUT);
    }
    signal(sig, SIG_DFL);
    if (!info || info->si_code <= 0)
        raise(sig); /* sent with kill(): raised again; a fault re-executes and dies */
}

/* What every tool needs before it reads or writes anything (see cli.h). */
static void prepare_process(const cli_tool *tool)
{
    clock_gettime(CLOCK_MONOTONIC, &started);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    rf_output_cleanup_on_signals();
    int n = snprintf(fault_line, sizeof fault_line,
                     "apr-%s: an input file changed while in use (truncated or replaced under its "
                     "mapping: SIGBUS)\n",
                     tool->name);
    fault_line_len = n > 0 && (size_t)n < sizeof fault_line ? (size_t)n : strlen(fault_line);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_unguarded_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
    opterr = 0;
}

bool cli_common_flags(const cli_tool *tool, int argc, char **argv, int *exit_code)
{
    prepare_process(tool);
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
    fflush(stdout);
    fprintf(stderr, "apr-%s: ", tool->name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'apr %s --help')\n", tool->name);
    return APR_EXIT_USAGE;
}

int cli_option_error(const cli_tool *tool, char **argv, const char *shortopts,
                     const struct option *longopts)
{
    /* getopt_long has moved optind past the offending word (and past a missing argument) */
    const char *word = optind > 0 ? argv[optind - 1] : NULL;
    if (word && strncmp(word, "--", 2) == 0 && word[2]) {
        const char *name = word + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct option *hit = NULL;
        int matches = 0;
        for (const struct option *o = longopts; o && o->name; o++) {
            if (strncmp(o->name, name, len) != 0)
                continue;
            if (strlen(o->name) == len) { /* an exact match wins over prefixes */
                hit = o;
                matches = 1;
                break;
            }
            hit = o;
            matches++;
        }
        if (matches == 0)
            return cli_usage_error(tool, "unknown option '--%.*s'", (int)len, name);
        if (matches > 1)
            return cli_usage_error(tool, "option '--%.*s' is ambiguous", (int)len, name);
        if (hit->has_arg == no_argument && eq)
            return cli_usage_error(tool, "--%s takes no argument", hit->name);
        return cli_usage_error(tool, "--%s requires an argument", hit->name);
    }
    int c = optopt;
    const char *at = c ? strchr(shortopts, c) : NULL;
    if (at && at[1] == ':')
        return cli_usage_error(tool, "-%c requires an argument", c);
    if (c)
        return cli_usage_error(tool, "unknown option '-%c'", c);
    return cli_usage_error(tool, "unknown option '%s'", word ? word : "?");
}

/* Whether fd is a pipe or socket whose reading end is closed (poll reports POLLERR for it). */
static bool reader_gone(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
        return false;
    struct pollfd p = {fd, 0, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

int cli_finish_stdout(const cli_tool *tool, bool result_on_stdout)
{
    errno = 0;
    int rc = fflush(stdout);
    int e = errno;
    if (rc == 0 && !ferror(stdout))
        return APR_EXIT_OK;
    if (!(e == EPIPE || reader_gone(STDOUT_FILENO)))
        cli_error(tool, "stdout: write failed: %s", e ? strerror(e) : "I/O error");
    return result_on_stdout ? APR_EXIT_WRITE : APR_EXIT_OK;
}

/* Bytes of path: a file's size, or the sum of the regular files in a directory. */
static uint64_t output_bytes(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    if (!S_ISDIR(st.st_mode))
        return (uint64_t)st.st_size;
    uint64_t total = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        struct stat fst;
        if (fstatat(dirfd(d), e->d_name, &fst, 0) == 0 && S_ISREG(fst.st_mode))
            total += (uint64_t)fst.st_size;
    }
    if (d)
        closedir(d);
    return total;
}

void cli_report_written(const cli_tool *tool, const char *path, size_t n_tensors)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double seconds =
        (double)(now.tv_sec - started.tv_sec) + (double)(now.tv_nsec - started.tv_nsec) / 1e9;
    char size[32];
    cli_error(tool, "wrote %s: %zu tensors, %s, %.1f s", path, n_tensors,
              cli_human_bytes(output_bytes(path), size, sizeof size), seconds);
}

void cli_convert_warnings(const cli_tool *tool, const rf_model *src,
                          const rf_convert_report *report, bool allow_requantize)
{
    if (report->n_requantized > 0 && !allow_requantize) {
        /* one line: the count, then each distinct type change with its count */
        char changes[512] = "";
        size_t used = 0;
        const rf_convert_tensor *t = report->tensors;
        for (size_t i = 0; i < report->n_tensors; i++) {
            if (!t[i].requantize)
                continue;
            bool seen = false;
            for (size_t k = 0; k < i && !seen; k++)
                seen = t[k].requantize && t[k].entry->src_dtype == t[i].entry->src_dtype &&
                       t[k].entry->dtype == t[i].entry->dtype;
            if (seen)
                continue;
            size_t count = 0;
            for (size_t k = i; k < report->n_tensors; k++)
                count += t[k].requantize && t[k].entry->src_dtype == t[i].entry->src_dtype &&
                         t[k].entry->dtype == t[i].entry->dtype;
            int w = snprintf(changes + used, sizeof changes - used, "%s%s -> %s: %zu",
                             used ? ", " : "", rf_dtype_name(t[i].entry->src_dtype),
                             rf_dtype_name(t[i].entry->dtype), count);
            if (w < 0 || (size_t)w >= sizeof changes - used)
                break;
            used += (size_t)w;
        }
        cli_error(tool,
                  "warning: %zu quantized tensors are requantized (dequantized, then quantized "
                  "again: the errors add up): %s",
                  report->n_requantized, changes);
    }
    const char *out = report->out_path;
    if (report->format == RF_FORMAT_SAFETENSORS && out &&
        rf_convert_format_for_path(out) == RF_FORMAT_SAFETENSORS) {
        struct stat st;
        bool is_dir = stat(out, &st) == 0 && S_ISDIR(st.st_mode);
        const rf_model_config *c = rf_model_config_get(src);
        if (!is_dir && (c->architecture || rf_model_tokenizer(src)))
            cli_error(tool,
                      "warning: %s is a single .safetensors file: it holds the tensors only, so "
                      "the config and the tokenizer of the input are left out (Hugging Face "
                      "loaders need config.json and tokenizer.json); give a directory path "
                      "instead (no .safetensors extension) for a full Hugging Face checkpoint",
                      out);
    }
}

int cli_exit_for_status(rf_status status)
{
    switch (status) {
    case RF_OK: return APR_EXIT_OK;
    case RF_ERR_ARGUMENT: return APR_EXIT_USAGE;
    case RF_ERR_WRITE: return APR_EXIT_WRITE;
    case RF_ERR_CONTRACT: return APR_EXIT_CONTRACT;
    case RF_ERR_MISMATCH: return APR_EXIT_CHECK;
    case RF_ERR_IO:
    case RF_ERR_FORMAT:
    case RF_ERR_CHECKSUM:
    case RF_ERR_UNSUPPORTED:
    case RF_ERR_NOMEM:
    case RF_ERR_OVERFLOW:
    case RF_ERR_LIMIT:
    case RF_ERR_NOT_FOUND: return APR_EXIT_INPUT;
    }
    return APR_EXIT_INPUT;
}

bool cli_print_json(cJSON *json, bool pretty)
{
    char *text = pretty ? cJSON_Print(json) : cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    if (!text)
        return false;
    /* cJSON escapes quotes, backslashes and control characters but copies other bytes as they
     * are; bytes outside UTF-8 can only be inside strings, and become U+FFFD there. */
    const unsigned char *p = (const unsigned char *)text;
    size_t len = strlen(text), run = 0; /* text[run..i) is valid and not printed yet */
    for (size_t i = 0; i < len;) {
        size_t seq = p[i] < 0x80 ? 1 : rf_utf8_char_len(p + i, len - i);
        if (seq == 0) {
            fwrite(p + run, 1, i - run, stdout);
            fputs("\xEF\xBF\xBD", stdout);
            run = ++i;
        } else {
            i += seq;
        }
    }
    fwrite(p + run, 1, len - run, stdout);
    fputc('\n', stdout);
    free(text);
    return !ferror(stdout);
}

bool cli_color(FILE *stream)
{
    const char *no = getenv("NO_COLOR");
    if (no && *no)
        return false;
    return isatty(fileno(stream));
}

/* ---- helpers for the tools that print models ---------------------------------------------- */

/* rf_model_open, with the APR reader told whether to verify the footer CRC (it reads the
 * whole file). */
static rf_model *open_model(const char *path, const rf_open_options *opts, bool verify_whole_file,
                            rf_error *err)
{
    rf_format format = RF_FORMAT_UNKNOWN;
    if (rf_detect_path(path, &format, err) != RF_OK)
        return NULL;
    if (format == RF_FORMAT_APR || format == RF_FORMAT_APR2_MAGIC) {
        const rf_apr_open_options apr = {.skip_footer_crc = !verify_whole_file};
        return rf_apr_open(path, opts, &apr, err);
    }
    return rf_model_open(path, opts, err);
}

rf_model *cli_open_diagnostic(const char *path, bool verify_whole_file, const char *arch,
                              rf_error *damage, rf_error *lenient_err)
{
    rf_error_clear(damage);
    rf_error_clear(lenient_err);
    const rf_open_options strict = {.lenient = false, .architecture = arch},
                          lenient = {.lenient = true, .architecture = arch};
    rf_model *model = open_model(path, &strict, verify_whole_file, damage);
    if (model)
        return model;
    /* An unreadable path (missing, permission) has nothing a lenient reader could add. */
    if (damage->status == RF_ERR_IO)
        return NULL;
    return open_model(path, &lenient, verify_whole_file, lenient_err);
}

bool cli_cheap_to_verify(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           (uint64_t)st.st_size <= CLI_CHEAP_VERIFY_BYTES;
}

int cli_report_damage(const cli_tool *tool, const char *path, const rf_model *model,
                      const rf_error *damage, const rf_error *lenient_err, size_t max_warnings)
{
    if (model) {
        size_t n = rf_model_n_warnings(model), shown = 0, i = 0, path_len = strlen(path);
        for (; i < n && (!max_warnings || shown < max_warnings); i++) {
            const char *w = rf_model_warning(model, i);
            /* The strict reader's error below already states this problem. */
            if (damage->status != RF_OK && strstr(damage->message, w))
                continue;
            if (strncmp(w, path, path_len) == 0 && w[path_len] == ':')
                cli_error(tool, "warning: %s", w);
            else
                cli_error(tool, "warning: %s: %s", path, w);
            shown++;
        }
        if (i < n)
            cli_error(tool, "... and %zu more warnings (--json lists them all)", n - i);
    }
    if (damage->status == RF_OK)
        return APR_EXIT_OK;
    cli_error(tool, "%s", damage->message);
    if (!model && lenient_err->status != RF_OK &&
        strcmp(lenient_err->message, damage->message) != 0)
        cli_error(tool, "lenient reader: %s", lenient_err->message);
    int code = cli_exit_for_status(damage->status);
    /* A file that the reader refuses is malformed input whatever the status says. */
    return code == APR_EXIT_OK || code == APR_EXIT_USAGE ? APR_EXIT_INPUT : code;
}

const char *cli_human_bytes(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, size, "%" PRIu64 " B", bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, size, "%.1f %s", v, units[u]);
    return buf;
}

const char *cli_thousands(uint64_t value, char *buf, size_t size)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, value);
    char out[48];
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    snprintf(buf, size, "%s", out);
    return buf;
}

const char *cli_shape(const uint64_t *shape, int ndim, bool reversed, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++) {
        uint64_t d = shape[reversed ? ndim - 1 - i : i];
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRIu64, i ? ", " : "", d);
    }
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

/* Appends text to buf if it fits entirely; returns the new length. */
static size_t append(char *buf, size_t size, size_t used, const char *text, size_t len)
{
    if (used + len + 1 > size)
        return used;
    memcpy(buf + used, text, len);
    used += len;
    buf[used] = '\0';
    return used;
}

size_t cli_quote(char *buf, size_t size, size_t used, const char *s, size_t len, size_t max_chars)
{
    if (size == 0)
        return 0;
    if (used >= size)
        used = size - 1;
    buf[used] = '\0';
    used = append(buf, size, used, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    size_t chars = 0, i = 0;
    while (i < len) {
        if (max_chars && chars == max_chars)
            break;
        char esc[8];
        size_t step = 1;
        unsigned c = p[i];
        size_t seq = rf_utf8_char_len(p + i, len - i);
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            used = append(buf, size, used, esc, 2);
        } else if (c == '\n') {
            used = append(buf, size, used, "\\n", 2);
        } else if (c == '\t') {
            used = append(buf, size, used, "\\t", 2);
        } else if (c == '\r') {
            used = append(buf, size, used, "\\r", 2);
        } else if (c < 0x20 || c == 0x7F || seq == 0) {
            snprintf(esc, sizeof esc, "\\x%02X", c);
            used = append(buf, size, used, esc, 4);
        } else {
            step = seq;
            used = append(buf, size, used, s + i, seq);
        }
        i += step;
        chars++;
    }
    used = append(buf, size, used, "\"", 1);
    if (i < len)
        used = append(buf, size, used, "...", 3);
    return used;
}

cJSON *cli_json_string(const char *s, size_t len)
{
    /* Worst case every byte becomes the 3-byte U+FFFD. */
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *clean = malloc(len * 3 + 1);
    if (!clean)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    while (i < len) {
        size_t seq = p[i] ? rf_utf8_char_len(p + i, len - i) : 0;
        if (seq == 0) {
            memcpy(clean + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(clean + o, s + i, seq);
            o += seq;
            i += seq;
        }
    }
    clean[o] = '\0';
    cJSON *json = cJSON_CreateString(clean);
    free(clean);
    return json;
}

#define JSON_EXACT_LIMIT (UINT64_C(1) << 53)

cJSON *cli_json_u64(uint64_t value)
{
    if (value <= JSON_EXACT_LIMIT)
        return cJSON_CreateNumber((double)value);
    char text[32];
    snprintf(text, sizeof text, "%" PRIu64, value);
    return cJSON_CreateString(text);
}

cJSON *cli_json_i64(int64_t value)
{
    if (value >= -(int64_t)JSON_EXACT_LIMIT && value <= (int64_t)JSON_EXACT_LIMIT)
        return cJSON_CreateNumber((double)value);
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, value);
    return cJSON_CreateString(text);
}

const char *cli_shortest(double v, bool single, char *buf, size_t size)
{
    /* Whole numbers read best without an exponent: 1000000, not 1e+06. */
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, size, "%.0f", v);
        return buf;
    }
    for (int digits = single ? 6 : 15; digits <= (single ? 9 : 17); digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if (single ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

cJSON *cli_json_double(double v, bool single)
{
    if (!isfinite(v))
        return cJSON_CreateNull();
    char text[40];
    return cJSON_CreateRaw(cli_shortest(v, single, text, sizeof text));
}

struct cli_table {
    size_t n_cols;
    char *align;
    char **cells; /* n_rows * n_cols */
    size_t n_rows, cap_rows;
};

cli_table *cli_table_new(size_t n_cols, const char *align)
{
    if (n_cols == 0 || n_cols > CLI_TABLE_MAX_COLS || strlen(align) < n_cols)
        return NULL;
    cli_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->n_cols = n_cols;
    t->align = strdup(align);
    if (!t->align) {
        free(t);
        return NULL;
    }
    return t;
}

bool cli_table_add(cli_table *t, const char *const *cells)
{
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? t->cap_rows * 2 : 64;
        char **grown = realloc(t->cells, cap * t->n_cols * sizeof *grown);
        if (!grown)
            return false;
        t->cells = grown;
        t->cap_rows = cap;
    }
    char **row = t->cells + t->n_rows * t->n_cols;
    for (size_t c = 0; c < t->n_cols; c++) {
        row[c] = strdup(cells[c] ? cells[c] : "");
        if (!row[c]) {
            while (c-- > 0)
                free(row[c]);
            return false;
        }
    }
    t->n_rows++;
    return true;
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

void cli_table_print(const cli_table *t, FILE *out, const char *indent)
{
    size_t widths[CLI_TABLE_MAX_COLS] = {0};
    size_t n_cols = t->n_cols;
    for (size_t r = 0; r < t->n_rows; r++)
        for (size_t c = 0; c < n_cols; c++) {
            size_t w = text_width(t->cells[r * t->n_cols + c]);
            if (w > widths[c])
                widths[c] = w;
        }
    for (size_t r = 0; r < t->n_rows; r++) {
        char *const *row = t->cells + r * t->n_cols;
        /* Empty cells at the end of a row print nothing, not even separators. */
        size_t end = n_cols;
        while (end > 1 && row[end - 1][0] == '\0')
            end--;
        fputs(indent, out);
        for (size_t c = 0; c < end; c++) {
            size_t pad = widths[c] - text_width(row[c]);
            bool right = t->align[c] == 'r';
            if (right)
                fprintf(out, "%*s", (int)pad, "");
            fputs(row[c], out);
            if (!right && c + 1 < end)
                fprintf(out, "%*s", (int)pad, "");
            if (c + 1 < end)
                fputs("  ", out);
        }
        fputc('\n', out);
    }
}

void cli_table_free(cli_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->align);
    free(t);
}
