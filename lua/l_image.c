/*
 * l_image.c - Lua binding of image decoding, encoding and resizing,
 * registered as core.image (nn.image):
 *
 *   load(path [, {channels=3, size=nil|n|{h,w}, draft=true}]) -> [C,H,W]
 *   save(path, t)                       PNG, t [C,H,W] (C = 1, 3, 4) or [H,W]
 *   save_jpeg(path, t [, {quality=75}]) JPEG, t [C,H,W] (C = 1, 3) or [H,W]
 *   resize(t, size) -> tensor [..., h, w]   size = n (smaller edge) or {h,w}
 *   info(path) -> {width=, height=, channels=, bit_depth=, format=}
 *   new_store(n, c, h, w [, {mmap=path, labels=array}]) -> nn.ImageStore
 *   load_into(store, i, path [, {size={h,w}, draft=true}])
 *   load_batch_into(store, indices, paths [, {size={h,w}, draft=true}])
 *
 * Bad arguments raise "bad argument #n to 'f' (...)"; a file that cannot be
 * read or decoded raises the runtime's message, which starts with
 * "image '<path>': ".  See runtime/image.h for the conversions.
 */
#include <stdlib.h>
#include <string.h>

#include "../runtime/image.h"
#include "../runtime/resize.h"
#include "binding.h"

/* Reads a size given as a positive integer (the smaller edge: *w = 0) or
 * as {h, w} from the value at index v; on failure raises as argument arg,
 * naming `what` ("option 'size'" or "size"). */
static void checksize(lua_State *L, int v, int arg, const char *what, int *h,
                      int *w) {
  int isint = 0;
  if (lua_type(L, v) == LUA_TNUMBER) {
    lua_Integer n = lua_tointegerx(L, v, &isint);
    if (isint && n >= 1 && n <= NN_IMAGE_MAX_SIDE) {
      *h = (int)n;
      *w = 0;
      return;
    }
  } else if (lua_type(L, v) == LUA_TTABLE && luaL_len(L, v) == 2) {
    lua_Integer s[2];
    int ok = 1;
    for (int k = 0; k < 2; k++) {
      lua_geti(L, v, k + 1);
      s[k] = lua_tointegerx(L, -1, &isint);
      ok = ok && lua_type(L, -1) == LUA_TNUMBER && isint && s[k] >= 1 &&
           s[k] <= NN_IMAGE_MAX_SIDE;
      lua_pop(L, 1);
    }
    if (ok) {
      *h = (int)s[0];
      *w = (int)s[1];
      return;
    }
  }
  const char *got = lua_type(L, v) == LUA_TTABLE
                        ? lua_pushfstring(L, "a table of length %I",
                                          luaL_len(L, v))
                        : luaL_tolstring(L, v, NULL);
  luaL_argerror(L, arg,
                lua_pushfstring(L, "%s must be an integer in 1..%d or {h, w} "
                                   "of such integers, got %s",
                                what, NN_IMAGE_MAX_SIDE, got));
}

/* Option 'size' of the options table at index opts (0, 0 when absent). */
static void optsize(lua_State *L, int opts, int *h, int *w) {
  *h = *w = 0;
  if (lua_type(L, opts) != LUA_TTABLE) return;
  if (lua_getfield(L, opts, "size") != LUA_TNIL)
    checksize(L, lua_gettop(L), opts, "option 'size'", h, w);
  lua_pop(L, 1);
}

/* A tensor argument that save/save_jpeg can write: [C,H,W] with C in the
 * allowed set, or [H,W]. */
static nn_tensor *checkimage(lua_State *L, int i, int jpeg) {
  nn_tensor *t = l_checktensor(L, i);
  int ok = t->ndim == 2 || t->ndim == 3;
  if (ok) {
    int64_t c = t->ndim == 3 ? t->shape[0] : 1;
    int64_t h = t->shape[t->ndim - 2], w = t->shape[t->ndim - 1];
    ok = (c == 1 || c == 3 || (c == 4 && !jpeg)) && h >= 1 &&
         h <= NN_IMAGE_MAX_SIDE && w >= 1 && w <= NN_IMAGE_MAX_SIDE;
  }
  if (!ok) {
    char s[128];
    nn_tensor_shape_str(t, s, sizeof s);
    luaL_argerror(L, i,
                  lua_pushfstring(L, "expected an image tensor of shape [C, "
                                     "H, W] with C in %s, or [H, W], got %s",
                                  jpeg ? "1, 3" : "1, 3, 4", s));
  }
  return t;
}

