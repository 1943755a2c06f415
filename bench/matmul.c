/* Matmul kernel speed (kernels/cpu/matmul.h): decode (matrix-vector) and prefill (GEMM, 512
 * columns) on the matrix shapes of Qwen2.5-0.5B for each weight type and thread count, with the
 * machine's DRAM read bandwidth measured in the same run for the roofline.
 * One JSON object per line on stdout:
 *   {"bench":"matmul","what":"dram_read","threads":T,"gbps":G}
 *   {"bench":"matmul","what":"decode"|"prefill","type":"Q5_0","rows":R,"k":K,"cols":C,
 *    "layout":"rows"|"r16","threads":T,"isa":"avx512vnni","ms":median,"gflops":..,
 *    "weight_gbps":..,"weight_gbps_cpu_time":..,"frac_dram":weight_gbps / dram_gbps of the same
 *    thread count,"hot_cache_gbps":..}  (prefill: "gflops" and "gflops_cpu_time")
 * The *_cpu_time figures divide by the process CPU time per thread instead of the wall clock:
 * steadier when other programs share the cores.
 * Decode cycles through enough copies of the matrix to exceed the last-level cache (as a model's
 * layers do), so weight_gbps is a DRAM figure; prefill reuses one copy (compute-bound).
 * With a ggml CPU library (--ggml PATH/libggml-cpu.so, or $ROSETTA_GGML_CPU), decode is also timed
 * through ggml's own vec_dot (ggml_get_type_traits_cpu, one call per row on the same pool, on
 * ggml's own quantized activations), interleaved with Rosetta's runs: "ggml_weight_gbps" and
 * "ratio" (Rosetta / ggml, medians). Build a native one for a fair peer (the oracle build has
 * no -march=native). Prefill has no such peer here: ggml's GEMM paths are not behind vec_dot.
 * Usage: bench-matmul [--reps N] [--threads LIST] [--types LIST] [--no-prefill] [--mb N]
 *                     [--ggml PATH]
 *   --mb: bytes of weight copies per decode measurement (default 384 MiB).
 * Not for: correctness (tests/unit/test_matmul.c). */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/matmul.h"
#include "cpu/quant_ref.h"

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }

/* CPU time of the whole process: on a shared machine it leaves out the time other programs
 * hold the cores (divided by the thread count it is the "while running" time) */
static double cpu_now(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double min_of(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 - 0.5);
}

/* ---- DRAM read bandwidth: sum of 64-bit words over a buffer far larger than the caches ---- */

typedef struct sum_job {
    const uint64_t *buf;
    int64_t words, chunk;
    uint64_t partial[64];
} sum_job;

static void sum_task(void *ctx, int64_t task, int thread)
{
    sum_job *j = ctx;
    const int64_t a = task * j->chunk, b = a + j->chunk < j->words ? a + j->chunk : j->words;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = a; i + 4 <= b; i += 4) {
        s0 += j->buf[i];
        s1 += j->buf[i + 1];
        s2 += j->buf[i + 2];
        s3 += j->buf[i + 3];
    }
    j->partial[thread] += s0 + s1 + s2 + s3;
}

static double dram_gbps(rk_pool *pool, const uint64_t *buf, size_t bytes, int reps)
{
    sum_job job = {.buf = buf, .words = (int64_t)(bytes / 8), .chunk = 1 << 18};
    double t[32] = {0};
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        rk_pool_run(pool, (job.words + job.chunk - 1) / job.chunk, sum_task, &job);
        t[r] = now() - t0;
    }
    if (job.partial[0] == 42)
        fprintf(stderr, " ");
    return (double)bytes / min_of(t, reps) / 1e9; /* the best run: others share the machine */
}

/* ---- weights ----------------------------------------------------------------------------------
 */

typedef void (*quant_fn)(const float *x, void *y, int64_t k);

