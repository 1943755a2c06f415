/* Status codes and error messages (see rosetta/status.h). */
#include "rosetta/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *rf_strerror(rf_status status)
{
    switch (status) {
    case RF_OK: return "ok";
    case RF_ERR_ARGUMENT: return "invalid argument";
    case RF_ERR_IO: return "input/output error";
    case RF_ERR_WRITE: return "write error";
    case RF_ERR_FORMAT: return "malformed input";
    case RF_ERR_CHECKSUM: return "checksum mismatch";
    case RF_ERR_UNSUPPORTED: return "unsupported feature";
    case RF_ERR_NOMEM: return "out of memory";
    case RF_ERR_OVERFLOW: return "integer overflow";
    case RF_ERR_LIMIT: return "resource limit exceeded";
    case RF_ERR_NOT_FOUND: return "not found";
    case RF_ERR_CONTRACT: return "contract violation";
    case RF_ERR_MISMATCH: return "check failed";
    }
    return "unknown status";
}

rf_status rf_error_set(rf_error *err, rf_status status, const char *fmt, ...)
{
    if (err) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

void rf_error_prefix(rf_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->message];
    memcpy(old, err->message, sizeof old);
    int room = (int)(sizeof err->message) - 3;
    snprintf(err->message, sizeof err->message, "%.*s: %.*s", room / 2, prefix, room - room / 2,
             old);
}

void rf_error_clear(rf_error *err)
{
    if (err) {
        err->status = RF_OK;
        err->message[0] = '\0';
    }
}
