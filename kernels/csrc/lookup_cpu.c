/*
 * Fused CPU kernels for per-feature LERP tables (also used for linear
 * B-splines, which are the same piecewise-linear function: K knots on
 * [-R, R] are a K-point table).
 *
 * Layout: x, y, grad_y, grad_x are (n, f) row-major; the table is (f, g).
 *   u    = (x + R) * inv_h,  inv_h = (g - 1) / (2R)  (a multiplication, as the authors' lookup:
 *            7.875 for g = 64, R = 4, exact in fp32; dividing by the step 2R / (g - 1) is not exact)
 *   j    = clamp(floor(u), 0, g - 2),  frac = u - j  (unclamped: edge segments extrapolate)
 *   y    = T[j] + frac * (T[j + 1] - T[j])
 *
 * Backward, for an upstream gradient gy:
 *   grad_x = (T[j + 1] - T[j]) * inv_h * gy,  dT[j] += (1 - frac) gy,  dT[j + 1] += frac gy.
 *
 * Three variants: f64 (everything double), f32 (everything float) and bf16
 * (x, y, grad_y, grad_x stored as bfloat16, the table and its gradient float;
 * every value is widened to float on load, the arithmetic is the f32
 * variant's, and results are rounded to bfloat16 to nearest-even on store,
 * exactly as torch converts: the bf16 kernels give bit for bit what the f32
 * kernels give on the widened inputs, rounded once, without the two extra
 * passes over memory that converting the tensors would cost).
 *
 * Arguments of lerp_forward_* / lerp_backward_*:
 *   x        (n, f) inputs, row-major, contiguous
 *   table    (f, g) per-feature tables (or B-spline coefficients), contiguous
 *   y        (n, f) output (forward)
 *   grad_y   (n, f) upstream gradient (backward)
 *   grad_x   (n, f) input gradient, or NULL when not needed
 *   grad_table (f, g) table gradient, or NULL when not needed
 *   work     lerp_backward_workspace(n, f, g) doubles of scratch, or NULL
 *            (then the kernel allocates it; a caller that keeps one buffer
 *            across calls saves an allocation whose pages the OS would zero
 *            and fault in again on every call)
 *   n, f, g  rows, features, grid points (f * g < 2^31, checked in Python)
 *   range    R > 0: the grid spans [-R, R]
 *   threads  OpenMP threads (torch.get_num_threads())
 *
 * Forward is parallel over rows. Backward is parallel over (row chunk,
 * feature block) pairs: each pair accumulates its rows, in row order, into
 * its own double-precision partial table, and the partials are summed in
 * chunk order. The chunks depend on n alone (row_chunks), never on the
 * thread count, so the table gradient is bit-reproducible whatever the
 * number of threads, and small feature counts (24, 96) still keep every
 * thread busy. A partial table holds a pair (a_j, b_j) per grid point:
 * a_j sums the (1 - frac) gy of the elements in segment j and b_j their
 * frac gy, so each element costs one 16-byte read-add-write (both weights at
 * once) and dT[j] = a_j + b_(j-1) when the partials are summed.
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
/* Backward row chunks: at least ROW_CHUNK_MIN rows each, at most MAX_ROW_CHUNKS
 * of them (the partial tables cost MAX_ROW_CHUNKS * f * g pairs of doubles). */
#define ROW_CHUNK_MIN 512
#define MAX_ROW_CHUNKS 16

/* At most MAX_PARTIAL doubles (256 MiB) of partial tables, unless one chunk alone needs more. */
#define MAX_PARTIAL ((int64_t)1 << 25)

static int64_t row_chunks(int64_t n, int64_t table_size) {
    int64_t c = (n + ROW_CHUNK_MIN - 1) / ROW_CHUNK_MIN;
    c = c > MAX_ROW_CHUNKS ? MAX_ROW_CHUNKS : c;
    if (table_size > 0 && c * 2 * table_size > MAX_PARTIAL) c = MAX_PARTIAL / (2 * table_size);
    return c < 1 ? 1 : c;
}

