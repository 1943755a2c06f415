/* Shared harness of the libFuzzer targets: inputs as files (memfd or a private temp directory),
 * a walk that touches everything a model view exposes, and checks of the view's invariants.
 * Not for: format logic; each fuzz_<target>.c says what its input is. */
#ifndef ROSETTA_FUZZ_COMMON_H
#define ROSETTA_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "model_internal.h"
#include "rosetta/model.h"

/* libFuzzer entry points (also driven by replay_main.c outside fuzz builds). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes data into this process's memfd and returns a path that opens it
 * ("/proc/self/fd/N"); valid until the next call. Aborts if the memfd cannot be written
 * (an environment problem, not a finding). */
const char *fz_memfd_path(const uint8_t *data, size_t size);

/* A private directory (created on first use, removed at exit). fz_dir_file writes name inside
 * it and returns the full path (valid until the next fz_dir_* call); fz_dir_clear empties it. */
const char *fz_dir(void);
const char *fz_dir_file(const char *name, const uint8_t *data, size_t size);
void fz_dir_clear(void);

/* Splits data at occurrences of FZ_SEPARATOR into at most max_parts parts; returns the count
 * (>= 1). Multi-file targets use it so that one input holds several files. */
#define FZ_SEPARATOR "\n--8<--\n"
typedef struct fz_part {
    const uint8_t *data;
    size_t size;
} fz_part;
size_t fz_split(const uint8_t *data, size_t size, fz_part *parts, size_t max_parts);

/* Touches every tensor byte, every kv (deeply), the config, the tokenizer and the warnings of
 * model, and traps (a finding) when an invariant of the model view is broken: a tensor span
 * outside its source file, ndim out of range, a NULL name, an index/find mismatch. */
void fz_walk_model(const rf_model *model);

/* Opens path with rf_model_open strictly and leniently, walks each model that opens, checks
 * that a failed open set an error message, and frees everything. */
void fz_open_and_walk(const char *path);

/* Same through a format's own reader (bypassing detection). */
typedef rf_model *(*fz_opener)(const char *path, const rf_open_options *opts, rf_error *err);
void fz_open_and_walk_with(fz_opener open, const char *path);

/* Same through a reader's in-memory entry point (data is the fuzzer's exact-size buffer). */
typedef rf_model *(*fz_memory_opener)(const void *data, uint64_t size, const char *name,
                                      const rf_open_options *opts, rf_error *err);
void fz_open_memory_and_walk(fz_memory_opener open, const uint8_t *data, size_t size);

/* Fuzz executables are linked with -Wl,--wrap=rf_file_open,--wrap=rf_file_close: every file
 * the library opens is read into an exact-size heap buffer instead of being mapped, so that
 * AddressSanitizer reports a read even one byte past the end of any input file (a mapping
 * would hide it up to the end of the page). */

#endif
