/* norm.c - batch normalisation: kernels and the BatchNorm1d/2d layers. */
#include "norm.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "activation.h" /* nn_float_repr */
#include "layer.h"

/* Below this many elements a kernel runs on the calling thread only. */
#define PAR_MIN 16384
/* Sums over a plane run in float vector lanes over blocks of this many
 * values, then in double: vectorised and still accurate for large planes. */
#define BLOCK 1024

/* Per channel, x [N, C, HW] is N contiguous planes of HW values: every kernel
 * runs over channels in parallel (one thread owns a channel, so results do
 * not depend on the thread count) and over each plane with a vectorised
 * inner loop. */

/* sum(x - k) and sum((x - k)^2) over n values, added to s1 and s2. */
static void shifted_sums(const float *x, int64_t n, float k, double *s1,
                         double *s2) {
  for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
    int64_t e = i0 + BLOCK < n ? i0 + BLOCK : n;
    float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
    for (int64_t i = i0; i < e; i++) {
      float d = x[i] - k;
      a += d;
      b += d * d;
    }
    *s1 += a;
    *s2 += b;
  }
}

/* The gradient of relu(v)'s input, v = (x - m) * a + b as nn_affine_relu
 * computes it, for the gradient g of its output: g where v > 0, else 0 (as
 * relu_b masks it).  g is loaded by the caller whatever the mask: a select,
 * which vectorises (a conditional load of gy left the masked loops scalar,
 * about 28 times slower). */
static inline float relu_grad(float x, float g, float m, float a, float b) {
  float v = (x - m) * a + b;
  return v > 0.0f ? g : 0.0f;
}

/* sum(gy) and sum(gy * (x - mean)) over n values, added to sg and sgx; with
 * masked set, gy masked by relu_grad with m, ra, rb: the gradient of a
 * following ReLU's output.  One body for both, called with masked constant,
 * so that the plain and the masked sums vectorise alike and give the same
 * bits (memory_spec checks it; two separate loops summed in different
 * orders). */
static inline void grad_sums(const float *x, const float *gy, int64_t n,
                             float mean, int masked, float m, float ra,
                             float rb, double *sg, double *sgx) {
  for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
    int64_t e = i0 + BLOCK < n ? i0 + BLOCK : n;
    float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
    for (int64_t i = i0; i < e; i++) {
      float g = masked ? relu_grad(x[i], gy[i], m, ra, rb) : gy[i];
      a += g;
      b += g * (x[i] - mean);
    }
    *sg += a;
    *sgx += b;
  }
}

/* Mean and biased variance of channel c in one pass, from sums shifted by
 * the channel's first value (so that a large mean does not cancel the
 * variance away). */
static void channel_moments(const float *x, int64_t N, int64_t C, int64_t HW,
                            int64_t c, double *mean, double *var) {
  float k = x[c * HW];
  double s1 = 0.0, s2 = 0.0;
  for (int64_t n = 0; n < N; n++)
    shifted_sums(x + (n * C + c) * HW, HW, k, &s1, &s2);
  double M = (double)(N * HW), d = s1 / M;
  double v = s2 / M - d * d;
  *mean = k + d;
  *var = v > 0.0 ? v : 0.0;
}

/* y = (x - m) * a + b over one plane (subtracting first, so that a large
 * mean does not cost precision). */
static void affine_plane(const float *x, float *y, int64_t n, float m, float a,
                         float b) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * a + b;
}

/* affine_plane, or nn_affine_relu when relu is set. */
static void output_plane(const float *x, float *y, int64_t n, float m, float a,
                         float b, int relu) {
  if (relu)
    nn_affine_relu(x, y, n, m, a, b);
  else
    affine_plane(x, y, n, m, a, b);
}

/* y = (x - mean[c]) * invstd[c] * weight[c] + bias[c] over channel c. */
static void normalize_channel(const float *x, int64_t N, int64_t C, int64_t HW,
                              int64_t c, float mean, float invstd, float w,
                              float b, float *y, int relu) {
  float a = invstd * w;
  for (int64_t n = 0; n < N; n++)
    output_plane(x + (n * C + c) * HW, y + (n * C + c) * HW, HW, mean, a, b,
                 relu);
}

