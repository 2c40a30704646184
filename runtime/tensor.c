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
#include <sys/resource.h>
#include <unistd.h>

int nn_seterr(nn_error *err, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* ---- Allocation: an arena for large blocks ----
 *
 * Every block carries a 64-byte header holding its length, in front of the
 * data.  Blocks of at least ARENA_MIN_BYTES (activations, gradients,
 * workspaces) are carved from one large reserved range of address space,
 * the arena; smaller ones come from malloc.  A freed arena block is merged
 * with its free neighbours and stays resident, so the next request of any
 * size that fits reuses its pages: a training step, whose tensors change
 * size from layer to layer, then faults nothing in once warm.  (A cache of
 * whole mapped blocks, reused only by requests of about their size, had to
 * be bounded near the largest live set and so mapped and faulted in 13 MiB
 * afresh on every Fashion-MNIST CNN step and about 130 MiB on every VGG16
 * step: 6-9% of the step.)
 *
 * Free ranges are taken best fit, from their low end, so the used part of
 * the arena stays compact; a fit that needs no given-back pages is
 * preferred to a tighter one that does (plain best fit re-faulted 17 MiB on
 * every VGG16 step, the page clearing alone 2-4% of the step).  Resident
 * memory is kept within the largest live set seen plus ARENA_SLACK_BYTES:
 * past that, the free ranges freed longest ago are given back to the
 * system (madvise), as are those unused for ARENA_MAX_AGE allocations;
 * their address space stays in the arena.
 * When the arena cannot be reserved (strict overcommit) or is full, blocks
 * are mapped one by one and unmapped when freed.  Under AddressSanitizer
 * everything goes through malloc, so that use-after-free stays detectable. */
#define HEADER_BYTES 64
#define ARENA_MIN_BYTES ((size_t)256 * 1024)
#define ARENA_SLOTS 4096
#define ARENA_MAX_AGE 4096
/* 12 MiB: with 8, VGG16 (32x32) still faulted 1100 pages in per step;
 * with 12 none, its peak 3 MiB lower than before either change. */
#define ARENA_SLACK_BYTES ((size_t)12 << 20)
#define PAGE_BYTES ((size_t)4096)
#define HUGE_BYTES ((size_t)2 << 20)

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ENABLED 0
#else
#define ARENA_ENABLED 1
#endif

typedef struct free_range {
  size_t off, len; /* bytes from the arena's start; page multiples */
  int res;         /* presumed resident (freed since last trimmed) */
  uint64_t stamp;  /* allocation count when freed */
} free_range;

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static char *arena;          /* the reserved range, NULL when unavailable */
static size_t arena_bytes;   /* its size */
static int arena_tried;      /* reservation attempted */
static size_t arena_top;     /* bytes from the start ever handed out */
/* The free ranges below arena_top, sorted by offset; neighbours that touch
 * differ in residency (those that do not are merged). */
static free_range fr[ARENA_SLOTS];
static int fr_n;
static size_t free_res;      /* bytes of the resident free ranges */
static uint64_t arena_clock;
static size_t live_bytes;    /* bytes of large blocks handed out */
static size_t peak_bytes;    /* the largest live_bytes seen */

/* Reserves the arena: address space only (MAP_NORESERVE), backed by pages
 * as they are first written, advised for transparent huge pages.  Its size
 * is twice the physical memory, at most 64 GiB and half of any address-
 * space limit (ulimit -v); smaller sizes are tried when that fails.  Lock
 * held. */
static void arena_reserve(void) {
  arena_tried = 1;
  size_t want = (size_t)64 << 30;
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  if (pages > 0 && psz > 0 && (size_t)pages * (size_t)psz * 2 < want)
    want = (size_t)pages * (size_t)psz * 2;
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      (size_t)rl.rlim_cur / 2 < want)
    want = (size_t)rl.rlim_cur / 2;
  for (size_t len = want; len >= ((size_t)256 << 20); len /= 2) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
      /* start on a 2 MiB boundary so that huge pages line up */
      uintptr_t a =
          ((uintptr_t)p + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1);
      arena = (char *)a;
      arena_bytes = len - (a - (uintptr_t)p);
      madvise(arena, arena_bytes & ~(HUGE_BYTES - 1), MADV_HUGEPAGE);
      return;
    }
  }
}

