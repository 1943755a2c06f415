/* The tokenizer of libinfer on small hand-made vocabularies: BPE merge order (rank, leftmost on
 * ties, long runs), the Qwen2 pre-tokenizer split (with and without JIT), added tokens (longest
 * match, control only when asked, user-defined always), NFC, invalid UTF-8 read as U+FFFD,
 * streaming detokenization holding back partial UTF-8, the id-count contract of ri_tokenize,
 * special ids and errors; and the fixture's real tokenizer.json. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "rosetta/model.h"
#include "rosetta/tokenizer.h"
#include "tokenizer_internal.h"

#ifndef ROSETTA_ROOT
#define ROSETTA_ROOT "."
#endif

/* ---- a small byte-level vocabulary ---------------------------------------------------------- */

/* The GPT-2 byte map (docs/tokenizer.md): printable bytes stand for themselves, the other 68 map
 * to U+0100.. in byte order. Ids 0..255 are the bytes in that map's order of code points. */
static uint32_t byte_cp(unsigned b)
{
    unsigned n = 0;
    for (unsigned k = 0; k < 256; k++) {
        bool self = (k >= 0x21 && k <= 0x7E) || (k >= 0xA1 && k <= 0xAC) || k >= 0xAE;
        if (k == b)
            return self ? k : 0x100 + n;
        if (!self)
            n++;
    }
    return 0;
}

static char *bytes_text(rf_model *m, const char *bytes)
{
    char buf[256];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)bytes; *p; p++)
        o += tok_utf8_encode(byte_cp(*p), buf + o);
    buf[o] = '\0';
    return rf_model_strdup(m, buf);
}

typedef struct extra {
    const char *text; /* raw bytes of a merged token, or an added token's text */
    int type;         /* RF_TOKEN_* */
} extra;

/* A model whose vocabulary is the 256 bytes, then extras[] (merged tokens as raw bytes, added
 * tokens as text), with merges[] ("a b" over raw bytes; NULL-terminated). */
static rf_model *make_model(const extra *extras, size_t n_extra, const char *const *merges,
                            const char *pre)
{
    rf_error err = {0};
    rf_model *m = rf_model_new(RF_FORMAT_GGUF, &err);
    cr_assert_not_null(m);
    size_t n = 256 + n_extra;
    const char **tokens = rf_model_alloc(m, n * sizeof *tokens);
    int32_t *types = rf_model_alloc(m, n * sizeof *types);
    for (unsigned b = 0; b < 256; b++) {
        char buf[8];
        size_t len = tok_utf8_encode(byte_cp(b), buf);
        buf[len] = '\0';
        tokens[b] = rf_model_strdup(m, buf);
        types[b] = RF_TOKEN_NORMAL;
    }
    for (size_t i = 0; i < n_extra; i++) {
        bool added = extras[i].type != RF_TOKEN_NORMAL;
        tokens[256 + i] =
            added ? rf_model_strdup(m, extras[i].text) : bytes_text(m, extras[i].text);
        types[256 + i] = extras[i].type;
    }
    size_t n_merges = 0;
    while (merges && merges[n_merges])
        n_merges++;
    const char **ml = rf_model_alloc(m, (n_merges + 1) * sizeof *ml);
    for (size_t i = 0; i < n_merges; i++) {
        const char *sp = strchr(merges[i] + 1, ' ');
        char left[64], right[64];
        snprintf(left, sizeof left, "%.*s", (int)(sp - merges[i]), merges[i]);
        snprintf(right, sizeof right, "%s", sp + 1);
        char *l = bytes_text(m, left), *r = bytes_text(m, right);
        char joined[256];
        snprintf(joined, sizeof joined, "%s %s", l, r);
        ml[i] = rf_model_strdup(m, joined);
    }
    rf_tokenizer *tok = rf_model_tokenizer_mut(m);
    tok->model = "gpt2";
    tok->pre = pre;
    tok->n_tokens = n;
    tok->tokens = tokens;
    tok->token_types = types;
    tok->n_merges = n_merges;
    tok->merges = ml;
    rf_model_config *cfg = rf_model_config_mut(m);
    cfg->architecture = "qwen2";
    return m;
}

