// Model: what every model shares, built on its forward, backward and parameters: the training
// step (zero gradients, forward, loss, backward, update) and evaluation.
#include "convnet/model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "convnet/runtime.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
Model<T>::Model() : context_(std::make_shared<Context>(default_context())) {}

template <class T>
void Model<T>::set_context(std::shared_ptr<Context> context) {
  CONVNET_CHECK(context != nullptr, "set_context: got a null context");
  context_ = std::move(context);
  executor_.set_context(*context_);  // a built model's layers; build() sets them otherwise
}

template <class T>
int64_t Model<T>::param_count() const {
  int64_t total = 0;
  for (const auto& p : params()) total += p.value->numel();
  return total;
}

template <class T>
size_t Model<T>::collect_named(Layer<T>& layer, const std::string& prefix,
                               std::vector<Param<T>>& params, std::vector<Buffer<T>>& buffers) {
  if (params.empty()) pending_params_.clear();
  size_t count = 0;
  for (Param<T> p : layer.params()) {
    p.name = prefix + "." + p.name;
    params.push_back(p);
    ++count;
  }
  for (Buffer<T> b : layer.buffers()) {
    b.name = prefix + "." + b.name;
    buffers.push_back(b);
  }
  pending_params_.push_back(count);
  return pending_params_.size() - 1;
}

template <class T>
void Model<T>::build_shared(const Shape& input, const Model& source) {
  CONVNET_CHECK(&source != this && source.built(),
                "build_shared: the source must be another model, and built");
  const Model* before = source_;
  source_ = &source;
  try {
    build(input);
  } catch (...) {
    source_ = before;
    throw;
  }
}

template <class T>
void Model<T>::plan_nodes(std::vector<typename Executor<T>::Node> nodes, std::vector<size_t> order,
                          size_t output, std::span<const Shape> shapes) {
  const bool gradients = source_ == nullptr;
  try {
    executor_.plan(std::move(nodes), std::move(order), output, shapes, gradients);
    loss_grad_ = gradients ? Tensor<T>(shapes[output]) : Tensor<T>();
  } catch (const std::bad_alloc&) {
    throw activations_out_of_memory(shapes, gradients);
  }
}

template <class T>
void Model<T>::bind_arena(std::span<const Param<T>> params) {
  if (source_) {
    // Names and shapes first: the arena's check sees sizes only.
    const auto check = [](const auto& mine, const auto& theirs, const char* what) {
      CONVNET_CHECK(mine.size() == theirs.size(), "build_shared: the model has ", mine.size(), " ",
                    what, "s, the source ", theirs.size());
      for (size_t i = 0; i < mine.size(); ++i)
        CONVNET_CHECK(
            mine[i].name == theirs[i].name && mine[i].value->shape() == theirs[i].value->shape(),
            "build_shared: ", what, " ", i, " is '", mine[i].name, "' ",
            mine[i].value->shape().str(), ", the source's '", theirs[i].name, "' ",
            theirs[i].value->shape().str());
    };
    check(params, source_->params(), "parameter");
    check(buffers(), source_->buffers(), "buffer");
    arena_.share(params, source_->arena_);
    for (size_t i = 0; i < buffers().size(); ++i)
      buffers()[i].value->become_view(source_->buffers()[i].value->data());
    // No gradients, so nothing for a gradient hook.
    layer_ranges_.assign(pending_params_.size(), {0, 0});
    return;
  }
  arena_.bind(params);
  // Layer j owns params [first, first + count); in the arena's reverse layout its range runs
  // from its last tensor's slot to where the previous layer's range starts (the arena's end for
  // the first layer), so the ranges tile the arena, alignment gaps included.
  const auto slots = arena_.slots();
  layer_ranges_.assign(pending_params_.size(), {0, 0});
  size_t first = 0;
  for (size_t j = 0; j < pending_params_.size(); ++j) {
    const size_t count = pending_params_[j];
    if (count > 0) {
      const int64_t begin = slots[first + count - 1].offset;
      const int64_t end = first == 0 ? arena_.size() : slots[first - 1].offset;
      layer_ranges_[j] = {begin, end - begin};
    }
    first += count;
  }
}

