/* Fuzz target: a Hugging Face checkpoint directory: the weights plus config.json (config keys
 * and aliases), generation_config.json, tokenizer.json (vocabulary, merges, added tokens) and
 * tokenizer_config.json (chat template, special tokens), opened as the directory and as the
 * weights file, walked in full (config and tokenizer included).
 * Input: parts separated by FZ_SEPARATOR, in this order: model.safetensors, config.json,
 * generation_config.json, tokenizer.json, tokenizer_config.json (missing parts: absent files).
 * fuzz-config: max_len=131072 seeds= */
#include "fuzz_common.h"

#include <stdio.h>

static const char *const names[] = {"model.safetensors", "config.json", "generation_config.json",
                                    "tokenizer.json", "tokenizer_config.json"};
#define N_NAMES (sizeof names / sizeof names[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_part parts[N_NAMES];
    size_t n = fz_split(data, size, parts, N_NAMES);
    fz_dir_clear();
    char weights[512];
    snprintf(weights, sizeof weights, "%s", fz_dir_file(names[0], parts[0].data, parts[0].size));
    for (size_t k = 1; k < n; k++)
        fz_dir_file(names[k], parts[k].data, parts[k].size);
    fz_open_and_walk(fz_dir());
    fz_open_and_walk(weights);
    return 0;
}
