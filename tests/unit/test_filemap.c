/* The file map (rosetta/filemap.h): on the fixture in all three formats, on models holding every
 * quantized block type, on row-padded APR K-quants and on files damaged in every way a loop can
 * produce (every truncation, random byte flips): the leaf regions tile the file exactly, parents
 * cover their children, tensors agree with the model reader (offsets, sizes, dtypes, shapes) and
 * their values and blocks with rf_dequantize bit for bit; damaged files are mapped, never
 * refused, and say why. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/test_leaks.h"
#include "model_internal.h"
#include "rosetta/apr.h"
#include "rosetta/filemap.h"
#include "rosetta/gguf.h"
#include "rosetta/quant.h"
#include "rosetta/safetensors.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static char tmpdir[512];

static const char *tmp(const char *name)
{
    static char paths[8][600];
    static int next;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "%s/test-tmp", ROSETTA_BUILD);
        mkdir(tmpdir, 0755);
        snprintf(tmpdir, sizeof tmpdir, "%s/test-tmp/unit-filemap-%d", ROSETTA_BUILD,
                 (int)getpid());
        mkdir(tmpdir, 0755);
    }
    char *p = paths[next++ % 8];
    snprintf(p, 600, "%s/%s", tmpdir, name);
    return p;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc(*n ? *n : 1);
    cr_assert(fread(d, 1, *n, f) == *n);
    fclose(f);
    return d;
}

static uint64_t rng = 0x853c49e6748fea9bull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The structural promises of rosetta/filemap.h. */
static void check_invariants(const rf_filemap *m, const char *what)
{
    uint64_t size = rf_filemap_size(m), cursor = 0;
    size_t n = rf_filemap_n_regions(m);
    for (size_t i = 0; i < n; i++) {
        const rf_region *r = rf_filemap_region(m, i);
        cr_assert(r->label && r->value, "%s: region %zu without text", what, i);
        cr_assert(!r->damaged || (r->reason && *r->reason),
                  "%s: region %zu damaged without a "
                  "reason",
                  what, i);
        cr_assert(r->offset + r->size <= size, "%s: region %zu '%s' ends past the file", what, i,
                  r->label);
        if (r->parent >= 0) {
            cr_assert((size_t)r->parent < i, "%s: parent after child", what);
            const rf_region *p = rf_filemap_region(m, (size_t)r->parent);
            cr_assert_eq(r->depth, p->depth + 1, "%s: depth", what);
            cr_assert(r->offset >= p->offset && r->offset + r->size <= p->offset + p->size,
                      "%s: region %zu '%s' [%llu,+%llu) outside its parent '%s' [%llu,+%llu)", what,
                      i, r->label, (unsigned long long)r->offset, (unsigned long long)r->size,
                      p->label, (unsigned long long)p->offset, (unsigned long long)p->size);
        } else {
            cr_assert_eq(r->depth, 0, "%s: root depth", what);
        }
        if (r->n_children == 0 && r->size > 0) {
            cr_assert_eq(r->offset, cursor,
                         "%s: leaf %zu '%s' at %llu, the previous leaf ended at "
                         "%llu",
                         what, i, r->label, (unsigned long long)r->offset,
                         (unsigned long long)cursor);
            cursor = r->offset + r->size;
        }
    }
    cr_assert_eq(cursor, size, "%s: leaves cover %llu of %llu bytes", what,
                 (unsigned long long)cursor, (unsigned long long)size);
    /* children tile their parents */
    for (size_t i = 0; i < n; i++) {
        const rf_region *p = rf_filemap_region(m, i);
        if (p->n_children == 0)
            continue;
        uint64_t at = p->offset;
        size_t seen = 0;
        for (size_t k = i + 1; k < n && seen < p->n_children; k++) {
            const rf_region *c = rf_filemap_region(m, k);
            if (c->parent != (int64_t)i)
                continue;
            seen++;
            cr_assert_eq(c->offset, at, "%s: child '%s' of '%s' at %llu, expected %llu", what,
                         c->label, p->label, (unsigned long long)c->offset, (unsigned long long)at);
            at += c->size;
        }
        cr_assert_eq(seen, p->n_children);
        cr_assert_eq(at, p->offset + p->size, "%s: children of '%s' end at %llu, it at %llu", what,
                     p->label, (unsigned long long)at, (unsigned long long)(p->offset + p->size));
    }
    for (uint64_t probe = 0; probe < size; probe += 1 + size / 257) {
        int64_t leaf = rf_filemap_find(m, probe);
        cr_assert(leaf >= 0, "%s: nothing at %llu", what, (unsigned long long)probe);
        const rf_region *r = rf_filemap_region(m, (size_t)leaf);
        cr_assert(r->n_children == 0 && probe >= r->offset && probe < r->offset + r->size);
    }
    cr_assert_eq(rf_filemap_find(m, size), -1);
    for (size_t i = 0; i < rf_filemap_n_problems(m); i++) {
        const rf_map_problem *p = rf_filemap_problem(m, i);
        cr_assert(p->message && *p->message, "%s: problem %zu without a message", what, i);
        cr_assert(p->region < (int64_t)n);
    }
    for (size_t t = 0; t < rf_filemap_n_tensors(m); t++) {
        const rf_map_tensor *mt = rf_filemap_tensor(m, t);
        if (mt->data_region >= 0) {
            const rf_region *r = rf_filemap_region(m, (size_t)mt->data_region);
            cr_assert_eq(r->kind, RF_REGION_TENSOR_DATA);
            cr_assert_eq(r->tensor, (int64_t)t);
        }
        cr_assert(!mt->damaged || mt->reason);
    }
}

