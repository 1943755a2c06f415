/* Building a tokenizer from the model view (vocabulary and byte pieces, the merge rank table,
 * the added tokens, the pre-tokenizer regex, special ids) and the vocabulary queries.
 * Not for: encoding (encode.c), decoding (detok.c), chat templates (chat.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tokenizer_internal.h"

/* ---- the GPT-2 byte map (docs/tokenizer.md, "Byte-level mapping") ------------------------- */

/* Bytes that stand for themselves: the printable ASCII and Latin-1 ranges. The 68 others map,
 * in increasing byte order, to U+0100, U+0101, ... (U+0120 'Ġ' is the space). */
static bool byte_is_self(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

static void byte_map(uint32_t cp_of_byte[256], int16_t byte_of_cp[0x144])
{
    uint32_t next = 0x100;
    for (unsigned i = 0; i < 0x144; i++)
        byte_of_cp[i] = -1;
    for (unsigned b = 0; b < 256; b++) {
        cp_of_byte[b] = byte_is_self(b) ? b : next++;
        byte_of_cp[cp_of_byte[b]] = (int16_t)b;
    }
}

/* ---- hashing ------------------------------------------------------------------------------ */

static uint64_t hash_bytes(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3u;
    h ^= h >> 32;
    return h * 0x9E3779B97F4A7C15u;
}

static uint64_t hash_key(uint64_t key)
{
    key ^= key >> 31;
    key *= 0x9E3779B97F4A7C15u;
    return key ^ key >> 29;
}

static size_t table_size(size_t n)
{
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    return size;
}

static const char *vocab_text(const ri_tokenizer *tok, size_t id)
{
    return tok->text_arena + tok->text_off[id];
}

/* A slot of the vocabulary table: the high 32 bits of the string's hash (compared before the
 * string itself) and id + 1; 0 is empty. */
static uint64_t make_slot(uint64_t hash, size_t id) { return (hash >> 32) << 32 | (id + 1); }

/* Id of the vocabulary entry text[0..len), or -1. */
static int32_t vocab_find(const ri_tokenizer *tok, const char *text, size_t len)
{
    uint64_t h = hash_bytes(text, len);
    for (size_t i = h & tok->vocab_mask;; i = (i + 1) & tok->vocab_mask) {
        uint64_t slot = tok->vocab_slots[i];
        if (slot == 0)
            return -1;
        if (slot >> 32 != h >> 32)
            continue;
        const char *t = vocab_text(tok, (uint32_t)slot - 1);
        if (memcmp(t, text, len) == 0 && t[len] == '\0')
            return (int32_t)((uint32_t)slot - 1);
    }
}

/* Later duplicates replace earlier ones, as llama.cpp's token map does. */
static void vocab_insert(ri_tokenizer *tok, size_t id, size_t len)
{
    const char *text = vocab_text(tok, id);
    uint64_t h = hash_bytes(text, len);
    for (size_t i = h & tok->vocab_mask;; i = (i + 1) & tok->vocab_mask) {
        uint64_t slot = tok->vocab_slots[i];
        if (slot == 0 ||
            (slot >> 32 == h >> 32 && strcmp(vocab_text(tok, (uint32_t)slot - 1), text) == 0)) {
            tok->vocab_slots[i] = make_slot(h, id);
            return;
        }
    }
}

/* Inserts a merge rule unless the pair is already there (the lower rank wins). */
static void merge_insert(ri_tokenizer *tok, int32_t left, int32_t right, uint32_t rank,
                         int32_t merged)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = hash_key(key) & tok->merge_mask;
    for (;; i = (i + 1) & tok->merge_mask) {
        tok_merge *m = &tok->merges[i];
        if (m->key == key)
            return;
        if (m->key == TOK_MERGE_EMPTY) {
            m->key = key;
            m->rank = rank;
            m->merged = merged;
            tok->n_merges++;
            return;
        }
    }
}

/* ---- pieces ------------------------------------------------------------------------------- */

/* The bytes of normal token text: each code point of the byte map back to its byte; any other
 * code point is kept as its UTF-8 (Hugging Face's ByteLevel decoder does the same). A token
 * "<0xHH>" of type BYTE is the byte HH. */
