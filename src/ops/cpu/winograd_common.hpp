// Helpers shared by the AVX-512 Winograd kernels: lane masks (inside(); lanes_below() is in
// lanes.hpp) and the weight gradients' bookkeeping (workspace layout, blocked dot products
// in the transformed domain, the per-thread reduction and the final transform back).
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "convnet/context.hpp"
#include "ops/cpu/bf16.hpp"
#include "ops/cpu/lanes.hpp"
#include "ops/shapes.hpp"

namespace convnet::ops::cpu {

// Lanes [0, 16) whose element x0 + lane lies in [0, width).
__attribute__((target("avx512f"))) inline __mmask16 inside(int64_t x0, int64_t width) {
  const __mmask16 below = lanes_below(width - x0);  // x0 + lane < width
  const __mmask16 negative = lanes_below(-x0);      // x0 + lane < 0
  return static_cast<__mmask16>(below & ~negative);
}

// GCC 12 warns inside its own shuffle intrinsics (an intentionally undefined source register),
// a known false positive; the pragma keeps the build warning-free without hiding our code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// acc[lane] += the sum of a[lane]'s 16 lanes, for 16 accumulators at once: a tree of shuffles
// (45 instructions for all 16, rather than 16 separate horizontal reductions).
__attribute__((target("avx512f"))) inline void add_lane_sums(const __m512 (&a)[16], float* acc) {
  // Level 1: pairs of accumulators share a register, 256-bit halves added.
  __m512 b[8];
  for (int j = 0; j < 8; ++j)
    b[j] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * j], a[2 * j + 1], 0x44),
                         _mm512_shuffle_f32x4(a[2 * j], a[2 * j + 1], 0xEE));
  // Level 2: 128-bit chunk m of c[q] holds four partial sums of a[4q + m].
  __m512 c[4];
  for (int q = 0; q < 4; ++q)
    c[q] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * q], b[2 * q + 1], 0x88),
                         _mm512_shuffle_f32x4(b[2 * q], b[2 * q + 1], 0xDD));
  // Levels 3 and 4: within each chunk; lane 4m + q of e ends as the sum of a[4q + m].
  const __m512 d0 = _mm512_add_ps(_mm512_unpacklo_ps(c[0], c[1]), _mm512_unpackhi_ps(c[0], c[1]));
  const __m512 d1 = _mm512_add_ps(_mm512_unpacklo_ps(c[2], c[3]), _mm512_unpackhi_ps(c[2], c[3]));
  const __m512 e = _mm512_add_ps(
      _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(d0), _mm512_castps_pd(d1))),
      _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(d0), _mm512_castps_pd(d1))));
  _mm512_storeu_ps(acc, _mm512_add_ps(_mm512_loadu_ps(acc), e));
}

