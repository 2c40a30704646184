/*
 * test_pool.c - MaxPool2d, AvgPool2d, AdaptiveAvgPool2d: PyTorch reference
 * values, finite-difference gradients, thread-count agreement, max-pooling
 * tie/NaN/padding semantics, errors and extra_repr.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/layer.h"
#include "../../runtime/pool.h"
#include "check.h"

static nn_ctx ctx;

/* The fixed patterns the reference values below were computed from (run
 * once with PyTorch 1.13: x and grad_output filled with these formulas in
 * row-major order; x has many ties). */
static float pat_x(int64_t i) { return (float)((i * 7) % 11 - 5) / 4.0f; }
static float pat_gy(int64_t i) { return (float)((i * 5) % 7 - 3) / 2.0f; }

/* torch.nn.MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False),
 * input [1, 2, 5, 5] -> output [1, 2, 3, 3] */
static const float ref_max_y[18] = {
    1.0f, 1.25f, 1.25f, 1.0f, 1.0f, 1.25f, 0.75f, 1.0f, 0.5f, 1.25f, 1.0f,
    1.0f, 1.25f, 1.25f, 1.0f, 0.5f, 1.25f, 0.25f};
static const float ref_max_gx[50] = {
    0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, -1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f,
    0.0f, 0.0f, 0.5f, 0.0f, 0.0f, -1.5f, 0.0f, 0.0f, -0.5f, 0.0f, 0.0f,
    1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.5f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f,
    0.0f, 0.0f, 0.0f, 0.0f, -1.5f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f,
    0.0f, -1.0f, 0.0f};
/* torch.nn.MaxPool2d(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=1, ceil_mode=False),
 * input [2, 1, 5, 4] -> output [2, 1, 3, 3] */
static const float ref_maxr_y[18] = {
    0.5f, 1.0f, 1.25f, 0.75f, 1.25f, 1.25f, 1.0f, 1.25f, 1.25f, 1.25f,
    1.25f, 0.5f, 1.25f, 1.25f, 0.75f, 1.25f, 0.5f, 1.0f};
static const float ref_maxr_gx[40] = {
    0.0f, -1.5f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, -1.0f, 0.0f,
    0.0f, 0.0f, 0.0f, 1.5f, 0.0f, 0.0f, -0.5f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f,
    1.5f, 0.0f, -1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, -1.5f, 0.0f, 0.0f,
    0.0f, 0.0f, 1.0f, 0.0f, 0.0f, -1.0f};
/* torch.nn.AvgPool2d(kernel_size=3, stride=2, padding=1),
 * input [1, 2, 5, 5] -> output [1, 2, 3, 3] */
static const float ref_avg_y[18] = {
    -0.055555556f, 0.1388889f, 0.1388889f, -0.19444445f, -0.11111111f,
    -0.055555556f, 0.0f, -0.083333336f, -0.11111111f, 0.1388889f,
    -0.027777778f, 0.027777778f, -0.055555556f, -0.055555556f, -0.22222222f,
    -0.11111111f, 0.055555556f, -0.22222222f};
static const float ref_avg_gx[50] = {
    -0.16666667f, -0.05555556f, 0.11111111f, 0.11111111f, 0.0f,
    -0.27777779f, 0.0f, 0.27777779f, 0.33333334f, 0.055555556f,
    -0.11111111f, 0.05555556f, 0.16666667f, 0.22222222f, 0.055555556f,
    -0.16666667f, -0.16666667f, 0.0f, 0.16666666f, 0.16666667f,
    -0.055555556f, -0.22222222f, -0.16666667f, -0.05555556f, 0.11111111f,
    0.0f, -0.11111111f, -0.11111111f, 0.05555556f, 0.16666667f,
    0.055555556f, -0.11111111f, -0.16666667f, -0.16666667f, 0.0f,
    0.055555556f, 0.0f, -0.055555556f, -0.22222222f, -0.16666667f,
    0.16666667f, 0.11111111f, -0.055555556f, -0.33333334f, -0.27777779f,
    0.11111111f, 0.11111111f, 0.0f, -0.11111111f, -0.11111111f};
/* torch.nn.AvgPool2d(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1)),
 * input [2, 1, 4, 5] -> output [2, 1, 4, 3] */
static const float ref_avgr_y[24] = {
    -0.33333334f, 0.16666667f, 0.20833333f, -0.375f, 0.041666668f,
    0.33333334f, -0.125f, 0.083333336f, -0.083333336f, 0.0f, -0.083333336f,
    -0.041666668f, 0.33333334f, -0.33333334f, 0.16666667f, 0.16666667f,
    -0.25f, 0.041666668f, -0.041666668f, 0.25f, 0.083333336f, -0.25f,
    0.33333334f, -0.083333336f};
