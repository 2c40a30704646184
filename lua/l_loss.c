/*
 * l_loss.c - Lua binding of the losses: core.losses.CrossEntropyLoss{...}
 * and friends return "nn.Loss" userdata with forward(input, target) and
 * backward(input, target [, grad_output]).
 *
 * Class targets are tensors of 1-based class labels; they are checked
 * (integer, in 1..C) and converted to 0-based int32 for the runtime.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/loss.h"
#include "binding.h"

#define NN_LOSS_MT "nn.Loss"

typedef enum { K_CE, K_NLL, K_MSE, K_L1, K_BCE, K_BCEL } loss_kind;

static const char *const kind_names[] = {
    "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss",
    "BCEWithLogitsLoss"};

typedef struct l_loss {
  loss_kind kind;
  nn_reduction reduction;
  float label_smoothing;
  int32_t ignore_index; /* 0-based, or NN_NO_IGNORE */
  nn_tensor *weight;    /* owned, or NULL */
} l_loss;

static l_loss *checkloss(lua_State *L, int i) {
  return luaL_checkudata(L, i, NN_LOSS_MT);
}

/* __gc and __close. */
static int l_loss_gc(lua_State *L) {
  l_loss *o = checkloss(L, 1);
  nn_tensor_release(o->weight);
  o->weight = NULL;
  return 0;
}

static const char *const reductions[] = {"mean", "sum", "none", NULL};

/* Builds a loss of the given kind from the options table at index 1. */
static int make_loss(lua_State *L, loss_kind kind) {
  static const char *const class_opts[] = {"weight", "label_smoothing",
                                           "reduction", "ignore_index", NULL};
  static const char *const nll_opts[] = {"weight", "reduction",
                                         "ignore_index", NULL};
  static const char *const bce_opts[] = {"weight", "reduction", NULL};
  static const char *const plain_opts[] = {"reduction", NULL};
  const char *const *allowed = kind == K_CE    ? class_opts
                               : kind == K_NLL ? nll_opts
                               : (kind == K_BCE || kind == K_BCEL)
                                   ? bce_opts
                                   : plain_opts;
  l_checkopts(L, 1, allowed);
  const char *red = l_optstring(L, 1, "reduction", "mean");
  int r = -1;
  for (int i = 0; reductions[i]; i++)
    if (strcmp(red, reductions[i]) == 0) r = i;
  if (r < 0)
    luaL_argerror(L, 1,
                  lua_pushfstring(L,
                                  "option 'reduction' must be \"mean\", "
                                  "\"sum\" or \"none\", got \"%s\"",
                                  red));
  double ls = l_optnumber(L, 1, "label_smoothing", 0);
  if (!(ls >= 0 && ls <= 1))
    luaL_argerror(L, 1, "option 'label_smoothing' must be in [0, 1]");
  lua_Integer ignore = l_optinteger(L, 1, "ignore_index", 0);
  nn_tensor *w = NULL;
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_getfield(L, 1, "weight");
    if (!lua_isnil(L, -1)) {
      w = l_totensor(L, -1);
      if (!w)
        luaL_argerror(L, 1,
                      lua_pushfstring(L, "option 'weight' must be a tensor, "
                                         "got %s",
                                      luaL_typename(L, -1)));
      if ((kind == K_CE || kind == K_NLL) && w->ndim != 1)
        luaL_argerror(L, 1, "option 'weight' must be a 1-d tensor [C]");
    }
    lua_pop(L, 1);
  }
  l_loss *o = lua_newuserdatauv(L, sizeof *o, 0);
  memset(o, 0, sizeof *o);
  luaL_setmetatable(L, NN_LOSS_MT);
  o->kind = kind;
  o->reduction = (nn_reduction)r;
  o->label_smoothing = (float)ls;
  o->ignore_index = ignore ? (int32_t)(ignore - 1) : NN_NO_IGNORE;
  if (w) {
    nn_error err;
    o->weight = nn_tensor_clone(w, &err);
    if (!o->weight) return l_raise(L, kind_names[kind], &err);
  }
  return 1;
}

static int l_CrossEntropyLoss(lua_State *L) { return make_loss(L, K_CE); }
static int l_NLLLoss(lua_State *L) { return make_loss(L, K_NLL); }
static int l_MSELoss(lua_State *L) { return make_loss(L, K_MSE); }
static int l_L1Loss(lua_State *L) { return make_loss(L, K_L1); }
static int l_BCELoss(lua_State *L) { return make_loss(L, K_BCE); }
static int l_BCEWithLogitsLoss(lua_State *L) { return make_loss(L, K_BCEL); }

/* Converts the class-label tensor target (1-based) for input [N, C] into a
 * malloc'ed array of 0-based int32; raises naming the first bad entry. */
