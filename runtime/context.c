/* context.c - context set-up and the counter-based random number source. */
#include "context.h"

#include <math.h>
#include <omp.h>

/* Provided by OpenBLAS (cblas.h declares it, but we keep BLAS headers out of
 * the context). */
void openblas_set_num_threads(int n);

void nn_ctx_init(nn_ctx *ctx) {
  int n = omp_get_max_threads();
  int cores = omp_get_num_procs();
  if (n > cores) n = cores;
  nn_ctx_set_threads(ctx, n);
  nn_rng_seed(&ctx->rng, NN_DEFAULT_SEED);
  openblas_set_num_threads(1);
}

void nn_ctx_set_threads(nn_ctx *ctx, int n) {
  ctx->num_threads = n < 1 ? 1 : n;
}

void nn_rng_seed(nn_rng *r, uint64_t seed) {
  r->seed = seed;
  r->counter = 0;
}

/* splitmix64's finaliser: a bijective mix with full avalanche. */
static inline uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

uint64_t nn_rng_key(nn_rng *r) {
  r->counter++;
  return mix64(mix64(r->seed ^ 0x5851F42D4C957F2DULL) +
               r->counter * 0x9E3779B97F4A7C15ULL);
}

uint64_t nn_rng_u64(uint64_t key, uint64_t i) {
  return mix64(key + (i + 1) * 0x9E3779B97F4A7C15ULL);
}

float nn_rng_uniform(uint64_t key, uint64_t i) {
  /* 24 high bits -> [0, 1) exactly representable in float. */
  return (float)(nn_rng_u64(key, i) >> 40) * (1.0f / 16777216.0f);
}

float nn_rng_normal(uint64_t key, uint64_t i) {
  /* Box-Muller on two independent 32-bit halves of one draw. */
  uint64_t r = nn_rng_u64(key, i);
  double u1 = ((double)(r >> 32) + 1.0) * (1.0 / 4294967297.0); /* (0, 1) */
  double u2 = (double)(r & 0xFFFFFFFFu) * (1.0 / 4294967296.0);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void nn_fill_value(nn_ctx *ctx, float *x, int64_t n, float v) {
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n > 65536)
  for (int64_t i = 0; i < n; i++) x[i] = v;
}

void nn_fill_uniform(nn_ctx *ctx, float *x, int64_t n, float lo, float hi) {
  uint64_t key = nn_rng_key(&ctx->rng);
  float w = hi - lo;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n > 65536)
  for (int64_t i = 0; i < n; i++) x[i] = lo + w * nn_rng_uniform(key, i);
}

void nn_fill_normal(nn_ctx *ctx, float *x, int64_t n, float mean, float std) {
  uint64_t key = nn_rng_key(&ctx->rng);
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n > 65536)
  for (int64_t i = 0; i < n; i++) x[i] = mean + std * nn_rng_normal(key, i);
}

void nn_randperm(nn_ctx *ctx, int64_t *out, int64_t n) {
  uint64_t key = nn_rng_key(&ctx->rng);
  for (int64_t i = 0; i < n; i++) out[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(nn_rng_u64(key, (uint64_t)i) % (uint64_t)(i + 1));
    int64_t t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
}
