/* The dtype table: membership, ggml block sizes from docs/formats/gguf.md, per-format codes,
 * byte-size arithmetic and its overflow checks. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "rosetta/dtype.h"
#include "rosetta/quant.h"

Test(dtype, table_membership)
{
    int members = 0;
    for (int v = -5; v < 300; v++) {
        bool valid = rf_dtype_valid(v);
        const rf_dtype_info *info = rf_dtype_get((rf_dtype)v);
        cr_assert_eq(valid, info != NULL, "value %d: valid says %d, table says %d", v, valid,
                     info != NULL);
        if (info) {
            members++;
            cr_assert_eq((int)info->dtype, v);
            rf_dtype back;
            cr_assert(rf_dtype_from_name(info->name, &back) && back == info->dtype);
        }
    }
    cr_assert_eq(members, 51, "number of dtypes: %d", members);
}

Test(dtype, ggml_sizes_match_spec)
{
    /* docs/formats/gguf.md: code, block elements, bytes per block */
    static const int expect[][3] = {
        {0, 1, 4},      {1, 1, 2},      {2, 32, 18},    {3, 32, 20},    {6, 32, 22},
        {7, 32, 24},    {8, 32, 34},    {9, 32, 36},    {10, 256, 84},  {11, 256, 110},
        {12, 256, 144}, {13, 256, 176}, {14, 256, 210}, {15, 256, 292}, {16, 256, 66},
        {17, 256, 74},  {18, 256, 98},  {19, 256, 50},  {20, 32, 18},   {21, 256, 110},
        {22, 256, 82},  {23, 256, 136}, {24, 1, 1},     {25, 1, 2},     {26, 1, 4},
        {27, 1, 8},     {28, 1, 8},     {29, 256, 56},  {30, 1, 2},     {34, 256, 54},
        {35, 256, 66},  {39, 32, 17},   {40, 64, 36},   {41, 128, 18},  {42, 64, 18},
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        rf_dtype d;
        cr_assert(rf_dtype_from_ggml((uint32_t)expect[i][0], &d), "ggml code %d", expect[i][0]);
        const rf_dtype_info *info = rf_dtype_get(d);
        cr_assert_eq(info->block_elems, (uint32_t)expect[i][1], "%s block elems", info->name);
        cr_assert_eq(info->block_bytes, (uint32_t)expect[i][2], "%s block bytes", info->name);
    }
    static const uint32_t removed[] = {4, 5, 31, 32, 33, 36, 37, 38, 43, 100};
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++) {
        rf_dtype d;
        cr_assert(!rf_dtype_from_ggml(removed[i], &d), "ggml code %u must be rejected", removed[i]);
    }
}

Test(dtype, apr_codes)
{
    static const struct {
        uint32_t code;
        rf_dtype dtype;
    } expect[] = {
        {0, RF_DTYPE_F32},      {1, RF_DTYPE_F16},      {3, RF_DTYPE_F64},   {4, RF_DTYPE_I32},
        {5, RF_DTYPE_I64},      {6, RF_DTYPE_I8},       {7, RF_DTYPE_U8},    {8, RF_DTYPE_APR_Q4},
        {9, RF_DTYPE_APR_Q8},   {12, RF_DTYPE_Q4_K},    {14, RF_DTYPE_Q6_K}, {30, RF_DTYPE_BF16},
        {128, RF_DTYPE_APR_Q4}, {129, RF_DTYPE_APR_Q8},
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        rf_dtype d;
        cr_assert(rf_dtype_from_apr(expect[i].code, &d), "apr code %u", expect[i].code);
        cr_assert_eq(d, expect[i].dtype, "apr code %u", expect[i].code);
    }
    static const uint32_t bad[] = {2, 10, 11, 13, 15, 16, 31, 127, 130, 255};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rf_dtype d;
        cr_assert(!rf_dtype_from_apr(bad[i], &d), "apr code %u must be unknown", bad[i]);
    }
    cr_assert_eq(rf_dtype_get(RF_DTYPE_Q8_0)->apr_code, -1, "APR cannot hold Q8_0");
}

Test(dtype, safetensors_names)
{
    static const char *names[] = {
        "BOOL",    "F4",          "F6_E2M3",     "F6_E3M2", "U8",  "I8",  "F8_E5M2", "F8_E4M3",
        "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16",     "U16", "F16", "BF16",    "I32",
        "U32",     "F32",         "C64",         "F64",     "I64", "U64"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        rf_dtype d;
        cr_assert(rf_dtype_from_st(names[i], &d), "%s", names[i]);
        cr_assert_str_eq(rf_dtype_get(d)->st_name, names[i]);
    }
    rf_dtype d;
    cr_assert(!rf_dtype_from_st("f32", &d), "SafeTensors dtype strings are case-sensitive");
    cr_assert(!rf_dtype_from_st("Q4_K", &d));
}