static size_t decode_piece(const char *text, rf_token_type type, const int16_t byte_of_cp[0x144],
                           char *out)
{
    size_t len = strlen(text), n = 0;
    switch (type) {
    case RF_TOKEN_NORMAL:
    case RF_TOKEN_UNKNOWN: break;
    case RF_TOKEN_CONTROL:
    case RF_TOKEN_USER_DEFINED: memcpy(out, text, len); return len;
    case RF_TOKEN_UNUSED: return 0;
    case RF_TOKEN_BYTE: {
        unsigned v;
        if (len == 6 && sscanf(text, "<0x%2x>", &v) == 1) {
            out[0] = (char)v;
            return 1;
        }
        break;
    }
    }
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; i < len;) {
        size_t bad;
        bool incomplete;
        size_t cl = tok_utf8_next(s + i, len - i, &bad, &incomplete);
        if (cl == 0) { /* not UTF-8: copied as is */
            out[n++] = (char)s[i++];
            continue;
        }
        uint32_t cp = tok_utf8_decode(s + i, cl);
        if (cp < 0x144 && byte_of_cp[cp] >= 0)
            out[n++] = (char)byte_of_cp[cp];
        else {
            memcpy(out + n, s + i, cl);
            n += cl;
        }
        i += cl;
    }
    return n;
}

/* ---- special tokens ----------------------------------------------------------------------- */

static bool looks_like_control(const char *t)
{
    size_t n = strlen(t);
    return n >= 4 && strncmp(t, "<|", 2) == 0 && strcmp(t + n - 2, "|>") == 0;
}

/* End-of-turn tokens in order of preference, and the other end-of-generation texts, after
 * llama.cpp's vocabulary loader (llama-vocab.cpp, the special_eot_id and special_eog_ids
 * searches); docs/tokenizer.md lists them. */
static const char *const EOT_TEXTS[] = {"<|im_end|>",    "<|eot_id|>",    "<|end|>",
                                        "<end_of_turn>", "<|endoftext|>", NULL};
static const char *const EOG_TEXTS[] = {"<|im_end|>",      "<|eot_id|>",    "<|end|>",
                                        "<end_of_turn>",   "<|endoftext|>", "<|eom_id|>",
                                        "<|end_of_text|>", "<|fim_pad|>",   "<|repo_name|>",
                                        "<|fim_repo|>",    "<|file_sep|>",  NULL};
/* Texts llama.cpp always treats as control tokens, whatever the file says (FIM markers and the
 * end-of-generation texts above). */
static const char *const FORCED_CONTROL[] = {"<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                                             NULL};

static bool in_list(const char *const *list, const char *t)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], t) == 0)
            return true;
    return false;
}

/* Sort key of an added token: grouped by first byte, longest first, then by id. */
typedef struct special_key {
    uint8_t first;
    size_t len;
    int32_t id;
} special_key;

