/* The Hugging Face files that sit beside SafeTensors weights: which ones are read, in what order,
 * with what size limits, and how each is kept in the raw metadata ("hf.<file name>" -> compact
 * JSON text) so that a writer can reproduce it.
 * Not for: interpreting their contents (hf_config.c, hf_tokenizer.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "hf_internal.h"

typedef rf_status (*reader_fn)(rf_model *, const char *, const char *, size_t, rf_error *);

static const struct {
    const char *file;
    uint64_t max_bytes;
    reader_fn read;
} FILES[] = {
    /* config first: generation_config and tokenizer_config only fill what it leaves out */
    {"config.json", 16u << 20, rfi_hf_config_read},
    {"generation_config.json", 16u << 20, rfi_hf_generation_config_read},
    {"tokenizer.json", 512u << 20, rfi_hf_tokenizer_read},
    {"tokenizer_config.json", 64u << 20, rfi_hf_tokenizer_config_read},
};

static rf_status keep_raw(rf_model *m, const char *file, const char *json, size_t len,
                          rf_error *err)
{
    char key[64];
    snprintf(key, sizeof key, HF_KV_PREFIX "%s", file);
    rf_value v = {.type = RF_VALUE_JSON};
    v.as.str.data = json;
    v.as.str.len = len;
    return rf_model_add_kv(m, key, &v, err);
}

rf_status rfi_hf_read_companions(rf_model *m, const char *dir, rf_error *err)
{
    rf_status st = RF_OK;
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0] && st == RF_OK; i++) {
        char *path = rfi_hf_path_join(dir, FILES[i].file);
        if (!path)
            return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        char *text = NULL;
        size_t len = 0;
        st = rfi_hf_read_file(path, FILES[i].max_bytes, &text, &len, err);
        if (st == RF_ERR_NOT_FOUND) {
            free(path);
            st = RF_OK;
            continue;
        }
        if (st == RF_OK)
            st = FILES[i].read(m, path, text, len, err);
        if (st == RF_OK) {
            size_t compact_len;
            char *compact = rfi_hf_json_minify(m, text, len, &compact_len);
            st = compact ? keep_raw(m, FILES[i].file, compact, compact_len, err)
                         : rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
        }
        free(text);
        free(path);
    }
    if (st != RF_OK)
        return st;
    /* transformers >= 4.43 may keep the template in its own file */
    char *path = rfi_hf_path_join(dir, "chat_template.jinja");
    if (!path)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    st = rfi_hf_read_file(path, 16u << 20, &text, &len, err);
    if (st == RF_ERR_NOT_FOUND) {
        free(path);
        return RF_OK;
    }
    if (st == RF_OK && rf_utf8_valid_prefix(text, len) != len)
        st = rf_error_set(err, RF_ERR_FORMAT, "%s: not valid UTF-8 at offset %zu", path,
                          rf_utf8_valid_prefix(text, len));
    if (st == RF_OK) {
        rf_model_config *cfg = rf_model_config_mut(m);
        if (!cfg->chat_template)
            cfg->chat_template = rf_model_strndup(m, text, len);
        text_buf quoted = {0};
        rfi_json_put_string(&quoted, text, len);
        st = quoted.failed || (!cfg->chat_template && len)
                 ? rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path)
                 : keep_raw(m, "chat_template.jinja", quoted.data, quoted.len, err);
        rfi_text_buf_free(&quoted);
    }
    free(text);
    free(path);
    return st;
}
