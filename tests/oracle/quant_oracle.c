/* Oracle test: Rosetta's scalar reference quantizers and dequantizers (kernels/cpu/quant_ref.c)
 * against llama.cpp's own (libggml-base, built by scripts/build-ggml-oracle) on random and
 * adversarial inputs. Asserts identical bytes for every quantizer, with and without an importance
 * matrix, and identical float bit patterns for every dequantizer.
 * Built and run by tests/tools/quant_oracle.sh. Not a unit test: it needs the ggml build.
 *
 * Usage: quant_oracle [--scale F] [--seed N] [--real FILE]
 *   --scale multiplies the number of blocks per type (default 1; CI runs 1).
 *   --real  also quantizes the tensors of FILE (records: u32 rows, u32 cols, f32 data), which
 *           quant_oracle.sh writes from the tiny-qwen2 fixture.
 * Prints one line per type with the number of blocks compared; exit 0 when everything matched,
 * 1 on any mismatch (the first few are described on stderr). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-quants.h"
#include "ggml.h"

#include "cpu/quant_ref.h"

typedef void (*quant_fn)(const float *x, void *y, int64_t k);
typedef void (*dequant_fn)(const void *x, float *y, int64_t k);
typedef void (*imatrix_fn)(const float *x, void *y, int64_t n_rows, int64_t n_per_row,
                           const float *qw);

/* Q8_K has no entry in ggml's type traits: call its functions directly. */
static void ggml_q8_K_quantize(const float *x, void *y, int64_t k)
{
    quantize_row_q8_K_ref(x, (block_q8_K *)y, k);
}

static void ggml_q8_K_dequantize(const void *x, float *y, int64_t k)
{
    dequantize_row_q8_K((const block_q8_K *)x, y, k);
}

typedef struct qtype {
    const char *name;
    enum ggml_type gtype;
    quant_fn rk_quant;
    dequant_fn rk_dequant;
    imatrix_fn rk_imatrix; /* NULL: no weighted path compared */
    bool chunk;            /* ggml side through ggml_quantize_chunk (what llama-quantize calls) */
    int blocks;            /* blocks quantized by both sides at --scale 1 */
    int imatrix_blocks;
} qtype;

