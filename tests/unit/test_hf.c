/* Hugging Face companion files: config.json keys and aliases with strict number checks,
 * generation_config.json, tokenizer.json (vocabulary, added tokens, both merge spellings, token
 * types), tokenizer_config.json and chat_template.jinja; the files the writer builds for models
 * that came without them; the strict JSON helpers (syntax, Python-style numbers, indentation). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_internal.h"
#include "hf_internal.h"
#include "helpers/test_fs.h"
#include "rosetta/model.h"
#include "rosetta/safetensors.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static char *temp_dir(void)
{
    char *dir = strdup("/tmp/rosetta-hf-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

static void remove_tree(const char *dir) { test_remove_tree(dir); }

static void put(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void drop(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

/* A checkpoint directory with one small tensor and no companions yet. */
static char *checkpoint(void)
{
    char *dir = temp_dir();
    const char h[] = "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[2],"
                     "\"data_offsets\":[0,8]}}";
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    uint64_t n = sizeof h - 1;
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(h, 1, n, f);
    float data[2] = {1, 1};
    fwrite(data, 1, 8, f);
    fclose(f);
    return dir;
}

static rf_model *open_ok(const char *dir)
{
    rf_error err = {0};
    rf_model *m = rf_model_open(dir, NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    return m;
}

static void open_fails(const char *dir, const char *want)
{
    rf_error err = {0};
    rf_model *m = rf_model_open(dir, NULL, &err);
    cr_assert_null(m, "accepted (wanted: %s)", want);
    cr_assert(strstr(err.message, want) != NULL, "message: %s\nwanted: %s", err.message, want);
}

static const char QWEN2_CONFIG[] =
    "{\n  \"architectures\": [\"Qwen2ForCausalLM\"],\n  \"bos_token_id\": 151643,\n"
    "  \"eos_token_id\": 151645,\n  \"hidden_size\": 896,\n  \"intermediate_size\": 4864,\n"
    "  \"max_position_embeddings\": 32768,\n  \"model_type\": \"qwen2\",\n"
    "  \"num_attention_heads\": 14,\n  \"num_hidden_layers\": 24,\n"
    "  \"num_key_value_heads\": 2,\n  \"rms_norm_eps\": 1e-06,\n  \"rope_theta\": 1000000.0,\n"
    "  \"tie_word_embeddings\": true,\n  \"torch_dtype\": \"bfloat16\",\n"
    "  \"vocab_size\": 151936,\n  \"_name_or_path\": \"Qwen/Qwen2.5-0.5B-Instruct\"\n}\n";

/* ---- config.json ------------------------------------------------------------------------- */

Test(hf_config, qwen2_keys)
{
    char *dir = checkpoint();
    put(dir, "config.json", QWEN2_CONFIG);
    rf_model *m = open_ok(dir);
    const rf_model_config *c = rf_model_config_get(m);
    cr_assert_str_eq(c->architecture, "qwen2");
    cr_assert_str_eq(c->name, "Qwen/Qwen2.5-0.5B-Instruct");
    cr_assert_eq(c->hidden_size, 896);
    cr_assert_eq(c->n_layers, 24);
    cr_assert_eq(c->n_heads, 14);
    cr_assert_eq(c->n_kv_heads, 2);
    cr_assert_eq(c->head_dim, 64, "hidden / heads");
    cr_assert_eq(c->intermediate_size, 4864);
    cr_assert_eq(c->vocab_size, 151936);
    cr_assert_eq(c->context_length, 32768);
    cr_assert_eq(c->rope_theta, 1000000.0);
    cr_assert_eq(c->rope_type, RF_ROPE_NEOX);
    cr_assert_eq(c->rms_norm_eps, 1e-6);
    cr_assert_eq(c->tie_word_embeddings, 1);
    cr_assert_eq(c->bos_token_id, 151643);
    cr_assert_eq(c->eos_token_id, 151645);
    cr_assert_eq(c->pad_token_id, -1);
    /* the file is kept as compact JSON, numbers spelled as they were */
    const rf_kv *raw = rf_model_find_kv(m, "hf.config.json");
    cr_assert_not_null(raw);
    cr_assert_eq(raw->value.type, RF_VALUE_JSON);
    cr_assert(strncmp(raw->value.as.str.data, "{\"architectures\":[\"Qwen2ForCausalLM\"],", 38) ==
                  0,
              "%s", raw->value.as.str.data);
    cr_assert(strstr(raw->value.as.str.data, "\"rope_theta\":1000000.0,") != NULL);
    rf_model_free(m);
    remove_tree(dir);
    free(dir);
}

Test(hf_config, aliases_and_defaults)
{
    char *dir = checkpoint();
    put(dir, "config.json",
        "{\"architectures\":[\"LlamaForCausalLM\"],\"n_embd\":64,\"n_layer\":3,\"n_head\":8,"
        "\"n_positions\":128,\"layer_norm_epsilon\":1e-5,\"n_inner\":256,\"head_dim\":16,"
        "\"pad_token_id\":null}");
    rf_model *m = open_ok(dir);
    const rf_model_config *c = rf_model_config_get(m);
    cr_assert_str_eq(c->architecture, "llama", "from architectures[0]");
    cr_assert_eq(c->rope_type, RF_ROPE_NORM);
    cr_assert_eq(c->hidden_size, 64);
    cr_assert_eq(c->n_layers, 3);
    cr_assert_eq(c->n_heads, 8);
    cr_assert_eq(c->n_kv_heads, 8, "num_key_value_heads defaults to the head count");
    cr_assert_eq(c->head_dim, 16, "explicit head_dim wins");
    cr_assert_eq(c->context_length, 128);
    cr_assert_eq(c->intermediate_size, 256);
    cr_assert_eq(c->rms_norm_eps, 1e-5);
    cr_assert_eq(c->tie_word_embeddings, -1, "unknown when absent");
    cr_assert_eq(c->pad_token_id, -1);
    rf_model_free(m);
    /* transformers 5 keeps rope_theta under rope_parameters */
    put(dir, "config.json",
        "{\"model_type\":\"Qwen2\",\"d_model\":32,\"num_layers\":1,"
        "\"rope_parameters\":{\"rope_theta\":500000.0,\"rope_type\":\"default\"}}");
    m = open_ok(dir);
    c = rf_model_config_get(m);
    cr_assert_str_eq(c->architecture, "qwen2", "model_type, lower case");
    cr_assert_eq(c->rope_theta, 500000.0);
    cr_assert_eq(c->hidden_size, 32);
    cr_assert_eq(c->n_layers, 1);
    rf_model_free(m);
    remove_tree(dir);
    free(dir);
}

Test(hf_config, bad_values_name_the_key_and_file)
{
    char *dir = checkpoint();
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"{\"rms_norm_eps\": NaN}", "config.json: invalid JSON at offset 17: key \"rms_norm_eps\": "
                                    "NaN is not a finite number"},
        {"{\"rope_theta\": Infinity}", "key \"rope_theta\": Infinity is not a finite number"},
        {"{\"rope_theta\": -Infinity}", "key \"rope_theta\": -Infinity is not a finite number"},
        {"{\"rope_theta\": 1e999}", "config.json: \"rope_theta\" is not a finite number"},
        {"{\"rms_norm_eps\": -1e-6}", "config.json: \"rms_norm_eps\" = -9.9999999999999995e-07 is "
                                      "negative"},
        {"{\"hidden_size\": -896}", "config.json: \"hidden_size\" = -896 is negative"},
        {"{\"n_embd\": 89.5}", "config.json: \"n_embd\" = 89.5 is not an integer"},
        {"{\"num_hidden_layers\": \"24\"}", "\"num_hidden_layers\" is a string, expected a "
                                            "non-negative integer"},
        {"{\"rope_theta\": \"1e6\"}", "\"rope_theta\" is a string, expected a number"},
        {"{\"tie_word_embeddings\": 1}", "\"tie_word_embeddings\" is a number, expected true or "
                                         "false"},
        {"{\"eos_token_id\": 1.5}", "\"eos_token_id\" = 1.5 is not a valid token id"},
        {"{\"hidden_size\": 1, \"hidden_size\": 2}", "config.json: duplicate key \"hidden_size\""},
        {"[1]", "config.json: is an array, expected a JSON object"},
        {"{\"a\": 1,}", "config.json: invalid JSON at offset 8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put(dir, "config.json", cases[i].json);
        open_fails(dir, cases[i].want);
    }
    /* lenient opening reports the bad file and keeps the tensors */
    put(dir, "config.json", "{\"rms_norm_eps\": NaN}");
    rf_open_options lenient = {.lenient = true};
    rf_error err = {0};
    rf_model *m = rf_model_open(dir, &lenient, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_tensors(m), 1);
    cr_assert_eq(rf_model_n_warnings(m), 1);
    cr_assert(strstr(rf_model_warning(m, 0), "rms_norm_eps") != NULL);
    rf_model_free(m);
    /* a negative token id means "none": a warning, not an error */
    put(dir, "config.json", "{\"pad_token_id\": -1}");
    m = open_ok(dir);
    cr_assert_eq(rf_model_config_get(m)->pad_token_id, -1);
    cr_assert_eq(rf_model_n_warnings(m), 1);
    rf_model_free(m);
    remove_tree(dir);
    free(dir);
}

