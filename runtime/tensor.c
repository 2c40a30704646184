/* tensor.c - tensor allocation, refcounting, views and in-place basics. */
/* MAP_ANONYMOUS and madvise are not POSIX. */
#define _DEFAULT_SOURCE

#include "tensor.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int nn_seterr(nn_error *err, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* ---- Allocation: a small cache of large blocks ----
 *
 * Every block carries a 64-byte header holding its capacity, so that
 * nn_free_floats can tell large blocks from small ones.  Blocks of at least
 * POOL_MIN_BYTES are mapped directly (with transparent huge pages when
 * large; see big_map), so that freeing them really returns the memory: glibc
 * keeps freed blocks below its (growing) mmap threshold in its heap, where
 * they count in the resident set for good.  A freed large block is cached
 * and handed to the next request of about the same size: without the cache
 * every training step would fault in its activations and gradients afresh
 * (a page fault costs microseconds).  The cache holds at most POOL_SLOTS
 * blocks and POOL_MAX_BYTES.  Live + cached memory is kept within the
 * largest live set seen plus one block of at most POOL_SLACK_BYTES: a miss
 * returns cached blocks (oldest first) only as far as that bound requires.
 * (Returning as much as every miss requests, whether or not the bound
 * needed it, let requests of two sizes evict each other's blocks for good:
 * store:batch + aug:batch on 2 threads, 3 MiB tensors and a 288 KiB scratch
 * block, mapped and faulted in a fresh 3 MiB block on every call.  A slack
 * of a whole block, on the other hand, let a VGG training step peak at its
 * largest live set plus 64 MiB of cached blocks of other sizes; with the
 * cap, those are mapped again on the next step: a few ms of page faults in
 * a step of seconds.)  Blocks not reused for POOL_MAX_AGE allocations are
 * returned on a miss too.  Under AddressSanitizer everything goes through
 * malloc, so that use-after-free stays detectable. */
#define HEADER_BYTES 64
#define POOL_MIN_BYTES ((size_t)256 * 1024)
#define POOL_MAX_BYTES ((size_t)1 << 30)
#define POOL_SLOTS 128
#define POOL_MAX_AGE 4096
#define POOL_SLACK_BYTES ((size_t)8 << 20)

#define HUGE_BYTES ((size_t)2 << 20)

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ENABLED 0
#else
#define POOL_ENABLED 1
#endif

typedef struct pool_block {
  char *base;     /* the header's address (see big_map) */
  size_t bytes;   /* capacity after the header */
  uint64_t stamp; /* allocation count when it was cached */
} pool_block;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pool_block pool[POOL_SLOTS];
static int pool_n;
static size_t pool_bytes;
static uint64_t pool_clock;
static size_t live_bytes; /* capacity of the large blocks handed out */
static size_t peak_bytes; /* the largest live_bytes seen */

/* A mapped block is laid out as [one page holding the header][data]: the
 * data starts on a page boundary (on a 2 MiB boundary when huge pages back
 * it) and the header sits in the last bytes of the page before it, so that
 * the data never spills into a huge page of which it would use 64 bytes
 * (each such spill cost a whole 2 MiB page of resident memory).  Only the
 * whole 2 MiB pages of the data are advised for huge pages: the tail
 * (capacity % 2 MiB) stays in small pages, resident only as far as it is
 * used. */
#define PAGE_BYTES ((size_t)4096)

/* The capacity of the mapped block for a request of `bytes` data bytes. */
static size_t big_len(size_t bytes) {
  return (bytes + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1);
}

/* Maps a block of big_len(bytes) data bytes and returns its base (the
 * header's address), or NULL. */
