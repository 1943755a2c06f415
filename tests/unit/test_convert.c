/* The conversion pipeline (rosetta/convert.h): a format change gives the bytes of the format
 * writers, the hooks run in order and can stop the work, extra metadata lands in each format,
 * the report says what was done, and nothing is left behind on failure. The quantizing path
 * is checked byte for byte by tests/tools/written_bytes.sh and against llama.cpp by the
 * oracle tests. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/test_fs.h"
#include "rosetta/apr.h"
#include "rosetta/convert.h"
#include "rosetta/gguf.h"
#include "rosetta/safetensors.h"

static char dir[512];

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/test-tmp/unit-convert-%d", ROSETTA_BUILD, (int)getpid());
    test_remove_tree(dir);
    mkdir(ROSETTA_BUILD "/test-tmp", 0755);
    cr_assert_eq(mkdir(dir, 0755), 0);
}

static void teardown(void) { test_remove_tree(dir); }

TestSuite(convert, .init = setup, .fini = teardown);

static const char *at(const char *name)
{
    static char buf[4][640];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static rf_model *open_fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/fixtures/%s", ROSETTA_ROOT, name);
    rf_error err = {0};
    rf_model *m = rf_model_open(path, NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    return m;
}

static void assert_same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    cr_assert(fa && fb, "cannot open %s or %s", a, b);
    long pos = 0;
    int ca, cb;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        cr_assert_eq(ca, cb, "%s and %s differ at byte %ld", a, b, pos);
        pos++;
    } while (ca != EOF);
    fclose(fa);
    fclose(fb);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A format change (no quantize) writes what the format writer writes for the model itself,
 * from SafeTensors (untied and tied) and from the GGUF and APR copies. The two files of each
 * pair have the same name in two directories (APR records the file stem as the model name). */
Test(convert, format_change_equals_the_writers)
{
    mkdir(at("ref"), 0755);
    mkdir(at("cv"), 0755);
    const char *fixtures[] = {"tiny-qwen2", "tiny-qwen2-tied"};
    const char *exts[] = {"gguf", "apr", "safetensors"};
    for (size_t f = 0; f < 2; f++) {
        rf_model *st = open_fixture(fixtures[f]);
        rf_error err = {0};
        cr_assert_eq(rf_gguf_write(st, at("ref/m.gguf"), NULL, &err), RF_OK, "%s", err.message);
        cr_assert_eq(rf_apr_write(st, at("ref/m.apr"), NULL, &err), RF_OK, "%s", err.message);
        cr_assert_eq(rf_safetensors_write(st, at("ref/m.safetensors"), NULL, &err), RF_OK, "%s",
                     err.message);
        rf_model *gguf = rf_model_open(at("ref/m.gguf"), NULL, &err);
        cr_assert_not_null(gguf, "%s", err.message);
        rf_model *apr = rf_model_open(at("ref/m.apr"), NULL, &err);
        cr_assert_not_null(apr, "%s", err.message);
        cr_assert_eq(rf_gguf_write(apr, at("ref/a.gguf"), NULL, &err), RF_OK, "%s", err.message);
        cr_assert_eq(rf_apr_write(gguf, at("ref/g.apr"), NULL, &err), RF_OK, "%s", err.message);
        rf_convert_params p = rf_convert_params_default();
        char path[64];
        for (size_t e = 0; e < 3; e++) {
            snprintf(path, sizeof path, "cv/m.%s", exts[e]);
            cr_assert_eq(rf_convert(st, &p, at(path), NULL, &err), RF_OK, "%s", err.message);
            snprintf(path, sizeof path, "m.%s", exts[e]);
            char ref[80], cv[80];
            snprintf(ref, sizeof ref, "ref/%s", path);
            snprintf(cv, sizeof cv, "cv/%s", path);
            assert_same_file(at(ref), at(cv));
        }
        cr_assert_eq(rf_convert(apr, &p, at("cv/a.gguf"), NULL, &err), RF_OK, "%s", err.message);
        assert_same_file(at("ref/a.gguf"), at("cv/a.gguf"));
        cr_assert_eq(rf_convert(gguf, &p, at("cv/g.apr"), NULL, &err), RF_OK, "%s", err.message);
        assert_same_file(at("ref/g.apr"), at("cv/g.apr"));
        /* GGUF -> GGUF and APR -> APR reproduce the file */
        cr_assert_eq(rf_convert(gguf, &p, at("cv/again.gguf"), NULL, &err), RF_OK, "%s",
                     err.message);
        assert_same_file(at("ref/m.gguf"), at("cv/again.gguf"));
        cr_assert_eq(rf_convert(apr, &p, at("cv/m.apr"), NULL, &err), RF_OK, "%s", err.message);
        assert_same_file(at("ref/m.apr"), at("cv/m.apr"));
        rf_model_free(gguf);
        rf_model_free(apr);
        rf_model_free(st);
    }
}

