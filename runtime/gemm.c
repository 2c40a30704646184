/* gemm.c - nn_gemm: blocked OpenMP over single-threaded OpenBLAS sgemm. */
#include "gemm.h"

#include <cblas.h>

void nn_gemm(int nthreads, int ta, int tb, int64_t M, int64_t N, int64_t K,
             float alpha, const float *A, int64_t lda, const float *B,
             int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
  enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
  /* Small problems, or one thread: a single call. */
  double flops = 2.0 * (double)M * (double)N * (double)K;
  if (nthreads <= 1 || flops < 2e6) {
    cblas_sgemm(CblasRowMajor, opa, opb, (int)M, (int)N, (int)K, alpha, A,
                (int)lda, B, (int)ldb, beta, C, (int)ldc);
    return;
  }
  /* Split the larger output dimension into one contiguous block per
   * thread.  Each output element is computed by exactly one call, with the
   * same K loop as an unsplit call. */
  int split_rows = M >= N;
  int64_t total = split_rows ? M : N;
  int nt = nthreads < total ? nthreads : (int)total;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int b = 0; b < nt; b++) {
    int64_t lo = total * b / nt, hi = total * (b + 1) / nt;
    if (hi <= lo) continue;
    if (split_rows) {
      const float *Ab = ta ? A + lo : A + lo * lda;
      cblas_sgemm(CblasRowMajor, opa, opb, (int)(hi - lo), (int)N, (int)K,
                  alpha, Ab, (int)lda, B, (int)ldb, beta, C + lo * ldc,
                  (int)ldc);
    } else {
      const float *Bb = tb ? B + lo * ldb : B + lo;
      cblas_sgemm(CblasRowMajor, opa, opb, (int)M, (int)(hi - lo), (int)K,
                  alpha, A, (int)lda, Bb, (int)ldb, beta, C + lo, (int)ldc);
    }
  }
}
