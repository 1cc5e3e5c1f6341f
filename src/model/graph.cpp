// Graph: the chain rule over a directed acyclic graph. Forward evaluates the nodes in an order
// where every node comes after its inputs. Backward walks that order in reverse: a node's output
// gradient is complete once every consumer (all later in the order) has added its share,
//   ∂L/∂a_v = Σ_{consumers u of v} J_uᵀ · ∂L/∂a_u,
// and the layer contract (backward ACCUMULATES into dx) does the sum.
#include "convnet/graph.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "convnet/runtime.hpp"
#include "ops/kernels.hpp"

namespace convnet {
namespace {
// A node name as messages quote it: cut at 80 characters, so a name of megabytes (from a spec
// file) does not flood the terminal.
std::string shown(const std::string& name) {
  constexpr size_t kShown = 80;
  if (name.size() <= kShown) return "'" + name + "'";
  size_t cut = kShown;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  return detail::concat("'", name.substr(0, cut), "…' (", name.size(), " characters)");
}

// A cycle among the nodes the ordering could not place (!done), as node indices from its
// first-added node, each reading the next and the last reading the first. Every node left reads
// at least one node left, so following such inputs from any of them comes back round.
template <class Nodes>
std::vector<size_t> find_cycle(const Nodes& nodes, const std::vector<bool>& done) {
  size_t v = static_cast<size_t>(std::find(done.begin(), done.end(), false) - done.begin());
  std::vector<size_t> path;
  while (std::find(path.begin(), path.end(), v) == path.end()) {
    path.push_back(v);
    for (size_t u : nodes[v].inputs)
      if (!done[u]) {
        v = u;
        break;
      }
  }
  std::vector<size_t> cycle(std::find(path.begin(), path.end(), v), path.end());
  std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
  return cycle;
}
}  // namespace

// --- Add -----------------------------------------------------------------------------------
template <class T>
Shape Add<T>::build(std::span<const Shape> inputs) {
  CONVNET_CHECK(inputs.size() >= 2, "add: needs at least 2 inputs, got ", inputs.size());
  for (size_t i = 1; i < inputs.size(); ++i)
    CONVNET_CHECK(inputs[i] == inputs[0], "add: input ", i, " has shape ", inputs[i].str(),
                  " but input 0 has ", inputs[0].str(), " (all inputs must match)");
  return inputs[0];
}

template <class T>
void Add<T>::forward(std::span<const Tensor<T>* const> xs, Tensor<T>& y) {
  y.resize(xs[0]->shape());
  const T* in[16];
  for (size_t i = 0; i < xs.size(); ++i) in[i] = xs[i]->data();
  ops::add_forward<T>(this->context(), y.numel(), std::span<const T* const>(in, xs.size()),
                      y.data());
}

template <class T>
void Add<T>::backward(std::span<const Tensor<T>* const> xs, const Tensor<T>& dy,
                      std::span<Tensor<T>* const> dxs) {
  bool none[16] = {};
  CONVNET_CHECK(dxs.size() <= 16, "add: more than 16 inputs");
  backward_assign(xs, dy, dxs, std::span<const bool>(none, dxs.size()));
}

template <class T>
void Add<T>::backward_assign(std::span<const Tensor<T>* const> /*xs*/, const Tensor<T>& dy,
                             std::span<Tensor<T>* const> dxs, std::span<const bool> assign) {
  T* out[16];
  for (size_t i = 0; i < dxs.size(); ++i) out[i] = dxs[i] ? dxs[i]->data() : nullptr;
  ops::add_backward<T>(this->context(), dy.numel(), dy.data(), std::span<T* const>(out, dxs.size()),
                       assign);
}

template <class T>
Context& MergeLayer<T>::context() const {
  return context_ ? *context_ : default_context();
}

template <class T>
void MergeLayer<T>::backward_assign(std::span<const Tensor<T>* const> xs, const Tensor<T>& dy,
                                    std::span<Tensor<T>* const> dxs, std::span<const bool> assign) {
  for (size_t i = 0; i < dxs.size(); ++i)
    if (assign[i] && dxs[i]) dxs[i]->zero();
  backward(xs, dy, dxs);
}

// --- Concat --------------------------------------------------------------------------------
template <class T>
Shape Concat<T>::build(std::span<const Shape> inputs) {
  CONVNET_CHECK(inputs.size() >= 2, "concat: needs at least 2 inputs, got ", inputs.size());
  const Shape& first = inputs[0];
  CONVNET_CHECK(first.rank() == 2 || first.rank() == 4, "concat: inputs must be (N, C, H, W) or ",
                "(N, F), got ", first.str());
  channels_.clear();
  int64_t total = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Shape& s = inputs[i];
    bool same = s.rank() == first.rank() && s[0] == first[0];
    for (int d = 2; same && d < s.rank(); ++d) same = s[d] == first[d];
    CONVNET_CHECK(same, "concat: input ", i, " has shape ", s.str(), " but input 0 has ",
                  first.str(), " (all dimensions but the channels must match)");
    channels_.push_back(s[1]);
    total += s[1];
  }
  inner_ = first.rank() == 4 ? first[2] * first[3] : 1;
  Shape out = first;
  out[1] = total;
  return out;
}

