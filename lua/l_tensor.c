/*
 * l_tensor.c - tensors in Lua: the constructors of the core table
 * (nn.tensor, nn.zeros, ...) and the methods and metamethods of nn.Tensor.
 *
 * Sizes, dimensions and indices are 1-based here (a negative dimension
 * counts from the end, as in PyTorch); the runtime below is 0-based.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../runtime/tensor_ops.h"
#include "binding.h"

/* ---- Helpers ---- */

/* Pushes t (owned), or raises err (prefixed with what) when t is NULL. */
static int push_result(lua_State *L, nn_tensor *t, const char *what,
                       const nn_error *err) {
  if (!t) return l_raise(L, what, err);
  l_pushtensor(L, t);
  return 1;
}

/* The tensor at index i, NULL when it is not one; raises on a freed one. */
static nn_tensor *test_tensor(lua_State *L, int i) {
  nn_tensor **box = luaL_testudata(L, i, NN_TENSOR_MT);
  if (!box) return NULL;
  if (!*box) luaL_argerror(L, i, "tensor has been freed");
  return *box;
}

/* A 1-based dimension argument (negative counts from the end) of a tensor
 * with ndim dimensions, returned 0-based. */
static int check_dim(lua_State *L, int arg, int ndim) {
  lua_Integer d = luaL_checkinteger(L, arg);
  lua_Integer k = d < 0 ? d + ndim + 1 : d;
  if (k < 1 || k > ndim)
    luaL_argerror(L, arg,
                  lua_pushfstring(L,
                                  "dimension %I out of range for a tensor "
                                  "with %d dimensions",
                                  (LUAI_UACINT)d, ndim));
  return (int)(k - 1);
}

/* An optional boolean argument. */
static int opt_bool(lua_State *L, int arg, int def) {
  if (lua_isnoneornil(L, arg)) return def;
  luaL_checktype(L, arg, LUA_TBOOLEAN);
  return lua_toboolean(L, arg);
}

/* Returns self (argument 1), as every in-place method does. */
static int return_self(lua_State *L) {
  lua_settop(L, 1);
  return 1;
}

/* ---- Constructors ---- */

/* Formats the position "[2][1]" of an entry of a nested table. */
static const char *entry_name(lua_State *L, const lua_Integer *pos, int n) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; i < n; i++) {
    char s[32];
    snprintf(s, sizeof s, "[%lld]", (long long)pos[i]);
    luaL_addstring(&b, s);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Copies the nested table at the top of the stack, level lvl of a tensor of
 * the given shape, into *x (advancing it), checking that it is rectangular
 * and holds numbers.  Errors name the bad entry of argument 1. */
static void fill_nested(lua_State *L, int lvl, int nd, const int64_t *shape,
                        float **x, lua_Integer *pos) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  if (n != shape[lvl]) {
    const char *where = entry_name(L, pos, lvl);
    luaL_argerror(L, 1,
                  lua_pushfstring(L, "entry %s has length %I, expected %I",
                                  where, (LUAI_UACINT)n,
                                  (LUAI_UACINT)shape[lvl]));
  }
  for (lua_Integer i = 1; i <= n; i++) {
    pos[lvl] = i;
    int ty = lua_rawgeti(L, -1, i);
    if (lvl == nd - 1 ? ty != LUA_TNUMBER : ty != LUA_TTABLE) {
      const char *tname = luaL_typename(L, -1);
      const char *where = entry_name(L, pos, lvl + 1);
      luaL_argerror(L, 1,
                    lua_pushfstring(L, "entry %s must be a %s, got %s", where,
                                    lvl == nd - 1 ? "number" : "table",
                                    tname));
    }
    if (lvl == nd - 1)
      *(*x)++ = (float)lua_tonumber(L, -1);
    else
      fill_nested(L, lvl + 1, nd, shape, x, pos);
    lua_pop(L, 1);
  }
}

/* nn.tensor(data): a tensor from nested tables of numbers (shape from the
 * nesting), from a number (0-dim), or a copy of a tensor. */
