// Graph: a model whose layers form a directed acyclic graph. Each node is a layer with a name and
// the names of the nodes it reads; a node may feed several others (its gradient is then the SUM
// of what each consumer sends back: the chain rule over every path), and merge nodes take several
// inputs: Add (residual connections) and Concat (channels). build() orders the nodes, rejects a
// cycle or an input naming no node (naming the node), infers and checks every shape.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "convnet/model.hpp"

namespace convnet {

// A layer of several inputs and one output. Same contract as Layer: forward assigns y; backward
// ACCUMULATES into each dxs[i] that is not null.
template <class T>
class MergeLayer {
 public:
  virtual ~MergeLayer() = default;
  virtual std::string kind() const = 0;
  virtual std::string describe() const { return kind(); }
  // As Layer::spec(): the kind and its options (Add and Concat have none).
  virtual std::string spec() const { return kind(); }
  // Checks the input shapes (batch dimension included) and returns the output shape.
  virtual Shape build(std::span<const Shape> inputs) = 0;
  virtual void forward(std::span<const Tensor<T>* const> xs, Tensor<T>& y) = 0;
  virtual void backward(std::span<const Tensor<T>* const> xs, const Tensor<T>& dy,
                        std::span<Tensor<T>* const> dxs) = 0;
  // As backward(), but each dxs[i] with assign[i] set is ASSIGNED its gradient, its previous
  // contents ignored (see Layer::backward_assign); the others accumulate. When one tensor is
  // passed twice, only its first occurrence may be assigned. The default zeroes the assigned
  // ones, then calls backward().
  virtual void backward_assign(std::span<const Tensor<T>* const> xs, const Tensor<T>& dy,
                               std::span<Tensor<T>* const> dxs, std::span<const bool> assign);
  // As Layer::lends_output (Add: its backward passes dy on and never reads y).
  virtual bool lends_output() const { return false; }
  // As Layer::context(): the graph's context, set before build(); default_context() alone.
  Context& context() const;
  void set_context(Context* context) { context_ = context; }

 private:
  Context* context_ = nullptr;
};

// y = Σ_i x_i, all of one shape (a residual connection: block(x) + x). dx_i += dy.
template <class T>
class Add final : public MergeLayer<T> {
 public:
  std::string kind() const override { return "add"; }
  bool lends_output() const override { return true; }
  Shape build(std::span<const Shape> inputs) override;
  void forward(std::span<const Tensor<T>* const> xs, Tensor<T>& y) override;
  void backward(std::span<const Tensor<T>* const> xs, const Tensor<T>& dy,
                std::span<Tensor<T>* const> dxs) override;
  void backward_assign(std::span<const Tensor<T>* const> xs, const Tensor<T>& dy,
                       std::span<Tensor<T>* const> dxs, std::span<const bool> assign) override;
};

// Channel concatenation of (N, C_i, H, W) inputs into (N, ΣC_i, H, W) (torch.cat(dim=1)); inputs
// of rank 2 (N, F_i) concatenate features. dx_i += the slice of dy that came from x_i.
template <class T>
class Concat final : public MergeLayer<T> {
 public:
  std::string kind() const override { return "concat"; }
  Shape build(std::span<const Shape> inputs) override;
  void forward(std::span<const Tensor<T>* const> xs, Tensor<T>& y) override;
  void backward(std::span<const Tensor<T>* const> xs, const Tensor<T>& dy,
                std::span<Tensor<T>* const> dxs) override;

 private:
  std::vector<int64_t> channels_;  // C_i of each input
  int64_t inner_ = 0;              // H·W (1 for rank 2)
};

template <class T>
class Graph final : public Model<T> {
 public:
  // The graph's input node is called `input_name` ("input" by default); nodes read it by name.
  explicit Graph(std::string input_name = "input");
  Graph(Graph&&) noexcept = default;
  Graph& operator=(Graph&&) noexcept = default;
  using Model<T>::build;
  using LayerTime = typename Model<T>::LayerTime;

