/* Private: dropping pages of read-only file mappings from the process once their bytes have
 * been used (MADV_DONTNEED; the page cache keeps them), so that a pass over a whole model keeps
 * resident memory bounded by what is in use rather than by the model's size. Never on memory
 * that is not a file mapping: MADV_DONTNEED would zero anonymous memory. */
#ifndef ROSETTA_PAGES_H
#define ROSETTA_PAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "io.h"

/* Drops the whole pages inside [p, p + n), which must lie in a read-only file mapping the caller
 * owns (partial pages at either end are kept). */
void rfi_pages_release(const void *p, uint64_t n);

/* rfi_pages_release when f is a mapped file and [p, p + n) lies inside its mapping; true when it
 * did (false for files read into memory or ranges outside f). */
bool rfi_file_release_range(const rf_file *f, const void *p, uint64_t n);

#endif
