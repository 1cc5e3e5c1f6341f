// Inference on a trained model, from any number of threads at once.
//
// A Model keeps its activations (in its executor and layers), so two forward passes on one Model
// cannot run at the same time. A Predictor keeps the trained model as its template, which never
// runs (it is rebuilt for one sample, keeping its weights), and hands each concurrent call an
// execution context of its own: a replica of the same spec built by Model::build_shared, whose
// parameters and buffers (BatchNorm's running statistics) are views of the template's, read in
// place. Only Mode::Eval forward passes run, and they write no weight or buffer. A context owns
// its activations, no gradients, its layers' small caches, and a copy of the template's
// execution context (convnet/context.hpp: the same settings and thread pool, a kernel scratch of
// its own). Contexts are made when a call finds none free and are reused after, so N
// threads calling at once cost one copy of the weights and N contexts' activations, each for
// the largest batch that context has run, at most max_batch samples (resnet-small on 1x28x28
// images: 2.78 MiB per sample, 178 MiB at the default 64; the README has measured figures). A
// steady state allocates only the returned tensors. The kernels' thread pool serves one call at
// a time; the others run their kernels on their own thread, with the same results.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "convnet/checkpoint.hpp"
#include "convnet/image.hpp"
#include "convnet/model.hpp"

namespace convnet {

// One image's best classes, most probable first.
struct Prediction {
  struct Entry {
    int64_t label = 0;
    std::string name;  // the class name when the checkpoint records names, else the label
    double probability = 0;
  };
  std::vector<Entry> top;
};

template <class T>
class Predictor {
 public:
  // Loads a checkpoint (see load_checkpoint; its errors name the file). Inputs are split into
  // batches of at most max_batch samples, the most a context's activations are sized for.
  explicit Predictor(const std::string& checkpoint_path, int64_t max_batch = 64);
  explicit Predictor(Checkpoint<T> checkpoint, int64_t max_batch = 64);
  // Takes a built model and what its inputs need (class names, normalisation). The model is
  // rebuilt for one sample (keeping its weights): it only lends them to the contexts.
  Predictor(std::unique_ptr<Model<T>> model, InputInfo input, int64_t max_batch = 64);
  ~Predictor();
  Predictor(const Predictor&) = delete;
  Predictor& operator=(const Predictor&) = delete;

  // C x H x W (or F) of one sample, and the number of classes (outputs per sample).
  Shape sample_shape() const;
  int64_t classes() const { return classes_; }
  const InputInfo& input_info() const { return input_; }
  // The spec of the model it runs (docs/model-spec.md).
  std::string spec() const { return template_->spec(); }

  // Eval-mode outputs (N x K logits; N x the output's shape for a reconstruction) for N
  // samples of sample_shape(), with values as the data loaders give them (pixels scaled to
  // [0, 1]); the normalisation the model was trained with is applied here. Safe to call from several threads at once. Throws convnet::Error on a shape
  // that does not match.
  Tensor<T> logits(const Tensor<T>& x) const;
  // softmax(logits(x)) per row.
  Tensor<T> probabilities(const Tensor<T>& x) const;
  // A regression model's outputs in the targets' units (input_info().target "values": the
  // target normalisation undone), or a reconstruction in the input's units (target "input": the
  // input normalisation undone, pixels in [0, 1]); the logits otherwise.
  Tensor<T> values(const Tensor<T>& x) const;
  // The k most probable classes of each row of a probabilities() result.
  std::vector<Prediction> top(const Tensor<T>& probabilities, int64_t k) const;

  // Images as the model takes them: each converted to sample_shape()'s channels (done by
  // read_image), resized to its height and width, scaled to [0, 1]. Throws naming `names[i]`
  // when an image has the wrong number of channels.
  Tensor<T> to_input(const std::vector<Image>& images) const;

  // Contexts made so far (the most threads that have called at once).
  size_t contexts() const;

 private:
  // A checkpoint whose class names were checked against its model's outputs.
  struct CheckedNames {};
  Predictor(CheckedNames, Checkpoint<T> checkpoint, int64_t max_batch);
  struct Context;
  std::unique_ptr<Context> acquire(int64_t batch) const;
  void release(std::unique_ptr<Context> context) const;

  std::unique_ptr<Model<T>> template_;  // never run: the weights every context reads
  InputInfo input_;
  int64_t max_batch_ = 0, classes_ = 0;
  mutable std::mutex mutex_;
  mutable std::vector<std::unique_ptr<Context>> idle_;
  mutable size_t made_ = 0;
};

// Images as a model with samples of `sample` (C x H x W) takes them: each converted to C
// channels (done by read_image), resized to H x W, scaled to [0, 1]. Throws convnet::Error when
// an image has another number of channels.
template <class T>
Tensor<T> images_to_tensor(const std::vector<Image>& images, const Shape& sample);
// The training normalisation, (v − mean[c])·(1/stddev[c]) exactly as Dataset::gather computes
// it, from src to dst (which may be the same) for `samples` samples of shape C x ...; a no-op
// copy when `info` records none.
template <class T>
void normalise_input(const T* src, T* dst, int64_t samples, const Shape& sample,
                     const InputInfo& info);

// Row-wise softmax of N x K logits, max-subtracted so no exponent overflows.
template <class T>
Tensor<T> softmax_rows(const Tensor<T>& logits);

extern template class Predictor<float>;
extern template class Predictor<double>;

}  // namespace convnet
