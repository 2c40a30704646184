/*
 * test_plot.c - the raster canvas: clipping, rectangles, lines, circles,
 * text boxes and alignment, rotated text, and PNG output read back with
 * libpng.
 */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../runtime/plot.h"
#include "check.h"

#define WHITE 0xFFFFFFu
#define RED 0xFF0000u
#define BLUE 0x0000FFu

/* Number of pixels of color `color` in the rectangle [x0,x1) x [y0,y1). */
static int count(const nn_canvas *c, int x0, int y0, int x1, int y1,
                 uint32_t color) {
  int n = 0;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) n += nn_canvas_get(c, x, y) == color;
  return n;
}

static void test_new_and_rects(void) {
  nn_error err;
  CHECK(nn_canvas_new(0, 10, WHITE, &err) == NULL);
  CHECK(strcmp(err.msg, "canvas size must be in 1..16384, got 0 x 10") == 0);
  nn_canvas *c = nn_canvas_new(20, 10, WHITE, &err);
  CHECK(c != NULL);
  if (!c) return;
  CHECK(count(c, 0, 0, 20, 10, WHITE) == 200);
  nn_canvas_fill_rect(c, 18, 8, 100, 100, RED); /* clipped to 2x2 */
  CHECK(count(c, 0, 0, 20, 10, RED) == 4 && nn_canvas_get(c, 19, 9) == RED);
  nn_canvas_fill_rect(c, -5, -5, 7, 6, BLUE); /* clipped to 2x1 */
  CHECK(count(c, 0, 0, 20, 10, BLUE) == 2);
  nn_canvas_fill_rect(c, 2000000000, 0, 2000000000, 5, BLUE); /* no overflow */
  CHECK(nn_canvas_get(c, -1, 0) == 0 && nn_canvas_get(c, 20, 0) == 0);
  nn_canvas_fill_rect(c, 0, 0, 20, 10, WHITE);
  nn_canvas_rect(c, 2, 2, 6, 5, RED, 1);
  CHECK(count(c, 0, 0, 20, 10, RED) == 2 * 6 + 2 * 3);
  CHECK(nn_canvas_get(c, 4, 4) == WHITE && nn_canvas_get(c, 7, 6) == RED);
  nn_canvas_free(c);
}

static void test_lines(void) {
  nn_error err;
  nn_canvas *c = nn_canvas_new(20, 20, WHITE, &err);
  if (!c) return;
  nn_canvas_line(c, 2, 3, 12, 3, RED, 1, 0);
  CHECK(count(c, 0, 0, 20, 20, RED) == 11 && nn_canvas_get(c, 12, 3) == RED);
  nn_canvas_line(c, 0, 0, 9, 9, BLUE, 1, 0); /* diagonal: 10 pixels */
  CHECK(count(c, 0, 0, 20, 20, BLUE) == 10 && nn_canvas_get(c, 5, 5) == BLUE);
  nn_canvas_fill_rect(c, 0, 0, 20, 20, WHITE);
  nn_canvas_line(c, 5, 0, 5, 19, RED, 3, 0); /* 3 wide: columns 4..6 */
  CHECK(count(c, 0, 0, 20, 20, RED) == 60 && nn_canvas_get(c, 4, 10) == RED &&
        nn_canvas_get(c, 6, 10) == RED && nn_canvas_get(c, 7, 10) == WHITE);
  nn_canvas_fill_rect(c, 0, 0, 20, 20, WHITE);
  nn_canvas_line(c, 0, 10, 19, 10, RED, 1, 4); /* on 0-3, 8-11, 16-19 */
  CHECK(count(c, 0, 0, 20, 20, RED) == 12 && nn_canvas_get(c, 5, 10) == WHITE &&
        nn_canvas_get(c, 9, 10) == RED);
  nn_canvas_line(c, -1000000, 5, 1000000, 5, BLUE, 1, 0); /* clipped */
  CHECK(count(c, 0, 5, 20, 6, BLUE) == 20);
  nn_canvas_line(c, 2000000000, -2000000000, 2000000000, 2000000000, BLUE, 1,
                 0); /* outside: nothing drawn, no overflow */
  CHECK(count(c, 0, 0, 20, 20, BLUE) == 20);
  /* A diagonal through the canvas from far away is clipped, not walked:
   * it still crosses the canvas corner to corner. */
  nn_canvas_fill_rect(c, 0, 0, 20, 20, WHITE);
  nn_canvas_line(c, -2000000000, -2000000000, 2000000000, 2000000000, RED, 1,
                 0);
  CHECK(count(c, 0, 0, 20, 20, RED) == 20 && nn_canvas_get(c, 0, 0) == RED &&
        nn_canvas_get(c, 19, 19) == RED && nn_canvas_get(c, 5, 5) == RED);
  nn_canvas_free(c);
}

static void test_circle(void) {
  nn_error err;
  nn_canvas *c = nn_canvas_new(21, 21, WHITE, &err);
  if (!c) return;
  nn_canvas_circle(c, 10, 10, 5, RED, 1);
  int n = count(c, 0, 0, 21, 21, RED);
  CHECK(n > 85 && n < 105); /* about pi * 5.5^2 = 95 */
  CHECK(nn_canvas_get(c, 10, 10) == RED && nn_canvas_get(c, 15, 10) == RED &&
        nn_canvas_get(c, 16, 10) == WHITE);
  nn_canvas_fill_rect(c, 0, 0, 21, 21, WHITE);
  nn_canvas_circle(c, 10, 10, 5, RED, 0);
  CHECK(nn_canvas_get(c, 10, 10) == WHITE && nn_canvas_get(c, 15, 10) == RED);
  nn_canvas_free(c);
}

