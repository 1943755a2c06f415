/* apr-chat: an interactive conversation with a model through its chat template. Each turn renders
 * the whole conversation; the engine reuses the cached prefix, so only the new turn is computed.
 * Reads lines from stdin (a terminal or a pipe); commands /exit, /clear, /system TEXT.
 * Not for: one-shot generation (apr run). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gen_opts.h"

static const cli_tool TOOL = {
    "chat", "talk with a model through its chat template",
    "usage: apr chat MODEL [options]\n\n"
    "Reads one user message per line from stdin (a terminal or a pipe) and streams each reply\n"
    "to stdout, followed by an empty line. The conversation stays in the KV cache: a turn\n"
    "computes only its own tokens. Ctrl-C stops the reply being generated, not the session;\n"
    "end of input (Ctrl-D) ends it. When the conversation no longer fits the context, the\n"
    "oldest turns are dropped. Exit 3 if the model cannot be loaded.\n\n"
    "Commands (a line starting with /):\n"
    "  /exit           end the session\n"
    "  /clear          forget the conversation (the system message stays)\n"
    "  /system TEXT    set the system message and start a new conversation\n\n"
    "Options:\n"
    "      --system S         the system message (default: the template's own)\n"
    "  -n, --n-predict N      at most N tokens per reply (default 512; -1 = until a stop)\n"
    "  -v, --verbose          speed of each reply on stderr\n" GEN_OPTIONS_HELP};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct reply {
    char *text;
    size_t len, cap;
    bool failed;
} reply;

static bool on_token(void *user, int32_t token, const char *text, size_t len)
{
    (void)token;
    reply *r = user;
    if (interrupted)
        return false;
    if (r->len + len + 1 > r->cap) {
        size_t cap = (r->len + len + 1) * 2;
        char *p = realloc(r->text, cap);
        if (!p) {
            r->failed = true;
            return false;
        }
        r->text = p;
        r->cap = cap;
    }
    memcpy(r->text + r->len, text, len);
    r->len += len;
    r->text[r->len] = '\0';
    if (len > 0 && (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0)) {
        r->failed = true;
        return false;
    }
    return true;
}

/* The conversation: messages[0] may be the system message. Strings are owned. */
typedef struct history {
    ri_chat_message *msgs;
    size_t n, cap;
} history;

static bool history_add(history *h, const char *role, const char *content)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        ri_chat_message *p = realloc(h->msgs, cap * sizeof *p);
        if (!p)
            return false;
        h->msgs = p;
        h->cap = cap;
    }
    char *role_copy = strdup(role), *content_copy = strdup(content);
    if (!role_copy || !content_copy) {
        free(role_copy);
        free(content_copy);
        return false;
    }
    h->msgs[h->n].role = role_copy;
    h->msgs[h->n].content = content_copy;
    h->n++;
    return true;
}

static void history_drop(history *h, size_t at, size_t count)
{
    for (size_t i = at; i < at + count; i++) {
        free((char *)h->msgs[i].role);
        free((char *)h->msgs[i].content);
    }
    memmove(h->msgs + at, h->msgs + at + count, (h->n - at - count) * sizeof *h->msgs);
    h->n -= count;
}

static void history_clear(history *h, bool keep_system)
{
    size_t first = keep_system && h->n > 0 && strcmp(h->msgs[0].role, "system") == 0 ? 1 : 0;
    history_drop(h, first, h->n - first);
}

/* Renders and tokenizes the conversation with the generation prompt; drops the oldest turns
 * (keeping a system message) until prompt + room fits n_ctx. RF_ERR_LIMIT when even the last
 * message alone does not fit. */
static rf_status render(const ri_tokenizer *tok, history *h, unsigned n_ctx, unsigned room,
                        int32_t **ids, size_t *n_ids, rf_error *err)
{
    for (;;) {
        char *text = NULL;
        size_t len;
        rf_status st = ri_chat_apply_model(tok, h->msgs, h->n, true, &text, &len, err);
        if (st != RF_OK)
            return st;
        st = ri_tokenize_alloc(tok, text, len, RI_TOKENIZE_PARSE_SPECIAL | RI_TOKENIZE_ADD_SPECIAL,
                               ids, n_ids, err);
        free(text);
        if (st != RF_OK)
            return st;
        if (*n_ids + room <= n_ctx)
            return RF_OK;
        size_t first = h->n > 0 && strcmp(h->msgs[0].role, "system") == 0 ? 1 : 0;
        if (h->n - first <= 1)
            return rf_error_set(err, RF_ERR_LIMIT,
                                "the message needs %zu tokens, the context has %u positions",
                                *n_ids, n_ctx);
        free(*ids);
        *ids = NULL;
        /* the oldest user turn and its reply */
        size_t drop = h->n - first >= 3 ? 2 : 1;
        history_drop(h, first, drop);
    }
}

