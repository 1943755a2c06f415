/* tokenize_corpus: tokenizes many texts with one tokenizer, for the corpus checks
 * (tests/interop/test_tokenizer_hf.py, tests/real/tokenizer.sh). Test helper, not a tool.
 *
 * usage: tokenize_corpus MODEL [--no-special] [--no-normalize] < TEXTS
 *   TEXTS: one text per line, hex-encoded bytes (an empty line is the empty text).
 * Prints one line per text: the ids separated by spaces, a tab, and the hex of
 * ri_detokenize(ids) (control tokens rendered); "ERROR <message>" when tokenizing fails.
 * The first line on stderr says whether the tokenizer normalizes and its pre-tokenizer:
 * "tokenize_corpus: nfc=1 pre=qwen2".
 * Exit status 0, 2 on usage errors, 3 when the model or tokenizer cannot be loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosetta/tokenizer.h"

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tokenize_corpus MODEL [--no-special] [--no-normalize] < TEXTS\n");
        return 2;
    }
    unsigned flags = RI_TOKENIZE_PARSE_SPECIAL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--no-special") == 0)
            flags &= ~(unsigned)RI_TOKENIZE_PARSE_SPECIAL;
        else if (strcmp(argv[i], "--no-normalize") == 0)
            flags |= RI_TOKENIZE_NO_NORMALIZE;
        else {
            fprintf(stderr, "tokenize_corpus: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    rf_error err = {0};
    rf_model *model = rf_model_open(argv[1], NULL, &err);
    if (!model) {
        fprintf(stderr, "tokenize_corpus: %s\n", err.message);
        return 3;
    }
    ri_tokenizer *tok = ri_tokenizer_from_model(model, &err);
    rf_model_free(model);
    if (!tok) {
        fprintf(stderr, "tokenize_corpus: %s\n", err.message);
        return 3;
    }
    fprintf(stderr, "tokenize_corpus: nfc=%d pre=%s\n", ri_tokenizer_normalizes(tok),
            ri_tokenizer_pre(tok));
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        size_t n = (size_t)got;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        size_t len = 0;
        for (size_t i = 0; i + 1 < n; i += 2) {
            int hi = hex_digit(line[i]), lo = hex_digit(line[i + 1]);
            if (hi < 0 || lo < 0)
                break;
            line[len++] = (char)(hi << 4 | lo);
        }
        int32_t *ids = NULL;
        size_t n_ids = 0;
        char *text = NULL;
        size_t text_len = 0;
        if (ri_tokenize_alloc(tok, line, len, flags, &ids, &n_ids, &err) != RF_OK ||
            ri_detokenize(tok, ids, n_ids, 0, &text, &text_len, &err) != RF_OK) {
            printf("ERROR %s\n", err.message);
        } else {
            for (size_t i = 0; i < n_ids; i++)
                printf(i ? " %d" : "%d", (int)ids[i]);
            putchar('\t');
            for (size_t i = 0; i < text_len; i++)
                printf("%02x", (unsigned char)text[i]);
            putchar('\n');
        }
        free(ids);
        free(text);
    }
    free(line);
    ri_tokenizer_free(tok);
    return 0;
}
