// Fast Add: the reference sum and its gradient over blocks of the tensor split across threads
// (memory-bound, like the other elementwise kernels). Each element is independent, so the
// result does not depend on the split: it is the reference's, bit for bit.
#include <algorithm>

#include "convnet/context.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/ref/ref.hpp"

namespace convnet::ops::cpu {
namespace {

constexpr int64_t kBlock = 4096;
constexpr size_t kMaxInputs = 16;

// body(begin, end) over [0, count): one call for small tensors, blocks across threads else.
template <class Body>
void split_blocks(const Context& ctx, int64_t count, Body&& body) {
  if (count < 4 * kBlock) {
    body(0, count);
    return;
  }
  parallel_for(ctx, 0, (count + kBlock - 1) / kBlock, [&](int64_t lo, int64_t hi, int) {
    body(lo * kBlock, std::min(count, hi * kBlock));
  });
}

}  // namespace

void add_forward(const Context& ctx, int64_t count, std::span<const float* const> xs, float* y) {
  split_blocks(ctx, count, [&](int64_t begin, int64_t end) {
    const float* part[kMaxInputs];
    for (size_t i = 0; i < xs.size(); ++i) part[i] = xs[i] + begin;
    ref::add_forward<float>(end - begin, std::span<const float* const>(part, xs.size()), y + begin);
  });
}

void add_backward(const Context& ctx, int64_t count, const float* dy, std::span<float* const> dxs,
                  std::span<const bool> assign) {
  split_blocks(ctx, count, [&](int64_t begin, int64_t end) {
    float* part[kMaxInputs];
    for (size_t i = 0; i < dxs.size(); ++i) part[i] = dxs[i] ? dxs[i] + begin : nullptr;
    ref::add_backward<float>(end - begin, dy + begin, std::span<float* const>(part, dxs.size()),
                             assign);
  });
}

}  // namespace convnet::ops::cpu