/* Doubles of scratch that lerp_backward_* needs for n rows of f features and g points. */
int64_t lerp_backward_workspace(int64_t n, int64_t f, int64_t g) {
    return row_chunks(n, f * g) * f * g * 2 + 2;
}

typedef double pair_t __attribute__((vector_size(16)));

/* bfloat16 <-> float: widening is exact (the 16 high bits of the float); narrowing rounds to
 * nearest, ties to even, NaN -> quiet NaN, as c10::BFloat16. */
static inline float bf16_load(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
static inline uint16_t bf16_store(float f) {
    union { uint32_t u; float f; } v;
    v.f = f;
    if (f != f) return (uint16_t)0x7FC0;
    return (uint16_t)((v.u + 0x7FFFu + ((v.u >> 16) & 1u)) >> 16);
}
#define LOAD_SAME(p) (p)
#define STORE_SAME(v) (v)

/* T: arithmetic and table type; IO: type of x, y, grad_y, grad_x; LD/ST: IO <-> T. */
#define DEFINE_LERP(T, IO, SUF, FLOOR, LD, ST)                                            \
void lerp_forward_##SUF(const IO *x, const T *table, IO *y, int64_t n, int64_t f,   \
                        int64_t g, double range, int threads) {                     \
    const T r = (T)range;                                                            \
    const T inv_h = (T)((double)(g - 1) / (2.0 * range));                            \
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
            const IO *xr = x + row * f + i0;                                         \
            IO *yr = y + row * f + i0;                                               \
            for (int64_t i = 0; i < m; ++i) {                                        \
                T u = (LD(xr[i]) + r) * inv_h;                                       \
                T j = FLOOR(u);                                                      \
                j = !(j >= (T)0) ? (T)0 : (j > jmax ? jmax : j);                     \
                fr[i] = u - j;                                                       \
                idx[i] = (int32_t)j + (int32_t)((i0 + i) * g);                       \
            }                                                                        \
            for (int64_t i = 0; i < m; ++i) {                                        \
                T left = table[idx[i]];                                              \
                yr[i] = ST(left + fr[i] * (table[idx[i] + 1] - left));               \
            }                                                                        \
        }                                                                            \
    }                                                                                \
}                                                                                    \
                                                                                     \
/* grad_x and/or grad_table may be NULL when not needed. Returns 0, or 1 when    \
 * the partial-gradient buffer cannot be allocated (nothing is written then).  \
 * Work items are (row chunk, feature block) pairs; per row, a vectorisable     \
 * pass computes segment, weights and input gradient for the block's features, \
 * and a scalar pass adds the weight pairs into the chunk's own partial table. \
 * The partials are then summed in chunk order. */                              \
