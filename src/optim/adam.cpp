// Adam and AdamW; formulas in include/convnet/optim.hpp, bias correction as in
// https://pytorch.org/docs/1.13/generated/torch.optim.Adam.html and AdamW's defaults as in
// https://pytorch.org/docs/1.13/generated/torch.optim.AdamW.html
#include <cmath>

#include "convnet/optim.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
Adam<T>::Adam(const AdamOptions& o) : o_(o) {
  CONVNET_CHECK(o.lr >= 0.0, name(), ": learning rate must be >= 0, got ", o.lr);
  CONVNET_CHECK(o.beta1 >= 0.0 && o.beta1 < 1.0 && o.beta2 >= 0.0 && o.beta2 < 1.0, name(),
                ": betas must be in [0, 1), got (", o.beta1, ", ", o.beta2, ")");
  CONVNET_CHECK(o.eps >= 0.0, name(), ": eps must be >= 0, got ", o.eps);
  CONVNET_CHECK(o.weight_decay >= 0.0, name(), ": weight decay must be >= 0, got ", o.weight_decay);
}

template <class T>
void Adam<T>::update(const Context& ctx, std::span<T> p, std::span<const T> g,
                     std::span<T* const> state, double lr) {
  const double t = static_cast<double>(this->steps_);
  const ops::AdamStep<T> c{.beta1 = static_cast<T>(o_.beta1),
                           .beta2 = static_cast<T>(o_.beta2),
                           .step_size = static_cast<T>(lr / (1.0 - std::pow(o_.beta1, t))),
                           .sqrt_bc2 = static_cast<T>(std::sqrt(1.0 - std::pow(o_.beta2, t))),
                           .eps = static_cast<T>(o_.eps),
                           .weight_decay = static_cast<T>(o_.weight_decay),
                           .decay = static_cast<T>(1.0 - lr * o_.weight_decay),
                           .decoupled = o_.decoupled};
  ops::adam_update(ctx, static_cast<int64_t>(p.size()), c, p.data(), g.data(), state[0], state[1]);
}

template <class T>
AdamW<T>::AdamW(const AdamWOptions& o)
    : Adam<T>({.lr = o.lr,
               .beta1 = o.beta1,
               .beta2 = o.beta2,
               .eps = o.eps,
               .weight_decay = o.weight_decay,
               .decoupled = true}) {}

template class Adam<float>;
template class Adam<double>;
template class AdamW<float>;
template class AdamW<double>;

}  // namespace convnet
