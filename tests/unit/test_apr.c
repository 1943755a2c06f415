/* APR v2: aprender's golden vector (its APR v2 specification), every header field, reader leniency
 * and strict rejections, compression, row-padded K-quants, serde_json formatting, index order,
 * round trips, metadata synthesis, APR_Q4/APR_Q8 block math, and the bad-input catalogue. Files for
 * the reader are assembled here byte by byte (raw_apr), independently of Rosetta's writer. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lz4.h>
#include <zstd.h>

#include "helpers/test_leaks.h"
#include "apr_internal.h"
#include "common/apr_quant.h"
#include "model_internal.h"
#include "rosetta/apr.h"
#include "rosetta/quant.h"
#include "io.h"
#include "rosetta/model.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static char tmpdir[512];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/test-tmp", ROSETTA_BUILD);
    mkdir(tmpdir, 0755);
    snprintf(tmpdir, sizeof tmpdir, "%s/test-tmp/unit-apr-%d", ROSETTA_BUILD, (int)getpid());
    mkdir(tmpdir, 0755);
}

static const char *tmp(const char *name)
{
    static char paths[8][600];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 600, "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)size + 1);
    cr_assert_eq(fread(d, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return d;
}

static uint64_t a64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

/* One index entry of a hand-made file. offset is relative to data_offset. */
typedef struct raw_tensor {
    const char *name;
    uint8_t code;
    int ndim;
    uint64_t shape[9];
    uint64_t offset, size;
    const void *data; /* size bytes, may be NULL (zeros) */
} raw_tensor;

typedef struct raw_opts {
    const char *magic; /* default "APR\0" */
    uint8_t major;     /* default 2 */
    uint16_t flags;    /* taken as given */
    bool no_footer;
    bool bad_header_crc;
    bool bad_footer_crc;
    uint32_t tensor_count; /* 0: the number of entries */
} raw_opts;

/* Assembles an APR v2 file exactly by the format's layout (docs/formats/apr.md), without
 * Rosetta's writer. */
static uint8_t *raw_apr(const char *json, const raw_tensor *t, int n, raw_opts o, size_t *len)
{
    size_t jl = strlen(json);
    uint64_t index_bytes = 0, data_bytes = 0;
    for (int i = 0; i < n; i++) {
        index_bytes += 20 + strlen(t[i].name) + 8u * (uint64_t)t[i].ndim;
        if (a64(t[i].offset + t[i].size) > data_bytes)
            data_bytes = a64(t[i].offset + t[i].size);
    }
    uint64_t tio = 64 + a64(jl), dof = tio + a64(index_bytes);
    size_t total = (size_t)(dof + data_bytes + (o.no_footer ? 0 : 4));
    uint8_t *f = calloc(1, total);
    memcpy(f, o.magic ? o.magic : "APR\0", 4);
    f[4] = o.major ? o.major : 2;
    rf_store_le16(f + 6, o.flags);
    rf_store_le32(f + 8, o.tensor_count ? o.tensor_count : (uint32_t)n);
    rf_store_le64(f + 12, 64);
    rf_store_le32(f + 20, (uint32_t)jl);
    rf_store_le64(f + 24, tio);
    rf_store_le64(f + 32, dof);
    uint32_t crc = rf_crc32(rf_crc32(0, f, 40), f + 44, 20);
    rf_store_le32(f + 40, o.bad_header_crc ? crc ^ 1 : crc);
    memcpy(f + 64, json, jl);
    uint64_t p = tio;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(t[i].name);
        rf_store_le16(f + p, (uint16_t)nl);
        memcpy(f + p + 2, t[i].name, nl);
        p += 2 + nl;
        f[p++] = t[i].code;
        f[p++] = (uint8_t)t[i].ndim;
        for (int d = 0; d < t[i].ndim; d++, p += 8)
            rf_store_le64(f + p, t[i].shape[d]);
        rf_store_le64(f + p, t[i].offset);
        rf_store_le64(f + p + 8, t[i].size);
        p += 16;
        if (t[i].data)
            memcpy(f + dof + t[i].offset, t[i].data, (size_t)t[i].size);
    }
    if (!o.no_footer) {
        uint32_t fc = rf_crc32(0, f, total - 4);
        rf_store_le32(f + total - 4, o.bad_footer_crc ? fc ^ 0x100 : fc);
    }
    *len = total;
    return f;
}

/* Writes a raw file and opens it; returns the model or NULL with err filled. */
static rf_model *open_raw(const char *name, const char *json, const raw_tensor *t, int n,
                          raw_opts o, bool lenient, rf_error *err)
{
    size_t len;
    uint8_t *f = raw_apr(json, t, n, o, &len);
    write_file(tmp(name), f, len);
    free(f);
    rf_open_options opts = {.lenient = lenient};
    return rf_model_open(tmp(name), &opts, err);
}

static bool has_warning(const rf_model *m, const char *needle)
{
    for (size_t i = 0; i < rf_model_n_warnings(m); i++)
        if (strstr(rf_model_warning(m, i), needle))
            return true;
    return false;
}

static rf_value str_value(const char *s)
{
    rf_value v = {.type = RF_VALUE_STRING};
    v.as.str.data = s;
    v.as.str.len = strlen(s);
    return v;
}

static rf_value u64_value(uint64_t u)
{
    rf_value v = {.type = RF_VALUE_U64};
    v.as.u = u;
    return v;
}

static rf_value json_value(const char *s)
{
    rf_value v = {.type = RF_VALUE_JSON};
    v.as.str.data = s;
    v.as.str.len = strlen(s);
    return v;
}

/* ---- the golden vector (aprender's APR v2 specification) ---------------------------------- */

static const float GOLDEN_WEIGHTS[8] = {1, 2, 0.5f, -0.5f, 4, -2, 0.25f, 8};
static const float GOLDEN_BIAS[1] = {0.125f};
static const char GOLDEN_JSON[] =
    "{\"model_type\":\"linear_regression\",\"name\":\"golden-v2\",\"license\":null,"
    "\"data_source\":null,\"data_license\":null,\"version\":\"0.0.0-golden\","
    "\"created_at\":\"1700000000\",\"total_size\":0,\"param_count\":8}";

/* The 516 bytes of aprender's golden vector, row by row (rows not listed are zero). */
static const struct {
    unsigned offset;
    const char *hex;
} GOLDEN_ROWS[] = {
    {0x000, "41505200020000040200000040000000"},
    {0x010, "00000000bd0000000001000000000000"},
    {0x020, "8001000000000000028cc03b00000000"},
    {0x040, "7b226d6f64656c5f74797065223a226c"},
    {0x050, "696e6561725f72656772657373696f6e"},
    {0x060, "222c226e616d65223a22676f6c64656e"},
    {0x070, "2d7632222c226c6963656e7365223a6e"},
    {0x080, "756c6c2c22646174615f736f75726365"},
    {0x090, "223a6e756c6c2c22646174615f6c6963"},
    {0x0a0, "656e7365223a6e756c6c2c2276657273"},
    {0x0b0, "696f6e223a22302e302e302d676f6c64"},
    {0x0c0, "656e222c22637265617465645f617422"},
    {0x0d0, "3a2231373030303030303030222c2274"},
    {0x0e0, "6f74616c5f73697a65223a302c227061"},
    {0x0f0, "72616d5f636f756e74223a387d000000"},
    {0x100, "04006269617300010100000000000000"},
    {0x110, "00000000000000000400000000000000"},
    {0x120, "07007765696768747300010800000000"},
    {0x130, "00000040000000000000002000000000"},
    {0x180, "0000003e000000000000000000000000"},
    {0x1c0, "0000803f000000400000003f000000bf"},
    {0x1d0, "00008040000000c00000803e00000041"},
    {0x200, "353f0f55"},
};

static void golden_bytes(uint8_t out[516])
{
    memset(out, 0, 516);
    for (size_t r = 0; r < sizeof GOLDEN_ROWS / sizeof GOLDEN_ROWS[0]; r++) {
        const char *h = GOLDEN_ROWS[r].hex;
        size_t n = strlen(h) / 2;
        for (size_t i = 0; i < n; i++) {
            unsigned v;
            sscanf(h + 2 * i, "%2x", &v);
            out[GOLDEN_ROWS[r].offset + i] = (uint8_t)v;
        }
    }
}

static rf_model *golden_model(void)
{
    rf_error err;
    rf_model *m = rf_model_new(RF_FORMAT_APR, &err);
    cr_assert_not_null(m);
    /* insertion order differs from both the typed order and the index order on purpose */
    rf_value v;
    v = u64_value(8);
    rf_model_add_kv(m, "param_count", &v, &err);
    v = str_value("1700000000");
    rf_model_add_kv(m, "created_at", &v, &err);
    v = str_value("0.0.0-golden");
    rf_model_add_kv(m, "version", &v, &err);
    v = str_value("golden-v2");
    rf_model_add_kv(m, "name", &v, &err);
    v = str_value("linear_regression");
    rf_model_add_kv(m, "model_type", &v, &err);
    v = u64_value(0);
    rf_model_add_kv(m, "total_size", &v, &err);
    rf_tensor w = {.name = "weights",
                   .dtype = RF_DTYPE_F32,
                   .ndim = 1,
                   .shape = {8},
                   .data = (const uint8_t *)GOLDEN_WEIGHTS,
                   .nbytes = 32};
    rf_tensor b = {.name = "bias",
                   .dtype = RF_DTYPE_F32,
                   .ndim = 1,
                   .shape = {1},
                   .data = (const uint8_t *)GOLDEN_BIAS,
                   .nbytes = 4};
    cr_assert_eq(rf_model_add_tensor(m, &w, &err), RF_OK);
    cr_assert_eq(rf_model_add_tensor(m, &b, &err), RF_OK);
    return m;
}

static void sha256_of(const char *path, char out[65])
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_eq(fscanf(p, "%64s", out), 1);
    pclose(p);
}

TestSuite(apr, .init = make_tmpdir);

