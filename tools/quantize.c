/* apr-quantize: quantize a model with llama-quantize's type mixes (Q4_K_M, Q8_0, ...), from any
 * input format, printing the per-tensor plan. The plan comes from quant_plan.h, the bytes from
 * quant.h, the files from the format writers. Not for: converting names or formats without a
 * type change (apr convert). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "rosetta/apr.h"
#include "rosetta/gguf.h"
#include "rosetta/imatrix.h"
#include "rosetta/model.h"
#include "rosetta/names.h"
#include "rosetta/quant.h"
#include "rosetta/quant_plan.h"
#include "rosetta/safetensors.h"

static const cli_tool TOOL = {
    "quantize", "quantize a model with llama-quantize's type mixes (q4_k_m, q8_0, ...)",
    "usage: apr quantize [options] IN OUT TYPE\n"
    "       apr quantize --dry-run [options] IN [OUT] TYPE\n\n"
    "Quantizes IN (GGUF, SafeTensors file or directory, APR) to OUT, choosing each tensor's type\n"
    "exactly as llama.cpp's llama-quantize does for TYPE, and prints the per-tensor plan (type,\n"
    "size, and the rule that chose it) on stdout. Non-F32 sources (F16, BF16, quantized) are\n"
    "dequantized to F32 first. OUT's format comes from its extension (.gguf, .apr, .safetensors)\n"
    "or --format. GGUF output equals llama-quantize's output on the F32 GGUF of the same model:\n"
    "same tensor order, types, bytes and metadata (general.file_type = the mix's llama_ftype,\n"
    "general.quantization_version = 2, appended last; every other key kept).\n\n"
    "TYPE: q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k\n"
    "      f16 bf16 f32 (any case; q3_k, q4_k, q5_k are the _m mixes; or the llama_ftype "
    "number)\n\n"
    "Options:\n"
    "  -t, --threads N               worker threads (default: all CPUs); bytes do not depend on "
    "it\n"
    "      --dry-run                 print the plan and sizes only; OUT may be left out\n"
    "      --imatrix FILE            importance matrix (llama-imatrix GGUF or legacy .dat)\n"
    "      --pure                    no per-tensor mix rules: every weight gets TYPE's default "
    "type\n"
    "                                (fallbacks for row lengths still apply)\n"
    "      --leave-output-tensor     keep output.weight unquantized\n"
    "      --output-tensor-type T    type of output.weight (and of a tied token embedding)\n"
    "      --token-embedding-type T  type of token_embd.weight\n"
    "      --tensor-type PAT=T       type T for tensors whose GGUF name matches the regular\n"
    "                                expression PAT (repeatable; the first match wins)\n"
    "      --format F                output format: gguf, apr or safetensors\n"
    "      --json                    print the plan as one JSON object (schema in docs)\n"
    "      --allow-requantize        no warning when a quantized tensor is requantized (it is\n"
    "                                dequantized to F32 first either way)\n"
    "  -q, --quiet                   no progress and no warnings on stderr\n\n"
    "APR holds only F32, F16, BF16, Q4_K and Q6_K of these types and SafeTensors only F32, F16\n"
    "and BF16: a plan needing another type for that format is refused (exit 2).\n"};

enum {
    OPT_DRY_RUN = 256,
    OPT_IMATRIX,
    OPT_PURE,
    OPT_LEAVE_OUTPUT,
    OPT_OUTPUT_TYPE,
    OPT_TOKEN_TYPE,
    OPT_TENSOR_TYPE,
    OPT_FORMAT,
    OPT_JSON,
    OPT_ALLOW_REQUANTIZE,
};

#define MAX_OVERRIDES 256

typedef struct options {
    const char *in, *out, *type, *imatrix, *format;
    int threads;
    bool dry_run, json, quiet, allow_requantize;
    rf_quant_plan_options plan;
    rf_quant_override overrides[MAX_OVERRIDES];
    char *override_patterns[MAX_OVERRIDES];
} options;

typedef enum out_format { OUT_GGUF, OUT_APR, OUT_SAFETENSORS } out_format;

static const char *out_format_name(out_format f)
{
    switch (f) {
    case OUT_GGUF: return "gguf";
    case OUT_APR: return "apr";
    case OUT_SAFETENSORS: return "safetensors";
    }
    return "?";
}

/* ---- the job: source, GGUF-named view, plan, converted data ------------------------------- */

typedef struct job {
    const options *o;
    out_format format;
    rf_model *src;
    rf_model *meta; /* GGUF metadata of the source (src itself when it is GGUF) */
    bool meta_owned;
    rf_tensor *view;  /* the source's tensors under GGUF names (tied head left out) */
    size_t *view_src; /* source index of each view tensor */
    size_t n_view;
    long *twin_of; /* per source tensor: view index it duplicates (tied head), or -1 */
    char (*view_names)[128];
    rf_quant_plan *plan;
    rf_imatrix *im;
    /* converted tensor data: spilled to an unlinked file next to OUT, mapped once complete */
    int spill_fd;
    uint64_t spill_size;
    uint8_t *spill_map;
    uint64_t *out_offset; /* per plan entry: offset in the spill, or UINT64_MAX = source bytes */
} job;

