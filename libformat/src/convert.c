/* rf_convert: the conversion pipeline (see rosetta/convert.h): plan, check, convert into the spill
 * file, assemble the output model, write it through the format's writer.
 * Not for: the type rules (quant_plan.c), the block math (quant.c) or the file layouts (the
 * writers); this file only connects them. */
#include "rosetta/convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "convert_internal.h"
#include "hf_internal.h"
#include "model_internal.h"
#include "output_internal.h"
#include "pages.h"
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
    p.unheld_dtype = RF_DTYPE_F32;
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
    rf_model *names; /* owns output names and the provenance record */
    rf_contract_report *contract;
} report_store;

void rf_convert_report_free(rf_convert_report *report)
{
    report_store *r = (report_store *)report;
    if (r == NULL)
        return;
    rf_quant_plan_free(r->plan);
    free(r->tensors);
    rf_model_free(r->names);
    rf_contract_report_free(r->contract);
    free(r);
}

typedef struct job {
    const rf_model *src;  /* the model converted: the caller's, or a view of it (--arch) */
    const rf_model *orig; /* the caller's model (its files are mapped) */
    rf_model *view;       /* owned view, or NULL */
    rf_model *extras;     /* owns the extra metadata of the output (user's, provenance) */
    rf_kv *extra;         /* its pairs, in order */
    size_t n_extra;
    const rf_convert_params *p;
    const char *out_path;
    rf_format format;
    bool gguf_src;
    report_store *rep;
    long *head_of; /* per source tensor: plan entry whose data a tied head copies, or -1 */
    rf_imatrix *im;
    spill *sp;
    uint64_t *out_offset; /* per plan entry: offset in the spill, or UINT64_MAX = source bytes */
    XXH3_state_t *digest; /* of the source's tensor data (provenance), or NULL */
    const char *phase;    /* on_work: the phase, bytes done and expected */
    uint64_t phase_done, phase_total, phase_reported;
    float *f32; /* conversion buffers, kept here so that a SIGBUS abandon leaks none */
    uint64_t f32_cap;
    uint8_t *dst;
    uint64_t dst_cap;
    bool *converted; /* scan_source's per source tensor flags (here for the same reason) */
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

static const char *format_label(rf_format f);

/* Bytes of a tensor of t's shape stored as dtype (plain types, or rows of a block type). */
static rf_status bytes_as(const rf_tensor *t, rf_dtype dtype, uint64_t *out, rf_error *err)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    if (info != NULL && info->kind == RF_KIND_QUANT) {
        uint64_t ne0 = row_len(t), n = 0;
        rf_status st = rf_shape_elements(t->shape, t->ndim, &n, err);
        if (st != RF_OK)
            return st;
        return rf_quant_bytes(dtype, ne0 ? n / ne0 : 0, ne0, out, err);
    }
    return rf_dtype_tensor_bytes(dtype, t->shape, t->ndim, out, err);
}

/* Adds name to the comma-separated list (once). */
static void list_add(char *list, size_t size, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
            return;
    size_t used = strlen(list);
    snprintf(list + used, size - used, "%s%s", used ? ", " : "", name);
}

