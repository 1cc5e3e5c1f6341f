// Shape: the dimensions of a tensor (rank 0 to 4), NCHW order for images.
// A small value type with no heap storage, so shapes can be passed around in the training step.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace convnet {

class Shape {
 public:
  static constexpr int kMaxRank = 4;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
  int64_t& operator[](int i) { return dims_[static_cast<size_t>(i)]; }
  // Product of all dimensions (1 for rank 0).
  int64_t numel() const;
  // Shape with the first (batch) dimension replaced.
  Shape with_batch(int64_t n) const;
  // "64x1x28x28"; "scalar" for rank 0.
  std::string str() const;
  // "Nx1x28x28": the batch dimension as N (model summaries).
  std::string str_per_batch() const;

  bool operator==(const Shape& other) const;
  bool operator!=(const Shape& other) const { return !(*this == other); }

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

}  // namespace convnet
