/*
 * l_io.c - core.io: safetensors files and JSON for Lua values.
 *
 *   core.io.save_safetensors(path, names, tensors [, metadata [, fname]])
 *   core.io.load_safetensors(path [, fname]) -> tensors, metadata, names
 *   core.io.inspect_safetensors(path [, fname]) -> entries, metadata
 *   core.io.json_encode(value [, tensor_names]) -> string
 *   core.io.json_decode(string [, tensors]) -> value
 *
 * File errors are raised (loading or saving model state that fails should
 * stop the script), prefixed with fname (default: the function's name) and
 * naming the file: "load_safetensors: m.safetensors: header length 123456789
 * exceeds the file size 1024".
 *
 * JSON mapping of Lua values, exact both ways:
 * - a table whose keys are exactly 1..n (n >= 1) is an array; any other
 *   table an object with its keys sorted (integers first, then strings);
 * - integer keys are written as decimal strings ("3"); a string key that
 *   reads as such an integer, or that starts with '~', is written with one
 *   more '~' in front ("~3", "~~x"), which the reader strips;
 * - integers are written without and floats always with a '.' or exponent,
 *   so each reads back as the same subtype; non-finite floats as NaN,
 *   Infinity, -Infinity (as Python's json module does);
 * - a tensor is written {"~tensor": name}, name taken from the table
 *   tensor_names (tensor -> string), and read back as tensors[name];
 * - strings must be UTF-8; functions, other userdata, cycles, float or
 *   boolean keys, and nesting deeper than 256 are errors.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/json.h"
#include "../runtime/safetensors.h"
#include "binding.h"

#define ST_RESULT_MT "nn.io.safetensors"
#define JBUF_MT "nn.io.jbuf"
#define JDOC_MT "nn.io.json"

/* ---- Owners collected by the garbage collector (error-safe) ---- */

/* __gc of a userdata holding an nn_safetensors; a second call is harmless. */
static int st_result_gc(lua_State *L) {
  nn_safetensors_free(luaL_checkudata(L, 1, ST_RESULT_MT));
  return 0;
}

static int jbuf_gc(lua_State *L) {
  nn_jbuf_free(luaL_checkudata(L, 1, JBUF_MT));
  return 0;
}

static int jdoc_gc(lua_State *L) {
  nn_json_free(luaL_checkudata(L, 1, JDOC_MT));
  return 0;
}

/* Pushes a zeroed userdata of size n with metatable mt. */
static void *new_owner(lua_State *L, size_t n, const char *mt) {
  void *p = lua_newuserdatauv(L, n, 0);
  memset(p, 0, n);
  luaL_setmetatable(L, mt);
  return p;
}

/* A string argument without embedded NULs (a C path or name). */
static const char *check_cstring(lua_State *L, int i, const char *what) {
  size_t n;
  const char *s = luaL_checklstring(L, i, &n);
  if (strlen(s) != n)
    luaL_argerror(L, i, lua_pushfstring(L, "%s contains a NUL character", what));
  return s;
}

/* ---- safetensors ---- */

