/*
 * test_idx.c - IDX reading (gzipped and plain, every error path) and the
 * image store's batch assembly (values, padding, channel replication,
 * thread-count independence).  Files are written with zlib into a fresh
 * temporary directory, removed at the end.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "../../runtime/idx.h"
#include "../../runtime/imagestore.h"
#include "check.h"

static char dir[64];

/* dir/name in a static buffer (one of 64 used in turn, so the paths of one
 * test stay valid). */
static const char *tmp_path(const char *name) {
  static char bufs[64][256];
  static int next;
  char *b = bufs[next++ % 64];
  snprintf(b, 256, "%s/%s", dir, name);
  return b;
}

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* Writes len bytes to path, gzipped or plain. */
static void write_file(const char *path, const unsigned char *data,
                       size_t len, int gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    if (len) CHECK(gzwrite(f, data, (unsigned)len) == (int)len);
    CHECK(gzclose(f) == Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, len, f) == len);
    fclose(f);
  }
}

/* Pixel value of image k at byte j of a test set. */
static unsigned char pix(int k, int j) { return (unsigned char)(k * 37 + j * 11); }

/* Writes an images file: header (magic, n_declared, rows, cols) followed by
 * n_written images of test pixels and `extra` trailing bytes. */
static void write_images(const char *path, uint32_t magic, uint32_t n_declared,
                         uint32_t rows, uint32_t cols, int n_written,
                         int extra, int gz) {
  size_t per = (size_t)rows * cols;
  size_t len = 16 + per * (size_t)n_written + (size_t)extra;
  unsigned char *buf = calloc(len, 1);
  put_be32(buf, magic);
  put_be32(buf + 4, n_declared);
  put_be32(buf + 8, rows);
  put_be32(buf + 12, cols);
  for (int k = 0; k < n_written; k++)
    for (size_t j = 0; j < per; j++) buf[16 + k * per + j] = pix(k, (int)j);
  write_file(path, buf, len, gz);
  free(buf);
}

/* Writes a labels file: header then labels[0..n_written). */
static void write_labels(const char *path, uint32_t magic, uint32_t n_declared,
                         const unsigned char *labels, int n_written, int gz) {
  unsigned char *buf = malloc(8 + (size_t)n_written);
  put_be32(buf, magic);
  put_be32(buf + 4, n_declared);
  if (n_written) memcpy(buf + 8, labels, (size_t)n_written);
  write_file(path, buf, 8 + (size_t)n_written, gz);
  free(buf);
}

/* Writes a labels file of n labels, all 1. */
static void write_ones(const char *path, int n) {
  unsigned char *l = malloc((size_t)n);
  memset(l, 1, (size_t)n);
  write_labels(path, NN_IDX_LABELS_MAGIC, (uint32_t)n, l, n, 1);
  free(l);
}

static const unsigned char labels5[5] = {9, 0, 3, 254, 1};

/* Good files: img.gz / lab.gz (5 images of 3x4). */
static void write_good(void) {
  write_images(tmp_path("img.gz"), NN_IDX_IMAGES_MAGIC, 5, 3, 4, 5, 0, 1);
  write_labels(tmp_path("lab.gz"), NN_IDX_LABELS_MAGIC, 5, labels5, 5, 1);
}

/* Loads (images, labels) and expects failure with a message containing
 * `path` and `part`. */
static void expect_error(const char *images, const char *labels,
                         const char *path, const char *part) {
  nn_error err = {{0}};
  nn_imagestore *s = nn_idx_load(images, labels, &err);
  CHECK(s == NULL);
  nn_imagestore_release(s);
  CHECK(strstr(err.msg, path) != NULL);
  CHECK(strstr(err.msg, part) != NULL);
  if (!strstr(err.msg, path) || !strstr(err.msg, part))
    fprintf(stderr, "  message was: %s\n  wanted %s and %s\n", err.msg, path,
            part);
}

