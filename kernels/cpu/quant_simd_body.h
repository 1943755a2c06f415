/* Bodies of the SIMD quantizers and dequantizers, written once over a VW-lane vector interface
 * (vf floats, vi int32, vm lane masks) that quant_avx2.c (VW 8) and quant_avx512.c (VW 16)
 * define before including this file. SIMD_FN(name) gives each variant its suffix.
 *
 * Why the bytes equal the scalar reference (kernels/cpu/quant_ref.c, docs/formats/quantization.md):
 * - Element-wise steps (scale, round, clamp, requantize) are the same IEEE operations, one
 *   lane per element; which element sits in which lane does not matter.
 * - Reductions with an order (sums in the K-quant searches) keep one sub-block per lane: lane
 *   j accumulates sub-block j element by element, in the reference's order. Sub-blocks are
 *   independent in make_qkx2_quants / make_qx_quants, so 8 or 16 of them run side by side.
 * - Branches become masks: C's `a > b` is the ordered comparison (false for NaN), `x < min ?
 *   x : min` is exactly MINPS, and lanes whose scalar code would return early are masked out.
 * - The only order-free reduction is the max of |x| (exact for inputs without NaN).
 * Blocks with a non-finite input, or whose inverse scale overflows, go to the reference kernel.
 * Not for: inclusion anywhere but the two SIMD translation units. */
#include <math.h>
#include <stddef.h>

#include "common/blocks.h"
#include "common/half.h"
#include "cpu/quant_dispatch.h"
#include "cpu/quant_ref.h"

#define NV32          (32 / VW) /* vectors per 32 elements */
#define NV16          (16 / VW) /* vectors per 16 elements */
#define GROUP_MAX_EPS 1e-15f

/* ---- scalar helpers (the reference's primitives) --------------------------------------------- */

