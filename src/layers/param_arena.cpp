// ParamArena: the layout (reverse params() order, 64-byte aligned) and the binding of a model's
// parameter and gradient tensors as views of it.
#include <algorithm>

#include "convnet/arena.hpp"

namespace convnet {

template <class T>
std::vector<typename ParamArena<T>::Slot> ParamArena<T>::layout(std::span<const int64_t> sizes,
                                                                int64_t& total) {
  constexpr auto kAlign = static_cast<int64_t>(kTensorAlignment / sizeof(T));
  std::vector<Slot> slots(sizes.size());
  total = 0;
  for (size_t i = sizes.size(); i-- > 0;) {
    slots[i] = {total, sizes[i]};
    total += (sizes[i] + kAlign - 1) / kAlign * kAlign;
  }
  return slots;
}

template <class T>
void ParamArena<T>::bind(std::span<const Param<T>> params) {
  std::vector<int64_t> sizes;
  sizes.reserve(params.size());
  for (const Param<T>& p : params) {
    CONVNET_CHECK(p.grad->shape() == p.value->shape(), "parameter ", p.name, ": gradient shape ",
                  p.grad->shape().str(), " differs from its value's ", p.value->shape().str());
    sizes.push_back(p.value->numel());
  }
  int64_t total = 0;
  std::vector<Slot> slots = layout(sizes, total);
  Tensor<T> values(Shape{total}), grads(Shape{total});  // zero-filled, gaps included
  for (size_t i = 0; i < params.size(); ++i) {
    const Param<T>& p = params[i];
    T* value = values.data() + slots[i].offset;
    T* grad = grads.data() + slots[i].offset;
    std::copy_n(p.value->data(), slots[i].size, value);
    std::copy_n(p.grad->data(), slots[i].size, grad);
    p.value->become_view(value);
    p.grad->become_view(grad);
  }
  values_ = std::move(values);
  grads_ = std::move(grads);
  slots_ = std::move(slots);
}

template <class T>
void ParamArena<T>::share(std::span<const Param<T>> params, const ParamArena& source) {
  std::vector<int64_t> sizes;
  sizes.reserve(params.size());
  for (const Param<T>& p : params) sizes.push_back(p.value->numel());
  int64_t total = 0;
  std::vector<Slot> slots = layout(sizes, total);
  CONVNET_CHECK(slots == source.slots_ && total == source.size(),
                "parameter arena: ", params.size(), " tensors of ", total,
                " elements cannot share an arena of ", source.slots_.size(), " tensors and ",
                source.size(), " elements");
  // Views are writable tensors; this arena and its views only read what they point at.
  T* values = const_cast<T*>(source.values_.data());
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].value->become_view(values + slots[i].offset);
    *params[i].grad = Tensor<T>();
  }
  // Emptied first: assigning to a view of the same shape would copy into it (Tensor::operator=).
  values_ = Tensor<T>();
  values_ = Tensor<T>::view(values, Shape{total});
  grads_ = Tensor<T>();
  slots_ = std::move(slots);
}

template class ParamArena<float>;
template class ParamArena<double>;

}  // namespace convnet
