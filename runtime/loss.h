/*
 * loss.h - loss functions with PyTorch's definitions (torch.nn.functional).
 *
 * Inputs are borrowed, contiguous tensors.  Class targets are int32 arrays of
 * 0-based class indices (the Lua binding converts from 1-based labels).
 * Forward writes an owned tensor to *out: a scalar (ndim 0) for "mean" and
 * "sum", the per-element (or per-sample) losses for "none".  Backward writes
 * the owned gradient with respect to input to *gin; gout is the gradient of
 * the output: NULL means 1 for "mean"/"sum" and all ones for "none".
 * Every function returns 0, or -1 with a message naming the bad shape or the
 * position of a bad target.
 */
#ifndef NN_LOSS_H
#define NN_LOSS_H

#include <limits.h>

#include "context.h"
#include "tensor.h"

typedef enum nn_reduction {
  NN_REDUCTION_MEAN,
  NN_REDUCTION_SUM,
  NN_REDUCTION_NONE
} nn_reduction;

#define NN_NO_IGNORE INT32_MIN

/* Options of CrossEntropyLoss and NLLLoss. */
typedef struct nn_class_loss_opts {
  const nn_tensor *weight; /* [C] class weights, or NULL */
  float label_smoothing;   /* CrossEntropy only, in [0, 1] */
  nn_reduction reduction;
  int32_t ignore_index; /* 0-based class to ignore, or NN_NO_IGNORE */
} nn_class_loss_opts;

/* Cross entropy of logits input [N, C] against class indices target[N]
 * (log_softmax + NLL, with weights and label smoothing exactly as
 * torch.nn.functional.cross_entropy).  With reduction "mean" and weights,
 * the sum is divided by the total weight of the (non-ignored) targets. */
int nn_cross_entropy_forward(nn_ctx *ctx, const nn_tensor *input,
                             const int32_t *target,
                             const nn_class_loss_opts *o, nn_tensor **out,
                             nn_error *err);
int nn_cross_entropy_backward(nn_ctx *ctx, const nn_tensor *input,
                              const int32_t *target,
                              const nn_class_loss_opts *o,
                              const nn_tensor *gout, nn_tensor **gin,
                              nn_error *err);
/* Cross entropy against class probabilities target [N, C] (soft labels). */
int nn_cross_entropy_prob_forward(nn_ctx *ctx, const nn_tensor *input,
                                  const nn_tensor *target,
                                  const nn_class_loss_opts *o, nn_tensor **out,
                                  nn_error *err);
int nn_cross_entropy_prob_backward(nn_ctx *ctx, const nn_tensor *input,
                                   const nn_tensor *target,
                                   const nn_class_loss_opts *o,
                                   const nn_tensor *gout, nn_tensor **gin,
                                   nn_error *err);
/* Negative log likelihood of log-probabilities input [N, C]. */
int nn_nll_forward(nn_ctx *ctx, const nn_tensor *input, const int32_t *target,
                   const nn_class_loss_opts *o, nn_tensor **out,
                   nn_error *err);
int nn_nll_backward(nn_ctx *ctx, const nn_tensor *input, const int32_t *target,
                    const nn_class_loss_opts *o, const nn_tensor *gout,
                    nn_tensor **gin, nn_error *err);

/* Elementwise losses: input and target of the same shape. */
typedef enum nn_pointwise_loss {
  NN_LOSS_MSE,              /* (x - y)^2 */
  NN_LOSS_L1,               /* |x - y|, gradient sign(x - y) (0 at 0) */
  NN_LOSS_BCE,              /* -(y log x + (1-y) log(1-x)), logs clamped
                               at -100 as PyTorch; x must be in [0, 1] */
  NN_LOSS_BCE_WITH_LOGITS   /* stable: max(x,0) - x*y + log(1+exp(-|x|)) */
} nn_pointwise_loss;

/* weight: optional per-element rescaling of the same shape (BCE kinds), or
 * NULL. */
int nn_pointwise_loss_forward(nn_ctx *ctx, nn_pointwise_loss kind,
                              const nn_tensor *input, const nn_tensor *target,
                              const nn_tensor *weight, nn_reduction reduction,
                              nn_tensor **out, nn_error *err);
int nn_pointwise_loss_backward(nn_ctx *ctx, nn_pointwise_loss kind,
                               const nn_tensor *input, const nn_tensor *target,
                               const nn_tensor *weight, nn_reduction reduction,
                               const nn_tensor *gout, nn_tensor **gin,
                               nn_error *err);

#endif
