/*
 * test_image.c - PNG and JPEG decoding (every PNG color type and bit depth,
 * written here with libpng; JPEGs written here with TurboJPEG), channel
 * conversion, DCT-scaled decoding, corrupt / truncated / garbage files,
 * decompression-bomb headers, resizing against values computed by PIL and
 * torchvision, decoding into stores (1 vs 2 threads, mmap), and PNG / JPEG
 * writing.
 */
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#include "../../runtime/image.h"
#include "../../runtime/resize.h"
#include "check.h"

static char dir[64];

/* dir/name in a static buffer (one of eight, round robin). */
static const char *tpath(const char *name) {
  static char bufs[8][256];
  static int k;
  char *b = bufs[k++ & 7];
  snprintf(b, 256, "%s/%s", dir, name);
  return b;
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(data, 1, n, f);
  fclose(f);
}

/* The file's bytes (malloc'd) and length. */
static uint8_t *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

/* 1 when msg contains part (prints both otherwise). */
static int has(const char *msg, const char *part) {
  if (strstr(msg, part)) return 1;
  fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", msg, part);
  return 0;
}

/* ---- PNG files of every color type and bit depth ---- */

typedef struct spec {
  int type, depth, trns, interlace;
} spec;

enum { PW = 13, PH = 7 };

static int nsamples(int type) {
  switch (type) {
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
  }
  return 1; /* gray, palette */
}

/* Sample k of pixel (x, y) in the file. */
static int sample(int depth, int x, int y, int k) {
  if (depth == 16) return (x * 4099 + y * 9377 + k * 1237 + 11) % 65536;
  if (depth == 8) return (x * 37 + y * 91 + k * 53 + 5) % 256;
  return (x * 3 + y * 5 + k * 7 + 1) % (1 << depth);
}

static void palette_entry(int i, uint8_t rgb[3]) {
  rgb[0] = (uint8_t)((i * 29 + 7) % 256);
  rgb[1] = (uint8_t)((i * 71 + 13) % 256);
  rgb[2] = (uint8_t)((i * 113 + 41) % 256);
}

static uint8_t palette_alpha(int i) { return (uint8_t)((i * 97 + 19) % 256); }

/* The transparent color of a gray or RGB tRNS chunk: pixel (1, 0). */
static int trns_value(const spec *s, int k) { return sample(s->depth, 1, 0, k); }

static void write_png(const char *path, const spec *s) {
  FILE *f = fopen(path, "wb");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL,
                                            NULL);
  png_infop info = png_create_info_struct(png);
  int ns = nsamples(s->type);
  size_t rowbytes = ((size_t)PW * ns * s->depth + 7) / 8;
  uint8_t *px = calloc(rowbytes * PH, 1);
  png_bytep rows[PH];
  for (int y = 0; y < PH; y++) {
    rows[y] = px + rowbytes * y;
    for (int x = 0; x < PW; x++)
      for (int k = 0; k < ns; k++) {
        int v = sample(s->depth, x, y, k);
        size_t bit = ((size_t)x * ns + k) * s->depth;
        if (s->depth == 16) {
          rows[y][bit / 8] = (uint8_t)(v >> 8);
          rows[y][bit / 8 + 1] = (uint8_t)v;
        } else {
          rows[y][bit / 8] |= (uint8_t)(v << (8 - s->depth - bit % 8));
        }
      }
  }
  if (setjmp(png_jmpbuf(png))) {
    fprintf(stderr, "libpng failed writing %s\n", path);
    exit(2);
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, PW, PH, s->depth, s->type,
               s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (s->type == PNG_COLOR_TYPE_PALETTE) {
    png_color pal[256];
    png_byte alpha[256];
    int n = 1 << s->depth;
    for (int i = 0; i < n; i++) {
      uint8_t rgb[3];
      palette_entry(i, rgb);
      pal[i].red = rgb[0];
      pal[i].green = rgb[1];
      pal[i].blue = rgb[2];
      alpha[i] = palette_alpha(i);
    }
    png_set_PLTE(png, info, pal, n);
    if (s->trns) png_set_tRNS(png, info, alpha, n / 2 + 1, NULL);
  } else if (s->trns) {
    png_color_16 c = {0};
    c.gray = (png_uint_16)trns_value(s, 0);
    c.red = (png_uint_16)trns_value(s, 0);
    c.green = (png_uint_16)trns_value(s, 1);
    c.blue = (png_uint_16)trns_value(s, 2);
    png_set_tRNS(png, info, NULL, 0, &c);
  }
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  fclose(f);
  free(px);
}

/* The pixel (x, y) of s as 8-bit R, G, B, A (gray in R=G=B) and as floats
 * in [0, 1] (16-bit precision kept); *color is 1 for RGB sources. */
static void expected_pixel(const spec *s, int x, int y, uint8_t p8[4],
                           float pf[4], int *color) {
  int max = (1 << s->depth) - 1;
  int v[4];
  for (int k = 0; k < 4; k++) v[k] = sample(s->depth, x, y, k);
  *color = s->type == PNG_COLOR_TYPE_RGB ||
           s->type == PNG_COLOR_TYPE_RGB_ALPHA ||
           s->type == PNG_COLOR_TYPE_PALETTE;
  int full[4] = {0, 0, 0, max}; /* samples at the file's depth */
  if (s->type == PNG_COLOR_TYPE_PALETTE) {
    uint8_t rgb[3];
    palette_entry(v[0], rgb);
    full[0] = rgb[0];
    full[1] = rgb[1];
    full[2] = rgb[2];
    full[3] = s->trns && v[0] <= (1 << s->depth) / 2 ? palette_alpha(v[0])
                                                      : 255;
    max = 255;
  } else {
    int ns = nsamples(s->type);
    int gray = ns <= 2;
    for (int k = 0; k < 3; k++) full[k] = gray ? v[0] : v[k];
    if (ns == 2) full[3] = v[1];
    if (ns == 4) full[3] = v[3];
    if (s->trns) {
      int match = gray ? v[0] == trns_value(s, 0)
                       : v[0] == trns_value(s, 0) &&
                             v[1] == trns_value(s, 1) &&
                             v[2] == trns_value(s, 2);
      full[3] = match ? 0 : max;
    }
  }
  for (int k = 0; k < 4; k++) {
    if (s->depth == 16) {
      p8[k] = (uint8_t)((full[k] * 255u + 32767u) / 65535u);
      pf[k] = (float)full[k] / 65535.0f;
    } else {
      p8[k] = (uint8_t)(full[k] * 255 / max);
      pf[k] = (float)p8[k] / 255.0f;
    }
  }
}

