/* The atomic writer: every model file Rosetta writes goes through here (temp file in the target
 * directory, buffered writes with a running CRC-32, fsync, verify, rename, directory fsync).
 * It never renames over anything but a regular file, removes its temp file when SIGINT/SIGTERM/
 * SIGHUP end the process (output.c), and copies the caller's bytes under the mapped-input guard
 * (a truncated mapped source is an error, not a SIGBUS). */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include <libdeflate.h>

#include "io_internal.h"
#include "output_internal.h"

#define WRITER_BUFFER (1u << 20)

struct rf_writer {
    int fd;
    int lock_fd; /* holds the flock that marks the temp file as live until w is freed */
    char *final_path;
    char *temp_path;
    uint8_t *buf;
    size_t used;
    uint64_t offset;
    uint64_t writeback; /* file bytes whose write-back has been started */
    uint32_t crc;
    rf_status failed; /* sticky */
    char failure[sizeof(((rf_error *)0)->message)];
    int temp_slot; /* rfi_output_temp_remember's slot: removed on SIGINT/SIGTERM/SIGHUP */
};

uint32_t rf_crc32(uint32_t crc, const void *data, size_t n)
{
    return libdeflate_crc32(crc, data, n);
}

rf_writer *rf_writer_open(const char *path, rf_error *err)
{
    /* Never rename over a device (/dev/null), a FIFO or a directory: refused before anything
     * is created. */
    if (rfi_output_refuse_special(path, err) != RF_OK)
        return NULL;
    rf_output_cleanup_on_signals();
    rf_writer *w = calloc(1, sizeof *w);
    size_t len = strlen(path);
    if (!w || !(w->final_path = malloc(len + 1)) || !(w->temp_path = malloc(len + 16)) ||
        !(w->buf = malloc(WRITER_BUFFER))) {
        if (w) {
            free(w->final_path);
            free(w->temp_path);
            free(w);
        }
        rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    memcpy(w->final_path, path, len + 1);
    w->temp_slot = -1;
    rf_writer_cleanup_stale(path);
    /* The terminating signals wait until the temp file is created and recorded for removal. */
    sigset_t block, saved;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &saved);
    /* Lock the temp file so rf_writer_cleanup_stale sees it is live (a file system without
     * flock leaves it unlocked); a file a cleaner unlinked between mkostemp and flock has no
     * links left: make another one. */
    struct stat st;
    for (int tries = 0; tries < 8; tries++, errno = EAGAIN) {
        snprintf(w->temp_path, len + 16, "%s.tmp-XXXXXX", path);
        w->fd = mkostemp(w->temp_path, O_CLOEXEC);
        if (w->fd < 0 || flock(w->fd, LOCK_EX) != 0 || (fstat(w->fd, &st) == 0 && st.st_nlink > 0))
            break;
        close(w->fd);
        w->fd = -1;
    }
    int open_errno = errno;
    if (w->fd >= 0)
        w->temp_slot = rfi_output_temp_remember(w->temp_path);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    w->lock_fd = w->fd >= 0 ? fcntl(w->fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (w->fd < 0) {
        rf_error_set(err, RF_ERR_WRITE, "%s: cannot create temporary file: %s", path,
                     strerror(open_errno));
        free(w->buf);
        free(w->final_path);
        free(w->temp_path);
        free(w);
        return NULL;
    }
    fchmod(w->fd, 0644);
    return w;
}

static rf_status fail(rf_writer *w, rf_error *err, const char *what)
{
    if (w->failed == RF_OK) {
        w->failed = RF_ERR_WRITE;
        int e = errno;
        snprintf(w->failure, sizeof w->failure, "%s: %s at offset %llu: %s%s", w->final_path, what,
                 (unsigned long long)w->offset, strerror(e),
                 e == EFBIG ? " (the file size limit was reached: see ulimit -f)" : "");
    }
    return rf_error_set(err, w->failed, "%s", w->failure);
}

static rf_status flush(rf_writer *w, rf_error *err)
{
    size_t done = 0;
    while (done < w->used) {
        ssize_t n = write(w->fd, w->buf + done, w->used - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(w, err, "write failed");
        }
        done += (size_t)n;
    }
    w->used = 0;
    return RF_OK;
}

/* Starts the write-back of what was written since the last call (no waiting), every
 * WRITEBACK_STEP bytes, so that the fsync of the commit finds little left to do. */
#define WRITEBACK_STEP ((uint64_t)64 << 20)

static void start_writeback(rf_writer *w)
{
    uint64_t done = w->offset - w->used;
    if (done - w->writeback >= WRITEBACK_STEP) {
        sync_file_range(w->fd, (off_t)w->writeback, (off_t)(done - w->writeback),
                        SYNC_FILE_RANGE_WRITE);
        w->writeback = done;
    }
}

/* Writes p[0..n) to the file itself (no copy into the buffer). Runs under the SIGBUS guard. */
static rf_status write_direct(rf_writer *w, const uint8_t *p, size_t n, rf_error *err)
{
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EFAULT) {
                /* the kernel could not read p: a mapped source truncated underneath; touching
                 * the byte raises the SIGBUS the guard turns into "file changed while in use" */
                volatile uint8_t probe = *(const volatile uint8_t *)p;
                (void)probe;
                errno = EFAULT;
            }
            return fail(w, err, "write failed");
        }
        p += k;
        n -= (size_t)k;
    }
    return RF_OK;
}

