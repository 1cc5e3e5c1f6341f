// Convolution as GEMM (im2col). For one image, cols is the (IC·KH·KW) × (OH·OW) matrix whose
// column (oh,ow) holds the input patch that output position reads, so
//   forward:          y_n  (OC × OH·OW)        = W (OC × IC·KH·KW) · cols_n
//   backward data:    dcols (IC·KH·KW × OH·OW) = Wᵀ · dy_n,  then col2im adds dcols into dx_n
//   backward weights: dWᵀ (IC·KH·KW × OC)     += cols_n · dy_nᵀ,  db += row sums of dy_n
// cols is never stored: the GEMM packs its panels straight from the image (implicit im2col),
// which halves the memory traffic of the patch matrix. dW is accumulated transposed because then
// the patch matrix is the GEMM's A operand, packed row by row from contiguous image rows.
// Threads split the batch; with fewer images than threads (batch-1 inference), forward and
// backward data also split each image's product into blocks of rows or columns, so that every
// thread has work (a block's values do not depend on the split: the GEMM's depth blocking is the
// same). Weight gradients go to per-thread partial sums that are reduced in thread order, so
// results are deterministic for a given thread count and never race.
#include <algorithm>
#include <cstring>
#include <vector>

#include "convnet/context.hpp"
#include "ops/cpu/gemm.hpp"
#include "ops/cpu/multiversion.hpp"

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

// dst[t] = in[t·stride] for t < n: the strided convolutions' patch rows. Compiled per ISA, so
// stride 2 becomes vector loads and permutes rather than one float at a time.
CONVNET_MULTIVERSION
void strided_copy(const float* __restrict in, int64_t stride, int64_t n, float* __restrict dst) {
  if (stride == 2) {  // the common case, as a constant the vectoriser can work with
    for (int64_t t = 0; t < n; ++t) dst[t] = in[2 * t];
    return;
  }
  for (int64_t t = 0; t < n; ++t) dst[t] = in[t * stride];
}

// dst[t] = cols[P, j + t] for t < count: row P = (ic,kh,kw) of the patch matrix, from output
// position j = oh*OW + ow on, read from the image (0 in the padding). Runs along an output row
// are contiguous image reads when the stride is 1.
void patch_row(const Conv2dShape& s, const float* x, int64_t P, int64_t j, int64_t count,
               float* dst) {
  const int64_t OW = s.OW();
  const int64_t kw = P % s.KW, kh = (P / s.KW) % s.KH, ic = P / (s.KW * s.KH);
  const float* plane = x + ic * s.IH * s.IW;
  const ValidRange r = valid_columns(s, kw, OW);
  const int64_t offset = kw * s.DW - s.PW;
  int64_t oh = j / OW, ow = j % OW;
  while (count > 0) {
    const int64_t len = std::min(count, OW - ow), end = ow + len;
    const int64_t ih = oh * s.SH - s.PH + kh * s.DH;
    if (ih < 0 || ih >= s.IH) {
      std::fill_n(dst, len, 0.0f);
    } else {
      const float* in = plane + ih * s.IW;  // x[ih, o*SW + offset] for output column o
      const int64_t lo = std::clamp(r.lo, ow, end), hi = std::clamp(r.hi, lo, end);
      std::fill(dst, dst + (lo - ow), 0.0f);
      if (s.SW == 1) {
        std::copy(in + lo + offset, in + hi + offset, dst + (lo - ow));
      } else {
        strided_copy(in + lo * s.SW + offset, s.SW, hi - lo, dst + (lo - ow));
      }
      std::fill(dst + (hi - ow), dst + len, 0.0f);
    }
    dst += len;
    count -= len;
    ow = 0;
    ++oh;
  }
}