static uint8_t luma(const uint8_t *p) {
  return (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >>
                   16);
}

/* Decodes s's file to 1, 3 and 4 channels as uint8 and as floats and checks
 * every pixel. */
static void check_png(const spec *s, const char *path) {
  size_t len;
  uint8_t *buf = read_all(path, &len);
  for (int c = 1; c <= 4; c++) {
    if (c == 2) continue;
    nn_image_opts o = {.channels = c};
    uint8_t *px;
    int h, w;
    nn_error err;
    int rc = nn_image_decode_u8(buf, (int64_t)len, path, &o, &px, &h, &w,
                                &err);
    CHECK(rc == 0);
    nn_tensor *t = nn_image_load(path, &o, &err);
    CHECK(t != NULL);
    if (rc || !t) {
      fprintf(stderr, "  %s: %s\n", path, err.msg);
      nn_tensor_release(t);
      free(px);
      continue;
    }
    CHECK(h == PH && w == PW);
    CHECK(t->shape[0] == c && t->shape[1] == PH && t->shape[2] == PW);
    int bad = 0;
    const float *d = nn_data(t);
    for (int y = 0; y < PH; y++)
      for (int x = 0; x < PW; x++) {
        uint8_t p8[4];
        float pf[4];
        int color;
        expected_pixel(s, x, y, p8, pf, &color);
        uint8_t e8[4];
        float ef[4];
        if (c == 1) {
          e8[0] = color ? luma(p8) : p8[0];
          ef[0] = s->depth == 16 && color
                      ? (pf[0] * 299.0f + pf[1] * 587.0f + pf[2] * 114.0f) /
                            1000.0f
                  : s->depth == 16 ? pf[0]
                                   : e8[0] / 255.0f;
        } else {
          memcpy(e8, p8, 4);
          memcpy(ef, pf, sizeof ef);
        }
        for (int k = 0; k < c; k++) {
          int i = (k * PH + y) * PW + x;
          if (px[i] != e8[k]) bad++;
          if (fabsf(d[i] - ef[k]) > 1e-6f) bad++;
        }
      }
    if (bad)
      fprintf(stderr, "  %s (type %d, depth %d, trns %d) to %d channels: %d "
              "mismatches\n", path, s->type, s->depth, s->trns, c, bad);
    CHECK(bad == 0);
    free(px);
    nn_tensor_release(t);
  }
  free(buf);
}

/* A 16-bit PNG keeps its precision through the float resampler: loading
 * with a size equals resizing the full-size load. */
static void test_png16_resize(void) {
  spec s = {PNG_COLOR_TYPE_RGB, 16, 0, 0};
  const char *path = tpath("rgb16.png");
  write_png(path, &s);
  nn_image_opts full = {.channels = 3}, sized = {.channels = 3, .size_h = 4,
                                                  .size_w = 5};
  nn_error err;
  nn_tensor *a = nn_image_load(path, &full, &err);
  nn_tensor *b = nn_image_load(path, &sized, &err);
  nn_ctx one = {.num_threads = 1};
  nn_tensor *r = a ? nn_resize_tensor(&one, a, 4, 5, &err) : NULL;
  CHECK(a && b && r && nn_tensor_same_shape(b, r));
  if (b && r) CHECK(memcmp(nn_data(b), nn_data(r), 60 * sizeof(float)) == 0);
  nn_tensor_release(a);
  nn_tensor_release(b);
  nn_tensor_release(r);
}

static void test_png_every_type(void) {
  static const spec specs[] = {
      {PNG_COLOR_TYPE_GRAY, 1, 0, 0},      {PNG_COLOR_TYPE_GRAY, 2, 0, 0},
      {PNG_COLOR_TYPE_GRAY, 4, 0, 0},      {PNG_COLOR_TYPE_GRAY, 8, 0, 0},
      {PNG_COLOR_TYPE_GRAY, 16, 0, 0},     {PNG_COLOR_TYPE_GRAY, 8, 1, 0},
      {PNG_COLOR_TYPE_GRAY, 16, 1, 0},     {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, 0},
      {PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0, 0}, {PNG_COLOR_TYPE_RGB, 8, 0, 0},
      {PNG_COLOR_TYPE_RGB, 16, 0, 0},      {PNG_COLOR_TYPE_RGB, 8, 1, 0},
      {PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, 0}, {PNG_COLOR_TYPE_RGB_ALPHA, 16, 0, 0},
      {PNG_COLOR_TYPE_PALETTE, 1, 0, 0},   {PNG_COLOR_TYPE_PALETTE, 2, 0, 0},
      {PNG_COLOR_TYPE_PALETTE, 4, 1, 0},   {PNG_COLOR_TYPE_PALETTE, 8, 0, 0},
      {PNG_COLOR_TYPE_PALETTE, 8, 1, 0},   {PNG_COLOR_TYPE_RGB, 8, 0, 1},
      {PNG_COLOR_TYPE_GRAY, 1, 0, 1},      {PNG_COLOR_TYPE_RGB_ALPHA, 16, 0, 1},
  };
  for (size_t k = 0; k < sizeof specs / sizeof *specs; k++) {
    char name[64];
    snprintf(name, sizeof name, "t%d_d%d_r%d_i%d.png", specs[k].type,
             specs[k].depth, specs[k].trns, specs[k].interlace);
    const char *path = tpath(name);
    write_png(path, &specs[k]);
    check_png(&specs[k], path);
    /* The header says what the decoder will produce. */
    nn_image_info info;
    nn_error err;
    CHECK(nn_image_info_read(path, &info, &err) == 0);
    CHECK(info.format == NN_IMAGE_PNG && info.width == PW &&
          info.height == PH);
    CHECK(info.bit_depth == (specs[k].depth == 16 ? 16 : 8));
    int ns = specs[k].type == PNG_COLOR_TYPE_PALETTE
                 ? 3
                 : nsamples(specs[k].type);
    if (specs[k].trns) ns++;
    CHECK(info.channels == ns);
  }
}

