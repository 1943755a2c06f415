/* GGUF reader and writer on hand-built files: every value type, nested arrays, big-endian files,
 * alignment, each validation rule with its message, writer layout, round trips, synthesis. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/test_leaks.h"
#include "model_internal.h"
#include "rosetta/gguf.h"
#include "rosetta/half.h"

/* ---- a little GGUF builder ---------------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    bool be; /* write scalars big-endian */
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        cr_assert_not_null(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_n(buf *b, uint64_t v, int width)
{
    uint8_t t[8];
    for (int i = 0; i < width; i++)
        t[b->be ? width - 1 - i : i] = (uint8_t)(v >> (8 * i));
    put(b, t, (size_t)width);
}
static void u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void u16(buf *b, uint16_t v) { put_n(b, v, 2); }
static void u32(buf *b, uint32_t v) { put_n(b, v, 4); }
static void u64(buf *b, uint64_t v) { put_n(b, v, 8); }
static void f32(buf *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u32(b, u);
}
static void f64(buf *b, double f)
{
    uint64_t u;
    memcpy(&u, &f, 8);
    u64(b, u);
}
static void str(buf *b, const char *s)
{
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void pad(buf *b, size_t alignment)
{
    while (b->n % alignment)
        u8(b, 0);
}
static void header(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, n_tensors);
    u64(b, n_kv);
}
static void kv(buf *b, const char *key, uint32_t type)
{
    str(b, key);
    u32(b, type);
}
static void tinfo(buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                  uint64_t offset)
{
    str(b, name);
    u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++)
        u64(b, ne[i]);
    u32(b, type);
    u64(b, offset);
}

/* Copies that back open models (a model's tensor data points into its bytes); freed after each
 * test, once the test has freed its models. */
static void *copies[64];
static size_t n_copies;
static char tmpdir[64];
static void free_copies(void)
{
    for (size_t i = 0; i < n_copies; i++)
        free(copies[i]);
    n_copies = 0;
    if (tmpdir[0]) { /* the writer tests' scratch directory */
        DIR *d = opendir(tmpdir);
        for (struct dirent *e; d && (e = readdir(d));) {
            char path[400];
            snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
            if (e->d_name[0] != '.')
                unlink(path);
        }
        if (d)
            closedir(d);
        rmdir(tmpdir);
        tmpdir[0] = '\0';
    }
}
TestSuite(gguf_read, .fini = free_copies);
TestSuite(gguf_write, .fini = free_copies);

/* Opens a copy of exactly n bytes on the heap, so ASan catches any read past the end. The copy
 * is returned in *keep when keep is not NULL (the caller frees it after the model), else it is
 * freed after the test. */
static rf_model *open_bytes(const uint8_t *data, size_t n, bool lenient, rf_error *err,
                            uint8_t **keep)
{
    uint8_t *copy = malloc(n ? n : 1);
    cr_assert_not_null(copy);
    memcpy(copy, data, n);
    rf_open_options opts = {.lenient = lenient};
    rf_model *m = rf_gguf_open_memory(copy, n, "t.gguf", &opts, err);
    if (!m) {
        free(copy);
    } else if (keep) {
        *keep = copy;
    } else {
        cr_assert(n_copies < sizeof copies / sizeof copies[0]);
        copies[n_copies++] = copy;
    }
    return m;
}

static void expect_fail(const buf *b, rf_status status, const char *substr)
{
    rf_error err;
    rf_model *m = open_bytes(b->p, b->n, false, &err, NULL);
    cr_assert_null(m, "expected failure with '%s'", substr);
    cr_assert_eq(err.status, status, "status %d, expected %d: %s", err.status, status, err.message);
    cr_assert(strstr(err.message, substr), "message '%s' lacks '%s'", err.message, substr);
    cr_assert(strstr(err.message, "t.gguf"), "message names the file: %s", err.message);
}

static bool has_warning(const rf_model *m, const char *substr)
{
    for (size_t i = 0; i < rf_model_n_warnings(m); i++)
        if (strstr(rf_model_warning(m, i), substr))
            return true;
    return false;
}

/* A valid file: one KV, tensors a (F32 [2,3]) and b (F16 [5]), alignment 32. */
static void simple_file(buf *b)
{
    header(b, 3, 2, 1);
    kv(b, "general.architecture", RF_VALUE_STRING);
    str(b, "test");
    tinfo(b, "a", 2, (uint64_t[]){3, 2}, 0, 0);
    tinfo(b, "b", 1, (uint64_t[]){5}, 1, 32);
    pad(b, 32);
    for (int i = 0; i < 6; i++)
        f32(b, (float)i + 0.5f);
    pad(b, 32);
    for (int i = 0; i < 5; i++)
        u16(b, rf_f32_to_f16((float)i));
    pad(b, 32);
}

/* ---- reading ------------------------------------------------------------------------------ */

Test(gguf_read, simple_file_shapes_reversed_bytes_in_place)
{
    buf b = {0};
    simple_file(&b);
    rf_error err;
    uint8_t *mem;
    rf_model *m = open_bytes(b.p, b.n, false, &err, &mem);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_format_version(m), 3);
    cr_assert_eq(rf_model_n_tensors(m), 2);
    const rf_tensor *a = rf_model_tensor(m, 0);
    cr_assert_str_eq(a->name, "a");
    cr_assert_eq(a->dtype, RF_DTYPE_F32);
    cr_assert_eq(a->ndim, 2);
    cr_assert_eq(a->shape[0], 2, "ne [3,2] is row-major [2,3]");
    cr_assert_eq(a->shape[1], 3);
    cr_assert_eq(a->nbytes, 24);
    rf_gguf_layout layout;
    cr_assert_eq(rf_gguf_model_layout(m, &layout, &err), RF_OK, "%s", err.message);
    cr_assert_eq(layout.alignment, 32);
    cr_assert_eq(layout.data_offset % 32, 0);
    cr_assert_eq(layout.n_tensors, 2);
    cr_assert_eq(layout.big_endian, false);
    cr_assert_eq(a->file_offset, layout.data_offset);
    cr_assert_eq(a->data, mem + layout.data_offset, "data points into the mapped bytes");
    const rf_tensor *t = rf_model_tensor(m, 1);
    cr_assert_eq(t->file_offset, layout.data_offset + 32);
    cr_assert_eq(t->nbytes, 10);
    cr_assert_eq(rf_model_n_warnings(m), 0);
    cr_assert_str_eq(rf_model_config_get(m)->architecture, "test");
    rf_model_free(m);
    free(mem);
    free(b.p);
    NO_LEAKS();
}

/* Writes one KV of every type; returns the number of pairs. */
static int all_value_types(buf *b)
{
    kv(b, "u8", 0);
    u8(b, 200);
    kv(b, "i8", 1);
    u8(b, (uint8_t)-100);
    kv(b, "u16", 2);
    u16(b, 65000);
    kv(b, "i16", 3);
    u16(b, (uint16_t)-30000);
    kv(b, "u32", 4);
    u32(b, 4000000000u);
    kv(b, "i32", 5);
    u32(b, (uint32_t)-2000000000);
    kv(b, "f32", 6);
    f32(b, 0.1f);
    kv(b, "bool", 7);
    u8(b, 1);
    kv(b, "string", 8);
    str(b, "h\xc3\xa9llo");
    kv(b, "u64", 10);
    u64(b, 18000000000000000000ull);
    kv(b, "i64", 11);
    u64(b, (uint64_t)-9000000000000000000ll);
    kv(b, "f64", 12);
    f64(b, -2.5e300);
    kv(b, "arr.str", 9);
    u32(b, 8);
    u64(b, 3);
    str(b, "a");
    str(b, "");
    str(b, "ccc");
    kv(b, "arr.i16", 9);
    u32(b, 3);
    u64(b, 2);
    u16(b, (uint16_t)-1);
    u16(b, 7);
    kv(b, "arr.empty", 9);
    u32(b, 6);
    u64(b, 0);
    kv(b, "arr.nested", 9);
    u32(b, 9);
    u64(b, 2);
    u32(b, 5);
    u64(b, 2);
    u32(b, 1);
    u32(b, (uint32_t)-2);
    u32(b, 8);
    u64(b, 1);
    str(b, "x");
    return 16;
}