void nn_batchnorm_stats(nn_ctx *ctx, const float *x, int64_t N, int64_t C,
                        int64_t HW, float eps, float *save_mean,
                        float *save_invstd) {
  if (N * HW == 0) return;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (N * C * HW >= PAR_MIN)
  for (int64_t c = 0; c < C; c++) {
    double mean, var;
    channel_moments(x, N, C, HW, c, &mean, &var);
    save_mean[c] = (float)mean;
    save_invstd[c] = (float)(1.0 / sqrt(var + eps));
  }
}

/* acc[2 c + j] = sum over n in order of part[2 (n C + c) + j], j = 0, 1:
 * the per-plane sums of every channel, streamed in memory order (per
 * channel they lie 2 C doubles apart, a stride that thrashed the cache:
 * with 2 threads BatchNorm over [64, 512, 4, 4] took 0.78 ms, not 0.46). */
static void sum_planes(const double *part, int64_t N, int64_t C,
                       double *acc) {
  for (int64_t i = 0; i < 2 * C; i++) acc[i] = 0.0;
  for (int64_t n = 0; n < N; n++) {
    const double *pn = part + 2 * n * C;
    for (int64_t i = 0; i < 2 * C; i++) acc[i] += pn[i];
  }
}

/* Mean and biased variance of a channel from the sums s1, s2 of its values
 * shifted by k. */
static void reduce_moments(double s1, double s2, int64_t N, int64_t HW,
                           float k, double *mean, double *var) {
  double M = (double)(N * HW), d = s1 / M;
  double v = s2 / M - d * d;
  *mean = k + d;
  *var = v > 0.0 ? v : 0.0;
}

/* Stores the batch statistics of channel c and updates the running ones. */
static void store_stats(int64_t c, double mean, double var, int64_t M,
                        float momentum, float eps, float *running_mean,
                        float *running_var, float *save_mean,
                        float *save_invstd) {
  double mom = momentum;
  save_mean[c] = (float)mean;
  save_invstd[c] = (float)(1.0 / sqrt(var + eps));
  if (running_mean)
    running_mean[c] = (float)((1.0 - mom) * running_mean[c] + mom * mean);
  if (running_var) {
    double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : NAN;
    running_var[c] = (float)((1.0 - mom) * running_var[c] + mom * unbiased);
  }
}

/* nn_batchnorm_forward_train, followed by ReLU when relu is set. */
static void forward_train(nn_ctx *ctx, const float *x, int64_t N, int64_t C,
                          int64_t HW, const float *weight, const float *bias,
                          float *running_mean, float *running_var,
                          float momentum, float eps, float *y,
                          float *save_mean, float *save_invstd, int relu) {
  int64_t M = N * HW;
  if (M == 0) return;
  /* Three sweeps over contiguous planes (sums per plane, statistics per
   * channel, normalisation per plane) stream through memory; the planes of
   * one channel are C * HW apart and would thrash the cache's sets. */
  int nt = ctx->num_threads > 0 ? ctx->num_threads : 1;
  double *part = malloc((size_t)(2 * N * C + 2 * C * nt) * sizeof(double));
  float *coef = malloc((size_t)(3 * C * nt + C) * sizeof(float));
  if (!part || !coef) { /* per channel, needing no memory */
    free(part);
    free(coef);
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (N * C * HW >= PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
      double mean, var;
      channel_moments(x, N, C, HW, c, &mean, &var);
      store_stats(c, mean, var, M, momentum, eps, running_mean, running_var,
                  save_mean, save_invstd);
      normalize_channel(x, N, C, HW, c, save_mean[c], save_invstd[c],
                        weight ? weight[c] : 1.0f, bias ? bias[c] : 0.0f, y,
                        relu);
    }
    return;
  }
  /* One barrier only (barriers are slow on a busy machine): after the sums,
   * every thread reduces all channels itself, in the same order, into its
   * own coefficients; thread 0 stores the statistics.  The shifts are
   * copied first, since y may alias x. */
  float *shift = coef + 3 * C * nt;
  for (int64_t c = 0; c < C; c++) shift[c] = x[c * HW];
#pragma omp parallel num_threads(nt) if (N * C * HW >= PAR_MIN)
  {
#pragma omp for schedule(static)
    for (int64_t b = 0; b < N * C; b++) {
      double s1 = 0.0, s2 = 0.0;
      shifted_sums(x + b * HW, HW, shift[b % C], &s1, &s2);
      part[2 * b] = s1;
      part[2 * b + 1] = s2;
    }
    int tid = omp_get_thread_num();
    float *cf = coef + 3 * C * tid;
    double *acc = part + 2 * N * C + 2 * C * tid;
    sum_planes(part, N, C, acc);
    for (int64_t c = 0; c < C; c++) {
      double mean, var;
      reduce_moments(acc[2 * c], acc[2 * c + 1], N, HW, shift[c], &mean,
                     &var);
      if (tid == 0)
        store_stats(c, mean, var, M, momentum, eps, running_mean, running_var,
                    save_mean, save_invstd);
      float invstd = (float)(1.0 / sqrt(var + eps));
      float a = invstd * (weight ? weight[c] : 1.0f);
      cf[3 * c] = (float)mean;
      cf[3 * c + 1] = a;
      cf[3 * c + 2] = bias ? bias[c] : 0.0f;
    }
#pragma omp for schedule(static) nowait
    for (int64_t b = 0; b < N * C; b++) {
      int64_t c = b % C;
      output_plane(x + b * HW, y + b * HW, HW, cf[3 * c], cf[3 * c + 1],
                   cf[3 * c + 2], relu);
    }
  }
  free(part);
  free(coef);
}

