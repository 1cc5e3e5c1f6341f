// Sequential: a chain of layers built for an input shape. build() infers every layer's output
// shape (an impossible network is an error naming the layer and both shapes) and allocates every
// activation and gradient buffer, so a training step at or below the built batch size allocates
// nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "convnet/layers.hpp"
#include "convnet/loss.hpp"
#include "convnet/optim.hpp"

namespace convnet {

struct StepResult {
  double loss = 0;       // mean loss of the batch
  int64_t correct = 0;   // samples whose arg-max output equals the label (0 without labels)
};

template <class T>
class Sequential {
 public:
  Sequential() = default;
  Sequential(Sequential&&) noexcept = default;
  Sequential& operator=(Sequential&&) noexcept = default;

  // Appends a layer; returns it. The model must be (re)built after adding layers.
  Layer<T>& add(std::unique_ptr<Layer<T>> layer);
  // Appends a new L<T>(args...): model.emplace<Conv2d>(Conv2dOptions{...}).
  template <template <class> class L, class... Args>
  L<T>& emplace(Args&&... args) {
    auto layer = std::make_unique<L<T>>(std::forward<Args>(args)...);
    L<T>& ref = *layer;
    add(std::move(layer));
    return ref;
  }

  // Infers every output shape for `input` (N x C x H x W, N = the largest batch to be used)
  // and allocates parameters, activations and gradients. Throws convnet::Error naming the first
  // layer that cannot take its input.
  void build(const Shape& input);
  // build(), then initialise every parameter from Rng(seed) in layer order.
  void build(const Shape& input, uint64_t seed);
  void initialise(uint64_t seed);
  bool built() const { return built_; }

  const Shape& input_shape() const { return shapes_.front(); }
  const Shape& output_shape() const { return shapes_.back(); }
  size_t size() const { return layers_.size(); }
  Layer<T>& layer(size_t i) { return *layers_[i]; }
  // Output shape of layer i (batch dimension as built).
  const Shape& layer_output_shape(size_t i) const { return shapes_[i + 1]; }
  // Every trainable tensor in layer order; names are "layer<i>.<name>".
  std::span<const Param<T>> params() const { return params_; }
  // Every buffer (non-trainable state: BatchNorm's running statistics) in layer order; names are
  // "layer<i>.<name>". Optimizers never see these.
  std::span<const Buffer<T>> buffers() const { return buffers_; }
  int64_t param_count() const;
  // FLOPs per sample (multiply-add = 2) of a forward pass, and of a training step: forward,
  // backward weights, and backward data for every layer but the first (whose dx is not needed).
  int64_t forward_flops() const;
  int64_t train_flops() const;
  // A table like Keras's model.summary(): layer, output shape, parameters.
  std::string summary() const;

  // Runs every layer. x's batch may differ from the built one; the other dimensions may not.
  // In Mode::Train, x must stay alive until backward().
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode);
  // Runs layers first..end on the activation that layer `first` received in the last forward
  // (used by gradient checks after perturbing it). activation(first) may be modified.
  const Tensor<T>& forward_from(size_t first, Mode mode);
  // Input of layer i in the last forward (i = 0: the model input; size(): the output).
  Tensor<T>& activation(size_t i);
  // Backpropagates dy = ∂L/∂output through every layer after forward(x, Mode::Train):
  // parameter gradients ACCUMULATE; grad_input (optional) is ASSIGNED ∂L/∂x.
  void backward(const Tensor<T>& dy, Tensor<T>* grad_input = nullptr);
  // ∂L/∂(input of layer i) from the last backward, for 1 <= i <= size().
  const Tensor<T>& activation_grad(size_t i) const { return grads_[i]; }
  void zero_grad();

  // Per-layer wall time, accumulated while profiling is on (off by default; costs two clock
  // reads per layer and pass). Seconds spent in each layer's forward and backward.
  struct LayerTime {
    double forward = 0, backward = 0;
  };
  void set_profiling(bool on);
  const std::vector<LayerTime>& layer_times() const { return times_; }

  // Train/eval: the model keeps no mode of its own. The Mode passed to forward() is the mode;
  // train_step runs Mode::Train, evaluate and predict Mode::Eval (Dropout is then the identity
  // and BatchNorm uses its running statistics), so nothing needs switching back afterwards.
  //
  // One step: zero_grad, forward, loss, backward, optimizer update. Throws convnet::Error
  // (before updating anything) if the loss is not finite.
  StepResult train_step(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss,
                        Optimizer<T>& optimizer);
  // Loss (and correct count, with labels) without touching parameters.
  StepResult evaluate(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss);
  // Eval-mode forward.
  const Tensor<T>& predict(const Tensor<T>& x) { return forward(x, Mode::Eval); }

 private:
  void require_built(const char* what) const;

  std::vector<std::unique_ptr<Layer<T>>> layers_;
  std::vector<Shape> shapes_;     // shapes_[0] input, shapes_[i+1] output of layer i
  std::vector<Tensor<T>> acts_;   // acts_[i+1] output of layer i; acts_[0] unused
  std::vector<Tensor<T>> grads_;  // grads_[i] = ∂L/∂acts_[i], i >= 1
  std::vector<Param<T>> params_;
  std::vector<Buffer<T>> buffers_;
  Tensor<T> loss_grad_;
  const Tensor<T>* input_ = nullptr;
  bool built_ = false;
  bool profiling_ = false;
  std::vector<LayerTime> times_;
};

// Number of rows of `output` (N x K) whose arg-max equals the label.
template <class T>
int64_t count_correct(const Tensor<T>& output, std::span<const int32_t> labels);

extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace convnet
