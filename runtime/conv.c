/* conv.c - Conv2d: im2col + nn_gemm kernels and the layer around them. */
#include "conv.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "layer.h"
#include "winograd.h"

/* Forward, small images: samples are unfolded side by side into one column
 * matrix [k, nb * p] for chunks of nb samples, so that one gemm per chunk
 * replaces nb skinny ones.  Used when an image has fewer than BATCH_P
 * output positions, with chunks of about FWD_COLS columns (the gemm is then
 * as fast as on large shapes while the columns stay in cache), one chunk
 * per thread; and for shallow kernels (k = cin * kh * kw <= 32: first
 * layers) with chunks of about FWD_COLS_SHALLOW columns, whose gemms
 * OpenBLAS runs faster than a tile's, the bias added as the chunk is
 * scattered (Fashion-MNIST CNN's first layer 0.8 -> 0.55 ms).
 * Forward, larger images: one sample per thread, its output rows in tiles
 * whose columns take about TILE_FLOATS (see tile_rows).
 * Every chunk also holds at most about CHUNK_BUDGET floats.  Chunks and
 * tiles depend on the shapes only, never on the thread count. */
#define CHUNK_BUDGET ((int64_t)1 << 22)
#define BATCH_P 256
#define FWD_COLS 128
#define FWD_COLS_SHALLOW 1024
#define TILE_FLOATS ((int64_t)1 << 17)
#define TILE_MIN_COUT 64

/* The weight gradient is reduced by chunks of about GW_COLS columns, as
 * gwt [k, cout] (transposed) when GW_T_MIN_COUT <= cout <= GW_T_MAX_COUT
 * (both measured fastest with OpenBLAS on VGG's shapes), split into at most
 * GW_BLOCKS blocks of input channels of at least GW_BLOCK_ROWS kernel taps
 * that the threads reduce without any barrier.  More blocks make smaller
 * gemms (10% slower on one thread with 8 blocks): 2 suits 2 cores. */
#define GW_COLS 1024
#define GW_T_MIN_COUT 64
#define GW_T_MAX_COUT 128
#define GW_BLOCKS 2
#define GW_BLOCK_ROWS 128
/* Kernels too short for blocks (a first layer's 1-3 input channels) split
 * the batch instead, into GW_GROUPS runs of samples whose partial sums are
 * added in order (one thread did all of VGG's first layer: 5 ms a step). */
#define GW_GROUPS 2

/* grad_input is computed as a convolution (a gemm with cin rows and
 * cout * kh * kw depth) when cin >= GX_MIN_CIN and cout <= cin; otherwise
 * the col2im form (cin * kh * kw rows, depth cout) measured faster. */
#define GX_MIN_CIN 64

/* Inputs no larger than the kernel (h * w <= kh * kw: VGG16's 2x2 layers at
 * 32x32) take the path by tap pairs when the batch has at least TAPS_MIN_N
 * samples, or in eval mode whatever the batch (see taps_forward), with at
 * most TAPS_POSITIONS input and output positions (it makes a gemm per pair
 * of them); its gemms are cut into blocks of TAPS_COLS columns (measured
 * best at 512 on VGG's 512-channel layers: fewer, larger gemms). */
#define TAPS_MIN_N 16
#define TAPS_POSITIONS 64
#define TAPS_COLS 512

int64_t nn_conv_out_size(int64_t in, int k, int s, int p) {
  int64_t span = in + 2 * (int64_t)p - k;
  if (span < 0 || s <= 0) return 0;
  return span / s + 1;
}

void nn_conv2d_geom_set(nn_conv2d_geom *g, int64_t n, int64_t cin, int64_t h,
                        int64_t w, int64_t cout, int kh, int kw, int sh,
                        int sw, int ph, int pw) {
  g->n = n;
  g->cin = cin;
  g->h = h;
  g->w = w;
  g->cout = cout;
  g->kh = kh;
  g->kw = kw;
  g->sh = sh;
  g->sw = sw;
  g->ph = ph;
  g->pw = pw;
  g->ho = nn_conv_out_size(h, kh, sh, ph);
  g->wo = nn_conv_out_size(w, kw, sw, pw);
}

/* The output positions o in [*lo, *hi) whose input index o * s + off lies
 * in [0, in), clamped to [0, out). */
