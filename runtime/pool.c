/* pool.c - MaxPool2d, AvgPool2d, AdaptiveAvgPool2d: kernels and layers. */
#include "pool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "layer.h"

void nn_pool2d_geom_set(nn_pool2d_geom *g, int64_t planes, int64_t h,
                        int64_t w, int kh, int kw, int sh, int sw, int ph,
                        int pw) {
  g->planes = planes;
  g->h = h;
  g->w = w;
  g->kh = kh;
  g->kw = kw;
  g->sh = sh;
  g->sw = sw;
  g->ph = ph;
  g->pw = pw;
  g->ho = nn_conv_out_size(h, kh, sh, ph);
  g->wo = nn_conv_out_size(w, kw, sw, pw);
}

/* The input rows [*lo, *hi) covered by output row o of a window of size k,
 * stride s, padding p over n input rows. */
static void window(int64_t o, int k, int s, int p, int64_t n, int64_t *lo,
                   int64_t *hi) {
  int64_t a = o * s - p, b = a + k;
  *lo = a < 0 ? 0 : a;
  *hi = b > n ? n : b;
}

/* Index (within the plane) of the maximum of x over the window, the first
 * one on ties; a NaN counts as the maximum, as in PyTorch. */
static int64_t window_argmax(const float *x, int64_t w, int64_t y0, int64_t y1,
                             int64_t x0, int64_t x1) {
  int64_t best = y0 * w + x0;
  float m = -INFINITY;
  for (int64_t iy = y0; iy < y1; iy++)
    for (int64_t ix = x0; ix < x1; ix++) {
      float v = x[iy * w + ix];
      if (v > m || isnan(v)) {
        m = v;
        best = iy * w + ix;
      }
    }
  return best;
}

/* The commonest pool, 2x2 with stride 2 and no padding, has its own loops:
 * windows do not overlap, so the backward writes every input position once
 * (no zeroing pass, no scatter) and nothing is recomputed per element. */
static int is_2x2(const nn_pool2d_geom *g) {
  return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 &&
         g->pw == 0;
}

/* The running maximum m updated with v, as window_argmax does (a NaN
 * wins). */
static inline float max_step(float m, float v) {
  return ((v > m) | (v != v)) ? v : m;
}

/* One output row of a 2x2 stride-2 max pool from input rows r0, r1. */
static void max2x2_row(const float *r0, const float *r1, float *y,
                       int64_t wo) {
#pragma omp simd
  for (int64_t ox = 0; ox < wo; ox++) {
    float m = max_step(-INFINITY, r0[2 * ox]);
    m = max_step(m, r0[2 * ox + 1]);
    m = max_step(m, r1[2 * ox]);
    y[ox] = max_step(m, r1[2 * ox + 1]);
  }
}

/* Backward of one output row (input rows r0 and r0 + w): gy goes to the
 * window's argmax (first maximum; with a NaN, as window_argmax), zeros to
 * the rest.  Branch-free but for NaNs: with random data, branches on the
 * comparisons would mispredict half the time. */
static void max2x2_row_backward(const float *r0, int64_t w, const float *gy,
                                float *g0, int64_t wo) {
  for (int64_t ox = 0; ox < wo; ox++) {
    const float *p = r0 + 2 * ox;
    float v0 = p[0], v1 = p[1], v2 = p[w], v3 = p[w + 1];
    int idx;
    if ((v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3)) {
      int64_t a = window_argmax(p, w, 0, 2, 0, 2);
      idx = (int)(a / w * 2 + a % w);
    } else {
      float m01 = v1 > v0 ? v1 : v0, m012 = v2 > m01 ? v2 : m01;
      int b1 = v1 > v0, b2 = v2 > m01, b3 = v3 > m012;
      idx = b3 * 3 + (1 - b3) * (b2 * 2 + (1 - b2) * b1);
    }
    float pick[2] = {0.0f, gy[ox]}; /* indexed, not branched on */
    float *q = g0 + 2 * ox;
    q[0] = pick[idx == 0];
    q[1] = pick[idx == 1];
    q[w] = pick[idx == 2];
    q[w + 1] = pick[idx == 3];
  }
}

