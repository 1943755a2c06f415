/* AVX2 (+FMA, F16C) matmul kernels: rk math (matmul.h) with 8 rows per vector, returning the
 * scalar reference's bits (exact integer sums via vpmaddubsw / vpmaddwd, then the reference's
 * float operations lane by lane). Not for: CPUs without AVX2, FMA and F16C. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "common/half.h"
#include "cpu/matmul_internal.h"

#define PANEL_R 8
#include "cpu/matmul_panel.h"

/* u8 x s8 products summed in groups of 4; exact while u <= 128 */
static inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s)
{
    const __m256i p16 = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

static inline __m256i dot_s8s8(__m256i acc, __m256i w, __m256i x)
{
    return dot_u8s8(acc, _mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
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

/* lanes [0, n) set */
static inline __m256i lane_mask(int n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

/* ---- GEMM over a decoded panel ------------------------------------------------------------- */

#define GEMM_C 4

static inline void acc_load(__m256 acc[GEMM_C], float *const yc[GEMM_C], __m256i m, int first)
{
    for (int c = 0; c < GEMM_C; c++)
        acc[c] = first ? _mm256_setzero_ps() : _mm256_maskload_ps(yc[c], m);
}

static inline void acc_store(const __m256 acc[GEMM_C], float *const yc[GEMM_C], __m256i m, int nc)
{
    for (int c = 0; c < nc; c++)
        _mm256_maskstore_ps(yc[c], m, acc[c]);
}

static void gemm_blk32(const rk_panel *p, panel_info info, int n_blk, int64_t b0, int64_t nb,
                       const uint8_t *const xs[GEMM_C], __m256 acc[GEMM_C])
{
    const int min = info.kind == PANEL_BLK32_MIN;
    const size_t ab = min ? 36 : 34;
    const size_t aq = min ? 4 : 2;
    for (int b = 0; b < n_blk; b++) {
        const int64_t ba = b0 + b;
        __m256i isum[GEMM_C];
        for (int c = 0; c < GEMM_C; c++) {
            int32_t init = 0;
            if (info.bias) {
                const int32_t xsum = (int32_t)load_u32(rk_act_q8_0_sums_at(xs[c], nb) + 4 * ba);
                init = -info.bias * xsum;
            }
            isum[c] = _mm256_set1_epi32(init);
        }
        const uint8_t *q = p->q + (size_t)b * 8 * 32;
        for (int g = 0; g < 8; g++) {
            const __m256i wv = _mm256_load_si256((const __m256i *)(const void *)(q + g * 32));
            for (int c = 0; c < GEMM_C; c++) {
                const __m256i xv =
                    _mm256_set1_epi32((int32_t)load_u32(xs[c] + ba * ab + aq + 4 * g));
                isum[c] = info.signed_w ? dot_s8s8(isum[c], wv, xv) : dot_u8s8(isum[c], wv, xv);
            }
        }
        const __m256 dw = _mm256_load_ps(p->d[b]);
        for (int c = 0; c < GEMM_C; c++) {
            const float dx = load_f16(xs[c] + ba * ab);
            const __m256 t = _mm256_mul_ps(dw, _mm256_set1_ps(dx));
            const __m256 fi = _mm256_cvtepi32_ps(isum[c]);
            if (min) {
                const float sx = load_f16(xs[c] + ba * ab + 2);
                const __m256 u =
                    _mm256_add_ps(_mm256_mul_ps(t, fi),
                                  _mm256_mul_ps(_mm256_load_ps(p->m[b]), _mm256_set1_ps(sx)));
                acc[c] = _mm256_add_ps(acc[c], u);
            } else {
                acc[c] = _mm256_add_ps(acc[c], _mm256_mul_ps(fi, t));
            }
        }
    }
}

static void gemm_kquant(const rk_panel *p, panel_info info, int n_sb, int64_t s0,
                        const uint8_t *const xs[GEMM_C], __m256 acc[GEMM_C])
{
    const int nsub = 256 / info.sub, groups = info.sub / 4;
    for (int s = 0; s < n_sb; s++) {
        const int64_t sa = s0 + s;
        const uint8_t *xq[GEMM_C];
        for (int c = 0; c < GEMM_C; c++)
            xq[c] = xs[c] + sa * 292 + 4;
        __m256i isum[GEMM_C], msum[GEMM_C];
        for (int c = 0; c < GEMM_C; c++) {
            isum[c] = _mm256_setzero_si256();
            msum[c] = _mm256_setzero_si256();
        }
        const uint8_t *q = p->q + (size_t)s * 256 * 8;
        for (int j = 0; j < nsub; j++) {
            __m256i t[GEMM_C];
            for (int c = 0; c < GEMM_C; c++)
                t[c] = _mm256_setzero_si256();
            for (int g = 0; g < groups; g++) {
                const int e = j * info.sub + 4 * g;
                const __m256i wv =
                    _mm256_load_si256((const __m256i *)(const void *)(q + (e / 4) * 32));
                for (int c = 0; c < GEMM_C; c++)
                    t[c] = dot_u8s8(t[c], wv, _mm256_set1_epi32((int32_t)load_u32(xq[c] + e)));
            }
            const __m256i scv = _mm256_load_si256((const __m256i *)(const void *)p->sc[s][j]);
            for (int c = 0; c < GEMM_C; c++)
                isum[c] = _mm256_add_epi32(isum[c], _mm256_mullo_epi32(t[c], scv));
        }
        for (int i = 0; i < 8; i++) {
            const __m256i mv = _mm256_load_si256((const __m256i *)(const void *)p->mn[s][i]);
            for (int c = 0; c < GEMM_C; c++) {
                const uint8_t *bs = xs[c] + sa * 292 + 260 + 4 * i;
                msum[c] = _mm256_add_epi32(
                    msum[c], _mm256_madd_epi16(mv, _mm256_set1_epi32((int32_t)load_u32(bs))));
            }
        }
        const __m256 dw = _mm256_load_ps(p->d[s]);
        for (int c = 0; c < GEMM_C; c++) {
            const __m256 dx = _mm256_set1_ps(load_f32(xs[c] + sa * 292));
            const __m256 dd = _mm256_mul_ps(dw, dx);
            if (info.kind == PANEL_KQ_MIN) {
                const __m256 dm = _mm256_mul_ps(_mm256_load_ps(p->m[s]), dx);
                const __m256 u = _mm256_sub_ps(_mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum[c])),
                                               _mm256_mul_ps(dm, _mm256_cvtepi32_ps(msum[c])));
                acc[c] = _mm256_add_ps(acc[c], u);
            } else {
                const __m256i it = _mm256_sub_epi32(isum[c], msum[c]);
                acc[c] = _mm256_add_ps(acc[c], _mm256_mul_ps(dd, _mm256_cvtepi32_ps(it)));
            }
        }
    }
}

static void gemm_quant(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    const panel_info info = panel_info_of(w->type, 0);
    const int kq = info.kind == PANEL_KQ_MIN || info.kind == PANEL_KQ_BIAS;
    const int64_t nb = w->k / 32;
    _Alignas(64) rk_panel panel;
    for (int64_t rt = r0; rt < r1; rt += PANEL_R) {
        const int nr = (int)(r1 - rt < PANEL_R ? r1 - rt : PANEL_R);
        const __m256i m = lane_mask(nr);
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
                __m256 acc[GEMM_C];
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

/* ---- float weights: the 16-lane dot as two 8-lane halves ------------------------------------ */

typedef struct f16x2 {
    __m256 lo, hi; /* lanes 0-7 and 8-15 */
} f16x2;

/* 8 weights at element i (lanes past n are 0; n <= 8). */
static inline __m256 load_w8(rk_type type, const uint8_t *row, int64_t i, int n)
{
    if (n <= 0)
        return _mm256_setzero_ps();
    if (type == RK_TYPE_F32) {
        if (n >= 8)
            return _mm256_loadu_ps((const float *)(const void *)(row + 4 * i));
        return _mm256_maskload_ps((const float *)(const void *)(row + 4 * i), lane_mask(n));
    }
    uint16_t h[8] = {0};
    memcpy(h, row + 2 * i, (size_t)(n >= 8 ? 8 : n) * 2);
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)h);
    if (type == RK_TYPE_F16)
        return _mm256_cvtph_ps(v);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
}

static inline __m256 load_x8(const float *x, int64_t i, int n)
{
    if (n <= 0)
        return _mm256_setzero_ps();
    if (n >= 8)
        return _mm256_loadu_ps(x + i);
    return _mm256_maskload_ps(x + i, lane_mask(n));
}

/* acc = fma(w, x, acc) on lanes [0, n) only */
static inline __m256 fma_n(__m256 w, __m256 x, __m256 acc, int n)
{
    const __m256 f = _mm256_fmadd_ps(w, x, acc);
    if (n >= 8)
        return f;
    return _mm256_blendv_ps(acc, f, _mm256_castsi256_ps(lane_mask(n < 0 ? 0 : n)));
}

static inline float hsum16(f16x2 v)
{
    const __m256 a = _mm256_add_ps(v.lo, v.hi);
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

#define FLOAT_R 2

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
            f16x2 acc[FLOAT_R][GEMM_C];
            for (int r = 0; r < FLOAT_R; r++)
                for (int c = 0; c < GEMM_C; c++)
                    acc[r][c].lo = acc[r][c].hi = _mm256_setzero_ps();
            for (int64_t i = 0; i < k; i += 16) {
                const int n = (int)(k - i >= 16 ? 16 : k - i);
                __m256 xlo[GEMM_C], xhi[GEMM_C];
                for (int c = 0; c < GEMM_C; c++) {
                    xlo[c] = load_x8(xs[c], i, n);
                    xhi[c] = load_x8(xs[c], i + 8, n - 8);
                }
                for (int r = 0; r < FLOAT_R; r++) {
                    const __m256 wlo = load_w8(w->type, rows[r], i, n);
                    const __m256 whi = load_w8(w->type, rows[r], i + 8, n - 8);
                    for (int c = 0; c < GEMM_C; c++) {
                        acc[r][c].lo = fma_n(wlo, xlo[c], acc[r][c].lo, n);
                        acc[r][c].hi = fma_n(whi, xhi[c], acc[r][c].hi, n - 8);
                    }
                }
            }
            for (int c = 0; c < nc; c++)
                for (int r = 0; r < nr; r++)
                    y[(size_t)(c0 + c) * y_stride + (size_t)(rt + r)] = hsum16(acc[r][c]);
        }
    }
}