static void check_all_value_types(const rf_model *m)
{
    const rf_kv *k;
    cr_assert((k = rf_model_find_kv(m, "u8")) && k->value.type == RF_VALUE_U8 &&
              k->value.as.u == 200);
    cr_assert((k = rf_model_find_kv(m, "i8")) && k->value.type == RF_VALUE_I8 &&
              k->value.as.i == -100);
    cr_assert((k = rf_model_find_kv(m, "u16")) && k->value.type == RF_VALUE_U16 &&
              k->value.as.u == 65000);
    cr_assert((k = rf_model_find_kv(m, "i16")) && k->value.type == RF_VALUE_I16 &&
              k->value.as.i == -30000);
    cr_assert((k = rf_model_find_kv(m, "u32")) && k->value.type == RF_VALUE_U32 &&
              k->value.as.u == 4000000000u);
    cr_assert((k = rf_model_find_kv(m, "i32")) && k->value.type == RF_VALUE_I32 &&
              k->value.as.i == -2000000000);
    cr_assert((k = rf_model_find_kv(m, "f32")) && k->value.type == RF_VALUE_F32 &&
              k->value.as.f == (double)0.1f);
    cr_assert((k = rf_model_find_kv(m, "bool")) && k->value.type == RF_VALUE_BOOL && k->value.as.b);
    cr_assert((k = rf_model_find_kv(m, "string")) && k->value.type == RF_VALUE_STRING);
    cr_assert_eq(k->value.as.str.len, 6);
    cr_assert_str_eq(k->value.as.str.data, "h\xc3\xa9llo");
    cr_assert((k = rf_model_find_kv(m, "u64")) && k->value.as.u == 18000000000000000000ull);
    cr_assert((k = rf_model_find_kv(m, "i64")) && k->value.as.i == -9000000000000000000ll);
    cr_assert((k = rf_model_find_kv(m, "f64")) && k->value.type == RF_VALUE_F64 &&
              k->value.as.f == -2.5e300);
    k = rf_model_find_kv(m, "arr.str");
    cr_assert(k && k->value.type == RF_VALUE_ARRAY && k->value.as.arr.elem_type == RF_VALUE_STRING);
    cr_assert_eq(k->value.as.arr.count, 3);
    cr_assert_str_eq(k->value.as.arr.items[0].as.str.data, "a");
    cr_assert_eq(k->value.as.arr.items[1].as.str.len, 0);
    cr_assert_str_eq(k->value.as.arr.items[2].as.str.data, "ccc");
    k = rf_model_find_kv(m, "arr.i16");
    cr_assert(k && k->value.as.arr.elem_type == RF_VALUE_I16 && k->value.as.arr.count == 2);
    cr_assert_eq(k->value.as.arr.items[0].as.i, -1);
    cr_assert_eq(k->value.as.arr.items[1].as.i, 7);
    k = rf_model_find_kv(m, "arr.empty");
    cr_assert(k && k->value.as.arr.elem_type == RF_VALUE_F32 && k->value.as.arr.count == 0);
    k = rf_model_find_kv(m, "arr.nested");
    cr_assert(k && k->value.as.arr.elem_type == RF_VALUE_ARRAY && k->value.as.arr.count == 2);
    const rf_value *inner = &k->value.as.arr.items[0];
    cr_assert(inner->type == RF_VALUE_ARRAY && inner->as.arr.elem_type == RF_VALUE_I32);
    cr_assert_eq(inner->as.arr.count, 2);
    cr_assert_eq(inner->as.arr.items[1].as.i, -2);
    inner = &k->value.as.arr.items[1];
    cr_assert(inner->as.arr.elem_type == RF_VALUE_STRING && inner->as.arr.count == 1);
    cr_assert_str_eq(inner->as.arr.items[0].as.str.data, "x");
    /* order is kept */
    cr_assert_str_eq(rf_model_kv(m, 0)->key, "u8");
    cr_assert_str_eq(rf_model_kv(m, 15)->key, "arr.nested");
}

Test(gguf_read, every_value_type_and_nested_arrays)
{
    buf body = {0};
    int n = all_value_types(&body);
    buf b = {0};
    header(&b, 3, 0, (uint64_t)n);
    put(&b, body.p, body.n);
    rf_error err;
    rf_model *m = open_bytes(b.p, b.n, false, &err, NULL);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_kv(m), (size_t)n);
    check_all_value_types(m);
    cr_assert(has_warning(m, "array of arrays"), "nested arrays are noted: llama.cpp rejects them");
    rf_model_free(m);
    free(body.p);
    free(b.p);
    NO_LEAKS();
}

Test(gguf_read, big_endian_file)
{
    buf b = {.be = true};
    header(&b, 3, 3, 17);
    kv(&b, "general.architecture", 8);
    str(&b, "test");
    all_value_types(&b);
    tinfo(&b, "f", 2, (uint64_t[]){2, 2}, 0, 0);
    tinfo(&b, "h", 1, (uint64_t[]){3}, 1, 32);
    tinfo(&b, "c", 1, (uint64_t[]){4}, 24, 64);
    pad(&b, 32);
    for (int i = 0; i < 4; i++)
        f32(&b, (float)i * 1.25f);
    pad(&b, 32);
    for (int i = 0; i < 3; i++)
        u16(&b, rf_f32_to_f16((float)-i));
    pad(&b, 32);
    for (int i = 0; i < 4; i++)
        u8(&b, (uint8_t)(10 + i));
    pad(&b, 32);
    cr_assert_eq(memcmp(b.p + 4, "\0\0\0\3", 4), 0, "version stored big-endian");
    rf_error err;
    uint8_t *mem;
    rf_model *m = open_bytes(b.p, b.n, false, &err, &mem);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_format_version(m), 3);
    cr_assert_eq(rf_model_n_kv(m), 17);
    cr_assert_str_eq(rf_model_kv(m, 0)->key, "general.architecture");
    {
        const rf_kv *k = rf_model_find_kv(m, "u32");
        cr_assert_eq(k->value.as.u, 4000000000u);
        k = rf_model_find_kv(m, "f64");
        cr_assert_eq(k->value.as.f, -2.5e300);
        k = rf_model_find_kv(m, "arr.nested");
        cr_assert_eq(k->value.as.arr.items[0].as.arr.items[1].as.i, -2);
    }
    const rf_tensor *f = rf_model_find_tensor(m, "f");
    float fv[4];
    memcpy(fv, f->data, 16);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(fv[i], (float)i * 1.25f, "F32 swapped to host order");
    cr_assert(f->data < mem || f->data >= mem + b.n, "swapped data lives in model memory");
    const rf_tensor *h = rf_model_find_tensor(m, "h");
    uint16_t hv[3];
    memcpy(hv, h->data, 6);
    cr_assert_eq(rf_f16_to_f32(hv[2]), -2.0f);
    const rf_tensor *c = rf_model_find_tensor(m, "c");
    cr_assert_eq(c->data[3], 13, "I8 needs no swap");
    rf_gguf_layout layout;
    cr_assert_eq(rf_gguf_model_layout(m, &layout, &err), RF_OK);
    cr_assert(layout.big_endian);
    rf_model_free(m);
    free(mem);
    free(b.p);
    NO_LEAKS();
}

Test(gguf_read, big_endian_quantized_strict_and_lenient)
{
    buf b = {.be = true};
    header(&b, 3, 1, 0);
    tinfo(&b, "q", 1, (uint64_t[]){32}, 8, 0);
    pad(&b, 32);
    for (int i = 0; i < 34; i++)
        u8(&b, (uint8_t)i);
    pad(&b, 32);
    expect_fail(&b, RF_ERR_UNSUPPORTED, "big-endian");
    rf_error err;
    rf_model *m = open_bytes(b.p, b.n, true, &err, NULL);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert(has_warning(m, "big-endian"));
    char path[] = "/tmp/rosetta-gguf-be-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cr_assert_eq(rf_gguf_write(m, path, NULL, &err), RF_ERR_UNSUPPORTED,
                 "stored big-endian blocks are not written as little-endian");
    cr_assert(strstr(err.message, "quantized data from a big-endian file"), "%s", err.message);
    unlink(path);
    rf_model_free(m);
    free(b.p);
    NO_LEAKS();
}

Test(gguf_read, custom_alignment)
{
    buf b = {0};
    header(&b, 3, 2, 1);
    kv(&b, "general.alignment", 4);
    u32(&b, 256);
    tinfo(&b, "x", 1, (uint64_t[]){3}, 0, 0);
    tinfo(&b, "y", 1, (uint64_t[]){3}, 0, 256);
    pad(&b, 256);
    size_t d = b.n;
    for (int i = 0; i < 3; i++)
        f32(&b, 1.0f);
    pad(&b, 256);
    for (int i = 0; i < 3; i++)
        f32(&b, 2.0f);
    pad(&b, 256);
    rf_error err;
    rf_model *m = open_bytes(b.p, b.n, false, &err, NULL);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_tensor(m, 1)->file_offset, d + 256);
    rf_gguf_layout layout;
    cr_assert_eq(rf_gguf_model_layout(m, &layout, &err), RF_OK, "%s", err.message);
    cr_assert_eq(layout.alignment, 256);
    cr_assert_eq(layout.data_offset, d);
    rf_model_free(m);
    free(b.p);
    NO_LEAKS();
}

static void alignment_file(buf *b, uint32_t type, uint32_t value)
{
    header(b, 3, 1, 1);
    kv(b, "general.alignment", type);
    if (type == 4)
        u32(b, value);
    else
        u8(b, (uint8_t)value);
    tinfo(b, "x", 1, (uint64_t[]){1}, 0, 0);
    pad(b, 32);
    f32(b, 1.0f);
    pad(b, 32);
}

Test(gguf_read, bad_alignment_values)
{
    uint32_t bad[] = {0, 3, 48};
    for (size_t i = 0; i < 3; i++) {
        buf b = {0};
        alignment_file(&b, 4, bad[i]);
        expect_fail(&b, RF_ERR_FORMAT, "not a non-zero power of two");
        rf_error err;
        rf_model *m = open_bytes(b.p, b.n, true, &err, NULL);
        cr_assert_not_null(m, "lenient falls back to 32: %s", err.message);
        cr_assert(has_warning(m, "power of two"));
        rf_model_free(m);
        free(b.p);
    }
    buf b = {0};
    alignment_file(&b, 0, 32);
    expect_fail(&b, RF_ERR_FORMAT, "has type u8, expected u32");
    free(b.p);
    NO_LEAKS();
}

/* ---- validation rules, one by one ---------------------------------------------------------- */

