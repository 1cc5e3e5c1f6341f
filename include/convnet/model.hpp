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

#include "convnet/arena.hpp"
#include "convnet/context.hpp"
#include "convnet/executor.hpp"
#include "convnet/layers.hpp"
#include "convnet/loss.hpp"
#include "convnet/optim.hpp"

namespace convnet {

// A layer of a model with the name its parameters carry: "layer<i>" in a Sequential, the node
// name in a Graph.
template <class T>
struct NamedLayer {
  std::string name;
  Layer<T>* layer;
};

struct StepResult {
  double loss = 0;       // mean loss of the batch
  int64_t correct = 0;   // samples whose arg-max output equals the label (0 without labels)
  double grad_norm = 0;  // of all parameter gradients together, before any clipping
};

struct StepOptions {
  // Gradient clipping by norm (torch.nn.utils.clip_grad_norm_): when the gradients' joint L2 norm
  // exceeds this, every gradient is scaled by clip_grad_norm / (norm + 1e-6). 0: never.
  double clip_grad_norm = 0;
};

// The gradient hook of a training step: Model::forward_backward calls it as the backward pass
// finishes each range of the gradient arena (a layer's gradients: in the arena's reverse layout,
// each range ends where the last one began, so the finished part is one growing prefix), then
// once with the whole arena when the pass is over. A data-parallel run all-reduces there (per
// range, overlapping the rest of the backward pass, or all at once at the end); whatever it
// leaves in the arena is what the non-finite check, the norms, clipping and the optimizer see.
// The default does nothing.
template <class T>
class GradientSync {
 public:
  virtual ~GradientSync() = default;
  // grads: arena().grads()[offset, offset + grads.size()), final for this step.
  virtual void on_gradients_ready(std::span<T> /*grads*/, int64_t /*offset*/) {}
  // The whole gradient arena, after the backward pass.
  virtual void on_backward_end(std::span<T> /*grads*/) {}
};

// What every model offers (Sequential, Graph): build for an input shape, forward, backward,
// parameters and buffers, and the training step built on those. fit() and the CLI work on this.
template <class T>
class Model {
 public:
  virtual ~Model() = default;