/* ---- JPEG ---- */

/* A smooth test photo: c interleaved channels of w x h. */
static uint8_t *smooth_image(int w, int h, int c) {
  uint8_t *px = malloc((size_t)w * h * c);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < c; k++) {
        double v = 128 + 90 * sin(x * 0.013 * (k + 1) + y * 0.021) *
                             cos(y * 0.017 - k);
        px[((size_t)y * w + x) * c + k] = (uint8_t)v;
      }
  return px;
}

static void write_jpeg(const char *path, const uint8_t *px, int w, int h,
                       int c, int quality) {
  tjhandle tj = tjInitCompress();
  unsigned char *jpg = NULL;
  unsigned long size = 0;
  int rc = tjCompress2(tj, px, w, 0, h, c == 1 ? TJPF_GRAY : TJPF_RGB, &jpg,
                       &size, c == 1 ? TJSAMP_GRAY : TJSAMP_420, quality, 0);
  CHECK(rc == 0);
  write_bytes(path, jpg, size);
  tjFree(jpg);
  tjDestroy(tj);
}

/* TurboJPEG's own full-size decode, interleaved. */
static uint8_t *tj_decode(const char *path, int c, int *w, int *h) {
  size_t len;
  uint8_t *buf = read_all(path, &len);
  tjhandle tj = tjInitDecompress();
  int ss, cs;
  tjDecompressHeader3(tj, buf, len, w, h, &ss, &cs);
  uint8_t *px = malloc((size_t)*w * *h * c);
  tjDecompress2(tj, buf, len, px, *w, 0, *h, c == 1 ? TJPF_GRAY : TJPF_RGB, 0);
  tjDestroy(tj);
  free(buf);
  return px;
}

static uint8_t *decode_file(const char *path, const nn_image_opts *o, int *h,
                            int *w) {
  size_t len;
  uint8_t *buf = read_all(path, &len);
  uint8_t *px = NULL;
  nn_error err;
  if (nn_image_decode_u8(buf, (int64_t)len, path, o, &px, h, w, &err))
    fprintf(stderr, "  %s\n", err.msg);
  free(buf);
  return px;
}

static void test_jpeg_decode(void) {
  const int w = 96, h = 72;
  uint8_t *src = smooth_image(w, h, 3);
  const char *path = tpath("rgb.jpg");
  write_jpeg(path, src, w, h, 3, 95);
  int tw, th;
  uint8_t *ref = tj_decode(path, 3, &tw, &th);
  int dh, dw;
  nn_image_opts o3 = {.channels = 3}, o1 = {.channels = 1},
                o4 = {.channels = 4};
  uint8_t *p3 = decode_file(path, &o3, &dh, &dw);
  uint8_t *p1 = decode_file(path, &o1, &dh, &dw);
  uint8_t *p4 = decode_file(path, &o4, &dh, &dw);
  CHECK(p3 && p1 && p4 && dh == h && dw == w);
  if (p3 && p1 && p4) {
    int bad = 0;
    double sum = 0;
    int plane = w * h;
    for (int i = 0; i < plane; i++) {
      for (int k = 0; k < 3; k++) {
        bad += p3[k * plane + i] != ref[i * 3 + k];
        bad += p4[k * plane + i] != ref[i * 3 + k];
        sum += fabs((double)p3[k * plane + i] - src[i * 3 + k]);
      }
      bad += p4[3 * plane + i] != 255;
      bad += p1[i] != luma(ref + i * 3);
    }
    CHECK(bad == 0);           /* exactly TurboJPEG's (and PIL's) decode */
    CHECK(sum / (3.0 * plane) < 2.0); /* close to the encoded pixels */
  }
  free(p1);
  free(p3);
  free(p4);
  free(ref);
  free(src);

  /* A gray JPEG: 1 channel as decoded, 3 channels replicated. */
  uint8_t *gsrc = smooth_image(w, h, 1);
  const char *gpath = tpath("gray.jpg");
  write_jpeg(gpath, gsrc, w, h, 1, 90);
  uint8_t *gref = tj_decode(gpath, 1, &tw, &th);
  uint8_t *g1 = decode_file(gpath, &o1, &dh, &dw);
  uint8_t *g3 = decode_file(gpath, &o3, &dh, &dw);
  CHECK(g1 && g3);
  if (g1 && g3) {
    int bad = 0;
    for (int i = 0; i < w * h; i++)
      for (int k = 0; k < 3; k++)
        bad += g3[k * w * h + i] != gref[i] || g1[i] != gref[i];
    CHECK(bad == 0);
  }
  nn_image_info info;
  nn_error err;
  CHECK(nn_image_info_read(gpath, &info, &err) == 0);
  CHECK(info.format == NN_IMAGE_JPEG && info.channels == 1 &&
        info.width == w && info.height == h && info.bit_depth == 8);
  CHECK(nn_image_info_read(path, &info, &err) == 0);
  CHECK(info.channels == 3);
  free(g1);
  free(g3);
  free(gref);
  free(gsrc);
}

