/* Test helper for the crash-safety and concurrency tests: writes a self-checking file through
 * the library's atomic writer (rf_writer) in chunks, as slowly as asked, so that tests can kill
 * it, starve it of disk or race several of them; --check verifies such a file.
 *
 * usage: slow_writer [--id N] [--size BYTES] [--chunk BYTES] [--delay-us US] [--verify]
 *                    [--fsize-limit BYTES] [--ignore-sigxfsz] OUT
 *        slow_writer --check FILE
 * File layout: "RFSLOW01", u64 id, u64 total size, a pattern derived from (id, offset), and a
 * CRC-32 of everything before it in the last 4 bytes.
 * Exit: 0 ok, 1 --check found a bad file, 2 usage, 4 write error (message on stderr). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "model_internal.h"
#include "io.h"

#define HEADER 24
static const uint8_t MAGIC[8] = {'R', 'F', 'S', 'L', 'O', 'W', '0', '1'};

static uint8_t pattern(uint64_t id, uint64_t offset)
{
    uint64_t x = (offset + 1) * 0x9E3779B97F4A7C15ull ^ (id + 1) * 0xC2B2AE3D27D4EB4Full;
    return (uint8_t)(x >> 56);
}

static void fill(uint8_t *buf, size_t n, uint64_t id, uint64_t offset)
{
    for (size_t k = 0; k < n; k++)
        buf[k] = pattern(id, offset + k);
}

/* Checks data as a complete slow_writer file; on success stores its id. */
static int check_bytes(const uint8_t *data, uint64_t size, uint64_t *id, char *why, size_t why_len)
{
    if (size < HEADER + 4 || memcmp(data, MAGIC, sizeof MAGIC) != 0) {
        snprintf(why, why_len, "not a slow_writer file (%llu bytes)", (unsigned long long)size);
        return 1;
    }
    *id = rf_load_le64(data + 8);
    uint64_t want = rf_load_le64(data + 16);
    if (want != size) {
        snprintf(why, why_len, "truncated or extended: header says %llu bytes, file has %llu",
                 (unsigned long long)want, (unsigned long long)size);
        return 1;
    }
    for (uint64_t k = HEADER; k < size - 4; k++) {
        if (data[k] != pattern(*id, k)) {
            snprintf(why, why_len, "byte %llu does not belong to writer %llu (mixed output)",
                     (unsigned long long)k, (unsigned long long)*id);
            return 1;
        }
    }
    if (rf_load_le32(data + size - 4) != rf_crc32(0, data, size - 4)) {
        snprintf(why, why_len, "footer CRC mismatch");
        return 1;
    }
    return 0;
}

static rf_status verify_temp(const char *temp_path, void *ctx, rf_error *err)
{
    (void)ctx;
    rf_file *f = rf_file_open(temp_path, err);
    if (!f)
        return RF_ERR_WRITE;
    uint64_t id;
    char why[256];
    int bad = check_bytes(rf_file_data(f), rf_file_size(f), &id, why, sizeof why);
    rf_file_close(f);
    if (bad)
        return rf_error_set(err, RF_ERR_WRITE, "%s: verification failed: %s", temp_path, why);
    return RF_OK;
}

static int check_file(const char *path)
{
    rf_error err;
    rf_file *f = rf_file_open(path, &err);
    if (!f) {
        fprintf(stderr, "slow_writer: %s\n", err.message);
        return 1;
    }
    uint64_t id;
    char why[256];
    int bad = check_bytes(rf_file_data(f), rf_file_size(f), &id, why, sizeof why);
    if (bad)
        fprintf(stderr, "slow_writer: %s: %s\n", path, why);
    else
        printf("ok id=%llu size=%llu\n", (unsigned long long)id,
               (unsigned long long)rf_file_size(f));
    rf_file_close(f);
    return bad;
}

static int usage(void)
{
    fprintf(stderr, "usage: slow_writer [--id N] [--size BYTES] [--chunk BYTES] [--delay-us US] "
                    "[--verify] [--fsize-limit BYTES] [--ignore-sigxfsz] OUT\n"
                    "       slow_writer --check FILE\n");
    return 2;
}

int main(int argc, char **argv)
{
    uint64_t id = 1, size = 1 << 20, chunk = 65536, delay_us = 0;
    long long fsize_limit = -1;
    int verify = 0;
    const char *out = NULL;
    for (int k = 1; k < argc && argv[k]; k++) {
        const char *a = argv[k];
        const char *v = argv[k + 1]; /* argv[argc] is NULL */
        if (strcmp(a, "--check") == 0 && v)
            return check_file(v);
        if (strcmp(a, "--verify") == 0)
            verify = 1;
        else if (strcmp(a, "--ignore-sigxfsz") == 0)
            signal(SIGXFSZ, SIG_IGN);
        else if (strcmp(a, "--id") == 0 && v)
            id = strtoull(argv[++k], NULL, 10);
        else if (strcmp(a, "--size") == 0 && v)
            size = strtoull(argv[++k], NULL, 10);
        else if (strcmp(a, "--chunk") == 0 && v)
            chunk = strtoull(argv[++k], NULL, 10);
        else if (strcmp(a, "--delay-us") == 0 && v)
            delay_us = strtoull(argv[++k], NULL, 10);
        else if (strcmp(a, "--fsize-limit") == 0 && v)
            fsize_limit = strtoll(argv[++k], NULL, 10);
        else if (a[0] != '-' && !out)
            out = a;
        else
            return usage();
    }
    if (!out || size < HEADER + 4 || chunk == 0)
        return usage();
    if (fsize_limit >= 0) {
        struct rlimit rl = {(rlim_t)fsize_limit, (rlim_t)fsize_limit};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
            perror("slow_writer: setrlimit");
            return 2;
        }
    }

    rf_error err;
    rf_writer *w = rf_writer_open(out, &err);
    if (!w) {
        fprintf(stderr, "slow_writer: %s\n", err.message);
        return 4;
    }
    uint8_t header[HEADER];
    memcpy(header, MAGIC, sizeof MAGIC);
    rf_store_le64(header + 8, id);
    rf_store_le64(header + 16, size);
    uint8_t *buf = malloc(chunk);
    if (!buf || rf_writer_write(w, header, HEADER, &err) != RF_OK) {
        fprintf(stderr, "slow_writer: %s\n", buf ? err.message : "out of memory");
        free(buf);
        rf_writer_abort(w);
        return 4;
    }
    uint64_t body_end = size - 4;
    for (uint64_t off = HEADER; off < body_end;) {
        size_t n = (size_t)(body_end - off < chunk ? body_end - off : chunk);
        fill(buf, n, id, off);
        if (rf_writer_write(w, buf, n, &err) != RF_OK) {
            fprintf(stderr, "slow_writer: %s\n", err.message);
            free(buf);
            rf_writer_abort(w);
            return 4;
        }
        off += n;
        if (delay_us) {
            struct timespec ts = {(time_t)(delay_us / 1000000), (long)(delay_us % 1000000) * 1000};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        }
    }
    free(buf);
    uint8_t footer[4];
    rf_store_le32(footer, rf_writer_crc32(w));
    if (rf_writer_write(w, footer, 4, &err) != RF_OK) {
        fprintf(stderr, "slow_writer: %s\n", err.message);
        rf_writer_abort(w);
        return 4;
    }
    if (rf_writer_commit(w, verify ? verify_temp : NULL, NULL, &err) != RF_OK) {
        fprintf(stderr, "slow_writer: %s\n", err.message);
        return 4;
    }
    return 0;
}
