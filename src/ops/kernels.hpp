// Kernel tables and dispatch. Each op and direction has one table of variants
// {name, isa, supports(shape), run}, kept beside its kernels (ops/cpu/conv2d.cpp,
// ops/cpu/tables.cpp). A table is in order of preference: dispatch runs the first variant whose
// supports() accepts the shape, so the order and the predicates are the whole selection rule.
// The last variant of every table accepts every shape the ones before it leave, so dispatch
// always finds one. Layers call the functions at the end of this header with their execution
// context (convnet/context.hpp), which run the tables for float when the context's backend is
// Backend::Fast and the reference kernels (ops/ref) for double or under Backend::Reference; the
// kernel tests and bench_kernels iterate the same tables. Every variant takes the context: its
// threads split the work, and its settings may decide what a variant supports (the Winograd
// tile); scratch comes in as an argument, from the context's scratch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>

#include "convnet/context.hpp"
#include "convnet/error.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/ref/ref.hpp"
#include "ops/shapes.hpp"

namespace convnet::ops {

// The instruction set a variant is written for. Baseline: plain C++, compiled per ISA where it
// is vectorised (CONVNET_MULTIVERSION) or built on sgemm, whose micro-kernel is chosen at run
// time; it runs on every CPU. Avx512: hand-written AVX-512 code, whose supports() is false on
// CPUs (or with sgemm micro-kernels) without it. Avx512Bf16: AVX-512 with the bf16 dot product
// (AVX512_BF16), the mixed-precision variants, which also need a context set to Precision::Bf16.
enum class Isa { Baseline, Avx512, Avx512Bf16 };
const char* isa_name(Isa isa);

template <class ShapeT, class Fn>
struct Variant {
  using Shape = ShapeT;
  const char* name;
  Isa isa;
  bool (*supports)(const Context&, const ShapeT&);
  Fn* run;
};

// The first variant of `table` that supports s in ctx.
template <class V>
const V& select(const Context& ctx, std::span<const V> table, const typename V::Shape& s) {
  for (const V& v : table)
    if (v.supports(ctx, s)) return v;
  throw Error("no kernel variant supports this shape");  // a table's last variant prevents this
}

// --- signatures (float, same contracts as ops/ref unless said) -------------------------------
// Every variant's first argument is the context whose threads it splits its work into.
// Convolution: `workspace` holds cpu::conv2d_workspace_size(s, ctx.num_threads()) floats, room for
// every variant. Backward data accumulates into dx, or with accumulate = false assigns it.
using Conv2dForwardFn = void(const Context& ctx, const Conv2dShape& s, const float* x,
                             const float* w, const float* b, float* y, float* workspace);
using Conv2dBackwardDataFn = void(const Context& ctx, const Conv2dShape& s, const float* w,
                                  const float* dy, float* dx, float* workspace, bool accumulate);
using Conv2dBackwardWeightsFn = void(const Context& ctx, const Conv2dShape& s, const float* x,
                                     const float* dy, float* dw, float* db, float* workspace);
using LinearForwardFn = void(const Context& ctx, const LinearShape& s, const float* x,
                             const float* w, const float* b, float* y);
using LinearBackwardDataFn = void(const Context& ctx, const LinearShape& s, const float* w,
                                  const float* dy, float* dx);
using LinearBackwardWeightsFn = void(const Context& ctx, const LinearShape& s, const float* x,
                                     const float* dy, float* dw, float* db);
using MaxPool2dForwardFn = void(const Context& ctx, const Pool2dShape& s, const float* x, float* y,
                                int32_t* argmax);
using MaxPool2dBackwardFn = void(const Context& ctx, const Pool2dShape& s, const float* dy,
                                 const int32_t* argmax, float* dx);
// Elementwise kernels take the element count as their shape.
using ReluForwardFn = void(const Context& ctx, int64_t count, const float* x, float* y);
using ReluBackwardFn = void(const Context& ctx, int64_t count, const float* x, const float* dy,
                            float* dx, bool accumulate);
// Add: the element count as its shape; at most 16 inputs.
using AddForwardFn = void(const Context& ctx, int64_t count, std::span<const float* const> xs,
                          float* y);
using AddBackwardFn = void(const Context& ctx, int64_t count, const float* dy,
                           std::span<float* const> dxs, std::span<const bool> assign);
// Batch norm: `workspace` holds cpu::batchnorm_workspace_size(s) floats.
using BatchNormStatsFn = void(const Context& ctx, const BatchNormShape& s, const float* x,
                              float* mean, float* var, float* workspace);
using BatchNormForwardFn = void(const Context& ctx, const BatchNormShape& s, const float* x,
                                const float* mean, const float* invstd, const float* gamma,
                                const float* beta, float* y);
using BatchNormBackwardFn = void(const Context& ctx, const BatchNormShape& s, bool batch_stats,
                                 const float* x, const float* dy, const float* mean,
                                 const float* invstd, const float* gamma, float* dx, float* dgamma,
                                 float* dbeta, float* workspace, bool accumulate);

// Elementwise utilities over count values, and a bias over channels (ops/ref/eltwise_ref.cpp).
using FillFn = void(const Context& ctx, int64_t count, float value, float* y);
using ScaleFn = void(const Context& ctx, int64_t count, float s, float* x);
using CopyFn = void(const Context& ctx, int64_t count, const float* x, float* y);
using AccumulateFn = void(const Context& ctx, int64_t count, const float* x, float* y);
using MultiplyFn = void(const Context& ctx, int64_t count, const float* x, const float* m,
                        float* y);
using MultiplyAccumulateFn = void(const Context& ctx, int64_t count, const float* x, const float* m,
                                  float* y);
using BiasForwardFn = void(const Context& ctx, const BiasShape& s, const float* b, float* y);
using BiasBackwardFn = void(const Context& ctx, const BiasShape& s, const float* dy, float* db);
// Optimizer updates over count parameters and their state (ops/ref/optim_ref.cpp).
using SgdUpdateFn = void(const Context& ctx, int64_t count, const SgdStep<float>& c, float* p,
                         const float* g, float* buf);
using AdamUpdateFn = void(const Context& ctx, int64_t count, const AdamStep<float>& c, float* p,
                          const float* g, float* m, float* v);
using RmsPropUpdateFn = void(const Context& ctx, int64_t count, const RmsPropStep<float>& c,
                             float* p, const float* g, float* v, float* g_avg, float* buf);

using Conv2dForwardVariant = Variant<Conv2dShape, Conv2dForwardFn>;
using Conv2dBackwardDataVariant = Variant<Conv2dShape, Conv2dBackwardDataFn>;
using Conv2dBackwardWeightsVariant = Variant<Conv2dShape, Conv2dBackwardWeightsFn>;
using LinearForwardVariant = Variant<LinearShape, LinearForwardFn>;
using LinearBackwardDataVariant = Variant<LinearShape, LinearBackwardDataFn>;
using LinearBackwardWeightsVariant = Variant<LinearShape, LinearBackwardWeightsFn>;
using MaxPool2dForwardVariant = Variant<Pool2dShape, MaxPool2dForwardFn>;
using MaxPool2dBackwardVariant = Variant<Pool2dShape, MaxPool2dBackwardFn>;
using ReluForwardVariant = Variant<int64_t, ReluForwardFn>;
using ReluBackwardVariant = Variant<int64_t, ReluBackwardFn>;
using AddForwardVariant = Variant<int64_t, AddForwardFn>;
using AddBackwardVariant = Variant<int64_t, AddBackwardFn>;
using BatchNormStatsVariant = Variant<BatchNormShape, BatchNormStatsFn>;
using BatchNormForwardVariant = Variant<BatchNormShape, BatchNormForwardFn>;
using BatchNormBackwardVariant = Variant<BatchNormShape, BatchNormBackwardFn>;
using FillVariant = Variant<int64_t, FillFn>;
using ScaleVariant = Variant<int64_t, ScaleFn>;
using CopyVariant = Variant<int64_t, CopyFn>;
using AccumulateVariant = Variant<int64_t, AccumulateFn>;
using MultiplyVariant = Variant<int64_t, MultiplyFn>;
using MultiplyAccumulateVariant = Variant<int64_t, MultiplyAccumulateFn>;
using BiasForwardVariant = Variant<BiasShape, BiasForwardFn>;
using BiasBackwardVariant = Variant<BiasShape, BiasBackwardFn>;
using SgdUpdateVariant = Variant<int64_t, SgdUpdateFn>;
using AdamUpdateVariant = Variant<int64_t, AdamUpdateFn>;
using RmsPropUpdateVariant = Variant<int64_t, RmsPropUpdateFn>;

// --- the tables (ops/cpu/conv2d.cpp for convolution, ops/cpu/tables.cpp for the rest) --------
std::span<const Conv2dForwardVariant> conv2d_forward_variants();
std::span<const Conv2dBackwardDataVariant> conv2d_backward_data_variants();
std::span<const Conv2dBackwardWeightsVariant> conv2d_backward_weights_variants();
std::span<const LinearForwardVariant> linear_forward_variants();
std::span<const LinearBackwardDataVariant> linear_backward_data_variants();
std::span<const LinearBackwardWeightsVariant> linear_backward_weights_variants();
std::span<const MaxPool2dForwardVariant> maxpool2d_forward_variants();
std::span<const MaxPool2dBackwardVariant> maxpool2d_backward_variants();
std::span<const ReluForwardVariant> relu_forward_variants();
std::span<const ReluBackwardVariant> relu_backward_variants();
std::span<const AddForwardVariant> add_forward_variants();
std::span<const AddBackwardVariant> add_backward_variants();
std::span<const BatchNormStatsVariant> batchnorm_stats_variants();
std::span<const BatchNormForwardVariant> batchnorm_forward_variants();
std::span<const BatchNormBackwardVariant> batchnorm_backward_variants();
std::span<const FillVariant> fill_variants();
std::span<const ScaleVariant> scale_variants();
std::span<const CopyVariant> copy_variants();
std::span<const AccumulateVariant> accumulate_variants();
std::span<const MultiplyVariant> multiply_variants();
std::span<const MultiplyAccumulateVariant> multiply_accumulate_variants();
std::span<const BiasForwardVariant> bias_forward_variants();
std::span<const BiasBackwardVariant> bias_backward_variants();
std::span<const SgdUpdateVariant> sgd_update_variants();
std::span<const AdamUpdateVariant> adam_update_variants();
std::span<const RmsPropUpdateVariant> rmsprop_update_variants();

// Float layers run the tables unless their context selects the reference backend; double
// layers (used for gradient checks) always run the reference kernels.
template <class T>
bool fast_kernels(const Context& ctx) {
  if constexpr (std::is_same_v<T, float>) {
    return ctx.backend() == Backend::Fast;
  } else {
    return false;
  }
}

// --- what layers call: T = float or double ----------------------------------------------------
// Same contracts as ops/ref, except that where `accumulate` is taken, false assigns the
// gradient instead of adding to it. ctx: the layer's context, whose backend picks the kernels,
// whose threads split the work and whose scratch the fast kernels use.

// Sizes ctx's scratch for a convolution of shape s, so that its steps do not allocate.
template <class T>
void reserve_conv2d_scratch(Context& ctx, const Conv2dShape& s) {
  if (!fast_kernels<T>(ctx)) return;
  ctx.scratch(cpu::conv2d_workspace_size(s, ctx.num_threads()));
  cpu::reserve_pack_buffers(ctx);  // a smaller batch may choose a GEMM kernel
}

// Sizes ctx's scratch for a batch norm of shape s.
template <class T>
void reserve_batchnorm_scratch(Context& ctx, const BatchNormShape& s) {
  if (fast_kernels<T>(ctx)) ctx.scratch(cpu::batchnorm_workspace_size(s));
}

template <class T>
void conv2d_forward(Context& ctx, const Conv2dShape& s, const T* x, const T* w, const T* b, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return cpu::conv2d_forward(ctx, s, x, w, b, y,
                                 ctx.scratch(cpu::conv2d_workspace_size(s, ctx.num_threads())));
  }
  ref::conv2d_forward(s, x, w, b, y);
}

