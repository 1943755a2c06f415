/* rf_convert: the conversion pipeline (see rosetta/convert.h): plan, check, convert into the spill
 * file, assemble the output model, write it through the format's writer.
 * Not for: the type rules (quant_plan.c), the block math (quant.c) or the file layouts (the
 * writers); this file only connects them. */
#include "rosetta/convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "model_internal.h"
#include "rosetta/apr.h"
#include "rosetta/gguf.h"
#include "rosetta/imatrix.h"
#include "rosetta/names.h"
#include "rosetta/output.h"
#include "rosetta/quant.h"
#include "spill.h"
#include "write_hook.h"

rf_convert_params rf_convert_params_default(void)
{
    rf_convert_params p;
    memset(&p, 0, sizeof p);
    p.format = RF_FORMAT_UNKNOWN;
    p.plan = rf_quant_plan_options_default(RF_MIX_Q8_0);
    p.allow_requantize = true;
    return p;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

rf_format rf_convert_format_for_path(const char *path)
{
    if (path == NULL)
        return RF_FORMAT_UNKNOWN;
    if (ends_with(path, ".gguf"))
        return RF_FORMAT_GGUF;
    if (ends_with(path, ".apr"))
        return RF_FORMAT_APR;
    if (ends_with(path, ".safetensors"))
        return RF_FORMAT_SAFETENSORS;
    return RF_FORMAT_UNKNOWN;
}

/* The report and what it points to (the public struct comes first). */
typedef struct report_store {
    rf_convert_report pub;
    rf_quant_plan *plan;
    rf_convert_tensor *tensors;
    rf_model *names; /* owns output names */
} report_store;

void rf_convert_report_free(rf_convert_report *report)
{
    report_store *r = (report_store *)report;
    if (r == NULL)
        return;
    rf_quant_plan_free(r->plan);
    free(r->tensors);
    rf_model_free(r->names);
    free(r);
}

typedef struct job {
    const rf_model *src;
    const rf_convert_params *p;
    const char *out_path;
    rf_format format;
    bool gguf_src;
    report_store *rep;
    long *head_of; /* per source tensor: plan entry whose data a tied head copies, or -1 */
    rf_imatrix *im;
    spill *sp;
    uint64_t *out_offset; /* per plan entry: offset in the spill, or UINT64_MAX = source bytes */
    float *f32;           /* conversion buffers, kept here so that a SIGBUS abandon leaks none */
    uint64_t f32_cap;
    uint8_t *dst;
    uint64_t dst_cap;
} job;

static const char *source_name(const job *j)
{
    const char *path = rf_model_path(j->src);
    return path ? path : "the source model";
}

static uint64_t row_len(const rf_tensor *t) { return t->ndim > 0 ? t->shape[t->ndim - 1] : 1; }
static uint64_t expert_count(const rf_tensor *t)
{
    return t->ndim >= 3 ? t->shape[t->ndim - 3] : 1;
}

static const rf_tensor *entry_tensor(const job *j, const rf_quant_plan_entry *e)
{
    return rf_model_tensor(j->src, e->tensor_index);
}

/* ---- the plan --------------------------------------------------------------------------- */

/* A tensor of a SafeTensors/APR source that the GGUF writer stores as F32 (F16/BF16 vectors and
 * *_norm.weight), as llama.cpp's converter does. */
static bool widened_in_gguf(const rf_tensor *t, const char *gguf_name)
{
    size_t len = strlen(gguf_name), suffix = strlen("_norm.weight");
    bool norm = len >= suffix && strcmp(gguf_name + len - suffix, "_norm.weight") == 0;
    return (t->dtype == RF_DTYPE_F16 || t->dtype == RF_DTYPE_BF16) && (t->ndim <= 1 || norm);
}

static int by_source_index(const void *a, const void *b)
{
    size_t x = ((const rf_quant_plan_entry *)a)->tensor_index;
    size_t y = ((const rf_quant_plan_entry *)b)->tensor_index;
    return (x > y) - (x < y);
}

/* The plan of a format change: every tensor keeps its dtype, except what the GGUF writer widens.
 * Built on rf_quant_plan_for_model (names, tied head, order of a pure F32 plan), then reset to
 * the source types. */
static rf_status keep_plan(job *j, rf_quant_plan **out, rf_error *err)
{
    rf_quant_plan_options o = rf_quant_plan_options_default(RF_MIX_F32);
    o.pure = true;
    rf_status st = rf_quant_plan_for_model(j->src, &o, out, err);
    if (st != RF_OK)
        return st;
    rf_quant_plan *plan = *out;
    /* source order, as the writers take a model as it is */
    qsort(plan->entries, plan->n_entries, sizeof *plan->entries, by_source_index);
    const bool widen = !j->gguf_src && j->format == RF_FORMAT_GGUF;
    plan->n_convert = 0;
    plan->n_fallback = 0;
    plan->dst_bytes = 0;
    for (size_t i = 0; i < plan->n_entries; i++) {
        rf_quant_plan_entry *e = &plan->entries[i];
        const rf_tensor *t = entry_tensor(j, e);
        e->quantizable = false;
        e->fallback = false;
        e->chosen_dtype = e->dtype = e->src_dtype;
        e->convert = widen && widened_in_gguf(t, e->name);
        e->dst_bytes = e->src_bytes;
        snprintf(e->reason, sizeof e->reason, "kept");
        if (e->convert) {
            e->chosen_dtype = e->dtype = RF_DTYPE_F32;
            e->dst_bytes = e->n_elements * 4;
            snprintf(e->reason, sizeof e->reason, "widened to F32 as in a converted GGUF");
            plan->n_convert++;
        }
        plan->dst_bytes += e->dst_bytes;
    }
    return RF_OK;
}

static rf_status make_plan(job *j, rf_error *err)
{
    rf_quant_plan *plan = NULL;
    rf_status st;
    if (j->p->quantize) {
        rf_quant_plan_options o = j->p->plan;
        o.has_imatrix = j->p->imatrix_path != NULL;
        /* as convert_hf_to_gguf.py: what stays unquantized in a GGUF made from another format
         * is F32 */
        o.widen_kept_to_f32 = !j->gguf_src && j->format == RF_FORMAT_GGUF;
        st = rf_quant_plan_for_model(j->src, &o, &plan, err);
    } else {
        st = keep_plan(j, &plan, err);
    }
    if (st != RF_OK)
        return st;
    j->rep->plan = plan;
    j->rep->pub.plan = plan;
    j->rep->pub.n_tensors = plan->n_entries;
    size_t n = plan->n_entries, n_src = rf_model_n_tensors(j->src);
    j->rep->tensors = calloc(n ? n : 1, sizeof *j->rep->tensors);
    j->head_of = malloc((n_src ? n_src : 1) * sizeof *j->head_of);
    j->out_offset = malloc((n ? n : 1) * sizeof *j->out_offset);
    if (!j->rep->tensors || !j->head_of || !j->out_offset)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory planning %zu tensors", n);
    j->rep->pub.tensors = j->rep->tensors;
    for (size_t i = 0; i < n; i++) {
        const rf_quant_plan_entry *e = &plan->entries[i];
        const rf_tensor *t = entry_tensor(j, e);
        rf_convert_tensor *r = &j->rep->tensors[i];
        r->source_index = e->tensor_index;
        r->source_name = t->name;
        r->ndim = t->ndim;
        memcpy(r->shape, t->shape, sizeof r->shape);
        r->entry = e;
        const rf_dtype_info *info = rf_dtype_get(e->src_dtype);
        r->requantize = e->convert && info != NULL && info->kind == RF_KIND_QUANT;
        j->rep->pub.n_requantized += r->requantize;
        j->out_offset[i] = UINT64_MAX;
    }
    /* a tied head the plan left out (SafeTensors/APR source): its data is the embedding's */
    for (size_t s = 0; s < n_src; s++)
        j->head_of[s] = -1;
    const bool tied = rf_model_config_get(j->src)->tie_word_embeddings == 1;
    for (size_t s = 0; !j->gguf_src && tied && s < n_src; s++) {
        char name[128];
        const char *t = rf_model_tensor(j->src, s)->name;
        if (!rf_name_to_gguf(t, name, sizeof name) || strcmp(name, "output.weight") != 0)
            continue;
        for (size_t i = 0; i < n; i++)
            if (strcmp(plan->entries[i].name, "token_embd.weight") == 0)
                j->head_of[s] = (long)i;
    }
    return RF_OK;
}

/* ---- checks before any work ------------------------------------------------------------- */

static const char *format_label(rf_format f)
{
    return f == RF_FORMAT_SAFETENSORS ? "safetensors" : rf_format_name(f);
}

/* Quantized types whose llama.cpp quantizer weights by the imatrix when one is given (Q8_0 and
 * the float types ignore it). */
static bool llama_weights_by_imatrix(rf_dtype dtype)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    return info != NULL && info->kind == RF_KIND_QUANT && info->ggml_code >= 0 &&
           dtype != RF_DTYPE_Q8_0;
}

