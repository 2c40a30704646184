/*
 * pool.h - 2-D pooling kernels (max, average, adaptive average), stateless.
 *
 * The pooling layers (nn_maxpool2d_new, nn_avgpool2d_new,
 * nn_adaptive_avgpool2d_new in layer.h) wrap these functions.  Tensors are
 * contiguous float32; a batch [N, C, H, W] is seen as planes = N * C
 * independent images [H, W], pooled to [ho, wo].  Each plane is handled by
 * one thread, so results do not depend on the thread count.
 */
#ifndef NN_POOL_H
#define NN_POOL_H

#include <stdint.h>

/* The geometry of one windowed pooling call (ceil_mode=False). */
typedef struct nn_pool2d_geom {
  int64_t planes; /* N * C */
  int64_t h, w;   /* input plane */
  int64_t ho, wo; /* output plane: floor((h + 2 ph - kh) / sh) + 1 */
  int kh, kw, sh, sw, ph, pw;
} nn_pool2d_geom;

/* Fills g, computing ho and wo (0 when the padded input is smaller than the
 * kernel). */
void nn_pool2d_geom_set(nn_pool2d_geom *g, int64_t planes, int64_t h,
                        int64_t w, int kh, int kw, int sh, int sw, int ph,
                        int pw);

/* y [planes, ho, wo] = the maximum of each window of x [planes, h, w],
 * padding counting as -inf; NaN propagates as in PyTorch. */
void nn_maxpool2d_forward_kernel(int nthreads, const nn_pool2d_geom *g,
                                 const float *x, float *y);
/* gx [planes, h, w] is OVERWRITTEN: each gy element goes to the position of
 * its window's maximum (the first one on ties, as PyTorch), recomputed from
 * x.  Windows must each hold at least one input element (ph <= kh / 2). */
void nn_maxpool2d_backward_kernel(int nthreads, const nn_pool2d_geom *g,
                                  const float *x, const float *gy, float *gx);

/* y = the mean of each window with zero padding counted in the divisor
 * (count_include_pad=True): the sum over the window divided by kh * kw. */
void nn_avgpool2d_forward_kernel(int nthreads, const nn_pool2d_geom *g,
                                 const float *x, float *y);
/* gx (OVERWRITTEN) = each gy element spread evenly, gy / (kh * kw), over
 * the input positions of its window. */
void nn_avgpool2d_backward_kernel(int nthreads, const nn_pool2d_geom *g,
                                  const float *gy, float *gx);

/* Adaptive average pooling of x [planes, h, w] to y [planes, oh, ow]:
 * output row i averages input rows floor(i * h / oh) .. ceil((i + 1) * h /
 * oh) - 1, and likewise for columns.  h, w, oh, ow must be positive. */
void nn_adaptive_avgpool2d_forward_kernel(int nthreads, int64_t planes,
                                          int64_t h, int64_t w, int64_t oh,
                                          int64_t ow, const float *x,
                                          float *y);
/* gx [planes, h, w] (OVERWRITTEN) from gy [planes, oh, ow]. */
void nn_adaptive_avgpool2d_backward_kernel(int nthreads, int64_t planes,
                                           int64_t h, int64_t w, int64_t oh,
                                           int64_t ow, const float *gy,
                                           float *gx);

#endif
