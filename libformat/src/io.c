/* Mapped input, bounds-checked cursor and little-endian helpers (see io.h). */
#include "io.h"

#include "pages.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io_internal.h"

struct rf_file {
    const uint8_t *data;
    uint64_t size;
    char *path;
    bool mapped;
    struct timespec mtime;
    struct rf_file *prev_mapped, *next_mapped; /* the list of live mappings, see below */
};

/* Every live mapping, so that the SIGBUS guard can name the file behind a faulting address
 * whoever opened it (io_internal.h). Looked up only after a fault, never on the hot path. */
static pthread_mutex_t mapped_lock = PTHREAD_MUTEX_INITIALIZER;
static rf_file *mapped_head;

static void mapped_add(rf_file *f)
{
    pthread_mutex_lock(&mapped_lock);
    f->next_mapped = mapped_head;
    if (mapped_head)
        mapped_head->prev_mapped = f;
    mapped_head = f;
    pthread_mutex_unlock(&mapped_lock);
}

static void mapped_remove(rf_file *f)
{
    pthread_mutex_lock(&mapped_lock);
    if (f->prev_mapped)
        f->prev_mapped->next_mapped = f->next_mapped;
    else
        mapped_head = f->next_mapped;
    if (f->next_mapped)
        f->next_mapped->prev_mapped = f->prev_mapped;
    pthread_mutex_unlock(&mapped_lock);
}

bool rfi_io_mapped_lookup(const void *addr, char *path, size_t path_size, uint64_t *offset,
                          uint64_t *mapped_size)
{
    const uint8_t *a = addr;
    bool found = false;
    pthread_mutex_lock(&mapped_lock);
    for (const rf_file *f = mapped_head; f && !found; f = f->next_mapped) {
        if (a >= f->data && (uint64_t)(a - f->data) < f->size) {
            snprintf(path, path_size, "%s", f->path);
            *offset = (uint64_t)(a - f->data);
            *mapped_size = f->size;
            found = true;
        }
    }
    pthread_mutex_unlock(&mapped_lock);
    return found;
}

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

