/* Quantization speed: MB/s of F32 input quantized by Rosetta (rf_quantize) and by llama.cpp's
 * ggml library (ggml_quantize_chunk, threaded by rows as llama-quantize does) in the same run,
 * their ratio and whether the bytes are identical; dequantization GB/s against memcpy.
 * One JSON object per line on stdout: medians of --reps runs, Rosetta and llama.cpp interleaved;
 * "ratio" from wall-clock medians, "ratio_cpu_time" from process CPU-time medians (steadier when
 * other programs share the cores).
 *
 * Usage: bench-quantize [--oracle PATH/libggml-base.so] [--reps N] [--mb N] [--dequant-mb N]
 *                       [--threads LIST] [--model PATH]
 * --mb: F32 input of the quantizers (default 8); --dequant-mb: F32 output of the dequantizers
 * (default 384, more than this machine's 300 MiB last-level cache).
 * The oracle is loaded with dlopen (scripts/build-ggml-oracle builds it), so the normal build
 * does not depend on it; $ROSETTA_GGML_ORACLE names it when --oracle is absent. Without it,
 * only Rosetta's numbers are printed.
 * --model: a model that the whole pipeline (rf_convert, as `apr quantize` runs it) converts to a
 * Q4_K_M GGUF (default fixtures/tiny-qwen2 when run from the source tree; skipped if absent).
 * Not for: correctness (tests/unit/test_quant_simd.c and the oracle tests prove the bytes). */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rosetta/convert.h"
#include "rosetta/quant.h"

typedef size_t (*ggml_quantize_chunk_fn)(int type, const float *src, void *dst, int64_t start,
                                         int64_t nrows, int64_t n_per_row, const float *imatrix);
typedef void (*ggml_quantize_init_fn)(int type);
typedef void (*ggml_dequantize_fn)(const void *x, float *y, int64_t k);

static ggml_quantize_chunk_fn ggml_quantize_chunk;

static double clock_seconds(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now(void) { return clock_seconds(CLOCK_MONOTONIC); }

/* CPU time of the whole process (all threads): on a shared machine it does not count the time
 * other programs hold the cores, so its ratio is steadier than the wall-clock ratio. */
static double cpu_now(void) { return clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }

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

/* ---- llama.cpp threaded by row ranges ------------------------------------------------------- */

typedef struct llama_job {
    int type;
    const float *src;
    void *dst;
    int64_t row0, nrows, n_per_row;
} llama_job;

static void *llama_worker(void *arg)
{
    llama_job *j = arg;
    ggml_quantize_chunk(j->type, j->src, j->dst, j->row0 * j->n_per_row, j->nrows, j->n_per_row,
                        NULL);
    return NULL;
}

static void llama_quantize(int type, const float *src, void *dst, int64_t rows, int64_t n_per_row,
                           int threads)
{
    llama_job jobs[64];
    pthread_t tids[64];
    int64_t per = rows / threads, extra = rows % threads, at = 0;
    for (int t = 0; t < threads; t++) {
        int64_t n = per + (t < extra);
        jobs[t] = (llama_job){type, src, dst, at, n, n_per_row};
        at += n;
    }
    for (int t = 1; t < threads; t++)
        if (pthread_create(&tids[t], NULL, llama_worker, &jobs[t]) != 0) {
            fprintf(stderr, "bench-quantize: cannot start a thread\n");
            exit(1);
        }
    llama_worker(&jobs[0]);
    for (int t = 1; t < threads; t++)
        pthread_join(tids[t], NULL);
}

/* ---- the whole pipeline ------------------------------------------------------------------- */

/* MB/s of source bytes of rf_convert(model -> Q4_K_M GGUF), the call `apr quantize` makes. */
static void bench_pipeline(const char *path, int reps, double *times)
{
    rf_error err = {0};
    rf_model *m = rf_model_open(path, NULL, &err);
    if (m == NULL) {
        printf("{\"bench\":\"pipeline\",\"note\":\"no model at %s\"}\n", path);
        return;
    }
    const char *tmp = getenv("TMPDIR");
    char out[4096];
    snprintf(out, sizeof out, "%s/bench-pipeline-%d.gguf", tmp && *tmp ? tmp : "/tmp",
             (int)getpid());
    rf_convert_params p = rf_convert_params_default();
    p.quantize = true;
    p.plan = rf_quant_plan_options_default(RF_MIX_Q4_K_M);
    p.format = RF_FORMAT_GGUF;
    rf_status st = RF_OK;
    for (int r = 0; r < reps && st == RF_OK; r++) {
        double t0 = now();
        st = rf_convert(m, &p, out, NULL, &err);
        times[r] = now() - t0;
    }
    if (st == RF_OK) {
        double mb = (double)rf_model_file_size(m) / 1e6;
        printf("{\"bench\":\"pipeline\",\"model\":\"%s\",\"mix\":\"Q4_K_M\",\"format\":"
               "\"gguf\",\"source_mb\":%.1f,\"reps\":%d,\"seconds\":%.4f,"
               "\"rosetta_mb_per_s\":%.1f}\n",
               path, mb, reps, median(times, reps), mb / median(times, reps));
    } else {
        printf("{\"bench\":\"pipeline\",\"note\":\"rf_convert failed\"}\n");
        fprintf(stderr, "bench-quantize: %s\n", err.message);
    }
    unlink(out);
    rf_model_free(m);
}

/* ---- main ------------------------------------------------------------------------------------ */

static float gauss(uint64_t *s)
{
    float u[2];
    for (int i = 0; i < 2; i++) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        u[i] = (float)(*s >> 40) / 16777216.0f;
    }
    return sqrtf(-2.0f * logf(u[0] + 1e-7f)) * cosf(6.2831853f * u[1]);
}

