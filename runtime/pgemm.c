/* pgemm.c - products with a packed left operand (see pgemm.h).
 *
 * nn_pgemm walks C panel by panel (mr rows), and within each its blocks of
 * nr columns, so that the panel (K x mr floats) stays in the L1 cache while
 * B streams from L2 (the other way round, the Winograd weights, 1 MiB per
 * point at 512 x 512 channels, came from memory again for every block of
 * columns).  A kernel computes one mr x nr block of C: its accumulators
 * stay in registers for the whole K loop, each step loading nr floats of
 * one row of B and broadcasting the mr floats of one column of the panel.
 * Blocks at the right and bottom edges go through the same kernels with
 * masked loads and stores.  Without AVX2, each panel is one OpenBLAS call. */
#include "pgemm.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PGEMM_X86 1
#else
#define PGEMM_X86 0
#endif

/* Rows and columns of the block of C each kernel holds. */
#define MR_GENERIC 16
#define NR_GENERIC 4096
#define MR_AVX2 6
#define NR_AVX2 16
#define MR_AVX512 8
#define NR_AVX512 32

typedef void kernel_fn(int64_t K, const float *ap, const float *b,
                       int64_t ldb, float *c, int64_t ldc, int rows, int cols,
                       int acc);

/* c[rows x cols] (+)= panel ap (mr x K) times b (K x cols), for CPUs
 * without AVX2: through OpenBLAS, the panel being the transpose of a
 * row-major K x mr matrix. */
static void kernel_generic(int64_t K, const float *ap, const float *b,
                           int64_t ldb, float *c, int64_t ldc, int rows,
                           int cols, int acc) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, cols, (int)K,
              1.0f, ap, MR_GENERIC, b, (int)ldb, acc ? 1.0f : 0.0f, c,
              (int)ldc);
}

#if PGEMM_X86
/* The AVX2 + FMA kernel, 6 x 16: 12 accumulators, 2 rows of B and a
 * broadcast in the 16 registers.  full: the block lies wholly inside C
 * (plain loads and stores); otherwise masked ones, columns past cols read
 * as 0 and rows past rows neither read nor written. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
block_avx2(int64_t K, const float *ap, const float *b, int64_t ldb, float *c,
           int64_t ldc, int rows, int cols, int acc, int full) {
  __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
  __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);
  __m256 c0[MR_AVX2], c1[MR_AVX2];
#pragma GCC unroll 6
  for (int i = 0; i < MR_AVX2; i++) {
    c0[i] = c1[i] = _mm256_setzero_ps();
    if (acc && i < rows) {
      c0[i] = full ? _mm256_loadu_ps(c + i * ldc)
                   : _mm256_maskload_ps(c + i * ldc, m0);
      c1[i] = full ? _mm256_loadu_ps(c + i * ldc + 8)
                   : _mm256_maskload_ps(c + i * ldc + 8, m1);
    }
  }
  for (int64_t k = 0; k < K; k++, b += ldb, ap += MR_AVX2) {
    __m256 b0 = full ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, m0);
    __m256 b1 = full ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, m1);
#pragma GCC unroll 6
    for (int i = 0; i < MR_AVX2; i++) {
      __m256 a = _mm256_broadcast_ss(ap + i);
      c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR_AVX2; i++) {
    if (i >= rows) break;
    if (full) {
      _mm256_storeu_ps(c + i * ldc, c0[i]);
      _mm256_storeu_ps(c + i * ldc + 8, c1[i]);
    } else {
      _mm256_maskstore_ps(c + i * ldc, m0, c0[i]);
      _mm256_maskstore_ps(c + i * ldc + 8, m1, c1[i]);
    }
  }
}

__attribute__((target("avx2,fma"))) static void
kernel_avx2(int64_t K, const float *ap, const float *b, int64_t ldb, float *c,
            int64_t ldc, int rows, int cols, int acc) {
  if (rows == MR_AVX2 && cols == NR_AVX2)
    block_avx2(K, ap, b, ldb, c, ldc, rows, cols, acc, 1);
  else
    block_avx2(K, ap, b, ldb, c, ldc, rows, cols, acc, 0);
}

/* The AVX-512 kernel, 8 x 32: 16 accumulators, 2 rows of B and a
 * broadcast.  full as in block_avx2 (masked loads of B ran 5-10% slower on
 * whole blocks). */