/* save_safetensors(path, names, tensors [, metadata [, fname]]) */
static int l_save_safetensors(lua_State *L) {
  const char *path = check_cstring(L, 1, "path");
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  const char *fname = luaL_optstring(L, 5, "save_safetensors");
  lua_Integer n = luaL_len(L, 2);
  if (luaL_len(L, 3) != n)
    return luaL_error(L, "%s: %d names but %d tensors", fname, (int)n,
                      (int)luaL_len(L, 3));
  /* Scratch arrays live in userdata, so an error cannot leak them. */
  const char **names = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *names, 0);
  nn_tensor **ts = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *ts, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_geti(L, 2, i) != LUA_TSTRING)
      return luaL_error(L, "%s: name %d is a %s, not a string", fname, (int)i,
                        luaL_typename(L, -1));
    size_t len;
    names[i - 1] = lua_tolstring(L, -1, &len); /* anchored in the table */
    if (strlen(names[i - 1]) != len)
      return luaL_error(L, "%s: name %d contains a NUL character", fname,
                        (int)i);
    lua_pop(L, 1);
    lua_geti(L, 3, i);
    ts[i - 1] = l_totensor(L, -1);
    if (!ts[i - 1])
      return luaL_error(L, "%s: value of '%s' is a %s, not a tensor", fname,
                        names[i - 1], luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  lua_Integer m = 0;
  if (lua_istable(L, 4)) {
    lua_pushnil(L);
    while (lua_next(L, 4)) {
      m++;
      lua_pop(L, 1);
    }
  }
  const char **mk = lua_newuserdatauv(L, (size_t)(m ? m : 1) * sizeof *mk, 0);
  const char **mv = lua_newuserdatauv(L, (size_t)(m ? m : 1) * sizeof *mv, 0);
  if (m > 0) {
    lua_Integer k = 0;
    lua_pushnil(L);
    while (lua_next(L, 4)) {
      size_t kl, vl;
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "%s: metadata must map strings to strings "
                             "(got %s -> %s)", fname, luaL_typename(L, -2),
                          luaL_typename(L, -1));
      mk[k] = lua_tolstring(L, -2, &kl);
      mv[k] = lua_tolstring(L, -1, &vl);
      if (strlen(mk[k]) != kl || strlen(mv[k]) != vl)
        return luaL_error(L, "%s: metadata '%s' contains a NUL character",
                          fname, mk[k]);
      k++;
      lua_pop(L, 1);
    }
  }
  nn_error err;
  if (nn_safetensors_save(path, n, names, ts, m, mk, mv, &err) < 0)
    return l_raise(L, fname, &err);
  return 0;
}

static void push_metadata(lua_State *L, const nn_safetensors *st) {
  lua_createtable(L, 0, (int)st->meta_count);
  for (int64_t i = 0; i < st->meta_count; i++) {
    lua_pushlstring(L, st->meta_values[i], st->meta_value_lens[i]);
    lua_setfield(L, -2, st->meta_keys[i]);
  }
}

/* load_safetensors(path [, fname]) -> tensors (name -> tensor), metadata
 * (key -> string), names (array, header order). */
static int l_load_safetensors(lua_State *L) {
  const char *path = check_cstring(L, 1, "path");
  const char *fname = luaL_optstring(L, 2, "load_safetensors");
  nn_safetensors *st = new_owner(L, sizeof *st, ST_RESULT_MT);
  nn_error err;
  if (nn_safetensors_load(path, st, &err) < 0) return l_raise(L, fname, &err);
  lua_createtable(L, 0, (int)st->count);
  int tensors = lua_gettop(L);
  push_metadata(L, st);
  lua_createtable(L, (int)st->count, 0);
  int names = lua_gettop(L);
  for (int64_t i = 0; i < st->count; i++) {
    nn_st_entry *e = &st->entries[i];
    lua_pushstring(L, e->name);
    lua_rawseti(L, names, i + 1);
    lua_pushstring(L, e->name);
    l_pushtensor(L, e->tensor);
    e->tensor = NULL; /* the userdata owns it now */
    lua_rawset(L, tensors);
  }
  return 3;
}

/* inspect_safetensors(path [, fname]) -> array of {name=, dtype=, shape=,
 * offsets={begin, end}} in header order, metadata.  Reads the header
 * only. */
