/*
 * loss.c - loss functions with the definitions of torch.nn.functional.
 *
 * Every sum is accumulated in double in a fixed order: per-sample (or
 * per-block) partial results are computed in parallel into an array, then
 * added sequentially, so the result is the same for any thread count.
 */
#include "loss.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Loops with less work than this run on one thread. */
#define PAR_MIN 32768
/* Elements per partial sum of the pointwise losses. */
#define SUM_BLOCK 4096

static const nn_class_loss_opts default_class_opts = {
    NULL, 0.0f, NN_REDUCTION_MEAN, NN_NO_IGNORE};

/* ---- shared checks and helpers ---------------------------------------- */

static int check_contiguous(const nn_tensor *t, const char *name,
                            nn_error *err) {
  if (!nn_tensor_is_contiguous(t))
    return nn_seterr(err, "expected a contiguous %s tensor", name);
  return 0;
}

static int check_reduction(nn_reduction r, nn_error *err) {
  if (r != NN_REDUCTION_MEAN && r != NN_REDUCTION_SUM && r != NN_REDUCTION_NONE)
    return nn_seterr(err, "unknown reduction %d", (int)r);
  return 0;
}

/* gout must be a single value for "mean"/"sum", or have the shape of the
 * unreduced loss (ndim, shape) for "none". */
static int check_gout(const nn_tensor *gout, nn_reduction r, int ndim,
                      const int64_t *shape, nn_error *err) {
  char want[160], got[160];
  if (!gout) return 0;
  nn_tensor_shape_str(gout, got, sizeof got);
  if (r != NN_REDUCTION_NONE) {
    if (nn_tensor_numel(gout) != 1)
      return nn_seterr(
          err, "expected a scalar gradient of the loss, got shape %s", got);
    return 0;
  }
  if (!nn_tensor_has_shape(gout, ndim, shape)) {
    nn_shape_str(ndim, shape, want, sizeof want);
    return nn_seterr(err, "expected gradient of the loss of shape %s, got %s",
                     want, got);
  }
  return check_contiguous(gout, "gradient", err);
}

/* The scalar gradient of a reduced loss (1 when gout is NULL or the loss is
 * not reduced). */
static double gout_scalar(const nn_tensor *gout, nn_reduction r) {
  return gout && r != NN_REDUCTION_NONE ? (double)nn_data(gout)[0] : 1.0;
}

/* An owned scalar (ndim 0) tensor holding v. */
static int new_scalar(double v, nn_tensor **out, nn_error *err) {
  nn_tensor *t = nn_tensor_empty(0, NULL, err);
  if (!t) return -1;
  nn_data(t)[0] = (float)v;
  *out = t;
  return 0;
}

/* An owned [n] tensor holding the doubles v. */
static int new_vector(const double *v, int64_t n, nn_tensor **out,
                      nn_error *err) {
  nn_tensor *t = nn_tensor_empty(1, &n, err);
  if (!t) return -1;
  float *y = nn_data(t);
  for (int64_t i = 0; i < n; i++) y[i] = (float)v[i];
  *out = t;
  return 0;
}

static double *alloc_doubles(int64_t n, nn_error *err) {
  double *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  if (!p) nn_seterr(err, "out of memory for %lld loss values", (long long)n);
  return p;
}

static double sum_doubles(const double *v, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; i++) s += v[i];
  return s;
}

/* log(sum(exp(x))) of one row of C logits, stable. */
static double row_logsumexp(const float *x, int64_t C) {
  double m = -INFINITY, s = 0.0;
  for (int64_t c = 0; c < C; c++)
    if (x[c] > m) m = x[c];
  if (isinf(m)) return m;
  for (int64_t c = 0; c < C; c++) s += exp((double)x[c] - m);
  return m + log(s);
}

/* ---- class losses (cross entropy, NLL) -------------------------------- */

/* Checks input [N, C], the class weights, the reduction and (when smoothing
 * is set) the label smoothing; sets *N and *C. */
