// Grouped convolution (G > 1). Depthwise (G == IC, each input channel its own group, any
// channel multiplier) runs a direct kernel: one output plane is a sum of KH·KW shifted, scaled
// copies of one input plane, rows the compiler vectorises; threads take whole planes (forward,
// backward data) or whole channels (weight gradients, so every sum has one fixed order). Other
// group counts run the dense kernels group by group, on the views of one image and one group.
#include <algorithm>

#include "convnet/context.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/cpu/multiversion.hpp"

namespace convnet::ops::cpu {
namespace {

bool depthwise(const Conv2dShape& s) { return s.G == s.IC; }

// The dense shape of one group of one image.
Conv2dShape group_shape(const Conv2dShape& s) {
  Conv2dShape g = s;
  g.N = 1;
  g.IC = s.IC / s.G;
  g.OC = s.OC / s.G;
  g.G = 1;
  return g;
}

// Output columns ow whose input column ow·SW - PW + kw·DW lies in [0, IW): [lo, hi).
void valid_columns(const Conv2dShape& s, int64_t kw, int64_t OW, int64_t& lo, int64_t& hi) {
  const int64_t shift = kw * s.DW - s.PW;  // iw = ow·SW + shift
  lo = shift >= 0 ? 0 : (-shift + s.SW - 1) / s.SW;
  hi = s.IW - shift <= 0 ? 0 : std::min(OW, (s.IW - shift + s.SW - 1) / s.SW);
  lo = std::min(lo, hi);
}

// y[oh, :] += w · x[ih, ow·SW + shift] over the valid columns, one (kh, kw) tap of one plane.
CONVNET_MULTIVERSION void tap_forward(const float* __restrict x_row, float* __restrict y_row,
                                      float w, int64_t lo, int64_t hi, int64_t SW, int64_t shift) {
  if (SW == 1) {
    for (int64_t ow = lo; ow < hi; ++ow) y_row[ow] += w * x_row[ow + shift];
  } else {
    for (int64_t ow = lo; ow < hi; ++ow) y_row[ow] += w * x_row[ow * SW + shift];
  }
}

// dx[ih, ow·SW + shift] += w · dy[oh, ow], the transpose of tap_forward.
CONVNET_MULTIVERSION void tap_backward_data(const float* __restrict dy_row,
                                            float* __restrict dx_row, float w, int64_t lo,
                                            int64_t hi, int64_t SW, int64_t shift) {
  if (SW == 1) {
    for (int64_t ow = lo; ow < hi; ++ow) dx_row[ow + shift] += w * dy_row[ow];
  } else {
    for (int64_t ow = lo; ow < hi; ++ow) dx_row[ow * SW + shift] += w * dy_row[ow];
  }
}

// Σ_ow dy[oh, ow] · x[ih, ow·SW + shift]: one tap's share of a weight gradient.
CONVNET_MULTIVERSION float tap_dot(const float* __restrict dy_row, const float* __restrict x_row,
                                   int64_t lo, int64_t hi, int64_t SW, int64_t shift) {
  float sum = 0.0f;
  if (SW == 1) {
    for (int64_t ow = lo; ow < hi; ++ow) sum += dy_row[ow] * x_row[ow + shift];
  } else {
    for (int64_t ow = lo; ow < hi; ++ow) sum += dy_row[ow] * x_row[ow * SW + shift];
  }
  return sum;
}

// Calls visit(oh, ih, kh) for every output row and kernel row that meet inside the input.
template <class Visit>
void for_rows(const Conv2dShape& s, Visit&& visit) {
  const int64_t OH = s.OH();
  for (int64_t oh = 0; oh < OH; ++oh)
    for (int64_t kh = 0; kh < s.KH; ++kh) {
      const int64_t ih = oh * s.SH - s.PH + kh * s.DH;
      if (ih >= 0 && ih < s.IH) visit(oh, ih, kh);
    }
}

}  // namespace

int64_t conv2d_grouped_workspace_size(const Conv2dShape& s, int threads) {
  return depthwise(s) ? 0 : conv2d_workspace_size(group_shape(s), threads);
}

void conv2d_grouped_forward(const Context& ctx, const Conv2dShape& s, const float* x,
                            const float* w, const float* b, float* y, float* workspace) {
  const int64_t OH = s.OH(), OW = s.OW(), in_plane = s.IH * s.IW, out_plane = OH * OW;
  if (!depthwise(s)) {
    const Conv2dShape g = group_shape(s);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t k = 0; k < s.G; ++k)
        conv2d_forward(ctx, g, x + (n * s.IC + k * g.IC) * in_plane,
                       w + k * g.OC * g.IC * s.KH * s.KW, b ? b + k * g.OC : nullptr,
                       y + (n * s.OC + k * g.OC) * out_plane, workspace);
    return;
  }
  const int64_t multiplier = s.OC / s.IC;
  parallel_for(ctx, 0, s.N * s.OC, [&](int64_t lo_plane, int64_t hi_plane, int) {
    for (int64_t p = lo_plane; p < hi_plane; ++p) {
      const int64_t n = p / s.OC, oc = p % s.OC, ic = oc / multiplier;
      const float* xp = x + (n * s.IC + ic) * in_plane;
      float* yp = y + p * out_plane;
      std::fill_n(yp, out_plane, b ? b[oc] : 0.0f);
      for_rows(s, [&](int64_t oh, int64_t ih, int64_t kh) {
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          int64_t lo = 0, hi = 0;
          valid_columns(s, kw, OW, lo, hi);
          tap_forward(xp + ih * s.IW, yp + oh * OW, w[(oc * s.KH + kh) * s.KW + kw], lo, hi, s.SW,
                      kw * s.DW - s.PW);
        }
      });
    }
  });
}

