/*
 * image.h - PNG and JPEG decoding and encoding, and decoding straight into
 * an image store (the decoded cache of image datasets).
 *
 * Formats are recognised by their signature bytes, never by the file name:
 * PNG through libpng (bit depths 1-16; gray, gray+alpha, RGB, RGBA,
 * palette; transparency chunks become alpha), JPEG through libjpeg-turbo's
 * TurboJPEG API (gray and YCbCr/RGB; CMYK is refused as unsupported).
 *
 * Channels.  A decoded image is converted to the requested channel count,
 * 1 (gray), 3 (RGB) or 4 (RGBA), as PIL's convert("L"/"RGB"/"RGBA") does:
 * gray is replicated into RGB; RGB becomes gray by the ITU-R 601-2 luma
 * transform L = R*299/1000 + G*587/1000 + B*114/1000, computed (for 8-bit
 * data) with PIL's rounding, (R*19595 + G*38470 + B*7471 + 0x8000) >> 16;
 * alpha is dropped (not premultiplied) when not requested, and is 255 (1.0)
 * when requested of an image without it.  16-bit samples become v / 65535
 * as floats, and round(v * 255 / 65535) where uint8 is needed.
 *
 * Sizes.  A requested size follows torchvision's Resize: {h, w} exactly, or
 * one number for the smaller edge (see nn_resize_output_size).  Resizing is
 * resize.h's antialiased bilinear; 8-bit images are resized as uint8 with
 * PIL's rounding, so nn_image_load(..., size) equals torchvision's
 * Resize(size) on the PIL image followed by ToTensor.  With `draft` set, a
 * JPEG is first decoded at the smallest DCT scale (1/8, 2/8, ... 8/8) whose
 * image is at least the target size on both sides, then resized the rest of
 * the way: several times faster on large photos, and within a few levels of
 * the full decode (as PIL's Image.draft).
 *
 * Limits and errors.  The declared dimensions are read from the header and
 * checked before any pixel memory is allocated: more than
 * NN_IMAGE_MAX_SIDE per side or NN_IMAGE_MAX_PIXELS pixels is refused
 * (decompression bomb protection).  Every error message starts with
 * "image '<path>': " and says what is wrong (cannot open, not a PNG or JPEG
 * file, corrupt or truncated data with the decoder's message, unsupported
 * color space, too large).  libpng's errors are caught inside this file and
 * never escape.  A truncated JPEG, or any JPEG libjpeg warns about, is
 * refused.
 *
 * Decoded cache protocol.  nn_image_load_into / nn_image_load_batch_into
 * write slots of an nn_imagestore (runtime/imagestore.h); the store keeps
 * no record of which slots are filled: callers track that themselves (the
 * datasets code keeps a Lua array of filled flags per cache), and a new
 * store's pixels are zero.
 */
#ifndef NN_IMAGE_H
#define NN_IMAGE_H

#include <stdint.h>

#include "context.h"
#include "imagestore.h"
#include "tensor.h"

/* Largest declared width or height, and pixel count, a decoder accepts. */
#define NN_IMAGE_MAX_SIDE 32768
#define NN_IMAGE_MAX_PIXELS ((int64_t)1 << 28)

typedef enum nn_image_format {
  NN_IMAGE_PNG = 1,
  NN_IMAGE_JPEG = 2,
} nn_image_format;

/* What a file's header declares. */
typedef struct nn_image_info {
  nn_image_format format;
  int width, height;
  /* Channels of the decoded data before conversion: 1 gray, 2 gray+alpha,
   * 3 RGB, 4 RGBA (a PNG with a tRNS chunk counts its alpha) or CMYK. */
  int channels;
  /* PNG: 8 or 16 (depths below 8 decode as 8); JPEG: the sample precision
   * (only 8 is decoded). */
  int bit_depth;
} nn_image_info;

