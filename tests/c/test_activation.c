/* test_activation.c - activations, (log-)softmax, Dropout and Flatten:
 * reference values from PyTorch 1.13, finite-difference gradients, thread
 * agreement, dropout statistics and error cases. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/activation.h"
#include "../../runtime/context.h"
#include "../../runtime/layer.h"
#include "check.h"

/* Reference values: PyTorch 1.13 on x[i] = 3 sin(0.9 i + 0.2) - 0.1 i (with
 * x[5] = 0) and grad_output[i] = cos(0.23 i - 0.4), float32.  LeakyReLU has
 * slope 0.2 and ELU alpha 0.7.  Softmax and LogSoftmax use the same formula
 * for x of shape [2, 3, 4]. */
static const float act_x[12] = {
    0.596008f, 2.573622f, 2.5278924f, 0.41774797f, -2.2355738f, 0.0f,
    -2.4937999f, -0.054640036f, 1.8961242f, 1.8065155f, -0.33133027f,
    -2.9752119f};
static const float relu_y[12] = {
    0.596008f, 2.573622f, 2.5278924f, 0.41774797f, 0.0f, 0.0f, 0.0f, 0.0f,
    1.8961242f, 1.8065155f, 0.0f, 0.0f};
static const float relu_gx[12] = {
    0.92106098f, 0.9855848f, 0.99820054f, 0.95824385f, 0.0f, 0.0f, 0.0f, 0.0f,
    0.13042371f, -0.099041037f, 0.0f, 0.0f};
static const float leaky_y[12] = {
    0.596008f, 2.573622f, 2.5278924f, 0.41774797f, -0.44711477f, 0.0f,
    -0.49875998f, -0.010928008f, 1.8961242f, 1.8065155f, -0.066266052f,
    -0.59504241f};
static const float leaky_gx[12] = {
    0.92106098f, 0.9855848f, 0.99820054f, 0.95824385f, 0.17356384f,
    0.14633778f, 0.11140452f, 0.070603877f, 0.13042371f, -0.099041037f,
    -0.064657919f, -0.10610227f};
static const float sigmoid_y[12] = {
    0.64474249f, 0.92914444f, 0.92607421f, 0.60294425f, 0.096601129f, 0.5f,
    0.076293975f, 0.48634335f, 0.86945224f, 0.85894024f, 0.41791695f,
    0.048558362f};
static const float sigmoid_gx[12] = {
    0.21096866f, 0.064886019f, 0.068337575f, 0.22940595f, 0.075734019f,
    0.18292221f, 0.039255165f, 0.088188998f, 0.014803749f, -0.012f,
    -0.078644194f, -0.02450986f};
static const float tanh_y[12] = {
    0.53420287f, 0.9884364f, 0.98733598f, 0.39503154f, -0.97739017f, 0.0f,
    -0.98644841f, -0.054585725f, 0.95590442f, 0.94747663f, -0.31971559f,
    -0.99480408f};
static const float tanh_gx[12] = {
    0.65821528f, 0.022662025f, 0.025122374f, 0.80870998f, 0.038798857f,
    0.73168886f, 0.014994792f, 0.35196754f, 0.011248618f, -0.010130714f,
    -0.29024354f, -0.0054986617f};
static const float elu_y[12] = {
    0.596008f, 2.573622f, 2.5278924f, 0.41774797f, -0.62514848f, 0.0f,
    -0.64218313f, -0.037221853f, 1.8961242f, 1.8065155f, -0.1974224f,
    -0.66427439f};
static const float elu_gx[12] = {
    0.92106098f, 0.9855848f, 0.99820054f, 0.95824385f, 0.064957596f,
    0.51218218f, 0.032205295f, 0.23397353f, 0.13042371f, -0.099041037f,
    -0.16247809f, -0.018952852f};
static const float gelu_y[12] = {
    0.43175724f, 2.5606713f, 2.5133886f, 0.27652168f, -0.028368982f, 0.0f,
    -0.015758809f, -0.026129549f, 1.8411902f, 1.7425307f, -0.12265769f,
    -0.0043557379f};
