// Option resolution shared by MaxPool2d and AvgPool2d.
#pragma once

#include "convnet/layers.hpp"
#include "layers/common.hpp"
#include "ops/shapes.hpp"

namespace convnet::detail {

struct PoolGeometry {
  int64_t KH, KW, SH, SW, PH, PW;
};

// Kernel, stride and padding of a pooling layer's options; a stride not given (neither stride_h
// nor stride) is the kernel's size along that axis. Invalid values are errors naming `kind` and
// the option.
inline PoolGeometry resolve_pool(const Pool2dOptions& o, const char* kind) {
  const AxisPair kernel = checked_axes(kind, "kernel", o.kernel, o.kernel_h, o.kernel_w, 1);
  auto stride_axis = [&](const char* axis, const std::optional<int64_t>& per_axis,
                         int64_t kernel_size) {
    if (!per_axis && !o.stride) return kernel_size;
    return checked_axis(kind, "stride", axis, per_axis, o.stride.value_or(0), 1);
  };
  const AxisPair stride = {stride_axis("h", o.stride_h, kernel.h),
                           stride_axis("w", o.stride_w, kernel.w)};
  const AxisPair pad = checked_axes(kind, "pad", o.pad, o.pad_h, o.pad_w, 0);
  return {kernel.h, kernel.w, stride.h, stride.w, pad.h, pad.w};
}

inline std::string describe_pool(const char* kind, const PoolGeometry& g) {
  std::string d = concat(kind, " ", g.KH, "x", g.KW);
  if (g.SH != g.KH || g.SW != g.KW) d += concat(" stride ", g.SH, "x", g.SW);
  if (g.PH != 0 || g.PW != 0) d += concat(" pad ", g.PH, "x", g.PW);
  return d;
}

inline ops::Pool2dShape pool_shape(const Shape& x, int64_t KH, int64_t KW, int64_t SH, int64_t SW,
                                   int64_t PH, int64_t PW) {
  return {.N = x[0],
          .C = x[1],
          .IH = x[2],
          .IW = x[3],
          .KH = KH,
          .KW = KW,
          .SH = SH,
          .SW = SW,
          .PH = PH,
          .PW = PW};
}

}  // namespace convnet::detail
