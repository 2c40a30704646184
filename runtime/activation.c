/* activation.c - activation kernels, softmax / log-softmax, and the
 * activation layers built on them. */
#include "activation.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

/* Below this many elements a loop runs on the calling thread only. */
#define PAR_MIN 16384

static const float SQRT1_2 = 0.70710678118654752440f;   /* 1 / sqrt(2) */
static const float INV_SQRT_2PI = 0.39894228040143267794f; /* 1/sqrt(2 pi) */

/* The elementwise kernels below are written as branch-free selects in
 * `omp simd` loops: with random signs a branch per element mispredicts half
 * the time and costs ten times the memory traffic. */

void nn_relu_forward(nn_ctx *ctx, const float *x, float *y, int64_t n) {
#pragma omp parallel for simd num_threads(ctx->num_threads) \
    schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void nn_relu_backward(nn_ctx *ctx, const float *x, const float *gy, float *gx,
                      int64_t n) {
#pragma omp parallel for simd num_threads(ctx->num_threads) \
    schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float g = gy[i];
    gx[i] = x[i] > 0.0f ? g : 0.0f;
  }
}

void nn_leaky_relu_forward(nn_ctx *ctx, const float *x, float *y, int64_t n,
                           float slope) {
#pragma omp parallel for simd num_threads(ctx->num_threads) \
    schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    y[i] = v > 0.0f ? v : v * slope;
  }
}

void nn_leaky_relu_backward(nn_ctx *ctx, const float *x, const float *gy,
                            float *gx, int64_t n, float slope) {
#pragma omp parallel for simd num_threads(ctx->num_threads) \
    schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float g = gy[i];
    gx[i] = x[i] > 0.0f ? g : g * slope;
  }
}

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void nn_sigmoid_forward(nn_ctx *ctx, const float *x, float *y, int64_t n) {
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n >= PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) y[i] = sigmoidf(x[i]);
}

void nn_sigmoid_backward(nn_ctx *ctx, const float *x, const float *gy,
                         float *gx, int64_t n) {
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n >= PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) {
    float s = sigmoidf(x[i]);
    gx[i] = gy[i] * s * (1.0f - s);
  }
}

void nn_tanh_forward(nn_ctx *ctx, const float *x, float *y, int64_t n) {
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n >= PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void nn_tanh_backward(nn_ctx *ctx, const float *x, const float *gy, float *gx,
                      int64_t n) {
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n >= PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) {
    float t = tanhf(x[i]);
    gx[i] = gy[i] * (1.0f - t * t);
  }
}

void nn_elu_forward(nn_ctx *ctx, const float *x, float *y, int64_t n,
                    float alpha) {
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n >= PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++)
    y[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]);
}

void nn_elu_backward(nn_ctx *ctx, const float *x, const float *gy, float *gx,
                     int64_t n, float alpha) {
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n >= PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++)
    gx[i] = x[i] > 0.0f ? gy[i] : gy[i] * alpha * expf(x[i]);
}

void nn_gelu_forward(nn_ctx *ctx, const float *x, float *y, int64_t n) {
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n >= PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++)
    y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * SQRT1_2));
}

void nn_gelu_backward(nn_ctx *ctx, const float *x, const float *gy, float *gx,
                      int64_t n) {
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (n >= PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    float cdf = 0.5f * (1.0f + erff(v * SQRT1_2));
    float pdf = INV_SQRT_2PI * expf(-0.5f * v * v);
    gx[i] = gy[i] * (cdf + v * pdf);
  }
}

static float row_max(const float *x, int64_t cols) {
  float m = x[0];
  for (int64_t j = 1; j < cols; j++)
    if (x[j] > m || isnan(x[j])) m = x[j];
  return m;
}

/* Writes e[j] = exp(x[j] - max) for one row and returns their sum. */
static double row_exp(const float *x, float *e, int64_t cols, float max) {
  double sum = 0.0;
  for (int64_t j = 0; j < cols; j++) {
    e[j] = expf(x[j] - max);
    sum += e[j];
  }
  return sum;
}

/* Max of one row and log(sum(exp(x - max))), so that x - lse is computed as
 * (x - max) - logsum without the rounding of a large lse. */
static void row_logsumexp(const float *x, int64_t cols, float *max,
                          float *logsum) {
  float m = row_max(x, cols);
  if (isinf(m)) { /* all -inf, or a +inf present: PyTorch's nan / -inf */
    *max = m;
    *logsum = 0.0f;
    return;
  }
  double sum = 0.0;
  for (int64_t j = 0; j < cols; j++) sum += expf(x[j] - m);
  *max = m;
  *logsum = (float)log(sum);
}