static int cmp_special(const void *a, const void *b)
{
    const special_key *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* ---- normalizer and pre-tokenizer --------------------------------------------------------- */

/* Whether a tokenizer.json normalizer asks for NFC; RF_ERR_UNSUPPORTED for any other one. */
static rf_status normalizer_nfc(const cJSON *n, bool *nfc, rf_error *err)
{
    if (!n || cJSON_IsNull(n))
        return RF_OK;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(n, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "NFC") == 0) {
        *nfc = true;
        return RF_OK;
    }
    if (cJSON_IsString(type) && strcmp(type->valuestring, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        const cJSON *item;
        cJSON_ArrayForEach(item, list)
        {
            rf_status st = normalizer_nfc(item, nfc, err);
            if (st != RF_OK)
                return st;
        }
        return RF_OK;
    }
    return rf_error_set(err, RF_ERR_UNSUPPORTED,
                        "tokenizer.json: normalizer %s is not supported (only NFC)",
                        cJSON_IsString(type) ? type->valuestring : "(without a type)");
}

/* The normalizer of the tokenizer.json kept in the metadata ("hf.tokenizer.json", compact
 * JSON): only that value is parsed, not the whole multi-megabyte file. A key "normalizer" with
 * its quotes unescaped cannot occur inside a JSON string, so the first one found is the key. */
static rf_status hf_normalizer(const rf_kv *kv, bool *nfc, rf_error *err)
{
    const char *json = kv->value.as.str.data;
    const char *key = strstr(json, "\"normalizer\":");
    if (!key)
        return RF_OK;
    cJSON *n = cJSON_ParseWithOpts(key + strlen("\"normalizer\":"), NULL, false);
    if (!n)
        return rf_error_set(err, RF_ERR_FORMAT, "tokenizer.json: the normalizer is not valid JSON");
    rf_status st = normalizer_nfc(n, nfc, err);
    cJSON_Delete(n);
    return st;
}

/* The Qwen2 pre-tokenizer split, with \s spelled as the Unicode White_Space property (what
 * Oniguruma's \s in tokenizers and llama.cpp's whitespace table match; PCRE2's own \s differs on
 * U+180E). Two spellings of the contractions: tokenizer.json's case-insensitive group, which
 * also folds U+017F to 's', and llama.cpp's explicit classes (docs/tokenizer.md). */
#define WS "\\p{White_Space}"
#define QWEN2_REST                                                                                 \
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|" WS "*[\\r\\n]+|" WS \
    "+(?!\\P{White_Space})|" WS "+"
static const char QWEN2_HF[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)" QWEN2_REST;
static const char QWEN2_LLAMA[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])" QWEN2_REST;
static const char GPT2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS
                           "\\p{L}\\p{N}]+|" WS "+(?!\\P{White_Space})|" WS "+";

static rf_status compile_regex(ri_tokenizer *tok, const char *pattern, rf_error *err)
{
    int code;
    PCRE2_SIZE offset;
    tok->regex = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                               &code, &offset, NULL);
    if (!tok->regex) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return rf_error_set(err, RF_ERR_UNSUPPORTED,
                            "pre-tokenizer regex does not compile at offset %zu: %s",
                            (size_t)offset, (const char *)msg);
    }
    const char *no_jit = getenv("ROSETTA_PCRE2_NO_JIT");
    tok->jit = !(no_jit && strcmp(no_jit, "1") == 0) &&
               pcre2_jit_compile(tok->regex, PCRE2_JIT_COMPLETE) == 0;
    return RF_OK;
}

/* ---- building ----------------------------------------------------------------------------- */

static int32_t config_id(int64_t id, size_t n_vocab)
{
    return id >= 0 && (uint64_t)id < n_vocab ? (int32_t)id : -1;
}

static rf_status build_vocab(ri_tokenizer *tok, const rf_tokenizer *src, rf_error *err)
{
    size_t n = tok->n_vocab, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!src->tokens[i])
            return rf_error_set(err, RF_ERR_FORMAT, "tokenizer: token %zu has no text", i);
        total += strlen(src->tokens[i]) + 1;
    }
    tok->text_arena = malloc(total);
    tok->text_off = malloc(n * sizeof *tok->text_off);
    tok->types = malloc(n);
    /* a decoded piece is never longer than its text (each code point gives at most its own
     * bytes) */
    tok->piece_arena = malloc(total);
    tok->piece_off = malloc((n + 1) * sizeof *tok->piece_off);
    tok->vocab_mask = table_size(n) - 1;
    tok->vocab_slots = calloc(tok->vocab_mask + 1, sizeof *tok->vocab_slots);
    if (!tok->text_arena || !tok->text_off || !tok->types || !tok->piece_arena || !tok->piece_off ||
        !tok->vocab_slots)
        return rf_error_set(err, RF_ERR_NOMEM, "tokenizer: out of memory for %zu tokens", n);
    uint32_t cp_of_byte[256];
    int16_t byte_of_cp[0x144];
    byte_map(cp_of_byte, byte_of_cp);
    size_t off = 0, poff = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = src->tokens[i];
        size_t len = strlen(t);
        memcpy(tok->text_arena + off, t, len + 1);
        tok->text_off[i] = off;
        off += len + 1;
        int32_t type = src->token_types ? src->token_types[i] : RF_TOKEN_NORMAL;
        if (type < RF_TOKEN_NORMAL || type > RF_TOKEN_BYTE)
            type = RF_TOKEN_NORMAL;
        if (!src->token_types && looks_like_control(t))
            type = RF_TOKEN_CONTROL;
        if (in_list(EOG_TEXTS, t) || in_list(FORCED_CONTROL, t))
            type = RF_TOKEN_CONTROL;
        tok->types[i] = (uint8_t)type;
        tok->piece_off[i] = poff;
        poff += decode_piece(t, (rf_token_type)type, byte_of_cp, tok->piece_arena + poff);
        tok->piece_arena[poff++] = '\0';
        if (len)
            vocab_insert(tok, i, len);
    }
    tok->piece_off[n] = poff;
    for (unsigned b = 0; b < 256; b++) {
        char utf8[4];
        size_t len = tok_utf8_encode(cp_of_byte[b], utf8);
        tok->byte_token[b] = vocab_find(tok, utf8, len);
    }
    return RF_OK;
}

