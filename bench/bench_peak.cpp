// The machine's single-core fp32 FMA peak, measured: independent chains of fused multiply-adds
// with no memory traffic, for AVX-512 and AVX2. What "percent of peak" in bench/README.md is
// relative to. Not a test; x86-64 with GCC or Clang only.
#include <immintrin.h>

#include <chrono>
#include <cstdio>

namespace {

// 16 independent accumulators hide the FMA latency on every current core.
__attribute__((target("avx512f"))) double avx512_gflops(long iterations) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 scale = _mm512_set1_ps(0.999999f), shift = _mm512_set1_ps(1e-7f);
  const auto start = std::chrono::steady_clock::now();
  for (long k = 0; k < iterations; ++k)
    for (auto& a : acc) a = _mm512_fmadd_ps(a, scale, shift);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  float sink = 0;
  for (auto& a : acc) sink += _mm512_cvtss_f32(a);
  std::printf("%s", sink == 12345.0f ? " " : "");  // keep the chains alive
  return 2.0 * 16 * 16 * static_cast<double>(iterations) / s / 1e9;
}

__attribute__((target("avx2,fma"))) double avx2_gflops(long iterations) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 scale = _mm256_set1_ps(0.999999f), shift = _mm256_set1_ps(1e-7f);
  const auto start = std::chrono::steady_clock::now();
  for (long k = 0; k < iterations; ++k)
    for (auto& a : acc) a = _mm256_fmadd_ps(a, scale, shift);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  float sink = 0;
  for (auto& a : acc) sink += _mm256_cvtss_f32(a);
  std::printf("%s", sink == 12345.0f ? " " : "");
  return 2.0 * 12 * 8 * static_cast<double>(iterations) / s / 1e9;
}

}  // namespace

int main() {
  __builtin_cpu_init();
  const long n = 100'000'000;
  if (__builtin_cpu_supports("avx512f"))
    std::printf("AVX-512 FMA peak, one core: %.1f GFLOP/s\n", avx512_gflops(n));
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    std::printf("AVX2 FMA peak, one core:    %.1f GFLOP/s\n", avx2_gflops(n));
}