static void test_jpeg_draft(void) {
  struct {
    int w, h, th, tw, sw, sh;
  } cases[] = {
      {600, 450, 64, 64, 150, 113}, /* 1/8 gives 75x57: too short */
      {600, 450, 57, 75, 75, 57},   /* exactly 1/8 */
      {600, 450, 58, 75, 150, 113}, /* 2/8 is the next factor that fits */
      {600, 450, 120, 160, 225, 169}, /* 3/8 */
      {600, 450, 450, 600, 600, 450}, /* full size */
      {600, 450, 500, 700, 600, 450}, /* upscaling: full size */
      {33, 17, 1, 1, 5, 3},           /* sides rounded up */
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    int sw, sh;
    nn_image_jpeg_draft_size(cases[k].w, cases[k].h, cases[k].th, cases[k].tw,
                             &sw, &sh);
    if (sw != cases[k].sw || sh != cases[k].sh)
      fprintf(stderr, "  draft size of %dx%d for %dx%d: %dx%d\n", cases[k].w,
              cases[k].h, cases[k].tw, cases[k].th, sw, sh);
    CHECK(sw == cases[k].sw && sh == cases[k].sh);
  }

  /* A 600x450 photo to 64x64: the draft path stays close to the full
   * decode followed by the same resize. */
  const int w = 600, h = 450;
  uint8_t *src = smooth_image(w, h, 3);
  const char *path = tpath("photo.jpg");
  write_jpeg(path, src, w, h, 3, 90);
  nn_image_opts fast = {.channels = 3, .size_h = 64, .size_w = 64,
                        .draft = 1};
  nn_image_opts full = fast;
  full.draft = 0;
  int h1, w1, h2, w2;
  uint8_t *a = decode_file(path, &fast, &h1, &w1);
  uint8_t *b = decode_file(path, &full, &h2, &w2);
  CHECK(a && b && h1 == 64 && w1 == 64 && h2 == 64 && w2 == 64);
  if (a && b) {
    double sum = 0;
    int maxd = 0;
    for (int i = 0; i < 3 * 64 * 64; i++) {
      int d = abs(a[i] - b[i]);
      sum += d;
      if (d > maxd) maxd = d;
    }
    CHECK(sum / (3 * 64 * 64) < 1.5);
    CHECK(maxd <= 12);
  }
  /* The smaller edge: 450 -> 64, 600 -> int(64 * 600 / 450) = 85. */
  nn_image_opts edge = {.channels = 1, .size_h = 64, .draft = 1};
  uint8_t *c = decode_file(path, &edge, &h1, &w1);
  CHECK(c && h1 == 64 && w1 == 85);
  free(a);
  free(b);
  free(c);
  free(src);
}

/* ---- Bad files ---- */

/* Loading path fails with a message naming it and containing part. */
static void expect_load_error(const char *path, const char *part) {
  nn_image_opts o = {.channels = 3};
  nn_error err;
  nn_tensor *t = nn_image_load(path, &o, &err);
  CHECK(t == NULL);
  if (t) {
    fprintf(stderr, "  %s loaded\n", path);
    nn_tensor_release(t);
    return;
  }
  char prefix[300];
  snprintf(prefix, sizeof prefix, "image '%s': ", path);
  CHECK(strncmp(err.msg, prefix, strlen(prefix)) == 0);
  CHECK(has(err.msg, part));
}

static void test_bad_files(void) {
  write_bytes(tpath("garbage.png"), "this is not an image at all", 27);
  expect_load_error(tpath("garbage.png"), "not a PNG or JPEG file");
  write_bytes(tpath("empty.jpg"), "", 0);
  expect_load_error(tpath("empty.jpg"), "empty file");
  expect_load_error(tpath("missing.png"), "cannot open: No such file");
  expect_load_error(dir, "not a regular file");

  spec s = {PNG_COLOR_TYPE_RGB, 8, 0, 0};
  write_png(tpath("good.png"), &s);
  size_t len;
  uint8_t *png = read_all(tpath("good.png"), &len);
  size_t cuts[] = {5, 20, 40, len / 2, len - 6};
  const char *why[] = {"not a PNG or JPEG file", "no IHDR chunk",
                       "corrupt or truncated PNG", "corrupt or truncated PNG",
                       "corrupt or truncated PNG"};
  for (int k = 0; k < 5; k++) {
    write_bytes(tpath("cut.png"), png, cuts[k]);
    expect_load_error(tpath("cut.png"), why[k]);
  }
  /* A flipped byte in the compressed data; a flipped byte of IDAT's CRC
   * (IEND takes the last 12 bytes). */
  uint8_t *bad = malloc(len);
  memcpy(bad, png, len);
  bad[len / 2] ^= 0x55;
  write_bytes(tpath("flip.png"), bad, len);
  expect_load_error(tpath("flip.png"), "corrupt or truncated PNG (IDAT: ");
  memcpy(bad, png, len);
  bad[len - 13] ^= 0x01;
  write_bytes(tpath("crc.png"), bad, len);
  expect_load_error(tpath("crc.png"), "CRC error");
  /* An impossible header: color type 5. */
  memcpy(bad, png, len);
  bad[25] = 5;
  write_bytes(tpath("type5.png"), bad, len);
  expect_load_error(tpath("type5.png"), "invalid PNG header");
  free(bad);
  free(png);

  uint8_t *src = smooth_image(64, 48, 3);
  write_jpeg(tpath("good.jpg"), src, 64, 48, 3, 90);
  free(src);
  uint8_t *jpg = read_all(tpath("good.jpg"), &len);
  size_t jcuts[] = {2, 30, len / 2, len - 2};
  for (int k = 0; k < 4; k++) {
    write_bytes(tpath("cut.jpg"), jpg, jcuts[k]);
    expect_load_error(tpath("cut.jpg"), k == 0 ? "not a PNG or JPEG" : "JPEG");
  }
  /* Garbage after the start-of-image marker. */
  uint8_t junk[64] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 'x', 'y', 0x12};
  write_bytes(tpath("junk.jpg"), junk, sizeof junk);
  expect_load_error(tpath("junk.jpg"), "corrupt JPEG");
  free(jpg);
  /* CMYK data (stored as YCCK) is refused as unsupported. */
  uint8_t *cmyk = smooth_image(32, 16, 4);
  tjhandle tj = tjInitCompress();
  unsigned char *out = NULL;
  unsigned long size = 0;
  CHECK(tjCompress2(tj, cmyk, 32, 0, 16, TJPF_CMYK, &out, &size, TJSAMP_444,
                    90, 0) == 0);
  write_bytes(tpath("cmyk.jpg"), out, size);
  tjFree(out);
  tjDestroy(tj);
  free(cmyk);
  expect_load_error(tpath("cmyk.jpg"), "unsupported JPEG color space (YCCK)");
  /* 12-bit samples: the frame header's precision. */
  jpg = read_all(tpath("good.jpg"), &len);
  for (size_t i = 2; i + 4 < len; i++)
    if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
      jpg[i + 4] = 12;
      break;
    }
  write_bytes(tpath("p12.jpg"), jpg, len);
  free(jpg);
  expect_load_error(tpath("p12.jpg"), "unsupported JPEG with 12-bit samples");

  /* info() on a bad file names it too. */
  nn_image_info info;
  nn_error err;
  CHECK(nn_image_info_read(tpath("garbage.png"), &info, &err) == -1);
  CHECK(has(err.msg, "garbage.png': not a PNG or JPEG file"));
}