int lerp_backward_##SUF(const IO *x, const T *table, const IO *grad_y, IO *grad_x,  \
                        T *grad_table, double *work, int64_t n, int64_t f,          \
                        int64_t g, double range, int threads) {                     \
    const T r = (T)range;                                                            \
    const T inv_h = (T)((double)(g - 1) / (2.0 * range));                            \
    const T jmax = (T)(g - 2);                                                       \
    const int64_t blocks = (f + FEATURE_BLOCK - 1) / FEATURE_BLOCK;                  \
    const int64_t chunks = row_chunks(n, f * g);                                     \
    const int64_t chunk_rows = chunks ? (n + chunks - 1) / chunks : 0;               \
    const int64_t fg = f * g;                                                        \
    double *owned = NULL, *part = NULL;                                              \
    if (grad_table) {                                                                \
        if (!work) {                                                                 \
            owned = (double *)malloc(sizeof(double) * (size_t)lerp_backward_workspace(n, f, g)); \
            if (!owned) return 1;                                                    \
            work = owned;                                                            \
        }                                                                            \
        /* 16-byte aligned pairs (the workspace has 2 doubles to spare). */          \
        part = work + (((uintptr_t)work & 15) ? 1 : 0);                              \
        memset(part, 0, sizeof(double) * (size_t)(chunks * fg * 2));                 \
    }                                                                                \
    _Pragma("omp parallel for collapse(2) schedule(static) num_threads(threads)")   \
    for (int64_t c = 0; c < chunks; ++c) {                                           \
        for (int64_t b = 0; b < blocks; ++b) {                                       \
            const int64_t f0 = b * FEATURE_BLOCK;                                    \
            const int64_t nf = (f0 + FEATURE_BLOCK < f ? f0 + FEATURE_BLOCK : f) - f0; \
            const int64_t r0 = c * chunk_rows;                                       \
            const int64_t r1 = r0 + chunk_rows < n ? r0 + chunk_rows : n;            \
            pair_t *acc = part ? (pair_t *)part + (c * f + f0) * g : NULL;           \
            const T *tb = table + f0 * g;                                            \
            int32_t idx[FEATURE_BLOCK];                                              \
            T w0[FEATURE_BLOCK], w1[FEATURE_BLOCK];                                  \
            for (int64_t row = r0; row < r1; ++row) {                                \
                const IO *xr = x + row * f + f0;                                     \
                const IO *gr = grad_y + row * f + f0;                                \
                for (int64_t i = 0; i < nf; ++i) {                                   \
                    const T gyi = LD(gr[i]);                                         \
                    T u = (LD(xr[i]) + r) * inv_h;                                   \
                    T j = FLOOR(u);                                                  \
                    j = !(j >= (T)0) ? (T)0 : (j > jmax ? jmax : j);                 \
                    T frac = u - j;                                                  \
                    idx[i] = (int32_t)j + (int32_t)(i * g);                          \
                    w0[i] = ((T)1 - frac) * gyi;                                     \
                    w1[i] = frac * gyi;                                              \
                }                                                                    \
                if (grad_x) {                                                        \
                    IO *gxr = grad_x + row * f + f0;                                 \
                    for (int64_t i = 0; i < nf; ++i)                                 \
                        gxr[i] = ST((tb[idx[i] + 1] - tb[idx[i]]) * inv_h * LD(gr[i])); \
                }                                                                    \
                if (acc) {                                                           \
                    for (int64_t i = 0; i < nf; ++i)                                 \
                        acc[idx[i]] += (pair_t){(double)w0[i], (double)w1[i]};       \
                }                                                                    \
            }                                                                        \
        }                                                                            \
    }                                                                                \
    if (part) {                                                                      \
        /* dT[i, j] = sum over chunks of a[i, j] + b[i, j - 1] (b[i, -1] = 0). */     \
        _Pragma("omp parallel for schedule(static) num_threads(threads)")           \
        for (int64_t k = 0; k < fg; ++k) {                                           \
            const int64_t j = k % g;                                                 \
            double s = 0;                                                            \
            for (int64_t c = 0; c < chunks; ++c) {                                   \
                const double *pc = part + 2 * (c * fg + k);                          \
                s += pc[0];                                                          \
                if (j) s += pc[-1];                                                  \
            }                                                                        \
            grad_table[k] = (T)s;                                                    \
        }                                                                            \
        free(owned);                                                                 \
    }                                                                                \
    return 0;                                                                        \
}

DEFINE_LERP(float, float, f32, floorf, LOAD_SAME, STORE_SAME)
DEFINE_LERP(float, uint16_t, bf16, floorf, bf16_load, bf16_store)
DEFINE_LERP(double, double, f64, floor, LOAD_SAME, STORE_SAME)


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
 * accumulates in double. Both work on GRID_CHUNK grid points at a time with
 * the grid point innermost, so that every loop over the grid vectorises (the
 * fp32 exponential is exp_nonpos_f32 below, which vectorises; libm's expf
 * does not without -ffast-math, which would also break the NaN tests of the
 * LERP kernels). The sums over the grid use OpenMP simd reductions: a fixed
 * order for a given build, so results are reproducible run to run.
 * Arguments: v, w, b (f, e) row-major; o, c (f); eps > 0; grid (g);
 * table, gtab (f, g); gv, gw, gb (f, e); go, gc (f); threads as above.
 * Return 0, or 1 when a work buffer cannot be allocated.
 */
#define GRID_CHUNK 64

