/* Hugging Face tokenizer.json and tokenizer_config.json <-> the model's tokenizer view: tokens by
 * id (vocabulary plus added tokens), merges in "a b" form, token types as llama.cpp's converter
 * assigns them, the pre-tokenizer name, BOS flag and chat template; and the builders that write
 * these files for models that did not come with them (byte-level BPE, as Qwen2 uses).
 *
 * Not for: tokenizing text (libinfer). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "hf_internal.h"

/* Qwen2's pre-tokenizer split pattern as tokenizer.json spells it (docs/tokenizer.md). */
/* clang-format off */
static const char QWEN2_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* clang-format on */

/* Most token ids accepted; also bounded by the file length before anything is allocated. */
#define MAX_TOKENS (1u << 24)

/* llama.cpp's converter marks added tokens that look like control markers CONTROL even when the
 * tokenizer does not flag them special. */
static bool looks_special(const char *t)
{
    size_t n = strlen(t);
    if (strcmp(t, "<pad>") == 0 || strcmp(t, "<mask>") == 0 || strcmp(t, "<2mass>") == 0 ||
        strcmp(t, "[@BOS@]") == 0)
        return true;
    if (n >= 4 && strncmp(t, "<|", 2) == 0 && strcmp(t + n - 2, "|>") == 0)
        return true;
    /* "<｜" ... "｜>" (full-width vertical bar U+FF5C, as deepseek writes them) */
    if (n >= 8 && strncmp(t, "<\xef\xbd\x9c", 4) == 0 && strcmp(t + n - 4, "\xef\xbd\x9c>") == 0)
        return true;
    if (n >= 8 && strncmp(t, "<unused", 7) == 0 && t[n - 1] == '>')
        return true;
    return false;
}

static bool has_byte_level(const cJSON *node)
{
    if (!node)
        return false;
    const cJSON *type = rfi_hf_json_get(node, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "ByteLevel") == 0)
        return true;
    const cJSON *list = rfi_hf_json_get(node, "pretokenizers");
    if (!list)
        list = rfi_hf_json_get(node, "decoders");
    if (cJSON_IsArray(list))
        for (const cJSON *c = list->child; c; c = c->next)
            if (has_byte_level(c))
                return true;
    return false;
}

static bool has_qwen2_split(const cJSON *node)
{
    if (!node)
        return false;
    const cJSON *type = rfi_hf_json_get(node, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "Split") == 0) {
        const cJSON *regex = rfi_hf_json_get(rfi_hf_json_get(node, "pattern"), "Regex");
        return cJSON_IsString(regex) && strcmp(regex->valuestring, QWEN2_REGEX) == 0;
    }
    const cJSON *list = rfi_hf_json_get(node, "pretokenizers");
    if (cJSON_IsArray(list))
        for (const cJSON *c = list->child; c; c = c->next)
            if (has_qwen2_split(c))
                return true;
    return false;
}

typedef struct tok_ctx {
    rf_model *m;
    const char *path;
    rf_error *err;
    const char **tokens;
    int32_t *types;
    uint64_t n;
} tok_ctx;

/* Reads a token id. what/what_arg name the entry in messages ("model.vocab[\"%s\"]"). */
static rf_status read_id(tok_ctx *c, const cJSON *item, const char *what, const char *what_arg,
                         uint64_t limit, uint64_t *out)
{
    hf_num r = rfi_hf_json_u64(item, out);
    if (r == HF_NUM_OK && *out < limit)
        return RF_OK;
    char where[300];
    snprintf(where, sizeof where, what, what_arg);
    if (r != HF_NUM_OK)
        return rf_error_set(c->err, RF_ERR_FORMAT, "%s: %s: id %s, expected a non-negative integer",
                            c->path, where,
                            r == HF_NUM_NOT_NUMBER ? "is not a number" : rfi_hf_num_problem(r));
    return rf_error_set(c->err, RF_ERR_LIMIT,
                        "%s: %s: id %llu is too large (at most %llu tokens for a file of this "
                        "size)",
                        c->path, where, (unsigned long long)*out, (unsigned long long)limit);
}