static void tap_range(int64_t off, int s, int64_t in, int64_t out, int64_t *lo,
                      int64_t *hi) {
  int64_t l = off < 0 ? (-off + s - 1) / s : 0;
  int64_t h = in - 1 - off < 0 ? 0 : (in - 1 - off) / s + 1;
  if (h > out) h = out;
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

/* nn_im2col restricted to the output rows [oy0, oy1): col[r * ldc + q]
 * for q = (oy - oy0) * wo + ox. */
static void im2col_rows(const nn_conv2d_geom *g, const float *x, int64_t oy0,
                        int64_t oy1, float *col, int64_t ldc) {
  const int64_t wo = g->wo;
  for (int64_t c = 0; c < g->cin; c++) {
    for (int i = 0; i < g->kh; i++) {
      int64_t oy_lo, oy_hi;
      tap_range(i - g->ph, g->sh, g->h, g->ho, &oy_lo, &oy_hi);
      for (int j = 0; j < g->kw; j++) {
        int64_t ox_lo, ox_hi;
        tap_range(j - g->pw, g->sw, g->w, wo, &ox_lo, &ox_hi);
        float *dst = col + ((c * g->kh + i) * g->kw + j) * ldc;
        for (int64_t oy = oy0; oy < oy1; oy++) {
          float *d = dst + (oy - oy0) * wo;
          if (oy < oy_lo || oy >= oy_hi) {
            memset(d, 0, (size_t)wo * sizeof(float));
            continue;
          }
          const float *row = x + (c * g->h + oy * g->sh + i - g->ph) * g->w;
          int64_t ox = 0;
          for (; ox < ox_lo; ox++) d[ox] = 0.0f;
          if (g->sw == 1) {
            memcpy(d + ox_lo, row + ox_lo + j - g->pw,
                   (size_t)(ox_hi - ox_lo) * sizeof(float));
            ox = ox_hi;
          } else {
            for (; ox < ox_hi; ox++) d[ox] = row[ox * g->sw + j - g->pw];
          }
          for (; ox < wo; ox++) d[ox] = 0.0f;
        }
      }
    }
  }
}

void nn_im2col(const nn_conv2d_geom *g, const float *x, float *col,
               int64_t ldc) {
  im2col_rows(g, x, 0, g->ho, col, ldc);
}

void nn_col2im(const nn_conv2d_geom *g, const float *col, int64_t ldc,
               float *x) {
  const int64_t wo = g->wo;
  for (int64_t c = 0; c < g->cin; c++) {
    for (int i = 0; i < g->kh; i++) {
      int64_t oy_lo, oy_hi;
      tap_range(i - g->ph, g->sh, g->h, g->ho, &oy_lo, &oy_hi);
      for (int j = 0; j < g->kw; j++) {
        int64_t ox_lo, ox_hi;
        tap_range(j - g->pw, g->sw, g->w, wo, &ox_lo, &ox_hi);
        const float *src = col + ((c * g->kh + i) * g->kw + j) * ldc;
        for (int64_t oy = oy_lo; oy < oy_hi; oy++) {
          const float *s = src + oy * wo;
          float *row = x + (c * g->h + oy * g->sh + i - g->ph) * g->w;
          for (int64_t ox = ox_lo; ox < ox_hi; ox++)
            row[ox * g->sw + j - g->pw] += s[ox];
        }
      }
    }
  }
}

/* The columns of nb samples xs floats apart from x (sample s's at col + s *
 * ho * wo, row stride ld), as nn_im2col for each.  Small outputs (VGG's
 * 2x2 and 4x4) are written row by row across the samples, element by
 * element: per sample, nn_im2col's memcpy and memset per output row of 2-4
 * floats into rows ld apart took longer than the gemm (2.4 ms of a 512-
 * channel 2x2 layer's 10). */
static void im2col_samples(const nn_conv2d_geom *g, const float *x,
                           int64_t xs, int64_t nb, float *col, int64_t ld) {
  int64_t p = g->ho * g->wo;
  if (g->wo >= 8) {
    for (int64_t s = 0; s < nb; s++) nn_im2col(g, x + s * xs, col + s * p, ld);
    return;
  }
  for (int64_t c = 0; c < g->cin; c++)
    for (int i = 0; i < g->kh; i++)
      for (int j = 0; j < g->kw; j++) {
        float *dst = col + ((c * g->kh + i) * g->kw + j) * ld;
        for (int64_t s = 0; s < nb; s++) {
          const float *xc = x + s * xs + c * g->h * g->w;
          float *d = dst + s * p;
          for (int64_t oy = 0; oy < g->ho; oy++) {
            int64_t iy = oy * g->sh + i - g->ph;
            int in_y = iy >= 0 && iy < g->h;
            for (int64_t ox = 0; ox < g->wo; ox++) {
              int64_t ix = ox * g->sw + j - g->pw;
              d[oy * g->wo + ox] =
                  in_y && ix >= 0 && ix < g->w ? xc[iy * g->w + ix] : 0.0f;
            }
          }
        }
      }
}

/* A 1x1 kernel with stride 1 and no padding: the columns are the image. */
static int is_pointwise(const nn_conv2d_geom *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 &&
         g->pw == 0;
}

/* Samples per chunk of the batched lowering (see CHUNK_BUDGET), balanced so
 * that the chunks of a batch have nearly equal sizes, with at most about
 * `cols` columns per chunk (no limit when 0). */
static int64_t chunk_samples(const nn_conv2d_geom *g, int64_t cols) {
  int64_t p = g->ho * g->wo;
  int64_t per = (g->cin * g->kh * g->kw + g->cout) * p;
  int64_t most = per > 0 ? CHUNK_BUDGET / per : g->n;
  if (cols > 0 && p > 0 && most > (cols + p - 1) / p) most = (cols + p - 1) / p;
  if (most > g->n) most = g->n;
  if (most < 1) most = 1;
  int64_t nchunks = (g->n + most - 1) / most;
  return nchunks > 0 ? (g->n + nchunks - 1) / nchunks : 1;
}

/* A shallow kernel (see FWD_COLS_SHALLOW): k = cin * kh * kw <= 32. */
static int is_shallow(const nn_conv2d_geom *g) {
  return g->cin * g->kh * g->kw <= 32;
}

/* Whether the forward pass lowers whole chunks of the batch at once. */
static int forward_batched(const nn_conv2d_geom *g) {
  return g->n > 1 && (g->ho * g->wo < BATCH_P || is_shallow(g));
}

/* Columns per forward chunk (see FWD_COLS). */
static int64_t fwd_cols(const nn_conv2d_geom *g) {
  return is_shallow(g) ? FWD_COLS_SHALLOW : FWD_COLS;
}

/* y[c * ld + i] += b[c] for c < cout, i < q: one sample's output rows, or a
 * tile of them. */
static void add_bias(const float *b, int64_t cout, int64_t q, int64_t ld,
                     float *y) {
  for (int64_t c = 0; c < cout; c++) {
    float *yc = y + c * ld;
    for (int64_t i = 0; i < q; i++) yc[i] += b[c];
  }
}

/* Output rows per tile of the per-sample forward: the tile's columns
 * (k * rows * wo floats) stay within about TILE_FLOATS (half of a 1 MB L2),
 * so im2col's writes are still cached when the gemm packs them, with at
 * least FWD_COLS columns per gemm.  With fewer than TILE_MIN_COUT output
 * channels the gemm is too short for tiles to pay (measured): one tile. */
static int64_t tile_rows(const nn_conv2d_geom *g) {
  int64_t k = g->cin * g->kh * g->kw, wo = g->wo > 0 ? g->wo : 1;
  if (g->cout < TILE_MIN_COUT) return g->ho > 0 ? g->ho : 1;
  int64_t r = k > 0 ? TILE_FLOATS / (k * wo) : g->ho;
  int64_t rmin = (FWD_COLS + wo - 1) / wo;
  if (r < rmin) r = rmin;
  return r < 1 ? 1 : r;
}

/* Forward of sample n with gemm on `threads` threads and col as scratch,
 * tile by tile of output rows. */
static void forward_one(const nn_conv2d_geom *g, int threads, int64_t n,
                        const float *x, const float *w, const float *b,
                        const nn_conv_epilogue *ep, float *y, float *col) {
  int64_t k = g->cin * g->kh * g->kw, p = g->ho * g->wo;
  const float *xn = x + n * g->cin * g->h * g->w;
  float *yn = y + n * g->cout * p;
  if (is_pointwise(g)) {
    /* A 1x1 kernel reads the image as it is. */
    nn_gemm(threads, 0, 0, g->cout, p, k, 1.0f, w, k, xn, p, 0.0f, yn, p);
    if (b) add_bias(b, g->cout, p, p, yn);
    for (int64_t c = 0; ep && c < g->cout; c++)
      nn_conv_epilogue_row(ep, c, yn + c * p, p);
    return;
  }
  /* The bias is added to each tile while it is still in cache. */
  int64_t rows = tile_rows(g);
  for (int64_t oy0 = 0; oy0 < g->ho; oy0 += rows) {
    int64_t oy1 = oy0 + rows < g->ho ? oy0 + rows : g->ho;
    int64_t q = (oy1 - oy0) * g->wo;
    float *yt = yn + oy0 * g->wo;
    im2col_rows(g, xn, oy0, oy1, col, q);
    nn_gemm(threads, 0, 0, g->cout, q, k, 1.0f, w, k, col, q, 0.0f, yt, p);
    if (b) add_bias(b, g->cout, q, p, yt);
    for (int64_t c = 0; ep && c < g->cout; c++)
      nn_conv_epilogue_row(ep, c, yt + c * p, q);
  }
}

/* Forward of the nb samples from n0 as one chunk, on one thread: col
 * [k, nb * p] holds the chunk's columns, out [cout, nb * p] the gemm's
 * result, scattered to y plus the bias. */
static void forward_chunk(const nn_conv2d_geom *g, int64_t n0, int64_t nb,
                          const float *x, const float *w, const float *b,
                          const nn_conv_epilogue *ep, float *y, float *col) {
  int64_t k = g->cin * g->kh * g->kw, p = g->ho * g->wo;
  int64_t xs = g->cin * g->h * g->w, cout = g->cout, ld = nb * p;
  float *out = col + nb * k * p;
  im2col_samples(g, x + n0 * xs, xs, nb, col, ld);
  nn_gemm(1, 0, 0, cout, ld, k, 1.0f, w, k, col, ld, 0.0f, out, ld);
  for (int64_t s = 0; s < nb; s++)
    for (int64_t c = 0; c < cout; c++) {
      const float *src = out + c * ld + s * p;
      float *dst = y + ((n0 + s) * cout + c) * p;
      float bc = b ? b[c] : 0.0f;
      for (int64_t i = 0; i < p; i++) dst[i] = src[i] + bc;
      if (ep) nn_conv_epilogue_row(ep, c, dst, p);
    }
}

/* Forward by chunks, one chunk per thread at a time.  A chunk's gemm is
 * never split: OpenBLAS picks its kernel (direct, small-matrix or blocked)
 * by shape, so a split would make the rounding depend on the thread count.
 * FWD_COLS is small enough for two chunks even on 2x2 images. */
static void forward_chunks(int nthreads, const nn_conv2d_geom *g,
                           const float *x, const float *w, const float *b,
                           const nn_conv_epilogue *ep, float *y, float *ws) {
  int64_t chunk = chunk_samples(g, fwd_cols(g));
  int64_t nchunks = (g->n + chunk - 1) / chunk;
  int64_t slot = chunk * (g->cin * g->kh * g->kw + g->cout) * g->ho * g->wo;
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t ci = 0; ci < nchunks; ci++) {
    int64_t n0 = ci * chunk;
    int64_t nb = g->n - n0 < chunk ? g->n - n0 : chunk;
    forward_chunk(g, n0, nb, x, w, b, ep, y, ws + omp_get_thread_num() * slot);
  }
}