/* Every tensor of the map equals the model's: layout, and values bit for bit. */
static void check_against_model(const rf_filemap *m, const rf_model *model, const char *what)
{
    cr_assert_eq(rf_filemap_n_tensors(m), rf_model_n_tensors(model), "%s: %zu tensors vs %zu", what,
                 rf_filemap_n_tensors(m), rf_model_n_tensors(model));
    for (size_t i = 0; i < rf_filemap_n_tensors(m); i++) {
        const rf_map_tensor *mt = rf_filemap_tensor(m, i);
        const rf_tensor *t = rf_model_find_tensor(model, mt->tensor.name);
        cr_assert_not_null(t, "%s: '%s' not in the model", what, mt->tensor.name);
        cr_assert(mt->dtype_known && mt->size_known && !mt->damaged, "%s: '%s'", what, t->name);
        cr_assert_eq(mt->tensor.dtype, t->dtype, "%s: '%s' dtype", what, t->name);
        cr_assert_eq(mt->tensor.ndim, t->ndim);
        cr_assert_eq(memcmp(mt->tensor.shape, t->shape, sizeof t->shape), 0, "%s: '%s' shape", what,
                     t->name);
        cr_assert_eq(mt->tensor.file_offset, t->file_offset, "%s: '%s' offset", what, t->name);
        cr_assert_eq(mt->tensor.nbytes, t->nbytes, "%s: '%s' bytes", what, t->name);
        cr_assert(mt->data_region >= 0);
        const rf_region *r = rf_filemap_region(m, (size_t)mt->data_region);
        cr_assert_eq(r->offset, t->file_offset);
        cr_assert_eq(r->size, t->nbytes);
        uint64_t n;
        rf_error err;
        cr_assert_eq(rf_shape_elements(t->shape, t->ndim, &n, &err), RF_OK);
        float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
        cr_assert_eq(rf_tensor_dequantize(t, want, &err), RF_OK, "%s", err.message);
        cr_assert_eq(rf_filemap_values(m, i, 0, n, got, &err), RF_OK, "%s", err.message);
        cr_assert_eq(memcmp(want, got, n * sizeof *got), 0, "%s: '%s' values differ", what,
                     t->name);
        /* a window that starts and ends inside blocks */
        if (n > 70) {
            cr_assert_eq(rf_filemap_values(m, i, 37, n - 70, got, &err), RF_OK);
            cr_assert_eq(memcmp(want + 37, got, (n - 70) * sizeof *got), 0, "%s: '%s' window", what,
                         t->name);
        }
        free(want);
        free(got);
    }
}

static rf_filemap *map_path(const char *path, bool verify)
{
    rf_filemap *m = NULL;
    rf_error err;
    const rf_filemap_options o = {.verify_checksums = verify};
    cr_assert_eq(rf_filemap_open(path, &o, &m, &err), RF_OK, "%s", err.message);
    return m;
}

