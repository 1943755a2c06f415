/* Fingerprint speed: GB/s of `apr fingerprint` (every digest and statistic, exact percentiles)
 * on GGUF files of F32, BF16 and Q4_K data, against `xxhsum -H3` (one XXH3-64 of the raw file,
 * nothing else) on the same file in the same run. One JSON object per line on stdout: medians of
 * --reps runs, the two programs interleaved, files in the page cache; "ratio" = apr GB/s / xxhsum
 * GB/s by wall clock (the target is >= 0.5); "ratio_cpu_time" = xxhsum CPU seconds /
 * apr CPU seconds (all threads), steadier when other programs share the cores but blind to the
 * second core apr uses.
 *
 * Usage: bench-fingerprint [--mb N] [--reps N] [--threads N] [--apr PATH] [--dir DIR]
 * --mb: size of each file (default 256); --threads: passed to apr fingerprint (default: all CPUs);
 * --apr: the apr-fingerprint program (default: ../bin/apr-fingerprint beside this program);
 * --dir: where the files are written (default $TMPDIR or /tmp; removed at the end).
 * Without xxhsum on PATH (Debian package xxhash) only apr's numbers are printed.
 * Not for: correctness (tests/tools/fingerprint.sh). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rosetta/quant.h"

extern char **environ;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

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

/* ---- a GGUF file of one dtype ---------------------------------------------------------------- */

static void put(FILE *f, const void *p, size_t n) { fwrite(p, 1, n, f); }
static void put_u32(FILE *f, uint32_t v) { put(f, &v, 4); }
static void put_u64(FILE *f, uint64_t v) { put(f, &v, 8); }
static void put_str(FILE *f, const char *s)
{
    put_u64(f, strlen(s));
    put(f, s, strlen(s));
}

/* Normal-looking weights (sum of four uniforms, scaled like a trained layer's). */
static void fill(float *x, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < 4; k++) {
            *state = *state * 6364136223846793005ull + 1442695040888963407ull;
            s += (double)(*state >> 11) / 9007199254740992.0;
        }
        x[i] = (float)((s - 2.0) * 0.035);
    }
}

/* Writes tensors of [rows, 4096] dtype values filling about mb MiB; returns false on error. */
static bool write_gguf(const char *path, rf_dtype dtype, int ggml_type, uint64_t mb)
{
    const uint64_t cols = 4096, rows = 256;
    uint64_t row_bytes;
    rf_error err;
    if (rf_quant_row_bytes(dtype, cols, &row_bytes, &err) != RF_OK)
        return false;
    uint64_t tensor_bytes = rows * row_bytes;
    uint64_t n_tensors = (mb << 20) / tensor_bytes;
    if (n_tensors == 0)
        n_tensors = 1;
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    put(f, "GGUF", 4);
    put_u32(f, 3);
    put_u64(f, n_tensors);
    put_u64(f, 1);
    put_str(f, "general.architecture");
    put_u32(f, 8);
    put_str(f, "bench");
    for (uint64_t t = 0; t < n_tensors; t++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%llu.ffn_up.weight", (unsigned long long)t);
        put_str(f, name);
        put_u32(f, 2);
        put_u64(f, cols);
        put_u64(f, rows);
        put_u32(f, (uint32_t)ggml_type);
        put_u64(f, t * tensor_bytes); /* tensor_bytes is a multiple of 32 */
    }
    long pos = ftell(f);
    for (; pos % 32; pos++)
        fputc(0, f);
    float *x = malloc(rows * cols * sizeof *x);
    uint8_t *q = malloc(tensor_bytes);
    uint64_t state = 12345;
    bool ok = x && q;
    for (uint64_t t = 0; ok && t < n_tensors; t++) {
        fill(x, rows * cols, &state);
        ok = rf_quantize(dtype, x, q, rows, cols, NULL, NULL, &err) == RF_OK;
        if (ok)
            put(f, q, tensor_bytes);
    }
    free(x);
    free(q);
    return fclose(f) == 0 && ok;
}

/* ---- timing a program ------------------------------------------------------------------------ */

/* Seconds taken by argv with stdout to /dev/null (wall clock; *cpu gets the child's user +
 * system CPU time); negative when it failed. */
static double run_timed(char *const argv[], double *cpu)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0); /* xxhsum's progress */
    pid_t pid;
    double t0 = now();
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    double wall = now() - t0;
    *cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    return wall;
}

