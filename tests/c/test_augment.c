/* test_augment.c - unit tests of runtime/augment.c (no Lua). */
#include <stdlib.h>
#include <string.h>

#include "../../runtime/augment.h"
#include "check.h"

/* A tensor [dims] filled with value(i) = (i * 7919 % 1000) / 999. */
static nn_tensor *pattern(int ndim, const int64_t *shape) {
  nn_tensor *t = nn_tensor_empty(ndim, shape, NULL);
  float *p = nn_data(t);
  for (int64_t i = 0; i < nn_tensor_numel(t); i++)
    p[i] = (float)((i * 7919) % 1000) / 999.0f;
  return t;
}

static int same_data(const nn_tensor *a, const nn_tensor *b) {
  return nn_tensor_same_shape(a, b) &&
         memcmp(nn_data(a), nn_data(b),
                (size_t)nn_tensor_numel(a) * sizeof(float)) == 0;
}

/* torchvision's documented padding example: [1, 2, 3, 4] padded by 2. */
static void test_crop_padding_modes(void) {
  const float row[4] = {1, 2, 3, 4};
  const int pad[4] = {2, 0, 2, 0};
  const float want[4][8] = {{9, 9, 1, 2, 3, 4, 9, 9},
                            {1, 1, 1, 2, 3, 4, 4, 4},
                            {3, 2, 1, 2, 3, 4, 3, 2},
                            {2, 1, 1, 2, 3, 4, 4, 3}};
  nn_aug_fill fill = {1, {9}};
  for (int m = 0; m < 4; m++) {
    float out[8];
    nn_aug_crop(row, 1, 1, 4, out, 0, 0, 1, 8, pad, (nn_pad_mode)m, &fill);
    for (int i = 0; i < 8; i++) CHECK(out[i] == want[m][i]);
  }
  /* A window reaching beyond the padding keeps padding in the same mode. */
  float wide[12];
  nn_aug_crop(row, 1, 1, 4, wide, 0, -2, 1, 12, pad, NN_PAD_REFLECT, NULL);
  const float reflect[12] = {3, 4, 3, 2, 1, 2, 3, 4, 3, 2, 1, 2};
  for (int i = 0; i < 12; i++) CHECK(wide[i] == reflect[i]);
}

/* A crop at given offsets, inside and across the border (zeros). */
static void test_crop_offsets(void) {
  float img[2 * 3 * 4];
  for (int i = 0; i < 24; i++) img[i] = (float)i;
  float out[2 * 2 * 3];
  nn_aug_crop(img, 2, 3, 4, out, 1, 1, 2, 3, NULL, NN_PAD_CONSTANT, NULL);
  const float want[12] = {5, 6, 7, 9, 10, 11, 17, 18, 19, 21, 22, 23};
  for (int i = 0; i < 12; i++) CHECK(out[i] == want[i]);
  float edge[2 * 2 * 2];
  nn_aug_crop(img, 2, 3, 4, edge, -1, 3, 2, 2, NULL, NN_PAD_CONSTANT, NULL);
  const float want_edge[8] = {0, 0, 3, 0, 0, 0, 15, 0};
  for (int i = 0; i < 8; i++) CHECK(edge[i] == want_edge[i]);
}

static void test_flips(void) {
  const float img[6] = {1, 2, 3, 4, 5, 6}; /* [1, 2, 3] */
  float h[6], v[6];
  nn_aug_hflip(img, 1, 2, 3, h);
  nn_aug_vflip(img, 1, 2, 3, v);
  const float wh[6] = {3, 2, 1, 6, 5, 4}, wv[6] = {4, 5, 6, 1, 2, 3};
  for (int i = 0; i < 6; i++) {
    CHECK(h[i] == wh[i]);
    CHECK(v[i] == wv[i]);
  }
}