static int l_tensor_new(lua_State *L) {
  nn_error err;
  nn_tensor *src = test_tensor(L, 1);
  if (src) return push_result(L, nn_tensor_clone(src, &err), NULL, &err);
  if (lua_type(L, 1) == LUA_TNUMBER) {
    nn_tensor *t = nn_tensor_empty(0, NULL, &err);
    if (t) *nn_data(t) = (float)lua_tonumber(L, 1);
    return push_result(L, t, NULL, &err);
  }
  if (lua_type(L, 1) != LUA_TTABLE)
    return luaL_typeerror(L, 1, "table, number or nn.Tensor");
  /* The shape: lengths along the first entry of each level. */
  int64_t shape[NN_MAX_DIMS];
  int nd = 0;
  lua_pushvalue(L, 1);
  while (lua_type(L, -1) == LUA_TTABLE) {
    if (nd == NN_MAX_DIMS)
      luaL_argerror(L, 1,
                    lua_pushfstring(L, "more than %d levels of nesting",
                                    NN_MAX_DIMS));
    shape[nd++] = (int64_t)lua_rawlen(L, -1);
    if (shape[nd - 1] == 0) break;
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  nn_tensor *t = nn_tensor_empty(nd, shape, &err);
  push_result(L, t, NULL, &err); /* owned by Lua before filling */
  float *x = nn_data(t);
  lua_Integer pos[NN_MAX_DIMS];
  luaL_checkstack(L, 2 * NN_MAX_DIMS + 4, NULL);
  lua_pushvalue(L, 1);
  fill_nested(L, 0, nd, shape, &x, pos);
  lua_pop(L, 1);
  return 1;
}

/* A new tensor with the shape given from argument first on (varargs or one
 * table), zero-filled or not, pushed. */
static nn_tensor *push_shaped(lua_State *L, int first, int zero) {
  int64_t shape[NN_MAX_DIMS];
  int nd = l_checkshape(L, first, shape);
  nn_error err;
  nn_tensor *t = zero ? nn_tensor_new(nd, shape, &err)
                      : nn_tensor_empty(nd, shape, &err);
  push_result(L, t, NULL, &err);
  return t;
}

/* nn.zeros(...), nn.ones(...): sizes as varargs or one table. */
static int l_zeros(lua_State *L) {
  push_shaped(L, 1, 1);
  return 1;
}

static int l_ones(lua_State *L) {
  nn_tensor_fill_(push_shaped(L, 1, 0), 1.0f);
  return 1;
}

/* nn.full(sizes, v): sizes is a table. */
static int l_full(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  float v = (float)luaL_checknumber(L, 2);
  lua_settop(L, 1);
  nn_tensor_fill_(push_shaped(L, 1, 0), v);
  return 1;
}

/* nn.rand(...), nn.randn(...): U(0, 1) / N(0, 1) from the context RNG. */
static int l_rand(lua_State *L) {
  nn_tensor *t = push_shaped(L, 1, 0);
  nn_fill_uniform(l_ctx(L), nn_data(t), nn_tensor_numel(t), 0.0f, 1.0f);
  return 1;
}

static int l_randn(lua_State *L) {
  nn_tensor *t = push_shaped(L, 1, 0);
  nn_fill_normal(l_ctx(L), nn_data(t), nn_tensor_numel(t), 0.0f, 1.0f);
  return 1;
}

/* nn.arange(n) -> 0..n-1; nn.arange(start, end [, step]), as torch. */
static int l_arange(lua_State *L) {
  double start = 0.0, end, step = 1.0;
  if (lua_gettop(L) <= 1) {
    end = luaL_checknumber(L, 1);
  } else {
    start = luaL_checknumber(L, 1);
    end = luaL_checknumber(L, 2);
    step = luaL_optnumber(L, 3, 1.0);
  }
  nn_error err;
  return push_result(L, nn_tensor_arange(start, end, step, &err), NULL, &err);
}

/* nn.is_tensor(x) -> boolean. */
static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, NN_TENSOR_MT) != NULL);
  return 1;
}

/* ---- Inspection ---- */

static void push_shape(lua_State *L, const nn_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, (lua_Integer)t->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

/* t:shape() -> {n1, n2, ...}. */
static int l_shape(lua_State *L) {
  push_shape(L, l_checktensor(L, 1));
  return 1;
}

/* t:size([d]) -> size of dimension d, or the shape table. */
static int l_size(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    push_shape(L, t);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)t->shape[check_dim(L, 2, t->ndim)]);
  return 1;
}

