/* Importance-matrix reader (rosetta/imatrix.h): the legacy .dat form byte by byte, the
 * normalization llama-quantize applies, and malformed files (clear errors, never a crash). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_internal.h"
#include "rosetta/gguf.h"
#include "rosetta/imatrix.h"
#include "rosetta/model.h"

typedef struct buf {
    unsigned char data[4096];
    size_t n;
} buf;

static void put_i32(buf *b, int32_t v)
{
    memcpy(b->data + b->n, &v, 4); /* the test machine is little-endian, as the format */
    b->n += 4;
}

static void put_f32(buf *b, float v)
{
    memcpy(b->data + b->n, &v, 4);
    b->n += 4;
}

static void put_str(buf *b, const char *s)
{
    put_i32(b, (int32_t)strlen(s));
    memcpy(b->data + b->n, s, strlen(s));
    b->n += strlen(s);
}

static void ensure_tmp_dir(void) { mkdir(ROSETTA_BUILD "/test-tmp", 0755); }

static const char *write_tmp(const buf *b, const char *tag)
{
    static char path[256];
    ensure_tmp_dir();
    snprintf(path, sizeof path, "%s/test-tmp/imatrix-%s-%d.dat", ROSETTA_BUILD, tag, (int)getpid());
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(b->data, 1, b->n, f), b->n);
    fclose(f);
    return path;
}

Test(imatrix, legacy_values_are_divided_by_ncall)
{
    buf b = {.n = 0};
    put_i32(&b, 3);
    put_str(&b, "blk.1.ffn_down.weight");
    put_i32(&b, 4); /* ncall */
    put_i32(&b, 3);
    put_f32(&b, 2.0f);
    put_f32(&b, 1.0f);
    put_f32(&b, 0.3f);
    put_str(&b, "blk.0.attn_q.weight");
    put_i32(&b, 0); /* ncall 0: values kept */
    put_i32(&b, 2);
    put_f32(&b, 5.0f);
    put_f32(&b, 7.5f);
    put_str(&b, "blk.0.attn_k.weight");
    put_i32(&b, 3);
    put_i32(&b, 1);
    put_f32(&b, 1.0f);
    put_i32(&b, 12); /* trailer: chunk count and dataset */
    put_str(&b, "wiki.train.raw");
    const char *path = write_tmp(&b, "legacy");
    rf_error err = {0};
    rf_imatrix *im = rf_imatrix_open(path, &err);
    cr_assert_not_null(im, "%s", err.message);
    cr_assert_eq(rf_imatrix_format_of(im), RF_IMATRIX_LEGACY);
    cr_assert_eq(rf_imatrix_n_entries(im), 3);
    /* name order */
    cr_assert_str_eq(rf_imatrix_entry_name(im, 0), "blk.0.attn_k.weight");
    cr_assert_str_eq(rf_imatrix_entry_name(im, 1), "blk.0.attn_q.weight");
    cr_assert_str_eq(rf_imatrix_entry_name(im, 2), "blk.1.ffn_down.weight");
    uint64_t n = 0;
    const float *v = rf_imatrix_find(im, "blk.1.ffn_down.weight", &n);
    cr_assert_not_null(v);
    cr_assert_eq(n, 3);
    cr_assert_eq(v[0], 0.5f);
    cr_assert_eq(v[1], 0.25f);
    cr_assert_eq(v[2], 0.3f / 4.0f);
    v = rf_imatrix_find(im, "blk.0.attn_q.weight", &n);
    cr_assert(n == 2 && v[0] == 5.0f && v[1] == 7.5f);
    v = rf_imatrix_find(im, "blk.0.attn_k.weight", &n);
    cr_assert(n == 1 && v[0] == 1.0f / 3.0f);
    cr_assert_null(rf_imatrix_find(im, "blk.2.attn_q.weight", &n));
    cr_assert_eq(rf_imatrix_chunk_count(im), 12);
    cr_assert_str_eq(rf_imatrix_dataset(im), "wiki.train.raw");
    rf_imatrix_free(im);
    unlink(path);
}

Test(imatrix, legacy_without_trailer)
{
    buf b = {.n = 0};
    put_i32(&b, 1);
    put_str(&b, "output.weight");
    put_i32(&b, 1);
    put_i32(&b, 1);
    put_f32(&b, 3.0f);
    const char *path = write_tmp(&b, "notrailer");
    rf_error err = {0};
    rf_imatrix *im = rf_imatrix_open(path, &err);
    cr_assert_not_null(im, "%s", err.message);
    cr_assert_eq(rf_imatrix_chunk_count(im), 0);
    cr_assert_null(rf_imatrix_dataset(im));
    rf_imatrix_free(im);
    unlink(path);
}

