/* tensor_ops.c - elementwise math, reductions, matmul, arange, random fills. */
#include "tensor_ops.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gemm.h"

/* Loops over fewer elements than this stay on one thread. */
#define PAR_MIN 32768
/* Elementwise loops are split into tasks of at most this many elements of
 * the last dimension. */
#define CHUNK 8192
/* Whole-tensor reductions sum a fixed number of blocks (whatever the thread
 * count, so results are bit-identical) and then combine them in order. */
#define RBLOCKS 64
/* Reductions over one dimension handle this many neighbouring outputs per
 * task, walking memory in order. */
#define RWIDTH 64

static int64_t shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

/* ---- Elementwise engine ---- */

/* What one elementwise pass computes: a binary op of a and b, or a unary
 * op of a. */
typedef struct elem_op {
  int unary;
  nn_binop bop;
  nn_unop uop;
} elem_op;

/* o[i*so] = a[i*sa] op b[i*sb] for i < n. */
static void binop_row(nn_binop op, float *o, int64_t so, const float *a,
                      int64_t sa, const float *b, int64_t sb, int64_t n) {
  switch (op) {
    case NN_ADD:
      for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] + b[i * sb];
      break;
    case NN_SUB:
      for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] - b[i * sb];
      break;
    case NN_MUL:
      for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] * b[i * sb];
      break;
    case NN_DIV:
      for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] / b[i * sb];
      break;
  }
}

/* o[i*so] = op(a[i*sa]) for i < n. */
static void unop_row(nn_unop op, float *o, int64_t so, const float *a,
                     int64_t sa, int64_t n) {
  switch (op) {
    case NN_EXP:
      for (int64_t i = 0; i < n; i++) o[i * so] = expf(a[i * sa]);
      break;
    case NN_LOG:
      for (int64_t i = 0; i < n; i++) o[i * so] = logf(a[i * sa]);
      break;
    case NN_SQRT:
      for (int64_t i = 0; i < n; i++) o[i * so] = sqrtf(a[i * sa]);
      break;
    case NN_ABS:
      for (int64_t i = 0; i < n; i++) o[i * so] = fabsf(a[i * sa]);
      break;
    case NN_NEG:
      for (int64_t i = 0; i < n; i++) o[i * so] = -a[i * sa];
      break;
  }
}

/* Applies op over an nd-dimensional index space of the given shape.  Each
 * operand is a base pointer with one stride per dimension (0 where it is
 * broadcast); b is ignored for unary ops.  Work is split into (row, chunk)
 * tasks, each element being computed by exactly one task. */
static void elementwise(nn_ctx *ctx, elem_op op, int nd, const int64_t *shape,
                        float *o, const int64_t *os, const float *a,
                        const int64_t *as, const float *b, const int64_t *bs) {
  static const int64_t one = 1, zero = 0;
  if (nd == 0) { /* a single element */
    nd = 1;
    shape = os = &one;
    as = bs = &zero;
  }
  int64_t numel = shape_numel(nd, shape);
  if (numel == 0) return;
  int last = nd - 1;
  int64_t n = shape[last], rows = numel / n;
  int64_t nchunk = (n + CHUNK - 1) / CHUNK, tasks = rows * nchunk;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (numel >= PAR_MIN && tasks > 1)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t r = t / nchunk, lo = (t % nchunk) * CHUNK;
    int64_t len = n - lo < CHUNK ? n - lo : CHUNK;
    int64_t oo = lo * os[last], ao = lo * as[last], bo = lo * bs[last];
    for (int d = last - 1; d >= 0; d--) {
      int64_t i = r % shape[d];
      r /= shape[d];
      oo += i * os[d];
      ao += i * as[d];
      bo += i * bs[d];
    }
    if (op.unary)
      unop_row(op.uop, o + oo, os[last], a + ao, as[last], len);
    else
      binop_row(op.bop, o + oo, os[last], a + ao, as[last], b + bo, bs[last],
                len);
  }
}

/* Strides of t laid over an nd-dimensional broadcast shape (aligned from
 * the right): 0 where t lacks the dimension or has size 1 there. */
static void broadcast_strides(const nn_tensor *t, int nd, int64_t *st) {
  int lead = nd - t->ndim;
  for (int d = 0; d < nd; d++) {
    int k = d - lead;
    st[d] = (k < 0 || t->shape[k] == 1) ? 0 : t->stride[k];
  }
}

