// MeanSquaredError: checks the target's shape, then the reference kernel.
#include "convnet/loss.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
T MeanSquaredError<T>::compute(const Tensor<T>& p, const Targets<T>& targets, Tensor<T>* grad) {
  CONVNET_CHECK(targets.values != nullptr, "mse: needs a target tensor, got none");
  check_shape(targets.values->shape(), p.shape(), "mse target");
  if (grad) grad->resize(p.shape());
  return ops::mse(p.numel(), p.data(), targets.values->data(), grad ? grad->data() : nullptr);
}

template class MeanSquaredError<float>;
template class MeanSquaredError<double>;

}  // namespace convnet
