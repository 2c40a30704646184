/*
 * l_layer.c - Lua binding of the C layers: constructors (core.Linear, ...)
 * returning "nn.Layer" userdata, and the methods the Lua-side module classes
 * call (forward, backward, params, buffers, train, type, extra_repr).
 */
#include <string.h>

#include "binding.h"

/* ---- userdata ---- */

static nn_layer *checklayer(lua_State *L, int i) {
  nn_layer **box = luaL_checkudata(L, i, NN_LAYER_MT);
  if (!*box) luaL_argerror(L, i, "layer has been freed");
  return *box;
}

/* Pushes l as an nn.Layer userdata, taking ownership.  On NULL raises err
 * prefixed with the constructor name. */
static int pushlayer(lua_State *L, nn_layer *l, const char *what,
                     nn_error *err) {
  if (!l) return l_raise(L, what, err);
  nn_layer **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = l;
  luaL_setmetatable(L, NN_LAYER_MT);
  return 1;
}

/* __gc and __close: frees the layer once. */
static int l_layer_gc(lua_State *L) {
  nn_layer **box = luaL_checkudata(L, 1, NN_LAYER_MT);
  nn_layer_free(*box);
  *box = NULL;
  return 0;
}

/* A contiguous copy or view of the tensor argument at stack index i, for a
 * call on layer l (release it afterwards); raises, prefixed with l's type,
 * when it cannot be made.  Other arguments are checked before it, so that
 * no error leaves it unreleased. */
static nn_tensor *contiguous_arg(lua_State *L, nn_layer *l, int i) {
  nn_error err;
  nn_tensor *c = nn_tensor_contiguous(l_checktensor(L, i), &err);
  if (!c) l_raise(L, l->ops->type, &err);
  return c;
}

/* layer:forward(x) -> y: runs the layer on a (made contiguous) copy or view
 * of x.  Errors are prefixed with the layer type. */
static int l_layer_forward(lua_State *L) {
  nn_layer *l = checklayer(L, 1);
  nn_tensor *xc = contiguous_arg(L, l, 2), *y = NULL;
  nn_error err;
  int rc = nn_layer_forward(l, xc, &y, &err);
  nn_tensor_release(xc);
  if (rc != 0) return l_raise(L, l->ops->type, &err);
  l_pushtensor(L, y);
  return 1;
}

/* layer:backward(x, gy) -> gx, accumulating parameter gradients. */
static int l_layer_backward(lua_State *L) {
  nn_layer *l = checklayer(L, 1);
  l_checktensor(L, 2); /* the arguments in order */
  nn_tensor *gy = l_checktensor(L, 3);
  nn_tensor *xc = contiguous_arg(L, l, 2), *gyc = NULL, *gx = NULL;
  nn_error err;
  gyc = nn_tensor_contiguous(gy, &err);
  if (!gyc) {
    nn_tensor_release(xc);
    return l_raise(L, l->ops->type, &err);
  }
  int rc = nn_layer_backward(l, xc, gyc, &gx, &err);
  nn_tensor_release(xc);
  nn_tensor_release(gyc);
  if (rc != 0) return l_raise(L, l->ops->type, &err);
  l_pushtensor(L, gx);
  return 1;
}

/* layer:backward_(x, gy) -> gx: backward that may write grad_input over gy
 * and return gy itself, for a caller that owns gy alone (a container passing
 * a gradient it made and nobody else saw).  It does so for elementwise
 * activations when gy is contiguous and neither it nor its storage is
 * referenced from elsewhere in C; otherwise it is layer:backward(x, gy). */
static int l_layer_backward_(lua_State *L) {
  nn_layer *l = checklayer(L, 1);
  nn_tensor *x = l_checktensor(L, 2);
  nn_tensor *gy = l_checktensor(L, 3);
  if (gy->refcount == 1 && gy->storage->refcount == 1 &&
      x->storage != gy->storage && nn_tensor_is_contiguous(gy)) {
    nn_error err;
    nn_tensor *xc = contiguous_arg(L, l, 2);
    int rc = nn_activation_backward_inplace(l, xc, gy, &err);
    nn_tensor_release(xc);
    if (rc == 0) {
      lua_settop(L, 3);
      return 1;
    }
  }
  return l_layer_backward(L);
}

