/* test_norm.c - BatchNorm1d / BatchNorm2d: reference values from PyTorch
 * 1.13, finite-difference gradients, thread agreement and error cases. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/activation.h"
#include "../../runtime/context.h"
#include "../../runtime/layer.h"
#include "../../runtime/norm.h"
#include "check.h"

/* Reference values: PyTorch 1.13 on x[i] = 1.5 sin(0.37 i + 0.1) + 0.05 i and
 * grad_output[i] = cos(0.23 i - 0.4) (float32, row-major), with weight
 * {1, 0.5, -2} and bias {0.1, -0.2, 0.3}: one training forward/backward
 * (y, grads, running stats after it), then one eval forward/backward. */
static const float bn2d_y_train[24] = {
    0.092727147f, 0.75997972f, 1.32138f, 1.7087357f, 0.15442814f, 0.096623883f,
    -0.15413964f, -0.55699903f, 1.2201067f, 1.9691098f, 2.6314204f, 3.1072383f,
    -1.0902227f, -1.0246475f, -0.72989225f, -0.23805997f, -1.1655977f,
    -0.55155706f, 0.040338624f, 0.5369029f, -1.609527f, -1.8239287f,
    -1.733572f, -1.3608459f};
static const float bn2d_gx_train[24] = {
    1.015632f, 0.48197573f, -0.014997715f, -0.41392243f, 0.82162106f,
    0.71225786f, 0.66333467f, 0.66311425f, -0.51201075f, -0.20079468f,
    0.10644291f, 0.39640567f, 0.21587606f, -0.0072338348f, -0.38751015f,
    -0.88981974f, -0.39644292f, -0.6553784f, -0.85258234f, -0.95592439f,
    0.54559779f, 0.23742895f, -0.1063171f, -0.46675271f};
static const float bn2d_gw_train[3] = {
    6.3311634f, 2.0234127f, 0.4736248f};
static const float bn2d_gb_train[3] = {
    0.35706496f, -0.91607308f, -1.4670161f};
static const float bn2d_rm[3] = {
    0.015606738f, 0.1353524f, 0.11351128f};
static const float bn2d_rv[3] = {
    0.98622459f, 0.92729259f, 1.1028126f};
static const float bn2d_y_eval[24] = {
    0.23507629f, 0.81868631f, 1.3097129f, 1.6485121f, 0.612378f, 0.5830431f,
    0.45578396f, 0.25133815f, -0.47844219f, 0.47168887f, 1.3118484f,
    1.9154365f, -0.79958642f, -0.74223119f, -0.48442468f, -0.054245416f,
    -0.057517562f, 0.25409988f, 0.55447906f, 0.80647892f, -4.0679111f,
    -4.3398857f, -4.2252655f, -3.7524524f};
static const float bn2d_gx_eval[24] = {
    0.92746657f, 0.99243909f, 1.0051426f, 0.964908f, 0.45059726f, 0.37991437f,
    0.28922251f, 0.18329805f, -0.24838977f, 0.188622f, 0.61569959f, 1.0103499f,
    -0.71472883f, -0.85761416f, -0.95533121f, -1.0027337f, -0.51426399f,
    -0.4843902f, -0.42900494f, -0.35102513f, 0.93369347f, 0.53068572f,
    0.099728301f, -0.3364816f};
static const float bn2d_gw_eval[3] = {
    5.5880303f, -0.13199677f, -0.82632393f};
static const float bn2d_gb_eval[3] = {
    0.35706496f, -0.91607308f, -1.4670161f};
static const float bn1d_y_train[12] = {
    -0.80434394f, -0.21617037f, -0.93298417f, 1.2058908f, 0.41951427f,
    -1.8804725f, 0.98380154f, -0.03588691f, 0.61043894f, -0.98534822f,
    -0.967457f, 3.403018f};
static const float bn1d_gx_train[12] = {
    0.74987495f, 0.3459276f, -0.72031569f, 0.20823674f, -0.075813942f,
    0.45486033f, -0.30063894f, -0.16609561f, 0.25779709f, -0.65747291f,
    -0.10401805f, 0.0076581985f};
static const float bn1d_gw_train[3] = {
    0.82654846f, 1.6554701f, 2.2159452f};
static const float bn1d_gb_train[3] = {
    2.3372865f, 1.8831339f, 1.3298018f};
static const float bn1d_rm[3] = {
    0.078122072f, 0.075401947f, 0.06619852f};
static const float bn1d_rv[3] = {
    0.96500826f, 0.97770959f, 1.0080519f};
static const float bn1d_y_eval[12] = {
    0.17291474f, 0.13066819f, -1.9923108f, 1.6018035f, 0.62147015f,
    -2.8418429f, 1.443941f, 0.26986217f, -0.60845476f, 0.044255666f,
    -0.4493883f, 1.8954128f};
