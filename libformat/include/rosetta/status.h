/* Error model of librosetta-format: status codes plus a per-call message that names the file,
 * the offset or tensor, and what was expected versus found.
 * Not for: printing or exiting; callers decide what to do with an error. */
#ifndef ROSETTA_STATUS_H
#define ROSETTA_STATUS_H

#include <stddef.h>

#include "rosetta/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rf_status {
    RF_OK = 0,
    RF_ERR_ARGUMENT,    /* caller passed an invalid argument */
    RF_ERR_IO,          /* open/read/stat/mmap of an input failed */
    RF_ERR_WRITE,       /* writing, syncing or renaming an output failed */
    RF_ERR_FORMAT,      /* input is malformed: bad magic, out-of-bounds offset, bad JSON ... */
    RF_ERR_CHECKSUM,    /* a stored checksum does not match */
    RF_ERR_UNSUPPORTED, /* valid input using a feature Rosetta does not handle */
    RF_ERR_NOMEM,       /* allocation failed */
    RF_ERR_OVERFLOW,    /* an integer computation from file values would overflow */
    RF_ERR_LIMIT,       /* a resource limit (header size, tensor count ...) was exceeded */
    RF_ERR_NOT_FOUND,   /* a named tensor, key or file does not exist */
    RF_ERR_CONTRACT,    /* a layout or quality contract is violated */
    RF_ERR_MISMATCH,    /* a check found a difference (a written tensor differs from its source) */
} rf_status;

/* Detailed error: the status and a human-readable message with context.
 * Every function taking an rf_error* fills it on failure (it may be NULL). */
typedef struct rf_error {
    rf_status status;
    char message[1024];
} rf_error;

/* Short, static description of a status ("malformed input", ...). Never NULL. */
RF_API const char *rf_strerror(rf_status status);

/* Records status and a printf-style message in err (if not NULL); returns status so that
 * callers can write `return rf_error_set(err, RF_ERR_FORMAT, "...")`. */
RF_API rf_status rf_error_set(rf_error *err, rf_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with "prefix: " (used to add the file name as an error
 * travels up). Does nothing when err is NULL. */
RF_API void rf_error_prefix(rf_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Resets err to RF_OK with an empty message. */
RF_API void rf_error_clear(rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
