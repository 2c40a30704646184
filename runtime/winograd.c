/* winograd.c - F(m x m, 3x3) convolution kernels, m = 2 or 4 (see
 * winograd.h).
 *
 * With d an a x a input tile (a = m + 2), g a 3x3 kernel and Y the m x m
 * output tile,
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A
 * where . is the element-wise product.  For m = 2 (16 points):
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1];
 * for m = 4 (36 points, interpolation at 0, +-1, +-2 and infinity):
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
 *          0 2 -1 -2 1 0; 0 4 0 -5 0 1],
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
 *          1/24 -1/12 1/6; 0 0 1],
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
 * Summed over input channels, each point xi of the transformed tile is a
 * matrix product: Z[xi] (cout x T) = U[xi] (cout x cin) V[xi] (cin x T) over
 * T tiles.  Backward, with dZ = A dY A^T:
 *   dV[xi] = U[xi]^T dZ[xi], and dx gets B dV B^T added at each tile;
 *   dU[xi] = sum over tiles of dZ[xi] V[xi]^T, and dw = G^T dU G.
 * F(4x4) does 2.25 multiplications per output and channel pair against 4
 * for F(2x2) and 9 for a direct convolution, but its transforms cost more
 * and its tiles waste more on small images, so F(2x2) serves those.
 *
 * Every 2-D transform is a 1-D transform applied down the columns (on
 * whole rows of tiles at once, which vectorises) and then along each tile's
 * rows.  Tiles are numbered row-major over (sample, tile row, tile column)
 * and processed in chunks of whole tile rows.  For each chunk the threads
 * split the transforms by channel and the gemms by point, each gemm running
 * on one thread, so no result depends on how many threads there are.
 *
 * Workspace layout (floats): U [P][cout][cin] | dU [P][cout][cin] (backward
 * with gw) | V [P][cin][tc] | Z or dZ [P][cout][tc] | dV [P][cin][tc]
 * (backward with gx) | per-thread rows [nthreads][ROW_BUFS * len], where P
 * is the number of points (a * a), each point's matrix padded by SKEW. */
#include "winograd.h"

#include <omp.h>
#include <string.h>

#include "gemm.h"

/* Chunk buffers (V, Z) take about CHUNK_FLOATS floats (so that they stay in
 * a core's L2 cache between the transforms and the gemms); a chunk has at
 * least MIN_TILES tiles (narrower gemms lose speed) unless the batch has
 * fewer. */
#define CHUNK_FLOATS ((int64_t)1 << 17)
#define MIN_TILES 64

/* The channel counts from which the gemms (depth cin or cout) run fast
 * enough to make up for the transforms; measured on VGG's and the Fashion-
 * MNIST CNN's shapes. */
#define MIN_CHANNELS 32

/* Smaller outputs (VGG's 2x2 layers: one tile per sample, gemms 64 tiles
 * wide) ran 20% slower than im2col, whose one gemm is deep. */
#define MIN_SIZE 4

/* F(4x4) is used when the output is at least BIG_MIN_SIZE wide and high and
 * the channel counts are at most BIG_MAX_CHANNELS (its transformed weights,
 * 36 * cout * cin floats rewritten on every call, cost more than they save
 * on VGG's 512-channel layers). */
#define BIG_MIN_SIZE 8
#define BIG_MAX_CHANNELS 256

/* Floats added to each point's stride (one cache line): with power-of-two
 * strides the streams of a transform fall into the same cache sets, which
 * made the transforms several times slower. */
#define SKEW 16

/* Partial sums of the weight gradient when threads share a call by chunk
 * (see the kernels). */
#define GROUPS 2
#define MIN_CHUNKS 4

/* Rows of len floats in each thread's scratch. */
#define ROW_BUFS 12

typedef struct plan {
  int m, a, np;       /* output tile size, input tile size a = m + 2, a * a */
  int64_t tx, ty;     /* tiles per row, tile rows per sample */
  int64_t rows;       /* tile rows in the batch: n * ty */
  int64_t rc;         /* tile rows per chunk */
  int64_t tc;         /* tiles per full chunk: rc * tx */
  int64_t len;        /* padded row length: m * tx + 2 */
  int64_t us, vs, zs; /* strides between the points of U (and dU), V (and
                         dV), Z (and dZ) */
  int alone;          /* threads take whole chunks (see the kernels) */
  int groups;         /* partial sums of the weight gradient */
} plan;

