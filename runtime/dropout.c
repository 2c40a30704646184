/* dropout.c - inverted dropout: kernels and the Dropout layer. */
#include <stdio.h>
#include <stdlib.h>

#include "activation.h"
#include "layer.h"

#define PAR_MIN 16384

void nn_dropout_forward(nn_ctx *ctx, const float *x, float *y, int64_t n,
                        float p, uint64_t key) {
  float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    /* indexed rather than branched on: the mask is random, so a branch
     * would mispredict half the time */
    float pick[2] = {0.0f, x[i] * scale};
    y[i] = pick[nn_rng_uniform(key, (uint64_t)i) >= p];
  }
}

void nn_dropout_backward(nn_ctx *ctx, const float *gy, float *gx, int64_t n,
                         float p, uint64_t key) {
  /* The same rule as the forward: gradient flows where the input was kept. */
  nn_dropout_forward(ctx, gy, gx, n, p, key);
}

typedef struct dropout_layer {
  nn_layer base;
  float p;
  /* What the last forward did, for the backward. */
  int have_forward;
  int fwd_training;
  uint64_t key;
  int fwd_ndim;
  int64_t fwd_shape[NN_MAX_DIMS];
} dropout_layer;

static int dropout_forward(nn_layer *l, nn_tensor *x, nn_tensor **y,
                           nn_error *err) {
  dropout_layer *d = (dropout_layer *)l;
  nn_tensor *out = nn_layer_output(l, x->ndim, x->shape, err);
  if (!out) return -1;
  int64_t n = nn_tensor_numel(x);
  d->have_forward = 1;
  d->fwd_training = l->training;
  d->fwd_ndim = x->ndim;
  for (int i = 0; i < x->ndim; i++) d->fwd_shape[i] = x->shape[i];
  if (l->training) {
    d->key = nn_rng_key(&l->ctx->rng);
    nn_dropout_forward(l->ctx, nn_data(x), nn_data(out), n, d->p, d->key);
  } else if (nn_tensor_copy_(out, x, err)) {
    nn_tensor_release(out);
    return -1;
  }
  *y = out;
  return 0;
}

/* Uses the mask of the last forward (its key), so backward must follow the
 * forward of the same input; an eval-mode forward makes it the identity. */
static int dropout_backward(nn_layer *l, nn_tensor *x, nn_tensor *gy,
                            nn_tensor **gx, nn_error *err) {
  dropout_layer *d = (dropout_layer *)l;
  char xs[160], gs[160];
  if (!nn_tensor_same_shape(gy, x)) {
    nn_tensor_shape_str(x, xs, sizeof xs);
    nn_tensor_shape_str(gy, gs, sizeof gs);
    return nn_seterr(err, "expected grad_output of shape %s, got %s", xs, gs);
  }
  int training = d->have_forward ? d->fwd_training : l->training;
  if (training && !d->have_forward)
    return nn_seterr(err, "backward called before forward");
  if (training && !nn_tensor_has_shape(x, d->fwd_ndim, d->fwd_shape)) {
    nn_shape_str(d->fwd_ndim, d->fwd_shape, gs, sizeof gs);
    nn_tensor_shape_str(x, xs, sizeof xs);
    return nn_seterr(err,
                     "expected the input of the last forward, of shape %s, "
                     "got %s",
                     gs, xs);
  }
  nn_tensor *g = nn_layer_grad_input(l, x->ndim, x->shape, err);
  if (!g) return -1;
  int64_t n = nn_tensor_numel(x);
  if (training) {
    nn_dropout_backward(l->ctx, nn_data(gy), nn_data(g), n, d->p, d->key);
  } else if (nn_tensor_copy_(g, gy, err)) {
    nn_tensor_release(g);
    return -1;
  }
  *gx = g;
  return 0;
}

static void dropout_extra_repr(const nn_layer *l, char *buf, size_t n) {
  char v[48];
  nn_float_repr(((const dropout_layer *)l)->p, v, sizeof v);
  snprintf(buf, n, "p=%s, inplace=False", v);
}

static const nn_layer_ops DROPOUT_OPS = {"Dropout", dropout_forward,
                                         dropout_backward, dropout_extra_repr,
                                         NULL};

nn_layer *nn_dropout_new(nn_ctx *ctx, float p, nn_error *err) {
  if (!(p >= 0.0f && p <= 1.0f)) {
    char v[48];
    nn_float_repr(p, v, sizeof v);
    nn_seterr(err, "dropout probability has to be between 0 and 1, but got %s",
              v);
    return NULL;
  }
  dropout_layer *d = calloc(1, sizeof *d);
  if (!d) {
    nn_seterr(err, "out of memory allocating a layer");
    return NULL;
  }
  nn_layer_init(&d->base, &DROPOUT_OPS, ctx);
  d->p = p;
  return &d->base;
}
