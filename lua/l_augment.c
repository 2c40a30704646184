/*
 * l_augment.c - Lua binding of the augmentation runtime, registered as
 * core.augment (used by lua/nn/augment.lua, which checks the user's
 * arguments and builds the specs):
 *
 *   compile(specs) -> nn.AugPipeline from an array of spec tables
 *     {kind = "RandomCrop", h =, w =, padding = {l, t, r, b}, ...} whose
 *     fields are the members of nn_aug_op (see the readers below)
 *   run(pipe, x) -> tensor, or nil, message, index of the failing spec
 *     (x [C,H,W] or [B,C,H,W]; draws its keys from the context RNG)
 *   crop(img, top, left, h, w [, padding, mode, fill]) -> tensor
 *   affine_matrix(angle, tx, ty, scale, shear_x, shear_y, cx, cy) -> {6}
 *   warp(img, matrix, interpolation [, fill]) -> tensor
 *   adjust(img, "brightness" | "contrast" | "saturation" | "hue", f)
 *     -> tensor
 *
 * The functional entries take one image [C,H,W] and return a new one.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/augment.h"
#include "binding.h"

#define NN_AUGPIPE_MT "nn.AugPipeline"

typedef struct pipeline {
  int n;
  nn_aug_op ops[];
} pipeline;

/* ---- Reading spec tables ---- */

/* Raises "bad argument #1 to 'compile' (spec i: msg)". */
static int spec_error(lua_State *L, int i, const char *msg) {
  return luaL_argerror(L, 1, lua_pushfstring(L, "spec %d: %s", i, msg));
}

/* Field k of the table at t as a number (def when nil). */
static double num_field(lua_State *L, int t, int i, const char *k, double def) {
  int ty = lua_getfield(L, t, k);
  double v = def;
  if (ty == LUA_TNUMBER)
    v = lua_tonumber(L, -1);
  else if (ty != LUA_TNIL)
    spec_error(L, i, lua_pushfstring(L, "field '%s' must be a number", k));
  lua_pop(L, 1);
  return v;
}

static int int_field(lua_State *L, int t, int i, const char *k, int def) {
  int ty = lua_getfield(L, t, k);
  int v = def, isint = 0;
  if (ty != LUA_TNIL) {
    lua_Integer x = lua_tointegerx(L, -1, &isint);
    if (!isint || x < -(1 << 30) || x > (1 << 30))
      spec_error(L, i, lua_pushfstring(L, "field '%s' must be an integer", k));
    v = (int)x;
  }
  lua_pop(L, 1);
  return v;
}

