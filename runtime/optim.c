/*
 * optim.c - optimizer steps following torch.optim's single-tensor (for-loop)
 * implementations.
 *
 * The tensors are float32 and PyTorch's scalar hyper-parameters are doubles
 * that its kernels round to float, so each scalar coefficient is computed in
 * double (as Python does) and rounded once, and the per-element arithmetic is
 * float32 in PyTorch's order of operations (e.g. addcdiv is
 * p + (value * t1) / t2).  Every update is elementwise, so the result does not
 * depend on the thread count.
 */
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Arrays shorter than this are updated on one thread. */
#define PAR_MIN 65536

/*
 * The hyper-parameters arrive as floats, but users write them as decimals
 * (alpha = 0.99) that torch keeps as doubles, and coefficients such as
 * 1 - alpha then differ by up to 1e-5 relative (1 - 0.999f vs 1 - 0.999).
 * This returns the shortest decimal that rounds to f, as a double: the value
 * the user wrote whenever it had at most 9 significant digits.
 */
static double hyper(float f) {
  char buf[32];
  for (int digits = 1; digits < 9; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
    double d = strtod(buf, NULL);
    if ((float)d == f) return d;
  }
  return (double)f;
}

void nn_sgd_step(nn_ctx *ctx, float *p, const float *g, float *buf, int64_t n,
                 const nn_sgd_opts *o, int64_t step) {
  const float wd = o->weight_decay, mom = o->momentum;
  const float one_minus_damp = (float)(1.0 - hyper(o->dampening));
  const float neg_lr = -o->lr;
  const int first = step <= 1, nesterov = o->nesterov;
#pragma omp parallel for num_threads(ctx->num_threads) \
    schedule(static) if (n > PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float d = g[i];
    if (wd != 0.0f) d = d + wd * p[i];
    if (mom != 0.0f) {
      float b = first ? d : buf[i] * mom + one_minus_damp * d;
      buf[i] = b;
      d = nesterov ? d + mom * b : b;
    }
    p[i] = p[i] + neg_lr * d;
  }
}

void nn_adagrad_step(nn_ctx *ctx, float *p, const float *g, float *sum,
                     int64_t n, const nn_adagrad_opts *o, int64_t step) {
  const float wd = o->weight_decay, eps = o->eps;
  const double clr =
      hyper(o->lr) / (1.0 + (double)(step - 1) * hyper(o->lr_decay));
  const float neg_clr = (float)-clr;
#pragma omp parallel for num_threads(ctx->num_threads) \
    schedule(static) if (n > PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    if (wd != 0.0f) gi = gi + wd * p[i];
    float s = sum[i] + gi * gi;
    sum[i] = s;
    float std = sqrtf(s) + eps;
    p[i] = p[i] + neg_clr * gi / std;
  }
}

void nn_rmsprop_step(nn_ctx *ctx, float *p, const float *g, float *square_avg,
                     float *grad_avg, float *buf, int64_t n,
                     const nn_rmsprop_opts *o, int64_t step) {
  const float wd = o->weight_decay, alpha = o->alpha, eps = o->eps;
  const float one_minus_alpha = (float)(1.0 - hyper(o->alpha));
  const float mom = o->momentum, neg_lr = -o->lr;
  const int centered = o->centered;
  (void)step;
#pragma omp parallel for num_threads(ctx->num_threads) \
    schedule(static) if (n > PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    if (wd != 0.0f) gi = gi + wd * p[i];
    float sa = square_avg[i] * alpha;
    sa = sa + one_minus_alpha * gi * gi;
    square_avg[i] = sa;
    float avg;
    if (centered) {
      float ga = grad_avg[i] * alpha;
      ga = ga + one_minus_alpha * gi;
      grad_avg[i] = ga;
      avg = sqrtf(sa - ga * ga) + eps;
    } else {
      avg = sqrtf(sa) + eps;
    }
    if (mom > 0.0f) {
      float b = buf[i] * mom;
      b = b + gi / avg;
      buf[i] = b;
      p[i] = p[i] + neg_lr * b;
    } else {
      p[i] = p[i] + neg_lr * gi / avg;
    }
  }
}

void nn_adam_step(nn_ctx *ctx, float *p, const float *g, float *exp_avg,
                  float *exp_avg_sq, float *max_exp_avg_sq, int64_t n,
                  const nn_adam_opts *o, int64_t step) {
  const double lr = hyper(o->lr);
  const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
  const double beta1 = hyper(o->beta1), beta2 = hyper(o->beta2);
  const float one_minus_b1 = (float)(1.0 - beta1);
  const float one_minus_b2 = (float)(1.0 - beta2);
  const int decoupled = o->decoupled, amsgrad = o->amsgrad;
  const float wd = decoupled ? 0.0f : o->weight_decay;
  const float decay = (float)(1.0 - lr * hyper(o->weight_decay));
  const double bc1 = 1.0 - pow(beta1, (double)step);
  const double bc2 = 1.0 - pow(beta2, (double)step);
  const float neg_step_size = (float)(-(lr / bc1));
  const float bc2_sqrt = (float)sqrt(bc2);
#pragma omp parallel for num_threads(ctx->num_threads) \
    schedule(static) if (n > PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float pi = p[i], gi = g[i];
    if (decoupled) pi = pi * decay;
    if (wd != 0.0f) gi = gi + wd * pi;
    float m = exp_avg[i] * b1;
    m = m + one_minus_b1 * gi;
    exp_avg[i] = m;
    float v = exp_avg_sq[i] * b2;
    v = v + one_minus_b2 * gi * gi;
    exp_avg_sq[i] = v;
    if (amsgrad) {
      if (!(max_exp_avg_sq[i] >= v)) max_exp_avg_sq[i] = v;
      v = max_exp_avg_sq[i];
    }
    float denom = sqrtf(v) / bc2_sqrt + eps;
    p[i] = pi + neg_step_size * m / denom;
  }
}
