/* winograd.c - F(2x2, 3x3) convolution kernels (see winograd.h).
 *
 * With d a 4x4 input tile, g a 3x3 kernel and Y the 2x2 output tile,
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A
 * where . is the element-wise product and
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1].
 * Summed over input channels, each of the 16 points xi of the transformed
 * tile is a matrix product: Z[xi] (cout x T) = U[xi] (cout x cin) V[xi]
 * (cin x T) over T tiles.  Backward, with dZ = A dY A^T:
 *   dV[xi] = U[xi]^T dZ[xi], and dx gets B dV B^T added at each tile;
 *   dU[xi] = sum over tiles of dZ[xi] V[xi]^T, and dw = G^T dU G.
 *
 * Tiles are numbered row-major over (sample, tile row, tile column) and
 * processed in chunks of whole tile rows.  For each chunk the threads split
 * the transforms by channel and the 16 gemms by point, each gemm running on
 * one thread, so no result depends on how many threads there are.
 *
 * Workspace layout (floats): U [16][cout][cin] | dU [16][cout][cin] (backward
 * with gw) | V [16][cin][tc] | Z or dZ [16][cout][tc] | dV [16][cin][tc]
 * (backward with gx) | per-thread rows [nthreads][8 * len]. */
#include "winograd.h"

#include <omp.h>
#include <string.h>

#include "gemm.h"

/* Chunk buffers (V, Z) take about CHUNK_FLOATS floats; a chunk has at least
 * MIN_TILES tiles (narrower gemms lose speed) unless the batch has fewer. */
#define CHUNK_FLOATS ((int64_t)1 << 17)
#define MIN_TILES 64

/* The channel counts from which the gemms (depth cin or cout) run fast
 * enough to make up for the transforms; measured on VGG's and the Fashion-
 * MNIST CNN's shapes. */
#define MIN_CHANNELS 32

/* Floats added to each point's stride (one cache line). */
#define SKEW 16

typedef struct plan {
  int64_t tx, ty;     /* tiles per row, tile rows per sample */
  int64_t rows;       /* tile rows in the batch: n * ty */
  int64_t rc;         /* tile rows per chunk */
  int64_t tc;         /* tiles per full chunk: rc * tx */
  int64_t len;        /* padded row length: 2 * tx + 2 */
  int64_t us, vs, zs; /* strides between the 16 points of U (and dU), V
                         (and dV), Z (and dZ): the matrix sizes plus
                         SKEW, so that the 16 streams of a transform do not
                         fall into the same cache sets (power-of-two strides
                         made the transforms several times slower) */
} plan;

static void make_plan(const nn_conv2d_geom *g, plan *p) {
  p->tx = (g->wo + 1) / 2;
  p->ty = (g->ho + 1) / 2;
  p->rows = g->n * p->ty;
  p->len = 2 * p->tx + 2;
  int64_t ch = g->cin > g->cout ? g->cin : g->cout;
  int64_t want = CHUNK_FLOATS / (32 * ch);
  if (want < MIN_TILES) want = MIN_TILES;
  int64_t rc = (want + p->tx - 1) / p->tx;
  if (rc > p->rows) rc = p->rows;
  if (rc < 1) rc = 1;
  int64_t nchunks = (p->rows + rc - 1) / rc;
  p->rc = nchunks > 0 ? (p->rows + nchunks - 1) / nchunks : 1;
  p->tc = p->rc * p->tx;
  p->us = g->cout * g->cin + SKEW;
  p->vs = g->cin * p->tc + SKEW;
  p->zs = g->cout * p->tc + SKEW;
}

int nn_winograd_suits(const nn_conv2d_geom *g) {
  return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 &&
         g->ph <= 2 && g->pw <= 2 && g->ho > 0 && g->wo > 0 &&
         g->cin >= MIN_CHANNELS && g->cout >= MIN_CHANNELS;
}

