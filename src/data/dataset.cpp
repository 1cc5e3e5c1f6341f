// Datasets: bytes or floats in memory, gathered into float batches (bytes scaled to [0, 1], then
// normalised per channel if asked); subsets and validation splits; augmentation of a gathered
// batch; IDX files as N x 1 x H x W bytes with int32 labels.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <numeric>

#include "convnet/context.hpp"
#include "convnet/data.hpp"
#include "data/loading.hpp"

namespace convnet {

namespace detail {
// A streamed set's files and transform, and the threads that decode its batches (a context of
// their own, apart from the model's). One gather at a time uses them.
struct ImageStream {
  std::vector<std::string> files;
  ImageTransform transform;
  int workers = 1;
  Context decode;
  std::mutex busy;
  std::vector<uint8_t> bytes;  // one sample per image of the batch being gathered
  ImageStream(std::vector<std::string> f, const ImageTransform& t, int w)
      : files(std::move(f)), transform(t), workers(w), decode(ContextOptions{.threads = w}) {}
};
}  // namespace detail

namespace {

// Appends the mean and (population) standard deviation of `count` values from their sum and sum
// of squares; a constant set, which would divide by zero, is left unscaled (stddev 1).
void append_mean_stddev(double sum, double sum_sq, double count, MeanStddev& stats) {
  const double mean = sum / count;
  const double variance = std::max(0.0, sum_sq / count - mean * mean);
  stats.mean.push_back(static_cast<float>(mean));
  stats.stddev.push_back(variance > 0 ? static_cast<float>(std::sqrt(variance)) : 1.0f);
}

}  // namespace

Dataset Dataset::from_bytes(const Shape& shape, std::vector<uint8_t> pixels,
                            std::vector<int32_t> labels, int64_t classes) {
  CONVNET_CHECK(shape.rank() == 4 && shape.numel() == static_cast<int64_t>(pixels.size()) &&
                    shape[0] == static_cast<int64_t>(labels.size()),
                "dataset: ", pixels.size(), " bytes and ", labels.size(),
                " labels do not make a set of shape ", shape.str());
  Dataset d;
  d.shape_ = shape;
  d.pixels_ = std::move(pixels);
  d.labels_ = std::move(labels);
  d.classes_ = classes;
  return d;
}

Dataset Dataset::from_floats(Tensor<float> images, std::vector<int32_t> labels, int64_t classes) {
  CONVNET_CHECK(images.shape().rank() == 4 &&
                    images.dim(0) == static_cast<int64_t>(labels.size()),
                "dataset: images ", images.shape().str(), " and ", labels.size(),
                " labels do not match");
  Dataset d;
  d.shape_ = images.shape();
  d.images_ = std::move(images);
  d.labels_ = std::move(labels);
  d.classes_ = classes;
  return d;
}

Dataset Dataset::from_image_index(ImageIndex index, const Shape& sample_shape,
                                  const ImageTransform& transform, int workers) {
  CONVNET_CHECK(sample_shape.rank() == 3 && (sample_shape[0] == 1 || sample_shape[0] == 3) &&
                    sample_shape[1] > 0 && sample_shape[2] > 0,
                "image set: images are read as 1 or 3 channels of positive size, not ",
                sample_shape.str());
  CONVNET_CHECK(!index.files.empty() && index.files.size() == index.labels.size(),
                "image set: ", index.files.size(), " files and ", index.labels.size(),
                " labels do not make a set");
  CONVNET_CHECK(workers >= 1 && workers <= kMaxThreads, "image set: workers must be 1 to ",
                kMaxThreads, ", got ", workers);
  const auto classes = static_cast<int64_t>(index.class_names.size());
  for (size_t i = 0; i < index.labels.size(); ++i)
    CONVNET_CHECK(index.labels[i] >= 0 && index.labels[i] < classes, index.files[i], ": label ",
                  index.labels[i], " is outside the ", classes, " classes");
  Dataset d;
  d.shape_ = Shape{static_cast<int64_t>(index.files.size()), sample_shape[0], sample_shape[1],
                   sample_shape[2]};
  d.labels_ = std::move(index.labels);
  d.classes_ = classes;
  d.class_names_ = std::move(index.class_names);
  d.stream_ = std::make_shared<detail::ImageStream>(std::move(index.files), transform, workers);
  return d;
}

const ImageTransform& Dataset::image_transform() const {
  CONVNET_CHECK(stream_ != nullptr, "dataset: only a streamed image set has an image transform");
  return stream_->transform;
}

Dataset Dataset::with_image_transform(const ImageTransform& transform) const {
  CONVNET_CHECK(stream_ != nullptr, "dataset: only a streamed image set has an image transform");
  Dataset d = *this;
  d.stream_ = std::make_shared<detail::ImageStream>(stream_->files, transform, stream_->workers);
  return d;
}

const std::vector<std::string>& Dataset::files() const {
  CONVNET_CHECK(stream_ != nullptr, "dataset: only a streamed image set has files");
  return stream_->files;
}

void Dataset::gather(std::span<const int64_t> order, float* out, int32_t* labels, float* targets,
                     uint64_t draw) const {
  const int64_t sample = shape_.numel() / std::max<int64_t>(shape_[0], 1);
  const int64_t plane = shape_[2] * shape_[3];
  std::unique_lock<std::mutex> streaming;
  if (stream_) {
    // Decoded side by side; each sample's random choices come from its own stream, so the
    // result is the same for any number of workers. The first failure (in sample order) is
    // the one reported.
    streaming = std::unique_lock(stream_->busy);
    detail::ImageStream& st = *stream_;
    if (st.bytes.size() < order.size() * static_cast<size_t>(sample))
      st.bytes.resize(order.size() * static_cast<size_t>(sample));
    std::vector<std::string> errors(order.size());
    const Shape one{shape_[1], shape_[2], shape_[3]};
    parallel_for(st.decode, 0, static_cast<int64_t>(order.size()),
                 [&](int64_t lo, int64_t hi, int) {
                   for (int64_t i = lo; i < hi; ++i) {
                     const int64_t n = order[static_cast<size_t>(i)];
                     Rng rng = Rng(draw).split(static_cast<uint64_t>(n));
                     try {
                       load_image_sample(st.files[static_cast<size_t>(n)], st.transform, one, rng,
                                         st.bytes.data() + i * sample);
                     } catch (const std::exception& e) {
                       errors[static_cast<size_t>(i)] = e.what();
                     }
                   }
                 });
    for (const std::string& e : errors) CONVNET_CHECK(e.empty(), e);
  }
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t n = order[i];
    float* dst = out + static_cast<int64_t>(i) * sample;
    if (stream_) {
      const uint8_t* src = stream_->bytes.data() + static_cast<int64_t>(i) * sample;
      for (int64_t k = 0; k < sample; ++k) dst[k] = static_cast<float>(src[k]) * (1.0f / 255.0f);
    } else if (!pixels_.empty()) {
      const uint8_t* src = pixels_.data() + n * sample;
      for (int64_t k = 0; k < sample; ++k) dst[k] = static_cast<float>(src[k]) * (1.0f / 255.0f);
    } else {
      std::copy_n(images_.data() + n * sample, sample, dst);
    }
    if (!mean_.empty())
      for (int64_t c = 0; c < shape_[1]; ++c) {
        const float m = mean_[static_cast<size_t>(c)];
        const float inv = 1.0f / stddev_[static_cast<size_t>(c)];
        float* channel = dst + c * plane;
        for (int64_t k = 0; k < plane; ++k) channel[k] = (channel[k] - m) * inv;
      }
    labels[i] = labels_[static_cast<size_t>(n)];
    if (targets && has_targets()) {
      const int64_t K = target_size();
      float* t = targets + static_cast<int64_t>(i) * K;
      std::copy_n(targets_.data() + n * K, K, t);
      if (!target_mean_.empty())
        for (int64_t k = 0; k < K; ++k)
          t[k] = (t[k] - target_mean_[static_cast<size_t>(k)]) /
                 target_stddev_[static_cast<size_t>(k)];
    }
  }
}