typedef struct copy_in {
    rf_writer *w;
    const uint8_t *p;
    size_t n;
} copy_in;

/* The caller's bytes into the file: large pieces (tensor data) straight to it, the rest through
 * the buffer. data is often a mapped input file, hence the guard around this function. */
static rf_status copy_bytes(void *ctx, rf_error *err)
{
    copy_in *c = ctx;
    rf_writer *w = c->w;
    w->offset += c->n;
    if (c->n >= WRITER_BUFFER) {
        if (flush(w, err) != RF_OK)
            return RF_ERR_WRITE;
        /* the CRC and the kernel's copy read each block in turn, so the copy finds it in the
         * cache: the caller's bytes come from memory once */
        for (size_t at = 0; at < c->n; at += WRITER_BUFFER) {
            size_t k = c->n - at < WRITER_BUFFER ? c->n - at : WRITER_BUFFER;
            w->crc = libdeflate_crc32(w->crc, c->p + at, k);
            if (write_direct(w, c->p + at, k, err) != RF_OK)
                return RF_ERR_WRITE;
        }
        start_writeback(w);
        return RF_OK;
    }
    w->crc = libdeflate_crc32(w->crc, c->p, c->n);
    while (c->n > 0) {
        size_t room = WRITER_BUFFER - w->used;
        size_t take = c->n < room ? c->n : room;
        memcpy(w->buf + w->used, c->p, take);
        w->used += take;
        c->p += take;
        c->n -= take;
        if (w->used == WRITER_BUFFER) {
            if (flush(w, err) != RF_OK)
                return RF_ERR_WRITE;
            start_writeback(w);
        }
    }
    return RF_OK;
}

rf_status rf_writer_write(rf_writer *w, const void *data, size_t n, rf_error *err)
{
    if (w->failed)
        return rf_error_set(err, w->failed, "%s", w->failure);
    copy_in c = {w, data, n};
    rf_status st = rfi_mapped_guarded(copy_bytes, &c, err);
    if (st != RF_OK && w->failed == RF_OK) {
        /* the source faulted (a truncated mapping): the output is incomplete, fail for good */
        w->failed = st;
        snprintf(w->failure, sizeof w->failure, "%s", err ? err->message : "input read failed");
    }
    return st;
}

rf_status rf_writer_pad(rf_writer *w, uint64_t alignment, rf_error *err)
{
    static const uint8_t zeros[256];
    if (alignment == 0)
        return rf_error_set(err, RF_ERR_ARGUMENT, "alignment must be positive");
    uint64_t pad = (alignment - w->offset % alignment) % alignment;
    while (pad > 0) {
        size_t take = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        if (rf_writer_write(w, zeros, take, err) != RF_OK)
            return RF_ERR_WRITE;
        pad -= take;
    }
    return RF_OK;
}

uint64_t rf_writer_offset(const rf_writer *w) { return w->offset; }
uint32_t rf_writer_crc32(const rf_writer *w) { return w->crc; }
const char *rf_writer_temp_path(const rf_writer *w) { return w->temp_path; }

static void writer_free(rf_writer *w)
{
    rfi_output_temp_forget(w->temp_slot);
    if (w->lock_fd >= 0)
        close(w->lock_fd);
    free(w->buf);
    free(w->final_path);
    free(w->temp_path);
    free(w);
}

void rf_writer_abort(rf_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    unlink(w->temp_path);
    writer_free(w);
}

static void fsync_directory(const char *path)
{
    size_t len = strlen(path);
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, path, len + 1);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(copy);
}

rf_status rf_writer_commit(rf_writer *w, rf_verify_fn verify, void *ctx, rf_error *err)
{
    rf_status st = w->failed ? rf_error_set(err, w->failed, "%s", w->failure) : flush(w, err);
    if (st == RF_OK && fsync(w->fd) != 0)
        st = fail(w, err, "fsync failed");
    if (st == RF_OK) {
        int rc = close(w->fd);
        w->fd = -1;
        if (rc != 0)
            st = fail(w, err, "close failed");
    }
    if (st == RF_OK && verify)
        st = verify(w->temp_path, ctx, err);
    /* checked again: something may have been put at the path since rf_writer_open */
    if (st == RF_OK)
        st = rfi_output_refuse_special(w->final_path, err);
    if (st == RF_OK && rename(w->temp_path, w->final_path) != 0)
        st = fail(w, err, "rename into place failed");
    if (st != RF_OK) {
        rf_writer_abort(w);
        return st;
    }
    fsync_directory(w->final_path);
    writer_free(w);
    return RF_OK;
}
