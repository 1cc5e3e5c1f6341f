// Chart axes for the report's SVG charts: a range and the ticks on it, at values a reader can
// take in at a glance (1, 2 or 5 times a power of ten; whole epochs; whole decades on a log
// scale) rather than at the data's own minimum and maximum.
#pragma once

#include <vector>

namespace convnet::report {

struct Axis {
  double lo = 0, hi = 1;      // the axis' ends (on a log axis: log10 of the values)
  std::vector<double> ticks;  // ascending, within [lo, hi]; log axis: exponents
};

// About `target` ticks spaced 1, 2 or 5 × 10^k apart; the ends are the ticks at or just outside
// [min, max]. min == max is widened by 10% of the value each way (or ±0.001 for 0).
Axis linear_axis(double min, double max, int target = 5);
// As linear_axis, but no step below 1: epochs are whole numbers. A single epoch spans [e, e + 1].
Axis integer_axis(double min, double max, int target = 5);
// Whole decades around [min, max] (both > 0), with at most `max_ticks` ticks (every 2nd, 3rd...
// decade when the values span more); a range inside one decade spans that decade.
Axis log_axis(double min, double max, int max_ticks = 7);

}  // namespace convnet::report