int main(int argc, char **argv)
{
    const char *oracle = getenv("ROSETTA_GGML_ORACLE");
    const char *model = "fixtures/tiny-qwen2";
    int reps = 5, mb = 8, dq_mb = 384;
    int thread_list[8] = {1, 2}, n_thread_list = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--oracle") == 0 && i + 1 < argc) {
            oracle = argv[++i];
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc) {
            mb = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--dequant-mb") == 0 && i + 1 < argc) {
            dq_mb = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            model = argv[++i];
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            n_thread_list = 0;
            for (char *tok = strtok(argv[++i], ","); tok && n_thread_list < 8;
                 tok = strtok(NULL, ","))
                thread_list[n_thread_list++] = atoi(tok);
        } else {
            fprintf(stderr, "usage: bench-quantize [--oracle LIB] [--reps N] [--mb N] "
                            "[--dequant-mb N] [--threads 1,2] [--model PATH]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 101 || mb < 1 || mb > 4096 || dq_mb < mb || dq_mb > 16384 ||
        n_thread_list < 1) {
        fprintf(stderr, "bench-quantize: --reps 1..101, --mb 1..4096, --dequant-mb mb..16384, "
                        "--threads a list\n");
        return 2;
    }
    for (int i = 0; i < n_thread_list; i++)
        if (thread_list[i] < 1 || thread_list[i] > 64) {
            fprintf(stderr, "bench-quantize: threads must be 1..64\n");
            return 2;
        }

    void *lib = NULL;
    ggml_quantize_init_fn ggml_quantize_init = NULL;
    if (oracle && *oracle) {
        lib = dlopen(oracle, RTLD_NOW | RTLD_LOCAL);
        if (lib) {
            ggml_quantize_chunk = (ggml_quantize_chunk_fn)dlsym(lib, "ggml_quantize_chunk");
            ggml_quantize_init = (ggml_quantize_init_fn)dlsym(lib, "ggml_quantize_init");
        }
        if (!ggml_quantize_chunk || !ggml_quantize_init) {
            printf("{\"bench\":\"quantize\",\"note\":\"llama.cpp oracle not usable: %s\"}\n",
                   lib ? "symbols missing" : dlerror());
            lib = NULL;
        }
    } else {
        printf("{\"bench\":\"quantize\",\"note\":\"no llama.cpp oracle given (--oracle or "
               "ROSETTA_GGML_ORACLE); Rosetta numbers only\"}\n");
    }
    const char *simd = rf_simd_active();

    /* F32 input: rows of 4096 (a typical hidden size, a multiple of every block) */
    const int64_t n_per_row = 4096;
    const int64_t rows = (int64_t)mb * 1024 * 1024 / 4 / n_per_row;
    const int64_t n = rows * n_per_row;
    float *x = malloc((size_t)n * sizeof *x);
    uint8_t *qr = malloc((size_t)n * 4), *ql = malloc((size_t)n * 4);
    double *tr = malloc(sizeof(double) * (size_t)reps), *tl = malloc(sizeof(double) * (size_t)reps);
    double *cr = malloc(sizeof(double) * (size_t)reps), *cl = malloc(sizeof(double) * (size_t)reps);
    if (!x || !qr || !ql || !tr || !tl || !cr || !cl) {
        fprintf(stderr, "bench-quantize: out of memory\n");
        return 1;
    }
    uint64_t seed = 0x853c49e6748fea9bull;
    for (int64_t i = 0; i < n; i++)
        x[i] = gauss(&seed) * 0.02f;
    const double in_mb = (double)n * 4 / 1e6;

    static const rf_dtype types[] = {RF_DTYPE_Q4_K, RF_DTYPE_Q6_K, RF_DTYPE_Q8_0, RF_DTYPE_Q5_0};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        rf_error err;
        uint64_t bytes;
        if (rf_quant_bytes(types[t], (uint64_t)rows, (uint64_t)n_per_row, &bytes, &err) != RF_OK) {
            fprintf(stderr, "bench-quantize: %s\n", err.message);
            return 1;
        }
        if (lib)
            ggml_quantize_init((int)types[t]);
        for (int k = 0; k < n_thread_list; k++) {
            int threads = thread_list[k];
            rf_quant_options opts = {threads};
            /* warm-up runs give the outputs that are compared */
            if (rf_quantize(types[t], x, qr, (uint64_t)rows, (uint64_t)n_per_row, NULL, &opts,
                            &err) != RF_OK) {
                fprintf(stderr, "bench-quantize: %s\n", err.message);
                return 1;
            }
            int identical = -1;
            if (lib) {
                llama_quantize((int)types[t], x, ql, rows, n_per_row, threads);
                identical = memcmp(qr, ql, bytes) == 0;
            }
            for (int r = 0; r < reps; r++) { /* interleaved, so both see the same machine load */
                double t0 = now(), c0 = cpu_now();
                rf_quantize(types[t], x, qr, (uint64_t)rows, (uint64_t)n_per_row, NULL, &opts,
                            &err);
                tr[r] = now() - t0;
                cr[r] = cpu_now() - c0;
                if (lib) {
                    t0 = now();
                    c0 = cpu_now();
                    llama_quantize((int)types[t], x, ql, rows, n_per_row, threads);
                    tl[r] = now() - t0;
                    cl[r] = cpu_now() - c0;
                }
            }
            double rosetta = in_mb / median(tr, reps);
            printf("{\"bench\":\"quantize\",\"type\":\"%s\",\"threads\":%d,\"simd\":\"%s\","
                   "\"input_mb\":%.1f,\"reps\":%d,\"rosetta_mb_per_s\":%.1f",
                   rf_dtype_name(types[t]), threads, simd, in_mb, reps, rosetta);
            if (lib) {
                double llama = in_mb / median(tl, reps);
                printf(",\"llama_cpp_mb_per_s\":%.1f,\"ratio\":%.2f,\"ratio_cpu_time\":%.2f,"
                       "\"bytes_identical\":%s",
                       llama, rosetta / llama, median(cl, reps) / median(cr, reps),
                       identical ? "true" : "false");
            }
            printf("}\n");
            fflush(stdout);
            if (identical == 0) {
                fprintf(stderr, "bench-quantize: %s bytes differ from llama.cpp's\n",
                        rf_dtype_name(types[t]));
                return 1;
            }
        }
    }

    /* Dequantization (one thread) into an F32 buffer larger than the last-level cache, against
     * memcpy between two such buffers. The quantized input is the sample above, tiled. */
    const int64_t big_rows = (int64_t)dq_mb * 1024 * 1024 / 4 / n_per_row / rows * rows;
    const int64_t big_n = big_rows * n_per_row;
    float *big_a = malloc((size_t)big_n * 4), *big_b = malloc((size_t)big_n * 4);
    uint8_t *big_q = malloc((size_t)big_n * 2);
    if (!big_a || !big_b || !big_q) {
        fprintf(stderr, "bench-quantize: out of memory for %d MB buffers\n", dq_mb);
        return 1;
    }
    memset(big_a, 1, (size_t)big_n * 4); /* fault the pages in before timing */
    memset(big_b, 2, (size_t)big_n * 4);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        memcpy(big_b, big_a, (size_t)big_n * 4);
        tr[r] = now() - t0;
        __asm__ volatile("" : : "r"(big_b) : "memory");
    }
    const double big_mb = (double)big_n * 4 / 1e6;
    const double memcpy_gb = (double)big_n * 4 * 2 / 1e9 / median(tr, reps); /* read + write */
    printf("{\"bench\":\"memcpy\",\"mb\":%.0f,\"gb_per_s_read_plus_write\":%.2f}\n", big_mb,
           memcpy_gb);
    static const rf_dtype dtypes[] = {RF_DTYPE_Q4_K, RF_DTYPE_Q6_K, RF_DTYPE_Q8_0};
    static const char *const ggml_names[] = {"dequantize_row_q4_K", "dequantize_row_q6_K",
                                             "dequantize_row_q8_0"};
    for (size_t t = 0; t < sizeof dtypes / sizeof dtypes[0]; t++) {
        rf_error err;
        uint64_t bytes;
        rf_quant_options opts = {0};
        rf_quant_bytes(dtypes[t], (uint64_t)rows, (uint64_t)n_per_row, &bytes, &err);
        rf_quantize(dtypes[t], x, qr, (uint64_t)rows, (uint64_t)n_per_row, NULL, &opts, &err);
        for (int64_t at = 0; at < big_rows / rows; at++)
            memcpy(big_q + (size_t)at * bytes, qr, bytes);
        const double q_bytes = (double)bytes * (double)(big_rows / rows);
        ggml_dequantize_fn ggml_deq = lib ? (ggml_dequantize_fn)dlsym(lib, ggml_names[t]) : NULL;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            rf_dequantize(dtypes[t], big_q, big_a, (uint64_t)big_n, &err);
            tr[r] = now() - t0;
            if (ggml_deq) {
                t0 = now();
                ggml_deq(big_q, big_b, big_n);
                tl[r] = now() - t0;
            }
        }
        const double traffic = q_bytes + (double)big_n * 4;
        double rosetta = traffic / 1e9 / median(tr, reps);
        printf("{\"bench\":\"dequantize\",\"type\":\"%s\",\"threads\":1,\"simd\":\"%s\","
               "\"output_mb\":%.0f,\"rosetta_gb_per_s_read_plus_write\":%.2f,"
               "\"rosetta_f32_gb_per_s\":%.2f,\"fraction_of_memcpy\":%.2f",
               rf_dtype_name(dtypes[t]), simd, big_mb, rosetta,
               (double)big_n * 4 / 1e9 / median(tr, reps), rosetta / memcpy_gb);
        if (ggml_deq) {
            double llama = traffic / 1e9 / median(tl, reps);
            printf(",\"llama_cpp_gb_per_s_read_plus_write\":%.2f,\"bits_identical\":%s", llama,
                   memcmp(big_a, big_b, (size_t)big_n * 4) == 0 ? "true" : "false");
        }
        printf("}\n");
    }
    bench_pipeline(model, reps, tr);
    free(big_a);
    free(big_b);
    free(big_q);
    free(x);
    free(qr);
    free(ql);
    free(tr);
    free(tl);
    free(cr);
    free(cl);
    if (lib)
        dlclose(lib);
    return 0;
}
