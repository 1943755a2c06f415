/* Fuzz target: the SafeTensors reader on a single file (header length, header JSON, dtype
 * strings, shapes, data_offsets tiling, trailing bytes) into the model view, walked in full.
 * Input: one .safetensors file.
 * fuzz-config: max_len=65536 seeds=tests/data/bad/safetensors */
#include "fuzz_common.h"

#include "model_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_open_and_walk_with(rf_safetensors_open_model, fz_memfd_path(data, size));
    return 0;
}
