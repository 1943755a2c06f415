/* Fuzz target: the model view builder through rf_model_open, any format (detection by content,
 * then the matching reader), opened strictly and leniently and walked in full.
 * Input: one file of any format.
 * fuzz-config: max_len=65536 seeds=tests/data/bad */
#include "fuzz_common.h"

#include "rosetta/detect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)rf_detect_bytes(data, size, size);
    fz_open_and_walk(fz_memfd_path(data, size));
    return 0;
}
