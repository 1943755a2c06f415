/* Bit-exact primitives of llama.cpp's reference quantizers: its rounding helpers, its float ->
 * integer conversions as x86-64 executes them, its f16 conversions, and little-endian field access
 * for blocks read as bytes. Plain C, header-only, shared by host and device code.
 * Not for: anything that may round differently from ggml (no lrintf, no hardware f16 here).
 * Facts: docs/formats/quantization.md. */
#ifndef RK_QUANT_MATH_H
#define RK_QUANT_MATH_H

#include <stdint.h>
#include <string.h>

#include "common/half.h"

/* ggml's nearest_int: add 1.5 * 2^23 and read the low mantissa bits. Round half to even for
 * |f| <= 4194303. ggml only asserts that bound (compiled out in release builds) and does reach
 * larger arguments; the bit formula is applied literally to every float: +-Inf gives -4194304,
 * the NaN of 0 * Inf gives 0, huge finite values give their mantissa bits. */
static inline int32_t rk_nearest_int(float f)
{
    float biased = f + 12582912.0f;
    uint32_t bits = rk_f32_bits(biased);
    return (int32_t)(bits & 0x007fffffu) - 0x00400000;
}

/* C's float -> integer conversion (truncation toward zero) as the x86-64 instruction cvttss2si
 * performs it: NaN and values outside the int32 range give INT32_MIN ("integer indefinite").
 * ggml writes (int8_t)v / (uint8_t)v, which GCC compiles to this instruction followed by keeping
 * the low byte; in C the out-of-range case is undefined, so it is spelled out here. */
static inline int32_t rk_trunc_x86(float v)
{
    if (v >= -2147483648.0f && v < 2147483648.0f)
        return (int32_t)v;
    return INT32_MIN;
}

/* int -> int8_t / uint8_t conversion modulo 256 (what GCC and Clang do for the implementation-
 * defined narrowing casts in ggml), written without relying on it. */
static inline int8_t rk_wrap_i8(int32_t v)
{
    int32_t low = (int32_t)((uint32_t)v & 0xffu);
    return (int8_t)(low > 127 ? low - 256 : low);
}

static inline uint8_t rk_wrap_u8(int32_t v) { return (uint8_t)((uint32_t)v & 0xffu); }

/* (int8_t)v and (uint8_t)v of a float, as compiled for x86-64. */
static inline int8_t rk_float_to_i8_x86(float v) { return rk_wrap_i8(rk_trunc_x86(v)); }

static inline uint8_t rk_float_to_u8_x86(float v) { return rk_wrap_u8(rk_trunc_x86(v)); }

/* ggml's f16 conversions. half.h follows ggml bit for bit (round to nearest even, subnormals
 * kept, f32 NaN -> sign | 0x7E00, f16 NaN -> quiet f32 NaN); these names say that the
 * quantization code relies on it, and tests/oracle checks every f16 pattern against ggml. */
static inline float rk_ggml_f16_to_f32(uint16_t h) { return rk_f16_to_f32(h); }

static inline uint16_t rk_ggml_f32_to_f16(float f) { return rk_f32_to_f16(f); }

/* Little-endian fields of byte-addressed blocks (never cast a block pointer to a wider type). */
static inline uint16_t rk_load_u16le(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t rk_load_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void rk_store_u16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xffu);
    p[1] = (uint8_t)(v >> 8);
}

static inline void rk_store_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xffu);
    p[1] = (uint8_t)((v >> 8) & 0xffu);
    p[2] = (uint8_t)((v >> 16) & 0xffu);
    p[3] = (uint8_t)(v >> 24);
}

static inline float rk_load_f32le(const uint8_t *p) { return rk_bits_f32(rk_load_u32le(p)); }

static inline void rk_store_f32le(uint8_t *p, float v) { rk_store_u32le(p, rk_f32_bits(v)); }

/* An f16 field converted as ggml does. */
static inline float rk_load_f16(const uint8_t *p) { return rk_ggml_f16_to_f32(rk_load_u16le(p)); }

static inline void rk_store_f16(uint8_t *p, float v) { rk_store_u16le(p, rk_ggml_f32_to_f16(v)); }

#endif
