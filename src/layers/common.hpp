// Helpers shared by the layer files: kernel-family choice and parameter initialisation.
#pragma once

#include <type_traits>

#include "convnet/layers.hpp"
#include "convnet/runtime.hpp"

namespace convnet::detail {

// Float layers run the fast kernels unless the reference backend is selected; double layers
// (used for gradient checks) always run the reference kernels.
template <class T>
bool use_fast_kernels() {
  if constexpr (std::is_same_v<T, float>) {
    return backend() == Backend::Fast;
  } else {
    return false;
  }
}

// An options struct's per-axis field when set (non-zero), else its square value: kernel_h or
// kernel.
inline int64_t pick(int64_t specific, int64_t square) { return specific != 0 ? specific : square; }

// Fills weight (and bias, if not empty) as `init` says; see Init in layers.hpp.
template <class T>
void initialise(Init init, Rng& rng, int64_t fan_in, int64_t fan_out, Tensor<T>& weight,
                Tensor<T>& bias);

}  // namespace convnet::detail