Test(apr, golden_vector_of_the_spec)
{
    rf_model *m = golden_model();
    rf_error err;
    const char *path = tmp("golden.apr");
    cr_assert_eq(rf_apr_write(m, path, NULL, &err), RF_OK, "%s", err.message);
    size_t n;
    uint8_t *got = read_file(path, &n);
    cr_assert_eq(n, 516, "golden file size: %zu", n);
    uint8_t want[516];
    golden_bytes(want);
    for (size_t i = 0; i < 516; i++)
        cr_assert_eq(got[i], want[i], "byte 0x%03zx: wrote %02x, spec has %02x", i, got[i],
                     want[i]);
    /* the three numbers the spec states, each checked on its own */
    cr_assert_eq(rf_load_le32(got + 40), 0x3BC08C02u);
    cr_assert_eq(rf_apr_header_crc(got), 0x3BC08C02u);
    cr_assert_eq(rf_load_le32(got + 512), 0x550F3F35u);
    cr_assert_eq(rf_crc32(0, got, 512), 0x550F3F35u);
    char sha[65];
    sha256_of(path, sha);
    cr_assert_str_eq(sha, "047642c8a09f5807466374928c28e370855ddb96f527d4445ee359a591594c2c");
    cr_assert_eq(memcmp(got + 64, GOLDEN_JSON, strlen(GOLDEN_JSON)), 0);
    cr_assert_eq(strlen(GOLDEN_JSON), 189);
    free(got);
    rf_model_free(m);
    NO_LEAKS();
}

Test(apr, golden_header_fields)
{
    uint8_t g[516];
    golden_bytes(g);
    rf_apr_header h;
    rf_error err;
    cr_assert_eq(rf_apr_header_decode(g, 516, &h, &err), RF_OK);
    cr_assert_eq(memcmp(h.magic, "APR\0", 4), 0);
    cr_assert_eq(h.version_major, 2);
    cr_assert_eq(h.version_minor, 0);
    cr_assert_eq(h.flags, RF_APR_FLAG_ROW_MAJOR);
    cr_assert_eq(h.tensor_count, 2);
    cr_assert_eq(h.metadata_offset, 64);
    cr_assert_eq(h.metadata_size, 189);
    cr_assert_eq(h.tensor_index_offset, 256);
    cr_assert_eq(h.data_offset, 384);
    cr_assert_eq(h.checksum, 0x3BC08C02u);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(h.reserved[i], 0);
    uint8_t again[64];
    rf_apr_header_encode(&h, again);
    cr_assert_eq(memcmp(again, g, 64), 0, "encode(decode(x)) == x");
    cr_assert_eq(rf_apr_header_decode(g, 63, &h, &err), RF_ERR_FORMAT);
    /* the reserved bytes are covered by the checksum */
    g[50] = 1;
    cr_assert_neq(rf_apr_header_crc(g), 0x3BC08C02u);
    NO_LEAKS();
}

Test(apr, golden_reads_back)
{
    uint8_t g[516];
    golden_bytes(g);
    write_file(tmp("golden-spec.apr"), g, sizeof g);
    rf_error err;
    rf_model *m = rf_model_open(tmp("golden-spec.apr"), NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_format(m), RF_FORMAT_APR);
    cr_assert_eq(rf_model_format_version(m), 200);
    cr_assert_eq(rf_model_n_warnings(m), 0, "%s", rf_model_warning(m, 0));
    cr_assert_eq(rf_model_n_tensors(m), 2);
    const rf_tensor *b = rf_model_tensor(m, 0), *w = rf_model_tensor(m, 1);
    cr_assert_str_eq(b->name, "bias");
    cr_assert_str_eq(w->name, "weights");
    cr_assert_eq(b->file_offset, 384);
    cr_assert_eq(w->file_offset, 448);
    cr_assert_eq(w->ndim, 1);
    cr_assert_eq(w->shape[0], 8);
    cr_assert_eq(w->nbytes, 32);
    cr_assert_eq(memcmp(w->data, GOLDEN_WEIGHTS, 32), 0);
    cr_assert_eq(memcmp(b->data, GOLDEN_BIAS, 4), 0);
    static const char *const order[] = {"model_type",  "name",         "license",
                                        "data_source", "data_license", "version",
                                        "created_at",  "total_size",   "param_count"};
    cr_assert_eq(rf_model_n_kv(m), 9);
    for (size_t i = 0; i < 9; i++)
        cr_assert_str_eq(rf_model_kv(m, i)->key, order[i]);
    const rf_kv *lic = rf_model_find_kv(m, "license");
    cr_assert_eq(lic->value.type, RF_VALUE_JSON);
    cr_assert_str_eq(lic->value.as.str.data, "null");
    cr_assert_eq(rf_model_find_kv(m, "param_count")->value.type, RF_VALUE_U64);
    cr_assert_str_eq(rf_model_config_get(m)->name, "golden-v2");
    rf_apr_checksums cs;
    cr_assert_eq(rf_apr_checksums_path(tmp("golden-spec.apr"), &cs, &err), RF_OK, "%s",
                 err.message);
    cr_assert(cs.header_valid && cs.footer_present && cs.footer_valid);
    cr_assert_eq(cs.footer_offset, 512);
    cr_assert_eq(cs.footer_computed, 0x550F3F35u);
    /* read -> write reproduces the file byte for byte */
    cr_assert_eq(rf_apr_write(m, tmp("golden-again.apr"), NULL, &err), RF_OK, "%s", err.message);
    size_t n;
    uint8_t *again = read_file(tmp("golden-again.apr"), &n);
    cr_assert_eq(n, 516);
    cr_assert_eq(memcmp(again, g, 516), 0);
    free(again);
    rf_model_free(m);
    NO_LEAKS();
}

/* ---- leniency ------------------------------------------------------------------------------- */

static const char SMALL_JSON[] = "{\"model_type\":\"t\",\"license\":null,\"data_source\":null,"
                                 "\"data_license\":null,\"total_size\":0,\"param_count\":4}";
static const float FOUR[4] = {1, 2, 3, 4};

static raw_tensor f32_tensor(const char *name, uint64_t offset)
{
    raw_tensor t = {.name = name,
                    .code = 0,
                    .ndim = 1,
                    .shape = {4},
                    .offset = offset,
                    .size = 16,
                    .data = FOUR};
    return t;
}

Test(apr, accepts_old_apr2_magic)
{
    raw_tensor t = f32_tensor("w", 0);
    rf_error err;
    rf_model *m = open_raw("apr2.apr", SMALL_JSON, &t, 1,
                           (raw_opts){.magic = "APR2", .flags = 0x0400}, false, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_format(m), RF_FORMAT_APR2_MAGIC);
    cr_assert(has_warning(m, "APR2"));
    cr_assert_eq(memcmp(rf_model_tensor(m, 0)->data, FOUR, 16), 0);
    rf_model_free(m);
    /* APR2-era code 2 is BF16 */
    uint16_t bf[4] = {0x3f80, 0x4000, 0x4040, 0x4080};
    raw_tensor b = {.name = "b", .code = 2, .ndim = 1, .shape = {4}, .size = 8, .data = bf};
    m = open_raw("apr2-bf16.apr", SMALL_JSON, &b, 1, (raw_opts){.magic = "APR2"}, false, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_tensor(m, 0)->dtype, RF_DTYPE_BF16);
    cr_assert(has_warning(m, "legacy BF16"));
    rf_model_free(m);
    /* the same code under the current magic is not BF16 */
    m = open_raw("apr0-code2.apr", SMALL_JSON, &b, 1, (raw_opts){.flags = 0x0400}, false, &err);
    cr_assert_null(m);
    cr_assert(strstr(err.message, "unknown dtype code 2"), "%s", err.message);
    NO_LEAKS();
}

