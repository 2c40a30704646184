/*
 * plot.c - the raster canvas of plot.h: clipped primitives, our 5x9 bitmap
 * font and PNG output through libpng.
 */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- The font ----
 *
 * One string per character from ' ' (32) to '~' (126): rows from the top,
 * separated by '|', five columns each ('#' = ink).  Rows 0..6 lie above the
 * baseline (capitals fill them; lowercase x-height is rows 2..6); rows 7 and
 * 8 hold descenders.  Missing rows are blank. */
static const char *const font[95] = {
    "",                                                    /* ' ' */
    "..#..|..#..|..#..|..#..|..#..|.....|..#..",           /* ! */
    ".#.#.|.#.#.|.#.#.",                                   /* " */
    ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.",           /* # */
    "..#..|.####|#.#..|.###.|..#.#|####.|..#..",           /* $ */
    "##...|##..#|...#.|..#..|.#...|#..##|...##",           /* % */
    ".##..|#..#.|#.#..|.#...|#.#.#|#..#.|.##.#",           /* & */
    "..#..|..#..|..#..",                                   /* ' */
    "...#.|..#..|.#...|.#...|.#...|..#..|...#.",           /* ( */
    ".#...|..#..|...#.|...#.|...#.|..#..|.#...",           /* ) */
    ".....|..#..|#.#.#|.###.|#.#.#|..#..",                 /* * */
    ".....|..#..|..#..|#####|..#..|..#..",                 /* + */
    ".....|.....|.....|.....|.....|.##..|.##..|..#..|.#...", /* , */
    ".....|.....|.....|#####",                             /* - */
    ".....|.....|.....|.....|.....|.##..|.##..",           /* . */
    ".....|....#|...#.|..#..|.#...|#....",                 /* / */
    ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",           /* 0 */
    "..#..|.##..|..#..|..#..|..#..|..#..|.###.",           /* 1 */
    ".###.|#...#|....#|...#.|..#..|.#...|#####",           /* 2 */
    "#####|...#.|..#..|...#.|....#|#...#|.###.",           /* 3 */
    "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",           /* 4 */
    "#####|#....|####.|....#|....#|#...#|.###.",           /* 5 */
    "..##.|.#...|#....|####.|#...#|#...#|.###.",           /* 6 */
    "#####|....#|...#.|..#..|.#...|.#...|.#...",           /* 7 */
    ".###.|#...#|#...#|.###.|#...#|#...#|.###.",           /* 8 */
    ".###.|#...#|#...#|.####|....#|...#.|.##..",           /* 9 */
    ".....|.##..|.##..|.....|.##..|.##..",                 /* : */
    ".....|.##..|.##..|.....|.##..|.##..|..#..|.#...",     /* ; */
    "...#.|..#..|.#...|#....|.#...|..#..|...#.",           /* < */
    ".....|.....|#####|.....|#####",                       /* = */
    ".#...|..#..|...#.|....#|...#.|..#..|.#...",           /* > */
    ".###.|#...#|....#|...#.|..#..|.....|..#..",           /* ? */
    ".###.|#...#|....#|.##.#|#.#.#|#.#.#|.###.",           /* @ */
    ".###.|#...#|#...#|#####|#...#|#...#|#...#",           /* A */
    "####.|#...#|#...#|####.|#...#|#...#|####.",           /* B */
    ".###.|#...#|#....|#....|#....|#...#|.###.",           /* C */
    "###..|#..#.|#...#|#...#|#...#|#..#.|###..",           /* D */
    "#####|#....|#....|####.|#....|#....|#####",           /* E */
    "#####|#....|#....|####.|#....|#....|#....",           /* F */
    ".###.|#...#|#....|#.###|#...#|#...#|.####",           /* G */
    "#...#|#...#|#...#|#####|#...#|#...#|#...#",           /* H */
    ".###.|..#..|..#..|..#..|..#..|..#..|.###.",           /* I */
    "..###|...#.|...#.|...#.|...#.|#..#.|.##..",           /* J */
    "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#",           /* K */
    "#....|#....|#....|#....|#....|#....|#####",           /* L */
    "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",           /* M */
    "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#",           /* N */
    ".###.|#...#|#...#|#...#|#...#|#...#|.###.",           /* O */
    "####.|#...#|#...#|####.|#....|#....|#....",           /* P */
    ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#",           /* Q */
    "####.|#...#|#...#|####.|#.#..|#..#.|#...#",           /* R */
    ".####|#....|#....|.###.|....#|....#|####.",           /* S */
    "#####|..#..|..#..|..#..|..#..|..#..|..#..",           /* T */
    "#...#|#...#|#...#|#...#|#...#|#...#|.###.",           /* U */
    "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",           /* V */
    "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.",           /* W */
    "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",           /* X */
    "#...#|#...#|.#.#.|..#..|..#..|..#..|..#..",           /* Y */
    "#####|....#|...#.|..#..|.#...|#....|#####",           /* Z */
    ".###.|.#...|.#...|.#...|.#...|.#...|.###.",           /* [ */
    ".....|#....|.#...|..#..|...#.|....#",                 /* \ */
    ".###.|...#.|...#.|...#.|...#.|...#.|.###.",           /* ] */
    "..#..|.#.#.|#...#",                                   /* ^ */
    ".....|.....|.....|.....|.....|.....|.....|#####",     /* _ */
    ".#...|..#..|...#.",                                   /* ` */
    ".....|.....|.###.|....#|.####|#...#|.####",           /* a */
    "#....|#....|####.|#...#|#...#|#...#|####.",           /* b */
    ".....|.....|.###.|#....|#....|#...#|.###.",           /* c */
    "....#|....#|.####|#...#|#...#|#...#|.####",           /* d */
    ".....|.....|.###.|#...#|#####|#....|.###.",           /* e */
    "..##.|.#..#|.#...|###..|.#...|.#...|.#...",           /* f */
    ".....|.....|.####|#...#|#...#|#...#|.####|....#|.###.", /* g */
    "#....|#....|#.##.|##..#|#...#|#...#|#...#",           /* h */
    "..#..|.....|.##..|..#..|..#..|..#..|.###.",           /* i */
    "...#.|.....|..##.|...#.|...#.|...#.|...#.|#..#.|.##..", /* j */
    "#....|#....|#..#.|#.#..|##...|#.#..|#..#.",           /* k */
    ".##..|..#..|..#..|..#..|..#..|..#..|.###.",           /* l */
    ".....|.....|##.#.|#.#.#|#.#.#|#.#.#|#.#.#",           /* m */
    ".....|.....|#.##.|##..#|#...#|#...#|#...#",           /* n */
    ".....|.....|.###.|#...#|#...#|#...#|.###.",           /* o */
    ".....|.....|####.|#...#|#...#|#...#|####.|#....|#....", /* p */
    ".....|.....|.####|#...#|#...#|#...#|.####|....#|....#", /* q */
    ".....|.....|#.##.|##..#|#....|#....|#....",           /* r */
    ".....|.....|.####|#....|.###.|....#|####.",           /* s */
    ".#...|.#...|###..|.#...|.#...|.#..#|..##.",           /* t */
    ".....|.....|#...#|#...#|#...#|#..##|.##.#",           /* u */
    ".....|.....|#...#|#...#|#...#|.#.#.|..#..",           /* v */
    ".....|.....|#...#|#...#|#.#.#|#.#.#|.#.#.",           /* w */
    ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#",           /* x */
    ".....|.....|#...#|#...#|#...#|#...#|.####|....#|.###.", /* y */
    ".....|.....|#####|...#.|..#..|.#...|#####",           /* z */
    "...##|..#..|..#..|.#...|..#..|..#..|...##",           /* { */
    "..#..|..#..|..#..|..#..|..#..|..#..|..#..|..#..",     /* | */
    "##...|..#..|..#..|...#.|..#..|..#..|##...",           /* } */
    ".....|.....|.#...|#.#.#|...#.",                       /* ~ */
};

