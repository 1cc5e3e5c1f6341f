// Winograd convolution F(2x2, 3x3) for 3x3 kernels with stride 1 and dilation 1 (AVX-512).
//
// A 2x2 block of outputs of a 3x3 correlation needs a 4x4 block d of the input. Winograd's
// minimal filtering algorithm computes it with 16 multiplications instead of 36:
//   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
//   Bᵀ = | 1  0 -1  0 |   G = | 1    0    0   |   Aᵀ = | 1  1  1  0 |
//        | 0  1  1  0 |       | 1/2  1/2  1/2 |        | 0  1 -1 -1 |
//        | 0 -1  1  0 |       | 1/2 -1/2  1/2 |
//        | 0  1  0 -1 |       | 0    0    1   |
// Summed over input channels, each of the 16 element
// positions ξ of the transformed tiles is an independent matrix product:
//   M[ξ][oc, tile] = Σ_ic U[ξ][oc, ic] · V[ξ][ic, tile],  U = G g Gᵀ,  V = Bᵀ d B
// which is 2.25x fewer multiplications than direct convolution, computed by the GEMM
// micro-kernel. The transforms are additions only (and the 1/2s of G, applied to weights once).
//
// Work is split into chunks of whole tile rows (a tile row: one image, one pair of output
// rows) sized so that a chunk's V and M stay in L2. Per chunk: transform the input tiles straight
// from the NCHW image into V (already in the micro-kernel's packed panel layout), run the 16
// products, transform M back into 2x2 output blocks. Sixteen tiles of one tile row share each
// vector: the 4 input columns a row of tiles reads are the even and odd elements of the row,
// deinterleaved with permutes; borders and padding are masked loads, so nothing is copied.
//
// Backward data of a stride-1 convolution is a stride-1 convolution of dy by the flipped,
// channel-swapped kernel (see backward_data_shape in conv2d.cpp), so the same code serves both.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "convnet/context.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/cpu/gemm.hpp"
#include "ops/cpu/winograd_common.hpp"

