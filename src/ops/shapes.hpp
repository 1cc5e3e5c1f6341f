// Shape structs for the kernels: every dimension a kernel needs, checked once by validate()
// when a layer is built, so kernels never discover a bad shape.
#pragma once

#include <cstdint>
#include <string>

namespace convnet::ops {

// Dimension names: N batch, IC/OC input/output channels, IH/IW input size, OH/OW output size,
// KH/KW kernel, SH/SW stride, PH/PW zero padding (each side), DH/DW dilation.
struct Conv2dShape {
  int64_t N = 1, IC = 1, IH = 1, IW = 1, OC = 1, KH = 1, KW = 1;
  int64_t SH = 1, SW = 1, PH = 0, PW = 0, DH = 1, DW = 1;
  // Groups: input and output channels split into G groups, output group g reading only input
  // group g; weights are (OC, IC/G, KH, KW). G == IC: depthwise.
  int64_t G = 1;
  // Output size: floor((IH + 2*PH - DH*(KH-1) - 1) / SH) + 1, as in PyTorch.
  int64_t OH() const { return (IH + 2 * PH - DH * (KH - 1) - 1) / SH + 1; }
  int64_t OW() const { return (IW + 2 * PW - DW * (KW - 1) - 1) / SW + 1; }
  // Throws convnet::Error naming the offending numbers, prefixed by `where`.
  void validate(const std::string& where) const;
};

struct Pool2dShape {
  int64_t N = 1, C = 1, IH = 1, IW = 1, KH = 1, KW = 1, SH = 1, SW = 1, PH = 0, PW = 0;
  int64_t OH() const { return (IH + 2 * PH - KH) / SH + 1; }
  int64_t OW() const { return (IW + 2 * PW - KW) / SW + 1; }
  void validate(const std::string& where) const;
};

// y = x · wᵀ + b with x (N, IN), w (OUT, IN), b (OUT), y (N, OUT).
struct LinearShape {
  int64_t N = 1, IN = 1, OUT = 1;
};

// Batch normalisation: x viewed as (N, C, HW), HW = H·W for (N, C, H, W), 1 for (N, F).
// Channel c's statistics are over its M = N·HW values.
struct BatchNormShape {
  int64_t N = 1, C = 1, HW = 1;
  int64_t M() const { return N * HW; }
};

// A bias per channel over y viewed as (N, C, HW).
struct BiasShape {
  int64_t N = 1, C = 1, HW = 1;
};

// --- the constants of one optimizer step (convnet/optim.hpp has the formulas) ---------------
// Converted to T by the optimizer before the loop, as they always were, so that a kernel's
// arithmetic is exactly the per-element expression of the formula.
template <class T>
struct SgdStep {
  T lr, weight_decay, momentum, damp;  // damp = 1 − dampening
  bool first;                          // the first step: buf = d (no dampening)
  bool nesterov;
};
template <class T>
struct AdamStep {
  T beta1, beta2;
  T step_size;  // lr / (1 − β1^t)
  T sqrt_bc2;   // sqrt(1 − β2^t)
  T eps, weight_decay;
  T decay;  // 1 − lr·wd (decoupled)
  bool decoupled;
};
template <class T>
struct RmsPropStep {
  T lr, alpha, eps, weight_decay, momentum;
  bool centered;
  bool use_momentum;  // momentum > 0
};

}  // namespace convnet::ops