static const rf_region *find_label(const rf_filemap *m, const char *label)
{
    for (size_t i = 0; i < rf_filemap_n_regions(m); i++)
        if (strcmp(rf_filemap_region(m, i)->label, label) == 0)
            return rf_filemap_region(m, i);
    return NULL;
}

/* ---- the fixture in three formats ---------------------------------------------------------- */

static void fixture_in_all_formats(const char *fixture)
{
    char src[600];
    snprintf(src, sizeof src, "%s/fixtures/%s/model.safetensors", ROSETTA_ROOT, fixture);
    rf_error err;
    rf_model *model = rf_model_open(src, NULL, &err);
    cr_assert_not_null(model, "%s", err.message);
    const char *gguf = tmp("f.gguf"), *apr = tmp("f.apr");
    cr_assert_eq(rf_gguf_write(model, gguf, NULL, &err), RF_OK, "%s", err.message);
    cr_assert_eq(rf_apr_write(model, apr, NULL, &err), RF_OK, "%s", err.message);
    const char *paths[] = {src, gguf, apr};
    for (int f = 0; f < 3; f++) {
        rf_filemap *m = map_path(paths[f], true);
        check_invariants(m, paths[f]);
        cr_assert(!rf_filemap_damaged(m), "%s: damaged: %s", paths[f],
                  rf_filemap_n_problems(m) ? rf_filemap_problem(m, 0)->message : "");
        rf_model *back = rf_model_open(paths[f], NULL, &err);
        cr_assert_not_null(back, "%s", err.message);
        check_against_model(m, back, paths[f]);
        cr_assert_not_null(rf_filemap_model(m));
        rf_model_free(back);
        rf_filemap_free(m);
    }
    rf_model_free(model);
}

Test(filemap, fixture_in_all_formats)
{
    fixture_in_all_formats("tiny-qwen2");
    NO_LEAKS();
}
Test(filemap, odd_fixture_in_all_formats)
{
    fixture_in_all_formats("tiny-qwen2-odd");
    NO_LEAKS();
}

Test(filemap, header_fields_of_each_format)
{
    char src[600];
    snprintf(src, sizeof src, "%s/fixtures/tiny-qwen2/model.safetensors", ROSETTA_ROOT);
    rf_error err;
    rf_model *model = rf_model_open(src, NULL, &err);
    cr_assert_not_null(model);
    const char *gguf = tmp("h.gguf"), *apr = tmp("h.apr");
    cr_assert_eq(rf_gguf_write(model, gguf, NULL, &err), RF_OK);
    cr_assert_eq(rf_apr_write(model, apr, NULL, &err), RF_OK);

    rf_filemap *m = map_path(gguf, false);
    const rf_region *r = rf_filemap_region(m, 1);
    cr_assert_eq(r->kind, RF_REGION_MAGIC);
    cr_assert_str_eq(r->value, "\"GGUF\"");
    cr_assert_str_eq(find_label(m, "version")->value, "3");
    cr_assert_eq(find_label(m, "kv_count")->offset, 16);
    size_t kvs = 0, infos = 0;
    for (size_t i = 0; i < rf_filemap_n_regions(m); i++) {
        r = rf_filemap_region(m, i);
        kvs += r->kind == RF_REGION_KV;
        infos += r->kind == RF_REGION_TENSOR_INFO;
        if (r->kind == RF_REGION_KV)
            cr_assert_eq(r->n_children, 3, "key, type and value");
    }
    cr_assert_eq(kvs, rf_model_n_kv(rf_filemap_model(m)));
    cr_assert_eq(infos, rf_filemap_n_tensors(m));
    r = find_label(m, "kv[0]");
    cr_assert(strstr(r->value, "general.architecture: string = \"qwen2\""), "%s", r->value);
    cr_assert_str_eq(rf_filemap_description(m), "GGUF v3, little-endian");
    rf_filemap_free(m);

    m = map_path(apr, true);
    r = find_label(m, "header checksum");
    cr_assert(r && strstr(r->value, ": valid"), "%s", r ? r->value : "none");
    r = find_label(m, "footer checksum");
    cr_assert(r && strstr(r->value, ": valid"), "%s", r ? r->value : "none");
    cr_assert_eq(r->offset + 4, rf_filemap_size(m));
    cr_assert(strstr(find_label(m, "flags")->value, "row-major"));
    cr_assert_str_eq(find_label(m, "magic")->value, "\"APR\\x00\"");
    cr_assert_not_null(find_label(m, "\"model_type\""), "metadata members are regions");
    cr_assert_not_null(find_label(m, "entry[0]"));
    rf_filemap_free(m);
    m = map_path(apr, false);
    cr_assert(strstr(find_label(m, "footer checksum")->value, "not verified"));
    rf_filemap_free(m);

    m = map_path(src, false);
    r = find_label(m, "header length");
    cr_assert_eq(r->offset, 0);
    cr_assert_eq(r->size, 8);
    cr_assert_not_null(find_label(m, "\"__metadata__\""));
    r = find_label(m, "\"model.norm.weight\"");
    cr_assert(r && r->kind == RF_REGION_TENSOR_INFO);
    cr_assert(strstr(r->value, "\"dtype\":\"BF16\""), "%s", r->value);
    rf_filemap_free(m);
    rf_model_free(model);
    NO_LEAKS();
}