static quant_fn quantizer(rk_type t)
{
    switch (t) {
    case RK_TYPE_F16: return rk_quantize_row_f16_ref;
    case RK_TYPE_BF16: return rk_quantize_row_bf16_ref;
    case RK_TYPE_Q4_0: return rk_quantize_row_q4_0_ref;
    case RK_TYPE_Q4_1: return rk_quantize_row_q4_1_ref;
    case RK_TYPE_Q5_0: return rk_quantize_row_q5_0_ref;
    case RK_TYPE_Q5_1: return rk_quantize_row_q5_1_ref;
    case RK_TYPE_Q8_0: return rk_quantize_row_q8_0_ref;
    case RK_TYPE_Q2_K: return rk_quantize_row_q2_K_ref;
    case RK_TYPE_Q3_K: return rk_quantize_row_q3_K_ref;
    case RK_TYPE_Q4_K: return rk_quantize_row_q4_K_ref;
    case RK_TYPE_Q5_K: return rk_quantize_row_q5_K_ref;
    case RK_TYPE_Q6_K: return rk_quantize_row_q6_K_ref;
    case RK_TYPE_F32:
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q8_K:
    case RK_TYPE_APR_Q4:
    case RK_TYPE_APR_Q8: return NULL;
    }
    return NULL;
}

/* copies of an n_rows x k matrix, back to back; at least `bytes` in total (and 1 copy) */
static uint8_t *make_copies(rk_type t, int64_t n_rows, int64_t k, size_t bytes, int64_t *n_copies)
{
    const size_t row = rk_row_bytes(t, k), mat = row * (size_t)n_rows;
    int64_t n = (int64_t)((bytes + mat - 1) / mat);
    if (n < 1)
        n = 1;
    uint8_t *buf = malloc(mat * (size_t)n);
    if (!buf)
        return NULL;
    float *x = malloc((size_t)k * sizeof(float));
    /* 64 distinct rows, repeated (speed does not depend on the values) */
    const int64_t distinct = n_rows < 64 ? n_rows : 64;
    for (int64_t r = 0; r < distinct; r++) {
        for (int64_t i = 0; i < k; i++)
            x[i] = frand() * 0.1f;
        quant_fn q = quantizer(t);
        if (q)
            q(x, buf + (size_t)r * row, k);
        else
            memcpy(buf + (size_t)r * row, x, row);
    }
    for (int64_t r = distinct; r < n_rows; r++)
        memcpy(buf + (size_t)r * row, buf + (size_t)(r % distinct) * row, row);
    for (int64_t c = 1; c < n; c++)
        memcpy(buf + (size_t)c * mat, buf, mat);
    free(x);
    *n_copies = n;
    return buf;
}

/* ---- ggml's vec_dot as the peer (loaded at run time) ---------------------------------------- */

typedef void (*ggml_vec_dot_fn)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y,
                                size_t by, int nrc);
typedef void (*ggml_from_float_fn)(const float *x, void *y, int64_t k);
/* the layout of ggml-cpu.h's struct ggml_type_traits_cpu */
typedef struct ggml_traits_cpu {
    ggml_from_float_fn from_float;
    ggml_vec_dot_fn vec_dot;
    int vec_dot_type;
    int64_t nrows;
} ggml_traits_cpu;
typedef const ggml_traits_cpu *(*ggml_get_traits_fn)(int type);

static ggml_get_traits_fn ggml_traits;

static int load_ggml(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        fprintf(stderr, "bench-matmul: %s\n", dlerror());
        return -1;
    }
    void (*init)(void) = (void (*)(void))dlsym(h, "ggml_cpu_init");
    ggml_traits = (ggml_get_traits_fn)dlsym(h, "ggml_get_type_traits_cpu");
    if (!init || !ggml_traits) {
        fprintf(stderr, "bench-matmul: %s has no ggml_cpu_init / ggml_get_type_traits_cpu\n", path);
        ggml_traits = NULL;
        return -1;
    }
    init();
    return 0;
}

typedef struct ggml_job {
    ggml_vec_dot_fn vec_dot;
    const uint8_t *w;
    size_t row;
    int64_t rows, k, chunk;
    const void *act;
    float *y;
} ggml_job;

