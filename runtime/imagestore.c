/* imagestore.c - uint8 image store and batch assembly (see imagestore.h). */
#include "imagestore.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Largest zero padding accepted on each side. */
#define MAX_PAD 4096

/* Checks the dimensions of a store; 0 when they are acceptable. */
static int check_dims(int64_t n, int c, int h, int w, nn_error *err) {
  if (n < 0 || n > NN_IMAGESTORE_MAX_COUNT)
    return nn_seterr(err, "image count %lld is out of range 0..%lld",
                     (long long)n, (long long)NN_IMAGESTORE_MAX_COUNT);
  if (c < 1 || c > NN_IMAGESTORE_MAX_CHANNELS)
    return nn_seterr(err, "channel count %d is out of range 1..%d", c,
                     NN_IMAGESTORE_MAX_CHANNELS);
  if (h < 1 || h > NN_IMAGESTORE_MAX_SIDE || w < 1 ||
      w > NN_IMAGESTORE_MAX_SIDE)
    return nn_seterr(err, "image size %dx%d is out of range 1..%d", h, w,
                     NN_IMAGESTORE_MAX_SIDE);
  /* c*h*w < 2^44 and n < 2^27: the product fits in int64. */
  int64_t bytes = n * c * (int64_t)h * w;
  if (bytes > NN_IMAGESTORE_MAX_BYTES)
    return nn_seterr(err,
                     "%lld images of %dx%dx%d need %lld bytes, more than the "
                     "limit of %lld",
                     (long long)n, c, h, w, (long long)bytes,
                     (long long)NN_IMAGESTORE_MAX_BYTES);
  return 0;
}

/* Allocates the struct and its labels around a pixel block. */
static nn_imagestore *make_store(int64_t n, int c, int h, int w,
                                 uint8_t *pixels, nn_pixels_owner owner,
                                 nn_error *err) {
  nn_imagestore *s = calloc(1, sizeof *s);
  int32_t *labels = calloc((size_t)(n > 0 ? n : 1), sizeof *labels);
  if (!s || !labels) {
    free(s);
    free(labels);
    nn_seterr(err, "out of memory allocating the labels of %lld images",
              (long long)n);
    return NULL;
  }
  s->n = n;
  s->c = c;
  s->h = h;
  s->w = w;
  s->pixels = pixels;
  s->pixel_bytes = n * c * (int64_t)h * w;
  s->labels = labels;
  s->pixels_owner = owner;
  s->refcount = 1;
  return s;
}

nn_imagestore *nn_imagestore_new(int64_t n, int c, int h, int w,
                                 nn_error *err) {
  if (check_dims(n, c, h, w, err)) return NULL;
  int64_t bytes = n * c * (int64_t)h * w;
  uint8_t *pixels = malloc((size_t)(bytes > 0 ? bytes : 1));
  if (!pixels) {
    nn_seterr(err, "out of memory allocating %lld bytes for %lld images",
              (long long)bytes, (long long)n);
    return NULL;
  }
  nn_imagestore *s = make_store(n, c, h, w, pixels, NN_PIXELS_MALLOC, err);
  if (!s) free(pixels);
  return s;
}

nn_imagestore *nn_imagestore_wrap(int64_t n, int c, int h, int w,
                                  uint8_t *pixels, nn_pixels_owner owner,
                                  nn_error *err) {
  if (check_dims(n, c, h, w, err)) return NULL;
  if (!pixels && n > 0) {
    nn_seterr(err, "no pixel block given for %lld images", (long long)n);
    return NULL;
  }
  return make_store(n, c, h, w, pixels, owner, err);
}

nn_imagestore *nn_imagestore_retain(nn_imagestore *s) {
  s->refcount++;
  return s;
}

void nn_imagestore_release(nn_imagestore *s) {
  if (!s || --s->refcount > 0) return;
  switch (s->pixels_owner) {
    case NN_PIXELS_MALLOC:
      free(s->pixels);
      break;
    case NN_PIXELS_MMAP:
      if (s->pixels && s->pixel_bytes > 0)
        munmap(s->pixels, (size_t)s->pixel_bytes);
      break;
    case NN_PIXELS_BORROWED:
      break;
  }
  free(s->labels);
  free(s);
}

void nn_imagestore_batch_shape(const nn_imagestore *s, int64_t b, int pad,
                               int channels, int64_t shape[4]) {
  shape[0] = b;
  shape[1] = channels;
  shape[2] = s->h + 2 * (int64_t)pad;
  shape[3] = s->w + 2 * (int64_t)pad;
}