void nn_softmax_forward(nn_ctx *ctx, const float *x, float *y, int64_t rows,
                        int64_t cols) {
  if (cols <= 0) return;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (rows * cols >= PAR_MIN / 4)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    float inv = (float)(1.0 / row_exp(xr, yr, cols, row_max(xr, cols)));
    for (int64_t j = 0; j < cols; j++) yr[j] *= inv;
  }
}

void nn_softmax_backward(nn_ctx *ctx, const float *x, const float *gy,
                         float *gx, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (rows * cols >= PAR_MIN / 4)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols, *gr = gy + r * cols;
    float *s = gx + r * cols; /* softmax first, then overwritten by gx */
    float inv = (float)(1.0 / row_exp(xr, s, cols, row_max(xr, cols)));
    double dot = 0.0;
    for (int64_t j = 0; j < cols; j++) {
      s[j] *= inv;
      dot += (double)gr[j] * s[j];
    }
    for (int64_t j = 0; j < cols; j++) s[j] = s[j] * (gr[j] - (float)dot);
  }
}

void nn_log_softmax_forward(nn_ctx *ctx, const float *x, float *y,
                            int64_t rows, int64_t cols) {
  if (cols <= 0) return;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (rows * cols >= PAR_MIN / 4)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    float m, ls;
    row_logsumexp(xr, cols, &m, &ls);
    for (int64_t j = 0; j < cols; j++) yr[j] = (xr[j] - m) - ls;
  }
}

void nn_log_softmax_backward(nn_ctx *ctx, const float *x, const float *gy,
                             float *gx, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static) \
    if (rows * cols >= PAR_MIN / 4)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols, *gr = gy + r * cols;
    float *g = gx + r * cols;
    float m, ls;
    row_logsumexp(xr, cols, &m, &ls);
    double gsum = 0.0;
    for (int64_t j = 0; j < cols; j++) gsum += gr[j];
    for (int64_t j = 0; j < cols; j++)
      g[j] = gr[j] - expf((xr[j] - m) - ls) * (float)gsum;
  }
}

