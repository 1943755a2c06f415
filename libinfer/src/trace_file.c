/* Trace containers (docs/verifier.md, "Trace container"): a 32-byte fixed header, a JSON
 * header describing the run and every tensor, then the tensors' F32 values, zstd-compressed
 * as one frame (or stored plainly, flag bit 0 clear: tests/interop/hf_trace.py writes them so).
 *
 *   offset  size  field
 *   0       4     magic "RTRC"
 *   4       4     u32 version (1)
 *   8       4     u32 flags: bit 0 = payload is one zstd frame
 *   12      4     u32 header_len: bytes of JSON after the fixed header
 *   16      8     u64 payload_len: bytes stored after the JSON
 *   24      8     u64 raw_len: bytes of the payload once decompressed (= 4 x floats)
 *
 * A zstd payload carries the frame checksum (XXH64), so damage is refused, not decoded.
 *   32      ...   JSON header, then the payload
 *
 * Not for: running models (capture.c). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zstd.h>

#include "capture_internal.h"

#define TRACE_MAGIC      "RTRC"
#define TRACE_VERSION    1u
#define TRACE_FLAG_ZSTD  1u
#define TRACE_FIXED      32u
#define TRACE_MAX_HEADER (64u << 20)
#define TRACE_MAX_RAW    (UINT64_C(64) << 30)
#define TRACE_MAX_LAYERS 4096u
#define TRACE_MAX_TOKENS (1u << 20)

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* ---- writing ------------------------------------------------------------------------------- */

static cJSON *id_array(const int32_t *ids, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    return a;
}

