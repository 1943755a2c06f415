/* Value-statistics chunk kernels for avx2: the intrinsics of value_scan_x86.h built with the avx2
 * flags; results equal the scalar reference bit for bit (value_scan.h). */
#define SCAN_FN(name) name##_avx2
#include "value_scan_x86.h"