static ri_tokenizer *make_tok(const extra *extras, size_t n_extra, const char *const *merges)
{
    rf_model *m = make_model(extras, n_extra, merges, "qwen2");
    rf_error err = {0};
    ri_tokenizer *tok = ri_tokenizer_from_model(m, &err);
    cr_assert_not_null(tok, "%s", err.message);
    rf_model_free(m);
    return tok;
}

/* The ids of text as a string "1 2 3". */
static const char *ids_of(const ri_tokenizer *tok, const char *text, size_t len, unsigned flags)
{
    static char out[8192];
    int32_t *ids;
    size_t n;
    rf_error err = {0};
    cr_assert_eq(ri_tokenize_alloc(tok, text, len, flags, &ids, &n, &err), RF_OK, "%s",
                 err.message);
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && o < sizeof out - 16; i++)
        o += (size_t)snprintf(out + o, sizeof out - o, i ? " %d" : "%d", (int)ids[i]);
    free(ids);
    return out;
}

/* In make_model's vocabulary byte b is id b. */
#define B(c) ((int)(unsigned char)(c))

/* ---- BPE ---------------------------------------------------------------------------------- */

Test(bpe, lowest_rank_first)
{
    /* "abc": with "b c" ranked first the result is a + bc, with "a b" first ab + c */
    extra ex[] = {{"ab", RF_TOKEN_NORMAL}, {"bc", RF_TOKEN_NORMAL}, {"abc", RF_TOKEN_NORMAL}};
    const char *bc_first[] = {"b c", "a b", NULL};
    ri_tokenizer *tok = make_tok(ex, 3, bc_first);
    char want[64];
    snprintf(want, sizeof want, "%d 257", B('a'));
    cr_assert_str_eq(ids_of(tok, "abc", 3, 0), want);
    ri_tokenizer_free(tok);
    const char *ab_first[] = {"a b", "b c", "ab c", NULL};
    tok = make_tok(ex, 3, ab_first);
    cr_assert_str_eq(ids_of(tok, "abc", 3, 0), "258"); /* ab, then ab+c */
    cr_assert_str_eq(ids_of(tok, "abcab", 5, 0), "258 256");
    ri_tokenizer_free(tok);
}

Test(bpe, leftmost_on_equal_pairs)
{
    extra ex[] = {{"aa", RF_TOKEN_NORMAL}};
    const char *merges[] = {"a a", NULL};
    ri_tokenizer *tok = make_tok(ex, 1, merges);
    char want[64];
    snprintf(want, sizeof want, "256 %d", B('a'));
    cr_assert_str_eq(ids_of(tok, "aaa", 3, 0), want);
    cr_assert_str_eq(ids_of(tok, "aaaa", 4, 0), "256 256");
    ri_tokenizer_free(tok);
}

Test(bpe, merges_naming_unknown_tokens_are_never_applied)
{
    /* "x y" would make "xy", which is not in the vocabulary */
    extra ex[] = {{"ab", RF_TOKEN_NORMAL}};
    const char *merges[] = {"x y", "a b", NULL};
    ri_tokenizer *tok = make_tok(ex, 1, merges);
    char want[64];
    snprintf(want, sizeof want, "%d %d", B('x'), B('y'));
    cr_assert_str_eq(ids_of(tok, "xy", 2, 0), want);
    cr_assert_str_eq(ids_of(tok, "ab", 2, 0), "256");
    cr_assert_eq(tok->n_merges, 1);
    cr_assert_eq(tok->n_merges_skipped, 1);
    ri_tokenizer_free(tok);
}

Test(bpe, long_run_merges_in_n_log_n)
{
    /* 2^16 letters merge into 2^16 / 8 "aaaaaaaa" tokens through three levels */
    extra ex[] = {
        {"aa", RF_TOKEN_NORMAL}, {"aaaa", RF_TOKEN_NORMAL}, {"aaaaaaaa", RF_TOKEN_NORMAL}};
    const char *merges[] = {"a a", "aa aa", "aaaa aaaa", NULL};
    ri_tokenizer *tok = make_tok(ex, 3, merges);
    size_t n = (size_t)1 << 16;
    char *text = malloc(n);
    memset(text, 'a', n);
    int32_t *ids;
    size_t count;
    rf_error err = {0};
    cr_assert_eq(ri_tokenize_alloc(tok, text, n, 0, &ids, &count, &err), RF_OK);
    cr_assert_eq(count, n / 8);
    for (size_t i = 0; i < count; i++)
        cr_assert_eq(ids[i], 258);
    free(ids);
    free(text);
    ri_tokenizer_free(tok);
}