/* Removes free range i. */
static void range_remove(int i) {
  memmove(fr + i, fr + i + 1, (size_t)(fr_n - i - 1) * sizeof *fr);
  fr_n--;
}

/* Inserts a free range at position i (keeping the order), merged with the
 * neighbours that touch it and share its residency; returns 0 when no slot
 * is left. */
static int range_insert(int i, size_t off, size_t len, int res) {
  if (res) free_res += len;
  int left = i > 0 && fr[i - 1].res == res &&
             fr[i - 1].off + fr[i - 1].len == off;
  int right = i < fr_n && fr[i].res == res && off + len == fr[i].off;
  if (left) {
    fr[i - 1].len += len;
    fr[i - 1].stamp = arena_clock;
    if (right) {
      fr[i - 1].len += fr[i].len;
      range_remove(i);
    }
  } else if (right) {
    fr[i].off = off;
    fr[i].len += len;
    fr[i].stamp = arena_clock;
  } else {
    if (fr_n == ARENA_SLOTS) {
      if (res) free_res -= len;
      return 0;
    }
    memmove(fr + i + 1, fr + i, (size_t)(fr_n - i) * sizeof *fr);
    fr[i] = (free_range){off, len, res, arena_clock};
    fr_n++;
  }
  return 1;
}

/* Gives the pages of the last `bytes` (a page multiple) of resident free
 * range i back to the system; the address space stays a free range. */
static void range_trim(int i, size_t bytes) {
  free_range r = fr[i];
  if (bytes > r.len) bytes = r.len;
  size_t keep = r.len - bytes;
  madvise(arena + r.off + keep, bytes, MADV_DONTNEED);
  free_res -= bytes;
  if (keep) {
    fr[i++].len = keep; /* still resident, freed when it was */
  } else {
    range_remove(i);
  }
  /* Without a slot (never seen) the trimmed addresses are not used again. */
  range_insert(i, r.off + keep, bytes, 0);
}

/* Trims resident free ranges, those freed longest ago first and each only
 * as far as needed, until resident memory (live + free) is within the
 * largest live set plus ARENA_SLACK_BYTES; and those unused for
 * ARENA_MAX_AGE allocations.  Lock held. */
static void arena_trim(void) {
  while (live_bytes + free_res > peak_bytes + ARENA_SLACK_BYTES) {
    int old = -1;
    for (int i = 0; i < fr_n; i++)
      if (fr[i].res && (old < 0 || fr[i].stamp < fr[old].stamp)) old = i;
    if (old < 0) break;
    size_t over = live_bytes + free_res - (peak_bytes + ARENA_SLACK_BYTES);
    range_trim(old, (over + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1));
  }
  for (int i = 0; i < fr_n; i++)
    if (fr[i].res && arena_clock - fr[i].stamp > ARENA_MAX_AGE)
      range_trim(i, fr[i].len);
}

/* Carves len bytes from the arena and returns their offset, or -1 when the
 * arena is full: from the low end of the run of touching free ranges that
 * holds them with the fewest given-back bytes among those it would use,
 * then the smallest; else from the run that ends at the top (or the top
 * itself), growing the top.  Lock held. */
static int64_t arena_get(size_t len) {
  int best = -1;
  size_t best_len = 0, best_cold = 0;
  for (int i = 0; i < fr_n;) {
    int j = i;
    size_t run = fr[i].len;
    while (j + 1 < fr_n && fr[j].off + fr[j].len == fr[j + 1].off)
      run += fr[++j].len;
    if (run >= len) {
      /* bytes of the block that would have to be faulted in */
      size_t cold = 0, got = 0;
      for (int k = i; got < len; k++) {
        size_t take = fr[k].len < len - got ? fr[k].len : len - got;
        if (!fr[k].res) cold += take;
        got += take;
      }
      if (best < 0 || cold < best_cold ||
          (cold == best_cold && run < best_len)) {
        best = i;
        best_len = run;
        best_cold = cold;
      }
    }
    i = j + 1;
  }
  if (best < 0) { /* the run that ends at the top, if any */
    int i = fr_n;
    while (i > 0 && fr[i - 1].off + fr[i - 1].len ==
                        (i == fr_n ? arena_top : fr[i].off))
      i--;
    size_t start = i < fr_n ? fr[i].off : arena_top;
    if (start + len > arena_bytes) return -1;
    best = i;
  }
  size_t off = best < fr_n ? fr[best].off : arena_top;
  size_t need = len;
  while (need > 0 && best < fr_n && fr[best].off == off + (len - need)) {
    free_range *r = &fr[best];
    size_t take = r->len < need ? r->len : need;
    if (r->res) free_res -= take;
    need -= take;
    if (take == r->len) {
      range_remove(best);
    } else {
      r->off += take;
      r->len -= take;
    }
  }
  if (need > 0) arena_top += need; /* the run reached the top */
  live_bytes += len;
  if (live_bytes > peak_bytes) peak_bytes = live_bytes;
  arena_trim();
  return (int64_t)off;
}