static int l_dim(lua_State *L) {
  lua_pushinteger(L, l_checktensor(L, 1)->ndim);
  return 1;
}

static int l_numel(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)nn_tensor_numel(l_checktensor(L, 1)));
  return 1;
}

/* The address of the element named by the 1-based integer arguments from
 * index first on, one per dimension, bounds-checked. */
static float *check_element(lua_State *L, nn_tensor *t, int first) {
  int given = lua_gettop(L) - first + 1;
  if (given != t->ndim)
    luaL_argerror(L, first + (given < t->ndim ? given : t->ndim),
                  lua_pushfstring(L, "expected %d indices, got %d", t->ndim,
                                  given));
  int64_t off = 0;
  for (int d = 0; d < t->ndim; d++) {
    lua_Integer i = luaL_checkinteger(L, first + d);
    if (i < 1 || i > t->shape[d])
      luaL_argerror(L, first + d,
                    lua_pushfstring(L,
                                    "index %I out of range 1..%I in "
                                    "dimension %d",
                                    (LUAI_UACINT)i,
                                    (LUAI_UACINT)t->shape[d], d + 1));
    off += (i - 1) * t->stride[d];
  }
  return nn_data(t) + off;
}

/* t:get(i, j, ...) -> number. */
static int l_get(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  lua_pushnumber(L, *check_element(L, t, 2));
  return 1;
}

/* t:set(v, i, j, ...) -> self. */
static int l_set(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  float v = (float)luaL_checknumber(L, 2);
  *check_element(L, t, 3) = v;
  nn_tensor_touch(t);
  return return_self(L);
}

/* t:item() -> the value of a one-element tensor. */
static int l_item(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  int64_t n = nn_tensor_numel(t);
  if (n != 1) {
    nn_error err;
    nn_seterr(&err, "a tensor with %lld elements cannot be converted to a "
              "number", (long long)n);
    return l_raise(L, "item", &err);
  }
  lua_pushnumber(L, *nn_data(t)); /* its only element */
  return 1;
}

