/* test_winograd.c - the F(2x2, 3x3) kernels against a direct convolution in
 * double precision: forward, input gradient and weight gradient, for odd and
 * even sizes, paddings 0..2, small and large channel counts; bit-identical
 * results on 1 and 3 threads; each on every product kernel the CPU runs;
 * and which geometries take this path. */
#include <stdlib.h>
#include <string.h>

#include "../../runtime/conv.h"
#include "../../runtime/pgemm.h"
#include "../../runtime/winograd.h"
#include "check.h"

/* Deterministic pseudo-random values in [-1, 1). */
static void fill(float *a, int64_t n, unsigned seed) {
  unsigned s = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    a[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
}

static double xat(const nn_conv2d_geom *g, const float *x, int64_t n,
                  int64_t c, int64_t y, int64_t xx) {
  if (y < 0 || y >= g->h || xx < 0 || xx >= g->w) return 0.0;
  return x[((n * g->cin + c) * g->h + y) * g->w + xx];
}

/* Direct forward, backward in double: y, gx, gw (all overwritten). */
static void direct(const nn_conv2d_geom *g, const float *x, const float *w,
                   const float *b, const float *gy, double *y, double *gx,
                   double *gw) {
  int64_t ysz = g->n * g->cout * g->ho * g->wo;
  memset(gx, 0, sizeof(double) * (size_t)(g->n * g->cin * g->h * g->w));
  memset(gw, 0, sizeof(double) * (size_t)(g->cout * g->cin * 9));
  for (int64_t i = 0; i < ysz; i++) y[i] = 0.0;
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t o = 0; o < g->cout; o++)
      for (int64_t oy = 0; oy < g->ho; oy++)
        for (int64_t ox = 0; ox < g->wo; ox++) {
          int64_t yi = ((n * g->cout + o) * g->ho + oy) * g->wo + ox;
          double s = b ? b[o] : 0.0;
          for (int64_t c = 0; c < g->cin; c++)
            for (int i = 0; i < 3; i++)
              for (int j = 0; j < 3; j++) {
                int64_t iy = oy - g->ph + i, ix = ox - g->pw + j;
                double wv = w[((o * g->cin + c) * 3 + i) * 3 + j];
                double xv = xat(g, x, n, c, iy, ix);
                s += wv * xv;
                gw[((o * g->cin + c) * 3 + i) * 3 + j] += gy[yi] * xv;
                if (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w)
                  gx[((n * g->cin + c) * g->h + iy) * g->w + ix] +=
                      gy[yi] * wv;
              }
          y[yi] = s;
        }
}

/* Runs both kernels on one geometry and compares; returns the worst
 * relative error seen (scaled by the largest reference magnitude). */
