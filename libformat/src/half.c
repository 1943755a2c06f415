/* F16/BF16 conversion entry points of libformat over the shared bit-exact helpers. */
#include "rosetta/half.h"

#include "common/half.h"

float rf_f16_to_f32(uint16_t h) { return rk_f16_to_f32(h); }
uint16_t rf_f32_to_f16(float f) { return rk_f32_to_f16(f); }
float rf_bf16_to_f32(uint16_t b) { return rk_bf16_to_f32(b); }
uint16_t rf_f32_to_bf16(float f) { return rk_f32_to_bf16(f); }

static inline uint16_t load_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline void store_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void rf_f16_to_f32_row(const void *src, float *dst, size_t n)
{
    const uint8_t *s = src;
    for (size_t i = 0; i < n; i++)
        dst[i] = rk_f16_to_f32(load_le16(s + 2 * i));
}

void rf_f32_to_f16_row(const float *src, void *dst, size_t n)
{
    uint8_t *d = dst;
    for (size_t i = 0; i < n; i++)
        store_le16(d + 2 * i, rk_f32_to_f16(src[i]));
}

void rf_bf16_to_f32_row(const void *src, float *dst, size_t n)
{
    const uint8_t *s = src;
    for (size_t i = 0; i < n; i++)
        dst[i] = rk_bf16_to_f32(load_le16(s + 2 * i));
}

void rf_f32_to_bf16_row(const float *src, void *dst, size_t n)
{
    uint8_t *d = dst;
    for (size_t i = 0; i < n; i++)
        store_le16(d + 2 * i, rk_f32_to_bf16(src[i]));
}
