/* Text to token ids (docs/tokenizer.md, "Encoding"): invalid UTF-8 read as U+FFFD, added tokens
 * split out first (leftmost, longest), NFC on the text between them when asked, the
 * pre-tokenizer regex (PCRE2, JIT when available), then byte-level BPE on each piece: the byte
 * tokens merged pair by pair, lowest rank first (leftmost on equal ranks), with a binary heap so
 * that a long piece costs n log n.
 * Not for: building the tables (tokenizer.c) or decoding (detok.c). */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "tokenizer_internal.h"

/* A cache of the ids of short pieces for one call on a long text: most pieces of real text
 * (" the", "\n", " =") repeat, and a hit skips BPE. Direct-mapped; a collision replaces. */
#define CACHE_SLOTS    4096
#define CACHE_KEY      24   /* longest piece cached, bytes */
#define CACHE_IDS      8    /* most ids of a cached piece */
#define CACHE_MIN_TEXT 4096 /* shorter texts do not pay for the cache */

typedef struct piece_cache {
    uint8_t key_len[CACHE_SLOTS]; /* 0: empty */
    uint8_t n_ids[CACHE_SLOTS];
    char key[CACHE_SLOTS][CACHE_KEY];
    int32_t ids[CACHE_SLOTS][CACHE_IDS];
} piece_cache;

typedef struct heap_entry {
    uint32_t rank;
    uint32_t pos; /* index of the left symbol */
} heap_entry;

/* Everything one call needs besides the tokenizer: the ids produced and scratch space. */
typedef struct encoder {
    const ri_tokenizer *tok;
    unsigned flags;
    bool nfc;
    pcre2_match_data *match;
    int32_t *ids;
    size_t n_ids, cap_ids;
    /* symbols of the piece being merged: a doubly linked list over arrays */
    int32_t *sym_id, *sym_prev, *sym_next;
    size_t sym_cap;
    heap_entry *heap;
    size_t heap_n, heap_cap;
    piece_cache *cache; /* NULL for short texts */
    rf_error *err;
    rf_status status;
    /* when set, pieces go here instead of to BPE (tok_split) */
    void (*on_piece)(void *ctx, const char *piece, size_t len);
    void *piece_ctx;
} encoder;

static rf_status fail(encoder *e, rf_status status, const char *what)
{
    if (e->status == RF_OK)
        e->status = rf_error_set(e->err, status, "ri_tokenize: %s", what);
    return e->status;
}

static void push_id(encoder *e, int32_t id)
{
    if (e->n_ids == e->cap_ids) {
        size_t cap = e->cap_ids ? 2 * e->cap_ids : 64;
        int32_t *p = realloc(e->ids, cap * sizeof *p);
        if (!p) {
            fail(e, RF_ERR_NOMEM, "out of memory");
            return;
        }
        e->ids = p;
        e->cap_ids = cap;
    }
    e->ids[e->n_ids++] = id;
}

/* ---- BPE ---------------------------------------------------------------------------------- */

static const tok_merge *merge_find(const ri_tokenizer *tok, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint64_t h = key ^ key >> 31;
    h *= 0x9E3779B97F4A7C15u;
    h ^= h >> 29;
    for (size_t i = h & tok->merge_mask;; i = (i + 1) & tok->merge_mask) {
        const tok_merge *m = &tok->merges[i];
        if (m->key == key)
            return m;
        if (m->key == TOK_MERGE_EMPTY)
            return NULL;
    }
}

static bool heap_less(heap_entry a, heap_entry b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(encoder *e, heap_entry x)
{
    if (e->heap_n == e->heap_cap) {
        size_t cap = e->heap_cap ? 2 * e->heap_cap : 64;
        heap_entry *p = realloc(e->heap, cap * sizeof *p);
        if (!p) {
            fail(e, RF_ERR_NOMEM, "out of memory");
            return;
        }
        e->heap = p;
        e->heap_cap = cap;
    }
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(x, e->heap[parent]))
            break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = x;
}

static heap_entry heap_pop(encoder *e)
{
    heap_entry top = e->heap[0], last = e->heap[--e->heap_n];
    size_t i = 0, n = e->heap_n;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && heap_less(e->heap[child + 1], e->heap[child]))
            child++;
        if (!heap_less(e->heap[child], last))
            break;
        e->heap[i] = e->heap[child];
        i = child;
    }
    if (n)
        e->heap[i] = last;
    return top;
}

