/* Canonical tensor names through the contract's role table (contracts/tensor-layout.json,
 * rosetta/contract.h): a name in any of the HF, GGUF and APR spellings becomes its Hugging Face
 * spelling; names that spell no role, and every name when the contracts cannot be loaded, are
 * kept as they are. */
#include "canonical_name.h"

#include <stdlib.h>
#include <string.h>

#include "rosetta/contract.h"

char *rfi_canonical_tensor_name(const char *name)
{
    char hf[512];
    const rf_contracts *contracts = rf_contracts_default(NULL);
    if (contracts &&
        rf_contracts_map_name(contracts, name, RF_NAMING_HF, hf, sizeof hf, NULL) == RF_OK)
        return strdup(hf);
    return strdup(name);
}