static char *big_map(size_t bytes) {
  size_t cap = big_len(bytes);
  if (cap < 4 * HUGE_BYTES) {
    char *p = mmap(NULL, PAGE_BYTES + cap, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p + PAGE_BYTES - HEADER_BYTES;
  }
  /* Large: the data 2 MiB aligned, so that its whole 2 MiB pages can be
   * backed by huge pages (far fewer faults and TLB misses). */
  size_t len = PAGE_BYTES + cap + HUGE_BYTES;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  uintptr_t a = ((uintptr_t)p + PAGE_BYTES + HUGE_BYTES - 1) &
                ~(uintptr_t)(HUGE_BYTES - 1);
  char *data = p + (a - (uintptr_t)p);
  char *start = data - PAGE_BYTES, *end = data + cap;
  if (start > p) munmap(p, (size_t)(start - p));
  if (p + len > end) munmap(end, (size_t)(p + len - end));
  madvise(data, cap & ~(HUGE_BYTES - 1), MADV_HUGEPAGE);
  return data - HEADER_BYTES;
}

/* Unmaps a block made by big_map. */
static void big_free(char *base) {
  size_t cap;
  memcpy(&cap, base, sizeof cap);
  munmap(base + HEADER_BYTES - PAGE_BYTES, PAGE_BYTES + cap);
}

/* Removes slot i from the cache and returns its block.  Lock held. */
static char *pool_take(int i) {
  char *base = pool[i].base;
  pool_bytes -= pool[i].bytes;
  pool[i] = pool[--pool_n];
  return base;
}

/* The cached block that best fits `bytes` (capacity within 1/8 above), or
 * NULL when the caller is to map a fresh block of capacity `fresh`; then
 * cached blocks are returned to the system, oldest first, until live +
 * cached memory (the fresh block included) is within the largest live set
 * seen plus the fresh block or POOL_SLACK_BYTES, whichever is less, and so
 * are blocks not reused for long.  Counts the block as live either way.
 * Lock held. */
static char *pool_get(size_t bytes, size_t fresh) {
  int best = -1;
  for (int i = 0; i < pool_n; i++)
    if (pool[i].bytes >= bytes && pool[i].bytes - bytes <= bytes / 8 &&
        (best < 0 || pool[i].bytes < pool[best].bytes))
      best = i;
  if (best >= 0) {
    live_bytes += pool[best].bytes;
    return pool_take(best);
  }
  live_bytes += fresh;
  if (live_bytes > peak_bytes) peak_bytes = live_bytes;
  size_t slack = fresh < POOL_SLACK_BYTES ? fresh : POOL_SLACK_BYTES;
  while (pool_n > 0 && live_bytes + pool_bytes > peak_bytes + slack) {
    int old = 0;
    for (int i = 1; i < pool_n; i++)
      if (pool[i].stamp < pool[old].stamp) old = i;
    big_free(pool_take(old));
  }
  for (int i = pool_n - 1; i >= 0; i--)
    if (pool_clock - pool[i].stamp > POOL_MAX_AGE) big_free(pool_take(i));
  return NULL;
}

/* Caches a block, evicting the oldest ones to make room; returns 0 when the
 * block is too large to cache.  Lock held. */
static int pool_put(char *base, size_t bytes) {
  if (bytes > POOL_MAX_BYTES / 2) return 0;
  while (pool_n > 0 &&
         (pool_n == POOL_SLOTS || pool_bytes + bytes > POOL_MAX_BYTES)) {
    int old = 0;
    for (int i = 1; i < pool_n; i++)
      if (pool[i].stamp < pool[old].stamp) old = i;
    big_free(pool_take(old));
  }
  pool[pool_n].base = base;
  pool[pool_n].bytes = bytes;
  pool[pool_n].stamp = pool_clock;
  pool_n++;
  pool_bytes += bytes;
  return 1;
}

float *nn_alloc_floats(int64_t n, nn_error *err) {
  if (n < 0 || n > NN_MAX_NUMEL) {
    nn_seterr(err, "cannot allocate %lld floats (limit %lld)", (long long)n,
              (long long)NN_MAX_NUMEL);
    return NULL;
  }
  size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
  bytes = (bytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple */
  char *base = NULL;
  if (POOL_ENABLED && bytes >= POOL_MIN_BYTES) {
    size_t fresh = big_len(bytes);
    pthread_mutex_lock(&pool_lock);
    pool_clock++;
    base = pool_get(bytes, fresh);
    pthread_mutex_unlock(&pool_lock);
    if (!base) {
      base = big_map(bytes);
      if (base) {
        memcpy(base, &fresh, sizeof fresh); /* the capacity */
      } else {
        pthread_mutex_lock(&pool_lock);
        live_bytes -= fresh;
        pthread_mutex_unlock(&pool_lock);
      }
    }
  } else {
    base = aligned_alloc(64, bytes + HEADER_BYTES);
    if (base) memcpy(base, &bytes, sizeof bytes);
  }
  if (!base) {
    nn_seterr(err, "out of memory allocating %.1f MiB",
              (double)bytes / (1024.0 * 1024.0));
    return NULL;
  }
  return (float *)(base + HEADER_BYTES);
}

void nn_free_floats(float *p) {
  if (!p) return;
  char *base = (char *)p - HEADER_BYTES;
  size_t bytes;
  memcpy(&bytes, base, sizeof bytes);
  if (POOL_ENABLED && bytes >= POOL_MIN_BYTES) {
    pthread_mutex_lock(&pool_lock);
    live_bytes -= bytes;
    int kept = pool_put(base, bytes);
    pthread_mutex_unlock(&pool_lock);
    if (!kept) big_free(base);
    return;
  }
  free(base);
}

/* Checks a shape and returns its element count, or -1 with err. */
static int64_t checked_numel(int ndim, const int64_t *shape, nn_error *err) {
  if (ndim < 0 || ndim > NN_MAX_DIMS) {
    nn_seterr(err, "a tensor has at most %d dimensions, got %d", NN_MAX_DIMS,
              ndim);
    return -1;
  }
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      nn_seterr(err, "negative size %lld in dimension %d", (long long)shape[i],
                i + 1);
      return -1;
    }
    if (shape[i] > 0 && n > NN_MAX_NUMEL / shape[i]) {
      char s[160];
      nn_shape_str(ndim, shape, s, sizeof s);
      nn_seterr(err, "tensor of shape %s is too large to allocate", s);
      return -1;
    }
    n *= shape[i];
  }
  return n;
}

