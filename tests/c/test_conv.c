/*
 * test_conv.c - Linear and Conv2d: PyTorch reference values, naive-loop
 * references, finite-difference gradients, thread-count agreement, errors,
 * frozen parameters, init and extra_repr.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/conv.h"
#include "../../runtime/layer.h"
#include "check.h"

static nn_ctx ctx;

/* The fixed patterns the reference values below were computed from (run
 * once with PyTorch 1.13: x, weight, bias and grad_output filled with these
 * formulas in row-major order). */
static float pat_x(int64_t i) { return (float)((i * 7) % 11 - 5) / 4.0f; }
static float pat_gy(int64_t i) { return (float)((i * 5) % 7 - 3) / 2.0f; }
static float pat_w(int64_t i) { return (float)((i * 3) % 13 - 6) / 8.0f; }
static float pat_b(int64_t i) { return (float)(i - 1) / 4.0f; }

/* torch.nn.Linear(in_features=4, out_features=3, bias=True),
 * input [2, 4] -> output [2, 3] */
static const float ref_linear_y[6] = {
    0.96875f, -0.8125f, -0.5625f, -0.15625f, 0.4375f, 0.625f};
static const float ref_linear_gx[8] = {
    1.875f, 0.0625f, -0.125f, -0.3125f, 2.1875f, -0.6875f, -0.3125f, 0.0625f};
static const float ref_linear_gw[12] = {
    1.625f, 0.0f, -0.25f, -1.875f, -0.875f, -0.625f, 1.0f, 1.25f, 0.125f,
    -0.375f, 0.5f, 0.0f};
static const float ref_linear_gb[3] = {
    -2.5f, 2.5f, 0.5f};
/* torch.nn.Conv2d(2, 3, kernel_size=(3, 2), stride=(2, 1), padding=(1, 1)),
 * input [2, 2, 4, 3] -> output [2, 3, 2, 4] */
static const float ref_conv_y[48] = {
    -1.625f, 1.21875f, -0.65625f, -0.28125f, -0.6875f, -0.28125f, -0.46875f,
    -0.40625f, 1.1875f, 0.96875f, 0.21875f, -0.40625f, -0.34375f, -0.03125f,
    0.78125f, -1.09375f, 1.15625f, 1.53125f, -0.9375f, 1.09375f, 0.8125f,
    0.625f, -2.03125f, 1.875f, -0.71875f, -0.46875f, 1.09375f, -0.46875f,
    0.125f, -0.65625f, 0.1875f, -1.59375f, -0.03125f, 0.5f, -0.25f,
    0.34375f, -0.15625f, -1.5f, -0.6875f, -0.6875f, -0.15625f, 1.0625f,
    -0.375f, -0.46875f, -0.84375f, 2.53125f, -1.15625f, 0.625f};
static const float ref_conv_gx[48] = {
    0.1875f, 0.0f, -1.5f, 0.25f, -2.0625f, 3.0625f, 2.0625f, 0.5625f,
    -0.9375f, -0.375f, -2.125f, -1.25f, 2.3125f, -1.3125f, -0.5625f,
    -1.6875f, 4.8125f, -1.8125f, -0.375f, -1.8125f, -1.0625f, -0.375f,
    2.8125f, -0.5625f, -0.375f, 2.0625f, 0.5625f, 2.0625f, -1.5625f,
    0.9375f, 0.1875f, 0.0f, -1.5f, 2.25f, -1.25f, -0.375f, 2.8125f, -0.375f,
    -1.8125f, -3.1875f, 2.0f, 1.9375f, 2.3125f, -1.3125f, -0.5625f,
    -1.3125f, 2.3125f, -1.0625f};
static const float ref_conv_gw[36] = {
    0.875f, 4.5f, 0.25f, 9.125f, 3.0f, 4.625f, 1.0f, -2.0f, 3.0f, -4.75f,
    0.25f, -5.125f, -2.75f, 0.875f, -5.125f, 0.25f, -4.75f, 3.0f, 0.5f,
    1.0f, 4.625f, 3.0f, 9.125f, 0.25f, 0.625f, -2.75f, 0.875f, -5.125f,
    -2.0f, -4.75f, -2.625f, 0.5f, -5.125f, 4.625f, -3.875f, 9.125f};
static const float ref_conv_gb[3] = {
    -2.5f, 2.5f, 0.5f};
/* torch.nn.Conv2d(2, 3, kernel_size=(1, 1), stride=(1, 1), bias=False),
 * input [1, 2, 2, 3] -> output [1, 3, 2, 3] */
static const float ref_conv1x1_y[18] = {
    0.5625f, -0.375f, 0.75f, -1.21875f, -0.09375f, 1.03125f, 0.375f, 0.0f,
    -0.375f, 0.28125f, -0.09375f, -0.46875f, -1.4375f, 0.375f, 0.125f,
    0.5625f, 0.3125f, 0.0625f};
static const float ref_conv1x1_gx[12] = {
    1.5f, -1.125f, -1.125f, 1.5f, -1.125f, -1.125f, 0.125f, -0.6875f,
    1.125f, -0.125f, -0.9375f, 0.875f};
static const float ref_conv1x1_gw[6] = {
    1.125f, -3.25f, -2.0f, -3.125f, 1.875f, 4.0f};

static nn_tensor *pattern_tensor(int ndim, const int64_t *shape,
                                 float (*f)(int64_t)) {
  nn_error err;
  nn_tensor *t = nn_tensor_empty(ndim, shape, &err);
  if (!t) return NULL;
  for (int64_t i = 0; i < nn_tensor_numel(t); i++) nn_data(t)[i] = f(i);
  return t;
}

static void fill_pattern(nn_tensor *t, float (*f)(int64_t)) {
  for (int64_t i = 0; i < nn_tensor_numel(t); i++) nn_data(t)[i] = f(i);
}

static nn_tensor *random_tensor(int ndim, const int64_t *shape) {
  nn_error err;
  nn_tensor *t = nn_tensor_empty(ndim, shape, &err);
  if (t) nn_fill_uniform(&ctx, nn_data(t), nn_tensor_numel(t), -1.0f, 1.0f);
  return t;
}

