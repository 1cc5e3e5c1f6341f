// Convolution as GEMM (im2col). For one image, cols is the (IC·KH·KW) × (OH·OW) matrix whose
// column (oh,ow) holds the input patch that output position reads, so
//   forward:          y_n  (OC × OH·OW)    = W (OC × IC·KH·KW) · cols_n
//   backward data:    dcols (IC·KH·KW × OH·OW) = Wᵀ · dy_n,   then col2im adds dcols into dx_n
//   backward weights: dW  (OC × IC·KH·KW) += dy_n · cols_nᵀ,   db += row sums of dy_n
// Threads split the batch. Weight gradients go to per-thread partial sums that are reduced in
// thread order, so results are deterministic for a given thread count and never race.
#include <algorithm>
#include <cstring>

#include "convnet/runtime.hpp"
#include "ops/cpu/cpu.hpp"

namespace convnet::ops::cpu {
namespace {

int64_t patch_size(const Conv2dShape& s) { return s.IC * s.KH * s.KW; }

// A 1x1 kernel with stride 1 and no padding reads the image itself: cols_n == x_n.
bool cols_is_input(const Conv2dShape& s) {
  return s.KH == 1 && s.KW == 1 && s.SH == 1 && s.SW == 1 && s.PH == 0 && s.PW == 0;
}

// Output columns [lo, hi) whose input column iw = ow*SW - PW + kw*DW lies inside [0, IW): the
// rest read padding. Computing the range once per row keeps the copy loops branch-free.
struct ValidRange {
  int64_t lo, hi;
};
ValidRange valid_columns(const Conv2dShape& s, int64_t kw, int64_t OW) {
  const int64_t offset = kw * s.DW - s.PW;  // iw = ow*SW + offset
  // smallest ow with ow*SW + offset >= 0, and one past the largest with ow*SW + offset < IW
  int64_t lo = offset >= 0 ? 0 : (-offset + s.SW - 1) / s.SW;
  int64_t hi = s.IW - offset <= 0 ? 0 : (s.IW - offset - 1) / s.SW + 1;
  lo = std::min(lo, OW);
  hi = std::clamp(hi, lo, OW);
  return {lo, hi};
}

// cols[(ic,kh,kw), (oh,ow)] = x[ic, oh*SH - PH + kh*DH, ow*SW - PW + kw*DW], 0 in the padding.
void im2col(const Conv2dShape& s, const float* x, float* cols) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t ic = 0; ic < s.IC; ++ic)
    for (int64_t kh = 0; kh < s.KH; ++kh)
      for (int64_t kw = 0; kw < s.KW; ++kw) {
        float* row = cols + ((ic * s.KH + kh) * s.KW + kw) * OH * OW;
        const float* plane = x + ic * s.IH * s.IW;
        const ValidRange r = valid_columns(s, kw, OW);
        const int64_t offset = kw * s.DW - s.PW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t ih = oh * s.SH - s.PH + kh * s.DH;
          float* out = row + oh * OW;
          if (ih < 0 || ih >= s.IH) {
            std::fill_n(out, OW, 0.0f);
            continue;
          }
          const float* in = plane + ih * s.IW;  // x[ih, ow*SW + offset]
          std::fill_n(out, r.lo, 0.0f);
          if (s.SW == 1) {
            std::memcpy(out + r.lo, in + r.lo + offset,
                        static_cast<size_t>(r.hi - r.lo) * sizeof(float));
          } else {
            for (int64_t ow = r.lo; ow < r.hi; ++ow) out[ow] = in[ow * s.SW + offset];
          }
          std::fill(out + r.hi, out + OW, 0.0f);
        }
      }
}

// dx[ic, ih, iw] += dcols[(ic,kh,kw), (oh,ow)] for every pair that im2col linked: the adjoint.
void col2im_add(const Conv2dShape& s, const float* dcols, float* dx) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t ic = 0; ic < s.IC; ++ic)
    for (int64_t kh = 0; kh < s.KH; ++kh)
      for (int64_t kw = 0; kw < s.KW; ++kw) {
        const float* row = dcols + ((ic * s.KH + kh) * s.KW + kw) * OH * OW;
        float* plane = dx + ic * s.IH * s.IW;
        const ValidRange r = valid_columns(s, kw, OW);
        const int64_t offset = kw * s.DW - s.PW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t ih = oh * s.SH - s.PH + kh * s.DH;
          if (ih < 0 || ih >= s.IH) continue;
          float* out = plane + ih * s.IW;  // dx[ih, ow*SW + offset]
          const float* in = row + oh * OW;
          if (s.SW == 1) {
            float* out_shifted = out + r.lo + offset;
            for (int64_t ow = r.lo; ow < r.hi; ++ow) out_shifted[ow - r.lo] += in[ow];
          } else {
            for (int64_t ow = r.lo; ow < r.hi; ++ow) out[ow * s.SW + offset] += in[ow];
          }
        }
      }
}

