/*
 * test_embed.c - a C host embedding nnlua: opens `nn` in its own lua_State
 * through include/nnlua.h, runs a model script, reads the result back, and
 * checks that a Lua error inside nn reaches the host as a status, not a
 * crash.
 */
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

#include "../../include/nnlua.h"
#include "check.h"

static void test_require_and_run(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  nnlua_openlibs(L);
  const char *script =
      "local nn = require 'nn'\n"
      "nn.manual_seed(0)\n"
      "local m = nn.Sequential{nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)}\n"
      "local y = m:forward(nn.ones(5, 4))\n"
      "return y:size(1), y:size(2)";
  int rc = luaL_dostring(L, script);
  CHECK(rc == LUA_OK);
  if (rc == LUA_OK) {
    CHECK(lua_tointeger(L, -2) == 5);
    CHECK(lua_tointeger(L, -1) == 2);
  } else {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
  }
  lua_close(L);
}

static void test_requiref(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "nn", luaopen_nn, 1);
  lua_pop(L, 1);
  CHECK(luaL_dostring(L, "return nn.zeros(2, 3):numel()") == LUA_OK);
  CHECK(lua_tointeger(L, -1) == 6);
  lua_close(L);
}

static void test_error_reaches_host(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  nnlua_openlibs(L);
  int rc = luaL_loadstring(
      L, "local nn = require 'nn'; nn.Linear(3, 2):forward(nn.zeros(1, 4))");
  CHECK(rc == LUA_OK);
  rc = lua_pcall(L, 0, 0, 0);
  CHECK(rc == LUA_ERRRUN);
  const char *msg = lua_tostring(L, -1);
  CHECK(msg && strstr(msg, "Linear") && strstr(msg, "[1, 4]"));
  lua_close(L);
}

int main(void) {
  RUN(test_require_and_run);
  RUN(test_requiref);
  RUN(test_error_reaches_host);
  return check_report("embed");
}
