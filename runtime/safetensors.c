/*
 * safetensors.c - the safetensors reader (validate the header completely,
 * then read and convert each tensor) and the atomic writer.  See
 * safetensors.h for the format and the guarantees.
 */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

/* ---- Dtypes: size and conversion to float32 ---- */

typedef void (*convert_fn)(const unsigned char *src, float *dst, size_t n);

static uint16_t rd16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const unsigned char *p) {
  return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}
static float bits_to_float(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

/* IEEE binary16 to binary32 (exact: every half is a float). */
static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  if (exp == 0) {
    float f = (float)man * 5.9604644775390625e-8f; /* man * 2^-24 */
    return sign ? -f : f;
  }
  if (exp == 31) return bits_to_float(sign | 0x7F800000u | (man << 13));
  return bits_to_float(sign | ((exp + 112) << 23) | (man << 13));
}

static void conv_f32(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = bits_to_float(rd32(s + 4 * i));
}
static void conv_f16(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = half_to_float(rd16(s + 2 * i));
}
static void conv_bf16(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++)
    d[i] = bits_to_float((uint32_t)rd16(s + 2 * i) << 16);
}
static void conv_f64(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint64_t b = rd64(s + 8 * i);
    double x;
    memcpy(&x, &b, sizeof x);
    d[i] = (float)x;
  }
}
static void conv_i64(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = (float)(int64_t)rd64(s + 8 * i);
}
static void conv_u64(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = (float)rd64(s + 8 * i);
}
static void conv_i32(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = (float)(int32_t)rd32(s + 4 * i);
}
static void conv_u32(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = (float)rd32(s + 4 * i);
}
static void conv_i16(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = (float)(int16_t)rd16(s + 2 * i);
}
static void conv_u16(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = (float)rd16(s + 2 * i);
}
static void conv_i8(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = (float)(int8_t)s[i];
}
static void conv_u8(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = (float)s[i];
}
static void conv_bool(const unsigned char *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = s[i] ? 1.0f : 0.0f;
}

typedef struct dtype_info {
  const char *name;
  size_t size;
  convert_fn convert;
} dtype_info;

static const dtype_info dtypes[] = {
    {"F32", 4, conv_f32},  {"F16", 2, conv_f16},   {"BF16", 2, conv_bf16},
    {"F64", 8, conv_f64},  {"I64", 8, conv_i64},   {"I32", 4, conv_i32},
    {"I16", 2, conv_i16},  {"I8", 1, conv_i8},     {"U8", 1, conv_u8},
    {"U16", 2, conv_u16},  {"U32", 4, conv_u32},   {"U64", 8, conv_u64},
    {"BOOL", 1, conv_bool}, {NULL, 0, NULL}};

static const dtype_info *find_dtype(const char *name) {
  for (const dtype_info *d = dtypes; d->name; d++)
    if (strcmp(d->name, name) == 0) return d;
  return NULL;
}

static int host_is_little_endian(void) {
  const uint16_t one = 1;
  return *(const unsigned char *)&one == 1;
}

/* ---- Low-level I/O ---- */