static void job_free(job *j)
{
    rf_quant_plan_free(j->plan);
    rf_imatrix_free(j->im);
    if (j->spill_map != NULL && j->spill_size > 0)
        munmap(j->spill_map, j->spill_size);
    if (j->spill_fd >= 0)
        close(j->spill_fd);
    free(j->out_offset);
    free(j->view);
    free(j->view_src);
    free(j->twin_of);
    free(j->view_names);
    if (j->meta_owned)
        rf_model_free(j->meta);
    rf_model_free(j->src);
}

static bool is_gguf_source(const rf_model *m) { return rf_model_format(m) == RF_FORMAT_GGUF; }

/* Directory of path (for temporary files next to the output), or "." */
static void dir_of(const char *path, char *out, size_t size)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (slash == NULL) {
        snprintf(out, size, ".");
    } else if (slash == path) {
        snprintf(out, size, "/");
    } else {
        snprintf(out, size, "%.*s", (int)(slash - path), path);
    }
}

static const char *temp_dir(const options *o, char *buf, size_t size)
{
    if (o->out != NULL) {
        dir_of(o->out, buf, size);
        return buf;
    }
    const char *t = getenv("TMPDIR");
    snprintf(buf, size, "%s", t && *t ? t : "/tmp");
    return buf;
}

/* The GGUF metadata a converter writes for a SafeTensors or APR model (keys in
 * convert_hf_to_gguf.py's order): the GGUF writer synthesizes it; a tensor-less GGUF is written
 * to a temporary file and read back, so llama-quantize's rules see the keys llama.cpp would. */
static rf_model *gguf_metadata_of(const rf_model *src, const options *o, rf_error *err)
{
    if (rf_model_config_get(src)->architecture == NULL) {
        rf_error_set(err, RF_ERR_FORMAT,
                     "%s: the model's architecture is unknown (no config.json or architecture "
                     "metadata), and GGUF output needs general.architecture",
                     o->in);
        return NULL;
    }
    rf_model *shell = rf_model_new(rf_model_format(src), err);
    if (shell == NULL)
        return NULL;
    rf_status st = RF_OK;
    for (size_t i = 0; st == RF_OK && i < rf_model_n_kv(src); i++) {
        const rf_kv *kv = rf_model_kv(src, i);
        st = rf_model_add_kv(shell, kv->key, &kv->value, err);
    }
    if (st != RF_OK) {
        rf_model_free(shell);
        return NULL;
    }
    *rf_model_config_mut(shell) = *rf_model_config_get(src);
    if (rf_model_tokenizer(src) != NULL)
        *rf_model_tokenizer_mut(shell) = *rf_model_tokenizer(src);
    char dir[PATH_MAX], path[PATH_MAX + 64];
    temp_dir(o, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/.apr-quantize-meta-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        rf_error_set(err, RF_ERR_WRITE, "%s: cannot create a temporary file: %s", path,
                     strerror(errno));
        rf_model_free(shell);
        return NULL;
    }
    close(fd);
    st = rf_gguf_write(shell, path, NULL, err);
    rf_model_free(shell);
    rf_model *meta = NULL;
    if (st == RF_OK)
        meta = rf_model_open(path, NULL, err);
    unlink(path); /* the mapping stays valid */
    if (meta == NULL)
        rf_error_prefix(err, "%s: GGUF metadata for the output", o->in);
    return meta;
}

/* lower-case architecture, "Qwen2ForCausalLM" -> "qwen2" (for the plan's model rules) */
static void plain_arch(const char *arch, char *out, size_t size)
{
    snprintf(out, size, "%s", arch ? arch : "");
    char *suffix = strstr(out, "ForCausalLM");
    if (suffix != NULL)
        *suffix = '\0';
    for (char *p = out; *p; p++)
        *p = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
}

static rf_status build_view(job *j, rf_error *err)
{
    const rf_model *src = j->src;
    size_t n = rf_model_n_tensors(src);
    j->view = calloc(n ? n : 1, sizeof *j->view);
    j->view_src = calloc(n ? n : 1, sizeof *j->view_src);
    j->twin_of = calloc(n ? n : 1, sizeof *j->twin_of);
    j->view_names = calloc(n ? n : 1, sizeof *j->view_names);
    if (!j->view || !j->view_src || !j->twin_of || !j->view_names)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    const bool gguf = is_gguf_source(src);
    const bool tied = rf_model_config_get(src)->tie_word_embeddings == 1;
    size_t pending_head = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        const rf_tensor *t = rf_model_tensor(src, i);
        j->twin_of[i] = -1;
        char *name = j->view_names[j->n_view];
        if (gguf || !rf_name_to_gguf(t->name, name, sizeof j->view_names[0]))
            snprintf(name, sizeof j->view_names[0], "%s", t->name);
        /* a tied model's head is the embedding: GGUF has no output.weight then (DESIGN 3) */
        if (!gguf && tied && strcmp(name, "output.weight") == 0) {
            pending_head = i;
            continue;
        }
        j->view[j->n_view] = *t;
        j->view[j->n_view].name = name;
        j->view_src[j->n_view] = i;
        j->n_view++;
    }
    if (pending_head != SIZE_MAX) {
        for (size_t v = 0; v < j->n_view; v++)
            if (strcmp(j->view[v].name, "token_embd.weight") == 0)
                j->twin_of[pending_head] = (long)v;
    }
    return RF_OK;
}

