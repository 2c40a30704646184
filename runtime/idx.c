/* idx.c - IDX image and label files through zlib (see idx.h). */
#include "idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Bytes asked of gzread at a time, so the count read so far is known even
 * when the stream ends early or is corrupt. */
#define CHUNK (1 << 20)

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

/* Opens path for reading; NULL with "<path>: cannot open: <reason>". */
static gzFile open_file(const char *path, nn_error *err) {
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f)
    nn_seterr(err, "%s: cannot open: %s", path,
              errno ? strerror(errno) : "out of memory");
  return f;
}

/* Reads up to n bytes into buf; returns the count read (stopping early at
 * the end of the data), or -1 with an error naming path and `what` when
 * the stream is corrupt. */
static int64_t read_bytes(gzFile f, const char *path, const char *what,
                          unsigned char *buf, int64_t n, nn_error *err) {
  int64_t got = 0;
  while (got < n) {
    int64_t want = n - got < CHUNK ? n - got : CHUNK;
    int r = gzread(f, buf + got, (unsigned)want);
    if (r < 0) {
      int code;
      const char *msg = gzerror(f, &code);
      return nn_seterr(err, "%s: corrupt data after %lld bytes of %s: %s",
                       path, (long long)got, what, msg);
    }
    if (r == 0) break;
    got += r;
  }
  return got;
}

/* Reads exactly n bytes of `what`, then checks that the file ends there.
 * 0 on success; -1 with "<path>: truncated: expected N bytes of W, got M"
 * or a trailing-data error. */
static int read_exact(gzFile f, const char *path, const char *what,
                      unsigned char *buf, int64_t n, nn_error *err) {
  int64_t got = read_bytes(f, path, what, buf, n, err);
  if (got < 0) return -1;
  if (got < n)
    return nn_seterr(err, "%s: truncated: expected %lld bytes of %s, got %lld",
                     path, (long long)n, what, (long long)got);
  unsigned char extra;
  int r = gzread(f, &extra, 1);
  if (r < 0) {
    int code;
    return nn_seterr(err, "%s: corrupt data after the %s: %s", path, what,
                     gzerror(f, &code));
  }
  if (r > 0)
    return nn_seterr(err, "%s: trailing data after the %lld bytes of %s "
                     "the header declares", path, (long long)n, what);
  return 0;
}

/* Reads and checks the images header: *n, *rows, *cols. */
static int read_images_header(gzFile f, const char *path, int64_t *n,
                              int *rows, int *cols, nn_error *err) {
  unsigned char h[16];
  int64_t got = read_bytes(f, path, "header", h, 16, err);
  if (got < 0) return -1;
  if (got >= 4 && be32(h) != NN_IDX_IMAGES_MAGIC)
    return nn_seterr(err, "%s: not an IDX images file: magic number 0x%08x, "
                     "expected 0x%08x", path, be32(h), NN_IDX_IMAGES_MAGIC);
  if (got < 16)
    return nn_seterr(err, "%s: truncated: expected a 16-byte IDX images "
                     "header, got %lld bytes", path, (long long)got);
  uint32_t cnt = be32(h + 4), r = be32(h + 8), c = be32(h + 12);
  if ((int64_t)cnt > NN_IDX_MAX_COUNT)
    return nn_seterr(err, "%s: declared image count %lu exceeds the limit "
                     "of %lld", path, (unsigned long)cnt,
                     (long long)NN_IDX_MAX_COUNT);
  if (r < 1 || r > NN_IDX_MAX_SIDE || c < 1 || c > NN_IDX_MAX_SIDE)
    return nn_seterr(err, "%s: declared image size %lux%lu is out of range "
                     "1..%d", path, (unsigned long)r, (unsigned long)c,
                     NN_IDX_MAX_SIDE);
  *n = cnt;
  *rows = (int)r;
  *cols = (int)c;
  return 0;
}

/* Reads and checks the labels header: *n. */
static int read_labels_header(gzFile f, const char *path, int64_t *n,
                              nn_error *err) {
  unsigned char h[8];
  int64_t got = read_bytes(f, path, "header", h, 8, err);
  if (got < 0) return -1;
  if (got >= 4 && be32(h) != NN_IDX_LABELS_MAGIC)
    return nn_seterr(err, "%s: not an IDX labels file: magic number 0x%08x, "
                     "expected 0x%08x", path, be32(h), NN_IDX_LABELS_MAGIC);
  if (got < 8)
    return nn_seterr(err, "%s: truncated: expected an 8-byte IDX labels "
                     "header, got %lld bytes", path, (long long)got);
  uint32_t cnt = be32(h + 4);
  if ((int64_t)cnt > NN_IDX_MAX_COUNT)
    return nn_seterr(err, "%s: declared label count %lu exceeds the limit "
                     "of %lld", path, (unsigned long)cnt,
                     (long long)NN_IDX_MAX_COUNT);
  *n = cnt;
  return 0;
}

/* Reads the n labels into s->labels, checking their range. */
static int read_labels(gzFile f, const char *path, nn_imagestore *s,
                       nn_error *err) {
  unsigned char *bytes = malloc((size_t)(s->n > 0 ? s->n : 1));
  if (!bytes)
    return nn_seterr(err, "%s: out of memory reading %lld labels", path,
                     (long long)s->n);
  int rc = read_exact(f, path, "labels", bytes, s->n, err);
  for (int64_t k = 0; rc == 0 && k < s->n; k++) {
    if (bytes[k] > NN_IDX_MAX_LABEL)
      rc = nn_seterr(err, "%s: label %lld (0-based index %lld) is %u, "
                     "outside 0..%d", path, (long long)k + 1, (long long)k,
                     (unsigned)bytes[k], NN_IDX_MAX_LABEL);
    else
      s->labels[k] = bytes[k];
  }
  free(bytes);
  return rc;
}

nn_imagestore *nn_idx_load(const char *images_path, const char *labels_path,
                           nn_error *err) {
  nn_imagestore *s = NULL;
  gzFile fl = NULL;
  gzFile fi = open_file(images_path, err);
  if (!fi) return NULL;
  int64_t n = 0, nl = 0;
  int rows = 0, cols = 0;
  if (read_images_header(fi, images_path, &n, &rows, &cols, err)) goto fail;
  fl = open_file(labels_path, err);
  if (!fl) goto fail;
  if (read_labels_header(fl, labels_path, &nl, err)) goto fail;
  if (nl != n) {
    nn_seterr(err, "%s: holds %lld labels but %s holds %lld images",
              labels_path, (long long)nl, images_path, (long long)n);
    goto fail;
  }
  s = nn_imagestore_new(n, 1, rows, cols, err);
  if (!s) {
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
    nn_seterr(err, "%s: %s", images_path, msg);
    goto fail;
  }
  if (read_exact(fi, images_path, "pixels", s->pixels, s->pixel_bytes, err))
    goto fail;
  if (read_labels(fl, labels_path, s, err)) goto fail;
  gzclose(fi);
  gzclose(fl);
  return s;
fail:
  nn_imagestore_release(s);
  gzclose(fi);
  if (fl) gzclose(fl);
  return NULL;
}