/* nn.image.load(path [, opts]) -> tensor [C, H, W] in [0, 1]. */
static int l_load(lua_State *L) {
  static const char *const allowed[] = {"channels", "size", "draft", NULL};
  const char *path = luaL_checkstring(L, 1);
  l_checkopts(L, 2, allowed);
  nn_image_opts o;
  lua_Integer c = l_optinteger(L, 2, "channels", 3);
  if (c != 1 && c != 3 && c != 4)
    luaL_argerror(L, 2,
                  lua_pushfstring(L, "option 'channels' must be 1, 3 or 4, "
                                     "got %I",
                                  c));
  o.channels = (int)c;
  optsize(L, 2, &o.size_h, &o.size_w);
  o.draft = l_optboolean(L, 2, "draft", 1);
  nn_error err;
  nn_tensor *t = nn_image_load(path, &o, &err);
  if (!t) return l_raise(L, NULL, &err);
  l_pushtensor(L, t);
  return 1;
}

/* nn.image.save(path, t): writes t as an 8-bit PNG. */
static int l_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  nn_tensor *t = checkimage(L, 2, 0);
  nn_error err;
  if (nn_image_save_png(path, t, &err)) return l_raise(L, NULL, &err);
  return 0;
}

/* nn.image.save_jpeg(path, t [, {quality=75}]): writes t as a JPEG. */
static int l_save_jpeg(lua_State *L) {
  static const char *const allowed[] = {"quality", NULL};
  const char *path = luaL_checkstring(L, 1);
  nn_tensor *t = checkimage(L, 2, 1);
  l_checkopts(L, 3, allowed);
  lua_Integer q = l_optinteger(L, 3, "quality", 75);
  if (q < 1 || q > 100)
    luaL_argerror(L, 3,
                  lua_pushfstring(L, "option 'quality' must be in 1..100, "
                                     "got %I",
                                  q));
  nn_error err;
  if (nn_image_save_jpeg(path, t, (int)q, &err)) return l_raise(L, NULL, &err);
  return 0;
}

/* nn.image.resize(t, size) -> new tensor, the last two dimensions resized
 * (bilinear, antialiased when shrinking). */
static int l_resize(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  int sh, sw, oh, ow;
  checksize(L, 2, 2, "size", &sh, &sw);
  if (t->ndim < 2 || t->shape[t->ndim - 2] < 1 || t->shape[t->ndim - 1] < 1 ||
      t->shape[t->ndim - 2] > NN_IMAGE_MAX_SIDE ||
      t->shape[t->ndim - 1] > NN_IMAGE_MAX_SIDE) {
    char s[128];
    nn_tensor_shape_str(t, s, sizeof s);
    luaL_argerror(L, 1,
                  lua_pushfstring(L, "expected a tensor of shape [..., H, W] "
                                     "with H and W in 1..%d, got %s",
                                  NN_IMAGE_MAX_SIDE, s));
  }
  nn_error err;
  if (nn_resize_output_size((int)t->shape[t->ndim - 2],
                            (int)t->shape[t->ndim - 1], sh, sw,
                            NN_IMAGE_MAX_SIDE, &oh, &ow, &err))
    return l_raise(L, "resize", &err);
  nn_tensor *out = nn_resize_tensor(l_ctx(L), t, oh, ow, &err);
  if (!out) return l_raise(L, "resize", &err);
  l_pushtensor(L, out);
  return 1;
}

/* nn.image.info(path) -> {width=, height=, channels=, bit_depth=,
 * format="png"|"jpeg"}, from the header only. */
