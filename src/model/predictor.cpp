// Predictor: a trained model served to concurrent callers through per-call execution contexts.
#include "convnet/predictor.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "convnet/spec.hpp"

namespace convnet {
namespace {

// A checkpoint's class names name its model's outputs, one each; checked here, where the file's
// name is known, so that the message says which checkpoint is inconsistent.
template <class T>
Checkpoint<T> with_one_name_per_output(Checkpoint<T> checkpoint) {
  const size_t names = checkpoint.state.input.class_names.size();
  const Shape& out = checkpoint.model->output_shape();
  // (An output that is not N x classes is the constructor's error.)
  const std::string& target = checkpoint.state.input.target;
  const bool labels = target.empty() || target == "labels";  // else the names are the data's
  CONVNET_CHECK(!labels || names == 0 || out.rank() != 2 || out[1] == static_cast<int64_t>(names),
                checkpoint.path.empty() ? std::string("checkpoint") : checkpoint.path,
                ": the checkpoint records ", names, " class names (input.class_names) but its ",
                "model has ", out[1], " outputs: one name per output is needed");
  return checkpoint;
}

}  // namespace

template <class T>
struct Predictor<T>::Context {
  std::unique_ptr<Model<T>> model;  // grows to the largest batch it has run
  Tensor<T> input;                  // one batch, normalised
};

// Loaded for one sample: the template never runs, so it needs no batch of activations.
template <class T>
Predictor<T>::Predictor(const std::string& checkpoint_path, int64_t max_batch)
    : Predictor(load_checkpoint<T>(checkpoint_path, 1), max_batch) {}

// Checked before it is taken apart: the model and its input information are moved into the
// delegated constructor's parameters in an unspecified order.
template <class T>
Predictor<T>::Predictor(Checkpoint<T> checkpoint, int64_t max_batch)
    : Predictor(CheckedNames{}, with_one_name_per_output(std::move(checkpoint)), max_batch) {}

template <class T>
Predictor<T>::Predictor(CheckedNames, Checkpoint<T> checkpoint, int64_t max_batch)
    : Predictor(std::move(checkpoint.model), std::move(checkpoint.state.input), max_batch) {}

template <class T>
Predictor<T>::Predictor(std::unique_ptr<Model<T>> model, InputInfo input, int64_t max_batch)
    : template_(std::move(model)), input_(std::move(input)), max_batch_(max_batch) {
  CONVNET_CHECK(template_ && template_->built(), "predictor: the model must be built");
  CONVNET_CHECK(max_batch >= 1, "predictor: max_batch must be at least 1, got ", max_batch);
  const Shape& out = template_->output_shape();
  const bool labels = input_.target.empty() || input_.target == "labels";
  CONVNET_CHECK(out.rank() == 2 || !labels, "predictor: a classifier's output must be N x classes, got ",
                out.str());
  classes_ = out.numel() / std::max<int64_t>(out[0], 1);
  CONVNET_CHECK(input_.target_mean.empty() ||
                    static_cast<int64_t>(input_.target_mean.size()) == classes_,
                "predictor: ", input_.target_mean.size(), " target means for ", classes_,
                " outputs");
  const int64_t channels = template_->input_shape()[1];
  CONVNET_CHECK(
      !labels || input_.class_names.empty() ||
          static_cast<int64_t>(input_.class_names.size()) == classes_,
      "predictor: ", input_.class_names.size(), " class names for ", classes_, " classes");
  CONVNET_CHECK(input_.mean.size() == input_.stddev.size() &&
                    (input_.mean.empty() || static_cast<int64_t>(input_.mean.size()) == channels),
                "predictor: normalisation needs one mean and stddev per input channel (", channels,
                "), got ", input_.mean.size(), " and ", input_.stddev.size());
  // The template only lends its weights: rebuilt for one sample (which keeps them), it keeps
  // one sample's activations and gradients instead of a batch's.
  if (template_->input_shape()[0] > 1) template_->build(template_->input_shape().with_batch(1));
}

template <class T>
Predictor<T>::~Predictor() = default;

template <class T>
Shape Predictor<T>::sample_shape() const {
  const Shape& in = template_->input_shape();
  if (in.rank() == 2) return Shape{in[1]};
  if (in.rank() == 3) return Shape{in[1], in[2]};
  return Shape{in[1], in[2], in[3]};
}

template <class T>
size_t Predictor<T>::contexts() const {
  std::lock_guard lock(mutex_);
  return made_;
}

// A free context, or a new replica of the template: same spec, built for `batch` samples (the
// call's first batch) on the template's parameters and buffers (Model::build_shared: views, no
// copy, no gradients). A context's activations grow when a later call runs a larger batch
// (Model::forward takes any batch), so each holds the largest it has run, at most max_batch.
template <class T>
std::unique_ptr<typename Predictor<T>::Context> Predictor<T>::acquire(int64_t batch) const {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      std::unique_ptr<Context> c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    ++made_;
  }
  auto c = std::make_unique<Context>();
  c->model = parse_model_spec<T>(template_->spec(), "predictor");
  // The template's settings and thread pool, and a scratch of this caller's own: the pool
  // serves one call at a time, and the others run their kernels on their own threads.
  c->model->set_context(std::make_shared<convnet::Context>(template_->context()));
  const Shape input = template_->input_shape().with_batch(batch);
  c->model->build_shared(input, *template_);
  c->input.resize(input);
  return c;
}