/* Checks the arguments of a batch request; 0 when it can be assembled. */
static int check_request(const nn_imagestore *s, const int64_t *idx,
                         int64_t b, int pad, int channels, nn_error *err) {
  if (b < 0) return nn_seterr(err, "batch size %lld is negative", (long long)b);
  if (pad < 0 || pad > MAX_PAD)
    return nn_seterr(err, "pad %d is out of range 0..%d", pad, MAX_PAD);
  if (channels < 1 || channels > NN_IMAGESTORE_MAX_CHANNELS)
    return nn_seterr(err, "channel count %d is out of range 1..%d", channels,
                     NN_IMAGESTORE_MAX_CHANNELS);
  if (channels != s->c && s->c != 1)
    return nn_seterr(err,
                     "cannot make %d channels from images with %d channels "
                     "(expected channels = %d)",
                     channels, s->c, s->c);
  int64_t shape[4];
  nn_imagestore_batch_shape(s, b, pad, channels, shape);
  int64_t per = shape[1] * shape[2] * shape[3];
  if (b > 0 && per > NN_MAX_NUMEL / b)
    return nn_seterr(err, "a batch of %lld images of %lldx%lldx%lld is too "
                     "large", (long long)b, (long long)shape[1],
                     (long long)shape[2], (long long)shape[3]);
  for (int64_t k = 0; k < b; k++)
    if (idx[k] < 0 || idx[k] >= s->n)
      return nn_seterr(err, "index %lld (at position %lld) is out of range "
                       "0..%lld", (long long)idx[k], (long long)k,
                       (long long)s->n - 1);
  return 0;
}

/* Writes one image as floats into dst [channels, H+2p, W+2p]. */
static void fill_one(const nn_imagestore *s, const uint8_t *src, int pad,
                     int channels, const float *lut, float *dst) {
  int64_t oh = s->h + 2 * (int64_t)pad, ow = s->w + 2 * (int64_t)pad;
  int64_t plane = oh * ow;
  for (int ch = 0; ch < channels; ch++) {
    const uint8_t *sp = src + (s->c == 1 ? 0 : (int64_t)ch * s->h * s->w);
    float *dp = dst + ch * plane;
    if (pad > 0) memset(dp, 0, (size_t)(pad * ow) * sizeof *dp);
    for (int64_t r = 0; r < s->h; r++) {
      float *row = dp + (r + pad) * ow;
      const uint8_t *in = sp + r * s->w;
      for (int p = 0; p < pad; p++) row[p] = 0.0f;
      for (int64_t q = 0; q < s->w; q++) row[pad + q] = lut[in[q]];
      for (int64_t q = pad + s->w; q < ow; q++) row[q] = 0.0f;
    }
    if (pad > 0)
      memset(dp + (pad + s->h) * ow, 0, (size_t)(pad * ow) * sizeof *dp);
  }
}

int nn_imagestore_fill(nn_ctx *ctx, const nn_imagestore *s,
                       const int64_t *idx, int64_t b, int pad, int channels,
                       float *x, float *y, nn_error *err) {
  if (check_request(s, idx, b, pad, channels, err)) return -1;
  /* pixel / 255 by division, as torchvision's ToTensor computes it. */
  float lut[256];
  for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;
  int64_t shape[4];
  nn_imagestore_batch_shape(s, b, pad, channels, shape);
  int64_t per = shape[1] * shape[2] * shape[3];
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (b > 1)
  for (int64_t k = 0; k < b; k++) {
    fill_one(s, nn_imagestore_image(s, idx[k]), pad, channels, lut,
             x + k * per);
    if (y) y[k] = (float)s->labels[idx[k]] + 1.0f;
  }
  return 0;
}

int nn_imagestore_batch(nn_ctx *ctx, const nn_imagestore *s,
                        const int64_t *idx, int64_t b, int pad, int channels,
                        nn_tensor **x, nn_tensor **y, nn_error *err) {
  *x = NULL;
  if (y) *y = NULL;
  if (check_request(s, idx, b, pad, channels, err)) return -1;
  int64_t shape[4];
  nn_imagestore_batch_shape(s, b, pad, channels, shape);
  nn_tensor *tx = nn_tensor_empty(4, shape, err);
  nn_tensor *ty = tx && y ? nn_tensor_empty(1, &b, err) : NULL;
  if (!tx || (y && !ty)) {
    nn_tensor_release(tx);
    return -1;
  }
  if (nn_imagestore_fill(ctx, s, idx, b, pad, channels, nn_data(tx),
                         ty ? nn_data(ty) : NULL, err)) {
    nn_tensor_release(tx);
    nn_tensor_release(ty);
    return -1;
  }
  *x = tx;
  if (y) *y = ty;
  return 0;
}