void nn_maxpool2d_forward_kernel(int nthreads, const nn_pool2d_geom *g,
                                 const float *x, float *y) {
  int64_t in = g->h * g->w, out = g->ho * g->wo;
  if (is_2x2(g)) {
#pragma omp parallel for num_threads(nthreads) schedule(static) \
    if (g->planes * in >= 16384)
    for (int64_t pl = 0; pl < g->planes; pl++)
      for (int64_t oy = 0; oy < g->ho; oy++) {
        const float *r0 = x + pl * in + 2 * oy * g->w;
        max2x2_row(r0, r0 + g->w, y + pl * out + oy * g->wo, g->wo);
      }
    return;
  }
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t pl = 0; pl < g->planes; pl++) {
    const float *xp = x + pl * in;
    float *yp = y + pl * out;
    for (int64_t oy = 0; oy < g->ho; oy++) {
      int64_t y0, y1;
      window(oy, g->kh, g->sh, g->ph, g->h, &y0, &y1);
      for (int64_t ox = 0; ox < g->wo; ox++) {
        int64_t x0, x1;
        window(ox, g->kw, g->sw, g->pw, g->w, &x0, &x1);
        if (y0 >= y1 || x0 >= x1) {
          yp[oy * g->wo + ox] = -INFINITY; /* all padding */
          continue;
        }
        yp[oy * g->wo + ox] = xp[window_argmax(xp, g->w, y0, y1, x0, x1)];
      }
    }
  }
}

void nn_maxpool2d_backward_kernel(int nthreads, const nn_pool2d_geom *g,
                                  const float *x, const float *gy, float *gx) {
  int64_t in = g->h * g->w, out = g->ho * g->wo;
  if (is_2x2(g)) {
#pragma omp parallel for num_threads(nthreads) schedule(static) \
    if (g->planes * in >= 16384)
    for (int64_t pl = 0; pl < g->planes; pl++) {
      const float *xp = x + pl * in;
      float *gxp = gx + pl * in;
      for (int64_t oy = 0; oy < g->ho; oy++) {
        int64_t r = 2 * oy * g->w;
        max2x2_row_backward(xp + r, g->w, gy + pl * out + oy * g->wo, gxp + r,
                            g->wo);
        /* an odd last column is in no window */
        if (g->w > 2 * g->wo) gxp[r + g->w - 1] = gxp[r + 2 * g->w - 1] = 0.0f;
      }
      /* and so is an odd last row */
      if (g->h > 2 * g->ho)
        memset(gxp + (g->h - 1) * g->w, 0, (size_t)g->w * sizeof(float));
    }
    return;
  }
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t pl = 0; pl < g->planes; pl++) {
    const float *xp = x + pl * in;
    const float *gp = gy + pl * out;
    float *gxp = gx + pl * in;
    memset(gxp, 0, (size_t)in * sizeof(float));
    for (int64_t oy = 0; oy < g->ho; oy++) {
      int64_t y0, y1;
      window(oy, g->kh, g->sh, g->ph, g->h, &y0, &y1);
      for (int64_t ox = 0; ox < g->wo; ox++) {
        int64_t x0, x1;
        window(ox, g->kw, g->sw, g->pw, g->w, &x0, &x1);
        if (y0 >= y1 || x0 >= x1) continue;
        gxp[window_argmax(xp, g->w, y0, y1, x0, x1)] += gp[oy * g->wo + ox];
      }
    }
  }
}

