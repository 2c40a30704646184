/*
 * nnlua.h - the public header for programs that embed nnlua.
 *
 * Link with -lnnlua (plus -llua5.4 -lopenblas -lpng -lturbojpeg -lz -lgomp -lm).  Today it offers
 * what a host needs to make `nn` available in its own lua_State; the full
 * embedding API (run scripts, load checkpoints, predict on caller-owned
 * buffers, register C layers) will grow here.
 */
#ifndef NNLUA_H
#define NNLUA_H

#include <lua.h>

#define NNLUA_VERSION "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/* Opens the nn module and returns it on the stack (as require would).  Each
 * call makes a new independent context (threads, RNG).  Use with
 * luaL_requiref(L, "nn", luaopen_nn, 0). */
int luaopen_nn(lua_State *L);

/* Makes `require "nn"` work in L by registering luaopen_nn in
 * package.preload; call after luaL_openlibs.  Nothing is loaded until a
 * script requires it. */
void nnlua_openlibs(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