/* Returns [off, off + len) to the free ranges, resident.  Lock held. */
static void arena_put(size_t off, size_t len) {
  live_bytes -= len;
  int lo = 0, hi = fr_n; /* the first range after the block */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (fr[mid].off < off)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (!range_insert(lo, off, len, 1)) {
    /* no slot left (never seen): the pages go back, the addresses are not
     * used again */
    madvise(arena + off, len, MADV_DONTNEED);
  }
}

/* A block outside the arena: mapped on its own, the data 2 MiB aligned
 * when large so that its whole 2 MiB pages can be huge pages; the header
 * sits at the end of the page before the data.  Returns the header's
 * address, or NULL. */
static char *big_map(size_t cap) {
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

float *nn_alloc_floats(int64_t n, nn_error *err) {
  if (n < 0 || n > NN_MAX_NUMEL) {
    nn_seterr(err, "cannot allocate %lld floats (limit %lld)", (long long)n,
              (long long)NN_MAX_NUMEL);
    return NULL;
  }
  size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
  bytes = (bytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple */
  char *base = NULL;
  if (ARENA_ENABLED && bytes >= ARENA_MIN_BYTES) {
    /* header + data, in whole pages */
    size_t len = (HEADER_BYTES + bytes + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1);
    pthread_mutex_lock(&arena_lock);
    arena_clock++;
    if (!arena_tried) arena_reserve();
    int64_t off = arena ? arena_get(len) : -1;
    pthread_mutex_unlock(&arena_lock);
    if (off >= 0) {
      base = arena + off;
      memcpy(base, &len, sizeof len);
    } else {
      size_t cap = (bytes + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1);
      base = big_map(cap);
      if (base) {
        memcpy(base, &cap, sizeof cap);
        pthread_mutex_lock(&arena_lock);
        live_bytes += cap;
        if (live_bytes > peak_bytes) peak_bytes = live_bytes;
        pthread_mutex_unlock(&arena_lock);
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
  if (ARENA_ENABLED && arena && base >= arena && base < arena + arena_bytes) {
    pthread_mutex_lock(&arena_lock);
    arena_put((size_t)(base - arena), bytes);
    pthread_mutex_unlock(&arena_lock);
  } else if (ARENA_ENABLED && bytes >= ARENA_MIN_BYTES) {
    pthread_mutex_lock(&arena_lock);
    live_bytes -= bytes;
    pthread_mutex_unlock(&arena_lock);
    munmap(base + HEADER_BYTES - PAGE_BYTES, PAGE_BYTES + bytes);
  } else {
    free(base);
  }
}

size_t nn_alloc_live_bytes(void) {
  pthread_mutex_lock(&arena_lock);
  size_t n = live_bytes;
  pthread_mutex_unlock(&arena_lock);
  return n;
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

/* A fresh version stamp: process-wide, never repeated. */
static uint64_t next_version(void) {
  static uint64_t last;
  return __atomic_add_fetch(&last, 1, __ATOMIC_RELAXED);
}

void nn_tensor_touch(nn_tensor *t) { t->storage->version = next_version(); }

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
  s->version = next_version();
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
  nn_tensor_touch(t);
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
  nn_tensor_touch(dst);
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
  nn_tensor_touch(t);
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
  nn_tensor_touch(t);
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
