/*
 * Fused CPU kernels for per-feature LERP tables (also used for linear
 * B-splines, which are the same piecewise-linear function: K knots on
 * [-R, R] are a K-point table).
 *
 * Layout: x, y, grad_y, grad_x are (n, f) row-major; the table is (f, g).
 *   u    = (x + R) / step,  step = 2R / (g - 1)
 *   j    = clamp(floor(u), 0, g - 2),  frac = u - j  (unclamped: edge segments extrapolate)
 *   y    = T[j] + frac * (T[j + 1] - T[j])
 *
 * Backward, for an upstream gradient gy:
 *   grad_x = (T[j + 1] - T[j]) / step * gy,  dT[j] += (1 - frac) gy,  dT[j + 1] += frac gy.
 *
 * Arguments of lerp_forward_* / lerp_backward_*:
 *   x        (n, f) inputs, row-major, contiguous
 *   table    (f, g) per-feature tables (or B-spline coefficients), contiguous
 *   y        (n, f) output (forward)
 *   grad_y   (n, f) upstream gradient (backward)
 *   grad_x   (n, f) input gradient, or NULL when not needed
 *   grad_table (f, g) table gradient, or NULL when not needed
 *   n, f, g  rows, features, grid points (f * g < 2^31, checked in Python)
 *   range    R > 0: the grid spans [-R, R]
 *   threads  OpenMP threads (torch.get_num_threads())
 *
 * Forward is parallel over rows. Backward is parallel over blocks of
 * features: each table row is accumulated by exactly one thread, in row
 * order, in double precision, so the table gradient is bit-reproducible
 * whatever the thread count.
 *
 * Built at first use by kernels/backends/cpu.py (cc -O3 -fopenmp) and called
 * through ctypes; no Python or torch headers are needed.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FEATURE_BLOCK 64
#define CHUNK 256

#define DEFINE_LERP(T, SUF, FLOOR)                                                        \
void lerp_forward_##SUF(const T *x, const T *table, T *y, int64_t n, int64_t f,     \
                        int64_t g, double range, int threads) {                     \
    const T r = (T)range;                                                            \
    const T step = (T)(2.0 * range / (double)(g - 1));                               \
    const T jmax = (T)(g - 2);                                                       \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")               \
    for (int64_t row = 0; row < n; ++row) {                                          \
        /* Two passes per chunk (segment and fraction; then the gathers) so      \
         * that GCC vectorises both; int32 indices (f * g < 2^31, checked by    \
         * the caller). */                                                      \
        int32_t idx[CHUNK];                                                          \
        T fr[CHUNK];                                                                 \
        for (int64_t i0 = 0; i0 < f; i0 += CHUNK) {                                  \
            const int64_t m = f - i0 < CHUNK ? f - i0 : CHUNK;                       \
            const T *xr = x + row * f + i0;                                          \
            T *yr = y + row * f + i0;                                                \
            for (int64_t i = 0; i < m; ++i) {                                        \
                T u = (xr[i] + r) / step;                                            \
                T j = FLOOR(u);                                                      \
                j = !(j >= (T)0) ? (T)0 : (j > jmax ? jmax : j);                     \
                fr[i] = u - j;                                                       \
                idx[i] = (int32_t)j + (int32_t)((i0 + i) * g);                       \
            }                                                                        \
            for (int64_t i = 0; i < m; ++i) {                                        \
                T left = table[idx[i]];                                              \
                yr[i] = left + fr[i] * (table[idx[i] + 1] - left);                   \
            }                                                                        \
        }                                                                            \
    }                                                                                \
}                                                                                    \
                                                                                     \
/* grad_x and/or grad_table may be NULL when not needed. Per row, a            \
 * vectorisable pass computes segment, fraction and input gradient for the      \
 * block's features; a scalar pass then scatters the two weights. */            \
