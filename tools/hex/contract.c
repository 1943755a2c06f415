/* apr-hex --contract: waits for the contracts library (rosetta/contract.h). */
#include "hex.h"

int hex_contract(const rf_filemap *map, const hex_options *o)
{
    (void)o;
    cli_error(&HEX_TOOL,
              "%s: --contract needs the tensor contracts (contracts/), which this "
              "build does not have yet",
              rf_filemap_path(map));
    return APR_EXIT_USAGE;
}
