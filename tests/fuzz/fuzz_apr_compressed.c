/* Fuzz target: realizar-style compressed APR files (flag 0x0001: everything after the 64-byte
 * header is one size-prefixed LZ4 block; 0x0002: one zstd frame). The harness compresses a
 * mutated uncompressed image itself, so mutations reach the decompressed-layout checks instead
 * of dying in the decompressor; one mode passes the stream through verbatim to fuzz the
 * decompression error paths.
 * Input: byte 0 = mode (bit 0: 0 LZ4, 1 zstd; bit 1: stream given verbatim), then the 64-byte
 * header, then the uncompressed body (or, verbatim mode, the compressed stream). The harness
 * sets the compression flag and recomputes the header CRC and the footer CRC of the image.
 * fuzz-config: max_len=65536 seeds= */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <zstd.h>

#include "model_internal.h"
#include "io.h"

#define APR_HEADER 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 + APR_HEADER)
        return 0;
    const int zstd = data[0] & 1;
    const int verbatim = (data[0] >> 1) & 1;
    const uint8_t *body = data + 1 + APR_HEADER;
    size_t body_size = size - 1 - APR_HEADER;

    uint8_t header[APR_HEADER];
    memcpy(header, data + 1, APR_HEADER);
    uint16_t flags = rf_load_le16(header + 6);
    flags = (uint16_t)((flags & ~0x0003u) | (zstd ? 0x0002u : 0x0001u));
    rf_store_le16(header + 6, flags);
    uint32_t crc = rf_crc32(0, header, 40);
    rf_store_le32(header + 40, rf_crc32(crc, header + 44, APR_HEADER - 44));

    size_t bound = verbatim ? body_size
                   : zstd   ? ZSTD_compressBound(body_size)
                            : 4 + (size_t)LZ4_compressBound((int)body_size);
    uint8_t *file = malloc(APR_HEADER + bound + 1);
    uint8_t *image = malloc(body_size + 1);
    if (!file || !image) {
        free(file);
        free(image);
        return 0;
    }
    memcpy(file, header, APR_HEADER);
    size_t stream = 0;
    if (verbatim) {
        memcpy(file + APR_HEADER, body, body_size);
        stream = body_size;
    } else {
        /* The footer CRC of the uncompressed image covers the header and the body before it. */
        memcpy(image, body, body_size);
        if (body_size >= 4) {
            uint32_t footer = rf_crc32(rf_crc32(0, header, APR_HEADER), image, body_size - 4);
            rf_store_le32(image + body_size - 4, footer);
        }
        if (zstd) {
            size_t n = ZSTD_compress(file + APR_HEADER, bound, image, body_size, 1);
            stream = ZSTD_isError(n) ? 0 : n;
        } else {
            rf_store_le32(file + APR_HEADER, (uint32_t)body_size);
            int n = LZ4_compress_default((const char *)image, (char *)file + APR_HEADER + 4,
                                         (int)body_size, (int)(bound - 4));
            stream = n > 0 ? 4 + (size_t)n : 0;
        }
    }
    if (stream > 0 || verbatim)
        fz_open_and_walk_with(rf_apr_open_model, fz_memfd_path(file, APR_HEADER + stream));
    free(file);
    free(image);
    return 0;
}
