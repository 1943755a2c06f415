/* Fuzz target: the APR v2 reader (header, flags, metadata JSON, tensor index, data spans,
 * footer, realizar-style compressed files) into the model view, strict and lenient, walked in
 * full, plus the header decoder and the checksum report of `apr inspect`. Each input is opened
 * twice: as given, and with its header CRC (and, for uncompressed files, its footer CRC)
 * recomputed, so that mutations also reach the code past the checksums.
 * Input: one APR file.
 * fuzz-config: max_len=65536 seeds=tests/data/bad/apr */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "rosetta/apr.h"
#include "io.h"

#define APR_HEADER 64

static void fix_checksums(uint8_t *file, size_t size)
{
    uint32_t crc = rf_crc32(0, file, 40);
    crc = rf_crc32(crc, file + 44, APR_HEADER - 44);
    rf_store_le32(file + 40, crc);
    uint16_t flags = rf_load_le16(file + 6);
    if ((flags & 0x0003u) == 0 && size >= APR_HEADER + 4)
        rf_store_le32(file + size - 4, rf_crc32(0, file, size - 4));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rf_apr_header header;
    rf_apr_checksums sums;
    rf_error err;
    if (rf_apr_header_decode(data, size, &header, &err) == RF_OK)
        (void)rf_apr_header_crc(data);
    (void)rf_apr_checksums_bytes(data, size, &sums, &err);
    fz_open_and_walk_with(rf_apr_open_model, fz_memfd_path(data, size));
    if (size < APR_HEADER || memcmp(data, "APR", 3) != 0)
        return 0;
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    fix_checksums(copy, size);
    if (memcmp(copy, data, size) != 0)
        fz_open_and_walk_with(rf_apr_open_model, fz_memfd_path(copy, size));
    free(copy);
    return 0;
}
