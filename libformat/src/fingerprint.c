/* rf_fingerprint_model: per-tensor digests and statistics of a model, one tensor per worker
 * thread at a time (largest first), so every tensor's figures are computed by one thread in one
 * fixed order and do not depend on the number of threads. Whole-model digests and accessors.
 * Definitions: docs/fingerprint.md. */
#include "model_internal.h"
#include "fingerprint_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "canonical_name.h"
#include "cpu/threads.h"
#include "value_stats.h"

rf_fingerprint *rfi_fp_new(void) { return calloc(1, sizeof(rf_fingerprint)); }

void rfi_fp_hex64(uint64_t v, char out[17])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++)
        out[i] = digits[(v >> (60 - 4 * i)) & 15];
    out[16] = '\0';
}

static int cmp_canonical(const void *a, const void *b, void *ctx)
{
    const rf_fingerprint *fp = ctx;
    const rf_tensor_fingerprint *x = &fp->tensors[*(const size_t *)a];
    const rf_tensor_fingerprint *y = &fp->tensors[*(const size_t *)b];
    int c = strcmp(x->canonical, y->canonical);
    if (c == 0)
        c = strcmp(x->name, y->name);
    if (c == 0)
        c = (*(const size_t *)a > *(const size_t *)b) - (*(const size_t *)a < *(const size_t *)b);
    return c;
}

bool rfi_fp_index(rf_fingerprint *fp)
{
    free(fp->by_canonical);
    fp->by_canonical = malloc((fp->n_tensors ? fp->n_tensors : 1) * sizeof(size_t));
    if (!fp->by_canonical)
        return false;
    for (size_t i = 0; i < fp->n_tensors; i++)
        fp->by_canonical[i] = i;
    qsort_r(fp->by_canonical, fp->n_tensors, sizeof(size_t), cmp_canonical, fp);
    return true;
}

void rf_fingerprint_free(rf_fingerprint *fp)
{
    if (!fp)
        return;
    for (size_t i = 0; i < fp->n_tensors; i++) {
        rf_tensor_fingerprint *t = &fp->tensors[i];
        free((char *)t->name);
        free((char *)t->canonical);
        free((char *)t->dtype);
        free((char *)t->values_error);
    }
    free(fp->tensors);
    free(fp->by_canonical);
    free(fp->file);
    free(fp->format);
    free(fp->config_architecture);
    free(fp->config_name);
    free(fp);
}

size_t rf_fingerprint_n_tensors(const rf_fingerprint *fp) { return fp ? fp->n_tensors : 0; }

const rf_tensor_fingerprint *rf_fingerprint_tensor(const rf_fingerprint *fp, size_t index)
{
    return fp && index < fp->n_tensors ? &fp->tensors[index] : NULL;
}

