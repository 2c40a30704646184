/*
 * layer.h - the layer protocol and the constructors of every built-in layer.
 *
 * A layer is a small vtable (nn_layer_ops) over a private struct whose first
 * member is an nn_layer.  Parameters and buffers are named tensors reachable
 * from the nn_layer (for state_dict, optimizers, checkpoints and, later,
 * gradient allreduce).  Kernels live beside each layer as stateless functions
 * (see conv.h, pool.h, norm.h, activation.h) so they can be tested and
 * benchmarked alone.
 *
 * Protocol:
 *  - forward(l, x, &y, err): x is borrowed and contiguous; *y receives an
 *    owned reference.  The layer may keep its own reference to y and reuse
 *    the buffer on a later call when nobody else holds it (see
 *    nn_layer_output).
 *  - backward(l, x, gy, &gx, err): x is the same input that was given to
 *    forward, gy the gradient of the output (both borrowed, contiguous).
 *    *gx receives an owned reference.  Parameter gradients are ACCUMULATED
 *    into param->grad for every parameter whose requires_grad is set.
 *  - Both return 0, or -1 with a message in err that names what is wrong
 *    (expected and actual shapes) but not the layer: callers prefix it.
 */
#ifndef NN_LAYER_H
#define NN_LAYER_H

#include "context.h"
#include "tensor.h"

#define NN_MAX_PARAMS 4

typedef struct nn_layer nn_layer;

typedef struct nn_layer_ops {
  const char *type; /* PyTorch's class name: "Conv2d" */
  int (*forward)(nn_layer *l, nn_tensor *x, nn_tensor **y, nn_error *err);
  int (*backward)(nn_layer *l, nn_tensor *x, nn_tensor *gy, nn_tensor **gx,
                  nn_error *err);
  /* Writes PyTorch's extra_repr ("1, 32, kernel_size=(3, 3), stride=(1, 1)")
   * into buf. */
  void (*extra_repr)(const nn_layer *l, char *buf, size_t n);
  /* Frees the private state (not params, buffers or output); may be NULL. */
  void (*destroy)(nn_layer *l);
} nn_layer_ops;

typedef struct nn_named {
  const char *name; /* static string: "weight", "running_mean" */
  nn_tensor *t;     /* owned */
} nn_named;

struct nn_layer {
  const nn_layer_ops *ops;
  nn_ctx *ctx; /* borrowed: must outlive the layer */
  int training;
  int nparams;
  nn_named params[NN_MAX_PARAMS]; /* with grads */
  int nbuffers;
  nn_named buffers[NN_MAX_PARAMS]; /* running stats, no grads */
  nn_tensor *output;               /* cached output buffer, may be NULL */
};

/* Sets up the common part of a freshly calloc'ed layer (training mode). */
void nn_layer_init(nn_layer *l, const nn_layer_ops *ops, nn_ctx *ctx);
/* Adds a parameter (takes ownership of t, gives it a zero gradient). */
int nn_layer_add_param(nn_layer *l, const char *name, nn_tensor *t,
                       nn_error *err);
/* Adds a buffer (takes ownership of t). */
void nn_layer_add_buffer(nn_layer *l, const char *name, nn_tensor *t);
/* Finds a parameter or buffer by name; NULL if absent.  Borrowed. */
nn_tensor *nn_layer_param(const nn_layer *l, const char *name);
nn_tensor *nn_layer_buffer(const nn_layer *l, const char *name);
/* Returns an owned, uninitialised output tensor of the given shape.  Large
 * buffers come from the allocator's cache of recently freed blocks (see
 * nn_alloc_floats), so a buffer released by the caller (Sequential releases
 * the activations it no longer needs) is reused by the next request of the
 * same size, in this layer or another, without fresh page faults; nothing
 * is pinned per layer (l->output stays NULL), so dead activations do not
 * hold memory. */
nn_tensor *nn_layer_output(nn_layer *l, int ndim, const int64_t *shape,
                           nn_error *err);