typedef struct calls {
    int plan, progress, done, verify;
    bool fail_plan, fail_verify;
    char verified[640];
} calls;

static rf_status on_plan(const rf_convert_report *r, void *ctx, rf_error *err)
{
    calls *c = ctx;
    c->plan++;
    cr_assert_eq(r->n_tensors, r->plan->n_entries);
    cr_assert(!r->written);
    if (c->fail_plan)
        return rf_error_set(err, RF_ERR_CONTRACT, "contract: stop");
    return RF_OK;
}

static void on_progress(const rf_convert_report *r, size_t i, void *ctx)
{
    calls *c = ctx;
    cr_assert_eq(c->plan, 1, "progress before the plan hook");
    if (i == r->n_tensors) {
        c->done++;
        return;
    }
    cr_assert(r->tensors[i].entry->convert, "progress for a tensor that is not converted");
    c->progress++;
}

static rf_status verify(const char *temp_path, const char *final_path, void *ctx, rf_error *err)
{
    calls *c = ctx;
    c->verify++;
    snprintf(c->verified, sizeof c->verified, "%s", final_path);
    cr_assert(exists(temp_path));
    cr_assert(!exists(final_path), "verify runs before the rename");
    rf_model *m = rf_model_open(temp_path, NULL, err);
    cr_assert_not_null(m, "%s", err->message);
    rf_model_free(m);
    return c->fail_verify ? rf_error_set(err, RF_ERR_CONTRACT, "verify: mismatch") : RF_OK;
}

Test(convert, hooks_report_and_failures)
{
    rf_model *src = open_fixture("tiny-qwen2-tied");
    calls c = {0};
    rf_convert_params p = rf_convert_params_default();
    p.quantize = true;
    p.plan = rf_quant_plan_options_default(RF_MIX_Q4_K_M);
    p.on_plan = on_plan;
    p.on_progress = on_progress;
    p.verify = verify;
    p.ctx = &c;
    rf_convert_report *r = NULL;
    rf_error err = {0};
    cr_assert_eq(rf_convert(src, &p, at("q.gguf"), &r, &err), RF_OK, "%s", err.message);
    cr_assert_not_null(r);
    cr_assert(r->written);
    cr_assert_eq(r->format, RF_FORMAT_GGUF);
    cr_assert_eq(c.plan, 1);
    cr_assert_eq(c.done, 1);
    cr_assert_eq((size_t)c.progress, r->plan->n_convert);
    cr_assert_eq(c.verify, 1);
    cr_assert_str_eq(c.verified, at("q.gguf"));
    /* tied: GGUF has no output.weight; the token embedding takes the head's rule */
    bool embd = false;
    for (size_t i = 0; i < r->n_tensors; i++) {
        cr_assert_str_neq(r->tensors[i].output_name, "output.weight");
        cr_assert_eq(r->tensors[i].source_index, r->tensors[i].entry->tensor_index);
        if (strcmp(r->tensors[i].output_name, "token_embd.weight") == 0) {
            embd = true;
            cr_assert_str_eq(r->tensors[i].source_name, "model.embed_tokens.weight");
        }
    }
    cr_assert(embd);
    cr_assert_eq(r->n_head_copies, 0);
    rf_convert_report_free(r);

    /* an APR source of a tied model carries lm_head.weight; the plan leaves it out and the
     * APR output keeps it as a copy of the converted embedding */
    cr_assert_eq(rf_apr_write(src, at("tied.apr"), NULL, &err), RF_OK, "%s", err.message);
    rf_model *tied_apr = rf_model_open(at("tied.apr"), NULL, &err);
    cr_assert_not_null(tied_apr, "%s", err.message);
    cr_assert_not_null(rf_model_find_tensor(tied_apr, "lm_head.weight"));
    c = (calls){0};
    p.plan = rf_quant_plan_options_default(RF_MIX_Q6_K);
    cr_assert_eq(rf_convert(tied_apr, &p, at("q.apr"), &r, &err), RF_OK, "%s", err.message);
    cr_assert_eq(r->n_head_copies, 1);
    cr_assert_eq(r->n_tensors + 1, rf_model_n_tensors(tied_apr));
    rf_model_free(tied_apr);
    rf_model *apr = rf_model_open(at("q.apr"), NULL, &err);
    cr_assert_not_null(apr, "%s", err.message);
    const rf_tensor *head = rf_model_find_tensor(apr, "lm_head.weight");
    const rf_tensor *embd_t = rf_model_find_tensor(apr, "model.embed_tokens.weight");
    cr_assert(head && embd_t);
    cr_assert_eq(head->dtype, RF_DTYPE_Q6_K);
    cr_assert_eq(head->nbytes, embd_t->nbytes);
    cr_assert_eq(memcmp(head->data, embd_t->data, head->nbytes), 0);
    rf_model_free(apr);
    rf_convert_report_free(r);

    /* the plan hook stops the work: its error comes back, nothing is written */
    c = (calls){.fail_plan = true};
    cr_assert_eq(rf_convert(src, &p, at("stopped.gguf"), &r, &err), RF_ERR_CONTRACT);
    cr_assert_str_eq(err.message, "contract: stop");
    cr_assert_not_null(r, "a report once a plan exists");
    cr_assert(!r->written);
    cr_assert_eq(c.progress, 0);
    cr_assert(!exists(at("stopped.gguf")));
    rf_convert_report_free(r);

    /* a failing verify leaves nothing at the destination, and names it */
    c = (calls){.fail_verify = true};
    cr_assert_eq(rf_convert(src, &p, at("bad.gguf"), NULL, &err), RF_ERR_CONTRACT);
    cr_assert(strstr(err.message, "bad.gguf") && strstr(err.message, "verify: mismatch"), "%s",
              err.message);
    cr_assert(!exists(at("bad.gguf")));

    /* dry run: plan only */
    c = (calls){0};
    p.dry_run = true;
    cr_assert_eq(rf_convert(src, &p, NULL, &r, &err), RF_ERR_ARGUMENT, "no path, no format");
    p.format = RF_FORMAT_GGUF;
    cr_assert_eq(rf_convert(src, &p, NULL, &r, &err), RF_OK, "%s", err.message);
    cr_assert_eq(c.plan, 1);
    cr_assert_eq(c.progress + c.done + c.verify, 0);
    cr_assert(!r->written);
    rf_convert_report_free(r);
    rf_model_free(src);
}

