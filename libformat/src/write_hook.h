/* Private: the format writers with a caller's verification hook, as rf_convert runs them
 * (rosetta/convert.h). The public writers call these with no hook. */
#ifndef ROSETTA_WRITE_HOOK_H
#define ROSETTA_WRITE_HOOK_H

#include "rosetta/apr.h"
#include "rosetta/gguf.h"
#include "io.h"
#include "rosetta/safetensors.h"

typedef struct write_hook {
    /* run on each finished data file after the writer's own check, before the rename */
    rf_status (*verify)(const char *temp_path, const char *final_path, void *ctx, rf_error *err);
    void *ctx;
    /* called after a tensor's bytes were written or compared, so that their mapped pages can
     * be dropped (rf_convert's memory bound); may be NULL */
    void (*release)(const void *data, uint64_t n, void *ctx);
    void *release_ctx;
} write_hook;

/* hook->release(data, n) when there is one. */
void rfi_write_hook_release(const write_hook *hook, const void *data, uint64_t n);

/* Tensor bytes are written and compared in pieces of this size, each released after use, so
 * that a large tensor never has all its pages resident at once. */
#define WRITE_HOOK_PIECE ((uint64_t)64 << 20)

/* rf_writer_commit running own(temp, own_ctx) and then hook->verify (hook may be NULL). */
rf_status rfi_write_hook_commit(rf_writer *w, const char *final_path, rf_verify_fn own,
                                void *own_ctx, const write_hook *hook, rf_error *err);

rf_status rfi_gguf_write_hooked(const rf_model *m, const char *path,
                                const rf_gguf_write_options *opts, const write_hook *hook,
                                rf_error *err);
rf_status rfi_apr_write_hooked(const rf_model *m, const char *path,
                               const rf_apr_write_options *opts, const write_hook *hook,
                               rf_error *err);
rf_status rfi_safetensors_write_hooked(const rf_model *m, const char *path_or_dir,
                                       const rf_safetensors_write_options *opts,
                                       const write_hook *hook, rf_error *err);

/* The GGUF architecture name for a configured architecture ("qwen2" for "qwen2" or an HF class
 * name such as "Qwen2ForCausalLM", "llama" for Mistral), or NULL when none can be named. */
const char *rfi_gguf_architecture_name(const char *arch);

/* RF_OK when a GGUF model written from m will name its architecture (rf_convert checks it
 * before any work; rf_gguf_write checks it for non-GGUF sources, and writes a GGUF source as
 * it is, since GGUF files that are not models, such as imatrix files, have no architecture):
 * a GGUF m has a string
 * general.architecture of lower-case letters, digits, '_' and '-'; any other m has a configured
 * architecture with a GGUF name. Otherwise RF_ERR_CONTRACT naming the rule (gguf.architecture)
 * and what m has instead; path starts the message. */
rf_status rfi_gguf_check_architecture(const rf_model *m, const char *path, rf_error *err);

#endif