__attribute__((target("avx512f"), always_inline)) static inline void
block_avx512(int64_t K, const float *ap, const float *b, int64_t ldb,
             float *c, int64_t ldc, int rows, int cols, int acc, int full) {
  __mmask16 m0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
  __mmask16 m1 = cols >= 32   ? 0xffff
                 : cols <= 16 ? 0
                              : (__mmask16)((1u << (cols - 16)) - 1);
  __m512 c0[MR_AVX512], c1[MR_AVX512];
#pragma GCC unroll 8
  for (int i = 0; i < MR_AVX512; i++) {
    c0[i] = c1[i] = _mm512_setzero_ps();
    if (acc && i < rows) {
      c0[i] = full ? _mm512_loadu_ps(c + i * ldc)
                   : _mm512_maskz_loadu_ps(m0, c + i * ldc);
      c1[i] = full ? _mm512_loadu_ps(c + i * ldc + 16)
                   : _mm512_maskz_loadu_ps(m1, c + i * ldc + 16);
    }
  }
  for (int64_t k = 0; k < K; k++, b += ldb, ap += MR_AVX512) {
    __m512 b0 = full ? _mm512_loadu_ps(b) : _mm512_maskz_loadu_ps(m0, b);
    __m512 b1 =
        full ? _mm512_loadu_ps(b + 16) : _mm512_maskz_loadu_ps(m1, b + 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR_AVX512; i++) {
      __m512 a = _mm512_set1_ps(ap[i]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR_AVX512; i++) {
    if (i >= rows) break;
    if (full) {
      _mm512_storeu_ps(c + i * ldc, c0[i]);
      _mm512_storeu_ps(c + i * ldc + 16, c1[i]);
    } else {
      _mm512_mask_storeu_ps(c + i * ldc, m0, c0[i]);
      _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c1[i]);
    }
  }
}

__attribute__((target("avx512f"))) static void
kernel_avx512(int64_t K, const float *ap, const float *b, int64_t ldb,
              float *c, int64_t ldc, int rows, int cols, int acc) {
  if (rows == MR_AVX512 && cols == NR_AVX512)
    block_avx512(K, ap, b, ldb, c, ldc, rows, cols, acc, 1);
  else
    block_avx512(K, ap, b, ldb, c, ldc, rows, cols, acc, 0);
}
#endif

/* Each kernel (indexed by NN_PGEMM_*) with the block of C it holds. */
typedef struct {
  kernel_fn *fn;
  int mr, nr;
} kernel_info;
static const kernel_info KERNELS[] = {
    [NN_PGEMM_GENERIC] = {kernel_generic, MR_GENERIC, NR_GENERIC},
#if PGEMM_X86
    [NN_PGEMM_AVX2] = {kernel_avx2, MR_AVX2, NR_AVX2},
    [NN_PGEMM_AVX512] = {kernel_avx512, MR_AVX512, NR_AVX512},
#endif
};

/* The kernel in use, -1 until first asked. */
static _Atomic int current = -1;

int nn_pgemm_best_isa(void) {
#if PGEMM_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return NN_PGEMM_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return NN_PGEMM_AVX2;
#endif
  return NN_PGEMM_GENERIC;
}

/* The kernel NNLUA_PGEMM names (avx512, avx2 or blas) when this CPU runs
 * it, else the best. */
static int initial_isa(void) {
  int best = nn_pgemm_best_isa();
  const char *e = getenv("NNLUA_PGEMM");
  if (!e) return best;
  int want = strcmp(e, "avx512") == 0 ? NN_PGEMM_AVX512
             : strcmp(e, "avx2") == 0 ? NN_PGEMM_AVX2
             : strcmp(e, "blas") == 0 ? NN_PGEMM_GENERIC
                                      : best;
  return want <= best ? want : best;
}

int nn_pgemm_isa(void) {
  int isa = atomic_load_explicit(&current, memory_order_relaxed);
  if (isa < 0) {
    isa = initial_isa();
    atomic_store_explicit(&current, isa, memory_order_relaxed);
  }
  return isa;
}

int nn_pgemm_select(int isa) {
  int old = nn_pgemm_isa();
  if (isa < NN_PGEMM_GENERIC || isa > nn_pgemm_best_isa()) return old;
  atomic_store_explicit(&current, isa, memory_order_relaxed);
  return old;
}

int nn_pgemm_mr(void) { return KERNELS[nn_pgemm_isa()].mr; }

int64_t nn_pgemm_packed_size(int64_t M, int64_t K) {
  int64_t mr = nn_pgemm_mr();
  return (M + mr - 1) / mr * mr * K;
}

void nn_pgemm_pack(int ta, int64_t M, int64_t K, const float *A, int64_t lda,
                   float *ap) {
  int mr = nn_pgemm_mr();
  for (int64_t i0 = 0; i0 < M; i0 += mr) {
    float *p = ap + i0 * K;
    int64_t rows = M - i0 < mr ? M - i0 : mr;
    for (int64_t k = 0; k < K; k++)
      for (int64_t r = 0; r < mr; r++)
        p[k * mr + r] = r >= rows ? 0.0f
                        : ta      ? A[k * lda + i0 + r]
                                  : A[(i0 + r) * lda + k];
  }
}

void nn_pgemm(int64_t M, int64_t N, int64_t K, const float *ap,
              const float *B, int64_t ldb, int acc, float *C, int64_t ldc) {
  const kernel_info *kn = &KERNELS[nn_pgemm_isa()];
  int mr = kn->mr, nr = kn->nr;
  for (int64_t i0 = 0; i0 < M; i0 += mr) {
    int rows = M - i0 < mr ? (int)(M - i0) : mr;
    for (int64_t j0 = 0; j0 < N; j0 += nr) {
      int cols = N - j0 < nr ? (int)(N - j0) : nr;
      kn->fn(K, ap + i0 * K, B + j0, ldb, C + i0 * ldc + j0, ldc, rows, cols,
             acc);
    }
  }
}
