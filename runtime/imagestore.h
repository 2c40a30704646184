/*
 * imagestore.h - an in-memory store of uint8 images with integer labels, and
 * the batch assembly that turns a list of its images into float tensors.
 *
 * A store holds n images of c x h x w pixels, image-major and contiguous in
 * one block (image i starts at pixels + i*c*h*w, each image channel-major
 * [C,H,W]), and n int32 labels (0-based class indices).  It is what
 * Fashion-MNIST loads into (see idx.h) and what decoded-image caches hold.
 *
 * Ownership: a store is refcounted (single-threaded counting, like tensors):
 * _new and _wrap return one reference, nn_imagestore_retain adds one and
 * nn_imagestore_release drops one, freeing the store at zero.  The labels are
 * always owned by the store.  The pixel block is freed according to
 * `pixels_owner`: malloc'ed by the store, a mapping made with mmap (released
 * with munmap), or borrowed from the caller (never freed by the store).
 *
 * Once filled, a store is read-only, so any number of threads may assemble
 * batches from it at the same time.
 */
#ifndef NN_IMAGESTORE_H
#define NN_IMAGESTORE_H

#include <stddef.h>
#include <stdint.h>

#include "context.h"
#include "tensor.h"

/* Largest image count and side length a store accepts. */
#define NN_IMAGESTORE_MAX_COUNT ((int64_t)100000000)
#define NN_IMAGESTORE_MAX_SIDE 65536
#define NN_IMAGESTORE_MAX_CHANNELS 4096
/* Largest pixel block (bytes) a store allocates: 64 GiB. */
#define NN_IMAGESTORE_MAX_BYTES ((int64_t)1 << 36)

/* Who frees the pixel block. */
typedef enum nn_pixels_owner {
  NN_PIXELS_MALLOC,   /* the store: free() */
  NN_PIXELS_MMAP,     /* the store: munmap(pixels, pixel_bytes) */
  NN_PIXELS_BORROWED, /* the caller, after the last release */
} nn_pixels_owner;

typedef struct nn_imagestore {
  int64_t n;               /* image count */
  int c, h, w;             /* channels, height, width of every image */
  uint8_t *pixels;         /* n*c*h*w bytes */
  int64_t pixel_bytes;     /* n*c*h*w */
  int32_t *labels;         /* n labels, 0-based; owned */
  nn_pixels_owner pixels_owner;
  int refcount;
} nn_imagestore;

/* Pixels of image i (0-based, unchecked): c*h*w bytes, [C,H,W]. */
static inline uint8_t *nn_imagestore_image(const nn_imagestore *s,
                                           int64_t i) {
  return s->pixels + i * (int64_t)s->c * s->h * s->w;
}

/* A new store for n images of c x h x w with one malloc'ed pixel block
 * (uninitialised) and zeroed labels.  Fails on a negative or too large
 * count, a non-positive or too large dimension, a pixel block larger than
 * NN_IMAGESTORE_MAX_BYTES, or out of memory. */
nn_imagestore *nn_imagestore_new(int64_t n, int c, int h, int w,
                                 nn_error *err);

/* A new store over an existing pixel block of n*c*h*w bytes, released
 * according to owner when the store is freed (NN_PIXELS_MALLOC: free();
 * NN_PIXELS_MMAP: munmap; NN_PIXELS_BORROWED: left to the caller).  Labels
 * are allocated and zeroed.  Same checks as nn_imagestore_new; on failure
 * the pixel block is NOT released (the caller still owns it). */
nn_imagestore *nn_imagestore_wrap(int64_t n, int c, int h, int w,
                                  uint8_t *pixels, nn_pixels_owner owner,
                                  nn_error *err);

/* Adds a reference and returns s. */
nn_imagestore *nn_imagestore_retain(nn_imagestore *s);
/* Drops a reference; frees the store at zero.  NULL is allowed. */
void nn_imagestore_release(nn_imagestore *s);

/* Shape of a batch of b images of this store with `pad` zero pixels on each
 * side and `channels` output channels: [b, channels, h+2*pad, w+2*pad]. */
void nn_imagestore_batch_shape(const nn_imagestore *s, int64_t b, int pad,
                               int channels, int64_t shape[4]);

/* Batch assembly into caller buffers.  For k in 0..b-1, image idx[k]
 * (0-based) becomes x[k] = pixel / 255 as float [channels, h+2*pad,
 * w+2*pad], with zeros in the padding; a 1-channel store may be asked for
 * any channel count (the channel is replicated), otherwise channels must
 * equal s->c.  y (may be NULL) receives label + 1 (1-based, as float) for
 * each image.  x must hold b*channels*(h+2*pad)*(w+2*pad) floats.  Parallel
 * over the batch; the result does not depend on the thread count.  Fails
 * (writing nothing) on an index outside [0, n), a negative or too large pad,
 * or an unsupported channel count. */
int nn_imagestore_fill(nn_ctx *ctx, const nn_imagestore *s,
                       const int64_t *idx, int64_t b, int pad, int channels,
                       float *x, float *y, nn_error *err);

/* The same into new tensors: *x gets [b, channels, h+2*pad, w+2*pad], *y
 * (when y is not NULL) gets [b].  Both are owned by the caller; on failure
 * nothing is allocated and *x, *y are left NULL. */
int nn_imagestore_batch(nn_ctx *ctx, const nn_imagestore *s,
                        const int64_t *idx, int64_t b, int pad, int channels,
                        nn_tensor **x, nn_tensor **y, nn_error *err);

#endif
