/* Bounds-checked cursor, little-endian helpers, mapped files and the atomic writer. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_internal.h"
#include "io.h"

Test(io, cursor_reads_and_bounds)
{
    const uint8_t data[] = {1, 2, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9};
    rf_cursor c = rf_cursor_make(data, sizeof data, "buf");
    rf_error err;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    cr_assert_eq(rf_cursor_u8(&c, &u8, &err), RF_OK);
    cr_assert_eq(u8, 1);
    cr_assert_eq(rf_cursor_u16(&c, &u16, &err), RF_OK);
    cr_assert_eq(u16, 2);
    cr_assert_eq(rf_cursor_u32(&c, &u32, &err), RF_OK);
    cr_assert_eq(u32, 3);
    cr_assert_eq(rf_cursor_u64(&c, &u64, &err), RF_OK);
    cr_assert_eq(u64, 4);
    cr_assert_eq(rf_cursor_remaining(&c), 1);
    cr_assert_eq(rf_cursor_u16(&c, &u16, &err), RF_ERR_FORMAT);
    cr_assert(strstr(err.message, "offset 15") && strstr(err.message, "need 2"), "%s", err.message);
    cr_assert_eq(c.pos, 15, "a failed read does not move the cursor");
    const uint8_t *p;
    cr_assert_eq(rf_cursor_bytes(&c, UINT64_MAX, &p, &err), RF_ERR_FORMAT, "huge length, no wrap");
    cr_assert_eq(rf_cursor_seek(&c, 17, &err), RF_ERR_FORMAT);
    cr_assert_eq(rf_cursor_seek(&c, 16, &err), RF_OK);
    cr_assert_eq(rf_cursor_u8(&c, &u8, &err), RF_ERR_FORMAT);
}

Test(io, cursor_swaps_big_endian)
{
    const uint8_t data[] = {0, 0, 0, 3, 0x3f, 0x80, 0, 0};
    rf_cursor c = rf_cursor_make(data, sizeof data, "be");
    c.swap = true;
    uint32_t v;
    float f;
    cr_assert_eq(rf_cursor_u32(&c, &v, NULL), RF_OK);
    cr_assert_eq(v, 3);
    cr_assert_eq(rf_cursor_f32(&c, &f, NULL), RF_OK);
    cr_assert_eq(f, 1.0f);
}

Test(io, crc32_check_value)
{
    cr_assert_eq(rf_crc32(0, "123456789", 9), 0xCBF43926u);
    uint32_t part = rf_crc32(0, "12345", 5);
    cr_assert_eq(rf_crc32(part, "6789", 4), 0xCBF43926u, "CRC continues across calls");
}

static int count_temp_files(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp-"))
            n++;
    closedir(d);
    return n;
}

static rf_status reject_all(const char *path, void *ctx, rf_error *err)
{
    (void)ctx;
    return rf_error_set(err, RF_ERR_FORMAT, "%s: verification refused", path);
}

Test(io, atomic_writer)
{
    char dir[] = "/tmp/rosetta-writer-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    rf_error err;

    rf_writer *w = rf_writer_open(path, &err);
    cr_assert_not_null(w, "%s", err.message);
    cr_assert_eq(rf_writer_write(w, "abc", 3, &err), RF_OK);
    cr_assert_eq(rf_writer_pad(w, 32, &err), RF_OK);
    cr_assert_eq(rf_writer_offset(w), 32);
    cr_assert_eq(access(path, F_OK), -1, "nothing under the final name before commit");
    cr_assert_eq(count_temp_files(dir), 1);
    uint8_t expect[32] = {'a', 'b', 'c'};
    cr_assert_eq(rf_writer_crc32(w), rf_crc32(0, expect, 32));
    cr_assert_eq(rf_writer_commit(w, NULL, NULL, &err), RF_OK, "%s", err.message);
    rf_file *f = rf_file_open(path, &err);
    cr_assert_not_null(f);
    cr_assert_eq(rf_file_size(f), 32);
    cr_assert_arr_eq(rf_file_data(f), expect, 32);
    cr_assert_eq(rf_file_check_unchanged(f, &err), RF_OK);
    rf_file_close(f);
    cr_assert_eq(count_temp_files(dir), 0);

    /* a refused verification leaves the previous file and no temp file */
    w = rf_writer_open(path, &err);
    cr_assert_eq(rf_writer_write(w, "xyz", 3, &err), RF_OK);
    cr_assert_eq(rf_writer_commit(w, reject_all, NULL, &err), RF_ERR_FORMAT);
    cr_assert(strstr(err.message, "refused"));
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_size, 32, "previous complete file kept");
    cr_assert_eq(count_temp_files(dir), 0);

    /* abort removes the temp file */
    w = rf_writer_open(path, &err);
    rf_writer_write(w, "q", 1, &err);
    rf_writer_abort(w);
    cr_assert_eq(count_temp_files(dir), 0);

    /* unwritable target directory */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/out.bin", dir);
    cr_assert_null(rf_writer_open(bad, &err));
    cr_assert_eq(err.status, RF_ERR_WRITE);
    cr_assert(strstr(err.message, "no/such/dir"), "%s", err.message);
    unlink(path);
    rmdir(dir);
}

Test(io, file_open_errors)
{
    rf_error err;
    cr_assert_null(rf_file_open("/nonexistent/rosetta", &err));
    cr_assert_eq(err.status, RF_ERR_IO);
    cr_assert_null(rf_file_open("/tmp", &err), "directories are not files");
}
