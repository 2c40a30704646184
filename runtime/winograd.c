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
 * Every 2-D transform is a 1-D transform applied down the columns and then
 * along the rows, each over one channel and every tile of a chunk at once
 * (which vectorises).  Tiles are numbered row-major over (sample, tile row,
 * tile column) and processed in chunks of whole tile rows; how threads share
 * them is described at the kernels.  Each gemm runs on one thread and every
 * sum has an order fixed by the shapes, so no result depends on how many
 * threads there are.
 *
 * U and U^T are the left operands of nn_pgemm (pgemm.h), packed by the
 * weight transform itself: U for the forward products, U^T for the input
 * gradient's.  The weight gradient's products dZ V^T stay with OpenBLAS.
 *
 * Workspace layout (floats): U [P][packed] | dU [groups][P][cout][cin]
 * (backward with gw) | per chunk buffer (one per thread, or one shared):
 * V [P][cin][tc], Z or dZ [P][cout][tc], dV [P][cin][tc] (backward) |
 * per-thread scratch [nthreads][scr], where P is the number of points
 * (a * a), each point's matrix padded by SKEW. */
#include "winograd.h"

#include <omp.h>
#include <string.h>

#include "gemm.h"
#include "pgemm.h"

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

/* At most this many (input, output) channel pairs: the transformed weights
 * and their gradient take 3 * 16 floats per pair (about 50 MiB at 512 x 512
 * channels), which would outgrow what the speed is worth beyond. */
#define MAX_PAIRS ((int64_t)512 * 512)

/* Smaller outputs (VGG's 2x2 layers: one tile per sample, gemms 64 tiles
 * wide) ran 20% slower than im2col, whose one gemm is deep. */
#define MIN_SIZE 4

/* F(4x4) is used when the output is at least BIG_MIN_SIZE wide and high (on
 * smaller ones its 6x6 tiles waste too much) and the channel counts are at
 * most BIG_MAX_CHANNELS (its transformed weights, 36 * cout * cin floats
 * rewritten on every call, grow with them).  Measured on VGG: 24-30% faster
 * than F(2x2) on the 512-channel 8x8 layers.  With transformed weights kept
 * by the caller (eval mode), from PREPARED_BIG_MIN_SIZE: one 6x6 tile per
 * 4x4 output does 44% fewer multiply-adds than four 4x4 ones, and without
 * the weight transform per call that wins (VGG's 512-channel 4x4 layers,
 * batch 64: 15.0-15.6 -> 10.9-12.0 ms; 35-65% slower when transforming). */
#define BIG_MIN_SIZE 8
#define PREPARED_BIG_MIN_SIZE 4
#define BIG_MAX_CHANNELS 512

/* Above this many floats for U and the weight gradient's partial sums, the
 * backward pass runs in two sweeps so that they share memory (32 MiB: VGG's
 * 512-channel layers, whose 34-75 MiB made the training peak 18-40 MiB
 * higher).  The second sweep transforms dY again. */
#define SPLIT_FLOATS ((int64_t)1 << 23)

/* Layers whose U, and the two partial sums of the weight gradient threads
 * taking whole chunks would need, pass this many floats (64 MiB) share one
 * of each between the threads instead (see make_plan). */
#define HEAVY_FLOATS ((int64_t)1 << 24)

/* Floats added to each point's stride (one cache line): with power-of-two
 * strides the streams of a transform fall into the same cache sets, which
 * made the transforms several times slower. */
#define SKEW 16

/* Partial sums of the weight gradient when threads share a call by chunk
 * (see the kernels). */
#define GROUPS 2
#define MIN_CHUNKS 4


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
  int ng;             /* runs of samples that chunks never straddle */
  int64_t grow[GROUPS + 1]; /* first tile row of each run */
  int64_t gch[GROUPS + 1];  /* first chunk of each run */
  int64_t nchunks;
  int64_t scr;        /* floats of each thread's transform scratch */
  int split;          /* dU reuses U's memory (backward in two sweeps) */
} plan;

int nn_winograd_tile(const nn_conv2d_geom *g, int prepared) {
  int64_t least = prepared ? PREPARED_BIG_MIN_SIZE : BIG_MIN_SIZE;
  int big = g->ho >= least && g->wo >= least &&
            g->cin <= BIG_MAX_CHANNELS && g->cout <= BIG_MAX_CHANNELS;
  return big ? 4 : 2;
}

/* Fills p for g, with transformed weights given by the caller (prepared)
 * or not: the tile size, the chunks of the batch's tile rows and how threads
 * share them, the point strides and the scratch each thread needs. */
