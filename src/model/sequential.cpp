// Sequential: the chain rule over a list of layers. build() plans the chain for the executor
// (convnet/executor.hpp), which forward runs layer 0..L-1, keeping every activation, and
// backward walks L-1..0 handing each layer the gradient of its output and collecting the
// gradient of its input (∂L/∂x_i = J_iᵀ · ∂L/∂x_{i+1}).
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "convnet/model.hpp"

namespace convnet {

template <class T>
Layer<T>& Sequential<T>::add(std::unique_ptr<Layer<T>> layer) {
  CONVNET_CHECK(layer != nullptr, "sequential: add() got a null layer");
  layers_.push_back(std::move(layer));
  built_ = false;
  return *layers_.back();
}

template <class T>
void Sequential<T>::build(const Shape& input) {
  CONVNET_CHECK(!layers_.empty(), "sequential: cannot build a model with no layers");
  shapes_.assign(1, input);
  for (size_t i = 0; i < layers_.size(); ++i) {
    Shape out;
    try {
      layers_[i]->set_context(&this->context());  // before build(), which sizes its scratch
      out = layers_[i]->build(shapes_.back());
    } catch (const Error& e) {
      throw Error(detail::concat(this->origin_prefix(i), "layer ", i, ": ", e.what()));
    } catch (const std::bad_alloc&) {
      throw OutOfMemory(detail::concat(this->origin_prefix(i), "layer ", i, ": ",
                                       layers_[i]->describe(), " on input ", shapes_.back().str(),
                                       ": out of memory for its weights and workspace"));
    }
    shapes_.push_back(out);
  }
  // A chain is a graph whose node i + 1 is layer i, reading node i; each layer is the only
  // consumer of its input, so its backward assigns that gradient.
  params_.clear();
  buffers_.clear();
  std::vector<typename Executor<T>::Node> plan(layers_.size() + 1);
  std::vector<size_t> order;
  plan[0].name = "input";
  for (size_t i = 0; i < layers_.size(); ++i) {
    auto& node = plan[i + 1];
    node.name = detail::concat("layer", i);
    node.label = detail::concat(i, " ", layers_[i]->describe());
    node.layer = layers_[i].get();
    node.inputs = {i};
    node.assign = {true};
    node.group = this->collect_named(*layers_[i], node.name, params_, buffers_);
    order.push_back(i + 1);
  }
  this->plan_nodes(std::move(plan), std::move(order), layers_.size(), shapes_);
  this->bind_arena(params_);
  built_ = true;
}

template <class T>
void Sequential<T>::initialise(uint64_t seed) {
  require_built("initialise");
  CONVNET_CHECK(!this->weights_source(),
                "sequential: initialise() would overwrite the weights "
                "of the model this one shares (build_shared)");
  Rng rng(seed);
  for (auto& layer : layers_) layer->init(rng);
}

template <class T>
void Sequential<T>::require_built(const char* what) const {
  CONVNET_CHECK(built_, "sequential: ", what, "() needs build() first");
}

template <class T>
int64_t Sequential<T>::forward_flops() const {
  int64_t total = 0;
  for (const auto& layer : layers_) total += layer->forward_flops();
  return total;
}

template <class T>
int64_t Sequential<T>::train_flops() const {
  return layers_.empty() ? 0 : 3 * forward_flops() - layers_.front()->forward_flops();
}

template <class T>
std::string Sequential<T>::summary() const {
  require_built("summary");
  std::ostringstream out;
  const int w1 = 36, w2 = 16;
  const std::string rule(w1 + w2 + 12, '=');
  out << std::left << std::setw(w1) << "Layer" << std::setw(w2) << "Output shape" << std::right
      << std::setw(12) << "Params"
      << "\n"
      << rule << "\n";
  out << std::left << std::setw(w1) << "input" << std::setw(w2) << shapes_[0].str_per_batch()
      << std::right << std::setw(12) << 0 << "\n";
  for (size_t i = 0; i < layers_.size(); ++i) {
    int64_t count = 0;
    for (const auto& p : layers_[i]->params()) count += p.value->numel();
    out << std::left << std::setw(w1) << detail::concat(i, " ", layers_[i]->describe())
        << std::setw(w2) << shapes_[i + 1].str_per_batch() << std::right << std::setw(12) << count
        << "\n";
  }
  out << rule << "\nTotal params: " << this->param_count() << "\nFLOPs per sample: forward "
      << forward_flops() << ", training step " << train_flops() << "\n";
  return out.str();
}

template <class T>
std::string Sequential<T>::spec() const {
  std::string out = "model sequential\n";
  for (const auto& layer : layers_) out += "layer " + layer->spec() + "\n";
  return out;
}

template <class T>
std::vector<NamedLayer<T>> Sequential<T>::named_layers() const {
  std::vector<NamedLayer<T>> out;
  for (size_t i = 0; i < layers_.size(); ++i)
    out.push_back({detail::concat("layer", i), layers_[i].get()});
  return out;
}

template <class T>
const Tensor<T>& Sequential<T>::forward(const Tensor<T>& x, Mode mode) {
  require_built("forward");
  return this->executor_.forward(x, mode);
}

template <class T>
const Tensor<T>& Sequential<T>::forward_from(size_t first, Mode mode) {
  require_built("forward");
  CONVNET_CHECK(first < layers_.size() && this->executor_.input() != nullptr,
                "sequential: forward_from(", first,
                ") needs a forward() first and a layer index below ", layers_.size());
  return this->executor_.forward_from(first, mode);
}

template <class T>
Tensor<T>& Sequential<T>::activation(size_t i) {
  CONVNET_CHECK(built_ && i >= 1 && i <= layers_.size(), "sequential: activation(", i,
                ") out of range [1, ", layers_.size() + 1, ")");
  return this->executor_.activation(i);
}

template <class T>
std::vector<NodeTrace<T>> Sequential<T>::trace() {
  require_built("trace");
  return this->executor_.trace();
}

template <class T>
void Sequential<T>::backward(const Tensor<T>& dy, Tensor<T>* grad_input) {
  require_built("backward");
  CONVNET_CHECK(this->executor_.input() != nullptr,
                "sequential: backward() needs a forward() first");
  check_shape(dy.shape(), this->executor_.output().shape(), "sequential backward: output gradient");
  this->run_backward(dy, grad_input);
}

template <class T>
void Sequential<T>::set_replay(bool on) {
  for (auto& layer : layers_) layer->set_replay(on);
}

template <class T>
void Sequential<T>::set_batch_shard(const BatchShard& shard) {
  for (auto& layer : layers_) layer->set_batch_shard(shard);
}

template <class T>
void Sequential<T>::skip_batch(int64_t samples) {
  for (auto& layer : layers_) layer->skip_batch(samples);
}

template class Sequential<float>;
template class Sequential<double>;

}  // namespace convnet
