/*
 * l_plot.c - Lua binding of the raster canvas (runtime/plot.h), registered
 * as core.plot:
 *
 *   plot.Canvas(w, h [, background]) -> nn.Canvas (white by default)
 *   c:size() -> w, h
 *   c:fill_rect(x, y, w, h, color)
 *   c:rect(x, y, w, h, color [, width=1])          outline, drawn inside
 *   c:line(x0, y0, x1, y1, color [, {width=1, dash=0}])
 *   c:polyline(xs, ys, color [, {width=1, dash=0}])  through arrays of points
 *   c:circle(x, y, r, color [, {fill=true}])
 *   c:text(x, y, s, color [, {scale=1, align="left"|"center"|"right",
 *          valign="top"|"middle"|"bottom", vertical=false}])
 *   c:text_size(s [, scale=1]) -> w, h
 *   c:pixel(x, y) -> r, g, b (0..255; nil outside the canvas)
 *   c:save(path)                                   PNG, written atomically
 *   plot.text_size(s [, scale=1]) -> w, h
 *
 * Coordinates are 0-based pixels from the top-left corner (numbers are
 * rounded to the nearest pixel); drawing is clipped to the canvas.  A color
 * is 0xRRGGBB, "#rrggbb", "#rgb" or {r, g, b} with components in 0..255.
 */
#include <math.h>
#include <string.h>

#include "../runtime/plot.h"
#include "binding.h"

#define NN_CANVAS_MT "nn.Canvas"

static nn_canvas *checkcanvas(lua_State *L, int i) {
  nn_canvas **box = luaL_checkudata(L, i, NN_CANVAS_MT);
  if (!*box) luaL_argerror(L, i, "canvas has been closed");
  return *box;
}

/* __gc and __close: frees the canvas; a second call is harmless. */
static int l_canvas_gc(lua_State *L) {
  nn_canvas **box = luaL_checkudata(L, 1, NN_CANVAS_MT);
  nn_canvas_free(*box);
  *box = NULL;
  return 0;
}

/* A coordinate or length: any finite number, rounded, within +-2^30. */
static int checkcoord(lua_State *L, int i) {
  lua_Number v = luaL_checknumber(L, i);
  if (!isfinite(v) || fabs(v) > 1073741824.0)
    luaL_argerror(L, i, lua_pushfstring(L, "coordinate out of range (%f)", v));
  return (int)floor(v + 0.5);
}

static int hexdigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The color at index i (see the header comment), or raises. */
static uint32_t checkcolor(lua_State *L, int i) {
  int t = lua_type(L, i);
  if (t == LUA_TNUMBER && lua_isinteger(L, i)) {
    lua_Integer v = lua_tointeger(L, i);
    if (v >= 0 && v <= 0xFFFFFF) return (uint32_t)v;
  } else if (t == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, i, &n);
    if ((n == 7 || n == 4) && s[0] == '#') {
      uint32_t v = 0;
      int ok = 1;
      for (size_t k = 1; k < n; k++) {
        int d = hexdigit(s[k]);
        if (d < 0) ok = 0;
        v = n == 7 ? v << 4 | (uint32_t)d : v << 8 | (uint32_t)(d * 17);
      }
      if (ok) return v;
    }
  } else if (t == LUA_TTABLE) {
    uint32_t v = 0;
    int ok = lua_rawlen(L, i) == 3;
    for (int k = 1; ok && k <= 3; k++) {
      lua_rawgeti(L, i, k);
      int isnum;
      lua_Integer c = lua_tointegerx(L, -1, &isnum);
      lua_pop(L, 1);
      if (!isnum || c < 0 || c > 255) ok = 0;
      v = v << 8 | (uint32_t)(c & 0xFF);
    }
    if (ok) return v;
  }
  luaL_argerror(L, i,
                "color expected (0xRRGGBB, \"#rrggbb\" or {r, g, b} in 0..255)");
  return 0;
}

/* plot.Canvas(w, h [, background]) -> nn.Canvas. */
static int l_canvas_new(lua_State *L) {
  lua_Integer w = luaL_checkinteger(L, 1), h = luaL_checkinteger(L, 2);
  uint32_t bg = lua_isnoneornil(L, 3) ? 0xFFFFFF : checkcolor(L, 3);
  if (w < 1 || w > NN_CANVAS_MAX_SIDE)
    luaL_argerror(L, 1, lua_pushfstring(L, "width must be in 1..%d, got %I",
                                        NN_CANVAS_MAX_SIDE, w));
  if (h < 1 || h > NN_CANVAS_MAX_SIDE)
    luaL_argerror(L, 2, lua_pushfstring(L, "height must be in 1..%d, got %I",
                                        NN_CANVAS_MAX_SIDE, h));
  nn_canvas **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, NN_CANVAS_MT);
  nn_error err;
  *box = nn_canvas_new((int)w, (int)h, bg, &err);
  if (!*box) return l_raise(L, "Canvas", &err);
  return 1;
}

