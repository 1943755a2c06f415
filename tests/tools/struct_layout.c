/* struct_layout: a helper of tests/interop/rosetta_lib.py (built into build/tests/, never
 * installed). Prints, as one JSON object, the size and the field offsets of every public struct
 * the Python checks mirror with ctypes, so that a layout change in a public header fails the
 * interop tests instead of corrupting memory:
 *   {"rf_tensor": {"size": 128, "fields": {"name": 0, "dtype": 8, ...}}, ...} */
#include <stddef.h>
#include <stdio.h>

#include "rosetta/apr.h"
#include "rosetta/gguf.h"
#include "rosetta/model.h"
#include "rosetta/safetensors.h"
#include "rosetta/status.h"

static int first_struct = 1, first_field;

static void begin(const char *name, size_t size)
{
    printf("%s\n  \"%s\": {\"size\": %zu, \"fields\": {", first_struct ? "{" : ",", name, size);
    first_struct = 0;
    first_field = 1;
}

static void field(const char *name, size_t offset)
{
    printf("%s\"%s\": %zu", first_field ? "" : ", ", name, offset);
    first_field = 0;
}

static void end(void) { printf("}}"); }

#define FIELD(type, member) field(#member, offsetof(type, member))

int main(void)
{
    begin("rf_error", sizeof(rf_error));
    FIELD(rf_error, status);
    FIELD(rf_error, message);
    end();
    begin("rf_tensor", sizeof(rf_tensor));
    FIELD(rf_tensor, name);
    FIELD(rf_tensor, dtype);
    FIELD(rf_tensor, ndim);
    FIELD(rf_tensor, shape);
    FIELD(rf_tensor, data);
    FIELD(rf_tensor, nbytes);
    FIELD(rf_tensor, file_offset);
    FIELD(rf_tensor, source);
    FIELD(rf_tensor, row_stride);
    end();
    begin("rf_value", sizeof(rf_value));
    FIELD(rf_value, type);
    field("as_", offsetof(rf_value, as));
    end();
    begin("rf_kv", sizeof(rf_kv));
    FIELD(rf_kv, key);
    FIELD(rf_kv, value);
    end();
    begin("rf_open_options", sizeof(rf_open_options));
    FIELD(rf_open_options, lenient);
    FIELD(rf_open_options, architecture);
    end();
    begin("rf_model_config", sizeof(rf_model_config));
    FIELD(rf_model_config, architecture);
    FIELD(rf_model_config, name);
    FIELD(rf_model_config, hidden_size);
    FIELD(rf_model_config, n_layers);
    FIELD(rf_model_config, n_heads);
    FIELD(rf_model_config, n_kv_heads);
    FIELD(rf_model_config, head_dim);
    FIELD(rf_model_config, intermediate_size);
    FIELD(rf_model_config, vocab_size);
    FIELD(rf_model_config, context_length);
    FIELD(rf_model_config, rope_theta);
    FIELD(rf_model_config, rope_type);
    FIELD(rf_model_config, rms_norm_eps);
    FIELD(rf_model_config, tie_word_embeddings);
    FIELD(rf_model_config, bos_token_id);
    FIELD(rf_model_config, eos_token_id);
    FIELD(rf_model_config, pad_token_id);
    FIELD(rf_model_config, chat_template);
    end();
    begin("rf_tokenizer", sizeof(rf_tokenizer));
    FIELD(rf_tokenizer, model);
    FIELD(rf_tokenizer, pre);
    FIELD(rf_tokenizer, n_tokens);
    FIELD(rf_tokenizer, tokens);
    FIELD(rf_tokenizer, token_types);
    FIELD(rf_tokenizer, n_merges);
    FIELD(rf_tokenizer, merges);
    FIELD(rf_tokenizer, add_bos);
    end();
    begin("rf_apr_write_options", sizeof(rf_apr_write_options));
    FIELD(rf_apr_write_options, compression);
    FIELD(rf_apr_write_options, zstd_level);
    FIELD(rf_apr_write_options, metadata);
    FIELD(rf_apr_write_options, model_type);
    FIELD(rf_apr_write_options, name);
    FIELD(rf_apr_write_options, extra);
    FIELD(rf_apr_write_options, n_extra);
    FIELD(rf_apr_write_options, extra_flags);
    end();
    begin("rf_gguf_write_options", sizeof(rf_gguf_write_options));
    FIELD(rf_gguf_write_options, alignment);
    FIELD(rf_gguf_write_options, allow_nested_arrays);
    end();
    begin("rf_safetensors_write_options", sizeof(rf_safetensors_write_options));
    FIELD(rf_safetensors_write_options, max_shard_size);
    FIELD(rf_safetensors_write_options, no_companions);
    FIELD(rf_safetensors_write_options, regenerate_companions);
    FIELD(rf_safetensors_write_options, provenance);
    end();
    printf("\n}\n");
    return ferror(stdout) ? 4 : 0;
}