/* Queues the pair starting at symbol pos, if it has a merge. */
static void queue_pair(encoder *e, int32_t pos)
{
    int32_t next = e->sym_next[pos];
    if (next < 0)
        return;
    const tok_merge *m = merge_find(e->tok, e->sym_id[pos], e->sym_id[next]);
    if (m)
        heap_push(e, (heap_entry){m->rank, (uint32_t)pos});
}

static void bpe(encoder *e, const uint8_t *s, size_t n)
{
    const ri_tokenizer *tok = e->tok;
    if (n == 0 || e->status != RF_OK)
        return;
    if (n == 1) {
        if (tok->byte_token[s[0]] >= 0)
            push_id(e, tok->byte_token[s[0]]);
        return;
    }
    if (n > e->sym_cap) {
        if (n > INT32_MAX)
            return (void)fail(e, RF_ERR_LIMIT, "a pre-token longer than 2 GiB");
        size_t cap = n < 64 ? 64 : n;
        int32_t *a = realloc(e->sym_id, cap * sizeof *a);
        if (a)
            e->sym_id = a;
        int32_t *b = realloc(e->sym_prev, cap * sizeof *b);
        if (b)
            e->sym_prev = b;
        int32_t *c = realloc(e->sym_next, cap * sizeof *c);
        if (c)
            e->sym_next = c;
        if (!a || !b || !c)
            return (void)fail(e, RF_ERR_NOMEM, "out of memory");
        e->sym_cap = cap;
    }
    /* the initial symbols: one byte token per byte; a byte the vocabulary lacks is dropped, as
     * Hugging Face's BPE drops characters it cannot look up when there is no unknown token */
    int32_t count = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = tok->byte_token[s[i]];
        if (id < 0)
            continue;
        e->sym_id[count] = id;
        e->sym_prev[count] = count - 1;
        e->sym_next[count] = count + 1;
        count++;
    }
    if (count == 0)
        return;
    e->sym_next[count - 1] = -1;
    e->heap_n = 0;
    for (int32_t i = 0; i + 1 < count; i++)
        queue_pair(e, i);
    while (e->heap_n && e->status == RF_OK) {
        heap_entry h = heap_pop(e);
        int32_t pos = (int32_t)h.pos, next = e->sym_next[pos];
        if (e->sym_id[pos] < 0 || next < 0)
            continue; /* the left symbol was merged away, or is now the last one */
        /* ranks are unique per pair: the same rank means the same pair, still adjacent */
        const tok_merge *m = merge_find(tok, e->sym_id[pos], e->sym_id[next]);
        if (!m || m->rank != h.rank)
            continue;
        e->sym_id[pos] = m->merged;
        e->sym_id[next] = -1;
        int32_t after = e->sym_next[next];
        e->sym_next[pos] = after;
        if (after >= 0)
            e->sym_prev[after] = pos;
        if (e->sym_prev[pos] >= 0)
            queue_pair(e, e->sym_prev[pos]);
        queue_pair(e, pos);
    }
    for (int32_t i = 0; i >= 0; i = e->sym_next[i])
        push_id(e, e->sym_id[i]);
}

/* ---- pre-tokenizer ------------------------------------------------------------------------ */

static uint32_t cache_slot(const uint8_t *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return (h ^ h >> 15) & (CACHE_SLOTS - 1);
}

static void piece(encoder *e, const uint8_t *s, size_t n)
{
    if (e->on_piece) {
        if (n)
            e->on_piece(e->piece_ctx, (const char *)s, n);
        return;
    }
    piece_cache *c = e->cache;
    if (!c || n < 2 || n > CACHE_KEY) {
        bpe(e, s, n);
        return;
    }
    uint32_t slot = cache_slot(s, n);
    if (c->key_len[slot] == n && memcmp(c->key[slot], s, n) == 0) {
        for (uint8_t i = 0; i < c->n_ids[slot]; i++)
            push_id(e, c->ids[slot][i]);
        return;
    }
    size_t before = e->n_ids;
    bpe(e, s, n);
    size_t count = e->n_ids - before;
    if (e->status == RF_OK && count <= CACHE_IDS) {
        c->key_len[slot] = (uint8_t)n;
        memcpy(c->key[slot], s, n);
        c->n_ids[slot] = (uint8_t)count;
        memcpy(c->ids[slot], e->ids + before, count * sizeof *e->ids);
    }
}

