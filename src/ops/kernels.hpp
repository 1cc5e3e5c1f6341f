// Kernel tables and dispatch. Each op and direction has one table of variants
// {name, isa, supports(shape), run}, kept beside its kernels (ops/cpu/conv2d.cpp,
// ops/cpu/tables.cpp). A table is in order of preference: dispatch runs the first variant whose
// supports() accepts the shape, so the order and the predicates are the whole selection rule.
// The last variant of every table accepts every shape the ones before it leave, so dispatch
// always finds one. Layers call the functions at the end of this header, which run the tables
// for float under Backend::Fast and the reference kernels (ops/ref) for double or under
// Backend::Reference; the kernel tests and bench_kernels iterate the same tables.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>

#include "convnet/error.hpp"
#include "convnet/runtime.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/ref/ref.hpp"
#include "ops/shapes.hpp"

namespace convnet::ops {

// The instruction set a variant is written for. Baseline: plain C++, compiled per ISA where it
// is vectorised (CONVNET_MULTIVERSION) or built on sgemm, whose micro-kernel is chosen at run
// time; it runs on every CPU. Avx512: hand-written AVX-512 code, whose supports() is false on
// CPUs (or with sgemm micro-kernels) without it.
enum class Isa { Baseline, Avx512 };
const char* isa_name(Isa isa);

template <class ShapeT, class Fn>
struct Variant {
  using Shape = ShapeT;
  const char* name;
  Isa isa;
  bool (*supports)(const ShapeT&);
  Fn* run;
};

// The first variant of `table` that supports s.
template <class V>
const V& select(std::span<const V> table, const typename V::Shape& s) {
  for (const V& v : table)
    if (v.supports(s)) return v;
  throw Error("no kernel variant supports this shape");  // a table's last variant prevents this
}

// --- signatures (float, same contracts as ops/ref unless said) -------------------------------
// Convolution: `workspace` holds cpu::conv2d_workspace_size(s, num_threads()) floats, room for
// every variant. Backward data accumulates into dx, or with accumulate = false assigns it.
using Conv2dForwardFn = void(const Conv2dShape& s, const float* x, const float* w, const float* b,
                             float* y, float* workspace);
using Conv2dBackwardDataFn = void(const Conv2dShape& s, const float* w, const float* dy, float* dx,
                                  float* workspace, bool accumulate);
using Conv2dBackwardWeightsFn = void(const Conv2dShape& s, const float* x, const float* dy,
                                     float* dw, float* db, float* workspace);
using LinearForwardFn = void(const LinearShape& s, const float* x, const float* w, const float* b,
                             float* y);
using LinearBackwardDataFn = void(const LinearShape& s, const float* w, const float* dy, float* dx);
using LinearBackwardWeightsFn = void(const LinearShape& s, const float* x, const float* dy,
                                     float* dw, float* db);
using MaxPool2dForwardFn = void(const Pool2dShape& s, const float* x, float* y, int32_t* argmax);
using MaxPool2dBackwardFn = void(const Pool2dShape& s, const float* dy, const int32_t* argmax,
                                 float* dx);
// Elementwise kernels take the element count as their shape.
using ReluForwardFn = void(int64_t count, const float* x, float* y);
using ReluBackwardFn = void(int64_t count, const float* x, const float* dy, float* dx,
                            bool accumulate);
// Add: the element count as its shape; at most 16 inputs.
using AddForwardFn = void(int64_t count, std::span<const float* const> xs, float* y);
using AddBackwardFn = void(int64_t count, const float* dy, std::span<float* const> dxs,
                           std::span<const bool> assign);
// Batch norm: `workspace` holds cpu::batchnorm_workspace_size(s) floats.
using BatchNormStatsFn = void(const BatchNormShape& s, const float* x, float* mean, float* var,
                              float* workspace);
using BatchNormForwardFn = void(const BatchNormShape& s, const float* x, const float* mean,
                                const float* invstd, const float* gamma, const float* beta,
                                float* y);
using BatchNormBackwardFn = void(const BatchNormShape& s, bool batch_stats, const float* x,
                                 const float* dy, const float* mean, const float* invstd,
                                 const float* gamma, float* dx, float* dgamma, float* dbeta,
                                 float* workspace, bool accumulate);

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

// Scratch memory for the fast kernels, shared by every layer that runs on this thread: layers
// run one at a time and keep nothing in it between calls, so one buffer sized for the largest
// need serves a whole model (a per-layer buffer would hold one copy per convolution). Grows
// (allocates) only when a larger size is asked for; a layer's build() asks first (through
// reserve_conv2d_scratch), so steps do not.
float* kernel_scratch(int64_t floats);

// Float layers run the tables unless the reference backend is selected; double layers (used
// for gradient checks) always run the reference kernels.
template <class T>
bool fast_kernels() {
  if constexpr (std::is_same_v<T, float>) {
    return backend() == Backend::Fast;
  } else {
    return false;
  }
}

// --- what layers call: T = float or double ----------------------------------------------------
// Same contracts as ops/ref, except that where `accumulate` is taken, false assigns the
// gradient instead of adding to it.

// Sizes the shared scratch for a convolution of shape s, so that its steps do not allocate.
template <class T>
void reserve_conv2d_scratch(const Conv2dShape& s) {
  if (fast_kernels<T>()) kernel_scratch(cpu::conv2d_workspace_size(s, num_threads()));
}

// Sizes the shared scratch for a batch norm of shape s (float layers, either backend).
template <class T>
void reserve_batchnorm_scratch(const BatchNormShape& s) {
  if constexpr (std::is_same_v<T, float>) kernel_scratch(cpu::batchnorm_workspace_size(s));
}

// y[0:count) = 0: threaded for float (under either backend: zeros are zeros), a plain fill for
// double.
template <class T>
void zero(int64_t count, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    cpu::fill(count, 0.0f, y);
  } else {
    std::fill_n(y, count, T(0));
  }
}

