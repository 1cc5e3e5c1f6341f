// Losses: each returns the mean loss over the batch and writes ∂L/∂output, where
// backpropagation starts. Classification takes integer labels; regression a target tensor.
#pragma once

#include <cstdint>
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

// Mean squared error: L = (1/count) Σ (p - t)² over all count = N·features elements, gradient
// 2(p - t)/count. Matches torch.nn.MSELoss() (reduction 'mean' averages every element).
template <class T>
class MeanSquaredError final : public Loss<T> {
 public:
  std::string name() const override { return "mse"; }
  T compute(const Tensor<T>& output, const Targets<T>& targets, Tensor<T>* grad) override;
};

}  // namespace convnet
