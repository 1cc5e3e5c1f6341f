// Packed, register-blocked single-precision GEMM: C (+)= op(A) · op(B), row-major.
// Structure (the Goto/BLIS loop nest): op(B) is packed in KC×NC blocks of NR-wide column
// panels, op(A) in MC×KC blocks of MR-tall row panels, and an MR×NR micro-kernel keeps its tile
// of C in registers for the whole KC loop. Micro-kernels exist for AVX-512 (8×32), AVX2+FMA
// (6×16) and plain C++ (4×16); the first one the CPU supports is chosen once, at run time, so
// one binary runs on any x86-64.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ops/cpu/gemm.hpp"

namespace convnet::ops::cpu {
namespace {


// --- plain C++ (any CPU) ---------------------------------------------------------------------
template <int64_t MR, int64_t NR>
void micro_generic(int64_t kc, const float* __restrict ap, const float* __restrict bp, float* c,
                   int64_t ldc, int64_t mr, int64_t nr, bool accumulate) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p)
    for (int64_t i = 0; i < MR; ++i)
      for (int64_t j = 0; j < NR; ++j) acc[i][j] += ap[p * MR + i] * bp[p * NR + j];
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) c[i * ldc + j] = (accumulate ? c[i * ldc + j] : 0.0f) + acc[i][j];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CONVNET_X86 1

// --- AVX2 + FMA: 6 rows × 16 columns = 12 ymm accumulators --------------------------------------
__attribute__((target("avx2,fma"))) void micro_avx2(int64_t kc, const float* __restrict ap,
                                                     const float* __restrict bp, float* c,
                                                     int64_t ldc, int64_t mr, int64_t nr,
                                                     bool accumulate) {
  __m256 acc[6][2];
  for (auto& row : acc) row[0] = row[1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(bp + p * 16), b1 = _mm256_loadu_ps(bp + p * 16 + 8);
    for (int i = 0; i < 6; ++i) {
      const __m256 a = _mm256_broadcast_ss(ap + p * 6 + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  if (mr == 6 && nr == 16) {
    for (int i = 0; i < 6; ++i) {
      float* row = c + i * ldc;
      if (accumulate) {
        acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(row));
        acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, acc[i][0]);
      _mm256_storeu_ps(row + 8, acc[i][1]);
    }
    return;
  }
  alignas(32) float tile[6][16];
  for (int i = 0; i < 6; ++i) {
    _mm256_store_ps(tile[i], acc[i][0]);
    _mm256_store_ps(tile[i] + 8, acc[i][1]);
  }
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j)
      c[i * ldc + j] = (accumulate ? c[i * ldc + j] : 0.0f) + tile[i][j];
}

// --- AVX-512: 8 rows × 32 columns = 16 zmm accumulators ----------------------------------------
__attribute__((target("avx512f"))) void micro_avx512(int64_t kc, const float* __restrict ap,
                                                      const float* __restrict bp, float* c,
                                                      int64_t ldc, int64_t mr, int64_t nr,
                                                      bool accumulate) {
  __m512 acc[8][2];
  for (auto& row : acc) row[0] = row[1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(bp + p * 32), b1 = _mm512_loadu_ps(bp + p * 32 + 16);
    for (int i = 0; i < 8; ++i) {
      const __m512 a = _mm512_set1_ps(ap[p * 8 + i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  store_tile_8x32(acc, c, ldc, mr, nr, accumulate);
}
#endif

// Every micro-kernel this CPU can run, best first.
std::vector<KernelInfo> supported_kernels() {
  std::vector<KernelInfo> out;
#ifdef CONVNET_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) out.push_back({"avx512", 8, 32, &micro_avx512});
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    out.push_back({"avx2", 6, 16, &micro_avx2});
#endif
  out.push_back({"generic", 4, 16, &micro_generic<4, 16>});
  return out;
}

KernelInfo g_kernel = supported_kernels().front();

}  // namespace

const KernelInfo& gemm_kernel() { return g_kernel; }

namespace {

#ifdef CONVNET_X86
// dst[(p + c) * stride + i] = rows[i][p + c] for an 8x8 block: the classic unpack/shuffle/permute
// transpose, 24 shuffles for 64 values instead of 64 scalar stores.
__attribute__((target("avx2"))) void transpose8x8(const float* const* rows, int64_t p, float* dst,
                                                  int64_t stride) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(rows[i] + p);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    _mm256_storeu_ps(dst + (p + c) * stride, _mm256_permute2f128_ps(u[c], u[c + 4], 0x20));
    _mm256_storeu_ps(dst + (p + c + 4) * stride, _mm256_permute2f128_ps(u[c], u[c + 4], 0x31));
  }
}

bool has_avx2() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return yes;
}
#endif

}  // namespace

void interleave_rows(const float* const* rows, int64_t nrows, int64_t len, float* dst,
                     int64_t stride) {
  int64_t p = 0;
#ifdef CONVNET_X86
  if (nrows == 8 && has_avx2())
    for (; p + 8 <= len; p += 8) transpose8x8(rows, p, dst, stride);
#endif
  for (; p < len; ++p)
    for (int64_t i = 0; i < nrows; ++i) dst[p * stride + i] = rows[i][p];
}

// Packs op(A)[i0:i0+mc, p0:p0+kc] into MR-row panels: panel q holds ap[(q*kc + p)*MR + i].
// Rows past mc are zero. Loop order follows A's memory so reads are contiguous.
void pack_a_matrix(const float* a, int64_t lda, bool trans, int64_t i0, int64_t p0, int64_t mc,
                   int64_t kc, int64_t MR, float* ap) {
  for (int64_t q = 0; q < mc; q += MR) {
    const int64_t rows = std::min(MR, mc - q);
    float* panel = ap + q * kc;
    if (trans) {  // A stored K×M: row p holds the MR values we need, contiguous
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = a + (p0 + p) * lda + i0 + q;
        float* dst = panel + p * MR;
        for (int64_t i = 0; i < rows; ++i) dst[i] = src[i];
        for (int64_t i = rows; i < MR; ++i) dst[i] = 0.0f;
      }
    } else {  // A stored M×K: rows along K, interleaved 8 at a time
      if (rows < MR) std::fill_n(panel, kc * MR, 0.0f);
      for (int64_t i = 0; i < rows; i += 8) {
        const float* src[8];
        const int64_t n = std::min<int64_t>(8, rows - i);
        for (int64_t r = 0; r < n; ++r) src[r] = a + (i0 + q + i + r) * lda + p0;
        interleave_rows(src, n, kc, panel + i, MR);
      }
    }
  }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] into NR-column panels: bp[(q*kc + p)*NR + j].
