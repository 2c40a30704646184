/*
 * binding.h - internal helpers shared by the files of the Lua binding.
 *
 * Every C function of the binding is registered with one upvalue: the
 * nn_ctx userdata of its Lua state (no globals; see l_ctx).  Tensors cross to
 * Lua as full userdata "nn.Tensor" holding one owned reference; layers as
 * "nn.Layer".  Only this layer raises Lua errors: runtime calls return an
 * nn_error that l_raise turns into one after temporaries are freed.
 */
#ifndef NN_BINDING_H
#define NN_BINDING_H

#include <lauxlib.h>
#include <lua.h>

#include "../runtime/context.h"
#include "../runtime/imagestore.h"
#include "../runtime/layer.h"
#include "../runtime/tensor.h"

#define NN_TENSOR_MT "nn.Tensor"
#define NN_LAYER_MT "nn.Layer"

/* The context of the running function (its first upvalue). */
nn_ctx *l_ctx(lua_State *L);

/* Registers fns into the table at index t, each with the context userdata at
 * index ctx as upvalue. */
void l_register(lua_State *L, int t, int ctx, const luaL_Reg *fns);

/* Pushes t as an nn.Tensor, taking over the caller's reference (t may not
 * be NULL).  Tells the garbage collector about the memory of new storage so
 * that dropped activations are collected promptly. */
void l_pushtensor(lua_State *L, nn_tensor *t);
/* The tensor at index i, or raises "bad argument #i to 'f' (nn.Tensor
 * expected, got T)".  Borrowed: valid while the value stays reachable. */
nn_tensor *l_checktensor(lua_State *L, int i);
/* The tensor at index i, or NULL when it is not a tensor. */
nn_tensor *l_totensor(lua_State *L, int i);

/* Raises the error in err as a Lua error (prefixed with what, if not NULL:
 * "what: message").  Never returns. */
int l_raise(lua_State *L, const char *what, const nn_error *err);

/* Options tables: the value of field k in the table at index opts (which may
 * be none/nil), checked and defaulted.  Errors name the option:
 * "bad argument #n to 'f' (option 'k' must be a number, got string)". */
lua_Number l_optnumber(lua_State *L, int opts, const char *k, lua_Number def);
lua_Integer l_optinteger(lua_State *L, int opts, const char *k,
                         lua_Integer def);
int l_optboolean(lua_State *L, int opts, const char *k, int def);
const char *l_optstring(lua_State *L, int opts, const char *k,
                        const char *def);
/* Checks that the table at index opts has only keys listed in allowed
 * (NULL-terminated); raises naming the unknown key otherwise. */
void l_checkopts(lua_State *L, int opts, const char *const *allowed);

/* Reads a shape given as varargs of integers starting at index first, or as
 * one table at that index; returns ndim.  Raises on a bad size. */
int l_checkshape(lua_State *L, int first, int64_t *shape);

/* Pushes s as an nn.ImageStore userdata, taking over the caller's reference
 * (s may not be NULL).  Defined in l_data.c. */
void l_pushimagestore(lua_State *L, nn_imagestore *s);
/* The live store at index i, or raises "bad argument #i to 'f'
 * (nn.ImageStore expected, got T)".  Borrowed. */
nn_imagestore *l_checkimagestore(lua_State *L, int i);

/* Per-file registration, called by luaopen_nn with the core table at index
 * t and the context userdata at ctx. */
void l_open_tensor(lua_State *L, int t, int ctx);
void l_open_layer(lua_State *L, int t, int ctx);
void l_open_loss(lua_State *L, int t, int ctx);
void l_open_optim(lua_State *L, int t, int ctx);
void l_open_io(lua_State *L, int t, int ctx);
void l_open_data(lua_State *L, int t, int ctx);
void l_open_train(lua_State *L, int t, int ctx);
void l_open_csv(lua_State *L, int t, int ctx);
void l_open_plot(lua_State *L, int t, int ctx);
void l_open_image(lua_State *L, int t, int ctx);
void l_open_augment(lua_State *L, int t, int ctx);

#endif