/* ---- matrix-vector: 8 rows per pass, one row per lane --------------------------------------
 * As the AVX-512 kernels (matmul_avx512_body.h): exact integer sums on each row's own bytes,
 * reduced across 8 rows into one vector whose lane i belongs to row i, then rk math's float
 * update on that vector. */

#define MV_R      8
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

/* Prefetch of the next group's bytes into L2 while a group runs, and of the first group at the
 * start (see mv_prefetch_group in matmul_avx512_body.h for why). */
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

/* the f16 at byte `at` of each lane's row (scalar loads: gathers are slow on many CPUs) */
MV_INLINE __m256 mv_gather_f16(const mv_rows *g, size_t at)
{
    uint16_t h[MV_R];
    for (int i = 0; i < MV_R; i++)
        memcpy(&h[i], g->p[i] + at, 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)h));
}

/* s_j's 128-bit lane i holds 4 partial sums of row 4i + j; returns the 8 row sums in order */
MV_INLINE __m256i mv_reduce_4x4(__m256i s0, __m256i s1, __m256i s2, __m256i s3)
{
    const __m256i a =
        _mm256_add_epi32(_mm256_unpacklo_epi32(s0, s1), _mm256_unpackhi_epi32(s0, s1));
    const __m256i b =
        _mm256_add_epi32(_mm256_unpacklo_epi32(s2, s3), _mm256_unpackhi_epi32(s2, s3));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
}

