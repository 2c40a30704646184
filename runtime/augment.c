/* augment.c - augmentation pipelines in C (see augment.h). */
#include "augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "resize.h"

static const double PI = 3.14159265358979323846;

/* Largest channel count an image may have. */
#define MAX_CHANNELS 4096

/* ---- Helpers ---- */

static float fill_value(const nn_aug_fill *fill, int ch) {
  if (!fill || fill->n < 1) return 0.0f;
  return fill->n == 1 ? fill->v[0] : fill->v[ch];
}

static float clamp01(float v) {
  return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
}

/* nearbyintf (round half to even) and floorf for |v| < 2^22, without a
 * libm call: adding 1.5 * 2^23 rounds to an integer in the current (default,
 * to nearest even) rounding mode. */
static float round_even(float v) {
  const float magic = 12582912.0f;
  return (v + magic) - magic;
}

static float floor_small(float v) {
  float t = (float)(int32_t)v;
  return t > v ? t - 1.0f : t;
}

/* c ? a : b through bit masks.  Both operands are computed before the
 * choice, which lets GCC vectorise loops of such choices under its default
 * -ftrapping-math (a plain ?: gets its operands sunk into branches). */
static inline float sel(int c, float a, float b) {
  uint32_t ua, ub, m = 0u - (uint32_t)(c != 0);
  memcpy(&ua, &a, sizeof ua);
  memcpy(&ub, &b, sizeof ub);
  uint32_t r = (ua & m) | (ub & ~m);
  float f;
  memcpy(&f, &r, sizeof f);
  return f;
}

/* Index into [0, n) of coordinate x of an axis padded in mode (as
 * torch.nn.functional.pad and torchvision's symmetric padding, extended
 * periodically to any width); -1 for constant padding. */
static int pad_index(int64_t x, int n, nn_pad_mode mode) {
  if (x >= 0 && x < n) return (int)x;
  int64_t period, r;
  switch (mode) {
    case NN_PAD_EDGE:
      return x < 0 ? 0 : n - 1;
    case NN_PAD_REFLECT:
      if (n == 1) return 0;
      period = 2 * (int64_t)n - 2;
      r = x % period;
      if (r < 0) r += period;
      return (int)(r < n ? r : period - r);
    case NN_PAD_SYMMETRIC:
      period = 2 * (int64_t)n;
      r = x % period;
      if (r < 0) r += period;
      return (int)(r < n ? r : period - 1 - r);
    case NN_PAD_CONSTANT:
    default:
      return -1;
  }
}

/* Padding of one axis in up to two stages, as RandomCrop pads: first by
 * lead1/trail1, then (pad_if_needed) the padded axis again by lead2 on
 * both sides. */
typedef struct axis_pad {
  int n; /* original size */
  int lead1, trail1;
  int lead2; /* 0: no second stage */
} axis_pad;

/* Source index of padded coordinate x, or -1 for the fill value. */
static int axis_index(const axis_pad *a, int64_t x, nn_pad_mode mode) {
  if (a->lead2 > 0) {
    int x1 = pad_index(x - a->lead2, a->n + a->lead1 + a->trail1, mode);
    if (x1 < 0) return -1;
    x = x1;
  }
  return pad_index(x - a->lead1, a->n, mode);
}

/* dst [c, oh, ow] = window (top, left) of src [c, h, w] padded per ay, ax. */
static void crop_window(const float *src, int c, const axis_pad *ay,
                        const axis_pad *ax, float *dst, int top, int left,
                        int oh, int ow, nn_pad_mode mode,
                        const nn_aug_fill *fill) {
  int h = ay->n, w = ax->n;
  /* Output columns whose source column needs no padding logic. */
  int64_t shift = (int64_t)left - ax->lead1 - ax->lead2;
  int64_t lo = -shift, hi = (int64_t)w - shift;
  if (lo < 0) lo = 0;
  if (hi > ow) hi = ow;
  if (hi < lo) hi = lo;
  for (int ch = 0; ch < c; ch++) {
    const float *plane = src + (int64_t)ch * h * w;
    float fv = fill_value(fill, ch);
    for (int y = 0; y < oh; y++) {
      float *row = dst + ((int64_t)ch * oh + y) * ow;
      int sy = axis_index(ay, (int64_t)top + y, mode);
      if (sy < 0) {
        for (int x = 0; x < ow; x++) row[x] = fv;
        continue;
      }
      const float *srow = plane + (int64_t)sy * w;
      for (int x = 0; x < lo; x++) {
        int sx = axis_index(ax, (int64_t)left + x, mode);
        row[x] = sx < 0 ? fv : srow[sx];
      }
      if (hi > lo)
        memcpy(row + lo, srow + lo + shift, (size_t)(hi - lo) * sizeof *row);
      for (int64_t x = hi; x < ow; x++) {
        int sx = axis_index(ax, (int64_t)left + x, mode);
        row[x] = sx < 0 ? fv : srow[sx];
      }
    }
  }
}

void nn_aug_crop(const float *src, int c, int h, int w, float *dst, int top,
                 int left, int oh, int ow, const int pad[4], nn_pad_mode mode,
                 const nn_aug_fill *fill) {
  static const int none[4] = {0, 0, 0, 0};
  if (!pad) pad = none;
  axis_pad ay = {h, pad[1], pad[3], 0}, ax = {w, pad[0], pad[2], 0};
  crop_window(src, c, &ay, &ax, dst, top, left, oh, ow, mode, fill);
}

void nn_aug_hflip(const float *src, int c, int h, int w, float *dst) {
  for (int64_t r = 0; r < (int64_t)c * h; r++) {
    const float *s = src + r * w;
    float *d = dst + r * w;
    for (int x = 0; x < w; x++) d[x] = s[w - 1 - x];
  }
}

void nn_aug_vflip(const float *src, int c, int h, int w, float *dst) {
  for (int ch = 0; ch < c; ch++)
    for (int y = 0; y < h; y++)
      memcpy(dst + ((int64_t)ch * h + y) * w,
             src + ((int64_t)ch * h + (h - 1 - y)) * w,
             (size_t)w * sizeof *dst);
}

/* ---- Affine maps (torchvision's _get_inverse_affine_matrix) ---- */

