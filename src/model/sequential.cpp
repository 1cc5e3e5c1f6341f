// Sequential: the chain rule over a list of layers. Forward runs layer 0..L-1, keeping every
// activation; backward walks L-1..0 handing each layer the gradient of its output and
// collecting the gradient of its input (∂L/∂x_i = J_iᵀ · ∂L/∂x_{i+1}).
#include <algorithm>
#include <chrono>
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
  acts_.clear();
  grads_.clear();
  try {
    for (const Shape& s : shapes_) {
      acts_.emplace_back(s);
      grads_.emplace_back(s);
    }
    this->loss_grad_ = Tensor<T>(shapes_.back());
  } catch (const std::bad_alloc&) {
    acts_.clear();
    grads_.clear();
    throw this->activations_out_of_memory(shapes_);
  }
  params_.clear();
  buffers_.clear();
  for (size_t i = 0; i < layers_.size(); ++i)
    this->collect_named(*layers_[i], detail::concat("layer", i), params_, buffers_);
  this->bind_arena(params_);
  built_ = true;
}

template <class T>
void Sequential<T>::initialise(uint64_t seed) {
  require_built("initialise");
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
  input_ = &x;
  return forward_from(0, mode);
}

template <class T>
const Tensor<T>& Sequential<T>::forward_from(size_t first, Mode mode) {
  require_built("forward");
  CONVNET_CHECK(first < layers_.size() && input_ != nullptr, "sequential: forward_from(", first,
                ") needs a forward() first and a layer index below ", layers_.size());
  for (size_t i = first; i < layers_.size(); ++i) {
    const Tensor<T>& in = i == 0 ? *input_ : acts_[i];
    const auto start =
        profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    layers_[i]->forward(in, acts_[i + 1], mode);
    if (profiling_)
      times_[i].forward +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return acts_.back();
}

template <class T>
Tensor<T>& Sequential<T>::activation(size_t i) {
  CONVNET_CHECK(i >= 1 && i < acts_.size(), "sequential: activation(", i, ") out of range [1, ",
                acts_.size(), ")");
  return acts_[i];
}

template <class T>
std::vector<NodeTrace<T>> Sequential<T>::trace() {
  require_built("trace");
  std::vector<NodeTrace<T>> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Tensor<T>* grad = i + 1 == layers_.size() ? this->last_dy_ : &grads_[i + 1];
    out.push_back({"layer" + std::to_string(i), layers_[i]->describe(), layers_[i].get(),
                   &acts_[i + 1], this->last_dy_ ? grad : nullptr});
  }
  return out;
}

template <class T>
void Sequential<T>::backward(const Tensor<T>& dy, Tensor<T>* grad_input) {
  require_built("backward");
  CONVNET_CHECK(input_ != nullptr, "sequential: backward() needs a forward() first");
  check_shape(dy.shape(), acts_.back().shape(), "sequential backward: output gradient");
  this->last_dy_ = &dy;
  for (size_t i = layers_.size(); i-- > 0;) {
    const Tensor<T>& x = i == 0 ? *input_ : acts_[i];
    const Tensor<T>& upstream = i + 1 == layers_.size() ? dy : grads_[i + 1];
    Tensor<T>* dx = nullptr;
    if (i > 0) {
      dx = &grads_[i];
    } else if (grad_input) {
      dx = grad_input;
    }
    const auto start =
        profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    if (dx) {  // a chain: layer i is the only contributor to its dx, so it assigns
      dx->resize(x.shape());
      layers_[i]->backward_assign(x, acts_[i + 1], upstream, *dx);
    } else {
      layers_[i]->backward(x, acts_[i + 1], upstream, nullptr);
    }
    this->gradients_ready(i);  // layer i's parameter gradients are final
    if (profiling_)
      times_[i].backward +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
}

template <class T>
void Sequential<T>::set_profiling(bool on) {
  profiling_ = on;
  times_.assign(layers_.size(), typename Model<T>::LayerTime{});
  for (size_t i = 0; i < layers_.size(); ++i)
    times_[i].layer = detail::concat(i, " ", layers_[i]->describe());
}

template <class T>
std::vector<typename Model<T>::LayerTime> Sequential<T>::layer_times() const {
  return times_;
}

template <class T>
void Sequential<T>::set_replay(bool on) {
  for (auto& layer : layers_) layer->set_replay(on);
}

template class Sequential<float>;
template class Sequential<double>;

}  // namespace convnet