static void push_nested(lua_State *L, const nn_tensor *t, int d,
                        int64_t off) {
  if (d == t->ndim) {
    lua_pushnumber(L, nn_data(t)[off]);
    return;
  }
  int64_t n = t->shape[d];
  lua_createtable(L, n < 1 << 24 ? (int)n : 1 << 24, 0);
  for (int64_t i = 0; i < n; i++) {
    push_nested(L, t, d + 1, off + i * t->stride[d]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* t:totable() -> nested tables of numbers (a number for a 0-dim tensor). */
static int l_totable(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  luaL_checkstack(L, NN_MAX_DIMS + 4, NULL);
  push_nested(L, t, 0, 0);
  return 1;
}

/* ---- Printing, as PyTorch's tensor repr ---- */

#define PRINT_THRESHOLD 1000 /* summarise tensors with more elements */
#define PRINT_EDGE 3         /* elements kept at each end when summarised */
#define PRINT_LINEWIDTH 80

typedef struct formatter {
  int int_mode, sci_mode, width, any;
  double minabs, maxabs;
} formatter;

typedef void (*visit_fn)(formatter *f, double v);

/* Calls fn on every printed element (all, or the edges when summarised). */
static void visit(const nn_tensor *t, int d, int64_t off, int summarize,
                  visit_fn fn, formatter *f) {
  if (d == t->ndim) {
    fn(f, nn_data(t)[off]);
    return;
  }
  int64_t n = t->shape[d];
  for (int64_t i = 0; i < n; i++) {
    if (summarize && n > 2 * PRINT_EDGE && i == PRINT_EDGE) i = n - PRINT_EDGE;
    visit(t, d + 1, off + i * t->stride[d], summarize, fn, f);
  }
}

static void stats_of(formatter *f, double v) {
  if (!isfinite(v) || v == 0) return;
  double a = fabs(v);
  if (!f->any || a < f->minabs) f->minabs = a;
  if (!f->any || a > f->maxabs) f->maxabs = a;
  if (v != ceil(v)) f->int_mode = 0;
  f->any = 1;
}

/* Writes v as the formatter prints it, without padding. */
static int format_raw(const formatter *f, double v, char *buf, size_t n) {
  if (isnan(v)) return snprintf(buf, n, "nan");
  if (f->sci_mode) return snprintf(buf, n, "%.4e", v);
  if (f->int_mode)
    return snprintf(buf, n, isinf(v) ? "%.0f" : "%.0f.", v);
  return snprintf(buf, n, "%.4f", v);
}

static void width_of(formatter *f, double v) {
  char buf[64];
  if (!isfinite(v) || v == 0) return;
  int w = format_raw(f, v, buf, sizeof buf);
  if (w > f->width) f->width = w;
}

/* Appends v right-aligned to the formatter's width. */
static void add_value(luaL_Buffer *b, const formatter *f, double v) {
  char buf[64];
  int w = format_raw(f, v, buf, sizeof buf);
  for (; w < f->width; w++) luaL_addchar(b, ' ');
  luaL_addstring(b, buf);
}

static void add_spaces(luaL_Buffer *b, int n) {
  for (int i = 0; i < n; i++) luaL_addchar(b, ' ');
}

/* The last dimension: elements wrapped to the line width. */
static void add_vector(luaL_Buffer *b, const nn_tensor *t, int64_t off,
                       int indent, int summarize, const formatter *f) {
  int d = t->ndim - 1;
  int64_t n = t->shape[d];
  int per_line = (PRINT_LINEWIDTH - indent) / (f->width + 2);
  if (per_line < 1) per_line = 1;
  int shorten = summarize && n > 2 * PRINT_EDGE;
  int64_t count = shorten ? 2 * PRINT_EDGE + 1 : n;
  luaL_addchar(b, '[');
  for (int64_t k = 0; k < count; k++) {
    if (k > 0) {
      luaL_addchar(b, ',');
      if (k % per_line == 0) {
        luaL_addchar(b, '\n');
        add_spaces(b, indent + 1);
      } else {
        luaL_addchar(b, ' ');
      }
    }
    if (shorten && k == PRINT_EDGE) {
      luaL_addstring(b, " ...");
      continue;
    }
    int64_t i = shorten && k > PRINT_EDGE ? n - (count - k) : k;
    add_value(b, f, nn_data(t)[off + i * t->stride[d]]);
  }
  luaL_addchar(b, ']');
}

static void add_tensor(luaL_Buffer *b, const nn_tensor *t, int d, int64_t off,
                       int indent, int summarize, const formatter *f) {
  if (d == t->ndim - 1) {
    add_vector(b, t, off, indent, summarize, f);
    return;
  }
  int64_t n = t->shape[d];
  int shorten = summarize && n > 2 * PRINT_EDGE;
  int64_t count = shorten ? 2 * PRINT_EDGE + 1 : n;
  luaL_addchar(b, '[');
  for (int64_t k = 0; k < count; k++) {
    if (k > 0) {
      luaL_addchar(b, ',');
      for (int j = d + 1; j < t->ndim; j++) luaL_addchar(b, '\n');
      add_spaces(b, indent + 1);
    }
    if (shorten && k == PRINT_EDGE) {
      luaL_addstring(b, "...");
      continue;
    }
    int64_t i = shorten && k > PRINT_EDGE ? n - (count - k) : k;
    add_tensor(b, t, d + 1, off + i * t->stride[d], indent + 1, summarize, f);
  }
  luaL_addchar(b, ']');
}

/* tostring(t): "tensor([[1., 2.],\n        [3., 4.]])"; big tensors are
 * summarised with "..." and end with ", shape=[2000, 3])". */
static int l_tostring(lua_State *L) {
  nn_tensor **box = luaL_checkudata(L, 1, NN_TENSOR_MT);
  nn_tensor *t = *box;
  if (!t) {
    lua_pushliteral(L, "nn.Tensor (freed)");
    return 1;
  }
  int64_t n = nn_tensor_numel(t);
  int summarize = n > PRINT_THRESHOLD;
  const int indent = 7; /* strlen("tensor(") */
  formatter f = {1, 0, 1, 0, 0.0, 0.0};
  visit(t, 0, 0, summarize, stats_of, &f);
  if (f.any && (f.maxabs / f.minabs > 1000.0 || f.maxabs > 1.0e8 ||
                (!f.int_mode && f.minabs < 1.0e-4)))
    f.sci_mode = 1;
  visit(t, 0, 0, summarize, width_of, &f);

  char shape[200];
  nn_tensor_shape_str(t, shape, sizeof shape);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "tensor(");
  int suffix = summarize;
  if (n == 0) {
    luaL_addstring(&b, "[]");
    suffix = t->ndim != 1;
  } else if (t->ndim == 0) {
    add_value(&b, &f, *nn_data(t));
  } else {
    add_tensor(&b, t, 0, 0, indent, summarize, &f);
  }
  luaL_pushresult(&b);
  if (suffix) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    const char *nl = strrchr(s, '\n');
    size_t last = nl ? (size_t)(s + len - nl) + 1 : len + 2; /* as torch */
    if (last + strlen(shape) + 8 > PRINT_LINEWIDTH) /* 7 spaces: indent */
      lua_pushfstring(L, ",\n       shape=%s)", shape);
    else
      lua_pushfstring(L, ", shape=%s)", shape);
  } else {
    lua_pushliteral(L, ")");
  }
  lua_concat(L, 2);
  return 1;
}

/* ---- Math ---- */

/* a op b where either side may be a number: the metamethods and the
 * methods add, sub, mul, div. */
static int arith(lua_State *L, nn_binop op, const char *what) {
  nn_ctx *ctx = l_ctx(L);
  nn_tensor *a = test_tensor(L, 1), *b = test_tensor(L, 2), *r;
  nn_error err;
  if (a && b) {
    r = nn_tensor_binop(ctx, op, a, b, &err);
  } else if (a && lua_type(L, 2) == LUA_TNUMBER) {
    r = nn_tensor_binop_scalar(ctx, op, a, (float)lua_tonumber(L, 2), &err);
  } else if (b && lua_type(L, 1) == LUA_TNUMBER) {
    r = nn_tensor_scalar_binop(ctx, op, (float)lua_tonumber(L, 1), b, &err);
  } else {
    return luaL_typeerror(L, a ? 2 : 1, "nn.Tensor or number");
  }
  return push_result(L, r, what, &err);
}

static int l_add(lua_State *L) { return arith(L, NN_ADD, "add"); }
static int l_sub(lua_State *L) { return arith(L, NN_SUB, "sub"); }
static int l_mul(lua_State *L) { return arith(L, NN_MUL, "mul"); }
static int l_div(lua_State *L) { return arith(L, NN_DIV, "div"); }

static int unary(lua_State *L, nn_unop op) {
  nn_error err;
  nn_tensor *t = l_checktensor(L, 1);
  return push_result(L, nn_tensor_unop(l_ctx(L), op, t, &err), NULL, &err);
}

static int l_exp(lua_State *L) { return unary(L, NN_EXP); }
static int l_log(lua_State *L) { return unary(L, NN_LOG); }
static int l_sqrt(lua_State *L) { return unary(L, NN_SQRT); }
static int l_abs(lua_State *L) { return unary(L, NN_ABS); }
static int l_neg(lua_State *L) { return unary(L, NN_NEG); }

/* #t: the size of the first dimension. */
static int l_len(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  if (t->ndim == 0) {
    nn_error err;
    nn_seterr(&err, "a 0-dim tensor has no length");
    return l_raise(L, NULL, &err);
  }
  lua_pushinteger(L, (lua_Integer)t->shape[0]);
  return 1;
}

/* t:matmul(u), as torch.matmul. */
static int l_matmul(lua_State *L) {
  nn_tensor *a = l_checktensor(L, 1), *b = l_checktensor(L, 2);
  nn_error err;
  return push_result(L, nn_tensor_matmul(l_ctx(L), a, b, &err), "matmul",
                     &err);
}

/* t:sum([d [, keepdim]]) and t:mean(...): over everything (a 0-dim
 * tensor) or over dimension d. */
static int reduce(lua_State *L, int mean) {
  nn_tensor *t = l_checktensor(L, 1);
  nn_ctx *ctx = l_ctx(L);
  nn_error err;
  nn_tensor *r;
  if (lua_isnoneornil(L, 2)) {
    r = mean ? nn_tensor_mean(ctx, t, &err) : nn_tensor_sum(ctx, t, &err);
  } else {
    int d = check_dim(L, 2, t->ndim ? t->ndim : 1);
    int keep = opt_bool(L, 3, 0);
    r = mean ? nn_tensor_mean_dim(ctx, t, d, keep, &err)
             : nn_tensor_sum_dim(ctx, t, d, keep, &err);
  }
  return push_result(L, r, NULL, &err);
}

static int l_sum(lua_State *L) { return reduce(L, 0); }
static int l_mean(lua_State *L) { return reduce(L, 1); }

/* Turns a fresh tensor of 0-based indices into 1-based ones. */
static void one_based(nn_tensor *ix) {
  float *x = nn_data(ix);
  int64_t n = nn_tensor_numel(ix);
  for (int64_t i = 0; i < n; i++) x[i] += 1.0f;
}

/* t:max() -> 0-dim tensor; t:max(d [, keepdim]) -> values, indices
 * (1-based positions along d). */
static int l_max(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  nn_ctx *ctx = l_ctx(L);
  nn_error err;
  if (lua_isnoneornil(L, 2))
    return push_result(L, nn_tensor_max(ctx, t, NULL, &err), NULL, &err);
  int d = check_dim(L, 2, t->ndim ? t->ndim : 1);
  int keep = opt_bool(L, 3, 0);
  nn_tensor *v, *ix;
  if (nn_tensor_max_dim(ctx, t, d, keep, &v, &ix, &err) != 0)
    return l_raise(L, NULL, &err);
  one_based(ix);
  l_pushtensor(L, v);
  l_pushtensor(L, ix);
  return 2;
}

/* t:argmax([d [, keepdim]]): 1-based positions of the maxima along d, or
 * the 1-based flat position of the maximum (a 0-dim tensor). */
static int l_argmax(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1), *r;
  nn_ctx *ctx = l_ctx(L);
  nn_error err;
  if (lua_isnoneornil(L, 2)) {
    int64_t where = 0;
    r = nn_tensor_max(ctx, t, &where, &err);
    if (r) *nn_data(r) = (float)where;
  } else {
    int d = check_dim(L, 2, t->ndim ? t->ndim : 1);
    r = nn_tensor_argmax_dim(ctx, t, d, opt_bool(L, 3, 0), &err);
  }
  if (!r) return l_raise(L, "argmax", &err);
  one_based(r);
  l_pushtensor(L, r);
  return 1;
}