void nn_avgpool2d_forward_kernel(int nthreads, const nn_pool2d_geom *g,
                                 const float *x, float *y) {
  int64_t in = g->h * g->w, out = g->ho * g->wo;
  double div = (double)g->kh * g->kw;
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t pl = 0; pl < g->planes; pl++) {
    const float *xp = x + pl * in;
    float *yp = y + pl * out;
    for (int64_t oy = 0; oy < g->ho; oy++) {
      int64_t y0, y1;
      window(oy, g->kh, g->sh, g->ph, g->h, &y0, &y1);
      for (int64_t ox = 0; ox < g->wo; ox++) {
        int64_t x0, x1;
        window(ox, g->kw, g->sw, g->pw, g->w, &x0, &x1);
        double s = 0.0;
        for (int64_t iy = y0; iy < y1; iy++)
          for (int64_t ix = x0; ix < x1; ix++) s += xp[iy * g->w + ix];
        yp[oy * g->wo + ox] = (float)(s / div);
      }
    }
  }
}

void nn_avgpool2d_backward_kernel(int nthreads, const nn_pool2d_geom *g,
                                  const float *gy, float *gx) {
  int64_t in = g->h * g->w, out = g->ho * g->wo;
  float inv = 1.0f / ((float)g->kh * (float)g->kw);
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t pl = 0; pl < g->planes; pl++) {
    const float *gp = gy + pl * out;
    float *gxp = gx + pl * in;
    memset(gxp, 0, (size_t)in * sizeof(float));
    for (int64_t oy = 0; oy < g->ho; oy++) {
      int64_t y0, y1;
      window(oy, g->kh, g->sh, g->ph, g->h, &y0, &y1);
      for (int64_t ox = 0; ox < g->wo; ox++) {
        int64_t x0, x1;
        window(ox, g->kw, g->sw, g->pw, g->w, &x0, &x1);
        float v = gp[oy * g->wo + ox] * inv;
        for (int64_t iy = y0; iy < y1; iy++)
          for (int64_t ix = x0; ix < x1; ix++) gxp[iy * g->w + ix] += v;
      }
    }
  }
}

/* PyTorch's adaptive window of output index i: [floor(i n / o),
 * ceil((i + 1) n / o)). */
static void adaptive_window(int64_t i, int64_t n, int64_t o, int64_t *lo,
                            int64_t *hi) {
  *lo = i * n / o;
  *hi = ((i + 1) * n + o - 1) / o;
}

void nn_adaptive_avgpool2d_forward_kernel(int nthreads, int64_t planes,
                                          int64_t h, int64_t w, int64_t oh,
                                          int64_t ow, const float *x,
                                          float *y) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *xp = x + pl * h * w;
    float *yp = y + pl * oh * ow;
    for (int64_t oy = 0; oy < oh; oy++) {
      int64_t y0, y1;
      adaptive_window(oy, h, oh, &y0, &y1);
      for (int64_t ox = 0; ox < ow; ox++) {
        int64_t x0, x1;
        adaptive_window(ox, w, ow, &x0, &x1);
        double s = 0.0;
        for (int64_t iy = y0; iy < y1; iy++)
          for (int64_t ix = x0; ix < x1; ix++) s += xp[iy * w + ix];
        yp[oy * ow + ox] = (float)(s / (double)((y1 - y0) * (x1 - x0)));
      }
    }
  }
}

void nn_adaptive_avgpool2d_backward_kernel(int nthreads, int64_t planes,
                                           int64_t h, int64_t w, int64_t oh,
                                           int64_t ow, const float *gy,
                                           float *gx) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *gp = gy + pl * oh * ow;
    float *gxp = gx + pl * h * w;
    memset(gxp, 0, (size_t)(h * w) * sizeof(float));
    for (int64_t oy = 0; oy < oh; oy++) {
      int64_t y0, y1;
      adaptive_window(oy, h, oh, &y0, &y1);
      for (int64_t ox = 0; ox < ow; ox++) {
        int64_t x0, x1;
        adaptive_window(ox, w, ow, &x0, &x1);
        float v = gp[oy * ow + ox] / (float)((y1 - y0) * (x1 - x0));
        for (int64_t iy = y0; iy < y1; iy++)
          for (int64_t ix = x0; ix < x1; ix++) gxp[iy * w + ix] += v;
      }
    }
  }
}