// acc[lane] += Σ_t u_rows[k][t] · v_rows[c][t] over t < len, for a 4×4 block of (k, c), with
// lane = 4·c + k: 16 vector accumulators, summed horizontally together by add_lane_sums.
__attribute__((target("avx512f"))) inline void dot_block_4x4(const float* const* u_rows,
                                                             const float* const* v_rows,
                                                             int64_t len, float* acc) {
  __m512 a[16];
  for (auto& v : a) v = _mm512_setzero_ps();
  int64_t t = 0;
  for (; t + 16 <= len; t += 16) {
    const __m512 u0 = _mm512_loadu_ps(u_rows[0] + t), u1 = _mm512_loadu_ps(u_rows[1] + t),
                 u2 = _mm512_loadu_ps(u_rows[2] + t), u3 = _mm512_loadu_ps(u_rows[3] + t);
    for (int c = 0; c < 4; ++c) {
      const __m512 v = _mm512_loadu_ps(v_rows[c] + t);
      a[0 * 4 + c] = _mm512_fmadd_ps(u0, v, a[0 * 4 + c]);
      a[1 * 4 + c] = _mm512_fmadd_ps(u1, v, a[1 * 4 + c]);
      a[2 * 4 + c] = _mm512_fmadd_ps(u2, v, a[2 * 4 + c]);
      a[3 * 4 + c] = _mm512_fmadd_ps(u3, v, a[3 * 4 + c]);
    }
  }
  if (t < len) {
    const __mmask16 m = lanes_below(len - t);
    __m512 u[4];
    for (int k = 0; k < 4; ++k) u[k] = _mm512_maskz_loadu_ps(m, u_rows[k] + t);
    for (int c = 0; c < 4; ++c) {
      const __m512 v = _mm512_maskz_loadu_ps(m, v_rows[c] + t);
      for (int k = 0; k < 4; ++k) a[k * 4 + c] = _mm512_fmadd_ps(u[k], v, a[k * 4 + c]);
    }
  }
  add_lane_sums(a, acc);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// Floats from one ξ plane of `channels` rows of ld to the next: a cache line more than the rows
// need, so that the ξ planes of one tile (whose rows are a multiple of 4 KB long) do not all
// fall into one L1 set, evicting each other on every transform's loads or stores.
inline int64_t xi_plane_stride(int64_t channels, int64_t ld) { return channels * ld + 16; }

// Weight gradients by F(3x3, m x m): per thread, V and U in planes of plain rows of ld tiles
// (xis planes of IC and of OC rows, v_xi and u_xi apart), the transform-domain sums S (4×4
// blocks of 16 lanes, as dot_block_4x4 leaves them) and the bias lanes (16 per output channel).
struct WeightGradientLayout {
  int64_t xis, ld, v_xi, u_xi, blocks_oc, blocks_ic, v, u, s, db, per_thread;
};
inline WeightGradientLayout weight_gradient_layout(const Conv2dShape& s, int64_t xis, int64_t ld) {
  WeightGradientLayout z{};
  z.xis = xis;
  z.ld = ld;
  z.v_xi = xi_plane_stride(s.IC, ld);
  z.u_xi = xi_plane_stride(s.OC, ld);
  z.blocks_oc = (s.OC + 3) / 4;
  z.blocks_ic = (s.IC + 3) / 4;
  z.v = xis * z.v_xi;
  z.u = xis * z.u_xi;
  z.s = xis * z.blocks_oc * z.blocks_ic * 16;
  z.db = s.OC * 16;
  z.per_thread = z.v + z.u + z.s + z.db;
  return z;
}

// What the rows of V and U hold for transform_domain_products: floats; floats to be rounded to
// bf16 in place first (bf16.hpp, which spends them: the caller transforms the next chunk into
// them afresh); or bf16 already, as the transforms wrote them (bf16.hpp's row layout).
enum class RowFormat { Float, FloatToBf16, Bf16 };

// S[ξ][oc, ic] += Σ_tile U[ξ][oc, tile] · V[ξ][ic, tile] over the first `tiles` tiles, every ξ,
// multiplied in bf16 unless the rows are Float.
inline void transform_domain_products(const Conv2dShape& s, const WeightGradientLayout& z,
                                      float* vp, float* up, int64_t tiles, float* sums,
                                      RowFormat rows) {
  const bool bf16 = rows != RowFormat::Float;
  if (rows == RowFormat::FloatToBf16)
    for (int64_t xi = 0; xi < z.xis; ++xi) {
      for (int64_t ic = 0; ic < s.IC; ++ic) bf16_row_in_place(vp + xi * z.v_xi + ic * z.ld, tiles);
      for (int64_t oc = 0; oc < s.OC; ++oc) bf16_row_in_place(up + xi * z.u_xi + oc * z.ld, tiles);
    }
  for (int64_t xi = 0; xi < z.xis; ++xi)
    for (int64_t kb = 0; kb < z.blocks_oc; ++kb) {
      const float* u_rows[4];
      for (int64_t k = 0; k < 4; ++k)  // rows past OC repeat the last; never read back
        u_rows[k] = up + xi * z.u_xi + std::min(4 * kb + k, s.OC - 1) * z.ld;
      for (int64_t cb = 0; cb < z.blocks_ic; ++cb) {
        const float* v_rows[4];
        for (int64_t c = 0; c < 4; ++c)
          v_rows[c] = vp + xi * z.v_xi + std::min(4 * cb + c, s.IC - 1) * z.ld;
        float* block_sums = sums + ((xi * z.blocks_oc + kb) * z.blocks_ic + cb) * 16;
        if (bf16)
          dot_block_4x4_bf16(u_rows, v_rows, (tiles + 1) / 2, block_sums);
        else
          dot_block_4x4(u_rows, v_rows, tiles, block_sums);
      }
    }
}

// dW += A'ᵀ S A' for the 16 (oc, ic) of block (kb, cb), one per lane as dot_block_4x4 leaves
// them (lane 4·(ic % 4) + oc % 4):
//   g[i][j] = Σ_a Σ_b (A'ᵀ[i][a] · S[a][b]) · A'ᵀ[j][b], summed in (a, b) order from 0.
template <int N>
__attribute__((target("avx512f"))) void finish_block(const Conv2dShape& s,
                                                      const WeightGradientLayout& z,
                                                      const float* sums, int64_t kb, int64_t cb,
                                                      const float (&AT)[3][N], float* dw) {
  __m512 S[N * N];
  for (int xi = 0; xi < N * N; ++xi)
    S[xi] = _mm512_loadu_ps(sums + ((xi * z.blocks_oc + kb) * z.blocks_ic + cb) * 16);
  alignas(64) float g[9][16];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      __m512 v = _mm512_setzero_ps();
      for (int a = 0; a < N; ++a)
        for (int b = 0; b < N; ++b)
          v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(AT[i][a]), S[a * N + b]),
                                             _mm512_set1_ps(AT[j][b])));
      _mm512_store_ps(g[i * 3 + j], v);
    }
  for (int lane = 0; lane < 16; ++lane) {
    const int64_t oc = 4 * kb + lane % 4, ic = 4 * cb + lane / 4;
    if (oc >= s.OC || ic >= s.IC) continue;
    float* out = dw + (oc * s.IC + ic) * 9;
    for (int k = 0; k < 9; ++k) out[k] += g[k][lane];
  }
}