static int check_class_input(const nn_tensor *input,
                             const nn_class_loss_opts *o, int smoothing,
                             int64_t *N, int64_t *C, nn_error *err) {
  char got[160];
  if (input->ndim != 2) {
    nn_tensor_shape_str(input, got, sizeof got);
    return nn_seterr(err, "expected input of shape [N, C], got %s", got);
  }
  if (check_contiguous(input, "input", err)) return -1;
  *N = input->shape[0];
  *C = input->shape[1];
  if (o->weight) {
    if (!nn_tensor_has_shape(o->weight, 1, C)) {
      nn_tensor_shape_str(o->weight, got, sizeof got);
      return nn_seterr(err,
                       "expected weight of shape [%lld] (one per class), "
                       "got %s",
                       (long long)*C, got);
    }
    if (check_contiguous(o->weight, "weight", err)) return -1;
  }
  if (smoothing && !(o->label_smoothing >= 0.0f && o->label_smoothing <= 1.0f))
    return nn_seterr(err, "label_smoothing must be in [0, 1], got %g",
                     (double)o->label_smoothing);
  return check_reduction(o->reduction, err);
}

/* Every target must be a class in [0, C) or the ignored index.  Positions,
 * values and the range are reported 1-based, as Lua users see them. */
static int check_targets(const int32_t *target, int64_t N, int64_t C,
                         int32_t ignore, nn_error *err) {
  if (N > 0 && !target) return nn_seterr(err, "missing target");
  for (int64_t i = 0; i < N; i++) {
    int32_t t = target[i];
    if (t == ignore) continue;
    if (t < 0 || t >= C)
      return nn_seterr(err, "target[%lld] = %lld is out of range 1..%lld",
                       (long long)i + 1, (long long)t + 1, (long long)C);
  }
  return 0;
}

static int check_class_args(const nn_tensor *input, const int32_t *target,
                            const nn_class_loss_opts *o, int smoothing,
                            int64_t *N, int64_t *C, nn_error *err) {
  if (check_class_input(input, o, smoothing, N, C, err)) return -1;
  return check_targets(target, *N, *C, o->ignore_index, err);
}

static double class_weight(const float *w, int64_t c) {
  return w ? (double)w[c] : 1.0;
}

/* Total weight of the non-ignored targets: the denominator of "mean". */
static double target_weight_sum(const int32_t *target, int64_t N,
                                const float *w, int32_t ignore) {
  double s = 0.0;
  for (int64_t i = 0; i < N; i++)
    if (target[i] != ignore) s += class_weight(w, target[i]);
  return s;
}

int nn_cross_entropy_forward(nn_ctx *ctx, const nn_tensor *input,
                             const int32_t *target, const nn_class_loss_opts *o,
                             nn_tensor **out, nn_error *err) {
  int64_t N, C;
  if (!o) o = &default_class_opts;
  if (check_class_args(input, target, o, 1, &N, &C, err)) return -1;
  const float *x = nn_data(input);
  const float *w = o->weight ? nn_data(o->weight) : NULL;
  const double ls = o->label_smoothing;
  const int32_t ignore = o->ignore_index;
  double *nll = alloc_doubles(2 * N, err);
  if (!nll) return -1;
  double *smooth = nll + N;

#pragma omp parallel for num_threads(ctx->num_threads) \
    schedule(static) if (N * C > PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    nll[i] = smooth[i] = 0.0;
    if (target[i] == ignore) continue;
    const float *row = x + i * C;
    double lse = row_logsumexp(row, C);
    nll[i] = -class_weight(w, target[i]) * ((double)row[target[i]] - lse);
    if (ls > 0.0) {
      double s = 0.0;
      for (int64_t c = 0; c < C; c++)
        s -= class_weight(w, c) * ((double)row[c] - lse);
      smooth[i] = s;
    }
  }

  int rc;
  const double k = C > 0 ? ls / (double)C : 0.0;
  if (o->reduction == NN_REDUCTION_NONE) {
    for (int64_t i = 0; i < N; i++)
      nll[i] = (1.0 - ls) * nll[i] + (ls > 0.0 ? k * smooth[i] : 0.0);
    rc = new_vector(nll, N, out, err);
  } else {
    double lnll = sum_doubles(nll, N), lsmooth = sum_doubles(smooth, N);
    /* PyTorch 1.13 divides both terms by the targets' total weight (their
     * count without weights). */
    if (o->reduction == NN_REDUCTION_MEAN) {
      double wsum = target_weight_sum(target, N, w, ignore);
      lnll /= wsum;
      lsmooth /= wsum;
    }
    rc = new_scalar((1.0 - ls) * lnll + (ls > 0.0 ? k * lsmooth : 0.0), out,
                    err);
  }
  free(nll);
  return rc;
}