/* ---- Layers ---- */

typedef struct pool2d {
  nn_layer base;
  int kh, kw, sh, sw, ph, pw;
} pool2d;

typedef struct adaptive_pool2d {
  nn_layer base;
  int oh, ow;
} adaptive_pool2d;

/* Reads x as [N, C, H, W] or [C, H, W] into planes = N * C, h, w. */
static int input_planes(const nn_tensor *x, int64_t *planes, int64_t *h,
                        int64_t *w, nn_error *err) {
  if (x->ndim != 4 && x->ndim != 3) {
    char got[160];
    nn_tensor_shape_str(x, got, sizeof got);
    return nn_seterr(err,
                     "expected input of shape [N, C, H, W] or [C, H, W], "
                     "got %s",
                     got);
  }
  int d = x->ndim;
  *planes = x->shape[0] * (d == 4 ? x->shape[1] : 1);
  *h = x->shape[d - 2];
  *w = x->shape[d - 1];
  return 0;
}

/* x's shape with the last two dimensions replaced by ho, wo. */
static void pooled_shape(const nn_tensor *x, int64_t ho, int64_t wo,
                         int64_t *shape) {
  for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
  shape[x->ndim - 2] = ho;
  shape[x->ndim - 1] = wo;
}

static int check_grad_output(const nn_tensor *gy, int ndim,
                             const int64_t *shape, nn_error *err) {
  if (nn_tensor_has_shape(gy, ndim, shape)) return 0;
  char want[160], got[160];
  nn_shape_str(ndim, shape, want, sizeof want);
  nn_tensor_shape_str(gy, got, sizeof got);
  return nn_seterr(err, "expected grad_output of shape %s, got %s", want, got);
}

/* Checks x for a windowed pool and fills g. */
static int pool_geom(const pool2d *p, const nn_tensor *x, nn_pool2d_geom *g,
                     nn_error *err) {
  int64_t planes = 0, h = 0, w = 0;
  if (input_planes(x, &planes, &h, &w, err)) return -1;
  nn_pool2d_geom_set(g, planes, h, w, p->kh, p->kw, p->sh, p->sw, p->ph,
                     p->pw);
  if (g->ho > 0 && g->wo > 0) return 0;
  char got[160];
  nn_tensor_shape_str(x, got, sizeof got);
  return nn_seterr(err,
                   "expected input with H >= %d and W >= %d "
                   "(kernel_size=(%d, %d), padding=(%d, %d)), got %s",
                   p->kh - 2 * p->ph, p->kw - 2 * p->pw, p->kh, p->kw, p->ph,
                   p->pw, got);
}

static int maxpool_forward(nn_layer *l, nn_tensor *x, nn_tensor **y,
                           nn_error *err) {
  nn_pool2d_geom g;
  int64_t shape[4];
  if (pool_geom((pool2d *)l, x, &g, err)) return -1;
  pooled_shape(x, g.ho, g.wo, shape);
  nn_tensor *out = nn_layer_output(l, x->ndim, shape, err);
  if (!out) return -1;
  nn_maxpool2d_forward_kernel(l->ctx->num_threads, &g, nn_data(x),
                              nn_data(out));
  *y = out;
  return 0;
}

static int maxpool_backward(nn_layer *l, nn_tensor *x, nn_tensor *gy,
                            nn_tensor **gx, nn_error *err) {
  nn_pool2d_geom g;
  int64_t shape[4];
  if (pool_geom((pool2d *)l, x, &g, err)) return -1;
  pooled_shape(x, g.ho, g.wo, shape);
  if (check_grad_output(gy, x->ndim, shape, err)) return -1;
  nn_tensor *out = nn_layer_grad_input(l, x->ndim, x->shape, err);
  if (!out) return -1;
  nn_maxpool2d_backward_kernel(l->ctx->num_threads, &g, nn_data(x),
                               nn_data(gy), nn_data(out));
  *gx = out;
  return 0;
}