/* v[r] holds 8 partial sums of row r; returns the 8 row sums in order */
MV_INLINE __m256i mv_reduce_8x8(const __m256i v[MV_R])
{
    __m256i a[4], b[2];
    for (int i = 0; i < 4; i++)
        a[i] = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                                _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 2; i++)
        b[i] = _mm256_add_epi32(_mm256_unpacklo_epi64(a[2 * i], a[2 * i + 1]),
                                _mm256_unpackhi_epi64(a[2 * i], a[2 * i + 1]));
    /* b[0] lane l: rows 0-3 partial over lane l; b[1]: rows 4-7 */
    return _mm256_add_epi32(_mm256_permute2x128_si256(b[0], b[1], 0x20),
                            _mm256_permute2x128_si256(b[0], b[1], 0x31));
}

MV_INLINE __m256i mv_load2x16(const mv_rows *g, int j, size_t off)
{
    return _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(const void *)(g->p[4 + j] + off)),
                            _mm_loadu_si128((const __m128i *)(const void *)(g->p[j] + off)));
}

/* 32 bits -> 32 bytes of 0x10 where the bit is set */
MV_INLINE __m256i mv_bits_to_0x10(uint32_t bits)
{
    const __m256i rep =
        _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                            _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                                             2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i sel = _mm256_set1_epi64x(0x8040201008040201ll);
    const __m256i on = _mm256_cmpeq_epi8(_mm256_and_si256(rep, sel), sel);
    return _mm256_and_si256(on, _mm256_set1_epi8(0x10));
}

MV_INLINE uint32_t mv_qh_bits(const mv_rows *g, int j, size_t off, int high)
{
    uint32_t a, b;
    memcpy(&a, g->p[j] + off, 4);
    memcpy(&b, g->p[4 + j] + off, 4);
    return high ? (a >> 16) | (b & 0xffff0000u) : (a & 0xffffu) | (b << 16);
}

MV_INLINE __m256i mv_blk32_isum(rk_type t, const mv_rows *g, size_t off, __m256i xlo, __m256i xhi)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i s[4];
    for (int j = 0; j < 4; j++) {
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
        int eight = 0;
        switch (t) {
        case RK_TYPE_Q8_0:
        case RK_TYPE_APR_Q8: {
            const size_t qo = t == RK_TYPE_Q8_0 ? 2 : 0;
            const __m256i a =
                _mm256_loadu_si256((const __m256i *)(const void *)(g->p[j] + off + qo));
            const __m256i b =
                _mm256_loadu_si256((const __m256i *)(const void *)(g->p[4 + j] + off + qo));
            lo = _mm256_permute2x128_si256(a, b, 0x20);
            hi = _mm256_permute2x128_si256(a, b, 0x31);
            eight = 1;
            break;
        }
        case RK_TYPE_Q4_0:
        case RK_TYPE_APR_Q4:
        case RK_TYPE_Q4_1: {
            const __m256i z = mv_load2x16(g, j, off + (t == RK_TYPE_Q4_1 ? 4 : 2));
            lo = _mm256_and_si256(z, m4);
            hi = _mm256_and_si256(_mm256_srli_epi16(z, 4), m4);
            break;
        }
        case RK_TYPE_Q5_0:
        case RK_TYPE_Q5_1: {
            const size_t qh = t == RK_TYPE_Q5_0 ? 2 : 4;
            const __m256i z = mv_load2x16(g, j, off + qh + 4);
            lo = _mm256_or_si256(_mm256_and_si256(z, m4),
                                 mv_bits_to_0x10(mv_qh_bits(g, j, off + qh, 0)));
            hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(z, 4), m4),
                                 mv_bits_to_0x10(mv_qh_bits(g, j, off + qh, 1)));
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
            s[j] = dot_s8s8(_mm256_setzero_si256(), lo, xlo);
            s[j] = dot_s8s8(s[j], hi, xhi);
        } else {
            s[j] = dot_u8s8(_mm256_setzero_si256(), lo, xlo);
            s[j] = dot_u8s8(s[j], hi, xhi);
        }
    }
    return mv_reduce_4x4(s[0], s[1], s[2], s[3]);
}