/* bn:forward_relu(x) -> y, coef: relu(bn:forward(x)) in one pass, and the
 * coefficients that recompute_relu needs (nn_batchnorm_relu_forward). */
static int l_layer_forward_relu(lua_State *L) {
  nn_layer *l = checklayer(L, 1);
  nn_tensor *xc = contiguous_arg(L, l, 2), *y = NULL, *coef = NULL;
  nn_error err;
  int rc = nn_batchnorm_relu_forward(l, xc, &y, &coef, &err);
  nn_tensor_release(xc);
  if (rc != 0) return l_raise(L, l->ops->type, &err);
  l_pushtensor(L, y);
  l_pushtensor(L, coef);
  return 2;
}

/* bn:recompute_relu(x, coef) -> y: forward_relu's y again, from the same x
 * and its coef (nn_batchnorm_relu_recompute). */
static int l_layer_recompute_relu(lua_State *L) {
  nn_layer *l = checklayer(L, 1);
  l_checktensor(L, 2); /* the arguments in order */
  nn_tensor *coef = l_checktensor(L, 3);
  nn_tensor *xc = contiguous_arg(L, l, 2), *y = NULL;
  nn_error err;
  int rc = nn_batchnorm_relu_recompute(l, xc, coef, &y, &err);
  nn_tensor_release(xc);
  if (rc != 0) return l_raise(L, l->ops->type, &err);
  l_pushtensor(L, y);
  return 1;
}

/* bn:backward_relu(x, coef, gy) -> gx: the gradient with respect to x of
 * relu(bn:forward(x)) for a gradient gy of its output, after forward_relu
 * returned coef; the ReLU's backward within BatchNorm's passes
 * (nn_batchnorm_relu_backward). */
static int l_layer_backward_relu(lua_State *L) {
  nn_layer *l = checklayer(L, 1);
  l_checktensor(L, 2); /* the arguments in order */
  nn_tensor *coef = l_checktensor(L, 3);
  l_checktensor(L, 4);
  nn_tensor *xc = contiguous_arg(L, l, 2);
  nn_error err;
  nn_tensor *gc = nn_tensor_contiguous(l_checktensor(L, 4), &err), *gx = NULL;
  int rc = gc ? nn_batchnorm_relu_backward(l, xc, coef, gc, &gx, &err) : -1;
  nn_tensor_release(xc);
  nn_tensor_release(gc);
  if (rc != 0) return l_raise(L, l->ops->type, &err);
  l_pushtensor(L, gx);
  return 1;
}

/* conv:forward_bn_relu(bn, x) -> y or nil: relu(bn:forward(conv:forward(x)))
 * in one pass, for an eval-mode BatchNorm2d bn over conv's output channels
 * (nil: relu(conv:forward(x))) and a 4-D x; nil when they do not fit
 * together, for the caller to run the layers one by one
 * (nn_conv2d_bn_relu_forward). */
static int l_layer_forward_bn_relu(lua_State *L) {
  nn_layer *l = checklayer(L, 1);
  nn_layer *bn = lua_isnil(L, 2) ? NULL : checklayer(L, 2);
  nn_tensor *xc = contiguous_arg(L, l, 3), *y = NULL;
  nn_error err;
  int rc = nn_conv2d_bn_relu_forward(l, bn, xc, &y, &err);
  nn_tensor_release(xc);
  if (rc != 0) return l_raise(L, l->ops->type, &err);
  if (!y) return 0;
  l_pushtensor(L, y);
  return 1;
}

/* Pushes two arrays: names and tensors of a named list. */
static int push_named(lua_State *L, const nn_named *list, int n) {
  lua_createtable(L, n, 0);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, list[i].name);
    lua_rawseti(L, -3, i + 1);
    l_pushtensor(L, nn_tensor_retain(list[i].t));
    lua_rawseti(L, -2, i + 1);
  }
  return 2;
}

