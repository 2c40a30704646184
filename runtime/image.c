/* image.c - PNG (libpng) and JPEG (TurboJPEG) decoding and encoding, and
 * decoding into image stores (see image.h). */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "resize.h"

/* Largest file the decoders read into memory (2 GiB). */
#define MAX_FILE_BYTES ((int64_t)1 << 31)

static const uint8_t PNG_SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a,
                                         '\n'};

const char *nn_image_format_name(nn_image_format f) {
  return f == NN_IMAGE_PNG ? "png" : "jpeg";
}

/* ---- Byte sources: a memory buffer or an open file ---- */

/* Header parsing reads through this so that nn_image_info_read touches only
 * the first chunks of a file while decoding parses the buffer in memory. */
typedef struct source {
  const uint8_t *buf; /* memory source when not NULL */
  int64_t len;
  FILE *f; /* file source otherwise */
} source;

/* Copies n bytes at offset off into dst; 0 on success, -1 past the end. */
static int read_at(const source *s, int64_t off, void *dst, int64_t n) {
  if (s->buf) {
    if (off < 0 || n > s->len - off) return -1;
    memcpy(dst, s->buf + off, (size_t)n);
    return 0;
  }
  if (fseeko(s->f, (off_t)off, SEEK_SET)) return -1;
  return fread(dst, 1, (size_t)n, s->f) == (size_t)n ? 0 : -1;
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static int be16(const uint8_t *p) { return p[0] << 8 | p[1]; }

/* The format of a file starting with the n bytes at p, or 0. */
static nn_image_format sniff(const uint8_t *p, int64_t n) {
  if (n >= 8 && memcmp(p, PNG_SIGNATURE, 8) == 0) return NN_IMAGE_PNG;
  if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
    return NN_IMAGE_JPEG;
  return 0;
}

/* The PNG header: IHDR (which must come first), then the chunks before the
 * first IDAT, looking for tRNS. */
static int png_header(const source *s, const char *name, nn_image_info *info,
                      nn_error *err) {
  uint8_t h[25];
  if (read_at(s, 8, h, 25) || be32(h) != 13 || memcmp(h + 4, "IHDR", 4))
    return nn_seterr(err, "image '%s': corrupt or truncated PNG (no IHDR "
                     "chunk)", name);
  uint32_t w = be32(h + 8), ht = be32(h + 12);
  int depth = h[16], type = h[17];
  static const int channels_of_type[7] = {1, 0, 3, 3, 2, 0, 4};
  int ok_depth = depth == 1 || depth == 2 || depth == 4 || depth == 8 ||
                 depth == 16;
  if (w == 0 || ht == 0 || w > 0x7fffffff || ht > 0x7fffffff || type > 6 ||
      !channels_of_type[type] || !ok_depth ||
      (type == 3 && depth == 16) || (type != 0 && type != 3 && depth < 8))
    return nn_seterr(err, "image '%s': invalid PNG header (%ux%u, bit depth "
                     "%d, color type %d)", name, w, ht, depth, type);
  info->format = NN_IMAGE_PNG;
  info->width = (int)w;
  info->height = (int)ht;
  info->channels = channels_of_type[type];
  info->bit_depth = depth == 16 ? 16 : 8;
  int64_t off = 8 + 25;
  for (int k = 0; k < 10000; k++) {
    uint8_t ch[8];
    if (read_at(s, off, ch, 8)) break; /* the decoder reports truncation */
    if (memcmp(ch + 4, "IDAT", 4) == 0) break;
    if (memcmp(ch + 4, "tRNS", 4) == 0 && (type == 0 || type == 2 || type == 3))
      info->channels = type == 0 ? 2 : 4;
    off += 12 + (int64_t)be32(ch);
  }
  return 0;
}

/* The JPEG header: markers up to the first start-of-frame. */
static int jpeg_header(const source *s, const char *name, nn_image_info *info,
                       nn_error *err) {
  int64_t off = 2;
  for (;;) {
    uint8_t m[2];
    if (read_at(s, off, m, 2)) break;
    if (m[0] != 0xff)
      return nn_seterr(err, "image '%s': corrupt JPEG (bad marker at byte "
                       "%lld)", name, (long long)off);
    if (m[1] == 0xff) { /* fill byte */
      off++;
      continue;
    }
    int code = m[1];
    if (code == 0x01 || (code >= 0xd0 && code <= 0xd7)) { /* no length */
      off += 2;
      continue;
    }
    if (code == 0xd9 || code == 0xda) break; /* EOI/SOS before any frame */
    uint8_t l[2];
    if (read_at(s, off + 2, l, 2)) break;
    int seglen = be16(l);
    if (seglen < 2) break;
    if (code >= 0xc0 && code <= 0xcf && code != 0xc4 && code != 0xc8 &&
        code != 0xcc) {
      uint8_t f[6];
      if (seglen < 8 || read_at(s, off + 4, f, 6)) break;
      info->format = NN_IMAGE_JPEG;
      info->height = be16(f + 1);
      info->width = be16(f + 3);
      info->channels = f[5];
      info->bit_depth = f[0];
      if (info->width == 0 || info->height == 0 ||
          (info->channels != 1 && info->channels != 3 && info->channels != 4))
        return nn_seterr(err, "image '%s': unsupported JPEG frame (%dx%d, %d "
                         "components)", name, info->width, info->height,
                         info->channels);
      return 0;
    }
    off += 2 + seglen;
  }
  return nn_seterr(err, "image '%s': corrupt or truncated JPEG (no frame "
                   "header)", name);
}

/* Header of either format; fails on an unknown signature. */
static int parse_header(const source *s, const char *name, nn_image_info *info,
                        nn_error *err) {
  uint8_t sig[8];
  int64_t n = 8;
  if (read_at(s, 0, sig, 8)) {
    n = 3;
    if (read_at(s, 0, sig, 3)) n = 0;
  }
  switch (sniff(sig, n)) {
    case NN_IMAGE_PNG:
      return png_header(s, name, info, err);
    case NN_IMAGE_JPEG:
      return jpeg_header(s, name, info, err);
  }
  return nn_seterr(err, "image '%s': not a PNG or JPEG file", name);
}

/* Refuses declared dimensions beyond the limits. */
static int check_dims(const char *name, int64_t w, int64_t h, nn_error *err) {
  if (w > NN_IMAGE_MAX_SIDE || h > NN_IMAGE_MAX_SIDE ||
      w * h > NN_IMAGE_MAX_PIXELS)
    return nn_seterr(err, "image '%s': declared size %lldx%lld exceeds the "
                     "limit of %d pixels per side and %lld pixels "
                     "(decompression bomb?)", name, (long long)w,
                     (long long)h, NN_IMAGE_MAX_SIDE,
                     (long long)NN_IMAGE_MAX_PIXELS);
  return 0;
}

int nn_image_info_read(const char *path, nn_image_info *info, nn_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return nn_seterr(err, "image '%s': cannot open: %s", path,
                     strerror(errno));
  source s = {NULL, 0, f};
  int rc = parse_header(&s, path, info, err);
  fclose(f);
  return rc;
}

/* Reads the whole file at path into a new malloc'ed buffer. */
static int read_file(const char *path, uint8_t **buf, int64_t *len,
                     nn_error *err) {
  *buf = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return nn_seterr(err, "image '%s': cannot open: %s", path,
                     strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
    fclose(f);
    return nn_seterr(err, "image '%s': not a regular file", path);
  }
  if (st.st_size == 0 || st.st_size > MAX_FILE_BYTES) {
    fclose(f);
    return nn_seterr(err, "image '%s': %s", path,
                     st.st_size ? "file is larger than 2 GiB" : "empty file");
  }
  uint8_t *b = malloc((size_t)st.st_size);
  if (!b) {
    fclose(f);
    return nn_seterr(err, "image '%s': out of memory reading %lld bytes", path,
                     (long long)st.st_size);
  }
  size_t got = fread(b, 1, (size_t)st.st_size, f);
  int bad = ferror(f);
  fclose(f);
  if (bad || got != (size_t)st.st_size) {
    free(b);
    return nn_seterr(err, "image '%s': read error: %s", path,
                     bad ? strerror(errno) : "file changed while reading");
  }
  *buf = b;
  *len = (int64_t)got;
  return 0;
}

/* ---- Decoding to raw interleaved samples ---- */

/* A decoded image: h rows of w pixels of c interleaved samples (1 gray, 2
 * gray+alpha, 3 RGB, 4 RGBA), 8-bit or 16-bit big-endian. */
typedef struct raw {
  int w, h, c, depth;
  uint8_t *px;
} raw;

/* State of one libpng decode.  It lives in the caller's frame and is only
 * reached through a pointer across setjmp/longjmp, so its fields keep their
 * values after a longjmp. */
typedef struct png_job {
  const uint8_t *buf;
  int64_t len, pos;
  uint8_t *px;
  png_bytep *rows;
  int w, h, c, depth;
  char msg[256];
} png_job;

static void png_on_error(png_structp png, png_const_charp msg) {
  png_job *job = png_get_error_ptr(png);
  snprintf(job->msg, sizeof job->msg, "%s", msg);
  png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
  png_job *job = png_get_io_ptr(png);
  if ((int64_t)n > job->len - job->pos) png_error(png, "unexpected end of file");
  memcpy(out, job->buf + job->pos, n);
  job->pos += (int64_t)n;
}

/* The libpng calls; returns -1 (with job->msg) when libpng raised. */
static int png_decode_steps(png_structp png, png_infop info, png_job *job) {
  if (setjmp(png_jmpbuf(png))) return -1;
  png_set_read_fn(png, job, png_read_mem);
  png_set_user_limits(png, NN_IMAGE_MAX_SIDE, NN_IMAGE_MAX_SIDE);
  png_read_info(png, info);
  png_set_expand(png); /* palette -> RGB, depth < 8 -> 8, tRNS -> alpha */
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  job->w = (int)png_get_image_width(png, info);
  job->h = (int)png_get_image_height(png, info);
  job->c = png_get_channels(png, info);
  job->depth = png_get_bit_depth(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);
  if (job->c < 1 || job->c > 4 || (job->depth != 8 && job->depth != 16) ||
      rowbytes != (size_t)job->w * job->c * (job->depth / 8))
    png_error(png, "unsupported pixel layout");
  job->px = malloc(rowbytes * (size_t)job->h);
  job->rows = malloc((size_t)job->h * sizeof *job->rows);
  if (!job->px || !job->rows) png_error(png, "out of memory");
  for (int y = 0; y < job->h; y++) job->rows[y] = job->px + rowbytes * y;
  png_read_image(png, job->rows);
  png_read_end(png, NULL);
  return 0;
}

static int decode_png(const uint8_t *buf, int64_t len, const char *name,
                      raw *out, nn_error *err) {
  png_job job = {0};
  job.buf = buf;
  job.len = len;
  job.pos = 0;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job,
                                           png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
    return nn_seterr(err, "image '%s': out of memory creating a PNG decoder",
                     name);
  }
  int rc = png_decode_steps(png, info, &job);
  png_destroy_read_struct(&png, &info, NULL);
  free(job.rows);
  if (rc) {
    free(job.px);
    return nn_seterr(err, "image '%s': corrupt or truncated PNG (%s)", name,
                     job.msg);
  }
  out->w = job.w;
  out->h = job.h;
  out->c = job.c;
  out->depth = job.depth;
  out->px = job.px;
  return 0;
}

