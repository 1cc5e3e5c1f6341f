// RMSProp, plain or centered, with optional momentum; formulas in include/convnet/optim.hpp.
#include <cmath>

#include "convnet/optim.hpp"
#include "ops/kernels.hpp"

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
void RmsProp<T>::update(const Context& ctx, std::span<T> p, std::span<const T> g,
                        std::span<T* const> state, double learning_rate) {
  const ops::RmsPropStep<T> c{.lr = static_cast<T>(learning_rate),
                              .alpha = static_cast<T>(o_.alpha),
                              .eps = static_cast<T>(o_.eps),
                              .weight_decay = static_cast<T>(o_.weight_decay),
                              .momentum = static_cast<T>(o_.momentum),
                              .centered = o_.centered,
                              .use_momentum = o_.momentum > 0.0};
  ops::rmsprop_update(ctx, static_cast<int64_t>(p.size()), c, p.data(), g.data(), state[0],
                      state[1], state[2]);
}

template class RmsProp<float>;
template class RmsProp<double>;

}  // namespace convnet