/* layer:params() -> names, tensors (live parameter tensors, with grads). */
static int l_layer_params(lua_State *L) {
  nn_layer *l = checklayer(L, 1);
  return push_named(L, l->params, l->nparams);
}

/* layer:buffers() -> names, tensors (live buffers). */
static int l_layer_buffers(lua_State *L) {
  nn_layer *l = checklayer(L, 1);
  return push_named(L, l->buffers, l->nbuffers);
}

/* layer:train(on): switches training mode. */
static int l_layer_train(lua_State *L) {
  nn_layer *l = checklayer(L, 1);
  l->training = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  return 0;
}

/* layer:type() -> "Conv2d". */
static int l_layer_type(lua_State *L) {
  lua_pushstring(L, checklayer(L, 1)->ops->type);
  return 1;
}

/* layer:extra_repr() -> PyTorch's extra_repr string. */
static int l_layer_extra_repr(lua_State *L) {
  nn_layer *l = checklayer(L, 1);
  char buf[256] = "";
  if (l->ops->extra_repr) l->ops->extra_repr(l, buf, sizeof buf);
  lua_pushstring(L, buf);
  return 1;
}

/* ---- constructor argument helpers ---- */

/* A positive integer argument, or raises "(name must be positive, got v)". */
static int checkpositive(lua_State *L, int i, const char *name) {
  lua_Integer v = luaL_checkinteger(L, i);
  if (v <= 0 || v > (1 << 30))
    luaL_argerror(L, i,
                  lua_pushfstring(L, "%s must be a positive integer, got %I",
                                  name, v));
  return (int)v;
}

/* A size given as a number or a {h, w} pair, at argument i or at option k
 * of the options table at i (k != NULL). */
static void checkpair(lua_State *L, int i, const char *k, int *a, int *b,
                      int def, int minv) {
  int t;
  if (k) {
    t = lua_type(L, i) == LUA_TTABLE ? lua_getfield(L, i, k) : LUA_TNIL;
    if (lua_type(L, i) != LUA_TTABLE) lua_pushnil(L);
  } else {
    lua_pushvalue(L, i);
    t = lua_type(L, -1);
  }
  const char *what = k ? k : "kernel_size";
  int ok = 1;
  lua_Integer va = def, vb = def;
  if (t == LUA_TNIL && k) {
    lua_pop(L, 1); /* absent: the default, whatever its value */
    *a = def;
    *b = def;
    return;
  } else if (t == LUA_TNUMBER) {
    ok = lua_isinteger(L, -1);
    va = vb = lua_tointeger(L, -1);
  } else if (t == LUA_TTABLE && luaL_len(L, -1) == 2) {
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    ok = lua_isinteger(L, -2) && lua_isinteger(L, -1);
    va = lua_tointeger(L, -2);
    vb = lua_tointeger(L, -1);
    lua_pop(L, 2);
  } else {
    ok = 0;
  }
  if (!ok || va < minv || vb < minv || va > (1 << 20) || vb > (1 << 20))
    luaL_argerror(L, i,
                  lua_pushfstring(L,
                                  "%s must be an integer >= %d or a pair "
                                  "{h, w} of them",
                                  what, minv));
  lua_pop(L, 1);
  *a = (int)va;
  *b = (int)vb;
}

/* core.Linear(in, out, {bias=true}) */
static int l_Linear(lua_State *L) {
  static const char *const opts[] = {"bias", NULL};
  int in = checkpositive(L, 1, "in_features");
  int out = checkpositive(L, 2, "out_features");
  l_checkopts(L, 3, opts);
  int bias = l_optboolean(L, 3, "bias", 1);
  nn_error err;
  return pushlayer(L, nn_linear_new(l_ctx(L), in, out, bias, &err), "Linear",
                   &err);
}