template <class T>
void conv2d_backward_data(Context& ctx, const Conv2dShape& s, const T* w, const T* dy, T* dx,
                          bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return cpu::conv2d_backward_data(
          ctx, s, w, dy, dx, ctx.scratch(cpu::conv2d_workspace_size(s, ctx.num_threads())),
          accumulate);
  }
  if (!accumulate) std::fill_n(dx, s.N * s.IC * s.IH * s.IW, T(0));  // the reference adds
  ref::conv2d_backward_data(s, w, dy, dx);
}

template <class T>
void conv2d_backward_weights(Context& ctx, const Conv2dShape& s, const T* x, const T* dy, T* dw,
                             T* db) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return cpu::conv2d_backward_weights(
          ctx, s, x, dy, dw, db, ctx.scratch(cpu::conv2d_workspace_size(s, ctx.num_threads())));
  }
  ref::conv2d_backward_weights(s, x, dy, dw, db);
}

template <class T>
void linear_forward(Context& ctx, const LinearShape& s, const T* x, const T* w, const T* b, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, linear_forward_variants(), s).run(ctx, s, x, w, b, y);
  }
  ref::linear_forward(s, x, w, b, y);
}

template <class T>
void linear_backward_data(Context& ctx, const LinearShape& s, const T* w, const T* dy, T* dx) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, linear_backward_data_variants(), s).run(ctx, s, w, dy, dx);
  }
  ref::linear_backward_data(s, w, dy, dx);
}