/* Planned types the output format cannot hold become p->unheld_dtype (convert_unheld). */
static rf_status settle_unheld(job *j, rf_error *err)
{
    rf_quant_plan *plan = j->rep->plan;
    for (size_t i = 0; i < plan->n_entries; i++) {
        rf_quant_plan_entry *e = &plan->entries[i];
        if (rf_format_holds(j->format, e->dtype) || !j->p->convert_unheld)
            continue;
        const rf_tensor *t = entry_tensor(j, e);
        rf_convert_tensor *r = &j->rep->tensors[i];
        r->unheld = true;
        j->rep->pub.n_unheld++;
        list_add(j->rep->pub.unheld_types, sizeof j->rep->pub.unheld_types,
                 rf_dtype_name(e->dtype));
        uint64_t bytes = 0;
        rf_status st = bytes_as(t, j->p->unheld_dtype, &bytes, err);
        if (st != RF_OK) {
            rf_error_prefix(err, "%s: tensor %s as %s", source_name(j), e->name,
                            rf_dtype_name(j->p->unheld_dtype));
            return st;
        }
        bool was_converted = e->convert;
        const rf_dtype unheld = e->dtype;
        plan->dst_bytes -= e->dst_bytes;
        e->dtype = j->p->unheld_dtype;
        e->dst_bytes = bytes;
        e->convert = e->dtype != e->src_dtype;
        plan->dst_bytes += bytes;
        plan->n_convert += (size_t)e->convert - (size_t)was_converted;
        snprintf(e->reason, sizeof e->reason, "%s cannot hold %s: %s %s", format_label(j->format),
                 rf_dtype_name(unheld),
                 e->dtype == RF_DTYPE_F32 ? "dequantized to" : "requantized to",
                 rf_dtype_name(e->dtype));
        const rf_dtype_info *info = rf_dtype_get(e->src_dtype);
        r->requantize =
            e->convert && info != NULL && info->kind == RF_KIND_QUANT && e->dtype != RF_DTYPE_F32;
    }
    j->rep->pub.n_requantized = 0;
    for (size_t i = 0; i < plan->n_entries; i++)
        j->rep->pub.n_requantized += j->rep->tensors[i].requantize;
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
    st = settle_unheld(j, err);
    if (st != RF_OK)
        return st;
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

/* ---- the view of the source (--arch) -------------------------------------------------------- */

/* Renames "<old>.<rest>" keys of a GGUF source src to "<arch>.<rest>" and sets the architecture
 * keys of GGUF and APR metadata to arch. A renamed key that src also holds under arch is
 * dropped: the reader took arch's own value first (gguf_read.c, arch_kv). */
static rf_status view_kv(rf_model *v, const rf_model *src, const rf_kv *kv, const char *old,
                         const char *arch, rf_error *err)
{
    char key[512];
    size_t n = old ? strlen(old) : 0;
    bool arch_key = strcmp(kv->key, "general.architecture") == 0 ||
                    strcmp(kv->key, "architecture") == 0 ||
                    strcmp(kv->key, "model.architecture") == 0;
    if (arch_key && kv->value.type != RF_VALUE_STRING && rf_model_format(v) == RF_FORMAT_GGUF)
        return RF_OK; /* make_view wrote the string */
    if (arch_key && kv->value.type == RF_VALUE_STRING) {
        rf_value value = {.type = RF_VALUE_STRING, .as.str = {arch, strlen(arch)}};
        return rf_model_add_kv(v, kv->key, &value, err);
    }
    if (n > 0 && strncmp(kv->key, old, n) == 0 && kv->key[n] == '.' &&
        rf_model_format(v) == RF_FORMAT_GGUF) {
        snprintf(key, sizeof key, "%s%s", arch, kv->key + n);
        if (strcmp(old, arch) != 0 && rf_model_find_kv(src, key) != NULL)
            return RF_OK;
        return rf_model_add_kv(v, key, &kv->value, err);
    }
    /* a SafeTensors config.json naming another model_type is rebuilt from the typed config */
    if (strcmp(kv->key, HF_KV_PREFIX "config.json") == 0)
        return RF_OK;
    return rf_model_add_kv(v, kv->key, &kv->value, err);
}

/* The string of a GGUF source's general.architecture, or NULL (absent, not a string). */
static const char *gguf_architecture(const rf_model *src)
{
    const rf_kv *kv = rf_model_find_kv(src, "general.architecture");
    return kv && kv->value.type == RF_VALUE_STRING ? kv->value.as.str.data : NULL;
}

/* The architecture the output takes instead of the source's metadata: p->architecture, else
 * that of a GGUF source opened under another name than its general.architecture says (or with
 * none: rf_open_options.architecture), else NULL. */
static const char *view_architecture(const job *j)
{
    if (j->p->architecture != NULL)
        return j->p->architecture;
    const char *arch = rf_model_config_get(j->orig)->architecture, *own;
    if (rf_model_format(j->orig) != RF_FORMAT_GGUF || arch == NULL)
        return NULL;
    own = gguf_architecture(j->orig);
    return own == NULL || strcmp(own, arch) != 0 ? arch : NULL;
}

/* A model that borrows the source's tensors and copies its metadata, with the architecture
 * replaced by arch: a GGUF source's "<its own>.*" keys become "<arch>.*" and its
 * general.architecture (added first when missing) says arch. */
static rf_status make_view(job *j, const char *arch, rf_error *err)
{
    const rf_model *src = j->orig;
    rf_model *v = rf_model_new(rf_model_format(src), err);
    if (v == NULL)
        return RF_ERR_NOMEM;
    j->view = v;
    rf_model_set_format_version(v, rf_model_format_version(src));
    rf_status st = rf_model_path(src) ? rf_model_set_path(v, rf_model_path(src), err) : RF_OK;
    const char *old = rf_model_config_get(src)->architecture;
    if (rf_model_format(src) == RF_FORMAT_GGUF) {
        old = gguf_architecture(src);
        if (old == NULL && st == RF_OK) {
            rf_value value = {.type = RF_VALUE_STRING, .as.str = {arch, strlen(arch)}};
            st = rf_model_add_kv(v, "general.architecture", &value, err);
        }
    }
    for (size_t i = 0; st == RF_OK && i < rf_model_n_kv(src); i++)
        st = view_kv(v, src, rf_model_kv(src, i), old, arch, err);
    if (st == RF_OK)
        st = rfi_model_copy_config(v, src, err);
    if (st == RF_OK)
        st = rfi_model_copy_tokenizer(v, src, err);
    for (size_t i = 0; st == RF_OK && i < rf_model_n_tensors(src); i++)
        st = rf_model_add_tensor(v, rf_model_tensor(src, i), err);
    if (st != RF_OK)
        return st;
    rf_model_config *c = rf_model_config_mut(v);
    c->architecture = rf_model_strdup(v, arch);
    if (c->architecture == NULL)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    if (c->rope_type == RF_ROPE_UNKNOWN)
        c->rope_type = rfi_hf_rope_type_for(arch);
    j->src = v;
    return RF_OK;
}

/* ---- the stop-the-line checks --------------------------------------------------------------- */

static rf_status check_contract(job *j, rf_error *err)
{
    rf_contract_options o = {0};
    o.contracts = j->p->contracts;
    o.rules = RF_RULE_STRUCTURAL;
    rf_status st = rf_contract_check(j->src, &o, &j->rep->contract, err);
    if (st != RF_OK)
        return st;
    j->rep->pub.contract = j->rep->contract;
    st = rf_contract_report_status(j->rep->contract, false, err);
    if (st != RF_OK)
        rf_error_prefix(err, "%s", source_name(j));
    return st;
}

static rf_status nan_inf(const job *j, const char *tensor, const nonfinite *nf, rf_error *err)
{
    if (nf->n_nan + nf->n_inf == 0)
        return RF_OK;
    return rf_error_set(err, RF_ERR_CONTRACT,
                        "%s: contract violated: quality.nan_inf (1): %s: %llu NaN and %llu "
                        "infinite value(s), the first at index %llu: expected none",
                        source_name(j), tensor, (unsigned long long)nf->n_nan,
                        (unsigned long long)nf->n_inf, (unsigned long long)nf->first);
}

static void release_range(const void *data, uint64_t n, void *ctx);

static void add_nonfinite(nonfinite *total, const nonfinite *part, uint64_t base)
{
    if (part->n_nan + part->n_inf > 0 && total->n_nan + total->n_inf == 0)
        total->first = base + part->first;
    total->n_nan += part->n_nan;
    total->n_inf += part->n_inf;
}

/* One pass over a source tensor's bytes, a piece at a time (each piece's pages released after):
 * the digest (provenance) and, when check, the NaN / Inf scan of its raw floats or of its
 * values dequantized. */
static rf_status scan_tensor(job *j, const rf_tensor *t, bool check, rf_error *err)
{
    const rf_dtype_info *info = rf_dtype_get(t->dtype);
    nonfinite nf = {0, 0, 0}, part;
    rf_status st = RF_OK;
    const bool raw = info != NULL && info->kind == RF_KIND_FLOAT && info->block_elems == 1 &&
                     rfi_scan_raw(t->dtype, t->data, 0, &part);
    const bool values =
        check && !raw && info != NULL && info->kind == RF_KIND_QUANT && rf_can_dequantize(t->dtype);
    if (!values) { /* plain bytes: raw floats, integers, or a type Rosetta cannot decode */
        const uint64_t elem = raw ? info->block_bytes : 1;
        const uint64_t piece = WRITE_HOOK_PIECE - WRITE_HOOK_PIECE % elem;
        const uint64_t block = SCAN_BLOCK - SCAN_BLOCK % elem;
        for (uint64_t at = 0; at < t->nbytes; at += piece) {
            uint64_t k = t->nbytes - at < piece ? t->nbytes - at : piece;
            /* the digest and the scan read each block while it is in the cache: one pass
             * over memory, not two */
            for (uint64_t b = 0; b < k; b += block) {
                uint64_t m = k - b < block ? k - b : block;
                if (j->digest != NULL)
                    XXH3_64bits_update(j->digest, t->data + at + b, (size_t)m);
                if (check && raw) {
                    rfi_scan_raw(t->dtype, t->data + at + b, m, &part);
                    add_nonfinite(&nf, &part, (at + b) / elem);
                }
            }
            release_range(t->data + at, k, j);
        }
    } else {
        uint64_t n = 0;
        st = rf_shape_elements(t->shape, t->ndim, &n, err);
        const uint64_t chunk = rfi_chunk_elems(t, n), block = info->block_elems;
        if (st == RF_OK && chunk > UINT64_MAX / sizeof(float))
            st = rf_error_set(err, RF_ERR_OVERFLOW, "tensor %s: too many values", t->name);
        if (st == RF_OK)
            st = reserve((void **)&j->f32, &j->f32_cap, chunk * sizeof(float), "bytes", t->name,
                         err);
        uint64_t hashed = 0;
        for (uint64_t at = 0; st == RF_OK && at < n; at += chunk) {
            uint64_t k = n - at < chunk ? n - at : chunk;
            st = rf_tensor_dequantize_range(t, at, k, j->f32, err);
            if (st != RF_OK)
                break;
            rfi_scan_f32(j->f32, k, &part);
            add_nonfinite(&nf, &part, at);
            /* the bytes of the blocks read (the last chunk takes the rest) */
            uint64_t end = at + k >= n ? t->nbytes : (at + k) / block * info->block_bytes;
            if (j->digest != NULL)
                XXH3_64bits_update(j->digest, t->data + hashed, (size_t)(end - hashed));
            release_range(t->data + hashed, end - hashed, j);
            hashed = end;
        }
    }
    if (st != RF_OK || !check)
        return st;
    j->rep->pub.n_values_checked++;
    return nan_inf(j, t->name, &nf, err);
}

/* ---- releasing mapped pages --------------------------------------------------------------- */

/* After a tensor's bytes are used, their pages of a mapped file are dropped from this process
 * (MADV_DONTNEED: the page cache keeps them), so that resident memory stays bounded by what is
 * in use, not by the size of the model. Only ranges inside the source's files or the spill are
 * touched: any other memory (a caller's buffer) is left alone. */
static void work(job *j, const char *phase, uint64_t total)
{
    j->phase = phase;
    j->phase_done = j->phase_reported = 0;
    j->phase_total = total;
    if (j->p->on_work)
        j->p->on_work(phase, 0, total, j->p->ctx);
}

static void worked(job *j, uint64_t n)
{
    j->phase_done += n;
    if (j->p->on_work && j->phase_done - j->phase_reported >= ((uint64_t)64 << 20)) {
        j->phase_reported = j->phase_done;
        j->p->on_work(j->phase, j->phase_done, j->phase_total, j->p->ctx);
    }
}

static void release_range(const void *data, uint64_t n, void *ctx)
{
    job *j = ctx;
    worked(j, n);
    const uint8_t *p = data;
    if (p == NULL || n == 0)
        return;
    for (size_t k = 0; k < rf_model_n_files(j->orig); k++)
        if (rfi_file_release_range(rf_model_file(j->orig, k), p, n))
            return;
    if (j->sp != NULL && rfi_spill_holds(j->sp, p, n))
        rfi_pages_release(p, n);
}

/* Rows converted at a time: about 4 Mi values (16 MiB as F32), at least one row. */
static uint64_t rows_per_chunk(uint64_t ne0)
{
    uint64_t rows = ne0 ? ((uint64_t)4 << 20) / ne0 : 1;
    return rows ? rows : 1;
}

/* Converts one planned tensor, streaming: a chunk of rows at a time is read as F32 (the mapping
 * itself for aligned F32, else dequantized), scanned for NaN / Inf, quantized (per expert slice
 * with an imatrix, llama-quantize's order) and appended to the spill; the chunk's source pages
 * are released before the next. Rows are quantized independently, so the bytes equal those of
 * a whole-tensor pass, and memory holds one chunk, not one tensor. */
static rf_status convert_one(job *j, const rf_quant_plan_entry *e, uint64_t *offset, rf_error *err)
{
    const rf_tensor *t = entry_tensor(j, e);
    const uint64_t n = e->n_elements, ne0 = row_len(t);
    const uint64_t rows = ne0 ? n / ne0 : 0;
    const rf_dtype_info *src_info = rf_dtype_get(t->dtype);
    const float *imx = NULL;
    rf_status st = imatrix_for(j, e, &imx, err);
    if (st == RF_OK)
        st = rfi_spill_start(j->sp, offset, err);
    if (st != RF_OK || rows == 0 || src_info == NULL)
        return st;
    const uint64_t slices = imx ? expert_count(t) : 1, slice_rows = rows / slices;
    const uint64_t src_block = src_info->block_elems ? src_info->block_elems : 1;
    /* APR_Q4 / APR_Q8 outputs are flat over the whole tensor (blocks across rows, one scale):
     * quantized in one piece; any source is read in pieces (rf_tensor_dequantize_range) */
    const bool flat = e->dtype == RF_DTYPE_APR_Q4 || e->dtype == RF_DTYPE_APR_Q8;
    uint64_t chunk_rows = flat ? rows : rows_per_chunk(ne0);
    const bool in_place = t->dtype == RF_DTYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0;
    const bool to_f32 = e->dtype == RF_DTYPE_F32;
    uint64_t row_bytes = ne0 * sizeof(float);
    if (!to_f32 && !flat)
        st = rf_quant_row_bytes(e->dtype, ne0, &row_bytes, err);
    rf_quant_options qopts = {.n_threads = j->p->n_threads};
    nonfinite nf = {0, 0, 0};
    uint64_t written = 0;
    for (uint64_t s = 0; st == RF_OK && s < slices; s++) {
        for (uint64_t r0 = 0; st == RF_OK && r0 < slice_rows; r0 += chunk_rows) {
            const uint64_t k = slice_rows - r0 < chunk_rows ? slice_rows - r0 : chunk_rows;
            const uint64_t first = (s * slice_rows + r0) * ne0, count = k * ne0;
            const float *values;
            if (in_place) {
                values = (const float *)(const void *)t->data + first;
            } else {
                if (count > UINT64_MAX / sizeof(float))
                    return rf_error_set(err, RF_ERR_OVERFLOW, "tensor %s: too many values",
                                        e->name);
                st = reserve((void **)&j->f32, &j->f32_cap, count * sizeof(float), "bytes", e->name,
                             err);
                if (st == RF_OK)
                    st = rf_tensor_dequantize_range(t, first, count, j->f32, err);
                if (st != RF_OK)
                    break;
                values = j->f32;
            }
            if (j->p->check_values) {
                nonfinite part;
                rfi_scan_f32(values, count, &part);
                if (part.n_nan + part.n_inf > 0 && nf.n_nan + nf.n_inf == 0)
                    nf.first = first + part.first;
                nf.n_nan += part.n_nan;
                nf.n_inf += part.n_inf;
            }
            if (to_f32) {
                st = rfi_spill_write(j->sp, values, count * sizeof(float), err);
                written += count * sizeof(float);
            } else {
                const uint64_t out_bytes = flat ? e->dst_bytes : k * row_bytes;
                st = reserve((void **)&j->dst, &j->dst_cap, out_bytes, "bytes", e->name, err);
                if (st == RF_OK)
                    st = rf_quantize(e->dtype, values, j->dst, k, ne0, imx ? imx + s * ne0 : NULL,
                                     &qopts, err);
                if (st != RF_OK)
                    rf_error_prefix(err, "tensor %s (%s -> %s)", e->name,
                                    rf_dtype_name(e->src_dtype), rf_dtype_name(e->dtype));
                if (st == RF_OK)
                    st = rfi_spill_write(j->sp, j->dst, out_bytes, err);
                written += out_bytes;
            }
            /* the chunk's source bytes are done with */
            if (chunk_rows < rows)
                release_range(t->data + first / src_block * src_info->block_bytes,
                              count / src_block * src_info->block_bytes, j);
        }
    }
    if (st == RF_OK && j->p->check_values) {
        j->rep->pub.n_values_checked++;
        st = nan_inf(j, t->name, &nf, err);
    }
    if (st == RF_OK && written != e->dst_bytes)
        st = rf_error_set(err, RF_ERR_FORMAT,
                          "tensor %s: %llu bytes converted, %llu planned (%s, %llu rows of %llu)",
                          e->name, (unsigned long long)written, (unsigned long long)e->dst_bytes,
                          rf_dtype_name(e->dtype), (unsigned long long)rows,
                          (unsigned long long)ne0);
    return st;
}

/* The source pass before any conversion, in the source's tensor order: the digest of the
 * tensor data (provenance) and the NaN / Inf scan of the tensors kept as they are (converted
 * ones are scanned on their values in convert_one). Each tensor's pages are released after. */
static rf_status scan_source(job *j, rf_error *err)
{
    const size_t n = rf_model_n_tensors(j->src);
    const rf_quant_plan *p = j->rep->plan;
    bool *converted = j->converted = calloc(n ? n : 1, sizeof *converted);
    if (converted == NULL)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < p->n_entries; i++)
        if (p->entries[i].convert && p->entries[i].tensor_index < n)
            converted[p->entries[i].tensor_index] = true;
    rf_status st = RF_OK;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += rf_model_tensor(j->src, i)->nbytes;
    work(j, "checking", total);
    for (size_t i = 0; st == RF_OK && i < n; i++) {
        const rf_tensor *t = rf_model_tensor(j->src, i);
        const bool check = j->p->check_values && !converted[i];
        if (j->digest != NULL || check)
            st = scan_tensor(j, t, check, err);
    }
    free(converted);
    j->converted = NULL;
    if (st == RF_OK && j->digest != NULL)
        snprintf(j->rep->pub.source_digest, sizeof j->rep->pub.source_digest, "xxh3-64:%016llx",
                 (unsigned long long)XXH3_64bits_digest(j->digest));
    return st;
}

