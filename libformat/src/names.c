/* The names.h wrappers: every answer comes from the default contracts (contract.c), so the
 * name table lives in contracts/tensor-layout.json only.
 * Not for: deciding which tensors a model must have (rf_contract_check). */
#include "rosetta/names.h"

#include <stdio.h>

#include "rosetta/contract.h"

rf_name_scheme rf_name_scheme_of(const char *name)
{
    rf_naming naming;
    if (!rf_contracts_role_of(rf_contracts_default(NULL), name, NULL, &naming))
        return RF_NAMES_UNKNOWN;
    return naming == RF_NAMING_GGUF ? RF_NAMES_GGUF : RF_NAMES_HF;
}

static bool map(const char *name, rf_naming to, char *out, size_t out_size)
{
    const rf_contracts *c = rf_contracts_default(NULL);
    return c && rf_contracts_map_name(c, name, to, out, out_size, NULL) == RF_OK;
}

bool rf_name_to_gguf(const char *name, char *out, size_t out_size)
{
    return map(name, RF_NAMING_GGUF, out, out_size);
}

bool rf_name_to_hf(const char *name, char *out, size_t out_size)
{
    return map(name, RF_NAMING_HF, out, out_size);
}

bool rf_name_to_apr(const char *name, const char *arch, char *out, size_t out_size)
{
    const rf_contracts *c = rf_contracts_default(NULL);
    if (c)
        return rf_contracts_apr_name(c, name, arch, out, out_size, NULL) == RF_OK;
    int n = snprintf(out, out_size, "%s", name);
    return n >= 0 && (size_t)n < out_size;
}