/* ---- Decompression bombs ---- */

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* A PNG that declares w x h RGB pixels, with a tiny IDAT and IEND. */
static void write_bomb_png(const char *path, uint32_t w, uint32_t h) {
  uint8_t b[8 + 25 + 12 + 8 + 12];
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  memcpy(b, sig, 8);
  put32(b + 8, 13);
  memcpy(b + 12, "IHDR", 4);
  put32(b + 16, w);
  put32(b + 20, h);
  b[24] = 8;
  b[25] = 2;
  b[26] = b[27] = b[28] = 0;
  put32(b + 29, (uint32_t)crc32(0, b + 12, 17));
  put32(b + 33, 8);
  memcpy(b + 37, "IDAT", 4);
  memset(b + 41, 0, 8);
  put32(b + 49, (uint32_t)crc32(0, b + 37, 12));
  put32(b + 53, 0);
  memcpy(b + 57, "IEND", 4);
  put32(b + 61, (uint32_t)crc32(0, b + 57, 4));
  write_bytes(path, b, sizeof b);
}

static void test_bombs(void) {
  write_bomb_png(tpath("bomb.png"), 100000, 100000);
  expect_load_error(tpath("bomb.png"), "declared size 100000x100000 exceeds");
  expect_load_error(tpath("bomb.png"), "decompression bomb");
  write_bomb_png(tpath("bomb2.png"), 20000, 20000); /* sides fine, area not */
  expect_load_error(tpath("bomb2.png"), "declared size 20000x20000");
  nn_image_info info;
  nn_error err;
  CHECK(nn_image_info_read(tpath("bomb.png"), &info, &err) == 0);
  CHECK(info.width == 100000 && info.height == 100000 && info.channels == 3);

  /* A JPEG whose frame header is patched to 40000 x 30000. */
  uint8_t *src = smooth_image(16, 16, 3);
  write_jpeg(tpath("small.jpg"), src, 16, 16, 3, 90);
  free(src);
  size_t len;
  uint8_t *jpg = read_all(tpath("small.jpg"), &len);
  for (size_t i = 2; i + 9 < len; i++)
    if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
      jpg[i + 5] = 30000 >> 8;
      jpg[i + 6] = 30000 & 0xff;
      jpg[i + 7] = 40000 >> 8;
      jpg[i + 8] = 40000 & 0xff;
      break;
    }
  write_bytes(tpath("bomb.jpg"), jpg, len);
  free(jpg);
  expect_load_error(tpath("bomb.jpg"), "declared size 40000x30000 exceeds");
  CHECK(nn_image_info_read(tpath("bomb.jpg"), &info, &err) == 0);
  CHECK(info.width == 40000 && info.height == 30000);
}

/* ---- Resizing against PIL (uint8) and torchvision (float) ---- */

/* The inputs of the reference cases (tools: PIL 9.4 Image.resize(BILINEAR)
 * per channel; torchvision 0.14 F.resize(tensor, antialias=True)). */
static uint8_t u8_input(int k, int y, int x) {
  return (uint8_t)((x * 37 + y * 91 + k * 53 + (x * y) % 7 * 11) % 256);
}

static float f32_input(int k, int y, int x) {
  return (float)(sin(x * 0.7 + k) + cos(y * 1.3 - k * 0.5) * 0.5 +
                 (x * y % 5) * 0.1);
}

typedef struct rcase {
  int c, h, w, oh, ow;
  const int *u8;
  const float *f32;
} rcase;

static const int U0[] = {
    106, 129, 129, 118, 124, 123, 131, 117, 114, 118, 148, 114};
static const int U1[] = {
    106, 129, 129, 118, 124, 123, 131, 117, 114, 118, 148, 114, 135, 132, 140,
    120, 152, 140, 101, 135, 167, 149, 143, 167, 146, 154, 151, 150, 115, 93,
    132, 131, 126, 94, 87, 131};
static const int U2[] = {
    30, 52, 81, 108, 137, 138, 108, 136, 164, 177, 70, 52, 74, 142, 171, 176,
    114, 141, 130, 59, 97, 134, 166, 150, 169, 199, 64, 102, 136, 143, 127,
    131, 159, 174, 139, 73, 68, 99, 137, 148, 134, 122, 129, 73, 52, 82, 118,
    137, 143, 150, 138, 124, 89, 96, 108, 124, 139, 162, 196, 211, 161, 71, 87,
    99, 106};
static const int U3[] = {
    26, 93, 159, 125, 179, 77, 188, 96, 113, 67, 154, 207, 155, 106, 56, 107,
    67, 150};
static const int U4[] = {
    82, 133, 119, 160, 96, 137, 117, 132, 130, 73, 113, 153};
static const int U5[] = {
    121, 126, 124, 121, 128, 125, 125, 140, 120};
static const int U6[] = {
    0, 6, 23, 39, 56, 72, 88, 105, 111, 17, 23, 41, 58, 75, 92, 109, 127, 134,
    58, 65, 85, 105, 124, 143, 163, 183, 190, 99, 107, 129, 150, 161, 172, 193,
    215, 223, 141, 150, 173, 190, 152, 114, 130, 154, 163, 182, 192, 218, 230,
    143, 55, 67, 93, 103, 107, 118, 146, 167, 133, 100, 107, 119, 124, 32, 44,
    74, 104, 124, 144, 146, 146, 146, 50, 63, 96, 127, 147, 168, 143, 113, 102,
    91, 105, 140, 171, 178, 186, 130, 66, 42, 108, 122, 158, 189, 191, 193,
    125, 47, 18};
static const int U7[] = {
    122, 127, 128, 130, 133, 128, 127, 134, 133, 132, 117, 127, 124, 124, 134,
    115, 129, 116, 116, 124};

static const float F0[] = {
    0.6882868f, 1.044706f, -0.1215591f, -0.5394271f, 0.4741223f, 0.8028372f,
    -0.3765458f, -0.7470489f, 0.8214689f, 1.147077f, -0.005251199f,
    -0.4225716f};