const rf_tensor_fingerprint *rf_fingerprint_find(const rf_fingerprint *fp, const char *canonical)
{
    if (!fp || !canonical || !fp->by_canonical)
        return NULL;
    size_t lo = 0, hi = fp->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const rf_tensor_fingerprint *t = &fp->tensors[fp->by_canonical[mid]];
        int c = strcmp(t->canonical, canonical);
        if (c == 0) {
            while (mid > 0 &&
                   strcmp(fp->tensors[fp->by_canonical[mid - 1]].canonical, canonical) == 0)
                mid--;
            return &fp->tensors[fp->by_canonical[mid]];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* XXH3-64 over (canonical name, NUL, digest as 8 little-endian bytes) in canonical-name order. */
static bool model_digest(const rf_fingerprint *fp, bool canonical, uint64_t *out)
{
    XXH3_state_t *s = XXH3_createState();
    if (!s)
        return false;
    XXH3_64bits_reset(s);
    bool complete = true;
    for (size_t k = 0; k < fp->n_tensors; k++) {
        const rf_tensor_fingerprint *t = &fp->tensors[fp->by_canonical[k]];
        if (canonical && !t->has_values)
            complete = false;
        uint64_t d = canonical ? t->canonical_digest : t->raw_digest;
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)(d >> (8 * i));
        XXH3_64bits_update(s, t->canonical, strlen(t->canonical) + 1);
        XXH3_64bits_update(s, le, sizeof le);
    }
    *out = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    return complete;
}

uint64_t rf_fingerprint_raw_digest(const rf_fingerprint *fp)
{
    uint64_t d = 0;
    if (fp)
        model_digest(fp, false, &d);
    return d;
}

bool rf_fingerprint_canonical_digest(const rf_fingerprint *fp, uint64_t *canonical)
{
    uint64_t d = 0;
    bool complete = fp && model_digest(fp, true, &d);
    if (complete && canonical)
        *canonical = d;
    return complete;
}

const rf_model_config *rf_fingerprint_config(const rf_fingerprint *fp)
{
    return fp ? &fp->config : NULL;
}
const char *rf_fingerprint_format(const rf_fingerprint *fp) { return fp ? fp->format : NULL; }
const char *rf_fingerprint_file(const rf_fingerprint *fp) { return fp ? fp->file : NULL; }

/* ---- computing ------------------------------------------------------------------------------ */

/* Whether t's stored bytes lie wholly in memory the model can read (a lenient open may list
 * tensors whose extent runs past the end of the file). */
static bool bytes_readable(const rf_model *m, const rf_tensor *t)
{
    if (t->nbytes == 0)
        return true;
    if (!t->data)
        return false;
    const rf_file *file = rf_model_file(m, t->source);
    if (!file)
        return true; /* memory owned by the model */
    uintptr_t base = (uintptr_t)rf_file_data(file), end = base + rf_file_size(file);
    uintptr_t at = (uintptr_t)t->data;
    if (at < base || at > end)
        return true; /* not in the mapping: memory owned by the model */
    return t->nbytes <= end - at;
}

typedef struct fp_job {
    const rf_model *m;
    rf_fingerprint *fp;
    const size_t *order; /* tensors, largest first */
    atomic_size_t next;
    bool raw_only;
    vs_work **work;
    rf_status *status; /* per worker */
    rf_error *errs;    /* per worker */
} fp_job;

typedef struct fp_worker {
    fp_job *job;
    int index;
} fp_worker;

static rf_status one_tensor(fp_job *job, vs_work *w, size_t i)
{
    const rf_tensor *t = rf_model_tensor(job->m, i);
    rf_tensor_fingerprint *f = &job->fp->tensors[i];
    if (!bytes_readable(job->m, t)) {
        f->raw_digest = 0;
        f->values_error = strdup("the tensor's bytes are not in the file");
        return f->values_error ? RF_OK : RF_ERR_NOMEM;
    }
    f->raw_digest = XXH3_64bits(t->data, (size_t)t->nbytes);
    if (job->raw_only)
        return RF_OK;
    rf_error err;
    rf_error_clear(&err);
    rf_status st =
        rfi_vs_tensor(w, job->m, t, &f->stats, &f->canonical_digest, &f->raw_digest, &err);
    if (st == RF_OK) {
        f->has_values = true;
        return RF_OK;
    }
    memset(&f->stats, 0, sizeof f->stats);
    f->canonical_digest = 0;
    f->values_error = strdup(err.message[0] ? err.message : rf_strerror(st));
    return f->values_error ? RF_OK : RF_ERR_NOMEM;
}

static rf_status worker_guarded(void *ctx, rf_error *err)
{
    fp_worker *wk = ctx;
    fp_job *job = wk->job;
    size_t n = job->fp->n_tensors;
    for (;;) {
        size_t k = atomic_fetch_add(&job->next, 1);
        if (k >= n)
            return RF_OK;
        if (one_tensor(job, job->work[wk->index], job->order[k]) != RF_OK)
            return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    }
}

static void worker_range(void *ctx, int64_t begin, int64_t end)
{
    fp_job *job = ctx;
    for (int64_t i = begin; i < end; i++) {
        fp_worker wk = {job, (int)i};
        rf_error_clear(&job->errs[i]);
        job->status[i] = rf_model_mapped_call(job->m, worker_guarded, &wk, &job->errs[i]);
        if (job->status[i] != RF_OK) /* stop the others early: nothing more to hand out */
            atomic_store(&job->next, job->fp->n_tensors);
    }
}

static int cmp_bytes_desc(const void *a, const void *b, void *ctx)
{
    const rf_model *m = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    uint64_t x = rf_model_tensor(m, i)->nbytes, y = rf_model_tensor(m, j)->nbytes;
    if (x != y)
        return x < y ? 1 : -1;
    return (i > j) - (i < j);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static bool copy_header(rf_fingerprint *fp, const rf_model *m, const char *path)
{
    const char *p = path ? path : rf_model_path(m);
    fp->file = strdup(p ? p : "");
    fp->format = strdup(rf_format_name(rf_model_format(m)));
    fp->format_version = rf_model_format_version(m);
    fp->file_size = rf_model_file_size(m);
    fp->config = *rf_model_config_get(m);
    fp->config_architecture = dup_or_null(fp->config.architecture);
    fp->config_name = dup_or_null(fp->config.name);
    fp->config.architecture = fp->config_architecture;
    fp->config.name = fp->config_name;
    const char *tmpl = rf_model_config_get(m)->chat_template;
    fp->has_chat_template = tmpl != NULL;
    fp->chat_template_digest = tmpl ? XXH3_64bits(tmpl, strlen(tmpl)) : 0;
    fp->config.chat_template = NULL;
    return fp->file && fp->format && (fp->config_architecture || !fp->config.architecture) &&
           (fp->config_name || !fp->config.name);
}

rf_fingerprint *rf_fingerprint_model(const rf_model *m, const char *path,
                                     const rf_fingerprint_options *opts, rf_error *err)
{
    if (!m) {
        rf_error_set(err, RF_ERR_ARGUMENT, "NULL model");
        return NULL;
    }
    rf_fingerprint *fp = rfi_fp_new();
    size_t n = rf_model_n_tensors(m);
    if (!fp || !copy_header(fp, m, path) ||
        !(fp->tensors = calloc(n ? n : 1, sizeof *fp->tensors))) {
        rf_fingerprint_free(fp);
        rf_error_set(err, RF_ERR_NOMEM, "out of memory for a fingerprint of %zu tensors", n);
        return NULL;
    }
    fp->n_tensors = n;
    for (size_t i = 0; i < n; i++) {
        const rf_tensor *t = rf_model_tensor(m, i);
        rf_tensor_fingerprint *f = &fp->tensors[i];
        f->name = strdup(t->name);
        f->canonical = rfi_canonical_tensor_name(t->name);
        f->dtype = strdup(rf_dtype_name(t->dtype));
        f->ndim = t->ndim < 0 ? 0 : t->ndim > RF_MAX_DIMS ? RF_MAX_DIMS : t->ndim;
        memcpy(f->shape, t->shape, sizeof f->shape);
        f->nbytes = t->nbytes;
        if (!f->name || !f->canonical || !f->dtype) {
            rf_fingerprint_free(fp);
            rf_error_set(err, RF_ERR_NOMEM, "out of memory for a fingerprint");
            return NULL;
        }
    }

    int threads = opts && opts->n_threads > 0 ? opts->n_threads : rk_cpu_count();
    if ((size_t)threads > n)
        threads = n ? (int)n : 1;
    fp_job job;
    memset(&job, 0, sizeof job);
    job.m = m;
    job.fp = fp;
    job.raw_only = opts && opts->raw_only;
    atomic_init(&job.next, 0);
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    job.work = calloc((size_t)threads, sizeof *job.work);
    job.status = calloc((size_t)threads, sizeof *job.status);
    job.errs = calloc((size_t)threads, sizeof *job.errs);
    bool ok = order && job.work && job.status && job.errs;
    for (int i = 0; ok && i < threads && !job.raw_only; i++)
        ok = (job.work[i] = rfi_vs_work_new()) != NULL;
    rf_status st = ok ? RF_OK : RF_ERR_NOMEM;
    if (ok) {
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        qsort_r(order, n, sizeof *order, cmp_bytes_desc, (void *)m);
        job.order = order;
        rk_parallel_for(threads, 1, threads, worker_range, &job);
        for (int i = 0; i < threads && st == RF_OK; i++) {
            if (job.status[i] != RF_OK) {
                st = job.status[i];
                if (err)
                    *err = job.errs[i];
            }
        }
    } else {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory for the fingerprint workers");
    }
    for (int i = 0; job.work && i < threads; i++)
        rfi_vs_work_free(job.work[i]);
    free(job.work);
    free(job.status);
    free(job.errs);
    free(order);
    if (st == RF_OK && !rfi_fp_index(fp))
        st = rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    if (st != RF_OK) {
        rf_fingerprint_free(fp);
        return NULL;
    }
    return fp;
}