static int mv_blk32_bias(rk_type t)
{
    switch (t) {
    case RK_TYPE_Q4_0:
    case RK_TYPE_APR_Q4: return 8;
    case RK_TYPE_Q5_0: return 16;
    case RK_TYPE_Q8_0:
    case RK_TYPE_APR_Q8:
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
    const __m128i even = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m128i odd = _mm_setr_epi8(1, 3, 5, 7, 9, 11, 13, 15, -1, -1, -1, -1, -1, -1, -1, -1);
    mv_prefetch_group(w, r0, r1, 0, 1);
    for (int64_t rt = r0; rt < r1; rt += MV_R) {
        const int nr = (int)(r1 - rt < MV_R ? r1 - rt : MV_R);
        const mv_rows g = mv_group(w, rt, nr);
        __m256 acc = _mm256_setzero_ps();
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
            __m256i isum = mv_blk32_isum(t, &g, (size_t)b * bb, _mm256_set_m128i(xl, xl),
                                         _mm256_set_m128i(xh, xh));
            if (bias)
                isum = _mm256_sub_epi32(isum,
                                        _mm256_set1_epi32(bias * (int32_t)load_u32(xsums + 4 * b)));
            const __m256 dx = _mm256_set1_ps(load_f16(xb));
            const __m256 dw =
                t == RK_TYPE_APR_Q8 ? _mm256_set1_ps(w->scale) : mv_gather_f16(&g, (size_t)b * bb);
            const __m256 fi = _mm256_cvtepi32_ps(isum);
            if (min) {
                const __m256 m = mv_gather_f16(&g, (size_t)b * bb + 2);
                const __m256 sx = _mm256_set1_ps(load_f16(xb + 2));
                acc = _mm256_add_ps(acc, _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(dw, dx), fi),
                                                       _mm256_mul_ps(m, sx)));
            } else {
                acc = _mm256_add_ps(acc, _mm256_mul_ps(fi, _mm256_mul_ps(dw, dx)));
            }
        }
        _mm256_maskstore_ps(y + rt, lane_mask(nr), acc);
    }
}

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

/* int16 element j of v16 (both 128-bit lanes hold the same 8 values) in every int16 lane */
MV_INLINE __m256i mv_bcast16(__m256i v16, int j)
{
    return _mm256_shuffle_epi8(v16, _mm256_set1_epi16((short)((2 * j) | ((2 * j + 1) << 8))));
}

MV_INLINE void matvec_k45(int five, const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x,
                          float *y)
{
    const int64_t nsb = w->k / 256;
    const size_t bb = five ? 176 : 144, qo = five ? 48 : 16;
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    mv_prefetch_group(w, r0, r1, 0, 1);
    for (int64_t rt = r0; rt < r1; rt += MV_R) {
        const int nr = (int)(r1 - rt < MV_R ? r1 - rt : MV_R);
        const mv_rows g = mv_group(w, rt, nr);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t s = 0; s < nsb; s++) {
            mv_prefetch_group(w, rt + MV_R, r1, s, nsb);
            const uint8_t *xb = x + s * 292;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)(xb + 260));
            const __m256i bp32 = _mm256_madd_epi16(bs, _mm256_set1_epi16(1));
            const __m128i bp =
                _mm_packs_epi32(_mm256_castsi256_si128(bp32), _mm256_extracti128_si256(bp32, 1));
            __m256i part[MV_R];
            __m128i mpart[MV_R];
            for (int r = 0; r < MV_R; r++) {
                const uint8_t *blk = g.p[r] + s * bb;
                uint64_t sc, mn;
                k4_scales(blk + 4, &sc, &mn);
                const __m128i sc16x = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc));
                const __m256i sc16 = _mm256_set_m128i(sc16x, sc16x);
                __m256i hbits = _mm256_setzero_si256();
                if (five)
                    hbits = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 16));
                __m256i a = _mm256_setzero_si256();
                for (int c = 0; c < 4; c++) {
                    const __m256i z =
                        _mm256_loadu_si256((const __m256i *)(const void *)(blk + qo + 32 * c));
                    __m256i q0 = _mm256_and_si256(z, m4);
                    __m256i q1 = _mm256_and_si256(_mm256_srli_epi16(z, 4), m4);
                    if (five) {
                        q0 = _mm256_or_si256(
                            q0, _mm256_and_si256(
                                    _mm256_slli_epi16(_mm256_srli_epi16(hbits, 2 * c), 4), b4));
                        q1 = _mm256_or_si256(
                            q1, _mm256_and_si256(
                                    _mm256_slli_epi16(_mm256_srli_epi16(hbits, 2 * c + 1), 4), b4));
                    }
                    const __m256i x0 =
                        _mm256_loadu_si256((const __m256i *)(const void *)(xb + 4 + 64 * c));
                    const __m256i x1 =
                        _mm256_loadu_si256((const __m256i *)(const void *)(xb + 4 + 64 * c + 32));
                    a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(q0, x0),
                                                              mv_bcast16(sc16, 2 * c)));
                    a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(q1, x1),
                                                              mv_bcast16(sc16, 2 * c + 1)));
                }
                part[r] = a;
                mpart[r] = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn)), bp);
            }
            const __m256i isum = mv_reduce_8x8(part);
            const __m256i msum = mv_reduce_4x4(
                _mm256_set_m128i(mpart[4], mpart[0]), _mm256_set_m128i(mpart[5], mpart[1]),
                _mm256_set_m128i(mpart[6], mpart[2]), _mm256_set_m128i(mpart[7], mpart[3]));
            const __m256 dx = _mm256_set1_ps(load_f32(xb));
            const __m256 dw = mv_gather_f16(&g, (size_t)s * bb);
            const __m256 dmin = mv_gather_f16(&g, (size_t)s * bb + 2);
            const __m256 u =
                _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum)),
                              _mm256_mul_ps(_mm256_mul_ps(dmin, dx), _mm256_cvtepi32_ps(msum)));
            acc = _mm256_add_ps(acc, u);
        }
        _mm256_maskstore_ps(y + rt, lane_mask(nr), acc);
    }
}

