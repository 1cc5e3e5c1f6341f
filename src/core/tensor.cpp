// Shape and Tensor<T>: aligned owned storage, capacity-aware resize.
#include "convnet/tensor.hpp"

#include <algorithm>
#include <new>

namespace convnet {

// --- Shape ---------------------------------------------------------------------------------

Shape::Shape(std::initializer_list<int64_t> dims) {
  CONVNET_CHECK(dims.size() <= kMaxRank, "shape: rank ", dims.size(), " exceeds the maximum ",
                kMaxRank);
  for (int64_t d : dims) {
    CONVNET_CHECK(d >= 0, "shape: negative dimension ", d);
    dims_[static_cast<size_t>(rank_++)] = d;
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<size_t>(i)];
  return n;
}

Shape Shape::with_batch(int64_t n) const {
  Shape s = *this;
  if (s.rank_ > 0) s.dims_[0] = n;
  return s;
}

std::string Shape::str() const {
  if (rank_ == 0) return "scalar";
  std::string out;
  for (int i = 0; i < rank_; ++i) {
    if (i) out += 'x';
    out += std::to_string(dims_[static_cast<size_t>(i)]);
  }
  return out;
}

std::string Shape::str_per_batch() const {
  std::string out = "N";
  for (int i = 1; i < rank_; ++i) {
    out += 'x';
    out += std::to_string(dims_[static_cast<size_t>(i)]);
  }
  return out;
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[static_cast<size_t>(i)] != other.dims_[static_cast<size_t>(i)]) return false;
  return true;
}

void check_shape(const Shape& got, const Shape& expected, const char* what) {
  CONVNET_CHECK(got == expected, what, ": expected shape ", expected.str(), ", got ", got.str());
}

// --- Tensor --------------------------------------------------------------------------------

template <class T>
void Tensor<T>::AlignedDelete::operator()(T* p) const {
  if (owned) ::operator delete[](p, std::align_val_t{kTensorAlignment});
}

template <class T>
Tensor<T> Tensor<T>::view(T* data, const Shape& shape) {
  Tensor t;
  t.shape_ = shape;
  t.become_view(data);
  return t;
}

template <class T>
void Tensor<T>::become_view(T* data) {
  data_ = std::unique_ptr<T[], AlignedDelete>(data, AlignedDelete{.owned = false});
  capacity_ = numel();
}

template <class T>
std::unique_ptr<T[], typename Tensor<T>::AlignedDelete> Tensor<T>::allocate(int64_t count) {
  if (count == 0) return nullptr;
  // Round the byte size up to the alignment so vector loads past a tail stay inside the block.
  size_t bytes = static_cast<size_t>(count) * sizeof(T);
  bytes = (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
  auto* p = static_cast<T*>(::operator new[](bytes, std::align_val_t{kTensorAlignment}));
  return std::unique_ptr<T[], AlignedDelete>(p);
}

template <class T>
Tensor<T>::Tensor(const Shape& shape) : Tensor(shape, T(0)) {}

template <class T>
Tensor<T>::Tensor(const Shape& shape, T fill_value)
    : data_(allocate(shape.numel())), shape_(shape), capacity_(shape.numel()) {
  fill(fill_value);
}

template <class T>
Tensor<T>::Tensor(const Tensor& other)
    : data_(allocate(other.numel())), shape_(other.shape_), capacity_(other.numel()) {
  std::copy_n(other.data(), other.numel(), data());
}

template <class T>
Tensor<T>& Tensor<T>::operator=(const Tensor& other) {
  if (this == &other) return *this;
  resize(other.shape_);
  std::copy_n(other.data(), other.numel(), data());
  return *this;
}

template <class T>
Tensor<T>& Tensor<T>::operator=(Tensor&& other) noexcept {
  if (this == &other) return *this;
  if (!owns_storage() && data_ && other.shape_ == shape_) {
    std::copy_n(other.data(), other.numel(), data());
    return *this;
  }
  data_ = std::move(other.data_);
  shape_ = other.shape_;
  capacity_ = other.capacity_;
  return *this;
}

template <class T>
T& Tensor<T>::at(int64_t n, int64_t c, int64_t h, int64_t w) {
  return data_.get()[((n * shape_[1] + c) * shape_[2] + h) * shape_[3] + w];
}

template <class T>
const T& Tensor<T>::at(int64_t n, int64_t c, int64_t h, int64_t w) const {
  return data_.get()[((n * shape_[1] + c) * shape_[2] + h) * shape_[3] + w];
}

template <class T>
void Tensor<T>::resize(const Shape& shape) {
  const int64_t count = shape.numel();
  if (count > capacity_) {
    auto fresh = allocate(count);
    std::copy_n(data(), numel(), fresh.get());
    std::fill(fresh.get() + numel(), fresh.get() + count, T(0));
    data_ = std::move(fresh);
    capacity_ = count;
  }
  shape_ = shape;
}

template <class T>
void Tensor<T>::reshape(const Shape& shape) {
  CONVNET_CHECK(shape.numel() == numel(), "reshape: cannot view ", shape_.str(), " (", numel(),
                " elements) as ", shape.str(), " (", shape.numel(), " elements)");
  shape_ = shape;
}

template <class T>
void Tensor<T>::fill(T value) {
  std::fill_n(data(), numel(), value);
}

template class Tensor<float>;
template class Tensor<double>;

}  // namespace convnet
