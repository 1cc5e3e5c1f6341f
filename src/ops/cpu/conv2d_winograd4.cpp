// Winograd convolution F(4x4, 3x3) for 3x3 kernels with stride 1 and dilation 1 (AVX-512).
//
// A 4x4 block of outputs of a 3x3 correlation needs a 6x6 block d of the input. With the
// interpolation points 0, ±1, ±2 and ∞ (Lavin & Gray 2016):
//   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
//   Bᵀ = | 4  0 -5  0  1  0 |   G = |  1/4    0     0   |   Aᵀ = | 1  1  1  1  1  0 |
//        | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6  |        | 0  1 -1  2 -2  0 |
//        | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6  |        | 0  1  1  4  4  0 |
//        | 0 -2 -1  2  1  0 |       |  1/24  1/12  1/6  |        | 0  1 -1  8 -8  1 |
//        | 0  2 -1 -2  1  0 |       |  1/24 -1/12  1/6  |
//        | 0  4  0 -5  0  1 |       |  0     0     1    |
// Summed over input channels, each of the 36 element positions ξ of the transformed tiles is an
// independent matrix product, M[ξ][oc, tile] = Σ_ic U[ξ][oc, ic] · V[ξ][ic, tile], run by the
// GEMM micro-kernel: 36 multiplications per 16 outputs and input channel where direct
// convolution needs 144 (4x fewer; F(2x2, 3x3) in conv2d_winograd.cpp saves 2.25x). The price is
// larger constants in the transforms, so larger rounding errors; the kernel tests bound them
// against the double-precision reference.
//
// Work is split into chunks of tiles sized so that a chunk's V and M stay in L2. Per chunk:
// transform the input tiles straight from the NCHW image into V (in the micro-kernel's packed
// panel layout), run the 36 products for every output channel, transform M back into 4x4 output
// blocks.
//
// Vector lanes: 16 tiles in 4 groups of 4; a group is two pairs of tiles, each pair two
// neighbours in one tile row (8 output columns, 10 input columns per row). A group's 16 lanes
// are loaded as two 8-lane halves, one per pair, each from its own rows, so maps 8 outputs wide
// (one pair per tile row) fill every lane. Tiles are numbered pair by pair (a tile row padded to
// whole pairs), so each vector of tiles is 16 consecutive columns of a packed panel.
//
// Backward data of a stride-1 convolution is a stride-1 convolution of dy by the flipped,
// channel-swapped kernel (see backward_data_shape in conv2d.cpp), so the same code serves both.
//
// Weight gradients are a correlation of the input with dy, F(3x3, 4x4) per tile: the same
// interpolation points give the same Bᵀ, so V is the forward's input transform, and the 4x4
// blocks of dy are transformed by G' (6x4; transform_grad_output). Summed over tiles, each ξ is a
// dot product per (oc, ic), and A'ᵀ (3x6) takes the sums back to the 3x3 gradient.
#include <immintrin.h>

#include <algorithm>

#include "convnet/context.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/cpu/gemm.hpp"
#include "ops/cpu/winograd_common.hpp"