static void matvec_q6_K(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *x, float *y)
{
    const int64_t nsb = w->k / 256;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    mv_prefetch_group(w, r0, r1, 0, 1);
    for (int64_t rt = r0; rt < r1; rt += MV_R) {
        const int nr = (int)(r1 - rt < MV_R ? r1 - rt : MV_R);
        const mv_rows g = mv_group(w, rt, nr);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t s = 0; s < nsb; s++) {
            mv_prefetch_group(w, rt + MV_R, r1, s, nsb);
            const uint8_t *xb = x + s * 292;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)(xb + 260));
            __m256i part[MV_R];
            for (int r = 0; r < MV_R; r++) {
                const uint8_t *blk = g.p[r] + s * 210;
                const __m128i sc8 = _mm_loadu_si128((const __m128i *)(const void *)(blk + 192));
                const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
                __m256i a = _mm256_setzero_si256();
                for (int h = 0; h < 2; h++) {
                    const __m256i l0 =
                        _mm256_loadu_si256((const __m256i *)(const void *)(blk + 64 * h));
                    const __m256i l1 =
                        _mm256_loadu_si256((const __m256i *)(const void *)(blk + 64 * h + 32));
                    const __m256i hb =
                        _mm256_loadu_si256((const __m256i *)(const void *)(blk + 128 + 32 * h));
                    __m256i q[4];
                    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                           _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
                    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                           _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
                    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                           _mm256_and_si256(hb, m30));
                    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                           _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
                    for (int t = 0; t < 4; t++) {
                        /* 32 elements 128h + 32t: sub-blocks 8h + 2t (low lane) and + 1 */
                        const int sb0 = 8 * h + 2 * t;
                        const __m256i xq = _mm256_loadu_si256(
                            (const __m256i *)(const void *)(xb + 4 + 128 * h + 32 * t));
                        const int e0 = sb0 % 8, e1 = (sb0 + 1) % 8;
                        const __m256i lo = _mm256_shuffle_epi8(
                            sc16, _mm256_set1_epi16((short)((2 * e0) | ((2 * e0 + 1) << 8))));
                        const __m256i hi = _mm256_shuffle_epi8(
                            sc16, _mm256_set1_epi16((short)((2 * e1) | ((2 * e1 + 1) << 8))));
                        /* sub-blocks 0..7 come from the low 128-bit lane of sc16, 8..15 from
                         * the high one */
                        const __m256i scv = sb0 < 8 ? _mm256_permute2x128_si256(lo, hi, 0x20)
                                                    : _mm256_permute2x128_si256(lo, hi, 0x31);
                        a = _mm256_add_epi32(
                            a, _mm256_madd_epi16(_mm256_maddubs_epi16(q[t], xq), scv));
                    }
                }
                const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5);
                part[r] = _mm256_sub_epi32(a, corr);
            }
            const __m256i isum = mv_reduce_8x8(part);
            const __m256 dx = _mm256_set1_ps(load_f32(xb));
            const __m256 dw = mv_gather_f16(&g, (size_t)s * 210 + 208);
            acc =
                _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum)));
        }
        _mm256_maskstore_ps(y + rt, lane_mask(nr), acc);
    }
}

/* ---- the R16 layout (matmul_repack.c) -----------------------------------------------------
 * A 16-row tile is processed as two halves of 8 rows: half `hf` reads bytes 32hf..32hf+31 of
 * every 64-byte plane (one dword per row). Otherwise as the AVX-512 kernels. */

#define R16_NC_MAX 4

MV_INLINE __m256i xquad(const uint8_t *xc, size_t at)
{
    return _mm256_set1_epi32((int32_t)load_u32(xc + at));
}

