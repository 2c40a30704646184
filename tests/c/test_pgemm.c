/* test_pgemm.c - products with a packed left operand against a product in
 * double, on every kernel this CPU runs (AVX-512, AVX2, OpenBLAS per
 * panel): whole blocks and edges in rows and columns, depth 0 and 1, the
 * accumulating form, both packings, and the packed layout itself; the
 * kernel chosen by NNLUA_PGEMM. */
#include <stdlib.h>
#include <string.h>

#include "../../runtime/pgemm.h"
#include "check.h"

/* Deterministic pseudo-random values in [-1, 1). */
static void fill(float *a, int64_t n, unsigned seed) {
  unsigned s = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    a[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
}

/* Runs one product of M x K by K x N with the kernel in use: A given as
 * [M][K] or (ta) [K][M] with a padded leading dimension, B and C with
 * padded rows; checks C against the double product (plus C's old values
 * when acc), and that no float outside C's M x N block changed. */
static void one(int64_t M, int64_t N, int64_t K, int ta, int acc) {
  int64_t lda = (ta ? M : K) + 3, ldb = N + 5, ldc = N + 7;
  int64_t arows = ta ? K : M;
  float *A = malloc(sizeof(float) * (size_t)(arows * lda + 1));
  float *B = malloc(sizeof(float) * (size_t)(K * ldb + 1));
  float *C = malloc(sizeof(float) * (size_t)(M * ldc + 1));
  float *C0 = malloc(sizeof(float) * (size_t)(M * ldc + 1));
  float *ap = malloc(sizeof(float) * (size_t)(nn_pgemm_packed_size(M, K) + 1));
  fill(A, arows * lda, (unsigned)(M * 7 + K));
  fill(B, K * ldb, (unsigned)(N * 5 + K + 1));
  fill(C0, M * ldc, (unsigned)(M + N + 2));
  memcpy(C, C0, sizeof(float) * (size_t)(M * ldc));
  nn_pgemm_pack(ta, M, K, A, lda, ap);
  nn_pgemm(M, N, K, ap, B, ldb, acc, C, ldc);
  int bad = 0, outside = 0;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < ldc; j++) {
      if (j >= N) {
        outside += C[i * ldc + j] != C0[i * ldc + j];
        continue;
      }
      double s = acc ? C0[i * ldc + j] : 0.0;
      for (int64_t k = 0; k < K; k++)
        s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) *
             (double)B[k * ldb + j];
      if (fabs(C[i * ldc + j] - s) > 1e-5 * (1.0 + (double)K)) bad++;
    }
  if (bad || outside)
    fprintf(stderr, "  isa %d M %lld N %lld K %lld ta %d acc %d: %d wrong, "
            "%d outside changed\n", nn_pgemm_isa(), (long long)M,
            (long long)N, (long long)K, ta, acc, bad, outside);
  CHECK(bad == 0);
  CHECK(outside == 0);
  free(A), free(B), free(C), free(C0), free(ap);
}

/* Every shape class on every kernel this CPU has. */
static void test_products(void) {
  static const int64_t sizes[][3] = {
      {8, 32, 16},  {6, 16, 5},   {64, 64, 64},  {1, 1, 1},   {7, 33, 9},
      {13, 17, 3},  {17, 31, 1},  {24, 48, 0},   {50, 100, 70}, {5, 3, 2},
      {128, 96, 130}, {9, 15, 31}, {96, 64, 256}};
  int best = nn_pgemm_best_isa(), old = nn_pgemm_isa();
  for (int isa = NN_PGEMM_GENERIC; isa <= best; isa++) {
    CHECK(nn_pgemm_select(isa) >= 0);
    CHECK(nn_pgemm_isa() == isa);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      for (int ta = 0; ta < 2; ta++)
        for (int acc = 0; acc < 2; acc++)
          one(sizes[s][0], sizes[s][1], sizes[s][2], ta, acc);
  }
  nn_pgemm_select(old);
}

/* The packed layout: panels of mr rows, k-major, zero past the last row;
 * nn_pgemm_index agrees with nn_pgemm_pack. */
static void test_layout(void) {
  int best = nn_pgemm_best_isa(), old = nn_pgemm_isa();
  for (int isa = NN_PGEMM_GENERIC; isa <= best; isa++) {
    nn_pgemm_select(isa);
    int mr = nn_pgemm_mr();
    CHECK(mr >= 1);
    int64_t M = 2 * mr + 1, K = 5;
    CHECK(nn_pgemm_packed_size(M, K) == 3 * mr * K);
    float A[64 * 5], ap[3 * 64 * 5];
    for (int64_t i = 0; i < M * K; i++) A[i] = (float)(i + 1);
    memset(ap, 0xff, sizeof ap);
    nn_pgemm_pack(0, M, K, A, K, ap);
    int bad = 0, pad = 0;
    for (int64_t i = 0; i < 3 * mr; i++)
      for (int64_t k = 0; k < K; k++) {
        float v = ap[nn_pgemm_index(mr, K, i, k)];
        if (i < M)
          bad += v != A[i * K + k];
        else
          pad += v != 0.0f;
      }
    CHECK(bad == 0);
    CHECK(pad == 0);
  }
  /* a kernel the CPU lacks is refused */
  nn_pgemm_select(old);
  CHECK(nn_pgemm_select(NN_PGEMM_AVX512 + 1) == old);
  CHECK(nn_pgemm_isa() == old);
  CHECK(nn_pgemm_isa() == nn_pgemm_best_isa());
}

/* NNLUA_PGEMM picks the kernel at the first call (run first, before any);
 * a kernel the CPU lacks, or an unknown name, falls back to the best. */
static void test_environment(void) {
  setenv("NNLUA_PGEMM", "blas", 1);
  CHECK(nn_pgemm_isa() == NN_PGEMM_GENERIC);
  CHECK(nn_pgemm_mr() == 16);
  unsetenv("NNLUA_PGEMM");
  nn_pgemm_select(nn_pgemm_best_isa());
  CHECK(nn_pgemm_isa() == nn_pgemm_best_isa());
}

int main(void) {
  RUN(test_environment);
  RUN(test_products);
  RUN(test_layout);
  return check_report("pgemm");
}
