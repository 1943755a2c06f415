/* rk_parallel_for: static contiguous split over pthreads (see threads.h). */
#include "cpu/threads.h"

#include <pthread.h>
#include <unistd.h>

#define RK_MAX_THREADS 256

typedef struct range_job {
    rk_range_fn fn;
    void *ctx;
    int64_t begin, end;
} range_job;

static void *run_range(void *arg)
{
    range_job *job = arg;
    job->fn(job->ctx, job->begin, job->end);
    return NULL;
}

int rk_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > RK_MAX_THREADS ? RK_MAX_THREADS : (int)n;
}

int rk_parallel_for(int64_t n, int64_t granule, int n_threads, rk_range_fn fn, void *ctx)
{
    if (n <= 0)
        return 0;
    if (granule < 1)
        granule = 1;
    if (n_threads <= 0)
        n_threads = rk_cpu_count();
    if (n_threads > RK_MAX_THREADS)
        n_threads = RK_MAX_THREADS;
    int64_t n_granules = (n + granule - 1) / granule;
    if (n_threads > n_granules)
        n_threads = (int)n_granules;
    if (n_threads <= 1) {
        fn(ctx, 0, n);
        return 0;
    }

    range_job jobs[RK_MAX_THREADS];
    pthread_t tids[RK_MAX_THREADS];
    int started[RK_MAX_THREADS];
    int64_t per = n_granules / n_threads, extra = n_granules % n_threads, at = 0;
    for (int t = 0; t < n_threads; t++) {
        int64_t count = (per + (t < extra ? 1 : 0)) * granule;
        int64_t end = at + count < n ? at + count : n;
        jobs[t] = (range_job){fn, ctx, at, end};
        at = end;
    }
    int failed = 0;
    for (int t = 1; t < n_threads; t++)
        started[t] = pthread_create(&tids[t], NULL, run_range, &jobs[t]) == 0;
    fn(ctx, jobs[0].begin, jobs[0].end);
    for (int t = 1; t < n_threads; t++) {
        if (started[t]) {
            pthread_join(tids[t], NULL);
        } else {
            failed = 1;
            fn(ctx, jobs[t].begin, jobs[t].end);
        }
    }
    return failed ? -1 : 0;
}
