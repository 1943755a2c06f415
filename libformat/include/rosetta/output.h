/* Where outputs may go, and what is left behind when a write is interrupted: the checks a writing
 * program makes on an output path before any work (never replace a device, a FIFO, a directory
 * or the input's own files), and the removal of unfinished temp files when SIGINT, SIGTERM or
 * SIGHUP ends the process. The atomic writer (every format writer, rf_convert) applies both
 * itself; tools call them early to fail before the work. docs/reliability.md lists the cases.
 * Not for: writing (the format writers, rosetta/convert.h). */
#ifndef ROSETTA_OUTPUT_H
#define ROSETTA_OUTPUT_H

#include <stdbool.h>

#include "rosetta/api.h"
#include "rosetta/model.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an output path will hold. */
typedef enum rf_output_kind {
    RF_OUTPUT_FILE,      /* one file (GGUF, APR, a single .safetensors) */
    RF_OUTPUT_DIRECTORY, /* a directory of files (a Hugging Face checkpoint) */
} rf_output_kind;

typedef struct rf_output_check_options {
    rf_output_kind kind;
    /* The model the output is made from (NULL: none): the output may not replace one of its
     * files (weights, shards, the index and the companion JSON files beside SafeTensors
     * weights), unless replace_input is set. Replacing is then safe: the new file is renamed
     * over the old one only when it is complete, and the old one stays mapped until then. */
    const rf_model *input;
    bool replace_input;
} rf_output_check_options;

/* Checks that path can receive an output before any work is done:
 * - RF_ERR_ARGUMENT: something other than a regular file is at path (a directory, character or
 *   block device, FIFO or socket, also behind a symbolic link; for RF_OUTPUT_DIRECTORY,
 *   anything but a directory), a trailing '/' on a file output, or path is one of the input's
 *   files (or, for a directory, the directory holding the input's SafeTensors files) and
 *   replace_input is false;
 * - RF_ERR_WRITE: the directory the output goes into does not exist or is not writable.
 * The message starts with path as given ("out.gguf: is a directory: ..."). opts NULL: a file
 * output with no input. RF_OK when the write may go ahead. */
RF_API rf_status rf_output_check(const char *path, const rf_output_check_options *opts,
                                 rf_error *err);

/* Makes SIGINT, SIGTERM and SIGHUP remove the temp files of every unfinished atomic write before
 * they end the process as they would have (exit status 130, 143, 129). Only signals whose action
 * is the default are taken over: an ignored signal stays ignored and a program's own handler
 * stays in place (it can call rf_output_remove_temps). The atomic writer calls this on first
 * use; tools call it at start-up. Idempotent and thread-safe; RF_ERR_IO if sigaction failed. */
RF_API rf_status rf_output_cleanup_on_signals(void);

/* Removes the temp files of every unfinished atomic write of this process. Async-signal-safe
 * (only unlink of paths prepared in advance): for a program's own signal handler. */
RF_API void rf_output_remove_temps(void);

#ifdef __cplusplus
}
#endif
#endif