static void make_plan(const nn_conv2d_geom *g, plan *p) {
  int big = g->ho >= BIG_MIN_SIZE && g->wo >= BIG_MIN_SIZE &&
            g->cin <= BIG_MAX_CHANNELS && g->cout <= BIG_MAX_CHANNELS;
  p->m = big ? 4 : 2;
  p->a = p->m + 2;
  p->np = p->a * p->a;
  p->tx = (g->wo + p->m - 1) / p->m;
  p->ty = (g->ho + p->m - 1) / p->m;
  p->rows = g->n * p->ty;
  p->len = p->m * p->tx + 2;
  int64_t ch = g->cin > g->cout ? g->cin : g->cout;
  int64_t want = CHUNK_FLOATS / (2 * p->np * ch);
  if (want < MIN_TILES) want = MIN_TILES;
  int64_t per = p->tx * p->ty; /* tiles per sample */
  if (per <= 2 * want) {       /* chunks of whole samples */
    int64_t k = want / per;
    if (k < 1) k = 1;
    if (k > g->n) k = g->n;
    int64_t nchunks = (g->n + k - 1) / k;
    k = nchunks > 0 ? (g->n + nchunks - 1) / nchunks : 1;
    p->rc = k * p->ty;
  } else { /* large images: chunks of tile rows */
    int64_t rc = (want + p->tx - 1) / p->tx;
    if (rc > p->rows) rc = p->rows;
    if (rc < 1) rc = 1;
    int64_t nchunks = (p->rows + rc - 1) / rc;
    p->rc = nchunks > 0 ? (p->rows + nchunks - 1) / nchunks : 1;
  }
  p->tc = p->rc * p->tx;
  p->us = g->cout * g->cin + SKEW;
  p->vs = g->cin * p->tc + SKEW;
  p->zs = g->cout * p->tc + SKEW;
  /* By whole chunks when there are MIN_CHUNKS chunks of whole samples: a
   * property of the shapes alone, since it decides how the weight gradient
   * is summed. */
  int64_t nchunks = (p->rows + p->rc - 1) / p->rc;
  p->alone = p->rc % p->ty == 0 && nchunks >= MIN_CHUNKS;
  p->groups = p->alone ? GROUPS : 1;
}

int nn_winograd_suits(const nn_conv2d_geom *g) {
  return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 &&
         g->ph <= 2 && g->pw <= 2 && g->ho >= MIN_SIZE && g->wo >= MIN_SIZE &&
         g->cin >= MIN_CHANNELS && g->cout >= MIN_CHANNELS;
}

int64_t nn_winograd_workspace_size(const nn_conv2d_geom *g, int nthreads) {
  plan p;
  make_plan(g, &p);
  int64_t t = nthreads < 1 ? 1 : nthreads;
  return p.np * ((1 + p.groups) * p.us + (p.alone ? t : 1) * (2 * p.vs + p.zs)) +
         t * ROW_BUFS * p.len;
}

/* ---- 1-D transforms ----
 * Each maps k rows (or values) to rows: out[i][u] for u < n, from in[j][u]
 * (in and out are arrays of row pointers, strides allowed through the
 * pointers).  The loops over u vectorise. */

/* out = B^T in: a rows to a rows. */
static void bt_rows(int m, const float *const *in, float *const *out,
                    int64_t n) {
  if (m == 2) {
    for (int64_t u = 0; u < n; u++) {
      float d0 = in[0][u], d1 = in[1][u], d2 = in[2][u], d3 = in[3][u];
      out[0][u] = d0 - d2;
      out[1][u] = d1 + d2;
      out[2][u] = d2 - d1;
      out[3][u] = d1 - d3;
    }
    return;
  }
  for (int64_t u = 0; u < n; u++) {
    float d0 = in[0][u], d1 = in[1][u], d2 = in[2][u], d3 = in[3][u];
    float d4 = in[4][u], d5 = in[5][u];
    out[0][u] = 4.0f * d0 - 5.0f * d2 + d4;
    out[1][u] = (d3 + d4) - 4.0f * (d1 + d2);
    out[2][u] = (d4 - d3) + 4.0f * (d1 - d2);
    out[3][u] = (d4 - d2) + 2.0f * (d3 - d1);
    out[4][u] = (d4 - d2) - 2.0f * (d3 - d1);
    out[5][u] = 4.0f * d1 - 5.0f * d3 + d5;
  }
}

