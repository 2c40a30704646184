/*
 * resize.h - bilinear image resizing, antialiased when shrinking.
 *
 * The scheme is the separable triangle filter of PIL's BILINEAR resample,
 * which is also what torchvision.transforms.functional.resize(tensor, size,
 * antialias=True) computes on float tensors (aten's _upsample_bilinear2d_aa):
 * for an axis of `in` samples resized to `out`, scale = in / out, and output
 * sample i is a weighted mean of the inputs j in [xmin, xmin + xsize) with
 *
 *   center  = scale * (i + 0.5),   support = max(scale, 1)
 *   xmin    = max(0, (int)(center - support + 0.5))
 *   xsize   = min(in, (int)(center + support + 0.5)) - xmin
 *   w_j     = tri((j - center + 0.5) / max(scale, 1)),  tri(x) = max(0, 1-|x|)
 *
 * normalised to sum 1.  Width is resized first, then height.  The uint8
 * variant rounds exactly as PIL does (22-bit fixed-point weights, the
 * intermediate image rounded and clipped to uint8), so it reproduces
 * PIL's Image.resize(size, Image.BILINEAR) bit for bit.
 *
 * All images are planar: c planes of h x w samples, row-major.
 */
#ifndef NN_RESIZE_H
#define NN_RESIZE_H

#include <stdint.h>

#include "context.h"
#include "tensor.h"

/* The output size of torchvision's Resize for an h x w image: with size_w
 * > 0 exactly (size_h, size_w); with size_w == 0 the smaller edge becomes
 * size_h and the other int(size_h * long / short) (truncated, at least 1).
 * Fails on a non-positive size or an output side above max_side. */
int nn_resize_output_size(int h, int w, int size_h, int size_w, int max_side,
                          int *oh, int *ow, nn_error *err);

/* Resizes c uint8 planes [c, h, w] at src into [c, oh, ow] at dst (PIL's
 * rounding).  Single-threaded (callers run one image per thread); allocates
 * its weights and an intermediate plane, so it fails only when out of
 * memory or on non-positive sizes. */
int nn_resize_u8(const uint8_t *src, int c, int h, int w, uint8_t *dst,
                 int oh, int ow, nn_error *err);

/* Resizes `planes` float planes [planes, h, w] at src into [planes, oh, ow]
 * at dst, in parallel over the planes (ctx->num_threads; each plane is
 * computed by one thread, so the result does not depend on the thread
 * count).  Fails when out of memory or on non-positive sizes. */
int nn_resize_f32(nn_ctx *ctx, const float *src, int64_t planes, int h, int w,
                  float *dst, int oh, int ow, nn_error *err);

/* t [..., H, W] (at least 2 dimensions, any strides) resized to
 * [..., oh, ow] as a new contiguous tensor (owned by the caller), by
 * nn_resize_f32.  Fails on a tensor with fewer than 2 dimensions or an
 * empty one, or when out of memory. */
nn_tensor *nn_resize_tensor(nn_ctx *ctx, nn_tensor *t, int oh, int ow,
                            nn_error *err);

#endif