/* The broadcast shape of a and b, or -1 with err. */
static int broadcast_shape(const nn_tensor *a, const nn_tensor *b, int *nd,
                           int64_t *shape, nn_error *err) {
  int n = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int d = 0; d < n; d++) {
    int ka = d - (n - a->ndim), kb = d - (n - b->ndim);
    int64_t sa = ka < 0 ? 1 : a->shape[ka], sb = kb < 0 ? 1 : b->shape[kb];
    if (sa == sb || sb == 1) {
      shape[d] = sa;
    } else if (sa == 1) {
      shape[d] = sb;
    } else {
      char x[160], y[160];
      nn_tensor_shape_str(a, x, sizeof x);
      nn_tensor_shape_str(b, y, sizeof y);
      return nn_seterr(err, "shapes %s and %s do not match", x, y);
    }
  }
  *nd = n;
  return 0;
}

nn_tensor *nn_tensor_binop(nn_ctx *ctx, nn_binop op, const nn_tensor *a,
                           const nn_tensor *b, nn_error *err) {
  int nd = 0;
  int64_t shape[NN_MAX_DIMS], as[NN_MAX_DIMS], bs[NN_MAX_DIMS];
  if (broadcast_shape(a, b, &nd, shape, err) != 0) return NULL;
  nn_tensor *out = nn_tensor_empty(nd, shape, err);
  if (!out) return NULL;
  elem_op e = {0, op, NN_EXP};
  if (nn_tensor_same_shape(a, b) && nn_tensor_is_contiguous(a) &&
      nn_tensor_is_contiguous(b)) {
    int64_t n = nn_tensor_numel(out), unit = 1;
    elementwise(ctx, e, 1, &n, nn_data(out), &unit, nn_data(a), &unit,
                nn_data(b), &unit);
  } else {
    broadcast_strides(a, nd, as);
    broadcast_strides(b, nd, bs);
    elementwise(ctx, e, nd, shape, nn_data(out), out->stride, nn_data(a), as,
                nn_data(b), bs);
  }
  return out;
}

/* out = a op s (scalar_first = 0) or s op a (scalar_first = 1). */
static nn_tensor *scalar_op(nn_ctx *ctx, nn_binop op, const nn_tensor *a,
                            float s, int scalar_first, nn_error *err) {
  int64_t as[NN_MAX_DIMS], zeros[NN_MAX_DIMS] = {0};
  nn_tensor *out = nn_tensor_empty(a->ndim, a->shape, err);
  if (!out) return NULL;
  elem_op e = {0, op, NN_EXP};
  broadcast_strides(a, a->ndim, as);
  if (scalar_first)
    elementwise(ctx, e, a->ndim, a->shape, nn_data(out), out->stride, &s,
                zeros, nn_data(a), as);
  else
    elementwise(ctx, e, a->ndim, a->shape, nn_data(out), out->stride,
                nn_data(a), as, &s, zeros);
  return out;
}

nn_tensor *nn_tensor_binop_scalar(nn_ctx *ctx, nn_binop op, const nn_tensor *a,
                                  float s, nn_error *err) {
  return scalar_op(ctx, op, a, s, 0, err);
}

nn_tensor *nn_tensor_scalar_binop(nn_ctx *ctx, nn_binop op, float s,
                                  const nn_tensor *b, nn_error *err) {
  return scalar_op(ctx, op, b, s, 1, err);
}

int nn_tensor_binop_(nn_ctx *ctx, nn_binop op, nn_tensor *a, const nn_tensor *b,
                     nn_error *err) {
  nn_tensor_touch(a);
  int ok = b->ndim <= a->ndim;
  for (int k = 0; ok && k < b->ndim; k++) {
    int64_t sb = b->shape[k], sa = a->shape[k + a->ndim - b->ndim];
    ok = sb == sa || sb == 1;
  }
  if (!ok) {
    char x[160], y[160];
    nn_tensor_shape_str(b, x, sizeof x);
    nn_tensor_shape_str(a, y, sizeof y);
    return nn_seterr(err, "shape %s cannot be broadcast to %s", x, y);
  }
  /* A different view of the same storage may overlap a: read a copy. */
  nn_tensor *tmp = NULL;
  if (b != a && b->storage == a->storage) {
    tmp = nn_tensor_clone(b, err);
    if (!tmp) return -1;
    b = tmp;
  }
  int64_t as[NN_MAX_DIMS], bs[NN_MAX_DIMS];
  broadcast_strides(a, a->ndim, as);
  broadcast_strides(b, a->ndim, bs);
  elem_op e = {0, op, NN_EXP};
  elementwise(ctx, e, a->ndim, a->shape, nn_data(a), a->stride, nn_data(a),
              as, nn_data(b), bs);
  nn_tensor_release(tmp);
  return 0;
}

