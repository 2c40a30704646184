/* tensor.c - tensor allocation, refcounting, views and in-place basics. */
#include "tensor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nn_seterr(nn_error *err, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}

float *nn_alloc_floats(int64_t n, nn_error *err) {
  if (n < 0 || n > NN_MAX_NUMEL) {
    nn_seterr(err, "cannot allocate %lld floats (limit %lld)", (long long)n,
              (long long)NN_MAX_NUMEL);
    return NULL;
  }
  size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
  bytes = (bytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple */
  float *p = aligned_alloc(64, bytes);
  if (!p)
    nn_seterr(err, "out of memory allocating %.1f MiB",
              (double)bytes / (1024.0 * 1024.0));
  return p;
}

void nn_free_floats(float *p) { free(p); }

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
