/* conv_layer.c - times one convolution geometry through the runtime's
 * kernels, to see where a model's convolution time goes without Lua:
 *
 *   build/bench_conv THREADS N CIN COUT H W [K [PAD]]
 *
 * prints the best of 8 rounds (3 calls each) of the forward and of the
 * backward (gx and gw) kernel, the path nn_conv2d_*_kernel takes for the
 * geometry (Winograd F(4x4) or F(2x2), dense or im2col), and the achieved
 * GFLOPS counted two ways: as a direct convolution's multiply-adds, and as
 * the multiply-adds the path actually does (Winograd: 36 per 16 or 16 per 4
 * outputs instead of 9 each; tap pairs: the taps that do not fall in the
 * padding), then the
 * forward in eval mode, from weights prepared once (nn_conv2d_prepare).
 * Inputs are deterministic, weights random. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "../runtime/conv.h"

void openblas_set_num_threads(int n);

/* Fills n floats with values in [-1, 1) from a small LCG. */
static void fill(float *a, int64_t n, unsigned seed) {
  for (int64_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    a[i] = (float)((seed >> 8) % 2000) / 1000.0f - 1.0f;
  }
}

/* Seconds of the best of 8 rounds of 3 calls of the forward (bwd = 0; from
 * the prepared weights pw when not NULL) or backward kernel. */
static double best_time(int nt, const nn_conv2d_geom *g, const float *x,
                        const float *w, const float *pw, const float *b,
                        float *y, float *gx, float *gw, float *ws, int bwd) {
  double best = 1e30;
  for (int round = 0; round < 8; round++) {
    double t0 = omp_get_wtime();
    for (int r = 0; r < 3; r++) {
      if (bwd)
        nn_conv2d_backward_kernel(nt, g, x, w, y, gx, gw, NULL, ws);
      else
        nn_conv2d_forward_prepared(nt, g, x, w, pw, b, NULL, y, ws);
    }
    double t = (omp_get_wtime() - t0) / 3;
    if (t < best) best = t;
  }
  return best;
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr,
            "usage: bench_conv THREADS N CIN COUT H W [K [PAD]]\n"
            "times the runtime's convolution kernels on one geometry "
            "(stride 1; K defaults to 3, PAD to K / 2)\n");
    return 2;
  }
  int nt = atoi(argv[1]);
  int64_t n = atoll(argv[2]), cin = atoll(argv[3]), cout = atoll(argv[4]);
  int64_t h = atoll(argv[5]), w = atoll(argv[6]);
  int k = argc > 7 ? atoi(argv[7]) : 3, pad = argc > 8 ? atoi(argv[8]) : k / 2;
  if (nt < 1 || n < 1 || cin < 1 || cout < 1 || h < 1 || w < 1 || k < 1 ||
      pad < 0) {
    fprintf(stderr, "bench_conv: every size must be positive\n");
    return 2;
  }
  openblas_set_num_threads(1);
  nn_conv2d_geom g;
  nn_conv2d_geom_set(&g, n, cin, h, w, cout, k, k, 1, 1, pad, pad);
  if (g.ho < 1 || g.wo < 1) {
    fprintf(stderr, "bench_conv: the kernel does not fit the padded input\n");
    return 2;
  }
  int64_t xs = n * cin * h * w, ys = n * cout * g.ho * g.wo;
  int64_t wn = cout * cin * k * k, wsn = nn_conv2d_workspace_size(&g, nt);
  float *x = malloc(sizeof(float) * (size_t)xs);
  float *gx = malloc(sizeof(float) * (size_t)xs);
  float *y = malloc(sizeof(float) * (size_t)ys);
  float *wt = malloc(sizeof(float) * (size_t)wn);
  float *gw = calloc((size_t)wn, sizeof(float));
  float *b = calloc((size_t)cout, sizeof(float));
  float *ws = malloc(sizeof(float) * (size_t)(wsn > 0 ? wsn : 1));
  if (!x || !gx || !y || !wt || !gw || !b || !ws) {
    fprintf(stderr, "bench_conv: out of memory\n");
    return 1;
  }
  fill(x, xs, 1);
  fill(wt, wn, 2);
  double fwd = best_time(nt, &g, x, wt, NULL, b, y, gx, gw, ws, 0);
  /* eval mode: the layer keeps the prepared weights between calls */
  int64_t pn = nn_conv2d_prepared_size(&g);
  float *pw = pn > 0 ? malloc(sizeof(float) * (size_t)pn) : NULL;
  double eval = fwd;
  if (pw) {
    nn_conv2d_prepare(nt, &g, wt, pw);
    eval = best_time(nt, &g, x, wt, pw, b, y, gx, gw, ws, 0);
  }
  fill(y, ys, 3); /* the backward reads y as grad_output */
  double bwd = best_time(nt, &g, x, wt, NULL, b, y, gx, gw, ws, 1);
  double direct = 2.0 * (double)ys * (double)(cin * k * k);
  double done = 2.0 * nn_conv2d_path_macs(&g, 0);
  const char *path = nn_conv2d_path(&g, 0);
  printf("%lld x %lld->%lld %lldx%lld k%d pad%d, %d thread(s), %s: "
         "forward %.2f ms (%.0f GFLOPS direct, %.0f done), backward %.2f ms "
         "(%.0f direct, %.0f done), eval-mode forward %.2f ms (%s)\n",
         (long long)n, (long long)cin, (long long)cout, (long long)h,
         (long long)w, k, pad, nt, path, fwd * 1e3, direct / fwd / 1e9,
         done / fwd / 1e9, bwd * 1e3, 2 * direct / bwd / 1e9,
         2 * done / bwd / 1e9, eval * 1e3, nn_conv2d_path(&g, pw != NULL));
  free(x), free(gx), free(y), free(wt), free(gw), free(b), free(ws), free(pw);
  return 0;
}
