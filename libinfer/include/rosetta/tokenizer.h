/* The tokenizer and chat templates of librosetta-infer: byte-level BPE (the GPT-2 byte map,
 * merges applied by rank) with the Qwen2 pre-tokenizer, special tokens split out first, NFC where
 * the tokenizer asks for it, detokenization that holds back incomplete UTF-8 while streaming, and
 * the model's Jinja chat template (the subset Qwen2-family templates use). Built from the model
 * view's tokenizer, whichever format it came from (tokenizer.json, GGUF tokenizer.ggml.*, APR
 * tokenizer.*). docs/tokenizer.md describes the rules.
 * Not for: sampling or the forward pass (rosetta/infer.h). */
#ifndef ROSETTA_TOKENIZER_H
#define ROSETTA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the tokenizer ------------------------------------------------------------------------ */

/* A tokenizer: immutable once built, so one may be used from several threads at once. */
typedef struct ri_tokenizer ri_tokenizer;

/* Builds the tokenizer of model from its rf_tokenizer view and configuration (BOS/EOS/PAD ids,
 * chat template). Supported: tokenizer model "gpt2" (byte-level BPE) with the pre-tokenizer
 * "qwen2" (or none given, for a qwen2 architecture) or "gpt2". The model may be freed afterwards:
 * everything needed is copied. Returns NULL and fills err on failure: RF_ERR_NOT_FOUND when the
 * model carries no tokenizer, RF_ERR_UNSUPPORTED for another tokenizer model or pre-tokenizer,
 * RF_ERR_FORMAT for an empty or inconsistent vocabulary (the message names the token id). */
RI_API ri_tokenizer *ri_tokenizer_from_model(const rf_model *model, rf_error *err);

/* Frees tok (NULL is allowed). */
RI_API void ri_tokenizer_free(ri_tokenizer *tok);

/* ---- encoding ----------------------------------------------------------------------------- */

/* Flags of ri_tokenize. */
enum {
    /* Recognise control tokens (<|im_start|>, <|endoftext|> ...) written in the text. Without it
     * they are ordinary text. User-defined added tokens (<tool_call>) are recognised always, as
     * Hugging Face tokenizers and llama.cpp do. */
    RI_TOKENIZE_PARSE_SPECIAL = 1u << 0,
    /* Add the special tokens the model asks for: BOS first when the tokenizer's add_bos is set
     * (never for Qwen2). */
    RI_TOKENIZE_ADD_SPECIAL = 1u << 1,
    /* No NFC normalization even when the tokenizer asks for it (llama.cpp never normalizes). */
    RI_TOKENIZE_NO_NORMALIZE = 1u << 2,
    /* NFC normalization even when the tokenizer does not ask for it. */
    RI_TOKENIZE_NORMALIZE = 1u << 3,
};

/* Tokenizes text[0..len) (any bytes: invalid UTF-8 sequences are read as U+FFFD, as Python's
 * bytes.decode(errors="replace") does). On success stores the number of ids in *n_ids and the
 * ids in ids[0..*n_ids). When cap is smaller than the count, returns RF_ERR_LIMIT with *n_ids set
 * to the count needed and ids[0..cap) filled. Other errors: RF_ERR_ARGUMENT (NULL arguments),
 * RF_ERR_NOMEM. */
RI_API rf_status ri_tokenize(const ri_tokenizer *tok, const char *text, size_t len, unsigned flags,
                             int32_t *ids, size_t cap, size_t *n_ids, rf_error *err);

/* As ri_tokenize, into a new array (*ids, freed with free(); never NULL on success, even for
 * zero ids). */
RI_API rf_status ri_tokenize_alloc(const ri_tokenizer *tok, const char *text, size_t len,
                                   unsigned flags, int32_t **ids, size_t *n_ids, rf_error *err);

/* ---- vocabulary --------------------------------------------------------------------------- */

/* Number of token ids (the vocabulary, padded tokens included: 151936 for Qwen2.5). */
RI_API size_t ri_n_vocab(const ri_tokenizer *tok);

/* Special ids from the model's configuration, or -1 when the model names none. eot is the
 * end-of-turn token (<|im_end|> for ChatML models), found by its text. */
RI_API int32_t ri_token_bos(const ri_tokenizer *tok);
RI_API int32_t ri_token_eos(const ri_tokenizer *tok);
RI_API int32_t ri_token_eot(const ri_tokenizer *tok);
RI_API int32_t ri_token_pad(const ri_tokenizer *tok);

/* Whether the model asks for BOS at the start of a sequence (add_bos_token). */
RI_API bool ri_tokenizer_add_bos(const ri_tokenizer *tok);
/* Whether ri_tokenize applies NFC without flags (the tokenizer.json normalizer asks for it). */
RI_API bool ri_tokenizer_normalizes(const ri_tokenizer *tok);
/* Name of the pre-tokenizer in use: "qwen2" or "gpt2". */
RI_API const char *ri_tokenizer_pre(const ri_tokenizer *tok);

/* Token type of id (RF_TOKEN_NORMAL, RF_TOKEN_CONTROL, RF_TOKEN_USER_DEFINED, RF_TOKEN_UNUSED
 * ...); 0 for an id out of range. */
RI_API rf_token_type ri_token_type(const ri_tokenizer *tok, int32_t id);
/* Control tokens (<|im_start|> ...): matched in text only with RI_TOKENIZE_PARSE_SPECIAL, no
 * text with RI_DETOK_SKIP_SPECIAL. */
