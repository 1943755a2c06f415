/* AVX-512 matmul kernels, compiled twice: matmul_avx512.c (RK_VNNI 0: vpmaddubsw + vpmaddwd)
 * and matmul_avx512vnni.c (RK_VNNI 1: vpdpbusd / vpdpwssd). Every kernel computes rk math
 * (matmul.h) and returns the scalar reference's bits: exact integer sums, then the reference's
 * float operations per row, in lanes (one row per lane, 16 rows per vector).
 * Not for: inclusion anywhere else. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "common/half.h"
#include "cpu/matmul_internal.h"

#define PANEL_R 16
#include "cpu/matmul_panel.h"

#if RK_VNNI
#define MM_FN(name) name##_avx512vnni
static inline __m512i dot_u8s8(__m512i acc, __m512i u, __m512i s)
{
    return _mm512_dpbusd_epi32(acc, u, s);
}
static inline __m512i dot_s16(__m512i acc, __m512i a, __m512i b)
{
    return _mm512_dpwssd_epi32(acc, a, b);
}
#else
#define MM_FN(name) name##_avx512
/* u8 x s8 products summed in groups of 4; exact while 2 * u * |s| <= 32767 (u <= 128) */
static inline __m512i dot_u8s8(__m512i acc, __m512i u, __m512i s)
{
    const __m512i p16 = _mm512_maddubs_epi16(u, s);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(p16, _mm512_set1_epi16(1)));
}
static inline __m512i dot_s16(__m512i acc, __m512i a, __m512i b)
{
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}
#endif

/* s8 x s8 in groups of 4 (8-bit weights): |w| as the unsigned operand, x with w's sign */
static inline __m512i dot_s8s8(__m512i acc, __m512i w, __m512i x)
{
    const __m512i aw = _mm512_abs_epi8(w);
    const __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
    return dot_u8s8(acc, aw, sx);
}

static inline uint32_t load_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline float load_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline float load_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

static inline __mmask16 row_mask(int nr) { return (__mmask16)((1u << nr) - 1u); }

/* ---- GEMM over a decoded panel ------------------------------------------------------------- */

#define GEMM_C 6 /* columns per register tile */

/* acc[c] for the rows of the panel: loaded from y (or 0 for the first chunk), stored back. */
static inline void acc_load(__m512 acc[GEMM_C], float *const yc[GEMM_C], __mmask16 m, int first)
{
    for (int c = 0; c < GEMM_C; c++)
        acc[c] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, yc[c]);
}

static inline void acc_store(const __m512 acc[GEMM_C], float *const yc[GEMM_C], __mmask16 m, int nc)
{
    for (int c = 0; c < nc; c++)
        _mm512_mask_storeu_ps(yc[c], m, acc[c]);
}

/* 32-element blocks against Q8_0 (or Q8_1 for the _MIN kind): n_blk blocks of the chunk
 * starting at activation block b0. xs[c] = activation row of column c. */
static void gemm_blk32(const rk_panel *p, panel_info info, int n_blk, int64_t b0, int64_t nb,
                       const uint8_t *const xs[GEMM_C], __m512 acc[GEMM_C])
{
    const int min = info.kind == PANEL_BLK32_MIN;
    const size_t ab = min ? 36 : 34; /* activation block bytes */
    const size_t aq = min ? 4 : 2;   /* offset of the quants in it */
    for (int b = 0; b < n_blk; b++) {
        const int64_t ba = b0 + b;
        __m512i isum[GEMM_C];
        for (int c = 0; c < GEMM_C; c++) {
            int32_t init = 0;
            if (info.bias) {
                const int32_t xsum = (int32_t)load_u32(rk_act_q8_0_sums_at(xs[c], nb) + 4 * ba);
                init = -info.bias * xsum;
            }
            isum[c] = _mm512_set1_epi32(init);
        }
        const uint8_t *q = p->q + (size_t)b * 8 * 64;
        for (int g = 0; g < 8; g++) {
            const __m512i wv = _mm512_load_si512((const void *)(q + g * 64));
            for (int c = 0; c < GEMM_C; c++) {
                const __m512i xv =
                    _mm512_set1_epi32((int32_t)load_u32(xs[c] + ba * ab + aq + 4 * g));
                isum[c] = info.signed_w ? dot_s8s8(isum[c], wv, xv) : dot_u8s8(isum[c], wv, xv);
            }
        }
        const __m512 dw = _mm512_load_ps(p->d[b]);
        for (int c = 0; c < GEMM_C; c++) {
            const float dx = load_f16(xs[c] + ba * ab);
            const __m512 t = _mm512_mul_ps(dw, _mm512_set1_ps(dx));
            const __m512 fi = _mm512_cvtepi32_ps(isum[c]);
            if (min) {
                const float sx = load_f16(xs[c] + ba * ab + 2);
                const __m512 u =
                    _mm512_add_ps(_mm512_mul_ps(t, fi),
                                  _mm512_mul_ps(_mm512_load_ps(p->m[b]), _mm512_set1_ps(sx)));
                acc[c] = _mm512_add_ps(acc[c], u);
            } else {
                acc[c] = _mm512_add_ps(acc[c], _mm512_mul_ps(fi, t));
            }
        }
    }
}

/* K-quants against Q8_K: n_sb super-blocks starting at activation super-block s0. */
static void gemm_kquant(const rk_panel *p, panel_info info, int n_sb, int64_t s0,
                        const uint8_t *const xs[GEMM_C], __m512 acc[GEMM_C])
{
    const int nsub = 256 / info.sub, groups = info.sub / 4;
    for (int s = 0; s < n_sb; s++) {
        const int64_t sa = s0 + s;
        const uint8_t *xq[GEMM_C];
        for (int c = 0; c < GEMM_C; c++)
            xq[c] = xs[c] + sa * 292 + 4;
        __m512i isum[GEMM_C], msum[GEMM_C];
        for (int c = 0; c < GEMM_C; c++) {
            isum[c] = _mm512_setzero_si512();
            msum[c] = _mm512_setzero_si512();
        }
        const uint8_t *q = p->q + (size_t)s * 256 * 16;
        for (int j = 0; j < nsub; j++) {
            __m512i t[GEMM_C];
            for (int c = 0; c < GEMM_C; c++)
                t[c] = _mm512_setzero_si512();
            for (int g = 0; g < groups; g++) {
                const int e = j * info.sub + 4 * g;
                const __m512i wv = _mm512_load_si512((const void *)(q + (e / 4) * 64));
                for (int c = 0; c < GEMM_C; c++)
                    t[c] = dot_u8s8(t[c], wv, _mm512_set1_epi32((int32_t)load_u32(xq[c] + e)));
            }
            const __m512i scv = _mm512_load_si512((const void *)p->sc[s][j]);
            for (int c = 0; c < GEMM_C; c++)
                isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(t[c], scv));
        }
        for (int i = 0; i < 8; i++) {
            const __m512i mv = _mm512_load_si512((const void *)p->mn[s][i]);
            for (int c = 0; c < GEMM_C; c++) {
                const uint8_t *bs = xs[c] + sa * 292 + 260 + 4 * i;
                msum[c] = dot_s16(msum[c], mv, _mm512_set1_epi32((int32_t)load_u32(bs)));
            }
        }
        const __m512 dw = _mm512_load_ps(p->d[s]);
        for (int c = 0; c < GEMM_C; c++) {
            const __m512 dx = _mm512_set1_ps(load_f32(xs[c] + sa * 292));
            const __m512 dd = _mm512_mul_ps(dw, dx);
            if (info.kind == PANEL_KQ_MIN) {
                const __m512 dm = _mm512_mul_ps(_mm512_load_ps(p->m[s]), dx);
                const __m512 u = _mm512_sub_ps(_mm512_mul_ps(dd, _mm512_cvtepi32_ps(isum[c])),
                                               _mm512_mul_ps(dm, _mm512_cvtepi32_ps(msum[c])));
                acc[c] = _mm512_add_ps(acc[c], u);
            } else {
                const __m512i it = _mm512_sub_epi32(isum[c], msum[c]);
                acc[c] = _mm512_add_ps(acc[c], _mm512_mul_ps(dd, _mm512_cvtepi32_ps(it)));
            }
        }
    }
}