Test(gguf_read, header_rules)
{
    buf b = {0};
    put(&b, "GGUX", 4);
    u32(&b, 3);
    u64(&b, 0);
    u64(&b, 0);
    expect_fail(&b, RF_ERR_FORMAT, "bad magic at offset 0");
    free(b.p);
    uint32_t versions[] = {0, 1, 4};
    const char *msgs[] = {"version 0", "version 1", "version 4"};
    for (int i = 0; i < 3; i++) {
        buf v = {0};
        header(&v, versions[i], 0, 0);
        expect_fail(&v, versions[i] == 0 ? RF_ERR_FORMAT : RF_ERR_UNSUPPORTED, msgs[i]);
        free(v.p);
    }
    buf v2 = {0};
    header(&v2, 2, 0, 0);
    rf_error err;
    rf_model *m = open_bytes(v2.p, v2.n, false, &err, NULL);
    cr_assert_not_null(m, "version 2 is read: %s", err.message);
    cr_assert_eq(rf_model_format_version(m), 2);
    rf_model_free(m);
    free(v2.p);

    buf big = {0};
    header(&big, 3, 0, 1ull << 63);
    expect_fail(&big, RF_ERR_FORMAT, "key/value count 9223372036854775808 at offset 16");
    free(big.p);
    buf absurd = {0};
    header(&absurd, 3, 1ull << 40, 0);
    expect_fail(&absurd, RF_ERR_FORMAT, "tensor count 1099511627776 at offset 8 is impossible");
    free(absurd.p);
    buf kvs = {0};
    header(&kvs, 3, 0, 1000);
    kv(&kvs, "a", 0);
    u8(&kvs, 0);
    expect_fail(&kvs, RF_ERR_FORMAT, "key/value count 1000 at offset 16 is impossible");
    free(kvs.p);
    NO_LEAKS();
}

Test(gguf_read, string_and_array_lengths_checked_before_allocating)
{
    buf b = {0};
    header(&b, 3, 0, 1);
    u64(&b, 1ull << 40); /* key length past EOF */
    put(&b, "abcdefghijklmnop", 16);
    expect_fail(&b, RF_ERR_FORMAT, "key length 1099511627776 at offset 24 exceeds ggml's limit");
    free(b.p);
    buf c = {0};
    header(&c, 3, 0, 1);
    u64(&c, 1000);
    put(&c, "abcdefghijklmnop", 16);
    expect_fail(&c, RF_ERR_FORMAT, "key length 1000 at offset 24 exceeds the 16 bytes left");
    free(c.p);
    buf d = {0};
    header(&d, 3, 0, 1);
    kv(&d, "arr", 9);
    u32(&d, 8);
    u64(&d, 1000000);
    str(&d, "only one");
    expect_fail(&d, RF_ERR_FORMAT, "array of 1000000 string values at offset 39");
    free(d.p);
    buf e = {0};
    header(&e, 3, 0, 1);
    kv(&e, "arr", 9);
    u32(&e, 0);
    u64(&e, (1ull << 30) + 1);
    expect_fail(&e, RF_ERR_FORMAT, "exceeds ggml's limit of 1073741824 elements");
    free(e.p);
    NO_LEAKS();
}

Test(gguf_read, value_type_rules)
{
    buf b = {0};
    header(&b, 3, 0, 1);
    kv(&b, "weird", 13);
    u32(&b, 0);
    expect_fail(&b, RF_ERR_FORMAT, "unknown value type 13 at offset 37");
    free(b.p);
    buf a = {0};
    header(&a, 3, 0, 1);
    kv(&a, "weird", 9);
    u32(&a, 77);
    u64(&a, 1);
    expect_fail(&a, RF_ERR_FORMAT, "unknown array element type 77 at offset 41");
    free(a.p);
    buf n = {0}; /* a nested array whose inner count runs past the end */
    header(&n, 3, 0, 1);
    kv(&n, "nest", 9);
    u32(&n, 9);
    u64(&n, 1);
    u32(&n, 4);
    u64(&n, 5);
    u32(&n, 1);
    expect_fail(&n, RF_ERR_FORMAT, "array of 5 u32 values at offset 52");
    free(n.p);
    buf deep = {0}; /* 20 levels of nesting */
    header(&deep, 3, 0, 1);
    kv(&deep, "deep", 9);
    for (int i = 0; i < 20; i++) {
        u32(&deep, 9);
        u64(&deep, 1);
    }
    u32(&deep, 0);
    u64(&deep, 0);
    expect_fail(&deep, RF_ERR_LIMIT, "nested more than 16 deep");
    free(deep.p);
    NO_LEAKS();
}

Test(gguf_read, key_rules)
{
    buf b = {0};
    header(&b, 3, 0, 2);
    kv(&b, "k", 0);
    u8(&b, 1);
    kv(&b, "k", 0);
    u8(&b, 2);
    expect_fail(&b, RF_ERR_FORMAT, "duplicate key at offset 38 (first at offset 24)");
    rf_error err;
    rf_model *m = open_bytes(b.p, b.n, true, &err, NULL);
    cr_assert_not_null(m);
    cr_assert_eq(rf_model_n_kv(m), 2, "lenient keeps both");
    cr_assert_eq(rf_model_find_kv(m, "k")->value.as.u, 1);
    rf_model_free(m);
    free(b.p);
    buf e = {0};
    header(&e, 3, 0, 1);
    kv(&e, "", 0);
    u8(&e, 1);
    expect_fail(&e, RF_ERR_FORMAT, "empty key");
    free(e.p);
    buf bo = {0};
    header(&bo, 3, 0, 1);
    kv(&bo, "flag", 7);
    u8(&bo, 2);
    m = open_bytes(bo.p, bo.n, false, &err, NULL);
    cr_assert_not_null(m, "ggml reads any non-zero bool as true");
    cr_assert(rf_model_find_kv(m, "flag")->value.as.b);
    cr_assert(has_warning(m, "bool value 2 at offset 40"));
    rf_model_free(m);
    free(bo.p);
    NO_LEAKS();
}

/* A file with one tensor described by the arguments and enough zero data. */
static void one_tensor(buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                       uint64_t offset, size_t data_bytes)
{
    header(b, 3, 1, 0);
    tinfo(b, name, n_dims, ne, type, offset);
    pad(b, 32);
    for (size_t i = 0; i < data_bytes; i++)
        u8(b, 0);
}

Test(gguf_read, tensor_rules)
{
    char name64[65];
    memset(name64, 'n', 64);
    name64[64] = '\0';
    buf b = {0};
    one_tensor(&b, name64, 1, (uint64_t[]){1}, 0, 0, 32);
    expect_fail(&b, RF_ERR_FORMAT, "name of 64 bytes at offset 24 is too long");
    free(b.p);
    name64[63] = '\0';
    buf ok = {0};
    one_tensor(&ok, name64, 1, (uint64_t[]){1}, 0, 0, 32);
    rf_error err;
    rf_model *m = open_bytes(ok.p, ok.n, false, &err, NULL);
    cr_assert_not_null(m, "63 bytes is the longest name ggml takes: %s", err.message);
    rf_model_free(m);
    free(ok.p);

    buf dims = {0};
    one_tensor(&dims, "x", 5, (uint64_t[]){1, 1, 1, 1, 1}, 0, 0, 32);
    expect_fail(&dims, RF_ERR_FORMAT, "5 dimensions at offset 33, ggml allows at most 4");
    m = open_bytes(dims.p, dims.n, true, &err, NULL);
    cr_assert_not_null(m, "lenient reads 5 dims: %s", err.message);
    cr_assert_eq(rf_model_tensor(m, 0)->ndim, 5);
    rf_model_free(m);
    free(dims.p);

    buf neg = {0};
    one_tensor(&neg, "x", 2, (uint64_t[]){4, (uint64_t)-3}, 0, 0, 32);
    expect_fail(&neg, RF_ERR_FORMAT, "dimension 1 at offset 45 is -3");
    free(neg.p);

    buf ovf = {0};
    one_tensor(&ovf, "x", 3, (uint64_t[]){1ull << 32, 1ull << 20, 1ull << 12}, 0, 0, 32);
    expect_fail(&ovf, RF_ERR_FORMAT, "element count overflows int64");
    free(ovf.p);

    /* Zero elements, but ne[0] times the dimensions above 1 overflows: gguf.cpp accepts the
     * shape, then ggml_new_tensor (llama.cpp's loader) aborts. Found by tools/gguf_oracle. */
    buf zero = {0};
    one_tensor(&zero, "x", 3, (uint64_t[]){8, 0, 1ull << 62}, 0, 0, 32);
    expect_fail(&zero, RF_ERR_FORMAT, "ggml_new_tensor aborts on it");
    free(zero.p);
    /* The product fits in int64 but equals ggml's strict bound: INT64_MAX / 2 * 2. */
    buf edge = {0};
    one_tensor(&edge, "x", 2, (uint64_t[]){(uint64_t)INT64_MAX / 2, 2}, 24, 0, 32);
    expect_fail(&edge, RF_ERR_FORMAT, "ggml_new_tensor aborts on it");
    free(edge.p);
    /* Zero ne[0]: every later check passes in ggml, and Rosetta accepts the empty tensor. */
    buf empty = {0};
    one_tensor(&empty, "x", 3, (uint64_t[]){0, 1ull << 62, 1ull << 62}, 0, 0, 0);
    m = open_bytes(empty.p, empty.n, false, &err, NULL);
    cr_assert_not_null(m, "an empty tensor with ne[0] = 0 is accepted: %s", err.message);
    cr_assert_eq(rf_model_tensor(m, 0)->nbytes, 0);
    rf_model_free(m);
    free(empty.p);

    buf unk = {0};
    one_tensor(&unk, "x", 1, (uint64_t[]){1}, 99, 0, 32);
    expect_fail(&unk, RF_ERR_FORMAT, "unknown tensor type 99 at offset 45");
    free(unk.p);
    uint32_t removed[] = {4, 5, 31, 32, 33, 36, 37, 38};
    for (int i = 0; i < 8; i++) {
        buf r = {0};
        one_tensor(&r, "x", 1, (uint64_t[]){32}, removed[i], 0, 64);
        expect_fail(&r, RF_ERR_UNSUPPORTED, "was removed from ggml");
        free(r.p);
    }

    buf blk = {0};
    one_tensor(&blk, "x", 2, (uint64_t[]){100, 2}, 12, 0, 512);
    expect_fail(&blk, RF_ERR_FORMAT, "type Q4_K has 100 elements per row (ne[0]) at offset 37");
    free(blk.p);
    NO_LEAKS();
}

