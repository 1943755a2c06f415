/* The malformed GGUF catalogue (tests/data/bad/gguf, made by tests/data/bad/make_gguf.py): every
 * file is rejected by rf_model_open with a message holding its .expect substring, and a lenient
 * open never crashes. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/test_leaks.h"
#include "rosetta/model.h"

#define BAD_DIR ROSETTA_ROOT "/tests/data/bad/gguf"

static bool read_expect(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(out, (int)cap, f) != NULL;
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return ok && out[0];
}

Test(gguf_bad, every_file_rejected_with_its_message)
{
    DIR *d = opendir(BAD_DIR);
    cr_assert_not_null(d, "%s is missing: run tests/data/bad/make_gguf.py", BAD_DIR);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".gguf") != 0)
            continue;
        char path[512], expect_path[520], expect[512];
        snprintf(path, sizeof path, "%s/%s", BAD_DIR, e->d_name);
        snprintf(expect_path, sizeof expect_path, "%s.expect", path);
        cr_assert(read_expect(expect_path, expect, sizeof expect), "%s has no .expect", path);
        rf_error err;
        rf_model *m = rf_model_open(path, NULL, &err);
        cr_assert_null(m, "%s was accepted", e->d_name);
        cr_assert(strstr(err.message, expect), "%s: message '%s' lacks '%s'", e->d_name,
                  err.message, expect);
        cr_assert(strstr(err.message, e->d_name), "%s: message names the file: %s", e->d_name,
                  err.message);
        rf_open_options lenient = {.lenient = true};
        rf_model_free(rf_model_open(path, &lenient, &err)); /* may succeed; must not crash */
        n++;
    }
    closedir(d);
    cr_assert_geq(n, 15, "the catalogue holds %d GGUF cases", n);
    NO_LEAKS();
}