static void gemm_quant(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    const panel_info info = panel_info_of(w->type, RK_VNNI);
    const int kq = info.kind == PANEL_KQ_MIN || info.kind == PANEL_KQ_BIAS;
    const int64_t nb = w->k / 32;
    _Alignas(64) rk_panel panel;
    for (int64_t rt = r0; rt < r1; rt += PANEL_R) {
        const int nr = (int)(r1 - rt < PANEL_R ? r1 - rt : PANEL_R);
        const __mmask16 m = row_mask(nr);
        for (int64_t k0 = 0; k0 < w->k; k0 += RK_PANEL_K) {
            const int kn = (int)(w->k - k0 < RK_PANEL_K ? w->k - k0 : RK_PANEL_K);
            panel_decode(&panel, w, rt, nr, k0, kn, info);
            for (int64_t c0 = 0; c0 < n_cols; c0 += GEMM_C) {
                const int nc = (int)(n_cols - c0 < GEMM_C ? n_cols - c0 : GEMM_C);
                const uint8_t *xs[GEMM_C];
                float *yc[GEMM_C];
                for (int c = 0; c < GEMM_C; c++) {
                    const int64_t cc = c0 + (c < nc ? c : nc - 1);
                    xs[c] = act + (size_t)cc * act_stride;
                    yc[c] = y + (size_t)cc * y_stride + (size_t)rt;
                }
                __m512 acc[GEMM_C];
                acc_load(acc, yc, m, k0 == 0);
                if (kq)
                    gemm_kquant(&panel, info, kn / 256, k0 / 256, xs, acc);
                else
                    gemm_blk32(&panel, info, kn / 32, k0 / 32, nb, xs, acc);
                acc_store(acc, yc, m, nc);
            }
        }
    }
}

/* ---- float weights: 16-lane dot products -------------------------------------------------- */

/* 16 weights of row at element i as floats (masked lanes 0). */
static inline __m512 load_w16(rk_type type, const uint8_t *row, int64_t i, __mmask16 m)
{
    switch (type) {
    case RK_TYPE_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
    case RK_TYPE_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * i)), 16));
    case RK_TYPE_F32:
    case RK_TYPE_Q4_0:
    case RK_TYPE_Q4_1:
    case RK_TYPE_Q5_0:
    case RK_TYPE_Q5_1:
    case RK_TYPE_Q8_0:
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q2_K:
    case RK_TYPE_Q3_K:
    case RK_TYPE_Q4_K:
    case RK_TYPE_Q5_K:
    case RK_TYPE_Q6_K:
    case RK_TYPE_Q8_K:
    case RK_TYPE_APR_Q4:
    case RK_TYPE_APR_Q8: break;
    }
    return _mm512_maskz_loadu_ps(m, row + 4 * i);
}

/* The fixed reduction of the 16 lanes: l + 8, l + 4, l + 2, l + 1. */
static inline float hsum16(__m512 v)
{
    const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

#define FLOAT_R 4 /* rows per register tile */

static void gemm_float(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    const int64_t k = w->k;
    for (int64_t rt = r0; rt < r1; rt += FLOAT_R) {
        const int nr = (int)(r1 - rt < FLOAT_R ? r1 - rt : FLOAT_R);
        const uint8_t *rows[FLOAT_R];
        for (int r = 0; r < FLOAT_R; r++)
            rows[r] =
                (const uint8_t *)w->data + (size_t)(rt + (r < nr ? r : nr - 1)) * w->row_stride;
        for (int64_t c0 = 0; c0 < n_cols; c0 += GEMM_C) {
            const int nc = (int)(n_cols - c0 < GEMM_C ? n_cols - c0 : GEMM_C);
            const float *xs[GEMM_C];
            for (int c = 0; c < GEMM_C; c++)
                xs[c] = (const float *)(const void *)(act + (size_t)(c0 + (c < nc ? c : nc - 1)) *
                                                                act_stride);
            __m512 acc[FLOAT_R][GEMM_C];
            for (int r = 0; r < FLOAT_R; r++)
                for (int c = 0; c < GEMM_C; c++)
                    acc[r][c] = _mm512_setzero_ps();
            for (int64_t i = 0; i < k; i += 16) {
                const __mmask16 m = k - i >= 16 ? (__mmask16)0xffff : row_mask((int)(k - i));
                __m512 xv[GEMM_C];
                for (int c = 0; c < GEMM_C; c++)
                    xv[c] = _mm512_maskz_loadu_ps(m, xs[c] + i);
                for (int r = 0; r < FLOAT_R; r++) {
                    const __m512 wv = load_w16(w->type, rows[r], i, m);
                    for (int c = 0; c < GEMM_C; c++)
                        acc[r][c] = _mm512_mask3_fmadd_ps(wv, xv[c], acc[r][c], m);
                }
            }
            for (int c = 0; c < nc; c++)
                for (int r = 0; r < nr; r++)
                    y[(size_t)(c0 + c) * y_stride + (size_t)(rt + r)] = hsum16(acc[r][c]);
        }
    }
}

static void matvec_float(const rk_matrix *w, int64_t r0, int64_t r1, const float *x, float *y)
{
    const int64_t k = w->k;
    for (int64_t rt = r0; rt < r1; rt += FLOAT_R) {
        const int nr = (int)(r1 - rt < FLOAT_R ? r1 - rt : FLOAT_R);
        const uint8_t *rows[FLOAT_R];
        for (int r = 0; r < FLOAT_R; r++)
            rows[r] =
                (const uint8_t *)w->data + (size_t)(rt + (r < nr ? r : nr - 1)) * w->row_stride;
        __m512 acc[FLOAT_R];
        for (int r = 0; r < FLOAT_R; r++)
            acc[r] = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= k; i += 16) {
            const __m512 xv = _mm512_loadu_ps(x + i);
            for (int r = 0; r < FLOAT_R; r++)
                acc[r] = _mm512_fmadd_ps(load_w16(w->type, rows[r], i, 0xffff), xv, acc[r]);
        }
        if (i < k) {
            const __mmask16 m = row_mask((int)(k - i));
            const __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
            for (int r = 0; r < FLOAT_R; r++)
                acc[r] = _mm512_mask3_fmadd_ps(load_w16(w->type, rows[r], i, m), xv, acc[r], m);
        }
        for (int r = 0; r < nr; r++)
            y[rt + r] = hsum16(acc[r]);
    }
}