static void chomp(char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    gen_opts go;
    gen_opts_init(&go);
    const char *system_msg = NULL;
    long n_predict = 512;
    bool verbose = false;
    enum { OPT_SYSTEM = 1 };
    static const struct option longopts[] = {{"system", required_argument, NULL, OPT_SYSTEM},
                                             {"n-predict", required_argument, NULL, 'n'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             GEN_LONG_OPTIONS,
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "n:t:v", longopts, NULL)) != -1) {
        char *end;
        int r;
        switch (opt) {
        case OPT_SYSTEM: system_msg = optarg; break;
        case 'n':
            n_predict = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || n_predict < -1 || n_predict > INT32_MAX)
                return cli_usage_error(&TOOL, "-n: a token count or -1, not '%s'", optarg);
            break;
        case 'v': verbose = true; break;
        default:
            r = gen_opts_parse(&TOOL, &go, opt == 't' ? GEN_OPT_THREADS : opt, optarg);
            if (r < 0)
                return cli_option_error(&TOOL, argv, "n:t:v", longopts);
            if (r > 0)
                return r;
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(&TOOL, optind >= argc ? "no MODEL given" : "one MODEL only");
    gen_opts_finish(&go);
    const char *path = argv[optind];

    gen_model gm;
    if ((code = gen_open(&TOOL, path, &go, true, &gm)) != 0)
        return code;
    ri_model_info info = ri_model_get_info(gm.model);
    unsigned n_ctx = go.n_ctx
                         ? go.n_ctx
                         : (info.n_ctx_train && info.n_ctx_train < 4096 ? info.n_ctx_train : 4096);
    unsigned room =
        n_predict < 0 || (unsigned long)n_predict >= n_ctx / 2 ? n_ctx / 2 : (unsigned)n_predict;
    ri_context *ctx = NULL;
    ri_sampler *sampler = NULL;
    history h = {0};
    char *line = NULL;
    size_t line_cap = 0;
    rf_error err = {0};
    if ((code = gen_context(&TOOL, gm.model, &go, n_ctx, &ctx)) != 0)
        goto out;
    if (!(sampler = ri_sampler_new(&go.sampling, &err))) {
        cli_error(&TOOL, "%s", err.message);
        code = APR_EXIT_USAGE;
        goto out;
    }
    if (system_msg && !history_add(&h, "system", system_msg)) {
        code = APR_EXIT_INPUT;
        goto out;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: a Ctrl-C at the prompt interrupts getline */
    bool tty = isatty(STDIN_FILENO);
    if (verbose)
        fprintf(stderr, "apr-chat: %s: %s, load %.2f s, context %u\n", path,
                ri_model_path_name(gm.model), gm.load_s, n_ctx);
    for (;;) {
        if (tty) {
            fputs("> ", stderr);
            fflush(stderr);
        }
        interrupted = 0;
        errno = 0;
        if (getline(&line, &line_cap, stdin) < 0) {
            if (errno == EINTR) { /* Ctrl-C at the prompt: a fresh prompt */
                clearerr(stdin);
                if (tty)
                    fputc('\n', stderr);
                continue;
            }
            break;
        }
        chomp(line);
        if (line[0] == '\0')
            continue;
        if (strcmp(line, "/exit") == 0 || strcmp(line, "/quit") == 0)
            break;
        if (strcmp(line, "/clear") == 0) {
            history_clear(&h, true);
            ri_sampler_reset(sampler);
            continue;
        }
        if (strncmp(line, "/system", 7) == 0 && (line[7] == ' ' || line[7] == '\0')) {
            history_clear(&h, false);
            const char *s = line[7] ? line + 8 : "";
            if (*s && !history_add(&h, "system", s)) {
                code = APR_EXIT_INPUT;
                break;
            }
            ri_sampler_reset(sampler);
            continue;
        }
        if (line[0] == '/') {
            cli_error(&TOOL, "unknown command %s (/exit, /clear, /system TEXT)", line);
            continue;
        }
        if (!history_add(&h, "user", line)) {
            code = APR_EXIT_INPUT;
            break;
        }
        int32_t *ids = NULL;
        size_t n_ids = 0;
        if (render(gm.tok, &h, n_ctx, room, &ids, &n_ids, &err) != RF_OK) {
            cli_error(&TOOL, "%s", err.message);
            history_drop(&h, h.n - 1, 1);
            continue;
        }
        reply r = {0};
        ri_generate_params gp = {.n_predict = (int32_t)n_predict,
                                 .detok_flags = RI_DETOK_SKIP_SPECIAL};
        ri_generate_result res;
        ri_sampler_reset(sampler);
        rf_status st = ri_generate(ctx, gm.tok, sampler, ids, n_ids, &gp, on_token, &r, &res, &err);
        free(ids);
        fputs("\n\n", stdout);
        fflush(stdout);
        if (r.failed) { /* exit 4, silently if the reader left */
            free(r.text);
            cli_finish_stdout(&TOOL, true);
            code = APR_EXIT_WRITE;
            break;
        }
        if (st != RF_OK) {
            free(r.text);
            cli_error(&TOOL, "%s", err.message);
            if (st == RF_ERR_IO) { /* the model file changed underneath: the session is over */
                code = APR_EXIT_INPUT;
                break;
            }
            history_drop(&h, h.n - 1, 1);
            continue;
        }
        bool ok = history_add(&h, "assistant", r.text ? r.text : "");
        free(r.text);
        if (!ok) {
            code = APR_EXIT_INPUT;
            break;
        }
        if (verbose)
            fprintf(stderr,
                    "apr-chat: %zu prompt tokens (%zu reused) %.1f tok/s, %zu generated "
                    "%.1f tok/s, stop: %s\n",
                    res.n_prompt, res.n_reused,
                    res.prefill_s > 0 ? (double)res.n_prompt / res.prefill_s : 0, res.n_generated,
                    res.decode_s > 0 ? (double)res.n_generated / res.decode_s : 0,
                    interrupted ? "interrupted" : ri_stop_reason_name(res.stop));
    }
out:
    free(line);
    history_clear(&h, false);
    free(h.msgs);
    ri_sampler_free(sampler);
    ri_context_free(ctx);
    gen_close(&gm);
    return code;
}