/* The imatrix for a planned conversion, or NULL; fails as llama-quantize does on a size that
 * does not match (except for token_embd, which it skips). */
static rf_status imatrix_for(const job *j, const rf_quant_plan_entry *e, const float **out,
                             rf_error *err)
{
    *out = NULL;
    if (j->im == NULL)
        return RF_OK;
    const rf_dtype_info *info = rf_dtype_get(e->dtype);
    if (info == NULL || info->kind != RF_KIND_QUANT)
        return RF_OK;
    const rf_tensor *t = entry_tensor(j, e);
    uint64_t n = 0;
    const float *values = rf_imatrix_find(j->im, e->name, &n);
    if (values == NULL)
        return RF_OK;
    if (n != row_len(t) * expert_count(t)) {
        if (strcmp(e->name, "token_embd.weight") == 0 ||
            strcmp(e->name, "per_layer_token_embd.weight") == 0)
            return RF_OK;
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: imatrix entry %s has %llu values, the tensor needs %llu (ne[0] x "
                            "experts)",
                            j->p->imatrix_path, e->name, (unsigned long long)n,
                            (unsigned long long)(row_len(t) * expert_count(t)));
    }
    if (!rf_quant_uses_imatrix(e->dtype)) {
        if (llama_weights_by_imatrix(e->dtype))
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "tensor %s: llama.cpp's %s quantizer weights rows by the "
                                "importance matrix and Rosetta has no such %s path, so the bytes "
                                "would differ; leave out the imatrix or give the tensor another "
                                "type",
                                e->name, rf_dtype_name(e->dtype), rf_dtype_name(e->dtype));
        return RF_OK;
    }
    *out = values;
    return RF_OK;
}