/* ---- matrix-vector: 16 rows per pass, one row per lane ------------------------------------
 * The integer dot of each (row, block) is computed on the row's own bytes, then the partial
 * sums of 16 rows are reduced into one vector whose lane i belongs to row i, and the float
 * update of rk math runs on that vector. */

#define MV_R      16
#define MV_INLINE static inline __attribute__((always_inline))

typedef struct mv_rows {
    const uint8_t *p[MV_R]; /* row pointers; lanes past the end repeat the last row */
} mv_rows;

MV_INLINE mv_rows mv_group(const rk_matrix *w, int64_t rt, int nr)
{
    mv_rows g;
    for (int i = 0; i < MV_R; i++)
        g.p[i] = (const uint8_t *)w->data + (size_t)(rt + (i < nr ? i : nr - 1)) * w->row_stride;
    return g;
}

/* Rows are consumed 16 at a time, block by block: 16 short interleaved streams that the
 * hardware prefetchers do not follow well. So the bytes of the rows [from, from + 16) (below r1)
 * are prefetched into L2 explicitly, slice `step` of `n_steps` per call: while a group runs, its
 * steps fetch the next group (measured on Zen 4: into L2 beats into L1, which the current group
 * needs, and one group ahead is enough). */
MV_INLINE void mv_prefetch_group(const rk_matrix *w, int64_t from, int64_t r1, int64_t step,
                                 int64_t n_steps)
{
    if (from >= r1)
        return;
    const int64_t n = r1 - from < MV_R ? r1 - from : MV_R;
    const size_t span = (size_t)n * w->row_stride;
    const uint8_t *base = (const uint8_t *)w->data + (size_t)from * w->row_stride;
    const size_t lines = (span + 63) / 64;
    const size_t a = lines * (size_t)step / (size_t)n_steps;
    const size_t b = lines * (size_t)(step + 1) / (size_t)n_steps;
    for (size_t l = a; l < b; l++)
        _mm_prefetch((const char *)(base + 64 * l), _MM_HINT_T1);
}

/* The first group of a call has nobody to fetch it ahead: ask for all of it at once. */
MV_INLINE void mv_prefetch_first(const rk_matrix *w, int64_t r0, int64_t r1)
{
    mv_prefetch_group(w, r0, r1, 0, 1);
}

/* The f16 at byte `at` of every lane's row. (Scalar loads: vpgatherdd is slow on the CPUs that
 * matter here, e.g. Zen 4.) */
MV_INLINE __m512 mv_gather_f16(const mv_rows *g, size_t at)
{
    uint16_t h[MV_R];
    for (int i = 0; i < MV_R; i++)
        memcpy(&h[i], g->p[i] + at, 2);
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)h));
}

/* s_j's 128-bit lane i holds 4 partial sums of row 4i + j; returns the 16 row sums in order */
MV_INLINE __m512i mv_reduce_4x4(__m512i s0, __m512i s1, __m512i s2, __m512i s3)
{
    const __m512i a =
        _mm512_add_epi32(_mm512_unpacklo_epi32(s0, s1), _mm512_unpackhi_epi32(s0, s1));
    const __m512i b =
        _mm512_add_epi32(_mm512_unpacklo_epi32(s2, s3), _mm512_unpackhi_epi32(s2, s3));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}

/* v[r] holds 16 partial sums of row r; returns the 16 row sums in order */
MV_INLINE __m512i mv_reduce_16x16(const __m512i v[MV_R])
{
    __m512i a[8], b[4], c[2];
    for (int i = 0; i < 8; i++)
        a[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                                _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        b[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(a[2 * i], a[2 * i + 1]),
                                _mm512_unpackhi_epi64(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 2; i++)
        c[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(b[2 * i], b[2 * i + 1], 0x88),
                                _mm512_shuffle_i32x4(b[2 * i], b[2 * i + 1], 0xDD));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(c[0], c[1], 0x88),
                            _mm512_shuffle_i32x4(c[0], c[1], 0xDD));
}

/* 16 bytes at off of the rows j, 4 + j, 8 + j, 12 + j, one per 128-bit lane */
MV_INLINE __m512i mv_load4x16(const mv_rows *g, int j, size_t off)
{
    __m512i z =
        _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(const void *)(g->p[j] + off)));
    z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(const void *)(g->p[4 + j] + off)),
                           1);
    z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(const void *)(g->p[8 + j] + off)),
                           2);
    return _mm512_inserti32x4(
        z, _mm_loadu_si128((const __m128i *)(const void *)(g->p[12 + j] + off)), 3);
}

/* Bit 4 of the quants of Q5_0 / Q5_1 for the 16 rows of a group: masks[j] (low halves, elements
 * 0..15) and masks[4 + j] (high halves) hold 16 bits of qh of the rows j, 4 + j, 8 + j, 12 + j,
 * in the order of mv_load4x16's lanes. One gather of the 16 qh words, one permutation. */
MV_INLINE void mv_qh_masks(const mv_rows *g, size_t off, uint64_t masks[8])
{
    uint32_t words[MV_R];
    for (int i = 0; i < MV_R; i++)
        memcpy(&words[i], g->p[i] + off, 4);
    /* int16 position 4j + i <- low half of row 4i + j; 16 + 4j + i <- its high half */
    static const int16_t order[32] = {0, 8, 16, 24, 2, 10, 18, 26, 4, 12, 20, 28, 6, 14, 22, 30,
                                      1, 9, 17, 25, 3, 11, 19, 27, 5, 13, 21, 29, 7, 15, 23, 31};
    const __m512i idx = _mm512_loadu_si512((const void *)order);
    const __m512i qh = _mm512_loadu_si512((const void *)words);
    _mm512_storeu_si512((void *)masks, _mm512_permutexvar_epi16(idx, qh));
}

/* One 32-element block of a 16-row group against activation quants XLO / XHI (each 16 bytes
 * broadcast to the four lanes): the 16 exact integer sums, bias not yet removed. */