static const float gelu_gx[12] = {
    0.85059458f, 1.0175117f, 1.0337081f, 0.78064865f, -0.052589726f,
    0.36584443f, -0.021208551f, 0.16113459f, 0.14299168f, -0.10949382f,
    -0.079230487f, 0.006756193f};
static const float softmax_y[24] = {
    0.062638156f, 0.45259082f, 0.43236011f, 0.052410889f, 0.091663592f,
    0.025891878f, 0.070802838f, 0.81164169f, 0.49267051f, 0.45044315f,
    0.053111114f, 0.0037753934f, 0.0038143261f, 0.010851723f, 0.12562037f,
    0.85971355f, 0.88848358f, 0.1019564f, 0.0073215533f, 0.0022385295f,
    0.0064299707f, 0.075111315f, 0.49984819f, 0.41861063f};
static const float softmax_gx[24] = {
    -0.0040403944f, 9.0910853e-06f, 0.0054632276f, -0.0014319107f,
    0.040640239f, 0.0079548294f, 0.0093860729f, -0.057981126f, 0.064024165f,
    -0.044824246f, -0.017195253f, -0.0020046649f, 0.0010582744f, 0.0014709383f,
    0.0048372163f, -0.0073664263f, -0.0069052139f, 0.0050736531f,
    0.0011453193f, 0.00068636646f, -0.0033047711f, -0.022710178f,
    -0.038022373f, 0.064037323f};
static const float logsoftmax_y[24] = {
    -2.7703807f, -0.79276681f, -0.83849645f, -2.9486408f, -2.3896301f,
    -3.653826f, -2.6478562f, -0.20869634f, -0.70791471f, -0.7975235f,
    -2.935369f, -5.5792508f, -5.5689912f, -4.5234313f, -2.0744908f,
    -0.15115599f, -0.1182391f, -2.28321f, -4.9169326f, -6.1019359f,
    -5.0467854f, -2.588784f, -0.69345087f, -0.87081409f};
static const float logsoftmax_gx[24] = {
    0.67908418f, -0.76281428f, -0.67204553f, 0.75577587f, 0.63778484f,
    0.66671187f, 0.37933931f, -1.6838361f, 0.53560489f, 0.2714116f,
    -0.27961004f, -0.52740639f, -0.69641942f, -0.81364459f, -0.50830501f,
    2.018369f, 2.0531731f, -0.58363789f, -0.801153f, -0.66838181f,
    -0.48611605f, -0.23023419f, 0.26983607f, 0.44651422f};

static nn_ctx ctx;

static void fill_x(float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    x[i] = (float)(sin(0.9 * (double)i + 0.2) * 3.0 - 0.1 * (double)i);
}

static void fill_gy(float *g, int64_t n) {
  for (int64_t i = 0; i < n; i++) g[i] = (float)cos(0.23 * (double)i - 0.4);
}

/* Uniform values in [lo, hi) from a fixed-seed context. */
static void fill_rand(float *x, int64_t n, float lo, float hi,
                      uint64_t seed) {
  nn_ctx c;
  nn_ctx_init(&c);
  nn_rng_seed(&c.rng, seed);
  nn_fill_uniform(&c, x, n, lo, hi);
}

static nn_tensor *tensor(int ndim, const int64_t *shape) {
  nn_tensor *t = nn_tensor_new(ndim, shape, NULL);
  CHECK(t != NULL);
  return t;
}

static void check_array(const float *got, const float *want, int64_t n,
                        double tol) {
  for (int64_t i = 0; i < n; i++) CHECK_NEAR(got[i], want[i], tol);
}

static nn_layer *new_act(nn_act_kind kind, float param) {
  nn_error err;
  nn_layer *l = nn_activation_new(&ctx, kind, param, &err);
  CHECK(l != NULL);
  return l;
}

static void check_repr(const nn_layer *l, const char *type, const char *repr) {
  char buf[128];
  CHECK(strcmp(l->ops->type, type) == 0);
  l->ops->extra_repr(l, buf, sizeof buf);
  CHECK(strcmp(buf, repr) == 0);
}