static const qtype TYPES[] = {
    {"q4_0", GGML_TYPE_Q4_0, rk_quantize_row_q4_0_ref, rk_dequantize_row_q4_0_ref,
     rk_quantize_row_q4_0_imatrix, true, 200000, 30000},
    {"q4_1", GGML_TYPE_Q4_1, rk_quantize_row_q4_1_ref, rk_dequantize_row_q4_1_ref,
     rk_quantize_row_q4_1_imatrix, true, 200000, 30000},
    {"q5_0", GGML_TYPE_Q5_0, rk_quantize_row_q5_0_ref, rk_dequantize_row_q5_0_ref,
     rk_quantize_row_q5_0_imatrix, true, 200000, 30000},
    {"q5_1", GGML_TYPE_Q5_1, rk_quantize_row_q5_1_ref, rk_dequantize_row_q5_1_ref,
     rk_quantize_row_q5_1_imatrix, true, 200000, 30000},
    {"q8_0", GGML_TYPE_Q8_0, rk_quantize_row_q8_0_ref, rk_dequantize_row_q8_0_ref, NULL, true,
     200000, 0},
    {"q8_1", GGML_TYPE_Q8_1, rk_quantize_row_q8_1_ref, rk_dequantize_row_q8_1_ref, NULL, false,
     200000, 0},
    {"q2_K", GGML_TYPE_Q2_K, rk_quantize_row_q2_K_ref, rk_dequantize_row_q2_K_ref,
     rk_quantize_row_q2_K_imatrix, true, 25000, 3000},
    {"q3_K", GGML_TYPE_Q3_K, rk_quantize_row_q3_K_ref, rk_dequantize_row_q3_K_ref,
     rk_quantize_row_q3_K_imatrix, true, 25000, 5000},
    {"q4_K", GGML_TYPE_Q4_K, rk_quantize_row_q4_K_ref, rk_dequantize_row_q4_K_ref,
     rk_quantize_row_q4_K_imatrix, true, 25000, 4000},
    {"q5_K", GGML_TYPE_Q5_K, rk_quantize_row_q5_K_ref, rk_dequantize_row_q5_K_ref,
     rk_quantize_row_q5_K_imatrix, true, 25000, 4000},
    {"q6_K", GGML_TYPE_Q6_K, rk_quantize_row_q6_K_ref, rk_dequantize_row_q6_K_ref,
     rk_quantize_row_q6_K_imatrix, true, 25000, 5000},
    {"q8_K", GGML_TYPE_Q8_K, rk_quantize_row_q8_K_ref, rk_dequantize_row_q8_K_ref, NULL, false,
     40000, 0},
    {"iq4_nl", GGML_TYPE_IQ4_NL, rk_quantize_row_iq4_nl_ref, rk_dequantize_row_iq4_nl_ref,
     rk_quantize_row_iq4_nl_imatrix, true, 20000, 5000},
    {"iq4_xs", GGML_TYPE_IQ4_XS, rk_quantize_row_iq4_xs_ref, rk_dequantize_row_iq4_xs_ref,
     rk_quantize_row_iq4_xs_imatrix, true, 3000, 1000},
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

/* ---------------------------------------------------------------- deterministic random source */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t rng_below(uint32_t n) { return (uint32_t)(rng_next() % n); }

static float rng_unit(void) /* [0, 1) */ { return (float)(rng_next() >> 40) * 0x1p-24f; }

static float rng_sym(void) /* [-1, 1) */ { return rng_unit() * 2.0f - 1.0f; }

static float rng_gauss(void)
{
    double u1 = ((double)(rng_next() >> 11) + 1.0) * 0x1p-53;
    double u2 = (double)(rng_next() >> 11) * 0x1p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* A random finite float drawn uniformly over bit patterns (all magnitudes equally likely). */
static float rng_any_finite(void)
{
    for (;;) {
        float f = bits_f32((uint32_t)rng_next());
        if (isfinite(f))
            return f;
    }
}

static float pow10f_int(int e) { return (float)pow(10.0, (double)e); }

/* ---------------------------------------------------------------- adversarial block generator */

enum {
    CAT_GAUSS,       /* Gaussian noise, magnitude 10^-8 .. 10^8 */
    CAT_UNIFORM,     /* uniform [-1, 1) */
    CAT_ZERO,        /* all zero (+0 and -0) */
    CAT_CONSTANT,    /* all equal */
    CAT_ONE_NONZERO, /* a single non-zero element */
    CAT_OUTLIER,     /* noise plus one element 100-10^4 times larger */
    CAT_TINY,        /* 1e-38 .. 1e-30, and subnormals */
    CAT_SUBNORMAL,   /* only subnormals and zeros */
    CAT_HUGE,        /* 1e30 .. FLT_MAX */
    CAT_ALTERNATING, /* +c, -c, +c ... */
    CAT_POSITIVE,    /* all positive (the min clamp of asymmetric types) */
    CAT_NEGATIVE,    /* all negative */
    CAT_TIES,        /* half-integers on the quantization grid: rounding ties */
    CAT_COSINE,      /* ggml's test pattern 0.1 + 2 cos(i + offset) */
    CAT_LEVELS,      /* a few distinct values */
    CAT_SUBBLOCKS,   /* sub-blocks of very different magnitudes (zero 6-bit sub-scales) */
    CAT_ANY_BITS,    /* random finite bit patterns */
    CAT_HALF_VALUES, /* values exactly representable in f16 / bf16 (real checkpoints) */
    CAT_SPARSE,      /* mostly zeros */
    N_CATS
};

static const char *CAT_NAMES[N_CATS] = {
    "gauss",     "uniform",   "zero",        "constant",    "one-nonzero", "outlier", "tiny",
    "subnormal", "huge",      "alternating", "positive",    "negative",    "ties",    "cosine",
    "levels",    "subblocks", "any-bits",    "half-values", "sparse",
};

static float subnormal_or_zero(void)
{
    uint32_t u = (uint32_t)(rng_next() & 0x007fffffu) >> rng_below(23);
    if (rng_below(2))
        u |= 0x80000000u;
    return bits_f32(u);
}

static void gen_block(int cat, float *x, int n)
{
    switch (cat) {
    case CAT_GAUSS: {
        const float s = pow10f_int((int)rng_below(17) - 8) * (0.5f + rng_unit());
        for (int i = 0; i < n; i++)
            x[i] = rng_gauss() * s;
        break;
    }
    case CAT_UNIFORM:
        for (int i = 0; i < n; i++)
            x[i] = rng_sym();
        break;
    case CAT_ZERO:
        for (int i = 0; i < n; i++)
            x[i] = rng_below(4) == 0 ? -0.0f : 0.0f;
        break;
    case CAT_CONSTANT: {
        float c =
            rng_below(3) == 0 ? rng_any_finite() : rng_gauss() * pow10f_int((int)rng_below(9) - 4);
        for (int i = 0; i < n; i++)
            x[i] = c;
        break;
    }
    case CAT_ONE_NONZERO: {
        for (int i = 0; i < n; i++)
            x[i] = 0.0f;
        x[rng_below((uint32_t)n)] = rng_gauss() * pow10f_int((int)rng_below(13) - 6);
        break;
    }
    case CAT_OUTLIER: {
        for (int i = 0; i < n; i++)
            x[i] = rng_gauss() * 0.02f;
        x[rng_below((uint32_t)n)] =
            (rng_below(2) ? 1.0f : -1.0f) * pow10f_int(2 + (int)rng_below(3)) * 0.02f;
        break;
    }
    case CAT_TINY:
        for (int i = 0; i < n; i++)
            x[i] = rng_below(4) == 0 ? subnormal_or_zero()
                                     : rng_gauss() * pow10f_int(-30 - (int)rng_below(9));
        break;
    case CAT_SUBNORMAL:
        for (int i = 0; i < n; i++)
            x[i] = subnormal_or_zero();
        break;
    case CAT_HUGE:
        for (int i = 0; i < n; i++) {
            float v = rng_below(5) == 0 ? 3.4028235e38f * (0.5f + 0.5f * rng_unit())
                                        : rng_gauss() * pow10f_int(30 + (int)rng_below(8));
            x[i] = rng_below(2) ? v : -v;
        }
        break;
    case CAT_ALTERNATING: {
        const float c = rng_unit() + 0.01f;
        for (int i = 0; i < n; i++)
            x[i] = (i & 1) ? -c : c;
        break;
    }
    case CAT_POSITIVE:
        for (int i = 0; i < n; i++)
            x[i] = fabsf(rng_gauss()) + 0.5f + rng_unit();
        break;
    case CAT_NEGATIVE:
        for (int i = 0; i < n; i++)
            x[i] = -(fabsf(rng_gauss()) + 0.5f + rng_unit());
        break;
    case CAT_TIES: {
        /* integers and half-integers up to the range of a type, scaled by a power of two (exact),
         * with the extreme pinned so that the scale is a power of two too */
        static const int RANGES[] = {3, 4, 7, 8, 15, 16, 31, 32, 63, 127};
        const int r = RANGES[rng_below(sizeof RANGES / sizeof RANGES[0])];
        const float p = ldexpf(1.0f, (int)rng_below(21) - 10);
        for (int i = 0; i < n; i++) {
            float v = (float)((int)rng_below((uint32_t)(2 * r + 1)) - r);
            if (rng_below(2))
                v += v < 0 ? -0.5f : 0.5f;
            x[i] = v * p;
        }
        x[rng_below((uint32_t)n)] = (rng_below(2) ? (float)r : -(float)r) * p;
        break;
    }
    case CAT_COSINE: {
        const float off = (float)rng_below(1000);
        for (int i = 0; i < n; i++)
            x[i] = 0.1f + 2.0f * cosf((float)i + off);
        break;
    }
    case CAT_LEVELS: {
        float lv[3] = {rng_gauss(), rng_gauss(), rng_gauss()};
        for (int i = 0; i < n; i++)
            x[i] = lv[rng_below(3)];
        break;
    }
    case CAT_SUBBLOCKS: {
        const int sub = rng_below(2) ? 16 : 32;
        for (int s = 0; s < n; s += sub) {
            const uint32_t kind = rng_below(4);
            const float mag = kind == 0 ? 0.0f : kind == 1 ? 1e-6f : kind == 2 ? 1e-3f : 1.0f;
            for (int i = s; i < s + sub && i < n; i++)
                x[i] = rng_gauss() * mag;
        }
        break;
    }
    case CAT_ANY_BITS:
        for (int i = 0; i < n; i++)
            x[i] = rng_any_finite();
        break;
    case CAT_HALF_VALUES:
        for (int i = 0; i < n; i++) {
            uint32_t u = f32_bits(rng_gauss() * 0.05f);
            x[i] = bits_f32(rng_below(2) ? (u & 0xffff0000u) : (u & 0xffffe000u));
        }
        break;
    case CAT_SPARSE:
        for (int i = 0; i < n; i++)
            x[i] = rng_below(10) == 0 ? rng_gauss() : 0.0f;
        break;
    }
}

/* Importance weights: positive, wide dynamic range, sometimes zeros or constant. */
static void gen_weights(float *w, int64_t n)
{
    const uint32_t kind = rng_below(6);
    for (int64_t i = 0; i < n; i++) {
        switch (kind) {
        case 0: w[i] = 1.0f; break;
        case 1: w[i] = rng_below(4) == 0 ? 0.0f : expf(rng_gauss() * 2.0f); break;
        case 2: w[i] = expf(rng_gauss() * 4.0f); break;
        case 3: w[i] = rng_unit() * 1e-3f; break;
        case 4: w[i] = (i / 16) % 3 == 0 ? 0.0f : rng_unit() * 100.0f; break;
        default: w[i] = rng_unit(); break;
        }
    }
}

/* ---------------------------------------------------------------- comparison and reporting */

static int failures;

static void hexdump(const char *label, const uint8_t *p, size_t n)
{
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%02x", i % 32 == 0 ? "\n    " : " ", p[i]);
    fprintf(stderr, "\n");
}

static void report_bytes(const qtype *t, const char *what, const int *cats, const uint8_t *mine,
                         const uint8_t *ref, size_t nblocks, size_t bsize, const float *x, int qk)
{
    for (size_t b = 0; b < nblocks; b++) {
        if (memcmp(mine + b * bsize, ref + b * bsize, bsize) == 0)
            continue;
        failures++;
        if (failures > 5)
            return;
        size_t off = 0;
        while (mine[b * bsize + off] == ref[b * bsize + off])
            off++;
        fprintf(stderr, "quant_oracle: %s %s: block %zu (%s input) differs from ggml at byte %zu\n",
                t->name, what, b, cats ? CAT_NAMES[cats[b]] : "real-tensor", off);
        fprintf(stderr, "  input:");
        for (int i = 0; i < qk; i++)
            fprintf(stderr, "%s%a", i % 8 == 0 ? "\n    " : " ",
                    (double)x[b * (size_t)qk + (size_t)i]);
        fprintf(stderr, "\n");
        hexdump("rosetta", mine + b * bsize, bsize);
        hexdump("ggml   ", ref + b * bsize, bsize);
    }
}

static size_t compare_floats(const char *name, const char *what, const float *mine,
                             const float *ref, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (f32_bits(mine[i]) == f32_bits(ref[i]))
            continue;
        bad++;
        failures++;
        if (failures <= 5)
            fprintf(stderr, "quant_oracle: %s %s: element %zu: rosetta %08x (%a), ggml %08x (%a)\n",
                    name, what, i, f32_bits(mine[i]), (double)mine[i], f32_bits(ref[i]),
                    (double)ref[i]);
    }
    return bad;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "quant_oracle: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

/* ---------------------------------------------------------------- one type */

typedef struct counts {
    long quant_blocks;      /* reference path, bytes compared */
    long ref_direct_blocks; /* also compared with quantize_row_<t>_ref directly */
    long imatrix_blocks;
    long dequant_blocks; /* ggml-produced blocks dequantized by both */
    long random_blocks;  /* random-byte blocks dequantized by both */
} counts;

/* ggml's reference quantizer and dequantizer of a type (dequantizer NULL when ggml has none). */
static void ggml_functions(const qtype *t, quant_fn *quant, dequant_fn *dequant)
{
    const struct ggml_type_traits *tr = ggml_get_type_traits(t->gtype);
    *quant = tr->from_float_ref;
    *dequant = tr->to_float;
    if (t->gtype == GGML_TYPE_Q8_K) {
        *quant = ggml_q8_K_quantize;
        *dequant = ggml_q8_K_dequantize;
    }
}

static void run_type(const qtype *t, double scale, counts *c)
{
    const struct ggml_type_traits *tr = ggml_get_type_traits(t->gtype);
    const int qk = (int)tr->blck_size;
    const size_t bsize = tr->type_size;
    quant_fn ggml_ref;
    dequant_fn ggml_dequant;
    ggml_functions(t, &ggml_ref, &ggml_dequant);
    const long target = (long)(t->blocks * scale);
    const long im_target = (long)(t->imatrix_blocks * scale);
    enum { MAX_ROW_BLOCKS = 8, BATCH_ROWS = 16 };
    const size_t max_blocks = (size_t)MAX_ROW_BLOCKS * BATCH_ROWS;
    float *x = xmalloc(max_blocks * (size_t)qk * sizeof(float));
    float *w = xmalloc((size_t)MAX_ROW_BLOCKS * (size_t)qk * sizeof(float));
    uint8_t *mine = xmalloc(max_blocks * bsize);
    uint8_t *ref = xmalloc(max_blocks * bsize);
    uint8_t *ref2 = xmalloc(max_blocks * bsize);
    float *ymine = xmalloc(max_blocks * (size_t)qk * sizeof(float));
    float *yref = xmalloc(max_blocks * (size_t)qk * sizeof(float));
    int *cats = xmalloc(max_blocks * sizeof(int));
    memset(c, 0, sizeof *c);

    for (int pass = 0; pass < 2; pass++) {
        const bool weighted = pass == 1;
        if (weighted && (!t->rk_imatrix || im_target == 0))
            break;
        long done = 0;
        const long goal = weighted ? im_target : target;
        long batch = 0;
        while (done < goal) {
            const int row_blocks = 1 + (int)rng_below(MAX_ROW_BLOCKS);
            const int rows = 1 + (int)rng_below(BATCH_ROWS);
            const int64_t n_per_row = (int64_t)row_blocks * qk;
            const size_t nb = (size_t)row_blocks * (size_t)rows;
            for (size_t b = 0; b < nb; b++) {
                /* cycle through the categories so each gets its share, mixed within rows */
                cats[b] = (int)((batch * 7 + (long)b) % N_CATS);
                if (rng_below(3) == 0)
                    cats[b] = (int)rng_below(N_CATS);
                gen_block(cats[b], x + b * (size_t)qk, qk);
            }
            memset(mine, 0xA5, nb * bsize);
            memset(ref, 0, nb * bsize);
            if (weighted) {
                gen_weights(w, n_per_row);
                t->rk_imatrix(x, mine, rows, n_per_row, w);
                ggml_quantize_chunk(t->gtype, x, ref, 0, rows, n_per_row, w);
                report_bytes(t, "imatrix quantize", cats, mine, ref, nb, bsize, x, qk);
                c->imatrix_blocks += (long)nb;
            } else {
                t->rk_quant(x, mine, (int64_t)nb * qk);
                if (t->chunk)
                    ggml_quantize_chunk(t->gtype, x, ref, 0, rows, n_per_row, NULL);
                else
                    ggml_ref(x, ref, (int64_t)nb * qk);
                report_bytes(t, "quantize", cats, mine, ref, nb, bsize, x, qk);
                c->quant_blocks += (long)nb;
                /* the direct reference function equals the chunk path (iq4_nl excepted, see
                 * quant_ref.h) */
                if (t->chunk && t->gtype != GGML_TYPE_IQ4_NL && batch % 8 == 0) {
                    memset(ref2, 0, nb * bsize);
                    ggml_ref(x, ref2, (int64_t)nb * qk);
                    report_bytes(t, "quantize (quantize_row_ref)", cats, mine, ref2, nb, bsize, x,
                                 qk);
                    c->ref_direct_blocks += (long)nb;
                }
            }
            /* dequantize ggml's blocks with both */
            if (ggml_dequant) {
                t->rk_dequant(ref, ymine, (int64_t)nb * qk);
                ggml_dequant(ref, yref, (int64_t)nb * qk);
                compare_floats(t->name, "dequantize", ymine, yref, nb * (size_t)qk);
                c->dequant_blocks += (long)nb;
                /* and the same number of random-byte blocks (any scale bits: NaN, Inf, subnormal)
                 */
                if (!weighted) {
                    for (size_t i = 0; i < nb * bsize; i++)
                        ref2[i] = (uint8_t)rng_next();
                    t->rk_dequant(ref2, ymine, (int64_t)nb * qk);
                    ggml_dequant(ref2, yref, (int64_t)nb * qk);
                    compare_floats(t->name, "dequantize random bytes", ymine, yref,
                                   nb * (size_t)qk);
                    c->random_blocks += (long)nb;
                }
            }
            done += (long)nb;
            batch++;
        }
    }
    free(x);
    free(w);
    free(mine);
    free(ref);
    free(ref2);
    free(ymine);
    free(yref);
    free(cats);
}

/* ---------------------------------------------------------------- f16 / bf16 */

static void run_half(double scale)
{
    /* f16 -> f32: all 65536 inputs */
    uint16_t *h = xmalloc(65536 * sizeof(uint16_t));
    float *a = xmalloc(65536 * sizeof(float));
    float *b = xmalloc(65536 * sizeof(float));
    uint8_t *hb = xmalloc(65536 * 2);
    for (uint32_t i = 0; i < 65536; i++) {
        h[i] = (uint16_t)i;
        hb[2 * i] = (uint8_t)(i & 0xff);
        hb[2 * i + 1] = (uint8_t)(i >> 8);
    }
    rk_dequantize_row_f16_ref(hb, a, 65536);
    ggml_fp16_to_fp32_row((const ggml_fp16_t *)h, b, 65536);
    compare_floats("f16", "dequantize", a, b, 65536);
    rk_dequantize_row_bf16_ref(hb, a, 65536);
    ggml_bf16_to_fp32_row((const ggml_bf16_t *)h, b, 65536);
    compare_floats("bf16", "dequantize", a, b, 65536);

    /* f32 -> f16 / bf16: every float whose bit pattern is a multiple of `stride`, plus the
     * neighbourhoods of the f16 / bf16 rounding boundaries */
    const uint32_t stride = scale >= 4.0 ? 1u : 97u;
    enum { CH = 65536 };
    float *xs = xmalloc(CH * sizeof(float));
    uint8_t *m16 = xmalloc(CH * 2);
    uint16_t *r16 = xmalloc(CH * sizeof(uint16_t));
    long n_f16 = 0, bad = 0;
    uint64_t u = 0;
    int filled = 0;
    for (;;) {
        bool last = u > 0xffffffffull;
        if (!last) {
            xs[filled++] = bits_f32((uint32_t)u);
            /* also the patterns around each f16 and bf16 halfway point */
            if ((u & 0x0fffu) == 0 && filled + 6 <= CH) {
                uint32_t base = (uint32_t)u;
                xs[filled++] = bits_f32(base | 0x0fffu);
                xs[filled++] = bits_f32(base | 0x1000u);
                xs[filled++] = bits_f32(base | 0x1001u);
                xs[filled++] = bits_f32(base | 0x7fffu);
                xs[filled++] = bits_f32(base | 0x8000u);
                xs[filled++] = bits_f32(base | 0x8001u);
            }
            u += stride;
        }
        if (filled >= CH - 8 || (last && filled > 0)) {
            rk_quantize_row_f16_ref(xs, m16, filled);
            ggml_fp32_to_fp16_row(xs, (ggml_fp16_t *)r16, filled);
            for (int i = 0; i < filled; i++)
                if ((uint16_t)(m16[2 * i] | (m16[2 * i + 1] << 8)) != r16[i] && ++bad <= 5)
                    fprintf(stderr, "quant_oracle: f16 quantize of %08x: rosetta %04x ggml %04x\n",
                            f32_bits(xs[i]), m16[2 * i] | (m16[2 * i + 1] << 8), r16[i]);
            rk_quantize_row_bf16_ref(xs, m16, filled);
            ggml_fp32_to_bf16_row_ref(xs, (ggml_bf16_t *)r16, filled);
            for (int i = 0; i < filled; i++)
                if ((uint16_t)(m16[2 * i] | (m16[2 * i + 1] << 8)) != r16[i] && ++bad <= 5)
                    fprintf(stderr, "quant_oracle: bf16 quantize of %08x: rosetta %04x ggml %04x\n",
                            f32_bits(xs[i]), m16[2 * i] | (m16[2 * i + 1] << 8), r16[i]);
            n_f16 += filled;
            filled = 0;
        }
        if (last)
            break;
    }
    failures += (int)bad;
    printf("quant_oracle: f16/bf16: 65536 f16 and 65536 bf16 patterns dequantized bit-identical; "
           "%ld f32 patterns "
           "converted to f16 and bf16 %s\n",
           n_f16, bad ? "WITH MISMATCHES" : "identically");
    free(h);
    free(a);
    free(b);
    free(hb);
    free(xs);
    free(m16);
    free(r16);
}

/* Tensors of a real checkpoint, quantized whole (rows x cols, as llama-quantize passes them).
 * The file holds records written by quant_oracle.sh: u32 rows, u32 cols, then rows * cols f32,
 * all little-endian. Returns the number of blocks quantized by both sides. */
static long run_real(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "quant_oracle: cannot open %s\n", path);
        failures++;
        return 0;
    }
    long quant[N_TYPES] = {0}, weighted[N_TYPES] = {0}, dequant[N_TYPES] = {0};
    int n_tensors = 0, bad_before = failures;
    uint32_t hdr[2];
    while (fread(hdr, sizeof hdr[0], 2, f) == 2) {
        const size_t rows = hdr[0], cols = hdr[1], n = rows * cols;
        if (rows == 0 || cols == 0 || n > ((size_t)1 << 26)) {
            fprintf(stderr, "quant_oracle: %s: record %d: bad shape %zu x %zu\n", path, n_tensors,
                    rows, cols);
            failures++;
            break;
        }
        float *x = xmalloc(n * sizeof(float));
        if (fread(x, sizeof(float), n, f) != n) {
            fprintf(stderr, "quant_oracle: %s: record %d truncated\n", path, n_tensors);
            failures++;
            free(x);
            break;
        }
        float *w = xmalloc(cols * sizeof(float));
        gen_weights(w, (int64_t)cols);
        for (size_t i = 0; i < N_TYPES; i++) {
            const qtype *t = &TYPES[i];
            const struct ggml_type_traits *tr = ggml_get_type_traits(t->gtype);
            const size_t qk = (size_t)tr->blck_size, bsize = tr->type_size;
            if (cols % qk != 0)
                continue;
            quant_fn ggml_ref;
            dequant_fn ggml_dequant;
            ggml_functions(t, &ggml_ref, &ggml_dequant);
            const size_t nb = n / qk;
            uint8_t *mine = xmalloc(nb * bsize), *ref = xmalloc(nb * bsize);
            memset(ref, 0, nb * bsize);
            t->rk_quant(x, mine, (int64_t)n);
            if (t->chunk)
                ggml_quantize_chunk(t->gtype, x, ref, 0, (int64_t)rows, (int64_t)cols, NULL);
            else
                ggml_ref(x, ref, (int64_t)n);
            report_bytes(t, "quantize (real tensor)", NULL, mine, ref, nb, bsize, x, (int)qk);
            quant[i] += (long)nb;
            if (ggml_dequant) {
                float *ym = xmalloc(n * sizeof(float)), *yr = xmalloc(n * sizeof(float));
                t->rk_dequant(ref, ym, (int64_t)n);
                ggml_dequant(ref, yr, (int64_t)n);
                compare_floats(t->name, "dequantize (real tensor)", ym, yr, n);
                dequant[i] += (long)nb;
                free(ym);
                free(yr);
            }
            if (t->rk_imatrix) {
                memset(ref, 0, nb * bsize);
                t->rk_imatrix(x, mine, (int64_t)rows, (int64_t)cols, w);
                ggml_quantize_chunk(t->gtype, x, ref, 0, (int64_t)rows, (int64_t)cols, w);
                report_bytes(t, "imatrix quantize (real tensor)", NULL, mine, ref, nb, bsize, x,
                             (int)qk);
                weighted[i] += (long)nb;
            }
            free(mine);
            free(ref);
        }
        free(x);
        free(w);
        n_tensors++;
    }
    fclose(f);
    long total = 0;
    for (size_t i = 0; i < N_TYPES; i++) {
        total += quant[i] + weighted[i];
        printf(
            "quant_oracle: %-6s real tensors: quantize %ld blocks, imatrix %ld, dequantize %ld\n",
            TYPES[i].name, quant[i], weighted[i], dequant[i]);
    }
    printf("quant_oracle: %d tensors of %s: %s\n", n_tensors, path,
           failures == bad_before ? "identical" : "MISMATCH");
    return total;
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    uint64_t seed = 20240611;
    const char *real = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
            scale = atof(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--real") == 0 && i + 1 < argc)
            real = argv[++i];
        else {
            fprintf(stderr, "usage: quant_oracle [--scale F] [--seed N] [--real FILE]\n");
            return 2;
        }
    }
    if (!(scale > 0.0)) {
        fprintf(stderr, "quant_oracle: --scale must be > 0\n");
        return 2;
    }
    rng_state = seed;
    long total = 0;
    for (size_t i = 0; i < N_TYPES; i++) {
        counts c;
        const clock_t t0 = clock();
        const int before = failures;
        run_type(&TYPES[i], scale, &c);
        total += c.quant_blocks + c.imatrix_blocks;
        const qtype *t = &TYPES[i];
        char ref_note[96] = "", im_note[64] = "", dq_note[128];
        if (t->chunk && c.ref_direct_blocks > 0)
            snprintf(ref_note, sizeof ref_note, ", %ld of them also vs quantize_row_%s_ref",
                     c.ref_direct_blocks, t->name);
        if (c.imatrix_blocks > 0)
            snprintf(im_note, sizeof im_note, "; imatrix %ld blocks", c.imatrix_blocks);
        if (c.dequant_blocks > 0)
            snprintf(dq_note, sizeof dq_note, "dequantize %ld quantized + %ld random-byte blocks",
                     c.dequant_blocks, c.random_blocks);
        else
            snprintf(dq_note, sizeof dq_note, "no ggml dequantizer to compare");
        printf("quant_oracle: %-6s %s: quantize %ld blocks vs %s%s%s; %s (%.1f s)\n", t->name,
               failures == before ? "identical" : "MISMATCH", c.quant_blocks,
               t->chunk ? "ggml_quantize_chunk" : "quantize_row_ref", ref_note, im_note, dq_note,
               (double)(clock() - t0) / CLOCKS_PER_SEC);
        fflush(stdout);
    }
    if (real)
        total += run_real(real);
    run_half(scale);
    printf("quant_oracle: %ld blocks quantized by both, %s\n", total,
           failures ? "MISMATCHES FOUND" : "all bytes identical");
    return failures ? 1 : 0;
}