static rf_status check_plan(const job *j, rf_error *err)
{
    const rf_quant_plan *p = j->rep->plan;
    size_t bad = 0;
    const rf_quant_plan_entry *first = NULL;
    for (size_t i = 0; i < p->n_entries; i++) {
        if (!rf_format_holds(j->format, p->entries[i].dtype)) {
            if (first == NULL)
                first = &p->entries[i];
            bad++;
        }
    }
    if (first != NULL) {
        char held[256];
        rf_format_held_types(j->format, 1u << RF_KIND_FLOAT | 1u << RF_KIND_QUANT, 0, held,
                             sizeof held);
        return rf_error_set(
            err, RF_ERR_ARGUMENT,
            "%s output cannot hold %s (tensor %s%s): %s; write GGUF, or choose a "
            "mix or tensor types that %s holds",
            format_label(j->format), rf_dtype_name(first->dtype), first->name,
            bad > 1 ? " and others" : "",
            j->format == RF_FORMAT_SAFETENSORS ? "SafeTensors has no quantized types" : held,
            format_label(j->format));
    }
    size_t requantized = 0;
    for (size_t i = 0; i < p->n_entries; i++) {
        const rf_quant_plan_entry *e = &p->entries[i];
        if (!e->convert)
            continue;
        requantized += j->rep->tensors[i].requantize;
        if (e->src_dtype != RF_DTYPE_F32 && !rf_can_dequantize(e->src_dtype))
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "%s: tensor %s: cannot convert from %s: unsupported dtype %s",
                                source_name(j), e->name, rf_dtype_name(e->src_dtype),
                                rf_dtype_name(e->src_dtype));
        if (e->dtype != RF_DTYPE_F32 && !rf_can_quantize(e->dtype))
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "tensor %s: Rosetta cannot produce %s (planned: %s)", e->name,
                                rf_dtype_name(e->dtype), e->reason);
        const float *imx;
        rf_status st = imatrix_for(j, e, &imx, err);
        if (st != RF_OK)
            return st;
    }
    if (requantized > 0 && !j->p->allow_requantize)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            "%s: %zu quantized tensor(s) would be requantized (precision is "
                            "lost); allow requantizing to go on",
                            source_name(j), requantized);
    return RF_OK;
}

