/* Value-statistics chunk kernels, scalar reference (the build's baseline ISA): results equal the
 * reference bit for bit, by the summation order of value_scan.h. */
#define SCAN_FN(name) name##_ref
#define SCAN_SCALAR
#include "value_scan_body.h"
