/* Fuzz target: chat templates and the tokenizer of libinfer. Input: a Jinja template,
 * FZ_SEPARATOR, a text. The template is parsed and rendered (ri_chat_apply) with the text as the
 * user message after a system message, with and without the generation prompt: it must render or
 * fail with a message, never crash or hang. The text (any bytes) is tokenized with a small
 * byte-level BPE tokenizer built here (merges and added tokens), with and without special
 * tokens: every id must be in range, streaming detokenization must equal the whole decode, and
 * for valid UTF-8 decode(encode(x)) must give x back.
 * fuzz-config: max_len=16384 seeds=tests/data/tokenizer */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include "rosetta/text.h"
#include "rosetta/tokenizer.h"

static const char *const MERGES[] = {"Ġ t", "h e", "Ġt he", "i n", "e r", "Ġ a", "o n",
                                     "r e", "Ġ Ġ", "ĠĠ ĠĠ", "Ċ Ċ", "a b", "ab c"};
static const char *const MERGED[] = {"Ġt", "he", "Ġthe", "in", "er", "Ġa", "on",
                                     "re", "ĠĠ", "ĠĠĠĠ", "ĊĊ", "ab", "abc"};
static const char *const ADDED[] = {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>"};

static size_t encode_cp(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static ri_tokenizer *build(void)
{
    rf_error err = {0};
    rf_model *m = rf_model_new(RF_FORMAT_GGUF, &err);
    size_t n_merged = sizeof MERGED / sizeof MERGED[0], n_added = sizeof ADDED / sizeof ADDED[0];
    size_t n = 256 + n_merged + n_added;
    const char **tokens = rf_model_alloc(m, n * sizeof *tokens);
    int32_t *types = rf_model_alloc(m, n * sizeof *types);
    unsigned next = 0x100;
    for (unsigned b = 0; b < 256; b++) {
        bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        char buf[4] = {0};
        encode_cp(self ? b : next++, buf);
        tokens[b] = rf_model_strdup(m, buf);
        types[b] = RF_TOKEN_NORMAL;
    }
    for (size_t i = 0; i < n_merged; i++) {
        tokens[256 + i] = MERGED[i];
        types[256 + i] = RF_TOKEN_NORMAL;
    }
    for (size_t i = 0; i < n_added; i++) {
        tokens[256 + n_merged + i] = ADDED[i];
        types[256 + n_merged + i] = i == 3 ? RF_TOKEN_USER_DEFINED : RF_TOKEN_CONTROL;
    }
    rf_tokenizer *tok = rf_model_tokenizer_mut(m);
    tok->model = "gpt2";
    tok->pre = "qwen2";
    tok->n_tokens = n;
    tok->tokens = tokens;
    tok->token_types = types;
    tok->n_merges = sizeof MERGES / sizeof MERGES[0];
    tok->merges = (const char **)MERGES;
    ri_tokenizer *t = ri_tokenizer_from_model(m, &err);
    rf_model_free(m);
    if (!t)
        abort(); /* the harness itself is broken */
    return t;
}

static void check_tokenize(const ri_tokenizer *tok, const uint8_t *s, size_t n, unsigned flags)
{
    int32_t *ids = NULL;
    size_t count = 0;
    rf_error err = {0};
    if (ri_tokenize_alloc(tok, (const char *)s, n, flags, &ids, &count, &err) != RF_OK)
        __builtin_trap(); /* any bytes must tokenize */
    for (size_t i = 0; i < count; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= ri_n_vocab(tok))
            __builtin_trap();
    char *whole = NULL;
    size_t whole_len = 0;
    if (ri_detokenize(tok, ids, count, 0, &whole, &whole_len, &err) != RF_OK)
        __builtin_trap();
    if (rf_utf8_valid(s, n) && (whole_len != n || memcmp(whole, s, n) != 0))
        __builtin_trap(); /* decode(encode(x)) == x */
    ri_detok *d = ri_detok_new(tok, 0, &err);
    size_t pos = 0;
    for (size_t i = 0; i < count; i++) {
        const char *text;
        size_t len;
        if (ri_detok_push(d, ids[i], &text, &len, &err) != RF_OK || pos + len > whole_len ||
            memcmp(whole + pos, text, len) != 0)
            __builtin_trap();
        pos += len;
    }
    const char *text;
    size_t len;
    ri_detok_flush(d, &text, &len);
    if (pos + len != whole_len || memcmp(whole + pos, text, len) != 0)
        __builtin_trap();
    ri_detok_free(d);
    free(whole);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ri_tokenizer *tok;
    if (!tok)
        tok = build();
    fz_part parts[2];
    size_t n = fz_split(data, size, parts, 2);
    char *tmpl = malloc(parts[0].size + 1);
    memcpy(tmpl, parts[0].data, parts[0].size);
    tmpl[parts[0].size] = '\0';
    const uint8_t *text = n > 1 ? parts[1].data : parts[0].data;
    size_t text_len = n > 1 ? parts[1].size : parts[0].size;
    char *content = malloc(text_len + 1);
    memcpy(content, text, text_len);
    content[text_len] = '\0';
    ri_chat_message msgs[2] = {{"system", "Be brief."}, {"user", content}};
    for (int gen = 0; gen < 2; gen++) {
        char *out = NULL;
        size_t out_len = 0;
        rf_error err = {0};
        rf_status st = ri_chat_apply(tmpl, msgs, 2, gen, &out, &out_len, &err);
        if (st == RF_OK ? out == NULL || strlen(out) > out_len : out != NULL || !err.message[0])
            __builtin_trap();
        free(out);
    }
    check_tokenize(tok, text, text_len, RI_TOKENIZE_PARSE_SPECIAL);
    check_tokenize(tok, text, text_len, 0);
    free(content);
    free(tmpl);
    return 0;
}
