/* llama_tokenize: tokenizes texts with llama.cpp's own libllama (the model loaded vocabulary
 * only) for the tokenizer oracle test (tests/real/tokenizer.sh); also the llama.cpp side of
 * bench/tokenize when loaded there. Not part of Rosetta.
 *
 * usage: llama_tokenize [--no-special] MODEL.gguf < TEXTS
 *   TEXTS: one text per line, hex-encoded bytes (an empty line is the empty text).
 *   --no-special   parse_special = false (control tokens in the text are ordinary text)
 * Prints one line per text: the ids llama_tokenize returns (add_special = false), separated by
 * spaces, a tab, and the hex of llama_detokenize of those ids (special tokens rendered). Exit
 * status 0, 1 when the model does not load (llama.cpp's log is printed), 2 on usage errors. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static char log_buf[1 << 16];
static size_t log_len;

static void log_cb(enum ggml_log_level level, const char *text, void *user)
{
    (void)level;
    (void)user;
    size_t n = strlen(text);
    if (log_len + n < sizeof log_buf) {
        memcpy(log_buf + log_len, text, n);
        log_len += n;
        log_buf[log_len] = '\0';
    }
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int main(int argc, char **argv)
{
    bool parse_special = true;
    int i = 1;
    if (i < argc && strcmp(argv[i], "--no-special") == 0) {
        parse_special = false;
        i++;
    }
    if (argc - i != 1) {
        fprintf(stderr, "usage: llama_tokenize [--no-special] MODEL.gguf < TEXTS\n");
        return 2;
    }
    llama_log_set(log_cb, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *model = llama_model_load_from_file(argv[i], mp);
    if (!model) {
        fprintf(stderr, "llama_tokenize: llama.cpp does not load %s; its log:\n%s", argv[i],
                log_buf);
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int32_t *ids = NULL;
    int32_t ids_cap = 0;
    char *text = NULL;
    int32_t text_cap = 0;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        size_t n = (size_t)got, len = 0;
        while (n && line[n - 1] == '\n')
            n--;
        for (size_t k = 0; k + 1 < n; k += 2)
            line[len++] = (char)(hex_digit(line[k]) << 4 | hex_digit(line[k + 1]));
        int32_t count =
            llama_tokenize(vocab, line, (int32_t)len, ids, ids_cap, false, parse_special);
        if (count < 0) {
            ids_cap = -count;
            ids = realloc(ids, (size_t)ids_cap * sizeof *ids);
            if (!ids) {
                fprintf(stderr, "llama_tokenize: out of memory\n");
                return 1;
            }
            count = llama_tokenize(vocab, line, (int32_t)len, ids, ids_cap, false, parse_special);
        }
        for (int32_t k = 0; k < count; k++)
            printf(k ? " %d" : "%d", ids[k]);
        putchar('\t');
        int32_t text_len = llama_detokenize(vocab, ids, count, text, text_cap, false, true);
        if (text_len < 0) {
            text_cap = -text_len;
            text = realloc(text, (size_t)text_cap);
            if (!text) {
                fprintf(stderr, "llama_tokenize: out of memory\n");
                return 1;
            }
            text_len = llama_detokenize(vocab, ids, count, text, text_cap, false, true);
        }
        for (int32_t k = 0; k < text_len; k++)
            printf("%02x", (unsigned char)text[k]);
        putchar('\n');
    }
    free(ids);
    free(text);
    free(line);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
