// Model: what every model shares, built on its forward, backward and parameters: the training
// step (zero gradients, forward, loss, backward, update) and evaluation.
#include "convnet/model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

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

namespace {
template <class T>
bool finite(const Tensor<T>& t) {
  for (const T v : t.span())
    if (!std::isfinite(v)) return false;
  return true;
}
}  // namespace

template <class T>
std::string Model<T>::first_non_finite(const Tensor<T>& x, bool backward) {
  if (!finite(x)) return "the input batch";
  const std::vector<NodeTrace<T>> nodes = trace();
  for (const NodeTrace<T>& n : nodes)
    if (!finite(*n.output)) return "the output of " + n.name + " (" + n.description + ")";
  if (backward)
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
      if (it->grad_output && !finite(*it->grad_output))
        return "the gradient of the output of " + it->name + " (" + it->description + ")";
      if (it->layer)
        for (const Param<T>& p : it->layer->params())
          if (!finite(*p.grad))
            return "the gradient of " + it->name + "." + p.name + " (" + it->description + ")";
    }
  return "the loss itself";
}

template <class T>
StepResult Model<T>::train_step(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss,
                                Optimizer<T>& optimizer, const StepOptions& options) {
  CONVNET_CHECK(options.clip_grad_norm >= 0, "train_step: clip_grad_norm must be >= 0, got ",
                options.clip_grad_norm);
  zero_grad();
  const Tensor<T>& out = forward(x, Mode::Train);
  const T value = loss.compute(out, targets, &loss_grad_);
  if (!std::isfinite(value))
    throw Diverged(detail::concat(loss.name(), ": loss is ", value, " at optimizer step ",
                                  optimizer.steps() + 1, " (batch of ", x.dim(0),
                                  "): the first non-finite values are in ",
                                  first_non_finite(x, false),
                                  ". The model diverged: lower the learning rate. Weights were not "
                                  "updated."));
  backward(loss_grad_);
  const auto ps = params();
  grad_norms_.resize(ps.size());  // allocates at the first step only
  double total = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    double sum = 0;
    for (const T g : ps[i].grad->span()) sum += static_cast<double>(g) * static_cast<double>(g);
    grad_norms_[i] = std::sqrt(sum);
    total += sum;
  }
  total = std::sqrt(total);
  if (!std::isfinite(total))
    throw Diverged(
        detail::concat("gradients are not finite at optimizer step ", optimizer.steps() + 1,
                       " (batch of ", x.dim(0), ", loss ", value,
                       "): the first non-finite values are in ", first_non_finite(x, true),
                       ". The model diverged: lower the learning rate or clip gradients. "
                       "Weights were not updated."));
  // PyTorch's rule: scale by min(1, max_norm / (norm + 1e-6)).
  if (options.clip_grad_norm > 0 && options.clip_grad_norm / (total + 1e-6) < 1) {
    const T scale = static_cast<T>(options.clip_grad_norm / (total + 1e-6));
    for (const Param<T>& p : ps)
      for (T& g : p.grad->span()) g *= scale;
  }
  optimizer.step(ps);
  return {static_cast<double>(value), count_correct(out, targets.labels), total};
}

template <class T>
StepResult Model<T>::evaluate(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss) {
  const Tensor<T>& out = forward(x, Mode::Eval);
  const T value = loss.compute(out, targets, nullptr);
  return {static_cast<double>(value), count_correct(out, targets.labels)};
}

template <class T>
OutOfMemory Model<T>::activations_out_of_memory(std::span<const Shape> shapes) {
  double bytes = 0;
  for (const Shape& s : shapes) bytes += 2.0 * static_cast<double>(s.numel()) * sizeof(T);
  char size[32];
  std::snprintf(size, sizeof size, "%.0f MB", bytes / 1e6);
  return OutOfMemory(detail::concat("out of memory for the activations and their gradients: ", size,
                                    " for a batch of ", shapes.front().str()));
}

template class Model<float>;
template class Model<double>;
template int64_t count_correct<float>(const Tensor<float>&, std::span<const int32_t>);
template int64_t count_correct<double>(const Tensor<double>&, std::span<const int32_t>);

}  // namespace convnet