/* The DCT scale for decoding a w x h JPEG to at least th x tw: the
 * smallest scaling factor <= 1 whose scaled image covers the target. */
static tjscalingfactor pick_scale(int w, int h, int th, int tw) {
  tjscalingfactor best = {1, 1};
  int n = 0;
  tjscalingfactor *sf = tjGetScalingFactors(&n);
  for (int k = 0; sf && k < n; k++) {
    if (sf[k].num > sf[k].denom) continue;
    int sw = TJSCALED(w, sf[k]), sh = TJSCALED(h, sf[k]);
    if (sw >= tw && sh >= th &&
        (int64_t)sw * sh < (int64_t)TJSCALED(w, best) * TJSCALED(h, best))
      best = sf[k];
  }
  return best;
}

void nn_image_jpeg_draft_size(int w, int h, int th, int tw, int *sw,
                              int *sh) {
  tjscalingfactor sf = pick_scale(w, h, th, tw);
  *sw = TJSCALED(w, sf);
  *sh = TJSCALED(h, sf);
}

/* Decodes a JPEG, at a DCT scale covering th x tw when th > 0. */
static int decode_jpeg(const uint8_t *buf, int64_t len, const char *name,
                       int th, int tw, raw *out, nn_error *err) {
  tjhandle tj = tjInitDecompress();
  if (!tj)
    return nn_seterr(err, "image '%s': cannot create a JPEG decoder", name);
  int w, h, subsamp, cs;
  if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp,
                          &cs)) {
    nn_seterr(err, "image '%s': corrupt or truncated JPEG (%s)", name,
              tjGetErrorStr2(tj));
    tjDestroy(tj);
    return -1;
  }
  if (check_dims(name, w, h, err)) {
    tjDestroy(tj);
    return -1;
  }
  if (cs == TJCS_CMYK || cs == TJCS_YCCK) {
    tjDestroy(tj);
    return nn_seterr(err, "image '%s': unsupported JPEG color space (%s)",
                     name, cs == TJCS_CMYK ? "CMYK" : "YCCK");
  }
  tjscalingfactor sf = {1, 1};
  if (th > 0) sf = pick_scale(w, h, th, tw);
  int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
  int c = cs == TJCS_GRAY ? 1 : 3;
  uint8_t *px = malloc((size_t)sw * sh * c);
  if (!px) {
    tjDestroy(tj);
    return nn_seterr(err, "image '%s': out of memory decoding %dx%d pixels",
                     name, sw, sh);
  }
  if (tjDecompress2(tj, buf, (unsigned long)len, px, sw, 0, sh,
                    c == 1 ? TJPF_GRAY : TJPF_RGB, TJFLAG_STOPONWARNING)) {
    nn_seterr(err, "image '%s': corrupt or truncated JPEG (%s)", name,
              tjGetErrorStr2(tj));
    free(px);
    tjDestroy(tj);
    return -1;
  }
  tjDestroy(tj);
  out->w = sw;
  out->h = sh;
  out->c = c;
  out->depth = 8;
  out->px = px;
  return 0;
}