/* The conversion loop; runs under the mapped-file guard (see rf_model_mapped_call). */
static rf_status convert_all(void *ctx, rf_error *err)
{
    job *j = ctx;
    const rf_quant_plan *p = j->rep->plan;
    rf_status st = RF_OK;
    if (j->digest != NULL || j->p->check_values)
        st = scan_source(j, err);
    uint64_t total = 0;
    for (size_t i = 0; i < p->n_entries; i++)
        total += p->entries[i].convert ? p->entries[i].src_bytes : 0;
    work(j, "converting", total);
    for (size_t i = 0; st == RF_OK && i < p->n_entries; i++) {
        const rf_quant_plan_entry *e = &p->entries[i];
        if (!e->convert)
            continue;
        if (j->p->on_progress)
            j->p->on_progress(&j->rep->pub, i, j->p->ctx);
        st = convert_one(j, e, &j->out_offset[i], err);
        const rf_tensor *t = entry_tensor(j, e);
        release_range(t->data, t->nbytes, j);
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
/* Whether the output's extra metadata replaces a source pair of this key (a new provenance
 * record replaces every key of an old one). */
static bool replaced(const job *j, const char *key)
{
    if (j->n_extra > 0 && j->p->provenance && rfi_provenance_key(key))
        return true;
    for (size_t i = 0; i < j->n_extra; i++)
        if (strcmp(j->extra[i].key, key) == 0)
            return true;
    return false;
}

static rf_status gguf_keys(const job *j, const rf_kv_list *pairs, rf_model *out, rf_error *err)
{
    if (!j->p->quantize) {
        rf_status st = RF_OK;
        for (size_t i = 0; st == RF_OK && i < n_pairs(j, pairs); i++)
            if (!replaced(j, pair(j, pairs, i)->key))
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
        skip |= replaced(j, kv->key);
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
        for (size_t i = 0; st == RF_OK && i < j->n_extra; i++)
            st = rf_model_add_kv(out, j->extra[i].key, &j->extra[i].value, err);
    } else {
        for (size_t i = 0; st == RF_OK && i < rf_model_n_kv(j->src); i++)
            st = rf_model_add_kv(out, rf_model_kv(j->src, i)->key, &rf_model_kv(j->src, i)->value,
                                 err);
    }
    if (st == RF_OK && j->format == RF_FORMAT_SAFETENSORS && j->p->provenance)
        st = rfi_provenance_companions(j->src, out, err);
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

/* Adds one file's comparison to the report's totals; the first violation becomes the error. */
static rf_status add_comparison(job *j, const rf_compare_report *c, const char *path, rf_error *err)
{
    rf_convert_report *r = &j->rep->pub;
    for (size_t k = 0; k <= RF_COMPARE_VIOLATION; k++)
        r->compare_counts[k] += c->counts[k];
    r->n_compared += c->n_entries;
    for (size_t i = 0; i < c->n_entries; i++) {
        const rf_compare_entry *e = &c->entries[i];
        const char *name = e->name ? e->name : e->source_name ? e->source_name : "?";
        if (e->kind == RF_COMPARE_VIOLATION && r->first_violation[0] == '\0')
            snprintf(r->first_violation, sizeof r->first_violation, "tensor %s: %s", name,
                     e->detail);
        double score = e->bound > 0 ? e->rel_rmse / e->bound : 0;
        double worst = r->worst_bound > 0 ? r->worst_rel_rmse / r->worst_bound : 0;
        if (e->kind == RF_COMPARE_BOUNDED && (r->worst_tensor[0] == '\0' || score > worst)) {
            r->worst_rel_rmse = e->rel_rmse;
            r->worst_bound = e->bound;
            snprintf(r->worst_tensor, sizeof r->worst_tensor, "%s", name);
        }
    }
    if (c->counts[RF_COMPARE_VIOLATION] == 0)
        return RF_OK;
    return rf_error_set(err, RF_ERR_MISMATCH,
                        "%s: %zu tensor(s) differ from the source beyond what their types allow; "
                        "%s",
                        path, c->counts[RF_COMPARE_VIOLATION], r->first_violation);
}

/* The fields of the metadata map in out against the source: a difference fails the conversion
 * when Rosetta's round-trip keys were written (provenance), else it is reported. */
static rf_status check_fields(job *j, const rf_model *out, const char *path, rf_error *err)
{
    fields_result fr;
    rf_status st = rfi_fields_compare(j->src, out, &fr, err);
    if (st != RF_OK)
        return st;
    rf_convert_report *r = &j->rep->pub;
    r->n_fields_checked += fr.n_checked;
    r->n_fields_differ += fr.n_differ;
    snprintf(r->fields_differ, sizeof r->fields_differ, "%s", fr.fields);
    snprintf(r->first_field_diff, sizeof r->first_field_diff, "%s", fr.first);
    if (fr.n_differ == 0 || !j->p->provenance)
        return RF_OK;
    return rf_error_set(err, RF_ERR_MISMATCH, "%s: %zu field(s) of the metadata map not kept: %s",
                        path, fr.n_differ, fr.first);
}

/* Run on each finished data file before it is renamed into place: the caller's hook, then the
 * comparison with the source (p->compare). */
static rf_status after_write(const char *temp_path, const char *final_path, void *ctx,
                             rf_error *err)
{
    job *j = ctx;
    rf_status st = j->p->verify ? j->p->verify(temp_path, final_path, j->p->ctx, err) : RF_OK;
    if (st == RF_OK && j->p->compare) {
        work(j, "comparing", 0);
        rf_model *out = rf_model_open(temp_path, NULL, err);
        if (out == NULL) {
            rf_error_prefix(err, "%s: re-reading the output to compare it", final_path);
            return RF_ERR_WRITE;
        }
        rf_compare_report *c = NULL;
        st = rf_convert_compare(j->src, out, NULL, &c, err);
        if (st == RF_OK)
            st = add_comparison(j, c, final_path, err);
        /* a SafeTensors data file holds no config or tokenizer: its directory is checked whole */
        if (st == RF_OK && j->format != RF_FORMAT_SAFETENSORS)
            st = check_fields(j, out, final_path, err);
        rf_compare_report_free(c);
        rf_model_free(out);
    }
    return st;
}

/* ---- a Hugging Face directory, all at once ----------------------------------------------- */

/* A SafeTensors output that is a checkpoint directory (see rf_safetensors_write). */
static bool is_dir_target(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) == 0)
        return S_ISDIR(sb.st_mode);
    return !ends_with(path, ".safetensors");
}

/* Removes a directory of plain files (a staging directory). */
static void remove_flat_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        char path[PATH_MAX];
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* The directory holding path, synced so that a rename in it survives a crash. */
static void sync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Names a previous conversion or transformers' save_pretrained leaves in a checkpoint
 * directory: only a directory holding nothing else is replaced. */
static bool checkpoint_file(const char *name)
{
    static const char *const exact[] = {"config.json",
                                        "generation_config.json",
                                        "tokenizer.json",
                                        "tokenizer_config.json",
                                        "chat_template.jinja",
                                        "special_tokens_map.json",
                                        RF_SAFETENSORS_INDEX_FILE};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(name, exact[i]) == 0)
            return true;
    return strncmp(name, "model", 5) == 0 && ends_with(name, ".safetensors");
}