static void test_names(void) {
  static const struct {
    nn_act_kind kind;
    float param;
    const char *type, *repr;
  } cases[] = {
      {NN_ACT_RELU, 0, "ReLU", ""},
      {NN_ACT_LEAKY_RELU, 0.01f, "LeakyReLU", "negative_slope=0.01"},
      {NN_ACT_LEAKY_RELU, 0.2f, "LeakyReLU", "negative_slope=0.2"},
      {NN_ACT_SIGMOID, 0, "Sigmoid", ""},
      {NN_ACT_TANH, 0, "Tanh", ""},
      {NN_ACT_ELU, 1.0f, "ELU", "alpha=1.0"},
      {NN_ACT_ELU, 0.5f, "ELU", "alpha=0.5"},
      {NN_ACT_GELU, 0, "GELU", "approximate='none'"},
      {NN_ACT_SOFTMAX, 0, "Softmax", "dim=-1"},
      {NN_ACT_LOG_SOFTMAX, 0, "LogSoftmax", "dim=-1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    nn_layer *l = new_act(cases[i].kind, cases[i].param);
    check_repr(l, cases[i].type, cases[i].repr);
    CHECK(l->nparams == 0 && l->nbuffers == 0);
    nn_layer_free(l);
  }
  nn_error err;
  CHECK(nn_activation_new(&ctx, (nn_act_kind)42, 0, &err) == NULL);
  CHECK(strstr(err.msg, "42") != NULL);
}

static void test_float_repr(void) {
  static const struct {
    float v;
    const char *s;
  } cases[] = {{1e-5f, "1e-05"},    {0.1f, "0.1"},     {1.0f, "1.0"},
               {0.001f, "0.001"},   {100.0f, "100.0"}, {1e-4f, "0.0001"},
               {1.5e-7f, "1.5e-07"}, {0.0f, "0.0"},    {0.3f, "0.3"},
               {-2.5f, "-2.5"},     {1e16f, "1e+16"},  {0.999f, "0.999"}};
  char buf[48];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    nn_float_repr(cases[i].v, buf, sizeof buf);
    CHECK(strcmp(buf, cases[i].s) == 0);
  }
}

/* Forward and backward of one layer on x; compares with the references. */
static void check_layer(nn_layer *l, int ndim, const int64_t *shape,
                        const float *x_ref, const float *y_ref,
                        const float *gx_ref) {
  nn_tensor *x = tensor(ndim, shape), *gy = tensor(ndim, shape), *y, *gx;
  int64_t n = nn_tensor_numel(x);
  memcpy(nn_data(x), x_ref, (size_t)n * sizeof(float));
  fill_gy(nn_data(gy), n);
  nn_error err;
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_tensor_same_shape(y, x));
  check_array(nn_data(y), y_ref, n, 1e-6);
  CHECK(nn_layer_backward(l, x, gy, &gx, &err) == 0);
  CHECK(nn_tensor_same_shape(gx, x));
  check_array(nn_data(gx), gx_ref, n, 1e-6);
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_tensor_release(x);
  nn_tensor_release(gy);
}

static void test_elementwise_reference(void) {
  static const struct {
    nn_act_kind kind;
    float param;
    const float *y, *gx;
  } cases[] = {
      {NN_ACT_RELU, 0, relu_y, relu_gx},
      {NN_ACT_LEAKY_RELU, 0.2f, leaky_y, leaky_gx},
      {NN_ACT_SIGMOID, 0, sigmoid_y, sigmoid_gx},
      {NN_ACT_TANH, 0, tanh_y, tanh_gx},
      {NN_ACT_ELU, 0.7f, elu_y, elu_gx},
      {NN_ACT_GELU, 0, gelu_y, gelu_gx},
  };
  float x[12];
  fill_x(x, 12);
  x[5] = 0.0f;
  check_array(x, act_x, 12, 0.0);
  int64_t shape[2] = {3, 4};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    nn_layer *l = new_act(cases[i].kind, cases[i].param);
    check_layer(l, 2, shape, x, cases[i].y, cases[i].gx);
    nn_layer_free(l);
  }
}