/* ---- converting ------------------------------------------------------------------------- */

static rf_status reserve(void **buf, uint64_t *cap, uint64_t need, const char *what,
                         const char *tensor, rf_error *err)
{
    if (need <= *cap && *buf != NULL)
        return RF_OK;
    void *p = need <= SIZE_MAX ? realloc(*buf, need ? (size_t)need : 1) : NULL;
    if (p == NULL)
        return rf_error_set(err, RF_ERR_NOMEM, "tensor %s: out of memory for %llu %s", tensor,
                            (unsigned long long)need, what);
    *buf = p;
    *cap = need;
    return RF_OK;
}

/* Converts one planned tensor: F32 values (dequantized unless the source is F32 and aligned),
 * then the quantizer, per expert slice when an imatrix is used (llama-quantize's order). */
static rf_status convert_one(job *j, const rf_quant_plan_entry *e, uint64_t *offset, rf_error *err)
{
    const rf_tensor *t = entry_tensor(j, e);
    const uint64_t n = e->n_elements, ne0 = row_len(t);
    const uint64_t rows = ne0 ? n / ne0 : 0;
    const float *values;
    rf_status st;
    if (t->dtype == RF_DTYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) {
        values = (const void *)t->data; /* F32 and 4-byte aligned: use the mapping in place */
    } else {
        if (n > UINT64_MAX / sizeof(float))
            return rf_error_set(err, RF_ERR_OVERFLOW, "tensor %s: too many values", e->name);
        st = reserve((void **)&j->f32, &j->f32_cap, n * sizeof(float), "bytes", e->name, err);
        if (st == RF_OK)
            st = rf_tensor_dequantize(t, j->f32, err);
        if (st != RF_OK)
            return st;
        values = j->f32;
    }
    const float *imx = NULL;
    st = imatrix_for(j, e, &imx, err);
    if (st == RF_OK)
        st = reserve((void **)&j->dst, &j->dst_cap, e->dst_bytes, "bytes", e->name, err);
    rf_quant_options qopts = {.n_threads = j->p->n_threads};
    if (st == RF_OK && rows > 0) {
        uint64_t slices = imx ? expert_count(t) : 1;
        uint64_t slice_rows = rows / slices, row_bytes = 0;
        st = rf_quant_row_bytes(e->dtype, ne0, &row_bytes, err);
        for (uint64_t s = 0; st == RF_OK && s < slices; s++)
            st = rf_quantize(e->dtype, values + s * slice_rows * ne0,
                             j->dst + s * slice_rows * row_bytes, slice_rows, ne0,
                             imx ? imx + s * ne0 : NULL, &qopts, err);
        if (st != RF_OK)
            rf_error_prefix(err, "tensor %s (%s -> %s)", e->name, rf_dtype_name(e->src_dtype),
                            rf_dtype_name(e->dtype));
    }
    if (st == RF_OK)
        st = rfi_spill_append(j->sp, j->dst, e->dst_bytes, offset, err);
    return st;
}

/* The conversion loop; runs under the mapped-file guard (see rf_model_mapped_call). */
static rf_status convert_all(void *ctx, rf_error *err)
{
    job *j = ctx;
    const rf_quant_plan *p = j->rep->plan;
    rf_status st = RF_OK;
    for (size_t i = 0; st == RF_OK && i < p->n_entries; i++) {
        const rf_quant_plan_entry *e = &p->entries[i];
        if (!e->convert)
            continue;
        if (j->p->on_progress)
            j->p->on_progress(&j->rep->pub, i, j->p->ctx);
        st = convert_one(j, e, &j->out_offset[i], err);
    }
    if (j->p->on_progress)
        j->p->on_progress(&j->rep->pub, p->n_entries, j->p->ctx);
    return st;
}

