// The elementwise regression losses (MSE, L1, Huber): the target checked (or made one-hot from
// labels), the reduction's denominator, then the fused reference kernel (loss and gradient in
// one pass; O(elements), never a hot spot beside the layers).
#include <algorithm>
#include <cmath>

#include "convnet/loss.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
T RegressionLoss<T>::compute(const Tensor<T>& p, const Targets<T>& targets, Tensor<T>* grad) {
  const std::string loss = this->name();
  const int64_t N = p.shape().rank() > 0 ? p.dim(0) : 1, per_sample = N > 0 ? p.numel() / N : 0;
  const T* t = nullptr;
  if (targets.values) {
    check_shape(targets.values->shape(), p.shape(), (loss + " target").c_str());
    t = targets.values->data();
  } else {
    CONVNET_CHECK(!targets.labels.empty(), loss, ": needs a target tensor or labels, got neither");
    CONVNET_CHECK(static_cast<int64_t>(targets.labels.size()) == N, loss, ": expected ", N,
                  " labels, got ", targets.labels.size());
    one_hot_.resize(p.shape());
    std::fill_n(one_hot_.data(), one_hot_.numel(), T(0));
    for (int64_t n = 0; n < N; ++n) {
      const int32_t label = targets.labels[static_cast<size_t>(n)];
      CONVNET_CHECK(label >= 0 && label < per_sample, loss, ": label ", label, " of sample ", n,
                    " is outside the output's ", per_sample, " values");
      one_hot_.data()[n * per_sample + label] = T(1);
    }
    t = one_hot_.data();
  }
  if (grad) grad->resize(p.shape());
  const int64_t mean_over = targets.mean_over > 0 ? targets.mean_over : N;
  CONVNET_CHECK(mean_over >= N, loss, ": a shard of ", N, " samples cannot be part of a batch of ",
                mean_over);
  const int64_t M = reduction_ == LossReduction::Mean ? mean_over * per_sample : 1;
  return elements(p.numel(), std::max<int64_t>(M, 1), p.data(), t, grad ? grad->data() : nullptr);
}

template <class T>
T MeanSquaredError<T>::elements(int64_t count, int64_t M, const T* p, const T* t, T* dp) const {
  return ops::mse(count, M, p, t, dp);
}

template <class T>
T L1Loss<T>::elements(int64_t count, int64_t M, const T* p, const T* t, T* dp) const {
  return ops::l1(count, M, p, t, dp);
}

template <class T>
HuberLoss<T>::HuberLoss(T delta, LossReduction reduction)
    : RegressionLoss<T>(reduction), delta_(delta) {
  CONVNET_CHECK(delta > 0 && std::isfinite(delta), "huber: delta must be positive, got ", delta);
}

template <class T>
T HuberLoss<T>::elements(int64_t count, int64_t M, const T* p, const T* t, T* dp) const {
  return ops::huber(count, M, delta_, p, t, dp);
}

const char* loss_names() { return "cross-entropy|mse|l1|huber"; }

std::unique_ptr<Loss<float>> make_loss(const std::string& name, double huber_delta) {
  if (name == "cross-entropy") return std::make_unique<SoftmaxCrossEntropy<float>>();
  if (name == "mse") return std::make_unique<MeanSquaredError<float>>();
  if (name == "l1") return std::make_unique<L1Loss<float>>();
  if (name == "huber") return std::make_unique<HuberLoss<float>>(static_cast<float>(huber_delta));
  throw Error("unknown loss '" + name + "': expected one of " + loss_names());
}

template class RegressionLoss<float>;
template class RegressionLoss<double>;
template class MeanSquaredError<float>;
template class MeanSquaredError<double>;
template class L1Loss<float>;
template class L1Loss<double>;
template class HuberLoss<float>;
template class HuberLoss<double>;

}  // namespace convnet
