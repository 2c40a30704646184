/*
 * l_data.c - Lua binding of the data layer, registered as core.data:
 *
 *   load_idx(images_path, labels_path) -> nn.ImageStore
 *   stack(list) -> tensor [B, ...] from an array of same-shape tensors
 *   randperm(n [, seed [, stream]]) -> array of 1-based indices
 *   random_seed() -> a non-negative integer drawn from the context RNG
 *
 * An nn.ImageStore userdata holds one reference to an nn_imagestore; its
 * methods take and return 1-based indices and labels.  The store is
 * read-only from Lua, so several datasets may share one.
 */
#include <stdlib.h>
#include <string.h>

#include "../runtime/idx.h"
#include "../runtime/imagestore.h"
#include "binding.h"

#define NN_IMAGESTORE_MT "nn.ImageStore"
/* Largest permutation randperm makes. */
#define MAX_PERM NN_IMAGESTORE_MAX_COUNT
/* Largest padding accepted from Lua (as the runtime's limit). */
#define MAX_PAD 4096

/* The live store at index i, or raises. */
static nn_imagestore *checkstore(lua_State *L, int i) {
  nn_imagestore **box = luaL_checkudata(L, i, NN_IMAGESTORE_MT);
  if (!*box) luaL_argerror(L, i, "image store has been closed");
  return *box;
}

nn_imagestore *l_checkimagestore(lua_State *L, int i) {
  if (!luaL_testudata(L, i, NN_IMAGESTORE_MT))
    luaL_typeerror(L, i, NN_IMAGESTORE_MT);
  return checkstore(L, i);
}

void l_pushimagestore(lua_State *L, nn_imagestore *s) {
  nn_imagestore **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = s;
  luaL_setmetatable(L, NN_IMAGESTORE_MT);
}

/* __gc and __close: drops the reference; a second call is harmless. */
static int l_store_gc(lua_State *L) {
  nn_imagestore **box = luaL_checkudata(L, 1, NN_IMAGESTORE_MT);
  nn_imagestore_release(*box);
  *box = NULL;
  return 0;
}

/* core.data.load_idx(images_path, labels_path) -> nn.ImageStore.  Raises
 * with a message naming the offending file. */
static int l_load_idx(lua_State *L) {
  const char *images = luaL_checkstring(L, 1);
  const char *labels = luaL_checkstring(L, 2);
  /* The userdata and its metatable exist before the store does, so the
   * store can never leak. */
  nn_imagestore **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, NN_IMAGESTORE_MT);
  nn_error err;
  *box = nn_idx_load(images, labels, &err);
  if (!*box) return l_raise(L, NULL, &err);
  return 1;
}

/* store:count() and #store -> number of images. */
static int l_store_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checkstore(L, 1)->n);
  return 1;
}

/* store:shape() -> {c, h, w}. */
static int l_store_shape(lua_State *L) {
  nn_imagestore *s = checkstore(L, 1);
  lua_createtable(L, 3, 0);
  lua_pushinteger(L, s->c);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, s->h);
  lua_rawseti(L, -2, 2);
  lua_pushinteger(L, s->w);
  lua_rawseti(L, -2, 3);
  return 1;
}

/* The 1-based image index at stack index i, checked; returns it 0-based. */
static int64_t checkindex(lua_State *L, int i, const nn_imagestore *s) {
  lua_Integer k = luaL_checkinteger(L, i);
  if (k < 1 || k > s->n)
    luaL_argerror(L, i,
                  lua_pushfstring(L, "index %I is out of range 1..%I", k,
                                  (lua_Integer)s->n));
  return k - 1;
}

/* Optional pad and channel arguments at stack indices i and i+1. */
static void checkpadchannels(lua_State *L, int i, const nn_imagestore *s,
                             int *pad, int *channels) {
  lua_Integer p = luaL_optinteger(L, i, 0);
  if (p < 0 || p > MAX_PAD)
    luaL_argerror(L, i,
                  lua_pushfstring(L, "pad must be in 0..%d, got %I", MAX_PAD,
                                  p));
  lua_Integer c = luaL_optinteger(L, i + 1, s->c);
  if (c < 1 || c > NN_IMAGESTORE_MAX_CHANNELS || (c != s->c && s->c != 1))
    luaL_argerror(L, i + 1,
                  lua_pushfstring(L,
                                  "channels must be %d for images with %d "
                                  "channels%s, got %I",
                                  s->c, s->c,
                                  s->c == 1 ? " (or any count, replicated)"
                                            : "",
                                  c));
  *pad = (int)p;
  *channels = (int)c;
}

/* store:get(i [, pad, channels]) -> image tensor [C,H,W] in [0,1], label
 * (1-based). */
