/* One quantized block decoded field by field: the byte layout (field names, offsets, sizes), the
 * block scales, the unpacked sub-block scales and mins, every element's quant and its
 * dequantized value. For forensic views (apr hex --blocks, the hex browser).
 * Not for: bulk dequantization (rf_dequantize in quant.h is faster and gives the same values,
 * bit for bit, which the unit tests check). Layouts: docs/formats/quantization.md. */
#ifndef ROSETTA_BLOCK_H
#define ROSETTA_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/dtype.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_BLOCK_MAX_ELEMS  256
#define RF_BLOCK_MAX_SUBS   16
#define RF_BLOCK_MAX_FIELDS 6

/* One field of the block's byte layout. */
typedef struct rf_block_field {
    const char *name;    /* "d", "dmin", "m", "scales", "qh", "qs", "hmask", "ql" */
    uint32_t offset;     /* byte offset inside the block */
    uint32_t size;       /* bytes */
    const char *meaning; /* one line: "f16 super-scale of the 6-bit scales" */
} rf_block_field;

typedef struct rf_block {
    rf_dtype dtype;
    uint32_t block_bytes; /* bytes of one block (18 for Q4_0 and APR_Q4, 144 for Q4_K ...) */
    uint32_t n_elems;     /* values decoded: the block size, or fewer for a partial APR_Q4 block */
    size_t n_fields;
    rf_block_field fields[RF_BLOCK_MAX_FIELDS];
    /* Block scale: d of the GGML types, the f16 scale of APR_Q4. */
    bool has_d;
    uint16_t d_bits; /* as stored (IEEE binary16) */
    float d;
    /* Second block constant: m of Q4_1 / Q5_1 (the block minimum, added), dmin of Q2_K / Q4_K /
     * Q5_K (the super-scale of the mins, subtracted). */
    bool has_dmin;
    uint16_t dmin_bits;
    float dmin;
    /* Sub-blocks with their own scale: 16 of 16 elements (Q2_K, Q3_K, Q6_K), 8 of 32 (Q4_K,
     * Q5_K); 0 for the 32-element types. Element e belongs to sub-block e / sub_elems. */
    uint32_t n_subs;
    uint32_t sub_elems;
    int32_t scales[RF_BLOCK_MAX_SUBS]; /* unpacked: Q2_K 0..15, Q3_K -32..31 (the stored 6 bits
                                          minus 32), Q4_K/Q5_K 0..63, Q6_K -128..127 */
    int32_t mins[RF_BLOCK_MAX_SUBS];   /* unpacked: Q2_K 0..15, Q4_K/Q5_K 0..63; else 0 */
    /* Quants: q[e] is element e's quant as stored, all its bits gathered (Q4_0 nibble 0..15,
     * Q5_0 0..31, Q8_0 -128..127, Q2_K 0..3, Q3_K 0..7 (high bit from hmask), Q6_K 0..63 ...);
     * the formula uses q[e] - q_offset. */
    uint32_t q_bits;  /* bits per quant (8 for Q8_0) */
    int32_t q_offset; /* Q4_0 8, Q5_0 16, Q3_K 4, Q6_K 32, APR_Q4 8; 0 for the others */
    int32_t q[RF_BLOCK_MAX_ELEMS];
    /* Dequantized values, computed from the fields above with ggml's operation order:
     *   Q4_0, Q5_0, APR_Q4:  (q - off) * d          Q4_1, Q5_1:  q * d + m
     *   Q8_0:  q * d                                Q3_K, Q6_K:  (d * scale) * (q - off)
     *   Q2_K, Q4_K, Q5_K:  (d * scale) * q - dmin * min                                    */
    float values[RF_BLOCK_MAX_ELEMS];
} rf_block;

/* Whether rf_block_decode handles dtype: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K,
 * Q6_K and APR_Q4. */
RF_API bool rf_block_supported(rf_dtype dtype);

/* Decodes one block of dtype from bytes[0..len). n_elems is the number of values the block
 * holds: 0 means a full block; only APR_Q4 accepts fewer (the last block of a tensor, 1..32).
 * len must be at least the block's size. Fails with RF_ERR_UNSUPPORTED for other dtypes (named
 * in the message) and RF_ERR_ARGUMENT for a short buffer or a bad n_elems. */
RF_API rf_status rf_block_decode(rf_dtype dtype, const uint8_t *bytes, size_t len, uint32_t n_elems,
                                 rf_block *out, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