/* ---- Views and copies ---- */

static int l_clone(lua_State *L) {
  nn_error err;
  nn_tensor *t = l_checktensor(L, 1);
  return push_result(L, nn_tensor_clone(t, &err), NULL, &err);
}

/* t:contiguous(): self when already contiguous, else a copy. */
static int l_contiguous(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  if (nn_tensor_is_contiguous(t)) return return_self(L);
  nn_error err;
  return push_result(L, nn_tensor_clone(t, &err), NULL, &err);
}

static int l_is_contiguous(lua_State *L) {
  lua_pushboolean(L, nn_tensor_is_contiguous(l_checktensor(L, 1)));
  return 1;
}

/* t:reshape(...): sizes as varargs or one table; one may be -1. */
static int l_reshape(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  int64_t shape[NN_MAX_DIMS];
  int nd = 0;
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, 2);
    if (n > NN_MAX_DIMS)
      luaL_argerror(L, 2, lua_pushfstring(L, "at most %d dimensions",
                                          NN_MAX_DIMS));
    for (int i = 1; i <= n; i++) {
      lua_geti(L, 2, i);
      int isint = 0;
      lua_Integer v = lua_tointegerx(L, -1, &isint);
      if (!isint || v < -1)
        luaL_argerror(L, 2,
                      lua_pushfstring(L,
                                      "size %d must be an integer >= -1, "
                                      "got %s",
                                      i, luaL_tolstring(L, -1, NULL)));
      shape[nd++] = v;
      lua_pop(L, 1);
    }
  } else {
    int top = lua_gettop(L);
    for (int i = 2; i <= top; i++) {
      if (nd == NN_MAX_DIMS)
        luaL_argerror(L, i, lua_pushfstring(L, "at most %d dimensions",
                                            NN_MAX_DIMS));
      lua_Integer v = luaL_checkinteger(L, i);
      if (v < -1)
        luaL_argerror(L, i,
                      lua_pushfstring(L, "size must be an integer >= -1, "
                                         "got %I",
                                      (LUAI_UACINT)v));
      shape[nd++] = v;
    }
  }
  nn_error err;
  return push_result(L, nn_tensor_reshape(t, nd, shape, &err), NULL, &err);
}

