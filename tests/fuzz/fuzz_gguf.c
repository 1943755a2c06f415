/* Fuzz target: the GGUF reader (header, every KV value type, tensor infos, alignment, big-endian
 * files) into the model view, strict and lenient, walked in full; and the header scan behind
 * rf_gguf_scan_layout / rf_gguf_model_layout.
 * Input: one GGUF file.
 * fuzz-config: max_len=65536 seeds=tests/data/bad/gguf */
#include "fuzz_common.h"

#include "rosetta/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_open_memory_and_walk(rf_gguf_open_memory, data, size);
    rf_gguf_layout layout;
    rf_error err;
    (void)rf_gguf_scan_layout(data, size, "fuzz-input", &layout, &err);
    rf_model *m = rf_gguf_open_memory(data, size, "fuzz-input", NULL, &err);
    if (m) {
        (void)rf_gguf_model_layout(m, &layout, &err);
        rf_model_free(m);
    }
    return 0;
}