Test(convert, refusals)
{
    rf_model *src = open_fixture("tiny-qwen2");
    rf_convert_params p = rf_convert_params_default();
    rf_error err = {0};
    cr_assert_eq(rf_convert(src, &p, at("x.bin"), NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "cannot tell the output format"), "%s", err.message);
    p.quantize = true;
    p.plan = rf_quant_plan_options_default(RF_MIX_Q8_0);
    cr_assert_eq(rf_convert(src, &p, at("q.safetensors"), NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "cannot hold Q8_0"), "%s", err.message);
    cr_assert_eq(rf_convert(src, &p, at("q.apr"), NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "Q4_K") && strstr(err.message, "Q6_K"), "APR's types listed: %s",
              err.message);
    cr_assert(!exists(at("q.safetensors")) && !exists(at("q.apr")));

    /* requantizing refused on request, as llama-quantize without --allow-requantize */
    cr_assert_eq(rf_convert(src, &p, at("q8.gguf"), NULL, &err), RF_OK, "%s", err.message);
    rf_model *q8 = rf_model_open(at("q8.gguf"), NULL, &err);
    cr_assert_not_null(q8, "%s", err.message);
    p.plan = rf_quant_plan_options_default(RF_MIX_Q4_0);
    p.allow_requantize = false;
    cr_assert_eq(rf_convert(q8, &p, at("q4.gguf"), NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "requantized"), "%s", err.message);
    p.allow_requantize = true;
    rf_convert_report *r = NULL;
    cr_assert_eq(rf_convert(q8, &p, at("q4.gguf"), &r, &err), RF_OK, "%s", err.message);
    cr_assert_gt(r->n_requantized, 0);
    rf_convert_report_free(r);
    rf_model_free(q8);
    rf_model_free(src);
}

static const rf_kv *find_kv(const rf_model *m, const char *key)
{
    const rf_kv *kv = rf_model_find_kv(m, key);
    cr_assert_not_null(kv, "key %s missing", key);
    return kv;
}

