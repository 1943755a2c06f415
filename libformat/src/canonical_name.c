/* Canonical tensor names through the HF/GGUF name table of rosetta/names.h: GGUF names and the
 * APR names (which are HF names for Qwen) all become the Hugging Face spelling. */
#include "canonical_name.h"

#include <stdlib.h>
#include <string.h>

#include "rosetta/names.h"

char *canonical_tensor_name(const char *name)
{
    char hf[512];
    const char *use = rf_name_to_hf(name, hf, sizeof hf) ? hf : name;
    return strdup(use);
}