Test(apr, accepts_missing_footer_and_row_major_flag)
{
    raw_tensor t = f32_tensor("w", 0);
    rf_error err;
    rf_model *m = open_raw("nofooter.apr", SMALL_JSON, &t, 1,
                           (raw_opts){.flags = 0x0400, .no_footer = true}, false, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert(has_warning(m, "no footer"));
    cr_assert(!has_warning(m, "row-major"));
    rf_model_free(m);
    rf_apr_checksums cs;
    cr_assert_eq(rf_apr_checksums_path(tmp("nofooter.apr"), &cs, &err), RF_OK, "%s", err.message);
    cr_assert(cs.header_valid && !cs.footer_present && !cs.footer_valid);
    m = open_raw("norowmajor.apr", SMALL_JSON, &t, 1, (raw_opts){.flags = 0}, false, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert(has_warning(m, "row-major flag 0x0400 absent"));
    rf_model_free(m);
    NO_LEAKS();
}

Test(apr, legacy_codes_8_and_9)
{
    uint8_t q4[18] = {0x00, 0x3c}; /* scale 1.0, nibbles 0 = -8 */
    uint8_t q8[8] = {0, 0, 0x80, 0x3f, 1, 2, 3, 4};
    raw_tensor t[2] = {
        {.name = "a", .code = 8, .ndim = 1, .shape = {4}, .offset = 0, .size = 18, .data = q4},
        {.name = "b", .code = 9, .ndim = 1, .shape = {4}, .offset = 64, .size = 8, .data = q8},
    };
    rf_error err;
    rf_model *m =
        open_raw("legacy.apr", SMALL_JSON, t, 2, (raw_opts){.flags = 0x0400}, false, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_tensor(m, 0)->dtype, RF_DTYPE_APR_Q4);
    cr_assert_eq(rf_model_tensor(m, 1)->dtype, RF_DTYPE_APR_Q8);
    cr_assert(has_warning(m, "legacy code 8"));
    cr_assert(has_warning(m, "legacy code 9"));
    /* writing uses the current codes 128 / 129 */
    cr_assert_eq(rf_apr_write(m, tmp("legacy-out.apr"), NULL, &err), RF_OK, "%s", err.message);
    size_t n;
    uint8_t *d = read_file(tmp("legacy-out.apr"), &n);
    uint64_t tio = rf_load_le64(d + 24);
    cr_assert_eq(d[tio + 3], 128);
    cr_assert_eq(d[tio + 2 + 1 + 2 + 8 + 16 + 1 + 2], 129);
    free(d);
    rf_model_free(m);
    NO_LEAKS();
}

Test(apr, alias_keys_and_gguf_names)
{
    const char *json = "{\"model_type\":\"x\",\"num_hidden_layers\":3,\"num_attention_heads\":4,"
                       "\"num_key_value_heads\":2,\"hidden_dim\":64,\"norm_eps\":1e-6,"
                       "\"context_length\":128,\"architecture\":\"llama\",\"rope_type\":0,"
                       "\"tokenizer.vocabulary\":[\"a\",\"b\"],\"tokenizer.merges\":[\"a b\"],"
                       "\"tokenizer.bos_token_id\":1,\"tokenizer.eos_token_id\":0,"
                       "\"tokenizer.model\":\"gpt2\",\"chat_template\":\"{{x}}\"}";
    raw_tensor t = f32_tensor("blk.0.attn_q.weight", 0);
    rf_error err;
    rf_model *m = open_raw("alias.apr", json, &t, 1, (raw_opts){.flags = 0x0400}, false, &err);
    cr_assert_not_null(m, "%s", err.message);
    const rf_model_config *c = rf_model_config_get(m);
    cr_assert_eq(c->n_layers, 3);
    cr_assert_eq(c->n_heads, 4);
    cr_assert_eq(c->n_kv_heads, 2);
    cr_assert_eq(c->hidden_size, 64);
    cr_assert_eq(c->context_length, 128);
    cr_assert_float_eq(c->rms_norm_eps, 1e-6, 1e-12);
    cr_assert_str_eq(c->architecture, "llama");
    cr_assert_eq(c->rope_type, RF_ROPE_NORM);
    cr_assert_eq(c->bos_token_id, 1);
    cr_assert_eq(c->eos_token_id, 0);
    cr_assert_str_eq(c->chat_template, "{{x}}");
    cr_assert(has_warning(m, "'num_hidden_layers', a realizar alias of 'num_layers'"));
    const rf_tokenizer *tok = rf_model_tokenizer(m);
    cr_assert_not_null(tok);
    cr_assert_eq(tok->n_tokens, 2);
    cr_assert_str_eq(tok->tokens[1], "b");
    cr_assert_eq(tok->n_merges, 1);
    cr_assert_str_eq(tok->merges[0], "a b");
    cr_assert_str_eq(tok->model, "gpt2");
    cr_assert_not_null(rf_model_find_tensor(m, "blk.0.attn_q.weight"));
    /* writing folds the aliases into the canonical keys: one spelling per field */
    char *json_out;
    size_t len;
    cr_assert_eq(rf_apr_metadata_json(m, NULL, NULL, &json_out, &len, &err), RF_OK, "%s",
                 err.message);
    cr_assert(strstr(json_out, "\"num_layers\":3,\"num_heads\":4,\"num_kv_heads\":2"), "%s",
              json_out);
    cr_assert(strstr(json_out, "\"rms_norm_eps\":0.000001"), "%s", json_out);
    cr_assert(!strstr(json_out, "num_hidden_layers") && !strstr(json_out, "norm_eps\":1"), "%s",
              json_out);
    free(json_out);
    rf_model_free(m);
    NO_LEAKS();
}

Test(apr, realizar_written_file)
{
    /* realizar's Q4_K converter: flags 0x0020 only, no footer, GGUF names, GGML code 8 = Q8_0 */
    uint8_t q8_0[34 * 2] = {0};
    raw_tensor t[2] = {
        {.name = "blk.0.ffn_up.weight",
         .code = 8,
         .ndim = 2,
         .shape = {2, 32},
         .offset = 0,
         .size = 68,
         .data = q8_0},
        {.name = "token_embd.weight",
         .code = 0,
         .ndim = 2,
         .shape = {2, 2},
         .offset = 128,
         .size = 16,
         .data = FOUR},
    };
    const char *json =
        "{\"model_type\":\"transformer_lm_q4k\",\"architecture\":\"qwen2\","
        "\"num_hidden_layers\":1,\"quantization\":{\"quant_type\":\"Q4_K\",\"bits\":4,"
        "\"block_size\":256,\"symmetric\":true}}";
    rf_error err;
    rf_model *m = open_raw("realizar.apr", json, t, 2,
                           (raw_opts){.flags = 0x0020, .no_footer = true}, false, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_tensor(m, 0)->dtype, RF_DTYPE_Q8_0);
    cr_assert(has_warning(m, "realizar-written"));
    cr_assert_eq(rf_model_config_get(m)->n_layers, 1);
    cr_assert_eq(rf_model_config_get(m)->tie_word_embeddings, 1, "no head: tied fallback");
    /* APR cannot hold Q8_0: the writer names the tensor and the dtype */
    cr_assert_eq(rf_apr_write(m, tmp("realizar-out.apr"), NULL, &err), RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "blk.0.ffn_up.weight") && strstr(err.message, "Q8_0"), "%s",
              err.message);
    cr_assert_eq(access(tmp("realizar-out.apr"), F_OK), -1, "nothing written on failure");
    rf_model_free(m);
    NO_LEAKS();
}

Test(apr, streaming_layout_with_non_monotonic_offsets)
{
    raw_tensor t[2] = {f32_tensor("a", 64), f32_tensor("b", 0)};
    rf_error err;
    rf_model *m =
        open_raw("stream.apr", SMALL_JSON, t, 2, (raw_opts){.flags = 0x0400}, false, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_tensor(m, 0)->file_offset, rf_model_tensor(m, 1)->file_offset + 64);
    rf_model_free(m);
    NO_LEAKS();
}

/* ---- strict rejections, each with its message ----------------------------------------------- */

static void expect_reject(const char *file, const char *json, const raw_tensor *t, int n,
                          raw_opts o, const char *needle)
{
    rf_error err;
    rf_model *m = open_raw(file, json, t, n, o, false, &err);
    cr_assert_null(m, "%s: accepted", file);
    cr_assert(strstr(err.message, needle), "%s: '%s' not in: %s", file, needle, err.message);
    cr_assert(strstr(err.message, file), "%s: message does not name the file: %s", file,
              err.message);
}

Test(apr, strict_rejections)
{
    raw_tensor one = f32_tensor("w", 0);
    raw_opts ok = {.flags = 0x0400};
    expect_reject("hcrc.apr", SMALL_JSON, &one, 1,
                  (raw_opts){.flags = 0x0400, .bad_header_crc = true},
                  "header CRC mismatch (offset 40)");
    expect_reject("fcrc.apr", SMALL_JSON, &one, 1,
                  (raw_opts){.flags = 0x0400, .bad_footer_crc = true},
                  "footer CRC mismatch (offset 320)");
    expect_reject("colmajor.apr", SMALL_JSON, &one, 1, (raw_opts){.flags = 0x0800},
                  "column-major layout flag 0x0800");
    expect_reject("encrypted.apr", SMALL_JSON, &one, 1, (raw_opts){.flags = 0x0404}, "encrypted");
    expect_reject("v3.apr", SMALL_JSON, &one, 1, (raw_opts){.flags = 0x0400, .major = 3},
                  "APR version 3.0 (offset 4)");
    raw_tensor bad = one;
    bad.code = 77;
    expect_reject("dtype.apr", SMALL_JSON, &bad, 1, ok, "unknown dtype code 77");
    raw_tensor unsorted[2] = {f32_tensor("b", 0), f32_tensor("a", 64)};
    expect_reject("unsorted.apr", SMALL_JSON, unsorted, 2, ok, "not sorted");
    raw_tensor dup[2] = {f32_tensor("a", 0), f32_tensor("a", 64)};
    expect_reject("dup.apr", SMALL_JSON, dup, 2, ok, "duplicates");
    raw_tensor overlap[2] = {f32_tensor("a", 0), f32_tensor("b", 8)};
    expect_reject("overlap.apr", SMALL_JSON, overlap, 2, ok, "overlap");
    raw_tensor sized = one;
    sized.size = 12;
    expect_reject("size.apr", SMALL_JSON, &sized, 1, ok, "needs 16");
    raw_tensor over = {
        .name = "o", .ndim = 3, .shape = {1ull << 32, 1ull << 32, 2}, .size = 16, .data = FOUR};
    expect_reject("shape.apr", SMALL_JSON, &over, 1, ok, "overflows");
    raw_tensor deep = {
        .name = "d", .ndim = 9, .shape = {1, 1, 1, 1, 1, 1, 1, 1, 4}, .size = 16, .data = FOUR};
    expect_reject("ndim.apr", SMALL_JSON, &deep, 1, ok, "9 dimensions");
    expect_reject("json.apr", "{\"model_type\":\"t\",}", &one, 1, ok, "invalid JSON at offset 82");
    expect_reject("utf8.apr", "{\"model_type\":\"\xc3\x28\"}", &one, 1, ok,
                  "invalid UTF-8 at offset 79");
    expect_reject("array.apr", "[1,2]", &one, 1, ok, "expected a JSON object");
    expect_reject("count.apr", SMALL_JSON, &one, 1,
                  (raw_opts){.flags = 0x0400, .tensor_count = 100000},
                  "tensor_count 100000 (header offset 8) cannot fit");
    raw_tensor nul = f32_tensor("a\x01z", 0);
    rf_error err;
    rf_model *m = open_raw("ctrl-name.apr", SMALL_JSON, &nul, 1, ok, false, &err);
    cr_assert_not_null(m, "control characters are valid UTF-8: %s", err.message);
    rf_model_free(m);
    NO_LEAKS();
}

Test(apr, truncated_and_out_of_range)
{
    raw_tensor one = f32_tensor("w", 0);
    size_t len;
    uint8_t *f = raw_apr(SMALL_JSON, &one, 1, (raw_opts){.flags = 0x0400}, &len);
    static const struct {
        size_t keep;
        const char *needle;
    } cuts[] = {
        {0, "truncated header"},
        {40, "truncated header"},
        {100, "metadata at offset 64"},
        {200, "past the end"},
        {260, "extends past the end of the file"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "cut%zu.apr", cuts[i].keep);
        write_file(tmp(name), f, cuts[i].keep);
        rf_error err;
        rf_model *m = rf_apr_open_model(tmp(name), NULL, &err);
        cr_assert_null(m, "%s", name);
        cr_assert(strstr(err.message, cuts[i].needle), "%s: %s", name, err.message);
    }
    free(f);
    raw_tensor far = f32_tensor("w", 1ull << 40);
    far.data = NULL;
    rf_error err;
    /* raw_apr would allocate the gap: build the file with the extent patched in afterwards */
    f = raw_apr(SMALL_JSON, &one, 1, (raw_opts){.flags = 0x0400}, &len);
    uint64_t tio = rf_load_le64(f + 24);
    rf_store_le64(f + tio + 2 + 1 + 2 + 8, far.offset);
    write_file(tmp("far.apr"), f, len);
    rf_model *m = rf_apr_open_model(tmp("far.apr"), NULL, &err);
    cr_assert_null(m);
    cr_assert(strstr(err.message, "extends past the end of the file"), "%s", err.message);
    rf_store_le64(f + tio + 2 + 1 + 2 + 8, UINT64_MAX - 8);
    write_file(tmp("wrap.apr"), f, len);
    m = rf_apr_open_model(tmp("wrap.apr"), NULL, &err);
    cr_assert_null(m, "offset + size wrapping around must not pass the bounds check");
    free(f);
    NO_LEAKS();
}

Test(apr, lenient_reports_instead_of_refusing)
{
    raw_tensor one = f32_tensor("w", 0);
    rf_error err;
    rf_model *m = open_raw("hcrc-l.apr", SMALL_JSON, &one, 1,
                           (raw_opts){.flags = 0x0400, .bad_header_crc = true}, true, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert(has_warning(m, "header CRC mismatch"));
    rf_model_free(m);
    m = open_raw("fcrc-l.apr", SMALL_JSON, &one, 1,
                 (raw_opts){.flags = 0x0400, .bad_footer_crc = true}, true, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert(has_warning(m, "footer CRC mismatch"));
    rf_model_free(m);
    rf_apr_open_options skip = {.skip_footer_crc = true};
    m = rf_apr_open(tmp("fcrc-l.apr"), NULL, &skip, &err);
    cr_assert_not_null(m, "footer not verified on request: %s", err.message);
    cr_assert(!has_warning(m, "footer"));
    rf_model_free(m);
    rf_apr_checksums cs;
    cr_assert_eq(rf_apr_checksums_path(tmp("fcrc-l.apr"), &cs, &err), RF_OK, "%s", err.message);
    cr_assert(cs.header_valid && cs.footer_present && !cs.footer_valid);
    cr_assert_eq(cs.footer_stored ^ cs.footer_computed, 0x100);
    raw_tensor t[2] = {f32_tensor("a", 0), f32_tensor("b", 64)};
    t[0].code = 77;
    m = open_raw("dtype-l.apr", SMALL_JSON, t, 2, (raw_opts){.flags = 0x0400}, true, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_tensors(m), 1, "the unknown tensor is reported, the rest shown");
    cr_assert(has_warning(m, "unknown dtype code 77"));
    rf_model_free(m);
    m = open_raw("colmajor-l.apr", SMALL_JSON, &one, 1, (raw_opts){.flags = 0x0800}, true, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert(has_warning(m, "column-major"));
    rf_model_free(m);
    NO_LEAKS();
}

Test(apr, recognises_aprender_tsp)
{
    uint8_t tsp[77] = {0x41, 0x50, 0x52, 0x00, 0x01, 0x00, 0x00, 0x00,
                       0x00, 0x50, 0x53, 0x54, 0x17, 0x6d, 0xda, 0xb1};
    write_file(tmp("att48-aco.apr"), tsp, sizeof tsp);
    rf_error err;
    cr_assert_null(rf_model_open(tmp("att48-aco.apr"), NULL, &err));
    cr_assert(strstr(err.message, "not APR v2"), "%s", err.message);
    cr_assert_null(rf_apr_open_model(tmp("att48-aco.apr"), NULL, &err));
    cr_assert(strstr(err.message, "aprender-tsp"), "%s", err.message);
    NO_LEAKS();
}

/* ---- compression ---------------------------------------------------------------------------- */

static void compressed_round_trip(rf_apr_compression method, uint16_t flag, const char *file)
{
    rf_model *m = golden_model();
    rf_error err;
    rf_apr_write_options o = {.compression = method};
    cr_assert_eq(rf_apr_write(m, tmp(file), &o, &err), RF_OK, "%s", err.message);
    size_t n;
    uint8_t *d = read_file(tmp(file), &n);
    cr_assert_eq(rf_load_le16(d + 6), RF_APR_FLAG_ROW_MAJOR | flag);
    cr_assert_eq(rf_apr_header_crc(d), rf_load_le32(d + 40));
    /* the payload decompresses, with an independent call into the library, to the plain file's
     * bytes after the header (the golden vector) */
    uint8_t plain[516];
    golden_bytes(plain);
    uint8_t out[600];
    size_t got;
    if (method == RF_APR_COMPRESSION_LZ4) {
        cr_assert_eq(rf_load_le32(d + 64), 516 - 64);
        got = (size_t)LZ4_decompress_safe((const char *)d + 68, (char *)out, (int)(n - 68),
                                          sizeof out);
    } else {
        got = ZSTD_decompress(out, sizeof out, d + 64, n - 64);
    }
    cr_assert_eq(got, 516 - 64);
    cr_assert_eq(memcmp(out + 0, plain + 64, 516 - 64 - 4), 0);
    free(d);
    rf_model *r = rf_model_open(tmp(file), NULL, &err);
    cr_assert_not_null(r, "%s", err.message);
    cr_assert_eq(rf_model_n_tensors(r), 2);
    cr_assert_eq(memcmp(rf_model_find_tensor(r, "weights")->data, GOLDEN_WEIGHTS, 32), 0);
    cr_assert_eq(rf_model_find_tensor(r, "weights")->file_offset, 448, "image offsets");
    rf_apr_checksums cs;
    cr_assert_eq(rf_apr_checksums_path(tmp(file), &cs, &err), RF_OK, "%s", err.message);
    cr_assert(cs.compressed && cs.header_valid && cs.footer_valid);
    rf_model_free(r);
    rf_model_free(m);
}

Test(apr, lz4_round_trip)
{
    compressed_round_trip(RF_APR_COMPRESSION_LZ4, RF_APR_FLAG_LZ4, "c.lz4.apr");
    NO_LEAKS();
}
Test(apr, zstd_round_trip)
{
    compressed_round_trip(RF_APR_COMPRESSION_ZSTD, RF_APR_FLAG_ZSTD, "c.zst.apr");
    NO_LEAKS();
}

Test(apr, corrupt_compressed_payloads)
{
    uint8_t f[64 + 64] = {0};
    uint8_t g[516];
    golden_bytes(g);
    memcpy(f, g, 64);
    rf_store_le16(f + 6, 0x0401);
    rf_store_le32(f + 40, rf_apr_header_crc(f));
    rf_store_le32(f + 64, 452);
    memset(f + 68, 0xff, 60);
    write_file(tmp("bad-lz4.apr"), f, sizeof f);
    rf_error err;
    cr_assert_null(rf_model_open(tmp("bad-lz4.apr"), NULL, &err));
    cr_assert(strstr(err.message, "corrupt LZ4 block at offset 68"), "%s", err.message);
    rf_store_le32(f + 64, 0xfffffff0u); /* absurd declared size: refused before allocating */
    write_file(tmp("huge-lz4.apr"), f, sizeof f);
    cr_assert_null(rf_model_open(tmp("huge-lz4.apr"), NULL, &err));
    cr_assert(strstr(err.message, "expansion"), "%s", err.message);
    rf_store_le16(f + 6, 0x0402);
    rf_store_le32(f + 40, rf_apr_header_crc(f));
    static const uint8_t zmagic[4] = {0x28, 0xb5, 0x2f, 0xfd};
    memcpy(f + 64, zmagic, 4);
    write_file(tmp("bad-zstd.apr"), f, sizeof f);
    cr_assert_null(rf_model_open(tmp("bad-zstd.apr"), NULL, &err));
    cr_assert(strstr(err.message, "zstd"), "%s", err.message);
    NO_LEAKS();
}

/* ---- row-padded K-quants (docs/formats/apr.md) ----------------------------------------------- */

Test(apr, row_padded_q4_k)
{
    /* aprender's own Q4_K quantizer: 3 rows of 300 values = 3 x 2 super-blocks */
    static uint8_t q[3 * 2 * 144];
    for (size_t i = 0; i < sizeof q; i++)
        q[i] = (uint8_t)(i * 7);
    raw_tensor t = {
        .name = "w", .code = 12, .ndim = 2, .shape = {3, 300}, .size = sizeof q, .data = q};
    rf_error err;
    rf_model *m =
        open_raw("q4k-padded.apr", SMALL_JSON, &t, 1, (raw_opts){.flags = 0x0400}, false, &err);
    cr_assert_not_null(m, "%s", err.message);
    const rf_tensor *w = rf_model_tensor(m, 0);
    cr_assert_eq(w->dtype, RF_DTYPE_Q4_K);
    cr_assert_eq(w->nbytes, 864);
    uint64_t row;
    cr_assert(rf_apr_tensor_row_padded(w, &row));
    cr_assert_eq(row, 288);
    cr_assert_eq(w->row_stride, 288, "the reader sets the row stride of padded rows");
    static float vals[3 * 300];
    cr_assert_eq(rf_tensor_dequantize(w, vals, &err), RF_OK, "%s", err.message);
    cr_assert_eq(rf_apr_write(m, tmp("q4k-out.apr"), NULL, &err), RF_OK, "%s", err.message);
    rf_model *r = rf_model_open(tmp("q4k-out.apr"), NULL, &err);
    cr_assert_not_null(r, "%s", err.message);
    cr_assert_eq(memcmp(rf_model_tensor(r, 0)->data, q, sizeof q), 0);
    rf_apr_header h;
    uint32_t crc = 0;
    cr_assert_eq(rf_apr_model_header(r, &h, &crc, &err), RF_OK, "%s", err.message);
    cr_assert(h.flags & RF_APR_FLAG_ROW_MAJOR);
    cr_assert_eq(h.checksum, crc);
    rf_apr_checksums sums;
    cr_assert_eq(rf_apr_model_checksums(r, &sums, &err), RF_OK, "%s", err.message);
    cr_assert(sums.header_valid && sums.footer_present && sums.footer_valid);
    rf_model_free(r);
    rf_model_free(m);
    /* the unpadded size is not accepted for a 300-wide row */
    t.size = 3 * 300 / 256 * 144;
    expect_reject("q4k-short.apr", SMALL_JSON, &t, 1, (raw_opts){.flags = 0x0400}, "needs 864");
    uint64_t bytes;
    cr_assert_eq(rf_apr_tensor_bytes(RF_DTYPE_Q6_K, (uint64_t[]){2, 512}, 2, &bytes, &err), RF_OK);
    cr_assert_eq(bytes, 2 * 2 * 210);
    cr_assert_eq(rf_apr_tensor_bytes(RF_DTYPE_Q4_K, (uint64_t[]){300}, 1, &bytes, &err), RF_OK);
    cr_assert_eq(bytes, 2 * 144);
    rf_tensor plain = {.dtype = RF_DTYPE_Q4_K, .ndim = 2, .shape = {3, 512}};
    cr_assert(!rf_apr_tensor_row_padded(&plain, &row));
    NO_LEAKS();
}

/* ---- serde_json formatting (docs/formats/apr.md) --------------------------------------------- */

static void expect_f32(float v, const char *want)
{
    apr_buf b = {0};
    rfi_apr_json_f32(&b, v);
    cr_assert_str_eq(b.data, want, "f32 %.9g: got %s, want %s", (double)v, b.data, want);
    rfi_apr_buf_free(&b);
}

static void expect_f64(double v, const char *want)
{
    apr_buf b = {0};
    rfi_apr_json_f64(&b, v);
    cr_assert_str_eq(b.data, want, "f64 %.17g: got %s, want %s", v, b.data, want);
    rfi_apr_buf_free(&b);
}

Test(apr, serde_json_floats)
{
    /* the spec's examples */
    expect_f32(1e-6f, "0.000001");
    expect_f64((double)1e-6f, "9.999999974752427e-7");
    expect_f32(1e6f, "1000000.0");
    expect_f64(1e6, "1000000.0");
    expect_f32(1e-7f, "1e-7");
    expect_f64(1e-6, "1e-6");
    expect_f64(12.34, "12.34");
    expect_f64(0.001234, "0.001234");
    expect_f64(10000.0, "10000.0");
    /* the boundaries of each layout (ryu's format32 / format64) */
    expect_f32(1e12f, "1000000000000.0");
    expect_f32(1e13f, "1e13");
    expect_f32(123456.7f, "123456.7");
    expect_f32(1e-5f, "0.00001");
    expect_f32(0.3f, "0.3");
    expect_f32(16777216.0f, "16777216.0");
    expect_f32(3.4028235e38f, "3.4028235e38");
    expect_f32(1.4e-45f, "1e-45");
    expect_f32(1.17549435e-38f, "1.1754944e-38");
    expect_f32(-2.5f, "-2.5");
    expect_f64(1e15, "1000000000000000.0");
    expect_f64(1e16, "1e16");
    expect_f64(1.5e16, "1.5e16");
    expect_f64(0.1, "0.1");
    expect_f64(1e-5, "0.00001");
    expect_f64(1.2e-5, "0.000012");
    expect_f64(9007199254740991.0, "9007199254740991.0");
    expect_f64(9223372036854775808.0, "9.223372036854776e18");
    expect_f64(5e-324, "5e-324");
    expect_f64(1.7976931348623157e308, "1.7976931348623157e308");
    expect_f64(2.2250738585072014e-308, "2.2250738585072014e-308");
    expect_f64(1e23, "1e23");
    expect_f64(-0.0, "-0.0");
    expect_f64(0.0, "0.0");
    expect_f32(-0.0f, "-0.0");
    expect_f64(NAN, "null");
    expect_f64(-INFINITY, "null");
    expect_f32(INFINITY, "null");
    NO_LEAKS();
}

Test(apr, serde_json_strings_and_integers)
{
    apr_buf b = {0};
    const char s[] = "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f \xc3\xa9 \xf0\x9f\x98\x80";
    apr_json_string(&b, s, sizeof s - 1);
    cr_assert_str_eq(b.data,
                     "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f \xc3\xa9 \xf0\x9f\x98\x80\"");
    rfi_apr_buf_free(&b);
    apr_json_string(&b, "a\0b", 3);
    cr_assert_eq(b.len, 10);
    cr_assert_eq(memcmp(b.data, "\"a\\u0000b\"", 10), 0);
    rfi_apr_buf_free(&b);
    rfi_apr_json_u64(&b, UINT64_MAX);
    apr_buf_putc(&b, ' ');
    rfi_apr_json_i64(&b, INT64_MIN);
    cr_assert_str_eq(b.data, "18446744073709551615 -9223372036854775808");
    rfi_apr_buf_free(&b);
    NO_LEAKS();
}

/* Parses text and writes it back in serde_json's canonical form. */
static void expect_canonical(const char *text, const char *want)
{
    apr_json j;
    rf_error err;
    cr_assert_eq(rfi_apr_json_parse((const uint8_t *)text, strlen(text), 0, "t", &j, &err), RF_OK,
                 "%s: %s", text, err.message);
    apr_buf b = {0};
    rfi_apr_json_write(&b, &j, 0);
    cr_assert_str_eq(b.data, want, "%s", text);
    rfi_apr_buf_free(&b);
    rfi_apr_json_free(&j);
}

static void expect_invalid(const char *text, size_t len, const char *needle)
{
    apr_json j;
    rf_error err;
    cr_assert_eq(rfi_apr_json_parse((const uint8_t *)text, len, 100, "t", &j, &err), RF_ERR_FORMAT,
                 "%s accepted", text);
    cr_assert(strstr(err.message, needle), "%s: %s", text, err.message);
}

Test(apr, json_parser_keeps_serde_distinctions)
{
    expect_canonical(" { \"b\" : [1, 1.0, -1, -0, 1e2, 18446744073709551616, 0.5e-3] ,\"a\":null} ",
                     "{\"a\":null,\"b\":[1,1.0,-1,-0.0,100.0,1.8446744073709552e19,0.0005]}");
    expect_canonical("{\"k\":1,\"k\":2,\"\":3}", "{\"\":3,\"k\":2}");
    expect_canonical("\"\\u00e9\\ud83d\\ude00\\/\"", "\"\xc3\xa9\xf0\x9f\x98\x80/\"");
    expect_canonical("[-9223372036854775808,-9223372036854775809]",
                     "[-9223372036854775808,-9.223372036854776e18]");
    expect_canonical("{\"b\":{\"z\":1,\"a\":{\"y\":true,\"x\":false}}}",
                     "{\"b\":{\"a\":{\"x\":false,\"y\":true},\"z\":1}}");
    expect_invalid("{\"a\":1,}", 8, "offset 107");
    expect_invalid("[01]", 4, "leading zeros");
    expect_invalid("\"\\ud800\"", 8, "surrogate");
    expect_invalid("\"a\nb\"", 5, "control character");
    expect_invalid("1e999", 5, "out of range");
    expect_invalid("[1] x", 5, "trailing characters");
    expect_invalid("\"\xed\xa0\x80\"", 5, "invalid UTF-8");
    expect_invalid("\"\xc0\xaf\"", 4, "invalid UTF-8");
    expect_invalid("nul", 3, "expected a JSON value");
    char deep[300];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 100);
    expect_invalid(deep, 300, "deeper than 128");
    NO_LEAKS();
}

/* ---- metadata order and values on write ----------------------------------------------------- */

Test(apr, typed_keys_in_declaration_order_custom_keys_sorted)
{
    rf_error err;
    rf_model *m = rf_model_new(RF_FORMAT_APR, &err);
    struct {
        const char *key;
        rf_value v;
    } kvs[] = {
        {"zeta", u64_value(1)},
        {"moe_intermediate_size", u64_value(35)},
        {"rms_norm_eps", {.type = RF_VALUE_F32, .as.f = (double)1e-6f}},
        {"tokenizer.merges", json_value("[]")},
        {"num_experts_per_tok", u64_value(34)},
        {"num_experts", u64_value(33)},
        {"head_dim", u64_value(32)},
        {"rope_type", u64_value(2)},
        {"rope_theta", {.type = RF_VALUE_F64, .as.f = 1e6}},
        {"max_position_embeddings", u64_value(28)},
        {"intermediate_size", u64_value(27)},
        {"vocab_size", u64_value(26)},
        {"num_kv_heads", u64_value(25)},
        {"num_heads", u64_value(24)},
        {"num_layers", u64_value(23)},
        {"hidden_size", u64_value(22)},
        {"hf_model_type", str_value("qwen2")},
        {"hf_architecture", str_value("Qwen2ForCausalLM")},
        {"architecture", str_value("qwen2")},
        {"special_tokens", json_value("{\"eos_token\":\"<e>\",\"junk\":1}")},
        {"chat_format", str_value("chatml")},
        {"chat_template", str_value("{% x %}\n")},
        {"sharding", json_value("{\"shard_count\":2,\"shard_index\":0,\"total_size\":9}")},
        {"quantization",
         json_value("{\"symmetric\":true,\"bits\":4,\"quant_type\":\"int4\",\"block_size\":32}")},
        {"param_count", u64_value(13)},
        {"total_size", u64_value(12)},
        {"created_at", str_value("c")},
        {"original_format", str_value("safetensors")},
        {"source", str_value("hf://a/b")},
        {"version", str_value("1")},
        {"data_license", str_value("dl")},
        {"data_source", str_value("ds")},
        {"license", str_value("MIT")},
        {"author", str_value("au")},
        {"description", str_value("de")},
        {"name", str_value("na")},
        {"model_type", str_value("mt")},
        {"Alpha", {.type = RF_VALUE_F64, .as.f = (double)1e-6f}},
        {"alpha", {.type = RF_VALUE_BOOL, .as.b = true}},
    };
    for (size_t i = 0; i < sizeof kvs / sizeof kvs[0]; i++)
        cr_assert_eq(rf_model_add_kv(m, kvs[i].key, &kvs[i].v, &err), RF_OK);
    char *json;
    size_t len;
    cr_assert_eq(rf_apr_metadata_json(m, NULL, NULL, &json, &len, &err), RF_OK, "%s", err.message);
    const char *want =
        "{\"model_type\":\"mt\",\"name\":\"na\",\"description\":\"de\",\"author\":\"au\","
        "\"license\":\"MIT\",\"data_source\":\"ds\",\"data_license\":\"dl\",\"version\":\"1\","
        "\"source\":\"hf://a/b\",\"original_format\":\"safetensors\",\"created_at\":\"c\","
        "\"total_size\":12,\"param_count\":13,"
        "\"quantization\":{\"quant_type\":\"int4\",\"bits\":4,\"block_size\":32,\"symmetric\":true}"
        ","
        "\"sharding\":{\"shard_count\":2,\"shard_index\":0,\"total_size\":9,\"pattern\":null},"
        "\"chat_template\":\"{% x %}\\n\",\"chat_format\":\"chatml\","
        "\"special_tokens\":{\"bos_token\":null,\"eos_token\":\"<e>\",\"unk_token\":null,"
        "\"pad_token\":null,\"im_start_token\":null,\"im_end_token\":null},"
        "\"architecture\":\"qwen2\",\"hf_architecture\":\"Qwen2ForCausalLM\","
        "\"hf_model_type\":\"qwen2\",\"hidden_size\":22,\"num_layers\":23,\"num_heads\":24,"
        "\"num_kv_heads\":25,\"vocab_size\":26,\"intermediate_size\":27,"
        "\"max_position_embeddings\":28,\"rope_theta\":1000000.0,\"rope_type\":2,"
        "\"rms_norm_eps\":0.000001,\"head_dim\":32,\"num_experts\":33,\"num_experts_per_tok\":34,"
        "\"moe_intermediate_size\":35,"
        "\"Alpha\":9.999999974752427e-7,\"alpha\":true,\"tokenizer.merges\":[],\"zeta\":1}";
    cr_assert_str_eq(json, want);
    cr_assert_eq(len, strlen(want));
    free(json);
    /* wrong types for typed fields are refused, naming the key */
    rf_value bad = str_value("x");
    rf_model_add_kv(m, "hidden_size", &bad, &err);
    cr_assert_eq(rf_apr_metadata_json(m, NULL, NULL, &json, &len, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "'hidden_size' must be an unsigned integer"), "%s", err.message);
    rf_model_free(m);
    NO_LEAKS();
}

Test(apr, index_sorted_by_byte_order)
{
    rf_error err;
    rf_model *m = rf_model_new(RF_FORMAT_APR, &err);
    static const char *const names[] = {"b", "aa", "a.b", "B", "a", "\xc3\xa9", "z"};
    static const char *const sorted[] = {"B", "a", "a.b", "aa", "b", "z", "\xc3\xa9"};
    for (size_t i = 0; i < 7; i++) {
        rf_tensor t = {.name = names[i],
                       .dtype = RF_DTYPE_F32,
                       .ndim = 1,
                       .shape = {4},
                       .data = (const uint8_t *)FOUR,
                       .nbytes = 16};
        cr_assert_eq(rf_model_add_tensor(m, &t, &err), RF_OK);
    }
    cr_assert_eq(rf_apr_write(m, tmp("sorted.apr"), NULL, &err), RF_OK, "%s", err.message);
    size_t n;
    uint8_t *d = read_file(tmp("sorted.apr"), &n);
    uint64_t p = rf_load_le64(d + 24), dof = rf_load_le64(d + 32);
    for (size_t i = 0; i < 7; i++) {
        uint16_t nl = rf_load_le16(d + p);
        cr_assert_eq(nl, strlen(sorted[i]));
        cr_assert_eq(memcmp(d + p + 2, sorted[i], nl), 0, "entry %zu", i);
        cr_assert_eq(rf_load_le64(d + p + 2 + nl + 2 + 8), 64 * i, "data in index order");
        cr_assert_eq(dof % 64, 0);
        p += 2 + nl + 2 + 8 + 16;
    }
    cr_assert_eq(p, rf_load_le64(d + 24) + 7 * 28 + 11, "entries packed with no padding");
    free(d);
    rf_model_free(m);
    NO_LEAKS();
}

Test(apr, writer_refusals)
{
    rf_error err;
    rf_model *m = rf_model_new(RF_FORMAT_APR, &err);
    char name[300];
    memset(name, 'n', 257);
    name[257] = '\0';
    rf_tensor t = {.name = name,
                   .dtype = RF_DTYPE_F32,
                   .ndim = 1,
                   .shape = {4},
                   .data = (const uint8_t *)FOUR,
                   .nbytes = 16};
    rf_model_add_tensor(m, &t, &err);
    cr_assert_eq(rf_apr_write(m, tmp("long.apr"), NULL, &err), RF_ERR_LIMIT);
    cr_assert(strstr(err.message, "257 bytes"), "%s", err.message);
    rf_model_free(m);
    m = rf_model_new(RF_FORMAT_APR, &err);
    rf_tensor q = {.name = "q",
                   .dtype = RF_DTYPE_Q4_0,
                   .ndim = 1,
                   .shape = {32},
                   .data = (const uint8_t *)FOUR,
                   .nbytes = 18};
    rf_model_add_tensor(m, &q, &err);
    cr_assert_eq(rf_apr_write(m, tmp("q40.apr"), NULL, &err), RF_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "'q'") && strstr(err.message, "Q4_0"), "%s", err.message);
    rf_model_free(m);
    m = rf_model_new(RF_FORMAT_APR, &err);
    rf_tensor s = {.name = "s",
                   .dtype = RF_DTYPE_F32,
                   .ndim = 1,
                   .shape = {5},
                   .data = (const uint8_t *)FOUR,
                   .nbytes = 16};
    rf_model_add_tensor(m, &s, &err);
    cr_assert_eq(rf_apr_write(m, tmp("size.apr"), NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "takes 20"), "%s", err.message);
    rf_model_free(m);
    NO_LEAKS();
}

/* ---- metadata synthesis for models from SafeTensors and GGUF (docs/formats/apr.md) ----------- */

static const uint16_t EMBED_BF16[6] = {0x3f80, 0x4000, 0x4040, 0x4080, 0x40a0, 0x40c0};
static const uint16_t ZERO_BF16[6] = {0};

static rf_model *tiny_model(rf_format format, bool with_zero_head)
{
    rf_error err;
    rf_model *m = rf_model_new(format, &err);
    bool gguf = format == RF_FORMAT_GGUF;
    rf_tensor e = {.name = gguf ? "token_embd.weight" : "model.embed_tokens.weight",
                   .dtype = RF_DTYPE_BF16,
                   .ndim = 2,
                   .shape = {3, 2},
                   .data = (const uint8_t *)EMBED_BF16,
                   .nbytes = 12};
    rf_tensor q = {.name = gguf ? "blk.0.attn_q.weight" : "model.layers.0.self_attn.q_proj.weight",
                   .dtype = RF_DTYPE_F32,
                   .ndim = 2,
                   .shape = {2, 2},
                   .data = (const uint8_t *)FOUR,
                   .nbytes = 16};
    rf_model_add_tensor(m, &e, &err);
    rf_model_add_tensor(m, &q, &err);
    if (with_zero_head) {
        rf_tensor h = e;
        h.name = "lm_head.weight";
        h.data = (const uint8_t *)ZERO_BF16;
        rf_model_add_tensor(m, &h, &err);
    }
    rf_model_config *c = rf_model_config_mut(m);
    c->architecture = "qwen2";
    c->hidden_size = 2;
    c->n_layers = 1;
    c->n_heads = 1;
    c->n_kv_heads = 1;
    c->head_dim = 2;
    c->vocab_size = 3;
    c->intermediate_size = 4;
    c->context_length = 32;
    c->rope_theta = 1e6;
    c->rope_type = RF_ROPE_NEOX;
    c->rms_norm_eps = 1e-6;
    c->bos_token_id = -1;
    c->eos_token_id = 2;
    c->chat_template = "{{ m }}";
    rf_tokenizer *tok = rf_model_tokenizer_mut(m);
    static const char *tokens[] = {"a", "b", "ab"};
    static const char *merges[] = {"a b"};
    tok->model = "gpt2";
    tok->pre = "qwen2";
    tok->n_tokens = 3;
    tok->tokens = tokens;
    tok->n_merges = 1;
    tok->merges = merges;
    if (!gguf) {
        rf_value fmt = str_value("pt");
        rf_model_add_kv(m, "format", &fmt, &err);
        rf_value cfg = json_value("{\"model_type\":\"qwen2\"}");
        rf_model_add_kv(m, "hf.config.json", &cfg, &err);
    }
    return m;
}

Test(apr, synthesized_from_safetensors_with_tied_embeddings)
{
    rf_model *m = tiny_model(RF_FORMAT_SAFETENSORS, false);
    rf_error err;
    const char *path = tmp("tiny-tied.apr");
    cr_assert_eq(rf_apr_write(m, path, NULL, &err), RF_OK, "%s", err.message);
    char *json;
    size_t len;
    cr_assert_eq(rf_apr_metadata_json(m, path, NULL, &json, &len, &err), RF_OK);
    const char *want =
        "{\"model_type\":\"Qwen2\",\"name\":\"tiny-tied\",\"license\":null,\"data_source\":null,"
        "\"data_license\":null,\"total_size\":0,\"param_count\":16,\"chat_template\":\"{{ m }}\","
        "\"architecture\":\"qwen2\",\"hidden_size\":2,\"num_layers\":1,\"num_heads\":1,"
        "\"num_kv_heads\":1,\"vocab_size\":3,\"intermediate_size\":4,"
        "\"max_position_embeddings\":32,\"rope_theta\":1000000.0,\"rope_type\":2,"
        "\"rms_norm_eps\":0.000001,"
        "\"source_metadata\":{\"format\":\"pt\"},"
        "\"tensor_shapes\":{\"lm_head.weight\":[3,2],\"model.embed_tokens.weight\":[3,2],"
        "\"model.layers.0.self_attn.q_proj.weight\":[2,2]},"
        "\"tied_embeddings\":true,\"tokenizer.eos_token_id\":2,\"tokenizer.merges\":[\"a b\"],"
        "\"tokenizer.model_type\":\"bpe\",\"tokenizer.pre_type\":\"qwen2\","
        "\"tokenizer.vocab_size\":3,\"tokenizer.vocabulary\":[\"a\",\"b\",\"ab\"]}";
    cr_assert_str_eq(json, want);
    free(json);
    rf_model *r = rf_model_open(path, NULL, &err);
    cr_assert_not_null(r, "%s", err.message);
    const rf_tensor *head = rf_model_find_tensor(r, "lm_head.weight");
    cr_assert_not_null(head);
    cr_assert_eq(head->dtype, RF_DTYPE_BF16);
    cr_assert_eq(memcmp(head->data, EMBED_BF16, 12), 0, "a copy of the embedding");
    const rf_model_config *c = rf_model_config_get(r);
    cr_assert_eq(c->tie_word_embeddings, 1);
    cr_assert_eq(c->n_kv_heads, 1);
    cr_assert_eq(c->rope_type, RF_ROPE_NEOX);
    cr_assert_eq(c->rope_theta, 1e6);
    cr_assert_eq(c->rms_norm_eps, 1e-6, "the f32's decimal, not the f32 widened");
    cr_assert_eq(c->head_dim, 2, "derived from hidden / heads");
    cr_assert_eq(c->eos_token_id, 2);
    cr_assert_str_eq(c->chat_template, "{{ m }}");
    cr_assert_str_eq(rf_model_tokenizer(r)->model, "gpt2");
    cr_assert_str_eq(rf_model_tokenizer(r)->pre, "qwen2");
    rf_model_free(r);
    rf_model_free(m);
    /* a head that is all zeros is replaced as aprender does */
    m = tiny_model(RF_FORMAT_SAFETENSORS, true);
    cr_assert_eq(rf_apr_write(m, tmp("zero-head.apr"), NULL, &err), RF_OK, "%s", err.message);
    r = rf_model_open(tmp("zero-head.apr"), NULL, &err);
    cr_assert_not_null(r, "%s", err.message);
    cr_assert_eq(memcmp(rf_model_find_tensor(r, "lm_head.weight")->data, EMBED_BF16, 12), 0);
    cr_assert_eq(rf_model_n_tensors(r), 3);
    rf_model_free(r);
    rf_model_free(m);
    NO_LEAKS();
}

Test(apr, synthesized_from_gguf)
{
    rf_model *m = tiny_model(RF_FORMAT_GGUF, false);
    rf_error err;
    const char *path = tmp("from-gguf.apr");
    rf_value prov = json_value("{\"source\":\"x.gguf\"}");
    rf_kv extra = {"rosetta.provenance", prov};
    rf_apr_write_options o = {.extra = &extra, .n_extra = 1};
    cr_assert_eq(rf_apr_write(m, path, &o, &err), RF_OK, "%s", err.message);
    char *json;
    size_t len;
    cr_assert_eq(rf_apr_metadata_json(m, path, &o, &json, &len, &err), RF_OK);
    const char *want =
        "{\"model_type\":\"qwen2\",\"name\":\"qwen2\","
        "\"description\":\"GGUF Q4_K model imported with native quantization\",\"license\":null,"
        "\"data_source\":null,\"data_license\":null,\"version\":\"1.0.0\","
        "\"original_format\":\"gguf\",\"total_size\":0,\"param_count\":16,"
        "\"chat_template\":\"{{ m }}\",\"architecture\":\"qwen2\","
        "\"hf_architecture\":\"Qwen2ForCausalLM\",\"hf_model_type\":\"qwen2\",\"hidden_size\":2,"
        "\"num_layers\":1,\"num_heads\":1,\"num_kv_heads\":1,\"vocab_size\":3,"
        "\"intermediate_size\":4,\"max_position_embeddings\":32,\"rope_theta\":1000000.0,"
        "\"rope_type\":2,\"rms_norm_eps\":0.000001,"
        "\"model.architecture\":\"qwen2\",\"model.hidden_size\":2,\"model.intermediate_size\":4,"
        "\"model.max_position_embeddings\":32,\"model.num_heads\":1,\"model.num_kv_heads\":1,"
        "\"model.num_layers\":1,\"model.rms_norm_eps\":9.999999974752427e-7,"
        "\"model.rope_theta\":1000000.0,\"model.rope_type\":2,\"model.vocab_size\":3,"
        "\"rosetta.provenance\":{\"source\":\"x.gguf\"},"
        "\"tensor_shapes\":{\"lm_head.weight\":[3,2],\"model.embed_tokens.weight\":[3,2],"
        "\"model.layers.0.self_attn.q_proj.weight\":[2,2]},"
        "\"tied_embeddings\":true,\"tokenizer.chat_template\":\"{{ m }}\","
        "\"tokenizer.eos_token_id\":2,\"tokenizer.merges\":[\"a b\"],\"tokenizer.model\":\"gpt2\","
        "\"tokenizer.pre_type\":\"qwen2\",\"tokenizer.vocab_size\":3,"
        "\"tokenizer.vocabulary\":[\"a\",\"b\",\"ab\"]}";
    cr_assert_str_eq(json, want);
    free(json);
    rf_model *r = rf_model_open(path, NULL, &err);
    cr_assert_not_null(r, "%s", err.message);
    cr_assert_not_null(rf_model_find_tensor(r, "model.layers.0.self_attn.q_proj.weight"),
                       "GGUF names mapped to HF names for qwen2");
    cr_assert_not_null(rf_model_find_tensor(r, "lm_head.weight"));
    rf_model_free(r);
    rf_model_free(m);
    NO_LEAKS();
}

/* ---- APR_Q4 / APR_Q8 (docs/formats/apr.md) --------------------------------------------------- */

Test(apr, apr_q4_block_math)
{
    float x[35];
    for (int i = 0; i < 35; i++)
        x[i] = (float)(i - 16);
    uint8_t q[36];
    cr_assert_eq(rk_apr_q4_bytes(35), 36);
    rk_apr_q4_quantize(x, 35, q);
    /* block 0: amax 16, scale 16/7 = 2.2857144 -> f16 0x4092 (2.28515625) */
    cr_assert_eq(q[0], 0x92);
    cr_assert_eq(q[1], 0x40);
    /* x0 = -16 -> -7 (nibble 1) in the low half of byte 2; x1 = -15 -> -6.5625 -> -7 (nibble 1) */
    cr_assert_eq(q[2], 0x11);
    /* x16 = 0 -> nibble 8; x17 = 1 -> 0.4375 -> 0 -> nibble 8 */
    cr_assert_eq(q[2 + 8], 0x88);
    /* x30 = 14 -> 6.125 -> 6 (14); x31 = 15 -> 6.5625 -> 7 (15) */
    cr_assert_eq(q[2 + 15], 0xfe);
    /* block 1 is partial: 3 values (16, 17, 18), amax 18, scale 18/7; the rest are zero bytes */
    /* 16 / 2.5714 = 6.22 -> 6 (14); 17 -> 6.61 -> 7 (15); 18 -> 7 (15); the 4th nibble is 0 */
    cr_assert_eq(q[18 + 2], 0xfe);
    cr_assert_eq(q[18 + 3], 0x0f);
    for (int i = 4; i < 18; i++)
        cr_assert_eq(q[18 + i], 0);
    float y[35];
    rk_apr_q4_dequantize(q, 35, y);
    cr_assert_float_eq(y[0], -7 * 2.28515625f, 0);
    cr_assert_float_eq(y[16], 0.0f, 0);
    for (int i = 0; i < 35; i++)
        cr_assert(fabsf(y[i] - x[i]) <= 18.0f / 7.0f, "element %d: %g vs %g", i, (double)y[i],
                  (double)x[i]);
    /* ties round away from zero: 3.5 * scale (scale 1 when amax = 7) */
    float t[2] = {3.5f, 7.0f};
    rk_apr_q4_quantize(t, 2, q);
    cr_assert_eq(q[2], (uint8_t)((4 + 8) | ((7 + 8) << 4)));
    float zeros[3] = {0};
    rk_apr_q4_quantize(zeros, 3, q);
    cr_assert_eq(q[0] | (q[1] << 8), 0x3c00, "scale 1.0 when the block is zero");
    cr_assert_eq(q[2], 0x88);
    NO_LEAKS();
}

Test(apr, apr_q8_math)
{
    float x[5] = {-127, 0.5f, 63.5f, NAN, 1};
    uint8_t q[9];
    cr_assert_eq(rk_apr_q8_bytes(5), 9);
    cr_assert_eq(rk_apr_q8_bytes(0), 0);
    rk_apr_q8_quantize(x, 5, q);
    cr_assert_eq(rf_load_le32(q), 0x3f800000u, "scale = 127 / 127 = 1.0 (NaN ignored)");
    cr_assert_eq((int8_t)q[4], -127);
    cr_assert_eq((int8_t)q[5], 1, "0.5 rounds away from zero");
    cr_assert_eq((int8_t)q[6], 64);
    cr_assert_eq((int8_t)q[7], 0, "NaN becomes 0");
    float y[5];
    rk_apr_q8_dequantize(q, 5, y);
    cr_assert_float_eq(y[2], 64.0f, 0);
    float z[2] = {0, 0};
    rk_apr_q8_quantize(z, 2, q);
    cr_assert_eq(rf_load_le32(q), 0x3f800000u);
    NO_LEAKS();
}

/* ---- bad-input catalogue (tests/data/bad/apr) ----------------------------------------------- */

Test(apr, bad_input_catalogue)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/tests/data/bad/apr", ROSETTA_ROOT);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    struct dirent *e;
    int checked = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".apr") != 0)
            continue;
        char path[1200], expect_path[1300], expect[512] = "";
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(expect_path, sizeof expect_path, "%s.expect", path);
        FILE *f = fopen(expect_path, "r");
        cr_assert_not_null(f, "%s has no .expect sidecar", e->d_name);
        cr_assert_not_null(fgets(expect, sizeof expect, f));
        fclose(f);
        expect[strcspn(expect, "\n")] = '\0';
        cr_assert(expect[0], "%s: empty .expect", e->d_name);
        rf_error err;
        rf_model *m = rf_model_open(path, NULL, &err);
        cr_assert_null(m, "%s was accepted", e->d_name);
        cr_assert(strstr(err.message, expect), "%s: '%s' not in: %s", e->d_name, expect,
                  err.message);
        /* diagnostic opening must not crash either */
        rf_open_options lenient = {.lenient = true};
        rf_model_free(rf_model_open(path, &lenient, &err));
        rf_apr_checksums cs;
        rf_apr_checksums_path(path, &cs, &err);
        checked++;
    }
    closedir(d);
    cr_assert_geq(checked, 14, "only %d bad files", checked);
    NO_LEAKS();
}