static void check_good_store(const nn_imagestore *s) {
  CHECK(s->n == 5 && s->c == 1 && s->h == 3 && s->w == 4);
  CHECK(s->pixel_bytes == 60);
  int same = 1;
  for (int k = 0; k < 5; k++)
    for (int j = 0; j < 12; j++)
      if (nn_imagestore_image(s, k)[j] != pix(k, j)) same = 0;
  CHECK(same);
  for (int k = 0; k < 5; k++) CHECK(s->labels[k] == labels5[k]);
}

static void test_roundtrip_gz(void) {
  write_good();
  nn_error err = {{0}};
  nn_imagestore *s = nn_idx_load(tmp_path("img.gz"), tmp_path("lab.gz"), &err);
  CHECK(s != NULL);
  if (!s) {
    fprintf(stderr, "  %s\n", err.msg);
    return;
  }
  check_good_store(s);
  CHECK(s->refcount == 1 && s->pixels_owner == NN_PIXELS_MALLOC);
  nn_imagestore_release(s);
}

static void test_roundtrip_plain(void) {
  write_images(tmp_path("img.raw"), NN_IDX_IMAGES_MAGIC, 5, 3, 4, 5, 0, 0);
  write_labels(tmp_path("lab.raw"), NN_IDX_LABELS_MAGIC, 5, labels5, 5, 0);
  nn_error err = {{0}};
  nn_imagestore *s =
      nn_idx_load(tmp_path("img.raw"), tmp_path("lab.raw"), &err);
  CHECK(s != NULL);
  if (s) check_good_store(s);
  nn_imagestore_release(s);
}

static void test_empty_set(void) {
  write_images(tmp_path("e_img.gz"), NN_IDX_IMAGES_MAGIC, 0, 28, 28, 0, 0, 1);
  write_labels(tmp_path("e_lab.gz"), NN_IDX_LABELS_MAGIC, 0, labels5, 0, 1);
  nn_error err = {{0}};
  nn_imagestore *s =
      nn_idx_load(tmp_path("e_img.gz"), tmp_path("e_lab.gz"), &err);
  CHECK(s != NULL && s->n == 0 && s->h == 28);
  nn_imagestore_release(s);
}

static void test_bad_magic(void) {
  write_good();
  const char *bi = tmp_path("badmagic_img.gz"), *bl = tmp_path("badmagic_lab.gz");
  write_images(bi, 0x00000801, 5, 3, 4, 5, 0, 1);
  expect_error(bi, tmp_path("lab.gz"), bi,
               "not an IDX images file: magic number 0x00000801, expected "
               "0x00000803");
  write_labels(bl, NN_IDX_IMAGES_MAGIC, 5, labels5, 5, 1);
  expect_error(tmp_path("img.gz"), bl, bl, "not an IDX labels file");
  /* Labels passed as images and the other way round. */
  expect_error(tmp_path("lab.gz"), tmp_path("img.gz"), tmp_path("lab.gz"),
               "magic number");
}

static void test_count_mismatch(void) {
  write_good();
  const char *bl = tmp_path("four_lab.gz");
  write_labels(bl, NN_IDX_LABELS_MAGIC, 4, labels5, 4, 1);
  expect_error(tmp_path("img.gz"), bl, bl, "holds 4 labels but");
  expect_error(tmp_path("img.gz"), bl, tmp_path("img.gz"), "holds 5 images");
}

static void test_truncated_images(void) {
  write_good();
  const char *bi = tmp_path("trunc_img.gz");
  write_images(bi, NN_IDX_IMAGES_MAGIC, 5, 3, 4, 3, 0, 1);
  expect_error(bi, tmp_path("lab.gz"), bi,
               "truncated: expected 60 bytes of pixels, got 36");
  /* A short header. */
  unsigned char hdr[6] = {0, 0, 8, 3, 0, 0};
  write_file(bi, hdr, sizeof hdr, 1);
  expect_error(bi, tmp_path("lab.gz"), bi, "16-byte IDX images header, got 6");
  /* An empty file. */
  write_file(bi, hdr, 0, 0);
  expect_error(bi, tmp_path("lab.gz"), bi, "got 0 bytes");
}