/* core.Conv2d(in, out, k, {stride=1, padding=0, bias=true}) */
static int l_Conv2d(lua_State *L) {
  static const char *const opts[] = {"stride", "padding", "bias", NULL};
  int in = checkpositive(L, 1, "in_channels");
  int out = checkpositive(L, 2, "out_channels");
  int kh, kw, sh, sw, ph, pw;
  checkpair(L, 3, NULL, &kh, &kw, 0, 1);
  l_checkopts(L, 4, opts);
  checkpair(L, 4, "stride", &sh, &sw, 1, 1);
  checkpair(L, 4, "padding", &ph, &pw, 0, 0);
  int bias = l_optboolean(L, 4, "bias", 1);
  nn_error err;
  return pushlayer(L,
                   nn_conv2d_new(l_ctx(L), in, out, kh, kw, sh, sw, ph, pw,
                                 bias, &err),
                   "Conv2d", &err);
}

/* core.MaxPool2d(k, {stride=k, padding=0}) and core.AvgPool2d(...) */
static int pool(lua_State *L, int avg) {
  static const char *const opts[] = {"stride", "padding", NULL};
  int kh, kw, sh, sw, ph, pw;
  checkpair(L, 1, NULL, &kh, &kw, 0, 1);
  l_checkopts(L, 2, opts);
  checkpair(L, 2, "stride", &sh, &sw, 0, 1);
  if (sh == 0) {
    sh = kh;
    sw = kw;
  }
  checkpair(L, 2, "padding", &ph, &pw, 0, 0);
  nn_error err;
  nn_ctx *ctx = l_ctx(L);
  nn_layer *l = avg ? nn_avgpool2d_new(ctx, kh, kw, sh, sw, ph, pw, &err)
                    : nn_maxpool2d_new(ctx, kh, kw, sh, sw, ph, pw, &err);
  return pushlayer(L, l, avg ? "AvgPool2d" : "MaxPool2d", &err);
}

static int l_MaxPool2d(lua_State *L) { return pool(L, 0); }
static int l_AvgPool2d(lua_State *L) { return pool(L, 1); }

/* core.AdaptiveAvgPool2d(size): size a number or {h, w}. */
static int l_AdaptiveAvgPool2d(lua_State *L) {
  int oh, ow;
  checkpair(L, 1, NULL, &oh, &ow, 0, 1);
  nn_error err;
  return pushlayer(L, nn_adaptive_avgpool2d_new(l_ctx(L), oh, ow, &err),
                   "AdaptiveAvgPool2d", &err);
}

/* core.BatchNorm2d(c, {eps=1e-5, momentum=0.1}) and BatchNorm1d. */
static int batchnorm(lua_State *L, int spatial) {
  static const char *const opts[] = {"eps", "momentum", NULL};
  int c = checkpositive(L, 1, "num_features");
  l_checkopts(L, 2, opts);
  double eps = l_optnumber(L, 2, "eps", 1e-5);
  double momentum = l_optnumber(L, 2, "momentum", 0.1);
  if (!(eps > 0))
    luaL_argerror(L, 2, "option 'eps' must be positive");
  if (!(momentum >= 0 && momentum <= 1))
    luaL_argerror(L, 2, "option 'momentum' must be in [0, 1]");
  nn_error err;
  return pushlayer(L,
                   nn_batchnorm_new(l_ctx(L), c, (float)eps, (float)momentum,
                                    spatial, &err),
                   spatial ? "BatchNorm2d" : "BatchNorm1d", &err);
}

static int l_BatchNorm2d(lua_State *L) { return batchnorm(L, 1); }
static int l_BatchNorm1d(lua_State *L) { return batchnorm(L, 0); }

/* core.Dropout(p=0.5) */
static int l_Dropout(lua_State *L) {
  double p = luaL_optnumber(L, 1, 0.5);
  if (!(p >= 0 && p <= 1))
    luaL_argerror(L, 1,
                  lua_pushfstring(L, "dropout probability must be in [0, 1], "
                                     "got %f",
                                  p));
  nn_error err;
  return pushlayer(L, nn_dropout_new(l_ctx(L), (float)p, &err), "Dropout",
                   &err);
}

/* core.Flatten() */
static int l_Flatten(lua_State *L) {
  nn_error err;
  return pushlayer(L, nn_flatten_new(l_ctx(L), &err), "Flatten", &err);
}