void nn_batchnorm_forward_train(nn_ctx *ctx, const float *x, int64_t N,
                                int64_t C, int64_t HW, const float *weight,
                                const float *bias, float *running_mean,
                                float *running_var, float momentum, float eps,
                                float *y, float *save_mean,
                                float *save_invstd) {
  forward_train(ctx, x, N, C, HW, weight, bias, running_mean, running_var,
                momentum, eps, y, save_mean, save_invstd, 0);
}

/* The scale of channel c in eval mode: weight / sqrt(running_var + eps). */
static float eval_scale(const float *weight, const float *running_var,
                        float eps, int64_t c) {
  float invstd = (float)(1.0 / sqrt((double)running_var[c] + eps));
  return invstd * (weight ? weight[c] : 1.0f);
}

/* nn_batchnorm_forward_eval, followed by ReLU when relu is set. */
static void forward_eval(nn_ctx *ctx, const float *x, int64_t N, int64_t C,
                         int64_t HW, const float *weight, const float *bias,
                         const float *running_mean, const float *running_var,
                         float eps, float *y, int relu) {
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (N * C * HW >= PAR_MIN)
  for (int64_t b = 0; b < N * C; b++) {
    int64_t c = b % C;
    output_plane(x + b * HW, y + b * HW, HW, running_mean[c],
                 eval_scale(weight, running_var, eps, c),
                 bias ? bias[c] : 0.0f, relu);
  }
}

void nn_batchnorm_forward_eval(nn_ctx *ctx, const float *x, int64_t N,
                               int64_t C, int64_t HW, const float *weight,
                               const float *bias, const float *running_mean,
                               const float *running_var, float eps, float *y) {
  forward_eval(ctx, x, N, C, HW, weight, bias, running_mean, running_var, eps,
               y, 0);
}

/* gx = a * gy - b - q * (x - mean) over one plane, gy masked as in
 * grad_sums when masked is set. */
static inline void grad_plane(const float *x, const float *gy, float *gx,
                              int64_t n, float mean, float a, float b,
                              float q, int masked, float m, float ra,
                              float rb) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float g = masked ? relu_grad(x[i], gy[i], m, ra, rb) : gy[i];
    gx[i] = a * g - b - q * (x[i] - mean);
  }
}

/* Sums of plane b (channel c = b % C) into sg, sgx, gy masked when relu is
 * not NULL (see nn_batchnorm_backward_train). */
static inline void plane_sums(const float *x, const float *gy, int64_t b,
                              int64_t c, int64_t C, int64_t HW, float mean,
                              const float *relu, double *sg, double *sgx) {
  x += b * HW, gy += b * HW;
  if (relu)
    grad_sums(x, gy, HW, mean, 1, relu[c], relu[C + c], relu[2 * C + c], sg,
              sgx);
  else
    grad_sums(x, gy, HW, mean, 0, 0.0f, 0.0f, 0.0f, sg, sgx);
}

/* grad_plane of plane b (channel c = b % C), gy masked when relu is not
 * NULL. */