static void make_plan(const nn_conv2d_geom *g, int prepared, plan *p) {
  p->m = nn_winograd_tile(g, prepared);
  p->a = p->m + 2;
  p->np = p->a * p->a;
  p->tx = (g->wo + p->m - 1) / p->m;
  p->ty = (g->ho + p->m - 1) / p->m;
  p->rows = g->n * p->ty;
  p->len = p->m * p->tx + 2;
  int64_t ch = g->cin > g->cout ? g->cin : g->cout;
  int64_t want = CHUNK_FLOATS / (2 * p->np * ch);
  if (want < MIN_TILES) want = MIN_TILES;
  /* Each chunk's gemms read all of U (np * cout * cin floats): with wide
   * layers, fewer and wider chunks read it fewer times (measured 10% faster
   * on VGG's 512-channel 4x4 layers, when OpenBLAS also copied it per
   * chunk). */
  if (want < ch / 2) want = ch / 2;
  /* Layers whose transformed weights are large (VGG's 512-channel 8x8
   * layers with F(4x4): 36 MiB) keep one copy of U and of the weight
   * gradient, shared by the threads, and small chunks: the chunk buffers
   * would otherwise add 57 MiB to the training peak. */
  /* U's stride: the larger of its two packings (forward, input gradient) */
  int64_t pu = nn_pgemm_packed_size(g->cout, g->cin);
  int64_t pt = nn_pgemm_packed_size(g->cin, g->cout);
  p->us = (pu > pt ? pu : pt) + SKEW;
  int heavy = 3 * p->np * p->us > HEAVY_FLOATS;
  if (heavy) want = MIN_TILES;
  int64_t per = p->tx * p->ty; /* tiles per sample */
  if (per <= 2 * want) { /* chunks of whole samples, at least want tiles
                           (rounding down, the Fashion-MNIST CNN's 28x28
                           layer got chunks of 49 tiles: 10% slower) */
    int64_t k = (want + per - 1) / per;
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
  p->vs = g->cin * p->tc + SKEW;
  p->zs = g->cout * p->tc + SKEW;
  /* Chunks are cut within GROUPS runs of whole samples, so that threads
   * working on different runs never write the same rows of dx.  Threads
   * that share each chunk (fewer than MIN_CHUNKS, or heavy) need no runs:
   * then one run, so that a chunk can span the batch (VGG's 512-channel 4x4
   * layers: one chunk of 256 tiles instead of two of 128, which packed U
   * twice per call; 12% faster). */
  for (int ng = g->n >= GROUPS ? GROUPS : 1; ng >= 1; ng--) {
    p->ng = ng;
    p->gch[0] = 0;
    for (int k = 0; k <= p->ng; k++) p->grow[k] = g->n * k / p->ng * p->ty;
    for (int k = 0; k < p->ng; k++)
      p->gch[k + 1] =
          p->gch[k] + (p->grow[k + 1] - p->grow[k] + p->rc - 1) / p->rc;
    p->nchunks = p->gch[p->ng];
    if (p->nchunks >= MIN_CHUNKS && !heavy) break;
  }
  /* By whole chunks when there are MIN_CHUNKS of them: a property of the
   * shapes alone, since it decides how the weight gradient is summed. */
  p->alone = p->nchunks >= MIN_CHUNKS && !heavy;
  p->groups = p->alone ? p->ng : 1;
  /* the largest of the transforms' needs (see input_channel etc.) */
  int64_t a = p->a, m = p->m, tc = p->tc;
  int64_t need[4] = {2 * a * p->rc * p->len + a * tc, m * a * tc + m * tc,
                     m * m * tc + a * m * tc, a * a * tc + a * tc};
  p->scr = 0;
  for (int i = 0; i < 4; i++)
    if (need[i] > p->scr) p->scr = need[i];
  p->scr = (p->scr + 15) & ~(int64_t)15;
  p->split = (1 + p->groups) * p->np * p->us > SPLIT_FLOATS;
}

/* The tile rows [*r0, *r0 + *nr) of chunk k. */
static void chunk_rows(const plan *p, int64_t k, int64_t *r0, int64_t *nr) {
  int j = 0;
  while (j + 1 < p->ng && k >= p->gch[j + 1]) j++;
  *r0 = p->grow[j] + (k - p->gch[j]) * p->rc;
  *nr = p->grow[j + 1] - *r0 < p->rc ? p->grow[j + 1] - *r0 : p->rc;
}

int nn_winograd_suits(const nn_conv2d_geom *g) {
  return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 &&
         g->ph <= 2 && g->pw <= 2 && g->ho >= MIN_SIZE && g->wo >= MIN_SIZE &&
         g->cin >= MIN_CHANNELS && g->cout >= MIN_CHANNELS &&
         g->cin * g->cout <= MAX_PAIRS;
}

int64_t nn_winograd_workspace_size(const nn_conv2d_geom *g, int nthreads) {
  plan p, q;
  make_plan(g, 0, &p);
  int64_t t = nthreads < 1 ? 1 : nthreads;
  int64_t chunks = (p.alone ? t : 1) * (2 * p.vs + p.zs);
  int64_t ws = p.split ? p.groups : 1 + p.groups;
  int64_t need = p.np * (ws * p.us + chunks) + t * p.scr;
  /* the forward from given weights: its chunks and scratch only */
  make_plan(g, 1, &q);
  int64_t given = q.np * (q.alone ? t : 1) * (q.vs + q.zs) + t * q.scr;
  return given > need ? given : need;
}

/* The 1-D transforms are compiled twice, for AVX2 and for the baseline
 * x86-64, and the loader picks one for the CPU it runs on (GCC's
 * target_clones; elsewhere they are compiled once). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SIMD_CLONES
#endif

/* ---- 1-D transforms ----
 * Each maps k rows (or values) to rows: out[i][u] for u < n, from in[j][u]
 * (in and out are arrays of row pointers, strides allowed through the
 * pointers); each dispatches to a kernel per m that takes its rows as
 * parameters, which GCC vectorises (with restrict output rows; it did not
 * when they were read from the arrays). */

/* out = B^T in: a rows to a rows. */
SIMD_CLONES static void bt2(const float *i0, const float *i1, const float *i2,
                            const float *i3, float *restrict o0,
                            float *restrict o1, float *restrict o2,
                            float *restrict o3, int64_t n) {
  for (int64_t u = 0; u < n; u++) {
    float d0 = i0[u], d1 = i1[u], d2 = i2[u], d3 = i3[u];
    o0[u] = d0 - d2;
    o1[u] = d1 + d2;
    o2[u] = d2 - d1;
    o3[u] = d1 - d3;
  }
}

SIMD_CLONES static void bt4(const float *i0, const float *i1, const float *i2,
                            const float *i3, const float *i4, const float *i5,
                            float *restrict o0, float *restrict o1,
                            float *restrict o2, float *restrict o3,
                            float *restrict o4, float *restrict o5, int64_t n) {
  for (int64_t u = 0; u < n; u++) {
    float d0 = i0[u], d1 = i1[u], d2 = i2[u], d3 = i3[u];
    float d4 = i4[u], d5 = i5[u];
    o0[u] = 4.0f * d0 - 5.0f * d2 + d4;
    o1[u] = (d3 + d4) - 4.0f * (d1 + d2);
    o2[u] = (d4 - d3) + 4.0f * (d1 - d2);
    o3[u] = (d4 - d2) + 2.0f * (d3 - d1);
    o4[u] = (d4 - d2) - 2.0f * (d3 - d1);
    o5[u] = 4.0f * d1 - 5.0f * d3 + d5;
  }
}

static void bt_rows(int m, const float *const *in, float *const *out,
                    int64_t n) {
  if (m == 2)
    bt2(in[0], in[1], in[2], in[3], out[0], out[1], out[2], out[3], n);
  else
    bt4(in[0],
        in[1],
        in[2],
        in[3],
        in[4],
        in[5],
        out[0],
        out[1],
        out[2],
        out[3],
        out[4],
        out[5],
        n);
}

/* out = A^T in: a rows to m rows. */
SIMD_CLONES static void at2(const float *i0, const float *i1, const float *i2,
                            const float *i3, float *restrict o0,
                            float *restrict o1, int64_t n) {
  for (int64_t u = 0; u < n; u++) {
    float m0 = i0[u], m1 = i1[u], m2 = i2[u], m3 = i3[u];
    o0[u] = m0 + m1 + m2;
    o1[u] = m1 - m2 - m3;
  }
}

SIMD_CLONES static void at4(const float *i0, const float *i1, const float *i2,
                            const float *i3, const float *i4, const float *i5,
                            float *restrict o0, float *restrict o1,
                            float *restrict o2, float *restrict o3, int64_t n) {
  for (int64_t u = 0; u < n; u++) {
    float m0 = i0[u], m1 = i1[u], m2 = i2[u], m3 = i3[u];
    float m4 = i4[u], m5 = i5[u];
    float p12 = m1 + m2, d12 = m1 - m2, p34 = m3 + m4, d34 = m3 - m4;
    o0[u] = m0 + p12 + p34;
    o1[u] = d12 + 2.0f * d34;
    o2[u] = p12 + 4.0f * p34;
    o3[u] = d12 + 8.0f * d34 + m5;
  }
}

static void at_rows(int m, const float *const *in, float *const *out,
                    int64_t n) {
  if (m == 2)
    at2(in[0], in[1], in[2], in[3], out[0], out[1], n);
  else
    at4(in[0],
        in[1],
        in[2],
        in[3],
        in[4],
        in[5],
        out[0],
        out[1],
        out[2],
        out[3],
        n);
}

/* out = A in: m rows to a rows (the adjoint of at_rows). */
SIMD_CLONES static void a2(const float *i0, const float *i1, float *restrict o0,
                           float *restrict o1, float *restrict o2,
                           float *restrict o3, int64_t n) {
  for (int64_t u = 0; u < n; u++) {
    float y0 = i0[u], y1 = i1[u];
    o0[u] = y0;
    o1[u] = y0 + y1;
    o2[u] = y0 - y1;
    o3[u] = -y1;
  }
}

SIMD_CLONES static void a4(const float *i0, const float *i1, const float *i2,
                           const float *i3, float *restrict o0,
                           float *restrict o1, float *restrict o2,
                           float *restrict o3, float *restrict o4,
                           float *restrict o5, int64_t n) {
  for (int64_t u = 0; u < n; u++) {
    float y0 = i0[u], y1 = i1[u], y2 = i2[u], y3 = i3[u];
    float p02 = y0 + y2, p13 = y1 + y3;
    float q02 = y0 + 4.0f * y2, q13 = 2.0f * y1 + 8.0f * y3;
    o0[u] = y0;
    o1[u] = p02 + p13;
    o2[u] = p02 - p13;
    o3[u] = q02 + q13;
    o4[u] = q02 - q13;
    o5[u] = y3;
  }
}

static void a_rows(int m, const float *const *in, float *const *out,
                    int64_t n) {
  if (m == 2)
    a2(in[0], in[1], out[0], out[1], out[2], out[3], n);
  else
    a4(in[0],
       in[1],
       in[2],
       in[3],
       out[0],
       out[1],
       out[2],
       out[3],
       out[4],
       out[5],
       n);
}

/* out = B in: a rows to a rows (the adjoint of bt_rows). */
SIMD_CLONES static void b2(const float *i0, const float *i1, const float *i2,
                           const float *i3, float *restrict o0,
                           float *restrict o1, float *restrict o2,
                           float *restrict o3, int64_t n) {
  for (int64_t u = 0; u < n; u++) {
    float v0 = i0[u], v1 = i1[u], v2 = i2[u], v3 = i3[u];
    o0[u] = v0;
    o1[u] = v1 - v2 + v3;
    o2[u] = v1 + v2 - v0;
    o3[u] = -v3;
  }
}

SIMD_CLONES static void b4(const float *i0, const float *i1, const float *i2,
                           const float *i3, const float *i4, const float *i5,
                           float *restrict o0, float *restrict o1,
                           float *restrict o2, float *restrict o3,
                           float *restrict o4, float *restrict o5, int64_t n) {
  for (int64_t u = 0; u < n; u++) {
    float v0 = i0[u], v1 = i1[u], v2 = i2[u], v3 = i3[u];
    float v4 = i4[u], v5 = i5[u];
    o0[u] = 4.0f * v0;
    o1[u] = 4.0f * (v2 - v1 + v5) + 2.0f * (v4 - v3);
    o2[u] = -5.0f * v0 - 4.0f * (v1 + v2) - (v3 + v4);
    o3[u] = (v1 - v2) + 2.0f * (v3 - v4) - 5.0f * v5;
    o4[u] = v0 + v1 + v2 + v3 + v4;
    o5[u] = v5;
  }
}

static void b_rows(int m, const float *const *in, float *const *out,
                    int64_t n) {
  if (m == 2)
    b2(in[0], in[1], in[2], in[3], out[0], out[1], out[2], out[3], n);
  else
    b4(in[0],
       in[1],
       in[2],
       in[3],
       in[4],
       in[5],
       out[0],
       out[1],
       out[2],
       out[3],
       out[4],
       out[5],
       n);
}

/* ---- 2-D transforms over chunks ---- */

/* G's fractions for F(4x4). */
#define K6 (1.0f / 6.0f)
#define K12 (1.0f / 12.0f)
#define K24 (1.0f / 24.0f)

/* u[i][l] = (G k G^T)[i][l] for 8 kernels side by side (k[t][lane], t the
 * 3x3 tap); the lane loops vectorise. */
static inline void kernel_transform8(int m, float k[9][8],
                                     float u[6][6][8]) {
  float gk[6][3][8]; /* G k: a x 3 */
  for (int j = 0; j < 3; j++)
    for (int q = 0; q < 8; q++) {
      float g0 = k[j][q], g1 = k[3 + j][q], g2 = k[6 + j][q];
      if (m == 2) {
        gk[0][j][q] = g0;
        gk[1][j][q] = 0.5f * (g0 + g1 + g2);
        gk[2][j][q] = 0.5f * (g0 - g1 + g2);
        gk[3][j][q] = g2;
      } else {
        gk[0][j][q] = g0 * 0.25f;
        gk[1][j][q] = -(g0 + g1 + g2) * (1.0f / 6.0f);
        gk[2][j][q] = -(g0 - g1 + g2) * (1.0f / 6.0f);
        gk[3][j][q] = g0 * K24 + g1 * K12 + g2 * K6;
        gk[4][j][q] = g0 * K24 - g1 * K12 + g2 * K6;
        gk[5][j][q] = g2;
      }
    }
  for (int i = 0; i < m + 2; i++) /* (G k) G^T */
    for (int q = 0; q < 8; q++) {
      float g0 = gk[i][0][q], g1 = gk[i][1][q], g2 = gk[i][2][q];
      if (m == 2) {
        u[i][0][q] = g0;
        u[i][1][q] = 0.5f * (g0 + g1 + g2);
        u[i][2][q] = 0.5f * (g0 - g1 + g2);
        u[i][3][q] = g2;
      } else {
        u[i][0][q] = g0 * 0.25f;
        u[i][1][q] = -(g0 + g1 + g2) * (1.0f / 6.0f);
        u[i][2][q] = -(g0 - g1 + g2) * (1.0f / 6.0f);
        u[i][3][q] = g0 * K24 + g1 * K12 + g2 * K6;
        u[i][4][q] = g0 * K24 - g1 * K12 + g2 * K6;
        u[i][5][q] = g2;
      }
    }
}

/* U[xi] = (G g G^T)[xi] for every kernel, packed for nn_pgemm: as the
 * left operand of the forward product (rows o, depth c) or, when trans, of
 * the input gradient's (U^T: rows c, depth o); rows past the last are
 * zeroed.  8 rows at a time, which with panels of 8 rows are 8 contiguous
 * floats per point; omp-for over (block of rows, depth) pairs. */
static void transform_weights(const nn_conv2d_geom *g, const plan *p,
                              const float *w, int trans, float *u) {
  int a = p->a, mr = nn_pgemm_mr();
  int64_t M = trans ? g->cin : g->cout, K = trans ? g->cout : g->cin;
  int64_t padded = (M + mr - 1) / mr * mr, blocks = (padded + 7) / 8;
#pragma omp for schedule(static)
  for (int64_t bk = 0; bk < blocks * K; bk++) {
    int64_t r0 = bk / K * 8, k = bk % K;
    int nq = padded - r0 < 8 ? (int)(padded - r0) : 8;
    float ker[9][8], t[6][6][8];
    for (int q = 0; q < 8; q++) {
      int64_t o = trans ? k : r0 + q, c = trans ? r0 + q : k;
      for (int j = 0; j < 9; j++)
        ker[j][q] = r0 + q < M ? w[(o * g->cin + c) * 9 + j] : 0.0f;
    }
    /* U^T's rows are input channels: the next kernels in w lie a whole
     * output channel further on (the loads missed the cache; U's writes
     * stay in order) */
    if (trans && k + 4 < K)
      for (int l = 0; l < 5; l++)
        __builtin_prefetch(w + ((k + 4) * g->cin + r0) * 9 + 16 * l);
    kernel_transform8(p->m, ker, t);
    int64_t at[8];
    for (int q = 0; q < nq; q++) at[q] = nn_pgemm_index(mr, K, r0 + q, k);
    if (nq == 8 && at[7] == at[0] + 7) /* one panel: 8 floats in a row */
      for (int i = 0; i < a * a; i++)
        memcpy(u + i * p->us + at[0], t[i / a][i % a], 8 * sizeof(float));
    else
      for (int i = 0; i < a * a; i++)
        for (int q = 0; q < nq; q++)
          u[i * p->us + at[q]] = t[i / a][i % a][q];
  }
}

/* out[j][q] = (G^T in)[j] for 8 lanes q: a values to 3 (the adjoint of the
 * kernel transform), in double, by multiplications with the fractions'
 * reciprocals (divisions, one lane at a time, made this and
 * weights_gradient 4% of a VGG16 training step). */
static void gt8(int m, double in[6][8], double out[3][8]) {
  if (m == 2) {
    for (int q = 0; q < 8; q++) {
      double s = 0.5 * (in[1][q] + in[2][q]);
      out[0][q] = in[0][q] + s;
      out[1][q] = 0.5 * (in[1][q] - in[2][q]);
      out[2][q] = s + in[3][q];
    }
    return;
  }
  const double r6 = 1.0 / 6.0, r12 = 1.0 / 12.0, r24 = 1.0 / 24.0;
  for (int q = 0; q < 8; q++) {
    double s12 = in[1][q] + in[2][q], s34 = in[3][q] + in[4][q];
    out[0][q] = 0.25 * in[0][q] - r6 * s12 + r24 * s34;
    out[1][q] = r6 * (in[2][q] - in[1][q]) + r12 * (in[3][q] - in[4][q]);
    out[2][q] = r6 * (s34 - s12) + in[5][q];
  }
}

/* gw[o][c] += G^T dU[.][o][c] G for every kernel, where dU is the sum of
 * the `groups` partial sums du[k] (k in order, each np * us floats), 8
 * input channels at a time so that each point's row is read 8 floats at
 * once; omp-for over outputs. */
static void weights_gradient(const nn_conv2d_geom *g, const plan *p,
                             const float *du, int groups, float *gw) {
  int a = p->a;
  int64_t dus = p->np * p->us;
#pragma omp for schedule(static)
  for (int64_t o = 0; o < g->cout; o++)
    for (int64_t c0 = 0; c0 < g->cin; c0 += 8) {
      int nc = g->cin - c0 < 8 ? (int)(g->cin - c0) : 8;
      const float *src = du + o * g->cin + c0;
      double col[6][8], t[6][3][8], row[6][8], r[3][8];
      /* the loads of the np streams missed the cache (two thirds of this
       * loop's time, and it scaled 1.3x on 2 threads): fetch 4 lines
       * ahead, once per line */
      if (c0 % 16 == 0)
        for (int k = 0; k < groups; k++)
          for (int i = 0; i < p->np; i++)
            __builtin_prefetch(src + k * dus + i * p->us + 64);
      for (int j = 0; j < a; j++) { /* G^T dU: columns */
        for (int i = 0; i < a; i++) {
          const float *pt = src + (i * a + j) * p->us;
          float sum[8];
          for (int q = 0; q < 8; q++) sum[q] = q < nc ? pt[q] : 0.0f;
          for (int k = 1; k < groups; k++)
            for (int q = 0; q < nc; q++) sum[q] += pt[k * dus + q];
          for (int q = 0; q < 8; q++) col[i][q] = sum[q];
        }
        gt8(p->m, col, t[j]);
      }
      for (int i = 0; i < 3; i++) { /* (G^T dU) G: rows */
        for (int j = 0; j < a; j++)
          for (int q = 0; q < 8; q++) row[j][q] = t[j][i][q];
        gt8(p->m, row, r);
        for (int q = 0; q < nc; q++) {
          float *k = gw + (o * g->cin + c0 + q) * 9;
          for (int j = 0; j < 3; j++) k[i * 3 + j] += (float)r[j][q];
        }
      }
    }
}

/* The transforms below work on one channel and a whole chunk of tiles at
 * once, so that the 1-D transforms run over vectors of every tile of the
 * chunk (rows of a few tiles each left most of their time in loop
 * overhead).  Each gets the thread's scratch, p->scr floats. */

/* cols[l * stride + t] = row[m t + l] for the a = m + 2 columns l of the
 * windows of tx tiles spaced m apart along row (row has m * tx + 2
 * floats). */
static void deinterleave(int m, const float *row, int64_t tx, float *cols,
                         int64_t stride) {
  if (m == 2) {
    for (int64_t t = 0; t < tx; t++) {
      const float *w = row + 2 * t;
      cols[t] = w[0], cols[stride + t] = w[1];
      cols[2 * stride + t] = w[2], cols[3 * stride + t] = w[3];
    }
    return;
  }
  for (int64_t t = 0; t < tx; t++) {
    const float *w = row + 4 * t;
    cols[t] = w[0], cols[stride + t] = w[1], cols[2 * stride + t] = w[2];
    cols[3 * stride + t] = w[3], cols[4 * stride + t] = w[4];
    cols[5 * stride + t] = w[5];
  }
}

/* dst[m t + l] = src[l * stride + t] + bias for t < tx, l < m, for the
 * columns m t + l < w (the last tile may stick out). */
static void interleave(int m, const float *src, int64_t stride, int64_t tx,
                       int64_t w, float bias, float *dst) {
  int64_t full = w / m < tx ? w / m : tx;
  if (m == 2)
    for (int64_t t = 0; t < full; t++) {
      dst[2 * t] = src[t] + bias;
      dst[2 * t + 1] = src[stride + t] + bias;
    }
  else
    for (int64_t t = 0; t < full; t++) {
      dst[4 * t] = src[t] + bias;
      dst[4 * t + 1] = src[stride + t] + bias;
      dst[4 * t + 2] = src[2 * stride + t] + bias;
      dst[4 * t + 3] = src[3 * stride + t] + bias;
    }
  for (int64_t t = full; t < tx; t++)
    for (int l = 0; l < m && m * t + l < w; l++)
      dst[m * t + l] = src[l * stride + t] + bias;
}

/* V[.][c] for input channel c and every tile of rows [r0, r0 + nr). */
static void input_channel(const nn_conv2d_geom *g, const plan *p,
                          const float *x, int64_t r0, int64_t nr, float *v,
                          int64_t c, float *buf) {
  int a = p->a, m = p->m;
  int64_t len = p->len, span = nr * len, nt = nr * p->tx;
  float *d = buf, *s = d + a * span, *cols = s + a * span;
  /* d[i][r][u]: row m ty - ph + i of each tile row r, columns from -pw */
  for (int64_t r = 0; r < nr; r++) {
    int64_t n = (r0 + r) / p->ty, ty = (r0 + r) % p->ty;
    const float *xp = x + (n * g->cin + c) * g->h * g->w;
    /* the next channel's rows, for the next call: planes of small images
     * lie a whole sample apart, and their first reads missed the cache
     * (a fifth of this function's time on VGG16) */
    if (c + 1 < g->cin)
      for (int i = 0; i < a; i++) {
        int64_t y = m * ty - g->ph + i;
        if (y < 0 || y >= g->h) continue;
        for (int64_t u = 0; u < g->w; u += 16)
          __builtin_prefetch(xp + g->h * g->w + y * g->w + u);
      }
    for (int i = 0; i < a; i++) {
      float *row = d + i * span + r * len;
      int64_t y = m * ty - g->ph + i;
      int64_t lo = g->pw, cnt = g->w;
      if (lo + cnt > len) cnt = len - lo;
      if (len <= 16) { /* short rows (VGG's 4x4 and 8x8 inputs): a libc
                          call per row cost 8% of a 512-channel 4x4 layer */
        int64_t hi = y < 0 || y >= g->h ? 0 : lo + cnt;
        const float *src = hi ? xp + y * g->w : xp;
        for (int64_t u = 0; u < len; u++)
          row[u] = u >= lo && u < hi ? src[u - lo] : 0.0f;
        continue;
      }
      memset(row, 0, (size_t)len * sizeof(float));
      if (y < 0 || y >= g->h) continue;
      memcpy(row + lo, xp + y * g->w, (size_t)cnt * sizeof(float));
    }
  }
  const float *in[6] = {0};
  float *out[6] = {0};
  for (int i = 0; i < a; i++) in[i] = d + i * span, out[i] = s + i * span;
  bt_rows(m, in, out, span); /* B^T down the columns */
  for (int l = 0; l < a; l++) in[l] = cols + l * nt;
  for (int k = 0; k < a; k++) {
    /* cols[l][t]: column l of each tile's row k, then B^T along it */
    const float *sk = s + k * span;
    for (int64_t r = 0; r < nr; r++)
      deinterleave(m, sk + r * len, p->tx, cols + r * p->tx, nt);
    for (int l = 0; l < a; l++)
      out[l] = v + (int64_t)(k * a + l) * p->vs + c * p->tc;
    bt_rows(m, in, out, nt);
  }
}

/* y[., o] for output channel o at the tiles of rows [r0, r0 + nr) from Z:
 * Y = A^T Z A + b, then ep (if any). */
static void output_channel(const nn_conv2d_geom *g, const plan *p,
                           const float *z, const float *b,
                           const nn_conv_epilogue *ep, int64_t r0,
                           int64_t nr, float *y, int64_t o, float *buf) {
  int a = p->a, m = p->m;
  int64_t nt = nr * p->tx;
  float *mid = buf, *res = mid + m * a * nt;
  float bias = b ? b[o] : 0.0f;
  const float *in[6] = {0};
  float *out[6] = {0};
  const float *zo = z + o * p->tc;
  for (int j = 0; j < a; j++) { /* A^T down column j: mid[q][j] */
    for (int i = 0; i < a; i++) in[i] = zo + (int64_t)(i * a + j) * p->zs;
    for (int q = 0; q < m; q++) out[q] = mid + (q * a + j) * nt;
    at_rows(m, in, out, nt);
  }
  for (int q = 0; q < m; q++) { /* then along output row q of every tile */
    for (int j = 0; j < a; j++) in[j] = mid + (q * a + j) * nt;
    for (int l = 0; l < m; l++) out[l] = res + l * nt;
    at_rows(m, in, out, nt);
    for (int64_t r = 0; r < nr; r++) {
      int64_t n = (r0 + r) / p->ty, ty = (r0 + r) % p->ty;
      int64_t yy = m * ty + q;
      if (yy >= g->ho) continue;
      float *dst = y + ((n * g->cout + o) * g->ho + yy) * g->wo;
      interleave(m, res + r * p->tx, nt, p->tx, g->wo, bias, dst);
      if (ep) nn_conv_epilogue_row(ep, o, dst, g->wo);
    }
  }
}

/* dZ[.][o] = A dY A^T for output channel o at the tiles of rows [r0, r0 +
 * nr). */
static void grad_output_channel(const nn_conv2d_geom *g, const plan *p,
                                const float *gy, int64_t r0, int64_t nr,
                                float *dz, int64_t o, float *buf) {
  int a = p->a, m = p->m;
  int64_t nt = nr * p->tx;
  float *cols = buf, *mid = cols + m * m * nt;
  /* cols[q][i][t]: dY row i, column q of each tile (0 outside) */
  for (int64_t r = 0; r < nr; r++) {
    int64_t n = (r0 + r) / p->ty, ty = (r0 + r) % p->ty;
    const float *gp = gy + (n * g->cout + o) * g->ho * g->wo;
    if (o + 1 < g->cout) /* as in input_channel: the next channel's rows */
      for (int i = 0; i < m && m * ty + i < g->ho; i++)
        for (int64_t u = 0; u < g->wo; u += 16)
          __builtin_prefetch(gp + g->ho * g->wo + (m * ty + i) * g->wo + u);
    for (int i = 0; i < m; i++) {
      int64_t yy = m * ty + i;
      float *ci = cols + i * nt + r * p->tx; /* column q at ci[q m nt] */
      if (yy >= g->ho) {
        for (int q = 0; q < m; q++)
          memset(ci + q * m * nt, 0, (size_t)p->tx * sizeof(float));
        continue;
      }
      const float *row = gp + yy * g->wo;
      int64_t full = g->wo / m < p->tx ? g->wo / m : p->tx, t = 0;
      if (m == 4)
        for (; t < full; t++) {
          const float *w4 = row + 4 * t;
          ci[t] = w4[0], ci[4 * nt + t] = w4[1];
          ci[8 * nt + t] = w4[2], ci[12 * nt + t] = w4[3];
        }
      else
        for (; t < full; t++)
          ci[t] = row[2 * t], ci[2 * nt + t] = row[2 * t + 1];
      for (; t < p->tx; t++) /* the tile sticking out, if any */
        for (int q = 0; q < m; q++)
          ci[q * m * nt + t] = m * t + q < g->wo ? row[m * t + q] : 0.0f;
    }
  }
  const float *in[6] = {0};
  float *out[6] = {0};
  for (int q = 0; q < m; q++) { /* A down each column: mid[k][q] */
    for (int i = 0; i < m; i++) in[i] = cols + (q * m + i) * nt;
    for (int k = 0; k < a; k++) out[k] = mid + (k * m + q) * nt;
    a_rows(m, in, out, nt);
  }
  float *dzo = dz + o * p->tc;
  for (int k = 0; k < a; k++) { /* then A along each row */
    for (int q = 0; q < m; q++) in[q] = mid + (k * m + q) * nt;
    for (int l = 0; l < a; l++) out[l] = dzo + (int64_t)(k * a + l) * p->zs;
    a_rows(m, in, out, nt);
  }
}

/* dst[off + m t + l] += rr[l * nt + t] for the tiles t in [lo, hi), all
 * of whose m + 2 values lie inside the row, with the additions in the order
 * of one whole tile after another: a tile's last two values fall on the
 * next tile's first two, so those are added first, for every tile, then
 * every tile's first m.  (Tile by tile, the 6 scalar adds of each did not
 * vectorise: 10% of a Fashion-MNIST CNN step.) */
SIMD_CLONES static void scatter_tiles(int m, const float *rr, int64_t nt,
                                      int64_t lo, int64_t hi, float *dst,
                                      int64_t off) {
  float *d = dst + (off + m * lo);
  const float *r = rr + lo;
  int64_t n = hi - lo;
  if (m == 2) {
    for (int64_t t = 0; t < n; t++) {
      d[2 * t + 2] += r[2 * nt + t];
      d[2 * t + 3] += r[3 * nt + t];
    }
    for (int64_t t = 0; t < n; t++) {
      d[2 * t] += r[t];
      d[2 * t + 1] += r[nt + t];
    }
  } else {
    for (int64_t t = 0; t < n; t++) {
      d[4 * t + 4] += r[4 * nt + t];
      d[4 * t + 5] += r[5 * nt + t];
    }
    for (int64_t t = 0; t < n; t++) {
      d[4 * t] += r[t];
      d[4 * t + 1] += r[nt + t];
      d[4 * t + 2] += r[2 * nt + t];
      d[4 * t + 3] += r[3 * nt + t];
    }
  }
}

/* dx[., c] += B dV B^T at every tile of rows [r0, r0 + nr) for input
 * channel c, tiles in order. */
static void grad_input_channel(const nn_conv2d_geom *g, const plan *p,
                               const float *dv, int64_t r0, int64_t nr,
                               float *gx, int64_t c, float *buf) {
  int a = p->a, m = p->m;
  int64_t nt = nr * p->tx;
  float *mid = buf, *res = mid + a * a * nt;
  const float *in[6] = {0};
  float *out[6] = {0};
  const float *dvc = dv + c * p->tc;
  for (int j = 0; j < a; j++) { /* B down column j: mid[k][j] */
    for (int i = 0; i < a; i++) in[i] = dvc + (int64_t)(i * a + j) * p->vs;
    for (int k = 0; k < a; k++) out[k] = mid + (k * a + j) * nt;
    b_rows(m, in, out, nt);
  }
  for (int k = 0; k < a; k++) { /* then along row k, added into dx */
    for (int j = 0; j < a; j++) in[j] = mid + (k * a + j) * nt;
    for (int l = 0; l < a; l++) out[l] = res + l * nt;
    b_rows(m, in, out, nt);
    for (int64_t r = 0; r < nr; r++) {
      int64_t n = (r0 + r) / p->ty, ty = (r0 + r) % p->ty;
      int64_t yy = m * ty - g->ph + k;
      if (yy < 0 || yy >= g->h) continue;
      float *dst = gx + ((n * g->cin + c) * g->h + yy) * g->w;
      const float *rr = res + r * p->tx;
      /* tiles [lo, hi) lie wholly inside the row; same order of additions
       * as the checked loop */
      int64_t lo = (g->pw + m - 1) / m, room = g->w - a + g->pw;
      int64_t hi = room >= 0 ? room / m + 1 : 0;
      if (hi > p->tx) hi = p->tx;
      if (hi < lo) hi = lo;
      for (int64_t t = 0; t < p->tx; t++) {
        if (t == lo && lo < hi) {
          scatter_tiles(m, rr, nt, lo, hi, dst, -g->pw);
          t = hi - 1;
          continue;
        }
        for (int l = 0; l < a; l++) {
          int64_t xx = m * t - g->pw + l;
          if (xx >= 0 && xx < g->w) dst[xx] += rr[l * nt + t];
        }
      }
    }
  }
}

/* ---- Kernels ----
 * Two ways to share a call between threads:
 *  - by chunk, when there are at least MIN_CHUNKS chunks:
 *    each thread takes whole chunks and runs their transforms and gemms
 *    alone, so the threads meet only at the start and the end (on a loaded
 *    machine every barrier can cost a time slice).  The weight gradient is
 *    then accumulated in GROUPS partial sums, one per run of samples (each
 *    run's chunks on one thread, in order), added in order at the end; no
 *    chunk straddles two runs, so no two threads write the same rows of dx;
 *  - together, chunk after chunk: the transforms split by channel and the
 *    gemms by point (few chunks: wide layers on small images). */

/* The thread's scratch rows. */
static float *thread_rows(const plan *p, float *rows) {
  return rows + omp_get_thread_num() * p->scr;
}

/* Z[xi] = U[xi] V[xi] over the nt tiles of a chunk. */
static void forward_point(const nn_conv2d_geom *g, const plan *p,
                          const float *u, const float *v, float *z, int xi,
                          int64_t nt) {
  nn_pgemm(g->cout, nt, g->cin, u + xi * p->us, v + xi * p->vs, p->tc, 0,
           z + xi * p->zs, p->tc);
}

/* The forward pass of the tile rows [r0, r0 + nr) on one thread. */
static void forward_chunk(const nn_conv2d_geom *g, const plan *p,
                          const float *x, const float *u, const float *b,
                          const nn_conv_epilogue *ep, float *y, int64_t r0,
                          int64_t nr, float *v, float *z, float *buf) {
  int64_t nt = nr * p->tx;
  for (int64_t c = 0; c < g->cin; c++)
    input_channel(g, p, x, r0, nr, v, c, buf);
  for (int xi = 0; xi < p->np; xi++) forward_point(g, p, u, v, z, xi, nt);
  for (int64_t o = 0; o < g->cout; o++)
    output_channel(g, p, z, b, ep, r0, nr, y, o, buf);
}

void nn_winograd_forward(int nthreads, const nn_conv2d_geom *g, const float *x,
                         const float *w, const float *b, float *y, float *ws) {
  nn_winograd_forward_ep(nthreads, g, x, w, NULL, b, NULL, y, ws);
}

void nn_winograd_forward_ep(int nthreads, const nn_conv2d_geom *g,
                            const float *x, const float *w, const float *ug,
                            const float *b, const nn_conv_epilogue *ep,
                            float *y, float *ws) {
  plan p;
  make_plan(g, ug != NULL, &p);
  if (p.rows == 0) return;
  int alone = p.alone;
  int64_t slot = p.np * (p.vs + p.zs);
  float *uw = ws; /* the transformed weights when not given */
  float *chunks = ug ? ws : uw + p.np * p.us;
  float *rows = chunks + (alone ? nthreads : 1) * slot;
  const float *u = ug ? ug : uw;
#pragma omp parallel num_threads(nthreads)
  {
    if (!ug) transform_weights(g, &p, w, 0, uw);
    float *buf = thread_rows(&p, rows);
    if (alone) {
      float *v = chunks + omp_get_thread_num() * slot, *z = v + p.np * p.vs;
#pragma omp for schedule(dynamic, 1)
      for (int64_t k = 0; k < p.nchunks; k++) {
        int64_t r0, nr;
        chunk_rows(&p, k, &r0, &nr);
        forward_chunk(g, &p, x, u, b, ep, y, r0, nr, v, z, buf);
      }
    } else {
      float *v = chunks, *z = v + p.np * p.vs;
      for (int64_t k = 0; k < p.nchunks; k++) {
        int64_t r0, nr;
        chunk_rows(&p, k, &r0, &nr);
        int64_t nt = nr * p.tx;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < g->cin; c++)
          input_channel(g, &p, x, r0, nr, v, c, buf);
#pragma omp for schedule(static)
        for (int xi = 0; xi < p.np; xi++)
          forward_point(g, &p, u, v, z, xi, nt);
#pragma omp for schedule(static)
        for (int64_t o = 0; o < g->cout; o++)
          output_channel(g, &p, z, b, ep, r0, nr, y, o, buf);
      }
    }
  }
}