void nn_float_repr(float v, char *buf, size_t n) {
  char tmp[48];
  if (v == 0.0f) {
    snprintf(buf, n, signbit(v) ? "-0.0" : "0.0");
    return;
  }
  if (isnan(v) || isinf(v)) {
    snprintf(buf, n, isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
    return;
  }
  /* Fewest significant digits that read back as the same float. */
  int digits = 1;
  for (; digits < 9; digits++) {
    snprintf(tmp, sizeof tmp, "%.*e", digits - 1, (double)v);
    if (strtof(tmp, NULL) == v) break;
  }
  snprintf(tmp, sizeof tmp, "%.*e", digits - 1, (double)v);
  int exp10 = atoi(strchr(tmp, 'e') + 1);
  if (exp10 < -4 || exp10 >= 16) { /* Python switches to exponent form */
    snprintf(buf, n, "%s", tmp);
    return;
  }
  int decimals = digits - 1 - exp10;
  if (decimals < 1) decimals = 1; /* "100.0", "1.0" */
  snprintf(buf, n, "%.*f", decimals, (double)v);
}

/* ---- The activation layers ---- */

typedef struct act_layer {
  nn_layer base;
  nn_act_kind kind;
  float param;
} act_layer;

/* Uniform kernel signatures for the dispatch table: x seen as [rows, cols]
 * with cols the last dimension; elementwise kernels use rows * cols. */
typedef void (*act_fwd_fn)(nn_ctx *ctx, const float *x, float *y,
                           int64_t rows, int64_t cols, float param);
typedef void (*act_bwd_fn)(nn_ctx *ctx, const float *x, const float *gy,
                           float *gx, int64_t rows, int64_t cols, float param);

static void relu_f(nn_ctx *c, const float *x, float *y, int64_t r, int64_t k,
                   float p) {
  (void)p;
  nn_relu_forward(c, x, y, r * k);
}
static void relu_b(nn_ctx *c, const float *x, const float *gy, float *gx,
                   int64_t r, int64_t k, float p) {
  (void)p;
  nn_relu_backward(c, x, gy, gx, r * k);
}
static void leaky_f(nn_ctx *c, const float *x, float *y, int64_t r, int64_t k,
                    float p) {
  nn_leaky_relu_forward(c, x, y, r * k, p);
}
static void leaky_b(nn_ctx *c, const float *x, const float *gy, float *gx,
                    int64_t r, int64_t k, float p) {
  nn_leaky_relu_backward(c, x, gy, gx, r * k, p);
}
static void sigmoid_f(nn_ctx *c, const float *x, float *y, int64_t r,
                      int64_t k, float p) {
  (void)p;
  nn_sigmoid_forward(c, x, y, r * k);
}
static void sigmoid_b(nn_ctx *c, const float *x, const float *gy, float *gx,
                      int64_t r, int64_t k, float p) {
  (void)p;
  nn_sigmoid_backward(c, x, gy, gx, r * k);
}
static void tanh_f(nn_ctx *c, const float *x, float *y, int64_t r, int64_t k,
                   float p) {
  (void)p;
  nn_tanh_forward(c, x, y, r * k);
}
static void tanh_b(nn_ctx *c, const float *x, const float *gy, float *gx,
                   int64_t r, int64_t k, float p) {
  (void)p;
  nn_tanh_backward(c, x, gy, gx, r * k);
}
static void elu_f(nn_ctx *c, const float *x, float *y, int64_t r, int64_t k,
                  float p) {
  nn_elu_forward(c, x, y, r * k, p);
}
static void elu_b(nn_ctx *c, const float *x, const float *gy, float *gx,
                  int64_t r, int64_t k, float p) {
  nn_elu_backward(c, x, gy, gx, r * k, p);
}
static void gelu_f(nn_ctx *c, const float *x, float *y, int64_t r, int64_t k,
                   float p) {
  (void)p;
  nn_gelu_forward(c, x, y, r * k);
}
static void gelu_b(nn_ctx *c, const float *x, const float *gy, float *gx,
                   int64_t r, int64_t k, float p) {
  (void)p;
  nn_gelu_backward(c, x, gy, gx, r * k);
}
static void softmax_f(nn_ctx *c, const float *x, float *y, int64_t r,
                      int64_t k, float p) {
  (void)p;
  nn_softmax_forward(c, x, y, r, k);
}
static void softmax_b(nn_ctx *c, const float *x, const float *gy, float *gx,
                      int64_t r, int64_t k, float p) {
  (void)p;
  nn_softmax_backward(c, x, gy, gx, r, k);
}
static void logsoftmax_f(nn_ctx *c, const float *x, float *y, int64_t r,
                         int64_t k, float p) {
  (void)p;
  nn_log_softmax_forward(c, x, y, r, k);
}
static void logsoftmax_b(nn_ctx *c, const float *x, const float *gy,
                         float *gx, int64_t r, int64_t k, float p) {
  (void)p;
  nn_log_softmax_backward(c, x, gy, gx, r, k);
}

typedef struct act_info {
  act_fwd_fn forward;
  act_bwd_fn backward;
  const char *param_name; /* printed as "name=<param>", or NULL */
  const char *fixed_repr; /* extra_repr when there is no parameter */
} act_info;

/* Indexed by nn_act_kind. */
static const act_info ACTS[] = {
    [NN_ACT_RELU] = {relu_f, relu_b, NULL, ""},
    [NN_ACT_LEAKY_RELU] = {leaky_f, leaky_b, "negative_slope", NULL},
    [NN_ACT_SIGMOID] = {sigmoid_f, sigmoid_b, NULL, ""},
    [NN_ACT_TANH] = {tanh_f, tanh_b, NULL, ""},
    [NN_ACT_ELU] = {elu_f, elu_b, "alpha", NULL},
    [NN_ACT_GELU] = {gelu_f, gelu_b, NULL, "approximate='none'"},
    [NN_ACT_SOFTMAX] = {softmax_f, softmax_b, NULL, "dim=-1"},
    [NN_ACT_LOG_SOFTMAX] = {logsoftmax_f, logsoftmax_b, NULL, "dim=-1"},
};
#define NUM_ACTS ((int)(sizeof ACTS / sizeof ACTS[0]))

/* x seen as [rows, cols] with cols the last dimension (a scalar is [1, 1]). */
static void rows_cols(const nn_tensor *x, int64_t *rows, int64_t *cols) {
  *cols = x->ndim > 0 ? x->shape[x->ndim - 1] : 1;
  *rows = *cols > 0 ? nn_tensor_numel(x) / *cols : 0;
}

static int act_forward(nn_layer *l, nn_tensor *x, nn_tensor **y,
                       nn_error *err) {
  act_layer *a = (act_layer *)l;
  nn_tensor *out = nn_layer_output(l, x->ndim, x->shape, err);
  if (!out) return -1;
  int64_t rows, cols;
  rows_cols(x, &rows, &cols);
  if (rows > 0)
    ACTS[a->kind].forward(l->ctx, nn_data(x), nn_data(out), rows, cols,
                          a->param);
  *y = out;
  return 0;
}

/* -1 with err unless gy has x's shape. */
static int check_grad_shape(const nn_tensor *x, const nn_tensor *gy,
                            nn_error *err) {
  if (nn_tensor_same_shape(gy, x)) return 0;
  char xs[160], gs[160];
  nn_tensor_shape_str(x, xs, sizeof xs);
  nn_tensor_shape_str(gy, gs, sizeof gs);
  return nn_seterr(err, "expected grad_output of shape %s, got %s", xs, gs);
}

/* gx = the backward of activation layer l at x for gy (gx may be gy). */
static void backward_into(act_layer *a, const nn_tensor *x,
                          const nn_tensor *gy, nn_tensor *gx) {
  int64_t rows, cols;
  rows_cols(x, &rows, &cols);
  if (rows > 0)
    ACTS[a->kind].backward(a->base.ctx, nn_data(x), nn_data(gy), nn_data(gx),
                           rows, cols, a->param);
}

static int act_backward(nn_layer *l, nn_tensor *x, nn_tensor *gy,
                        nn_tensor **gx, nn_error *err) {
  if (check_grad_shape(x, gy, err)) return -1;
  nn_tensor *g = nn_layer_grad_input(l, x->ndim, x->shape, err);
  if (!g) return -1;
  backward_into((act_layer *)l, x, gy, g);
  *gx = g;
  return 0;
}

static void act_extra_repr(const nn_layer *l, char *buf, size_t n) {
  const act_layer *a = (const act_layer *)l;
  const act_info *info = &ACTS[a->kind];
  if (!info->param_name) {
    snprintf(buf, n, "%s", info->fixed_repr);
    return;
  }
  char v[48];
  nn_float_repr(a->param, v, sizeof v);
  snprintf(buf, n, "%s=%s", info->param_name, v);
}

#define ACT_OPS(name) {name, act_forward, act_backward, act_extra_repr, NULL}

/* One vtable per kind, since the vtable carries PyTorch's class name. */
static const nn_layer_ops ACT_OPS_TABLE[] = {
    [NN_ACT_RELU] = ACT_OPS("ReLU"),
    [NN_ACT_LEAKY_RELU] = ACT_OPS("LeakyReLU"),
    [NN_ACT_SIGMOID] = ACT_OPS("Sigmoid"),
    [NN_ACT_TANH] = ACT_OPS("Tanh"),
    [NN_ACT_ELU] = ACT_OPS("ELU"),
    [NN_ACT_GELU] = ACT_OPS("GELU"),
    [NN_ACT_SOFTMAX] = ACT_OPS("Softmax"),
    [NN_ACT_LOG_SOFTMAX] = ACT_OPS("LogSoftmax"),
};

nn_layer *nn_activation_new(nn_ctx *ctx, nn_act_kind kind, float param,
                            nn_error *err) {
  if ((int)kind < 0 || (int)kind >= NUM_ACTS) {
    nn_seterr(err, "unknown activation kind %d", (int)kind);
    return NULL;
  }
  act_layer *a = calloc(1, sizeof *a);
  if (!a) {
    nn_seterr(err, "out of memory allocating a layer");
    return NULL;
  }
  nn_layer_init(&a->base, &ACT_OPS_TABLE[kind], ctx);
  a->kind = kind;
  a->param = param;
  return &a->base;
}

int nn_activation_backward_inplace(nn_layer *l, nn_tensor *x, nn_tensor *gy,
                                   nn_error *err) {
  int kind = -1; /* l's kind, when l is an activation layer */
  for (int k = 0; k < NUM_ACTS; k++)
    if (l->ops == &ACT_OPS_TABLE[k]) kind = k;
  if (kind < 0 || kind == NN_ACT_SOFTMAX || kind == NN_ACT_LOG_SOFTMAX)
    return nn_seterr(err, "expected an elementwise activation, got %s",
                     l->ops->type);
  if (!nn_tensor_is_contiguous(x) || !nn_tensor_is_contiguous(gy))
    return nn_seterr(err, "input and grad_output must be contiguous");
  if (x->storage == gy->storage)
    return nn_seterr(err, "grad_output must not share memory with input");
  if (check_grad_shape(x, gy, err)) return -1;
  backward_into((act_layer *)l, x, gy, gy);
  return 0;
}
