/*
 * gemm.h - matrix multiply through OpenBLAS, parallelised by the runtime.
 *
 * OpenBLAS is pinned to one thread (nn_ctx_init); nn_gemm splits the output
 * into blocks of rows (or columns) and runs one single-threaded sgemm per
 * OpenMP thread, so BLAS and OpenMP never oversubscribe the cores.  It may
 * be called from inside a parallel region with nthreads = 1.
 */
#ifndef NN_GEMM_H
#define NN_GEMM_H

#include <stdint.h>

#include "context.h"

/* C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major, where
 * op(X) is X or its transpose (ta, tb), with leading dimensions lda, ldb,
 * ldc as in cblas.  Uses up to nthreads threads. */
void nn_gemm(int nthreads, int ta, int tb, int64_t M, int64_t N, int64_t K,
             float alpha, const float *A, int64_t lda, const float *B,
             int64_t ldb, float beta, float *C, int64_t ldc);

#endif
