// Lane masks of the AVX-512 kernels: which of a vector's 16 lanes a masked load or store may
// touch (a partial tile, a row's end).
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

}  // namespace convnet::ops::cpu
#endif