/* Splits valid UTF-8 s[0..n) with the regex; each match and each stretch between matches (the
 * "Isolated" behaviour of tokenizers' Split) is one BPE piece. */
static void split(encoder *e, const uint8_t *s, size_t n)
{
    const ri_tokenizer *tok = e->tok;
    size_t pos = 0;
    uint32_t options = PCRE2_NO_UTF_CHECK;
    while (pos < n && e->status == RF_OK) {
        int rc = pcre2_match(tok->regex, s, n, pos, options, e->match, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !(options & PCRE2_NO_JIT)) {
            options |= PCRE2_NO_JIT; /* the interpreter has no JIT stack to run out of */
            continue;
        }
        if (rc == PCRE2_ERROR_NOMATCH) {
            piece(e, s + pos, n - pos);
            return;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            fail(e, RF_ERR_LIMIT, (const char *)msg);
            return;
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->match);
        size_t start = ov[0], end = ov[1];
        if (start > pos)
            piece(e, s + pos, start - pos);
        if (end == start) { /* an empty match: take one character as a piece of its own */
            size_t bad;
            bool incomplete;
            size_t len = tok_utf8_next(s + start, n - start, &bad, &incomplete);
            end = start + (len ? len : 1);
        }
        piece(e, s + start, end - start);
        pos = end;
    }
}

/* NFC cannot change text made of code points below U+0300: nothing there decomposes or
 * combines (the first combining marks start at U+0300). */
static bool nfc_stable(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0xCC) /* lead bytes from U+0300 on */
            return false;
    return true;
}

static void segment(encoder *e, const uint8_t *s, size_t n)
{
    if (n == 0 || e->status != RF_OK)
        return;
    if (!e->nfc || nfc_stable(s, n)) {
        split(e, s, n);
        return;
    }
    utf8proc_uint8_t *norm = NULL;
    utf8proc_ssize_t len =
        utf8proc_map(s, (utf8proc_ssize_t)n, &norm, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (len < 0) {
        free(norm);
        fail(e, len == UTF8PROC_ERROR_NOMEM ? RF_ERR_NOMEM : RF_ERR_ARGUMENT, utf8proc_errmsg(len));
        return;
    }
    split(e, norm, (size_t)len);
    free(norm);
}

/* ---- added tokens ------------------------------------------------------------------------- */

/* The id of the longest added token at s[0..n) that may be matched, or -1. */
static int32_t special_at(const encoder *e, const uint8_t *s, size_t n)
{
    const ri_tokenizer *tok = e->tok;
    for (uint32_t k = tok->special_start[s[0]]; k < tok->special_start[s[0] + 1]; k++) {
        int32_t id = tok->special_ids[k];
        if (tok->types[id] == RF_TOKEN_CONTROL && !(e->flags & RI_TOKENIZE_PARSE_SPECIAL))
            continue;
        size_t len = tok->piece_off[id + 1] - tok->piece_off[id] - 1;
        if (len <= n && memcmp(tok->piece_arena + tok->piece_off[id], s, len) == 0)
            return id;
    }
    return -1;
}

static void encode_text(encoder *e, const uint8_t *s, size_t n)
{
    const ri_tokenizer *tok = e->tok;
    size_t start = 0;
    for (size_t i = 0; i < n && e->status == RF_OK;) {
        if (tok->special_start[s[i]] == tok->special_start[s[i] + 1]) {
            i++;
            continue;
        }
        int32_t id = special_at(e, s + i, n - i);
        if (id < 0) {
            i++;
            continue;
        }
        segment(e, s + start, i - start);
        push_id(e, id);
        i += tok->piece_off[id + 1] - tok->piece_off[id] - 1;
        start = i;
    }
    segment(e, s + start, n - start);
}

static rf_status encode(const ri_tokenizer *tok, const char *text, size_t len, unsigned flags,
                        encoder *e, rf_error *err)
{
    memset(e, 0, sizeof *e);
    e->tok = tok;
    e->flags = flags;
    e->err = err;
    if (!tok || (!text && len))
        return rf_error_set(err, RF_ERR_ARGUMENT, "ri_tokenize: tokenizer or text is NULL");
    if ((flags & RI_TOKENIZE_NORMALIZE) && (flags & RI_TOKENIZE_NO_NORMALIZE))
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "ri_tokenize: RI_TOKENIZE_NORMALIZE and RI_TOKENIZE_NO_NORMALIZE "
                            "together");
    e->nfc = (tok->nfc || (flags & RI_TOKENIZE_NORMALIZE)) && !(flags & RI_TOKENIZE_NO_NORMALIZE);
    e->match = pcre2_match_data_create(1, NULL);
    if (!e->match)
        return fail(e, RF_ERR_NOMEM, "out of memory");
    if (len >= CACHE_MIN_TEXT) { /* without the cache only slower */
        e->cache = malloc(sizeof *e->cache);
        if (e->cache)
            memset(e->cache->key_len, 0, sizeof e->cache->key_len);
    }
    if ((flags & RI_TOKENIZE_ADD_SPECIAL) && tok->add_bos && tok->bos >= 0)
        push_id(e, tok->bos);
    const uint8_t *s = (const uint8_t *)text;
    tok_buf clean = {0};
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x80)
            continue;
        size_t bad;
        bool incomplete;
        size_t cl = tok_utf8_next(s + i, len - i, &bad, &incomplete);
        if (cl) {
            i += cl - 1;
            continue;
        }
        tok_utf8_append_lossy(&clean, s, len, false); /* invalid: read a repaired copy */
        if (clean.failed) {
            tok_buf_free(&clean);
            return fail(e, RF_ERR_NOMEM, "out of memory");
        }
        break;
    }
    if (clean.data)
        encode_text(e, (const uint8_t *)clean.data, clean.len);
    else if (len)
        encode_text(e, s, len);
    tok_buf_free(&clean);
    return e->status;
}

