/* The checks and records of rf_convert (rosetta/convert.h, docs/convert.md): the stop-the-line
 * checks (NaN / Inf, the contract's structural rules) leave nothing behind; types a format
 * cannot hold are refused or converted and reported; provenance lands in every format, with a
 * time only from SOURCE_DATE_EPOCH, and replaces an older record; rf_convert_compare classifies
 * kept, widened, quantized and broken tensors; a difference found before the rename fails with
 * RF_ERR_MISMATCH; a directory output replaces an earlier checkpoint at once and never the
 * source or foreign files; --arch; and the memory release never touches a caller's buffer. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/test_fs.h"
#include "model_internal.h"
#include "rosetta/apr.h"
#include "rosetta/convert.h"
#include "rosetta/gguf.h"
#include "rosetta/half.h"
#include "rosetta/safetensors.h"

static char dir[512];

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/test-tmp/unit-convert-checks-%d", ROSETTA_BUILD, (int)getpid());
    test_remove_tree(dir);
    mkdir(ROSETTA_BUILD "/test-tmp", 0755);
    cr_assert_eq(mkdir(dir, 0755), 0);
}

static void teardown(void) { test_remove_tree(dir); }

TestSuite(convert_checks, .init = setup, .fini = teardown);

static const char *at(const char *name)
{
    static char buf[4][640];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static rf_model *open_path(const char *path)
{
    rf_error err = {0};
    rf_model *m = rf_model_open(path, NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    return m;
}

static rf_model *open_fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/fixtures/%s", ROSETTA_ROOT, name);
    return open_path(path);
}

/* A copy of src (metadata, config, tokenizer; tensors borrowed) whose tensor `name` gets data
 * (and shape, when shape0 > 0). */
static rf_model *altered(const rf_model *src, const char *name, const void *data, uint64_t shape0)
{
    rf_error err = {0};
    rf_model *m = rf_model_new(rf_model_format(src), &err);
    cr_assert_not_null(m);
    cr_assert_eq(rf_model_set_path(m, rf_model_path(src), &err), RF_OK);
    for (size_t i = 0; i < rf_model_n_kv(src); i++)
        cr_assert_eq(
            rf_model_add_kv(m, rf_model_kv(src, i)->key, &rf_model_kv(src, i)->value, &err), RF_OK);
    cr_assert_eq(rfi_model_copy_config(m, src, &err), RF_OK);
    cr_assert_eq(rfi_model_copy_tokenizer(m, src, &err), RF_OK);
    for (size_t i = 0; i < rf_model_n_tensors(src); i++) {
        rf_tensor t = *rf_model_tensor(src, i);
        if (strcmp(t.name, name) == 0) {
            t.data = data;
            if (shape0 > 0) {
                t.nbytes = t.nbytes / t.shape[0] * shape0;
                t.shape[0] = shape0;
            }
        }
        cr_assert_eq(rf_model_add_tensor(m, &t, &err), RF_OK, "%s", err.message);
    }
    return m;
}

static uint8_t *copy_of(const rf_model *m, const char *name, uint64_t *n)
{
    const rf_tensor *t = rf_model_find_tensor(m, name);
    cr_assert_not_null(t, "%s", name);
    uint8_t *b = malloc(t->nbytes);
    memcpy(b, t->data, t->nbytes);
    *n = t->nbytes;
    return b;
}

/* ---- stop the line ------------------------------------------------------------------------- */

/* The scan reads raw data in 256 KiB blocks (SCAN_BLOCK): a value past the first block is
 * counted and named by its index in the tensor, not in the block. */
Test(convert_checks, nan_past_the_first_scan_block)
{
    rf_model *src = open_fixture("tiny-qwen2");
    const char *w = "model.layers.1.mlp.down_proj.weight"; /* 256 x 768 BF16: 384 KiB */
    uint64_t n;
    uint8_t *bad = copy_of(src, w, &n);
    cr_assert_gt(n, 2 * 150001, "the tensor is smaller than the test needs");
    rf_store_le16(bad + 2 * 150000, 0x7fc0); /* a BF16 NaN, in the second block */
    rf_store_le16(bad + 2 * 190000, 0x7f80); /* +Inf, in the same block */
    rf_model *m = altered(src, w, bad, 0);
    rf_convert_params p = rf_convert_params_default();
    p.check_values = true;
    rf_error err = {0};
    cr_assert_eq(rf_convert(m, &p, at("nan-block.apr"), NULL, &err), RF_ERR_CONTRACT);
    cr_assert(strstr(err.message, "1 NaN and 1 infinite") && strstr(err.message, "index 150000"),
              "%s", err.message);
    cr_assert(!exists(at("nan-block.apr")));
    rf_model_free(m);
    free(bad);
    rf_model_free(src);
}