static inline int nearest_int_1(float f)
{
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline void store_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline uint16_t load_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static inline int all_finite(const float *x, int n)
{
    vm bad = vf_nonfinite(vf_load(x));
    for (int i = VW; i < n; i += VW)
        bad = vm_or(bad, vf_nonfinite(vf_load(x + i)));
    return !vm_any(bad);
}

static inline vi vi_clamp(vi v, int lo, int hi)
{
    return vi_max(vi_set1(lo), vi_min(vi_set1(hi), v));
}

/* ---- make_qkx2_quants over VW sub-blocks (ggml-quants.c make_qkx2_quants) -------------------- */

/* Lane j works on the sub-block whose element i is xt[i*VW + j] with weight wt[i*VW + j].
 * Writes L (n*VW, 0..nmax), the scale and the_min of every lane (use_mad = false). */
static void qkx2_lanes(int n, int nmax, const float *xt, const float *wt, int32_t *L, int32_t *Laux,
                       float rmin, float rdelta, int nstep, vf *out_scale, vf *out_the_min)
{
    const vf zero = vf_zero();
    vf min = vf_load(xt), max = min;
    vf sum_w = vf_load(wt);
    vf sum_x = vf_mul(sum_w, min);
    for (int i = 1; i < n; i++) {
        vf x = vf_load(xt + i * VW), w = vf_load(wt + i * VW);
        min = vf_pick_less(x, min);
        max = vf_pick_greater(x, max);
        sum_w = vf_add(sum_w, w);
        sum_x = vf_add(sum_x, vf_mul(w, x));
    }
    min = vf_select(vf_gt(min, zero), zero, min);
    vm flat = vf_eq(max, min); /* the reference returns early for these lanes */
    vf iscale = vf_div(vf_set1((float)nmax), vf_sub(max, min));
    vf scale = vf_div(vf_set1(1.0f), iscale);
    vf best = zero;
    for (int i = 0; i < n; i++) {
        vf x = vf_load(xt + i * VW), w = vf_load(wt + i * VW);
        vi l = vi_clamp(vf_nearest_int(vf_mul(iscale, vf_sub(x, min))), 0, nmax);
        vi_store(L + i * VW, l);
        vf diff = vf_sub(vf_add(vf_mul(scale, vi_to_vf(l)), min), x);
        best = vf_add(best, vf_mul(w, vf_mul(diff, diff)));
    }
    for (int is = 0; is <= nstep; is++) {
        float num = rmin + rdelta * (float)is + (float)nmax;
        iscale = vf_div(vf_set1(num), vf_sub(max, min)); /* min moves with each better fit */
        vf sum_l = zero, sum_l2 = zero, sum_xl = zero;
        for (int i = 0; i < n; i++) {
            vf x = vf_load(xt + i * VW), w = vf_load(wt + i * VW);
            vi l = vi_clamp(vf_nearest_int(vf_mul(iscale, vf_sub(x, min))), 0, nmax);
            vi_store(Laux + i * VW, l);
            vf lf = vi_to_vf(l);
            vf wl = vf_mul(w, lf);
            sum_l = vf_add(sum_l, wl);
            sum_l2 = vf_add(sum_l2, vf_mul(wl, lf));
            sum_xl = vf_add(sum_xl, vf_mul(wl, x));
        }
        vf D = vf_sub(vf_mul(sum_w, sum_l2), vf_mul(sum_l, sum_l));
        vm ok = vm_andnot(vf_gt(D, zero), flat);
        if (!vm_any(ok))
            continue;
        vf this_scale = vf_div(vf_sub(vf_mul(sum_w, sum_xl), vf_mul(sum_x, sum_l)), D);
        vf this_min = vf_div(vf_sub(vf_mul(sum_l2, sum_x), vf_mul(sum_l, sum_xl)), D);
        vm pos = vf_gt(this_min, zero);
        this_min = vf_select(pos, zero, this_min);
        this_scale = vf_select(pos, vf_div(sum_xl, sum_l2), this_scale);
        vf cur = zero;
        for (int i = 0; i < n; i++) {
            vf x = vf_load(xt + i * VW), w = vf_load(wt + i * VW);
            vf lf = vi_to_vf(vi_load(Laux + i * VW));
            vf diff = vf_sub(vf_add(vf_mul(this_scale, lf), this_min), x);
            cur = vf_add(cur, vf_mul(w, vf_mul(diff, diff)));
        }
        vm better = vm_and(ok, vf_lt(cur, best));
        if (!vm_any(better))
            continue;
        for (int i = 0; i < n; i++)
            vi_store(L + i * VW, vi_select(better, vi_load(Laux + i * VW), vi_load(L + i * VW)));
        best = vf_select(better, cur, best);
        scale = vf_select(better, this_scale, scale);
        min = vf_select(better, this_min, min);
    }
    if (vm_any(flat))
        for (int i = 0; i < n; i++)
            vi_store(L + i * VW, vi_select(flat, vi_set1(0), vi_load(L + i * VW)));
    *out_scale = vf_select(flat, zero, scale);
    *out_the_min = vf_neg(min);
}

/* ---- ggml-quants.c make_qx_quants over 2*VW sub-blocks, rmse_type 1, no importance --------- */

/* Two vectors side by side (suffixes 0 and 1): each lane's sums form a chain of dependent
 * additions, and two independent chains keep the adder busy. Lane j (0 .. 2*VW-1) works on
 * the 16-element sub-block whose element i is xt[i*QX_LANES + j]; L gets l + nmax. */
#define QX_LANES (2 * VW)

/* One element of one trial: l = clamp(nearest_int(iscale * x)), sumlx += (w*x)*l,
 * suml2 += (w*l)*l. Returns l. */
static inline vi qx_step(vf iscale, vf x, vf w, vf wx, int nmax, vf *sumlx, vf *suml2)
{
    vi l = vi_clamp(vf_nearest_int(vf_mul(iscale, x)), -nmax, nmax - 1);
    vf lf = vi_to_vf(l);
    *sumlx = vf_add(*sumlx, vf_mul(wx, lf));
    *suml2 = vf_add(*suml2, vf_mul(vf_mul(w, lf), lf));
    return l;
}

/* The reference's acceptance of a trial; updates L (from laux), scale and best. */
static inline void qx_accept(vm allzero, vf sumlx, vf suml2, const vi *laux, int nmax, int32_t *L,
                             vf *scale, vf *best)
{
    const vf zero = vf_zero();
    vm better = vm_and(vf_gt(suml2, zero), vf_gt(vf_mul(sumlx, sumlx), vf_mul(*best, suml2)));
    better = vm_andnot(better, allzero);
    if (!vm_any(better))
        return;
    for (int i = 0; i < 16; i++)
        vi_store(L + i * QX_LANES,
                 vi_select(better, vi_add(laux[i], vi_set1(nmax)), vi_load(L + i * QX_LANES)));
    vf new_scale = vf_div(sumlx, suml2);
    *scale = vf_select(better, new_scale, *scale);
    *best = vf_select(better, vf_mul(new_scale, sumlx), *best);
}

static void qx_lanes(int nmax, const float *xt, int32_t *L, float *scales)
{
    enum { N = 16 };
    const vf zero = vf_zero();
    float wt[N * QX_LANES], wxt[N * QX_LANES]; /* w = x*x and w*x, as the reference forms them */
    vf max0 = zero, amax0 = zero, max1 = zero, amax1 = zero;
    for (int i = 0; i < N; i++) {
        const float *xi = xt + i * QX_LANES;
        vf x0 = vf_load(xi), x1 = vf_load(xi + VW);
        vf ax0 = vf_abs(x0), ax1 = vf_abs(x1);
        vm gt0 = vf_gt(ax0, amax0), gt1 = vf_gt(ax1, amax1);
        amax0 = vf_select(gt0, ax0, amax0);
        max0 = vf_select(gt0, x0, max0);
        amax1 = vf_select(gt1, ax1, amax1);
        max1 = vf_select(gt1, x1, max1);
        vf w0 = vf_mul(x0, x0), w1 = vf_mul(x1, x1);
        vf_store(wt + i * QX_LANES, w0);
        vf_store(wt + i * QX_LANES + VW, w1);
        vf_store(wxt + i * QX_LANES, vf_mul(w0, x0));
        vf_store(wxt + i * QX_LANES + VW, vf_mul(w1, x1));
    }
    const vm allzero0 = vf_lt(amax0, vf_set1(GROUP_MAX_EPS));
    const vm allzero1 = vf_lt(amax1, vf_set1(GROUP_MAX_EPS));
    vf iscale0 = vf_div(vf_set1((float)-nmax), max0);
    vf iscale1 = vf_div(vf_set1((float)-nmax), max1);
    vf sumlx0 = zero, suml20 = zero, sumlx1 = zero, suml21 = zero;
    for (int i = 0; i < N; i++) {
        const int o = i * QX_LANES;
        vi l0 = qx_step(iscale0, vf_load(xt + o), vf_load(wt + o), vf_load(wxt + o), nmax, &sumlx0,
                        &suml20);
        vi l1 = qx_step(iscale1, vf_load(xt + o + VW), vf_load(wt + o + VW), vf_load(wxt + o + VW),
                        nmax, &sumlx1, &suml21);
        vi_store(L + o, vi_add(l0, vi_set1(nmax)));
        vi_store(L + o + VW, vi_add(l1, vi_set1(nmax)));
    }
    vf scale0 = vf_select(vf_ne(suml20, zero), vf_div(sumlx0, suml20), zero);
    vf scale1 = vf_select(vf_ne(suml21, zero), vf_div(sumlx1, suml21), zero);
    vf best0 = vf_mul(scale0, sumlx0), best1 = vf_mul(scale1, sumlx1);
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        const vf num = vf_set1(-((float)nmax + 0.1f * (float)is));
        iscale0 = vf_div(num, max0);
        iscale1 = vf_div(num, max1);
        vi laux0[N], laux1[N];
        sumlx0 = suml20 = sumlx1 = suml21 = zero;
        for (int i = 0; i < N; i++) {
            const int o = i * QX_LANES;
            laux0[i] = qx_step(iscale0, vf_load(xt + o), vf_load(wt + o), vf_load(wxt + o), nmax,
                               &sumlx0, &suml20);
            laux1[i] = qx_step(iscale1, vf_load(xt + o + VW), vf_load(wt + o + VW),
                               vf_load(wxt + o + VW), nmax, &sumlx1, &suml21);
        }
        qx_accept(allzero0, sumlx0, suml20, laux0, nmax, L, &scale0, &best0);
        qx_accept(allzero1, sumlx1, suml21, laux1, nmax, L + VW, &scale1, &best1);
    }
    for (int i = 0; i < N; i++) {
        const int o = i * QX_LANES;
        vi_store(L + o, vi_select(allzero0, vi_set1(0), vi_load(L + o)));
        vi_store(L + o + VW, vi_select(allzero1, vi_set1(0), vi_load(L + o + VW)));
    }
    vf_store(scales, vf_select(allzero0, zero, scale0));
    vf_store(scales + VW, vf_select(allzero1, zero, scale1));
}