static void expect_error(const buf *b, const char *tag, const char *needle)
{
    const char *path = write_tmp(b, tag);
    rf_error err = {0};
    rf_imatrix *im = rf_imatrix_open(path, &err);
    cr_assert_null(im, "%s: accepted a malformed file", tag);
    cr_assert_eq(err.status, RF_ERR_FORMAT, "%s: status %d: %s", tag, err.status, err.message);
    cr_assert(strstr(err.message, needle), "%s: '%s' lacks '%s'", tag, err.message, needle);
    cr_assert(strstr(err.message, "imatrix-"), "%s: message names no file: %s", tag, err.message);
    unlink(path);
}

Test(imatrix, legacy_malformed)
{
    buf b = {.n = 0};
    put_i32(&b, 0);
    expect_error(&b, "zero", "entry count 0");

    b.n = 0;
    put_i32(&b, 1000000); /* more entries than the file could hold */
    put_i32(&b, 0);
    expect_error(&b, "count", "entry count 1000000");

    b.n = 0;
    put_i32(&b, 1);
    put_i32(&b, -5);
    put_i32(&b, 0);
    put_i32(&b, 0);
    put_i32(&b, 0);
    expect_error(&b, "neglen", "name length -5");

    b.n = 0;
    put_i32(&b, 1);
    put_str(&b, "x.weight");
    put_i32(&b, 1);
    put_i32(&b, 1 << 28); /* values beyond the end */
    put_f32(&b, 1.0f);
    expect_error(&b, "nval", "value count 268435456");

    b.n = 0;
    put_i32(&b, 1);
    put_str(&b, "x.weight");
    put_i32(&b, 1);
    put_i32(&b, 0);
    put_f32(&b, 1.0f);
    put_f32(&b, 1.0f);
    expect_error(&b, "nval0", "value count 0");

    b.n = 0;
    put_i32(&b, 1);
    put_str(&b, "x.weight");
    put_i32(&b, 1);
    put_i32(&b, 2);
    put_f32(&b, 1.0f);
    put_f32(&b, NAN);
    expect_error(&b, "nan", "not finite");

    b.n = 0;
    put_i32(&b, 2); /* second entry truncated */
    put_str(&b, "x.weight");
    put_i32(&b, 1);
    put_i32(&b, 1);
    put_f32(&b, 1.0f);
    put_i32(&b, 40);
    put_i32(&b, 0);
    put_i32(&b, 0);
    put_i32(&b, 0);
    expect_error(&b, "trunc", "name length 40");

    rf_error err = {0};
    cr_assert_null(rf_imatrix_open(ROSETTA_BUILD "/test-tmp/no-such-imatrix.dat", &err));
    cr_assert_eq(err.status, RF_ERR_IO);
}

/* ---- the GGUF form, written with Rosetta's GGUF writer ------------------------------------- */

static void add_f32(rf_model *m, const char *name, int ndim, uint64_t d0, uint64_t d1,
                    const float *v, uint64_t n)
{
    rf_tensor t = {.name = name,
                   .dtype = RF_DTYPE_F32,
                   .ndim = ndim,
                   .shape = {d0, d1},
                   .data = (const uint8_t *)v,
                   .nbytes = n * 4};
    rf_error err = {0};
    cr_assert_eq(rf_model_add_tensor(m, &t, &err), RF_OK, "%s", err.message);
}

static rf_model *imatrix_model(bool with_keys)
{
    rf_model *m = rf_model_new(RF_FORMAT_GGUF, NULL);
    rf_value type = {.type = RF_VALUE_STRING, .as.str = {"imatrix", 7}};
    rf_model_add_kv(m, "general.type", &type, NULL);
    if (with_keys) {
        rf_value ds_items[2] = {{.type = RF_VALUE_STRING, .as.str = {"calib.txt", 9}},
                                {.type = RF_VALUE_STRING, .as.str = {"more.txt", 8}}};
        rf_value ds = {.type = RF_VALUE_ARRAY, .as.arr = {RF_VALUE_STRING, 2, ds_items}};
        rf_value cc = {.type = RF_VALUE_U32, .as.u = 42};
        rf_value cs = {.type = RF_VALUE_U32, .as.u = 512};
        rf_model_add_kv(m, "imatrix.datasets", &ds, NULL);
        rf_model_add_kv(m, "imatrix.chunk_count", &cc, NULL);
        rf_model_add_kv(m, "imatrix.chunk_size", &cs, NULL);
    }
    return m;
}