static rf_quant_model_info model_info(const rf_model *m, char *arch_buf, size_t arch_size)
{
    const rf_model_config *c = rf_model_config_get(m);
    rf_quant_model_info info = {0};
    plain_arch(c->architecture, arch_buf, arch_size);
    info.architecture = arch_buf;
    info.n_layer = c->n_layers > UINT32_MAX ? UINT32_MAX : (uint32_t)c->n_layers;
    info.n_head = c->n_heads > UINT32_MAX ? UINT32_MAX : (uint32_t)c->n_heads;
    info.n_head_kv = c->n_kv_heads > UINT32_MAX ? UINT32_MAX : (uint32_t)c->n_kv_heads;
    char key[160];
    snprintf(key, sizeof key, "%s.expert_count", arch_buf);
    const rf_kv *kv = rf_model_find_kv(m, key);
    uint64_t v = 0;
    if (kv != NULL && rf_value_as_u64(&kv->value, &v))
        info.n_expert = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    return info;
}

/* ---- checks before any work --------------------------------------------------------------- */

static bool format_holds(out_format f, rf_dtype dtype)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    if (info == NULL)
        return false;
    switch (f) {
    case OUT_GGUF: return info->ggml_code >= 0;
    case OUT_APR: return info->apr_code >= 0;
    case OUT_SAFETENSORS: return info->st_name != NULL;
    }
    return false;
}

/* Quantized types whose llama.cpp quantizer weights by the imatrix when one is given (Q8_0 and
 * the float types ignore it). */
static bool llama_weights_by_imatrix(rf_dtype dtype)
{
    const rf_dtype_info *info = rf_dtype_get(dtype);
    return info != NULL && info->kind == RF_KIND_QUANT && info->ggml_code >= 0 &&
           dtype != RF_DTYPE_Q8_0;
}

static uint64_t row_len(const rf_tensor *t) { return t->ndim > 0 ? t->shape[t->ndim - 1] : 1; }
static uint64_t expert_count(const rf_tensor *t)
{
    return t->ndim >= 3 ? t->shape[t->ndim - 3] : 1;
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
    const rf_tensor *t = &j->view[e->tensor_index];
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
                            j->o->imatrix, e->name, (unsigned long long)n,
                            (unsigned long long)(row_len(t) * expert_count(t)));
    }
    if (!rf_quant_uses_imatrix(e->dtype)) {
        if (llama_weights_by_imatrix(e->dtype))
            return rf_error_set(err, RF_ERR_UNSUPPORTED,
                                "tensor %s: llama.cpp's %s quantizer weights rows by the "
                                "importance matrix and Rosetta has no such %s path, so the bytes "
                                "would differ; leave out --imatrix or give the tensor another "
                                "type with --tensor-type",
                                e->name, rf_dtype_name(e->dtype), rf_dtype_name(e->dtype));
        return RF_OK;
    }
    *out = values;
    return RF_OK;
}

static int check_plan(const job *j)
{
    const rf_quant_plan *p = j->plan;
    size_t bad = 0;
    const rf_quant_plan_entry *first = NULL;
    for (size_t i = 0; i < p->n_entries; i++) {
        if (!format_holds(j->format, p->entries[i].dtype)) {
            if (first == NULL)
                first = &p->entries[i];
            bad++;
        }
    }
    if (first != NULL) {
        cli_error(&TOOL,
                  "%s output cannot hold %s (tensor %s%s): %s; write GGUF (--format gguf) or "
                  "choose a mix or --tensor-type whose types %s holds",
                  out_format_name(j->format), rf_dtype_name(first->dtype), first->name,
                  bad > 1 ? " and others" : "",
                  j->format == OUT_APR
                      ? "APR stores F32, F16, BF16, Q4_K, Q6_K, APR_Q4, APR_Q8 (no Q8_0, Q5_0, "
                        "Q4_0, Q5_K ...)"
                      : "SafeTensors has no quantized types",
                  out_format_name(j->format));
        return APR_EXIT_USAGE;
    }
    for (size_t i = 0; i < p->n_entries; i++) {
        const rf_quant_plan_entry *e = &p->entries[i];
        if (!e->convert)
            continue;
        if (e->src_dtype != RF_DTYPE_F32 && !rf_can_dequantize(e->src_dtype)) {
            cli_error(&TOOL, "%s: tensor %s: cannot convert from %s: unsupported dtype %s",
                      j->o->in, e->name, rf_dtype_name(e->src_dtype), rf_dtype_name(e->src_dtype));
            return APR_EXIT_INPUT;
        }
        if (e->dtype != RF_DTYPE_F32 && !rf_can_quantize(e->dtype)) {
            cli_error(&TOOL, "tensor %s: Rosetta cannot produce %s (planned: %s)", e->name,
                      rf_dtype_name(e->dtype), e->reason);
            return APR_EXIT_USAGE;
        }
        rf_error err = {0};
        const float *imx;
        if (imatrix_for(j, e, &imx, &err) != RF_OK) {
            cli_error(&TOOL, "%s", err.message);
            return err.status == RF_ERR_UNSUPPORTED ? APR_EXIT_USAGE : APR_EXIT_INPUT;
        }
    }
    return APR_EXIT_OK;
}