template <class T>
void linear_backward_weights(Context& ctx, const LinearShape& s, const T* x, const T* dy, T* dw,
                             T* db) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, linear_backward_weights_variants(), s).run(ctx, s, x, dy, dw, db);
  }
  ref::linear_backward_weights(s, x, dy, dw, db);
}

template <class T>
void maxpool2d_forward(Context& ctx, const Pool2dShape& s, const T* x, T* y, int32_t* argmax) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, maxpool2d_forward_variants(), s).run(ctx, s, x, y, argmax);
  }
  ref::maxpool2d_forward(s, x, y, argmax);
}

template <class T>
void maxpool2d_backward(Context& ctx, const Pool2dShape& s, const T* dy, const int32_t* argmax,
                        T* dx) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, maxpool2d_backward_variants(), s).run(ctx, s, dy, argmax, dx);
  }
  ref::maxpool2d_backward(s, dy, argmax, dx);
}

template <class T>
void relu_forward(Context& ctx, int64_t count, const T* x, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, relu_forward_variants(), count).run(ctx, count, x, y);
  }
  ref::relu_forward(count, x, y);
}

template <class T>
void relu_backward(Context& ctx, int64_t count, const T* x, const T* dy, T* dx, bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, relu_backward_variants(), count).run(ctx, count, x, dy, dx, accumulate);
  }
  if (!accumulate) std::fill_n(dx, count, T(0));  // the reference adds: it is the specification
  ref::relu_backward(count, x, dy, dx);
}

