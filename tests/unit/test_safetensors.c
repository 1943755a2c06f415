/* SafeTensors reader and writer: every validation rule with its message, sub-byte types, unaligned
 * data, sharded checkpoints and their agreement checks, the writer's exact bytes and conventions,
 * round trips, and the bad-input catalogue in tests/data/bad/safetensors. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_internal.h"
#include "io.h"
#include "helpers/test_fs.h"
#include "rosetta/model.h"
#include "rosetta/safetensors.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* [u64 LE header length][header][data] in a malloc'd buffer. */
static uint8_t *st_bytes(const char *header, const void *data, size_t data_len, size_t *size)
{
    size_t n = strlen(header);
    uint8_t *b = malloc(8 + n + data_len + 1);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(b + 8, header, n);
    if (data_len)
        memcpy(b + 8 + n, data, data_len);
    *size = 8 + n + data_len;
    return b;
}

/* Buffers behind models opened from memory; the models point into them. */
static uint8_t *g_keep[64];
static int g_n_keep;

static void release_buffers(void)
{
    for (int i = 0; i < g_n_keep; i++)
        free(g_keep[i]);
    g_n_keep = 0;
}

/* Opens header+data from memory; returns the model or NULL with err filled. Free the model with
 * close_st (which also releases the buffers). */
static rf_model *open_st(const char *header, const void *data, size_t data_len, rf_error *err,
                         bool lenient)
{
    size_t size;
    uint8_t *b = st_bytes(header, data, data_len, &size);
    rf_open_options o = {.lenient = lenient};
    rf_model *m = rf_safetensors_open_memory(b, size, "t.safetensors", &o, err);
    if (m && g_n_keep < 64)
        g_keep[g_n_keep++] = b;
    else
        free(b);
    return m;
}

static void close_st(rf_model *m)
{
    rf_model_free(m);
    release_buffers();
}

/* The header must be rejected with a message containing want. */
static void expect_reject(const char *header, const void *data, size_t data_len, const char *want)
{
    rf_error err = {0};
    rf_model *m = open_st(header, data, data_len, &err, false);
    cr_assert_null(m, "accepted: %s", header);
    cr_assert(strstr(err.message, want) != NULL, "header %s\nmessage: %s\nwanted: %s", header,
              err.message, want);
    cr_assert(strstr(err.message, "t.safetensors") != NULL, "message names the file: %s",
              err.message);
}

static const uint8_t ZEROS[256];

static char *make_temp_dir(void)
{
    char *dir = strdup("/tmp/rosetta-st-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

static void remove_tree(const char *dir) { test_remove_tree(dir); }

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_st(const char *dir, const char *name, const char *header, const void *data,
                     size_t data_len)
{
    size_t size;
    uint8_t *b = st_bytes(header, data, data_len, &size);
    write_file(dir, name, b, size);
    free(b);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

/* ---- reading valid files ------------------------------------------------------------------ */

Test(safetensors_read, valid_file_tensors_and_metadata)
{
    /* b is listed first but its data comes second: key order must not matter */
    const char *h = "{\"b\":{\"dtype\":\"I16\",\"shape\":[3],\"data_offsets\":[8,14]},"
                    "\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\"},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    uint8_t data[14];
    for (int i = 0; i < 14; i++)
        data[i] = (uint8_t)(i + 1);
    rf_error err = {0};
    rf_model *m = open_st(h, data, sizeof data, &err, false);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_format(m), RF_FORMAT_SAFETENSORS);
    cr_assert_eq(rf_model_n_tensors(m), 2);
    const rf_tensor *a = rf_model_tensor(m, 0), *b = rf_model_tensor(m, 1);
    cr_assert_str_eq(a->name, "a", "tensors come in data order");
    cr_assert_str_eq(b->name, "b");
    cr_assert_eq(a->dtype, RF_DTYPE_F32);
    cr_assert_eq(b->dtype, RF_DTYPE_I16);
    cr_assert_eq(b->ndim, 1);
    cr_assert_eq(b->shape[0], 3);
    cr_assert_eq(a->nbytes, 8);
    cr_assert_eq(b->nbytes, 6);
    size_t hl = strlen(h);
    cr_assert_eq(a->file_offset, 8 + hl);
    cr_assert_eq(b->file_offset, 8 + hl + 8);
    cr_assert_eq(b->data[0], 9, "b's bytes start at data offset 8");
    cr_assert_eq(a->data[0], 1);
    const rf_kv *fmt = rf_model_find_kv(m, "format");
    cr_assert_not_null(fmt);
    cr_assert_eq(fmt->value.type, RF_VALUE_STRING);
    cr_assert_str_eq(fmt->value.as.str.data, "pt");
    cr_assert_str_eq(rf_model_find_kv(m, "note")->value.as.str.data, "x");
    cr_assert_eq(rf_model_n_warnings(m), 0);
    close_st(m);
}

Test(safetensors_read, scalars_empty_tensors_and_empty_file)
{
    const char *h = "{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
                    "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[8,8]},"
                    "\"z\":{\"dtype\":\"BF16\",\"shape\":[2,0],\"data_offsets\":[8,8]}}";
    rf_error err = {0};
    rf_model *m = open_st(h, ZEROS, 8, &err, false);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_tensors(m), 3);
    const rf_tensor *s = rf_model_find_tensor(m, "s");
    cr_assert_eq(s->ndim, 0);
    cr_assert_eq(s->nbytes, 8);
    cr_assert_eq(rf_model_find_tensor(m, "e")->nbytes, 0);
    cr_assert_eq(rf_model_find_tensor(m, "z")->shape[1], 0);
    close_st(m);
    m = open_st("{}", NULL, 0, &err, false);
    cr_assert_not_null(m, "an empty header is a valid file: %s", err.message);
    cr_assert_eq(rf_model_n_tensors(m), 0);
    close_st(m);
    m = open_st("{\"__metadata__\":null}", NULL, 0, &err, false);
    cr_assert_not_null(m, "null metadata is accepted like the reference reader: %s", err.message);
    close_st(m);
}

Test(safetensors_read, every_dtype_string_and_sub_byte_types)
{
    static const struct {
        const char *name;
        rf_dtype dtype;
        unsigned bits;
    } all[] = {
        {"BOOL", RF_DTYPE_BOOL, 8},
        {"F4", RF_DTYPE_F4, 4},
        {"F6_E2M3", RF_DTYPE_F6_E2M3, 6},
        {"F6_E3M2", RF_DTYPE_F6_E3M2, 6},
        {"U8", RF_DTYPE_U8, 8},
        {"I8", RF_DTYPE_I8, 8},
        {"F8_E5M2", RF_DTYPE_F8_E5M2, 8},
        {"F8_E4M3", RF_DTYPE_F8_E4M3, 8},
        {"F8_E8M0", RF_DTYPE_F8_E8M0, 8},
        {"F8_E4M3FNUZ", RF_DTYPE_F8_E4M3FNUZ, 8},
        {"F8_E5M2FNUZ", RF_DTYPE_F8_E5M2FNUZ, 8},
        {"I16", RF_DTYPE_I16, 16},
        {"U16", RF_DTYPE_U16, 16},
        {"F16", RF_DTYPE_F16, 16},
        {"BF16", RF_DTYPE_BF16, 16},
        {"I32", RF_DTYPE_I32, 32},
        {"U32", RF_DTYPE_U32, 32},
        {"F32", RF_DTYPE_F32, 32},
        {"C64", RF_DTYPE_C64, 64},
        {"F64", RF_DTYPE_F64, 64},
        {"I64", RF_DTYPE_I64, 64},
        {"U64", RF_DTYPE_U64, 64},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        /* 8 elements: a whole number of bytes for every width */
        unsigned bytes = all[i].bits; /* 8 elements x bits / 8 */
        char h[200];
        snprintf(h, sizeof h, "{\"t\":{\"dtype\":\"%s\",\"shape\":[2,4],\"data_offsets\":[0,%u]}}",
                 all[i].name, bytes);
        rf_error err = {0};
        rf_model *m = open_st(h, ZEROS, bytes, &err, false);
        cr_assert_not_null(m, "%s: %s", all[i].name, err.message);
        cr_assert_eq(rf_model_tensor(m, 0)->dtype, all[i].dtype, "%s", all[i].name);
        cr_assert_eq(rf_safetensors_dtype_rank(all[i].dtype), (int)i, "enum order of %s",
                     all[i].name);
        cr_assert_eq(rf_safetensors_dtype_bits(all[i].dtype), all[i].bits);
        close_st(m);
    }
    cr_assert_eq(rf_safetensors_dtype_rank(RF_DTYPE_Q4_K), -1);
    /* sub-byte sizes: F4 x 3 = 12 bits, F6 x 2 = 12 bits: not whole bytes */
    expect_reject("{\"t\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", ZEROS, 2,
                  "is 12 bits, not a whole number of bytes");
    expect_reject("{\"t\":{\"dtype\":\"F6_E3M2\",\"shape\":[2],\"data_offsets\":[0,2]}}", ZEROS, 2,
                  "not a whole number of bytes");
    /* F6 x 4 = 3 bytes, F4 x 6 = 3 bytes */
    rf_error err = {0};
    rf_model *m = open_st("{\"a\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[0,3]},"
                          "\"b\":{\"dtype\":\"F4\",\"shape\":[6],\"data_offsets\":[3,6]}}",
                          ZEROS, 6, &err, false);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_find_tensor(m, "a")->nbytes, 3);
    cr_assert_eq(rf_model_find_tensor(m, "b")->nbytes, 3);
    close_st(m);
}