template <class T>
void Concat<T>::forward(std::span<const Tensor<T>* const> xs, Tensor<T>& y) {
  Shape out = xs[0]->shape();
  int64_t total = 0;
  for (int64_t c : channels_) total += c;
  out[1] = total;
  y.resize(out);
  const T* in[16];
  for (size_t i = 0; i < xs.size(); ++i) in[i] = xs[i]->data();
  ops::concat_forward<T>(this->context(), out[0], inner_, channels_,
                         std::span<const T* const>(in, xs.size()), y.data());
}

template <class T>
void Concat<T>::backward(std::span<const Tensor<T>* const> /*xs*/, const Tensor<T>& dy,
                         std::span<Tensor<T>* const> dxs) {
  T* out[16];
  for (size_t i = 0; i < dxs.size(); ++i) out[i] = dxs[i] ? dxs[i]->data() : nullptr;
  ops::concat_backward<T>(this->context(), dy.dim(0), inner_, channels_, dy.data(),
                          std::span<T* const>(out, dxs.size()));
}

// --- Graph ---------------------------------------------------------------------------------
template <class T>
Graph<T>::Graph(std::string input_name) {
  CONVNET_CHECK(!input_name.empty(), "graph: the input node needs a name");
  nodes_.push_back(Node{std::move(input_name), nullptr, nullptr, {}, {}});
}

template <class T>
size_t Graph<T>::find(const std::string& name) const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].name == name) return i;
  return nodes_.size();
}

template <class T>
void Graph<T>::check_new_name(const std::string& name) const {
  CONVNET_CHECK(!name.empty(), "graph: a node needs a name");
  CONVNET_CHECK(find(name) == nodes_.size(), "graph: a node named '", name, "' already exists");
}

template <class T>
Layer<T>& Graph<T>::add(const std::string& name, std::unique_ptr<Layer<T>> layer,
                        const std::vector<std::string>& inputs) {
  check_new_name(name);
  CONVNET_CHECK(layer != nullptr, "graph: node '", name, "' got a null layer");
  nodes_.push_back(Node{name, std::move(layer), nullptr, inputs, {}});
  built_ = false;
  return *nodes_.back().layer;
}

template <class T>
MergeLayer<T>& Graph<T>::add(const std::string& name, std::unique_ptr<MergeLayer<T>> merge,
                             const std::vector<std::string>& inputs) {
  check_new_name(name);
  CONVNET_CHECK(merge != nullptr, "graph: node '", name, "' got a null layer");
  nodes_.push_back(Node{name, nullptr, std::move(merge), inputs, {}});
  built_ = false;
  return *nodes_.back().merge;
}