/* ---- Small inputs: one gemm per pair of positions ----
 * When an input plane is no larger than the kernel, every output position q
 * sees the input positions r through one tap t(q, r) each, so
 *   Y_q = sum over r of X_r W_t(q,r)^T
 * with X_r [n, cin] the inputs at position r, Y_q [n, cout] and W_t
 * [cout, cin] the weights of tap t: one gemm per (q, r) pair whose tap lies
 * in the kernel, on the whole batch, with no unfolding and no
 * multiplications by padding (im2col on a 2x2 input with a 3x3 kernel
 * spends 5 of every 9 on it; VGG16's 512-channel 2x2 layers, batch 64:
 * forward 7.7 -> 4.7-4.9 ms, backward 14.8 -> 8.8-10.2 ms).  The weights
 * are laid out by tap (wt [kh*kw][cout][cin]: the prepared form a Conv2d
 * keeps in eval mode), the batch by position (xr [h*w][n][cin], yq [ho*wo][n][cout]).
 * Backward: dX_r = sum over q of dY_q W_t(q,r), dW_t = sum over the pairs
 * of tap t of dY_q^T X_r.  Every gemm is cut into blocks of TAPS_COLS
 * columns that the threads share, and each block sums its pairs in a fixed
 * order, so results do not depend on the thread count. */

/* The kernel tap (ky * kw + kx) through which input position r reaches
 * output position q, or -1. */
static int taps_tap(const nn_conv2d_geom *g, int64_t q, int64_t r) {
  int64_t oy = q / g->wo, ox = q % g->wo, iy = r / g->w, ix = r % g->w;
  int64_t ky = iy - oy * g->sh + g->ph, kx = ix - ox * g->sw + g->pw;
  if (ky < 0 || ky >= g->kh || kx < 0 || kx >= g->kw) return -1;
  return (int)(ky * g->kw + kx);
}

/* Whether g's input is small enough for the path by tap pairs. */
static int taps_fits(const nn_conv2d_geom *g) {
  int64_t hw = g->h * g->w, q = g->ho * g->wo;
  return hw > 0 && q > 0 && hw <= g->kh * g->kw && hw <= TAPS_POSITIONS &&
         q <= TAPS_POSITIONS && !nn_winograd_suits(g);
}

/* Whether g takes that path, with weights laid out beforehand (prepared:
 * whatever the batch) or without. */
static int takes_taps(const nn_conv2d_geom *g, int prepared) {
  return (prepared || g->n >= TAPS_MIN_N) && taps_fits(g);
}

/* Floats of wt, of xr and of yq (or the gradients of the same shapes). */
static int64_t taps_wt(const nn_conv2d_geom *g) {
  return g->kh * g->kw * g->cout * g->cin;
}
static int64_t taps_xr(const nn_conv2d_geom *g) {
  return g->h * g->w * g->n * g->cin;
}
static int64_t taps_yq(const nn_conv2d_geom *g) {
  return g->ho * g->wo * g->n * g->cout;
}

/* Workspace floats of the path: wt, xr and yq forward; wt, xr, dY by
 * position, dX by position and dW by tap backward. */
static int64_t taps_workspace(const nn_conv2d_geom *g) {
  return 2 * taps_wt(g) + 2 * taps_xr(g) + taps_yq(g);
}

/* Blocks of TAPS_COLS columns in width. */
static int64_t taps_blocks(int64_t width) {
  return (width + TAPS_COLS - 1) / TAPS_COLS;
}

/* Task k of a loop over (position, block of columns of width): returns the
 * position, with the block's first column *j0 and its width *nj. */
static int64_t taps_task(int64_t k, int64_t width, int64_t *j0,
                         int64_t *nj) {
  int64_t nb = taps_blocks(width);
  *j0 = (k % nb) * TAPS_COLS;
  *nj = width - *j0 < TAPS_COLS ? width - *j0 : TAPS_COLS;
  return k / nb;
}

/* Zeroes rows x cols floats, rows ld apart (a sum over no pairs). */
static void taps_zero(float *dst, int64_t rows, int64_t cols, int64_t ld) {
  for (int64_t i = 0; i < rows; i++)
    memset(dst + i * ld, 0, (size_t)cols * sizeof(float));
}

