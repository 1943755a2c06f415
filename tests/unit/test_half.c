/* F16/BF16 <-> F32: exhaustive over all 65,536 16-bit inputs against independent computations
 * (ldexp for decoding, the compiler's _Float16 and a double-precision nearest-value search for
 * encoding), plus the edge cases: zeros, subnormals, overflow, ties, Inf and NaN. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "rosetta/half.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Value of a binary16 pattern computed from its definition. */
static double f16_reference(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double v;
    if (exp == 0)
        v = ldexp(mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexp(1024 + mant, exp - 25);
    return sign ? -v : v;
}

Test(half, f16_to_f32_all_65536)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float got = rf_f16_to_f32((uint16_t)h);
        double want = f16_reference((uint16_t)h);
        if (isnan(want)) {
            cr_assert(isnan(got), "0x%04x should decode to NaN", h);
            cr_assert_eq(bits(got) >> 31, h >> 15, "NaN sign of 0x%04x", h);
            cr_assert_eq((bits(got) >> 13) & 0x3ff, (h & 0x3ff) | 0x200,
                         "quiet NaN payload of 0x%04x", h);
            cr_assert_eq(bits(got) & 0x1fff, 0, "NaN 0x%04x: low bits clear", h);
        } else {
            cr_assert_eq((double)got, want, "0x%04x: got %a want %a", h, (double)got, want);
            cr_assert_eq(signbit(got) != 0, (h >> 15) != 0, "sign of 0x%04x", h);
        }
    }
}

Test(half, f16_round_trip_all_65536)
{
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t back = rf_f32_to_f16(rf_f16_to_f32((uint16_t)h));
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            cr_assert_eq(back, (h & 0x8000) | 0x7e00, "NaN 0x%04x must come back as ggml's NaN", h);
        else
            cr_assert_eq(back, h, "0x%04x came back as 0x%04x", h, back);
    }
}

#ifdef __FLT16_MANT_DIG__ /* _Float16 exists (gcc; clang >= 15 on x86) */
Test(half, f32_to_f16_matches_compiler_float16)
{
    /* Every 97th binary32 pattern (44 million values) plus all neighbours of f16 midpoints. */
    for (uint64_t u = 0; u <= 0xffffffffull; u += 97) {
        float f = from_bits((uint32_t)u);
        if (isnan(f))
            continue;
        _Float16 ref = (_Float16)f;
        uint16_t want;
        memcpy(&want, &ref, 2);
        uint16_t got = rf_f32_to_f16(f);
        cr_assert_eq(got, want, "f32 0x%08x (%a): got 0x%04x want 0x%04x", (uint32_t)u, (double)f,
                     got, want);
    }
    for (uint32_t h = 0; h < 0x7c00; h++) { /* midpoint between h and h+1, and its neighbours */
        double mid = (f16_reference((uint16_t)h) + f16_reference((uint16_t)(h + 1))) / 2;
        float m = (float)mid;
        for (int d = -1; d <= 1; d++) {
            float f = from_bits(bits(m) + (uint32_t)d);
            for (int s = 0; s < 2; s++) {
                float x = s ? -f : f;
                _Float16 ref = (_Float16)x;
                uint16_t want;
                memcpy(&want, &ref, 2);
                cr_assert_eq(rf_f32_to_f16(x), want, "near midpoint %a", (double)x);
            }
        }
    }
}
#endif