static void ggml_task(void *ctx, int64_t task, int thread)
{
    (void)thread;
    const ggml_job *j = ctx;
    const int64_t r0 = task * j->chunk, r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
    for (int64_t r = r0; r < r1; r++)
        j->vec_dot((int)j->k, &j->y[r], 0, j->w + (size_t)r * j->row, 0, j->act, 0, 1);
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        out[n++] = atoi(s);
        const char *c = strchr(s, ',');
        if (!c)
            break;
        s = c + 1;
    }
    return n;
}

typedef struct shape {
    int64_t rows, k;
} shape;

int main(int argc, char **argv)
{
    int reps = 7, threads[8] = {1, 2}, n_threads = 2, prefill = 1;
    size_t copy_bytes = (size_t)384 << 20;
    const char *types_arg = "Q5_0,Q8_0,Q4_K,Q6_K,F32";
    const char *ggml_path = getenv("ROSETTA_GGML_CPU");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            n_threads = parse_list(argv[++i], threads, 8);
        else if (strcmp(argv[i], "--types") == 0 && i + 1 < argc)
            types_arg = argv[++i];
        else if (strcmp(argv[i], "--no-prefill") == 0)
            prefill = 0;
        else if (strcmp(argv[i], "--ggml") == 0 && i + 1 < argc)
            ggml_path = argv[++i];
        else if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc)
            copy_bytes = (size_t)atoi(argv[++i]) << 20;
        else {
            fprintf(stderr, "usage: bench-matmul [--reps N] [--threads LIST] [--types LIST] "
                            "[--no-prefill] [--mb N] [--ggml PATH]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 32)
        reps = 7;
    if (ggml_path && *ggml_path && load_ggml(ggml_path) != 0)
        return 1;

    static const shape SHAPES[] = {{896, 896}, {128, 896}, {4864, 896}, {896, 4864}, {151936, 896}};
    static const shape PREFILL[] = {{896, 896}, {4864, 896}, {896, 4864}};
    const int64_t prefill_cols = 512;
    const rk_isa isa = rk_isa_active();

    /* DRAM read bandwidth per thread count */
    const size_t dram_bytes = (size_t)1 << 30;
    uint64_t *dram = malloc(dram_bytes);
    if (!dram) {
        fprintf(stderr, "bench-matmul: out of memory\n");
        return 1;
    }
    memset(dram, 1, dram_bytes);
    double dram_bw[8];
    rk_pool *pools[8];
    for (int t = 0; t < n_threads; t++) {
        pools[t] = rk_pool_create(threads[t]);
        if (!pools[t]) {
            fprintf(stderr, "bench-matmul: cannot start %d threads\n", threads[t]);
            free(dram);
            return 1;
        }
        dram_bw[t] = dram_gbps(pools[t], dram, dram_bytes, reps < 5 ? 5 : reps);
        printf("{\"bench\":\"matmul\",\"what\":\"dram_read\",\"threads\":%d,\"gbps\":%.2f}\n",
               threads[t], dram_bw[t]);
        fflush(stdout);
    }
    free(dram);

    char types_buf[256];
    snprintf(types_buf, sizeof types_buf, "%s", types_arg);
    for (char *tok = strtok(types_buf, ","); tok; tok = strtok(NULL, ",")) {
        rk_type type = RK_TYPE_F32;
        int found = 0;
        for (int v = 0; v < 256; v++) {
            const rk_type_traits *tr = rk_type_traits_get((rk_type)v);
            if (tr && tr->weight && strcmp(tr->name, tok) == 0) {
                type = (rk_type)v;
                found = 1;
            }
        }
        if (!found) {
            fprintf(stderr, "bench-matmul: unknown type %s\n", tok);
            return 2;
        }
        for (size_t si = 0; si < sizeof SHAPES / sizeof SHAPES[0]; si++) {
            const shape sh = SHAPES[si];
            if (rk_row_bytes(type, sh.k) == 0)
                continue;
            int64_t n_copies;
            uint8_t *w = make_copies(type, sh.rows, sh.k, copy_bytes, &n_copies);
            if (!w) {
                fprintf(stderr, "bench-matmul: out of memory\n");
                return 1;
            }
            const size_t row = rk_row_bytes(type, sh.k), mat = row * (size_t)sh.rows;
            const size_t act_row = rk_act_row_bytes(type, sh.k);
            float *x = malloc((size_t)(sh.k * prefill_cols) * sizeof(float));
            uint8_t *act = malloc(act_row * (size_t)prefill_cols);
            float *y = malloc((size_t)(sh.rows * prefill_cols) * sizeof(float));
            for (int64_t i = 0; i < sh.k * prefill_cols; i++)
                x[i] = frand();
            rk_quantize_act(type, sh.k, prefill_cols, x, (size_t)sh.k, act, act_row);
            /* ggml's activation for its vec_dot (its own quantizer) */
            const ggml_traits_cpu *gt = ggml_traits ? ggml_traits((int)type) : NULL;
            uint8_t *gact = NULL;
            if (gt && gt->vec_dot) {
                const ggml_traits_cpu *at = ggml_traits(gt->vec_dot_type);
                gact = malloc(rk_row_bytes((rk_type)gt->vec_dot_type, sh.k) + 64);
                if (at->from_float && gt->vec_dot_type != RK_TYPE_F32)
                    at->from_float(x, gact, sh.k);
                else
                    memcpy(gact, x, (size_t)sh.k * sizeof(float));
            }
            /* the ROWS copies, and their R16 repacking when the type has one */
            rk_matrix *mats = malloc((size_t)n_copies * sizeof *mats);
            uint8_t *packed = NULL;
            for (int lay = 0; lay < 2; lay++) {
                if (lay == 1) {
                    const size_t pb = rk_repack_bytes(type, sh.rows, sh.k);
                    if (pb == 0 || !(packed = malloc(pb * (size_t)n_copies)))
                        break;
                }
                for (int64_t c = 0; c < n_copies; c++) {
                    rk_matrix m = {.type = type,
                                   .data = w + (size_t)c * mat,
                                   .row_stride = row,
                                   .n_rows = sh.rows,
                                   .k = sh.k,
                                   .scale = 1.0f};
                    mats[c] = m;
                    if (lay == 1) {
                        const size_t pb = rk_repack_bytes(type, sh.rows, sh.k);
                        rk_repack(&m, packed + (size_t)c * pb, pb, &mats[c]);
                    }
                }
                const char *lname = lay ? "r16" : "rows";
                for (int t = 0; t < n_threads; t++) {
                    double tm[32] = {0}, tg[32] = {0};
                    const int64_t nt = rk_pool_threads(pools[t]);
                    int64_t chunk = (sh.rows + 4 * nt - 1) / (4 * nt);
                    chunk = chunk < 16 ? 16 : (chunk + 15) / 16 * 16;
                    double tcpu[32] = {0};
                    for (int r = 0; r < reps; r++) {
                        double t0 = now();
                        const double c0 = cpu_now();
                        for (int64_t c = 0; c < n_copies; c++)
                            rk_matmul_pool(pools[t], &mats[c], act, act_row, 1, y, (size_t)sh.rows);
                        tm[r] = (now() - t0) / (double)n_copies;
                        tcpu[r] = (cpu_now() - c0) / (double)n_copies / threads[t];
                        if (!gact)
                            continue;
                        t0 = now();
                        for (int64_t c = 0; c < n_copies; c++) {
                            ggml_job gj = {gt->vec_dot, w + (size_t)c * mat,
                                           row,         sh.rows,
                                           sh.k,        chunk,
                                           gact,        y};
                            rk_pool_run(pools[t], (sh.rows + chunk - 1) / chunk, ggml_task, &gj);
                        }
                        tg[r] = (now() - t0) / (double)n_copies;
                    }
                    const double best = min_of(tm, reps);
                    const double s = median(tm, reps);
                    const double gbps = (double)mat / s / 1e9;
                    /* the same matrix again and again: cache-resident, the kernel's own speed */
                    double th[32] = {0};
                    const rk_matrix m0 = mats[0];
                    const int64_t inner = (int64_t)(((size_t)64 << 20) / mat) + 1;
                    for (int r = 0; r < reps; r++) {
                        const double t0 = now();
                        for (int64_t c = 0; c < inner; c++)
                            rk_matmul_pool(pools[t], &m0, act, act_row, 1, y, (size_t)sh.rows);
                        th[r] = (now() - t0) / (double)inner;
                    }
                    const double hot = min_of(th, reps);
                    printf("{\"bench\":\"matmul\",\"what\":\"decode\",\"type\":\"%s\","
                           "\"layout\":\"%s\",\"rows\":%lld,\"k\":%lld,\"cols\":1,\"threads\":%d,"
                           "\"isa\":\"%s\",\"ms\":%.4f,\"ms_min\":%.4f,\"gflops\":%.2f,"
                           "\"weight_gbps\":%.2f,\"weight_gbps_best\":%.2f,"
                           "\"weight_gbps_cpu_time\":%.2f,\"frac_dram\":%.3f,"
                           "\"hot_cache_gbps\":%.2f}\n",
                           tok, lname, (long long)sh.rows, (long long)sh.k, threads[t],
                           rk_isa_name(isa), s * 1e3, best * 1e3,
                           2.0 * (double)sh.rows * (double)sh.k / s / 1e9, gbps,
                           (double)mat / best / 1e9, (double)mat / median(tcpu, reps) / 1e9,
                           gbps / dram_bw[t], (double)mat / hot / 1e9);
                    if (gact) {
                        const double g = median(tg, reps);
                        printf("{\"bench\":\"matmul\",\"what\":\"decode_vs_ggml\",\"type\":\"%s\","
                               "\"layout\":\"%s\",\"rows\":%lld,\"k\":%lld,\"threads\":%d,\"weight_"
                               "gbps\":%.2f,"
                               "\"ggml_weight_gbps\":%.2f,\"ratio\":%.3f}\n",
                               tok, lname, (long long)sh.rows, (long long)sh.k, threads[t], gbps,
                               (double)mat / g / 1e9, g / s);
                    }
                    fflush(stdout);
                }
                int do_prefill = 0;
                for (size_t pi = 0; pi < sizeof PREFILL / sizeof PREFILL[0]; pi++)
                    if (PREFILL[pi].rows == sh.rows && PREFILL[pi].k == sh.k)
                        do_prefill = prefill;
                for (int t = 0; do_prefill && t < n_threads; t++) {
                    const rk_matrix m = mats[0];
                    double tm[32] = {0}, tc[32] = {0};
                    const int preps = reps < 3 ? reps : 3;
                    for (int r = 0; r < preps; r++) {
                        const double t0 = now(), c0 = cpu_now();
                        rk_matmul_pool(pools[t], &m, act, act_row, prefill_cols, y,
                                       (size_t)sh.rows);
                        tm[r] = now() - t0;
                        tc[r] = (cpu_now() - c0) / threads[t];
                    }
                    const double s = median(tm, preps), sc = median(tc, preps);
                    const double flop = 2.0 * (double)sh.rows * (double)sh.k * (double)prefill_cols;
                    printf("{\"bench\":\"matmul\",\"what\":\"prefill\",\"type\":\"%s\","
                           "\"layout\":\"%s\",\"rows\":%lld,\"k\":%lld,\"cols\":%lld,"
                           "\"threads\":%d,\"isa\":\"%s\",\"ms\":%.3f,\"gflops\":%.2f,"
                           "\"gflops_cpu_time\":%.2f}\n",
                           tok, lname, (long long)sh.rows, (long long)sh.k, (long long)prefill_cols,
                           threads[t], rk_isa_name(isa), s * 1e3, flop / s / 1e9, flop / sc / 1e9);
                    fflush(stdout);
                }
            }
            free(mats);
            free(packed);
            free(x);
            free(act);
            free(gact);
            free(y);
            free(w);
        }
    }
    for (int t = 0; t < n_threads; t++)
        rk_pool_destroy(pools[t]);
    return 0;
}