static const float ref_avgr_gx[40] = {
    -0.41666669f, 0.41666669f, 0.41666669f, 0.083333336f, 0.083333336f,
    -0.5f, 0.16666669f, 0.16666669f, 0.25f, 0.25f, -0.25f, -0.16666667f,
    -0.16666667f, 0.5f, 0.5f, -0.083333336f, -0.41666669f, -0.41666669f,
    0.41666669f, 0.41666669f, 0.25f, -0.083333336f, -0.083333336f,
    -0.41666669f, -0.41666669f, 0.5f, 0.0f, 0.0f, -0.5f, -0.5f, 0.16666669f,
    0.25f, 0.25f, -0.25f, -0.25f, 0.0f, 0.25f, 0.25f, -0.083333336f,
    -0.083333336f};
/* torch.nn.AdaptiveAvgPool2d(output_size=(2, 3)),
 * input [1, 2, 5, 5] -> output [1, 2, 2, 3] */
static const float ref_adapt_y[12] = {
    -0.33333334f, 0.0f, 0.33333334f, -0.25f, -0.22222222f, -0.041666668f,
    0.33333334f, 0.055555556f, 0.083333336f, -0.041666668f, 0.13888888f,
    -0.29166666f};
static const float ref_adapt_gx[50] = {
    -0.25f, -0.1388889f, 0.11111111f, 0.11111111f, 0.0f, -0.25f,
    -0.1388889f, 0.11111111f, 0.11111111f, 0.0f, -0.41666669f, -0.13888891f,
    0.27777779f, 0.36111113f, 0.083333336f, -0.16666667f, 0.0f, 0.16666667f,
    0.25f, 0.083333336f, -0.16666667f, 0.0f, 0.16666667f, 0.25f,
    0.083333336f, -0.083333336f, -0.25f, -0.16666667f, 0.0f, 0.16666667f,
    -0.083333336f, -0.25f, -0.16666667f, 0.0f, 0.16666667f, -0.083333336f,
    -0.3611111f, -0.27777779f, 0.1388889f, 0.41666669f, 0.0f, -0.11111111f,
    -0.11111111f, 0.1388889f, 0.25f, 0.0f, -0.11111111f, -0.11111111f,
    0.1388889f, 0.25f};
/* torch.nn.AdaptiveAvgPool2d(output_size=(4, 3)),
 * input [1, 1, 3, 7] -> output [1, 1, 4, 3] */
static const float ref_adapt_up_y[12] = {
    -0.41666666f, 0.33333334f, 0.16666667f, -0.25f, 0.041666668f, -0.125f,
    0.083333336f, -0.083333336f, -0.25f, 0.25f, 0.083333336f, -0.083333336f};
static const float ref_adapt_up_gx[21] = {
    -0.66666669f, -0.66666669f, -0.083333313f, 0.58333337f, 0.66666669f,
    0.083333336f, 0.083333336f, -0.25f, -0.25f, -0.25f, 0.0f, 0.25f, 0.25f,
    0.25f, -0.083333336f, -0.083333336f, -0.66666669f, -0.58333337f,
    0.083333313f, 0.66666669f, 0.66666669f};

static nn_tensor *pattern_tensor(int ndim, const int64_t *shape,
                                 float (*f)(int64_t)) {
  nn_error err;
  nn_tensor *t = nn_tensor_empty(ndim, shape, &err);
  if (!t) return NULL;
  for (int64_t i = 0; i < nn_tensor_numel(t); i++) nn_data(t)[i] = f(i);
  return t;
}

static nn_tensor *random_tensor(int ndim, const int64_t *shape) {
  nn_error err;
  nn_tensor *t = nn_tensor_empty(ndim, shape, &err);
  if (t) nn_fill_uniform(&ctx, nn_data(t), nn_tensor_numel(t), -1.0f, 1.0f);
  return t;
}

/* Distinct values 0.05 apart in random order, so that a small perturbation
 * never changes which element is a window's maximum. */
