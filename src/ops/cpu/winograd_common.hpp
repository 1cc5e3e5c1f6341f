// Helpers shared by the AVX-512 Winograd kernels: lane masks (which of 16 lanes a masked load or
// store may touch) and the blocked dot products of their weight gradients.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include <cstdint>

namespace convnet::ops::cpu {

// Lanes [0, n), clamped to [0, 16].
__attribute__((target("avx512f"))) inline __mmask16 lanes_below(int64_t n) {
  return n >= 16  ? static_cast<__mmask16>(0xFFFF)
         : n <= 0 ? static_cast<__mmask16>(0)
                  : static_cast<__mmask16>((1u << n) - 1);
}

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
// acc[lane] += Σ_t u_rows[k][t] · v_rows[c][t] over t < len, for a 4×4 block of (k, c), with
// lane = 4·c + k: the 16 dot products' vector accumulators are summed horizontally together by
// a tree of shuffles (45 instructions for all 16, rather than 16 separate reductions).
__attribute__((target("avx512f"))) inline void dot_block_4x4(const float* const* u_rows,
                                                      const float* const* v_rows, int64_t len,
                                                      float* acc) {
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
  // a[i], i = 4k + c. Level 1: pairs of accumulators share a register, 256-bit halves added.
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
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace convnet::ops::cpu
#endif