/*
 * The loss is sum_i sum_c a_ic * (-logp_ic) for coefficients a_ic that do not
 * depend on the input, so its gradient is g_ij = p_ij * sum_c a_ic - a_ij.
 * Here a_ic = ((1-ls) w_t [c == t] + ls/C w_c) s_i, where s_i is the output
 * gradient (over the targets' total weight for "mean").
 */
int nn_cross_entropy_backward(nn_ctx *ctx, const nn_tensor *input,
                              const int32_t *target,
                              const nn_class_loss_opts *o,
                              const nn_tensor *gout, nn_tensor **gin,
                              nn_error *err) {
  int64_t N, C;
  if (!o) o = &default_class_opts;
  if (check_class_args(input, target, o, 1, &N, &C, err)) return -1;
  if (check_gout(gout, o->reduction, 1, &N, err)) return -1;
  nn_tensor *g = nn_tensor_empty(2, input->shape, err);
  if (!g) return -1;
  const float *x = nn_data(input);
  const float *w = o->weight ? nn_data(o->weight) : NULL;
  const float *gv = gout ? nn_data(gout) : NULL;
  float *gx = nn_data(g);
  const double ls = o->label_smoothing;
  const double k = C > 0 ? ls / (double)C : 0.0;
  const int32_t ignore = o->ignore_index;
  const nn_reduction red = o->reduction;

  double scale = gout_scalar(gout, red);
  if (red == NN_REDUCTION_MEAN)
    scale /= target_weight_sum(target, N, w, ignore);
  double wtotal = 0.0;
  for (int64_t c = 0; c < C; c++) wtotal += class_weight(w, c);

#pragma omp parallel for num_threads(ctx->num_threads) \
    schedule(static) if (N * C > PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    const float *row = x + i * C;
    float *grow = gx + i * C;
    int32_t t = target[i];
    if (t == ignore) {
      for (int64_t c = 0; c < C; c++) grow[c] = 0.0f;
      continue;
    }
    double si = red == NN_REDUCTION_NONE && gv ? (double)gv[i] : scale;
    double a_t = (1.0 - ls) * class_weight(w, t) * si;
    double ks = ls > 0.0 ? k * si : 0.0;
    double A = a_t + ks * wtotal;
    double lse = row_logsumexp(row, C);
    for (int64_t c = 0; c < C; c++) {
      double v = exp((double)row[c] - lse) * A - ks * class_weight(w, c);
      if (c == t) v -= a_t;
      grow[c] = (float)v;
    }
  }
  *gin = g;
  return 0;
}

/* Checks a probability target of the input's shape; ignore_index is not
 * supported with probabilities (as PyTorch, which rejects any index >= 0). */
static int check_prob_args(const nn_tensor *input, const nn_tensor *target,
                           const nn_class_loss_opts *o, int64_t *N, int64_t *C,
                           nn_error *err) {
  char want[160], got[160];
  if (check_class_input(input, o, 1, N, C, err)) return -1;
  if (!nn_tensor_same_shape(target, input)) {
    nn_tensor_shape_str(input, want, sizeof want);
    nn_tensor_shape_str(target, got, sizeof got);
    return nn_seterr(err, "expected target of shape %s (as input), got %s",
                     want, got);
  }
  if (check_contiguous(target, "target", err)) return -1;
  if (o->ignore_index >= 0)
    return nn_seterr(err,
                     "ignore_index is not supported for probability targets");
  return 0;
}

/* The smoothed target probability: t (1 - ls) + ls / C. */
static double smoothed(double t, double ls, int64_t C) {
  return ls > 0.0 ? t * (1.0 - ls) + ls / (double)C : t;
}

