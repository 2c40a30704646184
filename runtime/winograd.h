/*
 * winograd.h - 3x3, stride-1 convolutions by Winograd's minimal filtering
 * F(2x2, 3x3): each 2x2 block of outputs costs 16 multiplications per
 * (input, output) channel pair instead of 36, so the forward pass, the input
 * gradient and the weight gradient each do 2.25x fewer multiply-adds than
 * im2col + gemm.  The products run as 16 gemms per chunk of tiles (one per
 * point of the 4x4 transformed tile); the transforms around them are
 * additions only, so rounding stays close to the direct convolution.
 *
 * Shapes and conventions are those of conv.h (contiguous float32, row-major,
 * x [n, cin, h, w], w [cout, cin, 3, 3], y [n, cout, ho, wo]).  Every element
 * is computed in an order fixed by the shapes alone, so results do not depend
 * on the thread count.
 */
#ifndef NN_WINOGRAD_H
#define NN_WINOGRAD_H

#include <stdint.h>

#include "conv.h"

/* Whether Conv2d should use the kernels below for g: a 3x3 kernel, stride 1,
 * padding <= 2, at least 32 input and output channels (and at most 512 x 512
 * channel pairs, which bounds the workspace) and an output of at least 4x4
 * (where they were measured faster than im2col). */
int nn_winograd_suits(const nn_conv2d_geom *g);

/* Floats of workspace nn_winograd_forward / nn_winograd_backward need for g
 * with nthreads threads. */
int64_t nn_winograd_workspace_size(const nn_conv2d_geom *g, int nthreads);

/* y = conv(x, w) + b (b may be NULL); y is overwritten.  g must be a 3x3,
 * stride-1 geometry with padding <= 2 (any channel counts and sizes); ws holds
 * nn_winograd_workspace_size floats.  Cannot fail. */
void nn_winograd_forward(int nthreads, const nn_conv2d_geom *g, const float *x,
                         const float *w, const float *b, float *y, float *ws);
/* The same from transformed weights u when not NULL (made by
 * nn_winograd_weights for a geometry with the same channels and prepared
 * tile size; w is then unused), each output row then going through ep
 * (NULL: none).  Given u, the result is the same bit for bit when the tile
 * size is the same as without (outputs 8 or more wide and high), else to
 * rounding. */
void nn_winograd_forward_ep(int nthreads, const nn_conv2d_geom *g,
                            const float *x, const float *w, const float *u,
                            const float *b, const nn_conv_epilogue *ep,
                            float *y, float *ws);

/* The transformed weights U of w [cout, cin, 3, 3] for g, which depend only
 * on the channel counts and the tile size, so a caller can keep them while w
 * does not change: nn_winograd_weights_size floats, filled by
 * nn_winograd_weights, packed for the nn_pgemm kernel in use (valid until
 * nn_pgemm_select changes it).  nn_winograd_tile is the output tile size (2 or 4,
 * from the output size) of the kernels that transform the weights
 * themselves (prepared = 0) or take them (prepared = 1: F(4x4) from 4x4
 * outputs, since the weight transform is no longer paid per call). */
int64_t nn_winograd_weights_size(const nn_conv2d_geom *g);
int nn_winograd_tile(const nn_conv2d_geom *g, int prepared);
void nn_winograd_weights(int nthreads, const nn_conv2d_geom *g,
                         const float *w, float *u);

/* Gradients of y = conv(x, w) given gy [n, cout, ho, wo]: gx (if not NULL) is
 * OVERWRITTEN with dL/dx, gw (if not NULL) ACCUMULATES dL/dw.  The bias
 * gradient is the caller's.  Same requirements as the forward. */
void nn_winograd_backward(int nthreads, const nn_conv2d_geom *g,
                          const float *x, const float *w, const float *gy,
                          float *gx, float *gw, float *ws);

#endif