static const float bn1d_gx_eval[12] = {
    0.93760651f, 0.49837568f, -1.988402f, 0.97545731f, 0.43882576f,
    -1.4575143f, 0.56702864f, 0.17850953f, -0.25980228f, -0.10082016f,
    -0.1634762f, 1.0567714f};
static const float bn1d_gw_eval[3] = {
    2.2603796f, 2.5705683f, 2.7759531f};
static const float bn1d_gb_eval[3] = {
    2.3372865f, 1.8831339f, 1.3298018f};
static const float bn1d3_y_train[18] = {
    0.082683317f, 0.96305406f, 1.7037635f, 0.26499739f, 0.32612517f,
    0.30255356f, -2.4886389f, -0.91357595f, 1.0158898f, -0.10929889f,
    -0.77939534f, -1.2608067f, -0.74934131f, -0.72557688f, -0.61875802f,
    3.6553113f, 1.4658673f, -0.93485242f};
static const float bn1d3_gx_train[18] = {
    0.92007816f, 0.24637556f, -0.38375074f, 0.072539702f, -0.0077734073f,
    -0.04814779f, -1.0487351f, -1.6062932f, -2.3985517f, -0.46115157f,
    -0.21438956f, -0.10716144f, 0.08326833f, 0.0075095487f, -0.10739641f,
    -0.19525681f, 1.692663f, 3.5561724f};
static const float bn1d3_gw_train[3] = {
    3.4624927f, 5.0094247f, 2.6161749f};
static const float bn1d3_gb_train[3] = {
    1.9520042f, 0.047535181f, -1.8786819f};
static const float bn1d3_rm[3] = {
    0.0483451f, 0.13167222f, 0.21036536f};
static const float bn1d3_rv[3] = {
    0.85566604f, 1.2166686f, 0.78963214f};
static const float bn1d3_y_eval[18] = {
    0.20956042f, 0.83575177f, 1.3626046f, 0.44421265f, 0.5105992f, 0.48499975f,
    -2.3720987f, -1.4864497f, -0.40152183f, 0.073007047f, -0.40362009f,
    -0.74603897f, -0.65738875f, -0.63157994f, -0.51557148f, 1.0826102f,
    -0.14850199f, -1.4984133f};
static const float bn1d3_gx_eval[18] = {
    0.99513632f, 1.0648494f, 1.0784798f, 0.43419167f, 0.3932192f, 0.33153692f,
    -1.2528976f, -0.79403812f, -0.29335895f, -0.10700631f, -0.3492898f,
    -0.57317716f, -0.32161546f, -0.38591132f, -0.42988229f, 2.2398479f,
    2.2277663f, 2.0983543f};
static const float bn1d3_gw_eval[3] = {
    2.700712f, 5.4536157f, 0.43396956f};
static const float bn1d3_gb_eval[3] = {
    1.9520042f, 0.047535181f, -1.8786819f};

static nn_ctx ctx;