/* t:narrow(d, start, len): a view of len elements of dimension d from
 * start (1-based; negative counts from the end). */
static int l_narrow(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  int d = check_dim(L, 2, t->ndim);
  lua_Integer start = luaL_checkinteger(L, 3);
  lua_Integer len = luaL_checkinteger(L, 4);
  lua_Integer size = (lua_Integer)t->shape[d];
  if (start < 0) start += size + 1;
  /* Bounded here so that start + len cannot overflow below. */
  if (start < 1 || start > size + 1)
    luaL_argerror(L, 3,
                  lua_pushfstring(L, "start %I out of range 1..%I",
                                  (LUAI_UACINT)luaL_checkinteger(L, 3),
                                  (LUAI_UACINT)size + 1));
  if (len < 0 || len > size)
    luaL_argerror(L, 4,
                  lua_pushfstring(L, "length %I out of range 0..%I",
                                  (LUAI_UACINT)len, (LUAI_UACINT)size));
  nn_error err;
  return push_result(L, nn_tensor_narrow(t, d, start - 1, len, &err), NULL,
                     &err);
}

/* ---- In place (each returns self) ---- */

/* Fills t with v: in parallel when contiguous (zero_grad clears every
 * gradient each step: 4 ms on one thread for VGG16's 15M parameters). */