Test(hf_config, generation_config_fills_ids_and_keeps_the_eos_list)
{
    char *dir = checkpoint();
    put(dir, "config.json", "{\"model_type\":\"qwen2\",\"bos_token_id\":7}");
    put(dir, "generation_config.json",
        "{\"bos_token_id\":8,\"eos_token_id\":[9,7],\"pad_token_id\":7,\"temperature\":0.7}");
    rf_model *m = open_ok(dir);
    const rf_model_config *c = rf_model_config_get(m);
    cr_assert_eq(c->bos_token_id, 7, "config.json wins");
    cr_assert_eq(c->eos_token_id, 9, "first of the list");
    cr_assert_eq(c->pad_token_id, 7);
    const rf_kv *raw = rf_model_find_kv(m, "hf.generation_config.json");
    cr_assert_not_null(raw);
    cr_assert(strstr(raw->value.as.str.data, "\"eos_token_id\":[9,7]") != NULL);
    rf_model_free(m);
    put(dir, "generation_config.json", "{\"eos_token_id\": NaN}");
    open_fails(dir, "generation_config.json: invalid JSON at offset 17: key \"eos_token_id\"");
    remove_tree(dir);
    free(dir);
}

/* ---- tokenizer.json ---------------------------------------------------------------------- */

static const char TOKENIZER[] =
    "{\"version\":\"1.0\",\"added_tokens\":["
    "{\"id\":6,\"content\":\"<|endoftext|>\",\"special\":true},"
    "{\"id\":7,\"content\":\"<|fim_pad|>\",\"special\":false},"
    "{\"id\":8,\"content\":\"<tool_call>\",\"special\":false}],"
    "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
    "{\"Regex\":\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| "
    "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
    "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\"}]},"
    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"\\u0120\":3,"
    "\"\\u0120a\":4},\"merges\":[\"a b\",[\"\\u0120\",\"a\"]]}}";