/* The same for the grad_input a backward returns: an owned, uninitialised
 * tensor of the given shape, recycled the same way once the caller releases
 * it.  Every layer's backward should take its grad_input from here. */
nn_tensor *nn_layer_grad_input(nn_layer *l, int ndim, const int64_t *shape,
                               nn_error *err);
/* A scratch buffer of at least n floats (uninitialised) shared by all the
 * layers run on the calling thread: a workspace needed only during one
 * forward or backward call (im2col columns, packed panels) should come from
 * here rather than be kept per layer, so a deep network holds one workspace
 * (the largest) instead of one per layer.  Valid until the next call of
 * nn_layer_scratch on this thread; do not free it.  NULL with err when out
 * of memory.  Not for use inside an OpenMP region (take it before, and
 * split it between threads). */
float *nn_layer_scratch(int64_t n, nn_error *err);
/* Returns the calling thread's scratch buffer to the allocator. */
void nn_layer_scratch_free(void);
/* Calls ops->forward / ops->backward after checking x (and gy) contiguity. */
int nn_layer_forward(nn_layer *l, nn_tensor *x, nn_tensor **y, nn_error *err);
int nn_layer_backward(nn_layer *l, nn_tensor *x, nn_tensor *gy, nn_tensor **gx,
                      nn_error *err);
/* Frees the layer, its parameters, buffers and cached output.  NULL ok. */
void nn_layer_free(nn_layer *l);

/* ---- Built-in layers.  Each returns an owned layer or NULL with err. ----
 * Parameters are initialised as PyTorch does, from ctx's RNG. */

/* Linear: x [N, in] (or [*, in]) -> [N, out]; weight [out, in], bias [out].
 * Init: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)). */
nn_layer *nn_linear_new(nn_ctx *ctx, int64_t in, int64_t out, int bias,
                        nn_error *err);
/* Conv2d: x [N, cin, H, W] -> [N, cout, Ho, Wo]; weight [cout, cin, kh, kw],
 * bias [cout].  Init: U(-1/sqrt(cin*kh*kw), +) for weight and bias. */
nn_layer *nn_conv2d_new(nn_ctx *ctx, int64_t cin, int64_t cout, int kh, int kw,
                        int sh, int sw, int ph, int pw, int bias,
                        nn_error *err);
/* MaxPool2d / AvgPool2d (count_include_pad=True, ceil_mode=False) over
 * x [N, C, H, W] (or [C, H, W]). */
nn_layer *nn_maxpool2d_new(nn_ctx *ctx, int kh, int kw, int sh, int sw, int ph,
                           int pw, nn_error *err);
nn_layer *nn_avgpool2d_new(nn_ctx *ctx, int kh, int kw, int sh, int sw, int ph,
                           int pw, nn_error *err);
/* AdaptiveAvgPool2d to [oh, ow] with PyTorch's start/end index formulas. */
nn_layer *nn_adaptive_avgpool2d_new(nn_ctx *ctx, int oh, int ow,
                                    nn_error *err);
/* BatchNorm over channel dim 1: spatial=1 is BatchNorm2d (x [N, C, H, W]),
 * spatial=0 is BatchNorm1d (x [N, C] or [N, C, L]).  Params weight (ones),
 * bias (zeros); buffers running_mean (zeros), running_var (ones),
 * num_batches_tracked (scalar 0).  Training uses batch statistics and updates
 * the running ones with momentum and the unbiased variance; eval uses the
 * running statistics. */
nn_layer *nn_batchnorm_new(nn_ctx *ctx, int64_t c, float eps, float momentum,
                           int spatial, nn_error *err);
/* BatchNorm layer l followed by a ReLU, in one pass, for a container that
 * keeps only the BatchNorm's input for backward: *y (owned) receives
 * relu(l.forward(x)), bit for bit (running statistics are updated as by
 * forward), and *coef (owned, [3, C]) the per-channel shift, scale and bias
 * the output was computed with.  x must be contiguous.  -1 with err when l is
 * not a BatchNorm layer or x has the wrong shape. */