Test(safetensors_read, unaligned_data_is_read_exactly)
{
    /* header of 61 bytes: data starts at offset 69, so the F32 values sit at odd addresses */
    const char *h = "{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                    "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}";
    float values[2] = {1.5f, -2.25f};
    uint8_t data[9] = {7};
    memcpy(data + 1, values, 8);
    rf_error err = {0};
    rf_model *m = open_st(h, data, sizeof data, &err, false);
    cr_assert_not_null(m, "%s", err.message);
    const rf_tensor *w = rf_model_find_tensor(m, "w");
    cr_assert_eq((8 + strlen(h) + 1) % 4 != 0, true, "the test needs misaligned data");
    float got[2];
    memcpy(got, w->data, sizeof got);
    cr_assert_eq(got[0], 1.5f);
    cr_assert_eq(got[1], -2.25f);
    close_st(m);
}

Test(safetensors_read, leading_whitespace_is_a_warning)
{
    rf_error err = {0};
    rf_model *m = open_st("  {\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}  ",
                          ZEROS, 1, &err, false);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_warnings(m), 1);
    cr_assert(strstr(rf_model_warning(m, 0), "whitespace") != NULL, "%s", rf_model_warning(m, 0));
    close_st(m);
}

/* ---- every rule, with its message --------------------------------------------------------- */