static void fill_x(float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    x[i] = (float)(sin(0.37 * (double)i + 0.1) * 1.5 + 0.05 * (double)i);
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

static void zero_grads(nn_layer *l) {
  for (int i = 0; i < l->nparams; i++) nn_tensor_fill_(l->params[i].t->grad, 0);
}

static nn_layer *new_bn(int64_t c, float eps, float mom, int spatial) {
  nn_error err;
  nn_layer *l = nn_batchnorm_new(&ctx, c, eps, mom, spatial, &err);
  CHECK(l != NULL);
  return l;
}

static void set_affine(nn_layer *l) {
  static const float w[3] = {1.0f, 0.5f, -2.0f}, b[3] = {0.1f, -0.2f, 0.3f};
  memcpy(nn_data(nn_layer_param(l, "weight")), w, sizeof w);
  memcpy(nn_data(nn_layer_param(l, "bias")), b, sizeof b);
}

static void test_construct(void) {
  nn_layer *l = new_bn(64, 1e-5f, 0.1f, 1);
  char buf[256];
  CHECK(strcmp(l->ops->type, "BatchNorm2d") == 0);
  l->ops->extra_repr(l, buf, sizeof buf);
  CHECK(strcmp(buf, "64, eps=1e-05, momentum=0.1, affine=True, "
                    "track_running_stats=True") == 0);
  CHECK(l->nparams == 2 && l->nbuffers == 3);
  CHECK(strcmp(l->params[0].name, "weight") == 0);
  CHECK(strcmp(l->params[1].name, "bias") == 0);
  CHECK(strcmp(l->buffers[0].name, "running_mean") == 0);
  CHECK(strcmp(l->buffers[1].name, "running_var") == 0);
  CHECK(strcmp(l->buffers[2].name, "num_batches_tracked") == 0);
  int64_t c64 = 64;
  for (int i = 0; i < 2; i++) {
    CHECK(nn_tensor_has_shape(l->params[i].t, 1, &c64));
    CHECK(l->params[i].t->grad != NULL && l->params[i].t->requires_grad);
  }
  CHECK(nn_tensor_has_shape(l->buffers[0].t, 1, &c64));
  CHECK(nn_tensor_has_shape(l->buffers[1].t, 1, &c64));
  CHECK(l->buffers[2].t->ndim == 0 && nn_tensor_numel(l->buffers[2].t) == 1);
  CHECK(nn_data(l->buffers[2].t)[0] == 0.0f);
  for (int i = 0; i < 64; i++) {
    CHECK(nn_data(l->params[0].t)[i] == 1.0f);
    CHECK(nn_data(l->params[1].t)[i] == 0.0f);
    CHECK(nn_data(l->buffers[0].t)[i] == 0.0f);
    CHECK(nn_data(l->buffers[1].t)[i] == 1.0f);
  }
  nn_layer_free(l);

  l = new_bn(4, 1e-3f, 0.01f, 0);
  CHECK(strcmp(l->ops->type, "BatchNorm1d") == 0);
  l->ops->extra_repr(l, buf, sizeof buf);
  CHECK(strcmp(buf, "4, eps=0.001, momentum=0.01, affine=True, "
                    "track_running_stats=True") == 0);
  nn_layer_free(l);

  nn_error err;
  CHECK(nn_batchnorm_new(&ctx, 0, 1e-5f, 0.1f, 1, &err) == NULL);
  CHECK(strstr(err.msg, "got 0") != NULL);
}

typedef struct ref_case {
  int spatial, ndim;
  int64_t shape[4];
  float eps, momentum;
  const float *y_train, *gx_train, *gw_train, *gb_train, *rm, *rv;
  const float *y_eval, *gx_eval, *gw_eval, *gb_eval;
} ref_case;

static void run_ref_case(const ref_case *rc) {
  nn_layer *l = new_bn(3, rc->eps, rc->momentum, rc->spatial);
  set_affine(l);
  nn_tensor *x = tensor(rc->ndim, rc->shape), *gy = tensor(rc->ndim, rc->shape);
  int64_t n = nn_tensor_numel(x);
  fill_x(nn_data(x), n);
  fill_gy(nn_data(gy), n);
  nn_error err;
  nn_tensor *y, *gx;
  const float *gw = nn_data(nn_layer_param(l, "weight")->grad);
  const float *gb = nn_data(nn_layer_param(l, "bias")->grad);

  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_tensor_same_shape(y, x));
  check_array(nn_data(y), rc->y_train, n, 1e-5);
  check_array(nn_data(nn_layer_buffer(l, "running_mean")), rc->rm, 3, 1e-6);
  check_array(nn_data(nn_layer_buffer(l, "running_var")), rc->rv, 3, 1e-6);
  CHECK(nn_data(nn_layer_buffer(l, "num_batches_tracked"))[0] == 1.0f);
  CHECK(nn_layer_backward(l, x, gy, &gx, &err) == 0);
  check_array(nn_data(gx), rc->gx_train, n, 1e-5);
  check_array(gw, rc->gw_train, 3, 1e-5);
  check_array(gb, rc->gb_train, 3, 1e-5);
  nn_tensor_release(y);
  nn_tensor_release(gx);

  l->training = 0;
  zero_grads(l);
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  check_array(nn_data(y), rc->y_eval, n, 1e-5);
  CHECK(nn_data(nn_layer_buffer(l, "num_batches_tracked"))[0] == 1.0f);
  check_array(nn_data(nn_layer_buffer(l, "running_mean")), rc->rm, 3, 1e-6);
  CHECK(nn_layer_backward(l, x, gy, &gx, &err) == 0);
  check_array(nn_data(gx), rc->gx_eval, n, 1e-5);
  check_array(gw, rc->gw_eval, 3, 1e-5);
  check_array(gb, rc->gb_eval, 3, 1e-5);
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_tensor_release(x);
  nn_tensor_release(gy);
  nn_layer_free(l);
}

static void test_bn2d_reference(void) {
  ref_case rc = {1,           4,           {2, 3, 2, 2}, 1e-5f,
                 0.1f,        bn2d_y_train, bn2d_gx_train, bn2d_gw_train,
                 bn2d_gb_train, bn2d_rm,    bn2d_rv,     bn2d_y_eval,
                 bn2d_gx_eval, bn2d_gw_eval, bn2d_gb_eval};
  run_ref_case(&rc);
}