void Dataset::set_targets(std::vector<float> values, std::vector<std::string> names) {
  const auto K = static_cast<int64_t>(names.size());
  CONVNET_CHECK(K > 0 && static_cast<int64_t>(values.size()) == size() * K, "dataset: ",
                values.size(), " target values do not make ", K, " per sample for ", size(),
                " samples");
  for (size_t i = 0; i < values.size(); ++i)
    CONVNET_CHECK(std::isfinite(values[i]), "dataset: target ", i % static_cast<size_t>(K),
                  " of sample ", i / static_cast<size_t>(K), " is not a finite number");
  targets_ = std::move(values);
  target_names_ = std::move(names);
  target_mean_.clear();
  target_stddev_.clear();
}

std::span<const float> Dataset::targets_of(int64_t n) const {
  CONVNET_CHECK(has_targets() && n >= 0 && n < size(), "dataset: no targets for sample ", n);
  return std::span<const float>(targets_).subspan(static_cast<size_t>(n * target_size()),
                                                  static_cast<size_t>(target_size()));
}

void Dataset::set_target_normalization(std::vector<float> mean, std::vector<float> stddev) {
  CONVNET_CHECK(static_cast<int64_t>(mean.size()) == target_size() &&
                    static_cast<int64_t>(stddev.size()) == target_size(),
                "dataset: target normalisation needs one mean and one stddev per output (",
                target_size(), "), got ", mean.size(), " and ", stddev.size());
  for (size_t k = 0; k < stddev.size(); ++k)
    CONVNET_CHECK(std::isfinite(mean[k]) && std::isfinite(stddev[k]) && stddev[k] > 0,
                  "dataset: target ", k, " normalisation needs a finite mean and a stddev > 0, ",
                  "got mean ", mean[k], " stddev ", stddev[k]);
  target_mean_ = std::move(mean);
  target_stddev_ = std::move(stddev);
}