template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>())
      return cpu::conv2d_forward(s, x, w, b, y,
                                 kernel_scratch(cpu::conv2d_workspace_size(s, num_threads())));
  }
  ref::conv2d_forward(s, x, w, b, y);
}

template <class T>
void conv2d_backward_data(const Conv2dShape& s, const T* w, const T* dy, T* dx, bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>())
      return cpu::conv2d_backward_data(
          s, w, dy, dx, kernel_scratch(cpu::conv2d_workspace_size(s, num_threads())), accumulate);
  }
  if (!accumulate) std::fill_n(dx, s.N * s.IC * s.IH * s.IW, T(0));  // the reference adds
  ref::conv2d_backward_data(s, w, dy, dx);
}

template <class T>
void conv2d_backward_weights(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>())
      return cpu::conv2d_backward_weights(
          s, x, dy, dw, db, kernel_scratch(cpu::conv2d_workspace_size(s, num_threads())));
  }
  ref::conv2d_backward_weights(s, x, dy, dw, db);
}

template <class T>
void linear_forward(const LinearShape& s, const T* x, const T* w, const T* b, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>()) return select(linear_forward_variants(), s).run(s, x, w, b, y);
  }
  ref::linear_forward(s, x, w, b, y);
}

template <class T>
void linear_backward_data(const LinearShape& s, const T* w, const T* dy, T* dx) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>()) return select(linear_backward_data_variants(), s).run(s, w, dy, dx);
  }
  ref::linear_backward_data(s, w, dy, dx);
}

template <class T>
void linear_backward_weights(const LinearShape& s, const T* x, const T* dy, T* dw, T* db) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>())
      return select(linear_backward_weights_variants(), s).run(s, x, dy, dw, db);
  }
  ref::linear_backward_weights(s, x, dy, dw, db);
}

template <class T>
void maxpool2d_forward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>()) return select(maxpool2d_forward_variants(), s).run(s, x, y, argmax);
  }
  ref::maxpool2d_forward(s, x, y, argmax);
}

template <class T>
void maxpool2d_backward(const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>()) return select(maxpool2d_backward_variants(), s).run(s, dy, argmax, dx);
  }
  ref::maxpool2d_backward(s, dy, argmax, dx);
}

