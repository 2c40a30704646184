/*
 * optim.h - one optimizer step on one parameter, with torch.optim's formulas.
 *
 * Each function updates n floats of p in place from the gradient g, using
 * state buffers that the caller owns and keeps between steps (zero-filled
 * before the first step unless said otherwise).  `step` is the 1-based count
 * of steps taken on this parameter, including this one.  The loops run in
 * parallel over elements under ctx's threads; results do not depend on the
 * thread count.  None of them can fail.
 */
#ifndef NN_OPTIM_H
#define NN_OPTIM_H

#include <stdint.h>

#include "context.h"

typedef struct nn_sgd_opts {
  float lr, momentum, dampening, weight_decay;
  int nesterov;
} nn_sgd_opts;

/* buf: momentum buffer (used only when momentum != 0).  At step 1 it is set
 * to the (decayed) gradient, as torch does, without dampening. */
void nn_sgd_step(nn_ctx *ctx, float *p, const float *g, float *buf, int64_t n,
                 const nn_sgd_opts *o, int64_t step);

typedef struct nn_adagrad_opts {
  float lr, lr_decay, weight_decay, eps;
} nn_adagrad_opts;

/* sum: accumulated squared gradients (initial_accumulator_value, 0). */
void nn_adagrad_step(nn_ctx *ctx, float *p, const float *g, float *sum,
                     int64_t n, const nn_adagrad_opts *o, int64_t step);

typedef struct nn_rmsprop_opts {
  float lr, alpha, eps, weight_decay, momentum;
  int centered;
} nn_rmsprop_opts;

/* square_avg always; grad_avg when centered; buf when momentum > 0. */
void nn_rmsprop_step(nn_ctx *ctx, float *p, const float *g, float *square_avg,
                     float *grad_avg, float *buf, int64_t n,
                     const nn_rmsprop_opts *o, int64_t step);

typedef struct nn_adam_opts {
  float lr, beta1, beta2, eps, weight_decay;
  int amsgrad;
  int decoupled; /* 1: AdamW (p *= 1 - lr*wd before the update) */
} nn_adam_opts;

/* exp_avg, exp_avg_sq always; max_exp_avg_sq when amsgrad. */
void nn_adam_step(nn_ctx *ctx, float *p, const float *g, float *exp_avg,
                  float *exp_avg_sq, float *max_exp_avg_sq, int64_t n,
                  const nn_adam_opts *o, int64_t step);

#endif
