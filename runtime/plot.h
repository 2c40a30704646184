/*
 * plot.h - a small RGB raster canvas for charts: filled and outlined
 * rectangles, lines (any width, solid or dashed), circles, text in a
 * built-in bitmap font, and PNG output (through libpng, written atomically).
 *
 * Coordinates are pixels, 0-based, x to the right and y down from the
 * top-left corner; everything is clipped to the canvas, so callers may draw
 * partly (or wholly) outside it.  Colors are 0xRRGGBB.
 *
 * The font is our own 5x9 bitmap font (7 rows above the baseline, 2 for
 * descenders) for ASCII 32..126; a glyph occupies a cell of
 * NN_FONT_ADVANCE x NN_FONT_LINE pixels at scale 1 and is magnified by an
 * integer scale.  Other characters (any UTF-8 sequence) are drawn as '?'.
 */
#ifndef NN_PLOT_H
#define NN_PLOT_H

#include <stdint.h>

#include "tensor.h"

/* Largest canvas side accepted. */
#define NN_CANVAS_MAX_SIDE 16384
/* Horizontal advance and line height of one glyph at scale 1. */
#define NN_FONT_ADVANCE 6
#define NN_FONT_LINE 11
/* Largest text scale. */
#define NN_FONT_MAX_SCALE 16

typedef struct nn_canvas {
  int w, h;
  uint8_t *rgb; /* h rows of w pixels, 3 bytes each (R, G, B) */
} nn_canvas;

/* Text placement relative to the anchor point (x, y). */
typedef enum nn_halign { NN_LEFT, NN_CENTER, NN_RIGHT } nn_halign;
typedef enum nn_valign { NN_TOP, NN_MIDDLE, NN_BOTTOM } nn_valign;

/* A new w x h canvas filled with `background`.  Fails on a side outside
 * 1..NN_CANVAS_MAX_SIDE or out of memory.  Free with nn_canvas_free. */
nn_canvas *nn_canvas_new(int w, int h, uint32_t background, nn_error *err);
/* Frees the canvas; NULL is allowed. */
void nn_canvas_free(nn_canvas *c);

/* The color of pixel (x, y), or 0 outside the canvas. */
uint32_t nn_canvas_get(const nn_canvas *c, int x, int y);
/* Sets one pixel (ignored outside the canvas). */
void nn_canvas_set(nn_canvas *c, int x, int y, uint32_t color);

/* Fills the rectangle with top-left (x, y) and size w x h. */
void nn_canvas_fill_rect(nn_canvas *c, int x, int y, int w, int h,
                         uint32_t color);
/* Outlines that rectangle with lines `width` pixels thick, drawn inside
 * it. */
void nn_canvas_rect(nn_canvas *c, int x, int y, int w, int h, uint32_t color,
                    int width);
/* A line from (x0, y0) to (x1, y1), both ends included, drawn with a square
 * pen `width` pixels wide (centred on the line).  dash > 0 draws dashes of
 * `dash` pixels separated by gaps of the same length (measured along the
 * major axis); 0 draws a solid line. */
void nn_canvas_line(nn_canvas *c, int x0, int y0, int x1, int y1,
                    uint32_t color, int width, int dash);
/* A circle of radius r centred on (cx, cy): filled, or its outline one
 * pixel thick. */
void nn_canvas_circle(nn_canvas *c, int cx, int cy, int r, uint32_t color,
                      int filled);

/* Size in pixels of the box text s takes at `scale` (one line; a '\n' is
 * drawn as '?'): width = advance * characters - the trailing column gap,
 * height = 9 * scale (cap top to descender bottom). */
int nn_text_width(const char *s, int scale);
int nn_text_height(int scale);
/* Draws s at `scale` (1..NN_FONT_MAX_SCALE; clamped) aligned to the anchor
 * (x, y): halign picks which side of the text box (or its centre) lies at x,
 * valign which side lies at y.  With vertical != 0 the text is rotated a
 * quarter turn counter-clockwise (read bottom to top, as a y-axis label);
 * alignment then applies to the rotated box, halign along x and valign
 * along y as before. */
void nn_canvas_text(nn_canvas *c, int x, int y, const char *s, int scale,
                    uint32_t color, nn_halign halign, nn_valign valign,
                    int vertical);

/* Writes the canvas as an 8-bit RGB PNG.  The file is written to a
 * temporary name beside path and renamed over it, so a reader never sees a
 * partial file.  Fails (leaving no temporary file) when it cannot be
 * created, written or renamed. */
int nn_canvas_save_png(const nn_canvas *c, const char *path, nn_error *err);

#endif