/* wt[t][o][c] = w[o][c][t]; omp-for over outputs. */
static void taps_weights(const nn_conv2d_geom *g, const float *w, float *wt) {
  int64_t kk = g->kh * g->kw, plane = g->cout * g->cin;
#pragma omp for schedule(static)
  for (int64_t o = 0; o < g->cout; o++) {
    const float *src = w + o * g->cin * kk;
    for (int64_t t = 0; t < kk; t++) {
      float *d = wt + t * plane + o * g->cin;
      for (int64_t c = 0; c < g->cin; c++) d[c] = src[c * kk + t];
    }
  }
}

/* dst[p][n][c] = src[n][c][p] for p < np positions and c < nc channels;
 * omp-for over samples. */
static void taps_by_position(const nn_conv2d_geom *g, const float *src,
                             int64_t nc, int64_t np, float *dst) {
#pragma omp for schedule(static)
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t c = 0; c < nc; c++) {
      const float *s = src + (n * nc + c) * np;
      for (int64_t p = 0; p < np; p++) dst[(p * g->n + n) * nc + c] = s[p];
    }
}

/* The forward: wt from pw when given, else laid out from w in ws. */
static void taps_forward(int nthreads, const nn_conv2d_geom *g,
                         const float *x, const float *w, const float *pw,
                         const float *b, const nn_conv_epilogue *ep, float *y,
                         float *ws) {
  int64_t q = g->ho * g->wo, hw = g->h * g->w, n = g->n;
  int64_t plane = g->cout * g->cin;
  float *wt = ws, *xr = ws + taps_wt(g), *yq = xr + taps_xr(g);
  const float *wk = pw ? pw : wt;
#pragma omp parallel num_threads(nthreads)
  {
    if (!pw) taps_weights(g, w, wt);
    taps_by_position(g, x, g->cin, hw, xr);
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < q * taps_blocks(g->cout); k++) {
      int64_t j0, nj, p = taps_task(k, g->cout, &j0, &nj); /* Y_p's block */
      float *dst = yq + p * n * g->cout + j0;
      float beta = 0.0f;
      for (int64_t r = 0; r < hw; r++) {
        int t = taps_tap(g, p, r);
        if (t < 0) continue;
        nn_gemm(1, 0, 1, n, nj, g->cin, 1.0f, xr + r * n * g->cin, g->cin,
                wk + t * plane + j0 * g->cin, g->cin, beta, dst, g->cout);
        beta = 1.0f;
      }
      if (beta == 0.0f) /* every window of p lies in the padding */
        taps_zero(dst, n, nj, g->cout);
    }
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++)
      for (int64_t o = 0; o < g->cout; o++) {
        float *row = y + (i * g->cout + o) * q;
        float bias = b ? b[o] : 0.0f;
        for (int64_t p = 0; p < q; p++)
          row[p] = yq[(p * n + i) * g->cout + o] + bias;
        if (ep) nn_conv_epilogue_row(ep, o, row, q);
      }
  }
}

/* The backward: gx (when not NULL) overwritten, gw (when not NULL)
 * accumulated; ws holds taps_workspace floats. */
static void taps_backward(int nthreads, const nn_conv2d_geom *g,
                          const float *x, const float *w, const float *gy,
                          float *gx, float *gw, float *ws) {
  int64_t q = g->ho * g->wo, hw = g->h * g->w, n = g->n;
  int64_t kk = g->kh * g->kw, plane = g->cout * g->cin;
  float *wt = ws, *gwt = wt + taps_wt(g), *xr = gwt + taps_wt(g);
  float *gxr = xr + taps_xr(g), *gyq = gxr + taps_xr(g);
#pragma omp parallel num_threads(nthreads)
  {
    taps_by_position(g, gy, g->cout, q, gyq);
    if (gx) taps_weights(g, w, wt);
    if (gw) taps_by_position(g, x, g->cin, hw, xr);
    if (gx) {
#pragma omp for schedule(dynamic, 1) nowait
      for (int64_t k = 0; k < hw * taps_blocks(g->cin); k++) {
        int64_t j0, nj, r = taps_task(k, g->cin, &j0, &nj); /* dX_r's */
        float *dst = gxr + r * n * g->cin + j0;
        float beta = 0.0f;
        for (int64_t p = 0; p < q; p++) {
          int t = taps_tap(g, p, r);
          if (t < 0) continue;
          nn_gemm(1, 0, 0, n, nj, g->cout, 1.0f, gyq + p * n * g->cout,
                  g->cout, wt + t * plane + j0, g->cin, beta, dst, g->cin);
          beta = 1.0f;
        }
        if (beta == 0.0f) /* r reaches no output */
          taps_zero(dst, n, nj, g->cin);
      }
    }
    if (gw) {
#pragma omp for schedule(dynamic, 1)
      for (int64_t k = 0; k < kk * taps_blocks(g->cout); k++) {
        int64_t j0, nj, t = taps_task(k, g->cout, &j0, &nj); /* dW_t's rows */
        float *dst = gwt + t * plane + j0 * g->cin;
        float beta = 0.0f;
        for (int64_t p = 0; p < q; p++)
          for (int64_t r = 0; r < hw; r++) {
            if (taps_tap(g, p, r) != t) continue;
            nn_gemm(1, 1, 0, nj, g->cin, n, 1.0f, gyq + p * n * g->cout + j0,
                    g->cout, xr + r * n * g->cin, g->cin, beta, dst, g->cin);
            beta = 1.0f;
          }
        if (beta == 0.0f) /* a tap no pair uses: no gradient */
          taps_zero(dst, nj, g->cin, g->cin);
      }
#pragma omp for schedule(static)
      for (int64_t o = 0; o < g->cout; o++)
        for (int64_t c = 0; c < g->cin; c++) {
          float *k = gw + (o * g->cin + c) * kk;
          for (int64_t t = 0; t < kk; t++)
            k[t] += gwt[t * plane + o * g->cin + c];
        }
    } else {
#pragma omp barrier /* the dX loop ends with nowait */
    }
    if (gx) {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < g->cin; c++) {
          float *row = gx + (i * g->cin + c) * hw;
          for (int64_t r = 0; r < hw; r++)
            row[r] = gxr[(r * n + i) * g->cin + c];
        }
    }
  }
}

const char *nn_conv2d_path(const nn_conv2d_geom *g, int prepared) {
  if (nn_winograd_suits(g))
    return nn_winograd_tile(g, prepared) == 4 ? "Winograd F(4x4)"
                                              : "Winograd F(2x2)";
  if (takes_taps(g, prepared)) return "taps";
  return "im2col";
}

