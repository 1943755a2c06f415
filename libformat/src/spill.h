/* Private: the spill file of rf_convert. Converted tensor data is appended to an unlinked
 * temporary file next to the output (so memory holds one tensor at a time, and nothing is left
 * behind whatever happens), then mapped read-only for the writer. */
#ifndef ROSETTA_SPILL_H
#define ROSETTA_SPILL_H

#include <stdbool.h>
#include <stdint.h>

#include "rosetta/status.h"

typedef struct spill spill;

/* A spill file in the directory of near_path (or $TMPDIR, else /tmp, when near_path is NULL).
 * NULL with err set (RF_ERR_WRITE naming the directory) on failure. */
spill *rfi_spill_open(const char *near_path, rf_error *err);

/* Appends n bytes at the next 64-byte aligned offset (so that mapped data is aligned for every
 * element type) and returns that offset. RF_ERR_WRITE on failure (e.g. no space). */
rf_status rfi_spill_append(spill *s, const void *data, uint64_t n, uint64_t *offset, rf_error *err);

/* rfi_spill_append in pieces: rfi_spill_start aligns the end to 64 bytes and returns that
 * offset, each rfi_spill_write then appends right after what came before. */
rf_status rfi_spill_start(spill *s, uint64_t *offset, rf_error *err);
rf_status rfi_spill_write(spill *s, const void *data, uint64_t n, rf_error *err);

/* Maps everything appended so far; rfi_spill_data is valid until rfi_spill_close. */
rf_status rfi_spill_map(spill *s, rf_error *err);
const uint8_t *rfi_spill_data(const spill *s);

/* Whether [p, p + n) lies inside the mapping of rfi_spill_map. */
bool rfi_spill_holds(const spill *s, const void *p, uint64_t n);

/* Unmaps and closes; safe on NULL. */
void rfi_spill_close(spill *s);

#endif