namespace convnet::ops::cpu {
namespace {

constexpr int64_t MR = 8, NR = 32;  // the AVX-512 micro-kernel's tile
constexpr int64_t kXi = 36;         // element positions of a 6x6 transformed tile
constexpr int64_t kGroup = 4;       // tiles per group: two pairs
constexpr int64_t kPanelGroups = NR / kGroup;
// Forward: a chunk's V and M (36 rows of IC + OC floats per tile) within about 640 KB of L2.
constexpr int64_t kChunkFloats = 160 * 1024;
// Weight gradients: chunks of about 8 MB of V and U. The products run one ξ at a time, each
// over 1/36 of that (in L2), and long rows amortise the horizontal sums of the dot products.
constexpr int64_t kBackwardChunkFloats = 2 * 1024 * 1024;
// The most groups a chunk holds, so that its descriptors fit a fixed array on the stack.
constexpr int64_t kMaxGroups = 512;

struct Plan {
  int64_t th, tw;        // tile rows and tiles per row: ceil(OH/4), ceil(OW/4)
  int64_t row_pairs;     // pairs of tiles per tile row: ceil(tw/2)
  int64_t pairs;         // in the batch: N · th · row_pairs
  int64_t groups;        // ceil(pairs / 2)
  int64_t chunk_groups;  // per chunk: whole panels (forward) or vectors (weight gradients)
  int64_t tiles_padded;  // per chunk: chunk_groups · 4
  int64_t OCp;           // output channels rounded up to MR
};

// target_floats: how many floats a chunk's buffers may hold, 36 rows of `channels` floats per
// tile; chunks are whole multiples of `multiple` groups, and as many as a multiple of `threads`
// where that is possible, so that every thread gets the same work.
Plan make_plan(const Conv2dShape& s, int64_t target_floats, int64_t channels, int64_t multiple,
               int threads) {
  Plan p{};
  p.th = (s.OH() + 3) / 4;
  p.tw = (s.OW() + 3) / 4;
  p.row_pairs = (p.tw + 1) / 2;
  p.pairs = s.N * p.th * p.row_pairs;
  p.groups = (p.pairs + 1) / 2;
  p.OCp = (s.OC + MR - 1) / MR * MR;
  const auto round_up = [](int64_t a, int64_t b) { return (a + b - 1) / b * b; };
  const int64_t wanted =
      std::clamp<int64_t>(target_floats / (kXi * channels * kGroup), multiple, kMaxGroups);
  const int64_t chunks = round_up((p.groups + wanted - 1) / wanted, std::max(threads, 1));
  p.chunk_groups =
      std::min(round_up(std::max<int64_t>(1, (p.groups + chunks - 1) / chunks), multiple),
               kMaxGroups / multiple * multiple);
  p.tiles_padded = p.chunk_groups * kGroup;
  return p;
}
Plan forward_plan(const Conv2dShape& s, int threads) {
  return make_plan(s, kChunkFloats, s.IC + (s.OC + MR - 1) / MR * MR, kPanelGroups, threads);
}
Plan backward_plan(const Conv2dShape& s, int threads) {
  return make_plan(s, kBackwardChunkFloats, s.IC + s.OC, 4, threads);
}

// Packed U: ξ planes of OCp x IC, a cache line further apart than they need (xi_plane_stride).
int64_t u_stride(const Conv2dShape& s, const Plan& p) { return xi_plane_stride(p.OCp, s.IC); }
int64_t packed_u_size(const Conv2dShape& s, const Plan& p) { return kXi * u_stride(s, p); }
// Forward V and M: ξ planes a cache line further apart than their rows need (xi_plane_stride).
int64_t v_stride(const Conv2dShape& s, const Plan& p) {
  return xi_plane_stride(s.IC, p.tiles_padded);
}
int64_t m_stride(const Plan& p) { return xi_plane_stride(p.OCp, p.tiles_padded); }
int64_t v_size(const Conv2dShape& s, const Plan& p) { return kXi * v_stride(s, p); }
int64_t m_size(const Plan& p) { return kXi * m_stride(p); }
int64_t per_thread_size(const Conv2dShape& s, const Plan& p) { return v_size(s, p) + m_size(p); }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CONVNET_HAVE_WINOGRAD4 1

// GCC 12 warns inside its own shuffle and unpack intrinsics (an intentionally undefined source
// register), a known false positive; the pragma keeps the build warning-free.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// G applied to a column (a, b, c) of 3x3 kernels, 8 kernels at a time (one per lane):
//   (a/4, -(a+b+c)/6, -(a-b+c)/6, a/24 + b/12 + c/6, a/24 - b/12 + c/6, c),
// in double: U is rounded to float once, as accurate as the transform can be.
__attribute__((target("avx512f"))) inline void apply_g(const __m512d& a, const __m512d& b,
                                                       const __m512d& c, __m512d out[6]) {
  const __m512d twelfth = _mm512_set1_pd(1.0 / 12);
  const __m512d ac = _mm512_add_pd(a, c);
  const __m512d outer =
      _mm512_fmadd_pd(a, _mm512_set1_pd(1.0 / 24), _mm512_mul_pd(c, _mm512_set1_pd(1.0 / 6)));
  out[0] = _mm512_mul_pd(a, _mm512_set1_pd(0.25));
  out[1] = _mm512_mul_pd(_mm512_add_pd(ac, b), _mm512_set1_pd(-1.0 / 6));
  out[2] = _mm512_mul_pd(_mm512_sub_pd(ac, b), _mm512_set1_pd(-1.0 / 6));
  out[3] = _mm512_fmadd_pd(b, twelfth, outer);
  out[4] = _mm512_fnmadd_pd(b, twelfth, outer);
  out[5] = c;
}

// U[ξ] = G g Gᵀ, written into the packed A panels the micro-kernel reads:
// up[ξ·u_stride + (oc/MR)·MR·IC + ic·MR + oc%MR], so the MR = 8 output channels of one panel and
// one input channel are one 8-lane vector per ξ. Items [lo, hi) of (panel, ic).
__attribute__((target("avx512f"))) void transform_weight_items(const Conv2dShape& s, const Plan& p,
                                                               const float* w, bool flip_swap,
                                                               int64_t lo, int64_t hi, float* up) {
  static_assert(MR == 8, "one panel row of output channels per 8-lane vector");
  const int64_t IC = s.IC, OC = s.OC, xi_stride = u_stride(s, p);
  for (int64_t item = lo; item < hi; ++item) {
    const int64_t oc0 = item / IC * MR, ic = item % IC;
    alignas(64) double taps[9][8];  // taps[3·kh + kw][lane], output channel oc0 + lane
    for (int lane = 0; lane < 8; ++lane) {
      const int64_t oc = oc0 + lane;
      for (int t = 0; t < 9; ++t)
        taps[t][lane] = oc >= OC    ? 0.0
                        : flip_swap ? w[(ic * OC + oc) * 9 + (8 - t)]
                                    : w[(oc * IC + ic) * 9 + t];
    }
    __m512d gg[6][3];  // G g, column by column
    for (int c = 0; c < 3; ++c) {
      __m512d col[6];
      apply_g(_mm512_load_pd(taps[c]), _mm512_load_pd(taps[3 + c]), _mm512_load_pd(taps[6 + c]),
              col);
      for (int i = 0; i < 6; ++i) gg[i][c] = col[i];
    }
    float* at = up + oc0 * IC + ic * MR;
    for (int i = 0; i < 6; ++i) {  // (G g) Gᵀ, row by row
      __m512d row[6];
      apply_g(gg[i][0], gg[i][1], gg[i][2], row);
      for (int j = 0; j < 6; ++j)
        _mm256_storeu_ps(at + (i * 6 + j) * xi_stride, _mm512_cvtpd_ps(row[j]));
    }
  }
}

void transform_weights(const Context& ctx, const Conv2dShape& s, const Plan& p, const float* w,
                       bool flip_swap, float* up) {
  parallel_for(ctx, 0, p.OCp / MR * s.IC, [&](int64_t lo, int64_t hi, int) {
    transform_weight_items(s, p, w, flip_swap, lo, hi, up);
  });
}

// Where one pair of tiles reads its input and writes its output.
struct Pair {
  bool valid;      // false: past the last pair of the batch (reads as zero, never stored)
  int64_t n;       // image
  int64_t oy, ox;  // its first output row and column (a tile row's top, 8 · pair column)
};
// A group: pair q fills lanes [8q, 8q + 8), loaded from 8q floats before its first column, so
// that lane i reads column ox - PW + i - 8q. ma and mb: the lanes whose columns (+ 0 and + 2)
// lie inside the image, for both pairs.
struct Group {
  Pair pair[2];
  __mmask16 ma, mb;
  // The two pairs are neighbours in one tile row (always, in maps wider than 8): both halves
  // then start at the same address, and one 16-lane load or store serves both.
  bool joined;
};

Group group_at(const Conv2dShape& s, const Plan& p, int64_t g) {
  Group r{};
  for (int q = 0; q < 2; ++q) {
    const int64_t index = 2 * g + q;
    if (index >= p.pairs) break;
    const int64_t unit = index / p.row_pairs, px = index % p.row_pairs;
    Pair& pr = r.pair[q];
    pr.valid = true;
    pr.n = unit / p.th;
    pr.oy = 4 * (unit % p.th);
    pr.ox = 8 * px;
    const int64_t x0 = pr.ox - s.PW - 8 * q;
    const auto half = static_cast<__mmask16>(0xFF << (8 * q));
    r.ma = static_cast<__mmask16>(r.ma | (inside(x0, s.IW) & half));
    r.mb = static_cast<__mmask16>(r.mb | (inside(x0 + 2, s.IW) & half));
  }
  const Pair &p0 = r.pair[0], &p1 = r.pair[1];
  r.joined = p0.valid && p1.valid && p0.n == p1.n && p0.oy == p1.oy && p1.ox == p0.ox + 8;
  return r;
}

// A run of a group's lanes in one row of an N x C x OH x OW map: the lanes inside the map, and
// the element that lane 0 of the 16-lane access stands for.
struct Run {
  __mmask16 mask;
  int64_t offset;
};
// The runs of a group in row r of its tiles, channel c: one when its pairs are joined, else one
// per pair inside the map. Returns how many.
__attribute__((target("avx512f"))) inline int output_runs(const Group& g, int r, int64_t C,
                                                          int64_t c, int64_t OH, int64_t OW,
                                                          Run runs[2]) {
  int count = 0;
  for (int q = 0; q < (g.joined ? 1 : 2); ++q) {
    const Pair& pr = g.pair[q];
    const int64_t oy = pr.oy + r;
    if (!pr.valid || oy >= OH) continue;
    const __mmask16 inside_row = lanes_below(OW - pr.ox);
    runs[count++] = {g.joined ? inside_row : static_cast<__mmask16>((inside_row & 0xFF) << (8 * q)),
                     ((pr.n * C + c) * OH + oy) * OW + pr.ox - 8 * q};
  }
  return count;
}

// One row of Bᵀ applied along six vectors: t = Bᵀ d (the same formulas serve rows and columns).
struct Six {
  __m512 v[6];
};
__attribute__((target("avx512f"))) inline Six input_transform(const __m512 d[6]) {
  const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f), two = _mm512_set1_ps(2.0f);
  const __m512 p = _mm512_fnmadd_ps(four, d[2], d[4]);  // d4 - 4 d2
  const __m512 q = _mm512_fnmadd_ps(four, d[1], d[3]);  // d3 - 4 d1
  const __m512 r = _mm512_sub_ps(d[4], d[2]);
  const __m512 t = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));
  Six o;
  o.v[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));  // 4d0 - 5d2 + d4
  o.v[1] = _mm512_add_ps(p, q);                                              // -4d1 - 4d2 + d3 + d4
  o.v[2] = _mm512_sub_ps(p, q);                                              // 4d1 - 4d2 - d3 + d4
  o.v[3] = _mm512_add_ps(r, t);                                              // -2d1 - d2 + 2d3 + d4
  o.v[4] = _mm512_sub_ps(r, t);                                              // 2d1 - d2 - 2d3 + d4
  o.v[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));  // 4d1 - 5d3 + d5
  return o;
}