static inline void plane_grad(const float *x, const float *gy, float *gx,
                              int64_t b, int64_t c, int64_t C, int64_t HW,
                              float mean, float a, float bb, float q,
                              const float *relu) {
  x += b * HW, gy += b * HW, gx += b * HW;
  if (relu)
    grad_plane(x, gy, gx, HW, mean, a, bb, q, 1, relu[c], relu[C + c],
               relu[2 * C + c]);
  else
    grad_plane(x, gy, gx, HW, mean, a, bb, q, 0, 0.0f, 0.0f, 0.0f);
}

/* Per channel c: sum(gy) and sum(gy * (x - mean) * invstd), in double; gy
 * masked when relu is not NULL (plane_sums). */
static void channel_grad_sums(const float *x, const float *gy, int64_t N,
                              int64_t C, int64_t HW, int64_t c, float mean,
                              float invstd, const float *relu, double *sum_gy,
                              double *sum_gy_xhat) {
  double sg = 0.0, sgx = 0.0;
  for (int64_t n = 0; n < N; n++)
    plane_sums(x, gy, n * C + c, c, C, HW, mean, relu, &sg, &sgx);
  *sum_gy = sg;
  *sum_gy_xhat = sgx * invstd;
}

/* gx of channel c from its sums: k * (gy - mean(gy) - xhat *
 * mean(gy * xhat)) with xhat = (x - mean) * invstd, k = invstd * weight. */
static void channel_grad(const float *x, const float *gy, int64_t N, int64_t C,
                         int64_t HW, int64_t c, float mean, float invstd,
                         float w, double sg, double sgx, const float *relu,
                         float *gx) {
  int64_t M = N * HW;
  float k = invstd * w;
  float mg = (float)(sg / (double)M), mgx = (float)(sgx / (double)M);
  for (int64_t n = 0; n < N; n++)
    plane_grad(x, gy, gx, n * C + c, c, C, HW, mean, k, k * mg,
               k * invstd * mgx, relu);
}

void nn_batchnorm_backward_train(nn_ctx *ctx, const float *x, const float *gy,
                                 int64_t N, int64_t C, int64_t HW,
                                 const float *weight, const float *save_mean,
                                 const float *save_invstd, const float *relu,
                                 float *gx, float *gweight, float *gbias) {
  int64_t M = N * HW;
  if (M == 0) return;
  /* As the forward: sums per plane, then per channel (by every thread, one
   * barrier), then gx per plane. */
  int nt = ctx->num_threads > 0 ? ctx->num_threads : 1;
  double *part = malloc((size_t)(2 * N * C + 2 * C * nt) * sizeof(double));
  float *coef = malloc((size_t)(3 * C * nt) * sizeof(float));
  if (!part || !coef) {
    free(part);
    free(coef);
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (N * C * HW >= PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
      double sg, sgx;
      channel_grad_sums(x, gy, N, C, HW, c, save_mean[c], save_invstd[c], relu,
                        &sg, &sgx);
      if (gweight) gweight[c] += (float)sgx;
      if (gbias) gbias[c] += (float)sg;
      channel_grad(x, gy, N, C, HW, c, save_mean[c], save_invstd[c],
                   weight ? weight[c] : 1.0f, sg, sgx, relu, gx);
    }
    return;
  }
#pragma omp parallel num_threads(nt) if (N * C * HW >= PAR_MIN)
  {
#pragma omp for schedule(static)
    for (int64_t b = 0; b < N * C; b++) {
      double sg = 0.0, sgx = 0.0;
      int64_t c = b % C;
      plane_sums(x, gy, b, c, C, HW, save_mean[c], relu, &sg, &sgx);
      part[2 * b] = sg;
      part[2 * b + 1] = sgx;
    }
    int tid = omp_get_thread_num();
    float *cf = coef + 3 * C * tid;
    double *acc = part + 2 * N * C + 2 * C * tid;
    sum_planes(part, N, C, acc);
    for (int64_t c = 0; c < C; c++) {
      double sg = acc[2 * c], sgx = acc[2 * c + 1];
      float invstd = save_invstd[c];
      sgx *= invstd;
      if (tid == 0 && gweight) gweight[c] += (float)sgx;
      if (tid == 0 && gbias) gbias[c] += (float)sg;
      float k = invstd * (weight ? weight[c] : 1.0f);
      cf[3 * c] = k;
      cf[3 * c + 1] = k * (float)(sg / (double)M);
      cf[3 * c + 2] = k * invstd * (float)(sgx / (double)M);
    }
#pragma omp for schedule(static) nowait
    for (int64_t b = 0; b < N * C; b++) {
      int64_t c = b % C;
      plane_grad(x, gy, gx, b, c, C, HW, save_mean[c], cf[3 * c],
                 cf[3 * c + 1], cf[3 * c + 2], relu);
    }
  }
  free(part);
  free(coef);
}