void nn_aug_affine_matrix(double angle, double tx, double ty, double scale,
                          double shear_x, double shear_y, double cx, double cy,
                          double m[6]) {
  double rot = angle * (PI / 180.0);
  double sx = shear_x * (PI / 180.0), sy = shear_y * (PI / 180.0);
  double a = cos(rot - sy) / cos(sy);
  double b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot);
  double c = sin(rot - sy) / cos(sy);
  double d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot);
  m[0] = d / scale;
  m[1] = -b / scale;
  m[2] = 0.0 / scale;
  m[3] = -c / scale;
  m[4] = a / scale;
  m[5] = 0.0 / scale;
  m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
  m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
  m[2] += cx;
  m[5] += cy;
}

/* The sampling follows torchvision's _gen_affine_grid and grid_sample
 * (align_corners=False, zeros padding, a mask channel for the fill) in
 * float32, so that nearest-neighbour rounding agrees with it.  Source
 * coordinates of output pixel (ox, oy), relative to the centre:
 *   ix = ((x r0 + y r1 + r2) + 1) w/2 - 1/2, x = ox - w/2 + 1/2 (same for y)
 * with r = m / (w/2) (m / (h/2) for iy), all in float32. */
typedef struct warp_coef {
  float r[6], halfw, halfh;
} warp_coef;

static warp_coef warp_coefs(const double m[6], int h, int w) {
  warp_coef k;
  float sw = (float)(0.5 * w), sh = (float)(0.5 * h);
  for (int i = 0; i < 3; i++) {
    k.r[i] = (float)m[i] / sw;
    k.r[3 + i] = (float)m[3 + i] / sh;
  }
  k.halfw = (float)w / 2.0f;
  k.halfh = (float)h / 2.0f;
  return k;
}

/* Pixels per chunk of a row in the nearest-neighbour pass. */
#define WARP_CHUNK 256

/* Nearest neighbour: source column and row of each pixel of a chunk of
 * row oy (vectorised), then one gather per channel. */
static void warp_nearest(const float *src, int c, int h, int w, float *dst,
                         const warp_coef *k, const nn_aug_fill *fill) {
  int64_t plane = (int64_t)h * w;
  int32_t sx[WARP_CHUNK], sy[WARP_CHUNK];
  for (int oy = 0; oy < h; oy++) {
    float y = (float)(-h * 0.5 + 0.5 + oy);
    for (int x0 = 0; x0 < w; x0 += WARP_CHUNK) {
      int n = w - x0 < WARP_CHUNK ? w - x0 : WARP_CHUNK;
#pragma omp simd
      for (int j = 0; j < n; j++) {
        float x = (float)(-w * 0.5 + 0.5 + (x0 + j));
        float ix =
            ((x * k->r[0] + y * k->r[1] + k->r[2]) + 1.0f) * k->halfw - 0.5f;
        float iy =
            ((x * k->r[3] + y * k->r[4] + k->r[5]) + 1.0f) * k->halfh - 0.5f;
        /* Far outside (or not a number) counts as outside. */
        int near = (fabsf(ix) < 4e6f) & (fabsf(iy) < 4e6f);
        ix = sel(near, ix, -1.0f);
        iy = sel(near, iy, -1.0f);
        int32_t xi = (int32_t)round_even(ix), yi = (int32_t)round_even(iy);
        int in = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h);
        sx[j] = in ? xi : -1;
        sy[j] = in ? yi : 0;
      }
      for (int ch = 0; ch < c; ch++) {
        const float *p = src + ch * plane;
        float *d = dst + ch * plane + (int64_t)oy * w + x0;
        float fv = fill_value(fill, ch);
        for (int j = 0; j < n; j++)
          d[j] = sx[j] >= 0 ? p[(int64_t)sy[j] * w + sx[j]] : fv;
      }
    }
  }
}

/* Bilinear: grid_sample's four weights, out-of-image corners left out; with
 * a fill, torchvision's mask (the weight inside the image) blends it in. */
static void warp_bilinear(const float *src, int c, int h, int w, float *dst,
                          const warp_coef *k, const nn_aug_fill *fill) {
  int64_t plane = (int64_t)h * w;
  for (int oy = 0; oy < h; oy++) {
    float y = (float)(-h * 0.5 + 0.5 + oy);
    for (int ox = 0; ox < w; ox++) {
      float x = (float)(-w * 0.5 + 0.5 + ox);
      float ix =
          ((x * k->r[0] + y * k->r[1] + k->r[2]) + 1.0f) * k->halfw - 0.5f;
      float iy =
          ((x * k->r[3] + y * k->r[4] + k->r[5]) + 1.0f) * k->halfh - 0.5f;
      if (!(fabsf(ix) < 4e6f && fabsf(iy) < 4e6f)) ix = iy = -10.0f;
      float fx = floor_small(ix), fy = floor_small(iy);
      float we = ix - fx, ww = 1.0f - we; /* weights of the east, west column */
      float ws = iy - fy, wn = 1.0f - ws; /* south, north row */
      float wt[4] = {wn * ww, wn * we, ws * ww, ws * we};
      int64_t xs[4], ys[4];
      xs[0] = xs[2] = (int64_t)fx;
      xs[1] = xs[3] = (int64_t)fx + 1;
      ys[0] = ys[1] = (int64_t)fy;
      ys[2] = ys[3] = (int64_t)fy + 1;
      int ok[4];
      float mask = 0.0f;
      for (int q = 0; q < 4; q++) {
        ok[q] = xs[q] >= 0 && xs[q] < w && ys[q] >= 0 && ys[q] < h;
        if (ok[q]) mask += wt[q];
      }
      int64_t o = (int64_t)oy * w + ox;
      for (int ch = 0; ch < c; ch++) {
        const float *p = src + ch * plane;
        float v = 0.0f;
        for (int q = 0; q < 4; q++)
          if (ok[q]) v += wt[q] * p[ys[q] * w + xs[q]];
        dst[ch * plane + o] =
            fill ? v * mask + (1.0f - mask) * fill_value(fill, ch) : v;
      }
    }
  }
}

void nn_aug_warp(const float *src, int c, int h, int w, float *dst,
                 const double m[6], nn_interp interp, const nn_aug_fill *fill) {
  warp_coef k = warp_coefs(m, h, w);
  if (interp == NN_INTERP_NEAREST)
    warp_nearest(src, c, h, w, dst, &k, fill);
  else
    warp_bilinear(src, c, h, w, dst, &k, fill);
}

/* ---- Colour (torchvision's functional_tensor on float images) ---- */

/* _blend(img, other, f) with other a constant. */
static void blend_const(float *p, int64_t n, double f, float other) {
  float a = (float)f, b = (float)(1.0 - f);
#pragma omp simd
  for (int64_t i = 0; i < n; i++) p[i] = clamp01(a * p[i] + b * other);
}

