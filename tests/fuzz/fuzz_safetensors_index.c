/* Fuzz target: sharded SafeTensors through model.safetensors.index.json (weight_map parsing,
 * shard names, cross-shard checks: missing, duplicate or extra tensors), opened as the index
 * file and as the directory.
 * Input: parts separated by FZ_SEPARATOR: the index JSON, then up to three shard files named
 * model-0000K-of-00003.safetensors (K = 1, 2, 3).
 * fuzz-config: max_len=65536 seeds=tests/data/bad/safetensors */
#include "fuzz_common.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_part parts[4];
    size_t n = fz_split(data, size, parts, 4);
    fz_dir_clear();
    for (size_t k = 1; k < n; k++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05zu-of-00003.safetensors", k);
        fz_dir_file(name, parts[k].data, parts[k].size);
    }
    char index[512];
    snprintf(index, sizeof index, "%s",
             fz_dir_file("model.safetensors.index.json", parts[0].data, parts[0].size));
    fz_open_and_walk(index);
    fz_open_and_walk(fz_dir());
    return 0;
}
