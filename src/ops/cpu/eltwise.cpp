// Fast elementwise kernels: ReLU forward and backward, max-pool backward, and filling, split
// across threads (they are memory-bound, so a single thread would cap the step's scaling) and
// vectorised by the compiler for each ISA (target_clones).
#include <algorithm>

#include "convnet/context.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/cpu/multiversion.hpp"

namespace convnet::ops::cpu {
namespace {

// Chunks of at least this many elements per thread, so small tensors stay on one thread.
constexpr int64_t kGrain = 1 << 14;

template <class Fn>
void split(const Context& ctx, int64_t count, Fn&& fn) {
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(ctx.num_threads(), count / kGrain));
  parallel_for(ctx, 0, chunks,
               [&](int64_t lo, int64_t hi, int) { fn(count * lo / chunks, count * hi / chunks); });
}

CONVNET_MULTIVERSION
void relu_forward_range(const float* __restrict x, float* __restrict y, int64_t lo, int64_t hi) {
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

}  // namespace

void relu_forward(const Context& ctx, int64_t count, const float* x, float* y) {
  split(ctx, count, [&](int64_t lo, int64_t hi) { relu_forward_range(x, y, lo, hi); });
}

void relu_backward(const Context& ctx, int64_t count, const float* x, const float* dy, float* dx,
                   bool accumulate) {
  split(ctx, count, [&](int64_t lo, int64_t hi) {
    if (accumulate) {
      relu_backward_range(x, dy, dx, lo, hi);
    } else {
      relu_backward_assign_range(x, dy, dx, lo, hi);
    }
  });
}

void fill(const Context& ctx, int64_t count, float value, float* y) {
  split(ctx, count, [&](int64_t lo, int64_t hi) { fill_range(y, value, lo, hi); });
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