template <class T>
void Predictor<T>::release(std::unique_ptr<Context> context) const {
  std::lock_guard lock(mutex_);
  idle_.push_back(std::move(context));
}

template <class T>
Tensor<T> Predictor<T>::logits(const Tensor<T>& x) const {
  const Shape sample = sample_shape();
  const Shape& in = x.shape();
  bool match = in.rank() == sample.rank() + 1;
  for (int i = 0; match && i < sample.rank(); ++i) match = in[i + 1] == sample[i];
  CONVNET_CHECK(match && in[0] >= 1, "predict: input ", in.str(), " does not match the model's ",
                template_->input_shape().with_batch(in.rank() > 0 ? in[0] : 1).str());
  const int64_t n = in[0], per_sample = sample.numel();
  Tensor<T> out(template_->output_shape().with_batch(n));

  // Returned to the free list however the call ends.
  struct Lease {
    const Predictor* owner;
    std::unique_ptr<Context> context;
    ~Lease() {
      if (context) owner->release(std::move(context));
    }
  } lease{this, acquire(std::min(n, max_batch_))};
  Context& c = *lease.context;
  for (int64_t first = 0; first < n; first += max_batch_) {
    const int64_t count = std::min(max_batch_, n - first);
    c.input.resize(template_->input_shape().with_batch(count));
    normalise_input(x.data() + first * per_sample, c.input.data(), count, sample, input_);
    const Tensor<T>& y = c.model->forward(c.input, Mode::Eval);
    std::copy(y.data(), y.data() + count * classes_, out.data() + first * classes_);
  }
  return out;
}

template <class T>
Tensor<T> softmax_rows(const Tensor<T>& logits) {
  CONVNET_CHECK(logits.shape().rank() == 2, "softmax: expected N x K logits, got ",
                logits.shape().str());
  const int64_t n = logits.dim(0), k = logits.dim(1);
  Tensor<T> p(logits.shape());
  for (int64_t r = 0; r < n; ++r) {
    const T* z = logits.data() + r * k;
    T* q = p.data() + r * k;
    const T m = *std::max_element(z, z + k);
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += std::exp(static_cast<double>(z[j] - m));
    for (int64_t j = 0; j < k; ++j)
      q[j] = static_cast<T>(std::exp(static_cast<double>(z[j] - m)) / sum);
  }
  return p;
}

template <class T>
Tensor<T> Predictor<T>::probabilities(const Tensor<T>& x) const {
  return softmax_rows(logits(x));
}

template <class T>
Tensor<T> Predictor<T>::values(const Tensor<T>& x) const {
  Tensor<T> out = logits(x);
  const int64_t n = out.dim(0);
  if (input_.target == "values" && !input_.target_mean.empty()) {
    for (int64_t r = 0; r < n; ++r)
      for (int64_t k = 0; k < classes_; ++k) {
        T& v = out.data()[r * classes_ + k];
        v = v * static_cast<T>(input_.target_stddev[static_cast<size_t>(k)]) +
            static_cast<T>(input_.target_mean[static_cast<size_t>(k)]);
      }
  } else if (input_.target == "input" && !input_.mean.empty()) {
    // The reconstruction of a normalised input: undo (v - mean[c]) / stddev[c] per channel.
    const int64_t channels = static_cast<int64_t>(input_.mean.size());
    const int64_t plane = classes_ / channels;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < channels; ++c) {
        T* v = out.data() + r * classes_ + c * plane;
        for (int64_t i = 0; i < plane; ++i)
          v[i] = v[i] * static_cast<T>(input_.stddev[static_cast<size_t>(c)]) +
                 static_cast<T>(input_.mean[static_cast<size_t>(c)]);
      }
  }
  return out;
}

