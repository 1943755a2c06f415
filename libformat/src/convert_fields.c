/* The configuration and tokenizer fields of contracts/metadata-map.json compared between a
 * source and a converted output (rf_convert with compare): the map names the fields, this file
 * knows where each lives in the model view and what counts as the same value across formats
 * (a GGUF vocabulary padded with [PAD{id}] entries, f32 rounding of rope theta and rms eps).
 * Not for: reading or writing the keys (the format readers and writers do). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "convert_internal.h"
#include "rosetta/contract.h"

#define MAP_FILE "metadata-map.json"

static void differ(fields_result *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void differ(fields_result *r, const char *field, const char *fmt, ...)
{
    r->n_differ++;
    size_t used = strlen(r->fields);
    snprintf(r->fields + used, sizeof r->fields - used, "%s%s", used ? ", " : "", field);
    if (r->first[0] == '\0') {
        char what[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(r->first, sizeof r->first, "%s: %s", field, what);
    }
}

static const char *or_none(const char *s) { return s ? s : "(none)"; }

/* ---- config fields --------------------------------------------------------------------------- */

static void count(fields_result *r, const char *f, uint64_t a, uint64_t b)
{
    if (a == 0) /* unknown in the source: nothing to keep */
        return;
    if (a != b)
        differ(r, f, "%llu in the source, %llu in the output", (unsigned long long)a,
               (unsigned long long)b);
}

static void id(fields_result *r, const char *f, int64_t a, int64_t b)
{
    if (a < 0)
        return;
    if (a != b)
        differ(r, f, "%lld in the source, %s in the output", (long long)a,
               b < 0 ? "none" : "another id");
}

/* Stored as f32 by GGUF and APR: the same value rounded to f32. */
static void real(fields_result *r, const char *f, double a, double b)
{
    if (a <= 0)
        return;
    if ((float)a != (float)b)
        differ(r, f, "%.9g in the source, %.9g in the output", a, b);
}

static void text(fields_result *r, const char *f, const char *a, const char *b, bool nocase)
{
    if (a == NULL)
        return;
    if (b == NULL || (nocase ? strcasecmp(a, b) : strcmp(a, b)) != 0)
        differ(r, f, "\"%.60s\" in the source, \"%.60s\" in the output", a, or_none(b));
}