int64_t nn_winograd_weights_size(const nn_conv2d_geom *g) {
  plan p;
  make_plan(g, 1, &p);
  return p.np * p.us;
}

void nn_winograd_weights(int nthreads, const nn_conv2d_geom *g,
                         const float *w, float *u) {
  plan p;
  make_plan(g, 1, &p);
#pragma omp parallel num_threads(nthreads)
  transform_weights(g, &p, w, 0, u);
}

/* Point xi of a chunk's backward over nt tiles: dU[xi] += dZ[xi] V[xi]^T
 * (when du), dV[xi] = U^T[xi] dZ[xi] (when dv). */
static void backward_point(const nn_conv2d_geom *g, const plan *p,
                           const float *u, const float *v, const float *dz,
                           float *du, float *dv, int xi, int64_t nt) {
  const float *dzx = dz + xi * p->zs;
  if (du)
    nn_gemm(1, 0, 1, g->cout, g->cin, nt, 1.0f, dzx, p->tc, v + xi * p->vs,
            p->tc, 1.0f, du + xi * p->us, g->cin);
  if (dv)
    nn_pgemm(g->cin, nt, g->cout, u + xi * p->us, dzx, p->tc, 0,
             dv + xi * p->vs, p->tc);
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
    for (int64_t c = 0; c < g->cin; c++)
      input_channel(g, p, x, r0, nr, v, c, buf);
  for (int xi = 0; xi < p->np; xi++)
    backward_point(g, p, u, v, dz, du, gx ? dv : NULL, xi, nt);
  if (gx)
    for (int64_t c = 0; c < g->cin; c++)
      grad_input_channel(g, p, dv, r0, nr, gx, c, buf);
}

