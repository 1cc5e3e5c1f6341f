// Direct convolution for stride 1 (AVX-512): no patch matrix at all. Each image is copied once
// into a zero-padded buffer of width IWp = IW + 2·PW; in that buffer the input an output
// position (oh, ow) reads for tap (kh, kw) sits at a fixed offset kh·DH·IWp + kw·DW from
// position oh·IWp + ow, so for a tile of 32 consecutive positions every (tap, channel) row of the
// GEMM's B operand is a contiguous run of the buffer, read in place:
//   Yp[oc, j] = Σ_{t=(kh,kw)} Σ_ic W[oc, ic, kh, kw] · xpad[ic, j + offset(t)],  j = oh·IWp + ow
// Columns ow >= OW of Yp are computed and dropped (the price of contiguity, IWp/OW - 1).
// Backward data with stride 1 is the same computation on dy with the kernel flipped and the
// channels swapped (see backward_data_shape in conv2d.cpp), so both use this file.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "convnet/context.hpp"
#include "ops/cpu/gemm.hpp"

namespace convnet::ops::cpu {
namespace {

constexpr int64_t MR = 8, NR = 32;  // the AVX-512 tile: 8 output channels × 32 positions
// Input channels per pass over a tile: 16 channels × taps rows of 32 floats (18 KB for 3x3) stay
// in L1 while every block of 8 output channels reads them.
constexpr int64_t ICB = 16;
// Kernels up to 8x8 taps (larger ones take the GEMM path), so tap offsets live on the stack.
constexpr int64_t kMaxTaps = 64;

int64_t padded_h(const Conv2dShape& s) { return s.IH + 2 * s.PH; }
int64_t padded_w(const Conv2dShape& s) { return s.IW + 2 * s.PW; }
int64_t taps(const Conv2dShape& s) { return s.KH * s.KW; }
int64_t packed_weights_size(const Conv2dShape& s) {
  return (s.OC + MR - 1) / MR * MR * taps(s) * s.IC;
}
// Reads past the end of the padded image by at most the largest tap offset plus a tile.
int64_t xpad_size(const Conv2dShape& s) {
  return s.IC * padded_h(s) * padded_w(s) + s.DH * (s.KH - 1) * padded_w(s) + s.DW * (s.KW - 1) +
         NR;
}
int64_t ypad_size(const Conv2dShape& s) { return s.OC * s.OH() * padded_w(s); }

// offset[t] of tap t = (kh, kw) in the padded buffer: kh·DH·IWp + kw·DW.
void tap_offsets(const Conv2dShape& s, int64_t* offset) {
  for (int64_t t = 0; t < taps(s); ++t)
    offset[t] = (t / s.KW) * s.DH * padded_w(s) + (t % s.KW) * s.DW;
}

// Copies image x (IC × IH × IW) into the interior of xpad; its border is left as it is (zero).
void copy_padded(const Conv2dShape& s, const float* x, float* xpad) {
  const int64_t IWp = padded_w(s), plane = padded_h(s) * IWp;
  for (int64_t ic = 0; ic < s.IC; ++ic)
    for (int64_t ih = 0; ih < s.IH; ++ih)
      std::memcpy(xpad + ic * plane + (ih + s.PH) * IWp + s.PW, x + (ic * s.IH + ih) * s.IW,
                  static_cast<size_t>(s.IW) * sizeof(float));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// C[0:mr, 0:nr] (+)= Σ_t Σ_ic ap[(t·IC + ic)·8 + i] · b[offset[t] + ic·ldb + j]
// The 16 accumulators are named variables: as an array inside the two-level loop, compilers
// kept them on the stack, which halved the speed.
__attribute__((target("avx512f"))) void direct_micro(const float* __restrict ap, int64_t ntaps,
                                                     int64_t IC, const int64_t* offsets,
                                                     const float* b, int64_t ldb, float* c,
                                                     int64_t ldc, int64_t mr, int64_t nr,
                                                     bool accumulate) {
  const __mmask16 m0 = nr >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32   ? 0xFFFF
                       : nr <= 16 ? 0
                                  : static_cast<__mmask16>((1u << (nr - 16)) - 1);
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00,
         c70 = c00, c71 = c00;
  const bool full = nr == 32;  // plain loads for whole tiles; masked ones only at the edge
  for (int64_t t = 0; t < ntaps; ++t) {
    const float* row = b + offsets[t];
    for (int64_t ic = 0; ic < IC; ++ic, ap += 8, row += ldb) {
      const __m512 b0 = full ? _mm512_loadu_ps(row) : _mm512_maskz_loadu_ps(m0, row);
      const __m512 b1 = full ? _mm512_loadu_ps(row + 16) : _mm512_maskz_loadu_ps(m1, row + 16);
      __m512 a = _mm512_set1_ps(ap[0]);
      c00 = _mm512_fmadd_ps(a, b0, c00), c01 = _mm512_fmadd_ps(a, b1, c01);
      a = _mm512_set1_ps(ap[1]);
      c10 = _mm512_fmadd_ps(a, b0, c10), c11 = _mm512_fmadd_ps(a, b1, c11);
      a = _mm512_set1_ps(ap[2]);
      c20 = _mm512_fmadd_ps(a, b0, c20), c21 = _mm512_fmadd_ps(a, b1, c21);
      a = _mm512_set1_ps(ap[3]);
      c30 = _mm512_fmadd_ps(a, b0, c30), c31 = _mm512_fmadd_ps(a, b1, c31);
      a = _mm512_set1_ps(ap[4]);
      c40 = _mm512_fmadd_ps(a, b0, c40), c41 = _mm512_fmadd_ps(a, b1, c41);
      a = _mm512_set1_ps(ap[5]);
      c50 = _mm512_fmadd_ps(a, b0, c50), c51 = _mm512_fmadd_ps(a, b1, c51);
      a = _mm512_set1_ps(ap[6]);
      c60 = _mm512_fmadd_ps(a, b0, c60), c61 = _mm512_fmadd_ps(a, b1, c61);
      a = _mm512_set1_ps(ap[7]);
      c70 = _mm512_fmadd_ps(a, b0, c70), c71 = _mm512_fmadd_ps(a, b1, c71);
    }
  }
  const __m512 acc[8][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                            {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
  for (int64_t i = 0; i < mr; ++i) {
    float* out = c + i * ldc;
    __m512 lo = acc[i][0], hi = acc[i][1];
    if (accumulate) {
      lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(m0, out));
      hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(m1, out + 16));
    }
    _mm512_mask_storeu_ps(out, m0, lo);
    _mm512_mask_storeu_ps(out + 16, m1, hi);
  }
}
// GCC 12 warns inside its own _mm512_reduce_add_ps (an intentionally undefined register half),
// a known false positive; the pragma keeps the build warning-free without hiding our code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// Weight gradients as dot products over positions, which are contiguous in both operands:
// dw[oc, col] += Σ_k dyp[oc, k] · xcol[col][k] for a 4×4 tile of (output channel, patch column),
// 16 vector accumulators, reduced to scalars at the end. No packing: rows are read in place.
// Sums over `images` consecutive images (rows advance by dy_step and x_step) before the
// horizontal sums, so those are paid once per group of images rather than once per image.
__attribute__((target("avx512f"))) void dot_tile_4x4(const float* const* dy_first,
                                                     const float* const* x_first, int64_t K,
                                                     int64_t images, int64_t dy_step,
                                                     int64_t x_step, int64_t rows, int64_t cols,
                                                     float* dw, int64_t ldw) {
  __m512 acc[4][4];
  for (auto& r : acc)
    for (auto& v : r) v = _mm512_setzero_ps();
  for (int64_t g = 0; g < images; ++g) {
    const float* dy_rows[4];
    const float* x_rows[4];
    for (int i = 0; i < 4; ++i) {
      dy_rows[i] = dy_first[i] + g * dy_step;
      x_rows[i] = x_first[i] + g * x_step;
    }
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      const __m512 d0 = _mm512_loadu_ps(dy_rows[0] + k), d1 = _mm512_loadu_ps(dy_rows[1] + k),
                   d2 = _mm512_loadu_ps(dy_rows[2] + k), d3 = _mm512_loadu_ps(dy_rows[3] + k);
      for (int c = 0; c < 4; ++c) {
        const __m512 xv = _mm512_loadu_ps(x_rows[c] + k);
        acc[0][c] = _mm512_fmadd_ps(d0, xv, acc[0][c]);
        acc[1][c] = _mm512_fmadd_ps(d1, xv, acc[1][c]);
        acc[2][c] = _mm512_fmadd_ps(d2, xv, acc[2][c]);
        acc[3][c] = _mm512_fmadd_ps(d3, xv, acc[3][c]);
      }
    }
    if (k < K) {
      const __mmask16 m = static_cast<__mmask16>((1u << (K - k)) - 1);
      __m512 d[4];
      for (int r = 0; r < 4; ++r) d[r] = _mm512_maskz_loadu_ps(m, dy_rows[r] + k);
      for (int c = 0; c < 4; ++c) {
        const __m512 xv = _mm512_maskz_loadu_ps(m, x_rows[c] + k);
        for (int r = 0; r < 4; ++r) acc[r][c] = _mm512_fmadd_ps(d[r], xv, acc[r][c]);
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dw[r * ldw + c] += _mm512_reduce_add_ps(acc[r][c]);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#define CONVNET_HAVE_DIRECT 1
#endif

}  // namespace

bool conv2d_direct_supported(const Conv2dShape& s) {
#ifdef CONVNET_HAVE_DIRECT
  if (s.SH != 1 || s.SW != 1 || taps(s) > kMaxTaps ||
      std::strcmp(gemm_kernel().name, "avx512") != 0)
    return false;
  // Useful fraction of the computed positions: padding columns and the last partial tile are
  // waste. Below 70% (small images with wide padding) the packed GEMM wins when patches are
  // long enough to amortise its packing (measured with bench_kernels: an 8x8 image with 64
  // channels is faster through the GEMM, LeNet's 10x10 with 6 channels is not).
  const int64_t positions = s.OH() * padded_w(s);
  const double useful =
      static_cast<double>(s.OH() * s.OW()) / static_cast<double>((positions + NR - 1) / NR * NR);
  return useful >= 0.7 || s.IC * s.KH * s.KW < 256;
#else
  (void)s;
  return false;
#endif
}

int64_t conv2d_direct_workspace_size(const Conv2dShape& s, int threads) {
  return packed_weights_size(s) + threads * (xpad_size(s) + ypad_size(s));
}

void conv2d_direct(const Context& ctx, const Conv2dShape& s, const float* x, const float* w,
                   bool flip_swap, const float* b, float* y, bool accumulate, float* workspace) {
#ifdef CONVNET_HAVE_DIRECT
  const int64_t IHp = padded_h(s), IWp = padded_w(s), OH = s.OH(), OW = s.OW();
  const int64_t T = taps(s), plane = IHp * IWp, positions = OH * IWp;
  // Pack the weights once for all images, in the order the micro-kernel reads them: for output
  // channel block q, input-channel chunk c, tap t, channel ic in the chunk, the 8 channels i.
  // flip_swap: the layer's weights are stored (IC, OC, KH, KW) (this shape's channels swapped)
  // and used flipped in space; that turns backward data into this forward pass.
  float* packed = workspace;
  float* next = packed;
  for (int64_t q = 0; q < s.OC; q += MR)
    for (int64_t c0 = 0; c0 < s.IC; c0 += ICB)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t ic = c0; ic < std::min(c0 + ICB, s.IC); ++ic)
          for (int64_t i = 0; i < MR; ++i) {
            const int64_t oc = q + i, kh = t / s.KW, kw = t % s.KW;
            float v = 0.0f;
            if (oc < s.OC)
              v = flip_swap
                      ? w[((ic * s.OC + oc) * s.KH + (s.KH - 1 - kh)) * s.KW + (s.KW - 1 - kw)]
                      : w[((oc * s.IC + ic) * s.KH + kh) * s.KW + kw];
            *next++ = v;
          }
  int64_t offset[kMaxTaps];
  tap_offsets(s, offset);

  const int64_t per_thread = xpad_size(s) + ypad_size(s);
  parallel_for(ctx, 0, s.N, [&](int64_t lo, int64_t hi, int thread) {
    float* xpad = workspace + packed_weights_size(s) + thread * per_thread;
    float* ypad = xpad + xpad_size(s);
    std::fill_n(xpad, xpad_size(s), 0.0f);  // borders and slack stay zero for every image
    for (int64_t n = lo; n < hi; ++n) {
      const float* xn = x + n * s.IC * s.IH * s.IW;
      copy_padded(s, xn, xpad);
      for (int64_t j = 0; j < positions; j += NR)
        for (int64_t c0 = 0; c0 < s.IC; c0 += ICB)
          for (int64_t q = 0; q < s.OC; q += MR)
            direct_micro(packed + (q * s.IC + c0 * MR) * T, T, std::min(ICB, s.IC - c0), offset,
                         xpad + c0 * plane + j, plane, ypad + q * positions + j, positions,
                         std::min(MR, s.OC - q), std::min(NR, positions - j), c0 > 0);
      // Drop the padding columns: y (=, + bias) or dx (+=).
      float* yn = y + n * s.OC * OH * OW;
      for (int64_t oc = 0; oc < s.OC; ++oc) {
        const float bias = b ? b[oc] : 0.0f;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const float* src = ypad + oc * positions + oh * IWp;
          float* dst = yn + (oc * OH + oh) * OW;
          if (accumulate) {
            for (int64_t ow = 0; ow < OW; ++ow) dst[ow] += src[ow];
          } else {
            for (int64_t ow = 0; ow < OW; ++ow) dst[ow] = src[ow] + bias;
          }
        }
      }
    }
  });
#else
  (void)s, (void)x, (void)w, (void)flip_swap, (void)b, (void)y, (void)accumulate, (void)workspace;
#endif
}

// Images whose padded copies are summed together before each tile's horizontal sums.
constexpr int64_t kImageGroup = 8;

bool conv2d_direct_backward_weights_supported(const Conv2dShape& s) {
  return conv2d_direct_supported(s);
}

int64_t conv2d_direct_backward_weights_workspace_size(const Conv2dShape& s, int threads) {
  const int64_t P = s.IC * taps(s);
  return threads * (kImageGroup * (xpad_size(s) + ypad_size(s)) + s.OC * P + s.OC);
}

void conv2d_direct_backward_weights(const Context& ctx, const Conv2dShape& s, const float* x,
                                    const float* dy, float* dw, float* db, float* workspace) {
#ifdef CONVNET_HAVE_DIRECT
  const int64_t IHp = padded_h(s), IWp = padded_w(s), OH = s.OH(), OW = s.OW();
  const int64_t T = taps(s), plane = IHp * IWp, positions = OH * IWp, P = s.IC * T;
  int64_t offset[kMaxTaps];
  tap_offsets(s, offset);
  const int64_t image_floats = xpad_size(s) + ypad_size(s);  // xpad then dyp, per image
  const int64_t per_thread = kImageGroup * image_floats + s.OC * P + s.OC;
  const int threads = static_cast<int>(std::min<int64_t>(ctx.num_threads(), s.N));
  parallel_for(ctx, 0, s.N, [&](int64_t lo, int64_t hi, int thread) {
    float* group = workspace + thread * per_thread;
    float* dw_part = group + kImageGroup * image_floats;  // (OC × P)
    float* db_part = dw_part + s.OC * P;
    std::fill_n(workspace + thread * per_thread, per_thread, 0.0f);
    for (int64_t n0 = lo; n0 < hi; n0 += kImageGroup) {
      const int64_t images = std::min(kImageGroup, hi - n0);
      for (int64_t g = 0; g < images; ++g) {
        float* xpad = group + g * image_floats;
        float* dyp = xpad + xpad_size(s);  // dy with rows widened to IWp, zeros beyond OW
        const float* xn = x + (n0 + g) * s.IC * s.IH * s.IW;
        const float* dyn = dy + (n0 + g) * s.OC * OH * OW;
        copy_padded(s, xn, xpad);
        for (int64_t oc = 0; oc < s.OC; ++oc) {
          float sum = 0.0f;
          for (int64_t oh = 0; oh < OH; ++oh) {
            const float* src = dyn + (oc * OH + oh) * OW;
            std::memcpy(dyp + oc * positions + oh * IWp, src,
                        static_cast<size_t>(OW) * sizeof(float));
            for (int64_t ow = 0; ow < OW; ++ow) sum += src[ow];
          }
          db_part[oc] += sum;
        }
      }
      // Patch column (ic, t) over positions j is xpad[ic, j + offset(t)]: a row read in place.
      const float* xpad0 = group;
      const float* dyp0 = group + xpad_size(s);
      for (int64_t oc = 0; oc < s.OC; oc += 4) {
        const int64_t rows = std::min<int64_t>(4, s.OC - oc);
        const float* dy_rows[4];
        for (int64_t r = 0; r < 4; ++r) dy_rows[r] = dyp0 + std::min(oc + r, s.OC - 1) * positions;
        for (int64_t col = 0; col < P; col += 4) {
          const int64_t cols = std::min<int64_t>(4, P - col);
          const float* x_rows[4];
          for (int64_t c = 0; c < 4; ++c) {
            const int64_t pc = std::min(col + c, P - 1), ic = pc / T, t = pc % T;
            x_rows[c] = xpad0 + ic * plane + offset[t];
          }
          dot_tile_4x4(dy_rows, x_rows, positions, images, image_floats, image_floats, rows, cols,
                       dw_part + oc * P + col, P);
        }
      }
    }
  });
  // Fixed-order reduction of the per-thread partial sums.
  for (int t = 0; t < threads; ++t) {
    const float* dw_part = workspace + t * per_thread + kImageGroup * image_floats;
    for (int64_t i = 0; i < s.OC * P; ++i) dw[i] += dw_part[i];
    if (db)
      for (int64_t oc = 0; oc < s.OC; ++oc) db[oc] += dw_part[s.OC * P + oc];
  }
#else
  (void)s, (void)x, (void)dy, (void)dw, (void)db, (void)workspace;
#endif
}

}  // namespace convnet::ops::cpu