/* Compares one config field by its name in the map; false when the name is unknown. */
static bool config_field(fields_result *r, const char *f, const rf_model_config *a,
                         const rf_model_config *b)
{
    struct {
        const char *name;
        uint64_t x, y;
    } counts[] = {
        {"hidden_size", a->hidden_size, b->hidden_size},
        {"num_layers", a->n_layers, b->n_layers},
        {"num_heads", a->n_heads, b->n_heads},
        {"num_kv_heads", a->n_kv_heads, b->n_kv_heads},
        {"head_dim", a->head_dim, b->head_dim},
        {"intermediate_size", a->intermediate_size, b->intermediate_size},
        {"vocab_size", a->vocab_size, b->vocab_size},
        {"context_length", a->context_length, b->context_length},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (strcmp(f, counts[i].name) == 0) {
            count(r, f, counts[i].x, counts[i].y);
            return true;
        }
    if (strcmp(f, "architecture") == 0)
        text(r, f, a->architecture, b->architecture, true);
    else if (strcmp(f, "rope_theta") == 0)
        real(r, f, a->rope_theta, b->rope_theta);
    else if (strcmp(f, "rms_norm_eps") == 0)
        real(r, f, a->rms_norm_eps, b->rms_norm_eps);
    else if (strcmp(f, "rope_type") == 0) {
        if (a->rope_type != RF_ROPE_UNKNOWN && a->rope_type != b->rope_type)
            differ(r, f, "%s in the source, %s in the output",
                   a->rope_type == RF_ROPE_NEOX ? "neox" : "norm",
                   b->rope_type == RF_ROPE_NEOX   ? "neox"
                   : b->rope_type == RF_ROPE_NORM ? "norm"
                                                  : "unknown");
    } else if (strcmp(f, "tie_word_embeddings") == 0) {
        if (a->tie_word_embeddings >= 0 && b->tie_word_embeddings >= 0 &&
            a->tie_word_embeddings != b->tie_word_embeddings)
            differ(r, f, "%s in the source, %s in the output",
                   a->tie_word_embeddings ? "true" : "false",
                   b->tie_word_embeddings ? "true" : "false");
    } else if (strcmp(f, "bos_token_id") == 0)
        id(r, f, a->bos_token_id, b->bos_token_id);
    else if (strcmp(f, "eos_token_id") == 0)
        id(r, f, a->eos_token_id, b->eos_token_id);
    else if (strcmp(f, "pad_token_id") == 0)
        id(r, f, a->pad_token_id, b->pad_token_id);
    else if (strcmp(f, "chat_template") == 0)
        text(r, f, a->chat_template, b->chat_template, false);
    else
        return false;
    return true;
}

/* ---- tokenizer fields ------------------------------------------------------------------------ */

/* The [PAD{id}] entry GGUF writers add up to the embedding rows. */
static bool padding(const rf_tokenizer *t, uint64_t i)
{
    char pad[40];
    snprintf(pad, sizeof pad, "[PAD%llu]", (unsigned long long)i);
    return strcmp(t->tokens[i], pad) == 0 &&
           (t->token_types == NULL || t->token_types[i] == RF_TOKEN_UNUSED);
}

/* Entries of one list beyond the other's end must all be padding. */
static bool padded_tail(const rf_tokenizer *t, uint64_t from)
{
    for (uint64_t i = from; i < t->n_tokens; i++)
        if (!padding(t, i))
            return false;
    return true;
}

static void tokens(fields_result *r, const char *f, const rf_tokenizer *a, const rf_tokenizer *b)
{
    uint64_t n = a->n_tokens < b->n_tokens ? a->n_tokens : b->n_tokens;
    for (uint64_t i = 0; i < n; i++)
        if (strcmp(a->tokens[i], b->tokens[i]) != 0) {
            differ(r, f, "id %llu is \"%.40s\" in the source, \"%.40s\" in the output",
                   (unsigned long long)i, a->tokens[i], b->tokens[i]);
            return;
        }
    if (!padded_tail(a, n) || !padded_tail(b, n))
        differ(r, f, "%llu tokens in the source, %llu in the output (beyond [PAD{id}] entries)",
               (unsigned long long)a->n_tokens, (unsigned long long)b->n_tokens);
}

static void token_types(fields_result *r, const char *f, const rf_tokenizer *a,
                        const rf_tokenizer *b)
{
    if (a->token_types == NULL)
        return;
    if (b->token_types == NULL) {
        differ(r, f, "present in the source, absent in the output");
        return;
    }
    uint64_t n = a->n_tokens < b->n_tokens ? a->n_tokens : b->n_tokens;
    for (uint64_t i = 0; i < n; i++)
        if (a->token_types[i] != b->token_types[i]) {
            differ(r, f, "id %llu (\"%.40s\") has type %d in the source, %d in the output",
                   (unsigned long long)i, a->tokens[i], a->token_types[i], b->token_types[i]);
            return;
        }
}

static bool tokenizer_field(fields_result *r, const char *f, const rf_tokenizer *a,
                            const rf_tokenizer *b)
{
    if (strcmp(f, "model") == 0)
        text(r, f, a->model, b->model, true);
    else if (strcmp(f, "pre") == 0)
        text(r, f, a->pre, b->pre, false);
    else if (strcmp(f, "tokens") == 0)
        tokens(r, f, a, b);
    else if (strcmp(f, "token_types") == 0)
        token_types(r, f, a, b);
    else if (strcmp(f, "merges") == 0) {
        bool same = a->n_merges == b->n_merges;
        for (uint64_t i = 0; same && i < a->n_merges; i++)
            same = strcmp(a->merges[i], b->merges[i]) == 0;
        if (!same)
            differ(r, f, "%llu merges in the source, %llu in the output (or another order)",
                   (unsigned long long)a->n_merges, (unsigned long long)b->n_merges);
    } else if (strcmp(f, "add_bos") == 0) {
        if (a->add_bos != b->add_bos)
            differ(r, f, "%s in the source, %s in the output", a->add_bos ? "true" : "false",
                   b->add_bos ? "true" : "false");
    } else
        return false;
    return true;
}

/* ---- the map --------------------------------------------------------------------------------- */

static rf_status read_map(cJSON **out, char *path, size_t size, rf_error *err)
{
    const rf_contracts *c = rf_contracts_default(err);
    if (c == NULL)
        return err && err->status ? err->status : RF_ERR_NOT_FOUND;
    snprintf(path, size, "%s/%s", rf_contracts_dir(c), MAP_FILE);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return rf_error_set(err, RF_ERR_NOT_FOUND, "%s: cannot open the metadata map", path);
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (16l << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL &&
        fread(buf, 1, (size_t)n, f) == (size_t)n)
        buf[n] = '\0';
    else
        n = -1;
    fclose(f);
    *out = n >= 0 ? cJSON_ParseWithLength(buf, (size_t)n) : NULL;
    free(buf);
    if (*out == NULL)
        return rf_error_set(err, RF_ERR_FORMAT, "%s: not readable as JSON", path);
    return RF_OK;
}

rf_status rfi_fields_compare(const rf_model *src, const rf_model *out, fields_result *r,
                             rf_error *err)
{
    memset(r, 0, sizeof *r);
    char path[4096];
    cJSON *map = NULL;
    rf_status st = read_map(&map, path, sizeof path, err);
    if (st != RF_OK)
        return st;
    const rf_tokenizer *ta = rf_model_tokenizer(src), *tb = rf_model_tokenizer(out);
    static const char *const sections[] = {"config", "tokenizer"};
    for (size_t s = 0; st == RF_OK && s < 2; s++) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(map, sections[s]);
        if (!cJSON_IsArray(list)) {
            st = rf_error_set(err, RF_ERR_FORMAT, "%s: $.%s: expected an array", path, sections[s]);
            break;
        }
        int k = 0;
        for (const cJSON *e = list->child; st == RF_OK && e; e = e->next, k++) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "field");
            if (!cJSON_IsString(f)) {
                st = rf_error_set(err, RF_ERR_FORMAT, "%s: $.%s[%d].field: expected a string", path,
                                  sections[s], k);
                break;
            }
            bool known;
            if (s == 0) {
                known = config_field(r, f->valuestring, rf_model_config_get(src),
                                     rf_model_config_get(out));
            } else if (ta == NULL) {
                known = tokenizer_field(r, f->valuestring, &(rf_tokenizer){0}, &(rf_tokenizer){0});
            } else if (tb == NULL) {
                known = tokenizer_field(r, f->valuestring, ta, ta);
                if (known)
                    differ(r, f->valuestring, "the output has no tokenizer");
            } else {
                known = tokenizer_field(r, f->valuestring, ta, tb);
            }
            if (!known)
                st = rf_error_set(err, RF_ERR_FORMAT,
                                  "%s: $.%s[%d].field: '%s' is no field of the model view", path,
                                  sections[s], k, f->valuestring);
            r->n_checked++;
        }
    }
    cJSON_Delete(map);
    return st;
}
