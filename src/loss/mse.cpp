// MeanSquaredError: checks the target's shape, then the reference kernel.
#include "convnet/loss.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
T MeanSquaredError<T>::compute(const Tensor<T>& p, const Targets<T>& targets, Tensor<T>* grad) {
  CONVNET_CHECK(targets.values != nullptr, "mse: needs a target tensor, got none");
  check_shape(targets.values->shape(), p.shape(), "mse target");
  if (grad) grad->resize(p.shape());
  const int64_t N = p.shape().rank() > 0 ? p.dim(0) : 1, per_sample = N > 0 ? p.numel() / N : 0;
  const int64_t mean_over = targets.mean_over > 0 ? targets.mean_over : N;
  CONVNET_CHECK(mean_over >= N, "mse: a shard of ", N, " samples cannot be part of a batch of ",
                mean_over);
  return ops::mse(p.numel(), mean_over * per_sample, p.data(), targets.values->data(),
                  grad ? grad->data() : nullptr);
}

template class MeanSquaredError<float>;
template class MeanSquaredError<double>;

}  // namespace convnet