template <class T>
void add_forward(Context& ctx, int64_t count, std::span<const T* const> xs, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, add_forward_variants(), count).run(ctx, count, xs, y);
  }
  ref::add_forward(count, xs, y);
}

template <class T>
void add_backward(Context& ctx, int64_t count, const T* dy, std::span<T* const> dxs,
                  std::span<const bool> assign) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, add_backward_variants(), count).run(ctx, count, dy, dxs, assign);
  }
  ref::add_backward(count, dy, dxs, assign);
}

// Concatenation copies blocks: the reference is as fast as a copy gets, so it has no table.
template <class T>
void concat_forward(Context& /*ctx*/, int64_t N, int64_t inner, std::span<const int64_t> channels,
                    std::span<const T* const> xs, T* y) {
  ref::concat_forward(N, inner, channels, xs, y);
}

template <class T>
void concat_backward(Context& /*ctx*/, int64_t N, int64_t inner, std::span<const int64_t> channels,
                     const T* dy, std::span<T* const> dxs) {
  ref::concat_backward(N, inner, channels, dy, dxs);
}

template <class T>
void batchnorm_stats(Context& ctx, const BatchNormShape& s, const T* x, T* mean, T* var) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, batchnorm_stats_variants(), s)
          .run(ctx, s, x, mean, var, ctx.scratch(cpu::batchnorm_workspace_size(s)));
  }
  ref::batchnorm_stats(s, x, mean, var);
}