static const float F1[] = {
    0.6882868f, 1.044706f, -0.1215591f, -0.5394271f, 0.4741223f, 0.8028372f,
    -0.3765458f, -0.7470489f, 0.8214689f, 1.147077f, -0.005251199f,
    -0.4225716f, 1.195573f, 0.5309878f, -0.4601391f, 0.1770329f, 0.8209679f,
    0.1286776f, -0.8755668f, -0.1910301f, 1.250188f, 0.5547907f, -0.422399f,
    0.2153206f, 0.838883f, -0.1481812f, -0.122127f, 1.035193f, 0.4172147f,
    -0.5975543f, -0.5846176f, 0.6200677f, 0.8035567f, -0.214319f, -0.1743275f,
    0.9835405f};
static const float F2[] = {
    0.3779165f, 0.7427517f, 1.141906f, 1.40122f, 1.375321f, 1.188853f,
    0.846238f, 0.2791653f, -0.1603511f, -0.4662909f, -0.5199748f, -0.3603989f,
    -0.1533502f, -0.1785804f, 0.2520667f, 0.7358361f, 1.079766f, 0.9675419f,
    0.7588514f, 0.5008522f, -0.2123744f, -0.6698394f, -0.8911638f, -0.8602324f,
    -0.7442463f, -0.6209581f, -0.266285f, 0.2421399f, 0.7315037f, 0.8922169f,
    0.9075763f, 0.709919f, 0.2687031f, -0.3445234f, -0.7019885f, -0.8547814f,
    -1.007067f, -0.8411971f, -0.5884607f, 0.347163f, 0.8137075f, 1.279528f,
    1.477304f, 1.389866f, 1.14186f, 0.7377067f, 0.2244802f, -0.118455f,
    -0.3149931f, -0.4302155f, -0.332178f, -0.1729925f, 0.1807498f, 0.5635337f,
    0.9857646f, 1.268156f, 1.265334f, 1.101942f, 0.7824045f, 0.1230242f,
    -0.3446972f, -0.6275601f, -0.6581671f, -0.4755143f, -0.2505169f};
static const float F3[] = {
    0.9168718f, 1.315648f, 0.6165463f, 0.6220498f, 1.199397f, 0.4645815f,
    0.1312846f, 0.6372036f, -0.1690409f, 0.1967628f, 0.7026817f, -0.1035627f,
    0.8654159f, 1.299906f, 0.4222332f, 0.9051657f, 1.303942f, 0.6048401f};
static const float F4[] = {
    0.02267416f, 0.7918919f, 1.195624f, 1.073384f, 0.6076623f, -0.3281091f,
    0.06562325f, 0.959841f, 1.238573f, 1.116333f, 0.5256114f, -0.28516f};
static const float F5[] = {
    0.7472958f, 0.1444671f, -0.4112988f, 0.8173091f, 0.1929771f, -0.3633534f,
    0.6841873f, 0.05929076f, -0.4858983f};
static const float F6[] = {
    0.5f, 0.6073697f, 0.8936886f, 1.163175f, 1.314834f, 1.466492f, 1.437912f,
    1.383583f, 1.363209f, 0.433409f, 0.5438089f, 0.8382087f, 1.115776f,
    1.275515f, 1.435255f, 1.414755f, 1.368507f, 1.351164f, 0.2669314f,
    0.3849072f, 0.699509f, 0.9972782f, 1.17722f, 1.357161f, 1.356863f,
    1.330817f, 1.32105f, 0.08264086f, 0.2081923f, 0.5429962f, 0.8609675f,
    1.061111f, 1.261254f, 1.263482f, 1.237436f, 1.227668f, -0.1729017f,
    -0.03977452f, 0.3152314f, 0.6534046f, 0.8737502f, 1.094096f, 1.028141f,
    0.9212871f, 0.8812168f, -0.4284444f, -0.2877414f, 0.08746646f, 0.4458418f,
    0.6863893f, 0.9269369f, 0.7928008f, 0.6051384f, 0.534765f, -0.3986816f,
    -0.2504028f, 0.1450071f, 0.5109581f, 0.6706976f, 0.8304371f, 0.7922606f,
    0.7258103f, 0.7008915f, -0.3689187f, -0.2130642f, 0.2025477f, 0.5760745f,
    0.6550059f, 0.7339373f, 0.7917204f, 0.8464823f, 0.867018f, -0.1457935f,
    0.01763672f, 0.4534507f, 0.8446543f, 0.9235856f, 1.002517f, 1.024947f,
    1.039304f, 1.044689f, 0.1256722f, 0.2966782f, 0.7526941f, 1.1641f,
    1.263233f, 1.362367f, 1.316614f, 1.250164f, 1.225245f, 0.2342583f,
    0.4082946f, 0.8723914f, 1.291878f, 1.399092f, 1.506306f, 1.433281f,
    1.334508f, 1.297468f};
static const float F7[] = {
    0.6668966f, -0.2253696f, 0.5340768f, -0.2346186f, 0.6573468f, 0.6761816f,
    -0.2170103f, 0.5427375f, -0.2262593f, 0.6655199f, 0.68106f, -0.2129475f,
    0.5468646f, -0.2221966f, 0.6702871f, 0.7310405f, -0.1631885f, 0.5967473f,
    -0.1724375f, 0.7195534f};