/* ---- Channel conversion to planar data ---- */

/* One 16-bit big-endian sample scaled to 8 bits with rounding. */
static uint8_t to8(const uint8_t *p) {
  return (uint8_t)((((uint32_t)p[0] << 8 | p[1]) * 255u + 32767u) / 65535u);
}

/* PIL's ITU-R 601-2 luma of 8-bit R, G, B. */
static uint8_t luma8(unsigned r, unsigned g, unsigned b) {
  return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

/* r's pixels as planar uint8 [dc, h, w] at dst (dc in 1, 3, 4). */
static void raw_to_u8(const raw *r, int dc, uint8_t *dst) {
  int64_t plane = (int64_t)r->w * r->h;
  int bps = r->depth / 8, sc = r->c;
  const uint8_t *p = r->px;
  if (bps == 1 && sc == dc && sc == 3) { /* the common case: RGB */
    uint8_t *d0 = dst, *d1 = dst + plane, *d2 = dst + 2 * plane;
    for (int64_t i = 0; i < plane; i++, p += 3) {
      d0[i] = p[0];
      d1[i] = p[1];
      d2[i] = p[2];
    }
    return;
  }
  for (int64_t i = 0; i < plane; i++, p += sc * bps) {
    uint8_t v[4] = {0, 0, 0, 255};
    for (int k = 0; k < sc; k++) v[k] = bps == 1 ? p[k] : to8(p + 2 * k);
    uint8_t gray = sc <= 2 ? v[0] : luma8(v[0], v[1], v[2]);
    uint8_t alpha = sc == 2 ? v[1] : sc == 4 ? v[3] : 255;
    if (dc == 1) {
      dst[i] = gray;
      continue;
    }
    dst[i] = sc <= 2 ? gray : v[0];
    dst[plane + i] = sc <= 2 ? gray : v[1];
    dst[2 * plane + i] = sc <= 2 ? gray : v[2];
    if (dc == 4) dst[3 * plane + i] = alpha;
  }
}

/* r's 16-bit pixels as planar floats v / 65535 [dc, h, w] at dst. */
static void raw16_to_f32(const raw *r, int dc, float *dst) {
  int64_t plane = (int64_t)r->w * r->h;
  int sc = r->c;
  const uint8_t *p = r->px;
  for (int64_t i = 0; i < plane; i++, p += 2 * sc) {
    float v[4] = {0.0f, 0.0f, 0.0f, 1.0f};
    for (int k = 0; k < sc; k++) v[k] = (float)be16(p + 2 * k) / 65535.0f;
    float gray = sc <= 2 ? v[0]
                         : (v[0] * 299.0f + v[1] * 587.0f + v[2] * 114.0f) /
                               1000.0f;
    float alpha = sc == 2 ? v[1] : sc == 4 ? v[3] : 1.0f;
    if (dc == 1) {
      dst[i] = gray;
      continue;
    }
    dst[i] = sc <= 2 ? gray : v[0];
    dst[plane + i] = sc <= 2 ? gray : v[1];
    dst[2 * plane + i] = sc <= 2 ? gray : v[2];
    if (dc == 4) dst[3 * plane + i] = alpha;
  }
}

/* ---- Decoding pipeline ---- */

static int check_opts(const nn_image_opts *o, nn_error *err) {
  if (o->channels != 1 && o->channels != 3 && o->channels != 4)
    return nn_seterr(err, "channels must be 1, 3 or 4, got %d", o->channels);
  if (o->size_h < 0 || o->size_w < 0 || (o->size_h == 0 && o->size_w > 0) ||
      o->size_h > NN_IMAGE_MAX_SIDE || o->size_w > NN_IMAGE_MAX_SIDE)
    return nn_seterr(err, "size must be positive and at most %d, got %d x %d",
                     NN_IMAGE_MAX_SIDE, o->size_h, o->size_w);
  return 0;
}

/* Checks the header of buf, then decodes it to raw samples; *oh, *ow get the
 * final size (the requested size, or the image's own).  JPEGs are decoded
 * at a reduced DCT scale when opts->draft and a size is requested. */
static int decode_raw(const uint8_t *buf, int64_t len, const char *name,
                      const nn_image_opts *opts, raw *r, int *oh, int *ow,
                      nn_error *err) {
  nn_image_info info;
  source s = {buf, len, NULL};
  if (parse_header(&s, name, &info, err) ||
      check_dims(name, info.width, info.height, err))
    return -1;
  *oh = info.height;
  *ow = info.width;
  if (opts->size_h > 0 &&
      nn_resize_output_size(info.height, info.width, opts->size_h,
                            opts->size_w, NN_IMAGE_MAX_SIDE, oh, ow, err))
    return -1;
  if (info.format == NN_IMAGE_PNG) return decode_png(buf, len, name, r, err);
  if (info.bit_depth != 8)
    return nn_seterr(err, "image '%s': unsupported JPEG with %d-bit samples",
                     name, info.bit_depth);
  int draft = opts->draft && opts->size_h > 0;
  return decode_jpeg(buf, len, name, draft ? *oh : 0, draft ? *ow : 0, r, err);
}

int nn_image_decode_u8(const uint8_t *buf, int64_t len, const char *name,
                       const nn_image_opts *opts, uint8_t **out, int *h,
                       int *w, nn_error *err) {
  *out = NULL;
  if (check_opts(opts, err)) return -1;
  raw r;
  int oh, ow;
  if (decode_raw(buf, len, name, opts, &r, &oh, &ow, err)) return -1;
  int c = opts->channels;
  int64_t in_bytes = (int64_t)c * r.h * r.w;
  uint8_t *planar = malloc((size_t)in_bytes);
  uint8_t *sized = NULL;
  if (!planar) goto oom;
  raw_to_u8(&r, c, planar);
  free(r.px);
  r.px = NULL;
  if (oh != r.h || ow != r.w) {
    sized = malloc((size_t)c * oh * ow);
    if (!sized) goto oom;
    if (nn_resize_u8(planar, c, r.h, r.w, sized, oh, ow, err)) {
      free(planar);
      free(sized);
      return -1;
    }
    free(planar);
    planar = sized;
  }
  *out = planar;
  *h = oh;
  *w = ow;
  return 0;
oom:
  free(r.px);
  free(planar);
  return nn_seterr(err, "image '%s': out of memory converting %dx%d pixels",
                   name, r.w, r.h);
}

/* Decodes a 16-bit PNG to floats (no rounding to 8 bits), resized to oh x
 * ow with the float resampler. */
static nn_tensor *load_f32(const char *name, raw *r, int c, int oh, int ow,
                           nn_error *err) {
  int64_t shape[3] = {c, r->h, r->w};
  nn_tensor *t = nn_tensor_empty(3, shape, err);
  if (!t) return NULL;
  raw16_to_f32(r, c, nn_data(t));
  if (oh == r->h && ow == r->w) return t;
  nn_ctx one = {.num_threads = 1};
  nn_tensor *sized = nn_resize_tensor(&one, t, oh, ow, err);
  nn_tensor_release(t);
  (void)name;
  return sized;
}

nn_tensor *nn_image_load(const char *path, const nn_image_opts *opts,
                         nn_error *err) {
  if (check_opts(opts, err)) return NULL;
  uint8_t *buf;
  int64_t len;
  if (read_file(path, &buf, &len, err)) return NULL;
  nn_image_info info;
  source s = {buf, len, NULL};
  nn_tensor *t = NULL;
  if (parse_header(&s, path, &info, err)) goto done;
  if (info.bit_depth == 16) { /* keep the 16 bits: decode to floats */
    raw r;
    int oh, ow;
    if (decode_raw(buf, len, path, opts, &r, &oh, &ow, err)) goto done;
    if (r.depth == 16) {
      t = load_f32(path, &r, opts->channels, oh, ow, err);
      free(r.px);
      goto done;
    }
    free(r.px); /* cannot happen: libpng keeps 16 bits */
  }
  uint8_t *px;
  int h, w;
  if (nn_image_decode_u8(buf, len, path, opts, &px, &h, &w, err)) goto done;
  int64_t shape[3] = {opts->channels, h, w};
  t = nn_tensor_empty(3, shape, err);
  if (t) {
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;
    float *d = nn_data(t);
    int64_t n = shape[0] * h * w;
    for (int64_t i = 0; i < n; i++) d[i] = lut[px[i]];
  }
  free(px);
done:
  free(buf);
  return t;
}

/* ---- Decoding into stores ---- */

int nn_image_load_into(nn_imagestore *s, int64_t i, const char *path,
                       int draft, nn_error *err) {
  if (i < 0 || i >= s->n)
    return nn_seterr(err, "slot %lld is out of range 0..%lld", (long long)i,
                     (long long)s->n - 1);
  if (s->c != 1 && s->c != 3 && s->c != 4)
    return nn_seterr(err, "a store for decoded images needs 1, 3 or 4 "
                     "channels, this one has %d", s->c);
  uint8_t *buf;
  int64_t len;
  if (read_file(path, &buf, &len, err)) return -1;
  nn_image_opts o = {.channels = s->c, .size_h = s->h, .size_w = s->w,
                     .draft = draft};
  uint8_t *px;
  int h, w;
  int rc = nn_image_decode_u8(buf, len, path, &o, &px, &h, &w, err);
  free(buf);
  if (rc) return -1;
  memcpy(nn_imagestore_image(s, i), px, (size_t)s->c * s->h * s->w);
  free(px);
  return 0;
}

int nn_image_load_batch_into(nn_ctx *ctx, nn_imagestore *s,
                             const int64_t *slots, const char *const *paths,
                             int64_t n, int draft, nn_error *err) {
  for (int64_t k = 0; k < n; k++)
    if (slots[k] < 0 || slots[k] >= s->n)
      return nn_seterr(err, "slot %lld (at position %lld) is out of range "
                       "0..%lld", (long long)slots[k], (long long)k,
                       (long long)s->n - 1);
  int nth = ctx->num_threads;
  if (n < nth) nth = n > 0 ? (int)n : 1;
  /* Per thread: the first failing position it met and its error.  Dynamic
   * scheduling hands positions out in increasing order, so each thread's
   * first failure is its lowest, and the minimum over threads is the first
   * failing file overall. */
  int64_t *first = malloc((size_t)nth * sizeof *first);
  nn_error *errs = malloc((size_t)nth * sizeof *errs);
  if (!first || !errs) {
    free(first);
    free(errs);
    return nn_seterr(err, "out of memory");
  }
  for (int t = 0; t < nth; t++) first[t] = -1;
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1) if (nth > 1)
  for (int64_t k = 0; k < n; k++) {
    int t = 0;
#ifdef _OPENMP
    t = omp_get_thread_num();
#endif
    nn_error e;
    if (nn_image_load_into(s, slots[k], paths[k], draft, &e) &&
        (first[t] < 0 || k < first[t])) {
      first[t] = k;
      errs[t] = e;
    }
  }
  int best = -1;
  for (int t = 0; t < nth; t++)
    if (first[t] >= 0 && (best < 0 || first[t] < first[best])) best = t;
  int rc = 0;
  if (best >= 0) {
    if (err) *err = errs[best];
    rc = -1;
  }
  free(first);
  free(errs);
  return rc;
}