static nn_tensor *distinct_tensor(int ndim, const int64_t *shape) {
  nn_error err;
  nn_tensor *t = nn_tensor_empty(ndim, shape, &err);
  int64_t n = nn_tensor_numel(t);
  int64_t *perm = malloc((size_t)n * sizeof *perm);
  nn_randperm(&ctx, perm, n);
  for (int64_t i = 0; i < n; i++)
    nn_data(t)[i] = 0.05f * (float)(perm[i] - n / 2);
  free(perm);
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

static int same_bits(const nn_tensor *a, const nn_tensor *b) {
  return nn_tensor_same_shape(a, b) &&
         memcmp(nn_data(a), nn_data(b),
                (size_t)nn_tensor_numel(a) * sizeof(float)) == 0;
}

typedef enum { MAX, AVG, ADAPTIVE } pool_kind;

typedef struct pool_case {
  pool_kind kind;
  int kh, kw, sh, sw, ph, pw; /* adaptive: kh, kw are the output size */
  int64_t shape[4];
  const float *ref_y, *ref_gx;
} pool_case;

static nn_layer *make_pool(const pool_case *c) {
  nn_error err;
  nn_layer *l = NULL;
  if (c->kind == MAX)
    l = nn_maxpool2d_new(&ctx, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, &err);
  else if (c->kind == AVG)
    l = nn_avgpool2d_new(&ctx, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, &err);
  else
    l = nn_adaptive_avgpool2d_new(&ctx, c->kh, c->kw, &err);
  if (!l) fprintf(stderr, "constructor: %s\n", err.msg);
  return l;
}

/* Forward, then backward with grad_output from pat_gy; y and gx owned. */
static int run_fb(nn_layer *l, nn_tensor *x, nn_tensor **y, nn_tensor **gx) {
  nn_error err;
  *gx = NULL;
  if (nn_layer_forward(l, x, y, &err)) {
    fprintf(stderr, "forward: %s\n", err.msg);
    return -1;
  }
  nn_tensor *gy = pattern_tensor((*y)->ndim, (*y)->shape, pat_gy);
  int rc = nn_layer_backward(l, x, gy, gx, &err);
  if (rc) fprintf(stderr, "backward: %s\n", err.msg);
  nn_tensor_release(gy);
  return rc;
}

static const pool_case ref_cases[] = {
    {MAX, 3, 3, 2, 2, 1, 1, {1, 2, 5, 5}, ref_max_y, ref_max_gx},
    {MAX, 3, 2, 2, 1, 1, 0, {2, 1, 5, 4}, ref_maxr_y, ref_maxr_gx},
    {AVG, 3, 3, 2, 2, 1, 1, {1, 2, 5, 5}, ref_avg_y, ref_avg_gx},
    {AVG, 3, 2, 1, 2, 1, 1, {2, 1, 4, 5}, ref_avgr_y, ref_avgr_gx},
    {ADAPTIVE, 2, 3, 0, 0, 0, 0, {1, 2, 5, 5}, ref_adapt_y, ref_adapt_gx},
    {ADAPTIVE, 4, 3, 0, 0, 0, 0, {1, 1, 3, 7}, ref_adapt_up_y,
     ref_adapt_up_gx},
};

static void test_pool_reference(void) {
  nn_error err;
  for (size_t i = 0; i < sizeof ref_cases / sizeof ref_cases[0]; i++) {
    const pool_case *c = &ref_cases[i];
    nn_layer *l = make_pool(c);
    CHECK(l && l->nparams == 0);
    nn_tensor *x = pattern_tensor(4, c->shape, pat_x), *y, *gx;
    CHECK(run_fb(l, x, &y, &gx) == 0);
    double ey = max_err(nn_data(y), c->ref_y, nn_tensor_numel(y));
    double eg = max_err(nn_data(gx), c->ref_gx, nn_tensor_numel(x));
    if (ey > 1e-6 || eg > 1e-6) fprintf(stderr, "  reference case %zu\n", i);
    CHECK_NEAR(ey, 0.0, 1e-6);
    CHECK_NEAR(eg, 0.0, 1e-6);
    /* Unbatched [C, H, W] gives the first sample's results. */
    nn_tensor *x0 = nn_tensor_narrow(x, 0, 0, 1, &err);
    nn_tensor *x3 = nn_tensor_reshape(x0, 3, c->shape + 1, &err), *y3, *gx3;
    CHECK(nn_layer_forward(l, x3, &y3, &err) == 0);
    CHECK(y3->ndim == 3 && y3->shape[0] == c->shape[1]);
    CHECK_NEAR(max_err(nn_data(y3), c->ref_y, nn_tensor_numel(y3)), 0.0, 1e-6);
    nn_tensor *gy3 = pattern_tensor(3, y3->shape, pat_gy);
    CHECK(nn_layer_backward(l, x3, gy3, &gx3, &err) == 0);
    CHECK(nn_tensor_same_shape(gx3, x3));
    CHECK_NEAR(max_err(nn_data(gx3), c->ref_gx, nn_tensor_numel(x3)), 0.0,
               1e-6);
    nn_tensor_release(gy3);
    nn_tensor_release(gx3);
    nn_tensor_release(y3);
    nn_tensor_release(x3);
    nn_tensor_release(x0);
    nn_tensor_release(y);
    nn_tensor_release(gx);
    nn_tensor_release(x);
    nn_layer_free(l);
  }
}

/* L = sum(r * layer(x)) in double. */
static double proj_loss(nn_layer *l, nn_tensor *x, const float *r) {
  nn_tensor *y;
  nn_error err;
  if (nn_layer_forward(l, x, &y, &err)) return NAN;
  double s = 0.0;
  for (int64_t i = 0; i < nn_tensor_numel(y); i++)
    s += (double)r[i] * nn_data(y)[i];
  nn_tensor_release(y);
  return s;
}

/* Central differences of L = sum(r * layer(x)) against grad_input; returns
 * the max absolute error over the largest numeric gradient. */
static double gradcheck(nn_layer *l, nn_tensor *x, float eps) {
  nn_error err;
  nn_tensor *y, *gx;
  if (nn_layer_forward(l, x, &y, &err)) return INFINITY;
  nn_tensor *r = random_tensor(y->ndim, y->shape);
  nn_tensor_release(y);
  if (nn_layer_backward(l, x, r, &gx, &err)) return INFINITY;
  float *v = nn_data(x);
  double maxdiff = 0.0, scale = 1e-3;
  for (int64_t i = 0; i < nn_tensor_numel(x); i++) {
    float save = v[i], hi = save + eps, lo = save - eps;
    v[i] = hi;
    double lp = proj_loss(l, x, nn_data(r));
    v[i] = lo;
    double lm = proj_loss(l, x, nn_data(r));
    v[i] = save;
    double num = (lp - lm) / ((double)hi - (double)lo);
    double d = fabs(num - nn_data(gx)[i]);
    if (d > maxdiff || isnan(d)) maxdiff = d;
    if (fabs(num) > scale) scale = fabs(num);
  }
  nn_tensor_release(gx);
  nn_tensor_release(r);
  return maxdiff / scale;
}

static void test_pool_gradcheck(void) {
  static const pool_case cases[] = {
      {MAX, 3, 3, 2, 2, 1, 1, {2, 2, 7, 6}, NULL, NULL},
      {MAX, 3, 2, 2, 1, 1, 0, {2, 3, 5, 4}, NULL, NULL},
      {MAX, 2, 2, 2, 2, 0, 0, {1, 2, 6, 5}, NULL, NULL},
      {MAX, 2, 3, 1, 3, 1, 1, {2, 1, 4, 8}, NULL, NULL},
      {AVG, 3, 3, 2, 2, 1, 1, {2, 2, 7, 6}, NULL, NULL},
      {AVG, 3, 2, 1, 2, 1, 1, {2, 3, 5, 4}, NULL, NULL},
      {AVG, 2, 2, 3, 3, 0, 0, {1, 2, 8, 7}, NULL, NULL},
      {ADAPTIVE, 2, 3, 0, 0, 0, 0, {2, 2, 5, 5}, NULL, NULL},
      {ADAPTIVE, 4, 3, 0, 0, 0, 0, {1, 2, 3, 7}, NULL, NULL},
      {ADAPTIVE, 1, 1, 0, 0, 0, 0, {2, 3, 4, 5}, NULL, NULL},
  };
  nn_error err;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const pool_case *c = &cases[i];
    nn_layer *l = make_pool(c);
    nn_tensor *x = distinct_tensor(4, c->shape);
    double e = gradcheck(l, x, 1e-3f);
    if (!(e <= 1e-3)) fprintf(stderr, "  gradcheck case %zu\n", i);
    CHECK_NEAR(e, 0.0, 1e-3);
    nn_tensor *x0 = nn_tensor_narrow(x, 0, c->shape[0] - 1, 1, &err);
    nn_tensor *x3 = nn_tensor_reshape(x0, 3, c->shape + 1, &err);
    CHECK_NEAR(gradcheck(l, x3, 1e-3f), 0.0, 1e-3);
    nn_tensor_release(x3);
    nn_tensor_release(x0);
    nn_tensor_release(x);
    nn_layer_free(l);
  }
}

