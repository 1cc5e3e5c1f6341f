// Tensor<T>: a contiguous, row-major (NCHW for images) array of float or double with a Shape.
// Storage is 64-byte aligned and owned; resize() within the allocated capacity never allocates,
// which is how a model handles a short last batch without allocating in the training step.
//
// A view (Tensor::view) is a tensor over storage that something else owns: a model's parameters
// are views of its parameter arena (convnet/arena.hpp). It reads and writes that storage, its
// capacity is its size, and copying one makes an owned tensor. A view does not keep its storage
// alive: the owner must outlive it. See operator= for what assigning to a view does.
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
  // A tensor of `shape` over data[0, shape.numel()), which the caller owns.
  static Tensor view(T* data, const Shape& shape);
  // Makes this tensor, as it is shaped, a view of data[0, numel()), releasing any storage it
  // owned (its contents are not copied).
  void become_view(T* data);

  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&& other) noexcept = default;
  // Assigning a tensor of the same shape to a view writes into the view's storage (so setting
  // a model's weight, *param.value = t, sets the arena); any other assignment replaces the
  // storage, as for an owned tensor (a layer rebuilt for another shape: build() rebinds).
  Tensor& operator=(Tensor&& other) noexcept;

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
  // Whether this tensor owns its storage (false for a view).
  bool owns_storage() const { return data_.get_deleter().owned; }

 private:
  struct AlignedDelete {
    bool owned = true;  // false: a view, which frees nothing
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