static void test_resize_reference(void) {
  const rcase cases[] = {
      {1, 7, 9, 3, 4, U0, F0},  {3, 7, 9, 3, 4, U1, F1},
      {1, 7, 9, 5, 13, U2, F2}, {1, 6, 6, 6, 3, U3, F3},
      {1, 6, 6, 2, 6, U4, F4},  {1, 10, 10, 3, 3, U5, F5},
      {1, 5, 4, 11, 9, U6, F6}, {1, 17, 23, 4, 5, U7, F7},
  };
  nn_ctx ctx = {.num_threads = 2};
  for (size_t n = 0; n < sizeof cases / sizeof *cases; n++) {
    const rcase *r = &cases[n];
    int in = r->c * r->h * r->w, out = r->c * r->oh * r->ow;
    uint8_t *a = malloc((size_t)in), *b = malloc((size_t)out);
    float *fa = malloc((size_t)in * sizeof *fa);
    float *fb = malloc((size_t)out * sizeof *fb);
    for (int k = 0; k < r->c; k++)
      for (int y = 0; y < r->h; y++)
        for (int x = 0; x < r->w; x++) {
          a[(k * r->h + y) * r->w + x] = u8_input(k, y, x);
          fa[(k * r->h + y) * r->w + x] = f32_input(k, y, x);
        }
    nn_error err;
    CHECK(nn_resize_u8(a, r->c, r->h, r->w, b, r->oh, r->ow, &err) == 0);
    CHECK(nn_resize_f32(&ctx, fa, r->c, r->h, r->w, fb, r->oh, r->ow, &err) ==
          0);
    int bad = 0;
    for (int i = 0; i < out; i++) {
      bad += b[i] != r->u8[i];
      if (fabsf(fb[i] - r->f32[i]) > 2e-6f * (1 + fabsf(r->f32[i]))) bad++;
    }
    if (bad)
      fprintf(stderr, "  resize %dx%d -> %dx%d: %d mismatches\n", r->h, r->w,
              r->oh, r->ow, bad);
    CHECK(bad == 0);
    free(a);
    free(b);
    free(fa);
    free(fb);
  }
}

static void test_resize_sizes(void) {
  struct {
    int h, w, sh, sw, oh, ow;
  } cases[] = {{450, 600, 64, 0, 64, 85},  {600, 450, 64, 0, 85, 64},
               {50, 50, 7, 0, 7, 7},       {450, 600, 32, 48, 32, 48},
               {3, 1000, 2, 0, 2, 666},    {1000, 1, 5, 0, 5000, 5}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    int oh, ow;
    nn_error err;
    CHECK(nn_resize_output_size(cases[k].h, cases[k].w, cases[k].sh,
                                cases[k].sw, 32768, &oh, &ow, &err) == 0);
    CHECK(oh == cases[k].oh && ow == cases[k].ow);
  }
  int oh, ow;
  nn_error err;
  CHECK(nn_resize_output_size(1, 1000, 100, 0, 32768, &oh, &ow, &err) == -1);
  CHECK(has(err.msg, "larger than the limit of 32768"));
  CHECK(nn_resize_output_size(10, 10, 0, 0, 32768, &oh, &ow, &err) == -1);

  /* Same size copies; a strided tensor is resized through a copy. */
  uint8_t a[6] = {1, 2, 3, 4, 5, 6}, b[6];
  CHECK(nn_resize_u8(a, 1, 2, 3, b, 2, 3, &err) == 0);
  CHECK(memcmp(a, b, 6) == 0);
  nn_ctx ctx = {.num_threads = 2};
  nn_tensor *t = nn_tensor_new(2, (int64_t[]){4, 6}, &err);
  for (int i = 0; i < 24; i++) nn_data(t)[i] = (float)i;
  nn_tensor *v = nn_tensor_narrow(t, 1, 1, 4, &err); /* [4, 4] strided */
  nn_tensor *r = nn_resize_tensor(&ctx, v, 2, 2, &err);
  CHECK(r && r->shape[0] == 2 && r->shape[1] == 2);
  /* Halving weighs inputs 0, 1, 2 by 3/7, 3/7, 1/7 on each axis: rows
   * 1 2 3 / 7 8 9 / 13 14 15 of the view give 6. */
  if (r) CHECK_NEAR(nn_data(r)[0], 6.0, 1e-6);
  nn_tensor *one = nn_tensor_new1(5, &err);
  CHECK(nn_resize_tensor(&ctx, one, 2, 2, &err) == NULL);
  CHECK(has(err.msg, "expected an image tensor of shape [..., H, W], got [5]"));
  nn_tensor_release(one);
  nn_tensor_release(r);
  nn_tensor_release(v);
  nn_tensor_release(t);
}

/* ---- Stores ---- */

/* Writes 10 images (PNG and JPEG, various sizes and channel counts). */
static void write_batch_files(char paths[10][256]) {
  for (int k = 0; k < 10; k++) {
    int w = 40 + 13 * k, h = 30 + 7 * k, c = k % 3 == 0 ? 1 : 3;
    uint8_t *px = smooth_image(w, h, c);
    char name[32];
    snprintf(name, sizeof name, "b%d.%s", k, k % 2 ? "png" : "jpg");
    snprintf(paths[k], 256, "%s", tpath(name));
    if (k % 2) {
      nn_error err;
      nn_tensor *t = nn_tensor_new(3, (int64_t[]){c, h, w}, &err);
      for (int i = 0; i < w * h; i++)
        for (int ch = 0; ch < c; ch++)
          nn_data(t)[ch * w * h + i] = px[i * c + ch] / 255.0f;
      CHECK(nn_image_save_png(paths[k], t, &err) == 0);
      nn_tensor_release(t);
    } else {
      write_jpeg(paths[k], px, w, h, c, 85);
    }
    free(px);
  }
}

static void test_load_batch_threads(void) {
  char paths[10][256];
  write_batch_files(paths);
  const char *p[10];
  int64_t slots[10];
  for (int k = 0; k < 10; k++) {
    p[k] = paths[k];
    slots[k] = 9 - k;
  }
  nn_error err;
  nn_imagestore *s1 = nn_image_store_new(10, 3, 24, 32, NULL, &err);
  nn_imagestore *s2 = nn_image_store_new(10, 3, 24, 32, NULL, &err);
  nn_ctx one = {.num_threads = 1}, two = {.num_threads = 2};
  CHECK(nn_image_load_batch_into(&one, s1, slots, p, 10, 1, &err) == 0);
  CHECK(nn_image_load_batch_into(&two, s2, slots, p, 10, 1, &err) == 0);
  CHECK(memcmp(s1->pixels, s2->pixels, (size_t)s1->pixel_bytes) == 0);
  /* Each slot equals a single decode of its file. */
  int bad = 0;
  for (int k = 0; k < 10; k++) {
    nn_image_opts o = {.channels = 3, .size_h = 24, .size_w = 32, .draft = 1};
    int h, w;
    uint8_t *px = decode_file(p[k], &o, &h, &w);
    bad += !px || memcmp(px, nn_imagestore_image(s1, slots[k]), 3 * 24 * 32);
    free(px);
  }
  CHECK(bad == 0);

  /* The error is the first failing file's, whatever the thread count. */
  write_bytes(tpath("bad1.png"), "nope", 4);
  p[3] = tpath("bad1.png");
  p[7] = tpath("missing.jpg");
  CHECK(nn_image_load_batch_into(&two, s2, slots, p, 10, 1, &err) == -1);
  CHECK(has(err.msg, "bad1.png': not a PNG or JPEG file"));
  p[3] = paths[3];
  CHECK(nn_image_load_batch_into(&two, s2, slots, p, 10, 1, &err) == -1);
  CHECK(has(err.msg, "missing.jpg': cannot open"));
  slots[4] = 10;
  CHECK(nn_image_load_batch_into(&two, s2, slots, p, 10, 1, &err) == -1);
  CHECK(has(err.msg, "slot 10 (at position 4) is out of range 0..9"));
  nn_imagestore_release(s1);
  nn_imagestore_release(s2);
}

