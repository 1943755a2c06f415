/* The dtype table: every element type Rosetta can meet in GGUF, SafeTensors or APR, with its block
 * geometry and its code in each format. One table describes a type (as ggml's type traits do);
 * every switch over rf_dtype lists all cases (compiled with -Wswitch-enum).
 * Not for: converting values (see half.h and quant.h). */
#ifndef ROSETTA_DTYPE_H
#define ROSETTA_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/detect.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values 0..42 equal the ggml_type codes (GGUF tensor type ids). Codes ggml removed (4, 5,
 * 31-33, 36-38) are not members: a file using them is rejected. Types that exist only in
 * SafeTensors or APR have values >= 64. */
typedef enum rf_dtype {
    RF_DTYPE_F32 = 0,
    RF_DTYPE_F16 = 1,
    RF_DTYPE_Q4_0 = 2,
    RF_DTYPE_Q4_1 = 3,
    RF_DTYPE_Q5_0 = 6,
    RF_DTYPE_Q5_1 = 7,
    RF_DTYPE_Q8_0 = 8,
    RF_DTYPE_Q8_1 = 9,
    RF_DTYPE_Q2_K = 10,
    RF_DTYPE_Q3_K = 11,
    RF_DTYPE_Q4_K = 12,
    RF_DTYPE_Q5_K = 13,
    RF_DTYPE_Q6_K = 14,
    RF_DTYPE_Q8_K = 15,
    RF_DTYPE_IQ2_XXS = 16,
    RF_DTYPE_IQ2_XS = 17,
    RF_DTYPE_IQ3_XXS = 18,
    RF_DTYPE_IQ1_S = 19,
    RF_DTYPE_IQ4_NL = 20,
    RF_DTYPE_IQ3_S = 21,
    RF_DTYPE_IQ2_S = 22,
    RF_DTYPE_IQ4_XS = 23,
    RF_DTYPE_I8 = 24,
    RF_DTYPE_I16 = 25,
    RF_DTYPE_I32 = 26,
    RF_DTYPE_I64 = 27,
    RF_DTYPE_F64 = 28,
    RF_DTYPE_IQ1_M = 29,
    RF_DTYPE_BF16 = 30,
    RF_DTYPE_TQ1_0 = 34,
    RF_DTYPE_TQ2_0 = 35,
    RF_DTYPE_MXFP4 = 39,
    RF_DTYPE_NVFP4 = 40,
    RF_DTYPE_Q1_0 = 41,
    RF_DTYPE_Q2_0 = 42,
    /* not in ggml */
    RF_DTYPE_U8 = 64,
    RF_DTYPE_U16 = 65,
    RF_DTYPE_U32 = 66,
    RF_DTYPE_U64 = 67,
    RF_DTYPE_BOOL = 68,
    RF_DTYPE_C64 = 69,
    RF_DTYPE_F8_E5M2 = 70,
    RF_DTYPE_F8_E4M3 = 71,
    RF_DTYPE_F8_E8M0 = 72,
    RF_DTYPE_F8_E4M3FNUZ = 73,
    RF_DTYPE_F8_E5M2FNUZ = 74,
    RF_DTYPE_F6_E2M3 = 75,
    RF_DTYPE_F6_E3M2 = 76,
    RF_DTYPE_F4 = 77,
    RF_DTYPE_APR_Q4 = 128, /* aprender: f16 scale + 16 nibble bytes per 32 (partial last block) */
    RF_DTYPE_APR_Q8 = 129, /* aprender: one f32 scale per tensor + int8 values */
} rf_dtype;

/* What kind of values a dtype holds. */
typedef enum rf_dtype_kind {
    RF_KIND_FLOAT, /* IEEE-style floats stored per element */
    RF_KIND_INT,   /* integers (and BOOL) stored per element */
    RF_KIND_QUANT, /* blocks of quantized values with scales */
} rf_dtype_kind;