static void test_truncated_labels(void) {
  write_good();
  const char *bl = tmp_path("trunc_lab.gz");
  write_labels(bl, NN_IDX_LABELS_MAGIC, 5, labels5, 2, 1);
  expect_error(tmp_path("img.gz"), bl, bl,
               "truncated: expected 5 bytes of labels, got 2");
}

static void test_trailing_data(void) {
  write_good();
  const char *bi = tmp_path("long_img.gz");
  write_images(bi, NN_IDX_IMAGES_MAGIC, 5, 3, 4, 5, 7, 1);
  expect_error(bi, tmp_path("lab.gz"), bi, "trailing data");
}

/* A gzip stream cut in the middle is reported as truncated. */
static void test_truncated_gzip_stream(void) {
  write_good();
  const char *big = tmp_path("big_img.gz"), *cut = tmp_path("cut_img.gz");
  const char *big_lab = tmp_path("big_lab.gz");
  /* 200 images of 64x64 with varied pixels: a stream of many blocks. */
  write_images(big, NN_IDX_IMAGES_MAGIC, 200, 64, 64, 200, 0, 1);
  write_ones(big_lab, 200);
  nn_error err = {{0}};
  nn_imagestore *s = nn_idx_load(big, big_lab, &err);
  CHECK(s != NULL);
  nn_imagestore_release(s);
  FILE *f = fopen(big, "rb");
  CHECK(f != NULL);
  if (!f) return;
  unsigned char *buf = malloc(1 << 20);
  size_t len = fread(buf, 1, 1 << 20, f);
  fclose(f);
  write_file(cut, buf, len / 2, 0);
  free(buf);
  expect_error(cut, big_lab, cut, "truncated: expected 819200 bytes of pixels");
}

/* Garbage inside the deflate stream: an error naming the file. */
static void test_corrupt_gzip(void) {
  write_good();
  const char *big = tmp_path("big2_img.gz"), *bad = tmp_path("bad_img.gz");
  write_images(big, NN_IDX_IMAGES_MAGIC, 200, 64, 64, 200, 0, 1);
  FILE *f = fopen(big, "rb");
  CHECK(f != NULL);
  if (!f) return;
  unsigned char *buf = malloc(1 << 20);
  size_t len = fread(buf, 1, 1 << 20, f);
  fclose(f);
  for (size_t i = len / 3; i < len / 3 + 64 && i < len; i++) buf[i] ^= 0x5a;
  write_file(bad, buf, len, 0);
  free(buf);
  nn_error err = {{0}};
  const char *lab = tmp_path("big2_lab.gz");
  write_ones(lab, 200);
  nn_imagestore *s = nn_idx_load(bad, lab, &err);
  CHECK(s == NULL);
  nn_imagestore_release(s);
  CHECK(strstr(err.msg, bad) == err.msg);
  CHECK(strstr(err.msg, "holds") == NULL);
}

static void test_huge_dims(void) {
  write_good();
  const char *bi = tmp_path("huge_img.gz");
  /* Only headers are written: the checks must refuse before allocating. */
  write_images(bi, NN_IDX_IMAGES_MAGIC, 5, 100000, 4, 0, 0, 1);
  expect_error(bi, tmp_path("lab.gz"), bi,
               "declared image size 100000x4 is out of range 1..4096");
  write_images(bi, NN_IDX_IMAGES_MAGIC, 5, 4, 0, 0, 0, 1);
  expect_error(bi, tmp_path("lab.gz"), bi, "declared image size 4x0");
  write_images(bi, NN_IDX_IMAGES_MAGIC, 0xFFFFFFFFu, 28, 28, 0, 0, 1);
  expect_error(bi, tmp_path("lab.gz"), bi,
               "declared image count 4294967295 exceeds the limit");
  const char *bl = tmp_path("huge_lab.gz");
  write_labels(bl, NN_IDX_LABELS_MAGIC, 0xFFFFFFFFu, labels5, 0, 1);
  expect_error(tmp_path("img.gz"), bl, bl, "declared label count");
  /* Every size within its own limit, the product too large to allocate. */
  write_images(bi, NN_IDX_IMAGES_MAGIC, 100000000, 4096, 4096, 0, 0, 1);
  write_labels(bl, NN_IDX_LABELS_MAGIC, 100000000, labels5, 0, 1);
  expect_error(bi, bl, bi, "more than the limit");
}

