/* Test helper for reading a mapped file that another process truncates: maps FILE (or opens a
 * model), prints "mapped <bytes>" and waits for a line on stdin (the test truncates the file
 * meanwhile), then reads every byte under rf_mapped_call and reports what happened.
 *
 * usage: mapped_reader [--unguarded] FILE      (raw mapping through rf_file_open)
 *        mapped_reader --model PATH            (every tensor of rf_model_open(PATH))
 * Exit: 0 every byte read (prints "sum <n>"), 3 a read error (message on stderr), 2 usage,
 * 77 the model could not be opened as a model by this build (reader not available). Without
 * the guard (--unguarded) a truncated mapping kills the process with SIGBUS. */
#include <stdio.h>
#include <string.h>

#include "model_internal.h"
#include "io.h"
#include "rosetta/model.h"

typedef struct span {
    const uint8_t *data;
    uint64_t size;
} span;

typedef struct sum_ctx {
    const span *spans;
    size_t n;
    volatile uint64_t sum;
} sum_ctx;

static rf_status sum_spans(void *ctx_ptr, rf_error *err)
{
    (void)err;
    sum_ctx *ctx = ctx_ptr;
    uint64_t sum = 0;
    for (size_t k = 0; k < ctx->n; k++)
        for (uint64_t i = 0; i < ctx->spans[k].size; i++)
            sum += ctx->spans[k].data[i];
    ctx->sum = sum;
    return RF_OK;
}

static void wait_for_go(uint64_t bytes)
{
    printf("mapped %llu\n", (unsigned long long)bytes);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        line[0] = '\0';
}

int main(int argc, char **argv)
{
    rf_error err;
    if (argc == 3 && strcmp(argv[1], "--model") == 0) {
        rf_model *m = rf_model_open(argv[2], NULL, &err);
        if (!m) {
            fprintf(stderr, "mapped_reader: %s\n", err.message);
            return err.status == RF_ERR_UNSUPPORTED ? 77 : 3;
        }
        size_t n = rf_model_n_tensors(m);
        span spans[4096];
        if (n > sizeof spans / sizeof spans[0])
            n = sizeof spans / sizeof spans[0];
        uint64_t total = 0;
        for (size_t k = 0; k < n; k++) {
            spans[k].data = rf_model_tensor(m, k)->data;
            spans[k].size = rf_model_tensor(m, k)->nbytes;
            total += spans[k].size;
        }
        wait_for_go(total);
        sum_ctx ctx = {spans, n, 0};
        rf_status st = rf_model_mapped_call(m, sum_spans, &ctx, &err);
        rf_model_free(m);
        if (st != RF_OK) {
            fprintf(stderr, "mapped_reader: %s\n", err.message);
            return 3;
        }
        printf("sum %llu\n", (unsigned long long)ctx.sum);
        return 0;
    }
    int unguarded = argc == 3 && strcmp(argv[1], "--unguarded") == 0;
    if (argc != 2 && !unguarded) {
        fprintf(stderr, "usage: mapped_reader [--unguarded] FILE | mapped_reader --model PATH\n");
        return 2;
    }
    rf_file *f = rf_file_open(argv[argc - 1], &err);
    if (!f) {
        fprintf(stderr, "mapped_reader: %s\n", err.message);
        return 3;
    }
    span whole = {rf_file_data(f), rf_file_size(f)};
    wait_for_go(whole.size);
    sum_ctx ctx = {&whole, 1, 0};
    rf_status st;
    if (unguarded) {
        st = sum_spans(&ctx, &err);
    } else {
        const rf_file *files[] = {f};
        st = rf_mapped_call(files, 1, sum_spans, &ctx, &err);
    }
    rf_file_close(f);
    if (st != RF_OK) {
        fprintf(stderr, "mapped_reader: %s\n", err.message);
        return 3;
    }
    printf("sum %llu\n", (unsigned long long)ctx.sum);
    return 0;
}