template <class T>
void Graph<T>::set_output(const std::string& name) {
  output_name_ = name;
  built_ = false;
}

template <class T>
void Graph<T>::build(const Shape& input) {
  CONVNET_CHECK(nodes_.size() > 1, "graph: cannot build a graph with no layers");
  const size_t count = nodes_.size();
  // Resolve input names.
  for (size_t v = 1; v < count; ++v) {
    Node& node = nodes_[v];
    const std::string at = this->origin_prefix(v);
    CONVNET_CHECK(!node.input_names.empty(), at, "graph: node ", shown(node.name),
                  " has no inputs");
    if (node.layer)
      CONVNET_CHECK(node.input_names.size() == 1, at, "graph: node ", shown(node.name), " (",
                    node.layer->kind(), ") takes exactly 1 input, got ", node.input_names.size());
    node.inputs.clear();
    for (const std::string& in : node.input_names) {
      const size_t u = find(in);
      CONVNET_CHECK(u < count, at, "graph: node ", shown(node.name), " reads ", shown(in),
                    ", which is not a node");
      CONVNET_CHECK(u != v, at, "graph: node ", shown(node.name), " reads itself");
      node.inputs.push_back(u);
    }
  }
  output_ = output_name_.empty() ? count - 1 : find(output_name_);
  CONVNET_CHECK(output_ < count && output_ > 0, "graph: output ", shown(output_name_),
                " is not a layer node");

  // Kahn's algorithm over the edges u -> v; ties keep the order the nodes were added, so the
  // order (and so every float sum) is fixed for a given graph.
  std::vector<size_t> pending(count, 0);
  std::vector<std::vector<size_t>> consumers(count);
  for (size_t v = 1; v < count; ++v)
    for (size_t u : nodes_[v].inputs) {
      ++pending[v];
      consumers[u].push_back(v);
    }
  order_.clear();
  std::vector<bool> done(count, false);
  done[0] = true;
  for (size_t v : consumers[0]) --pending[v];
  for (bool progress = true; progress;) {
    progress = false;
    for (size_t v = 1; v < count; ++v)
      if (!done[v] && pending[v] == 0) {
        done[v] = true;
        order_.push_back(v);
        for (size_t w : consumers[v]) --pending[w];
        progress = true;
        break;
      }
  }
  if (std::find(done.begin(), done.end(), false) != done.end()) {
    const std::vector<size_t> cycle = find_cycle(nodes_, done);
    // As data flows backwards: "'a' reads 'c', which reads 'b', which reads 'a'".
    std::string loop = shown(nodes_[cycle[0]].name);
    constexpr size_t kListed = 8;
    for (size_t i = 1; i <= cycle.size(); ++i) {
      if (i > kListed) {
        loop += detail::concat(", ... (", cycle.size(), " nodes in all)");
        break;
      }
      loop += (i == 1 ? " reads " : ", which reads ") + shown(nodes_[cycle[i % cycle.size()]].name);
    }
    throw Error(detail::concat(this->origin_prefix(cycle[0]), "graph: node ",
                               shown(nodes_[cycle[0]].name), " is on a cycle: ", loop,
                               " (a node cannot depend on its own output)"));
  }
  // Every node must feed the output: a node that does not is almost always a wiring mistake.
  std::vector<bool> needed(count, false);
  needed[output_] = true;
  for (size_t i = order_.size(); i-- > 0;)
    if (needed[order_[i]])
      for (size_t u : nodes_[order_[i]].inputs) needed[u] = true;
  for (size_t v = 0; v < count; ++v)
    CONVNET_CHECK(needed[v], this->origin_prefix(v), "graph: node ", shown(nodes_[v].name),
                  " does not lead to the output ", shown(nodes_[output_].name));
  // Backward visits the nodes in reverse order; the first to reach a gradient buffer assigns
  // it and the rest add to it. Every node leads to the output, so every buffer but the
  // output's has a first writer and none needs zeroing.
  std::vector<typename Executor<T>::Node> plan(count);
  std::vector<bool> written(count, false);
  for (size_t i = order_.size(); i-- > 0;) {
    const Node& node = nodes_[order_[i]];
    auto& step = plan[order_[i]];
    step.assign.assign(node.inputs.size(), false);
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      step.assign[k] = !written[node.inputs[k]];
      written[node.inputs[k]] = true;
    }
  }

  // Shapes, in order.
  input_shape_ = input;
  shapes_.assign(count, Shape{});
  shapes_[0] = input;
  for (size_t v : order_) {
    Node& node = nodes_[v];
    try {
      if (node.layer) {
        node.layer->set_context(&this->context());  // before build(), which sizes its scratch
        shapes_[v] = node.layer->build(shapes_[node.inputs[0]]);
      } else {
        node.merge->set_context(&this->context());
        std::vector<Shape> in;
        for (size_t u : node.inputs) in.push_back(shapes_[u]);
        shapes_[v] = node.merge->build(in);
      }
    } catch (const Error& e) {
      throw Error(
          detail::concat(this->origin_prefix(v), "node ", shown(node.name), ": ", e.what()));
    } catch (const std::bad_alloc&) {
      throw OutOfMemory(detail::concat(this->origin_prefix(v), "node ", shown(node.name),
                                       ": out of memory for its weights and workspace"));
    }
  }
  params_.clear();
  buffers_.clear();
  plan[0].name = nodes_[0].name;
  for (size_t v : order_) {
    Node& node = nodes_[v];
    auto& step = plan[v];
    step.name = node.name;
    step.label = node.name + " " + (node.layer ? node.layer->describe() : node.merge->describe());
    step.layer = node.layer.get();
    step.merge = node.merge.get();
    step.inputs = node.inputs;
    if (node.layer) step.group = this->collect_named(*node.layer, node.name, params_, buffers_);
  }
  this->plan_nodes(std::move(plan), order_, output_, shapes_);
  this->bind_arena(params_);
  built_ = true;
}