static void test_store_new(void) {
  nn_error err;
  nn_imagestore *s = nn_image_store_new(3, 1, 4, 5, NULL, &err);
  CHECK(s && s->n == 3 && s->pixels_owner == NN_PIXELS_MALLOC);
  int zero = 1;
  for (int i = 0; s && i < 60; i++) zero &= s->pixels[i] == 0;
  CHECK(zero);
  nn_imagestore_release(s);

  const char *cache = tpath("cache.u8");
  s = nn_image_store_new(2, 3, 6, 8, cache, &err);
  CHECK(s && s->pixels_owner == NN_PIXELS_MMAP);
  if (s) {
    CHECK(nn_image_load_into(s, 1, tpath("b1.png"), 1, &err) == 0);
    uint8_t copy[2 * 3 * 6 * 8];
    memcpy(copy, s->pixels, sizeof copy);
    nn_imagestore_release(s);
    size_t len;
    uint8_t *file = read_all(cache, &len);
    CHECK(len == sizeof copy && memcmp(file, copy, len) == 0);
    free(file);
  }
  s = nn_image_store_new(0, 3, 6, 8, tpath("empty.u8"), &err);
  CHECK(s && s->n == 0);
  nn_imagestore_release(s);
  CHECK(nn_image_store_new(2, 3, 6, 8, tpath("no/such/dir"), &err) == NULL);
  CHECK(has(err.msg, "cannot create the image cache"));
  CHECK(nn_image_store_new(-1, 3, 6, 8, NULL, &err) == NULL);
  CHECK(has(err.msg, "image count -1 is out of range"));

  s = nn_image_store_new(2, 2, 6, 8, NULL, &err);
  CHECK(nn_image_load_into(s, 0, tpath("b1.png"), 1, &err) == -1);
  CHECK(has(err.msg, "needs 1, 3 or 4 channels"));
  CHECK(nn_image_load_into(s, 2, tpath("b1.png"), 1, &err) == -1);
  CHECK(has(err.msg, "slot 2 is out of range 0..1"));
  nn_imagestore_release(s);
}

/* ---- Writing ---- */

static void test_save(void) {
  nn_error err;
  nn_tensor *t = nn_tensor_new(3, (int64_t[]){4, 3, 5}, &err);
  for (int i = 0; i < 60; i++) nn_data(t)[i] = (float)((i * 37) % 256) / 255.0f;
  CHECK(nn_image_save_png(tpath("rgba.png"), t, &err) == 0);
  nn_image_opts o4 = {.channels = 4};
  nn_tensor *u = nn_image_load(tpath("rgba.png"), &o4, &err);
  CHECK(u && nn_tensor_same_shape(t, u));
  if (u) CHECK(memcmp(nn_data(t), nn_data(u), 60 * sizeof(float)) == 0);
  nn_tensor_release(u);

  /* [H, W]; out-of-range values and NaN are clamped. */
  nn_tensor *g = nn_tensor_new2(2, 2, &err);
  nn_data(g)[0] = -3.0f;
  nn_data(g)[1] = 7.0f;
  nn_data(g)[2] = NAN;
  nn_data(g)[3] = 0.5f;
  CHECK(nn_image_save_png(tpath("g.png"), g, &err) == 0);
  nn_image_opts o1 = {.channels = 1};
  u = nn_image_load(tpath("g.png"), &o1, &err);
  CHECK(u && u->shape[0] == 1 && u->shape[1] == 2 && u->shape[2] == 2);
  if (u) {
    CHECK(nn_data(u)[0] == 0.0f && nn_data(u)[1] == 1.0f);
    CHECK(nn_data(u)[2] == 0.0f && nn_data(u)[3] == 128.0f / 255.0f);
  }
  nn_tensor_release(u);

  CHECK(nn_image_save_jpeg(tpath("q.jpg"), g, 90, &err) == 0);
  CHECK(nn_image_save_jpeg(tpath("q.jpg"), t, 90, &err) == -1);
  CHECK(has(err.msg, "with C in 1, 3, or [H, W] (H and W in 1..32768), got "
                     "[4, 3, 5]"));
  CHECK(nn_image_save_jpeg(tpath("q.jpg"), g, 0, &err) == -1);
  CHECK(has(err.msg, "quality must be in 1..100, got 0"));
  nn_tensor *bad = nn_tensor_new(3, (int64_t[]){2, 3, 5}, &err);
  CHECK(nn_image_save_png(tpath("x.png"), bad, &err) == -1);
  CHECK(has(err.msg, "got [2, 3, 5]"));
  CHECK(nn_image_save_png(tpath("no/such/x.png"), g, &err) == -1);
  CHECK(has(err.msg, "no/such/x.png': cannot create: No such file"));
  nn_tensor_release(bad);
  nn_tensor_release(g);
  nn_tensor_release(t);
}

/* Removes every file of dir, then dir. */
static void cleanup(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/nn_test_image_XXXXXX");
  if (!mkdtemp(dir)) return 2;
  RUN(test_png_every_type);
  RUN(test_png16_resize);
  RUN(test_jpeg_decode);
  RUN(test_jpeg_draft);
  RUN(test_bad_files);
  RUN(test_bombs);
  RUN(test_resize_reference);
  RUN(test_resize_sizes);
  RUN(test_load_batch_threads);
  RUN(test_store_new);
  RUN(test_save);
  cleanup();
  return check_report("image");
}