Test(bpe, byte_ids_follow_the_byte_map)
{
    ri_tokenizer *tok = make_tok(NULL, 0, NULL);
    cr_assert_eq(ri_token_id(tok, "!"), B('!'));
    cr_assert_eq(ri_token_id(tok, "\xc4\xa0"), B(' ')); /* 'Ġ' is the space */
    cr_assert_eq(ri_token_id(tok, "\xc4\x8a"), B('\n'));
    size_t len;
    const char *piece = ri_token_piece(tok, B(' '), &len);
    cr_assert_eq(len, 1);
    cr_assert_eq(piece[0], ' ');
    piece = ri_token_piece(tok, 0, &len);
    cr_assert_eq(len, 1);
    cr_assert_eq(piece[0], '\0'); /* byte 0 decodes to a NUL byte */
    ri_tokenizer_free(tok);
}

/* ---- pre-tokenizer ------------------------------------------------------------------------ */

typedef struct pieces {
    char text[4096];
    size_t len;
} pieces;

static void collect(void *ctx, const char *piece, size_t len)
{
    pieces *p = ctx;
    if (p->len)
        p->text[p->len++] = '|';
    memcpy(p->text + p->len, piece, len);
    p->len += len;
    p->text[p->len] = '\0';
}

static const char *split_of(const ri_tokenizer *tok, const char *text)
{
    static pieces p;
    p.len = 0;
    p.text[0] = '\0';
    rf_error err = {0};
    cr_assert_eq(tok_split(tok, text, strlen(text), collect, &p, &err), RF_OK, "%s", err.message);
    return p.text;
}