Test(safetensors_read, length_prefix_rules)
{
    rf_error err = {0};
    uint8_t tiny[5] = {0};
    cr_assert_null(rf_safetensors_open_memory(tiny, 5, "t.safetensors", NULL, &err));
    cr_assert(strstr(err.message, "file is 5 bytes, too small") != NULL, "%s", err.message);

    uint8_t big[16] = {0x01, 0xE1, 0xF5, 0x05, 0, 0, 0, 0, '{', '}'}; /* 100000001 */
    cr_assert_null(rf_safetensors_open_memory(big, 16, "t.safetensors", NULL, &err));
    cr_assert(strstr(err.message, "header length 100000001 (u64 at offset 0) exceeds the "
                                  "100000000-byte limit") != NULL,
              "%s", err.message);
    cr_assert_eq(err.status, RF_ERR_LIMIT);

    uint8_t huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'}; /* 2^63 */
    cr_assert_null(rf_safetensors_open_memory(huge, 16, "t.safetensors", NULL, &err));
    cr_assert(strstr(err.message, "header length 9223372036854775808") != NULL, "%s", err.message);

    uint8_t past[12] = {10, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    cr_assert_null(rf_safetensors_open_memory(past, 12, "t.safetensors", NULL, &err));
    cr_assert(strstr(err.message, "header length 10 (u64 at offset 0) runs past the end of the "
                                  "file: the header would end at offset 18 but the file is 12 "
                                  "bytes") != NULL,
              "%s", err.message);
    uint8_t max_len[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    cr_assert_null(rf_safetensors_open_memory(max_len, 8, "t.safetensors", NULL, &err));
    cr_assert(strstr(err.message, "exceeds") != NULL, "%s", err.message);
}

Test(safetensors_read, header_text_rules)
{
    expect_reject("{\"a\xff\":{}}", NULL, 0, "header is not valid UTF-8 at offset 11 (byte 0xff)");
    expect_reject("{\"a\xc0\x80\":{}}", NULL, 0, "not valid UTF-8 at offset 11"); /* overlong */
    expect_reject("{\"a\xed\xa0\x80\":{}}", NULL, 0, "not valid UTF-8");          /* surrogate */
    expect_reject("{\"a\":", NULL, 0, "invalid JSON at offset 13");
    expect_reject("{\"a\":{},}", NULL, 0, "invalid JSON at offset 16: expected a string key");
    expect_reject("{} x", NULL, 0, "unexpected data after the end of the JSON value");
    expect_reject("{\"a\":01}", NULL, 0, "leading zero");
    expect_reject("{\"a\":NaN}", NULL, 0, "key \"a\": NaN is not a finite number");
    expect_reject("{\"a\\u0001\tb\":1}", NULL, 0, "control character 0x09 inside a string");
    expect_reject("{\"\\ud800\":1}", NULL, 0, "surrogate");
    expect_reject("[1,2]", NULL, 0, "header at offset 8 is an array, expected a JSON object");
    expect_reject("\"x\"    ", NULL, 0, "is a string, expected a JSON object");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                  "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                  ZEROS, 2, "duplicate key \"a\" in the top-level object");
    expect_reject("{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", NULL, 0,
                  "duplicate key \"k\" in the object \"__metadata__\"");
    /* a padding of NULs is not JSON whitespace (serde rejects it too) */
    uint8_t nul_pad[12] = {4, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, 0};
    rf_error err = {0};
    cr_assert_null(rf_safetensors_open_memory(nul_pad, 12, "t.safetensors", NULL, &err));
    cr_assert(strstr(err.message, "invalid JSON at offset 10") != NULL, "%s", err.message);
}

Test(safetensors_read, schema_rules)
{
    expect_reject("{\"__metadata__\":{\"n\":1}}", NULL, 0,
                  "__metadata__ value of \"n\" is a number, expected a string");
    expect_reject("{\"__metadata__\":[\"x\"]}", NULL, 0, "__metadata__ is an array");
    expect_reject("{\"t\":[1]}", NULL, 0, "tensor \"t\": entry is an array, expected an object");
    expect_reject("{\"t\":{\"shape\":[1],\"data_offsets\":[0,1]}}", ZEROS, 1,
                  "tensor \"t\": missing \"dtype\"");
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", ZEROS, 1,
                  "tensor \"t\": missing \"shape\"");
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[1]}}", ZEROS, 1,
                  "tensor \"t\": missing \"data_offsets\"");
    expect_reject("{\"t\":{\"dtype\":8,\"shape\":[1],\"data_offsets\":[0,1]}}", ZEROS, 1,
                  "\"dtype\" is a number, expected a string");
    expect_reject("{\"t\":{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,1]}}", ZEROS, 1,
                  "tensor \"t\": unknown dtype \"Q4_K\"");
    expect_reject("{\"t\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", ZEROS, 4,
                  "unknown dtype \"f32\""); /* dtype strings are case-sensitive */
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", ZEROS, 1,
                  "shape[0] = -1 is negative");
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", ZEROS, 1,
                  "shape[0] = 1.5 is not an integer");
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]}}", ZEROS, 1,
                  "shape[0] is a string");
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[1e300],\"data_offsets\":[0,1]}}", ZEROS, 1,
                  "shape[0] = 1e300 is a floating-point number in JSON");
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":{},\"data_offsets\":[0,1]}}", ZEROS, 1,
                  "\"shape\" is an object");
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", ZEROS, 1,
                  "\"data_offsets\" is an array of the wrong length");
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,-1]}}", ZEROS, 1,
                  "data_offsets[1] = -1 is negative");
    rf_error err = {0};
    cr_assert_null(open_st("{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                           "\"data_offsets\":[0,1]}}",
                           ZEROS, 1, &err, false));
    cr_assert_eq(err.status, RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "9 dimensions") != NULL, "%s", err.message);
    /* unknown fields in an entry are ignored, as the reference reader does */
    rf_model *m = open_st("{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],"
                          "\"extra\":true}}",
                          ZEROS, 1, &err, false);
    cr_assert_not_null(m, "%s", err.message);
    close_st(m);
}

/* Numbers are read from their text as serde reads a usize (the differential test against the
 * reference found these): integral floats are refused, integers are exact up to 2^64 - 1. */
Test(safetensors_read, numbers_read_exactly_like_the_reference)
{
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}", ZEROS, 1,
                  "shape[0] = 1.0 is a floating-point number in JSON");
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[1e0],\"data_offsets\":[0,1]}}", ZEROS, 1,
                  "shape[0] = 1e0 is a floating-point number in JSON");
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1E0]}}", ZEROS, 1,
                  "data_offsets[1] = 1E0 is a floating-point number in JSON");
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[-0],\"data_offsets\":[0,0]}}", NULL, 0,
                  "shape[0] = -0 is a floating-point number in JSON");
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616,0],"
                  "\"data_offsets\":[0,0]}}",
                  NULL, 0, "shape[0] = 18446744073709551616 does not fit in 64 bits");
    /* Above 2^53 a double is inexact: 2^53 + 1 must come back as itself, not as 2^53. */
    rf_error err = {0};
    rf_model *m = open_st("{\"t\":{\"dtype\":\"F32\",\"shape\":[9007199254740993,0],"
                          "\"data_offsets\":[0,0]},\"u\":{\"dtype\":\"U8\","
                          "\"shape\":[0,18446744073709551615],\"data_offsets\":[0,0]}}",
                          NULL, 0, &err, false);
    cr_assert_not_null(m, "%s", err.message);
    const rf_tensor *t = rf_model_find_tensor(m, "t");
    const rf_tensor *u = rf_model_find_tensor(m, "u");
    cr_assert(t && u);
    cr_assert_eq(t->shape[0], 9007199254740993ULL);
    cr_assert_eq(u->shape[1], UINT64_MAX);
    close_st(m);
    /* The product overflows before the zero is reached: the reference's ValidationOverflow. */
    expect_reject("{\"t\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,0],"
                  "\"data_offsets\":[0,0]}}",
                  NULL, 0, "element count of shape [4294967296,4294967296,0] overflows 64 bits");
}