MV_INLINE __m512i mv_blk32_isum(rk_type t, const mv_rows *g, size_t off, __m512i xlo, __m512i xhi)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512i s[4];
    uint64_t qh_masks[8] = {0};
    if (t == RK_TYPE_Q5_0 || t == RK_TYPE_Q5_1)
        mv_qh_masks(g, off + (t == RK_TYPE_Q5_0 ? 2 : 4), qh_masks);
    for (int j = 0; j < 4; j++) {
        __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
        int eight = 0;
        switch (t) {
        case RK_TYPE_Q8_0:
        case RK_TYPE_APR_Q8: {
            const size_t qo = t == RK_TYPE_Q8_0 ? 2 : 0;
            const __m512i z1 = _mm512_inserti64x4(
                _mm512_castsi256_si512(
                    _mm256_loadu_si256((const __m256i *)(const void *)(g->p[j] + off + qo))),
                _mm256_loadu_si256((const __m256i *)(const void *)(g->p[4 + j] + off + qo)), 1);
            const __m512i z2 = _mm512_inserti64x4(
                _mm512_castsi256_si512(
                    _mm256_loadu_si256((const __m256i *)(const void *)(g->p[8 + j] + off + qo))),
                _mm256_loadu_si256((const __m256i *)(const void *)(g->p[12 + j] + off + qo)), 1);
            lo = _mm512_permutex2var_epi64(z1, _mm512_setr_epi64(0, 1, 4, 5, 8, 9, 12, 13), z2);
            hi = _mm512_permutex2var_epi64(z1, _mm512_setr_epi64(2, 3, 6, 7, 10, 11, 14, 15), z2);
            eight = 1;
            break;
        }
        case RK_TYPE_Q4_0:
        case RK_TYPE_APR_Q4:
        case RK_TYPE_Q4_1: {
            const __m512i z = mv_load4x16(g, j, off + (t == RK_TYPE_Q4_1 ? 4 : 2));
            lo = _mm512_and_si512(z, m4);
            hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
            break;
        }
        case RK_TYPE_Q5_0:
        case RK_TYPE_Q5_1: {
            const size_t qh = t == RK_TYPE_Q5_0 ? 2 : 4;
            const __m512i z = mv_load4x16(g, j, off + qh + 4);
            const __m512i b4 = _mm512_set1_epi8(0x10);
            lo = _mm512_and_si512(z, m4);
            hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
            lo = _mm512_mask_add_epi8(lo, (__mmask64)qh_masks[j], lo, b4);
            hi = _mm512_mask_add_epi8(hi, (__mmask64)qh_masks[4 + j], hi, b4);
            break;
        }
        case RK_TYPE_F32:
        case RK_TYPE_F16:
        case RK_TYPE_BF16:
        case RK_TYPE_Q8_1:
        case RK_TYPE_Q2_K:
        case RK_TYPE_Q3_K:
        case RK_TYPE_Q4_K:
        case RK_TYPE_Q5_K:
        case RK_TYPE_Q6_K:
        case RK_TYPE_Q8_K: break;
        }
        if (eight) {
#if RK_VNNI
            const __m512i flip = _mm512_set1_epi8((char)0x80);
            s[j] = dot_u8s8(_mm512_setzero_si512(), _mm512_xor_si512(lo, flip), xlo);
            s[j] = dot_u8s8(s[j], _mm512_xor_si512(hi, flip), xhi);
#else
            s[j] = dot_s8s8(_mm512_setzero_si512(), lo, xlo);
            s[j] = dot_s8s8(s[j], hi, xhi);
#endif
        } else {
            s[j] = dot_u8s8(_mm512_setzero_si512(), lo, xlo);
            s[j] = dot_u8s8(s[j], hi, xhi);
        }
    }
    return mv_reduce_4x4(s[0], s[1], s[2], s[3]);
}

/* Bias of the unsigned quants above (their integer sum includes bias * sum(x)). */
static int mv_blk32_bias(rk_type t)
{
    switch (t) {
    case RK_TYPE_Q4_0:
    case RK_TYPE_APR_Q4: return 8;
    case RK_TYPE_Q5_0: return 16;
    case RK_TYPE_Q8_0:
    case RK_TYPE_APR_Q8: return RK_VNNI ? 128 : 0;
    case RK_TYPE_Q4_1:
    case RK_TYPE_Q5_1:
    case RK_TYPE_F32:
    case RK_TYPE_F16:
    case RK_TYPE_BF16:
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q2_K:
    case RK_TYPE_Q3_K:
    case RK_TYPE_Q4_K:
    case RK_TYPE_Q5_K:
    case RK_TYPE_Q6_K:
    case RK_TYPE_Q8_K: return 0;
    }
    return 0;
}

MV_INLINE void matvec_blk32(rk_type t, const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x,
                            float *y)
{
    const int64_t nb = w->k / 32;
    const int min = t == RK_TYPE_Q4_1 || t == RK_TYPE_Q5_1;
    const size_t ab = min ? 36 : 34, aq = min ? 4 : 2;
    const size_t bb = rk_type_traits_get(t)->block_bytes;
    const int bias = mv_blk32_bias(t);
    const uint8_t *xsums = min ? NULL : rk_act_q8_0_sums_at(x, nb);
    /* APR_Q4 pairs elements 2i / 2i + 1 in one byte: split the activation into even / odd */
    const __m128i even = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m128i odd = _mm_setr_epi8(1, 3, 5, 7, 9, 11, 13, 15, -1, -1, -1, -1, -1, -1, -1, -1);
    mv_prefetch_first(w, r0, r1);
    for (int64_t rt = r0; rt < r1; rt += MV_R) {
        const int nr = (int)(r1 - rt < MV_R ? r1 - rt : MV_R);
        const mv_rows g = mv_group(w, rt, nr);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            mv_prefetch_group(w, rt + MV_R, r1, b, nb);
            const uint8_t *xb = x + b * ab;
            __m128i xl = _mm_loadu_si128((const __m128i *)(const void *)(xb + aq));
            __m128i xh = _mm_loadu_si128((const __m128i *)(const void *)(xb + aq + 16));
            if (t == RK_TYPE_APR_Q4) {
                const __m128i e =
                    _mm_unpacklo_epi64(_mm_shuffle_epi8(xl, even), _mm_shuffle_epi8(xh, even));
                const __m128i o =
                    _mm_unpacklo_epi64(_mm_shuffle_epi8(xl, odd), _mm_shuffle_epi8(xh, odd));
                xl = e;
                xh = o;
            }
            __m512i isum = mv_blk32_isum(t, &g, (size_t)b * bb, _mm512_broadcast_i32x4(xl),
                                         _mm512_broadcast_i32x4(xh));
            if (bias)
                isum = _mm512_sub_epi32(isum,
                                        _mm512_set1_epi32(bias * (int32_t)load_u32(xsums + 4 * b)));
            const __m512 dx = _mm512_set1_ps(load_f16(xb));
            const __m512 dw =
                t == RK_TYPE_APR_Q8 ? _mm512_set1_ps(w->scale) : mv_gather_f16(&g, (size_t)b * bb);
            const __m512 fi = _mm512_cvtepi32_ps(isum);
            if (min) {
                const __m512 m = mv_gather_f16(&g, (size_t)b * bb + 2);
                const __m512 sx = _mm512_set1_ps(load_f16(xb + 2));
                acc = _mm512_add_ps(acc, _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(dw, dx), fi),
                                                       _mm512_mul_ps(m, sx)));
            } else {
                acc = _mm512_add_ps(acc, _mm512_mul_ps(fi, _mm512_mul_ps(dw, dx)));
            }
        }
        _mm512_mask_storeu_ps(y + rt, row_mask(nr), acc);
    }
}

/* Q4_K / Q5_K scales[12] -> eight 6-bit scales (low 8 bytes of *sc) and mins (*mn) */
MV_INLINE void k4_scales(const uint8_t *s12, uint64_t *sc, uint64_t *mn)
{
    uint32_t u0, u1, u2;
    memcpy(&u0, s12, 4);
    memcpy(&u1, s12 + 4, 4);
    memcpy(&u2, s12 + 8, 4);
    const uint32_t sc_lo = u0 & 0x3f3f3f3fu, mn_lo = u1 & 0x3f3f3f3fu;
    const uint32_t sc_hi = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
    const uint32_t mn_hi = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
    *sc = (uint64_t)sc_lo | ((uint64_t)sc_hi << 32);
    *mn = (uint64_t)mn_lo | ((uint64_t)mn_hi << 32);
}