static void encoder_free(encoder *e)
{
    pcre2_match_data_free(e->match);
    free(e->ids);
    free(e->sym_id);
    free(e->sym_prev);
    free(e->sym_next);
    free(e->heap);
    free(e->cache);
}

rf_status tok_split(const ri_tokenizer *tok, const char *text, size_t len,
                    void (*fn)(void *ctx, const char *piece, size_t len), void *ctx, rf_error *err)
{
    encoder e;
    memset(&e, 0, sizeof e);
    e.tok = tok;
    e.err = err;
    e.on_piece = fn;
    e.piece_ctx = ctx;
    e.match = pcre2_match_data_create(1, NULL);
    if (!e.match)
        return rf_error_set(err, RF_ERR_NOMEM, "tok_split: out of memory");
    split(&e, (const uint8_t *)text, len);
    encoder_free(&e);
    return e.status;
}

rf_status ri_tokenize(const ri_tokenizer *tok, const char *text, size_t len, unsigned flags,
                      int32_t *ids, size_t cap, size_t *n_ids, rf_error *err)
{
    if (!n_ids || (!ids && cap))
        return rf_error_set(err, RF_ERR_ARGUMENT, "ri_tokenize: n_ids or ids is NULL");
    encoder e;
    rf_status st = encode(tok, text, len, flags, &e, err);
    if (st == RF_OK) {
        *n_ids = e.n_ids;
        if (e.n_ids)
            memcpy(ids, e.ids, (e.n_ids < cap ? e.n_ids : cap) * sizeof *ids);
        if (e.n_ids > cap)
            st = rf_error_set(err, RF_ERR_LIMIT, "ri_tokenize: %zu ids do not fit in %zu", e.n_ids,
                              cap);
    }
    encoder_free(&e);
    return st;
}

rf_status ri_tokenize_alloc(const ri_tokenizer *tok, const char *text, size_t len, unsigned flags,
                            int32_t **ids, size_t *n_ids, rf_error *err)
{
    if (!ids || !n_ids)
        return rf_error_set(err, RF_ERR_ARGUMENT, "ri_tokenize_alloc: ids or n_ids is NULL");
    *ids = NULL;
    *n_ids = 0;
    encoder e;
    rf_status st = encode(tok, text, len, flags, &e, err);
    if (st == RF_OK && !e.ids && !(e.ids = malloc(sizeof *e.ids)))
        st = rf_error_set(err, RF_ERR_NOMEM, "ri_tokenize: out of memory");
    if (st == RF_OK) {
        *ids = e.ids;
        *n_ids = e.n_ids;
        e.ids = NULL;
    }
    encoder_free(&e);
    return st;
}