static void set_contiguous_strides(nn_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    t->stride[i] = s;
    s *= t->shape[i];
  }
}

nn_tensor *nn_tensor_empty(int ndim, const int64_t *shape, nn_error *err) {
  int64_t n = checked_numel(ndim, shape, err);
  if (n < 0) return NULL;
  nn_tensor *t = calloc(1, sizeof *t);
  nn_storage *s = calloc(1, sizeof *s);
  float *data = (t && s) ? nn_alloc_floats(n, err) : NULL;
  if (!data) {
    if (!t || !s) nn_seterr(err, "out of memory allocating a tensor");
    free(t);
    free(s);
    return NULL;
  }
  s->data = data;
  s->size = n;
  s->refcount = 1;
  t->storage = s;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  set_contiguous_strides(t);
  t->refcount = 1;
  return t;
}

nn_tensor *nn_tensor_new(int ndim, const int64_t *shape, nn_error *err) {
  nn_tensor *t = nn_tensor_empty(ndim, shape, err);
  if (t) memset(t->storage->data, 0, (size_t)t->storage->size * sizeof(float));
  return t;
}

nn_tensor *nn_tensor_new_like(const nn_tensor *t, nn_error *err) {
  return nn_tensor_new(t->ndim, t->shape, err);
}

nn_tensor *nn_tensor_new1(int64_t a, nn_error *err) {
  return nn_tensor_new(1, &a, err);
}

nn_tensor *nn_tensor_new2(int64_t a, int64_t b, nn_error *err) {
  int64_t s[2] = {a, b};
  return nn_tensor_new(2, s, err);
}

nn_tensor *nn_tensor_new4(int64_t a, int64_t b, int64_t c, int64_t d,
                          nn_error *err) {
  int64_t s[4] = {a, b, c, d};
  return nn_tensor_new(4, s, err);
}

nn_tensor *nn_tensor_retain(nn_tensor *t) {
  t->refcount++;
  return t;
}

void nn_tensor_release(nn_tensor *t) {
  if (!t || --t->refcount > 0) return;
  if (--t->storage->refcount == 0) {
    nn_free_floats(t->storage->data);
    free(t->storage);
  }
  nn_tensor_release(t->grad);
  free(t);
}

int64_t nn_tensor_numel(const nn_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

int nn_tensor_is_contiguous(const nn_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != s) return 0;
    s *= t->shape[i];
  }
  return 1;
}

int nn_tensor_has_shape(const nn_tensor *t, int ndim, const int64_t *shape) {
  if (t->ndim != ndim) return 0;
  for (int i = 0; i < ndim; i++)
    if (t->shape[i] != shape[i]) return 0;
  return 1;
}

