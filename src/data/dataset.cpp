// Datasets: bytes or floats in memory, gathered into float batches; IDX files as N x 1 x H x W
// bytes (scaled to [0, 1] when gathered) with int32 labels.
#include <algorithm>
#include <filesystem>

#include "convnet/data.hpp"

namespace convnet {

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

void Dataset::gather(std::span<const int64_t> order, float* out, int32_t* labels) const {
  const int64_t sample = shape_.numel() / std::max<int64_t>(shape_[0], 1);
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t n = order[i];
    float* dst = out + static_cast<int64_t>(i) * sample;
    if (!pixels_.empty()) {
      const uint8_t* src = pixels_.data() + n * sample;
      for (int64_t k = 0; k < sample; ++k) dst[k] = static_cast<float>(src[k]) * (1.0f / 255.0f);
    } else {
      std::copy_n(images_.data() + n * sample, sample, dst);
    }
    labels[i] = labels_[static_cast<size_t>(n)];
  }
}

void Dataset::truncate(int64_t n) {
  CONVNET_CHECK(n >= 0 && n <= size(), "dataset: cannot keep ", n, " of ", size(), " samples");
  const int64_t sample = shape_.numel() / std::max<int64_t>(shape_[0], 1);
  shape_ = shape_.with_batch(n);
  labels_.resize(static_cast<size_t>(n));
  if (!pixels_.empty()) pixels_.resize(static_cast<size_t>(n * sample));
  if (!images_.empty()) images_.resize(shape_);
}

Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int64_t classes) {
  IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
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

Dataset load_mnist_split(const std::string& dir, const std::string& split) {
  namespace fs = std::filesystem;
  std::error_code ec;
  CONVNET_CHECK(fs::is_directory(dir, ec), dir, ": data directory not found (expected the ",
                "Fashion-MNIST IDX files there; on Debian: apt-get install dataset-fashion-mnist)");
  auto find = [&](const std::string& stem) {
    for (const char* suffix : {"", ".gz"}) {
      const fs::path p = fs::path(dir) / (stem + suffix);
      if (fs::exists(p, ec)) return p.string();
    }
    throw Error(detail::concat(dir, ": missing ", stem, " (or ", stem, ".gz)"));
  };
  const std::string images = find(split + "-images-idx3-ubyte");  // images first: the error
  const std::string labels = find(split + "-labels-idx1-ubyte");  // names the first gap
  return load_idx_dataset(images, labels);
}

}  // namespace convnet