/* ---- Q4_K and Q5_K (ggml-quants.c quantize_row_q4_K_ref, quantize_row_q5_K_ref) -------------- */

#define SB_PER_PASS (VW / 8) /* super-blocks whose 8 sub-blocks fill the lanes */

/* Super-block tail: 6-bit scales and mins, d / dmin, requantization, packing. Lt holds the
 * search's L of this super-block's 8 sub-blocks in lanes lane0 .. lane0+7. */
static void k45_finish(const float *x, uint8_t *yb, const float *scales, const float *mins,
                       const int32_t *Lt, int lane0, int five)
{
    const int nmax = five ? 31 : 15;
    int32_t Ln[RK_QK_K]; /* back to element order: Ln[32j + i] = Lt[i * VW + lane0 + j] */
    const vi by_row = vi_mullo(vi_iota(), vi_set1(VW));
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 32; i += VW)
            vi_store(Ln + 32 * j + i, vi_gather(Lt + i * VW + lane0 + j, by_row));

    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t *sb = yb + 4;
    for (int j = 0; j < 8; j++) {
        /* modulo 256, as ggml-quants.c quantize_row_q4_K_ref stores it */
        uint8_t ls = (uint8_t)nearest_int_1(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int_1(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            sb[j] = ls;
            sb[j + 4] = lm;
        } else {
            sb[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            sb[j - 4] |= (uint8_t)((ls >> 4) << 6);
            sb[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    uint16_t d16 = rk_f32_to_f16(max_scale / 63.f), dmin16 = rk_f32_to_f16(max_min / 63.f);
    store_le16(yb, d16);
    store_le16(yb + 2, dmin16);

    float dd = rk_f16_to_f32(d16), dmn = rk_f16_to_f32(dmin16);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        scale_min_k4(j, sb, &sc, &m);
        const float d = dd * sc;
        if (d == 0.0f)
            continue; /* the search's L stays */
        const float dm = dmn * m;
        const vf vd = vf_set1(d), vdm = vf_set1(dm);
        for (int i = 0; i < 32; i += VW) {
            vf v = vf_div(vf_add(vf_load(x + 32 * j + i), vdm), vd);
            vi_store(Ln + 32 * j + i, vi_clamp(vf_nearest_int(v), 0, nmax));
        }
    }

    /* packing, 16 bytes at a time: NV16 vectors of int32 per 16 values */
    if (!five) {
        uint8_t *q = yb + 16;
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l += 16) {
                vi v[NV16];
                for (int u = 0; u < NV16; u++) {
                    vi lo = vi_load(Ln + 64 * c + l + u * VW);
                    vi hi = vi_load(Ln + 64 * c + 32 + l + u * VW);
                    v[u] = vi_or(lo, vi_shl(hi, 4));
                }
                vi_store_u8x16(q + 32 * c + l, v);
            }
        return;
    }
    /* Q5_K: L is 0..31; bit 4 of element 64c + l goes to qh[l] bit 2c, of 64c + 32 + l to
     * bit 2c + 1 (the reference's "if (l > 15) { l -= 16; qh |= m; }") */
    uint8_t *qh = yb + 16, *ql = yb + 48;
    const vi low = vi_set1(15);
    for (int l = 0; l < 32; l += 16) {
        vi h[NV16];
        for (int u = 0; u < NV16; u++)
            h[u] = vi_set1(0);
        for (int c = 0; c < 4; c++) {
            vi v[NV16];
            for (int u = 0; u < NV16; u++) {
                vi lo = vi_load(Ln + 64 * c + l + u * VW);
                vi hi = vi_load(Ln + 64 * c + 32 + l + u * VW);
                v[u] = vi_or(vi_and(lo, low), vi_shl(vi_and(hi, low), 4));
                h[u] = vi_or(h[u],
                             vi_or(vi_shl(vi_shr(lo, 4), 2 * c), vi_shl(vi_shr(hi, 4), 2 * c + 1)));
            }
            vi_store_u8x16(ql + 32 * c + l, v);
        }
        vi_store_u8x16(qh + l, h);
    }
}

static void k45_quantize(const float *x, uint8_t *y, int64_t nb, int five)
{
    const int nmax = five ? 31 : 15, nstep = five ? 15 : 20;
    const float rmin = five ? -0.5f : -1.f;
    const size_t bsize = five ? sizeof(rk_block_q5_K) : sizeof(rk_block_q4_K);
    float xt[32 * VW], wt[32 * VW], scales[VW], mins[VW];
    int32_t L[32 * VW], Laux[32 * VW];
    const vi stride32 = vi_shl(vi_iota(), 5); /* lane j reads sub-block j: element i at 32j + i */
    for (int64_t ib = 0; ib < nb; ib += SB_PER_PASS) {
        int use[SB_PER_PASS], all = 1;
        for (int g = 0; g < SB_PER_PASS; g++) {
            use[g] = ib + g < nb && all_finite(x + RK_QK_K * (ib + g), RK_QK_K);
            all &= use[g];
        }
        const float *xp = x + RK_QK_K * ib;
        if (all) {
            for (int i = 0; i < 32; i++)
                vf_store(xt + i * VW, vf_gather(xp + i, stride32));
        } else { /* unused lanes (past the end, or non-finite blocks) get zeros */
            for (int g = 0; g < SB_PER_PASS; g++)
                for (int j = 0; j < 8; j++)
                    for (int i = 0; i < 32; i++)
                        xt[i * VW + 8 * g + j] = use[g] ? xp[RK_QK_K * g + 32 * j + i] : 0.0f;
        }
        /* weights: av_x = sqrtf(sum_x2 / 32), w = av_x + |x|, sum in element order */
        vf sum_x2 = vf_zero();
        for (int i = 0; i < 32; i++) {
            vf v = vf_load(xt + i * VW);
            sum_x2 = vf_add(sum_x2, vf_mul(v, v));
        }
        vf av_x = vf_sqrt(vf_div(sum_x2, vf_set1(32.0f)));
        for (int i = 0; i < 32; i++)
            vf_store(wt + i * VW, vf_add(av_x, vf_abs(vf_load(xt + i * VW))));
        vf s, m;
        qkx2_lanes(32, nmax, xt, wt, L, Laux, rmin, 0.1f, nstep, &s, &m);
        vf_store(scales, s);
        vf_store(mins, m);
        for (int g = 0; g < SB_PER_PASS && ib + g < nb; g++) {
            int64_t blk = ib + g;
            if (!use[g]) {
                if (five)
                    rk_quantize_row_q5_K_ref(x + RK_QK_K * blk, y + bsize * blk, RK_QK_K);
                else
                    rk_quantize_row_q4_K_ref(x + RK_QK_K * blk, y + bsize * blk, RK_QK_K);
                continue;
            }
            k45_finish(x + RK_QK_K * blk, y + bsize * blk, scales + 8 * g, mins + 8 * g, L, 8 * g,
                       five);
        }
    }
}

void SIMD_FN(rk_quantize_row_q4_K)(const float *x, void *y, int64_t k)
{
    k45_quantize(x, y, k / RK_QK_K, 0);
}

void SIMD_FN(rk_quantize_row_q5_K)(const float *x, void *y, int64_t k)
{
    k45_quantize(x, y, k / RK_QK_K, 1);
}

/* ---- Q6_K (ggml-quants.c quantize_row_q6_K_ref) ---------------------------------------------- */

#define Q6_PER_PASS (QX_LANES / 16) /* super-blocks whose 16 sub-blocks fill the lanes */

/* Super-block tail: 8-bit scales, d, requantization, packing. Ln holds the search's L
 * (0..63) in element order, scales the 16 sub-block scales. */
static void q6k_finish(const float *xb, uint8_t *yb, const float *scales, int32_t *Ln)
{
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ib++) {
        float abs_scale = fabsf(scales[ib]);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scales[ib];
        }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(yb, 0, sizeof(rk_block_q6_K));
        store_le16(yb + 208, rk_f32_to_f16(0.f));
        return;
    }
    float iscale = -128.f / max_scale;
    uint16_t d16 = rk_f32_to_f16(1 / iscale);
    store_le16(yb + 208, d16);
    int sc[16];
    for (int j = 0; j < 16; j++) {
        int v = nearest_int_1(iscale * scales[j]);
        v = v < 127 ? v : 127;
        uint8_t byte = (uint8_t)v; /* int8 stored modulo 256 */
        yb[192 + j] = byte;
        sc[j] = byte < 128 ? byte : byte - 256;
    }
    const float dd = rk_f16_to_f32(d16);
    for (int j = 0; j < 16; j++) {
        const float d = dd * (float)sc[j];
        if (d == 0.0f)
            continue; /* the search's L stays */
        const vf vd = vf_set1(d);
        for (int i = 0; i < 16; i += VW) {
            vi l = vi_clamp(vf_nearest_int(vf_div(vf_load(xb + 16 * j + i), vd)), -32, 31);
            vi_store(Ln + 16 * j + i, vi_add(l, vi_set1(32)));
        }
    }
    /* packing, 16 values at a time; L is 0..63 */
    uint8_t *ql = yb, *qh = yb + 128;
    const vi low = vi_set1(15);
    for (int h = 0; h < 2; h++) {
        const int32_t *Lh = Ln + 128 * h;
        for (int l = 0; l < 32; l += 16) {
            vi q0[NV16], q1[NV16], q2[NV16];
            for (int u = 0; u < NV16; u++) {
                const int o = l + u * VW;
                vi a = vi_load(Lh + o), b = vi_load(Lh + o + 32);
                vi c = vi_load(Lh + o + 64), d = vi_load(Lh + o + 96);
                q0[u] = vi_or(vi_and(a, low), vi_shl(vi_and(c, low), 4));
                q1[u] = vi_or(vi_and(b, low), vi_shl(vi_and(d, low), 4));
                q2[u] = vi_or(vi_or(vi_shr(a, 4), vi_shl(vi_shr(b, 4), 2)),
                              vi_or(vi_shl(vi_shr(c, 4), 4), vi_shl(vi_shr(d, 4), 6)));
            }
            vi_store_u8x16(ql + 64 * h + l, q0);
            vi_store_u8x16(ql + 64 * h + 32 + l, q1);
            vi_store_u8x16(qh + 32 * h + l, q2);
        }
    }
}