void nn_batchnorm_backward_eval(nn_ctx *ctx, const float *x, const float *gy,
                                int64_t N, int64_t C, int64_t HW,
                                const float *weight, const float *running_mean,
                                const float *running_var, float eps,
                                float *gx, float *gweight, float *gbias) {
  if (N * HW == 0) return;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (N * C * HW >= PAR_MIN)
  for (int64_t c = 0; c < C; c++) {
    float mean = running_mean[c];
    float invstd = (float)(1.0 / sqrt((double)running_var[c] + eps));
    if (gweight || gbias) {
      double sg, sgx;
      channel_grad_sums(x, gy, N, C, HW, c, mean, invstd, NULL, &sg, &sgx);
      if (gweight) gweight[c] += (float)sgx;
      if (gbias) gbias[c] += (float)sg;
    }
    float k = invstd * (weight ? weight[c] : 1.0f);
    for (int64_t n = 0; n < N; n++) {
      int64_t o = (n * C + c) * HW;
      affine_plane(gy + o, gx + o, HW, 0.0f, k, 0.0f);
    }
  }
}

/* ---- The BatchNorm1d / BatchNorm2d layers ---- */

typedef struct bn_layer {
  nn_layer base;
  int64_t c;
  float eps, momentum;
  int spatial; /* 1: BatchNorm2d, 0: BatchNorm1d */
  /* Batch statistics of the last training forward, reused by backward. */
  float *save_mean, *save_invstd;
  /* Mode and input shape of the last forward (have_forward = 0 if none). */
  int have_forward, fwd_training, fwd_ndim;
  int64_t fwd_shape[NN_MAX_DIMS];
} bn_layer;

/* Checks x's shape and sees it as [N, C, HW]. */
static int bn_dims(const bn_layer *b, const nn_tensor *x, int64_t *N,
                   int64_t *HW, nn_error *err) {
  int ok = b->spatial ? x->ndim == 4 : (x->ndim == 2 || x->ndim == 3);
  if (!ok || x->shape[1] != b->c) {
    char xs[160];
    long long c = (long long)b->c;
    nn_tensor_shape_str(x, xs, sizeof xs);
    if (b->spatial)
      return nn_seterr(err, "expected input of shape [N, %lld, H, W], got %s",
                       c, xs);
    return nn_seterr(err,
                     "expected input of shape [N, %lld] or [N, %lld, L], got "
                     "%s",
                     c, c, xs);
  }
  *N = x->shape[0];
  *HW = 1;
  for (int i = 2; i < x->ndim; i++) *HW *= x->shape[i];
  return 0;
}

static int bn_check_batch(const nn_tensor *x, int64_t N, int64_t HW,
                          nn_error *err) {
  if (N * HW != 1) return 0;
  char xs[160];
  nn_tensor_shape_str(x, xs, sizeof xs);
  return nn_seterr(err,
                   "expected more than 1 value per channel when training, "
                   "got input of shape %s",
                   xs);
}

/* Borrowed pointers to the parameters and buffers, in constructor order. */
#define BN_WEIGHT(l) ((l)->params[0].t)
#define BN_BIAS(l) ((l)->params[1].t)
#define BN_RMEAN(l) ((l)->buffers[0].t)
#define BN_RVAR(l) ((l)->buffers[1].t)
#define BN_NBT(l) ((l)->buffers[2].t)

/* The per-channel mean, scale and shift of BatchNorm l's eval-mode forward
 * (forward_eval): y = (x - mean) * scale + shift. */
static void eval_coefficients(const nn_layer *l, float *mean, float *scale,
                              float *shift) {
  const bn_layer *b = (const bn_layer *)l;
  const float *w = nn_data(BN_WEIGHT(l)), *bias = nn_data(BN_BIAS(l));
  const float *rm = nn_data(BN_RMEAN(l)), *rv = nn_data(BN_RVAR(l));
  for (int64_t c = 0; c < b->c; c++) {
    mean[c] = rm[c];
    scale[c] = eval_scale(w, rv, b->eps, c);
    shift[c] = bias ? bias[c] : 0.0f;
  }
}

