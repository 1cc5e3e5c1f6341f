// RMSProp, plain or centered, with optional momentum; formulas in include/convnet/optim.hpp.
#include <cmath>

#include "convnet/optim.hpp"

namespace convnet {

template <class T>
RmsProp<T>::RmsProp(const RmsPropOptions& o) : o_(o) {
  CONVNET_CHECK(o.lr >= 0.0, "rmsprop: learning rate must be >= 0, got ", o.lr);
  CONVNET_CHECK(o.alpha >= 0.0, "rmsprop: alpha must be >= 0, got ", o.alpha);
  CONVNET_CHECK(o.eps >= 0.0, "rmsprop: eps must be >= 0, got ", o.eps);
  CONVNET_CHECK(o.momentum >= 0.0, "rmsprop: momentum must be >= 0, got ", o.momentum);
  CONVNET_CHECK(o.weight_decay >= 0.0, "rmsprop: weight decay must be >= 0, got ", o.weight_decay);
}

template <class T>
void RmsProp<T>::update(std::span<T> p, std::span<const T> g, std::span<T* const> state,
                        double learning_rate) {
  const T lr = static_cast<T>(learning_rate), alpha = static_cast<T>(o_.alpha);
  const T eps = static_cast<T>(o_.eps), wd = static_cast<T>(o_.weight_decay);
  const T mu = static_cast<T>(o_.momentum);
  T* v = state[0];
  T* g_avg = state[1];
  T* buf = state[2];
  for (size_t i = 0; i < p.size(); ++i) {
    const T d = g[i] + wd * p[i];
    v[i] = alpha * v[i] + (T(1) - alpha) * d * d;
    T avg;
    if (o_.centered) {
      g_avg[i] = alpha * g_avg[i] + (T(1) - alpha) * d;
      avg = std::sqrt(v[i] - g_avg[i] * g_avg[i]) + eps;
    } else {
      avg = std::sqrt(v[i]) + eps;
    }
    if (o_.momentum > 0.0) {
      buf[i] = mu * buf[i] + d / avg;
      p[i] -= lr * buf[i];
    } else {
      p[i] -= lr * d / avg;
    }
  }
}

template class RmsProp<float>;
template class RmsProp<double>;

}  // namespace convnet