/* docs/formats/apr.md: the same model in the older "all-null" layout (every optional typed key
 * written as null). It reads, and writing it back gives today's 516-byte file, as aprender's writer
 * would. */
Test(apr, old_all_null_layout_reads_and_rewrites_to_the_golden)
{
    static const char *const typed[] = {"model_type",
                                        "name",
                                        "description",
                                        "author",
                                        "license",
                                        "data_source",
                                        "data_license",
                                        "version",
                                        "source",
                                        "original_format",
                                        "created_at",
                                        "total_size",
                                        "param_count",
                                        "quantization",
                                        "sharding",
                                        "chat_template",
                                        "chat_format",
                                        "special_tokens",
                                        "architecture",
                                        "hf_architecture",
                                        "hf_model_type",
                                        "hidden_size",
                                        "num_layers",
                                        "num_heads",
                                        "num_kv_heads",
                                        "vocab_size",
                                        "intermediate_size",
                                        "max_position_embeddings",
                                        "rope_theta",
                                        "rope_type",
                                        "rms_norm_eps",
                                        "head_dim",
                                        "num_experts",
                                        "num_experts_per_tok",
                                        "moe_intermediate_size"};
    char json[1024] = "{";
    for (size_t i = 0; i < 35; i++) {
        const char *v = "null";
        if (!strcmp(typed[i], "model_type"))
            v = "\"linear_regression\"";
        else if (!strcmp(typed[i], "name"))
            v = "\"golden-v2\"";
        else if (!strcmp(typed[i], "version"))
            v = "\"0.0.0-golden\"";
        else if (!strcmp(typed[i], "created_at"))
            v = "\"1700000000\"";
        else if (!strcmp(typed[i], "total_size"))
            v = "0";
        else if (!strcmp(typed[i], "param_count"))
            v = "8";
        snprintf(json + strlen(json), sizeof json - strlen(json), "%s\"%s\":%s", i ? "," : "",
                 typed[i], v);
    }
    strcat(json, "}");
    cr_assert_eq(strlen(json), 715, "the spec's size of the all-null JSON");
    raw_tensor t[2] = {
        {.name = "bias", .ndim = 1, .shape = {1}, .offset = 0, .size = 4, .data = GOLDEN_BIAS},
        {.name = "weights",
         .ndim = 1,
         .shape = {8},
         .offset = 64,
         .size = 32,
         .data = GOLDEN_WEIGHTS},
    };
    size_t len;
    uint8_t *f = raw_apr(json, t, 2, (raw_opts){.flags = 0x0400}, &len);
    cr_assert_eq(len, 1092, "the spec's size of golden_v2.apr");
    write_file(tmp("golden_v2.apr"), f, len);
    free(f);
    rf_error err;
    rf_model *m = rf_model_open(tmp("golden_v2.apr"), NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rf_model_n_kv(m), 35);
    cr_assert_eq(rf_apr_write(m, tmp("golden_v2-now.apr"), NULL, &err), RF_OK, "%s", err.message);
    size_t n;
    uint8_t *now = read_file(tmp("golden_v2-now.apr"), &n);
    uint8_t want[516];
    golden_bytes(want);
    cr_assert_eq(n, 516);
    cr_assert_eq(memcmp(now, want, 516), 0);
    free(now);
    rf_model_free(m);
    NO_LEAKS();
}