template <class T>
void relu_forward(int64_t count, const T* x, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>()) return select(relu_forward_variants(), count).run(count, x, y);
  }
  ref::relu_forward(count, x, y);
}

template <class T>
void relu_backward(int64_t count, const T* x, const T* dy, T* dx, bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>())
      return select(relu_backward_variants(), count).run(count, x, dy, dx, accumulate);
  }
  if (!accumulate) std::fill_n(dx, count, T(0));  // the reference adds: it is the specification
  ref::relu_backward(count, x, dy, dx);
}

template <class T>
void add_forward(int64_t count, std::span<const T* const> xs, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>()) return select(add_forward_variants(), count).run(count, xs, y);
  }
  ref::add_forward(count, xs, y);
}

template <class T>
void add_backward(int64_t count, const T* dy, std::span<T* const> dxs,
                  std::span<const bool> assign) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>())
      return select(add_backward_variants(), count).run(count, dy, dxs, assign);
  }
  ref::add_backward(count, dy, dxs, assign);
}

// Concatenation copies blocks: the reference is as fast as a copy gets, so it has no table.
template <class T>
void concat_forward(int64_t N, int64_t inner, std::span<const int64_t> channels,
                    std::span<const T* const> xs, T* y) {
  ref::concat_forward(N, inner, channels, xs, y);
}

template <class T>
void concat_backward(int64_t N, int64_t inner, std::span<const int64_t> channels, const T* dy,
                     std::span<T* const> dxs) {
  ref::concat_backward(N, inner, channels, dy, dxs);
}

template <class T>
void batchnorm_stats(const BatchNormShape& s, const T* x, T* mean, T* var) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>())
      return select(batchnorm_stats_variants(), s)
          .run(s, x, mean, var, kernel_scratch(cpu::batchnorm_workspace_size(s)));
  }
  ref::batchnorm_stats(s, x, mean, var);
}

template <class T>
void batchnorm_forward(const BatchNormShape& s, const T* x, const T* mean, const T* invstd,
                       const T* gamma, const T* beta, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>())
      return select(batchnorm_forward_variants(), s).run(s, x, mean, invstd, gamma, beta, y);
  }
  ref::batchnorm_forward(s, x, mean, invstd, gamma, beta, y);
}

// dx may be null (no input gradient wanted); dgamma and dbeta always accumulate.
template <class T>
void batchnorm_backward(const BatchNormShape& s, bool batch_stats, const T* x, const T* dy,
                        const T* mean, const T* invstd, const T* gamma, T* dx, T* dgamma, T* dbeta,
                        bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>())
      return select(batchnorm_backward_variants(), s)
          .run(s, batch_stats, x, dy, mean, invstd, gamma, dx, dgamma, dbeta,
               kernel_scratch(cpu::batchnorm_workspace_size(s)), accumulate);
  }
  if (dx && !accumulate) std::fill_n(dx, s.N * s.C * s.HW, T(0));  // the reference adds
  ref::batchnorm_backward(s, batch_stats, x, dy, mean, invstd, gamma, dx, dgamma, dbeta);
}

// Runs kernel(begin, count) over [0, count): for float under Backend::Fast, large ranges
// (2^14 elements and up) in blocks of 4096 split across threads, each running the reference
// loop (compiled for this ISA, vectorised by the compiler where the function allows) on its
// slice; otherwise in one call. Every element is independent, so the results are the same for
// any thread count. The elementwise activations other than ReLU run this way.
template <class T, class Kernel>
void elementwise(int64_t count, Kernel&& kernel) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast_kernels<T>() && count >= (int64_t{1} << 14)) {
      constexpr int64_t kBlock = 4096;
      parallel_for(0, (count + kBlock - 1) / kBlock, [&](int64_t lo, int64_t hi, int) {
        const int64_t begin = lo * kBlock, end = std::min(count, hi * kBlock);
        kernel(begin, end - begin);
      });
      return;
    }
  }
  kernel(0, count);
}

}  // namespace convnet::ops