/* out = A^T in: a rows to m rows. */
static void at_rows(int m, const float *const *in, float *const *out,
                    int64_t n) {
  if (m == 2) {
    for (int64_t u = 0; u < n; u++) {
      float m0 = in[0][u], m1 = in[1][u], m2 = in[2][u], m3 = in[3][u];
      out[0][u] = m0 + m1 + m2;
      out[1][u] = m1 - m2 - m3;
    }
    return;
  }
  for (int64_t u = 0; u < n; u++) {
    float m0 = in[0][u], m1 = in[1][u], m2 = in[2][u], m3 = in[3][u];
    float m4 = in[4][u], m5 = in[5][u];
    float p12 = m1 + m2, d12 = m1 - m2, p34 = m3 + m4, d34 = m3 - m4;
    out[0][u] = m0 + p12 + p34;
    out[1][u] = d12 + 2.0f * d34;
    out[2][u] = p12 + 4.0f * p34;
    out[3][u] = d12 + 8.0f * d34 + m5;
  }
}

/* out = A in: m rows to a rows (the adjoint of at_rows). */
static void a_rows(int m, const float *const *in, float *const *out,
                   int64_t n) {
  if (m == 2) {
    for (int64_t u = 0; u < n; u++) {
      float y0 = in[0][u], y1 = in[1][u];
      out[0][u] = y0;
      out[1][u] = y0 + y1;
      out[2][u] = y0 - y1;
      out[3][u] = -y1;
    }
    return;
  }
  for (int64_t u = 0; u < n; u++) {
    float y0 = in[0][u], y1 = in[1][u], y2 = in[2][u], y3 = in[3][u];
    float p02 = y0 + y2, p13 = y1 + y3;
    float q02 = y0 + 4.0f * y2, q13 = 2.0f * y1 + 8.0f * y3;
    out[0][u] = y0;
    out[1][u] = p02 + p13;
    out[2][u] = p02 - p13;
    out[3][u] = q02 + q13;
    out[4][u] = q02 - q13;
    out[5][u] = y3;
  }
}

/* out = B in: a rows to a rows (the adjoint of bt_rows). */
static void b_rows(int m, const float *const *in, float *const *out,
                   int64_t n) {
  if (m == 2) {
    for (int64_t u = 0; u < n; u++) {
      float v0 = in[0][u], v1 = in[1][u], v2 = in[2][u], v3 = in[3][u];
      out[0][u] = v0;
      out[1][u] = v1 - v2 + v3;
      out[2][u] = v1 + v2 - v0;
      out[3][u] = -v3;
    }
    return;
  }
  for (int64_t u = 0; u < n; u++) {
    float v0 = in[0][u], v1 = in[1][u], v2 = in[2][u], v3 = in[3][u];
    float v4 = in[4][u], v5 = in[5][u];
    out[0][u] = 4.0f * v0;
    out[1][u] = 4.0f * (v2 - v1 + v5) + 2.0f * (v4 - v3);
    out[2][u] = -5.0f * v0 - 4.0f * (v1 + v2) - (v3 + v4);
    out[3][u] = (v1 - v2) + 2.0f * (v3 - v4) - 5.0f * v5;
    out[4][u] = v0 + v1 + v2 + v3 + v4;
    out[5][u] = v5;
  }
}

/* out = G in: 3 values to a (the kernel transform), in double. */
static void g_vec(int m, const double *in, double *out) {
  double g0 = in[0], g1 = in[1], g2 = in[2];
  if (m == 2) {
    out[0] = g0;
    out[1] = 0.5 * (g0 + g1 + g2);
    out[2] = 0.5 * (g0 - g1 + g2);
    out[3] = g2;
    return;
  }
  out[0] = g0 / 4.0;
  out[1] = -(g0 + g1 + g2) / 6.0;
  out[2] = -(g0 - g1 + g2) / 6.0;
  out[3] = g0 / 24.0 + g1 / 12.0 + g2 / 6.0;
  out[4] = g0 / 24.0 - g1 / 12.0 + g2 / 6.0;
  out[5] = g2;
}

