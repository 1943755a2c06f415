/* apr-run: generate text from a prompt with the inference engine, streaming it to stdout.
 * Not for: conversations (apr chat) or speed measurement (apr bench). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gen_opts.h"

static const cli_tool TOOL = {
    "run", "generate text from a prompt with the inference engine",
    "usage: apr run MODEL -p PROMPT [options]\n\n"
    "Runs MODEL (GGUF, APR, or a SafeTensors directory with its tokenizer) on PROMPT and streams\n"
    "the generated text to stdout. Without --chat the prompt is tokenized as it is (control\n"
    "tokens such as <|im_start|> written in it are recognised unless --no-special); with --chat\n"
    "it is a user message rendered with the model's chat template. Generation stops at an\n"
    "end-of-generation token (<|im_end|>, <|endoftext|>, the model's EOS), after -n tokens, or\n"
    "when the context is full. Exit 3 for a model that cannot be loaded or a prompt longer than\n"
    "the context.\n\n"
    "Options:\n"
    "  -p, --prompt TEXT      the prompt\n"
    "  -f, --file F           read the prompt from file F ('-': stdin)\n"
    "  -n, --n-predict N      at most N new tokens (default 128; -1 = until a stop)\n"
    "      --chat             PROMPT is a user message: apply the chat template\n"
    "      --system S         with --chat: a system message S first\n"
    "      --no-special       control tokens written in PROMPT are plain text\n"
    "      --ignore-eos       do not stop at end-of-generation tokens\n"
    "      --json             no streaming; one JSON object: model, path, prompt_tokens (ids),\n"
    "                         tokens (generated ids), text, stop (eog, length, context),\n"
    "                         stop_token, timings {load_s, prefill_s, decode_s, prefill_tok_s,\n"
    "                         decode_tok_s}\n"
    "  -v, --verbose          load time, engine path and SIMD level, prefill and decode speed\n"
    "                         on stderr\n" GEN_OPTIONS_HELP};

typedef struct run_state {
    bool json;
    int32_t *ids;
    size_t n, cap;
    char *text;
    size_t text_len, text_cap;
    bool write_failed;
} run_state;

static bool on_token(void *user, int32_t token, const char *text, size_t len)
{
    run_state *s = user;
    if (token >= 0) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 256;
            int32_t *p = realloc(s->ids, cap * sizeof *p);
            if (!p)
                return false;
            s->ids = p;
            s->cap = cap;
        }
        s->ids[s->n++] = token;
    }
    if (s->json) {
        if (s->text_len + len + 1 > s->text_cap) {
            size_t cap = (s->text_len + len + 1) * 2;
            char *p = realloc(s->text, cap);
            if (!p)
                return false;
            s->text = p;
            s->text_cap = cap;
        }
        memcpy(s->text + s->text_len, text, len);
        s->text_len += len;
        return true;
    }
    if (len > 0 && (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0)) {
        s->write_failed = true;
        return false;
    }
    return true;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
    }
    if (f != stdin)
        fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    gen_opts go;
    gen_opts_init(&go);
    const char *prompt = NULL, *file = NULL, *system_msg = NULL;
    long n_predict = 128;
    bool chat = false, no_special = false, json = false, verbose = false, ignore_eos = false;
    enum { OPT_CHAT = 1, OPT_SYSTEM, OPT_NO_SPECIAL, OPT_JSON, OPT_IGNORE_EOS };
    static const struct option longopts[] = {{"prompt", required_argument, NULL, 'p'},
                                             {"file", required_argument, NULL, 'f'},
                                             {"n-predict", required_argument, NULL, 'n'},
                                             {"chat", no_argument, NULL, OPT_CHAT},
                                             {"system", required_argument, NULL, OPT_SYSTEM},
                                             {"no-special", no_argument, NULL, OPT_NO_SPECIAL},
                                             {"ignore-eos", no_argument, NULL, OPT_IGNORE_EOS},
                                             {"json", no_argument, NULL, OPT_JSON},
                                             {"verbose", no_argument, NULL, 'v'},
                                             GEN_LONG_OPTIONS,
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "p:f:n:t:v", longopts, NULL)) != -1) {
        char *end;
        int r;
        switch (opt) {
        case 'p': prompt = optarg; break;
        case 'f': file = optarg; break;
        case 'n':
            n_predict = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || n_predict < -1 || n_predict > INT32_MAX)
                return cli_usage_error(&TOOL, "-n: a token count or -1, not '%s'", optarg);
            break;
        case OPT_CHAT: chat = true; break;
        case OPT_SYSTEM: system_msg = optarg; break;
        case OPT_NO_SPECIAL: no_special = true; break;
        case OPT_IGNORE_EOS: ignore_eos = true; break;
        case OPT_JSON: json = true; break;
        case 'v': verbose = true; break;
        default:
            r = gen_opts_parse(&TOOL, &go, opt == 't' ? GEN_OPT_THREADS : opt, optarg);
            if (r < 0)
                return cli_option_error(&TOOL, argv, "p:f:n:t:v", longopts);
            if (r > 0)
                return r;
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(&TOOL, optind >= argc ? "no MODEL given" : "one MODEL only");
    if (!prompt == !file)
        return cli_usage_error(&TOOL, "give the prompt with -p or -f (one of them)");
    if (system_msg && !chat)
        return cli_usage_error(&TOOL, "--system needs --chat");
    gen_opts_finish(&go);
    const char *path = argv[optind];

    size_t prompt_len = 0;
    char *prompt_buf = NULL;
    if (file) {
        if (!(prompt_buf = read_all(file, &prompt_len))) {
            cli_error(&TOOL, "%s: cannot read: %s", file, strerror(errno));
            return APR_EXIT_INPUT;
        }
        prompt = prompt_buf;
    } else {
        prompt_len = strlen(prompt);
    }

    gen_model gm;
    ri_context *ctx = NULL;
    ri_sampler *sampler = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    run_state st = {.json = json};
    if ((code = gen_open(&TOOL, path, &go, true, &gm)) != 0) {
        free(prompt_buf);
        return code;
    }
    rf_error err = {0};
    char *rendered = NULL;
    size_t rendered_len = 0;
    if (chat) {
        ri_chat_message msgs[2];
        size_t n_msgs = 0;
        if (system_msg)
            msgs[n_msgs++] = (ri_chat_message){"system", system_msg};
        msgs[n_msgs++] = (ri_chat_message){"user", prompt};
        if (ri_chat_apply_model(gm.tok, msgs, n_msgs, true, &rendered, &rendered_len, &err) !=
            RF_OK) {
            cli_error(&TOOL, "%s: %s", path, err.message);
            code = cli_exit_for_status(err.status);
            goto out;
        }
    }
    unsigned flags = no_special && !chat ? 0u : RI_TOKENIZE_PARSE_SPECIAL;
    if (ri_tokenize_alloc(gm.tok, chat ? rendered : prompt, chat ? rendered_len : prompt_len,
                          flags | RI_TOKENIZE_ADD_SPECIAL, &ids, &n_ids, &err) != RF_OK) {
        cli_error(&TOOL, "%s", err.message);
        code = cli_exit_for_status(err.status);
        goto out;
    }
    if (n_ids == 0) {
        cli_error(&TOOL, "the prompt is empty (no tokens)");
        code = APR_EXIT_USAGE;
        goto out;
    }

    /* the context: the prompt and the tokens asked for, at most the model's length */
    ri_model_info info = ri_model_get_info(gm.model);
    unsigned limit = info.n_ctx_train ? info.n_ctx_train : 4096;
    unsigned n_ctx = go.n_ctx;
    if (n_ctx == 0) {
        uint64_t want = n_ids + (n_predict < 0 ? limit : (uint64_t)n_predict);
        n_ctx = want < limit ? (unsigned)want : limit;
    }
    if (n_ids > n_ctx) {
        cli_error(&TOOL, "%s: the prompt has %zu tokens, more than the context's %u positions",
                  path, n_ids, n_ctx);
        code = APR_EXIT_INPUT;
        goto out;
    }
    if ((code = gen_context(&TOOL, gm.model, &go, n_ctx, &ctx)) != 0)
        goto out;
    sampler = ri_sampler_new(&go.sampling, &err);
    if (!sampler) {
        cli_error(&TOOL, "%s", err.message);
        code = APR_EXIT_USAGE;
        goto out;
    }
    ri_generate_params gp = {.n_predict = (int32_t)n_predict,
                             .ignore_eog = ignore_eos,
                             .detok_flags = RI_DETOK_SKIP_SPECIAL};
    ri_generate_result res;
    if (ri_generate(ctx, gm.tok, sampler, ids, n_ids, &gp, on_token, &st, &res, &err) != RF_OK) {
        if (!json)
            putchar('\n');
        cli_error(&TOOL, "%s: %s", path, err.message);
        code = cli_exit_for_status(err.status);
        goto out;
    }
    if (st.write_failed) { /* stdout is the result: exit 4, silently if the reader left */
        cli_finish_stdout(&TOOL, true);
        code = APR_EXIT_WRITE;
        goto out;
    }
    double prefill_tps = res.prefill_s > 0 ? (double)res.n_prompt / res.prefill_s : 0;
    double decode_tps = res.decode_s > 0 ? (double)res.n_generated / res.decode_s : 0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", path);
        cJSON_AddStringToObject(o, "path", ri_model_path_name(gm.model));
        cJSON *pt = cJSON_AddArrayToObject(o, "prompt_tokens");
        for (size_t i = 0; i < n_ids; i++)
            cJSON_AddItemToArray(pt, cJSON_CreateNumber(ids[i]));
        cJSON *gt = cJSON_AddArrayToObject(o, "tokens");
        for (size_t i = 0; i < st.n; i++)
            cJSON_AddItemToArray(gt, cJSON_CreateNumber(st.ids[i]));
        cJSON_AddItemToObject(o, "text", cli_json_string(st.text ? st.text : "", st.text_len));
        cJSON_AddStringToObject(o, "stop", ri_stop_reason_name(res.stop));
        cJSON_AddNumberToObject(o, "stop_token", res.stop_token);
        cJSON *t = cJSON_AddObjectToObject(o, "timings");
        cJSON_AddItemToObject(t, "load_s", cli_json_double(gm.load_s, false));
        cJSON_AddItemToObject(t, "prefill_s", cli_json_double(res.prefill_s, false));
        cJSON_AddItemToObject(t, "decode_s", cli_json_double(res.decode_s, false));
        cJSON_AddItemToObject(t, "prefill_tok_s", cli_json_double(prefill_tps, false));
        cJSON_AddItemToObject(t, "decode_tok_s", cli_json_double(decode_tps, false));
        cli_print_json(o, true);
    } else {
        putchar('\n');
    }
    if (cli_finish_stdout(&TOOL, true) != APR_EXIT_OK)
        code = APR_EXIT_WRITE;
    if (verbose)
        fprintf(stderr,
                "apr-run: %s: %s, load %.2f s; prompt %zu tokens (%zu reused) %.1f tok/s; "
                "generated %zu tokens %.1f tok/s; stop: %s\n",
                path, ri_model_path_name(gm.model), gm.load_s, res.n_prompt, res.n_reused,
                prefill_tps, res.n_generated, decode_tps, ri_stop_reason_name(res.stop));
out:
    free(st.ids);
    free(st.text);
    ri_sampler_free(sampler);
    ri_context_free(ctx);
    free(ids);
    free(rendered);
    free(prompt_buf);
    gen_close(&gm);
    return code;
}