#define GLYPH_W 5
#define GLYPH_H 9

/* Decodes the glyph of character ch (32..126) into row bit masks (bit 4 =
 * leftmost column). */
static void glyph_rows(int ch, uint8_t rows[GLYPH_H]) {
  memset(rows, 0, GLYPH_H);
  const char *s = font[ch - 32];
  int r = 0, col = 0;
  for (; *s && r < GLYPH_H; s++) {
    if (*s == '|') {
      r++;
      col = 0;
    } else {
      if (*s == '#' && col < GLYPH_W) rows[r] |= (uint8_t)(1u << (GLYPH_W - 1 - col));
      col++;
    }
  }
}

/* The character to draw for the UTF-8 text at *s (advancing *s past it):
 * printable ASCII as is, anything else '?'. */
static int next_char(const char **s) {
  unsigned char c = (unsigned char)**s;
  (*s)++;
  if (c >= 0xC0)
    while ((**s & 0xC0) == 0x80) (*s)++;
  if (c < 32 || c > 126) return '?';
  return c;
}

/* Number of drawn characters in s. */
static int text_chars(const char *s) {
  int n = 0;
  while (*s) {
    if (((unsigned char)*s & 0xC0) == 0x80) { /* stray continuation byte */
      s++;
      continue;
    }
    next_char(&s);
    n++;
  }
  return n;
}