void nn_tensor_binop_scalar_(nn_ctx *ctx, nn_binop op, nn_tensor *a, float s) {
  nn_tensor_touch(a);
  int64_t as[NN_MAX_DIMS], zeros[NN_MAX_DIMS] = {0};
  broadcast_strides(a, a->ndim, as);
  elem_op e = {0, op, NN_EXP};
  elementwise(ctx, e, a->ndim, a->shape, nn_data(a), a->stride, nn_data(a), as,
              &s, zeros);
}

nn_tensor *nn_tensor_unop(nn_ctx *ctx, nn_unop op, const nn_tensor *a,
                          nn_error *err) {
  int64_t as[NN_MAX_DIMS];
  nn_tensor *out = nn_tensor_empty(a->ndim, a->shape, err);
  if (!out) return NULL;
  elem_op e = {1, NN_ADD, op};
  broadcast_strides(a, a->ndim, as);
  elementwise(ctx, e, a->ndim, a->shape, nn_data(out), out->stride, nn_data(a),
              as, nn_data(a), as); /* b unused */
  return out;
}

/* ---- Reductions ---- */

/* Sum of x[0..n) in double, over RBLOCKS fixed blocks combined in order. */
static double sum_floats(nn_ctx *ctx, const float *x, int64_t n) {
  double part[RBLOCKS];
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n >= PAR_MIN)
  for (int blk = 0; blk < RBLOCKS; blk++) {
    int64_t lo = n * blk / RBLOCKS, hi = n * (blk + 1) / RBLOCKS;
    double s = 0.0;
    for (int64_t i = lo; i < hi; i++) s += x[i];
    part[blk] = s;
  }
  double s = 0.0;
  for (int blk = 0; blk < RBLOCKS; blk++) s += part[blk];
  return s;
}

/* A 0-dim tensor holding v. */
static nn_tensor *scalar_tensor(float v, nn_error *err) {
  nn_tensor *t = nn_tensor_empty(0, NULL, err);
  if (t) *nn_data(t) = v;
  return t;
}

/* Sum (mean = 0) or mean (mean = 1) of all elements. */
static nn_tensor *reduce_all(nn_ctx *ctx, nn_tensor *a, int mean,
                             nn_error *err) {
  nn_tensor *c = nn_tensor_contiguous(a, err);
  if (!c) return NULL;
  int64_t n = nn_tensor_numel(c);
  double s = sum_floats(ctx, nn_data(c), n);
  nn_tensor_release(c);
  return scalar_tensor((float)(mean ? s / (double)n : s), err);
}

nn_tensor *nn_tensor_sum(nn_ctx *ctx, nn_tensor *a, nn_error *err) {
  return reduce_all(ctx, a, 0, err);
}

nn_tensor *nn_tensor_mean(nn_ctx *ctx, nn_tensor *a, nn_error *err) {
  return reduce_all(ctx, a, 1, err);
}

/* The view of a as [outer, n, inner] around dimension dim, and the shape
 * of the result of reducing dim (ndim and shape).  -1 on a bad dim. */
static int reduce_layout(const nn_tensor *a, int dim, int keepdim,
                         int64_t *outer, int64_t *n, int64_t *inner,
                         int *ndim, int64_t *shape, nn_error *err) {
  if (a->ndim == 0 ? dim != 0 : (dim < 0 || dim >= a->ndim))
    return nn_seterr(err, "dimension %d out of range (tensor has %d)",
                     dim + 1, a->ndim);
  *outer = *inner = *n = 1;
  *ndim = 0;
  for (int d = 0; d < a->ndim; d++) {
    if (d < dim) *outer *= a->shape[d];
    if (d > dim) *inner *= a->shape[d];
    if (d == dim) *n = a->shape[d];
    if (d != dim)
      shape[(*ndim)++] = a->shape[d];
    else if (keepdim)
      shape[(*ndim)++] = 1;
  }
  return 0;
}