static void test_softmax_reference(void) {
  float x[24];
  fill_x(x, 24);
  int64_t shape[3] = {2, 3, 4};
  nn_layer *l = new_act(NN_ACT_SOFTMAX, 0);
  check_layer(l, 3, shape, x, softmax_y, softmax_gx);
  nn_layer_free(l);
  l = new_act(NN_ACT_LOG_SOFTMAX, 0);
  check_layer(l, 3, shape, x, logsoftmax_y, logsoftmax_gx);
  nn_layer_free(l);
}

/* Large logits, a single row, a scalar and a row sum of 1. */
static void test_softmax_stable(void) {
  nn_error err;
  int64_t s1 = 3;
  nn_tensor *x = tensor(1, &s1), *y;
  float big[3] = {1000.0f, 1001.0f, 1002.0f};
  memcpy(nn_data(x), big, sizeof big);
  nn_layer *sm = new_act(NN_ACT_SOFTMAX, 0), *lsm = new_act(NN_ACT_LOG_SOFTMAX, 0);
  CHECK(nn_layer_forward(sm, x, &y, &err) == 0);
  check_array(nn_data(y), (const float[]){0.09003057f, 0.24472847f, 0.66524096f},
              3, 1e-6);
  nn_tensor_release(y);
  CHECK(nn_layer_forward(lsm, x, &y, &err) == 0);
  check_array(nn_data(y), (const float[]){-2.4076059f, -1.4076059f, -0.4076059f},
              3, 1e-5);
  nn_tensor_release(y);
  nn_tensor_release(x);

  x = tensor(0, NULL);
  nn_data(x)[0] = 5.0f;
  CHECK(nn_layer_forward(sm, x, &y, &err) == 0);
  CHECK(y->ndim == 0 && nn_data(y)[0] == 1.0f);
  nn_tensor_release(y);
  CHECK(nn_layer_forward(lsm, x, &y, &err) == 0);
  CHECK(nn_data(y)[0] == 0.0f);
  nn_tensor_release(y);
  nn_tensor_release(x);

  int64_t s2[2] = {7, 33};
  x = tensor(2, s2);
  fill_rand(nn_data(x), 7 * 33, -20.0f, 20.0f, 5);
  CHECK(nn_layer_forward(sm, x, &y, &err) == 0);
  for (int r = 0; r < 7; r++) {
    double s = 0;
    for (int j = 0; j < 33; j++) s += nn_data(y)[r * 33 + j];
    CHECK_NEAR(s, 1.0, 1e-5);
  }
  nn_tensor_release(y);
  nn_tensor_release(x);

  int64_t s0[2] = {2, 0};
  x = tensor(2, s0);
  CHECK(nn_layer_forward(sm, x, &y, &err) == 0);
  CHECK(nn_tensor_has_shape(y, 2, s0));
  nn_tensor_release(y);
  nn_tensor_release(x);
  nn_layer_free(sm);
  nn_layer_free(lsm);
}

/* sum(r * layer(x)), accumulated in double. */
static double proj_loss(nn_layer *l, nn_tensor *x, const float *r) {
  nn_tensor *y;
  nn_error err;
  if (nn_layer_forward(l, x, &y, &err)) return NAN;
  double s = 0.0;
  int64_t n = nn_tensor_numel(y);
  for (int64_t i = 0; i < n; i++) s += (double)r[i] * nn_data(y)[i];
  nn_tensor_release(y);
  return s;
}

/* Finite-difference check of grad_input against central differences of a
 * random projection; inputs are kept away from the kinks at 0. */
