/*
 * tensor_ops.h - tensor math: elementwise arithmetic with broadcasting,
 * unary functions, reductions, matmul, arange and random fills.
 *
 * Every function honours strided views.  Functions returning nn_tensor* give
 * a new contiguous tensor (an owned reference) or NULL with a message in err;
 * in-place functions (trailing underscore) return 0 or -1 with err.  Inputs
 * are borrowed.  Dimensions are 0-based here; messages name them 1-based, as
 * the Lua API does.  Loops run on ctx->num_threads OpenMP threads and give
 * the same bits whatever the thread count.
 */
#ifndef NN_TENSOR_OPS_H
#define NN_TENSOR_OPS_H

#include "context.h"
#include "tensor.h"

typedef enum nn_binop { NN_ADD, NN_SUB, NN_MUL, NN_DIV } nn_binop;
typedef enum nn_unop { NN_EXP, NN_LOG, NN_SQRT, NN_ABS, NN_NEG } nn_unop;

/* a op b with PyTorch broadcasting (shapes aligned from the right; a size 1
 * stretches).  Fails with "shapes [2, 3] and [3, 2] do not match". */
nn_tensor *nn_tensor_binop(nn_ctx *ctx, nn_binop op, const nn_tensor *a,
                           const nn_tensor *b, nn_error *err);
/* a op s and s op b with a number s; fail only when out of memory. */
nn_tensor *nn_tensor_binop_scalar(nn_ctx *ctx, nn_binop op, const nn_tensor *a,
                                  float s, nn_error *err);
nn_tensor *nn_tensor_scalar_binop(nn_ctx *ctx, nn_binop op, float s,
                                  const nn_tensor *b, nn_error *err);
/* In place: a = a op b, where b broadcasts to a's shape (b may share a's
 * storage).  Fails with "shape [3] cannot be broadcast to [2]". */
int nn_tensor_binop_(nn_ctx *ctx, nn_binop op, nn_tensor *a, const nn_tensor *b,
                     nn_error *err);
/* In place: a = a op s. */
void nn_tensor_binop_scalar_(nn_ctx *ctx, nn_binop op, nn_tensor *a, float s);

/* exp, log, sqrt, abs or negation of every element (NaN/inf as in C). */
nn_tensor *nn_tensor_unop(nn_ctx *ctx, nn_unop op, const nn_tensor *a,
                          nn_error *err);

/* Sum / mean of all elements, accumulated in double, as a 0-dim tensor.
 * The mean of an empty tensor is NaN. */
nn_tensor *nn_tensor_sum(nn_ctx *ctx, nn_tensor *a, nn_error *err);
nn_tensor *nn_tensor_mean(nn_ctx *ctx, nn_tensor *a, nn_error *err);
/* Sum / mean over dimension dim: the result drops that dimension, or keeps
 * it with size 1 when keepdim (torch.sum(dim, keepdim)).  A 0-dim tensor is
 * treated as shape [1].  Fails on a bad dim. */
nn_tensor *nn_tensor_sum_dim(nn_ctx *ctx, nn_tensor *a, int dim, int keepdim,
                             nn_error *err);
nn_tensor *nn_tensor_mean_dim(nn_ctx *ctx, nn_tensor *a, int dim, int keepdim,
                              nn_error *err);

/* Largest element as a 0-dim tensor; *index (if not NULL) receives the
 * 0-based row-major position of its first occurrence.  NaN wins, as in
 * torch.  Fails on an empty tensor. */
nn_tensor *nn_tensor_max(nn_ctx *ctx, nn_tensor *a, int64_t *index,
                         nn_error *err);
/* Max over dimension dim: *values and *indices (0-based positions of the
 * first maximum, stored as floats) get new tensors of the reduced shape.
 * indices may be NULL.  Fails on a bad dim or a dimension of size 0. */
int nn_tensor_max_dim(nn_ctx *ctx, nn_tensor *a, int dim, int keepdim,
                      nn_tensor **values, nn_tensor **indices, nn_error *err);
/* Just the 0-based indices of nn_tensor_max_dim. */
nn_tensor *nn_tensor_argmax_dim(nn_ctx *ctx, nn_tensor *a, int dim,
                                int keepdim, nn_error *err);

/* torch.matmul: [M, K] x [K, N] -> [M, N]; a 1-D first argument [K] is a row
 * vector and a 1-D second argument a column vector whose dimension is
 * dropped from the result ([K] x [K] -> 0-dim).  Leading batch dimensions
 * broadcast.  Fails naming both shapes when they cannot be multiplied. */
nn_tensor *nn_tensor_matmul(nn_ctx *ctx, nn_tensor *a, nn_tensor *b,
                            nn_error *err);

/* 1-D tensor start, start + step, ... below end (above, for step < 0), as
 * torch.arange.  Fails on step 0, a step of the wrong sign, non-finite
 * bounds, or a too large result. */
nn_tensor *nn_tensor_arange(double start, double end, double step,
                            nn_error *err);

/* In place: U(lo, hi) / N(mean, std) draws from ctx's generator (one key per
 * call, element i of the row-major order gets draw i).  Fails only when a
 * strided view needs a temporary and memory runs out. */
int nn_tensor_uniform_(nn_ctx *ctx, nn_tensor *t, float lo, float hi,
                       nn_error *err);
int nn_tensor_normal_(nn_ctx *ctx, nn_tensor *t, float mean, float std,
                      nn_error *err);

#endif