/* ---- the output model ------------------------------------------------------------------- */

static const uint8_t *entry_data(const job *j, size_t i)
{
    if (j->out_offset[i] == UINT64_MAX)
        return entry_tensor(j, &j->rep->plan->entries[i])->data;
    return rfi_spill_data(j->sp) + j->out_offset[i];
}

static rf_status add_u32(rf_model *m, const char *key, uint64_t v, rf_error *err)
{
    rf_value value = {.type = RF_VALUE_U32, .as.u = v};
    return rf_model_add_kv(m, key, &value, err);
}

static rf_status add_str(rf_model *m, const char *key, const char *s, rf_error *err)
{
    char text[128]; /* llama-quantize stores these through 128-byte override slots */
    snprintf(text, sizeof text, "%s", s);
    rf_value value = {.type = RF_VALUE_STRING, .as.str = {text, strlen(text)}};
    return rf_model_add_kv(m, key, &value, err);
}

/* The GGUF pairs of a SafeTensors or APR source, synthesized in memory. */
static rf_status source_gguf_pairs(const job *j, rf_kv_list **out, rf_error *err)
{
    rf_status st = rf_gguf_metadata(j->src, NULL, out, err);
    if (st != RF_OK)
        rf_error_prefix(err, "%s: GGUF metadata for the output", source_name(j));
    return st;
}

/* The pairs a GGUF output starts from: the synthesized list, or a GGUF source's own pairs. */
static size_t n_pairs(const job *j, const rf_kv_list *list)
{
    return list ? rf_kv_list_count(list) : rf_model_n_kv(j->src);
}

static const rf_kv *pair(const job *j, const rf_kv_list *list, size_t i)
{
    return list ? rf_kv_list_get(list, i) : rf_model_kv(j->src, i);
}

/* Keys of a quantized GGUF output, in llama-quantize's order: the source's pairs minus split.*
 * and the keys re-set below, then general.quantization_version, general.file_type and, with an
 * imatrix, the quantize.imatrix.* pairs llama-quantize records. A format change keeps the
 * source's pairs as they are (the GGUF writer settles the rest). */
static rf_status gguf_keys(const job *j, const rf_kv_list *pairs, rf_model *out, rf_error *err)
{
    if (!j->p->quantize) {
        rf_status st = RF_OK;
        for (size_t i = 0; st == RF_OK && i < n_pairs(j, pairs); i++)
            st = rf_model_add_kv(out, pair(j, pairs, i)->key, &pair(j, pairs, i)->value, err);
        return st;
    }
    const char *imatrix_keys[4] = {NULL, NULL, NULL, NULL};
    if (j->im != NULL) {
        imatrix_keys[0] = "quantize.imatrix.file";
        imatrix_keys[1] = rf_imatrix_dataset(j->im) ? "quantize.imatrix.dataset" : NULL;
        imatrix_keys[2] = "quantize.imatrix.entries_count";
        imatrix_keys[3] =
            rf_imatrix_chunk_count(j->im) > 0 ? "quantize.imatrix.chunks_count" : NULL;
    }
    static const char *const dropped[] = {"general.quantization_version", "general.file_type",
                                          "split.no", "split.count", "split.tensors.count"};
    rf_status st = RF_OK;
    for (size_t i = 0; st == RF_OK && i < n_pairs(j, pairs); i++) {
        const rf_kv *kv = pair(j, pairs, i);
        bool skip = false;
        for (size_t k = 0; k < sizeof dropped / sizeof dropped[0]; k++)
            skip |= strcmp(kv->key, dropped[k]) == 0;
        for (size_t k = 0; k < 4; k++)
            skip |= imatrix_keys[k] != NULL && strcmp(kv->key, imatrix_keys[k]) == 0;
        if (!skip)
            st = rf_model_add_kv(out, kv->key, &kv->value, err);
    }
    if (st == RF_OK)
        st = add_u32(out, "general.quantization_version", RF_GGUF_QUANTIZATION_VERSION, err);
    if (st == RF_OK)
        st = add_u32(out, "general.file_type", j->rep->plan->file_type, err);
    if (st == RF_OK && j->im != NULL) {
        st = add_str(out, "quantize.imatrix.file", j->p->imatrix_path, err);
        if (st == RF_OK && imatrix_keys[1])
            st = add_str(out, "quantize.imatrix.dataset", rf_imatrix_dataset(j->im), err);
        if (st == RF_OK)
            st = add_u32(out, "quantize.imatrix.entries_count", rf_imatrix_n_entries(j->im), err);
        if (st == RF_OK && imatrix_keys[3])
            st = add_u32(out, "quantize.imatrix.chunks_count", rf_imatrix_chunk_count(j->im), err);
    }
    return st;
}

