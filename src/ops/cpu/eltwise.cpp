// Fast elementwise kernels: ReLU forward and backward, max-pool backward, filling, scaling,
// copying, adding and multiplying (Flatten, Dropout, gradient clipping), and a bias over
// channels, split across threads (they are memory-bound, so a single thread would cap the step's
// scaling) and vectorised by the compiler for each ISA (target_clones). Each computes its
// reference's expression per element, so the results are the reference's bit for bit: this file
// is built with -ffp-contract=off (CMakeLists.txt), so that no clone fuses y + x·m into an FMA.
#include <algorithm>

#include "convnet/context.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/cpu/multiversion.hpp"
#include "ops/ref/ref.hpp"

namespace convnet::ops::cpu {
namespace {

CONVNET_MULTIVERSION
// x and y may be the same array (ReLU in place, convnet/executor.hpp): no __restrict here.
void relu_forward_range(const float* x, float* y, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

CONVNET_MULTIVERSION
void relu_backward_range(const float* __restrict x, const float* __restrict dy,
                         float* __restrict dx, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
}

CONVNET_MULTIVERSION
void relu_backward_assign_range(const float* __restrict x, const float* __restrict dy,
                                float* __restrict dx, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

CONVNET_MULTIVERSION
void fill_range(float* __restrict y, float value, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) y[i] = value;
}

CONVNET_MULTIVERSION
void scale_range(float* __restrict x, float s, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) x[i] *= s;
}

CONVNET_MULTIVERSION
void accumulate_range(const float* __restrict x, float* __restrict y, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) y[i] += x[i];
}

CONVNET_MULTIVERSION
void multiply_range(const float* __restrict x, const float* __restrict m, float* __restrict y,
                    int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) y[i] = x[i] * m[i];
}

CONVNET_MULTIVERSION
void multiply_accumulate_range(const float* __restrict x, const float* __restrict m,
                               float* __restrict y, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) y[i] += x[i] * m[i];
}

CONVNET_MULTIVERSION
void add_scalar_range(float b, float* __restrict y, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) y[i] += b;
}

}  // namespace

void relu_forward(const Context& ctx, int64_t count, const float* x, float* y) {
  split_elementwise(ctx, count, [&](int64_t lo, int64_t hi) { relu_forward_range(x, y, lo, hi); });
}

void relu_backward(const Context& ctx, int64_t count, const float* x, const float* dy, float* dx,
                   bool accumulate) {
  split_elementwise(ctx, count, [&](int64_t lo, int64_t hi) {
    if (accumulate) {
      relu_backward_range(x, dy, dx, lo, hi);
    } else {
      relu_backward_assign_range(x, dy, dx, lo, hi);
    }
  });
}

void fill(const Context& ctx, int64_t count, float value, float* y) {
  split_elementwise(ctx, count, [&](int64_t lo, int64_t hi) { fill_range(y, value, lo, hi); });
}

void scale(const Context& ctx, int64_t count, float s, float* x) {
  split_elementwise(ctx, count, [&](int64_t lo, int64_t hi) { scale_range(x, s, lo, hi); });
}

void copy(const Context& ctx, int64_t count, const float* x, float* y) {
  split_elementwise(ctx, count, [&](int64_t lo, int64_t hi) { std::copy(x + lo, x + hi, y + lo); });
}

void accumulate(const Context& ctx, int64_t count, const float* x, float* y) {
  split_elementwise(ctx, count, [&](int64_t lo, int64_t hi) { accumulate_range(x, y, lo, hi); });
}

void multiply(const Context& ctx, int64_t count, const float* x, const float* m, float* y) {
  split_elementwise(ctx, count, [&](int64_t lo, int64_t hi) { multiply_range(x, m, y, lo, hi); });
}

void multiply_accumulate(const Context& ctx, int64_t count, const float* x, const float* m,
                         float* y) {
  split_elementwise(ctx, count,
                    [&](int64_t lo, int64_t hi) { multiply_accumulate_range(x, m, y, lo, hi); });
}

void bias_forward(const Context& ctx, const BiasShape& s, const float* b, float* y) {
  if (s.N * s.C * s.HW < kElementwiseGrain) return ref::bias_forward(s, b, y);
  parallel_for(ctx, 0, s.N * s.C, [&](int64_t lo, int64_t hi, int) {
    for (int64_t p = lo; p < hi; ++p) add_scalar_range(b[p % s.C], y + p * s.HW, 0, s.HW);
  });
}

// Threads own whole channels, and each adds its planes in n order: the reference's sums.
void bias_backward(const Context& ctx, const BiasShape& s, const float* dy, float* db) {
  if (s.N * s.C * s.HW < kElementwiseGrain) return ref::bias_backward(s, dy, db);
  parallel_for(ctx, 0, s.C, [&](int64_t lo, int64_t hi, int) {
    for (int64_t n = 0; n < s.N; ++n)
      ref::bias_backward(BiasShape{.N = 1, .C = hi - lo, .HW = s.HW}, dy + (n * s.C + lo) * s.HW,
                         db + lo);
  });
}

void maxpool2d_backward(const Context& ctx, const Pool2dShape& s, const float* dy,
                        const int32_t* argmax, float* dx) {
  // Planes are independent: each thread scatters into its own planes of dx.
  const int64_t in_plane = s.IH * s.IW, out_plane = s.OH() * s.OW();
  parallel_for(ctx, 0, s.N * s.C, [&](int64_t lo, int64_t hi, int) {
    for (int64_t p = lo; p < hi; ++p) {
      const int32_t* idx = argmax + p * out_plane;
      const float* g = dy + p * out_plane;
      float* d = dx + p * in_plane;
      for (int64_t o = 0; o < out_plane; ++o)
        if (idx[o] >= 0) d[idx[o]] += g[o];
    }
  });
}

}  // namespace convnet::ops::cpu