void lerp_backward_##SUF(const T *x, const T *table, const T *grad_y, T *grad_x,    \
                         T *grad_table, int64_t n, int64_t f, int64_t g,            \
                         double range, int threads) {                               \
    const T r = (T)range;                                                            \
    const T step = (T)(2.0 * range / (double)(g - 1));                               \
    const T jmax = (T)(g - 2);                                                       \
    const int64_t blocks = (f + FEATURE_BLOCK - 1) / FEATURE_BLOCK;                  \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")               \
    for (int64_t b = 0; b < blocks; ++b) {                                           \
        const int64_t f0 = b * FEATURE_BLOCK;                                        \
        const int64_t nf = (f0 + FEATURE_BLOCK < f ? f0 + FEATURE_BLOCK : f) - f0;   \
        double *acc = NULL;                                                          \
        if (grad_table) acc = (double *)calloc((size_t)(nf * g), sizeof(double));    \
        int32_t idx[FEATURE_BLOCK];                                                  \
        T w0[FEATURE_BLOCK], w1[FEATURE_BLOCK];                                      \
        for (int64_t row = 0; row < n; ++row) {                                      \
            const T *xr = x + row * f + f0;                                          \
            const T *gr = grad_y + row * f + f0;                                     \
            for (int64_t i = 0; i < nf; ++i) {                                       \
                T u = (xr[i] + r) / step;                                            \
                T j = FLOOR(u);                                                      \
                j = !(j >= (T)0) ? (T)0 : (j > jmax ? jmax : j);                     \
                T frac = u - j;                                                      \
                idx[i] = (int32_t)j + (int32_t)(i * g);                              \
                w0[i] = ((T)1 - frac) * gr[i];                                       \
                w1[i] = frac * gr[i];                                                \
            }                                                                        \
            if (grad_x) {                                                            \
                T *gxr = grad_x + row * f + f0;                                      \
                const T *tb = table + f0 * g;                                        \
                for (int64_t i = 0; i < nf; ++i)                                     \
                    gxr[i] = (tb[idx[i] + 1] - tb[idx[i]]) / step * gr[i];           \
            }                                                                        \
            if (acc) {                                                               \
                for (int64_t i = 0; i < nf; ++i) {                                   \
                    acc[idx[i]] += (double)w0[i];                                    \
                    acc[idx[i] + 1] += (double)w1[i];                                \
                }                                                                    \
            }                                                                        \
        }                                                                            \
        if (acc) {                                                                   \
            for (int64_t k = 0; k < nf * g; ++k)                                     \
                grad_table[f0 * g + k] = (T)acc[k];                                  \
            free(acc);                                                               \
        }                                                                            \
    }                                                                                \
}

DEFINE_LERP(float, f32, floorf)
DEFINE_LERP(double, f64, floor)

/*
 * PSA lookup table (docs/METHOD.md sections 3 and 4) and its backward, one
 * feature per iteration (parallel over features). For feature i, grid point t:
 *   den_k = w_k^2 + eps,  q_k = (t - b_k)^2 / den_k,  a = softmax_k(-q),
 *   s = sum_k a_k v_k t,  T[j] = o s + c.
 * Backward, for an upstream gradient G[j] on T[j], summed over j:
 *   dc += G,  do += G s,  dv_k += G o a_k t,
 *   with r_k = G o a_k (v_k t - s):  db_k += r_k 2 (t - b_k) / den_k,
 *                                    dw_k += r_k 2 w_k (t - b_k)^2 / den_k^2.
 * The backward recomputes a and s (nothing but the parameters is saved) and
 * accumulates in double. Arguments: v, w, b (f, e) row-major; o, c (f);
 * eps > 0; grid (g); table, gtab (f, g); gv, gw, gb (f, e); go, gc (f).
 */
#define DEFINE_PSA(T, SUF, EXP)                                                      \
static void psa_softmax_##SUF(const T *vi, const T *bi, const T *den, T t,          \
                              int64_t e, T *a, T *s_out) {                          \
    T m = -INFINITY, z = 0, sum = 0;                                                 \
    for (int64_t k = 0; k < e; ++k) {                                                \
        T d = t - bi[k];                                                             \
        a[k] = -(d * d) / den[k];                                                    \
        m = a[k] > m ? a[k] : m;                                                     \
    }                                                                                \
    for (int64_t k = 0; k < e; ++k) { a[k] = EXP(a[k] - m); z += a[k]; }             \
    for (int64_t k = 0; k < e; ++k) { a[k] /= z; sum += a[k] * vi[k] * t; }          \
    *s_out = sum;                                                                    \
}                                                                                    \
                                                                                     \
void psa_table_forward_##SUF(const T *v, const T *w, const T *b, const T *o,        \
                             const T *c, double eps, const T *grid, T *table,       \
                             int64_t f, int64_t e, int64_t g, int threads) {        \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")               \
    for (int64_t i = 0; i < f; ++i) {                                                \
        T den[e], a[e];                                                              \
        const T *vi = v + i * e, *wi = w + i * e, *bi = b + i * e;                   \
        for (int64_t k = 0; k < e; ++k) den[k] = wi[k] * wi[k] + (T)eps;             \
        for (int64_t j = 0; j < g; ++j) {                                            \
            T s;                                                                     \
            psa_softmax_##SUF(vi, bi, den, grid[j], e, a, &s);                       \
            table[i * g + j] = o[i] * s + c[i];                                      \
        }                                                                            \
    }                                                                                \
}                                                                                    \
                                                                                     \
void psa_table_backward_##SUF(const T *v, const T *w, const T *b, const T *o,       \
                              double eps, const T *grid, const T *gtab,             \
                              T *gv, T *gw, T *gb, T *go, T *gc,                    \
                              int64_t f, int64_t e, int64_t g, int threads) {       \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")               \
    for (int64_t i = 0; i < f; ++i) {                                                \
        T den[e], a[e];                                                              \
        double av[e], aw[e], ab[e], ao = 0, ac = 0;                                  \
        const T *vi = v + i * e, *wi = w + i * e, *bi = b + i * e;                   \
        for (int64_t k = 0; k < e; ++k) {                                            \
            den[k] = wi[k] * wi[k] + (T)eps;                                         \
            av[k] = aw[k] = ab[k] = 0;                                               \
        }                                                                            \
        for (int64_t j = 0; j < g; ++j) {                                            \
            const T t = grid[j], G = gtab[i * g + j];                                \
            T s;                                                                     \
            psa_softmax_##SUF(vi, bi, den, t, e, a, &s);                             \
            const T go_ = G * o[i];                                                  \
            ac += G;                                                                 \
            ao += (double)(G * s);                                                   \
            for (int64_t k = 0; k < e; ++k) {                                        \
                T d = t - bi[k];                                                     \
                T r = go_ * a[k] * (vi[k] * t - s);                                  \
                av[k] += (double)(go_ * a[k] * t);                                   \
                ab[k] += (double)(r * 2 * d / den[k]);                               \
                aw[k] += (double)(r * 2 * wi[k] * d * d / (den[k] * den[k]));        \
            }                                                                        \
        }                                                                            \
        for (int64_t k = 0; k < e; ++k) {                                            \
            gv[i * e + k] = (T)av[k]; gw[i * e + k] = (T)aw[k]; gb[i * e + k] = (T)ab[k]; \
        }                                                                            \
        go[i] = (T)ao;                                                               \
        gc[i] = (T)ac;                                                               \
    }                                                                                \
}

DEFINE_PSA(float, f32, expf)
DEFINE_PSA(double, f64, exp)