MV_INLINE __m256i r16_dot(__m256i acc, __m256i wv, __m256i xv, int eight)
{
    if (eight)
        return dot_s8s8(acc, _mm256_xor_si256(wv, _mm256_set1_epi8((char)0x80)), xv);
    return dot_u8s8(acc, wv, xv);
}

MV_INLINE __m256i plane8(const uint8_t *tile, size_t off, int hf)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)(tile + off + 32 * (size_t)hf));
}

MV_INLINE __m256 r16_f16x8(const uint8_t *p, int hf)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * hf)));
}

MV_INLINE __m256i byte_of_dwords(__m256i v, int b)
{
    return _mm256_and_si256(_mm256_srli_epi32(v, 8 * b), _mm256_set1_epi32(0xff));
}

MV_INLINE __m256i shift_dwords(__m256i v, int left)
{
    return left >= 0 ? _mm256_sll_epi32(v, _mm_cvtsi32_si128(left))
                     : _mm256_srl_epi32(v, _mm_cvtsi32_si128(-left));
}

/* q | (h & 0x10) */
MV_INLINE __m256i or_bit4(__m256i q, __m256i h)
{
    return _mm256_or_si256(q, _mm256_and_si256(h, _mm256_set1_epi8(0x10)));
}

MV_INLINE void r16_blk32(rk_type t, const rk_matrix *w, int64_t g, int hf, int64_t nb,
                         const uint8_t *const xs[], int nc, __m256 acc[])
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const int eight = t == RK_TYPE_Q8_0;
    const int bias = t == RK_TYPE_Q4_0 ? 8 : t == RK_TYPE_Q5_0 ? 16 : 0;
    const uint8_t *tile = rk_r16_tile(w, g, 0);
    const size_t tb = t == RK_TYPE_Q8_0 ? 544 : t == RK_TYPE_Q5_0 ? 352 : 288;
    for (int64_t b = 0; b < nb; b++, tile += tb) {
        __m256i isum[R16_NC_MAX];
        for (int c = 0; c < nc; c++)
            isum[c] = _mm256_set1_epi32(-bias *
                                        (int32_t)load_u32(rk_act_q8_0_sums_at(xs[c], nb) + 4 * b));
        const size_t xb = (size_t)b * 34 + 2;
        if (eight) {
            for (int p = 0; p < 8; p++) {
                const __m256i wv = plane8(tile, 32 + 64 * (size_t)p, hf);
                for (int c = 0; c < nc; c++)
                    isum[c] = r16_dot(isum[c], wv, xquad(xs[c], xb + 4 * (size_t)p), 1);
            }
        } else {
            const size_t qo = t == RK_TYPE_Q5_0 ? 96 : 32;
            const __m256i h = t == RK_TYPE_Q5_0 ? plane8(tile, 32, hf) : _mm256_setzero_si256();
            for (int p = 0; p < 4; p++) {
                const __m256i z = plane8(tile, qo + 64 * (size_t)p, hf);
                __m256i lo = _mm256_and_si256(z, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(z, 4), m4);
                if (t == RK_TYPE_Q5_0) {
                    lo = or_bit4(lo, shift_dwords(h, 4 - p));
                    hi = or_bit4(hi, shift_dwords(h, -p));
                }
                for (int c = 0; c < nc; c++) {
                    isum[c] = r16_dot(isum[c], lo, xquad(xs[c], xb + 4 * (size_t)p), 0);
                    isum[c] = r16_dot(isum[c], hi, xquad(xs[c], xb + 16 + 4 * (size_t)p), 0);
                }
            }
        }
        const __m256 dw = r16_f16x8(tile, hf);
        for (int c = 0; c < nc; c++) {
            const __m256 dx = _mm256_set1_ps(load_f16(xs[c] + (size_t)b * 34));
            acc[c] = _mm256_add_ps(
                acc[c], _mm256_mul_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(dw, dx)));
        }
    }
}

