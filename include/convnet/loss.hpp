// Losses: each returns the mean loss over the batch and writes ∂L/∂output, where
// backpropagation starts. Classification takes integer labels; regression a target tensor.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "convnet/tensor.hpp"

namespace convnet {

template <class T>
struct Targets {
  std::span<const int32_t> labels{};  // classification: one class index per sample
  const Tensor<T>* values = nullptr; // regression: same shape as the output
  // The samples the mean is taken over: 0 for this batch's own N. A shard of a larger batch (a
  // micro-batch, or one rank's part of a data-parallel batch) passes the whole batch's count,
  // so that its loss and gradient are its share of the whole batch's mean, Σ_shard l_n / batch,
  // and the shards' gradients add up to the gradient of the whole batch's mean.
  int64_t mean_over = 0;
};

template <class T>
class Loss {
 public:
  virtual ~Loss() = default;
  virtual std::string name() const = 0;
  // Mean loss over the batch (over targets.mean_over samples when set); when grad != nullptr it
  // is resized to output's shape and ASSIGNED ∂L/∂output. Throws convnet::Error on a missing or
  // mismatched target.
  virtual T compute(const Tensor<T>& output, const Targets<T>& targets, Tensor<T>* grad) = 0;
};

// Softmax cross-entropy on logits (N, K): L = (1/N) Σ_n [logsumexp(z_n) - z_n[y_n]], computed
// with the max subtracted so no exponent overflows. Fused gradient (softmax(z) - onehot(y)) / N.
// Matches torch.nn.CrossEntropyLoss() (mean reduction).
template <class T>
class SoftmaxCrossEntropy final : public Loss<T> {
 public:
  std::string name() const override { return "softmax_cross_entropy"; }
  T compute(const Tensor<T>& output, const Targets<T>& targets, Tensor<T>* grad) override;
};

// How an elementwise loss combines its elements (PyTorch's `reduction`): Mean divides the sum by
// every element of the batch, N·features (of the whole batch's N for a shard of it); Sum does not.
enum class LossReduction { Mean, Sum };

// The elementwise regression losses, L = (1/M) Σ_i ℓ(p_i - t_i) with M = N·features under Mean
// and 1 under Sum. The target is `values` (the output's shape) or, for a classifier trained with
// a regression loss (the classic "MSE on one-hot targets"), `labels`, taken as one-hot rows of
// the output's width.
template <class T>
class RegressionLoss : public Loss<T> {
 public:
  explicit RegressionLoss(LossReduction reduction) : reduction_(reduction) {}
  LossReduction reduction() const { return reduction_; }
  T compute(const Tensor<T>& output, const Targets<T>& targets, Tensor<T>* grad) final;

 protected:
  // Σ ℓ / M over count elements, and dp = ∂L/∂p when dp is not null.
  virtual T elements(int64_t count, int64_t M, const T* p, const T* t, T* dp) const = 0;

 private:
  LossReduction reduction_;
  Tensor<T> one_hot_;  // the labels as targets, reused from batch to batch
};

// Mean squared error: ℓ(d) = d², gradient 2d/M. Matches torch.nn.MSELoss(reduction=...).
template <class T>
class MeanSquaredError final : public RegressionLoss<T> {
 public:
  explicit MeanSquaredError(LossReduction reduction = LossReduction::Mean)
      : RegressionLoss<T>(reduction) {}
  std::string name() const override { return "mse"; }

 private:
  T elements(int64_t count, int64_t M, const T* p, const T* t, T* dp) const override;
};

// Mean absolute error: ℓ(d) = |d|, gradient sign(d)/M (0 at d = 0). Matches torch.nn.L1Loss.
template <class T>
class L1Loss final : public RegressionLoss<T> {
 public:
  explicit L1Loss(LossReduction reduction = LossReduction::Mean) : RegressionLoss<T>(reduction) {}
  std::string name() const override { return "l1"; }

 private:
  T elements(int64_t count, int64_t M, const T* p, const T* t, T* dp) const override;
};

// Huber: ℓ(d) = ½d² for |d| < δ, else δ(|d| - ½δ) (quadratic near the target, linear beyond, so
// outliers pull with a bounded force); gradient d/M, else δ·sign(d)/M. Matches
// torch.nn.HuberLoss(reduction=..., delta=δ); δ > 0.
template <class T>
class HuberLoss final : public RegressionLoss<T> {
 public:
  explicit HuberLoss(T delta = T(1), LossReduction reduction = LossReduction::Mean);
  std::string name() const override { return "huber"; }
  T delta() const { return delta_; }

 private:
  T elements(int64_t count, int64_t M, const T* p, const T* t, T* dp) const override;
  T delta_;
};

// The loss a command line names: "cross-entropy" (softmax cross-entropy), "mse", "l1" or
// "huber" (with huber_delta), mean reduction. Error naming the choices for another name.
std::unique_ptr<Loss<float>> make_loss(const std::string& name, double huber_delta = 1.0);
// The names make_loss takes, for help texts: "cross-entropy|mse|l1|huber".
const char* loss_names();

}  // namespace convnet