// GEMM packers reading the patch matrix of image x without forming it: as B (forward: K = patch
// rows, N = output positions) and as A (backward weights: M = patch rows, K = positions).
void pack_b_patches(const Conv2dShape& s, const float* x, int64_t p0, int64_t j0, int64_t kc,
                    int64_t nc, int64_t NR, float* bp) {
  // One long run per patch row (few calls, long copies), then dealt out to the NR-wide panels.
  std::vector<float>& run = pack_buffers().row;
  const int64_t padded = (nc + NR - 1) / NR * NR;
  std::fill(run.begin() + nc, run.begin() + padded, 0.0f);
  for (int64_t p = 0; p < kc; ++p) {
    patch_row(s, x, p0 + p, j0, nc, run.data());
    for (int64_t q = 0; q < padded; q += NR)
      std::memcpy(bp + q * kc + p * NR, run.data() + q, static_cast<size_t>(NR) * sizeof(float));
  }
}

// B = colsᵀ (K = output positions, N = patch rows), for dW = dy · colsᵀ.
void pack_bt_patches(const Conv2dShape& s, const float* x, int64_t p0, int64_t j0, int64_t kc,
                     int64_t nc, int64_t NR, float* bp) {
  float runs[8][kGemmKC];
  const float* rows[8] = {runs[0], runs[1], runs[2], runs[3], runs[4], runs[5], runs[6], runs[7]};
  for (int64_t q = 0; q < nc; q += NR) {
    const int64_t cols = std::min(NR, nc - q);
    float* panel = bp + q * kc;
    if (cols < NR) std::fill_n(panel, kc * NR, 0.0f);
    for (int64_t j = 0; j < cols; j += 8) {
      const int64_t n = std::min<int64_t>(8, cols - j);
      for (int64_t r = 0; r < n; ++r) patch_row(s, x, j0 + q + j + r, p0, kc, runs[r]);
      interleave_rows(rows, n, kc, panel + j, NR);
    }
  }
}