/* max |a - ref| / max(1, |ref|) over n elements. */
static double max_err(const float *a, const float *ref, int64_t n) {
  double m = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double s = fabs((double)ref[i]) > 1.0 ? fabs((double)ref[i]) : 1.0;
    double e = fabs((double)a[i] - (double)ref[i]) / s;
    if (e > m || isnan(e)) m = e;
  }
  return m;
}

static void zero_grads(nn_layer *l) {
  for (int i = 0; i < l->nparams; i++)
    nn_tensor_fill_(l->params[i].t->grad, 0.0f);
}

/* L = sum(r * layer(x)) accumulated in double. */
static double proj_loss(nn_layer *l, nn_tensor *x, const float *r) {
  nn_tensor *y;
  nn_error err;
  if (nn_layer_forward(l, x, &y, &err)) {
    fprintf(stderr, "forward failed: %s\n", err.msg);
    return NAN;
  }
  double s = 0.0;
  for (int64_t i = 0; i < nn_tensor_numel(y); i++)
    s += (double)r[i] * nn_data(y)[i];
  nn_tensor_release(y);
  return s;
}

/* Central differences of L w.r.t. each of the n floats v (perturbed in
 * place) against the analytic gradient; returns the max absolute error
 * divided by the largest numeric gradient. */
static double fd_error(nn_layer *l, nn_tensor *x, const float *r, float *v,
                       const float *analytic, int64_t n, float eps) {
  double maxdiff = 0.0, scale = 1e-3;
  for (int64_t i = 0; i < n; i++) {
    float save = v[i];
    float hi = save + eps, lo = save - eps;
    v[i] = hi;
    double lp = proj_loss(l, x, r);
    v[i] = lo;
    double lm = proj_loss(l, x, r);
    v[i] = save;
    double num = (lp - lm) / ((double)hi - (double)lo);
    double d = fabs(num - (double)analytic[i]);
    if (d > maxdiff || isnan(d)) maxdiff = d;
    if (fabs(num) > scale) scale = fabs(num);
  }
  return maxdiff / scale;
}

/* Checks grad_input and every parameter gradient of l at x by finite
 * differences of a random projection of the output. */
static void gradcheck(nn_layer *l, nn_tensor *x, double tol) {
  nn_error err;
  nn_tensor *y, *gx;
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  nn_tensor *r = random_tensor(y->ndim, y->shape);
  nn_tensor_release(y);
  zero_grads(l);
  CHECK(nn_layer_backward(l, x, r, &gx, &err) == 0);
  double e = fd_error(l, x, nn_data(r), nn_data(x), nn_data(gx),
                      nn_tensor_numel(x), 1e-2f);
  CHECK_NEAR(e, 0.0, tol);
  for (int i = 0; i < l->nparams; i++) {
    nn_tensor *p = l->params[i].t;
    e = fd_error(l, x, nn_data(r), nn_data(p), nn_data(p->grad),
                 nn_tensor_numel(p), 1e-2f);
    if (!(e <= tol))
      fprintf(stderr, "  parameter %s: relative error %g\n", l->params[i].name,
              e);
    CHECK_NEAR(e, 0.0, tol);
  }
  nn_tensor_release(gx);
  nn_tensor_release(r);
}

/* Runs forward and backward (with grad_output from pat_gy) after zeroing
 * the parameter gradients; returns y and gx (owned). */
static int run_fb(nn_layer *l, nn_tensor *x, nn_tensor **y, nn_tensor **gx) {
  nn_error err;
  *gx = NULL;
  if (nn_layer_forward(l, x, y, &err)) {
    fprintf(stderr, "forward: %s\n", err.msg);
    return -1;
  }
  nn_tensor *gy = pattern_tensor((*y)->ndim, (*y)->shape, pat_gy);
  zero_grads(l);
  int rc = nn_layer_backward(l, x, gy, gx, &err);
  if (rc) fprintf(stderr, "backward: %s\n", err.msg);
  nn_tensor_release(gy);
  return rc;
}

/* ---- Linear ---- */

static void test_linear_reference(void) {
  nn_error err;
  nn_layer *l = nn_linear_new(&ctx, 4, 3, 1, &err);
  CHECK(l && l->nparams == 2);
  fill_pattern(nn_layer_param(l, "weight"), pat_w);
  fill_pattern(nn_layer_param(l, "bias"), pat_b);
  int64_t xs[2] = {2, 4};
  nn_tensor *x = pattern_tensor(2, xs, pat_x), *y, *gx;
  CHECK(run_fb(l, x, &y, &gx) == 0);
  int64_t ys[2] = {2, 3};
  CHECK(nn_tensor_has_shape(y, 2, ys));
  CHECK_NEAR(max_err(nn_data(y), ref_linear_y, 6), 0.0, 1e-6);
  CHECK_NEAR(max_err(nn_data(gx), ref_linear_gx, 8), 0.0, 1e-6);
  CHECK_NEAR(max_err(nn_data(nn_layer_param(l, "weight")->grad),
                     ref_linear_gw, 12),
             0.0, 1e-6);
  CHECK_NEAR(max_err(nn_data(nn_layer_param(l, "bias")->grad), ref_linear_gb,
                     3),
             0.0, 1e-6);
  /* A second backward accumulates. */
  nn_tensor *gy = pattern_tensor(2, ys, pat_gy), *gx2;
  CHECK(nn_layer_backward(l, x, gy, &gx2, &err) == 0);
  CHECK_NEAR(nn_data(nn_layer_param(l, "weight")->grad)[0],
             2 * ref_linear_gw[0], 1e-6);
  CHECK_NEAR(nn_data(nn_layer_param(l, "bias")->grad)[1], 2 * ref_linear_gb[1],
             1e-6);
  nn_tensor_release(gx2);
  nn_tensor_release(gy);
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_tensor_release(x);
  nn_layer_free(l);
}

