/* apr-tokenize: the token ids and pieces of a text under a model's tokenizer, like llama.cpp's
 * llama-tokenize; with --chat the text goes through the model's chat template first.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rosetta/tokenizer.h"

static const cli_tool TOOL = {
    "tokenize", "print the token ids and pieces of a text under a model's tokenizer",
    "usage: apr tokenize [options] MODEL TEXT\n"
    "       apr tokenize [options] --file F MODEL\n\n"
    "Tokenizes TEXT (or the bytes of file F; '-' reads stdin) with MODEL's tokenizer (GGUF,\n"
    "APR, or a SafeTensors directory with tokenizer.json) and prints one line per token:\n"
    "the id and the token's bytes, quoted and C-escaped ('\\xNN' for a byte that is part of a\n"
    "UTF-8 sequence the next token completes). Control tokens such as <|im_start|> written in\n"
    "the text are recognised unless --no-special. Invalid UTF-8 reads as U+FFFD.\n\n"
    "Options:\n"
    "      --ids-only     print only the ids, separated by spaces, on one line\n"
    "      --json         print {\"model\", \"text\", \"count\", \"ids\", \"tokens\"}; each token "
    "is\n"
    "                     {\"id\", \"piece\" (its text, U+FFFD for a partial UTF-8 sequence),\n"
    "                     \"token\" (the vocabulary entry, byte-level form)}\n"
    "      --no-special   control tokens in TEXT are ordinary text (user-defined added tokens\n"
    "                     such as <tool_call> still match)\n"
    "      --chat         TEXT is a user message: render it with the model's chat template\n"
    "                     (ChatML when the model has none), with the assistant prompt, then\n"
    "                     tokenize the result\n"
    "      --system S     with --chat: a system message S first\n"
    "      --file F       read TEXT from file F ('-': stdin)\n"
    "      --no-normalize no NFC normalization even when the tokenizer asks for it (as\n"
    "                     llama.cpp, which never normalizes)\n"
    "      --add-special  add BOS when the model asks for it (add_bos_token; never Qwen2)\n"};

static char *read_stream(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *p = cap < ((size_t)1 << 40) ? realloc(buf, cap * 2) : NULL;
            if (!p) {
                free(buf);
                return NULL;
            }
            buf = p;
            cap *= 2;
        }
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static char *read_text(const char *path, size_t *len)
{
    if (strcmp(path, "-") == 0)
        return read_stream(stdin, len);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = read_stream(f, len);
    fclose(f);
    return text;
}

static void print_tokens(const ri_tokenizer *tok, const int32_t *ids, size_t n, bool ids_only)
{
    if (ids_only) {
        for (size_t i = 0; i < n; i++)
            printf(i ? " %d" : "%d", (int)ids[i]);
        putchar('\n');
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *piece = ri_token_piece(tok, ids[i], &len);
        char buf[1024];
        buf[0] = '\0';
        cli_quote(buf, sizeof buf, 0, piece, len, 200);
        printf("%6d -> %s\n", (int)ids[i], buf);
    }
}

static cJSON *tokens_json(const ri_tokenizer *tok, const char *model, const char *text,
                          size_t text_len, const int32_t *ids, size_t n)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", model);
    cJSON_AddItemToObject(root, "text", cli_json_string(text, text_len));
    cJSON_AddItemToObject(root, "count", cli_json_u64(n));
    cJSON *id_list = cJSON_AddArrayToObject(root, "ids");
    cJSON *list = cJSON_AddArrayToObject(root, "tokens");
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *piece = ri_token_piece(tok, ids[i], &len);
        cJSON_AddItemToArray(id_list, cJSON_CreateNumber(ids[i]));
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", ids[i]);
        cJSON_AddItemToObject(t, "piece", cli_json_string(piece, len));
        const char *entry = ri_token_text(tok, ids[i]);
        cJSON_AddItemToObject(t, "token", cli_json_string(entry, strlen(entry)));
        cJSON_AddItemToArray(list, t);
    }
    return root;
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    bool json = false, ids_only = false, chat = false;
    unsigned flags = RI_TOKENIZE_PARSE_SPECIAL;
    const char *file = NULL, *system = NULL;
    enum {
        OPT_IDS = 256,
        OPT_JSON,
        OPT_NOSPECIAL,
        OPT_CHAT,
        OPT_SYSTEM,
        OPT_FILE,
        OPT_NONORM,
        OPT_ADD
    };
    static const struct option longopts[] = {{"ids-only", no_argument, NULL, OPT_IDS},
                                             {"json", no_argument, NULL, OPT_JSON},
                                             {"no-special", no_argument, NULL, OPT_NOSPECIAL},
                                             {"chat", no_argument, NULL, OPT_CHAT},
                                             {"system", required_argument, NULL, OPT_SYSTEM},
                                             {"file", required_argument, NULL, OPT_FILE},
                                             {"no-normalize", no_argument, NULL, OPT_NONORM},
                                             {"add-special", no_argument, NULL, OPT_ADD},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_IDS: ids_only = true; break;
        case OPT_JSON: json = true; break;
        case OPT_NOSPECIAL: flags &= ~(unsigned)RI_TOKENIZE_PARSE_SPECIAL; break;
        case OPT_CHAT: chat = true; break;
        case OPT_SYSTEM: system = optarg; break;
        case OPT_FILE: file = optarg; break;
        case OPT_NONORM: flags |= RI_TOKENIZE_NO_NORMALIZE; break;
        case OPT_ADD: flags |= RI_TOKENIZE_ADD_SPECIAL; break;
        default: return cli_option_error(&TOOL, argv, "", longopts);
        }
    }
    int want = file ? 1 : 2;
    if (argc - optind != want)
        return cli_usage_error(&TOOL, argc - optind < want
                                          ? (file ? "no MODEL given" : "MODEL and TEXT needed")
                                          : "too many arguments");
    if (json && ids_only)
        return cli_usage_error(&TOOL, "--json and --ids-only exclude each other");
    if (system && !chat)
        return cli_usage_error(&TOOL, "--system needs --chat");
    const char *model_path = argv[optind];
    size_t text_len = 0;
    char *text = NULL;
    if (file) {
        text = read_text(file, &text_len);
        if (!text) {
            cli_error(&TOOL, "%s: cannot read: %s", file, strerror(errno));
            return APR_EXIT_INPUT;
        }
    } else {
        text_len = strlen(argv[optind + 1]);
        text = malloc(text_len + 1);
        if (!text) {
            cli_error(&TOOL, "out of memory");
            return APR_EXIT_INPUT;
        }
        memcpy(text, argv[optind + 1], text_len + 1);
    }
    rf_error err = {0};
    int exit_code = APR_EXIT_OK;
    ri_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    rf_model *model = rf_model_open(model_path, NULL, &err);
    if (!model) {
        cli_error(&TOOL, "%s", err.message);
        exit_code = cli_exit_for_status(err.status);
        goto done;
    }
    tok = ri_tokenizer_from_model(model, &err);
    rf_model_free(model);
    if (!tok) {
        cli_error(&TOOL, "%s: %s", model_path, err.message);
        exit_code = cli_exit_for_status(err.status);
        goto done;
    }
    if (chat) {
        if (memchr(text, '\0', text_len)) {
            cli_error(&TOOL, "--chat: the text holds a NUL byte");
            exit_code = APR_EXIT_INPUT;
            goto done;
        }
        ri_chat_message msgs[2] = {{"system", system}, {"user", text}};
        char *rendered;
        size_t rendered_len;
        if (ri_chat_apply_model(tok, system ? msgs : msgs + 1, system ? 2 : 1, true, &rendered,
                                &rendered_len, &err) != RF_OK) {
            cli_error(&TOOL, "%s: %s", model_path, err.message);
            exit_code = cli_exit_for_status(err.status);
            goto done;
        }
        free(text);
        text = rendered;
        text_len = rendered_len;
        flags |= RI_TOKENIZE_PARSE_SPECIAL;
    }
    if (ri_tokenize_alloc(tok, text, text_len, flags, &ids, &n_ids, &err) != RF_OK) {
        cli_error(&TOOL, "%s", err.message);
        exit_code = cli_exit_for_status(err.status);
        goto done;
    }
    if (json) {
        if (!cli_print_json(tokens_json(tok, model_path, text, text_len, ids, n_ids), false))
            exit_code = APR_EXIT_WRITE;
    } else
        print_tokens(tok, ids, n_ids, ids_only);
    if (cli_finish_stdout(&TOOL, true) != APR_EXIT_OK)
        exit_code = APR_EXIT_WRITE;
done:
    free(ids);
    free(text);
    ri_tokenizer_free(tok);
    return exit_code;
}
