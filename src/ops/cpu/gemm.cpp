// Packed, register-blocked single-precision GEMM: C (+)= op(A) · op(B), row-major.
// Structure (the classic Goto/BLIS loop nest): B is packed in KC×NC blocks of NR-wide column
// panels, A in MC×KC blocks of MR-tall row panels, and an MR×NR micro-kernel keeps its tile of C
// in registers across the whole KC loop. The micro-kernel is plain C++ the compiler vectorises;
// the macro-kernel is compiled for several ISAs (target_clones) and chosen at load time by CPU
// features, so a generic build never runs an illegal instruction.
#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/cpu/cpu.hpp"

namespace convnet::ops::cpu {
namespace {

constexpr int64_t MR = 6;    // rows of C per micro-tile
constexpr int64_t NR = 32;   // columns of C per micro-tile (two 16-float AVX-512 vectors)
constexpr int64_t KC = 256;  // depth of a packed block: A and B panels stay in L1/L2
constexpr int64_t MC = 120;  // rows of A per packed block (multiple of MR)
constexpr int64_t NC = 2048; // columns of B per packed block (multiple of NR)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CONVNET_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CONVNET_MULTIVERSION
#endif

// Element (r, c) of op(M) where op(M) has rows×cols and M is stored with leading dimension ld.
inline float element(const float* m, int64_t ld, bool trans, int64_t r, int64_t c) {
  return trans ? m[c * ld + r] : m[r * ld + c];
}

// Packs op(A)[i0:i0+mc, p0:p0+kc] into MR-row panels: panel q holds ap[(q*kc + p)*MR + i].
// Rows past mc are zero so the micro-kernel never branches on the edge.
void pack_a(const float* a, int64_t lda, bool trans, int64_t i0, int64_t p0, int64_t mc,
            int64_t kc, float* ap) {
  for (int64_t q = 0; q < mc; q += MR) {
    const int64_t rows = std::min(MR, mc - q);
    for (int64_t p = 0; p < kc; ++p) {
      float* dst = ap + (q / MR * kc + p) * MR;
      for (int64_t i = 0; i < rows; ++i) dst[i] = element(a, lda, trans, i0 + q + i, p0 + p);
      for (int64_t i = rows; i < MR; ++i) dst[i] = 0.0f;
    }
  }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] into NR-column panels: bp[(q*kc + p)*NR + j].
void pack_b(const float* b, int64_t ldb, bool trans, int64_t p0, int64_t j0, int64_t kc,
            int64_t nc, float* bp) {
  for (int64_t q = 0; q < nc; q += NR) {
    const int64_t cols = std::min(NR, nc - q);
    for (int64_t p = 0; p < kc; ++p) {
      float* dst = bp + (q / NR * kc + p) * NR;
      if (!trans && cols == NR) {
        std::memcpy(dst, b + (p0 + p) * ldb + j0 + q, NR * sizeof(float));
        continue;
      }
      for (int64_t j = 0; j < cols; ++j) dst[j] = element(b, ldb, trans, p0 + p, j0 + q + j);
      for (int64_t j = cols; j < NR; ++j) dst[j] = 0.0f;
    }
  }
}

// C[0:mr, 0:nr] (+)= Σ_p ap[p, :] ⊗ bp[p, :]: an MR×NR tile accumulated in registers.
__attribute__((always_inline)) inline void micro_kernel(int64_t kc, const float* __restrict ap,
                                                        const float* __restrict bp, float* c,
                                                        int64_t ldc, int64_t mr, int64_t nr,
                                                        bool accumulate) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* a = ap + p * MR;
    const float* b = bp + p * NR;
    for (int64_t i = 0; i < MR; ++i)
      for (int64_t j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int64_t i = 0; i < mr; ++i) {
    float* row = c + i * ldc;
    if (accumulate)
      for (int64_t j = 0; j < nr; ++j) row[j] += acc[i][j];
    else
      for (int64_t j = 0; j < nr; ++j) row[j] = acc[i][j];
  }
}

CONVNET_MULTIVERSION
void macro_kernel(int64_t mc, int64_t nc, int64_t kc, const float* ap, const float* bp, float* c,
                  int64_t ldc, bool accumulate) {
  for (int64_t j = 0; j < nc; j += NR)
    for (int64_t i = 0; i < mc; i += MR)
      micro_kernel(kc, ap + i * kc, bp + j * kc, c + i * ldc + j, ldc, std::min(MR, mc - i),
                   std::min(NR, nc - j), accumulate);
}

// Per-thread packing buffers; they grow to their final size on the first call and are reused.
struct PackBuffers {
  std::vector<float> a, b;
};
thread_local PackBuffers t_pack;

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
           int64_t lda, const float* B, int64_t ldb, bool accumulate, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill_n(C + i * ldc, N, 0.0f);
    return;
  }
  const size_t a_size = static_cast<size_t>((MC + MR) * KC);
  const size_t b_size = static_cast<size_t>((NC + NR) * KC);
  if (t_pack.a.size() < a_size) t_pack.a.resize(a_size);
  if (t_pack.b.size() < b_size) t_pack.b.resize(b_size);
  float* ap = t_pack.a.data();
  float* bp = t_pack.b.data();

  for (int64_t j0 = 0; j0 < N; j0 += NC) {
    const int64_t nc = std::min(NC, N - j0);
    for (int64_t p0 = 0; p0 < K; p0 += KC) {
      const int64_t kc = std::min(KC, K - p0);
      pack_b(B, ldb, trans_b, p0, j0, kc, nc, bp);
      // The first K block writes C (unless accumulating); later blocks add to it.
      const bool acc = accumulate || p0 > 0;
      for (int64_t i0 = 0; i0 < M; i0 += MC) {
        const int64_t mc = std::min(MC, M - i0);
        pack_a(A, lda, trans_a, i0, p0, mc, kc, ap);
        macro_kernel(mc, nc, kc, ap, bp, C + i0 * ldc + j0, ldc, acc);
      }
    }
  }
}

}  // namespace convnet::ops::cpu