void pack_b_matrix(const float* b, int64_t ldb, bool trans, int64_t p0, int64_t j0, int64_t kc,
                   int64_t nc, int64_t NR, float* bp) {
  for (int64_t q = 0; q < nc; q += NR) {
    const int64_t cols = std::min(NR, nc - q);
    float* panel = bp + q * kc;
    if (!trans) {  // B stored K×N: each row of the panel is a contiguous run
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = b + (p0 + p) * ldb + j0 + q;
        float* dst = panel + p * NR;
        std::memcpy(dst, src, static_cast<size_t>(cols) * sizeof(float));
        for (int64_t j = cols; j < NR; ++j) dst[j] = 0.0f;
      }
    } else {  // B stored N×K: B's rows along K, interleaved 8 at a time
      if (cols < NR) std::fill_n(panel, kc * NR, 0.0f);
      for (int64_t j = 0; j < cols; j += 8) {
        const float* src[8];
        const int64_t n = std::min<int64_t>(8, cols - j);
        for (int64_t r = 0; r < n; ++r) src[r] = b + (j0 + q + j + r) * ldb + p0;
        interleave_rows(src, n, kc, panel + j, NR);
      }
    }
  }
}

PackBuffers& pack_buffers() {
  thread_local PackBuffers buffers;
  const KernelInfo& k = gemm_kernel();
  const size_t a_size = static_cast<size_t>((kGemmMC + k.MR) * kGemmKC);
  const size_t b_size = static_cast<size_t>((kGemmNC + k.NR) * kGemmKC);
  const size_t row_size = static_cast<size_t>(kGemmNC + k.NR);
  if (buffers.a.size() < a_size) buffers.a.resize(a_size);
  if (buffers.b.size() < b_size) buffers.b.resize(b_size);
  if (buffers.row.size() < row_size) buffers.row.resize(row_size);
  return buffers;
}

void reserve_pack_buffers(const Context& ctx) {
  parallel_for(ctx, 0, ctx.num_threads(), [](int64_t, int64_t, int) { pack_buffers(); });
}

const char* sgemm_kernel_name() { return gemm_kernel().name; }

std::vector<std::string> sgemm_kernel_names() {
  std::vector<std::string> names;
  for (const auto& k : supported_kernels()) names.push_back(k.name);
  return names;
}

void sgemm_use_kernel(const std::string& name) {
  for (const auto& k : supported_kernels())
    if (name == k.name) {
      g_kernel = k;
      return;
    }
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
           int64_t lda, const float* B, int64_t ldb, bool accumulate, float* C, int64_t ldc,
           Precision precision) {
  gemm_blocked(
      M, N, K,
      [&](int64_t i0, int64_t p0, int64_t mc, int64_t kc, int64_t MR, float* ap) {
        pack_a_matrix(A, lda, trans_a, i0, p0, mc, kc, MR, ap);
      },
      [&](int64_t p0, int64_t j0, int64_t kc, int64_t nc, int64_t NR, float* bp) {
        pack_b_matrix(B, ldb, trans_b, p0, j0, kc, nc, NR, bp);
      },
      accumulate, C, ldc, precision);
}

}  // namespace convnet::ops::cpu