/* Sum or mean over dim: tasks of up to RWIDTH adjacent outputs, each
 * accumulating its rows in order in double. */
static nn_tensor *reduce_dim(nn_ctx *ctx, nn_tensor *a, int dim, int keepdim,
                             int mean, nn_error *err) {
  int64_t outer, n, inner, shape[NN_MAX_DIMS];
  int nd = 0;
  if (reduce_layout(a, dim, keepdim, &outer, &n, &inner, &nd, shape, err))
    return NULL;
  nn_tensor *out = nn_tensor_empty(nd, shape, err);
  if (!out) return NULL;
  nn_tensor *c = nn_tensor_contiguous(a, err);
  if (!c) {
    nn_tensor_release(out);
    return NULL;
  }
  const float *x = nn_data(c);
  float *y = nn_data(out);
  int64_t nblk = (inner + RWIDTH - 1) / RWIDTH, tasks = outer * nblk;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (outer * n * inner >= PAR_MIN)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t o = t / nblk, lo = (t % nblk) * RWIDTH;
    int64_t w = inner - lo < RWIDTH ? inner - lo : RWIDTH;
    double acc[RWIDTH] = {0};
    for (int64_t k = 0; k < n; k++) {
      const float *row = x + (o * n + k) * inner + lo;
      for (int64_t i = 0; i < w; i++) acc[i] += row[i];
    }
    for (int64_t i = 0; i < w; i++)
      y[o * inner + lo + i] = (float)(mean ? acc[i] / (double)n : acc[i]);
  }
  nn_tensor_release(c);
  return out;
}

nn_tensor *nn_tensor_sum_dim(nn_ctx *ctx, nn_tensor *a, int dim, int keepdim,
                             nn_error *err) {
  return reduce_dim(ctx, a, dim, keepdim, 0, err);
}

nn_tensor *nn_tensor_mean_dim(nn_ctx *ctx, nn_tensor *a, int dim, int keepdim,
                              nn_error *err) {
  return reduce_dim(ctx, a, dim, keepdim, 1, err);
}

/* 1 if v should replace best as the running maximum: larger, or the first
 * NaN (which then stays). */
static inline int beats(float v, float best) {
  return !isnan(best) && (v > best || isnan(v));
}

nn_tensor *nn_tensor_max(nn_ctx *ctx, nn_tensor *a, int64_t *index,
                         nn_error *err) {
  int64_t n = nn_tensor_numel(a);
  if (n == 0) {
    nn_seterr(err, "cannot take the max of an empty tensor");
    return NULL;
  }
  nn_tensor *c = nn_tensor_contiguous(a, err);
  if (!c) return NULL;
  const float *x = nn_data(c);
  float best[RBLOCKS];
  int64_t where[RBLOCKS];
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n >= PAR_MIN)
  for (int blk = 0; blk < RBLOCKS; blk++) {
    int64_t lo = n * blk / RBLOCKS, hi = n * (blk + 1) / RBLOCKS;
    where[blk] = -1;
    if (lo >= hi) continue;
    float b = x[lo];
    int64_t w = lo;
    for (int64_t i = lo + 1; i < hi; i++)
      if (beats(x[i], b)) {
        b = x[i];
        w = i;
      }
    best[blk] = b;
    where[blk] = w;
  }
  float b = 0.0f;
  int64_t w = -1;
  for (int blk = 0; blk < RBLOCKS; blk++) {
    if (where[blk] < 0) continue;
    if (w < 0 || beats(best[blk], b)) {
      b = best[blk];
      w = where[blk];
    }
  }
  nn_tensor_release(c);
  if (index) *index = w;
  return scalar_tensor(b, err);
}

