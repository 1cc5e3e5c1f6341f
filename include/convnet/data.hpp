// Data: the IDX format of MNIST and Fashion-MNIST (plain or gzip), and an in-memory labelled
// image set. Readers check magic numbers, sizes and label counts before using a byte.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "convnet/tensor.hpp"

namespace convnet {

// A decoded IDX file of unsigned bytes (type code 0x08): dims and row-major values.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;
};

// Reads an IDX file; gzip-compressed files (.gz or not) are detected and inflated.
// Throws convnet::Error naming the file for: a missing or unreadable file, a bad magic number,
// an unsupported type, a truncated body, or bytes past the end of the data.
IdxArray read_idx(const std::string& path);

// Labelled images: images (N, C, H, W) with pixels scaled to [0, 1], labels in [0, classes).
struct Dataset {
  Tensor<float> images;
  std::vector<int32_t> labels;
  int64_t classes = 0;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  // C x H x W of one sample, as a rank-3 shape.
  Shape sample_shape() const { return Shape{images.dim(1), images.dim(2), images.dim(3)}; }
};

// Pairs an IDX image file (N, H, W) with an IDX label file (N); pixels / 255.
// Throws if the counts differ or a label is >= classes.
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int64_t classes = 10);

// Loads "<dir>/<split>-images-idx3-ubyte[.gz]" and the matching labels, where split is "train"
// or "t10k" (the MNIST file names, shared by Fashion-MNIST). Throws naming the missing file.
Dataset load_mnist_split(const std::string& dir, const std::string& split);

}  // namespace convnet