template <class T>
void Graph<T>::initialise(uint64_t seed) {
  require_built("initialise");
  CONVNET_CHECK(!this->weights_source(),
                "graph: initialise() would overwrite the weights "
                "of the model this one shares (build_shared)");
  Rng rng(seed);
  for (Node& node : nodes_)
    if (node.layer) node.layer->init(rng);
}

template <class T>
void Graph<T>::require_built(const char* what) const {
  CONVNET_CHECK(built_, "graph: ", what, "() needs build() first");
}

template <class T>
const Shape& Graph<T>::output_shape() const {
  require_built("output_shape");
  return shapes_[output_];
}

template <class T>
const std::string& Graph<T>::output_name() const {
  require_built("output_name");
  return nodes_[output_].name;
}

template <class T>
int64_t Graph<T>::forward_flops() const {
  int64_t total = 0;
  for (size_t v : order_)
    if (nodes_[v].layer) total += nodes_[v].layer->forward_flops();
  return total;
}

template <class T>
int64_t Graph<T>::train_flops() const {
  // Backward data is skipped for layers reading the graph input directly.
  int64_t total = 0;
  for (size_t v : order_)
    if (nodes_[v].layer) {
      const int64_t f = nodes_[v].layer->forward_flops();
      total += (nodes_[v].inputs[0] == 0 ? 2 : 3) * f;
    }
  return total;
}