  // Infers every shape for `input` (N x ..., N = the largest batch to be used) and allocates
  // parameters, activations and gradients.
  virtual void build(const Shape& input) = 0;
  // Sets every parameter from Rng(seed), layer by layer in a fixed order.
  virtual void initialise(uint64_t seed) = 0;
  void build(const Shape& input, uint64_t seed) {
    build(input);
    initialise(seed);
  }
  virtual bool built() const = 0;
  // Builds this model, which has source's spec, for `input` to serve on source's weights (what
  // Predictor's concurrent contexts do): its parameters and buffers become views of source's,
  // which nothing here writes, and it allocates the activations only (its layers' own caches
  // aside), no gradients. It then runs forward in Mode::Eval only; backward, a Mode::Train
  // forward (BatchNorm's would update source's running statistics), train_step and initialise
  // throw. source must stay alive, built and not rebuilt while this model runs; build() again
  // keeps this model on source's weights. Throws convnet::Error naming the first parameter or
  // buffer whose name or shape differs from source's.
  void build_shared(const Shape& input, const Model& source);
  // The model whose weights this one runs on (build_shared), or null.
  const Model* weights_source() const { return source_; }
  virtual const Shape& input_shape() const = 0;
  virtual const Shape& output_shape() const = 0;
  // Every trainable tensor, and every buffer (non-trainable state such as BatchNorm's running
  // statistics, which optimizers never see), with names unique in the model.
  virtual std::span<const Param<T>> params() const = 0;
  virtual std::span<const Buffer<T>> buffers() const = 0;
  int64_t param_count() const;
  // Every parameter and gradient of params() in one buffer each (see convnet/arena.hpp); bound
  // by build(), so empty before it. After build_shared, a view of the source's, without
  // gradients.
  ParamArena<T>& arena() { return arena_; }
  const ParamArena<T>& arena() const { return arena_; }
  // FLOPs per sample (multiply-add = 2) of a forward pass, and of a training step: forward,
  // backward weights, and backward data wherever a gradient is needed.
  virtual int64_t forward_flops() const = 0;
  virtual int64_t train_flops() const = 0;
  // A table like Keras's model.summary().
  virtual std::string summary() const = 0;
  // The model as model-spec text (docs/model-spec.md; built or not): parse_model_spec() reads
  // it back to a model with the same layers, options, names and wiring.
  virtual std::string spec() const = 0;
  // Every single-input layer (a Graph's merge nodes excluded), in the order they were added.
  virtual std::vector<NamedLayer<T>> named_layers() const = 0;
  // Every node in evaluation order with its output and output gradient from the last forward
  // and backward, for inspection (convnet explain, reports). The output node's gradient is the
  // dy given to backward(), so it is valid while that tensor is; the other nodes' are there only
  // with set_keep_intermediates(true), without which a BatchNorm or Add that a ReLU reads alone
  // shows the ReLU's output (the ReLU runs in place).
  virtual std::vector<NodeTrace<T>> trace() = 0;
  // Every node keeps its own output and output gradient (one buffer each), instead of the
  // default memory plan: backward's gradients share a few buffers, and a ReLU that alone reads a
  // BatchNorm or Add overwrites its output (convnet/executor.hpp), which together save nearly
  // a copy of the activations and a third of the rest in a ResNet. The results are the same bit
  // for bit. Re-plans the buffers (allocates; the last passes are forgotten) when it changes.
  void set_keep_intermediates(bool keep) { executor_.set_keep_intermediates(keep); }
  bool keeps_intermediates() const { return executor_.keeps_intermediates(); }
  // Mode::Eval passes fold each BatchNorm that alone reads a convolution into it (weights and
  // bias scaled per channel, formed on every pass), skipping its pass over the activations:
  // on by default, off while keeping intermediates. Results differ from the unfolded pass by
  // rounding alone; backward and trace after a folded pass see the unfolded one
  // (convnet/executor.hpp).
  void set_fold_batchnorm(bool fold) { executor_.set_fold_batchnorm(fold); }
  bool folds_batchnorm() const { return executor_.folds_batchnorm(); }
  bool last_pass_folded() const { return executor_.last_pass_folded(); }
  // What the built model holds, in bytes: every node's activation (and the loss gradient), the
  // backward's node-gradient buffers, the parameters with their gradients (the arena), and the
  // scratch its context's kernels share. Layers' own saved state (pooling winners, Dropout
  // masks, BatchNorm statistics) and an optimizer's state are not included.
  struct MemoryUse {
    int64_t activations = 0, node_gradients = 0, parameters = 0, scratch = 0;
  };
  MemoryUse memory_use() const;

  // Runs the model. x's batch may differ from the built one; the other dimensions may not.
  // In Mode::Train, x must stay alive until backward().
  virtual const Tensor<T>& forward(const Tensor<T>& x, Mode mode) = 0;
  // Backpropagates dy = ∂L/∂output after forward(x, Mode::Train): parameter gradients
  // ACCUMULATE; grad_input (optional) is ASSIGNED ∂L/∂x.
  virtual void backward(const Tensor<T>& dy, Tensor<T>* grad_input = nullptr) = 0;
  void zero_grad();

  // Per-layer wall time, accumulated while profiling is on (off by default; costs two clock
  // reads per layer and pass): each layer's description and seconds in forward and backward.
  // Turning it on (again) starts the count from zero.
  using LayerTime = typename Executor<T>::LayerTime;
  void set_profiling(bool on) { executor_.set_profiling(on); }
  std::vector<LayerTime> layer_times() const { return executor_.layer_times(); }
  // Replay on every layer (see Layer::set_replay), for gradient checks.
  virtual void set_replay(bool on) = 0;
  // The shard of a batch the next Mode::Train forward passes compute, on every layer (see
  // BatchShard); {} again for whole batches.
  virtual void set_batch_shard(const BatchShard& shard) = 0;
  // Layer::skip_batch on every layer.
  virtual void skip_batch(int64_t samples) = 0;