static void check_splits(const ri_tokenizer *tok)
{
    static const char *const CASES[][2] = {
        {"Hello world", "Hello| world"},
        {"I'm sure they'll see", "I|'m| sure| they|'ll| see"},
        {"DON'T", "DON|'T"},
        {"2024 is 333", "2|0|2|4| is| |3|3|3"},
        {"a  b", "a| | b"},
        {"a   \n\n  b", "a|   \n\n| | b"},
        {"x = y;\n", "x| =| y|;\n"},
        {"end  ", "end|  "},
        {"\t\tindent", "\t|\tindent"},
        {"(a)", "(a|)"},
        {"  x", " | x"},
        {"你好，世界", "你好|，世界"},
        {"a\xc2\xa0"
         "b",
         "a|\xc2\xa0"
         "b"}, /* U+00A0 prefixes the letters */
        {"a\xc2\x85\xc2\x85"
         "b",
         "a|\xc2\x85|\xc2\x85"
         "b"}, /* U+0085 is White_Space */
        /* U+180E is not (PCRE2's own \s says it is) */
        {"a\xe1\xa0\x8e\xe1\xa0\x8e"
         "b",
         "a|\xe1\xa0\x8e\xe1\xa0\x8e|b"},
        {"\xf0\x9f\x98\x80!", "\xf0\x9f\x98\x80!"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        cr_expect_str_eq(split_of(tok, CASES[i][0]), CASES[i][1], "split of \"%s\"", CASES[i][0]);
}

Test(pretokenizer, qwen2_split)
{
    ri_tokenizer *tok = make_tok(NULL, 0, NULL);
    cr_assert_str_eq(ri_tokenizer_pre(tok), "qwen2");
    cr_assert(tok->jit || getenv("ROSETTA_PCRE2_NO_JIT"));
    check_splits(tok);
    /* the GGUF spelling of the contractions does not fold U+017F to 's' */
    cr_assert_str_eq(split_of(tok, "x'\xc5\xbft"), "x|'\xc5\xbft");
    ri_tokenizer_free(tok);
}

Test(pretokenizer, same_split_without_jit)
{
    setenv("ROSETTA_PCRE2_NO_JIT", "1", 1);
    ri_tokenizer *tok = make_tok(NULL, 0, NULL);
    unsetenv("ROSETTA_PCRE2_NO_JIT");
    cr_assert_not(tok->jit);
    check_splits(tok);
    ri_tokenizer_free(tok);
}

Test(pretokenizer, unsupported_pre_tokenizer)
{
    rf_model *m = make_model(NULL, 0, NULL, "deepseek-llm");
    rf_error err = {0};
    cr_assert_null(ri_tokenizer_from_model(m, &err));
    cr_assert_eq(err.status, RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "deepseek-llm"), "%s", err.message);
    rf_model_free(m);
}

/* ---- added tokens ------------------------------------------------------------------------- */

static const extra SPECIALS[] = {
    {"<|im_start|>", RF_TOKEN_CONTROL},     /* 256 */
    {"<|im_end|>", RF_TOKEN_CONTROL},       /* 257 */
    {"<|im_end|>x", RF_TOKEN_CONTROL},      /* 258: longer, same start */
    {"<tool_call>", RF_TOKEN_USER_DEFINED}, /* 259 */
    {"<|endoftext|>", RF_TOKEN_CONTROL},    /* 260 */
};

Test(special, longest_match_and_parse_flag)
{
    ri_tokenizer *tok = make_tok(SPECIALS, 5, NULL);
    cr_assert_str_eq(ids_of(tok, "<|im_end|>", 10, RI_TOKENIZE_PARSE_SPECIAL), "257");
    cr_assert_str_eq(ids_of(tok, "<|im_end|>x", 11, RI_TOKENIZE_PARSE_SPECIAL), "258");
    char want[128];
    snprintf(want, sizeof want, "257 %d", B('y'));
    cr_assert_str_eq(ids_of(tok, "<|im_end|>y", 11, RI_TOKENIZE_PARSE_SPECIAL), want);
    snprintf(want, sizeof want, "%d 256 257 %d", B('a'), B('b'));
    cr_assert_str_eq(ids_of(tok, "a<|im_start|><|im_end|>b", 24, RI_TOKENIZE_PARSE_SPECIAL), want);
    /* without the flag control tokens are text; user-defined ones still match */
    const char *plain = ids_of(tok, "<|im_end|>", 10, 0);
    cr_assert(strchr(plain, ' '), "%s", plain);
    cr_assert_str_eq(ids_of(tok, "<tool_call>", 11, 0), "259");
    cr_assert_str_eq(ids_of(tok, "<tool_call>", 11, RI_TOKENIZE_PARSE_SPECIAL), "259");
    /* a partial marker is text */
    cr_assert_eq(strstr(ids_of(tok, "<|im_end|", 9, RI_TOKENIZE_PARSE_SPECIAL), "257"), NULL);
    ri_tokenizer_free(tok);
}

Test(special, ids_and_queries)
{
    rf_model *m = make_model(SPECIALS, 5, NULL, "qwen2");
    rf_model_config *cfg = rf_model_config_mut(m);
    cfg->bos_token_id = 260;
    cfg->eos_token_id = 257;
    cfg->pad_token_id = 260;
    cfg->chat_template = "{{ messages[0].content }}";
    rf_error err = {0};
    ri_tokenizer *tok = ri_tokenizer_from_model(m, &err);
    cr_assert_not_null(tok, "%s", err.message);
    rf_model_free(m); /* the tokenizer keeps its own copies */
    cr_assert_eq(ri_n_vocab(tok), 261);
    cr_assert_eq(ri_token_bos(tok), 260);
    cr_assert_eq(ri_token_eos(tok), 257);
    cr_assert_eq(ri_token_pad(tok), 260);
    cr_assert_eq(ri_token_eot(tok), 257); /* <|im_end|> by its text */
    cr_assert_eq(ri_token_id(tok, "<|im_end|>"), 257);
    cr_assert_eq(ri_token_id(tok, "<|nope|>"), -1);
    cr_assert(ri_token_is_control(tok, 256));
    cr_assert_not(ri_token_is_control(tok, 259));
    cr_assert(ri_token_is_special(tok, 259));
    cr_assert_not(ri_token_is_special(tok, 5));
    cr_assert(ri_token_is_eog(tok, 257));
    cr_assert(ri_token_is_eog(tok, 260)); /* <|endoftext|> */
    cr_assert_not(ri_token_is_eog(tok, 256));
    int32_t eog[8];
    cr_assert_eq(ri_eog_tokens(tok, eog, 8), 2);
    cr_assert_eq(eog[0], 257);
    cr_assert_eq(eog[1], 260);
    cr_assert_eq(ri_token_type(tok, 259), RF_TOKEN_USER_DEFINED);
    cr_assert_eq(ri_token_type(tok, 9999), 0);
    cr_assert_null(ri_token_text(tok, -1));
    cr_assert_str_eq(ri_tokenizer_chat_template(tok), "{{ messages[0].content }}");
    cr_assert_not(ri_tokenizer_add_bos(tok));
    ri_tokenizer_free(tok);
}

Test(special, add_special_adds_bos_only_when_asked)
{
    rf_model *m = make_model(SPECIALS, 5, NULL, "qwen2");
    rf_model_config_mut(m)->bos_token_id = 260;
    rf_error err = {0};
    ri_tokenizer *tok = ri_tokenizer_from_model(m, &err);
    char want[32];
    snprintf(want, sizeof want, "%d", B('a'));
    cr_assert_str_eq(ids_of(tok, "a", 1, RI_TOKENIZE_ADD_SPECIAL), want);
    ri_tokenizer_free(tok);
    rf_model_tokenizer_mut(m)->add_bos = true;
    tok = ri_tokenizer_from_model(m, &err);
    snprintf(want, sizeof want, "260 %d", B('a'));
    cr_assert_str_eq(ids_of(tok, "a", 1, RI_TOKENIZE_ADD_SPECIAL), want);
    ri_tokenizer_free(tok);
    rf_model_free(m);
}

/* ---- text handling ------------------------------------------------------------------------ */

Test(text, nfc_when_asked)
{
    ri_tokenizer *tok = make_tok(NULL, 0, NULL);
    cr_assert_not(ri_tokenizer_normalizes(tok));
    char want[64];
    snprintf(want, sizeof want, "%d %d", B(0xC3), B(0xA9)); /* é */
    cr_assert_str_eq(ids_of(tok, "e\xcc\x81", 3, RI_TOKENIZE_NORMALIZE), want);
    snprintf(want, sizeof want, "%d %d %d", B('e'), B(0xCC), B(0x81));
    cr_assert_str_eq(ids_of(tok, "e\xcc\x81", 3, 0), want);
    int32_t id;
    size_t n;
    rf_error err = {0};
    cr_assert_eq(ri_tokenize(tok, "a", 1, RI_TOKENIZE_NORMALIZE | RI_TOKENIZE_NO_NORMALIZE, &id, 1,
                             &n, &err),
                 RF_ERR_ARGUMENT);
    ri_tokenizer_free(tok);
}

Test(text, invalid_utf8_reads_as_replacement)
{
    ri_tokenizer *tok = make_tok(NULL, 0, NULL);
    char want[128];
    /* "\xe2\x82(": one U+FFFD for the two-byte maximal subpart, then '(' */
    snprintf(want, sizeof want, "%d %d %d %d", B(0xEF), B(0xBF), B(0xBD), B('('));
    cr_assert_str_eq(ids_of(tok, "\xe2\x82(", 3, 0), want);
    snprintf(want, sizeof want, "%d %d %d %d %d %d", B(0xEF), B(0xBF), B(0xBD), B(0xEF), B(0xBF),
             B(0xBD));
    cr_assert_str_eq(ids_of(tok, "\xc0\x80", 2, 0), want); /* overlong: two bad bytes */
    cr_assert_str_eq(ids_of(tok, "", 0, 0), "");
    ri_tokenizer_free(tok);
}

Test(text, caller_buffer_contract)
{
    ri_tokenizer *tok = make_tok(NULL, 0, NULL);
    int32_t ids[2] = {-1, -1};
    size_t n = 0;
    rf_error err = {0};
    cr_assert_eq(ri_tokenize(tok, "a b c", 5, 0, ids, 2, &n, &err), RF_ERR_LIMIT);
    cr_assert_eq(n, 5);
    cr_assert_eq(ids[0], B('a'));
    cr_assert_eq(ri_tokenize(tok, "ab", 2, 0, ids, 2, &n, &err), RF_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(ri_tokenize(tok, NULL, 3, 0, ids, 2, &n, &err), RF_ERR_ARGUMENT);
    ri_tokenizer_free(tok);
}

/* ---- decoding ----------------------------------------------------------------------------- */

Test(decode, streaming_holds_back_partial_utf8)
{
    ri_tokenizer *tok = make_tok(SPECIALS, 5, NULL);
    ri_detok *d = ri_detok_new(tok, 0, NULL);
    const char *text;
    size_t len;
    /* U+1F600 in four byte tokens: nothing until the last one */
    const unsigned char emoji[] = {0xF0, 0x9F, 0x98, 0x80};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(ri_detok_push(d, B(emoji[i]), &text, &len, NULL), RF_OK);
        cr_assert_eq(len, 0);
    }
    cr_assert_eq(ri_detok_push(d, B(emoji[3]), &text, &len, NULL), RF_OK);
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(text, emoji, 4), 0);
    /* a sequence that cannot continue is U+FFFD at once, and the next byte is kept */
    cr_assert_eq(ri_detok_push(d, B(0xE2), &text, &len, NULL), RF_OK);
    cr_assert_eq(len, 0);
    cr_assert_eq(ri_detok_push(d, B('A'), &text, &len, NULL), RF_OK);
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(text,
                        "\xef\xbf\xbd"
                        "A",
                        4),
                 0);
    /* control tokens: literal text, or nothing with RI_DETOK_SKIP_SPECIAL */
    cr_assert_eq(ri_detok_push(d, 257, &text, &len, NULL), RF_OK);
    cr_assert_eq(len, 10);
    /* flush turns a held incomplete sequence into U+FFFD */
    cr_assert_eq(ri_detok_push(d, B(0xC3), &text, &len, NULL), RF_OK);
    cr_assert_eq(len, 0);
    ri_detok_flush(d, &text, &len);
    cr_assert_eq(len, 3);
    ri_detok_flush(d, &text, &len);
    cr_assert_eq(len, 0);
    rf_error err = {0};
    cr_assert_eq(ri_detok_push(d, 100000, &text, &len, &err), RF_ERR_ARGUMENT);
    ri_detok_free(d);
    d = ri_detok_new(tok, RI_DETOK_SKIP_SPECIAL, NULL);
    cr_assert_eq(ri_detok_push(d, 257, &text, &len, NULL), RF_OK);
    cr_assert_eq(len, 0);
    ri_detok_free(d);
    ri_tokenizer_free(tok);
}