// Per-thread slices of the workspace.
struct Slices {
  int64_t cols, dw, db;
  int64_t per_thread() const { return cols + dw + db; }
};
Slices slices(const Conv2dShape& s) {
  return {patch_size(s) * s.OH() * s.OW(), s.OC * patch_size(s), s.OC};
}

}  // namespace

int64_t conv2d_workspace_size(const Conv2dShape& s, int threads) {
  return slices(s).per_thread() * threads;
}

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b,
                    float* y, float* workspace) {
  const int64_t P = patch_size(s), OHW = s.OH() * s.OW();
  const Slices sl = slices(s);
  parallel_for(0, s.N, [&](int64_t lo, int64_t hi, int thread) {
    float* cols = workspace + thread * sl.per_thread();
    for (int64_t n = lo; n < hi; ++n) {
      const float* xn = x + n * s.IC * s.IH * s.IW;
      float* yn = y + n * s.OC * OHW;
      const float* c = xn;
      if (!cols_is_input(s)) {
        im2col(s, xn, cols);
        c = cols;
      }
      if (b) {
        for (int64_t oc = 0; oc < s.OC; ++oc) std::fill_n(yn + oc * OHW, OHW, b[oc]);
      }
      sgemm(false, false, s.OC, OHW, P, w, P, c, OHW, b != nullptr, yn, OHW);
    }
  });
}

void conv2d_backward_data(const Conv2dShape& s, const float* w, const float* dy, float* dx,
                          float* workspace) {
  const int64_t P = patch_size(s), OHW = s.OH() * s.OW();
  const Slices sl = slices(s);
  parallel_for(0, s.N, [&](int64_t lo, int64_t hi, int thread) {
    float* dcols = workspace + thread * sl.per_thread();
    for (int64_t n = lo; n < hi; ++n) {
      const float* dyn = dy + n * s.OC * OHW;
      float* dxn = dx + n * s.IC * s.IH * s.IW;
      if (cols_is_input(s)) {  // dcols is dx itself: accumulate straight into it
        sgemm(true, false, P, OHW, s.OC, w, P, dyn, OHW, true, dxn, OHW);
        continue;
      }
      sgemm(true, false, P, OHW, s.OC, w, P, dyn, OHW, false, dcols, OHW);
      col2im_add(s, dcols, dxn);
    }
  });
}

void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                             float* db, float* workspace) {
  const int64_t P = patch_size(s), OHW = s.OH() * s.OW();
  const Slices sl = slices(s);
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), s.N));
  parallel_for(0, s.N, [&](int64_t lo, int64_t hi, int thread) {
    float* cols = workspace + thread * sl.per_thread();
    float* dw_part = cols + sl.cols;
    float* db_part = dw_part + sl.dw;
    std::fill_n(dw_part, sl.dw + sl.db, 0.0f);
    for (int64_t n = lo; n < hi; ++n) {
      const float* xn = x + n * s.IC * s.IH * s.IW;
      const float* dyn = dy + n * s.OC * OHW;
      const float* c = xn;
      if (!cols_is_input(s)) {
        im2col(s, xn, cols);
        c = cols;
      }
      sgemm(false, true, s.OC, P, OHW, dyn, OHW, c, OHW, true, dw_part, P);
      if (db)
        for (int64_t oc = 0; oc < s.OC; ++oc) {
          float sum = 0.0f;
          for (int64_t i = 0; i < OHW; ++i) sum += dyn[oc * OHW + i];
          db_part[oc] += sum;
        }
    }
  });
  // Fixed-order reduction of the partial sums.
  for (int t = 0; t < threads; ++t) {
    const float* dw_part = workspace + t * sl.per_thread() + sl.cols;
    for (int64_t i = 0; i < sl.dw; ++i) dw[i] += dw_part[i];
    if (db)
      for (int64_t oc = 0; oc < s.OC; ++oc) db[oc] += dw_part[sl.dw + oc];
  }
}

}  // namespace convnet::ops::cpu
