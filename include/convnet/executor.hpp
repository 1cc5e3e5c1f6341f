// Executor: runs a built model's nodes, for Sequential and Graph alike. A chain is a graph whose
// node i+1 reads node i, so both builders hand the executor the same plan: nodes (a layer or a
// merge, the nodes it reads), an evaluation order, and a shape per node. The executor owns an
// activation and a gradient per node and implements, once, what happens at this level: forward,
// backward (the chain rule over every path, with the gradient hook's calls), the trace of the
// last passes and per-node profiling.
//
// The memory plan, by default:
// - gradient buffers are shared: a node's ∂L/∂y is needed only from the backward of its last
//   consumer (the first to run, in reverse order) to its own backward, so backward runs on a few
//   buffers, reused in reverse order, rather than one per node (a chain needs two). The inner
//   nodes' gradients are gone once backward returns.
// - a layer that runs in place (ReLU) writes over its input when that input is a node of its
//   own that lends its output (BatchNorm, Add: their backward never reads it), is read by
//   nothing else and is not the model's output. That node's activation then holds the ReLU's.
// - in Mode::Eval, a BatchNorm that alone reads a convolution is folded into it
//   (Conv2d::forward_folded): the convolution writes the BatchNorm's output, with weights scaled
//   per output channel, and the BatchNorm's own pass is skipped, where that saves work for the
//   batch (Conv2d::folding_pays). The convolution's activation then holds no value of that
//   pass; backward() and trace() after such a pass first run it again unfolded, so they see
//   every node's output as a plain Mode::Eval pass computes it.
// set_keep_intermediates(true) gives every node its own activation and gradient, kept after the
// passes, for the trace, gradcheck and `convnet explain` (Model::set_keep_intermediates), and
// folds nothing.
//
// Node 0 is the model's input: it is not copied (forward reads the caller's tensor) and has no
// gradient buffer (backward writes ∂L/∂x into the caller's grad_input, when one is given).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "convnet/layers.hpp"

namespace convnet {

template <class T>
class MergeLayer;  // convnet/graph.hpp

// One node of a model as the last forward and backward left it (see Model::trace).
template <class T>
struct NodeTrace {
  std::string name;              // as in named_layers(): "layer3", or the graph node's name
  std::string description;       // the layer's (or merge node's) describe()
  Layer<T>* layer;               // null for a graph's merge nodes (Add, Concat)
  const Tensor<T>* output;       // y of the last forward
  const Tensor<T>* grad_output;  // ∂L/∂y of the last backward (null before any)
};

template <class T>
class Executor {
 public:
  struct Node {
    std::string name;                // "layer3", or the graph node's name
    std::string label;               // how profiling names it: "3 conv2d ...", "conv1 conv2d ..."
    Layer<T>* layer = nullptr;       // one of these two (neither for node 0)
    MergeLayer<T>* merge = nullptr;  //
    std::vector<size_t> inputs;      // the nodes it reads (0: the model's input)
    // assign[k]: backward is the first to write input k's gradient, so it assigns rather than
    // adds and the buffer needs no zeroing (always, in a chain).
    std::vector<bool> assign;
    size_t group = 0;  // the layer's index in the model's parameter groups (gradients_ready)
  };
  // Called after a layer node's backward, with its group: its parameter gradients are final.
  using GradientsReady = void (*)(void* context, size_t group);
  struct LayerTime {
    std::string layer;
    double forward = 0, backward = 0;
  };

  // Takes the plan and allocates an activation for every node but the input, and the gradient
  // buffers (shared or one per node, see above).
  // Without gradients (a model that only serves, Model::build_shared), the activations only:
  // forward then runs in Mode::Eval only and backward throws. Throws std::bad_alloc (the plan
  // is then empty).
  void plan(std::vector<Node> nodes, std::vector<size_t> order, size_t output,
            std::span<const Shape> shapes, bool gradients = true);
  bool planned() const { return !order_.empty(); }
  bool has_gradients() const { return gradients_; }