Test(hf_tokenizer, vocabulary_added_tokens_merges_and_types)
{
    char *dir = checkpoint();
    put(dir, "tokenizer.json", TOKENIZER);
    put(dir, "tokenizer_config.json",
        "{\"add_bos_token\":true,\"chat_template\":\"{{ x }}\",\"eos_token\":\"<|endoftext|>\"}");
    rf_model *m = open_ok(dir);
    const rf_tokenizer *t = rf_model_tokenizer(m);
    cr_assert_not_null(t);
    cr_assert_str_eq(t->model, "gpt2", "byte-level BPE");
    cr_assert_str_eq(t->pre, "qwen2", "Qwen2's split regex");
    cr_assert_eq(t->n_tokens, 9);
    cr_assert_str_eq(t->tokens[2], "ab");
    cr_assert_str_eq(t->tokens[3], "\xc4\xa0", "U+0120 as UTF-8");
    cr_assert_str_eq(t->tokens[5], "[PAD5]", "a hole in the ids");
    cr_assert_eq(t->token_types[5], RF_TOKEN_UNUSED);
    cr_assert_eq(t->token_types[0], RF_TOKEN_NORMAL);
    cr_assert_eq(t->token_types[6], RF_TOKEN_CONTROL, "special");
    cr_assert_eq(t->token_types[7], RF_TOKEN_CONTROL, "<|...|> looks special");
    cr_assert_eq(t->token_types[8], RF_TOKEN_USER_DEFINED);
    cr_assert_eq(t->n_merges, 2);
    cr_assert_str_eq(t->merges[0], "a b");
    cr_assert_str_eq(t->merges[1], "\xc4\xa0 a", "pair form joined with one space");
    cr_assert(t->add_bos);
    const rf_model_config *c = rf_model_config_get(m);
    cr_assert_str_eq(c->chat_template, "{{ x }}");
    cr_assert_eq(c->eos_token_id, 6, "from eos_token when no config gives it");
    cr_assert_eq(rf_model_n_warnings(m), 1, "the hole is reported");
    cr_assert_not_null(rf_model_find_kv(m, "hf.tokenizer.json"));
    cr_assert_not_null(rf_model_find_kv(m, "hf.tokenizer_config.json"));
    rf_model_free(m);
    remove_tree(dir);
    free(dir);
}