nn_imagestore *nn_image_store_new(int64_t n, int c, int h, int w,
                                  const char *mmap_path, nn_error *err) {
  if (n < 0 || n > NN_IMAGESTORE_MAX_COUNT || c < 1 ||
      c > NN_IMAGESTORE_MAX_CHANNELS || h < 1 || h > NN_IMAGESTORE_MAX_SIDE ||
      w < 1 || w > NN_IMAGESTORE_MAX_SIDE ||
      n * c * (int64_t)h * w > NN_IMAGESTORE_MAX_BYTES) {
    /* nn_imagestore_wrap words the error. */
    uint8_t dummy;
    nn_imagestore *s = nn_imagestore_wrap(n, c, h, w, &dummy,
                                          NN_PIXELS_BORROWED, err);
    nn_imagestore_release(s);
    return NULL;
  }
  int64_t bytes = n * c * (int64_t)h * w;
  if (!mmap_path) {
    /* calloc: pages are zeroed lazily, so a large cache costs nothing until
     * it is filled. */
    uint8_t *px = calloc((size_t)(bytes > 0 ? bytes : 1), 1);
    if (!px) {
      nn_seterr(err, "out of memory allocating %lld bytes for %lld images",
                (long long)bytes, (long long)n);
      return NULL;
    }
    nn_imagestore *s = nn_imagestore_wrap(n, c, h, w, px, NN_PIXELS_MALLOC,
                                          err);
    if (!s) free(px);
    return s;
  }
  int fd = open(mmap_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    nn_seterr(err, "cannot create the image cache '%s': %s", mmap_path,
              strerror(errno));
    return NULL;
  }
  uint8_t *px = NULL;
  if (ftruncate(fd, (off_t)bytes)) {
    nn_seterr(err, "cannot size the image cache '%s' to %lld bytes: %s",
              mmap_path, (long long)bytes, strerror(errno));
    close(fd);
    return NULL;
  }
  if (bytes > 0) {
    void *m = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                   0);
    if (m == MAP_FAILED) {
      nn_seterr(err, "cannot map the image cache '%s' (%lld bytes): %s",
                mmap_path, (long long)bytes, strerror(errno));
      close(fd);
      return NULL;
    }
    px = m;
  }
  close(fd); /* the mapping stays valid */
  nn_imagestore *s = nn_imagestore_wrap(n, c, h, w, px, NN_PIXELS_MMAP, err);
  if (!s && px) munmap(px, (size_t)bytes);
  return s;
}

