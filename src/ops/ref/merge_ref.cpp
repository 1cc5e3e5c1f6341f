// Reference merge kernels: the sum of several tensors and the concatenation along channels, and
// their gradients. A graph's Add and Concat nodes run these (or their fast twins).
#include <algorithm>

#include "ops/ref/ref.hpp"

namespace convnet::ops::ref {

template <class T>
void add_forward(int64_t count, std::span<const T* const> xs, T* y) {
  // y = (x0 + x1) + x2 + ...: the first two inputs in one pass, so x0 is not copied and re-read.
  if (xs.size() == 1) {
    std::copy_n(xs[0], count, y);
    return;
  }
  for (int64_t k = 0; k < count; ++k) y[k] = xs[0][k] + xs[1][k];
  for (size_t i = 2; i < xs.size(); ++i)
    for (int64_t k = 0; k < count; ++k) y[k] += xs[i][k];
}

template <class T>
void add_backward(int64_t count, const T* dy, std::span<T* const> dxs,
                  std::span<const bool> assign) {
  // ∂(Σ x_i)/∂x_i = I: every input receives dy unchanged. Inputs are visited in order, so a
  // tensor passed twice is assigned at its first occurrence and added to at the second.
  for (size_t i = 0; i < dxs.size(); ++i) {
    if (!dxs[i]) continue;
    if (assign[i]) {
      std::copy_n(dy, count, dxs[i]);
    } else {
      for (int64_t k = 0; k < count; ++k) dxs[i][k] += dy[k];
    }
  }
}

template <class T>
void concat_forward(int64_t N, int64_t inner, std::span<const int64_t> channels,
                    std::span<const T* const> xs, T* y) {
  int64_t total = 0;
  for (const int64_t c : channels) total += c;
  // y[n, offset_i + c, :] = x_i[n, c, :]: per image, each input's block is contiguous.
  for (int64_t n = 0; n < N; ++n) {
    int64_t offset = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const int64_t block = channels[i] * inner;
      std::copy_n(xs[i] + n * block, block, y + (n * total + offset) * inner);
      offset += channels[i];
    }
  }
}

template <class T>
void concat_backward(int64_t N, int64_t inner, std::span<const int64_t> channels, const T* dy,
                     std::span<T* const> dxs) {
  int64_t total = 0;
  for (const int64_t c : channels) total += c;
  for (int64_t n = 0; n < N; ++n) {
    int64_t offset = 0;
    for (size_t i = 0; i < dxs.size(); ++i) {
      const int64_t block = channels[i] * inner;
      if (dxs[i]) {
        T* out = dxs[i] + n * block;
        const T* in = dy + (n * total + offset) * inner;
        for (int64_t k = 0; k < block; ++k) out[k] += in[k];
      }
      offset += channels[i];
    }
  }
}

#define CONVNET_INSTANTIATE(T)                                                                  \
  template void add_forward<T>(int64_t, std::span<const T* const>, T*);                         \
  template void add_backward<T>(int64_t, const T*, std::span<T* const>, std::span<const bool>); \
  template void concat_forward<T>(int64_t, int64_t, std::span<const int64_t>,                   \
                                  std::span<const T* const>, T*);                               \
  template void concat_backward<T>(int64_t, int64_t, std::span<const int64_t>, const T*,        \
                                   std::span<T* const>);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)

}  // namespace convnet::ops::ref
