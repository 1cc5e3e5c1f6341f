// SGD with momentum, dampening, Nesterov and weight decay; formulas in include/convnet/optim.hpp.
#include "convnet/optim.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
Sgd<T>::Sgd(const SgdOptions& o) : o_(o) {
  CONVNET_CHECK(o.lr >= 0.0, "sgd: learning rate must be >= 0, got ", o.lr);
  CONVNET_CHECK(o.momentum >= 0.0, "sgd: momentum must be >= 0, got ", o.momentum);
  CONVNET_CHECK(o.weight_decay >= 0.0, "sgd: weight decay must be >= 0, got ", o.weight_decay);
  CONVNET_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0),
                "sgd: nesterov needs momentum > 0 and dampening 0 (momentum ", o.momentum,
                ", dampening ", o.dampening, ")");
}

template <class T>
void Sgd<T>::update(const Context& ctx, std::span<T> p, std::span<const T> g,
                    std::span<T* const> state, double learning_rate) {
  const ops::SgdStep<T> c{.lr = static_cast<T>(learning_rate),
                          .weight_decay = static_cast<T>(o_.weight_decay),
                          .momentum = static_cast<T>(o_.momentum),
                          .damp = static_cast<T>(1.0 - o_.dampening),
                          .first = this->steps_ == 1,
                          .nesterov = o_.nesterov};
  ops::sgd_update(ctx, static_cast<int64_t>(p.size()), c, p.data(), g.data(),
                  state.empty() ? nullptr : state[0]);
}

template class Sgd<float>;
template class Sgd<double>;

}  // namespace convnet