/* F.rotate(img, 90) turns counter-clockwise; 180 reverses. */
static void test_rotate(void) {
  const float img[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  double m[6];
  float out[9];
  nn_aug_affine_matrix(-90.0, 0, 0, 1, 0, 0, 0, 0, m);
  nn_aug_warp(img, 1, 3, 3, out, m, NN_INTERP_NEAREST, NULL);
  const float ccw[9] = {3, 6, 9, 2, 5, 8, 1, 4, 7};
  for (int i = 0; i < 9; i++) CHECK(out[i] == ccw[i]);
  nn_aug_affine_matrix(-180.0, 0, 0, 1, 0, 0, 0, 0, m);
  nn_aug_warp(img, 1, 3, 3, out, m, NN_INTERP_BILINEAR, NULL);
  for (int i = 0; i < 9; i++) CHECK_NEAR(out[i], img[8 - i], 1e-5);
  /* A translation by one pixel brings in the fill colour. */
  nn_aug_fill fill = {1, {-1}};
  nn_aug_affine_matrix(0.0, 1, 0, 1, 0, 0, 0, 0, m);
  nn_aug_warp(img, 1, 3, 3, out, m, NN_INTERP_NEAREST, &fill);
  const float shifted[9] = {-1, 1, 2, -1, 4, 5, -1, 7, 8};
  for (int i = 0; i < 9; i++) CHECK(out[i] == shifted[i]);
}

static void test_color(void) {
  /* One RGB pixel and one gray one: [3, 1, 2]. */
  float img[6] = {0.5f, 0.2f, 0.25f, 0.2f, 0.125f, 0.2f};
  nn_aug_adjust_brightness(img, 3, 1, 2, 2.0);
  const float bright[6] = {1.0f, 0.4f, 0.5f, 0.4f, 0.25f, 0.4f};
  for (int i = 0; i < 6; i++) CHECK_NEAR(img[i], bright[i], 1e-7);
  /* contrast 0 gives the mean of the grayscale image everywhere. */
  float g0 = 0.2989f * 1.0f + 0.587f * 0.5f + 0.114f * 0.25f;
  float g1 = 0.2989f * 0.4f + 0.587f * 0.4f + 0.114f * 0.4f;
  nn_aug_adjust_contrast(img, 3, 1, 2, 0.0);
  for (int i = 0; i < 6; i++) CHECK_NEAR(img[i], (g0 + g1) / 2, 1e-6);
  /* saturation 0 is the grayscale image. */
  float sat[6] = {1.0f, 0.4f, 0.5f, 0.4f, 0.25f, 0.4f};
  nn_aug_adjust_saturation(sat, 3, 1, 2, 0.0);
  for (int c = 0; c < 3; c++) {
    CHECK_NEAR(sat[c * 2], g0, 1e-6);
    CHECK_NEAR(sat[c * 2 + 1], g1, 1e-6);
  }
  /* A third of the hue circle turns red into green and green into blue. */
  float hue[6] = {1, 0, 0, 1, 0, 0};
  nn_aug_adjust_hue(hue, 3, 1, 2, 1.0 / 3.0);
  const float turned[6] = {0, 0, 1, 0, 0, 1};
  for (int i = 0; i < 6; i++) CHECK_NEAR(hue[i], turned[i], 1e-6);
  /* Saturation and hue leave a 1-channel image alone. */
  float one[2] = {0.3f, 0.6f};
  nn_aug_adjust_saturation(one, 1, 1, 2, 0.0);
  nn_aug_adjust_hue(one, 1, 1, 2, 0.4);
  CHECK(one[0] == 0.3f && one[1] == 0.6f);
}

static void test_blur(void) {
  float img[2 * 5 * 6], out[2 * 5 * 6], tmp[2 * 5 * 6];
  for (int i = 0; i < 60; i++) img[i] = 0.25f;
  nn_aug_gaussian_blur(img, 2, 5, 6, out, 5, 3, 1.5f, tmp);
  for (int i = 0; i < 60; i++) CHECK_NEAR(out[i], 0.25f, 1e-6);
  /* An impulse spreads symmetrically and keeps its mass away from edges. */
  float imp[9 * 9] = {0}, blur[81], t2[81];
  imp[4 * 9 + 4] = 1.0f;
  nn_aug_gaussian_blur(imp, 1, 9, 9, blur, 3, 3, 1.0f, t2);
  double sum = 0;
  for (int i = 0; i < 81; i++) sum += blur[i];
  CHECK_NEAR(sum, 1.0, 1e-6);
  CHECK_NEAR(blur[3 * 9 + 4], blur[5 * 9 + 4], 1e-7);
  CHECK_NEAR(blur[4 * 9 + 3], blur[3 * 9 + 4], 1e-7);
  CHECK(blur[4 * 9 + 4] > blur[3 * 9 + 4]);
}

static nn_aug_op op_of(nn_aug_kind kind) {
  nn_aug_op op;
  memset(&op, 0, sizeof op);
  op.kind = kind;
  return op;
}

/* A pipeline with every kind of random draw. */
static int random_pipeline(nn_aug_op *ops) {
  int n = 0;
  ops[n] = op_of(NN_AUG_RANDOM_CROP);
  ops[n].u.crop.h = 12;
  ops[n].u.crop.w = 12;
  ops[n].u.crop.padding[0] = ops[n].u.crop.padding[1] = 2;
  ops[n].u.crop.padding[2] = ops[n].u.crop.padding[3] = 2;
  ops[n].u.crop.mode = NN_PAD_REFLECT;
  ops[n++].u.crop.fill.n = 1;
  ops[n] = op_of(NN_AUG_HFLIP);
  ops[n++].u.flip.p = 0.5;
  ops[n] = op_of(NN_AUG_ROTATION);
  ops[n].u.affine.degrees[0] = -30;
  ops[n].u.affine.degrees[1] = 30;
  ops[n++].u.affine.fill.n = 1;
  ops[n] = op_of(NN_AUG_COLOR_JITTER);
  for (int k = 0; k < 4; k++) {
    ops[n].u.jitter.active[k] = 1;
    ops[n].u.jitter.range[k][0] = k == NN_JITTER_HUE ? -0.1 : 0.6;
    ops[n].u.jitter.range[k][1] = k == NN_JITTER_HUE ? 0.1 : 1.4;
  }
  n++;
  ops[n] = op_of(NN_AUG_RANDOM_RESIZED_CROP);
  ops[n].u.resized_crop.h = 8;
  ops[n].u.resized_crop.w = 10;
  ops[n].u.resized_crop.scale[0] = 0.3;
  ops[n].u.resized_crop.scale[1] = 1.0;
  ops[n].u.resized_crop.ratio[0] = 0.75;
  ops[n++].u.resized_crop.ratio[1] = 1.33;
  ops[n] = op_of(NN_AUG_GAUSSIAN_BLUR);
  ops[n].u.blur.kx = 3;
  ops[n].u.blur.ky = 3;
  ops[n].u.blur.sigma[0] = 0.1;
  ops[n++].u.blur.sigma[1] = 2.0;
  ops[n] = op_of(NN_AUG_NORMALIZE);
  ops[n].u.normalize.n = 1;
  ops[n].u.normalize.mean[0] = 0.5f;
  ops[n++].u.normalize.std[0] = 0.25f;
  return n;
}

/* Same seed -> same batch; 1 and 2 threads agree bit for bit; samples get
 * their own parameters; one image equals the first sample of a batch. */
static void test_run_deterministic(void) {
  nn_ctx ctx;
  nn_ctx_init(&ctx);
  nn_aug_op ops[8];
  int n = random_pipeline(ops);
  nn_tensor *x = pattern(4, (int64_t[4]){16, 3, 12, 14});
  nn_tensor *a = NULL, *b = NULL, *c = NULL;
  nn_error err;
  int bad = 0;
  nn_ctx_set_threads(&ctx, 1);
  nn_rng_seed(&ctx.rng, 5);
  CHECK(nn_aug_run(&ctx, ops, n, x, &a, &bad, &err) == 0);
  nn_ctx_set_threads(&ctx, 2);
  nn_rng_seed(&ctx.rng, 5);
  CHECK(nn_aug_run(&ctx, ops, n, x, &b, &bad, &err) == 0);
  nn_rng_seed(&ctx.rng, 6);
  CHECK(nn_aug_run(&ctx, ops, n, x, &c, &bad, &err) == 0);
  CHECK(a && b && c);
  if (a && b && c) {
    CHECK(nn_tensor_has_shape(a, 4, (int64_t[4]){16, 3, 8, 10}));
    CHECK(same_data(a, b));
    CHECK(!same_data(a, c));
    /* Sample 0 and sample 1 of a batch of the same image differ. */
    float *p = nn_data(a);
    CHECK(memcmp(p, p + 240, 240 * sizeof(float)) != 0);
  }
  nn_tensor_release(a);
  nn_tensor_release(b);
  nn_tensor_release(c);
  /* The seed also reproduces a single image. */
  nn_tensor *img = pattern(3, (int64_t[3]){3, 12, 14}), *i1 = NULL, *i2 = NULL;
  nn_rng_seed(&ctx.rng, 9);
  CHECK(nn_aug_run(&ctx, ops, n, img, &i1, &bad, &err) == 0);
  nn_rng_seed(&ctx.rng, 9);
  CHECK(nn_aug_run(&ctx, ops, n, img, &i2, &bad, &err) == 0);
  CHECK(i1 && i2 && same_data(i1, i2));
  CHECK(i1 && nn_tensor_has_shape(i1, 3, (int64_t[3]){3, 8, 10}));
  nn_tensor_release(i1);
  nn_tensor_release(i2);
  nn_tensor_release(img);
  nn_tensor_release(x);
}

/* Flips with p = 0.5 flip about half of a batch, and only those. */
static void test_flip_probability(void) {
  nn_ctx ctx;
  nn_ctx_init(&ctx);
  nn_aug_op op = op_of(NN_AUG_HFLIP);
  op.u.flip.p = 0.5;
  nn_tensor *x = pattern(4, (int64_t[4]){400, 1, 2, 3}), *y = NULL;
  nn_error err;
  CHECK(nn_aug_run(&ctx, &op, 1, x, &y, NULL, &err) == 0);
  int flipped = 0, other = 0;
  for (int b = 0; y && b < 400; b++) {
    float *s = nn_data(x) + b * 6, *d = nn_data(y) + b * 6, h[6];
    nn_aug_hflip(s, 1, 2, 3, h);
    if (memcmp(d, h, sizeof h) == 0)
      flipped++;
    else if (memcmp(d, s, sizeof h) != 0)
      other++;
  }
  CHECK(other == 0);
  CHECK(flipped > 150 && flipped < 250);
  nn_tensor_release(x);
  nn_tensor_release(y);
}

static void test_shapes(void) {
  nn_aug_op op = op_of(NN_AUG_RESIZE);
  op.u.resize.h = 32; /* smaller edge */
  int out[3];
  nn_error err;
  CHECK(nn_aug_output_shape(&op, 1, (int[3]){3, 450, 600}, out, NULL, &err) ==
        0);
  CHECK(out[0] == 3 && out[1] == 32 && out[2] == 42);
  op.u.resize.max_size = 40;
  CHECK(nn_aug_output_shape(&op, 1, (int[3]){3, 450, 600}, out, NULL, &err) ==
        0);
  CHECK(out[1] == 30 && out[2] == 40);
  nn_aug_op cc = op_of(NN_AUG_CENTER_CROP);
  cc.u.center_crop.h = 10;
  cc.u.center_crop.w = 20;
  CHECK(nn_aug_output_shape(&cc, 1, (int[3]){1, 5, 5}, out, NULL, &err) == 0);
  CHECK(out[0] == 1 && out[1] == 10 && out[2] == 20);
  nn_aug_op pad = op_of(NN_AUG_RANDOM_CROP);
  pad.u.crop.h = 9;
  pad.u.crop.w = 12;
  pad.u.crop.pad_if_needed = 1;
  pad.u.crop.fill.n = 1;
  CHECK(nn_aug_output_shape(&pad, 1, (int[3]){3, 5, 7}, out, NULL, &err) == 0);
  CHECK(out[1] == 9 && out[2] == 12);
}

/* RandomResizedCrop falls back to the whole image when no attempt fits. */
static void test_resized_crop_fallback(void) {
  nn_ctx ctx;
  nn_ctx_init(&ctx);
  nn_aug_op op = op_of(NN_AUG_RANDOM_RESIZED_CROP);
  op.u.resized_crop.h = op.u.resized_crop.w = 8;
  op.u.resized_crop.scale[0] = op.u.resized_crop.scale[1] = 2.0;
  op.u.resized_crop.ratio[0] = 0.75;
  op.u.resized_crop.ratio[1] = 4.0 / 3.0;
  nn_tensor *x = pattern(4, (int64_t[4]){3, 2, 8, 8}), *y = NULL;
  nn_error err;
  CHECK(nn_aug_run(&ctx, &op, 1, x, &y, NULL, &err) == 0);
  CHECK(y && same_data(x, y));
  nn_tensor_release(y);
  nn_tensor_release(x);
}

static int error_is(int rc, const nn_error *err, const char *want) {
  if (rc == 0) return 0;
  if (strcmp(err->msg, want) != 0) {
    fprintf(stderr, "  got: %s\n  want: %s\n", err->msg, want);
    return 0;
  }
  return 1;
}

static void test_errors(void) {
  nn_ctx ctx;
  nn_ctx_init(&ctx);
  nn_error err;
  nn_tensor *x = pattern(3, (int64_t[3]){3, 20, 24}), *y = NULL;
  nn_aug_op ops[2] = {op_of(NN_AUG_HFLIP), op_of(NN_AUG_RANDOM_CROP)};
  ops[0].u.flip.p = 0.5;
  ops[1].u.crop.h = ops[1].u.crop.w = 32;
  ops[1].u.crop.fill.n = 1;
  int bad = -1;
  CHECK(error_is(nn_aug_run(&ctx, ops, 2, x, &y, &bad, &err), &err,
                 "required crop size [32, 32] is larger than input image size "
                 "[20, 24] (input [3, 20, 24])"));
  CHECK(bad == 1 && y == NULL);
  ops[1].u.crop.padding[0] = ops[1].u.crop.padding[2] = 4;
  CHECK(error_is(nn_aug_run(&ctx, ops, 2, x, &y, &bad, &err), &err,
                 "required crop size [32, 32] is larger than the padded input "
                 "image size [20, 32] (input [3, 20, 24])"));
  nn_aug_op j = op_of(NN_AUG_COLOR_JITTER);
  j.u.jitter.active[0] = 1;
  j.u.jitter.range[0][0] = j.u.jitter.range[0][1] = 1.2;
  nn_tensor *four = pattern(3, (int64_t[3]){4, 5, 5});
  CHECK(error_is(nn_aug_run(&ctx, &j, 1, four, &y, &bad, &err), &err,
                 "expected an image with 1 or 3 channels, got [4, 5, 5]"));
  nn_tensor *flat = pattern(2, (int64_t[2]){5, 5});
  CHECK(error_is(
      nn_aug_run(&ctx, &j, 1, flat, &y, &bad, &err), &err,
      "expected an image [C, H, W] or a batch [B, C, H, W], got [5, 5]"));
  CHECK(bad == -1);
  nn_aug_op b = op_of(NN_AUG_GAUSSIAN_BLUR);
  b.u.blur.kx = 4;
  b.u.blur.ky = 3;
  b.u.blur.sigma[0] = b.u.blur.sigma[1] = 1;
  CHECK(error_is(nn_aug_check_op(&b, &err), &err,
                 "kernel size must be odd and in 1..255, got [4, 3]"));
  nn_aug_op f = op_of(NN_AUG_VFLIP);
  f.u.flip.p = 1.5;
  CHECK(error_is(nn_aug_check_op(&f, &err), &err,
                 "p must be in [0, 1], got 1.5"));
  nn_aug_op nm = op_of(NN_AUG_NORMALIZE);
  nm.u.normalize.n = 2;
  nm.u.normalize.std[0] = nm.u.normalize.std[1] = 1;
  CHECK(error_is(nn_aug_run(&ctx, &nm, 1, x, &y, &bad, &err), &err,
                 "mean and std have 2 values but the image has 3 channels"));
  nm.u.normalize.std[1] = 0;
  CHECK(error_is(nn_aug_check_op(&nm, &err), &err,
                 "std evaluated to zero, leading to division by zero"));
  nn_aug_op rot = op_of(NN_AUG_ROTATION);
  rot.u.affine.fill.n = 2;
  CHECK(error_is(nn_aug_run(&ctx, &rot, 1, x, &y, &bad, &err), &err,
                 "fill has 2 values but the image has 3 channels"));
  CHECK(strcmp(nn_aug_name(NN_AUG_RANDOM_RESIZED_CROP), "RandomResizedCrop") ==
        0);
  nn_tensor_release(x);
  nn_tensor_release(four);
  nn_tensor_release(flat);
}

/* An empty pipeline copies; a strided input is read through its strides. */
static void test_empty_and_strided(void) {
  nn_ctx ctx;
  nn_ctx_init(&ctx);
  nn_error err;
  nn_tensor *x = pattern(4, (int64_t[4]){4, 1, 3, 3});
  nn_tensor *v = nn_tensor_narrow(x, 0, 1, 2, &err);
  nn_tensor *y = NULL;
  CHECK(nn_aug_run(&ctx, NULL, 0, v, &y, NULL, &err) == 0);
  CHECK(y && nn_tensor_has_shape(y, 4, (int64_t[4]){2, 1, 3, 3}));
  CHECK(y && memcmp(nn_data(y), nn_data(x) + 9, 18 * sizeof(float)) == 0);
  nn_tensor_release(y);
  nn_tensor_release(v);
  nn_tensor_release(x);
}

int main(void) {
  RUN(test_crop_padding_modes);
  RUN(test_crop_offsets);
  RUN(test_flips);
  RUN(test_rotate);
  RUN(test_color);
  RUN(test_blur);
  RUN(test_run_deterministic);
  RUN(test_flip_probability);
  RUN(test_shapes);
  RUN(test_resized_crop_fallback);
  RUN(test_errors);
  RUN(test_empty_and_strided);
  return check_report("augment");
}