RI_API bool ri_token_is_control(const ri_tokenizer *tok, int32_t id);
/* Control or user-defined tokens: the added tokens matched as a whole before BPE. */
RI_API bool ri_token_is_special(const ri_tokenizer *tok, int32_t id);
/* End-of-generation tokens: EOS, EOT, <|endoftext|>, and the FIM pad / repo / file-separator
 * tokens, as llama.cpp's list (docs/tokenizer.md). */
RI_API bool ri_token_is_eog(const ri_tokenizer *tok, int32_t id);
/* The end-of-generation ids in increasing order: writes min(count, cap) of them to ids (may be
 * NULL when cap is 0) and returns the count. */
RI_API size_t ri_eog_tokens(const ri_tokenizer *tok, int32_t *ids, size_t cap);

/* Id of the vocabulary entry spelled exactly text (for special tokens, their text:
 * "<|im_end|>"; for normal tokens the byte-level form: "Ġworld"), or -1. */
RI_API int32_t ri_token_id(const ri_tokenizer *tok, const char *text);

/* The vocabulary entry of id as stored (byte-level form), NUL-terminated; NULL out of range. */
RI_API const char *ri_token_text(const ri_tokenizer *tok, int32_t id);

/* The bytes id stands for: byte-level decoded for normal tokens (may be part of a UTF-8
 * sequence, may contain NUL), the literal text for control and user-defined tokens, nothing for
 * unused ones. Stores the length in *len (if not NULL) and returns a pointer valid while tok
 * lives (NUL-terminated for convenience); NULL for an id out of range. */
RI_API const char *ri_token_piece(const ri_tokenizer *tok, int32_t id, size_t *len);

/* ---- decoding ----------------------------------------------------------------------------- */

/* Flags of ri_detokenize and ri_detok_new. */
enum {
    /* Control tokens produce no text (llama.cpp's special = false; Hugging Face's
     * skip_special_tokens). */
    RI_DETOK_SKIP_SPECIAL = 1u << 0,
};

/* The text of ids[0..n): the pieces concatenated, with every invalid UTF-8 sequence replaced
 * by U+FFFD (Hugging Face's decoder and Python's errors="replace" rule). *text is NUL-terminated
 * and freed with free(); *len excludes the NUL. RF_ERR_ARGUMENT for an id out of range. */
RI_API rf_status ri_detokenize(const ri_tokenizer *tok, const int32_t *ids, size_t n,
                               unsigned flags, char **text, size_t *len, rf_error *err);

/* A streaming detokenizer: tokens in, complete UTF-8 out. Bytes of a sequence that is not
 * complete yet are held back until a later token completes it; a sequence that can no longer
 * become valid is emitted as U+FFFD. Concatenating every push and the final flush gives exactly
 * ri_detokenize of the same ids. */
typedef struct ri_detok ri_detok;

/* NULL and err filled on allocation failure. tok must outlive the detokenizer. */
RI_API ri_detok *ri_detok_new(const ri_tokenizer *tok, unsigned flags, rf_error *err);

/* Adds token id; *text and *len receive the text that became complete (possibly empty), valid until
 * the next call on d. RF_ERR_ARGUMENT for an id out of range (nothing is consumed). */
RI_API rf_status ri_detok_push(ri_detok *d, int32_t id, const char **text, size_t *len,
                               rf_error *err);

/* Ends the stream: *text and *len receive the held-back bytes, an incomplete sequence as U+FFFD
 * (empty when nothing is held). The detokenizer is then empty and may be used again. */
RI_API void ri_detok_flush(ri_detok *d, const char **text, size_t *len);

/* Drops any held-back bytes. */
RI_API void ri_detok_reset(ri_detok *d);

/* Frees d (NULL is allowed). */
RI_API void ri_detok_free(ri_detok *d);

/* ---- chat templates ----------------------------------------------------------------------- */

/* One chat message: role ("system", "user", "assistant", "tool") and content, both UTF-8,
 * NUL-terminated. */
typedef struct ri_chat_message {
    const char *role;
    const char *content;
} ri_chat_message;

/* Renders the Jinja chat template tmpl for messages[0..n_messages) as Hugging Face transformers'
 * apply_chat_template does (trim_blocks and lstrip_blocks on, no tools, bos_token and eos_token
 * empty), ending with the assistant turn's opening when add_generation_prompt is set. *out is
 * NUL-terminated and freed with free(); *out_len (if not NULL) excludes the NUL.
 * Errors name the construct and its offset in the template ("line 3, column 8, offset 71"):
 * RF_ERR_UNSUPPORTED for Jinja outside the supported subset (docs/tokenizer.md),
 * RF_ERR_FORMAT for a malformed template or an error while rendering (an undefined value used
 * in an operation, a template's raise_exception). */
RI_API rf_status ri_chat_apply(const char *tmpl, const ri_chat_message *messages, size_t n_messages,
                               bool add_generation_prompt, char **out, size_t *out_len,
                               rf_error *err);

/* The model's chat template, or NULL when the model has none. */
RI_API const char *ri_tokenizer_chat_template(const ri_tokenizer *tok);

/* The ChatML template Rosetta uses for a model without one (Qwen2.5's, without tools). */
RI_API const char *ri_chat_template_chatml(void);

/* ri_chat_apply with the model's template (ChatML when it has none) and bos_token / eos_token
 * set to the texts of the model's BOS and EOS tokens. */
RI_API rf_status ri_chat_apply_model(const ri_tokenizer *tok, const ri_chat_message *messages,
                                     size_t n_messages, bool add_generation_prompt, char **out,
                                     size_t *out_len, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