/* Duplicate keys: the last value wins, as serde_json's Value does for aprender; both spellings
 * of a field: the canonical one wins and only it is written back. */
Test(apr, duplicate_and_conflicting_keys)
{
    const char *json = "{\"model_type\":\"a\",\"num_layers\":2,\"model_type\":\"b\","
                       "\"num_hidden_layers\":7,\"rms_norm_eps\":null,\"norm_eps\":0.5}";
    raw_tensor t = f32_tensor("w", 0);
    rf_error err;
    rf_model *m = open_raw("dupkeys.apr", json, &t, 1, (raw_opts){.flags = 0x0400}, false, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_str_eq(rf_model_find_kv(m, "model_type")->value.as.str.data, "b");
    cr_assert_str_eq(rf_model_kv(m, 0)->key, "model_type", "position of the first occurrence");
    cr_assert(has_warning(m, "'model_type' appears 2 times (offsets 78 and 110)"));
    cr_assert_eq(rf_model_config_get(m)->n_layers, 2);
    cr_assert(has_warning(m, "both 'num_layers' and its alias 'num_hidden_layers'"));
    cr_assert_eq(rf_model_config_get(m)->rms_norm_eps, 0.5, "alias used when the key is null");
    char *out;
    size_t len;
    cr_assert_eq(rf_apr_metadata_json(m, NULL, NULL, &out, &len, &err), RF_OK, "%s", err.message);
    cr_assert_str_eq(out, "{\"model_type\":\"b\",\"license\":null,\"data_source\":null,"
                          "\"data_license\":null,\"total_size\":0,\"param_count\":0,"
                          "\"num_layers\":2,\"rms_norm_eps\":0.5}");
    free(out);
    rf_model_free(m);
    NO_LEAKS();
}

/* A scalar (ndim 0) and an empty tensor (a 0 dimension, 0 bytes, no data pointer): both valid;
 * an empty tensor takes no space, so the next one shares its offset (docs/formats/apr.md). */
Test(apr, scalar_and_empty_tensors)
{
    rf_error err;
    rf_model *m = rf_model_new(RF_FORMAT_APR, &err);
    rf_tensor e = {.name = "empty", .dtype = RF_DTYPE_F32, .ndim = 2, .shape = {0, 4}};
    rf_tensor q = {.name = "q8empty", .dtype = RF_DTYPE_APR_Q8, .ndim = 1, .shape = {0}};
    rf_tensor s = {.name = "scalar",
                   .dtype = RF_DTYPE_F32,
                   .ndim = 0,
                   .data = (const uint8_t *)FOUR,
                   .nbytes = 4};
    cr_assert_eq(rf_model_add_tensor(m, &e, &err), RF_OK);
    cr_assert_eq(rf_model_add_tensor(m, &q, &err), RF_OK);
    cr_assert_eq(rf_model_add_tensor(m, &s, &err), RF_OK);
    for (int c = 0; c < 3; c++) {
        rf_apr_write_options o = {.compression = (rf_apr_compression)c};
        cr_assert_eq(rf_apr_write(m, tmp("small.apr"), &o, &err), RF_OK, "%s", err.message);
        rf_model *r = rf_model_open(tmp("small.apr"), NULL, &err);
        cr_assert_not_null(r, "%s", err.message);
        cr_assert_eq(rf_model_n_tensors(r), 3);
        const rf_tensor *re = rf_model_find_tensor(r, "empty"),
                        *rs = rf_model_find_tensor(r, "scalar");
        cr_assert_eq(re->nbytes, 0);
        cr_assert_eq(rs->ndim, 0);
        cr_assert_eq(rs->nbytes, 4);
        cr_assert_eq(re->file_offset, rs->file_offset, "an empty tensor occupies no space");
        cr_assert_eq(memcmp(rs->data, FOUR, 4), 0);
        rf_model_free(r);
    }
    rf_model_free(m);
    NO_LEAKS();
}

/* Every dtype APR holds goes out with aprender's code and comes back unchanged
 * (docs/formats/apr.md). */
Test(apr, every_dtype_round_trips_with_its_code)
{
    static const struct {
        rf_dtype dtype;
        uint8_t code;
        uint64_t elems, bytes;
    } types[] = {
        {RF_DTYPE_F32, 0, 8, 32},   {RF_DTYPE_F16, 1, 8, 16},       {RF_DTYPE_F64, 3, 8, 64},
        {RF_DTYPE_I32, 4, 8, 32},   {RF_DTYPE_I64, 5, 8, 64},       {RF_DTYPE_I8, 6, 8, 8},
        {RF_DTYPE_U8, 7, 8, 8},     {RF_DTYPE_Q4_K, 12, 256, 144},  {RF_DTYPE_Q6_K, 14, 256, 210},
        {RF_DTYPE_BF16, 30, 8, 16}, {RF_DTYPE_APR_Q4, 128, 40, 36}, {RF_DTYPE_APR_Q8, 129, 8, 12},
    };
    static uint8_t payload[256];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 13 + 5);
    rf_error err;
    rf_model *m = rf_model_new(RF_FORMAT_APR, &err);
    char names[12][8];
    for (size_t i = 0; i < 12; i++) {
        snprintf(names[i], sizeof names[i], "t%02zu", i);
        rf_tensor t = {.name = names[i],
                       .dtype = types[i].dtype,
                       .ndim = 1,
                       .shape = {types[i].elems},
                       .data = payload,
                       .nbytes = types[i].bytes};
        cr_assert_eq(rf_model_add_tensor(m, &t, &err), RF_OK);
    }
    cr_assert_eq(rf_apr_write(m, tmp("dtypes.apr"), NULL, &err), RF_OK, "%s", err.message);
    size_t n;
    uint8_t *d = read_file(tmp("dtypes.apr"), &n);
    uint64_t p = rf_load_le64(d + 24);
    for (size_t i = 0; i < 12; i++) {
        cr_assert_eq(d[p + 2 + 3], types[i].code, "%s: code %u", rf_dtype_name(types[i].dtype),
                     d[p + 5]);
        p += 20 + 3 + 8;
    }
    free(d);
    rf_model *r = rf_model_open(tmp("dtypes.apr"), NULL, &err);
    cr_assert_not_null(r, "%s", err.message);
    for (size_t i = 0; i < 12; i++) {
        const rf_tensor *t = rf_model_tensor(r, i);
        cr_assert_eq(t->dtype, types[i].dtype);
        cr_assert_eq(t->nbytes, types[i].bytes);
        cr_assert_eq(memcmp(t->data, payload, t->nbytes), 0);
    }
    rf_model_free(r);
    rf_model_free(m);
    NO_LEAKS();
}
