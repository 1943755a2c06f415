/* The spill file of rf_convert (see spill.h). */
#include "spill.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct spill {
    int fd;
    uint64_t size;
    uint8_t *map;
};

/* Directory of path (for the temporary file next to the output), or "."; a directory output
 * given with trailing slashes ("hfout/") counts as the name "hfout". */
static void dir_of(const char *path, char *out, size_t size)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    while (len > 0 && path[len - 1] != '/')
        len--;
    if (len == 0)
        snprintf(out, size, ".");
    else if (len == 1)
        snprintf(out, size, "/");
    else
        snprintf(out, size, "%.*s", (int)(len - 1), path);
}

spill *rfi_spill_open(const char *near_path, rf_error *err)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    if (near_path != NULL) {
        dir_of(near_path, dir, sizeof dir);
    } else {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s", t && *t ? t : "/tmp");
    }
    snprintf(path, sizeof path, "%s/.rosetta-spill-XXXXXX", dir);
    spill *s = calloc(1, sizeof *s);
    if (s == NULL) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->fd = mkstemp(path);
    if (s->fd < 0) {
        rf_error_set(err, RF_ERR_WRITE, "cannot create a temporary file in %s: %s", dir,
                     strerror(errno));
        free(s);
        return NULL;
    }
    unlink(path); /* nothing is left behind, whatever happens */
    return s;
}

static rf_status put(spill *s, const uint8_t *p, uint64_t n, rf_error *err)
{
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t w = write(s->fd, p, chunk);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return rf_error_set(
                err, RF_ERR_WRITE, "temporary file next to the output: write failed: %s%s",
                w < 0 ? strerror(errno) : "no space",
                w < 0 && errno == EFBIG ? " (the file size limit was reached: see ulimit -f)" : "");
        n -= (uint64_t)w;
        p += w;
        s->size += (uint64_t)w;
    }
    return RF_OK;
}

rf_status rfi_spill_start(spill *s, uint64_t *offset, rf_error *err)
{
    static const uint8_t zeros[64];
    rf_status st = put(s, zeros, (64 - s->size % 64) % 64, err);
    *offset = s->size;
    return st;
}

rf_status rfi_spill_write(spill *s, const void *data, uint64_t n, rf_error *err)
{
    return put(s, data, n, err);
}

rf_status rfi_spill_append(spill *s, const void *data, uint64_t n, uint64_t *offset, rf_error *err)
{
    rf_status st = rfi_spill_start(s, offset, err);
    return st == RF_OK ? put(s, data, n, err) : st;
}

rf_status rfi_spill_map(spill *s, rf_error *err)
{
    if (s->size == 0 || s->map != NULL)
        return RF_OK;
    void *m = mmap(NULL, s->size, PROT_READ, MAP_SHARED, s->fd, 0);
    if (m == MAP_FAILED)
        return rf_error_set(err, RF_ERR_WRITE, "mapping the temporary file: %s", strerror(errno));
    s->map = m;
    return RF_OK;
}

const uint8_t *rfi_spill_data(const spill *s) { return s->map; }

void rfi_spill_close(spill *s)
{
    if (s == NULL)
        return;
    if (s->map != NULL)
        munmap(s->map, s->size);
    close(s->fd);
    free(s);
}

bool rfi_spill_holds(const spill *s, const void *p, uint64_t n)
{
    const uint8_t *b = p;
    return s != NULL && s->map != NULL && b >= s->map && n <= s->size &&
           (uint64_t)(b - s->map) <= s->size - n;
}
