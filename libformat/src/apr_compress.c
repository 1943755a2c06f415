/* Realizar-style compressed APR files (docs/formats/apr.md): everything after the 64-byte
 * header is one size-prefixed LZ4 block (lz4_flex compress_prepend_size) or one zstd frame, and
 * the header's offsets refer to the uncompressed image. Not for: per-tensor compression (the
 * scheme in aprender's prose spec, which no code implements). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <zstd.h>

#include "apr_internal.h"
#include "io.h"

static rf_status too_big(const char *path, const char *method, uint64_t out, uint64_t in,
                         rf_error *err)
{
    return rf_error_set(err, RF_ERR_LIMIT,
                        "%s: %s payload (offset 64) declares %llu uncompressed bytes from %llu "
                        "compressed bytes: more than %ux expansion, refusing to allocate",
                        path, method, (unsigned long long)out, (unsigned long long)in,
                        RF_APR_MAX_EXPANSION);
}

static uint64_t expansion_limit(uint64_t in)
{
    return in > UINT64_MAX / RF_APR_MAX_EXPANSION ? UINT64_MAX : in * RF_APR_MAX_EXPANSION;
}

static rf_status lz4_decompress(const char *path, const uint8_t *payload, uint64_t len,
                                size_t prefix, const apr_allocator *a, uint8_t **out,
                                uint64_t *out_len, rf_error *err)
{
    if (len < 4)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: LZ4 payload (offset 64) has %llu bytes: expected at least the "
                            "4-byte uncompressed-length prefix",
                            path, (unsigned long long)len);
    uint64_t declared = rf_load_le32(payload);
    uint64_t block = len - 4;
    if (declared > expansion_limit(block))
        return too_big(path, "LZ4", declared, block, err);
    if (declared > INT_MAX || block > INT_MAX)
        return rf_error_set(err, RF_ERR_UNSUPPORTED,
                            "%s: LZ4 block (offset 68) of %llu bytes -> %llu bytes is larger than "
                            "liblz4's 2 GiB block limit",
                            path, (unsigned long long)block, (unsigned long long)declared);
    uint8_t *buf = a->alloc(a->ctx, prefix + (size_t)declared);
    if (!buf)
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory for %llu decompressed bytes",
                            path, (unsigned long long)declared);
    int got = LZ4_decompress_safe((const char *)payload + 4, (char *)buf + prefix, (int)block,
                                  (int)declared);
    if (got < 0 || (uint64_t)got != declared) {
        a->release(a->ctx, buf);
        if (got < 0)
            return rf_error_set(err, RF_ERR_FORMAT,
                                "%s: corrupt LZ4 block at offset 68 (%llu bytes): decoding failed "
                                "(liblz4 error %d)",
                                path, (unsigned long long)block, got);
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: LZ4 block at offset 68 decodes to %d bytes, the prefix at offset "
                            "64 declares %llu",
                            path, got, (unsigned long long)declared);
    }
    *out = buf;
    *out_len = declared;
    return RF_OK;
}

static rf_status zstd_decompress(const char *path, const uint8_t *payload, uint64_t len,
                                 size_t prefix, const apr_allocator *a, uint8_t **out,
                                 uint64_t *out_len, rf_error *err)
{
    unsigned long long declared = ZSTD_getFrameContentSize(payload, (size_t)len);
    if (declared == ZSTD_CONTENTSIZE_ERROR)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: zstd payload at offset 64 is not a zstd frame (expected magic "
                            "28 b5 2f fd)",
                            path);
    size_t frame = ZSTD_findFrameCompressedSize(payload, (size_t)len);
    if (ZSTD_isError(frame))
        return rf_error_set(err, RF_ERR_FORMAT, "%s: corrupt zstd frame at offset 64: %s", path,
                            ZSTD_getErrorName(frame));
    if (frame != len)
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: %llu unexpected bytes after the zstd frame (offset %llu): a "
                            "compressed APR holds exactly one frame",
                            path, (unsigned long long)(len - frame),
                            (unsigned long long)(64 + frame));
    uint64_t limit = expansion_limit(len);
    if (declared != ZSTD_CONTENTSIZE_UNKNOWN) {
        if (declared > limit || declared > SIZE_MAX - prefix)
            return too_big(path, "zstd", declared, len, err);
        uint8_t *buf = a->alloc(a->ctx, prefix + (size_t)declared);
        if (!buf)
            return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory for %llu decompressed bytes",
                                path, declared);
        size_t got = ZSTD_decompress(buf + prefix, (size_t)declared, payload, (size_t)len);
        if (ZSTD_isError(got) || got != declared) {
            a->release(a->ctx, buf);
            if (ZSTD_isError(got))
                return rf_error_set(err, RF_ERR_FORMAT, "%s: corrupt zstd frame at offset 64: %s",
                                    path, ZSTD_getErrorName(got));
            return rf_error_set(err, RF_ERR_FORMAT,
                                "%s: zstd frame decodes to %zu bytes, its header declares %llu",
                                path, got, declared);
        }
        *out = buf;
        *out_len = declared;
        return RF_OK;
    }
    /* size not recorded in the frame: stream into a growing buffer, bounded by the limit */
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx)
        return rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
    size_t cap = 1u << 20, used = 0;
    uint8_t *tmp = malloc(cap);
    rf_status st = tmp ? RF_OK : rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
    ZSTD_inBuffer in = {payload, (size_t)len, 0};
    size_t ret = 1;
    while (st == RF_OK && ret != 0) {
        if (used == cap) {
            if (cap >= limit) {
                st = too_big(path, "zstd", (uint64_t)cap + 1, len, err);
                break;
            }
            size_t next = cap * 2 > limit ? (size_t)limit : cap * 2;
            uint8_t *grown = realloc(tmp, next);
            if (!grown) {
                st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            tmp = grown;
            cap = next;
        }
        ZSTD_outBuffer o = {tmp, cap, used};
        ret = ZSTD_decompressStream(dctx, &o, &in);
        used = o.pos;
        if (ZSTD_isError(ret))
            st = rf_error_set(err, RF_ERR_FORMAT, "%s: corrupt zstd frame at offset 64: %s", path,
                              ZSTD_getErrorName(ret));
        else if (ret != 0 && in.pos == in.size && o.pos < o.size)
            st = rf_error_set(err, RF_ERR_FORMAT, "%s: truncated zstd frame at offset 64", path);
    }
    ZSTD_freeDCtx(dctx);
    if (st == RF_OK) {
        uint8_t *buf = a->alloc(a->ctx, prefix + used);
        if (!buf) {
            st = rf_error_set(err, RF_ERR_NOMEM, "%s: out of memory", path);
        } else {
            memcpy(buf + prefix, tmp, used);
            *out = buf;
            *out_len = used;
        }
    }
    free(tmp);
    return st;
}