static rf_status build_merges(ri_tokenizer *tok, const rf_tokenizer *src, rf_error *err)
{
    tok->merge_mask = table_size(src->n_merges) - 1;
    tok->merges = malloc((tok->merge_mask + 1) * sizeof *tok->merges);
    if (!tok->merges)
        return rf_error_set(err, RF_ERR_NOMEM, "tokenizer: out of memory for %llu merges",
                            (unsigned long long)src->n_merges);
    for (size_t i = 0; i <= tok->merge_mask; i++)
        tok->merges[i].key = TOK_MERGE_EMPTY;
    char *joined = NULL;
    size_t joined_cap = 0;
    for (uint64_t r = 0; r < src->n_merges; r++) {
        const char *m = src->merges[r];
        const char *space = m && m[0] ? strchr(m + 1, ' ') : NULL;
        int32_t left = -1, right = -1, merged = -1;
        if (space) {
            size_t a = (size_t)(space - m), b = strlen(space + 1);
            left = vocab_find(tok, m, a);
            right = vocab_find(tok, space + 1, b);
            if (a + b + 1 > joined_cap) {
                joined_cap = 2 * (a + b + 1);
                char *p = realloc(joined, joined_cap);
                if (!p) {
                    free(joined);
                    return rf_error_set(err, RF_ERR_NOMEM, "tokenizer: out of memory");
                }
                joined = p;
            }
            memcpy(joined, m, a);
            memcpy(joined + a, space + 1, b);
            merged = vocab_find(tok, joined, a + b);
        }
        if (left < 0 || right < 0 || merged < 0 || r > UINT32_MAX) {
            tok->n_merges_skipped++;
            continue;
        }
        merge_insert(tok, left, right, (uint32_t)r, merged);
    }
    free(joined);
    return RF_OK;
}

static rf_status build_specials(ri_tokenizer *tok, rf_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < tok->n_vocab; i++)
        if (ri_token_is_special(tok, (int32_t)i) && vocab_text(tok, i)[0])
            n++;
    special_key *keys = malloc((n ? n : 1) * sizeof *keys);
    tok->special_ids = malloc((n ? n : 1) * sizeof *tok->special_ids);
    if (!keys || !tok->special_ids) {
        free(keys);
        return rf_error_set(err, RF_ERR_NOMEM, "tokenizer: out of memory");
    }
    n = 0;
    for (size_t i = 0; i < tok->n_vocab; i++) {
        const char *t = vocab_text(tok, i);
        if (ri_token_is_special(tok, (int32_t)i) && t[0])
            keys[n++] = (special_key){(uint8_t)t[0], strlen(t), (int32_t)i};
    }
    qsort(keys, n, sizeof *keys, cmp_special);
    size_t k = 0;
    for (unsigned b = 0; b < 256; b++) {
        tok->special_start[b] = (uint32_t)k;
        while (k < n && keys[k].first == b)
            k++;
    }
    tok->special_start[256] = (uint32_t)n;
    for (size_t i = 0; i < n; i++)
        tok->special_ids[i] = keys[i].id;
    free(keys);
    return RF_OK;
}