int nn_batchnorm_relu_forward(nn_layer *l, nn_tensor *x, nn_tensor **y,
                              nn_tensor **coef, nn_error *err);
/* Recomputes the *y of nn_batchnorm_relu_forward from the same x and the
 * coef it returned, bit for bit, into a new owned tensor, whatever l did in
 * between (the layer only checks shapes).  -1 with err on a wrong layer
 * type or shape. */
int nn_batchnorm_relu_recompute(nn_layer *l, nn_tensor *x,
                                const nn_tensor *coef, nn_tensor **y,
                                nn_error *err);
/* Backward of relu(l.forward(x)) after nn_batchnorm_relu_forward(l, x)
 * returned coef: *gx (owned) receives the gradient with respect to x of a
 * grad_output gy of the ReLU's output, bit for bit what the ReLU's backward
 * and then l's would give, the ReLU's mask taken from x and coef within
 * l's passes.  l's parameter gradients accumulate as in its backward.  x
 * and gy must be contiguous.  -1 with err on a wrong layer type or shape. */
int nn_batchnorm_relu_backward(nn_layer *l, nn_tensor *x,
                               const nn_tensor *coef, nn_tensor *gy,
                               nn_tensor **gx, nn_error *err);
/* When l is a BatchNorm2d in eval mode with c channels: fills mean, scale
 * and shift (c floats each) with the per-channel coefficients its forward
 * uses, y = (x - mean) * scale + shift, and returns 1; otherwise 0. */
int nn_batchnorm_eval_coefficients(const nn_layer *l, int64_t c, float *mean,
                                   float *scale, float *shift);
/* Conv2d layer conv followed by BatchNorm2d bn (eval mode; NULL: none) and
 * a ReLU, in one pass: *y (owned) receives relu(bn(conv(x))) bit for bit,
 * the BatchNorm and ReLU applied as each output row is written.  When they do
 * not fit together (bn not a BatchNorm2d in eval mode over conv's output
 * channels, or x not 4-D) *y is NULL and 0 is returned, for the caller to
 * run the layers one by one.  x must be contiguous.  -1 with err when conv
 * is not a Conv2d or x has the wrong shape. */
int nn_conv2d_bn_relu_forward(nn_layer *conv, const nn_layer *bn,
                              nn_tensor *x, nn_tensor **y, nn_error *err);
/* Inverted dropout: in training, zero with probability p and scale the rest
 * by 1/(1-p), drawing from ctx's RNG; identity in eval. */
nn_layer *nn_dropout_new(nn_ctx *ctx, float p, nn_error *err);
/* Flatten dims 1.. into one: [N, ...] -> [N, prod(...)]. */
nn_layer *nn_flatten_new(nn_ctx *ctx, nn_error *err);

typedef enum nn_act_kind {
  NN_ACT_RELU,
  NN_ACT_LEAKY_RELU, /* param: negative slope (PyTorch default 0.01) */
  NN_ACT_SIGMOID,
  NN_ACT_TANH,
  NN_ACT_ELU,        /* param: alpha (default 1) */
  NN_ACT_GELU,       /* exact erf form */
  NN_ACT_SOFTMAX,    /* over the last dimension */
  NN_ACT_LOG_SOFTMAX /* over the last dimension */
} nn_act_kind;

/* An elementwise activation or (log-)softmax over the last dimension. */
nn_layer *nn_activation_new(nn_ctx *ctx, nn_act_kind kind, float param,
                            nn_error *err);
/* The backward of an elementwise activation l (not (log-)softmax) written
 * over gy itself: afterwards gy holds grad_input, bit for bit what
 * l's backward returns.  For a caller that owns gy alone.  x and gy must be
 * contiguous, of the same shape, and not share memory.  -1 with err
 * otherwise or when l is not an elementwise activation. */
int nn_activation_backward_inplace(nn_layer *l, nn_tensor *x, nn_tensor *gy,
                                   nn_error *err);

#endif