int nn_tensor_same_shape(const nn_tensor *a, const nn_tensor *b) {
  return nn_tensor_has_shape(a, b->ndim, b->shape);
}

void nn_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld",
                          (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
}

void nn_tensor_shape_str(const nn_tensor *t, char *buf, size_t n) {
  nn_shape_str(t->ndim, t->shape, buf, n);
}

int64_t nn_tensor_elem_offset(const nn_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    int64_t sz = t->shape[d];
    off += (i % sz) * t->stride[d];
    i /= sz;
  }
  return off;
}

/* Calls f on each element of t in row-major order, walking strides with an
 * index counter rather than a division per element. */
#define FOREACH_ELEM(t, ptr, body)                                        \
  do {                                                                    \
    int64_t idx_[NN_MAX_DIMS] = {0};                                      \
    int64_t n_ = nn_tensor_numel(t);                                      \
    float *base_ = nn_data(t);                                            \
    int64_t off_ = 0;                                                     \
    for (int64_t e_ = 0; e_ < n_; e_++) {                                 \
      float *ptr = base_ + off_;                                          \
      body;                                                               \
      for (int d_ = (t)->ndim - 1; d_ >= 0; d_--) {                       \
        if (++idx_[d_] < (t)->shape[d_]) {                                \
          off_ += (t)->stride[d_];                                        \
          break;                                                          \
        }                                                                 \
        off_ -= (idx_[d_] - 1) * (t)->stride[d_];                         \
        idx_[d_] = 0;                                                     \
      }                                                                   \
    }                                                                     \
  } while (0)

nn_tensor *nn_tensor_clone(const nn_tensor *t, nn_error *err) {
  nn_tensor *c = nn_tensor_empty(t->ndim, t->shape, err);
  if (!c) return NULL;
  float *dst = nn_data(c);
  if (nn_tensor_is_contiguous(t)) {
    memcpy(dst, nn_data(t), (size_t)nn_tensor_numel(t) * sizeof(float));
  } else {
    int64_t k = 0;
    FOREACH_ELEM(t, p, dst[k++] = *p);
  }
  return c;
}

nn_tensor *nn_tensor_contiguous(nn_tensor *t, nn_error *err) {
  if (nn_tensor_is_contiguous(t)) return nn_tensor_retain(t);
  return nn_tensor_clone(t, err);
}

/* A new tensor header sharing t's storage. */
static nn_tensor *share(nn_tensor *t, nn_error *err) {
  nn_tensor *v = calloc(1, sizeof *v);
  if (!v) {
    nn_seterr(err, "out of memory allocating a tensor view");
    return NULL;
  }
  *v = *t;
  v->refcount = 1;
  v->grad = NULL;
  v->requires_grad = 0;
  t->storage->refcount++;
  return v;
}

nn_tensor *nn_tensor_reshape(nn_tensor *t, int ndim, const int64_t *shape,
                             nn_error *err) {
  int64_t s[NN_MAX_DIMS];
  if (ndim < 0 || ndim > NN_MAX_DIMS) {
    nn_seterr(err, "a tensor has at most %d dimensions, got %d", NN_MAX_DIMS,
              ndim);
    return NULL;
  }
  int infer = -1;
  int64_t known = 1, n = nn_tensor_numel(t);
  for (int i = 0; i < ndim; i++) {
    s[i] = shape[i];
    if (s[i] == -1) {
      if (infer >= 0) {
        nn_seterr(err, "only one dimension can be -1");
        return NULL;
      }
      infer = i;
    } else if (s[i] < 0) {
      nn_seterr(err, "invalid size %lld in dimension %d", (long long)s[i],
                i + 1);
      return NULL;
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || n % known != 0) goto mismatch;
    s[infer] = n / known;
    known *= s[infer];
  }
  if (known != n) goto mismatch;
  nn_tensor *v;
  if (nn_tensor_is_contiguous(t)) {
    v = share(t, err);
  } else {
    v = nn_tensor_clone(t, err);
  }
  if (!v) return NULL;
  v->ndim = ndim;
  for (int i = 0; i < ndim; i++) v->shape[i] = s[i];
  set_contiguous_strides(v);
  return v;
mismatch : {
  char a[160], b[160];
  nn_tensor_shape_str(t, a, sizeof a);
  nn_shape_str(ndim, shape, b, sizeof b);
  nn_seterr(err, "cannot reshape a tensor of shape %s (%lld elements) to %s",
            a, (long long)n, b);
  return NULL;
}
}