/* ---- Encoding ---- */

/* Checks that t is an image tensor and reads its channels, height, width. */
static int image_shape(const nn_tensor *t, int jpeg, int *c, int *h, int *w,
                       nn_error *err) {
  char s[128];
  int ok = 0;
  if (t->ndim == 2 || t->ndim == 3) {
    int64_t cc = t->ndim == 3 ? t->shape[0] : 1;
    int64_t hh = t->shape[t->ndim - 2], ww = t->shape[t->ndim - 1];
    ok = (cc == 1 || cc == 3 || (cc == 4 && !jpeg)) && hh >= 1 &&
         hh <= NN_IMAGE_MAX_SIDE && ww >= 1 && ww <= NN_IMAGE_MAX_SIDE;
    *c = (int)cc;
    *h = (int)hh;
    *w = (int)ww;
  }
  if (ok) return 0;
  nn_tensor_shape_str(t, s, sizeof s);
  return nn_seterr(err, "expected an image tensor of shape [C, H, W] with C "
                   "in %s, or [H, W] (H and W in 1..%d), got %s",
                   jpeg ? "1, 3" : "1, 3, 4", NN_IMAGE_MAX_SIDE, s);
}

/* t's values as interleaved 8-bit samples (new buffer), round(clamp(v)*255). */
static uint8_t *to_interleaved(const nn_tensor *t, int c, int h, int w) {
  int64_t plane = (int64_t)h * w;
  uint8_t *px = malloc((size_t)(c * plane));
  if (!px) return NULL;
  const float *d = nn_data(t);
  int contiguous = nn_tensor_is_contiguous(t);
  for (int ch = 0; ch < c; ch++)
    for (int64_t i = 0; i < plane; i++) {
      int64_t e = ch * plane + i;
      float v = d[contiguous ? e : nn_tensor_elem_offset(t, e)];
      v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; /* NaN -> 0 */
      px[i * c + ch] = (uint8_t)(v * 255.0f + 0.5f);
    }
  return px;
}

