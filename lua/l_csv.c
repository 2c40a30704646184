/*
 * l_csv.c - Lua binding of the CSV reader (core.csv) and the directory
 * listing the image datasets need (core.fs):
 *
 *   csv.read(path) -> header, rows, lines
 *   csv.parse(text [, name]) -> header, rows, lines
 *       header: array of column names; rows: array of data records, each an
 *       array of field strings; lines: the 1-based line on which each data
 *       record starts.  Malformed input raises "name:line: what".
 *   fs.list(dir) -> names, kinds
 *       the entries of dir but "." and "..", sorted bytewise, and for each
 *       "file", "dir" or "other" (symbolic links followed).  Raises naming
 *       the directory when it cannot be read.
 *   fs.kind(path) -> "file" | "dir" | "other", or nil when nothing is there.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../runtime/csv.h"
#include "binding.h"

/* Pushes header, rows and lines of csv (borrowed). */
static int push_csv(lua_State *L, nn_csv *csv) {
  lua_createtable(L, (int)csv->ncolumns, 0);
  for (int64_t k = 0; k < csv->ncolumns; k++) {
    lua_pushlstring(L, nn_csv_field(csv, 0, k), (size_t)csv->length[k]);
    lua_rawseti(L, -2, k + 1);
  }
  int64_t n = csv->nrecords - 1;
  lua_createtable(L, n > 0 && n < 1 << 30 ? (int)n : 0, 0);
  lua_createtable(L, n > 0 && n < 1 << 30 ? (int)n : 0, 0);
  for (int64_t r = 1; r <= n; r++) {
    lua_createtable(L, (int)csv->ncolumns, 0);
    for (int64_t k = 0; k < csv->ncolumns; k++) {
      int64_t f = r * csv->ncolumns + k;
      lua_pushlstring(L, csv->text + csv->offset[f], (size_t)csv->length[f]);
      lua_rawseti(L, -2, k + 1);
    }
    lua_rawseti(L, -3, r);
    lua_pushinteger(L, (lua_Integer)csv->line[r]);
    lua_rawseti(L, -2, r);
  }
  return 3;
}

/* The parsed table lives in a userdata with a __gc, so a memory error while
 * building the Lua tables cannot leak it. */
#define CSV_BOX_MT "nn.CSVTable"

/* __gc and __close of the box: frees the table; a second call is
 * harmless. */
static int l_csvbox_gc(lua_State *L) {
  nn_csv **box = luaL_checkudata(L, 1, CSV_BOX_MT);
  nn_csv_free(*box);
  *box = NULL;
  return 0;
}

/* Pushes an empty box (its metatable set before anything is stored). */
static nn_csv **new_box(lua_State *L) {
  nn_csv **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, CSV_BOX_MT);
  return box;
}

/* Parses (with parse != 0: text at index 1, name at 2) or reads (path at
 * index 1) and returns the three tables. */
static int load(lua_State *L, int parse) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *name = parse ? luaL_optstring(L, 2, "CSV") : s;
  nn_csv **box = new_box(L);
  int at = lua_gettop(L);
  nn_error err;
  *box = parse ? nn_csv_parse(s, len, name, &err) : nn_csv_read(s, &err);
  if (!*box) return l_raise(L, NULL, &err);
  push_csv(L, *box);
  nn_csv_free(*box);
  *box = NULL;
  lua_remove(L, at);
  return 3;
}

/* csv.read(path) -> header, rows, lines. */
static int l_csv_read(lua_State *L) { return load(L, 0); }

/* csv.parse(text [, name]) -> header, rows, lines. */
static int l_csv_parse(lua_State *L) { return load(L, 1); }

/* "file", "dir" or "other" for a stat result. */
static const char *kind_of(const struct stat *st) {
  if (S_ISREG(st->st_mode)) return "file";
  if (S_ISDIR(st->st_mode)) return "dir";
  return "other";
}

/* qsort comparison of two C strings, bytewise. */
static int cmp_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* fs.list(dir) -> names (sorted), kinds. */
static int l_fs_list(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  DIR *d = opendir(dir);
  if (!d) return luaL_error(L, "cannot read directory %s: %s", dir, strerror(errno));
  /* Names go into a Lua table first (so nothing leaks on a memory error),
   * then are sorted through a C array of borrowed pointers. */
  lua_newtable(L);
  int names = lua_gettop(L);
  lua_Integer n = 0;
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, names, ++n);
  }
  int read_errno = errno;
  closedir(d);
  if (read_errno)
    return luaL_error(L, "cannot read directory %s: %s", dir, strerror(read_errno));
  const char **sorted = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *sorted, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, names, i);
    sorted[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 1); /* still referenced by the names table */
  }
  qsort(sorted, (size_t)n, sizeof *sorted, cmp_names);
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, (int)n, 0);
  size_t dirlen = strlen(dir);
  luaL_Buffer b;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_pushstring(L, sorted[i - 1]);
    lua_rawseti(L, -3, i);
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, dir, dirlen);
    if (dirlen == 0 || dir[dirlen - 1] != '/') luaL_addchar(&b, '/');
    luaL_addstring(&b, sorted[i - 1]);
    luaL_pushresult(&b);
    struct stat st;
    const char *kind = stat(lua_tostring(L, -1), &st) == 0 ? kind_of(&st) : "other";
    lua_pop(L, 1);
    lua_pushstring(L, kind);
    lua_rawseti(L, -2, i);
  }
  return 2;
}

/* fs.kind(path) -> "file" | "dir" | "other" | nil. */
static int l_fs_kind(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, kind_of(&st));
  return 1;
}

static const luaL_Reg csv_fns[] = {{"read", l_csv_read},
                                   {"parse", l_csv_parse},
                                   {NULL, NULL}};

static const luaL_Reg fs_fns[] = {{"list", l_fs_list},
                                  {"kind", l_fs_kind},
                                  {NULL, NULL}};

void l_open_csv(lua_State *L, int t, int ctx) {
  luaL_newmetatable(L, CSV_BOX_MT);
  lua_pushcfunction(L, l_csvbox_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_csvbox_gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  lua_newtable(L);
  l_register(L, lua_gettop(L), ctx, csv_fns);
  lua_setfield(L, t, "csv");
  lua_newtable(L);
  l_register(L, lua_gettop(L), ctx, fs_fns);
  lua_setfield(L, t, "fs");
}