/* One sweep of the backward pass over every chunk, inside the parallel
 * region: gx (when not NULL; zeroed beforehand) gets the input gradient
 * through U, du (when not NULL; zeroed) the weight gradient's partial sums.
 * chunks holds the chunk buffers (slot floats per thread when threads take
 * whole chunks), buf is the thread's scratch. */
static void backward_sweep(const nn_conv2d_geom *g, const plan *p,
                           const float *x, const float *u, const float *gy,
                           float *gx, float *du, float *chunks, int64_t slot,
                           float *buf) {
  int64_t dus = p->np * p->us;
  if (p->alone) {
    float *v = chunks + omp_get_thread_num() * slot;
    float *dz = v + p->np * p->vs, *dv = dz + p->np * p->zs;
#pragma omp for schedule(dynamic, 1)
    for (int k = 0; k < p->groups; k++)
      for (int64_t c = p->gch[k]; c < p->gch[k + 1]; c++) {
        int64_t r0, nr;
        chunk_rows(p, c, &r0, &nr);
        backward_chunk(g, p, x, u, gy, gx, du ? du + k * dus : NULL, r0, nr, v,
                       dz, dv, buf);
      }
    return;
  }
  float *v = chunks, *dz = v + p->np * p->vs, *dv = dz + p->np * p->zs;
  for (int64_t k = 0; k < p->nchunks; k++) {
    int64_t r0, nr;
    chunk_rows(p, k, &r0, &nr);
    int64_t nt = nr * p->tx;
#pragma omp for schedule(static)
    for (int64_t o = 0; o < g->cout; o++)
      grad_output_channel(g, p, gy, r0, nr, dz, o, buf);
    if (du) {
#pragma omp for schedule(static)
      for (int64_t c = 0; c < g->cin; c++)
        input_channel(g, p, x, r0, nr, v, c, buf);
    }
#pragma omp for schedule(static)
    for (int xi = 0; xi < p->np; xi++)
      backward_point(g, p, u, v, dz, du, gx ? dv : NULL, xi, nt);
    if (gx) {
#pragma omp for schedule(static)
      for (int64_t c = 0; c < g->cin; c++)
        grad_input_channel(g, p, dv, r0, nr, gx, c, buf);
    }
  }
}