nn_tensor *nn_tensor_narrow(nn_tensor *t, int dim, int64_t start, int64_t len,
                            nn_error *err) {
  if (dim < 0 || dim >= t->ndim) {
    nn_seterr(err, "dimension %d out of range (tensor has %d)", dim + 1,
              t->ndim);
    return NULL;
  }
  if (start < 0 || len < 0 || start + len > t->shape[dim]) {
    nn_seterr(err,
              "narrow of dimension %d: elements %lld..%lld out of range "
              "1..%lld",
              dim + 1, (long long)start + 1, (long long)(start + len),
              (long long)t->shape[dim]);
    return NULL;
  }
  nn_tensor *v = share(t, err);
  if (!v) return NULL;
  v->offset += start * t->stride[dim];
  v->shape[dim] = len;
  return v;
}

void nn_tensor_fill_(nn_tensor *t, float v) {
  if (nn_tensor_is_contiguous(t)) {
    float *d = nn_data(t);
    int64_t n = nn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) d[i] = v;
  } else {
    FOREACH_ELEM(t, p, *p = v);
  }
}

int nn_tensor_copy_(nn_tensor *dst, const nn_tensor *src, nn_error *err) {
  int64_t n = nn_tensor_numel(dst);
  if (n != nn_tensor_numel(src)) {
    char a[160], b[160];
    nn_tensor_shape_str(dst, a, sizeof a);
    nn_tensor_shape_str(src, b, sizeof b);
    return nn_seterr(err, "copy_: cannot copy a tensor of shape %s into %s", b,
                     a);
  }
  if (dst->storage == src->storage) {
    /* Overlapping storage: go through a temporary. */
    nn_tensor *tmp = nn_tensor_clone(src, err);
    if (!tmp) return -1;
    int r = nn_tensor_copy_(dst, tmp, err);
    nn_tensor_release(tmp);
    return r;
  }
  if (nn_tensor_is_contiguous(dst) && nn_tensor_is_contiguous(src)) {
    memcpy(nn_data(dst), nn_data(src), (size_t)n * sizeof(float));
    return 0;
  }
  const float *s = nn_data(src);
  int src_contig = nn_tensor_is_contiguous(src);
  int64_t k = 0;
  FOREACH_ELEM(dst, p, {
    *p = src_contig ? s[k] : s[nn_tensor_elem_offset(src, k)];
    k++;
  });
  return 0;
}

int nn_tensor_add_(nn_tensor *t, const nn_tensor *u, float alpha,
                   nn_error *err) {
  if (!nn_tensor_same_shape(t, u)) {
    char a[160], b[160];
    nn_tensor_shape_str(t, a, sizeof a);
    nn_tensor_shape_str(u, b, sizeof b);
    return nn_seterr(err, "add_: shapes %s and %s differ", a, b);
  }
  nn_tensor *tmp = NULL;
  if (t->storage == u->storage) {
    tmp = nn_tensor_clone(u, err);
    if (!tmp) return -1;
    u = tmp;
  }
  if (nn_tensor_is_contiguous(t) && nn_tensor_is_contiguous(u)) {
    float *d = nn_data(t);
    const float *s = nn_data(u);
    int64_t n = nn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) d[i] += alpha * s[i];
  } else {
    const float *s = nn_data(u);
    int64_t k = 0;
    FOREACH_ELEM(t, p, {
      *p += alpha * s[nn_tensor_elem_offset(u, k)];
      k++;
    });
  }
  nn_tensor_release(tmp);
  return 0;
}

void nn_tensor_mul_scalar_(nn_tensor *t, float s) {
  if (nn_tensor_is_contiguous(t)) {
    float *d = nn_data(t);
    int64_t n = nn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) d[i] *= s;
  } else {
    FOREACH_ELEM(t, p, *p *= s);
  }
}

int nn_tensor_make_param(nn_tensor *t, nn_error *err) {
  if (!t->grad) {
    t->grad = nn_tensor_new(t->ndim, t->shape, err);
    if (!t->grad) return -1;
  }
  t->requires_grad = 1;
  return 0;
}
