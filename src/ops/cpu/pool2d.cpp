// Fast max pooling: the same result as ops/ref (first maximum wins, padding never does), with
// each window clipped to the input once instead of testing every element, a branch-free 2x2
// stride-2 path (the common case), and threads over the N·C planes.
#include <algorithm>
#include <limits>

#include "convnet/context.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/cpu/multiversion.hpp"

namespace convnet::ops::cpu {
namespace {

// 2x2 windows with stride 2 and no padding, written with selects instead of branches: on
// activations the comparisons are unpredictable, and this lets the compiler vectorise the row.
// Visiting (r0[0], r0[1], r1[0], r1[1]) with strict '>' keeps the first maximum, as ref does.
CONVNET_MULTIVERSION
void maxpool_2x2_row(const float* __restrict r0, const float* __restrict r1, int64_t OW,
                     int32_t base, int32_t IW, float* __restrict y, int32_t* __restrict argmax) {
  for (int64_t ow = 0; ow < OW; ++ow) {
    const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
    const int32_t i = base + 2 * static_cast<int32_t>(ow);
    float best = a;
    int32_t index = i;
    index = b > best ? i + 1 : index;
    best = b > best ? b : best;
    index = c > best ? i + IW : index;
    best = c > best ? c : best;
    index = d > best ? i + IW + 1 : index;
    best = d > best ? d : best;
    y[ow] = best;
    if (argmax) argmax[ow] = index;
  }
}

void maxpool_plane(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int64_t OH = s.OH(), OW = s.OW();
  if (s.KH == 2 && s.KW == 2 && s.SH == 2 && s.SW == 2 && s.PH == 0 && s.PW == 0) {
    for (int64_t oh = 0; oh < OH; ++oh) {
      const float* r0 = x + 2 * oh * s.IW;
      maxpool_2x2_row(r0, r0 + s.IW, OW, static_cast<int32_t>(2 * oh * s.IW),
                      static_cast<int32_t>(s.IW), y + oh * OW, argmax ? argmax + oh * OW : nullptr);
    }
    return;
  }
  for (int64_t oh = 0; oh < OH; ++oh) {
    const int64_t h0 = std::max<int64_t>(oh * s.SH - s.PH, 0);
    const int64_t h1 = std::min<int64_t>(oh * s.SH - s.PH + s.KH, s.IH);
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t w0 = std::max<int64_t>(ow * s.SW - s.PW, 0);
      const int64_t w1 = std::min<int64_t>(ow * s.SW - s.PW + s.KW, s.IW);
      float best = -std::numeric_limits<float>::infinity();
      int64_t index = -1;
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) {
          const float v = x[ih * s.IW + iw];
          if (v > best || index < 0) best = v, index = ih * s.IW + iw;
        }
      y[oh * OW + ow] = best;
      if (argmax) argmax[oh * OW + ow] = static_cast<int32_t>(index);
    }
  }
}

}  // namespace

void maxpool2d_forward(const Context& ctx, const Pool2dShape& s, const float* x, float* y,
                       int32_t* argmax) {
  const int64_t in_plane = s.IH * s.IW, out_plane = s.OH() * s.OW();
  parallel_for(ctx, 0, s.N * s.C, [&](int64_t lo, int64_t hi, int) {
    for (int64_t p = lo; p < hi; ++p)
      maxpool_plane(s, x + p * in_plane, y + p * out_plane, argmax ? argmax + p * out_plane : nullptr);
  });
}

}  // namespace convnet::ops::cpu