// Adds the per-thread sums (threads slices of z.per_thread floats) in a fixed order into the
// first, then dW += A'ᵀ S A' per (oc, ic), A'ᵀ being 3 × N with N × N = z.xis, and
// db += Σ of the bias lanes. Both parts are split across ctx's threads; every value is formed by
// the same float operations in the same order whatever the split (each element of the reduction
// in thread order; each (oc, ic) as in finish_block, 16 at a time), so the results do not
// depend on it.
template <int N>
void finish_weight_gradients(const Context& ctx, const Conv2dShape& s,
                             const WeightGradientLayout& z, float* workspace, int threads,
                             const float (&AT)[3][N], float* dw, float* db) {
  float* total = workspace + z.v + z.u;  // thread 0's sums and bias lanes
  const int64_t count = z.s + z.db, grain = 1024;
  parallel_for(ctx, 0, (count + grain - 1) / grain, [&](int64_t lo, int64_t hi, int) {
    for (int t = 1; t < threads; ++t) {
      const float* part = workspace + t * z.per_thread + z.v + z.u;
      for (int64_t i = lo * grain; i < std::min(count, hi * grain); ++i) total[i] += part[i];
    }
  });
  parallel_for(ctx, 0, z.blocks_oc * z.blocks_ic, [&](int64_t lo, int64_t hi, int) {
    for (int64_t block = lo; block < hi; ++block)
      finish_block<N>(s, z, total, block / z.blocks_ic, block % z.blocks_ic, AT, dw);
  });
  if (db) {
    const float* db_vec = total + z.s;
    for (int64_t oc = 0; oc < s.OC; ++oc) {
      float v = 0.0f;
      for (int l = 0; l < 16; ++l) v += db_vec[oc * 16 + l];
      db[oc] += v;
    }
  }
}

}  // namespace convnet::ops::cpu
#endif