static void test_bn1d_reference(void) {
  ref_case rc = {0,           2,           {4, 3}, 1e-5f,
                 0.1f,        bn1d_y_train, bn1d_gx_train, bn1d_gw_train,
                 bn1d_gb_train, bn1d_rm,    bn1d_rv,     bn1d_y_eval,
                 bn1d_gx_eval, bn1d_gw_eval, bn1d_gb_eval};
  run_ref_case(&rc);
}

static void test_bn1d_3d_reference(void) {
  ref_case rc = {0,            3,             {2, 3, 3},      1e-3f,
                 0.3f,         bn1d3_y_train, bn1d3_gx_train, bn1d3_gw_train,
                 bn1d3_gb_train, bn1d3_rm,    bn1d3_rv,       bn1d3_y_eval,
                 bn1d3_gx_eval, bn1d3_gw_eval, bn1d3_gb_eval};
  run_ref_case(&rc);
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

/* Central differences of proj_loss with respect to each entry of v. */
static void check_fd(nn_layer *l, nn_tensor *x, const float *r, float *v,
                     const float *analytic, int64_t n, double h, double tol) {
  for (int64_t i = 0; i < n; i++) {
    float keep = v[i];
    v[i] = keep + (float)h;
    double lp = proj_loss(l, x, r);
    v[i] = keep - (float)h;
    double lm = proj_loss(l, x, r);
    v[i] = keep;
    CHECK_NEAR(analytic[i], (lp - lm) / (2.0 * h), tol);
  }
}

/* Gradient check of grad_input, weight and bias against central differences
 * of a random projection, in training or eval mode. */
static void gradcheck(int spatial, int ndim, const int64_t *shape,
                      int training) {
  nn_layer *l = new_bn(shape[1], 1e-5f, 0.1f, spatial);
  nn_tensor *x = tensor(ndim, shape), *r = tensor(ndim, shape);
  int64_t n = nn_tensor_numel(x), c = shape[1];
  fill_rand(nn_data(x), n, -2.0f, 2.0f, 11);
  fill_rand(nn_data(r), n, -1.0f, 1.0f, 12);
  nn_tensor *w = nn_layer_param(l, "weight"), *b = nn_layer_param(l, "bias");
  fill_rand(nn_data(w), c, 0.5f, 1.5f, 13);
  fill_rand(nn_data(b), c, -0.5f, 0.5f, 14);
  fill_rand(nn_data(nn_layer_buffer(l, "running_mean")), c, -0.5f, 0.5f, 15);
  fill_rand(nn_data(nn_layer_buffer(l, "running_var")), c, 0.5f, 2.0f, 16);
  l->training = training;

  nn_error err;
  nn_tensor *y, *gx;
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_layer_backward(l, x, r, &gx, &err) == 0);
  nn_tensor_release(y);
  float *gw = malloc((size_t)c * sizeof(float));
  float *gb = malloc((size_t)c * sizeof(float));
  memcpy(gw, nn_data(w->grad), (size_t)c * sizeof(float));
  memcpy(gb, nn_data(b->grad), (size_t)c * sizeof(float));

  const double h = 1e-2, tol = 2e-3;
  check_fd(l, x, nn_data(r), nn_data(x), nn_data(gx), n, h, tol);
  check_fd(l, x, nn_data(r), nn_data(w), gw, c, h, tol);
  check_fd(l, x, nn_data(r), nn_data(b), gb, c, h, tol);
  free(gw);
  free(gb);
  nn_tensor_release(gx);
  nn_tensor_release(x);
  nn_tensor_release(r);
  nn_layer_free(l);
}

static void test_gradcheck_bn2d(void) {
  int64_t s[4] = {2, 3, 2, 3};
  gradcheck(1, 4, s, 1);
  gradcheck(1, 4, s, 0);
}

static void test_gradcheck_bn1d(void) {
  int64_t s2[2] = {5, 3}, s3[3] = {2, 3, 4};
  gradcheck(0, 2, s2, 1);
  gradcheck(0, 2, s2, 0);
  gradcheck(0, 3, s3, 1);
  gradcheck(0, 3, s3, 0);
}

/* Runs forward + backward with the given thread count; returns y, gx and
 * the parameter grads and running stats concatenated in out. */
