/* The model view container: tensors with unique names, lookups, metadata deep copies, warnings. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "model_internal.h"
#include "rosetta/model.h"

Test(model, tensors_and_lookup)
{
    rf_error err;
    rf_model *m = rf_model_new(RF_FORMAT_GGUF, &err);
    cr_assert_not_null(m);
    char name[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", i);
        rf_tensor t = {.name = name, .dtype = RF_DTYPE_F32, .ndim = 2, .shape = {4, (uint64_t)i}};
        cr_assert_eq(rf_model_add_tensor(m, &t, &err), RF_OK, "%s", err.message);
    }
    cr_assert_eq(rf_model_n_tensors(m), 1000);
    const rf_tensor *t = rf_model_find_tensor(m, "blk.517.attn_q.weight");
    cr_assert_not_null(t);
    cr_assert_eq(t->shape[1], 517);
    cr_assert_null(rf_model_find_tensor(m, "blk.1000.attn_q.weight"));
    rf_tensor dup = {.name = "blk.3.attn_q.weight", .dtype = RF_DTYPE_F32, .ndim = 1};
    cr_assert_eq(rf_model_add_tensor(m, &dup, &err), RF_ERR_FORMAT);
    cr_assert(strstr(err.message, "blk.3.attn_q.weight"), "%s", err.message);
    rf_tensor deep = {.name = "x", .ndim = RF_MAX_DIMS + 1};
    cr_assert_eq(rf_model_add_tensor(m, &deep, &err), RF_ERR_UNSUPPORTED);
    rf_model_free(m);
}

Test(model, kv_deep_copy)
{
    rf_model *m = rf_model_new(RF_FORMAT_GGUF, NULL);
    char text[] = "hello";
    rf_value items[2] = {{.type = RF_VALUE_STRING, .as.str = {text, 5}},
                         {.type = RF_VALUE_STRING, .as.str = {"b", 1}}};
    rf_value arr = {.type = RF_VALUE_ARRAY, .as.arr = {RF_VALUE_STRING, 2, items}};
    cr_assert_eq(rf_model_add_kv(m, "tokenizer.ggml.tokens", &arr, NULL), RF_OK);
    text[0] = 'J'; /* the model must hold its own copy */
    const rf_kv *kv = rf_model_find_kv(m, "tokenizer.ggml.tokens");
    cr_assert_not_null(kv);
    cr_assert_str_eq(kv->value.as.arr.items[0].as.str.data, "hello");
    rf_value u = {.type = RF_VALUE_U32, .as.u = 7};
    rf_model_add_kv(m, "n", &u, NULL);
    uint64_t v;
    double d;
    int64_t i;
    cr_assert(rf_value_as_u64(&rf_model_find_kv(m, "n")->value, &v) && v == 7);
    cr_assert(rf_value_as_f64(&rf_model_find_kv(m, "n")->value, &d) && d == 7.0);
    rf_value neg = {.type = RF_VALUE_I32, .as.i = -1};
    cr_assert(!rf_value_as_u64(&neg, &v), "negative does not fit u64");
    cr_assert(rf_value_as_i64(&neg, &i) && i == -1);
    cr_assert_str_eq(rf_value_type_name(RF_VALUE_F64), "f64");
    rf_model_add_warning(m, "header CRC mismatch at offset %d", 40);
    cr_assert_eq(rf_model_n_warnings(m), 1);
    cr_assert_str_eq(rf_model_warning(m, 0), "header CRC mismatch at offset 40");
    cr_assert_eq(rf_model_config_get(m)->tie_word_embeddings, -1);
    rf_model_free(m);
}

Test(model, open_rejects_unknown_content)
{
    char path[] = "/tmp/rosetta-model-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(write(fd, "not a model at all", 18) == 18);
    close(fd);
    rf_error err;
    cr_assert_null(rf_model_open(path, NULL, &err));
    cr_assert_eq(err.status, RF_ERR_FORMAT);
    cr_assert(strstr(err.message, path) && strstr(err.message, "offset 0"), "%s", err.message);
    unlink(path);
}

/* The model's allocator refuses sizes that would wrap instead of handing out a short block. */
Test(model, allocation_sizes_are_checked)
{
    rf_model *m = rf_model_new(RF_FORMAT_GGUF, NULL);
    cr_assert_not_null(m);
    cr_assert_null(rf_model_alloc(m, SIZE_MAX), "SIZE_MAX rounded up would wrap to 0");
    cr_assert_null(rf_model_alloc(m, SIZE_MAX - 7));
    cr_assert_null(rf_model_alloc_array(m, (uint64_t)SIZE_MAX / 8 + 1, 8), "count x size wraps");
    cr_assert_null(rf_model_alloc_array(m, UINT64_MAX, 1));
    cr_assert_null(rf_model_strndup(m, "x", SIZE_MAX));
    uint32_t *a = rf_model_alloc_array(m, 1000, sizeof *a);
    cr_assert_not_null(a);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(a[i], 0u, "zeroed");
    cr_assert_not_null(rf_model_alloc_array(m, 0, 8), "an empty array is a valid block");
    rf_model_free(m);
}