static void fill(lua_State *L, nn_tensor *t, float v) {
  if (nn_tensor_is_contiguous(t)) {
    nn_tensor_touch(t);
    nn_fill_value(l_ctx(L), nn_data(t), nn_tensor_numel(t), v);
  } else {
    nn_tensor_fill_(t, v);
  }
}

/* t:fill_(v) -> t */
static int l_fill_(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  fill(L, t, (float)luaL_checknumber(L, 2));
  return return_self(L);
}

/* t:zero_() -> t */
static int l_zero_(lua_State *L) {
  fill(L, l_checktensor(L, 1), 0.0f);
  return return_self(L);
}

/* t:copy_(u): u's elements in row-major order (equal element counts). */
static int l_copy_(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1), *u = l_checktensor(L, 2);
  nn_error err;
  if (nn_tensor_copy_(t, u, &err) != 0) return l_raise(L, NULL, &err);
  return return_self(L);
}

/* t:add_(u [, alpha]): t += alpha * u, u a number or a tensor that
 * broadcasts to t. */
static int l_add_(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1), *u = test_tensor(L, 2);
  nn_ctx *ctx = l_ctx(L);
  float alpha = (float)luaL_optnumber(L, 3, 1.0);
  nn_error err;
  if (!u) {
    if (lua_type(L, 2) != LUA_TNUMBER)
      return luaL_typeerror(L, 2, "nn.Tensor or number");
    nn_tensor_binop_scalar_(ctx, NN_ADD, t, alpha * (float)lua_tonumber(L, 2));
    return return_self(L);
  }
  nn_tensor *scaled = NULL;
  if (alpha != 1.0f) {
    scaled = nn_tensor_binop_scalar(ctx, NN_MUL, u, alpha, &err);
    if (!scaled) return l_raise(L, "add_", &err);
    u = scaled;
  }
  int r = nn_tensor_binop_(ctx, NN_ADD, t, u, &err);
  nn_tensor_release(scaled);
  if (r != 0) return l_raise(L, "add_", &err);
  return return_self(L);
}

/* t:mul_(s): s a number or a tensor that broadcasts to t. */
static int l_mul_(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1), *u = test_tensor(L, 2);
  nn_ctx *ctx = l_ctx(L);
  nn_error err;
  if (u) {
    if (nn_tensor_binop_(ctx, NN_MUL, t, u, &err) != 0)
      return l_raise(L, "mul_", &err);
  } else if (lua_type(L, 2) == LUA_TNUMBER) {
    nn_tensor_binop_scalar_(ctx, NN_MUL, t, (float)lua_tonumber(L, 2));
  } else {
    return luaL_typeerror(L, 2, "nn.Tensor or number");
  }
  return return_self(L);
}