static void run_threads(int threads, int spatial, int ndim,
                        const int64_t *shape, int training, float *out) {
  nn_ctx c;
  nn_ctx_init(&c);
  nn_ctx_set_threads(&c, threads);
  nn_error err;
  int64_t C = shape[1];
  nn_layer *l = nn_batchnorm_new(&c, C, 1e-5f, 0.1f, spatial, &err);
  nn_tensor *x = tensor(ndim, shape), *gy = tensor(ndim, shape);
  int64_t n = nn_tensor_numel(x);
  fill_rand(nn_data(x), n, -3.0f, 5.0f, 21);
  fill_rand(nn_data(gy), n, -1.0f, 1.0f, 22);
  fill_rand(nn_data(nn_layer_param(l, "weight")), C, 0.5f, 1.5f, 23);
  l->training = training;
  nn_tensor *y, *gx;
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_layer_backward(l, x, gy, &gx, &err) == 0);
  memcpy(out, nn_data(y), (size_t)n * sizeof(float));
  memcpy(out + n, nn_data(gx), (size_t)n * sizeof(float));
  memcpy(out + 2 * n, nn_data(nn_layer_param(l, "weight")->grad),
         (size_t)C * sizeof(float));
  memcpy(out + 2 * n + C, nn_data(nn_layer_param(l, "bias")->grad),
         (size_t)C * sizeof(float));
  memcpy(out + 2 * n + 2 * C, nn_data(nn_layer_buffer(l, "running_mean")),
         (size_t)C * sizeof(float));
  memcpy(out + 2 * n + 3 * C, nn_data(nn_layer_buffer(l, "running_var")),
         (size_t)C * sizeof(float));
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_tensor_release(x);
  nn_tensor_release(gy);
  nn_layer_free(l);
}

static void threads_agree(int spatial, int ndim, const int64_t *shape,
                          int training) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  size_t len = (size_t)(2 * n + 4 * shape[1]);
  float *a = malloc(len * sizeof(float)), *b = malloc(len * sizeof(float));
  run_threads(1, spatial, ndim, shape, training, a);
  run_threads(2, spatial, ndim, shape, training, b);
  CHECK(memcmp(a, b, len * sizeof(float)) == 0);
  free(a);
  free(b);
}

static void test_threads_agree(void) {
  int64_t s4[4] = {8, 16, 12, 12}, s2[2] = {512, 64}, s3[3] = {16, 8, 200};
  threads_agree(1, 4, s4, 1);
  threads_agree(1, 4, s4, 0);
  threads_agree(0, 2, s2, 1);
  threads_agree(0, 3, s3, 1);
  threads_agree(0, 3, s3, 0);
}

static void test_errors(void) {
  nn_error err;
  nn_tensor *y = NULL, *gx = NULL;
  nn_layer *l2 = new_bn(3, 1e-5f, 0.1f, 1), *l1 = new_bn(3, 1e-5f, 0.1f, 0);

  int64_t bad_c[4] = {2, 4, 3, 3};
  nn_tensor *x = tensor(4, bad_c);
  CHECK(nn_layer_forward(l2, x, &y, &err) == -1 && y == NULL);
  CHECK(strstr(err.msg, "[N, 3, H, W]") && strstr(err.msg, "[2, 4, 3, 3]"));
  CHECK(nn_layer_forward(l1, x, &y, &err) == -1);
  CHECK(strstr(err.msg, "[N, 3] or [N, 3, L]") &&
        strstr(err.msg, "[2, 4, 3, 3]"));
  CHECK(nn_layer_backward(l2, x, x, &gx, &err) == -1 && gx == NULL);
  CHECK(strstr(err.msg, "[2, 4, 3, 3]") != NULL);
  nn_tensor_release(x);

  int64_t three[3] = {2, 3, 5};
  x = tensor(3, three);
  CHECK(nn_layer_forward(l2, x, &y, &err) == -1);
  CHECK(strstr(err.msg, "[N, 3, H, W]") && strstr(err.msg, "[2, 3, 5]"));
  nn_tensor_release(x);

  int64_t bad1[2] = {2, 4};
  x = tensor(2, bad1);
  CHECK(nn_layer_forward(l1, x, &y, &err) == -1);
  CHECK(strstr(err.msg, "[N, 3] or [N, 3, L]") && strstr(err.msg, "[2, 4]"));
  nn_tensor_release(x);

  /* One value per channel in training, as PyTorch refuses; fine in eval. */
  int64_t one1[2] = {1, 3}, one2[4] = {1, 3, 1, 1};
  x = tensor(2, one1);
  CHECK(nn_layer_forward(l1, x, &y, &err) == -1);
  CHECK(strstr(err.msg, "more than 1 value per channel") &&
        strstr(err.msg, "[1, 3]"));
  CHECK(nn_data(nn_layer_buffer(l1, "num_batches_tracked"))[0] == 0.0f);
  l1->training = 0;
  CHECK(nn_layer_forward(l1, x, &y, &err) == 0);
  nn_tensor_release(y);
  l1->training = 1;
  nn_tensor_release(x);
  x = tensor(4, one2);
  CHECK(nn_layer_forward(l2, x, &y, &err) == -1);
  CHECK(strstr(err.msg, "more than 1 value per channel") != NULL);
  nn_tensor_release(x);

  /* grad_output of the wrong shape. */
  int64_t ok[4] = {2, 3, 2, 2}, okg[4] = {2, 3, 2, 1};
  x = tensor(4, ok);
  nn_tensor *g = tensor(4, okg);
  fill_x(nn_data(x), 24);
  CHECK(nn_layer_forward(l2, x, &y, &err) == 0);
  nn_tensor_release(y);
  CHECK(nn_layer_backward(l2, x, g, &gx, &err) == -1);
  CHECK(strstr(err.msg, "[2, 3, 2, 2]") && strstr(err.msg, "[2, 3, 2, 1]"));
  nn_tensor_release(g);
  nn_tensor_release(x);
  nn_layer_free(l1);
  nn_layer_free(l2);
}