static void check_case(int64_t n, int64_t cin, int64_t cout, int64_t h,
                       int64_t w, int pad) {
  nn_conv2d_geom g;
  nn_conv2d_geom_set(&g, n, cin, h, w, cout, 3, 3, 1, 1, pad, pad);
  int64_t xs = n * cin * h * w, ws9 = cout * cin * 9;
  int64_t ys = n * cout * g.ho * g.wo;
  float *x = malloc(sizeof(float) * (size_t)xs);
  float *wt = malloc(sizeof(float) * (size_t)ws9);
  float *b = malloc(sizeof(float) * (size_t)cout);
  float *gy = malloc(sizeof(float) * (size_t)ys);
  float *y = malloc(sizeof(float) * (size_t)ys);
  float *gx = malloc(sizeof(float) * (size_t)xs);
  float *gw = malloc(sizeof(float) * (size_t)ws9);
  double *ry = malloc(sizeof(double) * (size_t)ys);
  double *rgx = malloc(sizeof(double) * (size_t)xs);
  double *rgw = malloc(sizeof(double) * (size_t)ws9);
  fill(x, xs, 1);
  fill(wt, ws9, 2);
  fill(b, cout, 3);
  fill(gy, ys, 4);
  int64_t wsz = nn_winograd_workspace_size(&g, 2);
  float *ws = malloc(sizeof(float) * (size_t)wsz);
  nn_winograd_forward(2, &g, x, wt, b, y, ws);
  /* the forward from weights transformed beforehand (eval mode), whose
   * tiles are F(4x4) from 4x4 outputs */
  float *u = malloc(sizeof(float) * (size_t)nn_winograd_weights_size(&g));
  float *yu = malloc(sizeof(float) * (size_t)ys);
  nn_winograd_weights(2, &g, wt, u);
  nn_winograd_forward_ep(2, &g, x, NULL, u, b, NULL, yu, ws);
  for (int64_t i = 0; i < ws9; i++) gw[i] = 0.5f; /* accumulates */
  nn_winograd_backward(2, &g, x, wt, gy, gx, gw, ws);
  direct(&g, x, wt, b, gy, ry, rgx, rgw);
  double ey = 0, my = 0, ex = 0, mx = 0, ew = 0, mw = 0;
  for (int64_t i = 0; i < ys; i++) {
    double d = fabs(y[i] - ry[i]), du = fabs(yu[i] - ry[i]);
    if (d > ey) ey = d;
    if (du > ey) ey = du;
    if (fabs(ry[i]) > my) my = fabs(ry[i]);
  }
  for (int64_t i = 0; i < xs; i++) {
    double d = fabs(gx[i] - rgx[i]);
    if (d > ex) ex = d;
    if (fabs(rgx[i]) > mx) mx = fabs(rgx[i]);
  }
  for (int64_t i = 0; i < ws9; i++) {
    double d = fabs(gw[i] - 0.5 - rgw[i]);
    if (d > ew) ew = d;
    if (fabs(rgw[i]) > mw) mw = fabs(rgw[i]);
  }
  /* F(4x4)'s transforms scale values by up to 8 and 1/24 on the way: with
   * 512 x 9 terms per output its error reaches 1.1e-5 of the largest value
   * (a wrong transform errs by the order of the values themselves). */
  double tol = cin * 9 > 1000 ? 3e-5 : 1e-5;
  if (!(ey <= tol * my && ex <= tol * mx && ew <= tol * mw))
    fprintf(stderr,
            "case n%lld cin%lld cout%lld %lldx%lld pad %d: errors y %g/%g "
            "gx %g/%g gw %g/%g\n",
            (long long)n, (long long)cin, (long long)cout, (long long)h,
            (long long)w, pad, ey, my, ex, mx, ew, mw);
  CHECK(ey <= tol * my);
  CHECK(ex <= tol * mx);
  CHECK(ew <= tol * mw);
  free(x), free(wt), free(b), free(gy), free(y), free(gx), free(gw);
  free(ry), free(rgx), free(rgw), free(ws), free(u), free(yu);
}

/* Every case below on every product kernel this CPU runs (pgemm.h): their
 * panels differ in height (8 rows with AVX-512, 6 with AVX2: padded rows
 * when the channel counts are not multiples of 6; 16 on OpenBLAS). */
static void each_isa(void (*cases)(void)) {
  int old = nn_pgemm_isa();
  for (int isa = NN_PGEMM_GENERIC; isa <= nn_pgemm_best_isa(); isa++) {
    nn_pgemm_select(isa);
    cases();
  }
  nn_pgemm_select(old);
}

static void direct_cases(void) {
  check_case(2, 3, 4, 5, 5, 1);    /* odd output, partial tiles */
  check_case(1, 2, 3, 4, 7, 0);    /* no padding: 2x5 output */
  check_case(3, 5, 2, 6, 3, 2);    /* padding 2 */
  check_case(2, 4, 4, 1, 1, 1);    /* one pixel */
  check_case(2, 4, 3, 2, 2, 1);    /* VGG's last blocks */
  check_case(4, 40, 36, 9, 10, 1); /* several chunks, both paths */
  check_case(64, 64, 64, 4, 4, 1); /* many tiles, 16 per image row */
  check_case(3, 40, 40, 5, 4, 1);  /* F(4x4) when given U: partial tiles */
  /* F(4x4): outputs of at least 8 x 8 */
  check_case(2, 3, 4, 11, 9, 1);    /* partial tiles on both sides */
  check_case(1, 2, 3, 10, 12, 0);   /* no padding: 8x10 output */
  check_case(3, 5, 2, 12, 8, 2);    /* padding 2: 14x10 output */
  check_case(8, 64, 48, 14, 14, 1); /* Fashion-MNIST's second block */
  check_case(2, 33, 35, 70, 8, 1);  /* rows of more than 64 tiles */
  check_case(4, 33, 34, 48, 48, 1); /* chunks of tile rows within samples */
  check_case(1, 512, 512, 8, 8, 1); /* backward in two sweeps (split) */
}