rf_status rfi_apr_decompress(const char *path, uint16_t flags, const uint8_t *payload, uint64_t len,
                             size_t prefix, const apr_allocator *a, uint8_t **out,
                             uint64_t *out_len, rf_error *err)
{
    *out = NULL;
    *out_len = 0;
    if ((flags & RF_APR_FLAG_LZ4) && (flags & RF_APR_FLAG_ZSTD))
        return rf_error_set(err, RF_ERR_FORMAT,
                            "%s: both compression flags (LZ4 0x0001 and zstd 0x0002) are set "
                            "(offset 6): expected at most one",
                            path);
    if (flags & RF_APR_FLAG_LZ4)
        return lz4_decompress(path, payload, len, prefix, a, out, out_len, err);
    return zstd_decompress(path, payload, len, prefix, a, out, out_len, err);
}

rf_status rfi_apr_compress(rf_apr_compression method, int zstd_level, const uint8_t *data,
                           uint64_t len, uint8_t **out, uint64_t *out_len, rf_error *err)
{
    *out = NULL;
    *out_len = 0;
    switch (method) {
    case RF_APR_COMPRESSION_LZ4: {
        if (len > LZ4_MAX_INPUT_SIZE)
            return rf_error_set(err, RF_ERR_LIMIT,
                                "LZ4 compression: %llu bytes exceed the single-block limit of %d "
                                "bytes (use zstd)",
                                (unsigned long long)len, LZ4_MAX_INPUT_SIZE);
        int bound = LZ4_compressBound((int)len);
        uint8_t *buf = malloc(4 + (size_t)bound);
        if (!buf)
            return rf_error_set(err, RF_ERR_NOMEM, "out of memory compressing %llu bytes",
                                (unsigned long long)len);
        rf_store_le32(buf, (uint32_t)len);
        int n = LZ4_compress_default((const char *)data, (char *)buf + 4, (int)len, bound);
        if (n <= 0 && len > 0) {
            free(buf);
            return rf_error_set(err, RF_ERR_WRITE, "LZ4 compression of %llu bytes failed",
                                (unsigned long long)len);
        }
        *out = buf;
        *out_len = 4 + (uint64_t)n;
        return RF_OK;
    }
    case RF_APR_COMPRESSION_ZSTD: {
        size_t bound = ZSTD_compressBound((size_t)len);
        uint8_t *buf = malloc(bound ? bound : 1);
        if (!buf)
            return rf_error_set(err, RF_ERR_NOMEM, "out of memory compressing %llu bytes",
                                (unsigned long long)len);
        size_t n = ZSTD_compress(buf, bound, data, (size_t)len, zstd_level ? zstd_level : 3);
        if (ZSTD_isError(n)) {
            free(buf);
            return rf_error_set(err, RF_ERR_WRITE, "zstd compression failed: %s",
                                ZSTD_getErrorName(n));
        }
        *out = buf;
        *out_len = n;
        return RF_OK;
    }
    case RF_APR_COMPRESSION_NONE: break;
    }
    return rf_error_set(err, RF_ERR_ARGUMENT, "no compression method given");
}