/* ---- printing the plan -------------------------------------------------------------------- */

static void shape_string(const rf_tensor *t, char *out, size_t size)
{
    size_t w = (size_t)snprintf(out, size, "[");
    for (int d = 0; d < t->ndim && w < size; d++)
        w += (size_t)snprintf(out + w, size - w, "%s%llu", d ? ", " : "",
                              (unsigned long long)t->shape[d]);
    if (w < size)
        snprintf(out + w, size - w, "]");
}

static double mib(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* "512 B", "3.00 KiB", "1.25 MiB", "4.20 GiB" */
static const char *human(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        snprintf(buf, size, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, size, "%.2f %s", v, units[u]);
    return buf;
}

static double bpw(uint64_t bytes, uint64_t elements)
{
    return elements ? (double)bytes * 8.0 / (double)elements : 0.0;
}

static void print_plan_text(const job *j)
{
    const rf_quant_plan *p = j->plan;
    printf("%s -> %s as %s (general.file_type %u), %zu tensors\n", j->o->in,
           j->o->out ? j->o->out : "(dry run)", rf_quant_mix_name(p->mix), p->file_type,
           p->n_entries);
    for (size_t i = 0; i < p->n_entries; i++) {
        const rf_quant_plan_entry *e = &p->entries[i];
        char shape[96], a[32], b[32];
        shape_string(&j->view[e->tensor_index], shape, sizeof shape);
        if (e->convert)
            printf("[%4zu/%4zu] %-36s %-18s %-6s -> %-6s %10s -> %10s  %s\n", i + 1, p->n_entries,
                   e->name, shape, rf_dtype_name(e->src_dtype), rf_dtype_name(e->dtype),
                   human(e->src_bytes, a, sizeof a), human(e->dst_bytes, b, sizeof b), e->reason);
        else
            printf("[%4zu/%4zu] %-36s %-18s %-6s    %-6s %10s    %10s  %s\n", i + 1, p->n_entries,
                   e->name, shape, rf_dtype_name(e->src_dtype), "kept",
                   human(e->src_bytes, a, sizeof a), "", e->reason);
    }
    printf("model size = %10.2f MiB (%.2f BPW)\n", mib(p->src_bytes),
           bpw(p->src_bytes, p->n_elements));
    printf("quant size = %10.2f MiB (%.2f BPW)\n", mib(p->dst_bytes),
           bpw(p->dst_bytes, p->n_elements));
    if (p->n_fallback > 0)
        printf("%zu of %zu tensor(s) required fallback quantization\n", p->n_fallback,
               p->n_entries);
}

static cJSON *plan_json(const job *j, bool written)
{
    const rf_quant_plan *p = j->plan;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "input", j->o->in);
    if (j->o->out)
        cJSON_AddStringToObject(root, "output", j->o->out);
    else
        cJSON_AddNullToObject(root, "output");
    cJSON_AddStringToObject(root, "format", out_format_name(j->format));
    cJSON_AddStringToObject(root, "mix", rf_quant_mix_name(p->mix));
    cJSON_AddNumberToObject(root, "file_type", p->file_type);
    cJSON_AddBoolToObject(root, "dry_run", j->o->dry_run);
    cJSON_AddBoolToObject(root, "written", written);
    cJSON_AddNumberToObject(root, "n_tensors", (double)p->n_entries);
    cJSON_AddNumberToObject(root, "n_converted", (double)p->n_convert);
    cJSON_AddNumberToObject(root, "n_fallback", (double)p->n_fallback);
    cJSON_AddNumberToObject(root, "n_elements", (double)p->n_elements);
    cJSON_AddNumberToObject(root, "src_bytes", (double)p->src_bytes);
    cJSON_AddNumberToObject(root, "dst_bytes", (double)p->dst_bytes);
    cJSON_AddNumberToObject(root, "src_bpw", bpw(p->src_bytes, p->n_elements));
    cJSON_AddNumberToObject(root, "dst_bpw", bpw(p->dst_bytes, p->n_elements));
    cJSON *list = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; i < p->n_entries; i++) {
        const rf_quant_plan_entry *e = &p->entries[i];
        const rf_tensor *t = &j->view[e->tensor_index];
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name", e->name);
        cJSON_AddStringToObject(item, "source_name",
                                rf_model_tensor(j->src, j->view_src[e->tensor_index])->name);
        cJSON *shape = cJSON_AddArrayToObject(item, "shape");
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddStringToObject(item, "src_dtype", rf_dtype_name(e->src_dtype));
        cJSON_AddStringToObject(item, "chosen_dtype", rf_dtype_name(e->chosen_dtype));
        cJSON_AddStringToObject(item, "dtype", rf_dtype_name(e->dtype));
        cJSON_AddBoolToObject(item, "quantizable", e->quantizable);
        cJSON_AddBoolToObject(item, "convert", e->convert);
        cJSON_AddBoolToObject(item, "fallback", e->fallback);
        cJSON_AddNumberToObject(item, "src_bytes", (double)e->src_bytes);
        cJSON_AddNumberToObject(item, "dst_bytes", (double)e->dst_bytes);
        cJSON_AddStringToObject(item, "reason", e->reason);
        cJSON_AddItemToArray(list, item);
    }
    return root;
}