template <class T>
void Model<T>::zero_grad() {
  const std::span<T> grads = arena_.grads();
  ops::fill(*context_, static_cast<int64_t>(grads.size()), T(0), grads.data());
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
typename Model<T>::MemoryUse Model<T>::memory_use() const {
  const auto bytes = [](int64_t elements) { return elements * static_cast<int64_t>(sizeof(T)); };
  return {.activations = bytes(executor_.activation_elements() + loss_grad_.capacity()),
          .node_gradients = bytes(executor_.gradient_elements()),
          .parameters = bytes(arena_.size() + static_cast<int64_t>(arena_.grads().size())),
          .scratch = bytes(context_->scratch_size())};
}

template <class T>
std::string Model<T>::first_non_finite(const Tensor<T>& x, bool backward) {
  if (!finite(x)) return "the input batch";
  // Shared gradient buffers hold only the last gradients backward wrote: run backward again on
  // the same activations and loss gradient, keeping every node's (a diverged step throws after
  // this, so its doubled parameter gradients are never used, and no hook is called).
  struct KeepGradients {
    Executor<T>& executor;
    bool was_shared;
    ~KeepGradients() { executor.set_share_gradients(was_shared); }
  } keep{executor_, executor_.shares_gradients()};
  if (backward && keep.was_shared) {
    executor_.set_share_gradients(false);
    executor_.backward(loss_grad_, nullptr);
  }
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
StepResult Model<T>::forward_backward(const Tensor<T>& x, const Targets<T>& targets,
                                      Loss<T>& loss) {
  last_x_ = nullptr;
  const int64_t message_step = std::exchange(message_step_, 0);
  zero_grad();
  const Tensor<T>& out = forward(x, Mode::Train);
  const T value = loss.compute(out, targets, &loss_grad_);
  if (!std::isfinite(value))
    throw Diverged(detail::concat(
        loss.name(), ": loss is ", value,
        message_step > 0 ? detail::concat(" at optimizer step ", message_step) : std::string(),
        " (batch of ", x.dim(0), "): the first non-finite values are in ",
        first_non_finite(x, false),
        ". The model diverged: lower the learning rate. Weights were not "
        "updated."));
  hook_active_ = sync_ != nullptr;
  try {
    backward(loss_grad_);
  } catch (...) {
    hook_active_ = false;
    throw;
  }
  hook_active_ = false;
  if (sync_) sync_->on_backward_end(arena_.grads());
  last_x_ = &x;
  last_loss_ = static_cast<double>(value);
  return {static_cast<double>(value), count_correct(out, targets.labels), 0};
}

template <class T>
void Model<T>::forward_backward_empty(int64_t batch) {
  static const Tensor<T> no_samples;
  last_x_ = nullptr;
  message_step_ = 0;
  zero_grad();
  skip_batch(batch);
  if (sync_) sync_->on_backward_end(arena_.grads());
  last_x_ = &no_samples;
  last_loss_ = 0;
}

template <class T>
double Model<T>::apply_update(Optimizer<T>& optimizer, double lr, const StepOptions& options) {
  CONVNET_CHECK(options.clip_grad_norm >= 0, "train_step: clip_grad_norm must be >= 0, got ",
                options.clip_grad_norm);
  CONVNET_CHECK(last_x_ != nullptr, "apply_update() needs a forward_backward() first");
  const Tensor<T>& x = *last_x_;
  last_x_ = nullptr;  // one update per forward_backward
  // Per tensor, in params() order, each summed in its own order: the norms grad_norms() and
  // the epoch statistics report.
  const auto ps = params();
  const std::span<T> grads = arena_.grads();
  const auto slots = arena_.slots();
  grad_norms_.resize(ps.size());  // allocates at the first step only
  double total = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    const double sum = ops::sum_squares(*context_, slots[i].size, grads.data() + slots[i].offset);
    grad_norms_[i] = std::sqrt(sum);
    total += sum;
  }
  total = std::sqrt(total);
  if (!std::isfinite(total))
    throw Diverged(
        detail::concat("gradients are not finite at optimizer step ", optimizer.steps() + 1,
                       " (batch of ", x.dim(0), ", loss ", last_loss_,
                       "): the first non-finite values are in ",
                       x.numel() > 0 ? first_non_finite(x, true) : "other processes' shards",
                       ". The model diverged: lower the learning rate or clip gradients. "
                       "Weights were not updated."));
  // PyTorch's rule: scale by min(1, max_norm / (norm + 1e-6)).
  if (options.clip_grad_norm > 0 && options.clip_grad_norm / (total + 1e-6) < 1) {
    const T scale = static_cast<T>(options.clip_grad_norm / (total + 1e-6));
    ops::scale(*context_, static_cast<int64_t>(grads.size()), scale, grads.data());
  }
  optimizer.step(arena_, lr, *context_);
  return total;
}

template <class T>
StepResult Model<T>::train_step(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss,
                                Optimizer<T>& optimizer, const StepOptions& options) {
  CONVNET_CHECK(options.clip_grad_norm >= 0, "train_step: clip_grad_norm must be >= 0, got ",
                options.clip_grad_norm);
  return train_step(x, targets, loss, optimizer, optimizer.learning_rate(), options);
}

template <class T>
StepResult Model<T>::train_step(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss,
                                Optimizer<T>& optimizer, double lr, const StepOptions& options) {
  CONVNET_CHECK(options.clip_grad_norm >= 0, "train_step: clip_grad_norm must be >= 0, got ",
                options.clip_grad_norm);
  message_step_ = optimizer.steps() + 1;
  StepResult result = forward_backward(x, targets, loss);
  result.grad_norm = apply_update(optimizer, lr, options);
  return result;
}

template <class T>
StepResult Model<T>::evaluate(const Tensor<T>& x, const Targets<T>& targets, Loss<T>& loss) {
  const Tensor<T>& out = forward(x, Mode::Eval);
  const T value = loss.compute(out, targets, nullptr);
  return {static_cast<double>(value), count_correct(out, targets.labels)};
}

template <class T>
OutOfMemory Model<T>::activations_out_of_memory(std::span<const Shape> shapes, bool gradients) {
  double bytes = 0;
  for (const Shape& s : shapes)
    bytes += (gradients ? 2.0 : 1.0) * static_cast<double>(s.numel()) * sizeof(T);
  char size[32];
  std::snprintf(size, sizeof size, "%.0f MB", bytes / 1e6);
  return OutOfMemory(detail::concat("out of memory for the activations",
                                    gradients ? " and their gradients" : "", ": ", size,
                                    " for a batch of ", shapes.front().str()));
}

template class Model<float>;
template class Model<double>;
template int64_t count_correct<float>(const Tensor<float>&, std::span<const int32_t>);
template int64_t count_correct<double>(const Tensor<double>&, std::span<const int32_t>);

}  // namespace convnet
