/*
 * context.h - the runtime context: thread count and the random number source.
 *
 * There is no global mutable state in the runtime: everything that would be
 * global lives in an nn_ctx, which callers create and pass to kernels, layers
 * and optimizers.  Several contexts may coexist (one per Lua state, per thread
 * or per MPI rank).
 *
 * Randomness is counter based: nn_rng_key() hands out a fresh 64-bit key by
 * advancing a counter, and the i-th random number of an operation is a pure
 * function of (key, i).  A parallel loop therefore draws the same numbers
 * whatever the thread count or the OpenMP schedule, and the whole RNG state is
 * two integers (seed, counter) that checkpoints can save and restore.
 */
#ifndef NN_CONTEXT_H
#define NN_CONTEXT_H

#include <stdint.h>

typedef struct nn_rng {
  uint64_t seed;
  uint64_t counter; /* keys handed out since seeding */
} nn_rng;

typedef struct nn_ctx {
  int num_threads; /* OpenMP threads used by every kernel (>= 1) */
  nn_rng rng;
} nn_ctx;

/* Default seed, as PyTorch's default generator. */
#define NN_DEFAULT_SEED 67280421310721ULL

/* Initialises ctx: threads = OpenMP's default (at most the core count),
 * RNG seeded with NN_DEFAULT_SEED, OpenBLAS pinned to one thread (kernels
 * parallelise around BLAS calls themselves, so nothing is oversubscribed). */
void nn_ctx_init(nn_ctx *ctx);
/* Sets the thread count used by kernels (clamped to >= 1). */
void nn_ctx_set_threads(nn_ctx *ctx, int n);

void nn_rng_seed(nn_rng *r, uint64_t seed);
/* A fresh key for one random operation; advances the generator. */
uint64_t nn_rng_key(nn_rng *r);
/* Stateless draws: the i-th 64-bit value / uniform in [0,1) / standard
 * normal of the stream named by key. */
uint64_t nn_rng_u64(uint64_t key, uint64_t i);
float nn_rng_uniform(uint64_t key, uint64_t i);
float nn_rng_normal(uint64_t key, uint64_t i);

/* Fill n floats with v, in parallel when n is large. */
void nn_fill_value(nn_ctx *ctx, float *x, int64_t n, float v);
/* Fill n floats with U(lo, hi) / N(mean, std), in parallel, from one key. */
void nn_fill_uniform(nn_ctx *ctx, float *x, int64_t n, float lo, float hi);
void nn_fill_normal(nn_ctx *ctx, float *x, int64_t n, float mean, float std);
/* A uniformly random permutation of 0..n-1 (Fisher-Yates from one key). */
void nn_randperm(nn_ctx *ctx, int64_t *out, int64_t n);

#endif