double nn_conv2d_path_macs(const nn_conv2d_geom *g, int prepared) {
  double pair = (double)g->n * (double)(g->cin * g->cout);
  if (nn_winograd_suits(g)) { /* (m + 2)^2 products per tile */
    int64_t m = nn_winograd_tile(g, prepared);
    int64_t tiles = ((g->ho + m - 1) / m) * ((g->wo + m - 1) / m);
    return pair * (double)(tiles * (m + 2) * (m + 2));
  }
  if (takes_taps(g, prepared)) { /* a gemm a pair */
    int64_t pairs = 0;
    for (int64_t q = 0; q < g->ho * g->wo; q++)
      for (int64_t r = 0; r < g->h * g->w; r++)
        pairs += taps_tap(g, q, r) >= 0;
    return pair * (double)pairs;
  }
  return pair * (double)(g->ho * g->wo * g->kh * g->kw);
}

void nn_conv2d_forward_kernel(int nthreads, const nn_conv2d_geom *g,
                              const float *x, const float *w, const float *b,
                              float *y, float *ws) {
  nn_conv2d_forward_prepared(nthreads, g, x, w, NULL, b, NULL, y, ws);
}

int64_t nn_conv2d_prepared_size(const nn_conv2d_geom *g) {
  if (g->n <= 0 || g->cin * g->cout == 0) return 0;
  if (nn_winograd_suits(g)) return nn_winograd_weights_size(g);
  return taps_fits(g) ? taps_wt(g) : 0;
}

int64_t nn_conv2d_prepared_key(const nn_conv2d_geom *g) {
  if (nn_winograd_suits(g)) return nn_winograd_tile(g, 1);
  return taps_fits(g) ? 1 : 0; /* the weights by tap, whatever the input */
}

void nn_conv2d_prepare(int nthreads, const nn_conv2d_geom *g, const float *w,
                       float *pw) {
  if (nn_conv2d_prepared_size(g) == 0) return;
  if (nn_winograd_suits(g)) {
    nn_winograd_weights(nthreads, g, w, pw);
    return;
  }
#pragma omp parallel num_threads(nthreads)
  taps_weights(g, w, pw);
}

void nn_conv2d_forward_prepared(int nthreads, const nn_conv2d_geom *g,
                                const float *x, const float *w,
                                const float *pw, const float *b,
                                const nn_conv_epilogue *ep, float *y,
                                float *ws) {
  int64_t slot = g->cin * g->kh * g->kw * g->ho * g->wo;
  if (g->n <= 0 || slot == 0 || g->cout == 0) return;
  if (nn_winograd_suits(g)) {
    nn_winograd_forward_ep(nthreads, g, x, w, pw, b, ep, y, ws);
    return;
  }
  if (takes_taps(g, pw != NULL)) {
    taps_forward(nthreads, g, x, w, pw, b, ep, y, ws);
    return;
  }
  if (forward_batched(g)) {
    forward_chunks(nthreads, g, x, w, b, ep, y, ws);
    return;
  }
  if (nthreads > 1 && g->n < nthreads) {
    /* Too few samples to go round: parallelise inside each gemm. */
    for (int64_t n = 0; n < g->n; n++)
      forward_one(g, nthreads, n, x, w, b, ep, y, ws);
    return;
  }
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t n = 0; n < g->n; n++)
    forward_one(g, 1, n, x, w, b, ep, y, ws + omp_get_thread_num() * slot);
}

/* gb[c] += sum of gy[:, c, :], each channel summed in a fixed order, by
 * blocks of GB_BLOCK channels read sample by sample, in memory order (one
 * channel at a time read planes cout * ho * wo floats apart, which thrashed
 * the cache on small images). */
#define GB_BLOCK 64
static void grad_bias(int nthreads, const nn_conv2d_geom *g, const float *gy,
                      float *gb) {
  int64_t p = g->ho * g->wo, t = nthreads > 1 ? nthreads : 1;
  /* at least one block per thread; a channel's sum does not depend on it */
  int64_t bs = (g->cout + t - 1) / t < GB_BLOCK ? (g->cout + t - 1) / t
                                                 : GB_BLOCK;
  int64_t nblocks = (g->cout + bs - 1) / bs;
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t k = 0; k < nblocks; k++) {
    int64_t c0 = k * bs, nc = g->cout - c0 < bs ? g->cout - c0 : bs;
    double lane[GB_BLOCK][8] = {{0}}; /* 8 partial sums: the loop vectorises */
    for (int64_t n = 0; n < g->n; n++)
      for (int64_t c = 0; c < nc; c++) {
        const float *src = gy + (n * g->cout + c0 + c) * p;
        double *l = lane[c];
        int64_t i = 0;
        for (; i + 8 <= p; i += 8)
          for (int j = 0; j < 8; j++) l[j] += src[i + j];
        for (; i < p; i++) l[i % 8] += src[i];
      }
    for (int64_t c = 0; c < nc; c++) {
      double s = 0.0;
      for (int j = 0; j < 8; j++) s += lane[c][j];
      gb[c0 + c] += (float)s;
    }
  }
}

/* gx for sample n: gcol = w^T gy_n, folded back into the image. */
static void grad_input_one(const nn_conv2d_geom *g, int threads, int64_t n,
                           const float *w, const float *gy, float *gx,
                           float *col) {
  int64_t k = g->cin * g->kh * g->kw, p = g->ho * g->wo;
  int64_t xs = g->cin * g->h * g->w;
  const float *gyn = gy + n * g->cout * p;
  float *gxn = gx + n * xs;
  if (is_pointwise(g)) {
    nn_gemm(threads, 1, 0, k, p, g->cout, 1.0f, w, k, gyn, p, 0.0f, gxn, p);
    return;
  }
  nn_gemm(threads, 1, 0, k, p, g->cout, 1.0f, w, k, gyn, p, 0.0f, col, p);
  memset(gxn, 0, (size_t)xs * sizeof(float));
  nn_col2im(g, col, p, gxn);
}

/* Whether the weight gradient is reduced transposed (see grad_weight). */
static int grad_weight_transposed(const nn_conv2d_geom *g) {
  return g->cout >= GW_T_MIN_COUT && g->cout <= GW_T_MAX_COUT;
}

/* Input-channel blocks of the weight-gradient reduction: a power of two,
 * at most GW_BLOCKS, with at least GW_BLOCK_ROWS kernel taps per block.  It
 * depends on the shapes only, so every gemm has the same shape for any
 * thread count. */
static int64_t grad_weight_blocks(const nn_conv2d_geom *g) {
  int64_t k = g->cin * g->kh * g->kw, nb = 1;
  while (nb * 2 <= GW_BLOCKS && nb * 2 <= g->cin &&
         k / (nb * 2) >= GW_BLOCK_ROWS)
    nb *= 2;
  return nb;
}

/* Runs of samples the weight gradient is split into (see GW_GROUPS). */
static int64_t grad_weight_groups(const nn_conv2d_geom *g) {
  return grad_weight_blocks(g) == 1 && g->n >= GW_GROUPS ? GW_GROUPS : 1;
}

