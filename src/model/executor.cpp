// Executor: forward in evaluation order, backward in reverse (∂L/∂x_u = Σ over the nodes v that
// read u of J_vᵀ · ∂L/∂x_v: the first writer assigns, the rest add), trace and profiling.
#include "convnet/executor.hpp"

#include <algorithm>

#include "convnet/graph.hpp"

namespace convnet {
namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
constexpr size_t kMaxInputs = 16;  // of a merge node
}  // namespace

template <class T>
void Executor<T>::plan(std::vector<Node> nodes, std::vector<size_t> order, size_t output,
                       std::span<const Shape> shapes, bool gradients) {
  nodes_.clear();
  order_.clear();
  acts_.clear();
  grads_.clear();
  input_ = nullptr;
  last_dy_ = nullptr;
  for (const Node& node : nodes)
    CONVNET_CHECK(node.inputs.size() <= kMaxInputs, "graph: node '", node.name, "' has more than ",
                  kMaxInputs, " inputs");
  nodes_ = std::move(nodes);
  order_ = std::move(order);
  output_ = output;
  gradients_ = gradients;
  shapes_.assign(shapes.begin(), shapes.end());
  try {
    plan_activations();
    plan_folding();
    plan_gradients();
  } catch (const std::bad_alloc&) {
    nodes_.clear();
    order_.clear();
    acts_.clear();
    grads_.clear();
    grad_slots_.clear();
    throw;
  }
  set_profiling(profiling_);
}

// How many nodes read each node (a node reading another twice counts twice).
template <class T>
std::vector<int> Executor<T>::count_readers() const {
  std::vector<int> readers(nodes_.size(), 0);
  for (const Node& node : nodes_)
    for (size_t u : node.inputs) ++readers[u];
  return readers;
}

// Every node but the input gets an activation of its own, except a layer that runs in place on
// an input that allows it (see the header), which gets a view of that input's.
template <class T>
void Executor<T>::plan_activations() {
  acts_.clear();
  const std::vector<int> readers = count_readers();
  alias_.assign(nodes_.size(), 0);
  if (!keep_intermediates_)
    for (size_t v = 1; v < nodes_.size(); ++v) {
      const Node& node = nodes_[v];
      if (!node.layer || !node.layer->runs_in_place() || node.inputs.size() != 1) continue;
      const size_t u = node.inputs[0];
      if (u == 0 || u == output_ || readers[u] != 1 || alias_[u] != 0 ||
          shapes_[u].numel() != shapes_[v].numel())
        continue;
      const Node& producer = nodes_[u];
      if (producer.layer ? producer.layer->lends_output() : producer.merge->lends_output())
        alias_[v] = u;
    }
  for (size_t v = 0; v < nodes_.size(); ++v)
    acts_.emplace_back(v == 0 || alias_[v] != 0 ? Shape{0} : shapes_[v]);
  for (size_t v = 1; v < nodes_.size(); ++v)
    if (alias_[v] != 0) acts_[v] = Tensor<T>::view(acts_[alias_[v]].data(), shapes_[v]);
}

// A convolution whose output only a BatchNorm reads (and is not the model's output) folds it.
template <class T>
void Executor<T>::plan_folding() {
  fold_.assign(nodes_.size(), 0);
  fold_affine_.assign(nodes_.size(), Tensor<T>());
  skipped_.assign(nodes_.size(), 0);
  last_pass_folded_ = false;
  if (keep_intermediates_ || !fold_batchnorm_) return;
  const std::vector<int> readers = count_readers();
  for (size_t v = 1; v < nodes_.size(); ++v) {
    const Node& node = nodes_[v];
    auto* norm = dynamic_cast<BatchNorm<T>*>(node.layer);
    if (!norm || node.inputs.size() != 1) continue;
    const size_t u = node.inputs[0];
    auto* conv = u == 0 ? nullptr : dynamic_cast<Conv2d<T>*>(nodes_[u].layer);
    if (!conv || u == output_ || readers[u] != 1 || alias_[u] != 0) continue;
    conv->reserve_folding();
    fold_[u] = v;
    fold_affine_[u] = Tensor<T>(Shape{2 * shapes_[v][1]});
  }
}

template <class T>
void Executor<T>::set_fold_batchnorm(bool fold) {
  if (fold == fold_batchnorm_) return;
  fold_batchnorm_ = fold;
  if (planned()) plan_folding();
}

template <class T>
void Executor<T>::set_keep_intermediates(bool keep) {
  if (keep == keep_intermediates_) return;
  keep_intermediates_ = keep;
  share_gradients_ = !keep;
  if (!planned()) return;
  plan_activations();
  plan_folding();
  plan_gradients();
  input_ = nullptr;  // the last passes' values are gone
  last_dy_ = nullptr;
}