static void test_bad_label(void) {
  write_good();
  const char *bl = tmp_path("l255.gz");
  unsigned char l[5] = {1, 2, 255, 3, 4};
  write_labels(bl, NN_IDX_LABELS_MAGIC, 5, l, 5, 1);
  expect_error(tmp_path("img.gz"), bl, bl, "label 3 (0-based index 2) is 255");
}

static void test_missing_file(void) {
  write_good();
  const char *m = tmp_path("missing.gz");
  expect_error(m, tmp_path("lab.gz"), m, "cannot open: No such file");
  expect_error(tmp_path("img.gz"), m, m, "cannot open");
}

/* A store with known pixels: image k, channel ch, pixel j = (k*50 + ch*7 +
 * j) % 256. */
static nn_imagestore *make_store(int64_t n, int c, int h, int w) {
  nn_error err;
  nn_imagestore *s = nn_imagestore_new(n, c, h, w, &err);
  CHECK(s != NULL);
  if (!s) return NULL;
  for (int64_t k = 0; k < n; k++) {
    uint8_t *p = nn_imagestore_image(s, k);
    for (int ch = 0; ch < c; ch++)
      for (int j = 0; j < h * w; j++)
        p[ch * h * w + j] = (uint8_t)((k * 50 + ch * 7 + j) % 256);
    s->labels[k] = (int32_t)(k % 10);
  }
  return s;
}

static void test_batch_values(void) {
  nn_ctx ctx;
  nn_ctx_init(&ctx);
  nn_imagestore *s = make_store(4, 1, 2, 3);
  if (!s) return;
  int64_t idx[3] = {2, 0, 2};
  nn_tensor *x, *y;
  nn_error err;
  CHECK(nn_imagestore_batch(&ctx, s, idx, 3, 0, 1, &x, &y, &err) == 0);
  int64_t shape[4] = {3, 1, 2, 3};
  CHECK(nn_tensor_has_shape(x, 4, shape));
  CHECK(y->ndim == 1 && y->shape[0] == 3);
  const float *d = nn_data(x);
  for (int k = 0; k < 3; k++)
    for (int j = 0; j < 6; j++)
      CHECK(d[k * 6 + j] == (float)((idx[k] * 50 + j) % 256) / 255.0f);
  CHECK(nn_data(y)[0] == 3.0f && nn_data(y)[1] == 1.0f &&
        nn_data(y)[2] == 3.0f);
  nn_tensor_release(x);
  nn_tensor_release(y);
  /* Without labels. */
  CHECK(nn_imagestore_batch(&ctx, s, idx, 1, 0, 1, &x, NULL, &err) == 0);
  CHECK(x->shape[0] == 1);
  nn_tensor_release(x);
  /* Pixel 255 is exactly 1. */
  nn_imagestore_image(s, 1)[0] = 255;
  float one;
  int64_t i1 = 1;
  float full[6];
  CHECK(nn_imagestore_fill(&ctx, s, &i1, 1, 0, 1, full, &one, &err) == 0);
  CHECK(full[0] == 1.0f && one == 2.0f);
  nn_imagestore_release(s);
}