static int32_t *class_targets(lua_State *L, const l_loss *o,
                              const nn_tensor *input, const nn_tensor *target) {
  char a[128], b[128];
  if (input->ndim != 2) {
    nn_tensor_shape_str(input, a, sizeof a);
    luaL_error(L, "%s: expected input of shape [N, C], got %s",
               kind_names[o->kind], a);
  }
  int64_t n = input->shape[0], c = input->shape[1];
  if (target->ndim != 1 || target->shape[0] != n) {
    nn_tensor_shape_str(input, a, sizeof a);
    nn_tensor_shape_str(target, b, sizeof b);
    luaL_error(L,
               "%s: expected target of shape [%I] (class labels) for input "
               "%s, got %s",
               kind_names[o->kind], (lua_Integer)n, a, b);
  }
  if (o->weight && nn_tensor_numel(o->weight) != c) {
    nn_tensor_shape_str(o->weight, a, sizeof a);
    luaL_error(L, "%s: weight has shape %s but input has %I classes",
               kind_names[o->kind], a, (lua_Integer)c);
  }
  int32_t *t = malloc((size_t)(n > 0 ? n : 1) * sizeof *t);
  if (!t) luaL_error(L, "%s: out of memory", kind_names[o->kind]);
  const float *d = nn_data(target);
  int contig = nn_tensor_is_contiguous(target);
  for (int64_t i = 0; i < n; i++) {
    float v = contig ? d[i] : d[nn_tensor_elem_offset(target, i)];
    int ignored = o->ignore_index != NN_NO_IGNORE &&
                  v == (float)o->ignore_index + 1.0f;
    if (!ignored && (v != floorf(v) || v < 1 || v > (float)c)) {
      free(t);
      char msg[160];
      if (v != floorf(v))
        snprintf(msg, sizeof msg, "target[%lld] = %g is not an integer "
                 "class label", (long long)i + 1, (double)v);
      else
        snprintf(msg, sizeof msg, "target[%lld] = %g is out of range 1..%lld",
                 (long long)i + 1, (double)v, (long long)c);
      luaL_error(L, "%s: %s", kind_names[o->kind], msg);
    }
    t[i] = ignored ? o->ignore_index : (int32_t)v - 1;
  }
  return t;
}

/* A per-element weight tensor for the pointwise losses: o->weight as is when
 * it has input's element count, expanded when it matches input's last
 * dimension.  Returns an owned reference (or NULL when no weight). */
static nn_tensor *pointwise_weight(lua_State *L, const l_loss *o,
                                   const nn_tensor *input) {
  if (!o->weight) return NULL;
  nn_error err;
  int64_t n = nn_tensor_numel(input), wn = nn_tensor_numel(o->weight);
  if (wn == n) {
    nn_tensor *w = nn_tensor_reshape(o->weight, input->ndim, input->shape,
                                     &err);
    if (!w) l_raise(L, kind_names[o->kind], &err);
    return w;
  }
  int64_t last = input->ndim ? input->shape[input->ndim - 1] : 1;
  if (wn != last) {
    char a[128], b[128];
    nn_tensor_shape_str(o->weight, a, sizeof a);
    nn_tensor_shape_str(input, b, sizeof b);
    luaL_error(L, "%s: weight of shape %s does not broadcast to input %s",
               kind_names[o->kind], a, b);
  }
  nn_tensor *w = nn_tensor_empty(input->ndim, input->shape, &err);
  if (!w) l_raise(L, kind_names[o->kind], &err);
  float *dst = nn_data(w);
  const float *src = nn_data(o->weight);
  for (int64_t i = 0; i < n; i++) dst[i] = src[i % last];
  return w;
}

/* Shared body of forward and backward.  Everything that can raise (shape
 * and label checks, the weight expansion) runs before any temporary is
 * made, so an error leaks nothing. */
