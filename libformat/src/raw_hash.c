/* Raw-byte hashes as llama.cpp's gguf-hash computes them (docs/fingerprint.md, "gguf-hash"):
 * XXH64 (seed 0, libxxhash) and SHA-256 (nettle) of each tensor's stored bytes, and of all
 * tensors' bytes concatenated in the model's tensor order. The per-tensor hashes and the
 * whole-model stream are independent, so with two or more threads one worker runs the stream
 * while the others take tensors. */
#include "model_internal.h"
#include "rosetta/fingerprint.h"

#include <nettle/sha2.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cpu/threads.h"

typedef struct hash_job {
    const rf_model *m;
    rf_raw_hash *per_tensor, *whole;
    atomic_size_t next;
    int n_workers;
    rf_status *status;
    rf_error *errs;
    XXH64_state_t *xxh; /* the stream's state, owned by the caller (see rf_mapped_call) */
    struct sha256_ctx *sha;
} hash_job;

typedef struct hash_worker {
    hash_job *job;
    int index;
} hash_worker;

static rf_status check_extent(const rf_model *m, const rf_tensor *t, rf_error *err)
{
    if (t->nbytes == 0)
        return RF_OK;
    const rf_file *file = rf_model_file(m, t->source);
    uintptr_t at = (uintptr_t)t->data;
    if (!t->data)
        return rf_error_set(err, RF_ERR_FORMAT, "tensor '%s': its bytes are not in the file",
                            t->name);
    if (file) {
        uintptr_t base = (uintptr_t)rf_file_data(file), end = base + rf_file_size(file);
        if (at >= base && at <= end && t->nbytes > end - at)
            return rf_error_set(err, RF_ERR_FORMAT, "tensor '%s': its bytes run past the end of %s",
                                t->name, rf_file_path(file));
    }
    return RF_OK;
}

static rf_status run_stream(hash_job *job, rf_error *err)
{
    size_t n = rf_model_n_tensors(job->m);
    XXH64_reset(job->xxh, 0);
    sha256_init(job->sha);
    for (size_t i = 0; i < n; i++) {
        const rf_tensor *t = rf_model_tensor(job->m, i);
        rf_status st = check_extent(job->m, t, err);
        if (st != RF_OK)
            return st;
        XXH64_update(job->xxh, t->data, (size_t)t->nbytes);
        sha256_update(job->sha, (size_t)t->nbytes, t->data);
    }
    job->whole->xxh64 = XXH64_digest(job->xxh);
    sha256_digest(job->sha, sizeof job->whole->sha256, job->whole->sha256);
    return RF_OK;
}

static rf_status run_tensors(hash_job *job, rf_error *err)
{
    size_t n = rf_model_n_tensors(job->m);
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= n)
            return RF_OK;
        const rf_tensor *t = rf_model_tensor(job->m, i);
        rf_status st = check_extent(job->m, t, err);
        if (st != RF_OK)
            return st;
        job->per_tensor[i].xxh64 = XXH64(t->data, (size_t)t->nbytes, 0);
        struct sha256_ctx sha;
        sha256_init(&sha);
        sha256_update(&sha, (size_t)t->nbytes, t->data);
        sha256_digest(&sha, sizeof job->per_tensor[i].sha256, job->per_tensor[i].sha256);
    }
}

static rf_status worker_guarded(void *ctx, rf_error *err)
{
    hash_worker *w = ctx;
    hash_job *job = w->job;
    if (job->n_workers == 1) {
        rf_status st = run_stream(job, err);
        return st != RF_OK ? st : run_tensors(job, err);
    }
    return w->index == 0 ? run_stream(job, err) : run_tensors(job, err);
}

static void worker_range(void *ctx, int64_t begin, int64_t end)
{
    hash_job *job = ctx;
    for (int64_t i = begin; i < end; i++) {
        hash_worker w = {job, (int)i};
        rf_error_clear(&job->errs[i]);
        job->status[i] = rf_model_mapped_call(job->m, worker_guarded, &w, &job->errs[i]);
    }
}

rf_status rf_model_raw_hashes(const rf_model *m, int n_threads, rf_raw_hash *per_tensor,
                              rf_raw_hash *whole, rf_error *err)
{
    if (!m || !per_tensor || !whole)
        return rf_error_set(err, RF_ERR_ARGUMENT, "NULL model or output");
    int workers = n_threads > 0 ? n_threads : rk_cpu_count();
    size_t n = rf_model_n_tensors(m);
    if ((size_t)workers > n + 1)
        workers = (int)n + 1;
    if (workers < 1)
        workers = 1;
    hash_job job;
    memset(&job, 0, sizeof job);
    job.m = m;
    job.per_tensor = per_tensor;
    job.whole = whole;
    job.n_workers = workers;
    atomic_init(&job.next, 0);
    job.status = calloc((size_t)workers, sizeof *job.status);
    job.errs = calloc((size_t)workers, sizeof *job.errs);
    job.xxh = XXH64_createState();
    job.sha = malloc(sizeof *job.sha);
    rf_status st = RF_OK;
    if (!job.status || !job.errs || !job.xxh || !job.sha) {
        st = rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    } else {
        rk_parallel_for(workers, 1, workers, worker_range, &job);
        for (int i = 0; i < workers && st == RF_OK; i++) {
            if (job.status[i] != RF_OK) {
                st = job.status[i];
                if (err)
                    *err = job.errs[i];
            }
        }
    }
    free(job.status);
    free(job.errs);
    XXH64_freeState(job.xxh);
    free(job.sha);
    return st;
}