static void test_batch_pad_and_channels(void) {
  nn_ctx ctx;
  nn_ctx_init(&ctx);
  nn_imagestore *s = make_store(3, 1, 2, 3);
  if (!s) return;
  int64_t idx[2] = {1, 2};
  nn_tensor *x, *y;
  nn_error err;
  CHECK(nn_imagestore_batch(&ctx, s, idx, 2, 2, 3, &x, &y, &err) == 0);
  int64_t shape[4] = {2, 3, 6, 7};
  CHECK(nn_tensor_has_shape(x, 4, shape));
  const float *d = nn_data(x);
  int ok = 1;
  for (int k = 0; k < 2; k++)
    for (int ch = 0; ch < 3; ch++)
      for (int r = 0; r < 6; r++)
        for (int q = 0; q < 7; q++) {
          float v = d[((k * 3 + ch) * 6 + r) * 7 + q];
          int inside = r >= 2 && r < 4 && q >= 2 && q < 5;
          float want = inside ? (float)((idx[k] * 50 + (r - 2) * 3 + q - 2) %
                                        256) / 255.0f
                              : 0.0f;
          if (v != want) ok = 0;
        }
  CHECK(ok);
  nn_tensor_release(x);
  nn_tensor_release(y);
  nn_imagestore_release(s);

  /* A 3-channel store keeps its channels and refuses other counts. */
  s = make_store(2, 3, 2, 2);
  if (!s) return;
  CHECK(nn_imagestore_batch(&ctx, s, idx, 1, 1, 3, &x, &y, &err) == 0);
  d = nn_data(x);
  CHECK(d[0] == 0.0f);
  CHECK(d[1 * 16 + 1 * 4 + 1] == (float)((50 + 7) % 256) / 255.0f);
  CHECK(d[2 * 16 + 2 * 4 + 2] == (float)((50 + 14 + 3) % 256) / 255.0f);
  nn_tensor_release(x);
  nn_tensor_release(y);
  CHECK(nn_imagestore_batch(&ctx, s, idx, 1, 0, 1, &x, &y, &err) == -1);
  CHECK(x == NULL && y == NULL);
  CHECK(strstr(err.msg, "cannot make 1 channels from images with 3") != NULL);
  nn_imagestore_release(s);
}

static void test_batch_errors(void) {
  nn_ctx ctx;
  nn_ctx_init(&ctx);
  nn_imagestore *s = make_store(3, 1, 2, 2);
  if (!s) return;
  nn_tensor *x, *y;
  nn_error err;
  int64_t bad[3] = {0, 3, 1};
  CHECK(nn_imagestore_batch(&ctx, s, bad, 3, 0, 1, &x, &y, &err) == -1);
  CHECK(strstr(err.msg, "index 3 (at position 1) is out of range 0..2") !=
        NULL);
  bad[1] = -1;
  CHECK(nn_imagestore_batch(&ctx, s, bad, 3, 0, 1, &x, &y, &err) == -1);
  CHECK(nn_imagestore_batch(&ctx, s, bad, 1, -1, 1, &x, &y, &err) == -1);
  CHECK(strstr(err.msg, "pad -1") != NULL);
  CHECK(nn_imagestore_batch(&ctx, s, bad, 1, 0, 0, &x, &y, &err) == -1);
  /* An empty batch is fine. */
  CHECK(nn_imagestore_batch(&ctx, s, bad, 0, 0, 1, &x, &y, &err) == 0);
  CHECK(x->shape[0] == 0 && y->shape[0] == 0);
  nn_tensor_release(x);
  nn_tensor_release(y);
  nn_imagestore_release(s);
  /* Store dimension checks. */
  CHECK(nn_imagestore_new(-1, 1, 2, 2, &err) == NULL);
  CHECK(nn_imagestore_new(1, 0, 2, 2, &err) == NULL);
  CHECK(nn_imagestore_new(1, 1, 0, 2, &err) == NULL);
  CHECK(nn_imagestore_new(NN_IMAGESTORE_MAX_COUNT, 3, 4096, 4096, &err) ==
        NULL);
  CHECK(strstr(err.msg, "more than the limit") != NULL);
}

