// Option resolution shared by MaxPool2d and AvgPool2d.
#pragma once

#include "convnet/layers.hpp"
#include "ops/shapes.hpp"

namespace convnet::detail {

struct PoolGeometry {
  int64_t KH, KW, SH, SW, PH, PW;
};

inline PoolGeometry resolve_pool(const Pool2dOptions& o, const char* kind) {
  auto pick = [](int64_t specific, int64_t square) { return specific != 0 ? specific : square; };
  PoolGeometry g{pick(o.kernel_h, o.kernel), pick(o.kernel_w, o.kernel), 0, 0,
                 pick(o.pad_h, o.pad), pick(o.pad_w, o.pad)};
  g.SH = pick(pick(o.stride_h, o.stride), g.KH);  // stride 0: same as the kernel
  g.SW = pick(pick(o.stride_w, o.stride), g.KW);
  CONVNET_CHECK(g.KH >= 1 && g.KW >= 1, kind, ": kernel must be at least 1x1, got ", g.KH, "x",
                g.KW);
  CONVNET_CHECK(g.SH >= 1 && g.SW >= 1, kind, ": stride must be at least 1, got ", g.SH, "x",
                g.SW);
  return g;
}

inline std::string describe_pool(const char* kind, const PoolGeometry& g) {
  std::string d = concat(kind, " ", g.KH, "x", g.KW);
  if (g.SH != g.KH || g.SW != g.KW) d += concat(" stride ", g.SH, "x", g.SW);
  if (g.PH != 0 || g.PW != 0) d += concat(" pad ", g.PH, "x", g.PW);
  return d;
}

inline ops::Pool2dShape pool_shape(const Shape& x, int64_t KH, int64_t KW, int64_t SH, int64_t SW,
                                   int64_t PH, int64_t PW) {
  return {.N = x[0], .C = x[1], .IH = x[2], .IW = x[3], .KH = KH, .KW = KW, .SH = SH, .SW = SW,
          .PH = PH, .PW = PW};
}

}  // namespace convnet::detail