Test(gguf_read, duplicate_tensor_names)
{
    buf b = {0};
    header(&b, 3, 2, 0);
    tinfo(&b, "w", 1, (uint64_t[]){1}, 0, 0);
    tinfo(&b, "w", 1, (uint64_t[]){1}, 0, 32);
    pad(&b, 32);
    for (int i = 0; i < 64; i++)
        u8(&b, 0);
    expect_fail(&b, RF_ERR_FORMAT, "duplicate tensor name at offset 57 (first at offset 24)");
    rf_error err;
    rf_model *m = open_bytes(b.p, b.n, true, &err, NULL);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_tensors(m), 1);
    cr_assert(has_warning(m, "duplicate tensor name"));
    rf_model_free(m);
    free(b.p);
    NO_LEAKS();
}

Test(gguf_read, offset_rules)
{
    buf mis = {0};
    one_tensor(&mis, "x", 1, (uint64_t[]){4}, 0, 8, 64);
    expect_fail(&mis, RF_ERR_FORMAT, "data offset 8 (stored at offset 49) is misaligned");
    free(mis.p);

    buf gap = {0};
    header(&gap, 3, 2, 0);
    tinfo(&gap, "a", 1, (uint64_t[]){4}, 0, 0);
    tinfo(&gap, "b", 1, (uint64_t[]){4}, 0, 64);
    pad(&gap, 32);
    for (int i = 0; i < 96; i++)
        u8(&gap, 0);
    expect_fail(&gap, RF_ERR_FORMAT, "data offset 64 (stored at offset 82), expected 32");
    rf_error err;
    rf_model *m = open_bytes(gap.p, gap.n, true, &err, NULL);
    cr_assert_not_null(m, "a gap is memory-safe: lenient reads it: %s", err.message);
    cr_assert(has_warning(m, "llama.cpp rejects this file"));
    rf_model_free(m);
    free(gap.p);

    buf swapped = {0}; /* data not in tensor-info order */
    header(&swapped, 3, 2, 0);
    tinfo(&swapped, "a", 1, (uint64_t[]){4}, 0, 32);
    tinfo(&swapped, "b", 1, (uint64_t[]){4}, 0, 0);
    pad(&swapped, 32);
    for (int i = 0; i < 64; i++)
        u8(&swapped, 0);
    expect_fail(&swapped, RF_ERR_FORMAT, "data offset 32 (stored at offset 49), expected 0");
    free(swapped.p);

    buf out = {0};
    one_tensor(&out, "x", 1, (uint64_t[]){16}, 0, 0, 40);
    expect_fail(&out, RF_ERR_FORMAT, "data offset out of range: 64 bytes at data offset 0");
    m = open_bytes(out.p, out.n, true, &err, NULL);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_null(rf_model_tensor(m, 0)->data, "lenient: data outside the file is NULL");
    rf_model_free(m);
    free(out.p);

    buf far = {0}; /* offset + size wraps around 2^64 */
    one_tensor(&far, "x", 1, (uint64_t[]){4}, 0, UINT64_MAX - 31, 32);
    expect_fail(&far, RF_ERR_FORMAT, "data offset 18446744073709551584 (stored at offset 49)");
    m = open_bytes(far.p, far.n, true, &err, NULL);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert(has_warning(m, "data offset out of range"));
    cr_assert_null(rf_model_tensor(m, 0)->data);
    rf_model_free(m);
    free(far.p);

    buf nopad = {0}; /* last tensor without its trailing padding: a warning only */
    one_tensor(&nopad, "x", 1, (uint64_t[]){3}, 0, 0, 12);
    m = open_bytes(nopad.p, nopad.n, false, &err, NULL);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert(has_warning(m, "padded end of the data section"));
    rf_model_free(m);
    free(nopad.p);
    NO_LEAKS();
}

Test(gguf_read, lenient_skips_unknown_types)
{
    buf b = {0};
    header(&b, 3, 3, 0);
    tinfo(&b, "a", 1, (uint64_t[]){4}, 0, 0);
    tinfo(&b, "mystery", 1, (uint64_t[]){4}, 77, 32);
    tinfo(&b, "c", 1, (uint64_t[]){4}, 0, 64);
    pad(&b, 32);
    for (int i = 0; i < 96; i++)
        u8(&b, 0);
    rf_error err;
    rf_model *m = open_bytes(b.p, b.n, true, &err, NULL);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_tensors(m), 2);
    cr_assert_not_null(rf_model_find_tensor(m, "c"));
    cr_assert(has_warning(m, "unknown tensor type 77"));
    rf_model_free(m);
    free(b.p);
    NO_LEAKS();
}

Test(gguf_read, every_truncation_fails_cleanly)
{
    buf b = {0};
    header(&b, 3, 2, 18);
    kv(&b, "general.architecture", 8);
    str(&b, "test");
    kv(&b, "general.alignment", 4);
    u32(&b, 64);
    all_value_types(&b);
    tinfo(&b, "a", 2, (uint64_t[]){3, 2}, 0, 0);
    tinfo(&b, "b", 1, (uint64_t[]){32}, 8, 64);
    pad(&b, 64);
    size_t data_end = b.n + 64 + 34;
    for (int i = 0; i < 64 + 34; i++)
        u8(&b, (uint8_t)i);
    pad(&b, 64);
    for (size_t n = 0; n < b.n; n++) {
        rf_error err;
        uint8_t *mem = NULL;
        rf_model *m = open_bytes(b.p, n, false, &err, &mem);
        if (n < data_end) {
            cr_assert_null(m, "prefix of %zu bytes must be rejected", n);
            cr_assert(strstr(err.message, "truncated") || strstr(err.message, "out of range") ||
                          strstr(err.message, "impossible") || strstr(err.message, "remain") ||
                          strstr(err.message, "left in the file"),
                      "%zu: %s", n, err.message);
        } else {
            cr_assert_not_null(m, "%zu: all data present: %s", n, err.message);
            rf_model_free(m);
            free(mem);
        }
        mem = NULL;
        m = open_bytes(b.p, n, true, &err, &mem); /* lenient: never a crash */
        rf_model_free(m);
        free(mem);
    }
    free(b.p);
    NO_LEAKS();
}

Test(gguf_read, config_and_tokenizer_from_metadata)
{
    buf b = {0};
    header(&b, 3, 2, 18);
    kv(&b, "general.architecture", 8);
    str(&b, "qwen2");
    kv(&b, "general.name", 8);
    str(&b, "Tiny");
    kv(&b, "qwen2.block_count", 4);
    u32(&b, 2);
    kv(&b, "qwen2.context_length", 4);
    u32(&b, 4096);
    kv(&b, "qwen2.embedding_length", 4);
    u32(&b, 64);
    kv(&b, "qwen2.feed_forward_length", 4);
    u32(&b, 96);
    kv(&b, "qwen2.attention.head_count", 4);
    u32(&b, 4);
    kv(&b, "qwen2.attention.head_count_kv", 4);
    u32(&b, 2);
    kv(&b, "qwen2.rope.freq_base", 6);
    f32(&b, 1000000.0f);
    kv(&b, "qwen2.attention.layer_norm_rms_epsilon", 6);
    f32(&b, 1e-6f);
    kv(&b, "tokenizer.ggml.model", 8);
    str(&b, "gpt2");
    kv(&b, "tokenizer.ggml.pre", 8);
    str(&b, "qwen2");
    kv(&b, "tokenizer.ggml.tokens", 9);
    u32(&b, 8);
    u64(&b, 3);
    str(&b, "a");
    str(&b, "b");
    str(&b, "<|im_end|>");
    kv(&b, "tokenizer.ggml.token_type", 9);
    u32(&b, 5);
    u64(&b, 3);
    u32(&b, 1);
    u32(&b, 1);
    u32(&b, 3);
    kv(&b, "tokenizer.ggml.merges", 9);
    u32(&b, 8);
    u64(&b, 1);
    str(&b, "a b");
    kv(&b, "tokenizer.ggml.eos_token_id", 4);
    u32(&b, 2);
    kv(&b, "tokenizer.ggml.add_bos_token", 7);
    u8(&b, 0);
    kv(&b, "tokenizer.chat_template", 8);
    str(&b, "{{ x }}");
    tinfo(&b, "token_embd.weight", 2, (uint64_t[]){64, 3}, 0, 0);
    tinfo(&b, "output_norm.weight", 1, (uint64_t[]){64}, 0, 768);
    pad(&b, 32);
    for (int i = 0; i < 768 + 256; i++)
        u8(&b, 0);
    rf_error err;
    rf_model *m = open_bytes(b.p, b.n, false, &err, NULL);
    cr_assert_not_null(m, "%s", err.message);
    const rf_model_config *c = rf_model_config_get(m);
    cr_assert_str_eq(c->architecture, "qwen2");
    cr_assert_str_eq(c->name, "Tiny");
    cr_assert_eq(c->n_layers, 2);
    cr_assert_eq(c->context_length, 4096);
    cr_assert_eq(c->hidden_size, 64);
    cr_assert_eq(c->intermediate_size, 96);
    cr_assert_eq(c->n_heads, 4);
    cr_assert_eq(c->n_kv_heads, 2);
    cr_assert_eq(c->head_dim, 16);
    cr_assert_eq(c->rope_theta, 1000000.0);
    cr_assert_eq(c->rms_norm_eps, (double)1e-6f);
    cr_assert_eq(c->rope_type, RF_ROPE_NEOX);
    cr_assert_eq(c->tie_word_embeddings, 1, "no output.weight: tied");
    cr_assert_eq(c->vocab_size, 3);
    cr_assert_eq(c->eos_token_id, 2);
    cr_assert_eq(c->bos_token_id, -1);
    cr_assert_str_eq(c->chat_template, "{{ x }}");
    const rf_tokenizer *t = rf_model_tokenizer(m);
    cr_assert_not_null(t);
    cr_assert_str_eq(t->model, "gpt2");
    cr_assert_str_eq(t->pre, "qwen2");
    cr_assert_eq(t->n_tokens, 3);
    cr_assert_str_eq(t->tokens[2], "<|im_end|>");
    cr_assert_eq(t->token_types[2], RF_TOKEN_CONTROL);
    cr_assert_eq(t->n_merges, 1);
    cr_assert_str_eq(t->merges[0], "a b");
    cr_assert(!t->add_bos);
    cr_assert_eq(rf_model_tensor(m, 0)->shape[0], 3);
    rf_model_free(m);
    free(b.p);
    NO_LEAKS();
}