/* serde_json refuses a 128th level of nesting (even inside a field it ignores); a NUL escape
 * would be cut off by the C string a name or metadata value becomes. */
Test(safetensors_read, nesting_limit_and_nul_escapes)
{
    for (int levels = 126; levels <= 128; levels++) {
        int inner = levels - 2; /* the header object and the tensor entry are two levels */
        char text[1024];
        int n = snprintf(text, sizeof text,
                         "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":");
        for (int i = 0; i < inner; i++)
            text[n++] = '[';
        for (int i = 0; i < inner; i++)
            text[n++] = ']';
        snprintf(text + n, sizeof text - (size_t)n, "}}");
        rf_error err = {0};
        rf_model *m = open_st(text, ZEROS, 1, &err, false);
        if (levels <= 127) {
            cr_assert_not_null(m, "%d levels: %s", levels, err.message);
            close_st(m);
        } else {
            cr_assert_null(m, "%d levels accepted", levels);
            cr_assert(strstr(err.message, "nesting deeper than 127 levels") != NULL, "%s",
                      err.message);
        }
    }
    expect_reject("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", ZEROS,
                  1, "invalid JSON at offset 11: \\u0000 (NUL) inside a string");
    expect_reject("{\"__metadata__\":{\"k\":\"v\\u0000\"}}", NULL, 0,
                  "\\u0000 (NUL) inside a string");
}

Test(safetensors_read, offset_rules)
{
    const char *u8 = "{\"dtype\":\"U8\",\"shape\":[4]";
    char h[512];
    snprintf(h, sizeof h, "{\"a\":%s,\"data_offsets\":[0,4]},\"b\":%s,\"data_offsets\":[6,10]}}",
             u8, u8);
    expect_reject(h, ZEROS, 10, "gap in the data: tensor \"b\" starts at data offset 6");
    snprintf(h, sizeof h, "{\"a\":%s,\"data_offsets\":[0,4]},\"b\":%s,\"data_offsets\":[2,6]}}", u8,
             u8);
    expect_reject(h, ZEROS, 6, "overlap: tensor \"b\" starts at data offset 2");
    snprintf(h, sizeof h, "{\"a\":%s,\"data_offsets\":[2,6]}}", u8);
    expect_reject(h, ZEROS, 6,
                  "gap at the start of the data: the first tensor \"a\" starts at data offset 2");
    snprintf(h, sizeof h, "{\"a\":%s,\"data_offsets\":[4,0]}}", u8);
    expect_reject(h, ZEROS, 4, "data_offsets [4, 0] end before they begin");
    snprintf(h, sizeof h, "{\"a\":%s,\"data_offsets\":[0,3]}}", u8);
    expect_reject(h, ZEROS, 3, "span 3 bytes but U8 shape [4] needs 4: size does not match");
    snprintf(h, sizeof h, "{\"a\":%s,\"data_offsets\":[0,4]}}", u8);
    expect_reject(h, ZEROS, 2, "reach past the end of the data");
    expect_reject(h, ZEROS, 7, "3 trailing bytes after the last tensor");
    expect_reject("{}", ZEROS, 1, "1 trailing bytes after the last tensor");
    /* element count: 2^32 x 2^32 overflows; 2^62 F32 elements overflow in bits */
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],"
                  "\"data_offsets\":[0,0]}}",
                  NULL, 0, "element count of shape [4294967296,4294967296] overflows 64 bits");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[4194304,4194304,4194304],"
                  "\"data_offsets\":[0,0]}}",
                  NULL, 0, "overflows 64 bits");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576,1048576],"
                  "\"data_offsets\":[0,4]}}",
                  ZEROS, 4, "bit size of F32 shape");
    /* a zero dimension makes the product 0 even with huge others */
    rf_error err = {0};
    rf_model *m = open_st("{\"a\":{\"dtype\":\"U8\",\"shape\":[0,4294967296],"
                          "\"data_offsets\":[0,0]}}",
                          NULL, 0, &err, false);
    cr_assert_not_null(m, "%s", err.message);
    close_st(m);
}

Test(safetensors_read, offsets_name_the_file_offset)
{
    /* header "{...}" of known length: the message gives the absolute offset of the gap */
    const char *h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                    "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}";
    char want[64];
    snprintf(want, sizeof want, "(file offset %zu)", 8 + strlen(h) + 2);
    expect_reject(h, ZEROS, 3, want);
}

Test(safetensors_read, lenient_mode_reports_and_keeps_going)
{
    const char *h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                    "\"b\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[2,4]},"
                    "\"c\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[4,6]},"
                    "\"d\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]}}";
    rf_error err = {0};
    rf_model *m = open_st(h, ZEROS, 12, &err, true);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_not_null(rf_model_find_tensor(m, "a"));
    cr_assert_null(rf_model_find_tensor(m, "b"), "unknown dtype left out");
    cr_assert_null(rf_model_find_tensor(m, "c"), "wrong size left out");
    cr_assert_not_null(rf_model_find_tensor(m, "d"), "a tensor after a gap is still readable");
    cr_assert_eq(rf_model_n_warnings(m), 4, "dtype, size, gap, trailing bytes");
    close_st(m);
}

/* ---- directories and shards --------------------------------------------------------------- */

static const char *SHARD_A = "{\"__metadata__\":{\"format\":\"pt\"},"
                             "\"w1\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                             "\"w2\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}";