/* Parameter grads accumulate; a frozen parameter gets none. */
static void test_accumulate_and_freeze(void) {
  nn_layer *l = new_bn(3, 1e-5f, 0.1f, 1);
  set_affine(l);
  int64_t s[4] = {2, 3, 2, 2};
  nn_tensor *x = tensor(4, s), *gy = tensor(4, s), *y, *gx;
  fill_x(nn_data(x), 24);
  fill_gy(nn_data(gy), 24);
  nn_error err;
  nn_tensor *w = nn_layer_param(l, "weight"), *b = nn_layer_param(l, "bias");
  for (int k = 0; k < 2; k++) {
    CHECK(nn_layer_forward(l, x, &y, &err) == 0);
    CHECK(nn_layer_backward(l, x, gy, &gx, &err) == 0);
    nn_tensor_release(y);
    nn_tensor_release(gx);
  }
  check_array(nn_data(w->grad), (const float[]){2 * 6.3311634f, 2 * 2.0234127f,
                                                2 * 0.4736248f},
              3, 1e-5);
  check_array(nn_data(b->grad), (const float[]){2 * 0.35706496f,
                                                2 * -0.91607308f,
                                                2 * -1.4670161f},
              3, 1e-5);
  CHECK(nn_data(nn_layer_buffer(l, "num_batches_tracked"))[0] == 2.0f);
  zero_grads(l);
  w->requires_grad = 0;
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_layer_backward(l, x, gy, &gx, &err) == 0);
  for (int i = 0; i < 3; i++) CHECK(nn_data(w->grad)[i] == 0.0f);
  check_array(nn_data(b->grad), bn2d_gb_train, 3, 1e-5);
  check_array(nn_data(gx), bn2d_gx_train, 24, 1e-5);
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_tensor_release(x);
  nn_tensor_release(gy);
  nn_layer_free(l);
}

/* Backward with no matching forward recomputes the batch statistics and
 * gives the same result as right after the forward. */
static void test_backward_without_forward(void) {
  int64_t s[3] = {4, 3, 5};
  nn_tensor *x = tensor(3, s), *gy = tensor(3, s), *y, *g1, *g2;
  fill_rand(nn_data(x), 60, -1.0f, 3.0f, 31);
  fill_rand(nn_data(gy), 60, -1.0f, 1.0f, 32);
  nn_error err;
  nn_layer *a = new_bn(3, 1e-5f, 0.1f, 0), *b = new_bn(3, 1e-5f, 0.1f, 0);
  CHECK(nn_layer_forward(a, x, &y, &err) == 0);
  CHECK(nn_layer_backward(a, x, gy, &g1, &err) == 0);
  CHECK(nn_layer_backward(b, x, gy, &g2, &err) == 0);
  CHECK(memcmp(nn_data(g1), nn_data(g2), 60 * sizeof(float)) == 0);
  CHECK(memcmp(nn_data(nn_layer_param(a, "weight")->grad),
               nn_data(nn_layer_param(b, "weight")->grad),
               3 * sizeof(float)) == 0);
  nn_tensor_release(y);
  nn_tensor_release(g1);
  nn_tensor_release(g2);
  nn_tensor_release(x);
  nn_tensor_release(gy);
  nn_layer_free(a);
  nn_layer_free(b);
}

/* An empty batch passes through (as PyTorch: the counter still moves, the
 * running statistics do not). */
static void test_empty_batch(void) {
  nn_layer *l = new_bn(3, 1e-5f, 0.1f, 1);
  int64_t s[4] = {0, 3, 2, 2};
  nn_tensor *x = tensor(4, s), *y, *gx;
  nn_error err;
  CHECK(nn_layer_forward(l, x, &y, &err) == 0);
  CHECK(nn_tensor_has_shape(y, 4, s));
  CHECK(nn_data(nn_layer_buffer(l, "num_batches_tracked"))[0] == 1.0f);
  CHECK(nn_data(nn_layer_buffer(l, "running_mean"))[0] == 0.0f);
  CHECK(nn_data(nn_layer_buffer(l, "running_var"))[0] == 1.0f);
  CHECK(nn_layer_backward(l, x, y, &gx, &err) == 0);
  CHECK(nn_tensor_has_shape(gx, 4, s));
  CHECK(nn_data(nn_layer_param(l, "bias")->grad)[0] == 0.0f);
  nn_tensor_release(y);
  nn_tensor_release(gx);
  nn_tensor_release(x);
  nn_layer_free(l);
}