static void gradcheck(nn_act_kind kind, float param) {
  nn_layer *l = new_act(kind, param);
  int64_t shape[2] = {3, 5};
  nn_tensor *x = tensor(2, shape), *r = tensor(2, shape), *gx;
  fill_rand(nn_data(x), 15, -3.0f, 3.0f, 41 + (uint64_t)kind);
  fill_rand(nn_data(r), 15, -1.0f, 1.0f, 61 + (uint64_t)kind);
  float *xd = nn_data(x);
  for (int i = 0; i < 15; i++)
    if (fabsf(xd[i]) < 0.1f) xd[i] = xd[i] < 0 ? -0.1f : 0.1f;
  nn_error err;
  CHECK(nn_layer_backward(l, x, r, &gx, &err) == 0);
  const double h = 1e-2;
  for (int i = 0; i < 15; i++) {
    float keep = xd[i];
    xd[i] = keep + (float)h;
    double lp = proj_loss(l, x, nn_data(r));
    xd[i] = keep - (float)h;
    double lm = proj_loss(l, x, nn_data(r));
    xd[i] = keep;
    CHECK_NEAR(nn_data(gx)[i], (lp - lm) / (2.0 * h), 1e-3);
  }
  nn_tensor_release(gx);
  nn_tensor_release(x);
  nn_tensor_release(r);
  nn_layer_free(l);
}

static void test_gradcheck(void) {
  gradcheck(NN_ACT_RELU, 0);
  gradcheck(NN_ACT_LEAKY_RELU, 0.01f);
  gradcheck(NN_ACT_LEAKY_RELU, 0.3f);
  gradcheck(NN_ACT_SIGMOID, 0);
  gradcheck(NN_ACT_TANH, 0);
  gradcheck(NN_ACT_ELU, 1.0f);
  gradcheck(NN_ACT_ELU, 0.5f);
  gradcheck(NN_ACT_GELU, 0);
  gradcheck(NN_ACT_SOFTMAX, 0);
  gradcheck(NN_ACT_LOG_SOFTMAX, 0);
}

/* ReLU's gradient at exactly 0 is 0, as in PyTorch. */
static void test_relu_at_zero(void) {
  float x[2] = {0.0f, -0.0f}, gy[2] = {1.0f, 1.0f}, gx[2];
  nn_relu_backward(&ctx, x, gy, gx, 2);
  CHECK(gx[0] == 0.0f && gx[1] == 0.0f);
  nn_leaky_relu_backward(&ctx, x, gy, gx, 2, 0.25f);
  CHECK(gx[0] == 0.25f && gx[1] == 0.25f);
}

static void run_act(int threads, nn_act_kind kind, float param, float *out,
                    int64_t rows, int64_t cols) {
  nn_ctx c;
  nn_ctx_init(&c);
  nn_ctx_set_threads(&c, threads);
  nn_error err;
  nn_layer *l = nn_activation_new(&c, kind, param, &err);
  int64_t shape[2] = {rows, cols}, n = rows * cols;
  nn_tensor *x = tensor(2, shape), *gy = tensor(2, shape), *y, *gx;
  fill_rand(nn_data(x), n, -6.0f, 6.0f, 71);
  fill_rand(nn_data(gy), n, -1.0f, 1.0f, 72);
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_layer_backward(l, x, gy, &gx, &err) == 0);
  memcpy(out, nn_data(y), (size_t)n * sizeof(float));
  memcpy(out + n, nn_data(gx), (size_t)n * sizeof(float));
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_tensor_release(x);
  nn_tensor_release(gy);
  nn_layer_free(l);
}

static void test_threads_agree(void) {
  const int64_t rows = 200, cols = 250, n = rows * cols;
  float *a = malloc(2 * (size_t)n * sizeof(float));
  float *b = malloc(2 * (size_t)n * sizeof(float));
  for (int k = NN_ACT_RELU; k <= NN_ACT_LOG_SOFTMAX; k++) {
    run_act(1, (nn_act_kind)k, 0.1f, a, rows, cols);
    run_act(2, (nn_act_kind)k, 0.1f, b, rows, cols);
    CHECK(memcmp(a, b, 2 * (size_t)n * sizeof(float)) == 0);
  }
  free(a);
  free(b);
}

static void test_act_errors(void) {
  nn_layer *l = new_act(NN_ACT_TANH, 0);
  int64_t s[2] = {2, 3}, t[2] = {3, 2};
  nn_tensor *x = tensor(2, s), *g = tensor(2, t), *gx = NULL;
  nn_error err;
  CHECK(nn_layer_backward(l, x, g, &gx, &err) == -1 && gx == NULL);
  CHECK(strstr(err.msg, "[2, 3]") && strstr(err.msg, "[3, 2]"));
  nn_tensor_release(x);
  nn_tensor_release(g);
  nn_layer_free(l);
}