MV_INLINE void r16_k45(int five, const rk_matrix *w, int64_t g, int hf, int64_t nsb,
                       const uint8_t *const xs[], int nc, __m256 acc[])
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m6 = _mm256_set1_epi8(0x3f),
                  m2 = _mm256_set1_epi8(0x03);
    const size_t tb = five ? 2816 : 2304;
    const uint8_t *tile = rk_r16_tile(w, g, 0);
    for (int64_t s = 0; s < nsb; s++, tile += tb) {
        const __m256i s0 = plane8(tile, 64, hf), s1 = plane8(tile, 128, hf),
                      s2 = plane8(tile, 192, hf);
        const __m256i sc_lo = _mm256_and_si256(s0, m6), mn_lo = _mm256_and_si256(s1, m6);
        const __m256i sc_hi =
            _mm256_or_si256(_mm256_and_si256(s2, m4),
                            _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(s0, 6), m2), 4));
        const __m256i mn_hi =
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(s2, 4), m4),
                            _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(s1, 6), m2), 4));
        __m256i isum[R16_NC_MAX], msum[R16_NC_MAX];
        for (int c = 0; c < nc; c++)
            isum[c] = msum[c] = _mm256_setzero_si256();
        for (int cc = 0; cc < 4; cc++) {
            __m256i tlo[R16_NC_MAX], thi[R16_NC_MAX];
            for (int c = 0; c < nc; c++)
                tlo[c] = thi[c] = _mm256_setzero_si256();
            for (int p = 0; p < 8; p++) {
                const __m256i z = plane8(tile, 256 + 64 * (size_t)(8 * cc + p), hf);
                __m256i lo = _mm256_and_si256(z, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(z, 4), m4);
                if (five) {
                    const __m256i h = plane8(tile, 2304 + 64 * (size_t)p, hf);
                    lo = or_bit4(lo, shift_dwords(h, 4 - 2 * cc));
                    hi = or_bit4(hi, shift_dwords(h, 3 - 2 * cc));
                }
                for (int c = 0; c < nc; c++) {
                    const size_t at = (size_t)s * 292 + 4 + 64 * (size_t)cc + 4 * (size_t)p;
                    tlo[c] = r16_dot(tlo[c], lo, xquad(xs[c], at), 0);
                    thi[c] = r16_dot(thi[c], hi, xquad(xs[c], at + 32), 0);
                }
            }
            const __m256i sa = byte_of_dwords(cc < 2 ? sc_lo : sc_hi, (2 * cc) % 4);
            const __m256i sb = byte_of_dwords(cc < 2 ? sc_lo : sc_hi, (2 * cc + 1) % 4);
            for (int c = 0; c < nc; c++)
                isum[c] =
                    _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_mullo_epi32(tlo[c], sa),
                                                               _mm256_mullo_epi32(thi[c], sb)));
        }
        for (int j = 0; j < 8; j++) {
            const __m256i mj = byte_of_dwords(j < 4 ? mn_lo : mn_hi, j % 4);
            const __m256i pair = _mm256_or_si256(mj, _mm256_slli_epi32(mj, 16));
            for (int c = 0; c < nc; c++)
                msum[c] = _mm256_add_epi32(
                    msum[c],
                    _mm256_madd_epi16(pair, xquad(xs[c], (size_t)s * 292 + 260 + 4 * (size_t)j)));
        }
        const __m256 dw = r16_f16x8(tile, hf), dmin = r16_f16x8(tile + 32, hf);
        for (int c = 0; c < nc; c++) {
            const __m256 dx = _mm256_set1_ps(load_f32(xs[c] + (size_t)s * 292));
            const __m256 u =
                _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum[c])),
                              _mm256_mul_ps(_mm256_mul_ps(dmin, dx), _mm256_cvtepi32_ps(msum[c])));
            acc[c] = _mm256_add_ps(acc[c], u);
        }
    }
}

MV_INLINE void r16_q6_K(const rk_matrix *w, int64_t g, int hf, int64_t nsb,
                        const uint8_t *const xs[], int nc, __m256 acc[])
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const uint8_t *tile = rk_r16_tile(w, g, 0);
    for (int64_t s = 0; s < nsb; s++, tile += 3360) {
        __m256i isum[R16_NC_MAX];
        for (int c = 0; c < nc; c++)
            isum[c] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            for (int half = 0; half < 2; half++) {
                __m256i t[4][R16_NC_MAX];
                for (int q = 0; q < 4; q++)
                    for (int c = 0; c < nc; c++)
                        t[q][c] = _mm256_setzero_si256();
                for (int p = 4 * half; p < 4 * half + 4; p++) {
                    const __m256i a = plane8(tile, 288 + 64 * (size_t)(3 * (8 * h + p)), hf);
                    const __m256i cq = plane8(tile, 288 + 64 * (size_t)(3 * (8 * h + p) + 1), hf);
                    const __m256i hb = plane8(tile, 288 + 64 * (size_t)(3 * (8 * h + p) + 2), hf);
                    __m256i q[4];
                    q[0] = _mm256_or_si256(_mm256_and_si256(a, m4),
                                           _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
                    q[1] = _mm256_or_si256(_mm256_and_si256(cq, m4),
                                           _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
                    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4),
                                           _mm256_and_si256(hb, m30));
                    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(cq, 4), m4),
                                           _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
                    for (int qq = 0; qq < 4; qq++)
                        for (int c = 0; c < nc; c++) {
                            const size_t at = (size_t)s * 292 + 4 + 128 * (size_t)h +
                                              32 * (size_t)qq + 4 * (size_t)p;
                            t[qq][c] = r16_dot(t[qq][c], q[qq], xquad(xs[c], at), 0);
                        }
                }
                for (int qq = 0; qq < 4; qq++) {
                    const int j = 8 * h + 2 * qq + half;
                    const __m256i wv = plane8(tile, 32 + 64 * (size_t)(j / 4), hf);
                    const __m256i sc =
                        _mm256_srai_epi32(_mm256_slli_epi32(wv, 24 - 8 * (j % 4)), 24);
                    for (int c = 0; c < nc; c++) {
                        const int32_t bsum =
                            (int16_t)rk_load_u16le(xs[c] + (size_t)s * 292 + 260 + 2 * (size_t)j);
                        const __m256i tt = _mm256_sub_epi32(t[qq][c], _mm256_set1_epi32(32 * bsum));
                        isum[c] = _mm256_add_epi32(isum[c], _mm256_mullo_epi32(tt, sc));
                    }
                }
            }
        }
        const __m256 dw = r16_f16x8(tile, hf);
        for (int c = 0; c < nc; c++) {
            const __m256 dx = _mm256_set1_ps(load_f32(xs[c] + (size_t)s * 292));
            acc[c] = _mm256_add_ps(
                acc[c], _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum[c])));
        }
    }
}