static rf_status build_ids(ri_tokenizer *tok, const rf_model_config *cfg, rf_error *err)
{
    size_t n = tok->n_vocab;
    tok->bos = config_id(cfg->bos_token_id, n);
    tok->eos = config_id(cfg->eos_token_id, n);
    tok->pad = config_id(cfg->pad_token_id, n);
    tok->eot = -1;
    for (size_t i = 0; EOT_TEXTS[i] && tok->eot < 0; i++)
        tok->eot = ri_token_id(tok, EOT_TEXTS[i]);
    tok->eog = malloc((2 + sizeof EOG_TEXTS / sizeof EOG_TEXTS[0]) * sizeof *tok->eog);
    if (!tok->eog)
        return rf_error_set(err, RF_ERR_NOMEM, "tokenizer: out of memory");
    int32_t cand[2 + sizeof EOG_TEXTS / sizeof EOG_TEXTS[0]];
    size_t nc = 0;
    cand[nc++] = tok->eos;
    cand[nc++] = tok->eot;
    for (size_t i = 0; EOG_TEXTS[i]; i++)
        cand[nc++] = ri_token_id(tok, EOG_TEXTS[i]);
    qsort(cand, nc, sizeof *cand, cmp_i32);
    for (size_t i = 0; i < nc; i++)
        if (cand[i] >= 0 && (tok->n_eog == 0 || tok->eog[tok->n_eog - 1] != cand[i]))
            tok->eog[tok->n_eog++] = cand[i];
    return RF_OK;
}

static rf_status build(ri_tokenizer *tok, const rf_model *model, rf_error *err)
{
    const rf_tokenizer *src = rf_model_tokenizer(model);
    const rf_model_config *cfg = rf_model_config_get(model);
    if (!src || src->n_tokens == 0 || !src->tokens)
        return rf_error_set(err, RF_ERR_NOT_FOUND, "the model carries no tokenizer vocabulary");
    if (!src->model || strcmp(src->model, "gpt2") != 0)
        return rf_error_set(err, RF_ERR_UNSUPPORTED,
                            "tokenizer model %s is not supported (only gpt2: byte-level BPE)",
                            src->model ? src->model : "(none)");
    if (src->n_tokens > INT32_MAX - 1)
        return rf_error_set(err, RF_ERR_LIMIT, "tokenizer: %llu tokens, at most %d supported",
                            (unsigned long long)src->n_tokens, INT32_MAX - 1);
    const rf_kv *hf = rf_model_find_kv(model, "hf.tokenizer.json");
    if (hf && hf->value.type != RF_VALUE_JSON && hf->value.type != RF_VALUE_STRING)
        hf = NULL;
    const char *pattern;
    if (src->pre && strcmp(src->pre, "qwen2") == 0) {
        tok->pre = "qwen2";
        pattern = hf ? QWEN2_HF : QWEN2_LLAMA;
    } else if (src->pre && (strcmp(src->pre, "gpt2") == 0 || strcmp(src->pre, "gpt-2") == 0)) {
        tok->pre = "gpt2";
        pattern = GPT2;
    } else if (!src->pre && !hf && cfg->architecture && strcmp(cfg->architecture, "qwen2") == 0) {
        tok->pre = "qwen2"; /* the Qwen2 family defines it (docs/tokenizer.md) */
        pattern = QWEN2_LLAMA;
    } else
        return rf_error_set(err, RF_ERR_UNSUPPORTED,
                            "pre-tokenizer %s is not supported (supported: qwen2, gpt2)",
                            src->pre ? src->pre : "(none; not the Qwen2 split)");
    rf_status st;
    if (hf && (st = hf_normalizer(hf, &tok->nfc, err)) != RF_OK)
        return st;
    tok->n_vocab = (size_t)src->n_tokens;
    tok->add_bos = src->add_bos;
    if ((st = build_vocab(tok, src, err)) != RF_OK || (st = build_merges(tok, src, err)) != RF_OK ||
        (st = build_specials(tok, err)) != RF_OK || (st = build_ids(tok, cfg, err)) != RF_OK ||
        (st = compile_regex(tok, pattern, err)) != RF_OK)
        return st;
    if (cfg->chat_template && !(tok->chat_template = strdup(cfg->chat_template)))
        return rf_error_set(err, RF_ERR_NOMEM, "tokenizer: out of memory");
    return RF_OK;
}