template <class T>
void batchnorm_forward(Context& ctx, const BatchNormShape& s, const T* x, const T* mean,
                       const T* invstd, const T* gamma, const T* beta, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, batchnorm_forward_variants(), s)
          .run(ctx, s, x, mean, invstd, gamma, beta, y);
  }
  ref::batchnorm_forward(s, x, mean, invstd, gamma, beta, y);
}

// dx may be null (no input gradient wanted); dgamma and dbeta always accumulate.
template <class T>
void batchnorm_backward(Context& ctx, const BatchNormShape& s, bool batch_stats, const T* x,
                        const T* dy, const T* mean, const T* invstd, const T* gamma, T* dx,
                        T* dgamma, T* dbeta, bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, batchnorm_backward_variants(), s)
          .run(ctx, s, batch_stats, x, dy, mean, invstd, gamma, dx, dgamma, dbeta,
               ctx.scratch(cpu::batchnorm_workspace_size(s)), accumulate);
  }
  if (dx && !accumulate) std::fill_n(dx, s.N * s.C * s.HW, T(0));  // the reference adds
  ref::batchnorm_backward(s, batch_stats, x, dy, mean, invstd, gamma, dx, dgamma, dbeta);
}

// --- elementwise utilities (ops/ref/eltwise_ref.cpp has the formulas) -------------------------
// What the model's gradient loops (zeroing, clipping), Flatten, Dropout and a transposed
// convolution's bias and gradient run.

template <class T>
void fill(const Context& ctx, int64_t count, T value, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx)) return select(ctx, fill_variants(), count).run(ctx, count, value, y);
  }
  ref::fill(count, value, y);
}

template <class T>
void scale(const Context& ctx, int64_t count, T s, T* x) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx)) return select(ctx, scale_variants(), count).run(ctx, count, s, x);
  }
  ref::scale(count, s, x);
}

template <class T>
void copy(const Context& ctx, int64_t count, const T* x, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx)) return select(ctx, copy_variants(), count).run(ctx, count, x, y);
  }
  ref::copy(count, x, y);
}

template <class T>
void accumulate(const Context& ctx, int64_t count, const T* x, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, accumulate_variants(), count).run(ctx, count, x, y);
  }
  ref::accumulate(count, x, y);
}

template <class T>
void multiply(const Context& ctx, int64_t count, const T* x, const T* m, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, multiply_variants(), count).run(ctx, count, x, m, y);
  }
  ref::multiply(count, x, m, y);
}

template <class T>
void multiply_accumulate(const Context& ctx, int64_t count, const T* x, const T* m, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, multiply_accumulate_variants(), count).run(ctx, count, x, m, y);
  }
  ref::multiply_accumulate(count, x, m, y);
}