static int run_loss(lua_State *L, int backward) {
  l_loss *o = checkloss(L, 1);
  nn_tensor *input = l_checktensor(L, 2);
  nn_tensor *target = l_checktensor(L, 3);
  nn_tensor *gout = backward && !lua_isnoneornil(L, 4) ? l_checktensor(L, 4)
                                                       : NULL;
  const char *name = kind_names[o->kind];
  nn_ctx *ctx = l_ctx(L);
  int classes = o->kind == K_CE || o->kind == K_NLL;
  int soft = o->kind == K_CE && input->ndim == 2 &&
             nn_tensor_same_shape(input, target);
  int32_t *cls = NULL;
  nn_tensor *pw = NULL;
  if (classes && !soft) {
    cls = class_targets(L, o, input, target);
  } else if (!classes) {
    if (!nn_tensor_same_shape(input, target)) {
      char a[128], b[128];
      nn_tensor_shape_str(input, a, sizeof a);
      nn_tensor_shape_str(target, b, sizeof b);
      return luaL_error(L, "%s: input %s and target %s must have the same "
                        "shape", name, a, b);
    }
    pw = pointwise_weight(L, o, input);
  }
  static const nn_pointwise_loss pk[] = {0, 0, NN_LOSS_MSE, NN_LOSS_L1,
                                         NN_LOSS_BCE, NN_LOSS_BCE_WITH_LOGITS};
  nn_class_loss_opts co = {o->weight, o->label_smoothing, o->reduction,
                           o->ignore_index};
  nn_error err;
  nn_tensor *in = nn_tensor_contiguous(input, &err);
  nn_tensor *tg = in ? nn_tensor_contiguous(target, &err) : NULL;
  nn_tensor *go = gout && tg ? nn_tensor_contiguous(gout, &err) : NULL;
  nn_tensor *res = NULL;
  int rc = -1;
  if (!in || !tg || (gout && !go)) {
    rc = -1;
  } else if (cls && o->kind == K_CE) {
    rc = backward ? nn_cross_entropy_backward(ctx, in, cls, &co, go, &res,
                                              &err)
                  : nn_cross_entropy_forward(ctx, in, cls, &co, &res, &err);
  } else if (cls) {
    rc = backward ? nn_nll_backward(ctx, in, cls, &co, go, &res, &err)
                  : nn_nll_forward(ctx, in, cls, &co, &res, &err);
  } else if (soft) {
    rc = backward
             ? nn_cross_entropy_prob_backward(ctx, in, tg, &co, go, &res, &err)
             : nn_cross_entropy_prob_forward(ctx, in, tg, &co, &res, &err);
  } else {
    rc = backward ? nn_pointwise_loss_backward(ctx, pk[o->kind], in, tg, pw,
                                               o->reduction, go, &res, &err)
                  : nn_pointwise_loss_forward(ctx, pk[o->kind], in, tg, pw,
                                              o->reduction, &res, &err);
  }
  free(cls);
  nn_tensor_release(pw);
  nn_tensor_release(in);
  nn_tensor_release(tg);
  nn_tensor_release(go);
  if (rc != 0) return l_raise(L, name, &err);
  if (!backward && res->ndim == 0) {
    lua_pushnumber(L, (lua_Number)nn_data(res)[0]);
    nn_tensor_release(res);
  } else {
    l_pushtensor(L, res);
  }
  return 1;
}

/* loss:forward(input, target) -> number (or tensor with reduction "none"). */
static int l_loss_forward(lua_State *L) { return run_loss(L, 0); }

/* loss:backward(input, target [, grad_output]) -> grad_input. */
static int l_loss_backward(lua_State *L) { return run_loss(L, 1); }

/* tostring(loss) -> "CrossEntropyLoss()". */
static int l_loss_tostring(lua_State *L) {
  l_loss *o = checkloss(L, 1);
  lua_pushfstring(L, "%s()", kind_names[o->kind]);
  return 1;
}

/* loss:type() -> "CrossEntropyLoss" */
static int l_loss_type(lua_State *L) {
  lua_pushstring(L, kind_names[checkloss(L, 1)->kind]);
  return 1;
}

/* loss:reduction() -> "mean" | "sum" | "none" */
static int l_loss_reduction(lua_State *L) {
  lua_pushstring(L, reductions[checkloss(L, 1)->reduction]);
  return 1;
}

/* loss(input, target): same as forward. */
static int l_loss_call(lua_State *L) { return run_loss(L, 0); }

static const luaL_Reg loss_methods[] = {{"forward", l_loss_forward},
                                        {"backward", l_loss_backward},
                                        {"type", l_loss_type},
                                        {"reduction", l_loss_reduction},
                                        {NULL, NULL}};

static const luaL_Reg loss_ctors[] = {
    {"CrossEntropyLoss", l_CrossEntropyLoss},
    {"NLLLoss", l_NLLLoss},
    {"MSELoss", l_MSELoss},
    {"L1Loss", l_L1Loss},
    {"BCELoss", l_BCELoss},
    {"BCEWithLogitsLoss", l_BCEWithLogitsLoss},
    {NULL, NULL}};

void l_open_loss(lua_State *L, int t, int ctx) {
  t = lua_absindex(L, t);
  ctx = lua_absindex(L, ctx);
  luaL_newmetatable(L, NN_LOSS_MT);
  lua_pushcfunction(L, l_loss_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_loss_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, l_loss_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushvalue(L, ctx);
  lua_pushcclosure(L, l_loss_call, 1);
  lua_setfield(L, -2, "__call");
  lua_newtable(L);
  l_register(L, -1, ctx, loss_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  l_register(L, -1, ctx, loss_ctors);
  lua_setfield(L, t, "losses");
}