ri_tokenizer *ri_tokenizer_from_model(const rf_model *model, rf_error *err)
{
    if (!model) {
        rf_error_set(err, RF_ERR_ARGUMENT, "ri_tokenizer_from_model: model is NULL");
        return NULL;
    }
    ri_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) {
        rf_error_set(err, RF_ERR_NOMEM, "tokenizer: out of memory");
        return NULL;
    }
    if (build(tok, model, err) != RF_OK) {
        ri_tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

void ri_tokenizer_free(ri_tokenizer *tok)
{
    if (!tok)
        return;
    free(tok->text_arena);
    free(tok->text_off);
    free(tok->piece_arena);
    free(tok->piece_off);
    free(tok->types);
    free(tok->vocab_slots);
    free(tok->merges);
    free(tok->special_ids);
    free(tok->eog);
    free(tok->chat_template);
    pcre2_code_free(tok->regex);
    free(tok);
}

/* ---- queries ------------------------------------------------------------------------------ */

static bool in_range(const ri_tokenizer *tok, int32_t id)
{
    return tok && id >= 0 && (size_t)id < tok->n_vocab;
}

size_t ri_n_vocab(const ri_tokenizer *tok) { return tok ? tok->n_vocab : 0; }
int32_t ri_token_bos(const ri_tokenizer *tok) { return tok ? tok->bos : -1; }
int32_t ri_token_eos(const ri_tokenizer *tok) { return tok ? tok->eos : -1; }
int32_t ri_token_eot(const ri_tokenizer *tok) { return tok ? tok->eot : -1; }
int32_t ri_token_pad(const ri_tokenizer *tok) { return tok ? tok->pad : -1; }
bool ri_tokenizer_add_bos(const ri_tokenizer *tok) { return tok && tok->add_bos; }
bool ri_tokenizer_normalizes(const ri_tokenizer *tok) { return tok && tok->nfc; }
const char *ri_tokenizer_pre(const ri_tokenizer *tok) { return tok ? tok->pre : NULL; }
const char *ri_tokenizer_chat_template(const ri_tokenizer *tok)
{
    return tok ? tok->chat_template : NULL;
}

rf_token_type ri_token_type(const ri_tokenizer *tok, int32_t id)
{
    return in_range(tok, id) ? (rf_token_type)tok->types[id] : (rf_token_type)0;
}

bool ri_token_is_control(const ri_tokenizer *tok, int32_t id)
{
    return in_range(tok, id) && tok->types[id] == RF_TOKEN_CONTROL;
}

bool ri_token_is_special(const ri_tokenizer *tok, int32_t id)
{
    return in_range(tok, id) &&
           (tok->types[id] == RF_TOKEN_CONTROL || tok->types[id] == RF_TOKEN_USER_DEFINED);
}

bool ri_token_is_eog(const ri_tokenizer *tok, int32_t id)
{
    if (!in_range(tok, id))
        return false;
    for (size_t i = 0; i < tok->n_eog; i++)
        if (tok->eog[i] == id)
            return true;
    return false;
}

size_t ri_eog_tokens(const ri_tokenizer *tok, int32_t *ids, size_t cap)
{
    if (!tok)
        return 0;
    for (size_t i = 0; i < tok->n_eog && i < cap; i++)
        ids[i] = tok->eog[i];
    return tok->n_eog;
}

int32_t ri_token_id(const ri_tokenizer *tok, const char *text)
{
    if (!tok || !text || !text[0])
        return -1;
    return vocab_find(tok, text, strlen(text));
}

const char *ri_token_text(const ri_tokenizer *tok, int32_t id)
{
    return in_range(tok, id) ? vocab_text(tok, (size_t)id) : NULL;
}

const char *ri_token_piece(const ri_tokenizer *tok, int32_t id, size_t *len)
{
    if (!in_range(tok, id)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = tok->piece_off[id + 1] - tok->piece_off[id] - 1;
    return tok->piece_arena + tok->piece_off[id];
}