static float gray(float r, float g, float b) {
  return 0.2989f * r + 0.587f * g + 0.114f * b;
}

void nn_aug_adjust_brightness(float *img, int c, int h, int w, double f) {
  blend_const(img, (int64_t)c * h * w, f, 0.0f);
}

void nn_aug_adjust_contrast(float *img, int c, int h, int w, double f) {
  int64_t n = (int64_t)h * w;
  double sum = 0.0;
  if (c == 3) {
    for (int64_t i = 0; i < n; i++)
      sum += gray(img[i], img[n + i], img[2 * n + i]);
  } else {
    for (int64_t i = 0; i < (int64_t)c * n; i++) sum += img[i];
    n *= c;
  }
  float mean = (float)(sum / (double)n);
  blend_const(img, (int64_t)c * h * w, f, mean);
}

void nn_aug_adjust_saturation(float *img, int c, int h, int w, double f) {
  if (c != 3) return;
  int64_t n = (int64_t)h * w;
  float a = (float)f, b = (float)(1.0 - f);
  float *R = img, *G = img + n, *B = img + 2 * n;
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float l = gray(R[i], G[i], B[i]);
    R[i] = clamp01(a * R[i] + b * l);
    G[i] = clamp01(a * G[i] + b * l);
    B[i] = clamp01(a * B[i] + b * l);
  }
}

void nn_aug_adjust_hue(float *img, int c, int h, int w, double f) {
  if (c != 3) return;
  int64_t n = (int64_t)h * w;
  float hf = (float)f;
  float *R = img, *G = img + n, *B = img + 2 * n;
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float r = R[i], g = G[i], b = B[i];
    /* _rgb2hsv: of its three masked hue terms exactly one is non-zero. */
    float maxc = r > g ? r : g, minc = r < g ? r : g;
    maxc = maxc > b ? maxc : b;
    minc = minc < b ? minc : b;
    int eqc = maxc == minc;
    float cr = maxc - minc;
    float s = cr / sel(eqc, 1.0f, maxc);
    float crd = sel(eqc, 1.0f, cr);
    float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
    float hr = bc - gc, hg = 2.0f + rc - bc, hb = 4.0f + gc - rc;
    float h6 = sel(maxc == r, hr, sel(maxc == g, hg, hb));
    /* fmod(h / 6 + 1, 1): the argument lies in [5/6, 11/6). */
    float h1 = h6 / 6.0f + 1.0f;
    float hh = sel(h1 >= 1.0f, h1 - 1.0f, h1);
    /* (h + hue_factor) % 1.0 (torch.remainder): the sum lies in [-0.5, 1.5). */
    float a = hh + hf;
    hh = sel(a >= 1.0f, a - 1.0f, sel(a < 0.0f, a + 1.0f, a));
    /* _hsv2rgb; h * 6 is non-negative, so truncation is floor. */
    float v = maxc, h6b = hh * 6.0f;
    int32_t i6 = (int32_t)h6b;
    float fr = h6b - (float)i6;
    int32_t k = i6 - 6 * (i6 >= 6); /* i % 6 */
    float p = clamp01(v * (1.0f - s));
    float q = clamp01(v * (1.0f - s * fr));
    float t = clamp01(v * (1.0f - s * (1.0f - fr)));
    /* Sector k picks (v,q,p,p,t,v), (t,v,v,q,p,p), (p,p,t,v,v,q). */
    R[i] = sel((k == 0) | (k == 5), v, sel(k == 1, q, sel(k == 4, t, p)));
    G[i] = sel(k == 0, t, sel((k == 1) | (k == 2), v, sel(k == 3, q, p)));
    B[i] = sel(k <= 1, p, sel(k == 2, t, sel((k == 3) | (k == 4), v, q)));
  }
}

/* ---- Gaussian blur ---- */

/* torchvision's _get_gaussian_kernel1d in float32. */
static void gauss_kernel(int k, float sigma, float *out) {
  float half = (float)(k - 1) * 0.5f, sum = 0.0f;
  for (int i = 0; i < k; i++) {
    float t = (-half + (float)i) / sigma;
    out[i] = expf(-0.5f * (t * t));
  }
  for (int i = 0; i < k; i++) sum += out[i];
  for (int i = 0; i < k; i++) out[i] /= sum;
}

/* Horizontal pass with reflect padding over n rows of w samples.  Each
 * output sums k[j] * input in the order j = 0..ks-1; the interior runs a tap
 * at a time across the row (vectorised), the borders pixel by pixel. */
static void blur_rows(const float *src, float *dst, int64_t n, int w,
                      const float *k, int ks) {
  int r = ks / 2;
  int lo = r < w ? r : w, hi = w - r > lo ? w - r : lo;
  for (int64_t l = 0; l < n; l++) {
    const float *s = src + l * w;
    float *d = dst + l * w;
    for (int i = lo; i < hi; i++) d[i] = 0.0f;
    for (int j = 0; j < ks; j++) {
      const float *p = s + (j - r);
      float kj = k[j];
      for (int i = lo; i < hi; i++) d[i] += kj * p[i];
    }
    for (int i = 0; i < w; i++) {
      if (i == lo) i = hi;
      if (i >= w) break;
      float acc = 0.0f;
      for (int j = 0; j < ks; j++)
        acc += k[j] * s[pad_index(i - r + j, w, NN_PAD_REFLECT)];
      d[i] = acc;
    }
  }
}

/* Vertical pass with reflect padding over one h x w plane, a row at a time
 * (the same sums, in the same order, as a column at a time). */
static void blur_cols(const float *src, float *dst, int h, int w,
                      const float *k, int ks) {
  int r = ks / 2;
  for (int y = 0; y < h; y++) {
    float *d = dst + (int64_t)y * w;
    for (int x = 0; x < w; x++) d[x] = 0.0f;
    for (int j = 0; j < ks; j++) {
      const float *s =
          src + (int64_t)pad_index(y - r + j, h, NN_PAD_REFLECT) * w;
      float kj = k[j];
      for (int x = 0; x < w; x++) d[x] += kj * s[x];
    }
  }
}

void nn_aug_gaussian_blur(const float *src, int c, int h, int w, float *dst,
                          int kx, int ky, float sigma, float *tmp) {
  float kxw[NN_AUG_MAX_KERNEL], kyw[NN_AUG_MAX_KERNEL];
  gauss_kernel(kx, sigma, kxw);
  gauss_kernel(ky, sigma, kyw);
  /* Rows (width direction), then columns, plane by plane. */
  blur_rows(src, tmp, (int64_t)c * h, w, kxw, kx);
  for (int ch = 0; ch < c; ch++)
    blur_cols(tmp + (int64_t)ch * h * w, dst + (int64_t)ch * h * w, h, w, kyw,
              ky);
}