static int png_write_steps(png_structp png, png_infop info, FILE *f,
                           const uint8_t *px, int c, int h, int w) {
  if (setjmp(png_jmpbuf(png))) return -1;
  static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, 0, PNG_COLOR_TYPE_RGB,
                               PNG_COLOR_TYPE_RGB_ALPHA};
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, types[c],
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < h; y++)
    png_write_row(png, (png_const_bytep)(px + (int64_t)y * w * c));
  png_write_end(png, NULL);
  return 0;
}

/* Error state of a libpng write, reached through the error pointer. */
typedef struct png_wjob {
  char msg[256];
} png_wjob;

static void png_on_write_error(png_structp png, png_const_charp msg) {
  png_wjob *job = png_get_error_ptr(png);
  snprintf(job->msg, sizeof job->msg, "%s", msg);
  png_longjmp(png, 1);
}

int nn_image_save_png(const char *path, const nn_tensor *t, nn_error *err) {
  int c, h, w;
  if (image_shape(t, 0, &c, &h, &w, err)) return -1;
  uint8_t *px = to_interleaved(t, c, h, w);
  if (!px) return nn_seterr(err, "image '%s': out of memory", path);
  FILE *f = fopen(path, "wb");
  if (!f) {
    free(px);
    return nn_seterr(err, "image '%s': cannot create: %s", path,
                     strerror(errno));
  }
  png_wjob job = {{0}};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &job,
                                            png_on_write_error,
                                            png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  int rc = -1;
  if (!info)
    snprintf(job.msg, sizeof job.msg, "out of memory creating a PNG encoder");
  else
    rc = png_write_steps(png, info, f, px, c, h, w);
  if (png) png_destroy_write_struct(&png, info ? &info : NULL);
  free(px);
  if (fclose(f) && rc == 0) {
    rc = -1;
    snprintf(job.msg, sizeof job.msg, "%s", strerror(errno));
  }
  if (rc) {
    remove(path);
    return nn_seterr(err, "image '%s': cannot write PNG: %s", path, job.msg);
  }
  return 0;
}