/* ---- every block type ------------------------------------------------------------------------ */

Test(filemap, every_block_type_values_and_blocks)
{
    static const rf_dtype types[] = {RF_DTYPE_Q4_0, RF_DTYPE_Q4_1, RF_DTYPE_Q5_0, RF_DTYPE_Q5_1,
                                     RF_DTYPE_Q8_0, RF_DTYPE_Q2_K, RF_DTYPE_Q3_K, RF_DTYPE_Q4_K,
                                     RF_DTYPE_Q5_K, RF_DTYPE_Q6_K, RF_DTYPE_F16,  RF_DTYPE_BF16};
    enum { ROWS = 3, COLS = 512, N = ROWS * COLS };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)((int)(next_rand() % 2001) - 1000) / 3000.0f;
    rf_error err;
    rf_model *model = rf_model_new(RF_FORMAT_GGUF, &err);
    uint8_t *bufs[sizeof types / sizeof types[0]];
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        uint64_t bytes;
        cr_assert_eq(rf_quant_bytes(types[k], ROWS, COLS, &bytes, &err), RF_OK);
        bufs[k] = malloc(bytes);
        cr_assert_eq(rf_quantize(types[k], x, bufs[k], ROWS, COLS, NULL, NULL, &err), RF_OK, "%s",
                     err.message);
        char name[32];
        snprintf(name, sizeof name, "t.%s", rf_dtype_name(types[k]));
        rf_tensor t = {.name = name,
                       .dtype = types[k],
                       .ndim = 2,
                       .shape = {ROWS, COLS},
                       .data = bufs[k],
                       .nbytes = bytes};
        cr_assert_eq(rf_model_add_tensor(model, &t, &err), RF_OK);
    }
    const char *path = tmp("blocks.gguf");
    cr_assert_eq(rf_gguf_write(model, path, NULL, &err), RF_OK, "%s", err.message);
    rf_filemap *m = map_path(path, false);
    check_invariants(m, path);
    rf_model *back = rf_model_open(path, NULL, &err);
    check_against_model(m, back, path);
    for (size_t i = 0; i < rf_filemap_n_tensors(m); i++) {
        const rf_map_tensor *mt = rf_filemap_tensor(m, i);
        const rf_dtype_info *info = rf_dtype_get(mt->tensor.dtype);
        uint64_t nb = rf_filemap_n_blocks(m, i);
        if (!rf_block_supported(mt->tensor.dtype)) {
            cr_assert_eq(nb, 0);
            rf_block b;
            cr_assert_eq(rf_filemap_block(m, i, 0, &b, NULL, NULL, &err), RF_ERR_UNSUPPORTED);
            continue;
        }
        cr_assert_eq(nb, N / info->block_elems, "%s blocks", info->name);
        float vals[N];
        cr_assert_eq(rf_filemap_values(m, i, 0, N, vals, &err), RF_OK);
        for (uint64_t b = 0; b < nb; b++) {
            rf_block blk;
            uint64_t off, first;
            cr_assert_eq(rf_filemap_block(m, i, b, &blk, &off, &first, &err), RF_OK, "%s",
                         err.message);
            cr_assert_eq(off, mt->tensor.file_offset + b * info->block_bytes);
            cr_assert_eq(first, b * info->block_elems);
            cr_assert_eq(memcmp(blk.values, vals + first, blk.n_elems * sizeof(float)), 0,
                         "%s block %llu", info->name, (unsigned long long)b);
        }
        rf_block blk;
        cr_assert_eq(rf_filemap_block(m, i, nb, &blk, NULL, NULL, &err), RF_ERR_ARGUMENT);
        cr_assert_eq(rf_filemap_values(m, i, N - 1, 2, vals, &err), RF_ERR_ARGUMENT);
    }
    rf_model_free(back);
    rf_filemap_free(m);
    rf_model_free(model);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
        free(bufs[k]);
    NO_LEAKS();
}