/* The forward, followed by ReLU when relu is set; when coef is not NULL,
 * *coef receives a new [3, C] tensor holding, per channel, the shift, scale
 * and bias the output was computed with (see nn_batchnorm_relu_forward). */
static int forward(nn_layer *l, nn_tensor *x, nn_tensor **y, int relu,
                   nn_tensor **coef, nn_error *err) {
  bn_layer *b = (bn_layer *)l;
  int64_t N, HW;
  if (bn_dims(b, x, &N, &HW, err)) return -1;
  if (l->training && bn_check_batch(x, N, HW, err)) return -1;
  nn_tensor *k = coef ? nn_tensor_new2(3, b->c, err) : NULL;
  if (coef && !k) return -1;
  nn_tensor *out = nn_layer_output(l, x->ndim, x->shape, err);
  if (!out) {
    nn_tensor_release(k);
    return -1;
  }
  const float *w = nn_data(BN_WEIGHT(l)), *bias = nn_data(BN_BIAS(l));
  float *rm = nn_data(BN_RMEAN(l)), *rv = nn_data(BN_RVAR(l));
  if (l->training) {
    forward_train(l->ctx, nn_data(x), N, b->c, HW, w, bias, rm, rv,
                  b->momentum, b->eps, nn_data(out), b->save_mean,
                  b->save_invstd, relu);
    nn_data(BN_NBT(l))[0] += 1.0f;
  } else {
    forward_eval(l->ctx, nn_data(x), N, b->c, HW, w, bias, rm, rv, b->eps,
                 nn_data(out), relu);
  }
  if (k) { /* the coefficients each mode's kernel used */
    float *kd = nn_data(k);
    if (l->training)
      for (int64_t c = 0; c < b->c; c++) {
        kd[c] = b->save_mean[c];
        kd[b->c + c] = b->save_invstd[c] * w[c];
        kd[2 * b->c + c] = bias[c];
      }
    else
      eval_coefficients(l, kd, kd + b->c, kd + 2 * b->c);
    *coef = k;
  }
  b->have_forward = 1;
  b->fwd_training = l->training;
  b->fwd_ndim = x->ndim;
  for (int i = 0; i < x->ndim; i++) b->fwd_shape[i] = x->shape[i];
  *y = out;
  return 0;
}

static int bn_forward(nn_layer *l, nn_tensor *x, nn_tensor **y,
                      nn_error *err) {
  return forward(l, x, y, 0, NULL, err);
}

/* gy masked by a ReLU after the layer whose input was computed with the
 * per-channel coefficients k ([3, C]: m, a, b; see nn_affine_relu): a new
 * tensor, or NULL with err. */
static nn_tensor *relu_masked(nn_ctx *ctx, const nn_tensor *x,
                              const nn_tensor *gy, const float *k, int64_t N,
                              int64_t C, int64_t HW, nn_error *err) {
  nn_tensor *t = nn_tensor_empty(gy->ndim, gy->shape, err);
  if (!t) return NULL;
  const float *xd = nn_data(x), *gd = nn_data(gy);
  float *td = nn_data(t);
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (N * C * HW >= PAR_MIN)
  for (int64_t p = 0; p < N * C; p++) {
    int64_t c = p % C;
    const float *xp = xd + p * HW, *gp = gd + p * HW;
    float *tp = td + p * HW;
    float m = k[c], a = k[C + c], b = k[2 * C + c];
#pragma omp simd
    for (int64_t i = 0; i < HW; i++) tp[i] = relu_grad(xp[i], gp[i], m, a, b);
  }
  return t;
}

/* Follows the mode of the last forward of this input shape (train: through
 * the batch statistics saved by it), else the current mode, recomputing the
 * batch statistics from x when needed.  With relu ([3, C], not NULL) gy is
 * the gradient of a following ReLU's output, masked here (see
 * nn_batchnorm_relu_backward). */