  // Adds node `name` computing layer(inputs[0]) (a Layer takes exactly one input) or
  // merge(inputs...). Inputs may name nodes added later; build() resolves them. The last node
  // added is the output unless set_output() says otherwise. Names must be unique.
  Layer<T>& add(const std::string& name, std::unique_ptr<Layer<T>> layer,
                const std::vector<std::string>& inputs);
  MergeLayer<T>& add(const std::string& name, std::unique_ptr<MergeLayer<T>> merge,
                     const std::vector<std::string>& inputs);
  // graph.emplace<Conv2d>("conv1", {"input"}, Conv2dOptions{...}); also for Add and Concat.
  template <template <class> class L, class... Args>
  L<T>& emplace(const std::string& name, const std::vector<std::string>& inputs, Args&&... args) {
    auto layer = std::make_unique<L<T>>(std::forward<Args>(args)...);
    L<T>& ref = *layer;
    add(name, std::move(layer), inputs);
    return ref;
  }
  void set_output(const std::string& name);

  // Orders the nodes (inputs before consumers) and infers every shape for `input`. Throws
  // convnet::Error naming the node for: an input that names no node, a cycle, a node the output
  // does not depend on, a layer given other than one input, or shapes that do not fit.
  // build(input, seed) also initialises every layer from Rng(seed), in the order the nodes were
  // added.
  void build(const Shape& input) override;
  void initialise(uint64_t seed) override;
  bool built() const override { return built_; }

  const Shape& input_shape() const override { return input_shape_; }
  const Shape& output_shape() const override;
  // Nodes in evaluation order (the input node excluded), and their names, layers and shapes.
  size_t size() const { return order_.size(); }
  const std::string& node_name(size_t i) const { return nodes_[order_[i]].name; }
  Layer<T>* layer(size_t i) { return nodes_[order_[i]].layer.get(); }  // null for merge nodes
  const Shape& node_output_shape(size_t i) const { return shapes_[order_[i]]; }
  // Read-only views of the wiring, for exporters (convnet/onnx.hpp): node i's layer (null for a
  // merge node), its merge layer (null for a layer), the names of the nodes it reads, the input
  // node's name and the output node's name (build() first).
  const Layer<T>* layer(size_t i) const { return nodes_[order_[i]].layer.get(); }
  const MergeLayer<T>* merge(size_t i) const { return nodes_[order_[i]].merge.get(); }
  const std::vector<std::string>& node_inputs(size_t i) const {
    return nodes_[order_[i]].input_names;
  }
  const std::string& input_name() const { return nodes_[0].name; }
  const std::string& output_name() const;
  // Trainable tensors and buffers named "<node>.<name>", in evaluation order.
  std::span<const Param<T>> params() const override { return params_; }
  std::span<const Buffer<T>> buffers() const override { return buffers_; }
  int64_t forward_flops() const override;
  // Forward, backward weights, backward data (not into layers reading the graph input).
  int64_t train_flops() const override;
  // Node, its inputs, output shape and parameters, one line each.
  std::string summary() const override;
  // "model graph input=NAME", one "node NAME KIND in=A[,B...] options" line per node in the
  // order they were added, and "output NAME" if set_output() was called.
  std::string spec() const override;
  std::vector<NamedLayer<T>> named_layers() const override;
  std::vector<NodeTrace<T>> trace() override;

  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  void backward(const Tensor<T>& dy, Tensor<T>* grad_input = nullptr) override;
  void set_replay(bool on) override;
  void set_batch_shard(const BatchShard& shard) override;
  void skip_batch(int64_t samples) override;

 private:
  struct Node {
    std::string name;
    std::unique_ptr<Layer<T>> layer;       // one of these two,
    std::unique_ptr<MergeLayer<T>> merge;  // except for the input node
    std::vector<std::string> input_names;
    std::vector<size_t> inputs;  // resolved by build()
  };
  size_t find(const std::string& name) const;  // nodes_.size() if absent
  void check_new_name(const std::string& name) const;
  void require_built(const char* what) const;

  std::vector<Node> nodes_;  // nodes_[0] is the input
  std::string output_name_;
  std::vector<size_t> order_;  // evaluation order (node indices, input excluded)
  size_t output_ = 0;
  Shape input_shape_;
  std::vector<Shape> shapes_;  // per node
  std::vector<Param<T>> params_;
  std::vector<Buffer<T>> buffers_;
  bool built_ = false;
};

extern template class Graph<float>;
extern template class Graph<double>;

}  // namespace convnet
