/* rk_pool: a persistent thread pool with atomic-counter task chunking (matmul.h).
 * A job is published in one word, (generation << 32) | next task index; threads take tasks by
 * compare-and-swap on it, so a late worker cannot take a task of a newer job, and the caller
 * waits only for tasks that were taken. Idle workers spin on the word for a short while (decode
 * issues hundreds of small jobs per token, a sleeping thread takes tens of microseconds to wake)
 * and then sleep on a condition variable until the next job.
 * Not for: more than one submitting thread per pool, nested jobs. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cpu/matmul.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define RK_POOL_MAX_THREADS 256
/* How long an idle worker spins before it sleeps, and how often it looks at the clock. */
#define RK_POOL_SPIN_NS    250000
#define RK_POOL_SPIN_CHECK 64

struct rk_pool {
    int n_threads;
    pthread_t *tids;
    int n_started;
    uint32_t generation; /* the caller's count of jobs (only the calling thread touches it) */

    /* jobs alternate between two slots (generation % 2): the next job is written into the slot
     * the current one does not use, so a worker that read an old claim word still finds that
     * job's own task count in its slot */
    struct {
        _Atomic(rk_task_fn) fn;
        _Atomic(void *) ctx;
        _Atomic int64_t n_tasks;
    } jobs[2];

    /* (generation << 32) | index of the next task: a task is taken by a compare-and-swap that
     * also checks the generation, so a thread that wakes up late cannot take a task of the
     * next job by mistake, and the caller never waits for a worker that has no task */
    _Atomic uint64_t claim;
    _Atomic int64_t done; /* tasks of the current job finished */
    _Atomic int sleepers; /* workers blocked (or about to block) on cv */
    _Atomic int stop;

    pthread_mutex_t mu;
    pthread_cond_t cv;
};

typedef struct worker_arg {
    rk_pool *pool;
    int index;
} worker_arg;

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static uint32_t claim_generation(uint64_t c) { return (uint32_t)(c >> 32); }

/* Takes and runs tasks of job `gen` until none are left (or the job is no longer current). */
static void run_tasks(rk_pool *pool, uint32_t gen, int thread)
{
    for (;;) {
        uint64_t c = atomic_load(&pool->claim);
        if (claim_generation(c) != gen)
            return;
        const int64_t t = (int64_t)(uint32_t)c;
        if (t >= atomic_load_explicit(&pool->jobs[gen % 2].n_tasks, memory_order_relaxed))
            return;
        if (!atomic_compare_exchange_weak(&pool->claim, &c, c + 1))
            continue;
        /* task t of job gen is ours: the job cannot change before it is marked done */
        const rk_task_fn fn = atomic_load_explicit(&pool->jobs[gen % 2].fn, memory_order_relaxed);
        fn(atomic_load_explicit(&pool->jobs[gen % 2].ctx, memory_order_relaxed), t, thread);
        atomic_fetch_add_explicit(&pool->done, 1, memory_order_release);
    }
}

/* Waits until a job other than `seen` is published (or stop); returns its generation. */
static uint32_t wait_job(rk_pool *pool, uint32_t seen)
{
    int64_t start = 0;
    for (int spins = 0;; spins++) {
        const uint32_t g = claim_generation(atomic_load(&pool->claim));
        if (g != seen || atomic_load(&pool->stop))
            return g;
        if (spins % RK_POOL_SPIN_CHECK == 0) {
            const int64_t t = now_ns();
            if (start == 0)
                start = t;
            else if (t - start > RK_POOL_SPIN_NS)
                break;
        }
        cpu_relax();
    }
    pthread_mutex_lock(&pool->mu);
    atomic_fetch_add(&pool->sleepers, 1);
    uint32_t g;
    while ((g = claim_generation(atomic_load(&pool->claim))) == seen && !atomic_load(&pool->stop))
        pthread_cond_wait(&pool->cv, &pool->mu);
    atomic_fetch_sub(&pool->sleepers, 1);
    pthread_mutex_unlock(&pool->mu);
    return g;
}

static void *worker_main(void *p)
{
    worker_arg *arg = p;
    rk_pool *pool = arg->pool;
    const int index = arg->index;
    free(arg);
    uint32_t seen = 0;
    for (;;) {
        seen = wait_job(pool, seen);
        if (atomic_load(&pool->stop))
            break;
        run_tasks(pool, seen, index);
    }
    return NULL;
}

rk_pool *rk_pool_create(int n_threads)
{
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n < 1 ? 1 : (int)(n > RK_POOL_MAX_THREADS ? RK_POOL_MAX_THREADS : n);
    }
    if (n_threads > RK_POOL_MAX_THREADS)
        n_threads = RK_POOL_MAX_THREADS;
    rk_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->n_threads = n_threads;
    for (int j = 0; j < 2; j++) {
        atomic_init(&pool->jobs[j].fn, NULL);
        atomic_init(&pool->jobs[j].ctx, NULL);
        atomic_init(&pool->jobs[j].n_tasks, 0);
    }
    atomic_init(&pool->claim, 0);
    atomic_init(&pool->done, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->stop, 0);
    if (pthread_mutex_init(&pool->mu, NULL) != 0) {
        free(pool);
        return NULL;
    }
    if (pthread_cond_init(&pool->cv, NULL) != 0) {
        pthread_mutex_destroy(&pool->mu);
        free(pool);
        return NULL;
    }
    if (n_threads > 1) {
        pool->tids = calloc((size_t)n_threads - 1, sizeof *pool->tids);
        if (!pool->tids) {
            rk_pool_destroy(pool);
            return NULL;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (!arg) {
            rk_pool_destroy(pool);
            return NULL;
        }
        arg->pool = pool;
        arg->index = i;
        if (pthread_create(&pool->tids[i - 1], NULL, worker_main, arg) != 0) {
            free(arg);
            rk_pool_destroy(pool);
            return NULL;
        }
        pool->n_started++;
    }
    return pool;
}

void rk_pool_destroy(rk_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->n_started; i++)
        pthread_join(pool->tids[i], NULL);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool->tids);
    free(pool);
}

int rk_pool_threads(const rk_pool *pool) { return pool ? pool->n_threads : 1; }

void rk_pool_run(rk_pool *pool, int64_t n_tasks, rk_task_fn fn, void *ctx)
{
    if (n_tasks <= 0)
        return;
    if (!pool || pool->n_threads == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    if (n_tasks > (int64_t)UINT32_MAX) { /* more than the claim word counts: serially */
        for (int64_t t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    const uint32_t gen = ++pool->generation;
    atomic_store_explicit(&pool->jobs[gen % 2].fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool->jobs[gen % 2].ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&pool->jobs[gen % 2].n_tasks, n_tasks, memory_order_relaxed);
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    /* seq_cst: a worker that registered as a sleeper before this store is seen below, and one
     * that registers after it sees the new job before it waits */
    atomic_store(&pool->claim, (uint64_t)gen << 32);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
    run_tasks(pool, gen, 0);
    /* only tasks that a worker has taken can still be running */
    for (int spins = 0; atomic_load_explicit(&pool->done, memory_order_acquire) < n_tasks;
         spins++) {
        if (spins < 20000)
            cpu_relax();
        else
            sched_yield(); /* a worker lost its core (the machine is shared): let it run */
    }
}