  // The execution context the model's layers, its gradient loops and the optimizer's update run
  // their kernels in (convnet/context.hpp): the backend, the threads, the scratch. A model
  // starts with a copy of default_context() made when it is constructed (the process default's
  // settings and thread pool, a scratch of its own), so models on different threads never share
  // a scratch.
  Context& context() const { return *context_; }
  // Runs the model in `context` from now on. Models run on one thread may share a context (and
  // its scratch). Given before build(), build() sizes its scratch; given after, the first step
  // does (and allocates).
  void set_context(std::shared_ptr<Context> context);

  // Where each layer was defined, "net.txt:4:7", so that build() errors point into the spec
  // file: one entry per layer of a Sequential, per node of a Graph (its input node first), in the
  // order they were added. The spec parser sets it; layers without an entry are named as usual.
  void set_origins(std::vector<std::string> origins) { origins_ = std::move(origins); }

  // Train/eval: the model keeps no mode of its own. The Mode passed to forward() is the mode;
  // train_step runs Mode::Train, evaluate and predict Mode::Eval (Dropout is then the identity
  // and BatchNorm uses its running statistics), so nothing needs switching back afterwards.
  //
  // One step: zero_grad, forward, loss, backward, optimizer update. Throws convnet::Error
  // (before updating anything) if the loss is not finite.
  //
  // Divergence stops the step before the update, so the weights stay the last good ones: a
  // non-finite loss, or a non-finite gradient, throws convnet::Error naming where the NaN or
  // Inf first appears (the first layer in forward order whose output is not finite, or the
  // first, from the output back, whose gradient is not).
  //
  // train_step is the two halves below, at learning rate lr (the optimizer's learning_rate()
  // without one).
  StepResult train_step(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss,
                        Optimizer<T>& optimizer, const StepOptions& options = {});
  StepResult train_step(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss,
                        Optimizer<T>& optimizer, double lr, const StepOptions& options = {});
  // The first half of a step: zero the gradient arena, forward (Mode::Train), the loss, and
  // backward, calling the gradient hook (set_gradient_sync) per finished range and at the end.
  // Throws Diverged (nothing updated) if the loss is not finite. grad_norm is left 0.
  StepResult forward_backward(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss);
  // forward_backward for a data-parallel rank whose shard of a `batch`-sample batch is empty:
  // zero gradients (the hook's on_backward_end sees them), the random streams moved on past the
  // batch (skip_batch), and apply_update armed.
  void forward_backward_empty(int64_t batch);
  // The second half, on the gradients the hook left: their norms, the non-finite check (throws
  // Diverged, nothing updated), clipping, and the optimizer's update at learning rate lr.
  // Returns the gradients' joint L2 norm before clipping. Needs a forward_backward first; x must
  // still be alive (a divergence message looks into it).
  double apply_update(Optimizer<T>& optimizer, double lr, const StepOptions& options = {});
  // The hook forward_backward calls (not owned; must outlive its use); null: none.
  void set_gradient_sync(GradientSync<T>* sync) { sync_ = sync; }
  // Per params() entry, the L2 norm of its gradient at the last apply_update (before clipping).
  const std::vector<double>& grad_norms() const { return grad_norms_; }
  // Loss (and correct count, with labels) without touching parameters.
  StepResult evaluate(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss);
  // Eval-mode forward.
  const Tensor<T>& predict(const Tensor<T>& x) { return forward(x, Mode::Eval); }