int nn_cross_entropy_prob_forward(nn_ctx *ctx, const nn_tensor *input,
                                  const nn_tensor *target,
                                  const nn_class_loss_opts *o, nn_tensor **out,
                                  nn_error *err) {
  int64_t N, C;
  if (!o) o = &default_class_opts;
  if (check_prob_args(input, target, o, &N, &C, err)) return -1;
  const float *x = nn_data(input);
  const float *tp = nn_data(target);
  const float *w = o->weight ? nn_data(o->weight) : NULL;
  const double ls = o->label_smoothing;
  double *loss = alloc_doubles(N, err);
  if (!loss) return -1;

#pragma omp parallel for num_threads(ctx->num_threads) \
    schedule(static) if (N * C > PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    const float *row = x + i * C, *trow = tp + i * C;
    double lse = row_logsumexp(row, C), s = 0.0;
    for (int64_t c = 0; c < C; c++)
      s -= class_weight(w, c) * smoothed(trow[c], ls, C) *
           ((double)row[c] - lse);
    loss[i] = s;
  }

  int rc;
  if (o->reduction == NN_REDUCTION_NONE) {
    rc = new_vector(loss, N, out, err);
  } else {
    double s = sum_doubles(loss, N);
    if (o->reduction == NN_REDUCTION_MEAN) s /= (double)N;
    rc = new_scalar(s, out, err);
  }
  free(loss);
  return rc;
}

int nn_cross_entropy_prob_backward(nn_ctx *ctx, const nn_tensor *input,
                                   const nn_tensor *target,
                                   const nn_class_loss_opts *o,
                                   const nn_tensor *gout, nn_tensor **gin,
                                   nn_error *err) {
  int64_t N, C;
  if (!o) o = &default_class_opts;
  if (check_prob_args(input, target, o, &N, &C, err)) return -1;
  if (check_gout(gout, o->reduction, 1, &N, err)) return -1;
  nn_tensor *g = nn_tensor_empty(2, input->shape, err);
  if (!g) return -1;
  const float *x = nn_data(input);
  const float *tp = nn_data(target);
  const float *w = o->weight ? nn_data(o->weight) : NULL;
  const float *gv = gout ? nn_data(gout) : NULL;
  float *gx = nn_data(g);
  const double ls = o->label_smoothing;
  const nn_reduction red = o->reduction;
  double scale = gout_scalar(gout, red);
  if (red == NN_REDUCTION_MEAN) scale /= (double)N;

#pragma omp parallel for num_threads(ctx->num_threads) \
    schedule(static) if (N * C > PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    const float *row = x + i * C, *trow = tp + i * C;
    float *grow = gx + i * C;
    double si = red == NN_REDUCTION_NONE && gv ? (double)gv[i] : scale;
    double lse = row_logsumexp(row, C), A = 0.0;
    for (int64_t c = 0; c < C; c++)
      A += class_weight(w, c) * smoothed(trow[c], ls, C);
    for (int64_t c = 0; c < C; c++) {
      double a = class_weight(w, c) * smoothed(trow[c], ls, C);
      grow[c] = (float)(si * (exp((double)row[c] - lse) * A - a));
    }
  }
  *gin = g;
  return 0;
}

/* The forward pass touches one value per sample, so it runs sequentially. */
int nn_nll_forward(nn_ctx *ctx, const nn_tensor *input, const int32_t *target,
                   const nn_class_loss_opts *o, nn_tensor **out,
                   nn_error *err) {
  int64_t N, C;
  (void)ctx;
  if (!o) o = &default_class_opts;
  if (check_class_args(input, target, o, 0, &N, &C, err)) return -1;
  const float *x = nn_data(input);
  const float *w = o->weight ? nn_data(o->weight) : NULL;
  double *loss = alloc_doubles(N, err);
  if (!loss) return -1;
  for (int64_t i = 0; i < N; i++)
    loss[i] = target[i] == o->ignore_index
                  ? 0.0
                  : -class_weight(w, target[i]) * (double)x[i * C + target[i]];
  int rc;
  if (o->reduction == NN_REDUCTION_NONE) {
    rc = new_vector(loss, N, out, err);
  } else {
    double s = sum_doubles(loss, N);
    if (o->reduction == NN_REDUCTION_MEAN)
      s /= target_weight_sum(target, N, w, o->ignore_index);
    rc = new_scalar(s, out, err);
  }
  free(loss);
  return rc;
}

