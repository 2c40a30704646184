/* resize.c - separable antialiased bilinear resizing (see resize.h). */
#include "resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Fixed-point precision of PIL's 8-bit resampling weights. */
#define PRECISION_BITS (32 - 8 - 2)

/* The weights of one axis: output sample i reads inputs xmin[i] ..
 * xmin[i] + xsize[i] - 1 with weights w[i*ksize ...] (normalised). */
typedef struct axis {
  int out, ksize;
  int *xmin, *xsize;
  double *w;
} axis;

static void axis_free(axis *a) {
  free(a->xmin);
  free(a->xsize);
  free(a->w);
}

/* The triangle (bilinear) filter. */
static double tri(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

/* Computes the weights for resizing `in` samples to `out`. */
static int axis_init(axis *a, int in, int out, nn_error *err) {
  double scale = (double)in / out;
  double filterscale = scale > 1.0 ? scale : 1.0;
  double support = filterscale; /* the triangle's support is 1 */
  a->out = out;
  a->ksize = (int)ceil(support) * 2 + 1;
  a->xmin = malloc((size_t)out * sizeof *a->xmin);
  a->xsize = malloc((size_t)out * sizeof *a->xsize);
  a->w = calloc((size_t)out * a->ksize, sizeof *a->w);
  if (!a->xmin || !a->xsize || !a->w) {
    axis_free(a);
    return nn_seterr(err, "out of memory computing resize weights");
  }
  double ss = 1.0 / filterscale;
  for (int i = 0; i < out; i++) {
    double center = (i + 0.5) * scale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in) xmax = in;
    int n = xmax - xmin;
    double *k = a->w + (int64_t)i * a->ksize;
    double total = 0.0;
    for (int j = 0; j < n; j++) {
      k[j] = tri((j + xmin - center + 0.5) * ss);
      total += k[j];
    }
    if (total != 0.0)
      for (int j = 0; j < n; j++) k[j] /= total;
    a->xmin[i] = xmin;
    a->xsize[i] = n;
  }
  return 0;
}

int nn_resize_output_size(int h, int w, int size_h, int size_w, int max_side,
                          int *oh, int *ow, nn_error *err) {
  if (size_h < 1 || size_w < 0)
    return nn_seterr(err, "resize size must be positive, got %d x %d", size_h,
                     size_w);
  if (size_w > 0) {
    *oh = size_h;
    *ow = size_w;
  } else {
    int shorter = w <= h ? w : h, longer = w <= h ? h : w;
    double l = (double)size_h * longer / shorter;
    if (l >= (double)max_side + 1.0)
      return nn_seterr(err, "resized image of %lld x %lld is larger than the "
                       "limit of %d per side",
                       (long long)(w <= h ? l : size_h),
                       (long long)(w <= h ? size_h : l), max_side);
    int nl = l < 1.0 ? 1 : (int)l;
    *oh = w <= h ? nl : size_h;
    *ow = w <= h ? size_h : nl;
  }
  if (*oh > max_side || *ow > max_side)
    return nn_seterr(err, "resized image of %d x %d is larger than the limit "
                     "of %d per side", *oh, *ow, max_side);
  return 0;
}

/* ---- uint8 (PIL's fixed-point rounding) ---- */

/* The weights of a as PIL's 22-bit fixed-point integers (new array). */
static int32_t *fixed_weights(const axis *a) {
  int64_t n = (int64_t)a->out * a->ksize;
  int32_t *kk = malloc((size_t)n * sizeof *kk);
  if (!kk) return NULL;
  for (int64_t i = 0; i < n; i++) {
    double v = a->w[i] * (1 << PRECISION_BITS);
    kk[i] = (int32_t)(v < 0 ? -0.5 + v : 0.5 + v);
  }
  return kk;
}

static uint8_t clip8(int32_t v) {
  if (v >= (1 << PRECISION_BITS << 8)) return 255;
  if (v <= 0) return 0;
  return (uint8_t)(v >> PRECISION_BITS);
}

