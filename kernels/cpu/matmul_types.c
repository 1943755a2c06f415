/* The matmul type table (rk_type_traits), row sizes, the argument checks of a weight matrix and
 * which types have the R16 layout: the facts every matmul file builds on, in their own file so
 * that calls between the matmul files go one way. Not for: computing anything (matmul.c). */
#include <stdbool.h>
#include <stddef.h>

#include "cpu/matmul.h"
#include "cpu/matmul_internal.h"
#include "cpu/quant_ref.h"

/* ---- types ---------------------------------------------------------------------------------- */

static const rk_type_traits TRAITS[] = {
    {RK_TYPE_F32, "F32", 1, 4, RK_TYPE_F32, true},
    {RK_TYPE_F16, "F16", 1, 2, RK_TYPE_F32, true},
    {RK_TYPE_Q4_0, "Q4_0", 32, 18, RK_TYPE_Q8_0, true},
    {RK_TYPE_Q4_1, "Q4_1", 32, 20, RK_TYPE_Q8_1, true},
    {RK_TYPE_Q5_0, "Q5_0", 32, 22, RK_TYPE_Q8_0, true},
    {RK_TYPE_Q5_1, "Q5_1", 32, 24, RK_TYPE_Q8_1, true},
    {RK_TYPE_Q8_0, "Q8_0", 32, 34, RK_TYPE_Q8_0, true},
    {RK_TYPE_Q8_1, "Q8_1", 32, 36, RK_TYPE_Q8_1, false},
    {RK_TYPE_Q2_K, "Q2_K", 256, 84, RK_TYPE_Q8_K, true},
    {RK_TYPE_Q3_K, "Q3_K", 256, 110, RK_TYPE_Q8_K, true},
    {RK_TYPE_Q4_K, "Q4_K", 256, 144, RK_TYPE_Q8_K, true},
    {RK_TYPE_Q5_K, "Q5_K", 256, 176, RK_TYPE_Q8_K, true},
    {RK_TYPE_Q6_K, "Q6_K", 256, 210, RK_TYPE_Q8_K, true},
    {RK_TYPE_Q8_K, "Q8_K", 256, 292, RK_TYPE_Q8_K, false},
    {RK_TYPE_BF16, "BF16", 1, 2, RK_TYPE_F32, true},
    {RK_TYPE_APR_Q4, "APR_Q4", 32, 18, RK_TYPE_Q8_0, true},
    {RK_TYPE_APR_Q8, "APR_Q8", 32, 32, RK_TYPE_Q8_0, true},
};

const rk_type_traits *rk_type_traits_get(rk_type type)
{
    for (size_t i = 0; i < sizeof TRAITS / sizeof TRAITS[0]; i++)
        if (TRAITS[i].type == type)
            return &TRAITS[i];
    return NULL;
}

size_t rk_row_bytes(rk_type type, int64_t k)
{
    const rk_type_traits *t = rk_type_traits_get(type);
    if (!t || k <= 0 || k % t->block_elems != 0)
        return 0;
    return (size_t)(k / t->block_elems) * t->block_bytes;
}

rk_type rk_act_type(rk_type weight_type)
{
    const rk_type_traits *t = rk_type_traits_get(weight_type);
    return t ? t->act_type : RK_TYPE_F32;
}

size_t rk_act_row_bytes(rk_type weight_type, int64_t k)
{
    const rk_type_traits *t = rk_type_traits_get(weight_type);
    if (!t || k <= 0 || k % t->block_elems != 0)
        return 0;
    const size_t blocks = rk_row_bytes(t->act_type, k);
    /* Q8_0 rows carry the int32 sum of every block after the blocks (matmul_internal.h) */
    return t->act_type == RK_TYPE_Q8_0 ? blocks + (size_t)(k / 32) * 4 : blocks;
}

int rk_matrix_check(const rk_matrix *w)
{
    if (!w || !w->data || w->n_rows < 1)
        return -1;
    const rk_type_traits *t = rk_type_traits_get(w->type);
    if (!t || !t->weight)
        return -1;
    const size_t row = rk_row_bytes(w->type, w->k);
    if (row == 0 || rk_act_row_bytes(w->type, w->k) == 0)
        return -1;
    switch (w->layout) {
    case RK_LAYOUT_ROWS: return w->row_stride < row ? -1 : 0;
    case RK_LAYOUT_R16: return rk_repack_supported(w->type) ? 0 : -1;
    }
    return -1;
}

bool rk_repack_supported(rk_type type)
{
    switch (type) {
    case RK_TYPE_Q4_0:
    case RK_TYPE_Q5_0:
    case RK_TYPE_Q8_0:
    case RK_TYPE_Q4_K:
    case RK_TYPE_Q5_K:
    case RK_TYPE_Q6_K: return true;
    case RK_TYPE_F32:
    case RK_TYPE_F16:
    case RK_TYPE_BF16:
    case RK_TYPE_Q4_1:
    case RK_TYPE_Q5_1:
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q2_K:
    case RK_TYPE_Q3_K:
    case RK_TYPE_Q8_K:
    case RK_TYPE_APR_Q4:
    case RK_TYPE_APR_Q8: return false;
    }
    return false;
}