/* The in-place backward of every elementwise activation writes, over gy,
 * exactly what backward returns; (log-)softmax, mismatched shapes and a gy
 * sharing x's memory are refused, leaving gy alone. */
static void test_backward_inplace(void) {
  static const struct {
    nn_act_kind kind;
    float param;
  } kinds[] = {{NN_ACT_RELU, 0},    {NN_ACT_LEAKY_RELU, 0.2f},
               {NN_ACT_SIGMOID, 0}, {NN_ACT_TANH, 0},
               {NN_ACT_ELU, 0.7f},  {NN_ACT_GELU, 0}};
  int64_t s[2] = {300, 70}, n = s[0] * s[1], t[2] = {70, 300};
  size_t bytes = (size_t)n * sizeof(float);
  nn_tensor *x = tensor(2, s), *gy = tensor(2, s), *g = tensor(2, s), *gx;
  fill_rand(nn_data(x), n, -4.0f, 4.0f, 81);
  for (int64_t i = 0; i < n; i += 7) nn_data(x)[i] = 0.0f;
  fill_rand(nn_data(gy), n, -1.0f, 1.0f, 82);
  nn_error err;
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    nn_layer *l = new_act(kinds[k].kind, kinds[k].param);
    CHECK(nn_layer_backward(l, x, gy, &gx, &err) == 0);
    memcpy(nn_data(g), nn_data(gy), bytes);
    CHECK(nn_activation_backward_inplace(l, x, g, &err) == 0);
    CHECK(memcmp(nn_data(g), nn_data(gx), bytes) == 0);
    nn_tensor_release(gx);
    nn_layer_free(l);
  }
  memcpy(nn_data(g), nn_data(gy), bytes);
  nn_layer *sm = new_act(NN_ACT_SOFTMAX, 0), *relu = new_act(NN_ACT_RELU, 0);
  CHECK(nn_activation_backward_inplace(sm, x, g, &err) == -1);
  CHECK(strstr(err.msg, "elementwise activation, got Softmax") != NULL);
  nn_tensor *xt = nn_tensor_reshape(x, 2, t, &err);
  CHECK(nn_activation_backward_inplace(relu, xt, g, &err) == -1);
  CHECK(strstr(err.msg, "[70, 300]") && strstr(err.msg, "[300, 70]"));
  CHECK(nn_activation_backward_inplace(relu, x, x, &err) == -1);
  CHECK(strstr(err.msg, "share memory") != NULL);
  CHECK(memcmp(nn_data(g), nn_data(gy), bytes) == 0);
  nn_tensor_release(xt);
  nn_tensor_release(x);
  nn_tensor_release(gy);
  nn_tensor_release(g);
  nn_layer_free(sm);
  nn_layer_free(relu);
}

/* ---- Dropout ---- */

static nn_layer *new_dropout(nn_ctx *c, float p) {
  nn_error err;
  nn_layer *l = nn_dropout_new(c, p, &err);
  CHECK(l != NULL);
  return l;
}

static void test_dropout_construct(void) {
  nn_layer *l = new_dropout(&ctx, 0.5f);
  check_repr(l, "Dropout", "p=0.5, inplace=False");
  nn_layer_free(l);
  l = new_dropout(&ctx, 0.2f);
  check_repr(l, "Dropout", "p=0.2, inplace=False");
  nn_layer_free(l);
  nn_error err;
  CHECK(nn_dropout_new(&ctx, 1.5f, &err) == NULL);
  CHECK(strstr(err.msg, "between 0 and 1") && strstr(err.msg, "1.5"));
  CHECK(nn_dropout_new(&ctx, -0.1f, &err) == NULL);
  CHECK(nn_dropout_new(&ctx, NAN, &err) == NULL);
}

