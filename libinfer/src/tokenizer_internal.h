/* Private parts of the tokenizer shared by tokenizer.c (building, vocabulary queries), encode.c
 * (text to ids), detok.c (ids to text) and chat.c; the UTF-8 helpers of tok_utf8.c.
 * Not for: anything outside libinfer (the API is rosetta/tokenizer.h). */
#ifndef RI_TOKENIZER_INTERNAL_H
#define RI_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "rosetta/tokenizer.h"

/* One merge rule in the rank table: the pair (left id, right id) packed as left << 32 | right,
 * its rank (index in the merges list) and the id of the merged token. */
typedef struct tok_merge {
    uint64_t key;
    uint32_t rank;
    int32_t merged;
} tok_merge;

#define TOK_MERGE_EMPTY UINT64_MAX

struct ri_tokenizer {
    size_t n_vocab;
    char *text_arena;      /* vocabulary strings, each NUL-terminated */
    uint64_t *text_off;    /* n_vocab offsets into text_arena */
    char *piece_arena;     /* decoded bytes of each token, each followed by a NUL */
    uint64_t *piece_off;   /* n_vocab + 1 offsets: piece i is [piece_off[i], piece_off[i+1] - 1) */
    uint8_t *types;        /* rf_token_type of each id */
    uint64_t *vocab_slots; /* open addressing by the vocabulary string: hash tag << 32 | id + 1,
                              0 empty */
    size_t vocab_mask;
    tok_merge *merges; /* open addressing over keys; TOK_MERGE_EMPTY empty */
    size_t merge_mask;
    size_t n_merges;         /* rules in the table */
    size_t n_merges_skipped; /* rules naming a token the vocabulary lacks (never applied) */
    int32_t byte_token[256]; /* id of the token of each single byte, -1 when absent */

    /* added tokens matched before BPE, grouped by first byte, longest first within a group */
    int32_t *special_ids;
    uint32_t special_start[257]; /* group of byte b: special_ids[special_start[b] ..
                                    special_start[b + 1]) */

    pcre2_code *regex;
    bool jit; /* the regex is JIT-compiled */
    const char *pre;
    bool nfc;
    bool add_bos;
    int32_t bos, eos, eot, pad;
    int32_t *eog; /* sorted */
    size_t n_eog;
    char *chat_template; /* NULL when the model has none */
};

/* The pre-tokenizer pieces of valid UTF-8 text[0..len) (no added tokens, no NFC), each passed
 * to fn in order; the test view of the regex split (encode.c). */
rf_status tok_split(const ri_tokenizer *tok, const char *text, size_t len,
                    void (*fn)(void *ctx, const char *piece, size_t len), void *ctx, rf_error *err);

/* ---- UTF-8 (tok_utf8.c) ------------------------------------------------------------------- */

/* Length (1..4) of the valid UTF-8 sequence at s[0..n), or 0 when the bytes there do not start
 * one. When 0, *bad gets the length of the maximal subpart to replace by one U+FFFD (at least 1):
 * the lead byte and the continuation bytes that still fitted, as Unicode's "substitution of
 * maximal subparts" (Python's errors="replace") counts them; *incomplete is set when that
 * subpart reaches the end of the input (a later byte could still complete it). */
size_t tok_utf8_next(const uint8_t *s, size_t n, size_t *bad, bool *incomplete);

/* Decodes the valid sequence of length len at s (as returned by tok_utf8_next). */
uint32_t tok_utf8_decode(const uint8_t *s, size_t len);

/* Writes the UTF-8 of code point cp (<= 0x10FFFF) to out; returns its length. */
size_t tok_utf8_encode(uint32_t cp, char *out);

/* A growable byte buffer; failed is set on allocation failure (further appends do nothing). */
typedef struct tok_buf {
    char *data;
    size_t len, cap;
    bool failed;
} tok_buf;

bool tok_buf_reserve(tok_buf *b, size_t extra);
void tok_buf_append(tok_buf *b, const void *data, size_t len);
void tok_buf_free(tok_buf *b);

/* Appends s[0..n) to b with every invalid UTF-8 sequence replaced by U+FFFD. When hold is set,
 * an incomplete sequence at the very end is not appended: its length is returned (0..3) so the
 * caller can keep it for later; otherwise it is replaced too and 0 is returned. */
size_t tok_utf8_append_lossy(tok_buf *b, const uint8_t *s, size_t n, bool hold);

#endif
