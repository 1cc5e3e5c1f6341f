// Axis ranges and ticks for the report's charts (see axis.hpp).
#include "report/axis.hpp"

#include <algorithm>
#include <cmath>

namespace convnet::report {
namespace {

// The smallest of 1, 2, 5, 10 × 10^k that is at least `raw`.
double nice_step(double raw) {
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0})
    if (m * magnitude >= raw * (1 - 1e-9)) return m * magnitude;
  return 10 * magnitude;
}

Axis with_step(double min, double max, double step) {
  // Ticks are k·step for whole k, computed from k rather than by adding up steps, so that
  // rounding errors do not pile up into a missing last tick.
  const double first = std::floor(min / step + 1e-9), last = std::ceil(max / step - 1e-9);
  Axis axis{first * step, last * step, {}};
  for (double k = first; k <= last; ++k) axis.ticks.push_back(k == 0 ? 0.0 : k * step);
  return axis;
}

}  // namespace

Axis linear_axis(double min, double max, int target) {
  if (max < min) return linear_axis(max, min, target);
  if (max == min) {
    const double half = min == 0 ? 1e-3 : std::abs(min) * 0.1;
    min -= half, max += half;
  }
  return with_step(min, max, nice_step((max - min) / std::max(target, 1)));
}

Axis integer_axis(double min, double max, int target) {
  if (max < min) return integer_axis(max, min, target);
  min = std::floor(min), max = std::ceil(max);
  if (max == min) max = min + 1;
  return with_step(min, max, std::max(1.0, nice_step((max - min) / std::max(target, 1))));
}

Axis log_axis(double min, double max, int max_ticks) {
  if (max < min) return log_axis(max, min, max_ticks);
  const double lo = std::floor(std::log10(min));
  double hi = std::max(std::ceil(std::log10(max)), lo + 1);
  // Every decade while they fit, else every 2nd, 3rd...: ceil(span / step) + 1 <= max_ticks.
  const double step = std::max(1.0, std::ceil((hi - lo) / std::max(max_ticks - 1, 1)));
  hi = lo + step * std::ceil((hi - lo) / step);
  Axis axis{lo, hi, {}};
  for (double k = 0; lo + k * step <= hi; ++k) axis.ticks.push_back(lo + k * step);
  return axis;
}

}  // namespace convnet::report
