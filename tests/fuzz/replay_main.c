/* Replays inputs through a fuzz target without libFuzzer: every file given, and every file
 * under every directory given (recursively), goes once through LLVMFuzzerTestOneInput; an
 * argument "?dir" names an optional directory (skipped when absent).
 * Used by CTest in every build (the committed corpora and tests/data/bad are regression
 * tests), and to reproduce a finding under gdb or valgrind. Exit 0 when all ran. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static size_t n_inputs;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    uint8_t *buf = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *p = realloc(buf, cap);
            if (!p) {
                fprintf(stderr, "%s: out of memory\n", path);
                free(buf);
                fclose(f);
                return 1;
            }
            buf = p;
        }
        size_t n = fread(buf + size, 1, cap - size, f);
        size += n;
        if (n == 0)
            break;
    }
    fclose(f);
    /* An exact-size heap copy, so that AddressSanitizer sees any read past the input. */
    uint8_t *exact = malloc(size ? size : 1);
    if (!exact) {
        free(buf);
        return 1;
    }
    if (size)
        memcpy(exact, buf, size);
    free(buf);
    if (getenv("REPLAY_VERBOSE"))
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    n_inputs++;
    return 0;
}

static int run_path(const char *path)
{
    struct stat st;
    if (path[0] == '?') { /* optional: "?dir" is skipped when it does not exist */
        path++;
        if (stat(path, &st) != 0) {
            fprintf(stderr, "replay: %s does not exist (optional, skipped)\n", path);
            return 0;
        }
    }
    if (stat(path, &st) != 0) {
        perror(path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    struct dirent **list;
    int n = scandir(path, &list, NULL, alphasort);
    if (n < 0) {
        perror(path);
        return 1;
    }
    int rc = 0;
    for (int k = 0; k < n; k++) {
        const char *name = list[k]->d_name;
        if (name[0] != '.') {
            size_t len = strlen(path) + strlen(name) + 2;
            char *child = malloc(len);
            if (child) {
                snprintf(child, len, "%s/%s", path, name);
                rc |= run_path(child);
                free(child);
            } else {
                rc = 1;
            }
        }
        free(list[k]);
    }
    free(list);
    return rc;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    int rc = 0;
    for (int k = 1; k < argc; k++)
        rc |= run_path(argv[k]);
    fprintf(stderr, "replay: %zu inputs\n", n_inputs);
    return rc;
}