/* out = G^T in: a values to 3 (the adjoint of g_vec), in double. */
static void gt_vec(int m, const double *in, double *out) {
  if (m == 2) {
    out[0] = in[0] + 0.5 * (in[1] + in[2]);
    out[1] = 0.5 * (in[1] - in[2]);
    out[2] = 0.5 * (in[1] + in[2]) + in[3];
    return;
  }
  out[0] = in[0] / 4.0 - (in[1] + in[2]) / 6.0 + (in[3] + in[4]) / 24.0;
  out[1] = (in[2] - in[1]) / 6.0 + (in[3] - in[4]) / 12.0;
  out[2] = (in[3] + in[4] - in[1] - in[2]) / 6.0 + in[5];
}

/* ---- 2-D transforms over chunks ---- */

/* U[xi][o][c] = (G g G^T)[xi] for every kernel; omp-for over outputs. */
static void transform_weights(const nn_conv2d_geom *g, const plan *p,
                              const float *w, float *u) {
  int a = p->a;
#pragma omp for schedule(static)
  for (int64_t o = 0; o < g->cout; o++)
    for (int64_t c = 0; c < g->cin; c++) {
      const float *k = w + (o * g->cin + c) * 9;
      double col[3], t[3][6], row[3], r[6], gg[6][3];
      for (int j = 0; j < 3; j++) { /* G g: columns of g */
        for (int i = 0; i < 3; i++) col[i] = k[i * 3 + j];
        g_vec(p->m, col, t[j]);
      }
      for (int i = 0; i < a; i++)
        for (int j = 0; j < 3; j++) gg[i][j] = t[j][i];
      float *dst = u + o * g->cin + c;
      for (int i = 0; i < a; i++) { /* (G g) G^T: rows */
        for (int j = 0; j < 3; j++) row[j] = gg[i][j];
        g_vec(p->m, row, r);
        for (int j = 0; j < a; j++) dst[(i * a + j) * p->us] = (float)r[j];
      }
    }
}

/* gw[o][c] += G^T dU[.][o][c] G for every kernel, where dU is the sum of
 * the `groups` partial sums du[k] (k in order, each np * us floats); omp-for
 * over outputs. */
static void weights_gradient(const nn_conv2d_geom *g, const plan *p,
                             const float *du, int groups, float *gw) {
  int a = p->a;
  int64_t dus = p->np * p->us;
#pragma omp for schedule(static)
  for (int64_t o = 0; o < g->cout; o++)
    for (int64_t c = 0; c < g->cin; c++) {
      const float *src = du + o * g->cin + c;
      double col[6], t[6][3], row[6], r[3];
      for (int j = 0; j < a; j++) { /* G^T dU: columns */
        for (int i = 0; i < a; i++) {
          float sum = src[(i * a + j) * p->us];
          for (int k = 1; k < groups; k++) sum += src[k * dus + (i * a + j) * p->us];
          col[i] = sum;
        }
        gt_vec(p->m, col, t[j]);
      }
      float *k = gw + (o * g->cin + c) * 9;
      for (int i = 0; i < 3; i++) { /* (G^T dU) G: rows */
        for (int j = 0; j < a; j++) row[j] = t[j][i];
        gt_vec(p->m, row, r);
        for (int j = 0; j < 3; j++) k[i * 3 + j] += (float)r[j];
      }
    }
}

/* Copies rows y0 .. y0 + a - 1 of the plane xp [h, w], columns -pw .. len -
 * pw - 1, into d[a][len] with zeros outside the plane. */
static void gather_rows(const nn_conv2d_geom *g, const plan *p,
                        const float *xp, int64_t y0, float *d) {
  int64_t len = p->len;
  for (int i = 0; i < p->a; i++) {
    float *row = d + i * len;
    int64_t y = y0 + i;
    memset(row, 0, (size_t)len * sizeof(float));
    if (y < 0 || y >= g->h) continue;
    int64_t lo = g->pw, n = g->w;
    if (lo + n > len) n = len - lo;
    memcpy(row + lo, xp + y * g->w, (size_t)n * sizeof(float));
  }
}