static const char *SHARD_B = "{\"__metadata__\":{\"format\":\"pt\"},"
                             "\"w3\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}";

static void write_index(const char *dir, const char *json)
{
    write_file(dir, "model.safetensors.index.json", json, strlen(json));
}

static void expect_dir_reject(const char *dir, const char *want)
{
    rf_error err = {0};
    rf_model *m = rf_model_open(dir, NULL, &err);
    cr_assert_null(m, "accepted %s", dir);
    cr_assert(strstr(err.message, want) != NULL, "message: %s\nwanted: %s", err.message, want);
}

Test(safetensors_shards, index_loads_every_shard_once)
{
    char *dir = make_temp_dir();
    const uint8_t a[4] = {1, 2, 3, 4}, b[3] = {5, 6, 7};
    write_st(dir, "model-00001-of-00002.safetensors", SHARD_A, a, 4);
    write_st(dir, "model-00002-of-00002.safetensors", SHARD_B, b, 3);
    write_index(dir, "{\"metadata\":{\"total_size\":7},\"weight_map\":{"
                     "\"w3\":\"model-00002-of-00002.safetensors\","
                     "\"w1\":\"model-00001-of-00002.safetensors\","
                     "\"w2\":\"model-00001-of-00002.safetensors\"}}");
    rf_error err = {0};
    rf_model *m = rf_model_open(dir, NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_tensors(m), 3);
    cr_assert_eq(rf_model_n_files(m), 2, "each shard mapped once");
    cr_assert_eq(rf_model_find_tensor(m, "w1")->source, 0);
    cr_assert_eq(rf_model_find_tensor(m, "w3")->source, 1);
    cr_assert_eq(rf_model_find_tensor(m, "w3")->data[2], 7);
    cr_assert_eq(rf_model_n_warnings(m), 0);
    cr_assert_str_eq(rf_model_find_kv(m, "format")->value.as.str.data, "pt");
    rf_model_free(m);
    /* the index file itself opens the same checkpoint */
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    m = rf_model_open(path, NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_tensors(m), 3);
    rf_model_free(m);
    /* total_size is informational: a mismatch is a warning */
    write_index(dir, "{\"metadata\":{\"total_size\":99},\"weight_map\":{"
                     "\"w3\":\"model-00002-of-00002.safetensors\","
                     "\"w1\":\"model-00001-of-00002.safetensors\","
                     "\"w2\":\"model-00001-of-00002.safetensors\"}}");
    m = rf_model_open(dir, NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_warnings(m), 1);
    cr_assert(strstr(rf_model_warning(m, 0), "total_size is 99 but the tensors hold 7") != NULL,
              "%s", rf_model_warning(m, 0));
    rf_model_free(m);
    remove_tree(dir);
    free(dir);
}

Test(safetensors_shards, index_and_shards_must_agree)
{
    char *dir = make_temp_dir();
    write_st(dir, "a.safetensors", SHARD_A, ZEROS, 4);
    write_st(dir, "b.safetensors", SHARD_B, ZEROS, 3);
    write_index(dir, "{\"weight_map\":{\"w1\":\"a.safetensors\",\"w2\":\"a.safetensors\","
                     "\"w3\":\"b.safetensors\",\"w4\":\"b.safetensors\"}}");
    expect_dir_reject(dir, "weight_map lists tensor \"w4\" in shard \"b.safetensors\" but that "
                           "shard does not hold it (missing tensor");
    write_index(dir, "{\"weight_map\":{\"w1\":\"a.safetensors\",\"w3\":\"b.safetensors\"}}");
    expect_dir_reject(dir, "shard \"a.safetensors\" holds tensor \"w2\" which the weight_map does "
                           "not list (extra tensor)");
    write_index(dir, "{\"weight_map\":{\"w1\":\"a.safetensors\",\"w2\":\"a.safetensors\","
                     "\"w3\":\"a.safetensors\"}}");
    /* b is never opened: w3 is missing from a */
    expect_dir_reject(dir, "weight_map lists tensor \"w3\" in shard \"a.safetensors\" but");
    write_index(dir, "{\"weight_map\":{\"w1\":\"a.safetensors\",\"w2\":\"b.safetensors\","
                     "\"w3\":\"b.safetensors\"}}");
    expect_dir_reject(dir, "tensor \"w2\" is in shard \"a.safetensors\" but the weight_map puts "
                           "it in \"b.safetensors\"");
    write_st(dir, "c.safetensors", SHARD_B, ZEROS, 3);
    write_index(dir, "{\"weight_map\":{\"w1\":\"a.safetensors\",\"w2\":\"a.safetensors\","
                     "\"w3\":\"b.safetensors\",\"x\":\"c.safetensors\"}}");
    expect_dir_reject(dir, "tensor \"w3\" is also in"); /* duplicate across shards */
    write_index(dir, "{\"weight_map\":{\"w1\":\"../a.safetensors\"}}");
    expect_dir_reject(dir, "names \"../a.safetensors\": expected a plain file name");
    write_index(dir, "{\"weight_map\":{\"w1\":\"/etc/passwd\"}}");
    expect_dir_reject(dir, "expected a plain file name");
    write_index(dir, "{\"weight_map\":{\"w1\":\"missing.safetensors\"}}");
    expect_dir_reject(dir, "missing.safetensors");
    write_index(dir, "{\"weight_map\":{}}");
    expect_dir_reject(dir, "\"weight_map\" is empty");
    write_index(dir, "{\"weight_map\":{\"w1\":3}}");
    expect_dir_reject(dir, "weight_map[\"w1\"] is a number");
    write_index(dir, "{\"weight_map\":{\"w1\":\"a.safetensors\",\"w1\":\"a.safetensors\"}}");
    expect_dir_reject(dir, "duplicate key \"w1\"");
    remove_tree(dir);
    free(dir);
}