/* t:uniform_([a [, b]]): U(a, b) draws, default U(0, 1). */
static int l_uniform_(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  float a = (float)luaL_optnumber(L, 2, 0.0);
  float b = (float)luaL_optnumber(L, 3, 1.0);
  luaL_argcheck(L, a <= b, 3, "upper bound must not be below the lower one");
  nn_error err;
  if (nn_tensor_uniform_(l_ctx(L), t, a, b, &err) != 0)
    return l_raise(L, NULL, &err);
  return return_self(L);
}

/* t:normal_([mean [, std]]): N(mean, std^2) draws, default N(0, 1). */
static int l_normal_(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  float mean = (float)luaL_optnumber(L, 2, 0.0);
  lua_Number std = luaL_optnumber(L, 3, 1.0);
  luaL_argcheck(L, std >= 0, 3, "std must be non-negative");
  nn_error err;
  if (nn_tensor_normal_(l_ctx(L), t, mean, (float)std, &err) != 0)
    return l_raise(L, NULL, &err);
  return return_self(L);
}

/* ---- Parameters ---- */

/* t:grad() -> the gradient tensor (shared), or nil. */
static int l_grad(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  if (!t->grad) {
    lua_pushnil(L);
    return 1;
  }
  l_pushtensor(L, nn_tensor_retain(t->grad));
  return 1;
}

static int l_requires_grad(lua_State *L) {
  lua_pushboolean(L, l_checktensor(L, 1)->requires_grad);
  return 1;
}

/* t:requires_grad_([b = true]) -> self; true gives t a zero gradient when
 * it has none. */
static int l_requires_grad_(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  if (opt_bool(L, 2, 1)) {
    nn_error err;
    if (nn_tensor_make_param(t, &err) != 0) return l_raise(L, NULL, &err);
  } else {
    t->requires_grad = 0;
  }
  return return_self(L);
}

/* ---- Registration ---- */

static const luaL_Reg constructors[] = {
    {"tensor", l_tensor_new}, {"zeros", l_zeros},         {"ones", l_ones},
    {"full", l_full},         {"rand", l_rand},           {"randn", l_randn},
    {"arange", l_arange},     {"is_tensor", l_is_tensor}, {NULL, NULL}};

static const luaL_Reg metamethods[] = {
    {"__add", l_add}, {"__sub", l_sub}, {"__mul", l_mul},
    {"__div", l_div}, {"__unm", l_neg}, {"__len", l_len},
    {"__tostring", l_tostring}, {NULL, NULL}};

static const luaL_Reg methods[] = {
    {"shape", l_shape},
    {"size", l_size},
    {"dim", l_dim},
    {"numel", l_numel},
    {"get", l_get},
    {"set", l_set},
    {"item", l_item},
    {"totable", l_totable},
    {"add", l_add},
    {"sub", l_sub},
    {"mul", l_mul},
    {"div", l_div},
    {"matmul", l_matmul},
    {"sum", l_sum},
    {"mean", l_mean},
    {"max", l_max},
    {"argmax", l_argmax},
    {"exp", l_exp},
    {"log", l_log},
    {"sqrt", l_sqrt},
    {"abs", l_abs},
    {"neg", l_neg},
    {"clone", l_clone},
    {"contiguous", l_contiguous},
    {"is_contiguous", l_is_contiguous},
    {"reshape", l_reshape},
    {"narrow", l_narrow},
    {"fill_", l_fill_},
    {"zero_", l_zero_},
    {"copy_", l_copy_},
    {"add_", l_add_},
    {"mul_", l_mul_},
    {"uniform_", l_uniform_},
    {"normal_", l_normal_},
    {"grad", l_grad},
    {"requires_grad", l_requires_grad},
    {"requires_grad_", l_requires_grad_},
    {NULL, NULL}};

void l_open_tensor(lua_State *L, int t, int ctx) {
  t = lua_absindex(L, t);
  ctx = lua_absindex(L, ctx);
  l_register(L, t, ctx, constructors);
  luaL_getmetatable(L, NN_TENSOR_MT);
  int mt = lua_gettop(L);
  l_register(L, mt, ctx, metamethods);
  lua_newtable(L);
  l_register(L, -1, ctx, methods);
  lua_setfield(L, mt, "__index");
  lua_pop(L, 1);
}
