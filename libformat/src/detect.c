/* Format detection by magic bytes (docs/formats/gguf.md, docs/formats/safetensors.md,
 * docs/formats/apr.md). */
#include "rosetta/detect.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "io_internal.h"

const char *rf_format_name(rf_format format)
{
    switch (format) {
    case RF_FORMAT_UNKNOWN: return "unknown";
    case RF_FORMAT_GGUF: return "gguf";
    case RF_FORMAT_SAFETENSORS: return "safetensors";
    case RF_FORMAT_SAFETENSORS_INDEX: return "safetensors-index";
    case RF_FORMAT_SAFETENSORS_DIR: return "safetensors-dir";
    case RF_FORMAT_APR: return "apr";
    case RF_FORMAT_APR2_MAGIC: return "apr2-magic";
    case RF_FORMAT_APR_V1: return "apr-v1";
    case RF_FORMAT_APR1: return "apr1";
    case RF_FORMAT_APRT: return "aprt";
    case RF_FORMAT_APR_TSP: return "apr-tsp";
    }
    return "unknown";
}

bool rf_format_is_apr(rf_format format)
{
    return format == RF_FORMAT_APR || format == RF_FORMAT_APR2_MAGIC;
}

const char *rf_format_version_text(rf_format format, uint32_t v, char *buf, size_t size)
{
    switch (format) {
    case RF_FORMAT_APR:
    case RF_FORMAT_APR2_MAGIC: snprintf(buf, size, "%u.%u", v / 100, v % 100); return buf;
    case RF_FORMAT_GGUF: snprintf(buf, size, "%u", v); return buf;
    case RF_FORMAT_SAFETENSORS:
    case RF_FORMAT_SAFETENSORS_INDEX:
    case RF_FORMAT_SAFETENSORS_DIR:
    case RF_FORMAT_APR_V1:
    case RF_FORMAT_APR1:
    case RF_FORMAT_APRT:
    case RF_FORMAT_APR_TSP:
    case RF_FORMAT_UNKNOWN: break;
    }
    if (v == 0)
        return NULL;
    snprintf(buf, size, "%u", v);
    return buf;
}

const char *rf_format_description(rf_format format)
{
    switch (format) {
    case RF_FORMAT_UNKNOWN: return "unknown format";
    case RF_FORMAT_GGUF: return "GGUF";
    case RF_FORMAT_SAFETENSORS: return "SafeTensors";
    case RF_FORMAT_SAFETENSORS_INDEX: return "SafeTensors shard index";
    case RF_FORMAT_SAFETENSORS_DIR: return "SafeTensors checkpoint directory";
    case RF_FORMAT_APR: return "APR v2";
    case RF_FORMAT_APR2_MAGIC: return "APR v2 (old APR2 magic)";
    case RF_FORMAT_APR_V1: return "APR v1 (APRN)";
    case RF_FORMAT_APR1: return "APR1 (identify only)";
    case RF_FORMAT_APRT: return "APRT legacy transformer (identify only)";
    case RF_FORMAT_APR_TSP: return "aprender-tsp model (not APR v2)";
    }
    return "unknown format";
}

static int is_json_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

rf_format rf_detect_bytes(const uint8_t *d, size_t len, uint64_t file_size)
{
    if (len >= 4 && memcmp(d, "GGUF", 4) == 0)
        return RF_FORMAT_GGUF;
    if (len >= 4 && memcmp(d, "APR", 3) == 0) {
        switch (d[3]) {
        case 0:
            /* aprender-tsp files have 01 00 00 00 at bytes 4..7; APR v2 has major version 2 */
            if (len >= 8 && d[4] == 1 && d[5] == 0 && d[6] == 0 && d[7] == 0)
                return RF_FORMAT_APR_TSP;
            return RF_FORMAT_APR;
        case '2': return RF_FORMAT_APR2_MAGIC;
        case 'N': return RF_FORMAT_APR_V1;
        case '1': return RF_FORMAT_APR1;
        case 'T': return RF_FORMAT_APRT;
        default: break;
        }
    }
    /* A shard index is a JSON object whose text mentions "weight_map" near the start. */
    size_t i = 0;
    while (i < len && is_json_space(d[i]))
        i++;
    if (i < len && d[i] == '{') {
        static const char key[] = "\"weight_map\"";
        for (size_t j = i; j + sizeof key - 1 <= len; j++)
            if (memcmp(d + j, key, sizeof key - 1) == 0)
                return RF_FORMAT_SAFETENSORS_INDEX;
    }
    if (len >= 9) {
        /* SafeTensors: u64 header length, then the JSON header. A '{' at byte 8 is enough to
         * hand the file to the SafeTensors reader, which then reports a bad header length
         * precisely; with a plausible length, other JSON starts are accepted too, so that a
         * header that is not an object gets the reader's message rather than "unknown". */
        uint64_t n = rf_load_le64(d);
        bool plausible = file_size >= 8 && n >= 2 && n <= file_size - 8;
        if (d[8] == '{' || (plausible && (d[8] == '[' || d[8] == '"' || is_json_space(d[8]))))
            return RF_FORMAT_SAFETENSORS;
    }
    return RF_FORMAT_UNKNOWN;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

rf_status rf_detect_path(const char *path, rf_format *out, rf_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return rf_error_set(err, RF_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        if (!dir)
            return rf_error_set(err, RF_ERR_IO, "%s: cannot open directory: %s", path,
                                strerror(errno));
        rf_format f = RF_FORMAT_UNKNOWN;
        struct dirent *e;
        while ((e = readdir(dir)) != NULL)
            if (has_suffix(e->d_name, ".safetensors") ||
                strcmp(e->d_name, "model.safetensors.index.json") == 0)
                f = RF_FORMAT_SAFETENSORS_DIR;
        closedir(dir);
        *out = f;
        return RF_OK;
    }
    /* Pipes, FIFOs, sockets and devices are refused, as rf_file_open refuses them: their first
     * bytes may not have arrived yet (a non-blocking read gives EAGAIN, a blocking one may never
     * return), and no reader could map them anyway. One behaviour for every tool. */
    if (!S_ISREG(st.st_mode))
        return rf_error_set(err, RF_ERR_IO, RF_NOT_REGULAR_MESSAGE, path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0)
        return rf_error_set(err, RF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t head[4096];
    ssize_t n;
    do
        n = read(fd, head, sizeof head);
    while (n < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (n < 0)
        return rf_error_set(err, RF_ERR_IO, "%s: cannot read: %s", path, strerror(saved));
    *out = rf_detect_bytes(head, (size_t)n, (uint64_t)st.st_size);
    return RF_OK;
}