/* Floats of workspace per thread of grad_weight (see below). */
static int64_t grad_weight_slot(const nn_conv2d_geom *g) {
  int64_t nb = grad_weight_blocks(g);
  int64_t cb = (g->cin + nb - 1) / nb;
  return chunk_samples(g, GW_COLS) * (cb * g->kh * g->kw + g->cout) * g->ho *
         g->wo;
}

/* Floats of grad_weight's partial sums, shared by the threads. */
static int64_t grad_weight_partials(const nn_conv2d_geom *g) {
  int64_t k = g->cin * g->kh * g->kw, ng = grad_weight_groups(g);
  return (grad_weight_transposed(g) ? ng : ng - 1) * k * g->cout;
}

/* gw += sum over samples of gy_n [cout, p] col_n^T [p, k].  The taps are
 * split into blocks of input channels (grad_weight_blocks), or the samples
 * into runs (grad_weight_groups), shared out among the threads with no
 * synchronisation: each thread unfolds only its channels or samples.  Per
 * block, run and chunk of samples, gyc [cout, nb * p] gathers the chunk's
 * gy and col [rows, nb * p] its columns, reduced by one gemm; the chunks
 * are added in order, into gw for the first run and into partial sums for
 * the others, added to gw in order at the end.  For GW_T_MIN_COUT <= cout
 * <= GW_T_MAX_COUT the gemm runs transposed, gwt [k, cout] = sum of col
 * gyc^T (a faster shape for OpenBLAS), added to gw at the end. */
static void grad_weight(int nthreads, const nn_conv2d_geom *g, const float *x,
                        const float *gy, float *gw, float *ws) {
  int64_t k = g->cin * g->kh * g->kw, p = g->ho * g->wo, kk = k / g->cin;
  int64_t xs = g->cin * g->h * g->w, cout = g->cout;
  int64_t chunk = chunk_samples(g, GW_COLS);
  int64_t nblk = grad_weight_blocks(g), cb = (g->cin + nblk - 1) / nblk;
  int64_t ng = grad_weight_groups(g);
  int64_t slot = grad_weight_slot(g);
  int tr = grad_weight_transposed(g);
  float *part = ws, *tws = ws + grad_weight_partials(g);
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t unit = 0; unit < nblk * ng; unit++) {
    int64_t blk = unit % nblk, grp = unit / nblk;
    int64_t c0 = blk * cb, c1 = c0 + cb < g->cin ? c0 + cb : g->cin;
    int64_t rows = (c1 - c0) * kk, r0 = c0 * kk;
    int64_t s0 = g->n * grp / ng, s1 = g->n * (grp + 1) / ng;
    nn_conv2d_geom gb = *g;
    gb.cin = c1 - c0;
    float *col = tws + omp_get_thread_num() * slot;
    float *gyc = col + chunk * rows * p;
    /* where this run sums: gwt [k, cout] per run, or gw then partials
     * [cout, k] */
    float *dst = tr ? part + grp * k * cout + r0 * cout
                    : (grp == 0 ? gw : part + (grp - 1) * k * cout) + r0;
    for (int64_t n0 = s0; n0 < s1; n0 += chunk) {
      int64_t nb = s1 - n0 < chunk ? s1 - n0 : chunk;
      int64_t ld = nb * p;
      im2col_samples(&gb, x + n0 * xs + c0 * g->h * g->w, xs, nb, col, ld);
      for (int64_t s = 0; s < nb; s++) {
        const float *gyn = gy + (n0 + s) * cout * p;
        for (int64_t c = 0; c < cout; c++)
          memcpy(gyc + c * ld + s * p, gyn + c * p, (size_t)p * sizeof(float));
      }
      float beta = n0 == s0 && (tr || grp > 0) ? 0.0f : 1.0f;
      if (tr)
        nn_gemm(1, 0, 1, rows, cout, ld, 1.0f, col, ld, gyc, ld, beta, dst,
                cout);
      else
        nn_gemm(1, 0, 1, cout, rows, ld, 1.0f, gyc, ld, col, ld, beta, dst, k);
    }
  }
  if (!tr) {
    /* gw += the other runs' partial sums, in order */
    for (int64_t grp = 1; grp < ng; grp++) {
      const float *src = part + (grp - 1) * k * cout;
#pragma omp parallel for num_threads(nthreads) schedule(static)
      for (int64_t c = 0; c < cout; c++)
        for (int64_t r = 0; r < k; r++) gw[c * k + r] += src[c * k + r];
    }
    return;
  }
  /* gw += gwt^T of each run in order, in blocks of 32 x 32 that stay in
   * cache. */
  int64_t nbk = (k + 31) / 32;
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t bc = 0; bc < (cout + 31) / 32; bc++)
    for (int64_t bk = 0; bk < nbk; bk++)
      for (int64_t c = bc * 32; c < cout && c < bc * 32 + 32; c++)
        for (int64_t r = bk * 32; r < k && r < bk * 32 + 32; r++)
          for (int64_t grp = 0; grp < ng; grp++)
            gw[c * k + r] += part[grp * k * cout + r * cout + c];
}

/* Whether gx is computed as a forward convolution of gy with the flipped,
 * transposed kernel: stride 1 and padding below the kernel size (then the
 * gemm runs over cout * kh * kw instead of cout, im2col replaces the
 * scattered adds of col2im, and small images are lowered by chunks of the
 * batch); see GX_MIN_CIN.  Pointwise kernels need no columns at all. */
static int grad_input_as_conv(const nn_conv2d_geom *g) {
  return g->sh == 1 && g->sw == 1 && g->ph < g->kh && g->pw < g->kw &&
         !is_pointwise(g) && g->cin >= GX_MIN_CIN && g->cout <= g->cin;
}

/* The geometry of that convolution: gy [n, cout, ho, wo] -> [n, cin, h, w]
 * with padding k - 1 - p, so that its output size is h, w. */
static void transposed_geom(const nn_conv2d_geom *g, nn_conv2d_geom *t) {
  nn_conv2d_geom_set(t, g->n, g->cout, g->ho, g->wo, g->cin, g->kh, g->kw, 1,
                     1, g->kh - 1 - g->ph, g->kw - 1 - g->pw);
}

/* wt [cin, cout, kh, kw] = w [cout, cin, kh, kw] transposed in the channels
 * and flipped in both spatial dimensions. */
static void flip_kernel(int nthreads, const nn_conv2d_geom *g, const float *w,
                        float *wt) {
  int64_t kk = (int64_t)g->kh * g->kw;
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t ci = 0; ci < g->cin; ci++)
    for (int64_t co = 0; co < g->cout; co++) {
      const float *src = w + (co * g->cin + ci) * kk;
      float *dst = wt + (ci * g->cout + co) * kk;
      for (int64_t t = 0; t < kk; t++) dst[t] = src[kk - 1 - t];
    }
}