/* int16 lane i of the result = v16[idx(i)] where the first 16 lanes take a and the rest b */
MV_INLINE __m512i mv_spread2(__m512i v16, int a, int b)
{
    const __m512i idx = _mm512_mask_blend_epi16(0xffff0000u, _mm512_set1_epi16((short)a),
                                                _mm512_set1_epi16((short)b));
    return _mm512_permutexvar_epi16(idx, v16);
}

MV_INLINE __m512i mv_nib_lo(__m512i z) { return _mm512_and_si512(z, _mm512_set1_epi8(0x0f)); }
MV_INLINE __m512i mv_nib_hi(__m512i z)
{
    return _mm512_and_si512(_mm512_srli_epi16(z, 4), _mm512_set1_epi8(0x0f));
}

/* q | (h & 0x10) */
MV_INLINE __m512i mv_or_bit4(__m512i q, __m512i h)
{
    return _mm512_ternarylogic_epi32(q, h, _mm512_set1_epi8(0x10), 0xF8);
}

MV_INLINE void matvec_k45(int five, const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x,
                          float *y)
{
    const int64_t nsb = w->k / 256;
    const size_t bb = five ? 176 : 144, qo = five ? 48 : 16;
    mv_prefetch_first(w, r0, r1);
    for (int64_t rt = r0; rt < r1; rt += MV_R) {
        const int nr = (int)(r1 - rt < MV_R ? r1 - rt : MV_R);
        const mv_rows g = mv_group(w, rt, nr);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t s = 0; s < nsb; s++) {
            mv_prefetch_group(w, rt + MV_R, r1, s, nsb);
            const uint8_t *xb = x + s * 292;
            const uint8_t *xq = xb + 4;
            const __m512i X0 = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)xq)),
                _mm256_loadu_si256((const __m256i *)(const void *)(xq + 64)), 1);
            const __m512i X1 =
                _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(
                                       (const __m256i *)(const void *)(xq + 32))),
                                   _mm256_loadu_si256((const __m256i *)(const void *)(xq + 96)), 1);
            const __m512i X2 = _mm512_inserti64x4(
                _mm512_castsi256_si512(
                    _mm256_loadu_si256((const __m256i *)(const void *)(xq + 128))),
                _mm256_loadu_si256((const __m256i *)(const void *)(xq + 192)), 1);
            const __m512i X3 = _mm512_inserti64x4(
                _mm512_castsi256_si512(
                    _mm256_loadu_si256((const __m256i *)(const void *)(xq + 160))),
                _mm256_loadu_si256((const __m256i *)(const void *)(xq + 224)), 1);
            /* sums of 32 activation quants per sub-block, as int16 */
            const __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)(xb + 260));
            const __m128i bp = _mm256_cvtepi32_epi16(_mm256_madd_epi16(bs, _mm256_set1_epi16(1)));
            __m512i part[MV_R];
            __m128i mpart[MV_R];
            for (int r = 0; r < MV_R; r++) {
                const uint8_t *blk = g.p[r] + s * bb;
                uint64_t sc, mn;
                k4_scales(blk + 4, &sc, &mn);
                const __m512i sc16 =
                    _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
                const __m512i z0 = _mm512_loadu_si512((const void *)(blk + qo));
                const __m512i z1 = _mm512_loadu_si512((const void *)(blk + qo + 64));
                __m512i q0 = mv_nib_lo(z0), q1 = mv_nib_hi(z0), q2 = mv_nib_lo(z1),
                        q3 = mv_nib_hi(z1);
                if (five) {
                    const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 16));
                    const __m512i hz =
                        _mm512_inserti64x4(_mm512_castsi256_si512(h), _mm256_srli_epi16(h, 2), 1);
                    q0 = mv_or_bit4(q0, _mm512_slli_epi16(hz, 4));
                    q1 = mv_or_bit4(q1, _mm512_slli_epi16(hz, 3));
                    q2 = mv_or_bit4(q2, hz);
                    q3 = mv_or_bit4(q3, _mm512_srli_epi16(hz, 1));
                }
                __m512i a = _mm512_setzero_si512();
                a = dot_s16(a, _mm512_maddubs_epi16(q0, X0), mv_spread2(sc16, 0, 2));
                a = dot_s16(a, _mm512_maddubs_epi16(q1, X1), mv_spread2(sc16, 1, 3));
                a = dot_s16(a, _mm512_maddubs_epi16(q2, X2), mv_spread2(sc16, 4, 6));
                a = dot_s16(a, _mm512_maddubs_epi16(q3, X3), mv_spread2(sc16, 5, 7));
                part[r] = a;
                mpart[r] = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn)), bp);
            }
            const __m512i isum = mv_reduce_16x16(part);
            __m512i mz[4];
            for (int j = 0; j < 4; j++) {
                __m512i z = _mm512_castsi128_si512(mpart[j]);
                z = _mm512_inserti32x4(z, mpart[4 + j], 1);
                z = _mm512_inserti32x4(z, mpart[8 + j], 2);
                mz[j] = _mm512_inserti32x4(z, mpart[12 + j], 3);
            }
            const __m512i msum = mv_reduce_4x4(mz[0], mz[1], mz[2], mz[3]);
            const __m512 dx = _mm512_set1_ps(load_f32(xb));
            const __m512 dw = mv_gather_f16(&g, (size_t)s * bb);
            const __m512 dmin = mv_gather_f16(&g, (size_t)s * bb + 2);
            const __m512 u =
                _mm512_sub_ps(_mm512_mul_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(isum)),
                              _mm512_mul_ps(_mm512_mul_ps(dmin, dx), _mm512_cvtepi32_ps(msum)));
            acc = _mm512_add_ps(acc, u);
        }
        _mm512_mask_storeu_ps(y + rt, row_mask(nr), acc);
    }
}

MV_INLINE __m512i mv_spread4(__m512i v16, int first)
{
    /* int16 lane i -> element first + i / 8 */
    const __m512i idx = _mm512_add_epi16(
        _mm512_set1_epi16((short)first),
        _mm512_srli_epi16(_mm512_setr_epi32(0x00010000, 0x00030002, 0x00050004, 0x00070006,
                                            0x00090008, 0x000b000a, 0x000d000c, 0x000f000e,
                                            0x00110010, 0x00130012, 0x00150014, 0x00170016,
                                            0x00190018, 0x001b001a, 0x001d001c, 0x001f001e),
                          3));
    return _mm512_permutexvar_epi16(idx, v16);
}

