// Helpers shared by the layer files: option checks, parameter initialisation, spec text.
#pragma once

#include <optional>
#include <string>
#include <type_traits>

#include "convnet/context.hpp"
#include "convnet/layers.hpp"

namespace convnet::detail {

// --- per-axis options ------------------------------------------------------------------------
// An options struct's per-axis field when it was given (an explicit 0 included), else its
// square value: kernel_h, or kernel.
inline int64_t pick(const std::optional<int64_t>& per_axis, int64_t square) {
  return per_axis.value_or(square);
}

// Both axes of an option with a square value (`square`, named `name`) and per-axis overrides
// (name_h, name_w), each checked to be at least `minimum`; the error names the layer and the
// option the bad value came from: "conv2d: kernel_w must be at least 1, got 0".
struct AxisPair {
  int64_t h, w;
};
inline int64_t checked_axis(const char* layer, const char* name, const char* axis,
                            const std::optional<int64_t>& per_axis, int64_t square,
                            int64_t minimum) {
  const int64_t v = pick(per_axis, square);
  if (v >= minimum) return v;
  const std::string option = per_axis ? concat(name, "_", axis) : std::string(name);
  if (minimum == 0) throw Error(concat(layer, ": ", option, " must be >= 0, got ", v));
  throw Error(concat(layer, ": ", option, " must be at least ", minimum, ", got ", v));
}
inline AxisPair checked_axes(const char* layer, const char* name, int64_t square,
                             const std::optional<int64_t>& h, const std::optional<int64_t>& w,
                             int64_t minimum) {
  return {checked_axis(layer, name, "h", h, square, minimum),
          checked_axis(layer, name, "w", w, square, minimum)};
}

// Fills weight (and bias, if not empty) as `init` says; see Init in layers.hpp.
template <class T>
void initialise(Init init, Rng& rng, int64_t fan_in, int64_t fan_out, Tensor<T>& weight,
                Tensor<T>& bias);

// --- model-spec text (defined in src/layers/options_spec.cpp, with the option tables) -------
// A layer's options as spec text: every option that differs from its default, as key=value in
// declaration order ("out_channels=6 kernel=5 pad=2"); empty when all are defaults.
std::string options_spec(const Conv2dOptions& o);
std::string options_spec(const ConvTranspose2dOptions& o);
std::string options_spec(const Pool2dOptions& o, bool count_pad);  // count_pad: AvgPool2d's
std::string options_spec(const LinearOptions& o);
std::string options_spec(const DropoutOptions& o);
std::string options_spec(const BatchNormOptions& o);
// The shortest text that reads back to exactly v ("0.01", "1e-05").
std::string format_number(float v);
std::string format_number(double v);
// "kind" or "kind options".
inline std::string join_spec(const std::string& kind, const std::string& options) {
  return options.empty() ? kind : kind + " " + options;
}

}  // namespace convnet::detail