MV_INLINE void r16_run(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride, int nc_max)
{
    const rk_type t = w->type;
    const int64_t nblk = w->k / rk_type_traits_get(t)->block_elems;
    for (int64_t rt = r0; rt < r1; rt += 8) {
        const int nr = (int)(r1 - rt < 8 ? r1 - rt : 8);
        const int hf = (int)((rt / 8) % 2);
        const __m256i m = lane_mask(nr);
        for (int64_t c0 = 0; c0 < n_cols; c0 += nc_max) {
            const int nc = (int)(n_cols - c0 < nc_max ? n_cols - c0 : nc_max);
            const uint8_t *xs[R16_NC_MAX];
            __m256 acc[R16_NC_MAX];
            for (int c = 0; c < nc_max; c++) {
                xs[c] = act + (size_t)(c0 + (c < nc ? c : nc - 1)) * act_stride;
                acc[c] = _mm256_setzero_ps();
            }
            switch (t) {
            case RK_TYPE_Q4_0:
            case RK_TYPE_Q5_0:
            case RK_TYPE_Q8_0: r16_blk32(t, w, rt / 16, hf, nblk, xs, nc_max, acc); break;
            case RK_TYPE_Q4_K: r16_k45(0, w, rt / 16, hf, nblk, xs, nc_max, acc); break;
            case RK_TYPE_Q5_K: r16_k45(1, w, rt / 16, hf, nblk, xs, nc_max, acc); break;
            case RK_TYPE_Q6_K: r16_q6_K(w, rt / 16, hf, nblk, xs, nc_max, acc); break;
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
                _mm256_maskstore_ps(y + (size_t)(c0 + c) * y_stride + (size_t)rt, m, acc[c]);
        }
    }
}

/* ---- entry points ---------------------------------------------------------------------------- */

static int is_float_type(rk_type t)
{
    return t == RK_TYPE_F32 || t == RK_TYPE_F16 || t == RK_TYPE_BF16;
}

void rk_mm_gemm_avx2(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                     size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    if (w->layout == RK_LAYOUT_R16)
        r16_run(w, r0, r1, act, act_stride, n_cols, y, y_stride, R16_NC_MAX);
    else if (is_float_type(w->type))
        gemm_float(w, r0, r1, act, act_stride, n_cols, y, y_stride);
    else
        gemm_quant(w, r0, r1, act, act_stride, n_cols, y, y_stride);
}

void rk_mm_matvec_avx2(const rk_matrix *w, int64_t r0, int64_t r1, const uint8_t *act,
                       size_t act_stride, int64_t n_cols, float *y, size_t y_stride)
{
    if (w->layout == RK_LAYOUT_R16) {
        r16_run(w, r0, r1, act, act_stride, n_cols, y, y_stride, 1);
        return;
    }
    for (int64_t c = 0; c < n_cols; c++) {
        const uint8_t *x = act + (size_t)c * act_stride;
        float *yc = y + (size_t)c * y_stride;
        switch (w->type) {
        case RK_TYPE_F32:
        case RK_TYPE_F16:
        case RK_TYPE_BF16: gemm_float(w, r0, r1, x, act_stride, 1, yc, y_stride); break;
        case RK_TYPE_Q8_0: matvec_blk32(RK_TYPE_Q8_0, w, r0, r1, x, yc); break;
        case RK_TYPE_Q5_0: matvec_blk32(RK_TYPE_Q5_0, w, r0, r1, x, yc); break;
        case RK_TYPE_Q4_0: matvec_blk32(RK_TYPE_Q4_0, w, r0, r1, x, yc); break;
        case RK_TYPE_Q4_1: matvec_blk32(RK_TYPE_Q4_1, w, r0, r1, x, yc); break;
        case RK_TYPE_Q5_1: matvec_blk32(RK_TYPE_Q5_1, w, r0, r1, x, yc); break;
        case RK_TYPE_APR_Q4: matvec_blk32(RK_TYPE_APR_Q4, w, r0, r1, x, yc); break;
        case RK_TYPE_APR_Q8: matvec_blk32(RK_TYPE_APR_Q8, w, r0, r1, x, yc); break;
        case RK_TYPE_Q4_K: matvec_k45(0, w, r0, r1, x, yc); break;
        case RK_TYPE_Q5_K: matvec_k45(1, w, r0, r1, x, yc); break;
        case RK_TYPE_Q6_K: matvec_q6_K(w, r0, r1, x, yc); break;
        case RK_TYPE_Q2_K:
        case RK_TYPE_Q3_K:
        case RK_TYPE_Q8_1:
        case RK_TYPE_Q8_K: gemm_quant(w, r0, r1, x, act_stride, 1, yc, y_stride); break;
        }
    }
}