/* ---- Ops: parameter checks, output shapes, application ---- */

/* The random numbers of one sample for one op. */
typedef struct draws {
  uint64_t key, base;
} draws;

static double uni(const draws *d, int j) {
  return (double)nn_rng_uniform(d->key, d->base + (uint64_t)j);
}

/* Uniform integer in [0, n). */
static int64_t randint(const draws *d, int j, int64_t n) {
  return (int64_t)(nn_rng_u64(d->key, d->base + (uint64_t)j) % (uint64_t)n);
}

static double lerp(const double r[2], double u) {
  return r[0] + u * (r[1] - r[0]);
}

/* One op applied to one sample: its input and output images, the sample's
 * random numbers and the thread's working memory. */
typedef struct stage {
  const float *src;
  const int *in; /* [c, h, w] of src */
  float *dst;    /* never src */
  const int *out;
  draws d;
  float *tmp;  /* room for any stage's image */
  nn_ctx *one; /* a single-threaded context for nested calls */
  nn_error *err;
} stage;

/* The output shape of an op for input shape in, or -1 when it cannot
 * apply; applying it to a sample (-1 only when out of memory). */
typedef int (*shape_fn)(const nn_aug_op *op, const int in[3], int out[3],
                        nn_error *err);
typedef int (*apply_fn)(const nn_aug_op *op, const stage *st);

static void copy_image(const stage *st) {
  memcpy(st->dst, st->src,
         (size_t)st->in[0] * st->in[1] * st->in[2] * sizeof(float));
}

static int check_fill(const nn_aug_fill *fill, int c, nn_error *err) {
  if (fill->n != 1 && fill->n != c)
    return nn_seterr(err, "fill has %d values but the image has %d channels",
                     fill->n, c);
  return 0;
}

static int same_shape(const nn_aug_op *op, const int in[3], int out[3],
                      nn_error *err) {
  (void)op;
  (void)err;
  memcpy(out, in, 3 * sizeof *out);
  return 0;
}

static int fixed_shape(const int in[3], int h, int w, int out[3]) {
  out[0] = in[0];
  out[1] = h;
  out[2] = w;
  return 0;
}

static int resize_shape(const nn_aug_op *op, const int in[3], int out[3],
                        nn_error *err) {
  int h = in[1], w = in[2], size = op->u.resize.h;
  int64_t oh = op->u.resize.h, ow = op->u.resize.w;
  if (op->u.resize.w == 0) {
    int shrt = w <= h ? w : h, lng = w <= h ? h : w;
    int64_t new_short = size, new_long = (int64_t)((double)size * lng / shrt);
    int max_size = op->u.resize.max_size;
    if (max_size > 0 && new_long > max_size) {
      new_short =
          (int64_t)((double)max_size * (double)new_short / (double)new_long);
      new_long = max_size;
    }
    oh = w <= h ? new_long : new_short;
    ow = w <= h ? new_short : new_long;
  }
  if (oh < 1 || ow < 1 || oh > NN_AUG_MAX_SIDE || ow > NN_AUG_MAX_SIDE)
    return nn_seterr(
        err,
        "output size [%lld, %lld] for input [%d, %d, %d] is out of range 1..%d",
        (long long)oh, (long long)ow, in[0], h, w, NN_AUG_MAX_SIDE);
  return fixed_shape(in, (int)oh, (int)ow, out);
}

static int resize_apply(const nn_aug_op *op, const stage *st) {
  (void)op;
  const int *in = st->in, *out = st->out;
  if (in[1] == out[1] && in[2] == out[2]) {
    copy_image(st);
    return 0;
  }
  return nn_resize_f32(st->one, st->src, in[0], in[1], in[2], st->dst, out[1],
                       out[2], st->err);
}

static int center_crop_shape(const nn_aug_op *op, const int in[3], int out[3],
                             nn_error *err) {
  (void)err;
  return fixed_shape(in, op->u.center_crop.h, op->u.center_crop.w, out);
}

/* F.center_crop: zero padding when the crop is larger, then the window at
 * round((size - crop) / 2) (round half to even, as Python). */
static int center_crop_apply(const nn_aug_op *op, const stage *st) {
  int h = st->in[1], w = st->in[2], ch = op->u.center_crop.h,
      cw = op->u.center_crop.w;
  int pad[4] = {cw > w ? (cw - w) / 2 : 0, ch > h ? (ch - h) / 2 : 0,
                cw > w ? (cw - w + 1) / 2 : 0, ch > h ? (ch - h + 1) / 2 : 0};
  int ph = h + pad[1] + pad[3], pw = w + pad[0] + pad[2];
  int top = (int)nearbyint((ph - ch) / 2.0),
      left = (int)nearbyint((pw - cw) / 2.0);
  nn_aug_crop(st->src, st->in[0], h, w, st->dst, top, left, ch, cw, pad,
              NN_PAD_CONSTANT, NULL);
  return 0;
}

/* RandomCrop's padding of an h x w image: `padding`, then with
 * pad_if_needed the width and height again by what the crop lacks, on both
 * sides.  Sets the axes and the padded size. */
static void crop_axes(const nn_aug_op *op, int h, int w, axis_pad *ay,
                      axis_pad *ax, int64_t *ph, int64_t *pw) {
  const int *p = op->u.crop.padding;
  *ay = (axis_pad){h, p[1], p[3], 0};
  *ax = (axis_pad){w, p[0], p[2], 0};
  *ph = (int64_t)h + p[1] + p[3];
  *pw = (int64_t)w + p[0] + p[2];
  if (op->kind == NN_AUG_RANDOM_CROP && op->u.crop.pad_if_needed) {
    if (*pw < op->u.crop.w) {
      ax->lead2 = (int)(op->u.crop.w - *pw);
      *pw += 2 * (int64_t)ax->lead2;
    }
    if (*ph < op->u.crop.h) {
      ay->lead2 = (int)(op->u.crop.h - *ph);
      *ph += 2 * (int64_t)ay->lead2;
    }
  }
}