int64_t nn_winograd_workspace_size(const nn_conv2d_geom *g, int nthreads) {
  plan p;
  make_plan(g, &p);
  int64_t t = nthreads < 1 ? 1 : nthreads;
  return 2 * 16 * p.us + 16 * (2 * p.vs + p.zs) + t * 8 * p.len;
}

/* ---- Transforms ---- */

/* U[xi][o][c] = (G g G^T)[xi] for every kernel; omp-for over outputs. */
static void transform_weights(const nn_conv2d_geom *g, const plan *p,
                              const float *w, float *u) {
  int64_t plane = p->us;
#pragma omp for schedule(static)
  for (int64_t o = 0; o < g->cout; o++)
    for (int64_t c = 0; c < g->cin; c++) {
      const float *k = w + (o * g->cin + c) * 9;
      float gg[4][3];
      for (int j = 0; j < 3; j++) {
        gg[0][j] = k[j];
        gg[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
        gg[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
        gg[3][j] = k[6 + j];
      }
      float *dst = u + o * g->cin + c;
      for (int r = 0; r < 4; r++) {
        dst[(r * 4 + 0) * plane] = gg[r][0];
        dst[(r * 4 + 1) * plane] = 0.5f * (gg[r][0] + gg[r][1] + gg[r][2]);
        dst[(r * 4 + 2) * plane] = 0.5f * (gg[r][0] - gg[r][1] + gg[r][2]);
        dst[(r * 4 + 3) * plane] = gg[r][2];
      }
    }
}

/* gw[o][c] += G^T dU[.][o][c] G for every kernel; omp-for over outputs. */
static void weights_gradient(const nn_conv2d_geom *g, const plan *p,
                             const float *du, float *gw) {
  int64_t plane = p->us;
#pragma omp for schedule(static)
  for (int64_t o = 0; o < g->cout; o++)
    for (int64_t c = 0; c < g->cin; c++) {
      const float *src = du + o * g->cin + c;
      float m[4][4], t[3][4];
      for (int xi = 0; xi < 16; xi++) m[xi / 4][xi % 4] = src[xi * plane];
      for (int j = 0; j < 4; j++) {
        t[0][j] = m[0][j] + 0.5f * (m[1][j] + m[2][j]);
        t[1][j] = 0.5f * (m[1][j] - m[2][j]);
        t[2][j] = 0.5f * (m[1][j] + m[2][j]) + m[3][j];
      }
      float *k = gw + (o * g->cin + c) * 9;
      for (int r = 0; r < 3; r++) {
        k[r * 3 + 0] += t[r][0] + 0.5f * (t[r][1] + t[r][2]);
        k[r * 3 + 1] += 0.5f * (t[r][1] - t[r][2]);
        k[r * 3 + 2] += 0.5f * (t[r][1] + t[r][2]) + t[r][3];
      }
    }
}

/* Copies rows y0..y0+3 of the plane xp [h, w], columns -pw .. len-pw-1, into
 * d[4][len] with zeros outside the plane. */
static void gather_rows(const nn_conv2d_geom *g, const float *xp, int64_t y0,
                        int64_t len, float *d) {
  for (int i = 0; i < 4; i++) {
    float *row = d + i * len;
    int64_t y = y0 + i;
    memset(row, 0, (size_t)len * sizeof(float));
    if (y < 0 || y >= g->h) continue;
    int64_t lo = g->pw, n = g->w;
    if (lo + n > len) n = len - lo;
    memcpy(row + lo, xp + y * g->w, (size_t)n * sizeof(float));
  }
}

/* V[xi][c][t0 + tx] = (B^T d B)[xi] for the tiles of one tile row of channel
 * c; d [4][len] holds its input rows (gather_rows), s [4][len] is scratch;
 * v points at V[0][c][t0], with stride vs between points. */
static void input_tile_row(const float *d, float *s, int64_t len, int64_t tx,
                           float *v, int64_t vs) {
  const float *d0 = d, *d1 = d + len, *d2 = d + 2 * len, *d3 = d + 3 * len;
  float *s0 = s, *s1 = s + len, *s2 = s + 2 * len, *s3 = s + 3 * len;
  for (int64_t u = 0; u < len; u++) {
    s0[u] = d0[u] - d2[u];
    s1[u] = d1[u] + d2[u];
    s2[u] = d2[u] - d1[u];
    s3[u] = d1[u] - d3[u];
  }
  for (int i = 0; i < 4; i++) {
    const float *r = s + i * len;
    float *v0 = v + (i * 4) * vs, *v1 = v0 + vs, *v2 = v1 + vs, *v3 = v2 + vs;
    for (int64_t t = 0; t < tx; t++) {
      float a = r[2 * t], b = r[2 * t + 1], c = r[2 * t + 2], e = r[2 * t + 3];
      v0[t] = a - c;
      v1[t] = b + c;
      v2[t] = c - b;
      v3[t] = b - e;
    }
  }
}

/* V for every channel and every tile of rows [r0, r0 + nr); omp-for over
 * channels.  rowbuf is this thread's [8 * len] scratch. */
static void transform_input(const nn_conv2d_geom *g, const plan *p,
                            const float *x, int64_t r0, int64_t nr, float *v,
                            float *rows) {
  int64_t vs = p->vs;
#pragma omp for schedule(static)
  for (int64_t c = 0; c < g->cin; c++) {
    float *rowbuf = rows + omp_get_thread_num() * 8 * p->len;
    for (int64_t r = r0; r < r0 + nr; r++) {
      int64_t n = r / p->ty, ty = r % p->ty;
      const float *xp = x + (n * g->cin + c) * g->h * g->w;
      gather_rows(g, xp, 2 * ty - g->ph, p->len, rowbuf);
      input_tile_row(rowbuf, rowbuf + 4 * p->len, p->len, p->tx,
                     v + c * p->tc + (r - r0) * p->tx, vs);
    }
  }
}

/* y for every output channel and tile of rows [r0, r0 + nr) from Z:
 * Y = A^T Z A + b; omp-for over output channels. */
static void transform_output(const nn_conv2d_geom *g, const plan *p,
                             const float *z, const float *b, int64_t r0,
                             int64_t nr, float *y, float *rows) {
  int64_t zs = p->zs;
#pragma omp for schedule(static)
  for (int64_t o = 0; o < g->cout; o++) {
    float *t0 = rows + omp_get_thread_num() * 8 * p->len, *t1 = t0 + p->len;
    float bias = b ? b[o] : 0.0f;
    for (int64_t r = r0; r < r0 + nr; r++) {
      int64_t n = r / p->ty, ty = r % p->ty;
      const float *m = z + o * p->tc + (r - r0) * p->tx;
      for (int64_t t = 0; t < p->tx; t++) {
        float a0[4], a1[4];
        for (int j = 0; j < 4; j++) {
          float m0 = m[j * zs + t], m1 = m[(4 + j) * zs + t];
          float m2 = m[(8 + j) * zs + t], m3 = m[(12 + j) * zs + t];
          a0[j] = m0 + m1 + m2;
          a1[j] = m1 - m2 - m3;
        }
        t0[2 * t] = a0[0] + a0[1] + a0[2] + bias;
        t0[2 * t + 1] = a0[1] - a0[2] - a0[3] + bias;
        t1[2 * t] = a1[0] + a1[1] + a1[2] + bias;
        t1[2 * t + 1] = a1[1] - a1[2] - a1[3] + bias;
      }
      float *yp = y + (n * g->cout + o) * g->ho * g->wo;
      memcpy(yp + 2 * ty * g->wo, t0, (size_t)g->wo * sizeof(float));
      if (2 * ty + 1 < g->ho)
        memcpy(yp + (2 * ty + 1) * g->wo, t1, (size_t)g->wo * sizeof(float));
    }
  }
}

/* dZ = A dY A^T for every output channel and tile of rows [r0, r0 + nr);
 * omp-for over output channels. */
static void transform_grad_output(const nn_conv2d_geom *g, const plan *p,
                                  const float *gy, int64_t r0, int64_t nr,
                                  float *dz, float *rows) {
  int64_t zs = p->zs;
#pragma omp for schedule(static)
  for (int64_t o = 0; o < g->cout; o++) {
    float *g0 = rows + omp_get_thread_num() * 8 * p->len, *g1 = g0 + p->len;
    for (int64_t r = r0; r < r0 + nr; r++) {
      int64_t n = r / p->ty, ty = r % p->ty;
      const float *gp = gy + (n * g->cout + o) * g->ho * g->wo;
      memset(g0, 0, (size_t)(2 * p->len) * sizeof(float));
      memcpy(g0, gp + 2 * ty * g->wo, (size_t)g->wo * sizeof(float));
      if (2 * ty + 1 < g->ho)
        memcpy(g1, gp + (2 * ty + 1) * g->wo, (size_t)g->wo * sizeof(float));
      float *m = dz + o * p->tc + (r - r0) * p->tx;
      for (int64_t t = 0; t < p->tx; t++) {
        float e0 = g0[2 * t], e1 = g0[2 * t + 1];
        float f0 = g1[2 * t], f1 = g1[2 * t + 1];
        /* rows of A dY: dy0, dy0 + dy1, dy0 - dy1, -dy1 */
        float b[4][2] = {{e0, e1}, {e0 + f0, e1 + f1}, {e0 - f0, e1 - f1},
                         {-f0, -f1}};
        for (int k = 0; k < 4; k++) {
          m[(k * 4 + 0) * zs + t] = b[k][0];
          m[(k * 4 + 1) * zs + t] = b[k][0] + b[k][1];
          m[(k * 4 + 2) * zs + t] = b[k][0] - b[k][1];
          m[(k * 4 + 3) * zs + t] = -b[k][1];
        }
      }
    }
  }
}

/* dx += B dV B^T at every tile of rows [r0, r0 + nr), for every input
 * channel; omp-for over input channels, so each plane of dx is written by
 * one thread, tile rows in order. */
static void scatter_grad_input(const nn_conv2d_geom *g, const plan *p,
                               const float *dv, int64_t r0, int64_t nr,
                               float *gx, float *rows) {
  int64_t vs = p->vs, len = p->len;
#pragma omp for schedule(static)
  for (int64_t c = 0; c < g->cin; c++) {
    float *acc = rows + omp_get_thread_num() * 8 * len;
    for (int64_t r = r0; r < r0 + nr; r++) {
      int64_t n = r / p->ty, ty = r % p->ty;
      const float *m = dv + c * p->tc + (r - r0) * p->tx;
      memset(acc, 0, (size_t)(4 * len) * sizeof(float));
      for (int64_t t = 0; t < p->tx; t++) {
        float q[4][4], x[4][4];
        for (int j = 0; j < 4; j++) {
          float v0 = m[j * vs + t], v1 = m[(4 + j) * vs + t];
          float v2 = m[(8 + j) * vs + t], v3 = m[(12 + j) * vs + t];
          q[0][j] = v0;
          q[1][j] = v1 - v2 + v3;
          q[2][j] = v1 + v2 - v0;
          q[3][j] = -v3;
        }
        for (int i = 0; i < 4; i++) {
          x[i][0] = q[i][0];
          x[i][1] = q[i][1] - q[i][2] + q[i][3];
          x[i][2] = q[i][1] + q[i][2] - q[i][0];
          x[i][3] = -q[i][3];
        }
        for (int i = 0; i < 4; i++)
          for (int j = 0; j < 4; j++) acc[i * len + 2 * t + j] += x[i][j];
      }
      float *xp = gx + (n * g->cin + c) * g->h * g->w;
      int64_t y0 = 2 * ty - g->ph;
      for (int i = 0; i < 4; i++) {
        int64_t yy = y0 + i;
        if (yy < 0 || yy >= g->h) continue;
        float *dst = xp + yy * g->w;
        const float *src = acc + i * len + g->pw;
        int64_t nw = g->w;
        if (g->pw + nw > len) nw = len - g->pw;
        for (int64_t u = 0; u < nw; u++) dst[u] += src[u];
      }
    }
  }
}

/* ---- Kernels ---- */

void nn_winograd_forward(int nthreads, const nn_conv2d_geom *g, const float *x,
                         const float *w, const float *b, float *y, float *ws) {
  plan p;
  make_plan(g, &p);
  if (p.rows == 0) return;
  float *u = ws;
  float *v = u + 2 * 16 * p.us;
  float *z = v + 16 * p.vs;
  float *rows = z + 16 * (p.vs + p.zs);
#pragma omp parallel num_threads(nthreads)
  {
    transform_weights(g, &p, w, u);
    for (int64_t r0 = 0; r0 < p.rows; r0 += p.rc) {
      int64_t nr = p.rows - r0 < p.rc ? p.rows - r0 : p.rc, nt = nr * p.tx;
      transform_input(g, &p, x, r0, nr, v, rows);
#pragma omp for schedule(static)
      for (int xi = 0; xi < 16; xi++)
        nn_gemm(1, 0, 0, g->cout, nt, g->cin, 1.0f, u + xi * p.us, g->cin,
                v + xi * p.vs, p.tc, 0.0f, z + xi * p.zs, p.tc);
      transform_output(g, &p, z, b, r0, nr, y, rows);
    }
  }
}

void nn_winograd_backward(int nthreads, const nn_conv2d_geom *g,
                          const float *x, const float *w, const float *gy,
                          float *gx, float *gw, float *ws) {
  plan p;
  make_plan(g, &p);
  int64_t plane = g->cout * g->cin;
  float *u = ws, *du = u + 16 * p.us;
  float *v = du + 16 * p.us;
  float *dz = v + 16 * p.vs;
  float *dv = dz + 16 * p.zs;
  float *rows = dv + 16 * p.vs;
  int64_t planes = g->n * g->cin, hw = g->h * g->w;
#pragma omp parallel num_threads(nthreads)
  {
    if (gx) {
      transform_weights(g, &p, w, u);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < planes; i++)
        memset(gx + i * hw, 0, (size_t)hw * sizeof(float));
    }
    if (gw) {
#pragma omp for schedule(static)
      for (int xi = 0; xi < 16; xi++)
        memset(du + xi * p.us, 0, (size_t)plane * sizeof(float));
    }
    for (int64_t r0 = 0; r0 < p.rows; r0 += p.rc) {
      int64_t nr = p.rows - r0 < p.rc ? p.rows - r0 : p.rc, nt = nr * p.tx;
      transform_grad_output(g, &p, gy, r0, nr, dz, rows);
      if (gw) transform_input(g, &p, x, r0, nr, v, rows);
#pragma omp for schedule(static)
      for (int xi = 0; xi < 16; xi++) {
        const float *dzx = dz + xi * p.zs;
        if (gw)
          nn_gemm(1, 0, 1, g->cout, g->cin, nt, 1.0f, dzx, p.tc, v + xi * p.vs,
                  p.tc, 1.0f, du + xi * p.us, g->cin);
        if (gx)
          nn_gemm(1, 1, 0, g->cin, nt, g->cout, 1.0f, u + xi * p.us, g->cin,
                  dzx, p.tc, 0.0f, dv + xi * p.vs, p.tc);
      }
      if (gx) scatter_grad_input(g, &p, dv, r0, nr, gx, rows);
    }
    if (gw) weights_gradient(g, &p, du, gw);
  }
}