// Shared: walk backward's order, giving each node's gradient a buffer when its first writer
// runs (the first of its consumers in reverse order) and freeing it once the node's own
// backward has read it; a free buffer goes to the next gradient that fits it best (the smallest
// large enough, else the largest, grown). A node nothing reads keeps a zeroed buffer of its own
// (its gradient is zero), as when not shared.
template <class T>
void Executor<T>::plan_gradients() {
  grads_.clear();
  grad_slots_.clear();
  grads_.resize(nodes_.size());
  if (!gradients_) return;
  if (!share_gradients_) {
    for (size_t v = 1; v < nodes_.size(); ++v) grads_[v] = Tensor<T>(shapes_[v]);
    return;
  }
  const std::vector<int> readers = count_readers();
  std::vector<int64_t> slot_of(nodes_.size(), -1), size;
  std::vector<int64_t> free;
  for (size_t k = order_.size(); k-- > 0;) {
    const size_t v = order_[k];
    for (size_t u : nodes_[v].inputs) {
      if (u == 0 || slot_of[u] >= 0) continue;
      const int64_t need = shapes_[u].numel();
      int64_t best = -1;  // index into free: the smallest that fits, else the largest
      for (size_t i = 0; i < free.size(); ++i) {
        const int64_t s = free[i], b = best < 0 ? -1 : size[free[best]];
        const bool better = size[s] >= need ? b < need || size[s] < b : b < need && size[s] > b;
        if (best < 0 || better) best = static_cast<int64_t>(i);
      }
      if (best >= 0) {
        slot_of[u] = free[best];
        free.erase(free.begin() + best);
        size[slot_of[u]] = std::max(size[slot_of[u]], need);
      } else {
        slot_of[u] = static_cast<int64_t>(size.size());
        size.push_back(need);
      }
    }
    if (v != output_ && slot_of[v] >= 0) free.push_back(slot_of[v]);
  }
  for (int64_t n : size) grad_slots_.emplace_back(Shape{n});
  for (size_t v = 1; v < nodes_.size(); ++v) {
    if (v == output_) continue;  // backward's upstream there is the caller's dy
    if (slot_of[v] >= 0)
      grads_[v] = Tensor<T>::view(grad_slots_[slot_of[v]].data(), shapes_[v]);
    else if (readers[v] == 0)
      grads_[v] = Tensor<T>(shapes_[v]);
  }
}

template <class T>
void Executor<T>::set_share_gradients(bool share) {
  if (share == share_gradients_) return;
  share_gradients_ = share;
  if (planned()) plan_gradients();
}

template <class T>
int64_t Executor<T>::activation_elements() const {
  int64_t n = 0;
  for (const Tensor<T>& t : acts_)
    if (t.owns_storage()) n += t.capacity();
  return n;
}

template <class T>
int64_t Executor<T>::gradient_elements() const {
  int64_t n = 0;
  for (const Tensor<T>& t : grads_)
    if (t.owns_storage()) n += t.capacity();
  for (const Tensor<T>& t : grad_slots_) n += t.capacity();
  return n;
}

template <class T>
const Tensor<T>& Executor<T>::gradient(size_t node) const {
  CONVNET_CHECK(!share_gradients_ || node == 0 || node == output_,
                "the gradients of a model's inner nodes are not kept while they share buffers: "
                "set_keep_intermediates(true) before backward");
  return grads_[node];
}

template <class T>
const Tensor<T>& Executor<T>::forward(const Tensor<T>& x, Mode mode) {
  input_ = &x;
  return forward_from(0, mode);
}

template <class T>
const Tensor<T>& Executor<T>::forward_from(size_t first, Mode mode) {
  // A folded pass left no value in its convolutions' activations, which a later node may read.
  return run_forward(last_pass_folded_ ? 0 : first, mode, mode == Mode::Eval);
}

// backward() and trace() after a folded pass: the same pass again, unfolded.
template <class T>
void Executor<T>::unfold_last_pass() {
  if (!last_pass_folded_) return;
  CONVNET_CHECK(input_ != nullptr, "the input of the last forward pass is gone");
  run_forward(0, Mode::Eval, false);
}