namespace convnet::ops::cpu {
namespace {

constexpr int64_t MR = 8, NR = 32;  // the AVX-512 micro-kernel's tile
constexpr int64_t kXi = 16;         // element positions of a 4x4 transformed tile

// How the output is cut into tiles and chunks.
struct Plan {
  int64_t th, tw;        // tile rows and tiles per row: ceil(OH/2), ceil(OW/2)
  int64_t units;         // tile rows in the batch: N · th
  int64_t rows;          // tile rows per chunk
  int64_t tiles;         // tiles per chunk (rows · tw), the GEMM's N
  int64_t tiles_padded;  // rounded up to whole panels of NR
  int64_t OCp;           // output channels rounded up to MR
};

// target_floats: how many floats a chunk's buffers may hold, 16 rows of `channels` floats per
// tile (forward: V and one block of M; weight gradients: V and U).
Plan make_plan(const Conv2dShape& s, int64_t target_floats, int64_t channels) {
  Plan p{};
  p.th = (s.OH() + 1) / 2;
  p.tw = (s.OW() + 1) / 2;
  p.units = s.N * p.th;
  const int64_t target = std::max<int64_t>(NR, target_floats / (kXi * channels));
  p.rows = std::clamp<int64_t>((target + p.tw - 1) / p.tw, 1, p.units);
  p.tiles = p.rows * p.tw;
  p.tiles_padded = (p.tiles + NR - 1) / NR * NR;
  p.OCp = (s.OC + MR - 1) / MR * MR;
  return p;
}

int64_t packed_u_size(const Conv2dShape& s, const Plan& p) { return kXi * p.OCp * s.IC; }
// Forward: V for a chunk and M for one block of MR output channels, within ~512 KB of L2.
Plan forward_plan(const Conv2dShape& s) { return make_plan(s, 128 * 1024, s.IC + MR); }
int64_t per_thread_size(const Conv2dShape& s, const Plan& p) {
  return kXi * (s.IC + MR) * p.tiles_padded;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CONVNET_HAVE_WINOGRAD 1

// U[ξ] = G g Gᵀ for one (oc, ic) pair, written into the packed A panels the micro-kernel reads:
// up[ξ·OCp·IC + (oc/MR)·MR·IC + ic·MR + oc%MR].
void transform_weights(const Context& ctx, const Conv2dShape& s, const Plan& p, const float* w,
                       bool flip_swap, float* up) {
  parallel_for(ctx, 0, p.OCp, [&](int64_t lo, int64_t hi, int) {
    for (int64_t oc = lo; oc < hi; ++oc)
      for (int64_t ic = 0; ic < s.IC; ++ic) {
        float g[3][3] = {};
        if (oc < s.OC)
          for (int kh = 0; kh < 3; ++kh)
            for (int kw = 0; kw < 3; ++kw)
              g[kh][kw] = flip_swap ? w[((ic * s.OC + oc) * 3 + (2 - kh)) * 3 + (2 - kw)]
                                    : w[((oc * s.IC + ic) * 3 + kh) * 3 + kw];
        float gg[4][3];  // G g
        for (int c = 0; c < 3; ++c) {
          gg[0][c] = g[0][c];
          gg[1][c] = 0.5f * (g[0][c] + g[1][c] + g[2][c]);
          gg[2][c] = 0.5f * (g[0][c] - g[1][c] + g[2][c]);
          gg[3][c] = g[2][c];
        }
        const int64_t at = (oc / MR) * MR * s.IC + ic * MR + oc % MR;
        for (int r = 0; r < 4; ++r) {  // (G g) Gᵀ
          const float u[4] = {gg[r][0], 0.5f * (gg[r][0] + gg[r][1] + gg[r][2]),
                              0.5f * (gg[r][0] - gg[r][1] + gg[r][2]), gg[r][2]};
          for (int c = 0; c < 4; ++c) up[(r * 4 + c) * p.OCp * s.IC + at] = u[c];
        }
      }
  });
}

// Stores `len` lanes of v as tiles j0.. of one channel row of packed panels (panel stride
// NR·IC floats), splitting across a panel boundary when the run crosses one.
__attribute__((target("avx512f"))) inline void store_tiles(float* panels, int64_t IC, int64_t ic,
                                                           int64_t j0, int64_t len, __m512 v) {
  const int64_t q = j0 / NR, o = j0 % NR;
  float* at = panels + q * NR * IC + ic * NR + o;
  if (o + len <= NR) {
    _mm512_mask_storeu_ps(at, lanes_below(len), v);
    return;
  }
  const int64_t first = NR - o;
  _mm512_mask_storeu_ps(at, lanes_below(first), v);
  const __m512i shift =
      _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                       _mm512_set1_epi32(static_cast<int>(first)));
  _mm512_mask_storeu_ps(panels + (q + 1) * NR * IC + ic * NR, lanes_below(len - first),
                        _mm512_maskz_permutexvar_ps(static_cast<__mmask16>(0xFFFF), shift, v));
}

// Where transformed tiles go: the micro-kernel's packed panels (forward: V[ξ] is IC rows of
// tiles, cut into panels of NR tiles; kPacked), or plain rows (weight gradients: V[ξ][ic] is a
// row of `ld` tiles).
struct TileLayout {
  int64_t ld;         // tiles per row (packed: tiles_padded)
  int64_t xi_stride;  // floats between V[ξ] and V[ξ+1]
};

// V = Bᵀ d B for the tiles of chunk rows [u0, u0 + rows), every input channel. Channels outside,
// tile rows inside: consecutive tile rows read overlapping, consecutive image rows.
template <bool kPacked>
__attribute__((target("avx512f"))) void transform_input(const Conv2dShape& s, const Plan& p,
                                                        const float* x, int64_t u0, int64_t rows,
                                                        const TileLayout& layout, float* vp) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const int64_t xi_stride = layout.xi_stride, ld = layout.ld;
  // Locals, not s.IC and p.tw: the intrinsic stores may alias anything, so fields read
  // through a reference would be reloaded after every store.
  const int64_t IC = s.IC, IH = s.IH, IW = s.IW, PH = s.PH, PW = s.PW, th = p.th, tw = p.tw;
  for (int64_t ic = 0; ic < IC; ++ic)
    for (int64_t u = 0; u < rows; ++u) {
      const int64_t n = (u0 + u) / th, ty = (u0 + u) % th;
      const float* plane = x + (n * IC + ic) * IH * IW;
      for (int64_t tx0 = 0; tx0 < tw; tx0 += 16) {
        const int64_t len = std::min<int64_t>(16, tw - tx0);
        const int64_t j0 = u * tw + tx0;
        // Input columns of lane l: x0 + 2l + {0,1,2,3}, from four 16-wide loads at x0, x0+16,
        // x0+2, x0+18 masked to the image.
        const int64_t x0 = 2 * tx0 - PW;
        const __mmask16 ma = inside(x0, IW), mb = inside(x0 + 16, IW),
                        mc = inside(x0 + 2, IW), md = inside(x0 + 18, IW);
        __m512 t[4][4];  // d B, row by row
        for (int r = 0; r < 4; ++r) {
          const int64_t ih = 2 * ty - PH + r;
          if (ih < 0 || ih >= IH) {
            for (auto& v : t[r]) v = _mm512_setzero_ps();
            continue;
          }
          // Pointer arithmetic from the row start; masked-off lanes are never read.
          const float* row = plane + ih * IW;
          const __m512 a = _mm512_maskz_loadu_ps(ma, row + x0);
          const __m512 b = _mm512_maskz_loadu_ps(mb, row + x0 + 16);
          const __m512 c = _mm512_maskz_loadu_ps(mc, row + x0 + 2);
          const __m512 d = _mm512_maskz_loadu_ps(md, row + x0 + 18);
          const __m512 d0 = _mm512_permutex2var_ps(a, even, b);
          const __m512 d1 = _mm512_permutex2var_ps(a, odd, b);
          const __m512 d2 = _mm512_permutex2var_ps(c, even, d);
          const __m512 d3 = _mm512_permutex2var_ps(c, odd, d);
          t[r][0] = _mm512_sub_ps(d0, d2);
          t[r][1] = _mm512_add_ps(d1, d2);
          t[r][2] = _mm512_sub_ps(d2, d1);
          t[r][3] = _mm512_sub_ps(d1, d3);
        }
        const __m512 v[4][4] = {// Bᵀ (d B)
                                {_mm512_sub_ps(t[0][0], t[2][0]), _mm512_sub_ps(t[0][1], t[2][1]),
                                 _mm512_sub_ps(t[0][2], t[2][2]), _mm512_sub_ps(t[0][3], t[2][3])},
                                {_mm512_add_ps(t[1][0], t[2][0]), _mm512_add_ps(t[1][1], t[2][1]),
                                 _mm512_add_ps(t[1][2], t[2][2]), _mm512_add_ps(t[1][3], t[2][3])},
                                {_mm512_sub_ps(t[2][0], t[1][0]), _mm512_sub_ps(t[2][1], t[1][1]),
                                 _mm512_sub_ps(t[2][2], t[1][2]), _mm512_sub_ps(t[2][3], t[1][3])},
                                {_mm512_sub_ps(t[1][0], t[3][0]), _mm512_sub_ps(t[1][1], t[3][1]),
                                 _mm512_sub_ps(t[1][2], t[3][2]), _mm512_sub_ps(t[1][3], t[3][3])}};
        if constexpr (kPacked) {
          for (int xi = 0; xi < 16; ++xi)
            store_tiles(vp + xi * xi_stride, IC, ic, j0, len, v[xi / 4][xi % 4]);
        } else {
          const __mmask16 mlen = lanes_below(len);
          float* at = vp + ic * ld + j0;
          for (int xi = 0; xi < 16; ++xi)
            _mm512_mask_storeu_ps(at + xi * xi_stride, mlen, v[xi / 4][xi % 4]);
        }
      }
    }
}

// Y = Aᵀ M A for the chunk's tiles and output channels [oc0, oc0 + mr), plus bias, stored (or
// added) into the NCHW output. M holds MR channels: mp[(ξ·MR + oc - oc0)·tiles_padded + tile].
__attribute__((target("avx512f"))) void transform_output(const Conv2dShape& s, const Plan& p,
                                                         const float* mp, int64_t oc0, int64_t mr,
                                                         int64_t u0, int64_t rows, const float* b,
                                                         float* y, bool accumulate) {
  // Interleave two 16-lane rows into 32 consecutive outputs: lo = a0 b0 a1 b1 ... a7 b7.
  const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_idx =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const int64_t OH = s.OH(), OW = s.OW();
  const int64_t xi_stride = MR * p.tiles_padded, ld = p.tiles_padded;
  for (int64_t oc = oc0; oc < oc0 + mr; ++oc)  // channels outside: output rows written in order
    for (int64_t u = 0; u < rows; ++u) {
      const int64_t n = (u0 + u) / p.th, ty = (u0 + u) % p.th;
      for (int64_t tx0 = 0; tx0 < p.tw; tx0 += 16) {
        const int64_t len = std::min<int64_t>(16, p.tw - tx0);
        const int64_t j0 = u * p.tw + tx0;
        const __mmask16 mlen = lanes_below(len);
        const int64_t ox = 2 * tx0;  // first output column
        const __mmask16 m_lo = lanes_below(OW - ox), m_hi = lanes_below(OW - ox - 16);
        const float* m = mp + (oc - oc0) * ld + j0;
        __m512 a[4][2];  // (M A) row by row: columns 0 and 1 of the 2x2 block
        for (int r = 0; r < 4; ++r) {
          const __m512 m0 = _mm512_maskz_loadu_ps(mlen, m + (r * 4 + 0) * xi_stride);
          const __m512 m1 = _mm512_maskz_loadu_ps(mlen, m + (r * 4 + 1) * xi_stride);
          const __m512 m2 = _mm512_maskz_loadu_ps(mlen, m + (r * 4 + 2) * xi_stride);
          const __m512 m3 = _mm512_maskz_loadu_ps(mlen, m + (r * 4 + 3) * xi_stride);
          a[r][0] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
          a[r][1] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
        }
        const __m512 bias = _mm512_set1_ps(b ? b[oc] : 0.0f);
        for (int r = 0; r < 2; ++r) {  // Aᵀ (M A): output row 2ty + r
          const int64_t oy = 2 * ty + r;
          if (oy >= OH) break;
          const __m512 y0 = r == 0 ? _mm512_add_ps(_mm512_add_ps(a[0][0], a[1][0]), a[2][0])
                                   : _mm512_sub_ps(_mm512_sub_ps(a[1][0], a[2][0]), a[3][0]);
          const __m512 y1 = r == 0 ? _mm512_add_ps(_mm512_add_ps(a[0][1], a[1][1]), a[2][1])
                                   : _mm512_sub_ps(_mm512_sub_ps(a[1][1], a[2][1]), a[3][1]);
          __m512 lo = _mm512_permutex2var_ps(y0, lo_idx, y1);
          __m512 hi = _mm512_permutex2var_ps(y0, hi_idx, y1);
          float* out = y + ((n * s.OC + oc) * OH + oy) * OW + ox;
          const __mmask16 mask_lo = static_cast<__mmask16>(m_lo & lanes_below(2 * len));
          const __mmask16 mask_hi = static_cast<__mmask16>(m_hi & lanes_below(2 * len - 16));
          if (accumulate) {
            lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(mask_lo, out));
            hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(mask_hi, out + 16));
          } else {
            lo = _mm512_add_ps(lo, bias);
            hi = _mm512_add_ps(hi, bias);
          }
          _mm512_mask_storeu_ps(out, mask_lo, lo);
          _mm512_mask_storeu_ps(out + 16, mask_hi, hi);
        }
      }
    }
}