int nn_nll_backward(nn_ctx *ctx, const nn_tensor *input, const int32_t *target,
                    const nn_class_loss_opts *o, const nn_tensor *gout,
                    nn_tensor **gin, nn_error *err) {
  int64_t N, C;
  if (!o) o = &default_class_opts;
  if (check_class_args(input, target, o, 0, &N, &C, err)) return -1;
  if (check_gout(gout, o->reduction, 1, &N, err)) return -1;
  nn_tensor *g = nn_tensor_empty(2, input->shape, err);
  if (!g) return -1;
  const float *w = o->weight ? nn_data(o->weight) : NULL;
  const float *gv = gout ? nn_data(gout) : NULL;
  float *gx = nn_data(g);
  const nn_reduction red = o->reduction;
  double scale = gout_scalar(gout, red);
  if (red == NN_REDUCTION_MEAN)
    scale /= target_weight_sum(target, N, w, o->ignore_index);

#pragma omp parallel for num_threads(ctx->num_threads) \
    schedule(static) if (N * C > PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    float *grow = gx + i * C;
    for (int64_t c = 0; c < C; c++) grow[c] = 0.0f;
    int32_t t = target[i];
    if (t == o->ignore_index) continue;
    double si = red == NN_REDUCTION_NONE && gv ? (double)gv[i] : scale;
    grow[t] = (float)(-class_weight(w, t) * si);
  }
  *gin = g;
  return 0;
}

/* ---- pointwise losses ------------------------------------------------- */

static double mse_loss(double x, double y) { return (x - y) * (x - y); }
static double mse_grad(double x, double y) { return 2.0 * (x - y); }

static double l1_loss(double x, double y) { return fabs(x - y); }
static double l1_grad(double x, double y) { return (x > y) - (x < y); }

/* As PyTorch: each log is clamped at -100, and the gradient's denominator
 * x (1 - x) at 1e-12. */
static double bce_loss(double x, double y) {
  return (y - 1.0) * fmax(log1p(-x), -100.0) - y * fmax(log(x), -100.0);
}
static double bce_grad(double x, double y) {
  return (x - y) / fmax((1.0 - x) * x, 1e-12);
}

static double bce_logits_loss(double x, double y) {
  return fmax(x, 0.0) - x * y + log1p(exp(-fabs(x)));
}
static double bce_logits_grad(double x, double y) {
  return 1.0 / (1.0 + exp(-x)) - y;
}

typedef struct pointwise_ops {
  double (*loss)(double x, double y);
  double (*grad)(double x, double y); /* d loss / dx */
  int weighted;                       /* accepts a weight tensor */
} pointwise_ops;

static const pointwise_ops pointwise_table[] = {
    [NN_LOSS_MSE] = {mse_loss, mse_grad, 0},
    [NN_LOSS_L1] = {l1_loss, l1_grad, 0},
    [NN_LOSS_BCE] = {bce_loss, bce_grad, 1},
    [NN_LOSS_BCE_WITH_LOGITS] = {bce_logits_loss, bce_logits_grad, 1},
};

/* Writes "[2][3]" (1-based) for flat index i of shape into buf. */
static void index_str(const nn_tensor *t, int64_t i, char *buf, size_t n) {
  int64_t idx[NN_MAX_DIMS];
  for (int d = t->ndim - 1; d >= 0; d--) {
    idx[d] = t->shape[d] > 0 ? i % t->shape[d] : 0;
    i = t->shape[d] > 0 ? i / t->shape[d] : 0;
  }
  size_t k = 0;
  buf[0] = '\0';
  for (int d = 0; d < t->ndim && k < n; d++)
    k += (size_t)snprintf(buf + k, n - k, "[%lld]", (long long)idx[d] + 1);
}