/* APR: a partial last APR_Q4 block, APR_Q8's single scale, and Q4_K rows padded to whole
 * super-blocks (aprender's quantizer; docs/formats/apr.md). */
Test(filemap, apr_partial_blocks_and_padded_rows)
{
    enum { N = 70, ROWS = 3, COLS = 300 };
    float x[ROWS * 512];
    for (int i = 0; i < ROWS * 512; i++)
        x[i] = (float)((int)(next_rand() % 1001) - 500) / 700.0f;
    rf_error err;
    rf_model *model = rf_model_new(RF_FORMAT_APR, &err);
    uint8_t q4[3 * 18], q8[4 + N], k4[ROWS * 2 * 144];
    cr_assert_eq(rf_quantize(RF_DTYPE_APR_Q4, x, q4, 1, N, NULL, NULL, &err), RF_OK);
    cr_assert_eq(rf_quantize(RF_DTYPE_APR_Q8, x, q8, 1, N, NULL, NULL, &err), RF_OK);
    /* each 300-value row padded with zeros to 512 and quantized as two super-blocks */
    for (int r = 0; r < ROWS; r++) {
        float row[512] = {0};
        memcpy(row, x + r * COLS, COLS * sizeof(float));
        cr_assert_eq(rf_quantize(RF_DTYPE_Q4_K, row, k4 + r * 288, 1, 512, NULL, NULL, &err),
                     RF_OK);
    }
    rf_tensor ts[] = {
        {.name = "a.q4",
         .dtype = RF_DTYPE_APR_Q4,
         .ndim = 1,
         .shape = {N},
         .data = q4,
         .nbytes = sizeof q4},
        {.name = "b.q8",
         .dtype = RF_DTYPE_APR_Q8,
         .ndim = 1,
         .shape = {N},
         .data = q8,
         .nbytes = sizeof q8},
        {.name = "c.k4",
         .dtype = RF_DTYPE_Q4_K,
         .ndim = 2,
         .shape = {ROWS, COLS},
         .data = k4,
         .nbytes = sizeof k4},
    };
    for (int i = 0; i < 3; i++)
        cr_assert_eq(rf_model_add_tensor(model, &ts[i], &err), RF_OK);
    const char *path = tmp("padded.apr");
    cr_assert_eq(rf_apr_write(model, path, NULL, &err), RF_OK, "%s", err.message);
    rf_filemap *m = map_path(path, true);
    check_invariants(m, path);
    cr_assert(!rf_filemap_damaged(m));
    float got[ROWS * COLS], want[ROWS * 512];
    /* APR_Q4 */
    cr_assert_eq(rf_filemap_n_blocks(m, 0), 3);
    cr_assert_eq(rf_filemap_values(m, 0, 0, N, got, &err), RF_OK);
    cr_assert_eq(rf_dequantize(RF_DTYPE_APR_Q4, q4, want, N, &err), RF_OK);
    cr_assert_eq(memcmp(got, want, N * sizeof(float)), 0);
    rf_block b;
    cr_assert_eq(rf_filemap_block(m, 0, 2, &b, NULL, NULL, &err), RF_OK);
    cr_assert_eq(b.n_elems, N - 64, "the last block holds %u values", b.n_elems);
    cr_assert_eq(memcmp(b.values, want + 64, (N - 64) * sizeof(float)), 0);
    /* APR_Q8, also from the middle */
    cr_assert_eq(rf_dequantize(RF_DTYPE_APR_Q8, q8, want, N, &err), RF_OK);
    cr_assert_eq(rf_filemap_values(m, 1, 5, N - 5, got, &err), RF_OK);
    cr_assert_eq(memcmp(got, want + 5, (N - 5) * sizeof(float)), 0);
    cr_assert_eq(rf_filemap_n_blocks(m, 1), 0);
    /* padded Q4_K: row r's values are the first 300 of its two super-blocks */
    const rf_map_tensor *t = rf_filemap_tensor(m, 2);
    cr_assert_eq(t->rows, ROWS);
    cr_assert_eq(t->cols, COLS);
    cr_assert_eq(t->row_bytes, 288);
    cr_assert_eq(rf_dequantize(RF_DTYPE_Q4_K, k4, want, ROWS * 512, &err), RF_OK);
    cr_assert_eq(rf_filemap_values(m, 2, 0, ROWS * COLS, got, &err), RF_OK);
    for (int r = 0; r < ROWS; r++)
        cr_assert_eq(memcmp(got + r * COLS, want + r * 512, COLS * sizeof(float)), 0, "row %d", r);
    cr_assert_eq(rf_filemap_values(m, 2, 299, 2, got, &err), RF_OK, "across a row end");
    cr_assert_eq(got[0], want[299]);
    cr_assert_eq(got[1], want[512]);
    uint64_t first;
    cr_assert_eq(rf_filemap_n_blocks(m, 2), ROWS * 2);
    cr_assert_eq(rf_filemap_block(m, 2, 3, &b, NULL, &first, &err), RF_OK);
    cr_assert_eq(first, 1 * COLS + 256, "block 1 of row 1");
    rf_filemap_free(m);
    rf_model_free(model);
    NO_LEAKS();
}

