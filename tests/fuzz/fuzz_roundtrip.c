/* Fuzz target: readers against writers. A model that any reader accepts strictly is written
 * in its own format and in the two others (into the harness's private tmpfs directory). A
 * write that succeeds must give a file the strict reader accepts again (writers verify their
 * output, so a failure here means a writer and a reader disagree), and a write back to the
 * same format must keep every tensor exactly: name, dtype, shape and bytes (and, for GGUF, the
 * keys of every key/value pair in order).
 * Input: one file of any format.
 * fuzz-config: max_len=32768 seeds=tests/fuzz/corpus/fuzz_model,tests/data/bad */
#include "fuzz_common.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosetta/apr.h"
#include "rosetta/gguf.h"
#include "rosetta/safetensors.h"

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz invariant violated: round trip: %s: tensor or key '%s'\n", what, detail);
    abort();
}

static void same_tensors(const rf_model *a, const rf_model *b, const char *format)
{
    char why[256];
    if (rf_model_n_tensors(a) != rf_model_n_tensors(b)) {
        snprintf(why, sizeof why, "%zu tensors, %zu after writing", rf_model_n_tensors(a),
                 rf_model_n_tensors(b));
        fail(format, why);
    }
    for (size_t k = 0; k < rf_model_n_tensors(a); k++) {
        const rf_tensor *x = rf_model_tensor(a, k);
        const rf_tensor *y = rf_model_find_tensor(b, x->name);
        if (!y)
            fail(format, x->name);
        /* GGUF stores a rank-0 tensor as n_dims 1, shape [1] (gguf.h). */
        bool scalar_as_vector =
            strcmp(format, "gguf") == 0 && x->ndim == 0 && y->ndim == 1 && y->shape[0] == 1;
        if (x->dtype != y->dtype || x->nbytes != y->nbytes ||
            (!scalar_as_vector &&
             (x->ndim != y->ndim || memcmp(x->shape, y->shape, sizeof x->shape) != 0)) ||
            (x->nbytes && memcmp(x->data, y->data, (size_t)x->nbytes) != 0))
            fail(format, x->name);
    }
}

static void same_keys(const rf_model *a, const rf_model *b)
{
    /* The GGUF writer keeps every pair in order and may append general.quantization_version
     * and general.alignment. */
    size_t n = rf_model_n_kv(a);
    if (rf_model_n_kv(b) < n)
        fail("gguf", "key/value pairs lost");
    for (size_t k = 0; k < n; k++)
        if (strcmp(rf_model_kv(a, k)->key, rf_model_kv(b, k)->key) != 0 ||
            rf_model_kv(a, k)->value.type != rf_model_kv(b, k)->value.type)
            fail("gguf", rf_model_kv(a, k)->key);
}

/* Opens what a successful write produced, strictly. */
static rf_model *reopen(const char *path, const char *format)
{
    rf_open_options strict = {.lenient = false};
    rf_error err;
    rf_model *m = rf_model_open(path, &strict, &err);
    if (!m) {
        fprintf(stderr, "reopen: %s\n", err.message);
        fail(format, "the strict reader rejects what the writer wrote");
    }
    fz_walk_model(m);
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rf_open_options strict = {.lenient = false};
    rf_error err;
    rf_model *m = rf_model_open(fz_memfd_path(data, size), &strict, &err);
    if (!m)
        return 0;
    rf_format source = rf_model_format(m);
    fz_dir_clear();
    char path[600];

    snprintf(path, sizeof path, "%s/out.gguf", fz_dir());
    if (rf_gguf_write(m, path, NULL, &err) == RF_OK) {
        rf_model *back = reopen(path, "gguf");
        if (source == RF_FORMAT_GGUF) {
            same_tensors(m, back, "gguf");
            same_keys(m, back);
        }
        rf_model_free(back);
    }

    snprintf(path, sizeof path, "%s/out.apr", fz_dir());
    if (rf_apr_write(m, path, NULL, &err) == RF_OK) {
        rf_model *back = reopen(path, "apr");
        if (source == RF_FORMAT_APR)
            same_tensors(m, back, "apr");
        rf_model_free(back);
    }

    snprintf(path, sizeof path, "%s/out.safetensors", fz_dir());
    if (rf_safetensors_write(m, path, NULL, &err) == RF_OK) {
        rf_model *back = reopen(path, "safetensors");
        if (source == RF_FORMAT_SAFETENSORS)
            same_tensors(m, back, "safetensors");
        rf_model_free(back);
    }
    rf_model_free(m);
    return 0;
}
