/* Version of librosetta-infer. */
#include "rosetta/infer.h"

#include "rosetta/version.h"

const char *ri_version(void) { return ROSETTA_VERSION; }