static void test_winograd_direct(void) { each_isa(direct_cases); }

/* The same numbers on 1 and 3 threads (chunks and gemms do not depend on
 * the thread count). */
static void thread_cases(void) {
  for (int kind = 0; kind < 3; kind++) {
  nn_conv2d_geom g;
  /* 5 samples: the threads share each chunk; 16: they take whole chunks
   * (4 of 4 samples), and the weight gradient is summed in 2 groups; 48x48:
   * chunks of tile rows within a sample, taken whole */
  if (kind < 2)
    nn_conv2d_geom_set(&g, kind ? 16 : 5, 33, kind ? 13 : 7, 9, 34, 3, 3, 1, 1,
                       1, 1);
  else
    nn_conv2d_geom_set(&g, 4, 33, 48, 48, 34, 3, 3, 1, 1, 1, 1);
  int64_t xs = g.n * g.cin * g.h * g.w, ws9 = g.cout * g.cin * 9;
  int64_t ys = g.n * g.cout * g.ho * g.wo;
  float *x = malloc(sizeof(float) * (size_t)xs);
  float *w = malloc(sizeof(float) * (size_t)ws9);
  float *gy = malloc(sizeof(float) * (size_t)ys);
  float *y[2], *gx[2], *gw[2];
  float *ws = malloc(sizeof(float) * (size_t)nn_winograd_workspace_size(&g, 3));
  fill(x, xs, 5);
  fill(w, ws9, 6);
  fill(gy, ys, 7);
  for (int k = 0; k < 2; k++) {
    y[k] = malloc(sizeof(float) * (size_t)ys);
    gx[k] = malloc(sizeof(float) * (size_t)xs);
    gw[k] = calloc((size_t)ws9, sizeof(float));
    nn_winograd_forward(k ? 3 : 1, &g, x, w, NULL, y[k], ws);
    nn_winograd_backward(k ? 3 : 1, &g, x, w, gy, gx[k], gw[k], ws);
  }
  CHECK(memcmp(y[0], y[1], sizeof(float) * (size_t)ys) == 0);
  CHECK(memcmp(gx[0], gx[1], sizeof(float) * (size_t)xs) == 0);
  CHECK(memcmp(gw[0], gw[1], sizeof(float) * (size_t)ws9) == 0);
  for (int k = 0; k < 2; k++) free(y[k]), free(gx[k]), free(gw[k]);
  free(x), free(w), free(gy), free(ws);
  }
}

static void test_winograd_threads(void) { each_isa(thread_cases); }

/* Which geometries take the Winograd path. */
static void test_winograd_suits(void) {
  nn_conv2d_geom g;
  nn_conv2d_geom_set(&g, 64, 64, 32, 32, 64, 3, 3, 1, 1, 1, 1);
  CHECK(nn_winograd_suits(&g));
  nn_conv2d_geom_set(&g, 64, 3, 32, 32, 64, 3, 3, 1, 1, 1, 1);
  CHECK(!nn_winograd_suits(&g)); /* too few input channels */
  nn_conv2d_geom_set(&g, 64, 64, 32, 32, 64, 3, 3, 2, 2, 1, 1);
  CHECK(!nn_winograd_suits(&g)); /* stride 2 */
  nn_conv2d_geom_set(&g, 64, 64, 32, 32, 64, 5, 5, 1, 1, 2, 2);
  CHECK(!nn_winograd_suits(&g)); /* 5x5 */
  nn_conv2d_geom_set(&g, 64, 64, 32, 32, 64, 3, 3, 1, 1, 3, 3);
  CHECK(!nn_winograd_suits(&g)); /* padding 3 */
  nn_conv2d_geom_set(&g, 64, 512, 2, 2, 512, 3, 3, 1, 1, 1, 1);
  CHECK(!nn_winograd_suits(&g)); /* 2x2 output */
  nn_conv2d_geom_set(&g, 64, 512, 4, 4, 512, 3, 3, 1, 1, 1, 1);
  CHECK(nn_winograd_suits(&g));
  nn_conv2d_geom_set(&g, 1, 1024, 8, 8, 512, 3, 3, 1, 1, 1, 1);
  CHECK(!nn_winograd_suits(&g)); /* workspace bound */
}

int main(void) {
  RUN(test_winograd_direct);
  RUN(test_winograd_threads);
  RUN(test_winograd_suits);
  return check_report("winograd");
}