template <class T>
std::string Graph<T>::summary() const {
  require_built("summary");
  std::ostringstream out;
  const int w1 = 40, w2 = 22, w3 = 16;
  const std::string rule(w1 + w2 + w3 + 12, '=');
  out << std::left << std::setw(w1) << "Node" << std::setw(w2) << "Inputs" << std::setw(w3)
      << "Output shape" << std::right << std::setw(12) << "Params"
      << "\n"
      << rule << "\n";
  out << std::left << std::setw(w1) << nodes_[0].name << std::setw(w2) << "" << std::setw(w3)
      << shapes_[0].str_per_batch() << std::right << std::setw(12) << 0 << "\n";
  for (size_t v : order_) {
    const Node& node = nodes_[v];
    int64_t count = 0;
    if (node.layer)
      for (const auto& p : node.layer->params()) count += p.value->numel();
    std::string inputs;
    for (const std::string& in : node.input_names) inputs += (inputs.empty() ? "" : ",") + in;
    const std::string what = node.layer ? node.layer->describe() : node.merge->describe();
    out << std::left << std::setw(w1) << (node.name + " " + what).substr(0, w1 - 1) << std::setw(w2)
        << inputs.substr(0, w2 - 1) << std::setw(w3) << shapes_[v].str_per_batch() << std::right
        << std::setw(12) << count << "\n";
  }
  out << rule << "\nTotal params: " << this->param_count() << "\nFLOPs per sample: forward "
      << forward_flops() << ", training step " << train_flops() << "\n";
  return out.str();
}

template <class T>
std::string Graph<T>::spec() const {
  std::string out = "model graph input=" + nodes_[0].name + "\n";
  for (size_t v = 1; v < nodes_.size(); ++v) {
    const Node& node = nodes_[v];
    const std::string what = node.layer ? node.layer->spec() : node.merge->spec();
    const size_t space = what.find(' ');  // "kind options": in= goes between the two
    std::string inputs;
    for (const std::string& in : node.input_names) inputs += (inputs.empty() ? "" : ",") + in;
    out += "node " + node.name + " " + what.substr(0, space) + " in=" + inputs;
    if (space != std::string::npos) out += what.substr(space);
    out += "\n";
  }
  if (!output_name_.empty()) out += "output " + output_name_ + "\n";
  return out;
}

template <class T>
std::vector<NamedLayer<T>> Graph<T>::named_layers() const {
  std::vector<NamedLayer<T>> out;
  for (const Node& node : nodes_)
    if (node.layer) out.push_back({node.name, node.layer.get()});
  return out;
}

template <class T>
const Tensor<T>& Graph<T>::forward(const Tensor<T>& x, Mode mode) {
  require_built("forward");
  CONVNET_CHECK(x.shape().rank() == input_shape_.rank() && x.dim(0) >= 1, "graph: input has shape ",
                x.shape().str(), ", built for ", input_shape_.str());
  for (int d = 1; d < input_shape_.rank(); ++d)
    CONVNET_CHECK(x.dim(d) == input_shape_[d], "graph: input has shape ", x.shape().str(),
                  ", built for ", input_shape_.str());
  return this->executor_.forward(x, mode);
}

template <class T>
std::vector<NodeTrace<T>> Graph<T>::trace() {
  require_built("trace");
  return this->executor_.trace();
}

template <class T>
void Graph<T>::backward(const Tensor<T>& dy, Tensor<T>* grad_input) {
  require_built("backward");
  CONVNET_CHECK(this->executor_.input() != nullptr, "graph: backward() needs a forward() first");
  check_shape(dy.shape(), this->executor_.output().shape(), "graph backward: output gradient");
  this->run_backward(dy, grad_input);
}

template <class T>
void Graph<T>::set_replay(bool on) {
  for (Node& node : nodes_)
    if (node.layer) node.layer->set_replay(on);
}

template <class T>
void Graph<T>::set_batch_shard(const BatchShard& shard) {
  for (Node& node : nodes_)
    if (node.layer) node.layer->set_batch_shard(shard);
}

template <class T>
void Graph<T>::skip_batch(int64_t samples) {
  for (Node& node : nodes_)
    if (node.layer) node.layer->skip_batch(samples);
}

template class MergeLayer<float>;
template class MergeLayer<double>;
template class Add<float>;
template class Add<double>;
template class Concat<float>;
template class Concat<double>;
template class Graph<float>;
template class Graph<double>;

}  // namespace convnet