static void test_linear_shapes(void) {
  nn_error err;
  nn_layer *l = nn_linear_new(&ctx, 4, 3, 1, &err);
  int64_t s2[2] = {2, 4}, s1[1] = {4}, s3[3] = {2, 2, 4};
  nn_tensor *x2 = random_tensor(2, s2), *y2, *y1, *y3;
  CHECK(nn_layer_forward(l, x2, &y2, &err) == 0);
  /* 1-D input: one row. */
  nn_tensor *x1 = nn_tensor_narrow(x2, 0, 1, 1, &err);
  nn_tensor *x1r = nn_tensor_reshape(x1, 1, s1, &err);
  CHECK(nn_layer_forward(l, x1r, &y1, &err) == 0);
  CHECK(y1->ndim == 1 && y1->shape[0] == 3);
  CHECK_NEAR(max_err(nn_data(y1), nn_data(y2) + 3, 3), 0.0, 1e-6);
  /* [*, in]: leading dimensions kept. */
  nn_tensor *x3 = random_tensor(3, s3);
  CHECK(nn_layer_forward(l, x3, &y3, &err) == 0);
  int64_t ys3[3] = {2, 2, 3};
  CHECK(nn_tensor_has_shape(y3, 3, ys3));
  gradcheck(l, x3, 1e-3);
  gradcheck(l, x1r, 1e-3);
  /* Wrong feature count, scalar input, wrong grad_output. */
  int64_t bad[2] = {2, 5};
  nn_tensor *xb = random_tensor(2, bad), *out = NULL;
  CHECK(nn_layer_forward(l, xb, &out, &err) == -1 && out == NULL);
  CHECK(strstr(err.msg, "[N, 4]") && strstr(err.msg, "[2, 5]"));
  nn_tensor *sc = nn_tensor_new(0, NULL, &err);
  CHECK(nn_layer_forward(l, sc, &out, &err) == -1);
  CHECK(strstr(err.msg, "got []") != NULL);
  CHECK(nn_layer_backward(l, x2, x2, &out, &err) == -1 && out == NULL);
  CHECK(strstr(err.msg, "expected grad_output of shape [2, 3], got [2, 4]"));
  nn_tensor_release(sc);
  nn_tensor_release(xb);
  nn_tensor_release(x3);
  nn_tensor_release(y3);
  nn_tensor_release(x1);
  nn_tensor_release(x1r);
  nn_tensor_release(y1);
  nn_tensor_release(x2);
  nn_tensor_release(y2);
  nn_layer_free(l);
}

static void test_linear_init_repr(void) {
  nn_error err;
  char buf[256];
  nn_layer *l = nn_linear_new(&ctx, 3136, 256, 1, &err);
  CHECK(strcmp(l->ops->type, "Linear") == 0);
  l->ops->extra_repr(l, buf, sizeof buf);
  CHECK(strcmp(buf, "in_features=3136, out_features=256, bias=True") == 0);
  nn_tensor *w = nn_layer_param(l, "weight"), *b = nn_layer_param(l, "bias");
  int64_t ws[2] = {256, 3136};
  CHECK(nn_tensor_has_shape(w, 2, ws) && b->ndim == 1 && b->shape[0] == 256);
  CHECK(w->requires_grad && b->requires_grad);
  float bound = 1.0f / sqrtf(3136.0f), wmax = 0, bmax = 0;
  double mean = 0;
  for (int64_t i = 0; i < nn_tensor_numel(w); i++) {
    float v = fabsf(nn_data(w)[i]);
    if (v > wmax) wmax = v;
    mean += nn_data(w)[i];
  }
  for (int64_t i = 0; i < 256; i++)
    if (fabsf(nn_data(b)[i]) > bmax) bmax = fabsf(nn_data(b)[i]);
  mean /= (double)nn_tensor_numel(w);
  CHECK(wmax <= bound && wmax > 0.99f * bound);
  CHECK(bmax <= bound && bmax > 0.9f * bound);
  CHECK(fabs(mean) < 0.01 * bound);
  nn_layer_free(l);
  l = nn_linear_new(&ctx, 3, 2, 0, &err);
  CHECK(l->nparams == 1 && nn_layer_param(l, "bias") == NULL);
  l->ops->extra_repr(l, buf, sizeof buf);
  CHECK(strcmp(buf, "in_features=3, out_features=2, bias=False") == 0);
  int64_t xs[2] = {3, 3};
  nn_tensor *x = random_tensor(2, xs);
  gradcheck(l, x, 1e-3);
  nn_tensor_release(x);
  nn_layer_free(l);
  CHECK(nn_linear_new(&ctx, 0, 2, 1, &err) == NULL);
  CHECK(strstr(err.msg, "positive") != NULL);
}

static void test_linear_frozen_threads(void) {
  nn_error err;
  nn_layer *l = nn_linear_new(&ctx, 70, 130, 1, &err);
  int64_t xs[2] = {37, 70};
  nn_tensor *x = random_tensor(2, xs), *y1, *gx1, *y2, *gx2;
  nn_ctx_set_threads(&ctx, 1);
  CHECK(run_fb(l, x, &y1, &gx1) == 0);
  nn_tensor *gw1 = nn_tensor_clone(nn_layer_param(l, "weight")->grad, &err);
  nn_tensor *gb1 = nn_tensor_clone(nn_layer_param(l, "bias")->grad, &err);
  nn_ctx_set_threads(&ctx, 2);
  CHECK(run_fb(l, x, &y2, &gx2) == 0);
  CHECK(memcmp(nn_data(y1), nn_data(y2), 37 * 130 * sizeof(float)) == 0);
  CHECK(memcmp(nn_data(gx1), nn_data(gx2), 37 * 70 * sizeof(float)) == 0);
  CHECK(memcmp(nn_data(gw1), nn_data(nn_layer_param(l, "weight")->grad),
               130 * 70 * sizeof(float)) == 0);
  CHECK(memcmp(nn_data(gb1), nn_data(nn_layer_param(l, "bias")->grad),
               130 * sizeof(float)) == 0);
  nn_tensor_release(y2);
  nn_tensor_release(gx2);
  /* Frozen weight: no gradient, bias still gets one, gx unchanged. */
  nn_layer_param(l, "weight")->requires_grad = 0;
  CHECK(run_fb(l, x, &y2, &gx2) == 0);
  int nonzero = 0;
  for (int64_t i = 0; i < 130 * 70; i++)
    nonzero += nn_data(nn_layer_param(l, "weight")->grad)[i] != 0.0f;
  CHECK(nonzero == 0);
  CHECK(memcmp(nn_data(gb1), nn_data(nn_layer_param(l, "bias")->grad),
               130 * sizeof(float)) == 0);
  CHECK(memcmp(nn_data(gx1), nn_data(gx2), 37 * 70 * sizeof(float)) == 0);
  nn_tensor_release(y2);
  nn_tensor_release(gx2);
  /* Nothing requires grad: grad_input is still computed. */
  nn_layer_param(l, "bias")->requires_grad = 0;
  CHECK(run_fb(l, x, &y2, &gx2) == 0);
  CHECK(memcmp(nn_data(gx1), nn_data(gx2), 37 * 70 * sizeof(float)) == 0);
  nn_tensor_release(y2);
  nn_tensor_release(gx2);
  nn_tensor_release(gw1);
  nn_tensor_release(gb1);
  nn_tensor_release(y1);
  nn_tensor_release(gx1);
  nn_tensor_release(x);
  nn_layer_free(l);
}

