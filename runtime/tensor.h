/*
 * tensor.h - refcounted float32 tensors over shared, 64-byte aligned storage.
 *
 * A tensor is a view (shape, strides, offset) over a refcounted storage block.
 * Views made by reshape and narrow share the storage of their base.  The core
 * never raises: functions that can fail take an nn_error* and return -1 (or
 * NULL) with a message in it; only the Lua binding turns that into an error.
 *
 * Ownership: functions named _new, _empty, _clone, _copy, _view, and every
 * function returning nn_tensor* return an owned reference; release it with
 * nn_tensor_release.  Arguments are borrowed unless a comment says otherwise.
 */
#ifndef NN_TENSOR_H
#define NN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define NN_MAX_DIMS 8
/* Largest element count a single tensor may hold (2^36 floats = 256 GiB). */
#define NN_MAX_NUMEL ((int64_t)1 << 36)

/* An error message filled by a failing call. */
typedef struct nn_error {
  char msg[512];
} nn_error;

/* Formats a message into err (which may be NULL); always returns -1. */
int nn_seterr(nn_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A refcounted block of floats, 64-byte aligned.  version is a stamp
 * unique across all storages of the process, renewed by every in-place write
 * (nn_tensor_touch): equal stamps mean the same storage with the same
 * contents, so a cache derived from a tensor (a Conv2d's transformed weights
 * in eval mode) stays valid while the stamp it was built from does. */
typedef struct nn_storage {
  float *data;
  int64_t size; /* in floats */
  int refcount;
  uint64_t version;
} nn_storage;

typedef struct nn_tensor {
  nn_storage *storage;
  int64_t offset; /* in floats, into storage->data */
  int ndim;       /* 0 for a scalar tensor holding one value */
  int64_t shape[NN_MAX_DIMS];
  int64_t stride[NN_MAX_DIMS]; /* in floats */
  int refcount;
  /* Parameters only: the gradient (owned, same shape, contiguous) and
   * whether backward should accumulate into it (0 once frozen). */
  struct nn_tensor *grad;
  int requires_grad;
} nn_tensor;

/* Pointer to the first element of t (honours the view's offset). */
static inline float *nn_data(const nn_tensor *t) {
  return t->storage->data + t->offset;
}

/* Renews t's storage version stamp.  Every write into an existing tensor
 * that may be a parameter (in-place ops, optimizer steps, element stores)
 * must call it, before or after writing, for caches keyed on the stamp. */
void nn_tensor_touch(nn_tensor *t);

/* Allocates 64-byte aligned memory for n floats; NULL (with err) on failure. */
float *nn_alloc_floats(int64_t n, nn_error *err);
void nn_free_floats(float *p);
/* Bytes of the large blocks (256 KiB and up) nn_alloc_floats has handed out
 * and that are not yet freed, over all threads; 0 where they are not
 * counted (AddressSanitizer builds, which use malloc). */
size_t nn_alloc_live_bytes(void);

/* New contiguous tensor of the given shape, zero-filled / uninitialised.
 * Fails on a negative dimension, too many dimensions, or out of memory. */
nn_tensor *nn_tensor_new(int ndim, const int64_t *shape, nn_error *err);
nn_tensor *nn_tensor_empty(int ndim, const int64_t *shape, nn_error *err);
/* New zero-filled contiguous tensor with t's shape. */
nn_tensor *nn_tensor_new_like(const nn_tensor *t, nn_error *err);
/* Convenience constructors for up to 4 dimensions. */
nn_tensor *nn_tensor_new1(int64_t a, nn_error *err);
nn_tensor *nn_tensor_new2(int64_t a, int64_t b, nn_error *err);
nn_tensor *nn_tensor_new4(int64_t a, int64_t b, int64_t c, int64_t d,
                          nn_error *err);

/* Adds a reference and returns t. */
nn_tensor *nn_tensor_retain(nn_tensor *t);
/* Drops a reference; frees t (its grad, and its storage when unshared) at 0.
 * NULL is allowed. */
void nn_tensor_release(nn_tensor *t);

int64_t nn_tensor_numel(const nn_tensor *t);
int nn_tensor_is_contiguous(const nn_tensor *t);
int nn_tensor_same_shape(const nn_tensor *a, const nn_tensor *b);
/* 1 if t has exactly this shape. */
int nn_tensor_has_shape(const nn_tensor *t, int ndim, const int64_t *shape);
/* Writes "[64, 3, 32, 32]" into buf. */
void nn_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);
void nn_tensor_shape_str(const nn_tensor *t, char *buf, size_t n);

/* Returns t itself (retained) when contiguous, else a contiguous copy. */
nn_tensor *nn_tensor_contiguous(nn_tensor *t, nn_error *err);
/* Deep copy into new contiguous storage (the grad is not copied). */
nn_tensor *nn_tensor_clone(const nn_tensor *t, nn_error *err);
/* View of t with a new shape (one entry may be -1, inferred): shares storage
 * when t is contiguous, else copies.  Fails when the element counts differ. */
nn_tensor *nn_tensor_reshape(nn_tensor *t, int ndim, const int64_t *shape,
                             nn_error *err);
/* View of t restricted to [start, start+len) along dim (0-based). */
nn_tensor *nn_tensor_narrow(nn_tensor *t, int dim, int64_t start, int64_t len,
                            nn_error *err);

/* Linear offset (in floats, from nn_data) of the i-th element in row-major
 * order, for strided views. */
int64_t nn_tensor_elem_offset(const nn_tensor *t, int64_t i);

/* In place, honouring strides.  copy_ requires equal element counts. */
void nn_tensor_fill_(nn_tensor *t, float v);
int nn_tensor_copy_(nn_tensor *dst, const nn_tensor *src, nn_error *err);
/* t += alpha * u (same shape). */
int nn_tensor_add_(nn_tensor *t, const nn_tensor *u, float alpha,
                   nn_error *err);
void nn_tensor_mul_scalar_(nn_tensor *t, float s);

/* Gives t a zero-filled gradient tensor of its shape (if it has none) and
 * sets requires_grad.  Used for parameters. */
int nn_tensor_make_param(nn_tensor *t, nn_error *err);

#endif