// U = G' g G'ᵀ of the 2x2 blocks of dy for the tiles of chunk rows [u0, u0 + rows), every output
// channel, in plain rows of `layout.ld` tiles; also Σ dy per channel into db_vec (16 lanes each).
// Weight gradients are a correlation of the input with dy: per tile, F(3x3, 2x2) gives the 3x3
// block of dW from the 4x4 input tile and the 2x2 dy block,
//   dW_tile = A'ᵀ [ (G' dy G'ᵀ) ⊙ (B'ᵀ d B') ] A'
//   B'ᵀ = | 1  0 -1  0 |   G' = | 1    0   |   A'ᵀ = | 1  1  1  0 |
//         | 0  1  1  0 |        | 1/2  1/2 |         | 0  1 -1  0 |
//         | 0 -1  1  0 |        | 1/2 -1/2 |         | 0  1  1  1 |
//         | 0 -1  0  1 |        | 0    1   |
// B' is the forward B with its last row negated, so the forward input transform is reused and
// the sign moves into G' (last row (0, -1) here). Summed over tiles, each ξ is a GEMM with the
// tiles as its reduction: S[ξ][oc, ic] = Σ_tile U[ξ][oc, tile] · V[ξ][ic, tile].
__attribute__((target("avx512f"))) void transform_grad_output(const Conv2dShape& s, const Plan& p,
                                                              const float* dy, int64_t u0,
                                                              int64_t rows,
                                                              const TileLayout& layout, float* up,
                                                              float* db_vec) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 half = _mm512_set1_ps(0.5f);
  const int64_t OH = s.OH(), OW = s.OW(), xi_stride = layout.xi_stride, ld = layout.ld;
  for (int64_t oc = 0; oc < s.OC; ++oc)  // channels outside: dy rows read in order
    for (int64_t u = 0; u < rows; ++u) {
      const int64_t n = (u0 + u) / p.th, ty = (u0 + u) % p.th;
      for (int64_t tx0 = 0; tx0 < p.tw; tx0 += 16) {
        const int64_t len = std::min<int64_t>(16, p.tw - tx0);
        const int64_t j0 = u * p.tw + tx0, ox = 2 * tx0;
        // Columns past OW (and so every lane past len) load as zero: they add nothing.
        const __mmask16 m_lo = lanes_below(OW - ox), m_hi = lanes_below(OW - ox - 16);
        __m512 h[2][4];  // dy G'ᵀ, row by row
        __m512 sum = _mm512_setzero_ps();
        for (int r = 0; r < 2; ++r) {
          const int64_t oy = 2 * ty + r;
          __m512 g0 = _mm512_setzero_ps(), g1 = g0;
          if (oy < OH) {
            const float* row = dy + ((n * s.OC + oc) * OH + oy) * OW + ox;
            const __m512 a = _mm512_maskz_loadu_ps(m_lo, row);
            const __m512 b = _mm512_maskz_loadu_ps(m_hi, row + 16);
            g0 = _mm512_permutex2var_ps(a, even, b);
            g1 = _mm512_permutex2var_ps(a, odd, b);
          }
          sum = _mm512_add_ps(sum, _mm512_add_ps(g0, g1));
          h[r][0] = g0;
          h[r][1] = _mm512_mul_ps(half, _mm512_add_ps(g0, g1));
          h[r][2] = _mm512_mul_ps(half, _mm512_sub_ps(g0, g1));
          h[r][3] = _mm512_sub_ps(_mm512_setzero_ps(), g1);
        }
        _mm512_storeu_ps(db_vec + oc * 16, _mm512_add_ps(_mm512_loadu_ps(db_vec + oc * 16), sum));
        const __mmask16 mlen = lanes_below(len);
        float* at = up + oc * ld + j0;
        for (int c = 0; c < 4; ++c) {  // G' (dy G'ᵀ)
          _mm512_mask_storeu_ps(at + (0 * 4 + c) * xi_stride, mlen, h[0][c]);
          _mm512_mask_storeu_ps(at + (1 * 4 + c) * xi_stride, mlen,
                                _mm512_mul_ps(half, _mm512_add_ps(h[0][c], h[1][c])));
          _mm512_mask_storeu_ps(at + (2 * 4 + c) * xi_stride, mlen,
                                _mm512_mul_ps(half, _mm512_sub_ps(h[0][c], h[1][c])));
          _mm512_mask_storeu_ps(at + (3 * 4 + c) * xi_stride, mlen,
                                _mm512_sub_ps(_mm512_setzero_ps(), h[1][c]));
        }
      }
    }
}