static int l_store_get(lua_State *L) {
  nn_imagestore *s = checkstore(L, 1);
  int64_t k = checkindex(L, 2, s);
  int pad, channels;
  checkpadchannels(L, 3, s, &pad, &channels);
  nn_tensor *x;
  nn_error err;
  if (nn_imagestore_batch(l_ctx(L), s, &k, 1, pad, channels, &x, NULL, &err))
    return l_raise(L, "get", &err);
  nn_tensor *img = nn_tensor_reshape(x, 3, x->shape + 1, &err);
  nn_tensor_release(x);
  if (!img) return l_raise(L, "get", &err);
  l_pushtensor(L, img);
  lua_pushinteger(L, (lua_Integer)s->labels[k] + 1);
  return 2;
}

/* store:label(i) -> the 1-based label of image i. */
static int l_store_label(lua_State *L) {
  nn_imagestore *s = checkstore(L, 1);
  int64_t k = checkindex(L, 2, s);
  lua_pushinteger(L, (lua_Integer)s->labels[k] + 1);
  return 1;
}

/* Reads the Lua array of 1-based indices at stack index i into a new
 * malloc'ed array of 0-based indices; *b gets its length.  Raises naming
 * the first bad entry (nothing is allocated then). */
static int64_t *checkindices(lua_State *L, int i, int64_t limit,
                             int64_t *b) {
  luaL_checktype(L, i, LUA_TTABLE);
  lua_Integer n = luaL_len(L, i);
  for (lua_Integer k = 1; k <= n; k++) {
    lua_geti(L, i, k);
    int isint = 0;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint)
      luaL_argerror(L, i,
                    lua_pushfstring(L, "index at position %I must be an "
                                       "integer, got %s",
                                    k, luaL_tolstring(L, -1, NULL)));
    if (v < 1 || v > limit)
      luaL_argerror(L, i,
                    lua_pushfstring(L, "index %I at position %I is out of "
                                       "range 1..%I",
                                    v, k, (lua_Integer)limit));
    lua_pop(L, 1);
  }
  int64_t *idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *idx);
  if (!idx) luaL_error(L, "out of memory");
  for (lua_Integer k = 1; k <= n; k++) {
    lua_geti(L, i, k);
    idx[k - 1] = (int64_t)lua_tointeger(L, -1) - 1;
    lua_pop(L, 1);
  }
  *b = (int64_t)n;
  return idx;
}

/* store:batch(indices [, pad, channels]) -> x [B,C,H,W], y [B] (1-based
 * labels).  indices is a Lua array of 1-based image indices. */
static int l_store_batch(lua_State *L) {
  nn_imagestore *s = checkstore(L, 1);
  int pad, channels;
  checkpadchannels(L, 3, s, &pad, &channels);
  int64_t b;
  int64_t *idx = checkindices(L, 2, s->n, &b);
  nn_tensor *x, *y;
  nn_error err;
  int rc = nn_imagestore_batch(l_ctx(L), s, idx, b, pad, channels, &x, &y,
                               &err);
  free(idx);
  if (rc) return l_raise(L, "batch", &err);
  l_pushtensor(L, x);
  l_pushtensor(L, y);
  return 2;
}

/* store:labels() -> tensor [n] of the 1-based labels. */
static int l_store_labels(lua_State *L) {
  nn_imagestore *s = checkstore(L, 1);
  nn_error err;
  nn_tensor *t = nn_tensor_empty(1, &s->n, &err);
  if (!t) return l_raise(L, "labels", &err);
  float *d = nn_data(t);
  for (int64_t k = 0; k < s->n; k++) d[k] = (float)s->labels[k] + 1.0f;
  l_pushtensor(L, t);
  return 1;
}

/* tostring(store) -> "nn.ImageStore(60000 images of 1x28x28)". */
static int l_store_tostring(lua_State *L) {
  nn_imagestore **box = luaL_checkudata(L, 1, NN_IMAGESTORE_MT);
  if (!*box) {
    lua_pushliteral(L, "nn.ImageStore(closed)");
    return 1;
  }
  nn_imagestore *s = *box;
  lua_pushfstring(L, "nn.ImageStore(%I images of %dx%dx%d)",
                  (lua_Integer)s->n, s->c, s->h, s->w);
  return 1;
}

/* core.data.stack(list) -> tensor [B, ...]: the B same-shape tensors of the
 * Lua array list, stacked along a new first dimension. */