Test(decode, stream_equals_whole_decode)
{
    ri_tokenizer *tok = make_tok(SPECIALS, 5, NULL);
    unsigned seed = 12345;
    for (int round = 0; round < 300; round++) {
        int32_t ids[40];
        size_t n = 1 + (size_t)(round % 40);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 8;
            /* mostly UTF-8 lead and continuation bytes, some ASCII and specials */
            static const unsigned char pool[] = {0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98,
                                                 0x80, 'a',  ' ',  0xFF, 0xED, 0xA0, 0xF4, 0x90};
            ids[i] = r % 17 == 0 ? 257 : B(pool[r % sizeof pool]);
        }
        char *whole;
        size_t whole_len;
        cr_assert_eq(ri_detokenize(tok, ids, n, 0, &whole, &whole_len, NULL), RF_OK);
        ri_detok *d = ri_detok_new(tok, 0, NULL);
        char streamed[1024];
        size_t s = 0;
        const char *text;
        size_t len;
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(ri_detok_push(d, ids[i], &text, &len, NULL), RF_OK);
            memcpy(streamed + s, text, len);
            s += len;
        }
        ri_detok_flush(d, &text, &len);
        memcpy(streamed + s, text, len);
        s += len;
        cr_assert_eq(s, whole_len, "round %d", round);
        cr_assert_eq(memcmp(streamed, whole, s), 0, "round %d", round);
        ri_detok_free(d);
        free(whole);
    }
    ri_tokenizer_free(tok);
}

