/* Fuzz target: the SafeTensors reader on a single file (header length, header JSON, dtype
 * strings, shapes, data_offsets tiling, trailing bytes) into the model view, walked in full.
 * Input: one .safetensors file.
 * fuzz-config: max_len=65536 seeds=tests/data/bad/safetensors */
#include "fuzz_common.h"

#include "rosetta/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_open_memory_and_walk(rf_safetensors_open_memory, data, size);
    return 0;
}