static int l_stack(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  if (n < 1) luaL_argerror(L, 1, "expected a non-empty array of tensors");
  nn_tensor *first = NULL;
  char a[128], b[128];
  for (lua_Integer k = 1; k <= n; k++) {
    lua_geti(L, 1, k);
    nn_tensor *t = l_totensor(L, -1);
    if (!t)
      luaL_argerror(L, 1,
                    lua_pushfstring(L, "element %I is not a tensor (got %s)",
                                    k, luaL_typename(L, -1)));
    if (!first) {
      first = t;
      if (t->ndim >= NN_MAX_DIMS)
        luaL_argerror(L, 1,
                      lua_pushfstring(L, "elements may have at most %d "
                                         "dimensions",
                                      NN_MAX_DIMS - 1));
    } else if (!nn_tensor_same_shape(t, first)) {
      nn_tensor_shape_str(t, a, sizeof a);
      nn_tensor_shape_str(first, b, sizeof b);
      luaL_argerror(L, 1,
                    lua_pushfstring(L, "element %I has shape %s, expected %s "
                                       "(the shape of element 1)",
                                    k, a, b));
    }
    lua_pop(L, 1); /* still referenced by the list */
  }
  int64_t shape[NN_MAX_DIMS];
  shape[0] = n;
  for (int d = 0; d < first->ndim; d++) shape[d + 1] = first->shape[d];
  int64_t per = nn_tensor_numel(first);
  if (per > 0 && n > NN_MAX_NUMEL / per)
    luaL_argerror(L, 1, "the stacked tensor would be too large");
  nn_error err;
  nn_tensor *out = nn_tensor_empty(first->ndim + 1, shape, &err);
  if (!out) return l_raise(L, "stack", &err);
  float *dst = nn_data(out);
  for (lua_Integer k = 1; k <= n; k++) {
    lua_geti(L, 1, k);
    nn_tensor *t = l_totensor(L, -1);
    float *row = dst + (k - 1) * per;
    if (nn_tensor_is_contiguous(t)) {
      memcpy(row, nn_data(t), (size_t)per * sizeof *row);
    } else {
      const float *src = nn_data(t);
      for (int64_t e = 0; e < per; e++)
        row[e] = src[nn_tensor_elem_offset(t, e)];
    }
    lua_pop(L, 1);
  }
  l_pushtensor(L, out);
  return 1;
}

/* core.data.randperm(n [, seed [, stream]]) -> Lua array holding a random
 * permutation of 1..n.  Without seed, drawn from the context RNG (one key);
 * with an integer seed, the permutation is a pure function of (seed,
 * stream) (stream defaults to 0) and the context RNG is left untouched. */
static int l_randperm(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 0 || n > MAX_PERM)
    luaL_argerror(L, 1,
                  lua_pushfstring(L, "n must be in 0..%I, got %I",
                                  (lua_Integer)MAX_PERM, n));
  int seeded = !lua_isnoneornil(L, 2);
  lua_Integer seed = seeded ? luaL_checkinteger(L, 2) : 0;
  lua_Integer stream = luaL_optinteger(L, 3, 0);
  if (stream < 0) luaL_argerror(L, 3, "stream must be non-negative");
  /* The table is made first: nothing below can raise while perm is held
   * (its slots are preallocated). */
  lua_createtable(L, (int)n, 0);
  int64_t *perm = malloc((size_t)(n > 0 ? n : 1) * sizeof *perm);
  if (!perm) return luaL_error(L, "randperm: out of memory");
  nn_ctx *ctx = l_ctx(L);
  if (seeded) {
    nn_ctx own = *ctx;
    nn_rng_seed(&own.rng, (uint64_t)seed);
    own.rng.counter = (uint64_t)stream;
    nn_randperm(&own, perm, n);
  } else {
    nn_randperm(ctx, perm, n);
  }
  for (lua_Integer k = 0; k < n; k++) {
    lua_pushinteger(L, (lua_Integer)perm[k] + 1);
    lua_rawseti(L, -2, k + 1);
  }
  free(perm);
  return 1;
}

/* core.data.random_seed() -> an integer in 0..2^63-1 drawn from the
 * context RNG (advances it by one key). */
static int l_random_seed(lua_State *L) {
  nn_ctx *ctx = l_ctx(L);
  uint64_t v = nn_rng_u64(nn_rng_key(&ctx->rng), 0) >> 1;
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

static const luaL_Reg store_methods[] = {{"count", l_store_count},
                                         {"shape", l_store_shape},
                                         {"get", l_store_get},
                                         {"label", l_store_label},
                                         {"batch", l_store_batch},
                                         {"labels", l_store_labels},
                                         {"close", l_store_gc},
                                         {NULL, NULL}};

static const luaL_Reg data_fns[] = {{"load_idx", l_load_idx},
                                    {"stack", l_stack},
                                    {"randperm", l_randperm},
                                    {"random_seed", l_random_seed},
                                    {NULL, NULL}};

void l_open_data(lua_State *L, int t, int ctx) {
  t = lua_absindex(L, t);
  ctx = lua_absindex(L, ctx);
  luaL_newmetatable(L, NN_IMAGESTORE_MT);
  lua_pushcfunction(L, l_store_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_store_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, l_store_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, l_store_count);
  lua_setfield(L, -2, "__len");
  lua_newtable(L);
  l_register(L, -1, ctx, store_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  l_register(L, -1, ctx, data_fns);
  lua_setfield(L, t, "data");
}
