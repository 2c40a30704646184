/*
 * l_optim.c - Lua binding of the optimizer steps.  The optimizer objects
 * (parameter groups, state, state_dict) live in lua/nn/optim.lua; each call
 * here updates one parameter tensor in place from its gradient with the
 * state tensors the Lua side keeps.
 */
#include "../runtime/optim.h"
#include "binding.h"

/* The parameter at index i: contiguous, with a gradient of its size. */
static nn_tensor *checkparam(lua_State *L, int i) {
  nn_tensor *p = l_checktensor(L, i);
  if (!nn_tensor_is_contiguous(p))
    luaL_argerror(L, i, "parameter must be contiguous");
  if (!p->grad) luaL_argerror(L, i, "parameter has no gradient");
  nn_tensor_touch(p); /* the step writes it */
  return p;
}

/* A state tensor at index i with n contiguous elements, or NULL when nil
 * and optional. */
static float *checkstate(lua_State *L, int i, int64_t n, int optional) {
  if (optional && lua_isnoneornil(L, i)) return NULL;
  nn_tensor *s = l_checktensor(L, i);
  if (!nn_tensor_is_contiguous(s) || nn_tensor_numel(s) != n)
    luaL_argerror(L, i, "state tensor does not match the parameter");
  nn_tensor_touch(s);
  return nn_data(s);
}

static float numarg(lua_State *L, int i) {
  return (float)luaL_checknumber(L, i);
}

/* sgd_step(p, buf|nil, step, lr, momentum, dampening, weight_decay,
 * nesterov) */
static int l_sgd_step(lua_State *L) {
  nn_tensor *p = checkparam(L, 1);
  int64_t n = nn_tensor_numel(p);
  float *buf = checkstate(L, 2, n, 1);
  nn_sgd_opts o = {numarg(L, 4), numarg(L, 5), numarg(L, 6), numarg(L, 7),
                   lua_toboolean(L, 8)};
  if (o.momentum != 0 && !buf)
    luaL_argerror(L, 2, "momentum needs a buffer");
  nn_sgd_step(l_ctx(L), nn_data(p), nn_data(p->grad), buf, n, &o,
              luaL_checkinteger(L, 3));
  return 0;
}

/* adagrad_step(p, sum, step, lr, lr_decay, weight_decay, eps) */
static int l_adagrad_step(lua_State *L) {
  nn_tensor *p = checkparam(L, 1);
  int64_t n = nn_tensor_numel(p);
  float *sum = checkstate(L, 2, n, 0);
  nn_adagrad_opts o = {numarg(L, 4), numarg(L, 5), numarg(L, 6),
                       numarg(L, 7)};
  nn_adagrad_step(l_ctx(L), nn_data(p), nn_data(p->grad), sum, n, &o,
                  luaL_checkinteger(L, 3));
  return 0;
}

/* rmsprop_step(p, square_avg, grad_avg|nil, buf|nil, step, lr, alpha, eps,
 * weight_decay, momentum, centered) */
static int l_rmsprop_step(lua_State *L) {
  nn_tensor *p = checkparam(L, 1);
  int64_t n = nn_tensor_numel(p);
  float *sq = checkstate(L, 2, n, 0);
  float *ga = checkstate(L, 3, n, 1);
  float *buf = checkstate(L, 4, n, 1);
  nn_rmsprop_opts o = {numarg(L, 6),  numarg(L, 7),  numarg(L, 8),
                       numarg(L, 9),  numarg(L, 10), lua_toboolean(L, 11)};
  if (o.centered && !ga) luaL_argerror(L, 3, "centered needs grad_avg");
  if (o.momentum > 0 && !buf) luaL_argerror(L, 4, "momentum needs a buffer");
  nn_rmsprop_step(l_ctx(L), nn_data(p), nn_data(p->grad), sq, ga, buf, n, &o,
                  luaL_checkinteger(L, 5));
  return 0;
}

/* adam_step(p, exp_avg, exp_avg_sq, max_exp_avg_sq|nil, step, lr, beta1,
 * beta2, eps, weight_decay, amsgrad, decoupled) */
static int l_adam_step(lua_State *L) {
  nn_tensor *p = checkparam(L, 1);
  int64_t n = nn_tensor_numel(p);
  float *m = checkstate(L, 2, n, 0);
  float *v = checkstate(L, 3, n, 0);
  float *mx = checkstate(L, 4, n, 1);
  nn_adam_opts o = {numarg(L, 6),         numarg(L, 7),        numarg(L, 8),
                    numarg(L, 9),         numarg(L, 10),       lua_toboolean(L, 11),
                    lua_toboolean(L, 12)};
  if (o.amsgrad && !mx) luaL_argerror(L, 4, "amsgrad needs max_exp_avg_sq");
  nn_adam_step(l_ctx(L), nn_data(p), nn_data(p->grad), m, v, mx, n, &o,
               luaL_checkinteger(L, 5));
  return 0;
}

static const luaL_Reg optim_fns[] = {{"sgd_step", l_sgd_step},
                                     {"adagrad_step", l_adagrad_step},
                                     {"rmsprop_step", l_rmsprop_step},
                                     {"adam_step", l_adam_step},
                                     {NULL, NULL}};

void l_open_optim(lua_State *L, int t, int ctx) {
  t = lua_absindex(L, t);
  lua_newtable(L);
  l_register(L, -1, ctx, optim_fns);
  lua_setfield(L, t, "optim");
}