static int backward(nn_layer *l, nn_tensor *x, nn_tensor *gy,
                    const float *relu, nn_tensor **gx, nn_error *err) {
  bn_layer *b = (bn_layer *)l;
  int64_t N, HW;
  if (bn_dims(b, x, &N, &HW, err)) return -1;
  if (!nn_tensor_same_shape(gy, x)) {
    char xs[160], gs[160];
    nn_tensor_shape_str(x, xs, sizeof xs);
    nn_tensor_shape_str(gy, gs, sizeof gs);
    return nn_seterr(err, "expected grad_output of shape %s, got %s", xs, gs);
  }
  int same = b->have_forward &&
             nn_tensor_has_shape(x, b->fwd_ndim, b->fwd_shape);
  int training = same ? b->fwd_training : l->training;
  if (training && bn_check_batch(x, N, HW, err)) return -1;
  nn_tensor *g = nn_layer_grad_input(l, x->ndim, x->shape, err);
  if (!g) return -1;
  nn_tensor *w = BN_WEIGHT(l), *bias = BN_BIAS(l);
  float *gw = w->requires_grad ? nn_data(w->grad) : NULL;
  float *gb = bias->requires_grad ? nn_data(bias->grad) : NULL;
  if (training) {
    if (!same)
      nn_batchnorm_stats(l->ctx, nn_data(x), N, b->c, HW, b->eps, b->save_mean,
                         b->save_invstd);
    nn_batchnorm_backward_train(l->ctx, nn_data(x), nn_data(gy), N, b->c, HW,
                                nn_data(w), b->save_mean, b->save_invstd, relu,
                                nn_data(g), gw, gb);
  } else {
    /* rare (a training forward's recipe, then eval statistics): the mask
     * in a pass of its own */
    nn_tensor *gm = relu ? relu_masked(l->ctx, x, gy, relu, N, b->c, HW, err)
                         : nn_tensor_retain(gy);
    if (!gm) {
      nn_tensor_release(g);
      return -1;
    }
    nn_batchnorm_backward_eval(l->ctx, nn_data(x), nn_data(gm), N, b->c, HW,
                               nn_data(w), nn_data(BN_RMEAN(l)),
                               nn_data(BN_RVAR(l)), b->eps, nn_data(g), gw,
                               gb);
    nn_tensor_release(gm);
  }
  *gx = g;
  return 0;
}

static int bn_backward(nn_layer *l, nn_tensor *x, nn_tensor *gy,
                       nn_tensor **gx, nn_error *err) {
  return backward(l, x, gy, NULL, gx, err);
}

static void bn_extra_repr(const nn_layer *l, char *buf, size_t n) {
  const bn_layer *b = (const bn_layer *)l;
  char eps[48], mom[48];
  nn_float_repr(b->eps, eps, sizeof eps);
  nn_float_repr(b->momentum, mom, sizeof mom);
  snprintf(buf, n,
           "%lld, eps=%s, momentum=%s, affine=True, track_running_stats=True",
           (long long)b->c, eps, mom);
}

static void bn_destroy(nn_layer *l) {
  bn_layer *b = (bn_layer *)l;
  free(b->save_mean);
  free(b->save_invstd);
}

static const nn_layer_ops BN1D_OPS = {"BatchNorm1d", bn_forward, bn_backward,
                                      bn_extra_repr, bn_destroy};
static const nn_layer_ops BN2D_OPS = {"BatchNorm2d", bn_forward, bn_backward,
                                      bn_extra_repr, bn_destroy};

nn_layer *nn_batchnorm_new(nn_ctx *ctx, int64_t c, float eps, float momentum,
                           int spatial, nn_error *err) {
  if (c < 1) {
    nn_seterr(err, "num_features must be positive, got %lld", (long long)c);
    return NULL;
  }
  bn_layer *b = calloc(1, sizeof *b);
  if (!b) {
    nn_seterr(err, "out of memory allocating a layer");
    return NULL;
  }
  nn_layer *l = &b->base;
  nn_layer_init(l, spatial ? &BN2D_OPS : &BN1D_OPS, ctx);
  b->c = c;
  b->eps = eps;
  b->momentum = momentum;
  b->spatial = spatial != 0;
  b->save_mean = calloc((size_t)c, sizeof(float));
  b->save_invstd = calloc((size_t)c, sizeof(float));
  if (!b->save_mean || !b->save_invstd) {
    nn_seterr(err, "out of memory allocating a layer");
    goto fail;
  }
  nn_tensor *w = nn_tensor_new1(c, err);
  if (!w) goto fail;
  nn_tensor_fill_(w, 1.0f);
  if (nn_layer_add_param(l, "weight", w, err)) goto fail;
  nn_tensor *bias = nn_tensor_new1(c, err);
  if (!bias || nn_layer_add_param(l, "bias", bias, err)) goto fail;
  nn_tensor *rm = nn_tensor_new1(c, err);
  if (!rm) goto fail;
  nn_layer_add_buffer(l, "running_mean", rm);
  nn_tensor *rv = nn_tensor_new1(c, err);
  if (!rv) goto fail;
  nn_tensor_fill_(rv, 1.0f);
  nn_layer_add_buffer(l, "running_var", rv);
  nn_tensor *nbt = nn_tensor_new(0, NULL, err);
  if (!nbt) goto fail;
  nn_layer_add_buffer(l, "num_batches_tracked", nbt);
  return l;
fail:
  nn_layer_free(l);
  return NULL;
}

