/* AVX-512 (F/BW/VL/DQ) matmul kernels without VNNI: the body is matmul_avx512_body.h. */
#define RK_VNNI 0
#include "cpu/matmul_avx512_body.h"