Test(hf_tokenizer, chat_template_forms)
{
    char *dir = checkpoint();
    put(dir, "tokenizer_config.json",
        "{\"chat_template\":[{\"name\":\"tool_use\",\"template\":\"T\"},"
        "{\"name\":\"default\",\"template\":\"D\"}]}");
    rf_model *m = open_ok(dir);
    cr_assert_str_eq(rf_model_config_get(m)->chat_template, "D");
    cr_assert(!rf_model_tokenizer(m)->add_bos, "add_bos is false unless said");
    rf_model_free(m);
    drop(dir, "tokenizer_config.json");
    put(dir, "chat_template.jinja", "{% for m in messages %}\n{{ m }}{% endfor %}");
    m = open_ok(dir);
    cr_assert_str_eq(rf_model_config_get(m)->chat_template,
                     "{% for m in messages %}\n{{ m }}{% endfor %}");
    const rf_kv *raw = rf_model_find_kv(m, "hf.chat_template.jinja");
    cr_assert_not_null(raw);
    cr_assert_str_eq(raw->value.as.str.data, "\"{% for m in messages %}\\n{{ m }}{% endfor %}\"");
    rf_model_free(m);
    remove_tree(dir);
    free(dir);
}

Test(hf_tokenizer, malformed_tokenizers)
{
    char *dir = checkpoint();
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}",
         "tokenizer.json: model.vocab[\"a\"]: id is negative"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}",
         "model.vocab: id 0 is used by both \"a\" and \"b\""},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":4000000000},\"merges\":[]}}",
         "id 4000000000 is too large"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[1]}}",
         "model.merges[0] is a number"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[\"a\"]]}}",
         "model.merges[0] is an array"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":[],\"merges\":[]}}", "model.vocab is an array"},
        {"{\"added_tokens\":[{\"id\":0}],\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "added_tokens: \"content\" is missing"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}", "the vocabulary is empty"},
        {"{\"model\":3}", "\"model\" is a number, expected an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put(dir, "tokenizer.json", cases[i].json);
        open_fails(dir, cases[i].want);
    }
    drop(dir, "tokenizer.json");
    put(dir, "tokenizer_config.json", "{\"add_bos_token\":\"yes\"}");
    open_fails(dir, "tokenizer_config.json: \"add_bos_token\" is a string, expected true or false");
    remove_tree(dir);
    free(dir);
}

/* ---- files built for models that came without them --------------------------------------- */