void SIMD_FN(rk_quantize_row_q6_K)(const float *x, void *vy, int64_t k)
{
    uint8_t *y = vy;
    const int64_t nb = k / RK_QK_K;
    float xt[16 * QX_LANES], scales[QX_LANES];
    int32_t L[16 * QX_LANES], Ln[RK_QK_K];
    /* lane j of vector u reads sub-block u*VW + j of the pass: element i at 16 * that + i */
    const vi stride16 = vi_shl(vi_iota(), 4), by_row = vi_mullo(vi_iota(), vi_set1(QX_LANES));
    for (int64_t ib = 0; ib < nb; ib += Q6_PER_PASS) {
        int use[Q6_PER_PASS], all = 1;
        for (int g = 0; g < Q6_PER_PASS; g++) {
            use[g] = ib + g < nb && all_finite(x + RK_QK_K * (ib + g), RK_QK_K);
            all &= use[g];
        }
        const float *xp = x + RK_QK_K * ib;
        if (all) {
            for (int i = 0; i < 16; i++)
                for (int u = 0; u < QX_LANES / VW; u++)
                    vf_store(xt + i * QX_LANES + u * VW, vf_gather(xp + 16 * VW * u + i, stride16));
        } else { /* unused lanes (past the end, or non-finite blocks) get zeros */
            for (int g = 0; g < Q6_PER_PASS; g++)
                for (int j = 0; j < 16; j++)
                    for (int i = 0; i < 16; i++)
                        xt[i * QX_LANES + 16 * g + j] =
                            use[g] ? xp[RK_QK_K * g + 16 * j + i] : 0.0f;
        }
        qx_lanes(32, xt, L, scales);
        for (int g = 0; g < Q6_PER_PASS && ib + g < nb; g++) {
            const float *xb = xp + RK_QK_K * g;
            uint8_t *yb = y + sizeof(rk_block_q6_K) * (ib + g);
            if (!use[g]) {
                rk_quantize_row_q6_K_ref(xb, yb, RK_QK_K);
                continue;
            }
            /* back to element order: Ln[16j + i] = L[i * QX_LANES + 16g + j] */
            for (int j = 0; j < 16; j++)
                for (int i = 0; i < 16; i += VW)
                    vi_store(Ln + 16 * j + i, vi_gather(L + i * QX_LANES + 16 * g + j, by_row));
            q6k_finish(xb, yb, scales + 16 * g, Ln);
        }
    }
}