/* Every printable glyph has ink, all of it inside its 5x9 cell. */
static void test_font(void) {
  nn_error err;
  nn_canvas *c = nn_canvas_new(40, 40, WHITE, &err);
  if (!c) return;
  for (int ch = 33; ch < 127; ch++) {
    char s[2] = {(char)ch, 0};
    nn_canvas_fill_rect(c, 0, 0, 40, 40, WHITE);
    nn_canvas_text(c, 10, 10, s, 1, RED, NN_LEFT, NN_TOP, 0);
    int inside = count(c, 10, 10, 15, 19, RED), all = count(c, 0, 0, 40, 40, RED);
    if (inside == 0 || inside != all) {
      fprintf(stderr, "glyph '%c': %d pixels inside, %d in all\n", ch, inside, all);
      CHECK(!"glyph");
    }
  }
  nn_canvas_free(c);
  CHECK(nn_text_width("", 1) == 0 && nn_text_width("A", 1) == 5);
  CHECK(nn_text_width("Ab", 1) == 11 && nn_text_width("Ab", 2) == 22);
  CHECK(nn_text_height(1) == 9 && nn_text_height(3) == 27);
  CHECK(nn_text_width("\xC3\xA9t\xC3\xA9", 1) == 17); /* "été": 3 characters */
  CHECK(nn_text_width("x", 100) == 5 * NN_FONT_MAX_SCALE);
}

/* The bounding box of the ink of one color. */
static void ink_box(const nn_canvas *c, uint32_t color, int box[4]) {
  box[0] = c->w, box[1] = c->h, box[2] = -1, box[3] = -1;
  for (int y = 0; y < c->h; y++)
    for (int x = 0; x < c->w; x++)
      if (nn_canvas_get(c, x, y) == color) {
        if (x < box[0]) box[0] = x;
        if (y < box[1]) box[1] = y;
        if (x > box[2]) box[2] = x;
        if (y > box[3]) box[3] = y;
      }
}

static void test_alignment(void) {
  nn_error err;
  nn_canvas *c = nn_canvas_new(100, 100, WHITE, &err);
  if (!c) return;
  int box[4];
  /* "HH": ink spans the full 11 x 7 (caps, no descender) at scale 1. */
  nn_canvas_text(c, 50, 50, "HH", 1, RED, NN_RIGHT, NN_BOTTOM, 0);
  ink_box(c, RED, box);
  CHECK(box[0] == 39 && box[2] == 49 && box[1] == 41 && box[3] == 47);
  nn_canvas_fill_rect(c, 0, 0, 100, 100, WHITE);
  nn_canvas_text(c, 50, 50, "HH", 2, RED, NN_CENTER, NN_TOP, 0);
  ink_box(c, RED, box);
  CHECK(box[0] == 39 && box[2] == 60 && box[1] == 50 && box[3] == 63);
  /* Rotated: a 9-wide, 11-tall box; the text runs upward, so the first
   * 'H' sits at the bottom. */
  nn_canvas_fill_rect(c, 0, 0, 100, 100, WHITE);
  nn_canvas_text(c, 10, 20, "HL", 1, RED, NN_LEFT, NN_TOP, 1);
  ink_box(c, RED, box);
  CHECK(box[0] == 10 && box[2] == 16 && box[1] == 20 && box[3] == 30);
  /* 'L' (the second letter, at the top) has its bottom bar on the right:
   * the rightmost column's ink lies in rows 20..24 only. */
  CHECK(count(c, 16, 20, 17, 25, RED) == 5 && count(c, 16, 25, 17, 31, RED) == 2);
  nn_canvas_free(c);
}

static void test_png(void) {
  nn_error err;
  nn_canvas *c = nn_canvas_new(30, 20, WHITE, &err);
  if (!c) return;
  nn_canvas_fill_rect(c, 0, 0, 10, 20, 0x123456);
  nn_canvas_text(c, 15, 5, "ok", 1, RED, NN_LEFT, NN_TOP, 0);
  char dir[] = "/tmp/test_plot_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[256];
  snprintf(path, sizeof path, "%s/out.png", dir);
  CHECK(nn_canvas_save_png(c, path, &err) == 0);
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  CHECK(png_image_begin_read_from_file(&img, path) != 0);
  CHECK(img.width == 30 && img.height == 20);
  img.format = PNG_FORMAT_RGB;
  uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
  CHECK(png_image_finish_read(&img, NULL, buf, 0, NULL) != 0);
  int same = 1;
  for (int i = 0; i < 30 * 20 * 3; i++) same &= buf[i] == c->rgb[i];
  CHECK(same);
  free(buf);
  /* Overwriting replaces the file; no temporary is left behind. */
  CHECK(nn_canvas_save_png(c, path, &err) == 0);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", dir);
  CHECK(system(cmd) == 0);
  unlink(path);
  rmdir(dir);
  snprintf(path, sizeof path, "%s/missing/out.png", dir);
  CHECK(nn_canvas_save_png(c, path, &err) == -1);
  CHECK(strstr(err.msg, "cannot create") && strstr(err.msg, "No such file or directory"));
  nn_canvas_free(c);
}

int main(void) {
  RUN(test_new_and_rects);
  RUN(test_lines);
  RUN(test_circle);
  RUN(test_font);
  RUN(test_alignment);
  RUN(test_png);
  return check_report("plot");
}