template <class T>
std::vector<Prediction> Predictor<T>::top(const Tensor<T>& probabilities, int64_t k) const {
  CONVNET_CHECK(probabilities.shape().rank() == 2 && probabilities.dim(1) == classes_,
                "predict: expected N x ", classes_, " probabilities, got ",
                probabilities.shape().str());
  CONVNET_CHECK(k >= 1, "predict: top-k needs k >= 1, got ", k);
  k = std::min(k, classes_);
  std::vector<Prediction> out(static_cast<size_t>(probabilities.dim(0)));
  std::vector<int64_t> order(static_cast<size_t>(classes_));
  for (size_t r = 0; r < out.size(); ++r) {
    const T* p = probabilities.data() + static_cast<int64_t>(r) * classes_;
    std::iota(order.begin(), order.end(), 0);
    // Most probable first; ties keep the lower label first, as arg-max does.
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    for (int64_t i = 0; i < k; ++i) {
      const int64_t label = order[static_cast<size_t>(i)];
      out[r].top.push_back({label,
                            input_.class_names.empty()
                                ? std::to_string(label)
                                : input_.class_names[static_cast<size_t>(label)],
                            static_cast<double>(p[label])});
    }
  }
  return out;
}

template <class T>
Tensor<T> images_to_tensor(const std::vector<Image>& images, const Shape& sample) {
  CONVNET_CHECK(sample.rank() == 3,
                "predict: images need a model with C x H x W input, this one "
                "takes ",
                sample.str());
  const int64_t channels = sample[0], height = sample[1], width = sample[2];
  Tensor<T> x(Shape{static_cast<int64_t>(images.size()), channels, height, width});
  for (size_t i = 0; i < images.size(); ++i) {
    CONVNET_CHECK(images[i].channels == channels, "predict: image ", i, " has ", images[i].channels,
                  " channels, the model takes ", channels);
    const Image sized = images[i].height == height && images[i].width == width
                            ? images[i]
                            : resize_image(images[i], height, width);
    T* dst = x.data() + static_cast<int64_t>(i) * sample.numel();
    for (int64_t j = 0; j < sample.numel(); ++j)
      dst[j] =
          static_cast<T>(sized.pixels[static_cast<size_t>(j)]) * (T(1) / T(255));  // as Dataset
  }
  return x;
}

template <class T>
void normalise_input(const T* src, T* dst, int64_t samples, const Shape& sample,
                     const InputInfo& info) {
  const int64_t per_sample = sample.numel(), channels = sample[0], plane = per_sample / channels;
  if (info.mean.empty()) {
    std::copy(src, src + samples * per_sample, dst);
    return;
  }
  for (int64_t s = 0; s < samples; ++s)
    for (int64_t ch = 0; ch < channels; ++ch) {
      const auto at = static_cast<size_t>(ch);
      const T mean = static_cast<T>(info.mean[at]);
      const T inv = static_cast<T>(1.0f / info.stddev[at]);
      const int64_t base = s * per_sample + ch * plane;
      for (int64_t i = 0; i < plane; ++i) dst[base + i] = (src[base + i] - mean) * inv;
    }
}

template <class T>
Tensor<T> Predictor<T>::to_input(const std::vector<Image>& images) const {
  return images_to_tensor<T>(images, sample_shape());
}

template class Predictor<float>;
template class Predictor<double>;
template Tensor<float> softmax_rows(const Tensor<float>&);
template Tensor<float> images_to_tensor<float>(const std::vector<Image>&, const Shape&);
template Tensor<double> images_to_tensor<double>(const std::vector<Image>&, const Shape&);
template void normalise_input<float>(const float*, float*, int64_t, const Shape&, const InputInfo&);
template void normalise_input<double>(const double*, double*, int64_t, const Shape&,
                                      const InputInfo&);
template Tensor<double> softmax_rows(const Tensor<double>&);

}  // namespace convnet
