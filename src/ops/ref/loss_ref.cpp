// Reference losses with their fused gradients.
#include <algorithm>
#include <cmath>

#include "ops/ref/ref.hpp"

namespace convnet::ops::ref {

template <class T>
T softmax_cross_entropy(int64_t N, int64_t M, int64_t K, const T* z, const int32_t* labels,
                        T* dz) {
  // -log softmax(z)[y] = logsumexp(z) - z[y], with logsumexp(z) = max + log Σ e^(z - max) so no
  // exponent overflows. The gradient of the mean loss is (softmax(z) - onehot(y)) / M; see
  // https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html for the loss.
  T total = 0;
  for (int64_t n = 0; n < N; ++n) {
    const T* zn = z + n * K;
    const T max = *std::max_element(zn, zn + K);
    T sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += std::exp(zn[k] - max);
    const T log_sum = std::log(sum);
    total += max + log_sum - zn[labels[n]];
    if (dz) {
      for (int64_t k = 0; k < K; ++k) {
        const T p = std::exp(zn[k] - max - log_sum);
        dz[n * K + k] = (p - (k == labels[n] ? T(1) : T(0))) / static_cast<T>(M);
      }
    }
  }
  return total / static_cast<T>(M);
}

template <class T>
T mse(int64_t count, int64_t M, const T* p, const T* t, T* dp) {
  T total = 0;
  for (int64_t i = 0; i < count; ++i) {
    const T diff = p[i] - t[i];
    total += diff * diff;
    if (dp) dp[i] = T(2) * diff / static_cast<T>(M);
  }
  return total / static_cast<T>(M);
}

// PyTorch's L1Loss: |p - t|, gradient sign(p - t) (0 where p = t).
template <class T>
T l1(int64_t count, int64_t M, const T* p, const T* t, T* dp) {
  T total = 0;
  for (int64_t i = 0; i < count; ++i) {
    const T diff = p[i] - t[i];
    total += std::abs(diff);
    if (dp) dp[i] = (diff > 0 ? T(1) : diff < 0 ? T(-1) : T(0)) / static_cast<T>(M);
  }
  return total / static_cast<T>(M);
}

// PyTorch's HuberLoss: ½d² where |d| < δ, else δ(|d| - ½δ); gradient d, else δ·sign(d).
template <class T>
T huber(int64_t count, int64_t M, T delta, const T* p, const T* t, T* dp) {
  T total = 0;
  for (int64_t i = 0; i < count; ++i) {
    const T diff = p[i] - t[i], size = std::abs(diff);
    const bool quadratic = size < delta;
    total += quadratic ? T(0.5) * diff * diff : delta * (size - T(0.5) * delta);
    if (dp) dp[i] = (quadratic ? diff : diff > 0 ? delta : -delta) / static_cast<T>(M);
  }
  return total / static_cast<T>(M);
}

template float softmax_cross_entropy<float>(int64_t, int64_t, int64_t, const float*,
                                            const int32_t*, float*);
template double softmax_cross_entropy<double>(int64_t, int64_t, int64_t, const double*,
                                              const int32_t*, double*);
template float mse<float>(int64_t, int64_t, const float*, const float*, float*);
template double mse<double>(int64_t, int64_t, const double*, const double*, double*);
template float l1<float>(int64_t, int64_t, const float*, const float*, float*);
template double l1<double>(int64_t, int64_t, const double*, const double*, double*);
template float huber<float>(int64_t, int64_t, float, const float*, const float*, float*);
template double huber<double>(int64_t, int64_t, double, const double*, const double*, double*);

}  // namespace convnet::ops::ref