  // Runs every node in order on x; returns the output node's activation. In Mode::Train, x must
  // stay alive until backward().
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode);
  // Runs the nodes from evaluation step `first` on, on the activations the last forward left.
  const Tensor<T>& forward_from(size_t first, Mode mode);
  // Backpropagates dy = ∂L/∂output: every node in reverse order, given the gradient of its
  // output, adds (or assigns, see Node::assign) the gradients of its inputs; parameter
  // gradients accumulate. grad_input (optional) is assigned ∂L/∂x.
  void backward(const Tensor<T>& dy, Tensor<T>* grad_input, GradientsReady ready = nullptr,
                void* context = nullptr);

  const Tensor<T>* input() const { return input_; }
  Tensor<T>& activation(size_t node) { return acts_[node]; }
  // ∂L/∂y of a node after backward; throws convnet::Error while gradients are shared.
  const Tensor<T>& gradient(size_t node) const;
  const Tensor<T>& output() const { return acts_[output_]; }
  // Every node in evaluation order with its output and output gradient (the output node's is
  // the last backward's dy, so valid while that tensor is; the others' null while gradients are
  // shared).
  std::vector<NodeTrace<T>> trace();
  // Forgets the last forward's input and dy (a moved model's may have been the other's).
  void forget_last_pass() {
    input_ = nullptr;
    last_dy_ = nullptr;
  }

  // The default plan (false) or one activation and one gradient per node, kept (true); re-plans
  // the buffers (allocates; the last passes' values are lost) when it changes.
  void set_keep_intermediates(bool keep);
  bool keeps_intermediates() const { return keep_intermediates_; }
  // Only the gradients' part of it: shared (the default plan's) or one per node, kept after
  // backward; re-plans the gradient buffers alone (the activations stay valid).
  void set_share_gradients(bool share);
  bool shares_gradients() const { return share_gradients_; }
  // BatchNorm folding at Mode::Eval (on by default; off with keep_intermediates). Off gives
  // every Eval pass exactly as the layers compute it one by one; on, results differ from it by
  // rounding alone.
  void set_fold_batchnorm(bool fold);
  bool folds_batchnorm() const { return fold_batchnorm_; }
  // Whether the last forward pass folded any BatchNorm.
  bool last_pass_folded() const { return last_pass_folded_; }
  // Elements of the activation and of the gradient buffers (for the memory figures).
  int64_t activation_elements() const;
  int64_t gradient_elements() const;

  // Points every planned node's layer at ctx (Model::set_context).
  void set_context(Context& ctx);

  void set_profiling(bool on);
  const std::vector<LayerTime>& layer_times() const { return times_; }

 private:
  using Clock = std::chrono::steady_clock;
  std::vector<Node> nodes_;
  std::vector<size_t> order_;
  size_t output_ = 0;
  std::vector<Tensor<T>> acts_;   // per node; acts_[0] empty (the input is the caller's)
  std::vector<Tensor<T>> grads_;  // per node, ∂L/∂acts_ (views of grad_slots_ when shared);
                                  // grads_[0] empty (grad_input's)
  std::vector<Tensor<T>> grad_slots_;  // the shared buffers
  std::vector<Shape> shapes_;          // per node, as planned
  bool gradients_ = true;         // false: grads_ are all empty, and only Eval runs
  bool share_gradients_ = true;
  bool keep_intermediates_ = false;
  std::vector<size_t> alias_;  // per node: the node whose activation it overwrites (0: none)
  // Folding: per convolution node, the BatchNorm node folded into it (0: none), and that
  // BatchNorm's scale and shift (2 x C); per node, whether this pass skipped it.
  std::vector<size_t> fold_;
  std::vector<Tensor<T>> fold_affine_;
  std::vector<char> skipped_;
  bool fold_batchnorm_ = true;
  bool last_pass_folded_ = false;
  std::vector<int> count_readers() const;
  void plan_activations();
  void plan_folding();
  const Tensor<T>& run_forward(size_t first, Mode mode, bool fold);
  void unfold_last_pass();
  void plan_gradients();
  const Tensor<T>* input_ = nullptr;
  const Tensor<T>* last_dy_ = nullptr;
  bool profiling_ = false;
  std::vector<LayerTime> times_;  // per evaluation step
};

extern template class Executor<float>;
extern template class Executor<double>;

}  // namespace convnet
