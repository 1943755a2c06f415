/* Options shared by the generating tools (apr run, apr chat): sampling, threads, context, engine
 * path, and opening the model with its tokenizer. Thin: every option maps to one field of the
 * libinfer parameters. */
#ifndef APR_GEN_OPTS_H
#define APR_GEN_OPTS_H

#include <getopt.h>
#include <stdbool.h>

#include "cli.h"
#include "rosetta/infer.h"
#include "rosetta/tokenizer.h"

/* Long options, from GEN_OPT_BASE up, to append to a tool's own. */
enum {
    GEN_OPT_BASE = 1000,
    GEN_OPT_TEMPERATURE = GEN_OPT_BASE,
    GEN_OPT_TOP_K,
    GEN_OPT_TOP_P,
    GEN_OPT_MIN_P,
    GEN_OPT_REPEAT_PENALTY,
    GEN_OPT_REPEAT_LAST_N,
    GEN_OPT_FREQUENCY_PENALTY,
    GEN_OPT_PRESENCE_PENALTY,
    GEN_OPT_SEED,
    GEN_OPT_THREADS,
    GEN_OPT_CTX,
    GEN_OPT_KV,
    GEN_OPT_REFERENCE,
    GEN_OPT_SKIP_CONTRACT,
    GEN_OPT_ARCH,
    GEN_OPT_END
};

#define GEN_LONG_OPTIONS                                                                           \
    {"temperature", required_argument, NULL, GEN_OPT_TEMPERATURE},                                 \
        {"top-k", required_argument, NULL, GEN_OPT_TOP_K},                                         \
        {"top-p", required_argument, NULL, GEN_OPT_TOP_P},                                         \
        {"min-p", required_argument, NULL, GEN_OPT_MIN_P},                                         \
        {"repeat-penalty", required_argument, NULL, GEN_OPT_REPEAT_PENALTY},                       \
        {"repeat-last-n", required_argument, NULL, GEN_OPT_REPEAT_LAST_N},                         \
        {"frequency-penalty", required_argument, NULL, GEN_OPT_FREQUENCY_PENALTY},                 \
        {"presence-penalty", required_argument, NULL, GEN_OPT_PRESENCE_PENALTY},                   \
        {"seed", required_argument, NULL, GEN_OPT_SEED},                                           \
        {"threads", required_argument, NULL, GEN_OPT_THREADS},                                     \
        {"ctx", required_argument, NULL, GEN_OPT_CTX},                                             \
        {"kv", required_argument, NULL, GEN_OPT_KV},                                               \
        {"reference", no_argument, NULL, GEN_OPT_REFERENCE},                                       \
        {"skip-contract", no_argument, NULL, GEN_OPT_SKIP_CONTRACT},                               \
    {                                                                                              \
        "arch", required_argument, NULL, GEN_OPT_ARCH                                              \
    }

/* The help text of those options. */
#define GEN_OPTIONS_HELP                                                                           \
    "Sampling (default greedy: the most likely token, the same output every run):\n"               \
    "      --temperature T    sample at temperature T (0 = greedy); when T > 0 the defaults\n"     \
    "                         are top-k 40, top-p 0.95, min-p 0.05 (llama.cpp's)\n"                \
    "      --top-k K          keep the K most likely tokens (0 = all)\n"                           \
    "      --top-p P          keep the smallest set with probability >= P (1 = all)\n"             \
    "      --min-p P          drop tokens below P x the top probability (0 = off)\n"               \
    "      --repeat-penalty R penalize the last --repeat-last-n tokens (1 = off)\n"                \
    "      --repeat-last-n N  how far back the penalties look (default 64; -1 = all)\n"            \
    "      --frequency-penalty F, --presence-penalty P  (0 = off)\n"                               \
    "      --seed S           random seed (default 0): the same seed, the same text\n"             \
    "Engine:\n"                                                                                    \
    "  -t, --threads N        worker threads (default: one per online CPU)\n"                      \
    "      --ctx N            KV cache positions (default: what the prompt and -n need, at\n"      \
    "                         most the model's context length)\n"                                  \
    "      --kv f32|f16       KV cache type (default f32)\n"                                       \
    "      --reference        the scalar reference path (slow; the arithmetic the fast path\n"     \
    "                         is tested against)\n"                                                \
    "      --skip-contract    run even when the model breaks a structural contract rule\n"         \
    "                         (otherwise exit 5 naming the rules; see apr validate)\n"             \
    "      --arch NAME        read the model as architecture NAME: a GGUF without\n"               \
    "                         general.architecture gets its config from the NAME.* keys\n"

typedef struct gen_opts {
    ri_sampler_params sampling;
    bool top_k_set, top_p_set, min_p_set;
    int threads;
    unsigned n_ctx;
    ri_kv_type kv;
    bool reference;
    bool skip_contract;
    const char *arch; /* --arch: rf_open_options.architecture */
} gen_opts;

void gen_opts_init(gen_opts *o);

/* Handles option opt (a GEN_OPT_* value) with argument arg. Returns 0 when handled, -1 when
 * opt is not one of them, or APR_EXIT_USAGE after printing a usage error. */
int gen_opts_parse(const cli_tool *tool, gen_opts *o, int opt, const char *arg);

/* Applies the sampling defaults that depend on the temperature. */
void gen_opts_finish(gen_opts *o);

/* A model opened for generation: the model view, the engine model over it, its tokenizer. */
typedef struct gen_model {
    rf_model *src;
    ri_model *model;
    ri_tokenizer *tok;
    double load_s; /* seconds to open, check and load */
} gen_model;

/* Opens MODEL, checks it against the structural contracts (a violation: exit 5 naming the rules,
 * unless --skip-contract; contracts that cannot be found: a warning), builds the engine model
 * (with_tokenizer: and the tokenizer). Prints the error and returns the exit code (0 on
 * success). */
int gen_open(const cli_tool *tool, const char *path, const gen_opts *o, bool with_tokenizer,
             gen_model *gm);
void gen_close(gen_model *gm);

/* A context of n_ctx positions (0: the model's context length, at most 4096). Prints the error
 * and returns the exit code (0 on success). */
int gen_context(const cli_tool *tool, ri_model *model, const gen_opts *o, unsigned n_ctx,
                ri_context **ctx);

/* Monotonic seconds. */
double gen_now(void);

#endif
