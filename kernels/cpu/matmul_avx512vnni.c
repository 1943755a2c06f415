/* AVX-512 matmul kernels with AVX512-VNNI (vpdpbusd, vpdpwssd): the body is
 * matmul_avx512_body.h. */
#define RK_VNNI 1
#include "cpu/matmul_avx512_body.h"