/* ---- Conv2d ---- */

/* Sets the layer's parameters from the reference patterns. */
static void pattern_params(nn_layer *l) {
  fill_pattern(nn_layer_param(l, "weight"), pat_w);
  if (nn_layer_param(l, "bias")) fill_pattern(nn_layer_param(l, "bias"), pat_b);
}

static void test_conv_reference(void) {
  nn_error err;
  nn_layer *l = nn_conv2d_new(&ctx, 2, 3, 3, 2, 2, 1, 1, 1, 1, &err);
  pattern_params(l);
  int64_t xs[4] = {2, 2, 4, 3}, ys[4] = {2, 3, 2, 4};
  nn_tensor *x = pattern_tensor(4, xs, pat_x), *y, *gx;
  CHECK(run_fb(l, x, &y, &gx) == 0);
  CHECK(nn_tensor_has_shape(y, 4, ys));
  CHECK_NEAR(max_err(nn_data(y), ref_conv_y, 48), 0.0, 1e-6);
  CHECK_NEAR(max_err(nn_data(gx), ref_conv_gx, 48), 0.0, 1e-6);
  CHECK_NEAR(max_err(nn_data(nn_layer_param(l, "weight")->grad), ref_conv_gw,
                     36),
             0.0, 1e-6);
  CHECK_NEAR(max_err(nn_data(nn_layer_param(l, "bias")->grad), ref_conv_gb, 3),
             0.0, 1e-6);
  /* A second backward accumulates. */
  nn_tensor *gy = pattern_tensor(4, ys, pat_gy), *gx2;
  CHECK(nn_layer_backward(l, x, gy, &gx2, &err) == 0);
  CHECK_NEAR(nn_data(nn_layer_param(l, "weight")->grad)[3], 2 * ref_conv_gw[3],
             1e-6);
  CHECK_NEAR(nn_data(nn_layer_param(l, "bias")->grad)[0], 2 * ref_conv_gb[0],
             1e-6);
  nn_tensor_release(gy);
  nn_tensor_release(gx2);
  nn_tensor_release(x);
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_layer_free(l);

  l = nn_conv2d_new(&ctx, 2, 3, 1, 1, 1, 1, 0, 0, 0, &err);
  pattern_params(l);
  int64_t xs1[4] = {1, 2, 2, 3};
  x = pattern_tensor(4, xs1, pat_x);
  CHECK(run_fb(l, x, &y, &gx) == 0);
  CHECK_NEAR(max_err(nn_data(y), ref_conv1x1_y, 18), 0.0, 1e-6);
  CHECK_NEAR(max_err(nn_data(gx), ref_conv1x1_gx, 12), 0.0, 1e-6);
  CHECK_NEAR(max_err(nn_data(nn_layer_param(l, "weight")->grad),
                     ref_conv1x1_gw, 6),
             0.0, 1e-6);
  nn_tensor_release(x);
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_layer_free(l);
}

/* Direct loops in double: y [n, cout, ho, wo]. */
static void naive_conv(const nn_conv2d_geom *g, const float *x, const float *w,
                       const float *b, double *y) {
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t co = 0; co < g->cout; co++)
      for (int64_t oy = 0; oy < g->ho; oy++)
        for (int64_t ox = 0; ox < g->wo; ox++) {
          double s = b ? b[co] : 0.0;
          for (int64_t ci = 0; ci < g->cin; ci++)
            for (int i = 0; i < g->kh; i++)
              for (int j = 0; j < g->kw; j++) {
                int64_t iy = oy * g->sh - g->ph + i, ix = ox * g->sw - g->pw + j;
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                s += (double)x[((n * g->cin + ci) * g->h + iy) * g->w + ix] *
                     w[((co * g->cin + ci) * g->kh + i) * g->kw + j];
              }
          y[((n * g->cout + co) * g->ho + oy) * g->wo + ox] = s;
        }
}

/* Direct loops in double: gx [n, cin, h, w] and gw [cout, cin, kh, kw] of
 * sum(gy * conv(x, w)). */
static void naive_conv_grads(const nn_conv2d_geom *g, const float *x,
                             const float *w, const float *gy, double *gx,
                             double *gw) {
  memset(gx, 0, (size_t)(g->n * g->cin * g->h * g->w) * sizeof(double));
  memset(gw, 0, (size_t)(g->cout * g->cin * g->kh * g->kw) * sizeof(double));
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t co = 0; co < g->cout; co++)
      for (int64_t oy = 0; oy < g->ho; oy++)
        for (int64_t ox = 0; ox < g->wo; ox++) {
          double d = gy[((n * g->cout + co) * g->ho + oy) * g->wo + ox];
          for (int64_t ci = 0; ci < g->cin; ci++)
            for (int i = 0; i < g->kh; i++)
              for (int j = 0; j < g->kw; j++) {
                int64_t iy = oy * g->sh - g->ph + i, ix = ox * g->sw - g->pw + j;
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                int64_t xi = ((n * g->cin + ci) * g->h + iy) * g->w + ix;
                int64_t wi = ((co * g->cin + ci) * g->kh + i) * g->kw + j;
                gx[xi] += d * w[wi];
                gw[wi] += d * x[xi];
              }
        }
}

/* Max |a - ref| / max(1, max |ref|). */
static double rel_err_d(const float *a, const double *ref, int64_t n) {
  double m = 0.0, scale = 1.0;
  for (int64_t i = 0; i < n; i++) {
    if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    if (fabs(a[i] - ref[i]) > m) m = fabs(a[i] - ref[i]);
  }
  return m / scale;
}

typedef struct conv_case {
  int64_t n, cin, h, w, cout;
  int kh, kw, sh, sw, ph, pw, bias;
} conv_case;