Test(hf_build, typed_view_survives_a_write_and_read)
{
    rf_model *m = rf_model_new(RF_FORMAT_GGUF, NULL);
    float w[4] = {1, 2, 3, 4};
    rf_tensor t = {.name = "output_norm.weight",
                   .dtype = RF_DTYPE_F32,
                   .ndim = 1,
                   .shape = {4},
                   .data = (const uint8_t *)w,
                   .nbytes = 16};
    cr_assert_eq(rf_model_add_tensor(m, &t, NULL), RF_OK);
    rf_model_config *c = rf_model_config_mut(m);
    c->architecture = "qwen2";
    c->hidden_size = 4;
    c->n_layers = 1;
    c->n_heads = 2;
    c->n_kv_heads = 1;
    c->head_dim = 2;
    c->intermediate_size = 8;
    c->vocab_size = 10;
    c->context_length = 64;
    c->rope_theta = 1000000.0;
    c->rms_norm_eps = 1e-6;
    c->tie_word_embeddings = 1;
    c->bos_token_id = 7;
    c->eos_token_id = 8;
    c->pad_token_id = 7;
    c->chat_template = "{{ messages }}";
    rf_tokenizer *tok = rf_model_tokenizer_mut(m);
    static const char *tokens[] = {"a",
                                   "b",
                                   "ab",
                                   "\xc4\xa0",
                                   "\xc4\xa0\x61", /* "Ġa" */
                                   "c",
                                   "d",
                                   "<|endoftext|>",
                                   "<|im_end|>",
                                   "[PAD9]"};
    static const int32_t types[] = {1, 1, 1, 1, 1, 1, 1, 3, 3, 5};
    static const char *merges[] = {"a b", "\xc4\xa0 a"};
    tok->model = "gpt2";
    tok->pre = "qwen2";
    tok->tokens = tokens;
    tok->token_types = types;
    tok->n_tokens = 10;
    tok->merges = merges;
    tok->n_merges = 2;
    char *dir = temp_dir();
    char out[1024];
    snprintf(out, sizeof out, "%s/hf", dir);
    rf_error err = {0};
    cr_assert_eq(rf_safetensors_write(m, out, NULL, &err), RF_OK, "%s", err.message);
    rf_model *back = open_ok(out);
    cr_assert_not_null(rf_model_find_tensor(back, "model.norm.weight"), "GGUF name mapped");
    const rf_model_config *b = rf_model_config_get(back);
    cr_assert_str_eq(b->architecture, "qwen2");
    cr_assert_eq(b->hidden_size, 4);
    cr_assert_eq(b->n_layers, 1);
    cr_assert_eq(b->n_heads, 2);
    cr_assert_eq(b->n_kv_heads, 1);
    cr_assert_eq(b->head_dim, 2);
    cr_assert_eq(b->intermediate_size, 8);
    cr_assert_eq(b->vocab_size, 10);
    cr_assert_eq(b->context_length, 64);
    cr_assert_eq(b->rope_theta, 1000000.0);
    cr_assert_eq(b->rope_type, RF_ROPE_NEOX);
    cr_assert_eq(b->rms_norm_eps, 1e-6);
    cr_assert_eq(b->tie_word_embeddings, 1);
    cr_assert_eq(b->bos_token_id, 7);
    cr_assert_eq(b->eos_token_id, 8);
    cr_assert_eq(b->pad_token_id, 7);
    cr_assert_str_eq(b->chat_template, "{{ messages }}");
    const rf_tokenizer *bt = rf_model_tokenizer(back);
    cr_assert_not_null(bt);
    cr_assert_eq(bt->n_tokens, 9, "the [PAD9] filler is not a real token");
    for (int i = 0; i < 9; i++) {
        cr_assert_str_eq(bt->tokens[i], tokens[i]);
        cr_assert_eq(bt->token_types[i], types[i], "type of %d", i);
    }
    cr_assert_eq(bt->n_merges, 2);
    cr_assert_str_eq(bt->merges[1], "\xc4\xa0 a");
    cr_assert_str_eq(bt->pre, "qwen2");
    cr_assert_str_eq(bt->model, "gpt2");
    /* config.json reads like transformers' own output */
    char path[1100];
    snprintf(path, sizeof path, "%s/config.json", out);
    FILE *f = fopen(path, "rb");
    char text[4096] = {0};
    cr_assert_gt(fread(text, 1, sizeof text - 1, f), 0);
    fclose(f);
    cr_assert(strstr(text, "{\n  \"architectures\": [\n    \"Qwen2ForCausalLM\"\n  ],\n") == text,
              "%s", text);
    cr_assert(strstr(text, "  \"rms_norm_eps\": 1e-06,\n  \"rope_theta\": 1000000.0,\n") != NULL,
              "%s", text);
    cr_assert(strstr(text, "\"torch_dtype\": \"float32\"") != NULL, "%s", text);
    rf_model_free(back);
    rf_model_free(m);
    remove_tree(dir);
    free(dir);
}

/* ---- JSON helpers ------------------------------------------------------------------------- */