static int l_canvas_size(lua_State *L) {
  nn_canvas *c = checkcanvas(L, 1);
  lua_pushinteger(L, c->w);
  lua_pushinteger(L, c->h);
  return 2;
}

static int l_canvas_fill_rect(lua_State *L) {
  nn_canvas *c = checkcanvas(L, 1);
  int x = checkcoord(L, 2), y = checkcoord(L, 3);
  int w = checkcoord(L, 4), h = checkcoord(L, 5);
  nn_canvas_fill_rect(c, x, y, w, h, checkcolor(L, 6));
  return 0;
}

static int l_canvas_rect(lua_State *L) {
  nn_canvas *c = checkcanvas(L, 1);
  int x = checkcoord(L, 2), y = checkcoord(L, 3);
  int w = checkcoord(L, 4), h = checkcoord(L, 5);
  uint32_t color = checkcolor(L, 6);
  lua_Integer width = luaL_optinteger(L, 7, 1);
  if (width < 1 || width > 4096) luaL_argerror(L, 7, "width must be in 1..4096");
  nn_canvas_rect(c, x, y, w, h, color, (int)width);
  return 0;
}

/* Reads {width=1, dash=0} from the options at index opts. */
static void line_opts(lua_State *L, int opts, int *width, int *dash) {
  static const char *const allowed[] = {"width", "dash", NULL};
  l_checkopts(L, opts, allowed);
  lua_Integer w = l_optinteger(L, opts, "width", 1);
  lua_Integer d = l_optinteger(L, opts, "dash", 0);
  if (w < 1 || w > 4096)
    luaL_argerror(L, opts, "option 'width' must be in 1..4096");
  if (d < 0 || d > 4096)
    luaL_argerror(L, opts, "option 'dash' must be in 0..4096");
  *width = (int)w;
  *dash = (int)d;
}

static int l_canvas_line(lua_State *L) {
  nn_canvas *c = checkcanvas(L, 1);
  int x0 = checkcoord(L, 2), y0 = checkcoord(L, 3);
  int x1 = checkcoord(L, 4), y1 = checkcoord(L, 5);
  uint32_t color = checkcolor(L, 6);
  int width, dash;
  line_opts(L, 7, &width, &dash);
  nn_canvas_line(c, x0, y0, x1, y1, color, width, dash);
  return 0;
}

/* c:polyline(xs, ys, color [, opts]): segments between consecutive points;
 * a NaN coordinate breaks the line (a gap in a curve). */