/* The kernels alone, with no affine parameters and no running statistics,
 * and with y aliasing x. */
static void test_kernels_alone(void) {
  enum { N = 3, C = 2, HW = 4 };
  float x[N * C * HW], y[N * C * HW], mean[C], invstd[C];
  fill_x(x, N * C * HW);
  nn_batchnorm_forward_train(&ctx, x, N, C, HW, NULL, NULL, NULL, NULL, 0.1f,
                             1e-5f, y, mean, invstd);
  for (int c = 0; c < C; c++) {
    double s = 0, sq = 0;
    for (int n = 0; n < N; n++)
      for (int i = 0; i < HW; i++) {
        double v = y[(n * C + c) * HW + i];
        s += v;
        sq += v * v;
      }
    CHECK_NEAR(s / (N * HW), 0.0, 1e-6);
    CHECK_NEAR(sq / (N * HW), 1.0, 1e-4);
  }
  float m2[C], is2[C];
  nn_batchnorm_stats(&ctx, x, N, C, HW, 1e-5f, m2, is2);
  CHECK(memcmp(m2, mean, sizeof mean) == 0);
  CHECK(memcmp(is2, invstd, sizeof invstd) == 0);
  nn_batchnorm_forward_train(&ctx, x, N, C, HW, NULL, NULL, NULL, NULL, 0.1f,
                             1e-5f, x, mean, invstd);
  CHECK(memcmp(x, y, sizeof y) == 0);
}

/* Both layers' parameters and buffers, as floats, are equal. */
static int same_state(const nn_layer *a, const nn_layer *b) {
  for (int i = 0; i < a->nparams; i++)
    if (memcmp(nn_data(a->params[i].t), nn_data(b->params[i].t),
               (size_t)nn_tensor_numel(a->params[i].t) * sizeof(float)))
      return 0;
  for (int i = 0; i < a->nbuffers; i++)
    if (memcmp(nn_data(a->buffers[i].t), nn_data(b->buffers[i].t),
               (size_t)nn_tensor_numel(a->buffers[i].t) * sizeof(float)))
      return 0;
  return 1;
}

/* nn_batchnorm_relu_forward is relu(forward) bit for bit, moving the
 * running statistics the same way; its coefficients recompute the same
 * bits after the layer has run on other data; backward then matches too. */
static void fused_relu_case(int spatial, int ndim, const int64_t *s,
                            int training) {
  int64_t C = s[1];
  nn_layer *a = new_bn(C, 1e-5f, 0.1f, spatial);
  nn_layer *b = new_bn(C, 1e-5f, 0.1f, spatial);
  nn_layer *l[2] = {a, b};
  for (int k = 0; k < 2; k++) {
    fill_rand(nn_data(nn_layer_param(l[k], "weight")), C, -2.0f, 2.0f, 41);
    fill_rand(nn_data(nn_layer_param(l[k], "bias")), C, -1.0f, 1.0f, 42);
    fill_rand(nn_data(nn_layer_buffer(l[k], "running_mean")), C, -1.0f, 1.0f,
              43);
    fill_rand(nn_data(nn_layer_buffer(l[k], "running_var")), C, 0.5f, 2.0f,
              44);
    l[k]->training = training;
  }
  nn_tensor *x = tensor(ndim, s), *x2 = tensor(ndim, s), *gy = tensor(ndim, s);
  int64_t n = nn_tensor_numel(x);
  fill_rand(nn_data(x), n, -2.0f, 3.0f, 45);
  fill_rand(nn_data(x2), n, -5.0f, 1.0f, 46);
  fill_rand(nn_data(gy), n, -1.0f, 1.0f, 47);
  size_t bytes = (size_t)n * sizeof(float);
  nn_error err;
  nn_tensor *y = NULL, *coef = NULL, *yb = NULL, *y2 = NULL, *r = NULL;
  nn_tensor *ga = NULL, *gb = NULL;
  CHECK(nn_batchnorm_relu_forward(a, x, &y, &coef, &err) == 0);
  CHECK(nn_layer_forward(b, x, &yb, &err) == 0);
  if (!y || !yb || !coef) return;
  nn_relu_forward(&ctx, nn_data(yb), nn_data(yb), n);
  CHECK(memcmp(nn_data(y), nn_data(yb), bytes) == 0);
  CHECK(coef->ndim == 2 && coef->shape[0] == 3 && coef->shape[1] == C);
  CHECK(same_state(a, b));
  int zeros = 0;
  for (int64_t i = 0; i < n; i++) zeros += nn_data(y)[i] == 0.0f;
  CHECK(zeros > 0 && zeros < n);
  /* The backward of either layer, as it follows the last forward. */
  CHECK(nn_layer_backward(a, x, gy, &ga, &err) == 0);
  CHECK(nn_layer_backward(b, x, gy, &gb, &err) == 0);
  if (ga && gb) CHECK(memcmp(nn_data(ga), nn_data(gb), bytes) == 0);
  CHECK(same_state(a, b));
  for (int k = 0; k < 2; k++)
    CHECK(memcmp(nn_data(a->params[k].t->grad), nn_data(b->params[k].t->grad),
                 (size_t)C * sizeof(float)) == 0);
  CHECK(nn_layer_forward(a, x2, &y2, &err) == 0);
  CHECK(nn_batchnorm_relu_recompute(a, x, coef, &r, &err) == 0);
  if (r) CHECK(memcmp(nn_data(r), nn_data(y), bytes) == 0);
  nn_tensor *t[] = {x, x2, gy, y, coef, yb, y2, r, ga, gb};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) nn_tensor_release(t[i]);
  nn_layer_free(a);
  nn_layer_free(b);
}