rf_file *rf_file_open(const char *path, rf_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0) {
        rf_error_set(err, RF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rf_error_set(err, RF_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        rf_error_set(err, RF_ERR_IO, RF_NOT_REGULAR_MESSAGE, path);
        close(fd);
        return NULL;
    }
    rf_file *f = calloc(1, sizeof *f);
    char *copy = dup_string(path);
    if (!f || !copy) {
        free(f);
        free(copy);
        close(fd);
        rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    f->path = copy;
    f->size = (uint64_t)st.st_size;
    f->mtime = st.st_mtim;
    if (f->size == 0) {
        static const uint8_t empty[1];
        f->data = empty;
    } else {
        void *p = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            rf_error_set(err, RF_ERR_IO, "%s: cannot map %llu bytes: %s", path,
                         (unsigned long long)f->size, strerror(errno));
            close(fd);
            free(f->path);
            free(f);
            return NULL;
        }
        f->data = p;
        f->mapped = true;
        mapped_add(f);
    }
    close(fd);
    return f;
}

rf_file *rf_file_from_memory(const void *data, uint64_t size, const char *name, rf_error *err)
{
    rf_file *f = calloc(1, sizeof *f);
    char *copy = dup_string(name ? name : "<memory>");
    if (!f || !copy) {
        free(f);
        free(copy);
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    static const uint8_t empty[1];
    f->data = data ? data : empty;
    f->size = data ? size : 0;
    f->path = copy;
    return f;
}

void rf_file_close(rf_file *f)
{
    if (!f)
        return;
    if (f->mapped) {
        mapped_remove(f);
        munmap((void *)f->data, (size_t)f->size);
    }
    free(f->path);
    free(f);
}

const uint8_t *rf_file_data(const rf_file *f) { return f->data; }
uint64_t rf_file_size(const rf_file *f) { return f->size; }
const char *rf_file_path(const rf_file *f) { return f->path; }

rf_status rf_file_check_unchanged(const rf_file *f, rf_error *err)
{
    if (!f->mapped)
        return RF_OK;
    struct stat st;
    if (stat(f->path, &st) != 0)
        return rf_error_set(err, RF_ERR_IO, "%s: cannot stat: %s", f->path, strerror(errno));
    if ((uint64_t)st.st_size != f->size || st.st_mtim.tv_sec != f->mtime.tv_sec ||
        st.st_mtim.tv_nsec != f->mtime.tv_nsec)
        return rf_error_set(err, RF_ERR_IO, "%s: file changed while in use (size %llu, now %llu)",
                            f->path, (unsigned long long)f->size, (unsigned long long)st.st_size);
    return RF_OK;
}

/* ---- cursor ---------------------------------------------------------------------------- */

rf_cursor rf_cursor_make(const uint8_t *base, uint64_t size, const char *name)
{
    rf_cursor c = {base, size, 0, name ? name : "<data>", false};
    return c;
}

uint64_t rf_cursor_remaining(const rf_cursor *c)
{
    return c->pos <= c->size ? c->size - c->pos : 0;
}

static rf_status need(const rf_cursor *c, uint64_t n, rf_error *err)
{
    if (rf_cursor_remaining(c) < n)
        return rf_error_set(
            err, RF_ERR_FORMAT,
            "%s: unexpected end of data at offset %llu: need %llu bytes, %llu remain", c->name,
            (unsigned long long)c->pos, (unsigned long long)n,
            (unsigned long long)rf_cursor_remaining(c));
    return RF_OK;
}

rf_status rf_cursor_u8(rf_cursor *c, uint8_t *out, rf_error *err)
{
    if (need(c, 1, err))
        return RF_ERR_FORMAT;
    *out = c->base[c->pos++];
    return RF_OK;
}

rf_status rf_cursor_u16(rf_cursor *c, uint16_t *out, rf_error *err)
{
    if (need(c, 2, err))
        return RF_ERR_FORMAT;
    uint16_t v = rf_load_le16(c->base + c->pos);
    *out = c->swap ? __builtin_bswap16(v) : v;
    c->pos += 2;
    return RF_OK;
}

rf_status rf_cursor_u32(rf_cursor *c, uint32_t *out, rf_error *err)
{
    if (need(c, 4, err))
        return RF_ERR_FORMAT;
    uint32_t v = rf_load_le32(c->base + c->pos);
    *out = c->swap ? __builtin_bswap32(v) : v;
    c->pos += 4;
    return RF_OK;
}

rf_status rf_cursor_u64(rf_cursor *c, uint64_t *out, rf_error *err)
{
    if (need(c, 8, err))
        return RF_ERR_FORMAT;
    uint64_t v = rf_load_le64(c->base + c->pos);
    *out = c->swap ? __builtin_bswap64(v) : v;
    c->pos += 8;
    return RF_OK;
}

rf_status rf_cursor_f32(rf_cursor *c, float *out, rf_error *err)
{
    uint32_t u;
    rf_status st = rf_cursor_u32(c, &u, err);
    if (st == RF_OK)
        memcpy(out, &u, sizeof u);
    return st;
}

rf_status rf_cursor_f64(rf_cursor *c, double *out, rf_error *err)
{
    uint64_t u;
    rf_status st = rf_cursor_u64(c, &u, err);
    if (st == RF_OK)
        memcpy(out, &u, sizeof u);
    return st;
}

rf_status rf_cursor_bytes(rf_cursor *c, uint64_t n, const uint8_t **out, rf_error *err)
{
    if (need(c, n, err))
        return RF_ERR_FORMAT;
    *out = c->base + c->pos;
    c->pos += n;
    return RF_OK;
}

rf_status rf_cursor_skip(rf_cursor *c, uint64_t n, rf_error *err)
{
    if (need(c, n, err))
        return RF_ERR_FORMAT;
    c->pos += n;
    return RF_OK;
}

rf_status rf_cursor_seek(rf_cursor *c, uint64_t pos, rf_error *err)
{
    if (pos > c->size)
        return rf_error_set(err, RF_ERR_FORMAT, "%s: offset %llu is past the end (%llu bytes)",
                            c->name, (unsigned long long)pos, (unsigned long long)c->size);
    c->pos = pos;
    return RF_OK;
}

/* ---- little-endian helpers -------------------------------------------------------------- */

uint16_t rf_load_le16(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | (b[1] << 8));
}

uint32_t rf_load_le32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

uint64_t rf_load_le64(const void *p)
{
    const uint8_t *b = p;
    return (uint64_t)rf_load_le32(b) | ((uint64_t)rf_load_le32(b + 4) << 32);
}

void rf_store_le16(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}

void rf_store_le32(void *p, uint32_t v)
{
    uint8_t *b = p;
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

void rf_store_le64(void *p, uint64_t v)
{
    uint8_t *b = p;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

void rfi_pages_release(const void *p, uint64_t n)
{
    static long page;
    if (page == 0)
        page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
    const uint8_t *b = p;
    uint64_t head = ((uint64_t)page - (uintptr_t)b % (uint64_t)page) % (uint64_t)page;
    if (n <= head)
        return;
    uint64_t whole = (n - head) / (uint64_t)page * (uint64_t)page;
    if (whole > 0)
        madvise((void *)(b + head), whole, MADV_DONTNEED);
}

bool rfi_file_release_range(const rf_file *f, const void *p, uint64_t n)
{
    const uint8_t *b = p;
    if (f == NULL || !f->mapped || b < f->data || n > f->size ||
        (uint64_t)(b - f->data) > f->size - n)
        return false;
    rfi_pages_release(p, n);
    return true;
}
