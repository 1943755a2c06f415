/* rk_pool: a persistent thread pool with atomic-counter task chunking (matmul.h).
 * A job is published by bumping a generation counter; workers spin on it for a short while
 * (decode issues hundreds of small jobs per token, a sleeping thread takes tens of microseconds
 * to wake) and then sleep on a condition variable until the next job.
 * Not for: more than one submitting thread per pool, nested jobs. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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

    /* the current job, written before generation is bumped */
    rk_task_fn fn;
    void *ctx;
    int64_t n_tasks;

    _Atomic int64_t next;        /* next task index to hand out */
    _Atomic unsigned generation; /* bumped once per job */
    _Atomic int pending;         /* workers not yet done with the current job */
    _Atomic int sleepers;        /* workers blocked (or about to block) on cv */
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

static void run_tasks(rk_pool *pool, int thread)
{
    const int64_t n = pool->n_tasks;
    for (;;) {
        const int64_t t = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
        if (t >= n)
            break;
        pool->fn(pool->ctx, t, thread);
    }
}

/* Waits until the generation differs from seen (or stop); returns the new generation. */
static unsigned wait_job(rk_pool *pool, unsigned seen)
{
    int64_t start = 0;
    for (int spins = 0;; spins++) {
        const unsigned g = atomic_load(&pool->generation);
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
    unsigned g;
    while ((g = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stop))
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
    unsigned seen = 0;
    for (;;) {
        seen = wait_job(pool, seen);
        if (atomic_load(&pool->stop))
            break;
        run_tasks(pool, index);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
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
    atomic_init(&pool->next, 0);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->pending, 0);
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
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n_tasks = n_tasks;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->pending, pool->n_threads - 1, memory_order_relaxed);
    /* seq_cst: a worker that registered as a sleeper before this bump is seen below, and one
     * that registers after it sees the new generation before it waits */
    atomic_fetch_add(&pool->generation, 1);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
    run_tasks(pool, 0);
    for (int spins = 0; atomic_load_explicit(&pool->pending, memory_order_acquire) > 0; spins++) {
        if (spins < 20000)
            cpu_relax();
        else
            sched_yield(); /* a worker lost its core (the machine is shared): let it run */
    }
}