static void matvec_q6_K(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x, float *y)
{
    const int64_t nsb = w->k / 256;
    const __m512i m30 = _mm512_set1_epi8(0x30), m0f = _mm512_set1_epi8(0x0f);
    mv_prefetch_first(w, r0, r1);
    for (int64_t rt = r0; rt < r1; rt += MV_R) {
        const int nr = (int)(r1 - rt < MV_R ? r1 - rt : MV_R);
        const mv_rows g = mv_group(w, rt, nr);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t s = 0; s < nsb; s++) {
            mv_prefetch_group(w, rt + MV_R, r1, s, nsb);
            const uint8_t *xb = x + s * 292;
            __m512i X[4];
            for (int m = 0; m < 4; m++)
                X[m] = _mm512_loadu_si512((const void *)(xb + 4 + 64 * m));
            const __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)(xb + 260));
            __m512i part[MV_R];
            for (int r = 0; r < MV_R; r++) {
                const uint8_t *blk = g.p[r] + s * 210;
                const __m256i sc = _mm256_cvtepi8_epi16(
                    _mm_loadu_si128((const __m128i *)(const void *)(blk + 192)));
                const __m512i sc16 = _mm512_castsi256_si512(sc);
                __m512i a = _mm512_setzero_si512();
                for (int h = 0; h < 2; h++) {
                    const __m512i l = _mm512_loadu_si512((const void *)(blk + 64 * h));
                    const __m256i hb =
                        _mm256_loadu_si256((const __m256i *)(const void *)(blk + 128 + 32 * h));
                    const __m512i hz =
                        _mm512_inserti64x4(_mm512_castsi256_si512(hb), _mm256_srli_epi16(hb, 2), 1);
                    /* (l & 0x0f) | t */
                    const __m512i qlo = _mm512_ternarylogic_epi32(
                        l, _mm512_and_si512(_mm512_slli_epi16(hz, 4), m30), m0f, 0xEC);
                    const __m512i qhi = _mm512_ternarylogic_epi32(
                        _mm512_srli_epi16(l, 4), _mm512_and_si512(hz, m30), m0f, 0xEC);
                    a = dot_s16(a, _mm512_maddubs_epi16(qlo, X[2 * h]), mv_spread4(sc16, 8 * h));
                    a = dot_s16(a, _mm512_maddubs_epi16(qhi, X[2 * h + 1]),
                                mv_spread4(sc16, 8 * h + 4));
                }
                /* the quants were stored + 32: remove 32 * sum_j sc_j * bsum_j */
                const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc, bs), 5);
                part[r] = _mm512_sub_epi32(a, _mm512_zextsi256_si512(corr));
            }
            const __m512i isum = mv_reduce_16x16(part);
            const __m512 dx = _mm512_set1_ps(load_f32(xb));
            const __m512 dw = mv_gather_f16(&g, (size_t)s * 210 + 208);
            acc =
                _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(isum)));
        }
        _mm512_mask_storeu_ps(y + rt, row_mask(nr), acc);
    }
}

/* ---- the R16 layout (matmul_repack.c): 16 rows per tile, one dword per row per 64 bytes -----
 * One 512-bit load is one "plane": 4 quants (or 8 nibbles) of each of the 16 rows, lane = row,
 * so vpdpbusd against the broadcast activation quad adds straight into the rows' lanes: no
 * reduction across lanes, one sequential stream of bytes. NC columns at once (1 for decode). */

#define R16_NC_MAX 8 /* columns per pass of the GEMM: 32-element types */
#define R16_NC_K   4 /* K-quants (more accumulators per column) */

/* the activation quad of column c at byte `at` of its row, in every lane */
MV_INLINE __m512i xquad(const uint8_t *xc, size_t at)
{
    return _mm512_set1_epi32((int32_t)load_u32(xc + at));
}

/* unsigned quants against one activation quad; Q8_0's planes hold q ^ 0x80 */
MV_INLINE __m512i r16_dot(__m512i acc, __m512i wv, __m512i xv, int eight)
{
#if RK_VNNI
    (void)eight;
    return dot_u8s8(acc, wv, xv);
#else
    if (eight)
        return dot_s8s8(acc, _mm512_xor_si512(wv, _mm512_set1_epi8((char)0x80)), xv);
    return dot_u8s8(acc, wv, xv);
#endif
}

MV_INLINE __m512 r16_f16x16(const uint8_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

/* byte b (0..3) of every dword, zero-extended (as int32), or duplicated into both int16 halves */
MV_INLINE __m512i byte_of_dwords(__m512i v, int b)
{
    return _mm512_and_si512(_mm512_srli_epi32(v, 8 * b), _mm512_set1_epi32(0xff));
}

/* Q4_0 / Q5_0 / Q8_0: blocks of 32 */
MV_INLINE void r16_blk32(rk_type t, const rk_matrix *w, int64_t g, int64_t nb,
                         const uint8_t *const xs[], int nc, __m512 acc[])
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), b4 = _mm512_set1_epi8(0x10);
    const int eight = t == RK_TYPE_Q8_0;
    const int bias = t == RK_TYPE_Q4_0 ? 8 : t == RK_TYPE_Q5_0 ? 16 : (RK_VNNI ? 128 : 0);
    const uint8_t *tile = rk_r16_tile(w, g, 0);
    const size_t tb = t == RK_TYPE_Q8_0 ? 544 : t == RK_TYPE_Q5_0 ? 352 : 288;
    for (int64_t b = 0; b < nb; b++, tile += tb) {
        __m512i isum[R16_NC_MAX];
        for (int c = 0; c < nc; c++)
            isum[c] = _mm512_set1_epi32(-bias *
                                        (int32_t)load_u32(rk_act_q8_0_sums_at(xs[c], nb) + 4 * b));
        const size_t xb = (size_t)b * 34 + 2;
        if (eight) {
            for (int p = 0; p < 8; p++) {
                const __m512i wv = _mm512_loadu_si512((const void *)(tile + 32 + 64 * p));
                for (int c = 0; c < nc; c++)
                    isum[c] = r16_dot(isum[c], wv, xquad(xs[c], xb + 4 * p), 1);
            }
        } else {
            const size_t qo = t == RK_TYPE_Q5_0 ? 96 : 32;
            const __m512i h = t == RK_TYPE_Q5_0 ? _mm512_loadu_si512((const void *)(tile + 32))
                                                : _mm512_setzero_si512();
            for (int p = 0; p < 4; p++) {
                const __m512i z = _mm512_loadu_si512((const void *)(tile + qo + 64 * p));
                __m512i lo = _mm512_and_si512(z, m4);
                __m512i hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
                if (t == RK_TYPE_Q5_0) {
                    /* bit-planar qh: bit 8i + g is element 4g + i; groups p (low) and 4 + p */
                    lo = _mm512_ternarylogic_epi32(
                        lo, _mm512_sll_epi32(h, _mm_cvtsi32_si128(4 - p)), b4, 0xF8);
                    hi = _mm512_ternarylogic_epi32(hi, _mm512_srl_epi32(h, _mm_cvtsi32_si128(p)),
                                                   b4, 0xF8);
                }
                for (int c = 0; c < nc; c++) {
                    isum[c] = r16_dot(isum[c], lo, xquad(xs[c], xb + 4 * p), 0);
                    isum[c] = r16_dot(isum[c], hi, xquad(xs[c], xb + 16 + 4 * p), 0);
                }
            }
        }
        const __m512 dw = r16_f16x16(tile);
        for (int c = 0; c < nc; c++) {
            const __m512 dx = _mm512_set1_ps(load_f16(xs[c] + (size_t)b * 34));
            acc[c] = _mm512_add_ps(
                acc[c], _mm512_mul_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_mul_ps(dw, dx)));
        }
    }
}