static int avgpool_forward(nn_layer *l, nn_tensor *x, nn_tensor **y,
                           nn_error *err) {
  nn_pool2d_geom g;
  int64_t shape[4];
  if (pool_geom((pool2d *)l, x, &g, err)) return -1;
  pooled_shape(x, g.ho, g.wo, shape);
  nn_tensor *out = nn_layer_output(l, x->ndim, shape, err);
  if (!out) return -1;
  nn_avgpool2d_forward_kernel(l->ctx->num_threads, &g, nn_data(x),
                              nn_data(out));
  *y = out;
  return 0;
}

static int avgpool_backward(nn_layer *l, nn_tensor *x, nn_tensor *gy,
                            nn_tensor **gx, nn_error *err) {
  nn_pool2d_geom g;
  int64_t shape[4];
  if (pool_geom((pool2d *)l, x, &g, err)) return -1;
  pooled_shape(x, g.ho, g.wo, shape);
  if (check_grad_output(gy, x->ndim, shape, err)) return -1;
  nn_tensor *out = nn_layer_grad_input(l, x->ndim, x->shape, err);
  if (!out) return -1;
  nn_avgpool2d_backward_kernel(l->ctx->num_threads, &g, nn_data(gy),
                               nn_data(out));
  *gx = out;
  return 0;
}

/* "2" when a == b, else "(2, 3)": PyTorch prints what the user gave, and a
 * user giving one number gets equal pairs. */
static void pair_str(char *buf, size_t n, int a, int b) {
  if (a == b)
    snprintf(buf, n, "%d", a);
  else
    snprintf(buf, n, "(%d, %d)", a, b);
}

static void pool_params_repr(const pool2d *p, char *buf, size_t n) {
  char k[32], s[32], pad[32];
  pair_str(k, sizeof k, p->kh, p->kw);
  pair_str(s, sizeof s, p->sh, p->sw);
  pair_str(pad, sizeof pad, p->ph, p->pw);
  snprintf(buf, n, "kernel_size=%s, stride=%s, padding=%s", k, s, pad);
}

static void maxpool_extra_repr(const nn_layer *l, char *buf, size_t n) {
  char common[128];
  pool_params_repr((const pool2d *)l, common, sizeof common);
  snprintf(buf, n, "%s, dilation=1, ceil_mode=False", common);
}

static void avgpool_extra_repr(const nn_layer *l, char *buf, size_t n) {
  pool_params_repr((const pool2d *)l, buf, n);
}

static const nn_layer_ops maxpool_ops = {
    .type = "MaxPool2d",
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .extra_repr = maxpool_extra_repr,
    .destroy = NULL,
};

static const nn_layer_ops avgpool_ops = {
    .type = "AvgPool2d",
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .extra_repr = avgpool_extra_repr,
    .destroy = NULL,
};

static nn_layer *pool_new(nn_ctx *ctx, const nn_layer_ops *ops, int kh, int kw,
                          int sh, int sw, int ph, int pw, nn_error *err) {
  if (kh <= 0 || kw <= 0) {
    nn_seterr(err, "kernel_size must be positive, got (%d, %d)", kh, kw);
    return NULL;
  }
  if (sh <= 0 || sw <= 0) {
    nn_seterr(err, "stride must be positive, got (%d, %d)", sh, sw);
    return NULL;
  }
  if (ph < 0 || pw < 0) {
    nn_seterr(err, "padding must be non-negative, got (%d, %d)", ph, pw);
    return NULL;
  }
  if (ph > kh / 2 || pw > kw / 2) {
    nn_seterr(err,
              "padding should be at most half of kernel size, got "
              "padding=(%d, %d) and kernel_size=(%d, %d)",
              ph, pw, kh, kw);
    return NULL;
  }
  pool2d *p = calloc(1, sizeof *p);
  if (!p) {
    nn_seterr(err, "out of memory allocating a %s layer", ops->type);
    return NULL;
  }
  nn_layer_init(&p->base, ops, ctx);
  p->kh = kh;
  p->kw = kw;
  p->sh = sh;
  p->sw = sw;
  p->ph = ph;
  p->pw = pw;
  return &p->base;
}

