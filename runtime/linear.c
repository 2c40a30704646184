/* linear.c - the Linear layer: y = x w^T + b over the last dimension. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gemm.h"
#include "layer.h"

/* Output features per block of the bias-gradient reduction. */
#define BIAS_BLOCK 64

typedef struct linear {
  nn_layer base;
  int64_t in, out;
  int bias;
} linear;

/* Checks that x is [*, in] (at least 1-D) and returns the number of rows
 * (the product of the leading dimensions), or -1 with err. */
static int64_t input_rows(const linear *m, const nn_tensor *x, nn_error *err) {
  if (x->ndim < 1 || x->shape[x->ndim - 1] != m->in) {
    char got[160];
    nn_tensor_shape_str(x, got, sizeof got);
    nn_seterr(err, "expected input of shape [N, %lld] (or [*, %lld]), got %s",
              (long long)m->in, (long long)m->in, got);
    return -1;
  }
  int64_t rows = 1;
  for (int i = 0; i < x->ndim - 1; i++) rows *= x->shape[i];
  return rows;
}

static int linear_forward(nn_layer *l, nn_tensor *x, nn_tensor **y,
                          nn_error *err) {
  linear *m = (linear *)l;
  int64_t rows = input_rows(m, x, err);
  if (rows < 0) return -1;
  int64_t shape[NN_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
  shape[x->ndim - 1] = m->out;
  nn_tensor *out = nn_layer_output(l, x->ndim, shape, err);
  if (!out) return -1;
  int nt = l->ctx->num_threads;
  const float *w = nn_data(l->params[0].t);
  float *yd = nn_data(out);
  int64_t in = m->in, no = m->out;
  nn_gemm(nt, 0, 1, rows, no, in, 1.0f, nn_data(x), in, w, in, 0.0f, yd, no);
  if (m->bias) {
    const float *b = nn_data(l->params[1].t);
#pragma omp parallel for num_threads(nt) schedule(static) if (rows * no > 65536)
    for (int64_t r = 0; r < rows; r++)
      for (int64_t o = 0; o < no; o++) yd[r * no + o] += b[o];
  }
  *y = out;
  return 0;
}

/* gb[o] += sum over rows of gy[r, o]: blocks of outputs in parallel, each
 * output summed over the rows in order, so the result does not depend on
 * the thread count. */
static void bias_grad(int nt, int64_t rows, int64_t no, const float *gy,
                      float *gb) {
  int64_t nblocks = (no + BIAS_BLOCK - 1) / BIAS_BLOCK;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t blk = 0; blk < nblocks; blk++) {
    int64_t o0 = blk * BIAS_BLOCK;
    int64_t o1 = o0 + BIAS_BLOCK < no ? o0 + BIAS_BLOCK : no;
    double acc[BIAS_BLOCK] = {0};
    for (int64_t r = 0; r < rows; r++)
      for (int64_t o = o0; o < o1; o++) acc[o - o0] += gy[r * no + o];
    for (int64_t o = o0; o < o1; o++) gb[o] += (float)acc[o - o0];
  }
}

static int linear_backward(nn_layer *l, nn_tensor *x, nn_tensor *gy,
                           nn_tensor **gx, nn_error *err) {
  linear *m = (linear *)l;
  int64_t rows = input_rows(m, x, err);
  if (rows < 0) return -1;
  int64_t shape[NN_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
  shape[x->ndim - 1] = m->out;
  if (!nn_tensor_has_shape(gy, x->ndim, shape)) {
    char want[160], got[160];
    nn_shape_str(x->ndim, shape, want, sizeof want);
    nn_tensor_shape_str(gy, got, sizeof got);
    return nn_seterr(err, "expected grad_output of shape %s, got %s", want,
                     got);
  }
  nn_tensor *out = nn_layer_grad_input(l, x->ndim, x->shape, err);
  if (!out) return -1;
  int nt = l->ctx->num_threads;
  int64_t in = m->in, no = m->out;
  nn_tensor *w = l->params[0].t;
  const float *g = nn_data(gy);
  /* gx [rows, in] = gy [rows, out] w [out, in] */
  nn_gemm(nt, 0, 0, rows, in, no, 1.0f, g, no, nn_data(w), in, 0.0f,
          nn_data(out), in);
  /* gw [out, in] += gy^T [out, rows] x [rows, in] */
  if (w->requires_grad && w->grad && rows > 0)
    nn_gemm(nt, 1, 0, no, in, rows, 1.0f, g, no, nn_data(x), in, 1.0f,
            nn_data(w->grad), in);
  if (m->bias) {
    nn_tensor *b = l->params[1].t;
    if (b->requires_grad && b->grad) bias_grad(nt, rows, no, g, nn_data(b->grad));
  }
  *gx = out;
  return 0;
}

static void linear_extra_repr(const nn_layer *l, char *buf, size_t n) {
  const linear *m = (const linear *)l;
  snprintf(buf, n, "in_features=%lld, out_features=%lld, bias=%s",
           (long long)m->in, (long long)m->out, m->bias ? "True" : "False");
}

static const nn_layer_ops linear_ops = {
    .type = "Linear",
    .forward = linear_forward,
    .backward = linear_backward,
    .extra_repr = linear_extra_repr,
    .destroy = NULL,
};

nn_layer *nn_linear_new(nn_ctx *ctx, int64_t in, int64_t out, int bias,
                        nn_error *err) {
  if (in <= 0 || out <= 0) {
    nn_seterr(err,
              "in_features and out_features must be positive, got %lld and "
              "%lld",
              (long long)in, (long long)out);
    return NULL;
  }
  linear *m = calloc(1, sizeof *m);
  if (!m) {
    nn_seterr(err, "out of memory allocating a Linear layer");
    return NULL;
  }
  nn_layer_init(&m->base, &linear_ops, ctx);
  m->in = in;
  m->out = out;
  m->bias = bias != 0;
  float bound = (float)(1.0 / sqrt((double)in));
  nn_tensor *w = nn_tensor_new2(out, in, err);
  if (!w || nn_layer_add_param(&m->base, "weight", w, err)) goto fail;
  nn_fill_uniform(ctx, nn_data(w), out * in, -bound, bound);
  if (m->bias) {
    nn_tensor *b = nn_tensor_new1(out, err);
    if (!b || nn_layer_add_param(&m->base, "bias", b, err)) goto fail;
    nn_fill_uniform(ctx, nn_data(b), out, -bound, bound);
  }
  return &m->base;
fail:
  nn_layer_free(&m->base);
  return NULL;
}