static const conv_case naive_cases[] = {
    {2, 2, 5, 4, 3, 3, 2, 1, 1, 0, 0, 1},  /* rectangular kernel */
    {3, 2, 7, 6, 3, 3, 3, 2, 2, 1, 1, 1},  /* stride 2, padding */
    {2, 2, 6, 5, 3, 3, 2, 2, 1, 1, 0, 0},  /* mixed, no bias */
    {4, 3, 5, 5, 4, 1, 1, 1, 1, 0, 0, 1},  /* pointwise */
    {2, 1, 4, 4, 2, 4, 4, 3, 3, 2, 2, 1},  /* kernel as large as input */
    {5, 4, 9, 8, 6, 5, 3, 3, 2, 2, 1, 1},  /* stride > kernel span gaps */
    {1, 3, 3, 3, 2, 1, 1, 2, 2, 0, 0, 1},  /* strided 1x1 */
};

/* Shapes that take the other kernel paths: small images lowered by chunks
 * of the batch (one and several chunks), grad_input computed as a
 * convolution with the flipped kernel (cin >= 64, cout <= cin, stride 1),
 * with large and small images, and shallow kernels on larger images
 * lowered by chunks too. */
static const conv_case path_cases[] = {
    {40, 8, 4, 4, 6, 3, 3, 1, 1, 1, 1, 1},    /* 3 forward chunks of 16 */
    {70, 5, 2, 3, 7, 2, 2, 1, 1, 1, 0, 1},    /* p = 6, odd chunking */
    {9, 16, 3, 3, 8, 1, 1, 1, 1, 0, 0, 1},    /* pointwise, batched */
    {6, 12, 5, 5, 10, 3, 3, 2, 2, 1, 1, 0},   /* stride 2, batched */
    {3, 64, 17, 16, 32, 3, 3, 1, 1, 1, 1, 1}, /* gx as a convolution */
    {5, 64, 6, 5, 64, 3, 2, 1, 1, 2, 1, 1},   /* ... padding (2, 1), batched */
    {2, 64, 4, 4, 48, 3, 3, 1, 1, 0, 0, 0},   /* ... no padding, no bias */
    {5, 1, 20, 17, 8, 3, 3, 1, 1, 1, 1, 1},   /* shallow (k <= 32), batched */
    {3, 3, 24, 24, 16, 3, 3, 2, 2, 1, 1, 0},  /* ... strided, no bias */
    {20, 8, 2, 2, 6, 3, 3, 1, 1, 1, 1, 1},    /* tap pairs: input <= kernel */
    {17, 5, 1, 1, 7, 3, 3, 1, 1, 1, 1, 0},    /* ... 1x1 input, 8 taps unused */
    {16, 4, 3, 3, 5, 3, 3, 2, 2, 1, 1, 1},    /* ... stride 2 */
    {16, 3, 2, 3, 4, 2, 3, 1, 1, 1, 0, 1},    /* ... rectangular */
    {16, 256, 2, 2, 70, 3, 3, 1, 1, 1, 1, 1}, /* ... wider channels */
    {16, 3, 1, 1, 4, 1, 1, 1, 1, 1, 1, 1},    /* ... outputs in the padding */
    {16, 600, 1, 1, 8, 3, 3, 1, 1, 1, 1, 0},  /* ... 2 blocks of dX columns */
    {16, 8, 2, 2, 600, 3, 3, 1, 1, 1, 1, 1},  /* ... 2 blocks of Y, dW */
};

/* Forward, grad_input and grad_weight of the path cases against direct
 * loops, with 1 and 2 threads. */
static void test_conv_paths(void) {
  nn_error err;
  for (size_t c = 0; c < sizeof path_cases / sizeof path_cases[0]; c++) {
    const conv_case *k = &path_cases[c];
    nn_layer *l = nn_conv2d_new(&ctx, k->cin, k->cout, k->kh, k->kw, k->sh,
                                k->sw, k->ph, k->pw, k->bias, &err);
    CHECK(l != NULL);
    if (!l) continue;
    int64_t xs[4] = {k->n, k->cin, k->h, k->w};
    nn_tensor *x = random_tensor(4, xs);
    nn_conv2d_geom g;
    nn_conv2d_geom_set(&g, k->n, k->cin, k->h, k->w, k->cout, k->kh, k->kw,
                       k->sh, k->sw, k->ph, k->pw);
    int64_t ny = g.n * g.cout * g.ho * g.wo, nx = nn_tensor_numel(x);
    int64_t nw = g.cout * g.cin * g.kh * g.kw;
    double *ry = malloc((size_t)ny * sizeof(double));
    double *rgx = malloc((size_t)nx * sizeof(double));
    double *rgw = malloc((size_t)nw * sizeof(double));
    nn_tensor *w = nn_layer_param(l, "weight"), *b = nn_layer_param(l, "bias");
    naive_conv(&g, nn_data(x), nn_data(w), b ? nn_data(b) : NULL, ry);
    int64_t ys[4] = {g.n, g.cout, g.ho, g.wo};
    nn_tensor *gy = pattern_tensor(4, ys, pat_gy);
    naive_conv_grads(&g, nn_data(x), nn_data(w), nn_data(gy), rgx, rgw);
    for (int t = 1; t <= 2; t++) {
      nn_tensor *y, *gx;
      nn_ctx_set_threads(&ctx, t);
      CHECK(run_fb(l, x, &y, &gx) == 0);
      double ey = rel_err_d(nn_data(y), ry, ny);
      double egx = rel_err_d(nn_data(gx), rgx, nx);
      double egw = rel_err_d(nn_data(w->grad), rgw, nw);
      if (ey > 1e-5 || egx > 1e-5 || egw > 1e-5)
        fprintf(stderr, "  path case %zu, %d threads: %g %g %g\n", c, t, ey,
                egx, egw);
      CHECK_NEAR(ey, 0.0, 1e-5);
      CHECK_NEAR(egx, 0.0, 1e-5);
      CHECK_NEAR(egw, 0.0, 1e-5);
      nn_tensor_release(y);
      nn_tensor_release(gx);
    }
    free(ry);
    free(rgx);
    free(rgw);
    nn_tensor_release(gy);
    nn_tensor_release(x);
    nn_layer_free(l);
  }
  nn_ctx_set_threads(&ctx, 2);
}

