/* Options of the generating tools (see gen_opts.h). */
#include "gen_opts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rosetta/contract.h"

void gen_opts_init(gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->sampling = ri_sampler_params_default();
    o->kv = RI_KV_F32;
}

static bool parse_float(const char *s, float *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !isfinite(v))
        return false;
    *out = (float)v;
    return true;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int gen_opts_parse(const cli_tool *tool, gen_opts *o, int opt, const char *arg)
{
    ri_sampler_params *s = &o->sampling;
    long v;
    switch (opt) {
    case GEN_OPT_TEMPERATURE:
        if (!parse_float(arg, &s->temperature) || s->temperature < 0)
            return cli_usage_error(tool, "--temperature: a number >= 0, not '%s'", arg);
        return 0;
    case GEN_OPT_TOP_K:
        if (!parse_long(arg, 0, INT32_MAX, &v))
            return cli_usage_error(tool, "--top-k: an integer >= 0, not '%s'", arg);
        s->top_k = (int32_t)v;
        o->top_k_set = true;
        return 0;
    case GEN_OPT_TOP_P:
        if (!parse_float(arg, &s->top_p) || !(s->top_p > 0 && s->top_p <= 1))
            return cli_usage_error(tool, "--top-p: a number in (0, 1], not '%s'", arg);
        o->top_p_set = true;
        return 0;
    case GEN_OPT_MIN_P:
        if (!parse_float(arg, &s->min_p) || !(s->min_p >= 0 && s->min_p <= 1))
            return cli_usage_error(tool, "--min-p: a number in [0, 1], not '%s'", arg);
        o->min_p_set = true;
        return 0;
    case GEN_OPT_REPEAT_PENALTY:
        if (!parse_float(arg, &s->repeat_penalty) || !(s->repeat_penalty > 0))
            return cli_usage_error(tool, "--repeat-penalty: a number > 0, not '%s'", arg);
        return 0;
    case GEN_OPT_REPEAT_LAST_N:
        if (!parse_long(arg, -1, INT32_MAX, &v))
            return cli_usage_error(tool, "--repeat-last-n: an integer >= -1, not '%s'", arg);
        s->penalty_last_n = (int32_t)v;
        return 0;
    case GEN_OPT_FREQUENCY_PENALTY:
        if (!parse_float(arg, &s->frequency_penalty))
            return cli_usage_error(tool, "--frequency-penalty: a number, not '%s'", arg);
        return 0;
    case GEN_OPT_PRESENCE_PENALTY:
        if (!parse_float(arg, &s->presence_penalty))
            return cli_usage_error(tool, "--presence-penalty: a number, not '%s'", arg);
        return 0;
    case GEN_OPT_SEED: {
        char *end;
        unsigned long long seed = strtoull(arg, &end, 10);
        if (*arg == '\0' || *end != '\0' || arg[0] == '-')
            return cli_usage_error(tool, "--seed: an unsigned integer, not '%s'", arg);
        s->seed = seed;
        return 0;
    }
    case GEN_OPT_THREADS:
        if (!parse_long(arg, 1, 256, &v))
            return cli_usage_error(tool, "--threads: 1..256, not '%s'", arg);
        o->threads = (int)v;
        return 0;
    case GEN_OPT_CTX:
        if (!parse_long(arg, 1, 1 << 24, &v))
            return cli_usage_error(tool, "--ctx: 1..16777216, not '%s'", arg);
        o->n_ctx = (unsigned)v;
        return 0;
    case GEN_OPT_KV:
        if (strcmp(arg, "f32") != 0 && strcmp(arg, "f16") != 0)
            return cli_usage_error(tool, "--kv: f32 or f16, not '%s'", arg);
        o->kv = strcmp(arg, "f16") == 0 ? RI_KV_F16 : RI_KV_F32;
        return 0;
    case GEN_OPT_REFERENCE: o->reference = true; return 0;
    case GEN_OPT_SKIP_CONTRACT: o->skip_contract = true; return 0;
    case GEN_OPT_ARCH: o->arch = arg; return 0;
    default: return -1;
    }
}

void gen_opts_finish(gen_opts *o)
{
    if (o->sampling.temperature <= 0)
        return;
    if (!o->top_k_set)
        o->sampling.top_k = 40;
    if (!o->top_p_set)
        o->sampling.top_p = 0.95f;
    if (!o->min_p_set)
        o->sampling.min_p = 0.05f;
}

double gen_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int gen_open(const cli_tool *tool, const char *path, const gen_opts *o, bool with_tokenizer,
             gen_model *gm)
{
    rf_error err = {0};
    memset(gm, 0, sizeof *gm);
    double t0 = gen_now();
    const rf_open_options open = {.architecture = o->arch};
    if (!(gm->src = rf_model_open(path, &open, &err))) {
        cli_error(tool, "%s", err.message);
        return cli_exit_for_status(err.status);
    }
    /* what --arch changed (the file's architecture, or its absence, and the one asked for) */
    for (size_t i = 0; o->arch && i < rf_model_n_warnings(gm->src); i++)
        cli_error(tool, "warning: %s: %s", path, rf_model_warning(gm->src, i));
    if (!o->skip_contract) {
        rf_contract_options co = {.rules = RF_RULE_STRUCTURAL};
        rf_contract_report *report = NULL;
        if (rf_contract_check(gm->src, &co, &report, &err) != RF_OK) {
            cli_error(tool, "warning: %s: the contracts were not checked: %s", path, err.message);
        } else if (rf_contract_report_status(report, false, &err) != RF_OK) {
            cli_error(tool, "%s: %s (--skip-contract runs it anyway)", path, err.message);
            rf_contract_report_free(report);
            gen_close(gm);
            return APR_EXIT_CONTRACT;
        }
        rf_contract_report_free(report);
    }
    ri_model_params mp = ri_model_params_default();
    if (o->reference)
        mp.path = RI_PATH_REFERENCE;
    if (!(gm->model = ri_model_load(gm->src, &mp, &err))) {
        cli_error(tool, "%s: %s", path, err.message);
        gen_close(gm);
        return cli_exit_for_status(err.status);
    }
    if (with_tokenizer && !(gm->tok = ri_tokenizer_from_model(gm->src, &err))) {
        cli_error(tool, "%s: %s", path, err.message);
        gen_close(gm);
        int code = cli_exit_for_status(err.status);
        return code == APR_EXIT_USAGE ? APR_EXIT_INPUT : code;
    }
    gm->load_s = gen_now() - t0;
    return APR_EXIT_OK;
}

void gen_close(gen_model *gm)
{
    ri_tokenizer_free(gm->tok);
    ri_model_free(gm->model);
    rf_model_free(gm->src);
    memset(gm, 0, sizeof *gm);
}

int gen_context(const cli_tool *tool, ri_model *model, const gen_opts *o, unsigned n_ctx,
                ri_context **ctx)
{
    rf_error err = {0};
    ri_context_params cp = ri_context_params_default();
    cp.n_ctx = n_ctx;
    cp.n_threads = o->threads;
    cp.kv_type = o->kv;
    *ctx = ri_context_new(model, &cp, &err);
    if (!*ctx) {
        cli_error(tool, "%s", err.message);
        return cli_exit_for_status(err.status);
    }
    return APR_EXIT_OK;
}
