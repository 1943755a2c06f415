/* Fuzz target: the GGUF reader (header, every KV value type, tensor infos, alignment, big-endian
 * files) into the model view, strict and lenient, walked in full.
 * Input: one GGUF file.
 * fuzz-config: max_len=65536 seeds=tests/data/bad/gguf */
#include "fuzz_common.h"

#include "model_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_open_and_walk_with(rf_gguf_open_model, fz_memfd_path(data, size));
    return 0;
}