/* Row pointers base + i * stride for i < k. */
static void row_ptrs(float *base, int64_t stride, int k, float **out) {
  for (int i = 0; i < k; i++) out[i] = base + i * stride;
}

/* V[xi][c][t] = (B^T d B)[xi] for the tiles t < tx of one tile row of
 * channel c; d [a][len] holds its input rows (gather_rows), s [a][len] is
 * scratch; v points at V[0][c][first tile of the row]. */
static void input_tile_row(const plan *p, float *d, float *s, float *v) {
  int a = p->a, m = p->m;
  float *din[6] = {0}, *sout[6] = {0}, *vout[6] = {0};
  row_ptrs(d, p->len, a, din);
  row_ptrs(s, p->len, a, sout);
  const float *dc[6] = {0};
  for (int i = 0; i < a; i++) dc[i] = din[i];
  bt_rows(m, dc, sout, p->len);
  float cols[6][64];
  const float *in[6];
  for (int j = 0; j < a; j++) in[j] = cols[j];
  for (int i = 0; i < a; i++) {
    /* the tiles' a-wide windows of row i, m apart, by blocks of 64 */
    for (int64_t t0 = 0; t0 < p->tx; t0 += 64) {
      int64_t nt = p->tx - t0 < 64 ? p->tx - t0 : 64;
      const float *r = s + i * p->len + m * t0;
      for (int j = 0; j < a; j++)
        for (int64_t t = 0; t < nt; t++) cols[j][t] = r[m * t + j];
      row_ptrs(v + (int64_t)(i * a) * p->vs + t0, p->vs, a, vout);
      bt_rows(m, in, vout, nt);
    }
  }
}

/* V[.][c] for input channel c and every tile of rows [r0, r0 + nr); buf
 * is the thread's ROW_BUFS * len scratch. */
static void input_channel(const nn_conv2d_geom *g, const plan *p,
                          const float *x, int64_t r0, int64_t nr, float *v,
                          int64_t c, float *buf) {
  {
    for (int64_t r = r0; r < r0 + nr; r++) {
      int64_t n = r / p->ty, ty = r % p->ty;
      const float *xp = x + (n * g->cin + c) * g->h * g->w;
      gather_rows(g, p, xp, p->m * ty - g->ph, buf);
      input_tile_row(p, buf, buf + p->a * p->len,
                     v + c * p->tc + (r - r0) * p->tx);
    }
  }
}

/* y[., o] for output channel o at the tiles of rows [r0, r0 + nr) from Z:
 * Y = A^T Z A + b; buf as for input_channel. */
static void output_channel(const nn_conv2d_geom *g, const plan *p,
                           const float *z, const float *b, int64_t r0,
                           int64_t nr, float *y, int64_t o, float *buf) {
  int a = p->a, m = p->m;
  {
    float *orow = buf;
    float bias = b ? b[o] : 0.0f;
    for (int64_t r = r0; r < r0 + nr; r++) {
      int64_t n = r / p->ty, ty = r % p->ty;
      for (int64_t t0 = 0; t0 < p->tx; t0 += 64) {
        int64_t nt = p->tx - t0 < 64 ? p->tx - t0 : 64;
        const float *zt = z + o * p->tc + (r - r0) * p->tx + t0;
        float mid[4][6][64], out[4][64];
        const float *in[6];
        float *op[4];
        for (int j = 0; j < a; j++) { /* A^T down column j of the tiles */
          for (int i = 0; i < a; i++) in[i] = zt + (int64_t)(i * a + j) * p->zs;
          for (int i = 0; i < m; i++) op[i] = mid[i][j];
          at_rows(m, in, op, nt);
        }
        for (int i = 0; i < m; i++) { /* then along each output row */
          for (int j = 0; j < a; j++) in[j] = mid[i][j];
          for (int q = 0; q < m; q++) op[q] = out[q];
          at_rows(m, in, op, nt);
          float *dst = orow + i * p->len + m * t0;
          for (int64_t t = 0; t < nt; t++)
            for (int q = 0; q < m; q++) dst[m * t + q] = out[q][t] + bias;
        }
      }
      float *yp = y + (n * g->cout + o) * g->ho * g->wo;
      for (int i = 0; i < m && m * ty + i < g->ho; i++)
        memcpy(yp + (m * ty + i) * g->wo, orow + i * p->len,
               (size_t)g->wo * sizeof(float));
    }
  }
}