/* ---- damaged files -----------------------------------------------------------------------------
 */

static uint8_t *small_file(int format, size_t *n)
{
    rf_error err;
    rf_model *model = rf_model_new(format == 1 ? RF_FORMAT_APR : RF_FORMAT_GGUF, &err);
    static const float w[8] = {1, 2, 0.5f, -0.5f, 4, -2, 0.25f, 8}, b[1] = {0.125f};
    rf_tensor tw = {.name = "weights",
                    .dtype = RF_DTYPE_F32,
                    .ndim = 2,
                    .shape = {2, 4},
                    .data = (const uint8_t *)w,
                    .nbytes = 32};
    rf_tensor tb = {.name = "bias",
                    .dtype = RF_DTYPE_F32,
                    .ndim = 1,
                    .shape = {1},
                    .data = (const uint8_t *)b,
                    .nbytes = 4};
    rf_model_add_tensor(model, &tw, &err);
    rf_model_add_tensor(model, &tb, &err);
    const char *path = tmp(format == 0   ? "small.gguf"
                           : format == 1 ? "small.apr"
                                         : "small.safetensors");
    rf_status st = format == 0   ? rf_gguf_write(model, path, NULL, &err)
                   : format == 1 ? rf_apr_write(model, path, NULL, &err)
                                 : rf_safetensors_write(model, path, NULL, &err);
    cr_assert_eq(st, RF_OK, "%s", err.message);
    rf_model_free(model);
    return read_file(path, n);
}

Test(filemap, every_truncation_is_mapped)
{
    for (int f = 0; f < 3; f++) {
        size_t n;
        uint8_t *d = small_file(f, &n);
        for (size_t len = 0; len <= n; len++) {
            uint8_t *copy = malloc(len ? len : 1);
            memcpy(copy, d, len);
            rf_filemap *m = NULL;
            rf_error err;
            char name[64];
            snprintf(name, sizeof name, "format %d cut at %zu of %zu", f, len, n);
            const rf_filemap_options o = {.verify_checksums = true};
            cr_assert_eq(rf_filemap_open_memory(copy, len, name, &o, &m, &err), RF_OK, "%s",
                         err.message);
            check_invariants(m, name);
            if (len < n && len > 0)
                cr_assert(rf_filemap_n_problems(m) > 0, "%s: no problem reported", name);
            if (len == n)
                cr_assert(!rf_filemap_damaged(m), "%s", name);
            rf_filemap_free(m);
            free(copy);
        }
        free(d);
    }
    NO_LEAKS();
}