Test(dtype, tensor_bytes)
{
    rf_error err;
    uint64_t n;
    uint64_t q[2] = {896, 4864};
    cr_assert_eq(rf_dtype_tensor_bytes(RF_DTYPE_Q4_K, q, 2, &n, &err), RF_OK);
    cr_assert_eq(n, 896ull * 4864 / 256 * 144);
    uint64_t odd[2] = {4, 160};
    cr_assert_eq(rf_dtype_tensor_bytes(RF_DTYPE_Q4_K, odd, 2, &n, &err), RF_ERR_FORMAT);
    cr_assert(strstr(err.message, "160") != NULL, "message names the dimension: %s", err.message);
    cr_assert_eq(rf_dtype_tensor_bytes(RF_DTYPE_Q8_0, odd, 2, &n, &err), RF_OK);
    cr_assert_eq(n, 4ull * 5 * 34);
    uint64_t big[3] = {1ull << 32, 1ull << 32, 2};
    cr_assert_eq(rf_dtype_tensor_bytes(RF_DTYPE_F32, big, 3, &n, &err), RF_ERR_OVERFLOW);
    uint64_t big2[1] = {1ull << 62};
    cr_assert_eq(rf_dtype_tensor_bytes(RF_DTYPE_F32, big2, 1, &n, &err), RF_ERR_OVERFLOW);
    cr_assert_eq(rf_dtype_tensor_bytes(RF_DTYPE_F32, NULL, 0, &n, &err), RF_OK);
    cr_assert_eq(n, 4, "a scalar has one element");
    cr_assert_eq(rf_dtype_flat_bytes(RF_DTYPE_APR_Q4, 33, &n, &err), RF_OK);
    cr_assert_eq(n, 36, "APR_Q4 rounds its last block up");
    cr_assert_eq(rf_dtype_flat_bytes(RF_DTYPE_APR_Q8, 10, &n, &err), RF_OK);
    cr_assert_eq(n, 14);
    cr_assert_eq(rf_dtype_flat_bytes(RF_DTYPE_APR_Q8, 0, &n, &err), RF_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(rf_dtype_flat_bytes(RF_DTYPE_F4, 3, &n, &err), RF_ERR_FORMAT);
    cr_assert_eq(rf_dtype_flat_bytes(RF_DTYPE_F6_E2M3, 8, &n, &err), RF_OK);
    cr_assert_eq(n, 6);
    cr_assert_eq(rf_dtype_flat_bytes((rf_dtype)4, 8, &n, &err), RF_ERR_UNSUPPORTED);
}

/* The table is indexed by the enum, and what Rosetta can do with a type and what each format
 * holds come from its entries: the capability flags agree with the quantize/dequantize API, and
 * a format holds exactly the types it has a code for. */
Test(dtype, one_table_drives_capabilities_and_formats)
{
    for (int v = 0; v < 256; v++) {
        const rf_dtype_info *info = rf_dtype_get((rf_dtype)v);
        if (!info) {
            cr_assert(!rf_format_holds(RF_FORMAT_GGUF, (rf_dtype)v));
            cr_assert(!rf_can_dequantize((rf_dtype)v) && !rf_can_quantize((rf_dtype)v));
            continue;
        }
        cr_assert_eq((int)info->dtype, v, "entry %d is indexed by its dtype", v);
        cr_assert_eq(rf_can_dequantize(info->dtype), (info->flags & RF_DTYPE_CAN_DEQUANTIZE) != 0,
                     "%s", info->name);
        cr_assert_eq(rf_can_quantize(info->dtype), (info->flags & RF_DTYPE_CAN_QUANTIZE) != 0, "%s",
                     info->name);
        cr_assert_eq(rf_format_holds(RF_FORMAT_GGUF, info->dtype), info->ggml_code >= 0, "%s",
                     info->name);
        cr_assert_eq(rf_format_holds(RF_FORMAT_APR, info->dtype), info->apr_code >= 0, "%s",
                     info->name);
        cr_assert_eq(rf_format_holds(RF_FORMAT_SAFETENSORS_DIR, info->dtype), info->st_name != NULL,
                     "%s", info->name);
        cr_assert(!rf_format_holds(RF_FORMAT_UNKNOWN, info->dtype));
    }
    char buf[512];
    const unsigned fq = 1u << RF_KIND_FLOAT | 1u << RF_KIND_QUANT;
    cr_assert_str_eq(
        rf_format_held_types(RF_FORMAT_APR, fq, RF_DTYPE_CAN_QUANTIZE, buf, sizeof buf),
        "F32, F16, Q4_K, Q6_K, BF16, APR_Q4, APR_Q8");
    cr_assert_str_eq(
        rf_format_held_types(RF_FORMAT_SAFETENSORS, fq, RF_DTYPE_CAN_QUANTIZE, buf, sizeof buf),
        "F32, F16, BF16");
    cr_assert_str_eq(rf_format_held_types(RF_FORMAT_APR, 1u << RF_KIND_INT, 0, buf, sizeof buf),
                     "I8, I32, I64, U8");
    char small[12];
    cr_assert_str_eq(rf_format_held_types(RF_FORMAT_APR, fq, 0, small, sizeof small), "F32, F16",
                     "cut at a whole name");
}