static int l_inspect_safetensors(lua_State *L) {
  const char *path = check_cstring(L, 1, "path");
  const char *fname = luaL_optstring(L, 2, "inspect_safetensors");
  nn_safetensors *st = new_owner(L, sizeof *st, ST_RESULT_MT);
  nn_error err;
  if (nn_safetensors_inspect(path, st, &err) < 0)
    return l_raise(L, fname, &err);
  lua_createtable(L, (int)st->count, 0);
  for (int64_t i = 0; i < st->count; i++) {
    const nn_st_entry *e = &st->entries[i];
    lua_createtable(L, 0, 4);
    lua_pushstring(L, e->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, e->dtype);
    lua_setfield(L, -2, "dtype");
    lua_createtable(L, e->ndim, 0);
    for (int d = 0; d < e->ndim; d++) {
      lua_pushinteger(L, e->shape[d]);
      lua_rawseti(L, -2, d + 1);
    }
    lua_setfield(L, -2, "shape");
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, (lua_Integer)e->begin);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, (lua_Integer)e->end);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, -2, "offsets");
    lua_rawseti(L, -2, i + 1);
  }
  push_metadata(L, st);
  return 2;
}

/* ---- JSON <-> Lua values ---- */

/* 1 when s[0..n) is how "%lld" writes some lua_Integer. */
static int is_canonical_int(lua_State *L, const char *s, size_t n) {
  size_t i = 0;
  if (n > 0 && s[0] == '-') i = 1;
  if (i >= n || n - i > 19) return 0;
  if (s[i] == '0' && (n - i > 1 || i == 1)) return 0; /* "01", "-0" */
  for (size_t k = i; k < n; k++)
    if (s[k] < '0' || s[k] > '9') return 0;
  /* Fits in a lua_Integer (else Lua reads it as a float). */
  if (lua_stringtonumber(L, s) == 0) return 0;
  int ok = lua_isinteger(L, -1);
  lua_pop(L, 1);
  return ok;
}

typedef struct jkey {
  int is_int;
  lua_Integer i;
  const char *s;
  size_t len;
} jkey;

static int cmp_jkey(const void *a, const void *b) {
  const jkey *x = a, *y = b;
  if (x->is_int != y->is_int) return x->is_int ? -1 : 1;
  if (x->is_int) return (x->i > y->i) - (x->i < y->i);
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);
  if (c) return c;
  return (x->len > y->len) - (x->len < y->len);
}

typedef struct encoder {
  lua_State *L;
  nn_jbuf *b;
  int names;    /* stack index of tensor -> name table, or 0 */
  int visiting; /* stack index of the set of tables being written */
  int depth;
  const jkey *path[NN_JSON_MAX_DEPTH + 1];
} encoder;

/* Raises "json_encode: <what> at <path>". */
static int enc_error(encoder *e, const char *what) {
  lua_State *L = e->L;
  luaL_Buffer p;
  luaL_buffinit(L, &p);
  if (e->depth == 0) luaL_addstring(&p, "the top level");
  for (int d = 0; d < e->depth; d++) {
    const jkey *k = e->path[d];
    if (k->is_int) {
      lua_pushfstring(L, "[%I]", k->i);
      luaL_addvalue(&p);
    } else {
      if (d > 0) luaL_addchar(&p, '.');
      luaL_addlstring(&p, k->s, k->len);
    }
  }
  luaL_pushresult(&p);
  return luaL_error(L, "json_encode: %s at %s", what, lua_tostring(L, -1));
}

static void enc_string(encoder *e, const char *s, size_t n) {
  if (nn_jbuf_string(e->b, s, n) < 0) enc_error(e, "string is not valid UTF-8");
}

static void enc_value(encoder *e, int idx);

