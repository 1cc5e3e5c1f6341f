// Finite-difference gradient check of a whole model: the proof that backpropagation matches
// the derivative of the loss. Runs in double precision, where central differences of a loss
// near 1 are accurate to about 1e-9 (rounding ~1e-16/eps), so errors beyond that are bugs.
//
// An element passes when |analytic - numeric| <= atol + rtol·|numeric| (torch.autograd.gradcheck's
// rule, tighter here). Elements sitting on a kink (a ReLU at exactly 0, tied maxima in a max-pool
// window, as ReLU zeros often are) have no derivative; they are recognised because the one-sided
// slopes disagree, counted as `kinks` and not compared.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "convnet/model.hpp"

namespace convnet {

struct GradcheckOptions {
  double eps = 1e-6;             // central-difference step
  int64_t max_per_tensor = 32;   // elements sampled per tensor (all when the tensor is smaller)
  uint64_t seed = 1;             // which elements are sampled
  double atol = 1e-8;
  double rtol = 1e-5;
};

struct GradcheckEntry {
  size_t layer = 0;          // layer index
  std::string layer_name;    // its description
  std::string tensor;        // "input" (∂L/∂ layer input), "weight", "bias"
  int64_t checked = 0;       // elements compared
  int64_t kinks = 0;         // elements skipped: not differentiable there
  int64_t failed = 0;        // elements outside atol + rtol·|numeric|
  double max_abs_error = 0;  // max |analytic - numeric|
  double max_rel_error = 0;  // max |a - n| / max(|a|, |n|) over elements with max(|a|,|n|) > atol
  bool passed() const { return failed == 0; }
};

// The gradient of the loss with respect to every parameter and to the input, analytic
// (backward) against numeric ((L(θ+ε) - L(θ-ε)) / 2ε). For a Sequential, every layer's own
// input too (entries per layer); for other models (Graph), the model input and every
// parameter, each entry naming its tensor ("stage1.0.conv1.weight").
// The model must be built for x's shape. Every pass runs Mode::Train (the function train_step
// differentiates) with each layer's replay on (Layer::set_replay): Dropout keeps one mask and
// BatchNorm's running statistics are left as they were.
std::vector<GradcheckEntry> gradcheck(Model<double>& model, const Tensor<double>& x,
                                      const Targets<double>& targets, Loss<double>& loss,
                                      const GradcheckOptions& options = {});

}  // namespace convnet