/* How to decode: the channel count (1, 3 or 4), the target size (size_h = 0:
 * the image's own size; size_w = 0: size_h is the smaller edge; else
 * exactly size_h x size_w), and whether JPEGs may use DCT-scaled decoding
 * (draft) when a size is given. */
typedef struct nn_image_opts {
  int channels;
  int size_h, size_w;
  int draft;
} nn_image_opts;

/* "png" or "jpeg". */
const char *nn_image_format_name(nn_image_format f);

/* The size *sw x *sh at which a w x h JPEG is decoded for a target of
 * th x tw with draft: the smallest DCT scale (num/8, num = 1..8) whose
 * scaled image (sides rounded up) is at least th x tw; w x h itself when
 * none is smaller. */
void nn_image_jpeg_draft_size(int w, int h, int th, int tw, int *sw, int *sh);

/* Reads the header of the file at path (the first chunks of a PNG, the
 * markers up to the frame header of a JPEG) into *info.  Fails naming the
 * file when it cannot be read, is not a PNG or JPEG, or its header is
 * malformed or truncated.  Does not check the size limits. */
int nn_image_info_read(const char *path, nn_image_info *info, nn_error *err);

/* Decodes the file at path into a new float tensor [C, H, W] with values in
 * [0, 1] (owned by the caller), converted and resized as opts says.  Fails
 * (returning NULL, allocating nothing) as described above, on a bad channel
 * count or size, or out of memory. */
nn_tensor *nn_image_load(const char *path, const nn_image_opts *opts,
                         nn_error *err);

/* Decodes the image in buf[0..len) into a new malloc'ed planar uint8 buffer
 * *out [channels, *h, *w] (owned by the caller), converted and resized as
 * opts says; name is the file name used in error messages.  On failure *out
 * is NULL. */
int nn_image_decode_u8(const uint8_t *buf, int64_t len, const char *name,
                       const nn_image_opts *opts, uint8_t **out, int *h,
                       int *w, nn_error *err);

/* Decodes the file at path into slot i (0-based) of s: s->c channels,
 * resized to exactly s->h x s->w (draft as given).  The label of the slot
 * is left alone.  On failure the slot's pixels are unspecified. */
int nn_image_load_into(nn_imagestore *s, int64_t i, const char *path,
                       int draft, nn_error *err);

/* The same for n files: paths[k] into slot slots[k] (0-based), decoded in
 * parallel on ctx->num_threads threads (each image by one thread, so the
 * result does not depend on the thread count).  All files are attempted;
 * on failure the error is that of the first failing file in the order of
 * the arrays, and the slots of failing files are unspecified.  Fails
 * before decoding anything on a slot outside [0, s->n). */
int nn_image_load_batch_into(nn_ctx *ctx, nn_imagestore *s,
                             const int64_t *slots, const char *const *paths,
                             int64_t n, int draft, nn_error *err);

/* A new store for n images of c x h x w uint8 pixels, zeroed, with zero
 * labels: in memory when mmap_path is NULL, else backed by the file at
 * mmap_path, created or truncated to n*c*h*w bytes and mapped shared (the
 * store unmaps it when freed; the file stays).  Fails on bad dimensions
 * (see nn_imagestore_new), or when the file cannot be created or mapped. */
nn_imagestore *nn_image_store_new(int64_t n, int c, int h, int w,
                                  const char *mmap_path, nn_error *err);

/* Writes t ([C, H, W] with C in 1, 3, 4, or [H, W]; any strides) as an
 * 8-bit PNG (gray, RGB, RGBA): values are clamped to [0, 1] and stored as
 * round(v * 255) (NaN as 0).  Fails on a bad shape or when the file cannot
 * be written (a partial file is removed). */
int nn_image_save_png(const char *path, const nn_tensor *t, nn_error *err);

/* The same as a baseline JPEG of the given quality (1..100; 4:2:0 chroma
 * subsampling for RGB), through TurboJPEG; t has 1 or 3 channels. */
int nn_image_save_jpeg(const char *path, const nn_tensor *t, int quality,
                       nn_error *err);

#endif
