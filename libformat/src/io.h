/* Private (not installed). Input and output primitives: read-only mapped files with a
 * bounds-checked cursor, an atomic writer (temp file in the target directory, fsync, verify,
 * rename), and CRC-32.
 * Not for: format logic; parsers build on these. */
#ifndef ROSETTA_IO_H
#define ROSETTA_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- mapped input ---------------------------------------------------------------------- */

typedef struct rf_file rf_file;

/* Maps path read-only (an empty file maps to size 0 with a non-NULL data pointer).
 * Returns NULL and fills err (RF_ERR_IO) on failure. Release with rf_file_close. */
rf_file *rf_file_open(const char *path, rf_error *err);

/* Wraps caller-owned memory as a file (for fuzzers and tests); memory must outlive the file. */
rf_file *rf_file_from_memory(const void *data, uint64_t size, const char *name, rf_error *err);

void rf_file_close(rf_file *file);
const uint8_t *rf_file_data(const rf_file *file);
uint64_t rf_file_size(const rf_file *file);
const char *rf_file_path(const rf_file *file);

/* Checks that the file on disk still has the size and modification time it had when mapped
 * (a file that shrinks under a mapping would fault on access). RF_ERR_IO if it changed. */
rf_status rf_file_check_unchanged(const rf_file *file, rf_error *err);

/* ---- bounds-checked cursor ------------------------------------------------------------- */

/* A read position over [base, base+size). Every read checks the bounds first and reports
 * "<name>: unexpected end of data at offset X: need N bytes, M remain". When swap is true
 * multi-byte integers and floats are byte-swapped (big-endian GGUF). */
typedef struct rf_cursor {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;
    const char *name;
    bool swap;
} rf_cursor;

rf_cursor rf_cursor_make(const uint8_t *base, uint64_t size, const char *name);
uint64_t rf_cursor_remaining(const rf_cursor *c);
rf_status rf_cursor_u8(rf_cursor *c, uint8_t *out, rf_error *err);
rf_status rf_cursor_u16(rf_cursor *c, uint16_t *out, rf_error *err);
rf_status rf_cursor_u32(rf_cursor *c, uint32_t *out, rf_error *err);
rf_status rf_cursor_u64(rf_cursor *c, uint64_t *out, rf_error *err);
rf_status rf_cursor_f32(rf_cursor *c, float *out, rf_error *err);
rf_status rf_cursor_f64(rf_cursor *c, double *out, rf_error *err);
/* Returns a pointer to the next n bytes (no copy) and advances. */
rf_status rf_cursor_bytes(rf_cursor *c, uint64_t n, const uint8_t **out, rf_error *err);
rf_status rf_cursor_skip(rf_cursor *c, uint64_t n, rf_error *err);
rf_status rf_cursor_seek(rf_cursor *c, uint64_t pos, rf_error *err);

/* Little-endian loads and stores on unaligned memory. */
uint16_t rf_load_le16(const void *p);
uint32_t rf_load_le32(const void *p);
uint64_t rf_load_le64(const void *p);
void rf_store_le16(void *p, uint16_t v);
void rf_store_le32(void *p, uint32_t v);
void rf_store_le64(void *p, uint64_t v);

/* ---- atomic writer --------------------------------------------------------------------- */

typedef struct rf_writer rf_writer;

/* Verification run on the finished temp file before it is renamed into place. */
typedef rf_status (*rf_verify_fn)(const char *temp_path, void *ctx, rf_error *err);

/* Creates "<path>.tmp-XXXXXX" in the target directory. Nothing appears under path until
 * rf_writer_commit succeeds. Returns NULL and fills err (RF_ERR_WRITE) on failure. */
rf_writer *rf_writer_open(const char *path, rf_error *err);

/* Appends bytes (buffered). Errors are sticky: after one failure, later calls fail too. */
rf_status rf_writer_write(rf_writer *w, const void *data, size_t n, rf_error *err);
/* Appends zero bytes until the offset is a multiple of alignment. */
rf_status rf_writer_pad(rf_writer *w, uint64_t alignment, rf_error *err);
/* Bytes written so far. */
uint64_t rf_writer_offset(const rf_writer *w);
/* CRC-32 (IEEE) of all bytes written so far. */
uint32_t rf_writer_crc32(const rf_writer *w);
const char *rf_writer_temp_path(const rf_writer *w);

/* Flushes, fsyncs, runs verify (if not NULL) on the temp file, renames it to the final path
 * and fsyncs the directory. On any failure the temp file is removed. Always frees w. */
rf_status rf_writer_commit(rf_writer *w, rf_verify_fn verify, void *ctx, rf_error *err);

/* Closes and removes the temp file; frees w. Safe on NULL. */
void rf_writer_abort(rf_writer *w);

/* ---- checksums ------------------------------------------------------------------------- */

/* CRC-32 (IEEE, zlib's crc32): crc = rf_crc32(0, data, n), or continue from a previous value. */
uint32_t rf_crc32(uint32_t crc, const void *data, size_t n);

/* ---- reliability: stale temp files, truncated mappings ----------------------------------- */

/* Removes the "<path>.tmp-XXXXXX" files that writers of path left when they were killed
 * (a live writer holds a flock on its temp file, see rf_writer_open; an unlocked one is
 * stale). Touches nothing else. rf_writer_open calls it first, so the next write of a
 * destination cleans up after a killed one. Returns the number of files removed, or -1 when
 * the directory cannot be read. */
int rf_writer_cleanup_stale(const char *path);

/* Runs fn(ctx, err) so that reading a page of a mapped file past its current end (the file was
 * truncated by another process while mapped: SIGBUS, BUS_ADRERR) stops fn and returns RF_ERR_IO
 * "<file>: file changed while in use: read at offset X failed (SIGBUS): mapped N bytes, the
 * file now has M", naming the file among files[0..n_files) that holds the address (files may
 * be NULL). Any other SIGBUS keeps its previous disposition. Installs a process-wide SIGBUS
 * handler on first use (chaining to the previous one). fn is abandoned at the faulting read:
 * it must not hold locks or memory that only it would release (keep such state in ctx and
 * release it after the call). Guards nest; each thread has its own. */
rf_status rf_mapped_call(const rf_file *const *files, size_t n_files, rf_mapped_fn fn, void *ctx,
                         rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
