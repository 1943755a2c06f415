/* Private: what the mapped-input guard (mapped_guard.c) needs to know about the mappings that
 * io.c made. */
#ifndef ROSETTA_IO_INTERNAL_H
#define ROSETTA_IO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"

/* The one message for an input that is not a regular file (a pipe, FIFO, socket or device),
 * given the path: rf_file_open and rf_detect_path both refuse such inputs. */
#define RF_NOT_REGULAR_MESSAGE                                                                     \
    "%s: not a regular file (a pipe, FIFO, socket or device): Rosetta maps its inputs; save the "  \
    "data to a file first"

/* Finds the live mapping (rf_file_open) that holds addr: copies its path into path, stores the
 * offset of addr in it and its mapped size; false when no mapping holds addr. Takes a lock:
 * never call it from a signal handler. */
bool rfi_io_mapped_lookup(const void *addr, char *path, size_t path_size, uint64_t *offset,
                          uint64_t *mapped_size);

/* rf_mapped_call without a file list (the guard finds the file through rfi_io_mapped_lookup):
 * fn(ctx, err) runs so that a read past the end of a truncated mapping ends it with RF_ERR_IO
 * naming the file. Cheap (no system call): the library's readers of mapped data call it on
 * every call (rf_dequantize, rf_writer_write). */
rf_status rfi_mapped_guarded(rf_mapped_fn fn, void *ctx, rf_error *err);

/* memcmp(a, b, n) == 0 under the guard: RF_OK with *equal set, or RF_ERR_IO when a or b lies in
 * a mapping truncated underneath (the writers' read-back checks compare with the source). */
rf_status rfi_mapped_equal(const void *a, const void *b, size_t n, bool *equal, rf_error *err);

#endif