/* exp(x) for float x <= 0 (softmax terms once the maximum is subtracted), in a
 * form GCC vectorises: x = k ln2 + r with |r| <= ln2 / 2 (ln2 split in two
 * for an exact product k * ln2_hi), exp(r) by the degree-6 polynomial of the
 * Cephes expf (relative error about 1e-7 on that interval), times 2^k written
 * into the exponent bits. Inputs below -87 are clamped (exp(-87) ~ 1.6e-38
 * instead of a denormal or 0; next to the maximum's term 1 it changes nothing
 * in fp32). A NaN input gives NaN (through r; k is computed from a NaN-free copy,
 * so the float-to-int conversion is always defined). */
static inline float exp_nonpos_f32(float x) {
    x = x < -87.0f ? -87.0f : x;                /* -inf too; NaN stays NaN */
    const float xk = x >= -87.0f ? x : -87.0f;  /* NaN -> -87: k is always a finite integer */
    const float k = floorf(xk * 1.44269504088896341f + 0.5f);
    float r = x - k * 0.693359375f;
    r = r + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { uint32_t u; float f; } scale;
    scale.u = (uint32_t)((int32_t)k + 127) << 23;
    return p * scale.f;
}

#define DEFINE_PSA(T, SUF, EXP)                                                      \
/* For grid points t[0..m): A[k * GRID_CHUNK + j] = a_k(t_j) (normalised) and      \
 * s[j] = sum_k a_k v_k t_j. */                                                     \
static void psa_softmax_##SUF(const T *vi, const T *bi, const T *den, const T *t,  \
                              int64_t m, int64_t e, T *A, T *s) {                   \
    T mx[GRID_CHUNK], z[GRID_CHUNK], sv[GRID_CHUNK];                                 \
    for (int64_t j = 0; j < m; ++j) { mx[j] = -INFINITY; z[j] = 0; sv[j] = 0; }      \
    for (int64_t k = 0; k < e; ++k) {                                                \
        T *Ak = A + k * GRID_CHUNK;                                                  \
        const T bk = bi[k], dk = den[k];                                             \
        _Pragma("omp simd")                                                          \
        for (int64_t j = 0; j < m; ++j) {                                            \
            const T d = t[j] - bk;                                                   \
            Ak[j] = -(d * d) / dk;                                                   \
            mx[j] = Ak[j] > mx[j] ? Ak[j] : mx[j];                                   \
        }                                                                            \
    }                                                                                \
    for (int64_t k = 0; k < e; ++k) {                                                \
        T *Ak = A + k * GRID_CHUNK;                                                  \
        const T vk = vi[k];                                                          \
        _Pragma("omp simd")                                                          \
        for (int64_t j = 0; j < m; ++j) {                                            \
            const T ek = EXP(Ak[j] - mx[j]);                                         \
            Ak[j] = ek;                                                              \
            z[j] += ek;                                                              \
            sv[j] += ek * vk;                                                        \
        }                                                                            \
    }                                                                                \
    for (int64_t k = 0; k < e; ++k) {                                                \
        T *Ak = A + k * GRID_CHUNK;                                                  \
        _Pragma("omp simd")                                                          \
        for (int64_t j = 0; j < m; ++j) Ak[j] /= z[j];                               \
    }                                                                                \
    for (int64_t j = 0; j < m; ++j) s[j] = sv[j] / z[j] * t[j];                      \
}                                                                                    \
                                                                                     \
int psa_table_forward_##SUF(const T *v, const T *w, const T *b, const T *o,         \
                            const T *c, double eps, const T *grid, T *table,        \
                            int64_t f, int64_t e, int64_t g, int threads) {         \
    int failed = 0;                                                                  \
    _Pragma("omp parallel for schedule(static) reduction(max:failed) num_threads(threads)") \
    for (int64_t i = 0; i < f; ++i) {                                                \
        T *A = (T *)malloc(sizeof(T) * (size_t)(e * GRID_CHUNK + e));                \
        if (!A) { failed = 1; continue; }                                            \
        T *den = A + e * GRID_CHUNK, s[GRID_CHUNK];                                  \
        const T *vi = v + i * e, *wi = w + i * e, *bi = b + i * e;                   \
        for (int64_t k = 0; k < e; ++k) den[k] = wi[k] * wi[k] + (T)eps;             \
        for (int64_t j0 = 0; j0 < g; j0 += GRID_CHUNK) {                             \
            const int64_t m = g - j0 < GRID_CHUNK ? g - j0 : GRID_CHUNK;             \
            psa_softmax_##SUF(vi, bi, den, grid + j0, m, e, A, s);                   \
            for (int64_t j = 0; j < m; ++j) table[i * g + j0 + j] = o[i] * s[j] + c[i]; \
        }                                                                            \
        free(A);                                                                     \
    }                                                                                \
    return failed;                                                                   \
}                                                                                    \
                                                                                     \