/* The output tensor name: GGUF names for GGUF; the source's names otherwise, except that a GGUF
 * source gets Hugging Face names in SafeTensors and APR's names in APR. */
static const char *out_name(const job *j, size_t src_index, const char *gguf_name, char *buf,
                            size_t size)
{
    const char *src_name = rf_model_tensor(j->src, src_index)->name;
    if (j->format == RF_FORMAT_GGUF)
        return gguf_name;
    if (!j->gguf_src)
        return src_name;
    if (j->format == RF_FORMAT_SAFETENSORS && rf_name_to_hf(src_name, buf, size))
        return buf;
    if (j->format == RF_FORMAT_APR &&
        rf_name_to_apr(src_name, rf_model_config_get(j->src)->architecture, buf, size))
        return buf;
    return src_name;
}

/* A copy of name owned by the report (the output model is freed after the write). */
static rf_status report_name(job *j, const char **slot, const char *name, rf_error *err)
{
    if (j->rep->names == NULL && (j->rep->names = rf_model_new(RF_FORMAT_UNKNOWN, err)) == NULL)
        return RF_ERR_NOMEM;
    *slot = rf_model_strdup(j->rep->names, name);
    return *slot ? RF_OK : rf_error_set(err, RF_ERR_NOMEM, "out of memory");
}

static rf_status build_output(job *j, const rf_kv_list *gguf_pairs, rf_model **out_model,
                              rf_error *err)
{
    const bool to_gguf = j->format == RF_FORMAT_GGUF;
    rf_model *out = rf_model_new(to_gguf ? RF_FORMAT_GGUF : rf_model_format(j->src), err);
    if (out == NULL)
        return RF_ERR_NOMEM;
    rf_model_set_format_version(out, to_gguf && !j->gguf_src ? RF_GGUF_VERSION
                                                             : rf_model_format_version(j->src));
    rf_status st = RF_OK;
    if (to_gguf) {
        st = gguf_keys(j, gguf_pairs, out, err);
        for (size_t i = 0; st == RF_OK && i < j->p->n_extra_metadata; i++)
            st = rf_model_add_kv(out, j->p->extra_metadata[i].key, &j->p->extra_metadata[i].value,
                                 err);
    } else {
        for (size_t i = 0; st == RF_OK && i < rf_model_n_kv(j->src); i++)
            st = rf_model_add_kv(out, rf_model_kv(j->src, i)->key, &rf_model_kv(j->src, i)->value,
                                 err);
    }
    if (st == RF_OK)
        st = rfi_model_copy_config(out, j->src, err);
    if (st == RF_OK)
        st = rfi_model_copy_tokenizer(out, j->src, err);
    const rf_quant_plan *p = j->rep->plan;
    char buf[256];
    for (size_t i = 0; st == RF_OK && i < p->n_entries; i++) {
        const rf_quant_plan_entry *e = &p->entries[i];
        rf_tensor t = *entry_tensor(j, e);
        t.name = out_name(j, e->tensor_index, e->name, buf, sizeof buf);
        t.dtype = e->dtype;
        t.data = entry_data(j, i);
        t.nbytes = e->dst_bytes;
        if (j->out_offset[i] != UINT64_MAX)
            t.row_stride = 0; /* converted data is one packed run */
        t.file_offset = 0;
        t.source = 0;
        st = rf_model_add_tensor(out, &t, err);
        if (st == RF_OK)
            st = report_name(j, &j->rep->tensors[i].output_name, t.name, err);
        /* a tied head kept by the source format (APR) follows its embedding */
        for (size_t s = 0; st == RF_OK && !to_gguf && s < rf_model_n_tensors(j->src); s++) {
            if (j->head_of[s] != (long)i)
                continue;
            rf_tensor head = t;
            head.name = out_name(j, s, rf_model_tensor(j->src, s)->name, buf, sizeof buf);
            st = rf_model_add_tensor(out, &head, err);
            if (st == RF_OK)
                st = report_name(j, &j->rep->tensors[i].head_copy, head.name, err);
            j->rep->pub.n_head_copies += st == RF_OK;
        }
    }
    if (st != RF_OK) {
        rf_model_free(out);
        return st;
    }
    *out_model = out;
    return RF_OK;
}