static const char *write_model(rf_model *m, const char *tag)
{
    static char path[256];
    ensure_tmp_dir();
    snprintf(path, sizeof path, "%s/test-tmp/imatrix-%s-%d.gguf", ROSETTA_BUILD, tag,
             (int)getpid());
    rf_error err = {0};
    cr_assert_eq(rf_gguf_write(m, path, NULL, &err), RF_OK, "%s", err.message);
    return path;
}

Test(imatrix, gguf_sums_divided_by_expert_counts)
{
    static const float sums_a[4] = {8.0f, 4.0f, 2.0f, 1.0f};
    static const float counts_a[1] = {4.0f};
    /* two experts of 3 columns: counts 2.4 (rounds to 2) and 0 (values become 1) */
    static const float sums_b[6] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
    static const float counts_b[2] = {2.4f, 0.0f};
    rf_model *m = imatrix_model(true);
    add_f32(m, "blk.0.ffn_up.weight.in_sum2", 2, 1, 4, sums_a, 4);
    add_f32(m, "blk.0.ffn_up.weight.counts", 2, 1, 1, counts_a, 1);
    add_f32(m, "blk.0.ffn_down_exps.weight.in_sum2", 2, 2, 3, sums_b, 6);
    add_f32(m, "blk.0.ffn_down_exps.weight.counts", 2, 2, 1, counts_b, 2);
    const char *path = write_model(m, "gguf");
    rf_model_free(m);
    rf_error err = {0};
    rf_imatrix *im = rf_imatrix_open(path, &err);
    cr_assert_not_null(im, "%s", err.message);
    cr_assert_eq(rf_imatrix_format_of(im), RF_IMATRIX_GGUF);
    cr_assert_eq(rf_imatrix_n_entries(im), 2);
    cr_assert_str_eq(rf_imatrix_entry_name(im, 0), "blk.0.ffn_down_exps.weight");
    uint64_t n = 0;
    const float *v = rf_imatrix_find(im, "blk.0.ffn_up.weight", &n);
    cr_assert(v && n == 4);
    cr_assert(v[0] == 2.0f && v[1] == 1.0f && v[2] == 0.5f && v[3] == 0.25f);
    v = rf_imatrix_find(im, "blk.0.ffn_down_exps.weight", &n);
    cr_assert(v && n == 6);
    cr_assert(v[0] == 0.5f && v[1] == 1.0f && v[2] == 1.5f, "%g %g %g", v[0], v[1], v[2]);
    cr_assert(v[3] == 1.0f && v[4] == 1.0f && v[5] == 1.0f);
    cr_assert_eq(rf_imatrix_chunk_count(im), 42);
    cr_assert_str_eq(rf_imatrix_dataset(im), "calib.txt");
    rf_imatrix_free(im);
    unlink(path);
}

Test(imatrix, gguf_malformed)
{
    static const float sums[4] = {1, 2, 3, 4};
    static const float counts[3] = {1, 1, 1};
    struct {
        const char *tag, *needle;
        bool keys, counts_present, counts_bad;
    } CASES[] = {
        {"nokeys", "imatrix.datasets", false, true, false},
        {"nocounts", "has no matching", true, false, false},
        {"divide", "not a positive multiple", true, true, true},
    };
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        rf_model *m = imatrix_model(CASES[c].keys);
        add_f32(m, "x.weight.in_sum2", 2, 1, 4, sums, 4);
        if (CASES[c].counts_present)
            add_f32(m, "x.weight.counts", 2, 1, CASES[c].counts_bad ? 3 : 1, counts,
                    CASES[c].counts_bad ? 3 : 1);
        const char *path = write_model(m, CASES[c].tag);
        rf_model_free(m);
        rf_error err = {0};
        cr_assert_null(rf_imatrix_open(path, &err), "%s accepted", CASES[c].tag);
        cr_assert_eq(err.status, RF_ERR_FORMAT, "%s: %s", CASES[c].tag, err.message);
        cr_assert(strstr(err.message, CASES[c].needle), "%s: %s", CASES[c].tag, err.message);
        unlink(path);
    }
}