MeanStddev Dataset::target_stats() const {
  const int64_t K = target_size();
  MeanStddev stats;
  for (int64_t k = 0; k < K; ++k) {
    double sum = 0, sum_sq = 0;
    for (int64_t n = 0; n < size(); ++n) {
      const double v = targets_[static_cast<size_t>(n * K + k)];
      sum += v;
      sum_sq += v * v;
    }
    append_mean_stddev(sum, sum_sq, static_cast<double>(std::max<int64_t>(size(), 1)), stats);
  }
  return stats;
}

Dataset Dataset::subset(std::span<const int64_t> indices) const {
  const int64_t sample = shape_.numel() / std::max<int64_t>(shape_[0], 1);
  const int64_t count = static_cast<int64_t>(indices.size());
  std::vector<int32_t> labels(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    CONVNET_CHECK(indices[i] >= 0 && indices[i] < size(), "dataset: subset index ", indices[i],
                  " is outside [0, ", size(), ")");
    labels[i] = labels_[static_cast<size_t>(indices[i])];
  }
  Dataset d;
  if (stream_) {
    std::vector<std::string> files(indices.size());
    for (size_t i = 0; i < indices.size(); ++i)
      files[i] = stream_->files[static_cast<size_t>(indices[i])];
    d.shape_ = shape_.with_batch(count);
    d.labels_ = std::move(labels);
    d.classes_ = classes_;
    d.stream_ = std::make_shared<detail::ImageStream>(std::move(files), stream_->transform,
                                                      stream_->workers);
  } else if (!pixels_.empty()) {
    std::vector<uint8_t> pixels(static_cast<size_t>(count * sample));
    for (int64_t i = 0; i < count; ++i)
      std::copy_n(pixels_.data() + indices[static_cast<size_t>(i)] * sample, sample,
                  pixels.data() + i * sample);
    d = from_bytes(shape_.with_batch(count), std::move(pixels), std::move(labels), classes_);
  } else {
    Tensor<float> images(shape_.with_batch(count));
    for (int64_t i = 0; i < count; ++i)
      std::copy_n(images_.data() + indices[static_cast<size_t>(i)] * sample, sample,
                  images.data() + i * sample);
    d = from_floats(std::move(images), std::move(labels), classes_);
  }
  d.class_names_ = class_names_;
  d.mean_ = mean_;
  d.stddev_ = stddev_;
  if (has_targets()) {
    const int64_t K = target_size();
    d.targets_.resize(static_cast<size_t>(count * K));
    for (int64_t i = 0; i < count; ++i)
      std::copy_n(targets_.data() + indices[static_cast<size_t>(i)] * K, K,
                  d.targets_.data() + i * K);
    d.target_names_ = target_names_;
    d.target_mean_ = target_mean_;
    d.target_stddev_ = target_stddev_;
  }
  return d;
}