static void test_conv_naive(void) {
  nn_error err;
  for (size_t c = 0; c < sizeof naive_cases / sizeof naive_cases[0]; c++) {
    const conv_case *k = &naive_cases[c];
    nn_layer *l = nn_conv2d_new(&ctx, k->cin, k->cout, k->kh, k->kw, k->sh,
                                k->sw, k->ph, k->pw, k->bias, &err);
    CHECK(l != NULL);
    if (!l) continue;
    int64_t xs[4] = {k->n, k->cin, k->h, k->w};
    nn_tensor *x = random_tensor(4, xs), *y;
    nn_conv2d_geom g;
    nn_conv2d_geom_set(&g, k->n, k->cin, k->h, k->w, k->cout, k->kh, k->kw,
                       k->sh, k->sw, k->ph, k->pw);
    CHECK(nn_layer_forward(l, x, &y, &err) == 0);
    int64_t ny = g.n * g.cout * g.ho * g.wo;
    double *ref = malloc((size_t)ny * sizeof(double));
    nn_tensor *b = nn_layer_param(l, "bias");
    naive_conv(&g, nn_data(x), nn_data(nn_layer_param(l, "weight")),
               b ? nn_data(b) : NULL, ref);
    double m = 0.0;
    for (int64_t i = 0; i < ny; i++)
      if (fabs(nn_data(y)[i] - ref[i]) > m) m = fabs(nn_data(y)[i] - ref[i]);
    if (m > 1e-5) fprintf(stderr, "  naive case %zu\n", c);
    CHECK_NEAR(m, 0.0, 1e-5);
    free(ref);
    nn_tensor_release(y);
    nn_tensor_release(x);
    nn_layer_free(l);
  }
}

static void test_conv_gradcheck(void) {
  static const conv_case cases[] = {
      {2, 2, 5, 4, 3, 3, 2, 1, 1, 0, 0, 1}, /* cin=2, cout=3, 3x2 kernel */
      {2, 2, 6, 5, 3, 3, 3, 2, 2, 1, 1, 1}, /* stride 2, padding 1 */
      {2, 2, 5, 4, 3, 3, 2, 2, 1, 1, 0, 1}, /* 3x2, stride (2,1), pad (1,0) */
      {3, 2, 7, 7, 2, 2, 2, 3, 3, 0, 0, 0}, /* stride 3 > kernel, no bias */
      {2, 3, 3, 4, 2, 1, 1, 1, 1, 0, 0, 1}, /* pointwise */
  };
  nn_error err;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const conv_case *k = &cases[c];
    nn_layer *l = nn_conv2d_new(&ctx, k->cin, k->cout, k->kh, k->kw, k->sh,
                                k->sw, k->ph, k->pw, k->bias, &err);
    int64_t xs[4] = {k->n, k->cin, k->h, k->w};
    nn_tensor *x = random_tensor(4, xs);
    for (int t = 1; t <= 2; t++) {
      nn_ctx_set_threads(&ctx, t);
      gradcheck(l, x, 1e-3);
    }
    /* Unbatched [C, H, W]. */
    nn_tensor *x0 = nn_tensor_narrow(x, 0, 0, 1, &err);
    nn_tensor *x3 = nn_tensor_reshape(x0, 3, xs + 1, &err);
    gradcheck(l, x3, 1e-3);
    nn_tensor_release(x0);
    nn_tensor_release(x3);
    nn_tensor_release(x);
    nn_layer_free(l);
  }
}

static void test_conv_unbatched(void) {
  nn_error err;
  nn_layer *l = nn_conv2d_new(&ctx, 2, 3, 3, 3, 1, 1, 1, 1, 1, &err);
  int64_t xs[4] = {2, 2, 5, 6}, ys[3] = {3, 5, 6};
  nn_tensor *x = random_tensor(4, xs), *y, *y3, *gx, *gx3;
  nn_tensor *x1 = nn_tensor_narrow(x, 0, 1, 1, &err);
  nn_tensor *x3 = nn_tensor_reshape(x1, 3, xs + 1, &err);
  CHECK(run_fb(l, x, &y, &gx) == 0);
  CHECK(run_fb(l, x3, &y3, &gx3) == 0);
  CHECK(nn_tensor_has_shape(y3, 3, ys) && nn_tensor_has_shape(gx3, 3, xs + 1));
  CHECK_NEAR(max_err(nn_data(y3), nn_data(y) + 90, 90), 0.0, 1e-6);
  nn_tensor_release(x);
  nn_tensor_release(x1);
  nn_tensor_release(x3);
  nn_tensor_release(y);
  nn_tensor_release(y3);
  nn_tensor_release(gx);
  nn_tensor_release(gx3);
  nn_layer_free(l);
}

/* Runs l on x with t threads; returns copies of y, gx, weight and bias
 * grads in out[0..3]. */
static void run_threads(nn_layer *l, nn_tensor *x, int t, nn_tensor **out) {
  nn_error err;
  nn_ctx_set_threads(&ctx, t);
  CHECK(run_fb(l, x, &out[0], &out[1]) == 0);
  out[2] = nn_tensor_clone(nn_layer_param(l, "weight")->grad, &err);
  out[3] = nn_tensor_clone(nn_layer_param(l, "bias")->grad, &err);
}

static int same_bits(const nn_tensor *a, const nn_tensor *b) {
  return nn_tensor_same_shape(a, b) &&
         memcmp(nn_data(a), nn_data(b),
                (size_t)nn_tensor_numel(a) * sizeof(float)) == 0;
}

