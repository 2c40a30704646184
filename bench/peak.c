/* peak.c - this machine's float32 ceilings, for reading the benchmark's
 * GFLOPS figures against: the fused multiply-add peak (independent FMA
 * chains in registers: 8-wide AVX2, and 16-wide AVX-512 when the CPU has
 * it) on 1 and N threads, and single-threaded OpenBLAS sgemm on a large
 * square product.
 *
 *   build/bench_peak [threads]      (default 2)
 *
 * Prints "PEAK <what> <threads> <GFLOPS>" lines and a readable summary.
 * Each loop is compiled for its instruction set alone (target attributes)
 * and run only when the CPU reports it. */
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define CHAINS 12

/* iters rounds of CHAINS independent 8-wide FMAs; returns a value that
 * depends on all of them so the loop is kept. */
__attribute__((target("avx2,fma"))) static float fma_avx2(long iters) {
  __m256 acc[CHAINS];
  __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
  for (long k = 0; k < iters; k++) {
#pragma GCC unroll 12
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
  }
  float out[8], s = 0.0f;
  for (int i = 0; i < CHAINS; i++) {
    _mm256_storeu_ps(out, acc[i]);
    s += out[0];
  }
  return s;
}

/* The same with 16-wide AVX-512 FMAs. */
__attribute__((target("avx512f"))) static float fma_avx512(long iters) {
  __m512 acc[CHAINS];
  __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
  for (long k = 0; k < iters; k++) {
#pragma GCC unroll 12
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
  }
  float s = 0.0f;
  for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(acc[i]);
  return s;
}

/* GFLOPS of the FMA loop (width 8 or 16) on nt threads, best of 3. */
static double fma_rate(int width, int nt) {
  long iters = 20000000;
  double best = 0.0;
  for (int rep = 0; rep < 3; rep++) {
    double sink = 0.0, t0 = omp_get_wtime();
#pragma omp parallel num_threads(nt) reduction(+ : sink)
    sink += width == 16 ? fma_avx512(iters) : fma_avx2(iters);
    double dt = omp_get_wtime() - t0;
    double gf = 2.0 * width * CHAINS * (double)iters * nt / dt / 1e9;
    if (gf > best) best = gf;
    if (sink == 12345.0) printf(" ");
  }
  return best;
}

/* GFLOPS of one single-threaded sgemm of n x n x n, best of 3. */
static double sgemm_rate(int n) {
  float *a = malloc(sizeof(float) * (size_t)n * n);
  float *b = malloc(sizeof(float) * (size_t)n * n);
  float *c = malloc(sizeof(float) * (size_t)n * n);
  if (!a || !b || !c) {
    free(a), free(b), free(c);
    return 0.0;
  }
  for (long i = 0; i < (long)n * n; i++) a[i] = b[i] = 1e-3f * (float)(i % 97);
  double best = 0.0;
  for (int rep = 0; rep < 4; rep++) {
    double t0 = omp_get_wtime();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n,
                b, n, 0.0f, c, n);
    double gf = 2.0 * n * n * (double)n / (omp_get_wtime() - t0) / 1e9;
    if (rep > 0 && gf > best) best = gf;
  }
  free(a), free(b), free(c);
  return best;
}

int main(int argc, char **argv) {
  int nt = argc > 1 ? atoi(argv[1]) : 2;
  if (nt < 1) {
    fprintf(stderr, "usage: bench_peak [threads >= 1]\n");
    return 2;
  }
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    printf("PEAK none: this CPU has no AVX2/FMA\n");
    return 0;
  }
  double a1 = fma_rate(8, 1), an = fma_rate(8, nt);
  printf("PEAK fma_avx2 1 %.1f\nPEAK fma_avx2 %d %.1f\n", a1, nt, an);
  if (__builtin_cpu_supports("avx512f")) {
    double b1 = fma_rate(16, 1), bn = fma_rate(16, nt);
    printf("PEAK fma_avx512 1 %.1f\nPEAK fma_avx512 %d %.1f\n", b1, nt, bn);
  }
  openblas_set_num_threads(1);
  printf("PEAK sgemm1024 1 %.1f\n", sgemm_rate(1024));
  return 0;
}