nn_layer *nn_maxpool2d_new(nn_ctx *ctx, int kh, int kw, int sh, int sw, int ph,
                           int pw, nn_error *err) {
  return pool_new(ctx, &maxpool_ops, kh, kw, sh, sw, ph, pw, err);
}

nn_layer *nn_avgpool2d_new(nn_ctx *ctx, int kh, int kw, int sh, int sw, int ph,
                           int pw, nn_error *err) {
  return pool_new(ctx, &avgpool_ops, kh, kw, sh, sw, ph, pw, err);
}

/* Checks x for adaptive pooling: non-empty planes. */
static int adaptive_input(const nn_tensor *x, int64_t *planes, int64_t *h,
                          int64_t *w, nn_error *err) {
  if (input_planes(x, planes, h, w, err)) return -1;
  if (*h > 0 && *w > 0) return 0;
  char got[160];
  nn_tensor_shape_str(x, got, sizeof got);
  return nn_seterr(err,
                   "expected input of shape [N, C, H, W] or [C, H, W] with "
                   "H, W > 0, got %s",
                   got);
}

static int adaptive_forward(nn_layer *l, nn_tensor *x, nn_tensor **y,
                            nn_error *err) {
  const adaptive_pool2d *p = (const adaptive_pool2d *)l;
  int64_t planes = 0, h = 0, w = 0, shape[4];
  if (adaptive_input(x, &planes, &h, &w, err)) return -1;
  pooled_shape(x, p->oh, p->ow, shape);
  nn_tensor *out = nn_layer_output(l, x->ndim, shape, err);
  if (!out) return -1;
  nn_adaptive_avgpool2d_forward_kernel(l->ctx->num_threads, planes, h, w,
                                       p->oh, p->ow, nn_data(x), nn_data(out));
  *y = out;
  return 0;
}

static int adaptive_backward(nn_layer *l, nn_tensor *x, nn_tensor *gy,
                             nn_tensor **gx, nn_error *err) {
  const adaptive_pool2d *p = (const adaptive_pool2d *)l;
  int64_t planes = 0, h = 0, w = 0, shape[4];
  if (adaptive_input(x, &planes, &h, &w, err)) return -1;
  pooled_shape(x, p->oh, p->ow, shape);
  if (check_grad_output(gy, x->ndim, shape, err)) return -1;
  nn_tensor *out = nn_layer_grad_input(l, x->ndim, x->shape, err);
  if (!out) return -1;
  nn_adaptive_avgpool2d_backward_kernel(l->ctx->num_threads, planes, h, w,
                                        p->oh, p->ow, nn_data(gy),
                                        nn_data(out));
  *gx = out;
  return 0;
}

static void adaptive_extra_repr(const nn_layer *l, char *buf, size_t n) {
  const adaptive_pool2d *p = (const adaptive_pool2d *)l;
  snprintf(buf, n, "output_size=(%d, %d)", p->oh, p->ow);
}

static const nn_layer_ops adaptive_ops = {
    .type = "AdaptiveAvgPool2d",
    .forward = adaptive_forward,
    .backward = adaptive_backward,
    .extra_repr = adaptive_extra_repr,
    .destroy = NULL,
};

nn_layer *nn_adaptive_avgpool2d_new(nn_ctx *ctx, int oh, int ow,
                                    nn_error *err) {
  if (oh <= 0 || ow <= 0) {
    nn_seterr(err, "output_size must be positive, got (%d, %d)", oh, ow);
    return NULL;
  }
  adaptive_pool2d *p = calloc(1, sizeof *p);
  if (!p) {
    nn_seterr(err, "out of memory allocating an AdaptiveAvgPool2d layer");
    return NULL;
  }
  nn_layer_init(&p->base, &adaptive_ops, ctx);
  p->oh = oh;
  p->ow = ow;
  return &p->base;
}
