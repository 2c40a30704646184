/* flatten.c - the Flatten layer (start_dim=1, end_dim=-1): a reshape that
 * shares storage with its input. */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

/* Shape of x with dims 1.. merged: [N, prod(rest)]; fails below 2 dims as
 * torch.flatten(x, 1) does. */
static int flat_shape(const nn_tensor *x, int64_t shape[2], nn_error *err) {
  if (x->ndim < 2) {
    char xs[160];
    nn_tensor_shape_str(x, xs, sizeof xs);
    return nn_seterr(err,
                     "expected input of shape [N, *] with at least 2 "
                     "dimensions (start_dim=1), got %s",
                     xs);
  }
  shape[0] = x->shape[0];
  shape[1] = 1;
  for (int i = 1; i < x->ndim; i++) shape[1] *= x->shape[i];
  return 0;
}

static int flatten_forward(nn_layer *l, nn_tensor *x, nn_tensor **y,
                           nn_error *err) {
  (void)l;
  int64_t shape[2];
  if (flat_shape(x, shape, err)) return -1;
  *y = nn_tensor_reshape(x, 2, shape, err);
  return *y ? 0 : -1;
}

static int flatten_backward(nn_layer *l, nn_tensor *x, nn_tensor *gy,
                            nn_tensor **gx, nn_error *err) {
  (void)l;
  int64_t shape[2];
  if (flat_shape(x, shape, err)) return -1;
  if (!nn_tensor_has_shape(gy, 2, shape)) {
    char want[160], got[160];
    nn_shape_str(2, shape, want, sizeof want);
    nn_tensor_shape_str(gy, got, sizeof got);
    return nn_seterr(err, "expected grad_output of shape %s, got %s", want,
                     got);
  }
  *gx = nn_tensor_reshape(gy, x->ndim, x->shape, err);
  return *gx ? 0 : -1;
}

static void flatten_extra_repr(const nn_layer *l, char *buf, size_t n) {
  (void)l;
  snprintf(buf, n, "start_dim=1, end_dim=-1");
}

static const nn_layer_ops FLATTEN_OPS = {"Flatten", flatten_forward,
                                         flatten_backward, flatten_extra_repr,
                                         NULL};

nn_layer *nn_flatten_new(nn_ctx *ctx, nn_error *err) {
  nn_layer *l = calloc(1, sizeof *l);
  if (!l) {
    nn_seterr(err, "out of memory allocating a layer");
    return NULL;
  }
  nn_layer_init(l, &FLATTEN_OPS, ctx);
  return l;
}