void pack_a_patches(const Conv2dShape& s, const float* x, int64_t i0, int64_t p0, int64_t mc,
                    int64_t kc, int64_t MR, float* ap) {
  float runs[8][kGemmKC];
  const float* rows[8] = {runs[0], runs[1], runs[2], runs[3], runs[4], runs[5], runs[6], runs[7]};
  for (int64_t q = 0; q < mc; q += MR) {
    const int64_t count = std::min(MR, mc - q);
    float* panel = ap + q * kc;
    if (count < MR) std::fill_n(panel, kc * MR, 0.0f);
    for (int64_t i = 0; i < count; i += 8) {
      const int64_t n = std::min<int64_t>(8, count - i);
      for (int64_t r = 0; r < n; ++r) patch_row(s, x, i0 + q + i + r, p0, kc, runs[r]);
      interleave_rows(rows, n, kc, panel + i, MR);
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

// Per-thread slices of the workspace: dcols for backward data, then the partial dWᵀ and db of
// backward weights.
struct Slices {
  int64_t cols, dw, db;
  int64_t per_thread() const { return cols + dw + db; }
};
Slices slices(const Conv2dShape& s) {
  return {cols_is_input(s) ? 0 : patch_size(s) * s.OH() * s.OW(), s.OC * patch_size(s), s.OC};
}

// With fewer images than threads, blocks of an image's product (blocks_per_item) are at least
// this many rows or columns long.
constexpr int64_t kMinBlock = 32;

}  // namespace

int64_t conv2d_im2col_workspace_size(const Conv2dShape& s, int threads) {
  return slices(s).per_thread() * threads;
}

template <Precision kPrecision>
void conv2d_im2col_forward(const Context& ctx, const Conv2dShape& s, const float* x, const float* w,
                           const float* b, float* y, float* workspace) {
  (void)workspace;  // the patch matrix is packed straight from the image
  const int64_t P = patch_size(s), OHW = s.OH() * s.OW();
  // Blocks of an image: of output positions, each packing all of W (plain copies), unless there
  // are many more output channels than positions; then of output channels, each gathering the
  // whole patch matrix (a costlier copy per element: bench_kernels 2 1 on 8x8 maps, 128
  // channels, ran 94-103 GFLOP/s split by channels, 124-130 by positions).
  const bool by_rows = s.OC >= 4 * OHW;
  const int64_t blocks = blocks_per_item(ctx, s.N, (by_rows ? s.OC : OHW) / kMinBlock);
  const KernelInfo& kernel = gemm_kernel();
  parallel_for(ctx, 0, s.N * blocks, [&](int64_t lo, int64_t hi, int) {
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t n = task / blocks;
      const Block rows = by_rows ? block_of(s.OC, blocks, task % blocks, kernel.MR)
                                 : Block{0, s.OC};
      const Block cols = by_rows ? Block{0, OHW} : block_of(OHW, blocks, task % blocks, kernel.NR);
      const float* xn = x + n * s.IC * s.IH * s.IW;
      float* yn = y + n * s.OC * OHW + rows.lo * OHW + cols.lo;
      if (b)
        for (int64_t oc = rows.lo; oc < rows.hi; ++oc)
          std::fill_n(yn + (oc - rows.lo) * OHW, cols.hi - cols.lo, b[oc]);
      gemm_blocked(
          rows.hi - rows.lo, cols.hi - cols.lo, P,
          [&](int64_t i0, int64_t p0, int64_t mc, int64_t kc, int64_t MR, float* ap) {
            pack_a_matrix(w, P, false, rows.lo + i0, p0, mc, kc, MR, ap);
          },
          [&](int64_t p0, int64_t j0, int64_t kc, int64_t nc, int64_t NR, float* bp) {
            pack_b_patches(s, xn, p0, cols.lo + j0, kc, nc, NR, bp);
          },
          b != nullptr, yn, OHW, kPrecision);
    }
  });
}

template <Precision kPrecision>
void conv2d_im2col_backward_data(const Context& ctx, const Conv2dShape& s, const float* w,
                                 const float* dy, float* dx, float* workspace, bool accumulate) {
  const int64_t P = patch_size(s), OHW = s.OH() * s.OW();
  const Slices sl = slices(s);
  // Blocks of an image: of input channels (whole groups of KH·KW patch rows), whose col2im
  // writes only their own planes of dx.
  const int64_t taps = s.KH * s.KW, plane = s.IH * s.IW;
  const int64_t blocks = blocks_per_item(ctx, s.N, s.IC / kMinBlock);
  parallel_for(ctx, 0, s.N * blocks, [&](int64_t lo, int64_t hi, int thread) {
    float* dcols = workspace + thread * sl.per_thread();
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t n = task / blocks;
      const Block channels = block_of(s.IC, blocks, task % blocks, 1);
      const int64_t rows = (channels.hi - channels.lo) * taps;
      const float* wt = w + channels.lo * taps;  // Wᵀ's rows for these channels: W's columns
      const float* dyn = dy + n * s.OC * OHW;
      float* dxn = dx + n * s.IC * plane + channels.lo * plane;
      if (cols_is_input(s)) {  // dcols is dx itself: the product goes straight into it
        sgemm(true, false, rows, OHW, s.OC, wt, P, dyn, OHW, accumulate, dxn, OHW, kPrecision);
        continue;
      }
      sgemm(true, false, rows, OHW, s.OC, wt, P, dyn, OHW, false, dcols, OHW, kPrecision);
      // Windows overlap (or skip pixels, for stride > kernel), so col2im adds: an assigned
      // image starts at zero, cleared here while it is about to be in cache anyway.
      if (!accumulate) std::fill_n(dxn, (channels.hi - channels.lo) * plane, 0.0f);
      Conv2dShape part = s;
      part.IC = channels.hi - channels.lo;
      col2im_add(part, dcols, dxn);
    }
  });
}