Test(convert, extra_metadata_in_every_format)
{
    rf_model *src = open_fixture("tiny-qwen2");
    rf_kv prov = {"rosetta.provenance",
                  {.type = RF_VALUE_STRING, .as.str = {"from tiny-qwen2", 15}}};
    rf_convert_params p = rf_convert_params_default();
    p.extra_metadata = &prov;
    p.n_extra_metadata = 1;
    rf_error err = {0};
    const char *outs[] = {"e.gguf", "e.apr", "e.safetensors"};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(rf_convert(src, &p, at(outs[i]), NULL, &err), RF_OK, "%s", err.message);
        rf_model *m = rf_model_open(at(outs[i]), NULL, &err);
        cr_assert_not_null(m, "%s", err.message);
        const rf_kv *kv = find_kv(m, "rosetta.provenance");
        const char *text = kv->value.as.str.data;
        cr_assert(strstr(text, "from tiny-qwen2"), "%s: %s", outs[i], text);
        rf_model_free(m);
    }
    rf_kv other = {"x.other", {.type = RF_VALUE_U32, .as.u = 1}};
    p.extra_metadata = &other;
    cr_assert_eq(rf_convert(src, &p, at("o.safetensors"), NULL, &err), RF_ERR_ARGUMENT);
    rf_model_free(src);
}

/* rf_gguf_metadata is what the writer stores: same keys, types and values, in order. */
Test(convert, gguf_metadata_in_memory)
{
    rf_model *src = open_fixture("tiny-qwen2-odd");
    rf_error err = {0};
    rf_kv_list *list = NULL;
    cr_assert_eq(rf_gguf_metadata(src, NULL, &list, &err), RF_OK, "%s", err.message);
    cr_assert_eq(rf_gguf_write(src, at("m.gguf"), NULL, &err), RF_OK, "%s", err.message);
    rf_model *back = rf_model_open(at("m.gguf"), NULL, &err);
    cr_assert_not_null(back, "%s", err.message);
    rf_model_free(src); /* the list owns its values */
    cr_assert_eq(rf_kv_list_count(list), rf_model_n_kv(back));
    for (size_t i = 0; i < rf_model_n_kv(back); i++) {
        const rf_kv *a = rf_kv_list_get(list, i), *b = rf_model_kv(back, i);
        cr_assert_str_eq(a->key, b->key);
        cr_assert_eq(a->value.type, b->value.type, "%s", a->key);
        if (a->value.type == RF_VALUE_STRING)
            cr_assert_str_eq(a->value.as.str.data, b->value.as.str.data);
        else if (a->value.type == RF_VALUE_ARRAY)
            cr_assert_eq(a->value.as.arr.count, b->value.as.arr.count, "%s", a->key);
    }
    cr_assert_str_eq(rf_kv_list_find(list, "general.architecture")->value.as.str.data, "qwen2");
    cr_assert_null(rf_kv_list_find(list, "no.such.key"));
    rf_kv_list_free(list);
    rf_model_free(back);
}

/* The model-level planner maps names, leaves a tied head out and indexes the model's tensors. */
Test(convert, plan_for_model)
{
    rf_model *st = open_fixture("tiny-qwen2-tied");
    rf_error err = {0};
    cr_assert_eq(rf_apr_write(st, at("tied.apr"), NULL, &err), RF_OK, "%s", err.message);
    rf_model_free(st);
    rf_model *src = rf_model_open(at("tied.apr"), NULL, &err);
    cr_assert_not_null(src, "%s", err.message);
    rf_quant_plan_options o = rf_quant_plan_options_default(RF_MIX_Q4_K_M);
    rf_quant_plan *plan = NULL;
    cr_assert_eq(rf_quant_plan_for_model(src, &o, &plan, &err), RF_OK, "%s", err.message);
    cr_assert_eq(plan->n_entries + 1, rf_model_n_tensors(src), "the tied head is left out");
    const rf_quant_plan_entry *e = rf_quant_plan_find(plan, "token_embd.weight");
    cr_assert_not_null(e);
    cr_assert_str_eq(rf_model_tensor(src, e->tensor_index)->name, "model.embed_tokens.weight");
    cr_assert_str_eq(e->name, "token_embd.weight", "names are owned by the plan");
    cr_assert(strstr(e->reason, "tied"), "%s", e->reason);
    cr_assert_null(rf_quant_plan_find(plan, "output.weight"));
    rf_quant_model_info info = rf_quant_model_info_of(src);
    cr_assert_str_eq(info.architecture, "qwen2");
    cr_assert_eq(info.n_layer, rf_model_config_get(src)->n_layers);
    rf_quant_plan_free(plan);
    rf_model_free(src);
}