static void test_conv_threads(void) {
  /* A batch larger than the thread count, and a single large image (the
   * gemm itself is split), each with 1, 2 and 3 threads. */
  static const conv_case cases[] = {
      {7, 3, 12, 10, 8, 3, 3, 1, 1, 1, 1, 1},
      {1, 16, 32, 32, 64, 3, 3, 1, 1, 1, 1, 1},
      {3, 32, 8, 8, 48, 1, 1, 1, 1, 0, 0, 1},
      {40, 8, 4, 4, 6, 3, 3, 1, 1, 1, 1, 1},   /* several forward chunks */
      {5, 64, 10, 9, 64, 3, 3, 1, 1, 1, 1, 1}, /* gx as a convolution */
      {9, 64, 4, 4, 32, 3, 3, 1, 1, 1, 1, 1},  /* ... on chunks */
      {6, 3, 12, 12, 64, 3, 3, 1, 1, 1, 1, 1}, /* gw by runs of samples, */
      {5, 1, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1}, /* transposed or not */
      {16, 256, 2, 2, 70, 3, 3, 1, 1, 1, 1, 1}, /* tap pairs */
      {16, 8, 2, 2, 600, 3, 3, 1, 1, 1, 1, 1},  /* ... in 2 blocks */
  };
  nn_error err;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const conv_case *k = &cases[c];
    nn_layer *l = nn_conv2d_new(&ctx, k->cin, k->cout, k->kh, k->kw, k->sh,
                                k->sw, k->ph, k->pw, k->bias, &err);
    int64_t xs[4] = {k->n, k->cin, k->h, k->w};
    nn_tensor *x = random_tensor(4, xs), *r1[4], *rt[4];
    run_threads(l, x, 1, r1);
    for (int t = 2; t <= 3; t++) {
      run_threads(l, x, t, rt);
      for (int i = 0; i < 4; i++) {
        if (!same_bits(r1[i], rt[i]))
          fprintf(stderr, "  case %zu, %d threads, output %d differs\n", c, t,
                  i);
        CHECK(same_bits(r1[i], rt[i]));
        nn_tensor_release(rt[i]);
      }
    }
    for (int i = 0; i < 4; i++) nn_tensor_release(r1[i]);
    nn_tensor_release(x);
    nn_layer_free(l);
  }
  nn_ctx_set_threads(&ctx, 2);
}

/* A batch large enough for the weight gradient to be reduced in several
 * chunks: the gradients must equal the sum of per-sample gradients
 * (accumulated by one backward call per sample). */
static void test_conv_chunks(void) {
  nn_error err;
  nn_layer *l = nn_conv2d_new(&ctx, 16, 16, 3, 3, 1, 1, 1, 1, 1, &err);
  int64_t xs[4] = {27, 16, 32, 32};
  nn_conv2d_geom g;
  nn_conv2d_geom_set(&g, 27, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1);
  CHECK(nn_conv2d_workspace_size(&g, 1) < 27 * (144 + 16) * 1024);
  nn_tensor *x = random_tensor(4, xs), *y, *gx;
  CHECK(run_fb(l, x, &y, &gx) == 0);
  nn_tensor *gw = nn_tensor_clone(nn_layer_param(l, "weight")->grad, &err);
  nn_tensor *gb = nn_tensor_clone(nn_layer_param(l, "bias")->grad, &err);
  zero_grads(l);
  nn_tensor *gy = pattern_tensor(4, xs, pat_gy); /* the batch's grad_output */
  for (int64_t n = 0; n < 27; n++) {
    nn_tensor *xn = nn_tensor_narrow(x, 0, n, 1, &err);
    nn_tensor *gyv = nn_tensor_narrow(gy, 0, n, 1, &err);
    nn_tensor *gyn = nn_tensor_clone(gyv, &err), *gxn;
    CHECK(nn_layer_backward(l, xn, gyn, &gxn, &err) == 0);
    CHECK_NEAR(max_err(nn_data(gxn), nn_data(gx) + n * 16 * 1024, 16 * 1024),
               0.0, 1e-6);
    nn_tensor_release(gxn);
    nn_tensor_release(gyn);
    nn_tensor_release(gyv);
    nn_tensor_release(xn);
  }
  nn_tensor_release(gy);
  CHECK_NEAR(max_err(nn_data(nn_layer_param(l, "weight")->grad), nn_data(gw),
                     nn_tensor_numel(gw)),
             0.0, 1e-4);
  CHECK_NEAR(max_err(nn_data(nn_layer_param(l, "bias")->grad), nn_data(gb), 16),
             0.0, 1e-4);
  nn_tensor_release(gw);
  nn_tensor_release(gb);
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_tensor_release(x);
  nn_layer_free(l);
}

static void test_conv_errors(void) {
  nn_error err;
  nn_layer *l = nn_conv2d_new(&ctx, 3, 4, 3, 3, 1, 1, 0, 0, 1, &err);
  nn_tensor *y = NULL;
  int64_t s1[4] = {64, 1, 28, 28}, s2[2] = {5, 5}, s3[4] = {1, 3, 2, 5},
          s4[3] = {1, 8, 8}, s5[4] = {2, 3, 5, 5}, s6[4] = {2, 4, 3, 4};
  nn_tensor *a = nn_tensor_new(4, s1, &err);
  CHECK(nn_layer_forward(l, a, &y, &err) == -1 && y == NULL);
  CHECK(strcmp(err.msg,
               "expected input of shape [N, 3, H, W], got [64, 1, 28, 28]") ==
        0);
  nn_tensor *b = nn_tensor_new(2, s2, &err);
  CHECK(nn_layer_forward(l, b, &y, &err) == -1);
  CHECK(strstr(err.msg, "[N, 3, H, W]") && strstr(err.msg, "got [5, 5]"));
  nn_tensor *c = nn_tensor_new(4, s3, &err);
  CHECK(nn_layer_forward(l, c, &y, &err) == -1);
  CHECK(strstr(err.msg, "H >= 3") && strstr(err.msg, "got [1, 3, 2, 5]"));
  nn_tensor *d = nn_tensor_new(3, s4, &err);
  CHECK(nn_layer_forward(l, d, &y, &err) == -1);
  CHECK(strcmp(err.msg, "expected input of shape [3, H, W], got [1, 8, 8]") ==
        0);
  /* Backward with a mis-shaped grad_output. */
  nn_tensor *x = random_tensor(4, s5), *gy = random_tensor(4, s6), *gx = NULL;
  CHECK(nn_layer_backward(l, x, gy, &gx, &err) == -1 && gx == NULL);
  CHECK(strcmp(err.msg, "expected grad_output of shape [2, 4, 3, 3], got "
                        "[2, 4, 3, 4]") == 0);
  nn_tensor_release(a);
  nn_tensor_release(b);
  nn_tensor_release(c);
  nn_tensor_release(d);
  nn_tensor_release(x);
  nn_tensor_release(gy);
  nn_layer_free(l);
  /* Padding makes a small input acceptable. */
  l = nn_conv2d_new(&ctx, 3, 4, 3, 3, 1, 1, 1, 1, 1, &err);
  c = nn_tensor_new(4, s3, &err);
  CHECK(nn_layer_forward(l, c, &y, &err) == 0);
  nn_tensor_release(y);
  nn_tensor_release(c);
  nn_layer_free(l);
  /* Constructor arguments. */
  CHECK(nn_conv2d_new(&ctx, 0, 4, 3, 3, 1, 1, 0, 0, 1, &err) == NULL);
  CHECK(strstr(err.msg, "in_channels") != NULL);
  CHECK(nn_conv2d_new(&ctx, 3, 4, 0, 3, 1, 1, 0, 0, 1, &err) == NULL);
  CHECK(strstr(err.msg, "kernel_size") != NULL);
  CHECK(nn_conv2d_new(&ctx, 3, 4, 3, 3, 1, 0, 0, 0, 1, &err) == NULL);
  CHECK(strstr(err.msg, "stride") != NULL);
  CHECK(nn_conv2d_new(&ctx, 3, 4, 3, 3, 1, 1, -1, 0, 1, &err) == NULL);
  CHECK(strstr(err.msg, "padding") != NULL);
}