static void test_threads_identical(void) {
  nn_ctx c1, c2;
  nn_ctx_init(&c1);
  nn_ctx_init(&c2);
  nn_ctx_set_threads(&c1, 1);
  nn_ctx_set_threads(&c2, 2);
  nn_imagestore *s = make_store(50, 1, 28, 28);
  if (!s) return;
  int64_t idx[37];
  for (int k = 0; k < 37; k++) idx[k] = (k * 13) % 50;
  nn_tensor *x1, *y1, *x2, *y2;
  nn_error err;
  CHECK(nn_imagestore_batch(&c1, s, idx, 37, 2, 3, &x1, &y1, &err) == 0);
  CHECK(nn_imagestore_batch(&c2, s, idx, 37, 2, 3, &x2, &y2, &err) == 0);
  CHECK(memcmp(nn_data(x1), nn_data(x2),
               (size_t)nn_tensor_numel(x1) * sizeof(float)) == 0);
  CHECK(memcmp(nn_data(y1), nn_data(y2), 37 * sizeof(float)) == 0);
  nn_tensor_release(x1);
  nn_tensor_release(y1);
  nn_tensor_release(x2);
  nn_tensor_release(y2);
  nn_imagestore_release(s);
}

static void test_wrap_and_refcount(void) {
  nn_error err;
  /* Borrowed pixels stay with the caller. */
  uint8_t px[8] = {0, 255, 1, 2, 3, 4, 5, 6};
  nn_imagestore *s = nn_imagestore_wrap(2, 1, 2, 2, px, NN_PIXELS_BORROWED, &err);
  CHECK(s != NULL);
  if (!s) return;
  CHECK(nn_imagestore_retain(s) == s && s->refcount == 2);
  nn_imagestore_release(s);
  CHECK(s->refcount == 1 && nn_imagestore_image(s, 1)[0] == 3);
  nn_imagestore_release(s);
  CHECK(px[1] == 255);
  /* A mapping is unmapped by the store. */
  uint8_t block[4096] = {0};
  write_file(tmp_path("mapped.raw"), block, sizeof block, 0);
  int fd = open(tmp_path("mapped.raw"), O_RDONLY);
  CHECK(fd >= 0);
  if (fd < 0) return;
  void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  CHECK(m != MAP_FAILED);
  if (m == MAP_FAILED) return;
  s = nn_imagestore_wrap(4, 1, 32, 32, m, NN_PIXELS_MMAP, &err);
  CHECK(s != NULL && s->pixel_bytes == 4096);
  nn_imagestore_release(s);
  /* Malloc'ed pixels are freed by the store (checked by the sanitizer). */
  uint8_t *p = malloc(12);
  s = nn_imagestore_wrap(1, 3, 2, 2, p, NN_PIXELS_MALLOC, &err);
  CHECK(s != NULL);
  nn_imagestore_release(s);
  CHECK(nn_imagestore_wrap(1, 1, 2, 2, NULL, NN_PIXELS_BORROWED, &err) ==
        NULL);
}

/* Removes the files written into dir, then dir. */
static void cleanup(void) {
  static const char *names[] = {
      "img.gz",         "lab.gz",         "img.raw",        "lab.raw",
      "e_img.gz",       "e_lab.gz",       "badmagic_img.gz", "badmagic_lab.gz",
      "four_lab.gz",    "trunc_img.gz",   "trunc_lab.gz",   "long_img.gz",
      "big_img.gz",     "cut_img.gz",     "big_lab.gz",     "big2_img.gz",
      "bad_img.gz",     "huge_img.gz",    "huge_lab.gz",    "l255.gz",        "mapped.raw",     "big2_lab.gz"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    unlink(tmp_path(names[i]));
  rmdir(dir);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/nn_test_idx_XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_roundtrip_gz);
  RUN(test_roundtrip_plain);
  RUN(test_empty_set);
  RUN(test_bad_magic);
  RUN(test_count_mismatch);
  RUN(test_truncated_images);
  RUN(test_truncated_labels);
  RUN(test_trailing_data);
  RUN(test_truncated_gzip_stream);
  RUN(test_corrupt_gzip);
  RUN(test_huge_dims);
  RUN(test_bad_label);
  RUN(test_missing_file);
  RUN(test_batch_values);
  RUN(test_batch_pad_and_channels);
  RUN(test_batch_errors);
  RUN(test_threads_identical);
  RUN(test_wrap_and_refcount);
  cleanup();
  return check_report("idx");
}
