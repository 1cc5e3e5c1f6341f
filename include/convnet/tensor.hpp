// Tensor<T>: a contiguous, row-major (NCHW for images) array of float or double with a Shape.
// Storage is 64-byte aligned and owned; resize() within the allocated capacity never allocates,
// which is how a model handles a short last batch without allocating in the training step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "convnet/error.hpp"
#include "convnet/shape.hpp"

namespace convnet {

inline constexpr std::size_t kTensorAlignment = 64;

template <class T>
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(const Shape& shape);  // zero-filled
  Tensor(const Shape& shape, T fill_value);

  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&& other) noexcept = default;
  Tensor& operator=(Tensor&& other) noexcept = default;

  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_.numel(); }
  int64_t capacity() const { return capacity_; }
  bool empty() const { return numel() == 0; }
  int64_t dim(int i) const { return shape_[i]; }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  std::span<T> span() { return {data(), static_cast<size_t>(numel())}; }
  std::span<const T> span() const { return {data(), static_cast<size_t>(numel())}; }

  T& operator[](int64_t i) { return data_.get()[i]; }
  const T& operator[](int64_t i) const { return data_.get()[i]; }
  // Element (n, c, h, w) of a rank-4 tensor.
  T& at(int64_t n, int64_t c, int64_t h, int64_t w);
  const T& at(int64_t n, int64_t c, int64_t h, int64_t w) const;

  // Changes the shape; reallocates only when the new size exceeds the capacity.
  // Contents are kept up to the smaller of the two sizes.
  void resize(const Shape& shape);
  // Same number of elements, new shape (a flatten); throws if the counts differ.
  void reshape(const Shape& shape);
  void fill(T value);
  void zero() { fill(T(0)); }

 private:
  struct AlignedDelete {
    void operator()(T* p) const;
  };
  static std::unique_ptr<T[], AlignedDelete> allocate(int64_t count);

  std::unique_ptr<T[], AlignedDelete> data_;
  Shape shape_{0};  // empty until given a shape
  int64_t capacity_ = 0;
};

extern template class Tensor<float>;
extern template class Tensor<double>;

// Throws convnet::Error "<what>: expected shape A, got B" when the shapes differ.
void check_shape(const Shape& got, const Shape& expected, const char* what);

}  // namespace convnet