static int random_crop_shape(const nn_aug_op *op, const int in[3], int out[3],
                             nn_error *err) {
  axis_pad ay, ax;
  int64_t ph, pw;
  if (check_fill(&op->u.crop.fill, in[0], err)) return -1;
  crop_axes(op, in[1], in[2], &ay, &ax, &ph, &pw);
  int th = op->u.crop.h, tw = op->u.crop.w;
  if (ph < th || pw < tw) {
    if (ph != in[1] || pw != in[2])
      return nn_seterr(err,
                       "required crop size [%d, %d] is larger than the padded "
                       "input image size [%lld, %lld] (input [%d, %d, %d])",
                       th, tw, (long long)ph, (long long)pw, in[0], in[1],
                       in[2]);
    return nn_seterr(err,
                     "required crop size [%d, %d] is larger than input image "
                     "size [%d, %d] (input [%d, %d, %d])",
                     th, tw, in[1], in[2], in[0], in[1], in[2]);
  }
  return fixed_shape(in, th, tw, out);
}

static int random_crop_apply(const nn_aug_op *op, const stage *st) {
  axis_pad ay, ax;
  int64_t ph, pw;
  crop_axes(op, st->in[1], st->in[2], &ay, &ax, &ph, &pw);
  int top = (int)randint(&st->d, 0, ph - st->out[1] + 1);
  int left = (int)randint(&st->d, 1, pw - st->out[2] + 1);
  crop_window(st->src, st->in[0], &ay, &ax, st->dst, top, left, st->out[1],
              st->out[2], op->u.crop.mode, &op->u.crop.fill);
  return 0;
}

static int pad_shape(const nn_aug_op *op, const int in[3], int out[3],
                     nn_error *err) {
  const int *p = op->u.crop.padding;
  if (check_fill(&op->u.crop.fill, in[0], err)) return -1;
  int64_t oh = (int64_t)in[1] + p[1] + p[3], ow = (int64_t)in[2] + p[0] + p[2];
  if (oh > NN_AUG_MAX_SIDE || ow > NN_AUG_MAX_SIDE)
    return nn_seterr(err, "padded size [%lld, %lld] is larger than %d",
                     (long long)oh, (long long)ow, NN_AUG_MAX_SIDE);
  return fixed_shape(in, (int)oh, (int)ow, out);
}

static int pad_apply(const nn_aug_op *op, const stage *st) {
  nn_aug_crop(st->src, st->in[0], st->in[1], st->in[2], st->dst, 0, 0,
              st->out[1], st->out[2], op->u.crop.padding, op->u.crop.mode,
              &op->u.crop.fill);
  return 0;
}

static int resized_crop_shape(const nn_aug_op *op, const int in[3], int out[3],
                              nn_error *err) {
  (void)err;
  return fixed_shape(in, op->u.resized_crop.h, op->u.resized_crop.w, out);
}

/* RandomResizedCrop.get_params: ten attempts at a random area and aspect
 * ratio, then the central crop of the clamped ratio. */