/* ---- BatchNorm followed by ReLU, for containers (see layer.h) ---- */

static int is_batchnorm(const nn_layer *l, nn_error *err) {
  if (l->ops == &BN1D_OPS || l->ops == &BN2D_OPS) return 1;
  nn_seterr(err, "expected a BatchNorm1d or BatchNorm2d layer, got %s",
            l->ops->type);
  return 0;
}

int nn_batchnorm_relu_forward(nn_layer *l, nn_tensor *x, nn_tensor **y,
                              nn_tensor **coef, nn_error *err) {
  *y = NULL;
  *coef = NULL;
  if (!is_batchnorm(l, err)) return -1;
  if (!nn_tensor_is_contiguous(x))
    return nn_seterr(err, "input must be contiguous");
  return forward(l, x, y, 1, coef, err);
}

int nn_batchnorm_eval_coefficients(const nn_layer *l, int64_t c, float *mean,
                                   float *scale, float *shift) {
  if (l->ops != &BN2D_OPS || l->training || ((const bn_layer *)l)->c != c)
    return 0;
  eval_coefficients(l, mean, scale, shift);
  return 1;
}

/* Checks that coef is forward_relu's [3, C] for layer b. */
static int check_coef(const bn_layer *b, const nn_tensor *coef,
                      nn_error *err) {
  if (nn_tensor_is_contiguous(coef) && coef->ndim == 2 &&
      coef->shape[0] == 3 && coef->shape[1] == b->c)
    return 0;
  char cs[160];
  nn_tensor_shape_str(coef, cs, sizeof cs);
  return nn_seterr(err, "expected coefficients of shape [3, %lld], got %s",
                   (long long)b->c, cs);
}

int nn_batchnorm_relu_backward(nn_layer *l, nn_tensor *x,
                               const nn_tensor *coef, nn_tensor *gy,
                               nn_tensor **gx, nn_error *err) {
  *gx = NULL;
  if (!is_batchnorm(l, err)) return -1;
  if (check_coef((bn_layer *)l, coef, err)) return -1;
  if (!nn_tensor_is_contiguous(x) || !nn_tensor_is_contiguous(gy))
    return nn_seterr(err, "input and grad_output must be contiguous");
  return backward(l, x, gy, nn_data(coef), gx, err);
}

int nn_batchnorm_relu_recompute(nn_layer *l, nn_tensor *x,
                                const nn_tensor *coef, nn_tensor **y,
                                nn_error *err) {
  *y = NULL;
  if (!is_batchnorm(l, err)) return -1;
  bn_layer *b = (bn_layer *)l;
  int64_t N, HW, C = b->c;
  if (bn_dims(b, x, &N, &HW, err)) return -1;
  if (!nn_tensor_is_contiguous(x))
    return nn_seterr(err, "input must be contiguous");
  if (check_coef(b, coef, err)) return -1;
  nn_tensor *out = nn_layer_output(l, x->ndim, x->shape, err);
  if (!out) return -1;
  const float *k = nn_data(coef), *xd = nn_data(x);
  float *yd = nn_data(out);
#pragma omp parallel for num_threads(l->ctx->num_threads) schedule(static) \
    if (N * C * HW >= PAR_MIN)
  for (int64_t p = 0; p < N * C; p++) {
    int64_t c = p % C;
    nn_affine_relu(xd + p * HW, yd + p * HW, HW, k[c], k[C + c],
                      k[2 * C + c]);
  }
  *y = out;
  return 0;
}