/* RF_OK when target may be replaced: absent, or a directory of checkpoint files only. */
static rf_status replaceable(const char *target, rf_error *err)
{
    struct stat sb;
    if (stat(target, &sb) != 0)
        return RF_OK;
    if (!S_ISDIR(sb.st_mode))
        return rf_error_set(err, RF_ERR_WRITE, "%s: exists and is not a directory", target);
    DIR *d = opendir(target);
    if (d == NULL)
        return rf_error_set(err, RF_ERR_WRITE, "%s: cannot read the directory: %s", target,
                            strerror(errno));
    rf_status st = RF_OK;
    struct dirent *e;
    while (st == RF_OK && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            !checkpoint_file(e->d_name))
            st = rf_error_set(err, RF_ERR_WRITE,
                              "%s: the directory holds '%s', which is not part of a checkpoint; "
                              "write to a new or empty directory",
                              target, e->d_name);
    closedir(d);
    return st;
}

/* The files of a directory output appear together: they are written into a staging directory
 * next to it, which then takes the directory's place in one rename (an existing directory is
 * exchanged with it, atomically, and removed). A crash at any moment leaves the destination
 * absent or as it was before (and at most the staging directory beside it). */
static rf_status write_directory(job *j, const rf_model *out, const rf_safetensors_write_options *o,
                                 const write_hook *hook, rf_error *err)
{
    char target[PATH_MAX], stage[PATH_MAX + 16];
    size_t n = strlen(j->out_path);
    while (n > 1 && j->out_path[n - 1] == '/')
        n--;
    if (n >= sizeof target)
        return rf_error_set(err, RF_ERR_WRITE, "%s: path too long", j->out_path);
    snprintf(target, sizeof target, "%.*s", (int)n, j->out_path);
    rf_status st = replaceable(target, err);
    if (st != RF_OK)
        return st;
    snprintf(stage, sizeof stage, "%s.tmp-XXXXXX", target);
    int slot = -1; /* SIGINT/SIGTERM/SIGHUP remove the staging directory (output.c) */
    if (rfi_output_mkdtemp(stage, &slot) == NULL)
        return rf_error_set(err, RF_ERR_WRITE, "%s: cannot create a staging directory: %s", target,
                            strerror(errno));
    chmod(stage, 0755);
    st = rfi_safetensors_write_hooked(out, stage, o, hook, err);
    if (st == RF_OK && j->p->compare) {
        rf_model *back = rf_model_open(stage, NULL, err);
        st = back ? check_fields(j, back, target, err) : RF_ERR_WRITE;
        rf_model_free(back);
    }
    if (st == RF_OK) {
        struct stat sb;
        bool exists = stat(target, &sb) == 0;
        int rc = exists ? renameat2(AT_FDCWD, stage, AT_FDCWD, target, RENAME_EXCHANGE)
                        : rename(stage, target);
        if (rc != 0)
            st = rf_error_set(err, RF_ERR_WRITE, "%s: cannot move the new files into place: %s",
                              target, strerror(errno));
        else
            sync_parent(target);
    }
    remove_flat_dir(stage); /* the failed output, or the previous directory */
    rfi_output_temp_forget(slot);
    return st;
}