Test(hf_json, doubles_print_like_python_repr)
{
    static const struct {
        double v;
        const char *repr;
    } cases[] = {
        {1e-06, "1e-06"},
        {1000000.0, "1000000.0"},
        {1e16, "1e+16"},
        {0.1, "0.1"},
        {1e-5, "1e-05"},
        {0.0001, "0.0001"},
        {123456789012345678.0, "1.2345678901234568e+17"},
        {-0.0, "-0.0"},
        {2.5, "2.5"},
        {1e22, "1e+22"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {1234567890123456.0, "1234567890123456.0"},
        {0.3, "0.3"},
        {100.0, "100.0"},
        {0.02, "0.02"},
        {1e-12, "1e-12"},
        {12345.678, "12345.678"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hf_buf b = {0};
        rfi_hf_buf_put_double(&b, cases[i].v);
        cr_assert_str_eq(b.data, cases[i].repr);
        hf_buf_free(&b);
    }
}

Test(hf_json, f32_values_print_with_f32_digits)
{
    /* config reals from GGUF/APR are binary32: print the digits that name that f32 */
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {(float)1e-6, "1e-06"},   {(float)1e-5, "1e-05"}, {(float)1000000.0, "1000000.0"},
        {(float)0.1, "0.1"},      {0.1, "0.1"},           {1e-6, "1e-06"},
        {1.0000001, "1.0000001"}, /* not a binary32 value: double digits */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hf_buf b = {0};
        rfi_hf_buf_put_real(&b, cases[i].v, true);
        cr_assert_str_eq(b.data, cases[i].text);
        hf_buf_free(&b);
    }
    hf_buf b = {0};
    rfi_hf_buf_put_double(&b, (float)1e-6);
    cr_assert_str_eq(b.data, "9.999999974752427e-07", "without as_float the double is exact");
    hf_buf_free(&b);
}

Test(hf_json, pretty_matches_json_dumps_indent_2)
{
    const char *compact = "{\"a\":[1,{\"b\":[]},{}],\"c\":\"x,:{\\\"\",\"d\":{\"e\":null}}";
    const char *want = "{\n  \"a\": [\n    1,\n    {\n      \"b\": []\n    },\n    {}\n  ],\n"
                       "  \"c\": \"x,:{\\\"\",\n  \"d\": {\n    \"e\": null\n  }\n}\n";
    hf_buf b = {0};
    rfi_hf_buf_put_pretty(&b, compact, strlen(compact), true);
    cr_assert_str_eq(b.data, want);
    hf_buf_free(&b);
    /* minify is the inverse on checked text */
    rf_model *m = rf_model_new(RF_FORMAT_SAFETENSORS, NULL);
    size_t n;
    char *again = rfi_hf_json_minify(m, want, strlen(want), &n);
    cr_assert_str_eq(again, compact);
    rf_model_free(m);
}

Test(hf_json, strict_syntax)
{
    static const struct {
        const char *text;
        const char *want; /* NULL: valid */
    } cases[] = {
        {"{\"a\":[1,2.5e-3,-0,true,false,null,\"\\u00e9\\ud83d\\ude00\"]}", NULL},
        {" \t\r\n{}\n ", NULL},
        {"{\"a\":+1}", "unexpected character '+'"},
        {"{\"a\":.5}", "unexpected character '.'"},
        {"{\"a\":1.}", "a fraction needs a digit"},
        {"{\"a\":1e}", "an exponent needs a digit"},
        {"{\"a\":tru}", "unexpected character 't'"},
        {"{'a':1}", "expected a string key"},
        {"{\"a\" 1}", "expected ':' after a key"},
        {"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
        {"[1,2", "unexpected end of JSON inside an array"},
        {"\"abc", "unterminated string"},
        {"\"\\x\"", "invalid escape '\\x'"},
        {"\"\\u12zz\"", "\\u escape needs 4 hex digits"},
        {"\"\\udc00\"", "lone low surrogate"},
        {"\"\\ud800\\u0041\"", "followed by \\u0041"},
        {"\"\xc3\"", "invalid UTF-8 byte 0xc3 inside a string"},
        {"", "unexpected end of JSON"},
        {"{} {}", "unexpected data after the end"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rf_error err = {0};
        rf_status st = rfi_hf_json_check(cases[i].text, strlen(cases[i].text), 100, &err);
        if (!cases[i].want) {
            cr_assert_eq(st, RF_OK, "%s: %s", cases[i].text, err.message);
            continue;
        }
        cr_assert_eq(st, RF_ERR_FORMAT, "accepted %s", cases[i].text);
        cr_assert(strstr(err.message, cases[i].want) != NULL, "%s: %s", cases[i].text, err.message);
        cr_assert(strstr(err.message, "at offset 1") != NULL, "offsets add the base: %s",
                  err.message);
    }
    /* nesting is bounded */
    size_t depth = HF_JSON_MAX_DEPTH + 1;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = 0;
    rf_error err = {0};
    cr_assert_eq(rfi_hf_json_check(deep, 2 * depth, 0, &err), RF_ERR_FORMAT);
    cr_assert(strstr(err.message, "nesting deeper than 512 levels") != NULL, "%s", err.message);
    deep[depth - 1] = ' ';
    deep[depth] = ' ';
    cr_assert_eq(rfi_hf_json_check(deep, 2 * depth, 0, &err), RF_OK, "512 levels are fine: %s",
                 err.message);
    free(deep);
}