void conv2d_grouped_backward_data(const Context& ctx, const Conv2dShape& s, const float* w,
                                  const float* dy, float* dx, float* workspace, bool accumulate) {
  const int64_t OH = s.OH(), OW = s.OW(), in_plane = s.IH * s.IW, out_plane = OH * OW;
  if (!accumulate) fill(ctx, s.N * s.IC * in_plane, 0.0f, dx);  // the kernels below add
  if (!depthwise(s)) {
    const Conv2dShape g = group_shape(s);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t k = 0; k < s.G; ++k)
        conv2d_backward_data(ctx, g, w + k * g.OC * g.IC * s.KH * s.KW,
                             dy + (n * s.OC + k * g.OC) * out_plane,
                             dx + (n * s.IC + k * g.IC) * in_plane, workspace);
    return;
  }
  // Threads own input planes: each gathers from its own channel's `multiplier` output planes.
  const int64_t multiplier = s.OC / s.IC;
  parallel_for(ctx, 0, s.N * s.IC, [&](int64_t lo_plane, int64_t hi_plane, int) {
    for (int64_t p = lo_plane; p < hi_plane; ++p) {
      const int64_t n = p / s.IC, ic = p % s.IC;
      float* dxp = dx + p * in_plane;
      for (int64_t m = 0; m < multiplier; ++m) {
        const int64_t oc = ic * multiplier + m;
        const float* dyp = dy + (n * s.OC + oc) * out_plane;
        for_rows(s, [&](int64_t oh, int64_t ih, int64_t kh) {
          for (int64_t kw = 0; kw < s.KW; ++kw) {
            int64_t lo = 0, hi = 0;
            valid_columns(s, kw, OW, lo, hi);
            tap_backward_data(dyp + oh * OW, dxp + ih * s.IW, w[(oc * s.KH + kh) * s.KW + kw], lo,
                              hi, s.SW, kw * s.DW - s.PW);
          }
        });
      }
    }
  });
}

void conv2d_grouped_backward_weights(const Context& ctx, const Conv2dShape& s, const float* x,
                                     const float* dy, float* dw, float* db, float* workspace) {
  const int64_t OH = s.OH(), OW = s.OW(), in_plane = s.IH * s.IW, out_plane = OH * OW;
  if (!depthwise(s)) {
    const Conv2dShape g = group_shape(s);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t k = 0; k < s.G; ++k)
        conv2d_backward_weights(
            ctx, g, x + (n * s.IC + k * g.IC) * in_plane, dy + (n * s.OC + k * g.OC) * out_plane,
            dw + k * g.OC * g.IC * s.KH * s.KW, db ? db + k * g.OC : nullptr, workspace);
    return;
  }
  // Threads own output channels (their weights and bias): sums over images in a fixed order.
  const int64_t multiplier = s.OC / s.IC;
  parallel_for(ctx, 0, s.OC, [&](int64_t lo_oc, int64_t hi_oc, int) {
    for (int64_t oc = lo_oc; oc < hi_oc; ++oc) {
      const int64_t ic = oc / multiplier;
      for (int64_t n = 0; n < s.N; ++n) {
        const float* xp = x + (n * s.IC + ic) * in_plane;
        const float* dyp = dy + (n * s.OC + oc) * out_plane;
        if (db) {
          float sum = 0.0f;
          for (int64_t i = 0; i < out_plane; ++i) sum += dyp[i];
          db[oc] += sum;
        }
        for_rows(s, [&](int64_t oh, int64_t ih, int64_t kh) {
          for (int64_t kw = 0; kw < s.KW; ++kw) {
            int64_t lo = 0, hi = 0;
            valid_columns(s, kw, OW, lo, hi);
            dw[(oc * s.KH + kh) * s.KW + kw] +=
                tap_dot(dyp + oh * OW, xp + ih * s.IW, lo, hi, s.SW, kw * s.DW - s.PW);
          }
        });
      }
    }
  });
}

}  // namespace convnet::ops::cpu
