/* Value-statistics chunk kernels for avx2: the intrinsics of value_scan_x86.h and the C body of
 * value_scan_body.h built for avx2; results equal the scalar reference bit for bit (value_scan.h).
 */
#define SCAN_FN(name) name##_avx2
#include "value_scan_body.h"
#include "value_scan_x86.h"