Test(convert_checks, nan_and_contract_stop_before_writing)
{
    rf_model *src = open_fixture("tiny-qwen2");
    const char *w = "model.layers.1.mlp.down_proj.weight";
    uint64_t n;
    uint8_t *bad = copy_of(src, w, &n);
    rf_store_le16(bad + 2 * 1234, 0x7fc0); /* a BF16 NaN */
    rf_store_le16(bad + 2 * 4321, 0xff80); /* -Inf */
    rf_model *m = altered(src, w, bad, 0);
    rf_convert_params p = rf_convert_params_default();
    p.check_values = true;
    rf_error err = {0};
    const char *outs[] = {"nan.gguf", "nan.apr", "nan.safetensors", "nan-hf"};
    for (size_t i = 0; i < 4; i++) {
        p.format = i == 3 ? RF_FORMAT_SAFETENSORS : RF_FORMAT_UNKNOWN; /* a directory */
        cr_assert_eq(rf_convert(m, &p, at(outs[i]), NULL, &err), RF_ERR_CONTRACT, "%s", outs[i]);
        cr_assert(strstr(err.message, "quality.nan_inf") && strstr(err.message, w) &&
                      strstr(err.message, "1 NaN and 1 infinite") &&
                      strstr(err.message, "index 1234"),
                  "%s", err.message);
        cr_assert(!exists(at(outs[i])), "%s written", outs[i]);
    }
    /* the same values quantized: scanned as F32 values before quantizing */
    p.format = RF_FORMAT_UNKNOWN;
    p.quantize = true;
    p.plan = rf_quant_plan_options_default(RF_MIX_Q8_0);
    cr_assert_eq(rf_convert(m, &p, at("nan-q8.gguf"), NULL, &err), RF_ERR_CONTRACT);
    cr_assert(strstr(err.message, "quality.nan_inf"), "%s", err.message);
    /* without the check the values are written as they are */
    p.quantize = false;
    p.check_values = false;
    cr_assert_eq(rf_convert(m, &p, at("nan.apr"), NULL, &err), RF_OK, "%s", err.message);
    rf_model_free(m);
    free(bad);

    /* the contract's structural rules: a shape against the config, reported in full */
    const char *k = "model.layers.0.self_attn.k_proj.weight";
    uint8_t *kd = copy_of(src, k, &n);
    m = altered(src, k, kd, 64); /* [64, 256] where [128, 256] is due */
    p.check_contract = true;
    rf_convert_report *r = NULL;
    cr_assert_eq(rf_convert(m, &p, at("shape.apr"), &r, &err), RF_ERR_CONTRACT);
    cr_assert(strstr(err.message, "layout.shape") && strstr(err.message, k), "%s", err.message);
    cr_assert_not_null(r, "the report carries the violations");
    cr_assert_not_null(r->contract);
    cr_assert_null(r->plan, "stopped before planning");
    bool found = false;
    for (size_t i = 0; i < rf_contract_report_n_violations(r->contract); i++)
        found |= strcmp(rf_contract_report_violation(r->contract, i)->rule, "layout.shape") == 0;
    cr_assert(found);
    cr_assert(!exists(at("shape.apr")));
    rf_convert_report_free(r);
    rf_model_free(m);
    free(kd);
    rf_model_free(src);
}

/* A model read from memory: the page release must not touch the caller's buffer (MADV_DONTNEED
 * would zero anonymous memory). */