/* ---- Q8_0, Q4_0, Q5_0 (ggml-quants.c quantize_row_q8_0_ref, _q4_0_ref, _q5_0_ref) ------------ */

/* Loads one 32-element block; returns 0 when an element is not finite. */
static inline int load_block32(const float *x, vf *v, vf *amax)
{
    v[0] = vf_load(x);
    vm bad = vf_nonfinite(v[0]);
    vf a = vf_abs(v[0]);
    for (int k = 1; k < NV32; k++) {
        v[k] = vf_load(x + k * VW);
        bad = vm_or(bad, vf_nonfinite(v[k]));
        a = vf_pick_greater(vf_abs(v[k]), a);
    }
    *amax = a;
    return !vm_any(bad);
}

/* roundf: nearest, ties away from zero (exact for |s| < 2^23, the only range reached here) */
static inline vf vf_round_away(vf s)
{
    vf t = vf_trunc(s);
    vm up = vf_ge(vf_abs(vf_sub(s, t)), vf_set1(0.5f));
    return vf_select(up, vf_add(t, vf_copysign1(s)), t);
}

void SIMD_FN(rk_quantize_row_q8_0)(const float *x, void *vy, int64_t k)
{
    uint8_t *y = vy;
    const int64_t nb = k / RK_QK8_0;
    for (int64_t ib = 0; ib < nb; ib++, x += RK_QK8_0, y += sizeof(rk_block_q8_0)) {
        vf v[NV32], amax;
        if (!load_block32(x, v, &amax)) {
            rk_quantize_row_q8_0_ref(x, y, RK_QK8_0);
            continue;
        }
        const float d = vf_hmax(amax) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (isinf(id)) { /* tiny block: the reference's conversion of +-Inf decides */
            rk_quantize_row_q8_0_ref(x, y, RK_QK8_0);
            continue;
        }
        store_le16(y, rk_f32_to_f16(d));
        const vf vid = vf_set1(id);
        vi q[NV32];
        for (int j = 0; j < NV32; j++)
            q[j] = vf_to_vi_exact(vf_round_away(vf_mul(v[j], vid)));
        vi_store_s8x32((int8_t *)(y + 2), q);
    }
}

