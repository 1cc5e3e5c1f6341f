// Reference batch normalisation. The statistics are two-pass (mean first, then the mean squared
// deviation), which stays accurate when |mean| >> stddev.
#include "ops/ref/ref.hpp"

namespace convnet::ops::ref {

template <class T>
void batchnorm_stats(const BatchNormShape& s, const T* x, T* mean, T* var) {
  const T M = static_cast<T>(s.M());
  for (int64_t c = 0; c < s.C; ++c) {
    T sum = 0;
    for (int64_t n = 0; n < s.N; ++n) {
      const T* xc = x + (n * s.C + c) * s.HW;
      for (int64_t i = 0; i < s.HW; ++i) sum += xc[i];
    }
    const T mu = sum / M;
    T sq = 0;
    for (int64_t n = 0; n < s.N; ++n) {
      const T* xc = x + (n * s.C + c) * s.HW;
      for (int64_t i = 0; i < s.HW; ++i) sq += (xc[i] - mu) * (xc[i] - mu);
    }
    mean[c] = mu;
    var[c] = sq / M;
  }
}

template <class T>
void batchnorm_forward(const BatchNormShape& s, const T* x, const T* mean, const T* invstd,
                       const T* gamma, const T* beta, T* y) {
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t c = 0; c < s.C; ++c) {
      const T g = gamma ? gamma[c] : T(1), b = beta ? beta[c] : T(0);
      const T* xc = x + (n * s.C + c) * s.HW;
      T* yc = y + (n * s.C + c) * s.HW;
      for (int64_t i = 0; i < s.HW; ++i) yc[i] = g * ((xc[i] - mean[c]) * invstd[c]) + b;
    }
}

template <class T>
void batchnorm_backward(const BatchNormShape& s, bool batch_stats, const T* x, const T* dy,
                        const T* mean, const T* invstd, const T* gamma, T* dx, T* dgamma,
                        T* dbeta) {
  const T M = static_cast<T>(s.M());
  for (int64_t c = 0; c < s.C; ++c) {
    // Σ dy and Σ dy·x̂ over the channel: dβ, dγ, and the two correction terms of dx.
    T sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t n = 0; n < s.N; ++n) {
      const T* xc = x + (n * s.C + c) * s.HW;
      const T* dyc = dy + (n * s.C + c) * s.HW;
      for (int64_t i = 0; i < s.HW; ++i) {
        sum_dy += dyc[i];
        sum_dy_xhat += dyc[i] * (xc[i] - mean[c]) * invstd[c];
      }
    }
    if (dgamma) dgamma[c] += sum_dy_xhat;
    if (dbeta) dbeta[c] += sum_dy;
    if (!dx) continue;
    const T k = (gamma ? gamma[c] : T(1)) * invstd[c];
    // Training: dx = k·(dy − mean(dy) − x̂·mean(dy·x̂)); eval: dx = k·dy.
    const T mean_dy = batch_stats ? sum_dy / M : T(0);
    const T mean_dy_xhat = batch_stats ? sum_dy_xhat / M : T(0);
    for (int64_t n = 0; n < s.N; ++n) {
      const T* xc = x + (n * s.C + c) * s.HW;
      const T* dyc = dy + (n * s.C + c) * s.HW;
      T* dxc = dx + (n * s.C + c) * s.HW;
      for (int64_t i = 0; i < s.HW; ++i) {
        const T xhat = (xc[i] - mean[c]) * invstd[c];
        dxc[i] += k * (dyc[i] - mean_dy - xhat * mean_dy_xhat);
      }
    }
  }
}

#define CONVNET_INSTANTIATE(T)                                                                 \
  template void batchnorm_stats<T>(const BatchNormShape&, const T*, T*, T*);                   \
  template void batchnorm_forward<T>(const BatchNormShape&, const T*, const T*, const T*,      \
                                     const T*, const T*, T*);                                  \
  template void batchnorm_backward<T>(const BatchNormShape&, bool, const T*, const T*,         \
                                      const T*, const T*, const T*, T*, T*, T*);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)

}  // namespace convnet::ops::ref
