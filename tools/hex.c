/* apr-hex: format-aware binary forensics. Shows where every byte of a GGUF, SafeTensors or APR
 * file belongs (the library's file map), dumps bytes exactly as xxd does, decodes quantized blocks
 * field by field, and reports damaged regions instead of refusing the file. This file parses the
 * command line and dispatches; the views are in tools/hex/, the help text in tools/hex/tool.c.
 * Not for: tensor-by-tensor comparison of two files (apr diff-tensors) or digests (fingerprint). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"

/* Problems printed on stderr; --json lists them all. */
#define MAX_PROBLEMS 10

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long long v =
        strtoull(s, &end, strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0 ? 16 : 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool parse_slice(const char *s, hex_options *o)
{
    const char *colon = strchr(s, ':');
    if (!colon)
        return false;
    char from[32];
    size_t n = (size_t)(colon - s);
    if (n >= sizeof from)
        return false;
    memcpy(from, s, n);
    from[n] = '\0';
    o->slice_from = 0;
    o->slice_to = UINT64_MAX;
    if (n && !parse_u64(from, &o->slice_from))
        return false;
    if (colon[1] && !parse_u64(colon + 1, &o->slice_to))
        return false;
    return o->slice_from < o->slice_to;
}

static const char *mode_flag(hex_mode m)
{
    switch (m) {
    case HEX_SUMMARY: return "(summary)";
    case HEX_HEADER: return "--header";
    case HEX_RAW: return "--raw";
    case HEX_LIST: return "--list";
    case HEX_BLOCKS: return "--blocks";
    case HEX_SLICE: return "--slice";
    case HEX_DISTRIBUTION: return "--distribution";
    case HEX_ENTROPY: return "--entropy";
    case HEX_CONTRACT: return "--contract";
    case HEX_TUI: return "--tui";
    }
    return "?";
}

/* Options that mean nothing for a mode are refused rather than ignored. */
static int check_combination(const hex_options *o)
{
    const char *mode = mode_flag(o->mode);
    bool window = o->has_offset || o->has_limit;
    switch (o->mode) {
    case HEX_SLICE:
    case HEX_DISTRIBUTION:
    case HEX_CONTRACT:
        if (window)
            return cli_usage_error(&HEX_TOOL,
                                   "%s selects tensors, not bytes: --offset and --limit "
                                   "do not apply",
                                   mode);
        break;
    case HEX_TUI:
        if (o->json)
            return cli_usage_error(&HEX_TOOL, "--tui is interactive: --json does not apply");
        break;
    case HEX_SUMMARY:
    case HEX_HEADER:
    case HEX_RAW:
    case HEX_LIST:
    case HEX_BLOCKS:
    case HEX_ENTROPY: break;
    }
    if (o->bins && o->mode != HEX_DISTRIBUTION && o->mode != HEX_TUI)
        return cli_usage_error(&HEX_TOOL, "--bins applies to --distribution only");
    if (o->has_width) {
        unsigned lo = 1, hi = 256;
        const char *what = "bytes per line";
        if (o->mode == HEX_DISTRIBUTION)
            hi = 200, what = "bar width";
        else if (o->mode == HEX_ENTROPY)
            lo = 16, hi = 1u << 24, what = "entropy window";
        else if (o->mode == HEX_SLICE || o->mode == HEX_CONTRACT || o->mode == HEX_LIST)
            return cli_usage_error(&HEX_TOOL, "--width does not apply to %s", mode);
        if (o->width < lo || o->width > hi)
            return cli_usage_error(&HEX_TOOL, "--width %u: the %s must be %u..%u", o->width, what,
                                   lo, hi);
    }
    return APR_EXIT_OK;
}

/* The problems of the map on stderr: the first MAX_PROBLEMS of them. */
static void report_problems(const rf_filemap *map)
{
    size_t n = rf_filemap_n_problems(map);
    for (size_t i = 0; i < n && i < MAX_PROBLEMS; i++) {
        const rf_map_problem *p = rf_filemap_problem(map, i);
        cli_error(&HEX_TOOL, "%s: %s%s (offset 0x%" PRIx64 ")", rf_filemap_path(map),
                  p->severity == RF_PROBLEM_WARNING ? "warning: " : "", p->message, p->offset);
    }
    if (n > MAX_PROBLEMS)
        cli_error(&HEX_TOOL, "... and %zu more problems (--json lists them all)", n - MAX_PROBLEMS);
}

typedef struct view_call {
    const rf_filemap *map;
    const hex_options *o;
    int code;
} view_call;

static rf_status run_view(void *ctx, rf_error *err)
{
    (void)err;
    view_call *c = ctx;
    switch (c->o->mode) {
    case HEX_SUMMARY: c->code = hex_summary(c->map, c->o); break;
    case HEX_HEADER: c->code = hex_header(c->map, c->o); break;
    case HEX_RAW: c->code = hex_raw(c->map, c->o); break;
    case HEX_LIST: c->code = hex_list(c->map, c->o); break;
    case HEX_BLOCKS: c->code = hex_blocks(c->map, c->o); break;
    case HEX_SLICE: c->code = hex_slice(c->map, c->o); break;
    case HEX_DISTRIBUTION: c->code = hex_distribution(c->map, c->o); break;
    case HEX_ENTROPY: c->code = hex_entropy(c->map, c->o); break;
    case HEX_CONTRACT: c->code = hex_contract(c->map, c->o); break;
    case HEX_TUI: c->code = hex_tui(c->map, c->o); break;
    }
    return RF_OK;
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&HEX_TOOL, argc, argv, &code))
        return code;
    hex_options o = {.mode = HEX_SUMMARY, .width = 16};
    enum { O_TENSOR = 256, O_OFFSET, O_LIMIT, O_WIDTH, O_BINS, O_SLICE, O_JSON, O_CHECKSUMS };
    static const struct option longopts[] = {
        {"header", no_argument, NULL, HEX_HEADER},
        {"raw", no_argument, NULL, HEX_RAW},
        {"list", no_argument, NULL, HEX_LIST},
        {"blocks", no_argument, NULL, HEX_BLOCKS},
        {"slice", required_argument, NULL, O_SLICE},
        {"distribution", no_argument, NULL, HEX_DISTRIBUTION},
        {"entropy", no_argument, NULL, HEX_ENTROPY},
        {"contract", no_argument, NULL, HEX_CONTRACT},
        {"tui", no_argument, NULL, HEX_TUI},
        {"tensor", required_argument, NULL, O_TENSOR},
        {"offset", required_argument, NULL, O_OFFSET},
        {"limit", required_argument, NULL, O_LIMIT},
        {"width", required_argument, NULL, O_WIDTH},
        {"bins", required_argument, NULL, O_BINS},
        {"json", no_argument, NULL, O_JSON},
        {"checksums", no_argument, NULL, O_CHECKSUMS},
        {NULL, 0, NULL, 0},
    };
    int opt;
    hex_mode chosen = HEX_SUMMARY;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        uint64_t v = 0;
        switch (opt) {
        case HEX_HEADER:
        case HEX_RAW:
        case HEX_LIST:
        case HEX_BLOCKS:
        case HEX_DISTRIBUTION:
        case HEX_ENTROPY:
        case HEX_CONTRACT:
        case HEX_TUI:
        case O_SLICE: {
            hex_mode m = opt == O_SLICE ? HEX_SLICE : (hex_mode)opt;
            if (chosen != HEX_SUMMARY && chosen != m)
                return cli_usage_error(&HEX_TOOL, "%s and %s: one mode at a time",
                                       mode_flag(chosen), mode_flag(m));
            chosen = m;
            if (opt == O_SLICE && !parse_slice(optarg, &o))
                return cli_usage_error(&HEX_TOOL,
                                       "--slice '%s': expected A:B with A < B (element indices, "
                                       "B exclusive; A: or :B leave a side open)",
                                       optarg);
            break;
        }
        case O_TENSOR: o.tensor = optarg; break;
        case O_OFFSET:
        case O_LIMIT:
        case O_WIDTH:
        case O_BINS:
            if (!parse_u64(optarg, &v))
                return cli_usage_error(&HEX_TOOL,
                                       "%s '%s': expected a non-negative number "
                                       "(decimal or 0x...)",
                                       argv[optind - 1], optarg);
            if (opt == O_OFFSET)
                o.offset = v, o.has_offset = true;
            else if (opt == O_LIMIT)
                o.limit = v, o.has_limit = true;
            else if (opt == O_WIDTH)
                o.width = v > UINT32_MAX ? 0 : (unsigned)v, o.has_width = true;
            else if (v < 1 || v > 1000)
                return cli_usage_error(&HEX_TOOL, "--bins %s: expected 1..1000", optarg);
            else
                o.bins = (unsigned)v;
            break;
        case O_JSON: o.json = true; break;
        case O_CHECKSUMS: o.checksums = true; break;
        default: return cli_option_error(&HEX_TOOL, argv, "", longopts);
        }
    }
    o.mode = chosen;
    if (optind >= argc)
        return cli_usage_error(&HEX_TOOL, "no FILE given");
    if (optind + 1 < argc)
        return cli_usage_error(&HEX_TOOL, "one FILE at a time (got %d)", argc - optind);
    o.path = argv[optind];
    if ((code = check_combination(&o)) != APR_EXIT_OK)
        return code;
    o.color = !o.json && cli_color(stdout);

    /* The footer CRC reads the whole file: done when cheap, when asked, or when the view reads
     * every byte anyway. --raw judges nothing. */
    rf_filemap_options mo = {
        .verify_checksums = o.mode != HEX_RAW &&
                            (o.checksums || o.mode == HEX_ENTROPY || cli_cheap_to_verify(o.path)),
    };
    rf_filemap *map = NULL;
    rf_error err;
    if (rf_filemap_open(o.path, &mo, &map, &err) != RF_OK) {
        cli_error(&HEX_TOOL, "%s", err.message);
        return cli_exit_for_status(err.status) == APR_EXIT_USAGE ? APR_EXIT_INPUT
                                                                 : cli_exit_for_status(err.status);
    }
    /* The views read the mapped file byte by byte: under the SIGBUS guard, a file truncated
     * underneath ends the view with "file changed while in use" (exit 3), not a crash. */
    view_call call = {map, &o, APR_EXIT_OK};
    if (rf_model_mapped_call(NULL, run_view, &call, &err) != RF_OK) {
        hex_release_scratch();
        fflush(stdout);
        cli_error(&HEX_TOOL, "%s", err.message);
        rf_filemap_free(map);
        return APR_EXIT_INPUT;
    }
    code = call.code;
    int out_code = cli_finish_stdout(&HEX_TOOL, true);
    if (code == APR_EXIT_OK)
        code = out_code;
    if (o.mode != HEX_RAW) {
        if (o.mode != HEX_TUI)
            report_problems(map);
        if (code == APR_EXIT_OK && !hex_file_ok(map))
            code = APR_EXIT_INPUT;
    }
    rf_filemap_free(map);
    return code;
}
