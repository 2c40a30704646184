/*
 * norm.h - batch-normalisation kernels (the layer is nn_batchnorm_new in
 * layer.h).
 *
 * Every kernel sees its input as x [N, C, HW] (contiguous, row-major): C
 * channels, each with N * HW values (HW = H * W for BatchNorm2d, L for
 * BatchNorm1d on [N, C, L], 1 on [N, C]).  Per-channel vectors have C
 * elements.  weight and bias may be NULL (meaning 1 and 0).  All arrays are
 * owned by the caller.  Statistics are accumulated in double, each channel
 * by one thread in a fixed order, so results are bit-identical whatever
 * ctx->num_threads is.  With N * HW == 0 the kernels write nothing.
 */
#ifndef NN_NORM_H
#define NN_NORM_H

#include <stdint.h>

#include "context.h"

/* y = relu((x - m) * a + b) over n floats (y may be x): one channel of an
 * eval-mode or normalising BatchNorm followed by ReLU, with ReLU's formula
 * (v > 0 ? v : 0, so NaN and -0 give 0 as there).  The one definition
 * behind the fused BatchNorm+ReLU passes and the convolution epilogue
 * (conv.h), so that they agree bit for bit; inline because the epilogue
 * runs it on rows of 2-32 floats. */
static inline void nn_affine_relu(const float *x, float *y, int64_t n,
                                  float m, float a, float b) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float v = (x[i] - m) * a + b;
    y[i] = v > 0.0f ? v : 0.0f;
  }
}

/* Batch statistics of x: per channel, mean and 1 / sqrt(biased var + eps),
 * written to save_mean and save_invstd. */
void nn_batchnorm_stats(nn_ctx *ctx, const float *x, int64_t N, int64_t C,
                        int64_t HW, float eps, float *save_mean,
                        float *save_invstd);

/* Training forward: y = (x - mean) * invstd * weight + bias with the batch
 * statistics, which are also written to save_mean / save_invstd.  Unless
 * running_mean / running_var are NULL they are updated in place:
 * r = (1 - momentum) * r + momentum * s, with the unbiased variance
 * (N * HW / (N * HW - 1)) for running_var; N * HW must then be > 1 (the
 * caller checks).  y may alias x. */
void nn_batchnorm_forward_train(nn_ctx *ctx, const float *x, int64_t N,
                                int64_t C, int64_t HW, const float *weight,
                                const float *bias, float *running_mean,
                                float *running_var, float momentum, float eps,
                                float *y, float *save_mean,
                                float *save_invstd);

/* Eval forward: y = (x - running_mean) / sqrt(running_var + eps) * weight +
 * bias.  y may alias x. */
void nn_batchnorm_forward_eval(nn_ctx *ctx, const float *x, int64_t N,
                               int64_t C, int64_t HW, const float *weight,
                               const float *bias, const float *running_mean,
                               const float *running_var, float eps, float *y);

/* Training backward, through the batch mean and variance: with
 * xhat = (x - mean) * invstd and M = N * HW,
 *   gx = weight * invstd * (gy - sum(gy) / M - xhat * sum(gy * xhat) / M).
 * save_mean / save_invstd are the statistics of this x (from the forward or
 * nn_batchnorm_stats).  gweight += sum(gy * xhat) and gbias += sum(gy) per
 * channel unless NULL.  gx may alias gy.  With relu not NULL ([3, C]: per
 * channel the m, a, b a following ReLU's input was computed with, as by
 * nn_affine_relu), gy is the gradient of that ReLU's output: it is taken
 * as 0 where (x - m) * a + b > 0 fails, which is the ReLU's backward, bit
 * for bit, without a pass of its own. */
void nn_batchnorm_backward_train(nn_ctx *ctx, const float *x, const float *gy,
                                 int64_t N, int64_t C, int64_t HW,
                                 const float *weight, const float *save_mean,
                                 const float *save_invstd, const float *relu,
                                 float *gx, float *gweight, float *gbias);

/* Eval backward, through the affine map with the running statistics:
 * gx = gy * weight / sqrt(running_var + eps); gweight += sum(gy * xhat),
 * gbias += sum(gy) unless NULL.  gx may alias gy. */
void nn_batchnorm_backward_eval(nn_ctx *ctx, const float *x, const float *gy,
                                int64_t N, int64_t C, int64_t HW,
                                const float *weight, const float *running_mean,
                                const float *running_var, float eps,
                                float *gx, float *gweight, float *gbias);

#endif
