// Data: the IDX format of MNIST and Fashion-MNIST (plain or gzip), and an in-memory labelled
// image set. Readers check magic numbers, sizes and label counts before using a byte.
#pragma once

#include <cstdint>
#include <span>
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

// Labelled images, N x C x H x W. Samples are stored either as bytes (`pixels`, what IDX files
// hold: a quarter of the memory of floats, scaled by 1/255 as they are copied into a batch) or as
// floats (`images`, for data made in memory); exactly one of the two is non-empty.
// Labels are in [0, classes).
class Dataset {
 public:
  Dataset() = default;
  static Dataset from_bytes(const Shape& shape, std::vector<uint8_t> pixels,
                            std::vector<int32_t> labels, int64_t classes);
  static Dataset from_floats(Tensor<float> images, std::vector<int32_t> labels, int64_t classes);

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  int64_t classes() const { return classes_; }
  // N x C x H x W of the whole set, and C x H x W of one sample.
  const Shape& shape() const { return shape_; }
  Shape sample_shape() const { return Shape{shape_[1], shape_[2], shape_[3]}; }
  const std::vector<int32_t>& labels() const { return labels_; }
  // Writes samples order[0..k) as floats into out (k x C x H x W) and their labels.
  void gather(std::span<const int64_t> order, float* out, int32_t* labels) const;
  // Keeps only the first n samples (n <= size()).
  void truncate(int64_t n);

 private:
  Shape shape_{0, 0, 0, 0};
  std::vector<uint8_t> pixels_;
  Tensor<float> images_;
  std::vector<int32_t> labels_;
  int64_t classes_ = 0;
};

// Pairs an IDX image file (N, H, W) with an IDX label file (N); pixels / 255.
// Throws if the counts differ or a label is >= classes.
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int64_t classes = 10);

// Loads "<dir>/<split>-images-idx3-ubyte[.gz]" and the matching labels, where split is "train"
// or "t10k" (the MNIST file names, shared by Fashion-MNIST). Throws naming the missing file.
Dataset load_mnist_split(const std::string& dir, const std::string& split);

}  // namespace convnet
