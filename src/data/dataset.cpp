// Datasets from IDX files: images scaled to [0, 1] as N x 1 x H x W, labels as int32.
#include <filesystem>

#include "convnet/data.hpp"

namespace convnet {

Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int64_t classes) {
  const IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  CONVNET_CHECK(images.dims.size() == 3, images_path, ": expected images of rank 3 (N x H x W), got rank ",
                images.dims.size());
  CONVNET_CHECK(labels.dims.size() == 1, labels_path, ": expected labels of rank 1 (N), got rank ",
                labels.dims.size());
  CONVNET_CHECK(images.dims[0] == labels.dims[0], "label count mismatch: ", images_path, " has ",
                images.dims[0], " images but ", labels_path, " has ", labels.dims[0], " labels");
  Dataset ds;
  ds.classes = classes;
  ds.images = Tensor<float>(Shape{images.dims[0], 1, images.dims[1], images.dims[2]});
  for (size_t i = 0; i < images.values.size(); ++i)
    ds.images[static_cast<int64_t>(i)] = static_cast<float>(images.values[i]) / 255.0f;
  ds.labels.resize(labels.values.size());
  for (size_t i = 0; i < labels.values.size(); ++i) {
    CONVNET_CHECK(labels.values[i] < classes, labels_path, ": label ", int{labels.values[i]},
                  " of sample ", i, " is not below the class count ", classes);
    ds.labels[i] = labels.values[i];
  }
  return ds;
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