/* Q4_K / Q5_K */
MV_INLINE void r16_k45(int five, const rk_matrix *w, int64_t g, int64_t nsb,
                       const uint8_t *const xs[], int nc, __m512 acc[])
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), b4 = _mm512_set1_epi8(0x10);
    const __m512i m6 = _mm512_set1_epi8(0x3f), m2 = _mm512_set1_epi8(0x03);
    const size_t tb = five ? 2816 : 2304;
    const uint8_t *tile = rk_r16_tile(w, g, 0);
    for (int64_t s = 0; s < nsb; s++, tile += tb) {
        /* the 6-bit scales and mins of the 16 rows (kernels/common/quant_dequant.h) */
        const __m512i s0 = _mm512_loadu_si512((const void *)(tile + 64));
        const __m512i s1 = _mm512_loadu_si512((const void *)(tile + 128));
        const __m512i s2 = _mm512_loadu_si512((const void *)(tile + 192));
        const __m512i sc_lo = _mm512_and_si512(s0, m6), mn_lo = _mm512_and_si512(s1, m6);
        const __m512i sc_hi =
            _mm512_or_si512(_mm512_and_si512(s2, m4),
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s0, 6), m2), 4));
        const __m512i mn_hi =
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(s2, 4), m4),
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s1, 6), m2), 4));
        __m512i isum[R16_NC_MAX], msum[R16_NC_MAX];
        for (int c = 0; c < nc; c++)
            isum[c] = msum[c] = _mm512_setzero_si512();
        for (int cc = 0; cc < 4; cc++) {
            __m512i tlo[R16_NC_MAX], thi[R16_NC_MAX];
            for (int c = 0; c < nc; c++)
                tlo[c] = thi[c] = _mm512_setzero_si512();
            for (int p = 0; p < 8; p++) {
                const __m512i z =
                    _mm512_loadu_si512((const void *)(tile + 256 + 64 * (8 * cc + p)));
                __m512i lo = _mm512_and_si512(z, m4);
                __m512i hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
                if (five) {
                    /* bit 2cc (low nibbles) and 2cc + 1 (high) of qh bytes 4p..4p+3 */
                    const __m512i h = _mm512_loadu_si512((const void *)(tile + 2304 + 64 * p));
                    const __m512i hl = 4 - 2 * cc >= 0
                                           ? _mm512_sll_epi32(h, _mm_cvtsi32_si128(4 - 2 * cc))
                                           : _mm512_srl_epi32(h, _mm_cvtsi32_si128(2 * cc - 4));
                    const __m512i hh = 3 - 2 * cc >= 0
                                           ? _mm512_sll_epi32(h, _mm_cvtsi32_si128(3 - 2 * cc))
                                           : _mm512_srl_epi32(h, _mm_cvtsi32_si128(2 * cc - 3));
                    lo = _mm512_ternarylogic_epi32(lo, hl, b4, 0xF8);
                    hi = _mm512_ternarylogic_epi32(hi, hh, b4, 0xF8);
                }
                for (int c = 0; c < nc; c++) {
                    const size_t at = (size_t)s * 292 + 4 + 64 * (size_t)cc + 4 * (size_t)p;
                    tlo[c] = r16_dot(tlo[c], lo, xquad(xs[c], at), 0);
                    thi[c] = r16_dot(thi[c], hi, xquad(xs[c], at + 32), 0);
                }
            }
            const __m512i sa = byte_of_dwords(cc < 2 ? sc_lo : sc_hi, (2 * cc) % 4);
            const __m512i sb = byte_of_dwords(cc < 2 ? sc_lo : sc_hi, (2 * cc + 1) % 4);
            for (int c = 0; c < nc; c++)
                isum[c] =
                    _mm512_add_epi32(isum[c], _mm512_add_epi32(_mm512_mullo_epi32(tlo[c], sa),
                                                               _mm512_mullo_epi32(thi[c], sb)));
        }
        /* mins: (m_j, m_j) int16 pairs against bsums 2j, 2j + 1 */
        for (int j = 0; j < 8; j++) {
            const __m512i mj = byte_of_dwords(j < 4 ? mn_lo : mn_hi, j % 4);
            const __m512i pair = _mm512_or_si512(mj, _mm512_slli_epi32(mj, 16));
            for (int c = 0; c < nc; c++)
                msum[c] =
                    dot_s16(msum[c], pair, xquad(xs[c], (size_t)s * 292 + 260 + 4 * (size_t)j));
        }
        const __m512 dw = r16_f16x16(tile), dmin = r16_f16x16(tile + 32);
        for (int c = 0; c < nc; c++) {
            const __m512 dx = _mm512_set1_ps(load_f32(xs[c] + (size_t)s * 292));
            const __m512 u =
                _mm512_sub_ps(_mm512_mul_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(isum[c])),
                              _mm512_mul_ps(_mm512_mul_ps(dmin, dx), _mm512_cvtepi32_ps(msum[c])));
            acc[c] = _mm512_add_ps(acc[c], u);
        }
    }
}

MV_INLINE void r16_q6_K(const rk_matrix *w, int64_t g, int64_t nsb, const uint8_t *const xs[],
                        int nc, __m512 acc[])
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    const uint8_t *tile = rk_r16_tile(w, g, 0);
    for (int64_t s = 0; s < nsb; s++, tile += 3360) {
        __m512i isum[R16_NC_MAX];
        for (int c = 0; c < nc; c++)
            isum[c] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            for (int half = 0; half < 2; half++) {
                __m512i t[4][R16_NC_MAX];
                for (int q = 0; q < 4; q++)
                    for (int c = 0; c < nc; c++)
                        t[q][c] = _mm512_setzero_si512();
                for (int p = 4 * half; p < 4 * half + 4; p++) {
                    const __m512i a =
                        _mm512_loadu_si512((const void *)(tile + 288 + 64 * (3 * (8 * h + p))));
                    const __m512i cq =
                        _mm512_loadu_si512((const void *)(tile + 288 + 64 * (3 * (8 * h + p) + 1)));
                    const __m512i hb =
                        _mm512_loadu_si512((const void *)(tile + 288 + 64 * (3 * (8 * h + p) + 2)));
                    __m512i q[4];
                    q[0] = _mm512_ternarylogic_epi32(
                        a, _mm512_and_si512(_mm512_slli_epi16(hb, 4), m30), m4, 0xEC);
                    q[1] = _mm512_ternarylogic_epi32(
                        cq, _mm512_and_si512(_mm512_slli_epi16(hb, 2), m30), m4, 0xEC);
                    q[2] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(a, 4),
                                                     _mm512_and_si512(hb, m30), m4, 0xEC);
                    q[3] = _mm512_ternarylogic_epi32(
                        _mm512_srli_epi16(cq, 4), _mm512_and_si512(_mm512_srli_epi16(hb, 2), m30),
                        m4, 0xEC);
                    for (int qq = 0; qq < 4; qq++)
                        for (int c = 0; c < nc; c++) {
                            const size_t at = (size_t)s * 292 + 4 + 128 * (size_t)h +
                                              32 * (size_t)qq + 4 * (size_t)p;
                            t[qq][c] = r16_dot(t[qq][c], q[qq], xquad(xs[c], at), 0);
                        }
                }
                /* sub-block j = 8h + 2qq + half: (t - 32 * bsum_j) * scale_j */
                for (int qq = 0; qq < 4; qq++) {
                    const int j = 8 * h + 2 * qq + half;
                    const __m512i wv = _mm512_loadu_si512((const void *)(tile + 32 + 64 * (j / 4)));
                    const __m512i sc =
                        _mm512_srai_epi32(_mm512_slli_epi32(wv, 24 - 8 * (j % 4)), 24);
                    for (int c = 0; c < nc; c++) {
                        const int32_t bsum =
                            (int16_t)rk_load_u16le(xs[c] + (size_t)s * 292 + 260 + 2 * (size_t)j);
                        const __m512i tt = _mm512_sub_epi32(t[qq][c], _mm512_set1_epi32(32 * bsum));
                        isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(tt, sc));
                    }
                }
            }
        }
        const __m512 dw = r16_f16x16(tile);
        for (int c = 0; c < nc; c++) {
            const __m512 dx = _mm512_set1_ps(load_f32(xs[c] + (size_t)s * 292));
            acc[c] = _mm512_add_ps(
                acc[c], _mm512_mul_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(isum[c])));
        }
    }
}

