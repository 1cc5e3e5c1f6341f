// The GEMM driver shared by sgemm and the convolution kernels: C (+)= op(A)·op(B) where op(A)
// and op(B) are never formed, only packed, block by block, by caller-supplied packers. sgemm
// packs from matrices; convolution packs straight from the image (implicit im2col), which saves
// writing and re-reading the patch matrix.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/cpu/bf16.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/cpu/lanes.hpp"

namespace convnet::ops::cpu {

inline constexpr int64_t kGemmKC = 256;   // depth of a packed block
inline constexpr int64_t kGemmMC = 128;   // rows of op(A) per packed block
inline constexpr int64_t kGemmNC = 3072;  // columns of op(B) per packed block

// C[0:mr, 0:nr] (+)= Σ_p ap[p*MR + i] · bp[p*NR + j]; ap and bp are packed panels, zero-padded
// to MR rows and NR columns, so only the store needs to know mr and nr.
using MicroKernel = void (*)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                             int64_t mr, int64_t nr, bool accumulate);

struct KernelInfo {
  const char* name;
  int64_t MR, NR;
  MicroKernel micro;
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// C[0:mr, 0:nr] (+)= an AVX-512 micro-kernel's 8 × 32 tile of accumulators (float and bf16
// kernels alike): masked loads and stores handle a partial tile's columns; rows past mr are
// skipped.
__attribute__((target("avx512f"))) inline void store_tile_8x32(__m512 (&acc)[8][2], float* c,
                                                                int64_t ldc, int64_t mr,
                                                                int64_t nr, bool accumulate) {
  const __mmask16 m0 = lanes_below(nr), m1 = lanes_below(nr - 16);
  for (int64_t i = 0; i < mr; ++i) {
    float* row = c + i * ldc;
    if (accumulate) {
      acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, row));
      acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, row + 16));
    }
    _mm512_mask_storeu_ps(row, m0, acc[i][0]);
    _mm512_mask_storeu_ps(row + 16, m1, acc[i][1]);
  }
}
#endif

// The micro-kernel in use (the best the CPU supports, unless a test chose another).
const KernelInfo& gemm_kernel();

// Packs op(A)[i0:i0+mc, p0:p0+kc] into MR-row panels: panel q holds ap[(q*kc + p)*MR + i], rows
// past mc zero. op(A) = A (M×K, leading dim lda) or, when trans, Aᵀ with A stored K×M.
void pack_a_matrix(const float* a, int64_t lda, bool trans, int64_t i0, int64_t p0, int64_t mc,
                   int64_t kc, int64_t MR, float* ap);
// Packs op(B)[p0:p0+kc, j0:j0+nc] into NR-column panels: bp[(q*kc + p)*NR + j], columns past
// nc zero.
void pack_b_matrix(const float* b, int64_t ldb, bool trans, int64_t p0, int64_t j0, int64_t kc,
                   int64_t nc, int64_t NR, float* bp);

// dst[p * stride + i] = rows[i][p] for i < nrows, p < len: interleaves rows into a packed
// panel (a transpose); 8 rows at a time use an AVX2 8x8 transpose when the CPU has it.
void interleave_rows(const float* const* rows, int64_t nrows, int64_t len, float* dst,
                     int64_t stride);

// This thread's packing buffers, sized for the current micro-kernel (allocated once): the
// panels, and one row of a patch matrix (im2col's packers).
struct PackBuffers {
  std::vector<float> a, b, row;
};
PackBuffers& pack_buffers();  // (reserve_pack_buffers in cpu.hpp allocates every thread's)

// C (+)= op(A)·op(B), op(A) M×K and op(B) K×N, row-major C with leading dimension ldc.
// pack_a(i0, p0, mc, kc, MR, ap) and pack_b(p0, j0, kc, nc, NR, bp) fill the panels as
// pack_a_matrix and pack_b_matrix do. Single-threaded. With Precision::Bf16 (which needs
// bf16_kernels_available()) the panels are rounded to bf16 pairs in place once packed and the
// bf16 micro-kernel multiplies them, accumulating in float.
template <class PackA, class PackB>
void gemm_blocked(int64_t M, int64_t N, int64_t K, PackA&& pack_a, PackB&& pack_b,
                  bool accumulate, float* C, int64_t ldc, Precision precision = Precision::Fp32) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill_n(C + i * ldc, N, 0.0f);
    return;
  }
  const bool bf16 = precision == Precision::Bf16;
  const KernelInfo& k = gemm_kernel();  // bf16: the AVX-512 one, whose tile micro_avx512_bf16 has
  const MicroKernel micro = bf16 ? micro_avx512_bf16 : k.micro;
  PackBuffers& buffers = pack_buffers();
  float* ap = buffers.a.data();
  float* bp = buffers.b.data();
  for (int64_t j0 = 0; j0 < N; j0 += kGemmNC) {
    const int64_t nc = std::min(kGemmNC, N - j0);
    // K in equal blocks of at most kGemmKC (288 = 144 + 144, not 256 + 32): a short last block
    // would pay the micro-kernel's C loads and stores for little work.
    const int64_t k_blocks = (K + kGemmKC - 1) / kGemmKC;
    // (bf16: even blocks, so that only the last may end in half a pair)
    int64_t kc_even = (K + k_blocks - 1) / k_blocks;
    if (bf16) kc_even += kc_even % 2;
    for (int64_t p0 = 0; p0 < K; p0 += kc_even) {
      const int64_t kc = std::min(kc_even, K - p0);
      pack_b(p0, j0, kc, nc, k.NR, bp);
      if (bf16)
        for (int64_t j = 0; j < nc; j += k.NR) bf16_pairs_in_place(bp + j * kc, kc, k.NR);
      // The first K block writes C (unless accumulating); later blocks add to it.
      const bool acc = accumulate || p0 > 0;
      for (int64_t i0 = 0; i0 < M; i0 += kGemmMC) {
        const int64_t mc = std::min(kGemmMC, M - i0);
        pack_a(i0, p0, mc, kc, k.MR, ap);
        if (bf16)
          for (int64_t i = 0; i < mc; i += k.MR) bf16_pairs_in_place(ap + i * kc, kc, k.MR);
        const int64_t depth = bf16 ? (kc + 1) / 2 : kc;  // bf16: pairs
        for (int64_t j = 0; j < nc; j += k.NR)
          for (int64_t i = 0; i < mc; i += k.MR)
            micro(depth, ap + i * kc, bp + j * kc, C + (i0 + i) * ldc + j0 + j, ldc,
                    std::min(k.MR, mc - i), std::min(k.NR, nc - j), acc);
      }
    }
  }
}

}  // namespace convnet::ops::cpu