/* Resizes the rows of one plane [h, w] to [h, a->out]. */
static void horizontal_u8(const uint8_t *src, int h, int w, const axis *a,
                          const int32_t *kk, uint8_t *dst) {
  int ow = a->out;
  for (int y = 0; y < h; y++) {
    const uint8_t *row = src + (int64_t)y * w;
    uint8_t *out = dst + (int64_t)y * ow;
    for (int x = 0; x < ow; x++) {
      const int32_t *k = kk + (int64_t)x * a->ksize;
      const uint8_t *in = row + a->xmin[x];
      int32_t ss = 1 << (PRECISION_BITS - 1);
      for (int j = 0; j < a->xsize[x]; j++) ss += in[j] * k[j];
      out[x] = clip8(ss);
    }
  }
}

/* Resizes the columns of one plane [h, w] to [a->out, w]; acc holds w
 * int32 of scratch. */
static void vertical_u8(const uint8_t *src, int w, const axis *a,
                        const int32_t *kk, int32_t *acc, uint8_t *dst) {
  for (int y = 0; y < a->out; y++) {
    const int32_t *k = kk + (int64_t)y * a->ksize;
    for (int x = 0; x < w; x++) acc[x] = 1 << (PRECISION_BITS - 1);
    for (int j = 0; j < a->xsize[y]; j++) {
      const uint8_t *row = src + (int64_t)(a->xmin[y] + j) * w;
      int32_t kj = k[j];
      for (int x = 0; x < w; x++) acc[x] += row[x] * kj;
    }
    uint8_t *out = dst + (int64_t)y * w;
    for (int x = 0; x < w; x++) out[x] = clip8(acc[x]);
  }
}

int nn_resize_u8(const uint8_t *src, int c, int h, int w, uint8_t *dst,
                 int oh, int ow, nn_error *err) {
  if (c < 1 || h < 1 || w < 1 || oh < 1 || ow < 1)
    return nn_seterr(err, "cannot resize %d planes of %d x %d to %d x %d", c,
                     h, w, oh, ow);
  int64_t in_plane = (int64_t)h * w, out_plane = (int64_t)oh * ow;
  if (oh == h && ow == w) {
    memcpy(dst, src, (size_t)(c * in_plane));
    return 0;
  }
  axis ax = {0}, ay = {0};
  int32_t *kx = NULL, *ky = NULL, *acc = NULL;
  uint8_t *tmp = NULL;
  int rc = -1;
  if (ow != w) {
    if (axis_init(&ax, w, ow, err)) goto done;
    kx = fixed_weights(&ax);
    tmp = oh != h ? malloc((size_t)h * ow) : NULL;
    if (!kx || (oh != h && !tmp)) goto oom;
  }
  if (oh != h) {
    if (axis_init(&ay, h, oh, err)) goto done;
    ky = fixed_weights(&ay);
    acc = malloc((size_t)ow * sizeof *acc);
    if (!ky || !acc) goto oom;
  }
  for (int p = 0; p < c; p++) {
    const uint8_t *s = src + p * in_plane;
    uint8_t *d = dst + p * out_plane;
    if (ow != w && oh != h) {
      horizontal_u8(s, h, w, &ax, kx, tmp);
      vertical_u8(tmp, ow, &ay, ky, acc, d);
    } else if (ow != w) {
      horizontal_u8(s, h, w, &ax, kx, d);
    } else {
      vertical_u8(s, w, &ay, ky, acc, d);
    }
  }
  rc = 0;
  goto done;
oom:
  nn_seterr(err, "out of memory resizing %d x %d to %d x %d", h, w, oh, ow);
done:
  axis_free(&ax);
  axis_free(&ay);
  free(kx);
  free(ky);
  free(acc);
  free(tmp);
  return rc;
}

/* ---- float ---- */

/* The weights of a as floats (new array). */
static float *float_weights(const axis *a) {
  int64_t n = (int64_t)a->out * a->ksize;
  float *k = malloc((size_t)n * sizeof *k);
  if (!k) return NULL;
  for (int64_t i = 0; i < n; i++) k[i] = (float)a->w[i];
  return k;
}

static void horizontal_f32(const float *src, int h, int w, const axis *a,
                           const float *kk, float *dst) {
  int ow = a->out;
  for (int y = 0; y < h; y++) {
    const float *row = src + (int64_t)y * w;
    float *out = dst + (int64_t)y * ow;
    for (int x = 0; x < ow; x++) {
      const float *k = kk + (int64_t)x * a->ksize;
      const float *in = row + a->xmin[x];
      float ss = 0.0f;
      for (int j = 0; j < a->xsize[x]; j++) ss += in[j] * k[j];
      out[x] = ss;
    }
  }
}