/* Writes data to a temp file beside path, syncs it and renames it into place. */
static rf_status write_atomic(const char *path, const void *const *parts, const size_t *sizes,
                              size_t n_parts, rf_error *err)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    snprintf(tmp, len + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rf_status st = rf_error_set(err, RF_ERR_WRITE, "%s: cannot create a temp file: %s", path,
                                    strerror(errno));
        free(tmp);
        return st;
    }
    for (size_t i = 0; i < n_parts; i++) {
        const uint8_t *p = parts[i];
        size_t left = sizes[i];
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rf_status st = rf_error_set(err, RF_ERR_WRITE, "%s: write failed: %s", path,
                                            strerror(w < 0 ? errno : EIO));
                close(fd);
                unlink(tmp);
                free(tmp);
                return st;
            }
            p += w;
            left -= (size_t)w;
        }
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        rf_status st =
            rf_error_set(err, RF_ERR_WRITE, "%s: sync failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    if (rename(tmp, path) != 0) {
        rf_status st =
            rf_error_set(err, RF_ERR_WRITE, "%s: rename failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    char *dir_buf = strdup(path);
    if (dir_buf) {
        int dfd = open(dirname(dir_buf), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        free(dir_buf);
    }
    return RF_OK;
}

rf_status ri_capture_write(const ri_capture *c, const char *path, rf_error *err)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(root, "format", "rosetta-trace");
    cJSON_AddNumberToObject(root, "version", TRACE_VERSION);
    cJSON_AddStringToObject(root, "engine", ri_capture_engine(c));
    cJSON_AddStringToObject(root, "label", ri_capture_label(c));
    if (c->prompt)
        cJSON_AddStringToObject(root, "prompt", c->prompt);
    cJSON_AddStringToObject(root, "level", ri_level_name(c->level));
    cJSON_AddStringToObject(root, "dtypes", ri_capture_dtypes(c));
    cJSON_AddStringToObject(root, "dtype_sig", c->dtype_sig ? c->dtype_sig : "");
    cJSON_AddStringToObject(root, "activations", c->rounded_activations ? "rounded" : "f32");
    cJSON *info = cJSON_AddObjectToObject(root, "info");
    cJSON_AddNumberToObject(info, "n_vocab", c->info.n_vocab);
    cJSON_AddNumberToObject(info, "n_embd", c->info.n_embd);
    cJSON_AddNumberToObject(info, "n_layers", c->info.n_layers);
    cJSON_AddNumberToObject(info, "n_heads", c->info.n_heads);
    cJSON_AddNumberToObject(info, "n_kv_heads", c->info.n_kv_heads);
    cJSON_AddNumberToObject(info, "head_dim", c->info.head_dim);
    cJSON_AddNumberToObject(info, "n_ff", c->info.n_ff);
    cJSON_AddItemToObject(root, "tokens", id_array(c->tokens, c->n_tokens));
    cJSON_AddItemToObject(root, "greedy", id_array(c->greedy, c->n_greedy));
    cJSON *list = cJSON_AddArrayToObject(root, "tensors");
    uint64_t offset = 0;
    size_t n_slots = (size_t)RI_STAGE_COUNT * (c->info.n_layers + 1);
    for (int s = 0; s < RI_STAGE_COUNT; s++) {
        int32_t first = rcap_stage_global((ri_stage)s) ? -1 : 0;
        int32_t last = rcap_stage_global((ri_stage)s) ? -1 : (int32_t)c->info.n_layers - 1;
        for (int32_t l = first; l <= last; l++) {
            long i = rcap_slot(c, (ri_stage)s, l);
            if (i < 0 || (size_t)i >= n_slots || !c->slots[i].data)
                continue;
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "stage", ri_stage_name((ri_stage)s));
            cJSON_AddNumberToObject(t, "layer", l);
            cJSON_AddNumberToObject(t, "rows", c->slots[i].rows);
            cJSON_AddNumberToObject(t, "cols", c->slots[i].cols);
            cJSON_AddNumberToObject(t, "offset", (double)offset);
            if (c->weights[i])
                cJSON_AddStringToObject(t, "weights", c->weights[i]);
            cJSON_AddItemToArray(list, t);
            offset += (uint64_t)c->slots[i].rows * c->slots[i].cols;
        }
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    uint64_t raw_len = offset * 4;
    uint8_t *raw = malloc(raw_len ? raw_len : 1);
    size_t bound = ZSTD_compressBound(raw_len);
    uint8_t *packed = malloc(bound ? bound : 1);
    if (!raw || !packed) {
        free(json);
        free(raw);
        free(packed);
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory for a %" PRIu64 "-byte trace",
                            raw_len);
    }
    uint64_t at = 0;
    for (int s = 0; s < RI_STAGE_COUNT; s++) {
        int32_t first = rcap_stage_global((ri_stage)s) ? -1 : 0;
        int32_t last = rcap_stage_global((ri_stage)s) ? -1 : (int32_t)c->info.n_layers - 1;
        for (int32_t l = first; l <= last; l++) {
            long i = rcap_slot(c, (ri_stage)s, l);
            if (i < 0 || !c->slots[i].data)
                continue;
            size_t n = (size_t)c->slots[i].rows * c->slots[i].cols;
            for (size_t k = 0; k < n; k++) {
                uint32_t bits;
                memcpy(&bits, &c->slots[i].data[k], 4);
                put_le32(raw + at, bits);
                at += 4;
            }
        }
    }
    /* with the frame checksum, so that a damaged payload is refused, not decoded to junk */
    size_t packed_len = (size_t)-1;
    ZSTD_CCtx *zc = ZSTD_createCCtx();
    if (zc && !ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, 3)) &&
        !ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_checksumFlag, 1)))
        packed_len = ZSTD_compress2(zc, packed, bound, raw, raw_len);
    ZSTD_freeCCtx(zc);
    free(raw);
    if (ZSTD_isError(packed_len)) {
        free(json);
        free(packed);
        return rf_error_set(err, RF_ERR_WRITE, "%s: zstd: %s", path, ZSTD_getErrorName(packed_len));
    }
    uint8_t fixed[TRACE_FIXED];
    memcpy(fixed, TRACE_MAGIC, 4);
    put_le32(fixed + 4, TRACE_VERSION);
    put_le32(fixed + 8, TRACE_FLAG_ZSTD);
    put_le32(fixed + 12, (uint32_t)strlen(json));
    put_le64(fixed + 16, packed_len);
    put_le64(fixed + 24, raw_len);
    const void *parts[3] = {fixed, json, packed};
    size_t sizes[3] = {TRACE_FIXED, strlen(json), packed_len};
    rf_status st = write_atomic(path, parts, sizes, 3, err);
    free(json);
    free(packed);
    return st;
}