/* Fraction kept, scaling, and the backward using the forward's mask. */
static void test_dropout_train(void) {
  const float p = 0.3f, scale = 1.0f / (1.0f - p);
  nn_layer *l = new_dropout(&ctx, p);
  int64_t shape[2] = {1000, 100}, n = 100000;
  nn_tensor *x = tensor(2, shape), *gy = tensor(2, shape), *y, *gx;
  nn_tensor_fill_(x, 1.0f);
  fill_rand(nn_data(gy), n, -1.0f, 1.0f, 81);
  nn_error err;
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_layer_backward(l, x, gy, &gx, &err) == 0);
  int64_t kept = 0, bad = 0;
  double sum = 0;
  for (int64_t i = 0; i < n; i++) {
    float v = nn_data(y)[i], g = nn_data(gx)[i];
    sum += v;
    if (v != 0.0f) {
      kept++;
      if (v != scale || g != nn_data(gy)[i] * scale) bad++;
    } else if (g != 0.0f) {
      bad++;
    }
  }
  CHECK(bad == 0);
  CHECK_NEAR((double)kept / n, 1.0 - p, 0.01);
  CHECK_NEAR(sum / n, 1.0, 0.02);

  /* A second forward draws a new mask. */
  nn_tensor *y2;
  float *first = malloc((size_t)n * sizeof(float));
  memcpy(first, nn_data(y), (size_t)n * sizeof(float));
  nn_tensor_release(y);
  CHECK(nn_layer_forward(l, x, &y2, &err) == 0);
  CHECK(memcmp(first, nn_data(y2), (size_t)n * sizeof(float)) != 0);
  free(first);
  nn_tensor_release(y2);
  nn_tensor_release(gx);
  nn_tensor_release(x);
  nn_tensor_release(gy);
  nn_layer_free(l);
}

static void test_dropout_eval_and_extremes(void) {
  int64_t shape[2] = {4, 5};
  nn_tensor *x = tensor(2, shape), *y, *gx;
  fill_rand(nn_data(x), 20, -1.0f, 1.0f, 91);
  nn_error err;
  nn_layer *l = new_dropout(&ctx, 0.5f);
  l->training = 0;
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(memcmp(nn_data(y), nn_data(x), 20 * sizeof(float)) == 0);
  CHECK(nn_layer_backward(l, x, x, &gx, &err) == 0);
  CHECK(memcmp(nn_data(gx), nn_data(x), 20 * sizeof(float)) == 0);
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_layer_free(l);

  l = new_dropout(&ctx, 0.0f);
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(memcmp(nn_data(y), nn_data(x), 20 * sizeof(float)) == 0);
  nn_tensor_release(y);
  nn_layer_free(l);

  l = new_dropout(&ctx, 1.0f);
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_layer_backward(l, x, x, &gx, &err) == 0);
  for (int i = 0; i < 20; i++)
    CHECK(nn_data(y)[i] == 0.0f && nn_data(gx)[i] == 0.0f);
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_layer_free(l);

  /* Backward needs the mask of a forward of the same shape. */
  l = new_dropout(&ctx, 0.5f);
  CHECK(nn_layer_backward(l, x, x, &gx, &err) == -1);
  CHECK(strstr(err.msg, "before forward") != NULL);
  int64_t other[2] = {5, 4};
  nn_tensor *x2 = tensor(2, other);
  CHECK(nn_layer_forward(l, x2, &y, &err) == 0);
  nn_tensor_release(y);
  CHECK(nn_layer_backward(l, x, x, &gx, &err) == -1);
  CHECK(strstr(err.msg, "[5, 4]") && strstr(err.msg, "[4, 5]"));
  CHECK(nn_layer_backward(l, x2, x, &gx, &err) == -1);
  CHECK(strstr(err.msg, "[5, 4]") && strstr(err.msg, "[4, 5]"));
  nn_tensor_release(x2);
  nn_tensor_release(x);
  nn_layer_free(l);
}

/* The mask depends only on the seed, not on the thread count. */
static void dropout_mask(int threads, uint64_t seed, float *out, int64_t n) {
  nn_ctx c;
  nn_ctx_init(&c);
  nn_ctx_set_threads(&c, threads);
  nn_rng_seed(&c.rng, seed);
  nn_layer *l = new_dropout(&c, 0.4f);
  nn_tensor *x = tensor(1, &n), *y;
  nn_tensor_fill_(x, 1.0f);
  nn_error err;
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  memcpy(out, nn_data(y), (size_t)n * sizeof(float));
  nn_tensor_release(y);
  nn_tensor_release(x);
  nn_layer_free(l);
}

