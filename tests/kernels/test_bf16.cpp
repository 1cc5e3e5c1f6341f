// The bf16 building blocks (ops/cpu/bf16.hpp) against their definitions: the rounding (to
// nearest, ties to even), the in-place layouts the kernels read (pairs of rows, rows), and the
// GEMM in bf16 against exact products of the rounded operands summed in double. Skipped on CPUs
// without AVX512_BF16, saying so.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ops/cpu/bf16.hpp"
#include "ops/cpu/cpu.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

using ops::cpu::round_to_bf16;

uint16_t top_bits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return static_cast<uint16_t>(bits >> 16);
}

#define SKIP_WITHOUT_BF16()                \
  if (!ops::cpu::bf16_kernels_available()) \
  GTEST_SKIP() << "this CPU has no AVX512_BF16 (or the AVX-512 GEMM kernel is not in use)"

TEST(Bf16, RoundsToNearestTiesToEven) {
  const float one = 1.0f, ulp = std::ldexp(1.0f, -7);  // bf16's spacing at 1
  EXPECT_EQ(round_to_bf16(one), one);
  EXPECT_EQ(round_to_bf16(one + ulp / 2), one);                // tie: to the even 1
  EXPECT_EQ(round_to_bf16(one + 3 * ulp / 2), one + 2 * ulp);  // tie: to the even 1 + 2ulp
  EXPECT_EQ(round_to_bf16(one + ulp / 2 + ulp / 64), one + ulp);
  EXPECT_EQ(round_to_bf16(-one - ulp / 4), -one);
  EXPECT_EQ(round_to_bf16(3.14159265f), 3.140625f);
  EXPECT_EQ(round_to_bf16(std::ldexp(1.0f, -130)), 0.0f);  // subnormal: zero
  EXPECT_TRUE(std::isnan(round_to_bf16(NAN)));
  EXPECT_EQ(round_to_bf16(INFINITY), INFINITY);
  // Every rounding within a relative 2⁻⁸.
  Rng rng(7);
  for (int i = 0; i < 10000; ++i) {
    const float v =
        static_cast<float>(rng.normal()) * std::ldexp(1.0f, static_cast<int>(i % 40) - 20);
    EXPECT_LE(std::abs(round_to_bf16(v) - v), std::ldexp(std::abs(v), -8)) << v;
  }
}

TEST(Bf16, PairsInPlaceHoldTheRoundedRowsInPairs) {
  SKIP_WITHOUT_BF16();
  Rng rng(11);
  for (int64_t width : {8, 16, 32, 48})
    for (int64_t k : {1, 2, 7, 8, 33}) {
      std::vector<float> rows(static_cast<size_t>(k * width));
      for (auto& v : rows) v = static_cast<float>(rng.normal());
      std::vector<float> panel = rows;
      ops::cpu::bf16_pairs_in_place(panel.data(), k, width);
      std::vector<uint16_t> words((k + 1) / 2 * width * 2);
      std::memcpy(words.data(), panel.data(), words.size() * sizeof(uint16_t));
      for (int64_t p2 = 0; p2 < (k + 1) / 2; ++p2)
        for (int64_t j = 0; j < width; ++j)
          for (int64_t h = 0; h < 2; ++h) {
            const int64_t row = 2 * p2 + h;
            const float want = row < k ? round_to_bf16(rows[row * width + j]) : 0.0f;
            ASSERT_EQ(words[(p2 * width + j) * 2 + h], top_bits(want))
                << "width " << width << " k " << k << " pair " << p2 << " column " << j;
          }
    }
}

TEST(Bf16, RowInPlaceHoldsTheRoundedRowPaddedToEven) {
  SKIP_WITHOUT_BF16();
  Rng rng(12);
  for (int64_t n : {1, 2, 15, 16, 17, 31, 32, 33, 100}) {
    std::vector<float> row(static_cast<size_t>(n) + 1, 99.0f), original;
    for (int64_t i = 0; i < n; ++i) row[i] = static_cast<float>(rng.normal());
    original = row;
    ops::cpu::bf16_row_in_place(row.data(), n);
    std::vector<uint16_t> words((n + 1) / 2 * 2);
    std::memcpy(words.data(), row.data(), words.size() * sizeof(uint16_t));
    for (int64_t i = 0; i < static_cast<int64_t>(words.size()); ++i)
      ASSERT_EQ(words[i], top_bits(i < n ? round_to_bf16(original[i]) : 0.0f)) << n << " " << i;
    EXPECT_EQ(row[n], 99.0f) << "wrote past the row";
  }
}

// sgemm in bf16 = the exact products of the operands rounded to bf16, summed: against that sum in
// double it differs only by float accumulation, as the float GEMM does from the exact one.
TEST(Bf16, GemmMultipliesTheRoundedOperandsExactly) {
  SKIP_WITHOUT_BF16();
  Rng rng(13);
  const int64_t shapes[][3] = {{1, 1, 1}, {8, 32, 2}, {9, 33, 7}, {37, 70, 300}, {130, 50, 513}};
  for (const auto& mnk : shapes)
    for (bool trans_a : {false, true})
      for (bool trans_b : {false, true}) {
        const int64_t M = mnk[0], N = mnk[1], K = mnk[2];
        std::vector<float> A(M * K), B(K * N), C(M * N, 0.5f);
        for (auto& v : A) v = static_cast<float>(rng.normal());
        for (auto& v : B) v = static_cast<float>(rng.normal());
        const int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
        ops::cpu::sgemm(trans_a, trans_b, M, N, K, A.data(), lda, B.data(), ldb, true, C.data(), N,
                        Precision::Bf16);
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            double want = 0.5, magnitude = 0;
            for (int64_t p = 0; p < K; ++p) {
              const double a = round_to_bf16(trans_a ? A[p * lda + i] : A[i * lda + p]);
              const double b = round_to_bf16(trans_b ? B[j * ldb + p] : B[p * ldb + j]);
              want += a * b;
              magnitude += std::abs(a * b);
            }
            // float accumulation: K roundings of at most 2⁻²⁴ of the running magnitude
            const double err = std::abs(C[i * N + j] - want);
            ASSERT_LE(err, std::ldexp(magnitude + 1, -24) * static_cast<double>(K + 2))
                << M << "x" << N << "x" << K << " trans " << trans_a << trans_b << " at " << i
                << "," << j;
          }
      }
}

}  // namespace
}  // namespace convnet