/* ---- converting ----------------------------------------------------------------------------- */

static rf_status spill_open(job *j, rf_error *err)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    temp_dir(j->o, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/.apr-quantize-data-XXXXXX", dir);
    j->spill_fd = mkstemp(path);
    if (j->spill_fd < 0)
        return rf_error_set(err, RF_ERR_WRITE, "%s: cannot create a temporary file: %s", path,
                            strerror(errno));
    unlink(path); /* nothing is left behind, whatever happens */
    return RF_OK;
}

static rf_status spill_write(job *j, const void *data, uint64_t n, uint64_t *offset, rf_error *err)
{
    /* 64-byte aligned starts, so that mapped data is aligned for every element type */
    static const uint8_t zeros[64];
    uint64_t pad = (64 - j->spill_size % 64) % 64;
    const uint8_t *p = zeros;
    uint64_t left = pad;
    while (left > 0) {
        ssize_t w = write(j->spill_fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return rf_error_set(err, RF_ERR_WRITE, "temporary file: write failed: %s",
                                strerror(errno));
        left -= (uint64_t)w;
        p += w;
    }
    j->spill_size += pad;
    *offset = j->spill_size;
    p = data;
    left = n;
    while (left > 0) {
        size_t chunk = left > (1u << 30) ? (1u << 30) : (size_t)left;
        ssize_t w = write(j->spill_fd, p, chunk);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return rf_error_set(err, RF_ERR_WRITE,
                                "temporary file next to the output: write failed: %s",
                                w < 0 ? strerror(errno) : "no space");
        left -= (uint64_t)w;
        p += w;
    }
    j->spill_size += n;
    return RF_OK;
}

/* Converts one planned tensor: F32 values (dequantized unless the source is F32), then the
 * quantizer, per expert slice when an imatrix is used (llama-quantize's order). */
static rf_status convert_one(job *j, const rf_quant_plan_entry *e, uint64_t *offset, rf_error *err)
{
    const rf_tensor *t = &j->view[e->tensor_index];
    const uint64_t n = e->n_elements, ne0 = row_len(t);
    const uint64_t rows = ne0 ? n / ne0 : 0;
    float *f32 = NULL;
    const float *values;
    if (t->dtype == RF_DTYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) {
        values = (const void *)t->data; /* F32 and 4-byte aligned: use the mapping in place */
    } else {
        f32 = malloc(n ? n * sizeof *f32 : 1);
        if (f32 == NULL)
            return rf_error_set(err, RF_ERR_NOMEM, "tensor %s: out of memory for %llu floats",
                                e->name, (unsigned long long)n);
        rf_tensor named = *t;
        named.name = rf_model_tensor(j->src, j->view_src[e->tensor_index])->name;
        rf_status st = rf_tensor_dequantize(&named, f32, err);
        if (st != RF_OK) {
            free(f32);
            return st;
        }
        values = f32;
    }
    const float *imx = NULL;
    rf_status st = imatrix_for(j, e, &imx, err);
    uint8_t *dst = NULL;
    if (st == RF_OK) {
        dst = malloc(e->dst_bytes ? e->dst_bytes : 1);
        if (dst == NULL)
            st = rf_error_set(err, RF_ERR_NOMEM, "tensor %s: out of memory for %llu bytes", e->name,
                              (unsigned long long)e->dst_bytes);
    }
    rf_quant_options qopts = {.n_threads = j->o->threads};
    if (st == RF_OK && rows > 0) {
        uint64_t slices = imx ? expert_count(t) : 1;
        uint64_t slice_rows = rows / slices, row_bytes = 0;
        st = rf_quant_row_bytes(e->dtype, ne0, &row_bytes, err);
        for (uint64_t s = 0; st == RF_OK && s < slices; s++)
            st = rf_quantize(e->dtype, values + s * slice_rows * ne0,
                             dst + s * slice_rows * row_bytes, slice_rows, ne0,
                             imx ? imx + s * ne0 : NULL, &qopts, err);
        if (st != RF_OK)
            rf_error_prefix(err, "tensor %s (%s -> %s)", e->name, rf_dtype_name(e->src_dtype),
                            rf_dtype_name(e->dtype));
    }
    if (st == RF_OK)
        st = spill_write(j, dst, e->dst_bytes, offset, err);
    free(dst);
    free(f32);
    return st;
}

static rf_status convert_all(job *j, rf_error *err)
{
    const rf_quant_plan *p = j->plan;
    j->out_offset = calloc(p->n_entries ? p->n_entries : 1, sizeof *j->out_offset);
    if (j->out_offset == NULL)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    rf_status st = spill_open(j, err);
    const bool progress = !j->o->quiet && isatty(STDERR_FILENO);
    for (size_t i = 0; st == RF_OK && i < p->n_entries; i++) {
        const rf_quant_plan_entry *e = &p->entries[i];
        j->out_offset[i] = UINT64_MAX;
        if (!e->convert)
            continue;
        if (progress)
            fprintf(stderr, "\r\033[K[%4zu/%4zu] %s -> %s", i + 1, p->n_entries, e->name,
                    rf_dtype_name(e->dtype));
        if (!j->o->quiet && !j->o->allow_requantize &&
            rf_dtype_get(e->src_dtype)->kind == RF_KIND_QUANT)
            fprintf(stderr, "%sapr-quantize: warning: tensor %s is requantized from %s to %s\n",
                    progress ? "\r\033[K" : "", e->name, rf_dtype_name(e->src_dtype),
                    rf_dtype_name(e->dtype));
        st = convert_one(j, e, &j->out_offset[i], err);
    }
    if (progress)
        fprintf(stderr, "\r\033[K");
    if (st == RF_OK && j->spill_size > 0) {
        j->spill_map = mmap(NULL, j->spill_size, PROT_READ, MAP_SHARED, j->spill_fd, 0);
        if (j->spill_map == MAP_FAILED) {
            j->spill_map = NULL;
            st = rf_error_set(err, RF_ERR_WRITE, "mapping the temporary file: %s", strerror(errno));
        }
    }
    return st;
}

/* ---- the output model --------------------------------------------------------------------- */

static const uint8_t *entry_data(const job *j, size_t i)
{
    const rf_quant_plan_entry *e = &j->plan->entries[i];
    if (j->out_offset[i] == UINT64_MAX)
        return j->view[e->tensor_index].data;
    return j->spill_map + j->out_offset[i];
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

/* Keys of the GGUF output, in llama-quantize's order: the source's pairs minus split.* and the
 * keys re-set below, then general.quantization_version, general.file_type and, with an
 * imatrix, the quantize.imatrix.* pairs llama-quantize records. */
static rf_status gguf_keys(const job *j, rf_model *out, rf_error *err)
{
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
    for (size_t i = 0; st == RF_OK && i < rf_model_n_kv(j->meta); i++) {
        const rf_kv *kv = rf_model_kv(j->meta, i);
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
        st = add_u32(out, "general.file_type", j->plan->file_type, err);
    if (st == RF_OK && j->im != NULL) {
        st = add_str(out, "quantize.imatrix.file", j->o->imatrix, err);
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
    if (j->format == OUT_GGUF)
        return gguf_name;
    if (!is_gguf_source(j->src))
        return src_name;
    if (j->format == OUT_SAFETENSORS && rf_name_to_hf(src_name, buf, size))
        return buf;
    if (j->format == OUT_APR &&
        rf_name_to_apr(src_name, rf_model_config_get(j->src)->architecture, buf, size))
        return buf;
    return src_name;
}

static rf_status build_output(const job *j, rf_model **out_model, rf_error *err)
{
    const rf_model *base = j->format == OUT_GGUF ? j->meta : j->src;
    rf_model *out =
        rf_model_new(j->format == OUT_GGUF ? RF_FORMAT_GGUF : rf_model_format(j->src), err);
    if (out == NULL)
        return err->status;
    rf_model_set_format_version(out, rf_model_format_version(base));
    rf_status st = RF_OK;
    if (j->format == OUT_GGUF) {
        st = gguf_keys(j, out, err);
    } else {
        for (size_t i = 0; st == RF_OK && i < rf_model_n_kv(base); i++)
            st = rf_model_add_kv(out, rf_model_kv(base, i)->key, &rf_model_kv(base, i)->value, err);
    }
    *rf_model_config_mut(out) = *rf_model_config_get(base);
    if (rf_model_tokenizer(base) != NULL)
        *rf_model_tokenizer_mut(out) = *rf_model_tokenizer(base);
    const rf_quant_plan *p = j->plan;
    char buf[256];
    for (size_t i = 0; st == RF_OK && i < p->n_entries; i++) {
        const rf_quant_plan_entry *e = &p->entries[i];
        size_t src_index = j->view_src[e->tensor_index];
        rf_tensor t = j->view[e->tensor_index];
        t.name = out_name(j, src_index, e->name, buf, sizeof buf);
        t.dtype = e->dtype;
        t.data = entry_data(j, i);
        t.nbytes = e->dst_bytes;
        t.file_offset = 0;
        t.source = 0;
        st = rf_model_add_tensor(out, &t, err);
        /* a tied head kept by the source format (APR) follows its embedding */
        for (size_t s = 0; st == RF_OK && j->format != OUT_GGUF && s < rf_model_n_tensors(j->src);
             s++) {
            if (j->twin_of[s] != (long)e->tensor_index)
                continue;
            rf_tensor head = t;
            head.name = out_name(j, s, rf_model_tensor(j->src, s)->name, buf, sizeof buf);
            st = rf_model_add_tensor(out, &head, err);
        }
    }
    if (st != RF_OK) {
        rf_model_free(out);
        return st;
    }
    *out_model = out;
    return RF_OK;
}

static rf_status write_output(const job *j, rf_error *err)
{
    rf_model *out = NULL;
    rf_status st = build_output(j, &out, err);
    if (st != RF_OK)
        return st;
    switch (j->format) {
    case OUT_GGUF: st = rf_gguf_write(out, j->o->out, NULL, err); break;
    case OUT_APR: st = rf_apr_write(out, j->o->out, NULL, err); break;
    case OUT_SAFETENSORS: st = rf_safetensors_write(out, j->o->out, NULL, err); break;
    }
    rf_model_free(out);
    return st;
}

/* ---- command line ------------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static int parse_format(const options *o, out_format *f)
{
    const char *name = o->format;
    if (name == NULL) {
        if (o->out == NULL || ends_with(o->out, ".gguf")) {
            *f = OUT_GGUF;
        } else if (ends_with(o->out, ".apr")) {
            *f = OUT_APR;
        } else if (ends_with(o->out, ".safetensors")) {
            *f = OUT_SAFETENSORS;
        } else {
            return cli_usage_error(&TOOL,
                                   "%s: cannot tell the output format from the name; end it in "
                                   ".gguf, .apr or .safetensors, or give --format",
                                   o->out);
        }
        return APR_EXIT_OK;
    }
    if (strcasecmp(name, "gguf") == 0)
        *f = OUT_GGUF;
    else if (strcasecmp(name, "apr") == 0)
        *f = OUT_APR;
    else if (strcasecmp(name, "safetensors") == 0)
        *f = OUT_SAFETENSORS;
    else
        return cli_usage_error(&TOOL, "--format %s: expected gguf, apr or safetensors", name);
    return APR_EXIT_OK;
}

static int parse_type_flag(const char *flag, const char *value, rf_dtype *out)
{
    rf_dtype d;
    const rf_dtype_info *info;
    if (!rf_dtype_from_name(value, &d) || (info = rf_dtype_get(d)) == NULL || info->ggml_code < 0)
        return cli_usage_error(&TOOL, "%s %s: not a GGUF tensor type name (q8_0, q6_k, f16, ...)",
                               flag, value);
    *out = d;
    return APR_EXIT_OK;
}

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"threads", required_argument, NULL, 't'},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"imatrix", required_argument, NULL, OPT_IMATRIX},
        {"pure", no_argument, NULL, OPT_PURE},
        {"leave-output-tensor", no_argument, NULL, OPT_LEAVE_OUTPUT},
        {"output-tensor-type", required_argument, NULL, OPT_OUTPUT_TYPE},
        {"token-embedding-type", required_argument, NULL, OPT_TOKEN_TYPE},
        {"tensor-type", required_argument, NULL, OPT_TENSOR_TYPE},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"allow-requantize", no_argument, NULL, OPT_ALLOW_REQUANTIZE},
        {NULL, 0, NULL, 0},
    };
    o->plan = rf_quant_plan_options_default(RF_MIX_Q8_0);
    int opt, rc;
    char *end;
    while ((opt = getopt_long(argc, argv, "t:q", longopts, NULL)) != -1) {
        switch (opt) {
        case 't': {
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 0 || v > 4096)
                return cli_usage_error(&TOOL, "--threads %s: expected a number 0..4096", optarg);
            o->threads = (int)v;
            break;
        }
        case OPT_DRY_RUN: o->dry_run = true; break;
        case OPT_IMATRIX: o->imatrix = optarg; break;
        case OPT_PURE: o->plan.pure = true; break;
        case OPT_LEAVE_OUTPUT: o->plan.leave_output_tensor = true; break;
        case OPT_OUTPUT_TYPE:
            if ((rc = parse_type_flag("--output-tensor-type", optarg, &o->plan.output_tensor_type)))
                return rc;
            o->plan.set_output_tensor_type = true;
            break;
        case OPT_TOKEN_TYPE:
            if ((rc = parse_type_flag("--token-embedding-type", optarg,
                                      &o->plan.token_embedding_type)))
                return rc;
            o->plan.set_token_embedding_type = true;
            break;
        case OPT_TENSOR_TYPE: {
            if (o->plan.n_overrides == MAX_OVERRIDES)
                return cli_usage_error(&TOOL, "more than %d --tensor-type options", MAX_OVERRIDES);
            size_t len = 0;
            rf_dtype d;
            rf_error err = {0};
            if (rf_quant_override_parse(optarg, &len, &d, &err) != RF_OK)
                return cli_usage_error(&TOOL, "--tensor-type: %s", err.message);
            char *pattern = strndup(optarg, len);
            if (pattern == NULL)
                return cli_usage_error(&TOOL, "out of memory");
            o->override_patterns[o->plan.n_overrides] = pattern;
            o->overrides[o->plan.n_overrides] = (rf_quant_override){pattern, d};
            o->plan.n_overrides++; /* NOLINT(clang-analyzer-unix.Malloc): freed by main() */
            break;
        }
        case OPT_FORMAT: o->format = optarg; break;
        case OPT_JSON: o->json = true; break;
        case 'q': o->quiet = true; break;
        case OPT_ALLOW_REQUANTIZE: o->allow_requantize = true; break;
        default: return cli_usage_error(&TOOL, "unknown option");
        }
    }
    o->plan.overrides = o->overrides;
    int n = argc - optind;
    if (n == 3) {
        o->in = argv[optind];
        o->out = argv[optind + 1];
        o->type = argv[optind + 2];
    } else if (n == 2 && o->dry_run) {
        o->in = argv[optind];
        o->type = argv[optind + 1];
    } else {
        return cli_usage_error(&TOOL,
                               "expected IN OUT TYPE (or IN TYPE with --dry-run), got %d "
                               "argument(s)",
                               n);
    }
    rf_quant_mix mix;
    if (!rf_quant_mix_from_name(o->type, &mix))
        return cli_usage_error(&TOOL,
                               "unknown TYPE '%s': expected q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, "
                               "q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k, f16, "
                               "bf16 or f32",
                               o->type);
    o->plan.mix = mix;
    o->plan.has_imatrix = o->imatrix != NULL;
    return APR_EXIT_OK;
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int run(options *o)
{
    job j;
    memset(&j, 0, sizeof j);
    j.o = o;
    j.spill_fd = -1;
    int rc = parse_format(o, &j.format);
    if (rc != APR_EXIT_OK)
        return rc;
    if (o->out != NULL && same_file(o->in, o->out))
        return cli_usage_error(&TOOL, "input and output are the same file: %s", o->in);
    rf_error err = {0};
    j.src = rf_model_open(o->in, NULL, &err);
    if (j.src == NULL) {
        cli_error(&TOOL, "%s", err.message);
        return cli_exit_for_status(err.status);
    }
    rf_status st = RF_OK;
    if (is_gguf_source(j.src)) {
        j.meta = j.src;
    } else if (j.format == OUT_GGUF) {
        j.meta = gguf_metadata_of(j.src, o, &err);
        j.meta_owned = true;
        if (j.meta == NULL)
            st = err.status ? err.status : RF_ERR_FORMAT;
    } else {
        j.meta = j.src;
    }
    /* as convert_hf_to_gguf.py: what stays unquantized in a GGUF made from another format is F32 */
    o->plan.widen_kept_to_f32 = !is_gguf_source(j.src) && j.format == OUT_GGUF;
    if (st == RF_OK)
        st = build_view(&j, &err);
    if (st == RF_OK && o->imatrix != NULL) {
        j.im = rf_imatrix_open(o->imatrix, &err);
        if (j.im == NULL)
            st = err.status ? err.status : RF_ERR_FORMAT;
    }
    char arch[128];
    if (st == RF_OK) {
        rf_quant_model_info info = model_info(j.meta, arch, sizeof arch);
        /* j.view is freed by job_free() on every path below */
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
        st = rf_quant_plan_make(j.view, j.n_view, &info, &o->plan, &j.plan, &err);
    }
    if (st != RF_OK) {
        cli_error(&TOOL, "%s", err.message);
        job_free(&j);
        return cli_exit_for_status(st);
    }
    rc = check_plan(&j);
    if (rc != APR_EXIT_OK) {
        job_free(&j);
        return rc;
    }
    if (!o->json)
        print_plan_text(&j);
    fflush(stdout);
    if (!o->dry_run) {
        st = convert_all(&j, &err);
        if (st == RF_OK)
            st = write_output(&j, &err);
        if (st != RF_OK) {
            cli_error(&TOOL, "%s: %s", o->out, err.message);
            job_free(&j);
            return st == RF_ERR_NOMEM ? APR_EXIT_WRITE : cli_exit_for_status(st);
        }
    }
    if (o->json && !cli_print_json(plan_json(&j, !o->dry_run), true))
        rc = APR_EXIT_WRITE;
    job_free(&j);
    return rc;
}

int main(int argc, char **argv)
{
    int code;
    if (cli_common_flags(&TOOL, argc, argv, &code))
        return code;
    options o;
    memset(&o, 0, sizeof o);
    code = parse_args(argc, argv, &o);
    if (code == APR_EXIT_OK)
        code = run(&o);
    for (size_t i = 0; i < o.plan.n_overrides; i++)
        free(o.override_patterns[i]);
    return code;
}