#endif

}  // namespace

bool conv2d_winograd_supported(const Conv2dShape& s) {
#ifdef CONVNET_HAVE_WINOGRAD
  return s.KH == 3 && s.KW == 3 && s.SH == 1 && s.SW == 1 && s.DH == 1 && s.DW == 1 && s.PH <= 2 &&
         s.PW <= 2 && s.OH() >= 1 && s.OW() >= 1 && std::strcmp(gemm_kernel().name, "avx512") == 0;
#else
  (void)s;
  return false;
#endif
}

int64_t conv2d_winograd_workspace_size(const Conv2dShape& s, int threads) {
  const Plan p = forward_plan(s);
  return packed_u_size(s, p) + threads * per_thread_size(s, p);
}

void conv2d_winograd(const Context& ctx, const Conv2dShape& s, const float* x, const float* w,
                     bool flip_swap, const float* b, float* y, bool accumulate, float* workspace) {
#ifdef CONVNET_HAVE_WINOGRAD
  const Plan p = forward_plan(s);
  float* up = workspace;
  transform_weights(ctx, s, p, w, flip_swap, up);
  const MicroKernel micro = gemm_kernel().micro;
  const int64_t chunks = (p.units + p.rows - 1) / p.rows;
  parallel_for(ctx, 0, chunks, [&](int64_t lo, int64_t hi, int thread) {
    float* vp = workspace + packed_u_size(s, p) + thread * per_thread_size(s, p);
    float* mp = vp + kXi * s.IC * p.tiles_padded;
    for (int64_t chunk = lo; chunk < hi; ++chunk) {
      const int64_t u0 = chunk * p.rows, rows = std::min(p.rows, p.units - u0);
      const int64_t tiles = rows * p.tw;
      // Lanes past the last tile of a panel feed only columns that are never stored, but
      // they must hold numbers: zero them once per chunk.
      if (tiles % NR != 0)
        for (int64_t xi = 0; xi < kXi; ++xi)
          for (int64_t ic = 0; ic < s.IC; ++ic)
            std::fill_n(vp + xi * s.IC * p.tiles_padded + (tiles / NR) * NR * s.IC + ic * NR, NR,
                        0.0f);
      transform_input<true>(s, p, x, u0, rows, {p.tiles_padded, s.IC * p.tiles_padded}, vp);
      // One block of MR output channels at a time: its M (16 × MR × tiles) is transformed
      // back while still in cache.
      for (int64_t oc0 = 0; oc0 < s.OC; oc0 += MR) {
        const int64_t mr = std::min(MR, s.OC - oc0);
        for (int64_t xi = 0; xi < kXi; ++xi) {
          const float* u_xi = up + xi * p.OCp * s.IC + oc0 * s.IC;
          const float* v_xi = vp + xi * s.IC * p.tiles_padded;
          float* m_xi = mp + xi * MR * p.tiles_padded;
          for (int64_t j = 0; j < tiles; j += NR)
            micro(s.IC, u_xi, v_xi + j * s.IC, m_xi + j, p.tiles_padded, mr,
                  std::min(NR, tiles - j), false);
        }
        transform_output(s, p, mp, oc0, mr, u0, rows, b, y, accumulate);
      }
    }
  });
#else
  (void)s, (void)x, (void)w, (void)flip_swap, (void)b, (void)y, (void)accumulate, (void)workspace;
#endif
}

