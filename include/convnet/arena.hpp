// ParamArena: every trainable tensor of a model in one contiguous, 64-byte aligned buffer, and
// every gradient in a second buffer with the same layout. The layers keep their weight and
// gradient tensors, as views (Tensor::view) of the arena, so kernels and checkpoints see tensors
// as before, while whatever runs over all parameters at once runs over one span: zeroing the
// gradients, their norm and clipping, the optimizer's update (and its state, laid out alike),
// and a gradient all-reduce across processes.
//
// LAYOUT. Parameters lie in the REVERSE of the model's params() order: the output side first.
// The backward pass finishes gradients from the output back, so the gradients it finishes first
// sit at the front of the arena, and the finished part is always one prefix: a bucketed
// all-reduce can start on it while the backward pass goes on. Each tensor starts at a multiple
// of 64 bytes; the gaps between them are zero and stay zero (their gradient is zero, so every
// optimizer leaves them at zero).
//
// SHARED. An arena may instead view another model's (share): a serving replica reads the
// template's weights in place and has no gradients.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "convnet/layers.hpp"

namespace convnet {

template <class T>
class ParamArena {
 public:
  // Where one tensor lies in the arena, in elements.
  struct Slot {
    int64_t offset = 0;
    int64_t size = 0;
    bool operator==(const Slot&) const = default;
  };

  // The slots of tensors of these sizes (given in params() order, returned in that order) and
  // the arena's size: the layout described above.
  static std::vector<Slot> layout(std::span<const int64_t> sizes, int64_t& total);

  // Moves every value and gradient of `params` into a fresh arena, in the layout above, and
  // makes those tensors views of it. Values and gradients keep their contents, so a model can
  // rebind after a rebuild; the old storage (an earlier arena included) is released afterwards.
  void bind(std::span<const Param<T>> params);
  // Makes every value of `params` a view of `source`'s values, which must have the same layout
  // (params of the same sizes: a model of the same spec), and releases their own storage and
  // their gradients' (the gradients become empty tensors). values() then views source's arena,
  // which must outlive this one, and grads() is empty. Nothing here writes to source: whoever
  // runs on these views reads them only (Model::build_shared).
  void share(std::span<const Param<T>> params, const ParamArena& source);

  int64_t size() const { return values_.numel(); }
  std::span<T> values() { return values_.span(); }
  std::span<const T> values() const { return values_.span(); }
  std::span<T> grads() { return grads_.span(); }
  std::span<const T> grads() const { return grads_.span(); }
  // Slot of params()[i].
  std::span<const Slot> slots() const { return slots_; }

 private:
  Tensor<T> values_, grads_;
  std::vector<Slot> slots_;
};

extern template class ParamArena<float>;
extern template class ParamArena<double>;

}  // namespace convnet
