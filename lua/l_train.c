/*
 * l_train.c - small C helpers of the training loop (core.train): counting
 * correct predictions, checking for non-finite values, and whether an
 * output stream is a terminal (for the live progress line).
 */
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "binding.h"

/* The 0-based column of the first maximum of row i of out [N, C] (NaN counts
 * as the maximum, as torch.argmax). */
static int64_t row_argmax(const nn_tensor *out, int64_t i) {
  int64_t c = out->shape[1], best = 0;
  float bv = -INFINITY;
  for (int64_t j = 0; j < c; j++) {
    float v = nn_data(out)[nn_tensor_elem_offset(out, i * c + j)];
    if (v > bv || (isnan(v) && !isnan(bv))) {
      bv = v;
      best = j;
    }
  }
  return best;
}

/* count_correct(logits [N, C], labels [N] 1-based) -> number of rows whose
 * first maximum is at the label. */
static int l_count_correct(lua_State *L) {
  nn_tensor *out = l_checktensor(L, 1);
  nn_tensor *y = l_checktensor(L, 2);
  if (out->ndim != 2 || y->ndim != 1 || y->shape[0] != out->shape[0]) {
    char a[128], b[128];
    nn_tensor_shape_str(out, a, sizeof a);
    nn_tensor_shape_str(y, b, sizeof b);
    return luaL_error(L,
                      "count_correct: expected output [N, C] and labels [N], "
                      "got %s and %s",
                      a, b);
  }
  int64_t correct = 0;
  for (int64_t i = 0; i < out->shape[0]; i++) {
    float label = nn_data(y)[nn_tensor_elem_offset(y, i)];
    if ((float)(row_argmax(out, i) + 1) == label) correct++;
  }
  lua_pushinteger(L, (lua_Integer)correct);
  return 1;
}

/* predictions(logits [N, C]) -> tensor [N] of 1-based argmax per row. */
static int l_predictions(lua_State *L) {
  nn_tensor *out = l_checktensor(L, 1);
  if (out->ndim != 2) {
    char a[128];
    nn_tensor_shape_str(out, a, sizeof a);
    return luaL_error(L, "predictions: expected output [N, C], got %s", a);
  }
  nn_error err;
  int64_t n = out->shape[0];
  nn_tensor *p = nn_tensor_new(1, &n, &err);
  if (!p) return l_raise(L, "predictions", &err);
  for (int64_t i = 0; i < n; i++) nn_data(p)[i] = (float)(row_argmax(out, i) + 1);
  l_pushtensor(L, p);
  return 1;
}

/* all_finite(t) -> true when no element is NaN or infinite. */
static int l_all_finite(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  int64_t n = nn_tensor_numel(t);
  int ok = 1;
  for (int64_t i = 0; i < n && ok; i++)
    ok = isfinite(nn_data(t)[nn_tensor_elem_offset(t, i)]);
  lua_pushboolean(L, ok);
  return 1;
}

/* sumsq(t) -> the sum of the squares of t's elements (double accumulation),
 * for gradient norms. */
static int l_sumsq(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  int64_t n = nn_tensor_numel(t);
  double s = 0;
  if (nn_tensor_is_contiguous(t)) {
    const float *d = nn_data(t);
    for (int64_t i = 0; i < n; i++) s += (double)d[i] * d[i];
  } else {
    for (int64_t i = 0; i < n; i++) {
      double v = nn_data(t)[nn_tensor_elem_offset(t, i)];
      s += v * v;
    }
  }
  lua_pushnumber(L, s);
  return 1;
}

/* isatty(fd) -> true when file descriptor fd (1 = stdout) is a terminal. */
static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 1)));
  return 1;
}

static const luaL_Reg train_fns[] = {{"count_correct", l_count_correct},
                                     {"predictions", l_predictions},
                                     {"all_finite", l_all_finite},
                                     {"isatty", l_isatty},
                                     {"sumsq", l_sumsq},
                                     {NULL, NULL}};

void l_open_train(lua_State *L, int t, int ctx) {
  t = lua_absindex(L, t);
  lua_newtable(L);
  l_register(L, -1, ctx, train_fns);
  lua_setfield(L, t, "train");
}