int psa_table_backward_##SUF(const T *v, const T *w, const T *b, const T *o,        \
                             double eps, const T *grid, const T *gtab,              \
                             T *gv, T *gw, T *gb, T *go, T *gc,                     \
                             int64_t f, int64_t e, int64_t g, int threads) {        \
    int failed = 0;                                                                  \
    _Pragma("omp parallel for schedule(static) reduction(max:failed) num_threads(threads)") \
    for (int64_t i = 0; i < f; ++i) {                                                \
        T *A = (T *)malloc(sizeof(T) * (size_t)(e * GRID_CHUNK + e));                \
        double *acc = (double *)malloc(sizeof(double) * (size_t)(3 * e + 1));            \
        if (!A || !acc) { free(A); free(acc); failed = 1; continue; }                \
        T *den = A + e * GRID_CHUNK, s[GRID_CHUNK], gox[GRID_CHUNK];                 \
        double *av = acc, *aw = acc + e, *ab = acc + 2 * e, ao = 0, ac = 0;          \
        const T *vi = v + i * e, *wi = w + i * e, *bi = b + i * e;                   \
        for (int64_t k = 0; k < e; ++k) {                                            \
            den[k] = wi[k] * wi[k] + (T)eps;                                         \
            av[k] = aw[k] = ab[k] = 0;                                               \
        }                                                                            \
        for (int64_t j0 = 0; j0 < g; j0 += GRID_CHUNK) {                             \
            const int64_t m = g - j0 < GRID_CHUNK ? g - j0 : GRID_CHUNK;             \
            const T *t = grid + j0, *G = gtab + i * g + j0;                          \
            psa_softmax_##SUF(vi, bi, den, t, m, e, A, s);                           \
            _Pragma("omp simd reduction(+:ao,ac)")                                   \
            for (int64_t j = 0; j < m; ++j) {                                        \
                gox[j] = G[j] * o[i];                                                \
                ac += (double)G[j];                                                  \
                ao += (double)(G[j] * s[j]);                                         \
            }                                                                        \
            for (int64_t k = 0; k < e; ++k) {                                        \
                const T *Ak = A + k * GRID_CHUNK;                                    \
                const T vk = vi[k], bk = bi[k], wk = wi[k], dk = den[k];             \
                double sv = 0, sb = 0, sw = 0;                                       \
                _Pragma("omp simd reduction(+:sv,sb,sw)")                            \
                for (int64_t j = 0; j < m; ++j) {                                    \
                    const T d = t[j] - bk;                                           \
                    const T ga = gox[j] * Ak[j];                                     \
                    const T rr = ga * (vk * t[j] - s[j]);                            \
                    sv += (double)(ga * t[j]);                                       \
                    sb += (double)(rr * 2 * d / dk);                                 \
                    sw += (double)(rr * 2 * wk * d * d / (dk * dk));                 \
                }                                                                    \
                av[k] += sv; ab[k] += sb; aw[k] += sw;                               \
            }                                                                        \
        }                                                                            \
        for (int64_t k = 0; k < e; ++k) {                                            \
            gv[i * e + k] = (T)av[k]; gw[i * e + k] = (T)aw[k]; gb[i * e + k] = (T)ab[k]; \
        }                                                                            \
        go[i] = (T)ao;                                                               \
        gc[i] = (T)ac;                                                               \
        free(A);                                                                     \
        free(acc);                                                                   \
    }                                                                                \
    return failed;                                                                   \
}

DEFINE_PSA(float, f32, exp_nonpos_f32)
DEFINE_PSA(double, f64, exp)
