/* Token ids to text (docs/tokenizer.md, "Decoding"): the byte pieces of the tokens concatenated,
 * invalid UTF-8 replaced by U+FFFD; the streaming form holds back the bytes of a sequence that a
 * later token may still complete.
 * Not for: encoding (encode.c). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

struct ri_detok {
    const ri_tokenizer *tok;
    unsigned flags;
    uint8_t held[4]; /* the start of an incomplete sequence (at most 3 bytes) */
    size_t n_held;
    tok_buf out;
    tok_buf joined; /* held bytes followed by the new piece */
};

static bool skipped(const ri_tokenizer *tok, unsigned flags, int32_t id)
{
    return (flags & RI_DETOK_SKIP_SPECIAL) && tok->types[id] == RF_TOKEN_CONTROL;
}

rf_status ri_detokenize(const ri_tokenizer *tok, const int32_t *ids, size_t n, unsigned flags,
                        char **text, size_t *len, rf_error *err)
{
    if (!tok || !text || (!ids && n))
        return rf_error_set(err, RF_ERR_ARGUMENT, "ri_detokenize: NULL argument");
    *text = NULL;
    if (len)
        *len = 0;
    tok_buf bytes = {0};
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= tok->n_vocab) {
            tok_buf_free(&bytes);
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "ri_detokenize: token %zu is id %d, outside the vocabulary "
                                "(0..%zu)",
                                i, (int)ids[i], tok->n_vocab - 1);
        }
        if (skipped(tok, flags, ids[i]))
            continue;
        size_t plen;
        const char *piece = ri_token_piece(tok, ids[i], &plen);
        tok_buf_append(&bytes, piece, plen);
    }
    tok_buf out = {0};
    tok_utf8_append_lossy(&out, (const uint8_t *)bytes.data, bytes.len, false);
    tok_buf_append(&out, "", 1);
    bool failed = bytes.failed || out.failed;
    tok_buf_free(&bytes);
    if (failed) {
        tok_buf_free(&out);
        return rf_error_set(err, RF_ERR_NOMEM, "ri_detokenize: out of memory");
    }
    *text = out.data;
    if (len)
        *len = out.len - 1;
    return RF_OK;
}

ri_detok *ri_detok_new(const ri_tokenizer *tok, unsigned flags, rf_error *err)
{
    if (!tok) {
        rf_error_set(err, RF_ERR_ARGUMENT, "ri_detok_new: tokenizer is NULL");
        return NULL;
    }
    ri_detok *d = calloc(1, sizeof *d);
    if (!d) {
        rf_error_set(err, RF_ERR_NOMEM, "ri_detok_new: out of memory");
        return NULL;
    }
    d->tok = tok;
    d->flags = flags;
    return d;
}

rf_status ri_detok_push(ri_detok *d, int32_t id, const char **text, size_t *len, rf_error *err)
{
    if (!d || !text || !len)
        return rf_error_set(err, RF_ERR_ARGUMENT, "ri_detok_push: NULL argument");
    *text = "";
    *len = 0;
    if (id < 0 || (size_t)id >= d->tok->n_vocab)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "ri_detok_push: id %d is outside the vocabulary (0..%zu)", (int)id,
                            d->tok->n_vocab - 1);
    if (skipped(d->tok, d->flags, id))
        return RF_OK;
    size_t plen;
    const char *piece = ri_token_piece(d->tok, id, &plen);
    d->joined.len = 0;
    d->out.len = 0;
    tok_buf_append(&d->joined, d->held, d->n_held);
    tok_buf_append(&d->joined, piece, plen);
    if (d->joined.failed)
        return rf_error_set(err, RF_ERR_NOMEM, "ri_detok_push: out of memory");
    const uint8_t *s = (const uint8_t *)d->joined.data;
    size_t n = d->joined.len;
    size_t keep = n ? tok_utf8_append_lossy(&d->out, s, n, true) : 0;
    if (d->out.failed)
        return rf_error_set(err, RF_ERR_NOMEM, "ri_detok_push: out of memory");
    memcpy(d->held, s + n - keep, keep);
    d->n_held = keep;
    *text = d->out.len ? d->out.data : "";
    *len = d->out.len;
    return RF_OK;
}

void ri_detok_flush(ri_detok *d, const char **text, size_t *len)
{
    *text = "";
    *len = 0;
    if (!d || d->n_held == 0)
        return;
    d->out.len = 0;
    tok_utf8_append_lossy(&d->out, d->held, d->n_held, false);
    d->n_held = 0;
    if (!d->out.failed) {
        *text = d->out.data;
        *len = d->out.len;
    }
}

void ri_detok_reset(ri_detok *d)
{
    if (d)
        d->n_held = 0;
}

void ri_detok_free(ri_detok *d)
{
    if (!d)
        return;
    tok_buf_free(&d->out);
    tok_buf_free(&d->joined);
    free(d);
}