Test(safetensors_shards, directory_without_index)
{
    char *dir = make_temp_dir();
    write_st(dir, "b.safetensors", SHARD_B, ZEROS, 3);
    write_st(dir, "a.safetensors", SHARD_A, ZEROS, 4);
    rf_error err = {0};
    rf_model *m = rf_model_open(dir, NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_tensors(m), 3);
    cr_assert_str_eq(rf_model_tensor(m, 0)->name, "w1", "files in name order");
    cr_assert_eq(rf_model_find_tensor(m, "w3")->source, 1);
    rf_model_free(m);
    write_st(dir, "c.safetensors", SHARD_B, ZEROS, 3);
    expect_dir_reject(dir, "tensor \"w3\" is also in");
    /* model.safetensors, when present, is the checkpoint */
    write_st(dir, "model.safetensors", SHARD_B, ZEROS, 3);
    m = rf_model_open(dir, NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_tensors(m), 1);
    rf_model_free(m);
    remove_tree(dir);
    free(dir);
}

/* ---- writer ------------------------------------------------------------------------------- */

static rf_model *new_model(rf_format format)
{
    rf_model *m = rf_model_new(format, NULL);
    cr_assert_not_null(m);
    return m;
}

static void add(rf_model *m, const char *name, rf_dtype dtype, int ndim, const uint64_t *shape,
                const void *data, uint64_t nbytes)
{
    rf_tensor t = {.name = name, .dtype = dtype, .ndim = ndim, .data = data, .nbytes = nbytes};
    if (ndim > 0)
        memcpy(t.shape, shape, (size_t)ndim * sizeof *shape);
    rf_error err = {0};
    cr_assert_eq(rf_model_add_tensor(m, &t, &err), RF_OK, "%s", err.message);
}

