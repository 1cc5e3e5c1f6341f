// Model: what every model shares, built on its forward, backward and parameters: the training
// step (zero gradients, forward, loss, backward, update) and evaluation.
#include "convnet/model.hpp"

#include <algorithm>
#include <cmath>

namespace convnet {

template <class T>
int64_t Model<T>::param_count() const {
  int64_t total = 0;
  for (const auto& p : params()) total += p.value->numel();
  return total;
}

template <class T>
void Model<T>::collect_named(Layer<T>& layer, const std::string& prefix,
                             std::vector<Param<T>>& params, std::vector<Buffer<T>>& buffers) {
  for (Param<T> p : layer.params()) {
    p.name = prefix + "." + p.name;
    params.push_back(p);
  }
  for (Buffer<T> b : layer.buffers()) {
    b.name = prefix + "." + b.name;
    buffers.push_back(b);
  }
}

template <class T>
void Model<T>::zero_grad() {
  for (const auto& p : params()) p.grad->zero();
}

template <class T>
int64_t count_correct(const Tensor<T>& output, std::span<const int32_t> labels) {
  const int64_t N = output.dim(0), K = output.numel() / std::max<int64_t>(N, 1);
  int64_t correct = 0;
  for (int64_t n = 0; n < N && n < static_cast<int64_t>(labels.size()); ++n) {
    const T* row = output.data() + n * K;
    const int64_t best = std::max_element(row, row + K) - row;
    correct += best == labels[n];
  }
  return correct;
}

template <class T>
StepResult Model<T>::train_step(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss,
                                Optimizer<T>& optimizer) {
  zero_grad();
  const Tensor<T>& out = forward(x, Mode::Train);
  const T value = loss.compute(out, targets, &loss_grad_);
  CONVNET_CHECK(std::isfinite(value), loss.name(), ": loss is ", value, " at optimizer step ",
                optimizer.steps() + 1, " (batch of ", x.dim(0),
                "); the model diverged: lower the learning rate. Weights were not updated.");
  backward(loss_grad_);
  optimizer.step(params());
  return {static_cast<double>(value), count_correct(out, targets.labels)};
}

template <class T>
StepResult Model<T>::evaluate(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss) {
  const Tensor<T>& out = forward(x, Mode::Eval);
  const T value = loss.compute(out, targets, nullptr);
  return {static_cast<double>(value), count_correct(out, targets.labels)};
}

template class Model<float>;
template class Model<double>;
template int64_t count_correct<float>(const Tensor<float>&, std::span<const int32_t>);
template int64_t count_correct<double>(const Tensor<double>&, std::span<const int32_t>);

}  // namespace convnet
