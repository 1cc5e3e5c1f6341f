// Optimizer::step: allocates the flat state on the first step, then checks the parameters keep
// their sizes (state is positional) and runs each optimizer's update: once over a whole arena,
// or once per tensor for parameters outside one.
#include <utility>

#include "convnet/optim.hpp"
#include "convnet/runtime.hpp"

namespace convnet {

template <class T>
void Optimizer<T>::prepare(std::span<const typename ParamArena<T>::Slot> slots, int64_t total,
                           std::span<const Param<T>> params) {
  if (params_ == 0) {  // state_names() allocates: asked at the first step only
    params_ = slots.size();
    layout_.assign(slots.begin(), slots.end());
    state_.clear();
    for (size_t k = 0; k < state_names().size(); ++k) state_.emplace_back(Shape{total});
  }
  CONVNET_CHECK(params_ == slots.size(), name(), ": step() got ", slots.size(),
                " parameters, but the optimizer state was made for ", params_);
  if (state_.empty()) return;  // an optimizer without state (SGD without momentum)
  for (size_t i = 0; i < slots.size(); ++i)
    CONVNET_CHECK(
        slots[i].size == layout_[i].size && state_[0].numel() == total, name(), ": parameter ", i,
        i < params.size() ? " (" + params[i].name + ")" : std::string(), " changed size to ",
        slots[i].size, " elements since the first step (", layout_[i].size, ")");
  // Same sizes, same layout: ParamArena::layout is a function of the sizes.
}

template <class T>
void Optimizer<T>::step(ParamArena<T>& arena, double lr, const Context& ctx) {
  prepare(arena.slots(), arena.size(), {});
  ++steps_;
  T* state[8];
  for (size_t k = 0; k < state_.size(); ++k) state[k] = state_[k].data();
  update(ctx, arena.values(), std::as_const(arena).grads(),
         std::span<T* const>(state, state_.size()), lr);
}

template <class T>
void Optimizer<T>::step(ParamArena<T>& arena, double lr) {
  step(arena, lr, default_context());
}

template <class T>
void Optimizer<T>::step(std::span<const Param<T>> params) {
  step(params, default_context());
}

template <class T>
void Optimizer<T>::step(std::span<const Param<T>> params, const Context& ctx) {
  std::vector<int64_t> sizes;
  for (const Param<T>& p : params) {
    CONVNET_CHECK(p.grad->numel() == p.value->numel(), name(), ": parameter ", p.name, " has ",
                  p.value->numel(), " values but ", p.grad->numel(), " gradients");
    sizes.push_back(p.value->numel());
  }
  int64_t total = 0;
  const auto slots = ParamArena<T>::layout(sizes, total);
  prepare(slots, total, params);
  ++steps_;
  T* state[8];
  for (size_t i = 0; i < params.size(); ++i) {
    for (size_t k = 0; k < state_.size(); ++k) state[k] = state_[k].data() + layout_[i].offset;
    update(ctx, params[i].value->span(), std::as_const(*params[i].grad).span(),
           std::span<T* const>(state, state_.size()), learning_rate());
  }
}

template <class T>
std::span<const T> Optimizer<T>::state(size_t param, size_t k) const {
  CONVNET_CHECK(param < params_ && k < state_.size(), name(), ": no state ", k, " of parameter ",
                param, " (state for ", params_, " parameters, ", state_.size(), " per parameter)");
  return {state_[k].data() + layout_[param].offset, static_cast<size_t>(layout_[param].size)};
}

template <class T>
void Optimizer<T>::restore(int64_t steps, std::vector<std::vector<std::vector<T>>> state) {
  const size_t count = state_names().size();
  CONVNET_CHECK(steps >= 0 && (steps == 0) == state.empty(), name(), ": restore() got ",
                state.size(), " parameters' state for step ", steps,
                " (state is empty exactly at step 0)");
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < state.size(); ++i) {
    CONVNET_CHECK(state[i].size() == count, name(), ": restore() got ", state[i].size(),
                  " state tensors for parameter ", i, ", expected ", count);
    for (const auto& s : state[i])
      CONVNET_CHECK(s.size() == (count ? state[i][0].size() : 0), name(), ": restore(): parameter ",
                    i, "'s state tensors differ in size");
    sizes.push_back(count ? static_cast<int64_t>(state[i][0].size()) : 0);
  }
  steps_ = steps;
  params_ = state.size();
  state_.clear();
  layout_.clear();
  if (count == 0 || state.empty()) return;
  int64_t total = 0;
  layout_ = ParamArena<T>::layout(sizes, total);
  for (size_t k = 0; k < count; ++k) {
    Tensor<T>& flat = state_.emplace_back(Shape{total});
    for (size_t i = 0; i < state.size(); ++i)
      std::copy(state[i][k].begin(), state[i][k].end(), flat.data() + layout_[i].offset);
  }
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace convnet