/* ---- The canvas ---- */

nn_canvas *nn_canvas_new(int w, int h, uint32_t background, nn_error *err) {
  if (w < 1 || h < 1 || w > NN_CANVAS_MAX_SIDE || h > NN_CANVAS_MAX_SIDE) {
    nn_seterr(err, "canvas size must be in 1..%d, got %d x %d",
              NN_CANVAS_MAX_SIDE, w, h);
    return NULL;
  }
  nn_canvas *c = malloc(sizeof *c);
  uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
  if (!c || !rgb) {
    free(c);
    free(rgb);
    nn_seterr(err, "out of memory for a %d x %d canvas", w, h);
    return NULL;
  }
  c->w = w;
  c->h = h;
  c->rgb = rgb;
  nn_canvas_fill_rect(c, 0, 0, w, h, background);
  return c;
}

void nn_canvas_free(nn_canvas *c) {
  if (!c) return;
  free(c->rgb);
  free(c);
}

uint32_t nn_canvas_get(const nn_canvas *c, int x, int y) {
  if (x < 0 || y < 0 || x >= c->w || y >= c->h) return 0;
  const uint8_t *p = c->rgb + ((size_t)y * c->w + x) * 3;
  return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

void nn_canvas_set(nn_canvas *c, int x, int y, uint32_t color) {
  nn_canvas_fill_rect(c, x, y, 1, 1, color);
}

void nn_canvas_fill_rect(nn_canvas *c, int x, int y, int w, int h,
                         uint32_t color) {
  /* Clip in 64 bits so huge or negative sizes cannot overflow. */
  int64_t x0 = x, y0 = y, x1 = (int64_t)x + w, y1 = (int64_t)y + h;
  if (x0 < 0) x0 = 0;
  if (y0 < 0) y0 = 0;
  if (x1 > c->w) x1 = c->w;
  if (y1 > c->h) y1 = c->h;
  if (x0 >= x1 || y0 >= y1) return;
  uint8_t r = (uint8_t)(color >> 16), g = (uint8_t)(color >> 8),
          b = (uint8_t)color;
  for (int64_t yy = y0; yy < y1; yy++) {
    uint8_t *p = c->rgb + ((size_t)yy * c->w + (size_t)x0) * 3;
    for (int64_t xx = x0; xx < x1; xx++, p += 3) {
      p[0] = r;
      p[1] = g;
      p[2] = b;
    }
  }
}

void nn_canvas_rect(nn_canvas *c, int x, int y, int w, int h, uint32_t color,
                    int width) {
  if (w <= 0 || h <= 0 || width <= 0) return;
  if (2 * width >= w || 2 * width >= h) {
    nn_canvas_fill_rect(c, x, y, w, h, color);
    return;
  }
  nn_canvas_fill_rect(c, x, y, w, width, color);
  nn_canvas_fill_rect(c, x, y + h - width, w, width, color);
  nn_canvas_fill_rect(c, x, y + width, width, h - 2 * width, color);
  nn_canvas_fill_rect(c, x + w - width, y + width, width, h - 2 * width,
                      color);
}

/* Liang-Barsky: clips the segment (x0,y0)-(x1,y1) to [lo, hx] x [lo, hy];
 * returns 0 when nothing of it lies inside. */
static int clip_segment(double *x0, double *y0, double *x1, double *y1,
                        double lo, double hx, double hy) {
  double dx = *x1 - *x0, dy = *y1 - *y0, t0 = 0, t1 = 1;
  double p[4] = {-dx, dx, -dy, dy};
  double q[4] = {*x0 - lo, hx - *x0, *y0 - lo, hy - *y0};
  for (int k = 0; k < 4; k++) {
    if (p[k] == 0) {
      if (q[k] < 0) return 0;
      continue;
    }
    double t = q[k] / p[k];
    if (p[k] < 0) {
      if (t > t1) return 0;
      if (t > t0) t0 = t;
    } else {
      if (t < t0) return 0;
      if (t < t1) t1 = t;
    }
  }
  double ax = *x0 + t0 * dx, ay = *y0 + t0 * dy;
  double bx = *x0 + t1 * dx, by = *y0 + t1 * dy;
  *x0 = ax, *y0 = ay, *x1 = bx, *y1 = by;
  return 1;
}

void nn_canvas_line(nn_canvas *c, int x0, int y0, int x1, int y1,
                    uint32_t color, int width, int dash) {
  if (width < 1) width = 1;
  int lo = (width - 1) / 2;
  /* A segment reaching far outside the canvas is first clipped to a margin
   * around it, so the walk below stays short; the dash phase is kept. */
  int64_t m = (int64_t)c->w + c->h + width + 2, skipped = 0;
  if (x0 < -m || y0 < -m || x1 < -m || y1 < -m || x0 > c->w + m ||
      y0 > c->h + m || x1 > c->w + m || y1 > c->h + m) {
    double ax = x0, ay = y0, bx = x1, by = y1;
    if (!clip_segment(&ax, &ay, &bx, &by, (double)-m, (double)(c->w + m),
                      (double)(c->h + m)))
      return;
    int nx0 = (int)floor(ax + 0.5), ny0 = (int)floor(ay + 0.5);
    int64_t sx0 = nx0 > x0 ? (int64_t)nx0 - x0 : (int64_t)x0 - nx0;
    int64_t sy0 = ny0 > y0 ? (int64_t)ny0 - y0 : (int64_t)y0 - ny0;
    skipped = sx0 > sy0 ? sx0 : sy0;
    x0 = nx0, y0 = ny0;
    x1 = (int)floor(bx + 0.5), y1 = (int)floor(by + 0.5);
  }
  /* Bresenham over the major axis, in 64 bits against overflow. */
  int64_t dx = x1 > x0 ? (int64_t)x1 - x0 : (int64_t)x0 - x1;
  int64_t dy = y1 > y0 ? (int64_t)y1 - y0 : (int64_t)y0 - y1;
  int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int64_t e = dx - dy, x = x0, y = y0;
  for (int64_t step = skipped;; step++) {
    if (dash <= 0 || (step / dash) % 2 == 0)
      nn_canvas_fill_rect(c, (int)(x - lo), (int)(y - lo), width, width,
                          color);
    if (x == x1 && y == y1) break;
    int64_t e2 = 2 * e;
    if (e2 > -dy) {
      e -= dy;
      x += sx;
    }
    if (e2 < dx) {
      e += dx;
      y += sy;
    }
  }
}

void nn_canvas_circle(nn_canvas *c, int cx, int cy, int r, uint32_t color,
                      int filled) {
  if (r < 0) return;
  double outer = (r + 0.5) * (r + 0.5);
  double inner = r > 0 ? (r - 0.5) * (r - 0.5) : -1;
  for (int dy = -r; dy <= r; dy++) {
    for (int dx = -r; dx <= r; dx++) {
      double d = (double)dx * dx + (double)dy * dy;
      if (d <= outer && (filled || d >= inner))
        nn_canvas_set(c, cx + dx, cy + dy, color);
    }
  }
}

/* ---- Text ---- */

static int clamp_scale(int scale) {
  if (scale < 1) return 1;
  if (scale > NN_FONT_MAX_SCALE) return NN_FONT_MAX_SCALE;
  return scale;
}

int nn_text_width(const char *s, int scale) {
  scale = clamp_scale(scale);
  int n = text_chars(s);
  return n > 0 ? (n * NN_FONT_ADVANCE - 1) * scale : 0;
}

int nn_text_height(int scale) { return GLYPH_H * clamp_scale(scale); }

void nn_canvas_text(nn_canvas *c, int x, int y, const char *s, int scale,
                    uint32_t color, nn_halign halign, nn_valign valign,
                    int vertical) {
  scale = clamp_scale(scale);
  int tw = nn_text_width(s, scale), th = nn_text_height(scale);
  int bw = vertical ? th : tw, bh = vertical ? tw : th;
  int left = x - (halign == NN_CENTER ? bw / 2 : halign == NN_RIGHT ? bw : 0);
  int top = y - (valign == NN_MIDDLE ? bh / 2 : valign == NN_BOTTOM ? bh : 0);
  int k = 0;
  while (*s) {
    if (((unsigned char)*s & 0xC0) == 0x80) {
      s++;
      continue;
    }
    uint8_t rows[GLYPH_H];
    glyph_rows(next_char(&s), rows);
    for (int r = 0; r < GLYPH_H; r++) {
      for (int col = 0; col < GLYPH_W; col++) {
        if (!(rows[r] >> (GLYPH_W - 1 - col) & 1)) continue;
        /* (u, v): the pixel's offset along and across the text. */
        int u = (k * NN_FONT_ADVANCE + col) * scale, v = r * scale;
        if (vertical)
          nn_canvas_fill_rect(c, left + v, top + tw - u - scale, scale, scale,
                              color);
        else
          nn_canvas_fill_rect(c, left + u, top + v, scale, scale, color);
      }
    }
    k++;
  }
}

/* ---- PNG output ---- */

/* libpng reports errors through these; the message is kept for ours. */
typedef struct png_failure {
  char msg[200];
} png_failure;

static void on_png_error(png_structp png, png_const_charp msg) {
  png_failure *f = png_get_error_ptr(png);
  snprintf(f->msg, sizeof f->msg, "%s", msg);
  png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

/* Writes c to the open file f; 0, or -1 with failure->msg set. */
static int write_png(const nn_canvas *c, FILE *f, png_failure *failure) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, failure,
                                            on_png_error, on_png_warning);
  if (!png) {
    snprintf(failure->msg, sizeof failure->msg, "out of memory");
    return -1;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    snprintf(failure->msg, sizeof failure->msg, "out of memory");
    return -1;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return -1;
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < c->h; y++)
    png_write_row(png, c->rgb + (size_t)y * c->w * 3);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return 0;
}

int nn_canvas_save_png(const nn_canvas *c, const char *path, nn_error *err) {
  size_t n = strlen(path) + 32;
  char *tmp = malloc(n);
  if (!tmp) return nn_seterr(err, "%s: out of memory", path);
  snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    int rc = nn_seterr(err, "%s: cannot create %s: %s", path, tmp,
                       strerror(errno));
    free(tmp);
    return rc;
  }
  png_failure failure = {{0}};
  int rc = write_png(c, f, &failure);
  if (rc == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0)) {
    snprintf(failure.msg, sizeof failure.msg, "%s", strerror(errno));
    rc = -1;
  }
  if (fclose(f) != 0 && rc == 0) {
    snprintf(failure.msg, sizeof failure.msg, "%s", strerror(errno));
    rc = -1;
  }
  if (rc == 0 && rename(tmp, path) != 0) {
    rc = nn_seterr(err, "%s: cannot replace the file: %s", path,
                   strerror(errno));
    unlink(tmp);
    free(tmp);
    return rc;
  }
  if (rc != 0) {
    unlink(tmp);
    rc = nn_seterr(err, "%s: cannot write PNG: %s", path, failure.msg);
  }
  free(tmp);
  return rc;
}