static rf_status place(tok_ctx *c, uint64_t id, const char *text, int32_t type, bool added)
{
    if (c->tokens[id]) {
        if (strcmp(c->tokens[id], text) == 0) {
            c->types[id] = type;
            return RF_OK;
        }
        if (!added)
            return rf_error_set(c->err, RF_ERR_FORMAT,
                                "%s: model.vocab: id %llu is used by both "
                                "\"%.100s\" and \"%.100s\"",
                                c->path, (unsigned long long)id, c->tokens[id], text);
        rf_model_add_warning(c->m, "%s: added token \"%.100s\" replaces \"%.100s\" at id %llu",
                             c->path, text, c->tokens[id], (unsigned long long)id);
    }
    c->tokens[id] = rf_model_strdup(c->m, text);
    if (!c->tokens[id])
        return rf_error_set(c->err, RF_ERR_NOMEM, "%s: out of memory", c->path);
    c->types[id] = type;
    return RF_OK;
}

rf_status rfi_hf_tokenizer_read(rf_model *m, const char *path, const char *text, size_t len,
                                rf_error *err)
{
    cJSON *root = rfi_hf_json_parse(text, len, 0, err);
    if (!root) {
        rf_error_prefix(err, "%s", path);
        return err ? err->status : RF_ERR_FORMAT;
    }
    tok_ctx c = {m, path, err, NULL, NULL, 0};
    rf_status st = RF_OK;
    const cJSON *model = rfi_hf_json_get(root, "model");
    if (!cJSON_IsObject(model)) {
        st = rf_error_set(err, RF_ERR_FORMAT, "%s: \"model\" is %s, expected an object", path,
                          rfi_hf_json_kind(model));
        goto done;
    }
    const cJSON *type = rfi_hf_json_get(model, "type");
    const cJSON *vocab = rfi_hf_json_get(model, "vocab");
    const cJSON *merges = rfi_hf_json_get(model, "merges");
    const cJSON *added = rfi_hf_json_get(root, "added_tokens");
    const char *type_name = cJSON_IsString(type) ? type->valuestring : (merges ? "BPE" : NULL);
    bool unigram = type_name && strcmp(type_name, "Unigram") == 0;
    if (!type_name || (unigram ? !cJSON_IsArray(vocab) : !cJSON_IsObject(vocab))) {
        st = rf_error_set(err, RF_ERR_UNSUPPORTED,
                          "%s: model.vocab is %s for model type %s; "
                          "expected an object of token -> id (or a list for Unigram)",
                          path, rfi_hf_json_kind(vocab), type_name ? type_name : "(none)");
        goto done;
    }
    if (added && !cJSON_IsArray(added)) {
        st = rf_error_set(err, RF_ERR_FORMAT, "%s: \"added_tokens\" is %s, expected an array", path,
                          rfi_hf_json_kind(added));
        goto done;
    }
    /* Never allocate for an id the file could not describe: every token needs a few bytes. */
    uint64_t limit = len < MAX_TOKENS ? len : MAX_TOKENS;
    uint64_t max_id = 0, id;
    bool any = false;
    if (unigram) {
        max_id = (uint64_t)cJSON_GetArraySize(vocab);
        any = max_id > 0;
        if (any)
            max_id--;
    } else
        for (const cJSON *t = vocab->child; t; t = t->next) {
            if ((st = read_id(&c, t, "model.vocab[\"%.200s\"]", t->string, limit, &id)) != RF_OK)
                goto done;
            if (id > max_id || !any)
                max_id = id;
            any = true;
        }
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        const cJSON *aid = rfi_hf_json_get(a, "id");
        const cJSON *content = rfi_hf_json_get(a, "content");
        if (!cJSON_IsString(content)) {
            st = rf_error_set(err, RF_ERR_FORMAT,
                              "%s: added_tokens: \"content\" is %s, expected a string", path,
                              rfi_hf_json_kind(content));
            goto done;
        }
        if ((st = read_id(&c, aid, "added_tokens \"%.200s\"", content->valuestring, limit, &id)) !=
            RF_OK)
            goto done;
        if (id > max_id || !any)
            max_id = id;
        any = true;
    }
    if (!any) {
        st = rf_error_set(err, RF_ERR_FORMAT, "%s: the vocabulary is empty", path);
        goto done;
    }
    c.n = max_id + 1;
    c.tokens = rf_model_alloc_array(m, c.n, sizeof *c.tokens);
    c.types = rf_model_alloc_array(m, c.n, sizeof *c.types);
    if (!c.tokens || !c.types) {
        st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory for %llu tokens", path,
                          (unsigned long long)c.n);
        goto done;
    }
    if (unigram) {
        id = 0;
        for (const cJSON *t = vocab->child; t; t = t->next, id++) {
            const cJSON *piece = cJSON_IsArray(t) ? t->child : NULL;
            if (!cJSON_IsString(piece)) {
                st = rf_error_set(err, RF_ERR_FORMAT,
                                  "%s: model.vocab[%llu] is not a [piece, score] pair", path,
                                  (unsigned long long)id);
                goto done;
            }
            if ((st = place(&c, id, piece->valuestring, RF_TOKEN_NORMAL, false)) != RF_OK)
                goto done;
        }
    } else
        for (const cJSON *t = vocab->child; t; t = t->next) {
            rfi_hf_json_u64(t, &id);
            if ((st = place(&c, id, t->string, RF_TOKEN_NORMAL, false)) != RF_OK)
                goto done;
        }
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        const cJSON *content = rfi_hf_json_get(a, "content");
        rfi_hf_json_u64(rfi_hf_json_get(a, "id"), &id);
        bool special = cJSON_IsTrue(rfi_hf_json_get(a, "special"));
        int32_t tt = special || looks_special(content->valuestring) ? RF_TOKEN_CONTROL
                                                                    : RF_TOKEN_USER_DEFINED;
        if ((st = place(&c, id, content->valuestring, tt, true)) != RF_OK)
            goto done;
    }
    uint64_t holes = 0;
    for (uint64_t i = 0; i < c.n; i++)
        if (!c.tokens[i]) {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%llu]", (unsigned long long)i);
            c.tokens[i] = rf_model_strdup(m, pad);
            c.types[i] = RF_TOKEN_UNUSED;
            if (!c.tokens[i]) {
                st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
                goto done;
            }
            holes++;
        }
    if (holes)
        rf_model_add_warning(m, "%s: %llu token ids have no token; filled with [PAD<id>]", path,
                             (unsigned long long)holes);
    /* merges: "a b" strings (older files) or ["a", "b"] pairs (tokenizers >= 0.20) */
    uint64_t n_merges = 0;
    const char **merge_list = NULL;
    if (merges && !cJSON_IsNull(merges)) {
        if (!cJSON_IsArray(merges)) {
            st = rf_error_set(err, RF_ERR_FORMAT, "%s: model.merges is %s, expected an array", path,
                              rfi_hf_json_kind(merges));
            goto done;
        }
        n_merges = (uint64_t)cJSON_GetArraySize(merges);
        merge_list = rf_model_alloc_array(m, n_merges ? n_merges : 1, sizeof *merge_list);
        if (!merge_list) {
            st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory for merges", path);
            goto done;
        }
        uint64_t i = 0;
        for (const cJSON *mg = merges->child; mg; mg = mg->next, i++) {
            if (cJSON_IsString(mg))
                merge_list[i] = rf_model_strdup(m, mg->valuestring);
            else if (cJSON_IsArray(mg) && cJSON_GetArraySize(mg) == 2 &&
                     cJSON_IsString(mg->child) && cJSON_IsString(mg->child->next)) {
                size_t a = strlen(mg->child->valuestring), b = strlen(mg->child->next->valuestring);
                char *s = rf_model_alloc(m, a + b + 2);
                if (s) {
                    memcpy(s, mg->child->valuestring, a);
                    s[a] = ' ';
                    memcpy(s + a + 1, mg->child->next->valuestring, b + 1);
                }
                merge_list[i] = s;
            } else {
                st = rf_error_set(err, RF_ERR_FORMAT,
                                  "%s: model.merges[%llu] is %s, expected "
                                  "\"a b\" or [\"a\", \"b\"]",
                                  path, (unsigned long long)i, rfi_hf_json_kind(mg));
                goto done;
            }
            if (!merge_list[i]) {
                st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory for merges", path);
                goto done;
            }
        }
    }
    rf_tokenizer *tok = rf_model_tokenizer_mut(m);
    if (!tok) {
        st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    bool byte_level = has_byte_level(rfi_hf_json_get(root, "pre_tokenizer")) ||
                      has_byte_level(rfi_hf_json_get(root, "decoder"));
    if (strcmp(type_name, "BPE") == 0 && byte_level)
        tok->model = "gpt2";
    else {
        char *lower = rf_model_strdup(m, type_name);
        if (lower)
            for (char *p = lower; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
        tok->model = lower;
    }
    tok->pre = has_qwen2_split(rfi_hf_json_get(root, "pre_tokenizer")) ? "qwen2" : NULL;
    tok->n_tokens = c.n;
    tok->tokens = c.tokens;
    tok->token_types = c.types;
    tok->n_merges = n_merges;
    tok->merges = merge_list;
done:
    cJSON_Delete(root);
    return st;
}

/* The id of a token given by its text, or -1. */
static int64_t find_token(const rf_tokenizer *tok, const char *text)
{
    if (!tok || !text)
        return -1;
    for (uint64_t i = 0; i < tok->n_tokens; i++)
        if (strcmp(tok->tokens[i], text) == 0)
            return (int64_t)i;
    return -1;
}

/* bos_token / eos_token / pad_token are a string or {"content": string}. */
static const char *token_text(const cJSON *item)
{
    if (cJSON_IsString(item))
        return item->valuestring;
    const cJSON *content = rfi_hf_json_get(item, "content");
    return cJSON_IsString(content) ? content->valuestring : NULL;
}

rf_status rfi_hf_tokenizer_config_read(rf_model *m, const char *path, const char *text, size_t len,
                                       rf_error *err)
{
    cJSON *root = rfi_hf_json_parse_object(path, text, len, err);
    if (!root)
        return err ? err->status : RF_ERR_FORMAT;
    rf_status st = RF_OK;
    rf_model_config *cfg = rf_model_config_mut(m);
    rf_tokenizer *tok = rf_model_tokenizer_mut(m);
    if (!tok) {
        st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    const cJSON *add_bos = rfi_hf_json_get(root, "add_bos_token");
    if (add_bos && !cJSON_IsNull(add_bos)) {
        if (!cJSON_IsBool(add_bos)) {
            st = rf_error_set(err, RF_ERR_FORMAT,
                              "%s: \"add_bos_token\" is %s, expected true or false", path,
                              rfi_hf_json_kind(add_bos));
            goto done;
        }
        tok->add_bos = cJSON_IsTrue(add_bos);
    }
    const cJSON *tmpl = rfi_hf_json_get(root, "chat_template");
    const char *chosen = NULL;
    if (cJSON_IsString(tmpl))
        chosen = tmpl->valuestring;
    else if (cJSON_IsArray(tmpl)) /* [{"name": ..., "template": ...}]: the "default" one */
        for (const cJSON *t = tmpl->child; t; t = t->next) {
            const cJSON *name = rfi_hf_json_get(t, "name"), *body = rfi_hf_json_get(t, "template");
            if (!cJSON_IsString(body))
                continue;
            if (!chosen || (cJSON_IsString(name) && strcmp(name->valuestring, "default") == 0))
                chosen = body->valuestring;
        }
    else if (tmpl && !cJSON_IsNull(tmpl)) {
        st = rf_error_set(err, RF_ERR_FORMAT, "%s: \"chat_template\" is %s, expected a string",
                          path, rfi_hf_json_kind(tmpl));
        goto done;
    }
    if (chosen && !(cfg->chat_template = rf_model_strdup(m, chosen))) {
        st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    /* Ids the configs left out, from the special tokens named here. */
    int64_t *ids[] = {&cfg->bos_token_id, &cfg->eos_token_id, &cfg->pad_token_id};
    const char *keys[] = {"bos_token", "eos_token", "pad_token"};
    for (int i = 0; i < 3; i++)
        if (*ids[i] < 0)
            *ids[i] = find_token(tok, token_text(rfi_hf_json_get(root, keys[i])));
done:
    cJSON_Delete(root);
    return st;
}

/* ---- builders ---------------------------------------------------------------------------- */

static bool is_added(int32_t type)
{
    return type == RF_TOKEN_CONTROL || type == RF_TOKEN_USER_DEFINED;
}

/* The GGUF converter pads the vocabulary with "[PAD<id>]" UNUSED tokens: not real tokens. */
static bool is_padding(const rf_tokenizer *tok, uint64_t i)
{
    if (!tok->token_types || tok->token_types[i] != RF_TOKEN_UNUSED)
        return false;
    char pad[32];
    snprintf(pad, sizeof pad, "[PAD%llu]", (unsigned long long)i);
    return strcmp(tok->tokens[i], pad) == 0;
}

static void byte_level(text_buf *b)
{
    rfi_text_buf_puts(b,
                      "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,"
                      "\"use_regex\":false}");
}

bool rfi_hf_tokenizer_build(const rf_model *m, text_buf *b)
{
    const rf_tokenizer *tok = rf_model_tokenizer(m);
    if (!tok || !tok->n_tokens || !tok->model || strcmp(tok->model, "gpt2") != 0)
        return false; /* only byte-level BPE is described here */
    bool qwen2 = tok->pre && strcmp(tok->pre, "qwen2") == 0;
    rfi_text_buf_puts(
        b, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
    bool first = true;
    for (uint64_t i = 0; i < tok->n_tokens; i++) {
        int32_t type = tok->token_types ? tok->token_types[i] : RF_TOKEN_NORMAL;
        if (!is_added(type))
            continue;
        if (!first)
            rfi_text_buf_puts(b, ",");
        first = false;
        rfi_text_buf_printf(b, "{\"id\":%llu,\"content\":", (unsigned long long)i);
        rfi_json_put_cstring(b, tok->tokens[i]);
        rfi_text_buf_printf(b,
                            ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
                            "\"normalized\":false,\"special\":%s}",
                            type == RF_TOKEN_CONTROL ? "true" : "false");
    }
    rfi_text_buf_puts(b, "],\"normalizer\":");
    rfi_text_buf_puts(b, qwen2 ? "{\"type\":\"NFC\"}" : "null");
    rfi_text_buf_puts(b, ",\"pre_tokenizer\":");
    if (qwen2) {
        rfi_text_buf_puts(b, "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
                             "\"pattern\":{\"Regex\":");
        rfi_json_put_cstring(b, QWEN2_REGEX);
        rfi_text_buf_puts(b, "},\"behavior\":\"Isolated\",\"invert\":false},");
        byte_level(b);
        rfi_text_buf_puts(b, "]}");
    } else
        rfi_text_buf_puts(
            b, "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,"
               "\"use_regex\":true}");
    rfi_text_buf_puts(b, ",\"post_processor\":");
    byte_level(b);
    rfi_text_buf_puts(b, ",\"decoder\":");
    byte_level(b);
    rfi_text_buf_puts(b, ",\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
                         "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,"
                         "\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,"
                         "\"vocab\":{");
    first = true;
    for (uint64_t i = 0; i < tok->n_tokens; i++) {
        int32_t type = tok->token_types ? tok->token_types[i] : RF_TOKEN_NORMAL;
        if (is_added(type) || is_padding(tok, i))
            continue;
        if (!first)
            rfi_text_buf_puts(b, ",");
        first = false;
        rfi_json_put_cstring(b, tok->tokens[i]);
        rfi_text_buf_printf(b, ":%llu", (unsigned long long)i);
    }
    rfi_text_buf_puts(b, "},\"merges\":[");
    for (uint64_t i = 0; i < tok->n_merges; i++) {
        const char *mg = tok->merges[i];
        const char *space = strchr(mg, ' ');
        if (i)
            rfi_text_buf_puts(b, ",");
        if (!space) { /* not a pair: keep the string form */
            rfi_json_put_cstring(b, mg);
            continue;
        }
        rfi_text_buf_puts(b, "[");
        rfi_json_put_string(b, mg, (size_t)(space - mg));
        rfi_text_buf_puts(b, ",");
        rfi_json_put_cstring(b, space + 1);
        rfi_text_buf_puts(b, "]");
    }
    rfi_text_buf_puts(b, "]}}");
    return true;
}

bool rfi_hf_tokenizer_config_build(const rf_model *m, text_buf *b)
{
    const rf_tokenizer *tok = rf_model_tokenizer(m);
    const rf_model_config *cfg = rf_model_config_get(m);
    if (!tok || !tok->n_tokens)
        return false;
    /* keys sorted, as transformers writes them */
    rfi_text_buf_printf(
        b, "{\"add_bos_token\":%s,\"add_prefix_space\":false,\"added_tokens_decoder\":{",
        tok->add_bos ? "true" : "false");
    bool first = true;
    for (uint64_t i = 0; i < tok->n_tokens; i++) {
        int32_t type = tok->token_types ? tok->token_types[i] : RF_TOKEN_NORMAL;
        if (!is_added(type))
            continue;
        if (!first)
            rfi_text_buf_puts(b, ",");
        first = false;
        rfi_text_buf_printf(b, "\"%llu\":{\"content\":", (unsigned long long)i);
        rfi_json_put_cstring(b, tok->tokens[i]);
        rfi_text_buf_printf(b,
                            ",\"lstrip\":false,\"normalized\":false,\"rstrip\":false,"
                            "\"single_word\":false,\"special\":%s}",
                            type == RF_TOKEN_CONTROL ? "true" : "false");
    }
    rfi_text_buf_puts(b, "},\"bos_token\":");
    int64_t bos = tok->add_bos ? cfg->bos_token_id : -1;
    if (bos >= 0 && (uint64_t)bos < tok->n_tokens)
        rfi_json_put_cstring(b, tok->tokens[bos]);
    else
        rfi_text_buf_puts(b, "null");
    if (cfg->chat_template) {
        rfi_text_buf_puts(b, ",\"chat_template\":");
        rfi_json_put_cstring(b, cfg->chat_template);
    }
    rfi_text_buf_puts(b, ",\"clean_up_tokenization_spaces\":false,\"eos_token\":");
    if (cfg->eos_token_id >= 0 && (uint64_t)cfg->eos_token_id < tok->n_tokens)
        rfi_json_put_cstring(b, tok->tokens[cfg->eos_token_id]);
    else
        rfi_text_buf_puts(b, "null");
    rfi_text_buf_puts(b, ",\"errors\":\"replace\"");
    if (cfg->context_length)
        rfi_text_buf_printf(b, ",\"model_max_length\":%llu",
                            (unsigned long long)cfg->context_length);
    rfi_text_buf_puts(b, ",\"pad_token\":");
    if (cfg->pad_token_id >= 0 && (uint64_t)cfg->pad_token_id < tok->n_tokens)
        rfi_json_put_cstring(b, tok->tokens[cfg->pad_token_id]);
    else
        rfi_text_buf_puts(b, "null");
    rfi_text_buf_puts(b, ",\"split_special_tokens\":false");
    if (tok->pre && strcmp(tok->pre, "qwen2") == 0)
        rfi_text_buf_puts(b, ",\"tokenizer_class\":\"Qwen2Tokenizer\"");
    else
        rfi_text_buf_puts(b, ",\"tokenizer_class\":\"PreTrainedTokenizerFast\"");
    rfi_text_buf_puts(b, ",\"unk_token\":null}");
    return true;
}