template <Precision kPrecision>
void conv2d_im2col_backward_weights(const Context& ctx, const Conv2dShape& s, const float* x,
                                    const float* dy, float* dw, float* db, float* workspace) {
  const int64_t P = patch_size(s), OHW = s.OH() * s.OW();
  const Slices sl = slices(s);
  const int threads = static_cast<int>(std::min<int64_t>(ctx.num_threads(), s.N));
  // Orientation: the GEMM's N dimension should fill the micro-kernel's NR-wide tiles, so dWᵀ
  // (N = OC) when there are enough output channels, else dW (N = P).
  const bool transposed = s.OC >= gemm_kernel().NR;
  parallel_for(ctx, 0, s.N, [&](int64_t lo, int64_t hi, int thread) {
    float* dw_part = workspace + thread * sl.per_thread() + sl.cols;  // dWᵀ (P × OC) or dW
    float* db_part = dw_part + sl.dw;
    std::fill_n(dw_part, sl.dw + sl.db, 0.0f);
    for (int64_t n = lo; n < hi; ++n) {
      const float* xn = x + n * s.IC * s.IH * s.IW;
      const float* dyn = dy + n * s.OC * OHW;
      if (transposed) {
        // dWᵀ (P × OC) += cols_n (P × OHW) · dy_nᵀ (OHW × OC); dy_n is stored OC × OHW.
        gemm_blocked(
            P, s.OC, OHW,
            [&](int64_t i0, int64_t p0, int64_t mc, int64_t kc, int64_t MR, float* ap) {
              pack_a_patches(s, xn, i0, p0, mc, kc, MR, ap);
            },
            [&](int64_t p0, int64_t j0, int64_t kc, int64_t nc, int64_t NR, float* bp) {
              pack_b_matrix(dyn, OHW, true, p0, j0, kc, nc, NR, bp);
            },
            true, dw_part, s.OC, kPrecision);
      } else {
        // dW (OC × P) += dy_n (OC × OHW) · cols_nᵀ (OHW × P).
        gemm_blocked(
            s.OC, P, OHW,
            [&](int64_t i0, int64_t p0, int64_t mc, int64_t kc, int64_t MR, float* ap) {
              pack_a_matrix(dyn, OHW, false, i0, p0, mc, kc, MR, ap);
            },
            [&](int64_t p0, int64_t j0, int64_t kc, int64_t nc, int64_t NR, float* bp) {
              pack_bt_patches(s, xn, p0, j0, kc, nc, NR, bp);
            },
            true, dw_part, P, kPrecision);
      }
      if (db)
        for (int64_t oc = 0; oc < s.OC; ++oc) {
          float sum = 0.0f;
          for (int64_t i = 0; i < OHW; ++i) sum += dyn[oc * OHW + i];
          db_part[oc] += sum;
        }
    }
  });
  // Fixed-order reduction of the partial sums (transposing dWᵀ back to dW (OC × P)).
  for (int t = 0; t < threads; ++t) {
    const float* part = workspace + t * sl.per_thread() + sl.cols;
    if (transposed) {
      for (int64_t oc = 0; oc < s.OC; ++oc)
        for (int64_t p = 0; p < P; ++p) dw[oc * P + p] += part[p * s.OC + oc];
    } else {
      for (int64_t i = 0; i < sl.dw; ++i) dw[i] += part[i];
    }
    if (db)
      for (int64_t oc = 0; oc < s.OC; ++oc) db[oc] += part[sl.dw + oc];
  }
}

#define CONVNET_IM2COL(kPrecision)                                                            \
  template void conv2d_im2col_forward<kPrecision>(const Context&, const Conv2dShape&,           \
                                                  const float*, const float*, const float*,    \
                                                  float*, float*);                             \
  template void conv2d_im2col_backward_data<kPrecision>(const Context&, const Conv2dShape&,     \
                                                        const float*, const float*, float*,    \
                                                        float*, bool);                         \
  template void conv2d_im2col_backward_weights<kPrecision>(const Context&, const Conv2dShape&,  \
                                                           const float*, const float*, float*, \
                                                           float*, float*);
CONVNET_IM2COL(Precision::Fp32)
CONVNET_IM2COL(Precision::Bf16)
#undef CONVNET_IM2COL

}  // namespace convnet::ops::cpu