Test(half, f32_to_f16_edges)
{
    cr_assert_eq(rf_f32_to_f16(0.0f), 0x0000);
    cr_assert_eq(rf_f32_to_f16(-0.0f), 0x8000);
    cr_assert_eq(rf_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(rf_f32_to_f16(65519.99f), 0x7bff);
    cr_assert_eq(rf_f32_to_f16(65520.0f), 0x7c00); /* tie rounds to even = infinity */
    cr_assert_eq(rf_f32_to_f16(1e10f), 0x7c00);
    cr_assert_eq(rf_f32_to_f16(-INFINITY), 0xfc00);
    cr_assert_eq(rf_f32_to_f16(ldexpf(1, -24)), 0x0001);            /* smallest subnormal */
    cr_assert_eq(rf_f32_to_f16(ldexpf(1, -25)), 0x0000);            /* tie to even: zero */
    cr_assert_eq(rf_f32_to_f16(ldexpf(3, -26)), 0x0001);            /* 0.75 ulp rounds up */
    cr_assert_eq(rf_f32_to_f16(ldexpf(3, -25)), 0x0002);            /* 1.5 ulp ties to even 2 */
    cr_assert_eq(rf_f32_to_f16(ldexpf(1, -14)), 0x0400);            /* smallest normal */
    cr_assert_eq(rf_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);     /* tie to even down */
    cr_assert_eq(rf_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02); /* tie to even up */
    /* NaN: sign | 0x7E00 whatever the payload (docs/formats/quantization.md) */
    cr_assert_eq(rf_f32_to_f16(from_bits(0x7fc00000u)), 0x7e00);
    cr_assert_eq(rf_f32_to_f16(from_bits(0xffc12345u)), 0xfe00);
    cr_assert_eq(rf_f32_to_f16(from_bits(0x7f800001u)), 0x7e00, "signalling NaN");
}

/* Nearest bfloat16 by comparing the two candidates in double precision, ties to even. */
static uint16_t bf16_reference(float f)
{
    uint32_t u = bits(f);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    double x = f, a = from_bits((uint32_t)lo << 16);
    double dist_lo = fabs(x - a);
    if (dist_lo == 0)
        return lo;
    /* hi may be the next binade or infinity: compute its value from bits, with inf as 2^128 */
    double b = ((hi & 0x7fff) == 0x7f80) ? copysign(ldexp(1, 128), x)
                                         : (double)from_bits((uint32_t)hi << 16);
    double dist_hi = fabs(b - x);
    if (dist_lo < dist_hi)
        return lo;
    if (dist_hi < dist_lo)
        return hi;
    return (lo & 1) ? hi : lo;
}

Test(half, bf16_all_65536_and_sampled_f32)
{
    for (uint32_t b = 0; b < 65536; b++) {
        float f = rf_bf16_to_f32((uint16_t)b);
        cr_assert_eq(bits(f), b << 16, "bf16 0x%04x decodes to its upper half", b);
        if (!isnan(f))
            cr_assert_eq(rf_f32_to_bf16(f), b, "bf16 0x%04x round trip", b);
        else
            cr_assert_eq(rf_f32_to_bf16(f), b | 0x40, "NaN 0x%04x stays quiet NaN", b);
    }
    for (uint64_t u = 0; u <= 0xffffffffull; u += 101) {
        float f = from_bits((uint32_t)u);
        if (isnan(f))
            continue;
        cr_assert_eq(rf_f32_to_bf16(f), bf16_reference(f), "f32 0x%08x", (uint32_t)u);
    }
    cr_assert_eq(rf_f32_to_bf16(from_bits(0x3f808000u)), 0x3f80); /* tie, even stays */
    cr_assert_eq(rf_f32_to_bf16(from_bits(0x3f818000u)), 0x3f82); /* tie, odd rounds up */
    cr_assert_eq(rf_f32_to_bf16(from_bits(0x7f7fffffu)), 0x7f80); /* max float -> inf */
}

Test(half, rows_are_little_endian_and_unaligned)
{
    uint8_t raw[9] = {0xff, 0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c, 0x01, 0x00};
    float out[4];
    rf_f16_to_f32_row(raw + 1, out, 4); /* odd address on purpose */
    cr_assert_eq(out[0], 1.0f);
    cr_assert_eq(out[1], -2.0f);
    cr_assert(isinf(out[2]) && out[2] > 0);
    cr_assert_eq(out[3], ldexpf(1, -24));
    uint8_t back[9] = {0};
    rf_f32_to_f16_row(out, back + 1, 4);
    cr_assert_arr_eq(back + 1, raw + 1, 8);
    float in[2] = {1.0f, -3.5f};
    uint8_t b16[4];
    rf_f32_to_bf16_row(in, b16, 2);
    cr_assert(b16[0] == 0x80 && b16[1] == 0x3f && b16[2] == 0x60 && b16[3] == 0xc0);
    float again[2];
    rf_bf16_to_f32_row(b16, again, 2);
    cr_assert(again[0] == 1.0f && again[1] == -3.5f);
}