/* Q8_K (activations of the K-quant dot products; quant_ref.c rk_q8_K_block): the first element
 * of largest magnitude sets iscale = -127 / max, quants min(127, nearest_int(iscale * x)),
 * bsums the sums of 16, d = 1 / iscale. Non-finite, all-zero and tiny blocks go to the
 * reference. */
void SIMD_FN(rk_quantize_row_q8_K)(const float *x, void *vy, int64_t k)
{
    uint8_t *y = vy;
    const int64_t nb = k / RK_QK_K;
    for (int64_t ib = 0; ib < nb; ib++, x += RK_QK_K, y += sizeof(rk_block_q8_K)) {
        if (!all_finite(x, RK_QK_K)) {
            rk_quantize_row_q8_K_ref(x, y, RK_QK_K);
            continue;
        }
        vf a = vf_abs(vf_load(x));
        for (int i = VW; i < RK_QK_K; i += VW)
            a = vf_pick_greater(vf_abs(vf_load(x + i)), a);
        const float amax = vf_hmax(a);
        float max = 0.0f;
        for (int i = 0; i < RK_QK_K; i += VW) {
            const uint32_t bits = vm_bits(vf_eq(vf_abs(vf_load(x + i)), vf_set1(amax)));
            if (bits) {
                max = x[i + __builtin_ctz(bits)];
                break;
            }
        }
        const float iscale = amax == 0.0f ? 0.0f : -127.0f / max;
        if (amax == 0.0f || isinf(iscale)) {
            rk_quantize_row_q8_K_ref(x, y, RK_QK_K);
            continue;
        }
        const vf vis = vf_set1(iscale);
        int8_t *qs = (int8_t *)(y + offsetof(rk_block_q8_K, qs));
        for (int i = 0; i < RK_QK_K; i += 32) {
            vi q[NV32];
            for (int j = 0; j < NV32; j++)
                q[j] = vi_min(vi_set1(127), vf_nearest_int(vf_mul(vis, vf_load(x + i + j * VW))));
            vi_store_s8x32(qs + i, q);
        }
        uint8_t *bsums = y + offsetof(rk_block_q8_K, bsums);
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int i = 0; i < 16; i++)
                sum += qs[16 * g + i];
            store_le16(bsums + 2 * g, (uint16_t)(int16_t)sum);
        }
        uint8_t *dp = y + offsetof(rk_block_q8_K, d);
        const float d = 1.0f / iscale;
        memcpy(dp, &d, sizeof d);
    }
}

/* The signed extreme of ggml-quants.c quantize_row_q4_0_ref: the first element of largest
 * magnitude, 0 for a zero block (branch-free: the position is the lowest set bit of the 32 lane
 * comparisons). */
static inline float signed_extreme(const float *x, const vf *v, vf amax_v)
{
    const float amax = vf_hmax(amax_v);
    const vf a = vf_set1(amax);
    uint32_t bits = 0;
    for (int j = 0; j < NV32; j++)
        bits |= vm_bits(vf_eq(vf_abs(v[j]), a)) << (j * VW);
    return amax == 0.0f ? 0.0f : x[__builtin_ctz(bits | 0x80000000u)];
}

static void q45_0_quantize(const float *x, uint8_t *y, int64_t nb, int five)
{
    const size_t bsize = five ? sizeof(rk_block_q5_0) : sizeof(rk_block_q4_0);
    const float div = five ? -16.0f : -8.0f, bias = five ? 16.5f : 8.5f;
    const int qmax = five ? 31 : 15;
    for (int64_t ib = 0; ib < nb; ib++, x += 32, y += bsize) {
        vf v[NV32], amax;
        int ok = load_block32(x, v, &amax);
        float d = 0, id = 0;
        if (ok) {
            d = signed_extreme(x, v, amax) / div;
            id = d != 0.0f ? 1.0f / d : 0.0f;
            ok = !isinf(id);
        }
        if (!ok) {
            if (five)
                rk_quantize_row_q5_0_ref(x, y, 32);
            else
                rk_quantize_row_q4_0_ref(x, y, 32);
            continue;
        }
        store_le16(y, rk_f32_to_f16(d));
        const vf vid = vf_set1(id), vbias = vf_set1(bias);
        vi q[NV32];
        uint32_t qh = 0;
        for (int j = 0; j < NV32; j++)
            q[j] = vi_min(vi_set1(qmax), vf_to_vi_trunc(vf_add(vf_mul(v[j], vid), vbias)));
        if (five)
            for (int j = 0; j < NV32; j++)
                qh |= vm_bits(vi_gt(q[j], vi_set1(15))) << (j * VW);
        vi packed[NV32 / 2];
        for (int j = 0; j < NV32 / 2; j++)
            packed[j] =
                vi_or(vi_and(q[j], vi_set1(15)), vi_shl(vi_and(q[j + NV32 / 2], vi_set1(15)), 4));
        if (five) {
            for (int b = 0; b < 4; b++)
                y[2 + b] = (uint8_t)(qh >> (8 * b));
            vi_store_u8x16(y + 6, packed);
        } else {
            vi_store_u8x16(y + 2, packed);
        }
    }
}