static int activation(lua_State *L, nn_act_kind kind, float param,
                      const char *name) {
  nn_error err;
  return pushlayer(L, nn_activation_new(l_ctx(L), kind, param, &err), name,
                   &err);
}

static int l_ReLU(lua_State *L) {
  return activation(L, NN_ACT_RELU, 0, "ReLU");
}
static int l_Sigmoid(lua_State *L) {
  return activation(L, NN_ACT_SIGMOID, 0, "Sigmoid");
}
static int l_Tanh(lua_State *L) {
  return activation(L, NN_ACT_TANH, 0, "Tanh");
}
static int l_GELU(lua_State *L) {
  return activation(L, NN_ACT_GELU, 0, "GELU");
}
static int l_LeakyReLU(lua_State *L) {
  double slope = luaL_optnumber(L, 1, 0.01);
  return activation(L, NN_ACT_LEAKY_RELU, (float)slope, "LeakyReLU");
}
static int l_ELU(lua_State *L) {
  double alpha = luaL_optnumber(L, 1, 1.0);
  return activation(L, NN_ACT_ELU, (float)alpha, "ELU");
}

/* Softmax / LogSoftmax work over the last dimension: dim may be omitted or
 * -1. */
static void check_last_dim(lua_State *L) {
  if (lua_isnoneornil(L, 1)) return;
  lua_Integer d = luaL_checkinteger(L, 1);
  if (d != -1)
    luaL_argerror(L, 1, "only the last dimension (dim = -1) is supported");
}
static int l_Softmax(lua_State *L) {
  check_last_dim(L);
  return activation(L, NN_ACT_SOFTMAX, 0, "Softmax");
}
static int l_LogSoftmax(lua_State *L) {
  check_last_dim(L);
  return activation(L, NN_ACT_LOG_SOFTMAX, 0, "LogSoftmax");
}

static const luaL_Reg layer_methods[] = {{"forward", l_layer_forward},
                                         {"backward", l_layer_backward},
                                         {"backward_", l_layer_backward_},
                                         {"forward_relu", l_layer_forward_relu},
                                         {"forward_bn_relu",
                                          l_layer_forward_bn_relu},
                                         {"recompute_relu",
                                          l_layer_recompute_relu},
                                         {"backward_relu",
                                          l_layer_backward_relu},
                                         {"params", l_layer_params},
                                         {"buffers", l_layer_buffers},
                                         {"train", l_layer_train},
                                         {"type", l_layer_type},
                                         {"extra_repr", l_layer_extra_repr},
                                         {NULL, NULL}};

static const luaL_Reg layer_ctors[] = {
    {"Linear", l_Linear},       {"Conv2d", l_Conv2d},
    {"MaxPool2d", l_MaxPool2d}, {"AvgPool2d", l_AvgPool2d},
    {"AdaptiveAvgPool2d", l_AdaptiveAvgPool2d},
    {"BatchNorm2d", l_BatchNorm2d}, {"BatchNorm1d", l_BatchNorm1d},
    {"Dropout", l_Dropout},     {"Flatten", l_Flatten},
    {"ReLU", l_ReLU},           {"LeakyReLU", l_LeakyReLU},
    {"Sigmoid", l_Sigmoid},     {"Tanh", l_Tanh},
    {"ELU", l_ELU},             {"GELU", l_GELU},
    {"Softmax", l_Softmax},     {"LogSoftmax", l_LogSoftmax},
    {NULL, NULL}};

void l_open_layer(lua_State *L, int t, int ctx) {
  t = lua_absindex(L, t);
  ctx = lua_absindex(L, ctx);
  luaL_newmetatable(L, NN_LAYER_MT);
  lua_pushcfunction(L, l_layer_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_layer_gc);
  lua_setfield(L, -2, "__close");
  lua_newtable(L);
  l_register(L, -1, ctx, layer_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  l_register(L, -1, ctx, layer_ctors);
  lua_setfield(L, t, "layers");
}