/* The output's extra metadata: the caller's pairs, then the provenance keys. */
static rf_status make_extras(job *j, rf_error *err)
{
    rf_model *x = rf_model_new(RF_FORMAT_UNKNOWN, err);
    if (x == NULL)
        return RF_ERR_NOMEM;
    j->extras = x;
    rf_status st = RF_OK;
    for (size_t i = 0; st == RF_OK && i < j->p->n_extra_metadata; i++)
        st = rf_model_add_kv(x, j->p->extra_metadata[i].key, &j->p->extra_metadata[i].value, err);
    if (st == RF_OK && j->p->provenance) {
        provenance_facts f = {j->p, j->format, j->rep->pub.source_digest, j->rep->plan};
        const char *record = NULL;
        st = rfi_provenance_record(j->src, &f, j->rep->names, &record, err);
        if (st == RF_OK) {
            j->rep->pub.provenance = record;
            st = rfi_provenance_keys(j->src, j->format, record, x, err);
        }
    }
    size_t n = rf_model_n_kv(x);
    j->extra = calloc(n ? n : 1, sizeof *j->extra);
    if (st == RF_OK && j->extra == NULL)
        st = rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == RF_OK && i < n; i++)
        j->extra[j->n_extra++] = *rf_model_kv(x, i);
    return st;
}

