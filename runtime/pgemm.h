/*
 * pgemm.h - single-threaded matrix products whose left operand is packed
 * once and reused: C[M,N] = A[M,K] B[K,N] (+ C), row-major, with A stored as
 * panels of mr rows (mr depends on the CPU: nn_pgemm_mr).
 *
 * Made for the Winograd points, whose left operand (the transformed
 * weights) serves every chunk of a call, or every call in eval mode: packed
 * once by the weight transform, it needs no per-call copy, and B and C are
 * read and written in place (OpenBLAS packs both, and zeroes C first; those
 * copies were 11% of a 128-channel 16x16 layer).  The kernels hold an mr x nr
 * block of C in registers: 8 x 32 with AVX-512, 6 x 16 with AVX2 and FMA,
 * chosen at run time; other CPUs get one OpenBLAS call per panel of 16
 * rows.  Each element of C is a sum
 * over k in increasing order, so results depend on nothing but the operands
 * and the kernel.
 */
#ifndef NN_PGEMM_H
#define NN_PGEMM_H

#include <stdint.h>

/* Kernels, for nn_pgemm_select. */
enum { NN_PGEMM_GENERIC = 0, NN_PGEMM_AVX2 = 1, NN_PGEMM_AVX512 = 2 };

/* Rows per panel of a packed operand with the kernel in use. */
int nn_pgemm_mr(void);

/* Floats of A[M,K] packed: ceil(M / mr) * mr * K. */
int64_t nn_pgemm_packed_size(int64_t M, int64_t K);

/* Index in a packed A[M,K] of element (i, k): panel i / mr holds its rows
 * k-major, mr floats per k (rows past M are zero). */
static inline int64_t nn_pgemm_index(int mr, int64_t K, int64_t i,
                                     int64_t k) {
  return (i / mr) * mr * K + k * mr + i % mr;
}

/* Packs op(A)[M,K] into ap (nn_pgemm_packed_size(M, K) floats): op(A) = A
 * when ta is 0 (A row-major [M][lda]), its transpose when 1 (A [K][lda]). */
void nn_pgemm_pack(int ta, int64_t M, int64_t K, const float *A, int64_t lda,
                   float *ap);

/* C[M,N] = ap B (acc 0) or C + ap B (acc 1), where ap is A[M,K] packed and
 * B [K][ldb], C [M][ldc] row-major.  Single-threaded; cannot fail. */
void nn_pgemm(int64_t M, int64_t N, int64_t K, const float *ap,
              const float *B, int64_t ldb, int acc, float *C, int64_t ldc);

/* The kernel in use (NN_PGEMM_*): the best this CPU runs, unless the
 * environment variable NNLUA_PGEMM names another it runs (avx512, avx2,
 * blas), read once; and the best this CPU runs. */
int nn_pgemm_isa(void);
int nn_pgemm_best_isa(void);

/* Uses kernel isa (at most nn_pgemm_best_isa(); for tests and benchmarks,
 * outside any call: operands packed before a change must be packed again).
 * Returns the kernel used before. */
int nn_pgemm_select(int isa);

#endif