// One row of Aᵀ applied along six vectors.
struct Four {
  __m512 v[4];
};
__attribute__((target("avx512f"))) inline Four output_transform(const __m512 m[6]) {
  const __m512 s1 = _mm512_add_ps(m[1], m[2]), d1 = _mm512_sub_ps(m[1], m[2]);
  const __m512 s2 = _mm512_add_ps(m[3], m[4]), d2 = _mm512_sub_ps(m[3], m[4]);
  Four o;
  o.v[0] = _mm512_add_ps(_mm512_add_ps(m[0], s1), s2);
  o.v[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d2, d1);
  o.v[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), s2, s1);
  o.v[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d2, d1), m[5]);
  return o;
}

// Columns 0..3 of 16 tiles from the loads of 4 groups (load k: group k's 16 columns, tile l's
// columns 4l..4l+3 in lanes 4l..4l+3): column c of tile l of group k goes to lane 4k + l of
// out[c]. Two groups' loads per permute, then 128-bit blocks regrouped.
__attribute__((target("avx512f"))) inline void tile_columns(const __m512 a[4], __m512 out[4]) {
  const __m512i cols02 =
      _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 2, 6, 10, 14, 18, 22, 26, 30);
  const __m512i cols13 =
      _mm512_setr_epi32(1, 5, 9, 13, 17, 21, 25, 29, 3, 7, 11, 15, 19, 23, 27, 31);
  const __m512 p02 = _mm512_permutex2var_ps(a[0], cols02, a[1]);
  const __m512 q02 = _mm512_permutex2var_ps(a[2], cols02, a[3]);
  const __m512 p13 = _mm512_permutex2var_ps(a[0], cols13, a[1]);
  const __m512 q13 = _mm512_permutex2var_ps(a[2], cols13, a[3]);
  out[0] = _mm512_shuffle_f32x4(p02, q02, 0x44);
  out[1] = _mm512_shuffle_f32x4(p13, q13, 0x44);
  out[2] = _mm512_shuffle_f32x4(p02, q02, 0xEE);
  out[3] = _mm512_shuffle_f32x4(p13, q13, 0xEE);
}

