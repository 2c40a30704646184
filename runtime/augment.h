/*
 * augment.h - image augmentation with torchvision.transforms' semantics,
 * executed in C and parallel over the batch.
 *
 * A pipeline is an array of nn_aug_op, each one transform with the
 * parameters of its torchvision constructor (Resize, CenterCrop, RandomCrop,
 * RandomResizedCrop, RandomHorizontalFlip, RandomVerticalFlip,
 * RandomRotation, RandomAffine, ColorJitter, GaussianBlur, Normalize, and
 * Pad).  nn_aug_run applies the ops in order to a float image [C,H,W] or to
 * every image of a batch [B,C,H,W], each sample running through the whole
 * pipeline on one thread with its own scratch buffers.
 *
 * Randomness: a run takes one key per op from ctx->rng (nn_rng_key), and
 * sample b draws its parameters for op i from nn_rng_uniform(key_i,
 * b * NN_AUG_DRAWS + j).  The output is therefore a pure function of the
 * input, the ops and the RNG state: the same with any thread count.
 * Parameters are drawn per sample (torchvision draws one set per call).
 *
 * Geometry follows torchvision on tensors: crops and padding index exactly
 * as F.crop / F.pad; rotations and affine maps build torchvision's inverse
 * matrix and sample like grid_sample(align_corners=False) in float32, so
 * nearest-neighbour results agree pixel for pixel; Resize and
 * RandomResizedCrop resize bilinearly with antialiasing (resize.h).
 *
 * The functional core (nn_aug_crop, nn_aug_warp, nn_aug_adjust_*, ...)
 * applies one transform with given parameters to one contiguous image; it
 * never fails once its arguments have been checked by the caller.
 */
#ifndef NN_AUGMENT_H
#define NN_AUGMENT_H

#include <stdint.h>

#include "context.h"
#include "tensor.h"

/* Most channels a fill colour or Normalize's mean/std may list. */
#define NN_AUG_MAX_CHANNELS 64
/* Random numbers reserved per sample and op. */
#define NN_AUG_DRAWS 64
/* Largest Gaussian kernel side and output side of a resizing op. */
#define NN_AUG_MAX_KERNEL 255
#define NN_AUG_MAX_SIDE 65536

typedef enum nn_aug_kind {
  NN_AUG_RESIZE,
  NN_AUG_CENTER_CROP,
  NN_AUG_RANDOM_CROP,
  NN_AUG_RANDOM_RESIZED_CROP,
  NN_AUG_HFLIP,
  NN_AUG_VFLIP,
  NN_AUG_ROTATION,
  NN_AUG_AFFINE,
  NN_AUG_COLOR_JITTER,
  NN_AUG_GAUSSIAN_BLUR,
  NN_AUG_NORMALIZE,
  NN_AUG_PAD,
  NN_AUG_KINDS
} nn_aug_kind;

/* torchvision's padding_mode. */
typedef enum nn_pad_mode {
  NN_PAD_CONSTANT,
  NN_PAD_EDGE,
  NN_PAD_REFLECT,
  NN_PAD_SYMMETRIC
} nn_pad_mode;

typedef enum nn_interp { NN_INTERP_NEAREST, NN_INTERP_BILINEAR } nn_interp;

/* A fill colour: n == 1 fills every channel with v[0], otherwise n must be
 * the channel count. */
typedef struct nn_aug_fill {
  int n;
  float v[NN_AUG_MAX_CHANNELS];
} nn_aug_fill;

/* ColorJitter's four adjustments, in torchvision's fn_idx numbering. */
enum {
  NN_JITTER_BRIGHTNESS,
  NN_JITTER_CONTRAST,
  NN_JITTER_SATURATION,
  NN_JITTER_HUE
};

/* One transform.  Sizes are {h, w}; ranges are {min, max}. */
typedef struct nn_aug_op {
  nn_aug_kind kind;
  union {
    /* Resize: w == 0 matches the smaller edge to h (then max_size, when
     * > 0, bounds the longer edge). */
    struct {
      int h, w, max_size;
    } resize;
    struct {
      int h, w;
    } center_crop;
    /* RandomCrop and Pad (Pad ignores h, w, pad_if_needed). padding is
     * left, top, right, bottom. */
    struct {
      int h, w;
      int padding[4];
      int pad_if_needed;
      nn_pad_mode mode;
      nn_aug_fill fill;
    } crop;
    struct {
      int h, w;
      double scale[2], ratio[2];
    } resized_crop;
    /* Flips: probability p. */
    struct {
      double p;
    } flip;
    /* RandomRotation (degrees only) and RandomAffine.  nshear is 0, 2
     * (x shear) or 4 (x and y shear); center in pixels from the top-left
     * corner when has_center. */
    struct {
      double degrees[2];
      int has_translate, has_scale, nshear, has_center;
      double translate[2], scale[2], shear[4], center[2];
      nn_interp interp;
      nn_aug_fill fill;
    } affine;
    /* ColorJitter: factor ranges of the adjustments whose active flag is
     * set (torchvision leaves out a range equal to its neutral value). */
    struct {
      int active[4];
      double range[4][2];
    } jitter;
    /* GaussianBlur: kernel width kx and height ky, sigma range. */
    struct {
      int kx, ky;
      double sigma[2];
    } blur;
    /* Normalize: n == 1 applies mean[0], std[0] to every channel. */
    struct {
      int n;
      float mean[NN_AUG_MAX_CHANNELS], std[NN_AUG_MAX_CHANNELS];
    } normalize;
  } u;
} nn_aug_op;