/* A file whose config lies under prefix; general.architecture is arch (NULL: absent). One tensor,
 * token_embd.weight (F32 [4, 64]). */
static void prefixed_config_file(buf *b, const char *arch, const char *prefix)
{
    header(b, 3, 1, arch ? 3 : 2);
    if (arch) {
        kv(b, "general.architecture", 8);
        str(b, arch);
    }
    char key[64];
    snprintf(key, sizeof key, "%s.embedding_length", prefix);
    kv(b, key, 4);
    u32(b, 64);
    snprintf(key, sizeof key, "%s.block_count", prefix);
    kv(b, key, 4);
    u32(b, 2);
    tinfo(b, "token_embd.weight", 2, (uint64_t[]){64, 4}, 0, 0);
    pad(b, 32);
    for (int i = 0; i < 256; i++)
        f32(b, (float)i);
}

static rf_model *open_as(const buf *b, const char *arch, rf_error *err)
{
    uint8_t *copy = malloc(b->n);
    cr_assert_not_null(copy);
    memcpy(copy, b->p, b->n);
    cr_assert(n_copies < sizeof copies / sizeof copies[0]);
    copies[n_copies++] = copy;
    rf_open_options opts = {.architecture = arch};
    return rf_gguf_open_memory(copy, b->n, "t.gguf", &opts, err);
}

static size_t count_warnings(const rf_model *m, const char *substr)
{
    size_t n = 0;
    for (size_t i = 0; i < rf_model_n_warnings(m); i++)
        n += strstr(rf_model_warning(m, i), substr) != NULL;
    return n;
}

Test(gguf_read, architecture_option_reads_a_file_without_one)
{
    buf b = {0};
    prefixed_config_file(&b, NULL, "qwen2");
    rf_error err;
    rf_model *m = open_as(&b, NULL, &err); /* without the option: no config, the warning */
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_null(rf_model_config_get(m)->architecture);
    cr_assert_eq(rf_model_config_get(m)->hidden_size, 0);
    cr_assert_eq(count_warnings(m, "general.architecture is missing: llama.cpp"), 1);
    rf_model_free(m);

    m = open_as(&b, "qwen2", &err);
    cr_assert_not_null(m, "%s", err.message);
    const rf_model_config *c = rf_model_config_get(m);
    cr_assert_str_eq(c->architecture, "qwen2");
    cr_assert_eq(c->hidden_size, 64);
    cr_assert_eq(c->n_layers, 2);
    cr_assert_eq(c->rope_type, RF_ROPE_NEOX);
    cr_assert_eq(rf_model_n_warnings(m), 1);
    cr_assert_eq(count_warnings(m, "missing: read as 'qwen2'"), 1);
    cr_assert_null(rf_model_find_kv(m, "general.architecture"), "the raw metadata is the file's");
    rf_model_free(m);

    /* the same name as the file's: no warning */
    buf same = {0};
    prefixed_config_file(&same, "qwen2", "qwen2");
    m = open_as(&same, "qwen2", &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_warnings(m), 0);
    cr_assert_eq(rf_model_config_get(m)->hidden_size, 64);
    rf_model_free(m);
    free(b.p);
    free(same.p);
}

Test(gguf_read, architecture_option_wins_over_the_files)
{
    buf b = {0};
    prefixed_config_file(&b, "llama", "llama");
    rf_error err;
    rf_model *m = open_as(&b, "qwen2", &err);
    cr_assert_not_null(m, "%s", err.message);
    const rf_model_config *c = rf_model_config_get(m);
    cr_assert_str_eq(c->architecture, "qwen2");
    cr_assert_eq(c->hidden_size, 64, "the file's own keys are the fallback");
    cr_assert_eq(c->rope_type, RF_ROPE_NEOX, "qwen2's RoPE, not llama's");
    cr_assert_eq(rf_model_n_warnings(m), 1);
    cr_assert_eq(count_warnings(m, "is 'llama' but 'qwen2' was asked for"), 1);
    rf_model_free(m);
    free(b.p);
}

Test(gguf_read, open_through_rf_model_open)
{
    buf b = {0};
    simple_file(&b);
    char path[] = "/tmp/rosetta-gguf-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(write(fd, b.p, b.n) == (ssize_t)b.n);
    close(fd);
    rf_error err;
    rf_model *m = rf_model_open(path, NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_format(m), RF_FORMAT_GGUF);
    cr_assert_str_eq(rf_model_path(m), path);
    cr_assert_eq(rf_model_n_tensors(m), 2);
    rf_model_free(m);
    unlink(path);
    free(b.p);
    NO_LEAKS();
}

/* ---- writing ------------------------------------------------------------------------------ */

static const char *tmp_path(const char *name)
{
    static char path[128];
    if (!tmpdir[0]) {
        strcpy(tmpdir, "/tmp/rosetta-gguf-w-XXXXXX");
        cr_assert_not_null(mkdtemp(tmpdir));
    }
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)size + 1);
    cr_assert_eq(fread(p, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return p;
}

static void spit(const char *path, const buf *b)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b->p, 1, b->n, f), b->n);
    fclose(f);
}

/* Only the final file may exist in the directory after a write (no temp files left). */
static int files_in_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", tmpdir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    cr_assert_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static void add(rf_model *m, const char *name, rf_dtype dtype, int ndim, const uint64_t *shape,
                const void *data, uint64_t nbytes)
{
    rf_tensor t = {.name = name, .dtype = dtype, .ndim = ndim, .data = data, .nbytes = nbytes};
    memcpy(t.shape, shape, sizeof(uint64_t) * (size_t)ndim);
    rf_error err;
    cr_assert_eq(rf_model_add_tensor(m, &t, &err), RF_OK, "%s", err.message);
}

/* An independent decoder for the subset the writer tests use. */
typedef struct parsed {
    uint64_t n_tensors, n_kv, data_offset;
    char names[8][64];
    uint32_t n_dims[8], types[8];
    uint64_t ne[8][4], offsets[8];
    char keys[16][64];
    uint32_t kv_types[16];
} parsed;

static uint64_t rd(const uint8_t *p, size_t *pos, int width)
{
    uint64_t v = 0;
    for (int i = 0; i < width; i++)
        v |= (uint64_t)p[*pos + (size_t)i] << (8 * i);
    *pos += (size_t)width;
    return v;
}

static void skip_value(const uint8_t *p, size_t *pos, uint32_t type)
{
    static const int width[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) {
        *pos += (size_t)rd(p, pos, 8);
    } else if (type == 9) {
        uint32_t et = (uint32_t)rd(p, pos, 4);
        uint64_t n = rd(p, pos, 8);
        for (uint64_t i = 0; i < n; i++)
            skip_value(p, pos, et);
    } else {
        *pos += (size_t)width[type];
    }
}

static void parse(const uint8_t *p, size_t n, uint32_t alignment, parsed *out)
{
    cr_assert_eq(memcmp(p, "GGUF\3\0\0\0", 8), 0, "little-endian GGUF v3");
    size_t pos = 8;
    out->n_tensors = rd(p, &pos, 8);
    out->n_kv = rd(p, &pos, 8);
    for (uint64_t i = 0; i < out->n_kv; i++) {
        uint64_t len = rd(p, &pos, 8);
        snprintf(out->keys[i], 64, "%.*s", (int)len, (const char *)p + pos);
        pos += len;
        out->kv_types[i] = (uint32_t)rd(p, &pos, 4);
        skip_value(p, &pos, out->kv_types[i]);
    }
    for (uint64_t i = 0; i < out->n_tensors; i++) {
        uint64_t len = rd(p, &pos, 8);
        snprintf(out->names[i], 64, "%.*s", (int)len, (const char *)p + pos);
        pos += len;
        out->n_dims[i] = (uint32_t)rd(p, &pos, 4);
        for (uint32_t j = 0; j < out->n_dims[i]; j++)
            out->ne[i][j] = rd(p, &pos, 8);
        out->types[i] = (uint32_t)rd(p, &pos, 4);
        out->offsets[i] = rd(p, &pos, 8);
    }
    out->data_offset = (pos + alignment - 1) / alignment * alignment;
    cr_assert_leq(out->data_offset, n);
    for (size_t i = pos; i < out->data_offset; i++)
        cr_assert_eq(p[i], 0, "padding before the data section is zero");
}