/* Floats of workspace of the forward kernel alone. */
static int64_t forward_workspace(const nn_conv2d_geom *g, int64_t slots) {
  int64_t k = g->cin * g->kh * g->kw, p = g->ho * g->wo;
  if (forward_batched(g))
    return slots * chunk_samples(g, fwd_cols(g)) * (k + g->cout) * p;
  return slots * k * p;
}

int64_t nn_conv2d_workspace_size(const nn_conv2d_geom *g, int nthreads) {
  if (nn_winograd_suits(g)) /* the im2col kernels never run for g */
    return nn_winograd_workspace_size(g, nthreads);
  int64_t k = g->cin * g->kh * g->kw, p = g->ho * g->wo;
  int64_t slots = nthreads < 1 ? 1 : nthreads;
  int64_t need = forward_workspace(g, slots);
  int64_t gw = slots * grad_weight_slot(g), gx = slots * k * p;
  if (grad_input_as_conv(g)) {
    nn_conv2d_geom t;
    transposed_geom(g, &t);
    gx = g->cin * g->cout * g->kh * g->kw + forward_workspace(&t, slots);
  }
  gw += grad_weight_partials(g);
  if (gw > need) need = gw;
  if (gx > need) need = gx;
  /* the path by tap pairs, with or without weights laid out beforehand */
  int64_t taps = taps_fits(g) ? taps_workspace(g) : 0;
  return taps > need ? taps : need;
}

void nn_conv2d_backward_kernel(int nthreads, const nn_conv2d_geom *g,
                               const float *x, const float *w, const float *gy,
                               float *gx, float *gw, float *gb, float *ws) {
  int64_t slot = g->cin * g->kh * g->kw * g->ho * g->wo;
  if (g->n <= 0) return;
  if (slot == 0 || g->cout == 0) {
    if (gx)
      memset(gx, 0, (size_t)(g->n * g->cin * g->h * g->w) * sizeof(float));
    return;
  }
  if (gb) grad_bias(nthreads, g, gy, gb);
  if (nn_winograd_suits(g)) {
    if (gx || gw) nn_winograd_backward(nthreads, g, x, w, gy, gx, gw, ws);
    return;
  }
  if (takes_taps(g, 0)) {
    taps_backward(nthreads, g, x, w, gy, gx, gw, ws);
    return;
  }
  if (gw) grad_weight(nthreads, g, x, gy, gw, ws);
  if (!gx) return;
  if (grad_input_as_conv(g)) {
    nn_conv2d_geom t;
    transposed_geom(g, &t);
    flip_kernel(nthreads, g, w, ws);
    nn_conv2d_forward_kernel(nthreads, &t, gy, ws, NULL, gx,
                             ws + g->cin * g->cout * g->kh * g->kw);
    return;
  }
  if (nthreads > 1 && g->n < nthreads) {
    for (int64_t n = 0; n < g->n; n++)
      grad_input_one(g, nthreads, n, w, gy, gx, ws);
    return;
  }
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t n = 0; n < g->n; n++)
    grad_input_one(g, 1, n, w, gy, gx, ws + omp_get_thread_num() * slot);
}

/* ---- The Conv2d layer ---- */

typedef struct conv2d {
  nn_layer base;
  int64_t cin, cout;
  int kh, kw, sh, sw, ph, pw;
  int bias;
  /* Eval mode only: the weight's prepared form (nn_conv2d_prepare), valid
   * while the weight's storage keeps the version stamp it was made from
   * (see nn_storage); freed by the next forward in training mode. */
  float *prep;
  int64_t prep_key;
  uint64_t prep_version;
} conv2d;

/* Drops c's prepared weights. */
static void drop_prepared(conv2d *c) {
  nn_free_floats(c->prep);
  c->prep = NULL;
}

/* The prepared weights for g in eval mode, made or remade when the weight
 * changed since; NULL when training, when g's path has none, or when out of
 * memory (the forward then prepares them in its workspace, as in
 * training). */
static const float *prepared(conv2d *c, const nn_conv2d_geom *g) {
  nn_tensor *w = c->base.params[0].t;
  int64_t size = c->base.training ? 0 : nn_conv2d_prepared_size(g);
  if (size == 0) {
    drop_prepared(c);
    return NULL;
  }
  int64_t key = nn_conv2d_prepared_key(g);
  if (c->prep && c->prep_key == key && c->prep_version == w->storage->version)
    return c->prep;
  drop_prepared(c);
  c->prep = nn_alloc_floats(size, NULL);
  if (!c->prep) return NULL;
  nn_conv2d_prepare(c->base.ctx->num_threads, g, nn_data(w), c->prep);
  c->prep_key = key;
  c->prep_version = w->storage->version;
  return c->prep;
}

/* Checks x ([N, cin, H, W] or [cin, H, W]) and fills g (n = 1 when
 * unbatched). */