/* dZ[.][o] = A dY A^T for output channel o at the tiles of rows [r0, r0 +
 * nr); buf as for input_channel. */
static void grad_output_channel(const nn_conv2d_geom *g, const plan *p,
                                const float *gy, int64_t r0, int64_t nr,
                                float *dz, int64_t o, float *buf) {
  int a = p->a, m = p->m;
  {
    float *grow = buf;
    for (int64_t r = r0; r < r0 + nr; r++) {
      int64_t n = r / p->ty, ty = r % p->ty;
      const float *gp = gy + (n * g->cout + o) * g->ho * g->wo;
      memset(grow, 0, (size_t)(m * p->len) * sizeof(float));
      for (int i = 0; i < m && m * ty + i < g->ho; i++)
        memcpy(grow + i * p->len, gp + (m * ty + i) * g->wo,
               (size_t)g->wo * sizeof(float));
      for (int64_t t0 = 0; t0 < p->tx; t0 += 64) {
        int64_t nt = p->tx - t0 < 64 ? p->tx - t0 : 64;
        float cols[4][4][64], mid[6][4][64];
        const float *in[6];
        float *op[6];
        for (int i = 0; i < m; i++) /* the tiles' columns of each dY row */
          for (int q = 0; q < m; q++)
            for (int64_t t = 0; t < nt; t++)
              cols[q][i][t] = grow[i * p->len + m * (t0 + t) + q];
        for (int q = 0; q < m; q++) { /* A down each column */
          for (int i = 0; i < m; i++) in[i] = cols[q][i];
          for (int k = 0; k < a; k++) op[k] = mid[k][q];
          a_rows(m, in, op, nt);
        }
        float *dzt = dz + o * p->tc + (r - r0) * p->tx + t0;
        for (int k = 0; k < a; k++) { /* then A along each row */
          for (int q = 0; q < m; q++) in[q] = mid[k][q];
          for (int l = 0; l < a; l++) op[l] = dzt + (int64_t)(k * a + l) * p->zs;
          a_rows(m, in, op, nt);
        }
      }
    }
  }
}

/* dx[., c] += B dV B^T at every tile of rows [r0, r0 + nr) for input
 * channel c, tile rows in order; buf as for input_channel. */