Test(gguf_write, offsets_padding_and_dims)
{
    rf_model *m = rf_model_new(RF_FORMAT_GGUF, NULL);
    rf_value arch = {.type = RF_VALUE_STRING, .as.str = {"test", 4}};
    rf_model_add_kv(m, "general.architecture", &arch, NULL);
    float f[3] = {1, 2, 3};
    uint8_t q[68];
    for (int i = 0; i < 68; i++)
        q[i] = (uint8_t)(i + 1);
    int8_t c[5] = {-1, -2, -3, -4, -5};
    uint16_t h = rf_f32_to_f16(7.0f);
    add(m, "f", RF_DTYPE_F32, 1, (uint64_t[]){3}, f, 12);
    add(m, "q", RF_DTYPE_Q8_0, 2, (uint64_t[]){2, 32}, q, 68);
    add(m, "c", RF_DTYPE_I8, 1, (uint64_t[]){5}, c, 5);
    add(m, "s", RF_DTYPE_F16, 0, (uint64_t[]){0}, &h, 2);
    const char *path = tmp_path("layout.gguf");
    rf_error err;
    cr_assert_eq(rf_gguf_write(m, path, NULL, &err), RF_OK, "%s", err.message);
    cr_assert_eq(files_in_tmpdir(), 1, "no temp file is left behind");
    size_t n;
    uint8_t *p = slurp(path, &n);
    parsed x = {0};
    parse(p, n, 32, &x);
    cr_assert_eq(x.n_tensors, 4);
    cr_assert_eq(x.n_kv, 2);
    cr_assert_str_eq(x.keys[1], "general.quantization_version", "added: a tensor is quantized");
    cr_assert_eq(x.kv_types[1], RF_VALUE_U32);
    uint64_t sizes[4] = {12, 68, 5, 2};
    const void *datas[4] = {f, q, c, &h};
    uint64_t expect = 0;
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(x.offsets[i], expect, "tensor %d: running sum of padded sizes", i);
        cr_assert_eq(memcmp(p + x.data_offset + x.offsets[i], datas[i], sizes[i]), 0);
        for (uint64_t k = x.offsets[i] + sizes[i]; k < expect + (sizes[i] + 31) / 32 * 32; k++)
            cr_assert_eq(p[x.data_offset + k], 0, "padding after tensor %d is zero", i);
        expect += (sizes[i] + 31) / 32 * 32;
    }
    cr_assert_eq(n, x.data_offset + expect, "padding after the last tensor too");
    cr_assert_eq(x.n_dims[1], 2);
    cr_assert_eq(x.ne[1][0], 32, "ne[] is the row-major shape reversed");
    cr_assert_eq(x.ne[1][1], 2);
    cr_assert_eq(x.types[1], 8);
    cr_assert_eq(x.n_dims[3], 1, "a rank-0 tensor is written as n_dims 1");
    cr_assert_eq(x.ne[3][0], 1);
    free(p);
    rf_model_free(m);
    NO_LEAKS();
}

/* A canonical file: every value type, alignment 64, several dtypes, data in order, padded. */
static void canonical_file(buf *b, bool nested)
{
    buf body = {0};
    int n = all_value_types(&body);
    if (!nested) { /* drop the last pair, arr.nested */
        n--;
        buf t = {0};
        all_value_types(&t);
        body.n = t.n - (4 + 8 + 10 + 4 + 8 + 4 + 8 + 4 + 4 + 4 + 8 + 8 + 1);
        memcpy(body.p, t.p, body.n);
        free(t.p);
    }
    header(b, 3, 3, (uint64_t)n + 2);
    kv(b, "general.alignment", 4);
    u32(b, 64);
    put(b, body.p, body.n);
    kv(b, "general.quantization_version", 4); /* a canonical quantized file has it */
    u32(b, 2);
    free(body.p);
    tinfo(b, "blk.0.attn_q.weight", 2, (uint64_t[]){32, 3}, 8, 0);
    tinfo(b, "x.bias", 1, (uint64_t[]){7}, 0, 128);
    tinfo(b, "unit", 3, (uint64_t[]){2, 1, 1}, 30, 192);
    pad(b, 64);
    for (int i = 0; i < 102; i++)
        u8(b, (uint8_t)(i * 7));
    pad(b, 64);
    for (int i = 0; i < 7; i++)
        f32(b, (float)i / 3.0f);
    pad(b, 64);
    u16(b, 0x3f80);
    u16(b, 0xbf80);
    pad(b, 64);
}

Test(gguf_write, round_trip_is_byte_identical)
{
    for (int nested = 0; nested < 2; nested++) {
        buf b = {0};
        canonical_file(&b, nested);
        const char *src = strdup(tmp_path("canonical.gguf"));
        spit(src, &b);
        rf_error err;
        rf_model *m = rf_model_open(src, NULL, &err);
        cr_assert_not_null(m, "%s", err.message);
        const char *out = strdup(tmp_path("copy.gguf"));
        rf_gguf_write_options opts = {.allow_nested_arrays = nested};
        cr_assert_eq(rf_gguf_write(m, out, &opts, &err), RF_OK, "%s", err.message);
        size_t n;
        uint8_t *p = slurp(out, &n);
        cr_assert_eq(n, b.n, "nested=%d: %zu bytes written, source has %zu", nested, n, b.n);
        cr_assert_eq(memcmp(p, b.p, n), 0, "nested=%d: identical bytes", nested);
        if (nested) {
            cr_assert_eq(rf_gguf_write(m, out, NULL, &err), RF_ERR_UNSUPPORTED);
            cr_assert(strstr(err.message, "'arr.nested' holds an array of arrays"), "%s",
                      err.message);
        }
        free(p);
        rf_model_free(m);
        free((void *)src);
        free((void *)out);
        free(b.p);
    }
    NO_LEAKS();
}

