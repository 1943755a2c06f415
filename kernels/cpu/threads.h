/* A minimal parallel-for over index ranges with POSIX threads.
 * Work is split into contiguous ranges, one per thread; callers keep their output independent
 * of the split (each index writes only its own bytes), so results never depend on the
 * thread count.
 * Not for: long-lived pools or work stealing. */
#ifndef RK_THREADS_H
#define RK_THREADS_H

#include <stdint.h>

/* Processes indices [begin, end) of a job. */
typedef void (*rk_range_fn)(void *ctx, int64_t begin, int64_t end);

/* Number of online CPUs (at least 1). */
int rk_cpu_count(void);

/* Calls fn over [0, n) split into at most n_threads contiguous ranges whose boundaries are
 * multiples of granule (the last range takes the rest). n_threads <= 0 means rk_cpu_count().
 * The calling thread runs the first range. Returns 0, or -1 when a thread could not be
 * started (fn has then been run for every range anyway, in the calling thread). */
int rk_parallel_for(int64_t n, int64_t granule, int n_threads, rk_range_fn fn, void *ctx);

#endif