static void grad_input_channel(const nn_conv2d_geom *g, const plan *p,
                               const float *dv, int64_t r0, int64_t nr,
                               float *gx, int64_t c, float *buf) {
  int a = p->a, m = p->m;
  int64_t len = p->len;
  {
    float *acc = buf;
    for (int64_t r = r0; r < r0 + nr; r++) {
      int64_t n = r / p->ty, ty = r % p->ty;
      memset(acc, 0, (size_t)(a * len) * sizeof(float));
      for (int64_t t0 = 0; t0 < p->tx; t0 += 64) {
        int64_t nt = p->tx - t0 < 64 ? p->tx - t0 : 64;
        const float *dvt = dv + c * p->tc + (r - r0) * p->tx + t0;
        float mid[6][6][64], out[6][64];
        const float *in[6];
        float *op[6];
        for (int j = 0; j < a; j++) { /* B down column j */
          for (int i = 0; i < a; i++) in[i] = dvt + (int64_t)(i * a + j) * p->vs;
          for (int k = 0; k < a; k++) op[k] = mid[k][j];
          b_rows(m, in, op, nt);
        }
        for (int k = 0; k < a; k++) { /* then along row k, added in place */
          for (int j = 0; j < a; j++) in[j] = mid[k][j];
          for (int l = 0; l < a; l++) op[l] = out[l];
          b_rows(m, in, op, nt);
          float *dst = acc + k * len + m * t0;
          for (int64_t t = 0; t < nt; t++)
            for (int l = 0; l < a; l++) dst[m * t + l] += out[l][t];
        }
      }
      float *xp = gx + (n * g->cin + c) * g->h * g->w;
      int64_t y0 = m * ty - g->ph;
      for (int i = 0; i < a; i++) {
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

/* ---- Kernels ----
 * Two ways to share a call between threads:
 *  - by chunk, when there are at least MIN_CHUNKS chunks of whole samples:
 *    each thread takes whole chunks and runs their transforms and gemms
 *    alone, so the threads meet only at the start and the end (on a loaded
 *    machine every barrier can cost a time slice).  The weight gradient is
 *    then accumulated in GROUPS partial sums, each over a fixed run of
 *    chunks, added in order at the end; chunks hold whole samples, so no two
 *    threads write the same rows of dx;
 *  - together, chunk after chunk: the transforms split by channel and the
 *    gemms by point (few chunks, e.g. VGG's 2x2 layers). */

/* The thread's scratch rows. */
static float *thread_rows(const plan *p, float *rows) {
  return rows + omp_get_thread_num() * ROW_BUFS * p->len;
}

/* The forward pass of the tile rows [r0, r0 + nr) on one thread. */
static void forward_chunk(const nn_conv2d_geom *g, const plan *p,
                          const float *x, const float *u, const float *b,
                          float *y, int64_t r0, int64_t nr, float *v, float *z,
                          float *buf) {
  int64_t nt = nr * p->tx;
  for (int64_t c = 0; c < g->cin; c++) input_channel(g, p, x, r0, nr, v, c, buf);
  for (int xi = 0; xi < p->np; xi++)
    nn_gemm(1, 0, 0, g->cout, nt, g->cin, 1.0f, u + xi * p->us, g->cin,
            v + xi * p->vs, p->tc, 0.0f, z + xi * p->zs, p->tc);
  for (int64_t o = 0; o < g->cout; o++) output_channel(g, p, z, b, r0, nr, y, o, buf);
}

void nn_winograd_forward(int nthreads, const nn_conv2d_geom *g, const float *x,
                         const float *w, const float *b, float *y, float *ws) {
  plan p;
  make_plan(g, &p);
  if (p.rows == 0) return;
  int alone = p.alone;
  int64_t nchunks = (p.rows + p.rc - 1) / p.rc;
  int64_t slot = p.np * (p.vs + p.zs);
  float *u = ws;
  float *chunks = u + p.np * p.us;
  float *rows = chunks + (alone ? nthreads : 1) * slot;
#pragma omp parallel num_threads(nthreads)
  {
    transform_weights(g, &p, w, u);
    float *buf = thread_rows(&p, rows);
    if (alone) {
      float *v = chunks + omp_get_thread_num() * slot, *z = v + p.np * p.vs;
#pragma omp for schedule(dynamic, 1)
      for (int64_t k = 0; k < nchunks; k++) {
        int64_t r0 = k * p.rc, nr = p.rows - r0 < p.rc ? p.rows - r0 : p.rc;
        forward_chunk(g, &p, x, u, b, y, r0, nr, v, z, buf);
      }
    } else {
      float *v = chunks, *z = v + p.np * p.vs;
      for (int64_t r0 = 0; r0 < p.rows; r0 += p.rc) {
        int64_t nr = p.rows - r0 < p.rc ? p.rows - r0 : p.rc, nt = nr * p.tx;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < g->cin; c++)
          input_channel(g, &p, x, r0, nr, v, c, buf);
#pragma omp for schedule(static)
        for (int xi = 0; xi < p.np; xi++)
          nn_gemm(1, 0, 0, g->cout, nt, g->cin, 1.0f, u + xi * p.us, g->cin,
                  v + xi * p.vs, p.tc, 0.0f, z + xi * p.zs, p.tc);
#pragma omp for schedule(static)
        for (int64_t o = 0; o < g->cout; o++)
          output_channel(g, &p, z, b, r0, nr, y, o, buf);
      }
    }
  }
}

/* The backward pass of the tile rows [r0, r0 + nr) on one thread: dU
 * accumulates the weight gradient (when gw), gx the input gradient (when
 * gx; zeroed beforehand). */
static void backward_chunk(const nn_conv2d_geom *g, const plan *p,
                           const float *x, const float *u, const float *gy,
                           float *gx, float *du, int64_t r0, int64_t nr,
                           float *v, float *dz, float *dv, float *buf) {
  int64_t nt = nr * p->tx;
  for (int64_t o = 0; o < g->cout; o++)
    grad_output_channel(g, p, gy, r0, nr, dz, o, buf);
  if (du)
    for (int64_t c = 0; c < g->cin; c++) input_channel(g, p, x, r0, nr, v, c, buf);
  for (int xi = 0; xi < p->np; xi++) {
    const float *dzx = dz + xi * p->zs;
    if (du)
      nn_gemm(1, 0, 1, g->cout, g->cin, nt, 1.0f, dzx, p->tc, v + xi * p->vs,
              p->tc, 1.0f, du + xi * p->us, g->cin);
    if (gx)
      nn_gemm(1, 1, 0, g->cin, nt, g->cout, 1.0f, u + xi * p->us, g->cin, dzx,
              p->tc, 0.0f, dv + xi * p->vs, p->tc);
  }
  if (gx)
    for (int64_t c = 0; c < g->cin; c++)
      grad_input_channel(g, p, dv, r0, nr, gx, c, buf);
}

void nn_winograd_backward(int nthreads, const nn_conv2d_geom *g,
                          const float *x, const float *w, const float *gy,
                          float *gx, float *gw, float *ws) {
  plan p;
  make_plan(g, &p);
  if (p.rows == 0) return;
  int alone = p.alone, groups = p.groups;
  int64_t nchunks = (p.rows + p.rc - 1) / p.rc;
  int64_t plane = g->cout * g->cin, dus = p.np * p.us;
  int64_t slot = p.np * (2 * p.vs + p.zs);
  float *u = ws, *du = u + dus;
  float *chunks = du + groups * dus;
  float *rows = chunks + (alone ? nthreads : 1) * slot;
  int64_t planes = g->n * g->cin, hw = g->h * g->w;
#pragma omp parallel num_threads(nthreads)
  {
    float *buf = thread_rows(&p, rows);
    if (gx) {
      transform_weights(g, &p, w, u);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < planes; i++)
        memset(gx + i * hw, 0, (size_t)hw * sizeof(float));
    }
    if (gw) {
#pragma omp for schedule(static) collapse(2)
      for (int k = 0; k < groups; k++)
        for (int xi = 0; xi < p.np; xi++)
          memset(du + k * dus + xi * p.us, 0, (size_t)plane * sizeof(float));
    }
    if (alone) {
      float *v = chunks + omp_get_thread_num() * slot;
      float *dz = v + p.np * p.vs, *dv = dz + p.np * p.zs;
#pragma omp for schedule(dynamic, 1)
      for (int k = 0; k < groups; k++) {
        int64_t c0 = nchunks * k / groups, c1 = nchunks * (k + 1) / groups;
        for (int64_t c = c0; c < c1; c++) {
          int64_t r0 = c * p.rc, nr = p.rows - r0 < p.rc ? p.rows - r0 : p.rc;
          backward_chunk(g, &p, x, u, gy, gx, gw ? du + k * dus : NULL, r0, nr,
                         v, dz, dv, buf);
        }
      }
    } else {
      float *v = chunks, *dz = v + p.np * p.vs, *dv = dz + p.np * p.zs;
      for (int64_t r0 = 0; r0 < p.rows; r0 += p.rc) {
        int64_t nr = p.rows - r0 < p.rc ? p.rows - r0 : p.rc, nt = nr * p.tx;
#pragma omp for schedule(static)
        for (int64_t o = 0; o < g->cout; o++)
          grad_output_channel(g, &p, gy, r0, nr, dz, o, buf);
        if (gw) {
#pragma omp for schedule(static)
          for (int64_t c = 0; c < g->cin; c++)
            input_channel(g, &p, x, r0, nr, v, c, buf);
        }
#pragma omp for schedule(static)
        for (int xi = 0; xi < p.np; xi++) {
          const float *dzx = dz + xi * p.zs;
          if (gw)
            nn_gemm(1, 0, 1, g->cout, g->cin, nt, 1.0f, dzx, p.tc,
                    v + xi * p.vs, p.tc, 1.0f, du + xi * p.us, g->cin);
          if (gx)
            nn_gemm(1, 1, 0, g->cin, nt, g->cout, 1.0f, u + xi * p.us, g->cin,
                    dzx, p.tc, 0.0f, dv + xi * p.vs, p.tc);
        }
        if (gx) {
#pragma omp for schedule(static)
          for (int64_t c = 0; c < g->cin; c++)
            grad_input_channel(g, &p, dv, r0, nr, gx, c, buf);
        }
      }
    }
    if (gw) weights_gradient(g, &p, du, groups, gw);
  }
}