namespace {
// Weight gradients: chunks of about 4 MB of U and V. The 16 products run one ξ at a time, so
// each works on 1/16 of that (256 KB, in L2), and the long rows amortise the horizontal sums
// (measured with bench_kernels: 128K-float chunks were slower than the direct kernel). V and U
// are plain rows padded to whole vectors; per thread, the transform-domain sums S (4×4 blocks
// of 16 lanes) and the bias lanes.
constexpr int64_t kBackwardChunkFloats = 1024 * 1024;
}  // namespace

int64_t conv2d_winograd_backward_weights_workspace_size(const Conv2dShape& s, int threads) {
  const Plan p = make_plan(s, kBackwardChunkFloats, s.IC + s.OC);
  return threads * weight_gradient_layout(s, kXi, (p.tiles + 15) / 16 * 16).per_thread;
}

void conv2d_winograd_backward_weights(const Context& ctx, const Conv2dShape& s, const float* x,
                                      const float* dy, float* dw, float* db, float* workspace,
                                      Precision precision) {
#ifdef CONVNET_HAVE_WINOGRAD
  const Plan p = make_plan(s, kBackwardChunkFloats, s.IC + s.OC);
  const WeightGradientLayout z = weight_gradient_layout(s, kXi, (p.tiles + 15) / 16 * 16);
  const int64_t chunks = (p.units + p.rows - 1) / p.rows;
  const int threads = static_cast<int>(std::min<int64_t>(ctx.num_threads(), chunks));
  parallel_for(ctx, 0, chunks, [&](int64_t lo, int64_t hi, int thread) {
    float* vp = workspace + thread * z.per_thread;
    float* up = vp + z.v;
    float* sums = up + z.u;
    float* db_vec = sums + z.s;
    std::fill_n(sums, z.s + z.db, 0.0f);
    for (int64_t chunk = lo; chunk < hi; ++chunk) {
      const int64_t u0 = chunk * p.rows, rows = std::min(p.rows, p.units - u0);
      const int64_t tiles = rows * p.tw;
      transform_input<false>(s, p, x, u0, rows, {z.ld, z.v_xi}, vp);
      transform_grad_output(s, p, dy, u0, rows, {z.ld, z.u_xi}, up, db_vec);
      transform_domain_products(s, z, vp, up, tiles, sums,
                                precision == Precision::Bf16 ? RowFormat::FloatToBf16
                                                             : RowFormat::Float);
    }
  });
  // Per-thread sums in a fixed order, then dW += A'ᵀ S A' per (oc, ic) and db += Σ lanes.
  static constexpr float AT[3][4] = {{1, 1, 1, 0}, {0, 1, -1, 0}, {0, 1, 1, 1}};
  finish_weight_gradients(ctx, s, z, workspace, threads, AT, dw, db);
#else
  (void)s, (void)x, (void)dy, (void)dw, (void)db, (void)workspace, (void)precision;
#endif
}

}  // namespace convnet::ops::cpu