Test(convert_checks, memory_models_keep_their_bytes)
{
    rf_model *src = open_fixture("tiny-qwen2");
    rf_error err = {0};
    cr_assert_eq(rf_gguf_write(src, at("m.gguf"), NULL, &err), RF_OK, "%s", err.message);
    rf_model_free(src);
    FILE *f = fopen(at("m.gguf"), "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    uint8_t *buf = malloc((size_t)size), *keep = malloc((size_t)size);
    cr_assert_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    memcpy(keep, buf, (size_t)size);
    rf_model *m = rf_gguf_open_memory(buf, (uint64_t)size, "m.gguf", NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    rf_convert_params p = rf_convert_params_default();
    p.check_values = true;
    p.provenance = true;
    p.compare = true;
    cr_assert_eq(rf_convert(m, &p, at("m.apr"), NULL, &err), RF_OK, "%s", err.message);
    cr_assert_eq(memcmp(buf, keep, (size_t)size), 0, "the caller's buffer changed");
    rf_model_free(m);
    free(buf);
    free(keep);
}

/* ---- types a format cannot hold ------------------------------------------------------------- */

Test(convert_checks, unheld_types)
{
    rf_model *src = open_fixture("tiny-qwen2");
    rf_convert_params p = rf_convert_params_default();
    p.quantize = true;
    p.plan = rf_quant_plan_options_default(RF_MIX_Q8_0);
    rf_error err = {0};
    cr_assert_eq(rf_convert(src, &p, at("q8.gguf"), NULL, &err), RF_OK, "%s", err.message);
    rf_model_free(src);
    rf_model *q8 = open_path(at("q8.gguf"));
    p = rf_convert_params_default();
    cr_assert_eq(rf_convert(q8, &p, at("q8.apr"), NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "cannot hold Q8_0"), "%s", err.message);
    cr_assert(!exists(at("q8.apr")));
    p.convert_unheld = true;
    p.compare = true;
    rf_convert_report *r = NULL;
    cr_assert_eq(rf_convert(q8, &p, at("q8.apr"), &r, &err), RF_OK, "%s", err.message);
    size_t n_q8 = 0;
    for (size_t i = 0; i < rf_model_n_tensors(q8); i++)
        n_q8 += rf_model_tensor(q8, i)->dtype == RF_DTYPE_Q8_0;
    cr_assert_gt(n_q8, 0);
    cr_assert_eq(r->n_unheld, n_q8);
    cr_assert_str_eq(r->unheld_types, "Q8_0");
    cr_assert_eq(r->compare_counts[RF_COMPARE_EXACT], n_q8, "dequantized values kept exactly");
    cr_assert_eq(r->compare_counts[RF_COMPARE_VIOLATION], 0);
    rf_convert_report_free(r);
    rf_model *apr = open_path(at("q8.apr"));
    for (size_t i = 0; i < rf_model_n_tensors(apr); i++)
        cr_assert_neq(rf_model_tensor(apr, i)->dtype, RF_DTYPE_Q8_0);
    rf_model_free(apr);
    /* requantized on request, within the type's bound */
    p.unheld_dtype = RF_DTYPE_Q6_K;
    cr_assert_eq(rf_convert(q8, &p, at("q6.apr"), &r, &err), RF_OK, "%s", err.message);
    cr_assert_eq(r->compare_counts[RF_COMPARE_BOUNDED], n_q8);
    cr_assert_gt(r->worst_rel_rmse, 0);
    cr_assert_leq(r->worst_rel_rmse, rf_compare_bound(RF_DTYPE_Q6_K));
    rf_convert_report_free(r);
    /* a type the format cannot hold either is refused */
    p.unheld_dtype = RF_DTYPE_Q5_0;
    cr_assert_eq(rf_convert(q8, &p, at("q5.apr"), NULL, &err), RF_ERR_ARGUMENT);
    /* SafeTensors holds no quantized type: dequantized */
    p.unheld_dtype = RF_DTYPE_F32;
    p.format = RF_FORMAT_SAFETENSORS;
    cr_assert_eq(rf_convert(q8, &p, at("q8-hf"), &r, &err), RF_OK, "%s", err.message);
    cr_assert_eq(r->n_unheld, n_q8);
    rf_convert_report_free(r);
    rf_model_free(q8);
}

/* ---- provenance ------------------------------------------------------------------------------ */

static char *provenance_of(const char *path)
{
    rf_model *m = open_path(path);
    char *text = rf_model_provenance(m);
    rf_model_free(m);
    return text;
}

Test(convert_checks, provenance_in_every_format)
{
    rf_model *src = open_fixture("tiny-qwen2");
    rf_convert_params p = rf_convert_params_default();
    p.provenance = true;
    rf_error err = {0};
    rf_convert_report *r = NULL;
    unsetenv("SOURCE_DATE_EPOCH");
    const char *outs[] = {"p.gguf", "p.apr", "p.safetensors", "p-hf/model.safetensors"};
    for (size_t i = 0; i < 4; i++) {
        const char *out = i == 3 ? at("p-hf") : at(outs[i]);
        p.format = i == 3 ? RF_FORMAT_SAFETENSORS : RF_FORMAT_UNKNOWN;
        cr_assert_eq(rf_convert(src, &p, out, &r, &err), RF_OK, "%s", err.message);
        cr_assert_str_eq(r->source_digest, "xxh3-64:1e5eef77558d9ab0",
                         "the digest of the fixture's tensor data");
        char *text = provenance_of(at(outs[i]));
        cr_assert_not_null(text, "%s: no provenance", outs[i]);
        cr_assert(strstr(text, "\"source\":\"tiny-qwen2\"") &&
                      strstr(text, "\"source_format\":\"safetensors\"") &&
                      strstr(text, "\"source_digest\":\"xxh3-64:1e5eef77558d9ab0\"") &&
                      strstr(text, "\"rosetta_version\":") && strstr(text, "\"options\":\"--to ") &&
                      !strstr(text, "created"),
                  "%s: %s", outs[i], text);
        free(text);
        rf_convert_report_free(r);
    }
    p.format = RF_FORMAT_UNKNOWN;
    /* the GGUF carries the companion files; read back, they are the fixture's */
    rf_model *g = open_path(at("p.gguf"));
    const rf_kv *cfg = rf_model_find_kv(g, "rosetta.hf.config.json");
    cr_assert(cfg && cfg->value.type == RF_VALUE_STRING &&
              strstr(cfg->value.as.str.data, "\"attention_dropout\""));
    /* converting a converted file replaces the record: one set of keys */
    cr_assert_eq(rf_convert(g, &p, at("again.gguf"), NULL, &err), RF_OK, "%s", err.message);
    rf_model *again = open_path(at("again.gguf"));
    size_t n_source = 0;
    for (size_t i = 0; i < rf_model_n_kv(again); i++)
        n_source += strcmp(rf_model_kv(again, i)->key, "rosetta.provenance.source") == 0;
    cr_assert_eq(n_source, 1);
    cr_assert_str_eq(rf_model_find_kv(again, "rosetta.provenance.source")->value.as.str.data,
                     "p.gguf");
    rf_model_free(again);
    rf_model_free(g);
    /* a time only from SOURCE_DATE_EPOCH */
    setenv("SOURCE_DATE_EPOCH", "0", 1);
    cr_assert_eq(rf_convert(src, &p, at("t.apr"), NULL, &err), RF_OK, "%s", err.message);
    unsetenv("SOURCE_DATE_EPOCH");
    char *text = provenance_of(at("t.apr"));
    cr_assert(text && strstr(text, "\"created\":\"1970-01-01T00:00:00Z\""), "%s", text);
    free(text);
    /* without provenance: no record, no rosetta keys */
    p.provenance = false;
    cr_assert_eq(rf_convert(src, &p, at("n.gguf"), NULL, &err), RF_OK, "%s", err.message);
    cr_assert_null(provenance_of(at("n.gguf")));
    rf_model_free(src);
}

/* ---- rf_convert_compare ---------------------------------------------------------------------- */

Test(convert_checks, compare_classifies)
{
    rf_model *src = open_fixture("tiny-qwen2");
    rf_error err = {0};
    rf_compare_report *c = NULL;
    cr_assert_eq(rf_convert_compare(src, src, NULL, &c, &err), RF_OK, "%s", err.message);
    cr_assert_eq(c->counts[RF_COMPARE_IDENTICAL], rf_model_n_tensors(src));
    rf_compare_report_free(c);

    /* widened (GGUF norms), quantized (Q8_0), a changed value, a missing and an extra tensor */
    rf_convert_params p = rf_convert_params_default();
    cr_assert_eq(rf_convert(src, &p, at("w.gguf"), NULL, &err), RF_OK, "%s", err.message);
    rf_model *w = open_path(at("w.gguf"));
    cr_assert_eq(rf_convert_compare(src, w, NULL, &c, &err), RF_OK, "%s", err.message);
    cr_assert_gt(c->counts[RF_COMPARE_EXACT], 0, "widened norms compare exact");
    cr_assert_eq(c->counts[RF_COMPARE_VIOLATION], 0);
    rf_compare_report_free(c);
    /* and the other way: GGUF names and F32 norms against the SafeTensors names and BF16 */
    cr_assert_eq(rf_convert_compare(w, src, NULL, &c, &err), RF_OK, "%s", err.message);
    cr_assert_eq(c->counts[RF_COMPARE_VIOLATION], 0);
    cr_assert_eq(c->counts[RF_COMPARE_IDENTICAL] + c->counts[RF_COMPARE_EXACT],
                 rf_model_n_tensors(src));
    rf_compare_report_free(c);
    rf_model_free(w);
    p.quantize = true;
    p.plan = rf_quant_plan_options_default(RF_MIX_Q8_0);
    cr_assert_eq(rf_convert(src, &p, at("q.gguf"), NULL, &err), RF_OK, "%s", err.message);
    rf_model *q = open_path(at("q.gguf"));
    cr_assert_eq(rf_convert_compare(src, q, NULL, &c, &err), RF_OK, "%s", err.message);
    cr_assert_gt(c->counts[RF_COMPARE_BOUNDED], 0);
    cr_assert_eq(c->counts[RF_COMPARE_VIOLATION], 0);
    const rf_compare_entry *worst = &c->entries[c->worst];
    cr_assert_eq(worst->kind, RF_COMPARE_BOUNDED);
    cr_assert(worst->rel_rmse > 0 && worst->rel_rmse <= rf_compare_bound(RF_DTYPE_Q8_0));
    rf_compare_report_free(c);
    rf_model_free(q);

    const char *name = "model.layers.0.mlp.gate_proj.weight";
    uint64_t n;
    uint8_t *b = copy_of(src, name, &n);
    b[100] ^= 0x40;
    rf_model *changed = altered(src, name, b, 0);
    cr_assert_eq(rf_convert_compare(src, changed, NULL, &c, &err), RF_OK, "%s", err.message);
    cr_assert_eq(c->counts[RF_COMPARE_VIOLATION], 1);
    cr_assert_str_eq(c->entries[c->worst].name, name);
    cr_assert(strstr(c->entries[c->worst].detail, "first at byte 100"), "%s",
              c->entries[c->worst].detail);
    rf_compare_report_free(c);
    rf_model_free(changed);
    free(b);

    /* another model: shapes and tensors differ */
    rf_model *odd = open_fixture("tiny-qwen2-odd");
    cr_assert_eq(rf_convert_compare(src, odd, NULL, &c, &err), RF_OK, "%s", err.message);
    cr_assert_gt(c->counts[RF_COMPARE_VIOLATION], 10);
    rf_compare_report_free(c);
    rf_compare_options subset = {.subset = true};
    cr_assert_eq(rf_convert_compare(odd, src, &subset, &c, &err), RF_OK, "%s", err.message);
    rf_compare_report_free(c);
    rf_model_free(odd);

    /* bounds: 0 for exact types, wider for fewer bits */
    cr_assert_eq(rf_compare_bound(RF_DTYPE_F32), 0);
    cr_assert(rf_compare_bound(RF_DTYPE_F16) < rf_compare_bound(RF_DTYPE_BF16));
    cr_assert(rf_compare_bound(RF_DTYPE_Q8_0) < rf_compare_bound(RF_DTYPE_Q6_K));
    cr_assert(rf_compare_bound(RF_DTYPE_Q6_K) < rf_compare_bound(RF_DTYPE_Q5_K));
    cr_assert(rf_compare_bound(RF_DTYPE_Q5_K) < rf_compare_bound(RF_DTYPE_Q4_K));
    cr_assert(rf_compare_bound(RF_DTYPE_Q4_K) < rf_compare_bound(RF_DTYPE_Q3_K));
    cr_assert(rf_compare_bound(RF_DTYPE_Q3_K) < rf_compare_bound(RF_DTYPE_Q2_K));
    cr_assert_str_eq(rf_compare_kind_name(RF_COMPARE_VIOLATION), "violation");
    rf_model_free(src);
}

/* The comparison inside rf_convert catches a file that changed after the writer's read-back
 * (here: the caller's hook flips a byte of tensor data in the temp file). */
static rf_status corrupt(const char *temp_path, const char *final_path, void *ctx, rf_error *err)
{
    (void)final_path;
    (void)err;
    FILE *f = fopen(temp_path, "r+b");
    cr_assert_not_null(f);
    fseek(f, -100, SEEK_END); /* inside the last tensor's data */
    int c = fgetc(f);
    fseek(f, -100, SEEK_END);
    fputc(c ^ 0x10, f);
    fclose(f);
    (*(int *)ctx)++;
    return RF_OK;
}

Test(convert_checks, mismatch_leaves_nothing)
{
    rf_model *src = open_fixture("tiny-qwen2");
    rf_convert_params p = rf_convert_params_default();
    int calls = 0;
    p.compare = true;
    p.verify = corrupt;
    p.ctx = &calls;
    rf_error err = {0};
    rf_convert_report *r = NULL;
    cr_assert_eq(rf_convert(src, &p, at("bad.safetensors"), &r, &err), RF_ERR_MISMATCH, "%s",
                 err.message);
    cr_assert_eq(calls, 1);
    cr_assert(strstr(err.message, "differ from the source"), "%s", err.message);
    cr_assert_eq(r->compare_counts[RF_COMPARE_VIOLATION], 1);
    cr_assert(strstr(r->first_violation, "bytes differ"), "%s", r->first_violation);
    cr_assert(!exists(at("bad.safetensors")));
    rf_convert_report_free(r);
    rf_model_free(src);
}

/* ---- directory outputs ------------------------------------------------------------------------
 */

Test(convert_checks, directory_output)
{
    rf_model *a = open_fixture("tiny-qwen2"), *b = open_fixture("tiny-qwen2-tied");
    rf_convert_params p = rf_convert_params_default();
    p.format = RF_FORMAT_SAFETENSORS;
    rf_error err = {0};
    cr_assert_eq(rf_convert(a, &p, at("ck"), NULL, &err), RF_OK, "%s", err.message);
    cr_assert(exists(at("ck/model.safetensors")) && exists(at("ck/config.json")));
    /* an earlier checkpoint is replaced as a whole (the tied model has no lm_head) */
    cr_assert_eq(rf_convert(b, &p, at("ck/"), NULL, &err), RF_OK, "%s", err.message);
    rf_model *back = open_path(at("ck"));
    cr_assert_null(rf_model_find_tensor(back, "lm_head.weight"));
    rf_model_free(back);
    /* nothing left beside it */
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += strncmp(e->d_name, "ck", 2) == 0;
    closedir(d);
    cr_assert_eq(n, 1, "staging directories left");
    /* a directory with other files, and the source's own directory, are refused */
    mkdir(at("mine"), 0755);
    FILE *f = fopen(at("mine/notes.txt"), "w");
    fputs("mine", f);
    fclose(f);
    cr_assert_eq(rf_convert(a, &p, at("mine"), NULL, &err), RF_ERR_WRITE);
    cr_assert(strstr(err.message, "notes.txt"), "%s", err.message);
    cr_assert(exists(at("mine/notes.txt")));
    rf_model *ck = open_path(at("ck"));
    cr_assert_eq(rf_convert(ck, &p, at("ck"), NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "is the directory of the input model"), "%s", err.message);
    rf_model_free(ck);
    rf_model_free(a);
    rf_model_free(b);
}

/* ---- --arch ---------------------------------------------------------------------------------- */

Test(convert_checks, architecture_override)
{
    rf_model *src = open_fixture("tiny-qwen2");
    rf_model *m = altered(src, "", NULL, 0);
    rf_model_config_mut(m)->architecture = rf_model_strdup(m, "mamba");
    rf_model_config_mut(m)->rope_type = RF_ROPE_UNKNOWN;
    rf_convert_params p = rf_convert_params_default();
    p.check_contract = true;
    rf_error err = {0};
    cr_assert_eq(rf_convert(m, &p, at("a.gguf"), NULL, &err), RF_ERR_CONTRACT);
    cr_assert(strstr(err.message, "family.unknown_architecture"), "%s", err.message);
    p.architecture = "qwen2";
    cr_assert_eq(rf_convert(m, &p, at("a.gguf"), NULL, &err), RF_OK, "%s", err.message);
    rf_model *g = open_path(at("a.gguf"));
    cr_assert_str_eq(rf_model_find_kv(g, "general.architecture")->value.as.str.data, "qwen2");
    cr_assert_eq(rf_model_config_get(g)->rope_type, RF_ROPE_NEOX);
    rf_model_free(g);
    rf_model_free(m);
    rf_model_free(src);
}