/* Reads exactly n bytes at offset off; -1 with errno (0 at end of file). */
static int pread_full(int fd, void *buf, size_t n, uint64_t off) {
  unsigned char *p = buf;
  while (n > 0) {
    size_t chunk = n > ((size_t)1 << 30) ? (size_t)1 << 30 : n;
    ssize_t k = pread(fd, p, chunk, (off_t)off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (k == 0) errno = 0;
      return -1;
    }
    p += k;
    off += (uint64_t)k;
    n -= (size_t)k;
  }
  return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
  const unsigned char *p = buf;
  while (n > 0) {
    size_t chunk = n > ((size_t)1 << 30) ? (size_t)1 << 30 : n;
    ssize_t k = write(fd, p, chunk);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (k == 0) errno = EIO;
      return -1;
    }
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

static const char *io_reason(int e) {
  return e ? strerror(e) : "unexpected end of file";
}

/* ---- Reader ---- */

void nn_safetensors_free(nn_safetensors *st) {
  if (!st) return;
  for (int64_t i = 0; i < st->count; i++) {
    free(st->entries[i].name);
    nn_tensor_release(st->entries[i].tensor);
  }
  for (int64_t i = 0; i < st->meta_count; i++) {
    free(st->meta_keys[i]);
    free(st->meta_values[i]);
  }
  free(st->entries);
  free(st->meta_keys);
  free(st->meta_values);
  free(st->meta_value_lens);
  memset(st, 0, sizeof *st);
}

static char *dup_bytes(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

/* Fills the metadata of st from the "__metadata__" value m. */
static int read_metadata(const char *path, const nn_json *m, nn_safetensors *st,
                         nn_error *err) {
  if (m->type == NN_JSON_NULL) return 0;
  if (m->type != NN_JSON_OBJECT)
    return nn_seterr(err, "%s: __metadata__ must be an object of strings, "
                          "got %s", path, nn_json_typename(m->type));
  int64_t dup = nn_json_find_duplicate(m);
  if (dup == -2) return nn_seterr(err, "%s: out of memory", path);
  if (dup >= 0)
    return nn_seterr(err, "%s: duplicate key '%s' in __metadata__", path,
                     m->members[dup].key);
  size_t n = m->len ? m->len : 1;
  st->meta_keys = calloc(n, sizeof *st->meta_keys);
  st->meta_values = calloc(n, sizeof *st->meta_values);
  st->meta_value_lens = calloc(n, sizeof *st->meta_value_lens);
  if (!st->meta_keys || !st->meta_values || !st->meta_value_lens)
    return nn_seterr(err, "%s: out of memory", path);
  for (size_t i = 0; i < m->len; i++) {
    const nn_json_member *kv = &m->members[i];
    if (kv->value.type != NN_JSON_STRING)
      return nn_seterr(err, "%s: __metadata__ value of '%s' must be a string, "
                            "got %s", path, kv->key,
                       nn_json_typename(kv->value.type));
    st->meta_keys[i] = dup_bytes(kv->key, kv->key_len);
    st->meta_values[i] = dup_bytes(kv->value.str, kv->value.len);
    st->meta_value_lens[i] = kv->value.len;
    st->meta_count++;
    if (!st->meta_keys[i] || !st->meta_values[i])
      return nn_seterr(err, "%s: out of memory", path);
  }
  return 0;
}

/* Fills entry e from the header value v of tensor name. */
static int read_entry(const char *path, const char *name, const nn_json *v,
                      nn_st_entry *e, nn_error *err) {
  if (v->type != NN_JSON_OBJECT)
    return nn_seterr(err, "%s: header entry of tensor '%s' must be an object, "
                          "got %s", path, name, nn_json_typename(v->type));
  const nn_json *dt = nn_json_get(v, "dtype");
  const nn_json *sh = nn_json_get(v, "shape");
  const nn_json *off = nn_json_get(v, "data_offsets");
  if (!dt || !sh || !off)
    return nn_seterr(err, "%s: header entry of tensor '%s' lacks '%s'", path,
                     name, !dt ? "dtype" : !sh ? "shape" : "data_offsets");
  if (dt->type != NN_JSON_STRING)
    return nn_seterr(err, "%s: dtype of tensor '%s' must be a string, got %s",
                     path, name, nn_json_typename(dt->type));
  const dtype_info *d = find_dtype(dt->str);
  if (!d || strlen(dt->str) != dt->len)
    return nn_seterr(err, "%s: tensor '%s' has unsupported dtype '%.32s' "
                          "(supported: F32, F16, BF16, F64, I64, I32, I16, "
                          "I8, U8, U16, U32, U64, BOOL)", path, name, dt->str);
  strcpy(e->dtype, d->name);

  if (sh->type != NN_JSON_ARRAY)
    return nn_seterr(err, "%s: shape of tensor '%s' must be an array, got %s",
                     path, name, nn_json_typename(sh->type));
  if (sh->len > NN_MAX_DIMS)
    return nn_seterr(err, "%s: tensor '%s' has %zu dimensions, at most %d "
                          "are supported", path, name, sh->len, NN_MAX_DIMS);
  int zero = 0;
  for (size_t i = 0; i < sh->len; i++) {
    uint64_t s;
    if (nn_json_to_u64(&sh->items[i], &s) < 0)
      return nn_seterr(err, "%s: shape of tensor '%s' must hold non-negative "
                            "integers (entry %zu is %s)", path, name, i,
                       sh->items[i].type == NN_JSON_NUMBER
                           ? sh->items[i].str
                           : nn_json_typename(sh->items[i].type));
    if (s > (uint64_t)NN_MAX_NUMEL)
      return nn_seterr(err, "%s: tensor '%s' is too large (size %llu in "
                            "dimension %zu)", path, name,
                       (unsigned long long)s, i);
    e->shape[i] = (int64_t)s;
    if (s == 0) zero = 1;
  }
  e->ndim = (int)sh->len;
  uint64_t numel = zero ? 0 : 1;
  for (int i = 0; !zero && i < e->ndim; i++) {
    uint64_t s = (uint64_t)e->shape[i];
    if (numel > (uint64_t)NN_MAX_NUMEL / s)
      return nn_seterr(err, "%s: tensor '%s' is too large (more than 2^36 "
                            "elements)", path, name);
    numel *= s;
  }

  if (off->type != NN_JSON_ARRAY || off->len != 2 ||
      nn_json_to_u64(&off->items[0], &e->begin) < 0 ||
      nn_json_to_u64(&off->items[1], &e->end) < 0)
    return nn_seterr(err, "%s: data_offsets of tensor '%s' must be two "
                          "non-negative integers [begin, end]", path, name);
  if (e->end < e->begin)
    return nn_seterr(err, "%s: data_offsets [%llu, %llu] of tensor '%s' end "
                          "before they begin", path,
                     (unsigned long long)e->begin,
                     (unsigned long long)e->end, name);
  uint64_t want = numel * d->size;
  if (e->end - e->begin != want) {
    char s[128];
    nn_shape_str(e->ndim, e->shape, s, sizeof s);
    return nn_seterr(err, "%s: tensor '%s' of shape %s and dtype %s needs "
                          "%llu bytes, but its data_offsets [%llu, %llu] "
                          "span %llu", path, name, s, d->name,
                     (unsigned long long)want, (unsigned long long)e->begin,
                     (unsigned long long)e->end,
                     (unsigned long long)(e->end - e->begin));
  }
  return 0;
}

typedef struct span {
  uint64_t begin, end;
  int64_t idx;
} span;

static int cmp_span(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Checks that the entries tile [0, data_len) exactly; fills order with the
 * entry indices sorted by offset. */
static int check_coverage(const char *path, const nn_safetensors *st,
                          int64_t *order, nn_error *err) {
  const nn_st_entry *e = st->entries;
  for (int64_t i = 0; i < st->count; i++)
    if (e[i].end > st->data_len)
      return nn_seterr(err, "%s: data_offsets [%llu, %llu] of tensor '%s' "
                            "are out of range (the data buffer holds %llu "
                            "bytes)", path, (unsigned long long)e[i].begin,
                       (unsigned long long)e[i].end, e[i].name,
                       (unsigned long long)st->data_len);
  span *sp = malloc((size_t)(st->count ? st->count : 1) * sizeof *sp);
  if (!sp) return nn_seterr(err, "%s: out of memory", path);
  for (int64_t i = 0; i < st->count; i++)
    sp[i] = (span){e[i].begin, e[i].end, i};
  qsort(sp, (size_t)st->count, sizeof *sp, cmp_span);
  uint64_t pos = 0;
  int64_t prev = -1;
  for (int64_t i = 0; i < st->count; i++) {
    const nn_st_entry *x = &e[sp[i].idx];
    if (x->begin < pos) {
      nn_seterr(err, "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] "
                     "overlap in the data buffer", path, e[prev].name,
                (unsigned long long)e[prev].begin,
                (unsigned long long)e[prev].end, x->name,
                (unsigned long long)x->begin, (unsigned long long)x->end);
      free(sp);
      return -1;
    }
    if (x->begin > pos) {
      nn_seterr(err, "%s: bytes [%llu, %llu] of the data buffer belong to no "
                     "tensor", path, (unsigned long long)pos,
                (unsigned long long)x->begin);
      free(sp);
      return -1;
    }
    pos = x->end;
    order[i] = sp[i].idx;
    if (x->end > x->begin || prev < 0) prev = sp[i].idx;
  }
  free(sp);
  if (pos != st->data_len)
    return nn_seterr(err, "%s: bytes [%llu, %llu] of the data buffer belong "
                          "to no tensor", path, (unsigned long long)pos,
                     (unsigned long long)st->data_len);
  return 0;
}

/* Reads the length prefix and the header, and validates everything. */
static int read_header(int fd, const char *path, nn_safetensors *st,
                       int64_t **order_out, nn_error *err) {
  struct stat sb;
  if (fstat(fd, &sb) < 0)
    return nn_seterr(err, "%s: %s", path, strerror(errno));
  if (!S_ISREG(sb.st_mode))
    return nn_seterr(err, "%s: not a regular file", path);
  uint64_t fsize = (uint64_t)sb.st_size;
  unsigned char lenbuf[8];
  if (fsize < 8)
    return nn_seterr(err, "%s: file of %llu bytes is too short for a "
                          "safetensors header (8-byte length expected)",
                     path, (unsigned long long)fsize);
  if (pread_full(fd, lenbuf, 8, 0) < 0)
    return nn_seterr(err, "%s: cannot read: %s", path, io_reason(errno));
  uint64_t n = rd64(lenbuf);
  if (n > fsize - 8)
    return nn_seterr(err, "%s: header length %llu exceeds the file size %llu",
                     path, (unsigned long long)n, (unsigned long long)fsize);
  if (n > NN_ST_MAX_HEADER)
    return nn_seterr(err, "%s: header length %llu is not plausible (more "
                          "than %llu bytes): not a safetensors file?", path,
                     (unsigned long long)n,
                     (unsigned long long)NN_ST_MAX_HEADER);
  st->header_len = n;
  st->data_len = fsize - 8 - n;

  char *text = malloc(n ? n : 1);
  if (!text) return nn_seterr(err, "%s: out of memory", path);
  if (pread_full(fd, text, n, 8) < 0) {
    int e = errno;
    free(text);
    return nn_seterr(err, "%s: cannot read the header: %s", path,
                     io_reason(e));
  }
  nn_json h;
  nn_error jerr;
  int rc = nn_json_parse(text, n, 0, &h, &jerr);
  free(text);
  if (rc < 0)
    return nn_seterr(err, "%s: invalid JSON header: %s", path, jerr.msg);
  if (h.type != NN_JSON_OBJECT) {
    nn_seterr(err, "%s: the header must be a JSON object, got %s", path,
              nn_json_typename(h.type));
    nn_json_free(&h);
    return -1;
  }
  int64_t dup = nn_json_find_duplicate(&h);
  if (dup < 0 && dup != -1) {
    nn_json_free(&h);
    return nn_seterr(err, "%s: out of memory", path);
  }
  if (dup >= 0) {
    nn_seterr(err, "%s: duplicate tensor name '%s' in the header", path,
              h.members[dup].key);
    nn_json_free(&h);
    return -1;
  }
  rc = 0;
  st->entries = calloc(h.len ? h.len : 1, sizeof *st->entries);
  if (!st->entries) rc = nn_seterr(err, "%s: out of memory", path);
  for (size_t i = 0; rc == 0 && i < h.len; i++) {
    const nn_json_member *m = &h.members[i];
    if (strlen(m->key) != m->key_len) {
      rc = nn_seterr(err, "%s: a key of the header contains a NUL character",
                     path);
    } else if (strcmp(m->key, "__metadata__") == 0) {
      rc = read_metadata(path, &m->value, st, err);
    } else {
      nn_st_entry *e = &st->entries[st->count];
      e->name = dup_bytes(m->key, m->key_len);
      st->count++;
      rc = e->name ? read_entry(path, e->name, &m->value, e, err)
                   : nn_seterr(err, "%s: out of memory", path);
    }
  }
  nn_json_free(&h);
  if (rc < 0) return -1;
  int64_t *order = malloc((size_t)(st->count ? st->count : 1) * sizeof *order);
  if (!order) return nn_seterr(err, "%s: out of memory", path);
  if (check_coverage(path, st, order, err) < 0) {
    free(order);
    return -1;
  }
  if (order_out)
    *order_out = order;
  else
    free(order);
  return 0;
}

int nn_safetensors_inspect(const char *path, nn_safetensors *st,
                           nn_error *err) {
  memset(st, 0, sizeof *st);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return nn_seterr(err, "%s: %s", path, strerror(errno));
  int rc = read_header(fd, path, st, NULL, err);
  close(fd);
  if (rc < 0) nn_safetensors_free(st);
  return rc;
}

/* Reads entry e's bytes (at file offset base + e->begin) into its tensor. */
static int read_tensor(int fd, const char *path, uint64_t base,
                       nn_st_entry *e, unsigned char *chunk, size_t chunk_len,
                       nn_error *err) {
  const dtype_info *d = find_dtype(e->dtype);
  float *dst = nn_data(e->tensor);
  uint64_t nbytes = e->end - e->begin;
  if (d->convert == conv_f32 && host_is_little_endian()) {
    if (pread_full(fd, dst, (size_t)nbytes, base + e->begin) < 0)
      return nn_seterr(err, "%s: cannot read tensor '%s': %s", path, e->name,
                       io_reason(errno));
    return 0;
  }
  size_t per = chunk_len / d->size;
  uint64_t done = 0, n = nbytes / d->size;
  while (done < n) {
    size_t k = n - done < per ? (size_t)(n - done) : per;
    if (pread_full(fd, chunk, k * d->size, base + e->begin + done * d->size) < 0)
      return nn_seterr(err, "%s: cannot read tensor '%s': %s", path, e->name,
                       io_reason(errno));
    d->convert(chunk, dst + done, k);
    done += k;
  }
  return 0;
}

int nn_safetensors_load(const char *path, nn_safetensors *st, nn_error *err) {
  memset(st, 0, sizeof *st);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return nn_seterr(err, "%s: %s", path, strerror(errno));
  int64_t *order = NULL;
  int rc = read_header(fd, path, st, &order, err);
  for (int64_t i = 0; rc == 0 && i < st->count; i++) {
    nn_st_entry *e = &st->entries[i];
    nn_error terr;
    e->tensor = nn_tensor_empty(e->ndim, e->shape, &terr);
    if (!e->tensor)
      rc = nn_seterr(err, "%s: tensor '%s': %s", path, e->name, terr.msg);
  }
  size_t chunk_len = (size_t)1 << 16;
  unsigned char *chunk = rc == 0 ? malloc(chunk_len) : NULL;
  if (rc == 0 && !chunk) rc = nn_seterr(err, "%s: out of memory", path);
  /* In file order, so the file is read front to back. */
  for (int64_t i = 0; rc == 0 && i < st->count; i++)
    rc = read_tensor(fd, path, 8 + st->header_len, &st->entries[order[i]],
                     chunk, chunk_len, err);
  free(chunk);
  free(order);
  close(fd);
  if (rc < 0) nn_safetensors_free(st);
  return rc;
}

/* ---- Writer ---- */

typedef struct named {
  const char *name;
  int64_t idx;
} named;

static int cmp_named(const void *a, const void *b) {
  const named *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (c) return c;
  return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Sorts n names into out; returns the index (into out) of the second of
 * two equal names, or -1. */
static int64_t sort_names(int64_t n, const char *const *names, named *out) {
  for (int64_t i = 0; i < n; i++) out[i] = (named){names[i], i};
  qsort(out, (size_t)n, sizeof *out, cmp_named);
  for (int64_t i = 1; i < n; i++)
    if (strcmp(out[i - 1].name, out[i].name) == 0) return i;
  return -1;
}

/* Builds the header of the file (padded), with tensors in the order of
 * sorted_t.  Fails on a bad name or metadata string. */
static int build_header(const char *path, nn_jbuf *b, int64_t count,
                        const named *sorted_t, nn_tensor *const *tensors,
                        int64_t meta_count, const named *sorted_m,
                        const char *const *meta_values, nn_error *err) {
  nn_jbuf_raw(b, "{", 1);
  int first = 1;
  if (meta_count > 0) {
    nn_jbuf_puts(b, "\"__metadata__\":{");
    for (int64_t i = 0; i < meta_count; i++) {
      const char *k = sorted_m[i].name, *v = meta_values[sorted_m[i].idx];
      if (i) nn_jbuf_raw(b, ",", 1);
      if (nn_jbuf_string(b, k, strlen(k)) < 0)
        return nn_seterr(err, "%s: metadata key is not valid UTF-8", path);
      nn_jbuf_raw(b, ":", 1);
      if (nn_jbuf_string(b, v, strlen(v)) < 0)
        return nn_seterr(err, "%s: metadata value of '%s' is not valid UTF-8",
                         path, k);
    }
    nn_jbuf_raw(b, "}", 1);
    first = 0;
  }
  uint64_t pos = 0;
  for (int64_t i = 0; i < count; i++) {
    const char *name = sorted_t[i].name;
    const nn_tensor *t = tensors[sorted_t[i].idx];
    if (!first) nn_jbuf_raw(b, ",", 1);
    first = 0;
    if (nn_jbuf_string(b, name, strlen(name)) < 0)
      return nn_seterr(err, "%s: tensor name is not valid UTF-8", path);
    nn_jbuf_puts(b, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      if (d) nn_jbuf_raw(b, ",", 1);
      nn_jbuf_i64(b, t->shape[d]);
    }
    uint64_t bytes = (uint64_t)nn_tensor_numel(t) * 4;
    nn_jbuf_puts(b, "],\"data_offsets\":[");
    nn_jbuf_u64(b, pos);
    nn_jbuf_raw(b, ",", 1);
    nn_jbuf_u64(b, pos + bytes);
    nn_jbuf_puts(b, "]}");
    pos += bytes;
  }
  nn_jbuf_raw(b, "}", 1);
  while (b->len % 8) nn_jbuf_raw(b, " ", 1);
  if (b->failed) return nn_seterr(err, "%s: out of memory", path);
  return 0;
}

/* Writes t's elements as little-endian float32. */
static int write_tensor(int fd, nn_tensor *t, unsigned char *chunk,
                        size_t chunk_len) {
  nn_error terr;
  nn_tensor *c = nn_tensor_contiguous(t, &terr);
  if (!c) {
    errno = ENOMEM;
    return -1;
  }
  const float *x = nn_data(c);
  size_t n = (size_t)nn_tensor_numel(c);
  int rc = 0;
  if (host_is_little_endian()) {
    rc = write_full(fd, x, n * sizeof(float));
  } else {
    size_t per = chunk_len / 4;
    for (size_t done = 0; rc == 0 && done < n; done += per) {
      size_t k = n - done < per ? n - done : per;
      for (size_t i = 0; i < k; i++) {
        uint32_t u;
        memcpy(&u, &x[done + i], 4);
        chunk[4 * i] = (unsigned char)u;
        chunk[4 * i + 1] = (unsigned char)(u >> 8);
        chunk[4 * i + 2] = (unsigned char)(u >> 16);
        chunk[4 * i + 3] = (unsigned char)(u >> 24);
      }
      rc = write_full(fd, chunk, k * 4);
    }
  }
  int e = errno;
  nn_tensor_release(c);
  errno = e;
  return rc;
}

/* Best effort: makes the rename durable by syncing path's directory. */
static void sync_parent_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? dup_bytes(path, slash == path ? 1 : (size_t)(slash - path))
                    : dup_bytes(".", 1);
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
}

int nn_safetensors_save(const char *path, int64_t count,
                        const char *const *names, nn_tensor *const *tensors,
                        int64_t meta_count, const char *const *meta_keys,
                        const char *const *meta_values, nn_error *err) {
  if (count < 0 || meta_count < 0)
    return nn_seterr(err, "%s: negative count", path);
  for (int64_t i = 0; i < count; i++) {
    if (!names[i] || !tensors[i])
      return nn_seterr(err, "%s: tensor %lld has no name or no data", path,
                       (long long)i);
    if (strcmp(names[i], "__metadata__") == 0)
      return nn_seterr(err, "%s: '__metadata__' is reserved and cannot name a "
                            "tensor", path);
  }
  for (int64_t i = 0; i < meta_count; i++)
    if (!meta_keys[i] || !meta_values[i])
      return nn_seterr(err, "%s: metadata entry %lld is NULL", path,
                       (long long)i);
  named *st = malloc((size_t)(count ? count : 1) * sizeof *st);
  named *sm = malloc((size_t)(meta_count ? meta_count : 1) * sizeof *sm);
  size_t chunk_len = (size_t)1 << 16;
  unsigned char *chunk = malloc(chunk_len);
  char *tmp = malloc(strlen(path) + 32);
  nn_jbuf hdr;
  nn_jbuf_init(&hdr);
  int rc = 0, fd = -1;
  if (!st || !sm || !chunk || !tmp) {
    rc = nn_seterr(err, "%s: out of memory", path);
    goto done;
  }
  int64_t dup = sort_names(count, names, st);
  if (dup >= 0) {
    rc = nn_seterr(err, "%s: duplicate tensor name '%s'", path, st[dup].name);
    goto done;
  }
  dup = sort_names(meta_count, meta_keys, sm);
  if (dup >= 0) {
    rc = nn_seterr(err, "%s: duplicate metadata key '%s'", path, sm[dup].name);
    goto done;
  }
  rc = build_header(path, &hdr, count, st, tensors, meta_count, sm,
                    meta_values, err);
  if (rc < 0) goto done;

  snprintf(tmp, strlen(path) + 32, "%s.tmp.%ld", path, (long)getpid());
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) {
    rc = nn_seterr(err, "%s: cannot create the temporary file %s: %s", path,
                   tmp, strerror(errno));
    goto done;
  }
  /* The replacement keeps the permissions of the file it replaces. */
  struct stat old;
  if (stat(path, &old) == 0 && S_ISREG(old.st_mode))
    fchmod(fd, old.st_mode & 07777);
  unsigned char lenbuf[8];
  for (int i = 0; i < 8; i++)
    lenbuf[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
  if (write_full(fd, lenbuf, 8) < 0 || write_full(fd, hdr.data, hdr.len) < 0)
    rc = -1;
  for (int64_t i = 0; rc == 0 && i < count; i++)
    rc = write_tensor(fd, tensors[st[i].idx], chunk, chunk_len);
  if (rc == 0 && fsync(fd) < 0) rc = -1;
  if (rc < 0) {
    rc = nn_seterr(err, "%s: cannot write %s: %s", path, tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    goto done;
  }
  if (close(fd) < 0) {
    rc = nn_seterr(err, "%s: cannot write %s: %s", path, tmp, strerror(errno));
    unlink(tmp);
    goto done;
  }
  if (rename(tmp, path) < 0) {
    rc = nn_seterr(err, "%s: cannot replace the file: %s", path,
                   strerror(errno));
    unlink(tmp);
    goto done;
  }
  sync_parent_dir(path);
done:
  nn_jbuf_free(&hdr);
  free(st);
  free(sm);
  free(chunk);
  free(tmp);
  return rc;
}
