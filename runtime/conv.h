/*
 * conv.h - 2-D convolution kernels (im2col + nn_gemm), stateless.
 *
 * The Conv2d layer (nn_conv2d_new in layer.h) is a thin wrapper around these
 * functions; they take every buffer as an argument so they can be tested and
 * benchmarked alone.  All tensors are contiguous float32, row-major:
 *   x  [n, cin, h, w]        w  [cout, cin, kh, kw]     b  [cout]
 *   y  [n, cout, ho, wo]     with ho = (h + 2 ph - kh) / sh + 1 (floor).
 *
 * 3x3, stride-1 convolutions with at least 32 input and output channels and
 * outputs of at least 4x4 (nn_winograd_suits) go to the Winograd kernels of
 * winograd.h, which do 2.25x (F(2x2)) to 4x (F(4x4)) fewer multiplications;
 * the rest use im2col + gemm.
 *
 * Determinism: every output element, grad_input element and parameter
 * gradient is computed in an order that does not depend on the thread count.
 */
#ifndef NN_CONV_H
#define NN_CONV_H

#include <stdint.h>

#include "norm.h"

/* The geometry of one convolution call. */
typedef struct nn_conv2d_geom {
  int64_t n, cin, h, w; /* input [n, cin, h, w] */
  int64_t cout, ho, wo; /* output [n, cout, ho, wo] */
  int kh, kw;           /* kernel */
  int sh, sw;           /* stride (>= 1) */
  int ph, pw;           /* zero padding on each side (>= 0) */
} nn_conv2d_geom;

/* Output length of a sliding window of size k, stride s, padding p on each
 * side over an input of length in: floor((in + 2p - k) / s) + 1, or 0 when
 * the padded input is shorter than the window. */
int64_t nn_conv_out_size(int64_t in, int k, int s, int p);

/* Fills g for input [n, cin, h, w] and the given kernel, computing ho, wo
 * with nn_conv_out_size (they are 0 when the input is too small). */
void nn_conv2d_geom_set(nn_conv2d_geom *g, int64_t n, int64_t cin, int64_t h,
                        int64_t w, int64_t cout, int kh, int kw, int sh,
                        int sw, int ph, int pw);

/* Unfolds one image x [cin, h, w] into columns: col[r * ldc + p] for the
 * row r = (c * kh + i) * kw + j (a kernel tap) and the output position
 * p = oy * wo + ox, with zeros where the tap falls in the padding.  ldc >=
 * ho * wo lets several images share one column matrix side by side. */
void nn_im2col(const nn_conv2d_geom *g, const float *x, float *col,
               int64_t ldc);

/* The adjoint of nn_im2col: ADDS every column entry into the image position
 * it was read from (entries from the padding are dropped).  x [cin, h, w]
 * must be initialised by the caller. */
void nn_col2im(const nn_conv2d_geom *g, const float *col, int64_t ldc,
               float *x);

/* Number of floats of workspace that the forward and backward kernels need
 * for this geometry and thread count. */
int64_t nn_conv2d_workspace_size(const nn_conv2d_geom *g, int nthreads);

/* y = conv(x, w) + b.  b may be NULL (no bias).  y is overwritten; ws holds
 * at least nn_conv2d_workspace_size(g, nthreads) floats.  Uses up to
 * nthreads OpenMP threads; cannot fail. */
void nn_conv2d_forward_kernel(int nthreads, const nn_conv2d_geom *g,
                              const float *x, const float *w, const float *b,
                              float *y, float *ws);

/* What a convolution's output goes through as it is written: per output
 * channel c, v = (y - mean[c]) * scale[c] + shift[c], then max(v, 0) -- an
 * eval-mode BatchNorm followed by a ReLU, in the same float operations as
 * those layers, so the result is theirs bit for bit.  Borrowed arrays of
 * cout floats. */
typedef struct nn_conv_epilogue {
  const float *mean, *scale, *shift;
} nn_conv_epilogue;

/* Applies ep's channel c to the n floats of row, in place (inline: it runs
 * on rows of 2-32 floats, a call each cost 6% of VGG16 inference). */
static inline void nn_conv_epilogue_row(const nn_conv_epilogue *ep, int64_t c,
                                        float *row, int64_t n) {
  nn_affine_relu(row, row, n, ep->mean[c], ep->scale[c], ep->shift[c]);
}

/* Prepared weights: a form of w that the forward path for g computes from w
 * on every call (Winograd's transformed weights; for inputs no larger than
 * the kernel, the weights laid out by tap), which a caller may keep
 * while w is unchanged and pass to nn_conv2d_forward_prepared instead.
 * nn_conv2d_prepared_size is its size in floats (0: the path has none);
 * nn_conv2d_prepared_key identifies its layout, so prepared weights serve
 * any geometry with the same channels, kernel and key.
 * nn_conv2d_prepare fills pw from w. */
int64_t nn_conv2d_prepared_size(const nn_conv2d_geom *g);
int64_t nn_conv2d_prepared_key(const nn_conv2d_geom *g);
void nn_conv2d_prepare(int nthreads, const nn_conv2d_geom *g, const float *w,
                       float *pw);
/* nn_conv2d_forward_kernel followed by ep (NULL: none) on every output,
 * with the prepared weights pw of w (NULL: from w itself).  The result is
 * the same bit for bit, except that with prepared weights Winograd takes
 * F(4x4) on 4x4 outputs and the path by tap pairs serves batches of fewer
 * than 16 samples (otherwise im2col's), whose results then differ by
 * rounding. */
void nn_conv2d_forward_prepared(int nthreads, const nn_conv2d_geom *g,
                                const float *x, const float *w,
                                const float *pw, const float *b,
                                const nn_conv_epilogue *ep, float *y,
                                float *ws);

/* The name of the path the kernels take for g ("Winograd F(4x4)",
 * "Winograd F(2x2)", "taps" or "im2col"), with prepared weights or not, and
 * the multiply-adds its forward does (a direct convolution's count for
 * im2col, fewer for the others). */
const char *nn_conv2d_path(const nn_conv2d_geom *g, int prepared);
double nn_conv2d_path_macs(const nn_conv2d_geom *g, int prepared);

/* Gradients of y = conv(x, w) + b given gy = dL/dy [n, cout, ho, wo]:
 *   gx (if not NULL) is OVERWRITTEN with dL/dx [n, cin, h, w];
 *   gw (if not NULL) ACCUMULATES dL/dw [cout, cin, kh, kw];
 *   gb (if not NULL) ACCUMULATES dL/db [cout].
 * ws as for the forward kernel.  Cannot fail. */
void nn_conv2d_backward_kernel(int nthreads, const nn_conv2d_geom *g,
                               const float *x, const float *w, const float *gy,
                               float *gx, float *gw, float *gb, float *ws);

#endif