/* ---- the fixture's tokenizer.json ----------------------------------------------------------- */

static ri_tokenizer *fixture_tok(void)
{
    rf_error err = {0};
    rf_model *m = rf_model_open(ROSETTA_ROOT "/fixtures/tiny-qwen2", NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    ri_tokenizer *tok = ri_tokenizer_from_model(m, &err);
    cr_assert_not_null(tok, "%s", err.message);
    rf_model_free(m);
    return tok;
}

Test(fixture, round_trip_and_normalizer)
{
    ri_tokenizer *tok = fixture_tok();
    cr_assert(ri_tokenizer_normalizes(tok)); /* tokenizer.json asks for NFC */
    cr_assert_eq(ri_token_id(tok, "<|im_end|>"), 999);
    cr_assert_eq(ri_token_eos(tok), 999);
    const char *text = "<|im_start|>user\nHello, wörld! 2+2=4 \xf0\x9f\x98\x80<|im_end|>\n";
    int32_t *ids;
    size_t n;
    cr_assert_eq(
        ri_tokenize_alloc(tok, text, strlen(text), RI_TOKENIZE_PARSE_SPECIAL, &ids, &n, NULL),
        RF_OK);
    cr_assert_eq(ids[0], 998);
    cr_assert_eq(ids[n - 2], 999);
    char *back;
    size_t len;
    cr_assert_eq(ri_detokenize(tok, ids, n, 0, &back, &len, NULL), RF_OK);
    cr_assert_str_eq(back, text);
    free(back);
    cr_assert_eq(ri_detokenize(tok, ids, n, RI_DETOK_SKIP_SPECIAL, &back, &len, NULL), RF_OK);
    cr_assert_null(strstr(back, "<|im"));
    free(back);
    free(ids);
    ri_tokenizer_free(tok);
}

typedef struct thread_job {
    const ri_tokenizer *tok;
    char result[8192];
} thread_job;

static void *tokenize_thread(void *arg)
{
    thread_job *job = arg;
    const char *text = "The quick brown fox, 12345 times! 你好 <|im_end|>";
    for (int i = 0; i < 200; i++) {
        int32_t *ids;
        size_t n;
        if (ri_tokenize_alloc(job->tok, text, strlen(text), RI_TOKENIZE_PARSE_SPECIAL, &ids, &n,
                              NULL) != RF_OK)
            return NULL;
        size_t o = 0;
        for (size_t k = 0; k < n; k++)
            o += (size_t)snprintf(job->result + o, sizeof job->result - o, " %d", (int)ids[k]);
        free(ids);
    }
    return job;
}

Test(fixture, one_tokenizer_in_two_threads)
{
    ri_tokenizer *tok = fixture_tok();
    thread_job a = {.tok = tok}, b = {.tok = tok};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, tokenize_thread, &a);
    pthread_create(&tb, NULL, tokenize_thread, &b);
    void *ra, *rb;
    pthread_join(ta, &ra);
    pthread_join(tb, &rb);
    cr_assert_not_null(ra);
    cr_assert_not_null(rb);
    cr_assert_str_eq(a.result, b.result);
    ri_tokenizer_free(tok);
}

Test(errors, no_tokenizer_and_unsupported_model)
{
    rf_error err = {0};
    rf_model *m = rf_model_new(RF_FORMAT_GGUF, &err);
    cr_assert_null(ri_tokenizer_from_model(m, &err));
    cr_assert_eq(err.status, RF_ERR_NOT_FOUND);
    rf_model_free(m);
    m = make_model(NULL, 0, NULL, "qwen2");
    rf_model_tokenizer_mut(m)->model = "llama";
    cr_assert_null(ri_tokenizer_from_model(m, &err));
    cr_assert_eq(err.status, RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "llama"), "%s", err.message);
    rf_model_free(m);
    cr_assert_null(ri_tokenizer_from_model(NULL, &err));
    cr_assert_eq(err.status, RF_ERR_ARGUMENT);
}