static int bool_field(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Array field k of numbers into out (at most max); returns the count, 0
 * when the field is nil. */
static int list_field(lua_State *L, int t, int i, const char *k, double *out,
                      int max) {
  int ty = lua_getfield(L, t, k);
  int n = 0;
  if (ty == LUA_TTABLE) {
    n = (int)luaL_len(L, -1);
    if (n > max)
      spec_error(
          L, i,
          lua_pushfstring(L, "field '%s' has more than %d values", k, max));
    for (int j = 0; j < n; j++) {
      if (lua_geti(L, -1, j + 1) != LUA_TNUMBER)
        spec_error(L, i, lua_pushfstring(L, "field '%s' must hold numbers", k));
      out[j] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else if (ty != LUA_TNIL) {
    spec_error(L, i, lua_pushfstring(L, "field '%s' must be a table", k));
  }
  lua_pop(L, 1);
  return n;
}

/* A {min, max} field; returns 1 when present. */
static int pair_field(lua_State *L, int t, int i, const char *k,
                      double out[2]) {
  double v[2];
  int n = list_field(L, t, i, k, v, 2);
  if (n == 0) return 0;
  if (n != 2)
    spec_error(L, i, lua_pushfstring(L, "field '%s' must have 2 values", k));
  out[0] = v[0];
  out[1] = v[1];
  return 1;
}

static void fill_field(lua_State *L, int t, int i, nn_aug_fill *fill) {
  double v[NN_AUG_MAX_CHANNELS];
  int n = list_field(L, t, i, "fill", v, NN_AUG_MAX_CHANNELS);
  if (n == 0) {
    fill->n = 1;
    fill->v[0] = 0.0f;
    return;
  }
  fill->n = n;
  for (int j = 0; j < n; j++) fill->v[j] = (float)v[j];
}

static nn_pad_mode mode_field(lua_State *L, int t, int i) {
  static const char *const modes[] = {"constant", "edge", "reflect",
                                      "symmetric", NULL};
  lua_getfield(L, t, "padding_mode");
  const char *m = lua_isnil(L, -1) ? "constant" : lua_tostring(L, -1);
  int k = -1;
  for (int j = 0; m && modes[j]; j++)
    if (strcmp(m, modes[j]) == 0) k = j;
  if (k < 0) spec_error(L, i, "unknown padding_mode");
  lua_pop(L, 1);
  return (nn_pad_mode)k;
}

static nn_interp interp_field(lua_State *L, int t, int i) {
  lua_getfield(L, t, "interpolation");
  const char *m = lua_isnil(L, -1) ? "nearest" : lua_tostring(L, -1);
  int k = -1;
  if (m && strcmp(m, "nearest") == 0) k = NN_INTERP_NEAREST;
  if (m && strcmp(m, "bilinear") == 0) k = NN_INTERP_BILINEAR;
  if (k < 0) spec_error(L, i, "interpolation must be 'nearest' or 'bilinear'");
  lua_pop(L, 1);
  return (nn_interp)k;
}

static void read_resize(lua_State *L, int t, int i, nn_aug_op *op) {
  op->u.resize.h = int_field(L, t, i, "h", 0);
  op->u.resize.w = int_field(L, t, i, "w", 0);
  op->u.resize.max_size = int_field(L, t, i, "max_size", 0);
}

static void read_center_crop(lua_State *L, int t, int i, nn_aug_op *op) {
  op->u.center_crop.h = int_field(L, t, i, "h", 0);
  op->u.center_crop.w = int_field(L, t, i, "w", 0);
}

static void read_crop(lua_State *L, int t, int i, nn_aug_op *op) {
  double p[4] = {0, 0, 0, 0};
  op->u.crop.h = int_field(L, t, i, "h", 1);
  op->u.crop.w = int_field(L, t, i, "w", 1);
  int n = list_field(L, t, i, "padding", p, 4);
  if (n != 0 && n != 4) spec_error(L, i, "field 'padding' must have 4 values");
  for (int j = 0; j < 4; j++) op->u.crop.padding[j] = (int)p[j];
  op->u.crop.pad_if_needed = bool_field(L, t, "pad_if_needed");
  op->u.crop.mode = mode_field(L, t, i);
  fill_field(L, t, i, &op->u.crop.fill);
}

static void read_resized_crop(lua_State *L, int t, int i, nn_aug_op *op) {
  op->u.resized_crop.h = int_field(L, t, i, "h", 0);
  op->u.resized_crop.w = int_field(L, t, i, "w", 0);
  if (!pair_field(L, t, i, "scale", op->u.resized_crop.scale)) {
    op->u.resized_crop.scale[0] = 0.08;
    op->u.resized_crop.scale[1] = 1.0;
  }
  if (!pair_field(L, t, i, "ratio", op->u.resized_crop.ratio)) {
    op->u.resized_crop.ratio[0] = 3.0 / 4.0;
    op->u.resized_crop.ratio[1] = 4.0 / 3.0;
  }
}

static void read_flip(lua_State *L, int t, int i, nn_aug_op *op) {
  op->u.flip.p = num_field(L, t, i, "p", 0.5);
}

static void read_affine(lua_State *L, int t, int i, nn_aug_op *op) {
  if (!pair_field(L, t, i, "degrees", op->u.affine.degrees))
    spec_error(L, i, "field 'degrees' is required");
  op->u.affine.has_translate =
      pair_field(L, t, i, "translate", op->u.affine.translate);
  op->u.affine.has_scale = pair_field(L, t, i, "scale", op->u.affine.scale);
  op->u.affine.nshear = list_field(L, t, i, "shear", op->u.affine.shear, 4);
  op->u.affine.has_center = pair_field(L, t, i, "center", op->u.affine.center);
  op->u.affine.interp = interp_field(L, t, i);
  fill_field(L, t, i, &op->u.affine.fill);
}

static void read_jitter(lua_State *L, int t, int i, nn_aug_op *op) {
  static const char *const keys[4] = {"brightness", "contrast", "saturation",
                                      "hue"};
  for (int k = 0; k < 4; k++)
    op->u.jitter.active[k] =
        pair_field(L, t, i, keys[k], op->u.jitter.range[k]);
}

static void read_blur(lua_State *L, int t, int i, nn_aug_op *op) {
  op->u.blur.kx = int_field(L, t, i, "kx", 0);
  op->u.blur.ky = int_field(L, t, i, "ky", 0);
  if (!pair_field(L, t, i, "sigma", op->u.blur.sigma)) {
    op->u.blur.sigma[0] = 0.1;
    op->u.blur.sigma[1] = 2.0;
  }
}

static void read_normalize(lua_State *L, int t, int i, nn_aug_op *op) {
  double m[NN_AUG_MAX_CHANNELS], s[NN_AUG_MAX_CHANNELS];
  int nm = list_field(L, t, i, "mean", m, NN_AUG_MAX_CHANNELS);
  int ns = list_field(L, t, i, "std", s, NN_AUG_MAX_CHANNELS);
  if (nm != ns) spec_error(L, i, "mean and std must have the same length");
  op->u.normalize.n = nm;
  for (int j = 0; j < nm; j++) {
    op->u.normalize.mean[j] = (float)m[j];
    op->u.normalize.std[j] = (float)s[j];
  }
}

typedef void (*reader_fn)(lua_State *L, int t, int i, nn_aug_op *op);

static const reader_fn readers[NN_AUG_KINDS] = {
    [NN_AUG_RESIZE] = read_resize,
    [NN_AUG_CENTER_CROP] = read_center_crop,
    [NN_AUG_RANDOM_CROP] = read_crop,
    [NN_AUG_RANDOM_RESIZED_CROP] = read_resized_crop,
    [NN_AUG_HFLIP] = read_flip,
    [NN_AUG_VFLIP] = read_flip,
    [NN_AUG_ROTATION] = read_affine,
    [NN_AUG_AFFINE] = read_affine,
    [NN_AUG_COLOR_JITTER] = read_jitter,
    [NN_AUG_GAUSSIAN_BLUR] = read_blur,
    [NN_AUG_NORMALIZE] = read_normalize,
    [NN_AUG_PAD] = read_crop,
};

/* core.augment.compile(specs) -> nn.AugPipeline.  Raises on a malformed
 * spec or parameters the runtime rejects ("RandomCrop: ..."). */
static int l_compile(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  luaL_argcheck(L, n >= 0 && n <= 4096, 1, "at most 4096 transforms");
  pipeline *p =
      lua_newuserdatauv(L, sizeof *p + (size_t)n * sizeof(nn_aug_op), 0);
  luaL_setmetatable(L, NN_AUGPIPE_MT);
  memset(p->ops, 0, (size_t)n * sizeof(nn_aug_op));
  p->n = (int)n;
  for (int i = 1; i <= (int)n; i++) {
    if (lua_geti(L, 1, i) != LUA_TTABLE) spec_error(L, i, "table expected");
    int t = lua_gettop(L);
    lua_getfield(L, t, "kind");
    const char *kind = lua_tostring(L, -1);
    int k = -1;
    for (int j = 0; kind && j < NN_AUG_KINDS; j++)
      if (strcmp(kind, nn_aug_name((nn_aug_kind)j)) == 0) k = j;
    if (k < 0) spec_error(L, i, "unknown kind");
    lua_pop(L, 1);
    nn_aug_op *op = &p->ops[i - 1];
    op->kind = (nn_aug_kind)k;
    readers[k](L, t, i, op);
    nn_error err;
    if (nn_aug_check_op(op, &err))
      return l_raise(L, nn_aug_name(op->kind), &err);
    lua_pop(L, 1);
  }
  return 1;
}

/* core.augment.run(pipe, x) -> y | nil, message, failing spec index (0
 * when no single transform is to blame). */
static int l_run(lua_State *L) {
  pipeline *p = luaL_checkudata(L, 1, NN_AUGPIPE_MT);
  nn_tensor *x = l_checktensor(L, 2);
  nn_tensor *out;
  nn_error err;
  int bad = -1;
  if (nn_aug_run(l_ctx(L), p->ops, p->n, x, &out, &bad, &err)) {
    lua_pushnil(L);
    lua_pushstring(L, err.msg);
    lua_pushinteger(L, bad + 1);
    return 3;
  }
  l_pushtensor(L, out);
  return 1;
}

/* #pipe -> number of transforms. */
static int l_pipe_len(lua_State *L) {
  pipeline *p = luaL_checkudata(L, 1, NN_AUGPIPE_MT);
  lua_pushinteger(L, p->n);
  return 1;
}

/* ---- Functional entries ---- */

/* The image at index i as a contiguous [C,H,W] tensor (owned), or raises. */
static nn_tensor *check_image(lua_State *L, int i, int *c, int *h, int *w) {
  nn_tensor *t = l_checktensor(L, i);
  char s[128];
  if (t->ndim != 3 || t->shape[0] < 1 || t->shape[1] < 1 || t->shape[2] < 1 ||
      t->shape[0] > 4096 || t->shape[1] > NN_AUG_MAX_SIDE ||
      t->shape[2] > NN_AUG_MAX_SIDE) {
    nn_tensor_shape_str(t, s, sizeof s);
    luaL_argerror(L, i,
                  lua_pushfstring(L, "expected an image [C, H, W], got %s", s));
  }
  *c = (int)t->shape[0];
  *h = (int)t->shape[1];
  *w = (int)t->shape[2];
  nn_error err;
  nn_tensor *r = nn_tensor_contiguous(t, &err);
  if (!r) l_raise(L, NULL, &err);
  return r;
}

/* A new contiguous [c, h, w] tensor, or raises after releasing src. */
static nn_tensor *new_image(lua_State *L, nn_tensor *src, int c, int h, int w) {
  nn_error err;
  nn_tensor *t = nn_tensor_empty(3, (int64_t[3]){c, h, w}, &err);
  if (!t) {
    nn_tensor_release(src);
    l_raise(L, NULL, &err);
  }
  return t;
}

static int checkside(lua_State *L, int i, int lo) {
  lua_Integer v = luaL_checkinteger(L, i);
  luaL_argcheck(L, v >= lo && v <= NN_AUG_MAX_SIDE, i, "size out of range");
  return (int)v;
}

/* Reads an optional fill (number or array) at index i; 0 when absent. */
static int opt_fill(lua_State *L, int i, nn_aug_fill *fill) {
  fill->n = 1;
  fill->v[0] = 0.0f;
  if (lua_isnoneornil(L, i)) return 0;
  if (lua_type(L, i) == LUA_TNUMBER) {
    fill->v[0] = (float)lua_tonumber(L, i);
    return 1;
  }
  luaL_checktype(L, i, LUA_TTABLE);
  int n = (int)luaL_len(L, i);
  luaL_argcheck(L, n >= 1 && n <= NN_AUG_MAX_CHANNELS, i,
                "fill must have 1..64 values");
  fill->n = n;
  for (int j = 0; j < n; j++) {
    lua_geti(L, i, j + 1);
    fill->v[j] = (float)luaL_checknumber(L, -1);
    lua_pop(L, 1);
  }
  return 1;
}

/* crop(img, top, left, h, w [, {l, t, r, b}, mode, fill]) -> tensor. */
static int l_crop(lua_State *L) {
  static const char *const modes[] = {"constant", "edge", "reflect",
                                      "symmetric", NULL};
  lua_Integer top = luaL_checkinteger(L, 2), left = luaL_checkinteger(L, 3);
  int oh = checkside(L, 4, 1), ow = checkside(L, 5, 1);
  luaL_argcheck(L, top > -NN_AUG_MAX_SIDE && top < NN_AUG_MAX_SIDE, 2,
                "out of range");
  luaL_argcheck(L, left > -NN_AUG_MAX_SIDE && left < NN_AUG_MAX_SIDE, 3,
                "out of range");
  int pad[4] = {0, 0, 0, 0};
  if (!lua_isnoneornil(L, 6)) {
    luaL_checktype(L, 6, LUA_TTABLE);
    for (int j = 0; j < 4; j++) {
      lua_geti(L, 6, j + 1);
      lua_Integer v = luaL_checkinteger(L, -1);
      luaL_argcheck(L, v >= 0 && v <= NN_AUG_MAX_SIDE, 6,
                    "padding out of range");
      pad[j] = (int)v;
      lua_pop(L, 1);
    }
  }
  nn_pad_mode mode = (nn_pad_mode)luaL_checkoption(L, 7, "constant", modes);
  nn_aug_fill fill;
  opt_fill(L, 8, &fill);
  int c, h, w;
  nn_tensor *src = check_image(L, 1, &c, &h, &w);
  if (fill.n != 1 && fill.n != c) {
    nn_tensor_release(src);
    luaL_argerror(L, 8, "fill must have 1 value or one per channel");
  }
  nn_tensor *dst = new_image(L, src, c, oh, ow);
  nn_aug_crop(nn_data(src), c, h, w, nn_data(dst), (int)top, (int)left, oh, ow,
              pad, mode, &fill);
  nn_tensor_release(src);
  l_pushtensor(L, dst);
  return 1;
}

/* affine_matrix(angle, tx, ty, scale, shear_x, shear_y, cx, cy) -> {6}. */
static int l_affine_matrix(lua_State *L) {
  double a[8];
  for (int i = 0; i < 8; i++) a[i] = luaL_checknumber(L, i + 1);
  luaL_argcheck(L, a[3] > 0.0, 4, "scale must be positive");
  double m[6];
  nn_aug_affine_matrix(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], m);
  lua_createtable(L, 6, 0);
  for (int i = 0; i < 6; i++) {
    lua_pushnumber(L, m[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* warp(img, matrix, "nearest" | "bilinear" [, fill]) -> tensor; without a
 * fill, what falls outside is zero (torchvision's fill=None). */
static int l_warp(lua_State *L) {
  static const char *const interps[] = {"nearest", "bilinear", NULL};
  luaL_checktype(L, 2, LUA_TTABLE);
  double m[6];
  for (int j = 0; j < 6; j++) {
    lua_geti(L, 2, j + 1);
    m[j] = luaL_checknumber(L, -1);
    lua_pop(L, 1);
  }
  nn_interp interp = (nn_interp)luaL_checkoption(L, 3, "nearest", interps);
  nn_aug_fill fill;
  int has_fill = opt_fill(L, 4, &fill);
  int c, h, w;
  nn_tensor *src = check_image(L, 1, &c, &h, &w);
  if (fill.n != 1 && fill.n != c) {
    nn_tensor_release(src);
    luaL_argerror(L, 4, "fill must have 1 value or one per channel");
  }
  nn_tensor *dst = new_image(L, src, c, h, w);
  nn_aug_warp(nn_data(src), c, h, w, nn_data(dst), m, interp,
              has_fill ? &fill : NULL);
  nn_tensor_release(src);
  l_pushtensor(L, dst);
  return 1;
}

/* adjust(img, which, factor) -> tensor (torchvision's F.adjust_*). */
static int l_adjust(lua_State *L) {
  static const char *const names[] = {"brightness", "contrast", "saturation",
                                      "hue", NULL};
  static void (*const fns[4])(float *, int, int, int, double) = {
      nn_aug_adjust_brightness, nn_aug_adjust_contrast,
      nn_aug_adjust_saturation, nn_aug_adjust_hue};
  int which = luaL_checkoption(L, 2, NULL, names);
  double f = luaL_checknumber(L, 3);
  if (which == NN_JITTER_HUE)
    luaL_argcheck(L, f >= -0.5 && f <= 0.5, 3,
                  "hue factor must be in [-0.5, 0.5]");
  else
    luaL_argcheck(L, f >= 0.0 && f < HUGE_VAL, 3,
                  "factor must be non-negative");
  int c, h, w;
  nn_tensor *src = check_image(L, 1, &c, &h, &w);
  if (c != 1 && c != 3) {
    nn_tensor_release(src);
    luaL_argerror(
        L, 1,
        lua_pushfstring(
            L, "expected an image with 1 or 3 channels, got [%d, %d, %d]", c, h,
            w));
  }
  nn_tensor *dst = new_image(L, src, c, h, w);
  memcpy(nn_data(dst), nn_data(src), (size_t)c * h * w * sizeof(float));
  nn_tensor_release(src);
  fns[which](nn_data(dst), c, h, w, f);
  l_pushtensor(L, dst);
  return 1;
}

static const luaL_Reg augment_fns[] = {{"compile", l_compile},
                                       {"run", l_run},
                                       {"crop", l_crop},
                                       {"affine_matrix", l_affine_matrix},
                                       {"warp", l_warp},
                                       {"adjust", l_adjust},
                                       {NULL, NULL}};

void l_open_augment(lua_State *L, int t, int ctx) {
  luaL_newmetatable(L, NN_AUGPIPE_MT);
  lua_pushcfunction(L, l_pipe_len);
  lua_setfield(L, -2, "__len");
  lua_pop(L, 1);
  lua_newtable(L);
  l_register(L, -1, ctx, augment_fns);
  lua_setfield(L, t, "augment");
}
