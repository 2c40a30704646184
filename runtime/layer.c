/* layer.c - the parts of the layer protocol shared by every layer. */
#include "layer.h"

#include <stdlib.h>
#include <string.h>

void nn_layer_init(nn_layer *l, const nn_layer_ops *ops, nn_ctx *ctx) {
  l->ops = ops;
  l->ctx = ctx;
  l->training = 1;
}

int nn_layer_add_param(nn_layer *l, const char *name, nn_tensor *t,
                       nn_error *err) {
  if (l->nparams == NN_MAX_PARAMS) {
    nn_tensor_release(t);
    return nn_seterr(err, "too many parameters in one layer");
  }
  l->params[l->nparams].name = name;
  l->params[l->nparams].t = t;
  l->nparams++;
  return nn_tensor_make_param(t, err);
}

void nn_layer_add_buffer(nn_layer *l, const char *name, nn_tensor *t) {
  if (l->nbuffers == NN_MAX_PARAMS) {
    nn_tensor_release(t);
    return;
  }
  l->buffers[l->nbuffers].name = name;
  l->buffers[l->nbuffers].t = t;
  l->nbuffers++;
}

static nn_tensor *find(const nn_named *list, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(list[i].name, name) == 0) return list[i].t;
  return NULL;
}

nn_tensor *nn_layer_param(const nn_layer *l, const char *name) {
  return find(l->params, l->nparams, name);
}

nn_tensor *nn_layer_buffer(const nn_layer *l, const char *name) {
  return find(l->buffers, l->nbuffers, name);
}

nn_tensor *nn_layer_output(nn_layer *l, int ndim, const int64_t *shape,
                           nn_error *err) {
  (void)l;
  return nn_tensor_empty(ndim, shape, err);
}

nn_tensor *nn_layer_grad_input(nn_layer *l, int ndim, const int64_t *shape,
                               nn_error *err) {
  (void)l;
  return nn_tensor_empty(ndim, shape, err);
}

/* The calling thread's scratch buffer (see nn_layer_scratch). */
static _Thread_local float *scratch;
static _Thread_local int64_t scratch_n;

float *nn_layer_scratch(int64_t n, nn_error *err) {
  if (n <= scratch_n && scratch) return scratch;
  nn_free_floats(scratch);
  scratch_n = 0;
  scratch = nn_alloc_floats(n, err);
  if (scratch) scratch_n = n;
  return scratch;
}

void nn_layer_scratch_free(void) {
  nn_free_floats(scratch);
  scratch = NULL;
  scratch_n = 0;
}

static int need_contiguous(const nn_layer *l, const nn_tensor *t,
                           const char *what, nn_error *err) {
  if (nn_tensor_is_contiguous(t)) return 0;
  (void)l;
  return nn_seterr(err, "%s must be contiguous", what);
}

int nn_layer_forward(nn_layer *l, nn_tensor *x, nn_tensor **y, nn_error *err) {
  *y = NULL;
  if (need_contiguous(l, x, "input", err)) return -1;
  return l->ops->forward(l, x, y, err);
}

int nn_layer_backward(nn_layer *l, nn_tensor *x, nn_tensor *gy, nn_tensor **gx,
                      nn_error *err) {
  *gx = NULL;
  if (need_contiguous(l, x, "input", err) ||
      need_contiguous(l, gy, "grad_output", err))
    return -1;
  return l->ops->backward(l, x, gy, gx, err);
}

void nn_layer_free(nn_layer *l) {
  if (!l) return;
  if (l->ops->destroy) l->ops->destroy(l);
  for (int i = 0; i < l->nparams; i++) nn_tensor_release(l->params[i].t);
  for (int i = 0; i < l->nbuffers; i++) nn_tensor_release(l->buffers[i].t);
  nn_tensor_release(l->output);
  free(l);
}