void Dataset::set_class_names(std::vector<std::string> names) {
  CONVNET_CHECK(names.empty() || static_cast<int64_t>(names.size()) == classes_, "dataset: ",
                names.size(), " class names for ", classes_, " classes");
  class_names_ = std::move(names);
}

void Dataset::set_normalization(std::vector<float> mean, std::vector<float> stddev) {
  CONVNET_CHECK(static_cast<int64_t>(mean.size()) == shape_[1] &&
                    static_cast<int64_t>(stddev.size()) == shape_[1],
                "dataset: normalisation needs one mean and one stddev per channel (", shape_[1],
                "), got ", mean.size(), " and ", stddev.size());
  for (size_t c = 0; c < stddev.size(); ++c)
    CONVNET_CHECK(std::isfinite(mean[c]) && std::isfinite(stddev[c]) && stddev[c] > 0,
                  "dataset: channel ", c, " normalisation needs a finite mean and a stddev > 0, ",
                  "got mean ", mean[c], " stddev ", stddev[c]);
  mean_ = std::move(mean);
  stddev_ = std::move(stddev);
}

float Dataset::zero_value(int64_t c) const {
  if (mean_.empty()) return 0.0f;
  return -mean_[static_cast<size_t>(c)] / stddev_[static_cast<size_t>(c)];
}

Dataset::ChannelStats Dataset::channel_stats() const {
  if (stream_) {  // at most 1024 samples, evenly spaced, without the random transforms
    ImageTransform plain = stream_->transform;
    plain.horizontal_flip = false;
    if (plain.crop == ImageTransform::Crop::RandomResized)
      plain.crop = ImageTransform::Crop::Resize;
    const int64_t count = std::min<int64_t>(size(), 1024);
    std::vector<int64_t> picks(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) picks[static_cast<size_t>(i)] = i * size() / count;
    Dataset view = with_image_transform(plain).subset(picks);
    view.mean_.clear();
    view.stddev_.clear();
    Tensor<float> values(view.shape());
    std::vector<int32_t> labels(static_cast<size_t>(count));
    std::vector<int64_t> order(static_cast<size_t>(count));
    std::iota(order.begin(), order.end(), 0);
    view.gather(order, values.data(), labels.data());
    return Dataset::from_floats(std::move(values), std::move(labels), classes_).channel_stats();
  }
  const int64_t C = shape_[1], plane = shape_[2] * shape_[3];
  const int64_t sample = C * plane;
  std::vector<double> sum(static_cast<size_t>(C)), sum_sq(static_cast<size_t>(C));
  for (int64_t n = 0; n < size(); ++n)
    for (int64_t c = 0; c < C; ++c) {
      double s = 0, q = 0;
      for (int64_t k = 0; k < plane; ++k) {
        const int64_t at = n * sample + c * plane + k;
        const double v = pixels_.empty() ? images_.data()[at] : pixels_[static_cast<size_t>(at)] / 255.0;
        s += v;
        q += v * v;
      }
      sum[static_cast<size_t>(c)] += s;
      sum_sq[static_cast<size_t>(c)] += q;
    }
  ChannelStats stats;
  const double count = static_cast<double>(std::max<int64_t>(size() * plane, 1));
  for (int64_t c = 0; c < C; ++c)
    append_mean_stddev(sum[static_cast<size_t>(c)], sum_sq[static_cast<size_t>(c)], count, stats);
  return stats;
}