static void test_fused_relu(void) {
  int64_t s4[4] = {4, 5, 6, 7}, s2[2] = {64, 300}, s3[3] = {3, 4, 5};
  for (int training = 0; training < 2; training++) {
    fused_relu_case(1, 4, s4, training);
    fused_relu_case(0, 2, s2, training);
    fused_relu_case(0, 3, s3, training);
  }
}

static void test_fused_relu_errors(void) {
  nn_error err;
  nn_layer *bn = new_bn(3, 1e-5f, 0.1f, 1);
  nn_layer *relu = nn_activation_new(&ctx, NN_ACT_RELU, 0, &err);
  int64_t s[4] = {2, 3, 2, 2}, bad[4] = {2, 4, 2, 2}, ks[2] = {2, 3};
  nn_tensor *x = tensor(4, s), *xb = tensor(4, bad), *k2 = tensor(2, ks);
  nn_tensor *y = NULL, *coef = NULL, *r = NULL;
  fill_x(nn_data(x), 24);
  CHECK(nn_batchnorm_relu_forward(relu, x, &y, &coef, &err) == -1);
  CHECK(y == NULL && coef == NULL);
  CHECK(strstr(err.msg, "BatchNorm1d or BatchNorm2d") &&
        strstr(err.msg, "got ReLU"));
  CHECK(nn_batchnorm_relu_forward(bn, xb, &y, &coef, &err) == -1);
  CHECK(strstr(err.msg, "[N, 3, H, W]") && strstr(err.msg, "[2, 4, 2, 2]"));
  CHECK(nn_data(nn_layer_buffer(bn, "num_batches_tracked"))[0] == 0.0f);
  CHECK(nn_batchnorm_relu_forward(bn, x, &y, &coef, &err) == 0);
  CHECK(nn_batchnorm_relu_recompute(bn, x, k2, &r, &err) == -1 && r == NULL);
  CHECK(strstr(err.msg, "[3, 3]") && strstr(err.msg, "[2, 3]"));
  CHECK(nn_batchnorm_relu_recompute(bn, xb, coef, &r, &err) == -1);
  CHECK(strstr(err.msg, "[2, 4, 2, 2]") != NULL);
  CHECK(nn_batchnorm_relu_recompute(relu, x, coef, &r, &err) == -1);
  CHECK(strstr(err.msg, "got ReLU") != NULL);
  nn_tensor *t[] = {x, xb, k2, y, coef};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) nn_tensor_release(t[i]);
  nn_layer_free(bn);
  nn_layer_free(relu);
}

int main(void) {
  nn_ctx_init(&ctx);
  nn_ctx_set_threads(&ctx, 2);
  RUN(test_construct);
  RUN(test_bn2d_reference);
  RUN(test_bn1d_reference);
  RUN(test_bn1d_3d_reference);
  RUN(test_gradcheck_bn2d);
  RUN(test_gradcheck_bn1d);
  RUN(test_threads_agree);
  RUN(test_errors);
  RUN(test_accumulate_and_freeze);
  RUN(test_backward_without_forward);
  RUN(test_empty_batch);
  RUN(test_kernels_alone);
  RUN(test_fused_relu);
  RUN(test_fused_relu_errors);
  return check_report("norm");
}