int nn_tensor_max_dim(nn_ctx *ctx, nn_tensor *a, int dim, int keepdim,
                      nn_tensor **values, nn_tensor **indices, nn_error *err) {
  int64_t outer, n, inner, shape[NN_MAX_DIMS];
  int nd = 0;
  *values = NULL;
  if (indices) *indices = NULL;
  if (reduce_layout(a, dim, keepdim, &outer, &n, &inner, &nd, shape, err))
    return -1;
  if (n == 0)
    return nn_seterr(err,
                     "cannot take the max over dimension %d, which has size 0",
                     dim + 1);
  nn_tensor *v = nn_tensor_empty(nd, shape, err);
  nn_tensor *ix = v ? nn_tensor_empty(nd, shape, err) : NULL;
  nn_tensor *c = ix ? nn_tensor_contiguous(a, err) : NULL;
  if (!c) {
    nn_tensor_release(v);
    nn_tensor_release(ix);
    return -1;
  }
  const float *x = nn_data(c);
  float *yv = nn_data(v), *yi = nn_data(ix);
  int64_t nblk = (inner + RWIDTH - 1) / RWIDTH, tasks = outer * nblk;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (outer * n * inner >= PAR_MIN)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t o = t / nblk, lo = (t % nblk) * RWIDTH;
    int64_t w = inner - lo < RWIDTH ? inner - lo : RWIDTH;
    float best[RWIDTH];
    int64_t arg[RWIDTH];
    const float *base = x + o * n * inner + lo;
    for (int64_t i = 0; i < w; i++) {
      best[i] = base[i];
      arg[i] = 0;
    }
    for (int64_t k = 1; k < n; k++) {
      const float *row = base + k * inner;
      for (int64_t i = 0; i < w; i++)
        if (beats(row[i], best[i])) {
          best[i] = row[i];
          arg[i] = k;
        }
    }
    for (int64_t i = 0; i < w; i++) {
      yv[o * inner + lo + i] = best[i];
      yi[o * inner + lo + i] = (float)arg[i];
    }
  }
  nn_tensor_release(c);
  *values = v;
  if (indices)
    *indices = ix;
  else
    nn_tensor_release(ix);
  return 0;
}

nn_tensor *nn_tensor_argmax_dim(nn_ctx *ctx, nn_tensor *a, int dim,
                                int keepdim, nn_error *err) {
  nn_tensor *v, *ix;
  if (nn_tensor_max_dim(ctx, a, dim, keepdim, &v, &ix, err) != 0) return NULL;
  nn_tensor_release(v);
  return ix;
}

/* ---- Matrix product ---- */

/* Sets "shapes [2, 3] and [4, 5] cannot be multiplied (why)"; NULL. */
static nn_tensor *matmul_error(const nn_tensor *a, const nn_tensor *b,
                               const char *why, nn_error *err) {
  char x[160], y[160];
  nn_tensor_shape_str(a, x, sizeof x);
  nn_tensor_shape_str(b, y, sizeof y);
  nn_seterr(err, "shapes %s and %s cannot be multiplied (%s)", x, y, why);
  return NULL;
}

/* Batch offset, in floats, of matrix number bi of the broadcast batch
 * shape bshape[0..bnd) in t (a contiguous stack of mat-float matrices). */
static int64_t batch_offset(const nn_tensor *t, int bnd, const int64_t *bshape,
                            int64_t bi, int64_t mat) {
  int tb = t->ndim - 2; /* t's own batch dimensions */
  int64_t off = 0, step = mat;
  for (int d = bnd - 1; d >= 0; d--) {
    int64_t i = bi % bshape[d];
    bi /= bshape[d];
    int k = d - (bnd - tb);
    if (k < 0) continue;
    if (t->shape[k] != 1) off += i * step;
    step *= t->shape[k];
  }
  return off;
}