// The squared L2 norm of a gradient, in double. Reference only: the sum's order is part of its
// value (the norms reported, and whether and how much clipping scales), and a vectorised or
// threaded sum would reorder it.
template <class T>
double sum_squares(const Context& /*ctx*/, int64_t count, const T* x) {
  return ref::sum_squares(count, x);
}

template <class T>
void bias_forward(const Context& ctx, const BiasShape& s, const T* b, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx)) return select(ctx, bias_forward_variants(), s).run(ctx, s, b, y);
  }
  ref::bias_forward(s, b, y);
}

template <class T>
void bias_backward(const Context& ctx, const BiasShape& s, const T* dy, T* db) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx)) return select(ctx, bias_backward_variants(), s).run(ctx, s, dy, db);
  }
  ref::bias_backward(s, dy, db);
}

// Dropout's mask. Reference only: one random stream drawn in order (a split would change which
// draw each element gets, and so every mask).
template <class T>
void dropout_mask(const Context& /*ctx*/, int64_t count, double p, T scale, Rng& rng, T* m) {
  ref::dropout_mask(count, p, scale, rng, m);
}

// --- optimizer updates (ops/ref/optim_ref.cpp; the formulas in convnet/optim.hpp) ------------

template <class T>
void sgd_update(const Context& ctx, int64_t count, const SgdStep<T>& c, T* p, const T* g, T* buf) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, sgd_update_variants(), count).run(ctx, count, c, p, g, buf);
  }
  ref::sgd_update(count, c, p, g, buf);
}

template <class T>
void adam_update(const Context& ctx, int64_t count, const AdamStep<T>& c, T* p, const T* g, T* m,
                 T* v) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, adam_update_variants(), count).run(ctx, count, c, p, g, m, v);
  }
  ref::adam_update(count, c, p, g, m, v);
}

template <class T>
void rmsprop_update(const Context& ctx, int64_t count, const RmsPropStep<T>& c, T* p, const T* g,
                    T* v, T* g_avg, T* buf) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx))
      return select(ctx, rmsprop_update_variants(), count).run(ctx, count, c, p, g, v, g_avg, buf);
  }
  ref::rmsprop_update(count, c, p, g, v, g_avg, buf);
}

// --- losses: reference only -----------------------------------------------------------------
// O(N·K) on the logits, far below a thread split, and the batch's loss is a sum whose order is
// part of its value; the losses take no context.
template <class T>
T softmax_cross_entropy(int64_t N, int64_t M, int64_t K, const T* z, const int32_t* labels,
                        T* dz) {
  return ref::softmax_cross_entropy(N, M, K, z, labels, dz);
}

template <class T>
T mse(int64_t count, int64_t M, const T* p, const T* t, T* dp) {
  return ref::mse(count, M, p, t, dp);
}

template <class T>
T l1(int64_t count, int64_t M, const T* p, const T* t, T* dp) {
  return ref::l1(count, M, p, t, dp);
}

template <class T>
T huber(int64_t count, int64_t M, T delta, const T* p, const T* t, T* dp) {
  return ref::huber(count, M, delta, p, t, dp);
}

// Runs kernel(begin, count) over [0, count): for float under Backend::Fast, large ranges
// (2^14 elements and up) in blocks of 4096 split across threads, each running the reference
// loop (compiled for this ISA, vectorised by the compiler where the function allows) on its
// slice; otherwise in one call. Every element is independent, so the results are the same for
// any thread count. The elementwise activations other than ReLU run this way.
template <class T, class Kernel>
void elementwise(const Context& ctx, int64_t count, Kernel&& kernel) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>(ctx) && count >= (int64_t{1} << 14)) {
      constexpr int64_t kBlock = 4096;
      parallel_for(ctx, 0, (count + kBlock - 1) / kBlock, [&](int64_t lo, int64_t hi, int) {
        const int64_t begin = lo * kBlock, end = std::min(count, hi * kBlock);
        kernel(begin, end - begin);
      });
      return;
    }
  }
  kernel(0, count);
}

}  // namespace convnet::ops