static void test_dropout_determinism(void) {
  const int64_t n = 70000;
  float *a = malloc((size_t)n * sizeof(float));
  float *b = malloc((size_t)n * sizeof(float));
  dropout_mask(1, 7, a, n);
  dropout_mask(1, 7, b, n);
  CHECK(memcmp(a, b, (size_t)n * sizeof(float)) == 0);
  dropout_mask(2, 7, b, n);
  CHECK(memcmp(a, b, (size_t)n * sizeof(float)) == 0);
  dropout_mask(2, 8, b, n);
  CHECK(memcmp(a, b, (size_t)n * sizeof(float)) != 0);
  free(a);
  free(b);
}

/* ---- Flatten ---- */

static void test_flatten(void) {
  nn_error err;
  nn_layer *l = nn_flatten_new(&ctx, &err);
  CHECK(l != NULL);
  check_repr(l, "Flatten", "start_dim=1, end_dim=-1");
  int64_t s[3] = {2, 3, 4}, flat[2] = {2, 12};
  nn_tensor *x = tensor(3, s), *y, *gy = tensor(2, flat), *gx;
  fill_x(nn_data(x), 24);
  fill_gy(nn_data(gy), 24);
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_tensor_has_shape(y, 2, flat));
  CHECK(y->storage == x->storage && nn_data(y) == nn_data(x));
  CHECK(nn_layer_backward(l, x, gy, &gx, &err) == 0);
  CHECK(nn_tensor_has_shape(gx, 3, s));
  CHECK(memcmp(nn_data(gx), nn_data(gy), 24 * sizeof(float)) == 0);
  nn_tensor_release(y);
  nn_tensor_release(gx);

  /* grad_output of the wrong shape. */
  CHECK(nn_layer_backward(l, x, x, &gx, &err) == -1);
  CHECK(strstr(err.msg, "[2, 12]") && strstr(err.msg, "[2, 3, 4]"));
  nn_tensor_release(x);
  nn_tensor_release(gy);

  /* 2-D stays as it is; an empty batch works. */
  int64_t s2[2] = {2, 3}, s0[4] = {0, 3, 2, 2}, f0[2] = {0, 12};
  x = tensor(2, s2);
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_tensor_has_shape(y, 2, s2));
  nn_tensor_release(y);
  nn_tensor_release(x);
  x = tensor(4, s0);
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_tensor_has_shape(y, 2, f0));
  nn_tensor_release(y);
  nn_tensor_release(x);

  /* Below 2 dimensions torch.flatten(x, 1) fails, and so do we. */
  int64_t s1 = 5;
  x = tensor(1, &s1);
  y = NULL;
  CHECK(nn_layer_forward(l, x, &y, &err) == -1 && y == NULL);
  CHECK(strstr(err.msg, "[5]") != NULL);
  nn_tensor_release(x);
  x = tensor(0, NULL);
  CHECK(nn_layer_forward(l, x, &y, &err) == -1);
  CHECK(strstr(err.msg, "[]") != NULL);
  nn_tensor_release(x);
  nn_layer_free(l);
}

int main(void) {
  nn_ctx_init(&ctx);
  nn_ctx_set_threads(&ctx, 2);
  RUN(test_names);
  RUN(test_float_repr);
  RUN(test_elementwise_reference);
  RUN(test_softmax_reference);
  RUN(test_softmax_stable);
  RUN(test_gradcheck);
  RUN(test_relu_at_zero);
  RUN(test_threads_agree);
  RUN(test_act_errors);
  RUN(test_backward_inplace);
  RUN(test_dropout_construct);
  RUN(test_dropout_train);
  RUN(test_dropout_eval_and_extremes);
  RUN(test_dropout_determinism);
  RUN(test_flatten);
  return check_report("activation");
}
