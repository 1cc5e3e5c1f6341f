// Reference optimizer updates: one loop over a parameter arena (or one tensor) and its state,
// each element's expression written exactly as the formula in convnet/optim.hpp orders it
// (PyTorch 1.13's; for Adam see https://pytorch.org/docs/1.13/generated/torch.optim.Adam.html).
#include <cmath>

#include "ops/ref/ref.hpp"

namespace convnet::ops::ref {

template <class T>
void sgd_update(int64_t count, const SgdStep<T>& c, T* p, const T* g, T* buf) {
  for (int64_t i = 0; i < count; ++i) {
    T d = g[i] + c.weight_decay * p[i];
    if (buf) {
      buf[i] = c.first ? d : c.momentum * buf[i] + c.damp * d;  // no dampening on the first step
      d = c.nesterov ? d + c.momentum * buf[i] : buf[i];
    }
    p[i] -= c.lr * d;
  }
}

template <class T>
void adam_update(int64_t count, const AdamStep<T>& c, T* p, const T* g, T* m, T* v) {
  for (int64_t i = 0; i < count; ++i) {
    T d = g[i];
    if (c.decoupled)
      p[i] *= c.decay;
    else
      d += c.weight_decay * p[i];
    m[i] = c.beta1 * m[i] + (T(1) - c.beta1) * d;
    v[i] = c.beta2 * v[i] + (T(1) - c.beta2) * d * d;
    // eps after the bias correction of v, as PyTorch orders it
    p[i] -= c.step_size * m[i] / (std::sqrt(v[i]) / c.sqrt_bc2 + c.eps);
  }
}

template <class T>
void rmsprop_update(int64_t count, const RmsPropStep<T>& c, T* p, const T* g, T* v, T* g_avg,
                    T* buf) {
  for (int64_t i = 0; i < count; ++i) {
    const T d = g[i] + c.weight_decay * p[i];
    v[i] = c.alpha * v[i] + (T(1) - c.alpha) * d * d;
    T avg;
    if (c.centered) {
      g_avg[i] = c.alpha * g_avg[i] + (T(1) - c.alpha) * d;
      avg = std::sqrt(v[i] - g_avg[i] * g_avg[i]) + c.eps;
    } else {
      avg = std::sqrt(v[i]) + c.eps;
    }
    if (c.use_momentum) {
      buf[i] = c.momentum * buf[i] + d / avg;
      p[i] -= c.lr * buf[i];
    } else {
      p[i] -= c.lr * d / avg;
    }
  }
}

#define CONVNET_INSTANTIATE(T)                                                     \
  template void sgd_update<T>(int64_t, const SgdStep<T>&, T*, const T*, T*);       \
  template void adam_update<T>(int64_t, const AdamStep<T>&, T*, const T*, T*, T*); \
  template void rmsprop_update<T>(int64_t, const RmsPropStep<T>&, T*, const T*, T*, T*, T*);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)

}  // namespace convnet::ops::ref