void augment_batch(const Augmentation& augmentation, const Dataset& data, Rng& rng, float* batch,
                   int64_t count, std::vector<float>& scratch) {
  if (!augmentation.active()) return;
  const int64_t C = data.shape()[1], H = data.shape()[2], W = data.shape()[3];
  const int64_t pad = augmentation.crop_padding;
  CONVNET_CHECK(pad >= 0, "augmentation: crop padding must be >= 0, got ", pad);
  scratch.resize(static_cast<size_t>(C * H * W));
  for (int64_t n = 0; n < count; ++n) {
    float* image = batch + n * C * H * W;
    // Draw in a fixed order (offsets, then the flip) so a seed gives the same batch everywhere.
    const int64_t dy = pad > 0 ? static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * pad + 1))) - pad : 0;
    const int64_t dx = pad > 0 ? static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * pad + 1))) - pad : 0;
    const bool flip = augmentation.horizontal_flip && rng.below(2) == 1;
    if (dy == 0 && dx == 0 && !flip) continue;
    std::copy_n(image, C * H * W, scratch.data());
    // out[c, y, x] = padded[c, y + dy, x' + dx] with x' = flip ? W-1-x : x, where padded is the
    // image surrounded by zeros (in normalised units, zero_value).
    for (int64_t c = 0; c < C; ++c) {
      const float fill = data.zero_value(c);
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const int64_t sy = y + dy, sx = (flip ? W - 1 - x : x) + dx;
          image[(c * H + y) * W + x] = sy >= 0 && sy < H && sx >= 0 && sx < W
                                           ? scratch[static_cast<size_t>((c * H + sy) * W + sx)]
                                           : fill;
        }
    }
  }
}

TrainValidation split_validation(const Dataset& data, double fraction, uint64_t seed) {
  CONVNET_CHECK(fraction >= 0 && fraction < 1, "validation split: fraction must be in [0, 1), got ",
                fraction);
  const int64_t n = data.size();
  int64_t held = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  if (fraction > 0) held = std::max<int64_t>(held, 1);
  CONVNET_CHECK(held < n, "validation split: ", fraction, " of ", n,
                " samples leaves nothing to train on");
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  Rng rng(seed);
  rng.shuffle(std::span(order));
  std::vector<int64_t> validation(order.begin(), order.begin() + held);
  std::vector<int64_t> train(order.begin() + held, order.end());
  std::sort(validation.begin(), validation.end());
  std::sort(train.begin(), train.end());
  return {data.subset(train), data.subset(validation)};
}