/* torchvision's class name of a kind ("RandomCrop"). */
const char *nn_aug_name(nn_aug_kind kind);

/* Checks the parameters of op (sizes positive, ranges ordered, kernel
 * sizes odd, probabilities in [0,1], std non-zero, ...); 0 when valid,
 * else -1 with a message naming the parameter. */
int nn_aug_check_op(const nn_aug_op *op, nn_error *err);

/* The shape [c, h, w] that ops[0..nops) produce from an image of shape
 * [c, h, w] (in and out may alias).  Fails when an op cannot apply: an
 * image smaller than a crop, a channel count ColorJitter, Normalize or a
 * fill colour does not accept, an output larger than NN_AUG_MAX_SIDE; then
 * *bad_op (when not NULL) is the 0-based index of that op. */
int nn_aug_output_shape(const nn_aug_op *ops, int nops, const int in[3],
                        int out[3], int *bad_op, nn_error *err);

/* Applies ops[0..nops) to x ([C,H,W] or [B,C,H,W], any strides; not
 * modified) and returns a new contiguous tensor in *out (owned by the
 * caller) of shape [C',H',W'] or [B,C',H',W'].  Draws nops keys from
 * ctx->rng.  Parallel over the batch with ctx->num_threads threads.  Fails
 * on a bad input shape, an op that cannot apply (*bad_op set as in
 * nn_aug_output_shape, else -1), or out of memory; *out is then NULL. */
int nn_aug_run(nn_ctx *ctx, const nn_aug_op *ops, int nops, nn_tensor *x,
               nn_tensor **out, int *bad_op, nn_error *err);

/* ---- Functional core: one contiguous image, given parameters ---- */

/* dst [c, oh, ow] = the window at (top, left) of src [c, h, w] padded by
 * pad = {left, top, right, bottom} in mode (constant: fill).  The window
 * may reach outside the padded image: what lies outside is padded in the
 * same mode, as if the padding were wider.  fill may be NULL (zeros). */
void nn_aug_crop(const float *src, int c, int h, int w, float *dst, int top,
                 int left, int oh, int ow, const int pad[4], nn_pad_mode mode,
                 const nn_aug_fill *fill);

/* dst = src mirrored left-right (horizontal) or top-bottom. */
void nn_aug_hflip(const float *src, int c, int h, int w, float *dst);
void nn_aug_vflip(const float *src, int c, int h, int w, float *dst);

/* torchvision's inverse affine matrix (output pixel -> input pixel, both
 * relative to the centre) for F.affine(angle, translate, scale, shear) in
 * degrees; (cx, cy) is the centre of rotation relative to the image
 * centre.  F.rotate(angle) is the matrix of -angle with no translation. */
void nn_aug_affine_matrix(double angle, double tx, double ty, double scale,
                          double shear_x, double shear_y, double cx, double cy,
                          double m[6]);

/* dst [c, h, w] = src sampled through the inverse matrix m as torchvision's
 * tensor affine/rotate: nearest or bilinear, fill outside the image (and
 * blended into bilinear edges, as torchvision's fill mask).  fill NULL is
 * torchvision's fill=None: zeros outside, no blending. */
void nn_aug_warp(const float *src, int c, int h, int w, float *dst,
                 const double m[6], nn_interp interp, const nn_aug_fill *fill);

/* In place on img [c, h, w], torchvision's F.adjust_* on float images
 * (c must be 1 or 3; saturation and hue leave 1 channel unchanged).
 * brightness, contrast, saturation factors >= 0; hue in [-0.5, 0.5]. */
void nn_aug_adjust_brightness(float *img, int c, int h, int w, double f);
void nn_aug_adjust_contrast(float *img, int c, int h, int w, double f);
void nn_aug_adjust_saturation(float *img, int c, int h, int w, double f);
void nn_aug_adjust_hue(float *img, int c, int h, int w, double f);

/* dst [c, h, w] = src blurred by torchvision's Gaussian kernel of size kx
 * (width) by ky (height), odd and at most NN_AUG_MAX_KERNEL, with standard
 * deviation sigma > 0 in both directions, reflect padding.  tmp holds
 * c*h*w floats.  dst may not alias src. */
void nn_aug_gaussian_blur(const float *src, int c, int h, int w, float *dst,
                          int kx, int ky, float sigma, float *tmp);

#endif