Test(gguf_write, big_endian_source_becomes_little_endian)
{
    buf b = {.be = true};
    header(&b, 3, 1, 2);
    kv(&b, "general.architecture", 8);
    str(&b, "test");
    kv(&b, "v", 9);
    u32(&b, 10);
    u64(&b, 2);
    u64(&b, 1);
    u64(&b, 0x0102030405060708ull);
    tinfo(&b, "w", 1, (uint64_t[]){2}, 0, 0);
    pad(&b, 32);
    f32(&b, 1.5f);
    f32(&b, -3.0f);
    pad(&b, 32);
    const char *src = strdup(tmp_path("be.gguf"));
    spit(src, &b);
    rf_error err;
    rf_model *m = rf_model_open(src, NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    const char *out = tmp_path("le.gguf");
    cr_assert_eq(rf_gguf_write(m, out, NULL, &err), RF_OK, "%s", err.message);
    rf_model *back = rf_model_open(out, NULL, &err);
    cr_assert_not_null(back, "%s", err.message);
    rf_gguf_layout layout;
    cr_assert_eq(rf_gguf_model_layout(back, &layout, &err), RF_OK);
    cr_assert(!layout.big_endian);
    cr_assert_eq(rf_model_find_kv(back, "v")->value.as.arr.items[1].as.u, 0x0102030405060708ull);
    const float expect[2] = {1.5f, -3.0f};
    cr_assert_eq(memcmp(rf_model_tensor(back, 0)->data, expect, 8), 0);
    rf_model_free(back);
    rf_model_free(m);
    free((void *)src);
    free(b.p);
    NO_LEAKS();
}

Test(gguf_write, alignment_option_recorded)
{
    buf b = {0};
    simple_file(&b);
    const char *src = strdup(tmp_path("simple.gguf"));
    spit(src, &b);
    rf_error err;
    rf_model *m = rf_model_open(src, NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    const char *out = strdup(tmp_path("aligned.gguf"));
    rf_gguf_write_options opts = {.alignment = 128};
    cr_assert_eq(rf_gguf_write(m, out, &opts, &err), RF_OK, "%s", err.message);
    rf_model *back = rf_model_open(out, NULL, &err);
    cr_assert_not_null(back, "%s", err.message);
    const rf_kv *a = rf_model_find_kv(back, "general.alignment");
    cr_assert(a && a->value.type == RF_VALUE_U32 && a->value.as.u == 128);
    cr_assert_eq(rf_model_tensor(back, 1)->file_offset % 128, 0);
    cr_assert_eq(memcmp(rf_model_tensor(back, 1)->data, rf_model_tensor(m, 1)->data, 10), 0);
    /* writing the 128-aligned file back with alignment 32 updates the key in place */
    opts.alignment = 32;
    cr_assert_eq(rf_gguf_write(back, src, &opts, &err), RF_OK, "%s", err.message);
    rf_model *again = rf_model_open(src, NULL, &err);
    cr_assert_eq(rf_model_find_kv(again, "general.alignment")->value.as.u, 32);
    cr_assert_str_eq(rf_model_kv(again, 1)->key, "general.alignment", "kept in its place");
    opts.alignment = 24;
    cr_assert_eq(rf_gguf_write(m, out, &opts, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "alignment 24 is not a power of two"), "%s", err.message);
    rf_model_free(again);
    rf_model_free(back);
    rf_model_free(m);
    free((void *)src);
    free((void *)out);
    free(b.p);
    NO_LEAKS();
}

Test(gguf_write, refusals_leave_nothing_behind)
{
    uint8_t bytes[64] = {0};
    struct {
        const char *what, *substr;
        rf_status status;
    } cases[] = {
        {"long name", "GGUF allows at most 63", RF_ERR_UNSUPPORTED},
        {"u8 dtype", "dtype U8 has no GGUF type code", RF_ERR_UNSUPPORTED},
        {"5 dims", "has 5 dimensions; GGUF allows at most 4", RF_ERR_UNSUPPORTED},
        {"json", "holds a JSON value", RF_ERR_UNSUPPORTED},
        {"duplicate key", "duplicate key 'k'", RF_ERR_ARGUMENT},
        {"range", "value out of range for u8", RF_ERR_ARGUMENT},
        {"size", "4 bytes given, its shape and dtype need 8", RF_ERR_ARGUMENT},
        {"no data", "tensor 'n' has no data", RF_ERR_ARGUMENT},
        {"nested", "'nest' holds an array of arrays", RF_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rf_model *m = rf_model_new(RF_FORMAT_GGUF, NULL);
        char longname[80];
        memset(longname, 'a', 64);
        longname[64] = '\0';
        rf_value u = {.type = RF_VALUE_U8, .as.u = 1};
        switch (i) {
        case 0: add(m, longname, RF_DTYPE_F32, 1, (uint64_t[]){1}, bytes, 4); break;
        case 1: add(m, "u", RF_DTYPE_U8, 1, (uint64_t[]){4}, bytes, 4); break;
        case 2: add(m, "d", RF_DTYPE_F32, 5, (uint64_t[]){1, 1, 1, 1, 2}, bytes, 8); break;
        case 3: {
            rf_value j = {.type = RF_VALUE_JSON, .as.str = {"{}", 2}};
            rf_model_add_kv(m, "j", &j, NULL);
            break;
        }
        case 4:
            rf_model_add_kv(m, "k", &u, NULL);
            rf_model_add_kv(m, "k", &u, NULL);
            break;
        case 5:
            u.as.u = 256;
            rf_model_add_kv(m, "k", &u, NULL);
            break;
        case 6: add(m, "s", RF_DTYPE_F32, 1, (uint64_t[]){2}, bytes, 4); break;
        case 7: add(m, "n", RF_DTYPE_F32, 1, (uint64_t[]){2}, NULL, 8); break;
        case 8: {
            rf_value inner = {.type = RF_VALUE_ARRAY, .as.arr = {RF_VALUE_U8, 1, &u}};
            rf_value outer = {.type = RF_VALUE_ARRAY, .as.arr = {RF_VALUE_ARRAY, 1, &inner}};
            rf_model_add_kv(m, "nest", &outer, NULL);
            break;
        }
        }
        rf_error err;
        const char *path = tmp_path("refused.gguf");
        cr_assert_eq(rf_gguf_write(m, path, NULL, &err), cases[i].status, "%s: %s", cases[i].what,
                     err.message);
        cr_assert(strstr(err.message, cases[i].substr), "%s: %s", cases[i].what, err.message);
        struct stat st;
        cr_assert_neq(stat(path, &st), 0, "%s: nothing written", cases[i].what);
        cr_assert_eq(files_in_tmpdir(), 0, "%s: no temp file left", cases[i].what);
        rf_model_free(m);
    }
    NO_LEAKS();
}

static const char *kv_string(const rf_model *m, const char *key)
{
    const rf_kv *kv = rf_model_find_kv(m, key);
    cr_assert(kv && kv->value.type == RF_VALUE_STRING, "%s is a string", key);
    return kv->value.as.str.data;
}

static uint64_t kv_u32(const rf_model *m, const char *key)
{
    const rf_kv *kv = rf_model_find_kv(m, key);
    cr_assert(kv && kv->value.type == RF_VALUE_U32, "%s is a u32", key);
    return kv->value.as.u;
}

static double kv_f32(const rf_model *m, const char *key)
{
    const rf_kv *kv = rf_model_find_kv(m, key);
    cr_assert(kv && kv->value.type == RF_VALUE_F32, "%s is an f32", key);
    return kv->value.as.f;
}

Test(gguf_write, synthesizes_qwen2_metadata_from_a_hf_model)
{
    rf_model *m = rf_model_new(RF_FORMAT_SAFETENSORS, NULL);
    rf_model_config *c = rf_model_config_mut(m);
    c->architecture = "Qwen2ForCausalLM";
    c->name = "Tiny";
    c->hidden_size = 32;
    c->n_layers = 1;
    c->n_heads = 2;
    c->n_kv_heads = 1;
    c->head_dim = 16;
    c->intermediate_size = 64;
    c->vocab_size = 5;
    c->context_length = 4096;
    c->rope_theta = 1e6;
    c->rope_type = RF_ROPE_NEOX;
    c->rms_norm_eps = 1e-6;
    c->tie_word_embeddings = 1;
    c->bos_token_id = 3;
    c->eos_token_id = 4;
    c->pad_token_id = 3;
    c->chat_template = "{{ messages }}";
    rf_tokenizer *t = rf_model_tokenizer_mut(m);
    static const char *tokens[] = {"a", "b", "ab", "<|endoftext|>"};
    static const char *merges[] = {"a b"};
    t->model = "bpe";
    t->n_tokens = 4;
    t->tokens = tokens;
    t->n_merges = 1;
    t->merges = merges;
    static uint16_t embd[5 * 32], q[32 * 32], norm[32];
    for (int i = 0; i < 5 * 32; i++)
        embd[i] = (uint16_t)i;
    add(m, "model.embed_tokens.weight", RF_DTYPE_BF16, 2, (uint64_t[]){5, 32}, embd, sizeof embd);
    add(m, "model.layers.0.self_attn.q_proj.weight", RF_DTYPE_BF16, 2, (uint64_t[]){32, 32}, q,
        sizeof q);
    add(m, "model.layers.0.input_layernorm.weight", RF_DTYPE_BF16, 1, (uint64_t[]){32}, norm,
        sizeof norm);
    add(m, "model.norm.weight", RF_DTYPE_BF16, 1, (uint64_t[]){32}, norm, sizeof norm);
    add(m, "lm_head.weight", RF_DTYPE_BF16, 2, (uint64_t[]){5, 32}, embd, sizeof embd);
    add(m, "custom.extra", RF_DTYPE_BF16, 1, (uint64_t[]){32}, norm, sizeof norm);
    const char *path = tmp_path("synth.gguf");
    rf_error err;
    cr_assert_eq(rf_gguf_write(m, path, NULL, &err), RF_OK, "%s", err.message);
    rf_model *g = rf_model_open(path, NULL, &err);
    cr_assert_not_null(g, "%s", err.message);

    const char *order[] = {
        "general.architecture",
        "general.type",
        "general.name",
        "qwen2.block_count",
        "qwen2.context_length",
        "qwen2.embedding_length",
        "qwen2.feed_forward_length",
        "qwen2.attention.head_count",
        "qwen2.attention.head_count_kv",
        "qwen2.rope.freq_base",
        "qwen2.attention.layer_norm_rms_epsilon",
        "general.file_type",
        "general.quantization_version",
        "tokenizer.ggml.model",
        "tokenizer.ggml.pre",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.add_bos_token",
        "tokenizer.chat_template",
    };
    cr_assert_eq(rf_model_n_kv(g), sizeof order / sizeof order[0]);
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        cr_assert_str_eq(rf_model_kv(g, i)->key, order[i]);
    cr_assert_str_eq(kv_string(g, "general.architecture"), "qwen2");
    cr_assert_str_eq(kv_string(g, "general.name"), "Tiny");
    cr_assert_eq(kv_u32(g, "qwen2.block_count"), 1);
    cr_assert_eq(kv_u32(g, "qwen2.context_length"), 4096);
    cr_assert_eq(kv_u32(g, "qwen2.embedding_length"), 32);
    cr_assert_eq(kv_u32(g, "qwen2.feed_forward_length"), 64);
    cr_assert_eq(kv_u32(g, "qwen2.attention.head_count"), 2);
    cr_assert_eq(kv_u32(g, "qwen2.attention.head_count_kv"), 1);
    cr_assert_eq(kv_f32(g, "qwen2.rope.freq_base"), 1e6);
    cr_assert_eq(kv_f32(g, "qwen2.attention.layer_norm_rms_epsilon"), (double)1e-6f);
    cr_assert_eq(kv_u32(g, "general.file_type"), 32, "all matrices BF16: MOSTLY_BF16");
    cr_assert_eq(kv_u32(g, "general.quantization_version"), 2);
    cr_assert_str_eq(kv_string(g, "tokenizer.ggml.model"), "gpt2", "bpe is gpt2 in GGUF");
    cr_assert_str_eq(kv_string(g, "tokenizer.ggml.pre"), "qwen2");
    const rf_value *toks = &rf_model_find_kv(g, "tokenizer.ggml.tokens")->value;
    cr_assert_eq(toks->as.arr.count, 5, "padded to the embedding rows");
    cr_assert_str_eq(toks->as.arr.items[2].as.str.data, "ab");
    cr_assert_str_eq(toks->as.arr.items[4].as.str.data, "[PAD4]");
    const rf_value *types = &rf_model_find_kv(g, "tokenizer.ggml.token_type")->value;
    cr_assert_eq(types->as.arr.elem_type, RF_VALUE_I32);
    cr_assert_eq(types->as.arr.items[0].as.i, RF_TOKEN_NORMAL);
    cr_assert_eq(types->as.arr.items[3].as.i, RF_TOKEN_CONTROL);
    cr_assert_eq(types->as.arr.items[4].as.i, RF_TOKEN_UNUSED);
    cr_assert_eq(kv_u32(g, "tokenizer.ggml.eos_token_id"), 4);
    cr_assert_eq(kv_u32(g, "tokenizer.ggml.padding_token_id"), 3);
    cr_assert_eq(kv_u32(g, "tokenizer.ggml.bos_token_id"), 3);
    cr_assert_eq(rf_model_find_kv(g, "tokenizer.ggml.add_bos_token")->value.type, RF_VALUE_BOOL);
    cr_assert_str_eq(kv_string(g, "tokenizer.chat_template"), "{{ messages }}");

    cr_assert_eq(rf_model_n_tensors(g), 5, "lm_head of a tied model is not written");
    cr_assert_null(rf_model_find_tensor(g, "output.weight"));
    const rf_tensor *e = rf_model_find_tensor(g, "token_embd.weight");
    cr_assert_not_null(e);
    cr_assert_eq(e->shape[0], 5);
    cr_assert_eq(e->shape[1], 32);
    cr_assert_eq(memcmp(e->data, embd, sizeof embd), 0, "bytes copied verbatim");
    cr_assert_not_null(rf_model_find_tensor(g, "blk.0.attn_q.weight"));
    cr_assert_not_null(rf_model_find_tensor(g, "blk.0.attn_norm.weight"));
    cr_assert_not_null(rf_model_find_tensor(g, "output_norm.weight"));
    cr_assert_not_null(rf_model_find_tensor(g, "custom.extra"), "unknown names are kept");

    const rf_model_config *back = rf_model_config_get(g);
    cr_assert_str_eq(back->architecture, "qwen2");
    cr_assert_eq(back->n_kv_heads, 1);
    cr_assert_eq(back->head_dim, 16);
    cr_assert_eq(back->vocab_size, 5);
    cr_assert_eq(back->tie_word_embeddings, 1);
    cr_assert_eq(back->rope_type, RF_ROPE_NEOX);
    cr_assert_eq(back->eos_token_id, 4);
    rf_model_free(g);

    /* a tokenizer larger than the embedding cannot be loaded by llama.cpp */
    t->n_tokens = 4;
    c->vocab_size = 3;
    rf_model *small = rf_model_new(RF_FORMAT_APR, NULL);
    *rf_model_config_mut(small) = *c;
    *rf_model_tokenizer_mut(small) = *t;
    add(small, "model.norm.weight", RF_DTYPE_BF16, 1, (uint64_t[]){32}, norm, sizeof norm);
    cr_assert_eq(rf_gguf_write(small, path, NULL, &err), RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "4 tokens but the embedding has 3 rows"), "%s", err.message);
    rf_model_free(small);
    rf_model_free(m);
    NO_LEAKS();
}

/* llama.cpp's CPU backend multiplies and adds F32 activations only by F32 norms and biases (a
 * BF16 norm loads, then aborts the first llama_decode), so vectors of SafeTensors/APR sources are
 * written as F32 like llama.cpp's converter writes them; matrices and GGUF sources are kept. */
Test(gguf_write, vectors_of_hf_sources_are_written_as_f32)
{
    rf_model *m = rf_model_new(RF_FORMAT_SAFETENSORS, NULL);
    rf_model_config *c = rf_model_config_mut(m);
    c->architecture = "Qwen2ForCausalLM";
    c->hidden_size = 4;
    c->n_layers = 1;
    /* 1.0, -1.5, the smallest BF16 subnormal, +Inf */
    static const uint8_t norm_bf16[] = {0x80, 0x3f, 0xc0, 0xbf, 0x01, 0x00, 0x80, 0x7f};
    /* 1.0, 2^-24 (the smallest F16 subnormal), -65504 */
    static const uint8_t bias_f16[] = {0x00, 0x3c, 0x01, 0x00, 0xff, 0xfb};
    static const uint8_t norm2d_bf16[] = {0x00, 0x40, 0x00, 0xc0, 0x80, 0x3e, 0x00, 0x00};
    static const float norm_f32[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    static uint16_t q[4 * 4];
    for (int i = 0; i < 16; i++)
        q[i] = (uint16_t)(0x3f00 + i);
    add(m, "model.layers.0.self_attn.q_proj.weight", RF_DTYPE_BF16, 2, (uint64_t[]){4, 4}, q,
        sizeof q);
    add(m, "model.layers.0.self_attn.q_proj.bias", RF_DTYPE_F16, 1, (uint64_t[]){3}, bias_f16,
        sizeof bias_f16);
    add(m, "model.layers.0.input_layernorm.weight", RF_DTYPE_BF16, 1, (uint64_t[]){4}, norm_bf16,
        sizeof norm_bf16);
    add(m, "model.layers.0.post_attention_layernorm.weight", RF_DTYPE_BF16, 2, (uint64_t[]){1, 4},
        norm2d_bf16, sizeof norm2d_bf16);
    add(m, "model.norm.weight", RF_DTYPE_F32, 1, (uint64_t[]){4}, norm_f32, sizeof norm_f32);
    const char *path = tmp_path("vectors.gguf");
    rf_error err;
    cr_assert_eq(rf_gguf_write(m, path, NULL, &err), RF_OK, "%s", err.message);
    rf_model *g = rf_model_open(path, NULL, &err);
    cr_assert_not_null(g, "%s", err.message);

    const rf_tensor *w = rf_model_find_tensor(g, "blk.0.attn_q.weight");
    cr_assert_eq(w->dtype, RF_DTYPE_BF16, "matrices keep their dtype");
    cr_assert_eq(memcmp(w->data, q, sizeof q), 0, "matrix bytes copied verbatim");
    cr_assert_eq(kv_u32(g, "general.file_type"), 32, "the matrices decide the file type");

    const rf_tensor *n = rf_model_find_tensor(g, "blk.0.attn_norm.weight");
    cr_assert_eq(n->dtype, RF_DTYPE_F32);
    cr_assert_eq(n->nbytes, 16);
    cr_assert_eq(n->shape[0], 4);
    for (int i = 0; i < 4; i++) {
        uint32_t want = (uint32_t)(norm_bf16[2 * i] | norm_bf16[2 * i + 1] << 8) << 16;
        uint32_t got;
        memcpy(&got, (const uint8_t *)n->data + 4 * i, 4);
        cr_assert_eq(got, want, "BF16 element %d widened exactly: 0x%08x, expected 0x%08x", i, got,
                     want);
    }
    const rf_tensor *b = rf_model_find_tensor(g, "blk.0.attn_q.bias");
    cr_assert_eq(b->dtype, RF_DTYPE_F32);
    const float want_bias[3] = {1.0f, 0x1p-24f, -65504.0f};
    cr_assert_eq(memcmp(b->data, want_bias, sizeof want_bias), 0, "F16 vector widened exactly");
    const rf_tensor *n2 = rf_model_find_tensor(g, "blk.0.ffn_norm.weight");
    cr_assert_eq(n2->dtype, RF_DTYPE_F32, "a *_norm.weight of rank 2 is widened too");
    cr_assert_eq(n2->ndim, 2);
    const float want_n2[4] = {2.0f, -2.0f, 0.25f, 0.0f};
    cr_assert_eq(memcmp(n2->data, want_n2, sizeof want_n2), 0);
    const rf_tensor *f = rf_model_find_tensor(g, "output_norm.weight");
    cr_assert_eq(f->dtype, RF_DTYPE_F32);
    cr_assert_eq(memcmp(f->data, norm_f32, sizeof norm_f32), 0, "F32 vectors copied verbatim");

    /* a GGUF source is written back as it is, BF16 vector included (byte-identical round trip) */
    const char *again = tmp_path("vectors-again.gguf");
    rf_model *h = rf_model_new(RF_FORMAT_GGUF, NULL);
    add(h, "output_norm.weight", RF_DTYPE_BF16, 1, (uint64_t[]){4}, norm_bf16, sizeof norm_bf16);
    cr_assert_eq(rf_gguf_write(h, again, NULL, &err), RF_OK, "%s", err.message);
    rf_model *h2 = rf_model_open(again, NULL, &err);
    cr_assert_not_null(h2, "%s", err.message);
    const rf_tensor *kept = rf_model_find_tensor(h2, "output_norm.weight");
    cr_assert_eq(kept->dtype, RF_DTYPE_BF16, "GGUF sources keep their dtypes");
    cr_assert_eq(memcmp(kept->data, norm_bf16, sizeof norm_bf16), 0);
    rf_model_free(h2);
    rf_model_free(h);
    rf_model_free(g);
    rf_model_free(m);
    NO_LEAKS();
}

/* Deterministic mutation smoke test: flipped bytes anywhere must give a clean error or a model
 * whose every tensor byte is readable (ASan checks the reads in make test-asan). */
Test(gguf_read, mutated_files_never_crash)
{
    buf b = {0};
    canonical_file(&b, true);
    uint64_t state = 0x9E3779B97F4A7C15ull;
    int accepted = 0;
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t *copy = malloc(b.n);
        memcpy(copy, b.p, b.n);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(state >> 33) % b.n;
            copy[at] ^= (uint8_t)(1u << ((state >> 20) & 7));
        }
        for (int lenient = 0; lenient < 2; lenient++) {
            rf_error err;
            rf_open_options opts = {.lenient = lenient};
            rf_model *m = rf_gguf_open_memory(copy, b.n, "mutant.gguf", &opts, &err);
            if (!m) {
                cr_assert(strstr(err.message, "mutant.gguf"), "%s", err.message);
                continue;
            }
            accepted++;
            unsigned sum = 0;
            for (size_t i = 0; i < rf_model_n_tensors(m); i++) {
                const rf_tensor *t = rf_model_tensor(m, i);
                for (uint64_t j = 0; t->data && j < t->nbytes; j++)
                    sum += t->data[j];
            }
            for (size_t i = 0; i < rf_model_n_kv(m); i++)
                sum += (unsigned)strlen(rf_model_kv(m, i)->key);
            (void)sum;
            rf_model_free(m);
        }
        free(copy);
    }
    cr_assert_gt(accepted, 0, "some mutants (flips inside values) are still valid files");
    free(b.p);
    NO_LEAKS();
}
