/* Format detection by magic bytes, never by name: every APR family member, GGUF, SafeTensors,
 * shard index, directories, and look-alikes that must stay unknown. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rosetta/detect.h"

static rf_format detect(const char *bytes, size_t len, uint64_t size)
{
    return rf_detect_bytes((const uint8_t *)bytes, len, size);
}

Test(detect, magic_bytes)
{
    cr_assert_eq(detect("GGUF\3\0\0\0", 8, 100), RF_FORMAT_GGUF);
    cr_assert_eq(detect("GGUF\0\0\0\3", 8, 100), RF_FORMAT_GGUF, "big-endian GGUF");
    cr_assert_eq(detect("APR\0\2\0\0\4", 8, 100), RF_FORMAT_APR);
    cr_assert_eq(detect("APR2\2\0\0\0", 8, 100), RF_FORMAT_APR2_MAGIC);
    cr_assert_eq(detect("APRN\1\0\0\0", 8, 100), RF_FORMAT_APR_V1);
    cr_assert_eq(detect("APR1xxxx", 8, 100), RF_FORMAT_APR1);
    cr_assert_eq(detect("APRTxxxx", 8, 100), RF_FORMAT_APRT);
    cr_assert_eq(detect("APR\0\1\0\0\0\0PST", 12, 100), RF_FORMAT_APR_TSP);
    cr_assert_eq(detect("APRX", 4, 100), RF_FORMAT_UNKNOWN);
    cr_assert_eq(detect("GGU", 3, 3), RF_FORMAT_UNKNOWN, "short file");
    cr_assert_eq(detect("", 0, 0), RF_FORMAT_UNKNOWN);
}

Test(detect, safetensors_header_length_is_checked)
{
    char st[16] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    cr_assert_eq(detect(st, 10, 10), RF_FORMAT_SAFETENSORS);
    /* A '{' at byte 8 goes to the SafeTensors reader even with an impossible header length,
     * so that the reader can say what is wrong with it. */
    cr_assert_eq(detect(st, 10, 9), RF_FORMAT_SAFETENSORS, "header longer than the file");
    char huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{'};
    cr_assert_eq(detect(huge, 9, 1000), RF_FORMAT_SAFETENSORS);
    char array[16] = {2, 0, 0, 0, 0, 0, 0, 0, '[', ']'};
    cr_assert_eq(detect(array, 10, 10), RF_FORMAT_SAFETENSORS, "plausible length, JSON array");
    cr_assert_eq(detect(array, 10, 9), RF_FORMAT_UNKNOWN, "implausible length, no brace");
    char text[16] = "hello world";
    cr_assert_eq(detect(text, 11, 11), RF_FORMAT_UNKNOWN);
}

Test(detect, index_json)
{
    const char *idx = "  {\"metadata\": {}, \"weight_map\": {\"a\": \"model-00001.safetensors\"}}";
    cr_assert_eq(detect(idx, strlen(idx), strlen(idx)), RF_FORMAT_SAFETENSORS_INDEX);
    const char *cfg = "{\"hidden_size\": 896}";
    cr_assert_eq(detect(cfg, strlen(cfg), strlen(cfg)), RF_FORMAT_UNKNOWN);
}

Test(detect, paths_ignore_names)
{
    char dir[] = "/tmp/rosetta-detect-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/model.gguf", dir); /* a GGUF name on APR bytes */
    FILE *f = fopen(path, "wb");
    fwrite("APR\0\2\0\0\4", 1, 8, f);
    fclose(f);
    rf_format fmt;
    rf_error err;
    cr_assert_eq(rf_detect_path(path, &fmt, &err), RF_OK);
    cr_assert_eq(fmt, RF_FORMAT_APR);
    cr_assert_eq(rf_detect_path(dir, &fmt, &err), RF_OK);
    cr_assert_eq(fmt, RF_FORMAT_UNKNOWN, "a directory without safetensors");
    char st[256];
    snprintf(st, sizeof st, "%s/weights.safetensors", dir);
    f = fopen(st, "wb");
    fclose(f);
    cr_assert_eq(rf_detect_path(dir, &fmt, &err), RF_OK);
    cr_assert_eq(fmt, RF_FORMAT_SAFETENSORS_DIR);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    cr_assert_eq(rf_detect_path(missing, &fmt, &err), RF_ERR_IO);
    cr_assert(strstr(err.message, "missing") != NULL, "error names the file: %s", err.message);
    unlink(path);
    unlink(st);
    rmdir(dir);
}
