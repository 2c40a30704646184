/*
 * activation.h - kernels of the activations, (log-)softmax and dropout.
 *
 * Every kernel is stateless: it reads x (and gy) and writes y (or gx), all
 * contiguous float arrays of n elements owned by the caller; y may alias x
 * for the elementwise forward kernels and gx may alias gy for the elementwise
 * backward kernels.  Backward kernels take the forward INPUT x and recompute
 * whatever they need from it, so nothing has to be kept between the calls.
 * Loops run on ctx->num_threads threads; every element is computed by the
 * same code whatever the thread count, so results are bit-identical between
 * 1 and N threads.  The layers themselves are built by nn_activation_new,
 * nn_dropout_new and nn_flatten_new (layer.h).
 */
#ifndef NN_ACTIVATION_H
#define NN_ACTIVATION_H

#include <stddef.h>
#include <stdint.h>

#include "context.h"

/* ReLU: y = max(x, 0); gx = gy where x > 0, else 0 (0 at x == 0, as
 * PyTorch). */
void nn_relu_forward(nn_ctx *ctx, const float *x, float *y, int64_t n);
void nn_relu_backward(nn_ctx *ctx, const float *x, const float *gy, float *gx,
                      int64_t n);

/* LeakyReLU: y = x > 0 ? x : slope * x; gx = gy or slope * gy. */
void nn_leaky_relu_forward(nn_ctx *ctx, const float *x, float *y, int64_t n,
                           float slope);
void nn_leaky_relu_backward(nn_ctx *ctx, const float *x, const float *gy,
                            float *gx, int64_t n, float slope);

/* Sigmoid: y = 1 / (1 + exp(-x)); gx = gy * y * (1 - y). */
void nn_sigmoid_forward(nn_ctx *ctx, const float *x, float *y, int64_t n);
void nn_sigmoid_backward(nn_ctx *ctx, const float *x, const float *gy,
                         float *gx, int64_t n);

/* Tanh: y = tanh(x); gx = gy * (1 - y^2). */
void nn_tanh_forward(nn_ctx *ctx, const float *x, float *y, int64_t n);
void nn_tanh_backward(nn_ctx *ctx, const float *x, const float *gy, float *gx,
                      int64_t n);

/* ELU: y = x > 0 ? x : alpha * (exp(x) - 1); gx = gy or gy * alpha * exp(x). */
void nn_elu_forward(nn_ctx *ctx, const float *x, float *y, int64_t n,
                    float alpha);
void nn_elu_backward(nn_ctx *ctx, const float *x, const float *gy, float *gx,
                     int64_t n, float alpha);

/* GELU, exact form: y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2));
 * gx = gy * (Phi(x) + x * phi(x)) with phi the standard normal density. */
void nn_gelu_forward(nn_ctx *ctx, const float *x, float *y, int64_t n);
void nn_gelu_backward(nn_ctx *ctx, const float *x, const float *gy, float *gx,
                      int64_t n);

/* Softmax over the last dimension of x seen as [rows, cols] (row-major):
 * y = exp(x - max) / sum(exp(x - max)) per row.  Backward: gx = y * (gy -
 * sum(gy * y)) per row, with y recomputed from x.  y must not alias x in the
 * backward (gx may not alias x or gy). */
void nn_softmax_forward(nn_ctx *ctx, const float *x, float *y, int64_t rows,
                        int64_t cols);
void nn_softmax_backward(nn_ctx *ctx, const float *x, const float *gy,
                         float *gx, int64_t rows, int64_t cols);

/* LogSoftmax over the last dimension: y = x - max - log(sum(exp(x - max))).
 * Backward: gx = gy - softmax(x) * sum(gy) per row.  gx may not alias x or
 * gy. */
void nn_log_softmax_forward(nn_ctx *ctx, const float *x, float *y,
                            int64_t rows, int64_t cols);
void nn_log_softmax_backward(nn_ctx *ctx, const float *x, const float *gy,
                             float *gx, int64_t rows, int64_t cols);

/* Inverted dropout with the mask named by key (one nn_rng_key per forward):
 * element i is kept iff nn_rng_uniform(key, i) >= p, and kept elements are
 * scaled by 1 / (1 - p); p == 1 drops everything.  The backward applies the
 * same mask and scale to gy.  p must be in [0, 1] (the caller checks).  y may
 * alias x and gx may alias gy. */
void nn_dropout_forward(nn_ctx *ctx, const float *x, float *y, int64_t n,
                        float p, uint64_t key);
void nn_dropout_backward(nn_ctx *ctx, const float *gy, float *gx, int64_t n,
                         float p, uint64_t key);

/* Writes v as Python's repr of a float would print it ("0.1", "1e-05",
 * "1.0"), using the shortest decimal that reads back as the same float.
 * Used by extra_repr of layers with float options. */
void nn_float_repr(float v, char *buf, size_t n);

#endif