MV_INLINE void r16_run(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride, int nc_max)
{
    const rk_type t = w->type;
    const int64_t nblk = w->k / rk_type_traits_get(t)->block_elems;
    for (int64_t rt = r0; rt < r1; rt += 16) {
        const int nr = (int)(r1 - rt < 16 ? r1 - rt : 16);
        const __mmask16 m = row_mask(nr);
        for (int64_t c0 = 0; c0 < n_cols; c0 += nc_max) {
            const int nc = (int)(n_cols - c0 < nc_max ? n_cols - c0 : nc_max);
            const uint8_t *xs[R16_NC_MAX];
            __m512 acc[R16_NC_MAX];
            for (int c = 0; c < R16_NC_MAX; c++) {
                xs[c] = act + (size_t)(c0 + (c < nc ? c : nc - 1)) * act_stride;
                acc[c] = _mm512_setzero_ps();
            }
            switch (t) {
            case RK_TYPE_Q4_0:
            case RK_TYPE_Q5_0:
            case RK_TYPE_Q8_0: r16_blk32(t, w, rt / 16, nblk, xs, nc_max, acc); break;
            case RK_TYPE_Q4_K: r16_k45(0, w, rt / 16, nblk, xs, nc_max, acc); break;
            case RK_TYPE_Q5_K: r16_k45(1, w, rt / 16, nblk, xs, nc_max, acc); break;
            case RK_TYPE_Q6_K: r16_q6_K(w, rt / 16, nblk, xs, nc_max, acc); break;
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
            case RK_TYPE_APR_Q8: break;
            }
            for (int c = 0; c < nc; c++)
                _mm512_mask_storeu_ps(y + (size_t)(c0 + c) * y_stride + (size_t)rt, m, acc[c]);
        }
    }
}

static void r16_matvec(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    r16_run(w, r0, r1, act, act_stride, n_cols, y, y_stride, 1);
}

static void r16_gemm(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                     size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    if (w->type == RK_TYPE_Q6_K) /* its quants take many operations: decode a panel once */
        gemm_quant(w, r0, r1, act, act_stride, n_cols, y, y_stride);
    else if (w->type == RK_TYPE_Q4_K || w->type == RK_TYPE_Q5_K)
        r16_run(w, r0, r1, act, act_stride, n_cols, y, y_stride, R16_NC_K);
    else
        r16_run(w, r0, r1, act, act_stride, n_cols, y, y_stride, R16_NC_MAX);
}

/* ---- entry points ---------------------------------------------------------------------------- */

static int is_float_type(rk_type t)
{
    return t == RK_TYPE_F32 || t == RK_TYPE_F16 || t == RK_TYPE_BF16;
}

void MM_FN(rk_mm_gemm)(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    if (w->layout == RK_LAYOUT_R16)
        r16_gemm(w, r0, r1, act, act_stride, n_cols, y, y_stride);
    else if (is_float_type(w->type))
        gemm_float(w, r0, r1, act, act_stride, n_cols, y, y_stride);
    else
        gemm_quant(w, r0, r1, act, act_stride, n_cols, y, y_stride);
}

static void matvec_q8_0(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x, float *y)
{
    matvec_blk32(RK_TYPE_Q8_0, w, r0, r1, x, y);
}
static void matvec_q5_0(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x, float *y)
{
    matvec_blk32(RK_TYPE_Q5_0, w, r0, r1, x, y);
}
static void matvec_q4_0(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x, float *y)
{
    matvec_blk32(RK_TYPE_Q4_0, w, r0, r1, x, y);
}
static void matvec_q4_1(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x, float *y)
{
    matvec_blk32(RK_TYPE_Q4_1, w, r0, r1, x, y);
}
static void matvec_q5_1(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x, float *y)
{
    matvec_blk32(RK_TYPE_Q5_1, w, r0, r1, x, y);
}
static void matvec_apr_q4(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x, float *y)
{
    matvec_blk32(RK_TYPE_APR_Q4, w, r0, r1, x, y);
}
static void matvec_apr_q8(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x, float *y)
{
    matvec_blk32(RK_TYPE_APR_Q8, w, r0, r1, x, y);
}
static void matvec_q4_K(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x, float *y)
{
    matvec_k45(0, w, r0, r1, x, y);
}
static void matvec_q5_K(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x, float *y)
{
    matvec_k45(1, w, r0, r1, x, y);
}

void MM_FN(rk_mm_matvec)(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                         size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    if (w->layout == RK_LAYOUT_R16) {
        r16_matvec(w, r0, r1, act, act_stride, n_cols, y, y_stride);
        return;
    }
    for (int64_t c = 0; c < n_cols; c++) {
        const uint8_t *x = act + (size_t)c * act_stride;
        float *yc = y + (size_t)c * y_stride;
        switch (w->type) {
        case RK_TYPE_F32:
        case RK_TYPE_F16:
        case RK_TYPE_BF16: matvec_float(w, r0, r1, (const float *)(const void *)x, yc); break;
        case RK_TYPE_Q8_0: matvec_q8_0(w, r0, r1, x, yc); break;
        case RK_TYPE_Q5_0: matvec_q5_0(w, r0, r1, x, yc); break;
        case RK_TYPE_Q4_0: matvec_q4_0(w, r0, r1, x, yc); break;
        case RK_TYPE_Q4_1: matvec_q4_1(w, r0, r1, x, yc); break;
        case RK_TYPE_Q5_1: matvec_q5_1(w, r0, r1, x, yc); break;
        case RK_TYPE_APR_Q4: matvec_apr_q4(w, r0, r1, x, yc); break;
        case RK_TYPE_APR_Q8: matvec_apr_q8(w, r0, r1, x, yc); break;
        case RK_TYPE_Q4_K: matvec_q4_K(w, r0, r1, x, yc); break;
        case RK_TYPE_Q5_K: matvec_q5_K(w, r0, r1, x, yc); break;
        case RK_TYPE_Q6_K: matvec_q6_K(w, r0, r1, x, yc); break;
        case RK_TYPE_Q2_K:
        case RK_TYPE_Q3_K:
        case RK_TYPE_Q8_1:
        case RK_TYPE_Q8_K: gemm_quant(w, r0, r1, x, act_stride, 1, yc, y_stride); break;
        }
    }
}