static int l_info(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  nn_image_info info;
  nn_error err;
  if (nn_image_info_read(path, &info, &err)) return l_raise(L, NULL, &err);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, info.width);
  lua_setfield(L, -2, "width");
  lua_pushinteger(L, info.height);
  lua_setfield(L, -2, "height");
  lua_pushinteger(L, info.channels);
  lua_setfield(L, -2, "channels");
  lua_pushinteger(L, info.bit_depth);
  lua_setfield(L, -2, "bit_depth");
  lua_pushstring(L, nn_image_format_name(info.format));
  lua_setfield(L, -2, "format");
  return 1;
}

/* nn.image.new_store(n, c, h, w [, {mmap=path, labels=array}]) -> an empty
 * (zeroed) nn.ImageStore; labels are 1-based (default all 1). */
static int l_new_store(lua_State *L) {
  static const char *const allowed[] = {"mmap", "labels", NULL};
  lua_Integer n = luaL_checkinteger(L, 1);
  lua_Integer dims[3];
  for (int k = 0; k < 3; k++) dims[k] = luaL_checkinteger(L, k + 2);
  if (n < 0 || n > NN_IMAGESTORE_MAX_COUNT)
    luaL_argerror(L, 1,
                  lua_pushfstring(L, "image count must be in 0..%I, got %I",
                                  (lua_Integer)NN_IMAGESTORE_MAX_COUNT, n));
  if (dims[0] != 1 && dims[0] != 3 && dims[0] != 4)
    luaL_argerror(L, 2,
                  lua_pushfstring(L, "channels must be 1, 3 or 4, got %I",
                                  dims[0]));
  for (int k = 1; k < 3; k++)
    if (dims[k] < 1 || dims[k] > NN_IMAGE_MAX_SIDE)
      luaL_argerror(L, k + 2,
                    lua_pushfstring(L, "%s must be in 1..%d, got %I",
                                    k == 1 ? "height" : "width",
                                    NN_IMAGE_MAX_SIDE, dims[k]));
  l_checkopts(L, 5, allowed);
  const char *mmap_path = l_optstring(L, 5, "mmap", NULL);
  int has_labels = 0;
  if (lua_type(L, 5) == LUA_TTABLE) {
    has_labels = lua_getfield(L, 5, "labels") != LUA_TNIL;
    if (!has_labels) lua_pop(L, 1);
  }
  if (has_labels) { /* checked before the store exists; stays on top */
    if (lua_type(L, -1) != LUA_TTABLE || luaL_len(L, -1) != n)
      luaL_argerror(L, 5,
                    lua_pushfstring(L, "option 'labels' must be an array of "
                                       "%I labels",
                                    n));
    for (lua_Integer k = 1; k <= n; k++) {
      int isint = 0;
      lua_geti(L, -1, k);
      lua_Integer v = lua_tointegerx(L, -1, &isint);
      if (lua_type(L, -1) != LUA_TNUMBER || !isint || v < 1 || v > INT32_MAX)
        luaL_argerror(L, 5,
                      lua_pushfstring(L, "label %I must be a positive "
                                         "integer, got %s",
                                      k, luaL_tolstring(L, -1, NULL)));
      lua_pop(L, 1);
    }
  }
  nn_error err;
  nn_imagestore *s = nn_image_store_new(n, (int)dims[0], (int)dims[1],
                                        (int)dims[2], mmap_path, &err);
  if (!s) return l_raise(L, "new_store", &err);
  if (has_labels) { /* the labels table is on top; nothing here raises */
    for (lua_Integer k = 1; k <= n; k++) {
      lua_geti(L, -1, k);
      s->labels[k - 1] = (int32_t)(lua_tointeger(L, -1) - 1);
      lua_pop(L, 1);
    }
  }
  l_pushimagestore(L, s);
  return 1;
}

/* Options of load_into / load_batch_into at index opts: the size must be
 * the store's (it is only a check), draft is returned. */