static void test_pool_threads(void) {
  static const pool_case cases[] = {
      {MAX, 3, 3, 2, 2, 1, 1, {5, 6, 17, 15}, NULL, NULL},
      {AVG, 3, 2, 2, 1, 1, 1, {5, 6, 17, 15}, NULL, NULL},
      {ADAPTIVE, 5, 7, 0, 0, 0, 0, {5, 6, 17, 15}, NULL, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const pool_case *c = &cases[i];
    nn_layer *l = make_pool(c);
    nn_tensor *x = random_tensor(4, c->shape), *y1, *gx1, *y, *gx;
    nn_ctx_set_threads(&ctx, 1);
    CHECK(run_fb(l, x, &y1, &gx1) == 0);
    for (int t = 2; t <= 3; t++) {
      nn_ctx_set_threads(&ctx, t);
      CHECK(run_fb(l, x, &y, &gx) == 0);
      CHECK(same_bits(y1, y));
      CHECK(same_bits(gx1, gx));
      nn_tensor_release(y);
      nn_tensor_release(gx);
    }
    nn_tensor_release(y1);
    nn_tensor_release(gx1);
    nn_tensor_release(x);
    nn_layer_free(l);
  }
  nn_ctx_set_threads(&ctx, 2);
}

/* Ties go to the first maximum, NaN wins, padding never does. */
static void test_maxpool_semantics(void) {
  nn_error err;
  nn_layer *l = nn_maxpool2d_new(&ctx, 2, 2, 2, 2, 0, 0, &err);
  int64_t s[4] = {1, 1, 2, 4};
  nn_tensor *x = nn_tensor_new(4, s, &err), *y, *gx;
  float *xd = nn_data(x);
  xd[0] = xd[1] = xd[4] = xd[5] = 3.0f; /* a window of equal values */
  xd[2] = 1.0f;
  xd[3] = NAN;
  xd[6] = 7.0f;
  xd[7] = 2.0f;
  CHECK(run_fb(l, x, &y, &gx) == 0);
  float *yd = nn_data(y), *g = nn_data(gx);
  CHECK(yd[0] == 3.0f && isnan(yd[1]));
  /* pat_gy: gy = {-1.5, 1.0} */
  CHECK(g[0] == -1.5f && g[1] == 0 && g[4] == 0 && g[5] == 0);
  CHECK(g[3] == 1.0f && g[2] == 0 && g[6] == 0 && g[7] == 0);
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_layer_free(l);
  /* All-negative input with padding: the padding is -inf, not 0. */
  l = nn_maxpool2d_new(&ctx, 3, 3, 1, 1, 1, 1, &err);
  nn_tensor_fill_(x, -5.0f);
  nn_data(x)[7] = -4.0f;
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_data(y)[0] == -5.0f && nn_data(y)[2] == -4.0f &&
        nn_data(y)[7] == -4.0f);
  nn_tensor_release(y);
  nn_tensor_release(x);
  nn_layer_free(l);
}