template <class T>
const Tensor<T>& Executor<T>::run_forward(size_t first, Mode mode, bool fold) {
  // A Train forward writes what the model shares with others (BatchNorm's running statistics).
  CONVNET_CHECK(gradients_ || mode == Mode::Eval,
                "forward: Mode::Train on a model that runs on another model's weights "
                "(build_shared), which runs Mode::Eval only");
  auto act = [&](size_t u) -> const Tensor<T>& { return u == 0 ? *input_ : acts_[u]; };
  const Tensor<T>* xs[kMaxInputs];
  last_pass_folded_ = false;
  std::fill(skipped_.begin(), skipped_.end(), 0);  // (a pass that threw may have left some)
  for (size_t k = first; k < order_.size(); ++k) {
    const size_t v = order_[k];
    const Node& node = nodes_[v];
    const auto start = profiling_ ? Clock::now() : Clock::time_point{};
    if (alias_[v] != 0) {
      // An input larger than the plan's batch made the overwritten node reallocate: follow it.
      Tensor<T>& source = acts_[alias_[v]];
      if (acts_[v].data() != source.data() || acts_[v].capacity() < source.numel())
        acts_[v] = Tensor<T>::view(source.data(), source.shape());
    }
    if (skipped_[v]) {  // a BatchNorm its convolution has done
      skipped_[v] = 0;
    } else if (fold && fold_[v] != 0 &&
               static_cast<Conv2d<T>*>(node.layer)->folding_pays(act(node.inputs[0]).dim(0))) {
      const size_t norm = fold_[v];
      Tensor<T>& affine = fold_affine_[v];
      const int64_t channels = affine.numel() / 2;
      static_cast<BatchNorm<T>*>(nodes_[norm].layer)
          ->eval_affine(affine.data(), affine.data() + channels);
      static_cast<Conv2d<T>*>(node.layer)
          ->forward_folded(act(node.inputs[0]), acts_[norm], affine.data(),
                           affine.data() + channels);
      skipped_[norm] = 1;
      last_pass_folded_ = true;
    } else if (node.layer) {
      node.layer->forward(act(node.inputs[0]), acts_[v], mode);
    } else {
      for (size_t i = 0; i < node.inputs.size(); ++i) xs[i] = &act(node.inputs[i]);
      node.merge->forward(std::span(xs, node.inputs.size()), acts_[v]);
    }
    if (profiling_) times_[k].forward += seconds_since(start);
  }
  return acts_[output_];
}

template <class T>
void Executor<T>::backward(const Tensor<T>& dy, Tensor<T>* grad_input, GradientsReady ready,
                           void* context) {
  CONVNET_CHECK(gradients_,
                "backward: the model runs on another model's weights (build_shared) "
                "and has no gradients; train a model built with build()");
  unfold_last_pass();
  last_dy_ = &dy;
  // No buffer is zeroed: each node's first writer assigns it (Node::assign).
  for (size_t v : order_)
    if (v != output_) grads_[v].resize(acts_[v].shape());
  if (grad_input) grad_input->resize(input_->shape());
  auto act = [&](size_t u) -> const Tensor<T>& { return u == 0 ? *input_ : acts_[u]; };
  auto grad = [&](size_t u) -> Tensor<T>* { return u == 0 ? grad_input : &grads_[u]; };
  const Tensor<T>* xs[kMaxInputs];
  Tensor<T>* dxs[kMaxInputs];
  bool assign[kMaxInputs];
  for (size_t k = order_.size(); k-- > 0;) {
    const size_t v = order_[k];
    const Node& node = nodes_[v];
    const auto start = profiling_ ? Clock::now() : Clock::time_point{};
    const Tensor<T>& upstream = v == output_ ? dy : grads_[v];
    if (node.layer) {
      Tensor<T>* dx = grad(node.inputs[0]);
      if (dx && node.assign[0]) {
        node.layer->backward_assign(act(node.inputs[0]), acts_[v], upstream, *dx);
      } else {
        node.layer->backward(act(node.inputs[0]), acts_[v], upstream, dx);
      }
      if (ready) ready(context, node.group);
    } else {
      const size_t n = node.inputs.size();
      for (size_t i = 0; i < n; ++i) {
        xs[i] = &act(node.inputs[i]);
        dxs[i] = grad(node.inputs[i]);
        assign[i] = node.assign[i];
      }
      node.merge->backward_assign(std::span(xs, n), upstream, std::span(dxs, n),
                                  std::span<const bool>(assign, n));
    }
    if (profiling_) times_[k].backward += seconds_since(start);
  }
}

template <class T>
std::vector<NodeTrace<T>> Executor<T>::trace() {
  if (input_) unfold_last_pass();
  std::vector<NodeTrace<T>> out;
  for (const size_t v : order_) {
    const Node& node = nodes_[v];
    const Tensor<T>* grad = v == output_ ? last_dy_ : share_gradients_ ? nullptr : &grads_[v];
    out.push_back({node.name, node.layer ? node.layer->describe() : node.merge->describe(),
                   node.layer, &acts_[v], last_dy_ ? grad : nullptr});
  }
  return out;
}

template <class T>
void Executor<T>::set_context(Context& ctx) {
  for (Node& node : nodes_) {
    if (node.layer) node.layer->set_context(&ctx);
    if (node.merge) node.merge->set_context(&ctx);
  }
}

template <class T>
void Executor<T>::set_profiling(bool on) {
  profiling_ = on;
  times_.assign(order_.size(), LayerTime{});
  for (size_t k = 0; k < order_.size(); ++k) times_[k].layer = nodes_[order_[k]].label;
}

template class Executor<float>;
template class Executor<double>;

}  // namespace convnet