static rf_status write_output(job *j, const rf_kv_list *gguf_pairs, rf_error *err)
{
    rf_model *out = NULL;
    rf_status st = build_output(j, gguf_pairs, &out, err);
    if (st != RF_OK)
        return st;
    write_hook hook = {after_write, j, release_range, j};
    /* APR and the comparison read the data back: twice the bytes */
    work(j, "writing", j->rep->plan->dst_bytes * (j->format == RF_FORMAT_APR ? 2 : 1));
    switch (j->format) {
    case RF_FORMAT_GGUF: st = rfi_gguf_write_hooked(out, j->out_path, NULL, &hook, err); break;
    case RF_FORMAT_APR: {
        rf_apr_write_options o = {0};
        o.extra = j->extra;
        o.n_extra = j->n_extra;
        st = rfi_apr_write_hooked(out, j->out_path, &o, &hook, err);
        break;
    }
    case RF_FORMAT_SAFETENSORS: {
        rf_safetensors_write_options o = {0};
        for (size_t i = 0; i < j->n_extra; i++)
            o.provenance = j->extra[i].value.as.str.data;
        st = is_dir_target(j->out_path)
                 ? write_directory(j, out, &o, &hook, err)
                 : rfi_safetensors_write_hooked(out, j->out_path, &o, &hook, err);
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

static bool same_inode(const struct stat *a, const char *path)
{
    struct stat b;
    return stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

/* The output must not be one of the source's files, nor the directory that holds them (a
 * directory output replaces its target). */
static rf_status check_not_source(const job *j, rf_error *err)
{
    struct stat out;
    if (stat(j->out_path, &out) != 0)
        return RF_OK;
    for (size_t k = 0; k < rf_model_n_files(j->orig); k++) {
        const char *path = rf_file_path(rf_model_file(j->orig, k));
        if (path == NULL)
            continue;
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        if (same_inode(&out, path) || (S_ISDIR(out.st_mode) && same_inode(&out, dir)))
            return rf_error_set(err, RF_ERR_ARGUMENT,
                                "%s: the output would replace the source (%s)", j->out_path, path);
    }
    return RF_OK;
}

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
    if (p->convert_unheld &&
        (!rf_format_holds(f, p->unheld_dtype) ||
         (p->unheld_dtype != RF_DTYPE_F32 && !rf_can_quantize(p->unheld_dtype))))
        return rf_error_set(
            err, RF_ERR_ARGUMENT, "%s cannot be the type of tensors %s output cannot hold: %s",
            rf_dtype_name(p->unheld_dtype), format_label(f),
            rf_format_holds(f, p->unheld_dtype) ? "Rosetta cannot produce it"
                                                : "the format cannot hold it either");
    if (j->out_path == NULL && !p->dry_run)
        return rf_error_set(err, RF_ERR_ARGUMENT, "rf_convert: no output path");
    if (!p->dry_run) {
        /* before any work: never a device, FIFO or directory in place of a file, never the
         * input's own files unless asked, a directory that exists and is writable */
        rf_output_check_options o = {RF_OUTPUT_FILE, j->orig, p->replace_input};
        if (f == RF_FORMAT_SAFETENSORS && is_dir_target(j->out_path))
            o.kind = RF_OUTPUT_DIRECTORY; /* a checkpoint directory (write_directory) */
        rf_status st = rf_output_check(j->out_path, &o, err);
        if (st == RF_OK && !p->replace_input)
            st = check_not_source(j, err);
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
    j.src = j.orig = src;
    j.p = params != NULL ? params : &defaults;
    j.out_path = out_path;
    j.gguf_src = rf_model_format(src) == RF_FORMAT_GGUF;
    rf_status st = check_params(&j, err);
    if (st != RF_OK)
        return st;
    j.rep = calloc(1, sizeof *j.rep);
    if (j.rep == NULL || (j.rep->names = rf_model_new(RF_FORMAT_UNKNOWN, err)) == NULL) {
        free(j.rep);
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    }
    j.rep->pub.format = j.format;
    j.rep->pub.out_path = out_path;
    const char *view_arch = view_architecture(&j);
    if (view_arch != NULL)
        st = make_view(&j, view_arch, err);
    /* GGUF output must name its architecture (llama.cpp loads nothing else); after --arch */
    if (st == RF_OK && j.format == RF_FORMAT_GGUF)
        st = rfi_gguf_check_architecture(j.src, source_name(&j), err);
    if (st == RF_OK && j.p->check_contract)
        st = check_contract(&j, err);
    rf_kv_list *gguf_pairs = NULL;
    if (st == RF_OK && j.format == RF_FORMAT_GGUF && !j.gguf_src)
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
        if (j.p->provenance && (j.digest = XXH3_createState()) != NULL)
            XXH3_64bits_reset(j.digest);
        if (j.p->provenance && j.digest == NULL)
            st = rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        /* the spill goes next to the output: beside a directory output, not into it */
        char near[PATH_MAX];
        size_t n = strlen(out_path);
        while (n > 1 && out_path[n - 1] == '/')
            n--;
        snprintf(near, sizeof near, "%.*s", (int)n, out_path);
        if (st == RF_OK && (j.sp = rfi_spill_open(near, err)) == NULL)
            st = err && err->status ? err->status : RF_ERR_WRITE;
        if (st == RF_OK)
            st = rf_model_mapped_call(j.orig, convert_all, &j, err);
        /* the conversion buffers are done with: the write needs none of that memory */
        free(j.f32);
        free(j.dst);
        j.f32 = NULL;
        j.dst = NULL;
        if (st == RF_OK)
            st = rfi_spill_map(j.sp, err);
        if (st == RF_OK)
            st = make_extras(&j, err);
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
    XXH3_freeState(j.digest);
    free(j.head_of);
    free(j.out_offset);
    free(j.converted);
    free(j.f32);
    free(j.dst);
    free(j.extra);
    rf_model_free(j.extras);
    rf_model_free(j.view);
    if (report != NULL && (j.rep->plan != NULL || j.rep->contract != NULL))
        *report = &j.rep->pub;
    else
        rf_convert_report_free(&j.rep->pub);
    return st;
}