static void test_pool_errors(void) {
  nn_error err;
  nn_layer *l = nn_maxpool2d_new(&ctx, 3, 3, 2, 2, 0, 0, &err);
  nn_tensor *y = NULL, *gx = NULL;
  int64_t s2[2] = {5, 5}, s4[4] = {1, 1, 2, 5}, s5[4] = {2, 3, 7, 7},
          s6[4] = {2, 3, 3, 4};
  nn_tensor *a = nn_tensor_new(2, s2, &err);
  CHECK(nn_layer_forward(l, a, &y, &err) == -1 && y == NULL);
  CHECK(strcmp(err.msg, "expected input of shape [N, C, H, W] or [C, H, W], "
                        "got [5, 5]") == 0);
  nn_tensor *b = nn_tensor_new(4, s4, &err);
  CHECK(nn_layer_forward(l, b, &y, &err) == -1);
  CHECK(strstr(err.msg, "H >= 3") && strstr(err.msg, "got [1, 1, 2, 5]"));
  nn_tensor *x = random_tensor(4, s5), *gy = random_tensor(4, s6);
  CHECK(nn_layer_backward(l, x, gy, &gx, &err) == -1 && gx == NULL);
  CHECK(strcmp(err.msg, "expected grad_output of shape [2, 3, 3, 3], got "
                        "[2, 3, 3, 4]") == 0);
  nn_layer_free(l);
  l = nn_avgpool2d_new(&ctx, 3, 3, 2, 2, 0, 0, &err);
  CHECK(nn_layer_forward(l, b, &y, &err) == -1);
  CHECK(strstr(err.msg, "got [1, 1, 2, 5]") != NULL);
  CHECK(nn_layer_backward(l, x, gy, &gx, &err) == -1);
  CHECK(strstr(err.msg, "[2, 3, 3, 3], got [2, 3, 3, 4]") != NULL);
  nn_layer_free(l);
  l = nn_adaptive_avgpool2d_new(&ctx, 2, 2, &err);
  CHECK(nn_layer_forward(l, a, &y, &err) == -1);
  CHECK(strstr(err.msg, "got [5, 5]") != NULL);
  CHECK(nn_layer_backward(l, x, gy, &gx, &err) == -1);
  CHECK(strstr(err.msg, "[2, 3, 2, 2], got [2, 3, 3, 4]") != NULL);
  int64_t s0[4] = {1, 1, 0, 3};
  nn_tensor *e = nn_tensor_new(4, s0, &err);
  CHECK(nn_layer_forward(l, e, &y, &err) == -1);
  CHECK(strstr(err.msg, "got [1, 1, 0, 3]") != NULL);
  nn_layer_free(l);
  nn_tensor_release(a);
  nn_tensor_release(b);
  nn_tensor_release(e);
  nn_tensor_release(x);
  nn_tensor_release(gy);
  /* Constructor arguments. */
  CHECK(nn_maxpool2d_new(&ctx, 3, 3, 1, 1, 2, 1, &err) == NULL);
  CHECK(strstr(err.msg, "half of kernel size") &&
        strstr(err.msg, "padding=(2, 1)"));
  CHECK(nn_avgpool2d_new(&ctx, 2, 3, 1, 1, 1, 2, &err) == NULL);
  CHECK(strstr(err.msg, "half of kernel size") != NULL);
  CHECK(nn_maxpool2d_new(&ctx, 0, 3, 1, 1, 0, 0, &err) == NULL);
  CHECK(strstr(err.msg, "kernel_size") != NULL);
  CHECK(nn_avgpool2d_new(&ctx, 2, 2, 0, 2, 0, 0, &err) == NULL);
  CHECK(strstr(err.msg, "stride") != NULL);
  CHECK(nn_maxpool2d_new(&ctx, 2, 2, 2, 2, -1, 0, &err) == NULL);
  CHECK(strstr(err.msg, "padding") != NULL);
  CHECK(nn_adaptive_avgpool2d_new(&ctx, 0, 1, &err) == NULL);
  CHECK(strstr(err.msg, "output_size") != NULL);
}