static rf_status write_output(job *j, const rf_kv_list *gguf_pairs, rf_error *err)
{
    rf_model *out = NULL;
    rf_status st = build_output(j, gguf_pairs, &out, err);
    if (st != RF_OK)
        return st;
    write_hook hook = {j->p->verify, j->p->ctx};
    switch (j->format) {
    case RF_FORMAT_GGUF: st = rfi_gguf_write_hooked(out, j->out_path, NULL, &hook, err); break;
    case RF_FORMAT_APR: {
        rf_apr_write_options o = {0};
        o.extra = j->p->extra_metadata;
        o.n_extra = j->p->n_extra_metadata;
        st = rfi_apr_write_hooked(out, j->out_path, &o, &hook, err);
        break;
    }
    case RF_FORMAT_SAFETENSORS: {
        rf_safetensors_write_options o = {0};
        for (size_t i = 0; i < j->p->n_extra_metadata; i++)
            o.provenance = j->p->extra_metadata[i].value.as.str.data;
        st = rfi_safetensors_write_hooked(out, j->out_path, &o, &hook, err);
        break;
    }
    case RF_FORMAT_UNKNOWN:
    case RF_FORMAT_SAFETENSORS_INDEX:
    case RF_FORMAT_SAFETENSORS_DIR:
    case RF_FORMAT_APR2_MAGIC:
    case RF_FORMAT_APR_V1:
    case RF_FORMAT_APR1:
    case RF_FORMAT_APRT:
    case RF_FORMAT_APR_TSP:
        st =
            rf_error_set(err, RF_ERR_ARGUMENT, "cannot write format %s", rf_format_name(j->format));
        break;
    }
    rf_model_free(out);
    return st;
}

/* ---- the call --------------------------------------------------------------------------- */

static rf_status check_params(job *j, rf_error *err)
{
    const rf_convert_params *p = j->p;
    rf_format f =
        p->format != RF_FORMAT_UNKNOWN ? p->format : rf_convert_format_for_path(j->out_path);
    if (f == RF_FORMAT_SAFETENSORS_DIR)
        f = RF_FORMAT_SAFETENSORS;
    if (f != RF_FORMAT_GGUF && f != RF_FORMAT_APR && f != RF_FORMAT_SAFETENSORS)
        return rf_error_set(err, RF_ERR_ARGUMENT,
                            p->format == RF_FORMAT_UNKNOWN
                                ? "%s: cannot tell the output format from the name; end it in "
                                  ".gguf, .apr or .safetensors, or name the format"
                                : "%s: the output format must be GGUF, APR or SafeTensors",
                            j->out_path ? j->out_path : "(no output)");
    j->format = f;
    if (j->out_path == NULL && !p->dry_run)
        return rf_error_set(err, RF_ERR_ARGUMENT, "rf_convert: no output path");
    if (!p->dry_run) {
        /* before any work: never a device, FIFO or directory in place of a file, never the
         * input's own files unless asked, a directory that exists and is writable */
        rf_output_check_options o = {RF_OUTPUT_FILE, j->src, p->replace_input};
        if (f == RF_FORMAT_SAFETENSORS && rf_convert_format_for_path(j->out_path) != f)
            o.kind = RF_OUTPUT_DIRECTORY;
        if (f == RF_FORMAT_SAFETENSORS && o.kind == RF_OUTPUT_FILE) {
            struct stat st;
            if (stat(j->out_path, &st) == 0 && S_ISDIR(st.st_mode))
                o.kind = RF_OUTPUT_DIRECTORY; /* the SafeTensors writer writes into it */
        }
        rf_status st = rf_output_check(j->out_path, &o, err);
        if (st != RF_OK)
            return st;
    }
    if (f == RF_FORMAT_GGUF) {
        /* GGUF output must name its architecture (llama.cpp loads nothing else) */
        rf_status st = rfi_gguf_check_architecture(j->src, source_name(j), err);
        if (st != RF_OK)
            return st;
    }
    for (size_t i = 0; i < p->n_extra_metadata; i++) {
        const rf_kv *kv = &p->extra_metadata[i];
        if (f == RF_FORMAT_SAFETENSORS &&
            (strcmp(kv->key, "rosetta.provenance") != 0 || kv->value.type != RF_VALUE_STRING))
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "extra metadata '%s': SafeTensors output takes only a string "
                                "'rosetta.provenance'",
                                kv->key);
    }
    return RF_OK;
}

