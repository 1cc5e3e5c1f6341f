// Optimizer::step: allocates state on the first step, then checks the parameters keep their
// sizes (state is positional) and runs each optimizer's flat update.
#include "convnet/optim.hpp"

#include <utility>

namespace convnet {

template <class T>
void Optimizer<T>::step(std::span<const Param<T>> params) {
  if (state_.empty()) {
    state_.resize(params.size());
    for (size_t i = 0; i < params.size(); ++i)
      state_[i].assign(state_names().size(),
                       std::vector<T>(static_cast<size_t>(params[i].value->numel()), T(0)));
  }
  CONVNET_CHECK(state_.size() == params.size(), name(), ": step() got ", params.size(),
                " parameters, but the optimizer state was made for ", state_.size());
  ++steps_;
  for (size_t i = 0; i < params.size(); ++i) {
    const Param<T>& prm = params[i];
    CONVNET_CHECK(prm.grad->numel() == prm.value->numel() &&
                      (state_[i].empty() ||
                       static_cast<int64_t>(state_[i][0].size()) == prm.value->numel()),
                  name(), ": parameter ", i, " (", prm.name, ") changed size to ",
                  prm.value->shape().str(), " since the first step");
    update(prm.value->span(), std::as_const(*prm.grad).span(), state_[i]);
  }
}

template <class T>
void Optimizer<T>::restore(int64_t steps, std::vector<std::vector<std::vector<T>>> state) {
  const size_t count = state_names().size();
  CONVNET_CHECK(steps >= 0 && (steps == 0) == state.empty(), name(), ": restore() got ",
                state.size(), " parameters' state for step ", steps,
                " (state is empty exactly at step 0)");
  for (size_t i = 0; i < state.size(); ++i) {
    CONVNET_CHECK(state[i].size() == count, name(), ": restore() got ", state[i].size(),
                  " state tensors for parameter ", i, ", expected ", count);
    for (const auto& s : state[i])
      CONVNET_CHECK(s.size() == (count ? state[i][0].size() : 0), name(),
                    ": restore(): parameter ", i, "'s state tensors differ in size");
  }
  steps_ = steps;
  state_ = std::move(state);
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace convnet