Test(safetensors_write, exact_bytes_of_a_small_file)
{
    /* The reference writer's own test vectors: attn.0, F32 [1,2,3], values 0..5 has a 64-byte
     * header that needs no padding; attn0 with shape [1,1,2,3] has 65 bytes, padded with 7
     * spaces to 72. */
    float values[6] = {0, 1, 2, 3, 4, 5};
    char *dir = make_temp_dir();
    char path[1024];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    rf_error err = {0};
    size_t len;
    uint8_t *got;
    static const struct {
        const char *name;
        int ndim;
        uint64_t shape[4];
        const char *header;
    } vectors[] = {
        {"attn.0",
         3,
         {1, 2, 3},
         "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}"},
        {"attn0",
         4,
         {1, 1, 2, 3},
         "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       "},
    };
    for (int v = 0; v < 2; v++) {
        rf_model *m = new_model(RF_FORMAT_SAFETENSORS);
        add(m, vectors[v].name, RF_DTYPE_F32, vectors[v].ndim, vectors[v].shape, values, 24);
        cr_assert_eq(rf_safetensors_write(m, path, NULL, &err), RF_OK, "%s", err.message);
        rf_model_free(m);
        got = read_all(path, &len);
        size_t hl = strlen(vectors[v].header);
        cr_assert_eq(hl, v == 0 ? 64 : 72);
        cr_assert_eq(len, 8 + hl + 24);
        cr_assert_eq(rf_load_le64(got), hl);
        cr_assert(memcmp(got + 8, vectors[v].header, hl) == 0, "header: %.*s", (int)hl,
                  (const char *)got + 8);
        cr_assert(memcmp(got + 8 + hl, values, 24) == 0);
        free(got);
    }
    rf_model *m;
    /* an empty model is "{}" padded to 8: the reference's empty-file vector */
    m = new_model(RF_FORMAT_SAFETENSORS);
    cr_assert_eq(rf_safetensors_write(m, path, NULL, &err), RF_OK, "%s", err.message);
    got = read_all(path, &len);
    cr_assert_eq(len, 16);
    cr_assert(memcmp(got, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
    free(got);
    rf_model_free(m);
    remove_tree(dir);
    free(dir);
}

Test(safetensors_write, order_metadata_padding_and_provenance)
{
    uint8_t data[64];
    for (int i = 0; i < 64; i++)
        data[i] = (uint8_t)i;
    rf_model *m = new_model(RF_FORMAT_SAFETENSORS);
    add(m, "b", RF_DTYPE_U8, 1, (uint64_t[]){3}, data, 3);
    add(m, "a", RF_DTYPE_BF16, 1, (uint64_t[]){2}, data + 3, 4);
    add(m, "c", RF_DTYPE_BF16, 1, (uint64_t[]){1}, data + 7, 2);
    add(m, "d", RF_DTYPE_F16, 1, (uint64_t[]){1}, data + 9, 2);
    add(m, "e", RF_DTYPE_I64, 0, NULL, data + 11, 8);
    add(m, "f", RF_DTYPE_BOOL, 1, (uint64_t[]){0}, NULL, 0);
    rf_value v = {.type = RF_VALUE_STRING, .as.str = {"pt", 2}};
    rf_model_add_kv(m, "format", &v, NULL);
    rf_value w = {.type = RF_VALUE_STRING, .as.str = {"q\"\n", 3}};
    rf_model_add_kv(m, "aa", &w, NULL);
    rf_value j = {.type = RF_VALUE_JSON, .as.str = {"{}", 2}};
    rf_model_add_kv(m, "hf.config.json", &j, NULL); /* not a __metadata__ string */
    char *dir = make_temp_dir();
    char path[1024];
    snprintf(path, sizeof path, "%s/o.safetensors", dir);
    rf_safetensors_write_options o = {.provenance = "{\"source\":\"test\"}"};
    rf_error err = {0};
    cr_assert_eq(rf_safetensors_write(m, path, &o, &err), RF_OK, "%s", err.message);
    size_t len;
    uint8_t *got = read_all(path, &len);
    const char *want = "{\"__metadata__\":{\"aa\":\"q\\\"\\n\",\"format\":\"pt\","
                       "\"rosetta.provenance\":\"{\\\"source\\\":\\\"test\\\"}\"},"
                       "\"e\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
                       "\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                       "\"c\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[12,14]},"
                       "\"d\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[14,16]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[16,19]},"
                       "\"f\":{\"dtype\":\"BOOL\",\"shape\":[0],\"data_offsets\":[19,19]}}";
    uint64_t n = rf_load_le64(got);
    cr_assert_eq(n % 8, 0, "header padded to a multiple of 8");
    cr_assert_eq(n, (strlen(want) + 7) / 8 * 8);
    cr_assert(memcmp(got + 8, want, strlen(want)) == 0, "got %.*s", (int)n, (const char *)got + 8);
    for (size_t i = strlen(want); i < n; i++)
        cr_assert_eq(got[8 + i], ' ');
    cr_assert_eq(len, 8 + n + 19);
    cr_assert(memcmp(got + 8 + n, data + 11, 8) == 0, "I64 first");
    cr_assert(memcmp(got + 8 + n + 16, data, 3) == 0, "U8 after the 16-bit types");
    /* same model, same bytes */
    char path2[1024];
    snprintf(path2, sizeof path2, "%s/o2.safetensors", dir);
    cr_assert_eq(rf_safetensors_write(m, path2, &o, &err), RF_OK, "%s", err.message);
    size_t len2;
    uint8_t *again = read_all(path2, &len2);
    cr_assert(len == len2 && memcmp(got, again, len) == 0, "deterministic");
    free(again);
    free(got);
    rf_model_free(m);
    /* provenance added to a source without "format" brings "format":"pt" along */
    rf_model *plain = new_model(RF_FORMAT_SAFETENSORS);
    add(plain, "x", RF_DTYPE_U8, 1, (uint64_t[]){1}, data, 1);
    cr_assert_eq(rf_safetensors_write(plain, path, &o, &err), RF_OK, "%s", err.message);
    got = read_all(path, &len);
    cr_assert(memcmp(got + 8, "{\"__metadata__\":{\"format\":\"pt\",\"rosetta.provenance\":", 52) ==
                  0,
              "%s", (const char *)got + 8);
    free(got);
    cr_assert_eq(rf_safetensors_write(plain, path, NULL, &err), RF_OK, "%s", err.message);
    got = read_all(path, &len);
    cr_assert(memcmp(got + 8, "{\"x\":", 5) == 0, "no metadata stays no metadata");
    free(got);
    rf_model_free(plain);
    /* a model from another format gets {"format":"pt"} only */
    m = new_model(RF_FORMAT_APR);
    add(m, "x", RF_DTYPE_U8, 1, (uint64_t[]){1}, data, 1);
    rf_value other = {.type = RF_VALUE_STRING, .as.str = {"qwen2", 5}};
    rf_model_add_kv(m, "general.architecture", &other, NULL);
    cr_assert_eq(rf_safetensors_write(m, path, NULL, &err), RF_OK, "%s", err.message);
    got = read_all(path, &len);
    cr_assert(memcmp(got + 8, "{\"__metadata__\":{\"format\":\"pt\"},\"x\":", 36) == 0, "%s",
              (const char *)got + 8);
    free(got);
    rf_model_free(m);
    remove_tree(dir);
    free(dir);
}

Test(safetensors_write, round_trip_is_byte_identical)
{
    /* a file in canonical order, built by hand, comes back unchanged */
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]},"
                    "\"m\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[22,24]}}";
    char padded[512];
    snprintf(padded, sizeof padded, "%s", h);
    size_t hl = strlen(padded);
    while ((8 + hl) % 8)
        padded[hl++] = ' ';
    padded[hl] = 0;
    uint8_t data[24];
    for (int i = 0; i < 24; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    char *dir = make_temp_dir();
    write_st(dir, "in.safetensors", padded, data, 24);
    char in[1024], out[1024];
    snprintf(in, sizeof in, "%s/in.safetensors", dir);
    snprintf(out, sizeof out, "%s/out.safetensors", dir);
    rf_error err = {0};
    rf_model *m = rf_model_open(in, NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_safetensors_write(m, out, NULL, &err), RF_OK, "%s", err.message);
    rf_model_free(m);
    size_t la, lb;
    uint8_t *a = read_all(in, &la), *b = read_all(out, &lb);
    cr_assert(la == lb && memcmp(a, b, la) == 0, "round trip changed the bytes");
    free(a);
    free(b);
    remove_tree(dir);
    free(dir);
}

Test(safetensors_write, refuses_what_it_cannot_write)
{
    uint8_t data[256] = {0};
    char *dir = make_temp_dir();
    char path[1024];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    rf_error err = {0};
    rf_model *m = new_model(RF_FORMAT_GGUF);
    add(m, "q", RF_DTYPE_Q4_K, 1, (uint64_t[]){256}, data, 144);
    cr_assert_eq(rf_safetensors_write(m, path, NULL, &err), RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "tensor \"q\" is Q4_K, which SafeTensors cannot hold") != NULL,
              "%s", err.message);
    rf_model_free(m);
    m = new_model(RF_FORMAT_SAFETENSORS);
    add(m, "w", RF_DTYPE_F32, 1, (uint64_t[]){4}, data, 12);
    cr_assert_eq(rf_safetensors_write(m, path, NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "holds 12 bytes but its F32 shape needs 16") != NULL, "%s",
              err.message);
    rf_safetensors_write_options o = {.max_shard_size = 100};
    cr_assert_eq(rf_safetensors_write(m, path, &o, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "sharded output needs a directory") != NULL, "%s", err.message);
    rf_model_free(m);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "nothing written on failure");
    remove_tree(dir);
    free(dir);
}