int nn_image_save_jpeg(const char *path, const nn_tensor *t, int quality,
                       nn_error *err) {
  int c, h, w;
  if (image_shape(t, 1, &c, &h, &w, err)) return -1;
  if (quality < 1 || quality > 100)
    return nn_seterr(err, "quality must be in 1..100, got %d", quality);
  uint8_t *px = to_interleaved(t, c, h, w);
  tjhandle tj = px ? tjInitCompress() : NULL;
  if (!tj) {
    free(px);
    return nn_seterr(err, "image '%s': out of memory", path);
  }
  unsigned char *jpg = NULL;
  unsigned long size = 0;
  int rc = tjCompress2(tj, px, w, 0, h, c == 1 ? TJPF_GRAY : TJPF_RGB, &jpg,
                       &size, c == 1 ? TJSAMP_GRAY : TJSAMP_420, quality, 0);
  free(px);
  if (rc) {
    nn_seterr(err, "image '%s': cannot encode JPEG: %s", path,
              tjGetErrorStr2(tj));
    tjDestroy(tj);
    return -1;
  }
  tjDestroy(tj);
  FILE *f = fopen(path, "wb");
  if (!f) {
    tjFree(jpg);
    return nn_seterr(err, "image '%s': cannot create: %s", path,
                     strerror(errno));
  }
  size_t put = fwrite(jpg, 1, size, f);
  tjFree(jpg);
  if (fclose(f) || put != size) {
    int e = errno;
    remove(path);
    return nn_seterr(err, "image '%s': cannot write JPEG: %s", path,
                     strerror(e));
  }
  return 0;
}