void SIMD_FN(rk_quantize_row_q4_0)(const float *x, void *y, int64_t k)
{
    q45_0_quantize(x, y, k / RK_QK4_0, 0);
}

void SIMD_FN(rk_quantize_row_q5_0)(const float *x, void *y, int64_t k)
{
    q45_0_quantize(x, y, k / RK_QK5_0, 1);
}

/* ---- F16 and BF16 ---------------------------------------------------------------------------- */

void SIMD_FN(rk_quantize_row_f16)(const float *x, void *vy, int64_t k)
{
    uint8_t *y = vy;
    int64_t i = 0;
    for (; i + VW <= k; i += VW) {
        vf v = vf_load(x + i);
        vf_to_f16(y + 2 * i, v);
        uint32_t nan = vm_bits(vf_ne(v, v)); /* NaN: the reference's rule, not F16C's */
        while (nan) {
            int b = __builtin_ctz(nan);
            nan &= nan - 1;
            rk_quantize_row_f16_ref(x + i + b, y + 2 * (i + b), 1);
        }
    }
    rk_quantize_row_f16_ref(x + i, y + 2 * i, k - i);
}

void SIMD_FN(rk_quantize_row_bf16)(const float *x, void *vy, int64_t k)
{
    uint8_t *y = vy;
    int64_t i = 0;
    /* ggml's fp16 conversion (ggml-impl.h, ggml_compute_fp32_to_fp16), on the bits */
    for (; i + VW <= k; i += VW) {
        vi u = vf_bits(vf_load(x + i));
        vm nan = vi_gt(vi_and(u, vi_set1(0x7fffffff)), vi_set1(0x7f800000));
        vi odd = vi_and(vi_shr(u, 16), vi_set1(1));
        vi rounded = vi_shr(vi_add(vi_add(u, vi_set1(0x7fff)), odd), 16);
        vi quiet = vi_or(vi_shr(u, 16), vi_set1(0x40));
        vi_store_u16(y + 2 * i, vi_select(nan, quiet, rounded));
    }
    rk_quantize_row_bf16_ref(x + i, y + 2 * i, k - i);
}

void SIMD_FN(rk_dequantize_row_f16)(const void *vx, float *y, int64_t k)
{
    const uint8_t *x = vx;
    int64_t i = 0;
    for (; i + VW <= k; i += VW) {
        vf_store(y + i, vf_from_f16(x + 2 * i));
        uint32_t nan = f16_nan_lanes(x + 2 * i); /* NaN: the reference's rule decides */
        while (nan) {
            int b = __builtin_ctz(nan);
            nan &= nan - 1;
            rk_dequantize_row_f16_ref(x + 2 * (i + b), y + i + b, 1);
        }
    }
    rk_dequantize_row_f16_ref(x + 2 * i, y + i, k - i);
}

void SIMD_FN(rk_dequantize_row_bf16)(const void *vx, float *y, int64_t k)
{
    const uint8_t *x = vx;
    int64_t i = 0;
    for (; i + VW <= k; i += VW)
        vf_store(y + i, vf_from_bf16(x + 2 * i));
    rk_dequantize_row_bf16_ref(x + 2 * i, y + i, k - i);
}

/* ---- dequantizers: the reference's expressions, one element per lane ------------------------- */

void SIMD_FN(rk_dequantize_row_q8_0)(const void *vx, float *y, int64_t k)
{
    const uint8_t *x = vx;
    const int64_t nb = k / RK_QK8_0;
    for (int64_t ib = 0; ib < nb; ib++, x += sizeof(rk_block_q8_0), y += RK_QK8_0) {
        const vf d = vf_set1(rk_f16_to_f32(load_le16(x)));
        for (int j = 0; j < RK_QK8_0; j += VW)
            vf_store(y + j, vf_mul(vi_to_vf(vi_load_s8((const int8_t *)(x + 2 + j))), d));
    }
}

void SIMD_FN(rk_dequantize_row_q4_0)(const void *vx, float *y, int64_t k)
{
    const uint8_t *x = vx;
    const int64_t nb = k / RK_QK4_0;
    const vi eight = vi_set1(8), low = vi_set1(15);
    for (int64_t ib = 0; ib < nb; ib++, x += sizeof(rk_block_q4_0), y += RK_QK4_0) {
        const vf d = vf_set1(rk_f16_to_f32(load_le16(x)));
        for (int j = 0; j < 16; j += VW) {
            vi b = vi_load_u8(x + 2 + j);
            vf_store(y + j, vf_mul(vi_to_vf(vi_sub(vi_and(b, low), eight)), d));
            vf_store(y + 16 + j, vf_mul(vi_to_vf(vi_sub(vi_shr(b, 4), eight)), d));
        }
    }
}

void SIMD_FN(rk_dequantize_row_q5_0)(const void *vx, float *y, int64_t k)
{
    const uint8_t *x = vx;
    const int64_t nb = k / RK_QK5_0;
    const vi sixteen = vi_set1(16), low = vi_set1(15), one = vi_set1(1), iota = vi_iota();
    for (int64_t ib = 0; ib < nb; ib++, x += sizeof(rk_block_q5_0), y += RK_QK5_0) {
        const vf d = vf_set1(rk_f16_to_f32(load_le16(x)));
        const uint32_t qh =
            (uint32_t)x[2] | (uint32_t)x[3] << 8 | (uint32_t)x[4] << 16 | (uint32_t)x[5] << 24;
        const vi vqh = vi_set1((int32_t)qh);
        for (int j = 0; j < 16; j += VW) {
            vi b = vi_load_u8(x + 6 + j);
            vi h0 = vi_shl(vi_and(vi_shrv(vqh, vi_add(iota, vi_set1(j))), one), 4);
            vi h1 = vi_shl(vi_and(vi_shrv(vqh, vi_add(iota, vi_set1(j + 16))), one), 4);
            vf_store(y + j, vf_mul(vi_to_vf(vi_sub(vi_or(vi_and(b, low), h0), sixteen)), d));
            vf_store(y + 16 + j, vf_mul(vi_to_vf(vi_sub(vi_or(vi_shr(b, 4), h1), sixteen)), d));
        }
    }
}

