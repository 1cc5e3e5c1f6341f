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

template float softmax_cross_entropy<float>(int64_t, int64_t, int64_t, const float*,
                                            const int32_t*, float*);
template double softmax_cross_entropy<double>(int64_t, int64_t, int64_t, const double*,
                                              const int32_t*, double*);
template float mse<float>(int64_t, int64_t, const float*, const float*, float*);
template double mse<double>(int64_t, int64_t, const double*, const double*, double*);

}  // namespace convnet::ops::ref