rf_status ri_write_file_atomic(const char *path, const void *data, size_t len, rf_error *err)
{
    const void *parts[1] = {data};
    size_t sizes[1] = {len};
    if (!path || (!data && len))
        return rf_error_set(err, RF_ERR_ARGUMENT, "no path or no data");
    return write_atomic(path, parts, sizes, 1, err);
}

/* ---- reading ------------------------------------------------------------------------------- */

static rf_status json_u32(const cJSON *obj, const char *key, uint32_t max, uint32_t *out,
                          const char *path, rf_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > max ||
        v->valuedouble != floor(v->valuedouble))
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: header: '%s' missing or not an integer in 0..%u", path, key, max);
    *out = (uint32_t)v->valuedouble;
    return RF_OK;
}

static rf_status json_ids(const cJSON *root, const char *key, int32_t **out, size_t *n,
                          uint32_t n_vocab, const char *path, rf_error *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!a) {
        *n = 0;
        return RF_OK;
    }
    if (!cJSON_IsArray(a))
        return rf_error_set(err, RF_ERR_FORMAT, "%s: header: '%s' is not an array", path, key);
    size_t count = (size_t)cJSON_GetArraySize(a);
    if (count > TRACE_MAX_TOKENS)
        return rf_error_set(err, RF_ERR_FORMAT, "%s: header: '%s' has %zu ids (limit %u)", path,
                            key, count, TRACE_MAX_TOKENS);
    int32_t *ids = calloc(count ? count : 1, sizeof *ids);
    if (!ids)
        return rf_error_set(err, RF_ERR_NOMEM, "out of memory");
    size_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, a)
    {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= n_vocab ||
            v->valuedouble != floor(v->valuedouble)) {
            free(ids);
            return rf_error_set(err, RF_ERR_FORMAT,
                                "%s: header: %s[%zu] is not a token id below %u", path, key, i,
                                n_vocab);
        }
        ids[i++] = (int32_t)v->valuedouble;
    }
    free(*out);
    *out = ids;
    *n = count;
    return RF_OK;
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static rf_status read_whole(const char *path, uint8_t **data, size_t *size, rf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rf_error_set(err, RF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return rf_error_set(err, RF_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory for %zu bytes", path, n);
    }
    if (fread(buf, 1, n, f) != n) {
        fclose(f);
        free(buf);
        return rf_error_set(err, RF_ERR_IO, "%s: read failed", path);
    }
    fclose(f);
    *data = buf;
    *size = n;
    return RF_OK;
}

static ri_capture *parse(const char *path, const uint8_t *file, size_t size, rf_error *err)
{
    if (size < TRACE_FIXED || memcmp(file, TRACE_MAGIC, 4) != 0) {
        rf_error_set(err, RF_ERR_FORMAT,
                     "%s: not a trace container (magic \"RTRC\" expected at "
                     "offset 0)",
                     path);
        return NULL;
    }
    uint32_t version = get_le32(file + 4), flags = get_le32(file + 8);
    uint32_t header_len = get_le32(file + 12);
    uint64_t payload_len = get_le64(file + 16), raw_len = get_le64(file + 24);
    if (version != TRACE_VERSION) {
        rf_error_set(err, RF_ERR_UNSUPPORTED, "%s: trace version %u (offset 4), expected %u", path,
                     version, TRACE_VERSION);
        return NULL;
    }
    if (flags & ~TRACE_FLAG_ZSTD) {
        rf_error_set(err, RF_ERR_FORMAT, "%s: unknown flags 0x%x (offset 8)", path, flags);
        return NULL;
    }
    if (header_len > TRACE_MAX_HEADER || header_len > size - TRACE_FIXED ||
        payload_len != size - TRACE_FIXED - header_len) {
        rf_error_set(err, RF_ERR_FORMAT,
                     "%s: header length %u + payload length %" PRIu64 " (offsets 12, 16) do not "
                     "match the file size %zu",
                     path, header_len, payload_len, size);
        return NULL;
    }
    if (raw_len % 4 != 0 || raw_len > TRACE_MAX_RAW ||
        (!(flags & TRACE_FLAG_ZSTD) && raw_len != payload_len)) {
        rf_error_set(err, RF_ERR_FORMAT, "%s: raw length %" PRIu64 " (offset 24) is not valid",
                     path, raw_len);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength((const char *)file + TRACE_FIXED, header_len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        rf_error_set(err, RF_ERR_FORMAT, "%s: the JSON header (offset 32) does not parse", path);
        return NULL;
    }
    ri_capture *c = NULL;
    float *raw = NULL;
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(root, "info");
    ri_model_info I = {0};
    if (!cJSON_IsObject(info) ||
        json_u32(info, "n_vocab", 1u << 24, &I.n_vocab, path, err) != RF_OK ||
        json_u32(info, "n_embd", 1u << 20, &I.n_embd, path, err) != RF_OK ||
        json_u32(info, "n_layers", TRACE_MAX_LAYERS, &I.n_layers, path, err) != RF_OK ||
        json_u32(info, "n_heads", 1u << 16, &I.n_heads, path, err) != RF_OK ||
        json_u32(info, "n_kv_heads", 1u << 16, &I.n_kv_heads, path, err) != RF_OK ||
        json_u32(info, "head_dim", 1u << 16, &I.head_dim, path, err) != RF_OK ||
        json_u32(info, "n_ff", 1u << 24, &I.n_ff, path, err) != RF_OK) {
        if (!cJSON_IsObject(info))
            rf_error_set(err, RF_ERR_FORMAT, "%s: header: no 'info' object", path);
        goto fail;
    }
    if (I.n_vocab == 0 || (I.n_kv_heads && I.n_heads % I.n_kv_heads)) {
        rf_error_set(err, RF_ERR_FORMAT, "%s: header: inconsistent 'info'", path);
        goto fail;
    }
    if (!(c = rcap_new(&I, 0))) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (json_ids(root, "tokens", &c->tokens, &c->n_tokens, I.n_vocab, path, err) != RF_OK ||
        json_ids(root, "greedy", &c->greedy, &c->n_greedy, I.n_vocab, path, err) != RF_OK)
        goto fail;
    const char *engine = json_str(root, "engine"), *level = json_str(root, "level");
    const char *dtypes = json_str(root, "dtypes"), *sig = json_str(root, "dtype_sig");
    const char *act = json_str(root, "activations");
    c->engine = strdup(engine ? engine : "unknown");
    c->label = strdup(path);
    c->dtypes = strdup(dtypes ? dtypes : "");
    const char *prompt = json_str(root, "prompt");
    if (prompt && !(c->prompt = strdup(prompt))) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    c->dtype_sig = sig && *sig ? strdup(sig) : NULL;
    c->rounded_activations = act && strcmp(act, "rounded") == 0;
    c->level = RI_LEVEL_Q3;
    for (int lv = 0; level && lv < RI_LEVEL_COUNT; lv++)
        if (strcmp(level, ri_level_name((ri_level)lv)) == 0)
            c->level = (ri_level)lv;
    if (!c->engine || !c->label || !c->dtypes) {
        rf_error_set(err, RF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    raw = malloc(raw_len ? raw_len : 1);
    if (!raw) {
        rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory for %" PRIu64 " bytes", path, raw_len);
        goto fail;
    }
    const uint8_t *payload = file + TRACE_FIXED + header_len;
    if (flags & TRACE_FLAG_ZSTD) {
        unsigned long long frame = ZSTD_getFrameContentSize(payload, payload_len);
        if (frame != raw_len) {
            rf_error_set(
                err, RF_ERR_FORMAT,
                "%s: the zstd frame (offset %u) holds %llu bytes, the header says %" PRIu64, path,
                TRACE_FIXED + header_len, frame, raw_len);
            goto fail;
        }
        size_t got = ZSTD_decompress(raw, raw_len, payload, payload_len);
        if (ZSTD_isError(got) || got != raw_len) {
            rf_error_set(err, RF_ERR_FORMAT, "%s: the zstd frame (offset %u) is damaged: %s", path,
                         TRACE_FIXED + header_len,
                         ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
            goto fail;
        }
    } else {
        memcpy(raw, payload, raw_len);
    }
    uint64_t n_floats = raw_len / 4;
    for (uint64_t i = 0; i < n_floats; i++) {
        uint32_t bits = get_le32((const uint8_t *)raw + 4 * i);
        memcpy(&raw[i], &bits, 4);
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    if (!cJSON_IsArray(list)) {
        rf_error_set(err, RF_ERR_FORMAT, "%s: header: no 'tensors' array", path);
        goto fail;
    }
    size_t idx = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, list)
    {
        const char *name = json_str(t, "stage");
        ri_stage stage;
        const cJSON *lj = cJSON_GetObjectItemCaseSensitive(t, "layer");
        const cJSON *oj = cJSON_GetObjectItemCaseSensitive(t, "offset");
        uint32_t rows = 0, cols = 0;
        if (!name || !ri_stage_from_name(name, &stage) || !cJSON_IsNumber(lj) ||
            !cJSON_IsNumber(oj) || json_u32(t, "rows", TRACE_MAX_TOKENS, &rows, path, err) ||
            json_u32(t, "cols", 1u << 24, &cols, path, err)) {
            rf_error_set(err, RF_ERR_FORMAT,
                         "%s: header: tensors[%zu] lacks a known stage, "
                         "layer, rows, cols or offset",
                         path, idx);
            goto fail;
        }
        double off = oj->valuedouble;
        if (off < 0 || off != floor(off) || off > (double)n_floats ||
            (uint64_t)rows * cols > n_floats - (uint64_t)off) {
            rf_error_set(err, RF_ERR_FORMAT,
                         "%s: header: tensors[%zu] (%s) at offset %.0f with %u x %u values "
                         "overruns the %" PRIu64 " values of the payload",
                         path, idx, name, off, rows, cols, n_floats);
            goto fail;
        }
        int32_t layer = (int32_t)lj->valuedouble;
        if (lj->valuedouble != layer || rcap_slot(c, stage, layer) < 0) {
            rf_error_set(err, RF_ERR_FORMAT,
                         "%s: header: tensors[%zu] (%s) has layer %g, not "
                         "one of this model",
                         path, idx, name, lj->valuedouble);
            goto fail;
        }
        if (ri_capture_stage(c, stage, layer, NULL, NULL)) {
            rf_error_set(err, RF_ERR_FORMAT, "%s: header: tensors[%zu]: %s of layer %d twice", path,
                         idx, name, layer);
            goto fail;
        }
        if (c->n_tokens && rows != c->n_tokens) {
            rf_error_set(err, RF_ERR_FORMAT,
                         "%s: header: tensors[%zu] (%s) has %u rows for %zu "
                         "prompt tokens",
                         path, idx, name, rows, c->n_tokens);
            goto fail;
        }
        float *dst = rcap_alloc_slot(c, stage, layer, rows, cols);
        if (!dst) {
            rf_error_set(err, RF_ERR_NOMEM, "out of memory");
            goto fail;
        }
        memcpy(dst, raw + (uint64_t)off, (size_t)rows * cols * sizeof(float));
        const char *weights = json_str(t, "weights");
        if (weights && rcap_set_weights(c, stage, layer, weights, err) != RF_OK)
            goto fail;
        idx++;
    }
    free(raw);
    cJSON_Delete(root);
    return c;
fail:
    free(raw);
    cJSON_Delete(root);
    ri_capture_free(c);
    return NULL;
}

ri_capture *ri_capture_read(const char *path, rf_error *err)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (!path) {
        rf_error_set(err, RF_ERR_ARGUMENT, "no path");
        return NULL;
    }
    if (read_whole(path, &data, &size, err) != RF_OK)
        return NULL;
    ri_capture *c = parse(path, data, size, err);
    free(data);
    return c;
}