static int l_canvas_polyline(lua_State *L) {
  nn_canvas *c = checkcanvas(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  uint32_t color = checkcolor(L, 4);
  int width, dash;
  line_opts(L, 5, &width, &dash);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
  if ((lua_Integer)lua_rawlen(L, 3) != n)
    luaL_argerror(L, 3, lua_pushfstring(L, "expected %I y values (as many as x), got %I",
                                        n, (lua_Integer)lua_rawlen(L, 3)));
  int have = 0, px = 0, py = 0;
  for (lua_Integer k = 1; k <= n; k++) {
    lua_rawgeti(L, 2, k);
    lua_rawgeti(L, 3, k);
    int okx, oky;
    lua_Number x = lua_tonumberx(L, -2, &okx), y = lua_tonumberx(L, -1, &oky);
    lua_pop(L, 2);
    if (!okx || !oky)
      luaL_argerror(L, okx ? 3 : 2,
                    lua_pushfstring(L, "point %I is not a number", k));
    if (isnan(x) || isnan(y) || fabs(x) > 1073741824.0 || fabs(y) > 1073741824.0) {
      have = 0;
      continue;
    }
    int ix = (int)floor(x + 0.5), iy = (int)floor(y + 0.5);
    if (have)
      nn_canvas_line(c, px, py, ix, iy, color, width, dash);
    else if (n == 1)
      nn_canvas_line(c, ix, iy, ix, iy, color, width, 0);
    px = ix, py = iy, have = 1;
  }
  return 0;
}

static int l_canvas_circle(lua_State *L) {
  nn_canvas *c = checkcanvas(L, 1);
  int x = checkcoord(L, 2), y = checkcoord(L, 3), r = checkcoord(L, 4);
  uint32_t color = checkcolor(L, 5);
  static const char *const allowed[] = {"fill", NULL};
  l_checkopts(L, 6, allowed);
  int fill = l_optboolean(L, 6, "fill", 1);
  if (r < 0 || r > 16384) luaL_argerror(L, 4, "radius must be in 0..16384");
  nn_canvas_circle(c, x, y, r, color, fill);
  return 0;
}

static int checkscale(lua_State *L, lua_Integer s, int arg) {
  if (s < 1 || s > NN_FONT_MAX_SCALE)
    luaL_argerror(L, arg, lua_pushfstring(L, "scale must be in 1..%d, got %I",
                                          NN_FONT_MAX_SCALE, s));
  return (int)s;
}

static int l_canvas_text(lua_State *L) {
  nn_canvas *c = checkcanvas(L, 1);
  int x = checkcoord(L, 2), y = checkcoord(L, 3);
  const char *s = luaL_checkstring(L, 4);
  uint32_t color = checkcolor(L, 5);
  static const char *const allowed[] = {"scale", "align", "valign", "vertical", NULL};
  l_checkopts(L, 6, allowed);
  int scale = checkscale(L, l_optinteger(L, 6, "scale", 1), 6);
  const char *align = l_optstring(L, 6, "align", "left");
  const char *valign = l_optstring(L, 6, "valign", "top");
  int vertical = l_optboolean(L, 6, "vertical", 0);
  nn_halign h;
  nn_valign v;
  if (strcmp(align, "left") == 0) h = NN_LEFT;
  else if (strcmp(align, "center") == 0) h = NN_CENTER;
  else if (strcmp(align, "right") == 0) h = NN_RIGHT;
  else return luaL_argerror(L, 6, "option 'align' must be \"left\", \"center\" or \"right\"");
  if (strcmp(valign, "top") == 0) v = NN_TOP;
  else if (strcmp(valign, "middle") == 0) v = NN_MIDDLE;
  else if (strcmp(valign, "bottom") == 0) v = NN_BOTTOM;
  else return luaL_argerror(L, 6, "option 'valign' must be \"top\", \"middle\" or \"bottom\"");
  nn_canvas_text(c, x, y, s, scale, color, h, v, vertical);
  return 0;
}

/* text_size(s [, scale]) at argument offset first. */
static int text_size(lua_State *L, int first) {
  const char *s = luaL_checkstring(L, first);
  int scale = checkscale(L, luaL_optinteger(L, first + 1, 1), first + 1);
  lua_pushinteger(L, nn_text_width(s, scale));
  lua_pushinteger(L, nn_text_height(scale));
  return 2;
}

static int l_canvas_text_size(lua_State *L) {
  checkcanvas(L, 1);
  return text_size(L, 2);
}

static int l_text_size(lua_State *L) { return text_size(L, 1); }

static int l_canvas_pixel(lua_State *L) {
  nn_canvas *c = checkcanvas(L, 1);
  lua_Integer x = luaL_checkinteger(L, 2), y = luaL_checkinteger(L, 3);
  if (x < 0 || y < 0 || x >= c->w || y >= c->h) {
    lua_pushnil(L);
    return 1;
  }
  uint32_t v = nn_canvas_get(c, (int)x, (int)y);
  lua_pushinteger(L, v >> 16 & 0xFF);
  lua_pushinteger(L, v >> 8 & 0xFF);
  lua_pushinteger(L, v & 0xFF);
  return 3;
}

static int l_canvas_save(lua_State *L) {
  nn_canvas *c = checkcanvas(L, 1);
  const char *path = luaL_checkstring(L, 2);
  nn_error err;
  if (nn_canvas_save_png(c, path, &err)) return l_raise(L, "save", &err);
  return 0;
}

static int l_canvas_tostring(lua_State *L) {
  nn_canvas **box = luaL_checkudata(L, 1, NN_CANVAS_MT);
  if (!*box)
    lua_pushliteral(L, "nn.Canvas(closed)");
  else
    lua_pushfstring(L, "nn.Canvas(%d x %d)", (*box)->w, (*box)->h);
  return 1;
}

static const luaL_Reg canvas_methods[] = {{"size", l_canvas_size},
                                          {"fill_rect", l_canvas_fill_rect},
                                          {"rect", l_canvas_rect},
                                          {"line", l_canvas_line},
                                          {"polyline", l_canvas_polyline},
                                          {"circle", l_canvas_circle},
                                          {"text", l_canvas_text},
                                          {"text_size", l_canvas_text_size},
                                          {"pixel", l_canvas_pixel},
                                          {"save", l_canvas_save},
                                          {"close", l_canvas_gc},
                                          {NULL, NULL}};

static const luaL_Reg plot_fns[] = {{"Canvas", l_canvas_new},
                                    {"text_size", l_text_size},
                                    {NULL, NULL}};

void l_open_plot(lua_State *L, int t, int ctx) {
  luaL_newmetatable(L, NN_CANVAS_MT);
  lua_pushcfunction(L, l_canvas_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_canvas_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, l_canvas_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_newtable(L);
  l_register(L, lua_gettop(L), ctx, canvas_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  l_register(L, lua_gettop(L), ctx, plot_fns);
  lua_setfield(L, t, "plot");
}