/* Zeroes the weight gradient's partial sums; omp-for. */
static void zero_du(const nn_conv2d_geom *g, const plan *p, float *du) {
  int64_t plane = g->cout * g->cin, dus = p->np * p->us;
#pragma omp for schedule(static) collapse(2)
  for (int k = 0; k < p->groups; k++)
    for (int xi = 0; xi < p->np; xi++)
      memset(du + k * dus + xi * p->us, 0, (size_t)plane * sizeof(float));
}

void nn_winograd_backward(int nthreads, const nn_conv2d_geom *g,
                          const float *x, const float *w, const float *gy,
                          float *gx, float *gw, float *ws) {
  plan p;
  make_plan(g, 0, &p);
  if (p.rows == 0) return;
  /* With both gradients and large transformed weights, two sweeps: dx
   * through U, then dw into partial sums that reuse U's memory. */
  int split = gx && gw && p.split;
  int64_t dus = p.np * p.us;
  int64_t slot = p.np * (2 * p.vs + p.zs);
  float *u = ws, *du = p.split ? ws : u + dus;
  float *chunks = ws + (p.split ? p.groups : 1 + p.groups) * dus;
  float *rows = chunks + (p.alone ? nthreads : 1) * slot;
  int64_t planes = g->n * g->cin, hw = g->h * g->w;
#pragma omp parallel num_threads(nthreads)
  {
    float *buf = thread_rows(&p, rows);
    if (gx) {
      transform_weights(g, &p, w, 1, u);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < planes; i++)
        memset(gx + i * hw, 0, (size_t)hw * sizeof(float));
    }
    if (split) {
      backward_sweep(g, &p, x, u, gy, gx, NULL, chunks, slot, buf);
      zero_du(g, &p, du); /* after the sweep's closing barrier */
      backward_sweep(g, &p, x, u, gy, NULL, du, chunks, slot, buf);
    } else {
      if (gw) zero_du(g, &p, du);
      backward_sweep(g, &p, x, u, gy, gx, gw ? du : NULL, chunks, slot, buf);
    }
    if (gw) weights_gradient(g, &p, du, p.groups, gw);
  }
}