// Where a transform stores 16 values of one ξ: as floats, or (weight gradients in bf16) rounded
// to bf16 at the same place of a row of bf16 (bf16.hpp's row layout: element t at 16-bit offset
// t from the row's start, which stays where the float row starts).
template <bool kBf16>
__attribute__((target("avx512f,avx512bf16"))) inline void store_16(float* row, int64_t t,
                                                                    __m512 v) {
  if constexpr (kBf16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(reinterpret_cast<uint16_t*>(row) + t),
                        reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
  else
    _mm512_storeu_ps(row + t, v);
}

// V = Bᵀ d B for the chunk's groups (count a multiple of 4), every input channel, for tile j:
// kPacked (forward), into packed panels, vp[ξ·v_stride + (j/NR)·NR·IC + ic·NR + j%NR];
// else (weight gradients) into plain rows, vp[ξ·v_xi + ic·tiles_padded + j], as floats or, with
// kBf16, as rows of bf16 (store_16).
template <bool kPacked, bool kBf16 = false>
__attribute__((target("avx512f,avx512bf16"))) void transform_input(const Conv2dShape& s, const Plan& p,
                                                        const float* x, const Group* groups,
                                                        int64_t count, float* vp) {
  // Locals, not fields: the intrinsic stores may alias anything.
  const int64_t IC = s.IC, IH = s.IH, IW = s.IW, PH = s.PH, PW = s.PW, tp = p.tiles_padded;
  const int64_t xi_stride = v_stride(s, p);  // also the weight gradients' v_xi (ld = tp)
  for (int64_t ic = 0; ic < IC; ++ic)
    for (int64_t v0 = 0; v0 < count; v0 += 4) {
      const Group* gr = groups + v0;
      __m512 t[6][6];  // d B, row by row
      for (int r = 0; r < 6; ++r) {
        __m512 a[4], b[4];  // per group: columns [0, 16) and [2, 18) of its pairs
        for (int k = 0; k < 4; ++k) {
          a[k] = b[k] = _mm512_setzero_ps();
          if (gr[k].joined) {
            const Pair& pr = gr[k].pair[0];
            const int64_t ih = pr.oy - PH + r;
            if (ih < 0 || ih >= IH) continue;
            const float* row = x + ((pr.n * IC + ic) * IH + ih) * IW + (pr.ox - PW);
            a[k] = _mm512_maskz_loadu_ps(gr[k].ma, row);
            b[k] = _mm512_maskz_loadu_ps(gr[k].mb, row + 2);
            continue;
          }
          for (int q = 0; q < 2; ++q) {
            const Pair& pr = gr[k].pair[q];
            const int64_t ih = pr.oy - PH + r;
            if (!pr.valid || ih < 0 || ih >= IH) continue;
            const auto half = static_cast<__mmask16>(0xFF << (8 * q));
            // Pointer arithmetic from the row start; masked-off lanes are never read.
            const float* row = x + ((pr.n * IC + ic) * IH + ih) * IW + (pr.ox - PW - 8 * q);
            a[k] = _mm512_mask_loadu_ps(a[k], static_cast<__mmask16>(gr[k].ma & half), row);
            b[k] = _mm512_mask_loadu_ps(b[k], static_cast<__mmask16>(gr[k].mb & half), row + 2);
          }
        }
        // Columns 0..3 from the loads at 0; 4 and 5 are columns 2 and 3 of the loads at 2.
        __m512 d[6], shifted[4];
        tile_columns(a, d);
        tile_columns(b, shifted);
        d[4] = shifted[2];
        d[5] = shifted[3];
        const Six row = input_transform(d);
        for (int j = 0; j < 6; ++j) t[r][j] = row.v[j];
      }
      // The row (or panel row) and, within it, the first tile's position.
      float* at = kPacked ? vp + (v0 * kGroup / NR) * NR * IC + ic * NR : vp + ic * tp;
      const int64_t first = kPacked ? (v0 * kGroup) % NR : v0 * kGroup;
      for (int j = 0; j < 6; ++j) {  // Bᵀ (d B), column by column
        const __m512 col[6] = {t[0][j], t[1][j], t[2][j], t[3][j], t[4][j], t[5][j]};
        const Six v = input_transform(col);
        for (int i = 0; i < 6; ++i) store_16<kBf16>(at + (i * 6 + j) * xi_stride, first, v.v[i]);
      }
    }
}

// Y = Aᵀ M A for the chunk's groups, output channels [0, OC), plus bias, stored (or added)
// into the NCHW output. mp[ξ·m_stride + oc·tiles_padded + tile].
__attribute__((target("avx512f"))) void transform_output(const Conv2dShape& s, const Plan& p,
                                                         const float* mp, const Group* groups,
                                                         int64_t count, int64_t oc_lo,
                                                         int64_t oc_hi, const float* b, float* y,
                                                         bool accumulate) {
  const int64_t OC = s.OC, OH = s.OH(), OW = s.OW(), tp = p.tiles_padded;
  const int64_t xi_stride = m_stride(p);
  for (int64_t oc = oc_lo; oc < oc_hi; ++oc) {
    const __m512 bias = _mm512_set1_ps(b ? b[oc] : 0.0f);
    for (int64_t v0 = 0; v0 < count; v0 += 4) {
      const Group* gr = groups + v0;
      const float* m = mp + oc * tp + v0 * kGroup;
      __m512 a[6][4];  // M A, row by row
      for (int i = 0; i < 6; ++i) {
        __m512 row[6];
        for (int j = 0; j < 6; ++j) row[j] = _mm512_loadu_ps(m + (i * 6 + j) * xi_stride);
        const Four o = output_transform(row);
        for (int c = 0; c < 4; ++c) a[i][c] = o.v[c];
      }
      __m512 out[4][4];  // Aᵀ (M A): out[r][c], lane 4k + l = tile l of group k
      for (int c = 0; c < 4; ++c) {
        const __m512 col[6] = {a[0][c], a[1][c], a[2][c], a[3][c], a[4][c], a[5][c]};
        const Four o = output_transform(col);
        for (int r = 0; r < 4; ++r) out[r][c] = o.v[r];
      }
      for (int r = 0; r < 4; ++r) {
        // Transpose so that vector k holds group k's 16 consecutive outputs (lane 4l + c):
        // a 4x4 transpose inside each 128-bit block, then one of the blocks.
        const __m512 t0 = _mm512_unpacklo_ps(out[r][0], out[r][1]);
        const __m512 t1 = _mm512_unpackhi_ps(out[r][0], out[r][1]);
        const __m512 t2 = _mm512_unpacklo_ps(out[r][2], out[r][3]);
        const __m512 t3 = _mm512_unpackhi_ps(out[r][2], out[r][3]);
        const __m512 w0 =
            _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
        const __m512 w1 =
            _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
        const __m512 w2 =
            _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
        const __m512 w3 =
            _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
        const __m512 u0 = _mm512_shuffle_f32x4(w0, w1, 0x44);
        const __m512 u1 = _mm512_shuffle_f32x4(w0, w1, 0xEE);
        const __m512 u2 = _mm512_shuffle_f32x4(w2, w3, 0x44);
        const __m512 u3 = _mm512_shuffle_f32x4(w2, w3, 0xEE);
        const __m512 z[4] = {_mm512_shuffle_f32x4(u0, u2, 0x88), _mm512_shuffle_f32x4(u0, u2, 0xDD),
                             _mm512_shuffle_f32x4(u1, u3, 0x88),
                             _mm512_shuffle_f32x4(u1, u3, 0xDD)};
        for (int k = 0; k < 4; ++k) {
          Run runs[2];
          const int n_runs = output_runs(gr[k], r, OC, oc, OH, OW, runs);
          for (int i = 0; i < n_runs; ++i) {
            float* dst = y + runs[i].offset;
            const __m512 v = accumulate
                                 ? _mm512_add_ps(z[k], _mm512_maskz_loadu_ps(runs[i].mask, dst))
                                 : _mm512_add_ps(z[k], bias);
            _mm512_mask_storeu_ps(dst, runs[i].mask, v);
          }
        }
      }
    }
  }
}

// G' applied along four vectors (a, b, c, d):
//   (a/4, -(a+b+c+d)/6, -(a-b+c-d)/6, a/24 + b/12 + c/6 + d/3, a/24 - b/12 + c/6 - d/3, d).
__attribute__((target("avx512f"))) inline Six grad_output_transform(const __m512 d[4]) {
  const __m512 even = _mm512_add_ps(d[0], d[2]), odd = _mm512_add_ps(d[1], d[3]);
  const __m512 even2 = _mm512_fmadd_ps(d[0], _mm512_set1_ps(1.0f / 24),
                                       _mm512_mul_ps(d[2], _mm512_set1_ps(1.0f / 6)));
  const __m512 odd2 = _mm512_fmadd_ps(d[1], _mm512_set1_ps(1.0f / 12),
                                      _mm512_mul_ps(d[3], _mm512_set1_ps(1.0f / 3)));
  const __m512 minus_sixth = _mm512_set1_ps(-1.0f / 6);
  Six o;
  o.v[0] = _mm512_mul_ps(d[0], _mm512_set1_ps(0.25f));
  o.v[1] = _mm512_mul_ps(_mm512_add_ps(even, odd), minus_sixth);
  o.v[2] = _mm512_mul_ps(_mm512_sub_ps(even, odd), minus_sixth);
  o.v[3] = _mm512_add_ps(even2, odd2);
  o.v[4] = _mm512_sub_ps(even2, odd2);
  o.v[5] = d[3];
  return o;
}

// U = G' dy G'ᵀ of the 4x4 blocks of dy for the chunk's groups, every output channel, in plain
// rows: up[ξ·u_xi + oc·tiles_padded + j]; also Σ dy per channel into db_vec (16 lanes each).
// Blocks past the output (padding tiles and pairs) load as zero, so they add nothing to the
// weight gradient whatever V holds there. kBf16: the rows as bf16 (store_16).
template <bool kBf16>
__attribute__((target("avx512f,avx512bf16"))) void transform_grad_output(const Conv2dShape& s, const Plan& p,
                                                              const float* dy, const Group* groups,
                                                              int64_t count, float* up,
                                                              float* db_vec) {
  const int64_t OC = s.OC, OH = s.OH(), OW = s.OW(), tp = p.tiles_padded;
  const int64_t xi_stride = xi_plane_stride(OC, tp);  // the weight gradients' u_xi
  for (int64_t oc = 0; oc < OC; ++oc) {
    __m512 sum = _mm512_setzero_ps();
    for (int64_t v0 = 0; v0 < count; v0 += 4) {
      const Group* gr = groups + v0;
      __m512 h[4][6];  // dy G'ᵀ, row by row
      for (int r = 0; r < 4; ++r) {
        __m512 a[4];  // per group: the 16 columns of its pairs
        for (int k = 0; k < 4; ++k) {
          a[k] = _mm512_setzero_ps();
          Run runs[2];
          const int n_runs = output_runs(gr[k], r, OC, oc, OH, OW, runs);
          for (int i = 0; i < n_runs; ++i)
            a[k] = _mm512_mask_loadu_ps(a[k], runs[i].mask, dy + runs[i].offset);
          sum = _mm512_add_ps(sum, a[k]);
        }
        __m512 d[4];
        tile_columns(a, d);
        const Six row = grad_output_transform(d);
        for (int j = 0; j < 6; ++j) h[r][j] = row.v[j];
      }
      float* at = up + oc * tp;
      for (int j = 0; j < 6; ++j) {  // G' (dy G'ᵀ), column by column
        const __m512 col[4] = {h[0][j], h[1][j], h[2][j], h[3][j]};
        const Six u = grad_output_transform(col);
        for (int i = 0; i < 6; ++i)
          store_16<kBf16>(at + (i * 6 + j) * xi_stride, v0 * kGroup, u.v[i]);
      }
    }
    _mm512_storeu_ps(db_vec + oc * 16, _mm512_add_ps(_mm512_loadu_ps(db_vec + oc * 16), sum));
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace

// The same convolutions, on the same CPUs, as F(2x2, 3x3).
bool conv2d_winograd4_supported(const Conv2dShape& s) { return conv2d_winograd_supported(s); }

int64_t conv2d_winograd4_workspace_size(const Conv2dShape& s, int threads) {
  const Plan p = forward_plan(s, threads);
  return packed_u_size(s, p) + threads * per_thread_size(s, p);
}

void conv2d_winograd4(const Context& ctx, const Conv2dShape& s, const float* x, const float* w,
                      bool flip_swap, const float* b, float* y, bool accumulate, float* workspace,
                      Precision precision) {
#ifdef CONVNET_HAVE_WINOGRAD4
  const Plan p = forward_plan(s, ctx.num_threads());
  float* up = workspace;
  transform_weights(ctx, s, p, w, flip_swap, up);
  // bf16: U and V are rounded where they lie (bf16.hpp) and the products run on bf16 pairs of
  // input channels; the transforms, M and the output stay float.
  const bool bf16 = precision == Precision::Bf16;
  const int64_t panels = p.OCp / MR;
  if (bf16) {
    parallel_for(ctx, 0, kXi * panels, [&](int64_t lo, int64_t hi, int) {
      for (int64_t item = lo; item < hi; ++item)
        bf16_pairs_in_place(up + item / panels * u_stride(s, p) + item % panels * MR * s.IC, s.IC,
                            MR);
    });
  }
  const MicroKernel micro = bf16 ? micro_avx512_bf16 : gemm_kernel().micro;
  const int64_t depth = bf16 ? (s.IC + 1) / 2 : s.IC;
  const int64_t chunks = (p.groups + p.chunk_groups - 1) / p.chunk_groups;
  // Fewer chunks than threads (a batch of one image): each chunk's output channels are split
  // into blocks of whole panels, one task per (chunk, block). Every block transforms the
  // chunk's input itself, which costs less than leaving threads idle; a value does not depend
  // on the split.
  const int64_t blocks = blocks_per_item(ctx, chunks, panels / 2);
  parallel_for(ctx, 0, chunks * blocks, [&](int64_t lo, int64_t hi, int thread) {
    float* vp = workspace + packed_u_size(s, p) + thread * per_thread_size(s, p);
    float* mp = vp + v_size(s, p);
    Group groups[kMaxGroups];  // the chunk's, in tile order
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t chunk = task / blocks, block = task % blocks;
      const auto [oc_lo, oc_hi] = block_of(s.OC, blocks, block, MR);
      const int64_t g0 = chunk * p.chunk_groups;
      // Whole panels: groups past the batch's last read as zero, so every column the
      // micro-kernel reads holds a number.
      const int64_t count = std::min(
          p.chunk_groups, (p.groups - g0 + kPanelGroups - 1) / kPanelGroups * kPanelGroups);
      for (int64_t k = 0; k < count; ++k) groups[k] = group_at(s, p, g0 + k);
      transform_input<true>(s, p, x, groups, count, vp);
      const int64_t tiles = count * kGroup;
      if (bf16)
        for (int64_t xi = 0; xi < kXi; ++xi)
          for (int64_t j = 0; j < tiles; j += NR)
            bf16_pairs_in_place(vp + xi * v_stride(s, p) + j * s.IC, s.IC, NR);
      for (int64_t xi = 0; xi < kXi; ++xi) {
        const float* u_xi = up + xi * u_stride(s, p);
        const float* v_xi = vp + xi * v_stride(s, p);
        float* m_xi = mp + xi * m_stride(p);
        for (int64_t oc0 = oc_lo; oc0 < oc_hi; oc0 += MR)
          for (int64_t j = 0; j < tiles; j += NR)
            micro(depth, u_xi + oc0 * s.IC, v_xi + j * s.IC, m_xi + oc0 * p.tiles_padded + j,
                  p.tiles_padded, std::min(MR, s.OC - oc0), NR, false);
      }
      transform_output(s, p, mp, groups, count, oc_lo, oc_hi, b, y, accumulate);
    }
  });
#else
  (void)s, (void)x, (void)w, (void)flip_swap, (void)b, (void)y, (void)accumulate, (void)workspace;
  (void)precision;
#endif
}

int64_t conv2d_winograd4_backward_weights_workspace_size(const Conv2dShape& s, int threads) {
  const Plan p = backward_plan(s, threads);
  return threads * weight_gradient_layout(s, kXi, p.tiles_padded).per_thread;
}

void conv2d_winograd4_backward_weights(const Context& ctx, const Conv2dShape& s, const float* x,
                                       const float* dy, float* dw, float* db, float* workspace,
                                       Precision precision) {
#ifdef CONVNET_HAVE_WINOGRAD4
  const Plan p = backward_plan(s, ctx.num_threads());
  const WeightGradientLayout z = weight_gradient_layout(s, kXi, p.tiles_padded);
  const int64_t chunks = (p.groups + p.chunk_groups - 1) / p.chunk_groups;
  const int threads = static_cast<int>(std::min<int64_t>(ctx.num_threads(), chunks));
  parallel_for(ctx, 0, chunks, [&](int64_t lo, int64_t hi, int thread) {
    float* vp = workspace + thread * z.per_thread;
    float* up = vp + z.v;
    float* sums = up + z.u;
    float* db_vec = sums + z.s;
    std::fill_n(sums, z.s + z.db, 0.0f);
    Group groups[kMaxGroups];  // the chunk's, in tile order
    for (int64_t chunk = lo; chunk < hi; ++chunk) {
      const int64_t g0 = chunk * p.chunk_groups;
      const int64_t count = std::min(p.chunk_groups, (p.groups - g0 + 3) / 4 * 4);
      for (int64_t k = 0; k < count; ++k) groups[k] = group_at(s, p, g0 + k);
      // bf16: the transforms write their rows as bf16 straight away (count * kGroup tiles, a
      // whole number of pairs), which the dot products read as they are.
      if (precision == Precision::Bf16) {
        transform_input<false, true>(s, p, x, groups, count, vp);
        transform_grad_output<true>(s, p, dy, groups, count, up, db_vec);
        transform_domain_products(s, z, vp, up, count * kGroup, sums, RowFormat::Bf16);
      } else {
        transform_input<false>(s, p, x, groups, count, vp);
        transform_grad_output<false>(s, p, dy, groups, count, up, db_vec);
        transform_domain_products(s, z, vp, up, count * kGroup, sums, RowFormat::Float);
      }
    }
  });
  // Per-thread sums in a fixed order, then dW += A'ᵀ S A' per (oc, ic) and db += Σ lanes, with
  //   A'ᵀ = | 1  1  1  1  1  0 |
  //         | 0  1 -1  2 -2  0 |
  //         | 0  1  1  4  4  1 |
  static constexpr float AT[3][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 1}};
  finish_weight_gradients(ctx, s, z, workspace, threads, AT, dw, db);
#else
  (void)s, (void)x, (void)dy, (void)dw, (void)db, (void)workspace, (void)precision;
#endif
}

}  // namespace convnet::ops::cpu