static void test_conv_frozen(void) {
  nn_error err;
  nn_layer *l = nn_conv2d_new(&ctx, 2, 3, 3, 3, 2, 2, 1, 1, 1, &err);
  int64_t xs[4] = {3, 2, 7, 6};
  nn_tensor *x = random_tensor(4, xs), *y, *gx, *y2, *gx2;
  CHECK(run_fb(l, x, &y, &gx) == 0);
  nn_tensor *gb = nn_tensor_clone(nn_layer_param(l, "bias")->grad, &err);
  nn_layer_param(l, "weight")->requires_grad = 0;
  CHECK(run_fb(l, x, &y2, &gx2) == 0);
  nn_tensor *gw = nn_layer_param(l, "weight")->grad;
  int nonzero = 0;
  for (int64_t i = 0; i < nn_tensor_numel(gw); i++) nonzero += nn_data(gw)[i] != 0;
  CHECK(nonzero == 0);
  CHECK(same_bits(gb, nn_layer_param(l, "bias")->grad));
  CHECK(same_bits(gx, gx2));
  nn_tensor_release(y2);
  nn_tensor_release(gx2);
  nn_layer_param(l, "bias")->requires_grad = 0;
  CHECK(run_fb(l, x, &y2, &gx2) == 0);
  CHECK(same_bits(gx, gx2));
  nn_tensor *gbt = nn_layer_param(l, "bias")->grad;
  CHECK(nn_data(gbt)[0] == 0 && nn_data(gbt)[1] == 0 && nn_data(gbt)[2] == 0);
  nn_tensor_release(gb);
  nn_tensor_release(y2);
  nn_tensor_release(gx2);
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_tensor_release(x);
  nn_layer_free(l);
}

static void test_conv_init_repr(void) {
  nn_error err;
  char buf[256];
  nn_layer *l = nn_conv2d_new(&ctx, 1, 32, 3, 3, 1, 1, 1, 1, 1, &err);
  CHECK(strcmp(l->ops->type, "Conv2d") == 0);
  l->ops->extra_repr(l, buf, sizeof buf);
  CHECK(strcmp(buf, "1, 32, kernel_size=(3, 3), stride=(1, 1), "
                    "padding=(1, 1)") == 0);
  nn_layer_free(l);
  l = nn_conv2d_new(&ctx, 3, 64, 3, 3, 1, 1, 0, 0, 1, &err);
  l->ops->extra_repr(l, buf, sizeof buf);
  CHECK(strcmp(buf, "3, 64, kernel_size=(3, 3), stride=(1, 1)") == 0);
  nn_tensor *w = nn_layer_param(l, "weight"), *b = nn_layer_param(l, "bias");
  int64_t ws[4] = {64, 3, 3, 3};
  CHECK(nn_tensor_has_shape(w, 4, ws) && b->shape[0] == 64);
  CHECK(l->params[0].t == w && l->params[1].t == b);
  float bound = 1.0f / sqrtf(27.0f), wmax = 0, bmax = 0;
  for (int64_t i = 0; i < nn_tensor_numel(w); i++)
    if (fabsf(nn_data(w)[i]) > wmax) wmax = fabsf(nn_data(w)[i]);
  for (int64_t i = 0; i < 64; i++)
    if (fabsf(nn_data(b)[i]) > bmax) bmax = fabsf(nn_data(b)[i]);
  CHECK(wmax <= bound && wmax > 0.95f * bound);
  CHECK(bmax <= bound && bmax > 0.8f * bound);
  /* A second call (possibly into a recycled, stale buffer) gives the same
   * output. */
  int64_t xs[4] = {2, 3, 6, 6};
  nn_tensor *x = random_tensor(4, xs), *y1, *y2;
  CHECK(nn_layer_forward(l, x, &y1, &err) == 0);
  nn_tensor *c1 = nn_tensor_clone(y1, &err);
  nn_tensor_release(y1);
  CHECK(nn_layer_forward(l, x, &y2, &err) == 0);
  CHECK(same_bits(c1, y2));
  nn_tensor_release(c1);
  nn_tensor_release(y2);
  nn_tensor_release(x);
  nn_layer_free(l);
  l = nn_conv2d_new(&ctx, 2, 3, 3, 2, 2, 1, 1, 0, 0, &err);
  CHECK(l->nparams == 1);
  l->ops->extra_repr(l, buf, sizeof buf);
  CHECK(strcmp(buf, "2, 3, kernel_size=(3, 2), stride=(2, 1), "
                    "padding=(1, 0), bias=False") == 0);
  nn_layer_free(l);
}

int main(void) {
  nn_ctx_init(&ctx);
  nn_ctx_set_threads(&ctx, 2);
  RUN(test_linear_reference);
  RUN(test_linear_shapes);
  RUN(test_linear_init_repr);
  RUN(test_linear_frozen_threads);
  RUN(test_conv_reference);
  RUN(test_conv_naive);
  RUN(test_conv_paths);
  RUN(test_conv_gradcheck);
  RUN(test_conv_unbatched);
  RUN(test_conv_threads);
  RUN(test_conv_chunks);
  RUN(test_conv_errors);
  RUN(test_conv_frozen);
  RUN(test_conv_init_repr);
  return check_report("conv");
}