static bool on_path(const char *prog)
{
    char *const argv[] = {(char *)prog, "--version", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    int status;
    return rc == 0 && waitpid(pid, &status, 0) >= 0 && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0;
}

static void warm(const char *path)
{
    FILE *f = fopen(path, "rb");
    static char buf[1 << 20];
    while (f && fread(buf, 1, sizeof buf, f) == sizeof buf) {
    }
    if (f)
        fclose(f);
}

int main(int argc, char **argv)
{
    uint64_t mb = 256;
    int reps = 5, threads = 0;
    char apr[PATH_MAX] = "";
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            mb = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--apr") && i + 1 < argc)
            snprintf(apr, sizeof apr, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: bench-fingerprint [--mb N] [--reps N] [--threads N] [--apr "
                            "PATH] [--dir DIR]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 99)
        reps = 5;
    if (!apr[0]) {
        char self[PATH_MAX - 32];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            return 1;
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        *slash = '\0';
        snprintf(apr, sizeof apr, "%s/../bin/apr-fingerprint", self);
    }
    if (access(apr, X_OK) != 0) {
        printf("{\"bench\":\"fingerprint\",\"error\":\"%s is not built\"}\n", apr);
        return 1;
    }
    bool have_xxhsum = on_path("xxhsum");
    char threads_arg[16];
    snprintf(threads_arg, sizeof threads_arg, "%d", threads);
    static const struct {
        const char *name;
        rf_dtype dtype;
        int ggml;
    } cases[] = {
        {"F32", RF_DTYPE_F32, 0}, {"BF16", RF_DTYPE_BF16, 30}, {"Q4_K", RF_DTYPE_Q4_K, 12}};
    int status = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/bench-fingerprint-%d-%s.gguf", dir, (int)getpid(),
                 cases[c].name);
        if (!write_gguf(path, cases[c].dtype, cases[c].ggml, mb)) {
            printf("{\"bench\":\"fingerprint\",\"dtype\":\"%s\",\"error\":\"cannot write %s\"}\n",
                   cases[c].name, path);
            unlink(path);
            status = 1;
            continue;
        }
        struct stat st;
        stat(path, &st);
        double gb = (double)st.st_size / 1e9;
        warm(path);
        double ta[99] = {0}, tx[99] = {0}, ca[99] = {0}, cx[99] = {0};
        bool ok = true;
        for (int r = 0; r < reps && ok; r++) {
            char *fa[] = {apr, "--threads", threads_arg, path, NULL};
            char *fa_default[] = {apr, path, NULL};
            ta[r] = run_timed(threads > 0 ? fa : fa_default, &ca[r]);
            char *xa[] = {"xxhsum", "-H3", path, NULL};
            tx[r] = have_xxhsum ? run_timed(xa, &cx[r]) : 1;
            ok = ta[r] > 0 && tx[r] > 0;
        }
        unlink(path);
        if (!ok) {
            printf("{\"bench\":\"fingerprint\",\"dtype\":\"%s\",\"error\":\"a run failed\"}\n",
                   cases[c].name);
            status = 1;
            continue;
        }
        double apr_gbps = gb / median(ta, reps), apr_cpu = median(ca, reps);
        if (have_xxhsum) {
            double xx_gbps = gb / median(tx, reps), xx_cpu = median(cx, reps);
            printf("{\"bench\":\"fingerprint\",\"dtype\":\"%s\",\"file_bytes\":%lld,\"threads\":%d,"
                   "\"reps\":%d,\"apr_fingerprint_gbps\":%.3f,\"xxhsum_h3_gbps\":%.3f,"
                   "\"ratio\":%.3f,\"apr_cpu_s\":%.3f,\"xxhsum_cpu_s\":%.3f,"
                   "\"ratio_cpu_time\":%.3f,\"target_ratio\":0.5}\n",
                   cases[c].name, (long long)st.st_size, threads, reps, apr_gbps, xx_gbps,
                   apr_gbps / xx_gbps, apr_cpu, xx_cpu, xx_cpu / apr_cpu);
        } else {
            printf("{\"bench\":\"fingerprint\",\"dtype\":\"%s\",\"file_bytes\":%lld,\"threads\":%d,"
                   "\"reps\":%d,\"apr_fingerprint_gbps\":%.3f,\"note\":\"xxhsum not found\"}\n",
                   cases[c].name, (long long)st.st_size, threads, reps, apr_gbps);
        }
        fflush(stdout);
    }
    return status;
}
