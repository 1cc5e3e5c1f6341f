// The bf16 building blocks (see bf16.hpp): in-place rounding of packed panels and rows, the
// GEMM micro-kernel and the Winograd weight gradients' dot products, on vdpbf16ps.
#include "ops/cpu/bf16.hpp"

#include <immintrin.h>

#include <cstring>

#include "convnet/context.hpp"
#include "ops/cpu/gemm.hpp"
#include "ops/cpu/winograd_common.hpp"

namespace convnet::ops::cpu {

bool bf16_kernels_available() {
  return cpu_has_bf16() && std::strcmp(gemm_kernel().name, "avx512") == 0;
}

bool runs_bf16(const Context& ctx) {
  return ctx.precision() == Precision::Bf16 && bf16_kernels_available();
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

namespace {
// Rounds 32 floats (lo: elements 0..15, hi: 16..31) to 32 bf16 in element order.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) inline __m512i round_32(__m512 lo,
                                                                               __m512 hi) {
  return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
}
}  // namespace

// In place is safe: the bf16 written for rows [2·p2, 2·p2 + 1] lands at or below where row p2
// was, and every row at or below that has been read by then (rows are read in order, each
// before the store that could overlap it).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void bf16_pairs_in_place(
    float* panel, int64_t k, int64_t width) {
  auto* out = reinterpret_cast<uint16_t*>(panel);
  const int64_t pairs = (k + 1) / 2;
  if (width == 8) {  // rows 2·p2 and 2·p2 + 1 are 16 consecutive floats
    const __m256i interleave =
        _mm256_setr_epi16(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    for (int64_t p2 = 0; p2 < pairs; ++p2) {
      const __mmask16 m = 2 * p2 + 1 < k ? static_cast<__mmask16>(0xFFFF) : 0x00FF;
      const __m512 rows = _mm512_maskz_loadu_ps(m, panel + 2 * p2 * 8);
      const __m256i words = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(rows));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + p2 * 16),
                          _mm256_permutexvar_epi16(interleave, words));
    }
    return;
  }
  // Words 0..15 from the first row, 16..31 from the second: word j of the store is
  // (j even: first row, j odd: second row) of column j/2.
  const __m512i interleave =
      _mm512_setr_epi32(0x00100000, 0x00110001, 0x00120002, 0x00130003, 0x00140004, 0x00150005,
                        0x00160006, 0x00170007, 0x00180008, 0x00190009, 0x001A000A, 0x001B000B,
                        0x001C000C, 0x001D000D, 0x001E000E, 0x001F000F);
  for (int64_t p2 = 0; p2 < pairs; ++p2) {
    const float* first = panel + 2 * p2 * width;
    const bool has_second = 2 * p2 + 1 < k;
    for (int64_t j = 0; j < width; j += 16) {
      const __m512 a = _mm512_loadu_ps(first + j);
      const __m512 b = has_second ? _mm512_loadu_ps(first + width + j) : _mm512_setzero_ps();
      _mm512_storeu_si512(out + 2 * (p2 * width + j),
                          _mm512_permutexvar_epi16(interleave, round_32(a, b)));
    }
  }
}

__attribute__((target("avx512f,avx512bw,avx512bf16"))) void bf16_row_in_place(float* row,
                                                                              int64_t n) {
  auto* out = reinterpret_cast<uint16_t*>(row);
  for (int64_t t = 0; t < n; t += 32) {
    const __m512 lo = _mm512_maskz_loadu_ps(lanes_below(n - t), row + t);
    const __m512 hi = _mm512_maskz_loadu_ps(lanes_below(n - t - 16), row + t + 16);
    const int64_t words = std::min<int64_t>(32, (n - t + 1) / 2 * 2);
    const __mmask32 m = words >= 32 ? 0xFFFFFFFFu : ((1u << words) - 1);
    _mm512_mask_storeu_epi16(out + t, m, round_32(lo, hi));
  }
}

__attribute__((target("avx512f,avx512bf16"))) void micro_avx512_bf16(
    int64_t kc, const float* __restrict ap, const float* __restrict bp, float* c, int64_t ldc,
    int64_t mr, int64_t nr, bool accumulate) {
  __m512 acc[8][2];
  for (auto& row : acc) row[0] = row[1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const auto b0 = reinterpret_cast<__m512bh>(_mm512_loadu_ps(bp + p * 32));
    const auto b1 = reinterpret_cast<__m512bh>(_mm512_loadu_ps(bp + p * 32 + 16));
    for (int i = 0; i < 8; ++i) {
      const auto a = reinterpret_cast<__m512bh>(_mm512_set1_ps(ap[p * 8 + i]));  // one pair
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
    }
  }
  store_tile_8x32(acc, c, ldc, mr, nr, accumulate);
}

__attribute__((target("avx512f,avx512bf16"))) void dot_block_4x4_bf16(const float* const* u_rows,
                                                                      const float* const* v_rows,
                                                                      int64_t pairs, float* acc) {
  __m512 a[16];
  for (auto& v : a) v = _mm512_setzero_ps();
  for (int64_t t = 0; t < pairs; t += 16) {  // 16 pairs (32 bf16) per load
    const __mmask16 m = lanes_below(pairs - t);
    __m512bh u[4];
    for (int k = 0; k < 4; ++k)
      u[k] = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_ps(m, u_rows[k] + t));
    for (int c = 0; c < 4; ++c) {
      const auto v = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_ps(m, v_rows[c] + t));
      for (int k = 0; k < 4; ++k) a[k * 4 + c] = _mm512_dpbf16_ps(a[k * 4 + c], u[k], v);
    }
  }
  add_lane_sums(a, acc);
}

#else  // no x86: bf16_kernels_available() is false and nothing calls these

void bf16_pairs_in_place(float*, int64_t, int64_t) {}
void bf16_row_in_place(float*, int64_t) {}
void micro_avx512_bf16(int64_t, const float*, const float*, float*, int64_t, int64_t, int64_t,
                       bool) {}
void dot_block_4x4_bf16(const float* const*, const float* const*, int64_t, float*) {}

#endif

}  // namespace convnet::ops::cpu
