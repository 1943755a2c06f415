/* Per-element conversions to and from F32 (see quant_plain.h). */
#include "cpu/quant_plain.h"

#include <string.h>

void rk_quantize_row_f32_ref(const float *x, void *y, int64_t k) { memcpy(y, x, (size_t)k * 4); }

/* Values of integer types convert as C converts them to float (round to nearest). The bytes are
 * little-endian; memcpy into the native type is the identity on x86-64 (the only target). */
#define PLAIN_DEQUANT(name, ctype)                                                                 \
    void rk_dequantize_row_##name##_ref(const void *vx, float *y, int64_t k)                       \
    {                                                                                              \
        const uint8_t *x = vx;                                                                     \
        for (int64_t i = 0; i < k; i++) {                                                          \
            ctype v;                                                                               \
            memcpy(&v, x + (size_t)i * sizeof v, sizeof v);                                        \
            y[i] = (float)v;                                                                       \
        }                                                                                          \
    }
PLAIN_DEQUANT(f32, float)
PLAIN_DEQUANT(f64, double)
PLAIN_DEQUANT(i8, int8_t)
PLAIN_DEQUANT(i16, int16_t)
PLAIN_DEQUANT(i32, int32_t)
PLAIN_DEQUANT(i64, int64_t)
PLAIN_DEQUANT(u8, uint8_t)
PLAIN_DEQUANT(u16, uint16_t)
PLAIN_DEQUANT(u32, uint32_t)
PLAIN_DEQUANT(u64, uint64_t)

void rk_dequantize_row_bool_ref(const void *vx, float *y, int64_t k)
{
    const uint8_t *x = vx;
    for (int64_t i = 0; i < k; i++)
        y[i] = x[i] ? 1.0f : 0.0f;
}