static void vertical_f32(const float *src, int w, const axis *a,
                         const float *kk, float *dst) {
  for (int y = 0; y < a->out; y++) {
    const float *k = kk + (int64_t)y * a->ksize;
    float *out = dst + (int64_t)y * w;
    for (int x = 0; x < w; x++) out[x] = 0.0f;
    for (int j = 0; j < a->xsize[y]; j++) {
      const float *row = src + (int64_t)(a->xmin[y] + j) * w;
      float kj = k[j];
      for (int x = 0; x < w; x++) out[x] += row[x] * kj;
    }
  }
}

int nn_resize_f32(nn_ctx *ctx, const float *src, int64_t planes, int h, int w,
                  float *dst, int oh, int ow, nn_error *err) {
  if (planes < 0 || h < 1 || w < 1 || oh < 1 || ow < 1)
    return nn_seterr(err, "cannot resize %lld planes of %d x %d to %d x %d",
                     (long long)planes, h, w, oh, ow);
  int64_t in_plane = (int64_t)h * w, out_plane = (int64_t)oh * ow;
  axis ax = {0}, ay = {0};
  float *kx = NULL, *ky = NULL, *tmp = NULL;
  int rc = -1;
  if (axis_init(&ax, w, ow, err)) goto done;
  if (axis_init(&ay, h, oh, err)) goto done;
  kx = float_weights(&ax);
  ky = float_weights(&ay);
  int nth = ctx->num_threads;
  if (planes < nth) nth = planes > 0 ? (int)planes : 1;
  /* One intermediate plane [h, ow] per thread. */
  tmp = malloc((size_t)nth * h * ow * sizeof *tmp);
  if (!kx || !ky || !tmp) {
    nn_seterr(err, "out of memory resizing %d x %d to %d x %d", h, w, oh, ow);
    goto done;
  }
#pragma omp parallel num_threads(nth) if (nth > 1)
  {
    float *mine = tmp;
#ifdef _OPENMP
    mine += (int64_t)omp_get_thread_num() * h * ow;
#endif
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; p++) {
      horizontal_f32(src + p * in_plane, h, w, &ax, kx, mine);
      vertical_f32(mine, ow, &ay, ky, dst + p * out_plane);
    }
  }
  rc = 0;
done:
  axis_free(&ax);
  axis_free(&ay);
  free(kx);
  free(ky);
  free(tmp);
  return rc;
}

nn_tensor *nn_resize_tensor(nn_ctx *ctx, nn_tensor *t, int oh, int ow,
                            nn_error *err) {
  char s[128];
  if (t->ndim < 2) {
    nn_tensor_shape_str(t, s, sizeof s);
    nn_seterr(err, "expected an image tensor of shape [..., H, W], got %s", s);
    return NULL;
  }
  int64_t h = t->shape[t->ndim - 2], w = t->shape[t->ndim - 1];
  int64_t planes = h > 0 && w > 0 ? nn_tensor_numel(t) / (h * w) : 0;
  if (h > INT32_MAX / 4 || w > INT32_MAX / 4) {
    nn_tensor_shape_str(t, s, sizeof s);
    nn_seterr(err, "cannot resize a tensor of shape %s: too large", s);
    return NULL;
  }
  if (h < 1 || w < 1 || planes < 1) {
    nn_tensor_shape_str(t, s, sizeof s);
    nn_seterr(err, "cannot resize an empty tensor of shape %s", s);
    return NULL;
  }
  int64_t shape[NN_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  shape[t->ndim - 2] = oh;
  shape[t->ndim - 1] = ow;
  if ((int64_t)oh * ow > NN_MAX_NUMEL / planes) {
    nn_seterr(err, "the resized tensor of %lld planes of %d x %d is too large",
              (long long)planes, oh, ow);
    return NULL;
  }
  nn_tensor *src = nn_tensor_contiguous(t, err);
  if (!src) return NULL;
  nn_tensor *out = nn_tensor_empty(t->ndim, shape, err);
  if (!out || nn_resize_f32(ctx, nn_data(src), planes, (int)h, (int)w,
                            nn_data(out), oh, ow, err)) {
    nn_tensor_release(src);
    nn_tensor_release(out);
    return NULL;
  }
  nn_tensor_release(src);
  return out;
}