/* Capability flags of Rosetta for a dtype (derived from the kernels the table lists). */
enum {
    RF_DTYPE_CAN_DEQUANTIZE = 1u << 0, /* rf_dequantize turns it into F32 */
    RF_DTYPE_CAN_QUANTIZE = 1u << 1,   /* rf_quantize produces it from F32 */
};

typedef struct rf_dtype_info {
    rf_dtype dtype;
    const char *name; /* canonical upper-case name: "F32", "Q4_K", "APR_Q4" */
    rf_dtype_kind kind;
    uint32_t block_elems; /* elements per block (1 for plain types) */
    uint32_t block_bytes; /* bytes per block */
    int ggml_code;        /* GGUF tensor type id, -1 if none */
    int apr_code;         /* APR v2 dtype byte written, -1 if APR cannot hold it */
    const char *st_name;  /* SafeTensors dtype string, NULL if none */
    unsigned flags;       /* RF_DTYPE_CAN_* */
} rf_dtype_info;

/* Table entry of dtype, or NULL if dtype is not a member of rf_dtype. */
RF_API const rf_dtype_info *rf_dtype_get(rf_dtype dtype);

/* Canonical name, or "unknown" for a value that is not a member. */
RF_API const char *rf_dtype_name(rf_dtype dtype);

/* Whether value is a member of rf_dtype. */
RF_API bool rf_dtype_valid(int value);

/* Whether a file of format can hold tensors of dtype (GGUF: a ggml type code; APR: an APR dtype
 * code; SafeTensors file, directory or index: a SafeTensors dtype name), from the table. */
RF_API bool rf_format_holds(rf_format format, rf_dtype dtype);

/* "F32, F16, Q4_K, Q6_K, BF16, APR_Q4, APR_Q8": the dtypes of the given kinds (a mask of
 * 1u << RF_KIND_FLOAT / RF_KIND_INT / RF_KIND_QUANT) that format holds and that have all the
 * RF_DTYPE_CAN_* bits of flags (0: any), in the table's order, written to buf (cut at a whole
 * name when buf is too small). Returns buf. */
RF_API const char *rf_format_held_types(rf_format format, unsigned kinds, unsigned flags, char *buf,
                                        size_t size);

/* Lookups by each format's code or name; return false if there is no such dtype. Name lookup
 * is case-insensitive over canonical names ("q4_k", "BF16"). */
RF_API bool rf_dtype_from_ggml(uint32_t ggml_code, rf_dtype *out);
RF_API bool rf_dtype_from_apr(uint32_t apr_code, rf_dtype *out); /* accepts legacy 8/9 */
RF_API bool rf_dtype_from_st(const char *st_name, rf_dtype *out);
RF_API bool rf_dtype_from_name(const char *name, rf_dtype *out);

/* Bytes taken by n_elements of dtype laid out as one flat run (SafeTensors and APR view).
 * Block types need n_elements to be a multiple of the block (APR_Q4 rounds up its last block;
 * APR_Q8 is 4 + n bytes, 0 when empty). Fails with RF_ERR_FORMAT or RF_ERR_OVERFLOW. */
RF_API rf_status rf_dtype_flat_bytes(rf_dtype dtype, uint64_t n_elements, uint64_t *out,
                                     rf_error *err);

/* Bytes of a row-major tensor of this shape, with ggml's rule that blocks run along the inner
 * dimension (shape[ndim-1] must be a multiple of the block). ndim 0 is a scalar (1 element).
 * Fails with RF_ERR_FORMAT (bad block multiple) or RF_ERR_OVERFLOW. */
RF_API rf_status rf_dtype_tensor_bytes(rf_dtype dtype, const uint64_t *shape, int ndim,
                                       uint64_t *out, rf_error *err);

/* Product of the shape with overflow check (1 for ndim 0). */
RF_API rf_status rf_shape_elements(const uint64_t *shape, int ndim, uint64_t *out, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
