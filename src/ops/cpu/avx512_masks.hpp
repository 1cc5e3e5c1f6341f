// Lane masks shared by the AVX-512 Winograd kernels: which of 16 lanes a masked load or store
// may touch.
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

}  // namespace convnet::ops::cpu
#endif