/* Writes the table at idx as an array or an object. */
static void enc_table(encoder *e, int idx) {
  lua_State *L = e->L;
  if (e->depth >= NN_JSON_MAX_DEPTH) enc_error(e, "nesting too deep");
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->visiting) != LUA_TNIL)
    enc_error(e, "a table contains itself (cycle)");
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, e->visiting);

  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    n++;
    lua_pop(L, 1);
  }
  jkey *keys = lua_newuserdatauv(L, (n ? n : 1) * sizeof *keys, 0);
  int anchor = lua_gettop(L);
  size_t k = 0;
  int is_array = n > 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    jkey *key = &keys[k++];
    memset(key, 0, sizeof *key);
    int t = lua_type(L, -1);
    if (t == LUA_TNUMBER && lua_isinteger(L, -1)) {
      key->is_int = 1;
      key->i = lua_tointeger(L, -1);
      if (key->i < 1 || (lua_Unsigned)key->i > n) is_array = 0;
    } else if (t == LUA_TSTRING) {
      key->s = lua_tolstring(L, -1, &key->len); /* anchored by the table */
      is_array = 0;
    } else {
      enc_error(e, lua_pushfstring(L, "key of type %s (only strings and "
                                      "integers can be keys)",
                                   t == LUA_TNUMBER ? "float" : lua_typename(L, t)));
    }
  }
  qsort(keys, n, sizeof *keys, cmp_jkey);
  luaL_checkstack(L, 4, "json_encode");
  nn_jbuf_raw(e->b, is_array ? "[" : "{", 1);
  for (size_t i = 0; i < n; i++) {
    if (i) nn_jbuf_raw(e->b, ",", 1);
    jkey *key = &keys[i];
    e->path[e->depth++] = key;
    if (!is_array) {
      if (key->is_int) {
        nn_jbuf_raw(e->b, "\"", 1);
        nn_jbuf_i64(e->b, (int64_t)key->i);
        nn_jbuf_raw(e->b, "\"", 1);
      } else if ((key->len > 0 && key->s[0] == '~') ||
                 is_canonical_int(L, key->s, key->len)) {
        /* Escaped: one more '~' in front. */
        lua_pushliteral(L, "~");
        lua_pushlstring(L, key->s, key->len);
        lua_concat(L, 2);
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        enc_string(e, s, len);
        lua_pop(L, 1);
      } else {
        enc_string(e, key->s, key->len);
      }
      nn_jbuf_raw(e->b, ":", 1);
    }
    if (key->is_int)
      lua_pushinteger(L, key->i);
    else
      lua_pushlstring(L, key->s, key->len);
    lua_rawget(L, idx);
    enc_value(e, lua_gettop(L));
    e->depth--;
    lua_pop(L, 1);
  }
  nn_jbuf_raw(e->b, is_array ? "]" : "}", 1);
  lua_settop(L, anchor - 1);
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, e->visiting);
}

static void enc_value(encoder *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    nn_jbuf_puts(e->b, lua_toboolean(L, idx) ? "true" : "false");
    return;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      nn_jbuf_i64(e->b, (int64_t)lua_tointeger(L, idx));
    else
      nn_jbuf_double(e->b, (double)lua_tonumber(L, idx));
    return;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    enc_string(e, s, n);
    return;
  }
  case LUA_TTABLE:
    enc_table(e, idx);
    return;
  case LUA_TUSERDATA:
    if (l_totensor(L, idx)) {
      if (!e->names) enc_error(e, "tensor (no tensor names given)");
      lua_pushvalue(L, idx);
      if (lua_rawget(L, e->names) != LUA_TSTRING)
        enc_error(e, "tensor without a name in the tensor table");
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      nn_jbuf_puts(e->b, "{\"~tensor\":");
      enc_string(e, s, n);
      nn_jbuf_raw(e->b, "}", 1);
      lua_pop(L, 1);
      return;
    }
    /* fall through */
  default:
    enc_error(e, lua_pushfstring(L, "value of type %s cannot be written",
                                 luaL_typename(L, idx)));
  }
}

/* json_encode(value [, tensor_names]) -> string */
static int l_json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  encoder e;
  memset(&e, 0, sizeof e);
  e.L = L;
  e.names = lua_istable(L, 2) ? 2 : 0;
  lua_newtable(L);
  e.visiting = lua_gettop(L);
  e.b = new_owner(L, sizeof *e.b, JBUF_MT);
  enc_value(&e, 1);
  if (e.b->failed) return luaL_error(L, "json_encode: out of memory");
  lua_pushlstring(L, e.b->data ? e.b->data : "", e.b->len);
  nn_jbuf_free(e.b);
  return 1;
}