void SIMD_FN(rk_dequantize_row_q4_K)(const void *vx, float *y, int64_t k)
{
    const uint8_t *x = vx;
    const int64_t nb = k / RK_QK_K;
    const vi low = vi_set1(15);
    for (int64_t ib = 0; ib < nb; ib++, x += sizeof(rk_block_q4_K)) {
        const float d = rk_f16_to_f32(load_le16(x)), min = rk_f16_to_f32(load_le16(x + 2));
        const uint8_t *sb = x + 4, *q = x + 16;
        for (int c = 0; c < 4; c++, q += 32, y += 64) {
            uint8_t sc, m;
            scale_min_k4(2 * c, sb, &sc, &m);
            const vf d1 = vf_set1(d * sc), m1 = vf_set1(min * m);
            scale_min_k4(2 * c + 1, sb, &sc, &m);
            const vf d2 = vf_set1(d * sc), m2 = vf_set1(min * m);
            for (int l = 0; l < 32; l += VW) {
                vi b = vi_load_u8(q + l);
                vf_store(y + l, vf_sub(vf_mul(d1, vi_to_vf(vi_and(b, low))), m1));
                vf_store(y + 32 + l, vf_sub(vf_mul(d2, vi_to_vf(vi_shr(b, 4))), m2));
            }
        }
    }
}

void SIMD_FN(rk_dequantize_row_q5_K)(const void *vx, float *y, int64_t k)
{
    const uint8_t *x = vx;
    const int64_t nb = k / RK_QK_K;
    const vi low = vi_set1(15), one = vi_set1(1);
    for (int64_t ib = 0; ib < nb; ib++, x += sizeof(rk_block_q5_K)) {
        const float d = rk_f16_to_f32(load_le16(x)), min = rk_f16_to_f32(load_le16(x + 2));
        const uint8_t *sb = x + 4, *qh = x + 16, *ql = x + 48;
        for (int c = 0; c < 4; c++, ql += 32, y += 64) {
            uint8_t sc, m;
            scale_min_k4(2 * c, sb, &sc, &m);
            const vf d1 = vf_set1(d * sc), m1 = vf_set1(min * m);
            scale_min_k4(2 * c + 1, sb, &sc, &m);
            const vf d2 = vf_set1(d * sc), m2 = vf_set1(min * m);
            for (int l = 0; l < 32; l += VW) {
                vi b = vi_load_u8(ql + l), h = vi_load_u8(qh + l);
                vi q1 = vi_add(vi_and(b, low), vi_shl(vi_and(vi_shr(h, 2 * c), one), 4));
                vi q2 = vi_add(vi_shr(b, 4), vi_shl(vi_and(vi_shr(h, 2 * c + 1), one), 4));
                vf_store(y + l, vf_sub(vf_mul(d1, vi_to_vf(q1)), m1));
                vf_store(y + 32 + l, vf_sub(vf_mul(d2, vi_to_vf(q2)), m2));
            }
        }
    }
}

void SIMD_FN(rk_dequantize_row_q6_K)(const void *vx, float *y, int64_t k)
{
    const uint8_t *x = vx;
    const int64_t nb = k / RK_QK_K;
    const vi low = vi_set1(15), three = vi_set1(3), off = vi_set1(32);
    for (int64_t ib = 0; ib < nb; ib++, x += sizeof(rk_block_q6_K)) {
        const float d = rk_f16_to_f32(load_le16(x + 208));
        const uint8_t *ql = x, *qh = x + 128;
        const int8_t *sc = (const int8_t *)(x + 192);
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int l = 0; l < 32; l += VW) {
                const int is = l / 16;
                vi a = vi_load_u8(ql + l), b = vi_load_u8(ql + 32 + l), hb = vi_load_u8(qh + l);
                vi q1 = vi_sub(vi_or(vi_and(a, low), vi_shl(vi_and(hb, three), 4)), off);
                vi q2 = vi_sub(vi_or(vi_and(b, low), vi_shl(vi_and(vi_shr(hb, 2), three), 4)), off);
                vi q3 = vi_sub(vi_or(vi_shr(a, 4), vi_shl(vi_and(vi_shr(hb, 4), three), 4)), off);
                vi q4 = vi_sub(vi_or(vi_shr(b, 4), vi_shl(vi_shr(hb, 6), 4)), off);
                vf_store(y + l, vf_mul(vf_set1(d * sc[is + 0]), vi_to_vf(q1)));
                vf_store(y + l + 32, vf_mul(vf_set1(d * sc[is + 2]), vi_to_vf(q2)));
                vf_store(y + l + 64, vf_mul(vf_set1(d * sc[is + 4]), vi_to_vf(q3)));
                vf_store(y + l + 96, vf_mul(vf_set1(d * sc[is + 6]), vi_to_vf(q4)));
            }
        }
    }
}