/* Checks kind, shapes and reduction; for BCE also that x is in [0, 1]. */
static int check_pointwise_args(nn_pointwise_loss kind, const nn_tensor *input,
                                const nn_tensor *target,
                                const nn_tensor *weight, nn_reduction r,
                                nn_error *err) {
  char want[160], got[160];
  if ((int)kind < 0 ||
      (int)kind >= (int)(sizeof pointwise_table / sizeof pointwise_table[0]))
    return nn_seterr(err, "unknown pointwise loss %d", (int)kind);
  if (check_reduction(r, err)) return -1;
  nn_tensor_shape_str(input, want, sizeof want);
  if (!nn_tensor_same_shape(target, input)) {
    nn_tensor_shape_str(target, got, sizeof got);
    return nn_seterr(err, "expected target of shape %s (as input), got %s",
                     want, got);
  }
  if (weight && !pointwise_table[kind].weighted)
    return nn_seterr(err, "this loss takes no weight");
  if (weight && !nn_tensor_same_shape(weight, input)) {
    nn_tensor_shape_str(weight, got, sizeof got);
    return nn_seterr(err, "expected weight of shape %s (as input), got %s",
                     want, got);
  }
  if (check_contiguous(input, "input", err) ||
      check_contiguous(target, "target", err) ||
      (weight && check_contiguous(weight, "weight", err)))
    return -1;
  if (kind == NN_LOSS_BCE) {
    const float *x = nn_data(input);
    int64_t n = nn_tensor_numel(input);
    for (int64_t i = 0; i < n; i++) {
      if (x[i] >= 0.0f && x[i] <= 1.0f) continue;
      index_str(input, i, got, sizeof got);
      return nn_seterr(err,
                       "input%s = %g is outside [0, 1] (BCE takes "
                       "probabilities; use BCEWithLogits for logits)",
                       got, (double)x[i]);
    }
  }
  return 0;
}

int nn_pointwise_loss_forward(nn_ctx *ctx, nn_pointwise_loss kind,
                              const nn_tensor *input, const nn_tensor *target,
                              const nn_tensor *weight, nn_reduction reduction,
                              nn_tensor **out, nn_error *err) {
  if (check_pointwise_args(kind, input, target, weight, reduction, err))
    return -1;
  const pointwise_ops *op = &pointwise_table[kind];
  const float *x = nn_data(input), *y = nn_data(target);
  const float *w = weight ? nn_data(weight) : NULL;
  const int64_t n = nn_tensor_numel(input);

  if (reduction == NN_REDUCTION_NONE) {
    nn_tensor *t = nn_tensor_empty(input->ndim, input->shape, err);
    if (!t) return -1;
    float *l = nn_data(t);
#pragma omp parallel for num_threads(ctx->num_threads) \
    schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
      double v = op->loss(x[i], y[i]);
      l[i] = (float)(w ? v * w[i] : v);
    }
    *out = t;
    return 0;
  }

  const int64_t nblocks = (n + SUM_BLOCK - 1) / SUM_BLOCK;
  double *part = alloc_doubles(nblocks, err);
  if (!part) return -1;
#pragma omp parallel for num_threads(ctx->num_threads) \
    schedule(static) if (n > PAR_MIN)
  for (int64_t b = 0; b < nblocks; b++) {
    int64_t end = (b + 1) * SUM_BLOCK < n ? (b + 1) * SUM_BLOCK : n;
    double s = 0.0;
    for (int64_t i = b * SUM_BLOCK; i < end; i++) {
      double v = op->loss(x[i], y[i]);
      s += w ? v * w[i] : v;
    }
    part[b] = s;
  }
  double s = sum_doubles(part, nblocks);
  free(part);
  if (reduction == NN_REDUCTION_MEAN) s /= (double)n;
  return new_scalar(s, out, err);
}

int nn_pointwise_loss_backward(nn_ctx *ctx, nn_pointwise_loss kind,
                               const nn_tensor *input, const nn_tensor *target,
                               const nn_tensor *weight, nn_reduction reduction,
                               const nn_tensor *gout, nn_tensor **gin,
                               nn_error *err) {
  if (check_pointwise_args(kind, input, target, weight, reduction, err) ||
      check_gout(gout, reduction, input->ndim, input->shape, err))
    return -1;
  nn_tensor *g = nn_tensor_empty(input->ndim, input->shape, err);
  if (!g) return -1;
  const pointwise_ops *op = &pointwise_table[kind];
  const float *x = nn_data(input), *y = nn_data(target);
  const float *w = weight ? nn_data(weight) : NULL;
  const float *gv =
      gout && reduction == NN_REDUCTION_NONE ? nn_data(gout) : NULL;
  float *gx = nn_data(g);
  const int64_t n = nn_tensor_numel(input);
  double scale = gout_scalar(gout, reduction);
  if (reduction == NN_REDUCTION_MEAN) scale /= (double)n;

#pragma omp parallel for num_threads(ctx->num_threads) \
    schedule(static) if (n > PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    double v = op->grad(x[i], y[i]) * (gv ? (double)gv[i] : scale);
    gx[i] = (float)(w ? v * w[i] : v);
  }
  *gin = g;
  return 0;
}