rf_status rf_convert(const rf_model *src, const rf_convert_params *params, const char *out_path,
                     rf_convert_report **report, rf_error *err)
{
    rf_convert_params defaults = rf_convert_params_default();
    if (report != NULL)
        *report = NULL;
    if (src == NULL)
        return rf_error_set(err, RF_ERR_ARGUMENT, "rf_convert: no source model");
    job j;
    memset(&j, 0, sizeof j);
    j.src = src;
    j.p = params != NULL ? params : &defaults;
    j.out_path = out_path;
    j.gguf_src = rf_model_format(src) == RF_FORMAT_GGUF;
    rf_status st = check_params(&j, err);
    if (st != RF_OK)
        return st;
    j.rep = calloc(1, sizeof *j.rep);
    if (j.rep == NULL)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    j.rep->pub.format = j.format;
    j.rep->pub.out_path = out_path;
    rf_kv_list *gguf_pairs = NULL;
    if (j.format == RF_FORMAT_GGUF && !j.gguf_src)
        st = source_gguf_pairs(&j, &gguf_pairs, err);
    if (st == RF_OK && j.p->imatrix_path != NULL && j.p->quantize) {
        j.im = rf_imatrix_open(j.p->imatrix_path, err);
        if (j.im == NULL)
            st = err && err->status ? err->status : RF_ERR_FORMAT;
    }
    if (st == RF_OK)
        st = make_plan(&j, err);
    if (st == RF_OK)
        st = check_plan(&j, err);
    if (st == RF_OK && j.p->on_plan)
        st = j.p->on_plan(&j.rep->pub, j.p->ctx, err);
    if (st == RF_OK && !j.p->dry_run) {
        j.sp = rfi_spill_open(out_path, err);
        if (j.sp == NULL)
            st = err && err->status ? err->status : RF_ERR_WRITE;
        if (st == RF_OK)
            st = rf_model_mapped_call(src, convert_all, &j, err);
        if (st == RF_OK)
            st = rfi_spill_map(j.sp, err);
        if (st == RF_OK)
            st = write_output(&j, gguf_pairs, err);
        /* name the output once: the writers' own messages already start with it */
        if (st != RF_OK && err &&
            !(strncmp(err->message, out_path, strlen(out_path)) == 0 &&
              err->message[strlen(out_path)] == ':'))
            rf_error_prefix(err, "%s", out_path);
        j.rep->pub.written = st == RF_OK;
    }
    rf_kv_list_free(gguf_pairs);
    rfi_spill_close(j.sp);
    rf_imatrix_free(j.im);
    free(j.head_of);
    free(j.out_offset);
    free(j.f32);
    free(j.dst);
    if (report != NULL && j.rep->plan != NULL)
        *report = &j.rep->pub;
    else
        rf_convert_report_free(&j.rep->pub);
    return st;
}