static int store_opts(lua_State *L, int opts, const nn_imagestore *s) {
  static const char *const allowed[] = {"size", "draft", NULL};
  l_checkopts(L, opts, allowed);
  int h, w;
  optsize(L, opts, &h, &w);
  if (h > 0 && (w == 0 || h != s->h || w != s->w))
    luaL_argerror(L, opts,
                  lua_pushfstring(L, "option 'size' must be the store's image "
                                     "size {%d, %d}",
                                  s->h, s->w));
  return l_optboolean(L, opts, "draft", 1);
}

/* nn.image.load_into(store, i, path [, opts]): decodes path into slot i
 * (1-based) of store. */
static int l_load_into(lua_State *L) {
  nn_imagestore *s = l_checkimagestore(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  const char *path = luaL_checkstring(L, 3);
  if (i < 1 || i > s->n)
    luaL_argerror(L, 2,
                  lua_pushfstring(L, "index %I is out of range 1..%I", i,
                                  (lua_Integer)s->n));
  int draft = store_opts(L, 4, s);
  nn_error err;
  if (nn_image_load_into(s, (int64_t)i - 1, path, draft, &err))
    return l_raise(L, NULL, &err);
  return 0;
}

/* nn.image.load_batch_into(store, indices, paths [, opts]): decodes
 * paths[k] into slot indices[k] (1-based) of store, in parallel.  Raises
 * with the error of the first failing file. */
static int l_load_batch_into(lua_State *L) {
  nn_imagestore *s = l_checkimagestore(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  int draft = store_opts(L, 4, s);
  lua_Integer n = luaL_len(L, 2);
  if (luaL_len(L, 3) != n)
    luaL_argerror(L, 3,
                  lua_pushfstring(L, "expected %I paths (one per index), got "
                                     "%I",
                                  n, luaL_len(L, 3)));
  for (lua_Integer k = 1; k <= n; k++) {
    int isint = 0;
    lua_geti(L, 2, k);
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (lua_type(L, -1) != LUA_TNUMBER || !isint || v < 1 || v > s->n)
      luaL_argerror(L, 2,
                    lua_pushfstring(L, "index at position %I must be an "
                                       "integer in 1..%I, got %s",
                                    k, (lua_Integer)s->n,
                                    luaL_tolstring(L, -1, NULL)));
    lua_pop(L, 1);
    if (lua_geti(L, 3, k) != LUA_TSTRING)
      luaL_argerror(L, 3,
                    lua_pushfstring(L, "path at position %I must be a string, "
                                       "got %s",
                                    k, luaL_typename(L, -1)));
    lua_pop(L, 1);
  }
  /* The paths stay anchored in table 3 while C runs (no Lua code runs). */
  int64_t *slots = malloc((size_t)(n > 0 ? n : 1) * sizeof *slots);
  const char **paths = malloc((size_t)(n > 0 ? n : 1) * sizeof *paths);
  if (!slots || !paths) {
    free(slots);
    free(paths);
    return luaL_error(L, "load_batch_into: out of memory");
  }
  for (lua_Integer k = 1; k <= n; k++) {
    lua_geti(L, 2, k);
    slots[k - 1] = (int64_t)lua_tointeger(L, -1) - 1;
    lua_geti(L, 3, k);
    paths[k - 1] = lua_tostring(L, -1);
    lua_pop(L, 2);
  }
  nn_error err;
  int rc = nn_image_load_batch_into(l_ctx(L), s, slots, paths, (int64_t)n,
                                    draft, &err);
  free(slots);
  free(paths);
  if (rc) return l_raise(L, NULL, &err);
  return 0;
}

static const luaL_Reg image_fns[] = {{"load", l_load},
                                     {"save", l_save},
                                     {"save_jpeg", l_save_jpeg},
                                     {"resize", l_resize},
                                     {"info", l_info},
                                     {"new_store", l_new_store},
                                     {"load_into", l_load_into},
                                     {"load_batch_into", l_load_batch_into},
                                     {NULL, NULL}};

void l_open_image(lua_State *L, int t, int ctx) {
  t = lua_absindex(L, t);
  ctx = lua_absindex(L, ctx);
  lua_newtable(L);
  l_register(L, -1, ctx, image_fns);
  lua_setfield(L, t, "image");
}