Test(filemap, random_corruption_is_mapped)
{
    for (int f = 0; f < 3; f++) {
        size_t n;
        uint8_t *d = small_file(f, &n);
        uint8_t *copy = malloc(n);
        for (int trial = 0; trial < 400; trial++) {
            memcpy(copy, d, n);
            int flips = 1 + (int)(next_rand() % 4);
            for (int k = 0; k < flips; k++)
                copy[next_rand() % n] ^= (uint8_t)(1u << (next_rand() % 8));
            rf_filemap *m = NULL;
            rf_error err;
            char name[64];
            snprintf(name, sizeof name, "format %d trial %d", f, trial);
            cr_assert_eq(rf_filemap_open_memory(copy, n, name, NULL, &m, &err), RF_OK, "%s",
                         err.message);
            check_invariants(m, name);
            /* values of whatever tensors it still finds never read outside the file */
            for (size_t i = 0; i < rf_filemap_n_tensors(m); i++) {
                const rf_map_tensor *t = rf_filemap_tensor(m, i);
                float v[64];
                uint64_t count = t->rows * t->cols;
                if (count > 0 && count <= 64)
                    rf_filemap_values(m, i, 0, count, v, &err);
            }
            rf_filemap_free(m);
        }
        free(copy);
        free(d);
    }
    NO_LEAKS();
}

Test(filemap, damage_is_marked_with_the_reason)
{
    size_t n;
    uint8_t *d = small_file(1, &n);
    d[50] ^= 1; /* a reserved header byte: the header CRC covers it */
    rf_filemap *m = NULL;
    rf_error err;
    const rf_filemap_options o = {.verify_checksums = true};
    cr_assert_eq(rf_filemap_open_memory(d, n, "flipped.apr", &o, &m, &err), RF_OK);
    cr_assert(rf_filemap_damaged(m));
    const rf_region *r = find_label(m, "header checksum");
    cr_assert(r->damaged && strstr(r->reason, "header CRC mismatch"), "%s", r->reason);
    cr_assert(strstr(r->value, "INVALID"));
    r = find_label(m, "footer checksum");
    cr_assert(r->damaged && strstr(r->reason, "footer CRC mismatch"));
    rf_filemap_free(m);
    free(d);

    d = small_file(0, &n);
    d[4] = 7, d[5] = d[6] = d[7] = 0; /* GGUF version 7 (little-endian u32) */
    cr_assert_eq(rf_filemap_open_memory(d, n, "v7.gguf", NULL, &m, &err), RF_OK);
    r = find_label(m, "version");
    cr_assert(r->damaged && strstr(r->reason, "version 7"), "%s", r->reason ? r->reason : "");
    r = rf_filemap_region(m, rf_filemap_n_regions(m) - 1);
    cr_assert_eq(r->kind, RF_REGION_UNPARSED);
    cr_assert(r->damaged);
    cr_assert_eq(r->offset + r->size, n);
    rf_filemap_free(m);
    free(d);
    NO_LEAKS();
}

Test(filemap, unknown_and_empty_files)
{
    static const uint8_t junk[] = "this is not a model file at all";
    rf_filemap *m = NULL;
    rf_error err;
    cr_assert_eq(rf_filemap_open_memory(junk, sizeof junk, "junk", NULL, &m, &err), RF_OK);
    cr_assert_eq(rf_filemap_format(m), RF_FORMAT_UNKNOWN);
    cr_assert_eq(rf_filemap_n_regions(m), 1);
    cr_assert_eq(rf_filemap_region(m, 0)->kind, RF_REGION_UNPARSED);
    cr_assert(strstr(rf_filemap_problem(m, 0)->message, "unknown format"));
    check_invariants(m, "junk");
    rf_filemap_free(m);
    cr_assert_eq(rf_filemap_open_memory(NULL, 0, "empty", NULL, &m, &err), RF_OK);
    cr_assert_eq(rf_filemap_n_regions(m), 0);
    cr_assert(strstr(rf_filemap_problem(m, 0)->message, "empty"));
    rf_filemap_free(m);
    cr_assert_eq(rf_filemap_open("/nonexistent/file", NULL, &m, &err), RF_ERR_IO);
    cr_assert_null(m);
    NO_LEAKS();
}