static void test_pool_repr(void) {
  nn_error err;
  char buf[256];
  nn_layer *l = nn_maxpool2d_new(&ctx, 2, 2, 2, 2, 0, 0, &err);
  CHECK(strcmp(l->ops->type, "MaxPool2d") == 0);
  l->ops->extra_repr(l, buf, sizeof buf);
  CHECK(strcmp(buf, "kernel_size=2, stride=2, padding=0, dilation=1, "
                    "ceil_mode=False") == 0);
  nn_layer_free(l);
  l = nn_maxpool2d_new(&ctx, 3, 2, 2, 1, 1, 0, &err);
  l->ops->extra_repr(l, buf, sizeof buf);
  CHECK(strcmp(buf, "kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), "
                    "dilation=1, ceil_mode=False") == 0);
  nn_layer_free(l);
  l = nn_avgpool2d_new(&ctx, 2, 2, 2, 2, 0, 0, &err);
  CHECK(strcmp(l->ops->type, "AvgPool2d") == 0);
  l->ops->extra_repr(l, buf, sizeof buf);
  CHECK(strcmp(buf, "kernel_size=2, stride=2, padding=0") == 0);
  nn_layer_free(l);
  l = nn_adaptive_avgpool2d_new(&ctx, 1, 1, &err);
  CHECK(strcmp(l->ops->type, "AdaptiveAvgPool2d") == 0);
  l->ops->extra_repr(l, buf, sizeof buf);
  CHECK(strcmp(buf, "output_size=(1, 1)") == 0);
  nn_layer_free(l);
}

int main(void) {
  nn_ctx_init(&ctx);
  nn_ctx_set_threads(&ctx, 2);
  RUN(test_pool_reference);
  RUN(test_pool_gradcheck);
  RUN(test_pool_threads);
  RUN(test_maxpool_semantics);
  RUN(test_pool_errors);
  RUN(test_pool_repr);
  return check_report("pool");
}