static void resized_crop_box(const nn_aug_op *op, const draws *d, int height,
                             int width, int box[4]) {
  const double *scale = op->u.resized_crop.scale,
               *ratio = op->u.resized_crop.ratio;
  double area = (double)height * width;
  double log_ratio[2] = {log(ratio[0]), log(ratio[1])};
  for (int a = 0; a < 10; a++) {
    double target = area * lerp(scale, uni(d, 4 * a));
    double aspect = exp(lerp(log_ratio, uni(d, 4 * a + 1)));
    double w = nearbyint(sqrt(target * aspect));
    double h = nearbyint(sqrt(target / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      box[2] = (int)h;
      box[3] = (int)w;
      box[0] = (int)randint(d, 4 * a + 2, height - box[2] + 1);
      box[1] = (int)randint(d, 4 * a + 3, width - box[3] + 1);
      return;
    }
  }
  double in_ratio = (double)width / (double)height;
  int w = width, h = height;
  if (in_ratio < ratio[0]) {
    h = (int)nearbyint(w / ratio[0]);
  } else if (in_ratio > ratio[1]) {
    w = (int)nearbyint(h * ratio[1]);
  }
  box[0] = (height - h) / 2;
  box[1] = (width - w) / 2;
  box[2] = h;
  box[3] = w;
}

static int resized_crop_apply(const nn_aug_op *op, const stage *st) {
  const int *in = st->in, *out = st->out;
  int box[4];
  resized_crop_box(op, &st->d, in[1], in[2], box);
  int c = in[0], bh = box[2], bw = box[3];
  if (bh == out[1] && bw == out[2]) {
    nn_aug_crop(st->src, c, in[1], in[2], st->dst, box[0], box[1], bh, bw, NULL,
                NN_PAD_CONSTANT, NULL);
    return 0;
  }
  const float *from = st->src;
  if (bh != in[1] || bw != in[2]) {
    nn_aug_crop(st->src, c, in[1], in[2], st->tmp, box[0], box[1], bh, bw, NULL,
                NN_PAD_CONSTANT, NULL);
    from = st->tmp;
  }
  return nn_resize_f32(st->one, from, c, bh, bw, st->dst, out[1], out[2],
                       st->err);
}

static int flip_apply(const nn_aug_op *op, const stage *st) {
  const int *in = st->in;
  if (!(uni(&st->d, 0) < op->u.flip.p))
    copy_image(st);
  else if (op->kind == NN_AUG_HFLIP)
    nn_aug_hflip(st->src, in[0], in[1], in[2], st->dst);
  else
    nn_aug_vflip(st->src, in[0], in[1], in[2], st->dst);
  return 0;
}

static int affine_shape(const nn_aug_op *op, const int in[3], int out[3],
                        nn_error *err) {
  if (check_fill(&op->u.affine.fill, in[0], err)) return -1;
  return same_shape(op, in, out, err);
}

/* RandomRotation.get_params / RandomAffine.get_params, then F.rotate /
 * F.affine on the tensor. */
static int affine_apply(const nn_aug_op *op, const stage *st) {
  const draws *d = &st->d;
  int h = st->in[1], w = st->in[2];
  double angle = lerp(op->u.affine.degrees, uni(d, 0));
  double cx = 0.0, cy = 0.0, tx = 0.0, ty = 0.0, scale = 1.0, shx = 0.0,
         shy = 0.0;
  if (op->u.affine.has_center) {
    cx = op->u.affine.center[0] - w * 0.5;
    cy = op->u.affine.center[1] - h * 0.5;
  }
  double m[6];
  if (op->kind == NN_AUG_ROTATION) {
    nn_aug_affine_matrix(-angle, 0.0, 0.0, 1.0, 0.0, 0.0, cx, cy, m);
  } else {
    if (op->u.affine.has_translate) {
      double max_dx = op->u.affine.translate[0] * w;
      double max_dy = op->u.affine.translate[1] * h;
      tx = nearbyint(-max_dx + uni(d, 1) * 2.0 * max_dx);
      ty = nearbyint(-max_dy + uni(d, 2) * 2.0 * max_dy);
    }
    if (op->u.affine.has_scale) scale = lerp(op->u.affine.scale, uni(d, 3));
    if (op->u.affine.nshear >= 2) shx = lerp(op->u.affine.shear, uni(d, 4));
    if (op->u.affine.nshear == 4) shy = lerp(op->u.affine.shear + 2, uni(d, 5));
    nn_aug_affine_matrix(angle, tx, ty, scale, shx, shy, cx, cy, m);
  }
  nn_aug_warp(st->src, st->in[0], h, w, st->dst, m, op->u.affine.interp,
              &op->u.affine.fill);
  return 0;
}

static int jitter_shape(const nn_aug_op *op, const int in[3], int out[3],
                        nn_error *err) {
  const int *on = op->u.jitter.active;
  if ((on[0] || on[1] || on[2] || on[3]) && in[0] != 1 && in[0] != 3)
    return nn_seterr(err,
                     "expected an image with 1 or 3 channels, got [%d, %d, %d]",
                     in[0], in[1], in[2]);
  return same_shape(op, in, out, err);
}

/* ColorJitter: a random order of the four adjustments (torch.randperm(4)),
 * each with its factor drawn from its range. */
static int jitter_apply(const nn_aug_op *op, const stage *st) {
  static void (*const adjust[4])(float *, int, int, int, double) = {
      nn_aug_adjust_brightness, nn_aug_adjust_contrast,
      nn_aug_adjust_saturation, nn_aug_adjust_hue};
  int order[4] = {0, 1, 2, 3};
  for (int i = 3; i > 0; i--) {
    int j = (int)randint(&st->d, i, i + 1);
    int t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  copy_image(st);
  for (int k = 0; k < 4; k++) {
    int fn = order[k];
    if (op->u.jitter.active[fn])
      adjust[fn](st->dst, st->in[0], st->in[1], st->in[2],
                 lerp(op->u.jitter.range[fn], uni(&st->d, 4 + fn)));
  }
  return 0;
}

static int blur_apply(const nn_aug_op *op, const stage *st) {
  float sigma = (float)lerp(op->u.blur.sigma, uni(&st->d, 0));
  nn_aug_gaussian_blur(st->src, st->in[0], st->in[1], st->in[2], st->dst,
                       op->u.blur.kx, op->u.blur.ky, sigma, st->tmp);
  return 0;
}

static int normalize_shape(const nn_aug_op *op, const int in[3], int out[3],
                           nn_error *err) {
  int n = op->u.normalize.n;
  if (n != 1 && n != in[0])
    return nn_seterr(
        err, "mean and std have %d values but the image has %d channels", n,
        in[0]);
  return same_shape(op, in, out, err);
}

static int normalize_apply(const nn_aug_op *op, const stage *st) {
  int64_t plane = (int64_t)st->in[1] * st->in[2];
  for (int ch = 0; ch < st->in[0]; ch++) {
    int k = op->u.normalize.n == 1 ? 0 : ch;
    float m = op->u.normalize.mean[k], sd = op->u.normalize.std[k];
    const float *p = st->src + ch * plane;
    float *q = st->dst + ch * plane;
#pragma omp simd
    for (int64_t i = 0; i < plane; i++) q[i] = (p[i] - m) / sd;
  }
  return 0;
}

/* ---- Parameter checks ---- */

static int check_size(int h, int w, nn_error *err) {
  if (h < 1 || w < 1 || h > NN_AUG_MAX_SIDE || w > NN_AUG_MAX_SIDE)
    return nn_seterr(err, "size must be in 1..%d, got [%d, %d]",
                     NN_AUG_MAX_SIDE, h, w);
  return 0;
}

/* lo <= hi, both finite and within [min, max]. */
static int check_range(const double r[2], double min, double max,
                       const char *what, nn_error *err) {
  if (!(isfinite(r[0]) && isfinite(r[1]) && min <= r[0] && r[0] <= r[1] &&
        r[1] <= max))
    return nn_seterr(
        err, "%s must be {min, max} with %g <= min <= max <= %g, got {%g, %g}",
        what, min, max, r[0], r[1]);
  return 0;
}

static int check_fill_param(const nn_aug_fill *f, nn_error *err) {
  if (f->n < 1 || f->n > NN_AUG_MAX_CHANNELS)
    return nn_seterr(err, "fill must have 1..%d values, got %d",
                     NN_AUG_MAX_CHANNELS, f->n);
  for (int i = 0; i < f->n; i++)
    if (!isfinite(f->v[i])) return nn_seterr(err, "fill values must be finite");
  return 0;
}

static int check_padding(const nn_aug_op *op, nn_error *err) {
  for (int i = 0; i < 4; i++)
    if (op->u.crop.padding[i] < 0 || op->u.crop.padding[i] > NN_AUG_MAX_SIDE)
      return nn_seterr(err, "padding must be in 0..%d, got %d", NN_AUG_MAX_SIDE,
                       op->u.crop.padding[i]);
  if ((int)op->u.crop.mode < NN_PAD_CONSTANT ||
      op->u.crop.mode > NN_PAD_SYMMETRIC)
    return nn_seterr(err, "unknown padding mode %d", (int)op->u.crop.mode);
  return check_fill_param(&op->u.crop.fill, err);
}

static int resize_check(const nn_aug_op *op, nn_error *err) {
  int h = op->u.resize.h, w = op->u.resize.w, max_size = op->u.resize.max_size;
  if (w != 0) {
    if (check_size(h, w, err)) return -1;
    if (max_size != 0)
      return nn_seterr(err,
                       "max_size is only supported when size is one number");
  } else if (h < 1 || h > NN_AUG_MAX_SIDE) {
    return nn_seterr(err, "size must be in 1..%d, got %d", NN_AUG_MAX_SIDE, h);
  }
  if (max_size != 0 && max_size <= h)
    return nn_seterr(
        err,
        "max_size = %d must be strictly greater than the requested "
        "size for the smaller edge size = %d",
        max_size, h);
  return 0;
}

static int center_crop_check(const nn_aug_op *op, nn_error *err) {
  return check_size(op->u.center_crop.h, op->u.center_crop.w, err);
}

static int random_crop_check(const nn_aug_op *op, nn_error *err) {
  if (check_size(op->u.crop.h, op->u.crop.w, err)) return -1;
  return check_padding(op, err);
}

static int resized_crop_check(const nn_aug_op *op, nn_error *err) {
  const double *ratio = op->u.resized_crop.ratio;
  if (check_size(op->u.resized_crop.h, op->u.resized_crop.w, err) ||
      check_range(op->u.resized_crop.scale, 0.0, INFINITY, "scale", err))
    return -1;
  if (!(ratio[0] > 0.0))
    return nn_seterr(err, "ratio must be positive, got {%g, %g}", ratio[0],
                     ratio[1]);
  return check_range(ratio, 0.0, INFINITY, "ratio", err);
}

static int flip_check(const nn_aug_op *op, nn_error *err) {
  if (!(op->u.flip.p >= 0.0 && op->u.flip.p <= 1.0))
    return nn_seterr(err, "p must be in [0, 1], got %g", op->u.flip.p);
  return 0;
}

static int affine_check(const nn_aug_op *op, nn_error *err) {
  const double *t = op->u.affine.translate, *sc = op->u.affine.scale;
  int nshear = op->u.affine.nshear;
  if (check_range(op->u.affine.degrees, -INFINITY, INFINITY, "degrees", err))
    return -1;
  if (op->u.affine.has_translate &&
      !(t[0] >= 0.0 && t[0] <= 1.0 && t[1] >= 0.0 && t[1] <= 1.0))
    return nn_seterr(err, "translate values must be in [0, 1], got {%g, %g}",
                     t[0], t[1]);
  if (op->u.affine.has_scale &&
      !(sc[0] > 0.0 && sc[0] <= sc[1] && isfinite(sc[1])))
    return nn_seterr(
        err, "scale must be {min, max} with 0 < min <= max, got {%g, %g}",
        sc[0], sc[1]);
  if (nshear != 0 && nshear != 2 && nshear != 4)
    return nn_seterr(err, "shear must have 2 or 4 values, got %d", nshear);
  for (int k = 0; k < nshear; k += 2)
    if (check_range(op->u.affine.shear + k, -INFINITY, INFINITY, "shear", err))
      return -1;
  if (op->u.affine.has_center &&
      !(isfinite(op->u.affine.center[0]) && isfinite(op->u.affine.center[1])))
    return nn_seterr(err, "center must be finite");
  if (op->u.affine.interp != NN_INTERP_NEAREST &&
      op->u.affine.interp != NN_INTERP_BILINEAR)
    return nn_seterr(err, "unknown interpolation %d", (int)op->u.affine.interp);
  return check_fill_param(&op->u.affine.fill, err);
}

static int jitter_check(const nn_aug_op *op, nn_error *err) {
  static const char *const names[4] = {"brightness", "contrast", "saturation",
                                       "hue"};
  for (int k = 0; k < 4; k++) {
    int hue = k == NN_JITTER_HUE;
    if (op->u.jitter.active[k] &&
        check_range(op->u.jitter.range[k], hue ? -0.5 : 0.0,
                    hue ? 0.5 : INFINITY, names[k], err))
      return -1;
  }
  return 0;
}

static int blur_check(const nn_aug_op *op, nn_error *err) {
  int kx = op->u.blur.kx, ky = op->u.blur.ky;
  const double *sg = op->u.blur.sigma;
  if (kx < 1 || ky < 1 || kx % 2 == 0 || ky % 2 == 0 ||
      kx > NN_AUG_MAX_KERNEL || ky > NN_AUG_MAX_KERNEL)
    return nn_seterr(err, "kernel size must be odd and in 1..%d, got [%d, %d]",
                     NN_AUG_MAX_KERNEL, kx, ky);
  if (!(sg[0] > 0.0 && sg[0] <= sg[1] && isfinite(sg[1])))
    return nn_seterr(
        err, "sigma must be {min, max} with 0 < min <= max, got {%g, %g}",
        sg[0], sg[1]);
  return 0;
}

static int normalize_check(const nn_aug_op *op, nn_error *err) {
  int n = op->u.normalize.n;
  if (n < 1 || n > NN_AUG_MAX_CHANNELS)
    return nn_seterr(err, "mean and std must have 1..%d values, got %d",
                     NN_AUG_MAX_CHANNELS, n);
  for (int i = 0; i < n; i++) {
    if (!isfinite(op->u.normalize.mean[i]) || !isfinite(op->u.normalize.std[i]))
      return nn_seterr(err, "mean and std must be finite");
    if (op->u.normalize.std[i] == 0.0f)
      return nn_seterr(err,
                       "std evaluated to zero, leading to division by zero");
  }
  return 0;
}

/* A transform kind: torchvision's name, its parameter check, output shape
 * and application. */
typedef struct op_impl {
  const char *name;
  int (*check)(const nn_aug_op *op, nn_error *err);
  shape_fn shape;
  apply_fn apply;
} op_impl;

static const op_impl impls[NN_AUG_KINDS] = {
    [NN_AUG_RESIZE] = {"Resize", resize_check, resize_shape, resize_apply},
    [NN_AUG_CENTER_CROP] = {"CenterCrop", center_crop_check, center_crop_shape,
                            center_crop_apply},
    [NN_AUG_RANDOM_CROP] = {"RandomCrop", random_crop_check, random_crop_shape,
                            random_crop_apply},
    [NN_AUG_RANDOM_RESIZED_CROP] = {"RandomResizedCrop", resized_crop_check,
                                    resized_crop_shape, resized_crop_apply},
    [NN_AUG_HFLIP] = {"RandomHorizontalFlip", flip_check, same_shape,
                      flip_apply},
    [NN_AUG_VFLIP] = {"RandomVerticalFlip", flip_check, same_shape, flip_apply},
    [NN_AUG_ROTATION] = {"RandomRotation", affine_check, affine_shape,
                         affine_apply},
    [NN_AUG_AFFINE] = {"RandomAffine", affine_check, affine_shape,
                       affine_apply},
    [NN_AUG_COLOR_JITTER] = {"ColorJitter", jitter_check, jitter_shape,
                             jitter_apply},
    [NN_AUG_GAUSSIAN_BLUR] = {"GaussianBlur", blur_check, same_shape,
                              blur_apply},
    [NN_AUG_NORMALIZE] = {"Normalize", normalize_check, normalize_shape,
                          normalize_apply},
    [NN_AUG_PAD] = {"Pad", check_padding, pad_shape, pad_apply},
};

const char *nn_aug_name(nn_aug_kind kind) {
  if ((int)kind < 0 || kind >= NN_AUG_KINDS) return "?";
  return impls[kind].name;
}

int nn_aug_check_op(const nn_aug_op *op, nn_error *err) {
  if ((int)op->kind < 0 || op->kind >= NN_AUG_KINDS)
    return nn_seterr(err, "unknown transform kind %d", (int)op->kind);
  return impls[op->kind].check(op, err);
}

/* ---- Pipelines ---- */

int nn_aug_output_shape(const nn_aug_op *ops, int nops, const int in[3],
                        int out[3], int *bad_op, nn_error *err) {
  int cur[3] = {in[0], in[1], in[2]};
  if (bad_op) *bad_op = -1;
  for (int i = 0; i < nops; i++) {
    int next[3];
    if (nn_aug_check_op(&ops[i], err) ||
        impls[ops[i].kind].shape(&ops[i], cur, next, err)) {
      if (bad_op) *bad_op = i;
      return -1;
    }
    if ((int64_t)next[0] * next[1] * next[2] > NN_MAX_NUMEL) {
      if (bad_op) *bad_op = i;
      return nn_seterr(err, "output [%d, %d, %d] is too large", next[0],
                       next[1], next[2]);
    }
    memcpy(cur, next, sizeof cur);
  }
  memcpy(out, cur, sizeof cur);
  return 0;
}

/* Runs one sample through the pipeline: stage i reads cur and writes the
 * free one of the two buffers, the last stage writes out. */
static int run_sample(const nn_aug_op *ops, int nops, const int *shapes,
                      const uint64_t *keys, int64_t b, const float *in,
                      float *out, float *buf, int64_t maxsz, nn_ctx *one,
                      nn_error *err) {
  float *a = buf, *bb = buf + maxsz;
  stage st = {.src = in, .tmp = buf + 2 * maxsz, .one = one, .err = err};
  if (nops == 0) {
    memcpy(out, in, (size_t)shapes[0] * shapes[1] * shapes[2] * sizeof *out);
    return 0;
  }
  for (int i = 0; i < nops; i++) {
    st.in = shapes + 3 * i;
    st.out = shapes + 3 * (i + 1);
    st.dst = i == nops - 1 ? out : (st.src == a ? bb : a);
    st.d = (draws){keys[i], (uint64_t)b * NN_AUG_DRAWS};
    if (impls[ops[i].kind].apply(&ops[i], &st)) return -1;
    st.src = st.dst;
  }
  return 0;
}

int nn_aug_run(nn_ctx *ctx, const nn_aug_op *ops, int nops, nn_tensor *x,
               nn_tensor **out, int *bad_op, nn_error *err) {
  char sbuf[128];
  *out = NULL;
  if (bad_op) *bad_op = -1;
  int nd = x->ndim;
  if (nd != 3 && nd != 4) {
    nn_tensor_shape_str(x, sbuf, sizeof sbuf);
    return nn_seterr(
        err, "expected an image [C, H, W] or a batch [B, C, H, W], got %s",
        sbuf);
  }
  const int64_t *xs = x->shape + (nd - 3);
  if (xs[0] < 1 || xs[0] > MAX_CHANNELS || xs[1] < 1 ||
      xs[1] > NN_AUG_MAX_SIDE || xs[2] < 1 || xs[2] > NN_AUG_MAX_SIDE) {
    nn_tensor_shape_str(x, sbuf, sizeof sbuf);
    return nn_seterr(
        err, "expected an image with 1..%d channels and sides in 1..%d, got %s",
        MAX_CHANNELS, NN_AUG_MAX_SIDE, sbuf);
  }
  int64_t nb = nd == 4 ? x->shape[0] : 1;
  int *shapes = malloc((size_t)(nops + 1) * 3 * sizeof *shapes);
  uint64_t *keys = malloc((size_t)(nops > 0 ? nops : 1) * sizeof *keys);
  nn_tensor *src = NULL, *res = NULL;
  float *bufs = NULL;
  int rc = -1;
  if (!shapes || !keys) {
    nn_seterr(err, "out of memory");
    goto done;
  }
  shapes[0] = (int)xs[0];
  shapes[1] = (int)xs[1];
  shapes[2] = (int)xs[2];
  int64_t maxsz = (int64_t)shapes[0] * shapes[1] * shapes[2];
  for (int i = 0; i < nops; i++) {
    if (nn_aug_output_shape(ops + i, 1, shapes + 3 * i, shapes + 3 * (i + 1),
                            NULL, err)) {
      if (bad_op) *bad_op = i;
      goto done;
    }
    int64_t sz =
        (int64_t)shapes[3 * i + 3] * shapes[3 * i + 4] * shapes[3 * i + 5];
    if (sz > maxsz) maxsz = sz;
  }
  const int *os = shapes + 3 * nops;
  int64_t oshape[4] = {nb, os[0], os[1], os[2]};
  res = nn_tensor_empty(nd, nd == 4 ? oshape : oshape + 1, err);
  if (!res) goto done;
  src = nn_tensor_contiguous(x, err);
  if (!src) goto done;
  int nth = ctx->num_threads;
  if (nb < nth) nth = nb > 0 ? (int)nb : 1;
  /* Per thread: two stage buffers and the op's temporary. */
  bufs = nn_alloc_floats((int64_t)nth * 3 * maxsz, err);
  if (!bufs) goto done;
  for (int i = 0; i < nops; i++) keys[i] = nn_rng_key(&ctx->rng);

  int64_t in_size = (int64_t)shapes[0] * shapes[1] * shapes[2];
  int64_t out_size = (int64_t)os[0] * os[1] * os[2];
  const float *xin = nn_data(src);
  float *xout = nn_data(res);
  int failed = 0;
#pragma omp parallel num_threads(nth) if (nth > 1)
  {
    int t = 0;
#ifdef _OPENMP
    t = omp_get_thread_num();
#endif
    float *mine = bufs + (int64_t)t * 3 * maxsz;
    nn_ctx one = *ctx;
    one.num_threads = 1;
    nn_error e;
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < nb; b++) {
      if (run_sample(ops, nops, shapes, keys, b, xin + b * in_size,
                     xout + b * out_size, mine, maxsz, &one, &e)) {
#pragma omp critical(nn_augment_error)
        {
          if (!failed) {
            failed = 1;
            if (err) *err = e;
          }
        }
      }
    }
  }
  if (failed) goto done;
  *out = res;
  res = NULL;
  rc = 0;
done:
  nn_free_floats(bufs);
  nn_tensor_release(src);
  nn_tensor_release(res);
  free(shapes);
  free(keys);
  return rc;
}