 protected:
  // With a copy of default_context().
  Model();
  // A moved model forgets the last dy, which may have been the moved-from model's own buffer.
  // The arena moves with the model: its storage, which the layers' tensors view, stays put; so
  // does its context, which the layers point to.
  Model(Model&& other) noexcept
      : context_(std::move(other.context_)),
        loss_grad_(std::move(other.loss_grad_)),
        executor_(std::move(other.executor_)),
        origins_(std::move(other.origins_)),
        arena_(std::move(other.arena_)),
        source_(other.source_),
        layer_ranges_(std::move(other.layer_ranges_)),
        sync_(other.sync_),
        grad_norms_(std::move(other.grad_norms_)) {}
  Model& operator=(Model&& other) noexcept {
    context_ = std::move(other.context_);
    loss_grad_ = std::move(other.loss_grad_);
    executor_ = std::move(other.executor_);
    executor_.forget_last_pass();
    origins_ = std::move(other.origins_);
    arena_ = std::move(other.arena_);
    source_ = other.source_;
    layer_ranges_ = std::move(other.layer_ranges_);
    sync_ = other.sync_;
    last_x_ = nullptr;
    grad_norms_ = std::move(other.grad_norms_);
    return *this;
  }

  // Appends layer's parameters and buffers to the model's lists, named "<prefix>.<name>".
  // Returns the layer's index for gradients_ready(): 0, 1, ... in the order of the calls.
  size_t collect_named(Layer<T>& layer, const std::string& prefix, std::vector<Param<T>>& params,
                       std::vector<Buffer<T>>& buffers);
  // After collecting: plans the executor (with gradients, and the loss gradient, unless the
  // weights are another model's) for nodes of these shapes. Throws OutOfMemory naming the
  // activations' size.
  void plan_nodes(std::vector<typename Executor<T>::Node> nodes, std::vector<size_t> order,
                  size_t output, std::span<const Shape> shapes);
  // Then binds params (all of them, in collect order) to a fresh arena, or, after
  // build_shared, params() and buffers() to views of the source's.
  void bind_arena(std::span<const Param<T>> params);
  // Called by the executor's backward right after the layer of that index (collect_named's)
  // has finished: hands its range of the gradient arena to the hook, if one is running.
  static void gradients_ready_thunk(void* model, size_t layer) {
    static_cast<Model*>(model)->gradients_ready(layer);
  }
  void gradients_ready(size_t layer) {
    if (hook_active_ && layer < layer_ranges_.size() && layer_ranges_[layer].second > 0) {
      const auto [offset, size] = layer_ranges_[layer];
      sync_->on_gradients_ready(
          arena_.grads().subspan(static_cast<size_t>(offset), static_cast<size_t>(size)), offset);
    }
  }

  std::shared_ptr<Context> context_;  // never null (but in a moved-from model)
  Tensor<T> loss_grad_;  // ∂L/∂output of the last forward_backward; sized by build()
  // Runs the nodes that Sequential and Graph plan (see convnet/executor.hpp).
  Executor<T> executor_;
  // The executor's backward, handing each finished layer's gradients to the hook.
  void run_backward(const Tensor<T>& dy, Tensor<T>* grad_input) {
    executor_.backward(dy, grad_input, &Model::gradients_ready_thunk, this);
  }
  // "net.txt:4:7: " for layer (or node) i when set_origins() recorded one, else "".
  std::string origin_prefix(size_t i) const {
    return i < origins_.size() && !origins_[i].empty() ? origins_[i] + ": " : std::string();
  }
  std::vector<std::string> origins_;
  // The OutOfMemory error for activations and (with gradients) their gradients of these shapes
  // (one tensor of each per shape) that did not fit.
  static OutOfMemory activations_out_of_memory(std::span<const Shape> shapes,
                                               bool gradients = true);