Test(safetensors_write, tied_heads_and_gguf_names)
{
    uint8_t data[64] = {0};
    rf_model *m = new_model(RF_FORMAT_GGUF);
    add(m, "token_embd.weight", RF_DTYPE_F16, 2, (uint64_t[]){4, 2}, data, 16);
    add(m, "output.weight", RF_DTYPE_F16, 2, (uint64_t[]){4, 2}, data, 16);
    add(m, "blk.0.attn_q.weight", RF_DTYPE_F16, 2, (uint64_t[]){2, 2}, data, 8);
    add(m, "custom.thing", RF_DTYPE_F32, 1, (uint64_t[]){1}, data, 4);
    rf_model_config_mut(m)->tie_word_embeddings = 1;
    char *dir = make_temp_dir();
    char path[1024];
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    rf_error err = {0};
    cr_assert_eq(rf_safetensors_write(m, path, NULL, &err), RF_OK, "%s", err.message);
    rf_model *back = rf_model_open(path, NULL, &err);
    cr_assert_not_null(back, "%s", err.message);
    cr_assert_eq(rf_model_n_tensors(back), 3, "no lm_head in a tied checkpoint");
    cr_assert_not_null(rf_model_find_tensor(back, "model.embed_tokens.weight"));
    cr_assert_not_null(rf_model_find_tensor(back, "model.layers.0.self_attn.q_proj.weight"));
    cr_assert_not_null(rf_model_find_tensor(back, "custom.thing"), "unknown names kept");
    cr_assert_null(rf_model_find_tensor(back, "lm_head.weight"));
    rf_model_free(back);
    rf_model_config_mut(m)->tie_word_embeddings = 0;
    cr_assert_eq(rf_safetensors_write(m, path, NULL, &err), RF_OK, "%s", err.message);
    back = rf_model_open(path, NULL, &err);
    cr_assert_not_null(rf_model_find_tensor(back, "lm_head.weight"), "untied keeps the head");
    rf_model_free(back);
    rf_model_free(m);
    remove_tree(dir);
    free(dir);
}

Test(safetensors_write, shards_and_index)
{
    uint8_t data[1000];
    for (int i = 0; i < 1000; i++)
        data[i] = (uint8_t)(i * 13);
    rf_model *m = new_model(RF_FORMAT_SAFETENSORS);
    add(m, "t0", RF_DTYPE_U8, 1, (uint64_t[]){300}, data, 300);
    add(m, "t1", RF_DTYPE_U8, 1, (uint64_t[]){300}, data + 300, 300);
    add(m, "t2", RF_DTYPE_U8, 1, (uint64_t[]){500}, data + 500, 500); /* larger than the limit */
    add(m, "t3", RF_DTYPE_U8, 1, (uint64_t[]){100}, data, 100);
    add(m, "t4", RF_DTYPE_U8, 1, (uint64_t[]){50}, data, 50);
    char *dir = make_temp_dir();
    char out[512];
    snprintf(out, sizeof out, "%s/ckpt", dir); /* created by the writer */
    rf_safetensors_write_options o = {.max_shard_size = 400};
    rf_error err = {0};
    cr_assert_eq(rf_safetensors_write(m, out, &o, &err), RF_OK, "%s", err.message);
    /* t0 | t1 | t2 | t3 t4 */
    const char *files[] = {"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                           "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
                           "model.safetensors.index.json"};
    char path[1100];
    struct stat st;
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", out, files[i]);
        cr_assert_eq(stat(path, &st), 0, "%s missing", files[i]);
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", out);
    size_t len;
    char *index = (char *)read_all(path, &len);
    const char *want = "{\n  \"metadata\": {\n    \"total_size\": 1250\n  },\n  \"weight_map\": {\n"
                       "    \"t0\": \"model-00001-of-00004.safetensors\",\n"
                       "    \"t1\": \"model-00002-of-00004.safetensors\",\n"
                       "    \"t2\": \"model-00003-of-00004.safetensors\",\n"
                       "    \"t3\": \"model-00004-of-00004.safetensors\",\n"
                       "    \"t4\": \"model-00004-of-00004.safetensors\"\n  }\n}\n";
    cr_assert_str_eq(index, want);
    free(index);
    rf_model *back = rf_model_open(out, NULL, &err);
    cr_assert_not_null(back, "%s", err.message);
    cr_assert_eq(rf_model_n_tensors(back), 5);
    cr_assert_eq(rf_model_n_files(back), 4);
    const rf_tensor *t2 = rf_model_find_tensor(back, "t2");
    cr_assert(memcmp(t2->data, data + 500, 500) == 0);
    cr_assert_eq(t2->source, 2);
    rf_model_free(back);
    /* no companions were asked for by a model without config or tokenizer */
    snprintf(path, sizeof path, "%s/config.json", out);
    cr_assert_neq(stat(path, &st), 0);
    /* everything fits: one model.safetensors, no index */
    char out2[512];
    snprintf(out2, sizeof out2, "%s/one", dir);
    o.max_shard_size = 1u << 20;
    cr_assert_eq(rf_safetensors_write(m, out2, &o, &err), RF_OK, "%s", err.message);
    snprintf(path, sizeof path, "%s/model.safetensors", out2);
    cr_assert_eq(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", out2);
    cr_assert_neq(stat(path, &st), 0);
    rf_model_free(m);
    remove_tree(dir);
    free(dir);
}

/* ---- the bad-input catalogue -------------------------------------------------------------- */

Test(safetensors_bad, catalogue_rejected_with_expected_messages)
{
    char base[1024];
    snprintf(base, sizeof base, "%s/tests/data/bad/safetensors", ROSETTA_ROOT);
    DIR *d = opendir(base);
    cr_assert_not_null(d, "%s missing", base);
    struct dirent *e;
    int cases = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 8 || strcmp(e->d_name + n - 7, ".expect") != 0)
            continue;
        char expect_path[2048], target[2048];
        snprintf(expect_path, sizeof expect_path, "%s/%s", base, e->d_name);
        snprintf(target, sizeof target, "%s/%.*s", base, (int)(n - 7), e->d_name);
        size_t len;
        char *want = (char *)read_all(expect_path, &len);
        while (len > 0 && (want[len - 1] == '\n' || want[len - 1] == '\r'))
            want[--len] = 0;
        cr_assert_gt(len, 0, "%s is empty", expect_path);
        rf_error err = {0};
        rf_model *m = rf_model_open(target, NULL, &err);
        cr_assert_null(m, "%s was accepted", target);
        cr_assert(strstr(err.message, want) != NULL, "%s\nmessage: %s\nwanted: %s", target,
                  err.message, want);
        /* diagnostic (lenient) opening must not crash either */
        rf_open_options lenient = {.lenient = true};
        rf_model_free(rf_model_open(target, &lenient, &err));
        free(want);
        cases++;
    }
    closedir(d);
    cr_assert_geq(cases, 14, "only %d cases", cases);
}