void Dataset::truncate(int64_t n) {
  CONVNET_CHECK(n >= 0 && n <= size(), "dataset: cannot keep ", n, " of ", size(), " samples");
  const int64_t sample = shape_.numel() / std::max<int64_t>(shape_[0], 1);
  shape_ = shape_.with_batch(n);
  labels_.resize(static_cast<size_t>(n));
  targets_.resize(static_cast<size_t>(n * target_size()));
  if (!pixels_.empty()) pixels_.resize(static_cast<size_t>(n * sample));
  if (!images_.empty()) images_.resize(shape_);
  if (stream_) {
    std::vector<std::string> files(stream_->files.begin(), stream_->files.begin() + n);
    stream_ = std::make_shared<detail::ImageStream>(std::move(files), stream_->transform,
                                                    stream_->workers);
  }
}

Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int64_t classes) {
  IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  CONVNET_CHECK(images.type == 0x08, images_path, ": expected image bytes (IDX type 0x08), got floats");
  CONVNET_CHECK(labels.type == 0x08, labels_path, ": expected label bytes (IDX type 0x08), got floats");
  CONVNET_CHECK(images.dims.size() == 3, images_path,
                ": expected images of rank 3 (N x H x W), got rank ", images.dims.size());
  CONVNET_CHECK(labels.dims.size() == 1, labels_path,
                ": expected labels of rank 1 (N), got rank ", labels.dims.size());
  CONVNET_CHECK(images.dims[0] == labels.dims[0], "label count mismatch: ", images_path, " has ",
                images.dims[0], " images but ", labels_path, " has ", labels.dims[0], " labels");
  std::vector<int32_t> ids(labels.values.size());
  for (size_t i = 0; i < labels.values.size(); ++i) {
    CONVNET_CHECK(labels.values[i] < classes, labels_path, ": label ", int{labels.values[i]},
                  " of sample ", i, " is not below the class count ", classes);
    ids[i] = labels.values[i];
  }
  return Dataset::from_bytes(Shape{images.dims[0], 1, images.dims[1], images.dims[2]},
                             std::move(images.values), std::move(ids), classes);
}

bool is_mnist_folder(const std::string& dir) {
  std::error_code ec;
  for (const char* name : {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                           "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"})
    if (std::filesystem::exists(std::filesystem::path(dir) / name, ec)) return true;
  return false;
}

Dataset load_mnist_split(const std::string& dir, const std::string& split) {
  namespace fs = std::filesystem;
  std::error_code ec;
  CONVNET_CHECK(fs::is_directory(dir, ec), dir, ": data directory not found (expected the ",
                "Fashion-MNIST IDX files there; on Debian: apt-get install dataset-fashion-mnist)");
  // Images first: the error names the first gap.
  const std::string images = find_idx_file(dir, split + "-images-idx3-ubyte");
  std::string targets;
  for (const char* stem : {"-targets-idx2-float", "-targets-idx1-float"})
    if (targets.empty()) targets = find_optional_idx_file(dir, split + stem);
  if (targets.empty()) return load_idx_dataset(images, find_idx_file(dir, split + "-labels-idx1-ubyte"));
  const std::string labels = find_optional_idx_file(dir, split + "-labels-idx1-ubyte");
  Dataset data;
  if (!labels.empty()) {
    data = load_idx_dataset(images, labels);
  } else {
    IdxArray pixels = read_idx(images);
    CONVNET_CHECK(pixels.type == 0x08 && pixels.dims.size() == 3, images,
                  ": expected images of unsigned bytes of rank 3 (N x H x W)");
    const int64_t n = pixels.dims[0];
    data = Dataset::from_bytes(Shape{n, 1, pixels.dims[1], pixels.dims[2]},
                               std::move(pixels.values), std::vector<int32_t>(static_cast<size_t>(n)), 0);
  }
  const IdxArray values = read_idx(targets);
  CONVNET_CHECK(values.dims[0] == data.size(), "target count mismatch: ", images, " has ",
                data.size(), " images but ", targets, " has ", values.dims[0], " rows of targets");
  CONVNET_CHECK(values.dims.size() <= 2, targets, ": expected targets of rank 1 (N) or 2 (N x K), got rank ",
                values.dims.size());
  const int64_t K = values.dims.size() == 2 ? values.dims[1] : 1;
  std::vector<std::string> names;
  for (int64_t k = 0; k < K; ++k) names.push_back(K == 1 ? "y" : "y" + std::to_string(k + 1));
  data.set_targets(idx_floats(values, targets), std::move(names));
  return data;
}

}  // namespace convnet