/* Pushes the Lua value of v; tensors at stack index (0: none). */
static void dec_value(lua_State *L, const nn_json *v, int tensors) {
  luaL_checkstack(L, 4, "json_decode");
  switch (v->type) {
  case NN_JSON_NULL:
    lua_pushnil(L);
    return;
  case NN_JSON_FALSE:
  case NN_JSON_TRUE:
    lua_pushboolean(L, v->type == NN_JSON_TRUE);
    return;
  case NN_JSON_NUMBER: {
    const char *s = v->str[0] == '-' ? v->str + 1 : v->str;
    if (s[0] == 'I' || s[0] == 'N') {
      double x = s[0] == 'N' ? NAN : HUGE_VAL;
      lua_pushnumber(L, (lua_Number)(v->str[0] == '-' ? -x : x));
    } else if (lua_stringtonumber(L, v->str) == 0) {
      luaL_error(L, "json_decode: bad number '%s'", v->str);
    }
    return;
  }
  case NN_JSON_STRING:
    lua_pushlstring(L, v->str, v->len);
    return;
  case NN_JSON_ARRAY:
    lua_createtable(L, (int)v->len, 0);
    for (size_t i = 0; i < v->len; i++) {
      dec_value(L, &v->items[i], tensors);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return;
  case NN_JSON_OBJECT:
    break;
  }
  if (v->len == 1 && strcmp(v->members[0].key, "~tensor") == 0) {
    const nn_json *name = &v->members[0].value;
    if (name->type != NN_JSON_STRING)
      luaL_error(L, "json_decode: a tensor reference must name the tensor");
    if (!tensors)
      luaL_error(L, "json_decode: reference to tensor '%s' but no tensors "
                    "given", name->str);
    lua_pushlstring(L, name->str, name->len);
    if (lua_rawget(L, tensors) == LUA_TNIL)
      luaL_error(L, "json_decode: reference to tensor '%s', which is "
                    "missing", name->str);
    return;
  }
  lua_createtable(L, 0, (int)v->len);
  for (size_t i = 0; i < v->len; i++) {
    const nn_json_member *m = &v->members[i];
    if (m->key_len > 0 && m->key[0] == '~')
      lua_pushlstring(L, m->key + 1, m->key_len - 1);
    else if (is_canonical_int(L, m->key, m->key_len))
      lua_pushinteger(L, (lua_Integer)strtoll(m->key, NULL, 10));
    else
      lua_pushlstring(L, m->key, m->key_len);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) != LUA_TNIL)
      luaL_error(L, "json_decode: duplicate key '%s'", m->key);
    lua_pop(L, 1);
    dec_value(L, &m->value, tensors);
    lua_rawset(L, -3);
  }
}

/* json_decode(string [, tensors]) -> value */
static int l_json_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  nn_json *doc = new_owner(L, sizeof *doc, JDOC_MT);
  nn_error err;
  if (nn_json_parse(s, n, NN_JSON_NONFINITE, doc, &err) < 0)
    return l_raise(L, "json_decode: invalid JSON", &err);
  dec_value(L, doc, lua_istable(L, 2) ? 2 : 0);
  return 1;
}

static const luaL_Reg io_fns[] = {{"save_safetensors", l_save_safetensors},
                                  {"load_safetensors", l_load_safetensors},
                                  {"inspect_safetensors", l_inspect_safetensors},
                                  {"json_encode", l_json_encode},
                                  {"json_decode", l_json_decode},
                                  {NULL, NULL}};

static void new_gc_metatable(lua_State *L, const char *name, lua_CFunction gc) {
  luaL_newmetatable(L, name);
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

void l_open_io(lua_State *L, int t, int ctx) {
  t = lua_absindex(L, t);
  new_gc_metatable(L, ST_RESULT_MT, st_result_gc);
  new_gc_metatable(L, JBUF_MT, jbuf_gc);
  new_gc_metatable(L, JDOC_MT, jdoc_gc);
  lua_newtable(L);
  l_register(L, -1, ctx, io_fns);
  lua_setfield(L, t, "io");
}