nn_tensor *nn_tensor_matmul(nn_ctx *ctx, nn_tensor *a, nn_tensor *b,
                            nn_error *err) {
  char why[128];
  if (a->ndim == 0 || b->ndim == 0)
    return matmul_error(a, b, "both need at least 1 dimension", err);
  int64_t M = a->ndim >= 2 ? a->shape[a->ndim - 2] : 1;
  int64_t K = a->shape[a->ndim - 1];
  int64_t Kb = b->ndim >= 2 ? b->shape[b->ndim - 2] : b->shape[0];
  int64_t N = b->ndim >= 2 ? b->shape[b->ndim - 1] : 1;
  if (K != Kb) {
    snprintf(why, sizeof why, "inner sizes %lld and %lld differ",
             (long long)K, (long long)Kb);
    return matmul_error(a, b, why, err);
  }
  if (M > INT_MAX || N > INT_MAX || K > INT_MAX)
    return matmul_error(a, b, "too large for BLAS", err);
  /* Batch dimensions, broadcast from the right. */
  int abn = a->ndim > 2 ? a->ndim - 2 : 0, bbn = b->ndim > 2 ? b->ndim - 2 : 0;
  int bnd = abn > bbn ? abn : bbn, nd = 0;
  int64_t shape[NN_MAX_DIMS];
  for (int d = 0; d < bnd; d++) {
    int ka = d - (bnd - abn), kb = d - (bnd - bbn);
    int64_t sa = ka < 0 ? 1 : a->shape[ka], sb = kb < 0 ? 1 : b->shape[kb];
    if (sa != sb && sa != 1 && sb != 1)
      return matmul_error(a, b, "batch dimensions do not match", err);
    shape[nd++] = sa == 1 ? sb : sa;
  }
  int64_t batches = shape_numel(bnd, shape);
  if (a->ndim >= 2) shape[nd++] = M;
  if (b->ndim >= 2) shape[nd++] = N;
  nn_tensor *out = nn_tensor_new(nd, shape, err);
  if (!out || batches == 0 || M == 0 || N == 0 || K == 0) return out;
  nn_tensor *ac = nn_tensor_contiguous(a, err);
  nn_tensor *bc = ac ? nn_tensor_contiguous(b, err) : NULL;
  if (!bc) {
    nn_tensor_release(ac);
    nn_tensor_release(out);
    return NULL;
  }
  const float *A = nn_data(ac), *B = nn_data(bc);
  float *C = nn_data(out);
  if (bbn == 0 && (double)batches * (double)M <= INT_MAX) {
    /* b is one matrix: a's batches stack into the rows of one product. */
    nn_gemm(ctx->num_threads, 0, 0, batches * M, N, K, 1.0f, A, K, B, N, 0.0f,
            C, N);
  } else {
    for (int64_t bi = 0; bi < batches; bi++) {
      const float *Ab = A + (abn ? batch_offset(ac, bnd, shape, bi, M * K) : 0);
      const float *Bb = B + (bbn ? batch_offset(bc, bnd, shape, bi, K * N) : 0);
      nn_gemm(ctx->num_threads, 0, 0, M, N, K, 1.0f, Ab, K, Bb, N, 0.0f,
              C + bi * M * N, N);
    }
  }
  nn_tensor_release(ac);
  nn_tensor_release(bc);
  return out;
}

/* ---- Construction and random fills ---- */

nn_tensor *nn_tensor_arange(double start, double end, double step,
                            nn_error *err) {
  if (!isfinite(start) || !isfinite(end) || !isfinite(step)) {
    nn_seterr(err, "arange bounds and step must be finite");
    return NULL;
  }
  if (step == 0) {
    nn_seterr(err, "arange step must be nonzero");
    return NULL;
  }
  if ((step > 0 && end < start) || (step < 0 && end > start)) {
    nn_seterr(err, "arange from %g to %g cannot advance by step %g", start,
              end, step);
    return NULL;
  }
  double count = ceil((end - start) / step);
  if (!(count <= (double)NN_MAX_NUMEL)) {
    nn_seterr(err, "arange of %.0f elements is too large to allocate", count);
    return NULL;
  }
  int64_t n = (int64_t)count;
  nn_tensor *t = nn_tensor_empty(1, &n, err);
  if (!t) return NULL;
  float *x = nn_data(t);
  for (int64_t i = 0; i < n; i++) x[i] = (float)(start + (double)i * step);
  return t;
}

/* Fills t with draws (uniform if normal == 0), through a contiguous
 * temporary when t is a strided view. */
static int random_fill(nn_ctx *ctx, nn_tensor *t, int normal, float p, float q,
                       nn_error *err) {
  nn_tensor *dst = t;
  if (!nn_tensor_is_contiguous(t)) {
    dst = nn_tensor_empty(t->ndim, t->shape, err);
    if (!dst) return -1;
  }
  int64_t n = nn_tensor_numel(t);
  if (normal)
    nn_fill_normal(ctx, nn_data(dst), n, p, q);
  else
    nn_fill_uniform(ctx, nn_data(dst), n, p, q);
  int r = 0;
  if (dst != t) {
    r = nn_tensor_copy_(t, dst, err);
    nn_tensor_release(dst);
  }
  return r;
}

int nn_tensor_uniform_(nn_ctx *ctx, nn_tensor *t, float lo, float hi,
                       nn_error *err) {
  nn_tensor_touch(t);
  return random_fill(ctx, t, 0, lo, hi, err);
}

int nn_tensor_normal_(nn_ctx *ctx, nn_tensor *t, float mean, float std,
                      nn_error *err) {
  nn_tensor_touch(t);
  return random_fill(ctx, t, 1, mean, std, err);
}