 private:
  // Where a non-finite value first shows in the last forward (or, with backward, in its
  // gradients): "the output of layer3 (conv2d ...)", for divergence errors.
  std::string first_non_finite(const Tensor<T>& x, bool backward);
  ParamArena<T> arena_;
  const Model* source_ = nullptr;  // whose weights this model runs on (build_shared), or null
  // Per collect_named() index: the layer's (offset, size) in the arena; size 0 without params.
  std::vector<std::pair<int64_t, int64_t>> layer_ranges_;
  std::vector<size_t> pending_params_;  // params per collect_named() call, until bind_arena
  GradientSync<T>* sync_ = nullptr;
  bool hook_active_ = false;  // inside forward_backward's backward pass, with a hook set
  // From the last forward_backward, for apply_update and its messages.
  const Tensor<T>* last_x_ = nullptr;
  double last_loss_ = 0;
  int64_t message_step_ = 0;  // the optimizer step train_step is at, for forward_backward's message
  std::vector<double> grad_norms_;
};

template <class T>
class Sequential final : public Model<T> {
 public:
  Sequential() = default;
  Sequential(Sequential&&) noexcept = default;
  Sequential& operator=(Sequential&&) noexcept = default;
  using Model<T>::build;
  using LayerTime = typename Model<T>::LayerTime;

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
  // layer that cannot take its input. build(input, seed) also initialises, in layer order.
  void build(const Shape& input) override;
  void initialise(uint64_t seed) override;
  bool built() const override { return built_; }

  const Shape& input_shape() const override { return shapes_.front(); }
  const Shape& output_shape() const override { return shapes_.back(); }
  size_t size() const { return layers_.size(); }
  Layer<T>& layer(size_t i) { return *layers_[i]; }
  // Output shape of layer i (batch dimension as built).
  const Shape& layer_output_shape(size_t i) const { return shapes_[i + 1]; }
  // Every trainable tensor in layer order; names are "layer<i>.<name>".
  std::span<const Param<T>> params() const override { return params_; }
  // Every buffer (non-trainable state: BatchNorm's running statistics) in layer order; names are
  // "layer<i>.<name>". Optimizers never see these.
  std::span<const Buffer<T>> buffers() const override { return buffers_; }
  // Backward data is counted for every layer but the first (whose dx is not needed).
  int64_t forward_flops() const override;
  int64_t train_flops() const override;
  // Layer, output shape, parameters.
  std::string summary() const override;
  // "model sequential", then one "layer KIND options" line per layer.
  std::string spec() const override;
  std::vector<NamedLayer<T>> named_layers() const override;
  std::vector<NodeTrace<T>> trace() override;

  // Runs every layer. x's batch may differ from the built one; the other dimensions may not.
  // In Mode::Train, x must stay alive until backward().
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  // Runs layers first..end on the activation that layer `first` received in the last forward
  // (used by gradient checks after perturbing it). activation(first) may be modified.
  const Tensor<T>& forward_from(size_t first, Mode mode);
  // Input of layer i in the last forward (i = 0: the model input; size(): the output).
  Tensor<T>& activation(size_t i);
  // Backpropagates dy = ∂L/∂output through every layer after forward(x, Mode::Train):
  // parameter gradients ACCUMULATE; grad_input (optional) is ASSIGNED ∂L/∂x.
  void backward(const Tensor<T>& dy, Tensor<T>* grad_input = nullptr) override;
  // ∂L/∂(input of layer i) from the last backward, for 1 <= i <= size().
  const Tensor<T>& activation_grad(size_t i) const { return this->executor_.gradient(i); }

  void set_replay(bool on) override;
  void set_batch_shard(const BatchShard& shard) override;
  void skip_batch(int64_t samples) override;

 private:
  void require_built(const char* what) const;

  std::vector<std::unique_ptr<Layer<T>>> layers_;
  std::vector<Shape> shapes_;  // shapes_[0] input, shapes_[i+1] output of layer i (node i+1)
  std::vector<Param<T>> params_;
  std::vector<Buffer<T>> buffers_;
  bool built_ = false;
};

// Number of rows of `output` (N x K) whose arg-max equals the label.
template <class T>
int64_t count_correct(const Tensor<T>& output, std::span<const int32_t> labels);

extern template class Model<float>;
extern template class Model<double>;
extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace convnet