static int input_geom(const conv2d *c, const nn_tensor *x, nn_conv2d_geom *g,
                      nn_error *err) {
  char got[160]; /* x's shape, formatted for an error only */
  if (x->ndim != 4 && x->ndim != 3) {
    nn_tensor_shape_str(x, got, sizeof got);
    return nn_seterr(err,
                     "expected input of shape [N, %lld, H, W] or "
                     "[%lld, H, W], got %s",
                     (long long)c->cin, (long long)c->cin, got);
  }
  int batched = x->ndim == 4;
  int64_t s[4] = {1, 0, 0, 0}; /* [N, C, H, W] with N = 1 when unbatched */
  for (int i = 0; i < x->ndim; i++) s[4 - x->ndim + i] = x->shape[i];
  if (s[1] != c->cin) {
    nn_tensor_shape_str(x, got, sizeof got);
    if (batched)
      return nn_seterr(err, "expected input of shape [N, %lld, H, W], got %s",
                       (long long)c->cin, got);
    return nn_seterr(err, "expected input of shape [%lld, H, W], got %s",
                     (long long)c->cin, got);
  }
  nn_conv2d_geom_set(g, s[0], c->cin, s[2], s[3], c->cout,
                     c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
  if (g->ho <= 0 || g->wo <= 0) {
    nn_tensor_shape_str(x, got, sizeof got);
    return nn_seterr(err,
                     "expected input with H >= %lld and W >= %lld "
                     "(kernel_size=(%d, %d), padding=(%d, %d)), got %s",
                     (long long)(c->kh - 2 * c->ph),
                     (long long)(c->kw - 2 * c->pw), c->kh, c->kw, c->ph,
                     c->pw, got);
  }
  return 0;
}

/* The output shape for input x (already checked) into shape; returns ndim. */
static int output_shape(const nn_conv2d_geom *g, const nn_tensor *x,
                        int64_t *shape) {
  int k = 0;
  if (x->ndim == 4) shape[k++] = g->n;
  shape[k++] = g->cout;
  shape[k++] = g->ho;
  shape[k++] = g->wo;
  return k;
}

/* The kernels' workspace: the calling thread's scratch buffer, shared by
 * all layers (see nn_layer_scratch). */
static float *workspace(conv2d *c, const nn_conv2d_geom *g, nn_error *err) {
  int64_t need = nn_conv2d_workspace_size(g, c->base.ctx->num_threads);
  return nn_layer_scratch(need > 0 ? need : 1, err);
}

/* The forward of conv2d l on x, its outputs going through ep (NULL:
 * none) as they are written; *y owned. */
static int forward_ep(nn_layer *l, nn_tensor *x, const nn_conv_epilogue *ep,
                      nn_tensor **y, nn_error *err) {
  conv2d *c = (conv2d *)l;
  nn_conv2d_geom g;
  int64_t shape[4];
  if (input_geom(c, x, &g, err)) return -1;
  float *ws = workspace(c, &g, err);
  if (!ws) return -1;
  nn_tensor *out = nn_layer_output(l, output_shape(&g, x, shape), shape, err);
  if (!out) return -1;
  const nn_tensor *b = c->bias ? l->params[1].t : NULL;
  nn_conv2d_forward_prepared(l->ctx->num_threads, &g, nn_data(x),
                             nn_data(l->params[0].t), prepared(c, &g),
                             b ? nn_data(b) : NULL, ep, nn_data(out), ws);
  *y = out;
  return 0;
}

static int conv2d_forward(nn_layer *l, nn_tensor *x, nn_tensor **y,
                          nn_error *err) {
  return forward_ep(l, x, NULL, y, err);
}

/* The gradient buffer of param p, or NULL when it is frozen. */
static float *grad_of(const nn_tensor *p) {
  return p && p->requires_grad && p->grad ? nn_data(p->grad) : NULL;
}

static int conv2d_backward(nn_layer *l, nn_tensor *x, nn_tensor *gy,
                           nn_tensor **gx, nn_error *err) {
  conv2d *c = (conv2d *)l;
  nn_conv2d_geom g;
  int64_t shape[4];
  if (input_geom(c, x, &g, err)) return -1;
  int nd = output_shape(&g, x, shape);
  if (!nn_tensor_has_shape(gy, nd, shape)) {
    char want[160], got[160];
    nn_shape_str(nd, shape, want, sizeof want);
    nn_tensor_shape_str(gy, got, sizeof got);
    return nn_seterr(err, "expected grad_output of shape %s, got %s", want,
                     got);
  }
  float *ws = workspace(c, &g, err);
  if (!ws) return -1;
  nn_tensor *out = nn_layer_grad_input(l, x->ndim, x->shape, err);
  if (!out) return -1;
  nn_tensor *w = l->params[0].t;
  float *gb = c->bias ? grad_of(l->params[1].t) : NULL;
  nn_conv2d_backward_kernel(l->ctx->num_threads, &g, nn_data(x), nn_data(w),
                            nn_data(gy), nn_data(out), grad_of(w), gb, ws);
  *gx = out;
  return 0;
}

static void conv2d_extra_repr(const nn_layer *l, char *buf, size_t n) {
  const conv2d *c = (const conv2d *)l;
  int k = snprintf(buf, n, "%lld, %lld, kernel_size=(%d, %d), stride=(%d, %d)",
                   (long long)c->cin, (long long)c->cout, c->kh, c->kw, c->sh,
                   c->sw);
  if (k < 0 || (size_t)k >= n) return;
  if (c->ph || c->pw) {
    int m = snprintf(buf + k, n - (size_t)k, ", padding=(%d, %d)", c->ph,
                     c->pw);
    if (m < 0 || (size_t)(k + m) >= n) return;
    k += m;
  }
  if (!c->bias) snprintf(buf + k, n - (size_t)k, ", bias=False");
}

static void conv2d_destroy(nn_layer *l) { drop_prepared((conv2d *)l); }

static const nn_layer_ops conv2d_ops = {
    .type = "Conv2d",
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .extra_repr = conv2d_extra_repr,
    .destroy = conv2d_destroy,
};

int nn_conv2d_bn_relu_forward(nn_layer *l, const nn_layer *bn, nn_tensor *x,
                              nn_tensor **y, nn_error *err) {
  *y = NULL;
  if (l->ops != &conv2d_ops)
    return nn_seterr(err, "expected a Conv2d layer, got %s", l->ops->type);
  if (!nn_tensor_is_contiguous(x))
    return nn_seterr(err, "input must be contiguous");
  conv2d *c = (conv2d *)l;
  if (x->ndim != 4) return 0;
  float *coef = malloc(3 * (size_t)c->cout * sizeof(float));
  if (!coef) return nn_seterr(err, "out of memory");
  nn_conv_epilogue ep = {coef, coef + c->cout, coef + 2 * c->cout};
  if (!bn) { /* (v - 0) * 1 + 0 is v exactly: the ReLU alone */
    for (int64_t o = 0; o < c->cout; o++)
      coef[o] = 0.0f, coef[c->cout + o] = 1.0f, coef[2 * c->cout + o] = 0.0f;
  } else if (!nn_batchnorm_eval_coefficients(bn, c->cout, coef,
                                             coef + c->cout,
                                             coef + 2 * c->cout)) {
    free(coef);
    return 0;
  }
  int rc = forward_ep(l, x, &ep, y, err);
  free(coef);
  return rc;
}

nn_layer *nn_conv2d_new(nn_ctx *ctx, int64_t cin, int64_t cout, int kh, int kw,
                        int sh, int sw, int ph, int pw, int bias,
                        nn_error *err) {
  if (cin <= 0 || cout <= 0) {
    nn_seterr(err,
              "in_channels and out_channels must be positive, got %lld and "
              "%lld",
              (long long)cin, (long long)cout);
    return NULL;
  }
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
  conv2d *c = calloc(1, sizeof *c);
  if (!c) {
    nn_seterr(err, "out of memory allocating a Conv2d layer");
    return NULL;
  }
  nn_layer_init(&c->base, &conv2d_ops, ctx);
  c->cin = cin;
  c->cout = cout;
  c->kh = kh;
  c->kw = kw;
  c->sh = sh;
  c->sw = sw;
  c->ph = ph;
  c->pw = pw;
  c->bias = bias != 0;
  float bound = (float)(1.0 / sqrt((double)cin * kh * kw));
  nn_tensor *w = nn_tensor_new4(cout, cin, kh, kw, err);
  if (!w || nn_layer_add_param(&c->base, "weight", w, err)) goto fail;
  nn_fill_uniform(ctx, nn_data(w), nn_tensor_numel(w), -bound, bound);
  if (c->bias) {
    nn_tensor *b = nn_tensor_new1(cout, err);
    if (!b || nn_layer_add_param(&c->base, "bias", b, err)) goto fail;
    nn_fill_uniform(ctx, nn_data(b), cout, -bound, bound);
  }
  return &c->base;
fail:
  nn_layer_free(&c->base);
  return NULL;
}
